//! The peer benchmark: tidegate against the queues a user would otherwise write, side by side in
//! one run, over loopback TCP.
//!
//! Run it with `cargo bench --bench peers`. Options go after `--`: `--quick` for a short smoke
//! run (1/16 of the bytes, one run), `--runs N` for the number of runs whose medians are printed
//! (5 by default), `--filter TEXT` (repeatable) to run only what contains `TEXT`, and
//! `--throughput-only` to skip the other measurements. BENCHMARKS.md records a run.
//!
//! # What is measured
//!
//! Every throughput case sends a fixed number of equal frames to a *sink*: a thread of this
//! process that reads the loopback socket into a 256 KiB buffer as fast as it can and counts the
//! bytes. The clock starts once every connection, thread and runtime is set up, and stops when
//! the sink has received the last byte; the case fails unless the sink counted exactly the bytes
//! sent. Frames are `Bytes` views of one static buffer, so making a frame costs nothing and
//! every implementation moves the same bytes. Cases run one after the other, and the runs are
//! interleaved, so slow drifts of the machine hit every case alike.
//!
//! - `loopback ceiling`: one thread writing 256 KiB chunks straight to the socket.
//! - `BufWriter`: one thread writing each frame into a 64 KiB `std::io::BufWriter` over the
//!   socket, with no bound and no other thread: the single-thread ceiling.
//! - `tidegate Client`: [`tidegate::Client::send`] per frame, default 1 MiB buffer; producers
//!   are threads sharing one client.
//! - `tidegate Client behind a 64 KiB BufWriter`: each producer thread wraps its clone of the
//!   client (`impl io::Write`) in a `BufWriter`, so small frames reach the core 64 KiB at a time.
//! - `tidegate Client, send_batch of 64 frames` (64 B frames only): each producer thread
//!   copies 64 frames into a `FrameBatch` and sends it with [`tidegate::Client::send_batch`],
//!   so frame boundaries are kept and the core's lock is taken once per 64 frames.
//! - `tidegate AsyncClient`: `AsyncClient::send(frame).await`, 1,000 tasks on tokio (multi-thread
//!   runtime) and on async-std.
//! - `Mutex+Condvar`: a `Mutex<VecDeque<Bytes>>` bounded to 1 MiB of frames, drained by a writer
//!   thread with `write_vectored`; space is returned once written, as tidegate does.
//! - `flume`, `crossbeam-channel`, `std sync_channel`: a bounded channel of `Bytes` (1 MiB worth
//!   of frames) feeding a writer thread with a 64 KiB `BufWriter`.
//! - `tokio mpsc`: a bounded `tokio::sync::mpsc` channel (1 MiB worth of frames) feeding a
//!   writer task with a 64 KiB `tokio::io::BufWriter`; producers are tasks.
//!
//! The *many connections* rows put 1,000 loopback connections (100 with `--quick`) side by side,
//! each sending the same frames (64 B: about 128 MiB in all; 1 KiB: about 512 MiB; 1/16 with
//! `--quick`). Every sample runs in a child process (this program, run again), which holds a
//! sink for all of them: one thread running a current-thread tokio runtime (epoll) with a task
//! per connection, every task reading into one shared 256 KiB buffer; it counts each
//! connection's bytes, and the sample fails unless every connection delivered exactly its share.
//! The clock starts when the first producer begins and stops when the sink has the last byte.
//! The bound per connection is 64 KiB for everyone (tidegate's capacity, the `BufWriter`'s size).
//!
//! - `tidegate Client, IoGroup of 2 driver threads, 4 producers`: every connection opened with
//!   `Config::io_group` on one `IoGroup::new(2)`; 4 producer threads, producer `p` serving
//!   connections `p`, `p + 4`, ... in turn, 16 frames to each per visit, with
//!   [`tidegate::Client::send`].
//! - `tidegate Client, a driver thread per connection, 4 producers`: the same without a group
//!   (the default: a driver thread per connection).
//! - `tidegate Client, IoGroup of 2 driver threads, a producer per connection`: the group, fed
//!   by a producer thread per connection, as the baseline's.
//! - `a thread per connection writing through a 64 KiB BufWriter`: the baseline without
//!   tidegate; each thread connects, writes its own frames through a `BufWriter<TcpStream>`
//!   (std, blocking) and keeps the connection open until every thread is done.
//!
//! Producer and baseline threads have a 64 KiB stack (`thread::Builder::stack_size`); tidegate's
//! driver threads have the default. Besides throughput, each row reports the threads the peer
//! added to the process (producers included), the time from the first connect to every
//! connection ready to send (for the baseline, connected with its thread running), the growth
//! of the child's `VmHWM` over the sample, and how busy the sink thread was between its first
//! and last byte (to show it is not the bottleneck).
//!
//! The *full duplex* rows measure write biasing: how much of its outgoing throughput a client
//! keeps while the peer floods it. One producer thread sends 512 MiB (32 MiB with `--quick`) of
//! 1 KiB or 64 KiB frames through a [`tidegate::Client`] to a peer in the same child process
//! (this program, run again, once per sample) that reads into a 256 KiB buffer and counts. The
//! clock starts at the first send and stops when the peer has the last byte.
//!
//! - `outbound only`: the peer never writes; the reference.
//! - `inbound flood, default write bias`: a second thread of the peer writes 256 KiB chunks to
//!   the socket as fast as it can, and a consumer thread of the client drains
//!   [`tidegate::Client::recv`] as fast as it can; the clock starts once 1 MiB has come in.
//!   Default settings: the driver reads at most 64 KiB per turn, into a 256 KiB inbound buffer.
//! - `inbound flood, write_bias(16 KiB)`: the same, reading at most 16 KiB per turn.
//! - `inbound flood, write_bias(usize::MAX), 256 KiB inbound`: no bias, but the default inbound
//!   buffer, whose free space alone bounds what one turn reads.
//! - `inbound flood, default write bias (64 KiB), 16 MiB inbound`: the bias alone bounds it.
//! - `inbound flood, write_bias(usize::MAX), 16 MiB inbound`: without biasing: the driver
//!   reads until the socket is empty or the large buffer is full (at most 64 reads of 64 KiB
//!   per turn).
//!
//! Each row reports the outgoing throughput; its fraction of the `outbound only` row (the
//! fraction the write-biasing requirement states), as the median over the runs of its ratio to
//! the same run's reference, so that a slow spell of the machine, which hits both, cancels out;
//! the bytes per second the consumer received over the same time; and the most the inbound
//! buffer held.
//!
//! Besides throughput it measures:
//!
//! - peak RSS growth: a child process (this program, run again) sends 1 GiB of freshly
//!   allocated frames through a 1 MiB bound to a sink reading 512 MiB/s, and reports its
//!   `VmHWM` at the end minus its `VmHWM` before sending;
//! - CPU while blocked: a child process blocks a sender on a stalled sink, then reports the CPU
//!   its other threads used over 2 s (the sum of `/proc/self/task/*/schedstat` run times, in
//!   nanoseconds);
//! - wake latency of a blocked sender, two ways: from the moment room was freed for it to the
//!   return of its send, and from a stalled sink resuming its reads to that return (which adds
//!   the kernel's TCP buffers); p50 and p99 over 300 stalls, beside a bare `thread::park` /
//!   `unpark` pair, the floor this machine sets;
//! - memory per parked async sender: a child process parks 100,000 tokio tasks in
//!   `AsyncClient::send` on a full buffer and reports the RSS growth per task; another parks
//!   as many bare tasks holding the same frame; the difference is the sender's own cost.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, BufWriter, IoSlice, Read, Write};
use std::marker::PhantomData;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex, OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tidegate::{AsyncClient, Client, DEFAULT_CAPACITY, FrameBatch};

/// Frame sizes of the throughput cases.
const FRAME_SIZES: [usize; 3] = [64, 1024, 64 * 1024];
/// The sink's read buffer.
const SINK_BUF: usize = 256 * 1024;
/// The chunk the loopback ceiling writes.
const CEILING_CHUNK: usize = 256 * 1024;
/// The bound of every bounded queue, in bytes (tidegate's default capacity).
const CAPACITY: usize = DEFAULT_CAPACITY;
/// The `BufWriter` size of the peers that use one.
const BUFWRITER: usize = 64 * 1024;
/// Async tasks in the async rows.
const TASKS: usize = 1000;
/// Most slices the `Mutex+Condvar` writer hands to one `write_vectored` (Linux's `IOV_MAX`).
const IOV_MAX: usize = 1024;
/// How long any single wait of the benchmark may take before it gives up.
const PATIENCE: Duration = Duration::from_secs(60);

/// The bytes every frame is cut from.
static PAYLOAD: [u8; 64 * 1024] = [0xA5; 64 * 1024];

fn frame_of(len: usize) -> Bytes {
    Bytes::from_static(&PAYLOAD[..len])
}

fn other(err: impl std::fmt::Display) -> io::Error {
    io::Error::other(err.to_string())
}

/// Nanoseconds since the first call, for timestamps shared through atomics.
fn now_ns() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------------------------------
// Options

#[derive(Debug, Clone)]
struct Opts {
    quick: bool,
    runs: usize,
    /// Run only what matches one of these (all when empty).
    filters: Vec<String>,
    /// Skip the RSS, CPU, wake-latency and parked-sender measurements.
    throughput_only: bool,
}

impl Opts {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut opts = Self { quick: false, runs: 0, filters: Vec::new(), throughput_only: false };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => opts.quick = true,
                "--runs" => {
                    let n = args.next().ok_or("--runs needs a number")?;
                    opts.runs = n.parse().map_err(|_| format!("bad --runs {n:?}"))?;
                }
                "--filter" => opts.filters.push(args.next().ok_or("--filter needs text")?.clone()),
                "--throughput-only" => opts.throughput_only = true,
                // Cargo passes `--bench` to bench targets.
                "--bench" => {}
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if opts.runs == 0 {
            opts.runs = if opts.quick { 1 } else { 5 };
        }
        Ok(opts)
    }

    /// Bytes each throughput case sends.
    fn total_bytes(&self, frame: usize) -> u64 {
        let mib: u64 = match frame {
            64 => 256,
            1024 => 1024,
            _ => 2048,
        };
        let mib = if self.quick { mib / 16 } else { mib };
        mib << 20
    }

    fn wanted(&self, name: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| name.contains(f.as_str()))
    }
}

// ---------------------------------------------------------------------------------------------
// Sinks

/// Accepts one connection, giving up after `PATIENCE`.
fn accept(listener: &TcpListener) -> io::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + PATIENCE;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
}

/// What a sink saw.
#[derive(Debug)]
struct SinkReport {
    bytes: u64,
    /// When the expected byte count was reached.
    done_at: Instant,
}

/// A sink thread reading one connection as fast as it can, until the peer closes.
fn spawn_sink(
    expected: u64,
    rate: Option<u64>,
) -> io::Result<(SocketAddr, thread::JoinHandle<io::Result<SinkReport>>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let handle = thread::Builder::new().name("sink".into()).spawn(move || {
        let mut stream = accept(&listener)?;
        stream.set_read_timeout(Some(PATIENCE))?;
        let mut buf = vec![0u8; SINK_BUF];
        let mut bytes = 0u64;
        let mut done_at = None;
        let start = Instant::now();
        loop {
            let n = match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            bytes += n as u64;
            if done_at.is_none() && bytes >= expected {
                done_at = Some(Instant::now());
            }
            if let Some(rate) = rate {
                // A slow reader: no faster than `rate` bytes per second on average.
                let due = Duration::from_secs_f64(bytes as f64 / rate as f64);
                if let Some(ahead) = due.checked_sub(start.elapsed()) {
                    thread::sleep(ahead);
                }
            }
        }
        Ok(SinkReport { bytes, done_at: done_at.unwrap_or_else(Instant::now) })
    })?;
    Ok((addr, handle))
}

// ---------------------------------------------------------------------------------------------
// Implementations compared

/// Finishes a pipe once every producer is done: flushes, closes, joins the writer.
type Finish = Box<dyn FnOnce() -> io::Result<()> + Send>;

/// When room was first freed after the probe was reset to 0 (`now_ns` clock).
type Probe = Arc<AtomicU64>;

/// One send of the wake-latency measurement (`now_ns` clock).
#[derive(Debug, Clone, Copy)]
struct Observed {
    start: u64,
    end: u64,
    granted: Option<u64>,
}

/// Unparks a thread: the blocking facade's way of waiting, rebuilt to time the admission.
struct Unparker(thread::Thread);

impl std::task::Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

