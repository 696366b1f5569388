//! The per-process timer service: interval timers (setitimer: REAL, VIRTUAL, PROF) and
//! POSIX timers (timer_create...). The syscalls are in `syscall::timer`.
//!
//! One `Timers` per `Process` owns every timer of the process. Expiries are served by one
//! host thread ("timers"), started on the first arm, parked on a condvar while nothing is
//! armed, and stopped when the process is dropped (`shutdown`). It holds only a `Weak`
//! reference to the process. On expiry it sends the signal through
//! `Process::send_signal`, with the state lock held, so no signal of an old setting is
//! sent once timer_settime/timer_delete/setitimer has returned.
//!
//! Clocks. Each timer counts on one clock, read on the host: the wall clocks (REALTIME,
//! MONOTONIC, BOOTTIME, TAI) with clock_gettime; ITIMER_PROF and CLOCK_PROCESS_CPUTIME_ID
//! with the host process's CPU clock (the guest's CPU time is the host process's: its
//! vCPU threads plus elfuse's own work); ITIMER_VIRTUAL with the host process's user time
//! (getrusage); CLOCK_THREAD_CPUTIME_ID with the calling vCPU's host thread CPU clock.
//! The thread sleeps until the earliest instant any deadline could be reached and then
//! re-reads the clocks: wall deadlines are met to the host's timer slack (REALTIME and
//! TAI are re-read at least once a second, so a clock step is noticed); CPU clocks are
//! polled no more often than every millisecond (a process CPU clock may run
//! `available_parallelism` times faster than the wall clock), so CPU timers fire up to
//! about a millisecond of CPU time late — Linux's own granularity is the tick.
//!
//! Overruns (POSIX timers), as Linux: a timer's signal is queued at most once. An expiry
//! while it is still pending only counts an overrun; when the signal is taken (delivery,
//! signalfd, sigwaitinfo) the taker calls [`Timers::dequeued`], which writes the count
//! into si_overrun and makes it timer_getoverrun's answer. A signal discarded without
//! being taken (ignored) is noticed at the next expiry: the timer sees it is no longer
//! pending and queues a new one.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;

use crate::errno::Errno;
use crate::process::Process;
use crate::signal::{SigInfo, Target};

mod service;
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

#[derive(Debug)]
struct State {
    itimers: [Timer; 3],
    posix: BTreeMap<i32, Timer>,
    /// Linux hands out timer ids from a counter (0, 1, 2...), skipping ids in use.
    next_id: i32,
    thread: Option<JoinHandle<()>>,
    stop: bool,
    /// Bumped at every change of a deadline (so the service never sleeps on a stale one).
    gen: u64,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// A process's timers (see the module doc).
pub struct Timers {
    shared: Arc<Shared>,
    proc: Weak<Process>,
}

impl std::fmt::Debug for Timers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timers").finish_non_exhaustive()
    }
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

impl Timers {
    /// No timers; the service thread starts with the first arm.
    pub fn new(proc: Weak<Process>) -> Timers {
        let state = State {
            itimers: [Which::Real, Which::Virtual, Which::Prof].map(itimer),
            posix: BTreeMap::new(),
            next_id: 0,
            thread: None,
            stop: false,
            gen: 0,
        };
        Timers {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                changed: Condvar::new(),
            }),
            proc,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells the service a deadline changed, starting it if it is not running.
    fn rearmed(&self, st: &mut State) {
        st.gen += 1;
        if st.thread.is_none() && !st.stop {
            let shared = self.shared.clone();
            let proc = self.proc.clone();
            match std::thread::Builder::new()
                .name("timers".into())
                .spawn(move || service::serve(&shared, &proc))
            {
                Ok(h) => st.thread = Some(h),
                Err(e) => tracing::error!("cannot start the timer thread: {e}"),
            }
        }
        self.shared.changed.notify_all();
    }

