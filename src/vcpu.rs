//! The vCPU loop: runs guest code, answers the shim's HVCs, delivers signals (at every
//! exit: syscall return, kick, fault; see `signal`), resolves interrupted syscalls, and
//! decides when the thread stops. Backend-neutral: it sees only the `Vcpu` trait.

use std::sync::Arc;

use elfuse_shim::{HVC_EL0_FAULT, HVC_SYSCALL};

use crate::backend::{BackendError, Flow, Reg, SysReg, Vcpu, VcpuExit};
use crate::fault;
use crate::guest::mm::MissingPage;
use crate::guest::shimdata::ShimData;
use crate::process::Process;
use crate::signal::frame;
use crate::signal::restart;
use crate::signal::state::MaskOp;
use crate::signal::SigInfo;
use crate::signal::{Disposal, SIGSEGV};
use crate::syscall::ctx::Life;
use crate::syscall::facts::Restart;
use crate::syscall::{self, Ctx, Stop, ThreadState};
use crate::thread::ThreadShared;

/// Runs the thread until it stops. An `Err` is a host-side failure (engine error, or the
/// shim itself faulting), never a guest fault. A thread killed by another's exit_group
/// returns `Stop::ThreadExit(0)` with `me.killed()` set.
pub fn run(
    proc: &Arc<Process>,
    vcpu: &mut dyn Vcpu,
    thread: &mut ThreadState,
    me: &ThreadShared,
    life: &dyn Life,
) -> Result<Stop, BackendError> {
    crate::gdb::thread_started(proc, vcpu, thread.tid)?;
    let end = run_loop(proc, vcpu, thread, me, life);
    crate::gdb::thread_ended(thread.tid);
    end
}

fn run_loop(
    proc: &Arc<Process>,
    vcpu: &mut dyn Vcpu,
    thread: &mut ThreadState,
    me: &ThreadShared,
    life: &dyn Life,
) -> Result<Stop, BackendError> {
    let shim_data = ShimData::new(proc.ram.clone());
    if thread.seccomp.mode != crate::syscall::seccomp::MODE_DISABLED {
        // A fork child or a new thread under seccomp: the shim must forward every call.
        shim_data.set_attention(elfuse_shim::data::ATTN_SECCOMP);
    }
    if let Some(stop) = before_entry(proc, vcpu, me)? {
        return Ok(stop);
    }
    loop {
        // Exits are handled as the backend reports them (the emu backend: from inside its
        // engine) until one ends the thread, or is a clone that must run outside the
        // engine (below).
        let mut end = None;
        let mut deferred = None;
        vcpu.run_with(&mut |vcpu, exit| {
            if is_clone(vcpu, exit) {
                deferred = Some(exit);
                return Flow::Leave;
            }
            match on_exit(proc, vcpu, thread, me, life, &shim_data, exit) {
                Ok(None) => return Flow::Resume,
                Ok(Some(stop)) => end = Some(Ok(stop)),
                Err(e) => end = Some(Err(e)),
            }
            Flow::Leave
        })?;
        if let Some(end) = end {
            return end;
        }
        let Some(exit) = deferred else {
            return Err(BackendError("vCPU left without a reason".into()));
        };
        if let Some(stop) = on_exit(proc, vcpu, thread, me, life, &shim_data, exit)? {
            return Ok(stop);
        }
    }
}

/// clone and clone3 are answered outside the engine: a native fork child goes on running
/// its guest from inside the syscall, and inside the engine's hook every generation of a
/// fork chain would nest one engine call deeper (the engine allows 64, and each level
/// costs host stack).
fn is_clone(vcpu: &mut dyn Vcpu, exit: VcpuExit) -> bool {
    const NR_CLONE: u64 = 220;
    const NR_CLONE3: u64 = 435;
    exit == VcpuExit::Hvc(HVC_SYSCALL) && matches!(vcpu.reg(Reg::X(8)), Ok(NR_CLONE | NR_CLONE3))
}

/// Before every guest entry: the vCPU is marked active and flushes what other vCPUs'
/// shootdowns left it (`Threads::enter`), then the kill flag.
fn before_entry(
    proc: &Process,
    vcpu: &mut dyn Vcpu,
    me: &ThreadShared,
) -> Result<Option<Stop>, BackendError> {
    proc.threads.enter(me, vcpu)?;
    Ok(me.killed().then_some(Stop::ThreadExit(0)))
}

