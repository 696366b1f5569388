//! Bringing a guest process up: RAM, VM, page tables, shim, ELF, stack, vCPU registers;
//! then running its first thread.

use std::fmt;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};

use elfuse_actors::fdtable::FdTable;

use crate::backend::{self, BackendError, Reg, SysReg, Vcpu, Vm};
use crate::guest::layout::*;
use crate::guest::loader::{self, LoadError};
use crate::guest::mm::{Backing, Mm, VmaName, PROT_READ, PROT_WRITE};
use crate::guest::ram::GuestRam;
use crate::guest::shimdata::{Identity, ShimData};
use crate::guest::vvar::Vdso;
use crate::guest::{hwcap, stack};
use crate::process::{default_rlimits, Creds, FsContext, Process, ProcessInit};
use crate::signal::SignalState;
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

#[derive(Debug)]
pub enum BootError {
    /// The program image is unusable (a user error).
    Image(LoadError),
    /// The interpreter named by PT_INTERP is missing or unusable.
    Interp(String, String),
    /// The host could not provide something (memory, the vCPU engine).
    Host(String),
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootError::Image(e) => e.fmt(f),
            BootError::Interp(p, e) => write!(f, "interpreter {p}: {e}"),
            BootError::Host(e) => f.write_str(e),
        }
    }
}

impl From<BackendError> for BootError {
    fn from(e: BackendError) -> Self {
        BootError::Host(e.0)
    }
}

/// SCTLR_EL1: RES1 bits | M | C | I | DZE | UCT | nTWI | nTWE | UCI (EL0 may use DC ZVA,
/// read CTR_EL0, execute WFI/WFE and cache maintenance, as on Linux).
const SCTLR: u64 = 0x30d0_0800
    | 1
    | (1 << 2)
    | (1 << 12)
    | (1 << 14)
    | (1 << 15)
    | (1 << 16)
    | (1 << 18)
    | (1 << 26);
/// TCR_EL1: T0SZ=16 (48-bit), inner/outer WB-WA, inner shareable, 4 KiB granule, EPD1
/// (no TTBR1 walks), IPS=40 bits, TBI0 (top byte ignored for EL0 addresses, as on Linux).
const TCR: u64 = 16 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23) | (2 << 32) | (1 << 37);
/// MAIR_EL1 attr0 = normal memory, write-back.
const MAIR: u64 = 0xff;
/// CPACR_EL1.FPEN = 0b11: FP/SIMD usable at EL0 and EL1.
const CPACR: u64 = 3 << 20;
/// CNTKCTL_EL1: EL0 may read the virtual and physical counters.
const CNTKCTL: u64 = 0b11;
/// PSTATE for the vCPU's first instruction: EL1h with DAIF masked.
const PSTATE_EL1H: u64 = 0x3c5;

fn host(e: impl fmt::Display) -> BootError {
    BootError::Host(e.to_string())
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
    crate::syscall::procpeer::serve(&proc);
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
    proc.signals.register(leader.clone(), 0, true);
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

/// A program loaded into an address space (start-up and execve).
pub struct LoadedProgram {
    pub main: loader::Loaded,
    /// Where execution starts: the interpreter's entry if there is one.
    pub entry: u64,
    /// The interpreter's load address (AT_BASE), 0 without one.
    pub interp_base: u64,
}

/// Loads the ELF `elf` (bytes `image`) and its PT_INTERP interpreter (resolved under
/// `sysroot`) into `mm`, and puts brk right after the image.
/// Opens the interpreter without waiting on a FIFO and refuses what is not a regular
/// file (EACCES, as execve does); maps it for the loader.
fn open_interp(p: &std::path::Path) -> std::io::Result<(crate::mapped::MappedFile, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(p)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::from_raw_os_error(libc::EACCES));
    }
    Ok((crate::mapped::MappedFile::open(&f)?, f))
}

/// An I/O error's message without Rust's " (os error N)".
fn io_msg(e: &std::io::Error) -> String {
    let s = e.to_string();
    s.split(" (os error").next().unwrap_or(&s).to_string()
}

pub fn load_program(
    mm: &mut Mm,
    elf: &goblin::elf::Elf,
    image: &[u8],
    file: Option<(Arc<OwnedFd>, Arc<str>)>,
    sysroot: Option<&std::path::Path>,
) -> Result<LoadedProgram, BootError> {
    let main_base = if loader::is_relocatable(elf) {
        PIE_BASE
    } else {
        0
    };
    let main = loader::load(mm, elf, image, main_base, file).map_err(BootError::Image)?;
    let (entry, interp_base) = match &main.interp {
        None => (main.entry, 0),
        Some(path) => {
            let shown = loader::escaped(path.as_bytes());
            let err = |e: String| BootError::Interp(shown.clone(), e);
            let hp = crate::syscall::resolve::host_path(sysroot, path.as_bytes());
            let (map, f) = open_interp(&hp).map_err(|e| err(io_msg(&e)))?;
            let ielf = loader::parse(&map).map_err(|e| err(e.to_string()))?;
            let span = loader::image_span(&ielf);
            let base = mm
                .find_free(span, 0)
                .map_err(|_| BootError::Image(LoadError::OutOfMemory))?;
            let named = (Arc::new(OwnedFd::from(f)), Arc::<str>::from(path.as_str()));
            let il =
                loader::load(mm, &ielf, &map, base, Some(named)).map_err(|e| err(e.to_string()))?;
            (il.entry, base)
        }
    };
    let brk = page_up(main.end).unwrap_or(main.end);
    mm.brk_start = brk;
    mm.brk = brk;
    Ok(LoadedProgram {
        main,
        entry,
        interp_base,
    })
}

