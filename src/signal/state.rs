//! The signal data and Linux's rules over it, as plain single-threaded code (the signal
//! actor owns the only instance of a process; tests drive it directly).
//!
//! - Dispositions: one `KSigaction` per signal, shared by every thread (CLONE_SIGHAND).
//! - Pending: a process-directed queue (kill, sigqueue, timers) and one queue per thread
//!   (tkill, tgkill, rt_tgsigqueueinfo). A standard signal is pending at most once per
//!   queue (a second one is merged); a real-time one (SIGRTMIN..=64) queues every
//!   instance with its siginfo, as Linux.
//! - Each thread's blocked mask. The thread's `ThreadState::sigmask` is a copy kept equal
//!   to it by the replies of the messages that change it.
//!
//! A signal is *deliverable* to a thread when it is pending for the thread or for the
//! process and the thread does not block it. Delivery takes the thread's own signals
//! first, then the process's, lowest number first (Linux's `dequeue_signal`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Weak;

use super::{
    default_action, sig_bit, DefaultAction, Disposal, KSigaction, SigInfo, Target, NSIG, SIGKILL,
    SIGRTMIN, SIGSTOP, SIG_DFL, SIG_IGN, UNBLOCKABLE,
};
use crate::errno::Errno;

/// Told whenever the pending sets change (signalfd readiness). Called by the actor while
/// it handles a message, so it must not message the actor.
pub trait PendingWatcher: Send + Sync {
    fn pending_changed(&self, pending: u64);
}

/// At most this many signals queued per queue (Linux counts RLIMIT_SIGPENDING per user;
/// a sender past it gets EAGAIN for real-time signals).
const MAX_QUEUED: usize = 4096;

/// One pending set with the siginfo of each instance.
#[derive(Debug, Default, Clone)]
pub struct Queue {
    set: u64,
    items: VecDeque<SigInfo>,
}

impl Queue {
    /// Queues `info`; a standard signal already pending is merged (Ok, nothing queued).
    fn push(&mut self, info: SigInfo) -> Result<(), Errno> {
        let bit = sig_bit(info.signo);
        if info.signo < SIGRTMIN && self.set & bit != 0 {
            return Ok(());
        }
        if self.items.len() >= MAX_QUEUED {
            return Err(Errno::EAGAIN);
        }
        self.set |= bit;
        self.items.push_back(info);
        Ok(())
    }

    /// Takes the oldest instance of `sig`.
    fn take(&mut self, sig: u32) -> Option<SigInfo> {
        let i = self.items.iter().position(|x| x.signo == sig)?;
        let info = self.items.remove(i);
        if !self.items.iter().any(|x| x.signo == sig) {
            self.set &= !sig_bit(sig);
        }
        info
    }

    /// Drops every instance of `sig`.
    fn discard(&mut self, sig: u32) {
        self.items.retain(|x| x.signo != sig);
        self.set &= !sig_bit(sig);
    }
}

/// The lowest signal in `set` (Linux also takes the synchronous ones first; they are
/// delivered directly on faults here).
fn lowest(set: u64) -> Option<u32> {
    (set != 0).then(|| set.trailing_zeros() + 1)
}

#[derive(Debug, Default, Clone)]
struct ThreadSig {
    mask: u64,
    pending: Queue,
    /// Chosen to act on a signal that it has not taken yet: the actor interrupts its host
    /// syscall again until it does (a wake-up can land just before the thread blocks).
    owed: bool,
}

#[derive(Debug)]
pub struct SignalState {
    pub actions: [KSigaction; NSIG],
    shared: Queue,
    threads: BTreeMap<i32, ThreadSig>,
    /// How many threads have a signal of their own pending: with none (and nothing
    /// process-directed), the questions asked at every actor message (`any_deliverable`,
    /// `owed`, `pending_anywhere`) are answered without walking ten thousand threads.
    pending_threads: usize,
    /// The group leader (preferred target of process-directed signals).
    leader: i32,
    watchers: Vec<Weak<dyn PendingWatcher>>,
}

impl Default for SignalState {
    fn default() -> Self {
        SignalState {
            actions: [KSigaction::default(); NSIG],
            shared: Queue::default(),
            threads: BTreeMap::new(),
            pending_threads: 0,
            leader: 0,
            watchers: Vec::new(),
        }
    }
}

