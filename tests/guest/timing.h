/* Helpers shared by the timer guests (itimer.c, ptimer.c): a SA_SIGINFO handler with
 * SA_RESTART, the monotonic clock in seconds, and a spin that makes no syscalls (only
 * the vDSO clock) until a handler has counted enough signals. */
#ifndef ELFUSE_GUEST_TIMING_H
#define ELFUSE_GUEST_TIMING_H

#include <signal.h>
#include <time.h>

__attribute__((unused)) static void handle_siginfo(int sig,
                                                   void (*fn)(int, siginfo_t *, void *))
{
    struct sigaction sa = {0};
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(sig, &sa, NULL);
}

__attribute__((unused)) static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* Spins until `*count` reaches `n` or `secs` passed; true if it did. */
__attribute__((unused)) static int spin_for(volatile sig_atomic_t *count, int n, double secs)
{
    double end = now() + secs;
    while (*count < n && now() < end) {
        for (volatile int i = 0; i < 1000; i++) {
        }
    }
    return *count >= n;
}

#endif
