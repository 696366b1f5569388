//! Actor runtime costs, as p50/p99 per operation (samples are batches of `BATCH` ops,
//! divided by `BATCH`, so timer overhead stays out of the numbers):
//!
//! 1. a one-shot request/reply round trip to another thread: crossbeam-channel vs flume
//!    (the runtime's mailbox choice), and through `ActorRef::call` (threaded mode, and
//!    combining mode uncontended, which runs inline);
//! 2. dup+close through the fd-table actor vs the same on a `Mutex<FdTable>`;
//! 3. a 1-byte pipe read resolved through the actor's published view vs a direct host
//!    read of the same host fd.
//!
//! A comparison (actor vs mutex, view vs direct) interleaves the two sides in short
//! rounds, so on a shared machine both see the same load.
//!
//! Run: `cargo bench --bench actors` (2 s per case, about 20 s); `ELFUSE_BENCH_SECS=1`
//! shortens it, `ELFUSE_BENCH_ONLY=rtt|dup|read` runs one group (`inline`: only the
//! combining dup+close, for profiling).

use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use elfuse_actors::fdactor::{FdActor, FdActorConfig};
use elfuse_actors::fdtable::{FdTable, OpenFile};
use elfuse_actors::runtime::{Actor, ActorRef, Config, Mode};

const BATCH: u32 = 64;

struct Stats {
    p50: f64,
    p99: f64,
}

