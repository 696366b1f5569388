/* The vDSO: found through AT_SYSINFO_EHDR, parsed the way a dynamic linker does (PT_LOAD,
 * PT_DYNAMIC, DT_HASH, versions), each export printed with its version; its clock entry
 * points agree with the syscalls; and only the vDSO's own fallback syscall anchors the
 * [vvar] page (a raw clock_gettime syscall does not).
 * elfuse-only: qemu-aarch64 7.2 gives guests no vDSO. */
#include "check.h"
#include <elf.h>
#include <stdint.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* elfuse_vdso::vvar: SEEDED is the u32 at offset 4 of the page before the image. */
#define VVAR_SEEDED 4

typedef int (*cgt_fn)(clockid_t, struct timespec *);
typedef int (*gtod_fn)(struct timeval *, void *);

static const Elf64_Ehdr *eh;
static uintptr_t base; /* load bias */
static const Elf64_Sym *syms;
static const char *strs;
static const uint32_t *hash;
static const uint16_t *versym;
static const Elf64_Verdef *verdef;

static const char *version_name(uint16_t ndx)
{
    for (const Elf64_Verdef *d = verdef;; d = (const void *)((const char *)d + d->vd_next)) {
        if (!(d->vd_flags & VER_FLG_BASE) && d->vd_ndx == (ndx & 0x7fff))
            return strs + ((const Elf64_Verdaux *)((const char *)d + d->vd_aux))->vda_name;
        if (!d->vd_next)
            return "?";
    }
}

static void *lookup(const char *name, const char *ver)
{
    for (uint32_t i = 1; i < hash[1]; i++)
        if (!strcmp(strs + syms[i].st_name, name) && !strcmp(version_name(versym[i]), ver))
            return (void *)(base + syms[i].st_value);
    return NULL;
}

static volatile uintptr_t handler_ret;
static volatile int handled;

static void on_usr1(int sig)
{
    handled = sig;
    handler_ret = (uintptr_t)__builtin_return_address(0);
}

/* The kernel's struct sigaction on AArch64. */
struct ksigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};

static long ts_ns(struct timespec t) { return t.tv_sec * 1000000000L + t.tv_nsec; }

