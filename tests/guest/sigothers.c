/* Signals to other processes' threads and pidfds of other processes: tgkill and
 * rt_tgsigqueueinfo of a forked child's second thread, pidfd_open + pidfd_send_signal of
 * the child, pidfd_getfd of this process's own fd, and getppid after the parent died
 * and the process was reparented (to us: we are a child subreaper), process_madvise of
 * our own memory ("strict": qemu-user 7.2 has neither PR_SET_CHILD_SUBREAPER nor
 * process_madvise). */
#include "check.h"
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

struct result {
    int usr2_tid, usr2_code, usr2_pid;
    int usr1_tid, usr1_code, usr1_value;
};
static struct result res;
static int ack_w, res_w;

static void on_usr2(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)uc;
    res.usr2_tid = (int)syscall(SYS_gettid);
    res.usr2_code = si->si_code;
    res.usr2_pid = si->si_pid;
    char b = 2;
    write(ack_w, &b, 1);
}
static void on_usr1(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)uc;
    res.usr1_tid = (int)syscall(SYS_gettid);
    res.usr1_code = si->si_code;
    res.usr1_value = si->si_value.sival_int;
    char b = 1;
    write(ack_w, &b, 1);
}
static void on_term(int sig)
{
    (void)sig;
    write(res_w, &res, sizeof res);
    _exit(7);
}

static int tid_w;
static void *second(void *arg)
{
    (void)arg;
    int t = (int)syscall(SYS_gettid);
    write(tid_w, &t, sizeof t);
    for (;;)
        pause();
    return NULL;
}

static void child(void)
{
    struct sigaction sa = {0};
    sa.sa_flags = SA_SIGINFO;
    sa.sa_sigaction = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    sa.sa_sigaction = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGTERM, on_term);
    pthread_t t;
    pthread_create(&t, NULL, second, NULL);
    /* The main thread takes neither: only the second thread may run their handlers. */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    for (;;)
        pause();
}

static void others(void)
{
    int tp[2], ap[2], rp[2];
    pipe(tp);
    pipe(ap);
    pipe(rp);
    pid_t c = fork();
    if (c == 0) {
        tid_w = tp[1];
        ack_w = ap[1];
        res_w = rp[1];
        child();
    }
    int t = 0;
    CHECK(read(tp[0], &t, sizeof t) == sizeof t);
    CHECK(t != c);
    CHECK(syscall(SYS_tgkill, c, t, 0) == 0);
    CHECK_ERR(syscall(SYS_tgkill, c, 0x3ffffff0, SIGUSR2), ESRCH);
    CHECK_ERR(syscall(SYS_tgkill, c, t, 65), EINVAL);
    char b = 0;
    CHECK(syscall(SYS_tgkill, c, t, SIGUSR2) == 0);
    CHECK(read(ap[0], &b, 1) == 1 && b == 2);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR1;
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();
    si.si_value.sival_int = 42;
    CHECK(syscall(SYS_rt_tgsigqueueinfo, c, t, SIGUSR1, &si) == 0);
    CHECK(read(ap[0], &b, 1) == 1 && b == 1);
    si.si_code = SI_TKILL;
    CHECK_ERR(syscall(SYS_rt_tgsigqueueinfo, c, t, SIGUSR1, &si), EPERM);

    int pfd = (int)syscall(SYS_pidfd_open, c, 0);
    CHECK(pfd >= 0);
    CHECK(fcntl(pfd, F_GETFD) == FD_CLOEXEC);
    CHECK(syscall(SYS_pidfd_send_signal, pfd, 0, NULL, 0) == 0);
    CHECK(syscall(SYS_pidfd_send_signal, pfd, SIGTERM, NULL, 0) == 0);
    struct result r;
    CHECK(read(rp[0], &r, sizeof r) == sizeof r);
    int st = 0;
    CHECK(waitpid(c, &st, 0) == c);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7);
    CHECK(r.usr2_tid == t);
    CHECK(r.usr2_code == SI_TKILL);
    CHECK(r.usr2_pid == getpid());
    CHECK(r.usr1_tid == t);
    CHECK(r.usr1_code == SI_QUEUE);
    CHECK(r.usr1_value == 42);
    /* Reaped: the pidfd refers to no process any more. */
    CHECK_ERR(syscall(SYS_pidfd_send_signal, pfd, SIGTERM, NULL, 0), ESRCH);
    close(pfd);
    CHECK_ERR(syscall(SYS_pidfd_open, c, 0), ESRCH);
    CHECK_ERR(syscall(SYS_pidfd_open, 0, 0), EINVAL);
    close(tp[0]), close(tp[1]), close(ap[0]), close(ap[1]), close(rp[0]), close(rp[1]);
}

