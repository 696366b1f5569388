//! A filesystem context: where guest paths resolve (the process's, or a thread's own:
//! `syscall::clone_own`). A leaf module.

use std::path::PathBuf;

/// Filesystem context: where guest paths resolve.
#[derive(Clone, Debug)]
pub struct FsContext {
    /// `--sysroot`: absolute guest paths resolve inside it first.
    pub sysroot: Option<PathBuf>,
    pub umask: u32,
    /// chroot(2) made `sysroot` the guest's `/`: lookups that miss in it fail there (no
    /// fallback to the host's files, which `--sysroot` has).
    pub chroot: bool,
}
