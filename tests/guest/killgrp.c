/* killgrp: kill(0, sig) and kill(-pgid, sig) reach every process of the group, the caller
 * included (SIGUSR1, a real-time signal), and the caller alone in its group (SIGPIPE);
 * kill(-pgid, 0) probes the group; a group with no process is ESRCH. Everything runs in a
 * process group of its own (a child of the test made leader), so no other process is hit. */
#include "check.h"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t got;

static void on_sig(int sig)
{
    got = sig;
}

/* A member: reports ready, then waits for `sig` and exits 10 (20 on a wrong signal). */
static pid_t member(int ready_fd, int sig)
{
    pid_t p = fork();
    if (p == 0) {
        sigset_t none;
        sigemptyset(&none);
        (void)!write(ready_fd, "r", 1);
        while (!got)
            sigsuspend(&none);
        _exit(got == sig ? 10 : 20);
    }
    return p;
}

static int exited_with(pid_t p, int code)
{
    int st;
    return waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == code;
}

/* The group leader: two members, then kill(0 or -pgid, sig). */
static int leader(int sig, int by_pgid, int members)
{
    setpgid(0, 0);
    int r[2];
    if (pipe(r) != 0)
        return 1;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, sig);
    sigprocmask(SIG_BLOCK, &block, &old); /* until the members wait for it */
    pid_t a = members ? member(r[1], sig) : 0, b = members ? member(r[1], sig) : 0;
    char c;
    if (members && (read(r[0], &c, 1) != 1 || read(r[0], &c, 1) != 1))
        return 2;
    if (kill(by_pgid ? -getpgrp() : 0, sig) != 0)
        return 3;
    sigprocmask(SIG_SETMASK, &old, NULL); /* ours is delivered now */
    if (got != sig)
        return 4;
    return !members || (exited_with(a, 10) && exited_with(b, 10)) ? 0 : 5;
}

static int run_leader(int sig, int by_pgid, int members)
{
    pid_t l = fork();
    if (l == 0) {
        signal(sig, on_sig);
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, sig);
        sigprocmask(SIG_UNBLOCK, &s, NULL);
        _exit(leader(sig, by_pgid, members));
    }
    int st;
    if (waitpid(l, &st, 0) != l || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

int main(void)
{
    /* The members unblock the signal only in sigsuspend: block it here (inherited). */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGRTMIN + 2);
    sigaddset(&s, SIGPIPE);
    sigprocmask(SIG_BLOCK, &s, NULL);

    CHECK(run_leader(SIGUSR1, 0, 1) == 0);
    CHECK(run_leader(SIGUSR1, 1, 1) == 0);
    CHECK(run_leader(SIGRTMIN + 2, 0, 1) == 0);
    /* A signal elfuse raises itself (not carried between host processes): the caller. */
    CHECK(run_leader(SIGPIPE, 0, 0) == 0);
    CHECK(run_leader(SIGPIPE, 1, 0) == 0);

    /* Probing: our own group exists; a group nobody is in does not. */
    CHECK(kill(0, 0) == 0);
    CHECK(kill(-getpgrp(), 0) == 0);
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    CHECK(exited_with(p, 0));
    CHECK_ERR(kill(-p, 0), ESRCH); /* p was never a group leader, and is gone */
    CHECK_ERR(kill(0, 99), EINVAL);
    return report();
}
