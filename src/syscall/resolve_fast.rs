//! The resolver's fast path (see `resolve`): an existing path without symlinks or `..`
//! that does not start at /proc or /dev resolves to itself in two host calls.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::hostdir::HostDir;
use super::procnode;
use super::resolve::{components, proc_dev, How, Resolved};
use super::Ctx;

/// An O_PATH fd of `--sysroot` (this host process's; the sysroot never changes).
#[cfg(target_os = "linux")]
fn root_fd(root: &Path) -> Option<RawFd> {
    static FD: std::sync::OnceLock<(std::path::PathBuf, RawFd)> = std::sync::OnceLock::new();
    let (p, fd) = FD.get_or_init(|| {
        let c = CString::new(root.as_os_str().as_bytes()).unwrap_or_default();
        // SAFETY: `c` is a NUL-terminated CString; the result is checked before use.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        (root.to_path_buf(), fd)
    });
    (p == root && *fd >= 0).then_some(*fd)
}

/// The common case in two host calls instead of one per component: a path without `..`
/// that does not start at /proc or /dev and that exists with no symlink on the way
/// (`openat2(RESOLVE_NO_SYMLINKS)` says so) resolves to itself (inside ROOT). Anything
/// else (`None`) takes the walk.
#[cfg(target_os = "linux")]
pub(super) fn fast(
    ctx: &Ctx,
    sysroot: Option<&Path>,
    dirfd: u64,
    path: &[u8],
    how: How,
) -> Option<Resolved> {
    let comps = components(path);
    if comps.iter().any(|c| c == b"..")
        || comps.first().is_some_and(|c| c == b"proc" || c == b"dev")
    {
        return None;
    }
    let abs = path[0] == b'/';
    let (base, dir, rel) = if abs {
        match sysroot {
            Some(root) => (root_fd(root)?, HostDir::cwd(), comps.join(&b'/')),
            None => (libc::AT_FDCWD, HostDir::cwd(), path.to_vec()),
        }
    } else {
        if procnode::dir_node(ctx, dirfd).ok()?.is_some() {
            return None;
        }
        let d = super::hostdir::host_dir(ctx, dirfd).ok()?;
        (d.raw(), d, path.to_vec())
    };
    let rel = if rel.is_empty() { b".".to_vec() } else { rel };
    let c = CString::new(rel).ok()?;
    let mut flags = libc::O_PATH | libc::O_CLOEXEC;
    if !how.follow {
        flags |= libc::O_NOFOLLOW;
    }
    /// The kernel's `struct open_how` (libc's is non-exhaustive).
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let oh = OpenHow {
        flags: flags as u64,
        mode: 0,
        resolve: libc::RESOLVE_NO_SYMLINKS,
    };
    // SAFETY: `c` is NUL-terminated, `how` is a live open_how of the size passed, and `root`
    // is the sysroot's fd, held open for the process life.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            base,
            c.as_ptr(),
            &oh as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return None;
    }
    let fd = fd as RawFd;
    // A relative path from a directory inside the host's procfs is the walk's.
    let in_proc = !abs && {
        // SAFETY: zeroed is a valid struct stat; the host fills it.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat writes one struct stat into the local `st`; `fd` was opened just
        // above.
        let r = unsafe { libc::fstat(fd, &mut st) };
        r != 0 || st.st_dev == proc_dev()
    };
    // `fd` was opened above by this function and is closed once, here.
    let _ = nix::unistd::close(fd);
    if in_proc {
        return None;
    }
    let host = match (abs, sysroot) {
        (true, Some(root)) => [root.as_os_str().as_bytes(), path].concat(),
        _ => path.to_vec(),
    };
    Some(Resolved {
        dir,
        path: CString::new(host).ok()?,
        node: None,
    })
}

#[cfg(not(target_os = "linux"))]
pub(super) fn fast(_: &Ctx, _: Option<&Path>, _: u64, _: &[u8], _: How) -> Option<Resolved> {
    None
}
