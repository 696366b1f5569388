//! The guest address space. Guest virtual addresses equal guest physical addresses
//! (identity map) and both equal offsets into the guest RAM file.
//!
//! ```text
//! 0x0000_0000_0000  null guard (64 KiB, never mapped)                 infra
//! 0x0000_0001_0000  ELF images (ET_EXEC at their p_vaddr, ET_DYN at PIE_BASE), then brk
//! 0x0000_0001_0000 ..
//!     MMAP_BOTTOM   mmap area, allocated top-down from MMAP_TOP
//!     MMAP_TOP
//!     STACK_BOTTOM  main thread stack (STACK_SIZE), grows down from STACK_TOP
//!     STACK_TOP     guard gap
//!     INFRA_BASE    shim code | shim data | EL1 stacks | page-table pool   infra
//! 0x0020_0000_0000  RAM_SIZE: end of the guest address space
//! ```
//!
//! The infra reserve (null guard and everything from INFRA_BASE up) is invisible to the
//! guest: no user mapping may overlap it, user pointers into it are EFAULT, and it is
//! mapped EL1-only.

pub const PAGE_SIZE: u64 = 4096;
pub const PAGE_MASK: u64 = PAGE_SIZE - 1;

/// Size of guest RAM and of the guest address space (sparse: only touched pages cost).
/// 128 GiB: room for `MAX_VCPUS` threads with glibc's default 8 MiB stacks (10 000 of
/// them take 80 GiB of address space) besides the program's own mappings.
pub const RAM_SIZE: u64 = 128 << 30;

/// Lowest address a guest mapping may use (Linux's default vm.mmap_min_addr).
pub const NULL_GUARD_END: u64 = 0x1_0000;

/// 2 MiB of shim code, shim data and EL1 stacks, then the page-table pool.
pub const INFRA_SIZE: u64 = (2 << 20) + PT_POOL_SIZE;
pub const INFRA_BASE: u64 = RAM_SIZE - INFRA_SIZE;

/// Shim code: EL1 read-only, executable at EL1 only.
pub const SHIM_CODE: u64 = INFRA_BASE;
pub const SHIM_CODE_SIZE: u64 = 64 << 10;
/// shim_data: EL1 read/write, never executable.
pub const SHIM_DATA: u64 = SHIM_CODE + SHIM_CODE_SIZE;
pub const SHIM_DATA_SIZE: u64 = 64 << 10;
/// EL1 stacks, one per vCPU, from the end of shim_data to the page-table pool. The shim
/// keeps at most one 96-byte exception frame on its stack (`elfuse_shim::EL1_STACK_USE`),
/// so 128 bytes each: 15360 vCPUs, i.e. concurrent guest threads. Right after shim_data
/// because the emulator's softmmu TLB is direct-mapped by 4 KiB page number (256 entries
/// for EL1): at INFRA_BASE + 1 MiB, vCPU 0's stack page shared an entry with the shim's
/// first code page (its literal loads), so every syscall swapped the two through the
/// victim TLB (perf: load_helper and victim_tlb_hit ~27% of a getpid loop).
pub const EL1_STACKS: u64 = SHIM_DATA + SHIM_DATA_SIZE;
pub const EL1_STACK_SIZE: u64 = 128;
pub const MAX_VCPUS: u64 = (PT_POOL - EL1_STACKS) / EL1_STACK_SIZE;
/// Stage-1 page tables (4 KiB granule), allocated by the host from this pool. Sized for
/// `MAX_VCPUS` threads each with a default 8 MiB stack (four level-3 tables), plus the
/// program's own mappings; only tables in use cost memory (the pool is sparse RAM, and
/// a table freed when its 2 MiB span empties is given back to the host).
pub const PT_POOL: u64 = INFRA_BASE + (2 << 20);
pub const PT_POOL_SIZE: u64 = 318 << 20;
pub const PT_POOL_END: u64 = RAM_SIZE;

/// The main thread's stack.
pub const STACK_TOP: u64 = INFRA_BASE - (1 << 20);
pub const STACK_SIZE: u64 = 8 << 20;
pub const STACK_BOTTOM: u64 = STACK_TOP - STACK_SIZE;

/// Top-down mmap area.
pub const MMAP_TOP: u64 = STACK_BOTTOM - (16 << 20);
pub const MMAP_BOTTOM: u64 = 4 << 30;

/// Where a position-independent main executable is loaded.
pub const PIE_BASE: u64 = 0x40_0000;

/// True if `[addr, addr+len)` touches the infra reserve (or wraps).
pub fn overlaps_infra(addr: u64, len: u64) -> bool {
    let Some(end) = addr.checked_add(len) else {
        return true;
    };
    addr < NULL_GUARD_END || end > INFRA_BASE
}

/// True if `[addr, addr+len)` lies wholly in the range user mappings may use.
pub fn is_user_range(addr: u64, len: u64) -> bool {
    !overlaps_infra(addr, len)
}

pub const fn page_down(x: u64) -> u64 {
    x & !PAGE_MASK
}

pub fn page_up(x: u64) -> Option<u64> {
    x.checked_add(PAGE_MASK).map(|v| v & !PAGE_MASK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_ordered_and_aligned() {
        const { assert!(NULL_GUARD_END < PIE_BASE) };
        const { assert!(MMAP_BOTTOM < MMAP_TOP && MMAP_TOP < STACK_BOTTOM) };
        const { assert!(STACK_TOP < INFRA_BASE) };
        const { assert!(EL1_STACKS + MAX_VCPUS * EL1_STACK_SIZE <= PT_POOL) };
        // Every vCPU with an 8 MiB stack (and its guard) fits in the mmap area, and its
        // four level-3 tables in the pool.
        const { assert!(MAX_VCPUS * ((8 << 20) + PAGE_SIZE) < MMAP_TOP - MMAP_BOTTOM) };
        const { assert!(MAX_VCPUS * 4 * PAGE_SIZE < PT_POOL_SIZE) };
        const { assert!(EL1_STACK_SIZE >= elfuse_shim::EL1_STACK_USE) };
        const { assert!(EL1_STACK_SIZE.is_multiple_of(16) && MAX_VCPUS >= 10_000) };
        const { assert!((MAX_VCPUS * EL1_STACK_SIZE).is_multiple_of(PAGE_SIZE)) };
        for a in [
            INFRA_BASE, SHIM_DATA, EL1_STACKS, PT_POOL, STACK_TOP, MMAP_TOP,
        ] {
            assert_eq!(a & PAGE_MASK, 0);
        }
        assert!(overlaps_infra(0, 1));
        assert!(overlaps_infra(INFRA_BASE - 1, 2));
        assert!(!overlaps_infra(PIE_BASE, PAGE_SIZE));
        assert!(overlaps_infra(u64::MAX, 2));
    }
}
