/* brk and malloc: the raw brk system call, a 256 MiB malloc touched on every
 * page, and many small allocations. */
#include "check.h"
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

static uintptr_t sys_brk(uintptr_t addr)
{
    return (uintptr_t)syscall(SYS_brk, addr);
}

int main(void)
{
    const size_t pg = (size_t)sysconf(_SC_PAGESIZE);

    /* Raw brk (musl's sbrk() refuses non-zero increments, so use the syscall).
     * The break is restored before malloc runs again. */
    /* No libc calls between the brk calls: printf may malloc, and malloc may
     * move the break itself. Results are collected first, checked after. */
    uintptr_t cur = sys_brk(0);
    int same = sys_brk(0) == cur;
    uintptr_t want = cur + (1 << 20);
    int grow = sys_brk(want) == want;
    int grown = sys_brk(0) == want;
    unsigned char *heap = (unsigned char *)cur;
    int zero = 1;
    if (grow) {
        for (size_t i = 0; i < (1 << 20); i += 512)
            zero &= heap[i] == 0;
        for (size_t i = 0; i < (1 << 20); i++)
            heap[i] = 0x5A;
    }
    int written = grow && heap[0] == 0x5A && heap[(1 << 20) - 1] == 0x5A;
    int shrink = sys_brk(cur + pg) == cur + pg;
    int regrow = sys_brk(want) == want; /* the released part reads zero again */
    int rezero = regrow && heap[pg] == 0 && heap[(1 << 20) - 1] == 0 && heap[0] == 0x5A;
    int refused = sys_brk(cur + ((uintptr_t)1 << 44)) == want; /* old break stays */
    int restored = sys_brk(cur) == cur;
    CHECK(cur != 0);
    CHECK(same);
    CHECK(grow);
    CHECK(grown);
    CHECK(zero);
    CHECK(written);
    CHECK(shrink);
    CHECK(regrow);
    CHECK(rezero);
    CHECK(refused);
    CHECK(restored);

    /* One 256 MiB block, every page written and read back. */
    size_t big = (size_t)256 << 20;
    unsigned char *p = malloc(big);
    CHECK(p != NULL);
    if (p) {
        for (size_t i = 0; i < big; i += pg)
            p[i] = (unsigned char)(i / pg);
        int ok = 1;
        for (size_t i = 0; i < big; i += pg)
            ok &= p[i] == (unsigned char)(i / pg);
        CHECK(ok);
        free(p);
    }

    /* Many small blocks of varied sizes, freed in a scrambled order. */
    enum { N = 100000 };
    static unsigned char *blocks[N];
    static size_t sizes[N];
    int all = 1;
    for (int i = 0; i < N; i++) {
        sizes[i] = 1 + (size_t)(i * 7919u % 1000);
        blocks[i] = malloc(sizes[i]);
        all &= blocks[i] != NULL;
        if (blocks[i])
            memset(blocks[i], (unsigned char)i, sizes[i]);
    }
    CHECK(all);
    int intact = 1;
    for (int i = 0; i < N; i += 2) {
        intact &= blocks[i][0] == (unsigned char)i && blocks[i][sizes[i] - 1] == (unsigned char)i;
        free(blocks[i]);
    }
    for (int i = N - 1; i > 0; i -= 2) {
        intact &= blocks[i][0] == (unsigned char)i && blocks[i][sizes[i] - 1] == (unsigned char)i;
        free(blocks[i]);
    }
    CHECK(intact);

    /* realloc keeps contents, calloc is zeroed. */
    char *s = malloc(16);
    strcpy(s, "grow me");
    for (size_t n = 32; n <= (16 << 20); n *= 4)
        s = realloc(s, n);
    CHECK(s != NULL && strcmp(s, "grow me") == 0);
    free(s);
    unsigned *c = calloc(1 << 20, sizeof *c);
    int czero = c != NULL;
    for (size_t i = 0; czero && i < (1 << 20); i++)
        czero &= c[i] == 0;
    CHECK(czero);
    free(c);
    return report();
}
