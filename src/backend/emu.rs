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

use std::any::Any;
use std::ffi::c_void;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Relaxed, Release, SeqCst};
use std::sync::{Arc, Mutex};

use uc::{uc_engine, Arch, Arm64CpuModel, HookType, Mode, Prot, RegisterARM64, RegisterARM64CP};
use unicorn_engine_sys as uc;

use super::{
    BackendError, CodeLog, DebugConfig, ExitHandler, Flow, Hypervisor, Invalidate, Kick, Reg,
    Result, SysReg, Vcpu, VcpuExit, Vm,
};

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
    fn name(&self) -> &'static str {
        "emu (unicorn 2.1.5, patched)"
    }
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
        super::busfault::note_region(gpa, host as usize, size);
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

/// Shared between the vCPU thread and kickers.
struct KickState {
    uc: *mut uc_engine,
    pending: AtomicBool,
    running: AtomicBool,
}

// uc_emu_stop may be called from any thread (it sets a flag and exits the CPU loop).
// SAFETY: the only field that is not Send is the engine pointer, and the only thing done with
// it through a KickState is uc_emu_stop, which unicorn documents as callable from any thread
// (it sets the engine's exit request and is async-signal-safe).
unsafe impl Send for KickState {}
// SAFETY: shared access is the atomics plus uc_emu_stop on `uc` (thread-safe, see Send
// above); nothing else reads or writes the engine through this type.
unsafe impl Sync for KickState {}

/// membarrier(2) commands.
const MEMBARRIER_GLOBAL: libc::c_long = 1;
const MEMBARRIER_PRIVATE_EXPEDITED: libc::c_long = 8;
const MEMBARRIER_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 16;

/// membarrier(2): true if it succeeded.
fn membarrier(cmd: libc::c_long) -> bool {
    // SAFETY: a syscall with no pointer arguments.
    unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0, 0) == 0 }
}

/// The kick protocol is a Dekker pair: the vCPU stores `running` then loads `pending`,
/// a kicker stores `pending` then loads `running`, and one of them must see the other.
/// The vCPU's side runs at every forwarded syscall, the kicker's only for signals and
/// invalidations, so when the host allows it the full barrier is all on the kicker's
/// side: a private expedited membarrier (every thread of the process that is running
/// passes a full barrier) lets the vCPU use a plain store and a compiler fence.
///
/// Call once before the process starts any thread: registering costs microseconds then
/// and a whole RCU grace period (~10 ms) once other threads exist. The registration is
/// inherited by fork children. Without this call kicks use SeqCst on both sides.
pub fn init_process() {
    ASYMMETRIC.store(membarrier(MEMBARRIER_REGISTER_PRIVATE_EXPEDITED), Relaxed);
    super::busfault::install();
}

/// The kicker's half of the barrier (see `init_process`).
fn heavy_fence() {
    if !membarrier(MEMBARRIER_PRIVATE_EXPEDITED) {
        // A forked child whose registration was not inherited: register, retry.
        membarrier(MEMBARRIER_REGISTER_PRIVATE_EXPEDITED);
        if !membarrier(MEMBARRIER_PRIVATE_EXPEDITED) {
            membarrier(MEMBARRIER_GLOBAL);
        }
    }
}

/// The vCPU's half: `running = true`, ordered before its next load of `pending` (see
/// `init_process`).
#[inline(always)]
fn set_running(kick: &KickState) {
    if ASYMMETRIC.load(Relaxed) {
        kick.running.store(true, Relaxed);
        std::sync::atomic::compiler_fence(SeqCst);
    } else {
        kick.running.store(true, SeqCst);
    }
}

/// Whether `init_process` registered the membarrier (see there).
static ASYMMETRIC: AtomicBool = AtomicBool::new(false);

impl Kick for KickState {
    fn kick(&self) {
        self.arm();
        self.barrier();
        self.settle();
    }

    fn arm(&self) {
        self.pending.store(true, SeqCst);
    }

    /// One barrier covers every `arm` before it (membarrier reaches every thread).
    fn barrier(&self) {
        if ASYMMETRIC.load(Relaxed) {
            heavy_fence();
        }
    }

