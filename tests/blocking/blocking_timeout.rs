//! Timeouts of the blocking facade (invariants 4 and 6): a parked `send_timeout` returns by its
//! deadline with the frame even if no space is ever freed, leaves the queue without leaking
//! capacity, and — when it was at the head — lets the next sender in at once. The builder's
//! default send timeout applies to `send`.
//!
//! The peer is an in-process `mem://` pipe, paused so that no space is freed.

use std::thread;
use std::time::{Duration, Instant};

use tidegate::transport::mem::{MemListener, MemPeer};
use tidegate::{Client, SendError};

use crate::support::{self, MemSink, Verifier, Watchdog, frame, join_within, wait_until};

const LONG: Duration = Duration::from_secs(20);
/// How late a timeout may fire on a loaded machine.
const MARGIN: Duration = Duration::from_millis(500);
const CAPACITY: usize = 1024;

fn paused_client(prefix: &str, send_timeout: Option<Duration>) -> (MemListener, Client, MemPeer) {
    let listener = MemListener::bind(&support::unique_name(prefix)).unwrap();
    let mut builder = Client::builder().capacity(CAPACITY);
    if let Some(timeout) = send_timeout {
        builder = builder.send_timeout(timeout);
    }
    let client = builder.connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    peer.pause();
    (listener, client, peer)
}

/// Asserts that `result` is a timeout carrying `sent`, reached after `timeout` but not much later.
fn assert_timed_out(
    result: Result<(), SendError<tidegate::Bytes>>,
    sent: &[u8],
    start: Instant,
    timeout: Duration,
) {
    let elapsed = start.elapsed();
    match result {
        Err(SendError::Timeout(back)) => assert_eq!(back, sent, "the frame comes back whole"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(elapsed >= timeout, "returned early, after {elapsed:?}");
    assert!(elapsed <= timeout + MARGIN, "returned late, after {elapsed:?} (timeout {timeout:?})");
}

#[test]
fn send_timeout_fires_while_the_peer_never_reads_and_capacity_is_intact() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "send_timeout");
    let (_listener, client, peer) = paused_client("to-basic", None);
    client.send(frame(1, 0, CAPACITY)).unwrap();

    let timeout = Duration::from_millis(300);
    let waiting = frame(1, 1, 100);
    let start = Instant::now();
    let result = client.send_timeout(waiting.clone(), timeout);
    assert_timed_out(result, &waiting, start, timeout);
    let err = client.send_timeout(waiting.clone(), Duration::ZERO).unwrap_err();
    assert!(err.is_timeout() && !err.is_closed(), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");

    let stats = client.stats();
    assert_eq!(stats.waiters, 0, "the timed-out sender left the queue");
    assert_eq!((stats.frames_accepted, stats.buffered), (1, CAPACITY));
    assert_eq!(stats.sends_waited, 1);
    // The wait is counted from when the sender joined the line, a moment after the caller
    // set its deadline: a little less than the timeout, and never more than the caller waited.
    assert!(stats.wait_time >= timeout / 2, "{stats:?}");
    assert!(stats.wait_time <= start.elapsed(), "{stats:?}");

    // No capacity leaked: once the peer reads, a frame of the full capacity fits again.
    let sink = MemSink::start(peer, Verifier::allowing_gaps());
    sink.peer().resume();
    client.flush_timeout(LONG).unwrap();
    assert_eq!(client.stats().buffered, 0);
    client.send_timeout(frame(1, 2, CAPACITY), LONG).unwrap();
    client.flush_timeout(LONG).unwrap();
    let report = client.close_timeout(LONG).expect("close");
    assert!(report.is_clean(), "{report:?}");
    let seen = sink.finish(LONG);
    assert_eq!(seen.error, None);
    assert_eq!(seen.verifier.order, [(1, 0), (1, 2)], "the timed-out frame was never sent");
}

#[test]
fn concurrent_timeouts_each_fire_on_time() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "concurrent timeouts");
    let (_listener, client, peer) = paused_client("to-many", None);
    client.send(frame(9, 0, CAPACITY)).unwrap();
    // Deadlines out of arrival order, so they do not fire in queue order.
    let timeouts = [400u64, 100, 300, 200, 500].map(Duration::from_millis);
    let senders: Vec<_> = timeouts
        .iter()
        .enumerate()
        .map(|(id, &timeout)| {
            let client = client.clone();
            thread::spawn(move || {
                let sent = frame(id as u32, 0, 200);
                let start = Instant::now();
                let result = client.send_timeout(sent.clone(), timeout);
                assert_timed_out(result, &sent, start, timeout);
            })
        })
        .collect();
    for sender in senders {
        join_within(sender, LONG, "a timed sender");
    }
    let stats = client.stats();
    assert_eq!((stats.waiters, stats.buffered, stats.frames_accepted), (0, CAPACITY, 1));
    peer.resume();
    client.flush_timeout(LONG).unwrap();
    assert!(client.close_timeout(LONG).expect("close").is_clean());
}

#[test]
fn a_timed_out_head_lets_the_next_sender_in_at_once() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "head timeout");
    let (_listener, client, peer) = paused_client("to-head", None);
    client.send(frame(9, 0, 600)).unwrap();

    // The head wants 500 bytes (only 424 are free) and gives up after 200 ms.
    let head = {
        let client = client.clone();
        thread::spawn(move || {
            let sent = frame(0, 0, 500);
            let start = Instant::now();
            let timeout = Duration::from_millis(200);
            assert_timed_out(client.send_timeout(sent.clone(), timeout), &sent, start, timeout);
            Instant::now()
        })
    };
    assert!(wait_until(LONG, || client.stats().waiters == 1));
    // The next one would fit, but waits behind the head.
    let next = {
        let client = client.clone();
        thread::spawn(move || {
            client.send(frame(1, 0, 300)).unwrap();
            Instant::now()
        })
    };
    assert!(wait_until(LONG, || client.stats().waiters == 2));
    let head_gave_up = join_within(head, LONG, "the head");
    let next_got_in = join_within(next, LONG, "the next sender");
    // The peer is still paused: only the head leaving let the next one in.
    assert!(
        next_got_in.saturating_duration_since(head_gave_up) < MARGIN,
        "the next sender got in {:?} after the head gave up",
        next_got_in.saturating_duration_since(head_gave_up)
    );
    let stats = client.stats();
    assert_eq!((stats.waiters, stats.buffered, stats.bytes_written), (0, 900, 0));
    peer.resume();
    client.flush_timeout(LONG).unwrap();
    assert!(client.close_timeout(LONG).expect("close").is_clean());
}

#[test]
fn the_builders_send_timeout_applies_to_send() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "default send timeout");
    let timeout = Duration::from_millis(250);
    let (_listener, client, peer) = paused_client("to-default", Some(timeout));
    client.send(frame(1, 0, CAPACITY)).unwrap();
    let sent = frame(1, 1, 20);
    let start = Instant::now();
    assert_timed_out(client.send(sent.clone()), &sent, start, timeout);
    // io::Write goes through send too, and maps the timeout.
    let mut writer = client.clone();
    let start = Instant::now();
    let err = std::io::Write::write(&mut writer, b"more").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert!(start.elapsed() >= timeout && start.elapsed() <= timeout + MARGIN);
    // An explicit timeout overrides the default.
    let start = Instant::now();
    let long = Duration::from_millis(600);
    assert_timed_out(client.send_timeout(sent.clone(), long), &sent, start, long);
    assert_eq!(client.stats().waiters, 0);
    peer.resume();
    client.flush_timeout(LONG).unwrap();
    assert!(client.close_timeout(LONG).expect("close").is_clean());
}
