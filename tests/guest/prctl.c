/* prctl [strict]: the options programs commonly use — names, dumpable, the parent-death signal
 * (delivered when the parent ends), the child subreaper (an orphaned grandchild becomes
 * ours to wait for), no_new_privs, keepcaps, the capability bounding set, timer slack,
 * THP disable, the seccomp mode; unknown options and bad arguments are EINVAL.
 * "strict" adds the options qemu-user 7.2 refuses with EINVAL (CHILD_SUBREAPER,
 * THP_DISABLE, GET_SECCOMP): run under elfuse only. */
#include "check.h"
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static int death_pipe[2];

static void on_usr1(int sig)
{
    char c = sig == SIGUSR1 ? 'D' : '?';
    (void)!write(death_pipe[1], &c, 1);
    _exit(0);
}

/* Waits (at most 10 s, a bound for failure only) for one byte. */
static int read_byte(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    char c;
    if (poll(&p, 1, 10000) != 1 || read(fd, &c, 1) != 1)
        return -1;
    return c;
}

static void parent_death(void)
{
    int sig = -1;
    CHECK(prctl(PR_GET_PDEATHSIG, &sig) == 0 && sig == 0);
    CHECK(prctl(PR_SET_PDEATHSIG, SIGUSR2) == 0);
    CHECK(prctl(PR_GET_PDEATHSIG, &sig) == 0 && sig == SIGUSR2);
    CHECK(prctl(PR_SET_PDEATHSIG, 0) == 0);
    CHECK_ERR(prctl(PR_SET_PDEATHSIG, 65), EINVAL);

    /* A child whose parent (our child) exits gets SIGUSR1. */
    int ready[2];
    CHECK(pipe(death_pipe) == 0 && pipe(ready) == 0);
    pid_t a = fork();
    if (a == 0) {
        pid_t b = fork();
        if (b == 0) {
            signal(SIGUSR1, on_usr1);
            prctl(PR_SET_PDEATHSIG, SIGUSR1);
            (void)!write(ready[1], "R", 1);
            for (;;)
                pause();
        }
        read_byte(ready[0]);
        _exit(0);
    }
    int st;
    CHECK(waitpid(a, &st, 0) == a && WIFEXITED(st));
    CHECK(read_byte(death_pipe[0]) == 'D');
}

static void subreaper(void)
{
    int on = -1;
    CHECK(prctl(PR_GET_CHILD_SUBREAPER, &on) == 0 && on == 0);
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
    CHECK(prctl(PR_GET_CHILD_SUBREAPER, &on) == 0 && on == 1);

    /* The grandchild, orphaned, is reparented to us: we can wait for it. */
    int p[2], go[2];
    CHECK(pipe(p) == 0 && pipe(go) == 0);
    pid_t a = fork();
    if (a == 0) {
        pid_t b = fork();
        if (b == 0) {
            read_byte(go[0]); /* until told */
            _exit(7);
        }
        (void)!write(p[1], &b, sizeof b);
        _exit(0);
    }
    int st;
    pid_t b = 0;
    CHECK(read(p[0], &b, sizeof b) == sizeof b && b > 0);
    CHECK(waitpid(a, &st, 0) == a && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(write(go[1], "go", 1) == 1);
    CHECK(waitpid(b, &st, 0) == b && WIFEXITED(st) && WEXITSTATUS(st) == 7);
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 0) == 0);
}

int main(int argc, char **argv)
{
    int strict = argc > 1 && strcmp(argv[1], "strict") == 0;
    char name[16] = {0};
    CHECK(prctl(PR_SET_NAME, "elfuse-prctl-test-long") == 0);
    CHECK(prctl(PR_GET_NAME, name) == 0 && strcmp(name, "elfuse-prctl-te") == 0);
    CHECK(prctl(PR_GET_DUMPABLE) == 1);
    CHECK(prctl(PR_SET_DUMPABLE, 0) == 0 && prctl(PR_GET_DUMPABLE) == 0);
    CHECK(prctl(PR_SET_DUMPABLE, 1) == 0 && prctl(PR_GET_DUMPABLE) == 1);
    CHECK_ERR(prctl(PR_SET_DUMPABLE, 2), EINVAL);

    parent_death();
    if (strict)
        subreaper();

    CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 0);
    CHECK_ERR(prctl(PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0), EINVAL);
    CHECK_ERR(prctl(PR_SET_NO_NEW_PRIVS, 1, 1, 0, 0), EINVAL);
    CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
    CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);

    CHECK(prctl(PR_GET_KEEPCAPS) == 0);
    CHECK(prctl(PR_SET_KEEPCAPS, 1) == 0 && prctl(PR_GET_KEEPCAPS) == 1);
    CHECK(prctl(PR_SET_KEEPCAPS, 0) == 0 && prctl(PR_GET_KEEPCAPS) == 0);
    CHECK_ERR(prctl(PR_SET_KEEPCAPS, 2), EINVAL);
    if (geteuid() == 0)
        CHECK(prctl(PR_CAPBSET_READ, 0 /* CAP_CHOWN */) == 1);
    else
        CHECK(prctl(PR_CAPBSET_READ, 0) >= 0);
    CHECK_ERR(prctl(PR_CAPBSET_READ, 999), EINVAL);

    CHECK(prctl(PR_SET_TIMERSLACK, 123456) == 0 && prctl(PR_GET_TIMERSLACK) == 123456);
    if (strict) {
        CHECK(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0);
        CHECK(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1);
        CHECK(prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0) == 0);
        CHECK(prctl(PR_GET_SECCOMP) == 0);
    }
    CHECK_ERR(prctl(0x7fff1234, 0, 0, 0, 0), EINVAL);
    return report();
}
