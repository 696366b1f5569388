//! The syscall layer: emulates Linux (AArch64, asm-generic numbering) for the guest.
//!
//! `table` is the single source of truth (number, name, handler, status, argument kinds);
//! docs/syscalls.md is generated from it. Handlers live by family: `fs` (files and
//! directories), `io` (fd table, read/write, pipes, ioctl), `mem` (mmap family, brk),
//! `proc` (exit, limits, uname, signals-as-recorded), `cred` (credentials), `sched`
//! (scheduling and process queries), `xattr`, `files` (memfd, splice family, the newer
//! file calls), `time`, `sfd` (eventfd, timerfd, epoll, inotify, pidfd, signalfd).

pub mod abi;
pub mod aio;
pub mod bpf;
pub mod clone;
pub mod cred;
pub mod execve;
pub mod facts;
pub mod files;
pub mod fs;
pub mod futex;
pub mod futex2;
pub mod futex_pi;
pub mod handles;
pub mod io;
pub mod ipc;
pub mod killgrp;
pub mod kinds;
pub mod mem;
pub mod net;
pub mod numa;
pub mod openat2;
pub mod prctl;
pub mod proc;
pub mod procdir;
pub mod procfs;
pub mod procgen;
pub mod procnode;
pub mod procpeer;
pub mod procremote;
pub mod procsmaps;
pub mod procvm;
pub mod resolve;
mod resolve_fast;
pub mod sched;
pub mod seccomp;
pub mod sfd;
pub mod signal;
pub mod sigpipe;
pub mod sigremote;
pub mod sigstack;
pub mod sysadm;
pub mod table;
pub mod time;
pub mod timer;
mod tracefmt;
pub mod tty;
pub mod wait;
pub mod xattr;

use std::sync::Arc;

use elfuse_actors::fdtable::{FdError, OpenFile};

use crate::backend::Vcpu;
use crate::errno::Errno;
use crate::guest::slice::GuestSlice;
use crate::process::Process;

pub type SysResult = Result<u64, Errno>;

/// Why the vCPU loop must stop running this thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// exit_group (or the last thread's exit) with this status.
    Exit(i32),
    /// `exit`: this thread only, with this code (the process goes on while other threads
    /// live; the process result is never this variant).
    ThreadExit(i32),
    /// Killed by this signal.
    Signal(u32),
}

/// Per-thread state the syscall layer keeps.
#[derive(Debug, Default)]
pub struct ThreadState {
    pub tid: i32,
    /// prctl(PR_SET_NAME).
    pub comm: [u8; 16],
    pub dumpable: bool,
    pub clear_child_tid: u64,
    pub robust_list: (u64, u64),
    pub rseq: Option<(u64, u32, u32)>,
    /// This thread's blocked-signal mask (per thread, as on Linux; new threads and fork
    /// children inherit it, execve keeps it). A copy of the signal actor's, kept equal by
    /// every call that changes it.
    pub sigmask: u64,
    /// sigaltstack (none for a new thread, kept by fork, cleared by execve).
    pub altstack: crate::signal::altstack::AltStack,
    /// The mask to restore once the signals a temporary mask let through were delivered
    /// (rt_sigsuspend, ppoll, pselect6, epoll_pwait: Linux's saved_sigmask).
    pub saved_mask: Option<u64>,
    /// What `restart_syscall` resumes (an interrupted relative sleep).
    pub restart: Option<crate::syscall::time::RestartBlock>,
    /// Strict mode or the seccomp filters in force (inherited by new threads and fork
    /// children, kept by execve).
    pub seccomp: seccomp::Seccomp,
}

/// Everything a handler may touch.
pub struct Ctx<'a> {
    pub proc: &'a Process,
    pub thread: &'a mut ThreadState,
    /// The calling vCPU, stopped at its `HVC #5`.
    pub vcpu: &'a mut dyn Vcpu,
    /// Set by handlers that end the thread or process.
    pub stop: Option<Stop>,
    /// Set by handlers that rewrote the registers themselves (rt_sigreturn): the result
    /// must not be written to X0.
    pub regs_set: bool,
}

