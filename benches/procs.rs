//! Process and thread creation under elfuse and under qemu-aarch64-static, in the same
//! run, alternating: fork + _exit + waitpid (`fork bench N`, native fork and the spawn
//! path `ELFUSE_FORK=spawn`) and pthread_create + pthread_join (`thread_bench`), static
//! glibc guests. Each guest run prints the median of its own cycles; this reports the
//! median and minimum of those per-run medians and the ratio elfuse/qemu of the medians.
//!
//!     cargo bench --bench procs                # 7 rounds (~30 s on a quiet 2-core host)
//!     ELFUSE_BENCH_RUNS=15 cargo bench --bench procs
//!
//! `cargo bench` builds the elfuse binary with the release profile first. The guests are
//! built as for the tests (needs scripts/install-deps.sh).

#[path = "../tests/common/mod.rs"]
mod common;

use common::{bench_runs, guest, median, qemu, Libc, ELFUSE};
use std::path::Path;
use std::process::{Command, Stdio};

/// One case: a guest, its arguments, extra environment for elfuse, and how to find the
/// median (µs) in its output.
struct Case {
    name: &'static str,
    prog: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
}

const CASES: &[Case] = &[
    Case {
        name: "fork+exit+wait (native)",
        prog: "fork",
        args: &["bench", "201"],
        env: &[],
    },
    Case {
        name: "fork+exit+wait (spawn)",
        prog: "fork",
        args: &["bench", "31"],
        env: &[("ELFUSE_FORK", "spawn")],
    },
    Case {
        name: "pthread_create+join",
        prog: "thread_bench",
        args: &[],
        env: &[],
    },
];

/// The median in µs a guest printed ("median 123 us ..." or "...: median 123 us, ...").
fn run_us(cmd: &mut Command, what: &str) -> f64 {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(out.status.success(), "{what} failed: {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "median" {
            if let Some(n) = words.next().and_then(|n| n.parse().ok()) {
                return n;
            }
        }
    }
    panic!("{what}: no median in {text:?}")
}

fn main() {
    let runs = bench_runs(7);
    let qemu = qemu();
    if qemu.is_none() {
        eprintln!("note: qemu-aarch64-static not found: timing elfuse only");
    }
    println!("procs: static glibc guests, median of {runs} runs' medians (alternating)");
    println!();
    println!(
        "{:<26} {:>10} {:>9} {:>10} {:>9} {:>12}",
        "case", "elfuse us", "(min)", "qemu us", "(min)", "elfuse/qemu"
    );
    for case in CASES {
        let Some(prog) = guest(Libc::Glibc, case.prog) else {
            continue;
        };
        let elfuse = |p: &Path| {
            let mut c = Command::new(ELFUSE);
            c.arg(p).args(case.args);
            c.envs(case.env.iter().copied());
            c
        };
        let mut e = Vec::new();
        let mut q = Vec::new();
        for i in 0..runs {
            let qrun = |q: &mut Vec<f64>| {
                if let Some(qp) = &qemu {
                    let mut c = Command::new(qp);
                    c.arg(&prog).args(case.args);
                    q.push(run_us(&mut c, "qemu"));
                }
            };
            if i % 2 == 1 {
                qrun(&mut q);
            }
            e.push(run_us(&mut elfuse(&prog), "elfuse"));
            if i % 2 == 0 {
                qrun(&mut q);
            }
        }
        let e_min = e.iter().copied().fold(f64::MAX, f64::min);
        let e_med = median(&mut e);
        let (q_med, q_min, ratio) = if q.is_empty() {
            ("-".into(), "-".into(), "-".into())
        } else {
            let q_min = q.iter().copied().fold(f64::MAX, f64::min);
            let q_med = median(&mut q);
            (
                format!("{q_med:.0}"),
                format!("{q_min:.0}"),
                format!("{:.2}", e_med / q_med),
            )
        };
        println!(
            "{:<26} {:>10.0} {:>9.0} {:>10} {:>9} {:>12}",
            case.name, e_med, e_min, q_med, q_min, ratio
        );
    }
}
