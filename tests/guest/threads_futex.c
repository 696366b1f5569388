/* Raw futex operations between threads, and a thread made with clone() whose
 * exit is seen through CLONE_CHILD_CLEARTID. */
#include "check.h"
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* <linux/futex.h> is not in every libc's sysroot (musl). */
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_CMP_REQUEUE 4
#define FUTEX_WAKE_OP 5
#define FUTEX_WAIT_BITSET 9
#define FUTEX_PRIVATE_FLAG 128
#define FUTEX_CLOCK_REALTIME 256
#define FUTEX_WAIT_PRIVATE (FUTEX_WAIT | FUTEX_PRIVATE_FLAG)
#define FUTEX_WAKE_PRIVATE (FUTEX_WAKE | FUTEX_PRIVATE_FLAG)
#define FUTEX_CMP_REQUEUE_PRIVATE (FUTEX_CMP_REQUEUE | FUTEX_PRIVATE_FLAG)
#define FUTEX_WAKE_OP_PRIVATE (FUTEX_WAKE_OP | FUTEX_PRIVATE_FLAG)
#define FUTEX_WAIT_BITSET_PRIVATE (FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG)
#define FUTEX_BITSET_MATCH_ANY 0xffffffff
#define FUTEX_OP_ADD 1
#define FUTEX_OP_CMP_EQ 0
#define FUTEX_OP(op, oparg, cmp, cmparg) \
    (((op & 0xf) << 28) | ((cmp & 0xf) << 24) | ((oparg & 0xfff) << 12) | (cmparg & 0xfff))

static long fx(void *uaddr, int op, int val, const void *ts, void *uaddr2, int val3)
{
    return syscall(SYS_futex, uaddr, op, val, ts, uaddr2, val3);
}

#define ROUNDS 5000
static volatile int ping; /* 0: ponger's turn to wait, values alternate 0/1 */
static int pong_rounds;

