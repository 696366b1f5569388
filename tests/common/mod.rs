//! Shared by the integration tests (`tests/*.rs`) and `benches/startup.rs`.
//!
//! - Builds the AArch64 guest programs of `tests/guest/*.c` once per run, for
//!   static glibc and static musl, into `<target>/guests/{glibc,musl}/`
//!   (rebuilding a program only when its source or `check.h` is newer).
//! - Runs a guest under `elfuse` (and under `qemu-aarch64-static` when it is
//!   installed, to compare) with a fixed environment and a timeout.
//! - Crafts small ELF files for the loader's error paths.
//!
//! The cross compiler and musl come from `scripts/install-deps.sh`. Without
//! them the guest tests print `skipped: ...` and pass, except with `CI=true`
//! in the environment, where a missing toolchain fails the run.
#![allow(dead_code)]

pub mod rootfs;

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// The binary under test.
pub const ELFUSE: &str = env!("CARGO_BIN_EXE_elfuse");
/// The cross compiler (Debian's gcc-aarch64-linux-gnu).
pub const CROSS_GCC: &str = "aarch64-linux-gnu-gcc";
/// The peer emulator that outputs are compared with, if installed.
pub const QEMU: &str = "qemu-aarch64-static";

/// The environment every guest runs with (the host's is cleared).
pub const GUEST_ENV: &[(&str, &str)] = &[
    ("ELFUSE_TEST_VAR", "a b=c"),
    ("PATH", "/usr/local/bin:/usr/bin:/bin"),
    ("HOME", "/"),
    ("LC_ALL", "C"),
];

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Cargo's target directory (honours CARGO_TARGET_DIR).
pub fn target_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().map(Path::to_path_buf).unwrap_or(tmp)
}

/// True when running under CI (`CI=true`): missing toolchains are errors.
pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok(v) if !v.is_empty() && v != "false" && v != "0")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Libc {
    Glibc,
    /// glibc, linked as a static PIE (ET_DYN without an interpreter).
    GlibcPie,
    Musl,
}

impl Libc {
    pub const ALL: [Libc; 3] = [Libc::Glibc, Libc::GlibcPie, Libc::Musl];

    pub fn name(self) -> &'static str {
        match self {
            Libc::Glibc => "glibc",
            Libc::GlibcPie => "glibc-pie",
            Libc::Musl => "musl",
        }
    }
}

/// The gcc specs file that makes the cross gcc link against musl
/// (written by scripts/install-deps.sh).
pub fn musl_specs() -> PathBuf {
    match std::env::var_os("ELFUSE_MUSL_SPECS") {
        Some(p) => PathBuf::from(p),
        None => repo_root().join("target/musl-arm64/musl-gcc.specs"),
    }
}

fn guest_src_dir() -> PathBuf {
    repo_root().join("tests/guest")
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The result of building every guest for one libc.
struct LibcBuild {
    /// Why this libc cannot be built at all (no compiler, no musl).
    missing: Option<String>,
    /// Program name -> binary, or the compiler's error output.
    programs: HashMap<String, Result<PathBuf, String>>,
}

static BUILDS: OnceLock<HashMap<Libc, LibcBuild>> = OnceLock::new();

fn have_cross_gcc() -> bool {
    Command::new(CROSS_GCC)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn build_all() -> HashMap<Libc, LibcBuild> {
    let files: Vec<PathBuf> = std::fs::read_dir(guest_src_dir())
        .expect("tests/guest exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    let with_ext = |ext: &'static str| {
        files
            .iter()
            .filter(move |p| p.extension() == Some(OsStr::new(ext)))
    };
    let mut sources: Vec<PathBuf> = with_ext("c").cloned().collect();
    sources.sort();
    // Any shared header (check.h, timing.h) rebuilds every guest when it changes.
    let header_time = with_ext("h").filter_map(|p| mtime(p)).max();
    let gcc = have_cross_gcc();

    let mut jobs = Vec::new();
    let mut builds = HashMap::new();
    for libc in Libc::ALL {
        let missing = if !gcc {
            Some(format!(
                "no cross compiler ({CROSS_GCC} not found; run scripts/install-deps.sh as root)"
            ))
        } else if libc == Libc::Musl && !musl_specs().is_file() {
            Some(format!(
                "no musl for arm64 ({} missing; run scripts/install-deps.sh as root)",
                musl_specs().display()
            ))
        } else {
            None
        };
        if missing.is_none() {
            let out_dir = target_dir().join("guests").join(libc.name());
            std::fs::create_dir_all(&out_dir).expect("create target/guests");
            for src in &sources {
                let name = src.file_stem().unwrap().to_string_lossy().into_owned();
                jobs.push((libc, name.clone(), src.clone(), out_dir.join(&name)));
            }
        }
        builds.insert(
            libc,
            LibcBuild {
                missing,
                programs: HashMap::new(),
            },
        );
    }

    // Compile in parallel; each job only when its binary is out of date.
    let queue = Mutex::new(jobs);
    let results = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let Some((libc, name, src, out)) = queue.lock().unwrap().pop() else {
                    break;
                };
                let r = compile(libc, &src, &out, header_time);
                results.lock().unwrap().push((libc, name, r));
            });
        }
    });
    for (libc, name, r) in results.into_inner().unwrap() {
        builds.get_mut(&libc).unwrap().programs.insert(name, r);
    }
    builds
}

