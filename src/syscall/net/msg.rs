//! Data transfer on sockets: sendto, recvfrom, sendmsg, recvmsg, sendmmsg, recvmmsg, and
//! ancillary data.
//!
//! `struct msghdr`, `struct mmsghdr` and `struct cmsghdr` have the same layout on AArch64
//! and x86_64 Linux (LP64; CMSG_ALIGN is 8 on both), so a control buffer crosses as bytes
//! with one translation: SCM_RIGHTS carries fd numbers. Outgoing, each guest fd is
//! resolved to its description's host fd (EBADF if it is not open), and the control
//! buffer is walked exactly as the kernel's `for_each_cmsghdr` walks it, so no header
//! reaches the host untranslated (a malformed one is EINVAL before anything is sent).
//! Incoming, the host fds become descriptions installed at the guest's lowest free fds by
//! the fd-table actor (`install_received`), CLOEXEC per MSG_CMSG_CLOEXEC (the host side is
//! always CLOEXEC); when the guest's RLIMIT_NOFILE stops the installs, the rest are closed
//! and MSG_CTRUNC is set, the SCM_RIGHTS header shortened to what was installed — Linux's
//! `scm_detach_fds`. SCM_CREDENTIALS needs nothing: guest pids, uids and gids are the
//! host's.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use elfuse_actors::fdtable::OpenFile;

use super::{addr, sock_ret, Dir};
use crate::errno::Errno;
use crate::syscall::iov::{iovecs, rw_len};
use crate::syscall::{Ctx, SysResult};

const SOL_SOCKET: i32 = 1;
const SCM_RIGHTS: i32 = 1;
const SCM_PIDFD: i32 = 4;
const MSG_DONTWAIT: u64 = 0x40;
const MSG_CTRUNC: u32 = 0x8;
const MSG_WAITFORONE: u64 = 0x10000;
const MSG_CMSG_CLOEXEC: u64 = 0x4000_0000;
const UIO_MAXIOV: u64 = 1024;
/// sizeof(struct cmsghdr) (also CMSG_LEN(0) and CMSG_ALIGN of it).
const CMSG_HDR: usize = 16;
/// sizeof(struct msghdr), sizeof(struct mmsghdr).
const MSGHDR: u64 = 56;
const MMSGHDR: u64 = 64;

fn cmsg_align(n: usize) -> usize {
    (n + 7) & !7
}

/// One control message: where it starts, its cmsg_len, level and type.
struct Cmsg {
    off: usize,
    len: usize,
    level: i32,
    kind: i32,
}

/// The control messages of `buf`, walked as the kernel's `for_each_cmsghdr` walks them.
/// `strict` (sending): a header failing CMSG_OK is EINVAL, as `__scm_send` says;
/// otherwise (a buffer the host filled) the walk stops there.
fn cmsgs(buf: &[u8], strict: bool) -> Result<Vec<Cmsg>, Errno> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + CMSG_HDR <= buf.len() {
        let h = &buf[off..off + CMSG_HDR];
        let len = u64::from_ne_bytes(h[..8].try_into().unwrap());
        if len < CMSG_HDR as u64 || len > (buf.len() - off) as u64 {
            if strict {
                return Err(Errno::EINVAL);
            }
            break;
        }
        out.push(Cmsg {
            off,
            len: len as usize,
            level: i32::from_ne_bytes(h[8..12].try_into().unwrap()),
            kind: i32::from_ne_bytes(h[12..16].try_into().unwrap()),
        });
        off += cmsg_align(len as usize);
    }
    Ok(out)
}

/// A message carrying fds: SCM_RIGHTS, or SCM_PIDFD (one pidfd the host installed).
fn is_rights(c: &Cmsg) -> bool {
    c.level == SOL_SOCKET && (c.kind == SCM_RIGHTS || c.kind == SCM_PIDFD)
}

/// The fd numbers of an SCM_RIGHTS message (its data, in 4-byte ints).
fn fd_slots(c: &Cmsg) -> std::ops::Range<usize> {
    let n = (c.len - CMSG_HDR) / 4;
    c.off + CMSG_HDR..c.off + CMSG_HDR + n * 4
}

/// Rewrites the guest fds of every SCM_RIGHTS message in `ctl` to host fds; the returned
/// descriptions keep those host fds open until the host call is done.
fn rights_out(ctx: &Ctx, ctl: &mut [u8]) -> Result<Vec<Arc<OpenFile>>, Errno> {
    let mut held = Vec::new();
    for c in cmsgs(ctl, true)? {
        if c.level != SOL_SOCKET || c.kind != SCM_RIGHTS {
            continue;
        }
        for at in fd_slots(&c).step_by(4) {
            let guest = i32::from_ne_bytes(ctl[at..at + 4].try_into().unwrap());
            let f = ctx.file(guest as u32 as u64)?;
            ctl[at..at + 4].copy_from_slice(&f.raw().to_ne_bytes());
            held.push(f);
        }
    }
    Ok(held)
}

