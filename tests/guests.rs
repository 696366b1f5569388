//! Runs the guest programs of tests/guest/*.c (static AArch64, glibc and musl)
//! under elfuse: exit status and stdout are checked against the expectations
//! here and, when qemu-aarch64-static is installed, against qemu's.
//!
//! Each test is generated twice by `for_each_libc!`: `glibc::NAME`, `musl::NAME`.

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

    let dir = TempDir::new();
    let file = dir.path().join("trace.txt");
    let opts = [
        std::ffi::OsString::from("--trace=syscalls"),
        "--trace-out".into(),
        file.clone().into(),
    ];
    let out = run(elfuse_command(&opts, &prog, [] as [&str; 0]), b"");
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_eq!(out.stdout_str(), "Hello, world!\n", "{}", out.describe());
    let traced = std::fs::read_to_string(&file).unwrap_or_default();
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

for_each_libc!(
    hello,
    args_and_env,
    auxv,
    exit_codes,
    fileio,
    dirs,
    mmap,
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
    trace,
    threads_sync,
    threads_futex,
    threads_exit_group,
    threads_leader_exits_first,
    threads_many,
    threads_mappings,
);
