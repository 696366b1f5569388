//! shmget, shmat, shmdt, shmctl: the host's SysV segments, attached into guest memory
//! (`guest::mm::shm`). `struct shmid64_ds`, `shminfo64` and `shm_info` are the same
//! bytes on AArch64 and x86_64. SHMLBA is one page on both.

use std::sync::Arc;

use super::{call, host, read_struct};
use crate::errno::Errno;
use crate::guest::layout::{is_user_range, page_up, NULL_GUARD_END, PAGE_SIZE};
use crate::guest::mm::{Backing, ShmSeg, VmaName, PROT_EXEC, PROT_READ, PROT_WRITE};
use crate::syscall::{Ctx, SysResult};

const SHM_RDONLY: u64 = 0o10000;
const SHM_RND: u64 = 0o20000;
const SHM_REMAP: u64 = 0o40000;
const SHM_EXEC: u64 = 0o100000;
const SHMLBA: u64 = PAGE_SIZE;

const IPC_RMID: i32 = 0;
const IPC_SET: i32 = 1;
const IPC_STAT: i32 = 2;
const IPC_INFO: i32 = 3;
const SHM_LOCK: i32 = 11;
const SHM_UNLOCK: i32 = 12;
const SHM_STAT: i32 = 13;
const SHM_INFO: i32 = 14;
const SHM_STAT_ANY: i32 = 15;

/// sizeof(struct shmid64_ds), (struct shminfo64), (struct shm_info).
const SHMID_DS: usize = 112;
const SHMINFO64: usize = 72;
const SHM_INFO_SIZE: usize = 48;

pub fn shmget(_ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    call(
        host::SYS_shmget,
        [a[0] as i32 as u64, a[1], a[2] as i32 as u64, 0, 0, 0],
    )
}

/// The segment's `shmid64_ds` (its key and size) as the host reports it.
fn stat(id: i32) -> Result<[u8; SHMID_DS], Errno> {
    let mut ds = [0u8; SHMID_DS];
    call(
        host::SYS_shmctl,
        [id as u64, IPC_STAT as u64, ds.as_mut_ptr() as u64, 0, 0, 0],
    )?;
    Ok(ds)
}

/// A host attachment anywhere, made to check the id and the caller's permissions the
/// host's way and to keep the segment alive (an IPC_RMID'd one is destroyed at its
/// last detach) until the guest's own attachment exists; detached on drop.
struct Probe(*mut libc::c_void, usize);

impl Drop for Probe {
    fn drop(&mut self) {
        // SAFETY: the probe attachment, used by nothing else.
        unsafe { libc::munmap(self.0, self.1) };
    }
}

pub fn shmat(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (id, mut addr, flg) = (a[0] as i32, a[1], a[2]);
    if id < 0 {
        return Err(Errno::EINVAL);
    }
    // do_shmat's order: the address first, then the segment.
    if addr != 0 {
        if addr & (SHMLBA - 1) != 0 {
            if flg & SHM_RND == 0 {
                return Err(Errno::EINVAL);
            }
            addr &= !(SHMLBA - 1);
            if addr == 0 && flg & SHM_REMAP != 0 {
                return Err(Errno::EINVAL);
            }
        }
    } else if flg & SHM_REMAP != 0 {
        return Err(Errno::EINVAL);
    }
    let host_flg = flg & (SHM_RDONLY | SHM_EXEC);
    let tmp = call(host::SYS_shmat, [id as u64, 0, host_flg, 0, 0, 0])?;
    let ds = stat(id);
    let size = ds
        .map(|d| u64::from_le_bytes(d[48..56].try_into().unwrap()))
        .unwrap_or(0);
    let probe = Probe(
        tmp as *mut libc::c_void,
        page_up(size).unwrap_or(0) as usize,
    );
    let ds = ds?;
    let key = i32::from_le_bytes(ds[0..4].try_into().unwrap());
    let len = page_up(size).ok_or(Errno::EINVAL)?;

    let mut mm = ctx.proc.mm();
    let start = if addr != 0 {
        let end = addr.checked_add(size).ok_or(Errno::EINVAL)?;
        if flg & SHM_REMAP == 0 && mm.vmas().any(|(s, v)| s < end && v.end > addr) {
            return Err(Errno::EINVAL);
        }
        if addr < NULL_GUARD_END {
            return Err(Errno::EPERM);
        }
        if !is_user_range(addr, len) {
            return Err(Errno::ENOMEM);
        }
        addr
    } else {
        mm.find_free(len, 0)?
    };
    let writable = flg & SHM_RDONLY == 0;
    let prot = PROT_READ
        | if writable { PROT_WRITE } else { 0 }
        | if flg & SHM_EXEC != 0 { PROT_EXEC } else { 0 };
    let seg = Arc::new(ShmSeg { id, size, writable });
    // As Linux names the mapping in /proc/PID/maps.
    let name = VmaName::Path(format!("/SYSV{key:08x} (deleted)").as_str().into());
    mm.map_fixed(
        start,
        len,
        prot,
        true,
        Backing::Shm { seg, offset: 0 },
        name,
    )?;
    drop(mm);
    drop(probe);
    Ok(start)
}

pub fn shmdt(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    ctx.proc.mm().shm_detach(a[0]).map(|_| 0)
}

pub fn shmctl(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (id, cmd, buf) = (a[0] as i32, a[1] as i32, a[2]);
    let mut host_buf = [0u8; 128];
    let out = match cmd {
        IPC_RMID | SHM_LOCK | SHM_UNLOCK => 0,
        IPC_SET => {
            host_buf[..SHMID_DS].copy_from_slice(&read_struct::<SHMID_DS>(ctx, buf)?);
            0
        }
        IPC_STAT | SHM_STAT | SHM_STAT_ANY => SHMID_DS,
        IPC_INFO => SHMINFO64,
        SHM_INFO => SHM_INFO_SIZE,
        // Unknown commands (IPC_64 included, which neither architecture takes): the
        // host's EINVAL.
        _ => return call(host::SYS_shmctl, [id as u64, cmd as u64, 0, 0, 0, 0]),
    };
    let uses_buf = !matches!(cmd, IPC_RMID | SHM_LOCK | SHM_UNLOCK);
    let p = if uses_buf {
        host_buf.as_mut_ptr() as u64
    } else {
        0
    };
    let r = call(host::SYS_shmctl, [id as u64, cmd as u64, p, 0, 0, 0])?;
    if out > 0 {
        ctx.write_bytes(buf, &host_buf[..out])?;
    }
    Ok(r)
}
