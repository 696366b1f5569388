//! `elfuse --binfmt install|uninstall|status`: elfuse as the kernel's binfmt_misc handler for
//! AArch64 ELF, so that `./arm64-prog`, `chroot arm64-root` and arm64 containers run through
//! it with no wrapper.
//!
//! The entry (`/proc/sys/fs/binfmt_misc/elfuse-aarch64`) uses qemu's `qemu-aarch64` magic
//! and mask (64-bit little-endian ELF, ET_EXEC or ET_DYN, EM_AARCH64) and the flags:
//! - `F` (fix binary): the kernel opens elfuse once, at registration, and uses that open
//!   file for every exec, so it works inside chroots and containers where no elfuse exists
//!   at that path. The binary must then be self-contained: the statically linked build
//!   (README "Static build"); a dynamic elfuse would look for its own x86_64 libraries
//!   inside the arm64 root.
//! - `P` (preserve argv[0]): the kernel passes `elfuse FILENAME ARGV0 ARGS...` and sets
//!   AT_FLAGS_PRESERVE_ARGV0 in elfuse's auxiliary vector (Linux 5.12+), which is how
//!   elfuse tells this form from a command line ([`preserved_argv0`]); without P the
//!   guest's argv[0] would be replaced by the file name (busybox applets, `-bash` login
//!   shells and `exec -a` depend on it). On older kernels the flag is left out.
//! - `O` (open binary): the kernel opens the program and passes the descriptor as
//!   AT_EXECFD ([`exec_fd`]), so execute-only programs run, as they do natively.
//! - not `C` (credentials from the binary): it would run elfuse itself set-uid for set-uid
//!   programs, and elfuse reads its environment (ELFUSE_SYSROOT, RUST_LOG, trace files)
//!   and maps the guest's files as whoever runs it: it is not built to be a set-uid program.
//!
//! Registration is a single write to `register`, so there is never a half entry; the entry
//! is checked after the write and removed again if it is not what was asked for.

use std::fs;
use std::io::Write;
use std::path::Path;

/// Where binfmt_misc is mounted.
pub const DIR: &str = "/proc/sys/fs/binfmt_misc";
/// The entry's name.
pub const NAME: &str = "elfuse-aarch64";
/// qemu-aarch64's magic: ELF, 64-bit, little-endian, version 1, type 2 (3 passes the mask),
/// machine 183 (AArch64).
pub const MAGIC: [u8; 20] = [
    0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0xb7, 0,
];
/// qemu-aarch64's mask: ignores the OS/ABI byte and the low bit of e_type.
pub const MASK: [u8; 20] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xfe, 0xff, 0xff, 0xff,
];
/// AT_FLAGS bit set by binfmt_misc for entries with the P flag (Linux 5.12+).
const AT_FLAGS_PRESERVE_ARGV0: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Install,
    Uninstall,
    Status,
}

impl Action {
    pub fn parse(s: &str) -> Result<Action, String> {
        match s {
            "install" => Ok(Action::Install),
            "uninstall" => Ok(Action::Uninstall),
            "status" => Ok(Action::Status),
            _ => Err(format!(
                "--binfmt {s}: expected install, uninstall or status"
            )),
        }
    }
}

/// True when the kernel started elfuse through a binfmt_misc entry with the P flag: the
/// arguments are then `FILENAME ARGV0 ARGS...`, not options.
#[cfg(target_os = "linux")]
pub fn preserved_argv0() -> bool {
    // SAFETY: getauxval only reads the process's auxiliary vector.
    let flags = unsafe { libc::getauxval(libc::AT_FLAGS) };
    flags & AT_FLAGS_PRESERVE_ARGV0 != 0
}

/// binfmt_misc is Linux's.
#[cfg(not(target_os = "linux"))]
pub fn preserved_argv0() -> bool {
    false
}

/// binfmt_misc is Linux's.
#[cfg(not(target_os = "linux"))]
pub fn exec_fd() -> Option<std::os::fd::OwnedFd> {
    None
}

