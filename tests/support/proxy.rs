//! A loopback TCP proxy that injects faults on command, for the fault-injection tests.
//!
//! The proxy listens on 127.0.0.1, and for each connection it accepts opens one to its current
//! upstream (a verifying sink) and forwards the client's bytes to it. How it forwards is its
//! [`Mode`]: at full speed, not at all (a stalled peer: the client's writes back up through
//! the kernel buffers, which are kept small), at a byte rate, or holding every chunk for a
//! delay. A one-shot [`Fault`] ends the connection the way a broken peer or network would:
//! cutting a frame in half and closing in order (FIN), resetting (RST), resetting with the
//! client's bytes left unread, or half-closing (FIN towards the client while it keeps
//! forwarding). With talk-back on, the proxy also writes to the client all the time, as a
//! broker sending acknowledgements does, up to and during the client's close.
//!
//! The proxy parses the test frames' headers (see `crate::support::frame`) as it forwards, so it can
//! cut exactly in the middle of a frame. Every loop is bounded in time; dropping the proxy
//! stops it.

#![allow(dead_code, unreachable_pub)] // Each test crate uses a different part of this module.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest any proxy thread runs.
const LIFETIME: Duration = Duration::from_secs(240);
/// The largest segment the client may send the proxy (see [`Proxy::start`]).
const MSS: u32 = 1460;
/// How often a blocked read looks at the proxy's commands.
const TICK: Duration = Duration::from_millis(10);
/// Bytes in a test frame's header; the total length is the big-endian u32 at 12..16.
const HEADER: usize = 16;

/// How the proxy forwards the client's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// As fast as the sink reads.
    Forward,
    /// Not at all: it stops reading from the client.
    Stall,
    /// At most this many bytes per second.
    Rate(u64),
    /// Each chunk read from the client is held this long before it is forwarded.
    Delay(Duration),
}

/// A one-shot fault that ends (or half-ends) the current connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forwards up to the middle of the next frame whose middle is still ahead, then closes
    /// both sides in order (FIN). It keeps reading and discarding what the client sends
    /// until the client closes, so the client sees a clean end of stream, not a reset.
    CutAndClose,
    /// Resets the client's connection (RST, through `SO_LINGER` 0) and closes the sink's.
    Reset,
    /// Closes the direction towards the client (FIN) and keeps forwarding the client's bytes
    /// until the client closes.
    HalfClose,
    /// Stops reading, waits until the client's bytes are waiting unread in the proxy's
    /// socket, then closes the client-facing socket with `SO_LINGER` 0 (RST) and the sink's
    /// in order.
    ResetWithUnread,
}

/// What the proxy writes to the client when talk-back is on.
pub const TALK_BACK: &[u8] = b"ack\n";

