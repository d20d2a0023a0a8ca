//! The two facades have the same names and error shapes: one program, written once, runs
//! against a blocking `Client` and an `AsyncClient` and puts the same bytes on the wire. Also
//! the async facade's owned send future, spawned on tokio, and its sink, which leaves the
//! connection open when a `forward` ends.

use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use tidegate::transport::mem::{MemListener, MemPeer};
use tidegate::{AsyncClient, Bytes, Client, CloseReport, FrameBatch, SendError};

use crate::support::{self, Watchdog};

const LONG: Duration = Duration::from_secs(20);

/// A call of the blocking facade: it returns when done.
macro_rules! now {
    ($call:expr) => {
        $call
    };
}

/// A call of the async facade: a future to await.
macro_rules! later {
    ($call:expr) => {
        $call.await
    };
}

/// The program both facades run: every deadline form, batches, a half-close and a close
/// with a deadline, and the questions asked of the client on the way. Only the way of
/// waiting (`$wait`) differs.
macro_rules! program {
    ($client:expr, $wait:ident) => {{
        let client = $client;
        let deadline = Instant::now() + LONG;
        $wait!(client.send("a")).unwrap();
        $wait!(client.send_timeout("b", LONG)).unwrap();
        $wait!(client.send_deadline("c", deadline)).unwrap();
        client.try_send("d").unwrap();
        let batch: FrameBatch = ["e", "f"].into_iter().collect();
        $wait!(client.send_batch(batch)).unwrap();
        let batch: FrameBatch = ["g"].into_iter().collect();
        $wait!(client.send_batch_timeout(batch, LONG)).unwrap();
        let batch: FrameBatch = ["h", "i"].into_iter().collect();
        $wait!(client.send_batch_deadline(batch, deadline)).unwrap();
        $wait!(client.flush()).unwrap();
        // After the flush, so that it cannot go ahead of data frames not yet written.
        $wait!(client.send_urgent("j")).unwrap();
        $wait!(client.flush_timeout(LONG)).unwrap();
        $wait!(client.flush_deadline(deadline)).unwrap();
        assert!(!client.is_closed());
        $wait!(client.shutdown_write_deadline(deadline)).unwrap();
        assert!(client.is_closed(), "a half-closed connection takes no more frames");
        match $wait!(client.send("late")) {
            Err(SendError::Closed(frame)) => assert_eq!(frame, "late"),
            other => panic!("expected Closed after the half-close, got {other:?}"),
        }
        assert_eq!($wait!(client.recv_deadline(deadline)).unwrap(), None, "the peer ended too");
        let report: CloseReport = $wait!(client.close_deadline(deadline)).unwrap();
        assert!(report.is_clean(), "{report:?}");
        client.stats()
    }};
}

/// Reads everything the peer receives until the client's end of stream.
fn read_to_end(peer: &MemPeer) -> Vec<u8> {
    let deadline = Instant::now() + LONG;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the client never ended its side; got {got:?}");
        match peer.read_timeout(&mut buf, left) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(err) => panic!("the peer could not read: {err}"),
        }
    }
}

#[test]
fn one_program_runs_on_both_facades_and_the_peer_gets_the_same_bytes() {
    let _watchdog = Watchdog::new(LONG * 2, "parity");
    let listener = MemListener::bind(&support::unique_name("parity")).unwrap();

    let blocking = Client::connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    let reader = std::thread::spawn(move || read_to_end(&peer));
    let blocking_stats = program!(&blocking, now);
    let blocking_bytes = support::join_within(reader, LONG, "the blocking peer");

    let asynchronous = futures::executor::block_on(AsyncClient::connect(&listener.url())).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    let reader = std::thread::spawn(move || read_to_end(&peer));
    let async_stats = futures::executor::block_on(async { program!(&asynchronous, later) });
    let async_bytes = support::join_within(reader, LONG, "the async peer");

    assert_eq!(blocking_bytes, b"abcdefghij");
    assert_eq!(async_bytes, blocking_bytes);
    assert_eq!(blocking_stats.frames_written, 10);
    assert_eq!(async_stats.frames_written, blocking_stats.frames_written);
}

#[test]
fn an_owned_send_future_is_spawned_on_tokio_and_its_frames_arrive_in_order() {
    let _watchdog = Watchdog::new(LONG, "send_owned on tokio");
    let listener = MemListener::bind(&support::unique_name("send-owned")).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    // A small buffer, so that most sends wait in line and their spawned tasks wait too.
    let connecting = AsyncClient::builder().capacity(64).connect(&listener.url());
    let client = runtime.block_on(connecting).unwrap();
    let peer = Arc::new(listener.accept_timeout(LONG).unwrap());
    // The peer reads nothing until every send has joined the line.
    peer.pause();
    let reading = peer.clone();
    let reader = std::thread::spawn(move || read_to_end(&reading));

    runtime.block_on(async {
        // Each send joins the line when it is created and first polled here, in order; the
        // spawned tasks only wait for their outcome.
        let mut tasks = Vec::new();
        for i in 0..100u32 {
            let mut send = client.send_owned(format!("{i:03}\n"));
            match futures::poll!(&mut send) {
                Poll::Ready(result) => result.unwrap(),
                Poll::Pending => tasks.push(tokio::spawn(send)),
            }
        }
        assert!(tasks.len() >= 80, "at most 16 frames of 4 bytes fit: {} waited", tasks.len());
        peer.resume();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        // Spawned as it comes, with no poll before.
        tokio::spawn(client.send_owned("end\n")).await.unwrap().unwrap();
        client.close().await.unwrap();
    });
    let got = support::join_within(reader, LONG, "the peer");
    let mut expected: String = (0..100u32).map(|i| format!("{i:03}\n")).collect();
    expected.push_str("end\n");
    assert_eq!(String::from_utf8(got).unwrap(), expected);
}

#[test]
fn a_forward_into_the_sink_leaves_the_connection_open_for_other_clones() {
    let _watchdog = Watchdog::new(LONG, "sink forward");
    let listener = MemListener::bind(&support::unique_name("sink-forward")).unwrap();
    let client = futures::executor::block_on(AsyncClient::connect(&listener.url())).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    let reader = std::thread::spawn(move || read_to_end(&peer));
    let other = client.clone();

    futures::executor::block_on(async {
        let frames = stream::iter(["one ", "two "]).map(|s| Ok(Bytes::from(s)));
        frames.forward(client.sink()).await.unwrap();
        assert!(!other.is_closed(), "the sink's close must not close the connection");
        assert_eq!(other.stats().bytes_written, 8, "forward flushed the sink");
        other.send("three").await.unwrap();
        let report = other.close().await.unwrap();
        assert!(report.is_clean(), "{report:?}");
    });
    let got = support::join_within(reader, LONG, "the peer");
    assert_eq!(got, b"one two three");
}
