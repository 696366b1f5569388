/* clone and clone3 beyond pthread_create and fork(). Run under elfuse only ("strict"):
 * qemu-aarch64 7.2 writes a fork's CLONE_PARENT_SETTID into the child's copy of memory
 * instead of the parent's, and has no clone3 (ENOSYS).
 *   raw clone of a process with CLONE_PARENT_SETTID and CLONE_CHILD_SETTID (the
 *   parent's word and the child's copy); clone3:
 *                      set_tid's checks (EPERM without the privilege, as Linux; EEXIST
 *                      with it for a taken tid), CLONE_PIDFD from clone and clone3,
 *                      its EINVAL combinations, CLONE_INTO_CGROUP on a non-cgroup
 *                      directory (EBADF), exit_signal with CLONE_THREAD (EINVAL). */
#include "check.h"
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x1000
#endif
#define CLONE_INTO_CGROUP_ 0x200000000ULL

struct clone_args_ {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
        set_tid, set_tid_size, cgroup;
};

static long clone3_(struct clone_args_ *a)
{
    return syscall(435, a, sizeof *a);
}

static void settid_fork(void)
{
    static volatile int ptid = -1, ctid = -1;
    long pid = syscall(SYS_clone, SIGCHLD | CLONE_PARENT_SETTID | CLONE_CHILD_SETTID, 0,
                       &ptid, 0, &ctid);
    if (pid == 0)
        _exit(ctid == getpid() && ptid == -1 ? 0 : 1);
    CHECK(pid > 0);
    CHECK(ptid == pid);
    CHECK(ctid == -1); /* the child's copy was written, not ours */
    int st = -1;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void set_tid(void)
{
    struct clone_args_ a;
    pid_t tids[2] = {getpid(), 0};
    memset(&a, 0, sizeof a);
    a.flags = 0;
    a.exit_signal = SIGCHLD;
    a.set_tid = (uintptr_t)tids;
    a.set_tid_size = 33;
    CHECK_ERR(clone3_(&a), EINVAL);
    a.set_tid = 0;
    a.set_tid_size = 1;
    CHECK_ERR(clone3_(&a), EINVAL);
    a.set_tid = (uintptr_t)tids;
    a.set_tid_size = 0;
    CHECK_ERR(clone3_(&a), EINVAL);
    a.set_tid = 8;
    a.set_tid_size = 1;
    CHECK_ERR(clone3_(&a), EFAULT);
    a.set_tid = (uintptr_t)&tids[1]; /* tid 0 */
    CHECK_ERR(clone3_(&a), EINVAL);
    a.set_tid = (uintptr_t)tids; /* our own pid: taken */
    errno = 0;
    long r = clone3_(&a);
    CHECK(r == -1 && (errno == EPERM || errno == EEXIST));
    if (r == 0)
        _exit(9);
}

static void pidfd_child(long pid, int pidfd, int code)
{
    CHECK(pid > 0 && pidfd >= 0);
    CHECK((fcntl(pidfd, F_GETFD) & FD_CLOEXEC) != 0);
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    CHECK(poll(&p, 1, 10000) == 1 && (p.revents & POLLIN));
    int st = -1;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == code);
    CHECK(close(pidfd) == 0);
}

static void pidfds(void)
{
    struct clone_args_ a;
    int pidfd = -1;
    memset(&a, 0, sizeof a);
    a.flags = CLONE_PIDFD;
    a.pidfd = (uintptr_t)&pidfd;
    a.exit_signal = SIGCHLD;
    long pid = clone3_(&a);
    if (pid == 0)
        _exit(7);
    pidfd_child(pid, pidfd, 7);

    pidfd = -1;
    pid = syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, &pidfd, 0, 0);
    if (pid == 0)
        _exit(8);
    pidfd_child(pid, pidfd, 8);

    CHECK_ERR(syscall(SYS_clone, CLONE_PIDFD | CLONE_PARENT_SETTID | SIGCHLD, 0, &pidfd, 0, 0),
              EINVAL);
    a.flags = CLONE_PIDFD | CLONE_VM | CLONE_SIGHAND | CLONE_THREAD;
    a.exit_signal = 0;
    CHECK_ERR(clone3_(&a), EINVAL);
    a.flags = CLONE_PIDFD;
    a.exit_signal = SIGCHLD;
    a.pidfd = 8; /* unwritable: the clone fails before a child exists */
    CHECK_ERR(clone3_(&a), EFAULT);
}

static void misc3(void)
{
    struct clone_args_ a;
    memset(&a, 0, sizeof a);
    int dir = open("/", O_RDONLY | O_DIRECTORY);
    a.flags = CLONE_INTO_CGROUP_;
    a.exit_signal = SIGCHLD;
    a.cgroup = dir;
    CHECK_ERR(clone3_(&a), EBADF);
    close(dir);
    a.flags = CLONE_VM | CLONE_SIGHAND | CLONE_THREAD;
    a.cgroup = 0;
    a.exit_signal = SIGCHLD;
    CHECK_ERR(clone3_(&a), EINVAL);
    a.flags = CLONE_SIGHAND | 0x100000000ULL; /* CLONE_CLEAR_SIGHAND with CLONE_SIGHAND */
    CHECK_ERR(clone3_(&a), EINVAL);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "strict") != 0) {
        fprintf(stderr, "usage: clone_more strict\n");
        return 2;
    }
    settid_fork();
    set_tid();
    pidfds();
    misc3();
    return report();
}