fn mark_freed(probe: &Option<Probe>) {
    if let Some(probe) = probe {
        let _ = probe.compare_exchange(0, now_ns(), Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// A way to get frames from producer threads to the socket.
trait Peer {
    const NAME: &'static str;
    type Tx: Clone + Send + 'static;

    /// Connects to `addr` and returns the producers' handle and how to finish.
    ///
    /// With a `probe`, the consumer side stores in it (with [`mark_freed`]) when it frees room
    /// for a blocked producer, for the wake-latency measurement.
    fn open(
        addr: SocketAddr,
        frame: usize,
        capacity: usize,
        probe: Option<Probe>,
    ) -> io::Result<(Self::Tx, Finish)>;

    /// Sends one frame for the wake-latency measurement: stores in `in_send` when the send
    /// began, and returns when it began, when it returned, and, if the implementation can tell,
    /// when room was granted to it (else the probe tells).
    fn send_observed(tx: &Self::Tx, frame: Bytes, in_send: &AtomicU64) -> io::Result<Observed> {
        let start = now_ns();
        in_send.store(start, Ordering::SeqCst);
        Self::send(tx, frame)?;
        Ok(Observed { start, end: now_ns(), granted: None })
    }

    /// A counter that changes once the consumer side has freed room (for the wake-latency
    /// sink, to stop reading and leave the CPU to the woken sender).
    fn progress(_tx: &Self::Tx, probe: &Probe) -> Box<dyn Fn() -> u64 + Send> {
        let probe = probe.clone();
        Box::new(move || probe.load(Ordering::SeqCst))
    }

    /// Sends one frame, blocking while the queue is full.
    fn send(tx: &Self::Tx, frame: Bytes) -> io::Result<()>;
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    // As tidegate does by default.
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// tidegate's blocking client.
struct Tidegate;

impl Peer for Tidegate {
    const NAME: &'static str = "tidegate";
    type Tx = Client;

    fn open(
        addr: SocketAddr,
        _frame: usize,
        capacity: usize,
        _probe: Option<Probe>,
    ) -> io::Result<(Client, Finish)> {
        let client = Client::builder().capacity(capacity).connect(&format!("tcp://{addr}"));
        let client = client.map_err(other)?;
        let closer = client.clone();
        let finish: Finish = Box::new(move || {
            closer.flush().map_err(other)?;
            let report = closer.close().map_err(other)?;
            if report.is_clean() {
                Ok(())
            } else {
                Err(other(format!("unclean close: {report:?}")))
            }
        });
        Ok((client, finish))
    }

    fn send(tx: &Client, frame: Bytes) -> io::Result<()> {
        tx.send(frame).map_err(other)
    }

    /// Does what `Client::send` does (poll the core's send, park until woken, poll again), so
    /// that the admission can be timed: the core counts the time from the admission of a
    /// waiting frame to its grant, and the admission happens in the first poll.
    fn send_observed(tx: &Client, frame: Bytes, in_send: &AtomicU64) -> io::Result<Observed> {
        let conn = tx.connection();
        let waker = std::task::Waker::from(Arc::new(Unparker(thread::current())));
        let waited_before = conn.stats().wait_time;
        let mut op = conn.send(frame, None);
        let start = now_ns();
        in_send.store(start, Ordering::SeqCst);
        let mut poll = op.poll_with(&waker);
        let admitted = now_ns();
        while poll.is_pending() {
            thread::park();
            poll = op.poll_with(&waker);
        }
        let end = now_ns();
        if let std::task::Poll::Ready(Err(e)) = poll {
            return Err(other(e));
        }
        let waited = conn.stats().wait_time - waited_before;
        // The admission happened between `start` and `admitted`: take the middle.
        let since = start + (admitted - start) / 2;
        let granted = since + u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        Ok(Observed { start, end, granted: Some(granted) })
    }

    fn progress(tx: &Client, _probe: &Probe) -> Box<dyn Fn() -> u64 + Send> {
        let client = tx.clone();
        Box::new(move || client.stats().bytes_written)
    }
}

/// A `Mutex<VecDeque<Bytes>>` bounded by bytes, drained by a writer thread.
struct MutexQueue;

#[derive(Debug, Default)]
struct QueueState {
    frames: VecDeque<Bytes>,
    /// Bytes queued or being written.
    held: usize,
    closed: bool,
}

#[derive(Debug, Default)]
struct Queue {
    state: Mutex<QueueState>,
    not_empty: Condvar,
    not_full: Condvar,
    capacity: usize,
    probe: Option<Probe>,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push(&self, frame: Bytes) {
        let mut state = self.lock();
        while state.held + frame.len() > self.capacity {
            state = self.not_full.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        let was_empty = state.frames.is_empty();
        state.held += frame.len();
        state.frames.push_back(frame);
        drop(state);
        if was_empty {
            self.not_empty.notify_one();
        }
    }

    fn run_writer(&self, mut stream: TcpStream) -> io::Result<()> {
        let mut batch = VecDeque::new();
        loop {
            {
                let mut state = self.lock();
                while state.frames.is_empty() && !state.closed {
                    state = self
                        .not_empty
                        .wait(state)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                if state.frames.is_empty() {
                    return Ok(());
                }
                std::mem::swap(&mut state.frames, &mut batch);
            }
            let written = write_frames(&mut stream, &batch)?;
            batch.clear();
            self.lock().held -= written;
            mark_freed(&self.probe);
            self.not_full.notify_all();
        }
    }
}

/// Writes every frame with `write_vectored`, at most `IOV_MAX` slices a call.
fn write_frames(stream: &mut TcpStream, frames: &VecDeque<Bytes>) -> io::Result<usize> {
    let mut total = 0;
    let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(IOV_MAX);
    let mut frames = frames.iter();
    loop {
        slices.clear();
        slices.extend(frames.by_ref().take(IOV_MAX).map(|f| IoSlice::new(f)));
        if slices.is_empty() {
            return Ok(total);
        }
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            let n = match stream.write_vectored(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            total += n;
            IoSlice::advance_slices(&mut rest, n);
        }
    }
}

impl Peer for MutexQueue {
    const NAME: &'static str = "Mutex+Condvar";
    type Tx = Arc<Queue>;

    fn open(
        addr: SocketAddr,
        _frame: usize,
        capacity: usize,
        probe: Option<Probe>,
    ) -> io::Result<(Arc<Queue>, Finish)> {
        let stream = connect(addr)?;
        let queue = Arc::new(Queue { capacity, probe, ..Queue::default() });
        let writer = {
            let queue = queue.clone();
            thread::Builder::new().name("writer".into()).spawn(move || queue.run_writer(stream))?
        };
        let closer = queue.clone();
        let finish: Finish = Box::new(move || {
            closer.lock().closed = true;
            closer.not_empty.notify_one();
            writer.join().map_err(|_| other("the writer panicked"))?
        });
        Ok((queue, finish))
    }

    fn send(tx: &Arc<Queue>, frame: Bytes) -> io::Result<()> {
        tx.push(frame);
        Ok(())
    }
}

/// A bounded channel of `Bytes`.
trait Chan: 'static {
    const NAME: &'static str;
    type Tx: Clone + Send + 'static;
    type Rx: Send + 'static;
    fn bounded(frames: usize) -> (Self::Tx, Self::Rx);
    fn send(tx: &Self::Tx, frame: Bytes) -> bool;
    fn recv(rx: &Self::Rx) -> Option<Bytes>;
}

struct Flume;
impl Chan for Flume {
    const NAME: &'static str = "flume";
    type Tx = flume::Sender<Bytes>;
    type Rx = flume::Receiver<Bytes>;
    fn bounded(frames: usize) -> (Self::Tx, Self::Rx) {
        flume::bounded(frames)
    }
    fn send(tx: &Self::Tx, frame: Bytes) -> bool {
        tx.send(frame).is_ok()
    }
    fn recv(rx: &Self::Rx) -> Option<Bytes> {
        rx.recv().ok()
    }
}

struct Crossbeam;
impl Chan for Crossbeam {
    const NAME: &'static str = "crossbeam-channel";
    type Tx = crossbeam_channel::Sender<Bytes>;
    type Rx = crossbeam_channel::Receiver<Bytes>;
    fn bounded(frames: usize) -> (Self::Tx, Self::Rx) {
        crossbeam_channel::bounded(frames)
    }
    fn send(tx: &Self::Tx, frame: Bytes) -> bool {
        tx.send(frame).is_ok()
    }
    fn recv(rx: &Self::Rx) -> Option<Bytes> {
        rx.recv().ok()
    }
}

struct SyncChannel;
impl Chan for SyncChannel {
    const NAME: &'static str = "std sync_channel";
    type Tx = mpsc::SyncSender<Bytes>;
    type Rx = mpsc::Receiver<Bytes>;
    fn bounded(frames: usize) -> (Self::Tx, Self::Rx) {
        mpsc::sync_channel(frames)
    }
    fn send(tx: &Self::Tx, frame: Bytes) -> bool {
        tx.send(frame).is_ok()
    }
    fn recv(rx: &Self::Rx) -> Option<Bytes> {
        rx.recv().ok()
    }
}

/// For contrast in the memory measurement only: what an unbounded queue does.
struct Unbounded;
impl Chan for Unbounded {
    const NAME: &'static str = "std mpsc (unbounded)";
    type Tx = mpsc::Sender<Bytes>;
    type Rx = mpsc::Receiver<Bytes>;
    fn bounded(_frames: usize) -> (Self::Tx, Self::Rx) {
        mpsc::channel()
    }
    fn send(tx: &Self::Tx, frame: Bytes) -> bool {
        tx.send(frame).is_ok()
    }
    fn recv(rx: &Self::Rx) -> Option<Bytes> {
        rx.recv().ok()
    }
}

/// A channel feeding a writer thread with a `BufWriter`.
struct ChannelPeer<C>(PhantomData<C>);

impl<C: Chan> Peer for ChannelPeer<C> {
    const NAME: &'static str = C::NAME;
    type Tx = C::Tx;

    fn open(
        addr: SocketAddr,
        frame: usize,
        capacity: usize,
        probe: Option<Probe>,
    ) -> io::Result<(C::Tx, Finish)> {
        let stream = connect(addr)?;
        let (tx, rx) = C::bounded((capacity / frame).max(1));
        let writer = thread::Builder::new().name("writer".into()).spawn(move || {
            let mut out = BufWriter::with_capacity(BUFWRITER, stream);
            while let Some(frame) = C::recv(&rx) {
                // Taking a frame out of a full channel is what frees a slot.
                mark_freed(&probe);
                out.write_all(&frame)?;
            }
            out.flush()
        })?;
        let finish: Finish =
            Box::new(move || writer.join().map_err(|_| other("the writer panicked"))?);
        Ok((tx, finish))
    }

    fn send(tx: &C::Tx, frame: Bytes) -> io::Result<()> {
        if C::send(tx, frame) { Ok(()) } else { Err(other("the writer is gone")) }
    }
}

// ---------------------------------------------------------------------------------------------
// Throughput cases

/// One timed run of a case.
#[derive(Debug, Clone, Copy)]
struct Sample {
    msgs: u64,
    bytes: u64,
    secs: f64,
}

/// Runs `body` against a fresh sink expecting `bytes`; `body` returns when its clock started.
fn timed(
    msgs: u64,
    bytes: u64,
    body: impl FnOnce(SocketAddr) -> io::Result<Instant>,
) -> io::Result<Sample> {
    let (addr, sink) = spawn_sink(bytes, None)?;
    let started = body(addr)?;
    let report = sink.join().map_err(|_| other("the sink panicked"))??;
    if report.bytes != bytes {
        return Err(other(format!("the sink got {} bytes, expected {bytes}", report.bytes)));
    }
    let secs = report.done_at.saturating_duration_since(started).as_secs_f64();
    Ok(Sample { msgs, bytes, secs })
}

fn loopback_ceiling(total: u64) -> io::Result<Sample> {
    let chunks = total / CEILING_CHUNK as u64;
    timed(chunks, chunks * CEILING_CHUNK as u64, |addr| {
        let mut stream = connect(addr)?;
        let chunk = vec![0xA5u8; CEILING_CHUNK];
        let started = Instant::now();
        for _ in 0..chunks {
            stream.write_all(&chunk)?;
        }
        Ok(started)
    })
}

fn bufwriter(frame: usize, msgs: u64) -> io::Result<Sample> {
    timed(msgs, msgs * frame as u64, |addr| {
        let mut out = BufWriter::with_capacity(BUFWRITER, connect(addr)?);
        let frame = frame_of(frame);
        let started = Instant::now();
        for _ in 0..msgs {
            out.write_all(&frame)?;
        }
        out.flush()?;
        Ok(started)
    })
}

/// `producers` threads, each writing its frames into a 64 KiB `BufWriter` over its own clone of
/// one `Client` (`impl io::Write`): small frames reach the core in 64 KiB pieces.
fn tidegate_bufwriter(frame: usize, producers: usize, per: u64) -> io::Result<Sample> {
    let msgs = per * producers as u64;
    timed(msgs, msgs * frame as u64, |addr| {
        let client = Client::connect(&format!("tcp://{addr}")).map_err(other)?;
        let start = Arc::new(Barrier::new(producers + 1));
        let workers: Vec<_> = (0..producers)
            .map(|_| {
                let client = client.clone();
                let start = start.clone();
                thread::spawn(move || -> io::Result<()> {
                    let frame = frame_of(frame);
                    let mut out = BufWriter::with_capacity(BUFWRITER, client);
                    start.wait();
                    for _ in 0..per {
                        out.write_all(&frame)?;
                    }
                    out.flush()
                })
            })
            .collect();
        start.wait();
        let started = Instant::now();
        for worker in workers {
            worker.join().map_err(|_| other("a producer panicked"))??;
        }
        client.flush().map_err(other)?;
        let report = client.close().map_err(other)?;
        if !report.is_clean() {
            return Err(other(format!("unclean close: {report:?}")));
        }
        Ok(started)
    })
}

/// Frames per batch in the `send_batch` rows.
const BATCH: usize = 64;

/// `producers` threads sharing one `Client`, each copying its frames into a [`FrameBatch`] and
/// sending it with `send_batch` every [`BATCH`] frames.
fn tidegate_batch(frame: usize, producers: usize, per: u64) -> io::Result<Sample> {
    let msgs = per * producers as u64;
    timed(msgs, msgs * frame as u64, |addr| {
        let client = Client::builder().capacity(CAPACITY).connect(&format!("tcp://{addr}"));
        let client = client.map_err(other)?;
        let start = Arc::new(Barrier::new(producers + 1));
        let workers: Vec<_> = (0..producers)
            .map(|_| {
                let client = client.clone();
                let start = start.clone();
                thread::spawn(move || -> io::Result<()> {
                    let frame = frame_of(frame);
                    start.wait();
                    let mut batch = FrameBatch::with_capacity(BATCH * frame.len());
                    for _ in 0..per {
                        batch.push(&frame);
                        if batch.len() == BATCH {
                            let full = std::mem::replace(
                                &mut batch,
                                FrameBatch::with_capacity(BATCH * frame.len()),
                            );
                            client.send_batch(full).map_err(other)?;
                        }
                    }
                    if !batch.is_empty() {
                        client.send_batch(batch).map_err(other)?;
                    }
                    Ok(())
                })
            })
            .collect();
        start.wait();
        let started = Instant::now();
        for worker in workers {
            worker.join().map_err(|_| other("a producer panicked"))??;
        }
        client.flush().map_err(other)?;
        let report = client.close().map_err(other)?;
        if !report.is_clean() {
            return Err(other(format!("unclean close: {report:?}")));
        }
        Ok(started)
    })
}

/// `producers` threads each sending `per` frames through `P`.
fn threads<P: Peer>(frame: usize, producers: usize, per: u64) -> io::Result<Sample> {
    let msgs = per * producers as u64;
    timed(msgs, msgs * frame as u64, |addr| {
        let (tx, finish) = P::open(addr, frame, CAPACITY, None)?;
        let start = Arc::new(Barrier::new(producers + 1));
        let workers: Vec<_> = (0..producers)
            .map(|_| {
                let tx = tx.clone();
                let start = start.clone();
                thread::spawn(move || -> io::Result<()> {
                    let frame = frame_of(frame);
                    start.wait();
                    for _ in 0..per {
                        P::send(&tx, frame.clone())?;
                    }
                    Ok(())
                })
            })
            .collect();
        drop(tx);
        start.wait();
        let started = Instant::now();
        for worker in workers {
            worker.join().map_err(|_| other("a producer panicked"))??;
        }
        finish()?;
        Ok(started)
    })
}

fn tokio_runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()
}

/// `producers` tokio tasks feeding a bounded `tokio::sync::mpsc` and a writer task.
fn tokio_mpsc(frame: usize, producers: usize, per: u64) -> io::Result<Sample> {
    use tokio::io::AsyncWriteExt;
    let msgs = per * producers as u64;
    let rt = tokio_runtime()?;
    timed(msgs, msgs * frame as u64, |addr| {
        rt.block_on(async {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>((CAPACITY / frame).max(1));
            let writer = tokio::spawn(async move {
                let mut out = tokio::io::BufWriter::with_capacity(BUFWRITER, stream);
                while let Some(frame) = rx.recv().await {
                    out.write_all(&frame).await?;
                }
                out.flush().await?;
                out.into_inner().shutdown().await
            });
            let started = Instant::now();
            let tasks: Vec<_> = (0..producers)
                .map(|_| {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let frame = frame_of(frame);
                        for _ in 0..per {
                            tx.send(frame.clone()).await.map_err(other)?;
                        }
                        Ok::<_, io::Error>(())
                    })
                })
                .collect();
            drop(tx);
            for task in tasks {
                task.await.map_err(other)??;
            }
            writer.await.map_err(other)??;
            Ok(started)
        })
    })
}

/// `tasks` tokio tasks sending through one `AsyncClient`.
fn tidegate_tokio(frame: usize, tasks: usize, per: u64) -> io::Result<Sample> {
    let msgs = per * tasks as u64;
    let rt = tokio_runtime()?;
    timed(msgs, msgs * frame as u64, |addr| {
        rt.block_on(async {
            let client = AsyncClient::connect(&format!("tcp://{addr}")).await.map_err(other)?;
            let started = Instant::now();
            let handles: Vec<_> = (0..tasks)
                .map(|_| {
                    let client = client.clone();
                    tokio::spawn(async move {
                        let frame = frame_of(frame);
                        for _ in 0..per {
                            client.send(frame.clone()).await.map_err(other)?;
                        }
                        Ok::<_, io::Error>(())
                    })
                })
                .collect();
            for handle in handles {
                handle.await.map_err(other)??;
            }
            client.flush().await.map_err(other)?;
            let report = client.close().await;
            if !report.is_clean() {
                return Err(other(format!("unclean close: {report:?}")));
            }
            Ok(started)
        })
    })
}

/// `tasks` async-std tasks sending through one `AsyncClient`.
fn tidegate_async_std(frame: usize, tasks: usize, per: u64) -> io::Result<Sample> {
    let msgs = per * tasks as u64;
    timed(msgs, msgs * frame as u64, |addr| {
        async_std::task::block_on(async {
            let client = AsyncClient::connect(&format!("tcp://{addr}")).await.map_err(other)?;
            let started = Instant::now();
            let handles: Vec<_> = (0..tasks)
                .map(|_| {
                    let client = client.clone();
                    async_std::task::spawn(async move {
                        let frame = frame_of(frame);
                        for _ in 0..per {
                            client.send(frame.clone()).await.map_err(other)?;
                        }
                        Ok::<_, io::Error>(())
                    })
                })
                .collect();
            for handle in handles {
                handle.await?;
            }
            client.flush().await.map_err(other)?;
            let report = client.close().await;
            if !report.is_clean() {
                return Err(other(format!("unclean close: {report:?}")));
            }
            Ok(started)
        })
    })
}

/// The implementations of the throughput table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Imp {
    Ceiling,
    BufWriter,
    Tidegate,
    TidegateBatch,
    TidegateBufWriter,
    TidegateTokio,
    TidegateAsyncStd,
    MutexQueue,
    Flume,
    Crossbeam,
    SyncChannel,
    TokioMpsc,
}

impl Imp {
    fn name(self) -> &'static str {
        match self {
            Self::Ceiling => "loopback ceiling (256 KiB writes)",
            Self::BufWriter => "BufWriter, 1 thread, unbounded",
            Self::Tidegate => "tidegate Client",
            Self::TidegateBatch => "tidegate Client, send_batch of 64 frames",
            Self::TidegateBufWriter => "tidegate Client behind a 64 KiB BufWriter",
            Self::TidegateTokio => "tidegate AsyncClient on tokio",
            Self::TidegateAsyncStd => "tidegate AsyncClient on async-std",
            Self::MutexQueue => MutexQueue::NAME,
            Self::Flume => Flume::NAME,
            Self::Crossbeam => Crossbeam::NAME,
            Self::SyncChannel => SyncChannel::NAME,
            Self::TokioMpsc => "tokio mpsc + writer task",
        }
    }

    fn is_tidegate(self) -> bool {
        matches!(
            self,
            Self::Tidegate
                | Self::TidegateBatch
                | Self::TidegateBufWriter
                | Self::TidegateTokio
                | Self::TidegateAsyncStd
        )
    }

    fn is_channel(self) -> bool {
        matches!(self, Self::Flume | Self::Crossbeam | Self::SyncChannel | Self::TokioMpsc)
    }

    fn is_peer(self) -> bool {
        !self.is_tidegate() && self != Self::Ceiling
    }
}

