//! Files, directories and paths: openat, the stat family, getdents64, directory and link
//! operations, permissions, times, cwd.
//!
//! Guest paths reach the host through [`at`] and its variants, which all go through the
//! one resolver (`resolve`): `--sysroot`, symlinks in the guest's view, and the guest's
//! own /proc. Relative paths stay relative to the host fd behind the guest dirfd (or to
//! the host cwd, which is the guest's). The description behind a guest dirfd is held
//! (its `Arc`) for the whole host call, so a concurrent close cannot recycle the host fd
//! under it.

use std::ffi::{CStr, CString};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use elfuse_actors::fdtable::OpenFile;

use super::abi::{
    self, at_flags_to_host, open_flags_to_host, Stat, Statx, Timespec, AT_EACCESS, AT_EMPTY_PATH,
    AT_FDCWD, AT_NO_AUTOMOUNT, AT_REMOVEDIR, AT_STATX_SYNC_TYPE, AT_SYMLINK_FOLLOW,
    AT_SYMLINK_NOFOLLOW, O_CLOEXEC, STATX__RESERVED,
};
use super::resolve::{self, How, FOLLOW, NOFOLLOW};
use super::{host_ret, Ctx, SysResult, PATH_MAX};
use crate::errno::Errno;

// ---------------------------------------------------------------------------------------
// Path plumbing
// ---------------------------------------------------------------------------------------

/// The host directory a guest path is relative to, kept alive for the host call.
pub(crate) struct HostDir {
    fd: RawFd,
    /// Held, not read: keeps the host fd named by `fd` (or in the path) open.
    #[allow(dead_code)]
    file: Option<Arc<OpenFile>>,
}

impl HostDir {
    pub(crate) fn cwd() -> HostDir {
        HostDir {
            fd: libc::AT_FDCWD,
            file: None,
        }
    }

    /// The host fd of guest description `f` as the directory.
    pub(crate) fn held(f: Arc<OpenFile>) -> HostDir {
        HostDir {
            fd: f.raw(),
            file: Some(f),
        }
    }

    /// The cwd, with `f` kept alive for the call (its host fd is named in the path).
    pub(crate) fn held_cwd(f: Arc<OpenFile>) -> HostDir {
        HostDir {
            fd: libc::AT_FDCWD,
            file: Some(f),
        }
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.fd
    }

    pub(crate) fn is_cwd(&self) -> bool {
        self.fd == libc::AT_FDCWD
    }
}

fn is_at_fdcwd(dirfd: u64) -> bool {
    dirfd as i32 == AT_FDCWD as i32
}

/// The host directory behind guest dirfd `dirfd` (AT_FDCWD or an open fd).
pub(crate) fn host_dir(ctx: &Ctx, dirfd: u64) -> Result<HostDir, Errno> {
    if is_at_fdcwd(dirfd) {
        return Ok(HostDir::cwd());
    }
    let f = ctx.file(dirfd as i32 as u64)?;
    Ok(HostDir {
        fd: f.raw(),
        file: Some(f),
    })
}

fn cstring(b: &[u8]) -> Result<CString, Errno> {
    CString::new(b).map_err(|_| Errno::EINVAL)
}

/// A guest path (already read) → the host (dir, path) pair to hand to a host `*at` call,
/// the last component followed if it is a symlink (see `resolve`).
pub(crate) fn at_bytes(ctx: &Ctx, dirfd: u64, path: &[u8]) -> Result<(HostDir, CString), Errno> {
    at_how(ctx, dirfd, path, FOLLOW)
}

/// [`at_bytes`] with the last component followed or not (`how`).
pub(crate) fn at_how(
    ctx: &Ctx,
    dirfd: u64,
    path: &[u8],
    how: How,
) -> Result<(HostDir, CString), Errno> {
    let r = resolve::resolve(ctx, dirfd, path, how)?;
    Ok((r.dir, r.path))
}

/// Reads guest path `path_va` and resolves it against guest `dirfd`.
pub(crate) fn at(ctx: &Ctx, dirfd: u64, path_va: u64) -> Result<(HostDir, CString), Errno> {
    at_bytes(ctx, dirfd, &ctx.read_path(path_va)?)
}

