/* Asynchronous signals: thread-directed delivery, preemption of a spinning thread,
 * sigsuspend, sigtimedwait, sigqueue values, real-time queueing, SA_RESTART and EINTR
 * of blocking calls, nanosleep's time left, ppoll's temporary mask.
 *
 * A helper thread sends each signal while the main thread is blocked (it waits for a
 * flag the main thread sets just before blocking, then 100 ms more). */
#include "check.h"
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static atomic_int hits, spin_stop, about_to_block;
static atomic_long handler_tid;
static int values[8];
static atomic_int nvalues;
static int last_code;
static atomic_int wrote; /* the shooter's write (it prints nothing: output order) */

static long tid(void) { return syscall(SYS_gettid); }

static void on_sig(int sig)
{
    (void)sig;
    atomic_store(&handler_tid, tid());
    atomic_fetch_add(&hits, 1);
    atomic_store(&spin_stop, 1);
}

static void on_info(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    int n = atomic_fetch_add(&nvalues, 1);
    if (n < 8)
        values[n] = si->si_value.sival_int;
    last_code = si->si_code;
}

static void handle(int sig, int flags)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_sig;
    sa.sa_flags = flags;
    sigaction(sig, &sa, NULL);
}

static void mask(int how, int sig)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    pthread_sigmask(how, &s, NULL);
}

static int blocked(int sig)
{
    sigset_t s;
    pthread_sigmask(SIG_BLOCK, NULL, &s);
    return sigismember(&s, sig);
}

static void msleep(int ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0)
        ;
}

/* --- a helper that signals a thread once it is about to block --- */
struct shot {
    long target;
    int sig;
    int then_write; /* fd to write one byte to 50 ms after the signal, or -1 */
    int process;    /* kill() the process instead of tgkill() the target */
};

static void *shooter(void *arg)
{
    struct shot *s = arg;
    while (!atomic_load(&about_to_block))
        sched_yield();
    msleep(100);
    if (s->process)
        kill(getpid(), s->sig);
    else
        syscall(SYS_tgkill, getpid(), s->target, s->sig);
    if (s->then_write >= 0) {
        msleep(50);
        atomic_store(&wrote, write(s->then_write, "x", 1) == 1);
    }
    return NULL;
}

static pthread_t shoot(struct shot *s)
{
    pthread_t t;
    atomic_store(&about_to_block, 0);
    pthread_create(&t, NULL, shooter, s);
    return t;
}

/* --- tgkill reaches the chosen thread --- */
static atomic_long worker_tid;

static void *waiter(void *arg)
{
    (void)arg;
    atomic_store(&worker_tid, tid());
    while (!atomic_load(&spin_stop))
        sched_yield();
    return NULL;
}

static void *spinner(void *arg)
{
    (void)arg;
    volatile unsigned long n = 0;
    atomic_store(&worker_tid, tid());
    while (!atomic_load_explicit(&spin_stop, memory_order_relaxed))
        n++; /* no syscall: only an asynchronous kick can deliver the signal */
    return NULL;
}