#[derive(Debug)]
struct Shared {
    upstream: Mutex<SocketAddr>,
    mode: Mutex<Mode>,
    fault: Mutex<Option<Fault>>,
    stop: AtomicBool,
    /// Bytes forwarded to the sink on the current connection.
    forwarded: AtomicU64,
    /// Bytes read from the client on the current connection; those not forwarded yet are on
    /// their way to the sink.
    read: AtomicU64,
    /// Connections accepted so far.
    accepted: AtomicUsize,
    /// Faults carried out so far.
    applied: AtomicUsize,
    /// Whether the proxy writes [`TALK_BACK`] to the client all the time.
    talk_back: AtomicBool,
    /// Bytes written to the client by talk-back, on all connections.
    talked: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fault-injecting proxy in front of one sink at a time.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// The address in a `tcp://host:port` URL.
pub fn addr_of(url: &str) -> SocketAddr {
    url.strip_prefix("tcp://").expect("a tcp:// URL").parse().expect("an address")
}

impl Proxy {
    /// Starts a proxy that forwards to `upstream`. Its accepted sockets have a small receive
    /// buffer, so that a stall pushes back on the client quickly.
    pub fn start(upstream: SocketAddr) -> Self {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        socket.set_recv_buffer_size(8 * 1024).expect("SO_RCVBUF");
        // An Ethernet-sized MSS, advertised to the client and inherited by accepted sockets.
        // Loopback's own (64 KiB) is far larger than this receive buffer: the window, which
        // the kernel rounds down to whole received segments, then often stays below the
        // client's sending MSS, and Linux sends nothing into a window smaller than one
        // segment but a persist-timer probe every 200 ms or more, so the path crawls at a few
        // KiB/s while the proxy reads everything it is given.
        socket.set_tcp_mss(MSS).expect("TCP_MAXSEG");
        socket.set_reuse_address(true).expect("SO_REUSEADDR");
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        socket.bind(&any.into()).expect("bind");
        socket.listen(8).expect("listen");
        let listener: TcpListener = socket.into();
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream),
            mode: Mutex::new(Mode::Forward),
            fault: Mutex::new(None),
            stop: AtomicBool::new(false),
            forwarded: AtomicU64::new(0),
            read: AtomicU64::new(0),
            accepted: AtomicUsize::new(0),
            applied: AtomicUsize::new(0),
            talk_back: AtomicBool::new(false),
            talked: AtomicU64::new(0),
        });
        let ctl = shared.clone();
        let thread = std::thread::spawn(move || accept_loop(&listener, &ctl));
        Self { addr, shared, thread: Some(thread) }
    }

    /// The URL a client connects to.
    pub fn url(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    /// Where the next accepted connection is forwarded to.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *lock(&self.shared.upstream) = upstream;
    }

    /// Changes how bytes are forwarded, at once.
    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.shared.mode) = mode;
    }

    /// Carries out `fault` on the current connection, at the forwarder's next turn.
    pub fn inject(&self, fault: Fault) {
        *lock(&self.shared.fault) = Some(fault);
    }

    /// Back to a healthy proxy: forwarding at full speed, no fault pending.
    pub fn heal(&self) {
        self.set_mode(Mode::Forward);
        *lock(&self.shared.fault) = None;
    }

    /// Bytes forwarded to the sink on the current connection.
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::SeqCst)
    }

    /// Bytes read from the client on the current connection.
    pub fn read(&self) -> u64 {
        self.shared.read.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Faults carried out so far.
    pub fn applied(&self) -> usize {
        self.shared.applied.load(Ordering::SeqCst)
    }

    /// Makes the proxy write [`TALK_BACK`] to each client it accepts from now on, as fast as
    /// the client takes it, until the connection ends: a peer that talks while the client
    /// closes.
    pub fn set_talk_back(&self, on: bool) {
        self.shared.talk_back.store(on, Ordering::SeqCst);
    }

    /// Bytes talk-back wrote to clients so far.
    pub fn talked(&self) -> u64 {
        self.shared.talked.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let deadline = Instant::now() + LIFETIME;
    let mut forwarders = Vec::new();
    while Instant::now() < deadline && !shared.stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(TICK);
                continue;
            }
            Err(e) => panic!("proxy accept: {e}"),
        };
        client.set_nonblocking(false).expect("blocking client socket");
        let upstream = *lock(&shared.upstream);
        let upstream = match TcpStream::connect_timeout(&upstream, Duration::from_secs(5)) {
            Ok(upstream) => upstream,
            Err(e) => {
                eprintln!("proxy: cannot reach {upstream}: {e}");
                continue;
            }
        };
        shared.forwarded.store(0, Ordering::SeqCst);
        shared.read.store(0, Ordering::SeqCst);
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        if shared.talk_back.load(Ordering::SeqCst) {
            let writer = client.try_clone().expect("a second handle on the client socket");
            let ctl = shared.clone();
            forwarders.push(std::thread::spawn(move || talk_back(writer, &ctl)));
        }
        let ctl = shared.clone();
        forwarders.push(std::thread::spawn(move || forward(client, upstream, &ctl)));
    }
    shared.stop.store(true, Ordering::SeqCst);
    for forwarder in forwarders {
        let _ = forwarder.join();
    }
}

