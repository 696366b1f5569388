//! The one path resolver: every guest path (absolute, relative to the cwd or to a dirfd)
//! becomes a host location here, component by component, with the guest's symlinks
//! followed in the guest's view of the filesystem.
//!
//! The guest's view (`--sysroot ROOT`, qemu's `-L` rule, made exact):
//! - Lookups: a guest path names `ROOT/path` when that exists, else the host's `path`.
//!   The rule is applied per component while walking, so a directory that exists only on
//!   the host (`/home/me/project`) is the host's from that component on.
//! - Creation: a missing last component is created inside ROOT when its parent directory
//!   is inside ROOT (and the host has no such entry), else on the host: `open("/tmp/x/f",
//!   O_CREAT)` creates the host's /tmp/x/f when /tmp/x exists only on the host.
//! - Symlinks are followed by the resolver, not the host: an absolute target starts again
//!   at the guest's `/` (ROOT), `..` never climbs above it.
//! - `/proc` and `/dev` are the host's (as bind mounts in a chroot), and `/proc/self`,
//!   `/proc/thread-self` and `/proc/<guest pid>` are the guest's own (see `procfs`),
//!   however the path is spelled: the decision is made on the resolved path.
//!
//! Without `--sysroot` ROOT is the host's `/` and only the /proc rules apply.

use std::collections::VecDeque;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::hostdir::HostDir;
use super::procnode::{self, Enter, LinkTo, Node};
use super::Ctx;
use crate::errno::Errno;
pub(crate) use walk::proc_dev;
use walk::{is_link, lstat_at, readlink_at, Walk};

mod walk;

/// The components of a path, `.` and empty ones dropped.
pub(crate) fn components(p: &[u8]) -> Vec<Vec<u8>> {
    p.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(|c| c.to_vec())
        .collect()
}

/// Linux's limit on symlinks followed in one lookup.
const MAX_SYMLINKS: usize = 40;

/// A resolved guest path: the host location to hand to a host `*at` call and, for an
/// entry of the guest's own /proc, what it is (the host location is then only a stand-in
/// with the right type and permissions: the host's /proc entry of the same name, or the
/// guest file behind a `fd/N` link).
pub(crate) struct Resolved {
    pub dir: HostDir,
    pub path: CString,
    pub node: Option<Node>,
}

/// What is resolved: the last component followed if it is a symlink (`follow`), under
/// openat2's RESOLVE_* restrictions (`resolve`, 0 for every other call).
#[derive(Clone, Copy)]
pub(crate) struct How {
    pub follow: bool,
    pub resolve: u64,
}

pub(crate) const FOLLOW: How = How {
    follow: true,
    resolve: 0,
};
pub(crate) const NOFOLLOW: How = How {
    follow: false,
    resolve: 0,
};

/// openat2's RESOLVE_* flags.
pub(crate) const RESOLVE_NO_XDEV: u64 = 0x01;
pub(crate) const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub(crate) const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub(crate) const RESOLVE_BENEATH: u64 = 0x08;
pub(crate) const RESOLVE_IN_ROOT: u64 = 0x10;
pub(crate) const RESOLVE_CACHED: u64 = 0x20;
const SCOPED: u64 = RESOLVE_BENEATH | RESOLVE_IN_ROOT;

