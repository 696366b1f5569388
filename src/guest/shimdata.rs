//! The host side of shim_data: the EL1-only page the shim serves fast paths from
//! (layout in `elfuse_shim::data`; protocol in ARCHITECTURE.md, "shim_data").
//!
//! Every field is accessed with host atomics on the shared guest RAM. The guest cannot
//! reach these pages (EL1-only, and outside every user range), so only the shim and the
//! host write them.
//!
//! Publishing order for anything the shim reads without a lock (identity slots): set the
//! attention bit (SeqCst) → mutate host state → store the slots → clear the bit (Release).
//! The shim LDARs the attention word before it reads a slot, so it either sees the bit and
//! forwards, or sees the cleared bit and — by acquire/release — the new slots.

use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use elfuse_shim::data::*;

use super::layout::SHIM_DATA;
use super::ram::GuestRam;

/// What the identity slots hold (raw values, as the syscalls return them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    pub pgid: u32,
    pub sid: u32,
}

/// The urandom-refill actor keeps the shim's ring topped up through this.
impl elfuse_actors::urandom::EntropySink for ShimData {
    fn capacity(&self) -> usize {
        RING_SIZE as usize
    }
    fn level(&self) -> usize {
        self.fill_level() as usize
    }
    fn refill(&self, f: &mut dyn FnMut(&mut [u8]) -> io::Result<()>) -> io::Result<()> {
        ShimData::refill(self, f).map(drop)
    }
}

/// A handle on shim_data (cheap to create; all state lives in guest RAM).
#[derive(Clone)]
pub struct ShimData {
    ram: Arc<GuestRam>,
    base: *mut u8,
}

// SAFETY: `base` points into `ram`'s shared mapping, which `ram` keeps alive; every
// access goes through atomics or happens under the ring lock.
unsafe impl Send for ShimData {}
// SAFETY: as for Send: `&ShimData` reaches the page only through atomics (`u32_at`/`u64_at`)
// or under the ring lock, and `ram` keeps the mapping alive.
unsafe impl Sync for ShimData {}

impl ShimData {
    pub fn new(ram: Arc<GuestRam>) -> ShimData {
        let base = ram.ptr(SHIM_DATA, SIZE as usize);
        ShimData { ram, base }
    }

    fn u32_at(&self, off: u32) -> &AtomicU32 {
        debug_assert!(off.is_multiple_of(4) && off + 4 <= SIZE);
        // SAFETY: aligned, inside shim_data, alive as long as `self.ram`.
        unsafe { &*(self.base.add(off as usize) as *const AtomicU32) }
    }

    fn u64_at(&self, off: u32) -> &AtomicU64 {
        debug_assert!(off.is_multiple_of(8) && off + 8 <= SIZE);
        // SAFETY: as above.
        unsafe { &*(self.base.add(off as usize) as *const AtomicU64) }
    }

    pub fn attention(&self) -> u32 {
        self.u32_at(ATTENTION).load(Ordering::Acquire)
    }

    /// Sets attention bits: from now on the shim forwards every syscall.
    pub fn set_attention(&self, bits: u32) {
        self.u32_at(ATTENTION).fetch_or(bits, Ordering::SeqCst);
    }

    /// Clears attention bits (Release: what was published before is visible to a shim
    /// that LDARs the cleared word).
    pub fn clear_attention(&self, bits: u32) {
        self.u32_at(ATTENTION).fetch_and(!bits, Ordering::Release);
    }

    /// Sets or clears SIGTIMER to match "a signal is pending and unblocked", touching the
    /// word only when it changes.
    pub fn sync_sigtimer(&self, pending: bool) {
        let set = self.attention() & ATTN_SIGTIMER != 0;
        if pending && !set {
            self.set_attention(ATTN_SIGTIMER);
        } else if !pending && set {
            self.clear_attention(ATTN_SIGTIMER);
        }
    }

    /// Publishes the identity slots under CRED. `mutate` runs inside the window (the host
    /// change the slots reflect, e.g. a setuid); pass `|| ()` at boot.
    pub fn publish_identity(&self, mutate: impl FnOnce(), id: &Identity) {
        self.set_attention(ATTN_CRED);
        mutate();
        let slots = [
            (SLOT_PID, id.pid),
            (SLOT_PPID, id.ppid),
            (SLOT_UID, id.uid),
            (SLOT_EUID, id.euid),
            (SLOT_GID, id.gid),
            (SLOT_EGID, id.egid),
            (SLOT_PGID, id.pgid),
            (SLOT_SID, id.sid),
        ];
        for (slot, v) in slots {
            self.u32_at(IDENT + slot * 4).store(v, Ordering::Relaxed);
        }
        self.clear_attention(ATTN_CRED);
    }

