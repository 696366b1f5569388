//! Sockets: the guest programs tests/guest/sock_*.c (glibc, static-pie glibc and musl)
//! under elfuse and, where qemu-aarch64 7.2 follows Linux, compared with it byte for
//! byte; the `strict` parts (where qemu 7.2 differs from Linux) run under elfuse only.
//! Every server binds 127.0.0.1 or ::1, port 0, and ends with its guest.

#[macro_use]
mod common;

use common::*;

fn unix_sockets(libc: Libc) {
    if let Some(out) = run_guest(libc, "sock_unix", &[TMP], 0) {
        assert_checks_passed(&out);
    }
    let dir = TempDir::new();
    let path = dir.path().to_str().unwrap().to_owned();
    if let Some(out) = run_elfuse_only(libc, "sock_unix", &[], &[&path, "strict"], 0) {
        assert_checks_passed(&out);
    }
}

fn inet_sockets(libc: Libc) {
    if let Some(out) = run_guest(libc, "sock_inet", &[], 0) {
        assert_checks_passed(&out);
    }
    if let Some(out) = run_elfuse_only(libc, "sock_inet", &[], &["strict"], 0) {
        assert_checks_passed(&out);
    }
}

fn sockets_across_fork_and_threads(libc: Libc) {
    if let Some(out) = run_guest(libc, "sock_fork", &[], 0) {
        assert_checks_passed(&out);
    }
    let Some(prog) = guest(libc, "sock_fork") else {
        return;
    };
    let out = run_spawn_fork(&prog, [] as [&str; 0]);
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_checks_passed(&out);
}

/// `--trace=syscalls` prints socket calls as strace does; `--trace=actors` shows the
/// fd-table actor installing what SCM_RIGHTS brought in.
fn socket_traces(libc: Libc) {
    let Some(prog) = guest(libc, "sock_fork") else {
        return;
    };
    let (out, t) = run_traced("syscalls,actors", &prog, |_| ());
    assert_eq!(out.status, 0, "{}", out.describe());
    for want in [
        "socket(AF_INET, SOCK_STREAM, 0) = ",
        "bind(3, {sa_family=AF_INET, sin_port=htons(0), sin_addr=inet_addr(\"127.0.0.1\")}, 16) = 0",
        "socketpair(AF_UNIX, SOCK_STREAM, 0, ",
        "socketpair(AF_UNIX, SOCK_DGRAM, 0, ",
        "\"msg\":\"install_received\"",
    ] {
        assert!(t.contains(want), "no {want:?} in the trace:\n{t}");
    }
    let connect = t
        .lines()
        .find(|l| l.contains("] connect("))
        .unwrap_or_else(|| panic!("no connect in the trace:\n{t}"));
    assert!(
        connect.contains("{sa_family=AF_INET, sin_port=htons(")
            && connect.contains("sin_addr=inet_addr(\"127.0.0.1\")}, 16) = 0"),
        "{connect}"
    );
}

/// AF_UNIX names under `--sysroot`: a guest path inside the root is made there and
/// reported by its guest name; one whose directory exists only on the host is made on the
/// host (elfuse-only: qemu's -L does not apply to socket paths).
fn unix_socket_paths_under_sysroot(libc: Libc) {
    let root = TempDir::new();
    std::fs::create_dir(root.path().join("sockdir")).unwrap();
    let host = TempDir::new();
    let hostdir = host.path().to_str().unwrap().to_owned();
    let opts = [std::ffi::OsString::from("--sysroot"), root.path().into()];
    let Some(out) = run_elfuse_only(libc, "sock_sysroot", &opts, &["/sockdir", &hostdir], 0) else {
        return;
    };
    assert_checks_passed(&out);
    use std::os::unix::fs::FileTypeExt;
    for name in ["stream.sock", "a.sock", "b.sock"] {
        let inside = root.path().join("sockdir").join(name);
        let meta = std::fs::symlink_metadata(&inside).unwrap();
        assert!(
            meta.file_type().is_socket(),
            "{} is no socket",
            inside.display()
        );
        let meta = std::fs::symlink_metadata(host.path().join(name)).unwrap();
        assert!(meta.file_type().is_socket(), "{name} not made on the host");
    }
}

for_each_libc!(
    unix_socket_paths_under_sysroot,
    unix_sockets,
    inet_sockets,
    sockets_across_fork_and_threads,
    socket_traces,
);
