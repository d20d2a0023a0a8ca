//! Reconnection on real loopback sockets. The peers here are plain kernel sockets and the
//! fault-injecting proxy, which reset links in the middle of frames; every test checks what
//! the peer received across all the links, not only what the client reports:
//!
//! - through repeated resets, each producer's frames arrive at most once, first arrivals in
//!   order, and every frame that no `Disconnected` event reported (acknowledged or possibly
//!   delivered) arrives;
//! - against a port that refuses, attempts follow the backoff and a limit ends the connection
//!   within the policy's bounds, every parked sender getting its own frame back;
//! - with fail-fast, a send during the outage fails at once with its frame;
//! - senders parked during an outage, from cloned handles of both facades, complete in their
//!   order once the new link drains, behind the frames buffered before them.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tidegate::codec::LengthDelimited;
use tidegate::transport::SocketOption;
use tidegate::{
    AsyncClient, Bytes, Client, Config, ConnectionEvent, DisconnectKind, Reconnect, SendError,
};

use crate::proxy::{Fault, Proxy};
use crate::support::{Lcg, Watchdog, frame, ident, is_frame, join_within, reset, wait_until};

pub(crate) const LONG: Duration = Duration::from_secs(20);
const HEADER: usize = 16;

/// What one link carried to the [`Collector`]: the whole frames, in order, and the first
/// byte that did not match its frame's pattern, if any.
#[derive(Debug, Default)]
pub(crate) struct Carried {
    pub(crate) frames: Vec<(u32, u64)>,
    pub(crate) corrupt: Option<String>,
    ended: bool,
}

