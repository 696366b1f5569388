/* dirs DIR: directory system calls inside the (empty, scratch) folder DIR,
 * which must be given as an absolute path without symlinks. */
#include "check.h"
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int touch(const char *path)
{
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    return close(fd);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: dirs DIR\n");
        return 100;
    }
    umask(022);
    const char *dir = argv[1];
    char cwd[PATH_MAX], path[PATH_MAX];
    struct stat st;

    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(getcwd(cwd, 1) == NULL && errno == ERANGE);
    int oldcwd = open(".", O_RDONLY | O_DIRECTORY);
    CHECK(oldcwd >= 0);

    CHECK(chdir(dir) == 0);
    CHECK(getcwd(cwd, sizeof cwd) != NULL && strcmp(cwd, dir) == 0);
    CHECK_ERR(chdir("no-such-dir"), ENOENT);

    CHECK(mkdir("sub", 0755) == 0);
    CHECK_ERR(mkdir("sub", 0755), EEXIST);
    CHECK(stat("sub", &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0755);
    CHECK(touch("sub/c") == 0 && touch("sub/a") == 0 && touch("sub/b") == 0);
    CHECK(mkdirat(AT_FDCWD, "sub/d", 0700) == 0);
    CHECK_ERR(chdir("sub/a"), ENOTDIR);

    /* Directory listing, sorted, with types. */
    DIR *d = opendir("sub");
    CHECK(d != NULL);
    char *names[16];
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL && n < 16) {
        char line[300];
        const char *t = e->d_type == DT_DIR ? "dir" : e->d_type == DT_REG ? "file" : "other";
        snprintf(line, sizeof line, "%s %s", e->d_name, t);
        names[n++] = strdup(line);
    }
    if (d)
        closedir(d);
    qsort(names, n, sizeof *names, cmp);
    printf("listing of sub:");
    for (int i = 0; i < n; i++)
        printf(" [%s]", names[i]);
    printf("\n");
    CHECK(n == 6);

    /* Enough entries to need several getdents64 calls. */
    CHECK(mkdir("many", 0755) == 0);
    int made = 0;
    for (int i = 0; i < 500; i++) {
        snprintf(path, sizeof path, "many/file-with-a-longish-name-%04d", i);
        made += touch(path) == 0;
    }
    CHECK(made == 500);
    d = opendir("many");
    int count = 0, sum = 0;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        count++;
        sum += atoi(e->d_name + strlen("file-with-a-longish-name-"));
    }
    if (d)
        closedir(d);
    CHECK(count == 500 && sum == 499 * 500 / 2);

    /* Symbolic and hard links. */
    CHECK(symlink("a", "sub/link") == 0);
    ssize_t len = readlink("sub/link", path, sizeof path);
    CHECK(len == 1 && path[0] == 'a');
    CHECK(lstat("sub/link", &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(stat("sub/link", &st) == 0 && S_ISREG(st.st_mode));
    CHECK_ERR(readlink("sub/a", path, sizeof path), EINVAL);
    CHECK(symlink("nowhere", "sub/dangling") == 0);
    CHECK_ERR(stat("sub/dangling", &st), ENOENT);
    CHECK(link("sub/a", "sub/hard") == 0);
    CHECK(stat("sub/a", &st) == 0 && st.st_nlink == 2);

    /* Permissions. */
    CHECK(access("sub/a", R_OK | W_OK) == 0);
    CHECK_ERR(access("sub/missing", F_OK), ENOENT);
    CHECK_ERR(faccessat(AT_FDCWD, "sub/a", X_OK, 0), EACCES);
    CHECK(chmod("sub/a", 0755) == 0);
    CHECK(faccessat(AT_FDCWD, "sub/a", X_OK, 0) == 0);
    CHECK(stat("sub/a", &st) == 0 && (st.st_mode & 0777) == 0755);

    /* Timestamps. */
    struct timespec ts[2] = {{1000000000, 0}, {1234567890, 0}};
    CHECK(utimensat(AT_FDCWD, "sub/b", ts, 0) == 0);
    CHECK(stat("sub/b", &st) == 0 && st.st_mtime == 1234567890 && st.st_atime == 1000000000);

    /* fchdir back and forth. */
    int here = open(".", O_RDONLY | O_DIRECTORY);
    CHECK(here >= 0);
    CHECK(chdir("sub") == 0);
    CHECK(getcwd(cwd, sizeof cwd) != NULL && strlen(cwd) > 4 && strcmp(cwd + strlen(cwd) - 4, "/sub") == 0);
    CHECK(fchdir(here) == 0);
    CHECK(getcwd(cwd, sizeof cwd) != NULL && strcmp(cwd, dir) == 0);
    close(here);

    /* rename a directory, rmdir. */
    CHECK(rename("sub", "moved") == 0);
    CHECK_ERR(stat("sub", &st), ENOENT);
    CHECK_ERR(rmdir("moved"), ENOTEMPTY);
    const char *entries[] = {"a", "b", "c", "link", "dangling", "hard"};
    int gone = 0;
    for (unsigned i = 0; i < sizeof entries / sizeof *entries; i++) {
        snprintf(path, sizeof path, "moved/%s", entries[i]);
        gone += unlink(path) == 0;
    }
    CHECK(gone == 6);
    CHECK_ERR(unlink("moved/d"), EISDIR);
    CHECK(unlinkat(AT_FDCWD, "moved/d", AT_REMOVEDIR) == 0);
    CHECK(rmdir("moved") == 0);
    for (int i = 0; i < 500; i++) {
        snprintf(path, sizeof path, "many/file-with-a-longish-name-%04d", i);
        unlink(path);
    }
    CHECK(rmdir("many") == 0);
    CHECK_ERR(rmdir("many"), ENOENT);

    CHECK(fchdir(oldcwd) == 0);
    close(oldcwd);
    return report();
}
