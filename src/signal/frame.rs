//! Running guest signal handlers: Linux's AArch64 `rt_sigframe` on the guest stack, and
//! `rt_sigreturn` back. Synchronous delivery only: on syscall return and on faults (the
//! vCPU is always stopped at an HVC when this runs).

use crate::backend::{BackendError, Reg, SysReg, Vcpu};
use crate::guest::ram::GuestRam;
use crate::process::Process;
use crate::signal::altstack::{AltStack, StackT, STACK_T_SIZE};
use crate::signal::{sig_bit, KSigaction, SigInfo, SA_ONSTACK, SA_RESTORER, SIGKILL, SIGSTOP};

use super::info::SIGINFO_SIZE;

/// Offset of `uc` in the frame, of `uc_mcontext` in `uc`, of `__reserved` in it.
const UC_OFF: u64 = SIGINFO_SIZE;
/// uc_stack in `struct ucontext` (after uc_flags and uc_link).
const UC_STACK_OFF: u64 = 16;
const MCTX_OFF: u64 = 176;
const RESERVED_OFF: u64 = 288;
const RESERVED_SIZE: u64 = 4096;
const FRAME_SIZE: u64 = UC_OFF + MCTX_OFF + RESERVED_OFF + RESERVED_SIZE;
const FPSIMD_MAGIC: u32 = 0x4650_8001;
const FPSIMD_SIZE: u32 = 528;
const ESR_MAGIC: u32 = 0x4553_5201;

type R<T> = Result<T, BackendError>;

/// Builds the frame for `info` under `act` and points the vCPU at the handler. Returns
/// false if the frame cannot be written (the caller then kills with SIGSEGV, as Linux).
/// The frame goes on the thread's alternate stack `alt` when the handler has SA_ONSTACK
/// and the thread is not on it already.
pub fn deliver(
    proc: &Process,
    vcpu: &mut dyn Vcpu,
    alt: &mut AltStack,
    act: &KSigaction,
    info: &SigInfo,
    old_mask: u64,
    restorer: u64,
) -> R<bool> {
    let ram: &GuestRam = &proc.ram;
    let sp0 = vcpu.sys_reg(SysReg::SpEl0)?;
    let top = alt.frame_top(act.flags & SA_ONSTACK != 0, sp0);
    // frame + frame record, 16-byte aligned, below the interrupted (or alternate) stack.
    let total = FRAME_SIZE + 16;
    let frame = (top.wrapping_sub(total)) & !15;
    if frame > top || proc.mm.check_user(frame, total, true).is_err() {
        return Ok(false);
    }
    let mut regs = [0u64; 31];
    for (i, r) in regs.iter_mut().enumerate() {
        *r = vcpu.reg(Reg::X(i as u8))?;
    }
    let pc = vcpu.sys_reg(SysReg::ElrEl1)?;
    let pstate = vcpu.sys_reg(SysReg::SpsrEl1)?;

    ram.fill(frame, total, 0);
    ram.write(frame, &info.bytes());
    let uc = frame + UC_OFF;
    // uc_flags, uc_link = 0; uc_stack as the thread's alternate stack was set.
    ram.write(uc + UC_STACK_OFF, &alt.save_for_frame().to_bytes());
    ram.write_u64(uc + 40, old_mask);
    let mc = uc + MCTX_OFF;
    // fault_address: the data address of an abort (SIGSEGV, SIGBUS); Linux leaves it 0
    // for SIGILL, SIGTRAP and SIGFPE (arm64_notify_die).
    let fault_address = match info.signo {
        crate::signal::SIGSEGV | crate::signal::SIGBUS => info.addr.unwrap_or(0),
        _ => 0,
    };
    ram.write_u64(mc, fault_address);
    for (i, r) in regs.iter().enumerate() {
        ram.write_u64(mc + 8 + 8 * i as u64, *r);
    }
    ram.write_u64(mc + 256, sp0);
    ram.write_u64(mc + 264, pc);
    ram.write_u64(mc + 272, pstate);
    let mut ctx = mc + RESERVED_OFF;
    ram.write(ctx, &FPSIMD_MAGIC.to_le_bytes());
    ram.write(ctx + 4, &FPSIMD_SIZE.to_le_bytes());
    ram.write(ctx + 8, &(vcpu.reg(Reg::Fpsr)? as u32).to_le_bytes());
    ram.write(ctx + 12, &(vcpu.reg(Reg::Fpcr)? as u32).to_le_bytes());
    for n in 0..32u8 {
        ram.write(
            ctx + 16 + 16 * u64::from(n),
            &vcpu.simd_reg(n)?.to_le_bytes(),
        );
    }
    ctx += u64::from(FPSIMD_SIZE);
    if let Some(esr) = info.esr {
        ram.write(ctx, &ESR_MAGIC.to_le_bytes());
        ram.write(ctx + 4, &16u32.to_le_bytes());
        ram.write_u64(ctx + 8, esr);
    }
    // The terminator is already zero. Frame record: {fp, lr} of the interrupted code.
    let record = frame + FRAME_SIZE;
    ram.write_u64(record, regs[29]);
    ram.write_u64(record + 8, regs[30]);

    vcpu.set_reg(Reg::X(0), u64::from(info.signo))?;
    vcpu.set_reg(Reg::X(1), frame)?;
    vcpu.set_reg(Reg::X(2), uc)?;
    vcpu.set_reg(Reg::X(29), record)?;
    let lr = if act.flags & SA_RESTORER != 0 {
        act.restorer
    } else {
        restorer
    };
    vcpu.set_reg(Reg::X(30), lr)?;
    vcpu.set_sys_reg(SysReg::SpEl0, frame)?;
    vcpu.set_sys_reg(SysReg::ElrEl1, act.handler)?;
    // EL0t, keep nothing of the interrupted flags but the DIT/SSBS-free defaults.
    vcpu.set_sys_reg(SysReg::SpsrEl1, 0)?;
    Ok(true)
}

