//! `elfuse --binfmt install|uninstall|status` against the real kernel: an arm64 program run
//! directly (`./prog`, argv[0] preserved, the exit status passed through), a chroot of the
//! arm64 rootfs run with no `--sysroot` (the statically linked elfuse, binfmt_misc's F flag),
//! refusals (another handler owns AArch64 ELF, not root), and uninstall leaving no entry.
//!
//! A registered handler changes how every arm64 program execs on this machine, so the whole
//! sequence is one test in its own test binary, serialized across processes with a lock
//! file, with the entry removed by a drop guard even when an assertion fails. Needs root (CI
//! runs as root; elsewhere it is skipped, and with CI=true it fails); skipped with a line
//! saying so only where binfmt_misc cannot be mounted.
//!
//! The static elfuse is `target/x86_64-unknown-linux-gnu/release/elfuse`, built by `.ci/run`
//! with `RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target
//! x86_64-unknown-linux-gnu` (README "Static build"); without it the chroot part is skipped
//! (a failure with CI=true).

mod common;

use common::rootfs::rootfs;
use common::*;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const DIR: &str = "/proc/sys/fs/binfmt_misc";
const ENTRY: &str = "/proc/sys/fs/binfmt_misc/elfuse-aarch64";
const DECOY: &str = "elfuse-test-decoy";
const MAGIC: &str =
    r"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00";
const MASK: &str =
    r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff";

const ARGS_PROG: &str = r#"
#include <stdio.h>
int main(int argc, char **argv) {
    for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    return 7;
}
"#;

/// Removes our entry and the decoy (if present) when dropped.
struct Cleanup;

/// Re-enables the machine's own AArch64 handlers disabled for the test (CI only), on drop.
struct Reenable(Vec<String>);

impl Drop for Reenable {
    fn drop(&mut self) {
        remove_entry(ENTRY);
        for name in &self.0 {
            let _ = std::fs::write(format!("{DIR}/{name}"), "1");
        }
    }
}

fn remove_entry(path: &str) {
    if Path::new(path).exists() {
        let _ = std::fs::write(path, "-1");
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        remove_entry(ENTRY);
        remove_entry(&format!("{DIR}/{DECOY}"));
    }
}

/// Skips (a line on stderr), or panics under CI.
fn skip_or_fail(why: &str) {
    if in_ci() {
        panic!("CI=true but {why}");
    }
    eprintln!("skipped: {why}");
}

fn elfuse_at(exe: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(exe);
    cmd.args(args);
    run(cmd, b"")
}

fn static_elfuse() -> PathBuf {
    target_dir().join("x86_64-unknown-linux-gnu/release/elfuse")
}

fn mounted() -> bool {
    Path::new(DIR).join("register").exists()
}

