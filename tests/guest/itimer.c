/* itimer [MODE]: interval timers (setitimer/getitimer) and alarm().
 *
 *   (none)     argument checks, ITIMER_REAL periodic counted by a handler while the
 *              thread spins, getitimer counting down, alarm()'s return values,
 *              ITIMER_PROF and ITIMER_VIRTUAL on a CPU-bound loop, a fork child
 *              without timers
 *   forks      100 forks of a guest with 3 busy threads while a 1 ms itimer and a
 *              0.5 ms POSIX timer fire: no hang, every child without itimers
 *   alarm      alarm(1) then sigsuspend until SIGALRM
 *   eintr      a SIGALRM handler interrupts nanosleep (EINTR, remaining time written)
 *   exec       (elfuse-only) itimers survive execve; POSIX timers do not
 *   after-exec ID   the program run by `exec`
 *
 * Timings are loose: every check is a yes/no with wide margins, so the output is the
 * same under qemu-aarch64. */
#include "check.h"
#include "timing.h"
#include <signal.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <pthread.h>
#include <unistd.h>

static volatile sig_atomic_t hits[65];
static volatile int last_code[65];

static void on_sig(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    hits[sig]++;
    last_code[sig] = si->si_code;
}

static void handle(int sig)
{
    handle_siginfo(sig, on_sig);
}

/* Spins (no syscalls but the vDSO clock) until `sig` was seen `n` times or `secs`
 * passed. */
static int spin_until(int sig, int n, double secs)
{
    return spin_for(&hits[sig], n, secs);
}

static struct itimerval iv(long vs, long vus, long is, long ius)
{
    struct itimerval v = {{is, ius}, {vs, vus}};
    return v;
}

static void args(void)
{
    struct itimerval v, old;
    CHECK(getitimer(ITIMER_REAL, &v) == 0 && v.it_value.tv_sec == 0 && v.it_value.tv_usec == 0);
    CHECK_ERR(getitimer(3, &v), EINVAL);
    CHECK_ERR(getitimer(-1, &v), EINVAL);
    v = iv(0, 1000000, 0, 0);
    CHECK_ERR(setitimer(ITIMER_REAL, &v, NULL), EINVAL);
    v = iv(1, 0, 0, 1000000);
    CHECK_ERR(setitimer(ITIMER_REAL, &v, NULL), EINVAL);
    v = iv(-1, 0, 0, 0);
    CHECK_ERR(setitimer(ITIMER_REAL, &v, NULL), EINVAL);
    v = iv(0, 0, 0, 0);
    CHECK_ERR(setitimer(7, &v, NULL), EINVAL);
    CHECK_ERR(getitimer(ITIMER_REAL, (void *)8), EFAULT);
    /* An unwritable old value is EFAULT, after the change (as Linux). */
    v = iv(30, 0, 0, 0);
    CHECK_ERR(setitimer(ITIMER_REAL, &v, (void *)8), EFAULT);
    CHECK(getitimer(ITIMER_REAL, &old) == 0 && old.it_value.tv_sec >= 28);
    /* A zero value disarms; ITIMER_REAL then drops the interval, the CPU timers keep it. */
    v = iv(0, 0, 2, 500000);
    CHECK(setitimer(ITIMER_REAL, &v, NULL) == 0);
    CHECK(getitimer(ITIMER_REAL, &old) == 0);
    CHECK(old.it_interval.tv_sec == 0 && old.it_interval.tv_usec == 0);
    CHECK(old.it_value.tv_sec == 0 && old.it_value.tv_usec == 0);
    CHECK(setitimer(ITIMER_PROF, &v, NULL) == 0);
    CHECK(getitimer(ITIMER_PROF, &old) == 0);
    CHECK(old.it_interval.tv_sec == 2 && old.it_interval.tv_usec == 500000);
    CHECK(old.it_value.tv_sec == 0 && old.it_value.tv_usec == 0);
    v = iv(0, 0, 0, 0);
    CHECK(setitimer(ITIMER_PROF, &v, &old) == 0);
    CHECK(old.it_interval.tv_sec == 2 && old.it_interval.tv_usec == 500000);
}

