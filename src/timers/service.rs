//! The service thread: fires what is due, then sleeps until the next possible expiry.

use std::sync::Weak;
use std::time::Duration;

use super::{Clock, Notify, Posix, Shared, State, SI_KERNEL, SI_TIMER};
use crate::process::Process;
use crate::signal::{SigInfo, Target};

/// The service thread: fire what is due, then sleep until the next possible expiry (or
/// until a timer changes).
pub(super) fn serve(shared: &Shared, proc: &Weak<Process>) {
    block_host_signals();
    let mut st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
    while !st.stop {
        let Some(p) = proc.upgrade() else { break };
        let sleep = fire_due(&mut st, &p);
        let gen = st.gen;
        // The process must not be dropped here, with the state locked (its Drop joins
        // this thread after locking the state).
        drop(st);
        drop(p);
        st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.stop {
            break;
        }
        if st.gen != gen {
            continue;
        }
        st = match sleep {
            None => shared.changed.wait(st).unwrap_or_else(|p| p.into_inner()),
            Some(ns) => {
                let d = Duration::from_nanos(ns);
                match shared.changed.wait_timeout(st, d) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                }
            }
        };
    }
}

/// Fires every timer that is due; returns how long to sleep (None: nothing armed).
fn fire_due(st: &mut State, proc: &Process) -> Option<u64> {
    let mut sleep: Option<u64> = None;
    // Each clock is read once per pass (a scan: a process has few timers).
    let mut clocks: Vec<(Clock, Option<u64>)> = Vec::new();
    let timers = st.itimers.iter_mut().chain(st.posix.values_mut());
    for t in timers.filter(|t| t.notify != Notify::None) {
        let Some(deadline) = t.deadline else { continue };
        let now = match clocks.iter().find(|(c, _)| *c == t.clock) {
            Some(&(_, now)) => now,
            None => {
                let now = t.clock.now();
                clocks.push((t.clock, now));
                now
            }
        };
        let Some(now) = now else { continue };
        if deadline <= now {
            let n = t.expire(now);
            if let Notify::Signal {
                target,
                signo,
                value,
            } = t.notify
            {
                fire(proc, target, signo, value, t.posix.as_mut(), n);
            }
        }
        if let Some(d) = t.deadline {
            let remaining = d.saturating_sub(now);
            let s = t.clock.wall_bound(remaining);
            sleep = Some(sleep.map_or(s, |m| m.min(s)));
        }
    }
    sleep
}

/// One expiry (`n` periods elapsed) of a timer that signals.
fn fire(proc: &Process, target: Target, signo: u32, value: u64, posix: Option<&mut Posix>, n: u64) {
    let Some(p) = posix else {
        let info = SigInfo {
            signo,
            code: SI_KERNEL,
            ..Default::default()
        };
        proc.send_signal(target, info);
        return;
    };
    if p.queued && still_pending(proc, target, signo) {
        p.overrun = p.overrun.saturating_add(n);
        return;
    }
    if p.queued {
        // Taken without `dequeued` (or discarded): the count so far was its overrun.
        p.overrun_last = p.overrun;
    }
    p.queued = true;
    p.overrun = n - 1;
    let info = SigInfo {
        signo,
        code: SI_TIMER,
        pid: p.id,
        uid: p.overrun.min(i32::MAX as u64) as u32,
        value,
        ..Default::default()
    };
    proc.send_signal(target, info);
}

/// Whether `signo` is still pending for `target`: the one question this module asks the
/// signal layer.
/// A process-wide target is asked through the leader, whose view includes the
/// process-wide queue.
fn still_pending(proc: &Process, target: Target, signo: u32) -> bool {
    let tid = match target {
        Target::Thread(tid) => tid,
        Target::Process => proc.pid,
    };
    let s = &proc.signals;
    (s.pending(tid) | s.deliverable(tid)) & crate::signal::sig_bit(signo) != 0
}

/// The service thread takes no host signals (they are for the vCPU threads).
fn block_host_signals() {
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), None);
}
