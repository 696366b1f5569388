/* cat PATH...: prints each file between markers, or the errno name of the
 * failure (used to test --sysroot path resolution). */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int status = 0;
    for (int i = 1; i < argc; i++) {
        int fd = open(argv[i], O_RDONLY);
        if (fd < 0) {
            printf("%s: %s\n", argv[i], errno == ENOENT ? "ENOENT" : "error");
            status = 1;
            continue;
        }
        printf("--- %s\n", argv[i]);
        fflush(stdout);
        char buf[4096];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0)
            fwrite(buf, 1, (size_t)n, stdout);
        close(fd);
        printf("--- end\n");
    }
    return status;
}
