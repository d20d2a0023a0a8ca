//! Liveness on real loopback sockets, each checked against what the peer received:
//!
//! - a peer that stops reading without closing ends the link after the write-stall timeout,
//!   within a margin, with its own cause; the peer then gets exactly the bytes written, and
//!   the close report the rest; with reconnection on, a new link takes over where it stopped;
//! - heartbeats reach the peer at their interval on an idle link, and none on a busy one;
//! - a peer that stops talking ends the link after the inbound-silence timeout, while one
//!   that answers the heartbeats keeps it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use tidegate::transport::SocketOption;
use tidegate::{Bytes, Client, Config, ConnectionEvent, DisconnectKind, Reconnect};

use crate::reconnect::LONG;
use crate::support::{Watchdog, frame, ident, join_within, wait_until, whole_frames};

const STALL: Duration = Duration::from_millis(300);

/// A listener on a free loopback port, and its URL.
fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("tcp://{}", listener.local_addr().unwrap());
    (listener, url)
}

/// Offers frames until the client's buffer is full; returns those it took.
fn fill(client: &Client) -> Vec<Bytes> {
    let mut sent = Vec::new();
    loop {
        let f = frame(0, sent.len() as u64, 1000);
        if client.try_send(f.clone()).is_err() {
            return sent;
        }
        sent.push(f);
        assert!(sent.len() < 10_000, "the buffer fills");
    }
}

/// Fills the client's buffer against a peer that does not read, noting when the client last
/// wrote; returns the frames accepted and that instant.
fn fill_against_a_stalled_peer(client: &Client) -> (Vec<Bytes>, Instant) {
    let sent = fill(client);
    let mut written = client.stats().bytes_written;
    let mut last = Instant::now();
    let deadline = Instant::now() + LONG;
    while !client.is_closed() && Instant::now() < deadline {
        let now = client.stats().bytes_written;
        if now != written {
            written = now;
            last = Instant::now();
        }
        thread::sleep(Duration::from_millis(1));
    }
    (sent, last)
}

#[test]
fn a_peer_that_stops_reading_ends_the_link_after_the_write_stall_timeout() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "write_stall");
    let (listener, url) = listen();
    let config = Config::new()
        .capacity(256 * 1024)
        .socket_option(SocketOption::SendBufferSize(16 * 1024))
        .write_stall_timeout(STALL);
    let client = Client::builder().config(config).connect(&url).expect("connect");
    let (mut peer, _) = listener.accept().expect("accept");
    let (sent, last_write) = fill_against_a_stalled_peer(&client);
    let cause = client.closed_timeout(LONG).expect("ended").expect("a cause");
    let ended = Instant::now();
    assert_eq!(cause.kind(), DisconnectKind::WriteStalled, "{cause}");
    let took = ended - last_write;
    // The stall starts at the first write that would block after the last progress, which
    // this thread saw late by as much as the scheduler delayed it.
    assert!(took >= STALL - Duration::from_millis(100), "ended {took:?} after the last write");
    assert!(took <= STALL + Duration::from_secs(3), "ended {took:?} after the last write");
    let stats = client.stats();
    let report = client.close_timeout(LONG).expect("close");
    // The peer reads now: it gets exactly what was written, and the report holds the rest.
    peer.set_read_timeout(Some(LONG)).unwrap();
    let mut got = Vec::new();
    peer.read_to_end(&mut got).expect("read to the end");
    assert_eq!(got.len() as u64, stats.bytes_written, "the peer got every byte written");
    let (whole, cut) = whole_frames(&got);
    let expected: Vec<(u32, u64)> = (0..whole.len() as u64).map(|seq| (0, seq)).collect();
    assert_eq!(whole, expected, "the first frames, in order");
    let unsent = report.into_unsent();
    assert_eq!(unsent.first().map(|u| u.written()), Some(cut), "the report starts at the cut");
    let rest: Vec<Bytes> = unsent.into_iter().map(|u| u.into_frame()).collect();
    assert_eq!(rest, sent[whole.len()..], "the report holds every frame not written whole");
}

#[test]
fn with_reconnection_a_stalled_link_is_replaced_where_it_stopped() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "write_stall_reconnect");
    let (listener, url) = listen();
    let policy = Reconnect::new().initial_delay(Duration::from_millis(10)).atomic_frames(true);
    let config = Config::new()
        .capacity(256 * 1024)
        .socket_option(SocketOption::SendBufferSize(16 * 1024))
        .write_stall_timeout(STALL)
        .close_timeout(LONG)
        .reconnect(policy);
    let client = Client::builder().config(config).connect(&url).expect("connect");
    let events = client.events();
    let (mut first, _) = listener.accept().expect("accept");
    let sent = fill(&client);
    let (mut second, _) = listener.accept().expect("the stalled link is replaced");
    match events.recv_timeout(LONG) {
        Ok(Some(ConnectionEvent::Disconnected { cause, .. })) => {
            assert_eq!(cause.kind(), DisconnectKind::WriteStalled, "{cause}");
        }
        other => panic!("the stall is a lost link: {other:?}"),
    }
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        second.set_read_timeout(Some(LONG)).unwrap();
        second.read_to_end(&mut got).expect("read the new link");
        second.shutdown(std::net::Shutdown::Write).unwrap();
        got
    });
    client.flush_timeout(LONG).expect("flushed on the new link");
    let report = client.close_timeout(LONG).expect("close");
    assert!(report.unsent().is_empty(), "{report:?}");
    let on_second = join_within(reader, LONG, "the reader");
    first.set_read_timeout(Some(LONG)).unwrap();
    let mut on_first = Vec::new();
    first.read_to_end(&mut on_first).expect("read the stalled link");
    let (mut whole, _) = whole_frames(&on_first);
    let (then, cut) = whole_frames(&on_second);
    assert_eq!(cut, 0, "the new link ends at a frame boundary");
    // The stalled link's whole frames, then the new link's from the next one: each frame
    // once, none missing (atomic frames: one cut by the stall goes again whole).
    whole.extend(then);
    let expected: Vec<(u32, u64)> = (0..sent.len() as u64).map(|seq| (0, seq)).collect();
    assert_eq!(whole, expected, "every frame once, in order, across the two links");
}

