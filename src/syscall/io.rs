//! The fd table and data transfer: close, dup*, fcntl, pipe2, read/write and their vector
//! and positional forms, lseek, sendfile, ioctl.

use elfuse_actors::fdtable::OpenFile;

use super::abi::GUEST_O_CLOEXEC;
use super::abi::{open_flags_from_host, open_flags_to_host};
use super::iov::{iovecs, rw_len};
use super::{fd_err, host_ret, Ctx, SysResult};
use crate::errno::Errno;

pub fn read(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    let buf = ctx.user_slice(a[1], rw_len(a[2]), true)?;
    if let Some(cache) = f.entropy_cache() {
        // /dev/urandom: served from the description's buffer.
        // Filled on the host side, then copied in: no reference into guest RAM.
        let mut tmp = vec![0u8; buf.len()];
        let n = cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .read(&mut tmp)?;
        buf.copy_from(&tmp[..n]);
        return Ok(n as u64);
    }
    // SAFETY: `buf` is checked, writable guest RAM of `buf.len()` bytes, passed as a raw
    // pointer (no reference exists); read writes at most that many; `f` keeps the fd open.
    host_ret(unsafe { libc::read(f.raw(), buf.as_mut_ptr().cast(), buf.len()) } as i64)
}

pub fn write(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    let buf = ctx.user_slice(a[1], rw_len(a[2]), false)?;
    // SAFETY: `buf` is checked, readable guest RAM of `buf.len()` bytes, passed as a raw
    // pointer; write only reads it; `f` keeps the fd open.
    host_ret(unsafe { libc::write(f.raw(), buf.as_ptr().cast(), buf.len()) } as i64)
}

