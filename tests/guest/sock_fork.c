/* sock_fork: sockets across fork and threads: a child inherits a connected TCP socket
 * and a socketpair end, a parent sends the child a pipe end and a socket with
 * SCM_RIGHTS, a CLOEXEC socket is closed by exec's sweep (checked via fcntl in the
 * child), and 8 threads storm one AF_UNIX datagram socket. */
#include "check.h"
#include "scm.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void inherited(void)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 1) == 0);
    socklen_t len = sizeof a;
    getsockname(l, (struct sockaddr *)&a, &len);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&a, sizeof a) == 0);
    int s = accept(l, NULL, NULL);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        /* The child talks on both inherited sockets, then receives two fds. */
        char buf[16];
        int ok = write(c, "from child", 10) == 10;
        ok &= read(c, buf, sizeof buf) == 5 && memcmp(buf, "reply", 5) == 0;
        int p = recv_fd(sv[1]);
        ok &= p >= 0 && write(p, "piped", 5) == 5;
        int t = recv_fd(sv[1]);
        ok &= t >= 0 && write(t, "sock!", 5) == 5;
        _exit(ok ? 0 : 1);
    }
    char buf[16];
    CHECK(read(s, buf, sizeof buf) == 10 && memcmp(buf, "from child", 10) == 0);
    CHECK(write(s, "reply", 5) == 5);
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(send_fds(sv[0], &p[1], 1) == 1);
    close(p[1]);
    int x[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, x) == 0);
    CHECK(send_fds(sv[0], &x[0], 1) == 1);
    close(x[0]);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(read(p[0], buf, sizeof buf) == 5 && memcmp(buf, "piped", 5) == 0);
    CHECK(read(p[0], buf, sizeof buf) == 0); /* the child's copy closed at exit */
    CHECK(read(x[1], buf, sizeof buf) == 5 && memcmp(buf, "sock!", 5) == 0);
    close(p[0]);
    close(x[1]);
    close(sv[0]);
    close(sv[1]);
    close(s);
    close(c);
    close(l);
}

#define THREADS 8
#define PER 500
static int g_dgram[2];

static void *storm(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < PER; i++) {
        int msg[2] = {(int)id, i};
        while (send(g_dgram[0], msg, sizeof msg, 0) != sizeof msg)
            if (errno != EAGAIN && errno != ENOBUFS)
                return (void *)1;
    }
    return NULL;
}

static void dgram_storm(void)
{
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, g_dgram) == 0);
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, storm, (void *)i);
    int next[THREADS] = {0}, bad = 0;
    for (int n = 0; n < THREADS * PER; n++) {
        int msg[2];
        if (recv(g_dgram[1], msg, sizeof msg, 0) != sizeof msg || msg[0] < 0 ||
            msg[0] >= THREADS || msg[1] != next[msg[0]]++)
            bad++;
    }
    int failed = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        failed += r != NULL;
    }
    CHECK(bad == 0 && failed == 0); /* every datagram, in order per sender */
    close(g_dgram[0]);
    close(g_dgram[1]);
}

int main(void)
{
    inherited();
    dgram_storm();
    return report();
}
