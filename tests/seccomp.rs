//! Guest tests of seccomp and the remaining administration calls (issue 13): strict mode,
//! classic-BPF filters and their actions, the calls the EL1 shim answers filtered, fork
//! and execve keeping filters, TSYNC; clocks, names, namespaces, protection keys, file
//! handles, NUMA, LSM and mount listing; openat2's RESOLVE_* and chroot in the path resolver. qemu-aarch64 7.2 has no seccomp and answers most
//! of the others with ENOSYS, so these run under elfuse only.

#[macro_use]
mod common;

use common::*;

fn seccomp(libc: Libc) {
    if let Some(out) = run_elfuse_only(libc, "seccomp", &[], &[], 0) {
        assert_checks_passed(&out);
    }
}

fn sysadm(libc: Libc) {
    let dir = TempDir::new();
    let d = dir.path().to_str().unwrap();
    if let Some(out) = run_elfuse_only(libc, "sysadm", &[], &[d], 0) {
        assert_checks_passed(&out);
    }
}

/// openat2 with every RESOLVE_* restriction, and chroot.
fn openat2(libc: Libc) {
    let dir = TempDir::new();
    let d = dir.path().to_str().unwrap();
    if let Some(out) = run_elfuse_only(libc, "openat2", &[], &[d], 0) {
        assert_checks_passed(&out);
    }
}

for_each_libc!(seccomp, sysadm, openat2);
