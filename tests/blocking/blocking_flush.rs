//! `flush` through the blocking facade: it returns once every byte accepted before the call is
//! on the link — so the peer has it — waits (without a deadline, or up to one) while the peer
//! stalls, and fails with the cause when the connection ends first (invariant 8). A flush said
//! to wait is seen waiting: its thread started, the kernel shows it asleep, and nothing it
//! waits for was written.

use std::thread;
use std::time::{Duration, Instant};

use tidegate::transport::mem::{MemListener, MemPeer};
use tidegate::{Client, DisconnectKind, FlushError};

use crate::support::{
    self, Lcg, TcpSink, Verifier, Watchdog, frame, join_within, spawn_parked, wait_until,
};

const LONG: Duration = Duration::from_secs(20);
const MARGIN: Duration = Duration::from_millis(500);

fn mem_client(prefix: &str, capacity: usize) -> (MemListener, Client, MemPeer) {
    let listener = MemListener::bind(&support::unique_name(prefix)).unwrap();
    let client = Client::builder().capacity(capacity).connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    (listener, client, peer)
}

/// Sends frames of 16..=4096 bytes from `producer` until `total` bytes; returns (frames, bytes).
fn send_frames(client: &Client, producer: u32, total: u64) -> (u64, u64) {
    let mut rng = Lcg::new(u64::from(producer));
    let (mut seq, mut bytes) = (0, 0);
    while bytes < total {
        let len = rng.range(16, 4096);
        client.send(frame(producer, seq, len)).unwrap();
        seq += 1;
        bytes += len as u64;
    }
    (seq, bytes)
}

/// Reads exactly `bytes` from the peer into a verifier.
fn read_all(peer: &MemPeer, bytes: u64) -> Verifier {
    let mut verifier = Verifier::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + LONG;
    while verifier.bytes < bytes {
        assert!(Instant::now() < deadline, "only {} of {bytes} bytes arrived", verifier.bytes);
        let n = peer.read_timeout(&mut buf, LONG).unwrap();
        verifier.feed(&buf[..n]).unwrap();
    }
    verifier
}

/// While a flush waits on a paused peer: the `buffered` bytes it waits for are all still in
/// the buffer, none was written, and the peer has nothing.
fn assert_nothing_written(client: &Client, peer: &MemPeer, buffered: usize) {
    let stats = client.stats();
    assert_eq!((stats.buffered, stats.bytes_written), (buffered, 0), "{stats:?}");
    assert_eq!(peer.unread(), 0);
}

#[test]
fn after_flush_the_peer_has_every_byte() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "flush mem");
    let (_listener, client, peer) = mem_client("flush-all", 64 * 1024);
    // The pipe holds everything, and nobody reads: what it holds is what was written.
    peer.set_write_capacity(4 << 20);
    for round in 0..3u32 {
        let before = peer.unread() as u64;
        let (frames, bytes) = send_frames(&client, round, 300_000);
        client.flush().unwrap();
        assert_eq!(peer.unread() as u64, before + bytes, "round {round}: flushed bytes are out");
        let stats = client.stats();
        assert_eq!(stats.buffered, 0);
        assert_eq!(stats.bytes_written, stats.bytes_accepted);
        let verifier = read_all(&peer, before + bytes);
        assert_eq!(verifier.next_seq()[&round], frames);
        assert!(verifier.at_boundary());
    }
    assert!(client.close_timeout(LONG).expect("close").is_clean());
}

#[test]
fn concurrent_flushes_each_see_their_own_bytes_out() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "concurrent flush");
    let (_listener, client, peer) = mem_client("flush-many", 16 * 1024);
    peer.set_write_capacity(8 << 20);
    let producers: Vec<_> = (0..4u32)
        .map(|p| {
            let client = client.clone();
            thread::spawn(move || {
                let (_, bytes) = send_frames(&client, p, 200_000);
                let accepted = client.stats().bytes_accepted;
                client.flush().unwrap();
                // Everything accepted before the flush started is written, mine included.
                assert!(client.stats().bytes_written >= accepted);
                bytes
            })
        })
        .collect();
    let total: u64 =
        producers.into_iter().map(|p| join_within(p, LONG, "a flushing producer")).sum();
    assert_eq!(peer.unread() as u64, total);
    let verifier = read_all(&peer, total);
    assert!(verifier.at_boundary());
    assert!(client.close_timeout(LONG).expect("close").is_clean());
}

