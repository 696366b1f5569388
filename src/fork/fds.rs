//! The fd table a fork child inherits, for both fork paths ([`Fds`], part of
//! `inherit::Inheritance`): captured from the parent's table, written on the spawn
//! path's wire and read back, and made into the child's own table.
//!
//! Linux: the child gets a copy of the table whose entries refer to the same open file
//! descriptions (shared offsets and status flags), CLOEXEC flags kept. Host fds already
//! have that property (the host's fork() or SCM_RIGHTS shares the kernel's description),
//! so an elfuse description over a host fd crosses as is. What elfuse emulates does not:
//!
//! - an emulated description (`syscall::kinds`): the child builds its own from the
//!   state its kind hands over (a signalfd: mask and O_NONBLOCK, with its own readiness
//!   eventfd watched by the child's signal state), or does not inherit it.
//! - /dev/urandom descriptions get a fresh entropy cache (never the parent's bytes).
//!
//! What is particular to the native child is only who owns the host fds
//! (`native::adopt_host_fds`).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use elfuse_actors::fdtable::{FdTable, FileKind, OpenFile};

use super::wire::{index_of, Dec, Enc, Passed};
use crate::signal::state::SignalState;
use crate::syscall::kinds::{registry, Kind, Watchers};

/// The fd table a child inherits.
pub struct Fds<H> {
    /// RLIMIT_NOFILE (soft, hard), which the fd table enforces.
    pub limits: (u64, u64),
    /// Guest fd, index in `descs`, CLOEXEC; ascending fds.
    pub slots: Vec<(i32, usize, bool)>,
    /// Each inherited open file description once.
    pub descs: Vec<Desc<H>>,
    /// The parent's descriptions (every one in its table, inherited or not), which keep
    /// the raw fds open until the child has them. Empty in a [`Received`].
    pub parent: Vec<Arc<OpenFile>>,
}

/// One inherited open file description.
pub enum Desc<H> {
    /// Over a host fd: the child's description shares the host's open file description
    /// (offsets, status flags). `cache`: /dev/urandom or /dev/random with an entropy cache
    /// (the child's is fresh, never the parent's bytes).
    Host {
        fd: H,
        path: Option<Box<[u8]>>,
        urandom: bool,
        cache: bool,
    },
    /// One of the host's standard streams, shared with elfuse itself.
    Stdio { fd: RawFd, path: Option<Box<[u8]>> },
    /// Emulated: its kind's fork state, from which the child makes its own.
    Kind { kind: &'static Kind, state: Vec<u8> },
}

impl Fds<RawFd> {
    /// From the parent's table as its fd actor snapshotted it. Emulated descriptions are
    /// asked for their fork state here, in the parent (a native child must not call the
    /// parent's objects: another thread may have held their locks at fork()).
    pub(super) fn capture(table: FdTable) -> Fds<RawFd> {
        let mut fds = Fds {
            limits: table.limits(),
            slots: Vec::new(),
            descs: Vec::new(),
            parent: Vec::new(),
        };
        // Per parent description: its index in `descs`, None if not inherited.
        let mut seen: Vec<(*const OpenFile, Option<usize>)> = Vec::new();
        for (fd, file, cloexec) in table.snapshot() {
            let key = Arc::as_ptr(&file);
            let i = match seen.iter().find(|(k, _)| *k == key) {
                Some((_, i)) => *i,
                None => {
                    let d = Desc::of(&file);
                    let i = d.map(|d| {
                        fds.descs.push(d);
                        fds.descs.len() - 1
                    });
                    seen.push((key, i));
                    fds.parent.push(file);
                    i
                }
            };
            if let Some(i) = i {
                fds.slots.push((fd, i, cloexec));
            }
        }
        fds
    }
}

impl Desc<RawFd> {
    /// What the child inherits of `file` (None: nothing, it is not inherited).
    fn of(file: &OpenFile) -> Option<Desc<RawFd>> {
        let path = file.path.clone();
        Some(match &file.kind {
            FileKind::Host(h) => Desc::Host {
                fd: h.as_raw_fd(),
                path,
                urandom: file.urandom,
                cache: false,
            },
            FileKind::Urandom { fd, .. } => Desc::Host {
                fd: fd.as_raw_fd(),
                path,
                urandom: file.urandom,
                cache: true,
            },
            FileKind::Stdio(n) => Desc::Stdio { fd: *n, path },
            FileKind::Synthetic(_) => {
                let (g, kind) = registry::of(file)?;
                Desc::Kind {
                    kind,
                    state: g.fork_state()?,
                }
            }
        })
    }
}

impl Fds<OwnedFd> {
    /// The child's table; the watchers its emulated descriptions need go to `signals`.
    pub(super) fn into_table(self, signals: &mut SignalState) -> FdTable {
        let mut table = FdTable::new();
        let (soft, hard) = self.limits;
        let _ = table.set_limits(soft, hard, true);
        let mut watchers = Watchers::new();
        let descs: Vec<Option<Arc<OpenFile>>> = self
            .descs
            .into_iter()
            .map(|d| match d {
                Desc::Host {
                    fd,
                    path,
                    urandom,
                    cache,
                } => Some(if cache {
                    OpenFile::opened(fd, path.as_deref(), true)
                } else {
                    OpenFile::host_flagged(fd, path.as_deref(), urandom)
                }),
                Desc::Stdio { fd, path } => Some(OpenFile::stdio(fd, path)),
                Desc::Kind { kind, state } => match (kind.adopt)(&state, &mut watchers) {
                    Ok(s) => Some(OpenFile::synthetic(s)),
                    Err(e) => {
                        tracing::warn!(kind = kind.name, ?e, "fork child: description lost");
                        None
                    }
                },
            })
            .collect();
        for (fd, i, cloexec) in self.slots {
            let Some(Some(f)) = descs.get(i) else {
                continue;
            };
            if table.install_at(fd, f.clone(), cloexec).is_err() {
                tracing::warn!(fd, "fork child: fd not inherited");
            }
        }
        for w in watchers {
            signals.watch(w);
        }
        table
    }
}

/// A description's kind on the wire.
const KIND_HOST: u64 = 0;
const KIND_STDIO: u64 = 1;
const KIND_EMULATED: u64 = 2;

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("fork handover: bad {what}"),
    )
}

