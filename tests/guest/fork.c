/* fork MODE: processes.
 *   basic    fork + waitpid exit codes, getppid, private memory, WNOHANG, waitid,
 *            the persona inherited
 *   many     50 children alive at once, all reaped with their own statuses
 *   pipe     parent and child talk over two pipes
 *   signals  children killed by SIGKILL / SIGSEGV are WIFSIGNALED; kill(-pgid)
 *   vfork    vfork + _exit; vfork + execve of a missing file
 *   shared   MAP_SHARED|MAP_ANONYMOUS memory is shared with the child, private is not
 *   clone3   fork and vfork through clone3 (elfuse-only: qemu-user has no clone3)
 *   rtsig    real-time signals between processes: queued with their values and in
 *            order (SIGRTMIN+2, and SIGRTMIN+6, the number elfuse's wake signal has),
 *            default action ends the process, ignored ones are dropped
 *   random   parent and child never hand out the same random bytes (getrandom and
 *            /dev/urandom reads are served from a ring in memory the child copies)
 *   cycles N N fork/exit/wait cycles (prints one line) */
#include "check.h"
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int counter = 100;

static void basic(void)
{
    pid_t parent = getpid();
    int fds_before = dup(0);
    close(fds_before);
    pid_t pid = fork();
    if (pid == 0) {
        counter++;
        if (getppid() != parent)
            _exit(90);
        if (counter != 101)
            _exit(91);
        _exit(7);
    }
    CHECK(pid > 0);
    CHECK(pid != parent);
    int st = -1;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7);
    CHECK(counter == 100);
    CHECK_ERR(waitpid(-1, &st, WNOHANG), ECHILD);

    /* WNOHANG while the child still runs, then a blocking wait. */
    int p[2];
    CHECK(pipe(p) == 0);
    pid = fork();
    if (pid == 0) {
        char c;
        close(p[1]);
        read(p[0], &c, 1);
        _exit(3);
    }
    close(p[0]);
    CHECK(waitpid(pid, &st, WNOHANG) == 0);
    write(p[1], "x", 1);
    close(p[1]);
    CHECK(waitpid(-1, &st, 0) == pid);
    CHECK(WEXITSTATUS(st) == 3);

    /* waitid P_PID and P_ALL, with siginfo. */
    pid = fork();
    if (pid == 0)
        _exit(5);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK(waitid(P_PID, pid, &si, WEXITED) == 0);
    CHECK(si.si_pid == pid && si.si_code == CLD_EXITED && si.si_status == 5);
    CHECK(si.si_signo == SIGCHLD);
    pid = fork();
    if (pid == 0)
        exit(6); /* through atexit and stdio flushing */
    memset(&si, 0, sizeof si);
    CHECK(waitid(P_ALL, 0, &si, WEXITED | WNOWAIT) == 0);
    CHECK(si.si_pid == pid && si.si_status == 6);
    CHECK(waitid(P_ALL, 0, &si, WEXITED) == 0);
    CHECK(si.si_pid == pid);
    CHECK_ERR(waitid(P_ALL, 0, &si, WEXITED | WNOHANG), ECHILD);
    CHECK_ERR(waitid(P_ALL, 0, &si, 0), EINVAL);

    /* Ignoring SIGCHLD: children reap themselves, wait reports ECHILD. */
    signal(SIGCHLD, SIG_IGN);
    pid = fork();
    if (pid == 0)
        _exit(1);
    CHECK_ERR(waitpid(pid, &st, 0), ECHILD);
    signal(SIGCHLD, SIG_DFL);
    pid = fork();
    if (pid == 0)
        _exit(2);
    CHECK(waitpid(pid, &st, 0) == pid && WEXITSTATUS(st) == 2);

    /* The persona is inherited (copy_process copies task->personality). */
    int persona = personality(0xffffffff);
    CHECK(personality(persona | ADDR_NO_RANDOMIZE) == persona);
    pid = fork();
    if (pid == 0)
        _exit(personality(0xffffffff) == (persona | ADDR_NO_RANDOMIZE) ? 4 : 94);
    CHECK(waitpid(pid, &st, 0) == pid && WEXITSTATUS(st) == 4);
    CHECK(personality(persona) == (persona | ADDR_NO_RANDOMIZE));
}

