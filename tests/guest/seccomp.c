/* seccomp: strict mode (write allowed, getpid kills with SIGKILL, exit allowed) and
 * filter mode (ERRNO, TRAP with its siginfo, KILL_PROCESS, KILL_THREAD, TRACE without a
 * tracer, LOG, the arguments, arch and most-restrictive-wins over several filters, a call
 * the EL1 shim answers itself (getpid) filtered, the vDSO's clock_gettime not, fork
 * inheriting, execve keeping, TSYNC reaching another thread), GET_ACTION_AVAIL,
 * PR_GET_SECCOMP, the no_new_privs requirement and refused programs.
 * Every mode runs in a child process, which reports through its exit status.
 * qemu-user 7.2 has no seccomp: run under elfuse only.
 * argv[1] = "exec-check": the program execve'd under a filter (exits 0 if it holds). */
#define _GNU_SOURCE
#include "check.h"
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* linux/filter.h and linux/seccomp.h (musl's headers have no linux/). */
struct bpf_insn { uint16_t code; uint8_t jt, jf; uint32_t k; };
struct bpf_prog { unsigned short len; struct bpf_insn *filter; };
#define LD_NR    { 0x20, 0, 0, 0 }            /* ld [nr] */
#define LD_ARCH  { 0x20, 0, 0, 4 }            /* ld [arch] */
#define LD_ARG0  { 0x20, 0, 0, 16 }           /* ld [args[0]] (low word) */
#define JEQ(k, t, f) { 0x15, t, f, (k) }
#define RET(k)   { 0x06, 0, 0, (k) }
#define R_KILL_PROCESS 0x80000000u
#define R_KILL_THREAD 0u
#define R_TRAP 0x00030000u
#define R_ERRNO 0x00050000u
#define R_TRACE 0x7ff00000u
#define R_LOG 0x7ffc0000u
#define R_ALLOW 0x7fff0000u
#define AUDIT_AARCH64 0xc00000b7u
#define OP_STRICT 0
#define OP_FILTER 1
#define OP_AVAIL 2
#define F_TSYNC 1
#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1
#endif

static long sc(unsigned op, unsigned flags, void *args)
{
    return syscall(SYS_seccomp, op, flags, args);
}

static int install(struct bpf_insn *f, unsigned short n, unsigned flags)
{
    struct bpf_prog p = { n, f };
    return (int)sc(OP_FILTER, flags, &p);
}

/* A filter: `nr` gets `action`, everything else is allowed (any other arch is killed). */
static int deny(long nr, unsigned action)
{
    struct bpf_insn f[] = {
        LD_ARCH, JEQ(AUDIT_AARCH64, 1, 0), RET(R_KILL_PROCESS),
        LD_NR, JEQ((uint32_t)nr, 0, 1), RET(action), RET(R_ALLOW),
    };
    return install(f, sizeof f / sizeof f[0], 0);
}

/* Runs fn in a child; its wait status. */
static int in_child(int (*fn)(void))
{
    fflush(stdout);
    pid_t p = fork();
    if (p == 0)
        _exit(fn());
    int st = -1;
    waitpid(p, &st, 0);
    return st;
}

#define EXITED(st, code) (WIFEXITED(st) && WEXITSTATUS(st) == (code))
#define KILLED(st, sig) (WIFSIGNALED(st) && WTERMSIG(st) == (sig))

static int nnp(void) { return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0; }

/* Strict mode: write works, getpid (answered in EL1 without seccomp) kills. */
static int pipe_fd[2];
static int strict_getpid(void)
{
    if (prctl(PR_SET_SECCOMP, 1 /* SECCOMP_MODE_STRICT */) != 0)
        return 10;
    if (write(pipe_fd[1], "w", 1) != 1)
        syscall(SYS_exit, 11);
    syscall(SYS_getpid);
    syscall(SYS_exit, 12);
    return 13;
}
static int strict_exit(void)
{
    if (sc(OP_STRICT, 0, NULL) != 0)
        return 10;
    write(pipe_fd[1], "e", 1);
    syscall(SYS_exit, 7);
    return 13;
}

static int errno_getpid(void)
{
    if (!nnp() || deny(SYS_getpid, R_ERRNO | 42) != 0)
        return 10;
    errno = 0;
    if (syscall(SYS_getpid) != -1 || errno != 42)
        return 11;
    if (getppid() <= 0)
        return 12;
    if (prctl(PR_GET_SECCOMP) != 2)
        return 13;
    /* An errno past 4095 is capped. */
    if (deny(SYS_getuid, R_ERRNO | 5000) != 0)
        return 14;
    errno = 0;
    if (syscall(SYS_getuid) != -1 || errno != 4095)
        return 15;
    /* ERRNO 0: the call is skipped and returns 0. */
    if (deny(SYS_getgid, R_ERRNO | 0) != 0 || syscall(SYS_getgid) != 0)
        return 16;
    /* Strict mode over a filter is refused. */
    errno = 0;
    if (sc(OP_STRICT, 0, NULL) != -1 || errno != EINVAL)
        return 17;
    return 0;
}

static volatile int t_signo, t_code, t_syscall, t_errno;
static volatile unsigned t_arch;
static volatile uintptr_t t_addr;
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    t_signo = sig;
    t_code = si->si_code;
    t_syscall = si->si_syscall;
    t_arch = si->si_arch;
    t_errno = si->si_errno;
    t_addr = (uintptr_t)si->si_call_addr;
}
static int trap(void)
{
    struct sigaction sa = { 0 };
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, NULL);
    if (!nnp() || deny(SYS_getppid, R_TRAP | 0x55) != 0)
        return 10;
    long r = syscall(SYS_getppid, 0x1234);
    if (t_signo != SIGSYS || t_code != SYS_SECCOMP)
        return 11;
    if (t_syscall != SYS_getppid || t_arch != AUDIT_AARCH64 || t_errno != 0x55)
        return 12;
    if (t_addr == 0 || t_addr % 4 != 0)
        return 13;
    /* The skipped call's X0 is its first argument (Linux rolls the registers back). */
    if (r != 0x1234)
        return 14;
    /* Blocked SIGSYS: the trap kills. */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGSYS);
    sigprocmask(SIG_BLOCK, &s, NULL);
    syscall(SYS_getppid);
    return 15;
}