/// [`at`] without following a symlink in the last component.
pub(crate) fn at_nofollow(
    ctx: &Ctx,
    dirfd: u64,
    path_va: u64,
) -> Result<(HostDir, CString), Errno> {
    at_how(ctx, dirfd, &ctx.read_path(path_va)?, NOFOLLOW)
}

/// The host path for an AF_UNIX socket address `path`, for the socket code: resolved
/// like every guest path (relative to the cwd), `create` for bind (a last symlink is not
/// followed). The returned path is usable relative to the host cwd as it is (a path
/// relative to a directory fd becomes `/proc/self/fd/<fd>/...`); keep the `HostDir` alive
/// until the host call is done. It may be longer than sun_path: the caller decides.
pub(crate) fn socket_path(
    ctx: &Ctx,
    path: &[u8],
    create: bool,
) -> Result<(HostDir, CString), Errno> {
    let how = if create { NOFOLLOW } else { FOLLOW };
    let (dir, p) = at_how(ctx, AT_FDCWD as u64, path, how)?;
    if dir.is_cwd() || p.as_bytes().first() == Some(&b'/') {
        return Ok((dir, p));
    }
    let full = [
        format!("/proc/self/fd/{}/", dir.raw()).as_bytes(),
        p.as_bytes(),
    ]
    .concat();
    Ok((dir, CString::new(full).map_err(|_| Errno::EINVAL)?))
}

/// A path that may be empty (or, as Linux 6.11+ allows, NULL) when the guest passed
/// AT_EMPTY_PATH; then the result's path is "" and the dir is the dirfd itself.
/// AT_SYMLINK_NOFOLLOW in `flags` leaves a symlink in the last component unfollowed.
fn at_flagged(
    ctx: &Ctx,
    dirfd: u64,
    path_va: u64,
    flags: u64,
) -> Result<(HostDir, CString), Errno> {
    let how = if flags & AT_SYMLINK_NOFOLLOW != 0 {
        NOFOLLOW
    } else {
        FOLLOW
    };
    if flags & AT_EMPTY_PATH == 0 {
        return at_how(ctx, dirfd, &ctx.read_path(path_va)?, how);
    }
    // The empty path (glibc's fstat is fstatat(fd, "", AT_EMPTY_PATH)) is decided by its
    // first byte, without copying the string in.
    if path_va == 0 || ctx.read_val::<u8>(path_va)? == 0 {
        return Ok((host_dir(ctx, dirfd)?, CString::default()));
    }
    at_how(ctx, dirfd, &ctx.read_path(path_va)?, how)
}

/// A host path as the guest sees it: inside `--sysroot` the prefix is stripped.
pub(crate) fn guest_view_of(ctx: &Ctx, host: &Path) -> Vec<u8> {
    guest_view(ctx, host)
}

fn guest_view(ctx: &Ctx, host: &Path) -> Vec<u8> {
    let sysroot = ctx.proc.fs().sysroot.clone();
    guest_view_in(sysroot.as_deref(), host)
}

/// `host` as the guest names it under `sysroot`.
pub(crate) fn guest_view_in(sysroot: Option<&Path>, host: &Path) -> Vec<u8> {
    if let Some(root) = sysroot {
        let root = std::fs::canonicalize(root).unwrap_or(root.to_path_buf());
        if let Ok(rest) = host.strip_prefix(&root) {
            let mut v = b"/".to_vec();
            v.extend_from_slice(rest.as_os_str().as_bytes());
            return v;
        }
    }
    host.as_os_str().as_bytes().to_vec()
}

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

// ---------------------------------------------------------------------------------------
// stat family
// ---------------------------------------------------------------------------------------

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
    let st = ctx.with_file(a[0], |f| host_fstat(f.raw()))??;
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
        Some(n) if super::procnode::is_link(&n) => super::procnode::readlink(ctx, &n)?,
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

/// The program as the guest named it; a relative name is made absolute from where it
/// was actually loaded (the kernel reports an absolute path).
pub(crate) fn guest_exe(ctx: &Ctx) -> Vec<u8> {
    let (exe, exe_host) = ctx.proc.exe();
    if exe.first() == Some(&b'/') {
        return exe;
    }
    match std::fs::canonicalize(&exe_host) {
        Ok(p) => guest_view(ctx, &p),
        Err(_) => exe,
    }
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
