//! Command-line parsing. Options come before PROGRAM; everything after it belongs to the
//! guest.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::trace::TraceSet;

pub const USAGE: &str = "\
Usage: elfuse [OPTIONS] PROGRAM [ARGS...]
       elfuse --demo
       elfuse --binfmt install|uninstall|status
       elfuse trace-to-perfetto IN OUT

Run a Linux AArch64 ELF program as an ordinary host process.

Options:
  --sysroot DIR        resolve absolute guest paths inside DIR first (an arm64
                       root: dynamic programs find their loader and libraries
                       there); overrides ELFUSE_SYSROOT and QEMU_LD_PREFIX
  --trace LIST         trace guest activity; LIST is comma-separated: syscalls
                       (strace-style lines), actors (one JSON object per actor
                       message: actor, msg, seq, tid, ts_ns, wait_ns, run_ns)
  --trace-out FILE     write traces to FILE instead of stderr
  --binfmt ACTION      install: register this elfuse with the kernel's
                       binfmt_misc for AArch64 ELF (root; flags F, P, O), so
                       arm64 programs and chroots run directly; uninstall:
                       remove it; status: show it (exit 0 when installed)
  -g, --gdb PORT       wait for gdb (gdb-multiarch: target remote :PORT) on
                       127.0.0.1:PORT before the program's first instruction
  --demo               run the embedded demo guest
  --syscall-table      print the syscall support table (Markdown) and exit
  -h, --help           print this help and exit
  -V, --version        print the version and exit

Subcommands (first argument only; run a program of that name as ./NAME):
  trace-to-perfetto IN OUT   convert an actor trace to Chrome trace-event JSON
                             (Perfetto, chrome://tracing); other lines are skipped

Environment:
  ELFUSE_SYSROOT=DIR        the sysroot when --sysroot is not given
  QEMU_LD_PREFIX=DIR        the same, read after ELFUSE_SYSROOT (as qemu-user's -L)
                            With neither, a dynamic program whose loader is missing
                            on the host uses /usr/aarch64-linux-gnu (libc6-arm64-cross)
  ELFUSE_FORK=spawn         fork by spawning `elfuse --fork-child` (the portable path
                            macOS uses) instead of the host's fork()
  ELFUSE_STARTUP_TRACE=1    per-step start-up times on stderr
  RUST_LOG=debug            elfuse's own diagnostics (tracing)
  ELFUSE_GDB=PORT           as -g PORT (the option wins)

The exit status is the guest's, or 128+N when signal N kills it.";

#[derive(Debug, PartialEq, Eq)]
pub enum Mode {
    Run,
    Demo,
    Help,
    Version,
    SyscallTable,
    /// `trace-to-perfetto IN OUT`.
    TraceToPerfetto {
        input: PathBuf,
        output: PathBuf,
    },
    /// `--binfmt install|uninstall|status`.
    Binfmt(crate::binfmt::Action),
    /// Hidden: a fork child taking over its parent's state from this fd.
    ForkChild(i32),
}

#[derive(Debug)]
pub struct Options {
    pub mode: Mode,
    pub sysroot: Option<PathBuf>,
    pub trace: TraceSet,
    pub trace_out: Option<PathBuf>,
    /// `-g PORT`: the gdb stub's port.
    pub gdb: Option<u16>,
    pub program: Option<OsString>,
    /// The guest's argv[0] when it is not PROGRAM (binfmt_misc's P flag).
    pub argv0: Option<OsString>,
    pub args: Vec<OsString>,
}

/// The arguments the kernel passes for a binfmt_misc entry with the P flag (see
/// `binfmt::preserved_argv0`): `FILENAME ARGV0 ARGS...`, no options.
pub fn parse_binfmt_invocation(
    args: impl IntoIterator<Item = OsString>,
) -> Result<Options, String> {
    let mut it = args.into_iter();
    let (Some(program), Some(argv0)) = (it.next(), it.next()) else {
        return Err("started by binfmt_misc without a program and its argv[0]".into());
    };
    // Built through `parse` so that every other option keeps its default.
    let mut o = parse([OsString::from("--"), program])?;
    o.argv0 = Some(argv0);
    o.args = it.collect();
    Ok(o)
}

/// Parses `args` (without argv[0]). Errors are one-line messages.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Options, String> {
    let mut o = Options {
        mode: Mode::Run,
        sysroot: None,
        trace: TraceSet::default(),
        trace_out: None,
        gdb: None,
        program: None,
        argv0: None,
        args: Vec::new(),
    };
    let mut it = args.into_iter().peekable();
    if it.peek().is_some_and(|a| a == "trace-to-perfetto") {
        it.next();
        let (Some(input), Some(output), None) = (it.next(), it.next(), it.next()) else {
            return Err("usage: elfuse trace-to-perfetto IN OUT".into());
        };
        o.mode = Mode::TraceToPerfetto {
            input: input.into(),
            output: output.into(),
        };
        return Ok(o);
    }
    while let Some(a) = it.next() {
        let bytes = a.as_bytes();
        if !bytes.starts_with(b"-") || bytes == b"-" {
            o.program = Some(a);
            break;
        }
        let s = a
            .to_str()
            .ok_or_else(|| "invalid option (not UTF-8)".to_string())?;
        let (name, inline) = match s.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (s, None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .and_then(|v| v.into_string().ok())
                    .ok_or_else(|| format!("option {what} needs a value")),
            }
        };
        match name {
            "--" => {
                o.program = it.next();
                break;
            }
            "-h" | "--help" => o.mode = Mode::Help,
            "-V" | "--version" => o.mode = Mode::Version,
            "--demo" => o.mode = Mode::Demo,
            "--syscall-table" => o.mode = Mode::SyscallTable,
            "--fork-child" => {
                let fd = value("--fork-child")?;
                o.mode = Mode::ForkChild(fd.parse().map_err(|_| "bad --fork-child fd")?);
            }
            "--sysroot" => {
                let dir = PathBuf::from(value("--sysroot")?);
                if !dir.is_dir() {
                    return Err(format!("--sysroot {}: not a directory", dir.display()));
                }
                o.sysroot = Some(dir);
            }
            "--trace" => {
                let v = value("--trace")?;
                o.trace = o.trace.union(TraceSet::parse(&v)?);
            }
            "--trace-out" => o.trace_out = Some(PathBuf::from(value("--trace-out")?)),
            "--binfmt" => {
                o.mode = Mode::Binfmt(crate::binfmt::Action::parse(&value("--binfmt")?)?);
            }
            "-g" | "--gdb" => o.gdb = Some(parse_port(&value(name)?)?),
            _ => return Err(format!("unknown option '{s}' (see --help)")),
        }
        if inline.is_some()
            && !matches!(
                name,
                "--sysroot" | "--trace" | "--trace-out" | "--fork-child" | "--binfmt" | "--gdb"
            )
        {
            return Err(format!("option {name} takes no value"));
        }
    }
    o.args = it.collect();
    if o.mode == Mode::Run && o.program.is_none() {
        return Err(
            "no program given (usage: elfuse [OPTIONS] PROGRAM [ARGS...]; try --help)".into(),
        );
    }
    Ok(o)
}

