//! Alternate signal stacks: `sigaltstack` and where a handler's frame goes (Linux's
//! `do_sigaltstack`, `on_sig_stack`, `sigsp`, `__save_altstack`). Per thread
//! (`ThreadState::altstack`): a new thread starts without one, a fork child keeps the
//! parent's, execve clears it.

use crate::errno::Errno;

pub const SS_ONSTACK: u32 = 1;
pub const SS_DISABLE: u32 = 2;
/// Disarm the stack while a handler runs on it (re-armed by rt_sigreturn).
pub const SS_AUTODISARM: u32 = 1 << 31;
/// arm64's MINSIGSTKSZ (the kernel's minimum for sigaltstack).
pub const MINSIGSTKSZ: u64 = 5120;
/// sizeof(stack_t) on AArch64: { void *ss_sp; int ss_flags; size_t ss_size; }.
pub const STACK_T_SIZE: usize = 24;

/// A guest `stack_t`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackT {
    pub sp: u64,
    pub flags: u32,
    pub size: u64,
}

impl StackT {
    pub fn to_bytes(self) -> [u8; STACK_T_SIZE] {
        let mut b = [0u8; STACK_T_SIZE];
        b[0..8].copy_from_slice(&self.sp.to_le_bytes());
        b[8..12].copy_from_slice(&self.flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.size.to_le_bytes());
        b
    }

    pub fn from_bytes(b: &[u8; STACK_T_SIZE]) -> StackT {
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        StackT {
            sp: u64_at(0),
            flags: u32::from_le_bytes(b[8..12].try_into().unwrap()),
            size: u64_at(16),
        }
    }
}

/// A thread's alternate signal stack (the kernel's sas_ss_sp/size/flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AltStack {
    pub sp: u64,
    pub size: u64,
    /// The flags as last set (SS_DISABLE when there is none; SS_AUTODISARM kept).
    pub flags: u32,
}

impl Default for AltStack {
    fn default() -> Self {
        AltStack {
            sp: 0,
            size: 0,
            flags: SS_DISABLE,
        }
    }
}

impl AltStack {
    /// True if `sp` (the interrupted stack pointer) is on this stack. An autodisarmed
    /// stack never counts: a handler on it may install another one.
    pub fn on_stack(&self, sp: u64) -> bool {
        self.flags & SS_AUTODISARM == 0 && sp > self.sp && sp - self.sp <= self.size
    }

    /// SS_DISABLE, SS_ONSTACK or 0 for a thread whose stack pointer is `sp`.
    fn state(&self, sp: u64) -> u32 {
        if self.size == 0 {
            SS_DISABLE
        } else if self.on_stack(sp) {
            SS_ONSTACK
        } else {
            0
        }
    }

    /// What sigaltstack reports as the old stack.
    pub fn query(&self, sp: u64) -> StackT {
        StackT {
            sp: self.sp,
            size: self.size,
            flags: self.state(sp) | (self.flags & SS_AUTODISARM),
        }
    }

    /// sigaltstack's set half; `sp` is the caller's stack pointer.
    pub fn set(&mut self, new: StackT, sp: u64) -> Result<(), Errno> {
        if self.on_stack(sp) {
            return Err(Errno::EPERM);
        }
        let mode = new.flags & !SS_AUTODISARM;
        if mode != SS_DISABLE && mode != SS_ONSTACK && mode != 0 {
            return Err(Errno::EINVAL);
        }
        if mode == SS_DISABLE {
            *self = AltStack {
                sp: 0,
                size: 0,
                flags: new.flags,
            };
            return Ok(());
        }
        if new.size < MINSIGSTKSZ {
            return Err(Errno::ENOMEM);
        }
        *self = AltStack {
            sp: new.sp,
            size: new.size,
            flags: new.flags,
        };
        Ok(())
    }

    /// Where a handler's frame is built: the top of the alternate stack if the handler
    /// asked for it (SA_ONSTACK) and the thread is not already on it, else `sp`.
    pub fn frame_top(&self, onstack: bool, sp: u64) -> u64 {
        if onstack && self.state(sp) == 0 {
            self.sp.wrapping_add(self.size)
        } else {
            sp
        }
    }

    /// The frame's uc_stack (`__save_altstack`), after which an SS_AUTODISARM stack is
    /// disarmed until rt_sigreturn restores uc_stack.
    pub fn save_for_frame(&mut self) -> StackT {
        let saved = StackT {
            sp: self.sp,
            flags: self.flags,
            size: self.size,
        };
        if self.flags & SS_AUTODISARM != 0 {
            *self = AltStack::default();
        }
        saved
    }

    /// rt_sigreturn's `restore_altstack`: sets the stack from uc_stack; refusals (EPERM
    /// while still on the stack, EINVAL, ENOMEM) are ignored as Linux does.
    pub fn restore(&mut self, saved: StackT, sp: u64) {
        let _ = self.set(saved, sp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_query_and_frames() {
        let mut a = AltStack::default();
        assert_eq!(a.query(0x1000).flags, SS_DISABLE);
        let st = |sp, flags, size| StackT { sp, flags, size };
        assert_eq!(a.set(st(0x10000, 0, 4096), 0x9000), Err(Errno::ENOMEM));
        assert_eq!(a.set(st(0x10000, 7, 8192), 0x9000), Err(Errno::EINVAL));
        a.set(st(0x10000, 0, 8192), 0x9000).unwrap();
        assert_eq!(a.query(0x9000), st(0x10000, 0, 8192));
        assert_eq!(a.query(0x11000).flags, SS_ONSTACK);
        assert_eq!(a.frame_top(true, 0x9000), 0x12000);
        assert_eq!(a.frame_top(false, 0x9000), 0x9000);
        // Already on it: frames nest below the current sp; changes are refused.
        assert_eq!(a.frame_top(true, 0x11000), 0x11000);
        assert_eq!(a.set(st(0, SS_DISABLE, 0), 0x11000), Err(Errno::EPERM));
        a.set(st(0, SS_DISABLE, 0), 0x9000).unwrap();
        assert_eq!(a.frame_top(true, 0x9000), 0x9000);
    }

    #[test]
    fn autodisarm_until_sigreturn() {
        let mut a = AltStack::default();
        let armed = StackT {
            sp: 0x10000,
            flags: SS_AUTODISARM,
            size: 8192,
        };
        a.set(armed, 0x9000).unwrap();
        let top = a.frame_top(true, 0x9000);
        let saved = a.save_for_frame();
        assert_eq!((top, saved), (0x12000, armed));
        assert_eq!(a.query(0x11000).flags, SS_DISABLE);
        a.restore(saved, 0x11f00);
        assert_eq!(a.query(0x11000), armed);
        assert_eq!(StackT::from_bytes(&armed.to_bytes()), armed);
    }
}
