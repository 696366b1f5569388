/* sock_unix DIR [strict]: AF_UNIX sockets: socketpair of every type, path names, the
 * abstract namespace, autobind, options, SCM_RIGHTS and SCM_CREDENTIALS, MSG_* flags,
 * SIGPIPE, bad input. DIR: a scratch directory. `strict`: the checks qemu-aarch64 7.2
 * gets wrong (see strict()). */
#include "check.h"
#include "scm.h"
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

static volatile int g_sigpipe;
/* An address no guest maps (volatile: keeps the compiler from reasoning about it). */
static int *volatile g_bad = (int *)8;
static void on_pipe(int s) { (void)s; g_sigpipe++; }

static void pairs(void)
{
    int sv[2];
    char buf[64];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    CHECK(fcntl(sv[0], F_GETFD) == FD_CLOEXEC && fcntl(sv[1], F_GETFD) == FD_CLOEXEC);
    CHECK(write(sv[0], "hello", 5) == 5);
    CHECK(recv(sv[1], buf, 2, MSG_PEEK) == 2 && memcmp(buf, "he", 2) == 0);
    CHECK(read(sv[1], buf, sizeof buf) == 5 && memcmp(buf, "hello", 5) == 0);
    CHECK_ERR(recv(sv[1], buf, 1, MSG_DONTWAIT), EAGAIN);
    CHECK(send(sv[1], "ab", 2, 0) == 2 && send(sv[1], "cd", 2, 0) == 2);
    CHECK(recv(sv[0], buf, 4, MSG_WAITALL) == 4 && memcmp(buf, "abcd", 4) == 0);
    CHECK(shutdown(sv[0], SHUT_WR) == 0);
    CHECK(read(sv[1], buf, sizeof buf) == 0);
    /* SIGPIPE on a write to a shut-down stream, unless MSG_NOSIGNAL. */
    CHECK(signal(SIGPIPE, on_pipe) != SIG_ERR);
    CHECK_ERR(send(sv[0], "x", 1, 0), EPIPE);
    CHECK(g_sigpipe == 1);
    CHECK_ERR(send(sv[0], "x", 1, MSG_NOSIGNAL), EPIPE);
    CHECK(g_sigpipe == 1);
    CHECK_ERR(write(sv[0], "x", 1), EPIPE);
    CHECK(g_sigpipe == 2);
    close(sv[0]);
    close(sv[1]);

    CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv) == 0);
    CHECK(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
    CHECK(send(sv[0], "one", 3, 0) == 3 && send(sv[0], "three", 5, 0) == 5);
    CHECK(recv(sv[1], buf, 2, MSG_TRUNC) == 3); /* the datagram's real length */
    CHECK(recv(sv[1], buf, sizeof buf, 0) == 5 && memcmp(buf, "three", 5) == 0);
    CHECK_ERR(recv(sv[1], buf, sizeof buf, 0), EAGAIN);
    close(sv[0]);
    close(sv[1]);

    CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
    CHECK(send(sv[0], "rec1", 4, 0) == 4 && send(sv[0], "rec2!", 5, 0) == 5);
    struct iovec iov = {buf, 2};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    CHECK(recvmsg(sv[1], &m, 0) == 2 && (m.msg_flags & MSG_TRUNC));
    CHECK(recv(sv[1], buf, sizeof buf, 0) == 5 && memcmp(buf, "rec2!", 5) == 0);
    int type = 0, dom = 0;
    socklen_t len = sizeof type;
    CHECK(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_SEQPACKET);
    len = sizeof dom;
    CHECK(getsockopt(sv[0], SOL_SOCKET, SO_DOMAIN, &dom, &len) == 0 && dom == AF_UNIX);
    struct ucred cr;
    len = sizeof cr;
    CHECK(getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && cr.pid == getpid() &&
          cr.uid == getuid() && cr.gid == getgid());
    close(sv[0]);
    close(sv[1]);
}

