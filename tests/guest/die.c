/* die MODE: ends by a signal.
 *   segv    write through a NULL pointer        (status 139 seen by a shell)
 *   abort   abort()                             (134)
 *   term    raise(SIGTERM), default action      (143)
 *   usr1    kill(getpid(), SIGUSR1), default    (138)
 *   handled SIGUSR1 and SIGSEGV caught by handlers; exits 0 on success */
#include "check.h"
#include <setjmp.h>
#include <signal.h>
#include <unistd.h>

static volatile sig_atomic_t got_usr1;
static sigjmp_buf env;
/* volatile pointers: the compiler must not see the constant addresses. */
static volatile int *volatile null_ptr = (volatile int *)0;
static volatile int *volatile bad_ptr = (volatile int *)8;

static void on_usr1(int sig)
{
    got_usr1 = sig;
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (sig == SIGSEGV && si->si_addr == (void *)8)
        siglongjmp(env, 1);
    _exit(99);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: die segv|abort|term|usr1|handled\n");
        return 100;
    }
    const char *mode = argv[1];
    printf("dying by %s\n", mode);
    fflush(stdout);
    if (strcmp(mode, "segv") == 0) {
        *null_ptr = 1;
    } else if (strcmp(mode, "abort") == 0) {
        abort();
    } else if (strcmp(mode, "term") == 0) {
        raise(SIGTERM);
    } else if (strcmp(mode, "usr1") == 0) {
        kill(getpid(), SIGUSR1);
    } else if (strcmp(mode, "handled") == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1;
        CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
        CHECK(raise(SIGUSR1) == 0);
        CHECK(got_usr1 == SIGUSR1);
        got_usr1 = 0;
        CHECK(kill(getpid(), SIGUSR1) == 0);
        CHECK(got_usr1 == SIGUSR1);

        /* A blocked signal stays pending until unblocked. */
        sigset_t block, pending;
        sigemptyset(&block);
        sigaddset(&block, SIGUSR1);
        got_usr1 = 0;
        CHECK(sigprocmask(SIG_BLOCK, &block, NULL) == 0);
        CHECK(raise(SIGUSR1) == 0);
        CHECK(got_usr1 == 0);
        CHECK(sigpending(&pending) == 0 && sigismember(&pending, SIGUSR1));
        CHECK(sigprocmask(SIG_UNBLOCK, &block, NULL) == 0);
        CHECK(got_usr1 == SIGUSR1);

        /* A fault is delivered to a SIGSEGV handler with the faulting address. */
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO;
        CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
        if (sigsetjmp(env, 1) == 0) {
            *bad_ptr = 1;
            CHECK(!"the write to address 8 did not fault");
        } else {
            CHECK("SIGSEGV handler ran with si_addr 8");
        }
        /* Ignored signals do nothing. */
        CHECK(signal(SIGTERM, SIG_IGN) != SIG_ERR);
        CHECK(raise(SIGTERM) == 0);
        return report();
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 100;
    }
    printf("still alive after %s\n", mode);
    return 1;
}