/// rt_sigreturn: restores the registers saved by [`deliver`] and the alternate stack
/// from uc_stack; returns the saved mask, or None if the frame is unreadable (the
/// caller kills with SIGSEGV).
pub fn sigreturn(proc: &Process, vcpu: &mut dyn Vcpu, alt: &mut AltStack) -> R<Option<u64>> {
    let frame = vcpu.sys_reg(SysReg::SpEl0)?;
    if frame % 16 != 0 || proc.mm.check_user(frame, FRAME_SIZE, false).is_err() {
        return Ok(None);
    }
    let ram = &proc.ram;
    let uc = frame + UC_OFF;
    let mask = ram.read_u64(uc + 40);
    let mut st = [0u8; STACK_T_SIZE];
    ram.read(uc + UC_STACK_OFF, &mut st);
    alt.restore(StackT::from_bytes(&st), frame);
    let mc = uc + MCTX_OFF;
    for i in 0..31u8 {
        vcpu.set_reg(Reg::X(i), ram.read_u64(mc + 8 + 8 * u64::from(i)))?;
    }
    vcpu.set_sys_reg(SysReg::SpEl0, ram.read_u64(mc + 256))?;
    vcpu.set_sys_reg(SysReg::ElrEl1, ram.read_u64(mc + 264))?;
    // Only the condition flags and EL0-legal bits come back: never a higher EL.
    let pstate = ram.read_u64(mc + 272);
    const EL0_BITS: u64 = 0xf000_0000 | (1 << 12) | (1 << 24) | (3 << 10); // NZCV SSBS DIT BTYPE
    vcpu.set_sys_reg(SysReg::SpsrEl1, pstate & EL0_BITS)?;
    let ctx = mc + RESERVED_OFF;
    let mut magic = [0u8; 4];
    ram.read(ctx, &mut magic);
    if u32::from_le_bytes(magic) == FPSIMD_MAGIC {
        let mut w = [0u8; 4];
        ram.read(ctx + 8, &mut w);
        vcpu.set_reg(Reg::Fpsr, u32::from_le_bytes(w).into())?;
        ram.read(ctx + 12, &mut w);
        vcpu.set_reg(Reg::Fpcr, u32::from_le_bytes(w).into())?;
        for n in 0..32u8 {
            let mut v = [0u8; 16];
            ram.read(ctx + 16 + 16 * u64::from(n), &mut v);
            vcpu.set_simd_reg(n, u128::from_le_bytes(v))?;
        }
    }
    Ok(Some(mask & !(sig_bit(SIGKILL) | sig_bit(SIGSTOP))))
}
