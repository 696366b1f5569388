//! `Threads`, one per process (`Process::threads`): the registry of its guest threads
//! (tid → `ThreadShared`), the vCPU slots (slot N owns EL1 stack N), the idle vCPUs kept
//! for reuse, the shootdown and pause machinery, and how the process ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use super::directory::Directory;
use super::pause::Gate;
use super::pitable::PiTable;
use super::shared::{El1Regs, ThreadShared};
use super::state::Stop;
use crate::backend::{BackendError, Invalidate, Kick, Vcpu, Vm};
use crate::errno::Errno;
use crate::guest::layout::MAX_VCPUS;
use crate::guest::mmlock::MmLock;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Host stack of a vCPU thread. A native fork child goes on running its guest on the
/// forking thread, one vCPU loop deeper each generation (~25 KiB): 32 MiB (reserved, only
/// touched pages cost) is room for a fork chain over a thousand generations deep.
pub const VCPU_STACK: usize = 32 << 20;

/// Invalidation generations (TLB, code): bumped by every broadcast, so that a parked
/// vCPU (in no mailbox) can tell what it missed.
pub type Gens = (u64, u64);

/// vCPUs kept for reuse by later threads (a new unicorn instance costs ~0.3 ms and
/// ~0.8 MiB), when the backend lets a vCPU move to another host thread.
const MAX_IDLE: usize = 8;

/// Process threads below which the allocator is asked to return freed memory: a trim
/// when the live count has halved since the last one (at most log2 trims for a wave of
/// exits, none for a steady pool).
const TRIM_FLOOR: usize = 16;

/// A vCPU whose guest thread has exited, kept for a later thread (on a new host thread:
/// every guest thread has its own host thread, whose kernel tid is its tid).
pub struct IdleVcpu {
    pub vcpu: Box<dyn Vcpu>,
    /// The handle of the guest thread it last ran (its mailbox may hold invalidations).
    pub old: Arc<ThreadShared>,
    /// The invalidation generations it had seen when parked.
    pub seen: Gens,
}

// SAFETY: an IdleVcpu is created only for a VM whose vCPUs may be used from another
// thread than their creator's (`Vm::vcpus_portable`), and it is used by one thread at a
// time: the parking thread gives it up, the taking thread owns it from then on.
unsafe impl Send for IdleVcpu {}

#[derive(Default)]
struct Registry {
    /// The same threads by vCPU slot (what the active bitmap names).
    by_slot: HashMap<usize, Arc<ThreadShared>>,
    idle: Vec<IdleVcpu>,
    gens: Gens,
    /// The most threads alive since the allocator was last trimmed (see `TRIM_FLOOR`).
    high_water: usize,
    /// The host threads of live guest threads, by host tid. A thread that finishes
    /// detaches itself (its stack goes back to the allocator's cache for the next one).
    joins: HashMap<i32, JoinHandle<()>>,
    slots: Vec<u64>,
    /// The group leader's `exit` code, once it has exited alone.
    leader_code: Option<i32>,
    /// exit_group / fatal signal: the process status; set once.
    end: Option<Stop>,
    /// A host-side failure on some vCPU thread.
    fatal: Option<String>,
    /// The pause in progress (a fork): threads registered meanwhile wait at it too.
    pause: Option<Arc<Gate>>,
    exiting: bool,
    started: bool,
}

pub struct Threads {
    reg: Mutex<Registry>,
    /// The threads' handles by tid (this registry is its only writer).
    dir: Arc<Directory>,
    changed: Condvar,
    pub vm: Arc<dyn Vm>,
    pub el1: El1Regs,
    pub leader_tid: i32,
    /// Bumped by every shootdown that flushes TLBs (see `enter`).
    tlb_gen: AtomicU64,
    /// One bit per vCPU slot: set while that vCPU is in guest code or about to enter it.
    active: Box<[AtomicU64]>,
    /// Shootdowns in flight, and a condvar to wait for them.
    inflight: AtomicUsize,
    sd: Mutex<()>,
    sd_done: Condvar,
    /// membarrier(REGISTER_*) commands seen (the kernel's per-mm registration bits).
    pub membarrier_registered: AtomicU32,
    /// Serialises forks (and so pauses).
    fork_serial: Mutex<()>,
    /// The waiters of PI futexes (`syscall::futex_pi`).
    pub futex_pi: PiTable,
}

