//! The actor runtime.
//!
//! An actor owns its state; the only code that touches it is the actor's `handle`, run by
//! the runtime under the actor's ownership token, one message at a time. Each handled
//! message gets the next `seq` (the serialisation order), runs in a `tracing` span and
//! is reported to the optional [`TraceSink`].
//!
//! Two ways to deliver a message ([`Mode`]):
//! - `Threaded`: always through the mailbox to the actor's own thread; the sender waits
//!   on a one-shot reply channel.
//! - `Combining` (flat combining): a sender that finds the actor idle and its mailbox
//!   empty takes the ownership token and runs the handler itself, then drains whatever
//!   other senders queued meanwhile; a sender that finds it busy queues its message and
//!   waits, and the current owner or the actor thread serves it. Either way exactly one
//!   thread runs handlers at a time, so the order is still one total order.
//!
//! Mailbox and replies are crossbeam-channel (see benches/actors.rs for the measurement
//! against flume).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender};

use crate::trace::{current_tid, now_ns, MsgRecord, TraceSink};

/// A state owner.
pub trait Actor: Send + 'static {
    type Msg: Send + 'static;
    type Reply: Send + 'static;
    /// The actor's name in traces.
    const NAME: &'static str;
    /// The message kind in traces.
    fn kind(msg: &Self::Msg) -> &'static str;
    /// Handles one message. Runs only under the actor's ownership.
    fn handle(&mut self, msg: &Self::Msg) -> Self::Reply;
    /// A message the actor thread sends itself every `tick` of idleness ([`Config`]).
    fn tick_msg(&self) -> Option<Self::Msg> {
        None
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Threaded,
    Combining,
}

/// Sees every handled message in serialisation order (tests replay it against a model).
pub type Observer<A> =
    Box<dyn Fn(u64, &<A as Actor>::Msg, &<A as Actor>::Reply) + Send + Sync + 'static>;

pub struct Config<A: Actor> {
    pub mode: Mode,
    pub sink: Option<Arc<dyn TraceSink>>,
    pub observer: Option<Observer<A>>,
    /// Idle period after which the actor thread runs `tick_msg`.
    pub tick: Option<Duration>,
}

impl<A: Actor> Default for Config<A> {
    fn default() -> Self {
        Config {
            mode: Mode::Combining,
            sink: None,
            observer: None,
            tick: None,
        }
    }
}

struct Core<A> {
    actor: A,
    seq: u64,
}

enum Envelope<A: Actor> {
    Msg {
        msg: A::Msg,
        tid: i32,
        sent_ns: u64,
        reply: Sender<A::Reply>,
    },
    Stop,
}

struct Inner<A: Actor> {
    core: Mutex<Core<A>>,
    tx: Sender<Envelope<A>>,
    rx: Receiver<Envelope<A>>,
    /// Messages sent through the mailbox and not yet taken out of it.
    queued: AtomicUsize,
    cfg: Config<A>,
}

