//! System administration calls, answered by the host as they would be for the guest (a
//! guest process is a host process, a guest thread a host thread): process accounting,
//! the kernel log, host and domain names, setting and steering the clocks, namespaces
//! (unshare, setns), terminal hangup, the LSM attribute calls, mount listing; and
//! Landlock, reported disabled.
//!
//! Privilege checks are the host's (the guest's credentials and capabilities are the
//! host thread's, see `cred`): unprivileged, Linux's EPERM. Structures are passed
//! through bounce buffers (their layouts are the same on both 64-bit ABIs).

use std::os::unix::ffi::OsStrExt;

use super::clone::{CLONE_FILES, CLONE_FS, CLONE_SIGHAND, CLONE_SYSVSEM, CLONE_THREAD, CLONE_VM};
use super::{host_ret, Ctx, SysResult};
use crate::errno::Errno;

/// True if the calling host thread has capability `cap` in its effective set.
pub(crate) fn host_capable(cap: u32) -> bool {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut h = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: capget (version 3) writes two data structs into our array.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()) };
    let (word, bit) = ((cap / 32) as usize, cap % 32);
    r == 0 && d[word].effective & (1 << bit) != 0
}

fn sys(nr: libc::c_long, a: [libc::c_long; 5]) -> SysResult {
    // SAFETY: callers pass integers and pointers to host buffers they own, sized as the
    // call requires.
    host_ret(unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4]) })
}

fn p<T>(v: &mut T) -> libc::c_long {
    v as *mut T as libc::c_long
}

fn bp(v: &mut [u8]) -> libc::c_long {
    v.as_mut_ptr() as libc::c_long
}

// Numbers the libc crate does not name yet (the same on every architecture since 424).
const SYS_STATMOUNT: libc::c_long = 457;
const SYS_LISTMOUNT: libc::c_long = 458;
const SYS_LSM_GET_SELF_ATTR: libc::c_long = 459;
const SYS_LSM_SET_SELF_ATTR: libc::c_long = 460;
const SYS_LSM_LIST_MODULES: libc::c_long = 461;

/// The largest buffer passed through for the LSM and mount-listing calls.
const MAX_BOUNCE: u64 = 1 << 20;

pub fn vhangup(_ctx: &mut Ctx, _a: [u64; 6]) -> SysResult {
    sys(libc::SYS_vhangup, [0; 5])
}

pub fn acct(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const CAP_SYS_PACCT: u32 = 20;
    // Linux checks the capability before it looks at the path.
    if !host_capable(CAP_SYS_PACCT) {
        return Err(Errno::EPERM);
    }
    if a[0] == 0 {
        return sys(libc::SYS_acct, [0; 5]);
    }
    let path = ctx.read_path(a[0])?;
    let (_dir, hp) = super::at::socket_path(ctx, &path, false)?;
    sys(libc::SYS_acct, [hp.as_ptr() as libc::c_long, 0, 0, 0, 0])
}

pub fn syslog(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const READ: u64 = 2;
    const READ_ALL: u64 = 3;
    const READ_CLEAR: u64 = 4;
    let (ty, buf, len) = (a[0] as i32 as i64 as u64, a[1], a[2] as i32);
    if !matches!(ty, READ | READ_ALL | READ_CLEAR) {
        return sys(
            libc::SYS_syslog,
            [ty as i32 as libc::c_long, 0, len.into(), 0, 0],
        );
    }
    if buf == 0 || len < 0 {
        // The host's answer (EINVAL, or EPERM first when not allowed).
        return sys(libc::SYS_syslog, [ty as libc::c_long, 0, len.into(), 0, 0]);
    }
    // The guest buffer is checked first: a destructive read must not lose the records.
    ctx.user_slice(buf, len as usize, true)?;
    let mut b = vec![0u8; len as usize];
    let n = sys(
        libc::SYS_syslog,
        [ty as libc::c_long, bp(&mut b), len.into(), 0, 0],
    )?;
    ctx.write_bytes(buf, &b[..n as usize])?;
    Ok(n)
}

/// sethostname/setdomainname: Linux checks privilege, then the length, then copies.
fn set_name(ctx: &Ctx, nr: libc::c_long, name: u64, len: u64) -> SysResult {
    const NEW_UTS_LEN: u64 = 64;
    let len = len as i32 as i64;
    if !(0..=NEW_UTS_LEN as i64).contains(&len) {
        return sys(nr, [0, len as libc::c_long, 0, 0, 0]);
    }
    match ctx.read_bytes(name, len as usize) {
        Ok(mut b) => sys(nr, [bp(&mut b), len as libc::c_long, 0, 0, 0]),
        // Unprivileged: EPERM before the copy, as Linux.
        Err(e) => sys(nr, [0, len as libc::c_long, 0, 0, 0]).and(Err(e)),
    }
}

pub fn sethostname(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    set_name(ctx, libc::SYS_sethostname, a[0], a[1])
}

pub fn setdomainname(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    set_name(ctx, libc::SYS_setdomainname, a[0], a[1])
}

