//! Extended attributes: the twelve {,l,f}{set,get,list,remove}xattr calls, answered by the
//! host's filesystem (ENOTSUP where it keeps none). Names, values and lists are plain
//! bytes, the same on every Linux, so nothing is translated; the guest's buffers are copied
//! through host ones with Linux's limits (XATTR_NAME_MAX, XATTR_SIZE_MAX,
//! XATTR_LIST_MAX) checked first, as the kernel does.

use std::ffi::CString;

use super::{at, host_ret, hostdir, Ctx, SysResult};
use crate::errno::Errno;

const XATTR_CREATE: u64 = 1;
const XATTR_REPLACE: u64 = 2;
/// Longest attribute name (bytes, without the NUL).
const XATTR_NAME_MAX: usize = 255;
/// Largest value.
const XATTR_SIZE_MAX: usize = 65536;
/// Largest list.
const XATTR_LIST_MAX: usize = 65536;

/// What an xattr call acts on: a path (followed or not; with the directory it goes
/// through, held open until the call is done) or an open file.
#[allow(dead_code)] // the held directory is never read, only kept alive
enum Target {
    Path(CString, bool, Option<hostdir::HostDir>),
    Fd(std::sync::Arc<elfuse_actors::fdtable::OpenFile>),
}

fn path_target(ctx: &Ctx, va: u64, follow: bool) -> Result<Target, Errno> {
    let cwd = libc::AT_FDCWD as u32 as u64;
    // The resolver follows symlinks on the way; the last component only when asked.
    let (dir, p) = if follow {
        at::at(ctx, cwd, va)?
    } else {
        at::at_nofollow(ctx, cwd, va)?
    };
    if dir.is_cwd() || p.as_bytes().first() == Some(&b'/') {
        // (A held directory may hold the file the path names: another process's
        // /proc/<pid>/fd/N stands in by a host fd of it.)
        return Ok(Target::Path(p, follow, Some(dir)));
    }
    // Relative to a directory the resolver holds open: named through it (the path calls
    // have no *at form), with the directory kept alive for the call.
    let mut full = format!("/proc/self/fd/{}/", dir.raw()).into_bytes();
    full.extend_from_slice(p.as_bytes());
    let full = CString::new(full).map_err(|_| Errno::EINVAL)?;
    Ok(Target::Path(full, follow, Some(dir)))
}

fn fd_target(ctx: &Ctx, fd: u64) -> Result<Target, Errno> {
    Ok(Target::Fd(ctx.file(fd)?))
}

/// The attribute name: ERANGE when empty or longer than XATTR_NAME_MAX (Linux's answer).
fn read_name(ctx: &Ctx, va: u64) -> Result<CString, Errno> {
    let name = match ctx.read_cstr(va, XATTR_NAME_MAX + 1) {
        Err(Errno::ENAMETOOLONG) => return Err(Errno::ERANGE),
        r => r?,
    };
    if name.is_empty() || name.len() > XATTR_NAME_MAX {
        return Err(Errno::ERANGE);
    }
    CString::new(name).map_err(|_| Errno::ERANGE)
}

fn set(ctx: &mut Ctx, t: Target, a: [u64; 6]) -> SysResult {
    let (value_va, size, flags) = (a[2], a[3] as usize, a[4] & 0xffff_ffff);
    if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = read_name(ctx, a[1])?;
    if size > XATTR_SIZE_MAX {
        return Err(Errno::E2BIG);
    }
    let value = ctx.read_bytes(value_va, size)?;
    let (v, f) = (value.as_ptr().cast(), flags as libc::c_int);
    // SAFETY: NUL-terminated strings and a buffer of `size` bytes we own.
    let r = unsafe {
        match &t {
            Target::Path(p, true, _) => libc::setxattr(p.as_ptr(), name.as_ptr(), v, size, f),
            Target::Path(p, false, _) => libc::lsetxattr(p.as_ptr(), name.as_ptr(), v, size, f),
            Target::Fd(file) => libc::fsetxattr(file.raw(), name.as_ptr(), v, size, f),
        }
    };
    host_ret(r as i64).map(|_| 0)
}

