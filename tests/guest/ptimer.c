/* ptimer [MODE]: POSIX timers (timer_create, timer_settime, timer_gettime,
 * timer_getoverrun, timer_delete).
 *
 *   (none)   argument checks, SIGEV_SIGNAL periodic with si_value, timers on the CPU
 *            clocks, timer_gettime/old values/TIMER_ABSTIME, SIGEV_NONE,
 *            timer_delete stops it, SIGEV_THREAD_ID to a chosen thread, a fork child
 *            without timers
 *   thread   SIGEV_THREAD: the libc runs the notify function on a helper thread (built on
 *            SIGEV_THREAD_ID and sigwaitinfo)
 *   strict   (elfuse-only) overruns counted while the signal is blocked (si_overrun,
 *            timer_getoverrun); timer ids count from 0 and si_timerid is the id.
 *            qemu-user differs from Linux there: it takes every host expiry as a new
 *            signal (overrun 0), hands out its own ids and passes the host's si_timerid
 *
 * Every check is a yes/no with wide timing margins: the output is the same under
 * qemu-aarch64. */
#include "check.h"
#include "timing.h"
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

static volatile sig_atomic_t hits;
static volatile int last_code, last_value, last_overrun, last_timerid, last_getoverrun;
static volatile pid_t last_tid;
static timer_t cur_timer;

static void on_sig(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    hits++;
    last_code = si->si_code;
    last_value = si->si_value.sival_int;
    last_overrun = si->si_overrun;
    last_timerid = si->si_timerid;
    last_getoverrun = timer_getoverrun(cur_timer);
    last_tid = (pid_t)syscall(SYS_gettid);
}

static void handle(int sig)
{
    handle_siginfo(sig, on_sig);
}

static int spin_until(int n, double secs)
{
    return spin_for(&hits, n, secs);
}

static struct itimerspec its(long vs, long vns, long is, long ins)
{
    struct itimerspec v = {{is, ins}, {vs, vns}};
    return v;
}

static timer_t make(int notify, int sig, int value)
{
    struct sigevent ev = {0};
    ev.sigev_notify = notify;
    ev.sigev_signo = sig;
    ev.sigev_value.sival_int = value;
    timer_t t = 0;
    CHECK(timer_create(CLOCK_MONOTONIC, &ev, &t) == 0);
    return t;
}

static void args(void)
{
    timer_t t;
    struct sigevent ev = {0};
    struct itimerspec v;
    CHECK_ERR(timer_create(12345, NULL, &t), EINVAL);
    ev.sigev_notify = 99;
    CHECK_ERR(timer_create(CLOCK_MONOTONIC, &ev, &t), EINVAL);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = 0;
    CHECK_ERR(timer_create(CLOCK_MONOTONIC, &ev, &t), EINVAL);
    ev.sigev_signo = 65;
    CHECK_ERR(timer_create(CLOCK_MONOTONIC, &ev, &t), EINVAL);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGUSR1;
    ev.sigev_notify_thread_id = 0x7ffffff0;
    CHECK_ERR(timer_create(CLOCK_MONOTONIC, &ev, &t), EINVAL);

    clockid_t clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME,
                          CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID};
    int all = 1;
    for (unsigned i = 0; i < sizeof clocks / sizeof *clocks; i++) {
        if (timer_create(clocks[i], NULL, &t) != 0 || timer_delete(t) != 0)
            all = 0;
    }
    CHECK(all);

    CHECK(timer_create(CLOCK_MONOTONIC, NULL, &t) == 0);
    CHECK(timer_gettime(t, &v) == 0 && v.it_value.tv_sec == 0 && v.it_value.tv_nsec == 0);
    v = its(0, 1000000000, 0, 0);
    CHECK_ERR(timer_settime(t, 0, &v, NULL), EINVAL);
    v = its(-1, 0, 0, 0);
    CHECK_ERR(timer_settime(t, 0, &v, NULL), EINVAL);
    v = its(1, 0, 0, -1);
    CHECK_ERR(timer_settime(t, 0, &v, NULL), EINVAL);
    CHECK_ERR(timer_gettime(t, (void *)8), EFAULT);
    CHECK(timer_getoverrun(t) == 0);
    CHECK(timer_delete(t) == 0);
}

static void periodic_with_value(void)
{
    handle(SIGUSR1);
    hits = 0;
    timer_t t = make(SIGEV_SIGNAL, SIGUSR1, 42);
    cur_timer = t;
    struct itimerspec v = its(0, 10000000, 0, 10000000);
    CHECK(timer_settime(t, 0, &v, NULL) == 0);
    CHECK(spin_until(5, 5.0));
    CHECK(last_code == SI_TIMER);
    CHECK(last_value == 42);
    CHECK(timer_delete(t) == 0);
    int seen = hits;
    spin_until(seen + 2, 0.1);
    CHECK(hits <= seen + 1); /* deleted: at most one already queued */
}

