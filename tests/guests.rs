//! Runs the guest programs of tests/guest/*.c (static AArch64, glibc and musl)
//! under elfuse: exit status and stdout are checked against the expectations
//! here and, when qemu-aarch64-static is installed, against qemu's.
//!
//! Each test is generated twice by `for_each_libc!`: `glibc::NAME`, `musl::NAME`.

#[macro_use]
mod common;

use common::*;

fn hello(libc: Libc) {
    let Some(out) = run_guest(libc, "hello", &[], 0) else {
        return;
    };
    assert_eq!(out.stdout_str(), "Hello, world!\n");
}

fn args_and_env(libc: Libc) {
    // Guest arguments that look like elfuse options must reach the guest.
    let args = ["one", "two words", "", "ünï", "--help", "--version", "-x"];
    let Some(out) = run_guest(libc, "args", &args, 0) else {
        return;
    };
    let expected = "\
argc=8
argv[0] basename=[args]
argv[1]=[one] len=3
argv[2]=[two words] len=9
argv[3]=[] len=0
argv[4]=[ünï] len=5
argv[5]=[--help] len=6
argv[6]=[--version] len=9
argv[7]=[-x] len=2
envc=4
ELFUSE_TEST_VAR=[a b=c]
";
    assert!(
        out.stdout_str().starts_with(expected),
        "expected stdout to start with:\n{expected}\n{}",
        out.describe()
    );
    assert_checks_passed(&out);
}

fn auxv(libc: Libc) {
    let Some(out) = run_guest(libc, "auxv", &[], 0) else {
        return;
    };
    let text = out.stdout_str();
    assert!(
        text.contains("\nAT_PLATFORM=aarch64\n"),
        "{}",
        out.describe()
    );
    assert!(
        text.contains("\nAT_EXECFN basename=auxv\n"),
        "{}",
        out.describe()
    );
    assert_checks_passed(&out);
}

fn exit_codes(libc: Libc) {
    let cases = [
        ("0", "exit", 0),
        ("1", "exit", 1),
        ("42", "exit", 42),
        ("255", "exit", 255),
        ("256", "exit", 0),
        ("300", "exit", 44),
        ("42", "_exit", 42),
        ("7", "return", 7),
        ("42", "exit_group", 42),
    ];
    for (n, mode, status) in cases {
        let Some(out) = run_guest(libc, "exitcode", &[n, mode], status) else {
            return;
        };
        assert_eq!(out.stdout_str(), format!("exiting with {n} via {mode}\n"));
    }
}

fn fileio(libc: Libc) {
    if let Some(out) = run_guest(libc, "fileio", &[TMP], 0) {
        assert_checks_passed(&out);
    }
}

fn dirs(libc: Libc) {
    let Some(out) = run_guest(libc, "dirs", &[TMP], 0) else {
        return;
    };
    assert!(
        out.stdout_str()
            .contains("listing of sub: [. dir] [.. dir] [a file] [b file] [c file] [d dir]\n"),
        "{}",
        out.describe()
    );
    assert_checks_passed(&out);
}

fn mmap(libc: Libc) {
    if let Some(out) = run_guest(libc, "mmap", &[TMP], 0) {
        assert_checks_passed(&out);
    }
}

/// Past the end of a mapped file: SIGBUS (BUS_ADRERR) in private and shared mappings,
/// until the file grows over the page; PROT_NONE is SIGSEGV first.
fn sigbus_past_eof(libc: Libc) {
    if let Some(out) = run_guest(libc, "sigbus", &[TMP], 0) {
        assert_checks_passed(&out);
    }
}

/// A MAP_SHARED file truncated under its mapping: syscalls on the page past the new end
/// fail with EFAULT (openat's path, write, read, /dev/urandom, getrandom, futex,
/// clock_gettime, uname), a load or store there is the guest's SIGBUS, never elfuse's
/// death (issue 12 crash c). elfuse-only: qemu-user 7.2 dies of a TCG assertion.
fn sigbus_truncated_syscalls(libc: Libc) {
    let dir = TempDir::new();
    let d = dir.path().to_str().unwrap();
    if let Some(out) = run_elfuse_only(libc, "sigbus_sys", &[], &[d], 0) {
        assert_checks_passed(&out);
    }
}

/// A MAP_SHARED file truncated by another process (a forked child): a load or store past
/// the new end is the guest's SIGBUS (BUS_ADRERR, si_addr), a syscall's access there
/// EFAULT, and elfuse lives on (the host's SIGBUS in translated code, or in the shim's
/// /dev/urandom copy, is raised as the guest's data abort). elfuse-only, as above.
fn sigbus_truncated_elsewhere(libc: Libc) {
    let dir = TempDir::new();
    let d = dir.path().to_str().unwrap();
    if let Some(out) = run_elfuse_only(libc, "sigbus_cross", &[], &[d], 0) {
        assert_checks_passed(&out);
    }
}

/// A pty pair and job control on its slave (tests/guest/pty.c); `strict`: elfuse-only,
/// with TIOCGPTLCK (qemu-user 7.2 has none).
fn pty(libc: Libc) {
    if let Some(out) = run_guest(libc, "pty", &[], 0) {
        assert_checks_passed(&out);
    }
    if let Some(out) = run_elfuse_only(libc, "pty", &[], &["strict"], 0) {
        assert_checks_passed(&out);
    }
}

/// Code written at run time, run, rewritten and run again (tests/guest/jit.c).
fn jit(libc: Libc) {
    if let Some(out) = run_guest(libc, "jit", &[], 0) {
        assert_checks_passed(&out);
    }
}

/// A file mapped twice, written through the RW view and run through the RX view
/// (tests/guest/jit.c alias): elfuse-only, qemu-user 7.2 runs the old code where Linux
/// runs the new one.
fn jit_alias(libc: Libc) {
    if let Some(out) = run_elfuse_only(libc, "jit", &[], &["alias"], 0) {
        assert_checks_passed(&out);
    }
}

fn brk_and_malloc(libc: Libc) {
    if let Some(out) = run_guest(libc, "brk", &[], 0) {
        assert_checks_passed(&out);
    }
}

fn pipes(libc: Libc) {
    if let Some(out) = run_guest(libc, "pipe", &[], 0) {
        assert_checks_passed(&out);
    }
}

