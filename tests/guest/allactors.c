/* One guest that gives every actor of the host side work, for the --trace=actors test:
 * dup/close (the fd table), an interval timer and its signals (signals/itimers), a
 * large /dev/urandom read (the refill actor) and a fork (fork-IPC on the spawn path). */
#include "check.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

int main(void)
{
    int fd = open("/dev/null", O_RDONLY);
    CHECK(fd >= 0);
    int d = dup(fd);
    CHECK(d > fd);
    CHECK(close(d) == 0);
    CHECK(close(fd) == 0);

    int r = open("/dev/urandom", O_RDONLY);
    CHECK(r >= 0);
    static unsigned char buf[1 << 16];
    size_t got = 0;
    for (int i = 0; i < 64; i++) {
        ssize_t n = read(r, buf, 1024);
        if (n > 0)
            got += (size_t)n;
    }
    CHECK(got == 64 * 1024);
    close(r);

    struct sigaction sa = {.sa_handler = on_alarm};
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    sigprocmask(SIG_BLOCK, &block, &old);
    struct itimerval it = {{0, 5000}, {0, 5000}};
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
    while (alarms < 3)
        sigsuspend(&old);
    struct itimerval off = {{0, 0}, {0, 0}};
    CHECK(setitimer(ITIMER_REAL, &off, NULL) == 0);
    sigprocmask(SIG_SETMASK, &old, NULL);
    CHECK(alarms >= 3);

    pid_t pid = fork();
    if (pid == 0)
        _exit(7);
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7);
    return report();
}
