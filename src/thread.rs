//! Guest threads: one vCPU per guest thread, each created on (and bound to) its own host
//! thread, all over the same guest RAM.
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
//! a Dekker pair (each side stores its own, then loads the other's, SeqCst), so a vCPU
//! the changer does not see as active sees the new generation before it enters. A
//! thread blocked in a host syscall, the usual state of most of ten thousand threads,
//! costs the shootdown nothing: the cost is one bitmap scan plus the running vCPUs.
//! Code invalidations (rare: executable memory changed) are posted to every thread's
//! mailbox and every thread is kicked. A kick returns once that vCPU is out of guest
//! code, so no vCPU runs guest code with a stale TLB or stale translated code once the
//! syscall returns. Concurrent changers are ordered: a syscall that finds nothing to
//! invalidate waits for shootdowns in flight (another thread may have taken its change).

use std::collections::HashMap;
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst,
};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::backend::{BackendError, Invalidate, Kick, Vcpu, Vm};
use crate::errno::Errno;
use crate::guest::layout::MAX_VCPUS;
use crate::pause::{Gate, Paused};
use crate::process::Process;
use crate::signal::wakesig::{install_wake_handler, wake_signal};
use crate::syscall::Stop;

/// EL1 register values every vCPU of the process shares.
#[derive(Clone, Copy, Debug)]
pub struct El1Regs {
    pub ttbr0: u64,
    pub vbar: u64,
}

/// The part of a thread other threads may touch.
pub struct ThreadShared {
    /// The guest tid; changes only when a non-leader thread execs (it takes the pid).
    tid: AtomicI32,
    host_tid: i32,
    /// vCPU slot: selects the EL1 stack.
    pub slot: usize,
    kick: Arc<dyn Kick>,
    killed: AtomicBool,
    /// The TLB generation this thread's vCPU last flushed at (written by its own thread).
    seen_tlb: AtomicU64,
    has_mail: AtomicBool,
    mail: Mutex<Invalidate>,
    /// A pause (fork in progress) to wait at before entering the guest again.
    gate: Mutex<Option<Arc<Gate>>>,
}

impl ThreadShared {
    pub fn new(tid: i32, host_tid: i32, slot: usize, kick: Arc<dyn Kick>) -> Self {
        ThreadShared {
            tid: AtomicI32::new(tid),
            host_tid,
            slot,
            kick,
            killed: AtomicBool::new(false),
            seen_tlb: AtomicU64::new(0),
            has_mail: AtomicBool::new(false),
            mail: Mutex::new(Invalidate::default()),
            gate: Mutex::new(None),
        }
    }

    pub fn tid(&self) -> i32 {
        self.tid.load(SeqCst)
    }

    /// The host thread the guest thread runs on.
    pub fn host_tid(&self) -> i32 {
        self.host_tid
    }

    pub fn killed(&self) -> bool {
        self.killed.load(SeqCst)
    }

    /// Makes the vCPU leave guest code (or not enter it) and report `Kicked`.
    pub fn kick(&self) {
        self.kick.kick();
    }

    /// The vCPU's kick handle (for `backend::kick_all`).
    pub fn kicker(&self) -> &dyn Kick {
        &*self.kick
    }

    /// True on the host thread that runs this guest thread.
    pub fn is_current(&self) -> bool {
        self.host_tid == host_tid()
    }

    /// Kicks the thread out of guest code and out of a host syscall it may be blocked in.
    fn nudge(&self) {
        self.kick();
        self.interrupt_host();
    }

    /// Interrupts a host syscall the thread may be blocked in (EINTR). The seam for guest
    /// signals that must interrupt a blocked thread.
    pub fn interrupt_host(&self) {
        install_wake_handler();
        // SAFETY: tgkill takes integers: our pid, a host tid of this process (a thread that
        // exited only makes it fail with ESRCH) and the wake signal.
        unsafe {
            libc::syscall(
                libc::SYS_tgkill,
                libc::getpid(),
                self.host_tid,
                wake_signal(),
            )
        };
    }

    fn post(&self, inval: Invalidate) {
        lock(&self.mail).merge(inval);
        self.has_mail.store(true, SeqCst);
    }

    fn post_pause(&self, gate: Arc<Gate>) {
        *lock(&self.gate) = Some(gate);
        self.has_mail.store(true, SeqCst);
    }

