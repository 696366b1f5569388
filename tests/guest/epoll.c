/* epoll: pipes, eventfd and timerfd; level and edge triggered; EPOLLONESHOT; a dup'ed
 * epoll fd; nested epoll; epoll_pwait2 timeouts; registration errors; close removes;
 * dup aliases of one description registered separately. */
#include "check.h"
#include <fcntl.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441
#endif

static int add(int ep, int fd, uint32_t events, uint64_t data)
{
    struct epoll_event e = {.events = events, .data.u64 = data};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

static int mod(int ep, int fd, uint32_t events, uint64_t data)
{
    struct epoll_event e = {.events = events, .data.u64 = data};
    return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
}

static long pwait2(int ep, struct epoll_event *ev, int n, long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
    return syscall(SYS_epoll_pwait2, ep, ev, n, &t, NULL, 8);
}

/* epoll_pwait2 (qemu-aarch64 7.2 lacks it, so the tests run this part apart). */
static int pwait2_checks(void)
{
    struct epoll_event ev[8];
    uint64_t one = 1;
    int ep = epoll_create1(0), efd = eventfd(0, EFD_NONBLOCK);
    CHECK(add(ep, efd, EPOLLIN, 6) == 0);
    CHECK(pwait2(ep, ev, 8, 20) == 0);
    CHECK(write(efd, &one, 8) == 8);
    CHECK(pwait2(ep, ev, 8, 1000) == 1 && ev[0].data.u64 == 6);
    CHECK(syscall(SYS_epoll_pwait2, ep, ev, 8, NULL, NULL, 8) == 1);
    struct timespec bad = {0, 1000000000};
    errno = 0;
    CHECK(syscall(SYS_epoll_pwait2, ep, ev, 8, &bad, NULL, 8) == -1 && errno == EINVAL);
    errno = 0;
    CHECK(syscall(SYS_epoll_pwait2, ep, ev, 8, NULL, &one, 4) == -1 && errno == EINVAL);
    return report();
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "pwait2") == 0)
        return pwait2_checks();
    struct epoll_event ev[8];
    char c;
    int p[2];

    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0 && fcntl(ep, F_GETFD) == FD_CLOEXEC);
    CHECK_ERR(epoll_create1(1), EINVAL);
    CHECK(pipe(p) == 0);

    /* Level triggered: reported while readable; data round-trips. */
    CHECK(add(ep, p[0], EPOLLIN, 0x1122334455667788ULL) == 0);
    CHECK(epoll_wait(ep, ev, 8, 0) == 0);
    CHECK(write(p[1], "ab", 2) == 2);
    CHECK(epoll_wait(ep, ev, 8, 1000) == 1 && ev[0].events == EPOLLIN &&
          ev[0].data.u64 == 0x1122334455667788ULL);
    CHECK(epoll_wait(ep, ev, 8, 0) == 1);
    /* A bad buffer is EFAULT when there is an event to store (Linux does not look at
     * it otherwise). */
    struct epoll_event *volatile nowhere = NULL;
    CHECK_ERR(epoll_wait(ep, nowhere, 1, 0), EFAULT);
    CHECK(read(p[0], &c, 1) == 1);
    CHECK(epoll_wait(ep, ev, 8, 0) == 1);
    CHECK(read(p[0], &c, 1) == 1);
    CHECK(epoll_wait(ep, ev, 8, 0) == 0);

    /* Registration errors. */
    CHECK_ERR(add(ep, p[0], EPOLLIN, 0), EEXIST);
    CHECK_ERR(add(ep, ep, EPOLLIN, 0), EINVAL);
    CHECK_ERR(add(ep, 99, EPOLLIN, 0), EBADF);
    CHECK_ERR(add(99, p[0], EPOLLIN, 0), EBADF);
    CHECK_ERR(add(p[1], p[0], EPOLLIN, 0), EINVAL);
    CHECK_ERR(mod(ep, p[1], EPOLLOUT, 0), ENOENT);
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL), ENOENT);
    CHECK_ERR(epoll_ctl(ep, 7, p[0], &ev[0]), EINVAL);
    CHECK_ERR(epoll_wait(ep, ev, 0, 0), EINVAL);
    int reg = open("/proc/self/exe", O_RDONLY);
    if (reg < 0)
        reg = open("/", O_RDONLY | O_DIRECTORY);
    CHECK_ERR(add(ep, reg, EPOLLIN, 0), EPERM);
    close(reg);

    /* Edge triggered: one report per new arrival. */
    CHECK(mod(ep, p[0], EPOLLIN | EPOLLET, 2) == 0);
    CHECK(write(p[1], "x", 1) == 1);
    CHECK(epoll_wait(ep, ev, 8, 1000) == 1 && ev[0].data.u64 == 2);
    CHECK(epoll_wait(ep, ev, 8, 0) == 0);
    CHECK(write(p[1], "y", 1) == 1);
    CHECK(epoll_wait(ep, ev, 8, 0) == 1);
    CHECK(epoll_wait(ep, ev, 8, 0) == 0);
    CHECK(read(p[0], &c, 1) == 1 && read(p[0], &c, 1) == 1);

    /* EPOLLONESHOT: disabled after one report until re-armed with MOD. */
    CHECK(mod(ep, p[0], EPOLLIN | EPOLLONESHOT, 3) == 0);
    CHECK(write(p[1], "z", 1) == 1);
    CHECK(epoll_wait(ep, ev, 8, 0) == 1 && ev[0].data.u64 == 3);
    CHECK(epoll_wait(ep, ev, 8, 0) == 0);
    CHECK(mod(ep, p[0], EPOLLIN | EPOLLONESHOT, 4) == 0);
    CHECK(epoll_wait(ep, ev, 8, 0) == 1 && ev[0].data.u64 == 4);
    CHECK(read(p[0], &c, 1) == 1);

    /* The write end: EPOLLOUT; EPOLLEXCLUSIVE is accepted on ADD, refused on MOD. */
    CHECK(add(ep, p[1], EPOLLOUT | EPOLLEXCLUSIVE, 5) == 0);
    CHECK_ERR(mod(ep, p[1], EPOLLOUT | EPOLLEXCLUSIVE, 5), EINVAL);
    CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL) == 0);
    CHECK(epoll_wait(ep, ev, 8, 0) == 1 && ev[0].events == EPOLLOUT && ev[0].data.u64 == 5);
    CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL) == 0);

    /* A registration lives as long as its open file description: closing one alias
     * keeps it, closing the last removes it. */
    int q[2];
    CHECK(pipe(q) == 0);
    CHECK(add(ep, q[0], EPOLLIN, 10) == 0);
    int qd = dup(q[0]);
    CHECK(close(q[0]) == 0);
    CHECK(write(q[1], "q", 1) == 1);
    CHECK(epoll_wait(ep, ev, 8, 0) == 1 && ev[0].data.u64 == 10);
    CHECK(close(qd) == 0);
    CHECK(epoll_wait(ep, ev, 8, 0) == 0);
    close(q[1]);

    /* Registrations are keyed by (description, fd number): two dup aliases of one
     * description are two registrations, each with its own data and lifetime. */
    int r[2];
    CHECK(pipe(r) == 0);
    int ra = dup(r[0]), rb = dup(r[0]);
    CHECK(add(ep, r[0], EPOLLIN, 20) == 0);
    CHECK(add(ep, ra, EPOLLIN, 21) == 0);
    CHECK_ERR(add(ep, ra, EPOLLIN, 21), EEXIST);
    CHECK_ERR(mod(ep, rb, EPOLLIN, 22), ENOENT);
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_DEL, rb, NULL), ENOENT);
    CHECK_ERR(epoll_ctl(ep, 7, rb, &ev[0]), EINVAL);
    CHECK(write(r[1], "r", 1) == 1);
    CHECK(epoll_wait(ep, ev, 8, 0) == 2);
    CHECK(ev[0].data.u64 + ev[1].data.u64 == 41);
    CHECK(mod(ep, ra, EPOLLIN, 23) == 0);
    CHECK(epoll_wait(ep, ev, 8, 0) == 2 && ev[0].data.u64 + ev[1].data.u64 == 43);
    CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, r[0], NULL) == 0);
    CHECK(epoll_wait(ep, ev, 8, 0) == 1 && ev[0].data.u64 == 23);
    /* Closing a registered alias leaves its registration while the description lives
     * (the fd number is gone, so it can no longer be deleted). */
    CHECK(close(ra) == 0);
    CHECK(epoll_wait(ep, ev, 8, 0) == 1 && ev[0].data.u64 == 23);
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_DEL, ra, NULL), EBADF);
    CHECK(read(rb, &c, 1) == 1);
    CHECK(epoll_wait(ep, ev, 8, 0) == 0);
    /* Aliases of the write end registered twice: closing them all still closes the
     * pipe (the reader sees EOF). */
    int wa = dup(r[1]);
    CHECK(add(ep, r[1], EPOLLOUT, 24) == 0 && add(ep, wa, EPOLLOUT, 25) == 0);
    CHECK(epoll_wait(ep, ev, 8, 0) == 2);
    CHECK(close(r[1]) == 0 && close(wa) == 0);
    CHECK(read(rb, &c, 1) == 0);
    CHECK(close(r[0]) == 0 && close(rb) == 0);
    CHECK(epoll_wait(ep, ev, 8, 0) == 0);

    /* A dup'ed epoll fd is the same instance. */
    int ep2 = dup(ep);
    CHECK(ep2 >= 0);
    int efd = eventfd(0, EFD_NONBLOCK);
    CHECK(add(ep2, efd, EPOLLIN, 6) == 0);
    CHECK_ERR(add(ep, efd, EPOLLIN, 6), EEXIST);
    uint64_t one = 1;
    CHECK(write(efd, &one, 8) == 8);
    CHECK(epoll_wait(ep, ev, 8, 0) == 1 && ev[0].data.u64 == 6);
    CHECK(close(ep2) == 0);
    CHECK(epoll_wait(ep, ev, 8, 0) == 1);
    CHECK(read(efd, &one, 8) == 8);
    CHECK(epoll_wait(ep, ev, 8, 0) == 0);

    /* A timerfd wakes epoll_wait. */
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct itimerspec its = {.it_value = {0, 10000000}};
    CHECK(add(ep, tfd, EPOLLIN, 7) == 0);
    CHECK(timerfd_settime(tfd, 0, &its, NULL) == 0);
    CHECK(epoll_wait(ep, ev, 8, 2000) == 1 && ev[0].data.u64 == 7);
    uint64_t ticks;
    CHECK(read(tfd, &ticks, 8) == 8 && ticks == 1);

    /* Nested: an epoll fd inside another reports EPOLLIN when its own set is ready. */
    int outer = epoll_create1(0);
    CHECK(add(outer, ep, EPOLLIN, 8) == 0);
    CHECK(epoll_wait(outer, ev, 8, 0) == 0);
    CHECK(write(efd, &one, 8) == 8);
    CHECK(epoll_wait(outer, ev, 8, 0) == 1 && ev[0].events == EPOLLIN && ev[0].data.u64 == 8);
    CHECK_ERR(add(ep, outer, EPOLLIN, 9), ELOOP);
    CHECK(read(efd, &one, 8) == 8);

    CHECK(epoll_pwait(ep, ev, 8, 0, NULL) == 0);
    return report();
}
