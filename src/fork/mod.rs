//! fork, vfork and clone without CLONE_VM: a child guest process is a new host process.
//! Two ways (see ARCHITECTURE.md "Processes"): on Linux by default the host process
//! forks itself (`native`; guest RAM is private anonymous memory, copied on write by
//! fork()); with `ELFUSE_FORK=spawn` (the portable way, the only one where a VM cannot
//! be forked) it is `elfuse --fork-child FD`, which receives the parent's state over a
//! Unix socket (`state`, `wire`). What the child inherits is described once, for both
//! ways, by `inherit::Inheritance`. Either way the child resumes the
//! guest right after the syscall with X0 = 0, and the parent gets the child's pid (guest
//! pids are host pids). Other vCPUs of the parent are paused meanwhile (`crate::thread::pause`).
//!
//! Memory on the spawn path: while the calling vCPU is stopped in the syscall, its
//! populated RAM extents (lseek SEEK_DATA/SEEK_HOLE) are copied into a new memfd
//! (`copy_file_range`, falling back to `pwrite` from the mapping), which becomes the
//! child's RAM: a private snapshot at the moment of fork. Page tables live in RAM and
//! come with it. MAP_SHARED file mappings are mapped again in the child over the same
//! files (shared, as on Linux); MAP_SHARED|MAP_ANONYMOUS memory is a memfd overlay too,
//! so it stays shared. Nothing here needs the VM itself to be forkable, so the scheme
//! works on macOS too.
//!
//! vfork (CLONE_VFORK, with or without CLONE_VM) is fork + waiting until the child
//! closes its end of the handover socket, which it does at a successful execve or when
//! it exits. The child has its own copy of memory, which is what a correct vfork child
//! may assume anyway.
//!
//! Synthetic fds (eventfd, signalfd, timerfd, epoll... as host fds): on Linux they pass
//! over SCM_RIGHTS like any host fd, so parent and child share the same kernel object
//! (one eventfd counter, one epoll set), exactly Linux's fork semantics. On macOS such
//! objects would be emulated and could not cross; they would be dropped there.

mod actor;
pub mod child;
mod fds;
pub mod inherit;
mod native;
mod snapshot;
pub mod state;
pub(crate) mod warm;
pub mod wire;

use std::io::Read;

use crate::backend::SysReg;
use crate::errno::Errno;
use crate::guest::ram::GuestRam;
use crate::syscall::{Ctx, SysResult};

use crate::syscall::clone::{
    CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_CLEAR_SIGHAND, CLONE_DETACHED, CLONE_FILES,
    CLONE_FS, CLONE_IO, CLONE_PARENT, CLONE_PARENT_SETTID, CLONE_PTRACE, CLONE_SETTLS,
    CLONE_SYSVSEM, CLONE_UNTRACED, CLONE_VFORK, CLONE_VM, CSIGNAL,
};

/// What a new process cannot get here (ENOSYS, the stated limits): sharing the fd
/// table or fs context with its parent (CLONE_FILES, CLONE_FS: guest fds are one host
/// process's table, and the host's fork() shares no fs struct), the parent's SysV undo
/// list or I/O context (CLONE_SYSVSEM, CLONE_IO), the parent's parent (CLONE_PARENT: the
/// host's fork() makes elfuse the parent) and new namespaces (the host's fork() makes
/// none).
const UNSUPPORTED: u64 = CLONE_FILES | CLONE_FS | CLONE_SYSVSEM | CLONE_IO | CLONE_PARENT | NEW_NS;
/// CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
const NEW_NS: u64 = 0x0002_0000 | 0x7e00_0000;

/// Flags a new process may be created with here; others are EINVAL (CLONE_SIGHAND and
/// CLONE_THREAD without CLONE_VM, as Linux). CLONE_PTRACE and CLONE_UNTRACED change
/// nothing (no guest process traces another). CLONE_CLEAR_SIGHAND comes from clone3 only
/// (clone's flags are 32 bits).
const SUPPORTED: u64 = CSIGNAL
    | CLONE_PTRACE
    | CLONE_UNTRACED
    | CLONE_VM
    | CLONE_VFORK
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_CLEARTID
    | CLONE_DETACHED
    | CLONE_CHILD_SETTID
    | CLONE_CLEAR_SIGHAND;

