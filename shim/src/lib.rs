//! The EL1 shim: the only code that runs at EL1 beneath the guest.
//!
//! It is assembled at start-up with dynasm-rs, so building elfuse needs no cross assembler.
//! Some syscalls are answered here, in EL1, from shim_data (see [`data`] and `fast.rs`).
//! Everything else is forwarded: every register the guest had at the `SVC` is live again
//! when the shim executes `HVC #5`, so the host reads the syscall number and arguments
//! straight from the vCPU and writes the result into X0. The HVC protocol is described in
//! ARCHITECTURE.md; the numbers are the `HVC_*` constants below.

use dynasmrt::{aarch64::Assembler, dynasm, DynasmApi, DynasmLabelApi};

pub mod data;
mod fast;

/// The most the shim keeps on a vCPU's EL1 stack: one exception frame (the EL1 fault
/// path pushes nothing). Each vCPU's EL1 stack must hold at least this.
pub const EL1_STACK_USE: u64 = fast::FRAME as u64;

/// `HVC #5`: a guest syscall. X8 = number, X0..X5 = arguments; the host writes X0 and
/// resumes at the `ERET` that follows (or redirects PC, e.g. to [`ShimImage::tlbi_eret`]).
pub const HVC_SYSCALL: u16 = 5;
/// `HVC #11`: a synchronous exception from EL0 other than SVC (data/instruction abort,
/// undefined instruction, BRK, alignment...). The host reads ESR_EL1, FAR_EL1 and ELR_EL1.
pub const HVC_EL0_FAULT: u16 = 11;
/// `HVC #2`: a synchronous exception taken at EL1, i.e. inside the shim itself. Fatal.
pub const HVC_EL1_FAULT: u16 = 2;
/// `HVC #12`: an asynchronous exception (IRQ, FIQ, SError) reached a vector. Fatal.
pub const HVC_ASYNC: u16 = 12;

/// ESR_EL1 exception class of `SVC` executed in AArch64 state.
pub const EC_SVC64: u32 = 0x15;

