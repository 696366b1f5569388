/* openat2: struct open_how checks (size, unknown flags, mode without O_CREAT, BENEATH
 * with IN_ROOT, CACHED with O_CREAT) and every RESOLVE_* restriction: NO_SYMLINKS,
 * BENEATH (absolute paths, `..` and absolute or escaping symlinks are EXDEV), IN_ROOT
 * (the same clamped to the directory), NO_MAGICLINKS (/proc/self/fd/N), NO_XDEV
 * (/proc from /). qemu-user 7.2 has no openat2: run under elfuse only.
 * argv[1]: a scratch directory. */
#define _GNU_SOURCE
#include "check.h"
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
struct how { uint64_t flags, mode, resolve; uint64_t pad[2]; };
#define R_NO_XDEV 0x01
#define R_NO_MAGICLINKS 0x02
#define R_NO_SYMLINKS 0x04
#define R_BENEATH 0x08
#define R_IN_ROOT 0x10
#define R_CACHED 0x20

static long o2(int dfd, const char *p, uint64_t flags, uint64_t resolve)
{
    struct how h = { flags, 0, resolve, { 0, 0 } };
    return syscall(SYS_openat2, dfd, p, &h, 24);
}

/* Opens and reads the one-byte file: 1 if it holds 'x'. */
static int reads_x(long fd)
{
    char c = 0;
    int ok = fd >= 0 && read((int)fd, &c, 1) == 1 && c == 'x';
    if (fd >= 0)
        close((int)fd);
    return ok;
}

/* In a child: chroot to `jail` (holding etc/file = "x" and a link /lnk -> /etc/file). */
static int jailed(const char *jail)
{
    if (chroot(jail) != 0)
        return errno == EPERM ? 2 : 10;
    char c = 0;
    int fd = open("/etc/file", O_RDONLY);
    if (fd < 0 || read(fd, &c, 1) != 1 || c != 'x')
        return 11;
    close(fd);
    /* The host's files are not there. */
    if (open("/etc/passwd", O_RDONLY) != -1 || errno != ENOENT)
        return 12;
    if (chdir("/") != 0)
        return 13;
    char cwd[256];
    if (!getcwd(cwd, sizeof cwd) || strcmp(cwd, "/") != 0)
        return 14;
    fd = open("../../etc/file", O_RDONLY); /* `..` stops at the new root */
    if (fd < 0)
        return 15;
    close(fd);
    fd = open("/lnk", O_RDONLY); /* an absolute link resolves inside */
    if (fd < 0 || read(fd, &c, 1) != 1 || c != 'x')
        return 16;
    close(fd);
    if (chroot("/etc") != 0 || open("/file", O_RDONLY) < 0)
        return 17;
    return 0;
}

