//! The vCPU backend: the only code that knows which engine runs the guest.
//!
//! Modelled on crosvm's `hypervisor` crate: a [`Hypervisor`] creates a [`Vm`]; the VM maps
//! host memory at guest physical addresses and creates [`Vcpu`]s, each on (and bound to)
//! the thread that will run it. Everything above this module (guest memory, page tables,
//! loader, shim, syscall layer) talks to these traits only.
//!
//! Exit model (both backends): the guest runs until the EL1 shim executes `HVC #imm`
//! ([`VcpuExit::Hvc`], PC already past the HVC) or another thread kicks the vCPU
//! ([`VcpuExit::Kicked`]). Every other exception is taken architecturally inside the guest.
//!
//! Two ways to drive a vCPU: [`Vcpu::run`] returns at each exit; [`Vcpu::run_with`] hands
//! each exit to a handler and resumes the guest when it says so. They have the same
//! semantics; `run_with` lets a backend answer an exit without leaving its engine (the
//! emu backend calls the handler from inside unicorn's interrupt hook, which saves the
//! engine's exit and re-entry on every forwarded syscall).

use std::sync::Arc;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod busfault;
pub mod codelog;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod emu;
#[cfg(feature = "hvf")]
pub mod hvf;

pub use codelog::CodeLog;

/// A backend failure. These are host-side problems (engine errors), never guest faults.
#[derive(Debug)]
pub struct BackendError(pub String);

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for BackendError {}

pub type Result<T> = std::result::Result<T, BackendError>;

/// General-purpose and special registers of the vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reg {
    /// X0..X30.
    X(u8),
    Pc,
    /// PSTATE (NZCV, DAIF, EL, SP select) as an SPSR-format value.
    Pstate,
    Fpcr,
    Fpsr,
}

/// System registers the guest model programs or reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SysReg {
    SctlrEl1,
    TcrEl1,
    MairEl1,
    Ttbr0El1,
    Ttbr1El1,
    VbarEl1,
    CpacrEl1,
    CntkctlEl1,
    ElrEl1,
    SpsrEl1,
    EsrEl1,
    FarEl1,
    SpEl0,
    SpEl1,
    TpidrEl0,
    TpidrroEl0,
    TpidrEl1,
    ContextidrEl1,
    CntfrqEl0,
    CntvctEl0,
    MidrEl1,
    IdAa64Pfr0El1,
    IdAa64Pfr1El1,
    IdAa64Isar0El1,
    IdAa64Isar1El1,
    IdAa64Mmfr0El1,
    IdAa64Mmfr1El1,
    IdAa64Mmfr2El1,
    IdAa64Zfr0El1,
}

impl SysReg {
    /// (op0, op1, CRn, CRm, op2) — the architectural encoding.
    pub const fn encoding(self) -> (u8, u8, u8, u8, u8) {
        use SysReg::*;
        match self {
            SctlrEl1 => (3, 0, 1, 0, 0),
            TcrEl1 => (3, 0, 2, 0, 2),
            MairEl1 => (3, 0, 10, 2, 0),
            Ttbr0El1 => (3, 0, 2, 0, 0),
            Ttbr1El1 => (3, 0, 2, 0, 1),
            VbarEl1 => (3, 0, 12, 0, 0),
            CpacrEl1 => (3, 0, 1, 0, 2),
            CntkctlEl1 => (3, 0, 14, 1, 0),
            ElrEl1 => (3, 0, 4, 0, 1),
            SpsrEl1 => (3, 0, 4, 0, 0),
            EsrEl1 => (3, 0, 5, 2, 0),
            FarEl1 => (3, 0, 6, 0, 0),
            SpEl0 => (3, 0, 4, 1, 0),
            SpEl1 => (3, 4, 4, 1, 0),
            TpidrEl0 => (3, 3, 13, 0, 2),
            TpidrroEl0 => (3, 3, 13, 0, 3),
            TpidrEl1 => (3, 0, 13, 0, 4),
            ContextidrEl1 => (3, 0, 13, 0, 1),
            CntfrqEl0 => (3, 3, 14, 0, 0),
            CntvctEl0 => (3, 3, 14, 0, 2),
            MidrEl1 => (3, 0, 0, 0, 0),
            IdAa64Pfr0El1 => (3, 0, 0, 4, 0),
            IdAa64Pfr1El1 => (3, 0, 0, 4, 1),
            IdAa64Zfr0El1 => (3, 0, 0, 4, 4),
            IdAa64Isar0El1 => (3, 0, 0, 6, 0),
            IdAa64Isar1El1 => (3, 0, 0, 6, 1),
            IdAa64Mmfr0El1 => (3, 0, 0, 7, 0),
            IdAa64Mmfr1El1 => (3, 0, 0, 7, 1),
            IdAa64Mmfr2El1 => (3, 0, 0, 7, 2),
        }
    }
}

