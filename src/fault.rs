//! Turns a synchronous EL0 exception (reported by the shim with `HVC #11`) into the signal
//! Linux would send, from ESR_EL1 and FAR_EL1.

use crate::guest::mm::MissingPage;
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

/// Whether `f` is a translation fault (no page-table entry): what it means depends on
/// the mappings ([`refine_segv`]).
pub fn is_translation(f: &Fault) -> bool {
    f.signo == SIGSEGV && f.code == SEGV_MAPERR
}

/// Linux decides a translation fault by VMA, not by the kind of MMU fault: outside any
/// mapping it is SEGV_MAPERR; inside one, a page with no entry is PROT_NONE (SEGV_ACCERR)
/// or past the end of a mapped file (SIGBUS, BUS_ADRERR). Other faults are unchanged.
pub fn refine_segv(f: Fault, page: MissingPage) -> Fault {
    if !is_translation(&f) {
        return f;
    }
    match page {
        MissingPage::Unmapped | MissingPage::Mapped => f,
        MissingPage::NoAccess => Fault {
            code: SEGV_ACCERR,
            ..f
        },
        MissingPage::PastEof => Fault {
            signo: SIGBUS,
            code: BUS_ADRERR,
            ..f
        },
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
        assert_eq!(refine_segv(none, MissingPage::NoAccess).code, SEGV_ACCERR);
        assert_eq!(refine_segv(none, MissingPage::Unmapped).code, SEGV_MAPERR);
        // Past the end of a mapped file: SIGBUS at the same address.
        let bus = refine_segv(none, MissingPage::PastEof);
        assert_eq!((bus.signo, bus.code, bus.addr), (SIGBUS, BUS_ADRERR, 0x10));
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
