//! State owners of elfuse.
//!
//! Today this crate holds the guest fd table as a plain state machine ([`fdtable`]); the
//! syscall layer serialises access to it. The actor runtime (mailboxes, message tracing)
//! wraps exactly this state so that the fd-table actor is the only thing that mutates it.

pub mod fdtable;
