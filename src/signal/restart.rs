//! Interrupted system calls: Linux's restart rules.
//!
//! A blocking call that a signal interrupted returns one of the kernel-internal codes of
//! `errno` (ERESTARTSYS...). Most handlers just see the host call fail with EINTR;
//! [`restart_code`] says what that EINTR means for each call. Once the vCPU loop knows
//! whether a handler runs and with which flags, [`apply`] turns the code into -EINTR for
//! the guest or into a restart: the PC goes back to the `SVC` (ELR_EL1 - 4) with X0 =
//! the call's original first argument; ERESTART_RESTARTBLOCK restarts as
//! `restart_syscall` (X8 = 128), which resumes from the thread's `RestartBlock`.

use crate::backend::{BackendError, Reg, SysReg, Vcpu};
use crate::errno::Errno;
use crate::signal::KSigaction;
use crate::syscall::facts::Restart;

pub const SA_RESTART: u64 = 0x1000_0000;
const NR_RESTART_SYSCALL: u64 = 128;

/// A syscall that returned a restart code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interrupted {
    pub code: Errno,
    pub orig_x0: u64,
}

/// What the guest's EINTR from a host call means for a call whose `restart` fact (its
/// syscall table row) is `r` (None: it stays EINTR). (Socket calls decide themselves,
/// per the socket's timeout: `syscall::net::intr`.)
pub fn restart_code(r: Restart, a: &[u64; 6]) -> Option<Errno> {
    const FUTEX_CMD: u64 = 0x7f;
    const FUTEX_WAIT: u64 = 0;
    const FUTEX_WAIT_BITSET: u64 = 9;
    match r {
        Restart::No => None,
        Restart::Sys => Some(Errno::ERESTARTSYS),
        Restart::NoHand => Some(Errno::ERESTARTNOHAND),
        Restart::Futex => match a[1] & FUTEX_CMD {
            // With a timeout Linux resumes the wait with the time left (a restart block);
            // here the wait restarts with its original timeout argument (exact for the
            // absolute FUTEX_WAIT_BITSET timeouts glibc and musl use).
            FUTEX_WAIT | FUTEX_WAIT_BITSET if a[3] != 0 => Some(Errno::ERESTARTNOHAND),
            FUTEX_WAIT | FUTEX_WAIT_BITSET => Some(Errno::ERESTARTSYS),
            // LOCK_PI, LOCK_PI2 (absolute timeouts) and WAIT_REQUEUE_PI before it was
            // requeued (after, it answers EAGAIN itself) always restart.
            6 | 13 | 11 => Some(Errno::ERESTARTNOINTR),
            _ => None,
        },
    }
}

/// Maps a raw return value: -EINTR becomes the call's restart code.
pub fn classify(r: Restart, a: &[u64; 6], ret: u64) -> (u64, Option<Interrupted>) {
    let code = match -(ret as i64) {
        4 => match restart_code(r, a) {
            Some(c) => c,
            None => return (ret, None),
        },
        512..=516 => Errno(-(ret as i64) as i32),
        _ => return (ret, None),
    };
    (
        (-(code.0 as i64)) as u64,
        Some(Interrupted {
            code,
            orig_x0: a[0],
        }),
    )
}

/// Resolves `i` once delivery decided: `handler` is the action of the handler about to
/// run (its frame is built after this), None if no handler runs.
pub fn apply(
    vcpu: &mut dyn Vcpu,
    i: Interrupted,
    handler: Option<&KSigaction>,
) -> Result<(), BackendError> {
    let restart = match (i.code, handler) {
        (Errno::ERESTARTNOINTR, _) | (_, None) => true,
        (Errno::ERESTARTSYS, Some(act)) => act.flags & SA_RESTART != 0,
        _ => false,
    };
    if !restart {
        return vcpu.set_reg(Reg::X(0), (-(Errno::EINTR.0 as i64)) as u64);
    }
    let elr = vcpu.sys_reg(SysReg::ElrEl1)?;
    vcpu.set_sys_reg(SysReg::ElrEl1, elr - 4)?;
    vcpu.set_reg(Reg::X(0), i.orig_x0)?;
    if i.code == Errno::ERESTART_RESTARTBLOCK {
        vcpu.set_reg(Reg::X(8), NR_RESTART_SYSCALL)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eintr_becomes_the_calls_restart_code() {
        let neg = |e: Errno| (-(e.0 as i64)) as u64;
        let a = [3, 0, 0, 0, 0, 0];
        let (r, i) = classify(Restart::Sys, &a, neg(Errno::EINTR));
        assert_eq!(r, neg(Errno::ERESTARTSYS));
        assert_eq!(i.map(|i| i.orig_x0), Some(3));
        assert_eq!(
            classify(Restart::NoHand, &a, neg(Errno::EINTR)).0,
            neg(Errno::ERESTARTNOHAND)
        );
        // A call without restart semantics keeps EINTR; other errors pass.
        assert_eq!(
            classify(Restart::No, &a, neg(Errno::EINTR)),
            (neg(Errno::EINTR), None)
        );
        assert_eq!(
            classify(Restart::Sys, &a, neg(Errno::EBADF)),
            (neg(Errno::EBADF), None)
        );
        let timed = [0, 0, 0, 0x1000, 0, 0];
        assert_eq!(
            restart_code(Restart::Futex, &timed),
            Some(Errno::ERESTARTNOHAND)
        );
        assert_eq!(restart_code(Restart::Futex, &a), Some(Errno::ERESTARTSYS));
        assert_eq!(restart_code(Restart::Futex, &[0, 1, 0, 0, 0, 0]), None); // FUTEX_WAKE
    }
}