/// Turns the host fds of a received control buffer into guest fds (see the module doc);
/// returns the control length the guest gets and whether it was truncated.
fn rights_in(ctx: &Ctx, ctl: &mut [u8], cloexec: bool) -> (usize, bool) {
    for c in cmsgs(ctl, false).unwrap_or_default() {
        if !is_rights(&c) {
            continue;
        }
        let slots: Vec<usize> = fd_slots(&c).step_by(4).collect();
        let files: Vec<Arc<OpenFile>> = slots
            .iter()
            .map(|&at| {
                let raw = i32::from_ne_bytes(ctl[at..at + 4].try_into().unwrap());
                // SAFETY: the host just received this fd for us; nothing else owns it.
                OpenFile::host(unsafe { OwnedFd::from_raw_fd(raw as RawFd) }, None)
            })
            .collect();
        let fds = ctx.fds().install_many(files, cloexec);
        for (&at, fd) in slots.iter().zip(&fds) {
            ctl[at..at + 4].copy_from_slice(&fd.to_ne_bytes());
        }
        if fds.len() < slots.len() {
            // scm_detach_fds: what fit stays, the header says so, nothing follows.
            if fds.is_empty() {
                return (c.off, true);
            }
            let len = CMSG_HDR + fds.len() * 4;
            ctl[c.off..c.off + 8].copy_from_slice(&(len as u64).to_ne_bytes());
            return ((c.off + cmsg_align(len)).min(ctl.len()), true);
        }
    }
    (ctl.len(), false)
}

pub fn sendto(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    let buf = ctx.user_slice(a[1], rw_len(a[2]), false)?;
    let to = addr::from_guest(ctx, a[4], if a[4] == 0 { 0 } else { a[5] }, false)?;
    let (p, len) = to
        .as_ref()
        .map_or((std::ptr::null(), 0), |h| (h.ptr(), h.len));
    // SAFETY: `buf` is checked guest memory; `p` is NULL or a live address of `len` bytes.
    let r = unsafe { libc::sendto(f.raw(), buf.as_ptr().cast(), buf.len(), a[3] as i32, p, len) };
    sock_ret(f.raw(), Dir::Send, r as i64)
}

