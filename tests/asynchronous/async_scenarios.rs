//! The async facade's behaviour under backpressure, written once as async scenarios and run on
//! every executor it is meant for: `futures::executor`, tokio (current-thread and
//! multi-thread), async-std and smol. The tokio runtimes are built with no driver enabled, so
//! a scenario that needed a runtime timer or reactor would fail there.
//!
//! Scenarios: backpressure (pending while full, resumed when the peer reads, the bound holds),
//! FIFO (waiters served in arrival order, no barging by small frames or `try_send`), timeouts
//! (fire within a margin with the frame back, capacity intact), disconnect (waiters and later
//! senders get their frames back, close reports the unsent ones), byte-exact delivery from
//! concurrent producers with partial writes, and the `Sink`.
//!
//! The peer is the in-process `mem://` transport: pausing it stalls the client exactly.

use std::future::Future;
use std::panic::{AssertUnwindSafe, resume_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use futures::future::{Either, FutureExt, join_all, poll_fn};
use futures::{SinkExt, StreamExt, poll, stream};
use tidegate_async::{
    AsyncClient, AsyncClientBuilder, Bytes, DisconnectKind, FlushError, SendError, SinkError,
    TrySendError,
};
use tidegate_core::transport::mem::{MemListener, MemPeer};

use crate::support::unique_name;

/// How long any one scenario may take on one executor before it counts as hung.
const SCENARIO_LIMIT: Duration = Duration::from_secs(30);
/// A deadline for waits that are expected to end much sooner.
const LONG: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// The executor matrix.

/// Runs `scenario` on every executor in turn. Each run gets its own name (for its `mem://`
/// listener) and must finish within [`SCENARIO_LIMIT`].
fn on_every_executor<F, Fut>(test: &str, scenario: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let run = |executor: &str| within(SCENARIO_LIMIT, scenario(format!("{test}-{executor}")));

    futures::executor::block_on(run("futures"));

    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(run("tokio-current-thread"));

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    // Spawned, so it runs on a worker thread, not on the thread that blocks.
    if let Err(err) = rt.block_on(rt.spawn(run("tokio-multi-thread"))) {
        resume_unwind(err.into_panic());
    }

    let task = async_std::task::spawn(AssertUnwindSafe(run("async-std")).catch_unwind());
    if let Err(panic) = async_std::task::block_on(task) {
        resume_unwind(panic);
    }

    let task = smol::spawn(AssertUnwindSafe(run("smol")).catch_unwind());
    if let Err(panic) = smol::block_on(task) {
        resume_unwind(panic);
    }
}

/// Runs `fut`, panicking if it takes longer than `limit`. The timer is a thread, so it works
/// on any executor.
async fn within(limit: Duration, fut: impl Future<Output = ()>) {
    let fut = std::pin::pin!(fut);
    if let Either::Right(_) = futures::future::select(fut, Timer::start(limit)).await {
        panic!("the scenario did not finish within {limit:?}");
    }
}

/// A future that resolves after a duration, driven by a thread of its own.
struct Timer {
    fired: Arc<(AtomicBool, Mutex<Option<Waker>>)>,
    /// Dropping it ends the thread early.
    _stop: mpsc::Sender<()>,
}

impl Timer {
    fn start(after: Duration) -> Self {
        let fired = Arc::new((AtomicBool::new(false), Mutex::new(None::<Waker>)));
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = fired.clone();
        thread::spawn(move || {
            if stopped.recv_timeout(after) == Err(mpsc::RecvTimeoutError::Timeout) {
                shared.0.store(true, Ordering::SeqCst);
                if let Some(waker) = shared.1.lock().unwrap().take() {
                    waker.wake();
                }
            }
        });
        Self { fired, _stop: stop }
    }
}

impl Future for Timer {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        *self.fired.1.lock().unwrap() = Some(cx.waker().clone());
        if self.fired.0.load(Ordering::SeqCst) { Poll::Ready(()) } else { Poll::Pending }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// A client connected to an in-process peer, and a thread reading everything the peer gets.
struct Setup {
    client: AsyncClient,
    peer: Arc<MemPeer>,
    _listener: MemListener,
}

async fn open(name: &str, builder: AsyncClientBuilder) -> Setup {
    let listener = MemListener::bind(&unique_name(name)).unwrap();
    let client = builder.connect(&listener.url()).await.unwrap();
    let peer = Arc::new(listener.accept_timeout(LONG).unwrap());
    Setup { client, peer, _listener: listener }
}

/// Reads everything the client writes until it closes the link (or [`LONG`] passes).
fn reader(peer: Arc<MemPeer>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let end = Instant::now() + LONG;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match peer.read_timeout(&mut buf, left) {
                Ok(0) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(err) => panic!("the peer stopped reading: {err} after {} bytes", got.len()),
            }
        }
    })
}