impl Threads {
    pub fn new(vm: Arc<dyn Vm>, el1: El1Regs, leader_tid: i32, dir: Arc<Directory>) -> Self {
        Threads {
            reg: Mutex::new(Registry {
                slots: vec![0; (MAX_VCPUS as usize).div_ceil(64)],
                ..Registry::default()
            }),
            dir,
            changed: Condvar::new(),
            vm,
            el1,
            leader_tid,
            tlb_gen: AtomicU64::new(1),
            active: (0..(MAX_VCPUS as usize).div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
            inflight: AtomicUsize::new(0),
            sd: Mutex::new(()),
            sd_done: Condvar::new(),
            membarrier_registered: AtomicU32::new(0),
            fork_serial: Mutex::new(()),
            futex_pi: Default::default(),
        }
    }

    /// Reserves the lowest free vCPU slot (EAGAIN when all are taken or the process is
    /// exiting).
    pub fn reserve_slot(&self) -> Result<usize, Errno> {
        let mut r = lock(&self.reg);
        if r.exiting {
            return Err(Errno::EAGAIN);
        }
        for (i, w) in r.slots.iter_mut().enumerate() {
            if *w != u64::MAX {
                let b = w.trailing_ones() as usize;
                *w |= 1 << b;
                return Ok(i * 64 + b);
            }
        }
        Err(Errno::EAGAIN)
    }

    /// Reserves exactly `slot` (a fork child's first thread keeps the EL1 stack its
    /// vCPU is already on).
    pub fn reserve_slot_at(&self, slot: usize) -> Result<(), Errno> {
        let mut r = lock(&self.reg);
        let w = r.slots.get_mut(slot / 64).ok_or(Errno::EINVAL)?;
        if *w & (1 << (slot % 64)) != 0 {
            return Err(Errno::EAGAIN);
        }
        *w |= 1 << (slot % 64);
        Ok(())
    }

    pub fn release_slot(&self, slot: usize) {
        lock(&self.reg).slots[slot / 64] &= !(1 << (slot % 64));
    }

    /// Adds a thread whose vCPU is ready to run. Fails (EAGAIN) once the process is
    /// exiting; the caller then lets the thread go without running it.
    /// `join`: the host thread's handle, None for a reused (parked) one.
    pub fn register(
        &self,
        t: Arc<ThreadShared>,
        join: Option<JoinHandle<()>>,
    ) -> Result<(), Errno> {
        let mut r = lock(&self.reg);
        if r.exiting {
            return Err(Errno::EAGAIN);
        }
        r.started = true;
        if let Some(g) = &r.pause {
            t.post_pause(g.clone());
        }
        let host = t.host_tid();
        r.by_slot.insert(t.slot, t.clone());
        let live = self.dir.insert(t);
        r.high_water = r.high_water.max(live);
        if let Some(j) = join {
            r.joins.insert(host, j);
        }
        Ok(())
    }

    /// Taken by a forking thread before anything else: one fork at a time.
    pub fn fork_lock(&self) -> MutexGuard<'_, ()> {
        lock(&self.fork_serial)
    }

