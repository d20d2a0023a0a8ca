//! The acknowledged fate: frames a lost link wrote whole and whose bytes its peer acknowledged,
//! and the written frames it did not, which are kept until then. Each test checks it against
//! what the peer itself read:
//!
//! - over `mem://`, whose peer acknowledges what it reads, a peer that read three frames and
//!   left the fourth unread is reset: exactly the three are acknowledged, the fourth possibly
//!   delivered and handed back whole, and the next link carries on after it;
//! - with at-least-once, the unread fourth frame is the first thing the next link carries;
//! - with a handshake hook, the hello's bytes, which the peer acknowledges too, are not taken
//!   for frames;
//! - over TCP, a kernel peer that read every frame, once the client's kernel counts them all
//!   acknowledged, is reset: every frame is acknowledged and none possibly delivered.

use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

use tidegate::transport::mem::{MemListener, MemPeer};
use tidegate::{Bytes, Client, Config, ConnectionEvent, PossiblyDelivered};

use crate::reconnect::{LONG, quick};
use crate::support::{Watchdog, frame, reset, unique_name, wait_until, whole_frames};

/// The first `Disconnected` event's frames replayed, acknowledged range and possibly
/// delivered frames.
fn first_loss(events: &tidegate::Events) -> (u64, std::ops::Range<u64>, PossiblyDelivered) {
    loop {
        match events.recv_timeout(LONG).expect("an event").expect("not ended") {
            ConnectionEvent::Disconnected {
                replayed, acknowledged, possibly_delivered, ..
            } => {
                assert!(possibly_delivered.cut_frames().is_empty(), "{possibly_delivered:?}");
                return (replayed, acknowledged, possibly_delivered);
            }
            ConnectionEvent::GaveUp { cause } => panic!("gave up: {cause}"),
            _ => {}
        }
    }
}

/// Sends four frames of 100 bytes through a pipe that holds one at a time; `peer` reads
/// `skip` bytes first (a hello), then three frames, and leaves the fourth unread. Returns the
/// frames it read.
fn read_three_of_four(client: &Client, peer: &MemPeer, skip: usize) -> Vec<(u32, u64)> {
    peer.set_write_capacity(100);
    let mut hello = vec![0u8; skip];
    let mut at = 0;
    while at < skip {
        let n = peer.read_timeout(&mut hello[at..], LONG).unwrap();
        assert!(n > 0, "the hello comes");
        at += n;
    }
    for seq in 0..4 {
        client.send(frame(1, seq, 100)).unwrap();
    }
    let mut read = Vec::new();
    let mut buf = [0u8; 100];
    while read.len() < 300 {
        let n = peer.read_timeout(&mut buf[..100.min(300 - read.len())], LONG).unwrap();
        assert!(n > 0, "the frames come");
        read.extend_from_slice(&buf[..n]);
    }
    assert!(peer.wait_unread(100, LONG), "the fourth frame waits in the pipe, unread");
    // The three read are released as their acknowledgement is seen; the fourth is kept.
    assert!(
        wait_until(LONG, || client.stats().awaiting_ack == 100),
        "only the unread frame is kept: {:?}",
        client.stats()
    );
    whole_frames(&read).0
}

#[test]
fn frames_the_peer_read_are_acknowledged_and_the_unread_one_possibly_delivered() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "acknowledged_mem");
    let listener = MemListener::bind(&unique_name("acknowledged")).unwrap();
    let client = Client::builder().reconnect(quick()).connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    let events = client.events();
    let read = read_three_of_four(&client, &peer, 0);
    peer.reset();
    let (replayed, acknowledged, possibly) = first_loss(&events);
    assert_eq!(read, [(1, 0), (1, 1), (1, 2)], "what the peer read");
    assert_eq!(acknowledged, 0..3, "the frames the peer read");
    assert_eq!(possibly.written(), 3..4, "the frame it left unread");
    assert_eq!(possibly.written_frames(), [frame(1, 3, 100)], "handed back whole");
    assert_eq!(replayed, 0);
    let stats = client.stats();
    assert_eq!((stats.frames_acknowledged, stats.frames_possibly_delivered), (3, 1));
    assert_eq!(stats.awaiting_ack, 0, "what was kept left with the event");

    // The next link carries on after the fourth frame, which is not sent again.
    let next = listener.accept_timeout(LONG).unwrap();
    client.send(frame(1, 4, 100)).unwrap();
    let mut got = [0u8; 100];
    assert_eq!(next.read_timeout(&mut got, LONG).unwrap(), 100);
    assert_eq!(whole_frames(&got).0, [(1, 4)]);
}

