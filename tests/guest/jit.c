/* jit [alias]: code written at run time, run, rewritten and run again, as a JIT does.
 * RWX pages: rewritten in place; data stores into a page that holds code; W^X with
 * mprotect; a block that spans two pages; two functions on one page; one page
 * rewritten many times; a code page written as data before it ever ran.
 * alias (elfuse-only): a temporary file mapped twice (MAP_SHARED), written through the
 * RW view and run through the RX view, as W^X JITs do. Linux runs the new code; qemu-user
 * 7.2 runs the old code (it only notices stores to the view that ran).
 * Every write is followed by __builtin___clear_cache, as the architecture requires. */
#define _GNU_SOURCE
#include "check.h"
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096
#define RET 0xd65f03c0u

typedef int (*fn_t)(int);

/* movz w0, #imm16 */
static uint32_t movz_w0(unsigned imm)
{
    return 0x52800000u | ((imm & 0xffffu) << 5);
}

/* add w0, w0, #imm12 */
static uint32_t add_w0(unsigned imm)
{
    return 0x11000000u | ((imm & 0xfffu) << 10);
}

static void emit(uint32_t *at, const uint32_t *insns, int n)
{
    for (int i = 0; i < n; i++)
        at[i] = insns[i];
    __builtin___clear_cache((char *)at, (char *)(at + n));
}

static fn_t as_fn(void *p)
{
    return (fn_t)(uintptr_t)p;
}

static void rwx_pages(void)
{
    uint8_t *p = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE | PROT_EXEC,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    if (p == MAP_FAILED)
        return;
    uint32_t *code = (uint32_t *)p;

    /* Written (as data) before any code ran from it. */
    memset(p, 0, PAGE);
    emit(code, (uint32_t[]){movz_w0(1), RET}, 2);
    CHECK(as_fn(code)(0) == 1);
    emit(code, (uint32_t[]){movz_w0(2), RET}, 2);
    CHECK(as_fn(code)(0) == 2);
    /* Only the immediate changes: same length, same page. */
    emit(code, (uint32_t[]){add_w0(40)}, 1);
    CHECK(as_fn(code)(2) == 42);

    /* Stores to data on the page that holds code leave the code working. */
    volatile uint32_t *data = (uint32_t *)(p + 3000);
    for (int i = 0; i < 1000; i++)
        data[i % 16] += (uint32_t)i;
    CHECK(as_fn(code)(1) == 41);
    CHECK(data[0] == 31248);

    /* A second function on the same page; rewriting one leaves the other. */
    uint32_t *g = code + 64;
    emit(g, (uint32_t[]){add_w0(7), RET}, 2);
    CHECK(as_fn(g)(1) == 8);
    emit(code, (uint32_t[]){add_w0(100), RET}, 2);
    CHECK(as_fn(code)(1) == 101);
    CHECK(as_fn(g)(1) == 8);

    /* One page rewritten and run many times. */
    long sum = 0;
    for (unsigned i = 0; i < 300; i++) {
        emit(code, (uint32_t[]){movz_w0(i), add_w0(i % 5), RET}, 3);
        sum += as_fn(code)(0);
    }
    CHECK(sum == 300L * 299 / 2 + 60 * (0 + 1 + 2 + 3 + 4));

    /* A block that spans two pages: rewrite the half on the second page. */
    uint32_t *span = (uint32_t *)(p + 2 * PAGE - 8);
    emit(span, (uint32_t[]){movz_w0(5), add_w0(0), add_w0(1), RET}, 4);
    CHECK(as_fn(span)(0) == 6);
    emit(span + 2, (uint32_t[]){add_w0(7)}, 1);
    CHECK(as_fn(span)(0) == 12);
    emit(span, (uint32_t[]){movz_w0(9)}, 1);
    CHECK(as_fn(span)(0) == 16);
    munmap(p, 3 * PAGE);
}

static void wx_mprotect(void)
{
    uint32_t *code = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(code != MAP_FAILED);
    if (code == MAP_FAILED)
        return;
    long sum = 0;
    int ok = 1;
    for (unsigned i = 1; i <= 20 && ok; i++) {
        ok = mprotect(code, PAGE, PROT_READ | PROT_WRITE) == 0;
        if (ok) {
            emit(code, (uint32_t[]){movz_w0(i * 3), RET}, 2);
            ok = mprotect(code, PAGE, PROT_READ | PROT_EXEC) == 0;
        }
        if (ok)
            sum += as_fn(code)(0);
    }
    CHECK(ok);
    CHECK(sum == 3 * 210);
    /* Unmapped and mapped again at the same address: the new code runs. */
    void *again = mmap(code, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(again == code);
    emit(code, (uint32_t[]){movz_w0(77), RET}, 2);
    CHECK(as_fn(code)(0) == 77);
    munmap(code, PAGE);
}

static void alias_views(void)
{
    char path[] = "/tmp/elfuse-jit-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    unlink(path);
    CHECK(ftruncate(fd, PAGE) == 0);
    uint32_t *rw = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    uint32_t *rx = mmap(NULL, PAGE, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
    CHECK(rw != MAP_FAILED && rx != MAP_FAILED);
    if (rw == MAP_FAILED || rx == MAP_FAILED)
        return;
    long sum = 0;
    for (unsigned i = 1; i <= 50; i++) {
        emit(rw, (uint32_t[]){movz_w0(i), RET}, 2);
        __builtin___clear_cache((char *)rx, (char *)(rx + 2));
        sum += as_fn(rx)(0);
    }
    CHECK(sum == 50 * 51 / 2);
    close(fd);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "alias") == 0) {
        alias_views();
    } else {
        rwx_pages();
        wx_mprotect();
    }
    return report();
}
