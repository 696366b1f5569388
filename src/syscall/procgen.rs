//! Generated files of the guest's own /proc/<pid> and /proc/<pid>/task/<tid>: status,
//! stat, statm, cmdline, environ, auxv, comm, maps and fdinfo/N (smaps: `procsmaps`).

use std::fmt::Write as _;

use super::Ctx;
use crate::errno::Errno;
use crate::guest::mm::{Backing, PROT_EXEC, PROT_WRITE};
use crate::signal::{SIG_DFL, SIG_IGN};

/// The text of generated file `name` (of thread `tid`, or of the process).
pub fn generate(ctx: &Ctx, tid: Option<i32>, name: &str) -> Result<Vec<u8>, Errno> {
    Ok(match name {
        "maps" => {
            let sysroot = ctx.fs().sysroot.clone();
            super::procfs::maps(&ctx.proc.mm(), sysroot.as_deref())
        }
        "status" => status(ctx, tid),
        "stat" => stat(ctx, tid),
        "statm" => {
            let m = mem(ctx);
            format!(
                "{} {} {} {} 0 {} 0\n",
                m.size / 4096,
                m.rss / 4096,
                m.rss_file / 4096,
                m.text / 4096,
                m.data / 4096
            )
            .into_bytes()
        }
        "cmdline" => span(ctx, 0),
        "environ" => span(ctx, 2),
        "auxv" => span(ctx, 4),
        "smaps" => super::procsmaps::generate(ctx, false),
        "smaps_rollup" => super::procsmaps::generate(ctx, true),
        "comm" => {
            let mut c = comm_of(ctx, tid);
            c.push(b'\n');
            c
        }
        _ => return Err(Errno::ENOENT),
    })
}

/// Guest memory between recorded stack spans `i` and `i + 1` (see `stack::spans`).
fn span(ctx: &Ctx, i: usize) -> Vec<u8> {
    let s = crate::guest::stack::spans();
    let (lo, hi) = (s[i], s[i + 1]);
    if hi <= lo {
        return Vec::new();
    }
    ctx.read_bytes(lo, (hi - lo) as usize).unwrap_or_default()
}

/// Thread names set since the last execve (prctl PR_SET_NAME; a fork child's leader
/// inherits its parent thread's), by guest tid: what another thread or process reads in
/// /proc (each thread keeps its own in `ThreadState::comm`).
static COMMS: std::sync::Mutex<Vec<(i32, [u8; 16])>> = std::sync::Mutex::new(Vec::new());

fn comms() -> std::sync::MutexGuard<'static, Vec<(i32, [u8; 16])>> {
    COMMS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Thread `tid` renamed itself (prctl PR_SET_NAME).
pub fn set_comm(tid: i32, comm: [u8; 16]) {
    let mut c = comms();
    c.retain(|(t, _)| *t != tid);
    c.push((tid, comm));
}

/// A new program (execve: every name is its basename again) or a new process (a fork
/// child: `leader`, its thread inheriting the forking thread's name).
pub fn reset_comms(leader: Option<(i32, [u8; 16])>) {
    let mut c = comms();
    c.clear();
    c.extend(leader);
}

/// The name of thread `tid` (or of the process: its leader's) as the kernel keeps it: as
/// set by the thread (or inherited), else the program's basename, at most 15 bytes.
fn comm_of(ctx: &Ctx, tid: Option<i32>) -> Vec<u8> {
    let id = tid.unwrap_or(ctx.proc.pid);
    // (All zero: never named, the program's basename.)
    let trim = |c: &[u8; 16]| {
        let n = c[..c.iter().position(|&b| b == 0).unwrap_or(15)].to_vec();
        (!n.is_empty()).then_some(n)
    };
    if id == ctx.thread.tid {
        if let Some(n) = trim(&ctx.thread.comm) {
            return n;
        }
    }
    {
        let c = comms();
        let named = |t: i32| c.iter().find(|(x, _)| *x == t).and_then(|(_, n)| trim(n));
        if let Some(n) = named(id).or_else(|| named(ctx.proc.pid)) {
            return n;
        }
    }
    comm(ctx)
}

/// The program's name as the kernel keeps it (the basename, at most 15 bytes).
fn comm(ctx: &Ctx) -> Vec<u8> {
    let (exe, _) = ctx.proc.exe();
    let base = exe.rsplit(|&b| b == b'/').next().unwrap_or(&exe);
    base[..base.len().min(15)].to_vec()
}

#[derive(Default)]
struct MemFigures {
    size: u64,
    rss: u64,
    rss_file: u64,
    text: u64,
    data: u64,
    stack: u64,
}

/// Memory figures of the guest's mappings; resident bytes from the host's residency of
/// the guest RAM behind them.
fn mem(ctx: &Ctx) -> MemFigures {
    let mm = ctx.proc.mm();
    let mut f = MemFigures::default();
    for (start, v) in mm.vmas() {
        let len = v.end - start;
        f.size += len;
        let file = matches!(v.backing, Backing::File { .. });
        if v.prot & PROT_EXEC != 0 && file {
            f.text += len;
        } else if v.prot & PROT_WRITE != 0 && !v.shared {
            f.data += len;
        }
        if matches!(v.name, crate::guest::mm::VmaName::Stack) {
            f.stack += len;
        }
        let r = resident(ctx, start, len);
        f.rss += r;
        if file {
            f.rss_file += r;
        }
    }
    f
}

pub(super) fn resident(ctx: &Ctx, start: u64, len: u64) -> u64 {
    let pages = len.div_ceil(4096) as usize;
    let mut vec = vec![0u8; pages];
    let p = ctx.proc.ram.ptr(start, len as usize);
    // SAFETY: mincore only reads the residency of the guest RAM mapping's pages.
    let r = unsafe { libc::mincore(p.cast(), len as usize, vec.as_mut_ptr()) };
    if r != 0 {
        return 0;
    }
    vec.iter().filter(|b| *b & 1 != 0).count() as u64 * 4096
}

