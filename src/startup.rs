//! `ELFUSE_STARTUP_TRACE=1`: per-step wall time of start-up, printed as each step ends.

use std::io::Write;
use std::time::Instant;

pub struct StartupTrace {
    on: bool,
    t0: Instant,
    last: Instant,
}

impl StartupTrace {
    pub fn from_env() -> Self {
        let now = Instant::now();
        StartupTrace {
            on: std::env::var_os("ELFUSE_STARTUP_TRACE").is_some_and(|v| v != "0" && !v.is_empty()),
            t0: now,
            last: now,
        }
    }

    /// Marks the end of step `name`.
    pub fn step(&mut self, name: &str) {
        if !self.on {
            return;
        }
        let now = Instant::now();
        let step = now - self.last;
        let total = now - self.t0;
        self.last = now;
        let _ = writeln!(
            std::io::stderr(),
            "elfuse: startup {name:<18} {:>9.3} ms  (total {:.3} ms)",
            step.as_secs_f64() * 1e3,
            total.as_secs_f64() * 1e3
        );
    }
}
