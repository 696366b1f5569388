/* 256 threads alive at once (the main thread and 255 workers), one more
 * (success on Linux, qemu and elfuse, which allows 15360 live threads; EAGAIN is
 * accepted too), and 256 more created and joined one after another. Thousands:
 * threads_scale.c. */
#include "check.h"
#include <pthread.h>

#define LIVE 255
static pthread_barrier_t all_up, release;
static int ran[LIVE + 1];

static void *worker(void *arg)
{
    long i = (long)arg;
    ran[i] = 1;
    pthread_barrier_wait(&all_up);
    pthread_barrier_wait(&release);
    return (void *)(i + 1);
}

static void *extra(void *arg)
{
    (void)arg;
    return (void *)7;
}

static void *quick(void *arg)
{
    return arg;
}

int main(void)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    pthread_barrier_init(&all_up, NULL, LIVE + 1);
    pthread_barrier_init(&release, NULL, LIVE + 1);
    static pthread_t t[LIVE];
    int created = 0;
    for (long i = 0; i < LIVE; i++)
        if (pthread_create(&t[i], &attr, worker, (void *)i) == 0)
            created++;
    CHECK(created == LIVE);
    pthread_barrier_wait(&all_up);
    int all_ran = 1;
    for (int i = 0; i < LIVE; i++)
        all_ran &= ran[i];
    CHECK(all_ran);
    /* The 257th live thread: created and joined (or EAGAIN: both honest). */
    pthread_t x;
    void *v = NULL;
    int r = pthread_create(&x, &attr, extra, NULL);
    int extra_ok = r == EAGAIN || (r == 0 && pthread_join(x, &v) == 0 && v == (void *)7);
    CHECK(extra_ok);
    pthread_barrier_wait(&release);
    int joined = 1;
    for (long i = 0; i < LIVE; i++)
        joined &= pthread_join(t[i], &v) == 0 && v == (void *)(i + 1);
    CHECK(joined);
    int seq = 1;
    for (long i = 0; i < 256; i++) {
        pthread_t q;
        v = NULL;
        seq &= pthread_create(&q, &attr, quick, (void *)i) == 0 && pthread_join(q, &v) == 0 &&
               v == (void *)i;
    }
    CHECK(seq);
    return report();
}