static int kill_process(void)
{
    if (!nnp() || deny(SYS_getpid, R_KILL_PROCESS) != 0)
        return 10;
    syscall(SYS_getpid);
    return 11;
}
static int kill_thread(void)
{
    if (!nnp() || deny(SYS_getpid, R_KILL_THREAD) != 0)
        return 10;
    syscall(SYS_getpid);
    return 11;
}

static int trace_log(void)
{
    if (!nnp() || deny(SYS_getpid, R_TRACE) != 0 || deny(SYS_getppid, R_LOG) != 0)
        return 10;
    errno = 0;
    if (syscall(SYS_getpid) != -1 || errno != ENOSYS)
        return 11;
    if (syscall(SYS_getppid) <= 0)
        return 12;
    return 0;
}

/* Several filters: the most restrictive action wins, the newest among equal ones; an
 * argument is seen. */
static int layered(void)
{
    if (!nnp() || deny(SYS_getpid, R_ERRNO | 5) != 0)
        return 10;
    struct bpf_insn allow[] = { RET(R_ALLOW) };
    if (install(allow, 1, 0) != 0 || deny(SYS_getpid, R_ERRNO | 6) != 0)
        return 11;
    errno = 0;
    if (syscall(SYS_getpid) != -1 || errno != 6)
        return 12;
    if (deny(SYS_getpid, R_TRAP) != 0) /* TRAP beats ERRNO: SIGSYS, default action */
        return 13;
    struct bpf_insn arg[] = {
        LD_NR, JEQ(SYS_getpgid, 0, 3), LD_ARG0, JEQ(77, 0, 1), RET(R_ERRNO | 3), RET(R_ALLOW),
    };
    if (install(arg, sizeof arg / sizeof arg[0], 0) != 0)
        return 14;
    errno = 0;
    if (syscall(SYS_getpgid, 77) != -1 || errno != 3)
        return 15;
    if (getpgid(0) <= 0)
        return 16;
    syscall(SYS_getpid);
    return 17;
}

