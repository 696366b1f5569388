/* files DIR [strict]: memfd_create (flags, seals, a MAP_SHARED mapping shared with a fork
 * child), copy_file_range, splice, tee, vmsplice, sync_file_range, readahead, syncfs,
 * O_TMPFILE, inside the scratch folder DIR. "strict" adds what qemu-user 7.2 does not
 * implement (ENOSYS): preadv2/pwritev2 (RWF_*) and fchmodat2; run under elfuse only. */
#include "check.h"
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define BAD ((void *)8)
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 1u
#define MFD_ALLOW_SEALING 2u
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#define F_SEAL_SEAL 1
#define F_SEAL_SHRINK 2
#define F_SEAL_GROW 4
#define F_SEAL_WRITE 8
#endif
#ifndef RWF_APPEND
#define RWF_APPEND 0x10
#endif

/* Raw: not every libc has the wrappers. On 64-bit the position is one register (pos_l);
 * pos_h is ignored. */
static long rw2(int nr, int fd, const struct iovec *v, int n, long pos, int flags)
{
    return syscall(nr, fd, v, n, pos, 0, flags);
}
#define preadv2_(fd, v, n, pos, fl) rw2(SYS_preadv2, fd, v, n, pos, fl)
#define pwritev2_(fd, v, n, pos, fl) rw2(SYS_pwritev2, fd, v, n, pos, fl)

static int memfd(const char *name, unsigned flags)
{
    return syscall(SYS_memfd_create, name, flags);
}

static void memfds(void)
{
    int fd = memfd("test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    CHECK(fd >= 0);
    CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC);
    CHECK(ftruncate(fd, 8192) == 0);
    CHECK(pwrite(fd, "parent", 6, 0) == 6);
    CHECK(fcntl(fd, F_GET_SEALS) == 0);

    /* A shared mapping: the fork child sees the parent's data and the parent the child's. */
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED);
    CHECK(memcmp(m, "parent", 6) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        int ok = memcmp(m, "parent", 6) == 0;
        memcpy(m + 4096, "child", 5);
        _exit(ok ? 0 : 1);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(memcmp(m + 4096, "child", 5) == 0);
    char buf[8] = {0};
    CHECK(pread(fd, buf, 5, 4096) == 5 && memcmp(buf, "child", 5) == 0);

    /* Seals. */
    CHECK_ERR(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), EBUSY); /* a writable mapping exists */
    CHECK(munmap(m, 8192) == 0);
    CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0);
    CHECK(fcntl(fd, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW));
    CHECK_ERR(ftruncate(fd, 100), EPERM);
    CHECK_ERR(ftruncate(fd, 100000), EPERM);
    CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SEAL) == 0);
    CHECK_ERR(pwrite(fd, "x", 1, 0), EPERM);
    CHECK_ERR(fcntl(fd, F_ADD_SEALS, F_SEAL_GROW), EPERM);
    CHECK_ERR(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), EPERM);
    close(fd);

    /* No sealing allowed, no close-on-exec. */
    fd = memfd("plain", 0);
    CHECK(fd >= 0 && fcntl(fd, F_GETFD) == 0);
    CHECK(fcntl(fd, F_GET_SEALS) == F_SEAL_SEAL);
    CHECK_ERR(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), EPERM);
    struct stat sb;
    CHECK(fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 0);
    close(fd);

    char longname[300];
    memset(longname, 'n', sizeof longname);
    longname[250] = 0;
    CHECK_ERR(memfd(longname, 0), EINVAL);
    longname[249] = 0;
    fd = memfd(longname, 0);
    CHECK(fd >= 0);
    close(fd);
    CHECK_ERR(memfd("x", 0x100), EINVAL);
    CHECK_ERR(memfd(BAD, 0), EFAULT);
}