/// One row of the throughput table.
#[derive(Debug, Clone)]
struct Case {
    imp: Imp,
    frame: usize,
    producers: usize,
    samples: Vec<Sample>,
}

impl Case {
    fn name(&self) -> String {
        let tasks = self.imp.is_tidegate() && self.producers == TASKS || self.imp == Imp::TokioMpsc;
        let unit = match (tasks, self.producers) {
            (true, 1) => "task",
            (true, _) => "tasks",
            (false, 1) => "thread",
            (false, _) => "threads",
        };
        format!("{} / {} B / {} {unit}", self.imp.name(), self.frame, self.producers)
    }

    fn run(&self, opts: &Opts) -> io::Result<Sample> {
        let total = opts.total_bytes(self.frame);
        let per = (total / self.frame as u64 / self.producers as u64).max(1);
        let (frame, producers) = (self.frame, self.producers);
        match self.imp {
            Imp::Ceiling => loopback_ceiling(total),
            Imp::BufWriter => bufwriter(frame, per),
            Imp::Tidegate => threads::<Tidegate>(frame, producers, per),
            Imp::TidegateBatch => tidegate_batch(frame, producers, per),
            Imp::TidegateBufWriter => tidegate_bufwriter(frame, producers, per),
            Imp::TidegateTokio => tidegate_tokio(frame, producers, per),
            Imp::TidegateAsyncStd => tidegate_async_std(frame, producers, per),
            Imp::MutexQueue => threads::<MutexQueue>(frame, producers, per),
            Imp::Flume => threads::<ChannelPeer<Flume>>(frame, producers, per),
            Imp::Crossbeam => threads::<ChannelPeer<Crossbeam>>(frame, producers, per),
            Imp::SyncChannel => threads::<ChannelPeer<SyncChannel>>(frame, producers, per),
            Imp::TokioMpsc => tokio_mpsc(frame, producers, per),
        }
    }

    /// The median by throughput.
    fn median(&self) -> Option<Sample> {
        let mut rates: Vec<Sample> = self.samples.clone();
        rates.sort_by(|a, b| a.secs.total_cmp(&b.secs));
        rates.get(rates.len() / 2).copied()
    }

    fn spread(&self) -> f64 {
        let rates: Vec<f64> = self.samples.iter().map(|s| s.bytes as f64 / s.secs).collect();
        let max = rates.iter().copied().fold(f64::MIN, f64::max);
        let min = rates.iter().copied().fold(f64::MAX, f64::min);
        self.median().map_or(0.0, |m| (max - min) / (m.bytes as f64 / m.secs))
    }
}

fn cases() -> Vec<Case> {
    let mut cases =
        vec![Case { imp: Imp::Ceiling, frame: CEILING_CHUNK, producers: 1, samples: vec![] }];
    for frame in FRAME_SIZES {
        let mut add = |imp, producers| cases.push(Case { imp, frame, producers, samples: vec![] });
        add(Imp::BufWriter, 1);
        for producers in [1, 4] {
            add(Imp::Tidegate, producers);
            if frame == 64 {
                add(Imp::TidegateBatch, producers);
            }
            if frame < BUFWRITER {
                add(Imp::TidegateBufWriter, producers);
            }
            add(Imp::MutexQueue, producers);
            add(Imp::Flume, producers);
            add(Imp::Crossbeam, producers);
            add(Imp::SyncChannel, producers);
            add(Imp::TokioMpsc, producers);
        }
        add(Imp::TidegateTokio, TASKS);
        add(Imp::TidegateAsyncStd, TASKS);
        add(Imp::TokioMpsc, TASKS);
    }
    cases
}

// ---------------------------------------------------------------------------------------------
// Extra measurements

/// The first three fields of `/proc/loadavg`: other work on the machine skews every number.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|_| "unknown".into())
}

fn proc_status_kib(field: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| other(format!("no {field} in /proc/self/status")))
}

/// CPU time of every thread of this process but the calling one, from
/// `/proc/self/task/*/schedstat` (nanoseconds).
fn process_cpu_ns() -> io::Result<u64> {
    let me = std::fs::read_link("/proc/thread-self")?;
    let me = me.file_name().map(ToOwned::to_owned);
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task")? {
        let task = task?;
        if Some(task.file_name()) == me {
            continue;
        }
        // A thread may end between the listing and the read.
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else { continue };
        total += stat.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    }
    Ok(total)
}