/// Why [`Vcpu::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuExit {
    /// The guest executed `HVC #imm`; PC points past it.
    Hvc(u16),
    /// Another thread kicked this vCPU (see [`Kick`]).
    Kicked,
    /// A debugger's stop ([`Vcpu::set_debug`]): the vCPU is about to execute the EL0
    /// instruction at PC, which is a breakpoint or the end of a single step.
    Debug,
}

/// What a debugger (the gdb stub) asks of a vCPU: [`VcpuExit::Debug`] before every EL0
/// instruction at one of `breakpoints`, or, with `step`, before the next EL0 instruction.
/// Only EL0 (guest user) code is watched: the shim's EL1 code is invisible, so a step
/// over `SVC` ends after the whole syscall. Resuming from a stop executes the instruction
/// stopped at (a breakpoint there does not stop it again).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DebugConfig {
    pub breakpoints: Vec<u64>,
    pub step: bool,
}

impl DebugConfig {
    /// True if the vCPU must watch its guest code at all.
    pub fn is_active(&self) -> bool {
        self.step || !self.breakpoints.is_empty()
    }
}

/// What an exit handler of [`Vcpu::run_with`] wants next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Go on running the guest (registers as the handler left them).
    Resume,
    /// Return from `run_with`.
    Leave,
}

/// The handler [`Vcpu::run_with`] calls at each exit, with the vCPU stopped at it.
pub type ExitHandler<'a> = dyn FnMut(&mut dyn Vcpu, VcpuExit) -> Flow + 'a;

/// [`Vcpu::run_with`] for backends whose every exit leaves [`Vcpu::run`] (hvf).
#[cfg(feature = "hvf")]
pub fn run_loop<V: Vcpu>(v: &mut V, on_exit: &mut ExitHandler<'_>) -> Result<()> {
    loop {
        let exit = v.run()?;
        if on_exit(v, exit) == Flow::Leave {
            return Ok(());
        }
    }
}

/// What a mapping or permission change requires of a vCPU before it runs guest code again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Invalidate {
    /// Stage-1 translations changed (unmap, permission change, remap).
    pub tlb: bool,
    /// Guest memory that may hold code changed behind the guest's back (host writes,
    /// unmap + remap, new executable mapping): drop translated/cached code in this range.
    pub code: Option<(u64, u64)>,
}

impl Invalidate {
    pub fn merge(&mut self, other: Invalidate) {
        self.tlb |= other.tlb;
        self.code = match (self.code, other.code) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (x, None) | (None, x) => x,
        };
    }
    pub fn is_empty(&self) -> bool {
        !self.tlb && self.code.is_none()
    }
}

/// Interrupts a running vCPU from another thread. `kick` returns once the vCPU has left
/// (or will not enter) guest execution and will report [`VcpuExit::Kicked`].
pub trait Kick: Send + Sync {
    fn kick(&self);
    /// The batch form (`kick_all`): `arm` every vCPU, one `barrier`, then `settle` each;
    /// the same as `kick` on each, with the barrier paid once. The defaults make it a
    /// `kick` per vCPU.
    fn arm(&self) {}
    fn barrier(&self) {}
    fn settle(&self) {
        self.kick()
    }
}

/// Kicks every vCPU in `kicks` (see [`Kick::arm`]); returns once each has left guest
/// code or will not enter it.
pub fn kick_all(kicks: &[&dyn Kick]) {
    kicks.iter().for_each(|k| k.arm());
    if let Some(k) = kicks.first() {
        k.barrier();
    }
    kicks.iter().for_each(|k| k.settle());
}

