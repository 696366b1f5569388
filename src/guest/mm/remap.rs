//! madvise(2), refilling private file pages, and mremap(2).

use std::os::fd::{AsRawFd, OwnedFd};

use super::{is_user_range, page_up, Backing, Mm, Vma, PAGE_SIZE};
use crate::errno::Errno;

impl Mm {
    /// madvise(2): MADV_DONTNEED/MADV_FREE drop private anonymous pages (they read back as
    /// zeroes) and refetch private file pages; advisory values are accepted.
    pub fn advise(&mut self, start: u64, len: u64, advice: i32) -> Result<(), Errno> {
        const MADV_DONTNEED: i32 = 4;
        const MADV_FREE: i32 = 8;
        const MADV_REMOVE: i32 = 9;
        if !start.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let end = page_up(start.checked_add(len).ok_or(Errno::EINVAL)?).ok_or(Errno::EINVAL)?;
        if !is_user_range(start, (end - start).max(1)) {
            return Err(Errno::EINVAL);
        }
        match advice {
            0..=3 | 10..=21 | 100..=101 => {
                if self.covered(start, end) {
                    Ok(())
                } else {
                    Err(Errno::ENOMEM)
                }
            }
            MADV_DONTNEED | MADV_FREE | MADV_REMOVE => {
                if !self.covered(start, end) {
                    return Err(Errno::ENOMEM);
                }
                let parts: Vec<(u64, Vma)> = self
                    .vmas
                    .range(..end)
                    .filter(|(_, v)| v.end > start)
                    .map(|(s, v)| (*s, v.clone()))
                    .collect();
                for (s, v) in parts {
                    if v.shared {
                        continue;
                    }
                    let a = s.max(start);
                    let b = v.end.min(end);
                    self.ram.discard(a, b - a);
                    if let Backing::File { fd, offset } = &v.backing {
                        self.fill_from_file(a, b - a, fd, offset + (a - s));
                    }
                }
                Ok(())
            }
            _ => Err(Errno::EINVAL),
        }
    }

    /// Copies file bytes into guest memory (what a page fault on a file mapping would
    /// read); bytes past end of file stay zero.
    pub fn fill_from_file(&self, addr: u64, len: u64, fd: &OwnedFd, offset: u64) {
        let mut done = 0u64;
        while done < len {
            let p = self.ram.ptr(addr + done, (len - done) as usize);
            // SAFETY: `p` is `len - done` bytes inside the RAM mapping (`ram.ptr` checked
            // it); pread fills guest RAM through this raw pointer, no reference to it exists.
            let n = unsafe {
                libc::pread(
                    fd.as_raw_fd(),
                    p.cast(),
                    (len - done) as usize,
                    (offset + done) as libc::off_t,
                )
            };
            if n <= 0 {
                break;
            }
            done += n as u64;
        }
    }

    /// mremap(2) without MREMAP_DONTUNMAP.
    pub fn remap(
        &mut self,
        old: u64,
        old_len: u64,
        new_len: u64,
        may_move: bool,
        fixed: Option<u64>,
    ) -> Result<u64, Errno> {
        if !old.is_multiple_of(PAGE_SIZE) || new_len == 0 {
            return Err(Errno::EINVAL);
        }
        let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
        let new_len = page_up(new_len).ok_or(Errno::EINVAL)?;
        let old_end = old.checked_add(old_len).ok_or(Errno::EFAULT)?;
        if !is_user_range(old, old_len.max(PAGE_SIZE)) {
            return Err(Errno::EFAULT);
        }
        // The old range must lie in one mapping.
        let (vs, v) = self.vma_at(old).ok_or(Errno::EFAULT)?;
        if old_len > 0 && v.end < old_end {
            return Err(Errno::EFAULT);
        }
        let v = v.clone();
        if let Some(dst) = fixed {
            if dst % PAGE_SIZE != 0 || !is_user_range(dst, new_len) {
                return Err(Errno::EINVAL);
            }
            if dst < old_end && old < dst + new_len {
                return Err(Errno::EINVAL);
            }
            return self.move_mapping(vs, &v, old, old_len, dst, new_len);
        }
        if new_len <= old_len {
            if new_len < old_len {
                self.release(old + new_len, old_end);
            }
            return Ok(old);
        }
        // Grow in place if the pages after it are free.
        let grow_end = old + new_len;
        if old_end == v.end && is_user_range(old, new_len) && self.is_free(old_end, grow_end) {
            let ext = new_len - old_len;
            match &v.backing {
                Backing::File { fd, offset } if v.shared => {
                    self.overlay(old_end, ext, fd, offset + (old_end - vs))?
                }
                Backing::File { fd, offset } => {
                    self.fill_from_file(old_end, ext, fd, offset + (old_end - vs))
                }
                Backing::Shm { seg, offset } => {
                    self.overlay_shm(old_end, ext, seg, offset + (old_end - vs))?
                }
                Backing::Anon => {}
            }
            self.vmas.get_mut(&vs).unwrap().end = grow_end;
            self.apply_ptes(old_end, grow_end, v.prot)?;
            return Ok(old);
        }
        if !may_move {
            return Err(Errno::ENOMEM);
        }
        let dst = self.find_free(new_len, 0)?;
        self.move_mapping(vs, &v, old, old_len, dst, new_len)
    }

    fn move_mapping(
        &mut self,
        vs: u64,
        v: &Vma,
        old: u64,
        old_len: u64,
        dst: u64,
        new_len: u64,
    ) -> Result<u64, Errno> {
        let backing = match &v.backing {
            Backing::Anon => Backing::Anon,
            Backing::File { fd, offset } => Backing::File {
                fd: fd.clone(),
                offset: offset + (old - vs),
            },
            Backing::Shm { seg, offset } => Backing::Shm {
                seg: seg.clone(),
                offset: offset + (old - vs),
            },
        };
        let keep = old_len.min(new_len);
        // A shared file mapping's contents are the file's: nothing to carry over.
        let saved = if v.is_file_overlay() {
            Vec::new()
        } else {
            let mut buf = vec![0u8; keep as usize];
            self.ram.read(old, &mut buf);
            buf
        };
        self.release(old, old + old_len);
        self.map_fixed(
            dst,
            new_len,
            v.prot,
            v.shared,
            backing.clone(),
            v.name.clone(),
        )?;
        self.ram.write(dst, &saved);
        if let (false, Backing::File { fd, offset }) = (v.shared, &backing) {
            if new_len > keep {
                self.fill_from_file(dst + keep, new_len - keep, fd, offset + keep);
            }
        }
        Ok(dst)
    }
}
