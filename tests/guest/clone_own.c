/* Threads with their own fd table or fs context, and what clone gives new processes.
 *
 * Without arguments (compared with qemu-aarch64, which passes unshare to the host for
 * its host threads, so there it is Linux's own):
 *   unshare(CLONE_FILES) in a second thread: the thread's closes and opens are its own,
 *   the descriptions (file offsets) stay shared, /proc/thread-self/fd, a fork from that
 *   thread inherits the thread's table, close-on-exec flags are copied, RLIMIT_NOFILE
 *   stays per process; unshare(CLONE_FS): cwd and umask of the thread alone, a fork
 *   from it starts in its cwd with its umask.
 * "strict" (elfuse only: qemu-aarch64 7.2 refuses a thread without CLONE_FILES or
 * CLONE_FS with EINVAL, gives every fork child SIGCHLD as exit signal, and has no
 * clone3):
 *   raw clone threads without CLONE_FILES, without CLONE_FS, and with CLONE_FILES shared
 *   from such a thread; exit signals other than SIGCHLD (the parent gets that signal
 *   with CLD_EXITED, wait without __WCLONE passes such a child by, __WCLONE and __WALL
 *   take it, exit signal 0 sends none); execve from a thread with its own table (the
 *   new program has that table, close-on-exec applied; qemu-aarch64 needs binfmt_misc to
 *   execve an AArch64 program); clone3's CLONE_CLEAR_SIGHAND (handlers back to
 *   SIG_DFL, ignored signals stay ignored); CLONE_VM without CLONE_THREAD, and a process
 *   with CLONE_FILES or CLONE_FS, are ENOSYS (elfuse's stated limits: a guest process
 *   is a host process with private memory and its own fd table and fs struct). */
#include "check.h"
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef __WCLONE
#define __WCLONE 0x80000000
#endif
#ifndef __WALL
#define __WALL 0x40000000
#endif

static char dir[64];

static int is_fifo(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

static int is_chr(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode);
}

static int link_starts(int fd, const char *want)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/thread-self/fd/%d", fd);
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n < 0)
        return 0;
    buf[n] = 0;
    return strncmp(buf, want, strlen(want)) == 0;
}

/* ---- unshare(CLONE_FILES) in a pthread ---- */

static int pipefd[2], filefd, cloexec_fd;
static volatile int t_closed_ebadf, t_null_at_pipe, t_proc_link, t_cloexec_kept, t_fork_ok;
static volatile int t_unshare;

static void *files_thread(void *arg)
{
    (void)arg;
    t_unshare = unshare(CLONE_FILES) == 0;
    /* Its own table: closing the pipe's read end here leaves the main thread's. */
    close(pipefd[0]);
    t_closed_ebadf = fcntl(pipefd[0], F_GETFD) == -1 && errno == EBADF;
    int n = open("/dev/null", O_RDONLY);
    t_null_at_pipe = n == pipefd[0] && is_chr(n);
    t_proc_link = link_starts(n, "/dev/null");
    t_cloexec_kept = fcntl(cloexec_fd, F_GETFD) == FD_CLOEXEC;
    /* The shared description: the main thread sees this offset. */
    lseek(filefd, 5, SEEK_SET);
    /* A fork from this thread inherits this thread's table. */
    pid_t pid = fork();
    if (pid == 0)
        _exit(is_chr(pipefd[0]) && fcntl(pipefd[1], F_GETFD) == 0 ? 0 : 1);
    int st = -1;
    t_fork_ok = pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
                WEXITSTATUS(st) == 0;
    return NULL;
}