static void real_periodic(void)
{
    handle(SIGALRM);
    hits[SIGALRM] = 0;
    struct itimerval v = iv(0, 20000, 0, 20000), old;
    CHECK(setitimer(ITIMER_REAL, &v, NULL) == 0);
    CHECK(spin_until(SIGALRM, 5, 5.0));
    CHECK(last_code[SIGALRM] == SI_KERNEL);
    v = iv(0, 0, 0, 0);
    CHECK(setitimer(ITIMER_REAL, &v, &old) == 0);
    CHECK(old.it_interval.tv_sec == 0 && old.it_interval.tv_usec == 20000);
    CHECK(old.it_value.tv_sec == 0 && old.it_value.tv_usec <= 20000);
    int seen = hits[SIGALRM];
    spin_until(SIGALRM, seen + 1, 0.1);
    CHECK(hits[SIGALRM] <= seen + 1); /* disarmed: at most one already in flight */
}

static void countdown(void)
{
    struct itimerval v = iv(5, 0, 0, 0), a, b;
    CHECK(setitimer(ITIMER_REAL, &v, NULL) == 0);
    CHECK(getitimer(ITIMER_REAL, &a) == 0);
    CHECK(a.it_value.tv_sec == 4 || (a.it_value.tv_sec == 5 && a.it_value.tv_usec == 0));
    spin_until(0, 1, 0.05);
    CHECK(getitimer(ITIMER_REAL, &b) == 0);
    long ua = a.it_value.tv_sec * 1000000L + a.it_value.tv_usec;
    long ub = b.it_value.tv_sec * 1000000L + b.it_value.tv_usec;
    CHECK(ub < ua - 40000 && ub > 3000000);
    /* alarm() is setitimer(ITIMER_REAL) underneath: it sees and replaces this one. */
    CHECK(alarm(10) == 5);
    CHECK(alarm(0) == 10);
    CHECK(getitimer(ITIMER_REAL, &b) == 0 && b.it_value.tv_sec == 0 && b.it_value.tv_usec == 0);
}

static void cpu_timer(int which, int sig)
{
    handle(sig);
    hits[sig] = 0;
    struct itimerval v = iv(0, 10000, 0, 10000), cur;
    CHECK(setitimer(which, &v, NULL) == 0);
    CHECK(getitimer(which, &cur) == 0 && cur.it_interval.tv_usec == 10000);
    CHECK(spin_until(sig, 3, 10.0));
    CHECK(last_code[sig] == SI_KERNEL);
    v = iv(0, 0, 0, 0);
    CHECK(setitimer(which, &v, NULL) == 0);
}

static void fork_child_has_none(void)
{
    struct itimerval v = iv(10, 0, 1, 0), c;
    CHECK(setitimer(ITIMER_REAL, &v, NULL) == 0);
    CHECK(setitimer(ITIMER_PROF, &v, NULL) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        int bad = 0;
        for (int w = ITIMER_REAL; w <= ITIMER_PROF; w++) {
            if (getitimer(w, &c) != 0 || c.it_value.tv_sec || c.it_value.tv_usec ||
                c.it_interval.tv_sec || c.it_interval.tv_usec)
                bad = 1;
        }
        _exit(bad);
    }
    int st = -1;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(getitimer(ITIMER_REAL, &c) == 0 && c.it_value.tv_sec >= 9);
    v = iv(0, 0, 0, 0);
    setitimer(ITIMER_REAL, &v, NULL);
    setitimer(ITIMER_PROF, &v, NULL);
}

static void *busy(void *arg)
{
    (void)arg;
    for (volatile long i = 0; i < 5000000; i++) {
    }
    return NULL;
}

