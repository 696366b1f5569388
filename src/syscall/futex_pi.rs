//! Priority-inheritance futexes: FUTEX_LOCK_PI, LOCK_PI2, TRYLOCK_PI, UNLOCK_PI,
//! WAIT_REQUEUE_PI and CMP_REQUEUE_PI, with the futex word exactly as Linux keeps it:
//! the owner's guest tid in bits 0..29, FUTEX_OWNER_DIED (bit 30), FUTEX_WAITERS (bit 31).
//!
//! Why elfuse implements them itself instead of passing them to the host kernel (as the
//! other futex ops are, `futex`): the host kernel reads the owner tid from the word and
//! attaches its PI state to the host task with that tid, so a host PI futex is right only
//! while every guest tid is the host tid of the thread that runs it. That is not so today
//! (the main thread's guest tid is the pid, but it runs on the "vcpu0" host thread; a
//! non-leader execve takes the pid as its tid; a spawn-path fork child runs on a spawned
//! thread), and mixing host and elfuse waiters on one word cannot work either: the host
//! answers FUTEX_WAKE on a word it has PI state for with EINVAL. Translating the word in
//! place is impossible, since the C library's fast paths compare-and-swap the guest tid
//! in user space without a syscall. So the whole family is built here from plain host
//! futex waits and wakes on the same word. It is right whatever the tid mapping is, and
//! if guest tids become host tids everywhere nothing changes.
//!
//! What Linux shows and this keeps: an uncontended lock leaves the tid alone in the word;
//! a waiter sets FUTEX_WAITERS; UNLOCK_PI hands the lock straight to the first waiter of
//! this process (the word becomes `waiter | FUTEX_WAITERS`, no stealing in between);
//! EDEADLK for the owner locking again, EPERM for an unlock by a non-owner, ESRCH when the
//! tid in the word names no live thread, EAGAIN (EWOULDBLOCK) for a TRYLOCK_PI that would
//! block, OWNER_DIED kept by whoever takes a lock whose robust owner died; when a guest
//! thread ends owning a PI lock with waiters, the first waiter gets it (Linux's
//! exit_pi_state_list), with OWNER_DIED when the lock was on the robust list.
//!
//! Limits: no priority is inherited (the owner is not boosted: only SCHED_FIFO/RR threads
//! could tell, and those need privilege); waiters are queued in FIFO order, not by
//! priority; handoff and WAIT_REQUEUE_PI/CMP_REQUEUE_PI know the waiters of this process
//! only: a waiter in another process (a PTHREAD_PROCESS_SHARED lock) is woken when the
//! lock is released and takes it unless someone is quicker, and a non-robust lock whose
//! owner in another process dies keeps its remote waiters waiting.
//!
//! Waiters of LOCK_PI sleep on the guest word itself (host FUTEX_WAIT_BITSET with the bit
//! `tid % 32`), so a release in another process sharing the memory wakes them; a handoff
//! wakes the bit of the new owner. Waiters of WAIT_REQUEUE_PI sleep on a word of their own
//! (Linux lets no FUTEX_WAKE reach them either) until CMP_REQUEUE_PI gives them the lock
//! or moves them to the lock's queue.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::Arc;

use super::futex::host;
use super::{Ctx, SysResult};
use crate::errno::Errno;
use crate::process::Process;
use crate::thread::pitable::{first_locker, remove, Kind, Queues, Waiter};

pub const FUTEX_WAITERS: u32 = 0x8000_0000;
pub const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
pub const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
const FUTEX_WAIT_BITSET: u32 = 9;
const FUTEX_WAKE_BITSET: u32 = 10;
const FUTEX_PRIVATE_FLAG: u32 = 128;
const FUTEX_CLOCK_REALTIME: u32 = 256;
const MATCH_ANY: u32 = u32::MAX;

/// A requeue waiter's state word: waiting, woken owning the lock, moved to its queue.
const RQ_WAITING: u32 = 0;
const RQ_LOCKED: u32 = 1;
const RQ_REQUEUED: u32 = 2;

