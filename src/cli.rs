//! Command-line parsing. Options come before PROGRAM; everything after it belongs to the
//! guest.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::trace::TraceSet;

pub const USAGE: &str = "\
Usage: elfuse [OPTIONS] PROGRAM [ARGS...]
       elfuse --demo

Run a Linux AArch64 ELF program as an ordinary host process.

Options:
  --sysroot DIR        resolve absolute guest paths inside DIR first
  --trace LIST         trace guest activity; LIST is comma-separated: syscalls
  --trace-out FILE     write traces to FILE instead of stderr
  --demo               run the embedded demo guest
  --syscall-table      print the syscall support table (Markdown) and exit
  -h, --help           print this help and exit
  -V, --version        print the version and exit

Environment:
  RUST_LOG=debug            elfuse's own diagnostics (tracing)
  ELFUSE_STARTUP_TRACE=1    per-step start-up times on stderr

The exit status is the guest's, or 128+N when signal N kills it.";

#[derive(Debug, PartialEq, Eq)]
pub enum Mode {
    Run,
    Demo,
    Help,
    Version,
    SyscallTable,
    /// Hidden: a fork child taking over its parent's state from this fd.
    ForkChild(i32),
}

#[derive(Debug)]
pub struct Options {
    pub mode: Mode,
    pub sysroot: Option<PathBuf>,
    pub trace: TraceSet,
    pub trace_out: Option<PathBuf>,
    pub program: Option<OsString>,
    pub args: Vec<OsString>,
}

/// Parses `args` (without argv[0]). Errors are one-line messages.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Options, String> {
    let mut o = Options {
        mode: Mode::Run,
        sysroot: None,
        trace: TraceSet::default(),
        trace_out: None,
        program: None,
        args: Vec::new(),
    };
    let mut it = args.into_iter();
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
                let t = TraceSet::parse(&v)?;
                o.trace.syscalls |= t.syscalls;
            }
            "--trace-out" => o.trace_out = Some(PathBuf::from(value("--trace-out")?)),
            _ => return Err(format!("unknown option '{s}' (see --help)")),
        }
        if inline.is_some()
            && !matches!(
                name,
                "--sysroot" | "--trace" | "--trace-out" | "--fork-child"
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
    }
}