fn dup_and_fcntl(libc: Libc) {
    if let Some(out) = run_guest(libc, "dup", &[], 0) {
        assert_checks_passed(&out);
    }
}

fn dupclose(libc: Libc) {
    if let Some(out) = run_guest(libc, "dupclose", &[], 0) {
        assert_checks_passed(&out);
    }
}

fn readv_writev(libc: Libc) {
    let Some(out) = run_guest(libc, "iov", &[], 0) else {
        return;
    };
    assert!(
        out.stdout_str().starts_with("writev: three parts\n"),
        "{}",
        out.describe()
    );
    assert_checks_passed(&out);
}

/// MRS of ID registers is emulated (HWCAP_CPUID) and agrees with AT_HWCAP; WFE/WFI/YIELD
/// do not stop the guest.
fn cpuid_and_hints(libc: Libc) {
    run_guest(libc, "cpuid", &[], 0);
}

fn uname(libc: Libc) {
    let Some(out) = run_guest(libc, "uname", &[], 0) else {
        return;
    };
    assert!(
        out.stdout_str()
            .contains("\nsysname=Linux\nmachine=aarch64\n"),
        "{}",
        out.describe()
    );
    assert_checks_passed(&out);
}

fn clocks_and_sleep(libc: Libc) {
    if let Some(out) = run_guest(libc, "time", &[], 0) {
        assert_checks_passed(&out);
    }
}

fn getrandom(libc: Libc) {
    if let Some(out) = run_guest(libc, "random", &[], 0) {
        assert_checks_passed(&out);
    }
}

fn identity_and_limits(libc: Libc) {
    if let Some(out) = run_guest(libc, "ident", &[], 0) {
        assert_checks_passed(&out);
    }
}

fn stdin_stdout_stderr(libc: Libc) {
    let Some(out) = run_guest_with(libc, "stdin", &[], b"hello\nworld\n", 0) else {
        return;
    };
    assert_eq!(out.stdout_str(), "bytes=12 lines=2\nHELLO\nWORLD\n");
    assert!(
        out.stderr_str().contains("stdin: done\n"),
        "{}",
        out.describe()
    );
}

fn killed_by_signals(libc: Libc) {
    for (mode, status) in [("segv", 139), ("abort", 134), ("term", 143), ("usr1", 138)] {
        let Some(out) = run_guest(libc, "die", &[mode], status) else {
            return;
        };
        assert_eq!(out.stdout_str(), format!("dying by {mode}\n"));
    }
}

fn signal_handlers(libc: Libc) {
    let Some(out) = run_guest(libc, "die", &["handled"], 0) else {
        return;
    };
    assert!(out.stdout_str().starts_with("dying by handled\n"));
    assert_checks_passed(&out);
}

