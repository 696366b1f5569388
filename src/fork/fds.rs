//! The fd table a fork child starts with.
//!
//! Linux: the child gets a copy of the table whose entries refer to the same open file
//! descriptions (shared offsets and status flags), CLOEXEC flags kept. Host fds already
//! have that property (the host's fork() or SCM_RIGHTS shares the kernel's description),
//! so an elfuse description over a host fd crosses as is. What elfuse emulates does not:
//!
//! - an emulated description (`syscall::kinds`): the child builds its own from the
//!   state its kind hands over (a signalfd: mask and O_NONBLOCK, with its own readiness
//!   eventfd watched by the child's signal state), or does not inherit it.
//! - /dev/urandom descriptions get a fresh entropy cache (never the parent's bytes).

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;

use elfuse_actors::fdtable::{FdTable, FileKind, OpenFile};

use crate::signal::state::SignalState;
use crate::syscall::kinds::{self, Watchers};

/// A native fork child's table, from the parent's table as captured just before fork().
/// Each description is rebuilt once (dup aliases stay aliases) over the same host fd
/// number, which the new description now owns: the parent's objects are forgotten, never
/// dropped, so a guest close() in the child closes the host fd exactly once. The
/// parent's fd-table actor is never called in the child (its thread does not exist
/// there, and another thread may have held it at fork()).
pub fn adopt(parent: FdTable, signals: &mut SignalState) -> FdTable {
    let mut table = FdTable::new();
    let (soft, hard) = parent.limits();
    let _ = table.set_limits(soft, hard, true);
    let entries = parent.snapshot();
    let mut done: Vec<(*const OpenFile, Option<Arc<OpenFile>>)> = Vec::new();
    let mut watchers = Watchers::new();
    for (fd, file, cloexec) in &entries {
        let key = Arc::as_ptr(file);
        let new = match done.iter().find(|(k, _)| *k == key) {
            Some((_, n)) => n.clone(),
            None => {
                let n = adopt_one(file, &mut watchers);
                done.push((key, n.clone()));
                n
            }
        };
        let Some(new) = new else { continue };
        if table.install_at(*fd, new, *cloexec).is_err() {
            tracing::warn!(fd, "fork child: fd not inherited");
        }
    }
    std::mem::forget(entries);
    std::mem::forget(parent);
    for w in watchers {
        signals.watch(w);
    }
    table
}

/// One description for the child (None: it cannot be inherited and is dropped).
fn adopt_one(file: &OpenFile, watchers: &mut Watchers) -> Option<Arc<OpenFile>> {
    let path = file.path.as_deref();
    // SAFETY (from_raw_fd): the child's only owner of this inherited host fd from now on.
    Some(match &file.kind {
        FileKind::Host(h) => {
            use std::os::fd::AsRawFd;
            // SAFETY: after a host fork this fd number is the child's own copy; `adopt`
            // forgets the parent's table and snapshot, so the old OpenFile never drops it
            // and the new OpenFile is its only owner.
            let fd = unsafe { OwnedFd::from_raw_fd(h.as_raw_fd()) };
            OpenFile::host_flagged(fd, path, file.urandom)
        }
        FileKind::Urandom { fd, .. } => {
            use std::os::fd::AsRawFd;
            // SAFETY: as for the host kind above: the child's copy of the fd is owned only by
            // the new OpenFile.
            let fd = unsafe { OwnedFd::from_raw_fd(fd.as_raw_fd()) };
            OpenFile::opened(fd, path, true)
        }
        FileKind::Stdio(n) => OpenFile::stdio(*n, path.map(Into::into)),
        FileKind::Synthetic(s) => {
            let state = kinds::registry::of(file).and_then(|(g, k)| Some((g.fork_state()?, k)));
            // The parent's host fd is of no use here: close it (its owner, the parent's
            // object, is never dropped in the child).
            // SAFETY: the child's only reference to this host fd (see `adopt`).
            unsafe { libc::close(s.raw()) };
            let (state, kind) = state?;
            OpenFile::synthetic((kind.adopt)(&state, watchers).ok()?)
        }
    })
}
