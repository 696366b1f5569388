//! `elfuse -g PORT`: gdb-multiarch, in batch mode, debugs tests/gdb/prog.c (built -g -O0)
//! under elfuse, and the same session runs against `qemu-aarch64-static -g PORT`; the two
//! transcripts must match once addresses that legitimately differ (the stack, where
//! shared libraries are loaded) are normalised. Every run ends by itself: gdb and the
//! emulator are killed at a deadline.

mod common;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{in_ci, qemu, target_dir, which, ELFUSE};

const DEADLINE: Duration = Duration::from_secs(120);
const CROSS_GCC: &str = "aarch64-linux-gnu-gcc";
const SYSROOT: &str = "/usr/aarch64-linux-gnu";

fn skip(why: &str) -> bool {
    if in_ci() {
        panic!("CI=true but {why}");
    }
    eprintln!("skipped: {why}");
    false
}

fn have_tools() -> bool {
    if which("gdb-multiarch").is_none() {
        return skip("no gdb-multiarch (run scripts/install-deps.sh as root)");
    }
    if which(CROSS_GCC).is_none() {
        return skip("no aarch64-linux-gnu-gcc (run scripts/install-deps.sh as root)");
    }
    true
}

/// tests/gdb/prog.c built with debug info, static or dynamic.
fn build(dynamic: bool) -> PathBuf {
    build_src("prog", dynamic)
}

/// tests/gdb/SRC.c built with debug info, static or dynamic.
fn build_src(src: &str, dynamic: bool) -> PathBuf {
    let dir = target_dir().join("gdb-guests");
    std::fs::create_dir_all(&dir).unwrap();
    let name = if dynamic {
        format!("{src}-dyn")
    } else {
        src.to_string()
    };
    let out = dir.join(&name);
    let tmp = dir.join(format!("{name}.tmp{}", std::process::id()));
    let src = common::repo_root().join(format!("tests/gdb/{src}.c"));
    let mut cmd = Command::new(CROSS_GCC);
    cmd.args(["-g", "-O0", "-Wall", "-pthread"]);
    if !dynamic {
        cmd.arg("-static");
    }
    let st = cmd.arg("-o").arg(&tmp).arg(&src).status().unwrap();
    assert!(st.success(), "{CROSS_GCC} failed for {}", src.display());
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// A port nothing listens on now (the emulator binds it right after).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// True once something listens on 127.0.0.1:`port` (read from /proc/net/tcp, so that
/// no connection is used up: the stubs accept exactly one).
fn listening(port: u16) -> bool {
    // elfuse binds 127.0.0.1; qemu binds every address.
    let want = [
        format!("0100007F:{port:04X}"),
        format!("00000000:{port:04X}"),
    ];
    std::fs::read_to_string("/proc/net/tcp")
        .map(|t| {
            t.lines().skip(1).any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && want.iter().any(|w| f[1] == w) && f[3] == "0A"
            })
        })
        .unwrap_or(false)
}

/// A child process killed when dropped (a failed assertion must not leave an emulator
/// waiting for gdb).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for `child` until `deadline`, killing it then. Returns (status, stdout).
fn finish(child: &mut Reaped, deadline: Instant, what: &str) -> (Option<i32>, String) {
    let child = &mut child.0;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let mut out = String::new();
            if let Some(mut o) = child.stdout.take() {
                o.read_to_string(&mut out).unwrap();
            }
            // A signal's death as a shell shows it (128 + N).
            let code = st.code().or(st.signal().map(|s| 128 + s));
            return (code, out);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `script` in gdb-multiarch against `emulator ARGS -g PORT program`; returns gdb's
/// transcript (stdout and stderr) and the program's status and output.
fn session(
    emulator: &Path,
    emu_args: &[&str],
    program: &Path,
    script: &str,
) -> (String, Option<i32>, String) {
    let deadline = Instant::now() + DEADLINE;
    let port = free_port();
    let mut emu = Reaped(
        Command::new(emulator)
            .args(emu_args)
            .arg("-g")
            .arg(port.to_string())
            .arg(program)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    while !listening(port) {
        assert!(
            Instant::now() < deadline,
            "no stub listening on port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let dir = target_dir().join("gdb-guests");
    let script_file = dir.join(format!("session-{port}.gdb"));
    let text = format!(
        "set pagination off\nset confirm off\nset width 0\n{}",
        script.replace("PORT", &port.to_string())
    );
    std::fs::write(&script_file, text).unwrap();
    let gdb = Command::new("gdb-multiarch")
        .args(["-batch", "-nx", "-x"])
        .arg(&script_file)
        .arg(program)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(gdb, deadline);
    let (status, stdout) = finish(&mut emu, deadline, "the debugged program");
    let _ = std::fs::remove_file(&script_file);
    (out, status, stdout)
}

fn wait_output(child: Child, deadline: Instant) -> String {
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: a plain syscall; the pid may be gone (then this does nothing useful).
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    });
    let out = child.wait_with_output().unwrap();
    drop(watchdog);
    assert!(Instant::now() < deadline, "gdb did not finish in time");
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s
}

/// Replaces hex numbers (after "0x") of at least `min` by "ADDR".
fn normalise(s: &str, min: u64) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("0x") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 2..];
        let n = tail.bytes().take_while(u8::is_ascii_hexdigit).count();
        match u64::from_str_radix(&tail[..n], 16) {
            Ok(v) if v >= min => out.push_str("ADDR"),
            _ => out.push_str(&rest[i..i + 2 + n]),
        }
        rest = &tail[n..];
    }
    out.push_str(rest);
    out
}