/// What a shell sees when the guest dies of SIGSEGV.
fn segv_status_in_shell(libc: Libc) {
    let Some(prog) = guest(libc, "die") else {
        return;
    };
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(r#""$0" "$1" segv; echo "status=$?""#)
        .arg(ELFUSE)
        .arg(&prog);
    let out = run(cmd, b"");
    assert_eq!(
        out.stdout_str(),
        "dying by segv\nstatus=139\n",
        "{}",
        out.describe()
    );
    assert!(!out.stderr_str().contains("panicked"), "{}", out.describe());
}

/// --sysroot DIR: absolute guest paths resolve inside DIR first, then on the host.
fn sysroot(libc: Libc) {
    let Some(prog) = guest(libc, "cat") else {
        return;
    };
    let host = TempDir::new();
    let root = TempDir::new();
    std::fs::write(host.path().join("both.txt"), "from the host\n").unwrap();
    std::fs::write(host.path().join("host-only.txt"), "host only\n").unwrap();
    // The same absolute path, mirrored inside the sysroot.
    let mirrored = root.path().join(host.path().strip_prefix("/").unwrap());
    std::fs::create_dir_all(&mirrored).unwrap();
    std::fs::write(mirrored.join("both.txt"), "from the sysroot\n").unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(
        root.path().join("etc/elfuse-sysroot-only.txt"),
        "sysroot only\n",
    )
    .unwrap();

    let both = host.path().join("both.txt");
    let host_only = host.path().join("host-only.txt");
    let args = [
        both.as_os_str(),
        host_only.as_os_str(),
        "/etc/elfuse-sysroot-only.txt".as_ref(),
    ];
    let sysroot_opt = [std::ffi::OsString::from("--sysroot"), root.path().into()];
    let out = run(elfuse_command(&sysroot_opt, &prog, args), b"");
    let expected = format!(
        "--- {}\nfrom the sysroot\n--- end\n--- {}\nhost only\n--- end\n\
         --- /etc/elfuse-sysroot-only.txt\nsysroot only\n--- end\n",
        both.display(),
        host_only.display()
    );
    assert_eq!(out.stdout_str(), expected, "{}", out.describe());
    assert_eq!(out.status, 0, "{}", out.describe());

    // Without --sysroot the file inside it does not exist.
    let out = run(
        elfuse_command::<[&str; 0], _>([], &prog, ["/etc/elfuse-sysroot-only.txt"]),
        b"",
    );
    assert_eq!(
        out.stdout_str(),
        "/etc/elfuse-sysroot-only.txt: ENOENT\n",
        "{}",
        out.describe()
    );
    assert_eq!(out.status, 1, "{}", out.describe());
}

/// The path resolver under --sysroot: symlinks followed inside ROOT (absolute targets
/// stay in it, `..` never leaves it), dirfds and the cwd, and the creation rule (inside
/// ROOT when the parent is there, else on the host). elfuse-only (qemu's -L has no such
/// rules: it hands absolute symlinks to the host).
fn sysroot_resolver(libc: Libc) {
    let Some(prog) = guest(libc, "rootpaths") else {
        return;
    };
    let root = TempDir::new();
    let host = TempDir::new();
    let r = root.path();
    std::fs::create_dir_all(r.join("etc")).unwrap();
    std::fs::create_dir_all(r.join("elfuse-abs")).unwrap();
    std::fs::create_dir_all(r.join("elfuse-links")).unwrap();
    std::fs::write(r.join("etc/elfuse-sysroot-only.txt"), "sysroot only\n").unwrap();
    std::fs::write(r.join("elfuse-abs/target.txt"), "abs target\n").unwrap();
    let link = |target: &str, name: &str| {
        std::os::unix::fs::symlink(target, r.join("elfuse-links").join(name)).unwrap()
    };
    link("/elfuse-abs/target.txt", "abs");
    link("../../../../../etc/elfuse-sysroot-only.txt", "up");
    link("/elfuse-abs", "dir");
    // ROOT has the host directory's parent (/tmp) but not the directory itself.
    let parent = host.path().parent().unwrap().strip_prefix("/").unwrap();
    std::fs::create_dir_all(r.join(parent)).unwrap();
    let opts = [std::ffi::OsString::from("--sysroot"), r.into()];
    let hostlink = host.path().with_extension("lnk");
    std::os::unix::fs::symlink(host.path().file_name().unwrap(), &hostlink).unwrap();
    let out = run(elfuse_command(&opts, &prog, [host.path(), &hostlink]), b"");
    let _ = std::fs::remove_file(&hostlink);
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_checks_passed(&out);
    // Where the new files went.
    assert_eq!(
        std::fs::read_to_string(r.join("etc/elfuse-created.txt")).unwrap(),
        "made in root\n"
    );
    assert!(!std::path::Path::new("/etc/elfuse-created.txt").exists());
    assert_eq!(
        std::fs::read_to_string(host.path().join("created.txt")).unwrap(),
        "made on host\n"
    );
}

/// --trace=syscalls prints strace-like lines on stderr, or into --trace-out FILE;
/// the guest's own output is unchanged.
fn trace(libc: Libc) {
    let Some(prog) = guest(libc, "hello") else {
        return;
    };
    let out = run(
        elfuse_command(["--trace=syscalls"], &prog, [] as [&str; 0]),
        b"",
    );
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_eq!(out.stdout_str(), "Hello, world!\n", "{}", out.describe());
    let err = out.stderr_str();
    // glibc's puts uses write, musl's writev.
    assert!(
        err.contains("write"),
        "no write in the trace\n{}",
        out.describe()
    );
    assert!(
        err.contains("exit_group("),
        "no exit_group( in the trace\n{}",
        out.describe()
    );

    let (out, traced) = run_traced("syscalls", &prog, |_| ());
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_eq!(out.stdout_str(), "Hello, world!\n", "{}", out.describe());
    assert!(
        traced.contains("write") && traced.contains("exit_group("),
        "trace file lacks write / exit_group(:\n{traced}"
    );
    assert!(
        !out.stderr_str().contains("exit_group("),
        "the trace went to stderr, not to --trace-out\n{}",
        out.describe()
    );
}

/// Synthetic fds (eventfd, timerfd, epoll, inotify, pidfd, signalfd): check-style
/// programs compared with qemu-aarch64.
fn eventfds(libc: Libc) {
    if let Some(out) = run_guest(libc, "eventfd", &[], 0) {
        assert_checks_passed(&out);
    }
}

fn timerfds(libc: Libc) {
    if let Some(out) = run_guest(libc, "timerfd", &[], 0) {
        assert_checks_passed(&out);
    }
}

fn epoll(libc: Libc) {
    if let Some(out) = run_guest(libc, "epoll", &[], 0) {
        assert_checks_passed(&out);
    }
}

/// epoll_pwait2 runs under elfuse only: qemu-aarch64 7.2 returns ENOSYS for it.
fn epoll_pwait2(libc: Libc) {
    let Some(prog) = guest(libc, "epoll") else {
        return;
    };
    let out = run(elfuse_command::<[&str; 0], _>([], &prog, ["pwait2"]), b"");
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_checks_passed(&out);
}

fn inotify(libc: Libc) {
    if let Some(out) = run_guest(libc, "inotify", &[TMP], 0) {
        assert!(
            out.stdout_str()
                .contains("event IN_MOVED_TO wd_ok=1 name=[b.txt]\n"),
            "{}",
            out.describe()
        );
        assert_checks_passed(&out);
    }
}

fn pidfd(libc: Libc) {
    if let Some(out) = run_guest(libc, "pidfd", &[], 0) {
        assert_checks_passed(&out);
    }
}

fn signalfd(libc: Libc) {
    if let Some(out) = run_guest(libc, "signalfd", &[], 0) {
        assert_checks_passed(&out);
    }
}

/// signalfd4's sizemask check, under elfuse only: qemu-aarch64 7.2 ignores sizemask.
fn signalfd_strict(libc: Libc) {
    let Some(prog) = guest(libc, "signalfd") else {
        return;
    };
    let out = run(elfuse_command::<[&str; 0], _>([], &prog, ["strict"]), b"");
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_checks_passed(&out);
}

/// The libc finds the vDSO (AT_SYSINFO_EHDR), its exports carry LINUX_2.6.39, its clock
/// entry points agree with the syscalls, and only its own fallback SVC anchors [vvar].
fn vdso(libc: Libc) {
    let Some(out) = run_elfuse_only(libc, "vdso", &[], &[], 0) else {
        return;
    };
    let expected = "\
seeded after raw syscalls: 0
soname linux-vdso.so.1
__kernel_clock_gettime@LINUX_2.6.39
__kernel_gettimeofday@LINUX_2.6.39
__kernel_clock_getres@LINUX_2.6.39
__kernel_rt_sigreturn@LINUX_2.6.39
__kernel_getcpu@LINUX_2.6.39
";
    let text = out.stdout_str();
    assert!(text.starts_with(expected), "{}", out.describe());
    assert!(
        text.contains("\nseeded after libc clock_gettime: 1\n"),
        "{}",
        out.describe()
    );
    assert_checks_passed(&out);
}

/// MONOTONIC never goes backwards over 1e6 libc calls; REALTIME within 1 ms of the
/// syscall (against qemu too); and the vDSO serves those calls: the host sees only a
/// handful of clock_gettime syscalls (the anchor, re-anchors every 2^22 ticks, and the
/// 1000 raw REALTIME calls of the program's second half).
fn clock_monotonic(libc: Libc) {
    let Some(out) = run_guest(libc, "clockmono", &[], 0) else {
        return;
    };
    assert_checks_passed(&out);
    let dir = TempDir::new();
    let file = dir.path().join("trace.txt");
    let opts = [
        "--trace=syscalls".into(),
        "--trace-out".into(),
        file.clone().into(),
    ];
    let Some(out) = run_elfuse_only(libc, "clockmono", &opts, &[], 0) else {
        return;
    };
    assert_checks_passed(&out);
    let traced = std::fs::read_to_string(&file).unwrap_or_default();
    let n = traced.matches("clock_gettime(").count();
    assert!(
        (1000..1200).contains(&n),
        "{n} clock_gettime syscalls for 1e6 + 2000 libc calls and 1000 raw ones"
    );
}

/// The same with 4 threads hammering MONOTONIC at once (concurrent first calls race to
/// anchor the vvar; the CAS lets one win).
fn clock_monotonic_threads(libc: Libc) {
    if let Some(out) = run_guest(libc, "clockmono", &["4"], 0) {
        assert_checks_passed(&out);
    }
}

// ---- the EL1 shim's fast paths (shim_data) and the infra boundary ----------------

fn shim_identity(libc: Libc) {
    if let Some(out) = run_guest(libc, "shimfast", &["ident", "200"], 0) {
        assert_checks_passed(&out);
    }
}

fn shim_urandom(libc: Libc) {
    for mode in ["random", "reuse", "efault"] {
        if let Some(out) = run_guest(libc, "shimfast", &[mode], 0) {
            assert_checks_passed(&out);
        }
    }
}

/// Drops ANSI colour sequences (ESC ... m) from a log.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut esc = false;
    for c in s.chars() {
        match (esc, c) {
            (false, '\x1b') => esc = true,
            (false, c) => out.push(c),
            (true, 'm') => esc = false,
            (true, _) => {}
        }
    }
    out
}

