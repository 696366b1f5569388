/* fuzz_syscalls SEED CALLS THREADS: THREADS threads each issue CALLS random syscalls
 * (numbers 0..459 and arguments from a seeded xorshift: small integers, -1, random
 * 64-bit values, pointers into a scratch buffer of random bytes, unmapped and kernel
 * addresses), then the program prints `PASS`. Run in an empty scratch directory: the
 * scratch bytes hold no '/' and no '.', so a path argument names an entry of the
 * current directory (which the program never leaves) and nothing else. It refuses to run
 * unless fds 0-2 are pipes or files and the directory is empty, and caps files at 16 MiB.
 *
 * Denied (they would end or wedge the run, or reach outside the process as root): exits,
 * signals to anything (kill, tkill, tgkill, sigqueue, pidfd_send_signal), clone/execve,
 * the caller's own memory map (brk, munmap, mremap, mprotect, madvise, mlockall), signal
 * dispositions and masks, the calls that wait with a signal mask (rt_sigsuspend, ppoll,
 * pselect6, epoll_pwait*), timers (the program's own interrupt the workers), cwd and
 * root changes, credentials and limits, scheduling policy, other processes' memory,
 * ptrace, namespaces, mounts, modules, reboot, clocks, and the host-wide ones (swap,
 * sync, syslog, acct, quotas, hostname, keyrings, bpf, perf, fanotify, landlock).
 *
 * A per-thread timer signal (every 5 ms, no SA_RESTART) interrupts blocking calls.
 * The guest may die of a signal as Linux would; elfuse must not panic, hang or die. */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const int deny[] = {
    93, 94,                               /* exit, exit_group */
    129, 130, 131, 138, 240, 424,         /* kill, tkill, tgkill, sigqueues, pidfd_send_signal */
    220, 435, 221, 281,                   /* clone, clone3, execve, execveat */
    214, 215, 216, 226, 233, 230, 231,    /* brk, munmap, mremap, mprotect, madvise, mlockall */
    134, 135, 139, 133,                   /* rt_sigaction, rt_sigprocmask, rt_sigreturn, rt_sigsuspend */
    72, 73, 22, 441,                      /* pselect6, ppoll, epoll_pwait, epoll_pwait2 */
    102, 103, 107, 108, 109, 110, 111,    /* itimers, POSIX timers */
    49, 50, 51, 41, 40, 39,               /* chdir, fchdir, chroot, pivot_root, mount, umount */
    428, 429, 430, 431, 432, 442,         /* new mount API, mount_setattr */
    143, 144, 145, 146, 147, 148, 149, 150, 151, 152, 159, /* set*id, setgroups */
    154, 157,                             /* setpgid, setsid */
    161, 162, 163, 164, 261,              /* sethostname, setdomainname, rlimits */
    118, 119, 122, 140, 30, 274,          /* scheduling policy, nice, ioprio_set, sched_setattr */
    117, 270, 271, 272, 238, 239, 438, 440, 448, /* ptrace, process_vm_*, kcmp, numa moves, pidfd_getfd, process_madvise, mrelease */
    97, 268,                              /* unshare, setns */
    104, 105, 106, 273, 294,              /* kexec, modules */
    142, 89, 116, 58, 60, 443,            /* reboot, acct, syslog, vhangup, quotactl */
    224, 225, 81, 267,                    /* swapon, swapoff, sync, syncfs */
    112, 170, 171, 266,                   /* clock_settime, settimeofday, adjtimex, clock_adjtime */
    217, 218, 219, 280, 241, 262, 263,    /* keys, bpf, perf_event_open, fanotify */
    444, 445, 446, 92, 167, 277, 33,      /* landlock, personality, prctl, seccomp, mknodat */
    24, 57, 436,                          /* dup3, close, close_range (the program's own fds) */
    264, 265,                             /* name_to_handle_at, open_by_handle_at (any inode, as root) */
    425, 426, 427,                        /* io_uring */
    96, 99,                               /* set_tid_address, set_robust_list (pthread_join waits on them) */
};

/* Calls allowed only with some arguments: sockets of AF_UNIX, AF_INET, AF_INET6 only
 * (no netlink or packet sockets that could change the host's network as root), no
 * socket ioctls (0x89xx: SIOCSIF*, routes). */
static int denied_args(int nr, const long *a)
{
    if (nr == 198 || nr == 199)
        return !(a[0] == 1 || a[0] == 2 || a[0] == 10);
    if (nr == 29)
        return (a[1] & 0xff00) == 0x8900;
    return 0;
}

