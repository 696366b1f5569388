//! Linux native AIO: io_setup, io_destroy, io_submit, io_cancel, io_getevents,
//! io_pgetevents, on the host's own AIO contexts.
//!
//! What the guest can observe is kept Linux's: its `aio_context_t` is the address of a
//! mapping in its own address space (`/[aio] (deleted)` in /proc/self/maps, sized as the
//! host's ring), and `io_event.obj` is the guest's iocb address, `io_event.data` its
//! `aio_data`. Each guest iocb becomes a host one (guest fds → host fds, guest buffers
//! and iovec arrays → host addresses in guest RAM, the eventfd of IOCB_FLAG_RESFD
//! translated), kept with the descriptions it names until its event is reaped, so a
//! guest close() during the I/O does not close the host fd under it (Linux holds the
//! file too). The one difference: the guest's ring is not the host's (the events there
//! name host iocbs), so its header has no AIO_RING_MAGIC, and libaio and fio read
//! events with io_getevents instead of from the ring (libaio checks the magic).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use elfuse_actors::fdtable::OpenFile;

use super::{Ctx, SysResult};
use crate::errno::Errno;
use crate::guest::layout::page_up;
use crate::guest::mm::{Backing, VmaName, PROT_READ, PROT_WRITE};

const IOCB_CMD_PREAD: u16 = 0;
const IOCB_CMD_PWRITE: u16 = 1;
const IOCB_CMD_PREADV: u16 = 7;
const IOCB_CMD_PWRITEV: u16 = 8;
const IOCB_FLAG_RESFD: u32 = 1;
/// sizeof(struct iocb), sizeof(struct io_event), the ring header.
const IOCB: usize = 64;
const IO_EVENT: usize = 32;
const RING_HEADER: u64 = 32;
const RING_NAME: &str = "/[aio] (deleted)";

/// The host AIO syscalls (ENOSYS elsewhere).
mod host {
    #[cfg(target_os = "linux")]
    pub fn call(nr: libc::c_long, a: [u64; 5]) -> i64 {
        // SAFETY: the callers pass host buffers of the sizes the calls use, or checked
        // slices of guest RAM.
        unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4]) }
    }
    #[cfg(target_os = "linux")]
    pub use libc::{SYS_io_cancel, SYS_io_destroy, SYS_io_getevents, SYS_io_setup, SYS_io_submit};

    #[cfg(not(target_os = "linux"))]
    pub fn call(_nr: libc::c_long, _a: [u64; 5]) -> i64 {
        // SAFETY: sets this thread's errno.
        unsafe { *libc::__error() = libc::ENOSYS };
        -1
    }
    #[cfg(not(target_os = "linux"))]
    pub const SYS_io_cancel: libc::c_long = 0;
    #[cfg(not(target_os = "linux"))]
    pub const SYS_io_destroy: libc::c_long = 0;
    #[cfg(not(target_os = "linux"))]
    pub const SYS_io_getevents: libc::c_long = 0;
    #[cfg(not(target_os = "linux"))]
    pub const SYS_io_setup: libc::c_long = 0;
    #[cfg(not(target_os = "linux"))]
    pub const SYS_io_submit: libc::c_long = 0;
}

fn call(nr: libc::c_long, a: [u64; 5]) -> Result<u64, Errno> {
    let r = host::call(nr, a);
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r as u64)
    }
}

/// A host iocb in flight, with what it names kept alive.
struct InFlight {
    guest_iocb: u64,
    _iocb: Box<[u8; IOCB]>,
    _iov: Vec<libc::iovec>,
    _files: Vec<Arc<OpenFile>>,
}

// SAFETY: the iovecs point into guest RAM, which lives as long as the process; they are
// only kept, never dereferenced here.
unsafe impl Send for InFlight {}

/// One guest AIO context.
struct AioCtx {
    host: u64,
    ring_len: u64,
    /// Host iocb address → the request.
    inflight: Mutex<HashMap<u64, InFlight>>,
}

/// This host process's contexts by guest address (a native fork child inherits the
/// parent's table but not its host contexts, as Linux's child has none: the pid says
/// whose table it is).
static CONTEXTS: Mutex<Table> = Mutex::new((0, Vec::new()));

/// The owning host pid, and (guest address, context) pairs.
type Table = (i32, Vec<(u64, Arc<AioCtx>)>);

fn table() -> std::sync::MutexGuard<'static, Table> {
    let mut t = CONTEXTS.lock().unwrap_or_else(|p| p.into_inner());
    let pid = std::process::id() as i32;
    if t.0 != pid {
        // A native fork child's copy of the parent's table. Dropping it closes no fd
        // the child uses: a description still in the guest fd table is also held by the
        // parent's (forgotten) table copy, so only the reference count drops; one that
        // only a request held (its fd closed) is closed in the child too, as Linux's
        // child never had it.
        *t = (pid, Vec::new());
    }
    t
}

