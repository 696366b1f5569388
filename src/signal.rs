//! Signal state: dispositions, the mask, and pending signals with their siginfo. Signals
//! are acted upon synchronously, when the vCPU is stopped at an HVC (after each syscall
//! and on faults): a default action terminates or is ignored, a guest handler runs on an
//! rt_sigframe (see `sigframe`). Asynchronous delivery (kicking a running vCPU), other
//! threads, job control and sigaltstack belong to the signal actor, not built yet.

use std::sync::Weak;

pub use crate::sigframe::SigInfo;

pub const NSIG: usize = 64;

pub const SIGHUP: u32 = 1;
pub const SIGINT: u32 = 2;
pub const SIGQUIT: u32 = 3;
pub const SIGILL: u32 = 4;
pub const SIGTRAP: u32 = 5;
pub const SIGABRT: u32 = 6;
pub const SIGBUS: u32 = 7;
pub const SIGFPE: u32 = 8;
pub const SIGKILL: u32 = 9;
pub const SIGUSR1: u32 = 10;
pub const SIGSEGV: u32 = 11;
pub const SIGUSR2: u32 = 12;
pub const SIGPIPE: u32 = 13;
pub const SIGALRM: u32 = 14;
pub const SIGTERM: u32 = 15;
pub const SIGCHLD: u32 = 17;
pub const SIGCONT: u32 = 18;
pub const SIGSTOP: u32 = 19;
pub const SIGTSTP: u32 = 20;
pub const SIGTTIN: u32 = 21;
pub const SIGTTOU: u32 = 22;
pub const SIGURG: u32 = 23;
pub const SIGWINCH: u32 = 28;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

/// Guest `struct sigaction` as the kernel sees it on AArch64.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct KSigaction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// Where a signal is sent: the whole process (any thread that does not block it takes it)
/// or one thread (tkill, tgkill, a synchronous fault, SIGEV_THREAD_ID timers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Process,
    Thread(i32),
}

/// What the default action of a signal does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    /// Terminate with a core dump (the exit status is the same for us: 128+N).
    Core,
    Ignore,
    Stop,
    Continue,
}

pub fn default_action(sig: u32) -> DefaultAction {
    match sig {
        SIGCHLD | SIGURG | SIGWINCH => DefaultAction::Ignore,
        SIGCONT => DefaultAction::Continue,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => DefaultAction::Stop,
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV => DefaultAction::Core,
        24 | 25 | 31 => DefaultAction::Core, // SIGXCPU, SIGXFSZ, SIGSYS
        _ => DefaultAction::Terminate,
    }
}

pub fn sig_bit(sig: u32) -> u64 {
    1u64 << (sig - 1)
}

/// What the caller must do about a pending signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposal {
    /// The process dies of `sig`.
    Kill(u32),
    /// The default action of a stop signal: the caller stops the process
    /// (`jobctl::stop`).
    Stop(u32),
    /// Run the guest handler `act` for `info`; the thread's mask was `old_mask` and has
    /// already been set to the handler's.
    Handle {
        act: KSigaction,
        info: SigInfo,
        old_mask: u64,
    },
}

/// Told whenever the pending set changes (signalfd readiness). It is called with the
/// signal state locked, so it must not lock it again.
pub trait PendingWatcher: Send + Sync {
    fn pending_changed(&self, pending: u64);
}

#[derive(Debug)]
pub struct SignalState {
    pub actions: [KSigaction; NSIG],
    /// Process-wide pending set (blocked masks are per thread: `ThreadState::sigmask`).
    pub pending: u64,
    /// siginfo of each pending signal (standard signals do not queue).
    info: [SigInfo; NSIG],
    /// Live signalfds; dead ones are pruned on the next change.
    watchers: Vec<Weak<dyn PendingWatcher>>,
}

impl Default for SignalState {
    fn default() -> Self {
        SignalState {
            actions: [KSigaction::default(); NSIG],
            pending: 0,
            info: [SigInfo::default(); NSIG],
            watchers: Vec::new(),
        }
    }
}

