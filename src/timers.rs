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
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::errno::Errno;
use crate::process::Process;
use crate::signal::{SigInfo, Target};

/// si_code of a signal sent by the kernel (itimers).
pub const SI_KERNEL: i32 = 0x80;
/// si_code of a POSIX timer's signal.
pub const SI_TIMER: i32 = -2;
/// Most POSIX timers a process may have (Linux's limit is memory; this keeps a guest
/// from exhausting the host's).
const MAX_TIMERS: usize = 1 << 16;
const NS: u64 = 1_000_000_000;

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
    fn now(self) -> Option<u64> {
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
    fn wall_bound(self, remaining: u64) -> u64 {
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
struct Timer {
    clock: Clock,
    /// The next expiry, in the clock's ns; None when disarmed.
    deadline: Option<u64>,
    interval: u64,
    notify: Notify,
    /// POSIX timers only: id and overrun accounting (itimers send SI_KERNEL signals,
    /// which simply coalesce).
    posix: Option<Posix>,
}

#[derive(Debug, Default)]
struct Posix {
    id: i32,
    /// Our signal is queued and not yet taken.
    queued: bool,
    /// Expiries not queued since the queued signal was sent.
    overrun: u64,
    /// The overrun of the last signal taken (timer_getoverrun).
    overrun_last: u64,
}

impl Timer {
    fn new(clock: Clock, notify: Notify, posix: Option<Posix>) -> Timer {
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
    fn set(&mut self, new: Setting, abs: bool) -> Setting {
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
    fn get(&mut self) -> Setting {
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
    fn expire(&mut self, now: u64) -> u64 {
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
                .spawn(move || serve(&shared, &proc))
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

/// The service thread: fire what is due, then sleep until the next possible expiry (or
/// until a timer changes).
fn serve(shared: &Shared, proc: &Weak<Process>) {
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
    let timers = st.itimers.iter_mut().chain(st.posix.values_mut());
    for t in timers.filter(|t| t.notify != Notify::None) {
        let Some(deadline) = t.deadline else { continue };
        let Some(now) = t.clock.now() else { continue };
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
fn still_pending(proc: &Process, _target: Target, signo: u32) -> bool {
    proc.signals().pending & crate::signal::sig_bit(signo) != 0
}

/// The service thread takes no host signals (they are for the vCPU threads).
fn block_host_signals() {
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mono() -> Clock {
        Clock::Host(libc::CLOCK_MONOTONIC)
    }

    #[test]
    fn set_returns_the_old_setting_and_get_counts_down() {
        let mut t = Timer::new(mono(), Notify::None, None);
        let s = Setting {
            value: 10 * NS,
            interval: NS,
        };
        assert_eq!(t.set(s, false), Setting::default());
        let g = t.get();
        assert!(g.value <= 10 * NS && g.value > 9 * NS, "{g:?}");
        assert_eq!(g.interval, NS);
        let old = t.set(Setting::default(), false);
        assert!(old.value > 9 * NS && old.interval == NS);
        assert_eq!(t.get().value, 0);
    }

    #[test]
    fn expire_counts_missed_periods() {
        let mut t = Timer::new(mono(), Notify::None, None);
        t.deadline = Some(100);
        t.interval = 10;
        assert_eq!(t.expire(100), 1);
        assert_eq!(t.deadline, Some(110));
        assert_eq!(t.expire(145), 4);
        assert_eq!(t.deadline, Some(150));
        t.interval = 0;
        assert_eq!(t.expire(150), 1);
        assert_eq!(t.deadline, None);
    }

    #[test]
    fn sigev_none_timers_progress_when_read() {
        let mut t = Timer::new(mono(), Notify::None, Some(Posix::default()));
        let now = mono().now().unwrap();
        // Absolute, already 2.5 periods in the past: the next expiry is half a period on.
        t.set(
            Setting {
                value: now - 25 * NS / 10,
                interval: NS,
            },
            true,
        );
        let g = t.get();
        assert!(g.value > NS / 4 && g.value <= NS / 2 + NS / 10, "{g:?}");
        // A one-shot expired SIGEV_NONE timer reads 0.
        t.set(
            Setting {
                value: 1,
                interval: 0,
            },
            true,
        );
        assert_eq!(t.get().value, 0);
    }

    #[test]
    fn ids_count_up_and_skip_ids_in_use() {
        let timers = Timers::new(Weak::new());
        let c = |v| timers.create(mono(), Notify::None, v).unwrap();
        assert_eq!((c(None), c(None), c(None)), (0, 1, 2));
        timers.delete(1).unwrap();
        assert_eq!(c(None), 3);
        assert_eq!(timers.delete(1), Err(Errno::EINVAL));
        timers.lock().next_id = 2;
        assert_eq!(c(None), 4);
        timers.exec();
        assert_eq!(timers.gettime(0), Err(Errno::EINVAL));
    }

    #[test]
    fn dequeue_reports_overruns_and_forwards_the_timer() {
        let timers = Timers::new(Weak::new());
        let notify = Notify::Signal {
            target: Target::Process,
            signo: 10,
            value: 7,
        };
        let id = timers.create(mono(), notify, Some(7)).unwrap();
        let now = mono().now().unwrap();
        {
            let mut st = timers.lock();
            let t = st.posix.get_mut(&id).unwrap();
            // Queued 3 overruns ago; 2.5 more periods ended since the service looked.
            t.deadline = Some(now - 25 * NS / 10);
            t.interval = NS;
            let p = t.posix.as_mut().unwrap();
            (p.queued, p.overrun) = (true, 3);
        }
        let mut info = SigInfo {
            signo: 10,
            code: SI_TIMER,
            pid: id,
            value: 7,
            ..Default::default()
        };
        let mut other = SigInfo { code: 0, ..info };
        timers.dequeued(&mut other);
        assert_eq!(other.uid, 0);
        timers.dequeued(&mut info);
        assert_eq!(info.uid, 6);
        assert_eq!(timers.overrun(id), Ok(6));
        let g = timers.gettime(id).unwrap();
        assert!(g.value > 0 && g.value <= NS / 2 + NS / 10, "{g:?}");
        // Taken once: a second take (a stale copy) changes nothing.
        info.uid = 0;
        timers.dequeued(&mut info);
        assert_eq!((info.uid, timers.overrun(id)), (0, Ok(6)));
    }

    #[test]
    fn thread_cpu_clock_reads() {
        let c = Clock::this_thread(2);
        let a = c.now().unwrap();
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        assert!(c.now().unwrap() > a);
        assert!(Clock::ProcessUser.now().is_some());
    }
}
