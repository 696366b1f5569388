//! The shim's synchronous handlers: the EL0 entry (SVC fast paths, or forward with
//! `HVC #5`/`HVC #11`) and the EL1 entry (fault recovery for the user-buffer copy, or the
//! fatal `HVC #2`).
//!
//! Fast paths, served in EL1 with no exit when the attention word is 0:
//! - getpid, getppid, getuid, geteuid, getgid, getegid: an identity slot (the host
//!   republishes getppid's when the parent exits and the process is reparented:
//!   `hostsig`'s parent watch);
//! - gettid: CONTEXTIDR_EL1 (the host sets it to the tid on every vCPU);
//! - getpgid(0), getsid(0): an identity slot;
//! - read(fd, buf, 1..=256) and readv(fd, iov, 1..=8) of at most 256 bytes in total, on a
//!   fd whose urandom bit is set; getrandom(buf, 1..=256, valid flags): bytes from the ring.
//!
//! Everything else (and a fast path that cannot be served: ring too empty, buffer outside
//! the user range, odd lengths or flags) is forwarded to the host with every guest register
//! as it was at the `SVC`. User memory is only touched with LDTR/STTR (EL0 permissions),
//! between `crit_lo` and `crit_hi`, with the ring lock held; a fault there is recovered by
//! the EL1 handler: lock released, frame dropped, -EFAULT returned to EL0.
//!
//! Frame on SP_EL1 (FRAME bytes): x9 x10 | x11 x12 | x13 x14 | x15 x16 | x17 x18 | ELR SPSR.
//! The identity paths only use the x9/x10 slots; the ring paths fill the rest.

use dynasmrt::{aarch64::Assembler, dynasm, DynasmApi, DynasmLabelApi};

use crate::data::*;
use crate::{sysreg, EC_SVC64, ESR_EL1, HVC_EL0_FAULT, HVC_EL1_FAULT, HVC_SYSCALL};

const ELR_EL1: u32 = sysreg(3, 0, 4, 0, 1);
const SPSR_EL1: u32 = sysreg(3, 0, 4, 0, 0);
const TPIDR_EL1: u32 = sysreg(3, 0, 13, 0, 4);
const CONTEXTIDR_EL1: u32 = sysreg(3, 0, 13, 0, 1);
/// ESR_EL1 exception class of a data abort taken without a change in exception level.
const EC_DABT_CUR: u32 = 0x25;

pub(crate) const FRAME: i32 = 96;
const LIMITS: i32 = USER_LIMITS as i32;
const FAST_MAX_M1: u32 = MAX_FAST_READ - 1;
const IOV_MAX_M1: u32 = MAX_FAST_IOV - 1;
const MINUS_EFAULT_NOT: u32 = EFAULT - 1;
const RING_PAGE: u32 = RING >> 12;
const RING_MASK: u32 = RING_SIZE - 1;
const RING_LAST8: u32 = RING_SIZE - 8;
const RING_LAST64: u32 = RING_SIZE - 64;
const EFAULT: u32 = 14;

const NR_READ: u32 = 63;
const NR_READV: u32 = 65;
const NR_GETPGID: u32 = 155;
const NR_GETPID: u32 = 172;
const NR_GETTID: u32 = 178;
const NR_GETRANDOM: u32 = 278;