#[test]
fn after_flush_a_tcp_peer_receives_every_byte() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "flush tcp");
    let sink = TcpSink::start();
    let client = Client::builder().capacity(32 * 1024).connect(&sink.url()).unwrap();
    let (frames, bytes) = send_frames(&client, 0, 2_000_000);
    client.flush().unwrap();
    let stats = client.stats();
    assert_eq!((stats.bytes_written, stats.buffered), (bytes, 0));
    assert_eq!(stats.frames_written, frames);
    // The kernel has it all; the sink reads it without any more help from the client.
    assert!(wait_until(LONG, || sink.received() == bytes), "{} of {bytes}", sink.received());
    assert!(client.close_timeout(LONG).expect("close").is_clean());
    let seen = sink.finish(LONG);
    assert_eq!(seen.error, None);
    assert_eq!(seen.verifier.frames, frames);
}

#[test]
fn flush_waits_while_the_peer_stalls() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "flush stalled");
    let (_listener, client, peer) = mem_client("flush-stall", 4096);
    peer.pause();
    client.send(frame(0, 0, 3000)).unwrap();

    let timeout = Duration::from_millis(200);
    let start = Instant::now();
    assert!(matches!(client.flush_timeout(timeout), Err(FlushError::Timeout)));
    let elapsed = start.elapsed();
    assert!(elapsed >= timeout && elapsed <= timeout + MARGIN, "{elapsed:?}");
    assert_eq!(FlushError::Timeout.to_string(), "flush timed out");

    let flusher = {
        let client = client.clone();
        spawn_parked(LONG, "the flush of a stalled peer", move || client.flush())
    };
    assert_nothing_written(&client, &peer, 3000);
    peer.resume();
    join_within(flusher, LONG, "the flush").unwrap();
    assert_eq!(peer.unread(), 3000);
    assert!(client.close_timeout(LONG).expect("close").is_clean());
}

#[test]
fn flush_fails_with_the_cause_when_the_connection_breaks() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "flush disconnect");
    let (_listener, client, peer) = mem_client("flush-broken", 4096);
    peer.pause();
    client.send(frame(0, 0, 1000)).unwrap();
    let flusher = {
        let client = client.clone();
        spawn_parked(LONG, "the flush before a reset", move || client.flush())
    };
    assert_nothing_written(&client, &peer, 1000);
    peer.reset();
    let err = join_within(flusher, LONG, "the flush").unwrap_err();
    let FlushError::Disconnected(cause) = &err else {
        panic!("expected a disconnect, got {err:?}");
    };
    assert_eq!(cause.kind(), DisconnectKind::Reset);
    assert_eq!(err.to_string(), "connection ended before the flush completed");
    let source = std::error::Error::source(&err).expect("the cause");
    assert!(source.to_string().contains("reset"), "{source}");
    // Later flushes fail the same way, and the frame is in the close report.
    assert!(matches!(client.flush(), Err(FlushError::Disconnected(_))));
    let mut writer = client.clone();
    let err = std::io::Write::flush(&mut writer).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    let report = client.close_timeout(LONG).expect("close");
    assert_eq!(report.unsent().len(), 1);
    assert_eq!(report.unsent()[0].frame(), &frame(0, 0, 1000));
}

#[test]
fn flush_on_a_disconnected_idle_connection_fails() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "flush idle disconnect");
    let (_listener, client, peer) = mem_client("flush-idle", 4096);
    client.send(frame(0, 0, 100)).unwrap();
    client.flush().unwrap();
    peer.close();
    // The peer's end of stream ends the receive side only (it may be a half-close) ...
    assert_eq!(client.recv_timeout(LONG).unwrap(), None);
    assert!(!client.connection().is_closed());
    // ... and the next write finds the peer gone: the connection ends, and flushes fail.
    client.send(frame(0, 1, 100)).unwrap();
    assert!(wait_until(LONG, || client.connection().is_closed()));
    let err = client.flush().unwrap_err();
    assert!(
        matches!(&err, FlushError::Disconnected(cause) if cause.kind() == DisconnectKind::PeerClosed),
        "{err:?}"
    );
    let report = client.close_timeout(LONG).expect("close");
    assert_eq!(report.unsent().len(), 1, "the frame the peer never took comes back");
    assert_eq!(report.unsent()[0].frame(), &frame(0, 1, 100));
}

#[test]
fn a_flush_cut_short_by_close_reports_closed() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "flush closed");
    let (_listener, client, peer) = mem_client("flush-closed", 4096);
    peer.pause();
    client.send(frame(0, 0, 1000)).unwrap();
    let flusher = {
        let client = client.clone();
        spawn_parked(LONG, "the flush before a close", move || client.flush())
    };
    assert_nothing_written(&client, &peer, 1000);
    let report = client.close_timeout(Duration::from_millis(100)).expect("close");
    assert!(report.timed_out());
    let err = join_within(flusher, LONG, "the flush").unwrap_err();
    assert!(matches!(err, FlushError::Closed), "{err:?}");
    assert!(std::error::Error::source(&err).is_none());
    drop(peer);
}
