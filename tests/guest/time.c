/* Clocks and sleeping. Prints no times, only whether they are sane. */
#include "check.h"
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double now(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
    struct timespec ts, res;
    CHECK(clock_gettime(CLOCK_REALTIME, &ts) == 0);
    CHECK(ts.tv_sec > 1600000000 && ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000);
    struct timeval tv;
    CHECK(gettimeofday(&tv, NULL) == 0);
    CHECK(tv.tv_sec - ts.tv_sec >= 0 && tv.tv_sec - ts.tv_sec <= 2 && tv.tv_usec < 1000000);
    time_t t = time(NULL);
    CHECK(t - ts.tv_sec >= 0 && t - ts.tv_sec <= 2);

    /* The monotonic clock never goes backwards. */
    struct timespec prev, cur;
    clock_gettime(CLOCK_MONOTONIC, &prev);
    int mono = 1;
    for (int i = 0; i < 100000; i++) {
        clock_gettime(CLOCK_MONOTONIC, &cur);
        if (cur.tv_sec < prev.tv_sec || (cur.tv_sec == prev.tv_sec && cur.tv_nsec < prev.tv_nsec))
            mono = 0;
        prev = cur;
    }
    CHECK(mono);

    const clockid_t clocks[] = {CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE,
                                CLOCK_BOOTTIME, CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID};
    int others = 1;
    for (unsigned i = 0; i < sizeof clocks / sizeof *clocks; i++)
        others &= clock_gettime(clocks[i], &ts) == 0 && ts.tv_sec >= 0;
    CHECK(others);
    CHECK(clock_getres(CLOCK_MONOTONIC, &res) == 0 && res.tv_sec == 0 && res.tv_nsec > 0 && res.tv_nsec <= 1000000);
    CHECK_ERR(clock_gettime((clockid_t)12345, &ts), EINVAL);

    /* Sleeps last at least as long as asked (and not absurdly longer). */
    double t0 = now(CLOCK_MONOTONIC);
    struct timespec ten_ms = {0, 10 * 1000 * 1000};
    CHECK(nanosleep(&ten_ms, NULL) == 0);
    double slept = now(CLOCK_MONOTONIC) - t0;
    CHECK(slept >= 0.010 && slept < 5.0);
    t0 = now(CLOCK_MONOTONIC);
    CHECK(clock_nanosleep(CLOCK_MONOTONIC, 0, &ten_ms, NULL) == 0);
    slept = now(CLOCK_MONOTONIC) - t0;
    CHECK(slept >= 0.010 && slept < 5.0);
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_nsec += 20 * 1000 * 1000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    CHECK(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) == 0);
    clock_gettime(CLOCK_MONOTONIC, &cur);
    CHECK(cur.tv_sec > deadline.tv_sec || (cur.tv_sec == deadline.tv_sec && cur.tv_nsec >= deadline.tv_nsec));
    struct timespec bad = {0, 1000000000};
    CHECK_ERR(nanosleep(&bad, NULL), EINVAL);
    CHECK(usleep(1000) == 0);

    /* CPU time advances when spinning. */
    double c0 = now(CLOCK_PROCESS_CPUTIME_ID);
    volatile unsigned long x = 0;
    while (now(CLOCK_PROCESS_CPUTIME_ID) - c0 < 0.002)
        x++;
    CHECK(x > 0);
    return report();
}