/// Runs this program again with `args`, and returns the `key=value` pairs it printed.
fn child(args: &[String]) -> io::Result<Vec<(String, String)>> {
    let out = Command::new(std::env::current_exe()?).arg("--child").args(args).output()?;
    if !out.status.success() {
        return Err(other(format!(
            "child {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())))
        .collect())
}

fn value(pairs: &[(String, String)], key: &str) -> io::Result<f64> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| other(format!("the child printed no {key}")))
}

/// The child's side of the peak RSS measurement: sends `total` bytes of freshly allocated
/// frames and prints the growth of `VmHWM`.
fn child_rss<P: Peer>(addr: SocketAddr, frame: usize, total: u64) -> io::Result<()> {
    let (tx, finish) = P::open(addr, frame, CAPACITY, None)?;
    let mut pattern = 0u8;
    // Warm up the allocator with a few frames so its first arenas are in the baseline.
    drop((0..16).map(|_| vec![0u8; frame]).collect::<Vec<_>>());
    let baseline = proc_status_kib("VmHWM")?;
    for _ in 0..total / frame as u64 {
        pattern = pattern.wrapping_add(1);
        P::send(&tx, Bytes::from(vec![pattern; frame]))?;
    }
    let peak = proc_status_kib("VmHWM")?;
    drop(tx);
    finish()?;
    println!("growth_kib={}", peak.saturating_sub(baseline));
    Ok(())
}

/// The child's side of the CPU measurement: blocks a sender on a stalled sink and prints the
/// CPU the whole process used over `secs` seconds.
fn child_cpu<P: Peer>(addr: SocketAddr, secs: f64) -> io::Result<()> {
    let (tx, finish) = P::open(addr, 64 * 1024, CAPACITY, None)?;
    let in_send = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (tx, in_send, sent, stop) = (tx.clone(), in_send.clone(), sent.clone(), stop.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                in_send.store(now_ns(), Ordering::SeqCst);
                if P::send(&tx, frame_of(64 * 1024)).is_err() {
                    break;
                }
                in_send.store(0, Ordering::SeqCst);
                sent.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    drop(tx);
    // Blocked: inside one send for 200 ms.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let since = in_send.load(Ordering::SeqCst);
        if since != 0 && now_ns().saturating_sub(since) > 200_000_000 {
            break;
        }
        if Instant::now() > deadline {
            return Err(other("the sender never blocked"));
        }
        thread::sleep(Duration::from_millis(10));
    }
    let sent_before = sent.load(Ordering::SeqCst);
    let cpu_before = process_cpu_ns()?;
    let wall = Instant::now();
    thread::sleep(Duration::from_secs_f64(secs));
    let cpu = process_cpu_ns()? - cpu_before;
    let wall = wall.elapsed().as_secs_f64();
    let progressed = sent.load(Ordering::SeqCst) - sent_before;
    println!("cpu_ns_per_s={}", cpu as f64 / wall);
    println!("cpu_total_ns={cpu_before}");
    println!("sends_during={progressed}");
    // Unblock: the parent's sink starts reading once we exit; we do not wait for it.
    stop.store(true, Ordering::SeqCst);
    drop(finish);
    drop(sender);
    std::process::exit(0);
}

fn run_child(args: &[String]) -> io::Result<()> {
    let arg = |i: usize| args.get(i).cloned().ok_or_else(|| other("child: missing argument"));
    let num = |i: usize| -> io::Result<u64> { arg(i)?.parse().map_err(other) };
    let kind = arg(0)?;
    let peer = arg(1)?;
    match kind.as_str() {
        "rss" => {
            let addr: SocketAddr = arg(2)?.parse().map_err(other)?;
            let (frame, total) = (usize::try_from(num(3)?).map_err(other)?, num(4)?);
            match peer.as_str() {
                "tidegate" => child_rss::<Tidegate>(addr, frame, total),
                "mutex" => child_rss::<MutexQueue>(addr, frame, total),
                "unbounded" => child_rss::<ChannelPeer<Unbounded>>(addr, frame, total),
                _ => Err(other("child: unknown peer")),
            }
        }
        "cpu" => {
            let addr: SocketAddr = arg(2)?.parse().map_err(other)?;
            let secs: f64 = arg(3)?.parse().map_err(other)?;
            match peer.as_str() {
                "tidegate" => child_cpu::<Tidegate>(addr, secs),
                "mutex" => child_cpu::<MutexQueue>(addr, secs),
                _ => Err(other("child: unknown peer")),
            }
        }
        "many" => {
            let frame = usize::try_from(num(2)?).map_err(other)?;
            let conns = usize::try_from(num(3)?).map_err(other)?;
            child_many(&peer, frame, conns, num(4)?)
        }
        "duplex" => {
            let frame = usize::try_from(num(2)?).map_err(other)?;
            child_duplex(DuplexMode::from_arg(&peer)?, frame, num(3)?)
        }
        "parked" => {
            let tasks = usize::try_from(num(2)?).map_err(other)?;
            let frame = usize::try_from(num(3)?).map_err(other)?;
            child_parked(&peer, tasks, frame)
        }
        _ => Err(other("child: unknown kind")),
    }
}

/// Peak RSS growth of a child sending `total` bytes of `frame`-byte frames through `peer` to a
/// sink that reads `rate` bytes per second.
fn rss_growth(peer: &str, frame: usize, total: u64, rate: u64) -> io::Result<(f64, f64)> {
    let (addr, sink) = spawn_sink(total, Some(rate))?;
    let started = Instant::now();
    let pairs = child(&[
        "rss".into(),
        peer.into(),
        addr.to_string(),
        frame.to_string(),
        total.to_string(),
    ])?;
    let report = sink.join().map_err(|_| other("the sink panicked"))??;
    if report.bytes != total {
        return Err(other(format!("rss sink got {} of {total} bytes", report.bytes)));
    }
    Ok((value(&pairs, "growth_kib")? * 1024.0, started.elapsed().as_secs_f64()))
}

/// CPU used per second by a child whose sender is blocked on a stalled sink.
/// Also returns the CPU the child's other threads had used before the wait, which shows that
/// the reading works.
fn blocked_cpu(peer: &str, secs: f64) -> io::Result<(f64, f64, f64)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let release = Arc::new(AtomicBool::new(false));
    let sink = {
        let release = release.clone();
        thread::spawn(move || -> io::Result<()> {
            let mut stream = accept(&listener)?;
            let deadline = Instant::now() + PATIENCE;
            while !release.load(Ordering::SeqCst) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut buf = vec![0u8; SINK_BUF];
            // Drain what the child left, until it is gone.
            while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
            Ok(())
        })
    };
    let pairs = child(&["cpu".into(), peer.into(), addr.to_string(), secs.to_string()]);
    release.store(true, Ordering::SeqCst);
    sink.join().map_err(|_| other("the sink panicked"))??;
    let pairs = pairs?;
    Ok((
        value(&pairs, "cpu_ns_per_s")?,
        value(&pairs, "sends_during")?,
        value(&pairs, "cpu_total_ns")?,
    ))
}

/// Wake latency of a blocked sender, in nanoseconds, two ways: from the moment room was freed
/// for it to the return of its send, and from the moment the stalled sink resumed reading to
/// the return of its send (which adds the kernel's TCP window and buffer dynamics).
///
/// A sink stalls until the sender has been inside one send for 3 ms, then reads until the
/// consumer side has freed room, then waits (sleeping, to leave the CPU to the woken sender)
/// for that send to return, and stalls again. The moment room was freed comes from tidegate's
/// own count of the time senders waited (taken when the driver grants the room, before it
/// wakes the sender), and, for the peers, from the writer side marking the first time it frees
/// room after the stall ended. A sample whose room was freed before the sink resumed (the
/// sender was not really stuck) is discarded.
fn wake_latency<P: Peer>(samples: usize, frame: usize) -> io::Result<(Vec<u64>, Vec<u64>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let probe: Probe = Arc::new(AtomicU64::new(0));
    // The connection completes in the listener's backlog; the sink accepts it below.
    let (tx, finish) = P::open(addr, frame, CAPACITY, Some(probe.clone()))?;
    let progress = P::progress(&tx, &probe);
    // When the current send began (0: not in a send).
    let in_send = Arc::new(AtomicU64::new(0));
    // When the sink last resumed reading, and how many times it has.
    let released = Arc::new(AtomicU64::new(0));
    let cycles = Arc::new(AtomicU64::new(0));
    // The last cycle the sender has seen end.
    let acked = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sink = {
        let (in_send, released, cycles, acked, done, probe) = (
            in_send.clone(),
            released.clone(),
            cycles.clone(),
            acked.clone(),
            done.clone(),
            probe.clone(),
        );
        thread::spawn(move || -> io::Result<()> {
            let mut stream = accept(&listener)?;
            stream.set_read_timeout(Some(PATIENCE))?;
            let mut buf = vec![0u8; SINK_BUF];
            let deadline = Instant::now() + PATIENCE;
            while !done.load(Ordering::SeqCst) {
                if Instant::now() > deadline {
                    return Err(other("wake latency: out of time"));
                }
                let since = in_send.load(Ordering::SeqCst);
                if since == 0 || now_ns().saturating_sub(since) < 3_000_000 {
                    thread::sleep(Duration::from_micros(200));
                    continue;
                }
                // The sender has been blocked for 3 ms and nothing moves: resume reading.
                let cycle = cycles.load(Ordering::SeqCst) + 1;
                probe.store(0, Ordering::SeqCst);
                let start = progress();
                released.store(now_ns(), Ordering::SeqCst);
                cycles.store(cycle, Ordering::SeqCst);
                // Read until room was freed, then leave the CPU to the woken sender; read again
                // if it is still stuck after 20 ms (it was not the send the sink saw).
                let mut freed_at = None;
                while acked.load(Ordering::SeqCst) < cycle && !done.load(Ordering::SeqCst) {
                    if Instant::now() > deadline {
                        return Err(other("wake latency: the sender never returned"));
                    }
                    if freed_at.is_none() && progress() != start {
                        freed_at = Some(Instant::now());
                    }
                    match freed_at {
                        Some(at) if at.elapsed() < Duration::from_millis(20) => {
                            thread::sleep(Duration::from_micros(50));
                        }
                        _ => {
                            if stream.read(&mut buf)? == 0 {
                                return Err(other("wake latency: the sender closed"));
                            }
                        }
                    }
                }
            }
            while stream.read(&mut buf)? > 0 {}
            Ok(())
        })
    };
    let frame = frame_of(frame);
    let mut from_free = Vec::with_capacity(samples);
    let mut from_sink = Vec::with_capacity(samples);
    let deadline = Instant::now() + PATIENCE;
    while from_free.len() < samples && Instant::now() < deadline {
        let Observed { start, end, granted } = P::send_observed(&tx, frame.clone(), &in_send)?;
        in_send.store(0, Ordering::SeqCst);
        let cycle = cycles.load(Ordering::SeqCst);
        let at = released.load(Ordering::SeqCst);
        if cycle > acked.load(Ordering::SeqCst) && at > start {
            let freed = granted.unwrap_or_else(|| probe.load(Ordering::SeqCst));
            if freed >= at {
                from_free.push(end.saturating_sub(freed));
                from_sink.push(end - at);
            }
        }
        // Whatever this send was, the sink may stall again.
        acked.store(cycle, Ordering::SeqCst);
    }
    done.store(true, Ordering::SeqCst);
    drop(tx);
    finish()?;
    sink.join().map_err(|_| other("the sink panicked"))??;
    if from_free.len() < samples {
        return Err(other("wake latency: out of time"));
    }
    Ok((from_free, from_sink))
}

/// The name of the wake-latency reference row.
const FLOOR: &str = "floor: a bare thread::park / unpark";

/// The machine's own wake latency: a thread parks, another unparks it 3 ms later. Reported as
/// (latencies, nothing).
fn unpark_floor(samples: usize, _frame: usize) -> io::Result<(Vec<u64>, Vec<u64>)> {
    let mut latencies = Vec::with_capacity(samples);
    let woken = Arc::new(AtomicU64::new(0));
    for _ in 0..samples {
        let waker = {
            let (woken, me) = (woken.clone(), thread::current());
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(3));
                woken.store(now_ns(), Ordering::SeqCst);
                me.unpark();
            })
        };
        let deadline = Instant::now() + PATIENCE;
        while woken.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
            thread::park_timeout(PATIENCE);
        }
        let end = now_ns();
        latencies.push(end.saturating_sub(woken.swap(0, Ordering::SeqCst)));
        waker.join().map_err(|_| other("the waker panicked"))?;
    }
    Ok((latencies, Vec::new()))
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return u64::MAX;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The child's side of the parked-sender measurement: the RSS growth, per task, of `tasks`
/// tokio tasks each holding a `frame`-byte frame and parked either in `AsyncClient::send` on a
/// full buffer (`senders`) or on a future that never completes (`bare`).
fn child_parked(mode: &str, tasks: usize, frame: usize) -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let rt = tokio_runtime()?;
    rt.block_on(async {
        let client = AsyncClient::connect(&format!("tcp://{addr}")).await.map_err(other)?;
        let stream = accept(&listener)?;
        // Fill the socket and then the buffer to the last byte: the sink never reads, so once
        // the kernel's buffers are full nothing moves and every later send must wait.
        let fill_deadline = Instant::now() + PATIENCE;
        loop {
            if Instant::now() > fill_deadline {
                return Err(other("parked senders: could not fill the buffer"));
            }
            let mut len = 64 * 1024;
            while len > 0 {
                if client.try_send(frame_of(len)).is_err() {
                    len /= 2;
                }
            }
            let before = client.stats().bytes_written;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let stats = client.stats();
            if stats.buffered == stats.capacity && stats.bytes_written == before {
                break;
            }
        }
        let mut handles = Vec::with_capacity(tasks);
        let parked = Arc::new(AtomicU64::new(0));
        let before = proc_status_kib("VmRSS")?;
        for i in 0..tasks {
            let frame = Bytes::from(vec![(i % 251) as u8; frame]);
            let client = client.clone();
            let parked = parked.clone();
            handles.push(if mode == "senders" {
                tokio::spawn(async move {
                    drop(parked);
                    client.send(frame).await.map_err(|e| e.into_inner())
                })
            } else {
                tokio::spawn(async move {
                    drop(client);
                    parked.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                    Err(frame)
                })
            });
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            let waiting = if mode == "senders" {
                client.stats().waiters
            } else {
                usize::try_from(parked.load(Ordering::SeqCst)).unwrap_or(usize::MAX)
            };
            if waiting >= tasks {
                break;
            }
            if Instant::now() > deadline {
                return Err(other(format!("parked senders: {waiting} of {tasks} parked")));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let after = proc_status_kib("VmRSS")?;
        println!("per_task={}", (after.saturating_sub(before) * 1024) as f64 / tasks as f64);
        let report = client.close_timeout(Duration::from_millis(100)).await;
        drop(report);
        for handle in handles {
            handle.abort();
        }
        drop(stream);
        Ok(())
    })
}

/// RSS per parked async sender beside its frame, and the same for a bare parked task, in bytes.
fn parked_async_senders(tasks: usize, frame: usize) -> io::Result<(f64, f64)> {
    let per_task = |mode: &str| -> io::Result<f64> {
        let pairs = child(&["parked".into(), mode.into(), tasks.to_string(), frame.to_string()])?;
        Ok(value(&pairs, "per_task")? - frame as f64)
    };
    Ok((per_task("senders")?, per_task("bare")?))
}

// ---------------------------------------------------------------------------------------------
// Many connections

/// Connections of the many-connections rows.
const MANY_CONNS: usize = 1000;
/// Connections of the many-connections rows with `--quick`.
const MANY_CONNS_QUICK: usize = 100;
/// Driver threads of the shared I/O group.
const MANY_IO_THREADS: usize = 2;
/// Producer threads of the tidegate rows; producer `p` serves connections `p`, `p + 4`, ...
const MANY_PRODUCERS: usize = 4;
/// Frames a producer sends to one connection before it moves on to the next.
const MANY_BURST: u64 = 16;
/// The bound per connection: tidegate's capacity and the baseline's `BufWriter` size.
const MANY_BOUND: usize = 64 * 1024;
/// The stack of each thread of the thread-per-connection baseline.
const MANY_STACK: usize = 64 * 1024;
/// The listen backlog of the many-connections sink, so that a burst of connects is not
/// dropped (the kernel caps it at `net.core.somaxconn`).
const MANY_BACKLOG: u32 = 4096;

/// The peers of the many-connections rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ManyImp {
    /// tidegate, every connection on one `IoGroup` of `MANY_IO_THREADS` driver threads, fed by
    /// `MANY_PRODUCERS` producer threads.
    Group,
    /// tidegate, a driver thread per connection (the default), fed by `MANY_PRODUCERS`
    /// producer threads.
    Driver,
    /// tidegate on an `IoGroup` as in `Group`, fed by a producer thread per connection: the
    /// baseline's producers, so that only the way to the socket differs.
    GroupPerConn,
    /// A thread per connection writing its own frames through a `BufWriter<TcpStream>`.
    Threads,
}

