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
use std::sync::{Arc, OnceLock};

use elfuse_vdso::vvar::{self as layout, VVAR_SIZE};
use elfuse_vdso::VdsoImage;

use super::layout::{MMAP_TOP, PAGE_SIZE};
use super::mm::{Backing, Mm, VmaName, PROT_EXEC, PROT_READ};
use super::mmlock::MmLock;
use super::ram::GuestRam;
use crate::backend::{SysReg, Vcpu};
use crate::errno::Errno;

pub const VVAR_NAME: &str = "[vvar]";
pub const VDSO_NAME: &str = "[vdso]";

/// The kernel version the vDSO's NT_GNU_ABI_TAG note announces (as uname's release).
const ABI_TAG: (u32, u32, u32) = (6, 8, 0);

/// Where the vDSO goes: `VDSO_HINT_GAP` above the top of the mmap area, in the guard gap
/// below the stack (16 MiB), so that it takes nothing from top-down mmap placement (as
/// Linux keeps it out of the way of mmap_base).
///
/// The 32-page offset is for the emulator: QEMU's softmmu TLB is direct-mapped by page
/// number (64 to 1024+ entries, resized dynamically), and `MMAP_TOP` and `STACK_TOP` are
/// both 1 MiB-aligned. A vDSO page sharing a TLB slot with the top stack page evicted the
/// caller's stack page on every call (perf: victim_tlb_hit, load/store_helper and
/// flatview_translate ~20% of a clock_gettime loop; 3e6 calls 0.60 s → 0.31 s without).
/// Page numbers ending in 0x20/0x21 differ from the stack top's (…ff) and the mmap top's
/// (…ff) at every TLB size.
const VDSO_HINT_GAP: u64 = 32 * PAGE_SIZE;

fn image() -> &'static VdsoImage {
    static IMAGE: OnceLock<VdsoImage> = OnceLock::new();
    IMAGE.get_or_init(|| elfuse_vdso::build(ABI_TAG))
}

/// One process's vDSO and vvar page.
#[derive(Clone)]
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
    /// Whether the `[vvar]` page is still ours, readable without the mm lock
    /// ([`VvarWatch`]).
    watch: Arc<VvarWatch>,
}

/// Whether the `[vvar]` page is still the one we mapped (the guest may unmap or replace
/// it; the host must then never write there), kept by the `Mm` (which clears it when a
/// mapping change touches the page) so that the signal actor can mirror attention
/// without taking the mm lock. One word: `GONE`, and the count of writers in flight, so
/// that the mm, having set `GONE`, waits for a write that had already seen the page as
/// ours (a few stores) before the page can be reused.
#[derive(Debug, Default)]
pub struct VvarWatch(AtomicU32);

const GONE: u32 = 1 << 31;

impl VvarWatch {
    /// Runs `write` only while the page is ours.
    fn write_if_ours(&self, write: impl FnOnce()) {
        if self.0.fetch_add(1, Ordering::SeqCst) & GONE == 0 {
            write();
        }
        self.0.fetch_sub(1, Ordering::SeqCst);
    }

    /// The page is no longer ours: from now on nothing is written there.
    pub fn gone(&self) {
        self.0.fetch_or(GONE, Ordering::SeqCst);
        while self.0.load(Ordering::SeqCst) & !GONE != 0 {
            std::hint::spin_loop();
        }
    }

    fn set_ours(&self, ours: bool) {
        if ours {
            self.0.fetch_and(!GONE, Ordering::SeqCst);
        } else {
            self.gone();
        }
    }
}

fn host_clock(id: libc::clockid_t) -> libc::timespec {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `t`, a local; an unknown clock id only
    // fails.
    unsafe { libc::clock_gettime(id, &mut t) };
    t
}