/// Syscall numbers that reached the host, from `RUST_LOG=elfuse::exit=trace`.
fn exits(out: &Output) -> Vec<u64> {
    strip_ansi(&out.stderr_str())
        .lines()
        .filter(|l| l.contains("syscall exit"))
        .filter_map(|l| {
            let v = l.split("nr=").nth(1)?;
            v.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
        })
        .collect()
}

/// With the fast path on, identity calls and small urandom reads never leave the guest;
/// with --trace=syscalls (TRACE attention) every one of them is traced.
fn shim_fast_path_exits(libc: Libc) {
    let Some(prog) = guest(libc, "shimfast") else {
        return;
    };
    let mut cmd = elfuse_command([] as [&str; 0], &prog, ["ident", "50"]);
    cmd.env("RUST_LOG", "elfuse::exit=trace");
    let out = run(cmd, b"");
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_checks_passed(&out);
    let nrs = exits(&out);
    assert!(nrs.len() > 5, "no exits logged?\n{}", out.describe());
    // getpid 172 .. gettid 178: never; getpgid/getsid only for the pid != 0 forms (once).
    for nr in 172..=178 {
        assert!(
            !nrs.contains(&nr),
            "syscall {nr} exited\n{}",
            out.describe()
        );
    }
    assert_eq!(nrs.iter().filter(|&&n| n == 155).count(), 1, "{nrs:?}");
    assert_eq!(nrs.iter().filter(|&&n| n == 156).count(), 1, "{nrs:?}");

    let out = run(
        elfuse_command(["--trace=syscalls"], &prog, ["ident", "50"]),
        b"",
    );
    assert_eq!(out.status, 0, "{}", out.describe());
    let err = out.stderr_str();
    let count = |name: &str| err.lines().filter(|l| l.contains(name)).count();
    // 50 rounds + the checks outside the loop.
    assert_eq!(count("] getpid("), 50 + 2, "{}", out.describe());
    assert_eq!(count("] getuid("), 50, "{}", out.describe());
    assert_eq!(count("] gettid("), 50, "{}", out.describe());
    assert_eq!(count("] getpgid("), 51, "{}", out.describe());

    // urandom reads and getrandom: served in EL1 unless the ring runs dry.
    let mut cmd = elfuse_command([] as [&str; 0], &prog, ["random"]);
    cmd.env("RUST_LOG", "elfuse::exit=trace");
    let out = run(cmd, b"");
    assert_checks_passed(&out);
    let nrs = exits(&out);
    let reads = nrs.iter().filter(|&&n| n == 63).count();
    let getrandoms = nrs.iter().filter(|&&n| n == 278).count();
    // The program makes ~730 reads and ~215 getrandoms; the host sees the oversized ones,
    // the EBADF one and one per ring refill (~84 KiB through a 4 KiB ring).
    assert!(reads < 60, "{reads} reads exited\n{nrs:?}");
    assert!(getrandoms < 40, "{getrandoms} getrandoms exited\n{nrs:?}");
}

fn infra_addrs() -> (u64, u64) {
    use elfuse::layout;
    (layout::SHIM_DATA, layout::INFRA_BASE)
}

/// EL0 cannot touch shim_data, shim code or the page tables; syscalls given infra
/// pointers fail without touching them. elfuse-only (the addresses are elfuse's).
fn infra_boundary(libc: Libc) {
    use elfuse::layout;
    let Some(prog) = guest(libc, "infra") else {
        return;
    };
    let (data, base) = infra_addrs();
    for addr in [data, layout::SHIM_CODE, layout::EL1_STACKS, layout::PT_POOL] {
        let a = format!("{addr:#x}");
        for mode in ["load", "store"] {
            let out = run(elfuse_command([] as [&str; 0], &prog, [mode, &a]), b"");
            assert_eq!(out.status, 139, "{mode} {a}\n{}", out.describe());
        }
    }
    let a = format!("{data:#x}");
    let out = run(elfuse_command([] as [&str; 0], &prog, ["handler", &a]), b"");
    assert_eq!(out.status, 0, "{}", out.describe());
    assert!(out.stdout_str().starts_with("ok"), "{}", out.describe());
    let b = format!("{base:#x}");
    let out = run(
        elfuse_command([] as [&str; 0], &prog, ["calls", &a, &b]),
        b"",
    );
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_checks_passed(&out);
}