static int mode_forks(void)
{
    handle(SIGALRM);
    handle(SIGUSR1);
    struct itimerval v = iv(0, 1000, 0, 1000);
    CHECK(setitimer(ITIMER_REAL, &v, NULL) == 0);
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR1;
    timer_t t;
    CHECK(timer_create(CLOCK_MONOTONIC, &ev, &t) == 0);
    struct itimerspec s = {{0, 500000}, {0, 500000}};
    CHECK(timer_settime(t, 0, &s, NULL) == 0);
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, busy, NULL);
    int ok = 0;
    for (int i = 0; i < 100; i++) {
        pid_t p = fork();
        if (p == 0) {
            struct itimerval c;
            _exit(getitimer(ITIMER_REAL, &c) != 0 || c.it_value.tv_usec != 0);
        }
        int st;
        if (waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0)
            ok++;
    }
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    CHECK(ok == 100);
    CHECK(hits[SIGALRM] > 0 && hits[SIGUSR1] > 0);
    return report();
}

static int mode_alarm(void)
{
    handle(SIGALRM);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    sigprocmask(SIG_BLOCK, &block, &old);
    CHECK(alarm(1) == 0);
    double t0 = now();
    sigset_t wait = old;
    sigdelset(&wait, SIGALRM);
    CHECK_ERR(sigsuspend(&wait), EINTR);
    double dt = now() - t0;
    CHECK(hits[SIGALRM] == 1);
    CHECK(dt > 0.8 && dt < 3.0);
    return report();
}

static int mode_eintr(void)
{
    handle(SIGALRM); /* SA_RESTART does not apply to nanosleep: EINTR */
    struct itimerval v = iv(0, 100000, 0, 0);
    CHECK(setitimer(ITIMER_REAL, &v, NULL) == 0);
    struct timespec req = {3, 0}, rem = {0, 0};
    double t0 = now();
    CHECK_ERR(nanosleep(&req, &rem), EINTR);
    CHECK(now() - t0 < 2.0);
    CHECK(hits[SIGALRM] == 1);
    CHECK(rem.tv_sec >= 1 && rem.tv_sec <= 3);
    return report();
}

static int mode_exec(const char *self)
{
    struct itimerval v = iv(30, 0, 7, 0);
    CHECK(setitimer(ITIMER_REAL, &v, NULL) == 0);
    timer_t t;
    CHECK(timer_create(CLOCK_MONOTONIC, NULL, &t) == 0);
    char id[32];
    snprintf(id, sizeof id, "%ld", (long)(intptr_t)t);
    fflush(stdout);
    char *argv[] = {(char *)self, "after-exec", id, NULL};
    execv(self, argv);
    CHECK(!"execv");
    return report();
}

static int mode_after_exec(const char *id)
{
    struct itimerval c;
    CHECK(getitimer(ITIMER_REAL, &c) == 0);
    CHECK(c.it_value.tv_sec >= 28 && c.it_value.tv_sec <= 30 && c.it_interval.tv_sec == 7);
    struct itimerspec ts;
    timer_t t = (timer_t)(intptr_t)atol(id);
    CHECK_ERR(timer_gettime(t, &ts), EINVAL);
    return report();
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && !strcmp(argv[1], "forks"))
        return mode_forks();
    if (argc > 1 && !strcmp(argv[1], "alarm"))
        return mode_alarm();
    if (argc > 1 && !strcmp(argv[1], "eintr"))
        return mode_eintr();
    if (argc > 1 && !strcmp(argv[1], "exec"))
        return mode_exec(argv[0]);
    if (argc > 2 && !strcmp(argv[1], "after-exec"))
        return mode_after_exec(argv[2]);
    args();
    real_periodic();
    countdown();
    cpu_timer(ITIMER_PROF, SIGPROF);
    cpu_timer(ITIMER_VIRTUAL, SIGVTALRM);
    fork_child_has_none();
    return report();
}
