//! Sockets: every socket call of the AArch64 table.
//!
//! A guest socket is a host socket (a [`FileKind::Host`](elfuse_actors::fdtable::FileKind)
//! description in the guest's fd table, installed through the fd-table actor like any
//! other fd), so Linux's semantics for every family the host supports are Linux's own:
//! AF_UNIX, AF_INET/AF_INET6, AF_NETLINK (the guest sees the host's interfaces and
//! routes, as qemu-user's guests do), AF_PACKET where the host allows it. The kernel
//! checks family, type and protocol (EAFNOSUPPORT, EINVAL, EPROTONOSUPPORT) exactly as
//! Linux, because it is Linux. What elfuse translates:
//!
//! - fd numbers: guest fds in, guest fds out; SCM_RIGHTS in both directions
//!   ([`msg`]); the host socket is always CLOEXEC, the guest's flag lives in its table;
//! - AF_UNIX path names: guest paths, through `--sysroot` ([`addr`]);
//! - guest memory: every buffer is checked (EFAULT), nothing of elfuse's is reachable;
//!   options and ioctls whose arguments embed pointers are translated or refused
//!   ([`opt`], [`ioctl`]);
//! - interrupted calls: Linux's `sock_intr_errno` — restartable unless the socket has a
//!   timeout for that direction (SO_RCVTIMEO/SO_SNDTIMEO), then EINTR ([`intr`]).
//!
//! The structures (sockaddr_*, msghdr, mmsghdr, cmsghdr, ucred, linger, timeval,
//! tcp_info, ifreq) have the same layout on AArch64 and x86_64 Linux; a macOS host maps
//! them here.

pub mod addr;
pub mod ioctl;
pub mod msg;
pub mod opt;

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use elfuse_actors::fdtable::OpenFile;

use super::{fd_err, host_ret, Ctx, SysResult};
use crate::errno::Errno;

/// Guest SOCK_NONBLOCK and SOCK_CLOEXEC (asm-generic O_NONBLOCK, O_CLOEXEC).
const SOCK_NONBLOCK: u64 = 0o4000;
const SOCK_CLOEXEC: u64 = 0o2000000;
const SOCK_TYPE_MASK: u64 = 0xf;

/// The host flags and the guest's CLOEXEC for a type word's flag bits (socket,
/// socketpair, accept4); any other bit is EINVAL, as Linux.
fn type_flags(flags: u64) -> Result<(i32, bool), Errno> {
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let nonblock = if flags & SOCK_NONBLOCK != 0 {
        libc::SOCK_NONBLOCK
    } else {
        0
    };
    Ok((nonblock | libc::SOCK_CLOEXEC, flags & SOCK_CLOEXEC != 0))
}

/// A host fd a host call just created.
fn owned(r: i64) -> Result<OwnedFd, Errno> {
    let fd = host_ret(r)? as RawFd;
    // SAFETY: the host call just created this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Which timeout bounds a blocking call.
#[derive(Clone, Copy)]
pub(crate) enum Dir {
    Recv,
    Send,
}

/// A blocking socket call's host EINTR, as Linux's `sock_intr_errno(timeo)`: restartable
/// (ERESTARTSYS) when the socket waits forever, EINTR when it has a timeout.
pub(crate) fn intr(raw: RawFd, dir: Dir) -> Errno {
    let opt = match dir {
        Dir::Recv => libc::SO_RCVTIMEO,
        Dir::Send => libc::SO_SNDTIMEO,
    };
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: a timeval-sized out buffer and its length.
    let r = unsafe {
        libc::getsockopt(
            raw,
            libc::SOL_SOCKET,
            opt,
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
        )
    };
    if r == 0 && (tv.tv_sec != 0 || tv.tv_usec != 0) {
        Errno::EINTR
    } else {
        Errno::ERESTARTSYS
    }
}

/// A blocking socket call's host return value (see [`intr`]).
pub(crate) fn sock_ret(raw: RawFd, dir: Dir, r: i64) -> SysResult {
    if r >= 0 {
        return Ok(r as u64);
    }
    match Errno::last() {
        Errno::EINTR => Err(intr(raw, dir)),
        e => Err(e),
    }
}

/// The families a guest may open. Others are EAFNOSUPPORT, as on a kernel built without
/// them: some take guest addresses inside their option values or messages, which the host
/// would read in elfuse's own address space (AF_XDP's UMEM, AF_RDS's memory regions).
fn family_allowed(family: i32) -> bool {
    const AF_ALG: i32 = 38;
    const AF_VSOCK: i32 = 40;
    matches!(
        family,
        libc::AF_UNIX
            | libc::AF_INET
            | libc::AF_INET6
            | libc::AF_NETLINK
            | libc::AF_PACKET
            | AF_ALG
            | AF_VSOCK
    )
}

/// socket's and socketpair's (family, host type word, protocol) and the guest's CLOEXEC,
/// checked in Linux's order (flag bits first, then the family).
fn socket_args(a: &[u64; 6]) -> Result<(i32, i32, i32, bool), Errno> {
    let (family, ty, proto) = (a[0] as i32, a[1] as u32 as u64, a[2] as i32);
    let (host_flags, cloexec) = type_flags(ty & !SOCK_TYPE_MASK)?;
    if !family_allowed(family) {
        return Err(Errno::EAFNOSUPPORT);
    }
    Ok((
        family,
        (ty & SOCK_TYPE_MASK) as i32 | host_flags,
        proto,
        cloexec,
    ))
}

pub fn socket(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (family, ty, proto, cloexec) = socket_args(&a)?;
    // SAFETY: plain host call.
    let fd = owned(unsafe { libc::socket(family, ty, proto) } as i64)?;
    ctx.install(OpenFile::host(fd, None), cloexec)
}

pub fn socketpair(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (family, ty, proto, cloexec) = socket_args(&a)?;
    let mut sv = [0i32; 2];
    // SAFETY: `sv` has room for the two fds.
    let r = unsafe { libc::socketpair(family, ty, proto, sv.as_mut_ptr()) };
    host_ret(r as i64)?;
    // SAFETY: both fds were just created and are owned by nobody else.
    let (x, y) = unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) };
    // Linux writes the pair before installing it; a bad pointer leaks nothing here
    // either: the check comes first, the descriptions drop with the error.
    ctx.user_slice(a[3], 8, true)?;
    let (gx, gy) = ctx
        .fds()
        .install_pair(OpenFile::host(x, None), OpenFile::host(y, None), cloexec)
        .map_err(fd_err)?;
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&gx.to_le_bytes());
    out[4..].copy_from_slice(&gy.to_le_bytes());
    ctx.write_bytes(a[3], &out)?;
    Ok(0)
}

