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
//!
//! The inline path is what uncontended mutations pay, so it is kept to: one load of the
//! mailbox count, one CAS taking the ownership token, the handler, one load to see
//! whether others queued meanwhile and a plain release store giving the token back. No
//! allocation, channel or reply object; the `tracing` span is built only when TRACE is
//! enabled (tracing's cached max level), timestamps only when a [`TraceSink`] is set.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
    /// A message the actor thread sends itself after an idle period ([`Actor::next_tick`]).
    fn tick_msg(&self) -> Option<Self::Msg> {
        None
    }
    /// How long the actor thread waits for mail before it sends itself `tick_msg`; asked
    /// before every wait, under the actor's ownership. `cfg` is [`Config::tick`]. An actor
    /// whose deadlines move (timers) computes it from its state; a handler that makes it
    /// earlier has the caller [`ActorRef::wake`] the thread.
    fn next_tick(&self, cfg: Option<Duration>) -> Option<Duration> {
        cfg
    }
    /// Runs on the actor thread after a tick message was handled and the ownership given
    /// back: the place for the tick's effects that must not run inside a handler (waking
    /// other threads, host calls that may block).
    fn after_tick(_reply: Self::Reply) {}
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
    /// Nothing to handle: the actor thread re-reads `next_tick` ([`ActorRef::wake`]).
    Wake,
    Stop,
}

struct Inner<A: Actor> {
    /// The ownership token: whoever sets it runs handlers, and only they touch `core`.
    owned: AtomicBool,
    core: UnsafeCell<Core<A>>,
    tx: Sender<Envelope<A>>,
    rx: Receiver<Envelope<A>>,
    /// Messages sent through the mailbox and not yet taken out of it.
    queued: AtomicUsize,
    /// Neither a trace sink nor an observer: messages need no bookkeeping but `seq`.
    quiet: bool,
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

// SAFETY: `core` is only reached through an `Owner`, and one exists at a time (the
// `owned` token); the messages and replies that cross threads are `Send`.
unsafe impl<A: Actor> Sync for Inner<A> {}

/// Holding the ownership token. Dropping it (also on unwind) gives the token back.
struct Owner<'a, A: Actor>(&'a Inner<A>);

impl<A: Actor> Owner<'_, A> {
    fn core(&mut self) -> &mut Core<A> {
        // SAFETY: the token is held, so no other reference to `core` exists.
        unsafe { &mut *self.0.core.get() }
    }
}

impl<A: Actor> Drop for Owner<'_, A> {
    fn drop(&mut self) {
        self.0.owned.store(false, Ordering::Release);
    }
}

/// Whether message spans are built: tracing's global max level, a cached atomic.
fn spans_on() -> bool {
    use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
    STATIC_MAX_LEVEL >= LevelFilter::TRACE && LevelFilter::current() >= LevelFilter::TRACE
}

