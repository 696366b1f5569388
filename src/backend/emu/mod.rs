//! The emulated-CPU backend: unicorn-engine 2.1.5 (QEMU TCG), vendored and patched so that
//! AArch64 exceptions are taken architecturally and only HVC/SMC leave the guest — the
//! same exit model as Hypervisor.framework (see third_party/unicorn-engine-sys/PATCHES).
//!
//! One unicorn instance per vCPU, created on the vCPU's thread; all instances map the same
//! host memory. An HVC reaches the `UC_HOOK_INTR` callback, which calls the
//! [`Vcpu::run_with`] exit handler itself (`run` is `run_with` leaving at the first
//! exit) and, when it says `Resume`, simply returns: QEMU goes on with the shim after the
//! HVC without leaving `uc_emu_start` (no cpu_exec exit/entry, no resume_all_vcpus per
//! syscall). The patched
//! engine even calls the hook from inside the translated block (PATCHES 11: no longjmp
//! out of the block for the HVC either).
//! Register writes of PC from the handler (signal delivery, sigreturn, execve) make
//! unicorn leave the current block and resume at the new PC, still inside the call.
//!
//! Files: `kick.rs` (stopping a vCPU from another thread), `run.rs` (the hooks and the
//! `run_with` loop), `regs.rs` (register access), `tests.rs`.

mod kick;
mod regs;
mod run;

use std::ffi::c_void;
use std::panic::resume_unwind;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};

use uc::{uc_engine, Arch, Arm64CpuModel, HookType, Mode, Prot, RegisterARM64};
use unicorn_engine_sys as uc;

use super::{
    BackendError, CodeLog, DebugConfig, ExitHandler, Flow, Hypervisor, Invalidate, Kick, Reg,
    Result, SysReg, Vcpu, VcpuExit, Vm,
};
pub use kick::init_process;
use kick::KickState;
use run::{on_code, on_intr, on_translate, run_with_raw, ExitSlot, LogSink};

/// QEMU's exception number for HVC as seen by UC_HOOK_INTR (SMC, 13, and anything else
/// reaching the hook is unexpected: the shim never raises them).
const EXCP_HVC: u32 = 11;

/// SCR_EL3: RW (EL1 is AArch64) | HCE (HVC enabled). Unicorn's CPUs have EL2/EL3 and reset
/// SCR_EL3 to 0, which would make EL1 AArch32 and HVC undefined.
const SCR_EL3_VALUE: u64 = (1 << 10) | (1 << 8);
const SCR_EL3: (u8, u8, u8, u8, u8) = (3, 6, 1, 1, 0);

fn check(e: uc::uc_error, what: &str) -> Result<()> {
    if e == uc::uc_error::OK {
        Ok(())
    } else {
        Err(BackendError(format!("unicorn: {what}: {e:?}")))
    }
}

pub struct Emu;

impl Hypervisor for Emu {
    fn create_vm(&self) -> Result<Arc<dyn Vm>> {
        Ok(Arc::new(EmuVm {
            regions: Mutex::new(Vec::new()),
            vcpus_created: AtomicBool::new(false),
        }))
    }
}

struct Region {
    gpa: u64,
    host: usize,
    size: usize,
}

pub struct EmuVm {
    regions: Mutex<Vec<Region>>,
    vcpus_created: AtomicBool,
}

impl Vm for EmuVm {
    unsafe fn map_memory(&self, gpa: u64, host: *mut u8, size: usize) -> Result<()> {
        if self.vcpus_created.load(SeqCst) {
            // Each vCPU is its own engine; growing the physical map of live ones would
            // need a cross-thread protocol. The guest model maps all RAM up front.
            return Err(BackendError("emu: map memory before creating vCPUs".into()));
        }
        crate::backend::busfault::note_region(gpa, host as usize, size);
        self.regions.lock().unwrap().push(Region {
            gpa,
            host: host as usize,
            size,
        });
        Ok(())
    }

    fn create_vcpu(&self) -> Result<Box<dyn Vcpu>> {
        self.vcpus_created.store(true, SeqCst);
        let regions = self.regions.lock().unwrap();
        Ok(Box::new(EmuVcpu::new(&regions)?))
    }

    /// A unicorn engine keeps no thread-local state (the vendored QEMU's only one is
    /// guest-random's, unused): any thread may run it, one at a time.
    fn vcpus_portable(&self) -> bool {
        true
    }
}

