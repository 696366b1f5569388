//! SysV shared memory attachments (shmat) in the guest's address space.
//!
//! A segment is the host's own SysV segment (`syscall::ipc::shm`): other processes,
//! guest or not, see it by key or id, and the host's `shm_nattch`, `shm_lpid` and times
//! follow the guest's attachments, because the guest's mapping *is* a host attachment:
//! the segment's pages are mapped over guest RAM's host pages (as a MAP_SHARED file is,
//! `GuestRam::overlay_file`), so the engine's cached host pointers stay valid. A host
//! fork() keeps it shared; the spawn path and the native child map it again from the
//! VMA (`Mm::from_parts`), which names the segment's id.
//!
//! Every `shmat` is one [`ShmSeg`] (Linux makes one `struct file` per attach): the
//! fragments an mprotect or munmap leaves of it share it, which is how shmdt finds
//! them (Linux's `ksys_shmdt`).

use std::sync::Arc;

use super::{page_up, Backing, Mm, PAGE_SIZE};
use crate::errno::Errno;

/// One attachment of a host SysV segment.
#[derive(Debug)]
pub struct ShmSeg {
    /// The host segment id (guest ids are the host's).
    pub id: i32,
    /// The segment's size in bytes when attached.
    pub size: u64,
    /// Attached without SHM_RDONLY: the mapping may be made writable.
    pub writable: bool,
}

impl ShmSeg {
    /// The attachment's length in the address space (whole pages).
    pub fn map_len(&self) -> u64 {
        page_up(self.size).unwrap_or(self.size)
    }
}

/// `[start, end)` of one mapping.
type Span = (u64, u64);

impl Mm {
    /// Shows what backs a shared mapping at `[start, start+len)` over guest RAM: a
    /// file's pages or a segment's (anonymous memory needs nothing).
    pub(super) fn overlay_backing(
        &self,
        start: u64,
        len: u64,
        backing: &Backing,
    ) -> Result<(), Errno> {
        match backing {
            Backing::File { fd, offset } => self.overlay(start, len, fd, *offset),
            Backing::Shm { seg, offset } => self.overlay_shm(start, len, seg, *offset),
            Backing::Anon => Ok(()),
        }
    }

    /// Maps the segment's pages from `offset` at `[start, start+len)` (only those inside
    /// the segment: past its end, guest RAM stays).
    pub(super) fn overlay_shm(
        &self,
        start: u64,
        len: u64,
        seg: &ShmSeg,
        offset: u64,
    ) -> Result<(), Errno> {
        let Some(n) = seg.map_len().checked_sub(offset).filter(|&n| n > 0) else {
            return Ok(());
        };
        self.ram
            .overlay_shm(
                start,
                n.min(len),
                seg.id,
                offset,
                seg.map_len(),
                seg.writable,
            )
            .map_err(|e| Errno::from_io(&e))
    }

    /// shmdt(2), as Linux's `ksys_shmdt`: the first attachment fragment at or after
    /// `addr` that starts at its own offset from `addr` is unmapped, then every later
    /// fragment of the same attachment that does the same and ends within the
    /// segment's size from `addr`. EINVAL when there is none.
    pub fn shm_detach(&mut self, addr: u64) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let at_own_offset = |s: u64, b: &Backing| match b {
            Backing::Shm { seg, offset } => {
                (s.wrapping_sub(addr) / PAGE_SIZE == offset / PAGE_SIZE).then(|| seg.clone())
            }
            _ => None,
        };
        let first_key = self
            .vmas
            .range(..=addr)
            .next_back()
            .filter(|(_, v)| v.end > addr)
            .map(|(&s, _)| s)
            .unwrap_or(addr);
        // The attachment and the spans of its fragments to unmap.
        let mut found: Option<(Arc<ShmSeg>, Vec<Span>)> = None;
        for (&s, v) in self.vmas.range(first_key..) {
            match &mut found {
                None => {
                    if let Some(seg) = at_own_offset(s, &v.backing) {
                        found = Some((seg, vec![(s, v.end)]));
                    }
                }
                Some((seg, spans)) => {
                    if v.end.wrapping_sub(addr) > seg.map_len() {
                        break;
                    }
                    if at_own_offset(s, &v.backing).is_some_and(|g| Arc::ptr_eq(&g, seg)) {
                        spans.push((s, v.end));
                    }
                }
            }
        }
        let (_, spans) = found.ok_or(Errno::EINVAL)?;
        for (s, e) in spans {
            self.release(s, e);
        }
        Ok(())
    }
}
