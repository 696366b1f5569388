/* signalfd: blocked self-sent signals become readable as signalfd_siginfo records;
 * readiness for poll/epoll; mask updates; a pending signal is consumed by the read. */
#include "check.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <stdint.h>
#include <unistd.h>

static int readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static int is_pending(int sig)
{
    sigset_t s;
    sigpending(&s);
    return sigismember(&s, sig);
}

/* qemu-aarch64 7.2 ignores signalfd4's sizemask: the tests run this under elfuse only. */
static int strict_checks(void)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    CHECK_ERR(syscall(SYS_signalfd4, -1, &mask, 4, 0), EINVAL);
    CHECK_ERR(syscall(SYS_signalfd4, -1, &mask, 16, 0), EINVAL);
    CHECK(syscall(SYS_signalfd4, -1, &mask, 8, 0) >= 0);
    return report();
}

static volatile sig_atomic_t handled;
static void on_usr2(int sig) { handled += sig == SIGUSR2; }

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "strict") == 0)
        return strict_checks();
    struct signalfd_siginfo si;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    CHECK(sigprocmask(SIG_BLOCK, &mask, NULL) == 0);

    int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    CHECK(fd >= 0);
    CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC && (fcntl(fd, F_GETFL) & O_NONBLOCK));
    CHECK_ERR(read(fd, &si, sizeof si), EAGAIN);
    CHECK(!readable(fd));

    CHECK(kill(getpid(), SIGUSR1) == 0);
    CHECK(is_pending(SIGUSR1));
    CHECK(readable(fd));
    CHECK_ERR(read(fd, &si, sizeof si - 1), EINVAL);
    memset(&si, 0xff, sizeof si);
    CHECK(read(fd, &si, sizeof si) == sizeof si);
    CHECK(si.ssi_signo == SIGUSR1 && si.ssi_code == SI_USER);
    CHECK(si.ssi_pid == (uint32_t)getpid() && si.ssi_uid == getuid());
    CHECK(si.ssi_errno == 0 && si.ssi_fd == 0 && si.ssi_addr == 0);
    CHECK(!is_pending(SIGUSR1));
    CHECK(!readable(fd));
    CHECK_ERR(read(fd, &si, sizeof si), EAGAIN);

    /* A signal outside the mask is not reported; widening the mask (on the same fd)
     * makes an already pending one readable. */
    sigaddset(&mask, SIGUSR2);
    CHECK(sigprocmask(SIG_BLOCK, &mask, NULL) == 0);
    CHECK(kill(getpid(), SIGUSR2) == 0);
    CHECK(is_pending(SIGUSR2) && !readable(fd));
    CHECK(signalfd(fd, &mask, 0) == fd);
    CHECK(readable(fd));

    /* epoll sees it too; a dup alias reads it. Two pending signals in one read. */
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 42};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
    CHECK(epoll_wait(ep, &ev, 1, 0) == 1 && ev.data.u64 == 42);
    CHECK(kill(getpid(), SIGUSR1) == 0);
    int d = dup(fd);
    struct signalfd_siginfo two[3];
    CHECK(read(d, two, sizeof two) == 2 * sizeof si);
    CHECK(two[0].ssi_signo == SIGUSR1 && two[1].ssi_signo == SIGUSR2);
    CHECK(two[1].ssi_code == SI_USER);
    CHECK(epoll_wait(ep, &ev, 1, 0) == 0);
    CHECK(!is_pending(SIGUSR1) && !is_pending(SIGUSR2));

    /* Signals pending before the signalfd exists are readable through it. */
    CHECK(raise(SIGUSR1) == 0);
    int fd2 = signalfd(-1, &mask, 0);
    CHECK(fd2 >= 0 && fcntl(fd2, F_GETFD) == 0 && !(fcntl(fd2, F_GETFL) & O_NONBLOCK));
    CHECK(readable(fd2) && readable(fd));
    CHECK(read(fd2, &si, sizeof si) == sizeof si && si.ssi_signo == SIGUSR1);
    CHECK(si.ssi_code == SI_TKILL);
    CHECK(!readable(fd));

    /* A signal in the mask that is not blocked goes to its handler, not to the fd. */
    CHECK(signal(SIGUSR2, on_usr2) != SIG_ERR);
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    CHECK(sigprocmask(SIG_UNBLOCK, &usr2, NULL) == 0);
    CHECK(kill(getpid(), SIGUSR2) == 0);
    CHECK(handled == 1);
    CHECK(!readable(fd) && !is_pending(SIGUSR2));
    CHECK_ERR(read(fd, &si, sizeof si), EAGAIN);

    /* No write; readv lays records across iovecs (the second straddles them). */
    uint64_t one = 1;
    CHECK_ERR(write(fd, &one, 8), EINVAL);
    CHECK(!readable(fd));
    sigaddset(&usr2, SIGUSR1);
    CHECK(sigprocmask(SIG_BLOCK, &usr2, NULL) == 0);
    CHECK(kill(getpid(), SIGUSR1) == 0 && kill(getpid(), SIGUSR2) == 0);
    char *b = (char *)two;
    struct iovec iov[2] = {{b, 200}, {b + 200, 56}};
    CHECK(readv(fd, iov, 2) == 256);
    CHECK(two[0].ssi_signo == SIGUSR1 && two[1].ssi_signo == SIGUSR2);
    struct iovec small = {b, 100};
    CHECK_ERR(readv(fd, &small, 1), EINVAL);
    CHECK_ERR(readv(fd, iov, 2), EAGAIN);

    /* Errors. */
    CHECK_ERR(signalfd(-1, &mask, 0x4), EINVAL);
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK_ERR(signalfd(p[0], &mask, 0), EINVAL);
    CHECK_ERR(signalfd(99, &mask, 0), EBADF);
    return report();
}
