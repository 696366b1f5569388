//! timerfd_create/settime/gettime: the host's timerfd (the guest's clocks are the
//! host's). `struct itimerspec` is four 64-bit words on both arm64 and x86_64; the host
//! validates the values, the flags and that the fd is a timerfd. Reads (the expiration
//! count, overruns included) go to the host fd.
//! macOS: kqueue EVFILT_TIMER (NOTE_NSECONDS, NOTE_ABSOLUTE) with an overrun count
//! behind a `Synthetic` description.

use super::{install_new, open_flags, Ctx, GUEST_O_CLOEXEC, GUEST_O_NONBLOCK};
use crate::errno::Errno;
use crate::syscall::SysResult;

const TFD_TIMER_ABSTIME: u64 = 1;
const TFD_TIMER_CANCEL_ON_SET: u64 = 2;

type ItimerSpec = [i64; 4];

pub fn timerfd_create(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (nonblock, cloexec) = open_flags(a[1], GUEST_O_NONBLOCK | GUEST_O_CLOEXEC)?;
    // REALTIME, MONOTONIC, BOOTTIME, REALTIME_ALARM, BOOTTIME_ALARM.
    let clock = match a[0] {
        c @ (0 | 1 | 7 | 8 | 9) => c as i32,
        _ => return Err(Errno::EINVAL),
    };
    install_new(ctx, host::create(clock, nonblock), cloexec)
}

pub fn timerfd_settime(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let flags = a[1];
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(Errno::EINVAL);
    }
    let new: ItimerSpec = ctx.read_val(a[2])?;
    let f = ctx.file(a[0])?;
    let old = host::settime(f.raw(), flags as i32, new)?;
    if a[3] != 0 {
        ctx.write_val(a[3], &old)?;
    }
    Ok(0)
}

pub fn timerfd_gettime(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    let cur = host::gettime(f.raw())?;
    ctx.write_val(a[1], &cur)?;
    Ok(0)
}

#[cfg(target_os = "linux")]
mod host {
    use std::os::fd::OwnedFd;

    use super::{Errno, ItimerSpec};
    use crate::syscall::host_ret;

    /// TFD_NONBLOCK is O_NONBLOCK, TFD_TIMER_* and the clock ids are Linux's.
    pub fn create(clock: i32, nonblock: i32) -> Result<OwnedFd, Errno> {
        // SAFETY: no pointers; `owned` takes ownership of the new fd only if it is valid.
        let r = unsafe { libc::timerfd_create(clock, nonblock | libc::TFD_CLOEXEC) };
        super::super::owned(r as i64)
    }

    fn to_host(v: ItimerSpec) -> libc::itimerspec {
        let ts = |s, ns| libc::timespec {
            tv_sec: s,
            tv_nsec: ns,
        };
        libc::itimerspec {
            it_interval: ts(v[0], v[1]),
            it_value: ts(v[2], v[3]),
        }
    }

    fn from_host(v: &libc::itimerspec) -> ItimerSpec {
        [
            v.it_interval.tv_sec,
            v.it_interval.tv_nsec,
            v.it_value.tv_sec,
            v.it_value.tv_nsec,
        ]
    }

    pub fn settime(fd: i32, flags: i32, new: ItimerSpec) -> Result<ItimerSpec, Errno> {
        let new = to_host(new);
        let mut old = to_host([0; 4]);
        // SAFETY: `new` and `old` are local itimerspecs alive across the call; `fd` is the
        // caller's timerfd.
        host_ret(unsafe { libc::timerfd_settime(fd, flags, &new, &mut old) } as i64)?;
        Ok(from_host(&old))
    }

    pub fn gettime(fd: i32) -> Result<ItimerSpec, Errno> {
        let mut cur = to_host([0; 4]);
        // SAFETY: `cur` is a local itimerspec the call fills.
        host_ret(unsafe { libc::timerfd_gettime(fd, &mut cur) } as i64)?;
        Ok(from_host(&cur))
    }
}

#[cfg(not(target_os = "linux"))]
mod host {
    use std::os::fd::OwnedFd;

    use super::{Errno, ItimerSpec};
    use crate::syscall::sfd::unsupported;

    pub fn create(_: i32, _: i32) -> Result<OwnedFd, Errno> {
        unsupported()
    }
    pub fn settime(_: i32, _: i32, _: ItimerSpec) -> Result<ItimerSpec, Errno> {
        unsupported()
    }
    pub fn gettime(_: i32) -> Result<ItimerSpec, Errno> {
        unsupported()
    }
}