pub fn clock_settime(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let mut ts: [i64; 2] = ctx.read_val(a[1])?;
    sys(
        libc::SYS_clock_settime,
        [a[0] as i32 as libc::c_long, p(&mut ts), 0, 0, 0],
    )
}

pub fn settimeofday(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let mut tv: Option<[i64; 2]> = match a[0] {
        0 => None,
        va => Some(ctx.read_val(va)?),
    };
    let mut tz: Option<[i32; 2]> = match a[1] {
        0 => None,
        va => Some(ctx.read_val(va)?),
    };
    let tvp = tv.as_mut().map_or(0, p);
    let tzp = tz.as_mut().map_or(0, p);
    sys(libc::SYS_settimeofday, [tvp, tzp, 0, 0, 0])
}

/// struct timex: 208 bytes on both 64-bit ABIs.
const TIMEX_SIZE: usize = 208;

fn adjust(ctx: &Ctx, clock: Option<u64>, buf: u64) -> SysResult {
    let mut t = ctx.read_bytes(buf, TIMEX_SIZE)?;
    let r = match clock {
        None => sys(libc::SYS_adjtimex, [bp(&mut t), 0, 0, 0, 0])?,
        Some(c) => sys(
            libc::SYS_clock_adjtime,
            [c as i32 as libc::c_long, bp(&mut t), 0, 0, 0],
        )?,
    };
    ctx.write_bytes(buf, &t)?;
    Ok(r)
}

pub fn adjtimex(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    adjust(ctx, None, a[0])
}

pub fn clock_adjtime(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    adjust(ctx, Some(a[0]), a[1])
}

const CLONE_NEWNS: u64 = 0x20000;
const CLONE_NEWTIME: u64 = 0x80;
const CLONE_NEWCGROUP: u64 = 0x0200_0000;
const CLONE_NEWUTS: u64 = 0x0400_0000;
const CLONE_NEWIPC: u64 = 0x0800_0000;
const CLONE_NEWUSER: u64 = 0x1000_0000;
const CLONE_NEWPID: u64 = 0x2000_0000;
const CLONE_NEWNET: u64 = 0x4000_0000;
const NAMESPACES: u64 = CLONE_NEWNS
    | CLONE_NEWTIME
    | CLONE_NEWCGROUP
    | CLONE_NEWUTS
    | CLONE_NEWIPC
    | CLONE_NEWUSER
    | CLONE_NEWPID
    | CLONE_NEWNET;

/// unshare: Linux's flag checks; the namespaces are the host's, unshared for the calling
/// host thread. What a lone thread shares with nobody is a no-op; a shared fd table or
/// fs context becomes the calling thread's own copy.
pub fn unshare(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let mut flags = a[0] as u32 as u64;
    let known = CLONE_THREAD
        | CLONE_FS
        | CLONE_SIGHAND
        | CLONE_VM
        | CLONE_FILES
        | CLONE_SYSVSEM
        | NAMESPACES;
    if flags & !known != 0 {
        return Err(Errno::EINVAL);
    }
    // ksys_unshare's implications.
    if flags & CLONE_NEWUSER != 0 {
        flags |= CLONE_THREAD | CLONE_FS;
    }
    if flags & CLONE_VM != 0 {
        flags |= CLONE_SIGHAND;
    }
    if flags & CLONE_SIGHAND != 0 {
        flags |= CLONE_THREAD;
    }
    if flags & CLONE_NEWNS != 0 {
        flags |= CLONE_FS;
    }
    // CLONE_THREAD, CLONE_SIGHAND and CLONE_VM cannot be undone while other threads
    // live (EINVAL, as Linux); for a lone thread they are no-ops. CLONE_FILES and
    // CLONE_FS give the calling thread its own copy when it shares them
    // (`clone_own::unshare`); CLONE_SYSVSEM needs nothing (undo lists are per process
    // here).
    let alone = ctx.proc.threads.count() <= 1;
    if flags & (CLONE_THREAD | CLONE_SIGHAND | CLONE_VM) != 0 && !alone {
        return Err(Errno::EINVAL);
    }
    super::clone_own::unshare(ctx, flags & CLONE_FILES != 0, flags & CLONE_FS != 0)?;
    let ns = flags & NAMESPACES;
    if ns == 0 {
        return Ok(0);
    }
    let r = sys(libc::SYS_unshare, [ns as libc::c_long, 0, 0, 0, 0])?;
    super::cred::set_touched(true);
    Ok(r)
}

pub fn setns(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    let r = sys(
        libc::SYS_setns,
        [
            f.raw() as libc::c_long,
            a[1] as i32 as libc::c_long,
            0,
            0,
            0,
        ],
    )?;
    super::cred::set_touched(true);
    Ok(r)
}

/// landlock_*: EOPNOTSUPP, Linux's answer when Landlock is built but not enabled at boot.
pub fn landlock(_ctx: &mut Ctx, _a: [u64; 6]) -> SysResult {
    Err(Errno::EOPNOTSUPP)
}

/// A u32 size the guest passes by pointer, bounded for the bounce buffer.
fn read_size(ctx: &Ctx, va: u64) -> Result<u32, Errno> {
    ctx.read_val::<u32>(va)
}