static void transfers(const char *dir, int strict)
{
    char a[PATH_MAX], b[PATH_MAX], buf[64];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    int fa = open(a, O_CREAT | O_RDWR, 0644), fb = open(b, O_CREAT | O_RDWR, 0644);
    CHECK(fa >= 0 && fb >= 0);
    CHECK(write(fa, "hello world", 11) == 11);

    /* copy_file_range: an explicit input offset (updated), the output's file position. */
    loff_t off = 6;
    CHECK(syscall(SYS_copy_file_range, fa, &off, fb, NULL, 5, 0) == 5 && off == 11);
    CHECK(lseek(fb, 0, SEEK_CUR) == 5);
    memset(buf, 0, sizeof buf);
    CHECK(pread(fb, buf, sizeof buf, 0) == 5 && strcmp(buf, "world") == 0);
    loff_t o2 = 0;
    CHECK(syscall(SYS_copy_file_range, fa, NULL, fb, &o2, 3, 0) == 0); /* fa is at its end */
    CHECK_ERR(syscall(SYS_copy_file_range, fa, &off, fb, NULL, 5, 1), EINVAL);
    CHECK_ERR(syscall(SYS_copy_file_range, fa, BAD, fb, NULL, 5, 0), EFAULT);
    CHECK_ERR(syscall(SYS_copy_file_range, 999, NULL, fb, NULL, 5, 0), EBADF);

    /* splice: file → pipe with an offset, pipe → file. */
    int p[2], q[2];
    CHECK(pipe(p) == 0 && pipe(q) == 0);
    off = 0;
    CHECK(splice(fa, &off, p[1], NULL, 5, 0) == 5 && off == 5);
    memset(buf, 0, sizeof buf);
    CHECK(read(p[0], buf, sizeof buf) == 5 && strcmp(buf, "hello") == 0);
    CHECK(write(p[1], "spliced", 7) == 7);
    off = 20;
    CHECK(splice(p[0], NULL, fb, &off, 7, 0) == 7 && off == 27);
    memset(buf, 0, sizeof buf);
    CHECK(pread(fb, buf, 7, 20) == 7 && strcmp(buf, "spliced") == 0);
    CHECK_ERR(splice(fa, NULL, fb, NULL, 5, 0), EINVAL); /* neither is a pipe */
    CHECK_ERR(splice(fa, BAD, p[1], NULL, 5, 0), EFAULT);

    /* tee: duplicates without consuming. */
    CHECK(write(p[1], "abc", 3) == 3);
    CHECK(tee(p[0], q[1], 3, 0) == 3);
    memset(buf, 0, sizeof buf);
    CHECK(read(q[0], buf, sizeof buf) == 3 && strcmp(buf, "abc") == 0);
    memset(buf, 0, sizeof buf);
    CHECK(read(p[0], buf, sizeof buf) == 3 && strcmp(buf, "abc") == 0);
    CHECK_ERR(tee(fa, q[1], 3, 0), EINVAL);

    /* vmsplice: into the write end (buffers read), out of the read end (written). */
    char src[] = "xyz";
    struct iovec iv = {src, 3};
    CHECK(vmsplice(p[1], &iv, 1, 0) == 3);
    memset(buf, 0, sizeof buf);
    CHECK(read(p[0], buf, sizeof buf) == 3 && strcmp(buf, "xyz") == 0);
    CHECK(write(p[1], "qq", 2) == 2);
    memset(buf, 0, sizeof buf);
    struct iovec out = {buf, 2};
    CHECK(vmsplice(p[0], &out, 1, 0) == 2 && strcmp(buf, "qq") == 0);
    struct iovec bad = {BAD, 3};
    CHECK_ERR(vmsplice(p[1], &bad, 1, 0), EFAULT);
    CHECK_ERR(vmsplice(p[1], BAD, 1, 0), EFAULT);

    /* Syncing and read-ahead. */
    CHECK(sync_file_range(fa, 0, 0, SYNC_FILE_RANGE_WRITE) == 0);
    CHECK_ERR(sync_file_range(fa, 0, 0, 8), EINVAL);
    CHECK_ERR(sync_file_range(p[0], 0, 0, SYNC_FILE_RANGE_WRITE), ESPIPE);
    CHECK(readahead(fa, 0, 4096) == 0);
    CHECK_ERR(readahead(p[0], 0, 4096), EINVAL);
    CHECK(syncfs(fa) == 0);
    CHECK_ERR(syncfs(999), EBADF);

    if (strict) { /* qemu-user 7.2 has no preadv2/pwritev2 (ENOSYS) */
        /* preadv2/pwritev2: an offset, -1 (the file position), RWF_APPEND, unknown flags. */
        struct iovec w = {"0123456789", 10};
        CHECK(pwritev2_(fb, &w, 1, 100, 0) == 10);
        char r[16] = {0};
        struct iovec rv = {r, 4};
        CHECK(preadv2_(fb, &rv, 1, 102, 0) == 4 && memcmp(r, "2345", 4) == 0);
        CHECK(lseek(fb, 104, SEEK_SET) == 104);
        CHECK(preadv2_(fb, &rv, 1, -1, 0) == 4 && memcmp(r, "4567", 4) == 0);
        CHECK(lseek(fb, 0, SEEK_CUR) == 108);
        CHECK(pwritev2_(fb, &w, 1, 0, RWF_APPEND) == 10);
        CHECK(lseek(fb, 0, SEEK_END) == 120);
        CHECK_ERR(preadv2_(fb, &rv, 1, 0, 0x40000000), EOPNOTSUPP);
        CHECK_ERR(preadv2_(fb, &rv, 1, -5, 0), EINVAL);
        struct iovec rbad = {BAD, 4};
        CHECK_ERR(preadv2_(fb, &rbad, 1, 0, 0), EFAULT);
    }
    close(p[0]), close(p[1]), close(q[0]), close(q[1]);
    close(fa), close(fb);
}

