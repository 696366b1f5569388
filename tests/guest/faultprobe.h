/* Catching a fault and carrying on: install on_fault (SA_SIGINFO) for the signals a test
 * provokes; touch() reads or writes one byte and returns the signal it raised (0 if
 * none), with its si_code and si_addr left in got_code and got_addr. */
#ifndef FAULTPROBE_H
#define FAULTPROBE_H
#include <setjmp.h>
#include <signal.h>

static sigjmp_buf jb;
static volatile int got_sig, got_code;
static void *volatile got_addr;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    got_sig = sig;
    got_code = si->si_code;
    got_addr = si->si_addr;
    siglongjmp(jb, 1);
}

/* The signal a read (write = 0) or write of *p raises, 0 if none. */
static inline int touch(volatile char *p, int write)
{
    got_sig = 0;
    if (!sigsetjmp(jb, 1)) {
        if (write)
            *p = 1;
        else
            (void)*p;
    }
    return got_sig;
}
#endif
