//! Clocks and sleeping. The host's clocks are the guest's (both are Linux clock ids).

use super::{Ctx, SysResult};
use crate::errno::Errno;
use crate::thread::state::RestartBlock;

/// Clock ids a guest may name: REALTIME..BOOTTIME_ALARM and TAI (no per-process
/// CPU-clock ids encoded as negative numbers).
fn clock_id(id: u64) -> Result<libc::clockid_t, Errno> {
    match id as i32 {
        c @ (0..=9 | 11) => Ok(c),
        _ => Err(Errno::EINVAL),
    }
}

/// Reads and validates a guest `struct timespec` (EINVAL for a negative or unnormalised
/// value).
pub(super) fn read_ts(ctx: &Ctx, va: u64) -> Result<libc::timespec, Errno> {
    let [s, ns]: [i64; 2] = ctx.read_val(va)?;
    if !(0..1_000_000_000).contains(&ns) || s < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(libc::timespec {
        tv_sec: s,
        tv_nsec: ns,
    })
}

pub(super) fn write_ts(ctx: &Ctx, va: u64, t: &libc::timespec) -> Result<(), Errno> {
    ctx.write_val(va, &[t.tv_sec, t.tv_nsec])
}

/// clock_gettime. When the call is the vDSO's own fallback (see `guest::vvar`), it also
/// (re-)anchors the vDSO's clocks and answers with the anchor value.
pub fn clock_gettime(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let id = clock_id(a[0])?;
    let t = match ctx.proc.vdso.seed(&ctx.proc.mm, ctx.vcpu, id) {
        Some(t) => t,
        None => {
            let mut t = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: clock_gettime writes one timespec into the local `t`; an invalid id
            // only fails.
            if unsafe { libc::clock_gettime(id, &mut t) } != 0 {
                return Err(Errno::last());
            }
            t
        }
    };
    write_ts(ctx, a[1], &t)?;
    Ok(0)
}

pub fn clock_getres(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let id = clock_id(a[0])?;
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_getres writes one timespec into the local `t`; an invalid id only fails.
    if unsafe { libc::clock_getres(id, &mut t) } != 0 {
        return Err(Errno::last());
    }
    if a[1] != 0 {
        write_ts(ctx, a[1], &t)?;
    }
    Ok(0)
}

pub fn gettimeofday(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the local `t`.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut t) };
    if a[0] != 0 {
        ctx.write_val(a[0], &[t.tv_sec, t.tv_nsec / 1000])?;
    }
    if a[1] != 0 {
        // struct timezone: always zero on Linux today.
        ctx.write_val(a[1], &[0u32, 0u32])?;
    }
    Ok(0)
}

pub fn nanosleep(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let req = read_ts(ctx, a[0])?;
    sleep(ctx, libc::CLOCK_MONOTONIC, 0, &req, a[1])
}

pub fn clock_nanosleep(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const TIMER_ABSTIME: u64 = 1;
    let id = clock_id(a[0])?;
    if matches!(id, 2 | 3) {
        // Sleeping on the calling thread's own CPU clock is EINVAL; the process CPU
        // clock is allowed but is not worth emulating.
        return Err(if id == 3 {
            Errno::EINVAL
        } else {
            Errno::EOPNOTSUPP
        });
    }
    let req = read_ts(ctx, a[2])?;
    let abs = a[1] & TIMER_ABSTIME != 0;
    sleep(
        ctx,
        id,
        if abs { libc::TIMER_ABSTIME } else { 0 },
        &req,
        if abs { 0 } else { a[3] },
    )
}

/// Sleeps on `id`. Interrupted by a signal (the host call's EINTR): an absolute sleep
/// restarts as is unless a handler runs (ERESTARTNOHAND); a relative one writes the time
/// left to `rem_va` and records where it ends, so that `restart_syscall` sleeps only the
/// rest (ERESTART_RESTARTBLOCK), as Linux's hrtimer_nanosleep.
fn sleep(
    ctx: &mut Ctx,
    id: libc::clockid_t,
    flags: i32,
    req: &libc::timespec,
    rem_va: u64,
) -> SysResult {
    let mut rem = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `req` points at a live timespec and `rem` is a local the call may fill.
    let r = unsafe { libc::clock_nanosleep(id, flags, req, &mut rem) };
    if r == 0 {
        return Ok(0);
    }
    if r != libc::EINTR {
        return Err(Errno::from_host(r));
    }
    if flags & libc::TIMER_ABSTIME != 0 {
        return Err(Errno::ERESTARTNOHAND);
    }
    if rem_va != 0 {
        write_ts(ctx, rem_va, &rem)?;
    }
    let now = now(id);
    ctx.thread.restart = Some(RestartBlock {
        clock: id,
        end: add_ts(&now, &rem),
        rem_va,
    });
    Err(Errno::ERESTART_RESTARTBLOCK)
}

fn now(id: libc::clockid_t) -> libc::timespec {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the local `t`.
    unsafe { libc::clock_gettime(id, &mut t) };
    t
}

fn add_ts(a: &libc::timespec, b: &libc::timespec) -> libc::timespec {
    let ns = a.tv_nsec + b.tv_nsec;
    libc::timespec {
        tv_sec: a.tv_sec + b.tv_sec + ns / 1_000_000_000,
        tv_nsec: ns % 1_000_000_000,
    }
}

/// `end - now`, or zero once past.
fn until(end: &libc::timespec, now: &libc::timespec) -> libc::timespec {
    let ns =
        (end.tv_sec - now.tv_sec) as i128 * 1_000_000_000 + (end.tv_nsec - now.tv_nsec) as i128;
    let ns = ns.max(0);
    libc::timespec {
        tv_sec: (ns / 1_000_000_000) as i64,
        tv_nsec: (ns % 1_000_000_000) as i64,
    }
}

/// restart_syscall (128): resumes the thread's interrupted relative sleep for the time
/// left; without one, EINTR (as Linux's do_no_restart_syscall).
pub fn restart_syscall(ctx: &mut Ctx, _: [u64; 6]) -> SysResult {
    let Some(rb) = ctx.thread.restart.take() else {
        return Err(Errno::EINTR);
    };
    let left = until(&rb.end, &now(rb.clock));
    sleep(ctx, rb.clock, 0, &left, rb.rem_va)
}