impl ManyImp {
    const ALL: [Self; 4] = [Self::Group, Self::Driver, Self::GroupPerConn, Self::Threads];

    fn name(self) -> &'static str {
        match self {
            Self::Group => "tidegate Client, IoGroup of 2 driver threads, 4 producers",
            Self::Driver => "tidegate Client, a driver thread per connection, 4 producers",
            Self::GroupPerConn => {
                "tidegate Client, IoGroup of 2 driver threads, a producer per connection"
            }
            Self::Threads => "a thread per connection writing through a 64 KiB BufWriter",
        }
    }

    /// The child's name for it.
    fn arg(self) -> &'static str {
        match self {
            Self::Group => "group",
            Self::Driver => "driver",
            Self::GroupPerConn => "group-per-conn",
            Self::Threads => "threads",
        }
    }
}

/// One run of a many-connections row, as the child measured it.
#[derive(Debug, Clone, Copy)]
struct ManySample {
    sample: Sample,
    /// From the first connect to every connection being ready to send.
    connect_secs: f64,
    /// Threads the peer added to the process (producers included).
    threads: f64,
    /// Growth of `VmHWM` over the whole run.
    growth_kib: f64,
    /// The share of the time from its first byte to its last that the sink thread ran.
    sink_busy: f64,
    /// Sends that had to wait for room.
    waited: f64,
}

/// One many-connections row.
#[derive(Debug, Clone)]
struct ManyCase {
    imp: ManyImp,
    frame: usize,
    samples: Vec<ManySample>,
}

impl ManyCase {
    fn name(&self) -> String {
        format!("many connections / {} / {} B", self.imp.name(), self.frame)
    }

    fn conns(opts: &Opts) -> usize {
        if opts.quick { MANY_CONNS_QUICK } else { MANY_CONNS }
    }

    /// Frames each connection sends: 128 MiB of 64 B frames or 512 MiB of 1 KiB frames in
    /// all (1/16 with `--quick`).
    fn per_conn(&self, opts: &Opts) -> u64 {
        let total: u64 = if self.frame <= 64 { 128 << 20 } else { 512 << 20 };
        let total = if opts.quick { total / 16 } else { total };
        (total / self.frame as u64 / Self::conns(opts) as u64).max(1)
    }

    /// Runs one sample in a child process, so that its threads, sockets and memory do not
    /// outlive it and its peak RSS is its own.
    fn run(&self, opts: &Opts) -> io::Result<ManySample> {
        let conns = Self::conns(opts);
        let per = self.per_conn(opts);
        let pairs = child(&[
            "many".into(),
            self.imp.arg().into(),
            self.frame.to_string(),
            conns.to_string(),
            per.to_string(),
        ])?;
        let msgs = per * conns as u64;
        Ok(ManySample {
            sample: Sample { msgs, bytes: msgs * self.frame as u64, secs: value(&pairs, "secs")? },
            connect_secs: value(&pairs, "connect_secs")?,
            threads: value(&pairs, "threads")?,
            growth_kib: value(&pairs, "growth_kib")?,
            sink_busy: value(&pairs, "sink_busy")?,
            waited: value(&pairs, "waited")?,
        })
    }

    fn median_sample(&self) -> Option<Sample> {
        let mut samples: Vec<Sample> = self.samples.iter().map(|s| s.sample).collect();
        samples.sort_by(|a, b| a.secs.total_cmp(&b.secs));
        samples.get(samples.len() / 2).copied()
    }

    fn median_of(&self, field: impl Fn(&ManySample) -> f64) -> f64 {
        median(&mut self.samples.iter().map(field).collect::<Vec<_>>())
    }

    fn spread(&self) -> f64 {
        let rates: Vec<f64> =
            self.samples.iter().map(|s| s.sample.bytes as f64 / s.sample.secs).collect();
        let max = rates.iter().copied().fold(f64::MIN, f64::max);
        let min = rates.iter().copied().fold(f64::MAX, f64::min);
        self.median_sample().map_or(0.0, |m| (max - min) / (m.bytes as f64 / m.secs))
    }
}

fn many_cases() -> Vec<ManyCase> {
    [64, 1024]
        .into_iter()
        .flat_map(|frame| ManyImp::ALL.map(|imp| ManyCase { imp, frame, samples: vec![] }))
        .collect()
}

/// The soft limit on open files, from `/proc/self/limits`.
fn open_files_limit() -> io::Result<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|soft| if soft == "unlimited" { Some(u64::MAX) } else { soft.parse().ok() })
        .ok_or_else(|| other("no open-files limit in /proc/self/limits"))
}

/// Fails unless the process may open the descriptors of `conns` connections: both ends of
/// each socket, and, with a driver thread per connection, that driver's epoll and waker.
fn check_open_files(conns: usize) -> io::Result<()> {
    let needed = conns as u64 * 4 + 256;
    let limit = open_files_limit()?;
    if limit < needed {
        return Err(other(format!(
            "{conns} connections need about {needed} open files, the limit is {limit}: \
             raise it with `ulimit -n {needed}`"
        )));
    }
    Ok(())
}

/// Threads of this process now.
fn thread_count() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

/// The CPU time the calling thread has run, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// What the many-connections sink saw.
#[derive(Debug)]
struct ManySinkReport {
    /// Bytes of each connection, in the order they were accepted.
    counts: Vec<u64>,
    /// When the expected total was reached.
    done_at: Option<Instant>,
    sink_busy: f64,
}

/// The state the sink's tasks share on its one thread.
#[derive(Debug)]
struct ManySinkShared {
    buf: std::cell::RefCell<Vec<u8>>,
    expected: u64,
    total: std::cell::Cell<u64>,
    /// When, and at which CPU time of the sink thread, the first byte and the expected total
    /// arrived.
    first: std::cell::Cell<Option<(Instant, u64)>>,
    done: std::cell::Cell<Option<(Instant, u64)>>,
}

impl ManySinkShared {
    fn add(&self, n: usize) {
        if self.first.get().is_none() {
            self.first.set(Some((Instant::now(), thread_cpu_ns())));
        }
        self.total.set(self.total.get() + n as u64);
        if self.done.get().is_none() && self.total.get() >= self.expected {
            self.done.set(Some((Instant::now(), thread_cpu_ns())));
        }
    }
}

/// Reads one connection to its end into the shared buffer; returns its byte count.
async fn many_drain(stream: tokio::net::TcpStream, shared: std::rc::Rc<ManySinkShared>) -> u64 {
    let mut count = 0;
    loop {
        if stream.readable().await.is_err() {
            return count;
        }
        let read = stream.try_read(&mut shared.buf.borrow_mut());
        match read {
            Ok(0) => return count,
            Ok(n) => {
                count += n as u64;
                shared.add(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Counted short, which fails the run.
            Err(_) => return count,
        }
    }
}

/// A sink for `conns` connections on one thread: a current-thread tokio runtime (epoll) with a
/// task per connection, every task reading into one shared 256 KiB buffer. It counts the bytes
/// of each connection until its peer closes.
fn spawn_many_sink(
    conns: usize,
    expected: u64,
) -> io::Result<(SocketAddr, thread::JoinHandle<io::Result<ManySinkReport>>)> {
    let (addr_tx, addr_rx) = mpsc::channel();
    let handle = thread::Builder::new().name("sink".into()).spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async move {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
            let listener = socket.listen(MANY_BACKLOG)?;
            let shared = std::rc::Rc::new(ManySinkShared {
                // Written once, so that its pages are resident before the child's baseline.
                buf: std::cell::RefCell::new(vec![1u8; SINK_BUF]),
                expected,
                total: std::cell::Cell::new(0),
                first: std::cell::Cell::new(None),
                done: std::cell::Cell::new(None),
            });
            let _ = addr_tx.send(listener.local_addr()?);
            let mut tasks = Vec::with_capacity(conns);
            for _ in 0..conns {
                let (stream, _) = tokio::time::timeout(PATIENCE, listener.accept())
                    .await
                    .map_err(|_| other("many sink: a connection never came"))??;
                let shared = shared.clone();
                tasks.push(tokio::task::spawn_local(tokio::time::timeout(
                    PATIENCE,
                    many_drain(stream, shared),
                )));
            }
            let mut counts = Vec::with_capacity(conns);
            for task in tasks {
                let count = task.await.map_err(other)?;
                counts.push(count.map_err(|_| other("many sink: a connection never ended"))?);
            }
            let sink_busy = match (shared.first.get(), shared.done.get()) {
                (Some((t0, c0)), Some((t1, c1))) => {
                    (c1 - c0) as f64 / 1e9 / t1.duration_since(t0).as_secs_f64().max(1e-9)
                }
                _ => f64::NAN,
            };
            Ok(ManySinkReport { counts, done_at: shared.done.get().map(|(at, _)| at), sink_busy })
        })
    })?;
    match addr_rx.recv() {
        Ok(addr) => Ok((addr, handle)),
        Err(_) => Err(match handle.join() {
            Ok(Err(e)) => e,
            _ => other("the many sink did not start"),
        }),
    }
}

/// How a peer of the many-connections rows ran.
#[derive(Debug)]
struct ManyRun {
    connect_secs: f64,
    threads: usize,
    /// When the first producer began sending.
    started: Instant,
    /// Sends that had to wait for room (tidegate only).
    waited: u64,
}

/// The moment the first of many threads began its work: the clock of the many-connections rows
/// starts there. (Read by the main thread after a barrier, it could be late: with a thousand
/// threads on two CPUs, the main thread may run again only after the work is done.)
#[derive(Debug, Default)]
struct FirstStart(Mutex<Option<Instant>>);

impl FirstStart {
    fn mark(&self) {
        let now = Instant::now();
        let mut first = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if first.is_none_or(|at| now < at) {
            *first = Some(now);
        }
    }

    fn get(&self) -> io::Result<Instant> {
        let first = *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        first.ok_or_else(|| other("no thread started"))
    }
}

/// The work of one many-connections run: `conns` connections, each sending `per` frames of
/// `frame` bytes.
#[derive(Debug, Clone, Copy)]
struct ManyWork {
    addr: SocketAddr,
    frame: usize,
    conns: usize,
    per: u64,
    /// Threads of the process before the run.
    threads_before: usize,
}

