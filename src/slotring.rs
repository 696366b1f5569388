//! A lossy ring of small records that producers fill without ever waiting: safe in a
//! signal handler (atomics only) and across processes (it may live in a MAP_SHARED page;
//! all-zero memory is an empty ring).
//!
//! A producer claims the next slot and drops its record if that slot is still taken (the
//! ring is full); the consumer takes every ready record, in slot order, freeing each
//! slot. Users: the translated-code hints of fork children (`backend::codelog`) and
//! wake signals from other processes (`wakesig`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// A record: three words.
pub type Record = [u64; 3];

const FREE: u32 = 0;
const WRITING: u32 = 1;
const READY: u32 = 2;

#[repr(C)]
struct Slot {
    state: AtomicU32,
    words: [AtomicU64; 3],
}

#[repr(C)]
pub struct SlotRing<const N: usize> {
    next: AtomicU32,
    slots: [Slot; N],
}

impl<const N: usize> SlotRing<N> {
    #[allow(clippy::declare_interior_mutable_const)]
    const EMPTY: Slot = Slot {
        state: AtomicU32::new(FREE),
        words: [const { AtomicU64::new(0) }; 3],
    };

    pub const fn new() -> Self {
        SlotRing {
            next: AtomicU32::new(0),
            slots: [Self::EMPTY; N],
        }
    }

    /// Stores `r` in the next slot; false (and `r` dropped) if that slot is taken.
    pub fn push(&self, r: Record) -> bool {
        let i = self.next.fetch_add(1, Ordering::Relaxed) as usize % N;
        let s = &self.slots[i];
        if s.state
            .compare_exchange(FREE, WRITING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        for (w, v) in s.words.iter().zip(r) {
            w.store(v, Ordering::Relaxed);
        }
        s.state.store(READY, Ordering::Release);
        true
    }

    /// Takes every ready record, in slot order.
    pub fn drain(&self, mut f: impl FnMut(Record)) {
        for s in &self.slots {
            if s.state.load(Ordering::Acquire) != READY {
                continue;
            }
            let r = s.words.each_ref().map(|w| w.load(Ordering::Relaxed));
            s.state.store(FREE, Ordering::Release);
            f(r);
        }
    }
}

impl<const N: usize> Default for SlotRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drained<const N: usize>(r: &SlotRing<N>) -> Vec<Record> {
        let mut v = Vec::new();
        r.drain(|x| v.push(x));
        v
    }

    #[test]
    fn records_are_taken_once() {
        let r = SlotRing::<4>::new();
        assert!(r.push([1, 2, 3]));
        assert!(r.push([4, 5, 6]));
        assert_eq!(drained(&r), [[1, 2, 3], [4, 5, 6]]);
        assert_eq!(drained(&r), Vec::<Record>::new());
    }

    #[test]
    fn a_full_ring_drops_records_and_frees_slots_when_drained() {
        let r = SlotRing::<8>::new();
        for i in 0..10 {
            assert_eq!(r.push([i, 0, 0]), i < 8);
        }
        let got = drained(&r);
        assert_eq!(got.len(), 8);
        assert!(got.iter().all(|x| x[0] < 8));
        assert!(r.push([42, 0, 0]));
        assert_eq!(drained(&r), [[42, 0, 0]]);
    }

    #[test]
    fn zeroed_memory_is_an_empty_ring() {
        // SAFETY: all fields are atomics, for which zero is a valid value.
        let r: SlotRing<4> = unsafe { std::mem::zeroed() };
        assert_eq!(drained(&r), Vec::<Record>::new());
        assert!(r.push([7, 8, 9]));
        assert_eq!(drained(&r), [[7, 8, 9]]);
    }
}
