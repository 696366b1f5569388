//! A minimal ELF64 writer for the vDSO: ET_DYN linked at 0, one PT_LOAD covering the whole
//! file (R+X), PT_DYNAMIC (read-only, so glibc does not relocate it in place), PT_NOTE;
//! .hash (musl reads only DT_HASH), .gnu.hash, .dynsym/.dynstr, .gnu.version and
//! .gnu.version_d (the BASE entry and one version), a note, .text, .dynamic, section headers.

/// One exported function: name, offset in the image, size.
pub struct Export<'a> {
    pub name: &'a str,
    pub value: u64,
    pub size: u64,
}

/// What goes into the image besides the code.
pub struct Spec<'a> {
    pub soname: &'a str,
    pub version: &'a str,
    /// NT_GNU_ABI_TAG: (major, minor, patch) of the kernel the guest sees.
    pub abi_tag: (u32, u32, u32),
}

const EHDR: usize = 64;
const PHDR: usize = 56;
const SHDR: usize = 64;
const SYM: usize = 24;
const NPHDR: usize = 3;

const SHT_PROGBITS: u32 = 1;
const SHT_STRTAB: u32 = 3;
const SHT_HASH: u32 = 5;
const SHT_DYNAMIC: u32 = 6;
const SHT_NOTE: u32 = 7;
const SHT_DYNSYM: u32 = 11;
const SHT_GNU_HASH: u32 = 0x6fff_fff6;
const SHT_GNU_VERDEF: u32 = 0x6fff_fffd;
const SHT_GNU_VERSYM: u32 = 0x6fff_ffff;
const SHF_ALLOC: u64 = 2;
const SHF_EXECINSTR: u64 = 4;

const DT_NULL: u64 = 0;
const DT_HASH: u64 = 4;
const DT_STRTAB: u64 = 5;
const DT_SYMTAB: u64 = 6;
const DT_STRSZ: u64 = 10;
const DT_SYMENT: u64 = 11;
const DT_SONAME: u64 = 14;
const DT_GNU_HASH: u64 = 0x6fff_fef5;
const DT_VERSYM: u64 = 0x6fff_fff0;
const DT_VERDEF: u64 = 0x6fff_fffc;
const DT_VERDEFNUM: u64 = 0x6fff_fffd;

/// The SysV ELF hash (DT_HASH, vd_hash).
pub fn elf_hash(name: &[u8]) -> u32 {
    let mut h: u32 = 0;
    for &c in name {
        h = (h << 4).wrapping_add(c as u32);
        let g = h & 0xf000_0000;
        if g != 0 {
            h ^= g >> 24;
        }
        h &= !g;
    }
    h
}

/// The GNU hash (DT_GNU_HASH).
pub fn gnu_hash(name: &[u8]) -> u32 {
    name.iter()
        .fold(5381u32, |h, &c| h.wrapping_mul(33).wrapping_add(c as u32))
}

/// A little-endian byte buffer with aligned placement.
#[derive(Default)]
struct Buf(Vec<u8>);