fn host_res_ns(id: libc::clockid_t) -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_getres writes one timespec into `t`, a local; an unknown clock id only
    // fails.
    if unsafe { libc::clock_getres(id, &mut t) } != 0 || t.tv_sec != 0 {
        return 0; // not published: the vDSO asks the host
    }
    t.tv_nsec as u64
}

impl Vdso {
    /// Maps `[vvar]` and `[vdso]` into `mm` and fills them.
    /// The vDSO already mapped with its `[vvar]` page at `vvar` (a fork child's copy of
    /// its parent's): nothing is written.
    pub fn at(ram: Arc<GuestRam>, vvar: u64) -> Vdso {
        let img = image();
        let base = vvar + VVAR_SIZE;
        Vdso {
            ram,
            vvar,
            base,
            rt_sigreturn: base + img.rt_sigreturn,
            fallback_ret: base + img.fallback_ret,
            watch: Arc::new(VvarWatch::default()),
        }
    }

    pub fn map(mm: &mut Mm) -> Result<Vdso, Errno> {
        let img = image();
        let ram = mm.ram().clone();
        let len = VVAR_SIZE + img.map_size();
        let vvar = mm.find_free(len, MMAP_TOP + VDSO_HINT_GAP)?;
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
        // The address space that keeps this vDSO's vvar watch is the process's
        // (`Process::new`, execve): `Vdso::watch`.
        let v = Vdso::at(ram, vvar);
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
    pub fn attention(&self) -> u32 {
        self.u32(layout::ATTENTION).load(Ordering::Acquire)
    }

    pub fn set_attention(&self, bits: u32) {
        self.u32(layout::ATTENTION).store(bits, Ordering::SeqCst);
    }

    /// [`Vdso::set_attention`] for the running process: writes only while the vvar page is
    /// still ours (the guest may have unmapped it and put its own data there). Takes no
    /// lock (see [`VvarWatch`]).
    pub fn mirror_attention(&self, bits: u32) {
        self.watch.write_if_ours(|| self.set_attention(bits));
    }

    /// Has `mm` (a new address space: execve, a fork child's) keep this vDSO's
    /// [`VvarWatch`], which starts as whether the page is ours there now.
    pub fn watch(&self, mm: &mut Mm) {
        self.watch.set_ours(self.intact(mm));
        mm.watch_vvar(self.vvar, self.watch.clone());
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
    pub fn seed(&self, mm: &MmLock, vcpu: &dyn Vcpu, clock: i32) -> Option<libc::timespec> {
        let slot = layout::slot_of(clock)?;
        if vcpu.sys_reg(SysReg::ElrEl1).ok()? != self.fallback_ret
            || self.u32(layout::ATTENTION).load(Ordering::Acquire) != 0
        {
            return None;
        }
        // Held while writing: the guest cannot unmap the page under us.
        let mm = mm.lock();
        if !self.intact(&mm) {
            return None;
        }
        let freq = vcpu.sys_reg(SysReg::CntfrqEl0).ok()?;
        let (mult, shift) = layout::mult_shift(freq)?;
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
        self.u64(layout::MAX_DELTA)
            .store(layout::max_delta(freq), Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Invalidate, Kick, Reg, Result as BResult, VcpuExit};
    use crate::guest::layout::RAM_SIZE;

    /// Just the registers `seed` reads.
    struct FakeVcpu {
        elr: u64,
        cntvct: u64,
    }

    impl Vcpu for FakeVcpu {
        fn reg(&self, _: Reg) -> BResult<u64> {
            Ok(0)
        }
        fn set_reg(&mut self, _: Reg, _: u64) -> BResult<()> {
            Ok(())
        }
        fn sys_reg(&self, r: SysReg) -> BResult<u64> {
            Ok(match r {
                SysReg::ElrEl1 => self.elr,
                SysReg::CntfrqEl0 => 62_500_000,
                SysReg::CntvctEl0 => self.cntvct,
                _ => 0,
            })
        }
        fn set_sys_reg(&mut self, _: SysReg, _: u64) -> BResult<()> {
            Ok(())
        }
        fn simd_reg(&self, _: u8) -> BResult<u128> {
            Ok(0)
        }
        fn set_simd_reg(&mut self, _: u8, _: u128) -> BResult<()> {
            Ok(())
        }
        fn run(&mut self) -> BResult<VcpuExit> {
            unreachable!()
        }
        fn run_with(&mut self, _: &mut crate::backend::ExitHandler<'_>) -> BResult<()> {
            unreachable!()
        }
        fn kicker(&self) -> Arc<dyn Kick> {
            unreachable!()
        }
        fn invalidate(&mut self, _: Invalidate) -> BResult<()> {
            Ok(())
        }
    }

    fn setup() -> (MmLock, Vdso) {
        let ram = Arc::new(GuestRam::new(RAM_SIZE).unwrap());
        let mut mm = Mm::new(ram);
        let v = Vdso::map(&mut mm).unwrap();
        (MmLock::new(mm), v)
    }

    #[test]
    fn only_the_fallback_svc_anchors() {
        let (mm, v) = setup();
        assert_eq!(v.base, v.vvar + VVAR_SIZE);
        assert_eq!(v.seeded(), layout::UNSEEDED);
        assert!(v.u64(layout::RES_HIRES).load(Ordering::Relaxed) > 0);
        let mono = libc::CLOCK_MONOTONIC;

        // A raw clock_gettime from anywhere else: refused, nothing written.
        let raw = FakeVcpu {
            elr: v.fallback_ret + 4,
            cntvct: 1000,
        };
        assert!(v.seed(&mm, &raw, mono).is_none());
        assert_eq!(v.seeded(), layout::UNSEEDED);
        assert_eq!(v.u64(layout::CYCLE_LAST).load(Ordering::Relaxed), 0);

        // The vDSO's own fallback: anchors every clock and answers with the anchor.
        let own = FakeVcpu {
            elr: v.fallback_ret,
            cntvct: 1000,
        };
        let before = host_clock(mono);
        let t = v.seed(&mm, &own, mono).expect("anchored");
        assert_eq!(v.seeded(), layout::SEEDED_OK);
        assert_eq!(v.u64(layout::CYCLE_LAST).load(Ordering::Relaxed), 1000);
        assert_eq!(v.u64(layout::MULT).load(Ordering::Relaxed), 16 << 32);
        assert_eq!(v.u32(layout::SHIFT).load(Ordering::Relaxed), 32);
        assert_eq!(v.u32(layout::SEQ).load(Ordering::Relaxed), 2);
        let slot = layout::CLOCKS + layout::CLOCK_SLOT;
        assert_eq!(v.u64(slot).load(Ordering::Relaxed), t.tv_sec as u64);
        assert!((t.tv_sec, t.tv_nsec) >= (before.tv_sec, before.tv_nsec));

        // Clocks the fast path does not serve never re-anchor.
        assert!(v.seed(&mm, &own, libc::CLOCK_MONOTONIC_COARSE).is_none());
        // Another vCPU mid-seed: refused (the CAS 1 → 2 fails).
        v.u32(layout::SEEDED)
            .store(layout::SEEDING, Ordering::Relaxed);
        assert!(v.seed(&mm, &own, mono).is_none());
        v.u32(layout::SEEDED)
            .store(layout::SEEDED_OK, Ordering::Relaxed);
        // Attention set: the host answers, never anchors.
        v.set_attention(4);
        assert!(v.seed(&mm, &own, mono).is_none());
        v.set_attention(0);
        assert!(v.seed(&mm, &own, mono).is_some());
        assert_eq!(v.u32(layout::SEQ).load(Ordering::Relaxed), 4);

        // Once the guest unmaps [vvar], the host never writes there again.
        mm.lock().unmap(v.vvar, PAGE_SIZE).unwrap();
        assert!(v.seed(&mm, &own, mono).is_none());
    }
}
