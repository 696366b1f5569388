/* xattr DIR [strict]: the twelve extended-attribute calls on a file, a symlink and an fd inside
 * the scratch folder DIR. If DIR's filesystem keeps no user.* attributes (ENOTSUP), only
 * that answer is checked, the same way for every call. "strict" adds what qemu-user
 * 7.2 gets wrong (run under elfuse only). */
#include "check.h"
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define BAD ((void *)8)

/* The names in a list, sorted and joined with spaces (the order is the filesystem's). */
static void names(const char *list, long n, char *out, size_t outsz)
{
    const char *v[16];
    int k = 0;
    for (long i = 0; i < n && k < 16; i += strlen(list + i) + 1)
        v[k++] = list + i;
    for (int i = 0; i < k; i++)
        for (int j = i + 1; j < k; j++)
            if (strcmp(v[j], v[i]) < 0) {
                const char *t = v[i];
                v[i] = v[j];
                v[j] = t;
            }
    out[0] = 0;
    for (int i = 0; i < k; i++) {
        strncat(out, v[i], outsz - strlen(out) - 2);
        if (i + 1 < k)
            strcat(out, " ");
    }
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: xattr DIR [strict]\n");
        return 100;
    }
    int strict = argc == 3 && strcmp(argv[2], "strict") == 0;
    char f[PATH_MAX], l[PATH_MAX], buf[256], list[256], joined[256];
    snprintf(f, sizeof f, "%s/f", argv[1]);
    snprintf(l, sizeof l, "%s/l", argv[1]);
    int fd = open(f, O_CREAT | O_RDWR, 0644);
    CHECK(fd >= 0);
    CHECK(symlink("f", l) == 0);

    if (setxattr(f, "user.a", "hello", 5, 0) != 0) {
        CHECK(errno == ENOTSUP);
        CHECK_ERR(getxattr(f, "user.a", buf, sizeof buf), ENOTSUP);
        CHECK_ERR(fsetxattr(fd, "user.a", "x", 1, 0), ENOTSUP);
        printf("user xattrs unsupported here\n");
        return report();
    }
    printf("user xattrs supported\n");

    /* get: size query, the value, a buffer too small, a missing name. */
    CHECK(getxattr(f, "user.a", NULL, 0) == 5);
    memset(buf, 0, sizeof buf);
    CHECK(getxattr(f, "user.a", buf, sizeof buf) == 5 && memcmp(buf, "hello", 5) == 0);
    CHECK_ERR(getxattr(f, "user.a", buf, 2), ERANGE);
    CHECK_ERR(getxattr(f, "user.none", buf, sizeof buf), ENODATA);
    static char big[100000];
    CHECK(getxattr(f, "user.a", big, sizeof big) == 5);
    if (strict) {
        /* Linux caps the size at XATTR_SIZE_MAX and copies out only the value; qemu-user
         * 7.2 locks the whole buffer first (EFAULT past the stack). */
        CHECK(getxattr(f, "user.a", buf, 100000) == 5);
    }

    /* set: flags. */
    CHECK_ERR(setxattr(f, "user.a", "x", 1, XATTR_CREATE), EEXIST);
    CHECK_ERR(setxattr(f, "user.b", "x", 1, XATTR_REPLACE), ENODATA);
    CHECK_ERR(setxattr(f, "user.a", "x", 1, 4), EINVAL);
    CHECK(setxattr(f, "user.a", "bye", 3, XATTR_REPLACE) == 0);
    CHECK(getxattr(f, "user.a", buf, sizeof buf) == 3 && memcmp(buf, "bye", 3) == 0);
    CHECK(setxattr(f, "user.empty", "", 0, XATTR_CREATE) == 0);
    CHECK(getxattr(f, "user.empty", buf, sizeof buf) == 0);

    /* Names: empty, too long, no namespace. */
    char longname[300];
    memset(longname, 'n', sizeof longname);
    memcpy(longname, "user.", 5);
    longname[256] = 0;
    CHECK_ERR(setxattr(f, "", "x", 1, 0), ERANGE);
    CHECK_ERR(getxattr(f, longname, buf, sizeof buf), ERANGE);
    longname[255] = 0;
    CHECK_ERR(getxattr(f, longname, buf, sizeof buf), ENODATA);
    CHECK_ERR(setxattr(f, "plain", "x", 1, 0), EOPNOTSUPP);
    CHECK_ERR(setxattr(f, "user.big", big, 65537, 0), E2BIG);
    if (strict) /* Linux checks the size before reading the value; qemu-user reads first. */
        CHECK_ERR(setxattr(f, "user.big", buf, 65537, 0), E2BIG);

    /* The fd calls. */
    CHECK(fsetxattr(fd, "user.b", "two", 3, XATTR_CREATE) == 0);
    CHECK(fgetxattr(fd, "user.b", buf, sizeof buf) == 3 && memcmp(buf, "two", 3) == 0);
    long n = flistxattr(fd, list, sizeof list);
    names(list, n, joined, sizeof joined);
    printf("flistxattr: [%s]\n", joined);
    CHECK(n == (long)strlen("user.a user.b user.empty") + 1);
    CHECK(flistxattr(fd, NULL, 0) == n);
    CHECK_ERR(flistxattr(fd, list, 3), ERANGE);
    CHECK_ERR(fgetxattr(-1, "user.b", buf, sizeof buf), EBADF);

    /* A symlink: the l* calls act on the link itself, the others follow it. */
    CHECK(getxattr(l, "user.b", buf, sizeof buf) == 3);
    CHECK_ERR(lgetxattr(l, "user.b", buf, sizeof buf), ENODATA);
    CHECK_ERR(lsetxattr(l, "user.c", "x", 1, 0), EPERM);
    CHECK(listxattr(l, list, sizeof list) == n);
    CHECK(llistxattr(l, list, sizeof list) == 0);
    CHECK_ERR(lremovexattr(l, "user.b"), EPERM); /* user.* on a symlink */

    /* remove, by path, through the link, by fd. */
    CHECK(removexattr(f, "user.empty") == 0);
    CHECK(removexattr(l, "user.a") == 0);
    CHECK(fremovexattr(fd, "user.b") == 0);
    CHECK_ERR(fremovexattr(fd, "user.b"), ENODATA);
    CHECK(listxattr(f, list, sizeof list) == 0);
    CHECK(lsetxattr(f, "user.d", "4", 1, 0) == 0);
    CHECK(lgetxattr(f, "user.d", buf, sizeof buf) == 1 && buf[0] == '4');
    CHECK(lremovexattr(f, "user.d") == 0);

    /* Bad pointers and paths. */
    CHECK(setxattr(f, "user.a", "hello", 5, 0) == 0);
    CHECK_ERR(getxattr(f, "user.a", BAD, 5), EFAULT);
    CHECK_ERR(getxattr(f, BAD, buf, 5), EFAULT);
    CHECK_ERR(getxattr(BAD, "user.a", buf, 5), EFAULT);
    CHECK_ERR(setxattr(f, "user.a", BAD, 5, 0), EFAULT);
    CHECK_ERR(listxattr(f, BAD, 100), EFAULT);
    CHECK_ERR(removexattr(f, BAD), EFAULT);
    CHECK_ERR(getxattr("/no/such/file", "user.a", buf, 5), ENOENT);
    CHECK(getxattr(f, "user.a", buf, sizeof buf) == 5);

    close(fd);
    return report();
}
