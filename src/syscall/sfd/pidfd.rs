//! pidfd_open, pidfd_getfd, process_madvise, process_mrelease: host pidfds. Guest pids are host pids, so a
//! pidfd of any process (this one, a child, another guest or native process) is the
//! host's, and polling it, waiting on it and pidfd_send_signal work as on Linux.
//! pidfd_getfd reaches this process's own fds and a native process's; another elfuse
//! process's guest fd numbers are its own table's, so its description is asked of it
//! over the peer channel (`procremote::get_fd`: a host fd of the same description, as
//! SCM_RIGHTS). A description elfuse emulates there (a signalfd, an open /proc file of
//! that guest's) lives in that process's state and cannot be taken: EBADF.
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
            .fds()
            .dup(a[1] as i32, true, 0)
            .map(|n| n as u64)
            .map_err(fd_err);
    }
    if crate::syscall::procpeer::answers(pid) {
        let fd = crate::syscall::procremote::get_fd(pid, a[1] as i32).map_err(|e| {
            // A denied access check is EPERM for pidfd_getfd.
            if e == Errno::EACCES {
                Errno::EPERM
            } else {
                e
            }
        });
        return install_new(ctx, fd, true);
    }
    if host::is_elfuse(pid) {
        // Exiting: it no longer answers.
        return Err(Errno::ESRCH);
    }
    install_new(ctx, host::pidfd_getfd(raw, a[1] as i32), true)
}

/// process_madvise(pidfd, iovec, vlen, advice, flags): madvise over each range; returns
/// the bytes advised (fewer after a failure past the first range). For this process any
/// advice madvise takes (Linux 6.13); another process only the hints WILLNEED, COLD,
/// PAGEOUT, COLLAPSE: a native process's go to the host, another elfuse process's are
/// asked of it over the peer channel (its guest RAM is its own).
pub fn process_madvise(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const UIO_MAXIOV: u64 = 1024;
    let (vlen, advice) = (a[2], a[3] as i32);
    if a[4] != 0 || vlen > UIO_MAXIOV {
        return Err(Errno::EINVAL);
    }
    let (pid, raw) = pid_of(ctx, a[0])?;
    let iov = ctx.read_bytes(a[1], vlen as usize * 16)?;
    if pid != ctx.proc.pid {
        if !matches!(advice, 3 | 20 | 21 | 25) {
            return Err(Errno::EINVAL);
        }
        if crate::syscall::procpeer::answers(pid) {
            return crate::syscall::procremote::madvise(pid, &iov, advice).map_err(|e| {
                if e == Errno::EACCES {
                    Errno::EPERM
                } else {
                    e
                }
            });
        }
        if host::is_elfuse(pid) {
            return Err(Errno::ESRCH);
        }
        return host::process_madvise(raw, &iov, vlen as usize, advice);
    }
    advise_ranges(ctx.proc, &iov, advice)
}

/// madvise of `proc`'s guest memory over each (base, len) guest iovec in `iov`: the bytes
/// advised (fewer after a failure past the first range).
pub fn advise_ranges(proc: &crate::process::Process, iov: &[u8], advice: i32) -> SysResult {
    let mut total = 0u64;
    for e in iov.chunks_exact(16) {
        let base = u64::from_le_bytes(e[0..8].try_into().unwrap());
        let len = u64::from_le_bytes(e[8..16].try_into().unwrap());
        match proc.mm().advise(base, len, advice) {
            Ok(()) => total += len,
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(total)
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

    pub fn process_madvise(pidfd: i32, iov: &[u8], n: usize, advice: i32) -> SysResult {
        // SAFETY: `iov` holds `n` iovecs, addresses in the target process.
        crate::syscall::host_ret(unsafe { libc::syscall(440, pidfd, iov.as_ptr(), n, advice, 0) })
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

    pub fn process_madvise(_: i32, _: &[u8], _: usize, _: i32) -> SysResult {
        Err(Errno::ENOSYS)
    }

    pub fn is_elfuse(_: i32) -> bool {
        true
    }
}
