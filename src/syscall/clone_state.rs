//! The records behind `clone_own` and `clone_proc`, in a leaf module (the thread state
//! and the process hold them): a thread's own fd table and fs context ([`Own`]), the
//! process's list of such tables ([`OwnTables`]) and its children with another exit
//! signal than SIGCHLD ([`CloneKids`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use elfuse_actors::fdactor::FdActor;

use super::fsctx::FsContext;
use crate::guest::shimdata::ShimData;

/// A thread's own fd table and fs context, when it has them (`None`: the process's).
/// Cloning shares them (CLONE_FILES / CLONE_FS from this thread).
#[derive(Clone, Default)]
pub struct Own {
    pub files: Option<Arc<FdActor>>,
    pub fs: Option<Arc<Mutex<FsContext>>>,
}

impl std::fmt::Debug for Own {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Own")
            .field("files", &self.files.is_some())
            .field("fs", &self.fs.is_some())
            .finish()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The process's record of the tables its threads hold apart (see `clone_own`).
#[derive(Default)]
pub struct OwnTables {
    /// The shim's urandom bitmap is off for good (a second table exists).
    pub(crate) urandom_off: Arc<AtomicBool>,
    /// Threads with their own table (tid, table); dead entries are dropped as found.
    tables: Mutex<Vec<(i32, Weak<FdActor>)>>,
}

impl OwnTables {
    /// The flag the process table's slot observer consults (`urandom_bit`).
    pub fn urandom_flag(&self) -> Arc<AtomicBool> {
        self.urandom_off.clone()
    }

    pub(crate) fn register(&self, tid: i32, t: &Arc<FdActor>) {
        let mut v = lock(&self.tables);
        v.retain(|(id, w)| *id != tid && w.strong_count() > 0);
        v.push((tid, Arc::downgrade(t)));
    }

    /// Every table apart from the process's (each once).
    pub(crate) fn all(&self) -> Vec<Arc<FdActor>> {
        let v = lock(&self.tables);
        let mut out: Vec<Arc<FdActor>> = Vec::new();
        for t in v.iter().filter_map(|(_, w)| w.upgrade()) {
            if !out.iter().any(|o| Arc::ptr_eq(o, &t)) {
                out.push(t);
            }
        }
        out
    }
}

/// The slot observer's update of the shim's urandom bitmap: a bit is set only while the
/// process has a single table. The flag is checked again after setting (SeqCst on both
/// sides), so a bit set while `clone_own` clears the bitmap never survives it.
pub fn urandom_bit(sd: &ShimData, off: &AtomicBool, fd: i32, on: bool) {
    if !on || off.load(SeqCst) {
        sd.set_urandom(fd, false);
        return;
    }
    sd.set_urandom(fd, true);
    if off.load(SeqCst) {
        sd.set_urandom(fd, false);
    }
}

const SIGCHLD: u32 = 17;
const CLD_EXITED: i32 = 1;
const CLD_DUMPED: i32 = 3;

/// This process's living children whose exit signal is not SIGCHLD: pid → signal (0: none).
#[derive(Default)]
pub struct CloneKids(Mutex<HashMap<i32, u32>>);

impl CloneKids {
    fn lock(&self) -> MutexGuard<'_, HashMap<i32, u32>> {
        lock(&self.0)
    }

    /// Records child `pid`'s exit signal (`exit_signal`, CSIGNAL's bits); SIGCHLD needs no
    /// record. Called before the host-signal watcher may report the child's death.
    pub fn record(&self, pid: i32, exit_signal: u64) {
        let sig = (exit_signal & 0xff) as u32;
        if sig != SIGCHLD {
            self.lock().insert(pid, sig);
        }
    }

    /// Child `pid`'s exit signal if it is not SIGCHLD.
    pub fn exit_signal(&self, pid: i32) -> Option<u32> {
        self.lock().get(&pid).copied()
    }

    pub(crate) fn reaped(&self, pid: i32) {
        self.lock().remove(&pid);
    }

    pub(crate) fn pids(&self) -> Vec<i32> {
        self.lock().keys().copied().collect()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The host-signal watcher's translation of a host SIGCHLD: `None` to forward it as
    /// it is; `Some(None)` to drop it (the death of a child whose exit signal is 0);
    /// `Some(Some(sig))` to forward it as `sig` (the death of a child with that exit
    /// signal). Stops and continues stay SIGCHLD, as Linux sends them.
    pub fn exit_report(&self, signo: u32, code: i32, pid: u32) -> Option<Option<u32>> {
        if signo != SIGCHLD || !(CLD_EXITED..=CLD_DUMPED).contains(&code) {
            return None;
        }
        let sig = self.exit_signal(pid as i32)?;
        Some((sig != 0).then_some(sig))
    }
}