/// execve of a host-native program runs it natively as the same process, with the
/// guest's fds, cwd and environment (same stdout as qemu, which does the same).
fn execve_host_native(libc: Libc) {
    let Some(out) = run_guest(libc, "execnative", &[TMP], 0) else {
        return;
    };
    assert_checks_passed(&out);
}

/// RLIMIT_NOFILE is the host's (what the parent gave), as a process inherits it, not a
/// fixed 1024 (`ulimit -n`); qemu shows the same.
fn nofile_from_host(libc: Libc) {
    use std::os::unix::process::CommandExt;
    let Some(prog) = guest(libc, "nofile") else {
        return;
    };
    let limit = |mut cmd: std::process::Command| {
        // SAFETY: setrlimit is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                let rl = libc::rlimit {
                    rlim_cur: 3000,
                    rlim_max: 6000,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
        run(cmd, b"")
    };
    let out = limit(elfuse_command([] as [&str; 0], &prog, [] as [&str; 0]));
    assert_eq!(out.stdout_str(), "3000 6000\n", "{}", out.describe());
    if let Some(qemu) = qemu() {
        let q = limit(qemu_command(&qemu, &prog, [] as [&str; 0]));
        assert_eq!(q.stdout_str(), out.stdout_str(), "qemu: {}", q.describe());
    }
}

/// execve of a FIFO (without waiting in open), a directory or a file without x bits:
/// EACCES (same stdout as qemu).
fn execve_fifo(libc: Libc) {
    let Some(out) = run_guest(libc, "execfifo", &[TMP], 0) else {
        return;
    };
    assert_checks_passed(&out);
}

/// Blocked signals from a child (kill, sigqueue) or from the process itself (a
/// process-directed rt_sigqueueinfo while every thread blocks it) stay pending for a
/// signalfd or sigtimedwait; they killed elfuse (issue 12, crashes a and b).
fn signals_blocked_everywhere(libc: Libc) {
    let Some(out) = run_guest(libc, "sigblocked", &[], 0) else {
        return;
    };
    assert_checks_passed(&out);
}

/// The guest's own /proc under every spelling (listed in tests/guest/procself.c), its
/// magic links and /proc/self/mem. elfuse-only: qemu-aarch64 shows its own process for
/// most spellings.
fn proc_self_spellings(libc: Libc) {
    let Some(prog) = guest(libc, "procself") else {
        return;
    };
    let (data, base) = infra_addrs();
    let dir = TempDir::new();
    let args = [
        dir.path().to_str().unwrap().to_string(),
        format!("{data:#x}"),
        format!("{base:#x}"),
    ];
    let out = run(elfuse_command([] as [&str; 0], &prog, &args), b"");
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_checks_passed(&out);
}

/// Another guest process's /proc/<pid> (a fork child's, and from the child its parent's)
/// under every spelling listed in tests/guest/procpeer.c, its memory through
/// process_vm_readv/writev and /proc/<pid>/mem, its fd through pidfd_getfd, gone once
/// reaped; on both fork paths. elfuse-only: qemu-aarch64 shows the host's entries of the
/// other process (qemu's own maps, fds and threads), where Linux shows the guest's.
fn proc_of_other_guests(libc: Libc) {
    let Some(prog) = guest(libc, "procpeer") else {
        return;
    };
    let (data, _) = infra_addrs();
    for spawn in [false, true] {
        let dir = TempDir::new();
        let args = [
            dir.path().to_str().unwrap().to_string(),
            format!("{data:#x}"),
        ];
        let mut cmd = elfuse_command([] as [&str; 0], &prog, &args);
        if spawn {
            cmd.env("ELFUSE_FORK", "spawn");
        }
        let out = run(cmd, b"");
        assert_eq!(out.status, 0, "spawn={spawn}: {}", out.describe());
        assert_checks_passed(&out);
    }
}

/// fork + wait4/waitid, 50 children, pipes between parent and child, random bytes never
/// handed out by both (same stdout as qemu; the spawn path hands out random bytes too).
fn fork_and_wait(libc: Libc) {
    for mode in [
        "basic", "many", "pipe", "vfork", "shared", "chain", "random",
    ] {
        let Some(out) = run_guest(libc, "fork", &[mode], 0) else {
            return;
        };
        assert!(out.stdout_str().starts_with(&format!("fork {mode}\n")));
        assert_checks_passed(&out);
    }
    let spawn = run_spawn_fork(&guest(libc, "fork").unwrap(), ["random"]);
    assert!(spawn.stdout_str().starts_with("fork random\n"));
    assert_checks_passed(&spawn);
    let Some(out) = run_guest(libc, "fork", &["pipe"], 0) else {
        return;
    };
    let text = out.stdout_str();
    let child = text.find("line from the child").expect("child's line");
    let parent = text.find("line from the parent").expect("parent's line");
    assert!(child < parent, "{}", out.describe());
}

/// A child blocked in ppoll right after fork (before its host-signal watcher starts:
/// `hostsig::watch_deferred`) gets its parent's SIGUSR1 at once: the handler runs, the
/// call fails with EINTR. elfuse-only: qemu-user 7.2 leaves that child blocked.
fn fork_signal_to_young_child(libc: Libc) {
    if let Some(out) = run_elfuse_only(libc, "fork", &[], &["killchild"], 0) {
        assert_checks_passed(&out);
    }
}

/// Children killed by SIGKILL (also through their process group), SIGSEGV and SIGTERM
/// are WIFSIGNALED with the right signal in the parent. Real-time signals between
/// processes: queued in order with their values (also the wake signal's number), default
/// action and SIG_IGN as on Linux.
fn fork_children_killed(libc: Libc) {
    for mode in ["signals", "rtsig"] {
        let Some(out) = run_guest(libc, "fork", &[mode], 0) else {
            return;
        };
        assert_checks_passed(&out);
    }
    let spawn = run_spawn_fork(&guest(libc, "fork").unwrap(), ["rtsig"]);
    assert_checks_passed(&spawn);
}

