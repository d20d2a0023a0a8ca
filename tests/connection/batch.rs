//! Sending a `FrameBatch` as one unit: its frames arrive byte-exact, whole and back to back
//! (never interleaved with other senders' frames), the batch takes one place in the FIFO line
//! (it passes no one and no one passes it), it is all or nothing (timeout, cancel, `TooLarge`
//! and `Empty` hand the whole batch back and let the next waiter in), a close report lists
//! each unsent frame of a batch, watermarks fire when a batch crosses them, a framed connection
//! puts a header before each frame, and the async facade does the same.
//!
//! The peer is an in-process `mem://` pipe, paused to make the order of waiters known, except
//! in the TCP test, where producers race and a verifying sink checks the stream.

use std::task::{Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tidegate::transport::mem::{MemListener, MemPeer};
use tidegate::{
    AsyncClient, Budget, Bytes, Client, Config, FrameBatch, SendError, TrySendError, Watermark,
};
use tidegate_core::codec::{Decoder, LengthDelimited};

use crate::support::{
    self, MemSink, TcpSink, Verifier, Watchdog, frame, join_within, unique_name, wait_until,
};

const LONG: Duration = Duration::from_secs(20);
const CAPACITY: usize = 1000;
/// The producer id of the frame that fills the buffer first.
const FILLER: u32 = 100;

fn paused(prefix: &str, config: Config) -> (MemListener, Client, MemPeer) {
    let listener = MemListener::bind(&unique_name(prefix)).unwrap();
    let client = Client::builder().config(config).connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    peer.pause();
    (listener, client, peer)
}

/// A batch of test frames from `producer`, numbered from `first`, of the given lengths.
fn batch_of(producer: u32, first: u64, lens: &[usize]) -> (FrameBatch, Vec<Bytes>) {
    let frames: Vec<Bytes> =
        lens.iter().enumerate().map(|(i, &len)| frame(producer, first + i as u64, len)).collect();
    let mut batch = FrameBatch::new();
    for f in &frames {
        batch.push(f);
    }
    (batch, frames)
}

/// Starts `send` on a thread and waits until it is parked behind the others.
fn park<T: Send + 'static>(
    client: &Client,
    send: impl FnOnce(Client) -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let before = client.stats().waiters;
    let sender = client.clone();
    let handle = thread::spawn(move || send(sender));
    assert!(
        wait_until(LONG, || client.stats().waiters == before + 1),
        "the sender should wait; stats: {:?}",
        client.stats()
    );
    handle
}

#[test]
fn batches_from_racing_producers_arrive_whole_and_back_to_back_over_tcp() {
    let _watchdog = Watchdog::new(Duration::from_secs(120), "batches over tcp");
    const PRODUCERS: u32 = 4;
    const BATCHES: u64 = 150;
    let sink = TcpSink::start();
    // Small enough that producers wait for each other often.
    let client = Client::builder().capacity(8 * 1024).connect(&sink.url()).unwrap();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|id| {
            let client = client.clone();
            thread::spawn(move || {
                let mut rng = support::Lcg::new(u64::from(id) + 1);
                let mut seq = 0;
                let mut batches = Vec::new();
                for _ in 0..BATCHES {
                    if id % 2 == 0 {
                        // Batches of 1 to 12 frames, some of them large.
                        let count = rng.range(1, 12);
                        let lens: Vec<usize> = (0..count).map(|_| rng.range(16, 600)).collect();
                        let (batch, _) = batch_of(id, seq, &lens);
                        client.send_batch(batch).expect("send_batch");
                        batches.push((seq, count as u64));
                        seq += count as u64;
                    } else {
                        client.send(frame(id, seq, rng.range(16, 300))).expect("send");
                        seq += 1;
                    }
                }
                (seq, batches)
            })
        })
        .collect();
    let sent: Vec<(u64, Vec<(u64, u64)>)> =
        producers.into_iter().map(|p| join_within(p, LONG, "a producer")).collect();
    client.flush_timeout(LONG).unwrap();
    let report = client.close_timeout(LONG).expect("close");
    assert!(report.is_clean(), "{report:?}");

    let seen = sink.finish(LONG);
    assert_eq!(seen.error, None, "every byte is right and each producer's order holds");
    for (id, (count, _)) in sent.iter().enumerate() {
        assert_eq!(seen.verifier.next_seq().get(&(id as u32)), Some(count), "producer {id}");
    }
    // Each batch's frames are consecutive on the wire.
    let order = &seen.verifier.order;
    for (id, (_, batches)) in sent.iter().enumerate() {
        for &(first, count) in batches {
            let at = order.iter().position(|&f| f == (id as u32, first)).expect("arrived");
            let run: Vec<(u32, u64)> = (first..first + count).map(|s| (id as u32, s)).collect();
            assert_eq!(&order[at..at + count as usize], &run[..], "batch {id}/{first} split");
        }
    }
    let stats = client.stats();
    let frames: u64 = sent.iter().map(|(count, _)| count).sum();
    assert_eq!((stats.frames_accepted, stats.frames_written), (frames, frames));
}

