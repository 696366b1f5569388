//! Entropy: the urandom-refill actor and the per-description /dev/urandom cache.
//!
//! The refill actor keeps an entropy ring topped up from the host CSPRNG before it runs
//! dry. Where the ring lives is the sink's business ([`EntropySink`]): in elfuse it is a
//! ring in guest memory the shim serves getrandom from; the tests use [`MemRing`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::runtime::{Actor, ActorRef, Config, Mode};
use crate::trace::TraceSink;

/// Fills `buf` from the host CSPRNG (getrandom(2), retrying short reads and EINTR; it
/// blocks only before the host's pool is initialised, as Linux does for /dev/urandom
/// readers at boot). The one source of random bytes in elfuse.
pub fn host_random(buf: &mut [u8]) -> std::io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: `rest` is a writable buffer of `rest.len()` bytes.
        let r = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if r > 0 {
            done += r as usize;
            continue;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// An entropy ring the refill actor keeps full.
pub trait EntropySink: Send + Sync {
    /// Total bytes it holds when full.
    fn capacity(&self) -> usize;
    /// Unconsumed bytes in it now.
    fn level(&self) -> usize;
    /// Calls `f` with the free space (possibly in pieces) to be filled with fresh bytes;
    /// `f`'s error leaves the ring as it was.
    fn refill(&self, f: &mut dyn FnMut(&mut [u8]) -> std::io::Result<()>) -> std::io::Result<()>;
}

/// Messages to the refill actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefillMsg {
    /// Top up if the level is below the low-water mark (consumers send it, so does the
    /// actor's own idle tick).
    Check,
    /// Top up now, whatever the level.
    Fill,
}

pub struct RefillActor {
    sink: Arc<dyn EntropySink>,
    low_water: usize,
    refills: u64,
}

impl Actor for RefillActor {
    type Msg = RefillMsg;
    /// Refills done so far.
    type Reply = u64;
    const NAME: &'static str = "urandom";
    fn kind(m: &RefillMsg) -> &'static str {
        match m {
            RefillMsg::Check => "check",
            RefillMsg::Fill => "fill",
        }
    }
    fn handle(&mut self, m: &RefillMsg) -> u64 {
        if *m == RefillMsg::Fill || self.sink.level() < self.low_water {
            match self.sink.refill(&mut host_random) {
                Ok(()) => self.refills += 1,
                // The ring stays low: the shim forwards reads to the host meanwhile.
                Err(e) => tracing::warn!("random ring not refilled: {e}"),
            }
        }
        self.refills
    }
    fn tick_msg(&self) -> Option<RefillMsg> {
        (self.sink.level() < self.low_water).then_some(RefillMsg::Check)
    }
}

/// Starts the refill actor: it checks the ring as its first message (without the caller
/// waiting), then tops it up whenever the level is below `low_water` at a `Check` or at
/// its own idle `tick`.
pub fn spawn_refill(
    sink: Arc<dyn EntropySink>,
    low_water: usize,
    tick: Duration,
    trace: Option<Arc<dyn TraceSink>>,
) -> ActorRef<RefillActor> {
    let a = ActorRef::spawn(
        RefillActor {
            sink: sink.clone(),
            low_water,
            refills: 0,
        },
        Config {
            // `tell` (Check) always goes to the actor's thread; a consumer that found the
            // ring dry `call`s Fill and, the actor being idle, runs the handler itself.
            mode: Mode::Combining,
            sink: trace,
            observer: None,
            tick: Some(tick),
        },
    );
    // Asynchronously: the caller need not wait for the actor. A full ring (a fork
    // child's, reseeded) needs no check, and then no actor thread yet.
    if sink.level() < low_water {
        a.tell(RefillMsg::Check);
    }
    a
}

/// A ring in host memory (tests, and the model of the guest-memory ring).
pub struct MemRing {
    cap: usize,
    bytes: Mutex<VecDeque<u8>>,
}

impl MemRing {
    pub fn new(cap: usize) -> Self {
        MemRing {
            cap,
            bytes: Mutex::new(VecDeque::with_capacity(cap)),
        }
    }

    /// Consumes up to `out.len()` bytes; returns how many there were.
    pub fn take(&self, out: &mut [u8]) -> usize {
        let mut q = self.bytes.lock().unwrap();
        let n = out.len().min(q.len());
        for (o, b) in out.iter_mut().zip(q.drain(..n)) {
            *o = b;
        }
        n
    }
}

