//! The vDSO's code, assembled with dynasm-rs.
//!
//! `__kernel_clock_gettime` interpolates the anchored clocks from CNTVCT_EL0 and the
//! `[vvar]` page (see [`crate::vvar`]) and otherwise issues the real syscall from one
//! instruction, the *fallback SVC*: the host accepts a clock anchor only from a syscall
//! whose return address is the instruction after it ([`Code::fallback_ret`]).
//! `__kernel_gettimeofday` does the same read inline for CLOCK_REALTIME (and calls
//! `__kernel_clock_gettime` when it cannot serve); `__kernel_clock_getres` answers from the
//! vvar page; `__kernel_rt_sigreturn` and `__kernel_getcpu` are plain syscalls.

use dynasmrt::aarch64::Aarch64Relocation;
use dynasmrt::{dynasm, DynamicLabel, DynasmApi, DynasmLabelApi, VecAssembler};

use crate::vvar;

const NR_CLOCK_GETTIME: u32 = 113;
const NR_CLOCK_GETRES: u32 = 114;
const NR_RT_SIGRETURN: u32 = 139;
const NR_GETCPU: u32 = 168;

/// CNTVCT_EL0 as an `MRS` operand (op0=3, op1=3, CRn=14, CRm=0, op2=2), in dynasm's form.
const CNTVCT_EL0: u32 = (1 << 14) | (3 << 11) | (14 << 7) | 2;

/// The multiplier of an exact u64 division by 1000 (see `__kernel_gettimeofday`).
const DIV1000: u64 = 0x20c4_9ba5_e353_f7cf;

/// Clock id (0..=7) → anchor slot in `vvar::CLOCKS`, 0xff = not served here; entry 8
/// stands for every other id (the code clamps the index to 8 instead of branching).
const GETTIME_SLOT: [u8; 9] = {
    let mut t = [0xff; 9];
    let mut i = 0;
    while i < vvar::ANCHORED.len() {
        t[vvar::ANCHORED[i] as usize] = i as u8;
        i += 1;
    }
    t
};
/// Clock id (0..=7) → 0 = `RES_HIRES`, 1 = `RES_COARSE`, 0xff = ask the host.
const GETRES_KIND: [u8; 8] = [0, 0, 0xff, 0xff, 0, 1, 1, 0];

/// A function's place in the code: [start, end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Func {
    pub start: usize,
    pub end: usize,
}

/// The assembled code; offsets are relative to its start.
#[derive(Clone, Debug)]
pub struct Code {
    pub bytes: Vec<u8>,
    pub clock_gettime: Func,
    pub gettimeofday: Func,
    pub clock_getres: Func,
    pub rt_sigreturn: Func,
    pub getcpu: Func,
    /// The instruction after clock_gettime's fallback `SVC` (its ELR_EL1).
    pub fallback_ret: usize,
}

/// `ADR Xd, #imm` (imm within ±1 MiB).
fn adr(rd: u32, imm: i64) -> u32 {
    assert!((-(1 << 20)..(1 << 20)).contains(&imm), "ADR out of range");
    let imm = imm as u32 & 0x1f_ffff;
    0x1000_0000 | ((imm & 3) << 29) | ((imm >> 2) << 5) | rd
}

type Asm = VecAssembler<Aarch64Relocation>;

/// `ADR x9, <vvar page>` at the current position, for code placed at `text_off`.
fn adr_vvar(ops: &mut Asm, text_off: u64) {
    let here = text_off + ops.offset().0 as u64;
    let word = adr(9, -((vvar::VVAR_SIZE + here) as i64));
    dynasm!(ops ; .arch aarch64 ; .u32 word);
}

