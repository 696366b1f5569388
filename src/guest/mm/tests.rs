//! Tests of the address space (`mm.rs`).

use super::*;

fn mm() -> Mm {
    Mm::new(Arc::new(GuestRam::new(RAM_SIZE).unwrap()))
}

#[test]
fn map_protect_unmap_and_user_checks() {
    let mut m = mm();
    let a = m.find_free(3 * PAGE_SIZE, 0).unwrap();
    assert!(a + 3 * PAGE_SIZE <= MMAP_TOP);
    m.map_fixed(
        a,
        3 * PAGE_SIZE,
        PROT_READ | PROT_WRITE,
        false,
        Backing::Anon,
        VmaName::None,
    )
    .unwrap();
    m.check_user(a, 3 * PAGE_SIZE, true).unwrap();
    m.protect(a + PAGE_SIZE, PAGE_SIZE, PROT_READ).unwrap();
    assert_eq!(m.check_user(a, 3 * PAGE_SIZE, true), Err(Errno::EFAULT));
    m.check_user(a, 3 * PAGE_SIZE, false).unwrap();
    m.unmap(a + PAGE_SIZE, PAGE_SIZE).unwrap();
    assert_eq!(m.check_user(a, 2 * PAGE_SIZE, false), Err(Errno::EFAULT));
    assert_eq!(m.vmas().count(), 2);
    assert_eq!(m.check_user(SHIM_DATA, 8, false), Err(Errno::EFAULT));
    assert_eq!(m.protect(a, 3 * PAGE_SIZE, PROT_READ), Err(Errno::ENOMEM));
    assert!(m.take_invalidate().tlb);
}

/// Execute permission gained or lost drops translated code (linked blocks do not
/// look at the target page again); other permission changes only flush the TLB.
#[test]
fn exec_changes_drop_code() {
    let mut m = mm();
    let a = m.find_free(2 * PAGE_SIZE, 0).unwrap();
    m.map_fixed(
        a,
        2 * PAGE_SIZE,
        PROT_READ | PROT_EXEC,
        false,
        Backing::Anon,
        VmaName::None,
    )
    .unwrap();
    m.take_invalidate();
    m.protect(a, PAGE_SIZE, PROT_READ | PROT_WRITE).unwrap();
    let inval = m.take_invalidate();
    assert!(inval.tlb);
    assert_eq!(inval.code, Some((a, a + PAGE_SIZE)));
    m.protect(a, PAGE_SIZE, PROT_READ).unwrap();
    let inval = m.take_invalidate();
    assert!(inval.tlb);
    assert_eq!(inval.code, None);
    m.protect(a, PAGE_SIZE, PROT_READ | PROT_EXEC).unwrap();
    assert!(m.take_invalidate().code.is_some());
}

#[test]
fn infra_is_untouchable() {
    let mut m = mm();
    let anon = || Backing::Anon;
    assert_eq!(
        m.map_fixed(
            INFRA_BASE,
            PAGE_SIZE,
            PROT_READ,
            false,
            anon(),
            VmaName::None
        ),
        Err(Errno::ENOMEM)
    );
    assert_eq!(
        m.map_fixed(0, PAGE_SIZE, PROT_READ, false, anon(), VmaName::None),
        Err(Errno::ENOMEM)
    );
    assert_eq!(m.unmap(INFRA_BASE, PAGE_SIZE), Err(Errno::EINVAL));
    assert_eq!(
        m.protect(SHIM_CODE, PAGE_SIZE, PROT_READ),
        Err(Errno::ENOMEM)
    );
    assert_eq!(m.advise(SHIM_DATA, PAGE_SIZE, 4), Err(Errno::EINVAL));
    assert_eq!(
        m.remap(SHIM_DATA, PAGE_SIZE, 2 * PAGE_SIZE, true, None),
        Err(Errno::EFAULT)
    );
}