/* clock_gettime through the vDSO is not a syscall: a filter killing it does not fire. */
static int vdso_clock(void)
{
    struct timespec ts;
    if (!nnp() || deny(SYS_clock_gettime, R_KILL_PROCESS) != 0)
        return 10;
    for (int i = 0; i < 1000; i++)
        if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
            return 11;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 12;
    return 0;
}

static int grandchild(void)
{
    errno = 0;
    if (syscall(SYS_getpid) != -1 || errno != 7)
        return 1;
    return prctl(PR_GET_SECCOMP) == 2 ? 0 : 2;
}
static int forked(void)
{
    if (!nnp() || deny(SYS_getpid, R_ERRNO | 7) != 0)
        return 10;
    int st = in_child(grandchild);
    return EXITED(st, 0) ? 0 : 11;
}

static const char *self_exe;
static int execd(void)
{
    if (!nnp() || deny(SYS_getppid, R_ERRNO | 9) != 0)
        return 10;
    execl(self_exe, self_exe, "exec-check", (char *)NULL);
    return 11;
}

static volatile int go, t_result = -1;
static void *waiter(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
        usleep(1000);
    errno = 0;
    long r = syscall(SYS_getpid);
    t_result = (r == -1 && errno == 11) ? 0 : 1;
    return NULL;
}
static void *later(void *arg)
{
    (void)arg;
    errno = 0;
    long r = syscall(SYS_getppid);
    t_result = (r == -1 && errno == 12) ? 0 : 1;
    return NULL;
}
static int tsync(void)
{
    pthread_t t;
    if (!nnp() || pthread_create(&t, NULL, waiter, NULL) != 0)
        return 10;
    struct bpf_insn f[] = { LD_NR, JEQ(SYS_getpid, 0, 1), RET(R_ERRNO | 11), RET(R_ALLOW) };
    if (install(f, 4, F_TSYNC) != 0)
        return 11;
    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    if (t_result != 0)
        return 12;
    /* A thread created after an install inherits it. */
    if (deny(SYS_getppid, R_ERRNO | 12) != 0 || pthread_create(&t, NULL, later, NULL) != 0)
        return 13;
    pthread_join(t, NULL);
    return t_result == 0 ? 0 : 14;
}

static volatile int doomed_tid, doomed_ran_on;
static void *doomed(void *arg)
{
    (void)arg;
    __atomic_store_n(&doomed_tid, (int)syscall(SYS_gettid), __ATOMIC_RELEASE);
    syscall(SYS_getpid);
    doomed_ran_on = 1; /* not reached */
    return NULL;
}
/* KILL_THREAD with another thread alive: only the caller ends (watched with tgkill: a
 * thread that never returns from its start routine is not joinable under musl). */
static int kill_thread_mt(void)
{
    pthread_t t;
    pid_t me = getpid();
    if (!nnp() || deny(SYS_getpid, R_KILL_THREAD) != 0)
        return 10;
    if (pthread_create(&t, NULL, doomed, NULL) != 0)
        return 11;
    int tid;
    while (!(tid = __atomic_load_n(&doomed_tid, __ATOMIC_ACQUIRE)))
        usleep(1000);
    for (int i = 0; i < 20000; i++) {
        errno = 0;
        if (syscall(SYS_tgkill, me, tid, 0) == -1 && errno == ESRCH)
            return doomed_ran_on ? 12 : 0;
        usleep(1000);
    }
    return 13;
}

