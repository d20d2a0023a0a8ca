//! Shared helpers for the integration tests: self-describing frames, a streaming verifier, a
//! loopback TCP sink that verifies what it reads and can stall or reset on command, and a
//! bounded condition wait.
//!
//! A test frame is a 16-byte header — producer id (u32), sequence number (u64), total length
//! (u32), all big-endian — followed by payload bytes that are a function of the three, so the
//! sink can check every byte, that frames are whole and not interleaved, and that each
//! producer's frames arrive in order.
//!
//! Each test crate declares this module once — `tests/<area>/main.rs` with
//! `#[path = "../support/mod.rs"] mod support;`, `tests/blocking_cpu.rs` with `mod support;` —
//! and its modules use it as `crate::support`. `proxy.rs` is declared by the transport crate
//! alone (`tests/transport/main.rs`), next to it.

#![allow(dead_code, unreachable_pub)] // Each test crate uses a different part of this module.

use std::collections::HashMap;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Wake, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub mod peers;

/// Bytes in a frame header.
pub const HEADER: usize = 16;

fn payload_byte(producer: u32, seq: u64, i: usize) -> u8 {
    (producer as u64).wrapping_mul(31).wrapping_add(seq.wrapping_mul(7)).wrapping_add(i as u64)
        as u8
}

/// Two turns of the byte ramp 0, 1, ..., 255: a payload byte is its offset plus a constant,
/// modulo 256, so any stretch of a payload is a slice of this. Copying and comparing slices
/// keeps the gibibyte tests fast in a debug build, where a byte-by-byte loop is not.
static RAMP: [u8; 512] = {
    let mut ramp = [0u8; 512];
    let mut i = 0;
    while i < 512 {
        ramp[i] = i as u8;
        i += 1;
    }
    ramp
};

/// Calls `piece` with the payload of the frame from `producer`, number `seq`, for the offsets
/// `HEADER..len`, a stretch of at most 256 bytes at a time: each stretch's start offset and
/// the ramp's bytes for it.
fn payload_pieces(
    producer: u32,
    seq: u64,
    len: usize,
    mut piece: impl FnMut(usize, &[u8]) -> bool,
) -> bool {
    let mut at = HEADER;
    while at < len {
        let first = usize::from(payload_byte(producer, seq, at));
        let n = (len - at).min(256);
        if !piece(at, &RAMP[first..first + n]) {
            return false;
        }
        at += n;
    }
    true
}

/// A frame of `len` bytes (at least [`HEADER`]) from `producer`, number `seq`.
pub fn frame(producer: u32, seq: u64, len: usize) -> Bytes {
    assert!(len >= HEADER, "a test frame holds at least its header");
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&producer.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&(len as u32).to_be_bytes());
    payload_pieces(producer, seq, len, |_, ramp| {
        out.extend_from_slice(ramp);
        true
    });
    Bytes::from(out)
}

/// Whether `bytes` is exactly the test frame of its length from `producer`, number `seq`,
/// checked without building it.
pub fn is_frame(bytes: &[u8], producer: u32, seq: u64) -> bool {
    bytes.len() >= HEADER
        && bytes[..12] == [producer.to_be_bytes().as_slice(), &seq.to_be_bytes()].concat()[..]
        && bytes[12..16] == (bytes.len() as u32).to_be_bytes()
        && payload_pieces(producer, seq, bytes.len(), |at, ramp| {
            bytes[at..at + ramp.len()] == *ramp
        })
}

/// Cuts `bytes` into whole test frames, checking every byte of each, and returns their
/// idents and the length of a cut frame left at the end.
pub fn whole_frames(bytes: &[u8]) -> (Vec<(u32, u64)>, usize) {
    let mut at = 0;
    let mut frames = Vec::new();
    while bytes.len() - at >= HEADER {
        let len = u32::from_be_bytes(bytes[at + 12..at + 16].try_into().unwrap()) as usize;
        if bytes.len() - at < len {
            break;
        }
        let (producer, seq) = ident(&bytes[at..]);
        assert!(is_frame(&bytes[at..at + len], producer, seq), "frame {producer}/{seq} is whole");
        frames.push((producer, seq));
        at += len;
    }
    (frames, bytes.len() - at)
}

/// The producer and sequence number written in a frame's header.
pub fn ident(frame: &[u8]) -> (u32, u64) {
    let producer = u32::from_be_bytes(frame[0..4].try_into().unwrap());
    let seq = u64::from_be_bytes(frame[4..12].try_into().unwrap());
    (producer, seq)
}

