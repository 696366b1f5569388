//! The stat family: newfstatat, fstat, statx, statfs, fstatfs (host structures translated
//! to the guest's layouts in `abi`).

use std::ffi::CStr;
use std::os::fd::RawFd;

use super::abi::{
    self, at_flags_to_host, Stat, Statx, AT_EMPTY_PATH, AT_FDCWD, AT_NO_AUTOMOUNT,
    AT_STATX_SYNC_TYPE, AT_SYMLINK_NOFOLLOW, STATX__RESERVED,
};
use super::at::{at, at_flagged};
use super::hostdir::{is_at_fdcwd, HostDir};
use super::{Ctx, SysResult};
use crate::errno::Errno;

fn host_fstat(fd: RawFd) -> Result<Stat, Errno> {
    // SAFETY: zeroed is a valid struct stat; the host fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // glibc's fstat() is fstatat(fd, "", AT_EMPTY_PATH), whose kernel path lookup costs a
    // third of a guest fstat; the x86_64 kernel still has the direct call.
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    // SAFETY: the raw fstat syscall writes one struct stat into `st`, a local of that type.
    let r = unsafe { libc::syscall(libc::SYS_fstat, fd, &mut st) };
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    let r = unsafe { libc::fstat(fd, &mut st) } as i64;
    if r < 0 {
        return Err(Errno::last());
    }
    Ok(Stat::from_host(&st))
}

fn host_fstatat(dir: &HostDir, path: &CStr, flags: i32) -> Result<Stat, Errno> {
    if path.is_empty() {
        // AT_EMPTY_PATH: the dirfd itself (the cwd for AT_FDCWD).
        if dir.is_cwd() {
            return host_fstatat(dir, c".", flags & libc::AT_SYMLINK_NOFOLLOW);
        }
        return host_fstat(dir.raw());
    }
    // SAFETY: as above.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated, `dir` holds its host fd open, and fstatat writes one
    // struct stat into `st`, a local of that type.
    if unsafe { libc::fstatat(dir.raw(), path.as_ptr(), &mut st, flags) } < 0 {
        return Err(Errno::last());
    }
    Ok(Stat::from_host(&st))
}

pub fn newfstatat(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let flags = a[3];
    let hflags = at_flags_to_host(flags, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH)?;
    // glibc's fstat(fd) is newfstatat(fd, "", buf, AT_EMPTY_PATH): straight to the fd's
    // fstat, with no path or directory handle built.
    if flags & AT_EMPTY_PATH != 0
        && !is_at_fdcwd(a[0])
        && (a[1] == 0 || ctx.read_val::<u8>(a[1])? == 0)
    {
        return fstat(ctx, [a[0], a[2], 0, 0, 0, 0]);
    }
    let (dir, p) = at_flagged(ctx, a[0], a[1], flags)?;
    let st = host_fstatat(&dir, &p, hflags)?;
    drop(dir);
    ctx.write_val(a[2], &st)?;
    Ok(0)
}

pub fn fstat(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    // A reference for the host call (which may block on a slow filesystem), not the
    // slot held: no fd change waits on it.
    let st = host_fstat(ctx.file(a[0])?.raw())?;
    ctx.write_val(a[1], &st)?;
    Ok(0)
}

pub fn statx(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (flags, mask) = (a[2], a[3] as u32);
    let hflags = at_flags_to_host(
        flags,
        AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE,
    )?;
    if flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE || mask & STATX__RESERVED != 0 {
        return Err(Errno::EINVAL);
    }
    let (dir, p) = at_flagged(ctx, a[0], a[1], flags)?;
    let stx = host_statx(&dir, &p, hflags, mask)?;
    drop(dir);
    ctx.write_val(a[4], &stx)?;
    Ok(0)
}

/// statx on the host: the struct is arch-independent, so a Linux host's bytes are the
/// guest's. Without a host statx (old kernels, other hosts) it is filled from fstatat.
fn host_statx(dir: &HostDir, path: &CStr, flags: i32, mask: u32) -> Result<Statx, Errno> {
    #[cfg(target_os = "linux")]
    {
        let mut stx = Statx::default();
        // SAFETY: `path` is NUL-terminated, `dir` holds its fd open, and statx writes one
        // struct statx into `stx`, a local Statx with the kernel's layout (abi.rs).
        let r = unsafe {
            libc::syscall(
                libc::SYS_statx,
                dir.raw(),
                path.as_ptr(),
                flags,
                mask as libc::c_uint,
                &mut stx as *mut Statx,
            )
        };
        if r == 0 {
            return Ok(stx);
        }
        let e = Errno::last();
        if e != Errno::ENOSYS {
            return Err(e);
        }
    }
    let _ = mask;
    let st = host_fstatat(dir, path, flags & libc::AT_SYMLINK_NOFOLLOW)?;
    Ok(Statx::from_stat(&st))
}

pub fn statfs(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (_dir, p) = at(ctx, AT_FDCWD as u64, a[0])?;
    let s = abi::host_statfs(&p)?;
    ctx.write_val(a[1], &s)?;
    Ok(0)
}

pub fn fstatfs(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    let s = abi::host_fstatfs(f.raw())?;
    drop(f);
    ctx.write_val(a[1], &s)?;
    Ok(0)
}
