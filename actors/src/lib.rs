//! State owners of elfuse, as actors.
//!
//! - [`runtime`]: actors own their state; typed messages, one-shot replies, a `seq` per
//!   message (the serialisation order), a `tracing` span and an optional trace record
//!   per message; flat combining when uncontended.
//! - [`fdtable`]: the guest fd table as a plain state machine (the fd actor's state);
//!   [`openfile`]: the open file descriptions it maps fds to.
//! - [`fdactor`]: the fd-table actor; [`view`]: the read view it publishes.
//! - [`urandom`]: the urandom-refill actor and the /dev/urandom per-description cache.
//! - [`trace`]: message records and the sink interface.

pub mod fdactor;
pub mod fdtable;
pub mod openfile;
pub mod runtime;
pub mod trace;
pub mod urandom;
pub mod view;