/// An address bind and connect require: NULL with a length is EFAULT (Linux copies it).
fn required(ctx: &Ctx, va: u64, len: u64, create: bool) -> Result<Option<addr::HostAddr>, Errno> {
    match addr::from_guest(ctx, va, len, create)? {
        None if va == 0 && len != 0 => Err(Errno::EFAULT),
        a => Ok(a),
    }
}

fn addr_parts(a: &Option<addr::HostAddr>) -> (*const libc::sockaddr, libc::socklen_t) {
    a.as_ref()
        .map_or((std::ptr::null(), 0), |h| (h.ptr(), h.len))
}

pub fn bind(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    let host = required(ctx, a[1], a[2], true)?;
    let (p, len) = addr_parts(&host);
    // SAFETY: `p` is NULL or `len` bytes of a live address.
    host_ret(unsafe { libc::bind(f.raw(), p, len) } as i64)
}

pub fn connect(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    let host = required(ctx, a[1], a[2], false)?;
    let (p, len) = addr_parts(&host);
    // SAFETY: as in bind.
    let r = unsafe { libc::connect(f.raw(), p, len) };
    sock_ret(f.raw(), Dir::Send, r as i64)
}

pub fn listen(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    // SAFETY: plain host call.
    host_ret(unsafe { libc::listen(f.raw(), a[1] as i32) } as i64)
}

pub fn accept(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    accept4(ctx, [a[0], a[1], a[2], 0, 0, 0])
}

pub fn accept4(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (host_flags, cloexec) = type_flags(a[3] as u32 as u64)?;
    let f = ctx.file(a[0])?;
    let mut buf = [0u8; addr::SOCKADDR_MAX];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `buf` has `len` bytes.
    let r = unsafe { libc::accept4(f.raw(), buf.as_mut_ptr().cast(), &mut len, host_flags) };
    let new = sock_ret(f.raw(), Dir::Recv, r as i64)?;
    // SAFETY: the fd accept4 just created.
    let new = unsafe { OwnedFd::from_raw_fd(new as RawFd) };
    // As Linux: the peer's address is written before the fd exists for the guest; if that
    // fails the connection is dropped.
    if a[1] != 0 {
        addr::write_guest(ctx, a[1], a[2], &buf[..(len as usize).min(buf.len())])?;
    }
    ctx.install(OpenFile::host(new, None), cloexec)
}

/// getsockname / getpeername.
fn name(
    ctx: &Ctx,
    a: [u64; 6],
    call: unsafe extern "C" fn(RawFd, *mut libc::sockaddr, *mut libc::socklen_t) -> i32,
) -> SysResult {
    let f = ctx.file(a[0])?;
    let mut buf = [0u8; addr::SOCKADDR_MAX];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `buf` has `len` bytes.
    host_ret(unsafe { call(f.raw(), buf.as_mut_ptr().cast(), &mut len) } as i64)?;
    addr::write_guest(ctx, a[1], a[2], &buf[..(len as usize).min(buf.len())])?;
    Ok(0)
}

pub fn getsockname(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    name(ctx, a, libc::getsockname)
}

pub fn getpeername(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    name(ctx, a, libc::getpeername)
}

pub fn shutdown(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    // SAFETY: plain host call.
    host_ret(unsafe { libc::shutdown(f.raw(), a[1] as i32) } as i64)
}