static void many(void)
{
    pid_t pids[50];
    int p[2];
    CHECK(pipe(p) == 0);
    for (int i = 0; i < 50; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            char c;
            close(p[1]);
            read(p[0], &c, 1); /* all wait for the parent's go (EOF) */
            _exit(i);
        }
    }
    close(p[0]);
    close(p[1]);
    int ok = 1, seen = 0;
    for (int n = 0; n < 50; n++) {
        int st;
        pid_t w = wait(&st);
        for (int i = 0; i < 50; i++)
            if (pids[i] == w) {
                seen++;
                if (!WIFEXITED(st) || WEXITSTATUS(st) != i)
                    ok = 0;
            }
    }
    CHECK(seen == 50);
    CHECK(ok);
    CHECK_ERR(wait(NULL), ECHILD);
}

static void pipes(void)
{
    int to_child[2], to_parent[2];
    CHECK(pipe(to_child) == 0 && pipe(to_parent) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(to_child[1]);
        close(to_parent[0]);
        char buf[64];
        ssize_t n = read(to_child[0], buf, sizeof buf);
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] >= 'a' && buf[i] <= 'z')
                buf[i] -= 32;
        write(to_parent[1], buf, n);
        _exit(0);
    }
    close(to_child[0]);
    close(to_parent[1]);
    CHECK(write(to_child[1], "hello child", 11) == 11);
    char buf[64] = {0};
    CHECK(read(to_parent[0], buf, sizeof buf) == 11);
    CHECK(strcmp(buf, "HELLO CHILD") == 0);
    CHECK(read(to_parent[0], buf, sizeof buf) == 0); /* child's ends closed */
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* stdout is shared: the child's line comes before the parent's next one. */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        printf("line from the child\n");
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, &st, 0);
    printf("line from the parent\n");
}

static void signals(void)
{
    int st;
    pid_t pid = fork();
    if (pid == 0) {
        for (;;)
            pause();
    }
    CHECK(kill(pid, SIGKILL) == 0);
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

    pid = fork();
    if (pid == 0) {
        volatile int *volatile np = 0;
        *np = 1;
        _exit(0);
    }
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV && !WCOREDUMP(st));

    pid = fork();
    if (pid == 0) {
        raise(SIGTERM);
        _exit(0);
    }
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);

    /* A child in its own process group, killed through the group. */
    int p[2];
    CHECK(pipe(p) == 0);
    pid = fork();
    if (pid == 0) {
        close(p[0]);
        setpgid(0, 0);
        write(p[1], "r", 1);
        for (;;)
            pause();
    }
    close(p[1]);
    char c;
    CHECK(read(p[0], &c, 1) == 1);
    CHECK(getpgid(pid) == pid);
    CHECK(getpgid(0) != pid);
    CHECK(kill(-pid, SIGKILL) == 0);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK(waitid(P_PGID, pid, &si, WEXITED) == 0);
    CHECK(si.si_pid == pid && si.si_code == CLD_KILLED && si.si_status == SIGKILL);
    CHECK_ERR(kill(pid, 0), ESRCH);

    /* Stop and continue: WUNTRACED / WCONTINUED. */
    pid = fork();
    if (pid == 0) {
        for (;;)
            pause();
    }
    CHECK(kill(pid, SIGSTOP) == 0);
    CHECK(waitpid(pid, &st, WUNTRACED) == pid && WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    CHECK(kill(pid, SIGCONT) == 0);
    CHECK(waitpid(pid, &st, WCONTINUED) == pid && WIFCONTINUED(st));
    kill(pid, SIGKILL);
    CHECK(waitpid(pid, &st, __WALL) == pid && WIFSIGNALED(st));

    /* A new session in the child. */
    pid = fork();
    if (pid == 0) {
        pid_t me = getpid();
        _exit(setsid() == me && getsid(0) == me && getpgid(0) == me ? 0 : 1);
    }
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void vforks(void)
{
    int st;
    pid_t pid = vfork();
    if (pid == 0)
        _exit(12);
    CHECK(pid > 0);
    CHECK(waitpid(pid, &st, 0) == pid && WEXITSTATUS(st) == 12);
    pid = vfork();
    if (pid == 0) {
        char *argv[] = {"nope", NULL};
        execve("/nonexistent/program", argv, argv + 1);
        _exit(errno == ENOENT ? 13 : 14);
    }
    CHECK(waitpid(pid, &st, 0) == pid && WEXITSTATUS(st) == 13);
}

/* MAP_SHARED|MAP_ANONYMOUS memory is shared with a fork child; MAP_PRIVATE is not. */
static void shared(void)
{
    volatile int *sh = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    volatile int *pr = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED && pr != MAP_FAILED);
    CHECK(sh[0] == 0 && sh[1024] == 0); /* zero-filled */
    sh[0] = 1;
    *pr = 1;
    pid_t pid = fork();
    if (pid == 0) {
        int ok = sh[0] == 1 && *pr == 1;
        sh[0] = 2;
        sh[1024] = 3; /* the second page too */
        *pr = 2;
        _exit(ok ? 0 : 1);
    }
    int st = -1;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(sh[0] == 2 && sh[1024] == 3); /* the child's writes */
    CHECK(*pr == 1);                    /* not the child's */
    /* A parent write after fork is seen by a blocked child too. */
    int p[2];
    CHECK(pipe(p) == 0);
    pid = fork();
    if (pid == 0) {
        char c;
        close(p[1]);
        read(p[0], &c, 1);
        _exit(sh[0] == 5 ? 0 : 1);
    }
    close(p[0]);
    sh[0] = 5;
    close(p[1]);
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(munmap((void *)sh, 8192) == 0 && munmap((void *)pr, 4096) == 0);
}

