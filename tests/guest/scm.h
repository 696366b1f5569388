/* SCM_RIGHTS helpers shared by the socket guests and the net benchmark: one byte of data
 * with the fds as ancillary data. Needs <sys/socket.h>, <string.h>. */
#ifndef ELFUSE_GUEST_SCM_H
#define ELFUSE_GUEST_SCM_H

#include <string.h>
#include <sys/socket.h>

#define SCM_MAX_SENT 8

/* Sends fds[0..n) over `s` with one byte of data. */
__attribute__((unused)) static int send_fds(int s, const int *fds, int n)
{
    char byte = 'F';
    struct iovec iov = {&byte, 1};
    union { char buf[CMSG_SPACE(sizeof(int) * SCM_MAX_SENT)]; struct cmsghdr align; } u;
    memset(&u, 0, sizeof u);
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                       .msg_controllen = CMSG_SPACE(sizeof(int) * n)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
    return sendmsg(s, &m, 0);
}

/* Receives up to `max` fds; returns how many, sets *flags to msg_flags. */
__attribute__((unused)) static int recv_fds(int s, int *fds, int max, int rflags, int *flags, size_t room)
{
    char byte;
    struct iovec iov = {&byte, 1};
    union { char buf[CMSG_SPACE(sizeof(int) * SCM_MAX_SENT)]; struct cmsghdr align; } u;
    memset(&u, 0, sizeof u);
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                       .msg_controllen = room};
    if (recvmsg(s, &m, rflags) != 1)
        return -1;
    *flags = m.msg_flags;
    int n = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (int i = 0; i < k && n < max; i++)
                memcpy(&fds[n++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        }
    return n;
}

/* One fd (the first of a message), or -1. */
__attribute__((unused)) static int recv_fd(int s)
{
    int fd, flags;
    return recv_fds(s, &fd, 1, 0, &flags, CMSG_SPACE(sizeof(int))) == 1 ? fd : -1;
}

#endif