/// Resolves guest `path` relative to guest `dirfd` (AT_FDCWD: the cwd).
pub(crate) fn resolve(ctx: &Ctx, dirfd: u64, path: &[u8], how: How) -> Result<Resolved, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let (sysroot, chroot) = {
        let fs = ctx.fs();
        (fs.sysroot.clone(), fs.chroot)
    };
    if how.resolve == 0 {
        if let Some(r) = super::resolve_fast::fast(ctx, sysroot.as_deref(), dirfd, path, how) {
            return Ok(r);
        }
    }
    let mut w = Walk::new(Some(ctx), sysroot.as_deref());
    w.res = how.resolve;
    // Inside a chroot a lookup that misses fails there (no host fallback).
    w.has_sysroot &= !chroot;
    let mut node = None;
    if how.resolve & SCOPED != 0 {
        if path[0] == b'/' && how.resolve & RESOLVE_BENEATH != 0 {
            return Err(Errno::EXDEV);
        }
        if procnode::dir_node(ctx, dirfd)?.is_some() {
            // A directory of the guest's own /proc has no host directory to scope to.
            return Err(Errno::EXDEV);
        }
        w.scoped(&super::hostdir::host_dir(ctx, dirfd)?)?;
    } else if path[0] == b'/' {
        w.anchor_root();
    } else if let Some(n) = procnode::dir_node(ctx, dirfd)? {
        // A directory of the guest's own /proc opened earlier.
        node = Some(n);
    } else {
        node = w.start_at(super::hostdir::host_dir(ctx, dirfd)?)?;
    }
    if how.resolve & RESOLVE_NO_XDEV != 0 {
        // The device of where the walk starts.
        let start = if w.guest.is_some() {
            w.host.clone()
        } else {
            w.joined(b".")
        };
        w.dev = Some(lstat_at(w.dir.raw(), &start)?.st_dev);
    }
    let trailing_slash = path.last() == Some(&b'/') && path.len() > 1;
    let follow_last = how.follow || trailing_slash;
    let todo: VecDeque<Vec<u8>> = components(path).into();
    match node {
        Some(n) => own_proc(ctx, w, n, todo, follow_last, trailing_slash),
        None => walk(w, todo, follow_last, trailing_slash),
    }
}

/// The host path of guest path `guest` for elfuse's own use (the program, its
/// interpreter): the same rules without a guest context (no /proc of the guest).
pub fn host_path(sysroot: Option<&Path>, guest: &[u8]) -> std::path::PathBuf {
    use std::ffi::OsStr;
    let plain = || Path::new(OsStr::from_bytes(guest)).to_path_buf();
    if guest.is_empty() {
        return plain();
    }
    let mut w = Walk::new(None, sysroot);
    if guest[0] == b'/' {
        w.anchor_root();
    }
    let trailing_slash = guest.last() == Some(&b'/') && guest.len() > 1;
    match walk(w, components(guest).into(), true, trailing_slash) {
        Ok(r) if r.dir.is_cwd() => Path::new(OsStr::from_bytes(r.path.as_bytes())).to_path_buf(),
        _ => plain(),
    }
}

fn walk(
    mut w: Walk,
    mut todo: VecDeque<Vec<u8>>,
    follow_last: bool,
    trailing_slash: bool,
) -> Result<Resolved, Errno> {
    while let Some(name) = todo.pop_front() {
        let last = todo.is_empty();
        if name == b".." {
            w.dotdot()?;
            continue;
        }
        // The guest's /proc and /dev are the host's, whatever ROOT holds.
        let scoped = w.res & SCOPED != 0;
        if !scoped
            && w.guest.as_ref().is_some_and(|g| g.is_empty())
            && (name == b"proc" || name == b"dev")
        {
            let host = [b"/".as_slice(), &name].concat();
            if w.dev.is_some() {
                w.same_dev(&lstat_at(libc::AT_FDCWD, &host)?)?;
            }
            w.push(&name, host, false);
            continue;
        }
        if let (Some(g), Some(ctx), false) = (&w.guest, w.ctx, scoped) {
            if g.len() == 1 && g[0] == b"proc" {
                match procnode::enter(ctx, &name, last && !follow_last) {
                    Enter::Host => {}
                    Enter::Link(target) => {
                        // `self` -> `<pid>`: relative to /proc.
                        w.may_follow(&target)?;
                        w.follow(&target, &mut todo)?;
                        continue;
                    }
                    Enter::Own(node) => {
                        return own_proc(ctx, w, node, todo, follow_last, trailing_slash);
                    }
                    Enter::Gone => return Err(Errno::ENOENT),
                }
            }
        }
        let cand = w.joined(&name);
        match lstat_at(w.dir.raw(), &cand) {
            Ok(st) => {
                w.same_dev(&st)?;
                if is_link(&st) && (!last || follow_last) {
                    if st.st_dev == proc_dev() {
                        // A host /proc link (another process's fd, cwd, exe...).
                        w.may_follow_magic()?;
                    }
                    let target = readlink_at(w.dir.raw(), &cand)?;
                    w.may_follow(&target)?;
                    w.follow(&target, &mut todo)?;
                } else {
                    let overlay = w.overlay;
                    w.push(&name, cand, overlay);
                }
            }
            Err(Errno::ENOENT) if w.overlay && w.guest.is_some() => {
                // Not in ROOT: the host's, if the host has it (or, for a directory on the
                // way, whatever the host says about it).
                let outside = w.host_equivalent(&name);
                match lstat_at(libc::AT_FDCWD, &outside) {
                    Ok(st) if is_link(&st) && (!last || follow_last) => {
                        let target = readlink_at(libc::AT_FDCWD, &outside)?;
                        w.may_follow(&target)?;
                        // A relative target is relative to the host's directory.
                        w.host = outside[..outside.len() - name.len() - 1].to_vec();
                        if w.host.is_empty() {
                            w.host = b"/".to_vec();
                        }
                        w.overlay = false;
                        w.follow(&target, &mut todo)?;
                    }
                    Ok(_) => w.push(&name, outside, false),
                    // The creation rule: the parent is in ROOT, so is the new entry.
                    Err(_) if last => w.push(&name, cand, true),
                    Err(_) => {
                        w.push(&name, outside, false);
                        return rest_verbatim(w, todo, trailing_slash);
                    }
                }
            }
            Err(_) => {
                // The host call reports the error (ENOENT, ENOTDIR, EACCES...).
                w.push(&name, cand, false);
                return rest_verbatim(w, todo, trailing_slash);
            }
        }
    }
    w.result(trailing_slash)
}

