//! Unit tests of the timer arithmetic and the `Timers` table (no service thread).

use super::timer::Posix;
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
