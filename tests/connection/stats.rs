//! The counters of `Stats` beyond bytes and frames: writes, `try_send` refusals, timeouts,
//! cancellations, and the sampled time from acceptance to written.

use std::time::{Duration, Instant};

use futures::FutureExt;
use tidegate::transport::mem::MemListener;
use tidegate::{AsyncClient, Client, SendError, TrySendError};

use crate::support::{self, Watchdog};

const LONG: Duration = Duration::from_secs(20);

#[test]
fn refusals_timeouts_and_cancellations_are_counted_once_each() {
    let _watchdog = Watchdog::new(LONG, "stats counters");
    let listener = MemListener::bind(&support::unique_name("stats-counters")).unwrap();
    let client = Client::builder().capacity(8).connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    peer.pause();
    client.send("12345678").unwrap();
    // Two refusals, one timeout, one cancellation; a send that fits counts as none of them.
    assert!(matches!(client.try_send("x"), Err(TrySendError::Full(_))));
    assert!(matches!(
        client.try_send_batch(["y"].into_iter().collect()),
        Err(TrySendError::Full(_))
    ));
    assert!(matches!(
        client.send_timeout("z", Duration::from_millis(10)),
        Err(SendError::Timeout(_))
    ));
    let asynchronous = AsyncClient::from_connection(client.connection().clone());
    let mut send = asynchronous.send("w");
    assert!((&mut send).now_or_never().is_none(), "it waits in line");
    assert_eq!(send.cancel().unwrap(), "w");
    let stats = client.stats();
    assert_eq!(stats.try_send_refused, 2, "{stats:?}");
    assert_eq!(stats.send_timeouts, 1, "{stats:?}");
    assert_eq!(stats.sends_cancelled, 1, "{stats:?}");
    assert_eq!(stats.sends_waited, 2, "the timed-out and the cancelled send waited");
    peer.resume();
    client.flush_timeout(LONG).unwrap();
    let stats = client.stats();
    assert!(stats.write_calls >= 1 && stats.write_calls <= stats.frames_written, "{stats:?}");
    assert!(client.close().unwrap().is_clean());
    // The refused, timed-out and cancelled frames never reached the peer.
    assert_eq!(read_to_end(&peer), b"12345678");
}

/// Everything the peer receives until the client's end of stream.
fn read_to_end(peer: &tidegate::transport::mem::MemPeer) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match peer.read_timeout(&mut buf, LONG).unwrap() {
            0 => return got,
            n => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn the_write_latency_covers_the_time_the_peer_did_not_read() {
    let _watchdog = Watchdog::new(LONG, "write latency");
    let listener = MemListener::bind(&support::unique_name("stats-latency")).unwrap();
    let client = Client::connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    assert_eq!(client.stats().write_latency.samples, 0);
    peer.pause();
    client.send("held back").unwrap();
    let accepted = Instant::now();
    // However long this takes, the frame waited at least as long before it was written.
    assert!(!support::wait_until(Duration::from_millis(30), || false));
    let paused = accepted.elapsed();
    peer.resume();
    client.flush_timeout(LONG).unwrap();
    let latency = client.stats().write_latency;
    assert_eq!(latency.samples, 1, "{latency:?}");
    assert!(latency.max >= paused, "{latency:?} < {paused:?}");
    assert!(latency.p50 <= latency.p99 && latency.p99 <= latency.max, "{latency:?}");
    // A busy connection is sampled about once per write, not once per frame.
    for i in 0..1000u32 {
        client.send(format!("{i}")).unwrap();
    }
    client.flush_timeout(LONG).unwrap();
    let stats = client.stats();
    assert!(stats.write_latency.samples <= stats.write_calls + 1, "{stats:?}");
    assert!(stats.write_latency.samples >= 2, "{stats:?}");
    assert!(client.close().unwrap().is_clean());
    let expected: String = std::iter::once("held back".to_string())
        .chain((0..1000u32).map(|i| format!("{i}")))
        .collect();
    assert_eq!(read_to_end(&peer), expected.as_bytes(), "the peer got every frame, in order");
}