/* struct clone_args, version 0 (64 bytes). */
struct clone_args0 {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static void clone3s(void)
{
    struct clone_args0 a;
    memset(&a, 0, sizeof a);
    a.exit_signal = SIGCHLD;
    long pid = syscall(SYS_clone3, &a, sizeof a);
    if (pid == 0)
        _exit(counter == 100 ? 9 : 1);
    int st = -1;
    CHECK(pid > 0);
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 9);
    memset(&a, 0, sizeof a);
    a.flags = CLONE_VM | CLONE_VFORK;
    a.exit_signal = SIGCHLD;
    pid = syscall(SYS_clone3, &a, sizeof a);
    if (pid == 0)
        _exit(10);
    CHECK(pid > 0);
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 10);
    /* No exit signal: the child is not reported to a plain waitpid. */
    memset(&a, 0, sizeof a);
    pid = syscall(SYS_clone3, &a, sizeof a);
    if (pid == 0)
        _exit(11);
    CHECK(pid > 0);
    CHECK(waitpid(pid, &st, __WALL) == pid && WEXITSTATUS(st) == 11);
}

/* A chain of 200 generations: each child forks the next and passes its exit code up. */
static void chain(void)
{
    int depth;
    for (depth = 0; depth < 200; depth++) {
        pid_t pid = fork();
        if (pid < 0)
            _exit(100);
        if (pid > 0) {
            int st;
            if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
                _exit(101);
            if (depth > 0)
                _exit(WEXITSTATUS(st));
            CHECK(WEXITSTATUS(st) == 42);
            return;
        }
    }
    _exit(42);
}

/* A child blocked in read() right after fork gets its parent's SIGUSR1 at once: the
 * handler runs and the read fails with EINTR (no SA_RESTART). */
static void on_rt(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)si, (void)uc;
}

