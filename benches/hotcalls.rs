//! ns per call of hot syscalls and vDSO calls under elfuse and under qemu-aarch64-static,
//! measured in the same run, alternating, and reported as medians with the ratio
//! elfuse/qemu as a markdown table.
//!
//!     cargo bench --bench hotcalls                 # 5 runs of each
//!     ELFUSE_BENCH_RUNS=9 cargo bench --bench hotcalls
//!     ELFUSE_BENCH_CLOCK=cpu cargo bench --bench hotcalls
//!
//! `ELFUSE_BENCH_CLOCK=cpu` times with the guest process's CPU time (the host process's,
//! all its threads, under both runners) instead of CLOCK_MONOTONIC: on a shared, loaded
//! machine wall time mostly measures the wait for a core.
//!
//! The guest is `benches/guest/hotcalls.c`, built with `aarch64-linux-gnu-gcc -O2 -static`
//! (glibc) into `<target>/bench-guests/` when its source is newer than the binary.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{bench_runs, median, qemu, target_dir, CROSS_GCC, ELFUSE};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn build_guest() -> Option<PathBuf> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/guest/hotcalls.c");
    let dir = target_dir().join("bench-guests");
    std::fs::create_dir_all(&dir).expect("create target/bench-guests");
    let out = dir.join("hotcalls");
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(bin), Some(s)) = (mtime(&out), mtime(&src)) {
        if bin >= s {
            return Some(out);
        }
    }
    let status = Command::new(CROSS_GCC)
        .args(["-O2", "-static", "-o"])
        .arg(&out)
        .arg(&src)
        .status();
    match status {
        Ok(s) if s.success() => Some(out),
        Ok(s) => panic!("{CROSS_GCC} failed on {}: {s}", src.display()),
        Err(e) => {
            eprintln!("skipped: cannot run {CROSS_GCC} ({e}); run scripts/install-deps.sh");
            None
        }
    }
}

/// Runs the guest once; returns (call, ns) in the guest's order.
fn run_once(cmd: &mut Command, what: &str) -> Vec<(String, f64)> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(out.status.success(), "{what} failed: {}", out.status);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (name, ns) = l.rsplit_once(' ')?;
            Some((name.to_string(), ns.parse().ok()?))
        })
        .collect()
}

fn main() {
    let runs = bench_runs(5);
    let Some(prog) = build_guest() else {
        return;
    };
    let qemu = qemu();
    if qemu.is_none() {
        eprintln!("note: qemu-aarch64-static not found: timing elfuse only");
    }
    let cpu_clock = std::env::var("ELFUSE_BENCH_CLOCK").is_ok_and(|v| v == "cpu");
    let guest_args: &[&str] = if cpu_clock { &["1", "cpu"] } else { &[] };
    let mut order: Vec<String> = Vec::new();
    let mut e: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut q: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut record = |m: &mut BTreeMap<String, Vec<f64>>, rows: Vec<(String, f64)>| {
        for (name, ns) in rows {
            if !order.contains(&name) {
                order.push(name.clone());
            }
            m.entry(name).or_default().push(ns);
        }
    };
    for i in 0..runs {
        let elfuse = || {
            let mut c = Command::new(ELFUSE);
            c.arg(&prog).args(guest_args);
            c
        };
        // Alternate which goes first, so neither always runs on a warm cache.
        if i % 2 == 0 {
            record(&mut e, run_once(&mut elfuse(), "elfuse"));
        }
        if let Some(qp) = &qemu {
            let mut c = Command::new(qp);
            c.arg(&prog).args(guest_args);
            record(&mut q, run_once(&mut c, "qemu"));
        }
        if i % 2 == 1 {
            record(&mut e, run_once(&mut elfuse(), "elfuse"));
        }
    }

    let clock = if cpu_clock {
        "process CPU time"
    } else {
        "wall time"
    };
    println!(
        "hotcalls: ns per call ({clock}), median of {runs} runs each (alternating), static glibc"
    );
    println!();
    println!("| call | elfuse ns | qemu ns | ratio |");
    println!("|---|---:|---:|---:|");
    for name in &order {
        let em = e.get_mut(name).map(|v| median(v));
        let qm = q.get_mut(name).map(|v| median(v));
        let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        let ratio = match (em, qm) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "-".to_string(),
        };
        println!("| {name} | {} | {} | {ratio} |", fmt(em), fmt(qm));
    }
}
