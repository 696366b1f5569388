//! Files, directories and paths: openat, getdents64, readlink, directory and link
//! operations, permissions, times, cwd. Guest paths reach the host through `at` (the one
//! resolver); the stat family is `stat`.

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use elfuse_actors::fdtable::OpenFile;

use super::abi::{
    self, at_flags_to_host, open_flags_to_host, Timespec, AT_EACCESS, AT_EMPTY_PATH, AT_FDCWD,
    AT_REMOVEDIR, AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW, O_CLOEXEC,
};
use super::at::{at, at_flagged, at_nofollow};
use super::hostdir::{cstring, guest_view, host_dir, is_at_fdcwd};
use super::resolve::{self, NOFOLLOW};
use super::{host_ret, Ctx, SysResult, PATH_MAX};
use crate::errno::Errno;

fn ret0(r: libc::c_int) -> SysResult {
    host_ret(r as i64).map(|_| 0)
}

// ---------------------------------------------------------------------------------------
// cwd
// ---------------------------------------------------------------------------------------

pub fn getcwd(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let cwd = std::env::current_dir().map_err(Errno::from)?;
    let mut out = guest_view(ctx, &cwd);
    out.push(0);
    if out.len() as u64 > a[1] {
        return Err(Errno::ERANGE);
    }
    ctx.write_bytes(a[0], &out)?;
    Ok(out.len() as u64)
}

pub fn chdir(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (_dir, p) = at(ctx, AT_FDCWD as u64, a[0])?;
    // SAFETY: `p` is a NUL-terminated CString that lives across the call; chdir only reads
    // it.
    ret0(unsafe { libc::chdir(p.as_ptr()) })
}

pub fn fchdir(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    // SAFETY: fchdir takes an fd by value; `f` keeps the description (and its host fd) open
    // for the call.
    ret0(unsafe { libc::fchdir(f.raw()) })
}

// ---------------------------------------------------------------------------------------
// open, getdents64
// ---------------------------------------------------------------------------------------

pub fn openat(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let path = ctx.read_path(a[1])?;
    open_how(ctx, a[0], &path, a[2], a[3], 0)
}

/// openat, and openat2 with its RESOLVE_* flags (`resolve`).
pub(crate) fn open_how(
    ctx: &mut Ctx,
    dirfd: u64,
    path: &[u8],
    flags: u64,
    mode: u64,
    resolve: u64,
) -> SysResult {
    // O_NOFOLLOW, and O_CREAT|O_EXCL (which never follows), leave a last symlink alone.
    let excl = abi::O_CREAT | abi::O_EXCL;
    let follow = !(flags & abi::O_NOFOLLOW != 0 || flags & excl == excl);
    let how = resolve::How { follow, resolve };
    let r = resolve::resolve(ctx, dirfd, path, how)?;
    // Host fds are always CLOEXEC on the host; the guest's flag lives in the fd table.
    let host_flags = open_flags_to_host(flags) | libc::O_CLOEXEC;
    if let Some(node) = &r.node {
        let file = super::procdir::open(ctx, node, flags, host_flags)?;
        return ctx.install(file, flags & O_CLOEXEC != 0);
    }
    let (dir, hp) = (r.dir, r.path);
    let mode = (mode & 0o7777) as libc::c_uint;
    // SAFETY: `hp` is a NUL-terminated CString and `dir` holds its host fd open across the
    // call; the returned fd is checked and owned just below.
    let r = unsafe { libc::openat(dir.raw(), hp.as_ptr(), host_flags, mode) };
    if r < 0 {
        return Err(Errno::last());
    }
    drop(dir);
    // SAFETY: a fresh host fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(r) };
    // O_RDONLY (0) and O_RDWR (2) read; O_WRONLY (1), 3 and O_PATH do not.
    let readable = matches!(flags & abi::O_ACCMODE, 0 | 2) && flags & abi::O_PATH == 0;
    let file = OpenFile::opened(fd, Some(path), readable);
    if flags & abi::O_TRUNC != 0 {
        truncated(ctx);
    }
    // On failure the description (and the host fd) is dropped.
    ctx.install(file, flags & O_CLOEXEC != 0)
}