/// The context whose ring the guest was given at `va` (Linux looks it up by that
/// address whether or not the ring is still mapped there).
fn lookup(_ctx: &Ctx, va: u64) -> Result<Arc<AioCtx>, Errno> {
    let found = table()
        .1
        .iter()
        .find(|(a, _)| *a == va)
        .map(|(_, c)| c.clone());
    found.ok_or(Errno::EINVAL)
}

pub fn io_setup(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (nr, ctxp) = (a[0] as u32, a[1]);
    let cur: u64 = ctx.read_val(ctxp)?;
    if cur != 0 {
        return Err(Errno::EINVAL);
    }
    let mut hctx = 0u64;
    call(
        host::SYS_io_setup,
        [nr as u64, &mut hctx as *mut u64 as u64, 0, 0, 0],
    )?;
    // The ring's size is the host's: its header says how many events it holds.
    // SAFETY: the host's ring, mapped by io_setup at `hctx`, starts with its header.
    let events = unsafe { std::ptr::read_volatile((hctx as *const u32).add(1)) };
    let ring_len = page_up(RING_HEADER + events as u64 * IO_EVENT as u64).unwrap_or(4096);
    let destroy = || host::call(host::SYS_io_destroy, [hctx, 0, 0, 0, 0]);
    let va = {
        let mut mm = ctx.proc.mm();
        let placed = mm.find_free(ring_len, 0).and_then(|va| {
            mm.map_fixed(
                va,
                ring_len,
                PROT_READ | PROT_WRITE,
                true,
                Backing::Anon,
                VmaName::Path(RING_NAME.into()),
            )
            .map(|_| va)
        });
        match placed {
            Ok(va) => va,
            Err(e) => {
                destroy();
                return Err(e);
            }
        }
    };
    if let Err(e) = ctx.write_val(ctxp, &va) {
        destroy();
        let _ = ctx.proc.mm().unmap(va, ring_len);
        return Err(e);
    }
    let c = Arc::new(AioCtx {
        host: hctx,
        ring_len,
        inflight: Mutex::new(HashMap::new()),
    });
    let mut t = table();
    t.1.retain(|(a, _)| *a != va);
    t.1.push((va, c));
    Ok(0)
}

pub fn io_destroy(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let c = lookup(ctx, a[0])?;
    table().1.retain(|(va, _)| *va != a[0]);
    // Waits for the requests in flight, as Linux's does.
    call(host::SYS_io_destroy, [c.host, 0, 0, 0, 0])?;
    c.inflight.lock().unwrap_or_else(|p| p.into_inner()).clear();
    // As Linux's kill_ioctx: the ring's range is unmapped, whatever is there now.
    let _ = ctx.proc.mm().unmap(a[0], c.ring_len);
    Ok(0)
}

