//! Guest tests of the Linux surface beyond the spine (issue 13): extended attributes,
//! identity, scheduling and process queries, the newer file calls. Each runs under
//! elfuse and, where qemu-aarch64 7.2 is right, is compared with it byte for byte.

#[macro_use]
mod common;

use common::*;

fn xattr(libc: Libc) {
    if let Some(out) = run_guest(libc, "xattr", &[TMP], 0) {
        assert_checks_passed(&out);
    }
}

/// setresuid & co. dropping and regaining identity, seen by two threads; needs root for
/// the interesting half (the tests run as root), else checks the refusals.
/// Also on the spawn fork path, whose child is started by the forking thread and so has
/// its credentials (it once had the fork-IPC actor thread's: root after a setresuid).
fn cred(libc: Libc) {
    if let Some(out) = run_guest(libc, "cred", &[TMP], 0) {
        assert_checks_passed(&out);
        let dir = TempDir::new();
        let out = run_spawn_fork(&guest(libc, "cred").unwrap(), [dir.path()]);
        assert_checks_passed(&out);
    }
}

/// The size checks qemu-user 7.2 gets wrong (it locks the whole guest buffer before
/// Linux's E2BIG/size cap apply): elfuse only.
fn xattr_strict(libc: Libc) {
    let dir = TempDir::new();
    let d = dir.path().to_str().unwrap();
    if let Some(out) = run_elfuse_only(libc, "xattr", &[], &[d, "strict"], 0) {
        assert_checks_passed(&out);
    }
}

/// Scheduling and process queries, compared with qemu-aarch64.
fn sched(libc: Libc) {
    if let Some(out) = run_guest(libc, "sched", &[], 0) {
        assert_checks_passed(&out);
    }
}

/// What qemu-user 7.2 answers with ENOSYS (robust lists, mlock2, NUMA policies): elfuse
/// only.
fn sched_strict(libc: Libc) {
    if let Some(out) = run_elfuse_only(libc, "sched", &[], &["strict"], 0) {
        assert_checks_passed(&out);
    }
}

/// memfd (seals, a shared mapping across fork), copy_file_range, splice, tee, vmsplice,
/// syncing, O_TMPFILE; compared with qemu-aarch64.
fn files(libc: Libc) {
    if let Some(out) = run_guest(libc, "files", &[TMP], 0) {
        assert_checks_passed(&out);
    }
}

/// preadv2/pwritev2 and fchmodat2, which qemu-user 7.2 answers with ENOSYS: elfuse only.
fn files_strict(libc: Libc) {
    let dir = TempDir::new();
    let d = dir.path().to_str().unwrap();
    if let Some(out) = run_elfuse_only(libc, "files", &[], &[d, "strict"], 0) {
        assert_checks_passed(&out);
    }
}

/// prctl options: DUMPABLE, PDEATHSIG delivered, NO_NEW_PRIVS, KEEPCAPS, CAPBSET_READ,
/// TIMERSLACK; compared with qemu-aarch64.
fn prctl(libc: Libc) {
    if let Some(out) = run_guest(libc, "prctl", &[], 0) {
        assert_checks_passed(&out);
    }
}

/// CHILD_SUBREAPER (an orphaned grandchild reparented to us), THP_DISABLE, GET_SECCOMP,
/// which qemu-user 7.2 refuses with EINVAL: elfuse only.
fn prctl_strict(libc: Libc) {
    if let Some(out) = run_elfuse_only(libc, "prctl", &[], &["strict"], 0) {
        assert_checks_passed(&out);
    }
}

/// kill(0) and kill(-pgid) reach every process of the group, the caller included.
fn killgrp(libc: Libc) {
    if let Some(out) = run_guest(libc, "killgrp", &[], 0) {
        assert_checks_passed(&out);
    }
}

for_each_libc!(
    xattr,
    xattr_strict,
    cred,
    sched,
    sched_strict,
    files,
    files_strict,
    prctl,
    prctl_strict,
    killgrp,
);
