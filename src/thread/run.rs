//! Running a guest thread to its end: the vCPU loop (`crate::vcpu`), then the exit path
//! (CLONE_CHILD_CLEARTID, the robust list, the slot, the process's end). Above the syscall
//! layer: everything else in `thread` is state below it.

use std::sync::Arc;

use super::{host_tid, Gens, ThreadShared, ThreadState};
use crate::backend::{BackendError, Invalidate, Vcpu};
use crate::process::Process;
use crate::syscall::ctx::{Life, ThreadArgs};
use crate::syscall::{Ctx, SysResult};
use crate::thread::Stop;

/// What the syscall layer asks of process life (`syscall::ctx::Life`), done here, above
/// it: new threads, new processes, a native fork child's run.
pub struct RunLife;

impl Life for RunLife {
    fn spawn_thread(&self, ctx: &mut Ctx, args: ThreadArgs) -> SysResult {
        super::spawn::spawn(ctx, args)
    }

    fn fork(&self, ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
        crate::fork::clone_process(ctx, a)
    }

    fn run_leader(
        &self,
        proc: &Arc<Process>,
        vcpu: &mut dyn Vcpu,
        thread: &mut ThreadState,
    ) -> Result<Stop, String> {
        run_as_leader(proc, vcpu, thread)
    }
}

/// Runs a guest thread on the current host thread until it stops. A lone `exit` clears
/// CLONE_CHILD_CLEARTID and walks the robust list and returns its code; exit_group or a
/// fatal signal stops the whole process. The slot is freed; the caller then `finish`es.
pub fn run_thread(
    proc: &Arc<Process>,
    vcpu: &mut dyn Vcpu,
    me: &ThreadShared,
    state: &mut ThreadState,
) -> Option<i32> {
    let end = crate::vcpu::run(proc, vcpu, state, me, &RunLife);
    // Out of guest code for good (before the slot, and so its active bit, is reused).
    proc.threads.leave(me);
    // Its own pending signals go with it (it was registered with the signal actor before
    // its tid became known: boot, clone, fork).
    proc.signals.unregister(me.tid());
    // The vCPU does not run this thread again: its EL1 stack is free for a new one.
    proc.threads.release_slot(me.slot);
    match end {
        _ if me.killed() => {
            crate::syscall::futex::thread_gone(proc, state);
            None
        }
        Ok(Stop::ThreadExit(c)) => {
            crate::syscall::futex::thread_exit_cleanup(proc, state);
            Some(c)
        }
        Ok(stop) => {
            proc.threads.group_exit(me.tid(), stop);
            crate::syscall::futex::thread_gone(proc, state);
            None
        }
        Err(e) => {
            tracing::error!(tid = me.tid(), "vCPU failed: {e}");
            proc.threads.fatal(me.tid(), e.0);
            None
        }
    }
}

/// Runs the calling host thread's vCPU as the first thread of a new process (a fork
/// child, whose vCPU is stopped inside the shim): registers it in the vCPU slot whose EL1
/// stack it is on, runs it, then waits for every thread the child creates.
pub fn run_as_leader(
    proc: &Arc<Process>,
    vcpu: &mut dyn Vcpu,
    state: &mut ThreadState,
) -> Result<Stop, String> {
    use crate::guest::layout::{EL1_STACKS, EL1_STACK_SIZE};
    let sp = vcpu
        .sys_reg(crate::backend::SysReg::SpEl1)
        .map_err(|e| e.0)?;
    let slot = (sp.saturating_sub(EL1_STACKS + 1) / EL1_STACK_SIZE) as usize;
    proc.threads
        .reserve_slot_at(slot)
        .map_err(|e| format!("vCPU slot {slot}: {e:?}"))?;
    let me = Arc::new(ThreadShared::new(
        state.tid,
        host_tid(),
        slot,
        vcpu.kicker(),
    ));
    proc.threads
        .register(me.clone(), None)
        .map_err(|e| format!("registering the first thread: {e:?}"))?;
    proc.signals.register(me.tid(), state.sigmask, true);
    let code = run_thread(proc, vcpu, &me, state);
    proc.threads.finish(&me, code, None);
    proc.threads.wait()
}

/// Brings a reused vCPU up to date: what was posted to its last thread's mailbox, a TLB
/// flush, and a code flush if code changed anywhere while it was parked.
pub fn catch_up(
    proc: &Process,
    vcpu: &mut dyn Vcpu,
    old: &ThreadShared,
    seen: Gens,
) -> Result<(), BackendError> {
    old.apply_mail(vcpu)?;
    let now = proc.threads.gens();
    vcpu.invalidate(Invalidate {
        tlb: true,
        code: (now.1 != seen.1).then_some((0, crate::guest::layout::RAM_SIZE)),
    })
}
