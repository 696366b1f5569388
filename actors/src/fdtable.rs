//! The guest fd table: guest fd number → open file description.
//!
//! Guest fds are virtual. An open file description ([`OpenFile`]) is shared by every dup
//! alias through an `Arc`; the host resource it wraps is released when the last alias is
//! closed *and* no in-flight call still holds it, so a close racing a read on another
//! thread lets the read finish on the old description and never touches a recycled host
//! fd.

use std::sync::Arc;

pub use crate::openfile::{FileKind, OpenFile, Synthetic};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdError {
    /// EBADF
    BadFd,
    /// EMFILE
    TooMany,
    /// EINVAL
    Invalid,
    /// EPERM (raising the hard RLIMIT_NOFILE without the privilege, or past NR_OPEN)
    Perm,
}

/// Default RLIMIT_NOFILE soft limit, as on Linux.
pub const DEFAULT_NOFILE: u64 = 1024;
/// Hard ceiling for RLIMIT_NOFILE (Linux's fs.nr_open default).
pub const NR_OPEN: u64 = 1 << 20;

/// Where an [`FdTable`] keeps its slots: [`Plain`] (a `Vec`, for a table behind a lock
/// or a fork snapshot) or [`Published`](crate::view::Published) (the fd-table actor's
/// slots, which readers on other threads look up without messaging the actor). The
/// table's rules (lowest free fd, limits, CLOEXEC) are the same over both.
pub trait SlotStore {
    /// One past the highest slot that may be occupied.
    fn end(&self) -> usize;
    fn occupied(&self, i: usize) -> bool;
    fn file(&self, i: usize) -> Option<Arc<OpenFile>>;
    fn cloexec(&self, i: usize) -> Option<bool>;
    /// Stores `file` at `i` (growing the store), returning what was there.
    fn put(&mut self, i: usize, file: Arc<OpenFile>, cloexec: bool) -> Option<Arc<OpenFile>>;
    fn take(&mut self, i: usize) -> Option<Arc<OpenFile>>;
    /// False when `i` is free.
    fn set_cloexec(&mut self, i: usize, on: bool) -> bool;
}

#[derive(Clone, Debug)]
struct Slot {
    file: Arc<OpenFile>,
    cloexec: bool,
}

/// Slots in a `Vec`; it grows to the highest fd used and never shrinks (as Linux's).
#[derive(Clone, Debug, Default)]
pub struct Plain(Vec<Option<Slot>>);

impl SlotStore for Plain {
    fn end(&self) -> usize {
        self.0.len()
    }
    fn occupied(&self, i: usize) -> bool {
        matches!(self.0.get(i), Some(Some(_)))
    }
    fn file(&self, i: usize) -> Option<Arc<OpenFile>> {
        self.0.get(i)?.as_ref().map(|s| s.file.clone())
    }
    fn cloexec(&self, i: usize) -> Option<bool> {
        self.0.get(i)?.as_ref().map(|s| s.cloexec)
    }
    fn put(&mut self, i: usize, file: Arc<OpenFile>, cloexec: bool) -> Option<Arc<OpenFile>> {
        if i >= self.0.len() {
            self.0.resize(i + 1, None);
        }
        self.0[i].replace(Slot { file, cloexec }).map(|s| s.file)
    }
    fn take(&mut self, i: usize) -> Option<Arc<OpenFile>> {
        self.0.get_mut(i)?.take().map(|s| s.file)
    }
    fn set_cloexec(&mut self, i: usize, on: bool) -> bool {
        match self.0.get_mut(i).and_then(Option::as_mut) {
            Some(s) => {
                s.cloexec = on;
                true
            }
            None => false,
        }
    }
}

/// Told about every slot change, synchronously, inside the table mutation: `(fd,
/// urandom)` after `fd` starts naming a description (`urandom` = its flag) or stops naming
/// one (`false`). Runs before the fd number can be reused, so a mirror of the table (the
/// shim's urandom bitmap) is never stale for an fd the guest can use.
pub type SlotObserver = Arc<dyn Fn(i32, bool) + Send + Sync>;

