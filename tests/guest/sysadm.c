/* The administration and leftover calls (issue 13): clocks read through adjtimex and
 * clock_adjtime unprivileged, clock_settime/settimeofday argument checks, host names,
 * syslog, unshare/setns, protection keys (arm64 without POE), Landlock, cachestat, file
 * handles, the NUMA calls, the LSM and mount-listing calls. Privileged outcomes are
 * checked as "done, or EPERM" so the lines hold as root and as a user.
 * qemu-user 7.2 lacks most of these (ENOSYS): run under elfuse only.
 * argv[1]: a scratch directory. */
#define _GNU_SOURCE
#include "check.h"
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_cachestat
#define SYS_cachestat 451
#endif
#ifndef SYS_listmount
#define SYS_listmount 458
#endif
#ifndef SYS_lsm_list_modules
#define SYS_lsm_list_modules 461
#endif
#ifndef SYS_set_mempolicy_home_node
#define SYS_set_mempolicy_home_node 450
#endif
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif

struct fhandle { unsigned int bytes; int type; unsigned char h[128]; };

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    char path[4096];
    snprintf(path, sizeof path, "%s/sysadm.txt", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && write(fd, "hello", 5) == 5);

    /* Clocks. */
    struct timex tx = { 0 };
    long st = syscall(SYS_adjtimex, &tx);
    CHECK(st >= 0 && st <= 5); /* modes 0: a read, unprivileged */
    memset(&tx, 0, sizeof tx);
    st = syscall(SYS_clock_adjtime, CLOCK_REALTIME, &tx);
    CHECK(st >= 0 && st <= 5);
    CHECK_ERR(syscall(SYS_adjtimex, (void *)8), EFAULT);
    struct timespec ts = { 1, 0 };
    CHECK_ERR(syscall(SYS_clock_settime, CLOCK_MONOTONIC, &ts), EINVAL);
    CHECK_ERR(syscall(SYS_clock_settime, 77, &ts), EINVAL);
    CHECK_ERR(syscall(SYS_clock_settime, CLOCK_REALTIME, (void *)8), EFAULT);
    struct timeval tv = { 1, 2000000 };
    CHECK_ERR(syscall(SYS_settimeofday, &tv, NULL), EINVAL);

    /* Names: too long is EINVAL (EPERM first unprivileged). */
    char name[80];
    memset(name, 'x', sizeof name);
    errno = 0;
    CHECK(sethostname(name, 65) == -1 && (errno == EINVAL || errno == EPERM));
    errno = 0;
    CHECK(setdomainname(name, 65) == -1 && (errno == EINVAL || errno == EPERM));

    /* syslog: the buffer size, or EPERM under dmesg_restrict. */
    errno = 0;
    long sz = syscall(SYS_syslog, 10 /* SIZE_BUFFER */, NULL, 0);
    CHECK(sz > 0 || errno == EPERM);
    errno = 0;
    CHECK(syscall(SYS_syslog, 3 /* READ_ALL */, NULL, 10) == -1 && (errno == EINVAL || errno == EPERM));

    /* Namespaces. */
    CHECK(unshare(0) == 0);
    CHECK(unshare(CLONE_FILES | CLONE_FS) == 0); /* a lone thread shares nothing */
    CHECK_ERR(unshare(0x1), EINVAL);
    CHECK_ERR(setns(-1, 0), EBADF);
    int nsfd = open("/proc/self/ns/uts", O_RDONLY);
    errno = 0;
    CHECK(nsfd >= 0 && (setns(nsfd, CLONE_NEWUTS) == 0 || errno == EPERM));

    /* Protection keys: arm64 without FEAT_S1POE. */
    char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    page[0] = 1;
    CHECK_ERR(syscall(SYS_pkey_alloc, 0, 0), ENOSPC);
    CHECK_ERR(syscall(SYS_pkey_alloc, 1, 0), EINVAL);
    CHECK_ERR(syscall(SYS_pkey_alloc, 0, 4), EINVAL);
    CHECK_ERR(syscall(SYS_pkey_free, 1), EINVAL);
    CHECK(syscall(SYS_pkey_mprotect, page, 4096, PROT_READ, 0) == 0);
    CHECK(syscall(SYS_pkey_mprotect, page, 4096, PROT_READ | PROT_WRITE, -1) == 0);
    CHECK_ERR(syscall(SYS_pkey_mprotect, page, 4096, PROT_READ, 1), EINVAL);
    page[1] = 2;

    /* Landlock: a version, or not enabled. */
    errno = 0;
    long ll = syscall(SYS_landlock_create_ruleset, NULL, 0, 1 /* VERSION */);
    CHECK(ll > 0 || errno == EOPNOTSUPP);

    /* cachestat. */
    uint64_t range[2] = { 0, 0 }, cs[5];
    CHECK(syscall(SYS_cachestat, fd, range, cs, 0) == 0 && cs[0] >= 1);
    CHECK_ERR(syscall(SYS_cachestat, fd, range, cs, 1), EINVAL);
    CHECK_ERR(syscall(SYS_cachestat, 999, range, cs, 0), EBADF);

    /* File handles: the size asked for, then the handle; opening needs
     * CAP_DAC_READ_SEARCH. */
    struct fhandle h = { 0 };
    int mnt = -1;
    errno = 0;
    long r = syscall(SYS_name_to_handle_at, AT_FDCWD, path, &h, &mnt, 0);
    int supported = !(r == -1 && errno == EOPNOTSUPP);
    CHECK(!supported || (r == -1 && errno == EOVERFLOW && h.bytes > 0 && h.bytes <= 128));
    if (supported) {
        CHECK(syscall(SYS_name_to_handle_at, AT_FDCWD, path, &h, &mnt, 0) == 0);
        errno = 0;
        int hfd = (int)syscall(SYS_open_by_handle_at, fd, &h, O_RDONLY);
        char b[8] = { 0 };
        CHECK((hfd >= 0 && read(hfd, b, 5) == 5 && memcmp(b, "hello", 5) == 0) ||
              (hfd == -1 && errno == EPERM));
    }
    CHECK_ERR(syscall(SYS_name_to_handle_at, AT_FDCWD, "/nonexistent/x", &h, &mnt, 0), ENOENT);

    /* NUMA. */
    void *pages[1] = { page };
    int status[1] = { -1 };
    CHECK(syscall(SYS_move_pages, 0, 1, pages, NULL, status, 0) == 0 && status[0] >= 0);
    pages[0] = (void *)0x1000; /* unmapped */
    CHECK(syscall(SYS_move_pages, 0, 1, pages, NULL, status, 0) == 0 && status[0] == -EFAULT);
    CHECK_ERR(syscall(SYS_move_pages, 0, 1, pages, NULL, status, 0x100), EINVAL);
    unsigned long nodes = 1;
    CHECK(syscall(SYS_migrate_pages, 0, 64, &nodes, &nodes) >= 0);
    /* No policy on the range: ENOENT (Linux's answer); once bound, the home node is set. */
    CHECK_ERR(syscall(SYS_set_mempolicy_home_node, page, 4096, 0, 0), ENOENT);
    CHECK(syscall(SYS_mbind, page, 4096, 2 /* MPOL_BIND */, &nodes, 64, 0) == 0);
    CHECK(syscall(SYS_set_mempolicy_home_node, page, 4096, 0, 0) == 0);
    CHECK_ERR(syscall(SYS_set_mempolicy_home_node, page + 1, 4096, 0, 0), EINVAL);

    /* remap_file_pages: page 0 of a 3-page shared mapping shows the file's page 2. */
    int rf = openat(AT_FDCWD, dir, O_RDWR | O_TMPFILE, 0600);
    char pg[4096];
    for (int i = 0; i < 3; i++) {
        memset(pg, 'A' + i, sizeof pg);
        if (write(rf, pg, sizeof pg) != (ssize_t)sizeof pg)
            break;
    }
    char *sh = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, rf, 0);
    CHECK(sh != MAP_FAILED && sh[0] == 'A' && sh[8192] == 'C');
    CHECK(syscall(SYS_remap_file_pages, sh, 4096, 0, 2, 0) == 0 && sh[0] == 'C' && sh[4096] == 'B');
    sh[1] = 'z';
    CHECK(pread(rf, pg, 2, 8192) == 2 && pg[1] == 'z'); /* still the file's page */
    CHECK_ERR(syscall(SYS_remap_file_pages, sh, 4096, PROT_READ, 1, 0), EINVAL);
    CHECK_ERR(syscall(SYS_remap_file_pages, page, 4096, 0, 1, 0), EINVAL); /* private */
    munmap(sh, 3 * 4096);
    close(rf);

    /* LSMs and mounts. */
    uint64_t ids[64];
    uint32_t size = sizeof ids;
    CHECK(syscall(SYS_lsm_list_modules, ids, &size, 0) >= 1 && size >= 8);
    struct { uint32_t size, spare; uint64_t mnt_id, param; } req = { 24, 0, ~0ull, 0 };
    uint64_t mids[16];
    CHECK(syscall(SYS_listmount, &req, mids, 16, 0) >= 1);

    /* mknod: a socket node unprivileged, a device node with CAP_MKNOD (else EPERM). */
    char node[4200];
    snprintf(node, sizeof node, "%s/sock", dir);
    unlink(node);
    struct stat nst;
    CHECK(mknod(node, S_IFSOCK | 0600, 0) == 0 && stat(node, &nst) == 0 && S_ISSOCK(nst.st_mode));
    unlink(node);
    snprintf(node, sizeof node, "%s/null", dir);
    unlink(node);
    errno = 0;
    int mk = mknod(node, S_IFCHR | 0600, makedev(1, 3));
    CHECK((mk == 0 && stat(node, &nst) == 0 && S_ISCHR(nst.st_mode) && major(nst.st_rdev) == 1 &&
           minor(nst.st_rdev) == 3) || (mk == -1 && errno == EPERM));
    unlink(node);
    CHECK_ERR(mknod(node, S_IFDIR | 0700, 0), EPERM);

    close(fd);
    unlink(path);
    return report();
}