#[test]
fn brk_and_remap_keep_contents() {
    let mut m = mm();
    m.brk_start = 0x100_0000;
    m.brk = 0x100_0000;
    assert_eq!(m.set_brk(0x100_0000 + 10_000), 0x100_0000 + 10_000);
    m.ram().write(0x100_0000, b"heap");
    m.check_user(0x100_0000, 10_000, true).unwrap();
    let a = m.find_free(PAGE_SIZE, 0).unwrap();
    m.map_fixed(
        a,
        PAGE_SIZE,
        PROT_READ | PROT_WRITE,
        false,
        Backing::Anon,
        VmaName::None,
    )
    .unwrap();
    m.ram().write(a, b"moved");
    // something right after it forces a move
    m.map_fixed(
        a + PAGE_SIZE,
        PAGE_SIZE,
        PROT_READ,
        false,
        Backing::Anon,
        VmaName::None,
    )
    .unwrap();
    let b = m.remap(a, PAGE_SIZE, 4 * PAGE_SIZE, true, None).unwrap();
    assert_ne!(a, b);
    let mut buf = [0u8; 5];
    m.ram().read(b, &mut buf);
    assert_eq!(&buf, b"moved");
    assert_eq!(m.check_user(a, 1, false), Err(Errno::EFAULT));
    m.advise(b, PAGE_SIZE, 4).unwrap();
    m.ram().read(b, &mut buf);
    assert_eq!(buf, [0; 5]);
}

/// Adding access needs no TLB flush (the emulated TLB caches no entry for an access
/// the old one refused); taking any away does. A new thread's stack, made PROT_NONE
/// and then read/write, costs no shootdown.
#[test]
fn only_lost_access_flushes() {
    let mut m = mm();
    let a = m.find_free(4 * PAGE_SIZE, 0).unwrap();
    m.map_fixed(a, 4 * PAGE_SIZE, 0, false, Backing::Anon, VmaName::Stack)
        .unwrap();
    assert!(!m.take_invalidate().tlb);
    m.protect(a + PAGE_SIZE, 3 * PAGE_SIZE, PROT_READ | PROT_WRITE)
        .unwrap();
    assert!(m.take_invalidate().is_empty());
    m.protect(a + PAGE_SIZE, PAGE_SIZE, PROT_READ).unwrap();
    assert!(m.take_invalidate().tlb);
    m.protect(a + PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE)
        .unwrap();
    assert!(!m.take_invalidate().tlb);
    m.protect(a + 2 * PAGE_SIZE, PAGE_SIZE, 0).unwrap();
    assert!(m.take_invalidate().tlb);
}

/// A level-3 table whose 2 MiB span no longer maps anything goes back to the pool:
/// mapping and unmapping thread stacks over and over does not use the pool up.
#[test]
fn unmapped_spans_free_their_tables() {
    let mut m = mm();
    let used = m.pt.tables_used();
    for _ in 0..3 {
        let a = m.find_free(8 << 20, 0).unwrap();
        m.map_fixed(
            a,
            8 << 20,
            PROT_READ | PROT_WRITE,
            false,
            Backing::Anon,
            VmaName::None,
        )
        .unwrap();
        assert!(m.pt.tables_used() >= used + 4);
        m.unmap(a, 8 << 20).unwrap();
        m.take_invalidate();
        assert!(m.pt.tables_used() <= used + 2, "{}", m.pt.tables_used());
    }
}

/// Top-down placement with the free-area cache gives what a walk from the top gives:
/// the highest gap that fits, also after unmaps above and below the cached address.
#[test]
fn placement_is_highest_fit() {
    let mut m = mm();
    let map = |m: &mut Mm, len: u64| {
        let a = m.find_free(len, 0).unwrap();
        m.map_fixed(a, len, PROT_READ, false, Backing::Anon, VmaName::None)
            .unwrap();
        a
    };
    let a: Vec<u64> = (0..8).map(|_| map(&mut m, 4 * PAGE_SIZE)).collect();
    assert!(a.windows(2).all(|w| w[1] + 4 * PAGE_SIZE == w[0]));
    // A hole high up: a small request goes there, a larger one below everything.
    m.unmap(a[2], 4 * PAGE_SIZE).unwrap();
    assert_eq!(map(&mut m, 2 * PAGE_SIZE), a[2] + 2 * PAGE_SIZE);
    assert_eq!(map(&mut m, 8 * PAGE_SIZE), a[7] - 8 * PAGE_SIZE);
    // The lowest mapping unmapped and mapped again: the same place.
    let low = a[7] - 8 * PAGE_SIZE;
    m.unmap(low, 8 * PAGE_SIZE).unwrap();
    assert_eq!(map(&mut m, 8 * PAGE_SIZE), low);
    assert_eq!(map(&mut m, 2 * PAGE_SIZE), a[2]);
}
