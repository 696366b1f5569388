/* Paths under --sysroot ROOT (run by tests/guests.rs `sysroot_resolver`, elfuse-only:
 * qemu's -L has no rule for symlinks or creation). The test lays out:
 *   ROOT/etc/elfuse-sysroot-only.txt     "sysroot only"
 *   ROOT/elfuse-abs/target.txt           "abs target"
 *   ROOT/elfuse-links/abs -> /elfuse-abs/target.txt   (absolute: must stay in ROOT)
 *   ROOT/elfuse-links/up -> ../../../../../etc/elfuse-sysroot-only.txt
 *   ROOT/elfuse-links/dir -> /elfuse-abs
 *   HOSTDIR (argv[1]): a host directory that does not exist in ROOT
 *
 *   HOSTLINK (argv[2]): a host symlink next to HOSTDIR, relative, to HOSTDIR (its
 *            target is the host's, not ROOT's)
 *
 *   rootpaths HOSTDIR HOSTLINK
 */
#include "check.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static char buf[4096];

static int has(const char *p, const char *text)
{
    int fd = open(p, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0)
        return 0;
    buf[n] = 0;
    return strcmp(buf, text) == 0;
}

static int has_at(int dirfd, const char *p, const char *text)
{
    int fd = openat(dirfd, p, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n < 0 ? 0 : n] = 0;
    return strcmp(buf, text) == 0;
}

static int put(const char *p, const char *text)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return 0;
    int ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    return close(fd) == 0 && ok;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    const char *hostdir = argv[1];
    char p[1024];

    CHECK(has("/etc/elfuse-sysroot-only.txt", "sysroot only\n"));
    CHECK(has("//etc/./elfuse-sysroot-only.txt", "sysroot only\n"));
    CHECK(has("/../../etc/elfuse-sysroot-only.txt", "sysroot only\n"));
    /* Symlinks are followed in the guest's view. */
    CHECK(has("/elfuse-links/abs", "abs target\n"));
    CHECK(has("/elfuse-links/up", "sysroot only\n"));
    CHECK(has("/elfuse-links/dir/target.txt", "abs target\n"));
    CHECK(has("/elfuse-links/dir/../etc/elfuse-sysroot-only.txt", "sysroot only\n"));
    char l[256] = {0};
    CHECK(readlink("/elfuse-links/abs", l, sizeof l - 1) > 0 &&
          strcmp(l, "/elfuse-abs/target.txt") == 0);
    struct stat st;
    CHECK(lstat("/elfuse-links/abs", &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(stat("/elfuse-links/abs", &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 11);
    /* Relative to dirfds and the cwd. */
    int etc = open("/etc", O_RDONLY | O_DIRECTORY);
    CHECK(etc >= 0 && has_at(etc, "elfuse-sysroot-only.txt", "sysroot only\n"));
    CHECK(has_at(etc, "../../etc/elfuse-sysroot-only.txt", "sysroot only\n"));
    CHECK(has_at(etc, "../elfuse-links/abs", "abs target\n"));
    CHECK(chdir("/") == 0);
    CHECK(getcwd(p, sizeof p) && strcmp(p, "/") == 0);
    CHECK(has("etc/elfuse-sysroot-only.txt", "sysroot only\n"));
    CHECK(has("../etc/elfuse-sysroot-only.txt", "sysroot only\n"));
    CHECK(chdir("/elfuse-links/dir") == 0);
    CHECK(getcwd(p, sizeof p) && strcmp(p, "/elfuse-abs") == 0);
    CHECK(has("target.txt", "abs target\n"));
    CHECK(has("../../../etc/elfuse-sysroot-only.txt", "sysroot only\n"));
    /* Creation: inside ROOT when the parent is there, else on the host. */
    CHECK(put("/etc/elfuse-created.txt", "made in root\n"));
    CHECK(has("/etc/elfuse-created.txt", "made in root\n"));
    snprintf(p, sizeof p, "%s/created.txt", hostdir);
    CHECK(put(p, "made on host\n"));
    CHECK(has(p, "made on host\n"));
    snprintf(p, sizeof p, "%s/sub", hostdir);
    CHECK(mkdir(p, 0755) == 0);
    snprintf(p, sizeof p, "%s/sub/f.db", hostdir);
    CHECK(put(p, "db\n"));
    CHECK(chdir(hostdir) == 0);
    CHECK(has("sub/f.db", "db\n"));
    CHECK(has("created.txt", "made on host\n"));
    CHECK(symlink("/elfuse-abs/target.txt", "sub/abs") == 0);
    CHECK(has("sub/abs", "abs target\n"));
    CHECK(unlink("sub/abs") == 0 && unlink("sub/f.db") == 0);
    CHECK(rmdir("sub") == 0);
    CHECK_ERR(open("/elfuse-links/missing/x", O_RDONLY), ENOENT);
    snprintf(p, sizeof p, "%s/created.txt", argv[2]);
    CHECK(has(p, "made on host\n"));
    return report();
}
