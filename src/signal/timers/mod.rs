//! A process's timers: interval timers (setitimer: REAL, VIRTUAL, PROF) and POSIX timers
//! (timer_create...), as plain data owned by the signal actor (`signal::actor`), which
//! also serves their expiries on its own thread. The syscalls are in `syscall::timer`.
//!
//! Being part of the signal actor's state settles what the separate timer thread used
//! to need locks for: an expiry is queued by the same owner, in the same message, that
//! knows whether the timer's previous signal is still pending; no signal of an old
//! setting is sent once timer_settime/timer_delete/setitimer has returned (the change
//! and the expiries are serialised); and a taken timer signal gets its overrun count in
//! the message that takes it.
//!
//! Clocks. Each timer counts on one clock, read on the host: the wall clocks (REALTIME,
//! MONOTONIC, BOOTTIME, TAI) with clock_gettime; ITIMER_PROF and CLOCK_PROCESS_CPUTIME_ID
//! with the host process's CPU clock (the guest's CPU time is the host process's: its
//! vCPU threads plus elfuse's own work); ITIMER_VIRTUAL with the host process's user time
//! (getrusage); CLOCK_THREAD_CPUTIME_ID with the calling vCPU's host thread CPU clock.
//! The actor thread sleeps until the earliest instant any deadline could be reached and
//! then re-reads the clocks ([`TimerTable::next_wake`]): wall deadlines are met to the
//! host's timer slack (REALTIME and TAI are re-read at least once a second, so a clock
//! step is noticed); CPU clocks are polled no more often than every millisecond (a
//! process CPU clock may run `available_parallelism` times faster than the wall clock),
//! so CPU timers fire up to about a millisecond of CPU time late — Linux's own
//! granularity is the tick.
//!
//! Overruns (POSIX timers), as Linux: a timer's signal is queued at most once. An expiry
//! while it is still pending only counts an overrun; when the signal is taken (delivery,
//! signalfd, sigwaitinfo) [`TimerTable::dequeued`] writes the count into si_overrun and
//! makes it timer_getoverrun's answer. A signal discarded without being taken (ignored)
//! is noticed at the next expiry: the timer sees it is no longer pending and queues a new
//! one.

use std::collections::BTreeMap;

use crate::errno::Errno;
use crate::signal::{SigInfo, Target};

mod fire;
#[cfg(test)]
mod tests;
mod timer;

pub use timer::{Clock, Notify, Setting, Which};
use timer::{Posix, Timer};

/// si_code of a signal sent by the kernel (itimers).
pub const SI_KERNEL: i32 = 0x80;
/// si_code of a POSIX timer's signal.
pub const SI_TIMER: i32 = -2;
/// Most POSIX timers a process may have (Linux's limit is memory; this keeps a guest
/// from exhausting the host's).
const MAX_TIMERS: usize = 1 << 16;
const NS: u64 = 1_000_000_000;

/// A process's timers (see the module doc).
#[derive(Debug)]
pub struct TimerTable {
    itimers: [Timer; 3],
    posix: BTreeMap<i32, Timer>,
    /// Linux hands out timer ids from a counter (0, 1, 2...), skipping ids in use.
    next_id: i32,
}

fn itimer(which: Which) -> Timer {
    let (clock, signo) = match which {
        Which::Real => (Clock::Host(libc::CLOCK_MONOTONIC), crate::signal::SIGALRM),
        Which::Virtual => (Clock::ProcessUser, 26), // SIGVTALRM
        Which::Prof => (Clock::Host(libc::CLOCK_PROCESS_CPUTIME_ID), 27), // SIGPROF
    };
    let notify = Notify::Signal {
        target: Target::Process,
        signo,
        value: 0,
    };
    Timer::new(clock, notify, None)
}

impl Default for TimerTable {
    fn default() -> Self {
        TimerTable {
            itimers: [Which::Real, Which::Virtual, Which::Prof].map(itimer),
            posix: BTreeMap::new(),
            next_id: 0,
        }
    }
}

