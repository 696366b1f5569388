/* Signal masks are per thread: a process-directed signal blocked in the main thread is
 * taken by the thread that has it unblocked, and each thread's mask is its own. */
#include "check.h"
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

static atomic_int got, ready;
static atomic_long handler_tid;

static void on_usr1(int sig)
{
    (void)sig;
    atomic_store(&handler_tid, syscall(SYS_gettid));
    atomic_store(&got, 1);
}

static void *worker(void *arg)
{
    (void)arg;
    sigset_t set, cur;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    /* Inherited from the creator: SIGUSR1 blocked. */
    int inherited = sigismember(&cur, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    atomic_store(&ready, inherited ? 1 : -1);
    while (!atomic_load(&got))
        sched_yield();
    return (void *)(long)syscall(SYS_gettid);
}

int main(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    sigset_t set, cur;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHECK(pthread_sigmask(SIG_BLOCK, &set, NULL) == 0);

    pthread_t t;
    CHECK(pthread_create(&t, NULL, worker, NULL) == 0);
    while (!atomic_load(&ready))
        sched_yield();
    CHECK(atomic_load(&ready) == 1); /* the worker started with SIGUSR1 blocked */

    CHECK(kill(getpid(), SIGUSR1) == 0);
    void *ret;
    CHECK(pthread_join(t, &ret) == 0);
    long worker_tid = (long)ret;
    CHECK(atomic_load(&got) == 1);
    CHECK(atomic_load(&handler_tid) == worker_tid);
    CHECK(worker_tid != syscall(SYS_gettid));

    /* The worker's unblock did not touch this thread's mask. */
    CHECK(pthread_sigmask(SIG_BLOCK, NULL, &cur) == 0);
    CHECK(sigismember(&cur, SIGUSR1));
    sigset_t pend;
    CHECK(sigpending(&pend) == 0 && !sigismember(&pend, SIGUSR1));
    return report();
}
