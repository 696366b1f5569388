//! Interval timers and POSIX timers: getitimer, setitimer, timer_create, timer_settime,
//! timer_gettime, timer_getoverrun, timer_delete. The timers themselves are
//! owned by the process's signal/itimer actor (`crate::signal::timers`); this file checks and translates the guest's
//! structures. (arm64 has no alarm syscall: libcs build alarm() on setitimer.)

use super::{Ctx, SysResult};
use crate::errno::Errno;
use crate::signal::timers::{Clock, Notify, Setting, Which};
use crate::signal::{Target, NSIG};

const NS: u64 = 1_000_000_000;

const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD: i32 = 2;
const SIGEV_THREAD_ID: i32 = 4;
const TIMER_ABSTIME: u64 = 1;

fn which(a: u64) -> Result<Which, Errno> {
    match a as i32 {
        0 => Ok(Which::Real),
        1 => Ok(Which::Virtual),
        2 => Ok(Which::Prof),
        _ => Err(Errno::EINVAL),
    }
}

/// (sec, sub-second units) → ns; EINVAL when negative or not normalised (`per_sec`:
/// 10^6 for a timeval, 10^9 for a timespec). Huge values saturate (never expire).
fn to_ns(sec: i64, sub: i64, per_sec: i64) -> Result<u64, Errno> {
    if sec < 0 || !(0..per_sec).contains(&sub) {
        return Err(Errno::EINVAL);
    }
    let unit = NS / per_sec as u64;
    Ok((sec as u64)
        .saturating_mul(NS)
        .saturating_add(sub as u64 * unit))
}

fn split(ns: u64, per_sec: i64) -> [i64; 2] {
    let unit = NS / per_sec as u64;
    [(ns / NS) as i64, ((ns % NS) / unit) as i64]
}

/// A guest `struct itimerval` / `struct itimerspec`: {interval, value}, each {sec, sub}.
fn read_setting(ctx: &Ctx, va: u64, per_sec: i64) -> Result<Setting, Errno> {
    let [is, isub, vs, vsub]: [i64; 4] = ctx.read_val(va)?;
    Ok(Setting {
        interval: to_ns(is, isub, per_sec)?,
        value: to_ns(vs, vsub, per_sec)?,
    })
}

fn write_setting(ctx: &Ctx, va: u64, s: Setting, per_sec: i64) -> Result<(), Errno> {
    let [is, isub] = split(s.interval, per_sec);
    let [vs, vsub] = split(s.value, per_sec);
    ctx.write_val(va, &[is, isub, vs, vsub])
}

/// getitimer(which, curr_value).
pub fn getitimer(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let w = which(a[0])?;
    let cur = ctx.proc.signals.get_itimer(w);
    write_setting(ctx, a[1], cur, 1_000_000)?;
    Ok(0)
}

/// setitimer(which, new_value, old_value). A NULL new value disarms, as Linux.
pub fn setitimer(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let w = which(a[0])?;
    let new = match a[1] {
        0 => Setting::default(),
        va => read_setting(ctx, va, 1_000_000)?,
    };
    // As Linux, an unwritable old value is EFAULT after the change.
    let old = ctx.proc.signals.set_itimer(w, new);
    if a[2] != 0 {
        write_setting(ctx, a[2], old, 1_000_000)?;
    }
    Ok(0)
}

/// The clocks timer_create accepts.
fn timer_clock(ctx: &Ctx, id: u64) -> Result<Clock, Errno> {
    let id = id as i32;
    if id < 0 {
        // A CPU clock by pid or tid (glibc names its own this way: pid/tid 0 is the
        // caller): ~pid << 3 | per-thread 4 | PROF 0, VIRT 1 or SCHED 2.
        let (who, per_thread, kind) = (!(id >> 3), id & 4 != 0, id & 3);
        if kind == 3 {
            return Err(Errno::EINVAL);
        }
        return match per_thread {
            false if who == 0 || who == ctx.proc.pid => Ok(Clock::Host(!0 << 3 | kind)),
            true if who == 0 || who == ctx.thread.tid => Ok(Clock::this_thread(kind)),
            // Another process's or another thread's CPU clock.
            _ => Err(Errno::EINVAL),
        };
    }
    match id {
        c @ (libc::CLOCK_REALTIME
        | libc::CLOCK_MONOTONIC
        | libc::CLOCK_BOOTTIME
        | libc::CLOCK_TAI
        | libc::CLOCK_PROCESS_CPUTIME_ID) => Ok(Clock::Host(c)),
        libc::CLOCK_THREAD_CPUTIME_ID => Ok(Clock::this_thread(2)),
        // MONOTONIC_RAW and the coarse clocks cannot arm timers on Linux; the alarm
        // clocks need CAP_WAKE_ALARM and an RTC we do not emulate.
        4..=6 | 8 | 9 => Err(Errno::EOPNOTSUPP),
        _ => Err(Errno::EINVAL),
    }
}