/* Timers on the CPU clocks fire on a CPU-bound loop. */
static void cpu_clocks(void)
{
    handle(SIGUSR1);
    clockid_t clocks[] = {CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID};
    for (unsigned i = 0; i < 2; i++) {
        hits = 0;
        struct sigevent ev = {0};
        ev.sigev_notify = SIGEV_SIGNAL;
        ev.sigev_signo = SIGUSR1;
        ev.sigev_value.sival_int = 5 + i;
        timer_t t;
        CHECK(timer_create(clocks[i], &ev, &t) == 0);
        cur_timer = t;
        struct itimerspec v = its(0, 10000000, 0, 10000000);
        CHECK(timer_settime(t, 0, &v, NULL) == 0);
        CHECK(spin_until(3, 10.0));
        CHECK(last_code == SI_TIMER && last_value == 5 + (int)i);
        CHECK(timer_delete(t) == 0);
    }
}

static void overrun(void)
{
    handle(SIGUSR2);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, NULL);
    hits = 0;
    timer_t t = make(SIGEV_SIGNAL, SIGUSR2, 7);
    cur_timer = t;
    struct itimerspec v = its(0, 5000000, 0, 5000000);
    CHECK(timer_settime(t, 0, &v, NULL) == 0);
    double end = now() + 0.2;
    while (now() < end) {
    }
    CHECK(hits == 0);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    CHECK(hits >= 1);
    CHECK(last_code == SI_TIMER && last_value == 7);
    /* ~40 expiries in 200 ms; one was queued, the rest are overruns. */
    CHECK(last_overrun >= 10 && last_overrun <= 200);
    CHECK(last_getoverrun == last_overrun);
    v = its(0, 0, 0, 0);
    CHECK(timer_settime(t, 0, &v, NULL) == 0);
    CHECK(timer_delete(t) == 0);
}

