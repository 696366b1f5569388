//! The ELF loader: validates an AArch64 ELF64 image and maps its PT_LOAD segments.
//! ET_EXEC loads at its link addresses, ET_DYN (static-PIE, or an interpreter) at a base
//! chosen by the caller.

use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use goblin::elf::{header, program_header as ph, Elf};

use super::layout::{is_user_range, page_down, page_up};
use super::mm::{Backing, Mm, VmaName, PROT_EXEC, PROT_READ, PROT_WRITE};

/// Why an image cannot be loaded. Every variant is a user error with a one-line message.
#[derive(Debug, PartialEq, Eq)]
pub enum LoadError {
    NotElf,
    Not64Bit,
    BigEndian,
    WrongMachine(u16),
    BadType(u16),
    Truncated,
    Malformed(String),
    NoSegments,
    OverlapsInfra {
        vaddr: u64,
        end: u64,
    },
    /// PT_PHDR (what AT_PHDR will point at) outside the user address range.
    PhdrInInfra {
        vaddr: u64,
    },
    OutOfMemory,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::NotElf => f.write_str("not an ELF file"),
            LoadError::Not64Bit => f.write_str("32-bit ELF; only 64-bit AArch64 programs run"),
            LoadError::BigEndian => f.write_str("big-endian ELF; only little-endian AArch64 runs"),
            LoadError::WrongMachine(m) => write!(
                f,
                "ELF for machine {m} ({}), not AArch64",
                header::machine_to_str(*m)
            ),
            LoadError::BadType(t) => write!(f, "ELF type {t} is not an executable"),
            LoadError::Truncated => f.write_str("truncated ELF file"),
            LoadError::Malformed(m) => write!(f, "malformed ELF: {m}"),
            LoadError::NoSegments => f.write_str("ELF has no loadable segments"),
            LoadError::OverlapsInfra { vaddr, end } => write!(
                f,
                "segment {vaddr:#x}..{end:#x} overlaps the reserved guest region"
            ),
            LoadError::PhdrInInfra { vaddr } => write!(
                f,
                "program headers (PT_PHDR) at {vaddr:#x} overlap the reserved guest region"
            ),
            LoadError::OutOfMemory => f.write_str("not enough guest memory for the image"),
        }
    }
}

/// What the stack builder and the vCPU need to know about a loaded image.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub entry: u64,
    /// Where the program headers are in guest memory (AT_PHDR).
    pub phdr: u64,
    pub phnum: u64,
    pub phent: u64,
    /// First byte past the highest segment (brk starts at the next page).
    pub end: u64,
    /// PT_INTERP, if any.
    pub interp: Option<String>,
}

/// Cheap header checks, so that every bad input gets a precise message.
fn check_ident(b: &[u8]) -> Result<(), LoadError> {
    if b.len() < 4 || &b[..4] != b"\x7fELF" {
        return Err(LoadError::NotElf);
    }
    if b.len() < header::SIZEOF_IDENT {
        return Err(LoadError::Truncated);
    }
    if b[header::EI_CLASS] != header::ELFCLASS64 {
        return Err(if b[header::EI_CLASS] == header::ELFCLASS32 {
            LoadError::Not64Bit
        } else {
            LoadError::Malformed("bad ELF class".into())
        });
    }
    if b[header::EI_DATA] != header::ELFDATA2LSB {
        return Err(LoadError::BigEndian);
    }
    if b.len() < header::header64::SIZEOF_EHDR {
        return Err(LoadError::Truncated);
    }
    let machine = u16::from_le_bytes([b[18], b[19]]);
    if machine != header::EM_AARCH64 {
        return Err(LoadError::WrongMachine(machine));
    }
    let ty = u16::from_le_bytes([b[16], b[17]]);
    if ty != header::ET_EXEC && ty != header::ET_DYN {
        return Err(LoadError::BadType(ty));
    }
    Ok(())
}

/// Span of the PT_LOAD segments: (lowest page, highest end).
fn load_span(elf: &Elf) -> Option<(u64, u64)> {
    let loads = elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == ph::PT_LOAD);
    let lo = loads.clone().map(|p| page_down(p.p_vaddr)).min()?;
    let hi = loads.map(|p| p.p_vaddr.saturating_add(p.p_memsz)).max()?;
    Some((lo, hi))
}

/// Parses and validates `bytes`; returns the parsed ELF.
pub fn parse(bytes: &[u8]) -> Result<Elf<'_>, LoadError> {
    check_ident(bytes)?;
    let elf = Elf::parse(bytes).map_err(|e| match e {
        goblin::error::Error::Scroll(_) => LoadError::Truncated,
        goblin::error::Error::Malformed(m) if m.contains("offset") || m.contains("size") => {
            LoadError::Truncated
        }
        other => LoadError::Malformed(other.to_string()),
    })?;
    let phend = elf
        .header
        .e_phoff
        .checked_add(u64::from(elf.header.e_phnum) * u64::from(elf.header.e_phentsize));
    if phend.is_none_or(|e| e > bytes.len() as u64) {
        return Err(LoadError::Truncated);
    }
    for p in elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == ph::PT_LOAD)
    {
        let fend = p.p_offset.checked_add(p.p_filesz);
        if fend.is_none_or(|e| e > bytes.len() as u64) {
            return Err(LoadError::Truncated);
        }
        if p.p_filesz > p.p_memsz {
            return Err(LoadError::Malformed(
                "segment file size exceeds memory size".into(),
            ));
        }
    }
    if load_span(&elf).is_none() {
        return Err(LoadError::NoSegments);
    }
    check_interp(&elf, bytes)?;
    Ok(elf)
}

