//! The guest's address space: mappings (VMAs), brk, the mmap family's placement rules,
//! and the page tables that enforce them. Owns every change to user mappings; the infra
//! reserve is outside its reach by construction (see `layout`).

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use super::layout::*;
use super::pagetable::{PagePerm, PageTables};
use super::ram::GuestRam;
use crate::backend::Invalidate;
use crate::errno::Errno;

pub const PROT_READ: u32 = 1;
pub const PROT_WRITE: u32 = 2;
pub const PROT_EXEC: u32 = 4;

/// What backs a mapping.
#[derive(Clone, Debug)]
pub enum Backing {
    Anon,
    /// A file; `offset` is the file offset of the mapping's first byte.
    File {
        fd: Arc<OwnedFd>,
        offset: u64,
    },
    /// A SysV shared memory attachment (shmat); `offset` is the segment offset of the
    /// mapping's first byte (see `mm/shm.rs`).
    Shm {
        seg: Arc<ShmSeg>,
        offset: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmaName {
    None,
    Heap,
    Stack,
    Path(Arc<str>),
}

#[derive(Clone, Debug)]
pub struct Vma {
    pub end: u64,
    pub prot: u32,
    pub shared: bool,
    pub backing: Backing,
    pub name: VmaName,
}

impl Vma {
    /// A MAP_SHARED file mapping or a SysV shm attachment: guest RAM at this range is
    /// the file's (segment's) pages.
    pub fn is_file_overlay(&self) -> bool {
        self.shared && matches!(self.backing, Backing::File { .. } | Backing::Shm { .. })
    }
}

/// True if the host fd allows writing (a shared mapping of it may be made writable).
pub fn fd_writable(fd: &OwnedFd) -> bool {
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL)
        .is_ok_and(|fl| fl & libc::O_ACCMODE == libc::O_RDWR)
}

/// The state of an [`Mm`] apart from its RAM (see [`Mm::to_parts`]).
mod eof;
mod place;
mod remap;
mod shm;
pub use eof::MissingPage;
pub use shm::ShmSeg;

pub struct MmParts {
    pub vmas: Vec<(u64, Vma)>,
    /// Page-table allocator: root, next fresh table, free tables.
    pub pt: (u64, u64, Vec<u64>),
    pub brk_start: u64,
    pub brk: u64,
}

pub struct Mm {
    ram: Arc<GuestRam>,
    vmas: BTreeMap<u64, Vma>,
    pt: PageTables,
    pub brk_start: u64,
    pub brk: u64,
    inval: Invalidate,
    /// The `[vvar]` page and its watch, cleared when a mapping change touches it.
    vvar: Option<(u64, Arc<super::vvar::VvarWatch>)>,
    /// Where the last top-down placement went (`mm/place.rs`).
    free_cache: std::cell::Cell<place::FreeCache>,
}

fn perm_of(prot: u32) -> Option<PagePerm> {
    (prot != 0).then_some(PagePerm::User {
        write: prot & PROT_WRITE != 0,
        exec: prot & PROT_EXEC != 0,
    })
}

impl Mm {
    /// A fresh address space with the infra reserve's EL1 mappings installed.
    pub fn new(ram: Arc<GuestRam>) -> Self {
        let pt = PageTables::new(&ram);
        let mut mm = Mm {
            ram,
            vmas: BTreeMap::new(),
            pt,
            brk_start: 0,
            brk: 0,
            inval: Invalidate::default(),
            vvar: None,
            free_cache: Default::default(),
        };
        let infra = [
            (SHIM_CODE, SHIM_CODE_SIZE, PagePerm::KernelCode),
            (SHIM_DATA, SHIM_DATA_SIZE, PagePerm::KernelData),
            (EL1_STACKS, MAX_VCPUS * EL1_STACK_SIZE, PagePerm::KernelData),
        ];
        for (va, len, perm) in infra {
            mm.pt
                .set_range(&mm.ram, va, len, Some(perm))
                .expect("page-table pool holds the infra mappings");
        }
        mm
    }

    /// Everything but the RAM: the VMAs, the page-table allocator and brk (fork hands
    /// these to the child with a copy of RAM, which holds the page tables themselves).
    pub fn to_parts(&self) -> MmParts {
        MmParts {
            vmas: self.vmas.iter().map(|(s, v)| (*s, v.clone())).collect(),
            pt: self.pt.parts(),
            brk_start: self.brk_start,
            brk: self.brk,
        }
    }

    /// [`Mm::to_parts`] that moves the VMAs out (their file references with them),
    /// leaving this `Mm` without mappings: for a native fork child, whose inherited copy
    /// of the parent's `Mm` is dead.
    pub fn take_parts(&mut self) -> MmParts {
        MmParts {
            vmas: std::mem::take(&mut self.vmas).into_iter().collect(),
            pt: self.pt.parts(),
            brk_start: self.brk_start,
            brk: self.brk,
        }
    }