fn atomic<'a>(p: *mut u32) -> &'a AtomicU32 {
    // SAFETY: `p` is an aligned word of guest RAM checked against the guest's mappings
    // (guest RAM stays mapped for the life of the process); guest threads access it
    // atomically too.
    unsafe { &*p.cast::<AtomicU32>() }
}

fn bit(tid: u32) -> u32 {
    1 << (tid % 32)
}

fn flag(private: bool) -> u32 {
    if private {
        FUTEX_PRIVATE_FLAG
    } else {
        0
    }
}

/// Whether guest tid `tid` names a live thread, as Linux's lookup of the owner does: a
/// thread of this process, or any host task outside it (guest tids of other guest
/// processes are host tids, their leaders' the host pid). A host thread of this process
/// that runs no guest thread (elfuse's own, a parked vCPU) is no owner.
fn alive(proc: &Process, tid: u32) -> bool {
    let tid = tid as i32;
    if proc.threads.get(tid).is_some() {
        return true;
    }
    // SAFETY: signal 0 only checks that the task exists; no memory is passed.
    let ours = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, 0) } == 0;
    if ours {
        return false;
    }
    // SAFETY: as above.
    unsafe { libc::kill(tid, 0) == 0 || Errno::last() == Errno::EPERM }
}

/// An absolute timeout and the clock it is on (FUTEX_CLOCK_REALTIME or not).
#[derive(Clone, Copy)]
pub struct Deadline {
    ts: Option<libc::timespec>,
    realtime: bool,
}

impl Deadline {
    pub fn read(ctx: &Ctx, va: u64, realtime: bool) -> Result<Self, Errno> {
        let ts = if va == 0 {
            None
        } else {
            let [s, ns]: [i64; 2] = ctx.read_val(va)?;
            if s < 0 || !(0..1_000_000_000).contains(&ns) {
                return Err(Errno::EINVAL);
            }
            Some(libc::timespec {
                tv_sec: s,
                tv_nsec: ns,
            })
        };
        Ok(Deadline { ts, realtime })
    }

    /// Sleeps while `*p == val` (woken by a wake matching `bitset`): Ok, or the host's
    /// EAGAIN / ETIMEDOUT / EINTR.
    fn sleep(&self, p: *mut u32, private: bool, val: u32, bitset: u32) -> Result<(), Errno> {
        let op = FUTEX_WAIT_BITSET
            | flag(private)
            | if self.realtime {
                FUTEX_CLOCK_REALTIME
            } else {
                0
            };
        let tsp = self
            .ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        let r = host::futex(p, op, val, tsp as usize, std::ptr::null_mut(), bitset);
        if r < 0 {
            Err(Errno::last())
        } else {
            Ok(())
        }
    }

    /// [`Deadline::sleep`] for at most `RECHECK` at a time while the owner is a thread of
    /// this process (a timeout of the cap alone is a plain wake-up): the owner may end
    /// between its futex clean-up (`owner_exited`, which found no waiter yet) and leaving
    /// the thread registry, and the waiter must then see it gone (ESRCH), as Linux's
    /// handle_exit_race makes it.
    fn sleep_rechecking(
        &self,
        p: *mut u32,
        private: bool,
        val: u32,
        bitset: u32,
        local_owner: bool,
    ) -> Result<(), Errno> {
        const RECHECK: i64 = 10_000_000;
        if !local_owner {
            return self.sleep(p, private, val, bitset);
        }
        let clock = if self.realtime {
            libc::CLOCK_REALTIME
        } else {
            libc::CLOCK_MONOTONIC
        };
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec into `now`, a local.
        unsafe { libc::clock_gettime(clock, &mut now) };
        let ns = now.tv_nsec + RECHECK;
        let cap = libc::timespec {
            tv_sec: now.tv_sec + ns / 1_000_000_000,
            tv_nsec: ns % 1_000_000_000,
        };
        let capped =
            !matches!(self.ts, Some(t) if (t.tv_sec, t.tv_nsec) <= (cap.tv_sec, cap.tv_nsec));
        if !capped {
            return self.sleep(p, private, val, bitset);
        }
        let short = Deadline {
            ts: Some(cap),
            realtime: self.realtime,
        };
        match short.sleep(p, private, val, bitset) {
            Err(Errno::ETIMEDOUT) => Ok(()),
            r => r,
        }
    }
}

