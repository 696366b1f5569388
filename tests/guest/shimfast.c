/* The calls the EL1 shim may answer without leaving the guest: identity,
 * /dev/urandom reads and getrandom. Everything printed is implementation-
 * neutral (compared with qemu-aarch64).
 *
 *   shimfast ident N    N rounds of raw identity calls, checked against
 *                       answers that always come from the host
 *   shimfast random     read/readv/getrandom of urandom: sizes, flags, drain
 *   shimfast reuse      a closed urandom fd number reused by a pipe
 *   shimfast efault     buffers that are unmapped or read-only
 *   shimfast bench N    ns per call (elfuse-only: prints timings)
 */
#include "check.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static long sys0(long nr) { return syscall(nr); }

static int nonzero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 1;
    return 0;
}

static int ident(int n)
{
    pid_t pid = sys0(SYS_getpid);
    uid_t r, e, s;
    gid_t gr, ge, gs;
    /* getresuid/getresgid, getpgid(pid) and getsid(pid) always reach the host. */
    CHECK(getresuid(&r, &e, &s) == 0 && getresgid(&gr, &ge, &gs) == 0);
    long pg = syscall(SYS_getpgid, pid), sid = syscall(SYS_getsid, pid);
    long ppid = sys0(SYS_getppid);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        bad += sys0(SYS_getpid) != pid;
        bad += sys0(SYS_gettid) != pid;
        bad += sys0(SYS_getppid) != ppid;
        bad += sys0(SYS_getuid) != (long)r;
        bad += sys0(SYS_geteuid) != (long)e;
        bad += sys0(SYS_getgid) != (long)gr;
        bad += sys0(SYS_getegid) != (long)ge;
        bad += syscall(SYS_getpgid, 0) != pg;
        bad += syscall(SYS_getsid, 0) != sid;
    }
    CHECK(pid > 0);
    CHECK(bad == 0);
    /* A register the guest keeps across calls is not clobbered by the shim. */
    register long x9 __asm__("x9") = 0x1234567887654321;
    register long x18 __asm__("x18") = 0x1111222233334444;
    register long x8 __asm__("x8") = SYS_getpid;
    register long x0 __asm__("x0");
    __asm__ volatile("svc #0" : "=r"(x0), "+r"(x9), "+r"(x18) : "r"(x8) : "memory");
    CHECK(x0 == pid && x9 == 0x1234567887654321 && x18 == 0x1111222233334444);
    return report();
}

static int random_(void)
{
    int fd = open("/dev/urandom", O_RDONLY);
    CHECK(fd >= 0);
    unsigned char a[300], b[300];
    int ok = 1;
    for (int n = 1; n <= 256; n++) {
        memset(a, 0, sizeof a);
        ok &= read(fd, a, n) == n;
        ok &= a[n] == 0; /* nothing past the end */
    }
    CHECK(ok);
    /* 1-byte reads are not all equal (P(all 64 equal) = 2^-504). */
    int varied = 0;
    unsigned char first;
    CHECK(read(fd, &first, 1) == 1);
    for (int i = 0; i < 64; i++) {
        unsigned char c;
        varied |= read(fd, &c, 1) == 1 && c != first;
    }
    CHECK(varied);
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    CHECK(read(fd, a, 256) == 256 && read(fd, b, 256) == 256);
    CHECK(nonzero(a, 256) && memcmp(a, b, 256) != 0);
    CHECK(read(fd, a, 257) == 257); /* over the shim's limit: the host's */
    CHECK(read(fd, a, 0) == 0);

    /* readv: several buffers, an empty one, and more than the shim serves. */
    memset(a, 0, sizeof a);
    struct iovec iov[4] = {{a, 10}, {a + 50, 0}, {a + 100, 100}, {a + 250, 1}};
    CHECK(readv(fd, iov, 4) == 111);
    CHECK(nonzero(a, 10) && nonzero(a + 100, 100) && a[10] == 0 && a[99] == 0 && a[251] == 0);
    struct iovec big[2] = {{a, 200}, {b, 100}};
    CHECK(readv(fd, big, 2) == 300);
    struct iovec many[9];
    for (int i = 0; i < 9; i++)
        many[i] = (struct iovec){a + i, 1};
    CHECK(readv(fd, many, 9) == 9);
    CHECK(readv(fd, many, 0) == 0);

    /* getrandom: every valid flag combination, then invalid ones. */
    int flags[] = {0, GRND_NONBLOCK, GRND_RANDOM, GRND_INSECURE, GRND_NONBLOCK | GRND_RANDOM,
                   GRND_NONBLOCK | GRND_INSECURE};
    ok = 1;
    for (unsigned i = 0; i < sizeof flags / sizeof *flags; i++) {
        memset(a, 0, sizeof a);
        ok &= getrandom(a, 32, flags[i]) == 32 && nonzero(a, 32);
    }
    CHECK(ok);
    CHECK_ERR(getrandom(a, 16, GRND_RANDOM | GRND_INSECURE), EINVAL);
    CHECK_ERR(getrandom(a, 16, 8), EINVAL);
    /* flags is an unsigned int: bits above 31 are ignored, as Linux does. */
    CHECK(syscall(SYS_getrandom, a, 16, 1UL << 32) == 16);
    CHECK_ERR(syscall(SYS_getrandom, a, 16, (1UL << 32) | 8), EINVAL);
    CHECK(getrandom(a, 256, 0) == 256 && getrandom(a, 257, 0) == 257);

    /* Drain far more than the ring holds: every call still answers. */
    ok = 1;
    int distinct = 1;
    for (int i = 0; i < 200; i++) {
        ok &= read(fd, a, 200) == 200 && getrandom(b, 200, 0) == 200;
        distinct &= memcmp(a, b, 200) != 0 && nonzero(a, 200);
    }
    CHECK(ok && distinct);
    close(fd);

    /* O_WRONLY urandom is not readable; O_RDWR is. */
    fd = open("/dev/urandom", O_WRONLY);
    CHECK_ERR(read(fd, a, 8), EBADF);
    close(fd);
    fd = open("/dev/urandom", O_RDWR);
    CHECK(read(fd, a, 8) == 8);
    close(fd);
    return report();
}