fn stats(mut samples: Vec<f64>) -> Stats {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    Stats {
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// Samples of `op` (per-op ns of a batch) until `end`.
fn sample(samples: &mut Vec<f64>, end: Instant, op: &mut impl FnMut()) {
    while Instant::now() < end {
        let t = Instant::now();
        for _ in 0..BATCH {
            op();
        }
        samples.push(t.elapsed().as_nanos() as f64 / BATCH as f64);
    }
}

/// Runs `op` in batches for about `secs` seconds; per-op ns percentiles.
fn measure(secs: f64, mut op: impl FnMut()) -> Stats {
    for _ in 0..BATCH * 16 {
        op();
    }
    let mut samples = Vec::new();
    sample(
        &mut samples,
        Instant::now() + Duration::from_secs_f64(secs),
        &mut op,
    );
    stats(samples)
}

/// Measures `a` and `b` for about `secs` seconds each, alternating 10 ms rounds.
fn measure_pair(secs: f64, mut a: impl FnMut(), mut b: impl FnMut()) -> (Stats, Stats) {
    const ROUND: Duration = Duration::from_millis(10);
    for _ in 0..BATCH * 16 {
        a();
        b();
    }
    let (mut sa, mut sb) = (Vec::new(), Vec::new());
    let end = Instant::now() + Duration::from_secs_f64(2.0 * secs);
    while Instant::now() < end {
        sample(&mut sa, Instant::now() + ROUND, &mut a);
        sample(&mut sb, Instant::now() + ROUND, &mut b);
    }
    (stats(sa), stats(sb))
}

fn report(name: &str, s: &Stats) {
    println!("{name:<44} p50 {:>9.1} ns   p99 {:>9.1} ns", s.p50, s.p99);
}

fn ratio(what: &str, a: &Stats, b: &Stats) {
    println!(
        "  ratio {what:<36} p50 {:>6.2}×      p99 {:>6.2}×",
        a.p50 / b.p50,
        a.p99 / b.p99
    );
}

struct Echo;
impl Actor for Echo {
    type Msg = u64;
    type Reply = u64;
    const NAME: &'static str = "echo";
    fn kind(_: &u64) -> &'static str {
        "echo"
    }
    fn handle(&mut self, m: &u64) -> u64 {
        *m + 1
    }
}

fn crossbeam_round_trip(secs: f64) -> Stats {
    type Req = (u64, crossbeam_channel::Sender<u64>);
    let (tx, rx) = crossbeam_channel::unbounded::<Req>();
    let server = std::thread::spawn(move || {
        for (v, reply) in rx {
            let _ = reply.send(v + 1);
        }
    });
    let s = measure(secs, || {
        let (rtx, rrx) = crossbeam_channel::bounded(1);
        tx.send((1, rtx)).unwrap();
        std::hint::black_box(rrx.recv().unwrap());
    });
    drop(tx);
    server.join().unwrap();
    s
}

fn flume_round_trip(secs: f64) -> Stats {
    type Req = (u64, flume::Sender<u64>);
    let (tx, rx) = flume::unbounded::<Req>();
    let server = std::thread::spawn(move || {
        for (v, reply) in rx {
            let _ = reply.send(v + 1);
        }
    });
    let s = measure(secs, || {
        let (rtx, rrx) = flume::bounded(1);
        tx.send((1, rtx)).unwrap();
        std::hint::black_box(rrx.recv().unwrap());
    });
    drop(tx);
    server.join().unwrap();
    s
}

fn actor_call(secs: f64, mode: Mode) -> Stats {
    let a = ActorRef::spawn(
        Echo,
        Config {
            mode,
            ..Config::default()
        },
    );
    measure(secs, || {
        std::hint::black_box(a.call(1));
    })
}

fn dev_null() -> Arc<OpenFile> {
    let f = std::fs::File::open("/dev/null").unwrap();
    OpenFile::host(f.into(), None)
}

fn fd_actor(mode: Mode) -> FdActor {
    let fds = FdActor::new(
        FdTable::new(),
        FdActorConfig {
            mode,
            ..FdActorConfig::default()
        },
    );
    fds.install(dev_null(), false, 0).unwrap();
    fds
}

fn main() {
    let secs: f64 = std::env::var("ELFUSE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    // ELFUSE_BENCH_ONLY=rtt|dup|read|dir runs one group (for profiling).
    let only = std::env::var("ELFUSE_BENCH_ONLY").unwrap_or_default();
    let run = |g: &str| only.is_empty() || only == g;
    println!("# actors bench: {BATCH} ops per sample, {secs} s per case\n");
    if run("rtt") {
        round_trips(secs);
    }
    if run("dup") {
        dup_close(secs);
    }
    if only == "inline" {
        let fds = fd_actor(Mode::Combining);
        let s = measure(secs, || {
            let fd = fds.dup(0, false, 0).unwrap();
            fds.close(fd).unwrap();
        });
        report("fd actor dup + close, Combining", &s);
    }
    if run("read") {
        pipe_read(secs);
    }
    if run("dir") {
        directory(secs);
    }
}

/// The thread directory's shape (tid -> handle, `thread::directory`): lookups of live
/// tids among 1000 while another thread registers and removes threads, with an
/// `RwLock<HashMap>` (what elfuse uses) and with dashmap (the card's candidate).
fn directory(secs: f64) {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::RwLock;
    println!("\n## thread directory lookup (1000 threads, one thread churning)");
    const N: i32 = 1000;
    let rw: Arc<RwLock<HashMap<i32, Arc<u64>>>> = Arc::new(RwLock::new(HashMap::new()));
    let dm: Arc<dashmap::DashMap<i32, Arc<u64>>> = Arc::new(dashmap::DashMap::new());
    for t in 0..N {
        rw.write().unwrap().insert(t, Arc::new(t as u64));
        dm.insert(t, Arc::new(t as u64));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (rw, dm, stop) = (rw.clone(), dm.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut t = N;
            while !stop.load(Ordering::Relaxed) {
                rw.write().unwrap().insert(t, Arc::new(0));
                dm.insert(t, Arc::new(0));
                rw.write().unwrap().remove(&t);
                dm.remove(&t);
                t = N + (t + 1) % 64;
                std::thread::sleep(Duration::from_micros(50));
            }
        })
    };
    let mut i = 0;
    let mut j = 0;
    let (a, b) = measure_pair(
        secs,
        || {
            i = (i + 7) % N;
            std::hint::black_box(rw.read().unwrap().get(&i).cloned());
        },
        || {
            j = (j + 7) % N;
            std::hint::black_box(dm.get(&j).map(|r| r.value().clone()));
        },
    );
    stop.store(true, Ordering::Relaxed);
    let _ = churn.join();
    report("RwLock<HashMap> get + Arc clone", &a);
    report("DashMap get + Arc clone", &b);
    ratio("dashmap / RwLock<HashMap>", &b, &a);
}

fn round_trips(secs: f64) {
    println!("## round trip to another thread");
    let cb = crossbeam_round_trip(secs);
    report("crossbeam-channel request + bounded(1) reply", &cb);
    let fl = flume_round_trip(secs);
    report("flume request + bounded(1) reply", &fl);
    ratio("flume / crossbeam", &fl, &cb);
    let th = actor_call(secs, Mode::Threaded);
    report("ActorRef::call, threaded", &th);
    let co = actor_call(secs, Mode::Combining);
    report("ActorRef::call, combining (uncontended)", &co);
}

fn dup_close(secs: f64) {
    println!("\n## dup + close");
    let mut t = FdTable::new();
    t.install(dev_null(), false, 0).unwrap();
    let m = Mutex::new(t);
    // The same table logic under a lock; the closed description is dropped outside it.
    let mutex_op = || {
        let fd = {
            let mut t = m.lock().unwrap();
            let f = t.get(0).unwrap();
            t.install(f, false, 0).unwrap()
        };
        let closed = m.lock().unwrap().close(fd).unwrap();
        drop(closed);
    };
    for mode in [Mode::Combining, Mode::Threaded] {
        let fds = fd_actor(mode);
        let actor_op = || {
            let fd = fds.dup(0, false, 0).unwrap();
            fds.close(fd).unwrap();
        };
        let (mutex, s) = measure_pair(secs, mutex_op, actor_op);
        report("Mutex<FdTable> dup + close", &mutex);
        report(&format!("fd actor dup + close, {mode:?}"), &s);
        ratio(&format!("{mode:?} actor / mutex"), &s, &mutex);
    }
}

fn pipe_read(secs: f64) {
    // Both variants time a 1-byte write (to keep the pipe non-empty) plus the 1-byte
    // read; they differ only in how the read's fd is resolved.
    println!("\n## 1-byte pipe write + read");
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let wfd = w.as_raw_fd();
    let fds = fd_actor(Mode::Combining);
    let gfd = fds.install(OpenFile::host(r, None), false, 0).unwrap();
    let raw = fds.get(gfd).unwrap().raw();
    let b = std::cell::Cell::new(0u8);
    let (direct, view) = measure_pair(
        secs,
        // SAFETY: one byte from a static and into the local `b` (read through a pointer to
        // it, never a Rust write); `r` and `w` keep both pipe ends open for the loop.
        || unsafe {
            libc::write(wfd, b"x".as_ptr().cast(), 1);
            libc::read(raw, b.as_ptr().cast(), 1);
        },
        // SAFETY: as above; the guest fd's description keeps its host fd open while `f`
        // lives.
        || unsafe {
            libc::write(wfd, b"x".as_ptr().cast(), 1);
            let f = fds.get(gfd).unwrap();
            libc::read(f.raw(), b.as_ptr().cast(), 1);
        },
    );
    report("direct host write + read", &direct);
    report("write + read through the published view", &view);
    ratio("view / direct", &view, &direct);
    let lookup = measure(secs, || {
        std::hint::black_box(fds.get(gfd).unwrap());
    });
    report("view lookup alone (get + Arc drop)", &lookup);
}
