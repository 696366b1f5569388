//! The parts of /proc that must describe the guest rather than elfuse. Everything else
//! under /proc is the host's (the openat row of the syscall table says so).
//!
//! The contents of the generated files of the guest's own /proc/<pid> (the tree is
//! `procnode`, opening is `procdir`).
//!
//! - `/proc/self/maps`: generated from the guest's mappings when opened, in Linux's
//!   format, with the infra reserve (shim code and data, EL1 stacks, page tables) shown
//!   as one `---p` mapping: it is there, and EL0 can neither read nor write it. glibc
//!   reads this file to find a thread's stack (`pthread_getattr_np`).
//!
//! - status, stat, statm: the host's lines for what the guest shares with its host
//!   process (ids, times, credentials), the guest's own for the rest (name, threads,
//!   signal masks, memory figures from its mappings, resident pages from the host's
//!   page residency of guest RAM).
//! - cmdline, environ, auxv: read live from the guest's stack, as Linux reads them.

use std::io::{Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

pub use super::procgen::{fdinfo, generate};
use crate::errno::Errno;
use crate::guest::layout::{INFRA_BASE, RAM_SIZE};
use crate::guest::mm::{Backing, Mm, VmaName, PROT_EXEC, PROT_READ, PROT_WRITE};

/// A read-only, seekable host fd holding `text` (an unlinked memfd, reopened read-only so
/// the guest's writes fail with EBADF as on /proc).
pub fn snapshot_fd(text: &[u8]) -> Result<OwnedFd, Errno> {
    let mut f = std::fs::File::from(nix::sys::memfd::memfd_create(
        c"elfuse-proc",
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
    )?);
    f.write_all(text)
        .and_then(|_| f.seek(SeekFrom::Start(0)).map(|_| ()))
        .map_err(|e| Errno::from_io(&e))?;
    let ro = format!("/proc/self/fd/{}\0", f.as_raw_fd());
    // SAFETY: `ro` ends in an explicit NUL, so it is a valid C string for the call.
    let r = unsafe { libc::open(ro.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if r < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a fresh host fd nobody else owns.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(r) })
}

/// `/proc/self/maps` for the guest address space `mm`. File mappings are named by the
/// file's absolute path as the guest sees it (under `sysroot`); adjacent anonymous
/// mappings that differ in nothing shown are one line, as the kernel merges them.
pub fn maps(mm: &Mm, sysroot: Option<&Path>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev: Option<(u64, u64, [char; 4], String)> = None;
    for (start, v) in mm.vmas() {
        let (offset, dev, ino) = match &v.backing {
            Backing::Anon => (0, 0, 0),
            // As Linux: the inode is the segment id.
            Backing::Shm { seg, offset } => (*offset, 0, seg.id as u32 as u64),
            Backing::File { fd, offset } => match nix::sys::stat::fstat(fd) {
                Ok(st) => (*offset, st.st_dev, st.st_ino),
                Err(_) => (*offset, 0, 0),
            },
        };
        let perms = [
            if v.prot & PROT_READ != 0 { 'r' } else { '-' },
            if v.prot & PROT_WRITE != 0 { 'w' } else { '-' },
            if v.prot & PROT_EXEC != 0 { 'x' } else { '-' },
            if v.shared { 's' } else { 'p' },
        ];
        let name = match (&v.name, &v.backing) {
            (VmaName::None, _) => String::new(),
            (VmaName::Heap, _) => "[heap]".into(),
            (VmaName::Stack, _) => "[stack]".into(),
            (VmaName::Path(p), Backing::File { fd, .. }) => {
                file_name(fd, sysroot).unwrap_or(p.to_string())
            }
            (VmaName::Path(p), Backing::Anon | Backing::Shm { .. }) => p.to_string(),
        };
        if matches!(v.backing, Backing::Anon) {
            match &mut prev {
                Some((_, end, pp, pn)) if *end == start && *pp == perms && *pn == name => {
                    *end = v.end;
                    continue;
                }
                _ => {}
            }
            flush(&mut out, prev.take());
            prev = Some((start, v.end, perms, name));
            continue;
        }
        flush(&mut out, prev.take());
        line(&mut out, start, v.end, perms, offset, dev, ino, &name);
    }
    flush(&mut out, prev.take());
    line(
        &mut out,
        INFRA_BASE,
        RAM_SIZE,
        ['-', '-', '-', 'p'],
        0,
        0,
        0,
        "",
    );
    out
}

/// Writes a pending anonymous line.
fn flush(out: &mut Vec<u8>, anon: Option<(u64, u64, [char; 4], String)>) {
    if let Some((start, end, perms, name)) = anon {
        line(out, start, end, perms, 0, 0, 0, &name);
    }
}

/// The absolute guest path of the file behind a mapping.
fn file_name(fd: &OwnedFd, sysroot: Option<&Path>) -> Option<String> {
    let host = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    let guest = crate::syscall::hostdir::guest_view_in(sysroot, &host);
    Some(String::from_utf8_lossy(&guest).into_owned())
}

/// One line in the kernel's format (`show_vma_header_prefix`): the name, if any, starts
/// in column 73.
#[allow(clippy::too_many_arguments)]
fn line(
    out: &mut Vec<u8>,
    start: u64,
    end: u64,
    perms: [char; 4],
    offset: u64,
    dev: u64,
    ino: u64,
    name: &str,
) {
    let [r, w, x, s] = perms;
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let mut l =
        format!("{start:08x}-{end:08x} {r}{w}{x}{s} {offset:08x} {major:02x}:{minor:02x} {ino} ");
    if !name.is_empty() {
        while l.len() < 73 {
            l.push(' ');
        }
        l.push_str(name);
    }
    l.push('\n');
    out.extend_from_slice(l.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_the_kernel_format() {
        let mut out = Vec::new();
        line(
            &mut out,
            0x400000,
            0x401000,
            ['r', '-', 'x', 'p'],
            0,
            0x801,
            42,
            "/bin/x",
        );
        line(
            &mut out,
            0x7f00_0000_0000,
            0x7f00_0000_1000,
            ['r', 'w', '-', 'p'],
            0,
            0,
            0,
            "",
        );
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.lines();
        let first = lines.next().unwrap();
        assert_eq!(&first[..44], "00400000-00401000 r-xp 00000000 08:01 42    ");
        assert_eq!(first.find("/bin/x"), Some(73));
        assert_eq!(
            lines.next(),
            Some("7f0000000000-7f0000001000 rw-p 00000000 00:00 0 ")
        );
    }
}
