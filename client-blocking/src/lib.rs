//! The blocking facade of tidegate: [`Client::send`] parks the calling thread while the
//! connection's outgoing buffer is full, and returns once the frame is in the buffer.
//!
//! A [`Client`] is a cheap, cloneable, `Send + Sync` handle: give a clone to every producer
//! thread. All of them share one bounded buffer and queue in one FIFO line when it is full; a
//! waiting thread uses no CPU and is unparked by the I/O driver when its frame has been taken
//! in, or when its wait ends (timeout, close, disconnect). Every error carries the frame back.
//!
//! This crate is a thin layer over `tidegate-core`: the waiting rules, the buffer and the
//! driver live there, and the async facade uses the very same ones.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use tidegate_blocking::Client;
//!
//! # let broker = std::net::TcpListener::bind("127.0.0.1:0")?;
//! # let url = format!("tcp://{}", broker.local_addr()?);
//! # let reader = std::thread::spawn(move || {
//! #     let (mut peer, _) = broker.accept().unwrap();
//! #     std::io::copy(&mut peer, &mut std::io::sink()).unwrap()
//! # });
//! let client = Client::builder()
//!     .capacity(1 << 20)
//!     .send_timeout(Duration::from_secs(30))
//!     .connect(&url)?; // for example "tcp://127.0.0.1:5672"
//! let producers: Vec<_> = (0..4)
//!     .map(|i| {
//!         let client = client.clone();
//!         std::thread::spawn(move || client.send(format!("hello from {i}\n")))
//!     })
//!     .collect();
//! for producer in producers {
//!     producer.join().unwrap()?;
//! }
//! let report = client.close()?;
//! assert!(report.is_clean());
//! # assert_eq!(reader.join().unwrap(), report.bytes_written());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

use std::io;
use std::sync::Arc;
use std::task::{Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

// Everything a user of this crate names, so that it is the only dependency they need: the
// settings, the errors and reports, the core's connection and its operations (reached through
// `Client::connection`), framing and transports.
pub use tidegate_core::transport::{Link, SocketOption};
pub use tidegate_core::{
    Budget, Builder, Bytes, CloseError, CloseOp, CloseReport, Config, ConnectError, Connected,
    Connection, DEFAULT_CAPACITY, DEFAULT_INBOUND_CAPACITY, DEFAULT_WRITE_BIAS, Disconnect,
    DisconnectKind, Ending, Facade, FlushError, FlushOp, FrameBatch, IoGroup, LastClose, LinkCall,
    LinkError, RecvError, RecvOp, SendBatchOp, SendError, SendOp, ShutdownWriteOp, Stats,
    TryRecvError, TrySendError, UnsentFrame, Watermark, WatermarkEvents, codec, is_driver_thread,
    transport,
};

/// Unparks the thread it was made on.
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    static WAKER: Waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
}

/// The calling thread is an I/O driver thread: parking it could wait for itself.
struct OnDriverThread;

/// Polls until ready, parking the thread in between.
///
/// The core wakes the waker when the operation may complete, and fires deadlines itself; the
/// timed park is only a second line of defence, so no wake-up can be lost for good. Unparks
/// may be spurious: polling again is always correct.
fn wait<T>(deadline: Option<Instant>, poll: impl FnMut(&Waker) -> Poll<T>) -> T {
    match wait_inner(deadline, false, poll) {
        Ok(value) => value,
        Err(OnDriverThread) => unreachable!("only a guarded wait refuses to park"),
    }
}

/// Like [`wait`], but refuses to park an I/O driver thread: the driver may be the one that
/// would have to wake it.
fn wait_guarded<T>(
    deadline: Option<Instant>,
    poll: impl FnMut(&Waker) -> Poll<T>,
) -> Result<T, OnDriverThread> {
    wait_inner(deadline, true, poll)
}

fn wait_inner<T>(
    deadline: Option<Instant>,
    guarded: bool,
    mut poll: impl FnMut(&Waker) -> Poll<T>,
) -> Result<T, OnDriverThread> {
    WAKER.with(|waker| {
        loop {
            if let Poll::Ready(value) = poll(waker) {
                return Ok(value);
            }
            if guarded && is_driver_thread() {
                return Err(OnDriverThread);
            }
            match deadline.map(|d| d.saturating_duration_since(Instant::now())) {
                Some(left) if !left.is_zero() => thread::park_timeout(left),
                // Past the deadline the core answers the next poll; until then, wait for it.
                _ => thread::park(),
            }
        }
    })
}