/// timer_create(clockid, sevp, timerid).
pub fn timer_create(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let clock = timer_clock(ctx, a[0])?;
    let (notify, value) = if a[1] == 0 {
        // No sigevent: SIGEV_SIGNAL, SIGALRM, si_value = the timer id.
        let n = Notify::Signal {
            target: Target::Process,
            signo: crate::signal::SIGALRM,
            value: 0,
        };
        (n, None)
    } else {
        // struct sigevent: sigev_value (8), sigev_signo, sigev_notify, then the union
        // whose first member is the thread id.
        let [value, w1, w2, ..]: [u64; 8] = ctx.read_val(a[1])?;
        let (signo, how, tid) = (w1 as i32, (w1 >> 32) as i32, w2 as i32);
        let target = match how {
            SIGEV_NONE => None,
            SIGEV_SIGNAL | SIGEV_THREAD => Some(Target::Process),
            SIGEV_THREAD_ID if ctx.proc.threads.get(tid).is_some() => Some(Target::Thread(tid)),
            _ => return Err(Errno::EINVAL),
        };
        let n = match target {
            None => Notify::None,
            Some(_) if !(1..=NSIG as i32).contains(&signo) => return Err(Errno::EINVAL),
            Some(target) => Notify::Signal {
                target,
                signo: signo as u32,
                value,
            },
        };
        (n, Some(value))
    };
    let id = ctx.proc.signals.timer_create(clock, notify, value)?;
    if let Err(e) = ctx.write_val(a[2], &id) {
        let _ = ctx.proc.signals.timer_delete(id);
        return Err(e);
    }
    Ok(0)
}

/// timer_settime(timerid, flags, new_value, old_value).
pub fn timer_settime(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    if a[2] == 0 {
        return Err(Errno::EINVAL);
    }
    let new = read_setting(ctx, a[2], NS as i64)?;
    let abs = a[1] & TIMER_ABSTIME != 0;
    let old = ctx.proc.signals.timer_settime(a[0] as i32, abs, new)?;
    if a[3] != 0 {
        write_setting(ctx, a[3], old, NS as i64)?;
    }
    Ok(0)
}

/// timer_gettime(timerid, curr_value).
pub fn timer_gettime(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let cur = ctx.proc.signals.timer_gettime(a[0] as i32)?;
    write_setting(ctx, a[1], cur, NS as i64)?;
    Ok(0)
}

/// timer_getoverrun(timerid).
pub fn timer_getoverrun(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    ctx.proc
        .signals
        .timer_overrun(a[0] as i32)
        .map(|n| n as u64)
}

/// timer_delete(timerid).
pub fn timer_delete(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    ctx.proc.signals.timer_delete(a[0] as i32).map(|()| 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_check_and_round_trip() {
        assert_eq!(to_ns(1, 500_000, 1_000_000), Ok(1_500_000_000));
        assert_eq!(to_ns(0, 1_000_000, 1_000_000), Err(Errno::EINVAL));
        assert_eq!(to_ns(-1, 0, 1_000_000), Err(Errno::EINVAL));
        assert_eq!(to_ns(0, -1, NS as i64), Err(Errno::EINVAL));
        assert_eq!(to_ns(i64::MAX, 0, NS as i64), Ok(u64::MAX));
        assert_eq!(split(1_500_000_999, 1_000_000), [1, 500_000]);
        assert_eq!(split(1_500_000_999, NS as i64), [1, 500_000_999]);
    }
}