static void thread_directed(void *(*body)(void *), const char *what)
{
    pthread_t t;
    atomic_store(&spin_stop, 0);
    atomic_store(&worker_tid, 0);
    atomic_store(&handler_tid, 0);
    pthread_create(&t, NULL, body, NULL);
    while (!atomic_load(&worker_tid))
        sched_yield();
    msleep(20);
    CHECK(syscall(SYS_tgkill, getpid(), atomic_load(&worker_tid), SIGUSR1) == 0);
    for (int i = 0; i < 500 && !atomic_load(&spin_stop); i++)
        msleep(10);
    int ok = atomic_load(&spin_stop) && atomic_load(&handler_tid) == atomic_load(&worker_tid);
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) {
        fflush(stdout);
        _exit(1); /* the spinner would never end */
    }
    g_checks++;
    pthread_join(t, NULL);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    long me = tid();
    handle(SIGUSR1, 0);
    thread_directed(waiter, "tgkill runs the handler on the target thread");
    thread_directed(spinner, "a thread spinning without syscalls is preempted");

    /* sigsuspend: a pending blocked signal, then one sent while suspended. */
    mask(SIG_BLOCK, SIGUSR1);
    atomic_store(&hits, 0);
    raise(SIGUSR1);
    CHECK(atomic_load(&hits) == 0);
    sigset_t none;
    sigemptyset(&none);
    CHECK_ERR(sigsuspend(&none), EINTR);
    CHECK(atomic_load(&hits) == 1);
    CHECK(blocked(SIGUSR1));
    struct shot s = {me, SIGUSR1, -1, 1};
    pthread_t h = shoot(&s);
    atomic_store(&about_to_block, 1);
    CHECK_ERR(sigsuspend(&none), EINTR);
    pthread_join(h, NULL);
    CHECK(atomic_load(&hits) == 2);
    CHECK(blocked(SIGUSR1));

    /* sigtimedwait / sigwaitinfo */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    mask(SIG_BLOCK, SIGUSR2);
    struct timespec short_wait = {0, 50000000};
    CHECK_ERR(sigtimedwait(&set, NULL, &short_wait), EAGAIN);
    raise(SIGUSR2);
    siginfo_t si;
    struct timespec one_s = {1, 0};
    CHECK(sigtimedwait(&set, &si, &one_s) == SIGUSR2);
    CHECK(si.si_signo == SIGUSR2);
    /* glibc's wrapper reports raise()'s SI_TKILL as SI_USER. */
    CHECK(si.si_code == SI_TKILL || si.si_code == SI_USER);
    CHECK(si.si_pid == getpid());
    s = (struct shot){me, SIGUSR2, -1, 1};
    h = shoot(&s);
    atomic_store(&about_to_block, 1);
    CHECK(sigwaitinfo(&set, &si) == SIGUSR2);
    CHECK(si.si_code == SI_USER);
    pthread_join(h, NULL);
    s = (struct shot){me, SIGUSR2, -1, 1};
    h = shoot(&s);
    atomic_store(&about_to_block, 1);
    struct timespec five_s = {5, 0};
    CHECK(sigtimedwait(&set, &si, &five_s) == SIGUSR2);
    pthread_join(h, NULL);

    /* sigqueue: the value arrives; real-time signals queue, in order. */
    struct sigaction sa = {0};
    sa.sa_sigaction = on_info;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGRTMIN + 1, &sa, NULL);
    sigaction(SIGPROF, &sa, NULL);
    union sigval v = {.sival_int = 42};
    CHECK(sigqueue(getpid(), SIGPROF, v) == 0);
    CHECK(atomic_load(&nvalues) == 1 && values[0] == 42 && last_code == SI_QUEUE);
    atomic_store(&nvalues, 0);
    mask(SIG_BLOCK, SIGRTMIN + 1);
    for (int i = 1; i <= 3; i++) {
        v.sival_int = i;
        CHECK(sigqueue(getpid(), SIGRTMIN + 1, v) == 0);
    }
    sigset_t pend;
    sigpending(&pend);
    CHECK(sigismember(&pend, SIGRTMIN + 1));
    CHECK(atomic_load(&nvalues) == 0);
    mask(SIG_UNBLOCK, SIGRTMIN + 1);
    CHECK(atomic_load(&nvalues) == 3);
    CHECK(values[0] == 1 && values[1] == 2 && values[2] == 3);
    /* Standard signals do not queue. */
    atomic_store(&nvalues, 0);
    mask(SIG_BLOCK, SIGPROF);
    for (int i = 1; i <= 3; i++) {
        v.sival_int = i;
        sigqueue(getpid(), SIGPROF, v);
    }
    mask(SIG_UNBLOCK, SIGPROF);
    CHECK(atomic_load(&nvalues) == 1 && values[0] == 1);

    /* read on a pipe: restarted after an SA_RESTART handler, EINTR without. */
    mask(SIG_UNBLOCK, SIGUSR1);
    int p[2];
    CHECK(pipe(p) == 0);
    char c = 0;
    handle(SIGUSR1, SA_RESTART);
    atomic_store(&hits, 0);
    s = (struct shot){me, SIGUSR1, p[1], 0};
    h = shoot(&s);
    atomic_store(&about_to_block, 1);
    CHECK(read(p[0], &c, 1) == 1 && c == 'x');
    pthread_join(h, NULL);
    CHECK(atomic_load(&wrote));
    CHECK(atomic_load(&hits) == 1);
    handle(SIGUSR1, 0);
    h = shoot(&s);
    atomic_store(&about_to_block, 1);
    CHECK_ERR(read(p[0], &c, 1), EINTR);
    CHECK(atomic_load(&hits) == 2);
    pthread_join(h, NULL);
    CHECK(read(p[0], &c, 1) == 1);

    /* nanosleep: EINTR after a handler, with the time left. */
    s = (struct shot){me, SIGUSR1, -1, 0};
    h = shoot(&s);
    atomic_store(&about_to_block, 1);
    struct timespec req = {2, 0}, rem = {0, 0};
    CHECK_ERR(nanosleep(&req, &rem), EINTR);
    pthread_join(h, NULL);
    CHECK(atomic_load(&hits) == 3);
    CHECK(rem.tv_sec == 1 && rem.tv_nsec > 0);

    /* Even with SA_RESTART a handler ends nanosleep (EINTR), as Linux. */
    handle(SIGUSR1, SA_RESTART);
    h = shoot(&s);
    atomic_store(&about_to_block, 1);
    rem.tv_sec = 0;
    CHECK_ERR(nanosleep(&req, &rem), EINTR);
    pthread_join(h, NULL);
    CHECK(atomic_load(&hits) == 4);
    CHECK(rem.tv_sec == 1);
    handle(SIGUSR1, 0);
    /* A signal that runs no handler (SIGCONT's default) does not end it: the sleep goes
     * on for the time left (under elfuse: interrupted, then restart_syscall). */
    struct shot cont = {me, SIGCONT, -1, 0};
    h = shoot(&cont);
    atomic_store(&about_to_block, 1);
    struct timespec t0, t1, third = {0, 300000000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(nanosleep(&third, NULL) == 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_join(h, NULL);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    CHECK(ms >= 300 && ms < 1000);

    /* ppoll: its mask lets a blocked signal through for the call only. */
    mask(SIG_BLOCK, SIGUSR1);
    struct pollfd pf = {p[0], POLLIN, 0};
    s = (struct shot){me, SIGUSR1, -1, 1};
    h = shoot(&s);
    atomic_store(&about_to_block, 1);
    CHECK_ERR(ppoll(&pf, 1, &five_s, &none), EINTR);
    pthread_join(h, NULL);
    CHECK(atomic_load(&hits) == 5);
    CHECK(blocked(SIGUSR1));
    /* Already pending: ppoll returns at once. */
    raise(SIGUSR1);
    CHECK(atomic_load(&hits) == 5);
    CHECK_ERR(ppoll(&pf, 1, &five_s, &none), EINTR);
    CHECK(atomic_load(&hits) == 6);
    /* A mask that keeps it blocked: the timeout runs out, it stays pending. */
    raise(SIGUSR1);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, SIGUSR1);
    CHECK(ppoll(&pf, 1, &short_wait, &only) == 0);
    CHECK(atomic_load(&hits) == 6);
    mask(SIG_UNBLOCK, SIGUSR1);
    CHECK(atomic_load(&hits) == 7);

    /* pidfd_send_signal to itself. */
    int pfd = syscall(SYS_pidfd_open, getpid(), 0);
    CHECK(pfd >= 0);
    CHECK(syscall(SYS_pidfd_send_signal, pfd, SIGUSR1, NULL, 0) == 0);
    CHECK(atomic_load(&hits) == 8);
    return report();
}
