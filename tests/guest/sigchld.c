/* sigchld MODE: SIGCHLD in the parent and wait4/waitid.
 *   basic  si_code, si_pid, si_status for exit, kill, stop and continue; WNOHANG,
 *          WUNTRACED, WCONTINUED, WNOWAIT, __WALL, P_PID/P_ALL/P_PGID, rusage; SIG_IGN
 *          auto-reaps
 *   flags  SA_NOCLDSTOP, SA_NOCLDWAIT with a handler (elfuse only: qemu-aarch64 7.2
 *          reports stops despite SA_NOCLDSTOP and does not auto-reap for SA_NOCLDWAIT) */
#include "check.h"
#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#define MAXEV 16
static volatile int nev;
static volatile int ev_code[MAXEV], ev_status[MAXEV];
static volatile pid_t ev_pid[MAXEV];

static void on_chld(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (sig != SIGCHLD || nev >= MAXEV)
        return;
    ev_code[nev] = si->si_code;
    ev_status[nev] = si->si_status;
    ev_pid[nev] = si->si_pid;
    nev++;
}

static void handle(int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | flags;
    CHECK(sigaction(SIGCHLD, &sa, NULL) == 0);
}

/* Waits (up to 5 s, making syscalls so that signals are delivered) for `n` events. */
static int events(int n)
{
    for (int i = 0; i < 5000 && nev < n; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return nev >= n;
}

static volatile pid_t victim;
static volatile int alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
    if (victim)
        kill(victim, SIGKILL);
}

static void alarm_in_ms(int ms, int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = flags;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 0}, {0, ms * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static pid_t child_pause(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        for (;;)
            pause();
    }
    return pid;
}