static void paths(const char *dir)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX}, got;
    snprintf(a.sun_path, sizeof a.sun_path, "%s/srv.sock", dir);
    socklen_t alen = offsetof(struct sockaddr_un, sun_path) + strlen(a.sun_path) + 1;
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(l >= 0);
    CHECK(bind(l, (struct sockaddr *)&a, alen) == 0);
    struct stat st;
    CHECK(stat(a.sun_path, &st) == 0 && S_ISSOCK(st.st_mode));
    CHECK_ERR(bind(socket(AF_UNIX, SOCK_STREAM, 0), (struct sockaddr *)&a, alen), EADDRINUSE);
    CHECK(listen(l, 4) == 0);
    int acc = 0;
    socklen_t olen = sizeof acc;
    CHECK(getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &acc, &olen) == 0 && acc == 1);
    socklen_t glen = sizeof got;
    CHECK(getsockname(l, (struct sockaddr *)&got, &glen) == 0 && glen == alen &&
          strcmp(got.sun_path, a.sun_path) == 0);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&a, alen) == 0);
    glen = sizeof got;
    CHECK(getpeername(c, (struct sockaddr *)&got, &glen) == 0 && strcmp(got.sun_path, a.sun_path) == 0);
    glen = sizeof got;
    int s = accept4(l, (struct sockaddr *)&got, &glen, SOCK_CLOEXEC);
    CHECK(s >= 0 && fcntl(s, F_GETFD) == FD_CLOEXEC);
    CHECK(glen == offsetof(struct sockaddr_un, sun_path)); /* an unbound peer */
    CHECK(write(c, "ping", 4) == 4);
    char buf[8];
    CHECK(read(s, buf, sizeof buf) == 4 && memcmp(buf, "ping", 4) == 0);
    /* A short address buffer: truncated, the full length reported. */
    glen = 4;
    CHECK(getsockname(l, (struct sockaddr *)&got, &glen) == 0 && glen == alen);
    close(s);
    close(c);
    close(l);
    /* Relative path names are the cwd's. */
    CHECK(chdir(dir) == 0);
    struct sockaddr_un r = {.sun_family = AF_UNIX, .sun_path = "rel.sock"};
    int d = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(bind(d, (struct sockaddr *)&r, sizeof r) == 0);
    CHECK(access("rel.sock", F_OK) == 0);
    int e = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(sendto(e, "dg", 2, 0, (struct sockaddr *)&r, sizeof r) == 2);
    CHECK(recv(d, buf, sizeof buf, 0) == 2);
    CHECK_ERR(connect(e, (struct sockaddr *)&(struct sockaddr_un){AF_UNIX, "nope.sock"},
                      sizeof(struct sockaddr_un)), ENOENT);
    close(d);
    close(e);

    /* The abstract namespace and autobind. */
    struct sockaddr_un ab = {.sun_family = AF_UNIX};
    memcpy(ab.sun_path, "\0elfuse-abstract-test", 21);
    socklen_t ablen = offsetof(struct sockaddr_un, sun_path) + 21;
    int x = socket(AF_UNIX, SOCK_DGRAM, 0), y = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(bind(x, (struct sockaddr *)&ab, ablen) == 0);
    CHECK(bind(y, (struct sockaddr *)&(struct sockaddr_un){AF_UNIX}, sizeof(sa_family_t)) == 0);
    glen = sizeof got;
    CHECK(getsockname(y, (struct sockaddr *)&got, &glen) == 0 && glen == 8 && got.sun_path[0] == 0);
    CHECK(sendto(y, "abs", 3, 0, (struct sockaddr *)&ab, ablen) == 3);
    struct sockaddr_un from;
    socklen_t flen = sizeof from;
    CHECK(recvfrom(x, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen) == 3 && flen == 8 &&
          memcmp(&from, &got, 8) == 0);
    close(x);
    close(y);
}

static void rights(void)
{
    int sv[2], p[2], fds[8], flags;
    char buf[16];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(pipe(p) == 0);
    int extra[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, extra) == 0);
    int out[2] = {p[1], extra[0]};
    CHECK(send_fds(sv[0], out, 2) == 1);
    int n = recv_fds(sv[1], fds, 8, MSG_CMSG_CLOEXEC, &flags, CMSG_SPACE(sizeof(int) * 8));
    CHECK(n == 2 && !(flags & MSG_CTRUNC));
    CHECK(n == 2 && fds[0] > extra[1] && fds[1] == fds[0] + 1); /* lowest free fds */
    CHECK(n == 2 && fcntl(fds[0], F_GETFD) == FD_CLOEXEC);
    CHECK(n == 2 && write(fds[0], "via", 3) == 3 && read(p[0], buf, sizeof buf) == 3);
    CHECK(n == 2 && write(fds[1], "sock", 4) == 4 && read(extra[1], buf, sizeof buf) == 4);
    close(fds[0]);
    close(fds[1]);
    /* Without MSG_CMSG_CLOEXEC the received fd is inheritable. */
    CHECK(send_fds(sv[0], out, 1) == 1);
    n = recv_fds(sv[1], fds, 8, 0, &flags, CMSG_SPACE(sizeof(int) * 8));
    CHECK(n == 1 && fcntl(fds[0], F_GETFD) == 0);
    close(fds[0]);
    /* A bad fd in SCM_RIGHTS: EBADF, nothing sent. */
    int bad = 999;
    CHECK_ERR(send_fds(sv[0], &bad, 1), EBADF);
    CHECK_ERR(recv(sv[1], buf, 1, MSG_DONTWAIT), EAGAIN);
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
    close(extra[0]);
    close(extra[1]);
}