/// A virtual CPU, created on and bound to the current thread.
pub trait Vcpu {
    fn reg(&self, r: Reg) -> Result<u64>;
    /// The syscall registers: X8 (number) and X0..X5 (arguments). Backends may read them
    /// in one call.
    fn syscall_regs(&self) -> Result<(u64, [u64; 6])> {
        let mut a = [0u64; 6];
        for (i, v) in a.iter_mut().enumerate() {
            *v = self.reg(Reg::X(i as u8))?;
        }
        Ok((self.reg(Reg::X(8))?, a))
    }
    fn set_reg(&mut self, r: Reg, v: u64) -> Result<()>;
    fn sys_reg(&self, r: SysReg) -> Result<u64>;
    fn set_sys_reg(&mut self, r: SysReg, v: u64) -> Result<()>;
    /// V0..V31 as 128-bit values.
    fn simd_reg(&self, n: u8) -> Result<u128>;
    fn set_simd_reg(&mut self, n: u8, v: u128) -> Result<()>;
    /// Runs guest code until an exit.
    fn run(&mut self) -> Result<VcpuExit>;
    /// Runs guest code, calling `on_exit` at every exit on this thread with the vCPU
    /// stopped at it (registers, system registers and [`Vcpu::invalidate`] may be used;
    /// `run`/`run_with` must not be called from it). `Flow::Resume` continues the guest,
    /// `Flow::Leave` returns. The kick contract holds: a kick that lands while `on_exit`
    /// runs is reported as its own [`VcpuExit::Kicked`] before guest code runs again.
    /// A panic in `on_exit` propagates out of `run_with`.
    fn run_with(&mut self, on_exit: &mut ExitHandler<'_>) -> Result<()>;
    /// A handle other threads use to interrupt [`Vcpu::run`].
    fn kicker(&self) -> Arc<dyn Kick>;
    /// Applies a mapping change before the guest runs again. Called on the vCPU's thread
    /// while it is stopped at an HVC exit.
    fn invalidate(&mut self, what: Invalidate) -> Result<()>;
    /// Sets what a debugger watches (see [`DebugConfig`]); an inactive config turns
    /// watching off, which costs nothing afterwards. Called on the vCPU's thread while it
    /// is stopped at an exit. Backends without debug support refuse an active config.
    fn set_debug(&mut self, cfg: &DebugConfig) -> Result<()> {
        if cfg.is_active() {
            return Err(BackendError(
                "this vCPU backend does not support debugging (breakpoints, single step)".into(),
            ));
        }
        Ok(())
    }
    /// Reports the next `budget` blocks of guest code this vCPU translates to `log`
    /// (`None`: stop). Only backends that translate guest code have anything to report.
    fn log_translations(&mut self, log: Option<Arc<CodeLog>>, budget: u32) {
        let _ = (log, budget);
    }
    /// Translates ahead, without running it, the EL0 block at `pc` that a vCPU of a fork
    /// child reported with `key` to a [`CodeLog`]. Called on the vCPU's thread while it is
    /// stopped at an HVC exit. True if a block was translated now (not cached already,
    /// not refused).
    fn pretranslate(&mut self, pc: u64, key: u32) -> bool {
        let _ = (pc, key);
        false
    }
}

/// A guest physical address space.
pub trait Vm: Send + Sync {
    /// Maps `size` bytes of host memory at `host` to guest physical address `gpa`. The
    /// memory must outlive the VM. Maps into every existing and future vCPU.
    ///
    /// # Safety
    /// `host..host+size` must stay mapped and valid for the VM's whole life.
    unsafe fn map_memory(&self, gpa: u64, host: *mut u8, size: usize) -> Result<()>;
    /// Creates a vCPU bound to the calling thread.
    fn create_vcpu(&self) -> Result<Box<dyn Vcpu>>;
    /// True if a vCPU of this VM may be handed to another thread once its own is done
    /// with it (used by one thread at a time), so it can be reused by a later guest
    /// thread. False: a vCPU lives and dies on its creator's thread.
    fn vcpus_portable(&self) -> bool {
        false
    }
}

/// A backend.
pub trait Hypervisor {
    fn create_vm(&self) -> Result<Arc<dyn Vm>>;
}

/// The backend for this host.
pub fn host_backend() -> Result<Box<dyn Hypervisor>> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        Ok(Box::new(emu::Emu))
    }
    #[cfg(all(not(all(target_os = "linux", target_arch = "x86_64")), feature = "hvf"))]
    {
        Ok(Box::new(hvf::Hvf))
    }
    #[cfg(not(any(all(target_os = "linux", target_arch = "x86_64"), feature = "hvf")))]
    {
        Err(BackendError("no vCPU backend for this host".into()))
    }
}
