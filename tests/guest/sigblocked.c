/* Signals that every thread blocks stay pending until taken (signalfd, sigtimedwait,
 * sigwaitinfo), whoever sends them: another process (a forked child's kill and sigqueue
 * of its parent) or the process itself (a process-directed rt_sigqueueinfo). They must
 * never end the process by their default action.
 */
#include "check.h"
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void *waiter(void *arg)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN);
    siginfo_t si;
    struct timespec ts = {10, 0};
    int r = sigtimedwait(&set, &si, &ts);
    long *out = arg;
    out[0] = r;
    out[1] = si.si_value.sival_int;
    out[2] = si.si_code;
    return 0;
}

int main(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGRTMIN);
    sigaddset(&set, SIGRTMIN + 1);
    sigaddset(&set, SIGTERM);
    CHECK(sigprocmask(SIG_BLOCK, &set, 0) == 0);

    /* (a) A child's kill of its blocked parent, read through a signalfd. */
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, SIGUSR2);
    int sfd = signalfd(-1, &one, SFD_CLOEXEC);
    CHECK(sfd >= 0);
    pid_t c = fork();
    if (c == 0) {
        kill(getppid(), SIGUSR2);
        _exit(0);
    }
    int st;
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st));
    struct signalfd_siginfo ssi;
    CHECK(read(sfd, &ssi, sizeof ssi) == sizeof ssi);
    CHECK(ssi.ssi_signo == SIGUSR2 && ssi.ssi_pid == (unsigned)c && ssi.ssi_code == SI_USER);
    close(sfd);

    /* A child's sigqueue of a real-time signal and a SIGTERM, both blocked: pending. */
    c = fork();
    if (c == 0) {
        union sigval v = {.sival_int = 77};
        sigqueue(getppid(), SIGRTMIN + 1, v);
        kill(getppid(), SIGTERM);
        _exit(0);
    }
    CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st));
    siginfo_t si;
    sigset_t rt1;
    sigemptyset(&rt1);
    sigaddset(&rt1, SIGRTMIN + 1);
    struct timespec ts = {10, 0};
    CHECK(sigtimedwait(&rt1, &si, &ts) == SIGRTMIN + 1);
    CHECK(si.si_code == SI_QUEUE && si.si_value.sival_int == 77 && si.si_pid == c);
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    CHECK(sigtimedwait(&term, &si, &ts) == SIGTERM && si.si_pid == c);

    /* (b) A process-directed rt_sigqueueinfo to itself while every thread blocks the
     * signal: a worker waiting in sigtimedwait takes it. */
    long got[3] = {0};
    pthread_t t;
    CHECK(pthread_create(&t, 0, waiter, got) == 0);
    siginfo_t q;
    memset(&q, 0, sizeof q);
    q.si_signo = SIGRTMIN;
    q.si_code = SI_QUEUE;
    q.si_pid = getpid();
    q.si_uid = getuid();
    q.si_value.sival_int = 42;
    CHECK(syscall(SYS_rt_sigqueueinfo, getpid(), SIGRTMIN, &q) == 0);
    pthread_join(t, 0);
    CHECK(got[0] == SIGRTMIN && got[1] == 42 && got[2] == SI_QUEUE);

    /* Sent to itself before anyone waits: pending, then taken. */
    union sigval v = {.sival_int = 9};
    CHECK(sigqueue(getpid(), SIGRTMIN, v) == 0);
    sigset_t pend;
    CHECK(sigpending(&pend) == 0 && sigismember(&pend, SIGRTMIN));
    sigset_t rt0;
    sigemptyset(&rt0);
    sigaddset(&rt0, SIGRTMIN);
    CHECK(sigtimedwait(&rt0, &si, &ts) == SIGRTMIN && si.si_value.sival_int == 9);
    return report();
}
