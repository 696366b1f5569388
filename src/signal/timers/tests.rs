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
    let mut timers = TimerTable::default();
    let c = |t: &mut TimerTable| t.create(mono(), Notify::None, None).unwrap();
    assert_eq!((c(&mut timers), c(&mut timers), c(&mut timers)), (0, 1, 2));
    timers.delete(1).unwrap();
    assert_eq!(c(&mut timers), 3);
    assert_eq!(timers.delete(1), Err(Errno::EINVAL));
    timers.next_id = 2;
    assert_eq!(c(&mut timers), 4);
    timers.exec();
    assert_eq!(timers.gettime(0), Err(Errno::EINVAL));
}

#[test]
fn dequeue_reports_overruns_and_forwards_the_timer() {
    let mut timers = TimerTable::default();
    let notify = Notify::Signal {
        target: Target::Process,
        signo: 10,
        value: 7,
    };
    let id = timers.create(mono(), notify, Some(7)).unwrap();
    let now = mono().now().unwrap();
    {
        let t = timers.posix.get_mut(&id).unwrap();
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

#[test]
fn fire_due_queues_once_and_counts_overruns_while_pending() {
    let mut timers = TimerTable::default();
    let notify = Notify::Signal {
        target: Target::Process,
        signo: 10,
        value: 0,
    };
    let id = timers.create(mono(), notify, None).unwrap();
    let now = mono().now().unwrap();
    {
        let t = timers.posix.get_mut(&id).unwrap();
        t.deadline = Some(now - 35 * NS / 10);
        t.interval = NS;
    }
    // 4 periods ended: one signal, 3 overruns in it.
    let sent = timers.fire_due(|_, _| false);
    assert_eq!(sent.len(), 1);
    let (target, info) = sent[0];
    assert_eq!(
        (target, info.signo, info.code, info.pid),
        (Target::Process, 10, SI_TIMER, id)
    );
    assert_eq!(info.uid, 3);
    assert_eq!(info.value, id as u64);
    // Due again while its signal is still pending: only overruns.
    timers.posix.get_mut(&id).unwrap().deadline = Some(now - NS);
    assert!(timers.fire_due(|_, _| true).is_empty());
    // Taken: the count includes both.
    let mut taken = info;
    timers.dequeued(&mut taken);
    assert!(taken.uid >= 5, "{}", taken.uid);
    // Armed timers give the actor a wake-up; disarmed ones none.
    assert!(timers.next_wake().is_some());
    timers.delete(id).unwrap();
    assert_eq!(timers.next_wake(), None);
}