/* Where qemu-aarch64 7.2 differs from Linux (elfuse follows Linux; run elfuse-only):
 * qemu keeps MSG_CTRUNC off when the control buffer is cut inside the fds, leaks an fd of
 * its own into the guest's table (so an RLIMIT_NOFILE count is off by one), passes a
 * malformed cmsg header instead of EINVAL, garbles SCM_CREDENTIALS, and accepts unknown
 * socket type flags and a negative setsockopt length. */
static void strict(void)
{
    int sv[2], p[2], fds[8], flags, n;
    char buf[16];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(pipe(p) == 0);
    /* A control buffer with room for one fd of three: MSG_CTRUNC, the rest closed. */
    int three[3] = {p[1], p[1], p[1]};
    CHECK(send_fds(sv[0], three, 3) == 1);
    n = recv_fds(sv[1], fds, 8, 0, &flags, CMSG_LEN(sizeof(int)));
    CHECK(n == 1 && (flags & MSG_CTRUNC));
    close(fds[0]);
    /* RLIMIT_NOFILE stops the installs: what fits is kept, MSG_CTRUNC. */
    int top = dup(0);
    close(top);
    struct rlimit old, lim;
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    lim = old;
    lim.rlim_cur = top + 2;
    CHECK(setrlimit(RLIMIT_NOFILE, &lim) == 0);
    CHECK(send_fds(sv[0], three, 3) == 1);
    n = recv_fds(sv[1], fds, 8, 0, &flags, CMSG_SPACE(sizeof(int) * 8));
    CHECK(n == 2 && (flags & MSG_CTRUNC));
    for (int i = 0; i < n; i++)
        close(fds[i]);
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
    /* A malformed header: EINVAL. */
    {
        char byte = 'x';
        struct iovec iov = {&byte, 1};
        union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
        memset(&u, 0, sizeof u);
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
                           .msg_controllen = sizeof u.b};
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = sizeof u.b + 64;
        CHECK_ERR(sendmsg(sv[0], &m, 0), EINVAL);
    }
    /* SCM_CREDENTIALS with SO_PASSCRED. */
    int on = 1;
    CHECK(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on) == 0);
    CHECK(send(sv[0], "c", 1, 0) == 1);
    {
        char byte;
        struct iovec iov = {&byte, 1};
        union { char b[CMSG_SPACE(sizeof(struct ucred))]; struct cmsghdr align; } u;
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
                           .msg_controllen = sizeof u.b};
        CHECK(recvmsg(sv[1], &m, 0) == 1);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        CHECK(c && c->cmsg_type == SCM_CREDENTIALS);
        struct ucred cr;
        if (c)
            memcpy(&cr, CMSG_DATA(c), sizeof cr);
        CHECK(c && cr.pid == getpid() && cr.uid == getuid());
    }
    CHECK(recvmsg(sv[1], &(struct msghdr){0}, MSG_DONTWAIT) == -1 && errno == EAGAIN);
    int v = 1;
    CHECK_ERR(socket(AF_UNIX, SOCK_STREAM | 0x100000, 0), EINVAL);
    CHECK_ERR(setsockopt(sv[0], SOL_SOCKET, SO_REUSEADDR, &v, -1), EINVAL);
    /* MSG_CMSG_CLOEXEC is echoed in msg_flags only when asked for. */
    close(sv[0]);
    close(sv[1]);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    int one[1] = {p[1]};
    CHECK(send_fds(sv[0], one, 1) == 1);
    CHECK(recv_fds(sv[1], fds, 8, 0, &flags, CMSG_SPACE(sizeof(int))) == 1 && flags == 0);
    close(fds[0]);
    CHECK(send_fds(sv[0], one, 1) == 1);
    CHECK(recv_fds(sv[1], fds, 8, MSG_CMSG_CLOEXEC, &flags, CMSG_SPACE(sizeof(int))) == 1 &&
          flags == MSG_CMSG_CLOEXEC);
    close(fds[0]);
    (void)buf;
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}