/// Plain-old-data guest structures (any bit pattern valid, no padding surprises).
///
/// # Safety
/// Implementors must be `repr(C)` with no invalid bit patterns.
pub unsafe trait Pod: Copy + Default {}
// SAFETY: u8: one byte, no padding, every bit pattern a valid value.
unsafe impl Pod for u8 {}
// SAFETY: u16: no padding, every bit pattern a valid value.
unsafe impl Pod for u16 {}
// SAFETY: u32: no padding, every bit pattern a valid value.
unsafe impl Pod for u32 {}
// SAFETY: i32: no padding, every bit pattern a valid value.
unsafe impl Pod for i32 {}
// SAFETY: u64: no padding, every bit pattern a valid value.
unsafe impl Pod for u64 {}
// SAFETY: i64: no padding, every bit pattern a valid value.
unsafe impl Pod for i64 {}
// SAFETY: an array of Pod elements has no padding between them and every bit pattern of each
// is valid, so the same holds for the array.
unsafe impl<T: Pod, const N: usize> Pod for [T; N] where [T; N]: Default {}

/// Longest path a guest may pass (PATH_MAX).
pub const PATH_MAX: usize = 4096;

impl<'a> Ctx<'a> {
    pub fn new(proc: &'a Process, thread: &'a mut ThreadState, vcpu: &'a mut dyn Vcpu) -> Self {
        // The sender of this thread's actor messages (actor traces).
        elfuse_actors::trace::set_current_tid(thread.tid);
        Ctx {
            proc,
            thread,
            vcpu,
            stop: None,
            regs_set: false,
        }
    }