static void *ponger(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        while (__atomic_load_n(&ping, __ATOMIC_ACQUIRE) != 1)
            fx((void *)&ping, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
        pong_rounds++;
        __atomic_store_n(&ping, 0, __ATOMIC_RELEASE);
        fx((void *)&ping, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
    return NULL;
}

static int qa, qb;
static volatile int requeued_done;
static void *requeue_waiter(void *arg)
{
    (void)arg;
    /* Woken only through qb after being requeued from qa. */
    long r = fx(&qa, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    requeued_done = (r == 0);
    return NULL;
}

static int ctid = -1, ptid;
static int child_ran;
static int child_fn(void *arg)
{
    (void)arg;
    __atomic_store_n(&child_ran, 1, __ATOMIC_RELEASE);
    return 0; /* the clone wrapper calls SYS_exit */
}

/* clone3 with a child that runs only this assembly on its own stack: it sets
 * *flag = 1 and calls exit(0); CLONE_CHILD_CLEARTID then clears *ctid. */
struct clone_args_v0 {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};
static int c3_flag, c3_ctid = -1;
static long raw_clone3(struct clone_args_v0 *args, int *flag)
{
    register long x0 __asm__("x0") = (long)args;
    register long x1 __asm__("x1") = sizeof *args;
    register long x2 __asm__("x2") = (long)flag;
    register long x8 __asm__("x8") = 435;
    __asm__ volatile("svc #0\n"
                     "cbnz x0, 1f\n"
                     "mov w3, #1\n"
                     "str w3, [x2]\n"
                     "mov x0, #0\n"
                     "mov x8, #93\n"
                     "svc #0\n"
                     "1:\n"
                     : "+r"(x0)
                     : "r"(x1), "r"(x2), "r"(x8)
                     : "x3", "memory");
    return x0;
}

int main(void)
{
    int w = 5;
    struct timespec ts = {0, 20 * 1000 * 1000};
    CHECK_ERR(fx(&w, FUTEX_WAIT_PRIVATE, 4, NULL, NULL, 0), EAGAIN);
    CHECK_ERR(fx(&w, FUTEX_WAIT_PRIVATE, 5, &ts, NULL, 0), ETIMEDOUT);
    CHECK_ERR(fx(&w, FUTEX_WAIT, 5, &ts, NULL, 0), ETIMEDOUT);
    CHECK_ERR(fx((char *)&w + 1, FUTEX_WAIT_PRIVATE, 5, &ts, NULL, 0), EINVAL);
    CHECK_ERR(fx((void *)16, FUTEX_WAIT_PRIVATE, 5, &ts, NULL, 0), EFAULT);
    struct timespec bad = {0, 2000000000L};
    CHECK_ERR(fx(&w, FUTEX_WAIT_PRIVATE, 5, &bad, NULL, 0), EINVAL);

    /* WAIT_BITSET takes an absolute deadline (MONOTONIC, or REALTIME with the flag). */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    now.tv_nsec += 20 * 1000 * 1000;
    if (now.tv_nsec >= 1000000000L) { now.tv_sec++; now.tv_nsec -= 1000000000L; }
    CHECK_ERR(fx(&w, FUTEX_WAIT_BITSET_PRIVATE, 5, &now, NULL, FUTEX_BITSET_MATCH_ANY), ETIMEDOUT);
    clock_gettime(CLOCK_REALTIME, &now);
    now.tv_nsec += 20 * 1000 * 1000;
    if (now.tv_nsec >= 1000000000L) { now.tv_sec++; now.tv_nsec -= 1000000000L; }
    CHECK_ERR(fx(&w, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 5, &now, NULL,
                 FUTEX_BITSET_MATCH_ANY), ETIMEDOUT);
    CHECK_ERR(fx(&w, FUTEX_WAIT_BITSET_PRIVATE, 5, NULL, NULL, 0), EINVAL);
    CHECK(fx(&w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) == 0);

    /* WAKE_OP: *uaddr2 += 3, then wake on uaddr (none waiting) and on uaddr2 if old == 7. */
    int a = 0, b = 7;
    CHECK(fx(&a, FUTEX_WAKE_OP_PRIVATE, 1, (void *)1, &b,
             FUTEX_OP(FUTEX_OP_ADD, 3, FUTEX_OP_CMP_EQ, 7)) == 0);
    CHECK(b == 10);
    CHECK_ERR(fx(&a, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)1, &b, 99), EAGAIN);

    /* Ping-pong between two threads on one word. */
    pthread_t t;
    CHECK(pthread_create(&t, NULL, ponger, NULL) == 0);
    for (int i = 0; i < ROUNDS; i++) {
        __atomic_store_n(&ping, 1, __ATOMIC_RELEASE);
        fx((void *)&ping, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
        while (__atomic_load_n(&ping, __ATOMIC_ACQUIRE) != 0)
            fx((void *)&ping, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0);
    }
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(pong_rounds == ROUNDS);

    /* REQUEUE: a waiter on qa moves to qb and is woken there. */
    CHECK(pthread_create(&t, NULL, requeue_waiter, NULL) == 0);
    long moved = 0;
    for (int i = 0; i < 2000 && moved == 0; i++) {
        moved = fx(&qa, FUTEX_CMP_REQUEUE_PRIVATE, 0, (void *)1, &qb, 0);
        if (moved == 0)
            usleep(1000);
    }
    CHECK(moved == 1);
    CHECK(fx(&qa, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) == 0);
    CHECK(fx(&qb, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) == 1);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(requeued_done);

    /* clone() + CLONE_CHILD_CLEARTID: the tid word is cleared and woken at exit. */
    static char stack[64 * 1024] __attribute__((aligned(16)));
    int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                CLONE_SYSVSEM | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID;
    int tid = clone(child_fn, stack + sizeof stack, flags, NULL, &ptid, NULL, &ctid);
    CHECK(tid > 0);
    CHECK(ptid == tid);
    int v;
    while ((v = __atomic_load_n(&ctid, __ATOMIC_ACQUIRE)) != 0)
        fx(&ctid, FUTEX_WAIT, v, NULL, NULL, 0);
    CHECK(ctid == 0);
    CHECK(child_ran == 1);
    static char stack3[16 * 1024] __attribute__((aligned(16)));
    struct clone_args_v0 ca = {
        .flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                 CLONE_SYSVSEM | CLONE_CHILD_CLEARTID,
        .child_tid = (uintptr_t)&c3_ctid,
        .stack = (uintptr_t)stack3,
        .stack_size = sizeof stack3,
    };
    long r3 = raw_clone3(&ca, &c3_flag);
    if (r3 > 0) {
        while ((v = __atomic_load_n(&c3_ctid, __ATOMIC_ACQUIRE)) != 0)
            fx(&c3_ctid, FUTEX_WAIT, v, NULL, NULL, 0);
    }
    /* qemu-aarch64 7.2 has no clone3 (ENOSYS); elfuse runs the thread. */
    int c3_ok = r3 == -ENOSYS || (r3 > 0 && c3_flag == 1 && c3_ctid == 0);
    CHECK(c3_ok);
    /* A process (no CLONE_THREAD) sharing memory is not a thread. */
    CHECK(clone(child_fn, stack + sizeof stack, CLONE_THREAD | CLONE_VM, NULL) == -1);
    return report();
}
