//! The PI-futex waiter table of a process (`Threads::futex_pi`): who waits on which guest
//! word, for the lock or for a requeue. State only; the protocol is `syscall::futex_pi`.

use std::collections::HashMap;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex, MutexGuard};

pub(crate) enum Kind {
    /// In LOCK_PI (or requeued there): sleeps on the lock word.
    Lock,
    /// In WAIT_REQUEUE_PI on the key's word, for the PI lock at `target`.
    Requeue { target: u64, state: Arc<AtomicU32> },
}

pub(crate) struct Waiter {
    pub(crate) tid: u32,
    pub(crate) private: bool,
    pub(crate) kind: Kind,
}

/// The waiters of this process, by guest address of the word they wait on (one per
/// process, in `Threads`).
#[derive(Default)]
pub struct PiTable {
    q: Mutex<HashMap<u64, Vec<Waiter>>>,
}

pub(crate) type Queues = HashMap<u64, Vec<Waiter>>;

impl PiTable {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Queues> {
        self.q.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) fn remove(q: &mut Queues, va: u64, tid: u32) -> bool {
    let Some(v) = q.get_mut(&va) else {
        return false;
    };
    let before = v.len();
    v.retain(|w| w.tid != tid);
    let found = v.len() != before;
    if v.is_empty() {
        q.remove(&va);
    }
    found
}

pub(crate) fn first_locker(q: &Queues, va: u64) -> Option<(u32, bool)> {
    q.get(&va)?
        .iter()
        .find(|w| matches!(w.kind, Kind::Lock))
        .map(|w| (w.tid, w.private))
}
