//! The syscall layer: emulates Linux (AArch64, asm-generic numbering) for the guest.
//!
//! `table` is the single source of truth (number, name, handler, status, argument kinds);
//! docs/syscalls.md is generated from it. Handlers live by family: `fs` (files and
//! directories), `io` (fd table, read/write, pipes, ioctl), `mem` (mmap family, brk),
//! `proc` (exit, limits, uname, signals-as-recorded), `cred` (credentials), `sched`
//! (scheduling and process queries), `xattr`, `files` (memfd, splice family, the newer
//! file calls), `time`, `sfd` (eventfd, timerfd, epoll, inotify, pidfd, signalfd).

pub mod abi;
pub mod aio;
pub mod at;
pub mod bpf;
pub mod clone;
pub mod clone_own;
pub mod clone_proc;
pub mod clone_state;
pub mod cred;
pub mod ctx;
pub mod dispatch;
pub mod execve;
pub mod facts;
pub mod files;
pub mod fs;
pub mod fsctx;
pub mod futex;
pub mod futex2;
pub mod futex_pi;
pub mod handles;
pub mod hostdir;
pub mod io;
pub mod iov;
pub mod ipc;
pub mod killgrp;
pub mod kinds;
pub mod mem;
pub mod net;
pub mod numa;
pub mod openat2;
pub mod prctl;
pub mod proc;
pub mod procdir;
pub mod procfs;
pub mod procgen;
pub mod proclink;
pub mod procnode;
pub mod procpeer;
pub mod procremote;
pub mod procserve;
pub mod procsmaps;
pub mod procvm;
pub mod resolve;
mod resolve_fast;
pub mod rw;
pub mod sched;
pub mod seccomp;
pub mod sfd;
pub mod signal;
pub mod sigpipe;
pub mod sigremote;
pub mod sigstack;
pub mod stat;
pub mod sysadm;
pub mod table;
pub mod time;
pub mod timer;
mod tracefmt;
pub mod tty;
pub mod wait;
pub mod xattr;

// The context every handler takes, re-exported (the `ctx` leaf only: nothing here
// imports a handler, so the handlers' `super::Ctx` makes no circle).
pub use ctx::{fd_err, host_ret, Ctx, Pod, Stop, SysResult, ThreadState, PATH_MAX};
