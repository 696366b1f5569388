//! A sequential reference model of the fd table, independent of `FdTable`, and an
//! observer that replays the fd-table actor's serialisation order against it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use elfuse_actors::fdactor::{FdMsg, FdReply, FdState};
use elfuse_actors::fdtable::{FdError, OpenFile, NR_OPEN};
use elfuse_actors::runtime::Observer;

/// A description's identity: its address (unique while the table holds it).
pub fn id(f: &Arc<OpenFile>) -> usize {
    Arc::as_ptr(f) as usize
}

#[derive(Debug, PartialEq, Eq)]
pub enum Res {
    Fd(Result<i32, FdError>),
    Pair(Result<(i32, i32), FdError>),
    Fds(Vec<i32>),
    Closed(Result<Vec<usize>, FdError>),
    Done(Result<(), FdError>),
    Limits(Result<[u64; 2], FdError>),
    Snap(Vec<(i32, usize, bool)>),
}

impl Res {
    pub fn of(r: &FdReply) -> Res {
        match r {
            FdReply::Fd(r) => Res::Fd(*r),
            FdReply::Pair(r) => Res::Pair(*r),
            FdReply::Fds(v) => Res::Fds(v.to_vec()),
            FdReply::Closed(v) => Res::Closed(Ok(v.iter().map(id).collect())),
            FdReply::ClosedOne(r) => Res::Closed(
                r.as_ref()
                    .map(|v| v.iter().map(id).collect())
                    .map_err(|e| *e),
            ),
            FdReply::Done(r) => Res::Done(*r),
            FdReply::Limits(r) => Res::Limits(r.map(|(s, h)| [s, h])),
            FdReply::Snapshot(t) => Res::Snap(
                t.snapshot()
                    .iter()
                    .map(|(fd, f, c)| (*fd, id(f), *c))
                    .collect(),
            ),
        }
    }
}

pub struct Model {
    slots: BTreeMap<i32, (usize, bool)>,
    limit: u64,
    hard: u64,
}

impl Model {
    pub fn new(limit: u64) -> Self {
        Model {
            slots: BTreeMap::new(),
            limit,
            hard: NR_OPEN,
        }
    }

    fn lowest_free(&self, min: i32) -> Result<i32, FdError> {
        if min < 0 || min as u64 >= self.limit {
            return Err(FdError::Invalid);
        }
        let mut fd = min;
        while self.slots.contains_key(&fd) {
            fd += 1;
        }
        if fd as u64 >= self.limit {
            return Err(FdError::TooMany);
        }
        Ok(fd)
    }

    fn install(&mut self, f: usize, cloexec: bool, min: i32) -> Result<i32, FdError> {
        let fd = self.lowest_free(min)?;
        self.slots.insert(fd, (f, cloexec));
        Ok(fd)
    }

    fn get(&self, fd: i32) -> Result<usize, FdError> {
        self.slots.get(&fd).map(|s| s.0).ok_or(FdError::BadFd)
    }

    pub fn apply(&mut self, m: &FdMsg) -> Res {
        match *m {
            FdMsg::Install {
                ref file,
                cloexec,
                min,
            } => Res::Fd(self.install(id(file), cloexec, min)),
            FdMsg::InstallPair { ref pair, cloexec } => {
                Res::Pair(self.install(id(&pair[0]), cloexec, 0).and_then(|fa| {
                    self.install(id(&pair[1]), cloexec, 0)
                        .map(|fb| (fa, fb))
                        .inspect_err(|_| {
                            self.slots.remove(&fa);
                        })
                }))
            }
            FdMsg::InstallMany { ref files, cloexec } => Res::Fds(
                files
                    .iter()
                    .map_while(|f| self.install(id(f), cloexec, 0).ok())
                    .collect(),
            ),
            FdMsg::Dup { fd, cloexec, min } => {
                Res::Fd(self.get(fd).and_then(|f| self.install(f, cloexec, min)))
            }
            FdMsg::DupTo { old, new, cloexec } => Res::Closed(self.get(old).and_then(|f| {
                if old == new {
                    return Ok(vec![]);
                }
                if new < 0 || new as u64 >= self.limit {
                    return Err(FdError::BadFd);
                }
                Ok(self
                    .slots
                    .insert(new, (f, cloexec))
                    .map(|p| p.0)
                    .into_iter()
                    .collect())
            })),
            FdMsg::Close(fd) => Res::Closed(
                self.slots
                    .remove(&fd)
                    .map(|s| vec![s.0])
                    .ok_or(FdError::BadFd),
            ),
            FdMsg::CloseRange {
                lo,
                hi,
                cloexec_only,
            } => {
                let fds: Vec<i32> = self
                    .slots
                    .keys()
                    .copied()
                    .filter(|&fd| (fd as u32) >= lo && (fd as u32) <= hi)
                    .collect();
                let mut out = Vec::new();
                for fd in fds {
                    if cloexec_only {
                        self.slots.get_mut(&fd).unwrap().1 = true;
                    } else {
                        out.push(self.slots.remove(&fd).unwrap().0);
                    }
                }
                Res::Closed(Ok(out))
            }
            FdMsg::SetCloexec { fd, on } => Res::Done(match self.slots.get_mut(&fd) {
                Some(s) => {
                    s.1 = on;
                    Ok(())
                }
                None => Err(FdError::BadFd),
            }),
            FdMsg::SetLimits { ref lim, may_raise } => {
                let [soft, hard] = **lim;
                Res::Limits(if soft > hard {
                    Err(FdError::Invalid)
                } else if hard > NR_OPEN || (hard > self.hard && !may_raise) {
                    Err(FdError::Perm)
                } else {
                    let old = [self.limit, self.hard];
                    (self.limit, self.hard) = (soft, hard);
                    Ok(old)
                })
            }
            FdMsg::CloseOnExec => {
                let fds: Vec<i32> = self.slots.iter().filter(|s| s.1 .1).map(|s| *s.0).collect();
                Res::Closed(Ok(fds
                    .into_iter()
                    .map(|fd| self.slots.remove(&fd).unwrap().0)
                    .collect()))
            }
            FdMsg::Snapshot => {
                Res::Snap(self.slots.iter().map(|(&fd, &(f, c))| (fd, f, c)).collect())
            }
        }
    }
}

/// What the replay found.
#[derive(Default)]
pub struct Replay {
    pub checked: u64,
    pub last_seq: u64,
    pub first_error: Option<String>,
}

/// An observer that applies every message, in the actor's seq order, to a fresh model
/// and records the first disagreement (or a gap in seq).
pub fn replaying_observer(limit: u64) -> (Observer<FdState>, Arc<Mutex<Replay>>) {
    let replay = Arc::new(Mutex::new(Replay::default()));
    let model = Mutex::new(Model::new(limit));
    let r = replay.clone();
    let obs: Observer<FdState> = Box::new(move |seq, msg, reply| {
        let mut rp = r.lock().unwrap();
        let want = model.lock().unwrap().apply(msg);
        let got = Res::of(reply);
        if rp.first_error.is_none() {
            if seq != rp.last_seq + 1 {
                rp.first_error = Some(format!("seq {seq} after {}", rp.last_seq));
            } else if want != got {
                rp.first_error = Some(format!("seq {seq}: {msg:?}: actor {got:?}, model {want:?}"));
            }
        }
        rp.last_seq = seq;
        rp.checked += 1;
    });
    (obs, replay)
}