pub struct EmuVcpu {
    uc: *mut uc_engine,
    /// The engine's X0..X30 (`elfuse_uc_arm64_xregs`): syscall arguments and results
    /// without a trip through `uc_reg_read`'s register switch.
    xregs: *mut u64,
    kick: Arc<KickState>,
    exit: Box<ExitSlot>,
    /// Where the engine reports the blocks it translates (`log_translations`); the
    /// engine holds a raw pointer to it while set.
    code_log: Option<Box<LogSink>>,
    /// The code hook, while a debugger watches this vCPU (`set_debug`).
    code_hook: Option<uc::uc_hook>,
    /// `set_debug` from inside the engine: the hook changes at the next engine entry.
    hook_change: bool,
}

impl EmuVcpu {
    fn new(regions: &[Region]) -> Result<Self> {
        let mut h: *mut uc_engine = std::ptr::null_mut();
        check(
            // SAFETY: uc_open writes the new engine's handle into `h`, a local.
            unsafe { uc::uc_open(Arch::ARM64, Mode::ARM, &mut h) },
            "open",
        )?;
        let mut v = EmuVcpu {
            uc: h,
            xregs: std::ptr::null_mut(),
            kick: Arc::new(KickState {
                uc: h,
                pending: AtomicBool::new(false),
                running: AtomicBool::new(false),
            }),
            exit: Box::default(),
            code_log: None,
            code_hook: None,
            hook_change: false,
        };
        check(
            // SAFETY: `h` is the engine just opened, not yet running.
            unsafe { uc::elfuse_uc_set_cpu_model(h, Arm64CpuModel::MAX as i32) },
            "set cpu model",
        )?;
        // The softmmu's page is the guest's (4 KiB granule): unicorn's AArch64 default is
        // QEMU's ARM minimum, 1 KiB, which took four TLB entries, four refills and a
        // page-crossing slow path at every 1 KiB boundary for each guest page, and ended
        // translated blocks at 1 KiB boundaries.
        check(
            // SAFETY: `h` is this engine's live handle, not yet initialised (the page size
            // must be set before the first memory map); the size is an integer.
            unsafe { uc::elfuse_uc_set_page_size(h, crate::guest::layout::PAGE_SIZE as u32) },
            "set page size",
        )?;
        check(
            // SAFETY: `h` is the engine just opened, not yet running.
            unsafe { uc::uc_arm64_native_exceptions(h, true) },
            "native exceptions",
        )?;
        for r in regions {
            check(
                // SAFETY: `h` is the engine just opened; each region was registered by
                // Vm::map_memory, whose caller promised the host range stays mapped for the
                // VM's life.
                unsafe {
                    uc::uc_mem_map_ptr(h, r.gpa, r.size as u64, Prot::ALL.0, r.host as *mut c_void)
                },
                "map memory",
            )?;
        }
        let mut hook: uc::uc_hook = 0;
        let cb: unsafe extern "C" fn(*mut uc_engine, u32, *mut c_void) = on_intr;
        check(
            // SAFETY: `h` is the engine just opened; the user data is the vCPU's boxed
            // ExitSlot (a stable heap address that lives until the vCPU, which closes the
            // engine on drop); `cb` has the signature unicorn calls INTR hooks with.
            unsafe {
                uc::uc_hook_add(
                    h,
                    &mut hook,
                    HookType::INTR.0 as i32,
                    cb as *mut c_void,
                    (&mut *v.exit as *mut ExitSlot).cast(),
                    1,
                    0,
                )
            },
            "hook",
        )?;
        v.cp_write(SCR_EL3, SCR_EL3_VALUE)?;
        // The guest model never enables SVE (CPACR_EL1.ZEN off, hidden from ID registers
        // and HWCAPs); without it in the engine, exception entry and return skip SVE
        // bookkeeping (PATCHES 10).
        // SAFETY: `h` is the engine just opened, not yet running.
        check(unsafe { uc::elfuse_uc_arm64_hide_sve(h) }, "hide SVE")?;
        // SAFETY: `h` is the engine just opened; the returned register-file pointer is
        // checked for null below and lives as long as the engine.
        v.xregs = unsafe { uc::elfuse_uc_arm64_xregs(h) };
        if v.xregs.is_null() {
            return Err(BackendError("unicorn: no register file".into()));
        }
        Ok(v)
    }