/// One exit: answers it, delivers pending signals (resolving an interrupted syscall),
/// and says whether the thread stops.
fn on_exit(
    proc: &Arc<Process>,
    vcpu: &mut dyn Vcpu,
    thread: &mut ThreadState,
    me: &ThreadShared,
    life: &dyn Life,
    shim_data: &ShimData,
    exit: VcpuExit,
) -> Result<Option<Stop>, BackendError> {
    // A syscall that a signal interrupted (its restart code and original X0).
    let mut interrupted = None;
    proc.threads.leave(me);
    crate::signal::hostsig::start_if_due();
    match exit {
        VcpuExit::Hvc(HVC_SYSCALL) => {
            let (nr, args) = vcpu.syscall_regs()?;
            // One event per syscall that reached the host (the shim answers the rest):
            // `RUST_LOG=elfuse::exit=trace` shows which calls exit.
            tracing::trace!(target: "elfuse::exit", nr, "syscall exit");
            refill_ring(proc, shim_data, nr);
            let tid = thread.tid;
            crate::gdb::syscall_entered(vcpu, tid);
            let mut ctx = Ctx::new(proc, thread, vcpu, life);
            let ret = syscall::dispatch::dispatch(&mut ctx, nr, args);
            crate::gdb::syscall_done(tid);
            if let Some(stop) = ctx.stop {
                return Ok(Some(stop));
            }
            if let Some(ret) = ret {
                let r = syscall::table::lookup(nr).map_or(Restart::No, |d| d.facts.restart);
                let (ret, intr) = restart::classify(r, &args, ret);
                vcpu.set_reg(Reg::X(0), ret)?;
                interrupted = intr;
            }
            proc.threads.sync_mappings(&proc.mm, me, vcpu)?;
        }
        VcpuExit::Hvc(HVC_EL0_FAULT) => {
            if let Some(stop) = on_fault(proc, vcpu, thread)? {
                return Ok(Some(stop));
            }
        }
        VcpuExit::Hvc(imm) => {
            let esr = vcpu.sys_reg(SysReg::EsrEl1).unwrap_or(0);
            let elr = vcpu.sys_reg(SysReg::ElrEl1).unwrap_or(0);
            let far = vcpu.sys_reg(SysReg::FarEl1).unwrap_or(0);
            let pc = vcpu.reg(Reg::Pc).unwrap_or(0);
            return Err(BackendError(format!(
                "shim reported HVC #{imm} (pc {pc:#x}, ESR_EL1 {esr:#x}, ELR_EL1 {elr:#x}, FAR_EL1 {far:#x})"
            )));
        }
        VcpuExit::Kicked => {
            // Stopped anywhere in guest code: delivery needs the HVC exit's shape,
            // and is skipped without it (a signal raised meanwhile waits for the
            // next exit).
            if !proc.signals.maybe_deliverable() || !resume_through_eret(vcpu)? {
                crate::gdb::after_exit(proc, vcpu, thread.tid, exit)?;
                return before_entry(proc, vcpu, me);
            }
        }
        VcpuExit::Debug => {
            // A debugger's stop at an EL0 instruction (see `gdb`).
            crate::gdb::on_debug_exit(proc, vcpu, thread.tid)?;
            return before_entry(proc, vcpu, me);
        }
    }
    if let Some(stop) = deliver_pending(proc, vcpu, thread, interrupted)? {
        return Ok(Some(stop));
    }
    crate::gdb::after_exit(proc, vcpu, thread.tid, exit)?;
    before_entry(proc, vcpu, me)
}

