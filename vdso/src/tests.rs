//! The image parses as a shared object with the exports, versions and hash tables that
//! glibc and musl look for.

use goblin::elf::Elf;

use super::*;

fn img() -> VdsoImage {
    build((6, 8, 0))
}

#[test]
fn goblin_sees_dynsyms_versions_and_soname() {
    let img = img();
    let elf = Elf::parse(&img.bytes).expect("goblin parses the vDSO");
    assert_eq!(elf.header.e_type, goblin::elf::header::ET_DYN);
    assert_eq!(elf.header.e_machine, goblin::elf::header::EM_AARCH64);
    assert_eq!(elf.soname, Some(VDSO_SONAME));
    let types: Vec<u32> = elf.program_headers.iter().map(|p| p.p_type).collect();
    assert_eq!(types, [1, 2, 4]); // PT_LOAD, PT_DYNAMIC, PT_NOTE
    assert_eq!(
        elf.program_headers[1].p_flags & 2,
        0,
        "PT_DYNAMIC must be read-only"
    );

    let names: Vec<&str> = elf
        .dynsyms
        .iter()
        .skip(1)
        .map(|s| elf.dynstrtab.get_at(s.st_name).unwrap())
        .collect();
    assert_eq!(names, SYMBOLS);
    let text = elf
        .section_headers
        .iter()
        .find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".text"))
        .expect(".text");
    for s in elf.dynsyms.iter().skip(1) {
        assert!(s.is_function() && s.st_bind() == goblin::elf::sym::STB_GLOBAL);
        assert!(
            s.st_value >= text.sh_addr && s.st_value + s.st_size <= text.sh_addr + text.sh_size
        );
        assert!(s.st_size > 0);
    }

    // Version definitions: BASE (the soname) and LINUX_2.6.39; every export uses index 2.
    let verdef = elf.verdef.as_ref().expect(".gnu.version_d");
    let defs: Vec<(u16, u16, String)> = verdef
        .iter()
        .map(|d| {
            let aux = d.iter().next().unwrap();
            (
                d.vd_ndx,
                d.vd_flags,
                elf.dynstrtab.get_at(aux.vda_name).unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        defs,
        [
            (1, 1, VDSO_SONAME.to_string()),
            (2, 0, VDSO_VERSION.to_string())
        ]
    );
    for d in verdef.iter() {
        let aux = d.iter().next().unwrap();
        let name = elf.dynstrtab.get_at(aux.vda_name).unwrap();
        assert_eq!(d.vd_hash, elf::elf_hash(name.as_bytes()));
    }
    let versym = elf.versym.as_ref().expect(".gnu.version");
    let v: Vec<u16> = versym.iter().map(|v| v.vs_val).collect();
    assert_eq!(v, [0, 2, 2, 2, 2, 2]);

    // The GNU ABI tag note.
    let notes: Vec<_> = elf
        .iter_note_headers(&img.bytes)
        .expect("notes")
        .map(|n| n.unwrap())
        .collect();
    assert_eq!(notes.len(), 1);
    assert_eq!((notes[0].name, notes[0].n_type), ("GNU", 1));
    assert_eq!(
        notes[0].desc,
        [0, 0, 0, 0, 6, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0]
    );
}

fn dyn_val(elf: &Elf, tag: u64) -> usize {
    elf.dynamic
        .as_ref()
        .unwrap()
        .dyns
        .iter()
        .find(|d| d.d_tag == tag)
        .unwrap_or_else(|| panic!("no dynamic tag {tag:#x}"))
        .d_val as usize
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

/// Looks every export up through DT_HASH the way musl does, and through DT_GNU_HASH
/// (bloom filter included) the way glibc does.
#[test]
fn hash_tables_find_every_symbol() {
    let img = img();
    let b = &img.bytes;
    let elf = Elf::parse(b).unwrap();
    let sym_name = |i: usize| {
        elf.dynstrtab
            .get_at(elf.dynsyms.get(i).unwrap().st_name)
            .unwrap()
    };

    let h = dyn_val(&elf, goblin::elf::dynamic::DT_HASH);
    let (nbucket, nchain) = (u32_at(b, h) as usize, u32_at(b, h + 4) as usize);
    assert_eq!(
        nchain,
        SYMBOLS.len() + 1,
        "musl takes the symbol count from nchain"
    );
    for name in SYMBOLS {
        let mut i = u32_at(
            b,
            h + 8 + 4 * (elf::elf_hash(name.as_bytes()) as usize % nbucket),
        );
        while i != 0 && sym_name(i as usize) != name {
            i = u32_at(b, h + 8 + 4 * nbucket + 4 * i as usize);
        }
        assert_ne!(i, 0, "DT_HASH misses {name}");
    }

    let g = dyn_val(&elf, goblin::elf::dynamic::DT_GNU_HASH);
    let (nb, symoff, bloom_n, shift) = (
        u32_at(b, g) as usize,
        u32_at(b, g + 4) as usize,
        u32_at(b, g + 8) as usize,
        u32_at(b, g + 12),
    );
    let bloom_at = g + 16;
    let buckets = bloom_at + 8 * bloom_n;
    let chains = buckets + 4 * nb;
    for name in SYMBOLS {
        let hv = elf::gnu_hash(name.as_bytes());
        let word = u64::from_le_bytes(
            b[bloom_at + 8 * ((hv as usize / 64) % bloom_n)..][..8]
                .try_into()
                .unwrap(),
        );
        let mask = (1u64 << (hv % 64)) | (1u64 << ((hv >> shift) % 64));
        assert_eq!(word & mask, mask, "bloom filter rejects {name}");
        let mut i = u32_at(b, buckets + 4 * (hv as usize % nb)) as usize;
        assert!(i >= symoff);
        let found = loop {
            let ch = u32_at(b, chains + 4 * (i - symoff));
            if ch | 1 == hv | 1 && sym_name(i) == name {
                break true;
            }
            if ch & 1 != 0 {
                break false;
            }
            i += 1;
        };
        assert!(found, "DT_GNU_HASH misses {name}");
    }
}

#[test]
fn host_offsets_point_at_the_code() {
    let img = img();
    let word = |o: u64| u32::from_le_bytes(img.bytes[o as usize..][..4].try_into().unwrap());
    assert_eq!(word(img.rt_sigreturn), 0xd280_1168); // mov x8, #139
    assert_eq!(word(img.fallback_ret - 4), 0xd400_0001); // svc #0
    let elf = Elf::parse(&img.bytes).unwrap();
    let sigret = elf.dynsyms.get(4).unwrap();
    assert_eq!(sigret.st_value, img.rt_sigreturn);
    assert!(img.map_size() >= img.bytes.len() as u64 && img.map_size().is_multiple_of(4096));
}