#[derive(Clone)]
struct Observer(Option<SlotObserver>);

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Some(..)" } else { "None" })
    }
}

#[derive(Clone, Debug)]
pub struct FdTable<S = Plain> {
    slots: S,
    /// Every fd below it is open (Linux's `next_fd`): where the lowest-free search starts.
    free: usize,
    /// RLIMIT_NOFILE: the soft limit (enforced) and the hard one.
    limit: u64,
    hard: u64,
    observer: Observer,
}

impl Default for FdTable {
    fn default() -> Self {
        Self::new()
    }
}

impl FdTable {
    pub fn new() -> Self {
        FdTable {
            slots: Plain::default(),
            free: 0,
            limit: DEFAULT_NOFILE,
            hard: NR_OPEN,
            observer: Observer(None),
        }
    }

    /// A table whose fds 0, 1 and 2 are the host's standard streams.
    pub fn with_host_stdio() -> Self {
        let mut t = Self::new();
        for fd in 0..3 {
            t.install_at(fd, OpenFile::stdio(fd, None), false)
                .expect("stdio slots are free");
        }
        t
    }
}

impl<S: SlotStore> FdTable<S> {
    /// The same table over another store (the descriptions move, nothing is closed).
    pub fn move_to<T: SlotStore>(mut self, mut slots: T) -> FdTable<T> {
        for i in 0..self.slots.end() {
            let cloexec = self.slots.cloexec(i);
            if let (Some(c), Some(f)) = (cloexec, self.slots.take(i)) {
                slots.put(i, f, c);
            }
        }
        FdTable {
            slots,
            free: self.free,
            limit: self.limit,
            hard: self.hard,
            observer: self.observer.clone(),
        }
    }

    /// A copy over a [`Plain`] store sharing the descriptions (fork).
    pub fn to_plain(&self) -> FdTable {
        let mut slots = Plain::default();
        for (fd, f, c) in self.snapshot() {
            slots.put(fd as usize, f, c);
        }
        FdTable {
            slots,
            free: self.free,
            limit: self.limit,
            hard: self.hard,
            observer: self.observer.clone(),
        }
    }

    /// Installs the slot observer and replays every open slot to it.
    pub fn set_observer(&mut self, obs: SlotObserver) {
        for (fd, f, _) in self.snapshot() {
            obs(fd, f.urandom);
        }
        self.observer = Observer(Some(obs));
    }

    fn notify(&self, fd: usize, urandom: bool) {
        if let Some(obs) = &self.observer.0 {
            obs(fd as i32, urandom);
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// RLIMIT_NOFILE as (soft, hard).
    pub fn limits(&self) -> (u64, u64) {
        (self.limit, self.hard)
    }

    /// Sets RLIMIT_NOFILE as setrlimit(2) does: soft ≤ hard (EINVAL), a raised hard limit
    /// needs `may_raise` (EPERM), nothing past NR_OPEN (EPERM). Returns the old pair.
    pub fn set_limits(
        &mut self,
        soft: u64,
        hard: u64,
        may_raise: bool,
    ) -> Result<(u64, u64), FdError> {
        if soft > hard {
            return Err(FdError::Invalid);
        }
        if hard > NR_OPEN || (hard > self.hard && !may_raise) {
            return Err(FdError::Perm);
        }
        let old = self.limits();
        self.limit = soft;
        self.hard = hard;
        Ok(old)
    }

    #[inline]
    pub fn get(&self, fd: i32) -> Result<Arc<OpenFile>, FdError> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.file(i))
            .ok_or(FdError::BadFd)
    }

