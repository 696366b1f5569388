//! What a thread may hold apart from the rest of its process: its own fd table (a thread
//! created without CLONE_FILES, or one that called unshare(CLONE_FILES)) and its own
//! filesystem context (without CLONE_FS, or after unshare(CLONE_FS)).
//!
//! The fd table: a second fd-table actor over a copy of the creator's table (the open
//! file descriptions shared, as Linux's dup_fd). [`Ctx::fds`] is the calling thread's
//! table, and everything that means "the fd table" goes through it: lookups, installs,
//! close-on-exec at execve, what a fork child inherits (`fork::state::ChildThread::own`),
//! /proc/self/fd and /proc/thread-self/fd (Linux shows the thread-group leader's table
//! under /proc/PID/fd: elfuse shows the calling thread's there too, a stated limit).
//! RLIMIT_NOFILE stays per process: a change reaches every table. A thread sharing its
//! creator's table (CLONE_FILES) shares the actor itself (an `Arc`), so tables are shared
//! exactly as Linux shares `files_struct`s.
//!
//! The shim's urandom fast path reads a per-process bitmap of the guest fds open on
//! /dev/urandom; once a second table exists a number may name different files on
//! different threads, so the bitmap is cleared and kept clear for the rest of the
//! process's life (those reads are then forwarded, which is only slower).
//!
//! The fs context: guest threads are host threads, so the new host thread unshares
//! CLONE_FS on the host itself and the host kernel keeps its cwd, umask and root; the
//! guest's [`FsContext`] (sysroot, chroot, umask record) is copied for it. Threads that
//! share it (CLONE_FS from such a thread) share the copy and, being host threads created
//! by that thread, the host fs struct too.

use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex, MutexGuard};

use elfuse_actors::fdactor::{FdActor, FdActorConfig};

use super::clone_state::{lock, Own};
use super::{fd_err, Ctx};
use crate::errno::Errno;
use crate::guest::shimdata::ShimData;
use crate::process::{FsContext, Process};

impl Own {
    /// The fd table of a thread holding `self`.
    pub fn table<'a>(&'a self, proc: &'a Process) -> &'a FdActor {
        self.files.as_deref().unwrap_or(&proc.fds)
    }

    /// A copy of the fs context of a thread holding `self`.
    pub fn fs_copy(&self, proc: &Process) -> FsContext {
        match &self.fs {
            Some(f) => lock(f).clone(),
            None => proc.fs().clone(),
        }
    }
}

/// Turns the shim's urandom fast path off for this process (a second table exists).
fn urandom_off(proc: &Process) {
    if proc.own_tables.urandom_off.swap(true, SeqCst) {
        return;
    }
    let sd = ShimData::new(proc.ram.clone());
    for fd in 0..elfuse_shim::data::URANDOM_FDS {
        sd.set_urandom(fd as i32, false);
    }
}

/// A new table: a copy of `from` (the descriptions shared, CLOEXEC flags and
/// RLIMIT_NOFILE kept) served by its own actor.
fn copy_table(proc: &Process, from: &FdActor) -> Arc<FdActor> {
    urandom_off(proc);
    Arc::new(FdActor::new(
        from.fork_snapshot(),
        FdActorConfig {
            sink: proc.tracer.actor_sink(),
            ..FdActorConfig::default()
        },
    ))
}

/// What a new thread gets (`clone` with or without CLONE_FILES / CLONE_FS): the caller's
/// when shared, else copies.
pub fn for_new_thread(ctx: &Ctx, share_files: bool, share_fs: bool) -> Own {
    let own = &ctx.thread.own;
    Own {
        files: if share_files {
            own.files.clone()
        } else {
            Some(copy_table(ctx.proc, ctx.fds()))
        },
        fs: if share_fs {
            own.fs.clone()
        } else {
            Some(Arc::new(Mutex::new(own.fs_copy(ctx.proc))))
        },
    }
}

/// Run by a new thread's host thread before it is announced: records its own table and,
/// for its own fs context, unshares the host's (its cwd, umask and root become a copy of
/// its creator's, now).
pub fn start_thread(proc: &Process, tid: i32, own: &Own, own_fs: bool) -> Result<(), Errno> {
    if own_fs {
        // SAFETY: unshare takes flags by value and acts on the calling host thread only.
        if unsafe { libc::unshare(libc::CLONE_FS) } != 0 {
            return Err(Errno::last());
        }
    }
    if let Some(t) = &own.files {
        proc.own_tables.register(tid, t);
    }
    Ok(())
}

/// unshare(CLONE_FILES) and unshare(CLONE_FS) of the calling thread (what Linux's
/// unshare_fd / unshare_fs do): a copy when the current one is shared with another
/// thread, nothing otherwise.
pub fn unshare(ctx: &mut Ctx, files: bool, fs: bool) -> Result<(), Errno> {
    let alone = ctx.proc.threads.count() <= 1;
    if files {
        let shared = match &ctx.thread.own.files {
            Some(t) => Arc::strong_count(t) > 1,
            None => !alone,
        };
        if shared {
            let t = copy_table(ctx.proc, ctx.fds());
            ctx.proc.own_tables.register(ctx.thread.tid, &t);
            ctx.thread.own.files = Some(t);
        }
    }
    if fs {
        let shared = match &ctx.thread.own.fs {
            Some(f) => Arc::strong_count(f) > 1,
            None => !alone,
        };
        if shared {
            // SAFETY: unshare takes flags by value and acts on the calling host thread.
            if unsafe { libc::unshare(libc::CLONE_FS) } != 0 {
                return Err(Errno::last());
            }
            let copy = ctx.thread.own.fs_copy(ctx.proc);
            ctx.thread.own.fs = Some(Arc::new(Mutex::new(copy)));
        }
    }
    Ok(())
}

/// execve from a thread with its own table: the other threads are gone and that table is
/// now the process's only one, so the process table (shared by the threads that were
/// killed) is emptied, closing what only they held, as Linux frees their files_struct.
pub fn exec_keeps_own(ctx: &Ctx) {
    if let Some(t) = &ctx.thread.own.files {
        ctx.proc.fds.close_range(0, u32::MAX, false);
        // Known under the pid now (a thread other than the leader took it).
        ctx.proc.own_tables.register(ctx.thread.tid, t);
    }
}

/// setrlimit(RLIMIT_NOFILE): the limit is the process's; every table enforces it.
pub fn set_nofile(ctx: &Ctx, cur: u64, max: u64, may_raise: bool) -> Result<(u64, u64), Errno> {
    let old = ctx.fds().set_limits(cur, max, may_raise).map_err(fd_err)?;
    let mine = ctx.fds() as *const FdActor;
    if !std::ptr::eq(mine, &ctx.proc.fds) {
        let _ = ctx.proc.fds.set_limits(cur, max, true);
    }
    for t in ctx.proc.own_tables.all() {
        if !std::ptr::eq(Arc::as_ptr(&t), mine) {
            let _ = t.set_limits(cur, max, true);
        }
    }
    Ok(old)
}

impl<'a> Ctx<'a> {
    /// The calling thread's fd table (its own, or the process's).
    pub fn fds(&self) -> &FdActor {
        self.thread.own.table(self.proc)
    }

    /// The calling thread's filesystem context (its own, or the process's).
    pub fn fs(&self) -> MutexGuard<'_, FsContext> {
        match &self.thread.own.fs {
            Some(f) => lock(f),
            None => self.proc.fs(),
        }
    }
}