pub fn pread64(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    if (a[3] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    if let Some((k, _)) = super::kinds::registry::of(&f) {
        if let Some(r) = k.read(ctx, a[1], rw_len(a[2]), Some(a[3])) {
            return r;
        }
    }
    let buf = ctx.user_slice(a[1], rw_len(a[2]), true)?;
    host_ret(
        // SAFETY: `buf` is checked, writable guest RAM of `buf.len()` bytes (raw pointer);
        // pread writes at most that many; `f` keeps the fd open.
        unsafe { libc::pread(f.raw(), buf.as_mut_ptr().cast(), buf.len(), a[3] as i64) } as i64,
    )
}

pub fn pwrite64(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    if (a[3] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    if let Some((k, _)) = super::kinds::registry::of(&f) {
        if let Some(r) = k.write(ctx, a[1], rw_len(a[2]), Some(a[3])) {
            return r;
        }
    }
    let buf = ctx.user_slice(a[1], rw_len(a[2]), false)?;
    // SAFETY: `buf` is checked, readable guest RAM of `buf.len()` bytes (raw pointer); `f`
    // keeps the fd open.
    host_ret(unsafe { libc::pwrite(f.raw(), buf.as_ptr().cast(), buf.len(), a[3] as i64) } as i64)
}

fn vec_io(ctx: &mut Ctx, a: [u64; 6], write: bool, off: Option<i64>) -> SysResult {
    let f = ctx.file(a[0])?;
    if off.is_some_and(|o| o < 0) {
        return Err(Errno::EINVAL);
    }
    let v = iovecs(ctx, a[1], a[2], !write)?;
    let (p, n) = (v.as_ptr(), v.len() as i32);
    // SAFETY: `v` holds `n` iovecs, each naming checked guest RAM (writable for reads) by raw
    // pointer, and lives across the call; `f` keeps the fd open.
    let r = unsafe {
        match (write, off) {
            (false, None) => libc::readv(f.raw(), p, n),
            (true, None) => libc::writev(f.raw(), p, n),
            (false, Some(o)) => libc::preadv(f.raw(), p, n, o),
            (true, Some(o)) => libc::pwritev(f.raw(), p, n, o),
        }
    };
    host_ret(r as i64)
}

pub fn readv(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    vec_io(ctx, a, false, None)
}
pub fn writev(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    vec_io(ctx, a, true, None)
}
pub fn preadv(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    vec_io(ctx, a, false, Some(a[3] as i64))
}
pub fn pwritev(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    vec_io(ctx, a, true, Some(a[3] as i64))
}

pub fn lseek(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let f = ctx.file(a[0])?;
    if a[2] > 4 {
        return Err(Errno::EINVAL);
    }
    // SAFETY: no pointers; `f` keeps the fd open.
    host_ret(unsafe { libc::lseek(f.raw(), a[1] as i64, a[2] as i32) })
}

pub fn sendfile(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let out = ctx.file(a[0])?;
    let inp = ctx.file(a[1])?;
    let count = rw_len(a[3]);
    if a[2] == 0 {
        // SAFETY: a null offset pointer is allowed (the file position is used); both
        // descriptions are held open.
        let r = unsafe { libc::sendfile(out.raw(), inp.raw(), std::ptr::null_mut(), count) };
        return host_ret(r as i64);
    }
    let mut off: i64 = ctx.read_val(a[2])?;
    // SAFETY: `off` is a local i64 the call reads and updates; both descriptions are held
    // open.
    let r = unsafe { libc::sendfile(out.raw(), inp.raw(), &mut off, count) };
    let r = host_ret(r as i64)?;
    ctx.write_val(a[2], &off)?;
    Ok(r)
}

pub fn close(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    // The actor hands the description back; it is dropped here, outside the actor.
    ctx.fds().close(a[0] as i32).map_err(fd_err)?;
    Ok(0)
}

pub fn close_range(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const CLOSE_RANGE_UNSHARE: u64 = 2;
    const CLOSE_RANGE_CLOEXEC: u64 = 4;
    let (lo, hi, flags) = (a[0] as u32, a[1] as u32, a[2]);
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || lo > hi {
        return Err(Errno::EINVAL);
    }
    ctx.fds()
        .close_range(lo, hi, flags & CLOSE_RANGE_CLOEXEC != 0);
    Ok(0)
}

pub fn dup(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    ctx.fds()
        .dup(a[0] as i32, false, 0)
        .map(|fd| fd as u64)
        .map_err(fd_err)
}

pub fn dup3(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (old, new, flags) = (a[0] as i32, a[1] as i32, a[2]);
    if flags & !GUEST_O_CLOEXEC != 0 || old == new {
        return Err(Errno::EINVAL);
    }
    ctx.fds()
        .dup_to(old, new, flags & GUEST_O_CLOEXEC != 0)
        .map_err(fd_err)?;
    Ok(new as u64)
}

pub fn fcntl(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const F_DUPFD: u64 = 0;
    const F_GETFD: u64 = 1;
    const F_SETFD: u64 = 2;
    const F_GETFL: u64 = 3;
    const F_SETFL: u64 = 4;
    const F_GETLK: u64 = 5;
    const F_SETLK: u64 = 6;
    const F_SETLKW: u64 = 7;
    const F_SETOWN: u64 = 8;
    const F_GETOWN: u64 = 9;
    const F_SETSIG: u64 = 10;
    const F_GETSIG: u64 = 11;
    const F_SETOWN_EX: u64 = 15;
    const F_GETOWN_EX: u64 = 16;
    const F_OFD_GETLK: u64 = 36;
    const F_OFD_SETLK: u64 = 37;
    const F_OFD_SETLKW: u64 = 38;
    const F_DUPFD_CLOEXEC: u64 = 1030;
    const F_SETPIPE_SZ: u64 = 1031;
    const F_GETPIPE_SZ: u64 = 1032;
    const F_ADD_SEALS: u64 = 1033;
    const F_GET_SEALS: u64 = 1034;
    /// sizeof(struct flock) on AArch64 (same layout as x86_64's).
    const FLOCK_SIZE: usize = 32;
    let fd = a[0] as i32;
    let (cmd, arg) = (a[1] & 0xffff_ffff, a[2]);
    match cmd {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let min = i32::try_from(arg).map_err(|_| Errno::EINVAL)?;
            ctx.fds()
                .dup(fd, cmd == F_DUPFD_CLOEXEC, min)
                .map(|n| n as u64)
                .map_err(fd_err)
        }
        F_GETFD => ctx.fds().cloexec(fd).map(u64::from).map_err(fd_err),
        F_SETFD => ctx
            .fds()
            .set_cloexec(fd, arg & 1 != 0)
            .map(|_| 0)
            .map_err(fd_err),
        F_GETFL => {
            let f = ctx.file(a[0])?;
            // SAFETY: F_GETFL takes no argument; `f` keeps the fd open.
            let r = unsafe { libc::fcntl(f.raw(), libc::F_GETFL) };
            host_ret(r as i64).map(|fl| open_flags_from_host(fl as i32))
        }
        F_SETFL => {
            let f = ctx.file(a[0])?;
            // SAFETY: F_SETFL takes an int; `f` keeps the fd open.
            let r = unsafe { libc::fcntl(f.raw(), libc::F_SETFL, open_flags_to_host(arg)) };
            host_ret(r as i64)
        }
        F_GETLK | F_SETLK | F_SETLKW | F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW => {
            let f = ctx.file(a[0])?;
            let getter = cmd == F_GETLK || cmd == F_OFD_GETLK;
            let lk = ctx.user_slice(arg, FLOCK_SIZE, getter)?;
            let host_cmd = match cmd {
                F_GETLK => libc::F_GETLK,
                F_SETLK => libc::F_SETLK,
                F_SETLKW => libc::F_SETLKW,
                F_OFD_GETLK => libc::F_OFD_GETLK,
                F_OFD_SETLK => libc::F_OFD_SETLK,
                _ => libc::F_OFD_SETLKW,
            };
            // SAFETY: `lk` is checked guest RAM of FLOCK_SIZE bytes, the size of the host's
            // struct flock (same layout on 64-bit Linux), writable for the getters; passed as
            // a raw pointer.
            host_ret(unsafe { libc::fcntl(f.raw(), host_cmd, lk.as_mut_ptr()) } as i64)
        }
        // O_ASYNC owners and signals: guest pids and process groups are the host's, and the
        // host's SIGIO (or F_SETSIG's signal) reaches the guest through the host-signal
        // watcher (`hostsig`), like any signal another process sends.
        F_SETOWN_EX | F_GETOWN_EX => owner_ex(ctx, a[0], cmd == F_SETOWN_EX, arg),
        F_SETPIPE_SZ | F_GETPIPE_SZ | F_ADD_SEALS | F_GET_SEALS | F_SETOWN | F_GETOWN
        | F_SETSIG | F_GETSIG => {
            let f = ctx.file(a[0])?;
            // SAFETY: these commands take an int argument, no pointer; `f` keeps the fd open.
            host_ret(unsafe { libc::fcntl(f.raw(), cmd as i32, arg as i32) } as i64)
        }
        _ => {
            ctx.file(a[0])?;
            Err(Errno::EINVAL)
        }
    }
}

/// F_SETOWN_EX / F_GETOWN_EX (`struct f_owner_ex { int type; pid_t pid; }`, which glibc's
/// F_GETOWN uses): pids and process groups are the host's; a thread owner (F_OWNER_TID)
/// is the guest thread's host thread.
fn owner_ex(ctx: &Ctx, fd: u64, set: bool, arg: u64) -> SysResult {
    const F_OWNER_TID: i32 = 0;
    const F_SETOWN_EX: i32 = 15;
    const F_GETOWN_EX: i32 = 16;
    let f = ctx.file(fd)?;
    if set {
        let [kind, mut pid]: [i32; 2] = ctx.read_val(arg)?;
        if kind == F_OWNER_TID && pid != 0 {
            pid = ctx
                .proc
                .threads
                .get(pid)
                .map_or(Err(Errno::ESRCH), |t| Ok(t.host_tid()))?;
        }
        let ex = [kind, pid];
        // SAFETY: an f_owner_ex the host reads.
        return host_ret(unsafe { libc::fcntl(f.raw(), F_SETOWN_EX, ex.as_ptr()) } as i64);
    }
    ctx.user_slice(arg, 8, true)?;
    let mut ex = [0i32; 2];
    // SAFETY: an f_owner_ex the host fills.
    host_ret(unsafe { libc::fcntl(f.raw(), F_GETOWN_EX, ex.as_mut_ptr()) } as i64)?;
    if ex[0] == F_OWNER_TID && ex[1] != 0 {
        // A host thread that is no guest thread of ours (any more): no owner the guest
        // can name.
        ex[1] = ctx.proc.threads.guest_tid_of(ex[1]).unwrap_or(0);
    }
    ctx.write_val(arg, &ex)?;
    Ok(0)
}

pub fn pipe2(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const GUEST_O_NONBLOCK: u64 = 0o4000;
    const GUEST_O_DIRECT: u64 = 0o200000;
    let flags = a[1];
    if flags & !(GUEST_O_CLOEXEC | GUEST_O_NONBLOCK | GUEST_O_DIRECT) != 0 {
        return Err(Errno::EINVAL);
    }
    // Validate the destination first, so a bad pointer leaks nothing.
    ctx.user_slice(a[0], 8, true)?;
    let host_flags = open_flags_to_host(flags & !GUEST_O_CLOEXEC) | libc::O_CLOEXEC;
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::from_bits_retain(host_flags))?;
    let cloexec = flags & GUEST_O_CLOEXEC != 0;
    let (gr, gw) = ctx
        .fds()
        .install_pair(OpenFile::host(r, None), OpenFile::host(w, None), cloexec)
        .map_err(fd_err)?;
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&gr.to_le_bytes());
    out[4..].copy_from_slice(&gw.to_le_bytes());
    ctx.write_bytes(a[0], &out)?;
    Ok(0)
}