/// A frame of `len` bytes, all equal to `tag`.
fn frame(tag: u8, len: usize) -> Bytes {
    Bytes::from(vec![tag; len])
}

fn concat<'a>(frames: impl IntoIterator<Item = &'a Bytes>) -> Vec<u8> {
    frames.into_iter().flat_map(|f| f.iter().copied()).collect()
}

/// Asserts two byte strings are equal, naming the first difference instead of dumping both.
fn assert_same_bytes(got: &[u8], want: &[u8]) {
    let first_diff = got.iter().zip(want).position(|(a, b)| a != b);
    assert!(
        got.len() == want.len() && first_diff.is_none(),
        "got {} bytes, want {}; first difference at {:?}",
        got.len(),
        want.len(),
        first_diff
    );
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

/// A send is pending while the buffer is full, stays pending while the peer is stalled, and
/// completes when the peer reads; the buffer never holds more than its capacity.
async fn backpressure(name: String) {
    let s = open(&name, AsyncClient::builder().capacity(64)).await;
    s.peer.pause();
    let reader = reader(s.peer.clone());
    let client = &s.client;

    let fill: Vec<Bytes> = (0..4).map(|i| frame(i, 16)).collect();
    for f in &fill {
        // Room for each: accepted at the first poll.
        assert!(matches!(client.send(f.clone()).now_or_never(), Some(Ok(()))));
    }
    assert_eq!(client.stats().buffered, 64);

    let last = frame(4, 16);
    let mut send = client.send_timeout(last.clone(), LONG);
    assert!(poll!(&mut send).is_pending(), "the buffer is full");
    assert!(send.is_queued());
    assert_eq!(client.stats().waiters, 1);
    let err = client.try_send(frame(9, 1)).unwrap_err();
    assert!(matches!(&err, TrySendError::Full(_)));
    assert_eq!(err.into_inner(), frame(9, 1));
    // A frame that can never fit fails at once instead of waiting.
    let err = client.send(frame(9, 65)).await.unwrap_err();
    assert!(matches!(err, SendError::TooLarge { max_len: 64, .. }));

    // The peer is stalled: still pending after a while, and still the only waiter.
    thread::sleep(Duration::from_millis(50));
    assert!(poll!(&mut send).is_pending(), "nothing was freed");
    assert_eq!(client.stats().buffered, 64);

    s.peer.resume();
    send.await.unwrap();
    client.flush_timeout(LONG).await.unwrap();
    let stats = client.stats();
    assert_eq!((stats.buffered, stats.waiters), (0, 0));
    assert!(stats.high_water <= 64, "the bound held: {}", stats.high_water);
    assert!(stats.sends_waited >= 1);

    assert!(client.close_timeout(LONG).await.unwrap().is_clean());
    let got = reader.join().unwrap();
    assert_same_bytes(&got, &concat(fill.iter().chain([&last])));
}

/// Waiting senders are served in arrival order: small frames that would fit do not pass a
/// large one at the head, and neither does `try_send` nor a later `send`.
async fn fifo(name: String) {
    let s = open(&name, AsyncClient::builder().capacity(64)).await;
    s.peer.pause();
    let reader = reader(s.peer.clone());
    let client = &s.client;

    let fill: Vec<Bytes> = (0..4).map(|i| frame(i, 15)).collect();
    for f in &fill {
        client.try_send(f.clone()).unwrap();
    }
    assert_eq!(client.stats().buffered, 60, "4 bytes free");

    // The 3-, 2- and 1-byte frames would fit in the free space, but arrive after the head.
    let sizes = [16, 3, 32, 2, 48, 1, 64, 8];
    let waiting: Vec<Bytes> = sizes.iter().zip(10..).map(|(&len, tag)| frame(tag, len)).collect();
    let mut sends: Vec<_> = waiting.iter().map(|f| client.send_timeout(f.clone(), LONG)).collect();
    for send in &mut sends {
        assert!(poll!(&mut *send).is_pending());
        assert!(send.is_queued());
    }
    assert_eq!(client.stats().waiters, sizes.len());
    assert_eq!(client.stats().buffered, 60, "no one barged into the free space");

    let small = frame(99, 4);
    assert!(matches!(client.try_send(small.clone()), Err(TrySendError::Full(_))));
    let late = frame(100, 4);
    let mut late_send = client.send_timeout(late.clone(), LONG);
    assert!(poll!(&mut late_send).is_pending(), "a newcomer queues behind the waiters");

    s.peer.resume();
    sends.push(late_send);
    for result in join_all(sends).await {
        result.unwrap();
    }
    client.flush_timeout(LONG).await.unwrap();
    assert_eq!(client.stats().waiters, 0);

    assert!(client.close_timeout(LONG).await.unwrap().is_clean());
    let got = reader.join().unwrap();
    assert_same_bytes(&got, &concat(fill.iter().chain(&waiting).chain([&late])));
}

/// A send that cannot get room within its timeout returns within the deadline plus a margin,
/// with its frame, whether the timeout is the configured default or given per call; the
/// capacity is intact afterwards and the timed-out frames never reach the wire.
async fn timeout(name: String) {
    const DEFAULT: Duration = Duration::from_millis(150);
    const PER_CALL: Duration = Duration::from_millis(250);
    const MARGIN: Duration = Duration::from_millis(1500);

    let s = open(&name, AsyncClient::builder().capacity(64).send_timeout(DEFAULT)).await;
    s.peer.pause();
    let reader = reader(s.peer.clone());
    let client = &s.client;

    let fill = frame(1, 64);
    client.send(fill.clone()).await.unwrap();

    for (timeout, per_call) in [(DEFAULT, false), (PER_CALL, true)] {
        let lost = frame(2, 16);
        let start = Instant::now();
        let result = if per_call {
            client.send_timeout(lost.clone(), timeout).await
        } else {
            client.send(lost.clone()).await
        };
        let took = start.elapsed();
        let err = result.unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert_eq!(err.into_inner(), lost, "the frame comes back");
        assert!(took >= timeout, "returned after {took:?}, before the deadline {timeout:?}");
        assert!(took < timeout + MARGIN, "returned after {took:?}, deadline {timeout:?}");
        let stats = client.stats();
        assert_eq!((stats.waiters, stats.buffered), (0, 64), "the waiter left, nothing else");
    }

    // The capacity is intact: once drained, the whole of it can be filled again at once.
    s.peer.resume();
    client.flush_timeout(LONG).await.unwrap();
    assert_eq!(client.stats().buffered, 0);
    s.peer.pause();
    let refill: Vec<Bytes> = (3..7).map(|i| frame(i, 16)).collect();
    for f in &refill {
        client.try_send(f.clone()).unwrap();
    }
    assert_eq!(client.stats().buffered, 64);
    s.peer.resume();

    assert!(client.close_timeout(LONG).await.unwrap().is_clean());
    let got = reader.join().unwrap();
    assert_same_bytes(&got, &concat([&fill].into_iter().chain(&refill)));
}

/// The peer resets the connection mid-stream: waiting senders wake with `Disconnected`
/// carrying their own frames and the cause, later operations fail the same way, and `close`
/// hands back every buffered frame.
async fn disconnect(name: String) {
    let s = open(&name, AsyncClient::builder().capacity(64)).await;
    let reader = reader(s.peer.clone());
    let client = &s.client;

    // Some traffic first.
    let before: Vec<Bytes> = (0..3).map(|i| frame(i, 20)).collect();
    for f in &before {
        client.send(f.clone()).await.unwrap();
    }
    client.flush_timeout(LONG).await.unwrap();

    s.peer.pause();
    let buffered: Vec<Bytes> = (10..14).map(|i| frame(i, 16)).collect();
    for f in &buffered {
        client.try_send(f.clone()).unwrap();
    }
    let waiting: Vec<Bytes> = (20..23).map(|i| frame(i, 8)).collect();
    let mut sends: Vec<_> = waiting.iter().map(|f| client.send_timeout(f.clone(), LONG)).collect();
    for send in &mut sends {
        assert!(poll!(&mut *send).is_pending());
    }

    s.peer.reset();
    for (send, mine) in sends.into_iter().zip(&waiting) {
        match send.await {
            Err(SendError::Disconnected { frame, cause }) => {
                assert_eq!(&frame, mine, "each sender gets its own frame back");
                assert_eq!(cause.kind(), DisconnectKind::Reset);
            }
            other => panic!("expected Disconnected, got {other:?}"),
        }
    }
    let stats = client.stats();
    assert_eq!(stats.waiters, 0);

    let late = frame(30, 8);
    match client.send(late.clone()).await {
        Err(SendError::Disconnected { frame, .. }) => assert_eq!(frame, late),
        other => panic!("expected Disconnected, got {other:?}"),
    }
    assert!(matches!(client.try_send(late.clone()), Err(TrySendError::Disconnected { .. })));
    assert!(matches!(client.flush().await, Err(FlushError::Disconnected(_))));

    let report = client.close_timeout(LONG).await.unwrap();
    assert_eq!(report.cause().map(|c| c.kind()), Some(DisconnectKind::Reset));
    let unsent: Vec<Bytes> = report.unsent().iter().map(|u| u.frame().clone()).collect();
    assert_eq!(unsent, buffered, "every buffered frame is handed back, oldest first");
    assert_eq!(report.bytes_written(), 60);

    let got = reader.join().unwrap();
    assert_same_bytes(&got, &concat(&before));
}

/// Four concurrent producers send frames of many sizes through a small buffer over a pipe that
/// takes a few bytes at a time (partial writes): every frame arrives whole, byte-exact, in
/// each producer's order.
async fn byte_exact(name: String) {
    const PRODUCERS: u16 = 4;
    const FRAMES: u32 = 400;

    let s = open(&name, AsyncClient::builder().capacity(1024)).await;
    s.peer.set_write_capacity(97);
    let reader = reader(s.peer.clone());
    let client = &s.client;

    let producers = (0..PRODUCERS).map(|p| async move {
        for seq in 0..FRAMES {
            client.send_timeout(encode(p, seq), LONG).await.unwrap();
        }
    });
    join_all(producers).await;
    let report = client.close_timeout(LONG).await.unwrap();
    assert!(report.is_clean(), "{report:?}");

    let got = reader.join().unwrap();
    assert_eq!(got.len() as u64, report.bytes_written());
    let mut next = [0u32; PRODUCERS as usize];
    let mut rest = &got[..];
    while !rest.is_empty() {
        let (p, seq, len) = decode(rest);
        assert_eq!(seq, next[p as usize], "producer {p} out of order");
        assert_eq!(&rest[..len], &encode(p, seq)[..], "frame {p}/{seq} damaged");
        next[p as usize] += 1;
        rest = &rest[len..];
    }
    assert_eq!(next, [FRAMES; PRODUCERS as usize]);
}

/// `[len: u32][producer: u16][seq: u32][payload]`, with the length and payload derived from
/// the producer and sequence number.
fn encode(producer: u16, seq: u32) -> Bytes {
    let len = 10 + (u32::from(producer) * 7919 + seq * 104_729) as usize % 290;
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&(len as u32).to_be_bytes());
    f.extend_from_slice(&producer.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend((f.len()..len).map(|i| (i as u32 ^ seq ^ u32::from(producer)) as u8));
    Bytes::from(f)
}

fn decode(stream: &[u8]) -> (u16, u32, usize) {
    assert!(stream.len() >= 10, "a truncated header");
    let len = u32::from_be_bytes(stream[0..4].try_into().unwrap()) as usize;
    let producer = u16::from_be_bytes(stream[4..6].try_into().unwrap());
    let seq = u32::from_be_bytes(stream[6..10].try_into().unwrap());
    assert!(stream.len() >= len, "a truncated frame");
    (producer, seq, len)
}

/// `stream.forward(sink)` delivers every frame in order through a small buffer and flushes,
/// leaving the connection open; `SinkExt::send` flushes; errors carry the frame.
async fn sink_forward(name: String) {
    let s = open(&name, AsyncClient::builder().capacity(64)).await;
    s.peer.set_write_capacity(10);
    let reader = reader(s.peer.clone());
    let client = &s.client;

    let mut sink = client.sink();
    let first = frame(1, 40);
    sink.send(first.clone()).await.unwrap();
    assert_eq!(client.stats().bytes_written, 40, "send flushes");
    let err = sink.send(frame(2, 65)).await.unwrap_err();
    assert!(matches!(&err, SinkError::Send(SendError::TooLarge { .. })));
    assert_eq!(err.into_frame().unwrap(), frame(2, 65));

    let frames: Vec<Bytes> = (0..200u8).map(|i| frame(i, 1 + usize::from(i) % 60)).collect();
    stream::iter(frames.clone()).map(Ok).forward(sink).await.unwrap();
    assert!(!client.is_closed(), "closing the sink leaves the connection open");
    assert_eq!(client.stats().buffered, 0, "closing the sink flushes it");
    assert!(client.close().await.unwrap().is_clean());

    let got = reader.join().unwrap();
    assert_same_bytes(&got, &concat([&first].into_iter().chain(&frames)));
}

/// The sink reserves nothing in `poll_ready`: its frame joins the FIFO line at `start_send`,
/// behind a sender that came first and ahead of later ones and of `try_send`.
async fn sink_does_not_promise_space(name: String) {
    let s = open(&name, AsyncClient::builder().capacity(32)).await;
    s.peer.pause();
    let reader = reader(s.peer.clone());
    let client = &s.client;
    let mut sink = client.sink();

    let fill = [frame(1, 16), frame(2, 16)];
    for f in &fill {
        sink.feed(f.clone()).await.unwrap();
    }
    assert_eq!(client.stats().buffered, 32);

    // Ready although the buffer is full: nothing is promised.
    assert!(matches!(poll_fn(|cx| sink.poll_ready_unpin(cx)).now_or_never(), Some(Ok(()))));
    // Another producer comes first …
    let other = frame(3, 16);
    let mut other_send = client.send_timeout(other.clone(), LONG);
    assert!(poll!(&mut other_send).is_pending());
    // … so the sink's frame queues behind it.
    let mine = frame(4, 16);
    sink.start_send_unpin(mine.clone()).unwrap();
    assert!(sink.has_pending());
    assert_eq!(client.stats().waiters, 2);
    assert!(poll!(poll_fn(|cx| sink.poll_ready_unpin(cx))).is_pending(), "its frame waits");
    assert!(matches!(client.try_send(frame(5, 1)), Err(TrySendError::Full(_))));
    let later = frame(6, 8);
    let mut later_send = client.send_timeout(later.clone(), LONG);
    assert!(poll!(&mut later_send).is_pending());

    s.peer.resume();
    other_send.await.unwrap();
    sink.flush().await.unwrap();
    assert!(!sink.has_pending());
    later_send.await.unwrap();
    sink.close().await.unwrap();
    assert!(client.close().await.unwrap().is_clean());

    let got = reader.join().unwrap();
    assert_same_bytes(&got, &concat(fill.iter().chain([&other, &mine, &later])));
}

/// A flush covers every frame the sink took before it completes, including frames sent while
/// an earlier flush was pending.
async fn sink_flush_covers_frames_sent_during_it(name: String) {
    let s = open(&name, AsyncClient::builder().capacity(64)).await;
    s.peer.pause();
    s.peer.set_write_capacity(16);
    let client = &s.client;
    let mut sink = client.sink();

    let first = frame(1, 16);
    sink.feed(first.clone()).await.unwrap();
    assert!(poll!(poll_fn(|cx| sink.poll_flush_unpin(cx))).is_pending(), "the peer is paused");
    let second = frame(2, 16);
    sink.feed(second.clone()).await.unwrap();
    // The pipe takes only the first frame; the second stays buffered until the peer reads.
    s.peer.resume();
    assert!(s.peer.wait_unread(16, LONG));
    assert!(
        poll!(poll_fn(|cx| sink.poll_flush_unpin(cx))).is_pending(),
        "the flush must also cover the frame sent after it started"
    );
    let reader = reader(s.peer.clone());
    sink.flush().await.unwrap();
    assert_eq!(client.stats().bytes_written, 32);
    sink.close().await.unwrap();
    assert!(client.close().await.unwrap().is_clean());
    let got = reader.join().unwrap();
    assert_same_bytes(&got, &concat([&first, &second]));
}

/// A reset while the sink's frame waits: `poll_ready` returns the frame in the error, closing
/// the sink says why its flush failed, and the connection's close reports the buffered frames.
async fn sink_disconnect(name: String) {
    let s = open(&name, AsyncClient::builder().capacity(32)).await;
    s.peer.pause();
    let client = &s.client;
    let mut sink = client.sink();

    let buffered = [frame(1, 20), frame(2, 12)];
    for f in &buffered {
        sink.feed(f.clone()).await.unwrap();
    }
    let waiting = frame(3, 8);
    sink.feed(waiting.clone()).await.unwrap();
    assert!(sink.has_pending());

    s.peer.reset();
    match poll_fn(|cx| sink.poll_ready_unpin(cx)).await {
        Err(SinkError::Send(SendError::Disconnected { frame, cause })) => {
            assert_eq!(frame, waiting);
            assert_eq!(cause.kind(), DisconnectKind::Reset);
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }
    // Closing the sink flushes: the flush fails with the cause, and the connection's close
    // hands back the frames that were buffered.
    match sink.close().await {
        Err(SinkError::Flush(FlushError::Disconnected(cause))) => {
            assert_eq!(cause.kind(), DisconnectKind::Reset);
        }
        other => panic!("expected the flush to fail with the reset, got {other:?}"),
    }
    let report = client.close().await.unwrap();
    let unsent: Vec<Bytes> = report.unsent().iter().map(|u| u.frame().clone()).collect();
    assert_eq!(unsent, buffered);
    assert_eq!(report.cause().map(|c| c.kind()), Some(DisconnectKind::Reset));
}

// ---------------------------------------------------------------------------------------------
// One test per scenario, each on every executor.

#[test]
fn backpressure_on_every_executor() {
    on_every_executor("async-backpressure", backpressure);
}

#[test]
fn fifo_on_every_executor() {
    on_every_executor("async-fifo", fifo);
}

#[test]
fn timeout_on_every_executor() {
    on_every_executor("async-timeout", timeout);
}

#[test]
fn disconnect_on_every_executor() {
    on_every_executor("async-disconnect", disconnect);
}

#[test]
fn byte_exact_on_every_executor() {
    on_every_executor("async-byte-exact", byte_exact);
}

#[test]
fn sink_forward_on_every_executor() {
    on_every_executor("async-sink-forward", sink_forward);
}

#[test]
fn sink_does_not_promise_space_on_every_executor() {
    on_every_executor("async-sink-no-promise", sink_does_not_promise_space);
}

#[test]
fn sink_flush_covers_frames_sent_during_it_on_every_executor() {
    on_every_executor("async-sink-flush", sink_flush_covers_frames_sent_during_it);
}

#[test]
fn sink_disconnect_on_every_executor() {
    on_every_executor("async-sink-disconnect", sink_disconnect);
}
