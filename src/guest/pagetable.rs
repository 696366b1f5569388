//! Stage-1 page tables for the EL1&0 translation regime: 4 KiB granule, 48-bit VA
//! (T0SZ = 16, four levels), identity map (VA == PA). Built and edited by the host in
//! guest RAM; tables come from the infra page-table pool.

use super::layout::{PAGE_SIZE, PT_POOL, PT_POOL_END};
use super::ram::GuestRam;

/// Who may do what with a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagePerm {
    /// An EL0 page (also reachable from EL1, as on Linux without PAN).
    User { write: bool, exec: bool },
    /// EL1-only code (read-only, executable at EL1).
    KernelCode,
    /// EL1-only data (read/write, never executable).
    KernelData,
}

const VALID_PAGE: u64 = 0b11; // valid + page (L3) / table (L0-L2)
const AF: u64 = 1 << 10;
const SH_INNER: u64 = 0b11 << 8;
const AP_EL0: u64 = 1 << 6;
const AP_RO: u64 = 1 << 7;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;
const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;

impl PagePerm {
    fn descriptor(self, pa: u64) -> u64 {
        let base = (pa & ADDR_MASK) | VALID_PAGE | AF | SH_INNER; // AttrIndx 0: normal WB
        match self {
            PagePerm::User { write, exec } => {
                let ap = AP_EL0 | if write { 0 } else { AP_RO };
                base | ap | PXN | if exec { 0 } else { UXN }
            }
            PagePerm::KernelCode => base | AP_RO | UXN,
            PagePerm::KernelData => base | PXN | UXN,
        }
    }
}

/// The table tree and its allocator.
pub struct PageTables {
    root: u64,
    next: u64,
    free: Vec<u64>,
    /// Level-3 tables unlinked since the last [`PageTables::recycle`]: a vCPU's table
    /// walk that began before the unlink may still read one, so it is reused only after
    /// the shootdown that follows the change.
    retired: Vec<u64>,
}

#[derive(Debug)]
pub struct PoolExhausted;

impl PageTables {
    pub fn new(ram: &GuestRam) -> Self {
        let mut pt = PageTables {
            root: 0,
            next: PT_POOL,
            free: Vec::new(),
            retired: Vec::new(),
        };
        pt.root = pt.alloc(ram).expect("empty pool");
        pt
    }

    /// The allocator's state (root, next never-used table, free tables): with a copy of
    /// guest RAM, which holds the tables themselves, it rebuilds the tree (fork).
    pub fn parts(&self) -> (u64, u64, Vec<u64>) {
        let mut free = self.free.clone();
        free.extend_from_slice(&self.retired);
        (self.root, self.next, free)
    }

    /// The inverse of [`PageTables::parts`], over RAM that already holds the tables.
    pub fn from_parts(root: u64, next: u64, free: Vec<u64>) -> Self {
        PageTables {
            root,
            next,
            free,
            retired: Vec::new(),
        }
    }

    /// Makes the tables retired so far reusable: called when the invalidation that
    /// follows their unlinking is taken (every vCPU is out of guest code, or flushes,
    /// before it walks the tables again).
    pub fn recycle(&mut self) {
        self.free.append(&mut self.retired);
    }

    /// Physical address of the level-0 table (TTBR0_EL1).
    pub fn root(&self) -> u64 {
        self.root
    }

    fn alloc(&mut self, ram: &GuestRam) -> Result<u64, PoolExhausted> {
        let t = match self.free.pop() {
            Some(t) => t,
            None if self.next < PT_POOL_END => {
                let t = self.next;
                self.next += PAGE_SIZE;
                t
            }
            None => return Err(PoolExhausted),
        };
        ram.fill(t, PAGE_SIZE, 0);
        Ok(t)
    }

    /// The level-3 table covering `va` (a 2 MiB span), created if `create`, with the
    /// level-2 slot that points at it.
    fn l3_table(
        &mut self,
        ram: &GuestRam,
        va: u64,
        create: bool,
    ) -> Result<Option<(u64, u64)>, PoolExhausted> {
        let mut table = self.root;
        let mut slot = 0;
        for level in 0..3 {
            let shift = 39 - 9 * level;
            let idx = (va >> shift) & 0x1ff;
            slot = table + idx * 8;
            let e = ram.read_u64(slot);
            if e & 1 == 0 {
                if !create {
                    return Ok(None);
                }
                let t = self.alloc(ram)?;
                ram.write_u64(slot, t | VALID_PAGE);
                table = t;
            } else {
                table = e & ADDR_MASK;
            }
        }
        Ok(Some((table, slot)))
    }

