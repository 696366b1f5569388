/* Socket benchmarks, one "name value" line each (ns per operation):
 *   tcp 1-byte round trip      a thread echoes one byte over loopback TCP
 *   tcp 64KiB chunk            ns per 64 KiB chunk streamed over loopback TCP
 *   unix SCM_RIGHTS round trip one fd sent over a socketpair, received, closed, acked
 * Usage: net [SCALE [cpu]]: with "cpu" the time is the process's CPU time (all threads,
 * CLOCK_PROCESS_CPUTIME_ID) instead of CLOCK_MONOTONIC. Loopback only, port 0. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../tests/guest/scm.h"

static clockid_t bench_clock = CLOCK_MONOTONIC;

static double now(void)
{
    struct timespec t;
    clock_gettime(bench_clock, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* A connected loopback TCP pair: *a (client), *b (server side). */
static void tcp_pair(int *a, int *b)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) || listen(l, 1) ||
        getsockname(l, (struct sockaddr *)&sa, &len))
        die("listen");
    *a = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(*a, (struct sockaddr *)&sa, sizeof sa))
        die("connect");
    *b = accept(l, NULL, NULL);
    if (*b < 0)
        die("accept");
    int on = 1;
    setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    close(l);
}

static long g_n;

static void *echo(void *arg)
{
    int s = *(int *)arg;
    char c;
    for (long i = 0; i < g_n; i++)
        if (recv(s, &c, 1, 0) != 1 || send(s, &c, 1, 0) != 1)
            die("echo");
    return NULL;
}

#define CHUNK 65536
static long g_chunks;

static void *sink(void *arg)
{
    int s = *(int *)arg;
    static char buf[CHUNK];
    long total = g_chunks * CHUNK, got = 0;
    while (got < total) {
        ssize_t r = recv(s, buf, sizeof buf, 0);
        if (r <= 0)
            die("sink");
        got += r;
    }
    return NULL;
}

static void *fd_taker(void *arg)
{
    int s = *(int *)arg;
    for (long i = 0; i < g_n; i++) {
        int fd = recv_fd(s);
        if (fd < 0)
            die("recvmsg");
        close(fd);
        if (send(s, "k", 1, 0) != 1)
            die("ack");
    }
    return NULL;
}

int main(int argc, char **argv)
{
    long scale = argc > 1 ? atol(argv[1]) : 1;
    if (scale < 1)
        scale = 1;
    if (argc > 2 && strcmp(argv[2], "cpu") == 0)
        bench_clock = CLOCK_PROCESS_CPUTIME_ID;
    int a, b;
    pthread_t t;

    tcp_pair(&a, &b);
    g_n = 20000 * scale;
    pthread_create(&t, NULL, echo, &b);
    char c = 'x';
    double t0 = now();
    for (long i = 0; i < g_n; i++)
        if (send(a, &c, 1, 0) != 1 || recv(a, &c, 1, 0) != 1)
            die("rtt");
    printf("tcp 1-byte round trip %.1f\n", (now() - t0) / g_n);
    pthread_join(t, NULL);
    close(a);
    close(b);

    tcp_pair(&a, &b);
    g_chunks = 4096 * scale; /* 256 MiB */
    static char chunk[CHUNK];
    memset(chunk, 'z', sizeof chunk);
    pthread_create(&t, NULL, sink, &b);
    t0 = now();
    for (long i = 0; i < g_chunks; i++)
        for (size_t off = 0; off < CHUNK;) {
            ssize_t w = send(a, chunk + off, CHUNK - off, 0);
            if (w <= 0)
                die("send");
            off += w;
        }
    pthread_join(t, NULL);
    printf("tcp 64KiB chunk %.1f\n", (now() - t0) / g_chunks);
    close(a);
    close(b);

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
        die("socketpair");
    g_n = 10000 * scale;
    pthread_create(&t, NULL, fd_taker, &sv[1]);
    t0 = now();
    for (long i = 0; i < g_n; i++) {
        int fd = 1;
        char byte;
        if (send_fds(sv[0], &fd, 1) != 1 || recv(sv[0], &byte, 1, 0) != 1)
            die("scm");
    }
    printf("unix SCM_RIGHTS round trip %.1f\n", (now() - t0) / g_n);
    pthread_join(t, NULL);
    return 0;
}