/// The seqlock read of one anchored clock: expects x3 = the anchor slot's vvar offset;
/// leaves the time in x5 (sec) and x6 (nsec), or branches to `fallback` (unseeded, being
/// written, attention, counter regression, stale). Clobbers x4, x7, x9..x16.
///
/// Few branches on purpose: under a binary translator each one ends a translated block
/// (the checks are folded into one test each, and the one-second carry is a select).
fn emit_fast_read(ops: &mut Asm, text_off: u64, fallback: DynamicLabel) {
    let one_e9 = 1_000_000_000u32;
    let retry = ops.new_dynamic_label();
    adr_vvar(ops, text_off);
    dynasm!(ops
        ; .arch aarch64
        ; =>retry
        ; ldar w10, [x9]                      // SEQ (offset 0), acquire
        ; ldr w11, [x9, vvar::SEEDED]
        ; ldr w12, [x9, vvar::ATTENTION]
        ; and w13, w10, 1                     // the host is writing
        ; eor w11, w11, vvar::SEEDED_OK       // not seeded
        ; orr w11, w11, w12                   // attention
        ; orr w11, w11, w13
        ; cbnz w11, =>fallback
        ; isb                                 // the counter is read after the loads above
        ; mrs x12, CNTVCT_EL0
        ; ldr x13, [x9, vvar::CYCLE_LAST]
        ; ldr x14, [x9, vvar::MAX_DELTA]
        ; ldr x15, [x9, vvar::MULT]
        ; ldr w16, [x9, vvar::SHIFT]
        ; add x4, x9, x3
        ; ldp x5, x6, [x4]                    // anchor sec, nsec
        ; dmb ishld
        ; ldr w11, [x9]                       // SEQ again: retry if it moved
        ; cmp w11, w10
        ; b.ne =>retry
        ; sub x12, x12, x13                   // ticks since the anchor; a counter that
        ; cmp x12, x14                        // went backwards wraps to a huge delta,
        ; b.hs =>fallback                     // caught with the stale anchors
        ; mul x12, x12, x15
        ; lsr x12, x12, x16
        ; add x6, x6, x12
        // MAX_DELTA ticks are under a second (`vvar::max_delta`), so nsec < 2e9 here and
        // one conditional subtraction normalises it.
        ; movz x7, one_e9 & 0xffff
        ; movk x7, one_e9 >> 16, lsl 16
        ; subs x12, x6, x7
        ; csel x6, x12, x6, hs
        ; cinc x5, x5, hs
    );
}