    /// Keeps every thread but `me` out of guest code until the guard drops (see
    /// `crate::thread::pause`). The caller holds `fork_lock`.
    pub fn pause_others(&self, me: i32) -> Paused<'_> {
        let gate = Arc::new(Gate::default());
        let others = {
            let mut r = lock(&self.reg);
            r.pause = Some(gate.clone());
            self.dir.others(me)
        };
        others.iter().for_each(|t| t.post_pause(gate.clone()));
        // Each kick returns once that vCPU is out of guest code (or not in it).
        kick_each(&others);
        Paused {
            threads: self,
            gate,
        }
    }

    pub(crate) fn end_pause(&self, gate: &Arc<Gate>) {
        let mut r = lock(&self.reg);
        if r.pause.as_ref().is_some_and(|g| Arc::ptr_eq(g, gate)) {
            r.pause = None;
        }
    }

    /// execve from a thread that is not the leader, once it is the only thread: like
    /// Linux's de_thread it takes the leader's tid (the pid).
    pub fn become_leader(&self, me: &ThreadShared) {
        let r = lock(&self.reg);
        let old = me.tid();
        if old == self.leader_tid {
            return;
        }
        if let Some(t) = self.dir.remove(old) {
            me.set_tid(self.leader_tid);
            self.dir.insert(t);
        }
        drop(r);
    }

    /// A parked vCPU to reuse, if any.
    pub fn take_idle(&self) -> Option<IdleVcpu> {
        lock(&self.reg).idle.pop()
    }

    pub fn gens(&self) -> Gens {
        lock(&self.reg).gens
    }

    pub fn get(&self, tid: i32) -> Option<Arc<ThreadShared>> {
        self.dir.get(tid)
    }

    /// The guest tid of the thread running on host thread `host` (F_GETOWN_EX).
    pub fn guest_tid_of(&self, host: i32) -> Option<i32> {
        self.dir.tid_of_host(host)
    }

    /// Kicks every thread out of guest code (each then looks at its pending signals).
    pub fn kick_all(&self) {
        kick_each(&self.dir.all());
    }

    pub fn count(&self) -> usize {
        self.dir.len()
    }

    /// The tids of the live threads, in order.
    pub fn tids(&self) -> Vec<i32> {
        self.dir.tids()
    }

    /// exit_group or a fatal signal from thread `me`: the first sets the status; every
    /// other thread is killed.
    pub fn group_exit(&self, me: i32, stop: Stop) {
        let victims = {
            let mut r = lock(&self.reg);
            r.end.get_or_insert(stop);
            r.exiting = true;
            self.dir.others(me)
        };
        for t in &victims {
            t.mark_killed();
        }
        victims.iter().for_each(|t| t.nudge());
        self.changed.notify_all();
    }

    /// execve from thread `me` (Linux's de_thread): every other thread is killed and
    /// gone before this returns; the process itself goes on. Threads created meanwhile
    /// by a dying one are caught by the next round.
    pub fn kill_others(&self, me: i32) {
        let mut r = lock(&self.reg);
        loop {
            let others = self.dir.others(me);
            if others.is_empty() {
                break;
            }
            for t in &others {
                t.mark_killed();
                t.nudge();
            }
            r = self.wait_retry(r);
        }
    }

    /// Waits for a registry change, or a few milliseconds: long enough for a nudged thread
    /// to leave, short enough to nudge again one that was between checks.
    fn wait_retry<'a>(&self, r: MutexGuard<'a, Registry>) -> MutexGuard<'a, Registry> {
        self.changed
            .wait_timeout(r, Duration::from_millis(5))
            .unwrap_or_else(|p| p.into_inner())
            .0
    }

    /// A host-side failure on some vCPU: the whole process stops.
    pub fn fatal(&self, me: i32, e: String) {
        lock(&self.reg).fatal.get_or_insert(e);
        self.group_exit(me, Stop::Signal(crate::signal::SIGSEGV));
    }

    /// The thread `me` has stopped for good (its vCPU will not run it again).
    /// `exit_code`: Some for `exit` (one thread), None when killed or group-exiting.
    /// `vcpu`: given by a thread that exited alone, kept for a later clone when the
    /// backend allows it and the pool has room (with the invalidation generations seen,
    /// under the same lock as the thread's removal from the broadcast set); else dropped
    /// here. When the process's thread count has halved since the last trim, the
    /// allocator returns the freed engines' memory to the host.
    pub fn finish(
        &self,
        me: &Arc<ThreadShared>,
        exit_code: Option<i32>,
        vcpu: Option<Box<dyn Vcpu>>,
    ) {
        let mut r = lock(&self.reg);
        self.dir.remove(me.tid());
        if r.by_slot.get(&me.slot).is_some_and(|t| Arc::ptr_eq(t, me)) {
            r.by_slot.remove(&me.slot);
        }
        let own_join = r.joins.remove(&me.host_tid());
        if me.tid() == self.leader_tid {
            if let Some(c) = exit_code {
                r.leader_code = Some(c);
            }
        }
        let keep = exit_code.is_some()
            && !r.exiting
            && r.idle.len() < MAX_IDLE
            && self.vm.vcpus_portable();
        let dropped = match vcpu {
            Some(v) if keep => {
                let seen = r.gens;
                r.idle.push(IdleVcpu {
                    vcpu: v,
                    old: me.clone(),
                    seen,
                });
                None
            }
            other => other,
        };
        let live = self.dir.len();
        let trim = r.high_water >= TRIM_FLOOR && live * 2 < r.high_water;
        if trim {
            r.high_water = live;
        }
        drop(r);
        self.changed.notify_all();
        drop(own_join);
        drop(dropped);
        if trim {
            trim_heap();
        }
    }

    /// Waits (on the host's main thread) until every thread has finished, joins them,
    /// and returns how the process ended. While the process is exiting, blocked threads
    /// are interrupted again every few milliseconds.
    pub fn wait(&self) -> Result<Stop, String> {
        let mut r = lock(&self.reg);
        while !(r.started && self.dir.is_empty()) {
            if r.exiting {
                self.dir.all().iter().for_each(|t| t.nudge());
                r = self.wait_retry(r);
            } else {
                r = self.changed.wait(r).unwrap_or_else(|p| p.into_inner());
            }
        }
        // Parked vCPU threads see their job channel close and end.
        r.idle.clear();
        let joins = std::mem::take(&mut r.joins);
        let end = r.end;
        let leader = r.leader_code;
        let fatal = r.fatal.take();
        drop(r);
        for (_, j) in joins {
            let _ = j.join();
        }
        match fatal {
            Some(e) => Err(e),
            None => Ok(end.unwrap_or(Stop::Exit(leader.unwrap_or(0)))),
        }
    }

    /// After a syscall on thread `me`: makes every mapping change so far visible to every
    /// vCPU before the syscall returns (see the module doc).
    pub fn sync_mappings(
        &self,
        mm: &MmLock,
        me: &ThreadShared,
        vcpu: &mut dyn Vcpu,
    ) -> Result<(), BackendError> {
        // Nothing to take is the common case, seen without the lock.
        let inval = if !mm.inval_pending() {
            Invalidate::default()
        } else {
            let mut mm = mm.lock();
            let i = mm.take_invalidate();
            if !i.is_empty() {
                self.inflight.fetch_add(1, SeqCst);
            }
            i
        };
        if inval.is_empty() {
            if self.inflight.load(SeqCst) > 0 {
                let mut g = lock(&self.sd);
                while self.inflight.load(SeqCst) > 0 {
                    g = self.sd_done.wait(g).unwrap_or_else(|p| p.into_inner());
                }
            }
            return Ok(());
        }
        let r = vcpu.invalidate(inval);
        self.broadcast(me.tid(), Some(inval));
        let _g = lock(&self.sd);
        self.inflight.fetch_sub(1, SeqCst);
        self.sd_done.notify_all();
        r
    }

    /// Posts `inval` (if any) to every thread but `me` and kicks each out of guest code:
    /// when this returns, no other vCPU executes guest code that predates the call. A
    /// TLB flush alone reaches only the active vCPUs (`shoot_tlb`).
    pub fn broadcast(&self, me: i32, inval: Option<Invalidate>) {
        if let Some(Invalidate {
            tlb: true,
            code: None,
        }) = inval
        {
            return self.shoot_tlb(me);
        }
        // Generations and the snapshot under one lock: a thread parking or registering
        // concurrently either is in the snapshot or sees the new generation.
        let others = {
            let mut r = lock(&self.reg);
            if let Some(i) = inval {
                r.gens.0 += u64::from(i.tlb);
                r.gens.1 += u64::from(i.code.is_some());
            }
            self.dir.others(me)
        };
        if let Some(i) = inval {
            if i.tlb {
                self.tlb_gen.fetch_add(1, SeqCst);
            }
            for t in &others {
                t.post(i);
            }
        }
        kick_each(&others);
    }

    /// A TLB-only shootdown: a new generation, then a kick for each vCPU marked active.
    /// A vCPU not marked flushes before it next enters guest code (`enter`): the mark and
    /// the generation are a Dekker pair (each side stores its own, then loads the
    /// other's, SeqCst), so one of the two sides sees the other. A thread blocked in a
    /// host syscall costs a shootdown nothing.
    fn shoot_tlb(&self, me: i32) {
        let others = {
            let mut r = lock(&self.reg);
            r.gens.0 += 1;
            self.tlb_gen.fetch_add(1, SeqCst);
            let mut v = Vec::new();
            for (w, word) in self.active.iter().enumerate() {
                let mut bits = word.load(SeqCst);
                while bits != 0 {
                    let b = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    if let Some(t) = r.by_slot.get(&(w * 64 + b)) {
                        if t.tid() != me {
                            v.push(t.clone());
                        }
                    }
                }
            }
            v
        };
        kick_each(&others);
    }

    /// Before thread `me`'s vCPU enters guest code: marks it active, then flushes its TLB
    /// if a shootdown happened since its last flush, then applies its mailbox (code
    /// invalidations, a fork's pause).
    pub fn enter(&self, me: &ThreadShared, vcpu: &mut dyn Vcpu) -> Result<(), BackendError> {
        let (w, bit) = (me.slot / 64, 1u64 << (me.slot % 64));
        if self.active[w].load(SeqCst) & bit == 0 {
            self.active[w].fetch_or(bit, SeqCst);
        }
        let gen = self.tlb_gen.load(SeqCst);
        if me.seen_tlb.load(SeqCst) != gen {
            vcpu.invalidate(Invalidate {
                tlb: true,
                code: None,
            })?;
            me.seen_tlb.store(gen, SeqCst);
        }
        me.apply_mail(vcpu)
    }

    /// Thread `me`'s vCPU has left guest code (any exit): shootdowns need not kick it
    /// until it enters again.
    pub fn leave(&self, me: &ThreadShared) {
        let (w, bit) = (me.slot / 64, 1u64 << (me.slot % 64));
        if self.active[w].load(SeqCst) & bit != 0 {
            self.active[w].fetch_and(!bit, SeqCst);
        }
    }
}

/// Kicks every thread of `ts` with one barrier for all (`backend::kick_all`): a
/// shootdown with thousands of threads is not thousands of barriers.
fn kick_each(ts: &[Arc<ThreadShared>]) {
    let kicks: Vec<&dyn Kick> = ts.iter().map(|t| t.kicker()).collect();
    crate::backend::kick_all(&kicks);
}

/// Returns the allocator's free memory to the host (engines freed by exited threads).
fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other vCPUs stay out of guest code while this lives (see the module doc).
pub struct Paused<'a> {
    pub(crate) threads: &'a Threads,
    pub(crate) gate: Arc<Gate>,
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        self.threads.end_pause(&self.gate);
        self.gate.open();
    }
}
