//! Pages of a file mapping past the end of the file: Linux raises SIGBUS (BUS_ADRERR) for
//! any access to them, private or shared mapping alike, and maps them once the file has
//! grown to cover them.
//!
//! Here such pages get no page-table entry (so any access faults) while their mapping
//! says they are accessible; the fault handler asks [`Mm::missing_page`], which checks
//! the file's size at that moment. Only files mapped with mmap(2) follow the rule: the
//! loader's segments continue into bss past their file's end, and anonymous memory has
//! no end.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use super::{page_up, perm_of, Backing, Mm, Vma, VmaName, PAGE_SIZE};
use crate::errno::Errno;

/// Why an address had no page-table entry (a translation fault), by the mappings: Linux
/// tells these apart by VMA, not by the kind of MMU fault (`fault::refine_segv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingPage {
    /// In no mapping.
    Unmapped,
    /// In a mapping that may not be accessed there (PROT_NONE).
    NoAccess,
    /// Past the end of a mapped file.
    PastEof,
    /// Past the end of a mapped file when mapped, but the file has grown over it since:
    /// it is mapped now, run the access again.
    Mapped,
}

/// The file behind mapping `v` and its offset, if `v` follows the rule (see the module
/// doc).
fn mapped_file(v: &Vma) -> Option<(&Arc<OwnedFd>, u64)> {
    match (&v.backing, &v.name) {
        (Backing::File { fd, offset }, VmaName::None) => Some((fd, *offset)),
        _ => None,
    }
}

/// The guest address where file `fd`, mapped from `offset` at `start`, ends, rounded up
/// to a page: accesses from there on are past end of file. None if the file cannot be
/// asked.
fn file_end(start: u64, fd: &OwnedFd, offset: u64) -> Option<u64> {
    let st = nix::sys::stat::fstat(fd).ok()?;
    let size = st.st_size as u64;
    Some(match size.checked_sub(offset) {
        Some(n) if n > 0 => start.saturating_add(page_up(n)?),
        _ => start,
    })
}

/// Whether `[va, end)`, inside mapping `v` that starts at `start`, reaches past the end of
/// its file: a host access there would be the host's SIGBUS (the file may have been
/// truncated under a MAP_SHARED mapping), so a syscall's access is EFAULT, as Linux's
/// copy to or from user memory there is.
/// Private mappings keep their pages (zero-filled past the end), so only shared ones are
/// asked.
pub(super) fn reaches_past_eof(start: u64, v: &Vma, end: u64) -> bool {
    let Some((fd, offset)) = mapped_file(v).filter(|_| v.shared) else {
        return false;
    };
    file_end(start, fd, offset).is_some_and(|lim| end.min(v.end) > lim)
}

impl Mm {
    /// Removes the page-table entries of `[start, end)` that lie past the end of a mapped
    /// file (after the entries were set for the mappings' protections).
    pub(super) fn hide_past_eof(&mut self, start: u64, end: u64) -> Result<(), Errno> {
        let spans: Vec<(u64, u64)> = self
            .vmas
            .range(..end)
            .filter(|(_, v)| v.end > start && v.prot != 0)
            .filter_map(|(&s, v)| {
                let (fd, offset) = mapped_file(v)?;
                let a = file_end(s, fd, offset)?.max(start).max(s);
                let b = v.end.min(end);
                (a < b).then_some((a, b))
            })
            .collect();
        for (a, b) in spans {
            self.pt
                .set_range(&self.ram, a, b - a, None)
                .map_err(|_| Errno::ENOMEM)?;
        }
        Ok(())
    }

    /// Why `addr` had no page-table entry (see [`MissingPage`]). If it is past the end
    /// of a mapped file at mapping time but the file now covers it, the pages up to the
    /// new end (within the mapping) are mapped here.
    pub fn missing_page(&mut self, addr: u64) -> MissingPage {
        let Some((s, v)) = self.vma_at(addr) else {
            return MissingPage::Unmapped;
        };
        if v.prot == 0 {
            return MissingPage::NoAccess;
        }
        let Some((fd, offset)) = mapped_file(v) else {
            return MissingPage::NoAccess;
        };
        let Some(lim) = file_end(s, fd, offset) else {
            return MissingPage::NoAccess;
        };
        if addr >= lim {
            return MissingPage::PastEof;
        }
        let (fd, shared, prot, page) = (fd.clone(), v.shared, v.prot, addr & !(PAGE_SIZE - 1));
        let (end, off) = (lim.min(v.end), offset + (page - s));
        if shared {
            if self.overlay(page, end - page, &fd, off).is_err() {
                return MissingPage::PastEof;
            }
        } else {
            self.fill_from_file(page, end - page, &fd, off);
        }
        match self
            .pt
            .set_range(&self.ram, page, end - page, perm_of(prot))
        {
            Ok(_) => MissingPage::Mapped,
            Err(_) => MissingPage::PastEof,
        }
    }
}

impl Mm {
    /// After a truncation (ftruncate, truncate, open with O_TRUNC): the pages of shared
    /// file mappings now past the end of their file become guest RAM again with no
    /// page-table entry, so a guest access is SIGBUS through the fault path and a
    /// syscall's is EFAULT, never the host's SIGBUS in elfuse. True if any changed.
    pub fn hide_truncated(&mut self) -> bool {
        let spans: Vec<(u64, u64)> = self
            .vmas
            .iter()
            .filter(|(_, v)| v.shared && v.prot != 0)
            .filter_map(|(&s, v)| {
                let (fd, offset) = mapped_file(v)?;
                let a = file_end(s, fd, offset)?.max(s);
                (a < v.end).then_some((a, v.end))
            })
            .collect();
        for &(a, b) in &spans {
            self.ram.restore(a, b - a);
            let _ = self.pt.set_range(&self.ram, a, b - a, None);
        }
        if !spans.is_empty() {
            self.inval.merge(super::Invalidate {
                tlb: true,
                code: None,
            });
        }
        !spans.is_empty()
    }
}