/// eventfd, epoll, timerfd, inotify and pidfd keep Linux's shared state across fork; a
/// signalfd in the child reports the child's pending signals (both fork paths).
fn fork_synthetic_fds(libc: Libc) {
    let Some(out) = run_guest(libc, "fork_fds", &[TMP], 0) else {
        return;
    };
    assert_checks_passed(&out);
    let prog = guest(libc, "fork_fds").unwrap();
    let dir = TempDir::new();
    let spawn = run_spawn_fork(&prog, [dir.path()]);
    assert_eq!(spawn.stdout_str(), out.stdout_str(), "{}", spawn.describe());
}

/// fork from a multi-threaded guest: other threads are paused while the child is
/// captured (consistent, frozen memory in the child), from a non-main thread, while a
/// thread blocks in read(), and from two threads at once (both fork paths).
fn fork_with_threads(libc: Libc) {
    let Some(out) = run_guest(libc, "fork_threads", &[], 0) else {
        return;
    };
    assert_checks_passed(&out);
    let prog = guest(libc, "fork_threads").unwrap();
    let spawn = run_spawn_fork(&prog, [""; 0]);
    assert_eq!(spawn.stdout_str(), out.stdout_str(), "{}", spawn.describe());
}

/// clone3 creating processes (fork, vfork, no exit signal), on both fork paths.
fn fork_through_clone3(libc: Libc) {
    let Some(out) = run_elfuse_only(libc, "fork", &[], &["clone3"], 0) else {
        return;
    };
    assert_checks_passed(&out);
    let prog = guest(libc, "fork").unwrap();
    let spawn = run_spawn_fork(&prog, ["clone3"]);
    assert_eq!(spawn.stdout_str(), out.stdout_str(), "{}", spawn.describe());
}

/// execve from a thread that is not the leader: the new image's only thread has the
/// pid as its tid (Linux's de_thread), and can create threads.
fn execve_from_thread(libc: Libc) {
    let Some(out) = run_elfuse_only(libc, "exec", &[], &["leader"], 0) else {
        return;
    };
    assert_checks_passed(&out);
}

/// Runs guest `name` under elfuse only (qemu-user cannot execve an AArch64 program
/// without binfmt_misc) and checks the status.
fn execve_self_and_errors(libc: Libc) {
    let Some(out) = run_elfuse_only(libc, "exec", &[], &["self"], 0) else {
        return;
    };
    assert_eq!(
        out.stdout_str(),
        "exec self\nargc=4 argv0=renamed [show] [a] [b c] EXECVAR=yes\nexe is self: yes\n"
    );
    let dir = TempDir::new();
    let d = dir.path().to_str().unwrap();
    // execve from a process whose other threads block in read() and in a futex wait:
    // they are ended first (de_thread), and the new image runs alone.
    let out = run_elfuse_only(libc, "exec", &[], &["threads"], 0).unwrap();
    assert!(
        out.stdout_str().ends_with(
            "argc=3 argv0=threaded [show] [after-threads] EXECVAR=(unset)\nexe is self: yes\n"
        ),
        "{}",
        out.describe()
    );
    let out = run_elfuse_only(libc, "exec", &[], &["errors", d], 0).unwrap();
    assert_checks_passed(&out);
    let out = run_elfuse_only(libc, "exec", &[], &["cloexec", d], 0).unwrap();
    assert_checks_passed(&out);
    assert_eq!(
        out.stdout_str().matches("ok ").count(),
        7,
        "{}",
        out.describe()
    );
}

/// A `#!` script whose interpreter is a test program, directly and through a script.
fn execve_script(libc: Libc) {
    let dir = TempDir::new();
    let d = dir.path().to_str().unwrap();
    let Some(out) = run_elfuse_only(libc, "exec", &[], &["script", d], 0) else {
        return;
    };
    assert_eq!(
        out.stdout_str(),
        "exec script\n\
         argc=5 argv0-is-self=yes argv1=script-arg script script2 x\n\
         argc=4 argv0-is-self=yes argv1=script-arg script x\n"
    );
}

fn vfork_and_execveat(libc: Libc) {
    let Some(out) = run_elfuse_only(libc, "exec", &[], &["vfork"], 0) else {
        return;
    };
    assert_eq!(
        out.stdout_str(),
        "exec vfork\n\
         argc=3 argv0=vforked [show] [from-vfork] EXECVAR=(unset)\nexe is self: yes\n\
         vfork child status 0\n\
         argc=3 argv0=forked [show] [from-execveat] EXECVAR=(unset)\nexe is self: yes\n\
         fork child status 0\n"
    );
}

/// The portable fork path (spawn `elfuse --fork-child` + state handover), which Linux
/// uses only with ELFUSE_FORK=spawn: the same guests pass.
fn fork_spawn_path(libc: Libc) {
    let Some(prog) = guest(libc, "fork") else {
        return;
    };
    for mode in ["basic", "many", "pipe", "signals", "vfork", "shared"] {
        let out = run_spawn_fork(&prog, [mode]);
        assert_eq!(out.status, 0, "{mode}\n{}", out.describe());
        assert_checks_passed(&out);
    }
    let exec = guest(libc, "exec").unwrap();
    let out = run_spawn_fork(&exec, ["vfork"]);
    assert!(
        out.stdout_str().ends_with("fork child status 0\n") && out.status == 0,
        "{}",
        out.describe()
    );
}

/// [`host_usage_now`] once two readings 20 ms apart agree: a thread the process is
/// starting right then (an actor's, started lazily) still has its creator's name until
/// it names itself.
fn host_usage(pid: u32) -> (usize, Vec<String>, String) {
    let mut last = host_usage_now(pid);
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let now = host_usage_now(pid);
        if now == last {
            break;
        }
        last = now;
    }
    last
}

/// (fds, threads, unreaped children) of host process `pid`. Threads are counted by name
/// apart from actor threads, which start lazily (with the first message that has to be
/// queued) and are at most one per actor (asserted here), so a leak of them still shows.
fn host_usage_now(pid: u32) -> (usize, Vec<String>, String) {
    let count = |d: String| std::fs::read_dir(d).map_or(0, |r| r.count());
    let mut children = String::new();
    let mut threads = Vec::new();
    let mut actors = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            children += &std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            let comm = comm.trim().to_string();
            if comm.starts_with("actor-") {
                actors.push(comm);
            } else {
                threads.push(comm);
            }
        }
    }
    threads.sort();
    let n = actors.len();
    actors.sort();
    actors.dedup();
    assert_eq!(n, actors.len(), "an actor thread twice: {actors:?}");
    (count(format!("/proc/{pid}/fd")), threads, children)
}

