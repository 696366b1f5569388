//! The command line: --version/--help, and every user error (bad program
//! file, bad ELF, usage mistakes) giving exactly one `elfuse: ` line on stderr
//! and a non-zero status, never a panic.

mod common;

use common::elf::{self, Elf64};
use common::*;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

fn elfuse<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(ELFUSE);
    cmd.args(args);
    run(cmd, b"")
}

/// The contract for user errors.
fn assert_user_error(out: &Output, what: &str) {
    let err = out.stderr_str();
    assert!(
        !err.contains("panicked"),
        "{what}: elfuse panicked\n{}",
        out.describe()
    );
    assert!(
        out.status != 0 && out.status != 101 && out.status < 128,
        "{what}: expected a plain non-zero exit status\n{}",
        out.describe()
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: expected exactly one line on stderr\n{}",
        out.describe()
    );
    assert!(
        lines[0].starts_with("elfuse: ") && lines[0].len() > "elfuse: ".len(),
        "{what}: the stderr line must start with \"elfuse: \"\n{}",
        out.describe()
    );
    assert!(
        out.stdout.is_empty(),
        "{what}: nothing expected on stdout\n{}",
        out.describe()
    );
}

fn assert_program_refused(path: &Path, what: &str) {
    let out = elfuse([path]);
    assert_user_error(&out, what);
}

#[test]
fn version() {
    let out = elfuse(["--version"]);
    assert_eq!(out.status, 0, "{}", out.describe());
    assert!(
        out.stdout_str().contains(env!("CARGO_PKG_VERSION")),
        "--version should print the version\n{}",
        out.describe()
    );
}

#[test]
fn help() {
    let out = elfuse(["--help"]);
    assert_eq!(out.status, 0, "{}", out.describe());
    let text = out.stdout_str();
    for option in ["--sysroot", "--trace"] {
        assert!(
            text.contains(option),
            "--help should mention {option}\n{}",
            out.describe()
        );
    }
}

#[test]
fn no_program() {
    assert_user_error(&elfuse([] as [&str; 0]), "no arguments");
    assert_user_error(&elfuse(["--sysroot", "/"]), "options but no program");
}

#[test]
fn unknown_option() {
    assert_user_error(&elfuse(["--no-such-option", "/bin/true"]), "unknown option");
}

#[test]
fn missing_file() {
    assert_program_refused(Path::new("/nonexistent/elfuse-test/prog"), "missing file");
}

#[test]
fn directory() {
    let dir = TempDir::new();
    assert_program_refused(dir.path(), "a directory");
}

#[test]
fn text_file() {
    let dir = TempDir::new();
    let p = write_executable(dir.path(), "notes.txt", b"just some text, not a program\n");
    assert_program_refused(&p, "a text file");
}

#[test]
fn empty_file() {
    let dir = TempDir::new();
    let p = write_executable(dir.path(), "empty", b"");
    assert_program_refused(&p, "an empty file");
}

#[test]
fn host_x86_64_program() {
    // A real x86_64 ELF of the host (dynamic, on Debian).
    for p in ["/bin/true", "/usr/bin/true"] {
        if Path::new(p).exists() {
            assert_program_refused(Path::new(p), "the host's /bin/true (x86_64)");
            break;
        }
    }
    // And a crafted static one.
    let dir = TempDir::new();
    let bytes = Elf64 {
        machine: elf::EM_X86_64,
        ..Default::default()
    }
    .build();
    let p = write_executable(dir.path(), "x86", &bytes);
    assert_program_refused(&p, "an x86_64 ELF");
}

#[test]
fn elf32() {
    let dir = TempDir::new();
    let p = write_executable(dir.path(), "arm32", &elf::elf32_arm());
    assert_program_refused(&p, "a 32-bit ARM ELF");
}

#[test]
fn big_endian_aarch64() {
    let dir = TempDir::new();
    let bytes = Elf64 {
        big_endian: true,
        ..Default::default()
    }
    .build();
    let p = write_executable(dir.path(), "be", &bytes);
    assert_program_refused(&p, "a big-endian AArch64 ELF");
}

#[test]
fn relocatable_object() {
    let dir = TempDir::new();
    let bytes = Elf64 {
        e_type: elf::ET_REL,
        with_load: false,
        ..Default::default()
    }
    .build();
    let p = write_executable(dir.path(), "obj.o", &bytes);
    assert_program_refused(&p, "an ET_REL object file");
}

#[test]
fn truncated_crafted_elf() {
    let dir = TempDir::new();
    let full = Elf64::default().build();
    for len in [3, 20, 63, 64, 100] {
        let p = write_executable(dir.path(), &format!("trunc{len}"), &full[..len]);
        assert_program_refused(&p, &format!("a crafted ELF cut at {len} bytes"));
    }
}

