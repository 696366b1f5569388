//! The guest model: memory layout, RAM, page tables, mappings, the ELF loader and the
//! initial stack. Nothing here depends on a backend.

pub mod hwcap;
pub mod layout;
pub mod loader;
pub mod mm;
pub mod mmlock;
pub mod pagetable;
pub mod ram;
pub mod shimdata;
pub mod slice;
pub mod stack;
pub mod vvar;
