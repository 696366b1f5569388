/* exit_group from a worker while other threads block in a futex wait and in
 * read() on a pipe: the process ends with the worker's status (42).
 * With argument "leader": the main thread leaves with pthread_exit and the
 * process ends when the last worker returns (status 0, the leader's). */
#include "check.h"
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

static int never;
static int pipefd[2];
static volatile int blocked;

static void *futex_blocker(void *arg)
{
    (void)arg;
    __atomic_fetch_add(&blocked, 1, __ATOMIC_SEQ_CST);
    for (;;)
        syscall(SYS_futex, &never, 128 /* FUTEX_WAIT_PRIVATE */, 0, NULL, NULL, 0);
    return NULL;
}

static void *pipe_blocker(void *arg)
{
    (void)arg;
    char c;
    __atomic_fetch_add(&blocked, 1, __ATOMIC_SEQ_CST);
    for (;;)
        read(pipefd[0], &c, 1);
    return NULL;
}

static void *exiter(void *arg)
{
    (void)arg;
    while (__atomic_load_n(&blocked, __ATOMIC_SEQ_CST) < 4)
        usleep(1000);
    usleep(50 * 1000); /* let the blockers enter their syscalls */
    printf("worker calls exit_group(42)\n");
    fflush(stdout);
    syscall(SYS_exit_group, 42);
    return NULL;
}

static void *last_worker(void *arg)
{
    (void)arg;
    usleep(30 * 1000);
    printf("last worker returns\n");
    fflush(stdout);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "leader") == 0) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, last_worker, NULL) == 0);
        pthread_exit(NULL);
    }
    CHECK(pipe(pipefd) == 0);
    pthread_t t;
    for (int i = 0; i < 2; i++) {
        CHECK(pthread_create(&t, NULL, futex_blocker, NULL) == 0);
        CHECK(pthread_create(&t, NULL, pipe_blocker, NULL) == 0);
    }
    CHECK(pthread_create(&t, NULL, exiter, NULL) == 0);
    /* The main thread blocks too (join of a thread that never ends). */
    pthread_join(t, NULL);
    printf("FAIL main thread ran after exit_group\n");
    return 1;
}