static int basic(void)
{
    int st;
    handle(0);

    /* Exit: CLD_EXITED with the exit code. */
    pid_t pid = fork();
    if (pid == 0)
        _exit(7);
    CHECK(events(1));
    CHECK(ev_code[0] == CLD_EXITED && ev_pid[0] == pid && ev_status[0] == 7);
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    CHECK(wait4(pid, &st, 0, &ru) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 7);
    CHECK(ru.ru_maxrss > 0);

    /* As on Linux, the handler has run by the time waitpid returns. */
    nev = 0;
    pid = fork();
    if (pid == 0)
        _exit(2);
    CHECK(waitpid(pid, &st, 0) == pid && WEXITSTATUS(st) == 2);
    CHECK(nev == 1 && ev_code[0] == CLD_EXITED && ev_status[0] == 2);

    /* A child that dies of a fault: WTERMSIG, and CLD_KILLED (or CLD_DUMPED where a core
     * is written). */
    nev = 0;
    pid = fork();
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        *(volatile int *)8 = 1;
        _exit(1);
    }
    CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
    CHECK(nev == 1 && (ev_code[0] == CLD_KILLED || ev_code[0] == CLD_DUMPED));
    CHECK(ev_status[0] == SIGSEGV && ev_pid[0] == pid);

    /* A fork child gets SIGCHLD from its own child (it has its own watcher). */
    pid = fork();
    if (pid == 0) {
        nev = 0;
        pid_t g = fork();
        if (g == 0)
            _exit(4);
        int ok = waitpid(g, &st, 0) == g && nev == 1 && ev_pid[0] == g && ev_status[0] == 4;
        _exit(ok ? 0 : 1);
    }
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* Stop, continue, kill: CLD_STOPPED/CLD_CONTINUED/CLD_KILLED, and the same through
     * waitpid's WUNTRACED/WCONTINUED. */
    nev = 0;
    pid = child_pause();
    CHECK(kill(pid, SIGSTOP) == 0);
    CHECK(waitpid(pid, &st, WUNTRACED) == pid && WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    CHECK(events(1) && ev_code[0] == CLD_STOPPED && ev_status[0] == SIGSTOP && ev_pid[0] == pid);
    CHECK(kill(pid, SIGCONT) == 0);
    CHECK(waitpid(pid, &st, WCONTINUED) == pid && WIFCONTINUED(st));
    CHECK(events(2) && ev_code[1] == CLD_CONTINUED && ev_status[1] == SIGCONT);
    CHECK(waitpid(pid, &st, WNOHANG | WUNTRACED | WCONTINUED) == 0);
    CHECK(kill(pid, SIGKILL) == 0);
    CHECK(events(3) && ev_code[2] == CLD_KILLED && ev_status[2] == SIGKILL);
    CHECK(waitpid(pid, &st, __WALL) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    CHECK_ERR(waitpid(-1, &st, WNOHANG), ECHILD);

    /* waitid: WNOWAIT leaves the child waitable; P_PGID; WNOHANG with nothing to report. */
    pid = child_pause();
    CHECK(kill(pid, SIGTERM) == 0);
    siginfo_t si;
    memset(&si, 0xff, sizeof si);
    CHECK(waitid(P_PID, pid, &si, WEXITED | WNOWAIT) == 0);
    CHECK(si.si_pid == pid && si.si_code == CLD_KILLED && si.si_status == SIGTERM);
    CHECK(waitid(P_PGID, getpgrp(), &si, WEXITED) == 0 && si.si_pid == pid);
    CHECK_ERR(waitid(P_ALL, 0, &si, WEXITED), ECHILD);
    pid = child_pause();
    memset(&si, 0xff, sizeof si);
    CHECK(waitid(P_ALL, 0, &si, WEXITED | WNOHANG) == 0 && si.si_pid == 0);
    CHECK_ERR(waitid(P_PID, pid, &si, WNOHANG), EINVAL);
    kill(pid, SIGKILL);
    CHECK(waitid(P_PID, pid, &si, WEXITED) == 0 && si.si_code == CLD_KILLED);
    CHECK(si.si_status == SIGKILL && si.si_signo == SIGCHLD);

    /* A handled signal interrupts a blocked wait: EINTR without SA_RESTART; with it the
     * wait resumes (here the handler kills the child, so the wait then reaps it). */
    pid = child_pause();
    victim = 0;
    alarms = 0;
    alarm_in_ms(50, 0);
    CHECK_ERR(waitpid(pid, &st, 0), EINTR);
    CHECK(alarms == 1);
    victim = pid;
    alarm_in_ms(50, SA_RESTART);
    CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    CHECK(alarms == 2);
    victim = 0;

    /* A blocked SIGCHLD read from a signalfd carries the child's status. */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    CHECK(sigprocmask(SIG_BLOCK, &chld, NULL) == 0);
    int sfd = signalfd(-1, &chld, 0);
    CHECK(sfd >= 0);
    pid = fork();
    if (pid == 0)
        _exit(9);
    struct signalfd_siginfo ssi;
    CHECK(read(sfd, &ssi, sizeof ssi) == sizeof ssi);
    CHECK(ssi.ssi_signo == SIGCHLD && ssi.ssi_code == CLD_EXITED);
    CHECK(ssi.ssi_pid == (uint32_t)pid && ssi.ssi_status == 9);
    CHECK(waitpid(pid, &st, 0) == pid && WEXITSTATUS(st) == 9);
    close(sfd);
    CHECK(sigprocmask(SIG_UNBLOCK, &chld, NULL) == 0);

    /* SIG_IGN: no handler, auto-reaped; wait blocks until the child is gone. */
    CHECK(signal(SIGCHLD, SIG_IGN) != SIG_ERR);
    pid = fork();
    if (pid == 0) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
        _exit(0);
    }
    CHECK_ERR(waitpid(pid, &st, 0), ECHILD);
    return report();
}


static int flags(void)
{
    int st;
    pid_t pid;
    /* SA_NOCLDSTOP: exits only. */
    handle(SA_NOCLDSTOP);
    nev = 0;
    pid = child_pause();
    CHECK(kill(pid, SIGSTOP) == 0);
    CHECK(waitpid(pid, &st, WUNTRACED) == pid && WIFSTOPPED(st));
    CHECK(kill(pid, SIGCONT) == 0);
    CHECK(waitpid(pid, &st, WCONTINUED) == pid && WIFCONTINUED(st));
    CHECK(kill(pid, SIGTERM) == 0);
    CHECK(events(1) && ev_code[0] == CLD_KILLED && ev_status[0] == SIGTERM);
    CHECK(waitpid(pid, &st, 0) == pid && nev == 1);

    /* SA_NOCLDWAIT: the handler still runs, the child reaps itself. */
    handle(SA_NOCLDWAIT);
    nev = 0;
    pid = fork();
    if (pid == 0)
        _exit(3);
    CHECK(events(1) && ev_code[0] == CLD_EXITED && ev_status[0] == 3);
    CHECK_ERR(waitpid(pid, &st, 0), ECHILD);

    return report();
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "basic";
    if (strcmp(mode, "basic") == 0)
        return basic();
    if (strcmp(mode, "flags") == 0)
        return flags();
    fprintf(stderr, "unknown mode %s\n", mode);
    return 100;
}