int main(void)
{
    eh = (const void *)getauxval(AT_SYSINFO_EHDR);
    if (!eh) {
        printf("no vDSO\n");
        return 1;
    }
    volatile const uint32_t *seeded = (const void *)((const char *)eh - 4096 + VVAR_SEEDED);

    /* A raw syscall, even many, never anchors the vvar clocks. */
    struct timespec a, b;
    for (int i = 0; i < 100; i++)
        syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &a);
    printf("seeded after raw syscalls: %u\n", *seeded);

    const Elf64_Phdr *ph = (const void *)((const char *)eh + eh->e_phoff);
    const Elf64_Dyn *dyn = NULL;
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD)
            base = (uintptr_t)eh + ph[i].p_offset - ph[i].p_vaddr;
        if (ph[i].p_type == PT_DYNAMIC)
            dyn = (const void *)((const char *)eh + ph[i].p_offset);
    }
    const char *soname = NULL;
    size_t soname_off = 0;
    for (; dyn && dyn->d_tag != DT_NULL; dyn++) {
        void *p = (void *)(base + dyn->d_un.d_ptr);
        switch (dyn->d_tag) {
        case DT_STRTAB: strs = p; break;
        case DT_SYMTAB: syms = p; break;
        case DT_HASH: hash = p; break;
        case DT_VERSYM: versym = p; break;
        case DT_VERDEF: verdef = p; break;
        case DT_SONAME: soname_off = dyn->d_un.d_val; break;
        }
    }
    if (!strs || !syms || !hash || !versym || !verdef) {
        printf("incomplete dynamic section\n");
        return 1;
    }
    soname = strs + soname_off;
    printf("soname %s\n", soname);
    for (uint32_t i = 1; i < hash[1]; i++)
        printf("%s@%s\n", strs + syms[i].st_name, version_name(versym[i]));

    cgt_fn cgt = lookup("__kernel_clock_gettime", "LINUX_2.6.39");
    gtod_fn gtod = lookup("__kernel_gettimeofday", "LINUX_2.6.39");
    cgt_fn getres = lookup("__kernel_clock_getres", "LINUX_2.6.39");
    CHECK(cgt && gtod && getres);
    CHECK(lookup("__kernel_clock_gettime", "LINUX_2.6") == NULL);

    /* The libc's clock_gettime goes through the vDSO: its first call falls back to the
     * host from the vDSO's own SVC, which anchors; later calls are served. */
    CHECK(clock_gettime(CLOCK_MONOTONIC, &a) == 0);
    printf("seeded after libc clock_gettime: %u\n", *seeded);
    const clockid_t ids[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_MONOTONIC_RAW,
                             CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE, CLOCK_PROCESS_CPUTIME_ID};
    int close_enough = 1;
    for (unsigned i = 0; i < sizeof ids / sizeof *ids; i++) {
        struct timespec v, s;
        int r = cgt(ids[i], &v);
        syscall(SYS_clock_gettime, ids[i], &s);
        long d = ts_ns(s) - ts_ns(v);
        /* The vDSO value comes first: it may trail the syscall, never lead it (beyond the
         * coarse clocks' tick, which the host serves itself); 250 ms allows for preemption. */
        if (r != 0 || d < -1000 || d > 250000000) {
            printf("clock %d: r=%d vdso-syscall delta %ld ns\n", (int)ids[i], r, d);
            close_enough = 0;
        }
    }
    CHECK(close_enough);
    CHECK(cgt(12345, &a) == -EINVAL);

    /* After 100 ms the anchor is stale (2^22 ticks is 67 ms at 62.5 MHz): the call falls
     * back, the host re-anchors, and the clock has moved on by the time slept. */
    struct timespec m0, m1, hundred_ms = {0, 100 * 1000 * 1000};
    CHECK(cgt(CLOCK_MONOTONIC, &m0) == 0);
    nanosleep(&hundred_ms, NULL);
    CHECK(cgt(CLOCK_MONOTONIC, &m1) == 0);
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &b);
    CHECK(ts_ns(m1) - ts_ns(m0) >= 100000000 && ts_ns(b) >= ts_ns(m1));
    CHECK(ts_ns(b) - ts_ns(m1) < 250000000);

    struct timeval tv;
    struct { int a, b; } tz = {7, 7};
    CHECK(gtod(&tv, &tz) == 0 && tz.a == 0 && tz.b == 0);
    syscall(SYS_clock_gettime, CLOCK_REALTIME, &b);
    CHECK(tv.tv_usec >= 0 && tv.tv_usec < 1000000);
    CHECK(b.tv_sec * 1000000L + b.tv_nsec / 1000 - (tv.tv_sec * 1000000L + tv.tv_usec) >= -1);
    CHECK(b.tv_sec - tv.tv_sec <= 1);
    CHECK(gtod(NULL, NULL) == 0);

    struct timespec r1, r2;
    CHECK(getres(CLOCK_MONOTONIC, &r1) == 0 && syscall(SYS_clock_getres, CLOCK_MONOTONIC, &r2) == 0);
    CHECK(r1.tv_sec == r2.tv_sec && r1.tv_nsec == r2.tv_nsec);
    CHECK(getres(CLOCK_MONOTONIC_COARSE, &r1) == 0 &&
          syscall(SYS_clock_getres, CLOCK_MONOTONIC_COARSE, &r2) == 0);
    CHECK(r1.tv_sec == r2.tv_sec && r1.tv_nsec == r2.tv_nsec);
    CHECK(getres(CLOCK_THREAD_CPUTIME_ID, &r1) == 0);
    CHECK(getres(CLOCK_MONOTONIC, NULL) == 0);
    CHECK(getres(-1, &r1) == -EINVAL);

    /* A handler installed without SA_RESTORER returns through __kernel_rt_sigreturn. */
    struct ksigaction ksa = {on_usr1, 0, NULL, 0};
    CHECK(syscall(SYS_rt_sigaction, SIGUSR1, &ksa, NULL, 8) == 0);
    CHECK(kill(getpid(), SIGUSR1) == 0);
    CHECK(handled == SIGUSR1);
    CHECK(handler_ret == (uintptr_t)lookup("__kernel_rt_sigreturn", "LINUX_2.6.39"));
    return report();
}