impl SignalState {
    /// Queues `info.signo` (1..=64) for the process.
    pub fn raise(&mut self, info: SigInfo) {
        let sig = info.signo;
        if !(1..=NSIG as u32).contains(&sig) {
            return;
        }
        let before = self.pending;
        // A stop signal cancels a pending SIGCONT and vice versa (job control).
        self.pending &= !crate::jobctl::discarded_by(sig);
        if self.pending & sig_bit(sig) == 0 {
            self.pending |= sig_bit(sig);
            self.info[sig as usize - 1] = info;
        }
        if self.pending != before {
            self.notify();
        }
    }

    /// Registers `w` and tells it the current pending set.
    pub fn watch(&mut self, w: Weak<dyn PendingWatcher>) {
        self.watchers.push(w);
        self.notify();
    }

    fn notify(&mut self) {
        let pending = self.pending;
        self.watchers.retain(|w| match w.upgrade() {
            Some(w) => {
                w.pending_changed(pending);
                true
            }
            None => false,
        });
    }

    /// Dequeues the lowest pending signal in `set` (signalfd's read), whatever the mask.
    pub fn take_pending(&mut self, set: u64) -> Option<SigInfo> {
        let ready = self.pending & set;
        if ready == 0 {
            return None;
        }
        let sig = ready.trailing_zeros() + 1;
        self.pending &= !sig_bit(sig);
        let info = self.info[sig as usize - 1];
        self.notify();
        Some(info)
    }

    /// True if a synchronous fault `sig` can run a guest handler (installed and not
    /// blocked); otherwise Linux kills the process.
    pub fn fault_handled(&self, sig: u32, mask: u64) -> bool {
        let h = self.actions[sig as usize - 1].handler;
        h != SIG_DFL && h != SIG_IGN && mask & sig_bit(sig) == 0
    }

    /// Starts running the guest handler for `sig`: installs the handler's mask and, for
    /// SA_RESETHAND, the default disposition. Returns the action and the previous mask.
    /// `mask` is the running thread's.
    pub fn begin_handler(&mut self, sig: u32, mask: &mut u64) -> (KSigaction, u64) {
        let act = self.actions[sig as usize - 1];
        let old_mask = *mask;
        *mask = crate::sigframe::handler_mask(old_mask, &act, sig);
        if act.flags & crate::sigframe::SA_RESETHAND != 0 {
            self.actions[sig as usize - 1] = KSigaction::default();
        }
        (act, old_mask)
    }

    /// Takes the next pending, unblocked signal that needs action: a fatal default, or a
    /// guest handler to run (the handler's mask is installed here, atomically with the
    /// take). Ignored signals are discarded on the way.
    /// `mask` is the delivering thread's (a handler's mask is installed into it).
    pub fn take_deliverable(&mut self, mask: &mut u64) -> Option<Disposal> {
        if self.pending == 0 {
            return None;
        }
        let before = self.pending;
        let d = self.take_deliverable_inner(mask);
        if self.pending != before {
            self.notify();
        }
        d
    }

