//! The per-process vDSO mapping and the host side of its `[vvar]` page.
//!
//! `[vvar]` (one page, EL0 read-only) lies immediately before `[vdso]` (the image from the
//! `elfuse-vdso` crate, EL0 read/execute); both are placed by `Mm::find_free` at start-up.
//! The page layout is `elfuse_vdso::vvar`. Only the host writes it:
//!
//! - at mapping time: the clock resolutions `__kernel_clock_getres` answers with;
//! - when the vDSO's own fallback `SVC` reaches the host's clock_gettime for an anchored
//!   clock (the fast path found the vvar unseeded, stale, mid-update, the counter gone
//!   backwards, or attention set): [`Vdso::seed`] (re-)anchors every clock. A three-state
//!   CAS on `SEEDED` (0 unseeded / 1 seeded → 2 seeding → 1) lets one vCPU at a time write
//!   the anchor under the seqlock; a raw clock_gettime from anywhere else never anchors.
//! - [`Vdso::set_attention`]: a non-zero word sends every vDSO call to the host.

use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use elfuse_vdso::vvar::{self as layout, VVAR_SIZE};
use elfuse_vdso::VdsoImage;

use super::layout::PAGE_SIZE;
use super::mm::{Backing, Mm, VmaName, PROT_EXEC, PROT_READ};
use super::ram::GuestRam;
use crate::backend::{SysReg, Vcpu};
use crate::errno::Errno;

pub const VVAR_NAME: &str = "[vvar]";
pub const VDSO_NAME: &str = "[vdso]";

/// The kernel version the vDSO's NT_GNU_ABI_TAG note announces (as uname's release).
const ABI_TAG: (u32, u32, u32) = (6, 8, 0);

fn image() -> &'static VdsoImage {
    static IMAGE: OnceLock<VdsoImage> = OnceLock::new();
    IMAGE.get_or_init(|| elfuse_vdso::build(ABI_TAG))
}

/// One process's vDSO and vvar page.
pub struct Vdso {
    ram: Arc<GuestRam>,
    /// The `[vvar]` page.
    pub vvar: u64,
    /// The image (AT_SYSINFO_EHDR).
    pub base: u64,
    /// `__kernel_rt_sigreturn`.
    pub rt_sigreturn: u64,
    /// ELR_EL1 of the fallback `SVC` in `__kernel_clock_gettime`.
    pub fallback_ret: u64,
}

fn host_clock(id: libc::clockid_t) -> libc::timespec {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(id, &mut t) };
    t
}

fn host_res_ns(id: libc::clockid_t) -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    if unsafe { libc::clock_getres(id, &mut t) } != 0 || t.tv_sec != 0 {
        return 0; // not published: the vDSO asks the host
    }
    t.tv_nsec as u64
}

impl Vdso {
    /// Maps `[vvar]` and `[vdso]` into `mm` and fills them.
    pub fn map(mm: &mut Mm) -> Result<Vdso, Errno> {
        let img = image();
        let ram = mm.ram().clone();
        let vvar = mm.find_free(VVAR_SIZE + img.map_size(), 0)?;
        let base = vvar + VVAR_SIZE;
        let name = |s: &str| VmaName::Path(s.into());
        mm.map_fixed(
            vvar,
            PAGE_SIZE,
            PROT_READ,
            false,
            Backing::Anon,
            name(VVAR_NAME),
        )?;
        let prot = PROT_READ | PROT_EXEC;
        mm.map_fixed(
            base,
            img.map_size(),
            prot,
            false,
            Backing::Anon,
            name(VDSO_NAME),
        )?;
        ram.write(base, &img.bytes);
        let v = Vdso {
            ram,
            vvar,
            base,
            rt_sigreturn: base + img.rt_sigreturn,
            fallback_ret: base + img.fallback_ret,
        };
        v.u64(layout::MAX_DELTA)
            .store(layout::STALE_TICKS, Ordering::Relaxed);
        v.u64(layout::RES_HIRES)
            .store(host_res_ns(libc::CLOCK_MONOTONIC), Ordering::Relaxed);
        v.u64(layout::RES_COARSE)
            .store(host_res_ns(libc::CLOCK_MONOTONIC_COARSE), Ordering::Relaxed);
        v.u32(layout::SEEDED)
            .store(layout::UNSEEDED, Ordering::Release);
        Ok(v)
    }

