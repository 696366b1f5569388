//! The `elfuse` command.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::process::ExitCode;

use elfuse::boot::{self, BootError, Launch};
use elfuse::cli::{self, Mode};
use elfuse::mapped::{Image, MappedFile};
use elfuse::startup::StartupTrace;
use elfuse::trace::Tracer;
use elfuse::LoadError;
use elfuse::Stop;

/// Exit statuses of elfuse itself (the guest's own status is passed through).
const EXIT_USAGE: u8 = 2;
const EXIT_NOT_EXECUTABLE: u8 = 126;
const EXIT_NOT_FOUND: u8 = 127;
const EXIT_INTERNAL: u8 = 70;

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    // One printable line, whatever a path in it holds: control characters as \xNN.
    let line: String = msg
        .to_string()
        .chars()
        .map(|c| match c {
            c if c.is_control() => format!("\\x{:02x}", c as u32),
            c => c.to_string(),
        })
        .collect();
    eprintln!("elfuse: {line}");
    ExitCode::from(code)
}

/// Host allocator tuning: the vCPU engine allocates heavily from the vCPU threads, and
/// glibc's per-thread arenas grow by many small mprotect calls; one arena grown in large
/// steps is measurably faster to start.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes glibc's allocator; called first thing in main, before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_TOP_PAD, 16 << 20);
    }
}

/// A panic on any thread is a bug in elfuse: after Rust's own message, one `elfuse:` line
/// and exit 70 at once. Otherwise a vCPU thread that died would leave the process waiting
/// for it forever.
fn exit_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        eprintln!("elfuse: internal error (a bug in elfuse): a thread panicked; exiting");
        // SAFETY: _exit ends the process at once; other threads may hold any lock, so no
        // destructor or atexit handler may run.
        unsafe { libc::_exit(70) }
    }));
}

