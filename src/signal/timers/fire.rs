//! Expiries: which timers are due, the signals they send, and how long the actor thread
//! may wait before looking again.

use super::{Clock, Notify, Posix, TimerTable, SI_KERNEL, SI_TIMER};
use crate::signal::{SigInfo, Target};

impl TimerTable {
    /// Fires every timer that is due: returns the signals to queue, in order.
    /// `pending(target, signo)` answers whether a timer's previous signal is still
    /// pending (then the expiry only counts an overrun).
    pub fn fire_due(&mut self, pending: impl Fn(Target, u32) -> bool) -> Vec<(Target, SigInfo)> {
        let mut out = Vec::new();
        // Each clock is read once per pass (a scan: a process has few timers).
        let mut clocks = Clocks::default();
        let timers = self.itimers.iter_mut().chain(self.posix.values_mut());
        for t in timers.filter(|t| t.notify != Notify::None) {
            let Some(deadline) = t.deadline else { continue };
            let Some(now) = clocks.now(t.clock) else {
                continue;
            };
            if deadline > now {
                continue;
            }
            let n = t.expire(now);
            if let Notify::Signal {
                target,
                signo,
                value,
            } = t.notify
            {
                let p = t.posix.as_mut();
                if let Some(info) = expiry(target, signo, value, p, n, &pending) {
                    out.push((target, info));
                }
            }
        }
        out
    }

    /// How long until some armed timer could be due (None: nothing armed).
    pub fn next_wake(&self) -> Option<u64> {
        let mut clocks = Clocks::default();
        let timers = self.itimers.iter().chain(self.posix.values());
        timers
            .filter(|t| t.notify != Notify::None)
            .filter_map(|t| {
                let d = t.deadline?;
                let now = clocks.now(t.clock)?;
                Some(t.clock.wall_bound(d.saturating_sub(now)))
            })
            .min()
    }
}

/// Clock readings shared by the timers of one pass.
#[derive(Default)]
struct Clocks(Vec<(Clock, Option<u64>)>);

impl Clocks {
    fn now(&mut self, c: Clock) -> Option<u64> {
        if let Some(&(_, now)) = self.0.iter().find(|(k, _)| *k == c) {
            return now;
        }
        let now = c.now();
        self.0.push((c, now));
        now
    }
}

/// One expiry (`n` periods elapsed) of a timer that signals: the signal to queue, or
/// None when it only counts an overrun.
fn expiry(
    target: Target,
    signo: u32,
    value: u64,
    posix: Option<&mut Posix>,
    n: u64,
    pending: &impl Fn(Target, u32) -> bool,
) -> Option<SigInfo> {
    let Some(p) = posix else {
        return Some(SigInfo {
            signo,
            code: SI_KERNEL,
            ..Default::default()
        });
    };
    if p.queued && pending(target, signo) {
        p.overrun = p.overrun.saturating_add(n);
        return None;
    }
    if p.queued {
        // Taken without `dequeued` (or discarded): the count so far was its overrun.
        p.overrun_last = p.overrun;
    }
    p.queued = true;
    p.overrun = n - 1;
    Some(SigInfo {
        signo,
        code: SI_TIMER,
        pid: p.id,
        uid: p.overrun.min(i32::MAX as u64) as u32,
        value,
        ..Default::default()
    })
}