/// Reads test frames from `peer` until `until`, with the instant each arrived.
fn read_frames(peer: &mut TcpStream, until: Instant) -> Vec<((u32, u64), Instant)> {
    peer.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    let mut pending = Vec::new();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < until {
        match peer.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                let (frames, cut) = whole_frames(&pending);
                let at = Instant::now();
                got.extend(frames.into_iter().map(|f| (f, at)));
                pending.drain(..pending.len() - cut);
            }
            Err(_) => {}
        }
    }
    got
}

#[test]
fn heartbeats_come_at_their_interval_on_an_idle_link_and_not_on_a_busy_one() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "heartbeat");
    const EVERY: Duration = Duration::from_millis(100);
    let beat = frame(9, 0, 16);
    let (listener, url) = listen();
    let config = Config::new().heartbeat(EVERY, beat.clone());
    let client = Client::builder().config(config).connect(&url).expect("connect");
    let (mut peer, _) = listener.accept().expect("accept");
    // Idle: beats at the interval.
    let idle = read_frames(&mut peer, Instant::now() + Duration::from_millis(750));
    assert!(idle.iter().all(|(f, _)| *f == (9, 0)), "only heartbeats: {idle:?}");
    assert!(idle.len() >= 4, "{} heartbeats in 750 ms at 100 ms", idle.len());
    // Arrival times carry the reader's own delays, so single gaps may shrink; never to
    // beats back to back, and on average not below the interval.
    for pair in idle.windows(2) {
        let gap = pair[1].1 - pair[0].1;
        assert!(gap >= EVERY / 2, "beats {gap:?} apart");
    }
    let span = idle[idle.len() - 1].1 - idle[0].1;
    let mean = span / (idle.len() as u32 - 1);
    assert!(mean >= EVERY - Duration::from_millis(10), "beats {mean:?} apart on average");
    assert!(mean <= EVERY + Duration::from_millis(150), "beats {mean:?} apart on average");
    // Busy: a frame every 10 ms for 600 ms, and no beat among them.
    let sender = client.clone();
    let busy = thread::spawn(move || {
        for seq in 0..60 {
            sender.send(frame(0, seq, 64)).unwrap();
            thread::sleep(Duration::from_millis(10));
        }
    });
    let mut during = Vec::new();
    while during.last().is_none_or(|(f, _): &((u32, u64), Instant)| *f != (0, 59)) {
        let got = read_frames(&mut peer, Instant::now() + Duration::from_millis(50));
        during.extend(got);
        assert!(during.len() < 1000, "the busy frames arrive");
    }
    join_within(busy, LONG, "the busy sender");
    let first = during.iter().position(|(f, _)| f.0 == 0).expect("the busy frames arrived");
    let data: Vec<_> = during[first..].iter().map(|(f, _)| *f).collect();
    let expected: Vec<(u32, u64)> = (0..60).map(|seq| (0, seq)).collect();
    assert_eq!(data, expected, "no heartbeat while the link is busy");
    // Idle again: the beats come back.
    let again = read_frames(&mut peer, Instant::now() + Duration::from_millis(400));
    assert!(!again.is_empty() && again.iter().all(|(f, _)| *f == (9, 0)), "{again:?}");
    assert!(client.stats().frames_written >= 60 + 5, "{:?}", client.stats());
}

#[test]
fn a_silent_peer_ends_the_link_and_one_that_answers_the_heartbeats_keeps_it() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "inbound_silence");
    const SILENCE: Duration = Duration::from_millis(400);
    let (listener, url) = listen();
    let config = Config::new()
        .heartbeat(Duration::from_millis(100), frame(9, 0, 16))
        .inbound_silence_timeout(SILENCE)
        .discard_inbound(true);
    let client = Client::builder().config(config).connect(&url).expect("connect");
    let (mut peer, _) = listener.accept().expect("accept");
    // The peer answers each heartbeat for 1.5 s, nearly four silence timeouts.
    let answering_until = Instant::now() + Duration::from_millis(1500);
    let mut beats = 0;
    let mut buf = [0u8; 16];
    peer.set_read_timeout(Some(LONG)).unwrap();
    while Instant::now() < answering_until {
        peer.read_exact(&mut buf).expect("a heartbeat");
        assert_eq!(ident(&buf), (9, 0), "a heartbeat");
        peer.write_all(b"PONG").unwrap();
        beats += 1;
        assert!(!client.is_closed(), "an answering peer keeps the link");
    }
    assert!(beats >= 10, "{beats} heartbeats in 1.5 s");
    // Then it falls silent, and keeps reading.
    let silent_since = Instant::now();
    let cause = client.closed_timeout(LONG).expect("ended").expect("a cause");
    let took = silent_since.elapsed();
    assert_eq!(cause.kind(), DisconnectKind::PeerSilent, "{cause}");
    assert!(took >= SILENCE - Duration::from_millis(150), "ended {took:?} into the silence");
    assert!(took <= SILENCE + Duration::from_secs(3), "ended {took:?} into the silence");
    assert!(wait_until(LONG, || client.stats().bytes_received >= 4 * beats as u64));
}
