//! The Debian 12 arm64 root of `scripts/rootfs.sh` (built once per test run, cached under
//! `target/rootfs-arm64/`), for tests that run real programs.

use std::path::PathBuf;
use std::process::Command;
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