#[test]
fn a_waiting_batch_is_not_overtaken_by_later_frames() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "batch fifo");
    let (_listener, client, peer) = paused("batch-fifo", Config::new().capacity(CAPACITY));
    client.send(frame(FILLER, 0, 600)).unwrap();
    // 3 x 200 bytes: does not fit beside the filler, and waits as one.
    let (batch, _) = batch_of(1, 0, &[200, 200, 200]);
    let batch_sender = park(&client, move |c| c.send_batch(batch));
    // A frame that fits may not pass the batch, nor may a later sender.
    assert!(client.try_send(frame(2, 0, 16)).unwrap_err().is_full());
    let single = park(&client, |c| c.send(frame(3, 0, 16)));
    let (small, _) = batch_of(4, 0, &[16]);
    assert!(client.try_send_batch(small).unwrap_err().is_full());
    assert_eq!(client.stats().frames_accepted, 1, "nothing passed the stalled peer");

    let sink = MemSink::start(peer, Verifier::allowing_gaps());
    sink.peer().resume();
    join_within(batch_sender, LONG, "the batch").unwrap();
    join_within(single, LONG, "the single frame").unwrap();
    client.flush_timeout(LONG).unwrap();
    client.close_timeout(LONG).unwrap();
    let seen = sink.finish(LONG);
    assert_eq!(seen.error, None);
    assert_eq!(seen.verifier.order, [(FILLER, 0), (1, 0), (1, 1), (1, 2), (3, 0)]);
}

#[test]
fn a_waiting_frame_is_not_overtaken_by_a_later_batch() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "frame before batch");
    let (_listener, client, peer) = paused("batch-behind", Config::new().capacity(CAPACITY));
    client.send(frame(FILLER, 0, 600)).unwrap();
    let single = park(&client, |c| c.send(frame(1, 0, 500)));
    // Would fit beside the filler, but the frame waits ahead of it.
    let (small, _) = batch_of(2, 0, &[16, 16]);
    let err = client.try_send_batch(small.clone()).unwrap_err();
    assert!(err.is_full());
    assert_eq!(err.into_inner(), small, "the whole batch comes back");
    let batch_sender = park(&client, move |c| c.send_batch(small));

    let sink = MemSink::start(peer, Verifier::new());
    sink.peer().resume();
    join_within(single, LONG, "the single frame").unwrap();
    join_within(batch_sender, LONG, "the batch").unwrap();
    client.flush_timeout(LONG).unwrap();
    client.close_timeout(LONG).unwrap();
    let seen = sink.finish(LONG);
    assert_eq!(seen.error, None);
    assert_eq!(seen.verifier.order, [(FILLER, 0), (1, 0), (2, 0), (2, 1)]);
}