pub fn recvfrom(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    let buf = ctx.user_slice(a[1], rw_len(a[2]), true)?;
    let mut name = [0u8; addr::SOCKADDR_MAX];
    let mut len = name.len() as libc::socklen_t;
    let flags = (a[3] | MSG_CMSG_CLOEXEC) as i32;
    // SAFETY: `buf` is checked guest memory; `name` has `len` bytes.
    let r = unsafe {
        libc::recvfrom(
            f.raw(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            flags,
            name.as_mut_ptr().cast(),
            &mut len,
        )
    };
    let n = sock_ret(f.raw(), Dir::Recv, r as i64)?;
    if a[4] != 0 {
        addr::write_guest(ctx, a[4], a[5], &name[..(len as usize).min(name.len())])?;
    }
    Ok(n)
}

/// The guest's `struct msghdr` at `va`, as eight-byte words.
fn read_msghdr(ctx: &Ctx, va: u64) -> Result<[u64; 7], Errno> {
    let m: [u64; 7] = ctx.read_val(va)?;
    if m[3] > UIO_MAXIOV {
        return Err(Errno::EMSGSIZE);
    }
    if m[5] > i32::MAX as u64 {
        return Err(Errno::ENOBUFS);
    }
    Ok(m)
}

fn send_one(ctx: &Ctx, fd: u64, msg_va: u64, flags: u64) -> SysResult {
    let f = ctx.file(fd)?;
    let m = read_msghdr(ctx, msg_va)?;
    let name = addr::from_guest(
        ctx,
        m[0],
        if m[0] == 0 { 0 } else { m[1] as u32 as u64 },
        false,
    )?;
    let mut iov = iovecs(ctx, m[2], m[3], false)?;
    let mut ctl = if m[5] == 0 {
        Vec::new()
    } else {
        ctx.read_bytes(m[4], m[5] as usize)?
    };
    let held = rights_out(ctx, &mut ctl)?;
    // SAFETY: zeroed is a valid msghdr; every pointer set below outlives the call.
    let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
    if let Some(n) = &name {
        h.msg_name = n.ptr().cast_mut().cast();
        h.msg_namelen = n.len;
    }
    h.msg_iov = iov.as_mut_ptr();
    h.msg_iovlen = iov.len();
    if !ctl.is_empty() {
        h.msg_control = ctl.as_mut_ptr().cast();
        h.msg_controllen = ctl.len();
    }
    // SAFETY: `h` describes checked guest buffers and host copies that live past the call.
    let r = unsafe { libc::sendmsg(f.raw(), &h, flags as i32) };
    drop(held);
    sock_ret(f.raw(), Dir::Send, r as i64)
}

fn recv_one(ctx: &Ctx, fd: u64, msg_va: u64, flags: u64) -> SysResult {
    let f = ctx.file(fd)?;
    let m = read_msghdr(ctx, msg_va)?;
    if m[0] != 0 && (m[1] as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let mut iov = iovecs(ctx, m[2], m[3], true)?;
    if m[5] != 0 {
        // The guest's control buffer must be writable (checked once, before receiving).
        ctx.user_slice(m[4], m[5] as usize, true)?;
    }
    let mut ctl = vec![0u8; m[5] as usize];
    let mut name = [0u8; addr::SOCKADDR_MAX];
    // SAFETY: zeroed is a valid msghdr; every pointer set below outlives the call.
    let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
    h.msg_name = name.as_mut_ptr().cast();
    h.msg_namelen = name.len() as u32;
    h.msg_iov = iov.as_mut_ptr();
    h.msg_iovlen = iov.len();
    if !ctl.is_empty() {
        h.msg_control = ctl.as_mut_ptr().cast();
        h.msg_controllen = ctl.len();
    }
    // SAFETY: `h` describes checked guest buffers and host buffers that live past the call.
    let r = unsafe { libc::recvmsg(f.raw(), &mut h, (flags | MSG_CMSG_CLOEXEC) as i32) };
    let n = sock_ret(f.raw(), Dir::Recv, r as i64)?;
    let got = h.msg_controllen.min(ctl.len());
    let (ctl_len, truncated) = rights_in(ctx, &mut ctl[..got], flags & MSG_CMSG_CLOEXEC != 0);
    // The host was always asked for MSG_CMSG_CLOEXEC, which Linux echoes in msg_flags:
    // the guest sees its own request.
    let mut msg_flags =
        (h.msg_flags as u32 & !(MSG_CMSG_CLOEXEC as u32)) | (flags & MSG_CMSG_CLOEXEC) as u32;
    if truncated {
        msg_flags |= MSG_CTRUNC;
    }
    if m[0] != 0 {
        let len = (h.msg_namelen as usize).min(name.len());
        addr::write_guest(ctx, m[0], msg_va + 8, &name[..len])?;
    }
    if ctl_len > 0 {
        ctx.write_bytes(m[4], &ctl[..ctl_len])?;
    }
    ctx.write_val(msg_va + 40, &(ctl_len as u64))?;
    ctx.write_val(msg_va + 48, &msg_flags)?;
    Ok(n)
}

pub fn sendmsg(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    send_one(ctx, a[0], a[1], a[2])
}

pub fn recvmsg(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    recv_one(ctx, a[0], a[1], a[2])
}

/// sendmmsg: one sendmsg per entry; after the first, an error ends the batch and the
/// count so far is the result (as Linux).
pub fn sendmmsg(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (fd, vec, vlen, flags) = (a[0], a[1], a[2].min(UIO_MAXIOV), a[3]);
    ctx.file(fd)?;
    let mut sent = 0;
    while sent < vlen {
        let va = vec + sent * MMSGHDR;
        match send_one(ctx, fd, va, flags) {
            Ok(n) => ctx.write_val(va + MSGHDR, &(n as u32))?,
            Err(e) if sent == 0 => return Err(e),
            Err(_) => break,
        }
        sent += 1;
    }
    Ok(sent)
}

/// recvmmsg: one recvmsg per entry; MSG_WAITFORONE makes the entries after the first
/// non-blocking; the timeout (checked after each datagram, as Linux does) ends the batch
/// and gets the time left written back.
pub fn recvmmsg(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (fd, vec, vlen, flags) = (a[0], a[1], a[2].min(UIO_MAXIOV), a[3]);
    ctx.file(fd)?;
    let timeout = if a[4] == 0 {
        None
    } else {
        let t = crate::syscall::time::read_ts(ctx, a[4])?;
        if t.tv_sec < 0 || !(0..1_000_000_000).contains(&t.tv_nsec) {
            return Err(Errno::EINVAL);
        }
        Some(std::time::Duration::new(t.tv_sec as u64, t.tv_nsec as u32))
    };
    let start = std::time::Instant::now();
    let mut got = 0;
    while got < vlen {
        let va = vec + got * MMSGHDR;
        let f = if got > 0 && flags & MSG_WAITFORONE != 0 {
            flags | MSG_DONTWAIT
        } else {
            flags
        };
        match recv_one(ctx, fd, va, f & !MSG_WAITFORONE) {
            Ok(n) => ctx.write_val(va + MSGHDR, &(n as u32))?,
            Err(e) if got == 0 => return Err(e),
            Err(_) => break,
        }
        got += 1;
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            break;
        }
    }
    if let Some(t) = timeout {
        let left = t.saturating_sub(start.elapsed());
        let ts = libc::timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        crate::syscall::time::write_ts(ctx, a[4], &ts)?;
    }
    Ok(got)
}