/// A kick stopped the vCPU in guest code, but signal delivery (like the syscall path)
/// works on the state the shim leaves at an HVC: the guest's PC in ELR_EL1, its PSTATE in
/// SPSR_EL1, resuming through an `ERET`. Synthesizes that exception entry: EL1h at the
/// shim's lone `ERET` (`enter_el0`), which returns exactly where the guest was (or to a
/// handler, once a frame is built). False if the vCPU was inside the shim (EL1, where
/// ELR_EL1 is live): it is left alone, and the signal waits for its next exit (the
/// actor's retry kicks it again).
fn resume_through_eret(vcpu: &mut dyn Vcpu) -> Result<bool, BackendError> {
    static ERET: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    const EL1H_MASKED: u64 = 0x3c5;
    let pstate = vcpu.reg(Reg::Pstate)?;
    if (pstate >> 2) & 3 != 0 {
        return Ok(false);
    }
    let pc = vcpu.reg(Reg::Pc)?;
    let eret = *ERET
        .get_or_init(|| crate::guest::layout::SHIM_CODE + elfuse_shim::build().enter_el0 as u64);
    // Both stack pointers read while at EL0 and written back once at EL1h: a PSTATE
    // write does not switch the banked SP (the engine's current SP would stay the guest's
    // and the next ERET would leave it in SP_EL1).
    let sp0 = vcpu.sys_reg(SysReg::SpEl0)?;
    let sp1 = vcpu.sys_reg(SysReg::SpEl1)?;
    vcpu.set_sys_reg(SysReg::ElrEl1, pc)?;
    vcpu.set_sys_reg(SysReg::SpsrEl1, pstate)?;
    vcpu.set_reg(Reg::Pstate, EL1H_MASKED)?;
    vcpu.set_sys_reg(SysReg::SpEl1, sp1)?;
    vcpu.set_sys_reg(SysReg::SpEl0, sp0)?;
    vcpu.set_reg(Reg::Pc, eret)?;
    Ok(true)
}

/// Keeps the shim's random ring from running dry; the urandom-refill actor is its only
/// writer. Any syscall that reaches the host while the ring is below the low-water mark
/// nudges the actor, which tops it up on its own thread. If it ran dry anyway (the shim
/// forwarded a read, readv or getrandom for want of bytes), this thread asks for a fill
/// and waits: the actor is flat-combining, so when idle its handler runs right here,
/// under the actor's ownership (a consumer outrunning the actor thread is not left on
/// the slow path).
fn refill_ring(proc: &Process, shim_data: &ShimData, nr: u64) {
    const NR_READ: u64 = 63;
    const NR_READV: u64 = 65;
    const NR_GETRANDOM: u64 = 278;
    use elfuse_actors::urandom::RefillMsg;
    let level = shim_data.fill_level();
    if level as usize >= crate::image::RING_LOW_WATER {
        return;
    }
    if matches!(nr, NR_READ | NR_READV | NR_GETRANDOM) && level < elfuse_shim::data::MAX_FAST_READ {
        proc.entropy.call(RefillMsg::Fill);
    } else if proc.entropy.queued() == 0 {
        proc.entropy.tell(RefillMsg::Check);
    }
}

/// A synchronous EL0 fault: run the guest's handler if it has an unblocked one,
/// otherwise the process dies of the signal (Linux's force_sig_fault).
fn on_fault(
    proc: &Process,
    vcpu: &mut dyn Vcpu,
    thread: &mut ThreadState,
) -> Result<Option<Stop>, BackendError> {
    let esr = vcpu.sys_reg(SysReg::EsrEl1)?;
    let insn = {
        let pc = vcpu.sys_reg(SysReg::ElrEl1)?;
        let ok = proc.mm.check_user(pc, 4, false).is_ok();
        ok.then(|| {
            let mut b = [0u8; 4];
            proc.ram.read(pc, &mut b);
            u32::from_le_bytes(b)
        })
    };
    if crate::cpuid::emulate_mrs(vcpu, esr, insn)? {
        return Ok(None);
    }
    let far = vcpu.sys_reg(SysReg::FarEl1)?;
    let pc = vcpu.sys_reg(SysReg::ElrEl1)?;
    let mut f = fault::classify(esr, far, pc);
    if fault::is_translation(&f) {
        match proc.mm().missing_page(f.addr) {
            // A mapped file grew over the page: run the access again.
            MissingPage::Mapped => return Ok(None),
            page => f = fault::refine_segv(f, page),
        }
    }
    tracing::debug!(
        esr = format_args!("{esr:#x}"),
        far = format_args!("{far:#x}"),
        pc = format_args!("{pc:#x}"),
        signo = f.signo,
        "guest fault"
    );
    if proc.tracer.set.syscalls {
        proc.tracer.line(&format!(
            "[{}] --- signal {} {{si_code={}, si_addr={:#x}}} at pc {pc:#x} ---",
            thread.tid, f.signo, f.code, f.addr
        ));
    }
    // A debugger sees the signal first; without one it goes on as raised.
    if crate::gdb::on_signal(proc, vcpu, thread.tid, f.signo)?.is_none() {
        // gdb discarded it: the instruction runs again (as under ptrace).
        return Ok(None);
    }
    let Some((act, old_mask)) = proc.signals.fault(thread.tid, f.signo) else {
        return Ok(Some(killed(proc, thread, f.signo)));
    };
    thread.sigmask = crate::signal::handler_mask(old_mask, &act, f.signo);
    let info = SigInfo {
        signo: f.signo,
        code: f.code,
        addr: Some(f.addr),
        esr: fault::frame_esr(&f, esr),
        ..Default::default()
    };
    let tramp = proc.sigreturn_tramp();
    if !frame::deliver(
        proc,
        vcpu,
        &mut thread.altstack,
        &act,
        &info,
        old_mask,
        tramp,
    )? {
        return Ok(Some(killed(proc, thread, SIGSEGV)));
    }
    Ok(None)
}

