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
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::hostdir::HostDir;
use super::procnode::{self, Enter, LinkTo, Node};
use super::{Ctx, PATH_MAX};
use crate::errno::Errno;

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

fn lstat_at(dir: RawFd, path: &[u8]) -> Result<libc::stat, Errno> {
    let c = CString::new(path).map_err(|_| Errno::EINVAL)?;
    // SAFETY: zeroed is a valid struct stat; the host fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated, `dir` is the caller's open dir fd, and fstatat writes
    // one struct stat into the local `st`.
    if unsafe { libc::fstatat(dir, c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } < 0 {
        return Err(Errno::last());
    }
    Ok(st)
}

fn readlink_at(dir: RawFd, path: &[u8]) -> Result<Vec<u8>, Errno> {
    let c = CString::new(path).map_err(|_| Errno::EINVAL)?;
    let mut buf = vec![0u8; PATH_MAX];
    // SAFETY: `c` is NUL-terminated and readlinkat writes at most `buf.len()` bytes into
    // `buf`, a host Vec of that length.
    let r = unsafe { libc::readlinkat(dir, c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return Err(Errno::last());
    }
    buf.truncate(r as usize);
    Ok(buf)
}

fn is_link(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFLNK
}

/// (st_dev, st_ino) of a host path, if it exists.
fn id_of(p: &[u8]) -> Option<(u64, u64)> {
    let st = lstat_at(libc::AT_FDCWD, p).ok()?;
    Some((st.st_dev, st.st_ino))
}

/// The host's procfs device (to recognise a host fd or cwd inside /proc).
pub(super) fn proc_dev() -> u64 {
    static DEV: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *DEV.get_or_init(|| id_of(b"/proc").map_or(u64::MAX, |(d, _)| d))
}

/// The walk's position.
struct Walk<'a, 'c> {
    ctx: Option<&'a Ctx<'c>>,
    /// The host directory `host` is relative to (AT_FDCWD for absolute `host`).
    dir: HostDir,
    /// The host path so far.
    host: Vec<u8>,
    /// The guest's canonical path so far, when the walk is anchored at the guest's `/`
    /// (`None`: relative to a directory that is neither `/` nor in /proc).
    guest: Option<Vec<Vec<u8>>>,
    /// For each anchored component: the host path length and `overlay` before it.
    undo: Vec<(usize, bool)>,
    /// Components walked below an unanchored start (what `..` may pop).
    rel_depth: usize,
    /// Inside ROOT (lookups that miss may fall back to the host).
    overlay: bool,
    root: Vec<u8>,
    root_id: Option<(u64, u64)>,
    has_sysroot: bool,
    links: usize,
    /// openat2's RESOLVE_* flags (see `scoped`).
    res: u64,
    /// RESOLVE_NO_XDEV: the device every component must be on.
    dev: Option<u64>,
}

impl<'a, 'c> Walk<'a, 'c> {
    fn new(ctx: Option<&'a Ctx<'c>>, sysroot: Option<&Path>) -> Walk<'a, 'c> {
        let root = sysroot.map_or(b"/".to_vec(), |r| r.as_os_str().as_bytes().to_vec());
        let root_id = id_of(&root);
        Walk {
            ctx,
            dir: HostDir::cwd(),
            host: Vec::new(),
            guest: None,
            undo: Vec::new(),
            rel_depth: 0,
            overlay: false,
            root,
            root_id,
            has_sysroot: sysroot.is_some(),
            links: 0,
            res: 0,
            dev: None,
        }
    }

    /// A walk under RESOLVE_BENEATH or RESOLVE_IN_ROOT: the guest's `/` is the host
    /// directory `dir` (the dirfd), with no --sysroot overlay and no /proc or /dev of the
    /// host's; BENEATH makes every way out of it (an absolute path or symlink, `..` at the
    /// top, a magic link) EXDEV, IN_ROOT clamps them to it.
    fn scoped(&mut self, dir: &HostDir) -> Result<(), Errno> {
        let host = if dir.is_cwd() {
            std::env::current_dir().map_err(|e| Errno::from_io(&e))?
        } else {
            std::fs::read_link(format!("/proc/self/fd/{}", dir.raw()))
                .map_err(|e| Errno::from_io(&e))?
        };
        self.root = host.as_os_str().as_bytes().to_vec();
        self.root_id = id_of(&self.root);
        self.has_sysroot = false;
        self.anchor_root();
        Ok(())
    }

    /// A symlink is about to be followed: refused under RESOLVE_NO_SYMLINKS; an absolute
    /// one leaves the root under RESOLVE_BENEATH.
    fn may_follow(&self, target: &[u8]) -> Result<(), Errno> {
        if self.res & RESOLVE_NO_SYMLINKS != 0 {
            return Err(Errno::ELOOP);
        }
        if self.res & RESOLVE_BENEATH != 0 && target.first() == Some(&b'/') {
            return Err(Errno::EXDEV);
        }
        Ok(())
    }

    /// A magic link (/proc/<pid>/fd/N, cwd, exe...) is about to be followed.
    fn may_follow_magic(&self) -> Result<(), Errno> {
        if self.res & (RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS) != 0 {
            return Err(Errno::ELOOP);
        }
        if self.res & SCOPED != 0 {
            return Err(Errno::EXDEV);
        }
        Ok(())
    }

    /// RESOLVE_NO_XDEV: a component on another device (a mount crossed).
    fn same_dev(&self, st: &libc::stat) -> Result<(), Errno> {
        match self.dev {
            Some(d) if d != st.st_dev => Err(Errno::EXDEV),
            _ => Ok(()),
        }
    }

    /// Back to the guest's `/`.
    fn anchor_root(&mut self) {
        self.dir = HostDir::cwd();
        self.host = self.root.clone();
        self.guest = Some(Vec::new());
        self.undo.clear();
        self.rel_depth = 0;
        self.overlay = self.has_sysroot;
    }

    /// Anchored at the guest path `comps` whose host path is `host` (outside ROOT).
    fn anchor_at(&mut self, comps: Vec<Vec<u8>>, host: Vec<u8>) {
        self.dir = HostDir::cwd();
        // `host` ends with the components: each one's prefix is what `..` returns to.
        let mut len = host.len()
            - comps
                .iter()
                .map(|c| c.len() + 1)
                .sum::<usize>()
                .min(host.len());
        self.undo = comps
            .iter()
            .map(|c| {
                let before = len;
                len += c.len() + 1;
                (before, false)
            })
            .collect();
        self.guest = Some(comps);
        self.host = host;
        self.rel_depth = 0;
        self.overlay = false;
    }

    /// Starts at host directory `dir` (a guest dirfd or the cwd): anchored when it is
    /// the guest's `/` or inside the host's /proc.
    fn start_at(&mut self, dir: HostDir) -> Result<Option<Node>, Errno> {
        // SAFETY: zeroed is a valid struct stat; the host fills it.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let r = if dir.is_cwd() {
            // SAFETY: a NUL-terminated literal path; stat writes one struct stat into the
            // local `st`.
            unsafe { libc::stat(c".".as_ptr(), &mut st) }
        } else {
            // SAFETY: fstat writes one struct stat into the local `st`; `dir` holds its fd
            // open.
            unsafe { libc::fstat(dir.raw(), &mut st) }
        };
        if r < 0 {
            return Err(Errno::last());
        }
        if Some((st.st_dev, st.st_ino)) == self.root_id {
            self.anchor_root();
            return Ok(None);
        }
        if st.st_dev == proc_dev() {
            let host = if dir.is_cwd() {
                std::env::current_dir().map_err(|e| Errno::from_io(&e))?
            } else {
                std::fs::read_link(format!("/proc/self/fd/{}", dir.raw()))
                    .map_err(|e| Errno::from_io(&e))?
            };
            let comps = components(host.as_os_str().as_bytes());
            if comps.first().map(|c| c.as_slice()) == Some(b"proc") {
                let comps = procnode::host_to_guest(comps);
                return self.anchor_in_proc(comps);
            }
        }
        self.dir = dir;
        self.host = Vec::new();
        self.guest = None;
        self.rel_depth = 0;
        self.overlay = false;
        Ok(None)
    }

    /// Anchored at guest path `comps` under /proc (from a host fd or cwd in procfs):
    /// inside the guest's own /proc/<pid>, the node there.
    fn anchor_in_proc(&mut self, comps: Vec<Vec<u8>>) -> Result<Option<Node>, Errno> {
        let own = self.ctx.filter(|ctx| {
            comps.get(1).map(|c| c.as_slice()) == Some(ctx.proc.pid.to_string().as_bytes())
        });
        if let Some(ctx) = own {
            self.anchor_root();
            self.guest = Some(vec![b"proc".to_vec()]);
            self.host = b"/proc".to_vec();
            self.overlay = false;
            let mut node = Node::Dir(None, procnode::Dir::Pid);
            for c in &comps[2..] {
                node = procnode::child(ctx, &node, c)?;
            }
            return Ok(Some(node));
        }
        let mut host = Vec::new();
        for c in &comps {
            host.push(b'/');
            host.extend_from_slice(c);
        }
        self.anchor_at(comps, host);
        Ok(None)
    }

    fn joined(&self, name: &[u8]) -> Vec<u8> {
        let mut p = self.host.clone();
        if !p.is_empty() && p.last() != Some(&b'/') {
            p.push(b'/');
        }
        p.extend_from_slice(name);
        p
    }

    /// The host path of the anchored guest path plus `name`, outside ROOT.
    fn host_equivalent(&self, name: &[u8]) -> Vec<u8> {
        let mut p = Vec::new();
        for c in self.guest.iter().flatten() {
            p.push(b'/');
            p.extend_from_slice(c);
        }
        p.push(b'/');
        p.extend_from_slice(name);
        p
    }

    fn push(&mut self, name: &[u8], host: Vec<u8>, overlay: bool) {
        if let Some(g) = &mut self.guest {
            self.undo.push((self.host.len(), self.overlay));
            g.push(name.to_vec());
        } else {
            self.rel_depth += 1;
        }
        self.host = host;
        self.overlay = overlay;
    }

    fn dotdot(&mut self) -> Result<(), Errno> {
        if let Some(g) = &mut self.guest {
            if g.is_empty() && self.res & RESOLVE_BENEATH != 0 {
                return Err(Errno::EXDEV);
            }
            if g.pop().is_some() {
                let (len, overlay) = self.undo.pop().unwrap_or((0, false));
                self.host.truncate(len);
                self.overlay = overlay;
                if self.host.is_empty() {
                    self.host = b"/".to_vec();
                }
            }
            return Ok(());
        }
        if self.rel_depth > 0 {
            // The components below the start are real directories (links were followed).
            let cut = self.host.iter().rposition(|&b| b == b'/').unwrap_or(0);
            self.host.truncate(cut);
            self.rel_depth -= 1;
            return Ok(());
        }
        // Above the start: the host's `..`, unless that is the guest's `/`.
        let up = self.joined(b"..");
        let st = lstat_at(self.dir.raw(), &up)?;
        if Some((st.st_dev, st.st_ino)) == self.root_id {
            self.anchor_root();
        } else {
            self.host = up;
        }
        Ok(())
    }

    /// Follows symlink `target` found at the current position (which stays the base of
    /// a relative target).
    fn follow(&mut self, target: &[u8], todo: &mut VecDeque<Vec<u8>>) -> Result<(), Errno> {
        self.links += 1;
        if self.links > MAX_SYMLINKS {
            return Err(Errno::ELOOP);
        }
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        for c in components(target).into_iter().rev() {
            todo.push_front(c);
        }
        if target[0] == b'/' {
            self.anchor_root();
        }
        Ok(())
    }

    fn result(self, trailing_slash: bool) -> Result<Resolved, Errno> {
        let mut host = if self.host.is_empty() {
            b".".to_vec()
        } else {
            self.host
        };
        if trailing_slash && host.last() != Some(&b'/') {
            host.push(b'/');
        }
        Ok(Resolved {
            dir: self.dir,
            path: CString::new(host).map_err(|_| Errno::EINVAL)?,
            node: None,
        })
    }
}

/// The components of a path, `.` and empty ones dropped.
pub(super) fn components(p: &[u8]) -> Vec<Vec<u8>> {
    p.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(|c| c.to_vec())
        .collect()
}

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
        let Node::Link(_, link) = &node else {
            continue;
        };
        if last && !follow_last {
            break;
        }
        w.links += 1;
        if w.links > MAX_SYMLINKS {
            return Err(Errno::ELOOP);
        }
        w.may_follow_magic()?;
        match procnode::follow_link(ctx, link)? {
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