/// A blocking handle to one connection. Clone it to share the connection between threads.
///
/// # Dropping
///
/// Dropping the last handle to the connection (the last `Client`, once no core [`Connection`]
/// or async handle shares it either) does what std's `BufWriter` does: it closes the
/// connection and **waits** for the close, for at most the configured close timeout, so that a
/// program ending at the end of `main` loses nothing it sent. The close drains the buffer,
/// ends the write side, and reads until the peer ends its side, as [`Client::close`] does;
/// frames it could not write are dropped with a warning in the log naming how many frames and
/// bytes. Call [`Client::close`] instead to get them back in the report.
///
/// On an I/O driver thread (inside a transport plugin or a [`Client::call_link`] closure),
/// the drop never parks: it starts the close and returns at once. Dropping any other handle
/// does not wait. `std::process::exit` runs no destructors: close first.
///
/// # Blocking
///
/// Dropping the last handle parks the thread until the close has finished, for at most the
/// close timeout (10 s by default).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tidegate_blocking::Client;
/// use tidegate_core::transport::mem::MemListener;
///
/// let listener = MemListener::bind("blocking-client-example").unwrap();
/// let client = Client::connect(&listener.url()).unwrap();
/// client.send("hello").unwrap();
/// client.flush().unwrap();
/// assert_eq!(client.stats().bytes_written, 5);
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    conn: Connection,
    /// Waits for the close when the last `Client` of this family goes (see
    /// [Dropping](Client#dropping)). It holds a handle of its own, so it runs once the
    /// others are gone, and only waits if its handle is then the connection's last.
    _drain: Arc<DrainOnDrop>,
}

/// Closes the connection and waits for it, when dropped holding its last handle.
#[derive(Debug)]
struct DrainOnDrop(Option<Connection>);

impl Drop for DrainOnDrop {
    fn drop(&mut self) {
        let Some(conn) = self.0.take() else {
            return;
        };
        // On a driver thread the drop of the handle starts the close without waiting.
        if is_driver_thread() {
            return;
        }
        if let Some(mut close) = conn.close_if_last() {
            wait(None, |waker| close.poll_with(waker));
        }
    }
}

impl Client {
    /// Connects to `url` with the default settings, waiting until the link is up.
    ///
    /// Built-in schemes: `tcp://host:port` and `mem://name`; more can be registered with
    /// `tidegate_core::transport::register`.
    ///
    /// # Errors
    ///
    /// A malformed URL, an unregistered scheme, or a connection that failed or timed out.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until the connection is established or fails (at most the
    /// connect timeout, 10 s by default).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_blocking::{Client, ConnectError};
    ///
    /// assert!(matches!(Client::connect("no-scheme"), Err(ConnectError::InvalidUrl { .. })));
    /// ```
    pub fn connect(url: &str) -> Result<Self, ConnectError> {
        Self::builder().connect(url)
    }

    /// A builder for a connection with other settings: every setting of [`Config`], then
    /// [`connect`](Builder::connect), which waits until the link is up like
    /// [`Client::connect`].
    ///
    /// # Errors
    ///
    /// Its `connect` fails as [`Client::connect`] does, and also with
    /// [`ConnectError::InvalidConfig`] for unusable settings (see [`Blocking`]'s
    /// [`Facade::connect`]).
    ///
    /// # Blocking
    ///
    /// Its `connect` parks the calling thread until the connection is established or fails (at
    /// most the connect timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_blocking::Client;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-builder-accessor-example").unwrap();
    /// let client = Client::builder().capacity(64 * 1024).connect(&listener.url()).unwrap();
    /// assert_eq!(client.stats().capacity, 64 * 1024);
    /// ```
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// Wraps a connection opened with the core; it may be shared with the async facade.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_blocking::{Client, Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("from-connection-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let client = Client::from_connection(conn);
    /// ```
    pub fn from_connection(conn: Connection) -> Self {
        let drain = Arc::new(DrainOnDrop(Some(conn.clone())));
        Self { conn, _drain: drain }
    }

