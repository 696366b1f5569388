//! The newer file calls: memfd_create, copy_file_range, splice, tee, vmsplice,
//! sync_file_range, readahead, syncfs, preadv2/pwritev2, fchmodat2.
//!
//! Each is the host's call on the host fds behind the guest's: flags have the same values
//! on every Linux and the host validates them (unknown ones are its EINVAL, or EOPNOTSUPP
//! for RWF_*, as Linux answers). Offsets the guest passes by pointer are copied in and
//! out; vmsplice's buffers are guest RAM, checked like read/write buffers.
//!
//! A memfd is a host memfd: a MAP_SHARED mapping of it is the memfd's pages (`guest::mm`),
//! which a fork child keeps sharing, and seals (F_ADD_SEALS/F_GET_SEALS) are the host's.

use std::os::fd::{FromRawFd, OwnedFd};

use elfuse_actors::fdtable::OpenFile;

use super::{at, host_ret, hostdir, iov, Ctx, SysResult};
use crate::errno::Errno;

fn raw(nr: libc::c_long, a: [libc::c_long; 6]) -> SysResult {
    // SAFETY: the callers pass host fds they hold and pointers to host buffers they own.
    host_ret(unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) })
}

/// memfd_create's name limit: "memfd:" + name fits NAME_MAX.
const MFD_NAME_MAX: usize = 255 - 6;
const MFD_CLOEXEC: u64 = 1;

pub fn memfd_create(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let flags = a[1] as u32;
    let name = match ctx.read_cstr(a[0], MFD_NAME_MAX) {
        Err(Errno::ENAMETOOLONG) => return Err(Errno::EINVAL),
        r => r?,
    };
    if name.len() > MFD_NAME_MAX {
        return Err(Errno::EINVAL);
    }
    let cname = std::ffi::CString::new(name.clone()).map_err(|_| Errno::EINVAL)?;
    // The host fd is always close-on-exec; the guest's flag lives in the fd table.
    let host_flags = (flags | MFD_CLOEXEC as u32) as libc::c_long;
    let fd = raw(
        libc::SYS_memfd_create,
        [cname.as_ptr() as libc::c_long, host_flags, 0, 0, 0, 0],
    )?;
    // SAFETY: a fresh host fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut path = b"/memfd:".to_vec();
    path.extend_from_slice(&name);
    path.extend_from_slice(b" (deleted)");
    ctx.install(
        OpenFile::host(fd, Some(&path)),
        u64::from(flags) & MFD_CLOEXEC != 0,
    )
}

/// An optional `loff_t *` argument: the guest's value copied in (None for NULL).
fn read_off(ctx: &Ctx, va: u64) -> Result<Option<i64>, Errno> {
    (va != 0).then(|| ctx.read_val::<i64>(va)).transpose()
}

fn off_ptr(o: &mut Option<i64>) -> libc::c_long {
    o.as_mut().map_or(0, |v| v as *mut i64 as libc::c_long)
}

/// Copies the updated offsets back (after a transfer that moved `n` bytes).
fn write_offs(ctx: &Ctx, pairs: [(u64, Option<i64>); 2]) -> Result<(), Errno> {
    for (va, v) in pairs {
        if let Some(v) = v {
            ctx.write_val(va, &v)?;
        }
    }
    Ok(())
}

/// copy_file_range and splice: the same arguments (fd_in, *off_in, fd_out, *off_out,
/// len, flags), offsets read in and written back around the host call `nr`.
fn copy_between(ctx: &Ctx, a: [u64; 6], nr: libc::c_long) -> SysResult {
    let fin = ctx.file(a[0])?;
    let fout = ctx.file(a[2])?;
    let (mut oin, mut oout) = (read_off(ctx, a[1])?, read_off(ctx, a[3])?);
    let n = raw(
        nr,
        [
            fin.raw() as libc::c_long,
            off_ptr(&mut oin),
            fout.raw() as libc::c_long,
            off_ptr(&mut oout),
            iov::rw_len(a[4]) as libc::c_long,
            a[5] as u32 as libc::c_long,
        ],
    )?;
    write_offs(ctx, [(a[1], oin), (a[3], oout)])?;
    Ok(n)
}

pub fn copy_file_range(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    copy_between(ctx, a, libc::SYS_copy_file_range)
}

