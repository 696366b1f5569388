//! Which sysroot a run gets: `--sysroot`, `ELFUSE_SYSROOT`, `QEMU_LD_PREFIX`, and for a
//! dynamic program whose loader is missing on the host, the cross location
//! `/usr/aarch64-linux-gnu` (libc6-arm64-cross, from scripts/install-deps.sh). The programs
//! are built here with `aarch64-linux-gnu-gcc`, dynamic (no -static) unless said.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const CROSS_ROOT: &str = "/usr/aarch64-linux-gnu";

const HELLO: &str = r#"
#include <stdio.h>
int main(int argc, char **argv) {
    printf("hello, dynamic (argc %d)\n", argc);
    return 0;
}
"#;

/// Prints the contents of argv[1] (or "ENOENT").
const CAT: &str = r#"
#include <stdio.h>
int main(int argc, char **argv) {
    FILE *f = fopen(argv[1], "r");
    if (!f) { puts("ENOENT"); return 0; }
    char buf[256];
    size_t n = fread(buf, 1, sizeof buf, f);
    fwrite(buf, 1, n, stdout);
    return 0;
}
"#;

/// Builds `src` into DIR/NAME with extra gcc flags; None (skipped) without the cross gcc
/// or the cross glibc.
fn build(dir: &Path, name: &str, src: &str, flags: &[&str]) -> Option<PathBuf> {
    if which(CROSS_GCC).is_none() || !Path::new(CROSS_ROOT).join("lib/libc.so.6").exists() {
        let why =
            "aarch64-linux-gnu-gcc or libc6-arm64-cross is not installed (scripts/install-deps.sh)";
        if in_ci() {
            panic!("CI=true but {why}");
        }
        eprintln!("skipped: {why}");
        return None;
    }
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, src).unwrap();
    let out = dir.join(name);
    let st = Command::new(CROSS_GCC)
        .args(["-O2", "-o"])
        .arg(&out)
        .arg(&c)
        .args(flags)
        .status()
        .expect("run the cross gcc");
    assert!(st.success(), "building {name} failed");
    Some(out)
}

/// elfuse PROG ARGS with the test environment plus `env`, in `cwd`.
fn elfuse_env(opts: &[&str], prog: &Path, env: &[(&str, &str)], cwd: &Path) -> Output {
    let mut cmd = elfuse_command(opts, prog, [] as [&str; 0]);
    cmd.envs(env.iter().copied()).current_dir(cwd);
    run(cmd, b"")
}

fn assert_runs(out: &Output, what: &str) {
    assert_eq!(out.status, 0, "{what}\n{}", out.describe());
    assert_eq!(out.stdout_str(), "hello, dynamic (argc 1)\n", "{what}");
    assert!(out.stderr.is_empty(), "{what}\n{}", out.describe());
}

fn assert_one_error(out: &Output, status: i32, contains: &[&str], what: &str) {
    let err = out.stderr_str();
    assert_eq!(out.status, status, "{what}\n{}", out.describe());
    assert_eq!(
        err.lines().count(),
        1,
        "{what}: one line\n{}",
        out.describe()
    );
    assert!(err.starts_with("elfuse: "), "{what}\n{}", out.describe());
    for c in contains {
        assert!(err.contains(c), "{what}: expected '{c}' in\n{err}");
    }
}

/// The issue's case: `elfuse ./hello`, dynamic, nothing configured.
#[test]
fn dynamic_hello_runs_with_the_cross_root() {
    let dir = TempDir::new();
    let Some(_hello) = build(dir.path(), "hello", HELLO, &[]) else {
        return;
    };
    if Path::new("/lib/ld-linux-aarch64.so.1").exists() {
        eprintln!(
            "note: this host has /lib/ld-linux-aarch64.so.1; the cross fallback is not exercised"
        );
    }
    let out = elfuse_env(&[], Path::new("./hello"), &[], dir.path());
    assert_runs(&out, "elfuse ./hello");
}

