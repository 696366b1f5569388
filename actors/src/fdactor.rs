//! The fd-table actor: the only owner of a process's [`FdTable`].
//!
//! Mutations (open installs, close, close_range, dup*, F_DUPFD, F_SETFD, pipe2, limits,
//! exec's CLOEXEC sweep, fork's snapshot) are messages; dup-vs-close and friends are
//! settled by the actor's serialisation, not by paired locks. Reads (read/write/poll/...
//! resolving guest fd → open file, F_GETFD) never message the actor: they look the fd up
//! in the view the actor publishes ([`View`]: the table's own slots, written by the
//! handler before it replies, so a thread always sees its own mutations). A lookup
//! clones the description's `Arc`, so an in-flight call finishes on the old description
//! even if another thread closes the fd meanwhile, and the host fd cannot be recycled
//! under it.
//!
//! Closed descriptions travel back in the reply and are dropped by the caller, outside
//! the actor: closing a host fd may block (NFS, a tty) and must not stall the table.

use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::fdtable::{FdError, FdTable, OpenFile};
use crate::runtime::{Actor, ActorRef, Config, Mode, Observer};
use crate::trace::TraceSink;
use crate::view::Published;
pub use crate::view::View;

/// A message to the fd-table actor.
#[derive(Clone, Debug)]
pub enum FdMsg {
    /// Install a new description at the lowest free fd ≥ `min` (open, socket, ...).
    Install {
        file: Arc<OpenFile>,
        cloexec: bool,
        min: i32,
    },
    /// Install two (pipe2, socketpair): both or neither. Boxed to keep every message
    /// within 16 bytes (see [`FdReply`]).
    InstallPair {
        pair: Box<[Arc<OpenFile>; 2]>,
        cloexec: bool,
    },
    /// Descriptions received with SCM_RIGHTS: each at the lowest free fd, in order,
    /// until the limit (the rest are the caller's to drop, as Linux's scm_detach_fds
    /// stops at the first failure).
    InstallMany {
        files: Box<Vec<Arc<OpenFile>>>,
        cloexec: bool,
    },
    /// dup / F_DUPFD / F_DUPFD_CLOEXEC.
    Dup {
        fd: i32,
        cloexec: bool,
        min: i32,
    },
    /// dup2 / dup3: `old` at exactly `new`, replacing what was there. dup2 with
    /// `old == new` only checks `old` (dup3 rejects that case before sending).
    DupTo {
        old: i32,
        new: i32,
        cloexec: bool,
    },
    Close(i32),
    CloseRange {
        lo: u32,
        hi: u32,
        cloexec_only: bool,
    },
    SetCloexec {
        fd: i32,
        on: bool,
    },
    /// setrlimit(RLIMIT_NOFILE): soft and hard, and whether the hard one may be raised.
    SetLimits {
        lim: Box<[u64; 2]>,
        may_raise: bool,
    },
    /// execve: close every CLOEXEC fd.
    CloseOnExec,
    /// fork: a copy of the table (the descriptions are shared, as on Linux).
    Snapshot,
}

/// The actor's answer. Messages and replies are at most 16 bytes (a test checks): they
/// travel in two registers, where a larger one is copied through the stack, stored in
/// pieces and read back whole, which stalls store forwarding on every call.
#[derive(Debug)]
pub enum FdReply {
    Fd(Result<i32, FdError>),
    Pair(Result<(i32, i32), FdError>),
    /// The fds [`FdMsg::InstallMany`] installed, in order (maybe fewer than sent).
    Fds(Box<Vec<i32>>),
    /// Descriptions that left the table (to be dropped by the caller): close_range and
    /// exec's sweep, which cannot fail.
    Closed(Box<Vec<Arc<OpenFile>>>),
    /// The same for close and dup2/dup3 (at most one, no allocation).
    ClosedOne(Result<Option<Arc<OpenFile>>, FdError>),
    Done(Result<(), FdError>),
    /// The RLIMIT_NOFILE pair before [`FdMsg::SetLimits`].
    Limits(Box<Result<(u64, u64), FdError>>),
    Snapshot(Box<FdTable>),
}