/// clone(flags, newsp, parent_tid, tls, child_tid) creating a new process (fork,
/// vfork, or clone without CLONE_VM). `clone` sends CLONE_VM without CLONE_VFORK
/// (threads) elsewhere.
pub fn clone_process(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (flags, newsp, ptid, tls, ctid) = (a[0], a[1], a[2], a[3], a[4]);
    if flags & !(SUPPORTED | UNSUPPORTED) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & UNSUPPORTED != 0 {
        return Err(Errno::ENOSYS);
    }
    if flags & CLONE_VM != 0 && flags & CLONE_VFORK == 0 {
        // A thread, not a process.
        return Err(Errno::ENOSYS);
    }
    // This process's children report through SIGCHLD: its watcher must run.
    crate::signal::hostsig::start_now();
    let t = inherit::ChildThread::of(ctx.thread, flags, ctid);
    // The child has only the calling thread (host fork() keeps only the caller, the
    // spawn path starts one vCPU); the other vCPUs stay out of guest code until the
    // child's state is captured (`crate::thread::pause`). One fork at a time per process.
    let proc = ctx.proc;
    let _serial = proc.threads.fork_lock();
    let paused = proc.threads.pause_others(ctx.thread.tid);
    if native::enabled() {
        let regs = native::ChildRegs {
            sp: (newsp != 0).then_some(newsp),
            tls: (flags & CLONE_SETTLS != 0).then_some(tls),
        };
        return native::fork(ctx, paused, flags, ptid, regs, t);
    }
    let t0 = std::time::Instant::now();
    // Start the host process now: its start-up overlaps the RAM snapshot below.
    let ticket = actor::spawn(proc.tracer.actor_sink())?;
    let t_spawn = t0.elapsed();
    let state = capture_for_spawn(ctx, t, flags, newsp, tls);
    let t_snap = t0.elapsed();
    let state = match state {
        Ok(s) => s,
        Err(e) => {
            // The spawned child gets an empty handover and exits; reap it here.
            if let Ok((pid, _)) = actor::handover(ticket, None) {
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            }
            return Err(e);
        }
    };
    // A child with another exit signal is recorded before the host-signal watcher may
    // report its death (the watcher waits for the guard).
    let quiet = (flags & CSIGNAL != u64::from(crate::signal::SIGCHLD))
        .then(crate::signal::hostsig::fork_guard);
    let (pid, vfork_sock) = actor::handover(ticket, Some(state))?;
    proc.clone_kids.record(pid, flags & CSIGNAL);
    drop(quiet);
    drop(paused);
    tracing::debug!(pid, ?t_spawn, ?t_snap, total = ?t0.elapsed(), "fork: child started");
    if flags & CLONE_PARENT_SETTID != 0 {
        // Like Linux, a bad pointer here does not undo the fork.
        let _ = ctx.write_val(ptid, &pid);
    }
    if let Some(mut sock) = vfork_sock {
        // Wait for end-of-file: the child exec'd or exited.
        let mut b = [0u8; 64];
        while let Ok(n) = sock.read(&mut b) {
            if n == 0 {
                break;
            }
        }
    }
    Ok(pid as u64)
}

/// The spawn path's capture: registers (X0 = 0, the new SP and TLS if given), a RAM
/// snapshot, the address space and the inheritance.
fn capture_for_spawn(
    ctx: &mut Ctx,
    t: inherit::ChildThread,
    flags: u64,
    newsp: u64,
    tls: u64,
) -> Result<state::Handover<std::os::fd::RawFd>, Errno> {
    let mut cpu = state::CpuState::read(ctx.vcpu).map_err(|e| {
        tracing::error!("fork: reading registers: {e}");
        Errno::EAGAIN
    })?;
    cpu.x[0] = 0;
    if newsp != 0 {
        cpu.set_sys(SysReg::SpEl0, newsp);
    }
    if flags & CLONE_SETTLS != 0 {
        cpu.set_sys(SysReg::TpidrEl0, tls);
    }
    let proc = ctx.proc;
    let ram = snapshot::snapshot_ram(&proc.ram).map_err(|e| {
        tracing::warn!("fork: RAM snapshot failed: {e}");
        Errno::ENOMEM
    })?;
    let own = &ctx.thread.own;
    let inh = inherit::Captured::capture(proc, t, own, flags, || proc.signals.actions());
    let mm = proc.mm().to_parts();
    Ok(state::Handover { cpu, ram, mm, inh })
}

/// Guest RAM for a new process: private anonymous memory when forks are native (the
/// host's fork() then copies it), else (or if the host refuses a 16 GiB private
/// mapping, e.g. with strict overcommit) a memfd the spawn path can snapshot.
pub fn new_guest_ram(size: u64) -> std::io::Result<GuestRam> {
    if native::enabled() {
        match GuestRam::new_private(size) {
            Ok(r) => return Ok(r),
            Err(e) => tracing::debug!("private guest RAM refused ({e}): using a memfd"),
        }
    }
    GuestRam::new(size)
}
