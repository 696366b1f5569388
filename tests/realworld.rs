//! Real programs from the Debian 12 arm64 root (see tests/realprogs.rs) that need the
//! guest's own world: processes (python multiprocessing), /dev/fd and pipes (bash process
//! substitution) and a terminal (a pty session driven by python's `pty` module). Scripts
//! that start other programs have no qemu reference (qemu-user runs a guest's children
//! on the host), so the expected output is literal, what Linux prints.

mod common;

use common::rootfs::{rootfs, run_real, strings, text};

const POOL: &str = "\
import multiprocessing as mp, os
def pid_of(_):
    return os.getpid()
def sq(x):
    return x * x
if __name__ == '__main__':
    with mp.Pool(4) as p:
        r = p.map(sq, range(100))
    print(len(r), sum(r))
    with mp.Pool(4) as p:
        pids = p.map(pid_of, range(40), chunksize=1)
    print(len(pids), all(q != os.getpid() for q in pids))
";

/// multiprocessing.Pool: four forked workers, a map over them (semaphores in /dev/shm,
/// pipes, fork).
#[test]
fn python3_multiprocessing_pool_map() {
    let Some(root) = rootfs() else { return };
    let out = text(run_real(
        &root,
        "/usr/bin/python3",
        &strings(&["-c", POOL]),
        b"",
        false,
    ));
    assert_eq!(out, "100 328350\n40 True\n");
}

/// bash process substitution: `<(…)` is /dev/fd/N of a pipe, which must be the guest's fd.
#[test]
fn bash_process_substitution() {
    let Some(root) = rootfs() else { return };
    let script = "diff <(printf 'a\\nb\\n') <(printf 'a\\nc\\n'); echo diff=$?; \
                  cat <(echo x); exec 5<<<hello; cat /dev/fd/5; \
                  while read l; do echo \"got $l\"; done < <(seq 2)";
    let out = text(run_real(
        &root,
        "/bin/bash",
        &strings(&["-c", script]),
        b"",
        false,
    ));
    assert_eq!(out, "2c2\n< b\n---\n> c\ndiff=1\nx\nhello\ngot 1\ngot 2\n");
}

const PTY_SESSION: &str = r#"
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv("/bin/bash", ["bash", "--norc", "--noprofile", "-i"])
out = b""
def expect(s, t=20):
    global out
    end = time.time() + t
    while s.encode() not in out and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                d = os.read(fd, 4096)
            except OSError:
                return False
            if not d:
                return False
            out += d
    return s.encode() in out
# Type only at a prompt: an interactive bash may flush input typed before it set up
# the terminal.
expect("bash-5.2")
os.write(fd, b"PS1='$ '; tty; echo A$((40+2))\n")
print("bash answers:", expect("A42") and expect("\n$ "), b"/dev/pts/" in out)
os.write(fd, b"stty rows 33 cols 77; stty size\n")
print("stty size:", expect("33 77"))
expect("33 77\r\n$ ")
os.write(fd, b"sleep 30\n")
time.sleep(1)
os.write(fd, b"\x03")
os.write(fd, b"echo after-$((1+1))\n")
print("^C interrupts the foreground job:", expect("after-2"))
os.write(fd, b"sleep 30\n")
time.sleep(1)
os.write(fd, b"\x1a")
print("^Z stops the foreground job:", expect("Stopped"))
os.write(fd, b"fg\n")
time.sleep(1)
os.write(fd, b"\x03")
os.write(fd, b"echo jobs-$((2+1))\n")
print("fg continues it, ^C ends it:", expect("jobs-3"))
os.write(fd, b"exit 3\n")
_, st = os.waitpid(pid, 0)
print("exit status:", os.waitstatus_to_exitcode(st))
sys.stderr.write(repr(out[-3000:]))
"#;

/// An interactive bash on a pty from python's `pty.fork()` (posix_openpt, grantpt,
/// unlockpt, ptsname, setsid, TIOCSCTTY): it reads commands, `stty` sets and reads the
/// size, ^C interrupts and ^Z stops its foreground job (the line discipline's signals to
/// the foreground group), `fg` continues it.
#[test]
fn python3_pty_drives_interactive_bash() {
    let Some(root) = rootfs() else { return };
    let out = text(run_real(
        &root,
        "/usr/bin/python3",
        &strings(&["-c", PTY_SESSION]),
        b"",
        false,
    ));
    assert_eq!(
        out,
        "bash answers: True True\n\
         stty size: True\n\
         ^C interrupts the foreground job: True\n\
         ^Z stops the foreground job: True\n\
         fg continues it, ^C ends it: True\n\
         exit status: 3\n"
    );
}
