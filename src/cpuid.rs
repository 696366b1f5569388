//! EL0 reads of the CPU ID registers (`MRS Xt, MIDR_EL1`, `ID_AA64ISAR0_EL1`, ...) are
//! undefined at EL0 (EC 0x00, or EC 0x18 where trapped); Linux decodes and emulates them
//! for user space (HWCAP_CPUID), exposing a sanitised view. This module does the same, from the vCPU's own registers, hiding
//! the features the guest model does not enable at EL0 (SVE, pointer authentication,
//! BTI, MTE), so the view agrees with AT_HWCAP.

use crate::backend::{BackendError, Reg, SysReg, Vcpu};

/// ESR_EL1.EC for a trapped MSR/MRS/system instruction.
pub const EC_SYSREG: u64 = 0x18;
/// ESR_EL1.EC for an undefined instruction.
pub const EC_UNKNOWN: u64 = 0x00;

fn field_mask(shift: u32) -> u64 {
    0xf << shift
}

/// The value an EL0 read of the ID register (op0=3, op1=0, CRn=0, CRm, op2) returns, or
/// None if it is not an ID register (the read is then an undefined instruction).
fn id_value(vcpu: &dyn Vcpu, crm: u64, op2: u64) -> Result<Option<u64>, BackendError> {
    let rd = |r: SysReg| vcpu.sys_reg(r);
    Ok(Some(match (crm, op2) {
        (0, 0) => rd(SysReg::MidrEl1)?,
        (0, 5) => 0x8000_0000, // MPIDR_EL1: uniprocessor-style affinity 0
        (0, 6) => 0,           // REVIDR_EL1
        (4, 0) => rd(SysReg::IdAa64Pfr0El1)? & !field_mask(32), // no SVE
        (4, 1) => rd(SysReg::IdAa64Pfr1El1)? & !(field_mask(0) | field_mask(8)), // no BTI, MTE
        (6, 0) => rd(SysReg::IdAa64Isar0El1)?,
        // No address/generic pointer authentication.
        (6, 1) => {
            rd(SysReg::IdAa64Isar1El1)?
                & !(field_mask(4) | field_mask(8) | field_mask(24) | field_mask(28))
        }
        (7, 0..=2) => 0, // MMFR*: Linux exposes none of their fields to user space
        (1..=7, _) => 0, // the rest of the ID space reads as zero
        _ => return Ok(None),
    }))
}

/// Decoded `MRS Xt, <sysreg>`: (op0, op1, CRn, CRm, op2, Rt).
type Mrs = (u64, u64, u64, u64, u64, u8);

fn decode(esr: u64, insn: Option<u32>) -> Option<Mrs> {
    match (esr >> 26) & 0x3f {
        EC_SYSREG => {
            let iss = esr & 0x1ff_ffff;
            if iss & 1 == 0 {
                return None; // a write (MSR)
            }
            let f = |shift: u32, bits: u32| (iss >> shift) & ((1 << bits) - 1);
            Some((
                f(20, 2),
                f(14, 3),
                f(10, 4),
                f(1, 4),
                f(17, 3),
                f(5, 5) as u8,
            ))
        }
        EC_UNKNOWN => {
            let i = u64::from(insn?);
            // MRS: 1101 0101 0011 o0 op1 CRn CRm op2 Rt
            if i & 0xfff0_0000 != 0xd530_0000 {
                return None;
            }
            let f = |shift: u32, bits: u32| (i >> shift) & ((1 << bits) - 1);
            Some((
                2 + f(19, 1),
                f(16, 3),
                f(12, 4),
                f(8, 4),
                f(5, 3),
                f(0, 5) as u8,
            ))
        }
        _ => None,
    }
}

/// Emulates an EL0 `MRS` of an ID register: writes Xt and steps past the instruction.
/// `insn` is the instruction at ELR_EL1 (needed for EC 0x00). Returns false if the
/// exception is something else (the caller raises SIGILL).
pub fn emulate_mrs(vcpu: &mut dyn Vcpu, esr: u64, insn: Option<u32>) -> Result<bool, BackendError> {
    let Some((op0, op1, crn, crm, op2, rt)) = decode(esr, insn) else {
        return Ok(false);
    };
    if op0 != 3 || op1 != 0 || crn != 0 {
        return Ok(false);
    }
    let Some(v) = id_value(vcpu, crm, op2)? else {
        return Ok(false);
    };
    if rt != 31 {
        vcpu.set_reg(Reg::X(rt), v)?;
    }
    let elr = vcpu.sys_reg(SysReg::ElrEl1)?;
    vcpu.set_sys_reg(SysReg::ElrEl1, elr + 4)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_mrs_from_the_instruction_and_from_esr() {
        // mrs x1, midr_el1 = 0xd5380001
        assert_eq!(decode(0, Some(0xd538_0001)), Some((3, 0, 0, 0, 0, 1)));
        // mrs x2, id_aa64pfr0_el1 = 0xd5380402
        assert_eq!(decode(0, Some(0xd538_0402)), Some((3, 0, 0, 4, 0, 2)));
        // not an MRS
        assert_eq!(decode(0, Some(0xd503_201f)), None);
        // EC 0x18, read of (3,0,0,6,0) into x5
        let iss = 1 | (5 << 5) | (6 << 1) | (3 << 20);
        assert_eq!(
            decode((EC_SYSREG << 26) | iss, None),
            Some((3, 0, 0, 6, 0, 5))
        );
        // a write is not emulated
        assert_eq!(decode((EC_SYSREG << 26) | (iss & !1), None), None);
    }
}
