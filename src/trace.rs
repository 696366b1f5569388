//! Guest-visible tracing, written to elfuse's own stderr (a private duplicate, so a guest
//! that closes or reuses fd 2 never receives them) or to `--trace-out FILE`:
//! - `syscalls`: strace-style lines;
//! - `actors`: one JSON object per line per actor message (`actor`, `msg`, `seq`, `tid`,
//!   `ts_ns`, `wait_ns`, `run_ns`, `inline`); `elfuse trace-to-perfetto IN OUT` turns
//!   them into Chrome trace-event JSON (Perfetto, chrome://tracing), skipping other lines.

use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::sync::{Arc, Mutex};

use elfuse_actors::trace::{MsgRecord, TraceSink};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceSet {
    pub syscalls: bool,
    pub actors: bool,
}

impl TraceSet {
    /// Parses `--trace=` values: a comma-separated list of `syscalls`, `actors`.
    pub fn parse(spec: &str) -> Result<TraceSet, String> {
        let mut t = TraceSet::default();
        for part in spec.split(',').filter(|p| !p.is_empty()) {
            match part {
                "syscalls" => t.syscalls = true,
                "actors" => t.actors = true,
                other => {
                    return Err(format!(
                        "unknown trace kind '{other}' (known: syscalls, actors)"
                    ))
                }
            }
        }
        Ok(t)
    }

    pub fn union(self, o: TraceSet) -> TraceSet {
        TraceSet {
            syscalls: self.syscalls || o.syscalls,
            actors: self.actors || o.actors,
        }
    }
}

type Sink = Arc<Mutex<Option<File>>>;

pub struct Tracer {
    pub set: TraceSet,
    sink: Sink,
}

/// A private duplicate of the host's stderr for elfuse's own messages.
pub fn private_stderr() -> Option<File> {
    // SAFETY: F_DUPFD_CLOEXEC on fd 2 takes an int; a closed stderr only makes it fail.
    let fd = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3) };
    // SAFETY: the dup succeeded: `fd` is a new fd owned by nobody else.
    (fd >= 0).then(|| unsafe { File::from_raw_fd(fd) })
}

fn write_line(sink: &Sink, s: &str) {
    let mut g = sink.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(f) = g.as_mut() {
        let _ = writeln!(f, "{s}");
    }
}

/// Actor records as JSON lines into the tracer's output.
struct ActorLines(Sink);

impl TraceSink for ActorLines {
    fn record(&self, r: &MsgRecord) {
        write_line(&self.0, &r.to_json());
    }
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
            sink: Arc::new(Mutex::new(sink)),
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
        write_line(&self.sink, s);
    }

    /// The sink actors report their messages to, when `--trace=actors` is on.
    pub fn actor_sink(&self) -> Option<Arc<dyn TraceSink>> {
        self.set
            .actors
            .then(|| Arc::new(ActorLines(self.sink.clone())) as Arc<dyn TraceSink>)
    }
}

/// A value of a flat JSON object as the actor trace writes it.
#[derive(Debug, PartialEq)]
enum Val<'a> {
    Str(&'a str),
    Num(u64),
    Neg(i64),
    Bool(bool),
}

/// Parses one flat JSON object of strings (no escapes), integers and booleans.
fn parse_flat(line: &str) -> Option<Vec<(&str, Val<'_>)>> {
    let body = line.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut out = Vec::new();
    let mut rest = body.trim_start();
    while !rest.is_empty() {
        let r = rest.strip_prefix('"')?;
        let (key, r) = r.split_once('"')?;
        let r = r.trim_start().strip_prefix(':')?.trim_start();
        let (val, r) = if let Some(r) = r.strip_prefix('"') {
            let (s, r) = r.split_once('"')?;
            if s.contains('\\') {
                return None;
            }
            (Val::Str(s), r)
        } else {
            let end = r.find([',', '}']).unwrap_or(r.len());
            let tok = r[..end].trim();
            let v = match tok {
                "true" => Val::Bool(true),
                "false" => Val::Bool(false),
                t if t.starts_with('-') => Val::Neg(t.parse().ok()?),
                t => Val::Num(t.parse().ok()?),
            };
            (v, &r[end..])
        };
        out.push((key, val));
        rest = r.trim_start();
        rest = match rest.strip_prefix(',') {
            Some(r) => r.trim_start(),
            None if rest.is_empty() => rest,
            None => return None,
        };
    }
    Some(out)
}