/// tidegate: `conns` connections (on an `IoGroup` of `io_threads`, or a driver thread each),
/// fed by `producers` threads (with a `MANY_STACK` stack); producer `p` serves connections
/// `p`, `p + producers`, ... in turn, `MANY_BURST` frames to each. The connections are closed
/// with the core's close, all at once.
fn many_tidegate(
    work: ManyWork,
    io_threads: Option<usize>,
    producers: usize,
) -> io::Result<ManyRun> {
    let ManyWork { addr, frame, conns, per, threads_before } = work;
    let url = format!("tcp://{addr}");
    let t0 = Instant::now();
    let group = io_threads.map(tidegate::IoGroup::new).transpose()?;
    let mut config = tidegate::Config::new().capacity(MANY_BOUND);
    if let Some(group) = &group {
        config = config.io_group(group);
    }
    let clients = (0..conns)
        .map(|_| tidegate::Connection::open(&url, config.clone()).map(Client::from_connection))
        .collect::<Result<Vec<_>, _>>()
        .map_err(other)?;
    for client in &clients {
        futures::executor::block_on(client.connection().connected()).map_err(other)?;
    }
    let connect_secs = t0.elapsed().as_secs_f64();
    let clients = Arc::new(clients);
    let start = Arc::new(Barrier::new(producers + 1));
    let first = Arc::new(FirstStart::default());
    let mut threads = Vec::with_capacity(producers);
    for p in 0..producers {
        let (clients, start, first) = (clients.clone(), start.clone(), first.clone());
        let spawned = thread::Builder::new().name("producer".into()).stack_size(MANY_STACK).spawn(
            move || -> io::Result<()> {
                let mine: Vec<&Client> = clients.iter().skip(p).step_by(producers).collect();
                let frame = frame_of(frame);
                start.wait();
                first.mark();
                let mut sent = 0;
                while sent < per {
                    let burst = MANY_BURST.min(per - sent);
                    for client in &mine {
                        for _ in 0..burst {
                            client.send(frame.clone()).map_err(other)?;
                        }
                    }
                    sent += burst;
                }
                Ok(())
            },
        );
        threads.push(spawned.unwrap_or_else(|e| no_thread(threads.len(), producers, &e)));
    }
    let added = thread_count()?.saturating_sub(threads_before);
    start.wait();
    for producer in threads {
        producer.join().map_err(|_| other("a producer panicked"))??;
    }
    let started = first.get()?;
    let waited = clients.iter().map(|c| c.stats().sends_waited).sum();
    let closes = clients.iter().map(|c| c.connection().close(PATIENCE));
    let reports = futures::executor::block_on(futures::future::join_all(closes));
    let want = per * frame as u64;
    for report in reports {
        if !report.is_clean() || report.bytes_written() != want {
            return Err(other(format!("unclean close ({want} bytes sent): {report:?}")));
        }
    }
    Ok(ManyRun { connect_secs, threads: added, started, waited })
}

/// Ends the process when thread `index` of `count` could not be started: the threads started
/// before it wait at a barrier it would have passed.
fn no_thread(index: usize, count: usize, e: &io::Error) -> ! {
    eprintln!("could not start thread {} of {count}: {e}", index + 1);
    std::process::exit(1);
}

/// The baseline: a thread per connection (with a `MANY_STACK` stack), which connects, then
/// writes its own `per` frames through a 64 KiB `BufWriter<TcpStream>`, and closes once every
/// thread is done.
fn many_threads(work: ManyWork) -> io::Result<ManyRun> {
    let ManyWork { addr, frame, conns, per, threads_before } = work;
    let t0 = Instant::now();
    let ready = Arc::new(Barrier::new(conns + 1));
    let finished = Arc::new(Barrier::new(conns));
    let first = Arc::new(FirstStart::default());
    let mut writers = Vec::with_capacity(conns);
    for _ in 0..conns {
        let (ready, finished, first) = (ready.clone(), finished.clone(), first.clone());
        let spawned = thread::Builder::new().name("conn".into()).stack_size(MANY_STACK).spawn(
            move || -> io::Result<()> {
                let stream = connect(addr);
                // Past the barrier even on failure, so that nobody waits for this thread.
                ready.wait();
                first.mark();
                let sent = stream.and_then(|stream| {
                    let mut out = BufWriter::with_capacity(MANY_BOUND, stream);
                    let frame = frame_of(frame);
                    for _ in 0..per {
                        out.write_all(&frame)?;
                    }
                    out.flush()?;
                    Ok(out)
                });
                // Every connection stays open, with its buffer, until all are done, as in the
                // tidegate rows (which close them all at the end).
                finished.wait();
                sent.map(drop)
            },
        );
        writers.push(spawned.unwrap_or_else(|e| no_thread(writers.len(), conns, &e)));
    }
    let threads = thread_count()?.saturating_sub(threads_before);
    ready.wait();
    let connect_secs = t0.elapsed().as_secs_f64();
    for writer in writers {
        writer.join().map_err(|_| other("a writer panicked"))??;
    }
    Ok(ManyRun { connect_secs, threads, started: first.get()?, waited: 0 })
}

/// The child's side of a many-connections row: runs the sink and the peer in this process and
/// prints the throughput time, the connect time, the threads the peer added and the growth of
/// `VmHWM`.
fn child_many(peer: &str, frame: usize, conns: usize, per: u64) -> io::Result<()> {
    let want = per * frame as u64;
    let (addr, sink) = spawn_many_sink(conns, want * conns as u64)?;
    let work = ManyWork { addr, frame, conns, per, threads_before: thread_count()? };
    let rss_before = proc_status_kib("VmHWM")?;
    let run = match peer {
        "group" => many_tidegate(work, Some(MANY_IO_THREADS), MANY_PRODUCERS),
        "driver" => many_tidegate(work, None, MANY_PRODUCERS),
        "group-per-conn" => many_tidegate(work, Some(MANY_IO_THREADS), conns),
        "threads" => many_threads(work),
        _ => Err(other("child: unknown peer")),
    }?;
    let report = sink.join().map_err(|_| other("the sink panicked"))??;
    let growth = proc_status_kib("VmHWM")?.saturating_sub(rss_before);
    if report.counts.len() != conns || report.counts.iter().any(|&n| n != want) {
        let wrong = report.counts.iter().filter(|&&n| n != want).count();
        return Err(other(format!(
            "the sink counted {} connections, {wrong} of them not {want} bytes",
            report.counts.len()
        )));
    }
    let done = report.done_at.ok_or_else(|| other("the sink never got every byte"))?;
    println!("secs={}", done.saturating_duration_since(run.started).as_secs_f64());
    println!("connect_secs={}", run.connect_secs);
    println!("threads={}", run.threads);
    println!("growth_kib={growth}");
    println!("sink_busy={}", report.sink_busy);
    println!("waited={}", run.waited);
    Ok(())
}

fn many_table(cases: &[ManyCase], conns: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n| many connections: frame | implementation | threads | connect all {conns} | msgs/s \
         | MB/s | spread | × thread per connection | peak RSS growth | sink busy |"
    );
    out.push_str("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for case in cases {
        let Some(m) = case.median_sample() else { continue };
        let (msgs, mb) = rate(m);
        let baseline = cases
            .iter()
            .find(|c| c.imp == ManyImp::Threads && c.frame == case.frame)
            .and_then(ManyCase::median_sample)
            .map(|b| mb / rate(b).1);
        let name = if case.imp == ManyImp::Threads {
            case.imp.name().to_string()
        } else {
            format!("**{}**", case.imp.name())
        };
        let _ = writeln!(
            out,
            "| {} | {name} | {:.0} | {:.0} ms | {} | {mb:.0} | ±{:.0}% | {} | {:.1} MiB | {:.0}% |",
            fmt_size(case.frame),
            case.median_of(|s| s.threads),
            case.median_of(|s| s.connect_secs) * 1e3,
            fmt_count(msgs),
            case.spread() * 50.0,
            fmt_ratio(baseline),
            case.median_of(|s| s.growth_kib) / 1024.0,
            case.median_of(|s| s.sink_busy) * 100.0,
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Full duplex

/// Bytes each full-duplex sample sends (1/16 with `--quick`).
const DUPLEX_BYTES: u64 = 512 << 20;
/// Frame sizes of the full-duplex rows.
const DUPLEX_FRAMES: [usize; 2] = [1024, 64 * 1024];
/// Inbound bytes the client must have received before the clock starts, so that the flood is
/// under way.
const DUPLEX_WARMUP: u64 = 1 << 20;
/// The inbound buffer of the unbiased row.
const DUPLEX_BIG_INBOUND: usize = 16 << 20;
/// The write bias of the small-bias row.
const DUPLEX_SMALL_BIAS: usize = 16 * 1024;

/// How the client and its peer are set up in a full-duplex row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DuplexMode {
    /// The peer never writes: the reference.
    OutboundOnly,
    /// The peer floods; default write bias and inbound buffer.
    DefaultBias,
    /// The peer floods; `write_bias(16 KiB)`.
    SmallBias,
    /// The peer floods; `write_bias(usize::MAX)`, default inbound buffer: the buffer alone
    /// bounds what one turn reads.
    BufferOnly,
    /// The peer floods; default write bias and a 16 MiB inbound buffer: the bias alone bounds
    /// what one turn reads.
    BiasOnly,
    /// The peer floods; `write_bias(usize::MAX)` and a 16 MiB inbound buffer.
    NoBias,
}

impl DuplexMode {
    const ALL: [Self; 6] = [
        Self::OutboundOnly,
        Self::DefaultBias,
        Self::SmallBias,
        Self::BufferOnly,
        Self::BiasOnly,
        Self::NoBias,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::OutboundOnly => "outbound only (the peer never writes)",
            Self::DefaultBias => "inbound flood, default write bias (64 KiB), 256 KiB inbound",
            Self::SmallBias => "inbound flood, write_bias(16 KiB), 256 KiB inbound",
            Self::BufferOnly => "inbound flood, write_bias(usize::MAX), 256 KiB inbound",
            Self::BiasOnly => "inbound flood, default write bias (64 KiB), 16 MiB inbound",
            Self::NoBias => "inbound flood, write_bias(usize::MAX), 16 MiB inbound",
        }
    }

    /// The child's name for it.
    fn arg(self) -> &'static str {
        match self {
            Self::OutboundOnly => "alone",
            Self::DefaultBias => "default",
            Self::SmallBias => "small",
            Self::BufferOnly => "buffer",
            Self::BiasOnly => "bias",
            Self::NoBias => "none",
        }
    }

    fn from_arg(arg: &str) -> io::Result<Self> {
        Self::ALL.into_iter().find(|m| m.arg() == arg).ok_or_else(|| other("child: unknown mode"))
    }

    fn flood(self) -> bool {
        self != Self::OutboundOnly
    }

    fn builder(self) -> tidegate::ClientBuilder {
        let builder = Client::builder();
        match self {
            Self::OutboundOnly | Self::DefaultBias => builder,
            Self::SmallBias => builder.write_bias(DUPLEX_SMALL_BIAS),
            Self::BufferOnly => builder.write_bias(usize::MAX),
            Self::BiasOnly => builder.inbound_capacity(DUPLEX_BIG_INBOUND),
            Self::NoBias => builder.write_bias(usize::MAX).inbound_capacity(DUPLEX_BIG_INBOUND),
        }
    }
}

/// One run of a full-duplex row, as the child measured it.
#[derive(Debug, Clone, Copy)]
struct DuplexSample {
    /// The run it belongs to (from 1), to compare it with the same run's reference.
    run: usize,
    /// The outgoing data: frames, bytes, and the time from the first send to the peer having
    /// the last byte.
    out: Sample,
    /// Bytes the client's consumer received over the same time.
    inbound: u64,
    /// The most bytes the inbound buffer held.
    inbound_high_water: u64,
}

impl DuplexSample {
    fn out_mbps(&self) -> f64 {
        rate(self.out).1
    }

    fn in_mbps(&self) -> f64 {
        self.inbound as f64 / self.out.secs / 1e6
    }
}

/// One full-duplex row.
#[derive(Debug, Clone)]
struct DuplexCase {
    mode: DuplexMode,
    frame: usize,
    samples: Vec<DuplexSample>,
}

impl DuplexCase {
    fn name(&self) -> String {
        format!("full duplex / {} / {} B", self.mode.name(), self.frame)
    }

    /// Runs one sample in a child process, so that the flooding peer and its threads do not
    /// outlive it.
    fn run(&self, opts: &Opts, run: usize) -> io::Result<DuplexSample> {
        let total = if opts.quick { DUPLEX_BYTES / 16 } else { DUPLEX_BYTES };
        let msgs = total / self.frame as u64;
        let pairs = child(&[
            "duplex".into(),
            self.mode.arg().into(),
            self.frame.to_string(),
            msgs.to_string(),
        ])?;
        Ok(DuplexSample {
            run,
            out: Sample { msgs, bytes: msgs * self.frame as u64, secs: value(&pairs, "secs")? },
            inbound: value(&pairs, "inbound")? as u64,
            inbound_high_water: value(&pairs, "inbound_high_water")? as u64,
        })
    }

    fn median_of(&self, field: impl Fn(&DuplexSample) -> f64) -> f64 {
        median(&mut self.samples.iter().map(field).collect::<Vec<_>>())
    }

    /// Its outgoing throughput over that of `reference` in the same run, for every run both
    /// have: the runs are interleaved, so a slow spell of the machine hits both alike.
    fn ratios(&self, reference: &Self) -> Vec<f64> {
        self.samples
            .iter()
            .filter_map(|s| {
                let r = reference.samples.iter().find(|r| r.run == s.run)?;
                Some(s.out_mbps() / r.out_mbps())
            })
            .collect()
    }

