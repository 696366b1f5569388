//! The Hypervisor.framework backend (macOS on Apple Silicon), through `applevisor`.
//!
//! - **VM.** HVF allows one VM per process. [`HvfVm`] owns the applevisor VM instance
//!   (created with the largest IPA size the host supports); the VM is destroyed when the
//!   last [`HvfVm`] and the last vCPU are gone. A second `create_vm` while one exists fails.
//! - **Memory.** applevisor only maps memory it allocated itself, so [`Vm::map_memory`] calls
//!   `applevisor_sys::hv_vm_map` on the caller's (shared, file-backed) mapping. Stage 2 uses
//!   16 KiB pages: `gpa`, `host` and `size` must be 16 KiB aligned.
//! - **Exits.** The shim's `HVC #imm` exits with EC 0x16. HVC is an exception-generating
//!   instruction, so the PC HVF reports (ELR_EL2) is the preferred return address: the
//!   instruction *after* the HVC. The trait's "PC already past the HVC" holds with no
//!   adjustment (QEMU's HVF code relies on the same: "Do NOT advance $pc for HVC", while
//!   SMC and trapped WFx/MSR, whose preferred return address is the instruction itself,
//!   need PC += 4).
//! - **System registers.** The host programs every EL1 register with `hv_vcpu_set_sys_reg`
//!   before the first run. Under HVF, some MSR writes from EL1 trap to the host (the C
//!   original attributes it to HCR_EL2.TSC and used `HVC #4` to set registers at boot); we
//!   never write system registers from guest code, so no such path is needed. A trap that
//!   still reaches the host (EC 0x18) is reported as an error with the register's encoding.
//! - **Counter.** HVF's virtual counter is `mach_absolute_time() - vtimer offset`. Every
//!   vCPU gets offset 0, so the guest's CNTVCT_EL0 is the host's `mach_absolute_time()`:
//!   identical on every vCPU and in every elfuse process (fork children included), and the
//!   host can publish vDSO anchors in the same unit. CNTFRQ_EL0 is the host's.
//! - **Invalidation.** The host cannot flush the guest's TLB or I-cache under HVF. An
//!   [`Invalidate`] is recorded and honoured on the next resume by sending the vCPU through
//!   the shim's `tlbi_eret` stub (`TLBI VMALLE1IS; IC IALLU; DSB; ISB; ERET`); see
//!   `HvfVcpu::enter_tlbi_stub` for when that is valid. The stub's address is, in order:
//!   the one given to [`HvfVm::set_tlbi_stub`] (the host-side owner knows the shim's load
//!   address), or else derived from the vCPU's VBAR_EL1 and the shim's layout
//!   (`VBAR_EL1 - vectors + tlbi_eret`, since VBAR_EL1 is the shim's vector table). The
//!   fallback means callers holding only an `Arc<dyn Vm>` need no HVF-specific call.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};

use applevisor::error::HypervisorError;
use applevisor::memory::MemPerms;
use applevisor::vcpu::{
    ExitReason, Reg as HvReg, SimdFpReg as HvSimdReg, SysReg as HvSysReg, Vcpu as HvVcpu,
    VcpuHandle,
};
use applevisor::vm::{GicDisabled, VirtualMachine, VirtualMachineConfig, VirtualMachineInstance};

use super::{
    BackendError, DebugConfig, Hypervisor, Invalidate, Kick, Reg, Result, SysReg, Vcpu, VcpuExit,
    Vm,
};

/// Smallest IPA size we accept: the guest's identity-mapped address space
/// (`layout::RAM_SIZE`, a power of two) needs this many bits.
const MIN_IPA_BITS: u32 = crate::guest::layout::RAM_SIZE.trailing_zeros();
/// HVF's stage-2 granule.
const HV_PAGE_SIZE: u64 = applevisor::memory::PAGE_SIZE as u64;

/// ESR exception classes that reach the host.
const EC_WFX: u64 = 0x01;
const EC_HVC64: u64 = 0x16;
const EC_SYSREG: u64 = 0x18;

/// PSTATE for the synthesized exception entry into the TLBI stub: EL1h, DAIF masked.
const PSTATE_EL1H_MASKED: u64 = 0x3c5;

fn hv_err(what: &'static str) -> impl FnOnce(HypervisorError) -> BackendError {
    move |e| BackendError(format!("hvf: {what}: {e}"))
}