    fn u32(&self, off: u32) -> &AtomicU32 {
        let p = self.ram.ptr(self.vvar + off as u64, 4);
        // SAFETY: inside guest RAM (alive as long as self.ram), 4-aligned; guest RAM is
        // shared memory that the guest only reads (and may only ever race with atomics).
        unsafe { &*(p as *const AtomicU32) }
    }

    fn u64(&self, off: u32) -> &AtomicU64 {
        let p = self.ram.ptr(self.vvar + off as u64, 8);
        // SAFETY: as for `u32`, 8-aligned.
        unsafe { &*(p as *const AtomicU64) }
    }

    /// Mirrors the shim's attention word: non-zero sends every vDSO clock call to the host.
    pub fn set_attention(&self, bits: u32) {
        self.u32(layout::ATTENTION).store(bits, Ordering::SeqCst);
    }

    /// The `SEEDED` word (0 unseeded, 2 seeding, 1 seeded).
    pub fn seeded(&self) -> u32 {
        self.u32(layout::SEEDED).load(Ordering::Acquire)
    }

    /// True while the vvar page is still the one we mapped (the guest may have unmapped or
    /// replaced it; the host must then never write there).
    fn intact(&self, mm: &Mm) -> bool {
        mm.vmas().any(|(s, v)| {
            s == self.vvar
                && v.end == self.vvar + PAGE_SIZE
                && v.name == VmaName::Path(VVAR_NAME.into())
        })
    }

    /// clock_gettime(`clock`) reached the host from the vCPU `vcpu`. If it came from the
    /// vDSO's fallback `SVC`, `clock` is one the vDSO serves and attention is clear,
    /// (re-)anchors the vvar clocks and returns `clock`'s anchor value (the answer to give,
    /// so that the guest never sees a later vDSO reading below it). Otherwise None.
    pub fn seed(&self, mm: &Mutex<Mm>, vcpu: &dyn Vcpu, clock: i32) -> Option<libc::timespec> {
        let slot = layout::slot_of(clock)?;
        if vcpu.sys_reg(SysReg::ElrEl1).ok()? != self.fallback_ret
            || self.u32(layout::ATTENTION).load(Ordering::Acquire) != 0
        {
            return None;
        }
        // Held while writing: the guest cannot unmap the page under us.
        let mm = mm.lock().unwrap_or_else(|p| p.into_inner());
        if !self.intact(&mm) {
            return None;
        }
        let (mult, shift) = layout::mult_shift(vcpu.sys_reg(SysReg::CntfrqEl0).ok()?)?;
        let seeded = self.u32(layout::SEEDED);
        let prev = seeded.load(Ordering::Acquire);
        if prev == layout::SEEDING
            || seeded
                .compare_exchange(prev, layout::SEEDING, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return None; // another vCPU is anchoring right now
        }
        let seq = self.u32(layout::SEQ);
        let s = seq.load(Ordering::Relaxed);
        seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        // Every clock first, then the counter: interpolations never run ahead of the host.
        let clocks = layout::ANCHORED.map(host_clock);
        let Ok(cycle) = vcpu.sys_reg(SysReg::CntvctEl0) else {
            seq.store(s.wrapping_add(2), Ordering::Release);
            seeded.store(layout::UNSEEDED, Ordering::Release);
            return None;
        };
        self.u64(layout::MULT).store(mult, Ordering::Relaxed);
        self.u32(layout::SHIFT).store(shift, Ordering::Relaxed);
        self.u64(layout::CYCLE_LAST).store(cycle, Ordering::Relaxed);
        for (i, t) in clocks.iter().enumerate() {
            let at = layout::CLOCKS + i as u32 * layout::CLOCK_SLOT;
            self.u64(at).store(t.tv_sec as u64, Ordering::Relaxed);
            self.u64(at + 8).store(t.tv_nsec as u64, Ordering::Relaxed);
        }
        seq.store(s.wrapping_add(2), Ordering::Release);
        seeded.store(layout::SEEDED_OK, Ordering::Release);
        tracing::trace!(cycle, clock, "vvar anchored");
        Some(clocks[slot])
    }
}