/// Writes [`TALK_BACK`] to the client until a write fails (the connection ended) or the proxy
/// stops.
fn talk_back(mut client: TcpStream, shared: &Shared) {
    client.set_write_timeout(Some(TICK)).expect("write timeout");
    let deadline = Instant::now() + LIFETIME;
    let chunk = TALK_BACK.repeat(256);
    while Instant::now() < deadline && !shared.stop.load(Ordering::SeqCst) {
        match client.write(&chunk) {
            Ok(0) => return,
            Ok(n) => {
                shared.talked.fetch_add(n as u64, Ordering::SeqCst);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Tracks frame boundaries in the forwarded stream.
#[derive(Debug, Default)]
struct Framer {
    /// Bytes forwarded so far.
    offset: u64,
    /// Where the current frame starts.
    start: u64,
    /// The current frame's header bytes, while incomplete.
    header: Vec<u8>,
    /// The current frame's length, once its header is complete.
    len: Option<u64>,
    /// The stream is not bare test frames (the client frames them in headers of its own):
    /// boundaries are not tracked, and a cut is never armed.
    foreign: bool,
}

impl Framer {
    /// How many of the next `n` bytes can be forwarded before the middle of a frame whose
    /// middle is at or after `from`, if that middle falls within them.
    fn cut_within(&self, n: usize, from: u64) -> Option<usize> {
        let len = self.len.filter(|_| !self.foreign)?;
        let middle = self.start + len / 2;
        (middle >= from && middle < self.offset + n as u64).then(|| (middle - self.offset) as usize)
    }

    /// Bytes of the current piece: up to the end of the header or of the frame.
    fn piece(&self, available: usize) -> usize {
        if self.foreign {
            return available;
        }
        match self.len {
            None => (HEADER - self.header.len()).min(available),
            Some(len) => ((self.start + len - self.offset) as usize).min(available),
        }
    }

    fn advance(&mut self, bytes: &[u8]) {
        if self.foreign {
            self.offset += bytes.len() as u64;
            return;
        }
        if self.len.is_none() {
            self.header.extend_from_slice(bytes);
            if self.header.len() == HEADER {
                let len = u32::from_be_bytes(self.header[12..16].try_into().unwrap());
                if (len as usize) < 2 * HEADER {
                    // Not a test frame's header: the proxy cuts frames of 32 bytes or more.
                    self.foreign = true;
                    self.offset += bytes.len() as u64;
                    return;
                }
                self.len = Some(u64::from(len));
                self.header.clear();
            }
        }
        self.offset += bytes.len() as u64;
        if self.len.is_some_and(|len| self.offset == self.start + len) {
            self.start = self.offset;
            self.len = None;
        }
    }
}

/// Forwards one client connection until it ends, a fault ends it, or the proxy stops.
fn forward(mut client: TcpStream, mut upstream: TcpStream, shared: &Shared) {
    client.set_read_timeout(Some(TICK)).expect("read timeout");
    let deadline = Instant::now() + LIFETIME;
    let mut buf = vec![0u8; 16 * 1024];
    let mut framer = Framer::default();
    // Where the cut may fall, once a cut is armed: no earlier than the offset at arming.
    let mut cut_from: Option<u64> = None;
    let mut budget = 0f64;
    let mut last = Instant::now();
    while Instant::now() < deadline && !shared.stop.load(Ordering::SeqCst) {
        match lock(&shared.fault).take() {
            Some(Fault::Reset) => {
                let socket = socket2::SockRef::from(&client);
                socket.set_linger(Some(Duration::ZERO)).expect("SO_LINGER");
                // Counted before the client can see it, so a test that saw the fault's effect
                // also sees the count.
                shared.applied.fetch_add(1, Ordering::SeqCst);
                drop(client);
                let _ = upstream.shutdown(Shutdown::Write);
                return;
            }
            Some(Fault::ResetWithUnread) => {
                reset_with_unread(client, &upstream, shared, deadline);
                return;
            }
            Some(Fault::HalfClose) => {
                shared.applied.fetch_add(1, Ordering::SeqCst);
                let _ = client.shutdown(Shutdown::Write);
            }
            Some(Fault::CutAndClose) => cut_from = Some(framer.offset),
            None => {}
        }
        let mode = *lock(&shared.mode);
        let limit = match mode {
            Mode::Stall => {
                std::thread::sleep(TICK / 2);
                continue;
            }
            Mode::Rate(rate) => {
                let now = Instant::now();
                let rate = rate as f64;
                budget = (budget + now.duration_since(last).as_secs_f64() * rate).min(rate / 10.0);
                last = now;
                if budget < 1.0 {
                    std::thread::sleep(TICK / 2);
                    continue;
                }
                (budget as usize).min(buf.len())
            }
            Mode::Forward | Mode::Delay(_) => buf.len(),
        };
        let n = match client.read(&mut buf[..limit]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        shared.read.fetch_add(n as u64, Ordering::SeqCst);
        if let Mode::Rate(_) = mode {
            budget -= n as f64;
        }
        if let Mode::Delay(delay) = mode {
            std::thread::sleep(delay);
        }
        let mut data = &buf[..n];
        while !data.is_empty() {
            let piece = framer.piece(data.len());
            if let Some(cut) = cut_from.and_then(|from| framer.cut_within(piece, from)) {
                let _ = upstream.write_all(&data[..cut]);
                shared.forwarded.fetch_add(cut as u64, Ordering::SeqCst);
                cut_and_close(client, upstream, shared);
                return;
            }
            if upstream.write_all(&data[..piece]).is_err() {
                return;
            }
            shared.forwarded.fetch_add(piece as u64, Ordering::SeqCst);
            framer.advance(&data[..piece]);
            data = &data[piece..];
        }
    }
    let _ = upstream.shutdown(Shutdown::Write);
    // Ends talk-back too: the client sees the proxy's end of stream.
    let _ = client.shutdown(Shutdown::Write);
}

/// Stops reading from the client, waits (bounded) until its bytes wait unread in the socket,
/// then resets the client's connection and closes the sink's in order.
fn reset_with_unread(client: TcpStream, upstream: &TcpStream, shared: &Shared, deadline: Instant) {
    let mut probe = [0u8; 1];
    while Instant::now() < deadline && !shared.stop.load(Ordering::SeqCst) {
        match client.peek(&mut probe) {
            Ok(n) if n > 0 => break,
            Ok(_) => break, // The client closed; a reset is all that is left to do.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO)).expect("SO_LINGER");
    // Counted before the client can see it (see `forward`).
    shared.applied.fetch_add(1, Ordering::SeqCst);
    drop(client);
    let _ = upstream.shutdown(Shutdown::Write);
}

/// Closes both sides after a cut: the sink's in order, the client's completely (a FIN, then
/// the socket is gone, so what the client still sends is answered with a reset, as a server
/// that closed answers it).
fn cut_and_close(client: TcpStream, upstream: TcpStream, shared: &Shared) {
    // Counted before the client can see the close (see `forward`).
    shared.applied.fetch_add(1, Ordering::SeqCst);
    let _ = upstream.shutdown(Shutdown::Write);
    drop(upstream);
    let _ = client.shutdown(Shutdown::Write);
    drop(client);
}