/// Maps the main stack, and `[vvar]` + `[vdso]` (handlers without SA_RESTORER return
/// through its `__kernel_rt_sigreturn`). In a fresh address space the vDSO always lands
/// at the same place, so execve's new one is where the process's [`Vdso`] says.
pub fn map_stack_and_vdso(mm: &mut Mm) -> Result<Vdso, BootError> {
    mm.map_fixed(
        STACK_BOTTOM,
        STACK_SIZE,
        PROT_READ | PROT_WRITE,
        false,
        Backing::Anon,
        VmaName::Stack,
    )
    .map_err(|e| host(format!("stack: {e:?}")))?;
    Vdso::map(mm).map_err(|e| host(format!("vDSO: {e:?}")))
}

/// Builds argv, envp and auxv at the top of the main stack; returns the initial SP.
pub fn build_initial_stack(
    ram: &GuestRam,
    prog: &LoadedProgram,
    (hw, hw2): (u64, u64),
    creds: &Creds,
    vdso_base: u64,
    (argv, envp, execfn): (&[Vec<u8>], &[Vec<u8>], &[u8]),
) -> u64 {
    let main = &prog.main;
    let mut random = [0u8; 16];
    // SAFETY: getrandom writes at most 16 bytes into `random`, a local [u8; 16] (nix has no
    // getrandom).
    unsafe { libc::getrandom(random.as_mut_ptr().cast(), 16, 0) };
    let auxv = [
        (stack::AT_PHDR, main.phdr),
        (stack::AT_PHENT, main.phent),
        (stack::AT_PHNUM, main.phnum),
        (stack::AT_PAGESZ, PAGE_SIZE),
        (stack::AT_BASE, prog.interp_base),
        (stack::AT_FLAGS, 0),
        (stack::AT_ENTRY, main.entry),
        (stack::AT_UID, creds.uid.into()),
        (stack::AT_EUID, creds.euid.into()),
        (stack::AT_GID, creds.gid.into()),
        (stack::AT_EGID, creds.egid.into()),
        (stack::AT_SECURE, 0),
        (stack::AT_HWCAP, hw),
        (stack::AT_HWCAP2, hw2),
        (stack::AT_CLKTCK, 100),
        (stack::AT_MINSIGSTKSZ, stack::MINSIGSTKSZ),
        (stack::AT_SYSINFO_EHDR, vdso_base),
    ];
    stack::build(
        ram,
        STACK_TOP,
        &stack::StackInput {
            argv,
            envp,
            execfn,
            random,
            auxv: &auxv,
        },
    )
}

/// The refill actor tops the shim's 4 KiB random ring up when it holds less than this,
/// when told (a forwarded read/getrandom) or on its idle tick.
pub(crate) const RING_LOW_WATER: usize = 2048;
pub(crate) const RING_TICK: std::time::Duration = std::time::Duration::from_millis(50);

/// The fd-table actor over `table`; the shim's urandom bitmap follows the table
/// synchronously, inside each mutation.
/// Publishes what the shim serves without exits: the user range its copies must stay in,
/// the identity slots, and TRACE when every syscall must be traced. The random ring is
/// filled by the caller (start-up fills it, a fork child reseeds it).
pub(crate) fn publish_shim_data(
    ram: &Arc<GuestRam>,
    c: &Creds,
    pid: i32,
    ppid: i32,
    trace: bool,
) -> ShimData {
    let sd = ShimData::new(ram.clone());
    if trace {
        sd.set_attention(elfuse_shim::data::ATTN_TRACE);
    }
    sd.publish_user_range(NULL_GUARD_END, INFRA_BASE);
    crate::syscall::cred::new_process(&sd);
    let id = Identity {
        pid: pid as u32,
        ppid: ppid as u32,
        uid: c.uid,
        euid: c.euid,
        gid: c.gid,
        egid: c.egid,
        pgid: nix::unistd::getpgid(None).map_or(-1, |p| p.as_raw()) as u32,
        sid: nix::unistd::getsid(None).map_or(-1, |p| p.as_raw()) as u32,
    };
    sd.publish_identity(|| (), &id);
    sd
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

/// The EL1 state every vCPU of the process starts with: translation regime, vectors,
/// FP access, timers, its own EL1 stack (by vCPU slot), CONTEXTIDR_EL1 = its tid (the
/// shim's gettid) and TPIDR_EL1 = shim_data.
/// Leaves the vCPU at EL1h with DAIF masked.
pub fn set_el1_state(
    vcpu: &mut dyn Vcpu,
    el1: &El1Regs,
    slot: usize,
    tid: i32,
) -> Result<(), BackendError> {
    // PSTATE first: which stack pointer is "current" depends on it.
    vcpu.set_reg(Reg::Pstate, PSTATE_EL1H)?;
    let el1_sp = EL1_STACKS + (slot as u64 + 1) * EL1_STACK_SIZE;
    let regs: [(SysReg, u64); 9] = [
        (SysReg::MairEl1, MAIR),
        (SysReg::TcrEl1, TCR),
        (SysReg::Ttbr0El1, el1.ttbr0),
        (SysReg::CpacrEl1, CPACR),
        (SysReg::CntkctlEl1, CNTKCTL),
        (SysReg::VbarEl1, el1.vbar),
        (SysReg::SpEl1, el1_sp),
        (SysReg::ContextidrEl1, tid as u64),
        (SysReg::TpidrEl1, SHIM_DATA),
    ];
    for (reg, v) in regs {
        vcpu.set_sys_reg(reg, v)?;
    }
    vcpu.set_sys_reg(SysReg::SctlrEl1, SCTLR)
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
    let code = crate::thread::run_thread(&start.proc, vcpu.as_mut(), &start.shared, &mut state);
    drop(vcpu);
    start.proc.threads.finish(&start.shared, code, None);
}
