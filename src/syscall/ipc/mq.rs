//! POSIX message queues: mq_open, mq_unlink, mq_timedsend, mq_timedreceive, mq_notify,
//! mq_getsetattr. A queue descriptor is the host's (an fd on Linux) in the guest fd
//! table, so dup, close, fork, poll and epoll treat it as any host fd. `struct mq_attr`,
//! `struct sigevent`, `timespec` and the O_ flags mq_open looks at (access mode,
//! O_CREAT, O_EXCL, O_NONBLOCK, O_CLOEXEC) are the same on AArch64 and x86_64.
//!
//! mq_notify: SIGEV_SIGNAL makes the host send the host signal of the same number to
//! this process, which the host-signal watcher forwards to the guest with its siginfo
//! (si_code SI_MESGQ, si_pid, si_uid, si_value); SIGEV_THREAD is what glibc and musl
//! build their notification threads on: the "signal number" is a netlink socket (a
//! guest fd, here its host fd) that receives the 32-byte cookie at `sigev_value`, which
//! the kernel copies at registration (here from guest memory).

use std::os::fd::{FromRawFd, OwnedFd};

use elfuse_actors::fdtable::OpenFile;

use super::{blocking, call, host, read_struct};
use crate::errno::Errno;
use crate::syscall::{Ctx, SysResult, PATH_MAX};

const O_CLOEXEC: u64 = 0o2000000;
const MQ_PRIO_MAX: u64 = 32768;
/// sizeof(struct mq_attr), sizeof(struct sigevent), NOTIFY_COOKIE_LEN.
const MQ_ATTR: usize = 64;
const SIGEVENT: usize = 64;
const COOKIE: usize = 32;
const SIGEV_THREAD: i32 = 2;

/// The queue name, NUL-terminated (the kernel's getname: at most PATH_MAX).
fn name(ctx: &Ctx, va: u64) -> Result<Vec<u8>, Errno> {
    let mut n = ctx.read_cstr(va, PATH_MAX)?;
    n.push(0);
    Ok(n)
}

pub fn mq_open(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (oflag, mode, attr) = (a[1] as i32 as u64, a[2] as u32 as u64, a[3]);
    let name = name(ctx, a[0])?;
    let attr = match attr {
        0 => None,
        p => Some(read_struct::<MQ_ATTR>(ctx, p)?),
    };
    let ap = attr.as_ref().map_or(0, |b| b.as_ptr() as u64);
    // Host fds elfuse holds are close-on-exec; the guest's flag lives in its table.
    let fd = call(
        host::SYS_mq_open,
        [name.as_ptr() as u64, oflag | O_CLOEXEC, mode, ap, 0, 0],
    )?;
    // SAFETY: a fresh host fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    ctx.install(OpenFile::host(fd, None), oflag & O_CLOEXEC != 0)
}

pub fn mq_unlink(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let name = name(ctx, a[0])?;
    call(host::SYS_mq_unlink, [name.as_ptr() as u64, 0, 0, 0, 0, 0])
}

/// The queue's attributes as the host reports them (EBADF for a fd that is no queue).
fn attr_of(raw: i32) -> Result<[i64; 8], Errno> {
    let mut at = [0i64; 8];
    call(
        host::SYS_mq_getsetattr,
        [raw as u64, 0, at.as_mut_ptr() as u64, 0, 0, 0],
    )?;
    Ok(at)
}

/// The optional absolute timeout, read before anything else (as the kernel does).
fn timeout(ctx: &Ctx, va: u64) -> Result<Option<[u8; 16]>, Errno> {
    (va != 0).then(|| read_struct::<16>(ctx, va)).transpose()
}

pub fn mq_timedsend(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (len, prio) = (a[2], a[3]);
    let ts = timeout(ctx, a[4])?;
    if prio >= MQ_PRIO_MAX {
        return Err(Errno::EINVAL);
    }
    let f = ctx.file(a[0])?;
    // Longer than the queue's message size: EMSGSIZE before the message is read.
    if len > attr_of(f.raw())?[2] as u64 {
        return Err(Errno::EMSGSIZE);
    }
    let msg = ctx.read_bytes(a[1], len as usize)?;
    let tp = ts.as_ref().map_or(0, |t| t.as_ptr() as u64);
    let args = [f.raw() as u64, msg.as_ptr() as u64, len, prio, tp, 0];
    blocking(ctx, Errno::ERESTARTSYS, || {
        host::call(host::SYS_mq_timedsend, args)
    })
}

pub fn mq_timedreceive(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (len, prio_va) = (a[2], a[3]);
    let ts = timeout(ctx, a[4])?;
    let f = ctx.file(a[0])?;
    // A buffer shorter than the queue's message size is the host's EMSGSIZE; a longer
    // one needs no more than that.
    let cap = len.min(attr_of(f.raw())?[2].max(0) as u64);
    let mut buf = vec![0u8; cap as usize];
    let mut prio = 0u32;
    let tp = ts.as_ref().map_or(0, |t| t.as_ptr() as u64);
    let args = [
        f.raw() as u64,
        buf.as_mut_ptr() as u64,
        cap,
        &mut prio as *mut u32 as u64,
        tp,
        0,
    ];
    let n = blocking(ctx, Errno::ERESTARTSYS, || {
        host::call(host::SYS_mq_timedreceive, args)
    })?;
    if prio_va != 0 {
        ctx.write_val(prio_va, &prio)?;
    }
    ctx.write_bytes(a[1], &buf[..n as usize])?;
    Ok(n)
}

pub fn mq_notify(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    if a[1] == 0 {
        return call(host::SYS_mq_notify, [f.raw() as u64, 0, 0, 0, 0, 0]);
    }
    let mut ev = read_struct::<SIGEVENT>(ctx, a[1])?;
    let notify = i32::from_le_bytes(ev[12..16].try_into().unwrap());
    // Kept alive until the host call returns (the kernel copies the cookie).
    let (mut cookie, mut sock) = ([0u8; COOKIE], None);
    if notify == SIGEV_THREAD {
        let fd = i32::from_le_bytes(ev[8..12].try_into().unwrap());
        let s = ctx.file(fd as u32 as u64)?;
        ev[8..12].copy_from_slice(&s.raw().to_le_bytes());
        let va = u64::from_le_bytes(ev[0..8].try_into().unwrap());
        ctx.user_slice(va, COOKIE, false)?.copy_to(&mut cookie);
        ev[0..8].copy_from_slice(&(cookie.as_mut_ptr() as u64).to_le_bytes());
        sock = Some(s);
    }
    let r = call(
        host::SYS_mq_notify,
        [f.raw() as u64, ev.as_ptr() as u64, 0, 0, 0, 0],
    );
    drop(sock);
    r
}

pub fn mq_getsetattr(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let new = match a[1] {
        0 => None,
        p => Some(read_struct::<MQ_ATTR>(ctx, p)?),
    };
    let f = ctx.file(a[0])?;
    let mut old = [0u8; MQ_ATTR];
    let np = new.as_ref().map_or(0, |b| b.as_ptr() as u64);
    let op = if a[2] != 0 {
        old.as_mut_ptr() as u64
    } else {
        0
    };
    let r = call(host::SYS_mq_getsetattr, [f.raw() as u64, np, op, 0, 0, 0])?;
    if a[2] != 0 {
        ctx.write_bytes(a[2], &old)?;
    }
    Ok(r)
}