/// The program's descriptor when the kernel opened it for us (binfmt_misc's O flag).
#[cfg(target_os = "linux")]
pub fn exec_fd() -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: getauxval only reads the auxiliary vector; errno distinguishes "absent" from
    // a value of 0.
    let fd = unsafe {
        *libc::__errno_location() = 0;
        let v = libc::getauxval(libc::AT_EXECFD);
        if *libc::__errno_location() != 0 {
            return None;
        }
        v
    };
    let fd = i32::try_from(fd).ok()?;
    // Only a descriptor that is really open (the auxv entry is the kernel's, but be strict).
    nix::fcntl::fcntl(
        // SAFETY: fd is only borrowed for the F_SETFD call.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .ok()?;
    // SAFETY: the kernel installed this descriptor for this process and nothing else owns it.
    Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// A binfmt_misc entry, as its file in [`DIR`] shows it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub enabled: bool,
    pub interpreter: String,
    pub flags: String,
    pub offset: usize,
    pub magic: Option<Vec<u8>>,
    pub mask: Option<Vec<u8>>,
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Entry {
    pub fn parse(name: &str, text: &str) -> Entry {
        let mut e = Entry {
            name: name.to_string(),
            ..Default::default()
        };
        for line in text.lines() {
            let (k, v) = line.split_once(' ').unwrap_or((line, ""));
            match k {
                "enabled" => e.enabled = true,
                "interpreter" => e.interpreter = v.to_string(),
                "flags:" => e.flags = v.to_string(),
                "offset" => e.offset = v.parse().unwrap_or(0),
                "magic" => e.magic = unhex(v),
                "mask" => e.mask = unhex(v),
                _ => {}
            }
        }
        e
    }

    /// Whether this entry matches the start of `header` (an extension entry never does).
    pub fn matches(&self, header: &[u8]) -> bool {
        let Some(magic) = &self.magic else {
            return false;
        };
        magic.iter().enumerate().all(|(i, &m)| {
            let k = self
                .mask
                .as_ref()
                .map_or(0xff, |mask| mask.get(i).copied().unwrap_or(0xff));
            header.get(self.offset + i).is_some_and(|&b| b & k == m & k)
        })
    }

    /// Whether it claims AArch64 ELF programs (executables or PIE/shared objects).
    pub fn claims_aarch64(&self) -> bool {
        let mut h = MAGIC;
        if self.matches(&h) {
            return true;
        }
        h[16] = 3; // ET_DYN
        self.matches(&h)
    }
}

/// Every entry in `dir` (not `register` or `status`).
pub fn entries(dir: &Path) -> Vec<Entry> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<Entry> = rd
        .flatten()
        .filter_map(|d| {
            let name = d.file_name().into_string().ok()?;
            if name == "register" || name == "status" {
                return None;
            }
            let text = fs::read_to_string(d.path()).ok()?;
            Some(Entry::parse(&name, &text))
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// The `register` line for interpreter `interp` with `flags`.
pub fn register_line(interp: &Path, flags: &str) -> Vec<u8> {
    let hex = |b: &[u8]| b.iter().map(|x| format!("\\x{x:02x}")).collect::<String>();
    format!(
        ":{NAME}:M::{}:{}:{}:{flags}",
        hex(&MAGIC),
        hex(&MASK),
        interp.display()
    )
    .into_bytes()
}

/// The flags for this kernel: P only where the kernel reports it in AT_FLAGS (5.12+).
pub fn flags_for_kernel(release: &str) -> &'static str {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let minor: u32 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    if (major, minor) >= (5, 12) {
        "FPO"
    } else {
        "FO"
    }
}

#[cfg(target_os = "linux")]
fn io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    s.split(" (os error").next().unwrap_or(&s).to_string()
}

#[cfg(target_os = "linux")]
fn is_mounted(dir: &Path) -> bool {
    dir.join("register").exists()
}