#[test]
fn environment_variables_choose_the_sysroot() {
    let dir = TempDir::new();
    let Some(hello) = build(dir.path(), "hello", HELLO, &[]) else {
        return;
    };
    let empty = TempDir::new();
    let empty_s = empty.path().to_str().unwrap();
    // An explicit sysroot without the loader: searched (then the host), the cross root not.
    for var in ["ELFUSE_SYSROOT", "QEMU_LD_PREFIX"] {
        let out = elfuse_env(&[], &hello, &[(var, empty_s)], dir.path());
        let inside = format!("{empty_s}/lib/ld-linux-aarch64.so.1 (the sysroot)");
        assert_one_error(&out, 127, &[&inside], var);
    }
    // The cross root given explicitly works through each variable.
    for var in ["ELFUSE_SYSROOT", "QEMU_LD_PREFIX"] {
        let out = elfuse_env(&[], &hello, &[(var, CROSS_ROOT)], dir.path());
        assert_runs(&out, var);
    }
    // ELFUSE_SYSROOT before QEMU_LD_PREFIX, --sysroot before both; empty means unset.
    let out = elfuse_env(
        &[],
        &hello,
        &[("ELFUSE_SYSROOT", CROSS_ROOT), ("QEMU_LD_PREFIX", empty_s)],
        dir.path(),
    );
    assert_runs(&out, "ELFUSE_SYSROOT wins");
    let out = elfuse_env(
        &["--sysroot", CROSS_ROOT],
        &hello,
        &[("ELFUSE_SYSROOT", empty_s), ("QEMU_LD_PREFIX", empty_s)],
        dir.path(),
    );
    assert_runs(&out, "--sysroot wins");
    let out = elfuse_env(&[], &hello, &[("ELFUSE_SYSROOT", "")], dir.path());
    assert_runs(&out, "empty ELFUSE_SYSROOT");
    // Not a directory: one line naming the variable.
    let out = elfuse_env(
        &[],
        &hello,
        &[("QEMU_LD_PREFIX", "/nonexistent-elfuse-root")],
        dir.path(),
    );
    assert_one_error(
        &out,
        2,
        &["QEMU_LD_PREFIX=/nonexistent-elfuse-root: not a directory"],
        "bad QEMU_LD_PREFIX",
    );
}

/// A static program's absolute paths resolve inside ELFUSE_SYSROOT too.
#[test]
fn static_program_sees_files_of_elfuse_sysroot() {
    let dir = TempDir::new();
    let Some(cat) = build(dir.path(), "cat", CAT, &["-static"]) else {
        return;
    };
    let root = TempDir::new();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(root.path().join("etc/elfuse-env-root.txt"), "inside\n").unwrap();
    let mut cmd = elfuse_command::<[&str; 0], _>([], &cat, ["/etc/elfuse-env-root.txt"]);
    cmd.env("ELFUSE_SYSROOT", root.path());
    let out = run(cmd, b"");
    assert_eq!(out.stdout_str(), "inside\n", "{}", out.describe());
    let out = run(
        elfuse_command::<[&str; 0], _>([], &cat, ["/etc/elfuse-env-root.txt"]),
        b"",
    );
    assert_eq!(out.stdout_str(), "ENOENT\n", "{}", out.describe());
}

/// A loader found nowhere: one line that names every place tried, status 127 (a shell's
/// "not found", which is what execve's ENOENT gives natively).
#[test]
fn missing_loader_names_what_was_tried() {
    let dir = TempDir::new();
    let Some(prog) = build(
        dir.path(),
        "noloader",
        HELLO,
        &["-Wl,--dynamic-linker=/lib/ld-elfuse-nowhere.so.1"],
    ) else {
        return;
    };
    let out = elfuse_env(&[], &prog, &[], dir.path());
    assert_one_error(
        &out,
        127,
        &[
            "interpreter /lib/ld-elfuse-nowhere.so.1 not found",
            "/lib/ld-elfuse-nowhere.so.1 (the host)",
            "/usr/aarch64-linux-gnu/lib/ld-elfuse-nowhere.so.1",
            "--sysroot",
        ],
        "missing loader",
    );
}

/// Runs argv[1] with execv.
const EXEC: &str = r#"
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
    execv(argv[1], argv + 1);
    perror("execv");
    return 1;
}
"#;

/// A static program (no sysroot, nothing configured) execve's the dynamic hello: its loader
/// comes from the cross location, as at start-up.
#[test]
fn execve_of_a_dynamic_program_uses_the_cross_root() {
    let dir = TempDir::new();
    let (Some(exec), Some(hello)) = (
        build(dir.path(), "exec", EXEC, &["-static"]),
        build(dir.path(), "hello", HELLO, &[]),
    ) else {
        return;
    };
    let out = run(
        elfuse_command::<[&str; 0], _>([], &exec, [hello.as_os_str()]),
        b"",
    );
    assert_runs(&out, "static exec → dynamic hello");
    // A loader found nowhere: execve fails with ENOENT, as on Linux.
    let Some(nowhere) = build(
        dir.path(),
        "noloader",
        HELLO,
        &["-Wl,--dynamic-linker=/lib/ld-elfuse-nowhere.so.1"],
    ) else {
        return;
    };
    let out = run(
        elfuse_command::<[&str; 0], _>([], &exec, [nowhere.as_os_str()]),
        b"",
    );
    assert_eq!(out.status, 1, "{}", out.describe());
    assert_eq!(out.stderr_str(), "execv: No such file or directory\n");
}