#[test]
fn truncated_compiled_guest() {
    let Some(hello) = guest(Libc::Glibc, "hello") else {
        return;
    };
    let bytes = std::fs::read(hello).unwrap();
    let dir = TempDir::new();
    let p = write_executable(dir.path(), "hello-200", &bytes[..200]);
    assert_program_refused(&p, "the first 200 bytes of a static hello");
}

/// Proves the ELF writer used by the refusal tests makes a valid program.
#[test]
fn crafted_elf_runs() {
    let dir = TempDir::new();
    for vaddr in [0x40_0000u64, 0x1_0000, 0x1_0000_0000] {
        let p = write_executable(
            dir.path(),
            &format!("ok-{vaddr:x}"),
            &Elf64::at(vaddr).build(),
        );
        if let Some(qemu) = qemu() {
            let q = run(qemu_command(&qemu, &p, [] as [&str; 0]), b"");
            assert_eq!(
                (q.status, q.stdout_str().as_str()),
                (42, "crafted\n"),
                "qemu: {}",
                q.describe()
            );
        }
        let out = run(elfuse_command([] as [&str; 0], &p, [] as [&str; 0]), b"");
        assert_eq!(
            out.status,
            42,
            "crafted ELF at {vaddr:#x}\n{}",
            out.describe()
        );
        assert_eq!(out.stdout_str(), "crafted\n", "{}", out.describe());
    }
}

/// PT_LOADs touching the reserved guest ranges: the null guard [0, 0x10000)
/// and the top reserve [INFRA_BASE, RAM_SIZE), or beyond the guest address space,
/// are refused.
#[test]
fn load_in_reserved_ranges() {
    use elfuse::layout::{INFRA_BASE, RAM_SIZE};
    let dir = TempDir::new();
    let cases = [
        (0x0u64, None, "at 0 (null guard)"),
        (0x8000, None, "at 0x8000 (null guard)"),
        (INFRA_BASE, None, "at the start of the top reserve"),
        (
            RAM_SIZE - 0x1_0000,
            None,
            "at the last 64 KiB of the top reserve",
        ),
        (
            INFRA_BASE - 0x1_0000,
            Some(0x2_0000),
            "straddling into the top reserve",
        ),
        (
            INFRA_BASE - 0x100_0000,
            Some(0x200_0000),
            "a large bss running into the top reserve",
        ),
        (RAM_SIZE, None, "beyond the guest address space"),
        (0x7F_0000_0000, None, "far beyond the guest address space"),
    ];
    for (vaddr, memsz, what) in cases {
        let bytes = Elf64 {
            vaddr,
            memsz,
            ..Default::default()
        }
        .build();
        let p = write_executable(dir.path(), &format!("load-{vaddr:x}"), &bytes);
        assert_program_refused(&p, &format!("a PT_LOAD {what}"));
    }
}

#[test]
fn demo_runs_through_the_shim() {
    let out = elfuse(["--demo"]);
    assert_eq!(out.status, 0, "{}", out.describe());
    let stdout = out.stdout_str();
    assert!(stdout.contains("Hello from an AArch64 guest!"), "{stdout}");
    assert!(stdout.contains("machine is: aarch64\n"), "{stdout}");
    assert!(
        out.stderr_str().contains("exited with status 0"),
        "{}",
        out.describe()
    );
}

#[test]
fn trace_to_perfetto_errors() {
    assert_user_error(&elfuse(["trace-to-perfetto", "only-one"]), "one argument");
    assert_user_error(
        &elfuse(["trace-to-perfetto", "/nonexistent/in", "/tmp/out.json"]),
        "missing input",
    );
}

