/* Not a test: times pthread_create + pthread_join (median of N) for comparing
 * elfuse with qemu-aarch64 by hand:
 *   elfuse target/guests/glibc/thread_bench; qemu-aarch64-static target/guests/glibc/thread_bench */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define N 300

static void *nop(void *arg)
{
    return arg;
}

static int cmp(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

int main(void)
{
    static long ns[N];
    for (int i = 0; i < N; i++) {
        struct timespec a, b;
        pthread_t t;
        clock_gettime(CLOCK_MONOTONIC, &a);
        if (pthread_create(&t, NULL, nop, NULL) != 0 || pthread_join(t, NULL) != 0)
            return 1;
        clock_gettime(CLOCK_MONOTONIC, &b);
        ns[i] = (b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec);
    }
    qsort(ns, N, sizeof ns[0], cmp);
    printf("pthread_create+join: median %ld us, p10 %ld us, p90 %ld us\n", ns[N / 2] / 1000,
           ns[N / 10] / 1000, ns[N * 9 / 10] / 1000);
    return 0;
}