#[test]
fn timeout_and_cancel_return_the_whole_batch_and_let_the_next_waiter_in() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "batch give-up");
    let (_listener, client, _peer) = paused("batch-give-up", Config::new().capacity(CAPACITY));
    let conn = client.connection();
    client.send(frame(FILLER, 0, 600)).unwrap();

    // Timeout: a queued batch with a near deadline, and a frame behind it that fits beside
    // the filler once the batch is gone.
    let (batch, _) = batch_of(1, 0, &[300, 300]);
    let mut timed =
        conn.send_batch(batch.clone(), Some(Instant::now() + Duration::from_millis(200)));
    assert!(timed.poll_with(Waker::noop()).is_pending());
    let mut next = conn.send(frame(2, 0, 300), None);
    assert!(next.poll_with(Waker::noop()).is_pending(), "it waits behind the batch");
    let mut outcome = None;
    assert!(wait_until(LONG, || {
        outcome = match timed.poll_with(Waker::noop()) {
            Poll::Ready(result) => Some(result),
            Poll::Pending => None,
        };
        outcome.is_some()
    }));
    match outcome {
        Some(Err(SendError::Timeout(back))) => assert_eq!(back, batch),
        other => panic!("expected a timeout: {other:?}"),
    }
    assert!(matches!(next.poll_with(Waker::noop()), Poll::Ready(Ok(()))), "let in at once");
    assert_eq!(client.stats().buffered, 900);

    // Cancel: the same with a batch that gives up, and a batch behind it that now fits.
    let (big, _) = batch_of(3, 0, &[50, 60]);
    let mut cancelled = conn.send_batch(big.clone(), None);
    assert!(cancelled.poll_with(Waker::noop()).is_pending());
    let (fits, _) = batch_of(4, 0, &[20, 20]);
    let mut behind = conn.send_batch(fits, None);
    assert!(behind.poll_with(Waker::noop()).is_pending(), "it waits behind the first batch");
    assert_eq!(cancelled.cancel(), Some(big));
    assert!(matches!(behind.poll_with(Waker::noop()), Poll::Ready(Ok(()))));
    let stats = client.stats();
    assert_eq!((stats.waiters, stats.buffered, stats.frames_accepted), (0, 940, 4));

    // Dropping a queued batch leaves the line too.
    let (dropped, _) = batch_of(5, 0, &[40, 40]);
    let mut op = conn.send_batch(dropped, None);
    assert!(op.poll_with(Waker::noop()).is_pending());
    drop(op);
    assert_eq!(client.stats().waiters, 0);
    let (last, _) = batch_of(6, 0, &[30, 30]);
    client.try_send_batch(last).unwrap();

    // The blocking facade's timeout hands the batch back too.
    let (late, _) = batch_of(7, 0, &[100]);
    match client.send_batch_timeout(late.clone(), Duration::from_millis(50)) {
        Err(SendError::Timeout(back)) => assert_eq!(back, late),
        other => panic!("expected a timeout: {other:?}"),
    }
}

