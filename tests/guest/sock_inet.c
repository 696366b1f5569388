/* sock_inet [strict]: AF_INET and AF_INET6 on loopback (port 0 only), TCP and UDP,
 * options, readiness, ioctls, sendmmsg/recvmmsg, netlink (getifaddrs, if_nameindex),
 * and blocking calls interrupted by signals (SA_RESTART, SO_RCVTIMEO).
 * `strict`: what qemu-aarch64 7.2 gets wrong (see strict()). */
#include "check.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#ifndef SIOCOUTQ
#define SIOCOUTQ TIOCOUTQ /* linux/sockios.h, which musl lacks */
#endif

static struct sockaddr_in loop4(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/* A listening TCP socket on 127.0.0.1, port 0; *port gets the port. */
static int listener(int *port)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in a = loop4(0);
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 8))
        return -1;
    socklen_t len = sizeof a;
    getsockname(l, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return l;
}

static void tcp(void)
{
    int port = 0;
    int l = listener(&port);
    CHECK(l >= 0 && port > 0);
    int c = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    struct sockaddr_in a = loop4(port);
    CHECK(connect(c, (struct sockaddr *)&a, sizeof a) == 0);
    struct sockaddr_in peer;
    socklen_t plen = sizeof peer;
    int s = accept4(l, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    CHECK(s >= 0 && plen == sizeof peer && peer.sin_family == AF_INET &&
          peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    CHECK(fcntl(s, F_GETFL) & O_NONBLOCK);
    CHECK(fcntl(s, F_GETFD) == FD_CLOEXEC);
    struct sockaddr_in me;
    socklen_t mlen = sizeof me;
    CHECK(getsockname(c, (struct sockaddr *)&me, &mlen) == 0 && me.sin_port == peer.sin_port);
    mlen = sizeof me;
    CHECK(getpeername(c, (struct sockaddr *)&me, &mlen) == 0 && ntohs(me.sin_port) == port);

    char buf[256];
    CHECK_ERR(recv(s, buf, sizeof buf, 0), EAGAIN);
    CHECK(send(c, "tcp data", 8, 0) == 8);
    struct pollfd pf = {.fd = s, .events = POLLIN};
    CHECK(poll(&pf, 1, 5000) == 1 && (pf.revents & POLLIN));
    int avail = 0;
    CHECK(ioctl(s, FIONREAD, &avail) == 0 && avail == 8);
    CHECK(recv(s, buf, sizeof buf, 0) == 8 && memcmp(buf, "tcp data", 8) == 0);
    int mark = -1;
    CHECK(ioctl(s, SIOCATMARK, &mark) == 0 && mark == 0);
    int outq = -1;
    CHECK(ioctl(c, SIOCOUTQ, &outq) == 0 && outq >= 0);

    /* Options. */
    int v = 1;
    socklen_t len = sizeof v;
    CHECK(setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) == 0);
    CHECK(getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, &len) == 0 && v == 1);
    v = 1;
    CHECK(setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v) == 0);
    v = 77;
    CHECK(setsockopt(c, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof v) == 0);
    len = sizeof v;
    CHECK(getsockopt(c, IPPROTO_TCP, TCP_KEEPIDLE, &v, &len) == 0 && v == 77);
    v = 5;
    CHECK(setsockopt(c, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof v) == 0);
    v = 65536;
    CHECK(setsockopt(c, SOL_SOCKET, SO_RCVBUF, &v, sizeof v) == 0);
    len = sizeof v;
    CHECK(getsockopt(c, SOL_SOCKET, SO_RCVBUF, &v, &len) == 0 && v == 131072); /* doubled */
    struct linger lg = {1, 3};
    CHECK(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    memset(&lg, 0, sizeof lg);
    len = sizeof lg;
    CHECK(getsockopt(c, SOL_SOCKET, SO_LINGER, &lg, &len) == 0 && lg.l_onoff && lg.l_linger == 3);
    struct tcp_info ti;
    len = sizeof ti;
    CHECK(getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_state == 1);
    v = 64;
    CHECK(setsockopt(c, IPPROTO_IP, IP_TTL, &v, sizeof v) == 0);
    len = sizeof v;
    CHECK(getsockopt(c, IPPROTO_IP, IP_TTL, &v, &len) == 0 && v == 64);
    v = 0x10;
    CHECK(setsockopt(c, IPPROTO_IP, IP_TOS, &v, sizeof v) == 0);
    len = sizeof v;
    CHECK(getsockopt(c, SOL_SOCKET, SO_ERROR, &v, &len) == 0 && v == 0);
    len = sizeof v;
    CHECK(getsockopt(c, SOL_SOCKET, SO_PROTOCOL, &v, &len) == 0 && v == IPPROTO_TCP);

    /* A receive timeout: EAGAIN after it. */
    struct timeval tv = {0, 50000};
    CHECK(setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    memset(&tv, 0, sizeof tv);
    len = sizeof tv;
    /* Linux keeps timeouts in jiffies: the value read back is rounded up to a tick. */
    CHECK(getsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) == 0 && tv.tv_sec == 0 &&
          tv.tv_usec >= 50000 && tv.tv_usec <= 60000);
    CHECK_ERR(recv(c, buf, sizeof buf, 0), EAGAIN);

    /* epoll, edge-triggered, and EPOLLRDHUP when the peer shuts down. */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.u32 = 7};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) == 0);
    CHECK(send(c, "x", 1, 0) == 1);
    struct epoll_event out;
    CHECK(epoll_wait(ep, &out, 1, 5000) == 1 && out.data.u32 == 7 && (out.events & EPOLLIN));
    CHECK(epoll_wait(ep, &out, 1, 0) == 0); /* edge-triggered: reported once */
    CHECK(shutdown(c, SHUT_WR) == 0);
    CHECK(epoll_wait(ep, &out, 1, 5000) == 1 && (out.events & EPOLLRDHUP));
    CHECK(recv(s, buf, sizeof buf, 0) == 1 && recv(s, buf, sizeof buf, 0) == 0);
    close(ep);
    /* A reset: the peer closes with data unread. */
    CHECK(send(s, "unread", 6, 0) == 6);
    usleep(20000);
    lg.l_onoff = 1;
    lg.l_linger = 0;
    setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(c);
    usleep(20000);
    CHECK(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
    int r = send(s, "y", 1, 0);
    CHECK(r == -1 && (errno == ECONNRESET || errno == EPIPE));
    close(s);

    /* connect to a closed port: ECONNREFUSED; non-blocking: EINPROGRESS, then SO_ERROR. */
    close(l);
    c = socket(AF_INET, SOCK_STREAM, 0);
    a = loop4(port);
    CHECK_ERR(connect(c, (struct sockaddr *)&a, sizeof a), ECONNREFUSED);
    close(c);
    c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    r = connect(c, (struct sockaddr *)&a, sizeof a);
    CHECK(r == 0 || (r == -1 && (errno == EINPROGRESS || errno == ECONNREFUSED)));
    if (r == -1 && errno == EINPROGRESS) {
        struct pollfd wp = {.fd = c, .events = POLLOUT};
        poll(&wp, 1, 5000);
        len = sizeof v;
        CHECK(getsockopt(c, SOL_SOCKET, SO_ERROR, &v, &len) == 0 && v == ECONNREFUSED);
    } else {
        CHECK(1);
    }
    close(c);
}

