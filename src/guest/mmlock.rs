//! The process's address space behind its lock, with two facts published outside it so
//! that the per-syscall path takes no lock:
//! - a generation, bumped whenever the mappings may change (any mutable use of the
//!   guard), which keys each thread's cache of the user mappings it last checked;
//! - whether invalidations (TLB or translated code) wait to be taken.
//!
//! A cached check is as good as a locked one: the lock is dropped before the syscall
//! touches the memory either way, so a concurrent munmap races the same. What the
//! generation guarantees is that a check which starts after a mapping change returned
//! sees that change.

use std::cell::Cell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::sync::{Mutex, MutexGuard};

use super::mm::{Mm, UserSpan};
use crate::errno::Errno;

pub struct MmLock {
    mm: Mutex<Mm>,
    gen: AtomicU64,
    inval: AtomicBool,
}

/// The lock held. Mutable access bumps the generation first; dropping it republishes
/// whether invalidations are pending.
pub struct MmGuard<'a> {
    lock: &'a MmLock,
    g: MutexGuard<'a, Mm>,
    mutated: bool,
}

/// One of a thread's recent successful checks: the mapping `[start, end)` with `prot`,
/// valid while its lock's generation is `gen` (generations are unique across locks).
#[derive(Clone, Copy)]
struct Cached {
    gen: u64,
    span: UserSpan,
}

/// Mappings a thread recently checked, most recent first: a syscall usually touches
/// two or three (a path in the data segment, a buffer on the stack, one on the heap).
const RECENT: usize = 4;

thread_local! {
    static RECENT_SPANS: [Cell<Option<Cached>>; RECENT] = const { [const { Cell::new(None) }; RECENT] };
}

/// Generations are drawn from one counter for every `MmLock` of the host process, so a
/// cached entry matches only the lock, and the state of it, that it was taken from.
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

fn next_generation() -> u64 {
    GENERATIONS.fetch_add(1, SeqCst)
}

impl MmLock {
    pub fn new(mm: Mm) -> Self {
        MmLock {
            mm: Mutex::new(mm),
            gen: AtomicU64::new(next_generation()),
            inval: AtomicBool::new(false),
        }
    }

    pub fn lock(&self) -> MmGuard<'_> {
        // A panic on another vCPU thread must not wedge the rest: take the data anyway.
        let g = self.mm.lock().unwrap_or_else(|p| p.into_inner());
        MmGuard {
            lock: self,
            g,
            mutated: false,
        }
    }

    /// Whether invalidations wait in the address space (without taking the lock).
    pub fn inval_pending(&self) -> bool {
        self.inval.load(Acquire)
    }

    /// `Mm::check_user`, answered from this thread's recent checks while no mapping
    /// changed since (one atomic load), else under the lock.
    pub fn check_user(&self, va: u64, len: u64, write: bool) -> Result<(), Errno> {
        if len == 0 {
            return Ok(());
        }
        let gen = self.gen.load(Acquire);
        let hit = |c: &Cell<Option<Cached>>| {
            c.get()
                .is_some_and(|c| c.gen == gen && c.span.allows(va, len, write))
        };
        if RECENT_SPANS.with(|r| r.iter().any(hit)) {
            return Ok(());
        }
        let g = self.lock();
        // Read under the lock: a change after this bumps it again.
        let gen = self.gen.load(Relaxed);
        let span = g.check_user_span(va, len, write)?;
        drop(g);
        if let Some(span) = span {
            RECENT_SPANS.with(|r| {
                let mut c = Some(Cached { gen, span });
                for slot in r {
                    c = slot.replace(c);
                }
            });
        }
        Ok(())
    }
}

impl Deref for MmGuard<'_> {
    type Target = Mm;
    fn deref(&self) -> &Mm {
        &self.g
    }
}

impl DerefMut for MmGuard<'_> {
    fn deref_mut(&mut self) -> &mut Mm {
        if !self.mutated {
            self.mutated = true;
            self.lock.gen.store(next_generation(), SeqCst);
        }
        &mut self.g
    }
}

impl Drop for MmGuard<'_> {
    fn drop(&mut self) {
        if self.mutated {
            self.lock.inval.store(self.g.has_invalidate(), Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::layout::{MMAP_TOP, PAGE_SIZE, RAM_SIZE};
    use crate::guest::mm::{Backing, VmaName, PROT_READ, PROT_WRITE};
    use crate::guest::ram::GuestRam;
    use std::sync::Arc;

    #[test]
    fn cached_checks_follow_every_change() {
        let lock = MmLock::new(Mm::new(Arc::new(GuestRam::new(RAM_SIZE).unwrap())));
        let a = lock.lock().find_free(2 * PAGE_SIZE, 0).unwrap();
        assert!(a + 2 * PAGE_SIZE <= MMAP_TOP);
        let rw = PROT_READ | PROT_WRITE;
        lock.lock()
            .map_fixed(a, 2 * PAGE_SIZE, rw, false, Backing::Anon, VmaName::None)
            .unwrap();
        // Twice: the second answer comes from the cache.
        for _ in 0..2 {
            lock.check_user(a, 2 * PAGE_SIZE, true).unwrap();
        }
        lock.lock().protect(a, PAGE_SIZE, PROT_READ).unwrap();
        assert_eq!(lock.check_user(a, 8, true), Err(Errno::EFAULT));
        lock.check_user(a, 8, false).unwrap();
        lock.check_user(a + PAGE_SIZE, 8, true).unwrap();
        lock.lock().unmap(a + PAGE_SIZE, PAGE_SIZE).unwrap();
        assert_eq!(lock.check_user(a + PAGE_SIZE, 8, false), Err(Errno::EFAULT));
        assert!(lock.inval_pending());
        let _ = lock.lock().take_invalidate();
        assert!(!lock.inval_pending());
    }
}