#[test]
fn too_large_and_empty_batches_are_refused_at_once_with_the_batch() {
    let config = Config::new().capacity(CAPACITY).urgent_reserve(100);
    let (_listener, client, _peer) = paused("batch-refused", config);
    // 950 bytes fit the capacity, but not the capacity less the urgent reserve.
    let (big, _) = batch_of(1, 0, &[500, 450]);
    match client.send_batch(big.clone()) {
        Err(SendError::TooLarge { frame, max_len: capacity, .. }) => {
            assert_eq!((frame, capacity), (big.clone(), 900));
        }
        other => panic!("expected TooLarge: {other:?}"),
    }
    assert!(matches!(client.try_send_batch(big), Err(TrySendError::TooLarge { .. })));
    assert!(
        matches!(client.send_batch(FrameBatch::new()), Err(SendError::Empty(b)) if b.is_empty())
    );
    let mut with_empty = FrameBatch::new();
    with_empty.push(frame(2, 0, 16));
    with_empty.push(b"");
    match client.try_send_batch(with_empty.clone()) {
        Err(TrySendError::Empty(back)) => assert_eq!(back, with_empty),
        other => panic!("expected Empty: {other:?}"),
    }
    let stats = client.stats();
    assert_eq!((stats.frames_accepted, stats.buffered, stats.waiters), (0, 0, 0));

    // A shared budget's limit bounds a batch as it bounds a frame.
    let budget = Budget::new(300);
    let (_listener, client, _peer) =
        paused("batch-budget", Config::new().capacity(CAPACITY).budget(&budget));
    let (over, _) = batch_of(3, 0, &[200, 200]);
    match client.send_batch(over.clone()) {
        Err(SendError::TooLarge { frame, max_len: capacity, .. }) => {
            assert_eq!((frame, capacity), (over, 300))
        }
        other => panic!("expected TooLarge: {other:?}"),
    }
    let (within, _) = batch_of(4, 0, &[100, 200]);
    client.send_batch(within).unwrap();
    assert_eq!(budget.used(), 300, "the batch took its whole length from the budget");
}

#[test]
fn a_close_report_lists_each_unsent_frame_of_a_batch() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "batch close");
    let (_listener, client, _peer) = paused("batch-close", Config::new().capacity(CAPACITY));
    let (first, frames_a) = batch_of(1, 0, &[100, 200, 300]);
    client.send_batch(first).unwrap();
    client.send(frame(2, 0, 50)).unwrap();
    let (second, frames_b) = batch_of(1, 3, &[16, 17]);
    client.try_send_batch(second).unwrap();
    let stats = client.stats();
    assert_eq!((stats.frames_accepted, stats.bytes_accepted), (6, 683));
    // A batch still waiting at the close is refused whole.
    let (waiting, _) = batch_of(3, 0, &[200, 200]);
    let waiter = park(&client, move |c| (c.send_batch(waiting.clone()), waiting));

    let report = client.close_timeout(Duration::ZERO).expect("close");
    let (result, waiting) = join_within(waiter, LONG, "the waiting batch");
    match result {
        Err(SendError::Closed(back)) => assert_eq!(back, waiting),
        other => panic!("expected Closed: {other:?}"),
    }
    let unsent: Vec<Bytes> = report.into_unsent().into_iter().map(|u| u.into_frame()).collect();
    let expected: Vec<Bytes> =
        frames_a.into_iter().chain([frame(2, 0, 50)]).chain(frames_b).collect();
    assert_eq!(unsent, expected);
}

/// Reads from the peer until `len` bytes arrived.
fn read_exactly(peer: &MemPeer, len: usize) -> Vec<u8> {
    let mut wire = Vec::new();
    let mut buf = vec![0u8; 8192];
    let deadline = Instant::now() + LONG;
    while wire.len() < len {
        assert!(Instant::now() < deadline, "only {} of {len} bytes arrived", wire.len());
        let n = peer.read_timeout(&mut buf, LONG).expect("read");
        assert!(n > 0, "the stream ended early");
        wire.extend_from_slice(&buf[..n]);
    }
    wire
}

