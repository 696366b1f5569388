//! The fork-IPC actor: one host thread that owns child spawning and the handover
//! sockets. vCPU threads talk to it only through messages:
//!
//! 1. `Spawn { id }` (no reply): start `elfuse --fork-child FD` right away, so that the
//!    host's process creation overlaps the caller's RAM snapshot;
//! 2. `Handover { id, out, reply }`: send the captured state to that child; reply with
//!    its pid and, for vfork, the socket whose end-of-file means "the child has exec'd
//!    or exited".
//!
//! A plain thread and `std::sync::mpsc` today; the state lives in `Actor`, so moving it
//! onto the actor runtime (actors/) is a change of mailbox, not of logic.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Mutex, OnceLock};

use super::state::Outgoing;
use super::wire;
use crate::errno::Errno;

pub type HandoverResult = Result<(i32, Option<UnixStream>), Errno>;

enum Msg {
    Spawn {
        id: u64,
    },
    Handover {
        id: u64,
        out: Outgoing,
        reply: Sender<HandoverResult>,
    },
}

struct Spawned {
    pid: i32,
    sock: UnixStream,
}

struct Actor {
    pending: HashMap<u64, Result<Spawned, Errno>>,
}

static MAILBOX: OnceLock<Mutex<Sender<Msg>>> = OnceLock::new();
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn mailbox() -> Sender<Msg> {
    let m = MAILBOX.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("fork-ipc".into())
            .spawn(move || run(rx))
            .expect("cannot start the fork-IPC actor thread");
        Mutex::new(tx)
    });
    m.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Asks the actor to start a child now; returns the ticket for [`handover`].
pub fn spawn() -> u64 {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let _ = mailbox().send(Msg::Spawn { id });
    id
}

/// Hands the captured state to child `id`; blocks until it is sent.
pub fn handover(id: u64, out: Outgoing) -> HandoverResult {
    let (reply, rx) = mpsc::channel();
    mailbox()
        .send(Msg::Handover { id, out, reply })
        .map_err(|_| Errno::EAGAIN)?;
    rx.recv().unwrap_or(Err(Errno::EAGAIN))
}

fn run(rx: Receiver<Msg>) {
    let mut a = Actor {
        pending: HashMap::new(),
    };
    for msg in rx {
        match msg {
            Msg::Spawn { id } => {
                let r = spawn_child();
                a.pending.insert(id, r);
            }
            Msg::Handover { id, out, reply } => {
                let r = match a.pending.remove(&id) {
                    Some(Ok(s)) => send(s, out),
                    Some(Err(e)) => Err(e),
                    None => Err(Errno::EAGAIN),
                };
                let _ = reply.send(r);
            }
        }
    }
}

/// Starts `elfuse --fork-child FD` with one end of a fresh socket pair at FD.
fn spawn_child() -> Result<Spawned, Errno> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| Errno::from_io(&e))?;
    let exe = std::env::current_exe().map_err(|e| Errno::from_io(&e))?;
    let fd = theirs.as_raw_fd();
    // Only this thread spawns processes, so clearing CLOEXEC here cannot leak the fd
    // into another spawn; `theirs` is closed on this side right after.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    let child = Command::new(exe)
        .arg("--fork-child")
        .arg(fd.to_string())
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn();
    drop(OwnedFd::from(theirs));
    let child = child.map_err(|e| {
        tracing::warn!("fork: cannot start a child elfuse: {e}");
        Errno::EAGAIN
    })?;
    // The guest reaps the child with wait4/waitid on its host pid; std's handle is
    // dropped without waiting (that neither kills nor reaps it).
    let pid = child.id() as i32;
    drop(child);
    Ok(Spawned { pid, sock: ours })
}

fn send(mut s: Spawned, out: Outgoing) -> HandoverResult {
    if let Err(e) = wire::send(&mut s.sock, &out.payload, &out.fds) {
        // The child died before taking its state; it exits with an error status the
        // parent guest sees in wait4.
        tracing::warn!("fork: handover to pid {} failed: {e}", s.pid);
        return Ok((s.pid, None));
    }
    Ok((s.pid, out.vfork.then_some(s.sock)))
}
