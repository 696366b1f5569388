//! Guest file kinds: what a description elfuse emulates (a [`Synthetic`] in the fd
//! table) does for each file operation, behind one trait.
//!
//! A host fd carries the kernel's behaviour for everything; an emulated description
//! carries a host fd too (for poll, epoll, fstat, fcntl and close-on-exec, which stay the
//! host's) and overrides only what it emulates: read, write, its /proc/<pid>/fd link,
//! and what a fork child inherits. Adding a kind is one file implementing [`GuestFile`]
//! and one line in `registry::KINDS`: the syscalls (`rw::read`/`write`, `io::pread64`...), the
//! guest /proc and both fork paths (`fork::fds`, `fork::state`) ask here.

use std::any::Any;
use std::sync::{Arc, Weak};

use elfuse_actors::fdtable::Synthetic;

use super::{Ctx, SysResult};
use crate::errno::Errno;
use crate::signal::state::PendingWatcher;

/// What an emulated description does; every method defaults to "as its host fd".
pub trait GuestFile: Synthetic {
    /// read(2) (`at` None) or pread64 (`at` Some) of `len` bytes into guest `va`.
    fn read(&self, _ctx: &mut Ctx, _va: u64, _len: usize, _at: Option<u64>) -> Option<SysResult> {
        None
    }
    /// readv(2) over the guest iovec array at `iov` (`cnt` entries).
    fn readv(&self, _ctx: &mut Ctx, _iov: u64, _cnt: u64) -> Option<SysResult> {
        None
    }
    /// write(2) (`at` None) or pwrite64 (`at` Some) of `len` bytes from guest `va`.
    fn write(&self, _ctx: &mut Ctx, _va: u64, _len: usize, _at: Option<u64>) -> Option<SysResult> {
        None
    }
    /// The /proc/<pid>/fd/N link of it as the guest reads it; None: the host fd's
    /// (`anon_inode:[eventfd]`...).
    fn proc_link(&self, _ctx: &Ctx) -> Option<Vec<u8>> {
        None
    }
    /// The state a fork child rebuilds its own description from ([`Kind::adopt`]);
    /// None: the child does not inherit it (its fd is closed there).
    fn fork_state(&self) -> Option<Vec<u8>> {
        None
    }
}

/// Signal watchers the adopted descriptions of a fork child need registered with its
/// signal state (built after the fd table).
pub type Watchers = Vec<Weak<dyn PendingWatcher>>;

/// Builds a fork child's own description from its kind's fork state.
pub type Adopt = fn(&[u8], &mut Watchers) -> Result<Arc<dyn Synthetic>, Errno>;

/// One registered kind.
pub struct Kind {
    /// Its name on the fork wire.
    pub name: &'static str,
    pub(crate) cast: fn(&dyn Any) -> Option<&dyn GuestFile>,
    /// A fork child's own description from [`GuestFile::fork_state`].
    pub adopt: Adopt,
}

pub(crate) const fn kind<T: GuestFile>(name: &'static str, adopt: Adopt) -> Kind {
    Kind {
        name,
        cast: |a| a.downcast_ref::<T>().map(|t| t as &dyn GuestFile),
        adopt,
    }
}

pub mod registry;
