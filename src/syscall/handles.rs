//! File handles (name_to_handle_at, open_by_handle_at) and cachestat: the host's, with
//! guest fds and paths translated (the one resolver) and the structures bounced (their
//! layouts are architecture-independent). open_by_handle_at needs CAP_DAC_READ_SEARCH
//! on the host, as on Linux (EPERM otherwise).

use std::os::fd::{FromRawFd, OwnedFd};

use elfuse_actors::fdtable::OpenFile;

use super::{abi, at, host_ret, hostdir, Ctx, SysResult};
use crate::errno::Errno;

const AT_FDCWD: i32 = -100;
const AT_SYMLINK_FOLLOW: u64 = 0x400;
const AT_EMPTY_PATH: u64 = 0x1000;
/// AT_HANDLE_MNT_ID_UNIQUE: the mount id is a u64.
const AT_HANDLE_MNT_ID_UNIQUE: u64 = 0x001;
const MAX_HANDLE_SZ: u32 = 128;
const SYS_CACHESTAT: libc::c_long = 451;

fn raw(nr: libc::c_long, a: [libc::c_long; 5]) -> SysResult {
    // SAFETY: callers pass integers and pointers to host buffers they own, sized as the
    // call requires.
    host_ret(unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4]) })
}

/// The guest's struct file_handle: header (handle_bytes, handle_type) and at most
/// MAX_HANDLE_SZ bytes (a larger handle_bytes is the host's EINVAL to give).
fn read_handle(ctx: &Ctx, va: u64, with_body: bool) -> Result<Vec<u8>, Errno> {
    let bytes: u32 = ctx.read_val(va)?;
    let body = bytes.min(MAX_HANDLE_SZ) as usize;
    let mut h = vec![0u8; 8 + MAX_HANDLE_SZ as usize];
    let n = if with_body { 8 + body } else { 8 };
    h[..n].copy_from_slice(&ctx.read_bytes(va, n)?);
    Ok(h)
}

pub fn name_to_handle_at(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let flags = a[4] as i32 as i64 as u64;
    let mut h = read_handle(ctx, a[2], false)?;
    let path = ctx.read_path(a[1])?;
    let (dir, hp) = if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        (hostdir::host_dir(ctx, a[0])?, std::ffi::CString::default())
    } else if flags & AT_SYMLINK_FOLLOW != 0 {
        at::at_bytes(ctx, a[0], &path)?
    } else {
        at::at_how(ctx, a[0], &path, super::resolve::NOFOLLOW)?
    };
    let mut mnt: u64 = 0;
    let r = raw(
        libc::SYS_name_to_handle_at,
        [
            dir.raw() as libc::c_long,
            hp.as_ptr() as libc::c_long,
            h.as_mut_ptr() as libc::c_long,
            &mut mnt as *mut u64 as libc::c_long,
            flags as libc::c_long,
        ],
    );
    // EOVERFLOW reports the size needed in handle_bytes.
    let body = u32::from_le_bytes(h[..4].try_into().unwrap_or_default()).min(MAX_HANDLE_SZ);
    let n = if r.is_ok() { 8 + body as usize } else { 4 };
    if r.is_ok() || r == Err(Errno::EOVERFLOW) {
        ctx.write_bytes(a[2], &h[..n])?;
    }
    let v = r?;
    if flags & AT_HANDLE_MNT_ID_UNIQUE != 0 {
        ctx.write_val(a[3], &mnt)?;
    } else {
        ctx.write_val(a[3], &(mnt as u32))?;
    }
    Ok(v)
}

pub fn open_by_handle_at(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let flags = a[2];
    let mut h = read_handle(ctx, a[1], true)?;
    let held = if a[0] as i32 == AT_FDCWD {
        None
    } else {
        Some(ctx.file(a[0])?)
    };
    let mount_fd = held.as_ref().map_or(AT_FDCWD, |f| f.raw());
    let host_flags = abi::open_flags_to_host(flags) | libc::O_CLOEXEC;
    let r = raw(
        libc::SYS_open_by_handle_at,
        [
            mount_fd as libc::c_long,
            h.as_mut_ptr() as libc::c_long,
            host_flags as libc::c_long,
            0,
            0,
        ],
    )?;
    // SAFETY: a fresh host fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(r as i32) };
    let readable = matches!(flags & abi::O_ACCMODE, 0 | 2) && flags & abi::O_PATH == 0;
    ctx.install(
        OpenFile::opened(fd, None, readable),
        flags & abi::O_CLOEXEC != 0,
    )
}

/// cachestat(fd, range, cstat, flags).
pub fn cachestat(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    let mut range: [u64; 2] = ctx.read_val(a[1])?;
    let mut out = [0u64; 5];
    let r = raw(
        SYS_CACHESTAT,
        [
            f.raw() as libc::c_long,
            range.as_mut_ptr() as libc::c_long,
            out.as_mut_ptr() as libc::c_long,
            a[3] as u32 as libc::c_long,
            0,
        ],
    )?;
    ctx.write_val(a[2], &out)?;
    Ok(r)
}
