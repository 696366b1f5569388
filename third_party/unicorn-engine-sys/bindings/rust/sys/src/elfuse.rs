//! elfuse additions (hand-written; see PATCHES): non-variadic wrappers around `uc_ctl`
//! implemented in `elfuse_helpers.c`, and the AArch64 fast paths of
//! `qemu/target/arm/unicorn_aarch64.c` (PATCHES 10, 13). `uc_arm64_native_exceptions` itself is
//! in the generated bindings.

use crate::{uc_engine, uc_error};

unsafe extern "C" {
    /// `uc_ctl_flush_tb(uc)`: drop every translated block.
    pub fn elfuse_uc_flush_tb(uc: *mut uc_engine) -> uc_error;
    /// `uc_ctl_flush_tlb(uc)`: flush the whole softmmu TLB.
    pub fn elfuse_uc_flush_tlb(uc: *mut uc_engine) -> uc_error;
    /// `uc_ctl_set_cpu_model(uc, model)`, e.g. `Arm64CpuModel::MAX as i32`.
    /// Call right after `uc_open`, before any other use of the engine.
    pub fn elfuse_uc_set_cpu_model(uc: *mut uc_engine, model: i32) -> uc_error;
    /// `uc_ctl_set_page_size(uc, size)`: the softmmu's page size; only 4096 since PATCHES 24.
    /// Call before anything initialises the engine (after `elfuse_uc_set_cpu_model`).
    pub fn elfuse_uc_set_page_size(uc: *mut uc_engine, size: u32) -> uc_error;
    /// `uc_ctl_remove_cache(uc, begin, end)`: invalidate translated blocks for guest VA `[begin, end)`.
    pub fn elfuse_uc_remove_cache(uc: *mut uc_engine, begin: u64, end: u64) -> uc_error;
    /// `&env->xregs[0]` (X0..X30, then SP): stable for the engine's life; use only while
    /// the vCPU is stopped (outside `uc_emu_start` or inside a hook). NULL before the
    /// engine is initialised (by any map or register call).
    pub fn elfuse_uc_arm64_xregs(uc: *mut uc_engine) -> *mut u64;
    /// The syndrome of the exception being handed to `UC_HOOK_INTR` (HVC: imm16 in 15:0).
    pub fn elfuse_uc_arm64_syndrome(uc: *mut uc_engine) -> u32;
    /// Clears ID_AA64PFR0_EL1.SVE: no SVE bookkeeping on exception entry and return.
    pub fn elfuse_uc_arm64_hide_sve(uc: *mut uc_engine) -> uc_error;
    /// Calls `cb(opaque, pc, flags)` for every block the engine translates and caches
    /// from now on (`None`: stop). PATCHES 13.
    pub fn elfuse_uc_on_translate(
        uc: *mut uc_engine,
        cb: Option<unsafe extern "C" fn(opaque: *mut core::ffi::c_void, pc: u64, flags: u32)>,
        opaque: *mut core::ffi::c_void,
    );
    /// Translates the EL0 block at `pc` with TB flags `flags` (as reported to
    /// [`elfuse_uc_on_translate`]) without running it. 1 translated, 0 already cached,
    /// -1 refused (flags not the current EL0 ones, code buffer nearly full), -2 not
    /// executable at EL0. Call from a hook or outside `uc_emu_start`. PATCHES 13.
    pub fn elfuse_uc_arm64_pretranslate(uc: *mut uc_engine, pc: u64, flags: u32) -> i32;
    /// From a host SIGBUS handler, on the thread running `uc`: the guest access that
    /// faulted on host memory (guest address `va`) becomes the guest's data abort; does
    /// not return then (longjmp to the CPU loop). -1: not a guest access it can place
    /// (nothing changed). PATCHES 26.
    pub fn elfuse_uc_arm64_host_fault(
        uc: *mut uc_engine,
        va: u64,
        host_pc: usize,
        host_sp: usize,
        is_write: i32,
    ) -> i32;
}
