//! The fork-IPC actor: owns child spawning and the handover sockets of the spawn fork
//! path, on the actor runtime (`elfuse_actors::runtime`, its own thread, traced as
//! `fork-ipc` with `--trace=actors`). vCPU threads talk to it only through messages:
//!
//! 1. `Spawn { id }` (told, no reply): start `elfuse --fork-child FD` right away, so that
//!    the host's process creation overlaps the caller's RAM snapshot;
//! 2. `Handover { id, out }` (called): send the captured state to that child; the reply
//!    is its pid and, for vfork, the socket whose end-of-file means "the child has
//!    exec'd or exited".
//!
//! Its state is the children started and not yet handed their state. Spawning and the
//! handover's write are host calls on the actor's own thread, which is what it is for:
//! no vCPU waits on them but the one forking.

use std::cell::Cell;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use elfuse_actors::runtime::{Actor, ActorRef, Config, Mode};
use elfuse_actors::trace::TraceSink;

use super::state::Outgoing;
use super::wire;
use crate::errno::Errno;

pub type HandoverResult = Result<(i32, Option<UnixStream>), Errno>;

pub enum ForkMsg {
    Spawn {
        id: u64,
    },
    /// The state travels in the message and is taken out by the handler (messages are
    /// handled by reference).
    Handover {
        id: u64,
        out: Cell<Option<Box<Outgoing>>>,
    },
}

struct Spawned {
    pid: i32,
    sock: UnixStream,
}

pub struct ForkIpc {
    pending: HashMap<u64, Result<Spawned, Errno>>,
}

impl Actor for ForkIpc {
    type Msg = ForkMsg;
    type Reply = Option<HandoverResult>;
    const NAME: &'static str = "fork-ipc";

    fn kind(m: &ForkMsg) -> &'static str {
        match m {
            ForkMsg::Spawn { .. } => "spawn",
            ForkMsg::Handover { .. } => "handover",
        }
    }

    fn handle(&mut self, m: &ForkMsg) -> Option<HandoverResult> {
        match m {
            ForkMsg::Spawn { id } => {
                self.pending.insert(*id, spawn_child());
                None
            }
            ForkMsg::Handover { id, out } => {
                let out = out.take()?;
                Some(match self.pending.remove(id) {
                    Some(Ok(s)) => send(s, *out),
                    Some(Err(e)) => Err(e),
                    None => Err(Errno::EAGAIN),
                })
            }
        }
    }
}

static ACTOR: OnceLock<ActorRef<ForkIpc>> = OnceLock::new();
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The host process's fork-IPC actor (started at the first spawn-path fork, tracing to
/// `sink`).
fn actor(sink: Option<Arc<dyn TraceSink>>) -> &'static ActorRef<ForkIpc> {
    ACTOR.get_or_init(|| {
        ActorRef::spawn(
            ForkIpc {
                pending: HashMap::new(),
            },
            Config {
                mode: Mode::Threaded,
                sink,
                observer: None,
                tick: None,
            },
        )
    })
}

/// Asks the actor to start a child now; returns the ticket for [`handover`].
pub fn spawn(sink: Option<Arc<dyn TraceSink>>) -> u64 {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    actor(sink).tell(ForkMsg::Spawn { id });
    id
}

/// Hands the captured state to child `id`; blocks until it is sent.
pub fn handover(id: u64, out: Outgoing) -> HandoverResult {
    let msg = ForkMsg::Handover {
        id,
        out: Cell::new(Some(Box::new(out))),
    };
    actor(None).call(msg).unwrap_or(Err(Errno::EAGAIN))
}

/// Starts `elfuse --fork-child FD` with one end of a fresh socket pair at FD.
fn spawn_child() -> Result<Spawned, Errno> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| Errno::from_io(&e))?;
    let exe = std::env::current_exe().map_err(|e| Errno::from_io(&e))?;
    let fd = theirs.as_raw_fd();
    // Only this thread spawns processes, so clearing CLOEXEC here cannot leak the fd
    // into another spawn; `theirs` is closed on this side right after.
    // SAFETY: F_SETFD takes an int; `fd` is the child's end of the socketpair, which this
    // function holds open until the spawn.
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
