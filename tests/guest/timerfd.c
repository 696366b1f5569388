/* timerfd: one-shot and periodic timers (overrun counts), absolute CLOCK_REALTIME,
 * gettime, non-blocking reads. No times are printed, only checked. */
#include "check.h"
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static struct itimerspec its(long long value_ns, long long interval_ns)
{
    struct itimerspec s = {
        .it_value = {value_ns / 1000000000, value_ns % 1000000000},
        .it_interval = {interval_ns / 1000000000, interval_ns % 1000000000},
    };
    return s;
}

int main(void)
{
    uint64_t n;
    struct itimerspec cur, old;

    /* One-shot, relative, CLOCK_MONOTONIC. */
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    CHECK(fd >= 0 && fcntl(fd, F_GETFD) == FD_CLOEXEC);
    CHECK(timerfd_gettime(fd, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);
    struct itimerspec s = its(50000000, 0);
    long long t0 = now_ns(CLOCK_MONOTONIC);
    CHECK(timerfd_settime(fd, 0, &s, NULL) == 0);
    CHECK(timerfd_gettime(fd, &cur) == 0 && cur.it_value.tv_sec == 0 &&
          cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 50000000);
    CHECK(read(fd, &n, sizeof n) == 8 && n == 1); /* blocks until it fires */
    CHECK(now_ns(CLOCK_MONOTONIC) - t0 >= 50000000);
    CHECK(timerfd_gettime(fd, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);
    CHECK_ERR(read(fd, &n, 4), EINVAL);
    close(fd);

    /* Periodic with overruns: 5 ms period, 60 ms later at least 10 expirations. */
    fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    CHECK(fd >= 0 && (fcntl(fd, F_GETFL) & O_NONBLOCK));
    CHECK_ERR(read(fd, &n, sizeof n), EAGAIN);
    s = its(5000000, 5000000);
    CHECK(timerfd_settime(fd, 0, &s, &old) == 0 && old.it_value.tv_nsec == 0);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    CHECK(poll(&p, 1, 1000) == 1 && (p.revents & POLLIN));
    usleep(60000);
    CHECK(read(fd, &n, sizeof n) == 8 && n >= 10);
    CHECK(timerfd_gettime(fd, &cur) == 0 && cur.it_interval.tv_sec == 0 &&
          cur.it_interval.tv_nsec == 5000000);
    s = its(0, 0); /* disarm */
    CHECK(timerfd_settime(fd, 0, &s, &old) == 0 && old.it_interval.tv_nsec == 5000000);
    usleep(12000);
    CHECK_ERR(read(fd, &n, sizeof n), EAGAIN);
    close(fd);

    /* Absolute CLOCK_REALTIME. */
    fd = timerfd_create(CLOCK_REALTIME, 0);
    CHECK(fd >= 0);
    long long target = now_ns(CLOCK_REALTIME) + 30000000;
    s = its(target, 0);
    CHECK(timerfd_settime(fd, TFD_TIMER_ABSTIME, &s, NULL) == 0);
    CHECK(read(fd, &n, sizeof n) == 8 && n == 1);
    CHECK(now_ns(CLOCK_REALTIME) >= target);
    /* An absolute time in the past fires at once. */
    s = its(target - 1000000000LL, 0);
    CHECK(timerfd_settime(fd, TFD_TIMER_ABSTIME, &s, NULL) == 0);
    CHECK(poll(&p, 0, 0) == 0);
    p.fd = fd;
    CHECK(poll(&p, 1, 1000) == 1);
    CHECK(read(fd, &n, sizeof n) == 8 && n == 1);
    close(fd);

    /* CLOCK_BOOTTIME works; bad clocks, flags and values are refused. */
    fd = timerfd_create(CLOCK_BOOTTIME, 0);
    CHECK(fd >= 0);
    s = its(1000000, 0);
    CHECK(timerfd_settime(fd, 0, &s, NULL) == 0);
    CHECK(read(fd, &n, sizeof n) == 8 && n == 1);
    s.it_value.tv_nsec = 1000000000;
    CHECK_ERR(timerfd_settime(fd, 0, &s, NULL), EINVAL);
    s = its(1000000, 0);
    CHECK_ERR(timerfd_settime(fd, 0x10, &s, NULL), EINVAL);
    close(fd);
    CHECK_ERR(timerfd_create(CLOCK_PROCESS_CPUTIME_ID, 0), EINVAL);
    CHECK_ERR(timerfd_create(CLOCK_MONOTONIC, 0x40), EINVAL);
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    CHECK_ERR(timerfd_gettime(pfd[0], &cur), EINVAL);
    CHECK_ERR(timerfd_gettime(99, &cur), EBADF);
    return report();
}
