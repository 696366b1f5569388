//! signalfd4: the seam between emulated signals and the fd world.
//!
//! Signals are emulated (the signal actor, `crate::signal`), so a host signalfd would
//! never see them. A signalfd here is a [`Synthetic`] description: its mask, plus a host
//! eventfd that is readable exactly while a signal in the mask is pending somewhere in the
//! process (poll, ppoll, pselect6 and epoll then work on it unchanged; Linux reports the
//! polling thread's own plus the process's). The actor tells every live signalfd when the
//! pending sets change ([`PendingWatcher`]); read(2) is routed here and dequeues, through
//! the actor, the reading thread's pending signals in the mask then the process's, as
//! 128-byte `struct signalfd_siginfo`s. As on Linux the
//! guest must block those signals first, or they are delivered before it can read them.
//! macOS: the same, with a pipe (or EVFILT_USER) for readiness instead of the eventfd.

use std::any::Any;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};

use elfuse_actors::fdtable::{OpenFile, Synthetic};

use super::super::kinds::{GuestFile, Watchers};
use super::{open_flags, Ctx, GUEST_O_CLOEXEC, GUEST_O_NONBLOCK, SIGINFO_SIZE};
use crate::errno::Errno;
use crate::guest::slice::GuestSlice;
use crate::signal::state::PendingWatcher;
use crate::signal::{sig_bit, SigInfo, SIGKILL, SIGSTOP};
use crate::syscall::SysResult;

#[derive(Debug)]
pub struct SignalFd {
    /// The signals it reports (never SIGKILL or SIGSTOP).
    mask: AtomicU64,
    /// Host eventfd, readable while a signal in `mask` is pending.
    ready: OwnedFd,
    /// Whether `ready` holds a count. Changed only by the signal actor.
    armed: AtomicBool,
}

