//! The synthetic vDSO (linux-vdso.so.1) that elfuse maps into every guest.
//!
//! Not built yet: until it is, the loader passes no `AT_SYSINFO_EHDR`, so libcs fall back
//! to real `SVC` calls for clock_gettime and friends (which the host answers). The image
//! builder, the CNTVCT fast path and the vvar page land here (see ARCHITECTURE.md).

/// The symbol version every vDSO entry point carries on AArch64 Linux.
pub const VDSO_VERSION: &str = "LINUX_2.6.39";
