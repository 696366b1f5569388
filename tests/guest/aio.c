/* aio DIR: Linux native AIO through the raw syscalls (io_setup, io_submit,
 * io_getevents, io_pgetevents, io_cancel, io_destroy) on a file in the scratch folder DIR
 * and on a pipe. qemu-user 7.2 has none of them (ENOSYS): elfuse only. */
#include "check.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <stdlib.h>

/* linux/aio_abi.h, which the musl toolchain lacks (little-endian layout). */
typedef unsigned long aio_context_t;
enum { IOCB_CMD_PREAD = 0, IOCB_CMD_PWRITE = 1, IOCB_CMD_FSYNC = 2, IOCB_CMD_POLL = 5,
       IOCB_CMD_PREADV = 7 };
#define IOCB_FLAG_RESFD 1
struct io_event {
    uint64_t data, obj;
    int64_t res, res2;
};
struct iocb {
    uint64_t aio_data;
    uint32_t aio_key, aio_rw_flags;
    uint16_t aio_lio_opcode;
    int16_t aio_reqprio;
    uint32_t aio_fildes;
    uint64_t aio_buf, aio_nbytes;
    int64_t aio_offset;
    uint64_t aio_reserved2;
    uint32_t aio_flags, aio_resfd;
};
#ifndef SYS_io_pgetevents
#define SYS_io_pgetevents 292
#endif

static long io_setup_(unsigned n, aio_context_t *c) { return syscall(SYS_io_setup, n, c); }
static long io_destroy_(aio_context_t c) { return syscall(SYS_io_destroy, c); }
static long io_submit_(aio_context_t c, long n, struct iocb **v) { return syscall(SYS_io_submit, c, n, v); }
static long io_cancel_(aio_context_t c, struct iocb *i, struct io_event *e) { return syscall(SYS_io_cancel, c, i, e); }
static long io_getevents_(aio_context_t c, long min, long n, struct io_event *e, struct timespec *t)
{
    return syscall(SYS_io_getevents, c, min, n, e, t);
}