/// The guest's (pending, blocked, ignored, caught) masks for `tid`.
fn sigmasks(ctx: &Ctx, tid: i32) -> [u64; 4] {
    let blocked = if tid == ctx.thread.tid {
        ctx.thread.sigmask
    } else {
        ctx.proc
            .signals
            .set_mask(tid, crate::signal::state::MaskOp::Block(0))
    };
    let pending = ctx.proc.signals.pending(tid);
    let (mut ign, mut cgt) = (0u64, 0u64);
    for (i, a) in ctx.proc.signals.actions().iter().enumerate().skip(1) {
        let bit = crate::signal::sig_bit(i as u32);
        match a.handler {
            SIG_IGN => ign |= bit,
            SIG_DFL => {}
            _ => cgt |= bit,
        }
    }
    [pending, blocked, ign, cgt]
}

fn host_text(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn status(ctx: &Ctx, tid: Option<i32>) -> Vec<u8> {
    let pid = ctx.proc.pid;
    let id = tid.unwrap_or(pid);
    let m = mem(ctx);
    let [pnd, blk, ign, cgt] = sigmasks(ctx, id);
    let umask = ctx.fs().umask;
    let kb = |b: u64| format!("{:>8} kB", b / 1024);
    let mut out = String::new();
    for line in host_text("/proc/self/status").lines() {
        let key = line.split(':').next().unwrap_or("");
        let v = match key {
            "Name" => String::from_utf8_lossy(&comm_of(ctx, tid)).into_owned(),
            "Umask" => format!("{umask:04o}"),
            "Tgid" | "NStgid" => pid.to_string(),
            "Pid" | "NSpid" => id.to_string(),
            "PPid" => super::proc::current_ppid().to_string(),
            "FDSize" => ctx
                .fds()
                .limit()
                .min(1 << 20)
                .next_power_of_two()
                .max(64)
                .to_string(),
            "VmPeak" | "VmSize" => kb(m.size),
            "VmHWM" | "VmRSS" => kb(m.rss),
            "RssAnon" => kb(m.rss - m.rss_file),
            "RssFile" => kb(m.rss_file),
            "VmData" => kb(m.data),
            "VmStk" => kb(m.stack),
            "VmExe" => kb(m.text),
            "VmLck" | "VmPin" | "RssShmem" | "VmLib" | "VmPTE" | "VmSwap" | "HugetlbPages" => kb(0),
            "Threads" => ctx.proc.threads.count().to_string(),
            "SigPnd" => format!("{pnd:016x}"),
            "ShdPnd" => format!("{:016x}", 0),
            "SigBlk" => format!("{blk:016x}"),
            "SigIgn" => format!("{ign:016x}"),
            "SigCgt" => format!("{cgt:016x}"),
            _ => {
                out.push_str(line);
                out.push('\n');
                continue;
            }
        };
        let _ = writeln!(out, "{key}:\t{v}");
    }
    out.into_bytes()
}

fn stat(ctx: &Ctx, tid: Option<i32>) -> Vec<u8> {
    let pid = ctx.proc.pid;
    let id = tid.unwrap_or(pid);
    let host = host_text("/proc/self/stat");
    let rest = host.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    // Fields from the 3rd (state) on; index i here is field i + 3.
    let mut f: Vec<String> = rest.split_whitespace().map(String::from).collect();
    f.resize(50, "0".into());
    let m = mem(ctx);
    let [pnd, blk, ign, cgt] = sigmasks(ctx, id);
    let spans = crate::guest::stack::spans();
    let (code_lo, code_hi) = {
        let mm = ctx.proc.mm();
        let r = mm
            .vmas()
            .find(|(_, v)| v.prot & PROT_EXEC != 0 && matches!(v.backing, Backing::File { .. }))
            .map_or((0, 0), |(s, v)| (s, v.end));
        r
    };
    let brk_start = ctx.proc.mm().brk_start;
    let mut set = |field: usize, v: u64| f[field - 3] = v.to_string();
    set(4, super::proc::current_ppid() as u64);
    set(20, ctx.proc.threads.count() as u64);
    set(23, m.size);
    set(24, m.rss / 4096);
    set(26, code_lo);
    set(27, code_hi);
    set(28, spans[6]);
    set(29, 0);
    set(30, 0);
    set(31, pnd);
    set(32, blk);
    set(33, ign);
    set(34, cgt);
    set(45, 0);
    set(46, 0);
    set(47, brk_start);
    set(48, spans[0]);
    set(49, spans[1]);
    set(50, spans[2]);
    set(51, spans[3]);
    let comm = String::from_utf8_lossy(&comm_of(ctx, tid)).into_owned();
    format!("{id} ({comm}) {}\n", f.join(" ")).into_bytes()
}

/// fdinfo/N: the host's text for the guest's description, with the guest's close-on-exec
/// flag.
pub fn fdinfo(ctx: &Ctx, n: i32) -> Result<Vec<u8>, Errno> {
    let f = ctx.file(n as u64).map_err(|_| Errno::ENOENT)?;
    let cloexec = ctx.fds().cloexec(n).unwrap_or(false);
    let text = host_text(&format!("/proc/self/fdinfo/{}", f.raw()));
    let mut out = String::new();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("flags:\t") {
            let host = i32::from_str_radix(v.trim(), 8).unwrap_or(0);
            let fl = super::abi::open_flags_from_host(host);
            let fl = if cloexec {
                fl | 0o2000000
            } else {
                fl & !0o2000000
            };
            let _ = writeln!(out, "flags:\t0{fl:o}");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out.into_bytes())
}