/// The Hypervisor.framework backend.
pub struct Hvf;

impl Hypervisor for Hvf {
    fn create_vm(&self) -> Result<Arc<dyn Vm>> {
        Ok(HvfVm::create()?)
    }
}

/// The process's HVF VM.
pub struct HvfVm {
    vm: VirtualMachineInstance<GicDisabled>,
    ipa_bits: u32,
    /// Guest address of the shim's `tlbi_eret` stub; 0 = derive from VBAR_EL1.
    tlbi_stub: Arc<AtomicU64>,
}

impl HvfVm {
    /// Creates the process's VM with the host's maximum IPA size. Like
    /// [`Hvf::create_vm`], but keeps the concrete type (for [`HvfVm::set_tlbi_stub`]).
    pub fn create() -> Result<Arc<HvfVm>> {
        let ipa_bits = VirtualMachineConfig::get_max_ipa_size().map_err(hv_err("max IPA size"))?;
        if ipa_bits < MIN_IPA_BITS {
            return Err(BackendError(format!(
                "hvf: host supports only {ipa_bits}-bit guest physical addresses, need {MIN_IPA_BITS}"
            )));
        }
        let mut config = VirtualMachineConfig::new();
        config
            .set_ipa_size(ipa_bits)
            .map_err(hv_err("set IPA size"))?;
        let vm = VirtualMachine::with_config(config).map_err(hv_err("hv_vm_create"))?;
        Ok(Arc::new(HvfVm {
            vm,
            ipa_bits,
            tlbi_stub: Arc::new(AtomicU64::new(0)),
        }))
    }

    /// Number of valid guest physical address bits (the guest address space is
    /// `0..1 << ipa_bits`; with the identity map, also the usable VA range).
    pub fn ipa_bits(&self) -> u32 {
        self.ipa_bits
    }

    /// Sets the guest address of the shim's `tlbi_eret` stub (shim load address +
    /// `ShimImage::tlbi_eret`). Applies to every vCPU, existing or future.
    pub fn set_tlbi_stub(&self, addr: u64) {
        self.tlbi_stub.store(addr, SeqCst);
    }
}

impl Vm for HvfVm {
    unsafe fn map_memory(&self, gpa: u64, host: *mut u8, size: usize) -> Result<()> {
        let size64 = size as u64;
        if ![gpa, host as u64, size64]
            .iter()
            .all(|v| v.is_multiple_of(HV_PAGE_SIZE))
        {
            return Err(BackendError(format!(
                "hvf: map {gpa:#x}+{size:#x} from {host:p}: not 16 KiB aligned"
            )));
        }
        if gpa
            .checked_add(size64)
            .is_none_or(|end| end > 1u64 << self.ipa_bits)
        {
            return Err(BackendError(format!(
                "hvf: map {gpa:#x}+{size:#x}: beyond the {}-bit IPA space",
                self.ipa_bits
            )));
        }
        let flags = u64::from(MemPerms::ReadWriteExec);
        // SAFETY: the caller guarantees host..host+size stays mapped for the VM's life.
        let ret = unsafe { applevisor_sys::hv_vm_map(host as *const _, gpa, size, flags) };
        if ret != 0 {
            return Err(BackendError(format!(
                "hvf: hv_vm_map {gpa:#x}+{size:#x} from {host:p}: {}",
                HypervisorError::from(ret)
            )));
        }
        Ok(())
    }

    fn create_vcpu(&self) -> Result<Box<dyn Vcpu>> {
        let vcpu = self.vm.vcpu_create().map_err(hv_err("hv_vcpu_create"))?;
        // Guest CNTVCT_EL0 = mach_absolute_time() on every vCPU (see the module docs).
        vcpu.set_vtimer_offset(0)
            .map_err(hv_err("set vtimer offset"))?;
        let kicker = Arc::new(HvfKicker {
            state: Arc::new(KickState::default()),
            handle: vcpu.get_handle(),
            vm: self.vm.clone(),
        });
        Ok(Box::new(HvfVcpu {
            vcpu,
            kicker,
            tlbi_stub: self.tlbi_stub.clone(),
            invalidate_pending: false,
            at_eret: true,
        }))
    }
}

