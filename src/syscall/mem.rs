//! The mmap family and brk. Placement and permissions live in `guest::mm`; this module
//! validates arguments the way Linux does and fills file mappings.

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;

use super::{host_ret, Ctx, SysResult};
use crate::errno::Errno;
use crate::guest::layout::{page_up, NULL_GUARD_END, PAGE_SIZE};
use crate::guest::mm::{Backing, VmaName, PROT_EXEC, PROT_READ, PROT_WRITE};

const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_SHARED_VALIDATE: u64 = 0x03;
const MAP_TYPE: u64 = 0x0f;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
/// Flags MAP_SHARED_VALIDATE accepts (Linux's LEGACY_MAP_MASK plus the newer ones).
const MAP_KNOWN: u64 = 0x1f_ff7f;
/// PROT_BTI / PROT_MTE (AArch64) are accepted only where advertised: never here.
const PROT_ALL: u64 = (PROT_READ | PROT_WRITE | PROT_EXEC) as u64;

pub fn brk(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    Ok(ctx.proc.mm().set_brk(a[0]))
}

pub fn mmap(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (addr, len, prot, flags, fd, off) = (a[0], a[1], a[2], a[3], a[4] as i32, a[5]);
    if prot & !PROT_ALL != 0 || len == 0 || off % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    let shared = match flags & MAP_TYPE {
        MAP_SHARED => true,
        MAP_PRIVATE => false,
        MAP_SHARED_VALIDATE if flags & !MAP_KNOWN == 0 => true,
        MAP_SHARED_VALIDATE => return Err(Errno::EOPNOTSUPP),
        _ => return Err(Errno::EINVAL),
    };
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    let prot = prot as u32;
    let anon = flags & MAP_ANONYMOUS != 0;

    // The file, if any, is checked before the address space changes.
    let file = if anon && shared {
        // MAP_SHARED|MAP_ANONYMOUS: a memfd of its own, mapped like a shared file, so a
        // fork child shares it (host fork() keeps MAP_SHARED mappings shared; the spawn
        // path sends the fd) as Linux's shmem-backed mapping is shared.
        Some(Arc::new(shared_anon(len)?))
    } else if anon {
        None
    } else {
        let f = ctx.file(fd as u64)?;
        // SAFETY: F_GETFL takes no argument; `f` keeps the fd open.
        let fl = unsafe { libc::fcntl(f.raw(), libc::F_GETFL) };
        let acc = fl & libc::O_ACCMODE;
        if acc == libc::O_WRONLY || (shared && prot & PROT_WRITE != 0 && acc != libc::O_RDWR) {
            return Err(Errno::EACCES);
        }
        // SAFETY: struct stat is integers and timespecs, valid zeroed.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat writes one struct stat into `st`, a local of that type; `f` keeps the
        // fd open.
        host_ret(unsafe { libc::fstat(f.raw(), &mut st) } as i64)?;
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            return Err(Errno::ENODEV);
        }
        // SAFETY: F_DUPFD_CLOEXEC takes an int; `f` keeps the fd open.
        let dup = unsafe { libc::fcntl(f.raw(), libc::F_DUPFD_CLOEXEC, 3) };
        host_ret(dup as i64)?;
        // SAFETY: the dup above succeeded (checked): `dup` is a new fd owned by nobody else.
        Some(Arc::new(unsafe { OwnedFd::from_raw_fd(dup) }))
    };

    let mut mm = ctx.proc.mm();
    let start = if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0 {
        if addr % PAGE_SIZE != 0 {
            return Err(Errno::EINVAL);
        }
        if addr < NULL_GUARD_END {
            return Err(Errno::EPERM);
        }
        if flags & MAP_FIXED == 0 {
            // MAP_FIXED_NOREPLACE alone: fail rather than clobber.
            let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
            if mm.vmas().any(|(s, v)| s < end && v.end > addr) {
                return Err(Errno::EEXIST);
            }
        }
        addr
    } else {
        mm.find_free(len, addr & !(PAGE_SIZE - 1))?
    };
    let (backing, name) = match &file {
        Some(fd) => (
            Backing::File {
                fd: fd.clone(),
                // An anonymous mapping ignores the offset (its memfd starts at 0).
                offset: if anon { 0 } else { off },
            },
            VmaName::None,
        ),
        None => (Backing::Anon, VmaName::None),
    };
    mm.map_fixed(start, len, prot, shared, backing, name)?;
    if let (false, Some(fd)) = (shared, &file) {
        mm.fill_from_file(start, len, fd, off);
    }
    Ok(start)
}

/// A new memfd of `len` bytes behind a MAP_SHARED|MAP_ANONYMOUS mapping.
fn shared_anon(len: u64) -> Result<OwnedFd, Errno> {
    let fd = nix::sys::memfd::memfd_create(
        c"elfuse-shared-anon",
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
    )?;
    nix::unistd::ftruncate(&fd, len as libc::off_t)?;
    Ok(fd)
}

pub fn munmap(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    ctx.proc.mm().unmap(a[0], a[1]).map(|_| 0)
}

pub fn mprotect(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    if a[2] & !PROT_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    ctx.proc.mm().protect(a[0], a[1], a[2] as u32).map(|_| 0)
}

pub fn mremap(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const MREMAP_MAYMOVE: u64 = 1;
    const MREMAP_FIXED: u64 = 2;
    let flags = a[3];
    if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0 {
        return Err(Errno::EINVAL);
    }
    let fixed = (flags & MREMAP_FIXED != 0).then_some(a[4]);
    ctx.proc
        .mm()
        .remap(a[0], a[1], a[2], flags & MREMAP_MAYMOVE != 0, fixed)
}

