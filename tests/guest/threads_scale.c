/* Threads at scale and thread ids.
 *   threads_scale many N   N threads alive at once (each blocked in a barrier), then
 *                          joined; then N more created and joined in waves of 100.
 *   threads_scale big N    N threads with 8 MiB stacks (glibc's default under the usual
 *                          8 MiB RLIMIT_STACK; set explicitly, musl's default is 128 KiB)
 *                          alive at once, each having touched its stack; while they are
 *                          up, a page made PROT_NONE faults on a thread running guest code
 *                          and on one that was blocked during the mprotect (each had read
 *                          it before), as Linux guarantees once mprotect returns.
 *   threads_scale pause N  the same N, stopping at "up" and "joined" (one line each on
 *                          stdout) until a line arrives on stdin: the harness measures
 *                          elfuse's own memory and host threads there.
 *   threads_scale tids     raw clone(2) threads (CLONE_PARENT_SETTID, CHILD_SETTID,
 *                          CHILD_CLEARTID) created and exited one after another: every
 *                          tid is new (Linux allocates them cyclically), the tid pointers
 *                          are written and cleared as Linux does. */
#include "check.h"
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_barrier_t up, rel;

static void *worker(void *arg)
{
    pthread_barrier_wait(&up);
    pthread_barrier_wait(&rel);
    return arg;
}

static void *quick(void *arg)
{
    return arg;
}

static void wait_line(void)
{
    char buf[16];
    fflush(stdout);
    if (read(0, buf, sizeof buf) < 0)
        exit(3);
}

static int many(int n, int pause)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_barrier_init(&up, NULL, n + 1);
    pthread_barrier_init(&rel, NULL, n + 1);
    pthread_t *t = calloc(n, sizeof *t);
    if (pause) {
        printf("start\n");
        wait_line();
    }
    int created = 0;
    for (long i = 0; i < n; i++) {
        if (pthread_create(&t[i], &attr, worker, (void *)(i + 1)) != 0)
            break;
        created++;
    }
    CHECK(created == n);
    if (created != n)
        return report(); /* the barrier would never open */
    pthread_barrier_wait(&up);
    if (pause) {
        printf("up\n");
        wait_line();
    }
    pthread_barrier_wait(&rel);
    int joined = 1;
    for (long i = 0; i < n; i++) {
        void *v = NULL;
        joined &= pthread_join(t[i], &v) == 0 && v == (void *)(i + 1);
    }
    CHECK(joined);
    if (pause) {
        printf("joined\n");
        wait_line();
        return report();
    }
    int waves = 1;
    for (int w = 0; w < n / 100; w++) {
        pthread_t q[100];
        int made = 0;
        for (long i = 0; i < 100; i++)
            made += pthread_create(&q[i], &attr, quick, (void *)i) == 0;
        waves &= made == 100;
        for (long i = 0; i < made; i++) {
            void *v = NULL;
            waves &= pthread_join(q[i], &v) == 0 && v == (void *)i;
        }
    }
    CHECK(waves);
    free(t);
    return report();
}

static char *guarded;      /* the page the shootdown check takes away */
static volatile int after; /* set once mprotect(PROT_NONE) has returned */
static volatile int spinning;
static volatile int spin_result, sleep_result; /* 1: faulted (right), 2: read it */
static __thread sigjmp_buf segv_jmp;
static pthread_barrier_t sleep_bar;

static void on_segv(int sig)
{
    (void)sig;
    siglongjmp(segv_jmp, 1);
}

static void *big_worker(void *arg)
{
    volatile char top[256];
    top[0] = 1;
    pthread_barrier_wait(&up);
    pthread_barrier_wait(&rel);
    return top[0] == 1 ? arg : NULL;
}

/* Reads the page in a loop (in guest code, its TLB holding the page) until it faults;
 * a read that succeeds after it saw `after` set means a stale translation. */
static void *spinner(void *arg)
{
    if (sigsetjmp(segv_jmp, 1)) {
        spin_result = 1;
        return arg;
    }
    for (;;) {
        int f = after;
        (void)*(volatile char *)guarded;
        spinning = 1;
        if (f) {
            spin_result = 2;
            return arg;
        }
    }
}

/* Reads the page, blocks across the mprotect, reads it again: must fault. */
static void *sleeper(void *arg)
{
    (void)*(volatile char *)guarded;
    pthread_barrier_wait(&sleep_bar);
    pthread_barrier_wait(&sleep_bar);
    if (sigsetjmp(segv_jmp, 1)) {
        sleep_result = 1;
        return arg;
    }
    (void)*(volatile char *)guarded;
    sleep_result = 2;
    return arg;
}

