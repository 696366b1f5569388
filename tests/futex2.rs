//! Guest tests of the futex family beyond plain wait/wake (issue 13): priority-inheritance
//! futexes (pthread PTHREAD_PRIO_INHERIT and robust mutexes, a condvar over one, the raw
//! LOCK_PI / TRYLOCK_PI / UNLOCK_PI / WAIT_REQUEUE_PI / CMP_REQUEUE_PI protocol) and
//! futex2; and signals and pidfds aimed at other processes (tgkill of another thread group,
//! pidfd_send_signal, pidfd_getfd, getppid after reparenting). Compared with qemu-aarch64
//! 7.2 byte for byte where qemu is right.

#[macro_use]
mod common;

use common::*;

/// PI mutexes under contention from 8 threads, robust PI mutexes (EDEADLK, EBUSY,
/// EPERM), a PI condvar, the word protocol and requeue-PI; compared with qemu-aarch64.
fn futex_pi(libc: Libc) {
    if let Some(out) = run_guest(libc, "futex_pi", &[], 0) {
        assert_checks_passed(&out);
    }
}

/// Robust PI owners that die holding the lock (EOWNERDEAD, with and without a waiter),
/// and ESRCH for an owner that has exited: qemu-user 7.2 has no robust lists (glibc aborts
/// on ESRCH, musl waits forever) and lets a joined thread's host thread outlive the join,
/// so elfuse only.
fn futex_pi_strict(libc: Libc) {
    if let Some(out) = run_elfuse_only(libc, "futex_pi", &[], &["strict"], 0) {
        assert_checks_passed(&out);
    }
}

/// futex_wake / futex_wait / futex_requeue / futex_waitv, which qemu-user 7.2 answers
/// with ENOSYS: elfuse only.
fn futex2(libc: Libc) {
    if let Some(out) = run_elfuse_only(libc, "futex2", &[], &[], 0) {
        assert_checks_passed(&out);
    }
}

/// tgkill and rt_tgsigqueueinfo of a forked child's second thread, pidfd_open and
/// pidfd_send_signal of the child, pidfd_getfd of our own fd; compared with qemu-aarch64.
fn sigothers(libc: Libc) {
    if let Some(out) = run_guest(libc, "sigothers", &[], 0) {
        assert_checks_passed(&out);
    }
}

/// getppid after the parent died and the process was reparented to us (a child
/// subreaper, which qemu-user 7.2 refuses): elfuse only.
fn sigothers_strict(libc: Libc) {
    if let Some(out) = run_elfuse_only(libc, "sigothers", &[], &["strict"], 0) {
        assert_checks_passed(&out);
    }
}

for_each_libc!(
    futex_pi,
    futex_pi_strict,
    futex2,
    sigothers,
    sigothers_strict
);