/// execve: every context is destroyed (the host's waits for its requests in flight, as
/// Linux's exit_aio does), and the descriptions they held are let go.
pub fn exec() {
    let all = std::mem::take(&mut table().1);
    for (_, c) in all {
        host::call(host::SYS_io_destroy, [c.host, 0, 0, 0, 0]);
    }
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// The host iocb for guest iocb `g` (the layout is the same on both): fds, buffers and
/// iovec arrays translated.
fn translate(ctx: &Ctx, g: &[u8; IOCB]) -> Result<InFlight, Errno> {
    if u64_at(g, 48) != 0 {
        return Err(Errno::EINVAL); // aio_reserved2
    }
    let mut h = Box::new(*g);
    let (op, fd, buf, nbytes) = (u16_at(g, 16), u32_at(g, 20), u64_at(g, 24), u64_at(g, 32));
    let mut files = Vec::new();
    let mut iov = Vec::new();
    let f = ctx.file(fd as u64)?;
    h[20..24].copy_from_slice(&(f.raw() as u32).to_le_bytes());
    files.push(f);
    match op {
        IOCB_CMD_PREAD | IOCB_CMD_PWRITE => {
            let n = nbytes.min(0x7fff_f000) as usize;
            let s = ctx.user_slice(buf, n, op == IOCB_CMD_PREAD)?;
            h[24..32].copy_from_slice(&(s.as_mut_ptr() as u64).to_le_bytes());
        }
        IOCB_CMD_PREADV | IOCB_CMD_PWRITEV => {
            iov = super::iov::iovecs(ctx, buf, nbytes, op == IOCB_CMD_PREADV)?;
            h[24..32].copy_from_slice(&(iov.as_ptr() as u64).to_le_bytes());
        }
        // Nothing else names guest memory (FSYNC, FDSYNC, NOOP; POLL's buffer is its
        // event mask); an unknown opcode is the host's EINVAL.
        _ => {}
    }
    if u32_at(g, 56) & IOCB_FLAG_RESFD != 0 {
        let r = ctx.file(u32_at(g, 60) as u64)?;
        h[60..64].copy_from_slice(&(r.raw() as u32).to_le_bytes());
        files.push(r);
    }
    Ok(InFlight {
        guest_iocb: 0,
        _iocb: h,
        _iov: iov,
        _files: files,
    })
}

pub fn io_submit(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (va, nr, list) = (a[0], a[1] as i64, a[2]);
    if nr < 0 {
        return Err(Errno::EINVAL);
    }
    let c = lookup(ctx, va)?;
    let mut done = 0u64;
    for i in 0..nr as u64 {
        let one = (|| -> Result<(), Errno> {
            let gp: u64 = ctx.read_val(list + i * 8)?;
            let g: [u8; IOCB] = {
                let mut b = [0u8; IOCB];
                ctx.user_slice(gp, IOCB, false)?.copy_to(&mut b);
                b
            };
            let mut req = translate(ctx, &g)?;
            req.guest_iocb = gp;
            // Linux writes KIOCB_KEY (0) to the iocb's aio_key.
            ctx.write_bytes(gp + 8, &0u32.to_le_bytes())?;
            let hp = req._iocb.as_ptr() as u64;
            let mut map = c.inflight.lock().unwrap_or_else(|p| p.into_inner());
            let ptrs = [hp];
            call(host::SYS_io_submit, [c.host, 1, ptrs.as_ptr() as u64, 0, 0])?;
            map.insert(hp, req);
            Ok(())
        })();
        match one {
            Ok(()) => done += 1,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(done)
}

/// Host events → the guest's: `obj` names the guest's iocb; the request is forgotten.
fn to_guest(c: &AioCtx, host: &[u8]) -> Vec<u8> {
    let mut map = c.inflight.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = host.to_vec();
    for ev in out.chunks_exact_mut(IO_EVENT) {
        let obj = u64_at(ev, 8);
        if let Some(req) = map.remove(&obj) {
            ev[8..16].copy_from_slice(&req.guest_iocb.to_le_bytes());
        }
    }
    out
}

pub fn io_cancel(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (va, gp, result) = (a[0], a[1], a[2]);
    // aio_key (KIOCB_KEY, 0, as io_submit left it).
    let key = u32_at(&ctx.read_bytes(gp, 12)?, 8);
    if key != 0 {
        return Err(Errno::EINVAL);
    }
    let c = lookup(ctx, va)?;
    let hp = {
        let map = c.inflight.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .find(|(_, r)| r.guest_iocb == gp)
            .map(|(&h, _)| h)
    }
    .ok_or(Errno::EINVAL)?;
    let mut ev = [0u8; IO_EVENT];
    // Linux completes a cancelled request through the ring (EINPROGRESS here).
    call(
        host::SYS_io_cancel,
        [c.host, hp, ev.as_mut_ptr() as u64, 0, 0],
    )?;
    ctx.write_bytes(result, &to_guest(&c, &ev))?;
    Ok(0)
}

fn getevents(ctx: &mut Ctx, a: [u64; 6], code: Errno) -> SysResult {
    let (va, min_nr, nr, events, timeout) = (a[0], a[1] as i64, a[2] as i64, a[3], a[4]);
    let c = lookup(ctx, va)?;
    if min_nr < 0 || nr < 0 || min_nr > nr {
        return Err(Errno::EINVAL);
    }
    let ts = match timeout {
        0 => None,
        t => Some(super::ipc::read_struct::<16>(ctx, t)?),
    };
    // No more events than the ring holds can be reaped at once.
    let cap = (nr as u64).min(c.ring_len / IO_EVENT as u64);
    let mut buf = vec![0u8; cap as usize * IO_EVENT];
    let tp = ts.as_ref().map_or(0, |t| t.as_ptr() as u64);
    let args = [c.host, min_nr as u64, cap, buf.as_mut_ptr() as u64, tp];
    let n = super::ipc::blocking(ctx, code, || host::call(host::SYS_io_getevents, args))?;
    let out = to_guest(&c, &buf[..n as usize * IO_EVENT]);
    ctx.write_bytes(events, &out)?;
    Ok(n)
}

pub fn io_getevents(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    // Interrupted with nothing reaped: EINTR, never restarted (Linux's read_events).
    getevents(ctx, a, Errno::EINTR)
}

pub fn io_pgetevents(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    // usig: struct __aio_sigset { const sigset_t *sigmask; size_t sigsetsize; }.
    let mask = match a[5] {
        0 => None,
        p => {
            let b = ctx.read_bytes(p, 16)?;
            super::signal::read_sigmask(ctx, u64_at(&b, 0), u64_at(&b, 8))?
        }
    };
    super::signal::with_sigmask(ctx, mask, |ctx| getevents(ctx, a, Errno::ERESTARTNOHAND))
}