/// A sink that accepts any number of links, one after another, and records the whole test
/// frames each one carried. A frame cut off by the end of its link is not counted.
pub(crate) struct Collector {
    pub(crate) addr: SocketAddr,
    stop: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<Arc<Mutex<Carried>>>>>,
    thread: Option<JoinHandle<()>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Collector {
    pub(crate) fn start(prefix: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<Arc<Mutex<Carried>>>>> = Arc::default();
        let (stop2, links2) = (stop.clone(), links.clone());
        let thread = thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(240);
            let mut readers = Vec::new();
            while !stop2.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let carried = Arc::new(Mutex::new(Carried::default()));
                        lock(&links2).push(carried.clone());
                        let stop = stop2.clone();
                        readers
                            .push(thread::spawn(move || collect(stream, prefix, &carried, &stop)));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
            for reader in readers {
                let _ = reader.join();
            }
        });
        Self { addr, stop, links, thread: Some(thread) }
    }

    /// Waits until every link accepted so far has ended, then stops and returns what each
    /// carried, in the order they were accepted.
    pub(crate) fn finish(mut self, timeout: Duration) -> Vec<Carried> {
        let ended = wait_until(timeout, || lock(&self.links).iter().all(|l| lock(l).ended));
        assert!(ended, "every link reached its end of stream");
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        lock(&self.links).iter().map(|l| std::mem::take(&mut *lock(l))).collect()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Reads one link to its end, recording whole frames and checking their bytes; each frame
/// comes after a big-endian length header of `prefix` bytes, if `prefix` is not 0.
fn collect(mut stream: TcpStream, prefix: usize, carried: &Mutex<Carried>, stop: &AtomicBool) {
    stream.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                let mut at = 0;
                while pending.len() - at >= prefix + HEADER {
                    let start = at + prefix;
                    let len = &pending[start + 12..start + 16];
                    let len = u32::from_be_bytes(len.try_into().unwrap()) as usize;
                    if pending.len() - start < len {
                        break;
                    }
                    let header = pending[at..start].iter().fold(0, |n, &b| n << 8 | b as usize);
                    let (producer, seq) = ident(&pending[start..]);
                    let mut carried = lock(carried);
                    let framed = prefix == 0 || header == len;
                    if carried.corrupt.is_none()
                        && (!framed || !is_frame(&pending[start..start + len], producer, seq))
                    {
                        carried.corrupt = Some(format!("frame {producer}/{seq} has wrong bytes"));
                    }
                    carried.frames.push((producer, seq));
                    at = start + len;
                }
                pending.drain(..at);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    lock(carried).ended = true;
}

/// A policy that tries again quickly, for tests.
pub(crate) fn quick() -> Reconnect {
    Reconnect::new().initial_delay(Duration::from_millis(10)).max_delay(Duration::from_millis(50))
}

/// A run through the fault proxy: how much each producer sends, and how often links die.
struct Run {
    producers: u32,
    frames: u64,
    /// Frame lengths are drawn from this range.
    lens: (usize, usize),
    capacity: usize,
    faults: usize,
    /// Bytes written on a link before its fault is injected.
    between: u64,
    /// The faults, taken in turn.
    kinds: &'static [Fault],
    watchdog: Duration,
    /// Whether the frames a lost link's peer did not acknowledge are sent again.
    at_least_once: bool,
}

/// A short run: a few thousand small frames, six links reset.
const SHORT: Run = Run {
    producers: 2,
    frames: 3000,
    lens: (64, 700),
    capacity: 16 * 1024,
    faults: 6,
    between: 20_000,
    kinds: &[Fault::Reset, Fault::ResetWithUnread],
    watchdog: Duration::from_secs(100),
    at_least_once: false,
};

#[test]
fn frames_survive_resets_in_order_and_at_most_once() {
    survive_resets(None, &SHORT);
}

/// With length-delimited framing, each frame cut by a reset goes again whole, with its header.
#[test]
fn framed_frames_survive_resets_with_their_headers() {
    survive_resets(Some(LengthDelimited::new()), &SHORT);
}

/// With at-least-once, every frame is acknowledged on some link or arrives: the unacknowledged
/// ones go again, so some arrive twice, and none is reported possibly delivered.
#[test]
fn at_least_once_every_unacknowledged_frame_arrives() {
    let run = Run { at_least_once: true, ..SHORT };
    survive_resets(None, &run);
    survive_resets(Some(LengthDelimited::new()), &run);
}

/// A gibibyte of frames of up to 64 KiB, through fifty kills of every kind spread over the
/// transfer: resets, resets with unread bytes, and cuts in the middle of a frame followed by an
/// orderly end (a link every 20 MiB). The test frames carry their length, and are declared
/// atomic, so a cut frame goes again whole; they have no framing header, which the proxy must
/// see to cut in the middle of one.
#[test]
fn a_gibibyte_survives_fifty_kills_in_the_middle_of_frames() {
    let run = Run {
        producers: 2,
        frames: 16 * 1024,
        lens: (1024, 64 * 1024),
        capacity: 256 * 1024,
        faults: 50,
        between: 20 << 20,
        kinds: &[Fault::Reset, Fault::CutAndClose, Fault::ResetWithUnread],
        watchdog: Duration::from_secs(400),
        at_least_once: false,
    };
    let applied = survive_resets(None, &run);
    assert_eq!(applied, run.faults, "every kill happened before the producers were done");
}

/// Producers send through the proxy while it breaks links, by turns in the middle of traffic
/// and after stalling it; then checks what the sink received on all the links. Returns how
/// many faults were applied (fewer than asked if the producers were done first).
fn survive_resets(framing: Option<LengthDelimited>, run: &Run) -> usize {
    let _watchdog = Watchdog::new(run.watchdog, "survive_resets");
    let (producers, frames, faults) = (run.producers, run.frames, run.faults);
    let (min_len, max_len) = run.lens;
    let collector = Collector::start(if framing.is_some() { 4 } else { 0 });
    let proxy = Proxy::start(collector.addr);
    let config = Config::new()
        .capacity(run.capacity)
        .socket_option(SocketOption::SendBufferSize(8 * 1024))
        .close_timeout(LONG);
    let policy = quick().at_least_once(run.at_least_once);
    let config = match framing {
        // Framing alone makes a cut frame go again whole.
        Some(codec) => config.framing(codec).reconnect(policy),
        None => config.reconnect(policy.atomic_frames(true)),
    };
    let client = Client::builder().config(config).connect(&proxy.url()).expect("connect");
    // Each lost link's acknowledged frames and its frames written whole, by number, from its
    // `Disconnected` event.
    let losses = {
        let events = client.events();
        thread::spawn(move || {
            let mut losses = Vec::new();
            while let Ok(Some(event)) = events.recv_timeout(LONG) {
                if let ConnectionEvent::Disconnected { acknowledged, possibly_delivered, .. } =
                    event
                {
                    assert!(possibly_delivered.cut_frames().is_empty(), "cut frames go again");
                    // Over TCP on Linux, written frames are kept and come back whole.
                    let written = possibly_delivered.written();
                    let back = possibly_delivered.written_frames();
                    assert_eq!(back.len() as u64, written.end - written.start, "kept frames");
                    for frame in back {
                        assert_eq!(
                            frame.len() as u32,
                            u32::from_be_bytes(frame[12..16].try_into().unwrap())
                        );
                    }
                    losses.push((acknowledged, written));
                }
            }
            losses
        })
    };
    // Which frame each accepted one was, in the order accepted: one send at a time, so the
    // order is known, and it is the order of the events' numbers.
    let accepted: Arc<Mutex<Vec<(u32, u64)>>> = Arc::default();
    let senders: Vec<_> = (0..producers)
        .map(|id| {
            let (client, accepted) = (client.clone(), accepted.clone());
            thread::spawn(move || {
                let mut rng = Lcg::new(u64::from(id) * 7 + 3);
                for seq in 0..frames {
                    let len = rng.range(min_len, max_len);
                    let mut accepted = lock(&accepted);
                    client.send_timeout(frame(id, seq, len), LONG).expect("every send succeeds");
                    accepted.push((id, seq));
                }
            })
        })
        .collect();
    for fault in 0..faults {
        let accepted = proxy.accepted();
        let before = client.stats().bytes_written;
        // Some progress on this link first, so the reset cuts through traffic.
        assert!(
            wait_until(LONG, || client.stats().bytes_written > before + run.between
                || senders.iter().all(JoinHandle::is_finished)),
            "traffic flows on link {fault}: {:?}, proxy forwarded {} on {} links",
            client.stats(),
            proxy.forwarded(),
            proxy.accepted()
        );
        if senders.iter().all(JoinHandle::is_finished) {
            break;
        }
        proxy.inject(run.kinds[fault % run.kinds.len()]);
        assert!(wait_until(LONG, || proxy.accepted() > accepted), "link {fault} was replaced");
    }
    for producer in senders {
        join_within(producer, LONG, "a producer");
    }
    let stats = client.stats();
    let report = client.close_timeout(LONG).expect("close");
    assert!(report.unsent().is_empty(), "everything was sent: {report:?}");
    assert!(report.cause().is_none(), "closed in order: {report:?}");
    let links = collector.finish(LONG);
    let losses = join_within(losses, LONG, "the event reader");

    assert!(stats.disconnects >= 1, "the faults ended links: {stats:?}");
    assert_eq!(stats.disconnects, proxy.applied() as u64, "each fault ended one link: {stats:?}");
    // A fault that stalls the link first leaves frames in the buffer that never met it.
    assert!(stats.frames_replayed > 0, "frames were sent again: {stats:?}");
    if run.at_least_once {
        assert_eq!(stats.frames_possibly_delivered, 0, "sent again, not reported: {stats:?}");
    }
    assert_eq!(stats.connects, stats.disconnects + 1, "each lost link was replaced");
    assert!(stats.high_water <= run.capacity, "the bound held: {stats:?}");
    let mut next = vec![0u64; producers as usize];
    let mut seen = std::collections::HashSet::new();
    let mut received = 0u64;
    for (i, link) in links.iter().enumerate() {
        assert!(link.corrupt.is_none(), "link {i}: {:?}", link.corrupt);
        for &(producer, seq) in &link.frames {
            if !seen.insert((producer, seq)) {
                // Sent again because its link's peer had not acknowledged it.
                assert!(run.at_least_once, "frame {producer}/{seq} arrived twice");
                continue;
            }
            let expected = &mut next[producer as usize];
            assert!(seq >= *expected, "frame {producer}/{seq} arrived after a later one");
            *expected = seq + 1;
            received += 1;
        }
    }
    let sent = u64::from(producers) * frames;
    assert_eq!(stats.frames_accepted, sent);
    let missing = sent - received;
    // The proxy's TCP acknowledges for itself: a frame it had and did not pass on is missing
    // too.
    assert!(
        missing <= stats.frames_possibly_delivered + stats.frames_acknowledged,
        "{missing} frames missing, {} reported possibly delivered, {} acknowledged",
        stats.frames_possibly_delivered,
        stats.frames_acknowledged
    );
    // Frame by frame: each one no event reported arrived.
    let accepted = lock(&accepted).clone();
    assert_eq!(accepted.len() as u64, sent);
    let reported = reported_frames(&accepted, &losses, run.at_least_once);
    let absent: Vec<(u32, u64)> =
        accepted.iter().filter(|f| !reported.contains(*f) && !seen.contains(*f)).copied().collect();
    assert!(
        absent.is_empty(),
        "{} frames missing that no event reported, the first: {:?}",
        absent.len(),
        &absent[..absent.len().min(10)]
    );
    for (producer, last) in next.iter().enumerate() {
        assert_eq!(*last, frames, "producer {producer}'s last frame arrived");
    }
    proxy.applied()
}

/// Which frames the `Disconnected` events reported acknowledged or possibly delivered, by
/// identity. Events number frames in the order they were written, which is the order they
/// were accepted (`accepted`), except that with at-least-once a lost link's unacknowledged
/// frames go again first, under new numbers: so the write order is rebuilt, link by link.
fn reported_frames(
    accepted: &[(u32, u64)],
    losses: &[(std::ops::Range<u64>, std::ops::Range<u64>)],
    at_least_once: bool,
) -> std::collections::HashSet<(u32, u64)> {
    let mut waiting: std::collections::VecDeque<(u32, u64)> = accepted.iter().copied().collect();
    let mut written: Vec<(u32, u64)> = Vec::new();
    let mut reported = std::collections::HashSet::new();
    for (acknowledged, possibly) in losses {
        // The link wrote from where the last one ended to `possibly.end`, in the line's order.
        assert_eq!(
            acknowledged.start,
            written.len() as u64,
            "links number frames on and on: {losses:?}"
        );
        let end = possibly.end as usize;
        while written.len() < end {
            written.push(waiting.pop_front().expect("a frame written was accepted"));
        }
        let (start, acked) = (acknowledged.start as usize, acknowledged.end as usize);
        reported.extend(&written[start..acked]);
        if at_least_once {
            assert!(possibly.is_empty(), "sent again, not reported: {possibly:?}");
            for frame in written[acked..end].iter().rev() {
                waiting.push_front(*frame);
            }
        } else {
            reported.extend(&written[acked..end]);
        }
    }
    reported
}

/// A connected client and the accepted end of its first link; the listener is dropped, so the
/// port refuses from now on.
pub(crate) fn connected_then_refusing(config: Config) -> (Client, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("tcp://{}", listener.local_addr().unwrap());
    let client = Client::builder().config(config).connect(&url).expect("connect");
    let (peer, _) = listener.accept().expect("accept");
    drop(listener);
    (client, peer)
}

/// Sends `frame` and checks that `peer` received it whole, then resets the link: the loss
/// comes after a frame the peer is known to have.
pub(crate) fn lose_after(client: &Client, mut peer: TcpStream, frame: Bytes) {
    client.send(frame.clone()).unwrap();
    let mut got = vec![0u8; frame.len()];
    peer.set_read_timeout(Some(LONG)).unwrap();
    peer.read_exact(&mut got).expect("the peer reads the frame");
    assert_eq!(got, frame, "the peer received the frame whole");
    reset(peer);
}

#[test]
fn a_refusing_port_gets_the_backoff_then_the_limit_returns_every_frame() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "refusing_port");
    let policy = Reconnect::new()
        .initial_delay(Duration::from_millis(100))
        .factor(2.0)
        .jitter(0.2)
        .max_attempts(3);
    let config = Config::new().capacity(256).reconnect(policy);
    let (client, peer) = connected_then_refusing(config);
    let lost_at = Instant::now();
    lose_after(&client, peer, frame(2, 0, 64));
    assert!(wait_until(LONG, || client.stats().disconnects == 1), "the reset was seen");
    // The buffer takes frames while there is room, then senders park.
    let mut buffered = Vec::new();
    for seq in 0.. {
        let f = frame(0, seq, 64);
        match client.try_send(f.clone()) {
            Ok(()) => buffered.push(f),
            Err(err) => {
                assert!(err.is_full(), "full, not refused: {err:?}");
                break;
            }
        }
        assert!(seq < 100, "the buffer fills");
    }
    let parked: Vec<_> = (0..3)
        .map(|i| {
            let sender = client.clone();
            let f = frame(1, i, 64);
            let handle = thread::spawn(move || (sender.send(f.clone()), f, Instant::now()));
            let waiting = i as usize + 1;
            assert!(wait_until(LONG, || client.stats().waiters == waiting), "sender {i} parks");
            handle
        })
        .collect();
    let mut ended_at = lost_at;
    for handle in parked {
        let (result, sent, at) = join_within(handle, LONG, "a parked sender");
        match result {
            Err(SendError::Disconnected { frame, cause }) => {
                assert_eq!(frame, sent, "the sender got its own frame back");
                assert_eq!(cause.kind(), DisconnectKind::ConnectFailed, "{cause}");
            }
            other => panic!("a parked sender ends with the connection: {other:?}"),
        }
        ended_at = ended_at.max(at);
    }
    // Three attempts after 100, 200 and 400 ms, each within 20 % of that.
    let took = ended_at - lost_at;
    assert!(took >= Duration::from_millis(560), "gave up after {took:?}, before the backoff");
    assert!(took <= Duration::from_millis(840) + Duration::from_secs(5), "gave up after {took:?}");
    let stats = client.stats();
    assert_eq!(stats.reconnect_attempts, 3, "{stats:?}");
    let report = client.close_timeout(LONG).expect("close");
    let unsent: Vec<Bytes> = report.into_unsent().into_iter().map(|u| u.into_frame()).collect();
    assert_eq!(unsent, buffered, "the buffered frames come back, in order");
    // The lost link had written its one frame whole: acknowledged or possibly delivered (as
    // the peer's acknowledgement beat the reset or not), and not sent again.
    let written = stats.frames_possibly_delivered + stats.frames_acknowledged;
    assert_eq!((written, stats.frames_replayed), (1, 0), "{stats:?}");
}

