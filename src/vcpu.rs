//! The vCPU loop: runs guest code, answers the shim's HVCs, delivers signals, and decides
//! when the thread stops. Backend-neutral: it sees only the `Vcpu` trait.

use elfuse_shim::{HVC_EL0_FAULT, HVC_SYSCALL};

use crate::backend::{BackendError, Flow, Reg, SysReg, Vcpu, VcpuExit};
use crate::fault;
use crate::guest::shimdata::ShimData;
use crate::process::Process;
use crate::sigframe::{self, SigInfo};
use crate::signal::{Disposal, SIGSEGV};
use crate::syscall::{self, Ctx, Stop, ThreadState};
use crate::thread::ThreadShared;

/// Runs the thread until it stops. An `Err` is a host-side failure (engine error, or the
/// shim itself faulting), never a guest fault. A thread killed by another's exit_group
/// returns `Stop::ThreadExit(0)` with `me.killed()` set.
pub fn run(
    proc: &Process,
    vcpu: &mut dyn Vcpu,
    thread: &mut ThreadState,
    me: &ThreadShared,
) -> Result<Stop, BackendError> {
    let shim_data = ShimData::new(proc.ram.clone());
    if let Some(stop) = before_entry(vcpu, me)? {
        return Ok(stop);
    }
    // Exits are handled as the backend reports them (the emu backend: from inside its
    // engine) until one ends the thread.
    let mut end = None;
    vcpu.run_with(&mut |vcpu, exit| {
        match on_exit(proc, vcpu, thread, me, &shim_data, exit) {
            Ok(None) => return Flow::Resume,
            Ok(Some(stop)) => end = Some(Ok(stop)),
            Err(e) => end = Some(Err(e)),
        }
        Flow::Leave
    })?;
    end.unwrap_or_else(|| Err(BackendError("vCPU left without a reason".into())))
}

/// Before every guest entry: invalidations other vCPUs posted, then the kill flag.
fn before_entry(vcpu: &mut dyn Vcpu, me: &ThreadShared) -> Result<Option<Stop>, BackendError> {
    me.apply_mail(vcpu)?;
    Ok(me.killed().then_some(Stop::ThreadExit(0)))
}

/// One exit: answers it, delivers pending signals, and says whether the thread stops.
fn on_exit(
    proc: &Process,
    vcpu: &mut dyn Vcpu,
    thread: &mut ThreadState,
    me: &ThreadShared,
    shim_data: &ShimData,
    exit: VcpuExit,
) -> Result<Option<Stop>, BackendError> {
    match exit {
        VcpuExit::Hvc(HVC_SYSCALL) => {
            let (nr, args) = vcpu.syscall_regs()?;
            // One event per syscall that reached the host (the shim answers the rest):
            // `RUST_LOG=elfuse::exit=trace` shows which calls exit.
            tracing::trace!(target: "elfuse::exit", nr, "syscall exit");
            refill_ring(proc, shim_data, nr);
            let mut ctx = Ctx::new(proc, thread, vcpu);
            let ret = syscall::dispatch(&mut ctx, nr, args);
            if let Some(stop) = ctx.stop {
                return Ok(Some(stop));
            }
            if let Some(ret) = ret {
                vcpu.set_reg(Reg::X(0), ret)?;
            }
            proc.threads.sync_mappings(proc, me, vcpu)?;
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
        VcpuExit::Kicked => {}
    }
    if let Some(stop) = deliver_pending(proc, vcpu, thread)? {
        return Ok(Some(stop));
    }
    // A pending signal must keep the shim forwarding (so the next syscall exits and
    // delivers it). Masks are per thread, so any pending signal keeps every thread
    // forwarding: whichever has it unblocked reaches the host and takes it. Until a
    // signal actor owns this, recompute here.
    let pending = proc.signals().pending != 0;
    shim_data.sync_sigtimer(pending);
    // The vDSO's clocks must also fall back, so a loop of clock_gettime reaches the
    // host and takes its signal (TRACE is not mirrored: Linux's strace does not see
    // vDSO calls either).
    let want = if pending {
        elfuse_shim::data::ATTN_SIGTIMER
    } else {
        0
    };
    if proc.vdso.attention() != want {
        proc.vdso.mirror_attention(&proc.mm(), want);
    }
    before_entry(vcpu, me)
}

/// Keeps the shim's random ring from running dry. Any syscall that reaches the host
/// while the ring is below the low-water mark nudges the urandom-refill actor, which tops
/// it up off this thread. If it ran dry anyway (the shim forwarded a read, readv or
/// getrandom for want of bytes), this thread refills it before answering.
fn refill_ring(proc: &Process, shim_data: &ShimData, nr: u64) {
    const NR_READ: u64 = 63;
    const NR_READV: u64 = 65;
    const NR_GETRANDOM: u64 = 278;
    let level = shim_data.fill_level();
    if level as usize >= crate::boot::RING_LOW_WATER {
        return;
    }
    if matches!(nr, NR_READ | NR_READV | NR_GETRANDOM) && level < elfuse_shim::data::MAX_FAST_READ {
        if let Err(e) = shim_data.refill_from_host() {
            tracing::warn!("random ring refill failed: {e}");
        }
    } else if proc.entropy.queued() == 0 {
        proc.entropy.tell(elfuse_actors::urandom::RefillMsg::Check);
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
        let ok = proc.mm().check_user(pc, 4, false).is_ok();
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
    let f = fault::classify(esr, far, pc);
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
    let handled = {
        let mut s = proc.signals();
        s.fault_handled(f.signo, thread.sigmask)
            .then(|| s.begin_handler(f.signo, &mut thread.sigmask))
    };
    let Some((act, old_mask)) = handled else {
        return Ok(Some(killed(proc, thread, f.signo)));
    };
    let info = SigInfo {
        signo: f.signo,
        code: f.code,
        addr: Some(f.addr),
        esr: Some(esr),
        ..Default::default()
    };
    if !sigframe::deliver(proc, vcpu, &act, &info, old_mask, proc.sigreturn_tramp())? {
        return Ok(Some(killed(proc, thread, SIGSEGV)));
    }
    Ok(None)
}

/// Acts on every pending, unblocked signal (each handler frame nests on the previous).
fn deliver_pending(
    proc: &Process,
    vcpu: &mut dyn Vcpu,
    thread: &mut ThreadState,
) -> Result<Option<Stop>, BackendError> {
    loop {
        let next = proc.signals().take_deliverable(&mut thread.sigmask);
        match next {
            None => return Ok(None),
            Some(Disposal::Kill(sig)) => return Ok(Some(killed(proc, thread, sig))),
            Some(Disposal::Handle {
                act,
                info,
                old_mask,
            }) => {
                if proc.tracer.set.syscalls {
                    proc.tracer.line(&format!(
                        "[{}] --- signal {} {{si_code={}}} ---",
                        thread.tid, info.signo, info.code
                    ));
                }
                if !sigframe::deliver(proc, vcpu, &act, &info, old_mask, proc.sigreturn_tramp())? {
                    return Ok(Some(killed(proc, thread, SIGSEGV)));
                }
            }
        }
    }
}

fn killed(proc: &Process, thread: &ThreadState, sig: u32) -> Stop {
    if proc.tracer.set.syscalls {
        proc.tracer
            .line(&format!("[{}] +++ killed by signal {sig} +++", thread.tid));
    }
    Stop::Signal(sig)
}
