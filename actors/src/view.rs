//! The fd table's published view: what read-mostly paths (read, write, poll, F_GETFD...)
//! look guest fds up in, without messaging the fd-table actor.
//!
//! The view *is* the fd-table actor's slot storage, not a copy of it: the actor's
//! [`FdTable`](crate::fdtable::FdTable) writes its slots here ([`Published`]), so a
//! mutation is one store into one slot. The slots form a two-level array indexed by fd:
//! `CHUNKS` lazily allocated chunks (`OnceLock`, so nothing moves or locks) of `CHUNK`
//! words. The first chunk is held directly and the directory of the others is itself
//! allocated at the first fd past it, so a new view (every fork child has one) writes
//! one small struct, not a directory of `CHUNKS` entries. A word is `Arc::into_raw` of the description (the table's own
//! reference) with two tag bits: `CLOEXEC`, and `LOCK`, which a reader holds for the few
//! instructions it takes to add its own reference. The actor is the only writer:
//! - a reader ([`View::file`]): one CAS setting `LOCK`, the `Arc` increment, one plain
//!   release store clearing `LOCK`;
//! - the writer ([`Published`]): one CAS from the unlocked old word to the new one, so it
//!   never takes away a reference a reader is in the middle of cloning. It reads its own
//!   slots without `LOCK`: nobody else can drop the slot's reference.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::fdtable::{OpenFile, SlotStore, NR_OPEN};

const CHUNK: usize = 1024;
const CHUNKS: usize = NR_OPEN as usize / CHUNK;

const LOCK: usize = 1;
const CLOEXEC: usize = 2;
const TAGS: usize = LOCK | CLOEXEC;
/// Waiting for a slot's LOCK: a holder keeps it for a few instructions, so spin; but a
/// holder the host descheduled keeps it for a time slice, so yield after a while.
fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

// The tag bits live in the low bits of an `Arc<OpenFile>` data pointer.
const _: () = assert!(std::mem::align_of::<OpenFile>() > TAGS);

type Chunk = OnceLock<Box<[AtomicUsize]>>;

#[derive(Default)]
pub struct View {
    /// Slots 0..CHUNK.
    first: Chunk,
    /// Chunks 1..CHUNKS.
    more: OnceLock<Box<[Chunk]>>,
}

fn new_chunk() -> Box<[AtomicUsize]> {
    (0..CHUNK).map(|_| AtomicUsize::new(0)).collect()
}

fn file_ptr(w: usize) -> *const OpenFile {
    (w & !TAGS) as *const OpenFile
}

fn occupied(w: usize) -> bool {
    w & !TAGS != 0
}

impl View {
    /// The chunk slot `i` is in, if `i < NR_OPEN` and that chunk's directory exists.
    fn chunk(&self, i: usize) -> Option<&Chunk> {
        match i / CHUNK {
            0 => Some(&self.first),
            n => self.more.get()?.get(n - 1),
        }
    }

    fn chunks(&self) -> impl Iterator<Item = &Chunk> {
        std::iter::once(&self.first).chain(self.more.get().into_iter().flat_map(|m| m.iter()))
    }

    fn slot(&self, i: usize) -> Option<&AtomicUsize> {
        self.chunk(i)?.get().map(|c| &c[i % CHUNK])
    }

    fn slot_fd(&self, fd: i32) -> Option<&AtomicUsize> {
        self.slot(usize::try_from(fd).ok()?)
    }

    /// The description behind `fd`, with a reference of the caller's own.
    pub fn file(&self, fd: i32) -> Option<Arc<OpenFile>> {
        let (s, w) = self.lock_slot(fd)?;
        // SAFETY: while this thread holds LOCK the writer cannot swap the word out, so
        // the slot's reference keeps the description alive for the increment.
        let f = unsafe {
            Arc::increment_strong_count(file_ptr(w));
            Arc::from_raw(file_ptr(w))
        };
        s.store(w, Ordering::Release);
        Some(f)
    }

    /// Sets LOCK on `fd`'s occupied slot (spinning while another thread holds it) and
    /// returns the slot with its unlocked word, to be stored back to unlock.
    fn lock_slot(&self, fd: i32) -> Option<(&AtomicUsize, usize)> {
        let s = self.slot_fd(fd)?;
        let mut w = s.load(Ordering::Relaxed);
        let mut spins = 0;
        loop {
            if !occupied(w) {
                return None;
            }
            if w & LOCK != 0 {
                backoff(&mut spins);
                w = s.load(Ordering::Relaxed);
                continue;
            }
            match s.compare_exchange_weak(w, w | LOCK, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Some((s, w)),
                Err(now) => w = now,
            }
        }
    }

    pub fn cloexec(&self, fd: i32) -> Option<bool> {
        let w = self.slot_fd(fd)?.load(Ordering::Acquire);
        occupied(w).then_some(w & CLOEXEC != 0)
    }
}

impl Drop for View {
    fn drop(&mut self) {
        for c in self.chunks().filter_map(OnceLock::get) {
            for s in c.iter() {
                let w = s.load(Ordering::Acquire);
                if occupied(w) {
                    // SAFETY: the slot's own reference, released once.
                    drop(unsafe { Arc::from_raw(file_ptr(w)) });
                }
            }
        }
    }
}

