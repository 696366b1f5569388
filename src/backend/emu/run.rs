//! Running a vCPU: the hooks the engine calls (HVC exits, the debugger's code hook, the
//! translation log) and the `run_with` loop around `uc_emu_start`.

use std::any::Any;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::{Release, SeqCst};
use std::sync::Arc;

use uc::{uc_engine, RegisterARM64};
use unicorn_engine_sys as uc;

use super::kick::set_running;
use super::{check, EmuVcpu, EXCP_HVC};
use crate::backend::{CodeLog, DebugConfig, ExitHandler, Flow, Result, VcpuExit};

/// Written by the interrupt hook, read by `run_with`.
#[derive(Default)]
pub(super) struct ExitSlot {
    pub(super) unexpected: Option<u32>,
    /// Set for the length of a `run_with`: the hook hands exits to this handler.
    pub(super) target: Option<HookTarget>,
    /// The handler said `Leave` (or panicked) inside the hook.
    pub(super) left: bool,
    /// A panic of the handler inside the hook, re-raised once `uc_emu_start` returned
    /// (unwinding through the engine's C frames is not possible).
    pub(super) panic: Option<Box<dyn Any + Send>>,
    /// What a debugger watches (`Vcpu::set_debug`); read by the code hook.
    pub(super) debug: DebugConfig,
    /// The PC `uc_emu_start` last entered at: the code hook's first call there is the
    /// instruction a stop left the guest at, which resuming must execute, not stop at.
    pub(super) debug_skip: Option<u64>,
}

/// The vCPU and handler of the `run_with` in progress. Raw pointers: both live on the
/// stack of `run_with`, which outlives every hook call it makes.
#[derive(Clone, Copy)]
pub(super) struct HookTarget {
    vcpu: *mut EmuVcpu,
    on_exit: *mut ExitHandler<'static>,
}

/// A [`CodeLog`] and how many more blocks may be reported to it.
pub(super) struct LogSink {
    pub(super) log: Arc<CodeLog>,
    pub(super) left: std::cell::Cell<u32>,
}

/// The engine's translation callback: one hint per new block, while the budget lasts.
pub(super) unsafe extern "C" fn on_translate(sink: *mut c_void, pc: u64, flags: u32) {
    // SAFETY: the LogSink the vCPU keeps boxed while the callback is set; only this
    // vCPU's thread runs the engine.
    let s = unsafe { &*(sink as *const LogSink) };
    if s.left.get() > 0 {
        s.left.set(s.left.get() - 1);
        s.log.push(pc, flags);
    }
}

pub(super) unsafe extern "C" fn on_intr(uc: *mut uc_engine, intno: u32, user: *mut c_void) {
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
pub(super) unsafe extern "C" fn on_code(
    uc: *mut uc_engine,
    addr: u64,
    _size: u32,
    user: *mut c_void,
) {
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
    let _host = crate::backend::busfault::running(None);
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
pub(super) unsafe fn run_with_raw(
    me: *mut EmuVcpu,
    on_exit: *mut ExitHandler<'static>,
) -> Result<()> {
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
                let _g = crate::backend::busfault::running(Some(uc));
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