/// binfmt_misc is Linux's.
#[cfg(not(target_os = "linux"))]
pub fn run(_action: Action) -> Result<u8, String> {
    Err("--binfmt: binfmt_misc is a Linux kernel feature".into())
}

/// Runs `elfuse --binfmt ACTION`: Ok(exit status) or a one-line error.
#[cfg(target_os = "linux")]
pub fn run(action: Action) -> Result<u8, String> {
    let dir = Path::new(DIR);
    match action {
        Action::Status => status(dir),
        Action::Install => install(dir),
        Action::Uninstall => uninstall(dir),
    }
}

#[cfg(target_os = "linux")]
fn status(dir: &Path) -> Result<u8, String> {
    if !is_mounted(dir) {
        println!("binfmt_misc is not mounted at {DIR}: {NAME} is not installed");
        return Ok(1);
    }
    let all = entries(dir);
    let mine = all.iter().find(|e| e.name == NAME);
    match mine {
        Some(e) => println!(
            "{NAME}: installed ({}), interpreter {}, flags {}",
            if e.enabled { "enabled" } else { "disabled" },
            e.interpreter,
            e.flags
        ),
        None => println!("{NAME}: not installed"),
    }
    for e in all.iter().filter(|e| e.name != NAME && e.claims_aarch64()) {
        println!(
            "other handler for AArch64 ELF: {} ({}), interpreter {}",
            e.name,
            if e.enabled { "enabled" } else { "disabled" },
            e.interpreter
        );
    }
    Ok(if mine.is_some_and(|e| e.enabled) {
        0
    } else {
        1
    })
}

#[cfg(target_os = "linux")]
fn need_root(what: &str) -> Result<(), String> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(format!(
            "--binfmt {what} needs root (binfmt_misc entries are system-wide)"
        ))
    }
}

#[cfg(target_os = "linux")]
fn mount(dir: &Path) -> Result<(), String> {
    nix::mount::mount(
        Some("binfmt_misc"),
        dir,
        Some("binfmt_misc"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| format!("cannot mount binfmt_misc at {DIR}: {}", e.desc()))
}

#[cfg(target_os = "linux")]
/// Whether the ELF file at `path` asks for a dynamic loader.
fn is_dynamic(path: &Path) -> bool {
    fs::read(path)
        .ok()
        .and_then(|b| {
            goblin::elf::Elf::parse(&b)
                .ok()
                .map(|e| e.interpreter.is_some())
        })
        .unwrap_or(false)
}

#[cfg(target_os = "linux")]
fn install(dir: &Path) -> Result<u8, String> {
    need_root("install")?;
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| format!("cannot find elfuse's own path: {e}"))?;
    let mounted_here = if is_mounted(dir) {
        false
    } else {
        mount(dir)?;
        true
    };
    let undo_mount = |dir: &Path| {
        if mounted_here {
            let _ = nix::mount::umount(dir);
        }
    };
    let all = entries(dir);
    if let Some(e) = all.iter().find(|e| e.name == NAME) {
        if Path::new(&e.interpreter) == exe && e.enabled {
            println!("{NAME}: already installed, interpreter {}", e.interpreter);
            return Ok(0);
        }
        return Err(format!(
            "{NAME} is already registered with interpreter {}: run that elfuse's --binfmt uninstall first",
            e.interpreter
        ));
    }
    if let Some(e) = all.iter().find(|e| e.enabled && e.claims_aarch64()) {
        undo_mount(dir);
        return Err(format!(
            "AArch64 ELF is already handled by binfmt_misc entry '{}' (interpreter {}): disable it first (echo 0 > {DIR}/{})",
            e.name, e.interpreter, e.name
        ));
    }
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let flags = flags_for_kernel(&release);
    let line = register_line(&exe, flags);
    let written = fs::OpenOptions::new()
        .write(true)
        .open(dir.join("register"))
        .and_then(|mut f| f.write(&line));
    match written {
        Ok(n) if n == line.len() => {}
        Ok(n) => {
            remove(dir);
            undo_mount(dir);
            return Err(format!(
                "registering {NAME}: short write ({n} of {} bytes)",
                line.len()
            ));
        }
        Err(e) => {
            undo_mount(dir);
            return Err(format!("registering {NAME}: {}", io_text(&e)));
        }
    }
    // Check what the kernel recorded; take it back if it is not what was asked for.
    let got = fs::read_to_string(dir.join(NAME))
        .map(|t| Entry::parse(NAME, &t))
        .unwrap_or_default();
    let want_flags: String = {
        let mut f: Vec<char> = flags.chars().collect();
        f.sort_unstable();
        f.into_iter().collect()
    };
    let mut got_flags: Vec<char> = got.flags.chars().collect();
    got_flags.sort_unstable();
    let got_flags: String = got_flags.into_iter().collect();
    if !got.enabled
        || Path::new(&got.interpreter) != exe
        || got_flags != want_flags
        || !got.claims_aarch64()
    {
        remove(dir);
        undo_mount(dir);
        return Err(format!(
            "registering {NAME}: the kernel recorded interpreter '{}' flags '{}', not {} {flags}; removed it again",
            got.interpreter,
            got.flags,
            exe.display()
        ));
    }
    println!(
        "{NAME}: installed, interpreter {} (flags {flags})",
        exe.display()
    );
    if is_dynamic(&exe) {
        eprintln!(
            "elfuse: note: {} is dynamically linked: arm64 programs run directly, but not inside an arm64 chroot or container (install the static build, see README)",
            exe.display()
        );
    }
    Ok(0)
}