pub fn ioctl(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    // asm-generic ioctl numbers: AArch64 and x86_64 Linux agree on all of these; a macOS
    // host maps them here. Terminal ioctls are `tty`'s.
    const FIONREAD: u64 = 0x541b;
    const FIONBIO: u64 = 0x5421;
    const FIONCLEX: u64 = 0x5450;
    const FIOCLEX: u64 = 0x5451;
    const FIOASYNC: u64 = 0x5452;
    let f = ctx.file(a[0])?;
    let (req, arg) = (a[1] & 0xffff_ffff, a[2]);
    let (size, out) = match req {
        FIOCLEX | FIONCLEX => {
            ctx.fds()
                .set_cloexec(a[0] as i32, req == FIOCLEX)
                .map_err(fd_err)?;
            return Ok(0);
        }
        FIONREAD => (4, true),
        FIONBIO | FIOASYNC => (4, false),
        _ => {
            if let Some(r) = super::tty::ioctl(ctx, &f, req, arg) {
                return r;
            }
            return super::net::ioctl::ioctl(ctx, &f, req, arg);
        }
    };
    let buf = ctx.user_slice(arg, size, out)?;
    // SAFETY: the table above gives `size` as what `req` reads or writes, and `buf` is that
    // many bytes of checked guest RAM (writable when the host fills it), passed as a raw
    // pointer.
    host_ret(unsafe { libc::ioctl(f.raw(), req as _, buf.as_mut_ptr()) } as i64)
}