/// How a mask changes (rt_sigprocmask's `how`, plus handler entry and sigreturn).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskOp {
    Block(u64),
    Unblock(u64),
    Set(u64),
}

impl SignalState {
    /// A state with these dispositions (fork children, spawn children) and nothing
    /// pending.
    pub fn with_actions(actions: [KSigaction; NSIG]) -> Self {
        SignalState {
            actions,
            ..Default::default()
        }
    }

    pub fn add_thread(&mut self, tid: i32, mask: u64, leader: bool) {
        let t = self.threads.entry(tid).or_default();
        t.mask = mask & !UNBLOCKABLE;
        if leader || self.leader == 0 {
            self.leader = tid;
        }
    }

    /// The thread is gone: its own pending signals go with it.
    pub fn remove_thread(&mut self, tid: i32) {
        if let Some(t) = self.threads.remove(&tid) {
            self.pending_threads -= usize::from(t.pending.set != 0);
            self.notify();
        }
    }

    /// Runs `f` on `tid`'s own queue, keeping `pending_threads` right.
    fn own_queue<R>(&mut self, tid: i32, f: impl FnOnce(&mut Queue) -> R) -> Option<R> {
        let t = self.threads.get_mut(&tid)?;
        let was = t.pending.set != 0;
        let r = f(&mut t.pending);
        let now = t.pending.set != 0;
        self.pending_threads = self.pending_threads + usize::from(now) - usize::from(was);
        Some(r)
    }

    /// Recounts `pending_threads` after an edit of every thread's queue.
    fn recount(&mut self) {
        self.pending_threads = self.threads.values().filter(|t| t.pending.set != 0).count();
    }

    /// Nothing is pending anywhere in the process.
    fn nothing_pending(&self) -> bool {
        self.shared.set == 0 && self.pending_threads == 0
    }

    pub fn has_thread(&self, tid: i32) -> bool {
        self.threads.contains_key(&tid)
    }

    pub fn mask(&self, tid: i32) -> u64 {
        self.threads.get(&tid).map_or(0, |t| t.mask)
    }

    /// Changes `tid`'s mask; returns the old one. SIGKILL and SIGSTOP stay unblocked.
    pub fn set_mask(&mut self, tid: i32, op: MaskOp) -> u64 {
        let t = self.threads.entry(tid).or_default();
        let old = t.mask;
        t.mask = match op {
            MaskOp::Block(s) => old | s,
            MaskOp::Unblock(s) => old & !s,
            MaskOp::Set(s) => s,
        } & !UNBLOCKABLE;
        old
    }

    /// Signals pending for `tid` or for the process (rt_sigpending reports this & mask).
    pub fn pending_for(&self, tid: i32) -> u64 {
        self.shared.set | self.threads.get(&tid).map_or(0, |t| t.pending.set)
    }

    /// What `tid` could act on now.
    pub fn deliverable(&self, tid: i32) -> u64 {
        self.threads.get(&tid).map_or(0, |t| {
            (t.pending.set | self.shared.set) & (!t.mask | UNBLOCKABLE)
        })
    }

    /// Some thread has a signal it could act on (the shim's SIGTIMER attention bit).
    pub fn any_deliverable(&self) -> bool {
        !self.nothing_pending()
            && self
                .threads
                .values()
                .any(|t| (t.pending.set | self.shared.set) & (!t.mask | UNBLOCKABLE) != 0)
    }

    /// The signals every thread blocks (a process-directed one of them stays pending).
    pub fn blocked_by_all(&self) -> u64 {
        self.threads.values().fold(!0, |a, t| a & t.mask)
    }

    /// Whether `signo` is still pending where a signal for `target` is queued (a timer's
    /// previous signal: then the expiry only counts an overrun).
    pub fn is_pending(&self, target: Target, signo: u32) -> bool {
        let set = match target {
            Target::Thread(tid) => self.pending_for(tid),
            Target::Process => self.shared.set,
        };
        set & sig_bit(signo) != 0
    }

