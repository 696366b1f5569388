//! What clone's flags change about a new process beyond fork: CLONE_CLEAR_SIGHAND, and an
//! exit signal other than SIGCHLD (a "clone child" in Linux's wait terms).
//!
//! A guest child is a host child, and the host's fork always gives it SIGCHLD as exit
//! signal. So the parent keeps a record of its children created with another exit
//! signal (0 included): the host-signal watcher turns the host SIGCHLD reporting such a
//! child's death into that signal (none for 0), with the same CLD_* siginfo, under that
//! signal's disposition (a default action that terminates ends the parent, as on Linux);
//! its stops and continues stay SIGCHLD, as Linux sends them. wait4 and waitid pick
//! children by class as Linux's eligible_child does: without __WCLONE only SIGCHLD
//! children, with it only the others, with __WALL both. With no clone child recorded
//! (the usual case) the host's wait answers alone (its children are all SIGCHLD ones);
//! else the eligible children are named one by one (the host lists its children in
//! /proc/self/task/*/children) and polled until one has something to report.

use super::clone_state::CloneKids;
use super::Ctx;
use crate::errno::Errno;
use crate::signal::{KSigaction, SIG_DFL, SIG_IGN};

/// CLONE_CLEAR_SIGHAND, as Linux's flush_signal_handlers(child, 0): handled signals go
/// back to SIG_DFL, ignored ones stay ignored; flags, mask and restorer are cleared.
pub fn clear_sighand(actions: &mut [KSigaction]) {
    for a in actions {
        if a.handler != SIG_IGN {
            a.handler = SIG_DFL;
        }
        a.flags = 0;
        a.restorer = 0;
        a.mask = 0;
    }
}

const WNOWAIT: u64 = 0x0100_0000;
const WALL: u64 = 0x4000_0000;
const WCLONE: u64 = 0x8000_0000;

/// Which children a wait may take (Linux's eligible_child, by exit signal).
fn eligible(kids: &CloneKids, pid: i32, options: u64) -> bool {
    if options & WALL != 0 {
        return true;
    }
    let clone_child = kids.exit_signal(pid).is_some();
    clone_child == (options & WCLONE != 0)
}

/// A wait's target: one pid, a process group, or any child.
#[derive(Clone, Copy, Debug)]
pub enum Sel {
    Pid(i32),
    Pgid(i32),
    Any,
}

/// The host's children of this process (every thread's), from /proc.
fn host_children() -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in dir.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    out
}

/// How a wait is to be done.
pub enum Plan {
    /// One host call with these options (the host's class selection is right).
    Host(u64),
    /// No child can match: ECHILD.
    None,
    /// Poll these pids one by one (P_PID waits with WNOHANG), with these host options.
    Each(Vec<i32>, u64),
}

/// Plans a wait for `sel` with the guest's `options` (see the module comment).
pub fn plan(ctx: &Ctx, sel: Sel, options: u64) -> Plan {
    let kids = &ctx.proc.clone_kids;
    // The host's children all have SIGCHLD as exit signal: __WCLONE alone finds none
    // there, which is right while no clone child is recorded.
    if kids.is_empty() || options & WALL != 0 {
        return Plan::Host(options);
    }
    let host = (options & !WCLONE) | WALL;
    if let Sel::Pid(p) = sel {
        return if eligible(kids, p, options) {
            Plan::Host(host)
        } else {
            Plan::None
        };
    }
    let pool = if options & WCLONE != 0 {
        kids.pids()
    } else {
        host_children()
    };
    let mut pids: Vec<i32> = pool
        .into_iter()
        .filter(|&p| eligible(kids, p, options))
        .filter(|&p| match sel {
            Sel::Pgid(g) => nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(p)))
                .is_ok_and(|x| x.as_raw() == g),
            _ => true,
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    if pids.is_empty() {
        Plan::None
    } else {
        Plan::Each(pids, host)
    }
}

