/* pthread mutex / condvar / barrier stress with 8 threads, and 8 x 1e6 atomic
 * increments with none lost. */
#include "check.h"
#include <pthread.h>
#include <stdatomic.h>

#define NT 8
#define ATOMIC_ITERS 1000000
#define LOCK_ITERS 20000

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pthread_barrier_t bar;
static long counter;         /* protected by mu */
static atomic_long acount;   /* atomic increments */
static long plain_ok = 1;
static int turn;             /* condvar round robin, protected by mu */
static int phase_seen[NT];

static void *atomic_worker(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&bar);
    for (int i = 0; i < ATOMIC_ITERS; i++)
        atomic_fetch_add_explicit(&acount, 1, memory_order_relaxed);
    return NULL;
}

static void *mutex_worker(void *arg)
{
    long id = (long)arg;
    for (int round = 0; round < 4; round++) {
        pthread_barrier_wait(&bar);
        pthread_mutex_lock(&mu);
        phase_seen[id]++;
        pthread_mutex_unlock(&mu);
    }
    for (int i = 0; i < LOCK_ITERS; i++) {
        pthread_mutex_lock(&mu);
        long v = counter;
        counter = v + 1;
        pthread_mutex_unlock(&mu);
    }
    /* Condvar round robin: each thread takes its turn 200 times. */
    for (int r = 0; r < 200; r++) {
        pthread_mutex_lock(&mu);
        while (turn % NT != id)
            pthread_cond_wait(&cv, &mu);
        turn++;
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
    }
    return (void *)(id * 3);
}

int main(void)
{
    pthread_t t[NT];
    CHECK(pthread_barrier_init(&bar, NULL, NT) == 0);
    int ok = 1;
    for (long i = 0; i < NT; i++)
        ok &= pthread_create(&t[i], NULL, mutex_worker, (void *)i) == 0;
    CHECK(ok);
    int rets_ok = 1;
    for (long i = 0; i < NT; i++) {
        void *ret;
        rets_ok &= pthread_join(t[i], &ret) == 0 && ret == (void *)(i * 3);
    }
    CHECK(rets_ok);
    CHECK(counter == (long)NT * LOCK_ITERS);
    CHECK(turn == NT * 200);
    int phases_ok = 1;
    for (int i = 0; i < NT; i++)
        phases_ok &= phase_seen[i] == 4;
    CHECK(phases_ok);

    ok = 1;
    for (long i = 0; i < NT; i++)
        ok &= pthread_create(&t[i], NULL, atomic_worker, NULL) == 0;
    CHECK(ok);
    for (int i = 0; i < NT; i++)
        pthread_join(t[i], NULL);
    printf("atomic increments: %ld of %ld\n", (long)atomic_load(&acount), (long)NT * ATOMIC_ITERS);
    CHECK(atomic_load(&acount) == (long)NT * ATOMIC_ITERS);
    CHECK(plain_ok);
    pthread_barrier_destroy(&bar);
    return report();
}
