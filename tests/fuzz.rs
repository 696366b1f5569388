//! Seeded fuzzing, run briefly by CI (it is part of `cargo test --release`):
//!
//! - `loader_survives_malformed_elfs`: a mutator over real binaries (the hello guest
//!   for glibc, glibc static-pie and musl; with the arm64 rootfs, its dynamic
//!   `/bin/true`) flips header bytes, sets ELF-header and program-header fields to
//!   boundary values, truncates the file, and runs elfuse on each mutant. Every run must
//!   end either as a run of the program (any status the guest gives) or with exactly one
//!   `elfuse: ...` line on stderr and status 126 (127 for a missing interpreter); never a
//!   panic, an internal error (70), a hang (10 s; a mutant that also runs that long under
//!   qemu-aarch64-static is the guest's own loop), or more than 1 GiB of memory (the
//!   child's peak RSS, from wait4).
//! - `random_syscalls_from_threads`: tests/guest/fuzz_syscalls.c (4 threads of seeded
//!   random syscalls; its header lists the denied ones) must end with status 0: no
//!   panic, hang or death of elfuse (it may die of a guest signal as Linux would: a
//!   status above 128 whose stderr has no `elfuse:` line is accepted). It runs in an
//!   empty scratch directory with files for fds 0-2, never a device.
//!
//! CI runs seeds 1..=ELF_SEEDS (each seed: every base binary) and SYSCALL_SEEDS seeds
//! of SYSCALL_CALLS calls per thread. Longer: `ELFUSE_FUZZ_SEEDS=5000` (mutants per
//! base binary) and `ELFUSE_FUZZ_FIRST=N` (first seed), `ELFUSE_FUZZ_CALLS=200000` for
//! the syscall fuzzer, e.g.
//! `ELFUSE_FUZZ_SEEDS=2000 cargo test --release --test fuzz -- --nocapture`.
//! A failure names the seed; the mutant is kept under the test's scratch directory.

mod common;

use common::*;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const ELF_SEEDS: u64 = 60;
const SYSCALL_SEEDS: u64 = 4;
const SYSCALL_CALLS: u64 = 20000;
const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RSS_KB: i64 = 1 << 20;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A boundary value for a field of `width` bytes.
fn interesting(r: &mut Rng, file_len: u64, width: usize) -> u64 {
    let v = match r.below(14) {
        0 => 0,
        1 => 1,
        2 => 0xfff,
        3 => 0x1000,
        4 => 0x7fff_ffff,
        5 => 0xffff_ffff,
        6 => u64::MAX,
        7 => 1 << 47,
        8 => 1 << 48,
        9 => file_len,
        10 => file_len + 1,
        11 => 0x1_0000_0000,
        12 => r.below(0x10000),
        _ => r.next(),
    };
    if width >= 8 {
        v
    } else {
        v & ((1u64 << (width * 8)) - 1)
    }
}

fn put(b: &mut [u8], off: usize, width: usize, v: u64) {
    if off + width <= b.len() {
        b[off..off + width].copy_from_slice(&v.to_le_bytes()[..width]);
    }
}

fn get(b: &[u8], off: usize, width: usize) -> u64 {
    let mut x = [0u8; 8];
    if off + width <= b.len() {
        x[..width].copy_from_slice(&b[off..off + width]);
    }
    u64::from_le_bytes(x)
}