#[test]
fn fail_fast_returns_frames_at_once_during_an_outage() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "fail_fast");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("tcp://{}", listener.local_addr().unwrap());
    let policy = Reconnect::new().initial_delay(Duration::from_secs(3)).jitter(0.0).fail_fast(true);
    let config = Config::new().capacity(4096).reconnect(policy);
    let client = Client::builder().config(config).connect(&url).expect("connect");
    let (peer, _) = listener.accept().expect("accept");
    reset(peer);
    assert!(wait_until(LONG, || client.stats().disconnects == 1), "the reset was seen");
    let refused = frame(0, 0, 100);
    let started = Instant::now();
    match client.send_timeout(refused.clone(), LONG) {
        Err(SendError::Disconnected { frame, cause }) => {
            assert_eq!(frame, refused);
            assert_eq!(cause.kind(), DisconnectKind::Reset, "{cause}");
        }
        other => panic!("a send during the outage fails at once: {other:?}"),
    }
    let err = client.try_send(refused.clone()).unwrap_err();
    assert_eq!(err.into_inner(), refused);
    assert!(started.elapsed() < Duration::from_secs(3), "at once, before the next attempt");
    // Once the new link is up, sends go through again, and the refused frame never went.
    let (mut peer, _) = listener.accept().expect("the client reconnects");
    assert!(wait_until(LONG, || client.stats().connects == 2), "the new link is up");
    let later = frame(0, 1, 100);
    client.send_timeout(later.clone(), LONG).expect("sent on the new link");
    let closing = client.clone();
    let close = thread::spawn(move || closing.close_timeout(LONG).expect("close"));
    let mut got = Vec::new();
    peer.set_read_timeout(Some(LONG)).unwrap();
    peer.read_to_end(&mut got).expect("read the new link to its end");
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(got, later, "the peer got the later frame only");
    let report = join_within(close, LONG, "the close");
    assert!(report.is_clean(), "{report:?}");
}