static void unshare_files(void)
{
    CHECK(pipe(pipefd) == 0);
    char path[96];
    snprintf(path, sizeof path, "%s/f", dir);
    filefd = open(path, O_RDWR | O_CREAT, 0600);
    CHECK(filefd >= 0 && write(filefd, "0123456789", 10) == 10);
    CHECK(lseek(filefd, 0, SEEK_SET) == 0);
    cloexec_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, files_thread, NULL) == 0 && pthread_join(t, NULL) == 0);
    CHECK(t_unshare);
    CHECK(t_closed_ebadf);
    CHECK(t_null_at_pipe);
    CHECK(t_proc_link);
    CHECK(t_cloexec_kept);
    CHECK(t_fork_ok);
    /* The main thread's table is untouched. */
    CHECK(is_fifo(pipefd[0]));
    CHECK(link_starts(pipefd[0], "pipe:"));
    CHECK(lseek(filefd, 0, SEEK_CUR) == 5);
    close(pipefd[0]);
    close(pipefd[1]);
    close(cloexec_fd);
}

/* RLIMIT_NOFILE is the process's: a thread with its own table lowers it for all. */
static volatile int t_lowered;

static void *nofile_thread(void *arg)
{
    (void)arg;
    struct rlimit r;
    getrlimit(RLIMIT_NOFILE, &r);
    r.rlim_cur = 64;
    t_lowered = unshare(CLONE_FILES) == 0 && setrlimit(RLIMIT_NOFILE, &r) == 0;
    return NULL;
}

static void nofile_shared(void)
{
    struct rlimit old, now;
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, nofile_thread, NULL) == 0 && pthread_join(t, NULL) == 0);
    CHECK(t_lowered);
    CHECK(getrlimit(RLIMIT_NOFILE, &now) == 0 && now.rlim_cur == 64);
    CHECK_ERR(fcntl(0, F_DUPFD, 100), EINVAL);
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
}

/* ---- unshare(CLONE_FS) in a pthread ---- */

static char main_cwd[PATH_MAX];
static volatile int f_unshare, f_chdir, f_created, f_umask_old, f_fork_ok;

static void *fs_thread(void *arg)
{
    (void)arg;
    f_unshare = unshare(CLONE_FS) == 0;
    f_chdir = chdir("sub") == 0;
    f_umask_old = umask(077);
    int fd = open("marker", O_CREAT | O_WRONLY, 0666);
    f_created = fd >= 0;
    close(fd);
    /* A fork from this thread: its cwd and umask. */
    pid_t pid = fork();
    if (pid == 0) {
        char buf[PATH_MAX];
        int ok = getcwd(buf, sizeof buf) && strlen(buf) > 4 &&
                 strcmp(buf + strlen(buf) - 4, "/sub") == 0;
        mode_t m = umask(0);
        _exit(ok && m == 077 ? 0 : 1);
    }
    int st = -1;
    f_fork_ok = pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
                WEXITSTATUS(st) == 0;
    return NULL;
}

static void unshare_fs(void)
{
    char sub[96];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    CHECK(mkdir(sub, 0700) == 0);
    CHECK(chdir(dir) == 0 && getcwd(main_cwd, sizeof main_cwd));
    umask(022);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fs_thread, NULL) == 0 && pthread_join(t, NULL) == 0);
    CHECK(f_unshare && f_chdir && f_created);
    CHECK(f_umask_old == 022);
    char now[PATH_MAX];
    CHECK(getcwd(now, sizeof now) && strcmp(now, main_cwd) == 0);
    CHECK(umask(022) == 022); /* the thread's umask(077) was its own */
    CHECK(access("marker", F_OK) == -1 && access("sub/marker", F_OK) == 0);
    struct stat st;
    CHECK(stat("sub/marker", &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(f_fork_ok);
    unlink("sub/marker");
    rmdir("sub");
}

/* ---- raw clone threads (strict) ---- */

static long rsys(long nr, long a, long b, long c, long d)
{
    register long x8 __asm__("x8") = nr;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory", "cc");
    return x0;
}

/* clone(flags, stack_top, 0, 0, ctid); the child calls fn() on the new stack (with the
 * parent's TLS: fn makes raw system calls only) and exits. */
static long raw_clone(unsigned long flags, char *stack_top, int *ctid, void (*fn)(void))
{
    register long x8 __asm__("x8") = SYS_clone;
    register long x0 __asm__("x0") = (long)flags;
    register long x1 __asm__("x1") = (long)stack_top;
    register long x2 __asm__("x2") = 0;
    register long x3 __asm__("x3") = 0;
    register long x4 __asm__("x4") = (long)ctid;
    register long x10 __asm__("x10") = (long)fn;
    __asm__ volatile("svc #0\n"
                     "cbnz x0, 1f\n"
                     "blr x10\n"
                     "mov x0, #0\n"
                     "mov x8, #93\n"
                     "svc #0\n"
                     "1:\n"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x10)
                     : "memory", "cc", "x30");
    return x0;
}

