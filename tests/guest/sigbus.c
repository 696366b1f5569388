/* sigbus DIR: accesses past the end of a mapped file raise SIGBUS (BUS_ADRERR, si_addr
 * the address), in private and shared mappings, for reads and writes; once the file
 * has grown over a page, the page is the file's; PROT_NONE is SIGSEGV (SEGV_ACCERR)
 * first. DIR is an empty scratch folder. */
#include "check.h"
#include "faultprobe.h"
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>


int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: sigbus DIR\n");
        return 100;
    }
    struct sigaction sa = {0};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    CHECK(sigaction(SIGBUS, &sa, 0) == 0 && sigaction(SIGSEGV, &sa, 0) == 0);
    long pg = sysconf(_SC_PAGESIZE);
    char path[4096];
    snprintf(path, sizeof path, "%s/file", argv[1]);
    for (int shared = 0; shared < 2; shared++) {
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        CHECK(fd >= 0 && write(fd, "hello", 5) == 5);
        char *p = mmap(0, 3 * pg, PROT_READ | PROT_WRITE, shared ? MAP_SHARED : MAP_PRIVATE, fd, 0);
        CHECK(p != MAP_FAILED);
        /* The page holding the end of file is all there: zeroes after it. */
        CHECK(touch(p, 0) == 0 && p[0] == 'h' && p[5] == 0 && p[pg - 1] == 0);
        CHECK(touch(p + pg - 1, 1) == 0);
        for (int write = 0; write < 2; write++) {
            CHECK(touch(p + pg + 8, write) == SIGBUS);
            CHECK(got_code == BUS_ADRERR && got_addr == p + pg + 8);
        }
        /* The file grows over the second page: it is mapped, with the file's bytes. */
        CHECK(pwrite(fd, "X", 1, pg + 8) == 1);
        CHECK(touch(p + pg + 8, 0) == 0 && p[pg + 8] == 'X' && p[pg] == 0);
        CHECK(touch(p + pg + 7, 1) == 0 && touch(p + pg + 9, 1) == 0);
        CHECK(touch(p + 2 * pg, 0) == SIGBUS && got_addr == p + 2 * pg);
        if (shared) {
            /* Shared: the write reached the file. */
            char c = 0;
            CHECK(pread(fd, &c, 1, pg + 7) == 1 && c == 1);
        }
        CHECK(munmap(p, 3 * pg) == 0);

        /* Wholly past the end (the offset is beyond it): the first page already. */
        p = mmap(0, pg, PROT_READ, shared ? MAP_SHARED : MAP_PRIVATE, fd, 4 * pg);
        CHECK(p != MAP_FAILED);
        CHECK(touch(p, 0) == SIGBUS && got_code == BUS_ADRERR && got_addr == p);
        CHECK(munmap(p, pg) == 0);

        /* PROT_NONE: the access is refused before the end of file matters. */
        p = mmap(0, 8 * pg, PROT_NONE, shared ? MAP_SHARED : MAP_PRIVATE, fd, 0);
        CHECK(p != MAP_FAILED);
        CHECK(touch(p + 6 * pg, 0) == SIGSEGV && got_code == SEGV_ACCERR);
        /* Made readable: past the end is SIGBUS again, before it is readable. */
        CHECK(mprotect(p, 8 * pg, PROT_READ) == 0);
        CHECK(touch(p + pg, 0) == 0 && p[pg + 8] == 'X');
        CHECK(touch(p + 6 * pg, 0) == SIGBUS && got_code == BUS_ADRERR);
        CHECK(munmap(p, 8 * pg) == 0);
        close(fd);
    }
    unlink(path);
    return report();
}