    /// Runs `mutate` (a host setsid/setpgid) inside the CRED window and republishes the
    /// process group and session slots from the host afterwards, so getpgid(0) and
    /// getsid(0) served by the shim never answer with the old ones.
    pub fn republish_group<R>(&self, mutate: impl FnOnce() -> R) -> R {
        self.set_attention(ATTN_CRED);
        let r = mutate();
        // SAFETY: plain queries of this process.
        let (pgid, sid) = unsafe { (libc::getpgid(0), libc::getsid(0)) };
        self.u32_at(IDENT + SLOT_PGID * 4)
            .store(pgid as u32, Ordering::Relaxed);
        self.u32_at(IDENT + SLOT_SID * 4)
            .store(sid as u32, Ordering::Relaxed);
        self.clear_attention(ATTN_CRED);
        r
    }

    /// Republishes the getppid slot from the host (the parent exited and the process was
    /// reparented), under CRED like every identity change.
    pub fn republish_ppid(&self) {
        self.set_attention(ATTN_CRED);
        let ppid = nix::unistd::getppid().as_raw() as u32;
        self.u32_at(IDENT + SLOT_PPID * 4)
            .store(ppid, Ordering::Relaxed);
        self.clear_attention(ATTN_CRED);
    }

    pub fn identity(&self) -> Identity {
        let s = |slot: u32| self.u32_at(IDENT + slot * 4).load(Ordering::Acquire);
        Identity {
            pid: s(SLOT_PID),
            ppid: s(SLOT_PPID),
            uid: s(SLOT_UID),
            euid: s(SLOT_EUID),
            gid: s(SLOT_GID),
            egid: s(SLOT_EGID),
            pgid: s(SLOT_PGID),
            sid: s(SLOT_SID),
        }
    }

    /// The range `[lo, end)` fast-path buffers must lie in (until set, none does).
    pub fn publish_user_range(&self, lo: u64, end: u64) {
        self.u64_at(USER_LIMITS).store(lo, Ordering::Relaxed);
        self.u64_at(USER_LIMITS + 8).store(end, Ordering::Release);
    }

    /// Marks guest fd `fd` as open (or not) on /dev/urandom. Fds outside the bitmap are
    /// always forwarded, so there is nothing to record for them.
    pub fn set_urandom(&self, fd: i32, on: bool) {
        let Ok(fd) = u32::try_from(fd) else { return };
        if fd >= URANDOM_FDS {
            return;
        }
        let word = self.u64_at(URANDOM_BITMAP + (fd / 64) * 8);
        let bit = 1u64 << (fd % 64);
        if on {
            word.fetch_or(bit, Ordering::SeqCst);
        } else {
            word.fetch_and(!bit, Ordering::SeqCst);
        }
    }

    pub fn is_urandom(&self, fd: u32) -> bool {
        fd < URANDOM_FDS
            && self
                .u64_at(URANDOM_BITMAP + (fd / 64) * 8)
                .load(Ordering::Acquire)
                >> (fd % 64)
                & 1
                != 0
    }

    /// Random bytes in the ring, not yet handed out.
    pub fn fill_level(&self) -> u32 {
        let head = self.u32_at(RING_HEAD).load(Ordering::Acquire);
        let tail = self.u32_at(RING_TAIL).load(Ordering::Acquire);
        tail.wrapping_sub(head)
    }

    fn lock(&self) {
        let lock = self.u32_at(RING_LOCK);
        let mut spins = 0u32;
        while lock
            .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins.is_multiple_of(64) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }

    fn unlock(&self) {
        self.u32_at(RING_LOCK).store(0, Ordering::Release);
    }

