//! The async facade's futures are `FusedFuture`s, and `is_terminated` tells the truth: false
//! until the future has returned `Ready` (whether it waited or not), true after, for a success
//! and for every kind of error. `futures::select!` relies on it to skip a branch that already
//! completed; a future that never says it is done would be polled again, and panic.

use std::task::Context;
use std::time::Duration;

use futures::FutureExt;
use futures::future::FusedFuture;
use tidegate::transport::mem::{MemListener, MemPeer};
use tidegate::{AsyncClient, SendError};

use crate::support::{Watchdog, unique_name};

const WAIT: Duration = Duration::from_secs(5);
const WATCHDOG: Duration = Duration::from_secs(60);

fn connect(name: &str, capacity: usize) -> (MemListener, AsyncClient, MemPeer) {
    let listener = MemListener::bind(&unique_name(name)).unwrap();
    let connecting = AsyncClient::builder().capacity(capacity).connect(&listener.url());
    let client = futures::executor::block_on(connecting).unwrap();
    let peer = listener.accept_timeout(WAIT).unwrap();
    (listener, client, peer)
}

#[test]
fn a_send_is_terminated_once_it_completes_at_once() {
    let _watchdog = Watchdog::new(WATCHDOG, "a fused send that fits");
    let (_listener, client, _peer) = connect("fused-send-fits", 64);
    let mut send = client.send("fits");
    assert!(!send.is_terminated(), "not polled yet");
    futures::executor::block_on(&mut send).unwrap();
    assert!(send.is_terminated(), "it returned Ready(Ok)");
}

#[test]
fn a_send_that_waited_is_terminated_only_once_accepted() {
    let _watchdog = Watchdog::new(WATCHDOG, "a fused send that waits");
    let (_listener, client, peer) = connect("fused-send-waits", 4);
    peer.pause();
    client.try_send("full").unwrap();
    let mut send = client.send("next");
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    assert!(send.poll_unpin(&mut cx).is_pending());
    assert!(send.is_queued());
    assert!(!send.is_terminated(), "pending in line");
    peer.resume();
    futures::executor::block_on(&mut send).unwrap();
    assert!(send.is_terminated(), "accepted after waiting");
}

#[test]
fn a_send_that_failed_is_terminated() {
    let _watchdog = Watchdog::new(WATCHDOG, "a fused send that fails");
    let (_listener, client, peer) = connect("fused-send-fails", 4);
    peer.pause();
    client.try_send("full").unwrap();

    // Too large: refused at the first poll.
    let mut too_large = client.send("far too large");
    let refused = futures::executor::block_on(&mut too_large);
    assert!(matches!(refused, Err(SendError::TooLarge { .. })), "{refused:?}");
    assert!(too_large.is_terminated(), "it returned Ready(Err(TooLarge))");

    // Timed out after waiting in line.
    let mut late = client.send_timeout("late", Duration::from_millis(20));
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    assert!(late.poll_unpin(&mut cx).is_pending());
    assert!(!late.is_terminated(), "pending until its deadline");
    let timed_out = futures::executor::block_on(&mut late);
    assert!(matches!(&timed_out, Err(SendError::Timeout(f)) if f == "late"), "{timed_out:?}");
    assert!(late.is_terminated(), "it returned Ready(Err(Timeout))");

    // Closed while waiting.
    let mut closed = client.send("shut");
    assert!(closed.poll_unpin(&mut cx).is_pending());
    let report = futures::executor::block_on(client.close_timeout(Duration::ZERO)).unwrap();
    assert_eq!(report.unsent().len(), 1);
    assert!(!closed.is_terminated(), "the outcome is not collected yet");
    let result = futures::executor::block_on(&mut closed);
    assert!(matches!(&result, Err(SendError::Closed(f)) if f == "shut"), "{result:?}");
    assert!(closed.is_terminated(), "it returned Ready(Err(Closed))");
}

#[test]
fn select_skips_a_send_that_already_completed() {
    let _watchdog = Watchdog::new(WATCHDOG, "select over a fused send");
    let (_listener, client, _peer) = connect("fused-send-select", 64);
    futures::executor::block_on(async {
        let mut send = client.send("once");
        let mut flush_after = false;
        // The first round completes the send; the second must not poll it again.
        for _ in 0..2 {
            futures::select! {
                sent = send => sent.unwrap(),
                () = futures::future::ready(()).fuse() => flush_after = true,
            }
        }
        assert!(send.is_terminated());
        assert!(flush_after, "the other branch ran once the send was done");
        let mut flush = client.flush_timeout(WAIT);
        assert!(!flush.is_terminated());
        (&mut flush).await.unwrap();
        assert!(flush.is_terminated());
    });
}

#[test]
fn a_flush_and_a_receive_are_terminated_once_they_complete() {
    let _watchdog = Watchdog::new(WATCHDOG, "fused flush and receive");
    let (_listener, client, peer) = connect("fused-flush-recv", 64);
    futures::executor::block_on(async {
        client.send("x").await.unwrap();
        let mut flush = client.flush_timeout(WAIT);
        assert!(!flush.is_terminated());
        (&mut flush).await.unwrap();
        assert!(flush.is_terminated());

        let mut recv = client.recv_timeout(WAIT);
        assert!(!recv.is_terminated());
        peer.write(b"hello");
        let got = (&mut recv).await.unwrap();
        assert_eq!(got.as_deref(), Some(&b"hello"[..]));
        assert!(recv.is_terminated());

        let mut close = client.close_timeout(WAIT);
        assert!(!close.is_terminated());
        assert!((&mut close).await.unwrap().is_clean());
        assert!(close.is_terminated());
    });
}
