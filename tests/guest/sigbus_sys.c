/* sigbus_sys DIR: a syscall given memory in a MAP_SHARED file page past the end of the
 * (truncated) file fails with EFAULT, as on Linux, for the memory the kernel reads (a
 * path, a write() buffer, a futex word) and the memory it writes (read(), getrandom(),
 * /dev/urandom, clock_gettime(), uname()); the process is not killed. A plain load there afterwards still
 * raises SIGBUS (BUS_ADRERR, si_addr the address) to the guest's handler. DIR is an
 * empty scratch folder.
 *
 * elfuse-only: qemu-user 7.2 itself dies (a TCG assertion) at the first such syscall. */
#include "check.h"
#include "faultprobe.h"
#include <errno.h>
#include <fcntl.h>
#ifndef FUTEX_WAIT
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#endif
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define T(c, what) check_((c) != 0, what, __LINE__)


/* -errno of a raw syscall (so libc wrappers cannot touch the memory first). */
static long raw(long nr, long a, long b, long c, long d)
{
    long r = syscall(nr, a, b, c, d, 0, 0);
    return r < 0 ? -errno : r;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        printf("usage: sigbus_sys DIR\n");
        return 2;
    }
    long pg = sysconf(_SC_PAGESIZE);
    char path[512];
    snprintf(path, sizeof path, "%s/f", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    T(fd >= 0, "open the scratch file");
    T(ftruncate(fd, 2 * pg) == 0, "ftruncate to two pages");
    char *m = mmap(0, 2 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    T(m != MAP_FAILED, "mmap MAP_SHARED two pages");
    strcpy(m + pg, "/etc/hostname");
    T(m[pg] == '/', "the second page is the file's");
    T(ftruncate(fd, pg) == 0, "truncate the file to one page");
    char *past = m + pg;

    T(raw(SYS_openat, AT_FDCWD, (long)past, O_RDONLY, 0) == -EFAULT,
          "openat with the path past EOF: EFAULT");
    T(raw(SYS_write, fd, (long)past, 16, 0) == -EFAULT, "write from past EOF: EFAULT");
    int p[2];
    T(pipe(p) == 0, "pipe");
    T(write(p[1], "hello", 5) == 5, "fill the pipe");
    T(raw(SYS_read, p[0], (long)past, 5, 0) == -EFAULT, "read() into past EOF: EFAULT");
    T(raw(SYS_getrandom, (long)past, 16, 0, 0) == -EFAULT, "getrandom into past EOF: EFAULT");
    int ur = open("/dev/urandom", O_RDONLY);
    T(ur >= 0, "open /dev/urandom");
    T(raw(SYS_read, ur, (long)past, 16, 0) == -EFAULT, "read /dev/urandom into past EOF: EFAULT");
    close(ur);
    T(raw(SYS_futex, (long)past, FUTEX_WAIT, 0, 0) == -EFAULT,
          "futex wait on a word past EOF: EFAULT");
    T(raw(SYS_futex, (long)past, FUTEX_WAKE, 1, 0) == 0 ||
              raw(SYS_futex, (long)past, FUTEX_WAKE, 1, 0) == -EFAULT,
          "futex wake on a word past EOF returns");
    T(raw(SYS_clock_gettime, CLOCK_REALTIME, (long)past, 0, 0) == -EFAULT,
          "clock_gettime into past EOF: EFAULT");
    T(raw(SYS_uname, (long)past, 0, 0, 0) == -EFAULT, "uname into past EOF: EFAULT");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGBUS, &sa, 0);
    touch((volatile char *)past, 0);
    T(got_sig == SIGBUS, "a load past EOF afterwards: SIGBUS");
    T(got_code == BUS_ADRERR, "si_code BUS_ADRERR");
    T(got_addr == past, "si_addr the address");
    touch((volatile char *)(past + 8), 1);
    T(got_sig == SIGBUS && got_addr == past + 8, "a store past EOF: SIGBUS at the address");
    unlink(path);
    return report();
}
