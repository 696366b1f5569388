/* Hot calls: ns per call of cheap syscalls and vDSO calls, one "name ns" line each.
 * Usage: hotcalls [SCALE [cpu]]  (iterations are multiplied by SCALE, default 1; with
 * "cpu" the time is the process's CPU time, CLOCK_PROCESS_CPUTIME_ID, instead of
 * CLOCK_MONOTONIC: on a loaded machine it leaves out the time spent waiting for a core). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static clockid_t bench_clock = CLOCK_MONOTONIC;

static double now(void)
{
    struct timespec t;
    clock_gettime(bench_clock, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

#define BENCH(name, n, body)                                                      \
    do {                                                                          \
        long n_ = (long)(n) * scale;                                              \
        double t0_ = now();                                                       \
        for (long i_ = 0; i_ < n_; i_++) {                                        \
            body;                                                                 \
        }                                                                         \
        printf("%s %.1f\n", name, (now() - t0_) / n_);                            \
    } while (0)

int main(int argc, char **argv)
{
    long scale = argc > 1 ? atol(argv[1]) : 1;
    if (scale < 1)
        scale = 1;
    if (argc > 2 && strcmp(argv[2], "cpu") == 0)
        bench_clock = CLOCK_PROCESS_CPUTIME_ID;
    int ur = open("/dev/urandom", O_RDONLY);
    if (ur < 0) {
        perror("open /dev/urandom");
        return 1;
    }
    static char buf[256];
    struct timespec ts;
    struct timeval tv;
    struct stat st;

    BENCH("syscall(SYS_getpid)", 50000, syscall(SYS_getpid));
    BENCH("getppid()", 50000, getppid());
    BENCH("syscall(SYS_gettid)", 50000, syscall(SYS_gettid));
    BENCH("clock_gettime(MONOTONIC)", 200000, clock_gettime(CLOCK_MONOTONIC, &ts));
    BENCH("clock_gettime(REALTIME)", 200000, clock_gettime(CLOCK_REALTIME, &ts));
    BENCH("gettimeofday", 200000, gettimeofday(&tv, NULL));
    BENCH("read(urandom, 1)", 20000, (void)!read(ur, buf, 1));
    BENCH("read(urandom, 256)", 20000, (void)!read(ur, buf, 256));
    BENCH("getrandom(1)", 20000, (void)!getrandom(buf, 1, 0));
    BENCH("fstat", 20000, fstat(ur, &st));
    BENCH("empty loop", 5000000, __asm__ volatile(""));
    return 0;
}
