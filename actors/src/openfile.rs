//! Open file descriptions: what a guest fd refers to, shared by its dup aliases.

use std::any::Any;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

use crate::urandom::EntropyCache;

/// A description whose behaviour the syscall layer emulates (signalfd...) over a host fd
/// that carries its readiness, so poll and epoll work on it unchanged.
pub trait Synthetic: Any + Send + Sync + std::fmt::Debug {
    /// The host fd behind it (owned by the implementor, closed when it drops).
    fn raw(&self) -> RawFd;
    fn as_any(&self) -> &dyn Any;
}

/// What a guest fd refers to.
#[derive(Debug)]
pub enum FileKind {
    /// A host file descriptor (regular file, directory, pipe, tty, socket...).
    Host(OwnedFd),
    /// One of the host's standard streams, shared with elfuse itself: closing it in the
    /// guest closes the host fd too (as a real process would), but never twice.
    Stdio(RawFd),
    /// An emulated description (see [`Synthetic`]).
    Synthetic(Arc<dyn Synthetic>),
    /// /dev/urandom (or /dev/random): `read` is served from a per-description buffer
    /// filled in bulk from the host CSPRNG, zeroed when the description goes away.
    Urandom {
        fd: OwnedFd,
        cache: Mutex<EntropyCache>,
    },
}

/// An open file description.
#[derive(Debug)]
pub struct OpenFile {
    pub kind: FileKind,
    /// The path it was opened with (for fchdir, /proc/self/fd and traces).
    pub path: Option<Box<[u8]>>,
    /// The host's /dev/urandom (character device 1:9), opened readable: reads of it may be
    /// served from the EL1 shim's random ring (see
    /// [`SlotObserver`](crate::fdtable::SlotObserver)).
    pub urandom: bool,
    /// Host fds standing for its guest fd numbers in host epoll sets.
    pub epoll_keys: EpollKeys,
}

impl OpenFile {
    pub fn host(fd: OwnedFd, path: Option<&[u8]>) -> Arc<OpenFile> {
        Self::host_flagged(fd, path, false)
    }

    /// [`OpenFile::host`] for a description that may be /dev/urandom.
    pub fn host_flagged(fd: OwnedFd, path: Option<&[u8]>, urandom: bool) -> Arc<OpenFile> {
        Self::new(FileKind::Host(fd), path.map(Into::into), urandom)
    }

    pub fn synthetic(s: Arc<dyn Synthetic>) -> Arc<OpenFile> {
        Self::new(FileKind::Synthetic(s), None, false)
    }

    /// One of the host's standard streams (see [`FileKind::Stdio`]).
    pub fn stdio(fd: RawFd, path: Option<Box<[u8]>>) -> Arc<OpenFile> {
        Self::new(FileKind::Stdio(fd), path, false)
    }

    fn new(kind: FileKind, path: Option<Box<[u8]>>, urandom: bool) -> Arc<OpenFile> {
        Arc::new(OpenFile {
            kind,
            path,
            urandom,
            epoll_keys: EpollKeys::default(),
        })
    }

    /// A freshly opened host fd: like [`OpenFile::host`], but a character device that is
    /// the host's /dev/urandom or /dev/random gets the entropy cache, and /dev/urandom
    /// opened `readable` may be served by the shim's ring ([`OpenFile::urandom`]).
    pub fn opened(fd: OwnedFd, path: Option<&[u8]>, readable: bool) -> Arc<OpenFile> {
        // SAFETY: zeroed is a valid struct stat; the host fills it.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat writes one struct stat into `st`, a local of that type; `fd` is owned
        // by us.
        let chr = unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } == 0
            && st.st_mode & libc::S_IFMT == libc::S_IFCHR;
        let urandom = chr && st.st_rdev == libc::makedev(1, 9);
        // A write-only description keeps the host's answers (EBADF for read).
        if !readable || !(urandom || chr && st.st_rdev == libc::makedev(1, 8)) {
            return Self::host(fd, path);
        }
        let cache = Mutex::new(EntropyCache::new());
        Self::new(
            FileKind::Urandom { fd, cache },
            path.map(Into::into),
            urandom,
        )
    }

    /// The host fd behind it.
    pub fn raw(&self) -> RawFd {
        match &self.kind {
            FileKind::Host(fd) | FileKind::Urandom { fd, .. } => fd.as_raw_fd(),
            FileKind::Stdio(fd) => *fd,
            FileKind::Synthetic(s) => s.raw(),
        }
    }

    /// The emulated state behind it, if it is a [`Synthetic`] of type `T`.
    pub fn synthetic_as<T: Synthetic>(&self) -> Option<&T> {
        match &self.kind {
            FileKind::Synthetic(s) => s.as_any().downcast_ref(),
            _ => None,
        }
    }

    /// The entropy cache of a /dev/urandom description.
    pub fn entropy_cache(&self) -> Option<&Mutex<EntropyCache>> {
        match &self.kind {
            FileKind::Urandom { cache, .. } => Some(cache),
            _ => None,
        }
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        if let FileKind::Stdio(fd) = self.kind {
            // SAFETY: the last alias of a guest stdio description is gone.
            unsafe { libc::close(fd) };
        }
    }
}

/// Host fds standing for a description's guest fd numbers in host epoll sets.
///
/// Linux keys an epoll registration by (description, fd number), so two dup aliases of
/// one description can both be registered. On the host every alias is the same host fd,
/// so the first guest fd number registered uses the description's own host fd and every
/// other number gets a host dup of it (a host epoll keys by (file, fd) too). The dups
/// live as long as the description: Linux drops registrations when the description is
/// released, and the host does when the last host fd of the file closes, the dups
/// included. A guest fd number reused for another description meets that description's
/// own keys.
#[derive(Debug, Default)]
pub struct EpollKeys(Mutex<Vec<(i32, Option<OwnedFd>)>>);

impl EpollKeys {
    /// The host fd that stands for guest fd `fd` of the description whose host fd is
    /// `primary`. `add`: may make one (EPOLL_CTL_ADD); otherwise an unknown alias is
    /// `None` (nothing can be registered under it: ENOENT).
    pub fn host_fd(&self, primary: RawFd, fd: i32, add: bool) -> std::io::Result<Option<RawFd>> {
        let mut keys = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, dup)) = keys.iter().find(|(n, _)| *n == fd) {
            return Ok(Some(dup.as_ref().map_or(primary, AsRawFd::as_raw_fd)));
        }
        if keys.is_empty() {
            keys.push((fd, None));
            return Ok(Some(primary));
        }
        if !add {
            return Ok(None);
        }
        // SAFETY: F_DUPFD_CLOEXEC on a host fd the description keeps open.
        let d = unsafe { libc::fcntl(primary, libc::F_DUPFD_CLOEXEC, 0) };
        if d < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh host fd owned by nobody else.
        keys.push((
            fd,
            Some(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(d) }),
        ));
        Ok(Some(d))
    }
}