/// One round of a [`Plan::Each`]: `try_one(pid)` is the host's non-blocking wait on
/// one pid, Ok(Some) when it reported. Ok(None): nothing to report yet; ECHILD when none
/// of them is a child any more.
pub fn round<T>(
    pids: &[i32],
    mut try_one: impl FnMut(i32) -> Result<Option<T>, Errno>,
) -> Result<Option<T>, Errno> {
    let mut alive = 0;
    for &p in pids {
        match try_one(p) {
            Ok(Some(r)) => return Ok(Some(r)),
            Ok(None) => alive += 1,
            Err(Errno::ECHILD) => {}
            Err(e) => return Err(e),
        }
    }
    if alive == 0 {
        return Err(Errno::ECHILD);
    }
    Ok(None)
}

/// Between two rounds: a short sleep that a guest signal for this thread ends
/// (ERESTARTSYS: the vCPU loop then delivers it, restarting per SA_RESTART).
pub fn nap(ctx: &Ctx) -> Result<(), Errno> {
    use crate::signal::wait::{wait_for_signal, Woke};
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(5);
    match wait_for_signal(ctx.proc, ctx.thread.tid, Some(deadline)) {
        Woke::Timeout => Ok(()),
        Woke::Signal | Woke::Killed => Err(Errno::ERESTARTSYS),
    }
}

/// A wait reaped `pid` (it exited or was killed, and WNOWAIT was not given).
pub fn reaped(ctx: &Ctx, pid: i32, options: u64) {
    if options & WNOWAIT == 0 {
        ctx.proc.clone_kids.reaped(pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::SIGCHLD;

    /// Handlers go back to SIG_DFL, ignored signals stay ignored, and every action's
    /// flags, mask and restorer are cleared (Linux's flush_signal_handlers(p, 0)).
    #[test]
    fn clear_sighand_keeps_ignored() {
        let handled = KSigaction {
            handler: 0x4000,
            flags: 4,
            restorer: 0x5000,
            mask: 6,
        };
        let ignored = KSigaction {
            handler: SIG_IGN,
            flags: 4,
            restorer: 0,
            mask: 1,
        };
        let mut v = [handled, ignored, KSigaction::default()];
        clear_sighand(&mut v);
        assert_eq!(
            (v[0].handler, v[0].flags, v[0].restorer, v[0].mask),
            (SIG_DFL, 0, 0, 0)
        );
        assert_eq!((v[1].handler, v[1].flags, v[1].mask), (SIG_IGN, 0, 0));
        assert_eq!(v[2].handler, SIG_DFL);
    }

    /// Linux's eligible_child by exit signal: plain waits take SIGCHLD children only,
    /// __WCLONE the others (exit signal 0 included), __WALL both; reaping forgets.
    #[test]
    fn eligibility_by_exit_signal() {
        let kids = CloneKids::default();
        kids.record(10, u64::from(SIGCHLD));
        kids.record(11, 10); // SIGUSR1
        kids.record(12, 0);
        assert_eq!(kids.exit_signal(10), None);
        assert_eq!(kids.exit_signal(11), Some(10));
        assert_eq!(kids.exit_signal(12), Some(0));
        assert!(eligible(&kids, 10, 0) && !eligible(&kids, 10, WCLONE));
        assert!(!eligible(&kids, 11, 0) && eligible(&kids, 11, WCLONE));
        assert!(!eligible(&kids, 12, 0) && eligible(&kids, 12, WCLONE));
        assert!([10, 11, 12].iter().all(|&p| eligible(&kids, p, WALL)));
        kids.reaped(11);
        assert!(eligible(&kids, 11, 0));
        assert_eq!(kids.pids(), vec![12]);
    }

    /// The rounds of a one-by-one wait: the first reporting child wins, nothing yet is
    /// None, and ECHILD once none of them is a child.
    #[test]
    fn rounds() {
        let got = round(&[1, 2, 3], |p| Ok((p == 2).then_some(p * 10)));
        assert_eq!(got, Ok(Some(20)));
        let none = round(&[1, 2], |_| Ok::<Option<i32>, Errno>(None));
        assert_eq!(none, Ok(None));
        let gone = round(&[1, 2], |_| Err::<Option<i32>, Errno>(Errno::ECHILD));
        assert_eq!(gone, Err(Errno::ECHILD));
    }
}
