/* mmap DIR: the mmap family (DIR is an empty scratch folder for file maps). */
#include "check.h"
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static int all_bytes(const unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return 0;
    return 1;
}

static int pattern_ok(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(i * 31 + seed))
            return 0;
    return 1;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 31 + seed);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: mmap DIR\n");
        return 100;
    }
    const size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    const size_t mib = 1 << 20;

    /* Anonymous memory starts zeroed, is writable, is page aligned. */
    unsigned char *a = mmap(NULL, mib, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(a != MAP_FAILED);
    CHECK(((uintptr_t)a & (pg - 1)) == 0);
    CHECK(all_bytes(a, mib, 0));
    fill(a, mib, 7);
    CHECK(pattern_ok(a, mib, 7));

    /* mprotect read-only keeps contents; back to RW is writable again. */
    CHECK(mprotect(a, mib, PROT_READ) == 0);
    CHECK(pattern_ok(a, mib, 7));
    CHECK(mprotect(a, mib, PROT_READ | PROT_WRITE) == 0);
    a[0] = 0xAB;
    a[mib - 1] = 0xCD;
    CHECK(a[0] == 0xAB && a[mib - 1] == 0xCD);
    CHECK_ERR(syscall(SYS_mprotect, a + 1, pg, PROT_READ), EINVAL); /* musl's wrapper rounds down */
    CHECK(munmap(a, mib) == 0);

    /* Errors. */
    CHECK(mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED && errno == EINVAL);
    CHECK(mmap(NULL, pg, PROT_READ, MAP_PRIVATE, 9999, 0) == MAP_FAILED && errno == EBADF);
    CHECK(mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 1) == MAP_FAILED && errno == EINVAL);
    CHECK(munmap(NULL, 0) == -1 && errno == EINVAL);

    /* mremap: grow (may move) keeps contents, new tail is zero. */
    unsigned char *r = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(r != MAP_FAILED);
    fill(r, 2 * pg, 3);
    /* Put something right after it so that growing in place is impossible. */
    unsigned char *blocker = mmap(r + 2 * pg, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    unsigned char *g = mremap(r, 2 * pg, 64 * pg, MREMAP_MAYMOVE);
    CHECK(g != MAP_FAILED);
    CHECK(pattern_ok(g, 2 * pg, 3));
    CHECK(all_bytes(g + 2 * pg, 62 * pg, 0));
    g[64 * pg - 1] = 1;
    CHECK(g[64 * pg - 1] == 1);
    if (blocker != MAP_FAILED)
        munmap(blocker, pg);
    /* Without MAYMOVE a blocked grow fails. */
    unsigned char *b2 = mmap(g + 64 * pg, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (b2 == g + 64 * pg) {
        CHECK(mremap(g, 64 * pg, 65 * pg, 0) == MAP_FAILED && errno == ENOMEM);
        munmap(b2, pg);
    } else {
        CHECK(b2 == g + 64 * pg);
    }
    /* Shrink in place. */
    CHECK(mremap(g, 64 * pg, 4 * pg, 0) == g);
    CHECK(pattern_ok(g, 2 * pg, 3));
    /* Move to a fixed place. */
    unsigned char *dst = mmap(NULL, 16 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(dst != MAP_FAILED);
    unsigned char *m = mremap(g, 4 * pg, 4 * pg, MREMAP_MAYMOVE | MREMAP_FIXED, dst + 8 * pg);
    CHECK(m == dst + 8 * pg);
    CHECK(pattern_ok(m, 2 * pg, 3));
    CHECK(munmap(dst, 16 * pg) == 0);

    /* MAP_FIXED replaces part of a reservation. */
    unsigned char *res = mmap(NULL, 4 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(res != MAP_FAILED);
    unsigned char *f = mmap(res + pg, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(f == res + pg);
    f[0] = 42;
    f[pg - 1] = 43;
    CHECK(f[0] == 42 && f[pg - 1] == 43);
    /* MAP_FIXED_NOREPLACE over a mapping must not replace it. Linux fails with
     * EEXIST; qemu-aarch64 7.2 maps elsewhere instead: check only what both do. */
    unsigned char *q = mmap(f, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK(q != f && f[0] == 42 && f[pg - 1] == 43);
    if (q != MAP_FAILED)
        munmap(q, pg);
    CHECK(munmap(res, 4 * pg) == 0);

    /* madvise(MADV_DONTNEED) zeroes private anonymous memory. */
    unsigned char *z = mmap(NULL, 8 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(z != MAP_FAILED);
    memset(z, 0x77, 8 * pg);
    CHECK(madvise(z + 2 * pg, 4 * pg, MADV_DONTNEED) == 0);
    CHECK(all_bytes(z, 2 * pg, 0x77));
    CHECK(all_bytes(z + 2 * pg, 4 * pg, 0));
    CHECK(all_bytes(z + 6 * pg, 2 * pg, 0x77));
    CHECK(madvise(z, 8 * pg, MADV_WILLNEED) == 0);
    CHECK(munmap(z, 8 * pg) == 0);

    /* File mappings. */
    int dfd = open(argv[1], O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0);
    int fd = openat(dfd, "data.bin", O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(fd >= 0);
    size_t flen = 2 * pg + 100;
    unsigned char *src = malloc(flen);
    fill(src, flen, 11);
    CHECK(write(fd, src, flen) == (ssize_t)flen);

    unsigned char *p = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED);
    CHECK(memcmp(p, src, flen) == 0);
    CHECK(all_bytes(p + flen, 3 * pg - flen, 0));
    p[0] ^= 0xFF; /* private: the file does not change */
    unsigned char c;
    CHECK(pread(fd, &c, 1, 0) == 1 && c == src[0]);
    CHECK(munmap(p, 3 * pg) == 0);

    p = mmap(NULL, pg, PROT_READ, MAP_PRIVATE, fd, pg); /* offset */
    CHECK(p != MAP_FAILED && memcmp(p, src + pg, pg) == 0);
    CHECK(munmap(p, pg) == 0);

    p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED);
    memcpy(p + 10, "shared!", 7);
    CHECK(msync(p, pg, MS_SYNC) == 0);
    char back[8] = {0};
    CHECK(pread(fd, back, 7, 10) == 7 && memcmp(back, "shared!", 7) == 0);
    CHECK(pwrite(fd, "FROMFILE", 8, 100) == 8);
    CHECK(memcmp(p + 100, "FROMFILE", 8) == 0);
    CHECK(munmap(p, pg) == 0);

    /* A read-only fd cannot be mapped shared-writable. */
    int rfd = openat(dfd, "data.bin", O_RDONLY);
    CHECK(mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0) == MAP_FAILED && errno == EACCES);
    close(rfd);
    close(fd);
    CHECK(unlinkat(dfd, "data.bin", 0) == 0);
    close(dfd);
    free(src);

    /* A large PROT_NONE reservation is cheap. */
    void *big = mmap(NULL, (size_t)1 << 30, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK(big != MAP_FAILED);
    CHECK(munmap(big, (size_t)1 << 30) == 0);
    return report();
}
