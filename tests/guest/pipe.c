/* Pipes: pipe2 flags, data, EOF, EPIPE, non-blocking reads, poll. */
#include "check.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

int main(void)
{
    int p[2];
    char buf[64];

    CHECK(pipe2(p, O_CLOEXEC) == 0);
    CHECK(fcntl(p[0], F_GETFD) == FD_CLOEXEC);
    CHECK(fcntl(p[1], F_GETFD) == FD_CLOEXEC);
    CHECK((fcntl(p[0], F_GETFL) & O_ACCMODE) == O_RDONLY);
    CHECK((fcntl(p[1], F_GETFL) & O_ACCMODE) == O_WRONLY);
    CHECK(write(p[1], "abc", 3) == 3);
    CHECK(write(p[1], "defg", 4) == 4);
    CHECK(read(p[0], buf, 5) == 5 && memcmp(buf, "abcde", 5) == 0);
    CHECK(read(p[0], buf, sizeof buf) == 2 && memcmp(buf, "fg", 2) == 0);
    CHECK(close(p[1]) == 0);
    CHECK(read(p[0], buf, sizeof buf) == 0); /* EOF once all writers are gone */
    CHECK(close(p[0]) == 0);

    CHECK(pipe(p) == 0);
    CHECK(fcntl(p[0], F_GETFD) == 0);
    CHECK_ERR(write(p[0], "x", 1), EBADF);
    CHECK_ERR(read(p[1], buf, 1), EBADF);

    /* Writing with no reader: SIGPIPE (ignored here) and EPIPE. */
    CHECK(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
    close(p[0]);
    CHECK_ERR(write(p[1], "x", 1), EPIPE);
    close(p[1]);

    /* Non-blocking: empty read is EAGAIN; a full pipe takes a partial write. */
    CHECK(pipe2(p, O_NONBLOCK) == 0);
    CHECK(fcntl(p[0], F_GETFL) & O_NONBLOCK);
    CHECK_ERR(read(p[0], buf, 1), EAGAIN);
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    CHECK(poll(&pf, 1, 0) == 0);
    CHECK(write(p[1], "z", 1) == 1);
    CHECK(poll(&pf, 1, 1000) == 1 && (pf.revents & POLLIN));
    CHECK(read(p[0], buf, 1) == 1 && buf[0] == 'z');
    static char big[1 << 20];
    ssize_t n = write(p[1], big, sizeof big);
    CHECK(n > 0 && n < (ssize_t)sizeof big);
    CHECK_ERR(write(p[1], big, sizeof big), EAGAIN);
    struct pollfd wf = {.fd = p[1], .events = POLLOUT};
    CHECK(poll(&wf, 1, 0) == 0);
    ssize_t total = 0, r;
    while ((r = read(p[0], big, sizeof big)) > 0)
        total += r;
    CHECK(total == n && r == -1 && errno == EAGAIN);
    CHECK(poll(&wf, 1, 0) == 1 && (wf.revents & POLLOUT));
    close(p[1]);
    CHECK(poll(&pf, 1, 0) == 1 && (pf.revents & POLLHUP));
    close(p[0]);
    return report();
}