    /// Tops the ring up: `fill` must fill the whole slice with random bytes (or fail, and
    /// nothing is published). Returns the bytes added. The bytes are produced outside the
    /// lock; the lock is held only to copy them in. For a refill actor as well as the
    /// slow path.
    pub fn refill(&self, fill: &mut dyn FnMut(&mut [u8]) -> io::Result<()>) -> io::Result<u32> {
        let want = RING_SIZE - self.fill_level().min(RING_SIZE);
        if want == 0 {
            return Ok(0);
        }
        let mut buf = [0u8; RING_SIZE as usize];
        fill(&mut buf[..want as usize])?;
        self.lock();
        let head = self.u32_at(RING_HEAD).load(Ordering::Relaxed);
        let tail = self.u32_at(RING_TAIL).load(Ordering::Relaxed);
        let n = (RING_SIZE - tail.wrapping_sub(head)).min(want);
        // At most two runs: up to the end of the ring, then from its start.
        let pos = tail % RING_SIZE;
        let first = n.min(RING_SIZE - pos);
        for (dst, src) in [
            (pos, &buf[..first as usize]),
            (0, &buf[first as usize..n as usize]),
        ] {
            // SAFETY: inside the ring; positions in [tail, head + RING_SIZE) are read by
            // nobody (the shim only reads [head, tail), and holds the lock to do so).
            unsafe {
                std::ptr::copy_nonoverlapping(
                    src.as_ptr(),
                    self.base.add((RING + dst) as usize),
                    src.len(),
                )
            };
        }
        self.u32_at(RING_TAIL)
            .store(tail.wrapping_add(n), Ordering::Release);
        self.unlock();
        // Nothing of the random bytes stays behind on the host stack.
        buf.fill(0);
        std::hint::black_box(&buf);
        Ok(n)
    }

