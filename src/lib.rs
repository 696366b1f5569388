//! elfuse: run unmodified Linux AArch64 ELF programs as ordinary host processes.
//!
//! The guest runs at EL0 on a vCPU ([`backend`]); a small EL1 shim (the `elfuse-shim`
//! crate) forwards its syscalls and faults to the host with `HVC`; the host emulates Linux
//! (`syscall`) over a guest model (`guest`) that no backend detail leaks into.
//! ARCHITECTURE.md has the full picture.
//!
//! Public: the backend seam (`backend`: the traits and their implementations) and what
//! the `elfuse` binary drives (start-up, the command line, the program image, tracing,
//! sysroots, binfmt_misc, the demo), plus the few re-exports at the end. Everything else
//! is the crate's own, so the compiler reports what nothing uses.

pub mod backend;
pub mod binfmt;
pub mod boot;
pub mod cli;
pub(crate) mod cpuid;
pub mod demo;
pub(crate) mod errno;
pub(crate) mod exec;
pub(crate) mod fault;
pub(crate) mod fork;
pub(crate) mod gdb;
pub(crate) mod guest;
pub(crate) mod image;
pub mod mapped;
pub(crate) mod native_exec;
pub(crate) mod process;
pub(crate) mod signal;
pub(crate) mod slotring;
pub mod startup;
pub(crate) mod syscall;
pub mod sysroot;
pub(crate) mod thread;
pub mod trace;
pub(crate) mod vcpu;

// What the elfuse binary and the tests use of the crate's own modules.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub use backend::emu::init_process;
pub use fork::child::child_main as fork_child_main;
pub use gdb::{listen as gdb_listen, process_ended as gdb_process_ended};
pub use guest::layout;
pub use guest::loader::LoadError;
pub use signal::hostsig::block_in_this_thread;
pub use syscall::resolve::host_path;
pub use syscall::table::render_markdown as syscall_table_markdown;
pub use thread::state::Stop;