static void udp(void)
{
    int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in aa = loop4(0), ba = loop4(0);
    CHECK(bind(a, (struct sockaddr *)&aa, sizeof aa) == 0);
    CHECK(bind(b, (struct sockaddr *)&ba, sizeof ba) == 0);
    socklen_t len = sizeof aa;
    getsockname(a, (struct sockaddr *)&aa, &len);
    len = sizeof ba;
    getsockname(b, (struct sockaddr *)&ba, &len);
    CHECK(sendto(a, "dgram", 5, 0, (struct sockaddr *)&ba, sizeof ba) == 5);
    char buf[64];
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    struct pollfd pf = {.fd = b, .events = POLLIN};
    CHECK(poll(&pf, 1, 5000) == 1);
    CHECK(recvfrom(b, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen) == 5 &&
          flen == sizeof from && from.sin_port == aa.sin_port);
    CHECK_ERR(recvfrom(b, buf, sizeof buf, 0, NULL, NULL), EAGAIN);

    /* sendmmsg / recvmmsg: three datagrams, MSG_WAITFORONE. */
    struct mmsghdr mm[3];
    struct iovec iov[3];
    char *msgs[3] = {"first", "second", "third"};
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 3; i++) {
        iov[i].iov_base = msgs[i];
        iov[i].iov_len = strlen(msgs[i]);
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
        mm[i].msg_hdr.msg_name = &ba;
        mm[i].msg_hdr.msg_namelen = sizeof ba;
    }
    CHECK(sendmmsg(a, mm, 3, 0) == 3 && mm[0].msg_len == 5 && mm[2].msg_len == 5);
    usleep(20000);
    char rb[4][16];
    struct iovec riov[4];
    struct mmsghdr rm[4];
    memset(rm, 0, sizeof rm);
    for (int i = 0; i < 4; i++) {
        riov[i].iov_base = rb[i];
        riov[i].iov_len = sizeof rb[i];
        rm[i].msg_hdr.msg_iov = &riov[i];
        rm[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(b, rm, 4, MSG_WAITFORONE, NULL);
    CHECK(n == 3 && rm[1].msg_len == 6 && memcmp(rb[1], "second", 6) == 0);
    /* A connected UDP socket: send/recv, and ECONNREFUSED from an ICMP error. */
    CHECK(connect(a, (struct sockaddr *)&ba, sizeof ba) == 0);
    CHECK(send(a, "c", 1, 0) == 1);
    CHECK(poll(&pf, 1, 5000) == 1 && recv(b, buf, sizeof buf, 0) == 1);
    close(b);
    CHECK(send(a, "gone", 4, 0) == 4);
    usleep(20000);
    CHECK_ERR(recv(a, buf, sizeof buf, MSG_DONTWAIT), ECONNREFUSED);
    close(a);
}

static void inet6(void)
{
    int l = socket(AF_INET6, SOCK_STREAM, 0);
    CHECK(l >= 0);
    int v = 1;
    CHECK(setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v) == 0);
    socklen_t len = sizeof v;
    CHECK(getsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &v, &len) == 0 && v == 1);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    if (bind(l, (struct sockaddr *)&a, sizeof a) != 0) {
        /* No ::1 on this host: the same answer for every Linux. */
        printf("no IPv6 loopback\n");
        close(l);
        return;
    }
    CHECK(listen(l, 1) == 0);
    len = sizeof a;
    CHECK(getsockname(l, (struct sockaddr *)&a, &len) == 0 && len == sizeof a);
    int c = socket(AF_INET6, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&a, sizeof a) == 0);
    struct sockaddr_in6 p;
    len = sizeof p;
    int s = accept(l, (struct sockaddr *)&p, &len);
    CHECK(s >= 0 && p.sin6_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&p.sin6_addr));
    CHECK(write(c, "six", 3) == 3);
    char buf[8];
    CHECK(read(s, buf, sizeof buf) == 3);
    close(s);
    close(c);
    close(l);
}

