//! Signal frames, alternate stacks, fault signals, job control, SIGCHLD and wait
//! (tests/guest/{altstack,faults,jobctl,sigchld}.c), for each libc. Compared with
//! qemu-aarch64 where qemu is right; where it is not (noted per test), the guest program
//! asserts Linux's behaviour itself and runs under elfuse only.

#[macro_use]
mod common;

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Runs `name args` under elfuse only; asserts `status` and no panic.
fn elfuse_only(libc: Libc, name: &str, args: &[&str], status: i32) -> Option<Output> {
    run_elfuse_only(libc, name, &[], args, status)
}

/// qemu-aarch64 7.2 lacks the MINSIGSTKSZ check and SS_AUTODISARM: elfuse only.
fn altstack_basic(libc: Libc) {
    if let Some(out) = elfuse_only(libc, "altstack", &["basic"], 0) {
        assert_checks_passed(&out);
    }
}

fn altstack_overflow(libc: Libc) {
    if let Some(out) = run_guest(libc, "altstack", &["overflow"], 0) {
        assert_checks_passed(&out);
    }
}

/// execve clears the alternate stack (qemu-user cannot exec an AArch64 program).
fn altstack_cleared_by_exec(libc: Libc) {
    if let Some(out) = elfuse_only(libc, "altstack", &["exec"], 0) {
        assert_checks_passed(&out);
    }
}

fn fault_signals(libc: Libc) {
    if let Some(out) = run_guest(libc, "faults", &["basic"], 0) {
        assert_checks_passed(&out);
    }
}

/// fpsimd_context always, esr_context for faults (qemu-user writes no esr_context).
fn frame_records(libc: Libc) {
    if let Some(out) = elfuse_only(libc, "faults", &["records"], 0) {
        assert_checks_passed(&out);
    }
}

/// An unhandled SIGILL kills with 128+4, as a shell shows it.
fn unhandled_sigill(libc: Libc) {
    if let Some(out) = run_guest(libc, "faults", &["udf"], 132) {
        assert_eq!(out.stdout_str(), "udf\n");
    }
}

fn sigchld_and_wait(libc: Libc) {
    if let Some(out) = run_guest(libc, "sigchld", &["basic"], 0) {
        assert_checks_passed(&out);
    }
}

/// SA_NOCLDSTOP and SA_NOCLDWAIT (qemu-aarch64 7.2 honours neither).
fn sigchld_flags(libc: Libc) {
    if let Some(out) = elfuse_only(libc, "sigchld", &["flags"], 0) {
        assert_checks_passed(&out);
    }
}

/// Both fork paths (native fork and the spawned `--fork-child`) start a watcher.
fn sigchld_spawn_path(libc: Libc) {
    let Some(prog) = guest(libc, "sigchld") else {
        return;
    };
    let out = run_spawn_fork(&prog, ["basic"]);
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_checks_passed(&out);
}

/// Stop signals and SIGCONT, with WSTOPSIG the stop signal; also with spawned children.
fn job_control(libc: Libc) {
    if let Some(out) = run_guest(libc, "jobctl", &[], 0) {
        assert_checks_passed(&out);
    }
    let prog = guest(libc, "jobctl").unwrap();
    let out = run_spawn_fork(&prog, [""; 0]);
    assert_eq!(out.status, 0, "{}", out.describe());
    assert_checks_passed(&out);
}

/// ^Z at a shell: a host SIGTSTP stops the whole elfuse process even while its vCPU is
/// blocked in a host read (the guest has the default action), SIGCONT resumes it, and the
/// guest then finishes normally.
#[allow(clippy::zombie_processes)] // reaped by libc::waitpid, which also sees the stop
fn host_sigtstp_stops_and_continues(libc: Libc) {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let Some(prog) = guest(libc, "cat") else {
        return;
    };
    let mut child = elfuse_command::<[&str; 0], _>([], &prog, ["/dev/stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // Its own process group: a stop by SIGTSTP is discarded in an orphaned one.
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    // A watchdog instead of a hang if the stop or the continue is lost.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = done.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(60));
        if !d.load(std::sync::atomic::Ordering::SeqCst) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "--- /dev/stdin");
    let wait = |flags| {
        let mut st = 0;
        // SAFETY: waitpid writes the status into the local `st`.
        let r = unsafe { libc::waitpid(pid, &mut st, flags) };
        assert_eq!(r, pid);
        st
    };
    kill(Pid::from_raw(pid), Signal::SIGTSTP).unwrap();
    let st = wait(libc::WUNTRACED);
    assert!(
        libc::WIFSTOPPED(st) && libc::WSTOPSIG(st) == libc::SIGTSTP,
        "{st:#x}"
    );
    kill(Pid::from_raw(pid), Signal::SIGCONT).unwrap();
    assert!(libc::WIFCONTINUED(wait(libc::WCONTINUED)));
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "after the stop").unwrap();
    drop(stdin);
    assert_eq!(lines.next().unwrap().unwrap(), "after the stop");
    assert_eq!(lines.next().unwrap().unwrap(), "--- end");
    let st = wait(0);
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0, "{st:#x}");
}

/// EPIPE from a write raises SIGPIPE in the writer: killed (141) by default.
fn sigpipe(libc: Libc) {
    if let Some(out) = run_guest(libc, "faults", &["pipe"], 0) {
        assert_checks_passed(&out);
    }
    if let Some(out) = run_guest(libc, "faults", &["pipe-default"], 141) {
        assert_eq!(out.stdout_str(), "ok   pipe(p) == 0\nwriting\n");
    }
}

/// ^C: a host SIGINT the guest does not handle ends elfuse by SIGINT, even while its vCPU
/// is blocked in a host read.
#[allow(clippy::zombie_processes)] // reaped by libc::waitpid
fn host_sigint_kills(libc: Libc) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let Some(prog) = guest(libc, "cat") else {
        return;
    };
    let mut child = elfuse_command::<[&str; 0], _>([], &prog, ["/dev/stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "--- /dev/stdin");
    kill(Pid::from_raw(pid), Signal::SIGINT).unwrap();
    let mut st = 0;
    // SAFETY: waitpid writes the status into the local `st`.
    assert_eq!(unsafe { libc::waitpid(pid, &mut st, 0) }, pid);
    assert!(
        libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGINT,
        "{st:#x}"
    );
}

for_each_libc!(
    altstack_basic,
    altstack_overflow,
    altstack_cleared_by_exec,
    fault_signals,
    frame_records,
    unhandled_sigill,
    sigpipe,
    sigchld_and_wait,
    sigchld_flags,
    sigchld_spawn_path,
    job_control,
    host_sigtstp_stops_and_continues,
    host_sigint_kills,
);