impl Fds<RawFd> {
    /// Writes the table; host fds go to `fds` (SCM_RIGHTS), referred to by index.
    pub(super) fn encode(&self, e: &mut Enc, fds: &mut Vec<RawFd>) {
        let f = self;
        e.u64(f.limits.0);
        e.u64(f.limits.1);
        e.u64(f.descs.len() as u64);
        for d in &f.descs {
            match d {
                Desc::Host {
                    fd,
                    path,
                    urandom,
                    cache,
                } => {
                    e.u64(KIND_HOST);
                    e.u64(index_of(fds, *fd));
                    e.opt_bytes(path.as_deref());
                    e.bool(*urandom);
                    e.bool(*cache);
                }
                Desc::Stdio { fd, path } => {
                    e.u64(KIND_STDIO);
                    e.u64(*fd as u64);
                    e.opt_bytes(path.as_deref());
                }
                Desc::Kind { kind, state } => {
                    e.u64(KIND_EMULATED);
                    e.bytes(kind.name.as_bytes());
                    e.bytes(state);
                }
            }
        }
        e.u64(f.slots.len() as u64);
        for &(fd, i, cloexec) in &f.slots {
            e.u64(fd as u64);
            e.u64(i as u64);
            e.bool(cloexec);
        }
    }
}

impl Fds<OwnedFd> {
    /// Reads what [`Fds::encode`] wrote; `fds` are the fds passed with it.
    pub(super) fn decode(d: &mut Dec, fds: &Passed) -> io::Result<Fds<OwnedFd>> {
        let limits = (d.u64()?, d.u64()?);
        let n = d.u64()?;
        let mut descs = Vec::new();
        for _ in 0..n {
            descs.push(match d.u64()? {
                KIND_HOST => Desc::Host {
                    fd: fds.owned(d.u64()?)?,
                    path: d.opt_bytes()?.map(Into::into),
                    urandom: d.bool()?,
                    cache: d.bool()?,
                },
                KIND_STDIO => Desc::Stdio {
                    fd: d.u64()? as RawFd,
                    path: d.opt_bytes()?.map(Into::into),
                },
                KIND_EMULATED => Desc::Kind {
                    kind: std::str::from_utf8(&d.bytes()?)
                        .ok()
                        .and_then(registry::named)
                        .ok_or_else(|| bad("file kind"))?,
                    state: d.bytes()?,
                },
                _ => return Err(bad("fd kind")),
            });
        }
        let n = d.u64()?;
        let mut slots = Vec::new();
        for _ in 0..n {
            let (fd, i, cloexec) = (d.u64()? as i32, d.u64()? as usize, d.bool()?);
            if i >= descs.len() {
                return Err(bad("fd slot"));
            }
            slots.push((fd, i, cloexec));
        }
        Ok(Fds {
            limits,
            slots,
            descs,
            parent: Vec::new(),
        })
    }
}