    #[inline]
    pub fn cloexec(&self, fd: i32) -> Result<bool, FdError> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.cloexec(i))
            .ok_or(FdError::BadFd)
    }

    #[inline]
    pub fn set_cloexec(&mut self, fd: i32, on: bool) -> Result<(), FdError> {
        let i = usize::try_from(fd).map_err(|_| FdError::BadFd)?;
        if self.slots.set_cloexec(i, on) {
            Ok(())
        } else {
            Err(FdError::BadFd)
        }
    }

    /// Installs `file` at the lowest free fd ≥ `min` (open, dup, F_DUPFD).
    #[inline]
    pub fn install(
        &mut self,
        file: Arc<OpenFile>,
        cloexec: bool,
        min: i32,
    ) -> Result<i32, FdError> {
        let min = usize::try_from(min).map_err(|_| FdError::Invalid)?;
        if min as u64 >= self.limit {
            return Err(FdError::Invalid);
        }
        let from = min.max(self.free);
        let len = self.slots.end();
        let i = (from..len)
            .find(|&i| !self.slots.occupied(i))
            .unwrap_or(len.max(from));
        if i as u64 >= self.limit {
            return Err(FdError::TooMany);
        }
        if from == self.free {
            // Everything in [free, i) was open too.
            self.free = i + 1;
        }
        self.notify(i, file.urandom);
        self.slots.put(i, file, cloexec);
        Ok(i as i32)
    }

    /// Installs `file` at exactly `fd` (dup2/dup3), returning what was there.
    #[inline]
    pub fn install_at(
        &mut self,
        fd: i32,
        file: Arc<OpenFile>,
        cloexec: bool,
    ) -> Result<Option<Arc<OpenFile>>, FdError> {
        let i = usize::try_from(fd).map_err(|_| FdError::BadFd)?;
        if i as u64 >= self.limit {
            return Err(FdError::BadFd);
        }
        self.notify(i, file.urandom);
        Ok(self.slots.put(i, file, cloexec))
    }

    #[inline(always)]
    fn remove(&mut self, i: usize) -> Option<Arc<OpenFile>> {
        let f = self.slots.take(i)?;
        self.notify(i, false);
        self.free = self.free.min(i);
        Some(f)
    }

    /// Removes `fd`, returning its description (dropped by the caller, outside any lock).
    #[inline(always)]
    pub fn close(&mut self, fd: i32) -> Result<Arc<OpenFile>, FdError> {
        let i = usize::try_from(fd).map_err(|_| FdError::BadFd)?;
        self.remove(i).ok_or(FdError::BadFd)
    }

    /// close_range(2): closes (or with `cloexec_only`, marks CLOEXEC) fds in [lo, hi].
    pub fn close_range(
        &mut self,
        lo: u32,
        hi: u32,
        cloexec_only: bool,
    ) -> Vec<(i32, Arc<OpenFile>)> {
        let mut out = Vec::new();
        let hi = (hi as usize).min(self.slots.end().saturating_sub(1));
        for i in lo as usize..=hi {
            if cloexec_only {
                self.slots.set_cloexec(i, true);
            } else if let Some(f) = self.remove(i) {
                out.push((i as i32, f));
            }
        }
        out
    }

    /// Closes every CLOEXEC fd (execve).
    pub fn close_on_exec(&mut self) -> Vec<(i32, Arc<OpenFile>)> {
        let mut out = Vec::new();
        for i in 0..self.slots.end() {
            if self.slots.cloexec(i) == Some(true) {
                out.extend(self.remove(i).map(|f| (i as i32, f)));
            }
        }
        out
    }

    /// Open fds in ascending order with their CLOEXEC flag (fork snapshot, /proc).
    pub fn snapshot(&self) -> Vec<(i32, Arc<OpenFile>, bool)> {
        (0..self.slots.end())
            .filter_map(|i| {
                let f = self.slots.file(i)?;
                Some((i as i32, f, self.slots.cloexec(i)?))
            })
            .collect()
    }

    pub fn count(&self) -> usize {
        (0..self.slots.end())
            .filter(|&i| self.slots.occupied(i))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devnull() -> Arc<OpenFile> {
        let f = std::fs::File::open("/dev/null").unwrap();
        OpenFile::host(f.into(), Some(b"/dev/null"))
    }

    #[test]
    fn lowest_free_and_dup_share() {
        let mut t = FdTable::new();
        let a = t.install(devnull(), false, 0).unwrap();
        let b = t.install(devnull(), true, 0).unwrap();
        assert_eq!((a, b), (0, 1));
        t.close(0).unwrap();
        let f = t.get(1).unwrap();
        assert_eq!(t.install(f.clone(), false, 0).unwrap(), 0);
        assert!(Arc::ptr_eq(&t.get(0).unwrap(), &t.get(1).unwrap()));
        assert_eq!(t.install(f.clone(), false, 5).unwrap(), 5);
        assert!(t.cloexec(1).unwrap());
        assert_eq!(t.close_on_exec().len(), 1);
        assert_eq!(t.get(1).unwrap_err(), FdError::BadFd);
        assert_eq!(t.close(42).unwrap_err(), FdError::BadFd);
    }

    #[test]
    fn limit_gives_emfile() {
        let mut t = FdTable::new();
        t.set_limits(2, 2, false).unwrap();
        t.install(devnull(), false, 0).unwrap();
        t.install(devnull(), false, 0).unwrap();
        assert_eq!(t.install(devnull(), false, 0), Err(FdError::TooMany));
        assert_eq!(t.install(devnull(), false, 2), Err(FdError::Invalid));
        assert_eq!(
            t.install_at(2, devnull(), false).unwrap_err(),
            FdError::BadFd
        );
    }

    #[test]
    fn close_keeps_inflight_description_alive() {
        let mut t = FdTable::new();
        let fd = t.install(devnull(), false, 0).unwrap();
        let inflight = t.get(fd).unwrap();
        let raw = inflight.raw();
        drop(t.close(fd).unwrap());
        // The host fd is still open for the in-flight user.
        // SAFETY: F_GETFD takes no argument and only queries the fd (a closed one gives
        // EBADF).
        assert!(unsafe { libc::fcntl(raw, libc::F_GETFD) } >= 0);
        drop(inflight);
        // SAFETY: F_GETFD takes no argument and only queries the fd (a closed one gives
        // EBADF).
        assert!(unsafe { libc::fcntl(raw, libc::F_GETFD) } < 0);
    }
}

