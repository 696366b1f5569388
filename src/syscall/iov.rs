//! Guest buffers of the read/write family: Linux's per-call cap (MAX_RW_COUNT) and iovec
//! arrays read from the guest and checked, as guest-RAM slices or host iovecs.

use super::Ctx;
use crate::errno::Errno;
use crate::guest::slice::GuestSlice;

/// Linux caps a single transfer at MAX_RW_COUNT.
pub(crate) const MAX_RW: u64 = 0x7fff_f000;
pub(crate) const IOV_MAX: u64 = 1024;

/// A read/write length clamped to Linux's MAX_RW_COUNT.
pub(crate) fn rw_len(n: u64) -> usize {
    n.min(MAX_RW) as usize
}

/// A guest `struct iovec` array of `cnt` entries at `va` as (base, len) pairs: at most
/// IOV_MAX entries (EINVAL), the array itself readable (EFAULT).
pub(crate) fn iovec_array(ctx: &Ctx, va: u64, cnt: u64) -> Result<Vec<(u64, u64)>, Errno> {
    if cnt > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let raw = ctx.read_bytes(va, cnt as usize * 16)?;
    Ok(raw
        .chunks_exact(16)
        .map(|c| {
            let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
            (word(&c[..8]), word(&c[8..]))
        })
        .collect())
}

/// Reads a guest iovec array (at most IOV_MAX entries, MAX_RW bytes in all) and checks
/// each buffer: the guest RAM slices they name.
pub(crate) fn user_iovecs<'c>(
    ctx: &'c Ctx,
    va: u64,
    cnt: u64,
    write: bool,
) -> Result<Vec<GuestSlice<'c>>, Errno> {
    let array = iovec_array(ctx, va, cnt)?;
    let mut out = Vec::with_capacity(array.len());
    let mut total = 0u64;
    for (base, len) in array {
        if len > i64::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        let len = len.min(MAX_RW - total.min(MAX_RW));
        total += len;
        out.push(ctx.user_slice(base, len as usize, write)?);
    }
    Ok(out)
}

/// [`user_iovecs`] as host iovecs over guest RAM.
pub(crate) fn iovecs(ctx: &Ctx, va: u64, cnt: u64, write: bool) -> Result<Vec<libc::iovec>, Errno> {
    Ok(user_iovecs(ctx, va, cnt, write)?
        .iter()
        .map(GuestSlice::iovec)
        .collect())
}