/// The writing side of a [`View`]: the fd-table actor's slot storage. Only one exists
/// per view (it is not `Clone`), and its `&mut self` methods are the only writers.
pub struct Published {
    view: Arc<View>,
    /// One past the highest slot ever written.
    len: usize,
}

impl Published {
    pub fn new(view: Arc<View>) -> Self {
        Published { view, len: 0 }
    }

    #[inline]
    fn word(&self, i: usize) -> usize {
        self.view.slot(i).map_or(0, |s| s.load(Ordering::Relaxed))
    }

    /// Replaces the word of slot `i` by `new` once no reader holds it; the old word.
    #[inline]
    fn swap(&mut self, i: usize, new: usize) -> usize {
        // Beyond NR_OPEN (a guest's close of a huge fd): nothing there.
        if i >= CHUNKS * CHUNK {
            return 0;
        }
        let dir = match self.view.chunk(i) {
            Some(d) => d,
            None if !occupied(new) => return 0,
            None => {
                let more = self
                    .view
                    .more
                    .get_or_init(|| (1..CHUNKS).map(|_| OnceLock::new()).collect());
                &more[i / CHUNK - 1]
            }
        };
        let s = match dir.get() {
            Some(c) => &c[i % CHUNK],
            None if !occupied(new) => return 0,
            None => &dir.get_or_init(new_chunk)[i % CHUNK],
        };
        let mut w = s.load(Ordering::Relaxed);
        let mut spins = 0;
        loop {
            if w & LOCK != 0 {
                backoff(&mut spins);
                w = s.load(Ordering::Relaxed);
                continue;
            }
            // Acquire: a reader's increment happens before the caller drops the old one.
            match s.compare_exchange_weak(w, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return w,
                Err(now) => w = now,
            }
        }
    }

    #[inline]
    fn take_word(w: usize) -> Option<Arc<OpenFile>> {
        // SAFETY: the slot's own reference, moved out of the slot by the swap.
        occupied(w).then(|| unsafe { Arc::from_raw(file_ptr(w)) })
    }
}

impl std::fmt::Debug for Published {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Published {{ len: {} }}", self.len)
    }
}

impl SlotStore for Published {
    fn end(&self) -> usize {
        self.len
    }

    #[inline]
    fn occupied(&self, i: usize) -> bool {
        occupied(self.word(i))
    }

    #[inline]
    fn file(&self, i: usize) -> Option<Arc<OpenFile>> {
        let w = self.word(i);
        // SAFETY: only this writer removes the slot's reference, so it is alive.
        occupied(w).then(|| unsafe {
            Arc::increment_strong_count(file_ptr(w));
            Arc::from_raw(file_ptr(w))
        })
    }

    fn cloexec(&self, i: usize) -> Option<bool> {
        let w = self.word(i);
        occupied(w).then_some(w & CLOEXEC != 0)
    }

    #[inline]
    fn put(&mut self, i: usize, file: Arc<OpenFile>, cloexec: bool) -> Option<Arc<OpenFile>> {
        let new = Arc::into_raw(file) as usize | if cloexec { CLOEXEC } else { 0 };
        self.len = self.len.max(i + 1);
        Self::take_word(self.swap(i, new))
    }

    #[inline]
    fn take(&mut self, i: usize) -> Option<Arc<OpenFile>> {
        Self::take_word(self.swap(i, 0))
    }

    fn set_cloexec(&mut self, i: usize, on: bool) -> bool {
        let w = self.word(i);
        if !occupied(w) {
            return false;
        }
        let new = (w & !TAGS) | if on { CLOEXEC } else { 0 };
        if new != w & !LOCK {
            self.swap(i, new);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdtable::SlotStore;

    fn file() -> Arc<OpenFile> {
        let f = std::fs::File::open("/dev/null").unwrap();
        OpenFile::host_flagged(f.into(), None, false)
    }

    /// Slots in the first chunk, past it (the directory appears then) and at the last
    /// fd are published, read, replaced and released; nothing past NR_OPEN exists.
    #[test]
    fn slots_across_chunks() {
        let view = Arc::new(View::default());
        let mut p = Published::new(view.clone());
        let f = file();
        assert!(view.more.get().is_none());
        for fd in [3, CHUNK - 1, CHUNK, 5 * CHUNK + 7, CHUNKS * CHUNK - 1] {
            assert!(p.put(fd, f.clone(), fd == 3).is_none());
            assert!(Arc::ptr_eq(&view.file(fd as i32).unwrap(), &f));
            assert_eq!(view.cloexec(fd as i32), Some(fd == 3));
        }
        assert!(view.more.get().is_some());
        assert_eq!(Arc::strong_count(&f), 6);
        assert!(view.file(CHUNK as i32 + 1).is_none());
        assert!(view.file((CHUNKS * CHUNK) as i32).is_none());
        assert!(p.take(CHUNK).is_some());
        assert!(view.file(CHUNK as i32).is_none());
        assert_eq!(Arc::strong_count(&f), 5);
        drop(p);
        drop(view);
        assert_eq!(Arc::strong_count(&f), 1);
    }

    /// Taking a slot in a chunk that was never allocated allocates nothing.
    #[test]
    fn empty_chunks_stay_unallocated() {
        let view = Arc::new(View::default());
        let mut p = Published::new(view.clone());
        assert!(p.take(3 * CHUNK).is_none());
        assert!(!p.set_cloexec(3 * CHUNK, true));
        assert!(view.more.get().is_none() && view.first.get().is_none());
    }
}
