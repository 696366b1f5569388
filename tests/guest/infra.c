/* The infra reserve (shim code, shim_data, EL1 stacks, page tables) is invisible
 * to the guest. elfuse-only: the addresses are elfuse's, passed in argv.
 *
 *   infra load ADDR      a plain load from ADDR (dies of SIGSEGV)
 *   infra store ADDR     a plain store to ADDR (dies of SIGSEGV)
 *   infra handler ADDR   a load from ADDR under a SIGSEGV handler: si_addr == ADDR
 *   infra calls ADDR BASE  syscalls given ADDR as a buffer fail with EFAULT/EINVAL/
 *                        ENOMEM and leave it alone (BASE: start of the reserve); the
 *                        fast paths still work afterwards
 */
#include "check.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static volatile unsigned long target;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    int ok = sig == SIGSEGV && (unsigned long)si->si_addr == target && si->si_code == SEGV_ACCERR;
    printf("%s SIGSEGV at the infra address (si_code %d)\n", ok ? "ok  " : "FAIL", si->si_code);
    fflush(stdout);
    _exit(ok ? 0 : 1);
}

/* /proc/self/maps describes the guest: the reserve is one ---p line, the stack and
 * the vDSO are named, and the stack line holds this frame. */
static void maps(char *base)
{
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK(f != NULL);
    if (!f)
        return;
    char line[512];
    int infra = 0, stack = 0, vdso = 0, lines = 0;
    unsigned long here = (unsigned long)&line;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[5];
        lines++;
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3)
            continue;
        if (lo == (unsigned long)base && !strcmp(perms, "---p"))
            infra = 1;
        if (strstr(line, "[stack]") && lo <= here && here < hi)
            stack = 1;
        if (strstr(line, "[vdso]") && perms[2] == 'x')
            vdso = 1;
    }
    fclose(f);
    CHECK(lines > 3);
    CHECK(infra);
    CHECK(stack);
    CHECK(vdso);
    CHECK(open("/proc/self/maps", O_WRONLY) == -1);
}

static int calls(void *p, char *base)
{
    pid_t pid = getpid();
    int u = open("/dev/urandom", O_RDONLY);
    CHECK(u >= 0);
    CHECK_ERR(read(u, p, 16), EFAULT);
    CHECK_ERR(read(u, p, 1000), EFAULT);
    CHECK_ERR(getrandom(p, 16, 0), EFAULT);
    struct iovec iov = {p, 16};
    CHECK_ERR(readv(u, &iov, 1), EFAULT);
    CHECK_ERR(readv(u, (struct iovec *)p, 1), EFAULT);
    int fds[2];
    CHECK(pipe(fds) == 0 && write(fds[1], "abcd", 4) == 4);
    CHECK_ERR(read(fds[0], p, 4), EFAULT);
    CHECK_ERR(write(fds[1], p, 4), EFAULT);
    /* A buffer that starts in user memory and runs into the reserve. */
    CHECK_ERR(read(u, base - 8, 16), EFAULT);
    CHECK_ERR(getrandom(base - 1, 2, 0), EFAULT);

    long pg = 4096;
    void *pa = (void *)((unsigned long)p & ~(pg - 1));
    CHECK(mmap(pa, pg, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED);
    CHECK(munmap(pa, pg) == -1);
    CHECK(mprotect(pa, pg, PROT_READ) == -1);
    CHECK(madvise(pa, pg, MADV_DONTNEED) == -1);
    CHECK(mremap(pa, pg, 2 * pg, MREMAP_MAYMOVE) == MAP_FAILED);
    /* A hint inside the reserve is ignored, never honoured. */
    void *h = mmap(pa, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(h != MAP_FAILED && h != pa);

    /* shim_data is intact: the fast paths still answer right. */
    CHECK(syscall(SYS_getpid) == pid && syscall(SYS_gettid) == pid);
    unsigned char b[32] = {0};
    CHECK(read(u, b, 32) == 32 && getrandom(b, 32, 0) == 32);
    maps(base);
    return report();
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: infra load|store|handler|calls ADDR\n");
        return 2;
    }
    target = strtoul(argv[2], NULL, 0);
    volatile unsigned long *p = (volatile unsigned long *)target;
    if (!strcmp(argv[1], "load")) {
        printf("loading\n");
        fflush(stdout);
        return (int)*p;
    }
    if (!strcmp(argv[1], "store")) {
        printf("storing\n");
        fflush(stdout);
        *p = 0x4141414141414141UL;
        return 0;
    }
    if (!strcmp(argv[1], "handler")) {
        struct sigaction sa = {0};
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGSEGV, &sa, NULL);
        return (int)*p + 100;
    }
    if (!strcmp(argv[1], "calls") && argc > 3)
        return calls((void *)p, (char *)strtoul(argv[3], NULL, 0));
    return 2;
}
