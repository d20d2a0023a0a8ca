//! `close` and drop through the blocking facade (invariant 8): a close drains the buffer and
//! reports it clean; a close that runs out of time hands back every frame not written, whole,
//! and the waiting senders get theirs in `SendError::Closed`; only the first close receives the
//! frames; dropping the last handle drains in the background, for at most the close timeout.

use std::thread;
use std::time::{Duration, Instant};

use tidegate::transport::SocketOption;
use tidegate::transport::mem::{MemListener, MemPeer};
use tidegate::{Bytes, Client, Config, SendError};

use crate::support::{
    self, MemSink, TcpSink, Verifier, Watchdog, frame, ident, join_within, wait_until,
};

const LONG: Duration = Duration::from_secs(20);
const MARGIN: Duration = Duration::from_secs(3);

fn mem_client(prefix: &str, capacity: usize) -> (MemListener, Client, MemPeer) {
    let listener = MemListener::bind(&support::unique_name(prefix)).unwrap();
    let client = Client::builder().capacity(capacity).connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    (listener, client, peer)
}

#[test]
fn close_drains_everything_to_a_tcp_peer() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "close drains");
    let sink = TcpSink::start();
    let client = Client::builder().capacity(256 * 1024).connect(&sink.url()).unwrap();
    let mut bytes = 0u64;
    for seq in 0..2000u64 {
        let len = 16 + (seq as usize * 131) % 3000;
        client.send(frame(0, seq, len)).unwrap();
        bytes += len as u64;
    }
    let report = client.close().expect("close");
    assert!(report.is_clean(), "{report:?}");
    assert!(report.cause().is_none() && !report.timed_out());
    assert_eq!(report.bytes_written(), bytes);
    assert_eq!(report.frames_written(), 2000);
    let seen = sink.finish(LONG);
    assert_eq!(seen.error, None);
    assert_eq!((seen.verifier.frames, seen.verifier.bytes), (2000, bytes));
    assert!(seen.verifier.at_boundary());
}

#[test]
fn close_with_a_stalled_peer_times_out_and_returns_every_frame() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "close timeout");
    let (_listener, client, peer) = mem_client("close-stalled", 4096);
    peer.pause();
    let buffered: Vec<Bytes> = (0..8).map(|seq| frame(1, seq, 500)).collect();
    for f in &buffered {
        client.send(f.clone()).unwrap();
    }
    // Two senders wait for room.
    let waiting: Vec<_> = (2..4u32)
        .map(|id| {
            let before = client.stats().waiters;
            let sender = client.clone();
            let handle = thread::spawn(move || {
                let sent = frame(id, 0, 500);
                match sender.send(sent.clone()) {
                    Err(SendError::Closed(back)) => assert_eq!(back, sent, "the frame comes back"),
                    other => panic!("a waiting sender should get Closed, got {other:?}"),
                }
            });
            assert!(wait_until(LONG, || client.stats().waiters == before + 1));
            handle
        })
        .collect();

    let timeout = Duration::from_millis(300);
    let start = Instant::now();
    let report = client.close_timeout(timeout).expect("close");
    let elapsed = start.elapsed();
    assert!(elapsed >= timeout, "the close gave up early, after {elapsed:?}");
    assert!(elapsed <= timeout + MARGIN, "the close took {elapsed:?}");
    assert!(report.timed_out());
    assert!(report.cause().is_none(), "the application closed it");
    assert!(!report.is_clean());
    assert_eq!((report.bytes_written(), report.frames_written()), (0, 0));
    let unsent: Vec<&Bytes> = report.unsent().iter().map(|u| u.frame()).collect();
    assert_eq!(
        unsent,
        buffered.iter().collect::<Vec<_>>(),
        "every buffered frame, whole, in order"
    );
    assert!(report.unsent().iter().all(|u| u.written() == 0));
    assert!(report.unsent().iter().enumerate().all(|(i, u)| ident(u.frame()) == (1, i as u64)));
    for waiter in waiting {
        join_within(waiter, LONG, "a waiting sender");
    }

    // The frames went to the first close only.
    let again = client.close_timeout(timeout).expect("close");
    assert!(again.unsent().is_empty());
    assert!(matches!(client.send(frame(1, 8, 10 + 16)), Err(SendError::Closed(_))));
    assert_eq!(client.stats().waiters, 0);
    // The driver drops the link right after it hands over the report.
    assert!(wait_until(LONG, || peer.client_closed()), "the link was never shut");
    assert_eq!(peer.unread(), 0);
}

