/* pidfd_open: a pidfd for the process itself; flags and errors. */
#include "check.h"
#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

static long pidfd_open_(long pid, long flags) { return syscall(SYS_pidfd_open, pid, flags); }

int main(void)
{
    int fd = pidfd_open_(getpid(), 0);
    CHECK(fd >= 0);
    CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC); /* always close-on-exec */
    CHECK(!(fcntl(fd, F_GETFL) & O_NONBLOCK));
    struct pollfd p = {.fd = fd, .events = POLLIN};
    CHECK(poll(&p, 1, 0) == 0); /* we have not exited */
    CHECK(close(fd) == 0);

    fd = pidfd_open_(getpid(), O_NONBLOCK);
    CHECK(fd >= 0 && (fcntl(fd, F_GETFL) & O_NONBLOCK));
    int d = dup(fd);
    CHECK(d > fd && fcntl(d, F_GETFD) == 0);
    close(d);
    close(fd);

    CHECK_ERR(pidfd_open_(getpid(), 1), EINVAL);
    CHECK_ERR(pidfd_open_(-1, 0), EINVAL);
    CHECK_ERR(pidfd_open_(0, 0), EINVAL);
    CHECK_ERR(pidfd_open_(4194304 + 17, 0), ESRCH);
    return report();
}