    fn take_deliverable_inner(&mut self, mask: &mut u64) -> Option<Disposal> {
        let unblockable = sig_bit(SIGKILL) | sig_bit(SIGSTOP);
        let ready = self.pending & (!*mask | unblockable);
        for sig in 1..=NSIG as u32 {
            if ready & sig_bit(sig) == 0 {
                continue;
            }
            let act = self.actions[sig as usize - 1];
            let handler = if sig == SIGKILL || sig == SIGSTOP {
                SIG_DFL
            } else {
                act.handler
            };
            match handler {
                SIG_IGN => self.pending &= !sig_bit(sig),
                SIG_DFL => {
                    self.pending &= !sig_bit(sig);
                    match default_action(sig) {
                        DefaultAction::Terminate | DefaultAction::Core => {
                            return Some(Disposal::Kill(sig))
                        }
                        DefaultAction::Stop => return Some(Disposal::Stop(sig)),
                        // The kernel continued the host process when SIGCONT was sent.
                        DefaultAction::Continue | DefaultAction::Ignore => {}
                    }
                }
                _ => {
                    self.pending &= !sig_bit(sig);
                    let info = self.info[sig as usize - 1];
                    let (act, old_mask) = self.begin_handler(sig, mask);
                    return Some(Disposal::Handle {
                        act,
                        info,
                        old_mask,
                    });
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Seen(std::sync::Mutex<Vec<u64>>);
    impl PendingWatcher for Seen {
        fn pending_changed(&self, pending: u64) {
            self.0.lock().unwrap().push(pending);
        }
    }

    #[test]
    fn watchers_see_every_change_and_take_pending_dequeues() {
        let mut s = SignalState::default();
        let seen = std::sync::Arc::new(Seen::default());
        let w: Weak<dyn PendingWatcher> = std::sync::Arc::downgrade(&seen) as _;
        s.watch(w);
        for signo in [SIGUSR2, SIGUSR1, SIGUSR1] {
            s.raise(SigInfo {
                signo,
                code: signo as i32,
                ..Default::default()
            });
        }
        let both = sig_bit(SIGUSR1) | sig_bit(SIGUSR2);
        assert_eq!(s.take_pending(sig_bit(SIGHUP)), None);
        assert_eq!(s.take_pending(both).map(|i| i.code), Some(SIGUSR1 as i32));
        assert_eq!(s.take_pending(both).map(|i| i.code), Some(SIGUSR2 as i32));
        assert_eq!(s.take_pending(both), None);
        // The repeated SIGUSR1 did not queue, so it changed nothing.
        let expected = vec![0, sig_bit(SIGUSR2), both, sig_bit(SIGUSR2), 0];
        assert_eq!(*seen.0.lock().unwrap(), expected);
        // Delivery (here: ignoring) is a change too; dead watchers are dropped.
        s.actions[SIGUSR1 as usize - 1].handler = SIG_IGN;
        s.raise(SigInfo {
            signo: SIGUSR1,
            ..Default::default()
        });
        assert_eq!(s.take_deliverable(&mut 0), None);
        assert_eq!(seen.0.lock().unwrap()[5..], [sig_bit(SIGUSR1), 0]);
        drop(seen);
        s.raise(SigInfo {
            signo: SIGUSR1,
            ..Default::default()
        });
        assert!(s.watchers.is_empty());
    }

    #[test]
    fn blocked_signal_fires_when_unblocked() {
        let mut s = SignalState::default();
        let mut mask: u64 = !0;
        let raise = |s: &mut SignalState, signo| {
            s.raise(SigInfo {
                signo,
                ..Default::default()
            })
        };
        raise(&mut s, SIGABRT);
        assert_eq!(s.take_deliverable(&mut mask), None);
        mask = 0;
        assert_eq!(s.take_deliverable(&mut mask), Some(Disposal::Kill(SIGABRT)));
        assert_eq!(s.pending, 0);
        raise(&mut s, SIGCHLD);
        assert_eq!(s.take_deliverable(&mut mask), None);
        assert_eq!(s.pending, 0);
        s.actions[SIGUSR1 as usize - 1].handler = SIG_IGN;
        raise(&mut s, SIGUSR1);
        assert_eq!(s.take_deliverable(&mut mask), None);
        s.actions[SIGUSR2 as usize - 1].handler = 0x1234;
        raise(&mut s, SIGUSR2);
        match s.take_deliverable(&mut mask) {
            Some(Disposal::Handle { act, old_mask, .. }) => {
                assert_eq!(act.handler, 0x1234);
                assert_eq!(old_mask, 0);
                assert_eq!(mask, sig_bit(SIGUSR2));
            }
            other => panic!("{other:?}"),
        }
        mask = !0;
        raise(&mut s, SIGKILL);
        assert_eq!(s.take_deliverable(&mut mask), Some(Disposal::Kill(SIGKILL)));
    }
}