/// Waits on host fds for guest `pollfd`s (`fd`, `events` → `revents`); guest fds that are
/// not open report POLLNVAL, negative ones are skipped, as on Linux.
fn poll_guest(
    ctx: &Ctx,
    fds: &mut [(i32, i16, i16)],
    timeout: Option<std::time::Duration>,
) -> SysResult {
    const POLLNVAL: i16 = 0x20;
    let mut keep = Vec::with_capacity(fds.len());
    let mut host: Vec<libc::pollfd> = Vec::with_capacity(fds.len());
    for &mut (fd, events, _) in fds.iter_mut() {
        let raw = if fd < 0 {
            -1
        } else {
            match ctx.fds().get(fd) {
                Ok(f) => {
                    let r = f.raw();
                    keep.push(f);
                    r
                }
                Err(_) => -2,
            }
        };
        host.push(libc::pollfd {
            fd: if raw == -2 { -1 } else { raw },
            events,
            revents: if raw == -2 { POLLNVAL } else { 0 },
        });
    }
    let nval = host.iter().filter(|p| p.revents == POLLNVAL).count();
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: d.subsec_nanos() as i64,
    });
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // With an invalid fd Linux returns at once; so does a zero timeout here.
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let tsp = if nval > 0 { &zero as *const _ } else { tsp };
    // SAFETY: `host` holds `host.len()` pollfds, `tsp` is null or points at a live timespec
    // (`ts` or `zero`), and the host sigmask pointer is null; all outlive the call.
    let r = unsafe {
        libc::ppoll(
            host.as_mut_ptr(),
            host.len() as libc::nfds_t,
            tsp,
            std::ptr::null(),
        )
    };
    host_ret(r as i64)?;
    let mut ready = 0;
    for (g, h) in fds.iter_mut().zip(&host) {
        g.2 = if g.0 < 0 { 0 } else { h.revents };
        if g.2 != 0 {
            ready += 1;
        }
    }
    drop(keep);
    Ok(ready as u64)
}

fn read_timeout(ctx: &Ctx, va: u64) -> Result<Option<std::time::Duration>, Errno> {
    if va == 0 {
        return Ok(None);
    }
    let t = super::time::read_ts(ctx, va)?;
    Ok(Some(std::time::Duration::new(
        t.tv_sec as u64,
        t.tv_nsec as u32,
    )))
}

/// Writes back the time left, as Linux's ppoll/pselect6 do.
fn write_remaining(
    ctx: &Ctx,
    va: u64,
    timeout: Option<std::time::Duration>,
    start: std::time::Instant,
) {
    if let Some(t) = timeout {
        let left = t.saturating_sub(start.elapsed());
        let ts = libc::timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let _ = super::time::write_ts(ctx, va, &ts);
    }
}

