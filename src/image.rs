//! A guest image, as start-up, execve and a fork child build or rebuild it: the program
//! and its interpreter loaded into an address space, the initial stack and vDSO, the
//! shim's data page, and the EL1 state every vCPU starts with. Below `boot`, `exec` and
//! `fork`, which all use it.

use std::fmt;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use crate::backend::{BackendError, Reg, SysReg, Vcpu};
use crate::guest::layout::*;
use crate::guest::loader::{self, LoadError};
use crate::guest::mm::{Backing, Mm, VmaName, PROT_READ, PROT_WRITE};
use crate::guest::ram::GuestRam;
use crate::guest::shimdata::{Identity, ShimData};
use crate::guest::stack;
use crate::guest::vvar::Vdso;
use crate::process::Creds;
use crate::thread::El1Regs;

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
pub(crate) const PSTATE_EL1H: u64 = 0x3c5;

pub(crate) fn host(e: impl fmt::Display) -> BootError {
    BootError::Host(e.to_string())
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
pub const RING_LOW_WATER: usize = 2048;
pub const RING_TICK: std::time::Duration = std::time::Duration::from_millis(50);

/// Publishes what the shim serves without exits: the user range its copies must stay in,
/// the identity slots, and TRACE when every syscall must be traced. The random ring is
/// filled by the caller (start-up fills it, a fork child reseeds it).
pub fn publish_shim_data(
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