#[test]
fn concurrent_closes_share_one_report() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "concurrent close");
    let (_listener, client, peer) = mem_client("close-twice", 4096);
    peer.pause();
    for seq in 0..4 {
        client.send(frame(0, seq, 1000)).unwrap();
    }
    let closers: Vec<_> = (0..3)
        .map(|_| {
            let client = client.clone();
            thread::spawn(move || client.close_timeout(Duration::from_millis(200)).expect("close"))
        })
        .collect();
    let reports: Vec<_> = closers.into_iter().map(|c| join_within(c, LONG, "a close")).collect();
    let with_frames: Vec<_> = reports.iter().filter(|r| !r.unsent().is_empty()).collect();
    assert_eq!(with_frames.len(), 1, "exactly one close receives the frames: {reports:?}");
    assert_eq!(with_frames[0].unsent().len(), 4);
}

#[test]
fn a_timed_out_close_to_tcp_reports_exactly_what_reached_the_peer() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "close tcp stalled");
    let sink = TcpSink::start_with(Verifier::new(), Some(4096));
    sink.stall();
    let config =
        Config::new().capacity(16 * 1024).socket_option(SocketOption::SendBufferSize(4096));
    let client = Client::builder().config(config).connect(&sink.url()).unwrap();
    let mut accepted = 0u64;
    for seq in 0..10_000u64 {
        if client.send_timeout(frame(0, seq, 700), Duration::from_millis(100)).is_err() {
            break;
        }
        accepted += 1;
    }
    assert!(client.stats().buffered > 0, "the stalled peer should leave bytes buffered");
    let report = client.close_timeout(Duration::from_millis(200)).expect("close");
    assert!(report.timed_out(), "{report:?}");
    assert_eq!(report.frames_written() + report.unsent().len() as u64, accepted);
    for (i, u) in report.unsent().iter().enumerate() {
        let seq = report.frames_written() + i as u64;
        assert_eq!(u.frame(), &frame(0, seq, 700), "unsent frame {seq} is whole");
        assert!(i == 0 || u.written() == 0);
    }
    // The kernel still delivers what the link accepted; the report counted exactly that.
    sink.resume();
    let seen = sink.finish(LONG);
    assert_eq!(seen.error, None);
    assert_eq!(seen.verifier.bytes, report.bytes_written());
    assert_eq!(seen.verifier.frames, report.frames_written());
}

#[test]
fn dropping_the_last_handle_waits_until_everything_is_delivered() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "drop drains");
    let sink = TcpSink::start_with(Verifier::new(), Some(4096));
    sink.stall();
    let config = Config::new().capacity(1 << 20).socket_option(SocketOption::SendBufferSize(4096));
    let client = Client::builder().config(config).connect(&sink.url()).unwrap();
    let other = client.clone();
    let mut bytes = 0u64;
    for seq in 0..500u64 {
        let len = 100 + (seq as usize * 61) % 1500;
        client.send(frame(0, seq, len)).unwrap();
        bytes += len as u64;
    }
    assert!(client.stats().buffered > 0, "bytes should still be buffered");
    drop(client);
    assert!(!other.connection().is_closed(), "a handle is left: the connection stays open");
    // The last drop waits for the close, as std's `BufWriter` flushes on drop: a program that
    // ends right after it loses nothing.
    let dropper = thread::spawn(move || drop(other));
    assert!(
        !wait_until(Duration::from_millis(100), || dropper.is_finished()),
        "the drop returned while the peer had not read the data"
    );
    sink.resume();
    join_within(dropper, LONG, "the last drop");
    let seen = sink.finish(LONG);
    assert_eq!(seen.error, None);
    assert_eq!((seen.verifier.frames, seen.verifier.bytes), (500, bytes));
    assert!(seen.verifier.at_boundary());
}

#[test]
fn dropping_the_last_handle_gives_up_after_the_close_timeout() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "drop gives up");
    let listener = MemListener::bind(&support::unique_name("close-drop")).unwrap();
    let timeout = Duration::from_millis(200);
    let client =
        Client::builder().capacity(4096).close_timeout(timeout).connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    peer.pause();
    client.send(frame(0, 0, 1000)).unwrap();
    let start = Instant::now();
    drop(client);
    assert!(wait_until(LONG, || peer.client_closed()), "the link was never shut");
    let elapsed = start.elapsed();
    // The upper bound only tells "gave up" from "kept waiting" (it would wait forever): it
    // is loose, so a loaded machine cannot fail it.
    assert!(elapsed >= timeout && elapsed <= timeout + Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(peer.unread(), 0, "the stalled peer got nothing");
    // A mem peer that reads again gets end of stream, not the discarded frame.
    let sink = MemSink::start(peer, Verifier::new());
    sink.peer().resume();
    let seen = sink.finish(LONG);
    assert_eq!((seen.verifier.bytes, seen.error), (0, None));
}