/// The actor's state: the table, whose slots are the view it publishes.
pub struct FdState {
    table: FdTable<Published>,
    /// RLIMIT_NOFILE (soft, hard) as published for lock-free reads.
    limit: Arc<AtomicU64>,
    hard: Arc<AtomicU64>,
}

impl Actor for FdState {
    type Msg = FdMsg;
    type Reply = FdReply;
    const NAME: &'static str = "fdtable";

    #[inline(always)]
    fn kind(m: &FdMsg) -> &'static str {
        match m {
            FdMsg::Install { .. } => "install",
            FdMsg::InstallPair { .. } => "install_pair",
            FdMsg::InstallMany { .. } => "install_received",
            FdMsg::Dup { .. } => "dup",
            FdMsg::DupTo { .. } => "dup_to",
            FdMsg::Close(_) => "close",
            FdMsg::CloseRange { .. } => "close_range",
            FdMsg::SetCloexec { .. } => "set_cloexec",
            FdMsg::SetLimits { .. } => "set_limits",
            FdMsg::CloseOnExec => "close_on_exec",
            FdMsg::Snapshot => "snapshot",
        }
    }

    // Inlined into each `FdActor` method, whose message kind is known there: the
    // dispatch folds away and the reply is built in registers, not copied through memory.
    #[inline(always)]
    fn handle(&mut self, m: &FdMsg) -> FdReply {
        let t = &mut self.table;
        match *m {
            FdMsg::Install {
                ref file,
                cloexec,
                min,
            } => FdReply::Fd(t.install(file.clone(), cloexec, min)),
            FdMsg::InstallPair { ref pair, cloexec } => {
                let [a, b] = &**pair;
                let r = t.install(a.clone(), cloexec, 0).and_then(|fa| {
                    match t.install(b.clone(), cloexec, 0) {
                        Ok(fb) => Ok((fa, fb)),
                        Err(e) => {
                            let _ = t.close(fa);
                            Err(e)
                        }
                    }
                });
                FdReply::Pair(r)
            }
            FdMsg::InstallMany { ref files, cloexec } => FdReply::Fds(Box::new(
                files
                    .iter()
                    .map_while(|f| t.install(f.clone(), cloexec, 0).ok())
                    .collect(),
            )),
            FdMsg::Dup { fd, cloexec, min } => {
                FdReply::Fd(t.get(fd).and_then(|f| t.install(f, cloexec, min)))
            }
            FdMsg::DupTo { old, new, cloexec } => {
                let r = t.get(old).and_then(|f| {
                    if old == new {
                        return Ok(None);
                    }
                    t.install_at(new, f, cloexec)
                });
                FdReply::ClosedOne(r)
            }
            FdMsg::Close(fd) => FdReply::ClosedOne(t.close(fd).map(Some)),
            FdMsg::CloseRange {
                lo,
                hi,
                cloexec_only,
            } => {
                let closed = t.close_range(lo, hi, cloexec_only);
                FdReply::Closed(Box::new(closed.into_iter().map(|(_, f)| f).collect()))
            }
            FdMsg::SetCloexec { fd, on } => FdReply::Done(t.set_cloexec(fd, on)),
            FdMsg::SetLimits { ref lim, may_raise } => {
                let r = t.set_limits(lim[0], lim[1], may_raise);
                let (soft, hard) = t.limits();
                self.limit.store(soft, Ordering::Release);
                self.hard.store(hard, Ordering::Release);
                FdReply::Limits(Box::new(r))
            }
            FdMsg::CloseOnExec => {
                let closed = t.close_on_exec();
                FdReply::Closed(Box::new(closed.into_iter().map(|(_, f)| f).collect()))
            }
            FdMsg::Snapshot => FdReply::Snapshot(Box::new(t.to_plain())),
        }
    }
}

/// The handle the syscall layer uses: lookups in the view, mutations as messages.
pub struct FdActor {
    actor: ActorRef<FdState>,
    view: Arc<View>,
    limit: Arc<AtomicU64>,
    hard: Arc<AtomicU64>,
}

pub struct FdActorConfig {
    pub mode: Mode,
    pub sink: Option<Arc<dyn TraceSink>>,
    pub observer: Option<Observer<FdState>>,
}