fn compile(
    libc: Libc,
    src: &Path,
    out: &Path,
    header_time: Option<SystemTime>,
) -> Result<PathBuf, String> {
    let newest_input = mtime(src).max(header_time);
    if let (Some(bin), Some(input)) = (mtime(out), newest_input) {
        if bin >= input {
            return Ok(out.to_path_buf());
        }
    }
    // Build under a unique name and rename: other test binaries (and the
    // bench) may be building the same guest at the same moment.
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    let mut cmd = Command::new(CROSS_GCC);
    if libc == Libc::Musl {
        cmd.arg("-specs").arg(musl_specs());
    }
    let link = if libc == Libc::GlibcPie {
        "-static-pie"
    } else {
        "-static"
    };
    cmd.args(["-O2", link, "-Wall", "-o"]).arg(&tmp).arg(src);
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run {CROSS_GCC}: {e}"))?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!(
            "{CROSS_GCC} failed for {} ({}):\n{}",
            src.display(),
            libc.name(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    std::fs::rename(&tmp, out).map_err(|e| format!("rename {}: {e}", tmp.display()))?;
    Ok(out.to_path_buf())
}

/// Reports a missing toolchain: a test failure under CI, a skip otherwise.
/// Returns None (the caller then returns early).
fn skip(why: &str) -> Option<PathBuf> {
    if in_ci() {
        panic!("CI=true but {why}");
    }
    eprintln!("skipped: {why}");
    None
}

/// The guest binary `tests/guest/<name>.c` built for `libc`, or None when the
/// toolchain is missing (see the module doc). Panics if it fails to compile.
pub fn guest(libc: Libc, name: &str) -> Option<PathBuf> {
    let builds = BUILDS.get_or_init(build_all);
    let build = &builds[&libc];
    if let Some(why) = &build.missing {
        return skip(why);
    }
    match build.programs.get(name) {
        Some(Ok(path)) => Some(path.clone()),
        Some(Err(e)) => panic!("guest {name} ({}) did not build:\n{e}", libc.name()),
        None => panic!("no tests/guest/{name}.c"),
    }
}

/// Finds `prog` in PATH.
pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// qemu-aarch64-static, if installed (ELFUSE_QEMU overrides; empty disables).
pub fn qemu() -> Option<PathBuf> {
    match std::env::var_os("ELFUSE_QEMU") {
        Some(p) if p.is_empty() => None,
        Some(p) => Some(PathBuf::from(p)),
        None => which(QEMU),
    }
}

/// A scratch directory, removed on drop. Its path is canonical (no symlinks).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let base = std::env::temp_dir().canonicalize().expect("temp dir");
        let dir = base.join(format!("elfuse-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a finished process left.
#[derive(Debug, Clone)]
pub struct Output {
    /// The status a shell would report: the exit code, or 128+N when killed
    /// by signal N.
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// For assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "status {}\n--- stdout ---\n{}--- stderr ---\n{}--------------",
            self.status,
            self.stdout_str(),
            self.stderr_str()
        )
    }
}

fn timeout() -> Duration {
    let secs = std::env::var("ELFUSE_TEST_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    Duration::from_secs(secs)
}

/// Runs `cmd` to completion with `stdin` as its standard input, capturing
/// stdout and stderr. Kills it and panics after the timeout
/// (ELFUSE_TEST_TIMEOUT seconds, default 120).
pub fn run(mut cmd: Command, stdin: &[u8]) -> Output {
    use std::os::unix::process::ExitStatusExt;

    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    let mut child_stdin = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // The program may exit without reading: ignore EPIPE.
        let _ = child_stdin.write_all(&input);
    });
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });

    let deadline = Instant::now() + timeout();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out_reader.join().unwrap_or_default();
            let stderr = err_reader.join().unwrap_or_default();
            panic!(
                "timed out after {:?}: {shown}\n--- stdout ---\n{}--- stderr ---\n{}",
                timeout(),
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let _ = writer.join();
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    let status = match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => -1,
    };
    Output {
        status,
        stdout,
        stderr,
    }
}

