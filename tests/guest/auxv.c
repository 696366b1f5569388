/* The auxiliary vector (getauxval). Only prints facts that are the same on
 * every correct AArch64 Linux: no addresses, no random bytes. */
#include "check.h"
#include <stdint.h>
#include <sys/auxv.h>
#include <unistd.h>

#ifndef AT_EXECFN
#define AT_EXECFN 31
#endif
#ifndef AT_RANDOM
#define AT_RANDOM 25
#endif
#define HWCAP_FP_BIT (1UL << 0)
#define HWCAP_ASIMD_BIT (1UL << 1)

int main(int argc, char **argv)
{
    (void)argc;
    unsigned long pagesz = getauxval(AT_PAGESZ);
    CHECK(pagesz == 4096 || pagesz == 16384 || pagesz == 65536);
    CHECK(pagesz == (unsigned long)sysconf(_SC_PAGESIZE));
    CHECK(getauxval(AT_PHDR) != 0);
    CHECK(getauxval(AT_PHENT) == 56);
    CHECK(getauxval(AT_PHNUM) > 0);
    CHECK(getauxval(AT_ENTRY) != 0);
    CHECK(getauxval(AT_CLKTCK) == 100);
    CHECK(getauxval(AT_UID) == getuid());
    CHECK(getauxval(AT_EUID) == geteuid());
    CHECK(getauxval(AT_GID) == getgid());
    CHECK(getauxval(AT_EGID) == getegid());
    CHECK(getauxval(AT_SECURE) == 0);

    unsigned long hwcap = getauxval(AT_HWCAP);
    CHECK((hwcap & HWCAP_FP_BIT) != 0);
    CHECK((hwcap & HWCAP_ASIMD_BIT) != 0);

    const char *platform = (const char *)getauxval(AT_PLATFORM);
    CHECK(platform != NULL);
    printf("AT_PLATFORM=%s\n", platform ? platform : "(null)");

    const unsigned char *rnd = (const unsigned char *)getauxval(AT_RANDOM);
    CHECK(rnd != NULL);
    if (rnd) {
        int nonzero = 0;
        for (int i = 0; i < 16; i++)
            nonzero |= rnd[i];
        CHECK(nonzero != 0);
    }

    const char *execfn = (const char *)getauxval(AT_EXECFN);
    CHECK(execfn != NULL);
    if (execfn) {
        const char *base = strrchr(execfn, '/');
        printf("AT_EXECFN basename=%s\n", base ? base + 1 : execfn);
        CHECK(strcmp(execfn, argv[0]) == 0);
    }

    /* The ELF header the kernel mapped: AT_PHDR points into the image. */
    const unsigned char *phdr = (const unsigned char *)getauxval(AT_PHDR);
    CHECK(phdr != NULL && ((uintptr_t)phdr & 7) == 0);
    return report();
}