static void getfd_self(void)
{
    int p[2];
    pipe(p);
    int pfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    CHECK(pfd >= 0);
    int w = (int)syscall(SYS_pidfd_getfd, pfd, p[1], 0);
    CHECK(w >= 0 && w != p[1]);
    CHECK(fcntl(w, F_GETFD) == FD_CLOEXEC);
    CHECK(write(w, "x", 1) == 1);
    char b = 0;
    CHECK(read(p[0], &b, 1) == 1 && b == 'x');
    CHECK_ERR(syscall(SYS_pidfd_getfd, pfd, 999, 0), EBADF);
    CHECK_ERR(syscall(SYS_pidfd_getfd, pfd, p[1], 1), EINVAL);
    close(w), close(pfd), close(p[0]), close(p[1]);
}

static void madvise_self(void)
{
    long pg = sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int pfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    struct iovec v[2] = {{m, pg}, {m + pg, pg}};
    CHECK(syscall(SYS_process_madvise, pfd, v, 2, MADV_COLD, 0) == 2 * pg);
    CHECK(syscall(SYS_process_madvise, pfd, v, 0, MADV_COLD, 0) == 0);
    CHECK_ERR(syscall(SYS_process_madvise, pfd, v, 2, MADV_COLD, 1), EINVAL);
    CHECK_ERR(syscall(SYS_process_madvise, pfd, v, 1025, MADV_COLD, 0), EINVAL);
    /* One's own process takes any advice (Linux 6.13): DONTNEED zeroes. */
    m[0] = 1;
    CHECK(syscall(SYS_process_madvise, pfd, v, 1, MADV_DONTNEED, 0) == pg);
    CHECK(m[0] == 0);
    munmap(m + pg, pg);
    CHECK(syscall(SYS_process_madvise, pfd, v, 2, MADV_WILLNEED, 0) == pg);
    CHECK_ERR(syscall(SYS_process_madvise, pfd, v + 1, 1, MADV_COLD, 0), ENOMEM);
    CHECK_ERR(syscall(SYS_process_madvise, -1, v, 1, MADV_COLD, 0), EBADF);
    munmap(m, pg);
    close(pfd);
}

static void reparent(void)
{
    int p[2];
    pipe(p);
    pid_t c = fork();
    if (c == 0) {
        pid_t me = getpid();
        pid_t g = fork();
        if (g == 0) {
            /* Wait (at most ~10 s) for the parent to be gone. */
            for (int i = 0; i < 1000 && getppid() == me; i++)
                usleep(10000);
            pid_t pp = getppid();
            write(p[1], &pp, sizeof pp);
            _exit(0);
        }
        _exit(0);
    }
    int st;
    CHECK(waitpid(c, &st, 0) == c);
    pid_t pp = 0;
    CHECK(read(p[0], &pp, sizeof pp) == sizeof pp);
    CHECK(pp == getpid());
    /* The orphan is our child now. */
    CHECK(wait(&st) > 0 && WIFEXITED(st));
    close(p[0]), close(p[1]);
}

int main(int argc, char **argv)
{
    others();
    getfd_self();
    /* Reparenting to a known process needs PR_SET_CHILD_SUBREAPER, which qemu-user 7.2
     * refuses (EINVAL), and process_madvise is ENOSYS there: elfuse only. */
    if (argc > 1 && strcmp(argv[1], "strict") == 0) {
        CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
        reparent();
        madvise_self();
    }
    return report();
}