#[test]
fn binfmt_install_run_chroot_uninstall() {
    if !nix_is_root() {
        return skip_or_fail("binfmt_misc registration needs root");
    }
    if !mounted() {
        let st = Command::new("mount")
            .args(["-t", "binfmt_misc", "binfmt_misc", DIR])
            .output();
        if !mounted() {
            // The one case where even CI skips: the kernel or container has no binfmt_misc.
            eprintln!(
                "skipped: binfmt_misc cannot be mounted at {DIR} here ({:?})",
                st.map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
            );
            return;
        }
    }
    // One registration at a time on this machine (other test runs, other clones).
    let lock = File::create(std::env::temp_dir().join("elfuse-binfmt-test.lock")).unwrap();
    nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map(|l| {
            let _cleanup = Cleanup;
            sequence();
            drop(l);
        })
        .unwrap_or_else(|(_, e)| panic!("lock: {e}"));
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn sequence() {
    let elfuse = Path::new(ELFUSE);
    // A left-over entry from an interrupted run (we hold the lock: nobody else's).
    if Path::new(ENTRY).exists() {
        eprintln!("note: removing a stale {ENTRY}");
        remove_entry(ENTRY);
    }
    let others: Vec<String> = std::fs::read_dir(DIR)
        .unwrap()
        .flatten()
        .filter(|d| {
            let n = d.file_name();
            n != "register" && n != "status"
        })
        .filter(|d| {
            std::fs::read_to_string(d.path()).is_ok_and(|t| {
                t.starts_with("enabled")
                    && t.contains("magic 7f454c460201010000000000000000000200b700")
            })
        })
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .collect();
    let mut _reenable = None;
    if !others.is_empty() {
        // The machine's own handler (qemu-user-binfmt, say): install must refuse and name it.
        let out = elfuse_at(elfuse, &["--binfmt", "install"]);
        assert_eq!(out.status, 1, "{}", out.describe());
        assert!(out.stderr_str().contains(&others[0]), "{}", out.describe());
        assert!(!Path::new(ENTRY).exists(), "no half registration");
        if !in_ci() {
            eprintln!(
                "skipped: binfmt_misc entry {others:?} already handles AArch64 ELF here (install refused, as it must)"
            );
            return;
        }
        // CI: disable them for the test (a disabled entry claims nothing), re-enabled on drop.
        eprintln!("note: disabling {others:?} for the test");
        for name in &others {
            std::fs::write(format!("{DIR}/{name}"), "0").expect("disable a handler");
        }
        _reenable = Some(Reenable(others.clone()));
    }

    let st = elfuse_at(elfuse, &["--binfmt", "status"]);
    assert_eq!(st.status, 1, "not installed yet\n{}", st.describe());
    assert!(
        st.stdout_str().contains("not installed"),
        "{}",
        st.describe()
    );

    refuses_another_handler(elfuse);
    refuses_without_root(elfuse);

    // Install (the dynamic build: fine for programs run on the host).
    let out = elfuse_at(elfuse, &["--binfmt", "install"]);
    assert_eq!(out.status, 0, "install\n{}", out.describe());
    let entry = std::fs::read_to_string(ENTRY).expect("the entry exists after install");
    assert!(entry.starts_with("enabled\n"), "{entry}");
    let interp = elfuse.canonicalize().unwrap();
    assert!(
        entry.contains(&format!("interpreter {}\n", interp.display())),
        "{entry}"
    );
    let flags = entry
        .lines()
        .find_map(|l| l.strip_prefix("flags: "))
        .unwrap_or("");
    for f in ['F', 'O'] {
        assert!(flags.contains(f), "flag {f} missing: {entry}");
    }
    assert!(!flags.contains('C'), "no C flag: {entry}");
    let st = elfuse_at(elfuse, &["--binfmt", "status"]);
    assert_eq!(st.status, 0, "{}", st.describe());
    assert!(
        st.stdout_str().contains("installed (enabled)"),
        "{}",
        st.describe()
    );
    // Installing again is not an error.
    let again = elfuse_at(elfuse, &["--binfmt", "install"]);
    assert_eq!(again.status, 0, "{}", again.describe());

    runs_directly(flags.contains('P'));

    let out = elfuse_at(elfuse, &["--binfmt", "uninstall"]);
    assert_eq!(out.status, 0, "uninstall\n{}", out.describe());
    assert!(!Path::new(ENTRY).exists(), "the entry is gone");

    chroot_through_the_static_build();

    // Nothing left behind; uninstalling again is not an error.
    assert!(!Path::new(ENTRY).exists());
    let out = elfuse_at(elfuse, &["--binfmt", "uninstall"]);
    assert_eq!(out.status, 0, "{}", out.describe());
    assert!(
        out.stdout_str().contains("not installed"),
        "{}",
        out.describe()
    );
}

/// An enabled entry of another name for the same format: install refuses, names it and its
/// interpreter, and registers nothing.
fn refuses_another_handler(elfuse: &Path) {
    let line = format!(":{DECOY}:M::{MAGIC}:{MASK}:/bin/false:");
    std::fs::write(format!("{DIR}/register"), line).expect("register the decoy");
    let out = elfuse_at(elfuse, &["--binfmt", "install"]);
    remove_entry(&format!("{DIR}/{DECOY}"));
    assert_eq!(out.status, 1, "{}", out.describe());
    let err = out.stderr_str();
    assert_eq!(err.lines().count(), 1, "{}", out.describe());
    assert!(
        err.starts_with("elfuse: ") && err.contains(DECOY) && err.contains("/bin/false"),
        "{}",
        out.describe()
    );
    assert!(!Path::new(ENTRY).exists(), "no half registration");
}

/// As an unprivileged user: one line, nothing registered.
fn refuses_without_root(elfuse: &Path) {
    let mut cmd = Command::new(elfuse);
    cmd.args(["--binfmt", "install"]);
    as_nobody(&mut cmd);
    let out = run(cmd, b"");
    if !out.stderr_str().starts_with("elfuse:") {
        eprintln!(
            "note: nobody cannot execute {} here; the non-root refusal is not checked",
            elfuse.display()
        );
        return;
    }
    assert_eq!(out.status, 1, "{}", out.describe());
    assert!(
        out.stderr_str()
            .starts_with("elfuse: --binfmt install needs root"),
        "{}",
        out.describe()
    );
    assert!(!Path::new(ENTRY).exists());
}

/// `./prog` runs through elfuse: its output, its argv[0] (P flag) and exit status.
fn runs_directly(preserve_argv0: bool) {
    let dir = TempDir::new();
    if which(CROSS_GCC).is_none() {
        return skip_or_fail("aarch64-linux-gnu-gcc is not installed");
    }
    let src = dir.path().join("args.c");
    std::fs::write(&src, ARGS_PROG).unwrap();
    for (name, flags) in [("args-static", &["-static"][..]), ("args-dynamic", &[][..])] {
        let out = dir.path().join(name);
        let st = Command::new(CROSS_GCC)
            .args(["-O2", "-o"])
            .arg(&out)
            .arg(&src)
            .args(flags)
            .status()
            .unwrap();
        assert!(st.success());
        let mut cmd = Command::new(&out);
        cmd.arg0("custom-name").arg("x y").current_dir(dir.path());
        let res = run(cmd, b"");
        let argv0 = if preserve_argv0 {
            "custom-name".to_string()
        } else {
            out.display().to_string()
        };
        assert_eq!(
            (res.status, res.stdout_str()),
            (7, format!("argv[0]={argv0}\nargv[1]=x y\n")),
            "{name} run directly\n{}",
            res.describe()
        );
    }
    execute_only(dir.path(), &dir.path().join("args-static"));
}

/// Runs `cmd` as nobody (uid and gid 65534, no groups).
fn as_nobody(cmd: &mut Command) {
    // SAFETY: setgroups/setgid/setuid are async-signal-safe; the child only drops to nobody.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// An execute-only program (mode 0111) run by an unprivileged user: as natively, it runs
/// (the O flag: the kernel opens it and elfuse reads it from AT_EXECFD; elfuse could not
/// open it itself). Reading it is refused to that user, as a check that it is execute-only.
fn execute_only(dir: &Path, prog: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let xo = dir.join("xonly");
    std::fs::copy(prog, &xo).unwrap();
    std::fs::set_permissions(&xo, std::fs::Permissions::from_mode(0o111)).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cat = Command::new("/bin/cat");
    cat.arg(&xo);
    as_nobody(&mut cat);
    let denied = run(cat, b"");
    assert_ne!(
        denied.status,
        0,
        "nobody cannot read it\n{}",
        denied.describe()
    );
    let mut cmd = Command::new(&xo);
    cmd.arg0("xonly");
    as_nobody(&mut cmd);
    let res = run(cmd, b"");
    assert_eq!(
        (res.status, res.stdout_str()),
        (7, "argv[0]=xonly\n".to_string()),
        "execute-only program as nobody\n{}",
        res.describe()
    );
}

/// `chroot ROOTFS /bin/sh -c '...'`: every program in it is arm64, found inside the root, no
/// --sysroot; sh's children (uname, python3) are execve'd by elfuse.
fn chroot_through_the_static_build() {
    let Some(root) = rootfs() else { return };
    let exe = static_elfuse();
    if !exe.exists() {
        return skip_or_fail(&format!(
            "no static elfuse at {} (RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target x86_64-unknown-linux-gnu)",
            exe.display()
        ));
    }
    let out = elfuse_at(&exe, &["--binfmt", "install"]);
    assert_eq!(
        out.status,
        0,
        "install the static build\n{}",
        out.describe()
    );
    assert!(
        !out.stderr_str().contains("dynamically linked"),
        "the static build is static\n{}",
        out.describe()
    );
    let chroot = which("chroot").unwrap_or_else(|| PathBuf::from("/usr/sbin/chroot"));
    let mut cmd = Command::new(chroot);
    cmd.arg(&root).args([
        "/bin/sh",
        "-c",
        "uname -m; python3 -c 'import sys; print(1, sys.platform)'; echo $0 done",
    ]);
    cmd.env_clear().envs(GUEST_ENV.iter().copied());
    let res = run(cmd, b"");
    let out = elfuse_at(&exe, &["--binfmt", "uninstall"]);
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_eq!(
        (res.status, res.stdout_str()),
        (0, "aarch64\n1 linux\n/bin/sh done\n".to_string()),
        "chroot ROOTFS /bin/sh\n{}",
        res.describe()
    );
}