/// Assembles the code for placement at `text_off` bytes into the vDSO image (the vvar
/// page lies `vvar::VVAR_SIZE` bytes before the image).
pub fn assemble(text_off: u64) -> Code {
    let mut ops: Asm = VecAssembler::new(0);

    // int __kernel_clock_gettime(clockid_t clk /* w0 */, struct timespec *ts /* x1 */)
    let cgt_start = ops.offset().0;
    let cgt_fallback = ops.new_dynamic_label();
    dynasm!(ops
        ; .arch aarch64
        ; ->clock_gettime:
        ; mov w2, 8
        ; cmp w0, 8
        ; csel w2, w0, w2, lo                 // ids past 7 (and negative ones): entry 8
        ; adr x4, ->gettime_slot
        ; ldrb w3, [x4, w2, uxtw]
        ; tbnz w3, 7, =>cgt_fallback
        ; lsl x3, x3, 4
        ; add x3, x3, vvar::CLOCKS
    );
    emit_fast_read(&mut ops, text_off, cgt_fallback);
    dynasm!(ops
        ; .arch aarch64
        ; stp x5, x6, [x1]
        ; mov w0, 0
        ; ret
        ; =>cgt_fallback
        ; movz x8, NR_CLOCK_GETTIME
        ; svc 0
        ; ret
    );
    let cgt_end = ops.offset().0;
    let fallback_ret = cgt_end - 4;

    // int __kernel_gettimeofday(struct timeval *tv /* x0 */, struct timezone *tz /* x1 */):
    // the same read inline for REALTIME; when it cannot serve, a call to clock_gettime
    // (whose fallback SVC is the one that may re-anchor).
    let gtod_start = ops.offset().0;
    let slow = ops.new_dynamic_label();
    let realtime_slot =
        vvar::CLOCKS + vvar::CLOCK_SLOT * GETTIME_SLOT[vvar::CLOCK_REALTIME as usize] as u32;
    dynasm!(ops
        ; .arch aarch64
        ; cbz x0, >tz
        ; movz x3, realtime_slot
    );
    emit_fast_read(&mut ops, text_off, slow);
    dynasm!(ops
        ; .arch aarch64
        ; lsr x6, x6, 3                       // nsec / 1000 = umulh(nsec >> 3, M) >> 4
        ; movz x4, (DIV1000 & 0xffff) as u32
        ; movk x4, ((DIV1000 >> 16) & 0xffff) as u32, lsl 16
        ; movk x4, ((DIV1000 >> 32) & 0xffff) as u32, lsl 32
        ; movk x4, (DIV1000 >> 48) as u32, lsl 48
        ; umulh x6, x6, x4
        ; lsr x6, x6, 4
        ; stp x5, x6, [x0]
        ; tz:
        ; cbz x1, >ok
        ; str xzr, [x1]                       // struct timezone: always zero on Linux
        ; ok:
        ; mov w0, 0
        ; ret
        ; =>slow
        ; stp x29, x30, [sp, -48]!
        ; mov x29, sp
        ; stp x0, x1, [sp, 16]
        ; mov w0, vvar::CLOCK_REALTIME as u32
        ; add x1, sp, 32
        ; bl ->clock_gettime
        ; cbnz w0, >out
        ; ldr x0, [sp, 16]
        ; ldp x2, x3, [sp, 32]
        ; movz x4, 1000
        ; udiv x3, x3, x4
        ; stp x2, x3, [x0]
        ; ldr x1, [sp, 24]
        ; cbz x1, >ok2
        ; str xzr, [x1]
        ; ok2:
        ; mov w0, 0
        ; out:
        ; ldp x29, x30, [sp], 48
        ; ret
    );
    let gtod_end = ops.offset().0;

    // int __kernel_clock_getres(clockid_t clk /* w0 */, struct timespec *res /* x1 */)
    let res_start = ops.offset().0;
    dynasm!(ops
        ; .arch aarch64
        ; cmp w0, 7
        ; b.hi >fallback
        ; adr x2, ->getres_kind
        ; ldrb w3, [x2, w0, uxtw]
        ; tbnz w3, 7, >fallback
        ; lsl x3, x3, 3
        ; add x3, x3, vvar::RES_HIRES
    );
    adr_vvar(&mut ops, text_off);
    dynasm!(ops
        ; .arch aarch64
        ; ldr x4, [x9, x3]
        ; cbz x4, >fallback                   // not published
        ; cbz x1, >ok
        ; stp xzr, x4, [x1]
        ; ok:
        ; mov w0, 0
        ; ret
        ; fallback:
        ; movz x8, NR_CLOCK_GETRES
        ; svc 0
        ; ret
    );
    let res_end = ops.offset().0;

    // __kernel_rt_sigreturn: a NOP first, as on Linux (unwinders look one instruction back).
    dynasm!(ops ; .arch aarch64 ; nop);
    let sigret_start = ops.offset().0;
    dynasm!(ops
        ; .arch aarch64
        ; movz x8, NR_RT_SIGRETURN
        ; svc 0
    );
    let sigret_end = ops.offset().0;

    // int __kernel_getcpu(unsigned *cpu, unsigned *node, void *cache): the host answers.
    let getcpu_start = ops.offset().0;
    dynasm!(ops
        ; .arch aarch64
        ; movz x8, NR_GETCPU
        ; svc 0
        ; ret
    );
    let getcpu_end = ops.offset().0;

    dynasm!(ops ; .arch aarch64 ; ->gettime_slot:);
    dynasm!(ops ; .arch aarch64 ; .bytes GETTIME_SLOT.iter().copied());
    dynasm!(ops ; .arch aarch64 ; ->getres_kind:);
    dynasm!(ops ; .arch aarch64 ; .bytes GETRES_KIND.iter().copied());

    let bytes = ops.finalize().expect("vDSO code assembles");
    Code {
        bytes,
        clock_gettime: Func {
            start: cgt_start,
            end: cgt_end,
        },
        gettimeofday: Func {
            start: gtod_start,
            end: gtod_end,
        },
        clock_getres: Func {
            start: res_start,
            end: res_end,
        },
        rt_sigreturn: Func {
            start: sigret_start,
            end: sigret_end,
        },
        getcpu: Func {
            start: getcpu_start,
            end: getcpu_end,
        },
        fallback_ret,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(c: &Code, off: usize) -> u32 {
        u32::from_le_bytes(c.bytes[off..off + 4].try_into().unwrap())
    }

    #[test]
    fn div1000_is_exact_for_nanoseconds() {
        let div = |n: u64| (((n >> 3) as u128 * DIV1000 as u128) >> 64) as u64 >> 4;
        for n in (0..2_000_000).chain((0..1_000_000_000).step_by(999_983)) {
            assert_eq!(div(n), n / 1000, "{n}");
        }
        assert_eq!(div(999_999_999), 999_999);
    }

    #[test]
    fn encodings() {
        let c = assemble(0x400);
        // The instruction before fallback_ret is SVC #0; fallback_ret is RET.
        assert_eq!(word(&c, c.fallback_ret - 4), 0xd400_0001);
        assert_eq!(word(&c, c.fallback_ret), 0xd65f_03c0);
        // rt_sigreturn: mov x8, #139; svc #0 (the words the old sigpage held).
        assert_eq!(word(&c, c.rt_sigreturn.start), 0xd280_1168);
        assert_eq!(word(&c, c.rt_sigreturn.start + 4), 0xd400_0001);
        // ADR encoding: ADR x9, #-4 is 0x10ffffe9.
        assert_eq!(adr(9, -4), 0x10ff_ffe9);
        // MRS x12, CNTVCT_EL0
        assert!((0..c.bytes.len() - 8)
            .step_by(4)
            .any(|o| word(&c, o) == 0xd53b_e04c));
    }
}