/// Parses a byte stream of test frames and checks every byte and each producer's order.
#[derive(Debug, Default)]
pub struct Verifier {
    partial: Vec<u8>,
    next_seq: HashMap<u32, u64>,
    /// Every frame seen, in arrival order, as (producer, seq).
    pub order: Vec<(u32, u64)>,
    pub bytes: u64,
    pub frames: u64,
    /// Whether to check that each producer's sequence numbers have no gaps (they must always
    /// increase either way).
    pub allow_gaps: bool,
}

impl Verifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// A verifier that accepts gaps in a producer's sequence (frames that were refused or
    /// cancelled), but still demands increasing order.
    pub fn allowing_gaps() -> Self {
        Self { allow_gaps: true, ..Self::default() }
    }

    /// Feeds bytes as they arrive. Errors describe the first violation.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), String> {
        self.bytes += data.len() as u64;
        while !data.is_empty() {
            if self.partial.len() < HEADER {
                let take = (HEADER - self.partial.len()).min(data.len());
                self.partial.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.partial.len() < HEADER {
                    break;
                }
            }
            let len = u32::from_be_bytes(self.partial[12..16].try_into().unwrap()) as usize;
            if len < HEADER {
                return Err(format!("frame header claims {len} bytes, less than a header"));
            }
            let take = (len - self.partial.len()).min(data.len());
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.partial.len() == len {
                self.check_frame()?;
                self.partial.clear();
            }
        }
        Ok(())
    }

    fn check_frame(&mut self) -> Result<(), String> {
        let (producer, seq) = ident(&self.partial);
        let partial = &self.partial;
        let whole = payload_pieces(producer, seq, partial.len(), |at, ramp| {
            partial[at..at + ramp.len()] == *ramp
        });
        if !whole {
            let i = (HEADER..partial.len())
                .find(|&i| partial[i] != payload_byte(producer, seq, i))
                .unwrap_or(HEADER);
            return Err(format!("frame {producer}/{seq}: byte {i} is wrong (interleaved?)"));
        }
        let next = self.next_seq.entry(producer).or_insert(0);
        let in_order = if self.allow_gaps { seq >= *next } else { seq == *next };
        if !in_order {
            return Err(format!("producer {producer}: frame {seq} arrived when {next} was next"));
        }
        *next = seq + 1;
        self.order.push((producer, seq));
        self.frames += 1;
        Ok(())
    }

    /// Whether the stream ended on a frame boundary.
    pub fn at_boundary(&self) -> bool {
        self.partial.is_empty()
    }

    /// The next sequence number expected from each producer.
    pub fn next_seq(&self) -> &HashMap<u32, u64> {
        &self.next_seq
    }
}

/// What a [`TcpSink`] saw.
#[derive(Debug)]
pub struct SinkReport {
    pub verifier: Verifier,
    /// The first verification or I/O error, if any.
    pub error: Option<String>,
}

#[derive(Debug, Default)]
struct SinkControl {
    stalled: AtomicBool,
    reset: AtomicBool,
    stop: AtomicBool,
    received: AtomicU64,
}

/// A loopback TCP server that accepts one connection and verifies every byte it reads.
#[derive(Debug)]
pub struct TcpSink {
    addr: SocketAddr,
    control: Arc<SinkControl>,
    thread: Option<JoinHandle<SinkReport>>,
}

impl TcpSink {
    /// Starts a sink that verifies strictly (no gaps in any producer's sequence).
    pub fn start() -> Self {
        Self::start_with(Verifier::new(), None)
    }