static void netlink(void)
{
    struct ifaddrs *ifa;
    CHECK(getifaddrs(&ifa) == 0);
    int lo4 = 0;
    for (struct ifaddrs *i = ifa; i; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && strcmp(i->ifa_name, "lo") == 0 &&
            ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
            (i->ifa_flags & IFF_LOOPBACK))
            lo4 = 1;
    CHECK(lo4);
    freeifaddrs(ifa);
    struct if_nameindex *ni = if_nameindex();
    int found = 0;
    for (struct if_nameindex *i = ni; i && i->if_index; i++)
        if (strcmp(i->if_name, "lo") == 0 && if_nametoindex("lo") == i->if_index)
            found = 1;
    CHECK(found);
    if_freenameindex(ni);
    /* The same through ioctls on an inet socket. */
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    CHECK(ioctl(s, SIOCGIFINDEX, &ifr) == 0 && ifr.ifr_ifindex == (int)if_nametoindex("lo"));
    CHECK(ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_LOOPBACK));
    CHECK(ioctl(s, SIOCGIFADDR, &ifr) == 0 &&
          ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    char cbuf[sizeof(struct ifreq) * 64];
    struct ifconf ic = {.ifc_len = sizeof cbuf, .ifc_buf = cbuf};
    CHECK(ioctl(s, SIOCGIFCONF, &ic) == 0 && ic.ifc_len > 0 &&
          ic.ifc_len % (int)sizeof(struct ifreq) == 0);
    int lo = 0;
    for (int i = 0; i < ic.ifc_len / (int)sizeof(struct ifreq); i++)
        if (strcmp(ic.ifc_req[i].ifr_name, "lo") == 0)
            lo = 1;
    CHECK(lo);
    CHECK_ERR(ioctl(s, SIOCGIFINDEX, (void *)8), EFAULT);
    close(s);
}

/* select, FIONBIO, EPOLLEXCLUSIVE, multicast options and a raw socket (root may open
 * one; either answer is the host's and the same for every Linux). */
