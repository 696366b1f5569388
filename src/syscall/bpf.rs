//! Classic BPF as seccomp accepts it: the checks of Linux's `bpf_check_classic` and
//! `seccomp_check_filter` (the same programs are refused with EINVAL), and an
//! interpreter over `struct seccomp_data` (64 bytes, read as 16 little-endian words).

use crate::errno::Errno;

/// One `struct sock_filter` (8 bytes in guest memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl Insn {
    pub fn from_bytes(b: &[u8]) -> Insn {
        Insn {
            code: u16::from_le_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

/// BPF_MAXINSNS.
pub const MAX_INSNS: usize = 4096;
/// sizeof(struct seccomp_data).
pub const DATA_LEN: u32 = 64;
/// BPF_MEMWORDS.
const MEMWORDS: u32 = 16;

// Classes, sizes, modes, operations and sources (linux/bpf_common.h).
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const STX: u16 = 0x03;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;
const W: u16 = 0x00;
const IMM: u16 = 0x00;
const ABS: u16 = 0x20;
const MEM: u16 = 0x60;
const LEN: u16 = 0x80;
const K: u16 = 0x00;
const X: u16 = 0x08;
const A: u16 = 0x10;
const ADD: u16 = 0x00;
const SUB: u16 = 0x10;
const MUL: u16 = 0x20;
const DIV: u16 = 0x30;
const OR: u16 = 0x40;
const AND: u16 = 0x50;
const LSH: u16 = 0x60;
const RSH: u16 = 0x70;
const NEG: u16 = 0x80;
const XOR: u16 = 0xa0;
const JA: u16 = 0x00;
const JEQ: u16 = 0x10;
const JGT: u16 = 0x20;
const JGE: u16 = 0x30;
const JSET: u16 = 0x40;
const TAX: u16 = 0x00;
const TXA: u16 = 0x80;

/// The opcodes seccomp accepts (`seccomp_check_filter`; BPF_MOD, the byte and half-word
/// loads, indirect loads and the extensions are refused).
fn allowed(code: u16) -> bool {
    matches!(
        code,
        c if c == LD | W | ABS
            || c == LD | W | LEN
            || c == LDX | W | LEN
            || c == RET | K
            || c == RET | A
            || c == ALU | NEG
            || c == LD | IMM
            || c == LDX | IMM
            || c == MISC | TAX
            || c == MISC | TXA
            || c == LD | MEM
            || c == LDX | MEM
            || c == ST
            || c == STX
            || c == JMP | JA
    ) || {
        let (class, op, src) = (code & 7, code & 0xf0, code & 0x08);
        let rest = code & !0xff == 0;
        rest && match class {
            ALU => matches!(op, ADD | SUB | MUL | DIV | AND | OR | XOR | LSH | RSH),
            JMP => matches!(op, JEQ | JGT | JGE | JSET) && (src == K || src == X),
            _ => false,
        }
    }
}

/// Checks a program as Linux does before accepting it as a filter: EINVAL for anything
/// it refuses (empty or too long, an opcode seccomp does not allow, a load outside
/// seccomp_data or unaligned, a constant division by zero or shift past 31, a jump out of
/// the program, a scratch slot read before every path to it wrote it, no final RET).
pub fn check(prog: &[Insn]) -> Result<(), Errno> {
    let len = prog.len();
    if len == 0 || len > MAX_INSNS {
        return Err(Errno::EINVAL);
    }
    for (pc, i) in prog.iter().enumerate() {
        if !allowed(i.code) {
            return Err(Errno::EINVAL);
        }
        let class = i.code & 7;
        let ok = match class {
            LD | LDX if i.code & 0xe0 == MEM => i.k < MEMWORDS,
            LD if i.code & 0xe0 == ABS => i.k < DATA_LEN && i.k.is_multiple_of(4),
            ST | STX => i.k < MEMWORDS,
            ALU if i.code & 0x08 == K => match i.code & 0xf0 {
                DIV => i.k != 0,
                LSH | RSH => i.k < 32,
                _ => true,
            },
            JMP if i.code & 0xf0 == JA => (i.k as usize) < len - pc - 1,
            JMP => pc + 1 + (i.jt as usize) < len && pc + 1 + (i.jf as usize) < len,
            _ => true,
        };
        if !ok {
            return Err(Errno::EINVAL);
        }
    }
    if prog[len - 1].code & 7 != RET {
        return Err(Errno::EINVAL);
    }
    check_load_and_stores(prog)
}

/// Linux's `check_load_and_stores`: every scratch-slot load must follow a store to that
/// slot on every path (jumps go forward only, so one pass suffices).
fn check_load_and_stores(prog: &[Insn]) -> Result<(), Errno> {
    let mut masks = vec![u16::MAX; prog.len()];
    let mut valid: u16 = 0;
    for (pc, i) in prog.iter().enumerate() {
        valid &= masks[pc];
        match i.code {
            c if c == ST || c == STX => valid |= 1 << i.k,
            c if (c == LD | MEM || c == LDX | MEM) && valid & (1 << i.k) == 0 => {
                return Err(Errno::EINVAL);
            }
            c if c == JMP | JA => {
                masks[pc + 1 + i.k as usize] &= valid;
                valid = u16::MAX;
            }
            c if c & 7 == JMP => {
                masks[pc + 1 + i.jt as usize] &= valid;
                masks[pc + 1 + i.jf as usize] &= valid;
                valid = u16::MAX;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Runs a checked program over `data` (seccomp_data as words) and returns its result.
pub fn run(prog: &[Insn], data: &[u32; 16]) -> u32 {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; MEMWORDS as usize];
    let mut pc = 0usize;
    while let Some(i) = prog.get(pc) {
        pc += 1;
        let k = i.k;
        let class = i.code & 7;
        match class {
            LD | LDX => {
                let v = match i.code & 0xe0 {
                    ABS => data[(k / 4) as usize],
                    LEN => DATA_LEN,
                    MEM => mem[k as usize],
                    _ => k,
                };
                if class == LD {
                    a = v
                } else {
                    x = v
                }
            }
            ST => mem[k as usize] = a,
            STX => mem[k as usize] = x,
            ALU => {
                let v = if i.code & X != 0 { x } else { k };
                a = match i.code & 0xf0 {
                    ADD => a.wrapping_add(v),
                    SUB => a.wrapping_sub(v),
                    MUL => a.wrapping_mul(v),
                    // Division by a zero X ends the program with 0, as Linux's.
                    DIV => match a.checked_div(v) {
                        Some(q) => q,
                        None => return 0,
                    },
                    OR => a | v,
                    AND => a & v,
                    LSH => a.wrapping_shl(v),
                    RSH => a.wrapping_shr(v),
                    NEG => a.wrapping_neg(),
                    _ => a ^ v,
                };
            }
            JMP => {
                let v = if i.code & X != 0 { x } else { k };
                let taken = match i.code & 0xf0 {
                    JA => {
                        pc += k as usize;
                        continue;
                    }
                    JEQ => a == v,
                    JGT => a > v,
                    JGE => a >= v,
                    _ => a & v != 0,
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            RET => return if i.code & A != 0 { a } else { k },
            _ => {
                if i.code & 0xf8 == TXA {
                    a = x
                } else {
                    debug_assert_eq!(i.code & 0xf8, TAX);
                    x = a
                }
            }
        }
    }
    // Unreachable for a checked program (it ends with RET).
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }

    #[test]
    fn allow_unless_getpid() {
        let p = [
            i(LD | W | ABS, 0, 0, 0),
            i(JMP | JEQ | K, 0, 1, 172),
            i(RET | K, 0, 0, 0x0005_0001),
            i(RET | K, 0, 0, 0x7fff_0000),
        ];
        check(&p).unwrap();
        let mut d = [0u32; 16];
        d[0] = 172;
        assert_eq!(run(&p, &d), 0x0005_0001);
        d[0] = 64;
        assert_eq!(run(&p, &d), 0x7fff_0000);
    }

    #[test]
    fn refused_programs() {
        assert!(check(&[]).is_err());
        // No final RET.
        assert!(check(&[i(LD | IMM, 0, 0, 1)]).is_err());
        // Unaligned and out-of-range loads.
        assert!(check(&[i(LD | W | ABS, 0, 0, 2), i(RET | A, 0, 0, 0)]).is_err());
        assert!(check(&[i(LD | W | ABS, 0, 0, 64), i(RET | A, 0, 0, 0)]).is_err());
        // A byte load and BPF_MOD are not seccomp's.
        assert!(check(&[i(0x30, 0, 0, 0), i(RET | A, 0, 0, 0)]).is_err());
        assert!(check(&[i(ALU | 0x90, 0, 0, 3), i(RET | A, 0, 0, 0)]).is_err());
        // Division by a constant zero; a jump past the end.
        assert!(check(&[i(ALU | DIV, 0, 0, 0), i(RET | A, 0, 0, 0)]).is_err());
        assert!(check(&[i(JMP | JEQ, 1, 0, 0), i(RET | A, 0, 0, 0)]).is_err());
        // A scratch slot read before it is written on one path.
        let p = [
            i(JMP | JEQ, 0, 1, 0),
            i(ST, 0, 0, 3),
            i(LD | MEM, 0, 0, 3),
            i(RET | A, 0, 0, 0),
        ];
        assert!(check(&p).is_err());
        let p = [i(ST, 0, 0, 3), i(LD | MEM, 0, 0, 3), i(RET | A, 0, 0, 0)];
        check(&p).unwrap();
    }

    #[test]
    fn arithmetic_and_x() {
        let p = [
            i(LD | IMM, 0, 0, 7),
            i(MISC | TAX, 0, 0, 0),
            i(ALU | MUL | X, 0, 0, 0),
            i(ALU | SUB | K, 0, 0, 9),
            i(RET | A, 0, 0, 0),
        ];
        check(&p).unwrap();
        assert_eq!(run(&p, &[0; 16]), 40);
        // X = 0: division ends the program with 0.
        let p = [
            i(LD | IMM, 0, 0, 7),
            i(ALU | DIV | X, 0, 0, 0),
            i(RET | K, 0, 0, 5),
        ];
        check(&p).unwrap();
        assert_eq!(run(&p, &[0; 16]), 0);
    }
}