pub fn madvise(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    ctx.proc.mm().advise(a[0], a[1], a[2] as i32).map(|_| 0)
}

/// Checks that `[addr, addr+len)` is page aligned and wholly mapped (ENOMEM otherwise).
fn mapped_range(ctx: &Ctx, addr: u64, len: u64) -> Result<(u64, u64), Errno> {
    if !addr.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    let end = page_up(addr.checked_add(len).ok_or(Errno::ENOMEM)?).ok_or(Errno::ENOMEM)?;
    if end > addr && !ctx.proc.mm().is_mapped(addr, end) {
        return Err(Errno::ENOMEM);
    }
    Ok((addr, end))
}

pub fn msync(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const MS_ASYNC: u64 = 1;
    const MS_INVALIDATE: u64 = 2;
    const MS_SYNC: u64 = 4;
    let flags = a[2];
    if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || flags & (MS_ASYNC | MS_SYNC) == (MS_ASYNC | MS_SYNC)
    {
        return Err(Errno::EINVAL);
    }
    let (s, e) = mapped_range(ctx, a[0], a[1])?;
    let host = if flags & MS_SYNC != 0 {
        libc::MS_SYNC
    } else {
        libc::MS_ASYNC
    };
    let host = host
        | if flags & MS_INVALIDATE != 0 {
            libc::MS_INVALIDATE
        } else {
            0
        };
    ctx.proc.mm().sync_range(s, e, host);
    Ok(0)
}

/// mlock/munlock: nothing is ever swapped out, so only the range is checked.
pub fn mlock(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let start = a[0] & !(PAGE_SIZE - 1);
    mapped_range(ctx, start, a[1] + (a[0] - start)).map(|_| 0)
}

pub fn mlockall(_ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const MCL_ALL: u64 = 1 | 2 | 4;
    // munlockall passes no argument (a[0] is whatever X0 held): only validate mlockall's.
    if a[0] & !MCL_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

pub fn mincore(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (s, e) = mapped_range(ctx, a[0], a[1])?;
    let pages = ((e - s) / PAGE_SIZE) as usize;
    ctx.write_bytes(a[2], &vec![1u8; pages])?;
    Ok(0)
}

/// pkey_mprotect: arm64 without FEAT_S1POE has no protection keys; as Linux then, key 0
/// (and -1, none) is plain mprotect and any other key EINVAL.
pub fn pkey_mprotect(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    if a[0] & (PAGE_SIZE - 1) != 0 {
        return Err(Errno::EINVAL);
    }
    if a[1] == 0 {
        return Ok(0);
    }
    if !matches!(a[3] as i32, -1 | 0) {
        return Err(Errno::EINVAL);
    }
    mprotect(ctx, a)
}

/// pkey_alloc: no key to hand out (ENOSPC), after Linux's argument checks.
pub fn pkey_alloc(_ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const PKEY_ACCESS_MASK: u64 = 3;
    if a[0] as u32 != 0 || (a[1] as u32 as u64) & !PKEY_ACCESS_MASK != 0 {
        return Err(Errno::EINVAL);
    }
    Err(Errno::ENOSPC)
}

/// pkey_free: no key was ever allocated.
pub fn pkey_free(_ctx: &mut Ctx, _a: [u64; 6]) -> SysResult {
    Err(Errno::EINVAL)
}

/// remap_file_pages: as Linux emulates it since 4.0, a MAP_SHARED|MAP_FIXED mapping of the
/// same file at `pgoff` over `[start, start + size)`, which must lie in shared file
/// mappings of one file (EINVAL otherwise); `prot` must be 0 and the protection is kept.
pub fn remap_file_pages(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (start, size, prot, pgoff) = (a[0] & !(PAGE_SIZE - 1), a[1] & !(PAGE_SIZE - 1), a[2], a[3]);
    if prot != 0 {
        return Err(Errno::EINVAL);
    }
    let end = start
        .checked_add(size)
        .filter(|&e| e > start)
        .ok_or(Errno::EINVAL)?;
    let offset = pgoff
        .checked_add(size / PAGE_SIZE)
        .and_then(|_| pgoff.checked_mul(PAGE_SIZE))
        .ok_or(Errno::EINVAL)?;
    let mut mm = ctx.proc.mm();
    let (fd, vprot, name) = {
        let mut covered = start;
        let mut found: Option<(Arc<OwnedFd>, u32, VmaName)> = None;
        for (s, v) in mm.vmas() {
            if v.end <= covered || s >= end {
                continue;
            }
            let Backing::File { fd, .. } = &v.backing else {
                return Err(Errno::EINVAL);
            };
            let same = found
                .as_ref()
                .is_none_or(|(f, p, _)| Arc::ptr_eq(f, fd) && *p == v.prot);
            if s > covered || !v.shared || !same {
                return Err(Errno::EINVAL);
            }
            if found.is_none() {
                found = Some((fd.clone(), v.prot, v.name.clone()));
            }
            covered = v.end;
            if covered >= end {
                break;
            }
        }
        match found {
            Some(f) if covered >= end => f,
            _ => return Err(Errno::EINVAL),
        }
    };
    let backing = Backing::File { fd, offset };
    mm.map_fixed(start, size, vprot, true, backing, name)?;
    Ok(0)
}
