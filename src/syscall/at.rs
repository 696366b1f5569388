//! Path arguments of the `*at` calls: a guest (dirfd, path) → the host (dir, path) pair
//! to hand to a host `*at` call, through the one resolver (`resolve`): `--sysroot`,
//! symlinks in the guest's view, and the guest's own /proc. Relative paths stay relative
//! to the host fd behind the guest dirfd (or to the host cwd, which is the guest's). The
//! description behind a guest dirfd is held (its `Arc`) for the whole host call, so a
//! concurrent close cannot recycle the host fd under it.

use std::ffi::CString;

use super::abi::{AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW};
use super::hostdir::{host_dir, HostDir};
use super::resolve::{self, How, FOLLOW, NOFOLLOW};
use super::Ctx;
use crate::errno::Errno;

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
pub(crate) fn at_flagged(
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
