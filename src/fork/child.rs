//! The child side of fork: `elfuse --fork-child FD` receives the parent's state on FD,
//! maps the RAM snapshot as its own RAM, creates a VM and a vCPU with the parent's
//! registers (X0 = 0) and resumes the guest right after the syscall.
//!
//! The engine (~1 ms for a new instance) is started before the state arrives, while the
//! parent is still capturing it: RAM is first a placeholder mapping, registered with the
//! VM and the vCPU at its final host address, and the received snapshot is mapped over
//! it in place (`GuestRam::swap_backing`), so the engine's pointers stay valid.

use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use super::state::{self, Incoming};
use super::wire;
use crate::backend::{self, Vcpu, Vm};
use crate::guest::layout::RAM_SIZE;
use crate::guest::mm::Mm;
use crate::guest::ram::GuestRam;
use crate::process::{Process, ProcessInit};
use crate::syscall::Stop;
use crate::trace::Tracer;

/// Exit status of a child that could not take over its state (EX_SOFTWARE, as
/// elfuse's other internal errors).
const EXIT_INTERNAL: u8 = 70;

/// The `--fork-child FD` mode.
pub fn child_main(fd: RawFd) -> ExitCode {
    // SAFETY: the parent passed us this fd; nothing else owns it.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: F_SETFD takes an int; `fd` is open (now owned by `sock`).
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    let mut sock = UnixStream::from(sock);
    let early = match Early::start() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("elfuse: fork child: {e}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    let inc = match wire::recv(&mut sock).and_then(|(p, fds)| state::rebuild(&p, fds)) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("elfuse: fork child: {e}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    let vfork_done = if inc.vfork {
        Some(sock.into())
    } else {
        drop(sock);
        None
    };
    match run(inc, early, vfork_done) {
        Ok((proc, Stop::Exit(code) | Stop::ThreadExit(code))) => {
            drop(proc);
            ExitCode::from(code as u8)
        }
        Ok((proc, Stop::Signal(sig))) => {
            drop(proc);
            crate::signal::hostact::die_of_signal(sig)
        }
        Err(e) => {
            eprintln!("elfuse: fork child: {e}");
            ExitCode::from(EXIT_INTERNAL)
        }
    }
}

/// What the vCPU thread runs once the state has arrived.
type Job = Box<dyn FnOnce(&mut dyn Vcpu) -> Result<Stop, String> + Send>;

/// The VM and the vCPU thread, started before the handover arrives.
struct Early {
    /// A placeholder until the snapshot is mapped over it.
    ram: Arc<GuestRam>,
    vm: Arc<dyn Vm>,
    job: mpsc::Sender<Job>,
    thread: JoinHandle<Result<Stop, String>>,
}

impl Early {
    fn start() -> Result<Early, String> {
        let ram = GuestRam::new_private(RAM_SIZE)
            .or_else(|_| GuestRam::new(RAM_SIZE))
            .map_err(|e| format!("RAM: {e}"))?;
        let ram = Arc::new(ram);
        let hv = backend::host_backend().map_err(|e| e.0)?;
        let vm = hv.create_vm().map_err(|e| e.0)?;
        // SAFETY: `ram` (its host range, whatever backs it) is kept alive by the Process
        // for as long as the vCPU runs.
        unsafe { vm.map_memory(0, ram.host_base(), ram.size() as usize) }.map_err(|e| e.0)?;
        let (job, jobs) = mpsc::channel::<Job>();
        let v = vm.clone();
        let thread = std::thread::Builder::new()
            .name("vcpu0".into())
            .spawn(move || -> Result<Stop, String> {
                let mut vcpu = v.create_vcpu().map_err(|e| e.0)?;
                let job = jobs.recv().map_err(|_| "no handover".to_string())?;
                job(vcpu.as_mut())
            })
            .map_err(|e| format!("vCPU thread: {e}"))?;
        Ok(Early {
            ram,
            vm,
            job,
            thread,
        })
    }
}

fn run(
    inc: Incoming,
    early: Early,
    vfork_done: Option<OwnedFd>,
) -> Result<(Arc<Process>, Stop), String> {
    let Early {
        ram,
        vm,
        job,
        thread: vcpu_thread,
    } = early;
    ram.swap_backing(inc.ram).map_err(|e| format!("RAM: {e}"))?;
    let mm = Mm::from_parts(ram.clone(), inc.mm).map_err(|e| format!("mappings: {e:?}"))?;
    let vdso = crate::guest::vvar::Vdso::at(ram.clone(), inc.vvar);
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    if inc.set_child_tid != 0 && mm.check_user(inc.set_child_tid, 4, true).is_ok() {
        ram.write(inc.set_child_tid, &pid.to_le_bytes());
    }
    let (trace_set, trace_fd) = inc.trace;
    let tracer = Tracer::new(trace_set, trace_fd.map(File::from));
    // SAFETY: getppid has no preconditions.
    let ppid = unsafe { libc::getppid() };
    let kids = super::ChildServices::start(
        &ram,
        &crate::syscall::cred::current(),
        pid,
        ppid,
        &tracer,
        false,
    );
    let el1 = crate::thread::El1Regs {
        ttbr0: mm.ttbr0(),
        vbar: crate::guest::layout::SHIM_CODE + elfuse_shim::build().vectors as u64,
    };
    let proc = Process::new(ProcessInit {
        ram,
        mm,
        vm: vm.clone(),
        el1,
        fds: inc.fds,
        shim_data: kids.shim_data.clone(),
        fs: inc.fs,
        signals: inc.signals,
        rlimits: inc.rlimits,
        creds: inc.creds,
        pid,
        ppid,
        exe: inc.exe,
        tracer,
        sigreturn_tramp: inc.sigreturn_tramp,
        vdso,
        entropy: kids.entropy,
        vfork_done,
    });
    crate::syscall::procpeer::serve(&proc, crate::syscall::procserve::handle);
    crate::signal::hostsig::watch(&proc);
    let mut thread = inc.thread;
    thread.tid = pid;
    crate::syscall::procgen::reset_comms(Some((pid, thread.comm)));
    let cpu = inc.cpu;
    let p = proc.clone();
    // If the vCPU thread already failed, the send fails and its join says why.
    let _ = job.send(Box::new(move |vcpu: &mut dyn Vcpu| {
        cpu.write(vcpu, pid).map_err(|e| e.0)?;
        crate::thread::run::run_as_leader(&p, vcpu, &mut thread)
    }));
    let stop = vcpu_thread
        .join()
        .map_err(|_| "internal error: the vCPU thread panicked".to_string())??;
    proc.vfork_done.release();
    Ok((proc, stop))
}