static int reuse(void)
{
    unsigned char buf[16] = {0};
    int u = open("/dev/urandom", O_RDONLY);
    CHECK(u >= 0 && read(u, buf, 8) == 8);
    CHECK(close(u) == 0);
    CHECK_ERR(read(u, buf, 8), EBADF);
    int p[2];
    CHECK(pipe(p) == 0 && p[0] == u); /* the number is reused */
    CHECK(write(p[1], "abc", 3) == 3);
    memset(buf, 0, sizeof buf);
    CHECK(read(u, buf, 8) == 3 && memcmp(buf, "abc", 3) == 0);
    close(p[0]);
    close(p[1]);

    /* dup2 over a urandom fd, and a dup of one. */
    u = open("/dev/urandom", O_RDONLY);
    int d = dup(u);
    CHECK(d >= 0 && read(d, buf, 8) == 8);
    CHECK(pipe(p) == 0 && dup2(p[0], u) == u);
    CHECK(write(p[1], "xyz", 3) == 3);
    memset(buf, 0, sizeof buf);
    CHECK(read(u, buf, 8) == 3 && memcmp(buf, "xyz", 3) == 0);
    CHECK(read(d, buf, 8) == 8);
    /* close_range over the dup, then a pipe takes its number. */
    CHECK(syscall(SYS_close_range, d, d, 0) == 0);
    int q[2];
    CHECK(pipe(q) == 0 && q[0] == d);
    CHECK(write(q[1], "pq", 2) == 2 && read(d, buf, 8) == 2 && memcmp(buf, "pq", 2) == 0);
    return report();
}

static int efault(void)
{
    int fd = open("/dev/urandom", O_RDONLY);
    long pg = sysconf(_SC_PAGESIZE);
    unsigned char *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    CHECK(read(fd, m, 16) == 16);
    /* The buffer goes away: the shim's copy faults and becomes EFAULT. */
    CHECK(munmap(m, 2 * pg) == 0);
    CHECK_ERR(read(fd, m, 16), EFAULT);
    CHECK_ERR(read(fd, m + pg - 1, 1), EFAULT);
    CHECK_ERR(getrandom(m, 16, 0), EFAULT);
    struct iovec iov[2] = {{m, 8}, {m + 8, 8}};
    CHECK_ERR(readv(fd, iov, 2), EFAULT);
    /* An iovec array that is itself unmapped. */
    CHECK_ERR(readv(fd, (struct iovec *)m, 1), EFAULT);
    /* Read-only memory. */
    unsigned char *ro = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK_ERR(read(fd, ro, 16), EFAULT);
    CHECK_ERR(getrandom(ro, 16, 0), EFAULT);
    CHECK(ro[0] == 0);
    CHECK_ERR(read(fd, NULL, 16), EFAULT);
    /* Everything still works afterwards (the ring lock was released). */
    unsigned char ok[16];
    CHECK(read(fd, ok, 16) == 16 && getrandom(ok, 16, 0) == 16);
    return report();
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median over 9 batches of n calls, in ns per call. */
static double bench_one(int which, int n, int fd)
{
    double t[9];
    unsigned char c[8], big[256];
    pid_t pid = getpid();
    for (int k = 0; k < 9; k++) {
        double t0 = now();
        for (int i = 0; i < n; i++) {
            switch (which) {
            case 0: sys0(SYS_getpid); break;
            case 1: read(fd, c, 1); break;
            case 2: getrandom(c, 8, 0); break;
            case 3: syscall(SYS_getpgid, pid); break; /* always the host's */
            case 4: read(fd, big, 256); break;
            }
        }
        t[k] = (now() - t0) / n;
    }
    qsort(t, 9, sizeof *t, cmp);
    return t[4];
}

static int bench(int n)
{
    int fd = open("/dev/urandom", O_RDONLY);
    printf("getpid %.0f ns\n", bench_one(0, n, fd));
    printf("read_urandom_1 %.0f ns\n", bench_one(1, n, fd));
    printf("getrandom_8 %.0f ns\n", bench_one(2, n, fd));
    printf("getpgid_self_forwarded %.0f ns\n", bench_one(3, n, fd));
    printf("read_urandom_256 %.0f ns\n", bench_one(4, n, fd));
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    int n = argc > 2 ? atoi(argv[2]) : 100;
    if (!strcmp(mode, "ident"))
        return ident(n);
    if (!strcmp(mode, "random"))
        return random_();
    if (!strcmp(mode, "reuse"))
        return reuse();
    if (!strcmp(mode, "efault"))
        return efault();
    if (!strcmp(mode, "bench"))
        return bench(n);
    fprintf(stderr, "usage: shimfast ident|random|reuse|efault|bench [N]\n");
    return 2;
}
