/* faults MODE: synchronous fault signals and what a handler sees.
 *   basic    SA_SIGINFO fields for kill/tgkill and for faults (SEGV_MAPERR vs
 *            SEGV_ACCERR with si_addr, SIGILL from udf, SIGTRAP from brk), resuming
 *            after a fault by editing
 *            uc_mcontext.pc, no SIGFPE from integer division by zero, SA_RESETHAND,
 *            SA_NODEFER and sa_mask
 *   records  the sigframe's records: fpsimd_context always, esr_context (with the
 *            fault's ESR) only for a fault; udf's si_code ILL_ILLOPC (elfuse only:
 *            qemu-user 7.2 writes no esr_context and says ILL_ILLOPN)
 *   udf      an unhandled udf: killed by SIGILL
 *   pipe     a write to a pipe without readers: EPIPE, with SIGPIPE to the writer
 *            (ignored, then handled: si_code SI_USER from its own pid)
 *   pipe-default  the same with the default action: killed by SIGPIPE */
#include "check.h"
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static volatile siginfo_t last;
static volatile int renest, hits, depth, max_depth, blocked_self, blocked_other;
static volatile uint64_t pc_seen, fault_addr_seen;

static void record(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    sigset_t cur;
    (void)sig;
    memcpy((void *)&last, si, sizeof last);
    hits++;
    pc_seen = uc->uc_mcontext.pc;
    fault_addr_seen = uc->uc_mcontext.fault_address;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    blocked_self = sigismember(&cur, sig);
    blocked_other = sigismember(&cur, SIGUSR2);
}

/* Fault handler: record, then resume after the faulting instruction. */
static void skip(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    record(sig, si, ucv);
    uc->uc_mcontext.pc += 4;
}

static void on(int sig, void (*fn)(int, siginfo_t *, void *), int flags, int mask_sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | flags;
    if (mask_sig)
        sigaddset(&sa.sa_mask, mask_sig);
    if (sigaction(sig, &sa, NULL) != 0)
        CHECK(!"sigaction");
}

static void nest(int sig, siginfo_t *si, void *uc)
{
    depth++;
    if (depth > max_depth)
        max_depth = depth;
    if (depth == 1 && renest) {
        renest = 0;
        raise(sig);
    }
    record(sig, si, uc);
    depth--;
}

static volatile int zero;

static int basic(void)
{
    /* kill: SI_USER with the sender's pid and uid; tgkill: SI_TKILL. */
    on(SIGUSR1, record, 0, 0);
    CHECK(kill(getpid(), SIGUSR1) == 0);
    CHECK(hits == 1 && last.si_signo == SIGUSR1 && last.si_code == SI_USER);
    CHECK(last.si_pid == getpid() && last.si_uid == getuid());
    CHECK(syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), SIGUSR1) == 0);
    CHECK(hits == 2 && last.si_code == SI_TKILL && last.si_pid == getpid());

    /* SEGV_MAPERR: nothing mapped; si_addr is the data address, as is fault_address. */
    on(SIGSEGV, skip, 0, 0);
    volatile int *unmapped = (volatile int *)0x10;
    *unmapped = 1;
    CHECK(hits == 3 && last.si_signo == SIGSEGV && last.si_code == SEGV_MAPERR);
    CHECK(last.si_addr == (void *)0x10 && fault_addr_seen == 0x10);
    /* SEGV_ACCERR: a write to a read-only page. */
    char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(ro != MAP_FAILED);
    *(volatile char *)(ro + 100) = 1;
    CHECK(hits == 4 && last.si_code == SEGV_ACCERR && last.si_addr == ro + 100);
    /* A PROT_NONE page: ACCERR for reads too. */
    CHECK(mprotect(ro, 4096, PROT_NONE) == 0);
    (void)*(volatile char *)(ro + 8);
    CHECK(hits == 5 && last.si_code == SEGV_ACCERR && last.si_addr == ro + 8);
    munmap(ro, 4096);

    /* SIGILL: udf #0, si_addr is the instruction's address. */
    on(SIGILL, skip, 0, 0);
    uint64_t at;
    __asm__ volatile("adr %0, 1f\n1: udf #0" : "=r"(at));
    CHECK(hits == 6 && last.si_signo == SIGILL); /* si_code: see frame_records */
    CHECK(last.si_addr == (void *)at && pc_seen == at);

    /* SIGTRAP: brk, TRAP_BRKPT at the brk. */
    on(SIGTRAP, skip, 0, 0);
    __asm__ volatile("adr %0, 1f\n1: brk #0x7" : "=r"(at));
    CHECK(hits == 7 && last.si_signo == SIGTRAP && last.si_code == TRAP_BRKPT);
    CHECK(last.si_addr == (void *)at);

    /* Integer division by zero does not trap on AArch64: the quotient is 0. */
    on(SIGFPE, record, 0, 0);
    int before = hits;
    volatile int q = 7 / zero;
    volatile long qq = 7L % (long)zero;
    CHECK(q == 0 && qq == 7 && hits == before);

    /* SA_NODEFER: the handler may nest; without it the signal is blocked inside. */
    on(SIGUSR1, nest, SA_NODEFER, 0);
    renest = 1;
    raise(SIGUSR1);
    CHECK(max_depth == 2 && !blocked_self);
    max_depth = 0;
    on(SIGUSR1, nest, 0, SIGUSR2);
    renest = 1;
    raise(SIGUSR1);
    /* The nested raise stayed pending until the first run returned, then ran. */
    CHECK(max_depth == 1 && blocked_self && blocked_other);
    CHECK(hits == before + 4);
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    CHECK(!sigismember(&now, SIGUSR1)); /* the pending nested one ran after return */

    /* SA_RESETHAND: one run, then the default disposition. */
    on(SIGUSR2, record, SA_RESETHAND, 0);
    raise(SIGUSR2);
    struct sigaction old;
    CHECK(sigaction(SIGUSR2, NULL, &old) == 0 && old.sa_handler == SIG_DFL);
    CHECK(hits == before + 5 && last.si_signo == SIGUSR2);
    return report();
}

