/* fork_fds DIR: the fds Linux creates for its own objects survive fork with the
 * state Linux shares (one eventfd counter, one epoll interest list, one timerfd, one
 * inotify queue, a pidfd), and a signalfd in the child reports the child's own pending
 * signals, not the parent's. */
#include "check.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs `body` in a child; returns its exit status (0 = all the child's checks held). */
static int in_child(int (*body)(void *), void *arg)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(body(arg));
    int st = -1;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

static int readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static int eventfd_child(void *a)
{
    int fd = *(int *)a;
    uint64_t v = 0;
    if (read(fd, &v, 8) != 8 || v != 3)
        return 1;
    v = 5;
    return write(fd, &v, 8) == 8 ? 0 : 2;
}

static int epoll_child(void *a)
{
    int *f = a; /* epfd, pipe read end, pipe write end */
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 42};
    if (epoll_ctl(f[0], EPOLL_CTL_ADD, f[1], &ev) != 0)
        return 1;
    return write(f[2], "x", 1) == 1 ? 0 : 2;
}

static int timerfd_child(void *a)
{
    int fd = *(int *)a;
    uint64_t n = 0;
    /* Blocks until the parent's timer expires. */
    return read(fd, &n, 8) == 8 && n >= 1 ? 0 : 1;
}

static int inotify_child(void *a)
{
    const char *dir = a;
    char path[4096];
    snprintf(path, sizeof path, "%s/made-by-child", dir);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    return fd >= 0 && close(fd) == 0 ? 0 : 1;
}

static int pidfd_child(void *a)
{
    int fd = *(int *)a;
    /* The inherited pidfd still refers to the parent, which is alive: not readable. */
    return fcntl(fd, F_GETFD) >= 0 && !readable(fd) ? 0 : 1;
}

static int signalfd_child(void *a)
{
    int fd = *(int *)a;
    /* The parent's pending SIGUSR1 is not the child's (pending sets are not inherited). */
    if (readable(fd))
        return 1;
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof si) != -1 || errno != EAGAIN)
        return 2;
    kill(getpid(), SIGUSR2);
    if (!readable(fd))
        return 3;
    if (read(fd, &si, sizeof si) != sizeof si)
        return 4;
    if (si.ssi_signo != SIGUSR2 || (pid_t)si.ssi_pid != getpid())
        return 5;
    return readable(fd) ? 6 : 0;
}

int main(int argc, char **argv)
{
    printf("fork_fds\n");
    const char *dir = argc > 1 ? argv[1] : "/tmp";

    int efd = eventfd(3, 0);
    CHECK(efd >= 0);
    CHECK(in_child(eventfd_child, &efd) == 0);
    uint64_t v = 0;
    CHECK(read(efd, &v, 8) == 8 && v == 5); /* the child's write, same counter */

    int p[2];
    CHECK(pipe(p) == 0);
    int ep[3] = {epoll_create1(0), p[0], p[1]};
    CHECK(ep[0] >= 0);
    CHECK(in_child(epoll_child, ep) == 0);
    struct epoll_event ev;
    /* The child's EPOLL_CTL_ADD is in our (the same) interest list. */
    CHECK(epoll_wait(ep[0], &ev, 1, 1000) == 1 && ev.data.u64 == 42);

    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    CHECK(tfd >= 0);
    struct itimerspec its = {.it_value = {.tv_nsec = 20 * 1000 * 1000}};
    CHECK(timerfd_settime(tfd, 0, &its, NULL) == 0);
    int flags = fcntl(tfd, F_GETFL);
    CHECK(fcntl(tfd, F_SETFL, flags & ~O_NONBLOCK) == 0); /* shared status flags */
    CHECK(in_child(timerfd_child, &tfd) == 0);
    CHECK(fcntl(tfd, F_SETFL, flags) == 0);
    CHECK_ERR(read(tfd, &v, 8), EAGAIN); /* the child consumed the expiration */

    int ifd = inotify_init1(IN_NONBLOCK);
    CHECK(ifd >= 0);
    CHECK(inotify_add_watch(ifd, dir, IN_CREATE) >= 0);
    CHECK(in_child(inotify_child, (void *)dir) == 0);
    char buf[4096] __attribute__((aligned(8)));
    ssize_t n = read(ifd, buf, sizeof buf);
    const struct inotify_event *ie = (const void *)buf;
    CHECK(n > 0 && (ie->mask & IN_CREATE) && strcmp(ie->name, "made-by-child") == 0);

    int pfd = syscall(SYS_pidfd_open, getpid(), 0);
    CHECK(pfd >= 0);
    CHECK(in_child(pidfd_child, &pfd) == 0);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    CHECK(sigprocmask(SIG_BLOCK, &set, NULL) == 0);
    int sfd = signalfd(-1, &set, SFD_NONBLOCK);
    CHECK(sfd >= 0);
    CHECK(kill(getpid(), SIGUSR1) == 0);
    CHECK(readable(sfd));
    CHECK(in_child(signalfd_child, &sfd) == 0);
    struct signalfd_siginfo si;
    CHECK(read(sfd, &si, sizeof si) == sizeof si);
    CHECK(si.ssi_signo == SIGUSR1 && (pid_t)si.ssi_pid == getpid());
    CHECK(!readable(sfd));
    /* A dup'ed signalfd in a child is still one description: both numbers work. */
    int sfd2 = dup(sfd);
    CHECK(sfd2 >= 0);
    CHECK(in_child(signalfd_child, &sfd2) == 0);
    return report();
}