    /// Half the range of `field` over the runs, relative to its median.
    fn spread_of(&self, field: impl Fn(&DuplexSample) -> f64) -> f64 {
        let values: Vec<f64> = self.samples.iter().map(&field).collect();
        let max = values.iter().copied().fold(f64::MIN, f64::max);
        let min = values.iter().copied().fold(f64::MAX, f64::min);
        (max - min) / 2.0 / self.median_of(field)
    }
}

fn duplex_cases() -> Vec<DuplexCase> {
    DUPLEX_FRAMES
        .into_iter()
        .flat_map(|frame| DuplexMode::ALL.map(|mode| DuplexCase { mode, frame, samples: vec![] }))
        .collect()
}

/// The child's side of a full-duplex row: a tidegate `Client` over loopback TCP to a peer in
/// this process that reads and counts; with a flood, the peer also writes 256 KiB chunks as
/// fast as it can from a second thread, while a consumer thread drains `Client::recv`. One
/// producer (this thread) sends `msgs` frames of `frame` bytes. Prints the time from the first
/// send to the peer having the last byte, and the bytes the consumer received meanwhile.
fn child_duplex(mode: DuplexMode, frame: usize, msgs: u64) -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let client = mode.builder().connect(&format!("tcp://{addr}")).map_err(other)?;
    let stream = accept(&listener)?;
    stream.set_nodelay(true)?;
    let expected = msgs * frame as u64;
    // Bytes the consumer has received.
    let drained = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = if mode.flood() {
        let mut writer = stream.try_clone()?;
        // So that it sees `stop` even if nobody reads.
        writer.set_write_timeout(Some(Duration::from_millis(50)))?;
        let stop = stop.clone();
        Some(thread::Builder::new().name("flooder".into()).spawn(move || {
            let chunk = vec![0x5Au8; CEILING_CHUNK];
            while !stop.load(Ordering::Relaxed) {
                match writer.write(&chunk) {
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock
                                | io::ErrorKind::TimedOut
                                | io::ErrorKind::Interrupted
                        ) => {}
                    Err(_) => return,
                }
            }
        })?)
    } else {
        None
    };
    // The peer's reader: reports when it has every outgoing byte, and how much the consumer
    // had received by then; then reads on until the client closes.
    let (done_tx, done_rx) = mpsc::channel();
    let reader = {
        let drained = drained.clone();
        let mut stream = stream;
        thread::Builder::new().name("sink".into()).spawn(move || -> io::Result<u64> {
            stream.set_read_timeout(Some(PATIENCE))?;
            let mut buf = vec![0u8; SINK_BUF];
            let mut bytes = 0u64;
            let mut reported = false;
            loop {
                let n = match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // A reset once everything arrived (the client closed with unread flood
                    // bytes) ends the stream as well.
                    Err(_) if reported => break,
                    Err(e) => return Err(e),
                };
                bytes += n as u64;
                if !reported && bytes >= expected {
                    reported = true;
                    let _ = done_tx.send((Instant::now(), drained.load(Ordering::SeqCst)));
                }
            }
            Ok(bytes)
        })?
    };
    let consumer = {
        let (client, drained) = (client.clone(), drained.clone());
        thread::Builder::new().name("consumer".into()).spawn(move || -> io::Result<()> {
            while let Some(chunk) = client.recv_timeout(PATIENCE).map_err(other)? {
                drained.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
            Ok(())
        })?
    };
    if mode.flood() {
        let deadline = Instant::now() + PATIENCE;
        while drained.load(Ordering::SeqCst) < DUPLEX_WARMUP {
            if Instant::now() > deadline {
                return Err(other("full duplex: the flood never arrived"));
            }
            thread::sleep(Duration::from_millis(1));
        }
    }
    let frame = frame_of(frame);
    let started = Instant::now();
    let inbound_before = drained.load(Ordering::SeqCst);
    for _ in 0..msgs {
        client.send(frame.clone()).map_err(other)?;
    }
    client.flush_timeout(PATIENCE).map_err(other)?;
    let (done_at, inbound_after) = done_rx
        .recv_timeout(PATIENCE)
        .map_err(|_| other("full duplex: the peer never got every byte"))?;
    let high_water = client.stats().inbound_high_water;
    stop.store(true, Ordering::SeqCst);
    if let Some(flooder) = flooder {
        flooder.join().map_err(|_| other("the flooder panicked"))?;
    }
    let report = client.close_timeout(PATIENCE).map_err(other)?;
    if !report.is_clean() || report.bytes_written() != expected {
        return Err(other(format!("unclean close ({expected} bytes sent): {report:?}")));
    }
    consumer.join().map_err(|_| other("the consumer panicked"))??;
    let got = reader.join().map_err(|_| other("the peer's reader panicked"))??;
    if got != expected {
        return Err(other(format!("the peer got {got} bytes, expected {expected}")));
    }
    println!("secs={}", done_at.saturating_duration_since(started).as_secs_f64());
    println!("inbound={}", inbound_after.saturating_sub(inbound_before));
    println!("inbound_high_water={high_water}");
    Ok(())
}

