//! The urgent lane: a reserve of the capacity that only urgent (control) frames may use, a
//! line of their own served first, and a place on the wire at the next frame boundary, ahead
//! of data frames queued before them.

use std::thread;
use std::time::Duration;

use tidegate::transport::mem::{MemListener, MemPeer};
use tidegate::{Client, ConnectError, SendError};

use crate::support::{self, Verifier, Watchdog};

const CAPACITY: usize = 1000;
const RESERVE: usize = 100;
const DATA: u32 = 0;
const CONTROL: u32 = 9;

fn connect(name: &str) -> (Client, MemListener, MemPeer) {
    let listener = MemListener::bind(&support::unique_name(name)).unwrap();
    let client = Client::builder()
        .capacity(CAPACITY)
        .urgent_reserve(RESERVE)
        .connect(&listener.url())
        .unwrap();
    let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    (client, listener, peer)
}

/// Reads `bytes` bytes from the peer and returns the order of the frames in them.
fn read_order(peer: &MemPeer, bytes: usize) -> Vec<(u32, u64)> {
    let mut verifier = Verifier::allowing_gaps();
    let mut buf = vec![0u8; 4096];
    while (verifier.bytes as usize) < bytes {
        let n = peer.read_timeout(&mut buf, Duration::from_secs(10)).unwrap();
        assert!(n > 0, "the client closed early");
        verifier.feed(&buf[..n]).unwrap();
    }
    assert!(verifier.at_boundary(), "a frame was cut");
    verifier.order
}

#[test]
fn an_urgent_frame_passes_queued_data_at_the_next_frame_boundary() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "urgent at the next boundary");
    let (client, _listener, peer) = connect("urgent-boundary");
    // The peer takes 150 bytes, then stalls: frame 0 and half of frame 1 are on the wire.
    peer.set_write_capacity(150);
    for seq in 0..9 {
        client.send(support::frame(DATA, seq, 100)).unwrap();
    }
    assert!(peer.wait_unread(150, Duration::from_secs(10)));
    // The driver records the write after the pipe took it.
    assert!(support::wait_until(Duration::from_secs(10), || client.stats().buffered == 750));
    // 750 bytes are held. An urgent frame goes in at once ...
    client.try_send_urgent(support::frame(CONTROL, 0, 60)).unwrap();
    // ... one more data frame, sent after it, fills the data share (900 bytes) ...
    client.try_send(support::frame(DATA, 9, 90)).unwrap();
    assert_eq!(client.stats().buffered, 900);
    // ... and data may not use the reserve, which the urgent frame may.
    assert!(client.try_send(support::frame(DATA, 10, 20)).unwrap_err().is_full());
    peer.set_write_capacity(1 << 20);
    let order = read_order(&peer, 1050);
    // The urgent frame goes in at the first frame boundary the link's retry contract allows:
    // past the frame cut in half, and no later than the end of the write the full pipe
    // refused (which held at most frames 1 to 8: frame 9 came after the urgent frame, and
    // whatever the driver offers later goes behind it). So it passes frame 9 in every
    // interleaving of the driver's turns with these sends.
    let at = order.iter().position(|f| *f == (CONTROL, 0)).expect("the urgent frame arrived");
    assert!((2..=9).contains(&at), "after the frame being written, ahead of frame 9: {order:?}");
    let data: Vec<(u32, u64)> = order.iter().copied().filter(|f| f.0 == DATA).collect();
    assert_eq!(data, (0..10).map(|seq| (DATA, seq)).collect::<Vec<_>>());
    assert!(client.close().expect("close").is_clean());
}

#[test]
fn urgent_frames_go_ahead_of_every_data_frame_not_yet_offered_to_the_link() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "urgent ahead");
    let (client, _listener, peer) = connect("urgent-ahead");
    // The pipe takes frame 0 and refuses the rest: the refused write holds frames 1 and 2,
    // which must be offered again first, whole.
    peer.set_write_capacity(100);
    client.send_batch(batch(0..3)).unwrap();
    assert!(peer.wait_unread(100, Duration::from_secs(10)));
    assert!(support::wait_until(Duration::from_secs(10), || client.stats().buffered == 200));
    // Frames 3 and 4 come after that write was offered. Until the refused write goes
    // through, the driver offers nothing new, so the urgent frames pass them in every
    // interleaving of its turns with these sends.
    client.send_batch(batch(3..5)).unwrap();
    // Wake the driver while the pipe is still full, and give its retry a moment to run: the
    // retried write must offer frames 1 and 2 only. (The pause can only hide a bug, not fail a
    // correct build.)
    peer.set_write_capacity(100);
    thread::sleep(Duration::from_millis(20));
    for seq in 0..3 {
        client.send_urgent(support::frame(CONTROL, seq, 20)).unwrap();
    }
    peer.set_write_capacity(1 << 20);
    let order = read_order(&peer, 560);
    let expected: Vec<(u32, u64)> = (0..3)
        .map(|seq| (DATA, seq))
        .chain((0..3).map(|seq| (CONTROL, seq)))
        .chain((3..5).map(|seq| (DATA, seq)))
        .collect();
    assert_eq!(order, expected);
}

/// Data frames `seqs`, 100 bytes each, as one batch.
fn batch(seqs: std::ops::Range<u64>) -> tidegate::FrameBatch {
    let mut batch = tidegate::FrameBatch::new();
    for seq in seqs {
        batch.push(support::frame(DATA, seq, 100));
    }
    batch
}

#[test]
fn waiting_urgent_senders_are_served_before_waiting_data_senders() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "urgent line first");
    let (client, _listener, peer) = connect("urgent-line");
    peer.pause();
    client.send(support::frame(DATA, 0, CAPACITY - RESERVE)).unwrap();
    client.send_urgent(support::frame(CONTROL, 0, RESERVE)).unwrap();
    assert_eq!(client.stats().buffered, CAPACITY);
    let data = {
        let client = client.clone();
        thread::spawn(move || client.send(support::frame(DATA, 1, 100)))
    };
    assert!(support::wait_until(Duration::from_secs(10), || client.stats().waiters == 1));
    let urgent = {
        let client = client.clone();
        thread::spawn(move || client.send_urgent(support::frame(CONTROL, 1, 100)))
    };
    assert!(support::wait_until(Duration::from_secs(10), || client.stats().waiters == 2));
    peer.resume();
    data.join().unwrap().unwrap();
    urgent.join().unwrap().unwrap();
    let order = read_order(&peer, CAPACITY + 200);
    let control_1 = order.iter().position(|f| *f == (CONTROL, 1)).unwrap();
    let data_1 = order.iter().position(|f| *f == (DATA, 1)).unwrap();
    assert!(control_1 < data_1, "{order:?}");
}

#[test]
fn a_data_frame_larger_than_the_data_share_is_too_large() {
    let (client, _listener, _peer) = connect("urgent-too-large");
    match client.send(vec![0u8; CAPACITY - RESERVE + 1]) {
        Err(SendError::TooLarge { max_len: capacity, .. }) => {
            assert_eq!(capacity, CAPACITY - RESERVE)
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    client.send_urgent(vec![0u8; CAPACITY]).unwrap();
}

#[test]
fn the_reserve_must_leave_room_for_data() {
    let listener = MemListener::bind(&support::unique_name("urgent-bad")).unwrap();
    let err =
        Client::builder().capacity(100).urgent_reserve(100).connect(&listener.url()).unwrap_err();
    assert!(matches!(err, ConnectError::InvalidConfig { .. }), "{err:?}");
}
