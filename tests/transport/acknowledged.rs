//! The acknowledged fate: frames a lost link wrote whole and whose bytes its peer acknowledged.
//! Each test checks it against what the peer itself read:
//!
//! - over `mem://`, whose peer acknowledges what it reads, a peer that read three frames and
//!   left the fourth unread is reset: exactly the three are acknowledged, the fourth possibly
//!   delivered, and the next link carries on after it;
//! - over TCP, a kernel peer that read every frame, once the client's kernel counts them all
//!   acknowledged, is reset: every frame is acknowledged and none possibly delivered.

use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

use tidegate::transport::mem::MemListener;
use tidegate::{Client, ConnectionEvent};

use crate::reconnect::{LONG, quick};
use crate::support::{Watchdog, frame, reset, unique_name, wait_until, whole_frames};

/// The first `Disconnected` event's acknowledged range and possibly delivered frames.
fn first_loss(events: &tidegate::Events) -> (std::ops::Range<u64>, std::ops::Range<u64>) {
    loop {
        match events.recv_timeout(LONG).expect("an event").expect("not ended") {
            ConnectionEvent::Disconnected { acknowledged, possibly_delivered, .. } => {
                assert!(possibly_delivered.cut_frames().is_empty(), "{possibly_delivered:?}");
                return (acknowledged, possibly_delivered.written());
            }
            ConnectionEvent::GaveUp { cause } => panic!("gave up: {cause}"),
            _ => {}
        }
    }
}

#[test]
fn frames_the_peer_read_are_acknowledged_and_the_unread_one_possibly_delivered() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "acknowledged_mem");
    let listener = MemListener::bind(&unique_name("acknowledged")).unwrap();
    let client = Client::builder().reconnect(quick()).connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    // One frame in the pipe at a time: each write is one frame.
    peer.set_write_capacity(100);
    let events = client.events();
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
    peer.reset();
    let (acknowledged, possibly) = first_loss(&events);
    assert_eq!(whole_frames(&read).0, [(1, 0), (1, 1), (1, 2)], "what the peer read");
    assert_eq!(acknowledged, 0..3, "the frames the peer read");
    assert_eq!(possibly, 3..4, "the frame it left unread");
    let stats = client.stats();
    assert_eq!((stats.frames_acknowledged, stats.frames_possibly_delivered), (3, 1));

    // The next link carries on after the fourth frame, which is not sent again.
    let next = listener.accept_timeout(LONG).unwrap();
    client.send(frame(1, 4, 100)).unwrap();
    let mut got = [0u8; 100];
    assert_eq!(next.read_timeout(&mut got, LONG).unwrap(), 100);
    assert_eq!(whole_frames(&got).0, [(1, 4)]);
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
    let (acknowledged, possibly) = first_loss(&events);
    assert_eq!(whole_frames(&read).0.len() as u64, FRAMES, "the peer read them all");
    assert_eq!(acknowledged, 0..FRAMES, "every frame the peer read is acknowledged");
    assert!(possibly.is_empty(), "none is only possibly delivered: {possibly:?}");
}