    /// Unlinks level-3 table `l3` (level-2 slot `slot`) if it maps nothing: its memory
    /// goes back to the host and the table to the pool (after the next shootdown).
    /// `whole`: the caller has just cleared all of it.
    fn release_if_empty(&mut self, ram: &GuestRam, l3: u64, slot: u64, whole: bool) {
        if !whole && (0..512).any(|i| ram.read_u64(l3 + i * 8) != 0) {
            return;
        }
        ram.write_u64(slot, 0);
        ram.discard(l3, PAGE_SIZE);
        self.retired.push(l3);
    }

    /// Sets (or with `None`, clears) the page descriptors of `[va, va+len)`, identity
    /// mapped. `va` and `len` are page aligned.
    pub fn set_range(
        &mut self,
        ram: &GuestRam,
        va: u64,
        len: u64,
        perm: Option<PagePerm>,
    ) -> Result<(), PoolExhausted> {
        debug_assert_eq!(va % PAGE_SIZE, 0);
        debug_assert_eq!(len % PAGE_SIZE, 0);
        let end = va + len;
        let mut cur = va;
        while cur < end {
            let span_end = ((cur >> 21) + 1) << 21;
            let chunk_end = span_end.min(end);
            if let Some((l3, l2_slot)) = self.l3_table(ram, cur, perm.is_some())? {
                let mut p = cur;
                while p < chunk_end {
                    let slot = l3 + ((p >> 12) & 0x1ff) * 8;
                    let d = perm.map_or(0, |perm| perm.descriptor(p));
                    ram.write_u64(slot, d);
                    p += PAGE_SIZE;
                }
                if perm.is_none() {
                    let whole = chunk_end - cur == 1 << 21;
                    self.release_if_empty(ram, l3, l2_slot, whole);
                }
            }
            cur = chunk_end;
        }
        Ok(())
    }

    /// The descriptor currently installed for `va` (0 if none). For tests.
    #[cfg(test)]
    pub fn lookup(&mut self, ram: &GuestRam, va: u64) -> u64 {
        match self.l3_table(ram, va, false) {
            Ok(Some((l3, _))) => ram.read_u64(l3 + ((va >> 12) & 0x1ff) * 8),
            _ => 0,
        }
    }

    /// Number of tables handed out so far (for tests).
    #[cfg(test)]
    pub fn tables_used(&self) -> u64 {
        (self.next - PT_POOL) / PAGE_SIZE - (self.free.len() + self.retired.len()) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_lookup_unmap() {
        let ram = GuestRam::new(super::super::layout::RAM_SIZE).unwrap();
        let mut pt = PageTables::new(&ram);
        let va = 0x40_0000;
        pt.set_range(
            &ram,
            va,
            3 * PAGE_SIZE,
            Some(PagePerm::User {
                write: false,
                exec: true,
            }),
        )
        .unwrap();
        let d = pt.lookup(&ram, va + PAGE_SIZE);
        assert_eq!(d & ADDR_MASK, va + PAGE_SIZE);
        assert_eq!(d & (AP_EL0 | AP_RO), AP_EL0 | AP_RO);
        assert_eq!(d & UXN, 0);
        assert_ne!(d & PXN, 0);
        pt.set_range(&ram, va, PAGE_SIZE, None).unwrap();
        assert_eq!(pt.lookup(&ram, va), 0);
        assert_ne!(pt.lookup(&ram, va + 2 * PAGE_SIZE), 0);
        // crossing a 2 MiB boundary allocates a second L3 table
        let before = pt.tables_used();
        pt.set_range(&ram, 0x5f_f000, 2 * PAGE_SIZE, Some(PagePerm::KernelData))
            .unwrap();
        assert_eq!(pt.tables_used(), before + 1);
        assert_eq!(pt.lookup(&ram, 0x60_0000) & (AP_EL0 | PXN | UXN), PXN | UXN);
        // A level-3 table whose span empties is unlinked and reused after `recycle`.
        pt.set_range(&ram, 0x60_0000, PAGE_SIZE, None).unwrap();
        assert_eq!(pt.tables_used(), before);
        assert_eq!(pt.lookup(&ram, 0x60_0000), 0);
        assert_ne!(pt.lookup(&ram, 0x5f_f000), 0);
        let next = pt.next;
        pt.recycle();
        pt.set_range(&ram, 0x80_0000, PAGE_SIZE, Some(PagePerm::KernelData))
            .unwrap();
        assert_eq!((pt.next, pt.tables_used()), (next, before + 1));
    }
}