/// Shared between a vCPU and its kickers.
///
/// Protocol (Dekker-style, all SeqCst): the vCPU thread sets `in_guest` and *then* checks
/// `pending` before every `hv_vcpu_run`; a kicker sets `pending` and *then* checks
/// `in_guest`. So either the vCPU sees the kick before entering, or the kicker sees the
/// vCPU inside and forces it out with `hv_vcpus_exit`, repeating until the vCPU is out
/// (`in_guest` clear) or has consumed the kick (`pending` clear). A kick that lands while
/// the vCPU is outside stays pending and makes the next `run` return `Kicked` at once.
#[derive(Default)]
struct KickState {
    pending: AtomicBool,
    in_guest: AtomicBool,
}

struct HvfKicker {
    state: Arc<KickState>,
    handle: VcpuHandle,
    /// Keeps the VM alive while a kicker exists.
    vm: VirtualMachineInstance<GicDisabled>,
}

impl Kick for HvfKicker {
    fn kick(&self) {
        let s = &self.state;
        s.pending.store(true, SeqCst);
        while s.in_guest.load(SeqCst) && s.pending.load(SeqCst) {
            // Whether HVF latches an exit request made just before `hv_vcpu_run` is not
            // documented, hence the retry. Errors (the vCPU is being destroyed) are moot:
            // a destroyed vCPU is not in the guest, which ends the loop.
            let _ = self.vm.vcpus_exit(std::slice::from_ref(&self.handle));
            for _ in 0..64 {
                if !s.in_guest.load(SeqCst) || !s.pending.load(SeqCst) {
                    return;
                }
                std::thread::yield_now();
            }
        }
    }
}

/// An HVF vCPU, bound to the thread that created it.
pub struct HvfVcpu {
    vcpu: HvVcpu,
    kicker: Arc<HvfKicker>,
    tlbi_stub: Arc<AtomicU64>,
    /// An [`Invalidate`] waits for the next resume.
    invalidate_pending: bool,
    /// PC is at an `ERET` that returns to the guest (with ELR_EL1/SPSR_EL1 holding its EL0
    /// state): true after an HVC exit from the shim's sync vector, and initially (the host
    /// starts the vCPU at `enter_el0`). False after an exit that stopped anywhere else.
    at_eret: bool,
}

impl HvfVcpu {
    /// Sends the vCPU through the TLBI stub on this resume.
    ///
    /// - At EL0 (stopped by a kick): synthesize an exception entry into the stub —
    ///   ELR_EL1/SPSR_EL1 = the EL0 PC/PSTATE, then EL1h at the stub, whose `ERET` returns
    ///   to exactly where the guest was.
    /// - At EL1: valid only when PC is at the shim's `ERET` back to the guest (after an
    ///   HVC exit from the sync vector — `HVC #5`/`HVC #11` are each followed by `ERET` —
    ///   or at `enter_el0`): the stub ends in the same `ERET`, so skipping to it is
    ///   equivalent. Anywhere else in EL1 (a kick inside the vector, before its HVC) ELR_EL1
    ///   is live and PC is not at an ERET, so this fails instead of corrupting the guest.
    ///
    /// A kick may stop the vCPU inside the stub (at EL1); re-running finishes it normally.
    fn enter_tlbi_stub(&mut self) -> Result<()> {
        let stub = match self.tlbi_stub.load(SeqCst) {
            0 => self.stub_from_vbar()?,
            addr => addr,
        };
        let pstate = self.reg(Reg::Pstate)?;
        let el = (pstate >> 2) & 3;
        if el == 0 {
            let pc = self.reg(Reg::Pc)?;
            self.set_sys_reg(SysReg::ElrEl1, pc)?;
            self.set_sys_reg(SysReg::SpsrEl1, pstate)?;
            self.set_reg(Reg::Pstate, PSTATE_EL1H_MASKED)?;
        } else if !self.at_eret {
            return Err(BackendError(
                "hvf: TLB/I-cache invalidation requested while the vCPU is inside the EL1 shim \
                 and not at an HVC exit"
                    .into(),
            ));
        }
        self.set_reg(Reg::Pc, stub)
    }

    /// VBAR_EL1 points at the shim's vector table; the stub is at a fixed offset from it.
    fn stub_from_vbar(&self) -> Result<u64> {
        static LAYOUT: OnceLock<(u64, u64)> = OnceLock::new();
        let (vectors, tlbi_eret) = *LAYOUT.get_or_init(|| {
            let img = elfuse_shim::build();
            (img.vectors as u64, img.tlbi_eret as u64)
        });
        let vbar = self.sys_reg(SysReg::VbarEl1)?;
        if vbar == 0 {
            return Err(BackendError("hvf: no TLBI stub: VBAR_EL1 not set".into()));
        }
        Ok(vbar.wrapping_sub(vectors).wrapping_add(tlbi_eret))
    }