    /// The core connection, to share it with the async facade.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_blocking::Client;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("connection-accessor-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// assert_eq!(client.connection().endpoint().scheme(), "mem");
    /// ```
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Sends `frame`, waiting for room for as long as the configured send timeout allows
    /// (by default, as long as it takes).
    ///
    /// Returns once the frame is in the outgoing buffer; [`Client::flush`] waits until it is
    /// written.
    ///
    /// # Errors
    ///
    /// The error contains the frame: [`SendError::Timeout`] if the send timeout passed,
    /// [`SendError::TooLarge`] for a frame larger than the capacity, [`SendError::Empty`],
    /// [`SendError::Closed`] after a close, [`SendError::Disconnected`] with the cause after
    /// the connection ended, and [`SendError::WouldDeadlock`] when it would have to wait on an
    /// I/O driver thread (inside a transport plugin or a [`Client::call_link`] closure), which
    /// would then wait for itself.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread while the buffer is full or others wait ahead. Do not call it
    /// from async code: use the async facade there.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_blocking::{Client, SendError};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-send-example").unwrap();
    /// let client = Client::builder().capacity(8).connect(&listener.url()).unwrap();
    /// client.send(&b"12345678"[..]).unwrap();
    /// let err = client.send(&b"123456789"[..]).unwrap_err();
    /// assert!(matches!(err, SendError::TooLarge { capacity: 8, .. }));
    /// assert_eq!(err.into_inner().len(), 9);
    /// ```
    pub fn send(&self, frame: impl Into<Bytes>) -> Result<(), SendError<Bytes>> {
        let deadline = self.conn.config().send_timeout_duration().map(|t| Instant::now() + t);
        self.send_until(frame.into(), deadline)
    }

