//! AT_HWCAP / AT_HWCAP2 computed from the vCPU's ID registers, as Linux's cpufeature code
//! does, limited to features the guest model enables at EL0 (no SVE: CPACR.ZEN is off;
//! no pointer authentication or BTI: SCTLR keys are off). CPUID is set: EL0 reads of the
//! ID registers are emulated with the same view (`crate::cpuid`).

use crate::backend::{SysReg, Vcpu};

fn field(reg: u64, shift: u32) -> u64 {
    (reg >> shift) & 0xf
}

/// Returns (AT_HWCAP, AT_HWCAP2).
pub fn from_vcpu(vcpu: &dyn Vcpu) -> (u64, u64) {
    let rd = |r| vcpu.sys_reg(r).unwrap_or(0);
    compute(
        rd(SysReg::IdAa64Isar0El1),
        rd(SysReg::IdAa64Isar1El1),
        rd(SysReg::IdAa64Pfr0El1),
        rd(SysReg::IdAa64Pfr1El1),
        rd(SysReg::IdAa64Mmfr2El1),
    )
}

pub fn compute(isar0: u64, isar1: u64, pfr0: u64, pfr1: u64, mmfr2: u64) -> (u64, u64) {
    let mut h = 0u64;
    let mut h2 = 0u64;
    let mut set = |cond: bool, bit: u32| {
        if cond {
            h |= 1 << bit;
        }
    };
    let fp = field(pfr0, 16);
    let simd = field(pfr0, 20);
    set(fp != 0xf, 0); // FP
    set(simd != 0xf, 1); // ASIMD
    set(field(isar0, 4) >= 1, 3); // AES
    set(field(isar0, 4) >= 2, 4); // PMULL
    set(field(isar0, 8) >= 1, 5); // SHA1
    set(field(isar0, 12) >= 1, 6); // SHA2
    set(field(isar0, 16) >= 1, 7); // CRC32
    set(field(isar0, 20) >= 2, 8); // ATOMICS
    set(fp == 1, 9); // FPHP
    set(simd == 1, 10); // ASIMDHP
    set(true, 11); // CPUID: EL0 reads of ID registers are emulated (crate::cpuid)
    set(field(isar0, 28) >= 1, 12); // ASIMDRDM
    set(field(isar1, 12) >= 1, 13); // JSCVT
    set(field(isar1, 16) >= 1, 14); // FCMA
    set(field(isar1, 20) >= 1, 15); // LRCPC
    set(field(isar1, 0) >= 1, 16); // DCPOP
    set(field(isar0, 32) >= 1, 17); // SHA3
    set(field(isar0, 36) >= 1, 18); // SM3
    set(field(isar0, 40) >= 1, 19); // SM4
    set(field(isar0, 44) >= 1, 20); // ASIMDDP
    set(field(isar0, 12) >= 2, 21); // SHA512
    set(field(isar0, 48) >= 1, 23); // ASIMDFHM
    set(field(pfr0, 48) >= 1, 24); // DIT
    set(field(mmfr2, 32) >= 1, 25); // USCAT
    set(field(isar1, 20) >= 2, 26); // ILRCPC
    set(field(isar0, 52) >= 1, 27); // FLAGM
    set(field(pfr1, 4) >= 2, 28); // SSBS (with MSR/MRS access)
    set(field(isar1, 36) >= 1, 29); // SB
    let mut set2 = |cond: bool, bit: u32| {
        if cond {
            h2 |= 1 << bit;
        }
    };
    set2(field(isar1, 0) >= 2, 0); // DCPODP
    set2(field(isar0, 52) >= 2, 7); // FLAGM2
    set2(field(isar1, 32) >= 1, 8); // FRINT
    set2(field(isar1, 52) >= 1, 13); // I8MM
    set2(field(isar1, 44) >= 1, 14); // BF16
    set2(field(isar1, 48) >= 1, 15); // DGH
    set2(field(isar0, 60) >= 1, 16); // RNG
    (h, h2)
}

#[cfg(test)]
mod tests {
    #[test]
    fn plain_v8_has_fp_and_asimd_only() {
        let (h, h2) = super::compute(0, 0, 0, 0, 0);
        assert_eq!(h, 0b11 | 1 << 11);
        assert_eq!(h2, 0);
        // FP and AdvSIMD "not implemented" (0xf) clear both bits.
        let (h, _) = super::compute(0, 0, 0xff << 16, 0, 0);
        assert_eq!(h, 1 << 11);
    }
}
