//! Interval timers, alarm and POSIX timers (tests/guest/itimer.c, tests/guest/ptimer.c),
//! for glibc, glibc static-pie and musl; compared with qemu-aarch64 where the output is
//! deterministic (every check is a yes/no with wide timing margins).

#[macro_use]
mod common;

use common::*;

fn checks(libc: Libc, name: &str, args: &[&str]) {
    if let Some(out) = run_guest(libc, name, args, 0) {
        assert_checks_passed(&out);
    }
}

/// Runs under elfuse only (qemu-user cannot exec an AArch64 program itself, and hands
/// out its own timer ids).
fn checks_elfuse_only(libc: Libc, name: &str, args: &[&str]) {
    if let Some(out) = run_elfuse_only(libc, name, &[], args, 0) {
        assert_checks_passed(&out);
    }
}

/// setitimer/getitimer argument checks; ITIMER_REAL periodic counted by a handler while
/// the thread spins; getitimer counting down; alarm(); ITIMER_PROF and ITIMER_VIRTUAL on
/// a CPU-bound loop; a fork child has no itimers.
fn itimers(libc: Libc) {
    checks(libc, "itimer", &[]);
}

/// A guest with busy threads forks 100 times while timers fire: nothing hangs (the
/// native fork holds the timer table still across the host fork) and no child has
/// itimers.
fn timers_while_forking(libc: Libc) {
    checks(libc, "itimer", &["forks"]);
}

/// itimers survive execve; POSIX timers are deleted by it.
fn itimers_across_exec(libc: Libc) {
    checks_elfuse_only(libc, "itimer", &["exec"]);
}

/// alarm(1) and sigsuspend until SIGALRM.
fn alarm_sigsuspend(libc: Libc) {
    checks(libc, "itimer", &["alarm"]);
}

/// setitimer's SIGALRM interrupts nanosleep: EINTR with the remaining time.
fn itimer_interrupts_nanosleep(libc: Libc) {
    checks(libc, "itimer", &["eintr"]);
}

/// timer_* argument checks; SIGEV_SIGNAL periodic with si_value; overruns while blocked
/// (si_overrun and timer_getoverrun); timer_gettime, old values, TIMER_ABSTIME;
/// SIGEV_NONE; timer_delete stops it; SIGEV_THREAD_ID to a chosen thread; a fork child
/// has no timers.
fn posix_timers(libc: Libc) {
    checks(libc, "ptimer", &[]);
}

/// Linux's timer ids (0, 1, 2... never reused at once) and si_timerid.
fn posix_timer_ids(libc: Libc) {
    checks_elfuse_only(libc, "ptimer", &["strict"]);
}

/// SIGEV_THREAD: the libc's helper thread waits in sigwaitinfo for SIGEV_THREAD_ID
/// signals and runs the notify function.
fn posix_timer_sigev_thread(libc: Libc) {
    checks(libc, "ptimer", &["thread"]);
}

for_each_libc!(
    itimers,
    itimers_across_exec,
    timers_while_forking,
    posix_timers,
    posix_timer_ids,
    // These wait for a signal in a blocking call (sigsuspend, nanosleep, sigwaitinfo).
    alarm_sigsuspend,
    itimer_interrupts_nanosleep,
    posix_timer_sigev_thread,
);
