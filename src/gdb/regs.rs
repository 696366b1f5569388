//! The guest's registers as gdb's AArch64 core set (x0-x30, sp, pc, cpsr, v0-v31, fpsr,
//! fpcr), read from and written to a stopped vCPU.

use gdbstub_arch::aarch64::reg::AArch64CoreRegs;

use crate::backend::{BackendError, Reg, SysReg, Vcpu};

pub(super) fn read_regs(vcpu: &dyn Vcpu) -> Result<AArch64CoreRegs, BackendError> {
    let mut r = AArch64CoreRegs::default();
    for (i, x) in r.x.iter_mut().enumerate() {
        *x = vcpu.reg(Reg::X(i as u8))?;
    }
    let shim = in_shim(vcpu)?;
    r.sp = vcpu.sys_reg(SysReg::SpEl0)?;
    if shim {
        r.pc = vcpu.sys_reg(SysReg::ElrEl1)?;
        r.cpsr = vcpu.sys_reg(SysReg::SpsrEl1)? as u32;
    } else {
        r.pc = vcpu.reg(Reg::Pc)?;
        r.cpsr = vcpu.reg(Reg::Pstate)? as u32;
    }
    for (i, v) in r.v.iter_mut().enumerate() {
        *v = vcpu.simd_reg(i as u8)?;
    }
    r.fpcr = vcpu.reg(Reg::Fpcr)? as u32;
    r.fpsr = vcpu.reg(Reg::Fpsr)? as u32;
    Ok(r)
}

/// PSTATE bits gdb may change: NZCV only (the EL, SP select and masks are the vCPU's).
const NZCV: u64 = 0xf000_0000;

pub(super) fn write_regs(vcpu: &mut dyn Vcpu, r: &AArch64CoreRegs) -> Result<(), BackendError> {
    for (i, x) in r.x.iter().enumerate() {
        vcpu.set_reg(Reg::X(i as u8), *x)?;
    }
    let shim = in_shim(vcpu)?;
    vcpu.set_sys_reg(SysReg::SpEl0, r.sp)?;
    let nzcv = u64::from(r.cpsr) & NZCV;
    if shim {
        if vcpu.sys_reg(SysReg::ElrEl1)? != r.pc {
            vcpu.set_sys_reg(SysReg::ElrEl1, r.pc)?;
        }
        let spsr = vcpu.sys_reg(SysReg::SpsrEl1)?;
        vcpu.set_sys_reg(SysReg::SpsrEl1, (spsr & !NZCV) | nzcv)?;
    } else {
        // Writing PC makes the engine leave its current block: only when it changes.
        if vcpu.reg(Reg::Pc)? != r.pc {
            vcpu.set_reg(Reg::Pc, r.pc)?;
        }
        let ps = vcpu.reg(Reg::Pstate)?;
        if ps & NZCV != nzcv {
            vcpu.set_reg(Reg::Pstate, (ps & !NZCV) | nzcv)?;
        }
    }
    for (i, v) in r.v.iter().enumerate() {
        vcpu.set_simd_reg(i as u8, *v)?;
    }
    vcpu.set_reg(Reg::Fpcr, r.fpcr.into())?;
    vcpu.set_reg(Reg::Fpsr, r.fpsr.into())?;
    Ok(())
}

pub(super) fn in_shim(vcpu: &dyn Vcpu) -> Result<bool, BackendError> {
    Ok((vcpu.reg(Reg::Pstate)? >> 2) & 3 != 0)
}