/* Walks the records after the fpsimd one in __reserved. */
static volatile uint32_t magics[8];
static volatile uint64_t esr_seen;

static void records(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    unsigned char *p = (unsigned char *)uc->uc_mcontext.__reserved;
    int n = 0;
    memset((void *)magics, 0, sizeof magics);
    esr_seen = 0;
    for (;;) {
        uint32_t magic, size;
        memcpy(&magic, p, 4);
        memcpy(&size, p + 4, 4);
        if (magic == 0 || n == 8 || size < 8)
            break;
        magics[n++] = magic;
        if (magic == 0x45535201)
            memcpy((void *)&esr_seen, p + 8, 8);
        p += size;
    }
    memcpy((void *)&last, si, sizeof last);
    fault_addr_seen = uc->uc_mcontext.fault_address;
    if (sig != SIGUSR1)
        uc->uc_mcontext.pc += 4;
}

static int has(uint32_t magic)
{
    for (int i = 0; i < 8; i++)
        if (magics[i] == magic)
            return 1;
    return 0;
}

static int frame_records(void)
{
    on(SIGUSR1, records, 0, 0);
    raise(SIGUSR1);
    CHECK(magics[0] == 0x46508001);
    CHECK(!has(0x45535201));
    on(SIGSEGV, records, 0, 0);
    *(volatile int *)0x20 = 1;
    CHECK(magics[0] == 0x46508001 && has(0x45535201));
    CHECK((esr_seen >> 26) == 0x24); /* data abort from EL0 */
    CHECK(esr_seen & (1u << 6));     /* WnR: a write */
    CHECK(fault_addr_seen == 0x20);
    /* Linux's udf is ILL_ILLOPC (qemu-user 7.2 says ILL_ILLOPN), with no esr_context
     * and fault_address 0 (arm64_notify_die); brk records its ESR (EC 0x3c). */
    on(SIGILL, records, 0, 0);
    __asm__ volatile("udf #2");
    CHECK(last.si_signo == SIGILL && last.si_code == ILL_ILLOPC);
    CHECK(magics[0] == 0x46508001 && !has(0x45535201) && fault_addr_seen == 0);
    on(SIGTRAP, records, 0, 0);
    __asm__ volatile("brk #3");
    CHECK(has(0x45535201) && (esr_seen >> 26) == 0x3c && (esr_seen & 0xffff) == 3);
    CHECK(fault_addr_seen == 0);
    return report();
}

static int broken_pipe(int handled)
{
    int p[2];
    CHECK(pipe(p) == 0);
    close(p[0]);
    if (handled == 0) {
        printf("writing\n");
        fflush(stdout);
        write(p[1], "x", 1);
        printf("still alive\n");
        return 1;
    }
    CHECK(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
    CHECK_ERR(write(p[1], "x", 1), EPIPE);
    on(SIGPIPE, record, 0, 0);
    CHECK_ERR(write(p[1], "x", 1), EPIPE);
    CHECK(hits == 1 && last.si_signo == SIGPIPE && last.si_code == SI_USER);
    CHECK(last.si_pid == getpid());
    return report();
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "basic";
    if (strcmp(mode, "basic") == 0)
        return basic();
    if (strcmp(mode, "records") == 0)
        return frame_records();
    if (strcmp(mode, "pipe") == 0)
        return broken_pipe(1);
    if (strcmp(mode, "pipe-default") == 0)
        return broken_pipe(0);
    if (strcmp(mode, "udf") == 0) {
        printf("udf\n");
        fflush(stdout);
        __asm__ volatile("udf #1");
        return 1;
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 100;
}