    /// Rebuilds an address space from [`Mm::to_parts`] over a copy of the RAM it
    /// described. MAP_SHARED file overlays are mapped again over the new RAM.
    pub fn from_parts(ram: Arc<GuestRam>, p: MmParts) -> Result<Self, Errno> {
        let (root, next, free) = p.pt;
        let mm = Mm {
            ram,
            vmas: p.vmas.into_iter().collect(),
            pt: PageTables::from_parts(root, next, free),
            brk_start: p.brk_start,
            brk: p.brk,
            inval: Invalidate::default(),
            vvar: None,
            free_cache: Default::default(),
        };
        for (start, v) in &mm.vmas {
            if v.is_file_overlay() {
                mm.overlay_backing(*start, v.end - start, &v.backing)?;
            }
        }
        Ok(mm)
    }

    pub fn ram(&self) -> &Arc<GuestRam> {
        &self.ram
    }

    pub fn ttbr0(&self) -> u64 {
        self.pt.root()
    }

    /// Takes the TLB / code invalidation the changes so far require.
    pub fn take_invalidate(&mut self) -> Invalidate {
        self.pt.recycle();
        std::mem::take(&mut self.inval)
    }

    pub fn vmas(&self) -> impl Iterator<Item = (u64, &Vma)> {
        self.vmas.iter().map(|(s, v)| (*s, v))
    }

    /// Sets the page-table entries of `[start, end)` for `prot`, but none past the end of
    /// a mapped file (`eof`).
    fn apply_ptes(&mut self, start: u64, end: u64, prot: u32) -> Result<(), Errno> {
        self.pt
            .set_range(&self.ram, start, end - start, perm_of(prot))
            .map_err(|_| Errno::ENOMEM)?;
        if prot != 0 {
            self.hide_past_eof(start, end)?;
        }
        Ok(())
    }

    /// Splits the mapping that straddles `addr` (if any) so that `addr` is a boundary.
    fn split_at(&mut self, addr: u64) {
        let Some((&s, v)) = self.vmas.range(..addr).next_back() else {
            return;
        };
        if v.end <= addr {
            return;
        }
        let mut tail = v.clone();
        if let Backing::File { offset, .. } | Backing::Shm { offset, .. } = &mut tail.backing {
            *offset += addr - s;
        }
        self.vmas.get_mut(&s).unwrap().end = addr;
        self.vmas.insert(addr, tail);
    }

    /// Keeps `watch` told whether the page at `vvar` is still the vDSO's.
    pub fn watch_vvar(&mut self, vvar: u64, watch: Arc<super::vvar::VvarWatch>) {
        self.vvar = Some((vvar, watch));
    }

    /// Removes every mapping inside `[start, end)`, returning them.
    fn take_range(&mut self, start: u64, end: u64) -> Vec<(u64, Vma)> {
        if let Some((v, w)) = &self.vvar {
            if *v < end && start < v + PAGE_SIZE {
                w.gone();
                self.vvar = None;
            }
        }
        self.split_at(start);
        self.split_at(end);
        let keys: Vec<u64> = self.vmas.range(start..end).map(|(k, _)| *k).collect();
        keys.into_iter()
            .map(|k| (k, self.vmas.remove(&k).unwrap()))
            .collect()
    }

    /// Installs a mapping at `[start, start+len)`, replacing whatever was there. Anonymous
    /// and private memory reads as zeroes (the caller fills private file contents); a
    /// shared file mapping shows the file's pages themselves, up to its end.
    pub fn map_fixed(
        &mut self,
        start: u64,
        len: u64,
        prot: u32,
        shared: bool,
        backing: Backing,
        name: VmaName,
    ) -> Result<(), Errno> {
        if !start.is_multiple_of(PAGE_SIZE) || len == 0 || !len.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        if !is_user_range(start, len) {
            return Err(Errno::ENOMEM);
        }
        let end = start + len;
        self.release(start, end);
        if shared {
            self.overlay_backing(start, len, &backing)?;
        }
        self.vmas.insert(
            start,
            Vma {
                end,
                prot,
                shared,
                backing,
                name,
            },
        );
        self.apply_ptes(start, end, prot)
    }

    /// Shows the file's pages at `[start, start+len)` (only those before end of file: a
    /// host access past it would be a host SIGBUS, so those pages stay zero-filled RAM).
    fn overlay(&self, start: u64, len: u64, fd: &OwnedFd, offset: u64) -> Result<(), Errno> {
        let st = nix::sys::stat::fstat(fd)?;
        let fsize = st.st_size as u64;
        if offset >= fsize {
            return Ok(());
        }
        let n = page_up(fsize - offset).unwrap_or(len).min(len);
        self.ram
            .overlay_file(start, n, fd.as_raw_fd(), offset, fd_writable(fd))
            .map_err(|e| Errno::from_io(&e))
    }

