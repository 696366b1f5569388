//! The Debian 12 arm64 root of `scripts/rootfs.sh` (built once per test run, cached under
//! `target/rootfs-arm64/`), for tests that run real programs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{elfuse_command, qemu, run, GUEST_ENV};
use std::sync::OnceLock;

static ROOTFS: OnceLock<Result<PathBuf, String>> = OnceLock::new();

fn build() -> Result<PathBuf, String> {
    let script = super::repo_root().join("scripts/rootfs.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(format!(
            "scripts/rootfs.sh failed ({}): {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ));
    }
    let path = PathBuf::from(stdout.lines().last().unwrap_or("").trim());
    if !path.join("usr/bin/python3").exists() {
        return Err(format!(
            "scripts/rootfs.sh printed '{}', which has no usr/bin/python3",
            path.display()
        ));
    }
    Ok(path)
}

/// The root's path, or None (printing `skipped: ...`) when it cannot be built here (no
/// Debian apt, no arm64 architecture, no root for apt-get update, no network); with
/// `CI=true` that is a failure instead.
pub fn rootfs() -> Option<PathBuf> {
    match ROOTFS.get_or_init(build) {
        Ok(p) => Some(p.clone()),
        Err(why) => {
            if super::in_ci() {
                panic!("CI=true but the arm64 rootfs is not available: {why}");
            }
            eprintln!("skipped: the arm64 rootfs is not available: {why}");
            None
        }
    }
}

/// `elfuse --sysroot ROOT PROG ARGS...` (PROG is the guest's absolute path).
pub fn elfuse_in(root: &Path, prog: &str, args: &[String]) -> Command {
    let opts = [OsString::from("--sysroot"), root.into()];
    elfuse_command(&opts, Path::new(prog), args)
}

/// `qemu-aarch64-static -L ROOT ROOT/PROG ARGS...` (qemu's -L does not apply to the program
/// path itself).
pub fn qemu_in(qemu: &Path, root: &Path, prog: &str, args: &[String]) -> Command {
    let mut c = Command::new(qemu);
    c.arg("-L")
        .arg(root)
        .arg(root.join(prog.trim_start_matches('/')))
        .args(args)
        .env_clear()
        .envs(GUEST_ENV.iter().copied());
    c
}

pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Runs PROG under elfuse, requires status 0, and returns its stdout. With `qemu`, also
/// runs it under qemu-aarch64-static and requires the same status and byte-identical stdout.
pub fn run_real(
    root: &Path,
    prog: &str,
    args: &[String],
    stdin: &[u8],
    with_qemu: bool,
) -> Vec<u8> {
    let out = run(elfuse_in(root, prog, args), stdin);
    assert_eq!(
        out.status,
        0,
        "elfuse --sysroot ROOT {prog} {args:?}\n{}",
        out.describe()
    );
    if with_qemu {
        if let Some(q) = qemu() {
            let qo = run(qemu_in(&q, root, prog, args), stdin);
            assert_eq!(
                (qo.status, &qo.stdout),
                (out.status, &out.stdout),
                "{prog} {args:?}: elfuse and qemu differ\n--- elfuse\n{}\n--- qemu\n{}",
                out.describe(),
                qo.describe()
            );
        }
    }
    out.stdout
}

pub fn text(v: Vec<u8>) -> String {
    String::from_utf8(v).expect("UTF-8 output")
}
