//! Turns a synchronous EL0 exception (reported by the shim with `HVC #11`) into the signal
//! Linux would send, from ESR_EL1 and FAR_EL1.

use crate::signal::{SIGBUS, SIGFPE, SIGILL, SIGSEGV, SIGTRAP};

/// A decoded guest fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub signo: u32,
    /// si_code (SEGV_MAPERR 1, SEGV_ACCERR 2, BUS_ADRALN 1, ILL_ILLOPC 1, TRAP_BRKPT 1...).
    pub code: i32,
    /// si_addr: the faulting data address, or the PC for instruction faults.
    pub addr: u64,
}

pub fn classify(esr: u64, far: u64, pc: u64) -> Fault {
    let ec = (esr >> 26) & 0x3f;
    let iss = esr & 0x1ff_ffff;
    let fsc = iss & 0x3f;
    let f = |signo, code, addr| Fault { signo, code, addr };
    match ec {
        // Instruction / data abort from a lower EL.
        0x20 | 0x24 => match fsc {
            0b100001 => f(SIGBUS, 1, far), // alignment fault: BUS_ADRALN
            0b000100..=0b000111 => f(SIGSEGV, 1, far), // translation: SEGV_MAPERR
            0b001000..=0b001111 => f(SIGSEGV, 2, far), // access flag / permission: SEGV_ACCERR
            0b010000 | 0b011000 => f(SIGBUS, 3, far), // external abort: BUS_OBJERR
            _ => f(SIGSEGV, 1, far),
        },
        0x22 => f(SIGBUS, 1, pc),  // PC alignment
        0x26 => f(SIGBUS, 1, far), // SP alignment
        0x3c => f(SIGTRAP, 1, pc), // BRK: TRAP_BRKPT
        0x30..=0x35 => f(SIGTRAP, 2, pc),
        0x2c => f(SIGFPE, 0, pc),
        // Unknown instruction, trapped MSR/MRS, FP/SVE access disabled, illegal state.
        _ => f(SIGILL, 1, pc),
    }
}

/// Linux's SEGV_MAPERR/SEGV_ACCERR split is by VMA, not by the kind of MMU fault: an
/// address inside a mapping that may not be accessed (a PROT_NONE page has no page-table
/// entry here, so it faults as a translation fault) is SEGV_ACCERR.
pub fn refine_segv(f: Fault, in_mapping: bool) -> Fault {
    if f.signo == SIGSEGV && f.code == SEGV_MAPERR && in_mapping {
        Fault {
            code: SEGV_ACCERR,
            ..f
        }
    } else {
        f
    }
}

/// An access past the end of a mapped file: SIGBUS, BUS_ADRERR, at `addr`.
pub fn past_eof(addr: u64) -> Fault {
    Fault {
        signo: SIGBUS,
        code: BUS_ADRERR,
        addr,
    }
}

/// The ESR a signal frame records (esr_context) for fault `f`: Linux records the ESR of
/// aborts, alignment faults and breakpoints, but not of undefined instructions (SIGILL
/// goes through `force_signal_inject` with no ESR).
pub fn frame_esr(f: &Fault, esr: u64) -> Option<u64> {
    (f.signo != SIGILL).then_some(esr)
}

pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;
pub const BUS_ADRERR: i32 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_common_faults() {
        // Data abort, translation fault level 3.
        let esr = (0x24 << 26) | 0b000111;
        assert_eq!(
            classify(esr, 0x10, 0x400000),
            Fault {
                signo: SIGSEGV,
                code: 1,
                addr: 0x10
            }
        );
        // Permission fault.
        assert_eq!(classify((0x24 << 26) | 0b001111, 8, 0).code, 2);
        // A translation fault inside a mapping (PROT_NONE) is ACCERR.
        let none = classify(esr, 0x10, 0);
        assert_eq!(refine_segv(none, true).code, SEGV_ACCERR);
        assert_eq!(refine_segv(none, false).code, SEGV_MAPERR);
        assert_eq!(classify(0x3c << 26, 0, 0x1234).signo, SIGTRAP);
        assert_eq!(
            classify(0, 0, 0x1234),
            Fault {
                signo: SIGILL,
                code: 1,
                addr: 0x1234
            }
        );
    }
}
