/* getrandom and /dev/urandom. */
#include "check.h"
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

static int nonzero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 1;
    return 0;
}

int main(void)
{
    unsigned char a[64], b[64];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    CHECK(getrandom(a, sizeof a, 0) == sizeof a);
    CHECK(getrandom(b, sizeof b, GRND_NONBLOCK) == sizeof b);
    CHECK(nonzero(a, sizeof a) && nonzero(b, sizeof b));
    CHECK(memcmp(a, b, sizeof a) != 0);
    CHECK(getrandom(a, 0, 0) == 0);
    CHECK_ERR(getrandom(a, sizeof a, 0x80), EINVAL);
    static unsigned char big[1 << 16];
    CHECK(getrandom(big, sizeof big, 0) == sizeof big && nonzero(big, sizeof big));

    int fd = open("/dev/urandom", O_RDONLY);
    CHECK(fd >= 0);
    memset(a, 0, sizeof a);
    CHECK(read(fd, a, 16) == 16 && nonzero(a, 16));
    close(fd);
    return report();
}