impl Default for FdActorConfig {
    fn default() -> Self {
        FdActorConfig {
            mode: Mode::Combining,
            sink: None,
            observer: None,
        }
    }
}

/// A reply of the wrong kind: a bug in this file. Only its kind is passed on (and the
/// reply leaked), so the hot paths never take a reply's address, which would keep
/// replies in memory.
#[inline(always)]
fn unexpected(r: &FdReply) -> ! {
    let kind = match r {
        FdReply::Fd(_) => "Fd",
        FdReply::Pair(_) => "Pair",
        FdReply::Fds(_) => "Fds",
        FdReply::Closed(_) => "Closed",
        FdReply::ClosedOne(_) => "ClosedOne",
        FdReply::Done(_) => "Done",
        FdReply::Limits(_) => "Limits",
        FdReply::Snapshot(_) => "Snapshot",
    };
    mismatch(kind)
}

#[cold]
#[inline(never)]
fn mismatch(kind: &str) -> ! {
    unreachable!("fd-table actor answered {kind} to another message kind")
}

impl FdActor {
    pub fn new(table: FdTable, cfg: FdActorConfig) -> Self {
        let view = Arc::new(View::default());
        let limit = Arc::new(AtomicU64::new(table.limit()));
        let hard = Arc::new(AtomicU64::new(table.limits().1));
        let state = FdState {
            table: table.move_to(Published::new(view.clone())),
            limit: limit.clone(),
            hard: hard.clone(),
        };
        let actor = ActorRef::spawn(
            state,
            Config {
                mode: cfg.mode,
                sink: cfg.sink,
                observer: cfg.observer,
                tick: None,
            },
        );
        FdActor {
            actor,
            view,
            limit,
            hard,
        }
    }

    // ---- reads: the published view, no message ----

    /// The description behind `fd` (kept alive by the returned `Arc`).
    pub fn get(&self, fd: i32) -> Result<Arc<OpenFile>, FdError> {
        self.view.file(fd).ok_or(FdError::BadFd)
    }

    pub fn cloexec(&self, fd: i32) -> Result<bool, FdError> {
        self.view.cloexec(fd).ok_or(FdError::BadFd)
    }

