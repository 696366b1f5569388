//! The signal/itimer actor: the only owner of a process's `SignalState` and of its
//! timers (`signal::timers`: interval and POSIX timers).
//!
//! Every change is a message (`elfuse_actors::runtime`, flat combining: an uncontended
//! call runs inline on the caller; `--trace=actors` records each one). After each message
//! the actor recomputes "some thread has a deliverable signal" and, only when that answer
//! changes, republishes it: the shim's SIGTIMER attention bit (so the next syscall of
//! any thread exits to the host), the vDSO's mirror of it (so clock_gettime loops reach
//! the host too), and an atomic flag the vCPU loop reads after every exit instead of
//! messaging the actor.
//!
//! Waking the thread that must act: `send` returns the chosen thread's handle and the
//! sender kicks it out of guest code and interrupts its host syscall (outside the
//! actor: a kick waits for the vCPU to leave guest code). A wake-up can land just before
//! the target enters a blocking host call, and a kick can find the vCPU inside the shim
//! (where it cannot deliver); the actor's idle tick therefore kicks and interrupts again,
//! every `RETRY`, each thread that was chosen and has not taken its signal yet.
//!
//! Timers: the actor thread waits for mail at most until the earliest instant a timer
//! could be due (`Actor::next_tick`); its tick then queues the expiries' signals in the
//! same message that decides whether each timer's previous signal is still pending. The
//! tick's reply names the threads to wake, and the runtime's `after_tick` wakes them
//! after the ownership is given back: no handler kicks, joins or spawns.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use elfuse_actors::runtime::{Actor, ActorRef, Config};
use elfuse_actors::trace::TraceSink;

use super::state::{MaskOp, PendingWatcher, SignalState};
use super::timers::{Clock, Notify, Setting, TimerTable, Which};
use super::{Disposal, KSigaction, SigInfo, Target, NSIG};
use crate::errno::Errno;
use crate::guest::ram::GuestRam;
use crate::guest::shimdata::ShimData;
use crate::guest::vvar::Vdso;
use crate::thread::directory::Directory;

/// How often a chosen thread that has not taken its signal is interrupted again.
const RETRY: Duration = Duration::from_millis(5);

pub enum Msg {
    Register {
        tid: i32,
        mask: u64,
        leader: bool,
    },
    Unregister(i32),
    Mask(i32, MaskOp),
    Action(u32, Option<KSigaction>),
    Actions,
    ExecReset,
    Send(Target, SigInfo),
    Take(i32),
    Fault {
        tid: i32,
        sig: u32,
    },
    Dequeue {
        tid: i32,
        set: u64,
    },
    Pending(i32),
    Deliverable(i32),
    BlockedByAll,
    Watch(Weak<dyn PendingWatcher>),
    Renotify,
    /// The idle tick: queue due timers' signals; interrupt again the threads that owe
    /// a signal.
    Tick,
    Timer(TimerMsg),
}

/// The timer syscalls' messages (`syscall::timer`).
pub enum TimerMsg {
    SetItimer(Which, Setting),
    GetItimer(Which),
    Create {
        clock: Clock,
        notify: Notify,
        value: Option<u64>,
    },
    Settime {
        id: i32,
        abs: bool,
        new: Setting,
    },
    Gettime(i32),
    Overrun(i32),
    Delete(i32),
}

pub enum Reply {
    Unit,
    Bits(u64),
    Action(KSigaction),
    Actions(Box<[KSigaction; NSIG]>),
    /// The thread the signal chose to wake, if any.
    Sent(Result<Option<i32>, Errno>),
    Take(Option<Disposal>, u64),
    Fault(Option<(KSigaction, u64)>),
    Info(Option<SigInfo>),
    /// The threads to wake (a tick's), by tid, and where their handles are.
    Wake(Arc<Directory>, Vec<i32>),
    Setting(Result<Setting, Errno>),
    Id(Result<i32, Errno>),
}

pub struct SigActor {
    state: SignalState,
    timers: TimerTable,
    /// The threads' handles (the registry's directory, read only: looked up by the
    /// tick's wake, after the handler).
    dir: Arc<Directory>,
    /// What was last published (SIGTIMER).
    published: bool,
    any: Arc<AtomicBool>,
    shim: ShimData,
    /// Where the attention bit is mirrored for the vDSO's clock calls.
    vdso: Vdso,
}

impl Actor for SigActor {
    type Msg = Msg;
    type Reply = Reply;
    const NAME: &'static str = "signals";