static void settings(void)
{
    timer_t t = make(SIGEV_SIGNAL, SIGUSR1, 1);
    struct itimerspec v = its(10, 0, 1, 500), old, cur;
    CHECK(timer_settime(t, 0, &v, NULL) == 0);
    CHECK(timer_gettime(t, &cur) == 0);
    CHECK(cur.it_value.tv_sec == 9 && cur.it_interval.tv_sec == 1 &&
          cur.it_interval.tv_nsec == 500);
    v = its(20, 0, 0, 0);
    CHECK(timer_settime(t, 0, &v, &old) == 0);
    CHECK(old.it_value.tv_sec == 9 && old.it_interval.tv_sec == 1);
    /* Absolute, in the past: fires at once. */
    handle(SIGUSR1);
    hits = 0;
    struct timespec n;
    clock_gettime(CLOCK_MONOTONIC, &n);
    v = its(n.tv_sec - 1, n.tv_nsec, 0, 0);
    CHECK(timer_settime(t, TIMER_ABSTIME, &v, &old) == 0);
    CHECK(old.it_value.tv_sec == 19);
    CHECK(spin_until(1, 2.0));
    CHECK(timer_gettime(t, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);
    /* Absolute, 300 ms ahead. */
    clock_gettime(CLOCK_MONOTONIC, &n);
    n.tv_nsec += 300000000;
    if (n.tv_nsec >= 1000000000) {
        n.tv_sec++;
        n.tv_nsec -= 1000000000;
    }
    v = its(n.tv_sec, n.tv_nsec, 0, 0);
    CHECK(timer_settime(t, TIMER_ABSTIME, &v, NULL) == 0);
    CHECK(timer_gettime(t, &cur) == 0 && cur.it_value.tv_sec == 0 &&
          cur.it_value.tv_nsec > 200000000 && cur.it_value.tv_nsec <= 300000000);
    CHECK(spin_until(2, 3.0));
    CHECK(timer_delete(t) == 0);
}

static void sigev_none(void)
{
    hits = 0;
    timer_t t = make(SIGEV_NONE, 0, 0);
    struct itimerspec v = its(0, 20000000, 0, 50000000), cur;
    CHECK(timer_settime(t, 0, &v, NULL) == 0);
    spin_until(1, 0.1); /* 100 ms: two periods after the first expiry */
    CHECK(hits == 0);
    CHECK(timer_gettime(t, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 &&
          cur.it_value.tv_nsec <= 50000000);
    v = its(0, 10000000, 0, 0);
    CHECK(timer_settime(t, 0, &v, NULL) == 0);
    spin_until(1, 0.05);
    CHECK(timer_gettime(t, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);
    CHECK(timer_delete(t) == 0);
}

static volatile pid_t worker_tid;
static volatile int worker_stop;

static void *worker(void *arg)
{
    (void)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    worker_tid = (pid_t)syscall(SYS_gettid);
    double end = now() + 5.0;
    while (!worker_stop && hits == 0 && now() < end) {
    }
    return NULL;
}

static void thread_id(void)
{
    handle(SIGUSR2);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    hits = 0;
    last_tid = 0;
    pthread_t th;
    pthread_create(&th, NULL, worker, NULL);
    while (!worker_tid) {
    }
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGUSR2;
    ev.sigev_value.sival_int = 99;
    ev.sigev_notify_thread_id = worker_tid;
    timer_t t = 0;
    CHECK(timer_create(CLOCK_MONOTONIC, &ev, &t) == 0);
    cur_timer = t;
    struct itimerspec v = its(0, 20000000, 0, 0);
    CHECK(timer_settime(t, 0, &v, NULL) == 0);
    pthread_join(th, NULL);
    CHECK(hits == 1);
    CHECK(last_tid == worker_tid);
    CHECK(last_code == SI_TIMER && last_value == 99);
    CHECK(timer_delete(t) == 0);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static void fork_child_has_none(void)
{
    timer_t t = make(SIGEV_SIGNAL, SIGUSR1, 1);
    struct itimerspec v = its(10, 0, 0, 0), cur;
    CHECK(timer_settime(t, 0, &v, NULL) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        errno = 0;
        int r = timer_gettime(t, &cur);
        _exit(r == -1 && errno == EINVAL ? 0 : 1);
    }
    int st = -1;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(timer_gettime(t, &cur) == 0 && cur.it_value.tv_sec >= 9);
    CHECK(timer_delete(t) == 0);
}

static volatile int notified, notified_value;

static void notify(union sigval v)
{
    notified_value = v.sival_int;
    __atomic_fetch_add(&notified, 1, __ATOMIC_SEQ_CST);
}

static int mode_thread(void)
{
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_THREAD;
    ev.sigev_notify_function = notify;
    ev.sigev_value.sival_int = 1234;
    timer_t t;
    CHECK(timer_create(CLOCK_MONOTONIC, &ev, &t) == 0);
    struct itimerspec v = its(0, 20000000, 0, 20000000);
    CHECK(timer_settime(t, 0, &v, NULL) == 0);
    double end = now() + 5.0;
    while (notified < 3 && now() < end) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    CHECK(notified >= 3);
    CHECK(notified_value == 1234);
    CHECK(timer_delete(t) == 0);
    return report();
}

static int mode_strict(void)
{
    timer_t a, b, c;
    CHECK(timer_create(CLOCK_MONOTONIC, NULL, &a) == 0 && (intptr_t)a == 0);
    CHECK(timer_create(CLOCK_MONOTONIC, NULL, &b) == 0 && (intptr_t)b == 1);
    CHECK(timer_delete(a) == 0);
    /* No sigevent (raw: glibc passes its own): SIGALRM with si_value = the id. */
    int kid = -1;
    CHECK(syscall(SYS_timer_create, CLOCK_MONOTONIC, NULL, &kid) == 0 && kid == 2);
    c = (timer_t)(intptr_t)kid;
    struct sigaction sa = {0};
    sa.sa_sigaction = on_sig;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGALRM, &sa, NULL);
    hits = 0;
    cur_timer = c;
    struct itimerspec v = its(0, 10000000, 0, 0);
    CHECK(timer_settime(c, 0, &v, NULL) == 0);
    CHECK(spin_until(1, 3.0));
    CHECK(last_code == SI_TIMER && last_timerid == 2 && last_value == 2);
    overrun();
    return report();
}

/* A timer's signal read through a signalfd: the timer fields, not a sender's. */
static void through_signalfd(void)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 3);
    sigprocmask(SIG_BLOCK, &set, &old);
    int fd = signalfd(-1, &set, SFD_CLOEXEC);
    CHECK(fd >= 0);
    timer_t t = make(SIGEV_SIGNAL, SIGRTMIN + 3, 99);
    struct itimerspec s = its(0, 1000000, 0, 0);
    CHECK(timer_settime(t, 0, &s, NULL) == 0);
    struct signalfd_siginfo si;
    CHECK(read(fd, &si, sizeof si) == sizeof si);
    CHECK(si.ssi_signo == (uint32_t)(SIGRTMIN + 3));
    CHECK(si.ssi_code == SI_TIMER);
    CHECK(si.ssi_int == 99 && si.ssi_overrun == 0 && si.ssi_pid == 0);
    timer_delete(t);
    close(fd);
    sigprocmask(SIG_SETMASK, &old, NULL);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && !strcmp(argv[1], "thread"))
        return mode_thread();
    if (argc > 1 && !strcmp(argv[1], "strict"))
        return mode_strict();
    args();
    periodic_with_value();
    cpu_clocks();
    settings();
    sigev_none();
    thread_id();
    fork_child_has_none();
    through_signalfd();
    return report();
}