static int refusals(void)
{
    struct bpf_insn nort[] = { LD_NR };
    struct bpf_insn badld[] = { { 0x20, 0, 0, 2 }, RET(R_ALLOW) };
    struct bpf_insn byte[] = { { 0x30, 0, 0, 0 }, RET(R_ALLOW) };
    struct bpf_insn jump[] = { JEQ(1, 5, 0), RET(R_ALLOW) };
    if (!nnp())
        return 10;
    errno = 0;
    if (install(nort, 0, 0) != -1 || errno != EINVAL)
        return 11;
    if (install(nort, 1, 0) != -1 || errno != EINVAL)
        return 12;
    if (install(badld, 2, 0) != -1 || errno != EINVAL)
        return 13;
    if (install(byte, 2, 0) != -1 || errno != EINVAL)
        return 14;
    if (install(jump, 2, 0) != -1 || errno != EINVAL)
        return 15;
    if (install(jump, 2, 0x80) != -1 || errno != EINVAL) /* unknown flag */
        return 16;
    if (sc(OP_FILTER, 0, (void *)8) != -1 || errno != EFAULT)
        return 17;
    if (sc(OP_STRICT, 1, NULL) != -1 || errno != EINVAL)
        return 18;
    if (sc(77, 0, NULL) != -1 || errno != EINVAL)
        return 19;
    if (prctl(PR_SET_SECCOMP, 3) != -1 || errno != EINVAL)
        return 20;
    return prctl(PR_GET_SECCOMP) == 0 ? 0 : 21;
}

/* Without no_new_privs a filter needs CAP_SYS_ADMIN (EACCES otherwise). */
static int needs_nnp(void)
{
    struct { uint32_t version; int pid; } h = { 0x20080522, 0 };
    struct { uint32_t eff, perm, inh; } d[2];
    int admin = syscall(SYS_capget, &h, d) == 0 && (d[0].eff & (1u << 21));
    struct bpf_insn allow[] = { RET(R_ALLOW) };
    errno = 0;
    int r = install(allow, 1, 0);
    if (admin)
        return r == 0 ? 0 : 1;
    return r == -1 && errno == EACCES ? 0 : 2;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "exec-check") == 0) {
        errno = 0;
        long r = syscall(SYS_getppid);
        return (r == -1 && errno == 9 && prctl(PR_GET_SECCOMP) == 2) ? 0 : 1;
    }
    static char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    self_exe = n > 0 ? exe : argv[0];

    CHECK(prctl(PR_GET_SECCOMP) == 0);
    unsigned act = R_ALLOW;
    CHECK(sc(OP_AVAIL, 0, &act) == 0);
    act = R_KILL_PROCESS;
    CHECK(sc(OP_AVAIL, 0, &act) == 0);
    act = R_TRAP;
    CHECK(sc(OP_AVAIL, 0, &act) == 0);
    act = 0x12340000;
    CHECK_ERR(sc(OP_AVAIL, 0, &act), EOPNOTSUPP);
    CHECK_ERR(sc(OP_AVAIL, 1, &act), EINVAL);

    char c = 0;
    CHECK(pipe(pipe_fd) == 0);
    int st = in_child(strict_getpid);
    CHECK(read(pipe_fd[0], &c, 1) == 1 && c == 'w');
    CHECK(KILLED(st, SIGKILL)); /* strict mode: getpid kills */
    st = in_child(strict_exit);
    CHECK(read(pipe_fd[0], &c, 1) == 1 && c == 'e');
    CHECK(EXITED(st, 7)); /* strict mode: exit is allowed */

    CHECK(EXITED(in_child(refusals), 0));
    CHECK(EXITED(in_child(needs_nnp), 0));
    CHECK(EXITED(in_child(errno_getpid), 0));
    st = in_child(trap);
    CHECK(KILLED(st, SIGSYS)); /* the trap's siginfo held, then a blocked SIGSYS killed */
    CHECK(KILLED(in_child(kill_process), SIGSYS));
    CHECK(KILLED(in_child(kill_thread), SIGSYS)); /* the last thread: the process dies */
    CHECK(EXITED(in_child(kill_thread_mt), 0));
    CHECK(EXITED(in_child(trace_log), 0));
    CHECK(KILLED(in_child(layered), SIGSYS));
    CHECK(EXITED(in_child(vdso_clock), 0));
    CHECK(EXITED(in_child(forked), 0));
    CHECK(EXITED(in_child(execd), 0));
    CHECK(EXITED(in_child(tsync), 0));
    CHECK(prctl(PR_GET_SECCOMP) == 0); /* the children's filters are theirs */
    return report();
}
