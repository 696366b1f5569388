//! Guest tests of SysV IPC and POSIX message queues (issue 13): shared memory mapped into
//! guest memory (attach addresses, SHM_RND/SHM_REMAP/SHM_RDONLY, shmdt of a partly
//! unmapped attachment, across fork and from a second program attaching by key),
//! semaphores (every semctl command, a handshake across fork, SEM_UNDO at exit, EINTR),
//! message queues (types, MSG_EXCEPT, MSG_NOERROR, MSG_COPY, EINTR), mq_* (a queue
//! across fork, mq_notify by signal and by thread); Linux native AIO.

#[macro_use]
mod common;

use common::rootfs::{rootfs, run_real, strings, text};
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

/// A real program: Debian's arm64 perl (its shmget/shmread/shmwrite, semget/semop and
/// msgget/msgsnd/msgrcv builtins) across fork, compared with qemu-aarch64.
const PERL_IPC: &str = r#"use strict;
my ($CREAT, $RMID) = (01000, 0);
my $id = shmget(0, 4096, 0600 | $CREAT) // die "shmget: $!";
shmwrite($id, "from perl", 0, 9) or die "shmwrite: $!";
my $sem = semget(0, 1, 0600 | $CREAT) // die "semget: $!";
my $q = msgget(0, 0600 | $CREAT) // die "msgget: $!";
my $pid = fork() // die "fork: $!";
if ($pid == 0) {
    my $buf;
    shmread($id, $buf, 0, 9) or die "shmread: $!";
    msgsnd($q, pack("l! a*", 7, "child read '$buf'"), 0) or die "msgsnd: $!";
    shmwrite($id, "child was here", 100, 14) or die "shmwrite: $!";
    semop($sem, pack("s!3", 0, 1, 0)) or die "semop: $!";
    exit 0;
}
semop($sem, pack("s!3", 0, -1, 0)) or die "semop: $!";
my $m;
msgrcv($q, $m, 100, 7, 0) or die "msgrcv: $!";
my ($type, $text) = unpack("l! a*", $m);
my $back;
shmread($id, $back, 100, 14) or die "shmread: $!";
waitpid($pid, 0);
print "$type $text; parent read '$back'; child status $?\n";
shmctl($id, $RMID, 0) or die; semctl($sem, 0, $RMID, 0) or die; msgctl($q, $RMID, 0) or die;
"#;

#[test]
fn perl_sysv_ipc_across_fork() {
    let Some(root) = rootfs() else { return };
    let out = text(run_real(
        &root,
        "/usr/bin/perl",
        &strings(&["-e", PERL_IPC]),
        b"",
        true,
    ));
    assert_eq!(
        out,
        "7 child read 'from perl'; parent read 'child was here'; child status 0\n"
    );
}

for_each_libc!(ipc, ipc_strict, ipc_spawn, aio);