    fn settle(&self) {
        // A stop that lands while uc_emu_start is still entering is lost (it clears the
        // stop request): repeat until the vCPU has consumed the kick or is not running.
        while self.pending.load(SeqCst) && self.running.load(SeqCst) {
            // SAFETY: `self.uc` is the engine this KickState was created with; the vCPU
            // owning it drops its KickState (an Arc the vCPU holds) only after uc_close, and
            // uc_emu_stop only sets the engine's stop request, which is safe from another
            // thread.
            unsafe { uc::uc_emu_stop(self.uc) };
            std::thread::sleep(std::time::Duration::from_micros(20));
        }
    }
}

/// Written by the interrupt hook, read by `run_with`.
#[derive(Default)]
struct ExitSlot {
    unexpected: Option<u32>,
    /// Set for the length of a `run_with`: the hook hands exits to this handler.
    target: Option<HookTarget>,
    /// The handler said `Leave` (or panicked) inside the hook.
    left: bool,
    /// A panic of the handler inside the hook, re-raised once `uc_emu_start` returned
    /// (unwinding through the engine's C frames is not possible).
    panic: Option<Box<dyn Any + Send>>,
    /// What a debugger watches (`Vcpu::set_debug`); read by the code hook.
    debug: DebugConfig,
    /// The PC `uc_emu_start` last entered at: the code hook's first call there is the
    /// instruction a stop left the guest at, which resuming must execute, not stop at.
    debug_skip: Option<u64>,
}

