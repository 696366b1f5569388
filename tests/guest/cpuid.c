/* EL0 reads of the ID registers (Linux's HWCAP_CPUID emulation), and instructions that
 * must not stop a user program: WFE, WFI, YIELD. */
#include "check.h"
#include <sys/auxv.h>

#ifndef HWCAP_CPUID
#define HWCAP_CPUID (1 << 11)
#endif
#ifndef HWCAP_AES
#define HWCAP_AES (1 << 3)
#endif
#ifndef HWCAP_ATOMICS
#define HWCAP_ATOMICS (1 << 8)
#endif

int main(void)
{
    unsigned long hw = getauxval(AT_HWCAP);
    CHECK(hw & HWCAP_CPUID);
    unsigned long midr, isar0, pfr0;
    __asm__ volatile("mrs %0, midr_el1" : "=r"(midr));
    __asm__ volatile("mrs %0, id_aa64isar0_el1" : "=r"(isar0));
    __asm__ volatile("mrs %0, id_aa64pfr0_el1" : "=r"(pfr0));
    /* The emulated registers agree with AT_HWCAP. */
    CHECK((((isar0 >> 4) & 0xf) >= 1) == ((hw & HWCAP_AES) != 0));
    CHECK((((isar0 >> 20) & 0xf) >= 2) == ((hw & HWCAP_ATOMICS) != 0));
    CHECK(((pfr0 >> 16) & 0xf) != 0xf); /* FP implemented */
    CHECK((pfr0 & 0xf) != 0);           /* EL0 is AArch64 */
    (void)midr;
    __asm__ volatile("yield");
    __asm__ volatile("wfe");
    __asm__ volatile("wfi");
    CHECK("survived yield, wfe and wfi");
    return report();
}
