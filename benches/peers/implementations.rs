//! The implementations compared: tidegate and the queues an application would otherwise write.

use std::collections::VecDeque;
use std::io::{self, BufWriter, IoSlice, Write};
use std::marker::PhantomData;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread;

use bytes::Bytes;
use tidegate::Client;

use crate::{BUFWRITER, IOV_MAX, now_ns, other};

/// Finishes a pipe once every producer is done: flushes, closes, joins the writer.
pub(crate) type Finish = Box<dyn FnOnce() -> io::Result<()> + Send>;

/// When room was first freed after the probe was reset to 0 (`now_ns` clock).
pub(crate) type Probe = Arc<AtomicU64>;

/// One send of the wake-latency measurement (`now_ns` clock).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Observed {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) granted: Option<u64>,
}

/// Unparks a thread: the blocking facade's way of waiting, rebuilt to time the admission.
pub(crate) struct Unparker(thread::Thread);

impl std::task::Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

pub(crate) fn mark_freed(probe: &Option<Probe>) {
    if let Some(probe) = probe {
        let _ = probe.compare_exchange(0, now_ns(), Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// A way to get frames from producer threads to the socket.
pub(crate) trait Peer {
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

pub(crate) fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    // As tidegate does by default.
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// tidegate's blocking client.
pub(crate) struct Tidegate;

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
pub(crate) struct MutexQueue;

#[derive(Debug, Default)]
pub(crate) struct QueueState {
    pub(crate) frames: VecDeque<Bytes>,
    /// Bytes queued or being written.
    pub(crate) held: usize,
    pub(crate) closed: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub(crate) state: Mutex<QueueState>,
    pub(crate) not_empty: Condvar,
    pub(crate) not_full: Condvar,
    pub(crate) capacity: usize,
    pub(crate) probe: Option<Probe>,
}

impl Queue {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn push(&self, frame: Bytes) {
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

    pub(crate) fn run_writer(&self, mut stream: TcpStream) -> io::Result<()> {
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
pub(crate) fn write_frames(stream: &mut TcpStream, frames: &VecDeque<Bytes>) -> io::Result<usize> {
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
pub(crate) trait Chan: 'static {
    const NAME: &'static str;
    type Tx: Clone + Send + 'static;
    type Rx: Send + 'static;
    fn bounded(frames: usize) -> (Self::Tx, Self::Rx);
    fn send(tx: &Self::Tx, frame: Bytes) -> bool;
    fn recv(rx: &Self::Rx) -> Option<Bytes>;
}

pub(crate) struct Flume;
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

pub(crate) struct Crossbeam;
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

pub(crate) struct SyncChannel;
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
pub(crate) struct Unbounded;
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
pub(crate) struct ChannelPeer<C>(PhantomData<C>);

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