#[cfg(target_os = "linux")]
/// Removes the entry (writes -1 to it); true if it is gone afterwards.
fn remove(dir: &Path) -> bool {
    let p = dir.join(NAME);
    let _ = fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .and_then(|mut f| f.write(b"-1"));
    !p.exists()
}

#[cfg(target_os = "linux")]
fn uninstall(dir: &Path) -> Result<u8, String> {
    need_root("uninstall")?;
    if !is_mounted(dir) || !dir.join(NAME).exists() {
        println!("{NAME}: not installed");
        return Ok(0);
    }
    if !remove(dir) {
        return Err(format!("cannot remove {DIR}/{NAME}"));
    }
    println!("{NAME}: uninstalled");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU_ENTRY: &str = "enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: F\noffset 0\n\
        magic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n";

    #[test]
    fn parses_and_matches_the_qemu_entry() {
        let e = Entry::parse("qemu-aarch64", QEMU_ENTRY);
        assert!(e.enabled);
        assert_eq!(e.interpreter, "/usr/bin/qemu-aarch64-static");
        assert_eq!(e.magic.as_deref(), Some(&MAGIC[..]));
        assert_eq!(e.mask.as_deref(), Some(&MASK[..]));
        assert!(e.claims_aarch64());
        // x86_64 (machine 62) is not claimed.
        let x86 = QEMU_ENTRY.replace("0200b700", "02003e00");
        assert!(!Entry::parse("x", &x86).claims_aarch64());
        // An extension entry has no magic.
        let ext = Entry::parse(
            "jar",
            "enabled\ninterpreter /usr/bin/jexec\nflags: \nextension .jar\n",
        );
        assert!(!ext.claims_aarch64());
    }

    #[test]
    fn register_line_and_flags() {
        let l = String::from_utf8(register_line(Path::new("/usr/bin/elfuse"), "FPO")).unwrap();
        assert!(
            l.starts_with(":elfuse-aarch64:M::\\x7f\\x45\\x4c\\x46\\x02"),
            "{l}"
        );
        assert!(l.ends_with(":/usr/bin/elfuse:FPO"), "{l}");
        assert_eq!(flags_for_kernel("6.18.44-fc"), "FPO");
        assert_eq!(flags_for_kernel("5.12.0"), "FPO");
        assert_eq!(flags_for_kernel("5.10.0-23-amd64"), "FO");
        assert_eq!(Action::parse("status").unwrap(), Action::Status);
        assert!(Action::parse("bogus").is_err());
    }
}
