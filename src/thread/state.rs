//! What the syscall layer keeps per thread (`ThreadState`, owned by the thread's vCPU
//! loop and lent to each handler) and why a thread's loop stops (`Stop`).

use super::seccomp::Seccomp;
use crate::signal::altstack::AltStack;

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
    /// children inherit it, execve keeps it). The signal actor's is the mask; this is the
    /// thread's read cache of it: only the thread itself changes its mask, always through
    /// the actor, whose reply is what it stores here.
    pub sigmask: u64,
    /// sigaltstack (none for a new thread, kept by fork, cleared by execve).
    pub altstack: AltStack,
    /// The mask to restore once the signals a temporary mask let through were delivered
    /// (rt_sigsuspend, ppoll, pselect6, epoll_pwait: Linux's saved_sigmask).
    pub saved_mask: Option<u64>,
    /// What `restart_syscall` resumes (an interrupted relative sleep).
    pub restart: Option<RestartBlock>,
    /// Strict mode or the seccomp filters in force (inherited by new threads and fork
    /// children, kept by execve).
    pub seccomp: Seccomp,
    /// This thread's own fd table and fs context, if it has them (see `syscall::clone_own`).
    pub own: crate::syscall::clone_state::Own,
}

/// An interrupted relative sleep: its clock, when it ends, where to write the time left.
#[derive(Clone, Copy, Debug)]
pub struct RestartBlock {
    pub clock: libc::clockid_t,
    pub end: libc::timespec,
    pub rem_va: u64,
}