    fn kind(m: &Msg) -> &'static str {
        match m {
            Msg::Register { .. } => "register",
            Msg::Unregister(_) => "unregister",
            Msg::Mask(..) => "mask",
            Msg::Action(..) => "action",
            Msg::Actions => "actions",
            Msg::ExecReset => "exec_reset",
            Msg::Send(..) => "send",
            Msg::Take(_) => "take",
            Msg::Fault { .. } => "fault",
            Msg::Dequeue { .. } => "dequeue",
            Msg::Pending(_) => "pending",
            Msg::Deliverable(_) => "deliverable",
            Msg::BlockedByAll => "blocked_by_all",
            Msg::Watch(_) => "watch",
            Msg::Renotify => "renotify",
            Msg::Tick => "tick",
            Msg::Timer(t) => match t {
                TimerMsg::SetItimer(..) => "setitimer",
                TimerMsg::GetItimer(_) => "getitimer",
                TimerMsg::Create { .. } => "timer_create",
                TimerMsg::Settime { .. } => "timer_settime",
                TimerMsg::Gettime(_) => "timer_gettime",
                TimerMsg::Overrun(_) => "timer_getoverrun",
                TimerMsg::Delete(_) => "timer_delete",
            },
        }
    }

    fn handle(&mut self, m: &Msg) -> Reply {
        let s = &mut self.state;
        let r = match m {
            Msg::Register { tid, mask, leader } => {
                s.add_thread(*tid, *mask, *leader);
                Reply::Unit
            }
            Msg::Unregister(tid) => {
                s.remove_thread(*tid);
                Reply::Unit
            }
            Msg::Mask(tid, op) => Reply::Bits(s.set_mask(*tid, *op)),
            Msg::Action(sig, new) => Reply::Action(s.set_action(*sig, *new)),
            Msg::Actions => Reply::Actions(Box::new(s.actions)),
            Msg::ExecReset => {
                s.reset_for_exec();
                self.timers.exec();
                Reply::Actions(Box::new(s.actions))
            }
            Msg::Send(target, info) => Reply::Sent(s.send(*target, *info)),
            Msg::Take(tid) => {
                let mut d = s.take_deliverable(*tid);
                if let Some(Disposal::Handle { info, .. }) = &mut d {
                    // A POSIX timer's signal gets its overrun count (posixtimer_rearm).
                    self.timers.dequeued(info);
                }
                Reply::Take(d, s.mask(*tid))
            }
            Msg::Fault { tid, sig } => Reply::Fault(
                s.fault_handled(*sig, s.mask(*tid))
                    .then(|| s.begin_handler(*tid, *sig)),
            ),
            Msg::Dequeue { tid, set } => {
                let mut info = s.dequeue(*tid, *set);
                if let Some(i) = &mut info {
                    self.timers.dequeued(i);
                }
                Reply::Info(info)
            }
            Msg::Pending(tid) => Reply::Bits(s.pending_for(*tid) & s.mask(*tid)),
            Msg::Deliverable(tid) => Reply::Bits(s.deliverable(*tid)),
            Msg::BlockedByAll => Reply::Bits(s.blocked_by_all()),
            Msg::Watch(w) => {
                s.watch(w.clone());
                Reply::Unit
            }
            Msg::Renotify => {
                s.notify();
                Reply::Unit
            }
            Msg::Tick => Reply::Wake(self.dir.clone(), self.tick()),
            Msg::Timer(t) => self.timer(t),
        };
        self.publish();
        r
    }

    fn tick_msg(&self) -> Option<Msg> {
        Some(Msg::Tick)
    }

    fn next_tick(&self, _: Option<Duration>) -> Option<Duration> {
        let retry = (!self.state.owed().is_empty()).then_some(RETRY);
        let timer = self.timers.next_wake().map(Duration::from_nanos);
        match (retry, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn after_tick(r: Reply) {
        if let Reply::Wake(dir, tids) = r {
            for t in dir.get_all(&tids) {
                // A kick that found it inside the shim did not deliver: kick again.
                t.interrupt_host();
                t.kick();
            }
        }
    }
}

impl SigActor {
    /// The tick: queues the signals of the timers that are due; returns the threads to
    /// wake: those the new signals chose and those that still owe one.
    fn tick(&mut self) -> Vec<i32> {
        let s = &mut self.state;
        let due = self
            .timers
            .fire_due(|target, signo| s.is_pending(target, signo));
        for (target, info) in due {
            if let Err(e) = s.send(target, info) {
                tracing::debug!(?e, signo = info.signo, "timer signal not sent");
            }
        }
        // `owed` names each thread once.
        s.owed()
    }

    fn timer(&mut self, m: &TimerMsg) -> Reply {
        let t = &mut self.timers;
        match *m {
            TimerMsg::SetItimer(w, new) => Reply::Setting(Ok(t.set_itimer(w, new))),
            TimerMsg::GetItimer(w) => Reply::Setting(Ok(t.get_itimer(w))),
            TimerMsg::Create {
                clock,
                notify,
                value,
            } => Reply::Id(t.create(clock, notify, value)),
            TimerMsg::Settime { id, abs, new } => Reply::Setting(t.settime(id, abs, new)),
            TimerMsg::Gettime(id) => Reply::Setting(t.gettime(id)),
            TimerMsg::Overrun(id) => Reply::Id(t.overrun(id)),
            TimerMsg::Delete(id) => Reply::Id(t.delete(id).map(|()| 0)),
        }
    }

    /// Republishes "some thread has a deliverable signal" when it changed.
    fn publish(&mut self) {
        let any = self.state.any_deliverable();
        if any == self.published {
            return;
        }
        self.published = any;
        self.any.store(any, Ordering::SeqCst);
        self.shim.sync_sigtimer(any);
        let bits = if any {
            elfuse_shim::data::ATTN_SIGTIMER
        } else {
            0
        };
        self.vdso.mirror_attention(bits);
    }
}

/// The handle the process keeps (`Process::signals`).
pub struct SignalActor {
    actor: ActorRef<SigActor>,
    any: Arc<AtomicBool>,
    /// The threads' handles, to wake the one a signal chose.
    dir: Arc<Directory>,
}

impl SignalActor {
    /// Starts the actor of the process whose vDSO is `vdso`, over `state`.
    pub fn spawn(
        vdso: Vdso,
        ram: Arc<GuestRam>,
        state: SignalState,
        dir: Arc<Directory>,
        sink: Option<Arc<dyn TraceSink>>,
    ) -> SignalActor {
        let any = Arc::new(AtomicBool::new(false));
        let shim = ShimData::new(ram);
        // A fresh process starts with nothing pending: make the shim agree.
        shim.sync_sigtimer(false);
        let actor = ActorRef::spawn(
            SigActor {
                state,
                timers: TimerTable::default(),
                dir: dir.clone(),
                published: false,
                any: any.clone(),
                shim,
                vdso,
            },
            Config {
                sink,
                tick: Some(RETRY),
                ..Config::default()
            },
        );
        SignalActor { actor, any, dir }
    }

    /// Some thread may have a deliverable signal (one atomic load; the vCPU loop asks the
    /// actor only then).
    pub fn maybe_deliverable(&self) -> bool {
        self.any.load(Ordering::SeqCst)
    }

    fn bits(&self, m: Msg) -> u64 {
        match self.actor.call(m) {
            Reply::Bits(b) => b,
            _ => unreachable!("signal actor: reply kind"),
        }
    }

    fn actions_of(&self, m: Msg) -> [KSigaction; NSIG] {
        match self.actor.call(m) {
            Reply::Actions(a) => *a,
            _ => unreachable!("signal actor: reply kind"),
        }
    }

    /// Thread `tid` joins (before anyone can learn its tid; its handle is already in the
    /// registry's directory), with its blocked mask.
    pub fn register(&self, tid: i32, mask: u64, leader: bool) {
        self.actor.call(Msg::Register { tid, mask, leader });
    }

    /// The thread is gone; its own pending signals are dropped.
    pub fn unregister(&self, tid: i32) {
        self.actor.call(Msg::Unregister(tid));
    }

    /// Changes `tid`'s blocked mask; returns the old one.
    pub fn set_mask(&self, tid: i32, op: MaskOp) -> u64 {
        self.bits(Msg::Mask(tid, op))
    }

    /// rt_sigaction: returns the old disposition.
    pub fn set_action(&self, sig: u32, new: Option<KSigaction>) -> KSigaction {
        match self.actor.call(Msg::Action(sig, new)) {
            Reply::Action(a) => a,
            _ => unreachable!("signal actor: reply kind"),
        }
    }

    /// Every disposition (fork hands them to the child).
    pub fn actions(&self) -> [KSigaction; NSIG] {
        self.actions_of(Msg::Actions)
    }

    /// execve: handlers reset (ignored stay ignored); returns the new dispositions.
    pub fn reset_for_exec(&self) -> [KSigaction; NSIG] {
        self.actions_of(Msg::ExecReset)
    }

    /// Queues a signal and wakes the thread that must act on it (see the module doc).
    pub fn send(&self, target: Target, info: SigInfo) -> Result<(), Errno> {
        let Reply::Sent(r) = self.actor.call(Msg::Send(target, info)) else {
            unreachable!("signal actor: reply kind")
        };
        if let Some(t) = r?.and_then(|tid| self.dir.get(tid)) {
            // The sender itself acts on it when its syscall returns.
            if !t.is_current() {
                // This interrupt can land just before the thread blocks in a host call;
                // the idle tick retries it, and ticks need the actor's thread, which
                // messages run inline never start.
                self.actor.start_thread();
                t.interrupt_host();
                t.kick();
            }
        }
        Ok(())
    }

    /// `tid`'s next signal to act on, and its mask afterwards.
    pub fn take(&self, tid: i32) -> (Option<Disposal>, u64) {
        match self.actor.call(Msg::Take(tid)) {
            Reply::Take(d, m) => (d, m),
            _ => unreachable!("signal actor: reply kind"),
        }
    }

    /// A synchronous fault `sig` on `tid`: the handler to run and the old mask, or None
    /// (the process dies).
    pub fn fault(&self, tid: i32, sig: u32) -> Option<(KSigaction, u64)> {
        match self.actor.call(Msg::Fault { tid, sig }) {
            Reply::Fault(f) => f,
            _ => unreachable!("signal actor: reply kind"),
        }
    }

    /// Takes the lowest signal of `set` pending for `tid` or the process, blocked or not.
    pub fn dequeue(&self, tid: i32, set: u64) -> Option<SigInfo> {
        match self.actor.call(Msg::Dequeue { tid, set }) {
            Reply::Info(i) => i,
            _ => unreachable!("signal actor: reply kind"),
        }
    }

    /// rt_sigpending: (thread ∪ process pending) & blocked.
    pub fn pending(&self, tid: i32) -> u64 {
        self.bits(Msg::Pending(tid))
    }

    /// The signals `tid` could act on now.
    pub fn deliverable(&self, tid: i32) -> u64 {
        self.bits(Msg::Deliverable(tid))
    }

    /// The signals every thread blocks.
    pub fn blocked_by_all(&self) -> u64 {
        self.bits(Msg::BlockedByAll)
    }

    pub fn watch(&self, w: Weak<dyn PendingWatcher>) {
        self.actor.call(Msg::Watch(w));
    }

    /// Tells every watcher the pending set again (a signalfd's mask changed).
    pub fn renotify(&self) {
        self.actor.call(Msg::Renotify);
    }

    fn timer_call(&self, m: TimerMsg) -> Reply {
        self.actor.call(Msg::Timer(m))
    }

    fn setting(&self, m: TimerMsg, rearm: bool) -> Result<Setting, Errno> {
        let Reply::Setting(r) = self.timer_call(m) else {
            unreachable!("signal actor: reply kind")
        };
        if rearm && r.is_ok() {
            // The next deadline may have come forward: the actor thread re-reads it.
            self.actor.wake();
        }
        r
    }

    fn id(&self, m: TimerMsg) -> Result<i32, Errno> {
        let Reply::Id(r) = self.timer_call(m) else {
            unreachable!("signal actor: reply kind")
        };
        r
    }

    /// setitimer: sets interval timer `which`, returns the old setting.
    pub fn set_itimer(&self, which: Which, new: Setting) -> Setting {
        self.setting(TimerMsg::SetItimer(which, new), true)
            .unwrap_or_default()
    }

    pub fn get_itimer(&self, which: Which) -> Setting {
        self.setting(TimerMsg::GetItimer(which), false)
            .unwrap_or_default()
    }

    /// timer_create: a disarmed POSIX timer; `value` None is "the timer's id".
    pub fn timer_create(
        &self,
        clock: Clock,
        notify: Notify,
        value: Option<u64>,
    ) -> Result<i32, Errno> {
        self.id(TimerMsg::Create {
            clock,
            notify,
            value,
        })
    }

    /// timer_settime: returns the old setting.
    pub fn timer_settime(&self, id: i32, abs: bool, new: Setting) -> Result<Setting, Errno> {
        self.setting(TimerMsg::Settime { id, abs, new }, true)
    }

    pub fn timer_gettime(&self, id: i32) -> Result<Setting, Errno> {
        self.setting(TimerMsg::Gettime(id), false)
    }

    /// timer_getoverrun.
    pub fn timer_overrun(&self, id: i32) -> Result<i32, Errno> {
        self.id(TimerMsg::Overrun(id))
    }

    /// timer_delete. A signal it already queued stays queued, as on Linux.
    pub fn timer_delete(&self, id: i32) -> Result<(), Errno> {
        self.id(TimerMsg::Delete(id)).map(|_| ())
    }

    /// Holds the actor still (no message handled) while the guard lives, for a host
    /// fork(): see [`elfuse_actors::runtime::ActorRef::hold`]. The guard reads the
    /// dispositions the child inherits.
    pub fn hold(&self) -> Held<'_> {
        Held(self.actor.hold())
    }
}

/// The signal actor held still ([`SignalActor::hold`]).
pub struct Held<'a>(elfuse_actors::runtime::Held<'a, SigActor>);

impl Held<'_> {
    /// Every disposition.
    pub fn actions(&mut self) -> [KSigaction; NSIG] {
        self.0.actor().state.actions
    }
}