    /// An exception other than HVC reached the hook (the shim never raises one).
    fn check_unexpected(&self) -> Result<()> {
        match self.exit.unexpected {
            Some(n) => Err(BackendError(format!(
                "emu: unexpected exception {n} at pc {:#x}",
                self.raw_read(RegisterARM64::PC)?
            ))),
            None => Ok(()),
        }
    }

    /// Installs the code hook if the debug config is active, removes it if not.
    fn change_hook(&mut self) -> Result<()> {
        self.hook_change = false;
        match (self.exit.debug.is_active(), self.code_hook) {
            (true, None) => {
                let mut hook: uc::uc_hook = 0;
                let cb: unsafe extern "C" fn(*mut uc_engine, u64, u32, *mut c_void) = on_code;
                use crate::guest::layout::{INFRA_BASE, NULL_GUARD_END};
                check(
                    // SAFETY: this vCPU's engine, outside emulation; the callback's data
                    // is the boxed exit slot, which lives as long as the engine.
                    unsafe {
                        uc::uc_hook_add(
                            self.uc,
                            &mut hook,
                            HookType::CODE.0 as i32,
                            cb as *mut c_void,
                            (&mut *self.exit as *mut ExitSlot).cast(),
                            NULL_GUARD_END,
                            INFRA_BASE - 1,
                        )
                    },
                    "code hook",
                )?;
                self.code_hook = Some(hook);
                // A skip recorded at an entry made while nothing was watched is stale.
                self.exit.debug_skip = None;
                // Blocks translated without the hook must go (hooks are compiled in).
                // SAFETY: as above.
                check(unsafe { uc::elfuse_uc_flush_tb(self.uc) }, "flush tb")
            }
            (false, Some(hook)) => {
                self.code_hook = None;
                // SAFETY: this vCPU's engine, outside emulation; `hook` is its own.
                check(unsafe { uc::uc_hook_del(self.uc, hook) }, "code hook")?;
                // SAFETY: as above.
                check(unsafe { uc::elfuse_uc_flush_tb(self.uc) }, "flush tb")
            }
            _ => Ok(()),
        }
    }

    /// The handler said `Leave`: re-raise its panic if that is why.
    fn finish_run_with(&mut self) -> Result<()> {
        if let Some(p) = self.exit.panic.take() {
            resume_unwind(p);
        }
        Ok(())
    }
}

impl Vcpu for EmuVcpu {
    fn reg(&self, r: Reg) -> Result<u64> {
        match r {
            // SAFETY: xregs has 32 entries and the vCPU is stopped (we are on its thread,
            // outside guest code).
            Reg::X(n) if n < 31 => Ok(unsafe { self.xregs.add(n.into()).read() }),
            _ => self.raw_read(Self::gpr(r)?),
        }
    }

    fn syscall_regs(&self) -> Result<(u64, [u64; 6])> {
        // SAFETY: as in `reg`.
        let x = |n: usize| unsafe { self.xregs.add(n).read() };
        Ok((x(8), [x(0), x(1), x(2), x(3), x(4), x(5)]))
    }

    fn set_reg(&mut self, r: Reg, v: u64) -> Result<()> {
        if let Reg::X(n @ 0..=30) = r {
            // SAFETY: as in `reg`; X registers have no side effects in the engine.
            unsafe { self.xregs.add(n.into()).write(v) };
            return Ok(());
        }
        self.raw_write(Self::gpr(r)?, v)?;
        if r == Reg::Pstate {
            // Writing PSTATE does not rebuild QEMU's cached hflags; any CP_REG write does.
            self.cp_write(SCR_EL3, SCR_EL3_VALUE)?;
        }
        Ok(())
    }

    fn sys_reg(&self, r: SysReg) -> Result<u64> {
        if self.is_current_sp(r)? {
            return self.raw_read(RegisterARM64::SP);
        }
        match Self::direct(r) {
            Some(id) => self.raw_read(id),
            None => self.cp_read(r.encoding()),
        }
    }

    fn set_sys_reg(&mut self, r: SysReg, v: u64) -> Result<()> {
        if self.is_current_sp(r)? {
            return self.raw_write(RegisterARM64::SP, v);
        }
        match Self::direct(r) {
            Some(id) => self.raw_write(id, v),
            None => self.cp_write(r.encoding(), v),
        }
    }

