//! Start-to-exit time of a static AArch64 hello (glibc and musl) under elfuse
//! and under qemu-aarch64-static, measured in the same run, alternating, and
//! reported as medians with the ratio elfuse/qemu.
//!
//!     cargo bench --bench startup              # 30 runs of each
//!     ELFUSE_BENCH_RUNS=100 cargo bench --bench startup
//!
//! `cargo bench` builds the elfuse binary with the release profile first. The
//! guests are built as for the tests (needs scripts/install-deps.sh).

#[path = "../tests/common/mod.rs"]
mod common;

use common::{bench_runs, guest, qemu, Libc, ELFUSE};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WARMUP: usize = 3;

fn time_once(cmd: &mut Command, what: &str) -> Duration {
    let start = Instant::now();
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let elapsed = start.elapsed();
    assert!(status.success(), "{what} failed: {status}");
    elapsed
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn main() {
    // `cargo bench` passes --bench (and maybe a filter): nothing to parse.
    let runs = bench_runs(30);
    let qemu = qemu();
    if qemu.is_none() {
        eprintln!("note: qemu-aarch64-static not found: timing elfuse only");
    }
    println!("startup: static hello, start to exit, median of {runs} runs each (alternating)");
    println!("elfuse: {ELFUSE}");
    println!();
    println!(
        "{:<14} {:>12} {:>12} {:>12} {:>12} {:>14}",
        "guest", "elfuse ms", "(min)", "qemu ms", "(min)", "elfuse/qemu"
    );

    for libc in Libc::ALL {
        let Some(prog) = guest(libc, "hello") else {
            continue;
        };
        let elfuse_cmd = |p: &Path| {
            let mut c = Command::new(ELFUSE);
            c.arg(p);
            c
        };
        let qemu_cmd = |q: &Path, p: &Path| {
            let mut c = Command::new(q);
            c.arg(p);
            c
        };
        for _ in 0..WARMUP {
            time_once(&mut elfuse_cmd(&prog), "elfuse");
            if let Some(q) = &qemu {
                time_once(&mut qemu_cmd(q, &prog), "qemu");
            }
        }
        let mut e = Vec::with_capacity(runs);
        let mut q = Vec::with_capacity(runs);
        for i in 0..runs {
            // Alternate which goes first, so neither always runs on a warm cache.
            let first_elfuse = i % 2 == 0;
            if first_elfuse {
                e.push(time_once(&mut elfuse_cmd(&prog), "elfuse"));
            }
            if let Some(qp) = &qemu {
                q.push(time_once(&mut qemu_cmd(qp, &prog), "qemu"));
            }
            if !first_elfuse {
                e.push(time_once(&mut elfuse_cmd(&prog), "elfuse"));
            }
        }
        let e_min = *e.iter().min().unwrap();
        let e_med = median(&mut e);
        let (q_med, q_min, ratio) = if q.is_empty() {
            ("-".to_string(), "-".to_string(), "-".to_string())
        } else {
            let q_min = *q.iter().min().unwrap();
            let q_med = median(&mut q);
            let ratio = e_med.as_secs_f64() / q_med.as_secs_f64();
            (ms(q_med), ms(q_min), format!("{ratio:.2}"))
        };
        println!(
            "{:<14} {:>12} {:>12} {:>12} {:>12} {:>14}",
            format!("hello-{}", libc.name()),
            ms(e_med),
            ms(e_min),
            q_med,
            q_min,
            ratio
        );
    }
}
