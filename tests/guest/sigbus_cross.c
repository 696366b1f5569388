/* sigbus_cross DIR: a MAP_SHARED file truncated by *another process* (a forked child)
 * while this one has it mapped and has used both pages: a load or store past the new
 * end raises SIGBUS (BUS_ADRERR, si_addr the address) to the guest's handler, again at
 * each access, and the page before the end stays usable; a syscall given that memory
 * fails with EFAULT (write's buffer, read of /dev/urandom, getrandom), as on Linux; the
 * process is not killed. DIR is an empty scratch folder.
 *
 * elfuse-only, like sigbus_sys: qemu-user 7.2 dies of a TCG assertion on such syscalls. */
#include "check.h"
#include "faultprobe.h"
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>


/* -errno of a raw syscall (so libc wrappers cannot touch the memory first). */
static long raw(long nr, long a, long b, long c)
{
    long r = syscall(nr, a, b, c, 0, 0, 0);
    return r < 0 ? -errno : r;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        printf("usage: sigbus_cross DIR\n");
        return 2;
    }
    struct sigaction sa = {0};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    CHECK(sigaction(SIGBUS, &sa, 0) == 0 && sigaction(SIGSEGV, &sa, 0) == 0);
    long pg = sysconf(_SC_PAGESIZE);
    char path[512];
    snprintf(path, sizeof path, "%s/f", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && ftruncate(fd, 2 * pg) == 0);
    char *m = mmap(0, 2 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED);
    /* Both pages used (reads and writes) before the truncation. */
    CHECK(touch(m, 1) == 0 && touch(m + pg + 8, 1) == 0 && touch(m + pg + 16, 0) == 0);
    pid_t child = fork();
    if (child == 0) {
        _exit(ftruncate(fd, pg) == 0 ? 0 : 1);
    }
    int st = -1;
    CHECK(child > 0 && waitpid(child, &st, 0) == child && WIFEXITED(st) &&
          WEXITSTATUS(st) == 0);
    for (int write = 0; write < 2; write++) {
        CHECK(touch(m + pg + 8, write) == SIGBUS);
        CHECK(got_code == BUS_ADRERR && got_addr == m + pg + 8);
    }
    CHECK(touch(m + 2 * pg - 1, 0) == SIGBUS && got_addr == m + 2 * pg - 1);
    CHECK(touch(m + 16, 0) == 0 && touch(m + pg - 1, 1) == 0);
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(raw(SYS_write, p[1], (long)(m + pg), 8) == -EFAULT);
    int ur = open("/dev/urandom", O_RDONLY);
    CHECK(ur >= 0);
    CHECK(raw(SYS_read, ur, (long)(m + pg + 8), 16) == -EFAULT);
    CHECK(raw(SYS_getrandom, (long)(m + pg + 8), 16, 0) == -EFAULT);
    CHECK(raw(SYS_read, ur, (long)(m + 8), 16) == 16);
    /* Still the guest's signal after all that. */
    CHECK(touch(m + pg, 0) == SIGBUS && got_code == BUS_ADRERR);
    CHECK(munmap(m, 2 * pg) == 0);
    close(fd);
    unlink(path);
    return report();
}
