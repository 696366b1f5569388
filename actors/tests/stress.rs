//! Race stress for the fd-table actor, checked against a sequential model.
//!
//! Every message the actor serialises is replayed, in `seq` order, against
//! `model::Model` (an independent implementation of the fd-table rules). Threads also
//! check invariants of their own: an fd is never handed to two owners, a read/write on a
//! description obtained through the view never meets a closed or recycled host fd, and
//! at the end refcounts are exact and the process has exactly its baseline host fds.
//!
//! Default: 4 threads × 25 000 ops and 300 random single-threaded sequences (a few
//! seconds). `ELFUSE_STRESS=full`: 8 threads × 1 000 000 ops.

mod model;

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use elfuse_actors::fdactor::{FdActor, FdActorConfig};
use elfuse_actors::fdtable::{FdError, FdTable, OpenFile, NR_OPEN};
use elfuse_actors::runtime::Mode;

/// The tests of this file count the process's host fds: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn host_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn dev_null() -> Arc<OpenFile> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .unwrap();
    OpenFile::opened(f.into(), Some(b"/dev/null"), true)
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut p = [0; 2];
    assert_eq!(
        // SAFETY: pipe2 writes two fds into `p`, a local [i32; 2].
        unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) },
        0
    );
    // SAFETY: pipe2 succeeded (asserted): both fds are new and owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Null,
    PipeR,
    PipeW,
    /// A dup of an fd number that belonged to someone else.
    Unknown,
}

/// One host I/O through a description from the view: never EBADF, and the host fd is
/// still the kind of file the description was made for.
fn io(f: &OpenFile, kind: Kind) -> Result<(), String> {
    let mut b = [7u8];
    let r = match kind {
        // SAFETY: reads at most one byte into the local `b`; `f` keeps the fd open.
        Kind::Null | Kind::PipeR => unsafe { libc::read(f.raw(), b.as_mut_ptr().cast(), 1) },
        // SAFETY: writes one byte from the local `b`; `f` keeps the fd open.
        Kind::PipeW => unsafe { libc::write(f.raw(), b.as_ptr().cast(), 1) },
        Kind::Unknown => return Ok(()),
    };
    let err = std::io::Error::last_os_error();
    // EAGAIN: full/empty pipe; EPIPE: the thread closed its own pipe's read end.
    if r < 0 && !matches!(err.raw_os_error(), Some(libc::EAGAIN | libc::EPIPE)) {
        return Err(format!("{kind:?} I/O on host fd {}: {err}", f.raw()));
    }
    if kind == Kind::Null && r != 0 {
        return Err(format!("/dev/null read gave {r}"));
    }
    // SAFETY: struct stat is integers and timespecs, valid zeroed.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes one struct stat into `st`, a local of that type; `f` keeps the fd
    // open.
    assert_eq!(unsafe { libc::fstat(f.raw(), &mut st) }, 0);
    let want = if kind == Kind::Null {
        libc::S_IFCHR
    } else {
        libc::S_IFIFO
    };
    if st.st_mode & libc::S_IFMT != want {
        return Err(format!(
            "host fd {} recycled under an in-flight {kind:?}",
            f.raw()
        ));
    }
    Ok(())
}

const LIMIT: u64 = 4096;
const SHARED: i32 = 8;
const SHARED_OWNER: u32 = u32::MAX;

struct World {
    fds: FdActor,
    owner: Vec<AtomicU32>,
}

impl World {
    fn claim(&self, fd: i32, me: u32) -> Result<(), String> {
        self.owner[fd as usize]
            .compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire)
            .map(drop)
            .map_err(|o| format!("fd {fd} handed to thread {me} while owned by {o}"))
    }
    fn release(&self, fd: i32, me: u32) {
        assert_eq!(self.owner[fd as usize].swap(0, Ordering::AcqRel), me);
    }
}

