//! One timer: its clock, setting and expiry arithmetic.

use std::sync::OnceLock;

use super::NS;
use crate::signal::Target;

/// The clock a timer counts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// A host clock id: REALTIME, MONOTONIC, BOOTTIME, TAI, PROCESS_CPUTIME_ID, or a host
    /// thread's CPU clock (negative id).
    Host(libc::clockid_t),
    /// The process's user CPU time (ITIMER_VIRTUAL).
    ProcessUser,
}

impl Clock {
    /// A CPU clock of the calling host thread (a vCPU thread: the guest thread's); `kind`
    /// is the kernel's CPUCLOCK_PROF (0), _VIRT (1) or _SCHED (2).
    pub fn this_thread(kind: libc::clockid_t) -> Clock {
        // MAKE_THREAD_CPUCLOCK(tid, kind): pthread_getcpuclockid gives the SCHED one.
        let tid = crate::thread::host_tid();
        Clock::Host((!tid << 3) | 4 | kind)
    }

    /// Now, in ns; None if the clock is gone (the thread of a thread CPU clock ended).
    pub(super) fn now(self) -> Option<u64> {
        match self {
            Clock::Host(id) => {
                let mut t = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                (unsafe { libc::clock_gettime(id, &mut t) } == 0)
                    .then(|| t.tv_sec as u64 * NS + t.tv_nsec as u64)
            }
            Clock::ProcessUser => {
                let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
                unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
                let tv = ru.ru_utime;
                Some(tv.tv_sec as u64 * NS + tv.tv_usec as u64 * 1000)
            }
        }
    }

    /// How long the service may sleep when this clock is `remaining` ns short of a
    /// deadline (see the module doc).
    pub(super) fn wall_bound(self, remaining: u64) -> u64 {
        const MS: u64 = 1_000_000;
        match self {
            Clock::Host(libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME) => remaining,
            Clock::Host(libc::CLOCK_REALTIME | libc::CLOCK_TAI) => remaining.min(NS),
            // A process CPU clock (by name, or as ~0 << 3 | kind: this process).
            Clock::Host(libc::CLOCK_PROCESS_CPUTIME_ID) | Clock::ProcessUser => {
                static CPUS: OnceLock<u64> = OnceLock::new();
                let cpus = *CPUS.get_or_init(|| {
                    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
                });
                (remaining / cpus).max(MS)
            }
            Clock::Host(id) if id < 0 && id & 4 == 0 => Clock::ProcessUser.wall_bound(remaining),
            // A thread's CPU clock runs no faster than the wall clock.
            Clock::Host(_) => remaining.max(MS),
        }
    }
}

/// What an expiry does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notify {
    /// SIGEV_NONE: nothing (timer_gettime shows the progress).
    None,
    /// Send `signo` with si_value `value` to `target`.
    Signal {
        target: Target,
        signo: u32,
        value: u64,
    },
}

/// A timer's setting, relative: `value` ns to the next expiry (0: disarmed), then every
/// `interval` ns (0: once).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Setting {
    pub value: u64,
    pub interval: u64,
}

/// The three interval timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Real = 0,
    Virtual = 1,
    Prof = 2,
}

#[derive(Debug)]
pub(super) struct Timer {
    pub(super) clock: Clock,
    /// The next expiry, in the clock's ns; None when disarmed.
    pub(super) deadline: Option<u64>,
    pub(super) interval: u64,
    pub(super) notify: Notify,
    /// POSIX timers only: id and overrun accounting (itimers send SI_KERNEL signals,
    /// which simply coalesce).
    pub(super) posix: Option<Posix>,
}

#[derive(Debug, Default)]
pub(super) struct Posix {
    pub(super) id: i32,
    /// Our signal is queued and not yet taken.
    pub(super) queued: bool,
    /// Expiries not queued since the queued signal was sent.
    pub(super) overrun: u64,
    /// The overrun of the last signal taken (timer_getoverrun).
    pub(super) overrun_last: u64,
}

impl Timer {
    pub(super) fn new(clock: Clock, notify: Notify, posix: Option<Posix>) -> Timer {
        Timer {
            clock,
            deadline: None,
            interval: 0,
            notify,
            posix,
        }
    }

    /// Arms (or, with a zero value, disarms) the timer; `abs`: `value` is a time on the
    /// clock rather than a delay. Returns the previous setting.
    pub(super) fn set(&mut self, new: Setting, abs: bool) -> Setting {
        let old = self.get();
        self.interval = new.interval;
        self.deadline = match (new.value, abs) {
            (0, _) => None,
            (v, true) => Some(v),
            (v, false) => self.clock.now().map(|now| now.saturating_add(v)),
        };
        if let Some(p) = &mut self.posix {
            // A signal of the old setting still pending stays queued; its overruns are
            // not carried over.
            p.overrun = 0;
            p.overrun_last = 0;
        }
        old
    }

    /// The current setting. A timer due but not yet served reads as 1 ns (1 µs for
    /// itimers) to go, as on Linux; an expired SIGEV_NONE timer is brought up to date.
    pub(super) fn get(&mut self) -> Setting {
        let interval = self.interval;
        let Some(deadline) = self.deadline else {
            return Setting { value: 0, interval };
        };
        let Some(now) = self.clock.now() else {
            return Setting { value: 0, interval };
        };
        if self.notify == Notify::None && deadline <= now {
            self.expire(now);
        }
        let value = match self.deadline {
            None => 0,
            Some(d) if d > now => d - now,
            Some(_) if self.posix.is_some() => 1,
            Some(_) => 1000,
        };
        Setting { value, interval }
    }

    /// Moves the deadline past `now`; returns how many expiries that was (≥ 1).
    pub(super) fn expire(&mut self, now: u64) -> u64 {
        let Some(d) = self.deadline else { return 0 };
        if self.interval == 0 {
            self.deadline = None;
            return 1;
        }
        let n = (now - d) / self.interval + 1;
        self.deadline = Some(d.saturating_add(n.saturating_mul(self.interval)));
        n
    }
}