    /// Unmaps whatever lies in `[start, end)` and returns its memory.
    fn release(&mut self, start: u64, end: u64) {
        let old = self.take_range(start, end);
        if old.is_empty() {
            return;
        }
        self.freed(start, end);
        let (mut code, mut tlb) = (false, false);
        for (s, v) in &old {
            if v.is_file_overlay() {
                self.ram.restore(*s, v.end - s);
            }
            code |= v.prot & PROT_EXEC != 0;
            tlb |= v.prot != 0;
        }
        self.ram.discard(start, end - start);
        let _ = self.apply_ptes(start, end, 0);
        // Only memory that was executable can have translated code to drop, and only
        // accessible memory can have TLB entries.
        self.inval.merge(Invalidate {
            tlb,
            code: code.then_some((start, end)),
        });
    }

    /// munmap(2).
    pub fn unmap(&mut self, start: u64, len: u64) -> Result<(), Errno> {
        if !start.is_multiple_of(PAGE_SIZE) || len == 0 {
            return Err(Errno::EINVAL);
        }
        let end = page_up(start.checked_add(len).ok_or(Errno::EINVAL)?).ok_or(Errno::EINVAL)?;
        if !is_user_range(start, end - start) {
            return Err(Errno::EINVAL);
        }
        self.release(start, end);
        Ok(())
    }

    /// True if `[start, end)` is wholly covered by mappings.
    pub fn is_mapped(&self, start: u64, end: u64) -> bool {
        self.covered(start, end)
    }

    /// msync(2): shared file mappings are the page cache itself; MS_SYNC also writes
    /// the pages to the device.
    pub fn sync_range(&self, start: u64, end: u64, flags: i32) {
        for (&s, v) in self.vmas.range(..end).filter(|(_, v)| v.end > start) {
            if v.is_file_overlay() {
                let (a, b) = (s.max(start), v.end.min(end));
                let p = self.ram.ptr(a, (b - a) as usize);
                // SAFETY: `p` is `b - a` bytes inside the RAM mapping (`ram.ptr` checked the
                // range); msync only flushes those pages.
                unsafe { libc::msync(p.cast(), (b - a) as usize, flags) };
            }
        }
    }

    /// The mapping that holds `va`, with its start.
    fn vma_at(&self, va: u64) -> Option<(u64, &Vma)> {
        self.vmas
            .range(..=va)
            .next_back()
            .filter(|(_, v)| v.end > va)
            .map(|(&s, v)| (s, v))
    }

    fn covered(&self, start: u64, end: u64) -> bool {
        let mut cur = start;
        if let Some((_, v)) = self.vma_at(start) {
            cur = v.end;
        }
        for (&s, v) in self.vmas.range(start..end) {
            if s > cur {
                return false;
            }
            cur = cur.max(v.end);
        }
        cur >= end
    }

    /// mprotect(2).
    pub fn protect(&mut self, start: u64, len: u64, prot: u32) -> Result<(), Errno> {
        if !start.is_multiple_of(PAGE_SIZE) || prot & !(PROT_READ | PROT_WRITE | PROT_EXEC) != 0 {
            return Err(Errno::EINVAL);
        }
        let end = page_up(start.checked_add(len).ok_or(Errno::ENOMEM)?).ok_or(Errno::ENOMEM)?;
        if end == start {
            return Ok(());
        }
        if !is_user_range(start, end - start) || !self.covered(start, end) {
            return Err(Errno::ENOMEM);
        }
        if prot & PROT_WRITE != 0 {
            let ro_shared = self
                .vmas
                .range(..end)
                .filter(|(_, v)| v.end > start)
                .any(|(_, v)| match (&v.backing, v.shared) {
                    (Backing::File { fd, .. }, true) => !fd_writable(fd),
                    (Backing::Shm { seg, .. }, _) => !seg.writable,
                    _ => false,
                });
            if ro_shared {
                return Err(Errno::EACCES);
            }
        }
        self.split_at(start);
        self.split_at(end);
        let (mut was_exec, mut lost) = (false, false);
        for (_, v) in self.vmas.range_mut(start..end) {
            was_exec |= v.prot & PROT_EXEC != 0;
            lost |= loses_access(v.prot, prot);
            v.prot = prot;
        }
        self.apply_ptes(start, end, prot)?;
        // Code made executable may have been written by another vCPU's engine (whose
        // writes this one does not see): drop translated code for it. Code made
        // non-executable is dropped too: the emulated CPU links translated blocks across
        // pages (third_party PATCHES 17), and a linked jump does not look at the target
        // page's permissions again. A change that only adds access needs no TLB flush:
        // the emulated TLB holds no entry for an access the old entry did not allow (a
        // miss walks the tables again), as with Linux's spurious-fault rule; this spares
        // every thread creation (glibc and musl make a new stack PROT_NONE, then add
        // read/write) a shootdown of every other thread.
        self.inval.merge(Invalidate {
            tlb: lost,
            code: (prot & PROT_EXEC != 0 || was_exec).then_some((start, end)),
        });
        Ok(())
    }

