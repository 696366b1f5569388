/* futex2 (Linux 6.7): futex_wake, futex_wait, futex_requeue and futex_waitv between
 * threads, with Linux's argument checks; futex2 and futex meet on the same word.
 * qemu-user 7.2 has none of these calls: elfuse only. */
#include "check.h"
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NR_futex_waitv 449
#define NR_futex_wake 454
#define NR_futex_wait 455
#define NR_futex_requeue 456
#define U8 0
#define U16 1
#define U32 2
#define U64 3
#define PRIV 128
#define FUTEX_WAIT_PRIVATE 128

struct waitv {
    uint64_t val, uaddr;
    uint32_t flags, reserved;
};

static long fwake(void *u, unsigned long mask, int nr, unsigned flags)
{
    return syscall(NR_futex_wake, u, mask, nr, flags);
}
static long fwait(void *u, unsigned long val, unsigned long mask, unsigned flags,
                  const struct timespec *ts, int clk)
{
    return syscall(NR_futex_wait, u, val, mask, flags, ts, clk);
}
static long frequeue(struct waitv *w, unsigned flags, int nw, int nr)
{
    return syscall(NR_futex_requeue, w, flags, nw, nr);
}

static uint32_t a, b, c;
static long ret_wait, ret_legacy, ret_rq, ret_v;

