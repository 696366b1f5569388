/* Priority-inheritance futexes: PTHREAD_PRIO_INHERIT mutexes under contention, robust
 * PI mutexes (EDEADLK, EBUSY, EPERM, EOWNERDEAD), a condvar over a PI mutex, and the raw
 * word protocol of FUTEX_LOCK_PI / TRYLOCK_PI / UNLOCK_PI / WAIT_REQUEUE_PI /
 * CMP_REQUEUE_PI.
 * With "strict": what qemu-user 7.2 gets wrong, elfuse only: robust owner death (qemu
 * has no robust lists) and the ESRCH of an owner that has exited. */
#include "check.h"
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define FUTEX_LOCK_PI 6
#define FUTEX_UNLOCK_PI 7
#define FUTEX_TRYLOCK_PI 8
#define FUTEX_WAIT_REQUEUE_PI 11
#define FUTEX_CMP_REQUEUE_PI 12
#define FUTEX_LOCK_PI2 13
#define FUTEX_PRIVATE_FLAG 128
#define FUTEX_CLOCK_REALTIME 256
#define FUTEX_WAITERS 0x80000000u
#define FUTEX_OWNER_DIED 0x40000000u
#define FUTEX_TID_MASK 0x3fffffffu
#define P FUTEX_PRIVATE_FLAG

static long fx(void *uaddr, int op, long val, const void *ts, void *uaddr2, int val3)
{
    return syscall(SYS_futex, uaddr, op, val, ts, uaddr2, val3);
}

static unsigned tid(void) { return (unsigned)syscall(SYS_gettid); }
static unsigned ld(unsigned *w) { return __atomic_load_n(w, __ATOMIC_SEQ_CST); }

/* ---- a PI mutex under contention ---- */
#define NTHREADS 8
#define ROUNDS 4000
static pthread_mutex_t pi_m;
static long counter;
static void *adder(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&pi_m);
        long c = counter;
        if ((i & 63) == 0)
            sched_yield();
        counter = c + 1;
        pthread_mutex_unlock(&pi_m);
    }
    return NULL;
}

static void contention(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    CHECK(pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT) == 0);
    CHECK(pthread_mutex_init(&pi_m, &a) == 0);
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, adder, NULL);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    CHECK(counter == (long)NTHREADS * ROUNDS);
    pthread_mutex_destroy(&pi_m);
}

static unsigned mw;
static long holder_exit_lock;
static void *hold_then_exit(void *arg);

/* ---- a robust PI mutex ---- */
static pthread_mutex_t rm;
static int t_res[4];
static void *try_other(void *arg)
{
    (void)arg;
    t_res[0] = pthread_mutex_trylock(&rm);
    t_res[1] = pthread_mutex_unlock(&rm);
    return NULL;
}
static void *lock_and_die(void *arg)
{
    (void)arg;
    t_res[2] = pthread_mutex_lock(&rm);
    return NULL; /* exits holding it */
}
static volatile int holder_ready, holder_go;
static void *lock_hold_die(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&rm);
    __atomic_store_n(&holder_ready, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&holder_go, __ATOMIC_SEQ_CST))
        sched_yield();
    usleep(20000); /* the waiter is most likely queued by now; either way it must see EOWNERDEAD */
    return NULL;
}
static void *waiter_lock(void *arg)
{
    (void)arg;
    t_res[3] = pthread_mutex_lock(&rm);
    if (t_res[3] == EOWNERDEAD) {
        pthread_mutex_consistent(&rm);
        pthread_mutex_unlock(&rm);
    }
    return NULL;
}

static void robust(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    CHECK(pthread_mutex_init(&rm, &a) == 0);
    CHECK(pthread_mutex_lock(&rm) == 0);
    CHECK(pthread_mutex_lock(&rm) == EDEADLK);
    pthread_t t;
    pthread_create(&t, NULL, try_other, NULL);
    pthread_join(t, NULL);
    CHECK(t_res[0] == EBUSY);
    CHECK(t_res[1] == EPERM);
    CHECK(pthread_mutex_unlock(&rm) == 0);
}