/// Static program: only the stack lies elsewhere (elfuse's and qemu's are above 4 GiB,
/// the program's code and data below).
const STACK: u64 = 1 << 32;
/// Dynamic program: the PIE, its interpreter and libraries load where each emulator puts
/// them, so every address differs.
const ANY: u64 = 0x1_0000;

const STATIC_SCRIPT: &str = "\
target remote 127.0.0.1:PORT
break main
continue
next
print local
info registers pc
break square
hbreak prog.c:9
continue
bt
continue
stepi
next
next
print sq
next
continue
";

#[test]
fn gdb_debugs_a_static_program_like_qemu() {
    if !have_tools() {
        return;
    }
    let prog = build(false);
    let elfuse = PathBuf::from(ELFUSE);
    let (out, status, stdout) = session(&elfuse, &[], &prog, STATIC_SCRIPT);
    eprintln!("--- gdb against elfuse:\n{out}");
    assert_eq!(status, Some(3), "{out}");
    assert_eq!(stdout, "square 1764\nlen 1\ndone\n");
    let out = normalise(&out, STACK);
    for want in [
        "Breakpoint 1, main (argc=1, argv=ADDR) at ",
        "$1 = 42",
        "$2 = 1764",
        "pc             0x",
        "<main+",
        "Breakpoint 2, square (x=42) at ",
        "Hardware assisted breakpoint 3 at ",
        "Breakpoint 3, square (x=42) at ",
        "#1  0x0000000000",
        " in main (argc=1, argv=ADDR) at ",
        "[Inferior 1 (process 1) exited with code 03]",
    ] {
        assert!(out.contains(want), "no {want:?} in:\n{out}");
    }
    let Some(q) = qemu() else {
        eprintln!("skipped: the comparison with qemu-aarch64-static (not installed)");
        return;
    };
    let (qout, qstatus, qstdout) = session(&q, &[], &prog, STATIC_SCRIPT);
    assert_eq!((qstatus, qstdout.as_str()), (Some(3), stdout.as_str()));
    assert_eq!(out, normalise(&qout, STACK), "elfuse vs qemu");
}

const DYNAMIC_SCRIPT: &str = "\
set sysroot /usr/aarch64-linux-gnu
target remote 127.0.0.1:PORT
break main
continue
next
print local
break puts
continue
bt 1
info sharedlibrary
continue
";