/// The handle to a running actor. Dropping it stops the actor thread.
///
/// The thread starts with the first message that must go through the mailbox (a `tell`,
/// or a `call` that is not run inline): an actor that is never sent anything that way
/// never costs a thread (a short-lived fork child's actors, usually). Idle ticks start
/// with the thread.
pub struct ActorRef<A: Actor> {
    inner: Arc<Inner<A>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<A: Actor> Inner<A> {
    fn lock(&self) -> MutexGuard<'_, Core<A>> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs one message under ownership (`core` is the held token).
    fn run(
        &self,
        core: &mut Core<A>,
        msg: &A::Msg,
        tid: i32,
        sent_ns: u64,
        inline: bool,
    ) -> A::Reply {
        core.seq += 1;
        let seq = core.seq;
        let kind = A::kind(msg);
        let span = tracing::trace_span!("actor_msg", actor = A::NAME, msg = kind, seq, tid);
        let _entered = span.enter();
        let start = if self.cfg.sink.is_some() { now_ns() } else { 0 };
        let reply = core.actor.handle(msg);
        if let Some(obs) = &self.cfg.observer {
            obs(seq, msg, &reply);
        }
        if let Some(sink) = &self.cfg.sink {
            let end = now_ns();
            sink.record(&MsgRecord {
                actor: A::NAME,
                msg: kind,
                seq,
                tid,
                ts_ns: sent_ns,
                wait_ns: start.saturating_sub(sent_ns),
                run_ns: end - start,
                inline,
            });
        }
        reply
    }

    /// Serves one queued envelope; false for Stop.
    fn serve(&self, core: &mut Core<A>, env: Envelope<A>) -> bool {
        self.queued.fetch_sub(1, Ordering::AcqRel);
        match env {
            Envelope::Msg {
                msg,
                tid,
                sent_ns,
                reply,
            } => {
                let r = self.run(core, &msg, tid, sent_ns, false);
                // The sender may have gone (it cannot: it blocks on this), ignore.
                let _ = reply.send(r);
                true
            }
            Envelope::Stop => false,
        }
    }

    /// Drains the mailbox while holding the token (the combiner's help). Stop is left
    /// for the actor thread.
    fn drain(&self, core: &mut Core<A>) {
        while self.queued.load(Ordering::Acquire) > 0 {
            match self.rx.try_recv() {
                Ok(Envelope::Stop) => {
                    // Put it back for the actor thread.
                    let _ = self.tx.send(Envelope::Stop);
                    return;
                }
                Ok(env) => {
                    self.serve(core, env);
                }
                Err(_) => return,
            }
        }
    }

    fn thread_loop(&self) {
        loop {
            let env = match self.cfg.tick {
                Some(t) => match self.rx.recv_timeout(t) {
                    Ok(env) => env,
                    Err(RecvTimeoutError::Timeout) => {
                        let mut core = self.lock();
                        if let Some(m) = core.actor.tick_msg() {
                            self.run(&mut core, &m, 0, now_ns(), false);
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                },
                None => match self.rx.recv() {
                    Ok(env) => env,
                    Err(_) => return,
                },
            };
            let mut core = self.lock();
            if !self.serve(&mut core, env) {
                return;
            }
        }
    }
}

impl<A: Actor> ActorRef<A> {
    pub fn spawn(actor: A, cfg: Config<A>) -> Self {
        let (tx, rx) = unbounded();
        let inner = Arc::new(Inner {
            core: Mutex::new(Core { actor, seq: 0 }),
            tx,
            rx,
            queued: AtomicUsize::new(0),
            cfg,
        });
        ActorRef {
            inner,
            thread: Mutex::new(None),
        }
    }

    /// Starts the actor thread if it is not running yet.
    fn start_thread(&self) {
        let mut t = self.thread.lock().unwrap_or_else(|p| p.into_inner());
        if t.is_none() {
            let inner = self.inner.clone();
            let h = std::thread::Builder::new()
                .name(format!("actor-{}", A::NAME))
                .spawn(move || inner.thread_loop())
                .expect("spawn actor thread");
            *t = Some(h);
        }
    }

    /// Sends `msg` as the current guest thread and waits for the reply.
    pub fn call(&self, msg: A::Msg) -> A::Reply {
        let inner = &*self.inner;
        let tid = current_tid();
        let sent_ns = if inner.cfg.sink.is_some() {
            now_ns()
        } else {
            0
        };
        if inner.cfg.mode == Mode::Combining && inner.queued.load(Ordering::Acquire) == 0 {
            match inner.core.try_lock() {
                Ok(mut core) => return Self::inline(inner, &mut core, msg, tid, sent_ns),
                Err(TryLockError::Poisoned(p)) => {
                    return Self::inline(inner, &mut p.into_inner(), msg, tid, sent_ns)
                }
                Err(TryLockError::WouldBlock) => {}
            }
        }
        self.start_thread();
        let (reply, rx) = bounded(1);
        inner.queued.fetch_add(1, Ordering::AcqRel);
        inner
            .tx
            .send(Envelope::Msg {
                msg,
                tid,
                sent_ns,
                reply,
            })
            .expect("the actor's mailbox outlives its handle");
        rx.recv().expect("an actor answers every message")
    }

    /// Sends `msg` without waiting for the reply (a nudge such as "top up if low"). It
    /// always goes through the mailbox, so the caller never runs the handler.
    pub fn tell(&self, msg: A::Msg) {
        let inner = &*self.inner;
        let sent_ns = if inner.cfg.sink.is_some() {
            now_ns()
        } else {
            0
        };
        self.start_thread();
        // Nobody listens on the reply: the actor's send fails quietly.
        let (reply, _) = bounded(1);
        inner.queued.fetch_add(1, Ordering::AcqRel);
        let _ = inner.tx.send(Envelope::Msg {
            msg,
            tid: current_tid(),
            sent_ns,
            reply,
        });
    }

    fn inline(
        inner: &Inner<A>,
        core: &mut Core<A>,
        msg: A::Msg,
        tid: i32,
        sent_ns: u64,
    ) -> A::Reply {
        let r = inner.run(core, &msg, tid, sent_ns, true);
        inner.drain(core);
        r
    }

    /// Messages sent through the mailbox and not yet taken out of it.
    pub fn queued(&self) -> usize {
        self.inner.queued.load(Ordering::Acquire)
    }

    /// Messages handled so far.
    pub fn handled(&self) -> u64 {
        self.inner.lock().seq
    }
}

impl<A: Actor> Drop for ActorRef<A> {
    fn drop(&mut self) {
        let t = self.thread.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = t.take() {
            self.inner.queued.fetch_add(1, Ordering::AcqRel);
            let _ = self.inner.tx.send(Envelope::Stop);
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(u64);
    impl Actor for Counter {
        type Msg = u64;
        type Reply = u64;
        const NAME: &'static str = "counter";
        fn kind(_: &u64) -> &'static str {
            "add"
        }
        fn handle(&mut self, m: &u64) -> u64 {
            self.0 += m;
            self.0
        }
    }

    fn hammer(mode: Mode) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let a = Arc::new(ActorRef::spawn(
            Counter(0),
            Config {
                mode,
                observer: Some(Box::new(move |seq, _, r| s.lock().unwrap().push((seq, *r)))),
                ..Config::default()
            },
        ));
        let ts: Vec<_> = (0..4)
            .map(|_| {
                let a = a.clone();
                std::thread::spawn(move || {
                    (0..2000).for_each(|_| {
                        a.call(1);
                    })
                })
            })
            .collect();
        ts.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(a.call(0), 8000);
        let seen = seen.lock().unwrap();
        // seq is 1, 2, 3... and each message saw the state after exactly seq adds.
        for (i, &(seq, r)) in seen.iter().enumerate().take(8000) {
            assert_eq!(seq, i as u64 + 1);
            assert_eq!(r, seq);
        }
    }

    #[test]
    fn serialises_threaded() {
        hammer(Mode::Threaded);
    }

    #[test]
    fn serialises_combining() {
        hammer(Mode::Combining);
    }
}