static int denied(int nr)
{
    for (size_t i = 0; i < sizeof deny / sizeof deny[0]; i++)
        if (deny[i] == nr)
            return 1;
    return 0;
}

/* The scratch buffer has its own mapping with a PROT_NONE guard after it: a call that
 * writes past its end faults there (EFAULT) instead of overwriting libc's data. */
#define SCRATCH 65536
#define GUARD (1 << 20)
static unsigned char *scratch;

static uint64_t next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static long arg(uint64_t *s)
{
    switch (next(s) % 8) {
    case 0:
        return next(s) % 8;
    case 1:
        return -1;
    case 2:
        return (long)next(s);
    case 3:
    case 4:
        return (long)(scratch + next(s) % SCRATCH);
    case 5:
        return 0x1000; /* unmapped */
    case 6:
        return (long)0xffff000000001000ull; /* a kernel address */
    default:
        return (long)(next(s) % 0x10000);
    }
}

static void fill(uint64_t *s)
{
    for (size_t i = 0; i < SCRATCH; i++) {
        unsigned char c = next(s);
        scratch[i] = (c == '/' || c == '.') ? 'x' : c;
    }
}

struct kernel_sigevent {
    long value;
    int signo;
    int notify;
    int tid;
    int pad[11];
};

static long calls;
static uint64_t seed;

static void on_tick(int sig) { (void)sig; }

static void *worker(void *p)
{
    uint64_t s = seed * 2654435761u + (uintptr_t)p + 1;
    struct kernel_sigevent ev = {0};
    ev.signo = SIGUSR1;
    ev.notify = 4; /* SIGEV_THREAD_ID */
    ev.tid = syscall(SYS_gettid);
    int timer;
    if (syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &timer) == 0) {
        struct itimerspec it = {{0, 5000000}, {0, 5000000}};
        syscall(SYS_timer_settime, timer, 0, &it, 0);
    }
    for (long i = 0; i < calls; i++) {
        int nr = next(&s) % 460;
        if (denied(nr))
            continue;
        if (i % 64 == 0 && (uintptr_t)p == 0)
            fill(&s);
        long a[6];
        for (int k = 0; k < 6; k++)
            a[k] = arg(&s);
        if (denied_args(nr, a))
            continue;
        syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        printf("usage: fuzz_syscalls SEED CALLS THREADS\n");
        return 2;
    }
    /* What the calls can reach: fds 0-2 (pipes or files, never a device such as /dev/null
     * whose mode a random fchmod would change as root) and the current directory, which
     * must be empty; files are capped at 16 MiB (fallocate, sendfile... cannot fill the
     * disk). */
    for (int fd = 0; fd < 3; fd++) {
        struct stat st;
        if (fstat(fd, &st) != 0 || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
            printf("fuzz_syscalls: fd %d must be a pipe or a file\n", fd);
            return 2;
        }
    }
    DIR *d = opendir(".");
    struct dirent *e;
    int entries = 0;
    while (d && (e = readdir(d)))
        entries += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (!d || entries) {
        printf("fuzz_syscalls: run it in an empty scratch directory\n");
        return 2;
    }
    closedir(d);
    struct rlimit fsz = {16 << 20, 16 << 20};
    setrlimit(RLIMIT_FSIZE, &fsz);
    seed = strtoull(argv[1], 0, 0);
    calls = strtol(argv[2], 0, 0);
    int threads = atoi(argv[3]);
    if (threads < 1 || threads > 64)
        threads = 4;
    scratch = mmap(0, SCRATCH + GUARD, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (scratch == MAP_FAILED || mprotect(scratch, SCRATCH, PROT_READ | PROT_WRITE) != 0) {
        printf("cannot map the scratch buffer\n");
        return 1;
    }
    uint64_t s = seed | 1;
    fill(&s);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_tick; /* no SA_RESTART: a blocking call returns EINTR */
    sigaction(SIGUSR1, &sa, 0);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    signal(SIGTTOU, SIG_IGN);
    signal(SIGTTIN, SIG_IGN);
    pthread_t t[64];
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], 0, worker, (void *)(uintptr_t)i);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], 0);
    printf("PASS %d threads x %ld calls, seed %llu\n", threads, calls,
           (unsigned long long)seed);
    fflush(stdout);
    return 0;
}