/* Owners that die holding it (qemu-user 7.2 has no robust lists: the lock is never
 * marked, glibc aborts on ESRCH and musl waits forever). */
static void robust_death(void)
{
    pthread_t t;
    pthread_create(&t, NULL, lock_and_die, NULL);
    pthread_join(t, NULL);
    CHECK(t_res[2] == 0);
    CHECK(pthread_mutex_lock(&rm) == EOWNERDEAD);
    CHECK(pthread_mutex_consistent(&rm) == 0);
    CHECK(pthread_mutex_unlock(&rm) == 0);
    CHECK(pthread_mutex_lock(&rm) == 0);
    CHECK(pthread_mutex_unlock(&rm) == 0);

    /* The owner dies while another thread waits for the lock. */
    pthread_t h, w;
    pthread_create(&h, NULL, lock_hold_die, NULL);
    while (!__atomic_load_n(&holder_ready, __ATOMIC_SEQ_CST))
        sched_yield();
    pthread_create(&w, NULL, waiter_lock, NULL);
    __atomic_store_n(&holder_go, 1, __ATOMIC_SEQ_CST);
    pthread_join(h, NULL);
    pthread_join(w, NULL);
    CHECK(t_res[3] == EOWNERDEAD);
    CHECK(pthread_mutex_lock(&rm) == 0);
    CHECK(pthread_mutex_unlock(&rm) == 0);

    /* A non-robust owner that exited (joined: Linux is done with its futexes before
     * the join returns; under qemu its host thread may still be alive): ESRCH. */
    pthread_create(&h, NULL, hold_then_exit, NULL);
    pthread_join(h, NULL);
    CHECK(holder_exit_lock == 0);
    CHECK_ERR(fx(&mw, FUTEX_LOCK_PI | P, 0, NULL, NULL, 0), ESRCH);
    mw = 0;
}

/* ---- a condition variable over a PI mutex ---- */
static pthread_mutex_t cm;
static pthread_cond_t cv;
static int ready, woken;
static void *cwaiter(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&cm);
    while (!ready)
        pthread_cond_wait(&cv, &cm);
    woken++;
    pthread_mutex_unlock(&cm);
    return NULL;
}

static void condvar(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
    pthread_mutex_init(&cm, &a);
    pthread_cond_init(&cv, NULL);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, cwaiter, NULL);
    usleep(10000);
    pthread_mutex_lock(&cm);
    ready = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&cm);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK(woken == 4);
}

/* ---- the raw word protocol ---- */
static unsigned word, main_tid;
static long r_unlock, r_try;
static unsigned seen_after_try;
static void *other_ops(void *arg)
{
    (void)arg;
    errno = 0;
    r_unlock = fx(&word, FUTEX_UNLOCK_PI | P, 0, NULL, NULL, 0) == -1 ? errno : 0;
    errno = 0;
    r_try = fx(&word, FUTEX_TRYLOCK_PI | P, 0, NULL, NULL, 0) == -1 ? errno : 0;
    seen_after_try = ld(&word);
    return NULL;
}
static long r_lock;
static unsigned got_word, locker_tid;
static void *locker(void *arg)
{
    (void)arg;
    locker_tid = tid();
    r_lock = fx(&word, FUTEX_LOCK_PI | P, 0, NULL, NULL, 0);
    got_word = ld(&word);
    fx(&word, FUTEX_UNLOCK_PI | P, 0, NULL, NULL, 0);
    return NULL;
}

