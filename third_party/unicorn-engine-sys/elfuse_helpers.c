/* elfuse: non-variadic wrappers around uc_ctl() (which is variadic and whose
 * request codes are built by C macros), so Rust can call them directly.
 * Declared on the Rust side in bindings/rust/sys/src/elfuse.rs. See PATCHES. */
#include <unicorn/unicorn.h>

/* Drop every translated block (after host-side or cross-instance code writes). */
UNICORN_EXPORT
uc_err elfuse_uc_flush_tb(uc_engine *uc)
{
    return uc_ctl_flush_tb(uc);
}

/* Flush the whole softmmu TLB (also lets QEMU resize it). */
UNICORN_EXPORT
uc_err elfuse_uc_flush_tlb(uc_engine *uc)
{
    return uc_ctl_flush_tlb(uc);
}

/* Select the CPU model (e.g. UC_CPU_ARM64_MAX). Must be called right after
 * uc_open(), before anything else touches the engine. */
UNICORN_EXPORT
uc_err elfuse_uc_set_cpu_model(uc_engine *uc, int model)
{
    return uc_ctl_set_cpu_model(uc, model);
}

/* Set the engine's target page size. Since PATCHES 24 the AArch64 build's page is a
 * compile-time 4 KiB and only 4096 is accepted (before, a power of two, 1 KiB .. 64 KiB,
 * default 1 KiB). Before anything initialises the engine (right after uc_open and
 * elfuse_uc_set_cpu_model). */
UNICORN_EXPORT
uc_err elfuse_uc_set_page_size(uc_engine *uc, uint32_t size)
{
    /* PATCHES 24: the AArch64 target's page is a compile-time 4 KiB. */
    if (size != 4096) {
        return UC_ERR_ARG;
    }
    return uc_ctl_set_page_size(uc, size);
}

/* Invalidate translated blocks covering guest virtual [begin, end), looked up
 * through the vCPU's current translation regime. */
UNICORN_EXPORT
uc_err elfuse_uc_remove_cache(uc_engine *uc, uint64_t begin, uint64_t end)
{
    return uc_ctl_remove_cache(uc, begin, end);
}