static int big(int n)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_segv;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
    guarded = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(guarded != MAP_FAILED);
    guarded[0] = 1;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 8 << 20);
    pthread_barrier_init(&up, NULL, n + 1);
    pthread_barrier_init(&rel, NULL, n + 1);
    pthread_barrier_init(&sleep_bar, NULL, 2);
    pthread_t *t = calloc(n, sizeof *t);
    int created = 0;
    for (long i = 0; i < n; i++) {
        if (pthread_create(&t[i], &attr, big_worker, (void *)(i + 1)) != 0)
            break;
        created++;
    }
    CHECK(created == n);
    if (created != n)
        return report(); /* the barrier would never open */
    pthread_barrier_wait(&up);
    pthread_t sp, sl;
    CHECK(pthread_create(&sl, NULL, sleeper, NULL) == 0);
    pthread_barrier_wait(&sleep_bar); /* the sleeper has read the page */
    CHECK(pthread_create(&sp, NULL, spinner, NULL) == 0);
    while (!spinning)
        sched_yield();
    CHECK(mprotect(guarded, 4096, PROT_NONE) == 0);
    after = 1;
    pthread_barrier_wait(&sleep_bar);
    CHECK(pthread_join(sp, NULL) == 0 && pthread_join(sl, NULL) == 0);
    CHECK(spin_result == 1);
    CHECK(sleep_result == 1);
    pthread_barrier_wait(&rel);
    int joined = 1;
    for (long i = 0; i < n; i++) {
        void *v = NULL;
        joined &= pthread_join(t[i], &v) == 0 && v == (void *)(i + 1);
    }
    CHECK(joined);
    free(t);
    return report();
}

/* clone(flags, stack, ptid, tls, ctid) whose child exits at once (raw exit, no stack
 * use): the parent gets the child's tid. */
static long raw_thread(unsigned long flags, void *stack, int *ptid, int *ctid)
{
    register long x8 __asm__("x8") = SYS_clone;
    register long x0 __asm__("x0") = (long)flags;
    register long x1 __asm__("x1") = (long)stack;
    register long x2 __asm__("x2") = (long)ptid;
    register long x3 __asm__("x3") = 0;
    register long x4 __asm__("x4") = (long)ctid;
    __asm__ volatile("svc #0\n"
                     "cbnz x0, 1f\n"
                     "mov x0, #0\n"
                     "mov x8, #93\n" /* exit */
                     "svc #0\n"
                     "1:\n"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4)
                     : "memory", "cc");
    return x0;
}

#define ROUNDS 200
#define FUTEX_WAIT_ 0

static int tids(void)
{
    const unsigned long flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
                                CLONE_THREAD | CLONE_SYSVSEM | CLONE_PARENT_SETTID |
                                CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID;
    char *stack = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(stack != MAP_FAILED);
    static long seen[ROUNDS];
    int made = 1, settid = 1, cleared = 1, fresh = 1, not_ours = 1;
    long me = syscall(SYS_gettid);
    for (int i = 0; i < ROUNDS; i++) {
        static volatile int ptid, ctid;
        ptid = -1;
        ctid = -1;
        long tid = raw_thread(flags, stack + 65536, (int *)&ptid, (int *)&ctid);
        if (tid <= 0) {
            made = 0;
            break;
        }
        settid &= ptid == tid;
        /* CHILD_SETTID wrote tid, CHILD_CLEARTID writes 0 and wakes us at the exit. */
        for (int v; (v = ctid) != 0;) {
            if (v != -1 && v != tid)
                settid = 0;
            syscall(SYS_futex, &ctid, FUTEX_WAIT_, v, NULL, NULL, 0);
        }
        cleared &= ctid == 0;
        not_ours &= tid != me && tid != getpid();
        for (int j = 0; j < i; j++)
            fresh &= seen[j] != tid;
        seen[i] = tid;
    }
    CHECK(made);
    CHECK(settid);
    CHECK(cleared);
    CHECK(not_ours);
    CHECK(fresh);
    /* A pthread's tid is new too (not one of the raw threads'). */
    pthread_t t;
    static volatile long ptid_seen;
    CHECK(pthread_create(&t, NULL, quick, NULL) == 0 && pthread_join(t, NULL) == 0);
    (void)ptid_seen;
    return report();
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "many") == 0)
        return many(atoi(argv[2]), 0);
    if (argc >= 3 && strcmp(argv[1], "pause") == 0)
        return many(atoi(argv[2]), 1);
    if (argc >= 3 && strcmp(argv[1], "big") == 0)
        return big(atoi(argv[2]));
    if (argc >= 2 && strcmp(argv[1], "tids") == 0)
        return tids();
    fprintf(stderr, "usage: threads_scale many N | pause N | big N | tids\n");
    return 2;
}
