/* sched [strict]: times, priorities, CPU affinity (of the caller and of another thread
 * named by its tid), scheduling policies and parameters, I/O priorities, personality.
 * sched_getattr/setattr, kcmp. "strict" adds what qemu-user 7.2 does not implement (it
 * returns ENOSYS for set/get_robust_list, mlock2 and the NUMA policy calls): run under
 * elfuse only. The raw syscalls are used where musl's wrappers refuse (musl's
 * sched_setscheduler & co. always fail with ENOSYS). */
#include "check.h"
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/times.h>
#include <time.h>
#include <unistd.h>

#define BAD ((void *)8)

static volatile int other_tid, other_go, other_count;

static void *other(void *arg)
{
    (void)arg;
    other_tid = syscall(SYS_gettid);
    while (!other_go)
        sched_yield();
    cpu_set_t s;
    CPU_ZERO(&s);
    other_count = sched_getaffinity(0, sizeof s, &s) == 0 ? CPU_COUNT(&s) : -1;
    return NULL;
}

struct sched_attr_ {
    uint32_t size, sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime, sched_deadline, sched_period;
    uint32_t util_min, util_max;
};

static void attr_and_kcmp(void)
{
    /* sched_getattr / sched_setattr. */
    struct sched_attr_ a;
    memset(&a, 0xff, sizeof a);
    CHECK(syscall(SYS_sched_getattr, 0, &a, sizeof a, 0) == 0 && a.size == sizeof a &&
          a.sched_policy == SCHED_OTHER);
    CHECK_ERR(syscall(SYS_sched_getattr, 0, &a, 10, 0), EINVAL);
    CHECK_ERR(syscall(SYS_sched_getattr, 0, BAD, sizeof a, 0), EFAULT);
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.sched_policy = SCHED_BATCH;
    CHECK(syscall(SYS_sched_setattr, 0, &a, 0) == 0);
    CHECK(syscall(SYS_sched_getscheduler, 0) == SCHED_BATCH);
    a.sched_policy = SCHED_OTHER;
    CHECK(syscall(SYS_sched_setattr, 0, &a, 0) == 0);
    CHECK(syscall(SYS_sched_getscheduler, 0) == SCHED_OTHER);
    char big[128];
    memset(big, 0, sizeof big);
    memcpy(big, &a, sizeof a);
    ((struct sched_attr_ *)big)->size = sizeof big;
    big[100] = 1; /* a non-zero byte the kernel does not know: E2BIG, size written back */
    CHECK_ERR(syscall(SYS_sched_setattr, 0, big, 0), E2BIG);
    CHECK(((struct sched_attr_ *)big)->size == sizeof a);

    /* kcmp within the process. */
    int fd = open("/dev/null", O_RDONLY), fd2 = dup(fd), fd3 = open("/dev/null", O_RDONLY);
    pid_t me = getpid();
    CHECK(syscall(SYS_kcmp, me, me, 0 /* KCMP_FILE */, fd, fd2) == 0);
    long c = syscall(SYS_kcmp, me, me, 0, fd, fd3);
    CHECK(c == 1 || c == 2);
    CHECK(syscall(SYS_kcmp, me, me, 0, fd3, fd) == 3 - c);
    CHECK(syscall(SYS_kcmp, me, syscall(SYS_gettid), 1 /* KCMP_VM */, 0, 0) == 0);
    CHECK_ERR(syscall(SYS_kcmp, me, me, 0, fd, 999), EBADF);
    CHECK_ERR(syscall(SYS_kcmp, me, me, 99, 0, 0), EINVAL);
    close(fd), close(fd2), close(fd3);
}