#[test]
fn at_least_once_sends_the_unread_frame_first_on_the_next_link() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "acknowledged_at_least_once");
    let listener = MemListener::bind(&unique_name("acknowledged-alo")).unwrap();
    let policy = quick().at_least_once(true);
    let client = Client::builder().reconnect(policy).connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    let events = client.events();
    read_three_of_four(&client, &peer, 0);
    peer.reset();
    let (replayed, acknowledged, possibly) = first_loss(&events);
    assert_eq!(acknowledged, 0..3);
    assert!(possibly.is_empty(), "sent again, not reported: {possibly:?}");
    assert_eq!(replayed, 1);
    let next = listener.accept_timeout(LONG).unwrap();
    client.send(frame(1, 4, 100)).unwrap();
    let mut got = vec![0u8; 200];
    let mut at = 0;
    while at < 200 {
        let n = next.read_timeout(&mut got[at..], LONG).unwrap();
        assert!(n > 0, "both frames come");
        at += n;
    }
    assert_eq!(whole_frames(&got).0, [(1, 3), (1, 4)], "the unread frame first, then the next");
    let stats = client.stats();
    assert_eq!((stats.frames_replayed, stats.frames_possibly_delivered), (1, 0));
}

#[test]
fn the_hello_is_not_counted_as_frames_the_peer_acknowledged() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "acknowledged_hello");
    let listener = MemListener::bind(&unique_name("acknowledged-hello")).unwrap();
    let hello = || vec![Bytes::from(vec![b'h'; 100])];
    let config = Config::new().reconnect(quick()).handshake(hello);
    let client = Client::builder().config(config).connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    let events = client.events();
    // The peer acknowledged 400 bytes: the hello and three frames, not four frames.
    let read = read_three_of_four(&client, &peer, 100);
    assert_eq!(read, [(1, 0), (1, 1), (1, 2)], "what the peer read after the hello");
    peer.reset();
    let (_, acknowledged, possibly) = first_loss(&events);
    assert_eq!(acknowledged, 0..3);
    assert_eq!(possibly.written_frames(), [frame(1, 3, 100)]);
}

#[test]
fn over_tcp_the_frames_a_kernel_peer_read_are_acknowledged() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "acknowledged_tcp");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("tcp://{}", listener.local_addr().unwrap());
    let client = Client::builder().reconnect(quick()).connect(&url).unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(LONG)).unwrap();
    let events = client.events();
    const FRAMES: u64 = 50;
    for seq in 0..FRAMES {
        client.send(frame(2, seq, 1000)).unwrap();
    }
    let mut read = vec![0u8; 50 * 1000];
    peer.read_exact(&mut read).expect("the peer reads every frame");
    // The driver records a write after the kernel took it, so the peer can be first.
    let written = 50 * 1000;
    assert!(wait_until(LONG, || client.stats().bytes_written == written), "{:?}", client.stats());
    // The client's kernel counts the bytes acknowledged once the peer's answer is in.
    let acked = || client.call_link(|link| link.bytes_acked()).unwrap();
    assert!(wait_until(LONG, || acked() == Some(written)), "acknowledged: {:?}", acked());
    reset(peer);
    let (_, acknowledged, possibly) = first_loss(&events);
    assert_eq!(whole_frames(&read).0.len() as u64, FRAMES, "the peer read them all");
    assert_eq!(acknowledged, 0..FRAMES, "every frame the peer read is acknowledged");
    assert!(possibly.is_empty(), "none is only possibly delivered: {possibly:?}");
}
