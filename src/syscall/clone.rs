//! clone and clone3 for threads (a new vCPU on a new host thread over the same RAM), and
//! membarrier.
//!
//! Threads: CLONE_VM | CLONE_THREAD | CLONE_SIGHAND with the fs and files shared (what
//! glibc 2.36 and musl 1.2.3 pass for pthread_create). A child without CLONE_VM (fork),
//! or with CLONE_VFORK, is a new process: `crate::fork::clone_process`. CLONE_VM without
//! CLONE_THREAD or CLONE_VFORK (a process sharing memory) is ENOSYS.
//!
//! The child starts with the parent's registers at the parent's HVC exit (so it resumes
//! at the shim's ERET, returning to the instruction after the SVC) with X0 = 0, SP_EL0
//! from the stack argument, TPIDR_EL0 from CLONE_SETTLS, its own EL1 stack (by vCPU
//! slot) and CONTEXTIDR_EL1 = its tid. Its tid is its host thread's kernel tid. The
//! parent writes CLONE_PARENT_SETTID / CLONE_CHILD_SETTID and registers the thread
//! before the child runs guest code.

use std::sync::{mpsc, Arc};

use super::{Ctx, SysResult, ThreadState};
use crate::backend::{BackendError, Invalidate, Reg, SysReg, Vcpu};
use crate::errno::Errno;
use crate::guest::layout::RAM_SIZE;
use crate::process::Process;
use crate::thread::{self, ThreadShared};

pub const CSIGNAL: u64 = 0xff;
pub const CLONE_VM: u64 = 0x100;
pub const CLONE_FS: u64 = 0x200;
pub const CLONE_FILES: u64 = 0x400;
pub const CLONE_SIGHAND: u64 = 0x800;
pub const CLONE_PTRACE: u64 = 0x2000;
pub const CLONE_VFORK: u64 = 0x4000;
pub const CLONE_PARENT: u64 = 0x8000;
pub const CLONE_THREAD: u64 = 0x10000;
pub const CLONE_SYSVSEM: u64 = 0x40000;
pub const CLONE_SETTLS: u64 = 0x80000;
pub const CLONE_PARENT_SETTID: u64 = 0x100000;
pub const CLONE_CHILD_CLEARTID: u64 = 0x200000;
pub const CLONE_DETACHED: u64 = 0x400000;
pub const CLONE_UNTRACED: u64 = 0x800000;
pub const CLONE_CHILD_SETTID: u64 = 0x1000000;
pub const CLONE_IO: u64 = 0x8000_0000;

/// Flags a thread may carry besides the required ones.
const THREAD_OK: u64 = CLONE_VM
    | CLONE_FS
    | CLONE_FILES
    | CLONE_SIGHAND
    | CLONE_THREAD
    | CLONE_SYSVSEM
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_CLEARTID
    | CLONE_CHILD_SETTID
    | CLONE_DETACHED
    | CLONE_PARENT
    | CLONE_PTRACE
    | CLONE_UNTRACED
    | CLONE_IO;

/// A thread-creation request, from either syscall.
#[derive(Clone, Copy, Debug)]
struct Request {
    flags: u64,
    /// New SP_EL0 (0: the parent's).
    stack: u64,
    parent_tid: u64,
    child_tid: u64,
    tls: u64,
}

