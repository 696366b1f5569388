//! Actor-level tracing: one record per message an actor handles.
//!
//! Every message also runs inside a `tracing` span (`actor_msg`, fields `actor`, `msg`,
//! `seq`, `tid`), so `RUST_LOG=elfuse_actors=trace` shows them; a [`TraceSink`] gets the
//! same facts with timings, which elfuse writes as JSON lines (`--trace=actors`).

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::Instant;

/// What happened to one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgRecord {
    /// The actor's name.
    pub actor: &'static str,
    /// The message kind.
    pub msg: &'static str,
    /// Position in the actor's serialisation order (strictly increasing per actor).
    pub seq: u64,
    /// Guest thread that sent it (0: elfuse itself).
    pub tid: i32,
    /// When it was sent, in ns since the trace epoch.
    pub ts_ns: u64,
    /// From sending to the handler starting.
    pub wait_ns: u64,
    /// The handler's run time.
    pub run_ns: u64,
    /// Whether the sender ran the handler itself (uncontended, combining mode).
    pub inline: bool,
}

impl MsgRecord {
    /// One JSON object on one line (no trailing newline).
    pub fn to_json(&self) -> String {
        format!(
            "{{\"actor\":\"{}\",\"msg\":\"{}\",\"seq\":{},\"tid\":{},\"ts_ns\":{},\"wait_ns\":{},\"run_ns\":{},\"inline\":{}}}",
            self.actor, self.msg, self.seq, self.tid, self.ts_ns, self.wait_ns, self.run_ns, self.inline
        )
    }
}

/// Receives a record per handled message, on the thread that handled it.
pub trait TraceSink: Send + Sync {
    fn record(&self, r: &MsgRecord);
}

/// The time origin of `ts_ns` (first use in the process).
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

thread_local! {
    static CURRENT_TID: Cell<i32> = const { Cell::new(0) };
}

/// Records which guest thread this host thread is running (the `tid` of its messages).
#[inline]
pub fn set_current_tid(tid: i32) {
    CURRENT_TID.with(|c| c.set(tid));
}

#[inline]
pub fn current_tid() -> i32 {
    CURRENT_TID.with(|c| c.get())
}