static void strict_checks(void)
{
    /* Robust lists: the caller's own. */
    struct {
        void *next;
        long off;
        void *pending;
    } head = {&head, 0, NULL}, *got;
    size_t len;
    void *old;
    size_t oldlen;
    int have_old = syscall(SYS_get_robust_list, 0, &old, &oldlen) == 0;
    CHECK(syscall(SYS_set_robust_list, &head, sizeof head) == 0);
    CHECK(syscall(SYS_get_robust_list, 0, &got, &len) == 0 && got == (void *)&head &&
          len == sizeof head);
    CHECK(syscall(SYS_get_robust_list, syscall(SYS_gettid), &got, &len) == 0 &&
          got == (void *)&head);
    CHECK_ERR(syscall(SYS_get_robust_list, 0, BAD, &len), EFAULT);
    CHECK_ERR(syscall(SYS_get_robust_list, 0x3fffffff, &got, &len), ESRCH);
    if (have_old)
        syscall(SYS_set_robust_list, old, oldlen);

    /* mlock2. */
    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK(syscall(SYS_mlock2, p, 8192, 0) == 0);
    CHECK(syscall(SYS_mlock2, p, 4096, 1 /* MLOCK_ONFAULT */) == 0);
    CHECK_ERR(syscall(SYS_mlock2, p, 4096, 2), EINVAL);
    CHECK(munlock(p, 8192) == 0);

    /* NUMA policies, as a single-node machine answers. */
    int mode = -1;
    unsigned long mask = 0;
    CHECK(syscall(SYS_get_mempolicy, &mode, NULL, 0, NULL, 0) == 0 && mode == 0);
    mask = 1;
    CHECK(syscall(SYS_set_mempolicy, 2 /* MPOL_BIND */, &mask, 64) == 0);
    mask = 0;
    CHECK(syscall(SYS_get_mempolicy, &mode, &mask, 64, NULL, 0) == 0 && mode == 2 && mask == 1);
    CHECK(syscall(SYS_set_mempolicy, 0, NULL, 0) == 0);
    mask = 1ul << 40;
    CHECK_ERR(syscall(SYS_set_mempolicy, 2, &mask, 64), EINVAL);
    CHECK_ERR(syscall(SYS_set_mempolicy, 99, NULL, 0), EINVAL);
    mask = 1;
    CHECK(syscall(SYS_mbind, p, 4096, 2, &mask, 64, 0) == 0);
    mode = -1;
    CHECK(syscall(SYS_get_mempolicy, &mode, NULL, 0, p, 2 /* MPOL_F_ADDR */) == 0 && mode == 2);
    CHECK(syscall(SYS_get_mempolicy, &mode, NULL, 0, p + 4096, 2) == 0 && mode == 0);
    CHECK(munmap(p, 8192) == 0);
    CHECK_ERR(syscall(SYS_mbind, p, 4096, 2, &mask, 64, 0), EFAULT);
    CHECK_ERR(syscall(SYS_get_mempolicy, &mode, NULL, 0, p, 2), EFAULT);

}