fn validate(flags: u64) -> Result<(), Errno> {
    // Linux's own consistency rules first.
    if flags & CLONE_THREAD != 0 && flags & CLONE_SIGHAND == 0
        || flags & CLONE_SIGHAND != 0 && flags & CLONE_VM == 0
    {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_VM == 0 || flags & CLONE_THREAD == 0 || flags & CLONE_VFORK != 0 {
        // fork, vfork, posix_spawn-style children: not yet.
        return Err(Errno::ENOSYS);
    }
    if flags & (CLONE_FS | CLONE_FILES) != CLONE_FS | CLONE_FILES {
        // A thread with its own cwd or fd table: unsupported.
        return Err(Errno::ENOSYS);
    }
    if flags & !(THREAD_OK | CSIGNAL) != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// clone(flags, newsp, parent_tid, tls, child_tid) — AArch64 argument order.
pub fn clone(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let flags = a[0] & 0xffff_ffff;
    // A new process (fork, vfork): the fork-IPC path.
    if flags & CLONE_VM == 0 || flags & CLONE_VFORK != 0 {
        return crate::fork::clone_process(ctx, a);
    }
    validate(flags)?;
    spawn(
        ctx,
        Request {
            flags,
            stack: a[1],
            parent_tid: a[2],
            tls: a[3],
            child_tid: a[4],
        },
    )
}

/// clone3(struct clone_args *, size).
pub fn clone3(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const VER0: u64 = 64;
    const KNOWN: u64 = 88;
    let size = a[1];
    if size < VER0 {
        return Err(Errno::EINVAL);
    }
    if size > 4096 {
        return Err(Errno::E2BIG);
    }
    let mut f = [0u64; 11];
    let n = size.min(KNOWN) as usize;
    let raw = ctx.read_bytes(a[0], n)?;
    for (i, c) in raw.chunks_exact(8).enumerate() {
        f[i] = u64::from_le_bytes(c.try_into().unwrap());
    }
    if size > KNOWN
        && ctx
            .read_bytes(a[0] + KNOWN, (size - KNOWN) as usize)?
            .iter()
            .any(|&b| b != 0)
    {
        return Err(Errno::E2BIG);
    }
    let [flags, _pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, _set_tid, set_tid_size, _cgroup] =
        f;
    if exit_signal > 64 || flags & CSIGNAL != 0 || set_tid_size != 0 {
        return Err(Errno::EINVAL);
    }
    if (stack == 0) != (stack_size == 0) {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_VM == 0 || flags & CLONE_VFORK != 0 {
        // A new process (fork, vfork, posix_spawn): clone's arguments, the exit signal in
        // CSIGNAL, the child's SP at the top of the given stack.
        let sp = if stack == 0 {
            0
        } else {
            stack.wrapping_add(stack_size)
        };
        let a = [flags | exit_signal, sp, parent_tid, tls, child_tid, 0];
        return crate::fork::clone_process(ctx, a);
    }
    validate(flags)?;
    if exit_signal != 0 {
        // A thread has no exit signal.
        return Err(Errno::EINVAL);
    }
    spawn(
        ctx,
        Request {
            flags,
            stack: stack.wrapping_add(stack_size),
            parent_tid,
            tls,
            child_tid,
        },
    )
}

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
        crate::boot::set_el1_state(v, &proc.threads.el1, slot, tid)?;
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

fn spawn(ctx: &mut Ctx, r: Request) -> SysResult {
    let proc = ctx.proc.threads.process().ok_or(Errno::EAGAIN)?;
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
            clear_child_tid: if r.flags & CLONE_CHILD_CLEARTID != 0 {
                r.child_tid
            } else {
                0
            },
            ..Default::default()
        },
        ready: ready_tx,
        go: go_rx,
        creds_touched: super::cred::touched(),
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
    // Known to the signal actor before anyone learns the tid (tgkill right after clone).
    proc.signals.register(shared.clone(), job_mask, false);
    if let Err(e) = proc.threads.register(shared, Some(join)) {
        proc.signals.unregister(tid);
        // The process is exiting: the child sees the closed channel and ends unrun.
        drop(go_tx);
        proc.threads.release_slot(slot);
        return Err(e);
    }
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
    let shared = Arc::new(ThreadShared::new(tid, tid, job.slot, vcpu.kicker()));
    if job.ready.send(Ok(shared.clone())).is_err() || job.go.recv().is_err() {
        return;
    }
    // Registered now: later invalidations reach the new mailbox.
    if let Some((old, seen)) = parked {
        if let Err(e) = thread::catch_up(&proc, vcpu.as_mut(), &old, seen) {
            proc.threads.fatal(tid, e.0);
            proc.threads.finish(&shared, None, None);
            return;
        }
    }
    let mut state = std::mem::take(&mut job.state);
    state.tid = tid;
    super::cred::set_touched(job.creds_touched);
    let code = thread::run_thread(&proc, vcpu.as_mut(), &shared, &mut state);
    proc.threads.finish(&shared, code, Some(vcpu));
}

const MEMBARRIER_CMD_QUERY: u64 = 0;
const MEMBARRIER_CMD_GLOBAL: u64 = 1;
const MEMBARRIER_CMD_GLOBAL_EXPEDITED: u64 = 2;
const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: u64 = 4;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: u64 = 8;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: u64 = 16;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE: u64 = 32;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: u64 = 64;
const SUPPORTED: u64 = MEMBARRIER_CMD_GLOBAL
    | MEMBARRIER_CMD_GLOBAL_EXPEDITED
    | MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED
    | MEMBARRIER_CMD_PRIVATE_EXPEDITED
    | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED
    | MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE
    | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE;

/// membarrier(cmd, flags, cpu_id): every other vCPU of the process is kicked out of guest
/// code (a full barrier for it); SYNC_CORE also drops every vCPU's translated code — the
/// way to publish cross-modified code, since the engine ignores guest `IC IVAU`. Only this
/// process's threads are reached (GLOBAL included): other guest processes are separate
/// host processes.
pub fn membarrier(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    use std::sync::atomic::Ordering::SeqCst;
    let (cmd, flags) = (a[0], a[1]);
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let threads = &ctx.proc.threads;
    let registered = u64::from(threads.membarrier_registered.load(SeqCst));
    let need = |reg: u64| {
        if registered & reg == 0 {
            Err(Errno::EPERM)
        } else {
            Ok(())
        }
    };
    match cmd {
        MEMBARRIER_CMD_QUERY => return Ok(SUPPORTED),
        MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED
        | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED
        | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE => {
            threads.membarrier_registered.fetch_or(cmd as u32, SeqCst);
            return Ok(0);
        }
        MEMBARRIER_CMD_GLOBAL | MEMBARRIER_CMD_GLOBAL_EXPEDITED => {}
        MEMBARRIER_CMD_PRIVATE_EXPEDITED => need(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED)?,
        MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE => {
            need(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE)?;
            let all_code = Invalidate {
                tlb: false,
                code: Some((0, RAM_SIZE)),
            };
            ctx.vcpu.invalidate(all_code).map_err(|_| Errno::EINVAL)?;
            threads.broadcast(ctx.thread.tid, Some(all_code));
            return Ok(0);
        }
        _ => return Err(Errno::EINVAL),
    }
    threads.broadcast(ctx.thread.tid, None);
    Ok(0)
}