pub fn splice(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    copy_between(ctx, a, libc::SYS_splice)
}

pub fn tee(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let fin = ctx.file(a[0])?;
    let fout = ctx.file(a[1])?;
    raw(
        libc::SYS_tee,
        [
            fin.raw() as libc::c_long,
            fout.raw() as libc::c_long,
            iov::rw_len(a[2]) as libc::c_long,
            a[3] as u32 as libc::c_long,
            0,
            0,
        ],
    )
}

/// vmsplice: into a pipe's write end the buffers are read, from a read end they are
/// written, as Linux decides by the description's mode.
pub fn vmsplice(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    // SAFETY: F_GETFL on a host fd we hold.
    let mode = host_ret(unsafe { libc::fcntl(f.raw(), libc::F_GETFL) } as i64)? as i32;
    let to_pipe = match mode & libc::O_ACCMODE {
        libc::O_WRONLY | libc::O_RDWR => true,
        libc::O_RDONLY => false,
        _ => return Err(Errno::EBADF),
    };
    let bufs = iov::user_iovecs(ctx, a[1], a[2], !to_pipe)?;
    let v: Vec<libc::iovec> = bufs.iter().map(|s| s.iovec()).collect();
    raw(
        libc::SYS_vmsplice,
        [
            f.raw() as libc::c_long,
            v.as_ptr() as libc::c_long,
            v.len() as libc::c_long,
            a[3] as u32 as libc::c_long,
            0,
            0,
        ],
    )
}

pub fn sync_file_range(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    raw(
        libc::SYS_sync_file_range,
        [
            f.raw() as libc::c_long,
            a[1] as libc::c_long,
            a[2] as libc::c_long,
            a[3] as u32 as libc::c_long,
            0,
            0,
        ],
    )
}

pub fn readahead(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    raw(
        libc::SYS_readahead,
        [
            f.raw() as libc::c_long,
            a[1] as libc::c_long,
            a[2] as libc::c_long,
            0,
            0,
            0,
        ],
    )
}

pub fn syncfs(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    raw(libc::SYS_syncfs, [f.raw() as libc::c_long, 0, 0, 0, 0, 0])
}

/// preadv2/pwritev2(fd, iov, cnt, pos_l, pos_h, flags): on 64-bit the position is pos_l
/// alone; -1 means the file position.
fn rw2(ctx: &mut Ctx, a: [u64; 6], write: bool) -> SysResult {
    let f = ctx.file(a[0])?;
    let bufs = iov::user_iovecs(ctx, a[1], a[2], !write)?;
    let v: Vec<libc::iovec> = bufs.iter().map(|s| s.iovec()).collect();
    let nr = if write {
        libc::SYS_pwritev2
    } else {
        libc::SYS_preadv2
    };
    raw(
        nr,
        [
            f.raw() as libc::c_long,
            v.as_ptr() as libc::c_long,
            v.len() as libc::c_long,
            a[3] as libc::c_long,
            0,
            a[5] as u32 as libc::c_long,
        ],
    )
}

pub fn preadv2(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    rw2(ctx, a, false)
}

pub fn pwritev2(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    rw2(ctx, a, true)
}

pub fn fchmodat2(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
    const AT_EMPTY_PATH: u64 = 0x1000;
    let flags = a[3] as u32 as u64;
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let (dir, path) = if flags & AT_EMPTY_PATH != 0 && (a[1] == 0 || ctx.read_val::<u8>(a[1])? == 0)
    {
        (hostdir::host_dir(ctx, a[0])?, std::ffi::CString::default())
    } else if flags & AT_SYMLINK_NOFOLLOW != 0 {
        at::at_nofollow(ctx, a[0], a[1])?
    } else {
        at::at(ctx, a[0], a[1])?
    };
    let host_flags = (if flags & AT_SYMLINK_NOFOLLOW != 0 {
        libc::AT_SYMLINK_NOFOLLOW
    } else {
        0
    }) | (if flags & AT_EMPTY_PATH != 0 {
        libc::AT_EMPTY_PATH
    } else {
        0
    });
    raw(
        libc::SYS_fchmodat2,
        [
            dir.raw() as libc::c_long,
            path.as_ptr() as libc::c_long,
            (a[2] & 0o7777) as libc::c_long,
            host_flags as libc::c_long,
            0,
            0,
        ],
    )
}
