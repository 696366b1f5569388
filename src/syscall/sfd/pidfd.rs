//! pidfd_open, pidfd_getfd, process_mrelease: host pidfds. Guest pids are host pids, so a
//! pidfd of any process (this one, a child, another guest or native process) is the
//! host's, and polling it, waiting on it and pidfd_send_signal work as on Linux.
//! pidfd_getfd reaches this process's own fds and a native process's; the fds of another
//! elfuse process are its own table's (guest fd numbers are virtual there) and cannot be
//! taken from outside: EPERM, the answer a denied ptrace check gives.
//! macOS: kqueue EVFILT_PROC (NOTE_EXIT) behind a `Synthetic` description.

use super::{install_new, open_flags, Ctx, GUEST_O_NONBLOCK};
use crate::errno::Errno;
use crate::syscall::{fd_err, SysResult};

pub fn pidfd_open(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (nonblock, _) = open_flags(a[1], GUEST_O_NONBLOCK)?;
    let pid = a[0] as i32;
    if pid <= 0 {
        return Err(Errno::EINVAL);
    }
    // Linux always sets close-on-exec on a pidfd.
    install_new(ctx, host::pidfd_open(pid, nonblock), true)
}

/// The host pid a guest pidfd refers to (its fdinfo's "Pid:"), and the host fd.
pub fn pid_of(ctx: &Ctx, fd: u64) -> Result<(i32, i32), Errno> {
    let f = ctx.file(fd)?;
    let fdinfo = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", f.raw()))
        .map_err(|_| Errno::EBADF)?;
    let pid = fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|v| v.trim().parse::<i32>().ok())
        .ok_or(Errno::EBADF)?;
    // -1: the process has exited.
    if pid <= 0 {
        return Err(Errno::ESRCH);
    }
    Ok((pid, f.raw()))
}

/// pidfd_getfd(pidfd, targetfd, flags): a duplicate (close-on-exec) of another process's
/// fd.
pub fn pidfd_getfd(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    if a[2] != 0 {
        return Err(Errno::EINVAL);
    }
    let (pid, raw) = pid_of(ctx, a[0])?;
    if pid == ctx.proc.pid {
        return ctx
            .proc
            .fds()
            .dup(a[1] as i32, true, 0)
            .map(|n| n as u64)
            .map_err(fd_err);
    }
    if host::is_elfuse(pid) {
        return Err(Errno::EPERM);
    }
    install_new(ctx, host::pidfd_getfd(raw, a[1] as i32), true)
}

/// process_mrelease(pidfd, flags): the host's (the memory of a process being killed).
pub fn process_mrelease(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    host::process_mrelease(f.raw(), a[1] as u32)
}

#[cfg(target_os = "linux")]
mod host {
    use std::os::fd::OwnedFd;

    use crate::errno::Errno;
    use crate::syscall::SysResult;

    pub fn pidfd_open(pid: i32, nonblock: i32) -> Result<OwnedFd, Errno> {
        // PIDFD_NONBLOCK is O_NONBLOCK; the host sets O_CLOEXEC itself.
        // SAFETY: no memory is passed.
        super::super::owned(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, nonblock) })
    }

    pub fn pidfd_getfd(pidfd: i32, fd: i32) -> Result<OwnedFd, Errno> {
        // SAFETY: no memory is passed; the new fd is owned by the caller.
        super::super::owned(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) })
    }

    pub fn process_mrelease(pidfd: i32, flags: u32) -> SysResult {
        // SAFETY: no memory is passed.
        crate::syscall::host_ret(unsafe { libc::syscall(448, pidfd, flags) })
    }

    pub use crate::syscall::sigremote::is_elfuse;
}

#[cfg(not(target_os = "linux"))]
mod host {
    use std::os::fd::OwnedFd;

    use crate::errno::Errno;
    use crate::syscall::SysResult;

    pub fn pidfd_open(_: i32, _: i32) -> Result<OwnedFd, Errno> {
        crate::syscall::sfd::unsupported()
    }

    pub fn pidfd_getfd(_: i32, _: i32) -> Result<OwnedFd, Errno> {
        crate::syscall::sfd::unsupported()
    }

    pub fn process_mrelease(_: i32, _: u32) -> SysResult {
        Err(Errno::ENOSYS)
    }

    pub fn is_elfuse(_: i32) -> bool {
        true
    }
}