    /// Applies invalidations other threads posted, and waits while a fork pauses the
    /// process (`crate::pause`). Called before every guest entry.
    pub fn apply_mail(&self, vcpu: &mut dyn Vcpu) -> Result<(), BackendError> {
        if !self.has_mail.load(SeqCst) {
            return Ok(());
        }
        let (inval, gate) = {
            let mut m = lock(&self.mail);
            self.has_mail.store(false, SeqCst);
            (std::mem::take(&mut *m), lock(&self.gate).take())
        };
        if let Some(g) = gate {
            g.wait();
        }
        if inval.is_empty() {
            Ok(())
        } else {
            vcpu.invalidate(inval)
        }
    }
}

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
    threads: HashMap<i32, Arc<ThreadShared>>,
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
    changed: Condvar,
    pub vm: Arc<dyn Vm>,
    pub el1: El1Regs,
    pub leader_tid: i32,
    proc: Weak<Process>,
    /// Bumped by every shootdown that flushes TLBs (see the module doc).
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
    pub futex_pi: crate::syscall::futex_pi::PiTable,
}

impl Registry {
    /// Every registered thread but `me`, to act on once the lock is released.
    fn others(&self, me: i32) -> Vec<Arc<ThreadShared>> {
        self.threads
            .values()
            .filter(|t| t.tid() != me)
            .cloned()
            .collect()
    }
}