fn wake(p: *mut u32, private: bool, n: u32, bitset: u32) {
    host::futex(
        p,
        FUTEX_WAKE_BITSET | flag(private),
        n,
        0,
        std::ptr::null_mut(),
        bitset,
    );
}

/// FUTEX_LOCK_PI / LOCK_PI2 / TRYLOCK_PI on the word at guest `va` (host `p`).
pub fn lock(
    ctx: &Ctx,
    va: u64,
    p: *mut u32,
    private: bool,
    dl: Deadline,
    trylock: bool,
) -> SysResult {
    lock_as(
        ctx.proc,
        ctx.thread.tid as u32,
        va,
        p,
        private,
        dl,
        trylock,
        false,
    )
}

/// The locking loop; `queued`: the caller is already in the lock's queue (requeued by
/// CMP_REQUEUE_PI), so the tid in the word means it was handed the lock.
#[allow(clippy::too_many_arguments)]
fn lock_as(
    proc: &Process,
    me: u32,
    va: u64,
    p: *mut u32,
    private: bool,
    dl: Deadline,
    trylock: bool,
    mut queued: bool,
) -> SysResult {
    let w = atomic(p);
    let table = &proc.threads.futex_pi;
    let mut slept = queued;
    loop {
        let v = w.load(SeqCst);
        let owner = v & FUTEX_TID_MASK;
        if owner == me {
            if queued {
                remove(&mut table.lock(), va, me);
                return Ok(0);
            }
            return Err(Errno::EDEADLK);
        }
        if owner == 0 {
            let mut q = table.lock();
            let others = q.get(&va).is_some_and(|l| {
                l.iter()
                    .any(|x| x.tid != me && matches!(x.kind, Kind::Lock))
            });
            let waiters = if slept || others || v & FUTEX_WAITERS != 0 {
                FUTEX_WAITERS
            } else {
                0
            };
            let new = me | (v & FUTEX_OWNER_DIED) | waiters;
            if w.compare_exchange(v, new, SeqCst, SeqCst).is_ok() {
                if queued {
                    remove(&mut q, va, me);
                }
                return Ok(0);
            }
            continue;
        }
        // Linux sets WAITERS before it looks the owner up (and leaves it on failure).
        if v & FUTEX_WAITERS == 0
            && w.compare_exchange(v, v | FUTEX_WAITERS, SeqCst, SeqCst)
                .is_err()
        {
            continue;
        }
        if !alive(proc, owner) {
            // The owner may have released it meanwhile (Linux's handle_exit_race).
            if w.load(SeqCst) != v | FUTEX_WAITERS {
                continue;
            }
            if queued {
                remove(&mut table.lock(), va, me);
            }
            return Err(Errno::ESRCH);
        }
        if trylock {
            return Err(Errno::EAGAIN);
        }
        if !queued {
            table.lock().entry(va).or_default().push(Waiter {
                tid: me,
                private,
                kind: Kind::Lock,
            });
            queued = true;
            // Look again: the owner may have released it before it could see us.
            continue;
        }
        let local_owner = proc.threads.get(owner as i32).is_some();
        match dl.sleep_rechecking(p, private, v | FUTEX_WAITERS, bit(me), local_owner) {
            Ok(()) | Err(Errno::EAGAIN) => slept = true,
            Err(e) => {
                // Timed out or interrupted, unless the lock was handed over meanwhile.
                let mut q = table.lock();
                if w.load(SeqCst) & FUTEX_TID_MASK == me {
                    remove(&mut q, va, me);
                    return Ok(0);
                }
                remove(&mut q, va, me);
                return Err(e);
            }
        }
    }
}

/// FUTEX_UNLOCK_PI: only the owner may; the first waiter of this process gets the lock,
/// else the word goes to 0 and a waiter elsewhere (another process) is woken.
pub fn unlock(ctx: &Ctx, va: u64, p: *mut u32, private: bool) -> SysResult {
    let me = ctx.thread.tid as u32;
    let w = atomic(p);
    loop {
        let v = w.load(SeqCst);
        if v & FUTEX_TID_MASK != me {
            return Err(Errno::EPERM);
        }
        let mut q = ctx.proc.threads.futex_pi.lock();
        if handoff(&mut q, va, p, v, 0) {
            return Ok(0);
        }
        if w.compare_exchange(v, 0, SeqCst, SeqCst).is_err() {
            continue;
        }
        drop(q);
        if v & FUTEX_WAITERS != 0 {
            wake(p, private, 1, MATCH_ANY);
        }
        return Ok(0);
    }
}