static volatile int g_sigio;
static void on_io(int s) { (void)s; g_sigio++; }

/* O_ASYNC: SIGIO to the owner when data arrives; FIOASYNC turns it off. */
static void async_io(void)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(signal(SIGIO, on_io) != SIG_ERR);
    CHECK(fcntl(sv[1], F_SETOWN, getpid()) == 0);
    CHECK(fcntl(sv[1], F_GETOWN) == getpid());
    CHECK(fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_ASYNC) == 0);
    CHECK(fcntl(sv[1], F_GETFL) & O_ASYNC);
    CHECK(write(sv[0], "x", 1) == 1);
    for (int i = 0; i < 2000 && !g_sigio; i++)
        usleep(1000);
    CHECK(g_sigio == 1);
    int off = 0;
    CHECK(ioctl(sv[1], FIOASYNC, &off) == 0);
    CHECK(!(fcntl(sv[1], F_GETFL) & O_ASYNC));
    CHECK(write(sv[0], "y", 1) == 1);
    usleep(20000);
    CHECK(g_sigio == 1);
    close(sv[0]);
    close(sv[1]);
}

static void bad_input(void)
{
    int sv[2];
    char buf[4];
    CHECK_ERR(socket(12345, SOCK_STREAM, 0), EAFNOSUPPORT);
    CHECK_ERR(socket(AF_UNIX, 77, 0), EINVAL);
    CHECK_ERR(socket(AF_INET, SOCK_STREAM, 250), EPROTONOSUPPORT);
    CHECK_ERR(socket(AF_UNIX, SOCK_STREAM, 5), EPROTONOSUPPORT);
    CHECK_ERR(socketpair(AF_UNIX, SOCK_STREAM, 0, g_bad), EFAULT);
    CHECK_ERR(socketpair(AF_INET, SOCK_STREAM, 0, sv), EOPNOTSUPP);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK_ERR(send(sv[0], (void *)8, 4, 0), EFAULT);
    CHECK_ERR(recv(sv[0], (void *)8, 4, MSG_DONTWAIT), EFAULT);
    CHECK_ERR(bind(sv[0], (struct sockaddr *)8, 16), EFAULT);
    CHECK_ERR(bind(sv[0], (struct sockaddr *)buf, 1000), EINVAL);
    CHECK_ERR(bind(sv[0], (struct sockaddr *)buf, -1), EINVAL);
    CHECK_ERR(getsockname(sv[0], (struct sockaddr *)buf, (socklen_t *)8), EFAULT);
    int v = 1;
    CHECK_ERR(setsockopt(sv[0], SOL_SOCKET, SO_REUSEADDR, (void *)8, sizeof v), EFAULT);
    CHECK_ERR(setsockopt(sv[0], SOL_SOCKET, 9999, &v, sizeof v), ENOPROTOOPT);
    socklen_t len = sizeof v;
    CHECK_ERR(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, (socklen_t *)8), EFAULT);
    CHECK_ERR(getsockopt(sv[0], SOL_SOCKET, 9999, &v, &len), ENOPROTOOPT);
    /* Raw calls: musl's sendmsg copies the msghdr itself (and would fault first). */
    CHECK_ERR(syscall(SYS_sendmsg, sv[0], g_bad, 0), EFAULT);
    CHECK_ERR(syscall(SYS_recvmsg, sv[0], g_bad, 0), EFAULT);
    CHECK_ERR(getpeername(0 + 1000, (struct sockaddr *)buf, &len), EBADF);
    int p[2];
    CHECK(pipe(p) == 0);
    len = sizeof buf;
    CHECK_ERR(getpeername(p[0], (struct sockaddr *)buf, &len), ENOTSOCK);
    CHECK_ERR(listen(p[0], 1), ENOTSOCK);
    CHECK_ERR(send(p[1], "x", 1, 0), ENOTSOCK);
    CHECK_ERR(accept(p[0], NULL, NULL), ENOTSOCK);
    CHECK_ERR(accept4(sv[0], NULL, NULL, 0x1), EINVAL);
    CHECK_ERR(listen(sv[0], 1), EINVAL);
    CHECK_ERR(shutdown(sv[0], 7), EINVAL);
    close(p[0]);
    close(p[1]);
    close(sv[0]);
    close(sv[1]);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    if (argc > 2 && strcmp(argv[2], "strict") == 0) {
        strict();
        return report();
    }
    pairs();
    paths(argv[1]);
    rights();
    async_io();
    bad_input();
    return report();
}