/// `elfuse OPTIONS... PROGRAM ARGS...` with the fixed guest environment.
pub fn elfuse_command<O, A>(options: O, program: &Path, args: A) -> Command
where
    O: IntoIterator,
    O::Item: AsRef<OsStr>,
    A: IntoIterator,
    A::Item: AsRef<OsStr>,
{
    let mut cmd = Command::new(ELFUSE);
    cmd.args(options).arg(program).args(args);
    cmd.env_clear().envs(GUEST_ENV.iter().copied());
    cmd
}

/// Runs `program ARGS...` under elfuse on the spawn fork path (`ELFUSE_FORK=spawn`, the
/// one macOS needs: children are spawned `elfuse --fork-child` processes), stdin empty.
pub fn run_spawn_fork<A>(program: &Path, args: A) -> Output
where
    A: IntoIterator,
    A::Item: AsRef<OsStr>,
{
    let mut cmd = elfuse_command::<[&str; 0], A>([], program, args);
    cmd.env("ELFUSE_FORK", "spawn");
    run(cmd, b"")
}

/// `qemu-aarch64-static PROGRAM ARGS...` with the same environment.
pub fn qemu_command<A>(qemu: &Path, program: &Path, args: A) -> Command
where
    A: IntoIterator,
    A::Item: AsRef<OsStr>,
{
    let mut cmd = Command::new(qemu);
    cmd.arg(program).args(args);
    cmd.env_clear().envs(GUEST_ENV.iter().copied());
    cmd
}

/// The placeholder in guest arguments for a fresh, empty scratch directory
/// (each run, elfuse's and qemu's, gets its own).
pub const TMP: &str = "{tmp}";

fn expand_args(args: &[&str], dir: &TempDir) -> Vec<OsString> {
    args.iter()
        .map(|a| {
            if *a == TMP {
                dir.path().as_os_str().to_owned()
            } else {
                OsString::from(a)
            }
        })
        .collect()
}

/// Runs guest `name` (built for `libc`) under elfuse with `args` and `stdin`,
/// asserts that its status is `status`, that elfuse did not panic, and — when
/// qemu-aarch64-static is installed — that qemu gives the same status and
/// byte-identical stdout. Returns elfuse's output for further checks, or None
/// if the test is skipped (no toolchain).
pub fn run_guest_with(
    libc: Libc,
    name: &str,
    args: &[&str],
    stdin: &[u8],
    status: i32,
) -> Option<Output> {
    let prog = guest(libc, name)?;
    let what = format!("{name} ({}) {args:?}", libc.name());

    let dir = TempDir::new();
    let out = run(
        elfuse_command::<[&str; 0], _>([], &prog, expand_args(args, &dir)),
        stdin,
    );
    assert!(
        !out.stderr_str().contains("panicked"),
        "elfuse panicked running {what}\n{}",
        out.describe()
    );
    assert_eq!(
        out.status,
        status,
        "unexpected status from elfuse running {what}\n{}",
        out.describe()
    );

    if let Some(qemu) = qemu() {
        let qdir = TempDir::new();
        let q = run(qemu_command(&qemu, &prog, expand_args(args, &qdir)), stdin);
        assert_eq!(
            (out.status, out.stdout_str()),
            (q.status, q.stdout_str()),
            "elfuse and qemu-aarch64 differ on {what} (left: elfuse, right: qemu)\n\
             elfuse stderr:\n{}\nqemu stderr:\n{}",
            out.stderr_str(),
            q.stderr_str()
        );
    }
    Some(out)
}

/// `run_guest_with` with empty stdin.
pub fn run_guest(libc: Libc, name: &str, args: &[&str], status: i32) -> Option<Output> {
    run_guest_with(libc, name, args, &[], status)
}