fn duplex_table(cases: &[DuplexCase]) -> String {
    let mut out = String::new();
    out.push_str(
        "\n| full duplex: frame | tidegate Client, 1 producer | outbound MB/s | spread \
         | × outbound only, same run (median ± half the range) | inbound MB/s meanwhile \
         | spread | inbound buffer high water |\n",
    );
    out.push_str("|---:|---|---:|---:|---:|---:|---:|---:|\n");
    for case in cases {
        if case.samples.is_empty() {
            continue;
        }
        let mb = case.median_of(DuplexSample::out_mbps);
        let reference =
            cases.iter().find(|c| c.mode == DuplexMode::OutboundOnly && c.frame == case.frame);
        let mut ratios = reference.map(|r| case.ratios(r)).unwrap_or_default();
        let fraction = if ratios.is_empty() {
            "–".to_string()
        } else {
            let (lo, hi) =
                ratios.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
            format!("{:.2}× ±{:.2}", median(&mut ratios), (hi - lo) / 2.0)
        };
        let (inbound, inbound_spread) = if case.mode.flood() {
            (
                format!("{:.0}", case.median_of(DuplexSample::in_mbps)),
                format!("±{:.0}%", case.spread_of(DuplexSample::in_mbps) * 100.0),
            )
        } else {
            ("–".into(), "–".into())
        };
        let _ = writeln!(
            out,
            "| {} | {} | {mb:.0} | ±{:.0}% | {fraction} | {inbound} | {inbound_spread} | {:.0} KiB |",
            fmt_size(case.frame),
            case.mode.name(),
            case.spread_of(DuplexSample::out_mbps) * 100.0,
            case.median_of(|s| s.inbound_high_water as f64) / 1024.0,
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Reporting

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn rate(sample: Sample) -> (f64, f64) {
    (sample.msgs as f64 / sample.secs, sample.bytes as f64 / sample.secs / 1e6)
}

fn fmt_count(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.2} M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "–".into(), |r| format!("{r:.2}×"))
}

/// The best throughput among rows matching `pick`, with its name.
fn best(cases: &[Case], pick: impl Fn(&Case) -> bool) -> Option<(f64, String)> {
    cases
        .iter()
        .filter(|c| pick(c))
        .filter_map(|c| c.median().map(|m| (rate(m).1, c.name())))
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

fn mbps(cases: &[Case], imp: Imp, frame: usize, producers: usize) -> Option<f64> {
    cases
        .iter()
        .find(|c| c.imp == imp && c.frame == frame && c.producers == producers)
        .and_then(Case::median)
        .map(|m| rate(m).1)
}

fn throughput_table(cases: &[Case]) -> String {
    let mut out = String::new();
    out.push_str(
        "| frame | producers | implementation | msgs/s | MB/s | spread | × BufWriter 1 thread \
         | × best channel, same producers | × best peer, same producers |\n",
    );
    out.push_str("|---:|---:|---|---:|---:|---:|---:|---:|---:|\n");
    for case in cases {
        let Some(m) = case.median() else { continue };
        let (msgs, mb) = rate(m);
        let same = |c: &Case| c.frame == case.frame && c.producers == case.producers;
        let ceiling = mbps(cases, Imp::BufWriter, case.frame, 1).map(|b| mb / b);
        let channel = best(cases, |c| same(c) && c.imp.is_channel()).map(|(b, _)| mb / b);
        let peer = best(cases, |c| same(c) && c.imp.is_peer()).map(|(b, _)| mb / b);
        let frame = if case.imp == Imp::Ceiling { "256 KiB".into() } else { fmt_size(case.frame) };
        let producers = match case.imp {
            Imp::Ceiling | Imp::BufWriter => "1".to_string(),
            Imp::TokioMpsc | Imp::TidegateTokio | Imp::TidegateAsyncStd => {
                format!("{} task{}", case.producers, if case.producers == 1 { "" } else { "s" })
            }
            _ => format!("{} thread{}", case.producers, if case.producers == 1 { "" } else { "s" }),
        };
        let name = if case.imp.is_tidegate() {
            format!("**{}**", case.imp.name())
        } else {
            case.imp.name().to_string()
        };
        let _ = writeln!(
            out,
            "| {frame} | {producers} | {name} | {} | {mb:.0} | ±{:.0}% | {} | {} | {} |",
            fmt_count(msgs),
            case.spread() * 50.0,
            if case.imp == Imp::Ceiling { "–".into() } else { fmt_ratio(ceiling) },
            fmt_ratio(channel),
            fmt_ratio(peer),
        );
    }
    out
}

fn fmt_size(bytes: usize) -> String {
    if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

fn verdict(holds: bool) -> &'static str {
    if holds { "holds" } else { "**misses**" }
}

/// A line of the targets table for "tidegate row ≥ factor × reference".
fn ratio_target(
    out: &mut String,
    what: &str,
    ours: Option<f64>,
    reference: Option<(f64, String)>,
    factor: f64,
) {
    match (ours, reference) {
        (Some(ours), Some((theirs, name))) => {
            let ratio = ours / theirs;
            let _ = writeln!(
                out,
                "| {what} | ≥ {factor:.1}× | {ratio:.2}× ({ours:.0} vs {theirs:.0} MB/s, {name}) | {} |",
                verdict(ratio >= factor)
            );
        }
        _ => {
            let _ = writeln!(out, "| {what} | ≥ {factor:.1}× | not measured | – |");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Main

#[derive(Debug, Default)]
struct Extras {
    /// (implementation, frame, growth bytes per run)
    rss: Vec<(String, usize, Vec<f64>)>,
    /// (implementation, ns per second per run, sends during the wait)
    cpu: Vec<(String, Vec<f64>, f64)>,
    /// (implementation, per run: [p50, p99] from the freeing of room, [p50, p99] from the
    /// sink resuming), in ns
    wake: Vec<(String, Vec<[f64; 4]>)>,
    /// (per sender, per bare task) per run
    parked: Vec<(f64, f64)>,
    parked_error: Option<String>,
}

/// Runs the measurements beside throughput; a failed one is logged and recorded in `failures`,
/// and the others still run.
fn run_extras(
    opts: &Opts,
    extras: &mut Extras,
    failures: &mut Vec<String>,
    log: &mut impl FnMut(String),
) {
    let mut failed = |what: String, e: io::Error, log: &mut dyn FnMut(String)| {
        log(format!("{what}: FAILED: {e}"));
        failures.push(format!("{what}: {e}"));
    };
    // Peak RSS: 1 GiB through a 1 MiB buffer to a sink reading 512 MiB/s.
    let total: u64 = if opts.quick { 128 << 20 } else { 1 << 30 };
    let rate = 512u64 << 20;
    let mut rss_cases = vec![("tidegate", 1024), ("tidegate", 64 * 1024), ("mutex", 1024)];
    if !opts.quick {
        rss_cases.push(("unbounded", 1024));
    }
    for (peer, frame) in rss_cases {
        let name = match peer {
            "tidegate" => "tidegate Client",
            "mutex" => MutexQueue::NAME,
            _ => Unbounded::NAME,
        };
        if !opts.wanted(&format!("rss {name}")) {
            continue;
        }
        let (growth, secs) = match rss_growth(peer, frame, total, rate) {
            Ok(r) => r,
            Err(e) => {
                failed(format!("rss {name} {frame} B"), e, log);
                continue;
            }
        };
        log(format!("rss {name} {frame} B: {:.2} MiB in {secs:.1} s", growth / 1048576.0));
        match extras.rss.iter_mut().find(|(n, f, _)| n == name && *f == frame) {
            Some((_, _, v)) => v.push(growth),
            None => extras.rss.push((name.into(), frame, vec![growth])),
        }
    }
    // CPU while blocked.
    let secs = if opts.quick { 0.5 } else { 2.0 };
    for (peer, name) in [("tidegate", "tidegate Client"), ("mutex", MutexQueue::NAME)] {
        if !opts.wanted(&format!("cpu {name}")) {
            continue;
        }
        let (cpu, sends, before) = match blocked_cpu(peer, secs) {
            Ok(r) => r,
            Err(e) => {
                failed(format!("cpu {name}"), e, log);
                continue;
            }
        };
        log(format!(
            "cpu {name}: {:.1} µs/s, {sends} sends while blocked ({:.1} ms used before)",
            cpu / 1e3,
            before / 1e6
        ));
        match extras.cpu.iter_mut().find(|(n, _, _)| n == name) {
            Some((_, v, s)) => {
                v.push(cpu);
                *s += sends;
            }
            None => extras.cpu.push((name.into(), vec![cpu], sends)),
        }
    }
    // Wake latency, 1 KiB frames.
    let samples = if opts.quick { 40 } else { 300 };
    type Measure = fn(usize, usize) -> io::Result<(Vec<u64>, Vec<u64>)>;
    let runs: [(&str, Measure); 6] = [
        (FLOOR, unpark_floor),
        ("tidegate Client", wake_latency::<Tidegate>),
        (MutexQueue::NAME, wake_latency::<MutexQueue>),
        (Flume::NAME, wake_latency::<ChannelPeer<Flume>>),
        (Crossbeam::NAME, wake_latency::<ChannelPeer<Crossbeam>>),
        (SyncChannel::NAME, wake_latency::<ChannelPeer<SyncChannel>>),
    ];
    for (name, run) in runs {
        if !opts.wanted(&format!("wake {name}")) {
            continue;
        }
        let (mut free, mut sink) = match run(samples, 1024) {
            Ok(r) => r,
            Err(e) => {
                failed(format!("wake {name}"), e, log);
                continue;
            }
        };
        free.sort_unstable();
        sink.sort_unstable();
        let p = |v: &[u64], q| percentile(v, q) as f64;
        let row = [p(&free, 50.0), p(&free, 99.0), p(&sink, 50.0), p(&sink, 99.0)];
        log(format!(
            "wake {name}: freed→return p50 {:.1} µs p99 {:.1} µs; sink→return p50 {:.1} µs p99 {:.1} µs",
            row[0] / 1e3,
            row[1] / 1e3,
            if sink.is_empty() { f64::NAN } else { row[2] / 1e3 },
            if sink.is_empty() { f64::NAN } else { row[3] / 1e3 },
        ));
        match extras.wake.iter_mut().find(|(n, _)| n == name) {
            Some((_, runs)) => runs.push(row),
            None => extras.wake.push((name.into(), vec![row])),
        }
    }
    // Parked async senders.
    if opts.wanted("parked") {
        let tasks = if opts.quick { 10_000 } else { 100_000 };
        match parked_async_senders(tasks, 64) {
            Ok((sender, bare)) => {
                log(format!("parked: {sender:.0} B per sender, {bare:.0} B per bare task"));
                extras.parked.push((sender, bare));
            }
            Err(e) => {
                extras.parked_error = Some(e.to_string());
                failed("parked".into(), e, log);
            }
        }
    }
}

fn extras_tables(extras: &mut Extras) -> String {
    let mut out = String::new();
    if !extras.rss.is_empty() {
        out.push_str("\n| peak RSS growth, 1 GiB through a 1 MiB bound to a slow sink | frame | growth (median) |\n|---|---:|---:|\n");
        for (name, frame, v) in &mut extras.rss {
            let _ = writeln!(
                out,
                "| {name} | {} | {:.2} MiB |",
                fmt_size(*frame),
                median(v) / 1048576.0
            );
        }
    }
    if !extras.cpu.is_empty() {
        out.push_str("\n| CPU while a sender is blocked (stalled sink) | CPU per second (median) | sends that completed meanwhile |\n|---|---:|---:|\n");
        for (name, v, sends) in &mut extras.cpu {
            let _ = writeln!(out, "| {name} | {:.1} µs/s | {sends} |", median(v) / 1e3);
        }
    }
    if !extras.wake.is_empty() {
        out.push_str(
            "\n| wake latency of a blocked sender, 1 KiB frames | room freed → send returns, \
             p50 | p99 | sink resumes → send returns, p50 | p99 |\n|---|---:|---:|---:|---:|\n",
        );
        for (name, runs) in &extras.wake {
            let _ = write!(out, "| {name} |");
            for i in 0..4 {
                let mut v: Vec<f64> = runs.iter().map(|r| r[i]).collect();
                match median(&mut v) {
                    m if m >= u64::MAX as f64 => out.push_str(" – |"),
                    m => {
                        let _ = write!(out, " {:.1} µs |", m / 1e3);
                    }
                }
            }
            out.push('\n');
        }
    }
    out
}

fn targets_table(cases: &[Case], extras: &mut Extras) -> String {
    let mut out = String::new();
    out.push_str("\n| target | required | measured (medians) | verdict |\n|---|---:|---|---|\n");
    let ours = |imp, frame, producers| mbps(cases, imp, frame, producers);
    let channel = |frame, producers| {
        best(cases, |c| c.frame == frame && c.producers == producers && c.imp.is_channel())
    };
    let peer = |frame, producers| {
        best(cases, |c| c.frame == frame && c.producers == producers && c.imp.is_peer())
    };
    let bufwriter =
        mbps(cases, Imp::BufWriter, 64, 1).map(|b| (b, Imp::BufWriter.name().to_string()));
    ratio_target(
        &mut out,
        "64 B, 1 producer vs the single-thread BufWriter",
        ours(Imp::Tidegate, 64, 1),
        bufwriter,
        0.8,
    );
    ratio_target(
        &mut out,
        "64 B, 1 producer vs the fastest channel peer",
        ours(Imp::Tidegate, 64, 1),
        channel(64, 1),
        3.0,
    );
    for frame in [1024, 64 * 1024] {
        for producers in [1, 4] {
            ratio_target(
                &mut out,
                &format!("{}, {producers} producer(s) vs the fastest peer", fmt_size(frame)),
                ours(Imp::Tidegate, frame, producers),
                peer(frame, producers),
                1.0,
            );
        }
    }
    ratio_target(
        &mut out,
        "64 B, 4 producers vs the fastest channel peer",
        ours(Imp::Tidegate, 64, 4),
        channel(64, 4),
        1.5,
    );
    let mpsc =
        mbps(cases, Imp::TokioMpsc, 64, TASKS).map(|b| (b, Imp::TokioMpsc.name().to_string()));
    ratio_target(
        &mut out,
        "async 64 B, 1,000 tasks on tokio vs tokio mpsc",
        ours(Imp::TidegateTokio, 64, TASKS),
        mpsc.clone(),
        1.5,
    );
    ratio_target(
        &mut out,
        "async 64 B, 1,000 tasks on async-std vs tokio mpsc",
        ours(Imp::TidegateAsyncStd, 64, TASKS),
        mpsc,
        1.5,
    );
    for (name, frame, v) in &mut extras.rss {
        if name.starts_with("tidegate") {
            let growth = median(v);
            let limit = (CAPACITY + (2 << 20)) as f64;
            let _ = writeln!(
                out,
                "| peak RSS growth, {} frames | ≤ capacity + 2 MiB = {:.0} MiB | {:.2} MiB | {} |",
                fmt_size(*frame),
                limit / 1048576.0,
                growth / 1048576.0,
                verdict(growth <= limit)
            );
        }
    }
    if let Some((_, v, _)) = extras.cpu.iter_mut().find(|(n, _, _)| n.starts_with("tidegate")) {
        let cpu = median(v);
        let _ = writeln!(
            out,
            "| CPU while blocked | ≤ 1 ms/s | {:.1} µs/s | {} |",
            cpu / 1e3,
            verdict(cpu <= 1e6)
        );
    }
    let mut wake: Vec<(String, f64)> = extras
        .wake
        .iter()
        .map(|(n, runs)| (n.clone(), median(&mut runs.iter().map(|r| r[1]).collect::<Vec<_>>())))
        .collect();
    wake.retain(|(n, _)| n != FLOOR);
    if let Some(i) = wake.iter().position(|(n, _)| n.starts_with("tidegate")) {
        let (_, ours) = wake.remove(i);
        if let Some((name, theirs)) = wake.into_iter().min_by(|a, b| a.1.total_cmp(&b.1)) {
            let _ = writeln!(
                out,
                "| wake latency p99 (room freed → send returns) vs the best peer | \
                 ≤ {:.1} µs ({name}) | {:.1} µs | {} |",
                theirs / 1e3,
                ours / 1e3,
                verdict(ours <= theirs)
            );
        }
    }
    if extras.parked.is_empty() {
        let why = extras.parked_error.clone().unwrap_or_else(|| "not run".into());
        let _ = writeln!(
            out,
            "| bytes per parked async sender beside its frame | ≤ 256 B | not measured: {why} | – |"
        );
    } else {
        let mut senders: Vec<f64> = extras.parked.iter().map(|p| p.0).collect();
        let mut bare: Vec<f64> = extras.parked.iter().map(|p| p.1).collect();
        let (sender, bare) = (median(&mut senders), median(&mut bare));
        let _ = writeln!(
            out,
            "| bytes per parked async sender beside its frame | ≤ 256 B | {sender:.0} B with its tokio task; {:.0} B beyond a bare parked task ({bare:.0} B) | {} |",
            sender - bare,
            verdict(sender - bare <= 256.0)
        );
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        if let Err(e) = run_child(&args[1..]) {
            eprintln!("child failed: {e}");
            std::process::exit(1);
        }
        return;
    }
    let opts = match Opts::parse(&args) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!(
                "{e}\nusage: peers [--quick] [--runs N] [--filter TEXT]... [--throughput-only]"
            );
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let load_before = loadavg();
    let mut log = |line: String| eprintln!("[{:6.1}s] {line}", started.elapsed().as_secs_f64());
    let mut cases: Vec<Case> = cases().into_iter().filter(|c| opts.wanted(&c.name())).collect();
    let mut many: Vec<ManyCase> =
        many_cases().into_iter().filter(|c| opts.wanted(&c.name())).collect();
    let mut duplex: Vec<DuplexCase> =
        duplex_cases().into_iter().filter(|c| opts.wanted(&c.name())).collect();
    let mut extras = Extras::default();
    let mut failures = Vec::new();
    if !many.is_empty()
        && let Err(e) = check_open_files(ManyCase::conns(&opts))
    {
        log(format!("many connections: FAILED: {e}"));
        failures.push(format!("many connections: {e}"));
        many.clear();
    }
    for run in 1..=opts.runs {
        log(format!("run {run} of {}", opts.runs));
        for case in &mut cases {
            match case.run(&opts) {
                Ok(sample) => {
                    let (msgs, mb) = rate(sample);
                    log(format!("{}: {} msgs/s, {mb:.0} MB/s", case.name(), fmt_count(msgs)));
                    case.samples.push(sample);
                }
                Err(e) => {
                    log(format!("{}: FAILED: {e}", case.name()));
                    failures.push(format!("{}: {e}", case.name()));
                }
            }
        }
        for case in &mut many {
            match case.run(&opts) {
                Ok(sample) => {
                    let (msgs, mb) = rate(sample.sample);
                    log(format!(
                        "{}: {} msgs/s, {mb:.0} MB/s; {} threads, connected in {:.0} ms, \
                         peak RSS +{:.1} MiB, sink busy {:.0}%, {} sends waited",
                        case.name(),
                        fmt_count(msgs),
                        sample.threads,
                        sample.connect_secs * 1e3,
                        sample.growth_kib / 1024.0,
                        sample.sink_busy * 100.0,
                        sample.waited
                    ));
                    case.samples.push(sample);
                }
                Err(e) => {
                    log(format!("{}: FAILED: {e}", case.name()));
                    failures.push(format!("{}: {e}", case.name()));
                }
            }
        }
        for case in &mut duplex {
            match case.run(&opts, run) {
                Ok(sample) => {
                    log(format!(
                        "{}: outbound {:.0} MB/s, inbound {:.0} MB/s meanwhile, \
                         inbound buffer high water {:.0} KiB",
                        case.name(),
                        sample.out_mbps(),
                        sample.in_mbps(),
                        sample.inbound_high_water as f64 / 1024.0
                    ));
                    case.samples.push(sample);
                }
                Err(e) => {
                    log(format!("{}: FAILED: {e}", case.name()));
                    failures.push(format!("{}: {e}", case.name()));
                }
            }
        }
        if !opts.throughput_only {
            run_extras(&opts, &mut extras, &mut failures, &mut log);
        }
    }
    let mut report = String::new();
    let _ = writeln!(
        report,
        "\nMedians of {} run(s){}; MB = 10^6 bytes; spread = half the range of the runs around the median.\n",
        opts.runs,
        if opts.quick { " (--quick: 1/16 of the bytes)" } else { "" }
    );
    let _ = writeln!(
        report,
        "Load average (1, 5, 15 min) before: {load_before}; after: {}.\n",
        loadavg()
    );
    report.push_str(&throughput_table(&cases));
    if !many.is_empty() {
        report.push_str(&many_table(&many, ManyCase::conns(&opts)));
    }
    if !duplex.is_empty() {
        report.push_str(&duplex_table(&duplex));
    }
    if !opts.throughput_only {
        report.push_str(&extras_tables(&mut extras));
    }
    report.push_str(&targets_table(&cases, &mut extras));
    println!("{report}");
    log(format!("done in {:.0} s", started.elapsed().as_secs_f64()));
    if !failures.is_empty() {
        eprintln!("failures:\n  {}", failures.join("\n  "));
        std::process::exit(1);
    }
}