/// A PT_PHDR (what AT_PHDR points at) inside the infra reserve is refused with one line,
/// while the same program with an ordinary PT_PHDR runs.
#[test]
fn phdr_in_reserved_range() {
    let dir = TempDir::new();
    let with_phdr = |phdr_vaddr: u64| {
        let mut f = Elf64::at(0x40_0000).build();
        // Move the program header table to the end of the file and add a PT_PHDR.
        let load: Vec<u8> = f[64..120].to_vec();
        let phoff = f.len() as u64;
        f[32..40].copy_from_slice(&phoff.to_le_bytes()); // e_phoff
        f[56..58].copy_from_slice(&2u16.to_le_bytes()); // e_phnum
        let mut phdr = Vec::new();
        phdr.extend_from_slice(&6u32.to_le_bytes()); // PT_PHDR
        phdr.extend_from_slice(&4u32.to_le_bytes()); // PF_R
        phdr.extend_from_slice(&phoff.to_le_bytes()); // p_offset
        phdr.extend_from_slice(&phdr_vaddr.to_le_bytes()); // p_vaddr
        phdr.extend_from_slice(&phdr_vaddr.to_le_bytes()); // p_paddr
        phdr.extend_from_slice(&112u64.to_le_bytes()); // p_filesz
        phdr.extend_from_slice(&112u64.to_le_bytes()); // p_memsz
        phdr.extend_from_slice(&8u64.to_le_bytes()); // p_align
        f.extend_from_slice(&phdr);
        f.extend_from_slice(&load);
        f
    };
    let ok = write_executable(dir.path(), "phdr-ok", &with_phdr(0x40_1000));
    let out = run(elfuse_command([] as [&str; 0], &ok, [] as [&str; 0]), b"");
    assert_eq!(out.status, 42, "{}", out.describe());
    for (vaddr, what) in [
        (elfuse::layout::SHIM_DATA, "shim_data"),
        (
            elfuse::layout::INFRA_BASE - 16,
            "straddling into the reserve",
        ),
        (0x100, "the null guard"),
    ] {
        let p = write_executable(dir.path(), &format!("phdr-{vaddr:x}"), &with_phdr(vaddr));
        assert_program_refused(&p, &format!("a PT_PHDR in {what}"));
        let out = elfuse([&p]);
        assert!(
            out.stderr_str().contains("PT_PHDR"),
            "the error names PT_PHDR\n{}",
            out.describe()
        );
    }
}

/// Runs `cmd` with a guard against a hang: killed after 60 s (the test then fails).
fn run_guarded(mut cmd: Command) -> (Option<i32>, String) {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..600 {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (st.code(), err);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    (None, String::new())
}

/// A FIFO as the program is refused with EACCES (as Linux's execve does) without
/// waiting in open(2) for a writer (the guest's execve: guests `execve_fifo`).
#[test]
fn fifo_program_refused() {
    let dir = TempDir::new();
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a NUL-terminated CString.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o755) }, 0);
    let mut cmd = Command::new(ELFUSE);
    cmd.arg(&fifo);
    let (code, err) = run_guarded(cmd);
    assert_eq!(code, Some(126), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("elfuse: ") && err.contains("Permission denied"),
        "{err}"
    );
}

/// Patches the first program header of a crafted ELF: p_filesz and p_memsz.
fn with_sizes(mut f: Vec<u8>, filesz: u64, memsz: u64) -> Vec<u8> {
    f[64 + 32..64 + 40].copy_from_slice(&filesz.to_le_bytes());
    f[64 + 40..64 + 48].copy_from_slice(&memsz.to_le_bytes());
    f
}

/// A small sparse file whose PT_LOAD declares 4 GiB of file bytes: the holes are
/// neither read nor copied (Linux maps them lazily), so it runs in bounded memory.
#[test]
fn sparse_segment_is_not_read() {
    let dir = TempDir::new();
    let big = 4u64 << 30;
    let bytes = with_sizes(Elf64::at(0x40_0000).build(), big, big);
    let p = write_executable(dir.path(), "sparse", &bytes);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(big + 0x1_0000)
        .unwrap();
    let out = run(elfuse_command([] as [&str; 0], &p, [] as [&str; 0]), b"");
    assert_eq!(out.status, 42, "{}", out.describe());
    assert_eq!(out.stdout_str(), "crafted\n");
    // The children's peak RSS (this test's elfuse runs only): far below the 4 GiB.
    // SAFETY: struct rusage is integers and timevals, valid zeroed.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage into the local `ru`.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    assert!(ru.ru_maxrss < 1 << 20, "peak RSS {} KiB", ru.ru_maxrss);
}

/// A crafted ELF with the code segment (file offset 0, at `code_vaddr`) and extra
/// PT_LOADs `(vaddr, memsz)` of no file bytes, in the order given.
fn multi_load(code_vaddr: u64, extra: &[(u64, u64)], code_first: bool) -> Vec<u8> {
    const EHDR: usize = 64;
    const PHDR: usize = 56;
    let nph = 1 + extra.len();
    let code_off = EHDR + PHDR * nph;
    let mut body = Vec::new();
    for insn in elf::EXIT42_CODE {
        body.extend_from_slice(&insn.to_le_bytes());
    }
    body.extend_from_slice(elf::EXIT42_MSG);
    let filesz = (code_off + body.len()) as u64;
    let mut f = Vec::new();
    f.extend_from_slice(b"\x7fELF");
    f.extend_from_slice(&[2, 1, 1, 0]);
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&elf::ET_EXEC.to_le_bytes());
    f.extend_from_slice(&elf::EM_AARCH64.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes());
    f.extend_from_slice(&(code_vaddr + code_off as u64).to_le_bytes());
    f.extend_from_slice(&(EHDR as u64).to_le_bytes());
    f.extend_from_slice(&0u64.to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes());
    for v in [EHDR as u16, PHDR as u16, nph as u16, 64, 0, 0] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    let ph = |f: &mut Vec<u8>, flags: u32, off: u64, vaddr: u64, filesz: u64, memsz: u64| {
        f.extend_from_slice(&1u32.to_le_bytes());
        f.extend_from_slice(&flags.to_le_bytes());
        for v in [off, vaddr, vaddr, filesz, memsz, 0x1000] {
            f.extend_from_slice(&v.to_le_bytes());
        }
    };
    if code_first {
        ph(&mut f, 5, 0, code_vaddr, filesz, filesz);
    }
    for &(v, m) in extra {
        ph(&mut f, 6, 0, v, 0, m);
    }
    if !code_first {
        ph(&mut f, 5, 0, code_vaddr, filesz, filesz);
    }
    f.extend_from_slice(&body);
    f
}

