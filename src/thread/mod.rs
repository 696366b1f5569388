//! Guest threads: one vCPU per guest thread, each created on (and bound to) its own host
//! thread, all over the same guest RAM.
//!
//! The folder, bottom up: `state` (what the syscall layer keeps per thread: `ThreadState`,
//! `Stop`), `shared` (a thread's handle: `ThreadShared`), `directory` (the handles by tid,
//! kept once: the registry writes it, the signal actor reads it), `pause` (stopping the other
//! vCPUs for a fork), `pitable` (PI-futex waiters), `seccomp` (a thread's filters),
//! `registry` (`Threads`: the process's threads, slots, idle vCPUs, how it ends) — all
//! state, below the syscall layer — and `run` (running a guest thread to its end: the vCPU
//! loop, then the exit path), which sits above it.
//!
//! `Threads` (one per process, in `Process::threads`) is the registry: guest tid → the
//! thread's shared handle (kick, killed flag, invalidation mailbox), the vCPU slots (slot
//! N owns EL1 stack N; at most `MAX_VCPUS`), the join handles, and how the process ends.
//!
//! Ending:
//! - `exit` (one thread): the thread's vCPU stops; CLONE_CHILD_CLEARTID and the robust
//!   list are handled (`syscall::futex`); when the last thread goes, the process ends with
//!   the group leader's exit code (Linux reports the leader's code).
//! - `exit_group` or a fatal signal: the first one sets the process status; every other
//!   thread is marked killed and kicked out of guest code. A thread blocked in a host
//!   syscall (read on a pipe, futex wait) is interrupted by a host signal (`WAKE_SIGNAL`,
//!   a no-op handler installed without SA_RESTART, so the syscall fails with EINTR), sent
//!   again every few milliseconds by the waiting main thread until every thread is gone (a
//!   signal landing just before the thread enters the syscall would otherwise be lost).
//!   Each vCPU loop checks its killed flag before it re-enters the guest.
//!
//! Mapping changes (`sync_mappings`): the vCPU whose syscall changed mappings applies the
//! invalidation to itself. A TLB flush for the others is a generation: the changer bumps
//! `tlb_gen` and kicks only the vCPUs marked *active* (in guest code, or about to enter
//! it: `Threads::enter` sets the mark, then compares the generation with the one it last
//! flushed at; `Threads::leave` clears it at every exit). The mark and the generation are
//! a Dekker pair, so a vCPU the changer does not see as active sees the new generation
//! before it enters; a thread blocked in a host syscall costs a shootdown nothing. Code
//! invalidations (rare) are posted to every thread's mailbox and every thread is kicked;
//! every vCPU drains its mailbox before it re-enters the guest. A kick returns once that
//! vCPU is out of guest code, so no vCPU runs guest code with a stale TLB or stale
//! translated code once the syscall returns. Concurrent changers are ordered: a syscall
//! that finds nothing to invalidate waits for shootdowns in flight (another thread may
//! have taken its change).

pub mod directory;
pub mod pause;
pub mod pitable;
pub mod registry;
pub mod run;
pub mod seccomp;
pub mod shared;
pub mod spawn;
pub mod state;

// The state half, re-exported (never `run`: it sits above the syscall layer).
pub use registry::{Gens, IdleVcpu, Paused, VCPU_STACK};
pub use shared::{host_tid, El1Regs, ThreadShared};
pub use state::{Stop, ThreadState};
