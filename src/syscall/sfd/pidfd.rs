//! pidfd_open: a host pidfd. The guest knows only its own process today (guest pids are
//! virtual: the guest's pid maps to elfuse's own host pid).
//! macOS: kqueue EVFILT_PROC (NOTE_EXIT) behind a `Synthetic` description.

use super::{install_new, open_flags, Ctx, GUEST_O_NONBLOCK};
use crate::errno::Errno;
use crate::syscall::SysResult;

pub fn pidfd_open(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (nonblock, _) = open_flags(a[1], GUEST_O_NONBLOCK)?;
    let pid = a[0] as i32;
    if pid <= 0 {
        return Err(Errno::EINVAL);
    }
    if pid != ctx.proc.pid {
        return Err(Errno::ESRCH);
    }
    // Linux always sets close-on-exec on a pidfd.
    install_new(ctx, host::pidfd_open_self(nonblock), true)
}

#[cfg(target_os = "linux")]
mod host {
    use std::os::fd::OwnedFd;

    use crate::errno::Errno;

    pub fn pidfd_open_self(nonblock: i32) -> Result<OwnedFd, Errno> {
        // PIDFD_NONBLOCK is O_NONBLOCK; the host sets O_CLOEXEC itself.
        // SAFETY: pidfd_open takes integers (our own pid); `owned` takes ownership of the new
        // fd only if it is valid.
        super::super::owned(unsafe {
            libc::syscall(libc::SYS_pidfd_open, libc::getpid(), nonblock)
        })
    }
}

#[cfg(not(target_os = "linux"))]
mod host {
    use std::os::fd::OwnedFd;

    use crate::errno::Errno;

    pub fn pidfd_open_self(_: i32) -> Result<OwnedFd, Errno> {
        crate::syscall::sfd::unsupported()
    }
}