/// Linux's checks of the first PT_INTERP (`load_elf_binary`): 2 to PATH_MAX bytes, inside
/// the file, NUL-terminated; anything else is ENOEXEC.
fn check_interp(elf: &Elf, bytes: &[u8]) -> Result<(), LoadError> {
    let Some(p) = elf
        .program_headers
        .iter()
        .find(|p| p.p_type == ph::PT_INTERP)
    else {
        return Ok(());
    };
    if p.p_filesz < 2 || p.p_filesz > 4096 {
        return Err(LoadError::Malformed(format!(
            "PT_INTERP of {} bytes",
            p.p_filesz
        )));
    }
    let end = p.p_offset.checked_add(p.p_filesz);
    if end.is_none_or(|e| e > bytes.len() as u64) {
        return Err(LoadError::Truncated);
    }
    let s = &bytes[p.p_offset as usize..(p.p_offset + p.p_filesz) as usize];
    if s.last() != Some(&0) || s[..s.len() - 1].contains(&0) {
        return Err(LoadError::Malformed(
            "PT_INTERP is not one NUL-terminated path".into(),
        ));
    }
    Ok(())
}

/// `bytes` as one printable line: printable ASCII as is, everything else `\xNN`.
pub fn escaped(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'\\' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Size of the address range an image needs (for choosing an ET_DYN base).
pub fn image_span(elf: &Elf) -> u64 {
    let (lo, hi) = load_span(elf).unwrap_or((0, 0));
    page_up(hi).unwrap_or(hi) - lo
}

/// True if the image must be placed by the loader (ET_DYN).
pub fn is_relocatable(elf: &Elf) -> bool {
    elf.header.e_type == header::ET_DYN
}

fn prot_of(flags: u32) -> u32 {
    let mut p = 0;
    if flags & ph::PF_R != 0 {
        p |= PROT_READ;
    }
    if flags & ph::PF_W != 0 {
        p |= PROT_WRITE;
    }
    if flags & ph::PF_X != 0 {
        p |= PROT_EXEC;
    }
    p
}

/// Maps the image's segments. For ET_DYN, `base` is where its lowest page goes; for
/// ET_EXEC it is ignored. `file` backs the mappings (for /proc/self/maps and madvise).
pub fn load(
    mm: &mut Mm,
    elf: &Elf,
    bytes: &[u8],
    base: u64,
    file: Option<(Arc<OwnedFd>, Arc<str>)>,
) -> Result<Loaded, LoadError> {
    let (lo, hi) = load_span(elf).ok_or(LoadError::NoSegments)?;
    let bias = if is_relocatable(elf) {
        base.wrapping_sub(lo)
    } else {
        0
    };
    // Validate every segment before touching memory.
    for p in elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == ph::PT_LOAD)
    {
        let start = page_down(p.p_vaddr.wrapping_add(bias));
        let end = p
            .p_vaddr
            .wrapping_add(bias)
            .checked_add(p.p_memsz)
            .and_then(page_up);
        let ok = end.is_some_and(|end| end > start && is_user_range(start, end - start));
        if !ok {
            return Err(LoadError::OverlapsInfra {
                vaddr: p.p_vaddr.wrapping_add(bias),
                end: p.p_vaddr.wrapping_add(bias).wrapping_add(p.p_memsz),
            });
        }
    }
    let phdr_size = u64::from(elf.header.e_phnum) * u64::from(elf.header.e_phentsize);
    if let Some(p) = elf.program_headers.iter().find(|p| p.p_type == ph::PT_PHDR) {
        let vaddr = p.p_vaddr.wrapping_add(bias);
        if !is_user_range(vaddr, p.p_memsz.max(phdr_size).max(1)) {
            return Err(LoadError::PhdrInInfra { vaddr });
        }
    }
    let mut mapped_end = 0u64;
    let mut prev_prot = 0u32;
    // In address order: every page below `mapped_end` from a segment's start on is then
    // mapped by an earlier one (out-of-order and overlapping segments load, as on Linux).
    let mut loads: Vec<_> = elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == ph::PT_LOAD)
        .collect();
    loads.sort_by_key(|p| p.p_vaddr);
    let raw_fd = file.as_ref().map(|(fd, _)| fd.as_raw_fd());
    for p in loads {
        let vaddr = p.p_vaddr + bias;
        let start = page_down(vaddr);
        let end = page_up(vaddr + p.p_memsz).expect("validated");
        let prot = prot_of(p.p_flags);
        let (name, backing) = match &file {
            Some((fd, path)) => (
                VmaName::Path(path.clone()),
                Backing::File {
                    fd: fd.clone(),
                    offset: page_down(p.p_offset),
                },
            ),
            None => (VmaName::None, Backing::Anon),
        };
        let fresh = start.max(mapped_end);
        if fresh < end {
            mm.map_fixed(fresh, end - fresh, prot, false, backing, name)
                .map_err(|_| LoadError::OutOfMemory)?;
        }
        if start < mapped_end {
            // Page shared with the previous segment: it needs both permissions.
            let shared_end = mapped_end.min(end);
            mm.protect(start, shared_end - start, prot | prev_prot)
                .map_err(|_| LoadError::OutOfMemory)?;
        }
        copy_segment(
            mm,
            vaddr,
            bytes,
            p.p_offset,
            p.p_filesz,
            raw_fd.filter(|_| fresh <= vaddr),
        );
        mapped_end = mapped_end.max(end);
        prev_prot = prot;
    }
    let phnum = u64::from(elf.header.e_phnum);
    let phent = u64::from(elf.header.e_phentsize);
    let phdr = elf
        .program_headers
        .iter()
        .find(|p| p.p_type == ph::PT_PHDR)
        .map(|p| p.p_vaddr + bias)
        .or_else(|| {
            // No PT_PHDR: the headers are inside the first segment that covers e_phoff.
            elf.program_headers
                .iter()
                .filter(|p| p.p_type == ph::PT_LOAD)
                .find(|p| {
                    p.p_offset <= elf.header.e_phoff && elf.header.e_phoff < p.p_offset + p.p_filesz
                })
                .map(|p| p.p_vaddr + bias + (elf.header.e_phoff - p.p_offset))
        })
        .unwrap_or(0);
    Ok(Loaded {
        entry: elf.entry.wrapping_add(bias),
        phdr,
        phnum,
        phent,
        end: hi + bias,
        interp: elf.interpreter.map(str::to_owned),
    })
}