/// A TCP port for `-g` / `ELFUSE_GDB` (1..=65535).
pub fn parse_port(v: &str) -> Result<u16, String> {
    match v.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(format!("gdb port '{v}': not a TCP port (1-65535)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<Options, String> {
        parse(v.iter().map(OsString::from))
    }

    #[test]
    fn options_stop_at_the_program() {
        let o = p(&["--trace=syscalls", "prog", "--help", "x"]).unwrap();
        assert!(o.trace.syscalls);
        assert_eq!(o.program.unwrap(), "prog");
        assert_eq!(o.args, vec![OsString::from("--help"), OsString::from("x")]);
        assert!(p(&[]).unwrap_err().contains("no program"));
        assert!(p(&["--bogus"]).unwrap_err().contains("unknown option"));
        assert!(p(&["--trace=nope", "x"])
            .unwrap_err()
            .contains("unknown trace"));
        assert!(p(&["--sysroot"]).unwrap_err().contains("needs a value"));
        assert_eq!(p(&["--help"]).unwrap().mode, Mode::Help);
        assert_eq!(p(&["--", "-weird"]).unwrap().program.unwrap(), "-weird");
        let o = p(&["--trace=syscalls", "--trace", "actors", "x"]).unwrap();
        assert!(o.trace.syscalls && o.trace.actors);
        assert!(matches!(
            p(&["trace-to-perfetto", "a", "b"]).unwrap().mode,
            Mode::TraceToPerfetto { .. }
        ));
        assert!(p(&["trace-to-perfetto", "a"]).is_err());
        assert_eq!(
            p(&["--binfmt", "status"]).unwrap().mode,
            Mode::Binfmt(crate::binfmt::Action::Status)
        );
        assert!(p(&["--binfmt=nope"]).unwrap_err().contains("install"));
        let b =
            parse_binfmt_invocation(["/x/prog", "argv0", "--help"].map(OsString::from)).unwrap();
        assert_eq!(b.program.unwrap(), "/x/prog");
        assert_eq!(b.argv0.unwrap(), "argv0");
        assert_eq!(b.args, vec![OsString::from("--help")]);
        assert!(parse_binfmt_invocation(["/x/prog"].map(OsString::from)).is_err());
        assert_eq!(p(&["-g", "1234", "x"]).unwrap().gdb, Some(1234));
        assert_eq!(p(&["--gdb=99", "x"]).unwrap().gdb, Some(99));
        assert!(p(&["-g", "0", "x"]).unwrap_err().contains("not a TCP port"));
        assert!(p(&["-g"]).unwrap_err().contains("needs a value"));
        // Only as the first argument.
        assert_eq!(p(&["--", "trace-to-perfetto"]).unwrap().mode, Mode::Run);
    }
}