    /// A guest buffer, after checking the guest may access it (`write`: for writing):
    /// a [`GuestSlice`], reached by copies and raw pointers only, never a `&mut [u8]`
    /// (other vCPUs may write it at the same time; see `guest::slice`).
    pub fn user_slice(&self, va: u64, len: usize, write: bool) -> Result<GuestSlice<'_>, Errno> {
        if len == 0 {
            return Ok(GuestSlice::empty());
        }
        self.proc.mm.check_user(va, len as u64, write)?;
        let p = self.proc.ram.ptr(va, len);
        // SAFETY: `check_user` put `[va, va+len)` inside a user mapping, and `ram.ptr`
        // checked it against the RAM mapping, which lives as long as the process (that
        // `self` borrows).
        Ok(unsafe { GuestSlice::new(p, len) })
    }

    pub fn read_bytes(&self, va: u64, len: usize) -> Result<Vec<u8>, Errno> {
        Ok(self.user_slice(va, len, false)?.to_vec())
    }

    pub fn write_bytes(&self, va: u64, data: &[u8]) -> Result<(), Errno> {
        self.user_slice(va, data.len(), true)?.copy_from(data);
        Ok(())
    }

    pub fn read_val<T: Pod>(&self, va: u64) -> Result<T, Errno> {
        let mut v = T::default();
        let src = self.user_slice(va, std::mem::size_of::<T>(), false)?;
        // SAFETY: T is Pod (every bit pattern valid), so its storage may be viewed and
        // overwritten as `size_of::<T>()` plain bytes; `v` is a local, not guest RAM.
        let dst = unsafe {
            std::slice::from_raw_parts_mut(
                (&mut v as *mut T).cast::<u8>(),
                std::mem::size_of::<T>(),
            )
        };
        src.copy_to(dst);
        Ok(v)
    }

    pub fn write_val<T: Pod>(&self, va: u64, v: &T) -> Result<(), Errno> {
        // SAFETY: T is Pod (repr(C), no padding with undefined contents per its
        // contract), so its `size_of::<T>()` bytes are initialised and readable.
        let bytes = unsafe {
            std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>())
        };
        self.write_bytes(va, bytes)
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without the NUL).
    pub fn read_cstr(&self, va: u64, max: usize) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut cur = va;
        let mut piece = [0u8; 64];
        loop {
            // Check up to the end of the current page at a time, copy out in pieces (a
            // path is short; most of a page is not read).
            let chunk = (4096 - (cur % 4096)) as usize;
            let s = self.user_slice(cur, chunk, false)?;
            let mut off = 0;
            while off < chunk {
                let n = piece.len().min(chunk - off);
                s.sub(off, n).copy_to(&mut piece[..n]);
                if let Some(z) = piece[..n].iter().position(|&b| b == 0) {
                    out.extend_from_slice(&piece[..z]);
                    return Ok(out);
                }
                out.extend_from_slice(&piece[..n]);
                off += n;
            }
            if out.len() > max {
                return Err(Errno::ENAMETOOLONG);
            }
            cur += chunk as u64;
        }
    }

    /// A path argument: at most PATH_MAX bytes (ENAMETOOLONG). An empty path is returned
    /// as is; callers decide (ENOENT, or AT_EMPTY_PATH).
    pub fn read_path(&self, va: u64) -> Result<Vec<u8>, Errno> {
        let p = self.read_cstr(va, PATH_MAX)?;
        if p.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        Ok(p)
    }

    /// The open file behind guest fd `fd`: a lookup in the fd-table actor's published
    /// view (no message). The `Arc` keeps the description alive for the whole call, even
    /// if another thread closes `fd` meanwhile.
    pub fn file(&self, fd: u64) -> Result<Arc<OpenFile>, Errno> {
        // The kernel takes `unsigned int fd`: upper bits are ignored.
        self.proc.fds().get(fd as i32).map_err(fd_err)
    }

    /// `file` for a short call that cannot block: `f` runs with the fd's slot locked
    /// instead of a reference taken and dropped (two atomic read-modify-writes fewer).
    pub fn with_file<R>(&self, fd: u64, f: impl FnOnce(&OpenFile) -> R) -> Result<R, Errno> {
        self.proc.fds().with_file(fd as i32, f).map_err(fd_err)
    }

    /// Installs a new open file description at the lowest free guest fd (open, socket,
    /// eventfd...) and returns the fd: a message to the fd-table actor. On failure the
    /// description is dropped.
    pub fn install(&self, file: Arc<OpenFile>, cloexec: bool) -> SysResult {
        self.proc
            .fds()
            .install(file, cloexec, 0)
            .map(|n| n as u64)
            .map_err(fd_err)
    }
}

pub fn fd_err(e: FdError) -> Errno {
    match e {
        FdError::BadFd => Errno::EBADF,
        FdError::TooMany => Errno::EMFILE,
        FdError::Invalid => Errno::EINVAL,
        FdError::Perm => Errno::EPERM,
    }
}

/// Converts a host libc return value (-1 + errno) to a result.
pub fn host_ret(r: i64) -> SysResult {
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r as u64)
    }
}

/// Runs one syscall: looks it up, traces it, runs the handler; returns the value for X0
/// (None if the handler set the registers itself).
pub fn dispatch(ctx: &mut Ctx, nr: u64, args: [u64; 6]) -> Option<u64> {
    if let seccomp::Verdict::Skip(ret) = seccomp::enter(ctx, nr, &args) {
        return ret;
    }
    let def = table::lookup(nr);
    let tracing = ctx.proc.tracer.set.syscalls;
    let pre = tracing.then(|| tracefmt::entry(ctx, nr, def, &args));
    let res = match def.and_then(|d| d.handler) {
        Some(h) => h(ctx, args),
        None => Err(Errno::ENOSYS),
    };
    if res == Err(Errno::EPIPE) {
        if let Some(d) = def {
            sigpipe::on_epipe(ctx, d.facts.sigpipe, &args);
        }
    }
    if let Some(pre) = pre {
        ctx.proc.tracer.line(&tracefmt::exit(pre, &res, ctx.stop));
    }
    if ctx.regs_set {
        return None;
    }
    Some(match res {
        Ok(v) => v,
        Err(e) => (-(e.0 as i64)) as u64,
    })
}
