//! elfuse additions (hand-written; see PATCHES): non-variadic wrappers around `uc_ctl`
//! implemented in `elfuse_helpers.c`. `uc_arm64_native_exceptions` itself is in the
//! generated bindings.

use crate::{uc_engine, uc_error};

unsafe extern "C" {
    /// `uc_ctl_flush_tb(uc)`: drop every translated block.
    pub fn elfuse_uc_flush_tb(uc: *mut uc_engine) -> uc_error;
    /// `uc_ctl_flush_tlb(uc)`: flush the whole softmmu TLB.
    pub fn elfuse_uc_flush_tlb(uc: *mut uc_engine) -> uc_error;
    /// `uc_ctl_set_cpu_model(uc, model)`, e.g. `Arm64CpuModel::MAX as i32`.
    /// Call right after `uc_open`, before any other use of the engine.
    pub fn elfuse_uc_set_cpu_model(uc: *mut uc_engine, model: i32) -> uc_error;
    /// `uc_ctl_remove_cache(uc, begin, end)`: invalidate translated blocks for guest VA `[begin, end)`.
    pub fn elfuse_uc_remove_cache(uc: *mut uc_engine, begin: u64, end: u64) -> uc_error;
}