/// For the check-style guests (tests/guest/check.h): no FAIL line, a PASS
/// summary line at the end.
pub fn assert_checks_passed(out: &Output) {
    let text = out.stdout_str();
    let failed: Vec<&str> = text.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        failed.is_empty(),
        "failed checks:\n{}\n\n{}",
        failed.join("\n"),
        out.describe()
    );
    let last = text.lines().last().unwrap_or("");
    assert!(
        last.starts_with("PASS "),
        "no PASS summary at the end of stdout\n{}",
        out.describe()
    );
}

/// Builders for small ELF files, for loader error paths.
pub mod elf {
    pub const EM_X86_64: u16 = 62;
    pub const EM_AARCH64: u16 = 183;
    pub const EM_ARM: u16 = 40;
    pub const ET_EXEC: u16 = 2;
    pub const ET_REL: u16 = 1;

    /// AArch64 code: write(1, "crafted\n", 8); exit(42).
    pub const EXIT42_CODE: [u32; 8] = [
        0x1000_0101, // adr  x1, msg (pc + 32)
        0xD280_0020, // mov  x0, #1
        0xD280_0102, // mov  x2, #8
        0xD280_0808, // mov  x8, #64   (write)
        0xD400_0001, // svc  #0
        0xD280_0540, // mov  x0, #42
        0xD280_0BA8, // mov  x8, #93   (exit)
        0xD400_0001, // svc  #0
    ];
    pub const EXIT42_MSG: &[u8] = b"crafted\n";

    /// A static ELF64 executable with one PT_LOAD (R+X) at `vaddr` mapping the
    /// whole file (`memsz` at least the file size) and entry at the code.
    #[derive(Clone, Debug)]
    pub struct Elf64 {
        pub vaddr: u64,
        pub memsz: Option<u64>,
        pub machine: u16,
        pub e_type: u16,
        pub big_endian: bool,
        pub with_load: bool,
    }

    impl Default for Elf64 {
        fn default() -> Self {
            Elf64 {
                vaddr: 0x40_0000,
                memsz: None,
                machine: EM_AARCH64,
                e_type: ET_EXEC,
                big_endian: false,
                with_load: true,
            }
        }
    }

    impl Elf64 {
        pub fn at(vaddr: u64) -> Self {
            Elf64 {
                vaddr,
                ..Default::default()
            }
        }

        pub fn build(&self) -> Vec<u8> {
            const EHDR: usize = 64;
            const PHDR: usize = 56;
            let code_off = EHDR + PHDR;
            let mut body = Vec::new();
            for insn in EXIT42_CODE {
                body.extend_from_slice(&insn.to_le_bytes());
            }
            body.extend_from_slice(EXIT42_MSG);
            let filesz = (code_off + body.len()) as u64;
            let memsz = self.memsz.unwrap_or(filesz).max(filesz);

            let be = self.big_endian;
            let mut f = Vec::new();
            let h16 = |f: &mut Vec<u8>, v: u16| {
                f.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() })
            };
            let h32 = |f: &mut Vec<u8>, v: u32| {
                f.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() })
            };
            let h64 = |f: &mut Vec<u8>, v: u64| {
                f.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() })
            };
            // e_ident: magic, ELFCLASS64, data, EV_CURRENT, SYSV ABI, padding.
            f.extend_from_slice(b"\x7fELF");
            f.extend_from_slice(&[2, if be { 2 } else { 1 }, 1, 0]);
            f.extend_from_slice(&[0; 8]);
            h16(&mut f, self.e_type);
            h16(&mut f, self.machine);
            h32(&mut f, 1); // e_version
            h64(&mut f, self.vaddr + code_off as u64); // e_entry
            h64(&mut f, if self.with_load { EHDR as u64 } else { 0 }); // e_phoff
            h64(&mut f, 0); // e_shoff
            h32(&mut f, 0); // e_flags
            h16(&mut f, EHDR as u16);
            h16(&mut f, PHDR as u16);
            h16(&mut f, u16::from(self.with_load)); // e_phnum
            h16(&mut f, 64); // e_shentsize
            h16(&mut f, 0); // e_shnum
            h16(&mut f, 0); // e_shstrndx
            assert_eq!(f.len(), EHDR);
            // PT_LOAD, PF_R | PF_X (written even when e_phnum is 0).
            h32(&mut f, 1);
            h32(&mut f, 5);
            h64(&mut f, 0); // p_offset
            h64(&mut f, self.vaddr);
            h64(&mut f, self.vaddr); // p_paddr
            h64(&mut f, filesz);
            h64(&mut f, memsz);
            h64(&mut f, 0x1_0000); // p_align
            assert_eq!(f.len(), code_off);
            f.extend_from_slice(&body);
            f
        }
    }

    /// A minimal 32-bit ARM (ELFCLASS32) executable header with one PT_LOAD.
    pub fn elf32_arm() -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(b"\x7fELF");
        f.extend_from_slice(&[1, 1, 1, 0]);
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&ET_EXEC.to_le_bytes());
        f.extend_from_slice(&EM_ARM.to_le_bytes());
        f.extend_from_slice(&1u32.to_le_bytes()); // e_version
        f.extend_from_slice(&0x1_0054u32.to_le_bytes()); // e_entry
        f.extend_from_slice(&52u32.to_le_bytes()); // e_phoff
        f.extend_from_slice(&0u32.to_le_bytes()); // e_shoff
        f.extend_from_slice(&0x0500_0200u32.to_le_bytes()); // e_flags (EABI5)
        f.extend_from_slice(&52u16.to_le_bytes()); // e_ehsize
        f.extend_from_slice(&32u16.to_le_bytes()); // e_phentsize
        f.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
        f.extend_from_slice(&40u16.to_le_bytes()); // e_shentsize
        f.extend_from_slice(&0u16.to_le_bytes());
        f.extend_from_slice(&0u16.to_le_bytes());
        // PT_LOAD at 0x10000 covering the file.
        for v in [1u32, 0, 0x1_0000, 0x1_0000, 0x60, 0x60, 5, 0x1_0000] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        // mov r0, #42; mov r7, #1; svc #0
        for insn in [0xE3A0_002Au32, 0xE3A0_7001, 0xEF00_0000] {
            f.extend_from_slice(&insn.to_le_bytes());
        }
        f
    }
}