static void tmpfile_(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_RDWR, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, "anon", 4) == 4);
    struct stat sb;
    CHECK(fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_nlink == 0 && sb.st_size == 4);
    char path[PATH_MAX], buf[8] = {0};
    snprintf(path, sizeof path, "%s/named", dir);
    if (geteuid() == 0) /* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH */
        CHECK(linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) == 0);
    else
        CHECK(1);
    close(fd);
    if (geteuid() == 0) {
        int f = open(path, O_RDONLY);
        CHECK(f >= 0 && read(f, buf, sizeof buf) == 4 && strcmp(buf, "anon") == 0);
        close(f);
    }
    CHECK_ERR(open(dir, O_TMPFILE | O_RDONLY, 0600), EINVAL); /* needs write access */
}

static void fchmodat2_(const char *dir)
{
    char f[PATH_MAX], l[PATH_MAX];
    snprintf(f, sizeof f, "%s/m", dir);
    snprintf(l, sizeof l, "%s/ml", dir);
    int fd = open(f, O_CREAT | O_RDWR, 0644);
    CHECK(fd >= 0 && symlink("m", l) == 0);
    struct stat sb;
    CHECK(syscall(SYS_fchmodat2, AT_FDCWD, f, 0600, 0) == 0);
    CHECK(stat(f, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    CHECK(syscall(SYS_fchmodat2, AT_FDCWD, l, 0640, 0) == 0); /* follows */
    CHECK(stat(f, &sb) == 0 && (sb.st_mode & 0777) == 0640);
    CHECK_ERR(syscall(SYS_fchmodat2, AT_FDCWD, l, 0600, AT_SYMLINK_NOFOLLOW), EOPNOTSUPP);
    CHECK(syscall(SYS_fchmodat2, AT_FDCWD, f, 0604, AT_SYMLINK_NOFOLLOW) == 0);
    CHECK(syscall(SYS_fchmodat2, fd, "", 0606, AT_EMPTY_PATH) == 0);
    CHECK(fstat(fd, &sb) == 0 && (sb.st_mode & 0777) == 0606);
    CHECK_ERR(syscall(SYS_fchmodat2, AT_FDCWD, f, 0600, 0x2), EINVAL);
    CHECK_ERR(syscall(SYS_fchmodat2, AT_FDCWD, BAD, 0600, 0), EFAULT);
    close(fd);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: files DIR [strict]\n");
        return 100;
    }
    int strict = argc > 2 && strcmp(argv[2], "strict") == 0;
    memfds();
    transfers(argv[1], strict);
    tmpfile_(argv[1]);
    if (strict)
        fchmodat2_(argv[1]);
    return report();
}
