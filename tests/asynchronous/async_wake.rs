//! Wake-ups of the async facade's futures, observed with a hand-made waker that counts them.
//!
//! Proves invariant 5 (no lost wake-up, no spinning) at the level of the `Future` contract: a
//! pending future is not woken while the peer is stalled, and is woken exactly when its
//! operation can complete — space granted, deadline passed, disconnect, data written — always
//! through the waker of its latest poll. No executor is involved: the tests poll by hand.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use futures::Sink;
use tidegate_async::{AsyncClient, Bytes, DisconnectKind, SendError};
use tidegate_core::transport::mem::{MemListener, MemPeer};

use crate::support::{WakeCounter, unique_name};

const LONG: Duration = Duration::from_secs(10);
/// How long a stalled future is watched for a wake-up that must not come.
const QUIET: Duration = Duration::from_millis(100);

/// Waits until the counter reaches `n`, for at most [`LONG`]. Returns whether it did.
fn wait_for_count(counter: &WakeCounter, n: usize) -> bool {
    let end = Instant::now() + LONG;
    while counter.count() < n {
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
    true
}

fn poll_once<F: Future + Unpin>(fut: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(waker))
}

/// A client with a full buffer of `capacity` bytes and a paused peer.
fn stalled(name: &str, capacity: usize) -> (AsyncClient, MemPeer, MemListener) {
    let listener = MemListener::bind(&unique_name(name)).unwrap();
    let connecting = AsyncClient::builder().capacity(capacity).connect(&listener.url());
    let client = futures::executor::block_on(connecting).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    peer.pause();
    client.try_send(vec![1; capacity]).unwrap();
    (client, peer, listener)
}

#[test]
fn a_waiting_send_is_woken_once_when_space_is_granted_and_not_before() {
    let (client, peer, _listener) = stalled("wake-granted", 64);
    let (counter, waker) = WakeCounter::new();

    let mut send = client.send(vec![2; 16]);
    assert!(poll_once(&mut send, &waker).is_pending());
    thread::sleep(QUIET);
    assert_eq!(counter.count(), 0, "woken while the peer was stalled");
    // A spurious poll changes nothing and does not wake either.
    assert!(poll_once(&mut send, &waker).is_pending());
    thread::sleep(QUIET);
    assert_eq!(counter.count(), 0);

    peer.resume();
    assert!(wait_for_count(&counter, 1), "not woken after space was granted");
    assert!(matches!(poll_once(&mut send, &waker), Poll::Ready(Ok(()))));
    // The peer goes on draining; that must not wake a completed send again.
    thread::sleep(QUIET);
    assert_eq!(counter.count(), 1);
}

#[test]
fn only_the_waker_of_the_latest_poll_is_woken() {
    let (client, peer, _listener) = stalled("wake-latest", 64);
    let (first, first_waker) = WakeCounter::new();
    let (second, second_waker) = WakeCounter::new();

    let mut send = client.send(vec![2; 16]);
    assert!(poll_once(&mut send, &first_waker).is_pending());
    // As when an executor moves the task to another thread.
    assert!(poll_once(&mut send, &second_waker).is_pending());
    peer.resume();
    assert!(wait_for_count(&second, 1));
    assert_eq!(first.count(), 0, "the replaced waker was woken");
    assert!(matches!(poll_once(&mut send, &second_waker), Poll::Ready(Ok(()))));
}

