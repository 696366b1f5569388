//! Starting a guest thread (clone/clone3 with CLONE_THREAD, asked through
//! `syscall::ctx::Life`): the child starts from the parent's registers at its HVC exit, on
//! a vCPU left by an exited thread or a new one, on a new host thread whose kernel tid is
//! its tid. The parent registers it and writes the tid pointers before it runs guest code.

use std::sync::{mpsc, Arc};

use super::{ThreadShared, ThreadState};
use crate::backend::{BackendError, Reg, SysReg, Vcpu};
use crate::errno::Errno;
use crate::process::Process;
use crate::syscall::clone::{
    CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_FILES, CLONE_FS, CLONE_PARENT_SETTID,
    CLONE_SETTLS,
};
use crate::syscall::ctx::ThreadArgs as Request;
use crate::syscall::{Ctx, SysResult};
use crate::thread;

/// The parent's registers at its HVC exit: what the child starts from.
struct Snapshot {
    x: [u64; 31],
    pc: u64,
    fpcr: u64,
    fpsr: u64,
    v: [u128; 32],
    elr: u64,
    spsr: u64,
    sp_el0: u64,
    tpidr: u64,
    tpidrro: u64,
}

impl Snapshot {
    fn take(v: &dyn Vcpu) -> Result<Self, BackendError> {
        let mut s = Snapshot {
            x: [0; 31],
            pc: v.reg(Reg::Pc)?,
            fpcr: v.reg(Reg::Fpcr)?,
            fpsr: v.reg(Reg::Fpsr)?,
            v: [0; 32],
            elr: v.sys_reg(SysReg::ElrEl1)?,
            spsr: v.sys_reg(SysReg::SpsrEl1)?,
            sp_el0: v.sys_reg(SysReg::SpEl0)?,
            tpidr: v.sys_reg(SysReg::TpidrEl0)?,
            tpidrro: v.sys_reg(SysReg::TpidrroEl0)?,
        };
        for n in 0..31 {
            s.x[n] = v.reg(Reg::X(n as u8))?;
        }
        for n in 0..32 {
            s.v[n] = v.simd_reg(n as u8)?;
        }
        Ok(s)
    }

    fn restore(
        &self,
        v: &mut dyn Vcpu,
        proc: &Process,
        slot: usize,
        tid: i32,
        r: &Request,
    ) -> Result<(), BackendError> {
        crate::image::set_el1_state(v, &proc.threads.el1, slot, tid)?;
        for n in 0..31 {
            v.set_reg(Reg::X(n as u8), if n == 0 { 0 } else { self.x[n] })?;
        }
        for n in 0..32 {
            v.set_simd_reg(n as u8, self.v[n])?;
        }
        v.set_reg(Reg::Fpcr, self.fpcr)?;
        v.set_reg(Reg::Fpsr, self.fpsr)?;
        v.set_sys_reg(SysReg::ElrEl1, self.elr)?;
        v.set_sys_reg(SysReg::SpsrEl1, self.spsr)?;
        let sp = if r.stack != 0 { r.stack } else { self.sp_el0 };
        v.set_sys_reg(SysReg::SpEl0, sp)?;
        let tls = if r.flags & CLONE_SETTLS != 0 {
            r.tls
        } else {
            self.tpidr
        };
        v.set_sys_reg(SysReg::TpidrEl0, tls)?;
        v.set_sys_reg(SysReg::TpidrroEl0, self.tpidrro)?;
        v.set_reg(Reg::Pc, self.pc)
    }
}

type ReadyMsg = Result<Arc<ThreadShared>, ()>;

/// What a new vCPU thread needs to start a guest thread.
pub struct Job {
    slot: usize,
    snap: Snapshot,
    req: Request,
    state: ThreadState,
    ready: mpsc::SyncSender<ReadyMsg>,
    go: mpsc::Receiver<()>,
    /// The creator changed its credentials (see `cred`): the new thread has them too.
    creds_touched: bool,
    /// A vCPU an exited thread left (its engine and translated code are warm).
    idle: Option<thread::IdleVcpu>,
}

