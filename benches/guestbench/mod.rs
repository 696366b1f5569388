//! The runner shared by the guest benchmarks that print "NAME VALUE" lines (hotcalls,
//! net): builds `benches/guest/<name>.c` (static glibc) into `<target>/bench-guests/`
//! when its source is newer, runs it under elfuse and qemu-aarch64-static alternately
//! (`ELFUSE_BENCH_RUNS` times each; which goes first alternates too), and prints the
//! medians and the ratio elfuse/qemu as a markdown table.

#[path = "../../tests/common/mod.rs"]
pub mod common;

use common::{bench_runs, median, qemu, target_dir, CROSS_GCC, ELFUSE};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Builds the guest `benches/guest/<name>.c` (`extra`: more compiler arguments).
pub fn build_guest(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("benches/guest/{name}.c"));
    let dir = target_dir().join("bench-guests");
    std::fs::create_dir_all(&dir).expect("create target/bench-guests");
    let out = dir.join(name);
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
        .args(extra)
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

/// Runs the guest once; returns (name, value) in the guest's order.
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

/// Runs `prog args` under both, `default_runs` times unless ELFUSE_BENCH_RUNS says
/// otherwise, and prints `title` and the table (`unit`: the value column's heading).
pub fn compare(prog: &Path, args: &[&str], default_runs: usize, title: &str, unit: &str) {
    let runs = bench_runs(default_runs);
    let qemu = qemu();
    if qemu.is_none() {
        eprintln!("note: qemu-aarch64-static not found: timing elfuse only");
    }
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
            c.arg(prog).args(args);
            c
        };
        // Alternate which goes first, so neither always runs on a warm cache.
        if i % 2 == 0 {
            record(&mut e, run_once(&mut elfuse(), "elfuse"));
        }
        if let Some(qp) = &qemu {
            let mut c = Command::new(qp);
            c.arg(prog).args(args);
            record(&mut q, run_once(&mut c, "qemu"));
        }
        if i % 2 == 1 {
            record(&mut e, run_once(&mut elfuse(), "elfuse"));
        }
    }

    println!("{title}, median of {runs} runs each (alternating), static glibc");
    println!();
    println!("| | elfuse {unit} | qemu {unit} | ratio |");
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