    /// Every signal pending anywhere in the process (signalfd readiness).
    pub fn pending_anywhere(&self) -> u64 {
        if self.pending_threads == 0 {
            return self.shared.set;
        }
        self.threads
            .values()
            .fold(self.shared.set, |a, t| a | t.pending.set)
    }

    /// Threads chosen for a signal that have not taken it yet and still could.
    pub fn owed(&self) -> Vec<i32> {
        if self.nothing_pending() {
            return Vec::new();
        }
        self.threads
            .iter()
            .filter(|(&tid, t)| t.owed && self.deliverable(tid) != 0)
            .map(|(&tid, _)| tid)
            .collect()
    }

    fn ignored(&self, sig: u32) -> bool {
        if sig == SIGKILL || sig == SIGSTOP {
            return false;
        }
        match self.actions[sig as usize - 1].handler {
            SIG_IGN => true,
            SIG_DFL => default_action(sig) == DefaultAction::Ignore,
            _ => false,
        }
    }

    /// Queues a signal. Returns the thread that must notice it (kick it, interrupt its
    /// host call), if one can act on it now. ESRCH: no such thread; EAGAIN: queue full.
    pub fn send(&mut self, target: Target, info: SigInfo) -> Result<Option<i32>, Errno> {
        let sig = info.signo;
        if !(1..=NSIG as u32).contains(&sig) {
            return Err(Errno::EINVAL);
        }
        let bit = sig_bit(sig);
        // A stop signal cancels a pending SIGCONT and vice versa (job control), in every
        // queue, as Linux's prepare_signal.
        let cancel = crate::signal::jobctl::discarded_by(sig);
        if cancel != 0 {
            for q in std::iter::once(&mut self.shared)
                .chain(self.threads.values_mut().map(|t| &mut t.pending))
            {
                for s in 1..=NSIG as u32 {
                    if cancel & sig_bit(s) != 0 {
                        q.discard(s);
                    }
                }
            }
            self.recount();
        }
        // Linux drops an ignored signal at once unless the target blocks it (the handler
        // may change before it is unblocked).
        let probe = match target {
            Target::Thread(tid) => tid,
            Target::Process => self.leader,
        };
        let chosen = match target {
            Target::Thread(tid) => {
                let t = self.threads.get(&tid).ok_or(Errno::ESRCH)?;
                if self.ignored(sig) && t.mask & bit == 0 {
                    return Ok(None);
                }
                let mask = t.mask;
                self.own_queue(tid, |q| q.push(info))
                    .ok_or(Errno::ESRCH)??;
                (mask & bit == 0 || bit & UNBLOCKABLE != 0).then_some(tid)
            }
            Target::Process => {
                if self.ignored(sig) && self.mask(probe) & bit == 0 {
                    return Ok(None);
                }
                self.shared.push(info)?;
                self.choose(bit)
            }
        };
        if let Some(tid) = chosen {
            if let Some(t) = self.threads.get_mut(&tid) {
                t.owed = true;
            }
        }
        self.notify();
        Ok(chosen)
    }

    /// Linux's complete_signal: the leader if it does not block the signal, else the
    /// first thread that does not.
    fn choose(&self, bit: u64) -> Option<i32> {
        let wants = |t: &ThreadSig| t.mask & bit == 0 || bit & UNBLOCKABLE != 0;
        if self.threads.get(&self.leader).is_some_and(wants) {
            return Some(self.leader);
        }
        self.threads
            .iter()
            .find(|(_, t)| wants(t))
            .map(|(&tid, _)| tid)
    }

    /// Changes a disposition; returns the old one. Setting SIG_IGN (or SIG_DFL for a
    /// signal whose default is to ignore) discards what is pending, as Linux.
    pub fn set_action(&mut self, sig: u32, new: Option<KSigaction>) -> KSigaction {
        let old = self.actions[sig as usize - 1];
        if let Some(n) = new {
            self.actions[sig as usize - 1] = n;
            if self.ignored(sig) {
                self.shared.discard(sig);
                self.threads
                    .values_mut()
                    .for_each(|t| t.pending.discard(sig));
                self.recount();
                self.notify();
            }
        }
        old
    }

