/* fork_threads: fork from a multi-threaded process.
 *   - the child's memory is one consistent instant of the parent's, while other
 *     threads keep writing two counters far apart (x, then y: x - y is 0 or 1 at every
 *     instant), and nothing but the forking thread runs in the child;
 *   - fork from a thread that is not the main one (the child's only thread is its
 *     leader: pid == tid), and the child can create and join threads;
 *   - fork while another thread blocks in read() (fork does not wait for it);
 *   - two threads forking at once. */
#include "check.h"
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WRITERS 2
#define ROUNDS 20

static volatile uint64_t x; /* in .bss, near the program */
static volatile uint64_t *y; /* in an mmap far from it */
static volatile int stop;

static void *writer(void *arg)
{
    (void)arg;
    while (!stop) {
        /* One writer at a time keeps the invariant exact: a spin lock around the pair. */
        static volatile int lock;
        while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE))
            ;
        x = x + 1;
        *y = *y + 1;
        __atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
    }
    return NULL;
}

static int wait_status(pid_t pid)
{
    int st = -1;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

/* In a child: the counters are consistent and frozen (no writer runs here). */
static int child_sees_instant(void)
{
    uint64_t a = x, b = *y;
    if (a - b > 1)
        return 1;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return x == a && *y == b ? 0 : 2;
}

static void *nothing(void *arg)
{
    return arg;
}

static void *fork_from_thread(void *arg)
{
    (void)arg;
    pid_t pid = fork();
    if (pid == 0) {
        if (getpid() != syscall(SYS_gettid))
            _exit(1);
        pthread_t t;
        void *r = NULL;
        if (pthread_create(&t, NULL, nothing, (void *)5L) != 0 || pthread_join(t, &r) != 0 ||
            r != (void *)5L)
            _exit(2);
        _exit(child_sees_instant() == 0 ? 7 : 3);
    }
    return (void *)(long)wait_status(pid);
}

static int reader_pipe[2];

static void *blocked_reader(void *arg)
{
    (void)arg;
    char c = 0;
    return read(reader_pipe[0], &c, 1) == 1 && c == 'r' ? (void *)1L : NULL;
}

/* ROUNDS forks, each child checking its snapshot; returns how many were not consistent. */
static void *forker(void *arg)
{
    (void)arg;
    long bad = 0;
    for (int i = 0; i < ROUNDS; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(child_sees_instant());
        if (wait_status(pid) != 0)
            bad++;
    }
    return (void *)bad;
}

int main(void)
{
    printf("fork_threads\n");
    fflush(stdout);
    y = mmap((void *)0x200000000ULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
             -1, 0);
    CHECK(y != MAP_FAILED);
    pthread_t w[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        CHECK(pthread_create(&w[i], NULL, writer, NULL) == 0);
    while (x < 1000)
        ;

    long bad = (long)forker(NULL); /* the rounds, from the main thread */
    CHECK(bad == 0); /* consistent, frozen snapshots while writers run */

    pthread_t t;
    void *r = NULL;
    CHECK(pthread_create(&t, NULL, fork_from_thread, NULL) == 0);
    CHECK(pthread_join(t, &r) == 0 && (long)r == 7);

    CHECK(pipe(reader_pipe) == 0);
    CHECK(pthread_create(&t, NULL, blocked_reader, NULL) == 0);
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL); /* let it block */
    pid_t pid = fork();
    if (pid == 0)
        _exit(child_sees_instant());
    CHECK(wait_status(pid) == 0);
    CHECK(write(reader_pipe[1], "r", 1) == 1);
    CHECK(pthread_join(t, &r) == 0 && r == (void *)1L);

    pthread_t f[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&f[i], NULL, forker, NULL) == 0);
    for (int i = 0; i < 2; i++)
        CHECK(pthread_join(f[i], &r) == 0 && r == NULL);

    stop = 1;
    for (int i = 0; i < WRITERS; i++)
        pthread_join(w[i], NULL);
    CHECK(x == *y);
    return report();
}
