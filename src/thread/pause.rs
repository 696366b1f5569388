//! Stopping every vCPU of a process but one, for as long as a fork captures the process.
//!
//! Linux's fork copies the address space as one step; elfuse's capture is several (RAM
//! snapshot or host fork(), registers, VMAs, fd table), so no other vCPU may run guest
//! code meanwhile. `Threads::pause_others` posts a [`Gate`] to every other thread's
//! mailbox and kicks each one out of guest code (a kick returns once that vCPU is out of
//! it or not in it). Every vCPU loop reads its mailbox before it enters the guest
//! (`ThreadShared::apply_mail`) and waits there at a posted gate until it opens. A thread
//! blocked in a host syscall is not waited for: it waits at the gate when it comes back.
//! Threads registered while the pause lasts get the gate too. Dropping the [`Paused`]
//! guard opens the gate.
//!
//! Pauses (forks) are serialised per process (`Threads::fork_lock`); a forking thread
//! takes that lock before anything else, so two threads forking at once take turns.

use std::sync::{Condvar, Mutex};

/// What paused threads wait at.
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    /// Blocks until the gate opens.
    pub fn wait(&self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        while !*open {
            open = self.cv.wait(open).unwrap_or_else(|p| p.into_inner());
        }
    }

    pub fn open(&self) {
        *self.open.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cv.notify_all();
    }
}