#[test]
fn parked_senders_of_both_facades_complete_in_order_after_a_reconnect() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "parked_senders_reconnect");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("tcp://{}", listener.local_addr().unwrap());
    let policy = Reconnect::new().initial_delay(Duration::from_millis(200)).jitter(0.0);
    let config = Config::new().capacity(256).reconnect(policy);
    let client = Client::builder().config(config.clone()).connect(&url).expect("connect");
    let (peer, _) = listener.accept().expect("accept");
    client.send(frame(9, 0, 32)).unwrap();
    client.flush_timeout(LONG).unwrap();
    reset(peer);
    assert!(wait_until(LONG, || client.stats().disconnects == 1), "the reset was seen");
    let mut expected = Vec::new();
    for seq in 0.. {
        let f = frame(0, seq, 64);
        if client.try_send(f.clone()).is_err() {
            break;
        }
        expected.push(ident(&f));
        assert!(seq < 100, "the buffer fills");
    }
    // Parked one at a time, so their order is known: blocking, async, blocking.
    let mut parked: Vec<JoinHandle<Result<(), SendError<Bytes>>>> = Vec::new();
    let asynchronous = AsyncClient::from_connection(client.connection().clone());
    for i in 0..3u64 {
        let f = frame(1, i, 64);
        expected.push(ident(&f));
        parked.push(if i == 1 {
            let a = asynchronous.clone();
            thread::spawn(move || futures::executor::block_on(a.send(f)))
        } else {
            let c = client.clone();
            thread::spawn(move || c.send(f))
        });
        let waiting = i as usize + 1;
        assert!(wait_until(LONG, || client.stats().waiters == waiting), "sender {i} parks");
    }
    let listener_again = listener;
    listener_again.set_nonblocking(false).unwrap();
    let (mut peer, _) = listener_again.accept().expect("the client reconnects");
    for handle in parked {
        join_within(handle, LONG, "a parked sender").expect("sent on the new link");
    }
    client.flush_timeout(LONG).expect("flushed on the new link");
    let mut bytes = vec![0u8; expected.len() * 64];
    peer.set_read_timeout(Some(LONG)).unwrap();
    peer.read_exact(&mut bytes).expect("read every frame from the new link");
    // The peer ends its side only after the client's end: before it, with reconnection on,
    // the peer's end of stream would be a lost link.
    let closing = client.clone();
    let close = thread::spawn(move || closing.close_timeout(LONG).expect("close"));
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest).expect("read the new link to its end");
    assert!(rest.is_empty(), "nothing more came: {} bytes", rest.len());
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    let report = join_within(close, LONG, "the close");
    assert!(report.is_clean(), "{report:?}");
    let got: Vec<(u32, u64)> = bytes.chunks(64).map(ident).collect();
    assert_eq!(got, expected, "buffered frames first, then the parked senders in order");
    let stats = client.stats();
    assert_eq!((stats.connects, stats.disconnects), (2, 1), "{stats:?}");
    // The first link wrote its one frame whole; what the outage buffered never met a link.
    let written = stats.frames_possibly_delivered + stats.frames_acknowledged;
    assert_eq!((written, stats.frames_replayed), (1, 0), "{stats:?}");
}
