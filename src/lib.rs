//! elfuse: run unmodified Linux AArch64 ELF programs as ordinary host processes.
//!
//! The guest runs at EL0 on a vCPU ([`backend`]); a small EL1 shim (the `elfuse-shim`
//! crate) forwards its syscalls and faults to the host with `HVC`; the host emulates Linux
//! ([`syscall`]) over a guest model ([`guest`]) that no backend detail leaks into.
//! ARCHITECTURE.md has the full picture.

pub mod backend;
pub mod binfmt;
pub mod boot;
pub mod cli;
pub mod cpuid;
pub mod demo;
pub mod errno;
pub mod exec;
pub mod fault;
pub mod fork;
pub mod gdb;
pub mod guest;
pub mod image;
pub mod mapped;
pub mod native_exec;

pub mod process;
pub mod signal;
pub mod slotring;
pub mod startup;
pub mod syscall;
pub mod sysroot;
pub mod thread;
pub mod trace;
pub mod vcpu;
