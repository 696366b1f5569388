//! process_vm_readv and process_vm_writev: guest memory, through the guest's checks (the
//! reserved region and unmapped pages are EFAULT, as anything the guest cannot access).
//! Another elfuse process's guest memory is asked of it over the peer channel
//! (`procremote::mem`), checked there against its own mappings; a host process that is
//! not elfuse is EPERM (its memory is no guest's), as when ptrace access is denied.

use super::procremote::MEM_CHUNK;
use super::{Ctx, SysResult};
use crate::errno::Errno;

/// The iovec array, its lengths summing to at most SSIZE_MAX (EINVAL).
fn raw_iovecs(ctx: &Ctx, va: u64, cnt: u64) -> Result<Vec<(u64, u64)>, Errno> {
    let v = super::iov::iovec_array(ctx, va, cnt)?;
    let mut total = 0u64;
    for &(_, len) in &v {
        total = total.checked_add(len).ok_or(Errno::EINVAL)?;
        if total > i64::MAX as u64 {
            return Err(Errno::EINVAL);
        }
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
    let other = pid != ctx.proc.pid;
    if other {
        let gone = || {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                == Err(nix::errno::Errno::ESRCH)
        };
        if pid <= 0 || gone() {
            return Err(Errno::ESRCH);
        }
        if !super::procpeer::answers(pid) {
            return Err(if super::sigremote::is_elfuse(pid) {
                Errno::ESRCH
            } else {
                Errno::EPERM
            });
        }
    }
    // The local side must be valid as a whole (Linux checks it first: EFAULT).
    for &(b, l) in &locals {
        ctx.user_slice(b, l as usize, read)?;
    }
    if other {
        return transfer_remote(ctx, pid, &locals, &remotes, read);
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

/// The transfer with elfuse process `pid`'s memory (`remotes`), a request per remote
/// piece of at most [`MEM_CHUNK`] bytes; stops at the first piece not done in full.
fn transfer_remote(
    ctx: &Ctx,
    pid: i32,
    locals: &[(u64, u64)],
    remotes: &[(u64, u64)],
    read: bool,
) -> SysResult {
    let local_total: u64 = locals.iter().map(|l| l.1).sum();
    let mut pos = 0u64; // bytes of the local side done
    'outer: for &(rbase, rlen) in remotes {
        let mut roff = 0u64;
        while roff < rlen {
            let n = (rlen - roff).min(local_total - pos).min(MEM_CHUNK as u64) as usize;
            if n == 0 {
                break 'outer;
            }
            let addr = rbase.wrapping_add(roff);
            let did = if read {
                match super::procremote::mem(pid, addr, n, None) {
                    Ok((bytes, _)) => {
                        let k = bytes.len().min(n);
                        local_copy(ctx, locals, pos, &mut bytes[..k].to_vec(), true)?;
                        k
                    }
                    Err(Errno::ESRCH) if pos == 0 => return Err(Errno::ESRCH),
                    Err(_) => 0,
                }
            } else {
                let mut data = vec![0u8; n];
                local_copy(ctx, locals, pos, &mut data, false)?;
                match super::procremote::mem(pid, addr, n, Some(&data)) {
                    Ok((_, put)) => (put as usize).min(n),
                    Err(Errno::ESRCH) if pos == 0 => return Err(Errno::ESRCH),
                    Err(_) => 0,
                }
            };
            pos += did as u64;
            roff += did as u64;
            if did < n {
                break 'outer;
            }
        }
    }
    let wanted = remotes.iter().map(|r| r.1).sum::<u64>().min(local_total);
    if pos == 0 && wanted > 0 {
        return Err(Errno::EFAULT);
    }
    Ok(pos)
}

/// Copies `buf` into (`into`) or out of the local iovecs, starting `pos` bytes in.
fn local_copy(
    ctx: &Ctx,
    locals: &[(u64, u64)],
    mut pos: u64,
    buf: &mut [u8],
    into: bool,
) -> Result<(), Errno> {
    let mut off = 0usize;
    for &(base, len) in locals {
        if off == buf.len() {
            break;
        }
        if pos >= len {
            pos -= len;
            continue;
        }
        let k = ((len - pos) as usize).min(buf.len() - off);
        if into {
            ctx.write_bytes(base + pos, &buf[off..off + k])?;
        } else {
            ctx.user_slice(base + pos, k, false)?
                .copy_to(&mut buf[off..off + k]);
        }
        off += k;
        pos = 0;
    }
    Ok(())
}

pub fn process_vm_readv(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    transfer(ctx, a, true)
}

pub fn process_vm_writev(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    transfer(ctx, a, false)
}
