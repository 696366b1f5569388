//! The kick protocol: another thread stops a running vCPU (signal delivery,
//! invalidations) without losing a stop that lands while the engine is entering.

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

use uc::uc_engine;
use unicorn_engine_sys as uc;

use crate::backend::Kick;

/// Shared between the vCPU thread and kickers.
pub(super) struct KickState {
    pub(super) uc: *mut uc_engine,
    pub(super) pending: AtomicBool,
    pub(super) running: AtomicBool,
}

// uc_emu_stop may be called from any thread (it sets a flag and exits the CPU loop).
// SAFETY: the only field that is not Send is the engine pointer, and the only thing done with
// it through a KickState is uc_emu_stop, which unicorn documents as callable from any thread
// (it sets the engine's exit request and is async-signal-safe).
unsafe impl Send for KickState {}
// SAFETY: shared access is the atomics plus uc_emu_stop on `uc` (thread-safe, see Send
// above); nothing else reads or writes the engine through this type.
unsafe impl Sync for KickState {}

/// membarrier(2) commands.
const MEMBARRIER_GLOBAL: libc::c_long = 1;
const MEMBARRIER_PRIVATE_EXPEDITED: libc::c_long = 8;
const MEMBARRIER_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 16;

/// membarrier(2): true if it succeeded.
fn membarrier(cmd: libc::c_long) -> bool {
    // SAFETY: a syscall with no pointer arguments.
    unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0, 0) == 0 }
}

/// The kick protocol is a Dekker pair: the vCPU stores `running` then loads `pending`,
/// a kicker stores `pending` then loads `running`, and one of them must see the other.
/// The vCPU's side runs at every forwarded syscall, the kicker's only for signals and
/// invalidations, so when the host allows it the full barrier is all on the kicker's
/// side: a private expedited membarrier (every thread of the process that is running
/// passes a full barrier) lets the vCPU use a plain store and a compiler fence.
///
/// Call once before the process starts any thread: registering costs microseconds then
/// and a whole RCU grace period (~10 ms) once other threads exist. The registration is
/// inherited by fork children. Without this call kicks use SeqCst on both sides.
pub fn init_process() {
    ASYMMETRIC.store(membarrier(MEMBARRIER_REGISTER_PRIVATE_EXPEDITED), Relaxed);
    crate::backend::busfault::install();
}

/// The kicker's half of the barrier (see `init_process`).
fn heavy_fence() {
    if !membarrier(MEMBARRIER_PRIVATE_EXPEDITED) {
        // A forked child whose registration was not inherited: register, retry.
        membarrier(MEMBARRIER_REGISTER_PRIVATE_EXPEDITED);
        if !membarrier(MEMBARRIER_PRIVATE_EXPEDITED) {
            membarrier(MEMBARRIER_GLOBAL);
        }
    }
}

/// The vCPU's half: `running = true`, ordered before its next load of `pending` (see
/// `init_process`).
#[inline(always)]
pub(super) fn set_running(kick: &KickState) {
    if ASYMMETRIC.load(Relaxed) {
        kick.running.store(true, Relaxed);
        std::sync::atomic::compiler_fence(SeqCst);
    } else {
        kick.running.store(true, SeqCst);
    }
}

/// Whether `init_process` registered the membarrier (see there).
static ASYMMETRIC: AtomicBool = AtomicBool::new(false);

impl Kick for KickState {
    fn kick(&self) {
        self.arm();
        self.barrier();
        self.settle();
    }

    fn arm(&self) {
        self.pending.store(true, SeqCst);
    }

    /// One barrier covers every `arm` before it (membarrier reaches every thread).
    fn barrier(&self) {
        if ASYMMETRIC.load(Relaxed) {
            heavy_fence();
        }
    }

    fn settle(&self) {
        // A stop that lands while uc_emu_start is still entering is lost (it clears the
        // stop request): repeat until the vCPU has consumed the kick or is not running.
        while self.pending.load(SeqCst) && self.running.load(SeqCst) {
            // SAFETY: `self.uc` is the engine this KickState was created with; the vCPU
            // owning it drops its KickState (an Arc the vCPU holds) only after uc_close, and
            // uc_emu_stop only sets the engine's stop request, which is safe from another
            // thread.
            unsafe { uc::uc_emu_stop(self.uc) };
            std::thread::sleep(std::time::Duration::from_micros(20));
        }
    }
}