/// Converts an actor trace (JSON lines; other lines, such as syscall traces, are
/// skipped) to Chrome trace-event JSON. Each actor is a thread of process 1 ("actors")
/// with one complete event per message (its run); each guest thread is a thread of
/// process 2 ("guest threads") with a complete event per message for its wait.
/// Returns the JSON and the number of messages converted.
pub fn to_chrome_trace(input: &str) -> Result<(String, usize), String> {
    let mut events = Vec::new();
    let mut lanes: Vec<&str> = Vec::new();
    let mut senders: Vec<i64> = Vec::new();
    let mut n = 0;
    for (i, line) in input.lines().enumerate() {
        if !line.trim_start().starts_with('{') {
            continue;
        }
        let kv = parse_flat(line).ok_or_else(|| format!("line {}: not a trace record", i + 1))?;
        let get = |k: &str| kv.iter().find(|(key, _)| *key == k).map(|(_, v)| v);
        let num = |k: &str| match get(k) {
            Some(Val::Num(v)) => Ok(*v as i64),
            Some(Val::Neg(v)) => Ok(*v),
            _ => Err(format!("line {}: missing number '{k}'", i + 1)),
        };
        let text = |k: &str| match get(k) {
            Some(Val::Str(s)) => Ok(*s),
            _ => Err(format!("line {}: missing string '{k}'", i + 1)),
        };
        let (actor, msg) = (text("actor")?, text("msg")?);
        let (seq, tid, ts, wait, run) = (
            num("seq")?,
            num("tid")?,
            num("ts_ns")?,
            num("wait_ns")?,
            num("run_ns")?,
        );
        let inline = matches!(get("inline"), Some(Val::Bool(true)));
        let lane = match lanes.iter().position(|a| *a == actor) {
            Some(p) => p,
            None => {
                lanes.push(actor);
                events.push(format!(
                    "{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":1,\"tid\":{},\"args\":{{\"name\":\"actor {actor}\"}}}}",
                    lanes.len()
                ));
                lanes.len() - 1
            }
        } + 1;
        if !senders.contains(&tid) {
            senders.push(tid);
            events.push(format!(
                "{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":2,\"tid\":{tid},\"args\":{{\"name\":\"guest tid {tid}\"}}}}"
            ));
        }
        let us = |ns: i64| ns as f64 / 1000.0;
        events.push(format!(
            "{{\"ph\":\"X\",\"cat\":\"{actor}\",\"name\":\"{msg}\",\"pid\":1,\"tid\":{lane},\"ts\":{:.3},\"dur\":{:.3},\"args\":{{\"seq\":{seq},\"tid\":{tid},\"wait_ns\":{wait},\"inline\":{inline}}}}}",
            us(ts + wait),
            us(run)
        ));
        events.push(format!(
            "{{\"ph\":\"X\",\"cat\":\"{actor}\",\"name\":\"{actor}.{msg}\",\"pid\":2,\"tid\":{tid},\"ts\":{:.3},\"dur\":{:.3},\"args\":{{\"seq\":{seq}}}}}",
            us(ts),
            us(wait + run)
        ));
        n += 1;
    }
    let mut out = String::from("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n");
    out.push_str(&events.join(",\n"));
    out.push_str("\n]}\n");
    Ok((out, n))
}

/// `elfuse trace-to-perfetto IN OUT`: returns the number of messages converted.
pub fn convert_file(input: &std::path::Path, output: &std::path::Path) -> Result<usize, String> {
    let text = std::fs::read_to_string(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let (json, n) = to_chrome_trace(&text).map_err(|e| format!("{}: {e}", input.display()))?;
    std::fs::write(output, json).map_err(|e| format!("{}: {e}", output.display()))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_kinds() {
        let t = TraceSet::parse("syscalls,actors").unwrap();
        assert!(t.syscalls && t.actors);
        assert!(TraceSet::parse("bogus").is_err());
    }

    #[test]
    fn converts_records_and_skips_other_lines() {
        let r = MsgRecord {
            actor: "fdtable",
            msg: "dup",
            seq: 7,
            tid: 42,
            ts_ns: 5000,
            wait_ns: 1000,
            run_ns: 250,
            inline: true,
        };
        let input = format!("[pid 42] close(3) = 0\n{}\n", r.to_json());
        let (json, n) = to_chrome_trace(&input).unwrap();
        assert_eq!(n, 1);
        assert!(json.contains("\"name\":\"dup\",\"pid\":1,\"tid\":1,\"ts\":6.000,\"dur\":0.250"));
        assert!(json.contains("\"args\":{\"seq\":7,\"tid\":42,\"wait_ns\":1000,\"inline\":true}"));
        assert!(json
            .contains("\"name\":\"fdtable.dup\",\"pid\":2,\"tid\":42,\"ts\":5.000,\"dur\":1.250"));
        assert!(to_chrome_trace("{\"actor\":\"x\"}").is_err());
        assert_eq!(
            parse_flat("{\"a\":\"b\",\"n\":-3,\"t\":true}").unwrap(),
            vec![
                ("a", Val::Str("b")),
                ("n", Val::Neg(-3)),
                ("t", Val::Bool(true))
            ]
        );
    }
}