static void join(volatile int *ctid)
{
    for (int v; (v = *ctid) != 0;)
        syscall(SYS_futex, ctid, 0 /* FUTEX_WAIT */, v, NULL, NULL, 0);
}

#define THREAD (CLONE_VM | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID)

static int r_fd;
static volatile long r_close, r_after, r_chdir, r_open;
static volatile int ctid;
static char stack[65536] __attribute__((aligned(16)));

static void child_closes(void)
{
    r_close = rsys(SYS_close, r_fd, 0, 0, 0);
    r_after = rsys(SYS_fcntl, r_fd, F_GETFD, 0, 0);
}

static void child_chdir(void)
{
    r_chdir = rsys(SYS_chdir, (long)"sub", 0, 0, 0);
    r_open = rsys(SYS_openat, AT_FDCWD, (long)"m2", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (r_open >= 0)
        rsys(SYS_close, r_open, 0, 0, 0);
}

/* Grandchild thread of a thread with its own table, created with CLONE_FILES: it shares
 * that table, so its close is seen by its creator, not by the main thread. */
static volatile int inner_ctid;
static char stack2[65536] __attribute__((aligned(16)));
static volatile long r_inner_close, r_outer_sees;

static void inner(void)
{
    r_inner_close = rsys(SYS_close, r_fd, 0, 0, 0);
}

static void outer(void)
{
    inner_ctid = -1;
    raw_clone(THREAD | CLONE_FILES | CLONE_FS, stack2 + sizeof stack2, (int *)&inner_ctid,
              inner);
    for (int v; (v = inner_ctid) != 0;)
        rsys(SYS_futex, (long)&inner_ctid, 0, v, 0);
    r_outer_sees = rsys(SYS_fcntl, r_fd, F_GETFD, 0, 0);
}

static void raw_threads(void)
{
    /* Without CLONE_FILES: the child closes its copy of r_fd. */
    r_fd = open("/dev/null", O_RDONLY);
    ctid = -1;
    CHECK(raw_clone(THREAD | CLONE_FS, stack + sizeof stack, (int *)&ctid, child_closes) > 0);
    join(&ctid);
    CHECK(r_close == 0);
    CHECK(r_after == -EBADF);
    CHECK(fcntl(r_fd, F_GETFD) == 0);

    /* Without CLONE_FS: the child's chdir is its own; with CLONE_FILES its open lands in
     * the shared table (closed there by the child). */
    CHECK(mkdir("sub", 0700) == 0);
    char before[PATH_MAX], after[PATH_MAX];
    CHECK(getcwd(before, sizeof before) != NULL);
    ctid = -1;
    CHECK(raw_clone(THREAD | CLONE_FILES, stack + sizeof stack, (int *)&ctid, child_chdir) > 0);
    join(&ctid);
    CHECK(r_chdir == 0 && r_open >= 0);
    CHECK(getcwd(after, sizeof after) && strcmp(before, after) == 0);
    CHECK(access("sub/m2", F_OK) == 0 && access("m2", F_OK) == -1);
    unlink("sub/m2");
    rmdir("sub");

    /* A thread with its own table shares it with the thread it creates with CLONE_FILES. */
    ctid = -1;
    CHECK(raw_clone(THREAD | CLONE_FS, stack + sizeof stack, (int *)&ctid, outer) > 0);
    join(&ctid);
    CHECK(r_inner_close == 0);
    CHECK(r_outer_sees == -EBADF);
    CHECK(fcntl(r_fd, F_GETFD) == 0);
    close(r_fd);
}

/* ---- exit signals (strict) ---- */

static volatile int usr1_n, chld_n, usr1_code, usr1_status, usr1_pid;

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    usr1_n++;
    usr1_code = si->si_code;
    usr1_status = si->si_status;
    usr1_pid = si->si_pid;
}