    /// Sends `frame`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// As [`Client::send`]; [`SendError::Timeout`] carries the frame back when `timeout`
    /// passes.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread for at most `timeout` (plus scheduling delay).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate_blocking::Client;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("send-timeout-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// client.send_timeout("ping", Duration::from_millis(100)).unwrap();
    /// ```
    pub fn send_timeout(
        &self,
        frame: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<(), SendError<Bytes>> {
        self.send_until(frame.into(), Some(Instant::now() + timeout))
    }

    fn send_until(&self, frame: Bytes, deadline: Option<Instant>) -> Result<(), SendError<Bytes>> {
        // The common case without a send operation: room now, nobody waiting. Otherwise the
        // full path decides again, under the lock, so nothing changes in order or errors.
        let frame = match self.conn.try_send(frame) {
            Ok(()) => return Ok(()),
            Err(err) => err.into_inner(),
        };
        self.finish_send(self.conn.send(frame, deadline), deadline)
    }

    /// Waits for a send to complete, unless that would park an I/O driver thread.
    fn finish_send(
        &self,
        mut op: SendOp<&Connection>,
        deadline: Option<Instant>,
    ) -> Result<(), SendError<Bytes>> {
        match wait_guarded(deadline, |waker| op.poll_with(waker)) {
            Ok(result) => result,
            // Leave the line; if the frame was let in meanwhile, it is sent after all.
            Err(OnDriverThread) => op.cancel().map_or(Ok(()), |f| Err(SendError::WouldDeadlock(f))),
        }
    }

    /// Puts `frame` into the buffer only if it fits now and no one is waiting.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] when the frame would have to wait; otherwise as
    /// [`Client::send`]. The error contains the frame.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_blocking::Client;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-try-send-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// client.try_send("fits").unwrap();
    /// ```
    pub fn try_send(&self, frame: impl Into<Bytes>) -> Result<(), TrySendError<Bytes>> {
        self.conn.try_send(frame.into())
    }

    /// Sends every frame of `batch` as one unit, waiting for room for as long as the
    /// configured send timeout allows (by default, as long as it takes).
    ///
    /// The frames enter the buffer together, back to back and in order, under one lock: a
    /// producer of many small frames pays for the lock once per batch, not once per frame, and
    /// keeps its frame boundaries (unlike a `BufWriter` over [`Client`]'s `io::Write`). The
    /// batch takes one place in the same FIFO line as single frames, passes no one and is
    /// passed by no one, and is moved in whole when there is room for all of it.
    ///
    /// # Errors
    ///
    /// The error contains the whole batch: [`SendError::TooLarge`] if its total length
    /// (headers included, with framing) exceeds the capacity less the urgent reserve,
    /// [`SendError::Empty`] for a batch without frames or, without framing, with an empty
    /// frame, and otherwise as [`Client::send`], [`SendError::WouldDeadlock`] included.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread while the batch does not fit or others wait ahead.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_blocking::{Client, FrameBatch};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-send-batch-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let mut batch = FrameBatch::with_capacity(64 * 64);
    /// for i in 0..64u8 {
    ///     batch.push([i; 64]);
    /// }
    /// client.send_batch(batch).unwrap();
    /// assert_eq!(client.stats().frames_accepted, 64);
    /// ```
    pub fn send_batch(&self, batch: FrameBatch) -> Result<(), SendError<FrameBatch>> {
        let deadline = self.conn.config().send_timeout_duration().map(|t| Instant::now() + t);
        self.send_batch_until(batch, deadline)
    }

    /// Sends every frame of `batch` as one unit, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// As [`Client::send_batch`]; [`SendError::Timeout`] carries the whole batch back when
    /// `timeout` passes.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread for at most `timeout` (plus scheduling delay).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate_blocking::{Client, FrameBatch};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-send-batch-timeout-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let mut batch = FrameBatch::new();
    /// batch.push("ping");
    /// batch.push("pong");
    /// client.send_batch_timeout(batch, Duration::from_millis(100)).unwrap();
    /// ```
    pub fn send_batch_timeout(
        &self,
        batch: FrameBatch,
        timeout: Duration,
    ) -> Result<(), SendError<FrameBatch>> {
        self.send_batch_until(batch, Some(Instant::now() + timeout))
    }

    fn send_batch_until(
        &self,
        batch: FrameBatch,
        deadline: Option<Instant>,
    ) -> Result<(), SendError<FrameBatch>> {
        // As for a frame: the fast path first, and the full path decides again under the lock.
        let batch = match self.conn.try_send_batch(batch) {
            Ok(()) => return Ok(()),
            Err(err) => err.into_inner(),
        };
        let mut op = self.conn.send_batch(batch, deadline);
        match wait_guarded(deadline, |waker| op.poll_with(waker)) {
            Ok(result) => result,
            // Leave the line; if the batch was let in meanwhile, it is sent after all.
            Err(OnDriverThread) => op.cancel().map_or(Ok(()), |b| Err(SendError::WouldDeadlock(b))),
        }
    }

    /// Puts every frame of `batch` into the buffer, as one unit, only if all of them fit now
    /// and no one is waiting.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] when the batch would have to wait; otherwise as
    /// [`Client::send_batch`]. The error contains the whole batch.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_blocking::{Client, FrameBatch};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-try-send-batch-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let mut batch = FrameBatch::new();
    /// batch.push("fits");
    /// client.try_send_batch(batch).unwrap();
    /// ```
    pub fn try_send_batch(&self, batch: FrameBatch) -> Result<(), TrySendError<FrameBatch>> {
        self.conn.try_send_batch(batch)
    }

    /// Sends an urgent (control) frame, such as a heartbeat or a close frame: it may use the
    /// reserve kept for urgent frames ([`ClientBuilder::urgent_reserve`]), waits only behind
    /// other urgent frames, and goes on the wire at the next frame boundary, ahead of data
    /// frames not yet started. Uses the configured send timeout.
    ///
    /// # Errors
    ///
    /// As [`Client::send`].
    ///
    /// # Blocking
    ///
    /// Parks the calling thread while the urgent frames ahead of it and the whole capacity
    /// leave no room.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate_blocking::Client;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-send-urgent-example").unwrap();
    /// let client =
    ///     Client::builder().capacity(100).urgent_reserve(10).connect(&listener.url()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// client.send(vec![0u8; 90]).unwrap(); // data fills what it may
    /// assert!(client.try_send("more").unwrap_err().is_full());
    /// client.send_urgent("ping").unwrap(); // the reserve still has room
    /// ```
    pub fn send_urgent(&self, frame: impl Into<Bytes>) -> Result<(), SendError<Bytes>> {
        let deadline = self.conn.config().send_timeout_duration().map(|t| Instant::now() + t);
        let op = self.conn.send_urgent(frame.into(), deadline);
        self.finish_send(op, deadline)
    }

    /// Like [`Client::try_send`], for an urgent frame (see [`Client::send_urgent`]).
    ///
    /// # Errors
    ///
    /// As [`Client::try_send`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_blocking::Client;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-try-send-urgent-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// client.try_send_urgent("ping").unwrap();
    /// ```
    pub fn try_send_urgent(&self, frame: impl Into<Bytes>) -> Result<(), TrySendError<Bytes>> {
        self.conn.try_send_urgent(frame.into())
    }

    /// Waits until every frame accepted before this call has been written to the link.
    ///
    /// # Errors
    ///
    /// [`FlushError::Closed`] or [`FlushError::Disconnected`] if the connection ended first;
    /// the close report accounts for the frames. [`FlushError::WouldDeadlock`] when it would
    /// have to wait on an I/O driver thread.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until the bytes are written or the connection ends.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_blocking::Client;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-flush-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// client.send("data").unwrap();
    /// client.flush().unwrap();
    /// assert_eq!(client.stats().buffered, 0);
    /// ```
    pub fn flush(&self) -> Result<(), FlushError> {
        self.flush_until(None)
    }

    /// Like [`Client::flush`], giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// As [`Client::flush`], and [`FlushError::Timeout`].
    ///
    /// # Blocking
    ///
    /// Parks the calling thread for at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate_blocking::Client;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("flush-timeout-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// client.flush_timeout(Duration::from_secs(5)).unwrap();
    /// ```
    pub fn flush_timeout(&self, timeout: Duration) -> Result<(), FlushError> {
        self.flush_until(Some(Instant::now() + timeout))
    }

    fn flush_until(&self, deadline: Option<Instant>) -> Result<(), FlushError> {
        let mut op = self.conn.flush(deadline);
        wait_guarded(deadline, |waker| op.poll_with(waker))
            .unwrap_or(Err(FlushError::WouldDeadlock))
    }

    /// Finishes sending and keeps receiving (a half-close): new sends are refused, waiting
    /// senders get their frames back in [`SendError::Closed`], what is buffered is drained,
    /// then the link's write side is ended (for TCP, `shutdown(Write)`: a FIN after the last
    /// byte). Returns once it has; then [`Client::recv`] until `Ok(None)`, when the peer has
    /// ended its side too.
    ///
    /// # Errors
    ///
    /// [`FlushError::Closed`] or [`FlushError::Disconnected`] if the connection ended before
    /// its write side could; [`FlushError::WouldDeadlock`] at once on an I/O driver thread
    /// (the half-close has started then, and goes on).
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until the buffer has drained and the write side has ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate_blocking::Client;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-shutdown-write-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.hold_open();
    /// client.send("question").unwrap();
    /// client.shutdown_write().unwrap();
    /// assert!(client.send("more").is_err(), "sending has finished");
    /// peer.write(b"answer");
    /// peer.close();
    /// assert_eq!(client.recv().unwrap().unwrap(), "answer");
    /// assert_eq!(client.recv().unwrap(), None);
    /// assert!(client.close().unwrap().is_clean());
    /// ```
    pub fn shutdown_write(&self) -> Result<(), FlushError> {
        self.shutdown_write_until(None)
    }

    /// Like [`Client::shutdown_write`], giving up the wait after `timeout` (the drain and
    /// the half-close go on).
    ///
    /// # Errors
    ///
    /// As [`Client::shutdown_write`], and [`FlushError::Timeout`].
    ///
    /// # Blocking
    ///
    /// Parks the calling thread for at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate_blocking::{Client, FlushError};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-shutdown-write-timeout-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// client.send("stuck").unwrap();
    /// let waited = client.shutdown_write_timeout(Duration::from_millis(20));
    /// assert!(matches!(waited, Err(FlushError::Timeout)));
    /// ```
    pub fn shutdown_write_timeout(&self, timeout: Duration) -> Result<(), FlushError> {
        self.shutdown_write_until(Some(Instant::now() + timeout))
    }

    fn shutdown_write_until(&self, deadline: Option<Instant>) -> Result<(), FlushError> {
        let mut op = self.conn.shutdown_write(deadline);
        wait_guarded(deadline, |waker| op.poll_with(waker))
            .unwrap_or(Err(FlushError::WouldDeadlock))
    }

    /// Closes the connection for every handle: new sends are refused, waiting senders get
    /// their frames back in [`SendError::Closed`], and what is buffered is drained for at most
    /// the configured close timeout (10 s by default).
    ///
    /// The report counts what was written and hands back every frame that was not fully
    /// written. Only the first close receives those frames.
    ///
    /// # Errors
    ///
    /// [`CloseError::WouldDeadlock`] at once when called on an I/O driver thread (inside a
    /// transport plugin or a [`Client::call_link`] closure): the driver would have to shut
    /// the link down while its thread waits for itself. Nothing is done then, and the
    /// connection stays open; close it from another thread, or drop the handle, which starts
    /// the close without waiting (see [Dropping](Client#dropping)).
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until the buffer drained or the close timeout passed.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_blocking::Client;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-close-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// client.send("last words").unwrap();
    /// let report = client.close().unwrap();
    /// assert!(report.is_clean());
    /// assert_eq!(report.bytes_written(), 10);
    /// ```
    ///
    /// On an I/O driver thread it refuses, and the connection goes on:
    ///
    /// ```
    /// use tidegate_blocking::{Client, CloseError};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-close-driver-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let inner = client.clone();
    /// let refused = client.call_link(move |_| inner.close()).unwrap();
    /// assert!(matches!(refused, Err(CloseError::WouldDeadlock)));
    /// client.send("still open").unwrap();
    /// assert!(client.close().unwrap().is_clean());
    /// ```
    pub fn close(&self) -> Result<CloseReport, CloseError> {
        self.close_timeout(self.conn.config().close_timeout_duration())
    }

    /// Like [`Client::close`], draining for at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`Client::close`]: [`CloseError::WouldDeadlock`] on an I/O driver thread, where it
    /// does nothing.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread for at most `timeout` (plus the time to shut the link down).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate_blocking::Client;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("close-timeout-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let report = client.close_timeout(Duration::from_secs(1)).unwrap();
    /// assert!(report.unsent().is_empty());
    /// ```
    pub fn close_timeout(&self, timeout: Duration) -> Result<CloseReport, CloseError> {
        // Refuse before the first poll, which is what starts the close: a close begun here
        // could not be waited for, and the caller is told nothing was done.
        if is_driver_thread() {
            return Err(CloseError::WouldDeadlock);
        }
        let mut op = self.conn.close(timeout);
        Ok(wait(None, |waker| op.poll_with(waker)))
    }

    /// Subscribes to the crossings of the buffer's watermarks (set with
    /// [`ClientBuilder::watermarks`]), to pause and resume the application's own upstream.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate_blocking::{Client, Watermark};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-watermarks-example").unwrap();
    /// let client =
    ///     Client::builder().capacity(100).watermarks(80, 20).connect(&listener.url()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// let events = client.watermarks();
    /// client.send(vec![0u8; 90]).unwrap();
    /// assert_eq!(events.recv_timeout(Duration::from_secs(5)), Some(Watermark::High));
    /// peer.resume();
    /// assert_eq!(events.recv_timeout(Duration::from_secs(5)), Some(Watermark::Low));
    /// ```
    pub fn watermarks(&self) -> Watermarks {
        Watermarks { events: std::sync::Mutex::new(self.conn.watermarks()) }
    }

    /// Applies a socket option to the live link, for example to toggle `TCP_NODELAY`.
    ///
    /// # Errors
    ///
    /// The link's error (`Unsupported` for an option it does not have), or `NotConnected` if
    /// the connection has ended or the call was made on an I/O driver thread.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until the I/O driver has applied the option (its next turn).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_blocking::{Client, SocketOption};
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let client = Client::connect(&format!("tcp://{}", listener.local_addr().unwrap())).unwrap();
    /// # let (peer, _) = listener.accept().unwrap();
    /// client.set_option(SocketOption::NoDelay(false)).unwrap();
    /// # drop(peer); // ends its side, so the client's close on drop finds the end at once
    /// ```
    pub fn set_option(&self, option: SocketOption) -> io::Result<()> {
        self.call_link(move |link| link.set_option(&option))?
    }

    /// Runs `f` with the connection's link on the I/O driver's thread and returns its result:
    /// the way to reach the link of a live connection (for example to read a socket option
    /// back). `f` must not block.
    ///
    /// # Errors
    ///
    /// [`LinkError`] if the connection has ended, and [`LinkError::WouldDeadlock`] when called
    /// on an I/O driver thread (`f` still runs later, and its result is dropped).
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until `f` has run.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_blocking::Client;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-call-link-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let text = client.call_link(|link| format!("{link:?}")).unwrap();
    /// assert!(text.contains("MemLink"));
    /// ```
    pub fn call_link<R, F>(&self, f: F) -> Result<R, LinkError>
    where
        R: Send + 'static,
        F: FnOnce(&mut dyn Link) -> R + Send + 'static,
    {
        let mut call = self.conn.call_link(f);
        wait_guarded(None, |waker| call.poll_with(waker)).unwrap_or(Err(LinkError::WouldDeadlock))
    }

    /// Receives the next chunk of bytes the peer sent (with
    /// [framing](Config::framing), the next whole frame), waiting as long as it takes.
    /// Returns `Ok(None)` once the stream ended in order (the peer closed, or the application
    /// closed the connection) and everything before the end was received.
    ///
    /// Bytes the application does not receive wait in the inbound buffer; once it is full the
    /// driver stops reading and the peer's writes stall. Receivers are served in the order they
    /// started waiting.
    ///
    /// # Errors
    ///
    /// [`RecvError::Disconnected`] after everything that arrived before the connection
    /// failed (a reset, for example), [`RecvError::Decode`] for frames that cannot be decoded,
    /// [`RecvError::WouldDeadlock`] when it would have to wait on an I/O driver thread.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until data arrives or the stream ends. It uses no CPU while it
    /// waits: the I/O driver unparks it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate_blocking::Client;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-recv-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.write(b"ack");
    /// peer.close();
    /// assert_eq!(client.recv().unwrap().unwrap(), "ack");
    /// assert_eq!(client.recv().unwrap(), None, "the end of the stream");
    /// ```
    pub fn recv(&self) -> Result<Option<Bytes>, RecvError> {
        self.recv_until(None)
    }

    /// Like [`Client::recv`], giving up after `timeout` with [`RecvError::Timeout`].
    ///
    /// # Errors
    ///
    /// As [`Client::recv`], and the timeout.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread for at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate_blocking::Client;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-recv-timeout-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let err = client.recv_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert!(err.is_timeout());
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Bytes>, RecvError> {
        self.recv_until(Some(Instant::now() + timeout))
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<Option<Bytes>, RecvError> {
        let mut op = self.conn.recv(deadline);
        // On a driver thread the operation is dropped, leaving the line; no data is lost.
        wait_guarded(deadline, |waker| op.poll_with(waker)).unwrap_or(Err(RecvError::WouldDeadlock))
    }

    /// Receives without waiting: the next chunk (or frame) if one is there and no receiver
    /// waits ahead, `Ok(None)` once the stream ended in order.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if there is nothing now, and as [`Client::recv`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_blocking::Client;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-try-recv-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// assert!(client.try_recv().unwrap_err().is_empty());
    /// ```
    pub fn try_recv(&self) -> Result<Option<Bytes>, TryRecvError> {
        self.conn.try_recv()
    }

    /// A snapshot of the connection's counters.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_blocking::Client;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-stats-example").unwrap();
    /// let client = Client::builder().capacity(4096).connect(&listener.url()).unwrap();
    /// assert_eq!(client.stats().capacity, 4096);
    /// ```
    pub fn stats(&self) -> Stats {
        self.conn.stats()
    }
}

/// A subscription to a connection's watermark crossings, returned by [`Client::watermarks`].
///
/// Yields `High` and `Low` alternately, once per crossing, in order; `None` once the
/// connection has ended and every crossing was read. Dropping it unsubscribes.
///
/// # Examples
///
/// See [`Client::watermarks`].
#[derive(Debug)]
pub struct Watermarks {
    events: std::sync::Mutex<WatermarkEvents>,
}

impl Watermarks {
    /// Waits for the next crossing.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until a crossing happens or the connection ends.
    ///
    /// # Examples
    ///
    /// See [`Client::watermarks`].
    pub fn recv(&self) -> Option<Watermark> {
        self.recv_until(None).flatten()
    }

    /// Waits at most `timeout` for the next crossing; `None` if none came (or the connection
    /// ended).
    ///
    /// # Blocking
    ///
    /// Parks the calling thread for at most `timeout`.
    ///
    /// # Examples
    ///
    /// See [`Client::watermarks`].
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Watermark> {
        self.recv_until(Some(Instant::now() + timeout)).flatten()
    }

    /// The next crossing if one is waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_blocking::Client;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-watermarks-try-recv-example").unwrap();
    /// let client = Client::builder().watermarks(10, 5).connect(&listener.url()).unwrap();
    /// assert_eq!(client.watermarks().try_recv(), None);
    /// ```
    pub fn try_recv(&self) -> Option<Watermark> {
        self.lock().try_next()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WatermarkEvents> {
        self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `None` when the deadline passed.
    fn recv_until(&self, deadline: Option<Instant>) -> Option<Option<Watermark>> {
        let mut events = self.lock();
        wait(deadline, |waker| match events.poll_next_with(waker) {
            Poll::Pending if deadline.is_some_and(|d| d <= Instant::now()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
            Poll::Ready(event) => Poll::Ready(Some(event)),
        })
    }
}

/// Each `write` sends one frame of at most [`Connection::max_frame_len`] bytes (the capacity,
/// less the urgent reserve and any framing header), blocking like [`Client::send`]; `flush`
/// waits like [`Client::flush`].
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use tidegate_blocking::Client;
/// use tidegate_core::transport::mem::MemListener;
///
/// let listener = MemListener::bind("write-example").unwrap();
/// let mut client = Client::connect(&listener.url()).unwrap();
/// writeln!(client, "hello {}", 42).unwrap();
/// client.flush().unwrap();
/// ```
impl io::Write for Client {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // At least one byte: a connection that can take no frame at all reports `TooLarge`.
        let n = buf.len().min(self.conn.max_frame_len().max(1));
        match self.send(Bytes::copy_from_slice(&buf[..n])) {
            Ok(()) => Ok(n),
            Err(err) => Err(send_error_to_io(err)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Self::flush(self).map_err(|err| {
            let kind = match &err {
                FlushError::Timeout => io::ErrorKind::TimedOut,
                FlushError::Closed => io::ErrorKind::NotConnected,
                FlushError::Disconnected(cause) => disconnect_kind(cause),
                _ => io::ErrorKind::Other,
            };
            io::Error::new(kind, err)
        })
    }
}

fn send_error_to_io(err: SendError<Bytes>) -> io::Error {
    let kind = match &err {
        SendError::Timeout(_) => io::ErrorKind::TimedOut,
        SendError::Closed(_) => io::ErrorKind::NotConnected,
        SendError::Disconnected { cause, .. } => disconnect_kind(cause),
        _ => io::ErrorKind::InvalidInput,
    };
    io::Error::new(kind, err)
}

fn disconnect_kind(cause: &Disconnect) -> io::ErrorKind {
    match cause.kind() {
        DisconnectKind::PeerClosed => io::ErrorKind::BrokenPipe,
        DisconnectKind::Reset => io::ErrorKind::ConnectionReset,
        _ => cause.io_error().map_or(io::ErrorKind::Other, io::Error::kind),
    }
}

/// Settings for a new [`Client`]: the core's [`Builder`], made by [`Client::builder`], whose
/// `connect` parks the calling thread until the link is up and returns a [`Client`] (see
/// [`Blocking`]).
///
/// Every setting of [`Config`] has a method here, documented on [`Builder`]. To start from a
/// ready [`Config`], use [`Builder::from_config`], or call [`Builder::config`] first: it
/// replaces every setting made before it, and the settings made after it apply on top.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tidegate_blocking::{Client, Config};
/// use tidegate_core::transport::mem::MemListener;
///
/// let listener = MemListener::bind("builder-example").unwrap();
/// let client = Client::builder()
///     .config(Config::new().capacity(256 * 1024))
///     .connect_timeout(Duration::from_secs(2))
///     .send_timeout(Duration::from_secs(1))
///     .close_timeout(Duration::from_secs(5))
///     .nodelay(true)
///     .connect(&listener.url())
///     .unwrap();
/// // From the config, then set on top of it.
/// assert_eq!(client.stats().capacity, 256 * 1024);
/// let timeout = client.connection().config().send_timeout_duration();
/// assert_eq!(timeout, Some(Duration::from_secs(1)));
/// ```
pub type ClientBuilder = Builder<Blocking>;

/// The blocking facade, as the type parameter of [`Builder`]: [`ClientBuilder`] is
/// `Builder<Blocking>`, and its `connect` parks the calling thread until the link is up, then
/// returns a [`Client`].
///
/// No value of it exists: it only names the facade.
///
/// # Examples
///
/// ```
/// use tidegate_blocking::{Blocking, Builder, Client, ClientBuilder};
/// use tidegate_core::transport::mem::MemListener;
///
/// let listener = MemListener::bind("blocking-marker-example").unwrap();
/// let builder: Builder<Blocking> = Client::builder().capacity(4096);
/// let client: Client = builder.connect(&listener.url()).unwrap();
/// let same: ClientBuilder = Builder::new();
/// ```
#[derive(Debug)]
pub enum Blocking {}

/// Connects for [`ClientBuilder::connect`]: opens the connection, then parks the calling
/// thread until the link is up.
impl Facade for Blocking {
    type Output = Result<Client, ConnectError>;

    /// Connects to `url` with `config`, waiting until the link is up.
    ///
    /// Built-in schemes: `tcp://host:port`, `tls://host:port`, `unix:///path` (Unix only) and
    /// `mem://name`; more can be registered with [`transport::register`].
    ///
    /// # Errors
    ///
    /// A malformed URL, an unregistered scheme, unusable settings
    /// ([`ConnectError::InvalidConfig`]), or a connection that failed or timed out.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until the connection is established or fails (at most the
    /// connect timeout, 10 s by default).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_blocking::{Client, ConnectError};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-clientbuilder-connect").unwrap();
    /// let client = Client::builder().capacity(1024).connect(&listener.url()).unwrap();
    /// client.send("hello").unwrap();
    /// drop(listener);
    /// let err = Client::builder().connect("mem://doc-clientbuilder-connect").unwrap_err();
    /// assert!(matches!(err, ConnectError::Io(_)), "nobody listens any more");
    /// ```
    fn connect(url: &str, config: Config) -> Self::Output {
        let conn = Connection::open(url, config)?;
        let mut connected = conn.connected();
        wait(None, |waker| connected.poll_with(waker))?;
        Ok(Client::from_connection(conn))
    }
}
