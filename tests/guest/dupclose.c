/* Concurrent dup/dup2/close on shared fds from several pthreads.
 *
 * Every fd ever installed refers to the write end of one pipe, so a write that
 * succeeds through any of them must land in that pipe: at the end the pipe holds
 * exactly as many bytes as writes succeeded (no write reached another file through
 * a recycled descriptor). A write through the fd another thread is closing and
 * re-creating may fail with EBADF, nothing else. Afterwards no fd has leaked: the
 * next open gets the same number as before the threads ran. */
#include "check.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#define THREADS 4
#define ITERS 2000

static int wr, shared, flaky;
static atomic_long written, bad_dup, bad_write, bad_close, bad_dup2;

static void *worker(void *arg)
{
    long me = (long)arg;
    for (int i = 0; i < ITERS; i++) {
        int d = dup(shared);
        if (d < 0) {
            atomic_fetch_add(&bad_dup, 1);
            continue;
        }
        if (write(d, "x", 1) == 1)
            atomic_fetch_add(&written, 1);
        else
            atomic_fetch_add(&bad_write, 1);
        if (close(d) != 0)
            atomic_fetch_add(&bad_close, 1);
        if (me == 0) {
            /* The racer: close the flaky fd and bring it back. */
            if (i % 2 == 0)
                close(flaky);
            else if (dup2(wr, flaky) != flaky)
                atomic_fetch_add(&bad_dup2, 1);
        } else {
            ssize_t r = write(flaky, "y", 1);
            if (r == 1)
                atomic_fetch_add(&written, 1);
            else if (!(r == -1 && errno == EBADF))
                atomic_fetch_add(&bad_write, 1);
        }
        if (me == 1 && i % 16 == 0 && dup2(wr, shared) != shared)
            atomic_fetch_add(&bad_dup2, 1);
    }
    return NULL;
}

int main(void)
{
    int p[2];
    CHECK(pipe(p) == 0);
    wr = p[1];
    shared = dup(wr);
    /* Far above every number dup() hands out here: otherwise another thread's dup()
     * may get flaky's number while the racer has it closed, and the racer's next
     * close or dup2 then hits that thread's fd -- a legitimate race on Linux too. */
    flaky = dup2(wr, 100);
    CHECK(shared >= 0 && flaky >= 0);
    int probe = open("/dev/null", O_RDONLY);
    CHECK(probe >= 0);
    CHECK(close(probe) == 0);

    pthread_t t[THREADS];
    int started = 0;
    for (long i = 0; i < THREADS; i++)
        started += pthread_create(&t[i], NULL, worker, (void *)i) == 0;
    CHECK(started == THREADS);
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);

    CHECK(atomic_load(&bad_dup) == 0);
    CHECK(atomic_load(&bad_write) == 0);
    CHECK(atomic_load(&bad_close) == 0);
    CHECK(atomic_load(&bad_dup2) == 0);

    /* Every successful write is in the pipe, and nothing else is. */
    close(flaky); /* may already be closed by the racer */
    CHECK(close(shared) == 0);
    CHECK(close(wr) == 0);
    long got = 0;
    char buf[4096];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) > 0)
        got += n;
    CHECK(n == 0);
    CHECK(got == atomic_load(&written));
    CHECK(close(p[0]) == 0);

    /* No fd leaked: with the pipe, shared and flaky closed, the lowest free fd is
     * the pipe's first one again. */
    int again = open("/dev/null", O_RDONLY);
    CHECK(again >= 0 && again <= p[0]);
    return report();
}
