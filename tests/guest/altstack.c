/* altstack MODE: sigaltstack and SA_ONSTACK (qemu-aarch64 7.2 has no MINSIGSTKSZ check
 * and no SS_AUTODISARM, so `basic` runs under elfuse only).
 *   basic     errors, query, a handler on the alternate stack (uc_stack, SS_ONSTACK,
 *             EPERM while on it), a handler without SA_ONSTACK, SS_AUTODISARM,
 *             a new thread starts without one, a fork child keeps it
 *   overflow  infinite recursion: the SIGSEGV handler runs on the alternate stack and
 *             siglongjmps out
 *   exec      execve clears the alternate stack (elfuse-only: qemu cannot exec AArch64)
 *   after-exec  (run by exec) */
#include "check.h"
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif
#define ALT_SIZE (64 * 1024)
static char *alt;
static volatile int on_alt, hflags, eperm, uc_ok, depth_seen, try_change = 1;
static sigjmp_buf env;

static int in_alt(const void *p)
{
    return (const char *)p >= alt && (const char *)p < alt + ALT_SIZE;
}

static void on_usr1(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    int local;
    stack_t cur, other = {.ss_sp = alt, .ss_size = ALT_SIZE};
    (void)sig;
    (void)si;
    on_alt = in_alt(&local);
    sigaltstack(NULL, &cur);
    hflags = cur.ss_flags;
    errno = 0;
    eperm = try_change && sigaltstack(&other, NULL) == -1 && errno == EPERM;
    uc_ok = uc->uc_stack.ss_sp == alt && uc->uc_stack.ss_size == ALT_SIZE;
    depth_seen = uc->uc_stack.ss_flags;
}

static void install(int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO | flags;
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
}

static void *thread_main(void *arg)
{
    stack_t cur;
    (void)arg;
    CHECK(sigaltstack(NULL, &cur) == 0 && cur.ss_flags == SS_DISABLE && cur.ss_size == 0);
    return NULL;
}

static int basic(void)
{
    stack_t ss, old;
    CHECK(sigaltstack(NULL, &old) == 0);
    CHECK(old.ss_flags == SS_DISABLE && old.ss_sp == NULL && old.ss_size == 0);
    alt = malloc(ALT_SIZE);
    ss.ss_sp = alt;
    ss.ss_flags = 0;
    ss.ss_size = 4096;
    CHECK_ERR(sigaltstack(&ss, NULL), ENOMEM);
    ss.ss_size = ALT_SIZE;
    ss.ss_flags = 7;
    CHECK_ERR(sigaltstack(&ss, NULL), EINVAL);
    CHECK_ERR(syscall(SYS_sigaltstack, (stack_t *)8, NULL), EFAULT); /* musl reads it first */
    ss.ss_flags = 0;
    CHECK(sigaltstack(&ss, &old) == 0 && old.ss_flags == SS_DISABLE);
    CHECK(sigaltstack(NULL, &old) == 0);
    CHECK(old.ss_sp == alt && old.ss_size == ALT_SIZE && old.ss_flags == 0);

    install(SA_ONSTACK);
    raise(SIGUSR1);
    CHECK(on_alt);
    CHECK(hflags == SS_ONSTACK);
    CHECK(eperm);
    CHECK(uc_ok && depth_seen == 0);

    install(0);
    raise(SIGUSR1);
    CHECK(!on_alt);
    CHECK(hflags == 0);
    CHECK(!eperm);

    /* SS_AUTODISARM: disarmed while the handler runs, re-armed by sigreturn (which
     * restores uc_stack; the handler must not install another stack meanwhile). */
    try_change = 0;
    ss.ss_flags = SS_AUTODISARM;
    CHECK(sigaltstack(&ss, NULL) == 0);
    install(SA_ONSTACK);
    raise(SIGUSR1);
    CHECK(on_alt);
    CHECK(hflags == SS_DISABLE);
    CHECK(uc_ok && depth_seen == SS_AUTODISARM);
    CHECK(sigaltstack(NULL, &old) == 0 && old.ss_flags == SS_AUTODISARM && old.ss_sp == alt);
    ss.ss_flags = 0;
    CHECK(sigaltstack(&ss, NULL) == 0);

    pthread_t t;
    CHECK(pthread_create(&t, NULL, thread_main, NULL) == 0);
    pthread_join(t, NULL);

    pid_t pid = fork();
    if (pid == 0) {
        stack_t c;
        int ok = sigaltstack(NULL, &c) == 0 && c.ss_sp == alt && c.ss_size == ALT_SIZE &&
                 c.ss_flags == 0;
        on_alt = 0;
        raise(SIGUSR1);
        _exit(ok && on_alt ? 0 : 1);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    ss.ss_flags = SS_DISABLE;
    CHECK(sigaltstack(&ss, NULL) == 0);
    CHECK(sigaltstack(NULL, &old) == 0 && old.ss_flags == SS_DISABLE && old.ss_size == 0);
    on_alt = 1;
    raise(SIGUSR1);
    CHECK(!on_alt);
    return report();
}

static volatile int segv_on_alt, segv_signo;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    int local;
    (void)uc;
    segv_signo = sig == SIGSEGV && si->si_signo == SIGSEGV;
    segv_on_alt = in_alt(&local);
    siglongjmp(env, 1);
}

static volatile uint64_t sink;

__attribute__((noinline)) static uint64_t recurse(uint64_t n)
{
    volatile char pad[1024];
    pad[0] = (char)n;
    sink += pad[0];
    return recurse(n + 1) + pad[0];
}

static int overflow(void)
{
    stack_t ss = {.ss_size = ALT_SIZE};
    alt = malloc(ALT_SIZE);
    ss.ss_sp = alt;
    CHECK(sigaltstack(&ss, NULL) == 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
    if (sigsetjmp(env, 1) == 0) {
        sink = recurse(0);
        CHECK(!"the recursion returned");
    }
    CHECK(segv_signo);
    CHECK(segv_on_alt);
    /* The mask was restored by siglongjmp: a second overflow is caught too. */
    segv_on_alt = 0;
    if (sigsetjmp(env, 1) == 0)
        sink = recurse(0);
    CHECK(segv_on_alt);
    return report();
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "basic";
    if (strcmp(mode, "basic") == 0)
        return basic();
    if (strcmp(mode, "overflow") == 0)
        return overflow();
    if (strcmp(mode, "exec") == 0) {
        stack_t ss = {.ss_sp = malloc(ALT_SIZE), .ss_size = ALT_SIZE};
        CHECK(sigaltstack(&ss, NULL) == 0);
        char self[4096] = {0};
        readlink("/proc/self/exe", self, sizeof self - 1);
        char *args[] = {self, "after-exec", NULL};
        execv(self, args);
        CHECK(!"execv failed");
        return report();
    }
    if (strcmp(mode, "after-exec") == 0) {
        stack_t old;
        CHECK(sigaltstack(NULL, &old) == 0 && old.ss_flags == SS_DISABLE && old.ss_size == 0);
        return report();
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 100;
}
