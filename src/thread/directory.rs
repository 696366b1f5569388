//! The process's thread directory: guest tid → the thread's handle (`ThreadShared`), the
//! one place a thread's handle is kept. The registry (`Threads`) is its only writer, under
//! its own lock; the signal actor and everything else only read it (a read lock held for a
//! lookup or a copy, never across a message or a host call).

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::shared::ThreadShared;

#[derive(Default)]
pub struct Directory {
    map: RwLock<HashMap<i32, Arc<ThreadShared>>>,
}

impl Directory {
    fn read(&self) -> RwLockReadGuard<'_, HashMap<i32, Arc<ThreadShared>>> {
        self.map.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn write(&self) -> RwLockWriteGuard<'_, HashMap<i32, Arc<ThreadShared>>> {
        self.map.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The handle of thread `tid`, if it is registered.
    pub fn get(&self, tid: i32) -> Option<Arc<ThreadShared>> {
        self.read().get(&tid).cloned()
    }

    /// The handles of `tids` that are registered.
    pub fn get_all(&self, tids: &[i32]) -> Vec<Arc<ThreadShared>> {
        let m = self.read();
        tids.iter().filter_map(|t| m.get(t).cloned()).collect()
    }

    /// Every registered thread but `me`.
    pub fn others(&self, me: i32) -> Vec<Arc<ThreadShared>> {
        self.read()
            .values()
            .filter(|t| t.tid() != me)
            .cloned()
            .collect()
    }

    /// Every registered thread.
    pub fn all(&self) -> Vec<Arc<ThreadShared>> {
        self.read().values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// The registered tids, in order.
    pub fn tids(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self.read().keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// The guest tid of the thread running on host thread `host`.
    pub fn tid_of_host(&self, host: i32) -> Option<i32> {
        self.read()
            .values()
            .find(|t| t.host_tid() == host)
            .map(|t| t.tid())
    }
}