    /// brk(2): returns the new break (the old one on failure, as Linux does).
    pub fn set_brk(&mut self, want: u64) -> u64 {
        if want < self.brk_start {
            return self.brk;
        }
        let (Some(old_top), Some(new_top)) = (page_up(self.brk), page_up(want)) else {
            return self.brk;
        };
        if new_top > old_top {
            if !is_user_range(old_top, new_top - old_top) || !self.is_free(old_top, new_top) {
                return self.brk;
            }
            if self
                .map_fixed(
                    old_top,
                    new_top - old_top,
                    PROT_READ | PROT_WRITE,
                    false,
                    Backing::Anon,
                    VmaName::Heap,
                )
                .is_err()
            {
                return self.brk;
            }
        } else if new_top < old_top {
            self.release(new_top, old_top);
        }
        self.brk = want;
        self.brk
    }

    /// Checks that the guest may access `[va, va+len)` (`write`: for writing). This is the
    /// only gate for user pointers: the infra reserve is never a user mapping, so any
    /// pointer into it is EFAULT.
    pub fn check_user(&self, va: u64, len: u64, write: bool) -> Result<(), Errno> {
        self.check_user_span(va, len, write).map(|_| ())
    }

    /// `check_user`, also naming the one mapping that holds the whole range (`None`
    /// when it spans several): a caller may answer later checks inside it from that.
    pub fn check_user_span(
        &self,
        va: u64,
        len: u64,
        write: bool,
    ) -> Result<Option<UserSpan>, Errno> {
        if len == 0 {
            return Ok(None);
        }
        let end = va.checked_add(len).ok_or(Errno::EFAULT)?;
        if !is_user_range(va, len) {
            return Err(Errno::EFAULT);
        }
        let need = need_prot(write);
        let first = match self.vmas.range(..=va).next_back() {
            // The common case, one mapping holds it all: a single tree descent. A file
            // mapping is checked against the file's size at each call (never cached).
            Some((&s, v)) if v.end >= end && v.prot & need != 0 && !v.is_file_overlay() => {
                return Ok(Some(UserSpan {
                    start: s,
                    end: v.end,
                    prot: v.prot,
                }))
            }
            Some((&s, v)) if v.end > va => s,
            _ => return Err(Errno::EFAULT),
        };
        let mut cur = va;
        for (&s, v) in self.vmas.range(first..end) {
            if s > cur || v.prot & need == 0 || eof::reaches_past_eof(s, v, end) {
                return Err(Errno::EFAULT);
            }
            cur = v.end;
            if cur >= end {
                return Ok(None);
            }
        }
        Err(Errno::EFAULT)
    }

    /// Whether EL0 may execute the instruction at `va`.
    pub fn is_executable(&self, va: u64) -> bool {
        is_user_range(va, 4)
            && self
                .vma_at(va)
                .is_some_and(|(_, v)| v.prot & PROT_EXEC != 0)
    }

    /// Whether invalidations wait to be taken.
    pub fn has_invalidate(&self) -> bool {
        !self.inval.is_empty()
    }
}

/// Whether changing a mapping's protection from `old` to `new` takes any access away
/// (read: any protection but PROT_NONE reads, as the page tables encode it).
fn loses_access(old: u32, new: u32) -> bool {
    (old != 0 && new == 0) || old & !new & (PROT_WRITE | PROT_EXEC) != 0
}

/// The protections a user access needs: writes need PROT_WRITE, reads any access.
fn need_prot(write: bool) -> u32 {
    if write {
        PROT_WRITE
    } else {
        PROT_READ | PROT_WRITE | PROT_EXEC
    }
}

/// One user mapping as `check_user_span` found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserSpan {
    pub start: u64,
    pub end: u64,
    pub prot: u32,
}

impl UserSpan {
    /// Whether `check_user(va, len, write)` passes inside this mapping alone.
    pub fn allows(&self, va: u64, len: u64, write: bool) -> bool {
        va >= self.start
            && va.checked_add(len).is_some_and(|e| e <= self.end)
            && self.prot & need_prot(write) != 0
    }
}

#[cfg(test)]
mod tests;