/// Largest host buffer one getdents64 uses (a guest may ask for less; more just returns
/// fewer records, which getdents allows).
const GETDENTS_MAX: usize = 1 << 20;

pub fn getdents64(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    let count = (a[2] as u32 as usize).min(GETDENTS_MAX);
    // Check the destination first: a failed copy must not consume directory entries.
    ctx.user_slice(a[1], count, true)?;
    if let Some(d) = f.synthetic_as::<super::procdir::ProcDir>() {
        let mut out = Vec::new();
        super::procdir::getdents(ctx, d, &mut out, count)?;
        ctx.write_bytes(a[1], &out)?;
        return Ok(out.len() as u64);
    }
    let mut buf = vec![0u8; count];
    let n = host_getdents64(f.raw(), &mut buf)?;
    drop(f);
    ctx.write_bytes(a[1], &buf[..n])?;
    Ok(n as u64)
}

/// getdents64 on the host: Linux's `struct linux_dirent64` is the same on every
/// architecture, so the host's records are the guest's.
#[cfg(target_os = "linux")]
fn host_getdents64(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: getdents64 writes at most `buf.len()` bytes into `buf`, a host buffer we
    // exclusively borrow; `fd` is the caller's open host fd.
    let r = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
    host_ret(r).map(|n| n as usize)
}

/// Other hosts must build `linux_dirent64` records (abi::Dirent64Head) from readdir.
#[cfg(not(target_os = "linux"))]
fn host_getdents64(_fd: RawFd, _buf: &mut [u8]) -> Result<usize, Errno> {
    Err(Errno::ENOSYS)
}

pub fn readlinkat(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let size = a[3] as i32;
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    let path = ctx.read_path(a[1])?;
    // Linux allows "" here: the dirfd itself, when it is an O_PATH symlink fd.
    let (dir, p, node) = if path.is_empty() {
        (host_dir(ctx, a[0])?, CString::default(), None)
    } else {
        let r = resolve::resolve(ctx, a[0], &path, NOFOLLOW)?;
        (r.dir, r.path, r.node)
    };
    let target = match node {
        Some(n) if super::procnode::is_link(&n) => super::proclink::readlink(ctx, &n)?,
        Some(n) if !super::procnode::is_host(&n) => return Err(Errno::EINVAL),
        _ => {
            let mut buf = vec![0u8; (size as usize).min(2 * PATH_MAX)];
            // SAFETY: `p` is NUL-terminated, `dir` holds its fd open, and readlinkat writes
            // at most `buf.len()` bytes into `buf`, a host Vec of that length.
            let r = unsafe {
                libc::readlinkat(dir.raw(), p.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
            };
            let n = host_ret(r as i64)? as usize;
            buf.truncate(n);
            buf
        }
    };
    let n = target.len().min(size as usize);
    ctx.write_bytes(a[2], &target[..n])?;
    Ok(n as u64)
}

// ---------------------------------------------------------------------------------------
// Creating, linking, removing
// ---------------------------------------------------------------------------------------

const S_IFMT: u64 = 0o170000;
const S_IFSOCK: u64 = 0o140000;
const S_IFREG: u64 = 0o100000;
const S_IFBLK: u64 = 0o060000;
const S_IFDIR: u64 = 0o040000;
const S_IFCHR: u64 = 0o020000;
const S_IFIFO: u64 = 0o010000;

pub fn mknodat(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let mode = a[2];
    let host_type = match mode & S_IFMT {
        0 | S_IFREG => libc::S_IFREG,
        S_IFIFO => libc::S_IFIFO,
        S_IFSOCK => libc::S_IFSOCK,
        // Device nodes: the host's (EPERM without CAP_MKNOD, as Linux).
        S_IFCHR => libc::S_IFCHR,
        S_IFBLK => libc::S_IFBLK,
        // S_IFDIR is EPERM on Linux.
        S_IFDIR => return Err(Errno::EPERM),
        _ => return Err(Errno::EINVAL),
    };
    let (dir, p) = at_nofollow(ctx, a[0], a[1])?;
    let hmode = host_type | (mode & 0o7777) as libc::mode_t;
    // The device number is the kernel's 32-bit encoding on both sides: passed as is.
    let dev = if matches!(mode & S_IFMT, S_IFCHR | S_IFBLK) {
        a[3] as u32
    } else {
        0
    };
    // SAFETY: a NUL-terminated path we own; integers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mknodat,
            dir.raw() as libc::c_long,
            p.as_ptr(),
            hmode as libc::c_long,
            dev as libc::c_long,
        )
    };
    host_ret(r).map(|_| 0)
}