/// One mutant of ELF image `base` for `seed`.
fn mutate(base: &[u8], seed: u64) -> Vec<u8> {
    let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut b = base.to_vec();
    let len = b.len() as u64;
    let phoff = get(&b, 32, 8) as usize;
    let phnum = get(&b, 56, 2) as usize;
    // ELF header fields: (offset, width).
    const EHDR: [(usize, usize); 10] = [
        (4, 1),  // EI_CLASS
        (5, 1),  // EI_DATA
        (16, 2), // e_type
        (18, 2), // e_machine
        (24, 8), // e_entry
        (32, 8), // e_phoff
        (40, 8), // e_shoff
        (54, 2), // e_phentsize
        (56, 2), // e_phnum
        (52, 2), // e_ehsize
    ];
    // Program header fields: (offset in the entry, width).
    const PHDR: [(usize, usize); 8] = [
        (0, 4),  // p_type
        (4, 4),  // p_flags
        (8, 8),  // p_offset
        (16, 8), // p_vaddr
        (24, 8), // p_paddr
        (32, 8), // p_filesz
        (40, 8), // p_memsz
        (48, 8), // p_align
    ];
    let rounds = 1 + r.below(4);
    for _ in 0..rounds {
        match r.below(7) {
            0 => {
                let (off, w) = EHDR[r.below(EHDR.len() as u64) as usize];
                let v = interesting(&mut r, len, w);
                put(&mut b, off, w, v);
            }
            1 | 2 if phnum > 0 => {
                let i = r.below(phnum.min(64) as u64) as usize;
                let (off, w) = PHDR[r.below(PHDR.len() as u64) as usize];
                let v = interesting(&mut r, len, w);
                put(&mut b, phoff + i * 56 + off, w, v);
            }
            3 if phnum > 1 => {
                // One program header copied over another (overlapping or duplicate
                // segments, two PT_INTERPs...).
                let (i, j) = (
                    r.below(phnum as u64) as usize,
                    r.below(phnum as u64) as usize,
                );
                if phoff + (i.max(j) + 1) * 56 <= b.len() {
                    let e = b[phoff + i * 56..phoff + i * 56 + 56].to_vec();
                    b[phoff + j * 56..phoff + j * 56 + 56].copy_from_slice(&e);
                }
            }
            4 => {
                // Truncated.
                let n = r.below(len.min(1 << 16)) as usize;
                b.truncate(n.max(1));
            }
            _ => {
                // Bytes of the headers flipped.
                let span = (phoff + phnum * 56).clamp(64, 4096).min(b.len());
                for _ in 0..1 + r.below(8) {
                    let i = r.below(span as u64) as usize;
                    b[i] ^= 1 << r.below(8);
                }
            }
        }
    }
    b
}

struct Ran {
    status: Option<i32>,
    signal: Option<i32>,
    timed_out: bool,
    max_rss_kb: i64,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// The last 64 KiB of file `p` (a fuzzed program may have grown its stdout).
fn tail(p: &Path) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(p) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(1 << 16)));
    let mut v = Vec::new();
    let _ = f.read_to_end(&mut v);
    v
}

/// Runs `cmd` with a deadline, collecting its output and its peak RSS (wait4). Its
/// stdin, stdout and stderr are files in a scratch directory of their own (never a
/// device: a fuzzed program may fchmod them), and files it writes are capped at 16 MiB.
fn run_limited(mut cmd: Command, limit: Duration) -> Ran {
    use std::os::unix::process::CommandExt;
    let dir = TempDir::new();
    let (i, o, e) = (
        dir.path().join("in"),
        dir.path().join("out"),
        dir.path().join("err"),
    );
    std::fs::write(&i, b"").unwrap();
    cmd.stdin(std::fs::File::open(&i).unwrap())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap());
    // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 16 << 20,
                rlim_max: 16 << 20,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
            Ok(())
        });
    }
    let child = cmd.spawn().expect("spawn");
    let pid = child.id() as i32;
    let start = Instant::now();
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let mut timed_out = false;
    loop {
        // SAFETY: waits for our own child with valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            break;
        }
        if start.elapsed() > limit && !timed_out {
            timed_out = true;
            // SAFETY: kills our own child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::mem::forget(child);
    let es = std::process::ExitStatus::from_raw(status);
    Ran {
        status: es.code(),
        signal: es.signal(),
        timed_out,
        max_rss_kb: ru.ru_maxrss,
        stdout: tail(&o),
        stderr: tail(&e),
    }
}

/// The base binaries: (name, image, sysroot for a dynamic one).
fn bases() -> Vec<(String, Vec<u8>, Option<PathBuf>)> {
    let mut v = Vec::new();
    for libc in [Libc::Glibc, Libc::GlibcPie, Libc::Musl] {
        if let Some(p) = guest(libc, "hello") {
            v.push((
                format!("hello ({})", libc.name()),
                std::fs::read(p).unwrap(),
                None,
            ));
        }
    }
    if let Some(root) = common::rootfs::rootfs() {
        let t = root.join("usr/bin/true");
        if let Ok(img) = std::fs::read(&t) {
            v.push(("/usr/bin/true (rootfs)".into(), img, Some(root)));
        }
    }
    v
}

