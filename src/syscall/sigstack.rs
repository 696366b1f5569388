//! sigaltstack(2): the calling thread's alternate signal stack (see `altstack`).

use super::{Ctx, SysResult};
use crate::backend::SysReg;
use crate::errno::Errno;
use crate::signal::altstack::{StackT, STACK_T_SIZE};

pub fn sigaltstack(ctx: &mut Ctx, a: [u64; 6]) -> SysResult {
    let (ss_va, old_va) = (a[0], a[1]);
    let sp = ctx.vcpu.sys_reg(SysReg::SpEl0).map_err(|_| Errno::EFAULT)?;
    let new = if ss_va != 0 {
        let b: [u8; STACK_T_SIZE] = ctx.read_val(ss_va)?;
        Some(StackT::from_bytes(&b))
    } else {
        None
    };
    let old = ctx.thread.altstack.query(sp);
    if let Some(new) = new {
        ctx.thread.altstack.set(new, sp)?;
    }
    if old_va != 0 {
        ctx.write_val(old_va, &old.to_bytes())?;
    }
    Ok(0)
}