#[test]
fn a_deadline_wakes_the_sender_though_no_space_is_ever_freed() {
    const TIMEOUT: Duration = Duration::from_millis(200);
    let (client, _peer, _listener) = stalled("wake-deadline", 64);
    let (counter, waker) = WakeCounter::new();

    let start = Instant::now();
    let mut send = client.send_timeout(vec![2; 16], TIMEOUT);
    assert!(poll_once(&mut send, &waker).is_pending());
    // Nothing but the driver's deadline can wake it.
    assert!(wait_for_count(&counter, 1), "the deadline never woke the sender");
    let woke = start.elapsed();
    assert!(woke >= TIMEOUT, "woken after {woke:?}, before the deadline");
    match poll_once(&mut send, &waker) {
        Poll::Ready(Err(SendError::Timeout(frame))) => assert_eq!(frame, vec![2; 16]),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(client.stats().waiters, 0);
    assert_eq!(counter.count(), 1);
}

#[test]
fn a_disconnect_wakes_every_waiting_sender() {
    let (client, peer, _listener) = stalled("wake-disconnect", 64);
    let wakers: Vec<_> = (0..3).map(|_| WakeCounter::new()).collect();
    let mut sends: Vec<_> = (0..3u8).map(|i| client.send(vec![i; 8])).collect();
    for (send, (_, waker)) in sends.iter_mut().zip(&wakers) {
        assert!(poll_once(send, waker).is_pending());
    }
    thread::sleep(QUIET);
    assert!(wakers.iter().all(|(c, _)| c.count() == 0));

    peer.reset();
    for ((i, send), (counter, waker)) in sends.iter_mut().enumerate().zip(&wakers) {
        assert!(wait_for_count(counter, 1), "sender {i} not woken by the disconnect");
        match poll_once(send, waker) {
            Poll::Ready(Err(SendError::Disconnected { frame, cause })) => {
                assert_eq!(frame, vec![i as u8; 8]);
                assert_eq!(cause.kind(), DisconnectKind::Reset);
            }
            other => panic!("expected Disconnected, got {other:?}"),
        }
    }
}

#[test]
fn a_flush_is_woken_when_the_bytes_are_written_and_not_before() {
    let (client, peer, _listener) = stalled("wake-flush", 64);
    let (counter, waker) = WakeCounter::new();

    let mut flush = client.flush();
    assert!(poll_once(&mut flush, &waker).is_pending());
    thread::sleep(QUIET);
    assert_eq!(counter.count(), 0, "woken while nothing was written");

    peer.resume();
    let mut buf = [0u8; 64];
    let mut read = 0;
    while read < 64 {
        read += peer.read_timeout(&mut buf, LONG).unwrap();
    }
    assert!(wait_for_count(&counter, 1), "not woken after the bytes were written");
    assert!(matches!(poll_once(&mut flush, &waker), Poll::Ready(Ok(()))));
}

#[test]
fn a_close_is_woken_when_its_drain_time_runs_out() {
    let (client, _peer, _listener) = stalled("wake-close", 64);
    let (counter, waker) = WakeCounter::new();
    // A sender waiting when the close starts gets its frame back at once.
    let (sender, sender_waker) = WakeCounter::new();
    let mut send = client.send(vec![2; 8]);
    assert!(poll_once(&mut send, &sender_waker).is_pending());

    let mut close = client.close_timeout(Duration::from_millis(100));
    assert!(poll_once(&mut close, &waker).is_pending(), "the stalled peer cannot drain");
    assert!(wait_for_count(&sender, 1));
    assert!(matches!(poll_once(&mut send, &sender_waker), Poll::Ready(Err(SendError::Closed(_)))));

    assert!(wait_for_count(&counter, 1), "not woken when the close timed out");
    let report = loop {
        // The wake-up may come from an earlier phase change; poll until the report is there.
        match poll_once(&mut close, &waker) {
            Poll::Ready(report) => break report.unwrap(),
            Poll::Pending => {
                let seen = counter.count();
                assert!(wait_for_count(&counter, seen + 1), "the close was never finished");
            }
        }
    };
    assert!(report.timed_out());
    assert_eq!(report.unsent().len(), 1);
    assert_eq!(report.unsent()[0].frame(), &vec![1; 64]);
}

#[test]
fn the_sink_is_woken_when_its_waiting_frame_is_accepted() {
    let (client, peer, _listener) = stalled("wake-sink", 64);
    let (counter, waker) = WakeCounter::new();
    let mut cx = Context::from_waker(&waker);
    let mut sink = client.sink();

    assert!(matches!(Pin::new(&mut sink).poll_ready(&mut cx), Poll::Ready(Ok(()))));
    Pin::new(&mut sink).start_send(Bytes::from(vec![2; 16])).unwrap();
    assert!(Pin::new(&mut sink).poll_ready(&mut cx).is_pending());
    thread::sleep(QUIET);
    assert_eq!(counter.count(), 0, "woken while the peer was stalled");

    peer.resume();
    assert!(wait_for_count(&counter, 1), "not woken after space was granted");
    assert!(matches!(Pin::new(&mut sink).poll_ready(&mut cx), Poll::Ready(Ok(()))));
    assert!(!sink.has_pending());
    // Nothing is lost when the sink is dropped now: the frame was accepted.
    drop(sink);
    assert_eq!(client.stats().frames_accepted, 2);
}
