/* eventfd2: counter and semaphore semantics, flags, and one counter shared by dup
 * aliases (a write through one alias is read through the other). */
#include "check.h"
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <unistd.h>

int main(void)
{
    uint64_t v;
    int fd = eventfd(3, EFD_CLOEXEC | EFD_NONBLOCK);
    CHECK(fd >= 0);
    CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC);
    CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
    CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR);
    CHECK(read(fd, &v, sizeof v) == 8 && v == 3);
    CHECK_ERR(read(fd, &v, sizeof v), EAGAIN);
    CHECK_ERR(read(fd, &v, 4), EINVAL);

    /* Aliases share one counter and one readiness. */
    int d = dup(fd);
    CHECK(d >= 0 && d != fd);
    CHECK(fcntl(d, F_GETFD) == 0);
    v = 5;
    CHECK(write(fd, &v, 8) == 8);
    v = 2;
    CHECK(write(d, &v, 8) == 8);
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = d, .events = POLLIN}};
    CHECK(poll(p, 2, 0) == 2 && (p[0].revents & POLLIN) && (p[1].revents & POLLIN));
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(fd, &rs);
    struct timeval tv = {0, 0};
    CHECK(select(fd + 1, &rs, NULL, NULL, &tv) == 1 && FD_ISSET(fd, &rs));
    CHECK(read(d, &v, sizeof v) == 8 && v == 7);
    CHECK(poll(p, 2, 0) == 0);
    FD_SET(fd, &rs);
    CHECK(select(fd + 1, &rs, NULL, NULL, &tv) == 0);
    CHECK_ERR(read(fd, &v, sizeof v), EAGAIN);
    CHECK(close(fd) == 0);
    v = 1;
    CHECK(write(d, &v, 8) == 8);
    CHECK(read(d, &v, sizeof v) == 8 && v == 1);
    v = UINT64_MAX;
    CHECK_ERR(write(d, &v, 8), EINVAL);
    v = UINT64_MAX - 1;
    CHECK(write(d, &v, 8) == 8);
    v = 1;
    CHECK_ERR(write(d, &v, 8), EAGAIN); /* would overflow: non-blocking */
    CHECK(close(d) == 0);

    /* EFD_SEMAPHORE: each read takes one. */
    fd = eventfd(0, EFD_SEMAPHORE | EFD_NONBLOCK);
    CHECK(fd >= 0);
    CHECK(fcntl(fd, F_GETFD) == 0);
    CHECK_ERR(read(fd, &v, sizeof v), EAGAIN);
    v = 3;
    CHECK(write(fd, &v, 8) == 8);
    int n = 0;
    while (read(fd, &v, sizeof v) == 8 && v == 1)
        n++;
    CHECK(n == 3 && errno == EAGAIN);
    close(fd);

    /* Blocking eventfd: a read with a count available returns at once. */
    fd = eventfd(9, 0);
    CHECK(fd >= 0 && !(fcntl(fd, F_GETFL) & O_NONBLOCK));
    CHECK(read(fd, &v, sizeof v) == 8 && v == 9);
    close(fd);

    CHECK_ERR(eventfd(0, 0x40), EINVAL);
    return report();
}
