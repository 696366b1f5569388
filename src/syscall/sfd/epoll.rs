//! epoll_create1/ctl/pwait/pwait2: the host's epoll over the host fds behind guest fds.
//!
//! The instance is one description, so a dup'ed epoll fd shares it; an epoll fd inside
//! another nests natively (the host finds loops: ELOOP). The ABI differs: arm64's
//! `struct epoll_event` is 16 bytes (u32 events, 4 bytes padding, u64 data), x86_64's is
//! packed in 12; the data word is the guest's, passed through untouched.
//!
//! Registrations do not hold the registered description's `Arc`: Linux drops a
//! registration when the last fd of its description closes, and the host does exactly
//! that when our last `Arc` drops and closes the one host fd behind the description.
//! Linux keys a registration by (description, fd number), so two dup aliases can both
//! be registered; all aliases share one host fd, so a second alias is registered under a
//! host dup of it (`OpenFile::epoll_keys`), which lives as long as the description.
//!
//! macOS: kqueue (EVFILT_READ/WRITE, EV_CLEAR for EPOLLET, EV_DISPATCH for EPOLLONESHOT),
//! with the interest list (events, data) kept here since kevent's udata is per filter.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use super::{install_new, open_flags, Ctx, GUEST_O_CLOEXEC};
use crate::errno::Errno;
use crate::syscall::SysResult;

const EPOLL_CTL_ADD: i32 = 1;
const EPOLL_CTL_DEL: u64 = 2;
/// sizeof(struct epoll_event) on arm64.
const GUEST_EVENT: usize = 16;
/// Linux's EP_MAX_EVENTS for arm64.
const EP_MAX_EVENTS: u64 = i32::MAX as u64 / GUEST_EVENT as u64;
/// Events taken from the host per call at most (a bigger guest buffer simply gets the
/// rest on the next call, as with any epoll_wait whose buffer is smaller than the ready
/// list).
const BATCH: usize = 1024;

pub fn epoll_create1(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (_, cloexec) = open_flags(a[0], GUEST_O_CLOEXEC)?;
    install_new(ctx, host::create(), cloexec)
}

pub fn epoll_ctl(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let op = a[1] as i32;
    // Linux reads the event first (for every op but DEL, even an invalid one).
    let ev = if a[1] as u32 as u64 != EPOLL_CTL_DEL {
        let [events, data]: [u64; 2] = ctx.read_val(a[3])?;
        Some(Event {
            events: events as u32,
            data,
        })
    } else {
        None
    };
    let ep = ctx.file(a[0])?;
    let target = ctx.file(a[2])?;
    // The host fd for (description, fd number); the host checks everything else (the
    // epoll fd, the op, EEXIST/ENOENT, EPERM, ELOOP).
    let raw = if Arc::ptr_eq(&ep, &target) {
        target.raw()
    } else {
        let key = target
            .epoll_keys
            .host_fd(target.raw(), a[2] as i32, op == EPOLL_CTL_ADD)
            .map_err(Errno::from)?;
        match key {
            Some(raw) => raw,
            // Another fd number of this description is registered, this one never was:
            // ask the host about a fresh host fd of the same file, so it answers as
            // Linux does for an unregistered key (ENOENT, or EINVAL first).
            None => {
                let unused = dup_host(target.raw())?;
                return host::ctl(ep.raw(), op, unused.as_raw_fd(), ev);
            }
        }
    };
    host::ctl(ep.raw(), op, raw, ev)
}

fn dup_host(fd: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: F_DUPFD_CLOEXEC on a host fd the caller keeps open; the result is owned.
    let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if d < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the dup succeeded (checked): `d` is a new fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(d) })
}

/// The guest's view of one event (arm64's layout is written out in `wait`).
#[derive(Clone, Copy, Debug, Default)]
struct Event {
    events: u32,
    data: u64,
}

/// How long a wait may block.
enum Timeout {
    Ms(i32),
    /// None: forever.
    Ts(Option<libc::timespec>),
}

