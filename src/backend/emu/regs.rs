//! Register access through the engine: unicorn's register ids, system registers by
//! encoding (CP_REG), and the banked stack pointers.

use uc::{RegisterARM64, RegisterARM64CP};
use unicorn_engine_sys as uc;

use super::{check, EmuVcpu};
use crate::backend::{BackendError, Reg, Result, SysReg};

impl EmuVcpu {
    pub(super) fn raw_read(&self, id: RegisterARM64) -> Result<u64> {
        let mut v = 0u64;
        check(
            // SAFETY: `self.uc` is this vCPU's open engine, not running (we hold `&mut
            // self`); `v` is a u64, the size unicorn writes for an X/system register.
            unsafe { uc::uc_reg_read(self.uc, id as i32, (&mut v as *mut u64).cast()) },
            "reg read",
        )?;
        Ok(v)
    }

    pub(super) fn raw_write(&mut self, id: RegisterARM64, v: u64) -> Result<()> {
        check(
            // SAFETY: as in raw_read: our engine, a u64 it reads.
            unsafe { uc::uc_reg_write(self.uc, id as i32, (&v as *const u64).cast()) },
            "reg write",
        )
    }

    pub(super) fn cp(enc: (u8, u8, u8, u8, u8), val: u64) -> RegisterARM64CP {
        let (op0, op1, crn, crm, op2) = enc;
        RegisterARM64CP {
            crn: crn.into(),
            crm: crm.into(),
            op0: op0.into(),
            op1: op1.into(),
            op2: op2.into(),
            val,
        }
    }

    pub(super) fn cp_read(&self, enc: (u8, u8, u8, u8, u8)) -> Result<u64> {
        let mut r = Self::cp(enc, 0);
        check(
            // SAFETY: our engine, not running; `r` is the uc_arm64_cp_reg the call fills.
            unsafe {
                uc::uc_reg_read(
                    self.uc,
                    RegisterARM64::CP_REG as i32,
                    (&mut r as *mut RegisterARM64CP).cast(),
                )
            },
            "sysreg read",
        )?;
        Ok(r.val)
    }

    pub(super) fn cp_write(&mut self, enc: (u8, u8, u8, u8, u8), val: u64) -> Result<()> {
        let r = Self::cp(enc, val);
        check(
            // SAFETY: our engine, not running; `r` is a uc_arm64_cp_reg it reads.
            unsafe {
                uc::uc_reg_write(
                    self.uc,
                    RegisterARM64::CP_REG as i32,
                    (&r as *const RegisterARM64CP).cast(),
                )
            },
            "sysreg write",
        )
    }

    /// QEMU keeps the stack pointer in use in SP and only banks it into SP_ELx on an
    /// exception level change: SP_EL0/SP_EL1 must go through SP when they are current.
    pub(super) fn is_current_sp(&self, r: SysReg) -> Result<bool> {
        if !matches!(r, SysReg::SpEl0 | SysReg::SpEl1) {
            return Ok(false);
        }
        let pstate = self.raw_read(RegisterARM64::PSTATE)?;
        let (el, spsel) = ((pstate >> 2) & 3, pstate & 1);
        let current = if el == 0 || spsel == 0 {
            SysReg::SpEl0
        } else {
            SysReg::SpEl1
        };
        Ok(el <= 1 && current == r)
    }

    pub(super) fn direct(r: SysReg) -> Option<RegisterARM64> {
        Some(match r {
            SysReg::ElrEl1 => RegisterARM64::ELR_EL1,
            SysReg::EsrEl1 => RegisterARM64::ESR_EL1,
            SysReg::FarEl1 => RegisterARM64::FAR_EL1,
            SysReg::SpEl0 => RegisterARM64::SP_EL0,
            SysReg::SpEl1 => RegisterARM64::SP_EL1,
            SysReg::VbarEl1 => RegisterARM64::VBAR_EL1,
            SysReg::TpidrEl0 => RegisterARM64::TPIDR_EL0,
            SysReg::TpidrroEl0 => RegisterARM64::TPIDRRO_EL0,
            SysReg::TpidrEl1 => RegisterARM64::TPIDR_EL1,
            SysReg::Ttbr0El1 => RegisterARM64::TTBR0_EL1,
            SysReg::Ttbr1El1 => RegisterARM64::TTBR1_EL1,
            SysReg::MairEl1 => RegisterARM64::MAIR_EL1,
            SysReg::CpacrEl1 => RegisterARM64::CPACR_EL1,
            _ => return None,
        })
    }

    pub(super) fn gpr(r: Reg) -> Result<RegisterARM64> {
        Ok(match r {
            Reg::X(29) => RegisterARM64::X29,
            Reg::X(30) => RegisterARM64::X30,
            Reg::X(n) if n < 29 => {
                // X0..X28 are contiguous in unicorn's numbering.
                let id = RegisterARM64::X0 as u32 + u32::from(n);
                // SAFETY: RegisterARM64 is repr(u32) and X0+n (n < 29) is X<n>.
                unsafe { std::mem::transmute::<u32, RegisterARM64>(id) }
            }
            Reg::X(n) => return Err(BackendError(format!("no register X{n}"))),
            Reg::Pc => RegisterARM64::PC,
            Reg::Pstate => RegisterARM64::PSTATE,
            Reg::Fpcr => RegisterARM64::FPCR,
            Reg::Fpsr => RegisterARM64::FPSR,
        })
    }
}
