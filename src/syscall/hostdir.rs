//! The host side of guest paths: the host directory a guest path is relative to
//! (`HostDir`, kept alive for the host call) and the way back, a host path as the guest
//! names it (inside `--sysroot` the prefix is stripped). Below the resolver, which walks
//! from a `HostDir`, and below /proc, which shows guest views of host paths.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use elfuse_actors::fdtable::OpenFile;

use super::abi::AT_FDCWD;
use super::Ctx;
use crate::errno::Errno;

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

pub(crate) fn is_at_fdcwd(dirfd: u64) -> bool {
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

pub(crate) fn cstring(b: &[u8]) -> Result<CString, Errno> {
    CString::new(b).map_err(|_| Errno::EINVAL)
}

/// A host path as the guest sees it: inside `--sysroot` the prefix is stripped.
pub(crate) fn guest_view_of(ctx: &Ctx, host: &Path) -> Vec<u8> {
    guest_view(ctx, host)
}

pub(crate) fn guest_view(ctx: &Ctx, host: &Path) -> Vec<u8> {
    let sysroot = ctx.fs().sysroot.clone();
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