pub fn lsm_get_self_attr(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let mut size = read_size(ctx, a[2])?;
    let mut b = vec![0u8; u64::from(size).min(MAX_BOUNCE) as usize];
    let bufp = if a[1] == 0 { 0 } else { bp(&mut b) };
    let r = sys(
        SYS_LSM_GET_SELF_ATTR,
        [
            a[0] as u32 as libc::c_long,
            bufp,
            p(&mut size),
            a[3] as u32 as libc::c_long,
            0,
        ],
    );
    ctx.write_val(a[2], &size)?;
    let n = r?;
    if a[1] != 0 {
        ctx.write_bytes(a[1], &b[..(size as usize).min(b.len())])?;
    }
    Ok(n)
}

pub fn lsm_set_self_attr(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let size = (a[2] as u32 as u64).min(MAX_BOUNCE);
    let mut b = ctx.read_bytes(a[1], size as usize)?;
    sys(
        SYS_LSM_SET_SELF_ATTR,
        [
            a[0] as u32 as libc::c_long,
            bp(&mut b),
            a[2] as u32 as libc::c_long,
            a[3] as u32 as libc::c_long,
            0,
        ],
    )
}

pub fn lsm_list_modules(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let mut size = read_size(ctx, a[1])?;
    let mut b = vec![0u8; u64::from(size).min(MAX_BOUNCE) as usize];
    let r = sys(
        SYS_LSM_LIST_MODULES,
        [bp(&mut b), p(&mut size), a[2] as u32 as libc::c_long, 0, 0],
    );
    ctx.write_val(a[1], &size)?;
    let n = r?;
    ctx.write_bytes(a[0], &b[..(n as usize * 8).min(b.len())])?;
    Ok(n)
}

/// struct mnt_id_req from the guest: its own size first (at least the first version's
/// 24 bytes); a mount namespace fd in it is a guest fd.
fn mnt_req(
    ctx: &Ctx,
    va: u64,
) -> Result<
    (
        Vec<u8>,
        Option<std::sync::Arc<elfuse_actors::fdtable::OpenFile>>,
    ),
    Errno,
> {
    let size = read_size(ctx, va)?;
    if !(24..=4096).contains(&size) {
        return Err(Errno::EINVAL);
    }
    let mut req = ctx.read_bytes(va, size as usize)?;
    let ns_fd = u32::from_le_bytes(req[4..8].try_into().unwrap_or_default());
    let mut held = None;
    if ns_fd != 0 {
        let f = ctx.file(u64::from(ns_fd))?;
        req[4..8].copy_from_slice(&(f.raw() as u32).to_le_bytes());
        held = Some(f);
    }
    Ok((req, held))
}

pub fn statmount(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (mut req, _held) = mnt_req(ctx, a[0])?;
    let size = (a[2] as u32 as u64).min(MAX_BOUNCE) as usize;
    let mut b = vec![0u8; size];
    let r = sys(
        SYS_STATMOUNT,
        [
            bp(&mut req),
            bp(&mut b),
            a[2] as u32 as libc::c_long,
            a[3] as u32 as libc::c_long,
            0,
        ],
    )?;
    ctx.write_bytes(a[1], &b)?;
    Ok(r)
}

pub fn listmount(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (mut req, _held) = mnt_req(ctx, a[0])?;
    let nr = a[2].min(MAX_BOUNCE / 8) as usize;
    let mut ids = vec![0u64; nr];
    let n = sys(
        SYS_LISTMOUNT,
        [
            bp(&mut req),
            ids.as_mut_ptr() as libc::c_long,
            nr as libc::c_long,
            a[3] as u32 as libc::c_long,
            0,
        ],
    )?;
    for (i, id) in ids.iter().take(n as usize).enumerate() {
        ctx.write_val(a[1] + 8 * i as u64, id)?;
    }
    Ok(n)
}

/// chroot: the directory becomes the guest's `/` in the one path resolver (as a
/// `--sysroot` with no fallback to the host's files: a lookup that misses fails there).
/// /proc and /dev stay the host's, as bind mounts into a chroot usually make them.
pub fn chroot(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const CAP_SYS_CHROOT: u32 = 18;
    let path = ctx.read_path(a[0])?;
    let (_dir, hp) = super::at::socket_path(ctx, &path, false)?;
    let host = std::path::Path::new(std::ffi::OsStr::from_bytes(hp.as_bytes()));
    let meta = std::fs::metadata(host).map_err(|e| Errno::from_io(&e))?;
    if !meta.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    // Search permission on the directory (EACCES), then the capability (EPERM).
    // SAFETY: a NUL-terminated path we own.
    if unsafe { libc::access(hp.as_ptr(), libc::X_OK) } != 0 {
        return Err(Errno::last());
    }
    if !host_capable(CAP_SYS_CHROOT) {
        return Err(Errno::EPERM);
    }
    let root = std::fs::canonicalize(host).map_err(|e| Errno::from_io(&e))?;
    let mut fs = ctx.fs();
    fs.sysroot = Some(root);
    fs.chroot = true;
    Ok(0)
}