    /// execve: handlers go back to SIG_DFL, ignored signals stay ignored.
    pub fn reset_for_exec(&mut self) {
        for a in self.actions.iter_mut() {
            let ignored = a.handler == SIG_IGN;
            *a = KSigaction::default();
            if ignored {
                a.handler = SIG_IGN;
            }
        }
    }

    /// Dequeues the lowest signal in `set` pending for `tid` (its own first, then the
    /// process's), whatever the mask: rt_sigtimedwait and signalfd.
    pub fn dequeue(&mut self, tid: i32, set: u64) -> Option<SigInfo> {
        let own = self.threads.get(&tid).map_or(0, |t| t.pending.set) & set;
        let info = match lowest(own) {
            Some(sig) => self.own_queue(tid, |q| q.take(sig))?,
            None => {
                let sig = lowest(self.shared.set & set)?;
                self.shared.take(sig)
            }
        };
        self.notify();
        info
    }

    /// True if a synchronous fault `sig` can run a guest handler (installed and not
    /// blocked); otherwise Linux kills the process.
    pub fn fault_handled(&self, sig: u32, mask: u64) -> bool {
        let h = self.actions[sig as usize - 1].handler;
        h != SIG_DFL && h != SIG_IGN && mask & sig_bit(sig) == 0
    }

    /// Starts running the guest handler for `sig` on `tid`: installs the handler's mask
    /// and, for SA_RESETHAND, the default disposition. Returns the action and the
    /// previous mask.
    pub fn begin_handler(&mut self, tid: i32, sig: u32) -> (KSigaction, u64) {
        let act = self.actions[sig as usize - 1];
        let old = self.mask(tid);
        let new = super::handler_mask(old, &act, sig);
        self.set_mask(tid, MaskOp::Set(new));
        if act.flags & super::SA_RESETHAND != 0 {
            self.actions[sig as usize - 1] = KSigaction::default();
        }
        (act, old)
    }

    /// Takes `tid`'s next deliverable signal that needs action: a fatal default, or a
    /// guest handler to run (its mask installed here, atomically with the take). Ignored
    /// signals are discarded on the way.
    pub fn take_deliverable(&mut self, tid: i32) -> Option<Disposal> {
        let d = self.take_inner(tid);
        if d.is_none() {
            if let Some(t) = self.threads.get_mut(&tid) {
                t.owed = false;
            }
        }
        d
    }

    fn take_inner(&mut self, tid: i32) -> Option<Disposal> {
        loop {
            let t = self.threads.get(&tid)?;
            let allowed = !t.mask | UNBLOCKABLE;
            let info = match lowest(t.pending.set & allowed) {
                Some(sig) => self.own_queue(tid, |q| q.take(sig))?,
                None => {
                    let sig = lowest(self.shared.set & allowed)?;
                    self.shared.take(sig)
                }
            }?;
            self.notify();
            let sig = info.signo;
            let handler = if sig == SIGKILL || sig == SIGSTOP {
                SIG_DFL
            } else {
                self.actions[sig as usize - 1].handler
            };
            match handler {
                SIG_IGN => {}
                SIG_DFL => match default_action(sig) {
                    DefaultAction::Terminate | DefaultAction::Core => {
                        return Some(Disposal::Kill(sig))
                    }
                    DefaultAction::Stop => return Some(Disposal::Stop(sig)),
                    // The kernel continued the host process when SIGCONT was sent.
                    DefaultAction::Continue | DefaultAction::Ignore => {}
                },
                _ => {
                    let (act, old_mask) = self.begin_handler(tid, sig);
                    return Some(Disposal::Handle {
                        act,
                        info,
                        old_mask,
                    });
                }
            }
        }
    }

    /// Registers `w` and tells it the current pending set.
    pub fn watch(&mut self, w: Weak<dyn PendingWatcher>) {
        self.watchers.push(w);
        self.notify();
    }

    /// Tells every live watcher the pending set (dead ones are dropped).
    pub fn notify(&mut self) {
        if self.watchers.is_empty() {
            return;
        }
        let pending = self.pending_anywhere();
        self.watchers.retain(|w| match w.upgrade() {
            Some(w) => {
                w.pending_changed(pending);
                true
            }
            None => false,
        });
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