/// Acts on every signal this thread can take (each handler frame nests on the previous),
/// then resolves an interrupted syscall (`restart`) and a temporary mask the syscall left
/// to restore (`ThreadState::saved_mask`: the first frame records it, so the handler's
/// sigreturn restores it; with no handler it is restored here).
fn deliver_pending(
    proc: &Process,
    vcpu: &mut dyn Vcpu,
    thread: &mut ThreadState,
    mut interrupted: Option<restart::Interrupted>,
) -> Result<Option<Stop>, BackendError> {
    let mut saved = thread.saved_mask.take();
    // One atomic load on the way back to the guest unless some thread has something.
    while proc.signals.maybe_deliverable() {
        let (next, mask) = proc.signals.take(thread.tid);
        thread.sigmask = mask;
        match next {
            None => break,
            Some(Disposal::Kill(sig)) => {
                if crate::gdb::on_signal(proc, vcpu, thread.tid, sig)?.is_none() {
                    continue;
                }
                return Ok(Some(killed(proc, thread, sig)));
            }
            Some(Disposal::Stop(sig)) => {
                if proc.tracer.set.syscalls {
                    proc.tracer
                        .line(&format!("[{}] --- stopped by signal {sig} ---", thread.tid));
                }
                crate::signal::jobctl::stop(sig);
            }
            Some(Disposal::Handle {
                act,
                info,
                old_mask,
            }) => {
                if crate::gdb::on_signal(proc, vcpu, thread.tid, info.signo)?.is_none() {
                    // gdb discarded it: as if it had never been sent.
                    thread.sigmask = old_mask;
                    proc.signals.set_mask(thread.tid, MaskOp::Set(old_mask));
                    continue;
                }
                if proc.tracer.set.syscalls {
                    proc.tracer.line(&format!(
                        "[{}] --- signal {} {{si_code={}}} ---",
                        thread.tid, info.signo, info.code
                    ));
                }
                if let Some(i) = interrupted.take() {
                    restart::apply(vcpu, i, Some(&act))?;
                }
                let old_mask = saved.take().unwrap_or(old_mask);
                let (alt, tramp) = (&mut thread.altstack, proc.sigreturn_tramp());
                if !frame::deliver(proc, vcpu, alt, &act, &info, old_mask, tramp)? {
                    return Ok(Some(killed(proc, thread, SIGSEGV)));
                }
            }
        }
    }
    if let Some(i) = interrupted {
        restart::apply(vcpu, i, None)?;
    }
    if let Some(m) = saved {
        thread.sigmask = m;
        proc.signals.set_mask(thread.tid, MaskOp::Set(m));
    }
    Ok(None)
}

fn killed(proc: &Process, thread: &ThreadState, sig: u32) -> Stop {
    if proc.tracer.set.syscalls {
        proc.tracer
            .line(&format!("[{}] +++ killed by signal {sig} +++", thread.tid));
    }
    Stop::Signal(sig)
}