fn wait(ctx: &mut Ctx, a: [u64; 6], timeout: Timeout) -> SysResult {
    let mask = crate::syscall::signal::read_sigmask(ctx, a[4], a[5])?;
    let max = a[2] as i32;
    if max <= 0 || max as u64 > EP_MAX_EVENTS {
        return Err(Errno::EINVAL);
    }
    // Checked before waiting (EFAULT even when nothing is ready), written after.
    ctx.user_slice(a[1], max as usize * GUEST_EVENT, true)?;
    let ep = ctx.file(a[0])?;
    let mut evs = vec![Event::default(); (max as usize).min(BATCH)];
    // The mask applies for the wait (and to the signals it lets through).
    let n = crate::syscall::signal::with_sigmask(ctx, mask, |_| {
        host::wait(ep.raw(), &mut evs, &timeout).map(|n| n as u64)
    })? as usize;
    let out = ctx.user_slice(a[1], max as usize * GUEST_EVENT, true)?;
    for (i, e) in evs[..n].iter().enumerate() {
        let mut o = [0u8; GUEST_EVENT];
        o[..4].copy_from_slice(&e.events.to_le_bytes());
        o[8..].copy_from_slice(&e.data.to_le_bytes());
        out.sub(i * GUEST_EVENT, GUEST_EVENT).copy_from(&o);
    }
    Ok(n as u64)
}

pub fn epoll_pwait(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    wait(ctx, a, Timeout::Ms(a[3] as i32))
}

pub fn epoll_pwait2(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let ts = if a[3] == 0 {
        None
    } else {
        Some(crate::syscall::time::read_ts(ctx, a[3])?)
    };
    wait(ctx, a, Timeout::Ts(ts))
}

#[cfg(target_os = "linux")]
mod host {
    use std::os::fd::OwnedFd;

    use super::{Event, Timeout};
    use crate::errno::Errno;
    use crate::syscall::{host_ret, SysResult};

    pub fn create() -> Result<OwnedFd, Errno> {
        // SAFETY: no pointers; `owned` takes ownership of the new fd only if it is valid.
        super::super::owned(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) } as i64)
    }

    /// EPOLL_CTL_* and the EPOLL* event bits are the same numbers on both.
    pub fn ctl(ep: i32, op: i32, fd: i32, ev: Option<Event>) -> SysResult {
        let mut h = ev.map(|e| libc::epoll_event {
            events: e.events,
            u64: e.data,
        });
        let p = h
            .as_mut()
            .map_or(std::ptr::null_mut(), |h| h as *mut libc::epoll_event);
        // SAFETY: `p` is null (EPOLL_CTL_DEL) or points at `h`, a local epoll_event alive
        // across the call.
        host_ret(unsafe { libc::epoll_ctl(ep, op, fd, p) } as i64)
    }

    pub fn wait(ep: i32, out: &mut [Event], timeout: &Timeout) -> Result<usize, Errno> {
        let mut h = vec![libc::epoll_event { events: 0, u64: 0 }; out.len()];
        let (p, n) = (h.as_mut_ptr(), h.len() as i32);
        let r = match timeout {
            // SAFETY: `p` points at `h`, a host buffer of `n` epoll_events the call may fill.
            Timeout::Ms(ms) => unsafe { libc::epoll_wait(ep, p, n, *ms) as i64 },
            Timeout::Ts(ts) => {
                let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
                let r =
                    // SAFETY: `p` points at `h`, a host buffer of `n` epoll_events; `tsp` is
                    // null or points at `ts`, alive across the call; the sigmask pointer is
                    // null (size 8 ignored).
                    unsafe { libc::syscall(libc::SYS_epoll_pwait2, ep, p, n, tsp, 0usize, 8usize) };
                if r < 0 && Errno::last() == Errno::ENOSYS {
                    // Hosts before Linux 5.11: milliseconds, rounded up.
                    let ms = ts.map_or(-1, |t| {
                        let ms = t.tv_sec.saturating_mul(1000) + (t.tv_nsec + 999_999) / 1_000_000;
                        ms.min(i32::MAX as i64) as i32
                    });
                    // SAFETY: `p` points at `h`, a host buffer of `n` epoll_events the call
                    // may fill.
                    unsafe { libc::epoll_wait(ep, p, n, ms) as i64 }
                } else {
                    r
                }
            }
        };
        let n = host_ret(r)? as usize;
        for (o, e) in out.iter_mut().zip(&h[..n]) {
            *o = Event {
                events: e.events,
                data: e.u64,
            };
        }
        Ok(n)
    }
}

#[cfg(not(target_os = "linux"))]
mod host {
    use std::os::fd::OwnedFd;

    use super::{Event, Timeout};
    use crate::errno::Errno;
    use crate::syscall::sfd::unsupported;
    use crate::syscall::SysResult;

    pub fn create() -> Result<OwnedFd, Errno> {
        unsupported()
    }
    pub fn ctl(_: i32, _: i32, _: i32, _: Option<Event>) -> SysResult {
        unsupported()
    }
    pub fn wait(_: i32, _: &mut [Event], _: &Timeout) -> Result<usize, Errno> {
        unsupported()
    }
}
