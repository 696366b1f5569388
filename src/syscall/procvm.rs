//! process_vm_readv and process_vm_writev: the guest's own memory only, through the
//! guest's checks (the reserved region and unmapped pages are EFAULT, as anything the
//! guest cannot access). Another process's memory is not reachable from here (its guest
//! RAM lives in another elfuse): EPERM, as when ptrace access is denied.

use super::{Ctx, SysResult};
use crate::errno::Errno;

const IOV_MAX: u64 = 1024;

fn raw_iovecs(ctx: &Ctx, va: u64, cnt: u64) -> Result<Vec<(u64, u64)>, Errno> {
    if cnt > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let raw = ctx.read_bytes(va, cnt as usize * 16)?;
    let mut v = Vec::with_capacity(cnt as usize);
    let mut total = 0u64;
    for c in raw.chunks_exact(16) {
        let base = u64::from_le_bytes(c[..8].try_into().unwrap());
        let len = u64::from_le_bytes(c[8..].try_into().unwrap());
        total = total.checked_add(len).ok_or(Errno::EINVAL)?;
        if total > i64::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        v.push((base, len));
    }
    Ok(v)
}

fn transfer(ctx: &Ctx, a: [u64; 6], read: bool) -> SysResult {
    let (pid, local, lcnt, remote, rcnt, flags) = (a[0] as i32, a[1], a[2], a[3], a[4], a[5]);
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let locals = raw_iovecs(ctx, local, lcnt)?;
    let remotes = raw_iovecs(ctx, remote, rcnt)?;
    if pid != ctx.proc.pid {
        let gone = || {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                == Err(nix::errno::Errno::ESRCH)
        };
        if pid <= 0 || gone() {
            return Err(Errno::ESRCH);
        }
        return Err(Errno::EPERM);
    }
    // The local side must be valid as a whole (Linux checks it first: EFAULT).
    for &(b, l) in &locals {
        ctx.user_slice(b, l as usize, read)?;
    }
    let (mut li, mut loff) = (0usize, 0u64);
    let mut done = 0u64;
    let mut buf = Vec::new();
    'outer: for &(rbase, rlen) in &remotes {
        let mut roff = 0u64;
        while roff < rlen {
            while li < locals.len() && loff == locals[li].1 {
                li += 1;
                loff = 0;
            }
            if li == locals.len() {
                break 'outer;
            }
            let ra = rbase.wrapping_add(roff);
            let page_left = 0x1000 - (ra & 0xfff);
            let n = (rlen - roff).min(locals[li].1 - loff).min(page_left);
            let la = locals[li].0 + loff;
            buf.resize(n as usize, 0);
            if read {
                let Ok(src) = ctx.user_slice(ra, n as usize, false) else {
                    break 'outer;
                };
                src.copy_to(&mut buf);
                ctx.write_bytes(la, &buf)?;
            } else {
                let Ok(dst) = ctx.user_slice(ra, n as usize, true) else {
                    break 'outer;
                };
                ctx.user_slice(la, n as usize, false)?.copy_to(&mut buf);
                dst.copy_from(&buf);
            }
            roff += n;
            loff += n;
            done += n;
        }
    }
    let wanted: u64 = remotes
        .iter()
        .map(|r| r.1)
        .sum::<u64>()
        .min(locals.iter().map(|l| l.1).sum());
    if done == 0 && wanted > 0 {
        return Err(Errno::EFAULT);
    }
    Ok(done)
}

pub fn process_vm_readv(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    transfer(ctx, a, true)
}

pub fn process_vm_writev(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    transfer(ctx, a, false)
}