pub fn mkdirat(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (dir, p) = at_nofollow(ctx, a[0], a[1])?;
    // The host umask is the guest's (the umask handler sets it).
    // SAFETY: `p` is a NUL-terminated CString and `dir` holds its host fd open for the call.
    ret0(unsafe { libc::mkdirat(dir.raw(), p.as_ptr(), (a[2] & 0o7777) as libc::mode_t) })
}

pub fn unlinkat(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let flags = a[2];
    let mut hflags = at_flags_to_host(flags, AT_REMOVEDIR)?;
    if flags & AT_REMOVEDIR != 0 {
        hflags |= libc::AT_REMOVEDIR;
    }
    let (dir, p) = at_nofollow(ctx, a[0], a[1])?;
    // SAFETY: `p` is a NUL-terminated CString and `dir` holds its host fd open for the call.
    ret0(unsafe { libc::unlinkat(dir.raw(), p.as_ptr(), hflags) })
}

pub fn symlinkat(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    // The target is stored as the guest wrote it (it is resolved at use, in the guest's
    // view).
    let target = ctx.read_path(a[0])?;
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    let target = cstring(&target)?;
    let (dir, p) = at_nofollow(ctx, a[1], a[2])?;
    // SAFETY: `target` and `p` are NUL-terminated CStrings and `dir` holds its host fd open
    // for the call.
    ret0(unsafe { libc::symlinkat(target.as_ptr(), dir.raw(), p.as_ptr()) })
}

pub fn linkat(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let flags = a[4];
    let hflags = at_flags_to_host(flags, AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)?;
    // linkat follows a last symlink only with AT_SYMLINK_FOLLOW.
    let oflags = if flags & AT_SYMLINK_FOLLOW != 0 {
        flags
    } else {
        flags | AT_SYMLINK_NOFOLLOW
    };
    let (odir, op) = at_flagged(ctx, a[0], a[1], oflags)?;
    let (ndir, np) = at_nofollow(ctx, a[2], a[3])?;
    // SAFETY: `op` and `np` are NUL-terminated CStrings; `odir` and `ndir` hold their host
    // fds open for the call.
    ret0(unsafe { libc::linkat(odir.raw(), op.as_ptr(), ndir.raw(), np.as_ptr(), hflags) })
}

pub fn renameat(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    renameat2(ctx, [a[0], a[1], a[2], a[3], 0, 0])
}

pub fn renameat2(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let flags = a[4] as u32;
    let (odir, op) = at_nofollow(ctx, a[0], a[1])?;
    let (ndir, np) = at_nofollow(ctx, a[2], a[3])?;
    #[cfg(target_os = "linux")]
    {
        // RENAME_* are the same on every Linux; the host validates them.
        // SAFETY: both paths are NUL-terminated CStrings and both dirs hold their host fds
        // open for the call; renameat2 reads nothing else.
        let r = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                odir.raw(),
                op.as_ptr(),
                ndir.raw(),
                np.as_ptr(),
                flags as libc::c_uint,
            )
        };
        if r < 0 && Errno::last() == Errno::ENOSYS && flags == 0 {
            // SAFETY: as above, without the flags.
            return ret0(unsafe {
                libc::renameat(odir.raw(), op.as_ptr(), ndir.raw(), np.as_ptr())
            });
        }
        host_ret(r).map(|_| 0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        if flags != 0 {
            return Err(Errno::EINVAL);
        }
        ret0(unsafe { libc::renameat(odir.raw(), op.as_ptr(), ndir.raw(), np.as_ptr()) })
    }
}

// ---------------------------------------------------------------------------------------
// Sizes, sync, advice, locks
// ---------------------------------------------------------------------------------------