static void on_chld(int sig)
{
    (void)sig;
    chld_n++;
}

static long fork_with(int exit_signal)
{
    return syscall(SYS_clone, exit_signal, 0, 0, 0, 0);
}

static void exit_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_chld;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);

    /* Exit signal SIGUSR1: reaped only with __WCLONE or __WALL. */
    long pid = fork_with(SIGUSR1);
    if (pid == 0)
        _exit(7);
    CHECK(pid > 0);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK(waitid(P_PID, pid, &si, WEXITED | WNOWAIT | __WCLONE) == 0 && si.si_pid == pid);
    int st = -1;
    CHECK_ERR(waitpid(pid, &st, 0), ECHILD);
    CHECK_ERR(waitpid(-1, &st, WNOHANG), ECHILD);
    CHECK(waitpid(-1, &st, __WCLONE) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 7);
    CHECK(usr1_n == 1 && chld_n == 0);
    CHECK(usr1_code == CLD_EXITED && usr1_status == 7 && usr1_pid == pid);

    /* Exit signal 0: no signal at all; __WALL reaps it. */
    pid = fork_with(0);
    if (pid == 0)
        _exit(3);
    CHECK(pid > 0);
    CHECK(waitid(P_PID, pid, &si, WEXITED | WNOWAIT | __WALL) == 0);
    CHECK(waitpid(pid, &st, __WALL) == pid && WEXITSTATUS(st) == 3);
    CHECK(usr1_n == 1 && chld_n == 0);

    /* A clone child that has exited and an ordinary one still running: a plain wait
     * passes the first by and waits for the second. */
    long c = fork_with(0);
    if (c == 0)
        _exit(4);
    CHECK(waitid(P_PID, c, &si, WEXITED | WNOWAIT | __WCLONE) == 0);
    int p[2];
    CHECK(pipe(p) == 0);
    long n = fork();
    if (n == 0) {
        char b;
        close(p[1]);
        _exit(read(p[0], &b, 1) == 0 ? 5 : 6);
    }
    close(p[0]);
    close(p[1]);
    CHECK(waitpid(-1, &st, 0) == n && WEXITSTATUS(st) == 5);
    CHECK(chld_n == 1);
    CHECK_ERR(waitpid(-1, &st, WNOHANG), ECHILD);
    memset(&si, 0, sizeof si);
    CHECK(waitid(P_ALL, 0, &si, WEXITED | __WCLONE) == 0 && si.si_pid == c &&
          si.si_status == 4);
    CHECK_ERR(waitpid(-1, &st, __WALL | WNOHANG), ECHILD);
    signal(SIGUSR1, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
}

/* ---- execve from a thread with its own table (strict) ---- */

static int ex_pipe[2], ex_cloexec;
static char **ex_argv0;

static void *exec_thread(void *arg)
{
    (void)arg;
    if (unshare(CLONE_FILES) != 0)
        _exit(20);
    close(ex_pipe[1]);
    int n = open("/dev/null", O_RDONLY);
    char a[3][16];
    snprintf(a[0], sizeof a[0], "%d", ex_pipe[0]);
    snprintf(a[1], sizeof a[1], "%d", ex_cloexec);
    snprintf(a[2], sizeof a[2], "%d", n);
    char *argv[] = {ex_argv0[0], "execd", a[0], a[1], a[2], NULL};
    execv("/proc/self/exe", argv);
    _exit(21);
}