#[test]
fn a_framed_batch_arrives_with_a_header_before_each_frame() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "framed batch");
    let codec = LengthDelimited::new().width(2);
    let listener = MemListener::bind(&unique_name("batch-framed")).unwrap();
    let client =
        Client::builder().capacity(CAPACITY).framing(codec).connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    let payloads: Vec<Bytes> =
        vec![Bytes::from_static(b"one"), Bytes::new(), Bytes::from(vec![7u8; 300])];
    let mut batch = FrameBatch::new();
    for p in &payloads {
        batch.push(p);
    }
    client.send(&b"single"[..]).unwrap();
    client.send_batch(batch).unwrap();
    assert_eq!(client.stats().bytes_accepted, 6 + 303 + 4 * 2);
    // Headers count against the capacity: 2 x 499 payload bytes fit, with their headers not.
    let mut tight = FrameBatch::new();
    tight.push(vec![1u8; 499]);
    tight.push(vec![2u8; 499]);
    match client.try_send_batch(tight.clone()) {
        Err(TrySendError::TooLarge { frame, max_len: capacity, .. }) => {
            assert_eq!((frame, capacity), (tight, CAPACITY - 4));
        }
        other => panic!("expected TooLarge: {other:?}"),
    }
    let wire = read_exactly(&peer, 6 + 303 + 4 * 2);
    let mut decoder = codec;
    let mut src = BytesMut::from(&wire[..]);
    let mut frames = Vec::new();
    while let Some(frame) = decoder.decode_eof(&mut src).expect("whole frames") {
        frames.push(frame);
    }
    let expected: Vec<Bytes> =
        std::iter::once(Bytes::from_static(b"single")).chain(payloads).collect();
    assert_eq!(frames, expected);
    client.close_timeout(LONG).unwrap();
}

#[test]
fn the_async_facade_sends_batches_and_a_dropped_one_leaves_the_line() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "async batch");
    let listener = MemListener::bind(&unique_name("batch-async")).unwrap();
    futures::executor::block_on(async {
        let client =
            AsyncClient::builder().capacity(CAPACITY).connect(&listener.url()).await.unwrap();
        let peer = listener.accept_timeout(LONG).unwrap();
        peer.pause();
        let (batch, frames_a) = batch_of(1, 0, &[300, 300]);
        client.send_batch(batch).await.unwrap();
        let (more, frames_b) = batch_of(1, 2, &[100]);
        client.try_send_batch(more).unwrap();

        // Does not fit: pending; dropping it leaves the line and sends nothing.
        let (pending, _) = batch_of(2, 0, &[300, 300]);
        {
            let mut send = client.send_batch(pending);
            assert!(futures::poll!(&mut send).is_pending());
            assert_eq!(client.stats().waiters, 1);
        }
        assert_eq!(client.stats().waiters, 0);
        let (full, _) = batch_of(3, 0, &[300, 300]);
        assert!(client.try_send_batch(full).unwrap_err().is_full());

        let sink = MemSink::start(peer, Verifier::new());
        sink.peer().resume();
        client.flush().await.unwrap();
        let report = client.close().await.unwrap();
        assert!(report.is_clean(), "{report:?}");
        let seen = sink.finish(LONG);
        assert_eq!(seen.error, None);
        let order: Vec<(u32, u64)> =
            frames_a.iter().chain(&frames_b).map(|f| support::ident(f)).collect();
        assert_eq!(seen.verifier.order, order);
    });
}

#[test]
fn a_batch_crosses_the_watermarks_as_its_bytes_do() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "batch watermarks");
    let config = Config::new().capacity(CAPACITY).watermarks(800, 200);
    let (_listener, client, peer) = paused("batch-marks", config);
    let events = client.watermarks();
    let (first, _) = batch_of(1, 0, &[300, 300]);
    client.try_send_batch(first).unwrap();
    assert_eq!(events.try_recv(), None, "600 bytes are below the high mark");
    // 850 bytes do not fit beside 600: the batch waits, and the driver moves it in once at
    // most 150 bytes are left, which crosses the high mark in one step.
    let (second, _) = batch_of(2, 0, &[250, 250, 350]);
    let waiter = park(&client, move |c| c.send_batch(second));
    peer.resume();
    join_within(waiter, LONG, "the waiting batch").unwrap();
    client.flush_timeout(LONG).unwrap();
    let seen: Vec<Watermark> = std::iter::from_fn(|| events.try_recv()).collect();
    // No Low before the batch (there was no High); then one event per crossing.
    assert_eq!(seen, [Watermark::High, Watermark::Low]);
    assert!(client.close_timeout(LONG).unwrap().is_clean());
}
