//! Pages of a file mapping past the end of the file: Linux raises SIGBUS (BUS_ADRERR) for
//! any access to them, private or shared mapping alike, and maps them once the file has
//! grown to cover them.
//!
//! Here such pages get no page-table entry (so any access faults) while their mapping
//! says they are accessible; the fault handler asks [`Mm::file_fault`], which checks
//! the file's size at that moment. Only files mapped with mmap(2) follow the rule: the
//! loader's segments continue into bss past their file's end, and anonymous memory has
//! no end.

use std::os::fd::AsRawFd;

use super::{page_up, perm_of, Backing, Mm, Vma, VmaName, PAGE_SIZE};
use crate::errno::Errno;

/// What a fault on a mapped page with no page-table entry was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFault {
    /// Not a file page (PROT_NONE, or not an mmap'd file): SIGSEGV as before.
    NotFile,
    /// Past the end of the file: SIGBUS.
    PastEnd,
    /// The file has grown over the page since: it is mapped now, run the access again.
    Mapped,
}

/// The guest address where the file behind mapping `v` (at `start`) ends, rounded up to
/// a page: accesses from there on are past end of file. None where the rule does not
/// apply (see the module doc), or if the file cannot be asked.
fn file_end(start: u64, v: &Vma) -> Option<u64> {
    let (Backing::File { fd, offset }, VmaName::None) = (&v.backing, &v.name) else {
        return None;
    };
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return None;
    }
    let size = st.st_size as u64;
    Some(match size.checked_sub(*offset) {
        Some(n) if n > 0 => start.saturating_add(page_up(n)?),
        _ => start,
    })
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
                let a = file_end(s, v)?.max(start).max(s);
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

    /// A fault at `addr`, inside a mapping, on a page with no page-table entry: past the
    /// end of a mapped file (SIGBUS), or no file page at all; or the file now covers it,
    /// and the pages up to the new end (within the mapping) are mapped.
    pub fn file_fault(&mut self, addr: u64) -> FileFault {
        let Some((&s, v)) = self.vmas.range(..=addr).next_back() else {
            return FileFault::NotFile;
        };
        if v.end <= addr || v.prot == 0 {
            return FileFault::NotFile;
        }
        let Some(lim) = file_end(s, v) else {
            return FileFault::NotFile;
        };
        if addr >= lim {
            return FileFault::PastEnd;
        }
        let (v, page) = (v.clone(), addr & !(PAGE_SIZE - 1));
        let end = lim.min(v.end);
        let Backing::File { fd, offset } = &v.backing else {
            return FileFault::NotFile;
        };
        let off = offset + (page - s);
        if v.shared {
            if self.overlay(page, end - page, fd, off).is_err() {
                return FileFault::PastEnd;
            }
        } else {
            self.fill_from_file(page, end - page, fd, off);
        }
        match self
            .pt
            .set_range(&self.ram, page, end - page, perm_of(v.prot))
        {
            Ok(_) => FileFault::Mapped,
            Err(_) => FileFault::PastEnd,
        }
    }
}
