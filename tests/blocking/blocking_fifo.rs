//! Strict FIFO without barging (invariant 2) through the blocking facade: senders parked on a
//! full buffer are served in the order they arrived, and a newcomer — `try_send` or a blocking
//! `send` — never overtakes a waiting sender, even when its own frame would fit.
//!
//! The peer is an in-process `mem://` pipe that is paused, so the arrival order is known: each
//! sender starts only once the previous one is counted in `stats().waiters`.

use std::thread;
use std::time::{Duration, Instant};

use tidegate::transport::mem::{MemListener, MemPeer};
use tidegate::{Client, SendError, TrySendError};

use crate::support::{self, MemSink, Verifier, Watchdog, frame, join_within, wait_until};

const LONG: Duration = Duration::from_secs(20);
const CAPACITY: usize = 1000;
/// The producer id of the frame that fills the buffer first.
const FILLER: u32 = 100;

fn paused_client(prefix: &str) -> (MemListener, Client, MemPeer) {
    let listener = MemListener::bind(&support::unique_name(prefix)).unwrap();
    let client = Client::builder().capacity(CAPACITY).connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    peer.pause();
    (listener, client, peer)
}

/// Starts a sender of `frame(id, 0, len)` and waits until it is parked behind the others.
fn park_sender(client: &Client, id: u32, len: usize) -> thread::JoinHandle<()> {
    let before = client.stats().waiters;
    let sender = client.clone();
    let handle = thread::spawn(move || sender.send(frame(id, 0, len)).expect("send"));
    assert!(
        wait_until(LONG, || client.stats().waiters == before + 1),
        "sender {id} should wait; stats: {:?}",
        client.stats()
    );
    handle
}

#[test]
fn waiting_senders_are_served_in_arrival_order() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "fifo order");
    let (_listener, client, peer) = paused_client("fifo-order");
    client.send(frame(FILLER, 0, 600)).unwrap();

    // Large and small frames mixed: the small ones would fit beside the filler, but must wait
    // behind the large ones that arrived before them.
    let lens = [500, 16, 300, 16, 1000, 50, 400, 16, 999, 20];
    let senders: Vec<_> =
        lens.iter().enumerate().map(|(id, &len)| park_sender(&client, id as u32, len)).collect();
    assert_eq!(client.stats().waiters, lens.len());
    assert_eq!(client.stats().frames_accepted, 1, "no waiter got in past the stalled peer");

    let sink = MemSink::start(peer, Verifier::new());
    sink.peer().resume();
    for sender in senders {
        join_within(sender, LONG, "a sender");
    }
    client.flush_timeout(LONG).unwrap();
    let report = client.close_timeout(LONG).expect("close");
    assert!(report.is_clean(), "{report:?}");

    let seen = sink.finish(LONG);
    assert_eq!(seen.error, None);
    let expected: Vec<(u32, u64)> =
        std::iter::once((FILLER, 0)).chain((0..lens.len() as u32).map(|id| (id, 0))).collect();
    assert_eq!(seen.verifier.order, expected, "frames must leave in arrival order");
}

#[test]
fn try_send_is_full_while_anyone_waits_even_if_the_frame_fits() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "fifo try_send");
    let (_listener, client, peer) = paused_client("fifo-try");
    client.send(frame(FILLER, 0, 600)).unwrap();
    // Without waiters, a frame that fits goes in at once.
    client.try_send(frame(FILLER, 1, 100)).unwrap();
    let big = park_sender(&client, 0, 500);

    // 300 bytes are free, and a 16-byte frame would fit: refused all the same.
    let stats = client.stats();
    assert!(stats.buffered + 16 <= CAPACITY, "{stats:?}");
    let small = frame(7, 0, 16);
    match client.try_send(small.clone()) {
        Err(TrySendError::Full(back)) => assert_eq!(back, small, "the frame comes back"),
        other => panic!("try_send must not pass a waiting sender: {other:?}"),
    }
    let err = client.try_send(small.clone()).unwrap_err();
    assert!(err.is_full() && !err.is_closed());
    assert_eq!(err.to_string(), "the outgoing buffer is full");

    // A blocking newcomer with a fitting frame queues behind the waiter too.
    let start = Instant::now();
    match client.send_timeout(small.clone(), Duration::from_millis(100)) {
        Err(SendError::Timeout(back)) => assert_eq!(back, small),
        other => panic!("a blocking send must not pass a waiting sender: {other:?}"),
    }
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert_eq!(client.stats().waiters, 1, "the timed-out newcomer left the queue");
    assert_eq!(client.stats().frames_accepted, 2);

    let sink = MemSink::start(peer, Verifier::allowing_gaps());
    sink.peer().resume();
    join_within(big, LONG, "the waiting sender");
    assert!(wait_until(LONG, || client.stats().buffered == 0));
    // Nobody waits any more: try_send goes straight in again.
    client.try_send(small).unwrap();
    let report = client.close_timeout(LONG).expect("close");
    assert!(report.is_clean(), "{report:?}");

    let seen = sink.finish(LONG);
    assert_eq!(seen.error, None);
    assert_eq!(seen.verifier.order, [(FILLER, 0), (FILLER, 1), (0, 0), (7, 0)]);
}

#[test]
fn fifo_holds_over_many_rounds_of_waiting() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "fifo rounds");
    let (_listener, client, peer) = paused_client("fifo-rounds");
    let sink = MemSink::start(peer, Verifier::new());
    let mut expected = Vec::new();
    for round in 0..5u64 {
        // Let the previous round drain, then stall: the filler stays in the buffer.
        assert!(wait_until(LONG, || client.stats().buffered == 0));
        sink.peer().pause();
        client.send(frame(FILLER, round, CAPACITY)).unwrap();
        expected.push((FILLER, round));
        let senders: Vec<_> = (0..6u32)
            .map(|id| {
                let len = 16 + ((id as usize * 37 + round as usize * 101) % 900);
                let before = client.stats().waiters;
                let sender = client.clone();
                let handle =
                    thread::spawn(move || sender.send(frame(id, round, len)).expect("send"));
                assert!(wait_until(LONG, || client.stats().waiters == before + 1));
                expected.push((id, round));
                handle
            })
            .collect();
        sink.peer().resume();
        for sender in senders {
            join_within(sender, LONG, "a sender");
        }
    }
    client.flush_timeout(LONG).unwrap();
    let report = client.close_timeout(LONG).expect("close");
    assert!(report.is_clean(), "{report:?}");
    let seen = sink.finish(LONG);
    assert_eq!(seen.error, None);
    assert_eq!(seen.verifier.order, expected);
}
