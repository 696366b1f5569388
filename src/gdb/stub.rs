//! The stub thread: the gdb remote protocol through `gdbstub`, over one TCP connection.
//! Registers go through the parked threads (see the parent module); memory is read and
//! written here, in the guest's view.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use gdbstub::common::{Signal, Tid};
use gdbstub::conn::ConnectionExt;
use gdbstub::stub::run_blocking::{BlockingEventLoop, Event, WaitForStopReasonError};
use gdbstub::stub::{DisconnectReason, GdbStub, MultiThreadStopReason};
use gdbstub::target::ext::auxv::{Auxv, AuxvOps};
use gdbstub::target::ext::base::multithread::{
    MultiThreadBase, MultiThreadResume, MultiThreadResumeOps, MultiThreadSchedulerLocking,
    MultiThreadSchedulerLockingOps, MultiThreadSingleStep, MultiThreadSingleStepOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, SwBreakpoint, SwBreakpointOps,
};
use gdbstub::target::ext::target_description_xml_override::{
    TargetDescriptionXmlOverride, TargetDescriptionXmlOverrideOps,
};
use gdbstub::target::{Target, TargetError, TargetResult};
use gdbstub_arch::aarch64::reg::AArch64CoreRegs;
use gdbstub_arch::aarch64::AArch64;

use super::{Action, Debugger, Why};
use crate::guest::layout::PAGE_SIZE;
use crate::process::Process;
use crate::syscall::Stop;

/// The target description: the core and FP/SIMD registers of an AArch64 Linux process.
const TARGET_XML: &str = include_str!("target.xml");

/// gdb's signal numbers are its own (`enum gdb_signal`): Linux's number to gdb's.
fn to_gdb(sig: u32) -> Signal {
    Signal(match sig {
        7 => 10,  // SIGBUS
        10 => 30, // SIGUSR1
        12 => 31, // SIGUSR2
        17 => 20, // SIGCHLD
        18 => 19, // SIGCONT
        19 => 17, // SIGSTOP
        20 => 18, // SIGTSTP
        23 => 16, // SIGURG
        29 => 23, // SIGIO
        30 => 32, // SIGPWR
        31 => 12, // SIGSYS
        32 => 79, // GDB_SIGNAL_REALTIME_32
        s @ (1..=6 | 8 | 9 | 11 | 13..=15 | 21 | 22 | 24..=28) => s as u8,
        s @ 33..=63 => (s + 12) as u8, // GDB_SIGNAL_REALTIME_33..
        _ => 143,                      // GDB_SIGNAL_UNKNOWN (SIGSTKFLT, 64)
    })
}

fn from_gdb(sig: Signal) -> Option<u32> {
    (1..=64u32).find(|&s| to_gdb(s) == sig)
}

fn tid_of(t: Tid) -> i32 {
    t.get() as i32
}

pub(super) struct GuestTarget {
    d: &'static Debugger,
    pub(super) proc: Arc<Process>,
    /// Files gdb opened with `vFile:open` (see `hostio`).
    pub(super) files: Vec<Option<super::hostio::Open>>,
    actions: BTreeMap<i32, Action>,
    /// Scheduler locking: threads gdb did not name stay stopped.
    locked: bool,
}

impl GuestTarget {
    /// The readable bytes at `addr`: a prefix of `len`, cut at the first page that is not
    /// a readable user mapping (the reserved region never is).
    fn readable(&self, addr: u64, len: usize) -> usize {
        let mut ok = 0usize;
        while ok < len {
            let a = addr.wrapping_add(ok as u64);
            let chunk = ((PAGE_SIZE - a % PAGE_SIZE) as usize).min(len - ok);
            if self.proc.mm.check_user(a, chunk as u64, false).is_err() {
                break;
            }
            ok += chunk;
        }
        ok
    }

    fn auxv(&self) -> Vec<u8> {
        let ram = &self.proc.ram;
        let word = |a: u64| {
            let mut b = [0u8; 8];
            if self.proc.mm.check_user(a, 8, false).is_ok() {
                ram.read(a, &mut b);
            }
            u64::from_le_bytes(b)
        };
        let sp = self.d.initial_sp();
        let argc = word(sp);
        let mut p = sp + 8 * (argc + 2);
        while word(p) != 0 {
            p += 8;
        }
        p += 8;
        let mut out = Vec::new();
        for _ in 0..64 {
            let (k, v) = (word(p), word(p + 8));
            out.extend_from_slice(&k.to_le_bytes());
            out.extend_from_slice(&v.to_le_bytes());
            if k == 0 {
                break;
            }
            p += 16;
        }
        out
    }
}

