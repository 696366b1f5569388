/* sock_sysroot GUESTDIR HOSTDIR: AF_UNIX path names are guest paths. Run with --sysroot
 * ROOT where GUESTDIR exists inside ROOT and HOSTDIR only on the host: a socket bound in
 * GUESTDIR is made inside ROOT and named by its guest path (getsockname, accept's peer,
 * recvfrom); one bound in HOSTDIR is made on the host (the creation rule). */
#include "check.h"
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static socklen_t addr_of(struct sockaddr_un *a, const char *dir, const char *name)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    snprintf(a->sun_path, sizeof a->sun_path, "%s/%s", dir, name);
    return offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1;
}

static void stream_in(const char *dir)
{
    struct sockaddr_un a, got;
    socklen_t alen = addr_of(&a, dir, "stream.sock");
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(bind(l, (struct sockaddr *)&a, alen) == 0 && listen(l, 1) == 0);
    struct stat st;
    CHECK(stat(a.sun_path, &st) == 0 && S_ISSOCK(st.st_mode));
    socklen_t glen = sizeof got;
    CHECK(getsockname(l, (struct sockaddr *)&got, &glen) == 0 && glen == alen &&
          strcmp(got.sun_path, a.sun_path) == 0);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&a, alen) == 0);
    int s = accept(l, NULL, NULL);
    glen = sizeof got;
    CHECK(getpeername(c, (struct sockaddr *)&got, &glen) == 0 && strcmp(got.sun_path, a.sun_path) == 0);
    CHECK(write(c, "x", 1) == 1);
    char b;
    CHECK(read(s, &b, 1) == 1);
    close(s);
    close(c);
    close(l);
}

static void dgram_in(const char *dir)
{
    struct sockaddr_un a, b, from;
    socklen_t alen = addr_of(&a, dir, "a.sock"), blen = addr_of(&b, dir, "b.sock");
    int x = socket(AF_UNIX, SOCK_DGRAM, 0), y = socket(AF_UNIX, SOCK_DGRAM, 0);
    CHECK(bind(x, (struct sockaddr *)&a, alen) == 0 && bind(y, (struct sockaddr *)&b, blen) == 0);
    CHECK(sendto(y, "d", 1, 0, (struct sockaddr *)&a, alen) == 1);
    char c;
    socklen_t flen = sizeof from;
    CHECK(recvfrom(x, &c, 1, 0, (struct sockaddr *)&from, &flen) == 1 && flen == blen &&
          strcmp(from.sun_path, b.sun_path) == 0);
    close(x);
    close(y);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    for (int i = 1; i <= 2; i++) {
        stream_in(argv[i]);
        dgram_in(argv[i]);
    }
    return report();
}