/// 1000 fork/exit/wait cycles leave no host fd, thread or child process behind in the
/// parent elfuse (counted from /proc between two pauses of the guest), on both fork
/// paths (native fork, and spawn with 300 cycles).
fn fork_cycles_leave_nothing_behind(libc: Libc) {
    let Some(prog) = guest(libc, "fork") else {
        return;
    };
    leak_check(&prog, "native", "1000");
    leak_check(&prog, "spawn", "300");
}

fn leak_check(prog: &std::path::Path, path: &str, cycles: &str) {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let mut child = elfuse_command::<[&str; 0], _>([], prog, ["leaks", cycles])
        .env("ELFUSE_FORK", path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "fork leaks");
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let before = host_usage(pid);
    writeln!(stdin, "go").unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "done 0 bad", "{path}");
    let after = host_usage(pid);
    writeln!(stdin, "end").unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        before, after,
        "{path}: (fds, threads, children) before and after"
    );
    assert!(
        before.2.trim().is_empty(),
        "unreaped children: {}",
        before.2
    );
}

fn threads_sync(libc: Libc) {
    let Some(out) = run_guest(libc, "threads_sync", &[], 0) else {
        return;
    };
    assert!(
        out.stdout_str()
            .contains("atomic increments: 8000000 of 8000000\n"),
        "{}",
        out.describe()
    );
    assert_checks_passed(&out);
}

fn threads_futex(libc: Libc) {
    let Some(out) = run_guest(libc, "threads_futex", &[], 0) else {
        return;
    };
    assert_checks_passed(&out);
}

fn threads_exit_group(libc: Libc) {
    // A worker's exit_group ends the process while other threads block in a futex
    // wait, in read() on a pipe and in pthread_join.
    let Some(out) = run_guest(libc, "threads_exit", &[], 42) else {
        return;
    };
    assert!(
        out.stdout_str().ends_with("worker calls exit_group(42)\n"),
        "{}",
        out.describe()
    );
}

fn threads_leader_exits_first(libc: Libc) {
    // pthread_exit in the main thread: the process lives until the last thread ends.
    let Some(out) = run_guest(libc, "threads_exit", &["leader"], 0) else {
        return;
    };
    assert!(
        out.stdout_str().ends_with("last worker returns\n"),
        "{}",
        out.describe()
    );
}

fn threads_many(libc: Libc) {
    let Some(out) = run_guest(libc, "threads_many", &[], 0) else {
        return;
    };
    assert_checks_passed(&out);
}

fn threads_mappings(libc: Libc) {
    let Some(out) = run_guest(libc, "threads_mem", &[], 0) else {
        return;
    };
    assert_checks_passed(&out);
}

/// Per-thread signal masks: a signal blocked in main is taken by the thread with it
/// unblocked; new threads inherit the creator's mask.
/// Asynchronous signals (tests/guest/sigcore.c): tgkill to a chosen thread, preemption
/// of a spinning thread, sigsuspend, sigtimedwait, sigqueue values, real-time queueing,
/// SA_RESTART/EINTR on a pipe read, nanosleep's time left, ppoll's mask.
fn sigcore(libc: Libc) {
    if let Some(out) = run_guest(libc, "sigcore", &[], 0) {
        assert_checks_passed(&out);
    }
}

fn sigmask_threads(libc: Libc) {
    if let Some(out) = run_guest(libc, "sigmask_threads", &[], 0) {
        assert_checks_passed(&out);
    }
}

for_each_libc!(
    hello,
    args_and_env,
    auxv,
    exit_codes,
    fileio,
    dirs,
    mmap,
    sigbus_past_eof,
    sigbus_truncated_syscalls,
    sigbus_truncated_elsewhere,
    pty,
    jit,
    jit_alias,
    brk_and_malloc,
    pipes,
    dup_and_fcntl,
    readv_writev,
    uname,
    cpuid_and_hints,
    clocks_and_sleep,
    getrandom,
    identity_and_limits,
    stdin_stdout_stderr,
    killed_by_signals,
    signal_handlers,
    segv_status_in_shell,
    sysroot,
    sysroot_resolver,
    trace,
    eventfds,
    timerfds,
    epoll,
    epoll_pwait2,
    inotify,
    pidfd,
    signalfd,
    signalfd_strict,
    vdso,
    clock_monotonic,
    shim_identity,
    shim_urandom,
    shim_fast_path_exits,
    infra_boundary,
    proc_self_spellings,
    proc_of_other_guests,
    signals_blocked_everywhere,
    execve_fifo,
    nofile_from_host,
    execve_host_native,
    fork_and_wait,
    fork_children_killed,
    fork_signal_to_young_child,
    fork_synthetic_fds,
    fork_with_threads,
    fork_through_clone3,
    execve_from_thread,
    execve_self_and_errors,
    execve_script,
    vfork_and_execveat,
    fork_cycles_leave_nothing_behind,
    fork_spawn_path,
    threads_sync,
    threads_futex,
    threads_exit_group,
    threads_leader_exits_first,
    threads_many,
    threads_mappings,
    sigmask_threads,
    sigcore,
);

/// `--trace=actors` on the concurrent dup/close guest: thousands of JSON lines, every
/// one with the documented keys, `seq` strictly increasing per actor, and messages from
/// several guest threads.
fn trace_actors_concurrent(libc: Libc) {
    let Some(prog) = guest(libc, "dupclose") else {
        return;
    };
    let (out, text) = run_traced("actors", &prog, |_| ());
    assert_checks_passed(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 4000, "only {} trace lines", lines.len());
    let num = |l: &str, k: &str| -> i64 {
        let v = json_field(l, k).unwrap_or_else(|| panic!("no {k}: {l}"));
        v.parse().unwrap()
    };
    let mut last = std::collections::BTreeMap::<String, i64>::new();
    let mut tids = std::collections::BTreeSet::new();
    for l in &lines {
        assert!(
            l.starts_with('{') && l.ends_with('}'),
            "not a JSON object: {l}"
        );
        let at = l.find("\"actor\":\"").expect("actor") + 9;
        let actor = l[at..at + l[at..].find('"').unwrap()].to_string();
        assert!(l.contains("\"msg\":\""), "{l}");
        for k in ["ts_ns", "wait_ns", "run_ns"] {
            assert!(num(l, k) >= 0, "{l}");
        }
        let seq = num(l, "seq");
        let prev = last.entry(actor.clone()).or_insert(0);
        assert!(seq > *prev, "seq not increasing for {actor}: {l}");
        *prev = seq;
        if actor == "fdtable" {
            tids.insert(num(l, "tid"));
        }
    }
    assert!(tids.len() >= 4, "messages from only {tids:?}");
}

