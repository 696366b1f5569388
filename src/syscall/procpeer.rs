//! The peer channel: how one elfuse process shows another the guest behind it.
//!
//! Guest pids are host pids and every guest process is its own elfuse host process, so
//! the host's /proc/<pid> of another guest process describes elfuse (its maps, fds,
//! exe, threads). Instead each elfuse process serves requests about its guest on an
//! abstract-namespace Unix socket named after its host pid (`elfuse-proc/<pid>`), and
//! a guest that names another process's /proc/<pid>, its memory (process_vm_readv,
//! process_vm_writev, /proc/<pid>/mem) or its fds (pidfd_getfd, /proc/<pid>/fd/N)
//! asks that process (`procremote` has the requests; this file the channel).
//!
//! - **Who may ask.** The server takes the asker's credentials from the socket
//!   (SO_PEERCRED): root, or the same real and effective uid as this process (Linux's
//!   ptrace access check for same-user processes); anyone else gets EACCES. The asker
//!   checks that the socket's owner is the very pid it asked (a name squatted by another
//!   process, or a listener left behind in a fork child, is not that process: ESRCH).
//! - **Who answers.** One thread per host process (`elfuse-proc`), started with the
//!   host-signal watcher (so a native fork child, which defers that watcher, pays for it
//!   only if it lives). The socket is bound at once, so an asker's connection waits in
//!   the backlog meanwhile. Each request is one connection: a request, one reply (with
//!   at most one host fd as SCM_RIGHTS), closed. The answer is rendered by the same code
//!   that renders the process's own /proc for itself, with a context that has no calling
//!   thread; nothing of elfuse's own (host fds, reserved memory, helper threads) is in it.
//! - **A process that does not answer.** Connection refused (nothing bound: a host
//!   process that is not elfuse, or an elfuse process exiting) and nothing else: the
//!   caller decides (the host's entry for a non-elfuse process, ENOENT/ESRCH for a gone
//!   or going elfuse one). A stopped process (SIGSTOP) cannot answer: the asker gives up
//!   after [`TIMEOUT`] with ESRCH (a known difference: Linux reads a stopped process's
//!   /proc).
//! - **Fork.** A native fork child inherits the parent's listening socket: [`serve`]
//!   in the child closes that copy and binds the child's own name. [`fork_guard`] keeps
//!   the serving thread out of the process's state (the mm lock, the fd table) at the
//!   fork, as the host-signal watcher is kept out.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use crate::errno::Errno;
use crate::fork::wire::{self, Dec, Enc};
use crate::process::Process;

/// The request "are you there" (request 0 of `procremote`), answered here.
const PING: u64 = 0;

/// How long an asker waits for a reply.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// Largest request a server reads (a process_vm_writev chunk is at most 1 MiB).
const MAX_REQUEST: u64 = 2 << 20;

/// Answers one request about `proc` into the reply payload and at most one host fd
/// (`procserve::handle`; handed in by the code that starts a process, above this layer).
pub type Handler = fn(&Arc<Process>, &[u8], &mut Enc, &mut Option<OwnedFd>) -> Result<(), Errno>;

struct Served {
    pid: i32,
    listener: UnixListener,
    proc: Weak<Process>,
    handler: Handler,
    started: bool,
}

static SERVED: Mutex<Option<Served>> = Mutex::new(None);

/// Held by the serving thread while it handles a request, and by a forking thread
/// across a native fork (taken before the host-signal watcher's guard).
static SERVING: Mutex<()> = Mutex::new(());

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn getpid() -> i32 {
    nix::unistd::getpid().as_raw()
}

#[cfg(target_os = "linux")]
fn addr(pid: i32) -> io::Result<std::os::unix::net::SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    std::os::unix::net::SocketAddr::from_abstract_name(format!("elfuse-proc/{pid}"))
}

#[cfg(not(target_os = "linux"))]
fn addr(_: i32) -> io::Result<std::os::unix::net::SocketAddr> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Makes this host process answer for `proc` with `handler`: binds its name now; the
/// serving thread starts with the host-signal watcher ([`start`]), inheriting its
/// blocked signals.
pub fn serve(proc: &Arc<Process>, handler: Handler) {
    let pid = getpid();
    let mut s = lock(&SERVED);
    // A native fork child's copy of its parent's listener is dropped (closed) here.
    *s = None;
    let listener = match addr(pid).and_then(|a| UnixListener::bind_addr(&a)) {
        Ok(l) => l,
        Err(e) => {
            tracing::debug!("peer channel not served: {e}");
            return;
        }
    };
    *s = Some(Served {
        pid,
        listener,
        proc: Arc::downgrade(proc),
        handler,
        started: false,
    });
}

/// Starts the serving thread of [`serve`], once per host process.
pub fn start() {
    let mut s = lock(&SERVED);
    let Some(sv) = s.as_mut().filter(|sv| sv.pid == getpid() && !sv.started) else {
        return;
    };
    let fd = sv.listener.as_raw_fd();
    let (proc, handler) = (sv.proc.clone(), sv.handler);
    let spawned = std::thread::Builder::new()
        .name("elfuse-proc".into())
        .spawn(move || run(fd, proc, handler));
    match spawned {
        Ok(_) => sv.started = true,
        Err(e) => tracing::warn!("peer channel thread not started: {e}"),
    }
}