pub fn spawn(ctx: &mut Ctx, r: Request) -> SysResult {
    let proc = ctx.proc.clone();
    let snap = Snapshot::take(ctx.vcpu).map_err(|e| {
        tracing::warn!("clone: reading the parent's registers: {e}");
        Errno::EAGAIN
    })?;
    let slot = proc.threads.reserve_slot()?;
    let (ready_tx, ready_rx) = mpsc::sync_channel::<ReadyMsg>(1);
    let (go_tx, go_rx) = mpsc::sync_channel::<()>(1);
    let job_mask = ctx.thread.sigmask;
    let job = Job {
        slot,
        snap,
        req: r,
        state: ThreadState {
            sigmask: ctx.thread.sigmask,
            comm: ctx.thread.comm,
            dumpable: ctx.thread.dumpable,
            seccomp: ctx.thread.seccomp.inherit(),
            // Shared, or copies without CLONE_FILES / CLONE_FS.
            own: crate::syscall::clone_own::for_new_thread(
                ctx,
                r.flags & CLONE_FILES != 0,
                r.flags & CLONE_FS != 0,
            ),
            clear_child_tid: if r.flags & CLONE_CHILD_CLEARTID != 0 {
                r.child_tid
            } else {
                0
            },
            ..Default::default()
        },
        ready: ready_tx,
        go: go_rx,
        creds_touched: crate::syscall::cred::touched(),
        idle: proc.threads.take_idle(),
    };
    // Always a new host thread: its kernel tid is the guest tid, so a tid is not reused
    // before the kernel's cyclic allocation comes back to it (as on Linux), and the host
    // thread is gone when the guest thread is. It inherits the creator's credentials.
    let p2 = proc.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("vcpu{slot}"))
        .stack_size(crate::thread::VCPU_STACK)
        .spawn(move || child_main(p2, job));
    let join = match spawned {
        Ok(j) => j,
        Err(e) => {
            tracing::warn!("clone: host thread: {e}");
            proc.threads.release_slot(slot);
            return Err(Errno::EAGAIN);
        }
    };
    let shared = match ready_rx.recv() {
        Ok(Ok(s)) => s,
        _ => {
            let _ = join.join();
            proc.threads.release_slot(slot);
            return Err(Errno::EAGAIN);
        }
    };
    let tid = shared.tid();
    // In the registry (its handle in the directory), then known to the signal actor,
    // before anyone learns the tid (tgkill right after clone).
    if let Err(e) = proc.threads.register(shared, Some(join)) {
        // The process is exiting: the child sees the closed channel and ends unrun.
        drop(go_tx);
        proc.threads.release_slot(slot);
        return Err(e);
    }
    proc.signals.register(tid, job_mask, false);
    // Like Linux, a failed write to either tid pointer does not fail the clone.
    if r.flags & CLONE_PARENT_SETTID != 0 {
        let _ = ctx.write_val(r.parent_tid, &tid);
    }
    if r.flags & CLONE_CHILD_SETTID != 0 {
        let _ = ctx.write_val(r.child_tid, &tid);
    }
    let _ = go_tx.send(());
    Ok(tid as u64)
}

/// A vCPU thread: runs one guest thread, whose tid is the host thread's. The vCPU is a
/// parked one when there was one, else new; when the guest thread exits alone it is
/// parked for a later thread (`Threads::finish`) and the host thread ends.
fn child_main(proc: Arc<Process>, mut job: Job) {
    let tid = thread::host_tid();
    let (mut vcpu, parked) = match job.idle.take() {
        Some(i) => (i.vcpu, Some((i.old, i.seen))),
        None => match proc.threads.vm.create_vcpu() {
            Ok(v) => (v, None),
            Err(e) => {
                tracing::warn!("clone: new vCPU: {e}");
                let _ = job.ready.send(Err(()));
                return;
            }
        },
    };
    if let Err(e) = job
        .snap
        .restore(vcpu.as_mut(), &proc, job.slot, tid, &job.req)
    {
        tracing::warn!("clone: setting up the vCPU: {e}");
        let _ = job.ready.send(Err(()));
        return;
    }
    let own_fs = job.req.flags & CLONE_FS == 0;
    if let Err(e) = crate::syscall::clone_own::start_thread(&proc, tid, &job.state.own, own_fs) {
        tracing::warn!("clone: the thread's own fs context: {e:?}");
        let _ = job.ready.send(Err(()));
        return;
    }
    let shared = Arc::new(ThreadShared::new(tid, tid, job.slot, vcpu.kicker()));
    if job.ready.send(Ok(shared.clone())).is_err() || job.go.recv().is_err() {
        return;
    }
    // Registered now: later invalidations reach the new mailbox.
    if let Some((old, seen)) = parked {
        if let Err(e) = thread::run::catch_up(&proc, vcpu.as_mut(), &old, seen) {
            proc.threads.fatal(tid, e.0);
            proc.threads.finish(&shared, None, None);
            return;
        }
    }
    let mut state = std::mem::take(&mut job.state);
    state.tid = tid;
    crate::syscall::cred::set_touched(job.creds_touched);
    let code = thread::run::run_thread(&proc, vcpu.as_mut(), &shared, &mut state);
    proc.threads.finish(&shared, code, Some(vcpu));
}
