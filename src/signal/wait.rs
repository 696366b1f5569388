//! Blocking a vCPU's host thread until a guest signal arrives, without lost wake-ups.
//!
//! A sender queues the signal in the actor, then interrupts the target's host call with
//! the wake signal (`wakesig`). Here the wake signal is blocked while the
//! actor is asked, and unblocked only atomically with the wait (ppoll's sigmask): a wake
//! sent after the check stays pending and ends the wait at once.

use std::time::Instant;

use crate::process::Process;
use crate::signal::wakesig::{install_wake_handler, wake_signal};

/// Why [`wait_for_signal`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Woke {
    /// The thread has a signal it can act on.
    Signal,
    Timeout,
    /// exit_group or a fatal signal elsewhere: the thread must stop.
    Killed,
}

/// The wake signal blocked on this host thread for the guard's life.
struct WakeBlocked {
    old: libc::sigset_t,
}

impl WakeBlocked {
    fn new() -> Self {
        install_wake_handler();
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, wake_signal());
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            // The wait unblocks it whatever the caller had.
            libc::sigdelset(&mut old, wake_signal());
            WakeBlocked { old }
        }
    }
}

impl Drop for WakeBlocked {
    fn drop(&mut self) {
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }
}

/// Blocks thread `tid` until it has a deliverable signal (under its mask in the actor:
/// rt_sigtimedwait unblocks its set there first), `deadline` passes, or it is killed.
pub fn wait_for_signal(proc: &Process, tid: i32, deadline: Option<Instant>) -> Woke {
    // A fork child whose host-signal watcher is still deferred starts it now: the wake
    // signal that would start it at the next exit from guest code does not end this wait,
    // and signals from other processes (kill, a parent's death) are what it waits for.
    crate::signal::hostsig::start_now();
    let me = proc.threads.get(tid);
    loop {
        let g = WakeBlocked::new();
        if proc.signals.deliverable(tid) != 0 {
            return Woke::Signal;
        }
        if me.as_ref().is_some_and(|t| t.killed()) {
            return Woke::Killed;
        }
        let ts = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Woke::Timeout;
                }
                Some(libc::timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: i64::from(left.subsec_nanos()),
                })
            }
        };
        let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
        unsafe { libc::ppoll(std::ptr::null_mut(), 0, tsp, &g.old) };
        drop(g);
    }
}