int main(int argc, char **argv)
{
    const char *base = argc > 1 ? argv[1] : "/tmp";
    char d[2048], p[4096];
    snprintf(d, sizeof d, "%s/o2", base);
    mkdir(d, 0755);
    snprintf(p, sizeof p, "%s/sub", d);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/sub/file", d);
    int f = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(f >= 0 && write(f, "x", 1) == 1);
    close(f);
    int dfd = open(d, O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0);
    unlinkat(dfd, "rel", 0);
    unlinkat(dfd, "abs", 0);
    unlinkat(dfd, "sub/up", 0);
    CHECK(symlinkat("sub/file", dfd, "rel") == 0);
    CHECK(symlinkat("/sub/file", dfd, "abs") == 0);
    CHECK(symlinkat("../..", dfd, "sub/up") == 0);

    /* open_how. */
    struct how h = { O_RDONLY, 0, 0, { 0, 0 } };
    CHECK(reads_x(syscall(SYS_openat2, dfd, "sub/file", &h, 24)));
    CHECK(reads_x(syscall(SYS_openat2, dfd, "sub/file", &h, 40)));
    CHECK_ERR(syscall(SYS_openat2, dfd, "sub/file", &h, 16), EINVAL);
    CHECK_ERR(syscall(SYS_openat2, dfd, "sub/file", &h, 8192), E2BIG);
    h.pad[0] = 1;
    CHECK_ERR(syscall(SYS_openat2, dfd, "sub/file", &h, 40), E2BIG);
    h.pad[0] = 0;
    h.mode = 0644;
    CHECK_ERR(syscall(SYS_openat2, dfd, "sub/file", &h, 24), EINVAL);
    h.mode = 0;
    h.flags = 1ull << 40;
    CHECK_ERR(syscall(SYS_openat2, dfd, "sub/file", &h, 24), EINVAL);
    CHECK_ERR(o2(dfd, "sub/file", O_RDONLY, 0x40), EINVAL);
    CHECK_ERR(o2(dfd, "sub/file", O_RDONLY, R_BENEATH | R_IN_ROOT), EINVAL);
    CHECK_ERR(o2(dfd, "new", O_RDWR | O_CREAT, R_CACHED), EAGAIN);
    CHECK_ERR(o2(dfd, "sub/file", O_PATH | O_RDWR, 0), EINVAL);
    struct how c = { O_RDWR | O_CREAT | O_EXCL, 0600, 0, { 0, 0 } };
    unlinkat(dfd, "made", 0);
    long m = syscall(SYS_openat2, dfd, "made", &c, 24);
    struct stat st;
    CHECK(m >= 0 && fstat((int)m, &st) == 0 && (st.st_mode & 0777) == 0600);
    close((int)m);

    /* NO_SYMLINKS. */
    CHECK(reads_x(o2(dfd, "rel", O_RDONLY, 0)));
    CHECK_ERR(o2(dfd, "rel", O_RDONLY, R_NO_SYMLINKS), ELOOP);
    CHECK(reads_x(o2(dfd, "sub/file", O_RDONLY, R_NO_SYMLINKS)));
    long lp = o2(dfd, "rel", O_PATH | O_NOFOLLOW, R_NO_SYMLINKS);
    CHECK(lp >= 0); /* the link itself */
    close((int)lp);

    /* BENEATH. */
    CHECK(reads_x(o2(dfd, "sub/../sub/file", O_RDONLY, R_BENEATH)));
    CHECK(reads_x(o2(dfd, "rel", O_RDONLY, R_BENEATH)));
    CHECK_ERR(o2(dfd, "/etc/passwd", O_RDONLY, R_BENEATH), EXDEV);
    CHECK_ERR(o2(dfd, "../o2/sub/file", O_RDONLY, R_BENEATH), EXDEV);
    CHECK_ERR(o2(dfd, "abs", O_RDONLY, R_BENEATH), EXDEV);
    CHECK_ERR(o2(dfd, "sub/up/o2/sub/file", O_RDONLY, R_BENEATH), EXDEV);

    /* IN_ROOT: the directory is `/`. */
    CHECK(reads_x(o2(dfd, "/sub/file", O_RDONLY, R_IN_ROOT)));
    CHECK(reads_x(o2(dfd, "../../sub/file", O_RDONLY, R_IN_ROOT)));
    CHECK(reads_x(o2(dfd, "abs", O_RDONLY, R_IN_ROOT)));
    CHECK(reads_x(o2(dfd, "sub/up/sub/file", O_RDONLY, R_IN_ROOT)));
    CHECK_ERR(o2(dfd, "abs", O_RDONLY, 0), ENOENT); /* /sub/file outside the root */

    /* NO_MAGICLINKS: /proc/self/fd/N is one; /proc/self is a plain symlink. */
    int ff = openat(dfd, "sub/file", O_RDONLY);
    char mp[64];
    snprintf(mp, sizeof mp, "/proc/self/fd/%d", ff);
    CHECK(reads_x(o2(AT_FDCWD, mp, O_RDONLY, 0)));
    CHECK_ERR(o2(AT_FDCWD, mp, O_RDONLY, R_NO_MAGICLINKS), ELOOP);
    long ps = o2(AT_FDCWD, "/proc/self/status", O_RDONLY, R_NO_MAGICLINKS);
    CHECK(ps >= 0);
    close((int)ps);
    close(ff);

    /* NO_XDEV: /proc is another mount. */
    int root = open("/", O_RDONLY | O_DIRECTORY);
    CHECK_ERR(o2(root, "proc/self/status", O_RDONLY, R_NO_XDEV), EXDEV);
    CHECK(reads_x(o2(dfd, "sub/file", O_RDONLY, R_NO_XDEV)));
    close(root);

    /* chroot. */
    char jail[2560], q[4096];
    snprintf(jail, sizeof jail, "%s/jail", d);
    mkdir(jail, 0755);
    snprintf(q, sizeof q, "%s/etc", jail);
    mkdir(q, 0755);
    snprintf(q, sizeof q, "%s/etc/file", jail);
    f = open(q, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(f >= 0 && write(f, "x", 1) == 1);
    close(f);
    snprintf(q, sizeof q, "%s/lnk", jail);
    unlink(q);
    CHECK(symlink("/etc/file", q) == 0);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(jailed(jail));
    int ws = -1;
    waitpid(pid, &ws, 0);
    /* Done, or refused without CAP_SYS_CHROOT. */
    CHECK(WIFEXITED(ws) && (WEXITSTATUS(ws) == 0 || (geteuid() != 0 && WEXITSTATUS(ws) == 2)));
    CHECK_ERR(chroot("/nonexistent/dir"), ENOENT);
    snprintf(q, sizeof q, "%s/etc/file", jail);
    CHECK_ERR(chroot(q), ENOTDIR);

    close(dfd);
    return report();
}