static void *waiter(void *arg)
{
    ret_wait = fwait(&a, 0, (uintptr_t)arg, U32 | PRIV, NULL, 0);
    return NULL;
}
static void *legacy_waiter(void *arg)
{
    (void)arg;
    ret_legacy = syscall(SYS_futex, &b, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    return NULL;
}
static void *rq_waiter(void *arg)
{
    (void)arg;
    ret_rq = fwait(&a, 0, 0xffffffff, U32 | PRIV, NULL, 0);
    return NULL;
}
static struct waitv vec[2];
static void *v_waiter(void *arg)
{
    (void)arg;
    ret_v = syscall(NR_futex_waitv, vec, 2, 0, NULL, 0);
    return NULL;
}

/* Wakes until one waiter was woken (it may not be queued yet). */
static long wake_one(uint32_t *w, unsigned long mask)
{
    long n;
    while ((n = fwake(w, mask, 1, U32 | PRIV)) == 0)
        sched_yield();
    return n;
}

int main(void)
{
    struct timespec past = {0, 0}, bad = {0, 1000000000};
    char *unaligned = (char *)&a + 1;

    /* futex_wait's checks. */
    CHECK_ERR(fwait(&a, 1, 0xffffffff, U32 | PRIV, NULL, 0), EAGAIN);
    CHECK_ERR(fwait(&a, 0, 0xffffffff, U32 | PRIV, &past, CLOCK_MONOTONIC), ETIMEDOUT);
    CHECK_ERR(fwait(&a, 0, 0xffffffff, U32, &past, CLOCK_REALTIME), ETIMEDOUT);
    CHECK_ERR(fwait(&a, 0, 0xffffffff, U32 | PRIV, &past, CLOCK_BOOTTIME), EINVAL);
    CHECK_ERR(fwait(&a, 0, 0xffffffff, U32 | PRIV, &bad, CLOCK_MONOTONIC), EINVAL);
    CHECK_ERR(fwait(&a, 0, 0, U32 | PRIV, &past, CLOCK_MONOTONIC), EINVAL);
    CHECK_ERR(fwait(&a, 1ul << 32, 1, U32 | PRIV, &past, CLOCK_MONOTONIC), EINVAL);
    CHECK_ERR(fwait(&a, 0, 1ul << 32, U32 | PRIV, &past, CLOCK_MONOTONIC), EINVAL);
    CHECK_ERR(fwait(&a, 0, 1, U8 | PRIV, &past, CLOCK_MONOTONIC), EINVAL);
    CHECK_ERR(fwait(&a, 0, 1, U16 | PRIV, &past, CLOCK_MONOTONIC), EINVAL);
    CHECK_ERR(fwait(&a, 0, 1, U64 | PRIV, &past, CLOCK_MONOTONIC), EINVAL);
    CHECK_ERR(fwait(&a, 0, 1, U32 | 0x100, &past, CLOCK_MONOTONIC), EINVAL);
    CHECK_ERR(fwait(unaligned, 0, 1, U32 | PRIV, &past, CLOCK_MONOTONIC), EINVAL);
    CHECK_ERR(fwait((void *)8, 0, 1, U32 | PRIV, &past, CLOCK_MONOTONIC), EFAULT);
    CHECK_ERR(fwait(&a, 0, 1, U32 | PRIV, (void *)8, CLOCK_MONOTONIC), EFAULT);

    /* futex_wake's checks: nr 0 wakes nobody (FUTEX_WAKE would wake one). */
    CHECK(fwake(&a, 1, 0, U32 | PRIV) == 0);
    CHECK(fwake(&a, 1, 1, U32 | PRIV) == 0);
    CHECK_ERR(fwake(&a, 0, 1, U32 | PRIV), EINVAL);
    CHECK_ERR(fwake(&a, 1ul << 32, 1, U32 | PRIV), EINVAL);
    CHECK_ERR(fwake(&a, 1, 1, U64 | PRIV), EINVAL);
    CHECK_ERR(fwake(&a, 1, 1, U32 | 0x1000), EINVAL);
    CHECK_ERR(fwake(unaligned, 1, 1, U32 | PRIV), EINVAL);
    CHECK_ERR(fwake((void *)8, 1, 1, U32 | PRIV), EFAULT);

    /* A waiter with mask 1 is woken by mask 3, by mask 1 and never by mask 2. */
    pthread_t t;
    pthread_create(&t, NULL, waiter, (void *)1ul);
    long n = wake_one(&a, 3);
    pthread_join(t, NULL);
    CHECK(n == 1);
    CHECK(ret_wait == 0);
    pthread_create(&t, NULL, waiter, (void *)1ul);
    long woken_by_2 = 0;
    for (;;) {
        woken_by_2 += fwake(&a, 2, 1, U32 | PRIV);
        if (fwake(&a, 1, 1, U32 | PRIV) == 1)
            break;
        sched_yield();
    }
    pthread_join(t, NULL);
    CHECK(woken_by_2 == 0);
    CHECK(ret_wait == 0);

    /* A legacy FUTEX_WAIT waiter is woken by futex_wake. */
    pthread_create(&t, NULL, legacy_waiter, NULL);
    n = wake_one(&b, 0xffffffff);
    pthread_join(t, NULL);
    CHECK(n == 1 && ret_legacy == 0);

    /* futex_requeue: checks, then a waiter moved from a to b and woken there. */
    struct waitv rq[2] = {{0, (uintptr_t)&a, U32 | PRIV, 0}, {0, (uintptr_t)&b, U32 | PRIV, 0}};
    CHECK(frequeue(rq, 0, 1, 1) == 0);
    CHECK_ERR(frequeue(rq, 1, 1, 1), EINVAL);
    CHECK_ERR(frequeue(rq, 0, -1, 1), EINVAL);
    CHECK_ERR(frequeue(rq, 0, 1, -1), EINVAL);
    CHECK_ERR(frequeue(NULL, 0, 1, 1), EINVAL);
    CHECK_ERR(frequeue((void *)8, 0, 1, 1), EFAULT);
    rq[0].val = 5;
    CHECK_ERR(frequeue(rq, 0, 1, 1), EAGAIN);
    rq[0].val = 0;
    rq[1].flags = U32;
    CHECK_ERR(frequeue(rq, 0, 1, 1), EINVAL);
    rq[1].flags = U32 | PRIV;
    rq[1].reserved = 1;
    CHECK_ERR(frequeue(rq, 0, 1, 1), EINVAL);
    rq[1].reserved = 0;
    rq[1].val = 1ul << 32;
    CHECK_ERR(frequeue(rq, 0, 1, 1), EINVAL);
    rq[1].val = 0;
    pthread_create(&t, NULL, rq_waiter, NULL);
    while ((n = frequeue(rq, 0, 0, 1)) == 0)
        sched_yield();
    CHECK(n == 1);
    CHECK(fwake(&a, 0xffffffff, 1, U32 | PRIV) == 0);
    CHECK(wake_one(&b, 0xffffffff) == 1);
    pthread_join(t, NULL);
    CHECK(ret_rq == 0);

    /* futex_waitv: woken through its second word, it answers that index. */
    vec[0] = (struct waitv){0, (uintptr_t)&a, U32 | PRIV, 0};
    vec[1] = (struct waitv){0, (uintptr_t)&c, U32 | PRIV, 0};
    pthread_create(&t, NULL, v_waiter, NULL);
    CHECK(wake_one(&c, 0xffffffff) == 1);
    pthread_join(t, NULL);
    CHECK(ret_v == 1);
    CHECK_ERR(syscall(NR_futex_waitv, NULL, 1, 0, NULL, 0), EINVAL);
    CHECK_ERR(syscall(NR_futex_waitv, vec, 0, 0, NULL, 0), EINVAL);
    CHECK_ERR(syscall(NR_futex_waitv, vec, 129, 0, NULL, 0), EINVAL);
    CHECK_ERR(syscall(NR_futex_waitv, vec, 2, 1, NULL, 0), EINVAL);
    CHECK_ERR(syscall(NR_futex_waitv, vec, 2, 0, &past, CLOCK_BOOTTIME), EINVAL);
    CHECK_ERR(syscall(NR_futex_waitv, vec, 2, 0, &past, CLOCK_MONOTONIC), ETIMEDOUT);
    vec[1].flags = U64 | PRIV;
    CHECK_ERR(syscall(NR_futex_waitv, vec, 2, 0, &past, CLOCK_MONOTONIC), EINVAL);
    vec[1].flags = U32 | PRIV;
    vec[0].val = 1;
    CHECK_ERR(syscall(NR_futex_waitv, vec, 2, 0, &past, CLOCK_MONOTONIC), EAGAIN);
    return report();
}
