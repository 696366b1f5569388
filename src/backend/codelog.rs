//! Translated-code hints from fork children to their parent.
//!
//! A natively forked child starts with its parent's translated code, but the code only a
//! child runs (fork's child branch, `_exit`) was never translated by the parent, so every
//! child translates it again, paying for the translation and for the copy-on-write
//! faults it causes. A child reports the blocks it translates into its parent's
//! `CodeLog`; at its next fork the parent translates them ahead ([`Vcpu::pretranslate`]),
//! and the children after that find them ready.
//!
//! The log is one MAP_SHARED anonymous page that children inherit, holding a
//! [`SlotRing`] of `(pc, key)` hints: lossy on purpose (a child that finds the ring full
//! drops its hint) and neither side ever waits for the other. A hint is only a hint: the
//! backend re-checks it (the key must be the one EL0 code runs with now, the pc must be
//! executable at EL0), so a stale or foreign entry costs at most a useless translation.
//!
//! [`Vcpu::pretranslate`]: super::Vcpu::pretranslate

use crate::slotring::SlotRing;

/// Hints the log holds at most (the ring fills one 4 KiB page).
pub const SLOTS: usize = 127;
type Page = SlotRing<SLOTS>;
const _: () = assert!(std::mem::size_of::<Page>() <= 4096);

/// A hint ring shared with every process forked after its creation.
pub struct CodeLog {
    page: *mut Page,
}

// SAFETY: the page is only accessed through atomics; it lives as long as the CodeLog.
unsafe impl Send for CodeLog {}
// SAFETY: `&CodeLog` only reaches the page through the SlotRing's atomics; the page is a
// MAP_SHARED mapping owned by the CodeLog and unmapped only on drop.
unsafe impl Sync for CodeLog {}

impl CodeLog {
    /// A new, empty log in a shared anonymous page.
    pub fn new() -> std::io::Result<CodeLog> {
        // SAFETY: a fresh anonymous mapping; zero-filled, i.e. an empty ring.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                std::mem::size_of::<Page>(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(CodeLog { page: p.cast() })
    }

    fn page(&self) -> &Page {
        // SAFETY: mapped for our whole life (see `new` and `Drop`).
        unsafe { &*self.page }
    }

    /// Records a hint (from a child, as it translates). Dropped if the ring is full.
    pub fn push(&self, pc: u64, key: u32) {
        self.page().push([pc, key.into(), 0]);
    }

    /// Takes every hint recorded so far, freeing its slot.
    pub fn drain(&self, mut f: impl FnMut(u64, u32)) {
        self.page().drain(|[pc, key, _]| f(pc, key as u32));
    }
}

impl Drop for CodeLog {
    fn drop(&mut self) {
        // SAFETY: our own mapping; no reference into it outlives `self`.
        unsafe { libc::munmap(self.page.cast(), std::mem::size_of::<Page>()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drained(l: &CodeLog) -> Vec<(u64, u32)> {
        let mut v = Vec::new();
        l.drain(|pc, k| v.push((pc, k)));
        v
    }

    #[test]
    fn hints_are_taken_once() {
        let l = CodeLog::new().unwrap();
        l.push(0x1000, 7);
        l.push(0x2000, 8);
        assert_eq!(drained(&l), [(0x1000, 7), (0x2000, 8)]);
        assert_eq!(drained(&l), []);
    }

    #[test]
    fn a_forked_child_reports_to_its_parent() {
        let l = CodeLog::new().unwrap();
        // SAFETY: the child only pushes (atomics on the shared page) and _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            l.push(0xdead_0000, 3);
            // SAFETY: _exit ends the forked test child without running the parent's
            // destructors or atexit handlers.
            unsafe { libc::_exit(0) };
        }
        let mut st = 0;
        // SAFETY: waits for the child just forked, writing its status into the local `st`.
        assert_eq!(unsafe { libc::waitpid(pid, &mut st, 0) }, pid);
        assert_eq!(drained(&l), [(0xdead_0000, 3)]);
    }
}
