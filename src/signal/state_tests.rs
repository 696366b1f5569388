use super::*;
use crate::signal::{SIGCHLD, SIGUSR1, SIGUSR2};

fn info(signo: u32, value: u64) -> SigInfo {
    SigInfo {
        signo,
        value,
        ..Default::default()
    }
}

fn handler(s: &mut SignalState, sig: u32) {
    s.set_action(
        sig,
        Some(KSigaction {
            handler: 0x1000,
            ..Default::default()
        }),
    );
}

#[test]
fn realtime_signals_queue_standard_ones_merge() {
    let mut s = SignalState::default();
    s.add_thread(10, !0, true);
    for v in 1..=3 {
        s.send(Target::Process, info(SIGRTMIN + 1, v)).unwrap();
        s.send(Target::Process, info(SIGUSR1, v)).unwrap();
    }
    let set = sig_bit(SIGRTMIN + 1) | sig_bit(SIGUSR1);
    let got: Vec<_> = std::iter::from_fn(|| s.dequeue(10, set))
        .map(|i| (i.signo, i.value))
        .collect();
    assert_eq!(
        got,
        [
            (SIGUSR1, 1),
            (SIGRTMIN + 1, 1),
            (SIGRTMIN + 1, 2),
            (SIGRTMIN + 1, 3)
        ]
    );
}

#[test]
fn process_signals_go_to_a_thread_that_does_not_block_them() {
    let mut s = SignalState::default();
    s.add_thread(10, sig_bit(SIGUSR1), true);
    s.add_thread(11, 0, false);
    handler(&mut s, SIGUSR1);
    assert_eq!(s.send(Target::Process, info(SIGUSR1, 0)), Ok(Some(11)));
    assert_eq!(s.take_deliverable(10), None);
    assert!(matches!(
        s.take_deliverable(11),
        Some(Disposal::Handle { .. })
    ));
    // The handler's mask now blocks SIGUSR1 on 11 too: nobody wants the next one.
    assert_eq!(s.send(Target::Process, info(SIGUSR1, 0)), Ok(None));
    assert!(!s.any_deliverable());
}

#[test]
fn thread_signals_stay_with_their_thread() {
    let mut s = SignalState::default();
    s.add_thread(10, 0, true);
    s.add_thread(11, 0, false);
    handler(&mut s, SIGUSR2);
    assert_eq!(s.send(Target::Thread(11), info(SIGUSR2, 0)), Ok(Some(11)));
    assert_eq!(s.take_deliverable(10), None);
    assert_eq!(s.owed(), vec![11]);
    assert!(matches!(
        s.take_deliverable(11),
        Some(Disposal::Handle { old_mask: 0, .. })
    ));
    assert_eq!(s.mask(11), sig_bit(SIGUSR2));
    assert_eq!(
        s.send(Target::Thread(12), info(SIGUSR2, 0)),
        Err(Errno::ESRCH)
    );
}

#[test]
fn ignored_signals_are_dropped_unless_blocked() {
    let mut s = SignalState::default();
    s.add_thread(10, 0, true);
    assert_eq!(s.send(Target::Process, info(SIGCHLD, 0)), Ok(None));
    assert_eq!(s.pending_for(10), 0);
    s.set_mask(10, MaskOp::Block(sig_bit(SIGCHLD)));
    s.send(Target::Process, info(SIGCHLD, 0)).unwrap();
    assert_eq!(s.pending_for(10), sig_bit(SIGCHLD));
    // Unblocked, its default (ignore) discards it on the way.
    s.set_mask(10, MaskOp::Set(0));
    assert_eq!(s.take_deliverable(10), None);
    assert_eq!(s.pending_for(10), 0);
    // A fatal default kills; SIGKILL ignores the mask.
    s.set_mask(10, MaskOp::Set(!0));
    s.send(Target::Process, info(SIGKILL, 0)).unwrap();
    assert_eq!(s.take_deliverable(10), Some(Disposal::Kill(SIGKILL)));
}
