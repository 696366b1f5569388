//! Tests of the actor runtime (`runtime.rs`).

use super::*;
use std::sync::Mutex;

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

/// Ticks at a deadline the actor computes; `wake` makes the thread re-read it, and
/// the tick's effects run after ownership is given back.
struct Alarm {
    at: Option<std::time::Instant>,
}
impl Actor for Alarm {
    type Msg = Option<Duration>;
    type Reply = u64;
    const NAME: &'static str = "alarm";
    fn kind(_: &Option<Duration>) -> &'static str {
        "alarm"
    }
    fn handle(&mut self, m: &Option<Duration>) -> u64 {
        match m {
            Some(d) => self.at = Some(std::time::Instant::now() + *d),
            None => self.at = None,
        }
        0
    }
    fn tick_msg(&self) -> Option<Option<Duration>> {
        Some(None)
    }
    fn next_tick(&self, _: Option<Duration>) -> Option<Duration> {
        self.at
            .map(|t| t.saturating_duration_since(std::time::Instant::now()))
    }
    fn after_tick(_: u64) {
        ALARMS.fetch_add(1, Ordering::SeqCst);
    }
}
static ALARMS: AtomicUsize = AtomicUsize::new(0);

#[test]
fn next_tick_and_wake() {
    let a = ActorRef::spawn(Alarm { at: None }, Config::default());
    // An hour away: the thread sleeps on it.
    a.call(Some(Duration::from_secs(3600)));
    a.wake();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(ALARMS.load(Ordering::SeqCst), 0);
    // Brought forward inline: only the wake makes the thread notice.
    a.call(Some(Duration::from_millis(5)));
    a.wake();
    let t0 = std::time::Instant::now();
    while ALARMS.load(Ordering::SeqCst) == 0 {
        assert!(t0.elapsed() < Duration::from_secs(10), "no tick");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(ALARMS.load(Ordering::SeqCst), 1);
}

/// Counts `actor_msg` spans.
struct Spans(Arc<std::sync::atomic::AtomicU64>);
impl tracing::Subscriber for Spans {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }
    fn new_span(&self, a: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        if a.metadata().name() == "actor_msg" {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// The untraced fast path still gives way to a span per message once TRACE is on.
#[test]
fn inline_messages_are_spans_when_trace_is_on() {
    let a = ActorRef::spawn(Counter(0), Config::default());
    assert_eq!(a.call(1), 1);
    let n = Arc::new(std::sync::atomic::AtomicU64::new(0));
    tracing::subscriber::with_default(Spans(n.clone()), || {
        assert_eq!(a.call(1), 2);
        assert_eq!(a.call(1), 3);
    });
    assert_eq!(n.load(Ordering::Relaxed), 2);
    assert_eq!(a.handled(), 3);
}
