//! Guest tests of SysV IPC and POSIX message queues (issue 13): shared memory mapped into
//! guest memory (attach addresses, SHM_RND/SHM_REMAP/SHM_RDONLY, shmdt of a partly
//! unmapped attachment, across fork and from a second program attaching by key),
//! semaphores (every semctl command, a handshake across fork, SEM_UNDO at exit, EINTR),
//! message queues (types, MSG_EXCEPT, MSG_NOERROR, MSG_COPY, EINTR), mq_* (a queue
//! across fork, mq_notify by signal and by thread); Linux native AIO.

#[macro_use]
mod common;

use common::*;

/// Compared with qemu-aarch64 byte for byte.
fn ipc(libc: Libc) {
    if let Some(out) = run_guest(libc, "ipc", &[], 0) {
        assert_checks_passed(&out);
    }
}

/// What qemu-user 7.2 gets wrong or cannot run (see tests/guest/ipc.c): elfuse only.
fn ipc_strict(libc: Libc) {
    if let Some(out) = run_elfuse_only(libc, "ipc", &[], &["strict"], 0) {
        assert_checks_passed(&out);
    }
}

/// The same on the spawn fork path (`ELFUSE_FORK=spawn`): the child maps the parent's
/// attachments again from their segment ids.
fn ipc_spawn(libc: Libc) {
    let Some(prog) = guest(libc, "ipc") else {
        return;
    };
    let out = run_spawn_fork(&prog, ["strict"]);
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_checks_passed(&out);
}

/// Linux native AIO (io_setup...io_destroy) on a file and a pipe, which qemu-user 7.2
/// answers with ENOSYS: elfuse only.
fn aio(libc: Libc) {
    let dir = TempDir::new();
    let d = dir.path().to_str().unwrap();
    if let Some(out) = run_elfuse_only(libc, "aio", &[], &[d], 0) {
        assert_checks_passed(&out);
    }
}

for_each_libc!(ipc, ipc_strict, ipc_spawn, aio);