int main(int argc, char **argv)
{
    int strict = argc > 1 && strcmp(argv[1], "strict") == 0;

    /* times: CPU ticks for the work done. */
    struct tms t0, t1;
    CHECK(times(&t0) != (clock_t)-1);
    clock_t start = clock();
    volatile unsigned long x = 0;
    while (clock() - start < CLOCKS_PER_SEC / 4)
        x++;
    CHECK(times(&t1) != (clock_t)-1);
    CHECK(t1.tms_utime + t1.tms_stime > t0.tms_utime + t0.tms_stime);
    CHECK(syscall(SYS_times, NULL) != -1);
    CHECK_ERR(syscall(SYS_times, BAD), EFAULT);

    /* Priorities: the kernel's answer is 20 - nice. */
    int nice0 = getpriority(PRIO_PROCESS, 0);
    CHECK(setpriority(PRIO_PROCESS, 0, nice0 + 2) == 0);
    CHECK(getpriority(PRIO_PROCESS, 0) == nice0 + 2);
    CHECK(syscall(SYS_getpriority, PRIO_PROCESS, 0) == 20 - (nice0 + 2));
    CHECK(setpriority(PRIO_PROCESS, 0, nice0) == 0 || errno == EACCES);
    CHECK_ERR(getpriority(99, 0), EINVAL);
    CHECK_ERR(setpriority(PRIO_PROCESS, 0x3fffffff, 0), ESRCH);

    /* Affinity: the caller's, then another thread's by tid. */
    pthread_t th;
    CHECK(pthread_create(&th, NULL, other, NULL) == 0);
    while (!other_tid)
        sched_yield();
    cpu_set_t all, one;
    CPU_ZERO(&all);
    CHECK(sched_getaffinity(0, sizeof all, &all) == 0 && CPU_COUNT(&all) >= 1);
    int first = 0;
    while (!CPU_ISSET(first, &all))
        first++;
    long n = syscall(SYS_sched_getaffinity, 0, sizeof all, &all);
    CHECK(n > 0 && n % 8 == 0);
    CHECK_ERR(syscall(SYS_sched_getaffinity, 0, 4, &all), EINVAL);
    CHECK_ERR(syscall(SYS_sched_getaffinity, 0, sizeof all, BAD), EFAULT);
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    CHECK(sched_setaffinity(0, sizeof one, &one) == 0);
    cpu_set_t now;
    CHECK(sched_getaffinity(0, sizeof now, &now) == 0 && CPU_COUNT(&now) == 1 &&
          CPU_ISSET(first, &now));
    unsigned cpu = 9999;
    CHECK(syscall(SYS_getcpu, &cpu, NULL, NULL) == 0 && cpu == (unsigned)first);
    CHECK(sched_setaffinity(0, sizeof all, &all) == 0);
    CHECK(sched_getaffinity(0, sizeof now, &now) == 0 && CPU_EQUAL(&now, &all));
    CHECK(sched_setaffinity(other_tid, sizeof one, &one) == 0);
    CHECK(sched_getaffinity(other_tid, sizeof now, &now) == 0 && CPU_COUNT(&now) == 1);
    other_go = 1;
    pthread_join(th, NULL);
    CHECK(other_count == 1);
    cpu_set_t none;
    CPU_ZERO(&none);
    CHECK_ERR(sched_setaffinity(0, sizeof none, &none), EINVAL);
    CHECK_ERR(syscall(SYS_sched_setaffinity, 0, sizeof one, BAD), EFAULT);
    CHECK_ERR(sched_setaffinity(0x3fffffff, sizeof one, &one), ESRCH);

    /* Policies and parameters (raw: musl's wrappers are ENOSYS by design). */
    struct sched_param sp = {0};
    CHECK(syscall(SYS_sched_getscheduler, 0) == SCHED_OTHER);
    CHECK(syscall(SYS_sched_getparam, 0, &sp) == 0 && sp.sched_priority == 0);
    CHECK(syscall(SYS_sched_setscheduler, 0, SCHED_BATCH, &sp) == 0);
    CHECK(syscall(SYS_sched_getscheduler, 0) == SCHED_BATCH);
    CHECK(syscall(SYS_sched_setparam, 0, &sp) == 0);
    CHECK(syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, &sp) == 0);
    sp.sched_priority = 5;
    CHECK_ERR(syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, &sp), EINVAL);
    CHECK_ERR(syscall(SYS_sched_setscheduler, 0, 99, &sp), EINVAL);
    CHECK_ERR(syscall(SYS_sched_getparam, 0, BAD), EFAULT);
    CHECK_ERR(syscall(SYS_sched_getscheduler, 0x3fffffff), ESRCH);
    CHECK(sched_get_priority_max(SCHED_FIFO) == 99 && sched_get_priority_min(SCHED_FIFO) == 1);
    CHECK(sched_get_priority_max(SCHED_OTHER) == 0 && sched_get_priority_min(SCHED_RR) == 1);
    CHECK_ERR(sched_get_priority_max(99), EINVAL);
    struct timespec ts = {-1, -1};
    CHECK(sched_rr_get_interval(0, &ts) == 0 && ts.tv_sec >= 0 && ts.tv_nsec >= 0);
    CHECK_ERR(syscall(SYS_sched_rr_get_interval, 0, BAD), EFAULT);

    /* I/O priorities: IOPRIO_WHO_PROCESS, class BE level 4. */
    int prio = (2 << 13) | 4;
    CHECK(syscall(SYS_ioprio_set, 1, 0, prio) == 0);
    CHECK(syscall(SYS_ioprio_get, 1, 0) == prio);
    CHECK_ERR(syscall(SYS_ioprio_get, 99, 0), EINVAL);
    CHECK_ERR(syscall(SYS_ioprio_set, 1, 0, (5 << 13)), EINVAL); /* no class 5 */

    /* personality: 0xffffffff asks; anything else replaces and returns the old one. */
    CHECK(personality(0xffffffff) == PER_LINUX);
    CHECK(personality(PER_LINUX | ADDR_NO_RANDOMIZE) == PER_LINUX);
    CHECK(personality(0xffffffff) == (PER_LINUX | ADDR_NO_RANDOMIZE));
    CHECK(personality(PER_LINUX) == (PER_LINUX | ADDR_NO_RANDOMIZE));
    CHECK(personality(0xffffffff) == PER_LINUX);

    attr_and_kcmp();
    if (strict)
        strict_checks();
    return report();
}