fn worker(w: &World, me: u32, ops: u64, seed: u64) -> Result<(), String> {
    let mut rng = Rng(seed | 1);
    let mut own: Vec<(i32, Kind)> = Vec::new();
    let fds = &w.fds;
    for _ in 0..ops {
        let pick =
            |rng: &mut Rng, own: &Vec<(i32, Kind)>| own[rng.below(own.len() as u64) as usize];
        let op = rng.below(100);
        match op {
            _ if own.len() > 24 || (op < 15 && own.len() > 2 && rng.chance(30)) => {
                let i = rng.below(own.len() as u64) as usize;
                let (fd, _) = own.swap_remove(i);
                w.release(fd, me);
                fds.close(fd)
                    .map_err(|e| format!("close of own fd {fd}: {e:?}"))?;
            }
            0..=9 => {
                let min = if rng.chance(20) {
                    rng.below(64) as i32
                } else {
                    0
                };
                if rng.chance(30) {
                    // SCM_RIGHTS: several at once, as many as fit.
                    let n = 1 + rng.below(3) as usize;
                    let files = (0..n).map(|_| dev_null()).collect();
                    for fd in fds.install_many(files, rng.chance(50)) {
                        w.claim(fd, me)?;
                        own.push((fd, Kind::Null));
                    }
                } else if let Ok(fd) = fds.install(dev_null(), rng.chance(50), min) {
                    w.claim(fd, me)?;
                    own.push((fd, Kind::Null));
                }
            }
            10..=14 => {
                let (r, wr) = pipe();
                let pair =
                    fds.install_pair(OpenFile::host(r, None), OpenFile::host(wr, None), false);
                if let Ok((a, b)) = pair {
                    w.claim(a, me)?;
                    w.claim(b, me)?;
                    own.extend([(a, Kind::PipeR), (b, Kind::PipeW)]);
                }
            }
            15..=29 if !own.is_empty() => {
                let (fd, k) = pick(&mut rng, &own);
                let min = if rng.chance(30) {
                    rng.below(128) as i32
                } else {
                    0
                };
                match fds.dup(fd, rng.chance(50), min) {
                    Ok(n) => {
                        w.claim(n, me)?;
                        own.push((n, k));
                    }
                    Err(FdError::TooMany) => {}
                    Err(e) => return Err(format!("dup of own fd {fd}: {e:?}")),
                }
            }
            30..=39 => {
                let s = rng.below(SHARED as u64) as i32;
                if let Ok(n) = fds.dup(s, false, 0) {
                    w.claim(n, me)?;
                    own.push((n, Kind::PipeW));
                }
            }
            40..=54 if !own.is_empty() => {
                let i = rng.below(own.len() as u64) as usize;
                let (fd, _) = own.swap_remove(i);
                w.release(fd, me);
                fds.close(fd)
                    .map_err(|e| format!("close of own fd {fd}: {e:?}"))?;
            }
            55..=61 if own.len() >= 2 => {
                let (i, j) = (
                    rng.below(own.len() as u64) as usize,
                    rng.below(own.len() as u64) as usize,
                );
                let ((old, k), (new, _)) = (own[i], own[j]);
                fds.dup_to(old, new, rng.chance(50))
                    .map_err(|e| format!("dup3 {old}->{new}: {e:?}"))?;
                own[j].1 = k;
            }
            62..=67 => {
                if let Some(&(old, _)) = own.iter().find(|o| o.1 == Kind::PipeW) {
                    let s = rng.below(SHARED as u64) as i32;
                    fds.dup_to(old, s, false)
                        .map_err(|e| format!("dup3 onto shared {s}: {e:?}"))?;
                }
            }
            68..=74 if !own.is_empty() => {
                let (fd, _) = pick(&mut rng, &own);
                let on = rng.chance(50);
                fds.set_cloexec(fd, on)
                    .map_err(|e| format!("F_SETFD {fd}: {e:?}"))?;
                if fds.cloexec(fd) != Ok(on) {
                    return Err(format!("F_GETFD {fd} after F_SETFD {on}"));
                }
            }
            75..=89 => {
                let s = rng.below(SHARED as u64) as i32;
                let f = fds.get(s).map_err(|e| format!("shared fd {s}: {e:?}"))?;
                io(&f, Kind::PipeW)?;
            }
            90..=96 if !own.is_empty() => {
                let (fd, k) = pick(&mut rng, &own);
                let f = fds.get(fd).map_err(|e| format!("own fd {fd}: {e:?}"))?;
                io(&f, k)?;
            }
            97..=98 => {
                // Dup whatever is at a random number now: races other threads' closes.
                let fd = rng.below(256) as i32;
                if let Ok(n) = fds.dup(fd, false, 0) {
                    w.claim(n, me)?;
                    own.push((n, Kind::Unknown));
                }
            }
            99 if rng.chance(2) => {
                let _ = fds.set_limits(1024 + rng.below(LIMIT - 1024), NR_OPEN, true);
            }
            _ => {}
        }
    }
    for (fd, _) in own {
        w.release(fd, me);
        fds.close(fd)
            .map_err(|e| format!("final close {fd}: {e:?}"))?;
    }
    Ok(())
}

