//! eventfd2: the host's eventfd. Aliases share the description, hence one counter and
//! one readiness; read/write/poll/epoll go to the host fd unchanged.
//! macOS: a pipe or kqueue EVFILT_USER plus a counter behind a `Synthetic` description.

use super::{install_new, open_flags, Ctx, GUEST_O_CLOEXEC, GUEST_O_NONBLOCK};
use crate::syscall::SysResult;

const EFD_SEMAPHORE: u64 = 1;

pub fn eventfd2(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (nonblock, cloexec) = open_flags(a[1], EFD_SEMAPHORE | GUEST_O_NONBLOCK | GUEST_O_CLOEXEC)?;
    let sem = if a[1] & EFD_SEMAPHORE != 0 {
        host::EFD_SEMAPHORE
    } else {
        0
    };
    let r = host::eventfd(a[0] as u32, nonblock | sem);
    install_new(ctx, r, cloexec)
}

#[cfg(target_os = "linux")]
mod host {
    use std::os::fd::OwnedFd;

    use crate::errno::Errno;

    pub const EFD_SEMAPHORE: i32 = libc::EFD_SEMAPHORE;

    /// A host eventfd (always CLOEXEC on the host); `flags` are host EFD_ bits.
    pub fn eventfd(init: u32, flags: i32) -> Result<OwnedFd, Errno> {
        // EFD_NONBLOCK is O_NONBLOCK on Linux.
        // SAFETY: no pointers; `owned` takes ownership of the new fd only if it is valid.
        super::super::owned(unsafe { libc::eventfd(init, flags | libc::EFD_CLOEXEC) } as i64)
    }
}

#[cfg(not(target_os = "linux"))]
mod host {
    use std::os::fd::OwnedFd;

    use crate::errno::Errno;

    pub const EFD_SEMAPHORE: i32 = 1;

    pub fn eventfd(_: u32, _: i32) -> Result<OwnedFd, Errno> {
        crate::syscall::sfd::unsupported()
    }
}
