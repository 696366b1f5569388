//! semget, semop, semtimedop, semctl: the host's semaphore sets (SEM_UNDO is kept by
//! the host per process, as a guest process is one). `struct semid64_ds` is the one
//! layout that differs: x86_64 pads each time with an unused word.

use super::{blocking, call, host, read_struct};
use crate::errno::Errno;
use crate::syscall::{Ctx, SysResult};

const IPC_RMID: i32 = 0;
const IPC_SET: i32 = 1;
const IPC_STAT: i32 = 2;
const IPC_INFO: i32 = 3;
const GETPID: i32 = 11;
const GETVAL: i32 = 12;
const GETALL: i32 = 13;
const GETNCNT: i32 = 14;
const GETZCNT: i32 = 15;
const SETVAL: i32 = 16;
const SETALL: i32 = 17;
const SEM_STAT: i32 = 18;
const SEM_INFO: i32 = 19;
const SEM_STAT_ANY: i32 = 20;

/// sizeof(struct semid64_ds): AArch64 (asm-generic) and x86_64.
const GUEST_DS: usize = 88;
const HOST_DS: usize = 104;
/// sizeof(struct seminfo), sizeof(struct sembuf).
const SEMINFO: usize = 40;
const SEMBUF: usize = 6;
/// Up to this many operations are read before the host checks their number.
const FEW_OPS: u32 = 1024;

/// The host's semid64_ds → the guest's: perm, otime, ctime, nsems (and two unused).
fn ds_to_guest(h: &[u8; HOST_DS]) -> [u8; GUEST_DS] {
    let mut g = [0u8; GUEST_DS];
    g[..48].copy_from_slice(&h[..48]);
    g[48..56].copy_from_slice(&h[48..56]); // sem_otime
    g[56..64].copy_from_slice(&h[64..72]); // sem_ctime
    g[64..72].copy_from_slice(&h[80..88]); // sem_nsems
    g
}

fn ds_to_host(g: &[u8; GUEST_DS]) -> [u8; HOST_DS] {
    let mut h = [0u8; HOST_DS];
    h[..48].copy_from_slice(&g[..48]);
    h[48..56].copy_from_slice(&g[48..56]);
    h[64..72].copy_from_slice(&g[56..64]);
    h[80..88].copy_from_slice(&g[64..72]);
    h
}

pub fn semget(_ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    call(
        host::SYS_semget,
        [
            a[0] as i32 as u64,
            a[1] as i32 as u64,
            a[2] as i32 as u64,
            0,
            0,
            0,
        ],
    )
}

/// The host's `struct seminfo` (IPC_INFO): its limits.
fn seminfo() -> Result<[i32; 10], Errno> {
    let mut si = [0i32; 10];
    call(
        host::SYS_semctl,
        [0, 0, IPC_INFO as u64, si.as_mut_ptr() as u64, 0, 0],
    )?;
    Ok(si)
}

pub fn semop(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    semtimedop(ctx, [a[0], a[1], a[2], 0, 0, 0])
}

pub fn semtimedop(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (id, sops, nsops, timeout) = (a[0] as i32, a[1], a[2] as u32, a[3]);
    if nsops < 1 || id < 0 {
        return Err(Errno::EINVAL);
    }
    // More operations than SEMOPM is E2BIG before anything is read. The host checks it
    // too: the limit is only asked here when the count could size a large copy, or
    // when the operations cannot be read (to tell E2BIG from EFAULT as Linux orders them).
    let too_many = || Ok::<bool, Errno>(nsops > seminfo()?[5].max(0) as u32);
    if nsops > FEW_OPS && too_many()? {
        return Err(Errno::E2BIG);
    }
    let ops = match ctx.read_bytes(sops, nsops as usize * SEMBUF) {
        Err(Errno::EFAULT) if too_many()? => return Err(Errno::E2BIG),
        r => r?,
    };
    let ts = match timeout {
        0 => None,
        t => Some(read_struct::<16>(ctx, t)?),
    };
    let tp = ts.as_ref().map_or(0, |t| t.as_ptr() as u64);
    // Interrupted by a signal, semop fails with EINTR whether a handler runs or not and
    // is never restarted (Linux's do_semtimedop).
    blocking(ctx, Errno::EINTR, || {
        host::call(
            host::SYS_semtimedop,
            [id as u64, ops.as_ptr() as u64, nsops as u64, tp, 0, 0],
        )
    })
}

/// The set's number of semaphores (GETALL and SETALL move that many values). IPC_STAT
/// needs read permission, which GETALL needs too but SETALL does not: without it, the
/// set is looked up by its index with SEM_STAT_ANY, which needs none (the index is the
/// id's low 15 bits, or 24 with `ipcmni_extend`; the set found must have the same id).
fn nsems(id: i32) -> Result<usize, Errno> {
    let mut h = [0u8; HOST_DS];
    let nsems = |h: &[u8; HOST_DS]| u64::from_le_bytes(h[80..88].try_into().unwrap()) as usize;
    let stat = |idx: i32, cmd: i32, h: &mut [u8; HOST_DS]| {
        call(
            host::SYS_semctl,
            [idx as u64, 0, cmd as u64, h.as_mut_ptr() as u64, 0, 0],
        )
    };
    match stat(id, IPC_STAT, &mut h) {
        Err(Errno::EACCES) => {
            for idx in [id & 0x7fff, id & 0xff_ffff] {
                if stat(idx, SEM_STAT_ANY, &mut h) == Ok(id as u64) {
                    return Ok(nsems(&h));
                }
            }
            Err(Errno::EACCES)
        }
        r => r.map(|_| nsems(&h)),
    }
}

pub fn semctl(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (id, num, cmd, arg) = (a[0] as i32, a[1] as i32 as u64, a[2] as i32, a[3]);
    let host = |arg: u64| call(host::SYS_semctl, [id as u64, num, cmd as u64, arg, 0, 0]);
    match cmd {
        IPC_RMID | GETPID | GETVAL | GETNCNT | GETZCNT | SETVAL => host(arg),
        IPC_SET => {
            let h = ds_to_host(&read_struct::<GUEST_DS>(ctx, arg)?);
            host(h.as_ptr() as u64)
        }
        IPC_STAT | SEM_STAT | SEM_STAT_ANY => {
            let mut h = [0u8; HOST_DS];
            let r = host(h.as_mut_ptr() as u64)?;
            ctx.write_bytes(arg, &ds_to_guest(&h))?;
            Ok(r)
        }
        IPC_INFO | SEM_INFO => {
            let mut si = [0u8; SEMINFO];
            let r = host(si.as_mut_ptr() as u64)?;
            ctx.write_bytes(arg, &si)?;
            Ok(r)
        }
        GETALL => {
            let mut v = vec![0u8; nsems(id)? * 2];
            let r = host(v.as_mut_ptr() as u64)?;
            ctx.write_bytes(arg, &v)?;
            Ok(r)
        }
        SETALL => {
            let v = ctx.read_bytes(arg, nsems(id)? * 2)?;
            host(v.as_ptr() as u64)
        }
        // Unknown commands (IPC_64 included): the host's EINVAL.
        _ => host(0),
    }
}