pub fn ppoll(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let nfds = a[1];
    if nfds > ctx.fds().limit() {
        return Err(Errno::EINVAL);
    }
    let mask = super::signal::read_sigmask(ctx, a[3], a[4])?;
    let timeout = read_timeout(ctx, a[2])?;
    let raw = ctx.read_bytes(a[0], nfds as usize * 8)?;
    let mut fds: Vec<(i32, i16, i16)> = raw
        .chunks_exact(8)
        .map(|c| {
            (
                i32::from_le_bytes(c[..4].try_into().unwrap()),
                i16::from_le_bytes(c[4..6].try_into().unwrap()),
                0,
            )
        })
        .collect();
    let start = std::time::Instant::now();
    let n = super::signal::with_sigmask(ctx, mask, |ctx| poll_guest(ctx, &mut fds, timeout))?;
    let out: Vec<u8> = fds
        .iter()
        .flat_map(|&(fd, ev, rev)| {
            [
                fd.to_le_bytes().as_slice(),
                &ev.to_le_bytes(),
                &rev.to_le_bytes(),
            ]
            .concat()
        })
        .collect();
    ctx.write_bytes(a[0], &out)?;
    write_remaining(ctx, a[2], timeout, start);
    Ok(n)
}

pub fn pselect6(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    const POLLIN: i16 = 0x1;
    const POLLPRI: i16 = 0x2;
    const POLLOUT: i16 = 0x4;
    const POLLERR: i16 = 0x8;
    const POLLHUP: i16 = 0x10;
    const POLLNVAL: i16 = 0x20;
    let n = a[0] as i32;
    if n < 0 || n as u64 > ctx.fds().limit().max(1024) {
        return Err(Errno::EINVAL);
    }
    let words = (n as usize).div_ceil(64);
    let read_set = |va: u64| -> Result<Vec<u64>, Errno> {
        if va == 0 {
            return Ok(vec![0; words]);
        }
        let b = ctx.read_bytes(va, words * 8)?;
        Ok(b.chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect())
    };
    let (r, w, e) = (read_set(a[1])?, read_set(a[2])?, read_set(a[3])?);
    let timeout = read_timeout(ctx, a[4])?;
    // The sixth argument is { const sigset_t *ss; size_t ss_len; }.
    let mask = if a[5] != 0 {
        let [ss, len]: [u64; 2] = ctx.read_val(a[5])?;
        super::signal::read_sigmask(ctx, ss, len)?
    } else {
        None
    };
    let bit = |s: &[u64], fd: usize| s[fd / 64] >> (fd % 64) & 1 != 0;
    let mut fds = Vec::new();
    for fd in 0..n as usize {
        let mut ev = 0;
        if bit(&r, fd) {
            ev |= POLLIN;
        }
        if bit(&w, fd) {
            ev |= POLLOUT;
        }
        if bit(&e, fd) {
            ev |= POLLPRI;
        }
        if ev != 0 {
            fds.push((fd as i32, ev, 0i16));
        }
    }
    let start = std::time::Instant::now();
    super::signal::with_sigmask(ctx, mask, |ctx| poll_guest(ctx, &mut fds, timeout))?;
    if fds.iter().any(|f| f.2 & POLLNVAL != 0) {
        return Err(Errno::EBADF);
    }
    let (mut ro, mut wo, mut eo) = (vec![0u64; words], vec![0u64; words], vec![0u64; words]);
    let mut count = 0;
    for &(fd, ev, rev) in &fds {
        let (i, m) = (fd as usize / 64, 1u64 << (fd % 64));
        if ev & POLLIN != 0 && rev & (POLLIN | POLLHUP | POLLERR) != 0 {
            ro[i] |= m;
            count += 1;
        }
        if ev & POLLOUT != 0 && rev & (POLLOUT | POLLERR) != 0 {
            wo[i] |= m;
            count += 1;
        }
        if ev & POLLPRI != 0 && rev & POLLPRI != 0 {
            eo[i] |= m;
            count += 1;
        }
    }
    for (va, set) in [(a[1], ro), (a[2], wo), (a[3], eo)] {
        if va != 0 {
            let b: Vec<u8> = set.iter().flat_map(|x| x.to_le_bytes()).collect();
            ctx.write_bytes(va, &b)?;
        }
    }
    write_remaining(ctx, a[4], timeout, start);
    Ok(count)
}