    fn describe_exception(&self, syndrome: u64, va: u64, ipa: u64) -> String {
        let ec = syndrome >> 26;
        let pc = self.vcpu.get_reg(HvReg::PC).unwrap_or(u64::MAX);
        let mut s = format!(
            "hvf: unexpected guest exception EC {ec:#x} (ESR_EL2 {syndrome:#x}) at PC {pc:#x}, \
             VA {va:#x}, IPA {ipa:#x}"
        );
        if ec == EC_SYSREG {
            // ISS: Op0[21:20] Op2[19:17] Op1[16:14] CRn[13:10] Rt[9:5] CRm[4:1] dir[0].
            let f = |shift: u64, bits: u64| (syndrome >> shift) & ((1 << bits) - 1);
            s += &format!(
                " — trapped {} S{}_{}_C{}_C{}_{}",
                if f(0, 1) == 1 { "MRS" } else { "MSR" },
                f(20, 2),
                f(14, 3),
                f(10, 4),
                f(1, 4),
                f(17, 3)
            );
        }
        s
    }
}

/// Where a [`SysReg`] lives under HVF.
enum SysSlot {
    Hv(HvSysReg),
    /// Not exposed by HVF; the guest sees the host's CNTFRQ_EL0.
    Cntfrq,
    /// Not exposed by HVF; mach_absolute_time() minus the vtimer offset.
    Cntvct,
    /// ID_AA64ZFR0_EL1 is only exposed from macOS 15.2; we target 13, where guests have
    /// no SVE, so it reads as 0.
    Zfr0,
}

fn sys_slot(r: SysReg) -> SysSlot {
    use SysSlot::Hv;
    match r {
        SysReg::SctlrEl1 => Hv(HvSysReg::SCTLR_EL1),
        SysReg::TcrEl1 => Hv(HvSysReg::TCR_EL1),
        SysReg::MairEl1 => Hv(HvSysReg::MAIR_EL1),
        SysReg::Ttbr0El1 => Hv(HvSysReg::TTBR0_EL1),
        SysReg::Ttbr1El1 => Hv(HvSysReg::TTBR1_EL1),
        SysReg::VbarEl1 => Hv(HvSysReg::VBAR_EL1),
        SysReg::CpacrEl1 => Hv(HvSysReg::CPACR_EL1),
        SysReg::CntkctlEl1 => Hv(HvSysReg::CNTKCTL_EL1),
        SysReg::ElrEl1 => Hv(HvSysReg::ELR_EL1),
        SysReg::SpsrEl1 => Hv(HvSysReg::SPSR_EL1),
        SysReg::EsrEl1 => Hv(HvSysReg::ESR_EL1),
        SysReg::FarEl1 => Hv(HvSysReg::FAR_EL1),
        SysReg::SpEl0 => Hv(HvSysReg::SP_EL0),
        SysReg::SpEl1 => Hv(HvSysReg::SP_EL1),
        SysReg::TpidrEl0 => Hv(HvSysReg::TPIDR_EL0),
        SysReg::TpidrroEl0 => Hv(HvSysReg::TPIDRRO_EL0),
        SysReg::TpidrEl1 => Hv(HvSysReg::TPIDR_EL1),
        SysReg::ContextidrEl1 => Hv(HvSysReg::CONTEXTIDR_EL1),
        SysReg::MidrEl1 => Hv(HvSysReg::MIDR_EL1),
        SysReg::IdAa64Pfr0El1 => Hv(HvSysReg::ID_AA64PFR0_EL1),
        SysReg::IdAa64Pfr1El1 => Hv(HvSysReg::ID_AA64PFR1_EL1),
        SysReg::IdAa64Isar0El1 => Hv(HvSysReg::ID_AA64ISAR0_EL1),
        SysReg::IdAa64Isar1El1 => Hv(HvSysReg::ID_AA64ISAR1_EL1),
        SysReg::IdAa64Mmfr0El1 => Hv(HvSysReg::ID_AA64MMFR0_EL1),
        SysReg::IdAa64Mmfr1El1 => Hv(HvSysReg::ID_AA64MMFR1_EL1),
        SysReg::IdAa64Mmfr2El1 => Hv(HvSysReg::ID_AA64MMFR2_EL1),
        SysReg::CntfrqEl0 => SysSlot::Cntfrq,
        SysReg::CntvctEl0 => SysSlot::Cntvct,
        SysReg::IdAa64Zfr0El1 => SysSlot::Zfr0,
    }
}

