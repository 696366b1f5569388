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
        Arg::Sockaddr if v == 0 => "NULL".into(),
        Arg::Sockaddr => match ctx.read_bytes(v, (next as usize).min(128)) {
            Ok(b) => sockaddr(&b),
            Err(_) => format!("{v:#x}"),
        },
        Arg::Family => family_name(v as u16).map_or_else(|| v.to_string(), str::to_owned),
        Arg::SockType => sock_type(v),
    }
}

fn family_name(f: u16) -> Option<&'static str> {
    Some(match f {
        0 => "AF_UNSPEC",
        1 => "AF_UNIX",
        2 => "AF_INET",
        10 => "AF_INET6",
        16 => "AF_NETLINK",
        17 => "AF_PACKET",
        38 => "AF_ALG",
        40 => "AF_VSOCK",
        _ => return None,
    })
}

fn sock_type(v: u64) -> String {
    const TYPES: [&str; 6] = [
        "0",
        "SOCK_STREAM",
        "SOCK_DGRAM",
        "SOCK_RAW",
        "SOCK_RDM",
        "SOCK_SEQPACKET",
    ];
    let t = (v & 0xf) as usize;
    let mut s = TYPES
        .get(t)
        .map_or_else(|| t.to_string(), |n| (*n).to_owned());
    if t == 10 {
        s = "SOCK_PACKET".into();
    }
    if v & 0o2000000 != 0 {
        s += "|SOCK_CLOEXEC";
    }
    if v & 0o4000 != 0 {
        s += "|SOCK_NONBLOCK";
    }
    let rest = v & !0xf & !0o2000000 & !0o4000;
    if rest != 0 {
        let _ = write!(s, "|{rest:#x}");
    }
    s
}

/// A socket address as strace prints it.
fn sockaddr(b: &[u8]) -> String {
    if b.len() < 2 {
        return "{sa_family=???}".into();
    }
    let fam = u16::from_le_bytes([b[0], b[1]]);
    let name = family_name(fam).map_or_else(|| fam.to_string(), str::to_owned);
    let be16 = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    match fam {
        2 if b.len() >= 8 => format!(
            "{{sa_family={name}, sin_port=htons({}), sin_addr=inet_addr(\"{}\")}}",
            be16(2),
            std::net::Ipv4Addr::new(b[4], b[5], b[6], b[7])
        ),
        10 if b.len() >= 24 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[8..24]);
            let scope = b
                .get(24..28)
                .map_or(0, |s| u32::from_le_bytes(s.try_into().unwrap()));
            format!(
                "{{sa_family={name}, sin6_port=htons({}), sin6_flowinfo=htonl({}), \
                 inet_pton({name}, \"{}\", &sin6_addr), sin6_scope_id={scope}}}",
                be16(2),
                u32::from_be_bytes(b[4..8].try_into().unwrap()),
                std::net::Ipv6Addr::from(a)
            )
        }
        1 if b.len() == 2 => format!("{{sa_family={name}}}"),
        1 if b[2] == 0 => format!("{{sa_family={name}, sun_path=@{}}}", quoted(&b[3..], 108)),
        1 => {
            let p = &b[2..];
            let end = p.iter().position(|&c| c == 0).unwrap_or(p.len());
            format!("{{sa_family={name}, sun_path={}}}", quoted(&p[..end], 108))
        }
        16 if b.len() >= 12 => format!(
            "{{sa_family={name}, nl_pid={}, nl_groups={:08x}}}",
            u32::from_le_bytes(b[4..8].try_into().unwrap()),
            u32::from_le_bytes(b[8..12].try_into().unwrap())
        ),
        _ => format!("{{sa_family={name}, sa_data={}}}", quoted(&b[2..], 32)),
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
