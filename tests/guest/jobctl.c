/* jobctl: default actions of the stop signals and SIGCONT, seen by the parent with
 * waitpid(WUNTRACED/WCONTINUED), and handled SIGTSTP/SIGCONT. Each child moves to its own process group first: a stop by SIGTSTP/SIGTTIN/SIGTTOU is
 * discarded in an orphaned process group. */
#include "check.h"
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got;

static void on_sig(int sig)
{
    got = sig;
}

static volatile pid_t sender;

static void on_info(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    sender = si->si_pid;
    got = sig;
}

static void nap(void)
{
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
}

/* Waits up to 5 s (with syscalls, so that signals are delivered) for `got`. */
static int wait_got(void)
{
    for (int i = 0; i < 5000 && !got; i++)
        nap();
    return got != 0;
}

/* Parent → child "go" pipe: a continued child must not exit before the parent has seen
 * WIFCONTINUED (an exit would be reported instead). */
static int go[2];

static void wait_go(void)
{
    char c;
    read(go[0], &c, 1);
}

static pid_t child(void)
{
    pid_t pid = fork();
    /* Both sides, as a shell does, so that neither depends on who runs first. */
    setpgid(pid == 0 ? 0 : pid, 0);
    /* Under elfuse's spawn path (ELFUSE_FORK=spawn) the child is an exec'd host process,
     * so the parent's setpgid fails (EACCES) and only the child's own call moves it.
     * Until then it is in the parent's group, where the kernel discards a stop signal if
     * that group is orphaned (a test run from a detached job): wait for the move. */
    for (int i = 0; pid > 0 && getpgid(pid) != pid && i < 5000; i++)
        nap();
    return pid;
}

static void handler(int sig, void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigaction(sig, &sa, NULL);
}

static int stopped_by(pid_t pid, int sig)
{
    int st;
    return waitpid(pid, &st, WUNTRACED) == pid && WIFSTOPPED(st) && WSTOPSIG(st) == sig;
}

static int continued(pid_t pid)
{
    int st;
    return kill(pid, SIGCONT) == 0 && waitpid(pid, &st, WCONTINUED) == pid && WIFCONTINUED(st);
}

static int exited_with(pid_t pid, int code)
{
    int st;
    return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == code;
}

/* The child stops itself with `sig`, then reports whether its SIGCONT handler ran. */
static void self_stop(int sig)
{
    pid_t pid = child();
    if (pid == 0) {
        handler(SIGCONT, on_sig);
        raise(sig);
        int ok = wait_got() && got == SIGCONT;
        wait_go();
        _exit(ok ? 0 : 3);
    }
    printf("self-stop by %d:\n", sig);
    CHECK(stopped_by(pid, sig));
    CHECK(continued(pid));
    CHECK(write(go[1], "g", 1) == 1);
    CHECK(exited_with(pid, 0));
}

static void *spin(void *arg)
{
    (void)arg;
    for (;;)
        nap();
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (pipe(go) != 0)
        return 2;
    self_stop(SIGSTOP);
    self_stop(SIGTSTP);
    self_stop(SIGTTIN);
    self_stop(SIGTTOU);

    /* SIGTSTP from the parent to a running two-thread child: the whole child stops;
     * SIGCONT resumes it; SIGKILL kills it. */
    pid_t pid = child();
    if (pid == 0) {
        pthread_t t;
        pthread_create(&t, NULL, spin, NULL);
        spin(NULL);
    }
    CHECK(kill(pid, SIGTSTP) == 0 && stopped_by(pid, SIGTSTP));
    CHECK(continued(pid));
    CHECK(kill(pid, SIGTSTP) == 0 && stopped_by(pid, SIGTSTP));
    CHECK(kill(pid, SIGKILL) == 0);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

    /* A handled SIGTSTP runs the handler and does not stop. */
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid = child();
    if (pid == 0) {
        handler(SIGTSTP, on_sig);
        write(ready[1], "r", 1);
        _exit(wait_got() && got == SIGTSTP ? 5 : 3);
    }
    char c;
    CHECK(read(ready[0], &c, 1) == 1);
    CHECK(kill(pid, SIGTSTP) == 0);
    CHECK(waitpid(pid, &st, WUNTRACED) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 5);

    /* An ignored stop signal does nothing; SIGCONT's default does nothing either. */
    pid = child();
    if (pid == 0) {
        signal(SIGTSTP, SIG_IGN);
        raise(SIGTSTP);
        raise(SIGCONT);
        _exit(6);
    }
    CHECK(waitpid(pid, &st, WUNTRACED) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 6);

    /* SIGCONT discards a pending (blocked) stop signal: unblocking it then does nothing. */
    pid = child();
    if (pid == 0) {
        sigset_t set, pend;
        sigemptyset(&set);
        sigaddset(&set, SIGTSTP);
        sigprocmask(SIG_BLOCK, &set, NULL);
        raise(SIGTSTP);
        sigpending(&pend);
        int was = sigismember(&pend, SIGTSTP);
        raise(SIGCONT);
        sigpending(&pend);
        int now = sigismember(&pend, SIGTSTP);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        _exit(was && !now ? 8 : 3);
    }
    CHECK(waitpid(pid, &st, WUNTRACED) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 8);

    /* Signals from the parent reach the child's handlers (with the sender's pid), its
     * ignored signals do nothing, and a default SIGTERM kills it. */
    pid = child();
    if (pid == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_info;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGUSR1, &sa, NULL);
        signal(SIGUSR2, SIG_IGN);
        write(ready[1], "r", 1);
        int ok = wait_got() && got == SIGUSR1 && sender == getppid();
        _exit(ok ? 9 : 3);
    }
    CHECK(read(ready[0], &c, 1) == 1);
    CHECK(kill(pid, SIGUSR2) == 0 && kill(pid, SIGUSR1) == 0);
    CHECK(exited_with(pid, 9));
    pid = child();
    if (pid == 0) {
        write(ready[1], "r", 1);
        spin(NULL);
    }
    CHECK(read(ready[0], &c, 1) == 1);
    CHECK(kill(pid, SIGTERM) == 0);
    CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);

    /* A stop in a handled-SIGCONT child sent from the parent: the handler runs once the
     * child is continued. */
    pid = child();
    if (pid == 0) {
        handler(SIGCONT, on_sig);
        write(ready[1], "r", 1);
        int ok = wait_got() && got == SIGCONT;
        wait_go();
        _exit(ok ? 7 : 3);
    }
    CHECK(read(ready[0], &c, 1) == 1);
    CHECK(kill(pid, SIGSTOP) == 0 && stopped_by(pid, SIGSTOP));
    CHECK(continued(pid));
    CHECK(write(go[1], "g", 1) == 1);
    CHECK(exited_with(pid, 7));
    return report();
}