const X_REGS: [HvReg; 31] = {
    use applevisor_sys::hv_reg_t::*;
    [
        X0, X1, X2, X3, X4, X5, X6, X7, X8, X9, X10, X11, X12, X13, X14, X15, X16, X17, X18, X19,
        X20, X21, X22, X23, X24, X25, X26, X27, X28, X29, X30,
    ]
};

const Q_REGS: [HvSimdReg; 32] = {
    use applevisor_sys::hv_simd_fp_reg_t::*;
    [
        Q0, Q1, Q2, Q3, Q4, Q5, Q6, Q7, Q8, Q9, Q10, Q11, Q12, Q13, Q14, Q15, Q16, Q17, Q18, Q19,
        Q20, Q21, Q22, Q23, Q24, Q25, Q26, Q27, Q28, Q29, Q30, Q31,
    ]
};

fn hv_reg(r: Reg) -> Result<HvReg> {
    Ok(match r {
        Reg::X(n) => *X_REGS
            .get(n as usize)
            .ok_or_else(|| BackendError(format!("hvf: no register X{n}")))?,
        Reg::Pc => HvReg::PC,
        // HVF's CPSR is PSTATE in SPSR format.
        Reg::Pstate => HvReg::CPSR,
        Reg::Fpcr => HvReg::FPCR,
        Reg::Fpsr => HvReg::FPSR,
    })
}

fn q_reg(n: u8) -> Result<HvSimdReg> {
    Q_REGS
        .get(n as usize)
        .copied()
        .ok_or_else(|| BackendError(format!("hvf: no register V{n}")))
}

/// The host's counter frequency (what the guest reads from CNTFRQ_EL0).
fn host_cntfrq() -> Result<u64> {
    #[cfg(target_arch = "aarch64")]
    {
        let v: u64;
        // SAFETY: CNTFRQ_EL0 is readable at EL0; no memory or flags touched.
        unsafe {
            core::arch::asm!(
                "mrs {}, cntfrq_el0",
                out(reg) v,
                options(nomem, nostack, preserves_flags),
            )
        };
        Ok(v)
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        Err(BackendError(
            "hvf: CNTFRQ_EL0 is only readable on aarch64 hosts".into(),
        ))
    }
}

/// The counter the HVF vtimer offset is subtracted from.
fn host_counter() -> Result<u64> {
    #[cfg(target_os = "macos")]
    {
        extern "C" {
            fn mach_absolute_time() -> u64;
        }
        // SAFETY: no preconditions.
        Ok(unsafe { mach_absolute_time() })
    }
    #[cfg(not(target_os = "macos"))]
    {
        Err(BackendError(
            "hvf: mach_absolute_time is only available on macOS".into(),
        ))
    }
}

impl Vcpu for HvfVcpu {
    fn reg(&self, r: Reg) -> Result<u64> {
        self.vcpu
            .get_reg(hv_reg(r)?)
            .map_err(hv_err("get register"))
    }

    fn set_reg(&mut self, r: Reg, v: u64) -> Result<()> {
        self.vcpu
            .set_reg(hv_reg(r)?, v)
            .map_err(hv_err("set register"))
    }

    fn sys_reg(&self, r: SysReg) -> Result<u64> {
        match sys_slot(r) {
            SysSlot::Hv(reg) => self
                .vcpu
                .get_sys_reg(reg)
                .map_err(hv_err("get system register")),
            SysSlot::Cntfrq => host_cntfrq(),
            SysSlot::Cntvct => {
                let offset = self
                    .vcpu
                    .get_vtimer_offset()
                    .map_err(hv_err("get vtimer offset"))?;
                Ok(host_counter()?.wrapping_sub(offset))
            }
            SysSlot::Zfr0 => Ok(0),
        }
    }

    fn set_sys_reg(&mut self, r: SysReg, v: u64) -> Result<()> {
        match sys_slot(r) {
            SysSlot::Hv(reg) => self
                .vcpu
                .set_sys_reg(reg, v)
                .map_err(hv_err("set system register")),
            _ => Err(BackendError(format!("hvf: {r:?} is read-only"))),
        }
    }

