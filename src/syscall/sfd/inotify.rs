//! inotify_init1/add_watch/rm_watch: the host's inotify. Watched paths are guest paths
//! (absolute ones go through --sysroot); the IN_* bits and `struct inotify_event` are the
//! same on arm64 and x86_64, and event names are file names relative to the watched
//! directory, so reads go to the host fd unchanged.
//! macOS: FSEvents or kqueue EVFILT_VNODE per watched file, with directory rescans to
//! name the entries, behind a `Synthetic` description that formats `inotify_event`s.

use std::ffi::CString;

use super::{install_new, open_flags, Ctx, GUEST_O_CLOEXEC, GUEST_O_NONBLOCK};
use crate::errno::Errno;
use crate::syscall::SysResult;

pub fn inotify_init1(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (nonblock, cloexec) = open_flags(a[0], GUEST_O_NONBLOCK | GUEST_O_CLOEXEC)?;
    install_new(ctx, host::init(nonblock), cloexec)
}

pub fn inotify_add_watch(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    let path = ctx.read_path(a[1])?;
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    // IN_DONT_FOLLOW: a last symlink is watched itself.
    let how = if a[2] & 0x0200_0000 != 0 {
        crate::syscall::resolve::NOFOLLOW
    } else {
        crate::syscall::resolve::FOLLOW
    };
    let r = crate::syscall::resolve::resolve(ctx, super::super::abi::AT_FDCWD as u64, &path, how)?;
    let c = match r.dir.raw() {
        libc::AT_FDCWD => r.path,
        d => CString::new(format!("/proc/self/fd/{d}/{}", r.path.to_string_lossy()))
            .map_err(|_| Errno::EINVAL)?,
    };
    host::add_watch(f.raw(), &c, a[2] as u32)
}

pub fn inotify_rm_watch(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    host::rm_watch(f.raw(), a[1] as i32)
}

#[cfg(target_os = "linux")]
mod host {
    use std::ffi::CStr;
    use std::os::fd::OwnedFd;

    use crate::errno::Errno;
    use crate::syscall::{host_ret, SysResult};

    /// IN_NONBLOCK is O_NONBLOCK.
    pub fn init(nonblock: i32) -> Result<OwnedFd, Errno> {
        // SAFETY: no pointers; `owned` takes ownership of the new fd only if it is valid.
        super::super::owned(unsafe { libc::inotify_init1(nonblock | libc::IN_CLOEXEC) } as i64)
    }

    pub fn add_watch(fd: i32, path: &CStr, mask: u32) -> SysResult {
        // SAFETY: `path` is NUL-terminated; `fd` is the caller's open inotify fd.
        host_ret(unsafe { libc::inotify_add_watch(fd, path.as_ptr(), mask) } as i64)
    }

    pub fn rm_watch(fd: i32, wd: i32) -> SysResult {
        // SAFETY: no pointers.
        host_ret(unsafe { libc::inotify_rm_watch(fd, wd) } as i64)
    }
}

#[cfg(not(target_os = "linux"))]
mod host {
    use std::ffi::CStr;
    use std::os::fd::OwnedFd;

    use crate::errno::Errno;
    use crate::syscall::sfd::unsupported;
    use crate::syscall::SysResult;

    pub fn init(_: i32) -> Result<OwnedFd, Errno> {
        unsupported()
    }
    pub fn add_watch(_: i32, _: &CStr, _: u32) -> SysResult {
        unsupported()
    }
    pub fn rm_watch(_: i32, _: i32) -> SysResult {
        unsupported()
    }
}
