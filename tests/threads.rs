//! Threads at scale and thread ids (tests/guest/threads_scale.c), and clone/clone3
//! beyond pthread_create (tests/guest/clone_more.c), for glibc, glibc static-pie and
//! musl; compared with qemu-aarch64 where it is right (the output is yes/no checks only).
//! The memory test reads elfuse's own /proc/<pid>/status while the guest waits.

#[macro_use]
mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

/// The tests that create thousands of threads run one at a time: each costs elfuse
/// ~0.9 MiB per live thread, and together they would need tens of GiB.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

/// 2000 threads alive at once (blocked in a barrier), all joined, then 2000 more in
/// waves of 100.
fn threads_2000_concurrent(libc: Libc) {
    let _g = heavy();
    if let Some(out) = run_guest(libc, "threads_scale", &["many", "2000"], 0) {
        assert_checks_passed(&out);
    }
}

/// Threads with glibc's default 8 MiB stacks, alive at once and joined: ten thousand
/// with glibc (80 GiB of stacks: the guest address space and page-table pool hold them),
/// a thousand with the others. While they are up, a page made PROT_NONE faults on a
/// thread running guest code and on one blocked during the mprotect (the shootdown
/// reaches only running vCPUs; the blocked one flushes before it runs again).
fn threads_with_8mib_stacks(libc: Libc) {
    let n = if libc == Libc::Glibc { "10000" } else { "1000" };
    let _g = heavy();
    if let Some(out) = run_guest(libc, "threads_scale", &["big", n], 0) {
        assert_checks_passed(&out);
    }
}

/// Raw clone(2) threads created and exited one after another each get a new tid (Linux
/// allocates them cyclically; elfuse's are the host's), and CLONE_PARENT_SETTID,
/// CLONE_CHILD_SETTID and CLONE_CHILD_CLEARTID are written as on Linux.
fn raw_clone_tids_not_reused(libc: Libc) {
    if let Some(out) = run_guest(libc, "threads_scale", &["tids"], 0) {
        assert_checks_passed(&out);
    }
}

/// clone and clone3 beyond pthread_create (tests/guest/clone_more.c): a raw process
/// clone's CLONE_PARENT_SETTID/CHILD_SETTID, clone3's set_tid checks (EPERM without the
/// privilege), CLONE_PIDFD from clone and clone3, CLONE_INTO_CGROUP on a non-cgroup fd,
/// exit_signal with CLONE_THREAD. Under elfuse only: qemu-aarch64 7.2 writes the parent
/// tid into the child's memory and has no clone3.
fn clone_more_strict(libc: Libc) {
    if let Some(out) = run_elfuse_only(libc, "clone_more", &[], &["strict"], 0) {
        assert_checks_passed(&out);
    }
}

/// A thread's own fd table and fs context after unshare(CLONE_FILES / CLONE_FS)
/// (tests/guest/clone_own.c): compared with qemu-aarch64, whose host threads unshare on
/// the host, which is Linux's own answer.
fn clone_own_unshare(libc: Libc) {
    if let Some(out) = run_guest(libc, "clone_own", &[], 0) {
        assert_checks_passed(&out);
    }
}

/// Raw clone threads without CLONE_FILES or CLONE_FS, exit signals other than SIGCHLD
/// with __WCLONE/__WALL, clone3's CLONE_CLEAR_SIGHAND; with both fork paths (native and
/// spawned: the spawned child gets the forking thread's cwd and umask from the spawn,
/// which that thread makes).
/// Under elfuse only: qemu-aarch64 7.2 refuses such threads (EINVAL), gives every fork
/// child SIGCHLD as exit signal and has no clone3.
fn clone_own_strict(libc: Libc) {
    if let Some(out) = run_elfuse_only(libc, "clone_own", &[], &["strict"], 0) {
        assert_checks_passed(&out);
    }
    if let Some(prog) = guest(libc, "clone_own") {
        let out = run_spawn_fork(&prog, ["strict"]);
        assert_eq!(out.status, 0, "{}", out.describe());
        assert_checks_passed(&out);
    }
}

for_each_libc!(
    threads_2000_concurrent,
    threads_with_8mib_stacks,
    raw_clone_tids_not_reused,
    clone_more_strict,
    clone_own_unshare,
    clone_own_strict
);

/// (VmRSS in KiB, host threads) of a live process.
fn rss_and_threads(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in status"))
    };
    (field("VmRSS:"), field("Threads:"))
}

/// elfuse's own memory and host threads: measured before the guest creates 2000
/// threads, while they are all alive and idle, and after they are joined. An idle
/// thread costs well under 2 MiB (one emulated CPU each; ~0.9 MiB measured), and joining
/// gives back the memory and the host threads (a few vCPUs are kept for reuse).
#[test]
fn thread_memory_is_returned() {
    const N: u64 = 2000;
    let _g = heavy();
    let Some(prog) = guest(Libc::Glibc, "threads_scale") else {
        return;
    };
    let mut child = elfuse_command::<[&str; 0], _>([], &prog, ["pause", &N.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut at = |want: &str| {
        loop {
            let l = lines.next().expect("guest output").unwrap();
            assert!(!l.starts_with("FAIL"), "{l}");
            if l == want {
                break;
            }
        }
        // A joined thread's host thread ends just after the guest sees it gone: give
        // them a moment (up to 10 s) before measuring.
        let mut m = rss_and_threads(pid);
        for _ in 0..100 {
            if want != "joined" || m.1 <= 8 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            m = rss_and_threads(pid);
        }
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
        m
    };
    let (rss0, thr0) = at("start");
    let (rss1, thr1) = at("up");
    let (rss2, thr2) = at("joined");
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status} {rest:?}");
    assert!(
        rest.last().is_some_and(|l| l.starts_with("PASS")),
        "{rest:?}"
    );
    let per_thread = (rss1.saturating_sub(rss0)) / N;
    eprintln!(
        "elfuse VmRSS: start {rss0} KiB ({thr0} host threads), {N} threads up {rss1} KiB \
         ({thr1}; {per_thread} KiB each), joined {rss2} KiB ({thr2})"
    );
    assert!(
        thr1 >= thr0 + N,
        "{thr1} host threads for {N} guest threads"
    );
    assert!(per_thread < 2048, "{per_thread} KiB per idle thread");
    assert!(thr2 <= thr0 + 2, "host threads left: {thr2} (start {thr0})");
    assert!(
        rss2 < rss0 + 64 * 1024,
        "memory not returned: {rss2} KiB after join, {rss0} KiB at start"
    );
}