/// The vCPU and handler of the `run_with` in progress. Raw pointers: both live on the
/// stack of `run_with`, which outlives every hook call it makes.
#[derive(Clone, Copy)]
struct HookTarget {
    vcpu: *mut EmuVcpu,
    on_exit: *mut ExitHandler<'static>,
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

/// A [`CodeLog`] and how many more blocks may be reported to it.
struct LogSink {
    log: Arc<CodeLog>,
    left: std::cell::Cell<u32>,
}

/// The engine's translation callback: one hint per new block, while the budget lasts.
unsafe extern "C" fn on_translate(sink: *mut c_void, pc: u64, flags: u32) {
    // SAFETY: the LogSink the vCPU keeps boxed while the callback is set; only this
    // vCPU's thread runs the engine.
    let s = unsafe { &*(sink as *const LogSink) };
    if s.left.get() > 0 {
        s.left.set(s.left.get() - 1);
        s.log.push(pc, flags);
    }
}

unsafe extern "C" fn on_intr(uc: *mut uc_engine, intno: u32, user: *mut c_void) {
    let slot = user as *mut ExitSlot;
    match intno {
        EXCP_HVC => {
            // PC is already past the HVC; the syndrome holds its immediate.
            // SAFETY: `uc` is the engine invoking this hook on its own thread, stopped at the
            // HVC exception; reading the syndrome only reads its CPU state.
            let imm = unsafe { uc::elfuse_uc_arm64_syndrome(uc) } as u16;
            // Emulation runs only inside run_with, which sets the target: answer the
            // exit here and let QEMU continue after the HVC.
            // SAFETY: `slot` is the vCPU's boxed ExitSlot registered with this hook (alive
            // and at a fixed address as long as the engine); the hook runs on the vCPU's
            // thread while run_with_raw holds no reference into the slot, so this raw access
            // aliases nothing.
            match unsafe { (*slot).target } {
                // SAFETY: `t` was stored by the run_with_raw in progress on this thread (the
                // hook only fires inside its uc_emu_start), which is handle's contract.
                Some(t) if unsafe { handle(t, VcpuExit::Hvc(imm)) } == Flow::Resume => return,
                // SAFETY: the vCPU's boxed ExitSlot, as above; no reference into it is live.
                Some(_) => unsafe { (*slot).left = true },
                // SAFETY: the vCPU's boxed ExitSlot, as above; no reference into it is live.
                None => unsafe { (*slot).unexpected = Some(intno) },
            }
        }
        // SAFETY: the vCPU's boxed ExitSlot, as above; no reference into it is live.
        other => unsafe { (*slot).unexpected = Some(other) },
    }
    // SAFETY: `uc` is the engine invoking this hook; stopping it from inside its own hook is
    // the documented way to end uc_emu_start.
    unsafe { uc::uc_emu_stop(uc) };
}

/// The code hook, installed only while a debugger watches this vCPU (`set_debug`) and
/// only over the guest user range (the shim, at EL1 above it, is never hooked): a
/// [`VcpuExit::Debug`] before a watched EL0 instruction.
unsafe extern "C" fn on_code(uc: *mut uc_engine, addr: u64, _size: u32, user: *mut c_void) {
    let slot = user as *mut ExitSlot;
    // SAFETY: the vCPU's boxed exit slot, alive while its engine runs on this thread; no
    // reference into it is held across the handler, which may change it (set_debug).
    let hit = unsafe {
        if (*slot).debug_skip.take() == Some(addr) {
            return;
        }
        (*slot).debug.step || (*slot).debug.breakpoints.contains(&addr)
    };
    if !hit {
        return;
    }
    // SAFETY: as above; the target is the run_with in progress on this thread.
    match unsafe { (*slot).target } {
        // SAFETY: the target is the run_with in progress on this thread (handle's contract).
        Some(t) if unsafe { handle(t, VcpuExit::Debug) } == Flow::Resume => return,
        // SAFETY: as above.
        Some(_) => unsafe { (*slot).left = true },
        None => return,
    }
    // The hook is followed by an exit-request check: the instruction does not run.
    // SAFETY: `uc` is the engine calling this hook.
    unsafe { uc::uc_emu_stop(uc) };
}

/// Calls the handler for `exit` and then once more ([`VcpuExit::Kicked`]) for every kick
/// that landed while it ran. `running` is false meanwhile, so a kicker never waits for a
/// handler (which may block in a host syscall); on `Resume` it is true again and no kick
/// is pending, so the next kick stops the engine as usual.
///
/// # Safety
/// `t` must come from the `run_with` in progress on this thread.
unsafe fn handle(t: HookTarget, mut exit: VcpuExit) -> Flow {
    // SAFETY: the vCPU outlives its run_with; the kick state is shared, never moved.
    let kick = unsafe { &*Arc::as_ptr(&(*t.vcpu).kick) };
    // No fence needed here: a kicker that still sees `running` only makes a spare
    // uc_emu_stop, which ends in a Kicked exit like its pending flag would.
    kick.running.store(false, Release);
    // A host fault from here on is elfuse's own, not the guest's (`busfault`).
    let _host = super::busfault::running(None);
    loop {
        // SAFETY: `t.on_exit` and `t.vcpu` point at run_with's handler and vCPU, live for
        // this whole call (handle's contract); the engine is inside a hook, so nothing else
        // holds a reference to the vCPU while the handler has it.
        let r = catch_unwind(AssertUnwindSafe(|| unsafe {
            (*t.on_exit)(&mut *t.vcpu, exit)
        }));
        match r {
            Ok(Flow::Resume) => {}
            Ok(Flow::Leave) => return Flow::Leave,
            Err(p) => {
                // SAFETY: `t.vcpu` is live (handle's contract); the handler's borrow ended
                // with the closure.
                unsafe { (*t.vcpu).exit.panic = Some(p) };
                return Flow::Leave;
            }
        }
        // Enter-side half of the kick protocol; `set_running` orders it before the
        // load of `pending` (a plain load: the swap's locked cycle only when set).
        set_running(kick);
        if !kick.pending.load(SeqCst) || !kick.pending.swap(false, SeqCst) {
            return Flow::Resume;
        }
        kick.running.store(false, Release);
        exit = VcpuExit::Kicked;
    }
}

/// The body of [`Vcpu::run_with`], on a raw pointer: the hook also reaches the vCPU
/// through it while `uc_emu_start` runs.
///
/// # Safety
/// `me` is a live vCPU on this thread; `on_exit` outlives the call.
unsafe fn run_with_raw(me: *mut EmuVcpu, on_exit: *mut ExitHandler<'static>) -> Result<()> {
    let t = HookTarget { vcpu: me, on_exit };
    // SAFETY: `me` is live for this call (the contract); the KickState sits in an Arc the
    // vCPU keeps until it drops, so the reference cannot dangle while the loop runs.
    let kick = unsafe { &*Arc::as_ptr(&(*me).kick) };
    loop {
        // Enter-side half of the kick protocol (see KickState::kick).
        kick.running.store(true, SeqCst);
        if kick.pending.swap(false, SeqCst) {
            // SAFETY: `t` holds this call's own vCPU and handler, which outlive the call.
            if unsafe { handle(t, VcpuExit::Kicked) } == Flow::Leave {
                // SAFETY: `me` is live and not borrowed elsewhere: the engine is not running.
                return unsafe { (*me).finish_run_with() };
            }
            continue;
        }
        // SAFETY: `me` is live and owned by this thread, the engine is stopped, so this is
        // the only access to its exit slot and registers.
        let (uc, pc) = unsafe {
            let slot = &mut *(*me).exit;
            slot.unexpected = None;
            slot.left = false;
            slot.target = Some(t);
            ((*me).uc, (*me).raw_read(RegisterARM64::PC))
        };
        if let Ok(pc) = pc {
            // SAFETY: as above (`me` is live on this thread; the engine is not running).
            unsafe {
                if (*me).hook_change {
                    if let Err(e) = (*me).change_hook() {
                        kick.running.store(false, SeqCst);
                        (*me).exit.target = None;
                        return Err(e);
                    }
                }
                (*me).exit.debug_skip = Some(pc);
            }
        }
        let r = match pc {
            // SAFETY: `uc` is this vCPU's open engine with guest RAM mapped; the hooks it may
            // call reach the vCPU only through `t`, set in the exit slot just above.
            Ok(pc) => unsafe {
                let _g = super::busfault::running(Some(uc));
                uc::uc_emu_start(uc, pc, 0, 0, 0)
            },
            Err(e) => {
                kick.running.store(false, SeqCst);
                // SAFETY: `me` is live and the engine is stopped: no hook can access the slot
                // concurrently.
                unsafe { (*me).exit.target = None };
                return Err(e);
            }
        };
        kick.running.store(false, SeqCst);
        // SAFETY: the engine has returned: this thread is the only one touching `me` again.
        unsafe { (*me).exit.target = None };
        // SAFETY: as for the line above.
        let left = unsafe { (*me).exit.left };
        if left {
            // SAFETY: `me` is live and the engine is stopped.
            return unsafe { (*me).finish_run_with() };
        }
        check(r, "emulation")?;
        // SAFETY: `me` is live and the engine is stopped.
        unsafe { (*me).check_unexpected()? };
        // SAFETY: `t` is this call's own vCPU and handler (handle's contract).
        if kick.pending.swap(false, SeqCst) && unsafe { handle(t, VcpuExit::Kicked) } == Flow::Leave
        {
            // SAFETY: `me` is live and the engine is stopped.
            return unsafe { (*me).finish_run_with() };
        }
        // Otherwise a stale stop request from an earlier kick: just resume.
    }
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

    fn raw_read(&self, id: RegisterARM64) -> Result<u64> {
        let mut v = 0u64;
        check(
            // SAFETY: `self.uc` is this vCPU's open engine, not running (we hold `&mut
            // self`); `v` is a u64, the size unicorn writes for an X/system register.
            unsafe { uc::uc_reg_read(self.uc, id as i32, (&mut v as *mut u64).cast()) },
            "reg read",
        )?;
        Ok(v)
    }

    fn raw_write(&mut self, id: RegisterARM64, v: u64) -> Result<()> {
        check(
            // SAFETY: as in raw_read: our engine, a u64 it reads.
            unsafe { uc::uc_reg_write(self.uc, id as i32, (&v as *const u64).cast()) },
            "reg write",
        )
    }

    fn cp(enc: (u8, u8, u8, u8, u8), val: u64) -> RegisterARM64CP {
        let (op0, op1, crn, crm, op2) = enc;
        RegisterARM64CP {
            crn: crn.into(),
            crm: crm.into(),
            op0: op0.into(),
            op1: op1.into(),
            op2: op2.into(),
            val,
        }
    }

    fn cp_read(&self, enc: (u8, u8, u8, u8, u8)) -> Result<u64> {
        let mut r = Self::cp(enc, 0);
        check(
            // SAFETY: our engine, not running; `r` is the uc_arm64_cp_reg the call fills.
            unsafe {
                uc::uc_reg_read(
                    self.uc,
                    RegisterARM64::CP_REG as i32,
                    (&mut r as *mut RegisterARM64CP).cast(),
                )
            },
            "sysreg read",
        )?;
        Ok(r.val)
    }

    fn cp_write(&mut self, enc: (u8, u8, u8, u8, u8), val: u64) -> Result<()> {
        let r = Self::cp(enc, val);
        check(
            // SAFETY: our engine, not running; `r` is a uc_arm64_cp_reg it reads.
            unsafe {
                uc::uc_reg_write(
                    self.uc,
                    RegisterARM64::CP_REG as i32,
                    (&r as *const RegisterARM64CP).cast(),
                )
            },
            "sysreg write",
        )
    }

    /// QEMU keeps the stack pointer in use in SP and only banks it into SP_ELx on an
    /// exception level change: SP_EL0/SP_EL1 must go through SP when they are current.
    fn is_current_sp(&self, r: SysReg) -> Result<bool> {
        if !matches!(r, SysReg::SpEl0 | SysReg::SpEl1) {
            return Ok(false);
        }
        let pstate = self.raw_read(RegisterARM64::PSTATE)?;
        let (el, spsel) = ((pstate >> 2) & 3, pstate & 1);
        let current = if el == 0 || spsel == 0 {
            SysReg::SpEl0
        } else {
            SysReg::SpEl1
        };
        Ok(el <= 1 && current == r)
    }

    fn direct(r: SysReg) -> Option<RegisterARM64> {
        Some(match r {
            SysReg::ElrEl1 => RegisterARM64::ELR_EL1,
            SysReg::EsrEl1 => RegisterARM64::ESR_EL1,
            SysReg::FarEl1 => RegisterARM64::FAR_EL1,
            SysReg::SpEl0 => RegisterARM64::SP_EL0,
            SysReg::SpEl1 => RegisterARM64::SP_EL1,
            SysReg::VbarEl1 => RegisterARM64::VBAR_EL1,
            SysReg::TpidrEl0 => RegisterARM64::TPIDR_EL0,
            SysReg::TpidrroEl0 => RegisterARM64::TPIDRRO_EL0,
            SysReg::TpidrEl1 => RegisterARM64::TPIDR_EL1,
            SysReg::Ttbr0El1 => RegisterARM64::TTBR0_EL1,
            SysReg::Ttbr1El1 => RegisterARM64::TTBR1_EL1,
            SysReg::MairEl1 => RegisterARM64::MAIR_EL1,
            SysReg::CpacrEl1 => RegisterARM64::CPACR_EL1,
            _ => return None,
        })
    }

    fn gpr(r: Reg) -> Result<RegisterARM64> {
        Ok(match r {
            Reg::X(29) => RegisterARM64::X29,
            Reg::X(30) => RegisterARM64::X30,
            Reg::X(n) if n < 29 => {
                // X0..X28 are contiguous in unicorn's numbering.
                let id = RegisterARM64::X0 as u32 + u32::from(n);
                // SAFETY: RegisterARM64 is repr(u32) and X0+n (n < 29) is X<n>.
                unsafe { std::mem::transmute::<u32, RegisterARM64>(id) }
            }
            Reg::X(n) => return Err(BackendError(format!("no register X{n}"))),
            Reg::Pc => RegisterARM64::PC,
            Reg::Pstate => RegisterARM64::PSTATE,
            Reg::Fpcr => RegisterARM64::FPCR,
            Reg::Fpsr => RegisterARM64::FPSR,
        })
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
#[path = "emu_tests.rs"]
mod tests;