/// Encodes a system register for `MRS`/`MSR` the way dynasm expects the 15-bit immediate
/// (op0 must be 2 or 3).
pub const fn sysreg(op0: u32, op1: u32, crn: u32, crm: u32, op2: u32) -> u32 {
    ((op0 - 2) << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2
}

/// ESR_EL1 as an `MRS` operand.
pub const ESR_EL1: u32 = sysreg(3, 0, 5, 2, 0);

/// The assembled shim and the offsets of its entry points (relative to its load address).
#[derive(Clone, Debug)]
pub struct ShimImage {
    pub code: Vec<u8>,
    /// The exception vector table (2 KiB aligned): goes into VBAR_EL1.
    pub vectors: usize,
    /// A lone `ERET`: start the vCPU here at EL1 with ELR_EL1/SPSR_EL1/SP_EL0 set up to
    /// drop into the guest at EL0.
    pub enter_el0: usize,
    /// `TLBI VMALLE1IS; IC IALLU; ...; ERET`: the host resumes here (instead of the `ERET`
    /// after the HVC) when a backend needs the guest itself to invalidate its TLB and
    /// instruction cache after a mapping change.
    pub tlbi_eret: usize,
    /// `[start, end)` of the recoverable user-copy range: a data abort at EL1 there
    /// becomes -EFAULT for the guest; anywhere else it is `HVC #2`.
    pub copy_range: (usize, usize),
}

/// Size of the vector table: 16 entries of 0x80 bytes.
const VECTORS_SIZE: usize = 0x800;

/// Assembles the shim. Pure and deterministic: the same bytes on every host.
pub fn build() -> ShimImage {
    let mut ops = Assembler::new().expect("dynasm assembler");

    // Each vector entry is 0x80 bytes (32 instructions). Fill with the entries in order.
    let mut entries: Vec<dynasmrt::AssemblyOffset> = Vec::new();
    for slot in 0..16 {
        let start = ops.offset();
        entries.push(start);
        match slot {
            // Lower EL using AArch64, synchronous: SVC (fast path or HVC #5) or an EL0
            // fault (HVC #11).
            8 => {
                dynasm!(ops ; .arch aarch64 ; b ->el0_sync);
            }
            // Current EL with SPx, synchronous: a fault in the shim's user copy (-EFAULT
            // to EL0), or a shim bug (HVC #2).
            4 => {
                dynasm!(ops ; .arch aarch64 ; b ->el1_sync);
            }
            // Current EL with SP0: never used (the shim runs on SP_EL1).
            0 => {
                dynasm!(ops
                    ; .arch aarch64
                    ; hvc HVC_EL1_FAULT as u32
                    ; spin:
                    ; b <spin
                );
            }
            _ => {
                dynasm!(ops
                    ; .arch aarch64
                    ; hvc HVC_ASYNC as u32
                    ; spin2:
                    ; b <spin2
                );
            }
        }
        let used = ops.offset().0 - start.0;
        assert!(used <= 0x80, "vector entry {slot} is {used} bytes");
        for _ in 0..(0x80 - used) / 4 {
            dynasm!(ops ; .arch aarch64 ; brk 0xdead);
        }
    }
    assert_eq!(ops.offset().0, VECTORS_SIZE);

    let enter_el0 = ops.offset().0;
    dynasm!(ops ; .arch aarch64 ; eret);

    let tlbi_eret = ops.offset().0;
    dynasm!(ops
        ; .arch aarch64
        ; dsb ishst
        ; tlbi vmalle1is
        ; dsb ish
        ; ic iallu
        ; dsb ish
        ; isb
        ; eret
    );

    fast::emit_el0_sync(&mut ops);
    fast::emit_el1_sync(&mut ops);

    ops.commit().expect("shim labels resolve");
    let label = |name| {
        ops.labels()
            .resolve_static(&dynasmrt::components::StaticLabel::global(name))
            .expect("shim label")
            .0
    };
    let copy_range = (label("crit_lo"), label("crit_hi"));
    let code = ops.finalize().expect("finalize shim").to_vec();
    ShimImage {
        code,
        vectors: entries[0].0,
        enter_el0,
        tlbi_eret,
        copy_range,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(img: &ShimImage, off: usize) -> u32 {
        u32::from_le_bytes(img.code[off..off + 4].try_into().unwrap())
    }

    #[test]
    fn layout_and_encodings() {
        let img = build();
        assert_eq!(img.vectors, 0);
        assert_eq!(img.enter_el0, 0x800);
        // ERET
        assert_eq!(word(&img, img.enter_el0), 0xd69f_03e0);
        // The lower-EL sync vector branches to the handler, which saves x9/x10 first:
        // STP x9, x10, [sp, #-96]!
        let b = word(&img, 0x400);
        assert_eq!(b >> 26, 0b000101, "B");
        let target = 0x400 + (((b & 0x03ff_ffff) << 6) as i32 >> 4) as usize;
        assert_eq!(word(&img, target), 0xa9ba_2be9);
        // MRS x9, ESR_EL1 next
        assert_eq!(word(&img, target + 4), 0xd538_5209);
        // HVC #5 follows somewhere (the forward path)
        let hvc5 = 0xd400_0002 | (5 << 5);
        assert!((target..img.code.len())
            .step_by(4)
            .any(|o| word(&img, o) == hvc5));
    }

    /// Every unprivileged load/store (LDTR/STTR family) is inside the recoverable copy
    /// range.
    #[test]
    fn user_accesses_are_in_the_copy_range() {
        let img = build();
        let (lo, hi) = img.copy_range;
        assert!(lo < hi && hi <= img.code.len());
        let mut n = 0;
        for off in (0..img.code.len()).step_by(4) {
            let w = word(&img, off);
            // LDTR*/STTR*: size 111 0 00 opc 0 imm9 10 Rn Rt (bits 29..27 = 111, 26..24 = 0,
            // 21 = 0, 11..10 = 10).
            let unpriv = (w >> 27) & 7 == 0b111
                && (w >> 24) & 7 == 0
                && (w >> 21) & 1 == 0
                && (w >> 10) & 3 == 0b10;
            if unpriv {
                n += 1;
                assert!(
                    (lo..hi).contains(&off),
                    "LDTR/STTR at {off:#x} outside {lo:#x}..{hi:#x}"
                );
            }
        }
        assert!(n >= 6, "expected the copy loops' LDTR/STTR, found {n}");
    }
}