fn main() -> ExitCode {
    // Before any thread exists, so that every thread inherits the mask.
    elfuse::block_in_this_thread();
    exit_on_panic();
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    elfuse::init_process();
    tune_malloc();
    let mut st = StartupTrace::from_env();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    // Started by binfmt_misc (P flag): FILENAME ARGV0 ARGS..., no options.
    let parsed = if elfuse::binfmt::preserved_argv0() {
        cli::parse_binfmt_invocation(std::env::args_os().skip(1))
    } else {
        cli::parse(std::env::args_os().skip(1))
    };
    let opts = match parsed {
        Ok(o) => o,
        Err(e) => return fail(EXIT_USAGE, e),
    };
    st.step("args");
    match opts.mode {
        Mode::Help => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Mode::Version => {
            println!("elfuse {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Mode::SyscallTable => {
            print!("{}", elfuse::syscall_table_markdown());
            return ExitCode::SUCCESS;
        }
        Mode::TraceToPerfetto { input, output } => {
            return match elfuse::trace::convert_file(&input, &output) {
                Ok(n) => {
                    eprintln!("elfuse: {n} actor messages → {}", output.display());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(EXIT_USAGE, e),
            };
        }
        Mode::Binfmt(action) => {
            return match elfuse::binfmt::run(action) {
                Ok(code) => ExitCode::from(code),
                Err(e) => fail(1, e),
            };
        }
        Mode::ForkChild(fd) => return elfuse::fork_child_main(fd),
        Mode::Run | Mode::Demo => {}
    }

    let tracer = match &opts.trace_out {
        Some(p) => match std::fs::File::create(p) {
            Ok(f) => Tracer::new(opts.trace, Some(f)),
            Err(e) => return fail(EXIT_USAGE, format!("--trace-out {}: {e}", p.display())),
        },
        None => Tracer::new(opts.trace, None),
    };
    let envp: Vec<Vec<u8>> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            kv
        })
        .collect();

    let gdb_port = match (opts.gdb, std::env::var("ELFUSE_GDB")) {
        (Some(p), _) => Some(p),
        (None, Ok(v)) if !v.is_empty() => match cli::parse_port(&v) {
            Ok(p) => Some(p),
            Err(e) => return fail(EXIT_USAGE, format!("ELFUSE_GDB: {e}")),
        },
        _ => None,
    };
    if let Some(port) = gdb_port {
        if let Err(e) = elfuse::gdb_listen(port) {
            return fail(
                EXIT_USAGE,
                format!("gdb stub: 127.0.0.1:{port}: {}", io_msg(&e)),
            );
        }
    }
    let demo = opts.mode == Mode::Demo;
    let mut sysroot = match elfuse::sysroot::explicit(opts.sysroot.clone(), |k| std::env::var_os(k))
    {
        Ok(s) => s,
        Err(e) => return fail(EXIT_USAGE, e),
    };
    let (program, host_path, image) = if demo {
        (
            b"elfuse-demo".to_vec(),
            PathBuf::from("elfuse-demo"),
            Image::Owned(elfuse::demo::image()),
        )
    } else {
        let prog = opts.program.clone().unwrap_or_default();
        let shown = prog.to_string_lossy().into_owned();
        let host_path = elfuse::host_path(sysroot.as_deref(), prog.as_bytes());
        // binfmt_misc's O flag: the kernel opened the program for us.
        let opened = match elfuse::binfmt::exec_fd() {
            Some(fd) => Ok(std::fs::File::from(fd)),
            None => {
                match std::fs::metadata(&host_path) {
                    Ok(m) if m.is_dir() => {
                        return fail(EXIT_NOT_EXECUTABLE, format!("{shown}: is a directory"))
                    }
                    // A FIFO, socket or device: execve refuses it (EACCES) without opening it.
                    Ok(m) if !m.is_file() => {
                        return fail(EXIT_NOT_EXECUTABLE, format!("{shown}: Permission denied"))
                    }
                    Ok(_) => {}
                    Err(e) => return fail(EXIT_NOT_FOUND, format!("{shown}: {}", io_msg(&e))),
                }
                // O_NONBLOCK: had it become a FIFO since, the open must not wait for a writer.
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&host_path)
            }
        };
        let opened = opened.and_then(|f| {
            if !f.metadata()?.is_file() {
                return Err(std::io::Error::from_raw_os_error(libc::EACCES));
            }
            Ok((MappedFile::open(&f)?, f))
        });
        let image = match opened {
            Ok((m, f)) => Image::Mapped(m, f),
            Err(e) => return fail(EXIT_NOT_EXECUTABLE, format!("{shown}: {}", io_msg(&e))),
        };
        // A dynamic program: find its loader (the sysroot, the host, the cross location).
        // A file that does not parse is reported by the loader below.
        if let Some(interp) = elfuse::sysroot::interpreter_of(&image) {
            let cross = std::path::Path::new(elfuse::sysroot::CROSS_ROOT);
            match elfuse::sysroot::for_interpreter(sysroot.as_deref(), interp, cross) {
                Ok(s) => sysroot = s,
                Err(e) => return fail(EXIT_NOT_FOUND, format!("{shown}: {e}")),
            }
        }
        (prog.into_vec(), host_path, image)
    };
    st.step("read-program");
    let mut argv = vec![opts
        .argv0
        .as_ref()
        .map_or_else(|| program.clone(), |a| a.as_bytes().to_vec())];
    argv.extend(opts.args.iter().map(|a: &OsString| a.as_bytes().to_vec()));
    let shown = String::from_utf8_lossy(&program).into_owned();

    let launch = Launch {
        program,
        host_path,
        image,
        argv,
        envp,
        sysroot,
        tracer,
    };
    let (proc, stop) = match boot::run(launch, &mut st) {
        Ok(r) => r,
        // Linux's execve fails with ENOMEM (a shell then exits 126): segments larger
        // than guest memory (a bss of gigabytes) make the program unrunnable here.
        Err(BootError::Image(LoadError::OutOfMemory)) => {
            return fail(
                EXIT_NOT_EXECUTABLE,
                format!(
                    "{shown}: Cannot allocate memory (its segments do not fit in guest memory)"
                ),
            )
        }
        Err(BootError::Host(e)) => return fail(EXIT_INTERNAL, format!("{shown}: {e}")),
        Err(e) => return fail(EXIT_NOT_EXECUTABLE, format!("{shown}: {e}")),
    };
    elfuse::gdb_process_ended(stop);
    let status = match stop {
        Stop::Exit(code) | Stop::ThreadExit(code) => code as u8,
        Stop::Signal(sig) => 128 + sig as u8,
    };
    if demo {
        eprintln!("elfuse: the demo guest exited with status {status}");
    }
    // Dropping the process closes the guest's descriptors, stdio included.
    drop(proc);
    ExitCode::from(status)
}

fn io_msg(e: &std::io::Error) -> String {
    let s = e.to_string();
    s.split(" (os error").next().unwrap_or(&s).to_string()
}