#[test]
fn gdb_breaks_in_a_shared_library_under_the_sysroot() {
    if !have_tools() {
        return;
    }
    if !Path::new(SYSROOT)
        .join("lib/ld-linux-aarch64.so.1")
        .exists()
    {
        skip("no /usr/aarch64-linux-gnu (libc6-arm64-cross)");
        return;
    }
    let prog = build(true);
    let elfuse = PathBuf::from(ELFUSE);
    let (out, status, stdout) = session(&elfuse, &["--sysroot", SYSROOT], &prog, DYNAMIC_SCRIPT);
    eprintln!("--- gdb against elfuse:\n{out}");
    assert_eq!(status, Some(3), "{out}");
    assert_eq!(stdout, "square 1764\nlen 1\ndone\n");
    let out = normalise(&out, ANY);
    for want in [
        "Breakpoint 1, main (argc=1, argv=ADDR) at ",
        "$1 = 42",
        "Breakpoint 2, ADDR in puts () from /usr/aarch64-linux-gnu/lib/libc.so.6",
        "/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1",
        "[Inferior 1 (process 1) exited with code 03]",
    ] {
        assert!(out.contains(want), "no {want:?} in:\n{out}");
    }
    // Without `set sysroot`, gdb's default `target:` reads the libraries through the stub
    // (vFile), in the guest's view of the filesystem (--sysroot applied).
    let script = DYNAMIC_SCRIPT.replace("set sysroot /usr/aarch64-linux-gnu\n", "");
    let (tout, tstatus, _) = session(&elfuse, &["--sysroot", SYSROOT], &prog, &script);
    assert_eq!(tstatus, Some(3), "{tout}");
    assert!(
        tout.contains(" in puts () from target:/lib/libc.so.6"),
        "{tout}"
    );
    let Some(q) = qemu() else {
        eprintln!("skipped: the comparison with qemu-aarch64-static (not installed)");
        return;
    };
    let (qout, qstatus, _) = session(&q, &["-L", SYSROOT], &prog, DYNAMIC_SCRIPT);
    assert_eq!(qstatus, Some(3));
    // elfuse's vDSO shows up in gdb's library list (qemu 7.2 has none).
    let strip_vdso = |s: String| {
        s.lines()
            .filter(|l| !l.contains("linux-vdso.so.1"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        strip_vdso(out),
        strip_vdso(normalise(&qout, ANY)),
        "elfuse vs qemu"
    );
}

const SIGNAL_SCRIPT: &str = "\
target remote 127.0.0.1:PORT
continue
stepi
bt 1
break worker
continue
info threads
detach
";

/// A guest signal stops the program (gdb passes it on: the handler runs, and a step from
/// the stop enters it, as on Linux); a breakpoint in a second thread names that thread;
/// `detach` lets the program finish.
#[test]
fn gdb_sees_signals_and_threads_and_detaches() {
    if !have_tools() {
        return;
    }
    let prog = build_src("threads", false);
    let elfuse = PathBuf::from(ELFUSE);
    let (out, status, stdout) = session(&elfuse, &[], &prog, SIGNAL_SCRIPT);
    eprintln!("--- gdb against elfuse:\n{out}");
    assert_eq!(status, Some(0), "{out}");
    assert_eq!(stdout, "hits 8\n");
    for want in [
        "Program received signal SIGUSR1, User defined signal 1.",
        "#0  on_usr1 (s=",
        "hit Breakpoint 1, worker (a=0x0) at ",
        "* 2    Thread ",
        "[Inferior 1 (process 1) detached]",
    ] {
        assert!(out.contains(want), "no {want:?} in:\n{out}");
    }
}

const KILL_SCRIPT: &str = "\
target remote 127.0.0.1:PORT
break main
continue
kill
";

/// gdb's `kill` ends the program as SIGKILL would.
#[test]
fn gdb_kill_ends_the_program() {
    if !have_tools() {
        return;
    }
    let prog = build(false);
    let (out, status, stdout) = session(Path::new(ELFUSE), &[], &prog, KILL_SCRIPT);
    assert_eq!(status, Some(128 + 9), "{out}");
    assert_eq!(stdout, "");
    assert!(out.contains("[Inferior 1 (process 1) killed]"), "{out}");
}

const INTERRUPT_SCRIPT: &str = "\
target remote 127.0.0.1:PORT
continue
print spin > 0
kill
";

/// Ctrl-C (SIGINT to gdb while the guest runs) stops the guest with SIGINT where it was;
/// gdb then reads its memory and kills it.
#[test]
fn gdb_interrupt_stops_a_running_program() {
    if !have_tools() {
        return;
    }
    let prog = build_src("spin", false);
    let deadline = Instant::now() + DEADLINE;
    let port = free_port();
    let mut emu = Reaped(
        Command::new(ELFUSE)
            .arg("-g")
            .arg(port.to_string())
            .arg(&prog)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    while !listening(port) {
        assert!(
            Instant::now() < deadline,
            "no stub listening on port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let script_file = target_dir()
        .join("gdb-guests")
        .join(format!("session-{port}.gdb"));
    let text = format!(
        "set pagination off\nset confirm off\n{}",
        INTERRUPT_SCRIPT.replace("PORT", &port.to_string())
    );
    std::fs::write(&script_file, text).unwrap();
    let gdb = Command::new("gdb-multiarch")
        .args(["-batch", "-nx", "-x"])
        .arg(&script_file)
        .arg(&prog)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The guest runs (gdb is in `continue`) once it has said so.
    let mut line = [0u8; 9];
    emu.0
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut line)
        .unwrap();
    assert_eq!(&line, b"spinning\n");
    // Most likely in the loop by then; the stop may also come on the way out of write.
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: a plain syscall on our own child.
    unsafe { libc::kill(gdb.id() as i32, libc::SIGINT) };
    let out = wait_output(gdb, deadline);
    let (status, _) = finish(&mut emu, deadline, "the interrupted program");
    let _ = std::fs::remove_file(&script_file);
    assert!(
        out.contains("Program received signal SIGINT, Interrupt."),
        "{out}"
    );
    assert!(out.contains("$1 = "), "{out}");
    assert!(out.contains("[Inferior 1 (process 1) killed]"), "{out}");
    assert_eq!(status, Some(128 + 9), "{out}");
}

/// `-g` refuses a port it cannot listen on, with one `elfuse:` line.
#[test]
fn gdb_port_in_use_is_an_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let out = Command::new(ELFUSE)
        .args(["-g", &port, "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("elfuse: gdb stub: 127.0.0.1:"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let out = Command::new(ELFUSE)
        .env("ELFUSE_GDB", "http")
        .arg("/bin/true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ELFUSE_GDB"));
}