static void raw(void)
{
    main_tid = tid();
    CHECK(fx(&word, FUTEX_LOCK_PI | P, 0, NULL, NULL, 0) == 0);
    CHECK(ld(&word) == main_tid);
    CHECK_ERR(fx(&word, FUTEX_LOCK_PI | P, 0, NULL, NULL, 0), EDEADLK);
    CHECK_ERR(fx(&word, FUTEX_TRYLOCK_PI | P, 0, NULL, NULL, 0), EDEADLK);
    pthread_t t;
    pthread_create(&t, NULL, other_ops, NULL);
    pthread_join(t, NULL);
    CHECK(r_unlock == EPERM);
    CHECK(r_try == EAGAIN);
    CHECK(seen_after_try == (main_tid | FUTEX_WAITERS));
    /* WAITERS set: the release goes through the kernel, and the word is 0 after it. */
    CHECK(fx(&word, FUTEX_UNLOCK_PI | P, 0, NULL, NULL, 0) == 0);
    CHECK(ld(&word) == 0);
    CHECK_ERR(fx(&word, FUTEX_UNLOCK_PI | P, 0, NULL, NULL, 0), EPERM);

    CHECK(fx(&word, FUTEX_LOCK_PI | P, 0, NULL, NULL, 0) == 0);
    /* A contended lock: blocks until the unlock, then owns the word. */
    pthread_create(&t, NULL, locker, NULL);
    while (!(ld(&word) & FUTEX_WAITERS))
        sched_yield();
    usleep(10000);
    CHECK(fx(&word, FUTEX_UNLOCK_PI | P, 0, NULL, NULL, 0) == 0);
    pthread_join(t, NULL);
    CHECK(r_lock == 0);
    CHECK((got_word & FUTEX_TID_MASK) == locker_tid);
    CHECK(ld(&word) == 0);

    /* An owner that does not exist: ESRCH (and WAITERS was set on the way). */
    word = 0x3ffffff0;
    CHECK_ERR(fx(&word, FUTEX_LOCK_PI | P, 0, NULL, NULL, 0), ESRCH);
    CHECK_ERR(fx(&word, FUTEX_TRYLOCK_PI | P, 0, NULL, NULL, 0), ESRCH);
    CHECK(ld(&word) == (0x3ffffff0 | FUTEX_WAITERS));
    /* An owner that died (OWNER_DIED, no tid): taken with the bit kept. */
    word = FUTEX_OWNER_DIED;
    CHECK(fx(&word, FUTEX_TRYLOCK_PI | P, 0, NULL, NULL, 0) == 0);
    CHECK(ld(&word) == (FUTEX_OWNER_DIED | main_tid));
    CHECK(fx(&word, FUTEX_UNLOCK_PI | P, 0, NULL, NULL, 0) == 0);
    CHECK(ld(&word) == 0);
    /* Argument checks. */
    CHECK_ERR(fx((char *)&word + 1, FUTEX_LOCK_PI | P, 0, NULL, NULL, 0), EINVAL);
    CHECK_ERR(fx(&word, FUTEX_LOCK_PI | P | FUTEX_CLOCK_REALTIME, 0, NULL, NULL, 0), ENOSYS);
    CHECK_ERR(fx((void *)8, FUTEX_LOCK_PI | P, 0, NULL, NULL, 0), EFAULT);
    struct timespec bad = {0, -1};
    CHECK_ERR(fx(&word, FUTEX_LOCK_PI | P, 0, &bad, NULL, 0), EINVAL);
}

/* ---- LOCK_PI2, timeouts, WAIT_REQUEUE_PI / CMP_REQUEUE_PI ---- */
static unsigned cvw;
static long rq_ret;
static unsigned rq_word, rq_tid;
static void *rq_waiter(void *arg)
{
    (void)arg;
    rq_tid = tid();
    rq_ret = fx(&cvw, FUTEX_WAIT_REQUEUE_PI | P, 0, NULL, &mw, 0);
    rq_word = ld(&mw);
    fx(&mw, FUTEX_UNLOCK_PI | P, 0, NULL, NULL, 0);
    return NULL;
}
static void *hold_then_exit(void *arg)
{
    (void)arg;
    holder_exit_lock = fx(&mw, FUTEX_LOCK_PI | P, 0, NULL, NULL, 0);
    return NULL; /* exits owning mw (not robust) */
}
static const struct timespec past = {0, 0};
static long r1, r2;
static void *timed(void *a)
{
    (void)a;
    errno = 0;
    r1 = fx(&mw, FUTEX_LOCK_PI2 | P, 0, &past, NULL, 0) == -1 ? errno : 0;
    errno = 0;
    r2 = fx(&mw, FUTEX_LOCK_PI | P, 0, &past, NULL, 0) == -1 ? errno : 0;
    return NULL;
}