impl<A: Actor> Inner<A> {
    fn try_own(&self) -> Option<Owner<'_, A>> {
        self.owned
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| Owner(self))
    }

    /// Waits for the token (the actor thread, `handled`). Holders only run handlers,
    /// which never block, so a short spin and then yielding is enough.
    fn own(&self) -> Owner<'_, A> {
        let mut spins = 0u32;
        loop {
            if let Some(o) = self.try_own() {
                return o;
            }
            if spins < 100 {
                std::hint::spin_loop();
                spins += 1;
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Runs one message under ownership (`core` is the held token). Untraced (no sink,
    /// no observer: a flag cached at spawn; TRACE off: tracing's cached max level) it is
    /// only the `seq` bump and the handler, inlined with no opaque call in between, so a
    /// call with a known message kind folds the handler's dispatch and keeps the reply in
    /// registers.
    ///
    /// The reply goes through `map` on both paths (see [`ActorRef::call_map`]), so they
    /// join on `R` and not on a reply written to memory.
    #[inline(always)]
    /// The message is built by `make` in each branch: the untraced one's never has its
    /// address taken by an opaque call, so it stays out of memory.
    fn run<R>(
        &self,
        core: &mut Core<A>,
        make: impl FnOnce() -> A::Msg,
        sent: (i32, u64, bool),
        map: impl FnOnce(A::Reply) -> R,
    ) -> R {
        if self.quiet && !spans_on() {
            let msg = make();
            core.seq += 1;
            return map(core.actor.handle(&msg));
        }
        self.run_traced(core, make(), sent, map)
    }

    /// [`Inner::run`] with its span, trace record and observer. `sent`: the sender's tid,
    /// when it sent (ns), whether it runs the handler itself.
    /// It unpacks the reply itself, so the two branches join on `R` (in registers).
    #[inline(never)]
    fn run_traced<R>(
        &self,
        core: &mut Core<A>,
        msg: A::Msg,
        sent: (i32, u64, bool),
        map: impl FnOnce(A::Reply) -> R,
    ) -> R {
        let msg = &msg;
        let (tid, sent_ns, inline) = sent;
        core.seq += 1;
        let seq = core.seq;
        let kind = A::kind(msg);
        let span = if spans_on() {
            tracing::trace_span!("actor_msg", actor = A::NAME, msg = kind, seq, tid)
        } else {
            tracing::Span::none()
        };
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
        map(reply)
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
                let r = self.run(core, || msg, (tid, sent_ns, false), |r| r);
                // The sender may have gone (it cannot: it blocks on this), ignore.
                let _ = reply.send(r);
                true
            }
            Envelope::Wake => true,
            Envelope::Stop => false,
        }
    }

    /// Drains the mailbox while holding the token (the combiner's help). Stop is left
    /// for the actor thread.
    #[inline]
    fn drain(&self, core: &mut Core<A>) {
        if self.queued.load(Ordering::Acquire) > 0 {
            self.drain_queued(core);
        }
    }

    #[cold]
    fn drain_queued(&self, core: &mut Core<A>) {
        while self.queued.load(Ordering::Acquire) > 0 {
            match self.rx.try_recv() {
                Ok(env @ (Envelope::Stop | Envelope::Wake)) => {
                    // Put it back: it is for the actor thread.
                    let _ = self.tx.send(env);
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
            let tick = self.own().core().actor.next_tick(self.cfg.tick);
            let env = match tick {
                Some(t) => match self.rx.recv_timeout(t) {
                    Ok(env) => env,
                    Err(RecvTimeoutError::Timeout) => {
                        let mut own = self.own();
                        let core = own.core();
                        let Some(m) = core.actor.tick_msg() else {
                            continue;
                        };
                        let r = self.run(core, || m, (0, now_ns(), false), |r| r);
                        self.drain(core);
                        drop(own);
                        A::after_tick(r);
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                },
                None => match self.rx.recv() {
                    Ok(env) => env,
                    Err(_) => return,
                },
            };
            let mut own = self.own();
            if !self.serve(own.core(), env) {
                return;
            }
            self.drain(own.core());
        }
    }
}

/// The actor's state held still: no handler runs while it lives ([`ActorRef::hold`]).
pub struct Held<'a, A: Actor>(Owner<'a, A>);

impl<A: Actor> Held<'_, A> {
    /// The state, read under the ownership token (as a handler would).
    pub fn actor(&mut self) -> &A {
        &self.0.core().actor
    }
}

impl<A: Actor> ActorRef<A> {
    pub fn spawn(actor: A, cfg: Config<A>) -> Self {
        let (tx, rx) = unbounded();
        let inner = Arc::new(Inner {
            owned: AtomicBool::new(false),
            core: UnsafeCell::new(Core { actor, seq: 0 }),
            tx,
            rx,
            queued: AtomicUsize::new(0),
            quiet: cfg.sink.is_none() && cfg.observer.is_none(),
            cfg,
        });
        ActorRef {
            inner,
            thread: Mutex::new(None),
        }
    }

    /// Starts the actor thread if it is not running yet (its idle ticks with it).
    pub fn start_thread(&self) {
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
    #[inline(always)]
    pub fn call(&self, msg: A::Msg) -> A::Reply {
        self.call_map(|| msg, |r| r)
    }

    /// [`ActorRef::call`] for a typed caller: the message is built by `make` once the path
    /// is chosen and the reply goes through `map` (a pure unpacking: it runs under the
    /// actor's ownership on the inline path). Inline, the message is built after the
    /// token is taken and unpacked right after the handler, so for a message of a known
    /// kind the dispatch folds away and neither message nor reply goes through memory.
    #[inline(always)]
    pub fn call_map<R>(&self, make: impl FnOnce() -> A::Msg, map: impl FnOnce(A::Reply) -> R) -> R {
        let inner = &*self.inner;
        let tid = current_tid();
        let sent_ns = if inner.cfg.sink.is_some() {
            now_ns()
        } else {
            0
        };
        if inner.cfg.mode == Mode::Combining && inner.queued.load(Ordering::Acquire) == 0 {
            if let Some(mut own) = inner.try_own() {
                let r = inner.run(own.core(), make, (tid, sent_ns, true), map);
                inner.drain(own.core());
                return r;
            }
        }
        self.call_queued(make(), tid, sent_ns, map)
    }

    /// The mailbox path of [`ActorRef::call`]: the actor is busy or threaded.
    /// It unpacks the reply itself, so the two paths join on `R`, never on a reply in
    /// memory.
    #[inline(never)]
    fn call_queued<R>(
        &self,
        msg: A::Msg,
        tid: i32,
        sent_ns: u64,
        map: impl FnOnce(A::Reply) -> R,
    ) -> R {
        let inner = &*self.inner;
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
        map(rx.recv().expect("an actor answers every message"))
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

    /// Starts the actor thread if needed and has it re-read [`Actor::next_tick`]: for a
    /// handler that brought its next deadline forward while the thread was waiting.
    pub fn wake(&self) {
        self.start_thread();
        self.inner.queued.fetch_add(1, Ordering::AcqRel);
        let _ = self.inner.tx.send(Envelope::Wake);
    }

    /// Takes the ownership token and keeps it while the guard lives: no message is
    /// handled meanwhile (senders wait). For a host fork(), so that the child never
    /// inherits a state some other thread was in the middle of changing. Must not be
    /// called from a handler of this actor, nor held across a message to it.
    pub fn hold(&self) -> Held<'_, A> {
        Held(self.inner.own())
    }

    /// Messages sent through the mailbox and not yet taken out of it.
    pub fn queued(&self) -> usize {
        self.inner.queued.load(Ordering::Acquire)
    }

    /// Messages handled so far.
    pub fn handled(&self) -> u64 {
        self.inner.own().core().seq
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
#[path = "runtime_tests.rs"]
mod tests;