static void more(void)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(sv[1], &rs);
    struct timeval tv = {0, 0};
    CHECK(select(sv[1] + 1, &rs, NULL, NULL, &tv) == 0);
    CHECK(write(sv[0], "s", 1) == 1);
    FD_SET(sv[1], &rs);
    tv.tv_sec = 5;
    CHECK(select(sv[1] + 1, &rs, NULL, NULL, &tv) == 1 && FD_ISSET(sv[1], &rs));
    int on = 1;
    CHECK(ioctl(sv[1], FIONBIO, &on) == 0 && (fcntl(sv[1], F_GETFL) & O_NONBLOCK));
    char c;
    CHECK(read(sv[1], &c, 1) == 1);
    CHECK_ERR(read(sv[1], &c, 1), EAGAIN);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, sv[1], &ev) == 0);
    CHECK_ERR(epoll_ctl(ep, EPOLL_CTL_MOD, sv[1], &ev), EINVAL);
    close(ep);
    close(sv[0]);
    close(sv[1]);

    int u = socket(AF_INET, SOCK_DGRAM, 0);
    unsigned char ttl = 3, loop = 0;
    CHECK(setsockopt(u, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) == 0);
    CHECK(setsockopt(u, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) == 0);
    int v = -1;
    socklen_t len = sizeof v;
    CHECK(getsockopt(u, IPPROTO_IP, IP_MULTICAST_TTL, &v, &len) == 0 && v == 3);
    struct ip_mreqn mr = {.imr_multiaddr.s_addr = htonl(0xe0000001 + 200)};
    mr.imr_ifindex = (int)if_nametoindex("lo");
    int j = setsockopt(u, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr);
    CHECK(j == 0 || errno == ENODEV || errno == EADDRNOTAVAIL);
    close(u);
    int raw = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    CHECK(raw >= 0 || errno == EPERM || errno == EACCES);
    if (raw >= 0)
        close(raw);
}

static volatile int g_alarms;
static void on_alarm(int s) { (void)s; g_alarms++; }

/* A blocking accept interrupted: restarted with SA_RESTART (a later connection
 * completes it), EINTR without; a receive with SO_RCVTIMEO is EINTR even with
 * SA_RESTART, as Linux's sock_intr_errno says. */
static void interrupted(int strict_part)
{
    int port;
    int l = listener(&port);
    g_alarms = 0;
    struct sigaction sa = {.sa_handler = on_alarm};
    struct itimerval it = {{0, 0}, {0, 30000}};
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
    setitimer(ITIMER_REAL, &it, NULL);
    CHECK_ERR(accept(l, NULL, NULL), EINTR);
    CHECK(g_alarms == 1);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    char buf[4];
    sa.sa_flags = SA_RESTART;
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
    if (!strict_part) {
        /* Restarted: the child writes after the signal. */
        pid_t pid = fork();
        if (pid == 0) {
            usleep(150000);
            write(sv[1], "late", 4);
            _exit(0);
        }
        setitimer(ITIMER_REAL, &it, NULL);
        CHECK(recv(sv[0], buf, 4, 0) == 4 && g_alarms == 2);
    } else {
        struct timeval tv = {5, 0};
        CHECK(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
        setitimer(ITIMER_REAL, &it, NULL);
        CHECK_ERR(recv(sv[0], buf, 4, 0), EINTR);
    }
    close(sv[0]);
    close(sv[1]);
    close(l);
}

/* qemu-aarch64 7.2 neither checks recvmmsg's timeout (EINVAL for tv_nsec >= 1e9) nor
 * passes MSG_DONTWAIT's EAGAIN through it when a timeout is given; elfuse follows Linux. */
static void strict(void)
{
    int a = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in aa = loop4(0);
    CHECK(bind(a, (struct sockaddr *)&aa, sizeof aa) == 0);
    struct timespec ts = {0, 1000};
    struct mmsghdr m;
    memset(&m, 0, sizeof m);
    CHECK_ERR(recvmmsg(a, &m, 1, MSG_DONTWAIT, &ts), EAGAIN);
    ts.tv_nsec = 2000000000L;
    CHECK_ERR(recvmmsg(a, &m, 1, MSG_DONTWAIT, &ts), EINVAL);
    close(a);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "strict") == 0) {
        strict();
        return report();
    }
    tcp();
    udp();
    inet6();
    netlink();
    more();
    interrupted(0);
    interrupted(1);
    return report();
}