/* The program execve'd from that thread: its table is the thread's (the pipe's write
 * end closed there, so nothing holds it open: the main thread's table went with it), the
 * CLOEXEC fd closed, the thread's /dev/null open. */
static int execd(char **argv)
{
    int r = atoi(argv[2]), c = atoi(argv[3]), n = atoi(argv[4]);
    char b;
    fcntl(r, F_SETFL, O_NONBLOCK);
    int ok = read(r, &b, 1) == 0;
    ok &= fcntl(c, F_GETFD) == -1 && errno == EBADF;
    ok &= is_chr(n);
    return ok ? 0 : 1;
}

static void exec_own(char **argv)
{
    ex_argv0 = argv;
    pid_t pid = fork();
    if (pid == 0) {
        if (pipe(ex_pipe) != 0)
            _exit(22);
        ex_cloexec = open("/dev/null", O_RDONLY | O_CLOEXEC);
        pthread_t t;
        pthread_create(&t, NULL, exec_thread, NULL);
        for (;;)
            pause();
    }
    int st = -1;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* ---- clone3 CLONE_CLEAR_SIGHAND (strict) ---- */

struct clone_args_ {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
        set_tid, set_tid_size, cgroup;
};

static void on_usr2(int sig)
{
    (void)sig;
}

static void clear_sighand(void)
{
    signal(SIGUSR2, on_usr2);
    signal(SIGHUP, SIG_IGN);
    struct clone_args_ a;
    memset(&a, 0, sizeof a);
    a.flags = 0x100000000ULL; /* CLONE_CLEAR_SIGHAND */
    a.exit_signal = SIGCHLD;
    long pid = syscall(435, &a, sizeof a);
    if (pid == 0) {
        struct sigaction o1, o2;
        sigaction(SIGUSR2, NULL, &o1);
        sigaction(SIGHUP, NULL, &o2);
        _exit((o1.sa_handler == SIG_DFL ? 0 : 1) | (o2.sa_handler == SIG_IGN ? 0 : 2));
    }
    CHECK(pid > 0);
    int st = -1;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    struct sigaction cur;
    CHECK(sigaction(SIGUSR2, NULL, &cur) == 0 && cur.sa_handler == on_usr2);
    signal(SIGUSR2, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
}

int main(int argc, char **argv)
{
    if (argc > 4 && strcmp(argv[1], "execd") == 0)
        return execd(argv);
    strcpy(dir, "/tmp/clone_own.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    unshare_files();
    nofile_shared();
    unshare_fs();
    if (argc > 1 && strcmp(argv[1], "strict") == 0) {
        raw_threads();
        exit_signals();
        clear_sighand();
        exec_own(argv);
        /* elfuse's stated limit (see the syscall table): a process sharing memory. */
        CHECK_ERR(syscall(SYS_clone, CLONE_VM | SIGCHLD, 0, 0, 0, 0), ENOSYS);
        /* ... and a process sharing the fd table or cwd: the same reason. */
        CHECK_ERR(syscall(SYS_clone, CLONE_FILES | SIGCHLD, 0, 0, 0, 0), ENOSYS);
        CHECK_ERR(syscall(SYS_clone, CLONE_FS | SIGCHLD, 0, 0, 0, 0), ENOSYS);
        /* Linux's own rule: shared handlers need shared memory. */
        CHECK_ERR(syscall(SYS_clone, CLONE_SIGHAND | SIGCHLD, 0, 0, 0, 0), EINVAL);
    }
    char f[96];
    snprintf(f, sizeof f, "%s/f", dir);
    unlink(f);
    chdir("/");
    rmdir(dir);
    return report();
}
