/* readv/writev/preadv/pwritev. */
#include "check.h"
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    (void)argc;
    struct iovec out[3] = {
        {.iov_base = "writev: ", .iov_len = 8},
        {.iov_base = "three ", .iov_len = 6},
        {.iov_base = "parts\n", .iov_len = 6},
    };
    fflush(stdout);
    CHECK(writev(1, out, 3) == 20);

    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(writev(p[1], out, 3) == 20);
    char a[5], b[32];
    memset(b, 0, sizeof b);
    struct iovec in[2] = {{.iov_base = a, .iov_len = sizeof a}, {.iov_base = b, .iov_len = sizeof b}};
    CHECK(readv(p[0], in, 2) == 20);
    CHECK(memcmp(a, "write", 5) == 0 && memcmp(b, "v: three parts\n", 15) == 0);
    CHECK(writev(p[1], out, 0) == 0);
    volatile int negative = -1; /* hidden from the compiler's argument checks */
    CHECK_ERR(writev(p[1], out, negative), EINVAL);
    struct iovec empty[2] = {{.iov_base = NULL, .iov_len = 0}, {.iov_base = "!", .iov_len = 1}};
    CHECK(writev(p[1], empty, 2) == 1);
    CHECK(read(p[0], b, sizeof b) == 1 && b[0] == '!');
    close(p[0]);
    close(p[1]);

    /* preadv on the executable itself: the offset does not move. */
    int fd = open(argv[0], O_RDONLY);
    CHECK(fd >= 0);
    char m[1], elf[3], cls[1];
    struct iovec hv[3] = {{m, 1}, {elf, 3}, {cls, 1}};
    CHECK(preadv(fd, hv, 3, 0) == 5);
    CHECK(m[0] == 0x7f && memcmp(elf, "ELF", 3) == 0 && cls[0] == 2);
    CHECK(lseek(fd, 0, SEEK_CUR) == 0);
    struct iovec one = {elf, 3};
    CHECK(preadv(fd, &one, 1, 1) == 3 && memcmp(elf, "ELF", 3) == 0);
    CHECK_ERR(pwritev(fd, &one, 1, 0), EBADF);
    close(fd);
    return report();
}