impl EntropySink for MemRing {
    fn capacity(&self) -> usize {
        self.cap
    }
    fn level(&self) -> usize {
        self.bytes.lock().unwrap().len()
    }
    fn refill(&self, f: &mut dyn FnMut(&mut [u8]) -> std::io::Result<()>) -> std::io::Result<()> {
        let mut q = self.bytes.lock().unwrap();
        let mut fresh = vec![0u8; self.cap - q.len()];
        f(&mut fresh)?;
        q.extend(fresh);
        Ok(())
    }
}

/// Size of the per-description /dev/urandom buffer.
pub const CACHE_SIZE: usize = 4096;

/// A /dev/urandom description's buffer: small reads are served from it, refilled in
/// bulk; reads larger than it go to the host directly. Zeroed on drop (close).
pub struct EntropyCache {
    buf: Box<[u8; CACHE_SIZE]>,
    /// Consumed bytes at the front; `CACHE_SIZE` = empty.
    pos: usize,
}

impl Default for EntropyCache {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for EntropyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EntropyCache({} left)", CACHE_SIZE - self.pos)
    }
}

impl EntropyCache {
    pub fn new() -> Self {
        EntropyCache {
            buf: Box::new([0; CACHE_SIZE]),
            pos: CACHE_SIZE,
        }
    }

    /// Fills `out` completely (a /dev/urandom read of any size succeeds, unless the host
    /// CSPRNG fails).
    pub fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.len() >= CACHE_SIZE {
            host_random(out)?;
            return Ok(out.len());
        }
        let mut done = 0;
        while done < out.len() {
            if self.pos == CACHE_SIZE {
                host_random(&mut self.buf[..])?;
                self.pos = 0;
            }
            let n = (out.len() - done).min(CACHE_SIZE - self.pos);
            out[done..done + n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            // Served bytes are never served again.
            self.buf[self.pos..self.pos + n].fill(0);
            self.pos += n;
            done += n;
        }
        Ok(out.len())
    }

    /// Bytes buffered and not yet served.
    pub fn buffered(&self) -> usize {
        CACHE_SIZE - self.pos
    }
}

impl Drop for EntropyCache {
    fn drop(&mut self) {
        for b in self.buf.iter_mut() {
            // SAFETY: a valid &mut u8; volatile so the wipe is not optimised away.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refill_keeps_ring_topped_up() {
        let ring = Arc::new(MemRing::new(4096));
        let a = spawn_refill(ring.clone(), 1024, Duration::from_millis(2), None);
        // The start-up check is queued first: once this call returns it has run.
        a.call(RefillMsg::Check);
        assert_eq!(ring.level(), 4096);
        let mut out = vec![0u8; 3500];
        assert_eq!(ring.take(&mut out), 3500);
        assert!(out.iter().any(|&b| b != 0));
        // Below low water: the idle tick tops it up without being asked.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while ring.level() < 4096 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(ring.level(), 4096);
        // Above low water a Check does nothing; Fill always refills.
        let before = a.call(RefillMsg::Check);
        ring.take(&mut out[..100]);
        assert_eq!(a.call(RefillMsg::Check), before);
        assert_eq!(a.call(RefillMsg::Fill), before + 1);
        assert_eq!(ring.level(), 4096);
    }

    #[test]
    fn cache_serves_small_reads_and_bulk_large_ones() {
        let mut c = EntropyCache::new();
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];
        c.read(&mut a).unwrap();
        assert_eq!(c.buffered(), CACHE_SIZE - 16);
        c.read(&mut b).unwrap();
        assert_ne!(a, b);
        let mut big = vec![0u8; 3 * CACHE_SIZE];
        assert_eq!(c.read(&mut big).unwrap(), big.len());
        assert_eq!(
            c.buffered(),
            CACHE_SIZE - 32,
            "large reads bypass the cache"
        );
        // Crossing the refill boundary.
        let mut odd = vec![0u8; CACHE_SIZE - 1];
        assert_eq!(c.read(&mut odd).unwrap(), CACHE_SIZE - 1);
        assert_eq!(c.buffered(), CACHE_SIZE - 31);
    }
}