impl TimerTable {
    /// setitimer: sets interval timer `which`, returns the old setting.
    pub fn set_itimer(&mut self, which: Which, mut new: Setting) -> Setting {
        if which == Which::Real && new.value == 0 {
            // Linux keeps a disarmed ITIMER_REAL's interval at 0 (the CPU ones keep it).
            new.interval = 0;
        }
        self.itimers[which as usize].set(new, false)
    }

    pub fn get_itimer(&mut self, which: Which) -> Setting {
        self.itimers[which as usize].get()
    }

    /// timer_create: a disarmed POSIX timer. `value` None is "the timer's id" (the
    /// default sigevent's si_value).
    pub fn create(
        &mut self,
        clock: Clock,
        notify: Notify,
        value: Option<u64>,
    ) -> Result<i32, Errno> {
        if self.posix.len() >= MAX_TIMERS {
            return Err(Errno::EAGAIN);
        }
        let mut id = self.next_id;
        while self.posix.contains_key(&id) {
            id = id.checked_add(1).unwrap_or(0);
        }
        self.next_id = id.checked_add(1).unwrap_or(0);
        let notify = match notify {
            Notify::Signal { target, signo, .. } if value.is_none() => Notify::Signal {
                target,
                signo,
                value: id as u64,
            },
            n => n,
        };
        let posix = Posix {
            id,
            ..Default::default()
        };
        self.posix
            .insert(id, Timer::new(clock, notify, Some(posix)));
        Ok(id)
    }

    /// timer_settime: returns the old setting.
    pub fn settime(&mut self, id: i32, abs: bool, new: Setting) -> Result<Setting, Errno> {
        let t = self.posix.get_mut(&id).ok_or(Errno::EINVAL)?;
        Ok(t.set(new, abs))
    }

    pub fn gettime(&mut self, id: i32) -> Result<Setting, Errno> {
        Ok(self.posix.get_mut(&id).ok_or(Errno::EINVAL)?.get())
    }

    /// timer_getoverrun: the overrun count of the timer's last signal taken.
    pub fn overrun(&self, id: i32) -> Result<i32, Errno> {
        let t = self.posix.get(&id).ok_or(Errno::EINVAL)?;
        let last = t.posix.as_ref().map_or(0, |p| p.overrun_last);
        Ok(last.min(i32::MAX as u64) as i32)
    }

    /// timer_delete. A signal it already queued stays queued, as on Linux.
    pub fn delete(&mut self, id: i32) -> Result<(), Errno> {
        self.posix.remove(&id).map(|_| ()).ok_or(Errno::EINVAL)
    }

    /// execve: POSIX timers are deleted, interval timers go on.
    pub fn exec(&mut self) {
        self.posix.clear();
    }

    /// A signal was taken out of a pending queue (delivery, signalfd, sigwaitinfo) with
    /// siginfo `info`: for a POSIX timer's signal it fills in si_overrun and lets the
    /// timer queue its next signal (Linux's posixtimer_rearm). Other signals are left
    /// alone.
    pub fn dequeued(&mut self, info: &mut SigInfo) {
        if info.code != SI_TIMER {
            return;
        }
        let Some(t) = self.posix.get_mut(&info.pid) else {
            return;
        };
        let ours = matches!(t.notify, Notify::Signal { signo, .. } if signo == info.signo);
        if !ours || !t.posix.as_ref().is_some_and(|p| p.queued) {
            return;
        }
        // Periods that ended since the actor last looked are overruns too (Linux
        // forwards the timer to now here).
        let late = match (t.deadline, t.clock.now()) {
            (Some(d), Some(now)) if t.interval > 0 && d <= now => t.expire(now),
            _ => 0,
        };
        if let Some(p) = &mut t.posix {
            p.queued = false;
            p.overrun_last = p.overrun.saturating_add(late);
            p.overrun = 0;
            info.uid = p.overrun_last.min(i32::MAX as u64) as u32;
        }
    }
}