/// Gives the lock whose word holds `v` to the first waiter queued on `va`, with the
/// bits `extra`: false when nobody waits here or the word changed.
fn handoff(q: &mut Queues, va: u64, p: *mut u32, v: u32, extra: u32) -> bool {
    let Some((next, private)) = first_locker(q, va) else {
        return false;
    };
    let new = next | FUTEX_WAITERS | extra;
    if atomic(p).compare_exchange(v, new, SeqCst, SeqCst).is_err() {
        return false;
    }
    remove(q, va, next);
    wake(p, private, i32::MAX as u32, bit(next));
    true
}

/// FUTEX_WAIT_REQUEUE_PI: waits on `va` (while it holds `val`) until CMP_REQUEUE_PI
/// gives it the PI lock at `va2`, directly or after queueing it there.
pub fn wait_requeue(
    ctx: &Ctx,
    (va, p): (u64, *mut u32),
    val: u32,
    (va2, p2): (u64, *mut u32),
    private: bool,
    dl: Deadline,
) -> SysResult {
    if va == va2 {
        return Err(Errno::EINVAL);
    }
    let me = ctx.thread.tid as u32;
    let table = &ctx.proc.threads.futex_pi;
    let state = Arc::new(AtomicU32::new(RQ_WAITING));
    {
        let mut q = table.lock();
        if atomic(p).load(SeqCst) != val {
            return Err(Errno::EAGAIN);
        }
        q.entry(va).or_default().push(Waiter {
            tid: me,
            private,
            kind: Kind::Requeue {
                target: va2,
                state: state.clone(),
            },
        });
    }
    loop {
        let s = state.load(SeqCst);
        if s != RQ_WAITING {
            break;
        }
        if let Err(e @ (Errno::ETIMEDOUT | Errno::EINTR)) =
            dl.sleep(state.as_ptr(), true, RQ_WAITING, MATCH_ANY)
        {
            let mut q = table.lock();
            if state.load(SeqCst) == RQ_WAITING {
                remove(&mut q, va, me);
                return Err(e);
            }
        }
    }
    if state.load(SeqCst) == RQ_LOCKED {
        return Ok(0);
    }
    // Requeued: now a waiter of the PI lock. Linux cannot restart this half, and answers
    // a signal with EWOULDBLOCK.
    match lock_as(ctx.proc, me, va2, p2, private, dl, false, true) {
        Err(Errno::EINTR) => Err(Errno::EAGAIN),
        r => r,
    }
}