fn judge(what: &str, mutant: &Path, r: &Ran, root: Option<&Path>) -> Result<(), String> {
    let err = String::from_utf8_lossy(&r.stderr);
    let tell = |why: &str| {
        Err(format!(
            "{what}: {why} (mutant kept at {}; status {:?}, signal {:?}, rss {} KB)\nstderr: {}",
            mutant.display(),
            r.status,
            r.signal,
            r.max_rss_kb,
            err.chars().take(600).collect::<String>()
        ))
    };
    if err.contains("panicked") {
        return tell("elfuse panicked");
    }
    if r.max_rss_kb > MAX_RSS_KB {
        return tell("more than 1 GiB of memory");
    }
    if r.timed_out {
        // A mutant that still runs its code may loop: qemu decides.
        if let Some(q) = qemu() {
            let mut c = Command::new(q);
            if let Some(root) = root {
                c.arg("-L").arg(root);
            }
            c.arg(mutant);
            let qr = run_limited(c, TIMEOUT);
            if qr.timed_out {
                return Ok(());
            }
        }
        return tell("elfuse hung (qemu-aarch64-static does not)");
    }
    let lines: Vec<&str> = err.lines().collect();
    let ours: Vec<&&str> = lines.iter().filter(|l| l.starts_with("elfuse: ")).collect();
    if !ours.is_empty() {
        if lines.len() != 1 {
            return tell("an elfuse: message that is not exactly one line");
        }
        if !matches!(r.status, Some(126) | Some(127)) {
            return tell("an elfuse: message with a status other than 126/127");
        }
    }
    let _ = &r.stdout;
    Ok(())
}

#[test]
fn loader_survives_malformed_elfs() {
    let bases = bases();
    if bases.is_empty() {
        return; // skipped (no toolchain): `guest` said why
    }
    let first = env_u64("ELFUSE_FUZZ_FIRST", 1);
    let seeds = env_u64("ELFUSE_FUZZ_SEEDS", ELF_SEEDS);
    let dir = TempDir::new();
    let mut failures = Vec::new();
    let mut outcomes = [0usize; 3]; // ran, refused, hung-like-qemu
    for (bi, (name, img, root)) in bases.iter().enumerate() {
        for seed in first..first + seeds {
            let m = mutate(img, seed);
            let path = dir.path().join(format!("m{bi}-{seed}"));
            std::fs::write(&path, &m).unwrap();
            let mut opts: Vec<std::ffi::OsString> = Vec::new();
            if let Some(root) = root {
                opts.push("--sysroot".into());
                opts.push(root.into());
            }
            let r = run_limited(elfuse_command(opts, &path, [] as [&str; 0]), TIMEOUT);
            let what = format!("{name} seed {seed}");
            match judge(&what, &path, &r, root.as_deref()) {
                Ok(()) => {
                    let _ = std::fs::remove_file(&path);
                    outcomes[if r.timed_out {
                        2
                    } else if r.status == Some(126) || r.status == Some(127) {
                        1
                    } else {
                        0
                    }] += 1;
                }
                Err(e) => {
                    // Kept out of the scratch dir (removed at the end).
                    let keep = std::env::temp_dir().join(format!("elfuse-fuzz-m{bi}-{seed}"));
                    let _ = std::fs::copy(&path, &keep);
                    failures
                        .push(e.replace(&path.display().to_string(), &keep.display().to_string()));
                }
            }
        }
    }
    eprintln!(
        "fuzz: {} mutants: {} ran, {} refused with one elfuse: line, {} looped as under qemu",
        outcomes.iter().sum::<usize>() + failures.len(),
        outcomes[0],
        outcomes[1],
        outcomes[2]
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn random_syscalls_from_threads() {
    let Some(prog_glibc) = guest(Libc::Glibc, "fuzz_syscalls") else {
        return;
    };
    let progs = [Some(prog_glibc), guest(Libc::Musl, "fuzz_syscalls")];
    let first = env_u64("ELFUSE_FUZZ_FIRST", 1);
    let seeds = env_u64("ELFUSE_FUZZ_SEEDS", SYSCALL_SEEDS);
    let calls = env_u64("ELFUSE_FUZZ_CALLS", SYSCALL_CALLS);
    let mut failures = Vec::new();
    for prog in progs.iter().flatten() {
        for seed in first..first + seeds {
            let dir = TempDir::new();
            let args = [seed.to_string(), calls.to_string(), "4".into()];
            let mut c = elfuse_command::<[&str; 0], _>([], prog, args);
            c.current_dir(dir.path());
            let r = run_limited(c, Duration::from_secs(120));
            let err = String::from_utf8_lossy(&r.stderr);
            let out = String::from_utf8_lossy(&r.stdout);
            let what = format!("{} seed {seed}", prog.display());
            if err.contains("panicked") || err.contains("elfuse: ") {
                failures.push(format!("{what}: elfuse failed: {err}"));
            } else if r.timed_out {
                failures.push(format!("{what}: hung"));
            } else if r.max_rss_kb > MAX_RSS_KB {
                failures.push(format!("{what}: {} KB", r.max_rss_kb));
            } else if r.status == Some(0) {
                // Done (its PASS line may be gone: the calls may truncate or seek its
                // stdout).
                let _ = &out;
            } else if r.signal.is_none() && r.status.is_some_and(|s| s < 128) {
                // Exit statuses of its own: only 0 (PASS) is the program's.
                failures.push(format!("{what}: status {:?}: {err}", r.status));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
