//! Half-closed connections and how a close ended (invariant 10: the peer's end of stream ends
//! only the receive side; a close ends our write side and waits for the peer's end).
//!
//! This module uses the API of the new close path — `Client::shutdown_write` and
//! `CloseReport::ending` with `tidegate::Ending`; the peer tests that need neither are in the
//! other modules of the `peers` test crate.
//!
//! - A `socat` peer that sends a greeting, half-closes (FIN) and keeps reading: `recv` returns
//!   the greeting, then `Ok(None)`; sending goes on working, and after the close the peer has
//!   every byte; the close ended `Clean`.
//! - `shutdown_write`: a peer that answers once it has read our end gets to answer, and the
//!   client receives the answer, then `Ok(None)`.
//! - A peer that reads our end but never ends its own: the close reports `PeerKeptOpen`.
//! - A peer that resets once it has read our end: the close reports `ResetAfterEnd`, and the
//!   peer still had every byte.
//! - A split client, on both facades: the sending half's close is a half-close the peer
//!   answers, the receiving half reads the answer to the end, and its close ends `Clean`.
//!
//! The socat test is skipped without `socat` (Debian package `socat`), except under `CI=true`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use tidegate::{Client, Config, Ending};

use crate::support::peers::{Socat, require_binary};
use crate::support::{self, Verifier, Watchdog, frame, join_within};

const LONG: Duration = Duration::from_secs(20);
const WATCHDOG: Duration = Duration::from_secs(90);

fn config() -> Config {
    Config::new().capacity(64 * 1024).send_timeout(LONG).close_timeout(LONG)
}

/// Sends frames `from..to` of producer 0, 64 to ~1 KiB each; returns the bytes.
fn send_frames(client: &Client, from: u64, to: u64) -> u64 {
    let mut bytes = 0;
    for seq in from..to {
        let len = 64 + (seq as usize * 37) % 1000;
        client.send(frame(0, seq, len)).expect("send");
        bytes += len as u64;
    }
    bytes
}

/// A plain peer: reads until our end of stream, then does `then` with the stream. Returns
/// what it read.
fn peer_reading_to_our_end(
    then: impl FnOnce(TcpStream, &[u8]) + Send + 'static,
) -> (String, thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("tcp://{}", listener.local_addr().unwrap());
    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream.set_read_timeout(Some(LONG)).unwrap();
        let mut received = Vec::new();
        stream.read_to_end(&mut received).expect("read to the client's end");
        then(stream, &received);
        received
    });
    (url, handle)
}

fn assert_frames(received: &[u8], frames: u64) {
    let mut verifier = Verifier::new();
    assert_eq!(verifier.feed(received), Ok(()), "whole frames, in order");
    assert_eq!(verifier.frames, frames, "every frame arrived");
    assert!(verifier.at_boundary());
}

#[test]
fn a_peer_that_half_closes_ends_only_the_receive_side() {
    if !require_binary("socat", "socat") {
        return;
    }
    let _watchdog = Watchdog::new(WATCHDOG, "the half-closing peer test");
    let peer = Socat::half_closing("hello");
    let client = Client::builder().config(config()).connect(&peer.url()).expect("connect");
    let mut sent = send_frames(&client, 0, 500);

    let mut greeting = Vec::new();
    let ended = loop {
        match client.recv_timeout(LONG) {
            Ok(Some(chunk)) => greeting.extend_from_slice(&chunk),
            other => break other,
        }
    };
    assert_eq!(greeting, b"hello");
    assert!(matches!(ended, Ok(None)), "the peer's end of stream: {ended:?}");
    assert!(!client.connection().is_closed(), "a half-close leaves the connection open");

    sent += send_frames(&client, 500, 1_000);
    client.flush_timeout(LONG).expect("the write side still works after the peer's FIN");
    let report = client.close().expect("close");
    let received = peer.finish(LONG);

    assert_eq!(received.len() as u64, sent, "the peer received every byte");
    assert_frames(&received, 1_000);
    assert_eq!(report.ending(), Ending::Clean, "{report:?}");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.bytes_written(), sent);
}

