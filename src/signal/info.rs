//! The guest's `siginfo_t`: what a queued signal carries and its 128-byte layout.

/// si_code of kill(2) and friends.
pub const SI_USER: i32 = 0;
/// si_code of tkill/tgkill.
pub const SI_TKILL: i32 = -6;
/// sizeof(siginfo_t).
pub const SIGINFO_SIZE: u64 = 128;

/// What the handler's siginfo says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigInfo {
    pub signo: u32,
    pub code: i32,
    /// si_pid/si_uid for kill-like signals, or si_addr for faults.
    pub pid: i32,
    pub uid: u32,
    pub addr: Option<u64>,
    /// ESR_EL1 of a fault (recorded in an esr_context).
    pub esr: Option<u64>,
    /// si_value (sigqueue, rt_tgsigqueueinfo, timers), after si_pid/si_uid.
    pub value: u64,
    /// SIGCHLD's si_status, si_utime, si_stime (with si_pid/si_uid above; overlays
    /// si_value).
    pub chld: Option<ChldInfo>,
}

/// The SIGCHLD part of a siginfo (si_code is CLD_EXITED... in `SigInfo::code`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChldInfo {
    /// The exit status, or the signal that killed, stopped or continued the child.
    pub status: i32,
    /// User and system time in clock ticks.
    pub utime: i64,
    pub stime: i64,
}

impl SigInfo {
    /// The guest's `siginfo_t` (128 bytes).
    pub fn bytes(&self) -> [u8; SIGINFO_SIZE as usize] {
        let mut b = [0u8; SIGINFO_SIZE as usize];
        b[0..4].copy_from_slice(&(self.signo as i32).to_le_bytes());
        b[8..12].copy_from_slice(&self.code.to_le_bytes());
        match self.addr {
            Some(a) => b[16..24].copy_from_slice(&a.to_le_bytes()),
            None => {
                b[16..20].copy_from_slice(&self.pid.to_le_bytes());
                b[20..24].copy_from_slice(&self.uid.to_le_bytes());
                b[24..32].copy_from_slice(&self.value.to_le_bytes());
            }
        }
        if let Some(c) = self.chld {
            b[24..28].copy_from_slice(&c.status.to_le_bytes());
            b[32..40].copy_from_slice(&c.utime.to_le_bytes());
            b[40..48].copy_from_slice(&c.stime.to_le_bytes());
        }
        b
    }
}