    /// Starts a sink with the given verifier and, optionally, a small `SO_RCVBUF` so a stall
    /// pushes back on the client quickly.
    pub fn start_with(mut verifier: Verifier, recv_buffer: Option<usize>) -> Self {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        socket.bind(&any.into()).expect("bind");
        socket.listen(1).expect("listen");
        let listener: TcpListener = socket.into();
        let addr = listener.local_addr().unwrap();
        let control = Arc::new(SinkControl::default());
        let ctl = control.clone();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut error = None;
            listener.set_nonblocking(false).unwrap();
            let (mut stream, _) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) => return SinkReport { verifier, error: Some(format!("accept: {e}")) },
            };
            stream.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            let mut buf = vec![0u8; 256 * 1024];
            while Instant::now() < deadline && !ctl.stop.load(Ordering::SeqCst) {
                if ctl.reset.load(Ordering::SeqCst) {
                    reset(stream);
                    return SinkReport { verifier, error };
                }
                if ctl.stalled.load(Ordering::SeqCst) {
                    std::thread::park_timeout(Duration::from_millis(5));
                    continue;
                }
                match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        ctl.received.fetch_add(n as u64, Ordering::SeqCst);
                        if error.is_none()
                            && let Err(e) = verifier.feed(&buf[..n])
                        {
                            error = Some(e);
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(e) => {
                        error.get_or_insert_with(|| format!("read: {e}"));
                        break;
                    }
                }
            }
            if Instant::now() >= deadline {
                error.get_or_insert_with(|| {
                    "the sink ran for 60 s without the stream ending".into()
                });
            }
            SinkReport { verifier, error }
        });
        Self { addr, control, thread: Some(thread) }
    }

    pub fn url(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    /// Stops reading (the kernel buffers fill, then the client's writes block).
    pub fn stall(&self) {
        self.control.stalled.store(true, Ordering::SeqCst);
    }

    /// Reads again.
    pub fn resume(&self) {
        self.control.stalled.store(false, Ordering::SeqCst);
        if let Some(thread) = &self.thread {
            thread.thread().unpark();
        }
    }

    /// Resets the connection (RST) at the sink's next turn.
    pub fn reset(&self) {
        self.control.reset.store(true, Ordering::SeqCst);
        self.resume();
        self.control.stalled.store(false, Ordering::SeqCst);
    }

    /// Bytes read so far.
    pub fn received(&self) -> u64 {
        self.control.received.load(Ordering::SeqCst)
    }

    /// Waits up to `timeout` for the stream to end (the client closed), then returns what the
    /// sink saw. Stops the sink at the deadline either way.
    pub fn finish(mut self, timeout: Duration) -> SinkReport {
        let thread = self.thread.take().expect("finished once");
        finish_thread(thread, timeout, &self.control.stop)
    }
}

impl Drop for TcpSink {
    fn drop(&mut self) {
        self.control.stop.store(true, Ordering::SeqCst);
        self.resume();
    }
}

/// Closes `stream` with an RST instead of a FIN.
pub fn reset(stream: TcpStream) {
    let socket = socket2::Socket::from(stream);
    socket.set_linger(Some(Duration::ZERO)).expect("SO_LINGER");
    drop(socket);
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The calling thread's id as the kernel knows it, for [`is_asleep`] (Linux; `None`
/// elsewhere).
pub fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// Whether thread `tid` of this process is asleep in the kernel (state `S`), as a thread that
/// parked is. Without `/proc` (or without a `tid`) it answers `true`, so a wait on it
/// degrades to waiting for the other conditions it is combined with.
pub fn is_asleep(tid: Option<u32>) -> bool {
    let Some(tid) = tid else {
        return true;
    };
    let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else {
        return !std::path::Path::new("/proc/self/task").exists();
    };
    // The state is the first field after the command name, which is in parentheses.
    stat.rfind(')').and_then(|at| stat[at + 1..].split_whitespace().next()) == Some("S")
}

/// Spawns `f` on a thread that tells its kernel thread id before it calls `f`, and waits up to
/// `timeout` for that thread to start and then to fall asleep (in `f`, since it does nothing
/// else): the way to know that a blocking call really is waiting, not merely not started.
/// Panics if it does not happen in time, or if `f` returns first.
pub fn spawn_parked<T: Send + 'static>(
    timeout: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    let (started, tid) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        started.send(current_tid()).expect("the test waits for the start");
        f()
    });
    let tid = tid.recv_timeout(timeout).unwrap_or_else(|_| panic!("{what}: never started"));
    let parked = wait_until(timeout, || handle.is_finished() || is_asleep(tid));
    assert!(parked, "{what}: started but never parked within {timeout:?}");
    assert!(!handle.is_finished(), "{what}: returned instead of waiting");
    handle
}

/// A name no other test uses, for `mem://` listeners.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A small deterministic pseudo-random generator (64-bit LCG), so runs are reproducible.
#[derive(Debug, Clone)]
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 11
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
}

/// Reads everything a `mem://` peer receives, on a thread of its own, and verifies it like a
/// [`TcpSink`]. Pause and resume the client's writes through [`MemSink::peer`].
#[derive(Debug)]
pub struct MemSink {
    peer: Arc<tidegate::transport::mem::MemPeer>,
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    thread: Option<JoinHandle<SinkReport>>,
}