/// Appends the unwalked components as they are (the lookup fails there anyway).
fn rest_verbatim(
    mut w: Walk,
    todo: VecDeque<Vec<u8>>,
    trailing_slash: bool,
) -> Result<Resolved, Errno> {
    for c in todo {
        w.host.push(b'/');
        w.host.extend_from_slice(&c);
    }
    w.result(trailing_slash)
}

/// The rest of a walk inside the guest's own /proc/<pid>: entries are generated or
/// stand in for the guest's objects; magic links lead back out.
fn own_proc(
    ctx: &Ctx,
    mut w: Walk,
    mut node: Node,
    mut todo: VecDeque<Vec<u8>>,
    follow_last: bool,
    trailing_slash: bool,
) -> Result<Resolved, Errno> {
    while let Some(name) = todo.pop_front() {
        let last = todo.is_empty();
        if name == b".." {
            match procnode::parent(&node) {
                Some(p) => node = p,
                None => {
                    // Above /proc/<pid>: back to /proc.
                    w.anchor_root();
                    todo.push_front(b"proc".to_vec());
                    return walk(w, todo, follow_last, trailing_slash);
                }
            }
            continue;
        }
        node = procnode::child(ctx, &node, &name)?;
        if !procnode::is_link(&node) {
            continue;
        }
        if last && !follow_last {
            break;
        }
        w.links += 1;
        if w.links > MAX_SYMLINKS {
            return Err(Errno::ELOOP);
        }
        w.may_follow_magic()?;
        match procnode::follow(ctx, &node)? {
            LinkTo::File(file, host) => {
                if last {
                    return Ok(Resolved {
                        dir: HostDir::held_cwd(file),
                        path: host,
                        node: None,
                    });
                }
                // A directory fd: the rest is relative to it.
                return continue_at(
                    ctx,
                    w,
                    HostDir::held(file),
                    todo,
                    follow_last,
                    trailing_slash,
                );
            }
            LinkTo::HostPath(p) => {
                if !last {
                    return Err(Errno::ENOTDIR);
                }
                return Ok(Resolved {
                    dir: HostDir::cwd(),
                    path: p,
                    node: None,
                });
            }
            LinkTo::Guest(path) => {
                for c in components(&path).into_iter().rev() {
                    todo.push_front(c);
                }
                if path.first() == Some(&b'/') {
                    w.anchor_root();
                    return walk(w, todo, follow_last, trailing_slash);
                }
                return continue_at(ctx, w, HostDir::cwd(), todo, follow_last, trailing_slash);
            }
        }
    }
    let (dir, path) = procnode::stand_in(ctx, &node)?;
    Ok(Resolved {
        dir,
        path,
        node: Some(node),
    })
}

/// Goes on from host directory `dir` (a magic link's target).
fn continue_at(
    ctx: &Ctx,
    mut w: Walk,
    dir: HostDir,
    todo: VecDeque<Vec<u8>>,
    follow_last: bool,
    trailing_slash: bool,
) -> Result<Resolved, Errno> {
    match w.start_at(dir)? {
        Some(n) => own_proc(ctx, w, n, todo, follow_last, trailing_slash),
        None => walk(w, todo, follow_last, trailing_slash),
    }
}