    fn simd_reg(&self, n: u8) -> Result<u128> {
        if n > 31 {
            return Err(BackendError(format!("no register V{n}")));
        }
        let mut v = 0u128;
        let id = RegisterARM64::V0 as i32 + i32::from(n);
        check(
            // SAFETY: our engine, not running; `v` is a u128, the size unicorn writes for a V
            // register.
            unsafe { uc::uc_reg_read(self.uc, id, (&mut v as *mut u128).cast()) },
            "simd read",
        )?;
        Ok(v)
    }

    fn set_simd_reg(&mut self, n: u8, v: u128) -> Result<()> {
        if n > 31 {
            return Err(BackendError(format!("no register V{n}")));
        }
        let id = RegisterARM64::V0 as i32 + i32::from(n);
        check(
            // SAFETY: our engine, not running; `v` is a u128 it reads.
            unsafe { uc::uc_reg_write(self.uc, id, (&v as *const u128).cast()) },
            "simd write",
        )
    }

    fn run(&mut self) -> Result<VcpuExit> {
        // run_with's loop, leaving at the first exit (the one kick protocol for both).
        let mut first = None;
        self.run_with(&mut |_, exit| {
            first = Some(exit);
            Flow::Leave
        })?;
        first.ok_or_else(|| BackendError("emu: vCPU left without an exit".into()))
    }

    fn run_with(&mut self, on_exit: &mut ExitHandler<'_>) -> Result<()> {
        // SAFETY: only the lifetime is erased; the pointer is dropped from the exit slot
        // before this call returns and the handler lives on the caller's stack.
        let on_exit: *mut ExitHandler<'static> = unsafe { std::mem::transmute(on_exit) };
        // SAFETY: `self` is a live vCPU on this thread (exclusively borrowed for the call)
        // and `on_exit` outlives the call, as run_with_raw requires.
        unsafe { run_with_raw(self, on_exit) }
    }

    fn kicker(&self) -> Arc<dyn Kick> {
        self.kick.clone()
    }

    fn invalidate(&mut self, what: Invalidate) -> Result<()> {
        if what.tlb {
            // SAFETY: `self.uc` is our engine, not running (we hold `&mut self`).
            check(unsafe { uc::elfuse_uc_flush_tlb(self.uc) }, "flush tlb")?;
        }
        if what.code.is_some() {
            // Translated blocks are keyed by physical address and the range may already
            // be unmapped (so a VA-based removal cannot find them): drop them all.
            // SAFETY: `self.uc` is our engine, not running.
            check(unsafe { uc::elfuse_uc_flush_tb(self.uc) }, "flush tb")?;
        }
        Ok(())
    }

    fn set_debug(&mut self, cfg: &DebugConfig) -> Result<()> {
        self.exit.debug = cfg.clone();
        if cfg.is_active() == self.code_hook.is_some() {
            self.hook_change = false;
            return Ok(());
        }
        if self.exit.target.is_some() {
            // Called from inside the engine (a hook's handler): adding or removing a hook
            // and flushing the blocks there is not safe, so the engine leaves at its next
            // block start, before any further guest instruction, and `run_with` re-enters
            // it with the hook changed.
            self.hook_change = true;
            // SAFETY: this vCPU's engine, on its thread.
            unsafe { uc::uc_emu_stop(self.uc) };
            return Ok(());
        }
        self.change_hook()
    }

    fn log_translations(&mut self, log: Option<Arc<CodeLog>>, budget: u32) {
        let sink = log.map(|log| {
            Box::new(LogSink {
                log,
                left: budget.into(),
            })
        });
        let opaque = sink
            .as_deref()
            .map_or(std::ptr::null_mut(), |s| s as *const LogSink as *mut c_void);
        let cb = sink
            .is_some()
            .then_some(on_translate as unsafe extern "C" fn(_, _, _));
        // SAFETY: our engine, not running; `opaque` points at the boxed LogSink that
        // `self.code_log` keeps alive until the callback is replaced (or null with no
        // callback).
        unsafe { uc::elfuse_uc_on_translate(self.uc, cb, opaque) };
        self.code_log = sink;
    }

    fn pretranslate(&mut self, pc: u64, key: u32) -> bool {
        // SAFETY: `self.uc` is our engine, not running.
        unsafe { uc::elfuse_uc_arm64_pretranslate(self.uc, pc, key) == 1 }
    }
}

impl Drop for EmuVcpu {
    fn drop(&mut self) {
        // SAFETY: `self.uc` was opened by EmuVcpu::new and is closed only here, once.
        unsafe { uc::uc_close(self.uc) };
    }
}

#[cfg(test)]
mod tests;