/// Copies a segment's file bytes into guest memory (fresh, zero-filled pages), skipping
/// the file's holes: a sparse file's declared gigabytes are neither read nor touched.
/// The first and last pages are copied whole (they may be shared with another segment).
fn copy_segment(mm: &Mm, vaddr: u64, bytes: &[u8], off: u64, len: u64, fd: Option<RawFd>) {
    let copy = |from: u64, to: u64| {
        if from < to {
            mm.ram()
                .write(vaddr + (from - off), &bytes[from as usize..to as usize]);
        }
    };
    let end = off + len;
    // The page-aligned middle (in guest addresses) is where holes may be skipped.
    let mid_lo = off + (page_up(vaddr).unwrap_or(vaddr) - vaddr);
    let mid_hi = off + (page_down(vaddr + len).max(page_up(vaddr).unwrap_or(vaddr)) - vaddr);
    let (Some(fd), true) = (fd, mid_lo < mid_hi && mid_hi <= end) else {
        return copy(off, end);
    };
    copy(off, mid_lo);
    let mut pos = mid_lo;
    while pos < mid_hi {
        // SAFETY: no pointers: `fd` is the ELF file, open for the call.
        let data = unsafe { libc::lseek(fd, pos as libc::off_t, libc::SEEK_DATA) };
        if data < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO) {
                break; // only holes from here on
            }
            // No SEEK_DATA here: copy everything.
            copy(pos, mid_hi);
            break;
        }
        let data = (data as u64).min(mid_hi);
        // SAFETY: no pointers: `fd` is the ELF file, open for the call.
        let hole = unsafe { libc::lseek(fd, data as libc::off_t, libc::SEEK_HOLE) };
        let hole = if hole < 0 {
            mid_hi
        } else {
            (hole as u64).min(mid_hi)
        };
        copy(data, hole);
        if hole <= pos {
            copy(pos, mid_hi);
            break;
        }
        pos = hole;
    }
    copy(mid_hi, end);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_headers() {
        assert_eq!(check_ident(b"#!/bin/sh\n"), Err(LoadError::NotElf));
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = header::ELFCLASS32;
        assert_eq!(check_ident(&h), Err(LoadError::Not64Bit));
        h[4] = header::ELFCLASS64;
        h[5] = header::ELFDATA2LSB;
        h[18..20].copy_from_slice(&header::EM_X86_64.to_le_bytes());
        assert_eq!(
            check_ident(&h),
            Err(LoadError::WrongMachine(header::EM_X86_64))
        );
        h[18..20].copy_from_slice(&header::EM_AARCH64.to_le_bytes());
        h[16..18].copy_from_slice(&header::ET_REL.to_le_bytes());
        assert_eq!(check_ident(&h), Err(LoadError::BadType(header::ET_REL)));
        assert_eq!(check_ident(&h[..10]), Err(LoadError::Truncated));
    }
}