impl Buf {
    fn align(&mut self, a: usize) -> usize {
        while !self.0.len().is_multiple_of(a) {
            self.0.push(0);
        }
        self.0.len()
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
}

/// A string table under construction.
struct StrTab(Vec<u8>);

impl StrTab {
    fn new() -> Self {
        StrTab(vec![0])
    }
    fn add(&mut self, s: &str) -> u32 {
        let off = self.0.len() as u32;
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
        off
    }
}

/// One section header's contents (`off..end` in the file; sh_addr = off when allocated).
struct Section {
    ty: u32,
    flags: u64,
    off: usize,
    end: usize,
    link: u32,
    info: u32,
    align: u64,
    entsize: u64,
}

/// Section indices (fixed order).
const SEC_NAMES: [&str; 11] = [
    "",
    ".hash",
    ".gnu.hash",
    ".dynsym",
    ".dynstr",
    ".gnu.version",
    ".gnu.version_d",
    ".note",
    ".text",
    ".dynamic",
    ".shstrtab",
];
const S_DYNSYM: u32 = 3;
const S_DYNSTR: u32 = 4;
const S_TEXT: u16 = 8;

/// Builds the image. `code(text_off)` assembles the code for its final offset and returns
/// the bytes and the exports (values relative to the code's start).
pub fn write<'a>(
    spec: &Spec,
    names: &[&'a str],
    code: impl FnOnce(u64) -> (Vec<u8>, Vec<Export<'a>>),
) -> Vec<u8> {
    let nsyms = names.len() + 1;
    let mut dynstr = StrTab::new();
    let soname_off = dynstr.add(spec.soname);
    let version_off = dynstr.add(spec.version);
    let name_offs: Vec<u32> = names.iter().map(|n| dynstr.add(n)).collect();

    let mut b = Buf::default();
    b.bytes(&[0; EHDR + NPHDR * PHDR]);

    // .hash: nbucket, nchain, buckets, chains.
    let hash_off = b.align(8);
    let nbucket = names.len().max(1);
    let mut buckets = vec![0u32; nbucket];
    let mut chains = vec![0u32; nsyms];
    for (i, n) in names.iter().enumerate().rev() {
        let sym = i as u32 + 1;
        let bk = elf_hash(n.as_bytes()) as usize % nbucket;
        chains[sym as usize] = buckets[bk];
        buckets[bk] = sym;
    }
    b.u32(nbucket as u32);
    b.u32(nsyms as u32);
    buckets.iter().for_each(|&v| b.u32(v));
    chains.iter().for_each(|&v| b.u32(v));
    let hash_end = b.0.len();

    // .gnu.hash: one bucket, symbols from index 1, a one-word bloom filter.
    let gnu_off = b.align(8);
    let bloom_shift = 6u32;
    let hashes: Vec<u32> = names.iter().map(|n| gnu_hash(n.as_bytes())).collect();
    let bloom = hashes.iter().fold(0u64, |m, &h| {
        m | (1u64 << (h % 64)) | (1u64 << ((h >> bloom_shift) % 64))
    });
    b.u32(1); // nbuckets
    b.u32(1); // symoffset
    b.u32(1); // bloom size (words)
    b.u32(bloom_shift);
    b.u64(bloom);
    b.u32(if names.is_empty() { 0 } else { 1 }); // bucket[0]: first symbol
    for (i, h) in hashes.iter().enumerate() {
        let last = i + 1 == hashes.len();
        b.u32((h & !1) | last as u32);
    }
    let gnu_end = b.0.len();

    // .dynsym (values patched once the code's place is known).
    let dynsym_off = b.align(8);
    b.bytes(&[0; SYM]);
    let sym_slots: Vec<usize> = (0..names.len())
        .map(|_| {
            let at = b.0.len();
            b.bytes(&[0; SYM]);
            at
        })
        .collect();
    let dynsym_end = b.0.len();

    let dynstr_off = b.0.len();
    b.bytes(&dynstr.0);
    let dynstr_end = b.0.len();

    // .gnu.version: 0 for the null symbol, version index 2 for every export.
    let versym_off = b.align(2);
    b.u16(0);
    names.iter().for_each(|_| b.u16(2));
    let versym_end = b.0.len();

    // .gnu.version_d: BASE (index 1, the soname) then the version (index 2).
    let verdef_off = b.align(8);
    for (ndx, (name, off)) in [(spec.soname, soname_off), (spec.version, version_off)]
        .iter()
        .enumerate()
    {
        let base = ndx == 0;
        b.u16(1); // vd_version
        b.u16(if base { 1 } else { 0 }); // vd_flags: VER_FLG_BASE
        b.u16(ndx as u16 + 1); // vd_ndx
        b.u16(1); // vd_cnt
        b.u32(elf_hash(name.as_bytes()));
        b.u32(20); // vd_aux: right after this entry
        b.u32(if base { 28 } else { 0 }); // vd_next
        b.u32(*off); // vda_name
        b.u32(0); // vda_next
    }
    let verdef_end = b.0.len();

    // .note: NT_GNU_ABI_TAG (name "GNU", type 1, desc: OS 0 = Linux, major, minor, patch).
    let note_off = b.align(4);
    b.u32(4);
    b.u32(16);
    b.u32(1);
    b.bytes(b"GNU\0");
    let (ma, mi, pa) = spec.abi_tag;
    [0, ma, mi, pa].iter().for_each(|&v| b.u32(v));
    let note_end = b.0.len();

    let text_off = b.align(16);
    let (code_bytes, exports) = code(text_off as u64);
    b.bytes(&code_bytes);
    let text_end = b.0.len();

    let dyn_off = b.align(8);
    let dynamic = [
        (DT_SONAME, soname_off as u64),
        (DT_HASH, hash_off as u64),
        (DT_GNU_HASH, gnu_off as u64),
        (DT_STRTAB, dynstr_off as u64),
        (DT_SYMTAB, dynsym_off as u64),
        (DT_STRSZ, dynstr.0.len() as u64),
        (DT_SYMENT, SYM as u64),
        (DT_VERSYM, versym_off as u64),
        (DT_VERDEF, verdef_off as u64),
        (DT_VERDEFNUM, 2),
        (DT_NULL, 0),
    ];
    for (t, v) in dynamic {
        b.u64(t);
        b.u64(v);
    }
    let dyn_end = b.0.len();

    let mut shstr = StrTab::new();
    let sh_names: Vec<u32> = SEC_NAMES
        .iter()
        .map(|n| if n.is_empty() { 0 } else { shstr.add(n) })
        .collect();
    let shstr_off = b.0.len();
    b.bytes(&shstr.0);
    let shstr_end = b.0.len();

    // Patch the symbols now that the code's offset is known.
    for (i, slot) in sym_slots.iter().enumerate() {
        let e = exports
            .iter()
            .find(|e| e.name == names[i])
            .expect("every name is exported");
        let mut s = Buf::default();
        s.u32(name_offs[i]);
        s.0.push(0x12); // STB_GLOBAL << 4 | STT_FUNC
        s.0.push(0); // STV_DEFAULT
        s.u16(S_TEXT);
        s.u64(text_off as u64 + e.value);
        s.u64(e.size);
        b.0[*slot..*slot + SYM].copy_from_slice(&s.0);
    }

    let sec = |ty, flags, (off, end): (usize, usize), link, info, align, entsize| Section {
        ty,
        flags,
        off,
        end,
        link,
        info,
        align,
        entsize,
    };
    let a = SHF_ALLOC;
    let sections = [
        sec(0, 0, (0, 0), 0, 0, 0, 0),
        sec(SHT_HASH, a, (hash_off, hash_end), S_DYNSYM, 0, 8, 4),
        sec(SHT_GNU_HASH, a, (gnu_off, gnu_end), S_DYNSYM, 0, 8, 0),
        sec(
            SHT_DYNSYM,
            a,
            (dynsym_off, dynsym_end),
            S_DYNSTR,
            1,
            8,
            SYM as u64,
        ),
        sec(SHT_STRTAB, a, (dynstr_off, dynstr_end), 0, 0, 1, 0),
        sec(
            SHT_GNU_VERSYM,
            a,
            (versym_off, versym_end),
            S_DYNSYM,
            0,
            2,
            2,
        ),
        sec(
            SHT_GNU_VERDEF,
            a,
            (verdef_off, verdef_end),
            S_DYNSTR,
            2,
            8,
            0,
        ),
        sec(SHT_NOTE, a, (note_off, note_end), 0, 0, 4, 0),
        sec(
            SHT_PROGBITS,
            a | SHF_EXECINSTR,
            (text_off, text_end),
            0,
            0,
            16,
            0,
        ),
        sec(SHT_DYNAMIC, a, (dyn_off, dyn_end), S_DYNSTR, 0, 8, 16),
        sec(SHT_STRTAB, 0, (shstr_off, shstr_end), 0, 0, 1, 0),
    ];
    let shoff = b.align(8);
    for (s, &name) in sections.iter().zip(&sh_names) {
        b.u32(name);
        b.u32(s.ty);
        b.u64(s.flags);
        b.u64(if s.flags & SHF_ALLOC != 0 {
            s.off as u64
        } else {
            0
        }); // sh_addr
        b.u64(s.off as u64);
        b.u64((s.end - s.off) as u64);
        b.u32(s.link);
        b.u32(s.info);
        b.u64(s.align);
        b.u64(s.entsize);
    }
    let total = b.0.len() as u64;

    // ELF header.
    let mut h = Buf::default();
    h.bytes(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]); // ELF64, LE, version 1, SYSV
    h.bytes(&[0; 8]);
    h.u16(3); // ET_DYN
    h.u16(183); // EM_AARCH64
    h.u32(1);
    h.u64(0); // e_entry
    h.u64(EHDR as u64); // e_phoff
    h.u64(shoff as u64);
    h.u32(0); // e_flags
    h.u16(EHDR as u16);
    h.u16(PHDR as u16);
    h.u16(NPHDR as u16);
    h.u16(SHDR as u16);
    h.u16(sections.len() as u16);
    h.u16(sections.len() as u16 - 1); // e_shstrndx
                                      // Program headers: (type, flags, off, size, align).
    const PF_X: u32 = 1;
    const PF_R: u32 = 4;
    let phdrs = [
        (1u32, PF_R | PF_X, 0u64, total, 4096u64), // PT_LOAD
        (2, PF_R, dyn_off as u64, (dyn_end - dyn_off) as u64, 8), // PT_DYNAMIC
        (4, PF_R, note_off as u64, (note_end - note_off) as u64, 4), // PT_NOTE
    ];
    for (ty, flags, off, size, align) in phdrs {
        h.u32(ty);
        h.u32(flags);
        h.u64(off);
        h.u64(off); // p_vaddr
        h.u64(off); // p_paddr
        h.u64(size);
        h.u64(size);
        h.u64(align);
    }
    assert_eq!(h.0.len(), EHDR + NPHDR * PHDR);
    b.0[..h.0.len()].copy_from_slice(&h.0);
    b.0
}