impl Threads {
    pub fn new(vm: Arc<dyn Vm>, el1: El1Regs, leader_tid: i32, proc: Weak<Process>) -> Self {
        Threads {
            reg: Mutex::new(Registry {
                slots: vec![0; (MAX_VCPUS as usize).div_ceil(64)],
                ..Registry::default()
            }),
            changed: Condvar::new(),
            vm,
            el1,
            leader_tid,
            proc,
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

    pub fn process(&self) -> Option<Arc<Process>> {
        self.proc.upgrade()
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
        r.threads.insert(t.tid(), t);
        r.high_water = r.high_water.max(r.threads.len());
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
    /// `crate::pause`). The caller holds `fork_lock`.
    pub fn pause_others(&self, me: i32) -> Paused<'_> {
        let gate = Arc::new(Gate::default());
        let others = {
            let mut r = lock(&self.reg);
            r.pause = Some(gate.clone());
            r.others(me)
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
        let mut r = lock(&self.reg);
        let old = me.tid();
        if old == self.leader_tid {
            return;
        }
        if let Some(t) = r.threads.remove(&old) {
            me.tid.store(self.leader_tid, SeqCst);
            r.threads.insert(self.leader_tid, t);
        }
    }

    /// A parked vCPU to reuse, if any.
    pub fn take_idle(&self) -> Option<IdleVcpu> {
        lock(&self.reg).idle.pop()
    }

    pub fn gens(&self) -> Gens {
        lock(&self.reg).gens
    }

    pub fn get(&self, tid: i32) -> Option<Arc<ThreadShared>> {
        lock(&self.reg).threads.get(&tid).cloned()
    }

    /// The guest tid of the thread running on host thread `host` (F_GETOWN_EX).
    pub fn guest_tid_of(&self, host: i32) -> Option<i32> {
        lock(&self.reg)
            .threads
            .values()
            .find(|t| t.host_tid == host)
            .map(|t| t.tid())
    }

    /// Kicks every thread out of guest code (each then looks at its pending signals).
    pub fn kick_all(&self) {
        let all: Vec<_> = lock(&self.reg).threads.values().cloned().collect();
        kick_each(&all);
    }

    pub fn count(&self) -> usize {
        lock(&self.reg).threads.len()
    }

    /// The tids of the live threads, in order.
    pub fn tids(&self) -> Vec<i32> {
        let mut v: Vec<i32> = lock(&self.reg).threads.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// exit_group or a fatal signal from thread `me`: the first sets the status; every
    /// other thread is killed.
    pub fn group_exit(&self, me: i32, stop: Stop) {
        let victims = {
            let mut r = lock(&self.reg);
            r.end.get_or_insert(stop);
            r.exiting = true;
            r.others(me)
        };
        for t in &victims {
            t.killed.store(true, SeqCst);
        }
        victims.iter().for_each(|t| t.nudge());
        self.changed.notify_all();
    }

    /// execve from thread `me` (Linux's de_thread): every other thread is killed and
    /// gone before this returns; the process itself goes on. Threads created meanwhile
    /// by a dying one are caught by the next round.
    pub fn kill_others(&self, me: i32) {
        let mut r = lock(&self.reg);
        while r.threads.keys().any(|&t| t != me) {
            for t in r.threads.values().filter(|t| t.tid() != me) {
                t.killed.store(true, SeqCst);
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
        r.threads.remove(&me.tid());
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
        let live = r.threads.len();
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
        while !(r.started && r.threads.is_empty()) {
            if r.exiting {
                r.threads.values().for_each(|t| t.nudge());
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
        proc: &Process,
        me: &ThreadShared,
        vcpu: &mut dyn Vcpu,
    ) -> Result<(), BackendError> {
        // Nothing to take is the common case, seen without the lock.
        let inval = if !proc.mm.inval_pending() {
            Invalidate::default()
        } else {
            let mut mm = proc.mm();
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
    /// TLB flush alone reaches only the active vCPUs (see the module doc).
    pub fn broadcast(&self, me: i32, inval: Option<Invalidate>) {
        if let Some(
            i @ Invalidate {
                tlb: true,
                code: None,
            },
        ) = inval
        {
            return self.shoot_tlb(me, i);
        }
        // Generations and the snapshot under one lock: a thread parking or registering
        // concurrently either is in the snapshot or sees the new generation.
        let others = {
            let mut r = lock(&self.reg);
            if let Some(i) = inval {
                r.gens.0 += u64::from(i.tlb);
                r.gens.1 += u64::from(i.code.is_some());
            }
            r.others(me)
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
    fn shoot_tlb(&self, me: i32, inval: Invalidate) {
        let others = {
            let mut r = lock(&self.reg);
            r.gens.0 += 1;
            // Dekker with `enter`: the generation is stored before the marks are read.
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
        debug_assert!(inval.tlb && inval.code.is_none());
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

/// The calling host thread's kernel tid.
pub fn host_tid() -> i32 {
    nix::unistd::gettid().as_raw()
}

/// Runs a guest thread on the current host thread until it stops. A lone `exit` clears
/// CLONE_CHILD_CLEARTID and walks the robust list and returns its code; exit_group or a
/// fatal signal stops the whole process. The slot is freed; the caller then `finish`es.
pub fn run_thread(
    proc: &Arc<Process>,
    vcpu: &mut dyn Vcpu,
    me: &ThreadShared,
    state: &mut crate::syscall::ThreadState,
) -> Option<i32> {
    let end = crate::vcpu::run(proc, vcpu, state, me);
    // Out of guest code for good (before the slot, and so its active bit, is reused).
    proc.threads.leave(me);
    // Its own pending signals go with it (it was registered with the signal actor before
    // its tid became known: boot, clone, fork).
    proc.signals.unregister(me.tid());
    // The vCPU does not run this thread again: its EL1 stack is free for a new one.
    proc.threads.release_slot(me.slot);
    match end {
        _ if me.killed() => {
            crate::syscall::futex::thread_gone(proc, state);
            None
        }
        Ok(Stop::ThreadExit(c)) => {
            crate::syscall::futex::thread_exit_cleanup(proc, state);
            Some(c)
        }
        Ok(stop) => {
            proc.threads.group_exit(me.tid(), stop);
            crate::syscall::futex::thread_gone(proc, state);
            None
        }
        Err(e) => {
            tracing::error!(tid = me.tid(), "vCPU failed: {e}");
            proc.threads.fatal(me.tid(), e.0);
            None
        }
    }
}

/// Runs the calling host thread's vCPU as the first thread of a new process (a fork
/// child, whose vCPU is stopped inside the shim): registers it in the vCPU slot whose EL1
/// stack it is on, runs it, then waits for every thread the child creates.
pub fn run_as_leader(
    proc: &Arc<Process>,
    vcpu: &mut dyn Vcpu,
    state: &mut crate::syscall::ThreadState,
) -> Result<Stop, String> {
    use crate::guest::layout::{EL1_STACKS, EL1_STACK_SIZE};
    let sp = vcpu
        .sys_reg(crate::backend::SysReg::SpEl1)
        .map_err(|e| e.0)?;
    let slot = (sp.saturating_sub(EL1_STACKS + 1) / EL1_STACK_SIZE) as usize;
    proc.threads
        .reserve_slot_at(slot)
        .map_err(|e| format!("vCPU slot {slot}: {e:?}"))?;
    let me = Arc::new(ThreadShared::new(
        state.tid,
        host_tid(),
        slot,
        vcpu.kicker(),
    ));
    proc.threads
        .register(me.clone(), None)
        .map_err(|e| format!("registering the first thread: {e:?}"))?;
    proc.signals.register(me.clone(), state.sigmask, true);
    let code = run_thread(proc, vcpu, &me, state);
    proc.threads.finish(&me, code, None);
    proc.threads.wait()
}

/// Brings a reused vCPU up to date: what was posted to its last thread's mailbox, a TLB
/// flush, and a code flush if code changed anywhere while it was parked.
pub fn catch_up(
    proc: &Process,
    vcpu: &mut dyn Vcpu,
    old: &ThreadShared,
    seen: Gens,
) -> Result<(), BackendError> {
    old.apply_mail(vcpu)?;
    let now = proc.threads.gens();
    vcpu.invalidate(Invalidate {
        tlb: true,
        code: (now.1 != seen.1).then_some((0, crate::guest::layout::RAM_SIZE)),
    })
}
