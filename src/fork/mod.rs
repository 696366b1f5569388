//! fork, vfork and clone without CLONE_VM: a child guest process is a new host process.
//! Two ways (see ARCHITECTURE.md "Processes"): on Linux by default the host process
//! forks itself (`native`; guest RAM is private anonymous memory, copied on write by
//! fork()); with `ELFUSE_FORK=spawn` (the portable way, the only one where a VM cannot
//! be forked) it is `elfuse --fork-child FD`, which receives the parent's state over a
//! Unix socket (see `state` for what is inherited). Either way the child resumes the
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
mod native;
pub mod state;
pub(crate) mod warm;
pub mod wire;

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

use crate::backend::SysReg;
use crate::errno::Errno;
use crate::guest::ram::GuestRam;
use crate::syscall::{Ctx, SysResult};

use crate::syscall::clone::{
    CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_CLEAR_SIGHAND, CLONE_DETACHED,
    CLONE_PARENT_SETTID, CLONE_SETTLS, CLONE_VFORK, CLONE_VM, CSIGNAL,
};

/// Flags a new process may be created with here. Sharing the fd table, fs context or
/// signal handlers with a separate process (CLONE_FILES, CLONE_FS, CLONE_SIGHAND),
/// namespaces, pidfds and ptrace are refused with EINVAL. CLONE_CLEAR_SIGHAND comes
/// from clone3 only (clone's flags are 32 bits).
const SUPPORTED: u64 = CSIGNAL
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
    if flags & !SUPPORTED != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_VM != 0 && flags & CLONE_VFORK == 0 {
        // A thread, not a process.
        return Err(Errno::ENOSYS);
    }
    let vfork = flags & CLONE_VFORK != 0;
    // This process's children report through SIGCHLD: its watcher must run.
    crate::signal::hostsig::start_now();
    let t = state::ChildThread {
        sigmask: ctx.thread.sigmask,
        altstack: ctx.thread.altstack,
        comm: ctx.thread.comm,
        dumpable: ctx.thread.dumpable,
        rseq: ctx.thread.rseq,
        seccomp: ctx.thread.seccomp.inherit(),
        clear_child_tid: if flags & CLONE_CHILD_CLEARTID != 0 {
            ctid
        } else {
            0
        },
        set_child_tid: if flags & CLONE_CHILD_SETTID != 0 {
            ctid
        } else {
            0
        },
        own: ctx.thread.own.clone(),
        clear_sighand: flags & CLONE_CLEAR_SIGHAND != 0,
    };
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
        return native::fork(ctx, paused, flags, ptid, regs, t, vfork);
    }
    let t0 = std::time::Instant::now();
    let mut cpu = state::CpuState::read(ctx.vcpu).map_err(|e| {
        tracing::error!("fork: reading registers: {e}");
        Errno::EAGAIN
    })?;
    // Start the host process now: its creation overlaps the RAM snapshot below.
    let ticket = actor::spawn(proc.tracer.actor_sink());

    cpu.x[0] = 0;
    if newsp != 0 {
        cpu.set_sys(SysReg::SpEl0, newsp);
    }
    if flags & CLONE_SETTLS != 0 {
        cpu.set_sys(SysReg::TpidrEl0, tls);
    }
    let snap = snapshot_ram(&ctx.proc.ram).map_err(|e| {
        tracing::warn!("fork: RAM snapshot failed: {e}");
        Errno::ENOMEM
    });
    let t_snap = t0.elapsed();
    let out = match snap {
        Ok(fd) => state::capture(ctx.proc, &cpu, &t, fd, vfork),
        Err(e) => {
            // The spawned child gets an empty handover and exits; reap it here.
            if let Ok((pid, _)) = actor::handover(ticket, state::Outgoing::abandon()) {
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            }
            return Err(e);
        }
    };
    // A child with another exit signal is recorded before the host-signal watcher may
    // report its death (the watcher waits for the guard).
    let quiet = (flags & CSIGNAL != u64::from(crate::signal::SIGCHLD))
        .then(crate::signal::hostsig::fork_guard);
    let (pid, vfork_sock) = actor::handover(ticket, out)?;
    proc.clone_kids.record(pid, flags & CSIGNAL);
    drop(quiet);
    drop(paused);
    tracing::debug!(pid, ?t_snap, total = ?t0.elapsed(), "fork: child started");
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