#[test]
fn shutdown_write_lets_the_peer_answer_our_end() {
    let _watchdog = Watchdog::new(WATCHDOG, "the shutdown_write test");
    let (url, peer) = peer_reading_to_our_end(|mut stream, received| {
        let answer = format!("read {} bytes", received.len());
        stream.write_all(answer.as_bytes()).expect("answer");
    });
    let client = Client::builder().config(config()).connect(&url).expect("connect");
    let sent = send_frames(&client, 0, 300);
    client.shutdown_write().expect("end our write side");

    let mut answer = Vec::new();
    let ended = loop {
        match client.recv_timeout(LONG) {
            Ok(Some(chunk)) => answer.extend_from_slice(&chunk),
            other => break other,
        }
    };
    assert_eq!(String::from_utf8_lossy(&answer), format!("read {sent} bytes"));
    assert!(matches!(ended, Ok(None)), "{ended:?}");
    let received = join_within(peer, LONG, "the peer");
    assert_frames(&received, 300);
    let report = client.close().expect("close");
    assert_eq!(report.ending(), Ending::Clean, "{report:?}");
    assert_eq!(report.bytes_written(), sent);
}

#[test]
fn a_peer_that_never_ends_its_side_is_reported_as_kept_open() {
    let _watchdog = Watchdog::new(WATCHDOG, "the kept-open test");
    let (release, released) = mpsc::channel::<()>();
    let (url, peer) = peer_reading_to_our_end(move |stream, _| {
        // Holds the connection open until the test is done.
        let _ = released.recv_timeout(LONG);
        drop(stream);
    });
    let client = Client::builder().config(config()).connect(&url).expect("connect");
    let sent = send_frames(&client, 0, 300);
    let report = client.close_timeout(Duration::from_millis(300)).expect("close");
    release.send(()).unwrap();
    let received = join_within(peer, LONG, "the peer");

    assert_frames(&received, 300);
    assert_eq!(report.ending(), Ending::PeerKeptOpen, "{report:?}");
    assert!(!report.is_clean(), "{report:?}");
    assert!(report.unsent().is_empty(), "everything was written: {report:?}");
    assert_eq!(report.bytes_written(), sent);
}

#[test]
fn a_peer_that_resets_after_our_end_is_reported_as_reset_after_end() {
    let _watchdog = Watchdog::new(WATCHDOG, "the reset-after-end test");
    let (url, peer) = peer_reading_to_our_end(|stream, _| {
        // Unread data of its own is not needed: SO_LINGER 0 makes the close a reset.
        support::reset(stream);
    });
    let client = Client::builder().config(config()).connect(&url).expect("connect");
    let sent = send_frames(&client, 0, 300);
    let report = client.close().expect("close");
    let received = join_within(peer, LONG, "the peer");

    assert_frames(&received, 300);
    assert_eq!(report.ending(), Ending::ResetAfterEnd, "{report:?}");
    assert!(!report.is_clean(), "{report:?}");
    assert_eq!(report.bytes_written(), sent);
}

#[test]
fn the_halves_of_a_split_client_close_independently() {
    let _watchdog = Watchdog::new(WATCHDOG, "the split test");
    for asynchronous in [false, true] {
        let (url, peer) = peer_reading_to_our_end(|mut stream, received| {
            stream.write_all(format!("read {} bytes", received.len()).as_bytes()).expect("answer");
        });
        let (answer, report, late) = if asynchronous {
            futures::executor::block_on(async {
                let client = tidegate::AsyncClient::connect(&url).await.expect("connect");
                let (tx, rx) = client.into_split();
                tx.send("question").await.unwrap();
                // The sending half's close is a half-close: the receiving half goes on.
                tx.close().await.unwrap();
                let late = tx.send("late").await.unwrap_err();
                let mut answer = Vec::new();
                while let Some(chunk) = rx.recv_timeout(LONG).await.unwrap() {
                    answer.extend_from_slice(&chunk);
                }
                (answer, rx.close().await.unwrap(), late)
            })
        } else {
            let client = Client::builder().config(config()).connect(&url).expect("connect");
            let (tx, rx) = client.into_split();
            tx.send("question").unwrap();
            tx.close().unwrap();
            let late = tx.send("late").unwrap_err();
            let mut answer = Vec::new();
            while let Some(chunk) = rx.recv_timeout(LONG).unwrap() {
                answer.extend_from_slice(&chunk);
            }
            (answer, rx.close().unwrap(), late)
        };
        assert!(late.is_closed(), "{late:?}");
        assert_eq!(late.into_inner(), "late");
        assert_eq!(String::from_utf8_lossy(&answer), "read 8 bytes", "async: {asynchronous}");
        assert_eq!(join_within(peer, LONG, "the peer"), b"question");
        assert_eq!(report.ending(), Ending::Clean, "{report:?}");
    }
}