/// Restores x11..x16 and x9/x10 and pops the frame.
macro_rules! pop_frame {
    ($ops:ident) => {
        dynasm!($ops
            ; .arch aarch64
            ; ldp x11, x12, [sp, #16]
            ; ldp x13, x14, [sp, #32]
            ; ldp x15, x16, [sp, #48]
            ; ldp x17, x18, [sp, #64]
            ; ldp x9, x10, [sp], #FRAME
        );
    };
}

/// Every syscall this handler may answer without the host. Any other number is
/// forwarded after one bitmap test, before the attention word or the per-call checks.
const FAST_NRS: [u32; 12] = [
    NR_READ,
    NR_READV,
    NR_GETPGID,
    NR_GETPGID + 1, // getsid
    NR_GETPID,
    NR_GETPID + 1, // getppid
    NR_GETPID + 2, // getuid
    NR_GETPID + 3, // geteuid
    NR_GETPID + 4, // getgid
    NR_GETPID + 5, // getegid
    NR_GETTID,
    NR_GETRANDOM,
];

/// 64-bit words of the `FAST_NRS` bitmap (syscall numbers below 64 * FAST_WORDS).
const FAST_WORDS: usize = 5;

const fn fast_bitmap() -> [u64; FAST_WORDS] {
    let mut words = [0u64; FAST_WORDS];
    let mut i = 0;
    while i < FAST_NRS.len() {
        let nr = FAST_NRS[i] as usize;
        words[nr / 64] |= 1 << (nr % 64);
        i += 1;
    }
    words
}

/// The lower-EL synchronous handler (`->el0_sync`); the vector branches here.
pub fn emit_el0_sync(ops: &mut Assembler) {
    let (esr, tpidr, ctxid) = (ESR_EL1, TPIDR_EL1, CONTEXTIDR_EL1);
    dynasm!(ops
        ; .arch aarch64
        ; ->el0_sync:
        ; stp x9, x10, [sp, #-FRAME]!
        ; mrs x9, esr
        ; lsr x9, x9, #26
        ; cmp x9, EC_SVC64
        ; b.ne ->el0_fault
        // Not in FAST_NRS: straight to the host.
        ; lsr x10, x8, #6
        ; cmp x10, FAST_WORDS as u32
        ; b.hs ->forward
        ; adr x9, ->fast_nrs
        ; ldr x9, [x9, x10, lsl #3]
        ; lsr x9, x9, x8
        ; tbz x9, #0, ->forward
        ; mrs x9, tpidr
        ; ldar w10, [x9]
        ; cbnz w10, ->forward
        // getpid..getegid: slot (nr - 172).
        ; sub x10, x8, NR_GETPID
        ; cmp x10, #5
        ; b.hi >not_ident
        ; add x9, x9, IDENT
        ; ldr w0, [x9, x10, lsl #2]
        ; ldp x9, x10, [sp], #FRAME
        ; eret
        ; not_ident:
        ; cmp x10, NR_GETTID - NR_GETPID
        ; b.ne >not_tid
        ; mrs x0, ctxid
        ; ldp x9, x10, [sp], #FRAME
        ; eret
        ; not_tid:
        // getpgid(0), getsid(0): slot 6 + (nr - 155).
        ; sub x10, x8, NR_GETPGID
        ; cmp x10, #1
        ; b.hi >not_pg
        ; cbnz w0, ->forward
        ; add x9, x9, IDENT + SLOT_PGID * 4
        ; ldr w0, [x9, x10, lsl #2]
        ; ldp x9, x10, [sp], #FRAME
        ; eret
        ; not_pg:
        ; cmp x8, NR_READ
        ; b.eq ->fast_read
        ; cmp x8, NR_READV
        ; b.eq ->fast_readv
        ; cmp x8, NR_GETRANDOM
        ; b.eq ->fast_getrandom
        ; ->forward:
        ; ldp x9, x10, [sp], #FRAME
        ; hvc HVC_SYSCALL as u32
        ; eret
        ; ->el0_fault:
        ; ldp x9, x10, [sp], #FRAME
        ; hvc HVC_EL0_FAULT as u32
        ; eret
        ; .align 8
        ; ->fast_nrs:
        ; .bytes fast_bitmap().iter().flat_map(|w| w.to_le_bytes())
    );
    emit_ring_paths(ops);
}

/// read/readv/getrandom from the ring. Entered with x9 = shim_data and the frame holding
/// x9/x10. No BL anywhere: x30 is the guest's. Exactly the code between `crit_lo` and
/// `crit_hi` runs with the ring lock held, and only it touches user memory.
fn emit_ring_paths(ops: &mut Assembler) {
    // ---- read(fd = w0, buf = x1, len = x2)
    dynasm!(ops ; .arch aarch64 ; ->fast_read:);
    urandom_fd(ops);
    dynasm!(ops
        ; .arch aarch64
        ; sub x10, x2, #1
        ; cmp x10, #FAST_MAX_M1
        ; b.hi ->forward
    );
    save_more(ops);
    dynasm!(ops
        ; .arch aarch64
        ; mov x14, x1
        ; mov x15, x2
        ; b ->one_segment
        // ---- getrandom(buf = x0, len = x1, flags = w2 — an unsigned int, as in Linux):
        // NONBLOCK|RANDOM|INSECURE, not
        // RANDOM and INSECURE together (the host answers EINVAL for those).
        ; ->fast_getrandom:
        ; tst w2, #0xffff_fff8
        ; b.ne ->forward
        ; and w10, w2, #6
        ; cmp w10, #6
        ; b.eq ->forward
        ; sub x10, x1, #1
        ; cmp x10, #FAST_MAX_M1
        ; b.hi ->forward
    );
    save_more(ops);
    dynasm!(ops
        ; .arch aarch64
        ; mov x14, x0
        ; mov x15, x1
        // ---- one buffer (x14, x15): out of the user range → the host says EFAULT.
        ; ->one_segment:
    );
    check_buf(ops, true);
    dynasm!(ops ; .arch aarch64 ; mov x12, x15);
    lock(ops);
    dynasm!(ops ; .arch aarch64 ; ->crit_lo:);
    reserve(ops);
    copy(ops);
    dynasm!(ops
        ; .arch aarch64
        ; mov x0, x12
        ; b ->unlock_return
        // ---- readv, once its prologue (below, outside the range) holds the lock.
        ; ->readv_locked:
    );
    dynasm!(ops
        ; .arch aarch64
        // Pass 1: the total (x12); an iov_len over the limit forwards.
        ; mov x12, xzr
        ; mov x11, xzr
        ; pass1:
        ; add x16, x1, x11, lsl #4
        ; ldtr x15, [x16, #8]
        ; cmp x15, #MAX_FAST_READ
        ; b.hi ->unlock_forward
        ; add x12, x12, x15
        ; add x11, x11, #1
        ; cmp x11, x2
        ; b.lo <pass1
        ; cmp x12, #MAX_FAST_READ
        ; b.hi ->unlock_forward
        ; cbz x12, ->unlock_forward
    );
    reserve(ops);
    dynasm!(ops
        ; .arch aarch64
        // Pass 2 (x18 = index): copy, each iov clamped to what is left of the
        // reservation (x17): a
        // racing thread that rewrites the iovecs can make us copy less, never more.
        ; mov x18, xzr
        ; mov x17, x12
        ; pass2:
        ; add x16, x1, x18, lsl #4
        ; ldtr x14, [x16]
        ; ldtr x15, [x16, #8]
        ; cmp x15, x17
        ; csel x15, x15, x17, ls
        ; sub x17, x17, x15
        ; cbz x15, >next
    );
    check_buf(ops, false);
    copy(ops);
    dynasm!(ops
        ; .arch aarch64
        ; next:
        ; add x18, x18, #1
        ; cmp x18, x2
        ; b.lo <pass2
        ; sub x0, x12, x17
        ; b ->unlock_return
        ; ->crit_hi:

        // ---- exits
        ; ->unlock_return:
        ; add x10, x9, #RING_LOCK
        ; stlr wzr, [x10]
    );
    pop_frame!(ops);
    dynasm!(ops
        ; .arch aarch64
        ; eret
        ; ->unlock_forward:
        ; add x10, x9, #RING_LOCK
        ; stlr wzr, [x10]
        ; ->forward_ring:
    );
    pop_frame!(ops);
    dynasm!(ops
        ; .arch aarch64
        ; hvc HVC_SYSCALL as u32
        ; eret
        // ---- readv(fd = w0, iov = x1, iovcnt = x2): checks, lock, then the body above.
        ; ->fast_readv:
    );
    urandom_fd(ops);
    dynasm!(ops
        ; .arch aarch64
        ; sub x10, x2, #1
        ; cmp x10, #IOV_MAX_M1
        ; b.hi ->forward
    );
    save_more(ops);
    lock(ops);
    dynasm!(ops ; .arch aarch64 ; b ->readv_locked);
}

/// The EL1 handler for a fault inside the copy (`->efault_locked`, entered with x9 =
/// shim_data and the frame complete), and the current-EL synchronous handler.
pub fn emit_el1_sync(ops: &mut Assembler) {
    let (esr, elr, spsr, tpidr) = (ESR_EL1, ELR_EL1, SPSR_EL1, TPIDR_EL1);
    dynasm!(ops
        ; .arch aarch64
        ; ->el1_sync:
        ; mrs x9, esr
        ; lsr x9, x9, #26
        ; cmp x9, #EC_DABT_CUR
        ; b.ne >fatal
        ; mrs x9, elr
        ; adr x10, ->crit_lo
        ; cmp x9, x10
        ; b.lo >fatal
        ; adr x10, ->crit_hi
        ; cmp x9, x10
        ; b.hs >fatal
        // A user buffer went away under the copy: SP is the frame's (the copy never
        // pushes), x9..x18 are in it.
        ; mrs x9, tpidr
        ; ->efault_locked:
        ; add x10, x9, #RING_LOCK
        ; stlr wzr, [x10]
        ; ldp x10, x11, [sp, #80]
        ; msr elr, x10
        ; msr spsr, x11
        ; movn x0, #MINUS_EFAULT_NOT
    );
    pop_frame!(ops);
    dynasm!(ops
        ; .arch aarch64
        ; eret
        ; fatal:
        ; hvc HVC_EL1_FAULT as u32
        ; spin:
        ; b <spin
    );
}

/// Forwards unless guest fd w0 has its urandom bit set. Clobbers x10.
fn urandom_fd(ops: &mut Assembler) {
    dynasm!(ops
        ; .arch aarch64
        ; lsr w10, w0, #12
        ; cbnz w10, ->forward
        ; lsr w10, w0, #6
        ; add x10, x9, x10, lsl #3
        ; ldr x10, [x10, #URANDOM_BITMAP]
        ; lsr x10, x10, x0
        ; tbz x10, #0, ->forward
    );
}

/// Completes the frame: x11..x18, ELR_EL1, SPSR_EL1 (a fault in the copy overwrites them).
fn save_more(ops: &mut Assembler) {
    let (elr, spsr) = (ELR_EL1, SPSR_EL1);
    dynasm!(ops
        ; .arch aarch64
        ; stp x11, x12, [sp, #16]
        ; stp x13, x14, [sp, #32]
        ; stp x15, x16, [sp, #48]
        ; stp x17, x18, [sp, #64]
        ; mrs x11, elr
        ; mrs x12, spsr
        ; stp x11, x12, [sp, #80]
    );
}

/// Takes the ring lock. Clobbers x10, x11, x13.
fn lock(ops: &mut Assembler) {
    dynasm!(ops
        ; .arch aarch64
        ; add x10, x9, #RING_LOCK
        ; mov w11, #1
        ; retry:
        ; ldaxr w13, [x10]
        ; cbnz w13, <retry
        ; stxr w13, w11, [x10]
        ; cbnz w13, <retry
    );
}

/// Reserves x12 bytes of the ring (lock held): x13 = first byte's position. Forwards if
/// the ring holds fewer. Clobbers x11.
fn reserve(ops: &mut Assembler) {
    dynasm!(ops
        ; .arch aarch64
        ; ldr w13, [x9, #RING_HEAD]
        ; ldr w11, [x9, #RING_TAIL]
        ; sub w11, w11, w13
        ; cmp w11, w12
        ; b.lo ->unlock_forward
        ; add w11, w13, w12
        ; str w11, [x9, #RING_HEAD]
    );
}

/// Checks that [x14, x14 + x15) (x15 ≥ 1) lies in the user range; if not, forwards
/// (`fwd`, lock not held) or returns -EFAULT (lock held). Clobbers x10, x11.
fn check_buf(ops: &mut Assembler, fwd: bool) {
    dynasm!(ops
        ; .arch aarch64
        ; ldp x10, x11, [x9, #LIMITS]
        ; cmp x14, x10
        ; b.lo >bad
        ; cmp x14, x11
        ; b.hs >bad
        ; sub x11, x11, x14
        ; cmp x15, x11
        ; b.ls >good
        ; bad:
    );
    if fwd {
        dynasm!(ops ; .arch aarch64 ; b ->forward_ring);
    } else {
        dynasm!(ops ; .arch aarch64 ; b ->efault_locked);
    }
    dynasm!(ops ; .arch aarch64 ; good:);
}

/// Copies x15 (≥ 1) ring bytes from position x13 to user address x14 with unprivileged
/// stores: 64 bytes a round, then 8, then 1, each only where the ring does not wrap inside
/// the round. Clobbers x10, x11, x16.
fn copy(ops: &mut Assembler) {
    dynasm!(ops
        ; .arch aarch64
        ; add x16, x9, #RING_PAGE, lsl #12
        ; copy_loop:
        ; and w10, w13, #RING_MASK
        ; cmp x15, #64
        ; b.lo >eight
        ; cmp w10, #RING_LAST64
        ; b.hi >eight
        ; add x11, x16, x10
        ; ldr x10, [x11]
        ; sttr x10, [x14]
        ; ldr x10, [x11, #8]
        ; sttr x10, [x14, #8]
        ; ldr x10, [x11, #16]
        ; sttr x10, [x14, #16]
        ; ldr x10, [x11, #24]
        ; sttr x10, [x14, #24]
        ; ldr x10, [x11, #32]
        ; sttr x10, [x14, #32]
        ; ldr x10, [x11, #40]
        ; sttr x10, [x14, #40]
        ; ldr x10, [x11, #48]
        ; sttr x10, [x14, #48]
        ; ldr x10, [x11, #56]
        ; sttr x10, [x14, #56]
        ; add x14, x14, #64
        ; add w13, w13, #64
        ; subs x15, x15, #64
        ; b.ne <copy_loop
        ; b >done
        ; eight:
        ; cmp x15, #8
        ; b.lo >byte
        ; cmp w10, #RING_LAST8
        ; b.hi >byte
        ; ldr x11, [x16, x10]
        ; sttr x11, [x14]
        ; add x14, x14, #8
        ; add w13, w13, #8
        ; subs x15, x15, #8
        ; b.ne <copy_loop
        ; b >done
        ; byte:
        ; ldrb w11, [x16, x10]
        ; sttrb w11, [x14]
        ; add x14, x14, #1
        ; add w13, w13, #1
        ; subs x15, x15, #1
        ; b.ne <copy_loop
        ; done:
    );
}
