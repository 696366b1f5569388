//! Guest-visible tracing (`--trace=syscalls`): strace-style lines on elfuse's own stderr
//! (a private duplicate, so a guest that closes or reuses fd 2 never receives them) or in
//! `--trace-out FILE`.

use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceSet {
    pub syscalls: bool,
}

impl TraceSet {
    /// Parses `--trace=` values: a comma-separated list of `syscalls`.
    pub fn parse(spec: &str) -> Result<TraceSet, String> {
        let mut t = TraceSet::default();
        for part in spec.split(',').filter(|p| !p.is_empty()) {
            match part {
                "syscalls" => t.syscalls = true,
                other => return Err(format!("unknown trace kind '{other}' (known: syscalls)")),
            }
        }
        Ok(t)
    }
}

pub struct Tracer {
    pub set: TraceSet,
    sink: Mutex<Option<File>>,
}

/// A private duplicate of the host's stderr for elfuse's own messages.
pub fn private_stderr() -> Option<File> {
    let fd = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3) };
    (fd >= 0).then(|| unsafe { File::from_raw_fd(fd) })
}

impl Tracer {
    pub fn new(set: TraceSet, out: Option<File>) -> Tracer {
        let sink = if set == TraceSet::default() {
            None
        } else {
            out.or_else(private_stderr)
        };
        Tracer {
            set,
            sink: Mutex::new(sink),
        }
    }

    pub fn off() -> Tracer {
        Tracer::new(TraceSet::default(), None)
    }

    /// A duplicate of the trace sink's fd (a fork child writes to the same file).
    pub fn sink_dup(&self) -> Option<std::os::fd::OwnedFd> {
        let g = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        g.as_ref()
            .and_then(|f| f.try_clone().ok())
            .map(std::os::fd::OwnedFd::from)
    }

    pub fn line(&self, s: &str) {
        let mut g = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = g.as_mut() {
            let _ = writeln!(f, "{s}");
        }
    }
}
