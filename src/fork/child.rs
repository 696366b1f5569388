//! The child side of fork: `elfuse --fork-child FD` receives the parent's state on FD,
//! maps the RAM snapshot as its own RAM, creates a VM and a vCPU with the parent's
//! registers (X0 = 0) and resumes the guest right after the syscall.
//!
//! The engine (~1 ms for a new instance) is started before the state arrives, while the
//! parent is still capturing it: RAM is first a placeholder mapping, registered with the
//! VM and the vCPU at its final host address, and the received snapshot is mapped over
//! it in place (`GuestRam::swap_backing`), so the engine's pointers stay valid.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use super::inherit::Machine;
use super::state::Handover;
use super::wire;
use crate::backend::{self, Vcpu, Vm};
use crate::guest::layout::RAM_SIZE;
use crate::guest::mm::Mm;
use crate::guest::ram::GuestRam;
use crate::process::Process;
use crate::syscall::Stop;

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
    let inc = match wire::recv(&mut sock).and_then(|(p, fds)| Handover::decode(&p, fds)) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("elfuse: fork child: {e}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    let vfork_done = if inc.inh.vfork {
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
    inc: Handover<OwnedFd>,
    early: Early,
    vfork_done: Option<OwnedFd>,
) -> Result<(Arc<Process>, Stop), String> {
    let Early {
        ram,
        vm,
        job,
        thread: vcpu_thread,
    } = early;
    let Handover {
        cpu,
        ram: snapshot,
        mm,
        inh,
    } = inc;
    ram.swap_backing(snapshot)
        .map_err(|e| format!("RAM: {e}"))?;
    let mm = Mm::from_parts(ram.clone(), mm).map_err(|e| format!("mappings: {e:?}"))?;
    let el1 = crate::thread::El1Regs {
        ttbr0: mm.ttbr0(),
        vbar: crate::guest::layout::SHIM_CODE + elfuse_shim::build().vectors as u64,
    };
    let machine = Machine { ram, mm, vm, el1 };
    let (proc, mut thread) = inh.into_process(machine, vfork_done, false);
    crate::signal::hostsig::watch(&proc);
    let pid = proc.pid;
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