/// Copies the populated extents of memfd-backed guest RAM into a new memfd of the same
/// size. Private RAM (native forks only) has no memfd to copy: Unsupported.
pub fn snapshot_ram(ram: &GuestRam) -> std::io::Result<OwnedFd> {
    let Some(src) = ram.raw_fd() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "private guest RAM cannot be snapshotted",
        ));
    };
    let dst = GuestRam::create_fd(ram.size())?;
    let d = dst.as_raw_fd();
    let mut off: i64 = 0;
    let mut copied = 0u64;
    let size = ram.size() as i64;
    let mut use_cfr = true;
    while off < size {
        // SAFETY: no pointers: `src` is the RAM memfd, open for the call.
        let data = unsafe { libc::lseek(src, off, libc::SEEK_DATA) };
        if data < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENXIO) {
                break; // no data past `off`
            }
            return Err(e);
        }
        // SAFETY: no pointers: `src` is the RAM memfd, open for the call.
        let hole = unsafe { libc::lseek(src, data, libc::SEEK_HOLE) };
        let hole = if hole < 0 { size } else { hole };
        let mut pos = data;
        while pos < hole {
            let len = (hole - pos) as usize;
            let n = if use_cfr {
                let (mut i, mut o) = (pos, pos);
                // SAFETY: `i` and `o` are local offsets the call updates; `src` and `d` are
                // open memfds (RAM and its snapshot).
                let n = unsafe { libc::copy_file_range(src, &mut i, d, &mut o, len, 0) };
                if n <= 0 {
                    use_cfr = false;
                    continue;
                }
                n
            } else {
                let p = ram.ptr(pos as u64, len);
                // SAFETY: `p` is `len` bytes of guest RAM inside the mapping (`ram.ptr`
                // checked the range), read by pwrite through a raw pointer (no reference);
                // `d` is the snapshot memfd.
                let n = unsafe { libc::pwrite(d, p.cast(), len, pos) };
                if n <= 0 {
                    return Err(std::io::Error::last_os_error());
                }
                n as isize
            };
            pos += n as i64;
        }
        copied += (hole - data) as u64;
        off = hole;
    }
    tracing::trace!(copied, "fork: RAM snapshot");
    Ok(dst)
}

/// What a fork child sets up anew rather than inherits: its shim_data identity (new pid
/// and ppid) and a reseeded random ring (its RAM copy holds the parent's unconsumed
/// bytes, which the parent hands out too), and its own urandom-refill actor (actor
/// threads do not survive a fork).
pub(crate) struct ChildServices {
    pub shim_data: crate::guest::shimdata::ShimData,
    pub entropy: elfuse_actors::runtime::ActorRef<elfuse_actors::urandom::RefillActor>,
}

impl ChildServices {
    pub fn start(
        ram: &std::sync::Arc<crate::guest::ram::GuestRam>,
        creds: &crate::process::Creds,
        pid: i32,
        ppid: i32,
        tracer: &crate::trace::Tracer,
        ring_given: bool,
    ) -> ChildServices {
        let shim_data = crate::image::publish_shim_data(ram, creds, pid, ppid, tracer.set.syscalls);
        shim_data.adopt_ring(ring_given);
        let entropy = elfuse_actors::urandom::spawn_refill(
            std::sync::Arc::new(shim_data.clone()),
            crate::image::RING_LOW_WATER,
            crate::image::RING_TICK,
            tracer.actor_sink(),
        );
        ChildServices { shim_data, entropy }
    }
}
