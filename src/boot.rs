//! Bringing a guest process up: RAM, VM, page tables, shim, ELF, stack, vCPU registers;
//! then running its first thread.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};

use elfuse_actors::fdtable::FdTable;

use crate::backend::{self, BackendError, Reg, SysReg, Vcpu, Vm};
use crate::guest::hwcap;
use crate::guest::layout::*;
use crate::guest::loader;
use crate::guest::mm::Mm;
pub use crate::image::BootError;
use crate::image::{
    build_initial_stack, host, load_program, map_stack_and_vdso, publish_shim_data, set_el1_state,
    RING_LOW_WATER, RING_TICK,
};
use crate::process::{default_rlimits, Creds, FsContext, Process, ProcessInit};
use crate::signal::state::SignalState;
use crate::startup::StartupTrace;
use crate::syscall::{Stop, ThreadState};
use crate::thread::{El1Regs, ThreadShared};
use crate::trace::Tracer;

/// What to run.
pub struct Launch {
    /// The program as named on the command line (or by the demo).
    pub program: Vec<u8>,
    /// The host path it resolved to.
    pub host_path: PathBuf,
    /// The image, already mapped or built.
    pub image: crate::mapped::Image,
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    pub sysroot: Option<PathBuf>,
    pub tracer: Tracer,
}

/// Starts the program and runs it to the end: returns the process and how it stopped.
///
/// The first vCPU lives on its own thread ("vcpu0"), created while this thread loads the
/// program; this thread then waits for it.
pub fn run(l: Launch, st: &mut StartupTrace) -> Result<(Arc<Process>, Stop), BootError> {
    let elf = loader::parse(&l.image).map_err(BootError::Image)?;
    st.step("parse-elf");

    let ram = Arc::new(
        crate::fork::new_guest_ram(RAM_SIZE).map_err(|e| host(format!("guest RAM: {e}")))?,
    );
    st.step("guest-ram");
    let hv = backend::host_backend()?;
    let vm = hv.create_vm()?;
    // SAFETY: `ram` is kept alive by the Process for as long as any vCPU runs.
    unsafe { vm.map_memory(0, ram.host_base(), ram.size() as usize)? };
    st.step("vm");

    let (hw_tx, hw_rx) = mpsc::channel();
    let (start_tx, start_rx) = mpsc::channel();
    let vm0 = vm.clone();
    let vcpu_thread = std::thread::Builder::new()
        .name("vcpu0".into())
        .stack_size(crate::thread::VCPU_STACK)
        .spawn(move || vcpu0(vm0, hw_tx, start_rx))
        .map_err(|e| host(format!("vCPU thread: {e}")))?;

    let mut mm = Mm::new(ram.clone());
    let shim = elfuse_shim::build();
    assert!(
        shim.code.len() as u64 <= SHIM_CODE_SIZE,
        "shim outgrew its region"
    );
    ram.write(SHIM_CODE, &shim.code);
    st.step("shim");

    let file = l.image.file().and_then(|f| f.try_clone().ok()).map(|f| {
        (
            Arc::new(OwnedFd::from(f)),
            Arc::<str>::from(String::from_utf8_lossy(&l.program).as_ref()),
        )
    });
    let prog = load_program(&mut mm, &elf, &l.image, file, l.sysroot.as_deref())?;
    st.step("load-elf");
    let vdso = map_stack_and_vdso(&mut mm)?;

    let ready = match hw_rx.recv() {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => return Err(host("the vCPU thread died during start-up")),
    };
    let (hw, hw2) = ready.hwcaps;
    let (leader_host_tid, leader_kick) = (ready.host_tid, ready.kick);
    st.step("vcpu");
    let creds = Creds {
        uid: nix::unistd::getuid().as_raw(),
        euid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        egid: nix::unistd::getegid().as_raw(),
    };
    let sp = build_initial_stack(
        &ram,
        &prog,
        (hw, hw2),
        &creds,
        vdso.base,
        (&l.argv, &l.envp, &l.program),
    );
    st.step("stack");

    let exe_host = l.host_path.canonicalize().unwrap_or(l.host_path.clone());
    let pid = nix::unistd::getpid().as_raw();
    let ppid = nix::unistd::getppid().as_raw();
    let shim_data = publish_shim_data(&ram, &creds, pid, ppid, l.tracer.set.syscalls);
    // The ring starts empty: the refill actor fills it first thing, off this thread (until
    // then the shim forwards random reads to the host).
    let entropy = elfuse_actors::urandom::spawn_refill(
        Arc::new(shim_data.clone()),
        RING_LOW_WATER,
        RING_TICK,
        l.tracer.actor_sink(),
    );
    let mut table = FdTable::with_host_stdio();
    let nofile = crate::process::host_nofile();
    let _ = table.set_limits(nofile.cur, nofile.max, true);
    // elfuse's own fds (its RAM, actors, the guest's host fds) must fit under the host's
    // limit too: its soft limit goes up to the hard one; the guest sees the original.
    {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        if let Ok((_, max)) = getrlimit(Resource::RLIMIT_NOFILE) {
            let cur = max.min(elfuse_actors::fdtable::NR_OPEN as libc::rlim_t);
            let _ = setrlimit(Resource::RLIMIT_NOFILE, cur, max);
        }
    }
    let umask = {
        use nix::sys::stat::{umask, Mode};
        let m = umask(Mode::from_bits_truncate(0o022));
        umask(m);
        m.bits()
    };
    let regs = InitRegs {
        el1: El1Regs {
            ttbr0: mm.ttbr0(),
            vbar: SHIM_CODE + shim.vectors as u64,
        },
        enter_el0: SHIM_CODE + shim.enter_el0 as u64,
        entry: prog.entry,
        sp,
    };
    let proc = Process::new(ProcessInit {
        ram,
        mm,
        vm: vm.clone(),
        el1: regs.el1,
        fds: table,
        shim_data: shim_data.clone(),
        fs: FsContext {
            sysroot: l.sysroot,
            umask: umask as u32,
            chroot: false,
        },
        signals: SignalState::default(),
        rlimits: {
            let mut r = default_rlimits();
            r[7] = nofile;
            r
        },
        creds,
        pid,
        ppid,
        exe: (l.program, exe_host),
        tracer: l.tracer,
        sigreturn_tramp: vdso.rt_sigreturn,
        vdso,
        entropy,
        vfork_done: None,
    });
    crate::syscall::procpeer::serve(&proc, crate::syscall::procserve::handle);
    crate::signal::hostsig::watch(&proc);
    // The main thread's tid is the pid, as on Linux; it owns vCPU slot 0.
    let slot = proc
        .threads
        .reserve_slot()
        .map_err(|_| host("no vCPU slot"))?;
    let leader = Arc::new(ThreadShared::new(pid, leader_host_tid, slot, leader_kick));
    proc.threads
        .register(leader.clone(), Some(vcpu_thread))
        .map_err(|_| host("cannot register the main thread"))?;
    proc.signals.register(pid, 0, true);
    let thread = ThreadState {
        tid: pid,
        ..Default::default()
    };
    if start_tx
        .send(Start {
            proc: proc.clone(),
            regs,
            thread,
            shared: leader,
        })
        .is_err()
    {
        return Err(host("the vCPU thread died during start-up"));
    }
    st.step("handoff");
    match proc.threads.wait() {
        Ok(stop) => Ok((proc, stop)),
        Err(e) => Err(BootError::Host(format!("internal error: {e}"))),
    }
}

