//! Cancelling a queued send after its outcome arrived but before the sender collected it (the
//! driver fired its deadline, or a close failed it, and nobody polled since): `SendOp::cancel`
//! must hand the frame back, exactly as polling would have in the error (invariant 4: the
//! frame is returned to the caller). Only an accepted frame is not returned; it is sent.
//!
//! Each test queues one send behind a paused `mem://` peer, polls it once with a counting
//! waker, waits (bounded) until the connection shows the outcome and the waker was woken,
//! and only then cancels.

use std::time::{Duration, Instant};

use tidegate::transport::mem::{MemListener, MemPeer};
use tidegate::{Bytes, Config, Connection};

use crate::support::{WakeCounter, Watchdog, unique_name, wait_until};

const WAIT: Duration = Duration::from_secs(5);
const WATCHDOG: Duration = Duration::from_secs(60);

/// A connection with a full 4-byte buffer and a paused peer.
fn full(name: &str) -> (MemListener, Connection, MemPeer) {
    let listener = MemListener::bind(&unique_name(name)).unwrap();
    let conn = Connection::open(&listener.url(), Config::new().capacity(4)).unwrap();
    let peer = listener.accept_timeout(WAIT).unwrap();
    peer.pause();
    conn.try_send(Bytes::from_static(b"full")).unwrap();
    (listener, conn, peer)
}

/// Waits until the send woken through `counter` has its outcome: it left the line and was
/// woken once.
fn wait_for_outcome(conn: &Connection, counter: &WakeCounter) {
    let ended = wait_until(WAIT, || conn.stats().waiters == 0 && counter.count() == 1);
    assert!(ended, "the send never got its outcome: {:?}, {} wakes", conn.stats(), counter.count());
}

#[test]
fn cancelling_a_send_whose_deadline_fired_returns_its_frame() {
    let _watchdog = Watchdog::new(WATCHDOG, "cancel after a timeout");
    let (_listener, conn, _peer) = full("cancel-after-timeout");
    let frame = Bytes::from_static(b"late");
    let mut op = conn.send(frame.clone(), Some(Instant::now() + Duration::from_millis(20)));
    let (counter, waker) = WakeCounter::new();
    assert!(op.poll_with(&waker).is_pending());
    assert!(op.is_queued());
    // The driver fires the deadline; the send is not polled again.
    wait_for_outcome(&conn, &counter);
    assert!(op.is_queued(), "the outcome is not collected yet");
    assert_eq!(op.cancel(), Some(frame), "the timed-out frame comes back");
    let stats = conn.stats();
    assert_eq!((stats.frames_accepted, stats.buffered), (1, 4), "{stats:?}");
}

#[test]
fn cancelling_a_send_that_a_close_failed_returns_its_frame() {
    let _watchdog = Watchdog::new(WATCHDOG, "cancel after a close");
    let (_listener, conn, _peer) = full("cancel-after-close");
    let frame = Bytes::from_static(b"shut");
    let mut op = conn.send(frame.clone(), None);
    let (counter, waker) = WakeCounter::new();
    assert!(op.poll_with(&waker).is_pending());
    let report = futures::executor::block_on(conn.close(Duration::ZERO));
    let unsent: Vec<&Bytes> = report.unsent().iter().map(|u| u.frame()).collect();
    assert_eq!(unsent, [&Bytes::from_static(b"full")], "only the accepted frame is reported");
    wait_for_outcome(&conn, &counter);
    assert_eq!(op.cancel(), Some(frame), "the frame the close refused comes back");
}

#[test]
fn cancelling_a_send_that_was_accepted_returns_nothing_and_it_is_sent() {
    let _watchdog = Watchdog::new(WATCHDOG, "cancel after a grant");
    let (_listener, conn, peer) = full("cancel-after-grant");
    let mut op = conn.send(Bytes::from_static(b"next"), None);
    let (counter, waker) = WakeCounter::new();
    assert!(op.poll_with(&waker).is_pending());
    peer.resume();
    wait_for_outcome(&conn, &counter);
    assert_eq!(op.cancel(), None, "an accepted frame is not the caller's any more");
    futures::executor::block_on(conn.flush(Some(Instant::now() + WAIT))).unwrap();
    let mut wire = Vec::new();
    let mut buf = [0u8; 16];
    while wire.len() < 8 {
        let n = peer.read_timeout(&mut buf, WAIT).unwrap();
        wire.extend_from_slice(&buf[..n]);
    }
    assert_eq!(wire, b"fullnext");
    assert_eq!(counter.count(), 1, "woken once, at the grant");
}
