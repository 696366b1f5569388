//! futex2 (Linux 6.7): futex_wake, futex_wait, futex_requeue, and the flag checks they
//! share with futex_waitv. Each becomes the legacy host op on the same word
//! (FUTEX_WAKE_BITSET, FUTEX_WAIT_BITSET, FUTEX_CMP_REQUEUE), which Linux keys the same
//! way, so futex2 and futex waiters and wakers meet, as on Linux; that also keeps them
//! working on hosts older than 6.7.
//!
//! Checks as Linux 6.7 makes them, in its order: unknown flag bits, a size other than
//! FUTEX2_SIZE_U32 (the only one Linux implements), a value or mask wider than the size,
//! and a zero mask are EINVAL; a misaligned word is EINVAL, an unmapped one EFAULT.
//! FUTEX2_NUMA and FUTEX2_MPOL (Linux 6.16, a node id after the word) are refused with
//! EINVAL, as Linux before 6.16 does.

use super::futex::{host, word};
use super::{Ctx, SysResult};
use crate::errno::Errno;

pub const FUTEX2_SIZE_MASK: u32 = 3;
pub const FUTEX2_SIZE_U32: u32 = 2;
pub const FUTEX2_PRIVATE: u32 = 128;
const FUTEX_REQUEUE_CMP: u32 = 4;
const FUTEX_WAIT_BITSET: u32 = 9;
const FUTEX_WAKE_BITSET: u32 = 10;
const FUTEX_CLOCK_REALTIME: u32 = 256;

/// The legacy private flag of futex2 `flags`, once they pass Linux's checks (flag bits,
/// then size) and `vals` fit in the size.
pub fn check_flags(flags: u32, vals: &[u64]) -> Result<u32, Errno> {
    if flags & !(FUTEX2_SIZE_MASK | FUTEX2_PRIVATE) != 0
        || flags & FUTEX2_SIZE_MASK != FUTEX2_SIZE_U32
        || vals.iter().any(|v| v >> 32 != 0)
    {
        return Err(Errno::EINVAL);
    }
    Ok(flags & FUTEX2_PRIVATE)
}

fn ret(r: i64) -> SysResult {
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r as u64)
    }
}

/// futex_wake(uaddr, mask, nr, flags): wakes up to `nr` waiters whose bitset meets
/// `mask` (nr 0 wakes none, unlike FUTEX_WAKE).
pub fn futex_wake(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (mask, nr, flags) = (a[1], a[2] as i32, a[3] as u32);
    let private = check_flags(flags, &[mask])?;
    if mask == 0 {
        return Err(Errno::EINVAL);
    }
    let uaddr = word(ctx, a[0], false)?;
    if nr <= 0 {
        // Linux's loop stops after the first wake for a negative count.
        if nr == 0 {
            return Ok(0);
        }
    }
    let n = nr.max(1) as u32;
    ret(host::futex(
        uaddr,
        FUTEX_WAKE_BITSET | private,
        n,
        0,
        std::ptr::null_mut(),
        mask as u32,
    ))
}

/// futex_wait(uaddr, val, mask, flags, timeout, clockid): sleeps while the word holds
/// `val`, until a wake meeting `mask` or the absolute `timeout` on `clockid`
/// (CLOCK_REALTIME or CLOCK_MONOTONIC).
pub fn futex_wait(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (val, mask, flags, clockid) = (a[1], a[2], a[3] as u32, a[5] as i32);
    let private = check_flags(flags, &[val, mask])?;
    let mut op = FUTEX_WAIT_BITSET | private;
    let ts = if a[4] != 0 {
        match clockid {
            libc::CLOCK_REALTIME => op |= FUTEX_CLOCK_REALTIME,
            libc::CLOCK_MONOTONIC => {}
            _ => return Err(Errno::EINVAL),
        }
        let [s, ns]: [i64; 2] = ctx.read_val(a[4])?;
        if s < 0 || !(0..1_000_000_000).contains(&ns) {
            return Err(Errno::EINVAL);
        }
        Some(libc::timespec {
            tv_sec: s,
            tv_nsec: ns,
        })
    } else {
        None
    };
    if mask == 0 {
        return Err(Errno::EINVAL);
    }
    let uaddr = word(ctx, a[0], false)?;
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    ret(host::futex(
        uaddr,
        op,
        val as u32,
        tsp as usize,
        std::ptr::null_mut(),
        mask as u32,
    ))
}

/// futex_requeue(waiters[2], flags, nr_wake, nr_requeue): if the first word holds
/// waiters[0].val, wakes `nr_wake` of its waiters and moves up to `nr_requeue` others to
/// the second word (FUTEX_CMP_REQUEUE); both entries must carry the same flags.
pub fn futex_requeue(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (flags, nr_wake, nr_requeue) = (a[1] as u32, a[2] as i32, a[3] as i32);
    if flags != 0 || a[0] == 0 {
        return Err(Errno::EINVAL);
    }
    // struct futex_waitv { u64 val; u64 uaddr; u32 flags; u32 __reserved; }
    let raw = ctx.read_bytes(a[0], 48)?;
    let mut ws = [(0u64, 0u64, 0u32); 2];
    for (i, e) in raw.chunks_exact(24).enumerate() {
        let val = u64::from_le_bytes(e[0..8].try_into().unwrap());
        let uaddr = u64::from_le_bytes(e[8..16].try_into().unwrap());
        let f = u32::from_le_bytes(e[16..20].try_into().unwrap());
        let reserved = u32::from_le_bytes(e[20..24].try_into().unwrap());
        if reserved != 0 {
            return Err(Errno::EINVAL);
        }
        check_flags(f, &[val])?;
        ws[i] = (val, uaddr, f);
    }
    if ws[0].2 != ws[1].2 || nr_wake < 0 || nr_requeue < 0 {
        return Err(Errno::EINVAL);
    }
    let u1 = word(ctx, ws[0].1, false)?;
    let u2 = word(ctx, ws[1].1, false)?;
    ret(host::futex(
        u1,
        FUTEX_REQUEUE_CMP | (ws[0].2 & FUTEX2_PRIVATE),
        nr_wake as u32,
        nr_requeue as usize,
        u2,
        ws[0].0 as u32,
    ))
}