/// Register values that depend on the loaded process.
struct InitRegs {
    el1: El1Regs,
    enter_el0: u64,
    entry: u64,
    sp: u64,
}

/// What the vCPU thread needs to start the guest.
struct Start {
    proc: Arc<Process>,
    regs: InitRegs,
    thread: ThreadState,
    shared: Arc<ThreadShared>,
}

/// Puts a fresh vCPU at the shim's `enter_el0` with everything set for EL0 entry.
fn set_boot_regs(
    vcpu: &mut dyn Vcpu,
    r: &InitRegs,
    slot: usize,
    tid: i32,
) -> Result<(), BackendError> {
    set_el1_state(vcpu, &r.el1, slot, tid)?;
    vcpu.set_sys_reg(SysReg::ElrEl1, r.entry)?;
    vcpu.set_sys_reg(SysReg::SpsrEl1, 0)?; // EL0t, interrupts unmasked
    vcpu.set_sys_reg(SysReg::SpEl0, r.sp)?;
    for n in 0..31 {
        vcpu.set_reg(Reg::X(n), 0)?;
    }
    vcpu.set_reg(Reg::Pc, r.enter_el0)
}

/// What the first vCPU's thread reports once its vCPU exists.
struct Ready {
    hwcaps: (u64, u64),
    host_tid: i32,
    kick: Arc<dyn crate::backend::Kick>,
}

/// The first vCPU's thread: creates the vCPU (in parallel with loading the program on
/// the main thread), reports the HWCAPs, waits for the process, then runs the guest.
fn vcpu0(
    vm: Arc<dyn Vm>,
    hw_tx: mpsc::Sender<Result<Ready, BackendError>>,
    start_rx: mpsc::Receiver<Start>,
) {
    let mut vcpu = match vm.create_vcpu() {
        Ok(v) => v,
        Err(e) => {
            let _ = hw_tx.send(Err(e));
            return;
        }
    };
    let _ = hw_tx.send(Ok(Ready {
        hwcaps: hwcap::from_vcpu(vcpu.as_ref()),
        host_tid: crate::thread::host_tid(),
        kick: vcpu.kicker(),
    }));
    let Ok(start) = start_rx.recv() else {
        // Start-up failed on the main thread, which reports why.
        return;
    };
    drop(vm);
    if let Err(e) = set_boot_regs(
        vcpu.as_mut(),
        &start.regs,
        start.shared.slot,
        start.thread.tid,
    ) {
        start.proc.threads.fatal(start.thread.tid, e.0);
        start.proc.threads.finish(&start.shared, None, None);
        return;
    }
    let mut state = start.thread;
    let code =
        crate::thread::run::run_thread(&start.proc, vcpu.as_mut(), &start.shared, &mut state);
    drop(vcpu);
    start.proc.threads.finish(&start.shared, code, None);
}