fn run_threads(mode: Mode, threads: u32, ops: u64) {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let baseline = host_fds();
    let (observer, replay) = model::replaying_observer(LIMIT);
    let mut table = FdTable::new();
    table.set_limits(LIMIT, NR_OPEN, true).unwrap();
    let world = Arc::new(World {
        fds: FdActor::new(
            table,
            FdActorConfig {
                mode,
                sink: None,
                observer: Some(observer),
            },
        ),
        owner: (0..LIMIT).map(|_| AtomicU32::new(0)).collect(),
    });
    let mut read_ends = Vec::new();
    for s in 0..SHARED {
        let (r, wr) = pipe();
        read_ends.push(r);
        assert_eq!(world.fds.install(OpenFile::host(wr, None), false, 0), Ok(s));
        world.owner[s as usize].store(SHARED_OWNER, Ordering::Relaxed);
    }
    let start = std::time::Instant::now();
    let hs: Vec<_> = (0..threads)
        .map(|t| {
            let w = world.clone();
            std::thread::spawn(move || worker(&w, t + 1, ops, 0x9E37_79B9 * (t as u64 + 7)))
        })
        .collect();
    let errs: Vec<String> = hs
        .into_iter()
        .filter_map(|h| h.join().unwrap().err())
        .collect();
    let took = start.elapsed();
    assert!(errs.is_empty(), "{errs:#?}");

    // Quiescent: the view is exactly the table, refcounts are exact.
    let snap = world.fds.fork_snapshot().snapshot();
    assert_eq!(snap.len(), SHARED as usize, "only the shared fds remain");
    for (fd, f, cloexec) in &snap {
        let v = world.fds.get(*fd).unwrap();
        assert!(Arc::ptr_eq(&v, f));
        assert_eq!(world.fds.cloexec(*fd), Ok(*cloexec));
        drop(v);
        let aliases = snap.iter().filter(|(_, g, _)| Arc::ptr_eq(f, g)).count();
        // One for the table's slot (which is the view), one for this snapshot, per alias.
        assert_eq!(Arc::strong_count(f), 2 * aliases, "fd {fd}");
    }
    drop(snap);
    world.fds.close_range(0, u32::MAX, false);
    assert_eq!(world.fds.count(), 0);
    let handled = world.fds.handled();
    drop(world);
    drop(read_ends);
    assert_eq!(host_fds(), baseline, "host fds leaked");
    let r = replay.lock().unwrap();
    assert_eq!(r.first_error, None);
    assert_eq!(r.checked, handled);
    eprintln!(
        "{mode:?}: {threads} threads × {ops} ops in {took:?}; {} messages replayed against the model",
        r.checked
    );
}

fn full() -> bool {
    std::env::var("ELFUSE_STRESS").is_ok_and(|v| v == "full")
}

#[test]
fn threads_combining() {
    let (t, n) = if full() { (8, 1_000_000) } else { (4, 200_000) };
    run_threads(Mode::Combining, t, n);
}

#[test]
fn threads_threaded() {
    let (t, n) = if full() { (8, 200_000) } else { (4, 40_000) };
    run_threads(Mode::Threaded, t, n);
}

/// Random single-threaded sequences over a small fd space, every call kind included.
#[test]
fn random_sequences_match_model() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let baseline = host_fds();
    let runs = if full() { 3000 } else { 300 };
    for seed in 1..=runs {
        let (observer, replay) = model::replaying_observer(elfuse_actors::fdtable::DEFAULT_NOFILE);
        let fds = FdActor::new(
            FdTable::new(),
            FdActorConfig {
                observer: Some(observer),
                ..FdActorConfig::default()
            },
        );
        let mut rng = Rng(seed * 0x1234_5678_9abc);
        let fd = |rng: &mut Rng| rng.below(20) as i32 - 2;
        for _ in 0..400 {
            match rng.below(14) {
                0 | 1 => {
                    let _ = fds.install(dev_null(), rng.chance(50), fd(&mut rng));
                }
                2 => {
                    let (r, w) = pipe();
                    let _ = fds.install_pair(
                        OpenFile::host(r, None),
                        OpenFile::host(w, None),
                        rng.chance(50),
                    );
                }
                3 | 4 => {
                    let _ = fds.dup(fd(&mut rng), rng.chance(50), fd(&mut rng).max(0));
                }
                5 => {
                    let _ = fds.dup_to(fd(&mut rng), fd(&mut rng), rng.chance(50));
                }
                6 | 7 => {
                    let _ = fds.close(fd(&mut rng));
                }
                8 => {
                    let lo = rng.below(20) as u32;
                    fds.close_range(lo, lo + rng.below(8) as u32, rng.chance(50));
                }
                9 => {
                    let _ = fds.set_cloexec(fd(&mut rng), rng.chance(50));
                }
                10 => {
                    let hard = 4 + rng.below(30);
                    let _ = fds.set_limits(4 + rng.below(20), hard, rng.chance(50));
                }
                11 if rng.chance(10) => fds.close_on_exec(),
                12 => {
                    let _ = fds.fork_snapshot();
                }
                13 => {
                    let n = 1 + rng.below(4) as usize;
                    let _ = fds.install_many((0..n).map(|_| dev_null()).collect(), rng.chance(50));
                }
                _ => {}
            }
        }
        fds.close_range(0, u32::MAX, false);
        let r = replay.lock().unwrap();
        assert_eq!(r.first_error, None, "seed {seed}");
        assert_eq!(r.checked, fds.handled());
    }
    assert_eq!(host_fds(), baseline, "host fds leaked");
}
