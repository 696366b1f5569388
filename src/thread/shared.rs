//! One thread's handle as the rest of the process sees it (`ThreadShared`): its tid, its
//! kick, its killed flag and its invalidation mailbox; and the EL1 registers every vCPU of
//! the process shares.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};

use super::pause::Gate;
use crate::backend::{BackendError, Invalidate, Kick, Vcpu};
use crate::signal::wakesig::{install_wake_handler, wake_signal};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

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
    /// The TLB generation this thread's vCPU last flushed at (written by its own thread;
    /// see `Threads::enter`).
    pub(super) seen_tlb: AtomicU64,
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

    /// Marks the thread killed (exit_group, a fatal signal): its loop stops at its next
    /// check.
    pub(super) fn mark_killed(&self) {
        self.killed.store(true, SeqCst);
    }

    /// The thread takes guest tid `tid` (a non-leader thread that execs takes the pid).
    pub(super) fn set_tid(&self, tid: i32) {
        self.tid.store(tid, SeqCst);
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
    pub(super) fn nudge(&self) {
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

    pub(super) fn post(&self, inval: Invalidate) {
        lock(&self.mail).merge(inval);
        self.has_mail.store(true, SeqCst);
    }

    pub(super) fn post_pause(&self, gate: Arc<Gate>) {
        *lock(&self.gate) = Some(gate);
        self.has_mail.store(true, SeqCst);
    }

    /// Applies invalidations other threads posted, and waits while a fork pauses the
    /// process (`thread::pause`). Called before every guest entry.
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

/// The calling host thread's kernel tid.
pub fn host_tid() -> i32 {
    nix::unistd::gettid().as_raw()
}
