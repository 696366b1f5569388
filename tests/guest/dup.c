/* dup, dup2, dup3 and fcntl. Opens its own executable (argv[0]) read-only to
 * have a file with known first bytes. */
#include "check.h"
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    (void)argc;
    char buf[8];
    int fd = open(argv[0], O_RDONLY);
    CHECK(fd >= 0);
    CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY);

    /* Duplicates share the file offset. */
    int d = dup(fd);
    CHECK(d >= 0 && d != fd);
    CHECK(read(fd, buf, 4) == 4 && memcmp(buf, "\177ELF", 4) == 0);
    CHECK(lseek(d, 0, SEEK_CUR) == 4);
    CHECK(read(d, buf, 1) == 1 && buf[0] == 2); /* EI_CLASS = ELFCLASS64 */
    CHECK(lseek(fd, 0, SEEK_CUR) == 5);

    /* dup returns the lowest free descriptor. */
    int a = dup(fd), b = dup(fd);
    CHECK(a >= 0 && b > a);
    CHECK(close(a) == 0);
    CHECK(dup(fd) == a);
    CHECK(close(a) == 0 && close(b) == 0);

    /* F_DUPFD: lowest free at or above the argument. */
    CHECK(fcntl(fd, F_DUPFD, 100) == 100);
    CHECK(fcntl(fd, F_DUPFD, 100) == 101);
    CHECK(close(100) == 0);
    CHECK(fcntl(fd, F_DUPFD, 100) == 100);
    int c = fcntl(fd, F_DUPFD_CLOEXEC, 100);
    CHECK(c == 102);
    CHECK(fcntl(c, F_GETFD) == FD_CLOEXEC);
    CHECK(fcntl(100, F_GETFD) == 0);
    close(100);
    close(101);
    close(102);

    /* dup2 / dup3. */
    CHECK(dup2(fd, 50) == 50);
    CHECK(dup2(fd, fd) == fd);
    CHECK(fcntl(50, F_GETFD) == 0);
    CHECK_ERR(dup3(fd, fd, 0), EINVAL);
    CHECK(dup3(fd, 51, O_CLOEXEC) == 51);
    CHECK(fcntl(51, F_GETFD) == FD_CLOEXEC);
    CHECK(dup2(d, 51) == 51); /* replaces 51, clears FD_CLOEXEC */
    CHECK(fcntl(51, F_GETFD) == 0);
    CHECK_ERR(dup2(12345, 52), EBADF);
    CHECK_ERR(fcntl(52, F_GETFD), EBADF);
    CHECK(fcntl(50, F_SETFD, FD_CLOEXEC) == 0 && fcntl(50, F_GETFD) == FD_CLOEXEC);
    CHECK(fcntl(fd, F_GETFD) == 0); /* descriptor flags are per descriptor */
    close(50);
    close(51);
    CHECK_ERR(close(50), EBADF);

    /* File status flags (O_NONBLOCK) are shared between duplicates. */
    int p[2];
    CHECK(pipe(p) == 0);
    int pd = dup(p[0]);
    CHECK((fcntl(p[0], F_GETFL) & O_NONBLOCK) == 0);
    CHECK(fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK) == 0);
    CHECK(fcntl(p[0], F_GETFL) & O_NONBLOCK);
    CHECK(fcntl(pd, F_GETFL) & O_NONBLOCK);
    CHECK_ERR(read(pd, buf, 1), EAGAIN);
    CHECK(fcntl(pd, F_SETFL, fcntl(pd, F_GETFL) & ~O_NONBLOCK) == 0);
    CHECK((fcntl(p[0], F_GETFL) & O_NONBLOCK) == 0);
    close(p[0]);
    close(p[1]);
    close(pd);
    close(d);
    close(fd);
    return report();
}