/// Taken by a forking thread across a native fork (see the module doc).
pub fn fork_guard() -> MutexGuard<'static, ()> {
    lock(&SERVING)
}

/// The serving thread: accepts and answers one connection at a time until the process
/// is gone. `fd` is the listener [`SERVED`] owns for the life of this host process.
fn run(fd: RawFd, proc: Weak<Process>, handler: Handler) {
    // SAFETY: `fd` stays open as long as this host process (SERVED owns it and only a
    // fork child, which lacks this thread, replaces it); ManuallyDrop never closes it.
    let listener = std::mem::ManuallyDrop::new(unsafe { UnixListener::from_raw_fd(fd) });
    loop {
        let conn = match listener.accept() {
            Ok((c, _)) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!("peer channel: accept: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let Some(p) = proc.upgrade() else { return };
        answer(&p, conn, handler);
    }
}

/// The (uid, pid) of the other end of `s`.
fn peer_cred(s: &UnixStream) -> Option<(u32, i32)> {
    // SAFETY: struct ucred is three integers, valid zeroed.
    let mut c: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the local `c`.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut c as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (r == 0).then_some((c.uid, c.pid))
}

/// Whether a process with effective uid `uid` may look at this one.
fn may_ask(uid: u32) -> bool {
    uid == 0 || (uid == nix::unistd::getuid().as_raw() && uid == nix::unistd::geteuid().as_raw())
}

fn answer(proc: &Arc<Process>, mut conn: UnixStream, handler: Handler) {
    let _ = conn.set_read_timeout(Some(TIMEOUT));
    let _ = conn.set_write_timeout(Some(TIMEOUT));
    let Ok((req, _)) = recv_bounded(&mut conn) else {
        return;
    };
    let mut out = Enc::default();
    let mut fd: Option<OwnedFd> = None;
    let allowed = peer_cred(&conn).is_some_and(|(uid, _)| may_ask(uid));
    let r = if allowed {
        let _quiet = lock(&SERVING);
        if req.len() == 8 && req == PING.to_le_bytes() {
            Ok(())
        } else {
            handler(proc, &req, &mut out, &mut fd)
        }
    } else {
        Err(Errno::EACCES)
    };
    let mut reply = Enc::default();
    match r {
        Ok(()) => {
            reply.u64(0);
            reply.0.extend_from_slice(&out.0);
        }
        Err(e) => reply.u64(e.0 as u32 as u64),
    }
    let fds: Vec<RawFd> = fd.iter().map(|f| f.as_raw_fd()).collect();
    let _ = wire::send(&mut conn, &reply.0, &fds);
}

/// [`wire::recv`] of a request, refusing one larger than [`MAX_REQUEST`] before reading it.
fn recv_bounded(conn: &mut UnixStream) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut hdr = [0u8; 16];
    let n = peek(conn, &mut hdr)?;
    let mut d = Dec::new(&hdr[..n]);
    let (nfds, len) = (d.u64()?, d.u64()?);
    if nfds != 0 || len > MAX_REQUEST {
        return Err(io::Error::from(io::ErrorKind::InvalidData));
    }
    wire::recv(conn)
}

/// Waits for and peeks at the first bytes on `conn` (MSG_PEEK, MSG_WAITALL).
fn peek(conn: &UnixStream, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: recv writes at most `buf.len()` bytes into `buf`.
    let r = unsafe {
        libc::recv(
            conn.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_WAITALL,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as usize)
}

/// A connection to elfuse process `pid`'s server: `None` when nothing there answers
/// as that process.
fn connect(pid: i32) -> Option<UnixStream> {
    if pid <= 0 || pid == getpid() {
        return None;
    }
    let s = UnixStream::connect_addr(&addr(pid).ok()?).ok()?;
    // The listener's credentials are its creator's: the process itself, not a squatter
    // or a fork child holding a copy of its parent's socket (which then would be the
    // parent's pid: `serve` closes those copies).
    if peer_cred(&s).map(|c| c.1) != Some(pid) {
        return None;
    }
    let _ = s.set_read_timeout(Some(TIMEOUT));
    let _ = s.set_write_timeout(Some(TIMEOUT));
    Some(s)
}

/// Whether `pid` is an elfuse process that answers on the channel.
pub fn answers(pid: i32) -> bool {
    ask(pid, &PING.to_le_bytes()).is_ok()
}

/// Sends request `req` to elfuse process `pid`: the reply's payload and the host fd it
/// carried, if any. ESRCH when the process does not answer; the server's errno else.
pub fn ask(pid: i32, req: &[u8]) -> Result<(Vec<u8>, Option<OwnedFd>), Errno> {
    let mut s = connect(pid).ok_or(Errno::ESRCH)?;
    wire::send(&mut s, req, &[]).map_err(|_| Errno::ESRCH)?;
    let (reply, mut fds) = wire::recv(&mut s).map_err(|_| Errno::ESRCH)?;
    let mut d = Dec::new(&reply);
    let status = d.u64().map_err(|_| Errno::ESRCH)?;
    if status != 0 {
        return Err(Errno(status as i32));
    }
    Ok((reply[8..].to_vec(), fds.pop()))
}