/// Guests with several threads racing on the fd table.
mod fd_races {
    #[test]
    fn glibc_dupclose() {
        super::dupclose(super::Libc::Glibc)
    }
    #[test]
    fn glibc_pie_dupclose() {
        super::dupclose(super::Libc::GlibcPie)
    }
    #[test]
    fn musl_dupclose() {
        super::dupclose(super::Libc::Musl)
    }
    #[test]
    fn glibc_trace_actors_concurrent() {
        super::trace_actors_concurrent(super::Libc::Glibc)
    }
    #[test]
    fn musl_trace_actors_concurrent() {
        super::trace_actors_concurrent(super::Libc::Musl)
    }
}

/// `--trace=syscalls,actors --trace-out FILE`: both kinds land in the file; actor
/// records are JSON lines with a strictly increasing `seq`, and `trace-to-perfetto`
/// turns them into Chrome trace-event JSON.
fn trace_actors(libc: Libc) {
    let Some(prog) = guest(libc, "dup") else {
        return;
    };
    let (out, traced) = run_traced("syscalls,actors", &prog, |_| ());
    assert_checks_passed(&out);
    assert!(traced.contains("dup3("), "no syscall lines:\n{traced}");
    let records: Vec<&str> = traced.lines().filter(|l| l.starts_with('{')).collect();
    let field = |l: &str, k: &str| -> String {
        json_field(l, k)
            .unwrap_or_else(|| panic!("no {k} in {l}"))
            .to_string()
    };
    // seq is the serialisation order of each actor: strictly increasing per actor.
    let mut last_seq = std::collections::BTreeMap::<String, u64>::new();
    let mut kinds = std::collections::BTreeSet::new();
    let mut fd_msgs = 0;
    for r in &records {
        let actor = field(r, "actor");
        assert!(
            ["fdtable", "urandom", "signals"].contains(&actor.as_str()),
            "{r}"
        );
        let seq: u64 = field(r, "seq").parse().unwrap();
        let last = last_seq.entry(actor.clone()).or_default();
        assert!(seq > *last, "seq not increasing: {r}");
        *last = seq;
        if actor != "fdtable" {
            continue; // the urandom actor's own fills and ticks carry no guest tid
        }
        fd_msgs += 1;
        assert!(field(r, "tid").parse::<i32>().unwrap() > 0, "{r}");
        for k in ["ts_ns", "wait_ns", "run_ns"] {
            field(r, k).parse::<u64>().unwrap();
        }
        kinds.insert(field(r, "msg"));
    }
    for k in ["install", "dup", "dup_to", "close", "set_cloexec"] {
        assert!(kinds.contains(k), "no {k} message in {kinds:?}");
    }
    let dir = TempDir::new();
    let file = dir.path().join("trace.txt");
    std::fs::write(&file, &traced).unwrap();
    let chrome = dir.path().join("trace.json");
    let conv = run(
        {
            let mut c = std::process::Command::new(ELFUSE);
            c.arg("trace-to-perfetto").arg(&file).arg(&chrome);
            c
        },
        b"",
    );
    assert_eq!(conv.status, 0, "{}", conv.describe());
    let json = std::fs::read_to_string(&chrome).unwrap();
    assert!(json.starts_with("{\"displayTimeUnit\":\"ns\",\"traceEvents\":["));
    assert_eq!(
        json.matches("\"ph\":\"X\",\"cat\":\"fdtable\"").count(),
        2 * fd_msgs,
        "one run and one wait event per message"
    );
}

/// The design card's acceptance for the actors: a guest that dups and closes fds, reads
/// /dev/urandom, arms an itimer and takes its signals, and forks (on the spawn path, the
/// one with fork IPC) leaves messages from every named actor in `--trace=actors`: the
/// fd table, the signal/itimer actor (the itimer's own messages and its ticks), the
/// urandom refill actor and fork-IPC.
fn trace_every_actor(libc: Libc) {
    let Some(prog) = guest(libc, "allactors") else {
        return;
    };
    let (out, text) = run_traced("actors", &prog, |c| {
        c.env("ELFUSE_FORK", "spawn");
    });
    assert_checks_passed(&out);
    let mut seen = std::collections::BTreeSet::new();
    for l in text.lines().filter(|l| l.starts_with('{')) {
        if let (Some(a), Some(m)) = (json_field(l, "actor"), json_field(l, "msg")) {
            seen.insert(format!("{a}/{m}"));
        }
    }
    for want in [
        "fdtable/dup",
        "fdtable/close",
        "signals/setitimer",
        "signals/tick",
        "signals/send",
        "signals/take",
        "urandom/check",
        "fork-ipc/spawn",
        "fork-ipc/handover",
    ] {
        assert!(seen.contains(want), "no {want} in {seen:?}");
    }
}

mod every_actor_trace {
    #[test]
    fn glibc() {
        super::trace_every_actor(super::Libc::Glibc)
    }
    #[test]
    fn musl() {
        super::trace_every_actor(super::Libc::Musl)
    }
}

mod actor_trace {
    #[test]
    fn glibc() {
        super::trace_actors(super::Libc::Glibc)
    }
    #[test]
    fn musl() {
        super::trace_actors(super::Libc::Musl)
    }
}

mod threads {
    use super::*;
    #[test]
    fn clock_monotonic_threads_glibc() {
        clock_monotonic_threads(Libc::Glibc)
    }
    #[test]
    fn clock_monotonic_threads_glibc_pie() {
        clock_monotonic_threads(Libc::GlibcPie)
    }
    #[test]
    fn clock_monotonic_threads_musl() {
        clock_monotonic_threads(Libc::Musl)
    }
}