    fn simd_reg(&self, n: u8) -> Result<u128> {
        self.vcpu
            .get_simd_fp_reg(q_reg(n)?)
            .map_err(hv_err("get SIMD register"))
    }

    fn set_simd_reg(&mut self, n: u8, v: u128) -> Result<()> {
        self.vcpu
            .set_simd_fp_reg(q_reg(n)?, v)
            .map_err(hv_err("set SIMD register"))
    }

    fn run(&mut self) -> Result<VcpuExit> {
        let kick = self.kicker.state.clone();
        loop {
            // Enter-side half of the kick protocol (see KickState).
            kick.in_guest.store(true, SeqCst);
            if kick.pending.swap(false, SeqCst) {
                kick.in_guest.store(false, SeqCst);
                return Ok(VcpuExit::Kicked);
            }
            if self.invalidate_pending {
                if let Err(e) = self.enter_tlbi_stub() {
                    kick.in_guest.store(false, SeqCst);
                    return Err(e);
                }
                self.invalidate_pending = false;
            }
            let ran = self.vcpu.run();
            kick.in_guest.store(false, SeqCst);
            ran.map_err(hv_err("hv_vcpu_run"))?;

            let exit = self.vcpu.get_exit_info();
            self.at_eret = false;
            match exit.reason {
                ExitReason::CANCELED => {
                    // Without a pending kick this is a stale exit request (a kicker's retry
                    // that landed after the vCPU had already left): just resume.
                    if kick.pending.swap(false, SeqCst) {
                        return Ok(VcpuExit::Kicked);
                    }
                }
                ExitReason::EXCEPTION => {
                    let e = exit.exception;
                    match e.syndrome >> 26 {
                        EC_HVC64 => {
                            // PC already points past the HVC (see the module docs).
                            self.at_eret = true;
                            return Ok(VcpuExit::Hvc(e.syndrome as u16));
                        }
                        EC_WFX => {
                            // WFI/WFE trapped to EL2 (EL1 let it through): PC is at the
                            // instruction. Treat it as a yield hint and step over it.
                            let pc = self.reg(Reg::Pc)?;
                            self.set_reg(Reg::Pc, pc.wrapping_add(4))?;
                            std::thread::yield_now();
                        }
                        _ => {
                            return Err(BackendError(self.describe_exception(
                                e.syndrome,
                                e.virtual_address,
                                e.physical_address,
                            )));
                        }
                    }
                }
                ExitReason::VTIMER_ACTIVATED => {
                    // The guest model delivers no timer interrupts: keep the vtimer masked
                    // (HVF masks it on this exit; we never unmask) and carry on.
                    self.vcpu
                        .set_vtimer_mask(true)
                        .map_err(hv_err("mask vtimer"))?;
                }
                ExitReason::UNKNOWN => {
                    let pc = self.vcpu.get_reg(HvReg::PC).unwrap_or(u64::MAX);
                    return Err(BackendError(format!(
                        "hvf: unknown vCPU exit at PC {pc:#x}"
                    )));
                }
            }
        }
    }

    fn run_with(&mut self, on_exit: &mut super::ExitHandler<'_>) -> Result<()> {
        // Every HVF exit leaves hv_vcpu_run anyway: nothing to gain from a hook.
        super::run_loop(self, on_exit)
    }

    fn kicker(&self) -> Arc<dyn Kick> {
        self.kicker.clone()
    }

    fn invalidate(&mut self, what: Invalidate) -> Result<()> {
        // One stub does both: TLBI VMALLE1IS for `tlb`, IC IALLU for `code` (whole cache,
        // so the range is not needed).
        if !what.is_empty() {
            self.invalidate_pending = true;
        }
        Ok(())
    }

    fn set_debug(&mut self, cfg: &DebugConfig) -> Result<()> {
        // Not implemented yet. The way in: hv_vcpu_set_trap_debug_exceptions, BRK-free
        // hardware breakpoints (DBGBVR/DBGBCR, EL0 only) and MDSCR_EL1.SS for single
        // step, each reported as an EC_SOFTSTP/EC_BREAKPT exit mapped to VcpuExit::Debug.
        if cfg.is_active() {
            return Err(BackendError(
                "hvf: debugging (breakpoints, single step) is not implemented".into(),
            ));
        }
        Ok(())
    }
}