/// Copies `data[offset..offset+length]` into `buf`: the qXfer convention.
fn xfer(data: &[u8], offset: u64, length: usize, buf: &mut [u8]) -> usize {
    let start = (offset as usize).min(data.len());
    let end = start.saturating_add(length).min(data.len());
    let n = (end - start).min(buf.len());
    buf[..n].copy_from_slice(&data[start..start + n]);
    n
}

impl Target for GuestTarget {
    type Arch = AArch64;
    type Error = &'static str;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::MultiThread(self)
    }
    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }
    fn support_target_description_xml_override(
        &mut self,
    ) -> Option<TargetDescriptionXmlOverrideOps<'_, Self>> {
        Some(self)
    }
    fn support_auxv(&mut self) -> Option<AuxvOps<'_, Self>> {
        Some(self)
    }
    fn support_host_io(&mut self) -> Option<gdbstub::target::ext::host_io::HostIoOps<'_, Self>> {
        Some(self)
    }
    // Forks are not reported (a fork child runs undebugged), so gdb must not wait for
    // them; `qemu-aarch64 -g` does not offer them either.
    fn use_fork_stop_reason(&self) -> bool {
        false
    }
    fn use_vfork_stop_reason(&self) -> bool {
        false
    }
    fn use_vforkdone_stop_reason(&self) -> bool {
        false
    }
}

impl MultiThreadBase for GuestTarget {
    fn read_registers(&mut self, regs: &mut AArch64CoreRegs, tid: Tid) -> TargetResult<(), Self> {
        *regs = self.d.read_regs(tid_of(tid)).ok_or(TargetError::Errno(3))?;
        Ok(())
    }

    fn write_registers(&mut self, regs: &AArch64CoreRegs, tid: Tid) -> TargetResult<(), Self> {
        if self.d.write_regs(tid_of(tid), regs) {
            Ok(())
        } else {
            Err(TargetError::Errno(3))
        }
    }

    fn read_addrs(&mut self, addr: u64, data: &mut [u8], _tid: Tid) -> TargetResult<usize, Self> {
        let n = self.readable(addr, data.len());
        if n == 0 && !data.is_empty() {
            return Err(TargetError::Errno(14));
        }
        self.proc.ram.read(addr, &mut data[..n]);
        Ok(n)
    }

    fn write_addrs(&mut self, addr: u64, data: &[u8], _tid: Tid) -> TargetResult<(), Self> {
        // Like ptrace's POKEDATA (FOLL_FORCE): any user mapping, read-only code included.
        if self.readable(addr, data.len()) != data.len() {
            return Err(TargetError::Errno(14));
        }
        self.proc.ram.write(addr, data);
        // The bytes may be code some vCPU translated.
        let end = addr + data.len() as u64;
        let inval = crate::backend::Invalidate {
            tlb: false,
            code: Some((addr, end)),
        };
        self.proc.threads.broadcast(0, Some(inval));
        Ok(())
    }

    fn list_active_threads(&mut self, each: &mut dyn FnMut(Tid)) -> Result<(), Self::Error> {
        for t in self.d.tids() {
            if let Some(t) = NonZeroUsize::new(t as usize) {
                each(t);
            }
        }
        Ok(())
    }

    fn support_resume(&mut self) -> Option<MultiThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadResume for GuestTarget {
    fn resume(&mut self) -> Result<(), Self::Error> {
        let actions = std::mem::take(&mut self.actions);
        let default = (!self.locked).then_some(Action::default());
        self.d.resume(actions, default);
        Ok(())
    }
    fn clear_resume_actions(&mut self) -> Result<(), Self::Error> {
        self.actions.clear();
        self.locked = false;
        Ok(())
    }
    fn support_scheduler_locking(&mut self) -> Option<MultiThreadSchedulerLockingOps<'_, Self>> {
        Some(self)
    }
    fn set_resume_action_continue(
        &mut self,
        tid: Tid,
        signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        let signal = signal.and_then(from_gdb);
        self.actions.insert(
            tid_of(tid),
            Action {
                step: false,
                signal,
            },
        );
        Ok(())
    }
    fn support_single_step(&mut self) -> Option<MultiThreadSingleStepOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadSingleStep for GuestTarget {
    fn set_resume_action_step(
        &mut self,
        tid: Tid,
        signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        let signal = signal.and_then(from_gdb);
        self.actions
            .insert(tid_of(tid), Action { step: true, signal });
        Ok(())
    }
}

impl MultiThreadSchedulerLocking for GuestTarget {
    fn set_resume_action_scheduler_lock(&mut self) -> Result<(), Self::Error> {
        self.locked = true;
        Ok(())
    }
}

impl Breakpoints for GuestTarget {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }
    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }
}

