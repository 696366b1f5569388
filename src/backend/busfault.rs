//! A host SIGBUS on guest RAM, as the guest's own fault.
//!
//! Guest RAM under a MAP_SHARED file mapping is the file's page cache
//! (`GuestRam::overlay_file`). When *another* process truncates the file, the host pages
//! past its new end raise the host's SIGBUS on any access. elfuse's own copies check the
//! file's size first (`Mm::check_user`: EFAULT), but a guest load or store runs in
//! translated code (or a load/store helper it calls, or the EL1 shim's user copy), which
//! elfuse never sees. This handler recognises such a fault (the faulting address is in
//! guest RAM and the thread is running guest code, not a hook) and hands it to the
//! engine (`elfuse_uc_arm64_host_fault`, PATCHES 26), which raises the guest's data abort
//! at the faulting instruction: the shim forwards it, and `Mm::missing_page` finds the
//! address past the end of the file: SIGBUS (BUS_ADRERR) for the guest, or EFAULT for
//! the shim's copy, as Linux. Anything else dies of the signal as before.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use unicorn_engine_sys::{self as uc, uc_engine};

/// Guest RAM regions (guest physical address, host address, size) as the engines map them.
const MAX_REGIONS: usize = 4;
static REGIONS: [[AtomicUsize; 3]; MAX_REGIONS] =
    [const { [const { AtomicUsize::new(0) }; 3] }; MAX_REGIONS];
static NREGIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The engine this thread is running guest code in (null in a hook or outside).
    static CURRENT: Cell<*mut uc_engine> = const { Cell::new(std::ptr::null_mut()) };
}

/// Records a region of guest RAM (`Vm::map_memory`).
pub(crate) fn note_region(gpa: u64, host: usize, size: usize) {
    let i = NREGIONS.load(Relaxed);
    if i < MAX_REGIONS {
        REGIONS[i][0].store(gpa as usize, Relaxed);
        REGIONS[i][1].store(host, Relaxed);
        REGIONS[i][2].store(size, Relaxed);
        NREGIONS.store(i + 1, Relaxed);
    }
}

/// Marks the calling thread as running `uc`'s guest code (`None`: in a hook, where a
/// fault is elfuse's own) until the guard drops.
pub(crate) fn running(uc: Option<*mut uc_engine>) -> Running {
    Running(CURRENT.with(|c| c.replace(uc.unwrap_or(std::ptr::null_mut()))))
}

pub(crate) struct Running(*mut uc_engine);

impl Drop for Running {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// Installs the handler (once per process, before any vCPU runs; inherited by fork).
pub fn install() {
    // SAFETY: a zeroed sigaction with our handler; SA_NODEFER because the handler
    // leaves by longjmp (the signal must not stay blocked), SA_SIGINFO for si_addr and
    // the context.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigbus as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
    }
}

/// The guest physical (= virtual) address of host address `a`, if it is guest RAM.
fn guest_addr(a: usize) -> Option<u64> {
    let n = NREGIONS.load(Relaxed).min(MAX_REGIONS);
    REGIONS[..n].iter().find_map(|r| {
        let (gpa, host, size) = (r[0].load(Relaxed), r[1].load(Relaxed), r[2].load(Relaxed));
        (a.wrapping_sub(host) < size).then(|| (gpa + (a - host)) as u64)
    })
}

/// The handler: only plain values live here, since the engine may longjmp out of it.
extern "C" fn on_sigbus(_sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo and ucontext to an SA_SIGINFO handler.
    let (addr, pc, sp, err) = unsafe {
        let g = &(*ctx.cast::<libc::ucontext_t>()).uc_mcontext.gregs;
        (
            (*info).si_addr() as usize,
            g[libc::REG_RIP as usize] as usize,
            g[libc::REG_RSP as usize] as usize,
            g[libc::REG_ERR as usize] as usize,
        )
    };
    let engine = CURRENT.with(|c| c.get());
    if let (false, Some(va)) = (engine.is_null(), guest_addr(addr)) {
        // SAFETY: `engine` is the engine this thread is running guest code in (set around
        // uc_emu_start, cleared in hooks); the call either longjmps to its CPU loop with
        // the guest's data abort raised, or returns having changed nothing. Bit 1 of the
        // x86 page-fault error code: a write.
        unsafe { uc::elfuse_uc_arm64_host_fault(engine, va, pc, sp, ((err >> 1) & 1) as i32) };
    }
    // Not a guest access: die of it as before (the access faults again with the default
    // action).
    // SAFETY: resets one signal's disposition.
    unsafe { libc::signal(libc::SIGBUS, libc::SIG_DFL) };
}