/// Out-of-order and overlapping PT_LOADs load (as on Linux and qemu), never "not enough
/// guest memory". (A later segment that covers an earlier one's pages entirely replaces
/// them on Linux; elfuse keeps both permissions there: not tested.)
#[test]
fn unordered_and_overlapping_loads() {
    let dir = TempDir::new();
    let cases = [
        (
            "below, listed after",
            multi_load(0x40_0000, &[(0x20_0000, 0x1000)], true),
        ),
        (
            "below, listed first",
            multi_load(0x40_0000, &[(0x20_0000, 0x1000)], false),
        ),
        (
            "overlapping, first",
            multi_load(0x40_0000, &[(0x3f_f000, 0x3000)], false),
        ),
    ];
    for (what, bytes) in cases {
        let p = write_executable(dir.path(), &what.replace([' ', ','], "-"), &bytes);
        if let Some(qemu) = qemu() {
            let q = run(qemu_command(&qemu, &p, [] as [&str; 0]), b"");
            assert_eq!(q.status, 42, "qemu, {what}: {}", q.describe());
        }
        let out = run(elfuse_command([] as [&str; 0], &p, [] as [&str; 0]), b"");
        assert_eq!(out.status, 42, "{what}\n{}", out.describe());
        assert_eq!(out.stdout_str(), "crafted\n", "{what}");
    }
}

/// A crafted ELF with a PT_INTERP of `interp` bytes (`size` overrides p_filesz, `off`
/// p_offset).
fn with_interp(interp: &[u8], size: Option<u64>, off: Option<u64>) -> Vec<u8> {
    const EHDR: usize = 64;
    const PHDR: usize = 56;
    let mut f = multi_load(0x40_0000, &[(0x50_0000, 0x1000)], true);
    // Turn the second (empty) PT_LOAD into the PT_INTERP, its bytes at the end.
    let at = f.len() as u64;
    f.extend_from_slice(interp);
    let h = EHDR + PHDR;
    f[h..h + 4].copy_from_slice(&3u32.to_le_bytes());
    f[h + 8..h + 16].copy_from_slice(&off.unwrap_or(at).to_le_bytes());
    f[h + 32..h + 40].copy_from_slice(&size.unwrap_or(interp.len() as u64).to_le_bytes());
    f
}

/// A PT_INTERP of size 0, past the end of the file, absurdly long or not one
/// NUL-terminated string is refused as Linux refuses it (ENOEXEC: exit 126); a missing
/// interpreter's name is printed escaped, on one line.
#[test]
fn bad_interpreter() {
    let dir = TempDir::new();
    let cases = [
        ("size 0", with_interp(b"", None, None)),
        (
            "past the end",
            with_interp(b"/lib/ld.so\0", None, Some(1 << 20)),
        ),
        ("too long", with_interp(&[b'a'; 5000], None, None)),
        ("not terminated", with_interp(b"/lib/ld.so", None, None)),
        ("size past the end", with_interp(b"/x\0", Some(100), None)),
    ];
    for (what, bytes) in cases {
        let p = write_executable(dir.path(), &what.replace(' ', "-"), &bytes);
        let out = elfuse([&p]);
        assert_user_error(&out, what);
        assert_eq!(out.status, 126, "{what}\n{}", out.describe());
    }
    let p = write_executable(
        dir.path(),
        "escaped",
        &with_interp(b"/no/such\x1b[31m\nld\x07.so\0", None, None),
    );
    let out = elfuse([&p]);
    assert_user_error(&out, "a missing interpreter");
    let err = out.stderr_str();
    assert!(
        err.contains("/no/such\\x1b[31m\\x0ald\\x07.so") && !err.contains("os error"),
        "{err}"
    );
}
