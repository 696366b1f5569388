/* inotify: create/modify/delete/move events with names in a scratch directory (argv[1]). */
#include "check.h"
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *mask_name(uint32_t m)
{
    switch (m & ~IN_ISDIR) {
    case IN_CREATE: return "IN_CREATE";
    case IN_MODIFY: return "IN_MODIFY";
    case IN_DELETE: return "IN_DELETE";
    case IN_MOVED_FROM: return "IN_MOVED_FROM";
    case IN_MOVED_TO: return "IN_MOVED_TO";
    case IN_CLOSE_WRITE: return "IN_CLOSE_WRITE";
    case IN_DELETE_SELF: return "IN_DELETE_SELF";
    case IN_IGNORED: return "IN_IGNORED";
    default: return "other";
    }
}

static char evbuf[4096] __attribute__((aligned(8)));
static uint32_t cookies[8];
static int ncookies;

/* Reads what is queued and prints one line per event. */
static int drain(int fd, int wd)
{
    int count = 0;
    ssize_t n = read(fd, evbuf, sizeof evbuf);
    for (char *p = evbuf; n > 0 && p < evbuf + n;) {
        struct inotify_event *e = (struct inotify_event *)p;
        printf("event %s%s wd_ok=%d name=[%s]\n", mask_name(e->mask),
               e->mask & IN_ISDIR ? "|IN_ISDIR" : "", e->wd == wd, e->len ? e->name : "");
        if (e->cookie && ncookies < 8)
            cookies[ncookies++] = e->cookie;
        p += sizeof *e + e->len;
        count++;
    }
    return count;
}

int main(int argc, char **argv)
{
    if (argc < 2 || chdir(argv[1]) != 0) {
        printf("usage: inotify DIR\n");
        return 2;
    }
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    CHECK(fd >= 0);
    CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC && (fcntl(fd, F_GETFL) & O_NONBLOCK));
    CHECK_ERR(read(fd, evbuf, sizeof evbuf), EAGAIN);
    /* An absolute path (the scratch directory) and a relative one both work. */
    int wd = inotify_add_watch(fd, argv[1],
                               IN_CREATE | IN_MODIFY | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO);
    CHECK(wd >= 0);
    CHECK(inotify_add_watch(fd, ".", IN_CREATE | IN_MASK_ADD) == wd);
    CHECK_ERR(inotify_add_watch(fd, "missing", IN_CREATE), ENOENT);
    CHECK_ERR(inotify_add_watch(fd, ".", 0), EINVAL);

    int f = open("a.txt", O_CREAT | O_WRONLY, 0644);
    CHECK(f >= 0 && write(f, "hi", 2) == 2);
    close(f);
    CHECK(mkdir("sub", 0755) == 0);
    CHECK(rename("a.txt", "b.txt") == 0);
    CHECK(unlink("b.txt") == 0);
    CHECK(rmdir("sub") == 0);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    CHECK(poll(&p, 1, 1000) == 1 && (p.revents & POLLIN));
    int n = drain(fd, wd);
    CHECK(n == 7);
    CHECK(ncookies == 2 && cookies[0] == cookies[1]);
    CHECK_ERR(read(fd, evbuf, sizeof evbuf), EAGAIN);

    /* A buffer too small for one event is EINVAL. */
    f = open("c", O_CREAT | O_WRONLY, 0644);
    close(f);
    CHECK_ERR(read(fd, evbuf, sizeof(struct inotify_event)), EINVAL);
    drain(fd, wd);
    unlink("c");
    drain(fd, wd);

    CHECK(inotify_rm_watch(fd, wd) == 0);
    drain(fd, wd);
    CHECK_ERR(inotify_rm_watch(fd, wd), EINVAL);
    CHECK(close(fd) == 0);
    return report();
}