fn get(ctx: &mut Ctx, t: Target, a: [u64; 6]) -> SysResult {
    let (value_va, size) = (a[2], a[3] as usize);
    let name = read_name(ctx, a[1])?;
    // The kernel never hands out more than XATTR_SIZE_MAX: a larger buffer is capped.
    let mut buf = vec![0u8; size.min(XATTR_SIZE_MAX)];
    let (v, n) = (buf.as_mut_ptr().cast(), buf.len());
    // SAFETY: NUL-terminated strings and a buffer of `n` bytes we own (n == 0: a size query).
    let r = unsafe {
        match &t {
            Target::Path(p, true, _) => libc::getxattr(p.as_ptr(), name.as_ptr(), v, n),
            Target::Path(p, false, _) => libc::lgetxattr(p.as_ptr(), name.as_ptr(), v, n),
            Target::Fd(file) => libc::fgetxattr(file.raw(), name.as_ptr(), v, n),
        }
    };
    let len = host_ret(r as i64)? as usize;
    if size != 0 {
        ctx.write_bytes(value_va, &buf[..len])?;
    }
    Ok(len as u64)
}

fn list(ctx: &mut Ctx, t: Target, a: [u64; 6]) -> SysResult {
    let (list_va, size) = (a[1], a[2] as usize);
    let mut buf = vec![0u8; size.min(XATTR_LIST_MAX)];
    let (v, n) = (buf.as_mut_ptr().cast(), buf.len());
    // SAFETY: a NUL-terminated path and a buffer of `n` bytes we own.
    let r = unsafe {
        match &t {
            Target::Path(p, true, _) => libc::listxattr(p.as_ptr(), v, n),
            Target::Path(p, false, _) => libc::llistxattr(p.as_ptr(), v, n),
            Target::Fd(file) => libc::flistxattr(file.raw(), v, n),
        }
    };
    let len = host_ret(r as i64)? as usize;
    if size != 0 {
        ctx.write_bytes(list_va, &buf[..len])?;
    }
    Ok(len as u64)
}

fn remove(ctx: &mut Ctx, t: Target, a: [u64; 6]) -> SysResult {
    let name = read_name(ctx, a[1])?;
    // SAFETY: NUL-terminated strings.
    let r = unsafe {
        match &t {
            Target::Path(p, true, _) => libc::removexattr(p.as_ptr(), name.as_ptr()),
            Target::Path(p, false, _) => libc::lremovexattr(p.as_ptr(), name.as_ptr()),
            Target::Fd(file) => libc::fremovexattr(file.raw(), name.as_ptr()),
        }
    };
    host_ret(r as i64).map(|_| 0)
}

pub fn setxattr(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let t = path_target(ctx, a[0], true)?;
    set(ctx, t, a)
}
pub fn lsetxattr(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let t = path_target(ctx, a[0], false)?;
    set(ctx, t, a)
}
pub fn fsetxattr(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let t = fd_target(ctx, a[0])?;
    set(ctx, t, a)
}
pub fn getxattr(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let t = path_target(ctx, a[0], true)?;
    get(ctx, t, a)
}
pub fn lgetxattr(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let t = path_target(ctx, a[0], false)?;
    get(ctx, t, a)
}
pub fn fgetxattr(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let t = fd_target(ctx, a[0])?;
    get(ctx, t, a)
}
pub fn listxattr(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let t = path_target(ctx, a[0], true)?;
    list(ctx, t, a)
}
pub fn llistxattr(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let t = path_target(ctx, a[0], false)?;
    list(ctx, t, a)
}
pub fn flistxattr(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let t = fd_target(ctx, a[0])?;
    list(ctx, t, a)
}
pub fn removexattr(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let t = path_target(ctx, a[0], true)?;
    remove(ctx, t, a)
}
pub fn lremovexattr(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let t = path_target(ctx, a[0], false)?;
    remove(ctx, t, a)
}
pub fn fremovexattr(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let t = fd_target(ctx, a[0])?;
    remove(ctx, t, a)
}