/// FUTEX_CMP_REQUEUE_PI: if `va` holds `cmp`, the first requeue waiter gets the PI lock
/// at `va2` if it is free, and up to `nr_requeue` of them are queued on it; returns how
/// many were woken or queued.
pub fn cmp_requeue(
    ctx: &Ctx,
    (va, p): (u64, *mut u32),
    nr_wake: u32,
    nr_requeue: i32,
    (va2, p2): (u64, *mut u32),
    cmp: u32,
) -> SysResult {
    if va == va2 || nr_wake != 1 || nr_requeue < 0 {
        return Err(Errno::EINVAL);
    }
    let table = &ctx.proc.threads.futex_pi;
    let mut q = table.lock();
    if atomic(p).load(SeqCst) != cmp {
        return Err(Errno::EAGAIN);
    }
    let waiting = q.get(&va).map_or(0, |l| l.len());
    let take = waiting.min(nr_requeue as usize + 1);
    if take == 0 {
        return Ok(0);
    }
    // Linux refuses a queue that holds other kinds of waiters or another target.
    let ok = q.get(&va).unwrap()[..take]
        .iter()
        .all(|w| matches!(&w.kind, Kind::Requeue { target, .. } if *target == va2));
    if !ok {
        return Err(Errno::EINVAL);
    }
    let w2 = atomic(p2);
    let top = q.get(&va).unwrap()[0].tid;
    // Try the lock for the first waiter.
    let mut got = false;
    loop {
        let v = w2.load(SeqCst);
        let owner = v & FUTEX_TID_MASK;
        if owner == 0 {
            let more = if take > 1 || waiting > 1 || v & FUTEX_WAITERS != 0 {
                FUTEX_WAITERS
            } else {
                0
            };
            if w2
                .compare_exchange(v, top | (v & FUTEX_OWNER_DIED) | more, SeqCst, SeqCst)
                .is_ok()
            {
                got = true;
                break;
            }
            continue;
        }
        if owner == top {
            return Err(Errno::EDEADLK);
        }
        if !alive(ctx.proc, owner) {
            return Err(Errno::ESRCH);
        }
        if v & FUTEX_WAITERS != 0
            || w2
                .compare_exchange(v, v | FUTEX_WAITERS, SeqCst, SeqCst)
                .is_ok()
        {
            break;
        }
    }
    let list = q.get_mut(&va).unwrap();
    let moved: Vec<Waiter> = list.drain(..take).collect();
    if list.is_empty() {
        q.remove(&va);
    }
    let mut n = 0;
    for (i, w) in moved.into_iter().enumerate() {
        let Kind::Requeue { state, .. } = w.kind else {
            unreachable!()
        };
        if i == 0 && got {
            state.store(RQ_LOCKED, SeqCst);
        } else if i < nr_requeue as usize + usize::from(!got) {
            q.entry(va2).or_default().push(Waiter {
                tid: w.tid,
                private: w.private,
                kind: Kind::Lock,
            });
            state.store(RQ_REQUEUED, SeqCst);
        } else {
            // Beyond the count: it stays a requeue waiter of `va`.
            q.entry(va).or_default().push(Waiter {
                tid: w.tid,
                private: w.private,
                kind: Kind::Requeue { target: va2, state },
            });
            continue;
        }
        wake(state.as_ptr(), true, 1, MATCH_ANY);
        n += 1;
    }
    Ok(n)
}

/// A guest thread `tid` has ended (Linux's exit_pi_state_list): every PI lock of this
/// process it still owns and that has waiters here goes to its first waiter.
pub fn owner_exited(proc: &Process, tid: i32) {
    let mut q = proc.threads.futex_pi.lock();
    let keys: Vec<u64> = q.keys().copied().collect();
    for va in keys {
        let Some(p) = word_of(proc, va) else {
            continue;
        };
        let v = atomic(p).load(SeqCst);
        if v & FUTEX_TID_MASK == tid as u32 {
            handoff(&mut q, va, p, v, v & FUTEX_OWNER_DIED);
        }
    }
}

/// A robust PI lock at `va` owned by the dead thread `tid` (Linux's handle_futex_death
/// for a PI entry, then its handoff): the first waiter here gets it with OWNER_DIED; with
/// none here the word becomes OWNER_DIED (keeping WAITERS) and a waiter elsewhere is
/// woken to take it.
pub fn robust_death(proc: &Process, va: u64, tid: i32) {
    let Some(p) = word_of(proc, va) else {
        return;
    };
    let w = atomic(p);
    let mut q = proc.threads.futex_pi.lock();
    loop {
        let v = w.load(SeqCst);
        if v & FUTEX_TID_MASK != tid as u32 {
            return;
        }
        if first_locker(&q, va).is_some() {
            if handoff(&mut q, va, p, v, FUTEX_OWNER_DIED) {
                return;
            }
            continue;
        }
        let new = (v & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
        if w.compare_exchange(v, new, SeqCst, SeqCst).is_ok() {
            drop(q);
            if v & FUTEX_WAITERS != 0 {
                // Its waiters are elsewhere; which flag they wait with is unknown.
                wake(p, false, 1, MATCH_ANY);
                wake(p, true, 1, MATCH_ANY);
            }
            return;
        }
    }
}

fn word_of(proc: &Process, va: u64) -> Option<*mut u32> {
    if !va.is_multiple_of(4) || proc.mm.check_user(va, 4, true).is_err() {
        return None;
    }
    Some(proc.ram.ptr(va, 4).cast())
}