pub fn truncate(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (_dir, p) = at(ctx, AT_FDCWD as u64, a[0])?;
    // SAFETY: `p` is a NUL-terminated CString the call only reads.
    let r = ret0(unsafe { libc::truncate(p.as_ptr(), a[1] as i64 as libc::off_t) });
    truncated(ctx);
    r
}

pub fn ftruncate(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    // SAFETY: no pointers; `f` keeps the host fd open for the call.
    let r = ret0(unsafe { libc::ftruncate(f.raw(), a[1] as i64 as libc::off_t) });
    truncated(ctx);
    r
}

/// A file may have shrunk under a shared mapping of this process: its pages past the end
/// leave guest RAM (`Mm::hide_truncated`). A truncation by another process is not seen
/// until this one truncates or maps again.
pub(super) fn truncated(ctx: &Ctx) {
    ctx.proc.mm().hide_truncated();
}

pub fn fallocate(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    #[cfg(target_os = "linux")]
    {
        // FALLOC_FL_* are the same on every Linux.
        // SAFETY: no pointers; `f` keeps the host fd open for the call.
        ret0(unsafe { libc::fallocate(f.raw(), a[1] as i32, a[2] as i64, a[3] as i64) })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = f;
        Err(Errno::EOPNOTSUPP)
    }
}

pub fn fadvise64(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    let advice = match a[3] as i32 {
        0 => libc::POSIX_FADV_NORMAL,
        1 => libc::POSIX_FADV_RANDOM,
        2 => libc::POSIX_FADV_SEQUENTIAL,
        3 => libc::POSIX_FADV_WILLNEED,
        4 => libc::POSIX_FADV_DONTNEED,
        5 => libc::POSIX_FADV_NOREUSE,
        _ => return Err(Errno::EINVAL),
    };
    #[cfg(target_os = "linux")]
    {
        // Advice only; the host still reports ESPIPE for pipes and EINVAL for len < 0.
        // SAFETY: no pointers; `f` keeps the host fd open for the call.
        let r = unsafe { libc::posix_fadvise(f.raw(), a[1] as i64, a[2] as i64, advice) };
        if r != 0 {
            return Err(Errno::from_host(r));
        }
    }
    let _ = (f, advice);
    Ok(0)
}

pub fn sync(_ctx: &mut Ctx, _: [u64; 6]) -> SysResult {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    Ok(0)
}

pub fn fsync(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    // SAFETY: no pointers; `f` keeps the host fd open for the call.
    ret0(unsafe { libc::fsync(f.raw()) })
}

pub fn fdatasync(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    #[cfg(target_os = "linux")]
    // SAFETY: no pointers; `f` keeps the host fd open for the call.
    let r = unsafe { libc::fdatasync(f.raw()) };
    #[cfg(not(target_os = "linux"))]
    let r = unsafe { libc::fsync(f.raw()) };
    ret0(r)
}

pub fn flock(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    // LOCK_SH/EX/NB/UN have the same values everywhere; the host validates them.
    let f = ctx.file(a[0])?;
    // SAFETY: no pointers; `f` keeps the host fd open for the call.
    ret0(unsafe { libc::flock(f.raw(), a[1] as i32) })
}

// ---------------------------------------------------------------------------------------
// Permissions, ownership, times
// ---------------------------------------------------------------------------------------

fn check_access_mode(mode: u64) -> Result<libc::c_int, Errno> {
    // F_OK 0, X_OK 1, W_OK 2, R_OK 4 everywhere.
    if mode & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(mode as libc::c_int)
}

pub fn faccessat(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let mode = check_access_mode(a[2])?;
    let (dir, p) = at(ctx, a[0], a[1])?;
    // SAFETY: `p` is a NUL-terminated CString and `dir` holds its host fd open for the call.
    ret0(unsafe { libc::faccessat(dir.raw(), p.as_ptr(), mode, 0) })
}

