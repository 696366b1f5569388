//! The wake signal: the host real-time signal elfuse sends its own vCPU threads
//! (`tgkill`) to interrupt a blocked host call, which its kernel timers send too (the
//! deferred-watcher tick, `hostsig::watch_deferred`).
//!
//! It has a number a guest may use as well (SIGRTMIN+6 for glibc guests), and a guest's
//! `kill` or `sigqueue` of another guest process is a host one. So the handler tells the
//! two apart by their siginfo: our own wake is a `tgkill` from this host process
//! (SI_TKILL with our pid) or a timer (SI_TIMER, only our own timers target us). Any
//! other is another process's signal for the guest: the handler queues its siginfo here
//! and pokes the host-signal watcher, which forwards it like the signals it reads from
//! its signalfd ([`take_foreign`]).

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Once;

use crate::slotring::SlotRing;

/// The host signal that interrupts blocked host syscalls.
pub fn wake_signal() -> i32 {
    libc::SIGRTMIN() + 6
}

/// Set by every wake signal (async-signal-safe: one store); see `hostsig::start_if_due`.
static WOKEN: AtomicBool = AtomicBool::new(false);

/// Whether a wake signal has reached this host process since `clear_woken`.
pub fn woken() -> bool {
    WOKEN.load(Ordering::Relaxed)
}

pub fn clear_woken() {
    WOKEN.store(false, Ordering::SeqCst);
}

extern "C" fn on_wake(_: i32, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    WOKEN.store(true, Ordering::Relaxed);
    // SAFETY: the kernel's siginfo for this delivery (SA_SIGINFO).
    let info = unsafe { &*info };
    let (pid, uid, value) = unsafe { (info.si_pid(), info.si_uid(), info.si_value().sival_ptr) };
    let ours = info.si_code == libc::SI_TIMER
        || (info.si_code == libc::SI_TKILL && pid == unsafe { libc::getpid() });
    if !ours {
        push_foreign(info.si_code, pid, uid, value as u64);
    }
}

/// Installs the handler (once per host process; no SA_RESTART: the interrupted call
/// fails with EINTR).
pub fn install_wake_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_wake as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(wake_signal(), &sa, std::ptr::null_mut());
    });
}

/// Queued foreign wake signals as `[si_code, si_pid | si_uid << 32, si_value]`; more
/// than this many waiting are dropped (the kernel's own real-time queue is bounded too).
static FOREIGN: SlotRing<64> = SlotRing::new();
/// The write end of the watcher's wake-up pipe (-1: no watcher yet; it takes what is
/// queued when it starts).
static NOTIFY: AtomicI32 = AtomicI32::new(-1);

/// In the signal handler: queue and poke the watcher (atomics and write(2) only).
fn push_foreign(code: i32, pid: i32, uid: u32, value: u64) {
    let ids = pid as u32 as u64 | (uid as u64) << 32;
    if FOREIGN.push([code as u32 as u64, ids, value]) {
        let fd = NOTIFY.load(Ordering::Acquire);
        if fd >= 0 {
            unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
        }
    }
}

/// Takes every queued foreign wake signal as `(si_code, si_pid, si_uid, si_value)`.
pub fn take_foreign(mut f: impl FnMut(i32, i32, u32, u64)) {
    FOREIGN
        .drain(|[code, ids, value]| f(code as i32, ids as u32 as i32, (ids >> 32) as u32, value));
}

/// The watcher's wake-up pipe (its write end), set when the watcher starts.
pub fn set_notify(fd: i32) {
    NOTIFY.store(fd, Ordering::Release);
}

/// A native fork child, first thing: what was queued was its parent's, and the pipe is
/// its parent's watcher's.
pub fn after_fork_child() {
    NOTIFY.store(-1, Ordering::Release);
    take_foreign(|_, _, _, _| {});
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wake signal from another process (here: a forked child's sigqueue) is queued
    /// with its siginfo; our own tgkill is not.
    #[test]
    fn foreign_wake_signals_are_queued() {
        install_wake_handler();
        let me = unsafe { libc::getpid() };
        unsafe { libc::syscall(libc::SYS_tgkill, me, libc::gettid(), wake_signal()) };
        let mut got = Vec::new();
        take_foreign(|c, p, u, v| got.push((c, p, u, v)));
        assert!(got.is_empty(), "{got:?}");
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let v = libc::sigval {
                sival_ptr: 77 as *mut libc::c_void,
            };
            unsafe { libc::sigqueue(me, wake_signal(), v) };
            unsafe { libc::_exit(0) };
        }
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        // The signal is process-directed: some thread of the test binary runs the handler.
        let t0 = std::time::Instant::now();
        while got.is_empty() && t0.elapsed() < std::time::Duration::from_secs(5) {
            take_foreign(|c, p, u, v| got.push((c, p, u, v)));
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let uid = unsafe { libc::getuid() };
        assert_eq!(got, [(libc::SI_QUEUE, pid, uid, 77)]);
    }
}
