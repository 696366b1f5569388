//! Synthetic fds: eventfd2, timerfd, epoll, inotify, pidfd_open and signalfd4.
//!
//! Each lives in the guest fd table like any other description (installed with
//! [`Ctx::install`], found with [`Ctx::file`]), so dup aliases share one instance: one
//! eventfd counter, one epoll interest list, one signalfd mask. On a Linux host the first
//! five are the host's own objects (their semantics are Linux's by construction); only
//! the ABI is translated: arm64's 16-byte `struct epoll_event`, guest fd numbers, flag
//! words, guest paths. Each file keeps its host calls in one `host` module so a macOS
//! port (kqueue, EVFILT_TIMER/VNODE/PROC/USER) replaces only those.
//!
//! signalfd cannot be the host's: signals are emulated (`crate::signal`). It is a
//! [`Synthetic`](elfuse_actors::fdtable::Synthetic) description over a host eventfd that
//! carries its readiness, and `read` is routed here to dequeue `signalfd_siginfo`s.

pub mod epoll;
pub mod eventfd;
pub mod inotify;
pub mod pidfd;
pub mod signalfd;
pub mod timerfd;

use std::os::fd::{FromRawFd, OwnedFd};

use elfuse_actors::fdtable::OpenFile;

use super::{host_ret, Ctx, SysResult};
use crate::errno::Errno;

/// Guest (asm-generic) O_NONBLOCK: EFD_/TFD_/SFD_/IN_NONBLOCK, PIDFD_NONBLOCK.
const GUEST_O_NONBLOCK: u64 = 0o4000;
/// Guest O_CLOEXEC: EFD_/TFD_/SFD_/IN_/EPOLL_CLOEXEC.
const GUEST_O_CLOEXEC: u64 = super::abi::GUEST_O_CLOEXEC;
/// sizeof(struct signalfd_siginfo).
const SIGINFO_SIZE: usize = 128;

/// Refuses flag bits outside `allowed`; returns (host O_NONBLOCK or 0, guest CLOEXEC).
fn open_flags(flags: u64, allowed: u64) -> Result<(i32, bool), Errno> {
    if flags & !allowed != 0 {
        return Err(Errno::EINVAL);
    }
    let nonblock = if flags & GUEST_O_NONBLOCK != 0 {
        libc::O_NONBLOCK
    } else {
        0
    };
    Ok((nonblock, flags & GUEST_O_CLOEXEC != 0))
}

/// Takes ownership of the fd a host call returned (or its error).
#[cfg(target_os = "linux")]
fn owned(r: i64) -> Result<OwnedFd, Errno> {
    let raw = host_ret(r)? as i32;
    // SAFETY: the host call just created this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Installs a fresh host fd as a new guest fd.
fn install_new(ctx: &Ctx, fd: Result<OwnedFd, Errno>, cloexec: bool) -> SysResult {
    ctx.install(OpenFile::host(fd?, None), cloexec)
}

/// What the host parts of this module return where the host has no such object yet.
#[cfg(not(target_os = "linux"))]
fn unsupported<T>() -> Result<T, Errno> {
    Err(Errno::ENOSYS)
}