static void rtsigs(void)
{
    int a = SIGRTMIN + 2, b = SIGRTMIN + 6;
    struct sigaction sa = {0};
    sa.sa_sigaction = on_rt;
    sa.sa_flags = SA_SIGINFO;
    CHECK(sigaction(a, &sa, 0) == 0 && sigaction(b, &sa, 0) == 0);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, a);
    sigaddset(&set, b);
    CHECK(sigprocmask(SIG_BLOCK, &set, 0) == 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        int ok = 1;
        for (int v = 1; v <= 3; v++)
            ok &= sigqueue(parent, a, (union sigval){.sival_int = v}) == 0;
        ok &= sigqueue(parent, b, (union sigval){.sival_int = 9}) == 0;
        _exit(ok ? 0 : 1);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* Lowest signal first, each signal's instances in the order sent. */
    int want[4][2] = {{a, 1}, {a, 2}, {a, 3}, {b, 9}};
    struct timespec ts = {5, 0};
    for (int i = 0; i < 4; i++) {
        siginfo_t si;
        CHECK(sigtimedwait(&set, &si, &ts) == want[i][0]);
        CHECK(si.si_code == SI_QUEUE && si.si_pid == pid);
        CHECK(si.si_value.sival_int == want[i][1]);
    }
    ts.tv_sec = 0;
    CHECK(sigtimedwait(&set, 0, &ts) == -1 && errno == EAGAIN);
    CHECK(sigprocmask(SIG_UNBLOCK, &set, 0) == 0);

    /* Default action: the child dies of it; ignored: nothing happens. */
    for (int ignore = 0; ignore < 2; ignore++) {
        int p[2];
        CHECK(pipe(p) == 0);
        pid = fork();
        if (pid == 0) {
            signal(SIGRTMIN + 3, ignore ? SIG_IGN : SIG_DFL);
            write(p[1], "r", 1);
            struct timespec nap = {0, 200 * 1000 * 1000};
            nanosleep(&nap, 0);
            _exit(7);
        }
        char c;
        CHECK(read(p[0], &c, 1) == 1);
        CHECK(kill(pid, SIGRTMIN + 3) == 0);
        CHECK(waitpid(pid, &st, 0) == pid);
        if (ignore)
            CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7);
        else
            CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGRTMIN + 3);
        close(p[0]);
        close(p[1]);
    }
}

/* 256 random bytes in small reads, as the shim serves them: getrandom, or /dev/urandom. */
static void random_bytes(unsigned char *b, int fd)
{
    for (int i = 0; i < 256; i += 16)
        CHECK((fd < 0 ? getrandom(b + i, 16, 0) : read(fd, b + i, 16)) == 16);
}

static void randoms(void)
{
    int fd = open("/dev/urandom", O_RDONLY);
    CHECK(fd >= 0);
    for (int round = 0; round < 4; round++) {
        int use = round % 2 ? fd : -1;
        unsigned char mine[256], theirs[256];
        int p[2];
        CHECK(getrandom(mine, 1, 0) == 1); /* bytes are waiting when we fork */
        CHECK(pipe(p) == 0);
        pid_t pid = fork();
        if (pid == 0) {
            random_bytes(theirs, use);
            _exit(write(p[1], theirs, 256) == 256 ? 0 : 1);
        }
        random_bytes(mine, use);
        CHECK(read(p[0], theirs, 256) == 256);
        int st;
        CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        for (int i = 0; i < 256; i += 16)
            for (int j = 0; j < 256; j += 16)
                CHECK(memcmp(mine + i, theirs + j, 16) != 0);
        close(p[0]);
        close(p[1]);
    }
    close(fd);
}

static volatile sig_atomic_t got_usr1;
static void on_usr1(int sig)
{
    (void)sig;
    got_usr1 = 1;
}