impl Synthetic for SignalFd {
    fn raw(&self) -> RawFd {
        self.ready.as_raw_fd()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Linux reads the *reader's* pending signals, so a fork child's copy has the same mask
/// and O_NONBLOCK but its own readiness eventfd, watched by the child's signal state.
/// A mask changed later by signalfd4 on one side is not seen by the other (Linux shares
/// it; a known difference).
impl GuestFile for SignalFd {
    fn read(&self, ctx: &mut Ctx, va: u64, len: usize, at: Option<u64>) -> Option<SysResult> {
        if at.is_some() {
            return Some(Err(Errno::ESPIPE));
        }
        Some(
            ctx.user_slice(va, len - len % SIGINFO_SIZE, true)
                .and_then(|buf| self.read_records(&[buf], ctx)),
        )
    }
    fn readv(&self, ctx: &mut Ctx, iov: u64, cnt: u64) -> Option<SysResult> {
        Some(
            super::super::iov::user_iovecs(ctx, iov, cnt, true)
                .and_then(|bufs| self.read_records(&bufs, ctx)),
        )
    }
    fn write(&self, _: &mut Ctx, _: u64, _: usize, _: Option<u64>) -> Option<SysResult> {
        Some(Err(Errno::EINVAL))
    }
    fn fork_state(&self) -> Option<Vec<u8>> {
        let mut b = self.mask().to_le_bytes().to_vec();
        b.push(self.nonblocking() as u8);
        Some(b)
    }
}

impl PendingWatcher for SignalFd {
    fn pending_changed(&self, pending: u64) {
        let want = pending & self.mask.load(Relaxed) != 0;
        if self.armed.swap(want, Relaxed) != want {
            if want {
                host::arm(self.raw());
            } else {
                host::disarm(self.raw());
            }
        }
    }
}

impl SignalFd {
    /// A signalfd for `mask` with its own readiness eventfd; not yet watching anything.
    pub fn create(mask: u64, nonblock: bool) -> Result<Arc<SignalFd>, Errno> {
        let nb = if nonblock { libc::O_NONBLOCK } else { 0 };
        Ok(Arc::new(SignalFd {
            mask: AtomicU64::new(mask & !(sig_bit(SIGKILL) | sig_bit(SIGSTOP))),
            ready: host::eventfd(nb)?,
            armed: AtomicBool::new(false),
        }))
    }

    /// Starts following `signals`' pending set (readiness).
    /// A fork child's signalfd from [`GuestFile::fork_state`]; its watcher goes to
    /// `watchers` for the child's signal state.
    pub fn adopt(state: &[u8], watchers: &mut Watchers) -> Result<Arc<dyn Synthetic>, Errno> {
        let (mask, nonblock) = match state {
            [m @ .., nb] if m.len() == 8 => (u64::from_le_bytes(m.try_into().unwrap()), *nb != 0),
            _ => return Err(Errno::EINVAL),
        };
        let s = SignalFd::create(mask, nonblock)?;
        let w: Weak<dyn PendingWatcher> = Arc::downgrade(&s) as _;
        watchers.push(w);
        Ok(s)
    }

    pub fn mask(&self) -> u64 {
        self.mask.load(Relaxed)
    }

    /// Whether reads fail with EAGAIN rather than block (O_NONBLOCK on its description).
    pub fn nonblocking(&self) -> bool {
        host::nonblocking(self.raw())
    }

    /// read(2)/readv(2) into guest buffers (already checked writable, so a bad pointer
    /// loses no signal): as many pending signals in the mask as fit, lowest first, laid
    /// out across the buffers in order; blocks (unless O_NONBLOCK) while there is none.
    fn read_records(&self, out: &[GuestSlice], ctx: &Ctx) -> SysResult {
        let total: usize = out.iter().map(|b| b.len()).sum();
        let max = total / SIGINFO_SIZE;
        if max == 0 {
            return Err(Errno::EINVAL);
        }
        loop {
            let mut records = Vec::new();
            let mask = self.mask.load(Relaxed);
            while records.len() < max * SIGINFO_SIZE {
                // The reading thread's own signals, then the process's.
                let Some(info) = ctx.proc.signals.dequeue(ctx.thread.tid, mask) else {
                    break;
                };
                records.extend_from_slice(&encode(&info));
            }
            if !records.is_empty() {
                let mut rest = &records[..];
                for b in out {
                    let n = b.len().min(rest.len());
                    b.copy_from(&rest[..n]);
                    rest = &rest[n..];
                }
                return Ok(records.len() as u64);
            }
            if host::nonblocking(self.raw()) {
                return Err(Errno::EAGAIN);
            }
            // Another thread may raise one; a single-threaded guest waits forever, as on
            // Linux when nothing else signals it. A signal to act on (or exit_group)
            // interrupts the wait: EINTR, which the vCPU loop restarts or reports.
            host::wait_readable(self.raw())?;
        }
    }
}

/// `struct signalfd_siginfo` (the same on every Linux architecture).
fn encode(i: &SigInfo) -> [u8; SIGINFO_SIZE] {
    let mut b = [0u8; SIGINFO_SIZE];
    b[0..4].copy_from_slice(&i.signo.to_le_bytes());
    b[8..12].copy_from_slice(&i.code.to_le_bytes());
    match i.addr {
        Some(addr) => b[72..80].copy_from_slice(&addr.to_le_bytes()),
        // A POSIX timer's: its id in ssi_tid, its overrun in ssi_overrun (SigInfo keeps
        // them where siginfo has si_timerid and si_overrun: `pid` and `uid`).
        None if i.code == crate::signal::timers::SI_TIMER => {
            b[24..28].copy_from_slice(&i.pid.to_le_bytes());
            b[32..36].copy_from_slice(&i.uid.to_le_bytes());
            b[44..48].copy_from_slice(&(i.value as u32).to_le_bytes());
            b[48..56].copy_from_slice(&i.value.to_le_bytes());
        }
        None => {
            b[12..16].copy_from_slice(&i.pid.to_le_bytes());
            b[16..20].copy_from_slice(&i.uid.to_le_bytes());
            // ssi_int and ssi_ptr both carry si_value.
            b[44..48].copy_from_slice(&(i.value as u32).to_le_bytes());
            b[48..56].copy_from_slice(&i.value.to_le_bytes());
        }
    }
    if let Some(c) = i.chld {
        b[40..44].copy_from_slice(&c.status.to_le_bytes());
        b[56..64].copy_from_slice(&c.utime.to_le_bytes());
        b[64..72].copy_from_slice(&c.stime.to_le_bytes());
    }
    b
}

pub fn signalfd4(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (nonblock, cloexec) = open_flags(a[3], GUEST_O_NONBLOCK | GUEST_O_CLOEXEC)?;
    if a[2] != 8 {
        return Err(Errno::EINVAL);
    }
    let mask = ctx.read_val::<u64>(a[1])? & !(sig_bit(SIGKILL) | sig_bit(SIGSTOP));
    if a[0] as i32 != -1 {
        let f = ctx.file(a[0])?;
        let s = f.synthetic_as::<SignalFd>().ok_or(Errno::EINVAL)?;
        s.mask.store(mask, Relaxed);
        ctx.proc.signals.renotify();
        return Ok(a[0] as i32 as u64);
    }
    let s = SignalFd::create(mask, nonblock != 0)?;
    let w: Weak<dyn PendingWatcher> = Arc::downgrade(&s) as _;
    ctx.proc.signals.watch(w);
    ctx.install(OpenFile::synthetic(s), cloexec)
}

/// Host calls; all POSIX but the eventfd (a macOS port would use a pipe).
mod host {
    use std::os::fd::OwnedFd;

    use crate::errno::Errno;

    #[cfg(target_os = "linux")]
    pub fn eventfd(nonblock: i32) -> Result<OwnedFd, Errno> {
        // SAFETY: no pointers; `owned` takes ownership of the new fd only if it is valid.
        super::super::owned(unsafe { libc::eventfd(0, nonblock | libc::EFD_CLOEXEC) } as i64)
    }

    #[cfg(not(target_os = "linux"))]
    pub fn eventfd(_: i32) -> Result<OwnedFd, Errno> {
        super::super::unsupported()
    }

    pub fn arm(fd: i32) {
        let one = 1u64;
        // Cannot fail: the count goes from 0 to 1.
        // SAFETY: writes the 8 bytes of the local `one`, the size an eventfd expects; `fd` is
        // the signalfd's own eventfd.
        unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
    }

    /// Resets the count without ever blocking (the guest may have cleared O_NONBLOCK, or
    /// consumed the count itself with readv).
    pub fn disarm(fd: i32) {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `p` is one local pollfd; a zero timeout never blocks.
        if unsafe { libc::poll(&mut p, 1, 0) } == 1 {
            let mut v = 0u64;
            // SAFETY: reads at most 8 bytes into the local u64 `v`.
            unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
        }
    }

    pub fn nonblocking(fd: i32) -> bool {
        // SAFETY: F_GETFL takes no argument.
        unsafe { libc::fcntl(fd, libc::F_GETFL) & libc::O_NONBLOCK != 0 }
    }

    pub fn wait_readable(fd: i32) -> Result<(), Errno> {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `p` is one local pollfd, alive across the call.
        if unsafe { libc::poll(&mut p, 1, -1) } < 0 {
            return Err(Errno::last());
        }
        Ok(())
    }
}
