/* Tiny check helpers shared by the guest programs in this folder.
 *
 * Every check prints one line: "ok   <what>" or "FAIL <what> (...)".  Lines
 * never contain pointers, pids, times or other values that may legitimately
 * differ between two correct AArch64 Linux implementations, so the complete
 * stdout of a run can be compared byte for byte with qemu-aarch64's.
 * report() prints a summary and returns the exit status (0 = all passed). */
#ifndef ELFUSE_GUEST_CHECK_H
#define ELFUSE_GUEST_CHECK_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_checks, g_failed;

__attribute__((unused)) static void check_(int ok, const char *what, int line)
{
    int e = errno;
    g_checks++;
    if (ok) {
        printf("ok   %s\n", what);
    } else {
        g_failed++;
        printf("FAIL %s (line %d, errno %d: %s)\n", what, line, e, strerror(e));
    }
    fflush(stdout);
    errno = e;
}

/* CHECK(cond): cond is evaluated once; errno at the time of failure is shown. */
#define CHECK(cond) check_((cond) != 0, #cond, __LINE__)
/* CHECK_ERR(expr, E): expr must fail with -1 and errno E. */
#define CHECK_ERR(expr, E) \
    do { errno = 0; long r_ = (long)(expr); \
         check_(r_ == -1 && errno == (E), #expr " fails with " #E, __LINE__); } while (0)

__attribute__((unused)) static int report(void)
{
    if (g_failed)
        printf("FAILED %d of %d checks\n", g_failed, g_checks);
    else
        printf("PASS %d checks\n", g_checks);
    fflush(stdout);
    return g_failed ? 1 : 0;
}

#endif
