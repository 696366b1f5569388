//! The fork-IPC actor of the spawn fork path, on the actor runtime
//! (`elfuse_actors::runtime`, traced as `fork-ipc` with `--trace=actors`). It owns the
//! children started and not yet handed their state, and writes that state in the wire
//! format. Its handlers make no host call: the forking vCPU thread starts the child and
//! sends the bytes itself, driven by the replies.
//!
//! 1. The vCPU thread starts `elfuse --fork-child FD` ([`spawn`]; the child's start-up,
//!    its engine's included, then overlaps the RAM snapshot and the capture) and tells `Spawn { id }`: the actor keeps
//!    the child's pid and socket.
//! 2. `Handover { id, state }` (called): the actor encodes the captured state
//!    ([`Handover::encode`]) and replies with the child, the payload and the fds to pass;
//!    the vCPU thread writes them on the socket ([`handover`]). For vfork it keeps the
//!    socket, whose end-of-file means "the child has exec'd or exited".
//!
//! The child is started by the forking thread, not by a helper, which is also what
//! Linux's fork does: it gets that thread's credentials (a guest thread's setuid is
//! per host thread, `syscall::cred`), and its parent-death signal follows that thread.

use std::cell::Cell;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use elfuse_actors::runtime::{Actor, ActorRef, Config, Mode};
use elfuse_actors::trace::TraceSink;

use super::state::Handover;
use super::wire;
use crate::errno::Errno;

/// A started child, waiting for its state.
pub struct Spawned {
    pid: i32,
    sock: UnixStream,
}

/// A child with its state encoded, ready to send.
pub struct Ready {
    child: Spawned,
    payload: Vec<u8>,
    fds: Vec<RawFd>,
    /// What keeps `fds` open until they are sent.
    _state: Option<Box<Handover<RawFd>>>,
}

pub enum ForkMsg {
    Spawn {
        id: u64,
        child: Cell<Option<Spawned>>,
    },
    /// The state travels in the message and is taken out by the handler (messages are
    /// handled by reference); None: abandon the child (it gets an empty handover and
    /// exits).
    Handover {
        id: u64,
        state: Cell<Option<Box<Handover<RawFd>>>>,
    },
}

pub struct ForkIpc {
    pending: HashMap<u64, Spawned>,
}

impl Actor for ForkIpc {
    type Msg = ForkMsg;
    type Reply = Option<Result<Ready, Errno>>;
    const NAME: &'static str = "fork-ipc";

    fn kind(m: &ForkMsg) -> &'static str {
        match m {
            ForkMsg::Spawn { .. } => "spawn",
            ForkMsg::Handover { .. } => "handover",
        }
    }

    fn handle(&mut self, m: &ForkMsg) -> Option<Result<Ready, Errno>> {
        match m {
            ForkMsg::Spawn { id, child } => {
                self.pending.extend(child.take().map(|c| (*id, c)));
                None
            }
            ForkMsg::Handover { id, state } => {
                let Some(child) = self.pending.remove(id) else {
                    return Some(Err(Errno::EAGAIN));
                };
                let state = state.take();
                let (payload, fds) = state.as_ref().map(|s| s.encode()).unwrap_or_default();
                Some(Ok(Ready {
                    child,
                    payload,
                    fds,
                    _state: state,
                }))
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

/// Starts a child now, on the calling (forking) thread, and has the actor keep it;
/// returns the ticket for [`handover`].
pub fn spawn(sink: Option<Arc<dyn TraceSink>>) -> Result<u64, Errno> {
    let child = spawn_child()?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    actor(sink).tell(ForkMsg::Spawn {
        id,
        child: Cell::new(Some(child)),
    });
    Ok(id)
}

/// Hands `state` (None: nothing, the child exits) to child `id`: the actor encodes it,
/// this thread sends it. Returns the child's pid and, for vfork, the socket to wait on.
pub fn handover(
    id: u64,
    state: Option<Handover<RawFd>>,
) -> Result<(i32, Option<UnixStream>), Errno> {
    let vfork = state.as_ref().is_some_and(|s| s.inh.vfork);
    let msg = ForkMsg::Handover {
        id,
        state: Cell::new(state.map(Box::new)),
    };
    let Ready {
        child: Spawned { pid, mut sock },
        payload,
        fds,
        _state,
    } = actor(None).call(msg).unwrap_or(Err(Errno::EAGAIN))?;
    if let Err(e) = wire::send(&mut sock, &payload, &fds) {
        // The child died before taking its state; it exits with an error status the
        // parent guest sees in wait4.
        tracing::warn!("fork: handover to pid {pid} failed: {e}");
        return Ok((pid, None));
    }
    Ok((pid, vfork.then_some(sock)))
}

/// Clearing CLOEXEC on the child's end and spawning happen under this lock, so the fd
/// cannot leak into another spawn of this host process.
static SPAWNING: Mutex<()> = Mutex::new(());

/// Starts `elfuse --fork-child FD` with one end of a fresh socket pair at FD.
fn spawn_child() -> Result<Spawned, Errno> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| Errno::from_io(&e))?;
    let exe = std::env::current_exe().map_err(|e| Errno::from_io(&e))?;
    let fd = theirs.as_raw_fd();
    let serial = SPAWNING.lock().unwrap_or_else(|p| p.into_inner());
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
    drop(serial);
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
