/* Mapping changes seen by every thread: one thread maps and unmaps while
 * another works on its own memory; mprotect(PROT_NONE) in one thread makes
 * another thread's next access fault. */
#include "check.h"
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile int stop_worker;
static long worker_sum_ok = 1;

static void *toucher(void *arg)
{
    (void)arg;
    static long buf[4096];
    long rounds = 0;
    while (!stop_worker) {
        for (int i = 0; i < 4096; i++)
            buf[i] = i + rounds;
        long s = 0;
        for (int i = 0; i < 4096; i++)
            s += buf[i] - rounds;
        if (s != 4096L * 4095 / 2)
            worker_sum_ok = 0;
        rounds++;
    }
    return NULL;
}

static char *page;
static volatile int spinning, faulted;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    if ((char *)si->si_addr == page) {
        faulted = 1;
        mprotect(page, 4096, PROT_READ | PROT_WRITE);
    } else {
        _exit(99);
    }
}

static void *reader(void *arg)
{
    (void)arg;
    long n = 0;
    /* elfuse keeps one signal mask per process until per-thread masks exist (the
     * signal work): make sure SIGSEGV is deliverable here whatever pthread_create's
     * temporary blocking left behind. */
    sigset_t segv;
    sigemptyset(&segv);
    sigaddset(&segv, SIGSEGV);
    pthread_sigmask(SIG_UNBLOCK, &segv, NULL);
    while (!faulted) {
        n += *(volatile char *)page;
        spinning = 1;
    }
    return (void *)n;
}

int main(void)
{
    pthread_t t;
    CHECK(pthread_create(&t, NULL, toucher, NULL) == 0);
    int maps_ok = 1;
    for (int i = 0; i < 300; i++) {
        char *p = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            maps_ok = 0;
            break;
        }
        for (int j = 0; j < 65536; j += 4096)
            p[j] = (char)j;
        maps_ok &= p[4096] == (char)4096;
        maps_ok &= mprotect(p, 4096, PROT_READ) == 0;
        maps_ok &= munmap(p, 65536) == 0;
    }
    stop_worker = 1;
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(maps_ok);
    CHECK(worker_sum_ok);

    struct sigaction sa = {0};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
    page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(page != MAP_FAILED);
    page[0] = 1;
    CHECK(pthread_create(&t, NULL, reader, NULL) == 0);
    while (!spinning)
        usleep(1000);
    /* Again here, after pthread_create has restored this thread's mask (elfuse: the
     * process's mask). */
    sigset_t segv;
    sigemptyset(&segv);
    sigaddset(&segv, SIGSEGV);
    pthread_sigmask(SIG_UNBLOCK, &segv, NULL);
    CHECK(mprotect(page, 4096, PROT_NONE) == 0);
    void *n;
    CHECK(pthread_join(t, &n) == 0);
    CHECK(faulted == 1);
    return report();
}
