//! Cancellation storm on the async facade: 10,000 sends wait in line behind a stalled peer, a
//! pseudo-random half of them is cancelled (dropped, or `cancel()`ed to take the frame back),
//! and then the peer resumes.
//!
//! Proves invariant 4 (giving up is clean) under volume: each cancelled sender leaves the line
//! at once and without waking anyone, `cancel()` hands back exactly its frame, the others are
//! served in FIFO order with no cancelled frame on the wire, and afterwards no waiter is left
//! and the whole capacity is available again. A watchdog aborts the run if the remaining sends
//! never complete (a lost wake-up would leave `block_on` waiting forever).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use futures::future::join_all;
use tidegate_async::{AsyncClient, Bytes};
use tidegate_core::transport::mem::MemListener;

use crate::support::{self, Watchdog, join_within};

const LONG: Duration = Duration::from_secs(10);
const SENDERS: u32 = 10_000;
const FRAME: usize = 8;
const CAPACITY: usize = 4096;

/// Counts its wake-ups.
#[derive(Default)]
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// An 8-byte frame: the tag, then its bitwise complement.
fn frame(tag: u32) -> Bytes {
    let mut f = Vec::with_capacity(FRAME);
    f.extend_from_slice(&tag.to_be_bytes());
    f.extend_from_slice(&(!tag).to_be_bytes());
    Bytes::from(f)
}

/// A linear congruential generator: deterministic, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next_bit(&mut self) -> bool {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) & 1 == 1
    }
}

#[test]
fn cancelling_half_of_ten_thousand_waiters_leaves_the_rest_in_order_and_leaks_nothing() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "the cancellation storm");
    let listener = MemListener::bind(&support::unique_name("cancel-storm")).unwrap();
    let connecting = AsyncClient::builder().capacity(CAPACITY).connect(&listener.url());
    let client = futures::executor::block_on(connecting).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    peer.pause();

    // Fill the buffer exactly.
    let fill: Vec<u32> = (0..(CAPACITY / FRAME) as u32).collect();
    for &tag in &fill {
        client.try_send(frame(tag)).unwrap();
    }
    assert_eq!(client.stats().buffered, CAPACITY);

    // Every sender polls once, so it joins the line.
    let counter = Arc::new(Counter::default());
    let waker = Waker::from(counter.clone());
    let mut cx = Context::from_waker(&waker);
    let base = 1_000_000;
    let mut sends: Vec<_> =
        (0..SENDERS).map(|i| Some(client.send_timeout(frame(base + i), LONG))).collect();
    for send in sends.iter_mut().flatten() {
        assert!(Pin::new(send).poll(&mut cx).is_pending());
    }
    assert_eq!(client.stats().waiters, SENDERS as usize);

    // Cancel a pseudo-random half, some by dropping, some by `cancel()`.
    let mut rng = Lcg(0x5eed);
    let mut cancelled = 0;
    for (i, slot) in sends.iter_mut().enumerate() {
        if !rng.next_bit() {
            continue;
        }
        let send = slot.take().unwrap();
        if i % 3 == 0 {
            assert_eq!(send.cancel(), Some(frame(base + i as u32)), "cancel returns the frame");
        } else {
            drop(send);
        }
        cancelled += 1;
    }
    let kept: Vec<u32> = sends
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_some())
        .map(|(i, _)| base + i as u32)
        .collect();
    assert!((4_000..6_000).contains(&cancelled), "{cancelled} cancelled: not about half");
    let stats = client.stats();
    assert_eq!(stats.waiters, kept.len(), "every cancelled sender left the line");
    assert_eq!(stats.buffered, CAPACITY, "no cancelled frame got in");
    assert_eq!(counter.0.load(Ordering::SeqCst), 0, "a cancellation woke someone needlessly");

    // Resume: the rest complete, in order on the wire.
    peer.resume();
    let reader = thread::spawn(move || {
        let want = (fill.len() + kept.len()) * FRAME;
        let end = Instant::now() + LONG;
        let mut got = Vec::with_capacity(want);
        let mut buf = [0u8; 8192];
        while got.len() < want && Instant::now() < end {
            let n = peer.read_timeout(&mut buf, end.saturating_duration_since(Instant::now()));
            got.extend_from_slice(&buf[..n.expect("the peer stopped getting bytes")]);
        }
        let tags: Vec<u32> = got
            .chunks(FRAME)
            .map(|f| {
                let tag = u32::from_be_bytes(f[..4].try_into().unwrap());
                assert_eq!(u32::from_be_bytes(f[4..].try_into().unwrap()), !tag, "a torn frame");
                tag
            })
            .collect();
        assert_eq!(tags, fill.into_iter().chain(kept).collect::<Vec<_>>());
        peer
    });
    futures::executor::block_on(async {
        for result in join_all(sends.into_iter().flatten()).await {
            result.unwrap();
        }
        client.flush_timeout(LONG).await.unwrap();
    });
    let peer = join_within(reader, LONG, "the reader");

    let stats = client.stats();
    assert_eq!((stats.buffered, stats.waiters), (0, 0), "capacity fully returned, no waiter left");
    assert!(stats.high_water <= CAPACITY);
    // The whole capacity can be taken again at once.
    client.try_send(vec![7; CAPACITY]).unwrap();
    drop(peer);
}