    /// Takes the ring lock if it is free. At a native fork the parent holds it across
    /// fork() to give the ring to the child (see [`ShimData::give_away_and_unlock`]);
    /// it can be held by a vCPU paused in the shim, hence no waiting.
    pub fn try_lock_ring(&self) -> bool {
        self.u32_at(RING_LOCK)
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// With the ring lock held ([`ShimData::try_lock_ring`]): throws away every byte
    /// and releases the lock. The parent of a fork calls it once the child's copy of
    /// guest RAM exists, which gives the unconsumed bytes to the child alone (the
    /// parent's refill actor tops its ring up at its next syscall that reaches the
    /// host).
    pub fn give_away_and_unlock(&self) {
        let tail = self.u32_at(RING_TAIL).load(Ordering::Relaxed);
        self.u32_at(RING_HEAD).store(tail, Ordering::Release);
        self.unlock();
    }

    /// A fork child, before its only vCPU runs: releases the ring lock whoever held it
    /// (the copy of RAM may have been taken while another thread of the parent, a vCPU
    /// in the shim or a refill, held it, and that thread does not exist here), keeps
    /// the bytes if the parent gave them away ([`ShimData::give_away_and_unlock`]) or
    /// else throws them away (the parent hands them out too). Refilling is the child's
    /// urandom-refill actor's job (`spawn_refill` checks the level first thing).
    pub fn adopt_ring(&self, given: bool) {
        if !given {
            self.u32_at(RING_HEAD).store(
                self.u32_at(RING_TAIL).load(Ordering::Relaxed),
                Ordering::Release,
            );
        }
        self.unlock();
    }

    /// The guest RAM this view is over.
    pub fn ram(&self) -> &Arc<GuestRam> {
        &self.ram
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::layout::RAM_SIZE;
    use elfuse_actors::urandom::host_random;

    fn sd() -> ShimData {
        ShimData::new(Arc::new(GuestRam::new(RAM_SIZE).unwrap()))
    }

    #[test]
    fn identity_round_trip_and_cred_cleared() {
        let s = sd();
        let id = Identity {
            pid: 7,
            ppid: 1,
            uid: 1000,
            euid: 1001,
            gid: 100,
            egid: 101,
            pgid: 7,
            sid: 3,
        };
        let mut during = 0;
        s.publish_identity(|| during = s.attention(), &id);
        assert_eq!(during & ATTN_CRED, ATTN_CRED);
        assert_eq!(s.attention(), 0);
        assert_eq!(s.identity(), id);
        // The slot order is the shim's: getpid..getegid = slots 0..5 at IDENT.
        assert_eq!(s.ram.read_u64(SHIM_DATA + IDENT as u64), 7 | (1 << 32));
    }

    #[test]
    fn ring_refills_to_full_and_wraps() {
        let s = sd();
        assert_eq!(s.fill_level(), 0);
        let mut k = 0u8;
        let mut counting = |b: &mut [u8]| {
            for x in b {
                *x = k;
                k = k.wrapping_add(1);
            }
            Ok(())
        };
        assert_eq!(s.refill(&mut counting).unwrap(), RING_SIZE);
        assert_eq!(s.refill(&mut counting).unwrap(), 0);
        // Consume 100 bytes as the shim would, then refill: the new bytes land at the
        // start of the ring (wrapped).
        s.u32_at(RING_HEAD).store(100, Ordering::Release);
        assert_eq!(s.fill_level(), RING_SIZE - 100);
        assert_eq!(s.refill(&mut counting).unwrap(), 100);
        let mut first = [0u8; 2];
        s.ram.read(SHIM_DATA + RING as u64, &mut first);
        assert_eq!(first, [0, 1]); // 4096 % 256 == 0: the counter wrapped to 0
        assert_eq!(s.fill_level(), RING_SIZE);
        assert_eq!(s.u32_at(RING_LOCK).load(Ordering::Relaxed), 0);
        // A failing source publishes nothing.
        s.u32_at(RING_HEAD).store(200, Ordering::Release);
        let mut failing = |_: &mut [u8]| Err(io::Error::other("no entropy"));
        assert!(s.refill(&mut failing).is_err());
        assert_eq!(s.fill_level(), RING_SIZE - 100);
        // Given away, adopted and refilled (by the refill actor, in elfuse): none of the
        // old bytes survive.
        let mut before = vec![0u8; RING_SIZE as usize];
        s.ram.read(SHIM_DATA + RING as u64, &mut before);
        assert!(s.try_lock_ring());
        assert!(!s.try_lock_ring());
        s.give_away_and_unlock();
        assert_eq!(s.fill_level(), 0);
        s.adopt_ring(true);
        s.refill(&mut host_random).unwrap();
        assert_eq!(s.fill_level(), RING_SIZE);
        let mut after = vec![0u8; RING_SIZE as usize];
        s.ram.read(SHIM_DATA + RING as u64, &mut after);
        let same = before.iter().zip(&after).filter(|(a, b)| a == b).count();
        assert!(same < 64, "{same} of 4096 bytes unchanged");
    }

    /// A fork child keeps the bytes its parent gave away, with the lock released
    /// whoever held it; bytes the parent kept are thrown away and replaced.
    #[test]
    fn fork_child_adopts_the_ring() {
        let s = sd();
        let mut ones = |b: &mut [u8]| {
            b.fill(1);
            Ok(())
        };
        s.refill(&mut ones).unwrap();
        s.u32_at(RING_HEAD).store(96, Ordering::Release);
        // Given (the parent held the lock across fork): kept as is, nothing refilled.
        assert!(s.try_lock_ring());
        s.adopt_ring(true);
        assert_eq!(s.u32_at(RING_LOCK).load(Ordering::Relaxed), 0);
        assert_eq!(s.fill_level(), RING_SIZE - 96);
        let mut b = [0u8; 4];
        s.ram.read(SHIM_DATA + RING as u64 + 96, &mut b);
        assert_eq!(b, [1; 4]);
        // Not given (a paused vCPU held the lock): the parent's bytes are gone; the
        // refill (the actor's) brings new ones.
        assert!(s.try_lock_ring());
        s.adopt_ring(false);
        assert_eq!(s.u32_at(RING_LOCK).load(Ordering::Relaxed), 0);
        assert_eq!(s.fill_level(), 0);
        s.refill(&mut host_random).unwrap();
        assert_eq!(s.fill_level(), RING_SIZE);
        let mut all = vec![0u8; RING_SIZE as usize];
        s.ram.read(SHIM_DATA + RING as u64, &mut all);
        assert!(all.iter().filter(|&&x| x == 1).count() < 64);
    }

    #[test]
    fn urandom_bits_and_sigtimer() {
        let s = sd();
        s.set_urandom(5, true);
        s.set_urandom(70, true);
        s.set_urandom(-1, true);
        s.set_urandom(URANDOM_FDS as i32, true);
        assert!(s.is_urandom(5) && s.is_urandom(70) && !s.is_urandom(6));
        s.set_urandom(5, false);
        assert!(!s.is_urandom(5) && s.is_urandom(70));
        s.sync_sigtimer(true);
        assert_eq!(s.attention(), ATTN_SIGTIMER);
        s.set_attention(ATTN_TRACE);
        s.sync_sigtimer(false);
        assert_eq!(s.attention(), ATTN_TRACE);
    }
}
