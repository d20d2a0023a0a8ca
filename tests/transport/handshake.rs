//! The handshake hook against a loopback sink that plays a broker with a login: it drops any
//! link whose first bytes are not the hello, answers only after checking that nothing else
//! came first, and sends a note after its answer. Every check is on what the sink received:
//!
//! - through 20 reconnections, every link began with the hello, no frame came before the
//!   answer, frames arrived at most once and in order, and the note after each answer reached
//!   the application while the answer itself did not;
//! - an answer the hook refuses fails the attempt and the next one follows; a refusal of kind
//!   `PermissionDenied` ends the connection at once, and on the first link it is the connect
//!   error.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tidegate::{
    Bytes, Client, Config, ConnectError, ConnectionEvent, DisconnectKind, Handshake, Reconnect,
};

use crate::reconnect::{LONG, quick};
use crate::support::{Watchdog, frame, join_within, reset, whole_frames};

const HELLO: &[u8] = b"HELLO\n";
const WELCOME: &[u8] = b"WELCOME\n";
/// What the sink sends right after its answer, in the same write.
const NOTE: &[u8] = b"NOTE\n";

/// Says hello, and waits for `WELCOME`; `DENIED` is refused for good, anything else for this
/// attempt only.
struct Login;

impl Handshake for Login {
    fn hello(&self) -> Vec<Bytes> {
        vec![Bytes::from_static(HELLO)]
    }

    fn answer(&self, received: &[u8]) -> std::io::Result<Option<usize>> {
        let Some(end) = received.iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        match &received[..=end] {
            WELCOME => Ok(Some(end + 1)),
            b"DENIED\n" => Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied")),
            other => Err(std::io::Error::other(String::from_utf8_lossy(other).into_owned())),
        }
    }
}

