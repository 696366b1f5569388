/* tests/gdb.rs: a guest signal reported to gdb, then a breakpoint in a second thread. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>

static volatile int hits;

static void on_usr1(int s)
{
    (void)s;
    hits++;
}

static void *worker(void *a)
{
    int v = 7;
    hits += v;
    return a;
}

int main(void)
{
    pthread_t t;
    signal(SIGUSR1, on_usr1);
    raise(SIGUSR1);
    pthread_create(&t, 0, worker, 0);
    pthread_join(t, 0);
    printf("hits %d\n", hits);
    return 0;
}