static void kill_blocked_child(void)
{
    for (int round = 0; round < 20; round++) {
        int ready[2], never[2], st;
        CHECK(pipe(ready) == 0 && pipe(never) == 0);
        pid_t pid = fork();
        if (pid == 0) {
            /* SIGUSR1 stays blocked until ppoll unblocks it and waits in one step: the
             * parent's signal, sent after "r", can arrive before the child blocks, and a
             * plain read() would then wait forever after the handler ran. */
            struct sigaction sa = {0};
            sa.sa_handler = on_usr1;
            sigaction(SIGUSR1, &sa, NULL);
            sigset_t usr1, none;
            sigemptyset(&usr1);
            sigaddset(&usr1, SIGUSR1);
            sigemptyset(&none);
            sigprocmask(SIG_BLOCK, &usr1, NULL);
            if (write(ready[1], "r", 1) != 1)
                _exit(1);
            struct pollfd p = {.fd = never[0], .events = POLLIN};
            int n = ppoll(&p, 1, NULL, &none);
            _exit(n < 0 && errno == EINTR && got_usr1 ? 7 : 2);
        }
        char c;
        CHECK(read(ready[0], &c, 1) == 1);
        CHECK(kill(pid, SIGUSR1) == 0);
        CHECK(waitpid(pid, &st, 0) == pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 7) {
            CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7);
            break;
        }
        close(ready[0]), close(ready[1]), close(never[0]), close(never[1]);
    }
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "basic";
    printf("fork %s\n", mode);
    fflush(stdout);
    if (!strcmp(mode, "basic"))
        basic();
    else if (!strcmp(mode, "many"))
        many();
    else if (!strcmp(mode, "pipe"))
        pipes();
    else if (!strcmp(mode, "signals"))
        signals();
    else if (!strcmp(mode, "vfork"))
        vforks();
    else if (!strcmp(mode, "shared"))
        shared();
    else if (!strcmp(mode, "rtsig"))
        rtsigs();
    else if (!strcmp(mode, "random"))
        randoms();
    else if (!strcmp(mode, "clone3"))
        clone3s();
    else if (!strcmp(mode, "chain"))
        chain();
    else if (!strcmp(mode, "killchild"))
        kill_blocked_child();
    else if (!strcmp(mode, "leaks")) {
        /* One fork first (it starts elfuse's fork-IPC thread), then N cycles between
         * two pauses in which the harness counts elfuse's fds, threads and children. */
        int n = atoi(argv[2]), bad = 0, st;
        char line[16];
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        waitpid(pid, &st, 0);
        printf("ready\n");
        fflush(stdout);
        fgets(line, sizeof line, stdin);
        for (int i = 0; i < n; i++) {
            pid = fork();
            if (pid == 0)
                _exit(1);
            if (waitpid(pid, &st, 0) != pid || WEXITSTATUS(st) != 1)
                bad++;
        }
        printf("done %d bad\n", bad);
        fflush(stdout);
        fgets(line, sizeof line, stdin);
        return bad != 0;
    } else if (!strcmp(mode, "bench")) {
        /* Median wall time of one fork + _exit + waitpid cycle (for measurements; its
         * output is a time, so no test compares it). */
        int n = argc > 2 ? atoi(argv[2]) : 101;
        long *t = calloc(n, sizeof *t);
        for (int i = 0; i < n; i++) {
            struct timespec a, b;
            clock_gettime(CLOCK_MONOTONIC, &a);
            pid_t pid = fork();
            if (pid == 0)
                _exit(0);
            waitpid(pid, NULL, 0);
            clock_gettime(CLOCK_MONOTONIC, &b);
            t[i] = (b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec);
        }
        for (int i = 1; i < n; i++) /* insertion sort */
            for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
                long x = t[j];
                t[j] = t[j - 1];
                t[j - 1] = x;
            }
        printf("median %ld us over %d cycles\n", t[n / 2] / 1000, n);
        return 0;
    } else if (!strcmp(mode, "cycles")) {
        int n = argc > 2 ? atoi(argv[2]) : 100, bad = 0;
        for (int i = 0; i < n; i++) {
            pid_t pid = fork();
            if (pid == 0)
                _exit(i & 0x7f);
            int st;
            if (waitpid(pid, &st, 0) != pid || WEXITSTATUS(st) != (i & 0x7f))
                bad++;
        }
        printf("%d cycles, %d bad\n", n, bad);
        return bad != 0;
    } else
        return 2;
    return report();
}
