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
/// and the top 16 MiB [0x3_FF00_0000, 0x4_0000_0000), or beyond the guest
/// address space, are refused.
#[test]
fn load_in_reserved_ranges() {
    let dir = TempDir::new();
    let cases = [
        (0x0u64, None, "at 0 (null guard)"),
        (0x8000, None, "at 0x8000 (null guard)"),
        (0x3_FF00_0000, None, "at the start of the top reserve"),
        (0x3_FFFF_0000, None, "at the last 64 KiB of the top reserve"),
        (
            0x3_FEFF_0000,
            Some(0x2_0000),
            "straddling into the top reserve",
        ),
        (
            0x3_FE00_0000,
            Some(0x200_0000),
            "a large bss running into the top reserve",
        ),
        (0x4_0000_0000, None, "beyond the guest address space"),
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
        (elfuse::guest::layout::SHIM_DATA, "shim_data"),
        (
            elfuse::guest::layout::INFRA_BASE - 16,
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