static struct iocb cb(int op, int fd, void *buf, size_t n, long off, uint64_t data)
{
    struct iocb i;
    memset(&i, 0, sizeof i);
    i.aio_lio_opcode = op;
    i.aio_fildes = fd;
    i.aio_buf = (uintptr_t)buf;
    i.aio_nbytes = n;
    i.aio_offset = off;
    i.aio_data = data;
    return i;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    if (argc > 2 && strcmp(argv[1], "after-exec") == 0) {
        /* The exec'd program: the context is gone with the old address space. */
        struct io_event e;
        struct timespec z = {0, 0};
        aio_context_t old = strtoul(argv[2], NULL, 16);
        return io_getevents_(old, 0, 1, &e, &z) == -1 && errno == EINVAL ? 0 : 1;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/aio.dat", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);

    aio_context_t ctx = 0;
    CHECK(io_setup_(16, &ctx) == 0);
    CHECK(ctx != 0 && (ctx & 4095) == 0);
    aio_context_t again = ctx;
    CHECK_ERR(io_setup_(16, &again), EINVAL);
    CHECK_ERR(io_setup_(16, (aio_context_t *)8), EFAULT);

    /* The ring is a mapping of the process, named as Linux names it. */
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512], want[32];
    int found = 0;
    snprintf(want, sizeof want, "%lx-", (unsigned long)ctx);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, want, strlen(want)) == 0)
            found = strstr(line, "/[aio] (deleted)") != NULL;
    if (f)
        fclose(f);
    CHECK(found);

    /* A write, then a read and a vectored read of it; results name the guest's iocbs. */
    char data[] = "asynchronous bytes";
    struct iocb w = cb(IOCB_CMD_PWRITE, fd, data, sizeof data, 100, 11);
    w.aio_key = 1234; /* overwritten with KIOCB_KEY (0) */
    struct iocb *list[3] = {&w};
    CHECK(io_submit_(ctx, 1, list) == 1);
    CHECK(w.aio_key == 0);
    struct io_event ev[4];
    CHECK(io_getevents_(ctx, 1, 4, ev, NULL) == 1);
    CHECK(ev[0].obj == (uintptr_t)&w && ev[0].data == 11 && ev[0].res == sizeof data);

    char a[8] = {0}, b[32] = {0}, c[32] = {0};
    struct iocb r = cb(IOCB_CMD_PREAD, fd, c, sizeof c, 100, 22);
    struct iovec iov[2] = {{a, 5}, {b, 14}};
    struct iocb rv = cb(IOCB_CMD_PREADV, fd, iov, 2, 100, 33);
    struct iocb fs = cb(IOCB_CMD_FSYNC, fd, NULL, 0, 0, 44);
    list[0] = &r;
    list[1] = &rv;
    list[2] = &fs;
    CHECK(io_submit_(ctx, 3, list) == 3);
    int got = 0, seen = 0;
    while (got < 3) {
        long n = io_getevents_(ctx, 1, 4, ev, NULL);
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++, got++) {
            if (ev[i].obj == (uintptr_t)&r && ev[i].data == 22 && ev[i].res == sizeof data)
                seen |= 1;
            if (ev[i].obj == (uintptr_t)&rv && ev[i].data == 33 && ev[i].res == 19)
                seen |= 2;
            if (ev[i].obj == (uintptr_t)&fs && ev[i].data == 44 && ev[i].res == 0)
                seen |= 4;
        }
    }
    CHECK(got == 3 && seen == 7);
    CHECK(strcmp(c, data) == 0);
    CHECK(memcmp(a, "async", 5) == 0 && memcmp(b, "hronous bytes", 14) == 0);

    /* Completion signalled on an eventfd. */
    int efd = eventfd(0, 0);
    struct iocb re = cb(IOCB_CMD_PREAD, fd, c, 5, 100, 55);
    re.aio_flags = IOCB_FLAG_RESFD;
    re.aio_resfd = efd;
    list[0] = &re;
    CHECK(io_submit_(ctx, 1, list) == 1);
    uint64_t cnt = 0;
    CHECK(read(efd, &cnt, 8) == 8 && cnt == 1);
    CHECK(io_getevents_(ctx, 1, 1, ev, NULL) == 1 && ev[0].res == 5);

    /* Poll on a pipe: pending until written, cancelled by io_cancel. */
    int p[2];
    CHECK(pipe(p) == 0);
    struct iocb pl = cb(IOCB_CMD_POLL, p[0], NULL, 0, 0, 66);
    pl.aio_buf = POLLIN;
    list[0] = &pl;
    CHECK(io_submit_(ctx, 1, list) == 1);
    struct timespec zero = {0, 0};
    CHECK(io_getevents_(ctx, 0, 1, ev, &zero) == 0);
    CHECK(write(p[1], "x", 1) == 1);
    CHECK(io_getevents_(ctx, 1, 1, ev, NULL) == 1);
    CHECK(ev[0].obj == (uintptr_t)&pl && (ev[0].res & POLLIN));
    char x;
    CHECK(read(p[0], &x, 1) == 1);
    CHECK(io_submit_(ctx, 1, list) == 1);
    struct io_event ce;
    CHECK_ERR(io_cancel_(ctx, &pl, &ce), EINPROGRESS);
    CHECK(io_getevents_(ctx, 1, 1, ev, NULL) == 1 && ev[0].obj == (uintptr_t)&pl);
    CHECK_ERR(io_cancel_(ctx, &pl, &ce), EINVAL);

    /* The request holds its file: closing the fd does not end it. */
    int p2[2];
    CHECK(pipe(p2) == 0);
    struct iocb held = cb(IOCB_CMD_POLL, p2[0], NULL, 0, 0, 88);
    held.aio_buf = POLLIN;
    list[0] = &held;
    CHECK(io_submit_(ctx, 1, list) == 1);
    CHECK(close(p2[0]) == 0);
    CHECK(write(p2[1], "z", 1) == 1);
    CHECK(io_getevents_(ctx, 1, 1, ev, NULL) == 1);
    CHECK(ev[0].obj == (uintptr_t)&held && (ev[0].res & POLLIN));
    close(p2[1]);

    /* io_pgetevents with a mask: one completed event. */
    struct iocb r2 = cb(IOCB_CMD_PREAD, fd, c, 4, 100, 77);
    list[0] = &r2;
    CHECK(io_submit_(ctx, 1, list) == 1);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    struct { const sigset_t *mask; size_t size; } us = {&m, 8};
    CHECK(syscall(SYS_io_pgetevents, ctx, 1, 1, ev, NULL, &us) == 1 && ev[0].data == 77);

    /* Refusals. */
    struct iocb bad = cb(IOCB_CMD_PREAD, 999, c, 4, 0, 0);
    list[0] = &bad;
    CHECK_ERR(io_submit_(ctx, 1, list), EBADF);
    bad = cb(IOCB_CMD_PREAD, fd, c, 4, 0, 0);
    bad.aio_reserved2 = 1;
    CHECK_ERR(io_submit_(ctx, 1, list), EINVAL);
    bad = cb(IOCB_CMD_PREAD, fd, (void *)8, 4, 0, 0);
    CHECK_ERR(io_submit_(ctx, 1, list), EFAULT);
    bad = cb(99, fd, c, 4, 0, 0);
    CHECK_ERR(io_submit_(ctx, 1, list), EINVAL);
    CHECK_ERR(io_submit_(ctx, -1, list), EINVAL);
    CHECK(io_submit_(ctx, 0, list) == 0);
    CHECK_ERR(io_getevents_(ctx, 2, 1, ev, NULL), EINVAL);
    CHECK_ERR(io_getevents_(ctx + 4096 * 64, 0, 1, ev, &zero), EINVAL);

    /* A fork child has no AIO context (Linux's mm of the child has none), and the fds
     * of the parent's requests in flight are still the child's own. */
    list[0] = &pl;
    CHECK(io_submit_(ctx, 1, list) == 1);
    pid_t pid = fork();
    if (pid == 0) {
        if (io_getevents_(ctx, 0, 1, ev, &zero) != -1 || errno != EINVAL)
            _exit(1);
        _exit(fcntl(p[0], F_GETFL) != -1 && write(p[1], "y", 1) == 1 ? 0 : 2);
    }
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(io_getevents_(ctx, 1, 1, ev, NULL) == 1 && ev[0].obj == (uintptr_t)&pl);
    CHECK(read(p[0], &x, 1) == 1 && x == 'y');

    /* execve ends every context (a request in flight with it). */
    pid = fork();
    if (pid == 0) {
        aio_context_t c2 = 0;
        char hex[32];
        if (io_setup_(4, &c2) != 0)
            _exit(3);
        list[0] = &pl;
        if (io_submit_(c2, 1, list) != 1)
            _exit(4);
        snprintf(hex, sizeof hex, "%lx", (unsigned long)c2);
        execl(argv[0], argv[0], "after-exec", hex, (char *)NULL);
        _exit(5);
    }
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    CHECK(io_destroy_(ctx) == 0);
    CHECK_ERR(io_destroy_(ctx), EINVAL);
    unlink(path);
    return report();
}