/// Writes `bytes` to `dir/name` with mode 0755 and returns the path.
pub fn write_executable(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write file");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

/// Declares `#[test]`s running each named function (`fn name(libc: Libc)`, in the test
/// file's root) once per libc: `glibc::name`, `glibc_pie::name`, `musl::name`.
#[allow(unused_macros)] // not every user of this module declares guest tests
macro_rules! for_each_libc {
    ($($name:ident),* $(,)?) => {
        mod glibc {
            $( #[test] fn $name() { super::$name(super::Libc::Glibc) } )*
        }
        mod glibc_pie {
            $( #[test] fn $name() { super::$name(super::Libc::GlibcPie) } )*
        }
        mod musl {
            $( #[test] fn $name() { super::$name(super::Libc::Musl) } )*
        }
    };
}

/// Benchmarks: how many alternating runs (`ELFUSE_BENCH_RUNS`, at least 1).
pub fn bench_runs(default: usize) -> usize {
    std::env::var("ELFUSE_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
        .max(1)
}

/// Benchmarks: the median of `v` (the mean of the middle two for an even count).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs `name args` under elfuse only, with elfuse `options` (for what qemu-aarch64 7.2
/// cannot run: the vDSO, exec of an AArch64 binary); asserts `status` and no panic.
pub fn run_elfuse_only(
    libc: Libc,
    name: &str,
    options: &[std::ffi::OsString],
    args: &[&str],
    status: i32,
) -> Option<Output> {
    let prog = guest(libc, name)?;
    let out = run(elfuse_command(options, &prog, args), b"");
    assert!(!out.stderr_str().contains("panicked"), "{}", out.describe());
    assert_eq!(
        out.status,
        status,
        "{name} {args:?} ({})\n{}",
        libc.name(),
        out.describe()
    );
    Some(out)
}

/// Runs `program` under elfuse with `--trace=WHAT --trace-out FILE` (`setup` may add to
/// the command, e.g. its environment); returns the run and what the trace file holds.
pub fn run_traced(
    what: &str,
    program: &Path,
    setup: impl FnOnce(&mut Command),
) -> (Output, String) {
    let dir = TempDir::new();
    let file = dir.path().join("trace.txt");
    let opts = [
        OsString::from(format!("--trace={what}")),
        "--trace-out".into(),
        file.clone().into(),
    ];
    let mut cmd = elfuse_command(&opts, program, [] as [&str; 0]);
    setup(&mut cmd);
    let out = run(cmd, b"");
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    (out, text)
}

/// The value of `key` in one JSON line of an actor trace (a number, or a string without
/// its quotes: the trace's names hold no commas); None when the key is absent.
pub fn json_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    let v = &line[at..];
    Some(v[..v.find([',', '}'])?].trim_matches('"'))
}