/// Three producers send until they fail; each returns the frames accepted and the frame it
/// got back, which must be `Closed(its own frame)`.
fn produce_until_closed(client: &Client) -> Vec<thread::JoinHandle<(Vec<Bytes>, Bytes)>> {
    (0..3u32)
        .map(|id| {
            let client = client.clone();
            thread::spawn(move || {
                let mut accepted = Vec::new();
                for seq in 0.. {
                    let sent = frame(id, seq, 100 + (seq as usize * 37) % 400);
                    match client.send(sent.clone()) {
                        Ok(()) => accepted.push(sent),
                        Err(SendError::Closed(back)) => {
                            assert_eq!(back, sent, "producer {id}: Closed carries its frame");
                            return (accepted, back);
                        }
                        Err(other) => panic!("producer {id}: {other:?}"),
                    }
                }
                unreachable!()
            })
        })
        .collect()
}

/// Parks three producers on a paused peer, then closes from another thread: the producers get
/// their frames back at once while the close goes on draining. Returns the closer, the frames
/// accepted (by producer), and how many were accepted in all.
#[allow(clippy::type_complexity)]
fn close_with_parked_senders(
    client: &Client,
    timeout: Duration,
) -> (thread::JoinHandle<tidegate::CloseReport>, Vec<Vec<Bytes>>, u64) {
    let producers = produce_until_closed(client);
    assert!(wait_until(LONG, || client.stats().waiters == 3), "{:?}", client.stats());
    let accepted = client.stats().frames_accepted;
    let closer = {
        let client = client.clone();
        thread::spawn(move || client.close_timeout(timeout).expect("close"))
    };
    let produced: Vec<Vec<Bytes>> =
        producers.into_iter().map(|p| join_within(p, LONG, "a parked producer").0).collect();
    assert_eq!(produced.iter().map(Vec::len).sum::<usize>() as u64, accepted);
    assert!(!closer.is_finished(), "the close waits for the buffer to drain");
    assert_eq!(client.stats().frames_accepted, accepted, "a closing connection takes nothing");
    (closer, produced, accepted)
}

#[test]
fn a_close_drains_the_buffer_while_parked_senders_get_their_frames_back() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "close drains past parked senders");
    let (_listener, client, peer) = mem_client("close-drain-parked", 4096);
    peer.pause();
    let (closer, produced, accepted) = close_with_parked_senders(&client, LONG);
    // The peer resumes, through a small pipe (partial writes), while a sink reads.
    peer.set_write_capacity(333);
    let sink = MemSink::start(peer, Verifier::new());
    sink.peer().resume();
    let report = join_within(closer, LONG, "the close");
    assert!(report.is_clean() && report.unsent().is_empty(), "{report:?}");
    assert_eq!(report.frames_written() + report.unsent().len() as u64, accepted);
    let bytes: usize = produced.iter().flatten().map(Bytes::len).sum();
    assert_eq!(report.bytes_written(), bytes as u64);
    let seen = sink.finish(LONG);
    assert_eq!(seen.error, None);
    assert_eq!(seen.verifier.bytes, report.bytes_written(), "the peer got every written byte");
    assert_eq!(seen.verifier.frames, report.frames_written());
    assert!(seen.verifier.at_boundary(), "whole frames");
    for (id, frames) in produced.iter().enumerate() {
        let next = seen.verifier.next_seq().get(&(id as u32)).copied().unwrap_or(0);
        assert_eq!(next, frames.len() as u64, "producer {id}: all its accepted frames arrived");
    }
}

#[test]
fn a_close_that_times_out_while_draining_accounts_for_every_accepted_frame() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "close times out while draining");
    let (_listener, client, peer) = mem_client("close-drain-timeout", 4096);
    peer.pause();
    let (closer, produced, accepted) =
        close_with_parked_senders(&client, Duration::from_millis(300));
    // The peer takes 1,000 bytes (ending inside a frame), then nothing more.
    peer.set_write_capacity(1000);
    peer.resume();
    let report = join_within(closer, LONG, "the close");
    assert!(report.timed_out(), "{report:?}");
    assert_eq!(report.bytes_written(), 1000);
    assert_eq!(report.frames_written() + report.unsent().len() as u64, accepted);
    let mut wire = vec![0u8; 1000];
    let mut got = 0;
    while got < 1000 {
        got += peer.read_timeout(&mut wire[got..], LONG).unwrap();
    }
    // What the peer got, then the rest of each unsent frame, is every accepted frame, whole,
    // each producer's in order.
    let mut verifier = Verifier::new();
    verifier.feed(&wire).unwrap();
    // If the peer's last frame is cut, the report has it first, with the bytes written.
    let cut = !verifier.at_boundary();
    assert_eq!(report.unsent()[0].written() > 0, cut, "{:?}", report.unsent()[0]);
    for unsent in report.unsent() {
        verifier.feed(&unsent.frame()[unsent.written()..]).unwrap();
    }
    assert!(verifier.at_boundary());
    assert_eq!(verifier.frames, accepted);
    let bytes: usize = produced.iter().flatten().map(Bytes::len).sum();
    assert_eq!(verifier.bytes, bytes as u64);
}