impl SwBreakpoint for GuestTarget {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.d.set_breakpoint(false, addr, true);
        Ok(true)
    }
    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.d.set_breakpoint(false, addr, false);
        Ok(true)
    }
}

impl HwBreakpoint for GuestTarget {
    fn add_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.d.set_breakpoint(true, addr, true);
        Ok(true)
    }
    fn remove_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.d.set_breakpoint(true, addr, false);
        Ok(true)
    }
}

impl TargetDescriptionXmlOverride for GuestTarget {
    fn target_description_xml(
        &self,
        annex: &[u8],
        offset: u64,
        length: usize,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        if annex != b"target.xml" {
            return Err(TargetError::Errno(2));
        }
        Ok(xfer(TARGET_XML.as_bytes(), offset, length, buf))
    }
}

impl Auxv for GuestTarget {
    fn get_auxv(&self, offset: u64, length: usize, buf: &mut [u8]) -> TargetResult<usize, Self> {
        Ok(xfer(&self.auxv(), offset, length, buf))
    }
}

/// Waits for the next stop (or the end of the process) while watching the connection.
struct Loop;

impl BlockingEventLoop for Loop {
    type Target = GuestTarget;
    type Connection = TcpStream;
    type StopReason = MultiThreadStopReason<u64>;

    fn wait_for_stop_reason(
        target: &mut GuestTarget,
        conn: &mut TcpStream,
    ) -> Result<Event<Self::StopReason>, WaitForStopReasonError<&'static str, std::io::Error>> {
        loop {
            if let Some(ev) = target.d.next_event() {
                return Ok(Event::TargetStopped(stop_reason(ev)));
            }
            if conn
                .peek()
                .map_err(WaitForStopReasonError::Connection)?
                .is_some()
            {
                let b = ConnectionExt::read(conn).map_err(WaitForStopReasonError::Connection)?;
                return Ok(Event::IncomingData(b));
            }
            let st = super::lock(&target.d.state);
            drop(
                target
                    .d
                    .cv
                    .wait_timeout(st, Duration::from_millis(10))
                    .unwrap_or_else(|p| p.into_inner()),
            );
        }
    }

    fn on_interrupt(target: &mut GuestTarget) -> Result<Option<Self::StopReason>, &'static str> {
        target.d.interrupt(&target.proc);
        Ok(None)
    }
}

fn stop_reason(ev: Result<(i32, Why), Stop>) -> MultiThreadStopReason<u64> {
    let (tid, why) = match ev {
        Err(Stop::Signal(sig)) => return MultiThreadStopReason::Terminated(to_gdb(sig)),
        Err(Stop::Exit(c) | Stop::ThreadExit(c)) => return MultiThreadStopReason::Exited(c as u8),
        Ok(e) => e,
    };
    let tid = NonZeroUsize::new(tid as usize).unwrap_or(NonZeroUsize::MIN);
    match why {
        Why::SwBreak => MultiThreadStopReason::SwBreak(tid),
        Why::HwBreak => MultiThreadStopReason::HwBreak(tid),
        Why::Signal(s) => MultiThreadStopReason::SignalWithThread {
            tid,
            signal: to_gdb(s),
        },
        Why::Step | Why::Quiet => MultiThreadStopReason::SignalWithThread {
            tid,
            signal: Signal::SIGTRAP,
        },
    }
}

/// The stub thread's body: serves gdb until it detaches, kills, or the process ends.
pub(super) fn serve(d: &'static Debugger, proc: Arc<Process>, conn: TcpStream) {
    let mut target = GuestTarget {
        d,
        proc,
        actions: BTreeMap::new(),
        locked: false,
        files: Vec::new(),
    };
    let spare = conn.try_clone().ok();
    let reason = match GdbStub::new(conn).run_blocking::<Loop>(&mut target) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("gdb stub: {e}");
            DisconnectReason::Disconnect
        }
    };
    match reason {
        DisconnectReason::Kill => {
            // gdb's `kill`: the process dies of SIGKILL, as under ptrace. First gdb gets
            // the reply and closes its end (a close with unread data would reset it).
            if let Some(mut c) = spare {
                // gdbstub leaves `vKill` unanswered; gdb waits for its OK.
                let _ = std::io::Write::write_all(&mut c, b"$OK#9a");
                let _ = c.shutdown(std::net::Shutdown::Write);
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                let mut sink = [0u8; 256];
                while matches!(std::io::Read::read(&mut c, &mut sink), Ok(n) if n > 0) {}
            }
            // SAFETY: plain syscalls.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
        DisconnectReason::TargetExited(_) | DisconnectReason::TargetTerminated(_) => {}
        DisconnectReason::Disconnect => d.detach(),
    }
}