impl MemSink {
    /// Starts reading from `peer`, feeding `verifier`.
    pub fn start(peer: tidegate::transport::mem::MemPeer, mut verifier: Verifier) -> Self {
        let peer = Arc::new(peer);
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let (reader, halt, count) = (peer.clone(), stop.clone(), received.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut error = None;
            let mut buf = vec![0u8; 64 * 1024];
            while Instant::now() < deadline && !halt.load(Ordering::SeqCst) {
                match reader.read_timeout(&mut buf, Duration::from_millis(20)) {
                    Ok(0) => break,
                    Ok(n) => {
                        count.fetch_add(n as u64, Ordering::SeqCst);
                        if error.is_none()
                            && let Err(e) = verifier.feed(&buf[..n])
                        {
                            error = Some(e);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(e) => {
                        error.get_or_insert_with(|| format!("read: {e}"));
                        break;
                    }
                }
            }
            if Instant::now() >= deadline {
                error.get_or_insert_with(|| {
                    "the sink ran for 60 s without the stream ending".into()
                });
            }
            SinkReport { verifier, error }
        });
        Self { peer, stop, received, thread: Some(thread) }
    }

    /// The peer, to pause, resume, close or reset it.
    pub fn peer(&self) -> &tidegate::transport::mem::MemPeer {
        &self.peer
    }

    /// Bytes read so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::SeqCst)
    }

    /// Waits up to `timeout` for the client to close and everything to be read, then returns
    /// what the sink saw. Stops the sink at the deadline either way.
    pub fn finish(mut self, timeout: Duration) -> SinkReport {
        let thread = self.thread.take().expect("finished once");
        finish_thread(thread, timeout, &self.stop)
    }
}

impl Drop for MemSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Waits up to `timeout` for a reading thread to end by itself, raises `stop` if it has not,
/// then joins it and returns what it saw.
pub fn finish_thread<T>(thread: JoinHandle<T>, timeout: Duration, stop: &AtomicBool) -> T {
    if !wait_until(timeout, || thread.is_finished()) {
        stop.store(true, Ordering::SeqCst);
    }
    thread.join().expect("the reading thread panicked")
}

/// Joins `handle`, panicking if the thread has not finished within `timeout` (so a test that
/// would hang fails instead).
pub fn join_within<T>(handle: JoinHandle<T>, timeout: Duration, what: &str) -> T {
    assert!(
        wait_until(timeout, || handle.is_finished()),
        "{what} did not finish within {timeout:?}"
    );
    match handle.join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Aborts the whole test process if it is still armed after `timeout`: the last line of
/// defence against a test that hangs in a call the test cannot put a deadline on.
#[derive(Debug)]
pub struct Watchdog {
    disarmed: Arc<AtomicBool>,
}

impl Watchdog {
    pub fn new(timeout: Duration, what: &'static str) -> Self {
        let disarmed = Arc::new(AtomicBool::new(false));
        let flag = disarmed.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + timeout;
            while Instant::now() < deadline {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if !flag.load(Ordering::SeqCst) {
                eprintln!("watchdog: {what} still running after {timeout:?}; aborting");
                std::process::abort();
            }
        });
        Self { disarmed }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.disarmed.store(true, Ordering::SeqCst);
    }
}

/// A waker that counts how often it was woken.
#[derive(Debug, Default)]
pub struct WakeCounter(AtomicUsize);

impl WakeCounter {
    /// A counter and a waker that adds to it.
    pub fn new() -> (Arc<Self>, Waker) {
        let counter = Arc::new(Self::default());
        (counter.clone(), Waker::from(counter))
    }

    /// The wake-ups so far.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Wake for WakeCounter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Fails if a part of an error chain's text (the parts are joined by `": "`) is said twice, as
/// a wrapper that repeats its cause's words in its own `Display` would make it.
pub fn assert_said_once(chain: &str) {
    let parts: Vec<&str> = chain.split(": ").map(str::trim).filter(|p| p.len() > 3).collect();
    for (i, part) in parts.iter().enumerate() {
        assert!(!parts[i + 1..].contains(part), "{part:?} is said twice in {chain:?}");
    }
}

/// The text of an error and of each of its causes in turn, joined by `": "`: what a user sees
/// who prints the whole chain (as `anyhow`'s `{:#}` does).
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
