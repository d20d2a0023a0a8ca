//! Receivers waiting in line pass the wake-up on: when one read brings enough for several
//! waiting receivers, only the head is woken by the driver; the head, once it has taken its
//! item, must wake the next one while data remains, or that one waits for more bytes (or its
//! deadline) although its item is already in the buffer.
//!
//! Each test parks its receivers one after the other (each seen waiting in `Stats::receivers`
//! before the next starts), then the `mem://` peer writes everything in one call, so the
//! driver reads it all in one turn and wakes only the head. Every receiver must then get its
//! item well before its own deadline.

use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tidegate::transport::mem::{MemListener, MemPeer};
use tidegate::{Bytes, Client, RecvError};
use tidegate_core::codec::LengthDelimited;

use crate::support::{Watchdog, join_within, unique_name, wait_until};

/// Every wait for a condition.
const WAIT: Duration = Duration::from_secs(5);
/// A receiver's own deadline: far longer than the test waits for it, so only a wake-up can
/// end its wait in time.
const RECV_DEADLINE: Duration = Duration::from_secs(60);
const WATCHDOG: Duration = Duration::from_secs(120);

/// A receive on a thread of its own, with how long it took.
type Receiver = JoinHandle<(Result<Option<Bytes>, RecvError>, Duration)>;

fn connect(name: &str, framed: bool) -> (MemListener, Client, MemPeer) {
    let listener = MemListener::bind(&unique_name(name)).unwrap();
    // One turn of the driver reads everything a test writes (a smaller read budget would
    // split it over two turns, and the second read would wake the next receiver itself).
    let mut builder = Client::builder().inbound_capacity(256 * 1024).write_bias(256 * 1024);
    if framed {
        builder = builder.framing(LengthDelimited::new());
    }
    let client = builder.connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(WAIT).unwrap();
    (listener, client, peer)
}

/// Starts `count` receivers, each seen waiting before the next one starts, so they are in
/// line in that order.
fn park_receivers(client: &Client, count: usize) -> Vec<Receiver> {
    (0..count)
        .map(|i| {
            let receiver = client.clone();
            let handle = thread::spawn(move || {
                let start = Instant::now();
                (receiver.recv_timeout(RECV_DEADLINE), start.elapsed())
            });
            assert!(
                wait_until(WAIT, || client.stats().receivers == i + 1),
                "receiver {i} never waited: {:?}",
                client.stats()
            );
            handle
        })
        .collect()
}

/// Joins the receivers in line order; each must have its item, and have had it quickly.
fn items(receivers: Vec<Receiver>) -> Vec<Bytes> {
    receivers
        .into_iter()
        .enumerate()
        .map(|(i, handle)| {
            let (item, elapsed) = join_within(handle, WAIT, &format!("receiver {i} in line"));
            match item {
                Ok(Some(item)) => {
                    assert!(elapsed < RECV_DEADLINE, "receiver {i} took {elapsed:?}");
                    item
                }
                other => panic!("receiver {i} got {other:?} instead of its item"),
            }
        })
        .collect()
}

/// A frame of the default length-delimited codec: a 4-byte big-endian length, then `payload`.
fn encoded(payload: &[u8]) -> Vec<u8> {
    let mut wire = (payload.len() as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(payload);
    wire
}

#[test]
fn three_waiting_receivers_each_get_a_frame_from_one_read() {
    let _watchdog = Watchdog::new(WATCHDOG, "framed receivers pass the wake-up on");
    let (_listener, client, peer) = connect("recv-handoff-framed", true);
    let receivers = park_receivers(&client, 3);
    let payloads: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
    peer.write(&payloads.iter().flat_map(|p| encoded(p)).collect::<Vec<u8>>());
    let got = items(receivers);
    assert_eq!(got, payloads, "each receiver got the next frame, in line order");
    let stats = client.stats();
    assert_eq!((stats.receivers, stats.inbound_held), (0, 0), "{stats:?}");
}

#[test]
fn two_waiting_receivers_share_more_than_one_chunk_from_one_read() {
    let _watchdog = Watchdog::new(WATCHDOG, "unframed receivers pass the wake-up on");
    let (_listener, client, peer) = connect("recv-handoff-chunks", false);
    let receivers = park_receivers(&client, 2);
    // More than one receive returns (64 KiB), less than one turn reads: what the first
    // receiver leaves is the second one's.
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    peer.write(&data);
    let got = items(receivers);
    assert!(got.iter().all(|chunk| !chunk.is_empty()), "{:?}", got.iter().map(Bytes::len));
    assert_eq!(got.concat(), data, "the two chunks are the stream, in order");
    assert_eq!(client.stats().receivers, 0);
}