/// How the sink treats one link, by its number from 0.
#[derive(Debug, Clone, Copy)]
enum Reply {
    /// Answers `WELCOME` and the note, then takes frames; resets the link after this many.
    Welcome(Option<usize>),
    /// Answers this line, then reads whatever comes until the client goes.
    Refuse(&'static [u8]),
    /// Never answers; reads whatever comes until the client goes.
    Silent,
}

/// What one link brought the sink.
#[derive(Debug, Default)]
struct Heard {
    /// The link's first bytes were the hello.
    greeted: bool,
    /// Bytes that came after the hello and before the answer.
    early: usize,
    /// Whole test frames after the answer, in order.
    frames: Vec<(u32, u64)>,
    /// Bytes after the hello on a link refused or left unanswered.
    after_refusal: usize,
}

struct Sink {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<Heard>>>,
    thread: Option<JoinHandle<()>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Sink {
    fn start(script: impl Fn(usize) -> Reply + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<Heard>>> = Arc::default();
        let (stop2, links2) = (stop.clone(), links.clone());
        // One link at a time, as the client makes them.
        let thread = thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(90);
            while !stop2.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let n = lock(&links2).len();
                        let heard = serve(stream, script(n), &stop2);
                        lock(&links2).push(heard);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Self { addr, stop, links, thread: Some(thread) }
    }

    fn url(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    fn links(&self) -> usize {
        lock(&self.links).len()
    }

    fn finish(mut self) -> Vec<Heard> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        std::mem::take(&mut *lock(&self.links))
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Plays one link to its end.
fn serve(mut stream: TcpStream, reply: Reply, stop: &AtomicBool) -> Heard {
    let mut heard = Heard::default();
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(LONG)).unwrap();
    let mut first = [0u8; HELLO.len()];
    if stream.read_exact(&mut first).is_err() || first != HELLO {
        // Not the hello: dropped at once, as a broker drops a stranger.
        reset(stream);
        return heard;
    }
    heard.greeted = true;
    // Anything sent before the answer would be waiting by now.
    thread::sleep(Duration::from_millis(20));
    stream.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    if let Ok(n) = stream.read(&mut buf) {
        heard.early = n;
    }
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let reset_after = match reply {
        Reply::Welcome(after) => {
            stream.write_all(&[WELCOME, NOTE].concat()).expect("answer");
            after
        }
        Reply::Refuse(line) => {
            stream.write_all(line).expect("answer");
            None
        }
        Reply::Silent => None,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pending = Vec::new();
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if !matches!(reply, Reply::Welcome(_)) => heard.after_refusal += n,
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                let (frames, cut) = whole_frames(&pending);
                heard.frames.extend(frames);
                pending.drain(..pending.len() - cut);
                if reset_after.is_some_and(|k| heard.frames.len() >= k) {
                    reset(stream);
                    return heard;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
    heard
}

#[test]
fn every_link_begins_with_the_hello_through_twenty_reconnections() {
    let _watchdog = Watchdog::new(Duration::from_secs(100), "handshake_reconnections");
    const RESETS: usize = 20;
    const PER_LINK: usize = 150;
    let sink = Sink::start(|n| Reply::Welcome((n < RESETS).then_some(PER_LINK)));
    let config = Config::new()
        .capacity(16 * 1024)
        .close_timeout(LONG)
        .handshake(Login)
        .reconnect(quick().atomic_frames(true));
    let client = Client::builder().config(config).connect(&sink.url()).expect("connect");
    let receiver = client.clone();
    let notes = thread::spawn(move || {
        let mut got = Vec::new();
        while let Ok(Some(chunk)) = receiver.recv_timeout(LONG) {
            got.extend_from_slice(&chunk);
        }
        got
    });
    // Frames go until the sink has reset its links, then a few more on the last one.
    let mut sent = 0u64;
    let mut after = 0;
    while after < 100 {
        assert!(sent < 1_000_000, "the sink reset {} links", sink.links());
        client.send_timeout(frame(0, sent, 64 + (sent as usize * 7) % 300), LONG).unwrap();
        sent += 1;
        if sink.links() >= RESETS {
            after += 1;
        }
    }
    client.flush_timeout(LONG).expect("flushed");
    let stats = client.stats();
    let report = client.close_timeout(LONG).expect("close");
    assert!(report.unsent().is_empty(), "{report:?}");
    let notes = join_within(notes, LONG, "the receiver");
    let links = sink.finish();

    assert_eq!(links.len(), RESETS + 1, "each reset was met with a new link: {stats:?}");
    assert_eq!(stats.connects, RESETS as u64 + 1, "{stats:?}");
    let mut seen = std::collections::HashSet::new();
    let mut next = 0;
    for (i, link) in links.iter().enumerate() {
        assert!(link.greeted, "link {i} began with the hello");
        assert_eq!(link.early, 0, "link {i}: nothing came before the answer");
        for &(producer, seq) in &link.frames {
            assert!(seen.insert(seq), "frame {producer}/{seq} arrived twice");
            assert!(seq >= next, "frame {seq} came after a later one");
            next = seq + 1;
        }
    }
    assert_eq!(next, sent, "the last frame arrived");
    let missing = sent - seen.len() as u64;
    let written = stats.frames_possibly_delivered + stats.frames_acknowledged;
    assert!(missing <= written, "{missing} missing: {stats:?}");
    // The answers were the hook's; what the sink said after them was the application's.
    assert_eq!(notes, NOTE.repeat(links.len()), "{}", String::from_utf8_lossy(&notes));
}

#[test]
fn a_refused_answer_fails_the_attempt_and_the_next_one_follows() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "handshake_refused_then_accepted");
    let sink = Sink::start(|n| match n {
        0 => Reply::Welcome(Some(1)),
        1 | 2 => Reply::Refuse(b"BUSY\n"),
        _ => Reply::Welcome(None),
    });
    let policy = Reconnect::new().initial_delay(Duration::from_millis(10)).jitter(0.0);
    let config = Config::new().handshake(Login).reconnect(policy).close_timeout(LONG);
    let client = Client::builder().config(config).connect(&sink.url()).expect("connect");
    let events = client.events();
    client.send(frame(0, 0, 64)).unwrap();
    let mut seen = Vec::new();
    while !matches!(seen.last(), Some(ConnectionEvent::Connected { .. })) {
        match events.recv_timeout(LONG) {
            Ok(Some(event)) => seen.push(event),
            other => panic!("the events go on until a link is up again: {other:?} {seen:?}"),
        }
    }
    let summary: Vec<String> = seen
        .iter()
        .map(|e| match e {
            ConnectionEvent::Disconnected { cause, .. } => format!("lost {:?}", cause.kind()),
            ConnectionEvent::Reconnecting { attempt, .. } => format!("attempt {attempt}"),
            ConnectionEvent::Connected { attempt, .. } => format!("up after {attempt}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(summary, ["lost Reset", "attempt 1", "attempt 2", "attempt 3", "up after 3"]);
    let later = frame(0, 1, 64);
    client.send(later).unwrap();
    client.flush_timeout(LONG).expect("flushed on the new link");
    let report = client.close_timeout(LONG).expect("close");
    assert!(report.unsent().is_empty(), "{report:?}");
    let links = sink.finish();
    assert_eq!(links.len(), 4, "{links:?}");
    assert!(links.iter().all(|l| l.greeted && l.early == 0), "{links:?}");
    assert_eq!(links[0].frames, [(0, 0)], "the first link carried the first frame");
    for refused in &links[1..3] {
        assert_eq!(refused.after_refusal, 0, "nothing but the hello on a refused link");
    }
    assert_eq!(links[3].frames, [(0, 1)], "the accepted link carried the later frame");
}

#[test]
fn a_permission_refusal_ends_the_connection_at_once() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "handshake_denied");
    // Refused on the first link: the connect error says so.
    let sink = Sink::start(|_| Reply::Refuse(b"DENIED\n"));
    let config = Config::new().handshake(Login).reconnect(quick());
    match Client::builder().config(config).connect(&sink.url()) {
        Err(ConnectError::Failed { cause, url }) => {
            let err = ConnectError::Failed { cause: cause.clone(), url };
            assert_eq!(cause.kind(), DisconnectKind::HandshakeFailed, "{err}");
            assert!(format!("{err}").contains("denied"), "the hook's words are shown: {err}");
        }
        other => panic!("the connect fails with the refusal: {other:?}"),
    }
    assert!(crate::support::wait_until(LONG, || sink.links() == 1), "one link was made");
    let links = sink.finish();
    assert!(links[0].greeted && links[0].after_refusal == 0, "{links:?}");

    // Refused on a reconnection: no further attempt, the end says why.
    let sink =
        Sink::start(|n| if n == 0 { Reply::Welcome(Some(1)) } else { Reply::Refuse(b"DENIED\n") });
    let config = Config::new().handshake(Login).reconnect(quick());
    let client = Client::builder().config(config).connect(&sink.url()).expect("connect");
    let events = client.events();
    client.send(frame(0, 0, 64)).unwrap();
    let cause = client.closed_timeout(LONG).expect("ended").expect("a cause");
    assert_eq!(cause.kind(), DisconnectKind::HandshakeFailed, "{cause}");
    let mut last = None;
    while let Ok(Some(event)) = events.recv_timeout(LONG) {
        last = Some(event);
    }
    assert!(matches!(last, Some(ConnectionEvent::GaveUp { .. })), "{last:?}");
    assert_eq!(client.stats().reconnect_attempts, 1, "no attempt after the refusal");
    let links = sink.finish();
    assert_eq!(links.len(), 2, "{links:?}");
    assert_eq!(links[0].frames, [(0, 0)], "the first link carried the frame");
}

#[test]
fn an_unanswered_hello_fails_the_connect_at_the_connect_timeout() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "handshake_unanswered");
    const TIMEOUT: Duration = Duration::from_millis(300);
    let sink = Sink::start(|_| Reply::Silent);
    let config = Config::new().handshake(Login).connect_timeout(TIMEOUT);
    let started = Instant::now();
    let result = Client::builder().config(config).connect(&sink.url());
    let took = started.elapsed();
    assert!(matches!(result, Err(ConnectError::TimedOut { .. })), "{result:?}");
    assert!(took >= TIMEOUT, "failed after {took:?}, before the connect timeout");
    assert!(took < TIMEOUT + Duration::from_secs(3), "failed after {took:?}");
    assert!(crate::support::wait_until(LONG, || sink.links() == 1), "one link was made");
    let links = sink.finish();
    assert!(links[0].greeted, "the hello arrived: {links:?}");
    assert_eq!(links[0].after_refusal, 0, "and nothing after it: {links:?}");
}