    /// setitimer: sets interval timer `which`, returns the old setting.
    pub fn set_itimer(&self, which: Which, mut new: Setting) -> Setting {
        if which == Which::Real && new.value == 0 {
            // Linux keeps a disarmed ITIMER_REAL's interval at 0 (the CPU ones keep it).
            new.interval = 0;
        }
        let mut st = self.lock();
        let old = st.itimers[which as usize].set(new, false);
        self.rearmed(&mut st);
        old
    }

    pub fn get_itimer(&self, which: Which) -> Setting {
        self.lock().itimers[which as usize].get()
    }

    /// timer_create: a disarmed POSIX timer. `value` None is "the timer's id" (the
    /// default sigevent's si_value).
    pub fn create(&self, clock: Clock, notify: Notify, value: Option<u64>) -> Result<i32, Errno> {
        let mut st = self.lock();
        if st.posix.len() >= MAX_TIMERS {
            return Err(Errno::EAGAIN);
        }
        let mut id = st.next_id;
        while st.posix.contains_key(&id) {
            id = id.checked_add(1).unwrap_or(0);
        }
        st.next_id = id.checked_add(1).unwrap_or(0);
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
        st.posix.insert(id, Timer::new(clock, notify, Some(posix)));
        Ok(id)
    }

    /// timer_settime: returns the old setting.
    pub fn settime(&self, id: i32, abs: bool, new: Setting) -> Result<Setting, Errno> {
        let mut st = self.lock();
        let t = st.posix.get_mut(&id).ok_or(Errno::EINVAL)?;
        let old = t.set(new, abs);
        self.rearmed(&mut st);
        Ok(old)
    }

    pub fn gettime(&self, id: i32) -> Result<Setting, Errno> {
        let mut st = self.lock();
        Ok(st.posix.get_mut(&id).ok_or(Errno::EINVAL)?.get())
    }

    /// timer_getoverrun: the overrun count of the timer's last signal taken.
    pub fn overrun(&self, id: i32) -> Result<i32, Errno> {
        let st = self.lock();
        let t = st.posix.get(&id).ok_or(Errno::EINVAL)?;
        let last = t.posix.as_ref().map_or(0, |p| p.overrun_last);
        Ok(last.min(i32::MAX as u64) as i32)
    }

    /// timer_delete. A signal it already queued stays queued, as on Linux.
    pub fn delete(&self, id: i32) -> Result<(), Errno> {
        self.lock()
            .posix
            .remove(&id)
            .map(|_| ())
            .ok_or(Errno::EINVAL)
    }

    /// execve: POSIX timers are deleted, interval timers go on.
    pub fn exec(&self) {
        self.lock().posix.clear();
    }

    /// To be called by whoever takes a signal out of a pending queue (delivery,
    /// signalfd, sigwaitinfo) with the taken siginfo: for a POSIX timer's signal it fills
    /// in si_overrun and lets the timer queue its next signal (Linux's
    /// posixtimer_rearm). Other signals are left alone. Must not be called with the
    /// signal state locked.
    pub fn dequeued(&self, info: &mut SigInfo) {
        if info.code != SI_TIMER {
            return;
        }
        let mut st = self.lock();
        let Some(t) = st.posix.get_mut(&info.pid) else {
            return;
        };
        let ours = matches!(t.notify, Notify::Signal { signo, .. } if signo == info.signo);
        if !ours || !t.posix.as_ref().is_some_and(|p| p.queued) {
            return;
        }
        // Periods that ended since the service last looked are overruns too (Linux
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

    /// Holds the service still (no signal is being sent) while the guard lives: for a
    /// host fork(), so the child cannot inherit a lock the timer thread held.
    pub fn quiesce(&self) -> impl Drop + '_ {
        self.lock()
    }

    /// Stops the service thread and waits for it (unless called on it).
    pub fn shutdown(&self) {
        let handle = {
            let mut st = self.lock();
            st.stop = true;
            self.shared.changed.notify_all();
            st.thread.take()
        };
        if let Some(h) = handle {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }
}

impl Drop for Timers {
    fn drop(&mut self) {
        self.shutdown();
    }
}