#[cfg(test)]
mod observer_tests {
    use super::*;
    use std::sync::Mutex;

    fn file(urandom: bool) -> Arc<OpenFile> {
        let f = std::fs::File::open("/dev/null").unwrap();
        OpenFile::host_flagged(f.into(), None, urandom)
    }

    /// The observer mirrors the table: after any sequence of changes, the set of fds it
    /// believes are urandom equals the table's.
    #[test]
    fn observer_sees_every_slot_change() {
        let seen = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
        let s2 = seen.clone();
        let mut t = FdTable::new();
        let pre = t.install(file(true), false, 0).unwrap();
        t.set_observer(Arc::new(move |fd, on| {
            let mut s = s2.lock().unwrap();
            if on {
                s.insert(fd);
            } else {
                s.remove(&fd);
            }
        }));
        let set = |v: &[i32]| v.iter().copied().collect::<std::collections::BTreeSet<_>>();
        assert_eq!(*seen.lock().unwrap(), set(&[pre]));
        let a = t.install(file(true), true, 0).unwrap();
        let b = t.install(file(false), false, 0).unwrap();
        assert_eq!(*seen.lock().unwrap(), set(&[pre, a]));
        // close(a), then a pipe-like file reuses the number.
        t.close(a).unwrap();
        assert_eq!(t.install(file(false), false, 0).unwrap(), a);
        assert_eq!(*seen.lock().unwrap(), set(&[pre]));
        // dup2 of urandom over b, then of a plain file over pre.
        let u = t.get(pre).unwrap();
        t.install_at(b, u, true).unwrap();
        t.install_at(pre, file(false), false).unwrap();
        assert_eq!(*seen.lock().unwrap(), set(&[b]));
        t.close_on_exec();
        assert_eq!(*seen.lock().unwrap(), set(&[]));
        let c = t.install(file(true), false, 10).unwrap();
        assert_eq!(*seen.lock().unwrap(), set(&[c]));
        t.close_range(0, u32::MAX, true);
        assert_eq!(*seen.lock().unwrap(), set(&[c]));
        t.close_range(0, u32::MAX, false);
        assert_eq!(*seen.lock().unwrap(), set(&[]));
    }
}
