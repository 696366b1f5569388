//! Where a mapping without MAP_FIXED goes: a usable hint, else top-down below the stack
//! (Linux's default layout), else between brk and the mmap area.
//!
//! A process with thousands of threads has thousands of stacks, each a mapping placed
//! below the last: walking every mapping from the top at each placement would make
//! creating N threads cost N². So, like Linux's old `free_area_cache`, [`FreeCache`]
//! remembers where the last top-down placement went and the largest gap left above it;
//! a request that cannot fit there starts its walk at the cached address. The result is
//! the same as a walk from the top.

use super::{is_user_range, Mm, MMAP_BOTTOM, MMAP_TOP, NULL_GUARD_END, PAGE_SIZE};
use crate::errno::Errno;

/// No free gap of the mmap area above `top` is larger than `hole` bytes.
#[derive(Clone, Copy, Debug)]
pub(super) struct FreeCache {
    top: u64,
    hole: u64,
}

impl Default for FreeCache {
    fn default() -> Self {
        FreeCache {
            top: MMAP_TOP,
            hole: 0,
        }
    }
}

impl Mm {
    pub(super) fn is_free(&self, start: u64, end: u64) -> bool {
        if let Some((_, v)) = self.vmas.range(..start).next_back() {
            if v.end > start {
                return false;
            }
        }
        self.vmas.range(start..end).next().is_none()
    }

    /// Highest free, page-aligned gap of `len` bytes inside `[lo, hi)`, and the largest
    /// gap (smaller than `len`) passed above it.
    fn gap_top_down(&self, lo: u64, hi: u64, len: u64) -> (Option<u64>, u64) {
        let mut top = hi;
        let mut passed = 0;
        for (&s, v) in self.vmas.range(..hi).rev() {
            let e = v.end.min(hi);
            if e <= top {
                if top - e >= len {
                    return (Some(top - len), passed);
                }
                passed = passed.max(top - e);
            }
            top = top.min(s);
            if top < lo.saturating_add(len) {
                return (None, passed);
            }
        }
        ((top >= lo.saturating_add(len)).then(|| top - len), passed)
    }

    /// Chooses where a non-fixed mapping of `len` bytes goes (Linux: top-down below the
    /// stack; a usable hint is honoured).
    pub fn find_free(&self, len: u64, hint: u64) -> Result<u64, Errno> {
        if hint != 0 && hint.is_multiple_of(PAGE_SIZE) {
            if let Some(end) = hint.checked_add(len) {
                if is_user_range(hint, len) && self.is_free(hint, end) {
                    return Ok(hint);
                }
            }
        }
        let c = self.free_cache.get();
        if len > c.hole {
            // Nothing above the cached address fits.
            if let (Some(a), passed) = self.gap_top_down(MMAP_BOTTOM, c.top, len) {
                self.free_cache.set(FreeCache {
                    top: a,
                    hole: c.hole.max(passed),
                });
                return Ok(a);
            }
        }
        if let (Some(a), passed) = self.gap_top_down(MMAP_BOTTOM, MMAP_TOP, len) {
            self.free_cache.set(FreeCache {
                top: a,
                hole: passed,
            });
            return Ok(a);
        }
        self.gap_top_down(self.brk.max(NULL_GUARD_END), MMAP_BOTTOM, len)
            .0
            .ok_or(Errno::ENOMEM)
    }

    /// `[start, end)` has just been unmapped: the free gap around it may now be larger
    /// than the cache allows above its address.
    pub(super) fn freed(&self, start: u64, end: u64) {
        let mut c = self.free_cache.get();
        let lo = self
            .vmas
            .range(..start)
            .next_back()
            .map_or(MMAP_BOTTOM, |(_, v)| v.end.max(MMAP_BOTTOM));
        let hi = self
            .vmas
            .range(end..)
            .next()
            .map_or(MMAP_TOP, |(&s, _)| s.min(MMAP_TOP));
        if hi > c.top && hi > lo {
            if lo <= c.top {
                // The gap covers [top, hi): the cache may start above it instead (the
                // usual case: a thread's stack or a buffer just placed, unmapped again).
                c.top = hi;
            } else {
                c.hole = c.hole.max(hi - lo);
            }
            self.free_cache.set(c);
        }
    }
}
