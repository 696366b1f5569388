//! The walk's position and its steps: the guest path walked so far and the host
//! directory it stands for, the sysroot overlay, `..`, symlinks, RESOLVE_* scoping.

use std::collections::VecDeque;
use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::{components, Resolved, MAX_SYMLINKS, SCOPED};
use super::{RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS};
use crate::errno::Errno;
use crate::syscall::hostdir::HostDir;
use crate::syscall::procnode::{self, Enter, Node};
use crate::syscall::{Ctx, PATH_MAX};

pub(super) fn lstat_at(dir: RawFd, path: &[u8]) -> Result<libc::stat, Errno> {
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

pub(super) fn readlink_at(dir: RawFd, path: &[u8]) -> Result<Vec<u8>, Errno> {
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

pub(super) fn is_link(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFLNK
}

/// (st_dev, st_ino) of a host path, if it exists.
fn id_of(p: &[u8]) -> Option<(u64, u64)> {
    let st = lstat_at(libc::AT_FDCWD, p).ok()?;
    Some((st.st_dev, st.st_ino))
}

/// The host's procfs device (to recognise a host fd or cwd inside /proc).
pub(crate) fn proc_dev() -> u64 {
    static DEV: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *DEV.get_or_init(|| id_of(b"/proc").map_or(u64::MAX, |(d, _)| d))
}

/// The walk's position.
pub(super) struct Walk<'a, 'c> {
    pub(super) ctx: Option<&'a Ctx<'c>>,
    /// The host directory `host` is relative to (AT_FDCWD for absolute `host`).
    pub(super) dir: HostDir,
    /// The host path so far.
    pub(super) host: Vec<u8>,
    /// The guest's canonical path so far, when the walk is anchored at the guest's `/`
    /// (`None`: relative to a directory that is neither `/` nor in /proc).
    pub(super) guest: Option<Vec<Vec<u8>>>,
    /// For each anchored component: the host path length and `overlay` before it.
    pub(super) undo: Vec<(usize, bool)>,
    /// Components walked below an unanchored start (what `..` may pop).
    pub(super) rel_depth: usize,
    /// Inside ROOT (lookups that miss may fall back to the host).
    pub(super) overlay: bool,
    pub(super) root: Vec<u8>,
    pub(super) root_id: Option<(u64, u64)>,
    pub(super) has_sysroot: bool,
    pub(super) links: usize,
    /// openat2's RESOLVE_* flags (see `scoped`).
    pub(super) res: u64,
    /// RESOLVE_NO_XDEV: the device every component must be on.
    pub(super) dev: Option<u64>,
}

impl<'a, 'c> Walk<'a, 'c> {
    pub(super) fn new(ctx: Option<&'a Ctx<'c>>, sysroot: Option<&Path>) -> Walk<'a, 'c> {
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
    pub(super) fn scoped(&mut self, dir: &HostDir) -> Result<(), Errno> {
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
    pub(super) fn may_follow(&self, target: &[u8]) -> Result<(), Errno> {
        if self.res & RESOLVE_NO_SYMLINKS != 0 {
            return Err(Errno::ELOOP);
        }
        if self.res & RESOLVE_BENEATH != 0 && target.first() == Some(&b'/') {
            return Err(Errno::EXDEV);
        }
        Ok(())
    }

    /// A magic link (/proc/<pid>/fd/N, cwd, exe...) is about to be followed.
    pub(super) fn may_follow_magic(&self) -> Result<(), Errno> {
        if self.res & (RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS) != 0 {
            return Err(Errno::ELOOP);
        }
        if self.res & SCOPED != 0 {
            return Err(Errno::EXDEV);
        }
        Ok(())
    }

    /// RESOLVE_NO_XDEV: a component on another device (a mount crossed).
    pub(super) fn same_dev(&self, st: &libc::stat) -> Result<(), Errno> {
        match self.dev {
            Some(d) if d != st.st_dev => Err(Errno::EXDEV),
            _ => Ok(()),
        }
    }

    /// Back to the guest's `/`.
    pub(super) fn anchor_root(&mut self) {
        self.dir = HostDir::cwd();
        self.host = self.root.clone();
        self.guest = Some(Vec::new());
        self.undo.clear();
        self.rel_depth = 0;
        self.overlay = self.has_sysroot;
    }

    /// Anchored at the guest path `comps` whose host path is `host` (outside ROOT).
    pub(super) fn anchor_at(&mut self, comps: Vec<Vec<u8>>, host: Vec<u8>) {
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
    pub(super) fn start_at(&mut self, dir: HostDir) -> Result<Option<Node>, Errno> {
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
    pub(super) fn anchor_in_proc(&mut self, comps: Vec<Vec<u8>>) -> Result<Option<Node>, Errno> {
        let own = self.ctx.and_then(|ctx| {
            let pid = comps.get(1)?;
            if pid.as_slice() == ctx.proc.pid.to_string().as_bytes() {
                return Some((ctx, Node::Dir(None, procnode::Dir::Pid)));
            }
            // Another elfuse process's /proc/<pid> (a directory of it opened earlier).
            let other = std::str::from_utf8(pid).ok()?.parse().ok()?;
            match procnode::other_pid(other) {
                Enter::Own(node) => Some((ctx, node)),
                _ => None,
            }
        });
        if let Some((ctx, mut node)) = own {
            self.anchor_root();
            self.guest = Some(vec![b"proc".to_vec()]);
            self.host = b"/proc".to_vec();
            self.overlay = false;
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

    pub(super) fn joined(&self, name: &[u8]) -> Vec<u8> {
        let mut p = self.host.clone();
        if !p.is_empty() && p.last() != Some(&b'/') {
            p.push(b'/');
        }
        p.extend_from_slice(name);
        p
    }

    /// The host path of the anchored guest path plus `name`, outside ROOT.
    pub(super) fn host_equivalent(&self, name: &[u8]) -> Vec<u8> {
        let mut p = Vec::new();
        for c in self.guest.iter().flatten() {
            p.push(b'/');
            p.extend_from_slice(c);
        }
        p.push(b'/');
        p.extend_from_slice(name);
        p
    }

    pub(super) fn push(&mut self, name: &[u8], host: Vec<u8>, overlay: bool) {
        if let Some(g) = &mut self.guest {
            self.undo.push((self.host.len(), self.overlay));
            g.push(name.to_vec());
        } else {
            self.rel_depth += 1;
        }
        self.host = host;
        self.overlay = overlay;
    }

    pub(super) fn dotdot(&mut self) -> Result<(), Errno> {
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
    pub(super) fn follow(
        &mut self,
        target: &[u8],
        todo: &mut VecDeque<Vec<u8>>,
    ) -> Result<(), Errno> {
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

    pub(super) fn result(self, trailing_slash: bool) -> Result<Resolved, Errno> {
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
