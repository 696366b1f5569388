//! strace-style formatting for `--trace=syscalls`.

use std::fmt::Write;

use super::table::{Arg, SyscallDef};
use super::{Ctx, Stop, SysResult};
use crate::errno::{errno_name, Errno};

fn quoted(bytes: &[u8], limit: usize) -> String {
    let mut s = String::from("\"");
    for &b in bytes.iter().take(limit) {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\{b:o}");
            }
        }
    }
    s.push('"');
    if bytes.len() > limit {
        s.push_str("...");
    }
    s
}

fn arg(ctx: &Ctx, kind: Arg, v: u64, next: u64) -> String {
    match kind {
        Arg::Int => format!("{}", v as i64),
        Arg::Hex => format!("{v:#x}"),
        Arg::Oct => format!("{v:#o}"),
        Arg::Fd => format!("{}", v as i32),
        Arg::Dirfd if v as i32 == -100 => "AT_FDCWD".into(),
        Arg::Dirfd => format!("{}", v as i32),
        Arg::Str if v == 0 => "NULL".into(),
        Arg::Str => match ctx.read_cstr(v, 4096) {
            Ok(s) => quoted(&s, 256),
            Err(_) => format!("{v:#x}"),
        },
        Arg::Buf => match ctx.read_bytes(v, next.min(32) as usize) {
            Ok(b) => quoted(&b, 32) + if next > 32 { "..." } else { "" },
            Err(_) => format!("{v:#x}"),
        },
        Arg::Ptr if v == 0 => "NULL".into(),
        Arg::Ptr => format!("{v:#x}"),
        Arg::Sig => signal_name(v).map_or_else(|| v.to_string(), str::to_owned),
    }
}

fn signal_name(v: u64) -> Option<&'static str> {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    NAMES.get((v as usize).wrapping_sub(1)).copied()
}

/// The part printed before the call runs: `[tid] name(arg, arg`.
pub fn entry(ctx: &Ctx, nr: u64, def: Option<&SyscallDef>, a: &[u64; 6]) -> String {
    let mut s = format!("[{}] ", ctx.thread.tid);
    match def {
        Some(d) => {
            s += d.name;
            s.push('(');
            let parts: Vec<String> = d
                .args
                .iter()
                .enumerate()
                .map(|(i, &k)| arg(ctx, k, a[i], a.get(i + 1).copied().unwrap_or(0)))
                .collect();
            s += &parts.join(", ");
        }
        None => {
            let _ = write!(s, "syscall_{nr}({:#x}, {:#x}, {:#x}", a[0], a[1], a[2]);
        }
    }
    s
}

pub fn exit(pre: String, res: &SysResult, stop: Option<Stop>) -> String {
    match (stop, res) {
        (Some(_), Ok(_)) => pre + ") = ?",
        (_, Ok(v)) if *v > 0xffff => format!("{pre}) = {v:#x}"),
        (_, Ok(v)) => format!("{pre}) = {}", *v as i64),
        (_, Err(Errno(e))) => {
            let name = errno_name(*e).unwrap_or("E?");
            let desc = std::io::Error::from_raw_os_error(*e).to_string();
            let desc = desc.split(" (os error").next().unwrap_or("").to_owned();
            format!("{pre}) = -1 {name} ({desc})")
        }
    }
}