    /// RLIMIT_NOFILE as the table enforces it.
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Acquire)
    }

    /// RLIMIT_NOFILE as (soft, hard): the actor is its only owner.
    pub fn limits(&self) -> (u64, u64) {
        (self.limit(), self.hard.load(Ordering::Acquire))
    }

    /// Open fds now (a message: the actor's table is the authority).
    pub fn count(&self) -> usize {
        self.fork_snapshot().count()
    }

    // ---- mutations: messages ----
    //
    // Each method builds its message and unpacks its reply through `call_map` (see
    // there); descriptions that left the table are dropped here, outside the actor.

    // A `Copy` payload is read out of a `ManuallyDrop` reply: the reply's drop glue would
    // take its address and keep it in memory (its only owned payloads are elsewhere).
    #[inline(always)]
    fn fd(&self, m: impl FnOnce() -> FdMsg) -> Result<i32, FdError> {
        self.actor.call_map(m, |r| match *ManuallyDrop::new(r) {
            FdReply::Fd(r) => r,
            ref r => unexpected(r),
        })
    }

    #[inline(always)]
    fn closed_one(&self, m: impl FnOnce() -> FdMsg) -> Result<(), FdError> {
        let closed = self.actor.call_map(m, |r| match r {
            FdReply::ClosedOne(r) => r,
            r => unexpected(&ManuallyDrop::new(r)),
        });
        closed.map(drop)
    }

    #[inline(always)]
    fn closed(&self, m: impl FnOnce() -> FdMsg) {
        let closed = self.actor.call_map(m, |r| match r {
            FdReply::Closed(v) => v,
            r => unexpected(&ManuallyDrop::new(r)),
        });
        drop(closed);
    }

    #[inline(always)]
    fn done(&self, m: impl FnOnce() -> FdMsg) -> Result<(), FdError> {
        self.actor.call_map(m, |r| match *ManuallyDrop::new(r) {
            FdReply::Done(r) => r,
            ref r => unexpected(r),
        })
    }

    pub fn install(&self, file: Arc<OpenFile>, cloexec: bool, min: i32) -> Result<i32, FdError> {
        self.fd(|| FdMsg::Install { file, cloexec, min })
    }

    pub fn install_pair(
        &self,
        a: Arc<OpenFile>,
        b: Arc<OpenFile>,
        cloexec: bool,
    ) -> Result<(i32, i32), FdError> {
        let pair = Box::new([a, b]);
        self.actor.call_map(
            || FdMsg::InstallPair { pair, cloexec },
            |r| match *ManuallyDrop::new(r) {
                FdReply::Pair(r) => r,
                ref r => unexpected(r),
            },
        )
    }

    /// Installs received descriptions at the lowest free fds, in order, stopping at the
    /// first that does not fit; returns the fds installed.
    pub fn install_many(&self, files: Vec<Arc<OpenFile>>, cloexec: bool) -> Vec<i32> {
        let files = Box::new(files);
        let fds = self.actor.call_map(
            || FdMsg::InstallMany { files, cloexec },
            |r| match r {
                FdReply::Fds(v) => v,
                r => unexpected(&ManuallyDrop::new(r)),
            },
        );
        *fds
    }

    pub fn dup(&self, fd: i32, cloexec: bool, min: i32) -> Result<i32, FdError> {
        self.fd(|| FdMsg::Dup { fd, cloexec, min })
    }

    pub fn dup_to(&self, old: i32, new: i32, cloexec: bool) -> Result<(), FdError> {
        self.closed_one(|| FdMsg::DupTo { old, new, cloexec })
    }

    pub fn close(&self, fd: i32) -> Result<(), FdError> {
        self.closed_one(|| FdMsg::Close(fd))
    }

    pub fn close_range(&self, lo: u32, hi: u32, cloexec_only: bool) {
        self.closed(|| FdMsg::CloseRange {
            lo,
            hi,
            cloexec_only,
        })
    }

    pub fn set_cloexec(&self, fd: i32, on: bool) -> Result<(), FdError> {
        self.done(|| FdMsg::SetCloexec { fd, on })
    }

    /// setrlimit(RLIMIT_NOFILE) (see [`FdTable::set_limits`]); returns the old pair.
    pub fn set_limits(&self, soft: u64, hard: u64, may_raise: bool) -> Result<(u64, u64), FdError> {
        let lim = Box::new([soft, hard]);
        self.actor.call_map(
            || FdMsg::SetLimits { lim, may_raise },
            |r| match r {
                FdReply::Limits(r) => *r,
                r => unexpected(&ManuallyDrop::new(r)),
            },
        )
    }

    /// execve's sweep of CLOEXEC fds.
    pub fn close_on_exec(&self) {
        self.closed(|| FdMsg::CloseOnExec)
    }

    /// fork: the table for the child (start its own actor with [`FdActor::new`]).
    pub fn fork_snapshot(&self) -> FdTable {
        let t = self.actor.call_map(
            || FdMsg::Snapshot,
            |r| match r {
                FdReply::Snapshot(t) => t,
                r => unexpected(&ManuallyDrop::new(r)),
            },
        );
        *t
    }

    /// Messages handled so far.
    pub fn handled(&self) -> u64 {
        self.actor.handled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guest-chosen fd numbers anywhere in the i32 range are EBADF, never a panic.
    #[test]
    fn out_of_range_fds_are_ebadf() {
        let fds = FdActor::new(FdTable::new(), FdActorConfig::default());
        for fd in [-1, 1 << 20, (1 << 20) + 5, i32::MAX] {
            assert_eq!(fds.close(fd), Err(FdError::BadFd));
            assert_eq!(fds.get(fd).unwrap_err(), FdError::BadFd);
            assert_eq!(fds.cloexec(fd), Err(FdError::BadFd));
            assert_eq!(fds.set_cloexec(fd, true), Err(FdError::BadFd));
            assert_eq!(fds.dup(fd, false, 0), Err(FdError::BadFd));
        }
        fds.close_range(0, u32::MAX, false);
        assert_eq!(fds.count(), 0);
    }

    #[test]
    fn message_and_reply_fit_two_registers() {
        assert!(std::mem::size_of::<FdMsg>() <= 16);
        assert!(std::mem::size_of::<FdReply>() <= 16);
    }
}