static void timeouts(void)
{
    CHECK(fx(&mw, FUTEX_LOCK_PI | P, 0, NULL, NULL, 0) == 0);
    pthread_t t;
    /* LOCK_PI2 on CLOCK_MONOTONIC, LOCK_PI on CLOCK_REALTIME: a deadline in the past. */
    pthread_create(&t, NULL, timed, NULL);
    pthread_join(t, NULL);
    CHECK(r1 == ETIMEDOUT);
    CHECK(r2 == ETIMEDOUT);
    CHECK(fx(&mw, FUTEX_UNLOCK_PI | P, 0, NULL, NULL, 0) == 0);
    CHECK(fx(&mw, FUTEX_LOCK_PI2 | P | FUTEX_CLOCK_REALTIME, 0, &past, NULL, 0) == 0);
    CHECK(fx(&mw, FUTEX_UNLOCK_PI | P, 0, NULL, NULL, 0) == 0);
}

static void requeue(void)
{
    pthread_t t;
    CHECK_ERR(fx(&cvw, FUTEX_WAIT_REQUEUE_PI | P, 0, NULL, &cvw, 0), EINVAL);
    CHECK_ERR(fx(&cvw, FUTEX_WAIT_REQUEUE_PI | P, 1, NULL, &mw, 0), EAGAIN);
    CHECK_ERR(fx(&cvw, FUTEX_WAIT_REQUEUE_PI | P, 0, &past, &mw, 0), ETIMEDOUT);
    CHECK_ERR(fx(&cvw, FUTEX_CMP_REQUEUE_PI | P, 2, (void *)1, &mw, 0), EINVAL);
    CHECK_ERR(fx(&cvw, FUTEX_CMP_REQUEUE_PI | P, 1, (void *)1, &mw, 1), EAGAIN);
    CHECK(fx(&cvw, FUTEX_CMP_REQUEUE_PI | P, 1, (void *)1, &mw, 0) == 0);

    /* The lock is free: the waiter is woken owning it. */
    pthread_create(&t, NULL, rq_waiter, NULL);
    long n;
    while ((n = fx(&cvw, FUTEX_CMP_REQUEUE_PI | P, 1, (void *)1, &mw, 0)) == 0)
        sched_yield();
    pthread_join(t, NULL);
    CHECK(n == 1);
    CHECK(rq_ret == 0);
    CHECK((rq_word & FUTEX_TID_MASK) == rq_tid);
    CHECK(ld(&mw) == 0);

    /* The lock is held: the waiter is requeued to it and gets it at the unlock. */
    CHECK(fx(&mw, FUTEX_LOCK_PI | P, 0, NULL, NULL, 0) == 0);
    pthread_create(&t, NULL, rq_waiter, NULL);
    while ((n = fx(&cvw, FUTEX_CMP_REQUEUE_PI | P, 1, (void *)1, &mw, 0)) == 0)
        sched_yield();
    CHECK(n == 1);
    CHECK(ld(&mw) & FUTEX_WAITERS);
    CHECK(fx(&mw, FUTEX_UNLOCK_PI | P, 0, NULL, NULL, 0) == 0);
    pthread_join(t, NULL);
    CHECK(rq_ret == 0);
    CHECK((rq_word & FUTEX_TID_MASK) == rq_tid);
    CHECK(ld(&mw) == 0);

}

int main(int argc, char **argv)
{
    int strict = argc > 1 && strcmp(argv[1], "strict") == 0;
    contention();
    robust();
    condvar();
    raw();
    timeouts();
    requeue();
    if (strict)
        robust_death();
    return report();
}