pub fn faccessat2(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let flags = a[3];
    let mut hflags = at_flags_to_host(flags, AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)?;
    if flags & AT_EACCESS != 0 {
        hflags |= libc::AT_EACCESS;
    }
    let mode = check_access_mode(a[2])?;
    let (dir, p) = at_flagged(ctx, a[0], a[1], flags)?;
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `p` is a NUL-terminated CString and `dir` holds its host fd open for the
        // call; the other arguments are plain integers.
        let r = unsafe { libc::syscall(libc::SYS_faccessat2, dir.raw(), p.as_ptr(), mode, hflags) };
        if r == 0 || Errno::last() != Errno::ENOSYS {
            return host_ret(r).map(|_| 0);
        }
    }
    // No host faccessat2: libc emulates the flags.
    // SAFETY: `p` is a NUL-terminated CString and `dir` holds its host fd open for the call.
    ret0(unsafe { libc::faccessat(dir.raw(), p.as_ptr(), mode, hflags) })
}

pub fn fchmod(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    // SAFETY: no pointers; `f` keeps the host fd open for the call.
    ret0(unsafe { libc::fchmod(f.raw(), (a[1] & 0o7777) as libc::mode_t) })
}

pub fn fchmodat(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (dir, p) = at(ctx, a[0], a[1])?;
    // SAFETY: `p` is a NUL-terminated CString and `dir` holds its host fd open for the call.
    ret0(unsafe { libc::fchmodat(dir.raw(), p.as_ptr(), (a[2] & 0o7777) as libc::mode_t, 0) })
}

pub fn fchownat(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let flags = a[4];
    let hflags = at_flags_to_host(flags, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)?;
    let (dir, p) = at_flagged(ctx, a[0], a[1], flags)?;
    let (uid, gid) = (a[2] as u32, a[3] as u32);
    // Linux hosts take "" with AT_EMPTY_PATH themselves (O_PATH fds included).
    #[cfg(not(target_os = "linux"))]
    if p.is_empty() && !dir.is_cwd() {
        return ret0(unsafe { libc::fchown(dir.raw(), uid, gid) });
    }
    // SAFETY: `p` is a NUL-terminated CString and `dir` holds its host fd open for the call.
    ret0(unsafe { libc::fchownat(dir.raw(), p.as_ptr(), uid, gid, hflags) })
}

pub fn fchown(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    // SAFETY: no pointers; `f` keeps the host fd open for the call.
    ret0(unsafe { libc::fchown(f.raw(), a[1] as u32, a[2] as u32) })
}

pub fn utimensat(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (dirfd, path_va, times_va, flags) = (a[0], a[1], a[2], a[3]);
    let times = if times_va == 0 {
        None
    } else {
        let t: [Timespec; 2] = ctx.read_val(times_va)?;
        for t in &t {
            let special = t.tv_nsec == abi::UTIME_NOW || t.tv_nsec == abi::UTIME_OMIT;
            if !special && !(0..1_000_000_000).contains(&t.tv_nsec) {
                return Err(Errno::EINVAL);
            }
        }
        Some([t[0].utime_to_host(), t[1].utime_to_host()])
    };
    let tp = times.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
    if path_va == 0 {
        // Linux: a NULL path means the dirfd itself (futimens); with AT_FDCWD it is a
        // bad address.
        if is_at_fdcwd(dirfd) {
            return Err(Errno::EFAULT);
        }
        if flags != 0 {
            return Err(Errno::EINVAL);
        }
        let f = ctx.file(dirfd)?;
        // SAFETY: `tp` is null or points at `times`, two host timespecs alive across the
        // call; `f` keeps the fd open.
        return ret0(unsafe { libc::futimens(f.raw(), tp) });
    }
    let hflags = at_flags_to_host(flags, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)?;
    let (dir, p) = at_flagged(ctx, dirfd, path_va, flags)?;
    #[cfg(not(target_os = "linux"))]
    if p.is_empty() && !dir.is_cwd() {
        return ret0(unsafe { libc::futimens(dir.raw(), tp) });
    }
    // SAFETY: `p` is NUL-terminated, `dir` holds its fd open, and `tp` is null or points at
    // `times`, two timespecs alive across the call.
    ret0(unsafe { libc::utimensat(dir.raw(), p.as_ptr(), tp, hflags) })
}
