//! Compute workloads under elfuse and under qemu-aarch64-static, in the same run,
//! alternating: CPU time (user + sys) of the child process from wait4's rusage, the median
//! of several runs, and the ratio elfuse/qemu per workload, as a markdown table.
//!
//!     cargo bench --bench compute                   # 5 runs of each (~3-4 min)
//!     ELFUSE_BENCH_RUNS=9 cargo bench --bench compute
//!     cargo bench --bench compute -- heapsort chase # only these rows
//!
//! The guest is `benches/guest/compute.c` (`compute <workload>`), built with
//! `aarch64-linux-gnu-gcc -O2 -static` (glibc) into `<target>/bench-guests/` when its
//! source is newer than the binary. Each run prints a checksum; elfuse's must equal qemu's.
//! The rows from an arm64 Debian root file system (python3, busybox gzip, sha256sum) run
//! when `target/rootfs-arm64` exists (scripts/rootfs.sh), with `--sysroot` / `-L`, and are
//! skipped otherwise.

// Only the guest build is shared (compute times its runs with wait4 itself).
#[allow(dead_code)]
mod guestbench;

use guestbench::common::{bench_runs, median, qemu, target_dir, ELFUSE};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// The guest's workloads (its `compute` argument), in table order.
const WORKLOADS: &[(&str, &str)] = &[
    ("crc32", "crc32, table-driven, 32 MiB x 2"),
    ("matmul", "double matmul 200x200 x 3"),
    ("heapsort", "heapsort 1M ints"),
    ("memcpy", "memcpy 8 MiB x 300"),
    ("malloc", "malloc/free churn 3M ops"),
    ("chase", "pointer chase, 1M nodes x 3"),
    ("string", "string functions, 16 MiB x 4"),
    ("fork", "fork 48 children, 2M-step loop"),
];

/// Runs `cmd` to completion; returns its stdout and the CPU time (user + sys, seconds) of
/// the child and everything it waited for, from wait4's rusage.
fn run_cpu(cmd: &mut Command, what: &str) -> (Vec<u8>, f64) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let mut out = Vec::new();
    std::io::Read::read_to_end(child.stdout.as_mut().expect("piped stdout"), &mut out)
        .expect("read the child's stdout");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: all-zero is a valid rusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own unwaited child (std's Child is never waited afterwards: it is
    // forgotten below); status and ru are valid for writes.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(
        r,
        pid,
        "wait4 on {what}: {}",
        std::io::Error::last_os_error()
    );
    std::mem::forget(child);
    let st = std::process::ExitStatus::from_raw(status);
    assert!(st.success(), "{what} failed: {st}");
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (out, secs(ru.ru_utime) + secs(ru.ru_stime))
}

/// One row: a name, and how to build its command under elfuse and under qemu.
struct Row {
    name: String,
    elfuse: Command,
    qemu: Option<Command>,
}

fn guest_rows(guest: &Path, qemu: Option<&Path>, only: &[String]) -> Vec<Row> {
    WORKLOADS
        .iter()
        .filter(|(w, _)| only.is_empty() || only.iter().any(|o| o == w))
        .map(|(w, label)| {
            let mut e = Command::new(ELFUSE);
            e.arg(guest).arg(w);
            let q = qemu.map(|q| {
                let mut c = Command::new(q);
                c.arg(guest).arg(w);
                c
            });
            Row {
                name: label.to_string(),
                elfuse: e,
                qemu: q,
            }
        })
        .collect()
}

/// The rows that need an arm64 Debian root file system; none when it is absent.
fn rootfs_rows(qemu: Option<&Path>, only: &[String], data: &Path) -> Vec<Row> {
    let root = target_dir().join("rootfs-arm64");
    if !root.join("usr/bin").is_dir() {
        println!(
            "(rootfs rows skipped: no {}; see scripts/rootfs.sh)",
            root.display()
        );
        return Vec::new();
    }
    let file = data.join("ten-mb.bin");
    if !file.exists() {
        let mut x: u32 = 1;
        let bytes: Vec<u8> = (0..10_000_000u32)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                // Compressible but not trivial: text-like bytes with some noise.
                if i % 7 == 0 {
                    (x >> 24) as u8
                } else {
                    b"the quick brown fox "[(i % 20) as usize]
                }
            })
            .collect();
        std::fs::write(&file, bytes).expect("write the 10 MB file");
    }
    let f = file.to_str().expect("utf-8 temp path").to_string();
    let cases: Vec<(&str, &str, Vec<String>)> = vec![
        (
            "python3",
            "/usr/bin/python3",
            vec![
                "-c".into(),
                "d={}\nfor i in range(300000): d[str(i)]=i*2\ns=sum(range(3*10**6))+sum(d.values())\nprint(s)"
                    .into(),
            ],
        ),
        (
            "gzip",
            "/bin/busybox",
            vec!["gzip".into(), "-c".into(), f.clone()],
        ),
        ("sha256sum", "/usr/bin/sha256sum", vec![f]),
    ];
    let mut rows = Vec::new();
    for (name, prog, args) in cases {
        if !(only.is_empty() || only.iter().any(|o| o == name)) {
            continue;
        }
        if !root.join(prog.trim_start_matches('/')).exists() {
            println!("({name} skipped: no {prog} in the rootfs)");
            continue;
        }
        let mut e = Command::new(ELFUSE);
        e.arg("--sysroot").arg(&root).arg(prog).args(&args);
        let q = qemu.map(|q| {
            let mut c = Command::new(q);
            c.arg("-L")
                .arg(&root)
                .arg(root.join(prog.trim_start_matches('/')));
            c.args(&args);
            c
        });
        rows.push(Row {
            name: format!("{name} (rootfs)"),
            elfuse: e,
            qemu: q,
        });
    }
    rows
}

fn main() {
    let runs = bench_runs(5);
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let Some(guest) = guestbench::build_guest("compute", &[]) else {
        return;
    };
    let qemu = qemu();
    if qemu.is_none() {
        eprintln!("note: qemu-aarch64-static not found: timing elfuse only");
    }
    let data = std::env::temp_dir().join(format!("elfuse-compute-{}", std::process::id()));
    std::fs::create_dir_all(&data).expect("create a temp dir");
    let mut rows = guest_rows(&guest, qemu.as_deref(), &only);
    rows.extend(rootfs_rows(qemu.as_deref(), &only, &data));

    println!("compute: CPU time (user+sys) of the process, median of {runs} alternating runs");
    println!();
    println!("| workload | elfuse s | qemu s | elfuse/qemu |");
    println!("|---|---:|---:|---:|");
    for row in &mut rows {
        let (mut te, mut tq) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let (oe, e) = run_cpu(&mut row.elfuse, &format!("elfuse {}", row.name));
            te.push(e);
            if let Some(q) = row.qemu.as_mut() {
                let (oq, t) = run_cpu(q, &format!("qemu {}", row.name));
                assert_eq!(
                    String::from_utf8_lossy(&oe),
                    String::from_utf8_lossy(&oq),
                    "{}: elfuse and qemu disagree",
                    row.name
                );
                tq.push(t);
            }
        }
        let e = median(&mut te);
        if tq.is_empty() {
            println!("| {} | {e:.3} | - | - |", row.name);
        } else {
            let q = median(&mut tq);
            println!("| {} | {e:.3} | {q:.3} | {:.2} |", row.name, e / q);
        }
    }
    let _ = std::fs::remove_dir_all(&data);
}
