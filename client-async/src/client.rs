//! [`AsyncClient`], its builder (the core's, named by [`Async`]), and the future that connects
//! it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_core::FusedFuture;
use tidegate_core::transport::{Link, SocketOption};
use tidegate_core::{
    Builder, Config, ConnectError, Connection, Facade, FrameBatch, LinkCall, SendBatchOp, Stats,
    TryRecvError, TrySendError, Watermark, WatermarkEvents,
};

use crate::ops::{CloseFuture, FlushFuture, SendFuture, ShutdownWriteFuture};
use crate::recv::{Incoming, RecvFuture};
use crate::sink::FrameSink;

/// An async handle to one connection. Clone it to share the connection between tasks.
///
/// All clones share one bounded outgoing buffer and one FIFO line of waiting senders, with
/// each other, with the [`FrameSink`]s made from them, and with blocking clients built on the
/// same [`Connection`] (see [`AsyncClient::from_connection`]).
///
/// # Dropping
///
/// A `Drop` cannot wait in async code, so dropping the last handle to the connection without
/// a close only *starts* one: the driver drains the buffer for the configured close timeout
/// and ends the connection in order, then discards what is left with a warning in the log
/// naming the frames and bytes. Nothing waits for that: if the process exits first (the end of
/// `main`, the runtime shutting down), what was still buffered is lost. **Await
/// [`AsyncClient::close`] before the end** to drain, read the peer's end of stream, and receive
/// the unsent frames.
///
/// # Examples
///
/// ```
/// use tidegate_async::AsyncClient;
/// use tidegate_core::transport::mem::MemListener;
///
/// let listener = MemListener::bind("async-client-example").unwrap();
/// futures::executor::block_on(async {
///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
///     let other = client.clone();
///     client.send("hello ").await.unwrap();
///     other.send("world").await.unwrap();
///     client.flush().await.unwrap();
///     assert_eq!(other.stats().bytes_written, 11);
/// });
/// ```
#[derive(Debug, Clone)]
pub struct AsyncClient {
    conn: Connection,
}

impl AsyncClient {
    /// Connects to `url` with the default settings; the future resolves once the link is up.
    ///
    /// Built-in schemes: `tcp://host:port` and `mem://name`; more can be registered with
    /// `tidegate_core::transport::register`.
    ///
    /// The connection attempt starts at this call, on the core's driver thread; the future
    /// only waits for its outcome. The host name of a `tcp://` URL is resolved on the calling
    /// thread during this call: in latency-sensitive async code, pass an IP address.
    ///
    /// # Errors
    ///
    /// The future resolves to an error for a malformed URL, an unregistered scheme, or a
    /// connection that failed or timed out (10 s by default).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the connection: the attempt is abandoned.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_async::{AsyncClient, ConnectError};
    ///
    /// let result = futures::executor::block_on(AsyncClient::connect("no-scheme"));
    /// assert!(matches!(result, Err(ConnectError::InvalidUrl { .. })));
    /// ```
    pub fn connect(url: &str) -> Connecting {
        Self::builder().connect(url)
    }

    /// Returns a builder for a connection with other settings: every setting of [`Config`],
    /// then [`connect`](Builder::connect), which returns a [`Connecting`] future like
    /// [`AsyncClient::connect`].
    ///
    /// # Errors
    ///
    /// Its future resolves to the errors of [`AsyncClient::connect`], and also to
    /// [`ConnectError::InvalidConfig`] for unusable settings (see [`Async`]'s
    /// [`Facade::connect`]).
    ///
    /// # Cancel safety
    ///
    /// As [`AsyncClient::connect`]: dropping the future abandons the attempt.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_async::AsyncClient;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-builder-accessor-example").unwrap();
    /// let connecting = AsyncClient::builder().capacity(64 * 1024).connect(&listener.url());
    /// let client = futures::executor::block_on(connecting).unwrap();
    /// assert_eq!(client.stats().capacity, 64 * 1024);
    /// ```
    pub fn builder() -> AsyncClientBuilder {
        AsyncClientBuilder::new()
    }

    /// Wraps a connection opened with the core. Build a `tidegate_blocking::Client` on a clone
    /// of the same connection to let threads and tasks share it: they all queue in one FIFO
    /// line.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_async::{AsyncClient, Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-from-connection-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new().capacity(4096)).unwrap();
    /// let client = AsyncClient::from_connection(conn.clone());
    /// conn.try_send("from the core".into()).unwrap();
    /// futures::executor::block_on(client.send("from a task")).unwrap();
    /// assert_eq!(client.stats().frames_accepted, 2);
    /// ```
    pub fn from_connection(conn: Connection) -> Self {
        Self { conn }
    }

    /// Returns the core connection, to share it with the blocking facade.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_async::AsyncClient;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-connection-accessor-example").unwrap();
    /// let client = futures::executor::block_on(AsyncClient::connect(&listener.url())).unwrap();
    /// assert_eq!(client.connection().endpoint().scheme(), "mem");
    /// ```
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Unwraps the core connection.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_async::AsyncClient;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-into-connection-example").unwrap();
    /// let client = futures::executor::block_on(AsyncClient::connect(&listener.url())).unwrap();
    /// let conn = client.into_connection();
    /// assert!(!conn.is_closed());
    /// ```
    pub fn into_connection(self) -> Connection {
        self.conn
    }

    /// Sends `frame`: the future resolves once the frame is in the outgoing buffer, waiting for
    /// room for as long as the configured send timeout allows (by default, as long as it
    /// takes). The timeout counts from this call.
    ///
    /// The frame takes its place in the FIFO line at the future's first poll; a frame that
    /// fits when no one waits goes straight into the buffer. [`AsyncClient::flush`] waits
    /// until it is written.
    ///
    /// # Errors
    ///
    /// The error contains the frame: [`SendError::Timeout`](crate::SendError::Timeout) if the
    /// send timeout passed, `TooLarge` for a frame larger than the capacity, `Empty`, `Closed`
    /// after a close, `Disconnected` with the cause after the connection ended.
    ///
    /// # Cancel safety
    ///
    /// See [`SendFuture`]: a dropped future's frame is either never sent or, if the driver had
    /// already moved it into the buffer, sent in order; [`SendFuture::cancel`] tells which and
    /// returns the frame.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_async::{AsyncClient, SendError};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-send-example").unwrap();
    /// futures::executor::block_on(async {
    ///     let client = AsyncClient::builder().capacity(8).connect(&listener.url()).await.unwrap();
    ///     client.send(&b"12345678"[..]).await.unwrap();
    ///     let err = client.send(&b"123456789"[..]).await.unwrap_err();
    ///     assert!(matches!(err, SendError::TooLarge { capacity: 8, .. }));
    ///     assert_eq!(err.into_inner().len(), 9);
    /// });
    /// ```
    pub fn send(&self, frame: impl Into<Bytes>) -> SendFuture<'_> {
        let deadline = self.conn.config().send_timeout_duration().map(|t| Instant::now() + t);
        SendFuture::new(self.conn.send(frame.into(), deadline))
    }

    /// Sends `frame`, waiting at most `timeout` (counted from this call) for room.
    ///
    /// The deadline is fired by the core's I/O driver, so it works under any executor.
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::send`]; [`SendError::Timeout`](crate::SendError::Timeout) carries the
    /// frame back when `timeout` passes.
    ///
    /// # Cancel safety
    ///
    /// As [`AsyncClient::send`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate_async::AsyncClient;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-send-timeout-example").unwrap();
    /// futures::executor::block_on(async {
    ///     let client = AsyncClient::builder().capacity(4).connect(&listener.url()).await.unwrap();
    ///     let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    ///     peer.pause(); // the peer stops reading
    ///     client.send("full").await.unwrap();
    ///     let err = client.send_timeout("more", Duration::from_millis(50)).await.unwrap_err();
    ///     assert!(err.is_timeout());
    ///     assert_eq!(err.into_inner(), "more");
    /// });
    /// ```
    pub fn send_timeout(&self, frame: impl Into<Bytes>, timeout: Duration) -> SendFuture<'_> {
        SendFuture::new(self.conn.send(frame.into(), Some(Instant::now() + timeout)))
    }

    /// Puts `frame` into the buffer only if it fits now and no one is waiting.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] when the frame would have to wait (also when it would fit but
    /// other senders wait ahead of it); otherwise as [`AsyncClient::send`]. The error contains
    /// the frame.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_async::{AsyncClient, TrySendError};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-try-send-example").unwrap();
    /// let client = futures::executor::block_on(AsyncClient::connect(&listener.url())).unwrap();
    /// client.try_send("fits").unwrap();
    /// assert!(matches!(client.try_send(""), Err(TrySendError::Empty(_))));
    /// ```
    pub fn try_send(&self, frame: impl Into<Bytes>) -> Result<(), TrySendError<Bytes>> {
        self.conn.try_send(frame.into())
    }

    /// Sends every frame of `batch` as one unit, waiting for room for as long as the
    /// configured send timeout allows (by default, as long as it takes).
    ///
    /// The frames enter the buffer together, back to back and in order, under one lock: a
    /// producer of many small frames pays for the lock once per batch, not once per frame, and
    /// keeps its frame boundaries. The batch takes one place in the same FIFO line as single
    /// frames and is moved in whole when there is room for all of it.
    ///
    /// # Errors
    ///
    /// The error contains the whole batch: [`SendError::TooLarge`](crate::SendError::TooLarge)
    /// if its total length could never fit, [`SendError::Empty`](crate::SendError::Empty) for
    /// a batch without frames (or, without framing, with an empty frame), otherwise as
    /// [`AsyncClient::send`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes leaks no capacity: a batch still waiting in
    /// line leaves it and is **not sent**; a batch the driver already moved into the buffer
    /// **is sent**, all of it. [`SendBatchOp::cancel`](crate::SendBatchOp::cancel) tells which,
    /// and hands the batch back in the first case. A batch is never sent in part.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_async::{AsyncClient, FrameBatch};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-send-batch-example").unwrap();
    /// futures::executor::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     let mut batch = FrameBatch::with_capacity(64 * 64);
    ///     for i in 0..64u8 {
    ///         batch.push([i; 64]);
    ///     }
    ///     client.send_batch(batch).await.unwrap();
    ///     assert_eq!(client.stats().frames_accepted, 64);
    /// });
    /// ```
    pub fn send_batch(&self, batch: FrameBatch) -> SendBatchOp<&Connection> {
        let deadline = self.conn.config().send_timeout_duration().map(|t| Instant::now() + t);
        self.conn.send_batch(batch, deadline)
    }

    /// Puts every frame of `batch` into the buffer, as one unit, only if all of them fit now
    /// and no one is waiting.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] when the batch would have to wait; otherwise as
    /// [`AsyncClient::send_batch`]. The error contains the whole batch.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_async::{AsyncClient, FrameBatch, TrySendError};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-try-send-batch-example").unwrap();
    /// let client = futures::executor::block_on(AsyncClient::connect(&listener.url())).unwrap();
    /// let mut batch = FrameBatch::new();
    /// batch.push("fits");
    /// client.try_send_batch(batch).unwrap();
    /// let empty = client.try_send_batch(FrameBatch::new());
    /// assert!(matches!(empty, Err(TrySendError::Empty(_))));
    /// ```
    pub fn try_send_batch(&self, batch: FrameBatch) -> Result<(), TrySendError<FrameBatch>> {
        self.conn.try_send_batch(batch)
    }

    /// Sends an urgent (control) frame, such as a heartbeat or a close frame: it may use the
    /// reserve kept for urgent frames ([`AsyncClientBuilder::urgent_reserve`]), waits only
    /// behind other urgent frames, and goes on the wire at the next frame boundary, ahead of
    /// data frames not yet started. Uses the configured send timeout.
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::send`].
    ///
    /// # Cancel safety
    ///
    /// As [`AsyncClient::send`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate_async::AsyncClient;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-send-urgent-example").unwrap();
    /// futures::executor::block_on(async {
    ///     let client = AsyncClient::builder()
    ///         .capacity(100)
    ///         .urgent_reserve(10)
    ///         .connect(&listener.url())
    ///         .await
    ///         .unwrap();
    ///     let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    ///     peer.pause();
    ///     client.send(vec![0u8; 90]).await.unwrap(); // data fills what it may
    ///     client.send_urgent("ping").await.unwrap(); // the reserve still has room
    /// });
    /// ```
    pub fn send_urgent(&self, frame: impl Into<Bytes>) -> SendFuture<'_> {
        let deadline = self.conn.config().send_timeout_duration().map(|t| Instant::now() + t);
        SendFuture::new(self.conn.send_urgent(frame.into(), deadline))
    }

    /// Like [`AsyncClient::try_send`], for an urgent frame (see [`AsyncClient::send_urgent`]).
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::try_send`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_async::AsyncClient;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-try-send-urgent-example").unwrap();
    /// let client = futures::executor::block_on(AsyncClient::connect(&listener.url())).unwrap();
    /// client.try_send_urgent("ping").unwrap();
    /// ```
    pub fn try_send_urgent(&self, frame: impl Into<Bytes>) -> Result<(), TrySendError<Bytes>> {
        self.conn.try_send_urgent(frame.into())
    }

    /// Waits until every frame accepted before the future's first poll has been written to
    /// the link.
    ///
    /// # Errors
    ///
    /// [`FlushError::Closed`](crate::FlushError::Closed) or
    /// [`FlushError::Disconnected`](crate::FlushError::Disconnected) if the connection ended
    /// first; the close report accounts for the frames.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future only stops waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_async::AsyncClient;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-flush-example").unwrap();
    /// futures::executor::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     client.send("data").await.unwrap();
    ///     client.flush().await.unwrap();
    ///     assert_eq!(client.stats().buffered, 0);
    /// });
    /// ```
    pub fn flush(&self) -> FlushFuture<'_> {
        FlushFuture::new(self.conn.flush(None))
    }

    /// Like [`AsyncClient::flush`], giving up `timeout` after this call.
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::flush`], and [`FlushError::Timeout`](crate::FlushError::Timeout).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future only stops waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate_async::AsyncClient;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-flush-timeout-example").unwrap();
    /// futures::executor::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     client.flush_timeout(Duration::from_secs(5)).await.unwrap();
    /// });
    /// ```
    pub fn flush_timeout(&self, timeout: Duration) -> FlushFuture<'_> {
        FlushFuture::new(self.conn.flush(Some(Instant::now() + timeout)))
    }

    /// Closes the connection for every handle: new sends are refused, waiting senders get
    /// their frames back in [`SendError::Closed`](crate::SendError::Closed), and what is
    /// buffered is drained for at most the configured close timeout (10 s by default). The
    /// future resolves with the report once the link is gone.
    ///
    /// The report counts what was written and hands back every frame that was not fully
    /// written. Only the first close receives those frames.
    ///
    /// # Cancel safety
    ///
    /// The close starts at the first poll and goes on if the future is dropped; a later close
    /// returns the report (without the unsent frames, if an earlier close received them).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_async::AsyncClient;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-close-example").unwrap();
    /// futures::executor::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     client.send("last words").await.unwrap();
    ///     let report = client.close().await;
    ///     assert!(report.is_clean());
    ///     assert_eq!(report.bytes_written(), 10);
    /// });
    /// ```
    pub fn close(&self) -> CloseFuture<'_> {
        self.close_timeout(self.conn.config().close_timeout_duration())
    }

    /// Like [`AsyncClient::close`], draining for at most `timeout` from the first poll.
    ///
    /// # Cancel safety
    ///
    /// As [`AsyncClient::close`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate_async::AsyncClient;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-close-timeout-example").unwrap();
    /// futures::executor::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     let report = client.close_timeout(Duration::from_secs(1)).await;
    ///     assert!(report.unsent().is_empty());
    /// });
    /// ```
    pub fn close_timeout(&self, timeout: Duration) -> CloseFuture<'_> {
        CloseFuture::new(self.conn.close(timeout))
    }

    /// Finishes sending and keeps receiving (a half-close): new sends are refused, waiting
    /// senders get their frames back in [`SendError::Closed`](crate::SendError::Closed), what
    /// is buffered is drained, then the link's write side is ended (for TCP, a FIN after the
    /// last byte). The future resolves once it has; receive until `Ok(None)`, when the peer
    /// has ended its side too.
    ///
    /// # Errors
    ///
    /// [`FlushError::Closed`](crate::FlushError::Closed) or
    /// [`FlushError::Disconnected`](crate::FlushError::Disconnected) if the connection ended
    /// before its write side could.
    ///
    /// # Cancel safety
    ///
    /// The half-close starts at the first poll and goes on if the future is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate_async::AsyncClient;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-shutdown-write-example").unwrap();
    /// futures::executor::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    ///     peer.hold_open();
    ///     client.send("question").await.unwrap();
    ///     client.shutdown_write().await.unwrap();
    ///     peer.write(b"answer");
    ///     peer.close();
    ///     assert_eq!(client.recv().await.unwrap().unwrap(), "answer");
    ///     assert_eq!(client.recv().await.unwrap(), None);
    ///     assert!(client.close().await.is_clean());
    /// });
    /// ```
    pub fn shutdown_write(&self) -> ShutdownWriteFuture<'_> {
        ShutdownWriteFuture::new(self.conn.shutdown_write(None))
    }

    /// Applies a socket option to the live link, for example to toggle `TCP_NODELAY`.
    ///
    /// # Errors
    ///
    /// Resolves to the link's error (`Unsupported` for an option it does not have), or to
    /// `NotConnected` if the connection has ended.
    ///
    /// # Cancel safety
    ///
    /// The option is applied even if the future is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_async::{AsyncClient, SocketOption};
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let url = format!("tcp://{}", listener.local_addr().unwrap());
    /// futures::executor::block_on(async {
    ///     let client = AsyncClient::connect(&url).await.unwrap();
    ///     client.set_option(SocketOption::NoDelay(false)).await.unwrap();
    /// });
    /// ```
    pub fn set_option(&self, option: SocketOption) -> impl Future<Output = std::io::Result<()>> {
        self.conn.set_option(option)
    }

    /// Runs `f` with the connection's link on the I/O driver's thread and resolves to its
    /// result: the way to reach the link of a live connection. `f` must not block.
    ///
    /// # Errors
    ///
    /// Resolves to a [`LinkError`](tidegate_core::LinkError) if the connection has ended.
    ///
    /// # Cancel safety
    ///
    /// `f` runs even if the future is dropped; its result is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_async::AsyncClient;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-call-link-example").unwrap();
    /// futures::executor::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     let text = client.call_link(|link| format!("{link:?}")).await.unwrap();
    ///     assert!(text.contains("MemLink"));
    /// });
    /// ```
    pub fn call_link<R, F>(&self, f: F) -> LinkCall<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut dyn Link) -> R + Send + 'static,
    {
        self.conn.call_link(f)
    }

    /// Subscribes to the crossings of the buffer's watermarks (set with
    /// [`AsyncClientBuilder::watermarks`]), as a [`Stream`](futures_core::Stream).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use futures::StreamExt;
    /// use tidegate_async::{AsyncClient, Watermark};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-watermarks-example").unwrap();
    /// futures::executor::block_on(async {
    ///     let client = AsyncClient::builder()
    ///         .capacity(100)
    ///         .watermarks(80, 20)
    ///         .connect(&listener.url())
    ///         .await
    ///         .unwrap();
    ///     let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    ///     peer.pause();
    ///     let mut events = client.watermarks();
    ///     client.send(vec![0u8; 90]).await.unwrap();
    ///     assert_eq!(events.next().await, Some(Watermark::High));
    ///     peer.resume();
    ///     assert_eq!(events.next().await, Some(Watermark::Low));
    /// });
    /// ```
    pub fn watermarks(&self) -> WatermarkStream {
        WatermarkStream { events: self.conn.watermarks() }
    }

    /// Returns a snapshot of the connection's counters.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_async::AsyncClient;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-stats-example").unwrap();
    /// let connecting = AsyncClient::builder().capacity(4096).connect(&listener.url());
    /// let client = futures::executor::block_on(connecting).unwrap();
    /// assert_eq!(client.stats().capacity, 4096);
    /// ```
    pub fn stats(&self) -> Stats {
        self.conn.stats()
    }

    /// Returns whether the connection no longer takes frames (closing, closed or
    /// disconnected).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_async::AsyncClient;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-is-closed-example").unwrap();
    /// futures::executor::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     assert!(!client.is_closed());
    ///     client.close().await;
    ///     assert!(client.is_closed());
    /// });
    /// ```
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    /// Returns a [`Sink`](futures_sink::Sink) of frames on this connection, for `stream.forward(sink)`
    /// and `SinkExt`. It owns a handle to the connection.
    ///
    /// Closing the sink closes the connection for every handle.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::{SinkExt, StreamExt, stream};
    /// use tidegate_async::{AsyncClient, Bytes};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-sink-method-example").unwrap();
    /// futures::executor::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     let frames = stream::iter(["a", "b", "c"]).map(|s| Ok(Bytes::from(s)));
    ///     frames.forward(client.sink()).await.unwrap();
    ///     assert_eq!(client.stats().bytes_written, 3);
    ///     assert!(client.is_closed(), "forward closes the sink, and so the connection");
    /// });
    /// ```
    pub fn sink(&self) -> FrameSink {
        FrameSink::new(self.conn.clone())
    }

    /// Receives: the future resolves to the next chunk of bytes the peer sent (with
    /// [framing](tidegate_core::Config::framing), the next whole frame), to `None` once the
    /// stream ended in order and everything before the end was received, or to an error.
    ///
    /// A receiver that waits uses no CPU: the I/O driver wakes it when data arrives for it.
    /// Receivers are served in the order they started waiting. Bytes the application does not
    /// receive wait in the inbound buffer; once it is full the driver stops reading and the
    /// peer's writes stall.
    ///
    /// # Errors
    ///
    /// [`RecvError::Disconnected`](crate::RecvError::Disconnected) after everything that
    /// arrived before the connection failed, [`RecvError::Decode`](crate::RecvError::Decode)
    /// for frames that cannot be decoded.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: see [`RecvFuture`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate_async::AsyncClient;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-recv-example").unwrap();
    /// futures::executor::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    ///     peer.write(b"ack");
    ///     peer.close();
    ///     assert_eq!(client.recv().await.unwrap().unwrap(), "ack");
    ///     assert_eq!(client.recv().await.unwrap(), None);
    /// });
    /// ```
    pub fn recv(&self) -> RecvFuture<'_> {
        RecvFuture::new(self.conn.recv(None))
    }

    /// Like [`AsyncClient::recv`], giving up after `timeout` (counted from this call) with
    /// [`RecvError::Timeout`](crate::RecvError::Timeout). The deadline is fired by the core's
    /// I/O driver, so it works under any executor.
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::recv`], and the timeout.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: see [`RecvFuture`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate_async::AsyncClient;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-recv-timeout-example").unwrap();
    /// futures::executor::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     let err = client.recv_timeout(Duration::from_millis(10)).await.unwrap_err();
    ///     assert!(err.is_timeout());
    /// });
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> RecvFuture<'_> {
        RecvFuture::new(self.conn.recv(Some(Instant::now() + timeout)))
    }

    /// Receives without waiting: the next chunk (or frame) if one is there and no receiver
    /// waits ahead, `Ok(None)` once the stream ended in order.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`](crate::TryRecvError::Empty) if there is nothing now, and as
    /// [`AsyncClient::recv`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_async::AsyncClient;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-try-recv-example").unwrap();
    /// let client = futures::executor::block_on(AsyncClient::connect(&listener.url())).unwrap();
    /// assert!(client.try_recv().unwrap_err().is_empty());
    /// ```
    pub fn try_recv(&self) -> Result<Option<Bytes>, TryRecvError> {
        self.conn.try_recv()
    }

    /// Returns everything this connection receives as a [`Stream`](futures_core::Stream) of
    /// `Result<Bytes, RecvError>`; see [`Incoming`]. It holds a handle to the connection.
    ///
    /// # Examples
    ///
    /// See [`Incoming`].
    pub fn incoming(&self) -> Incoming {
        Incoming::new(self.conn.clone())
    }
}

/// Settings for a new [`AsyncClient`]: the core's [`Builder`], made by
/// [`AsyncClient::builder`], whose `connect` returns a [`Connecting`] future that resolves to
/// the [`AsyncClient`] once the link is up (see [`Async`]).
///
/// Every setting of [`Config`] has a method here, documented on [`Builder`]. To start from a
/// ready [`Config`], use [`Builder::from_config`], or call [`Builder::config`] first: it
/// replaces every setting made before it, and the settings made after it apply on top.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tidegate_async::{AsyncClient, Config};
/// use tidegate_core::transport::mem::MemListener;
///
/// let listener = MemListener::bind("async-builder-example").unwrap();
/// let client = futures::executor::block_on(
///     AsyncClient::builder()
///         .config(Config::new().capacity(256 * 1024))
///         .connect_timeout(Duration::from_secs(2))
///         .send_timeout(Duration::from_secs(1))
///         .close_timeout(Duration::from_secs(5))
///         .nodelay(true)
///         .connect(&listener.url()),
/// )
/// .unwrap();
/// // From the config, then set on top of it.
/// assert_eq!(client.stats().capacity, 256 * 1024);
/// let timeout = client.connection().config().send_timeout_duration();
/// assert_eq!(timeout, Some(Duration::from_secs(1)));
/// ```
pub type AsyncClientBuilder = Builder<Async>;

/// The async facade, as the type parameter of [`Builder`]: [`AsyncClientBuilder`] is
/// `Builder<Async>`, and its `connect` returns a [`Connecting`] future that resolves to an
/// [`AsyncClient`].
///
/// No value of it exists: it only names the facade.
///
/// # Examples
///
/// ```
/// use tidegate_async::{Async, AsyncClient, AsyncClientBuilder, Builder, Connecting};
/// use tidegate_core::transport::mem::MemListener;
///
/// let listener = MemListener::bind("async-marker-example").unwrap();
/// let builder: Builder<Async> = AsyncClient::builder().capacity(4096);
/// let connecting: Connecting = builder.connect(&listener.url());
/// let client = futures::executor::block_on(connecting).unwrap();
/// let same: AsyncClientBuilder = Builder::new();
/// ```
#[derive(Debug)]
pub enum Async {}

/// Connects for [`AsyncClientBuilder::connect`]: starts the connection and returns the
/// [`Connecting`] future that waits for the link.
impl Facade for Async {
    type Output = Connecting;

    /// Starts connecting to `url` with `config`; the future resolves once the link is up.
    ///
    /// Built-in schemes: `tcp://host:port`, `tls://host:port`, `unix:///path` (Unix only) and
    /// `mem://name`; more can be registered with
    /// [`transport::register`](tidegate_core::transport::register).
    ///
    /// The connection attempt starts at this call, on the core's driver thread; the future
    /// only waits for its outcome. The host name of a `tcp://` URL is resolved on the calling
    /// thread during this call: in latency-sensitive async code, pass an IP address.
    ///
    /// # Errors
    ///
    /// The future resolves to an error for a malformed URL, an unregistered scheme, unusable
    /// settings ([`ConnectError::InvalidConfig`]), or a connection that failed or timed out.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the connection: the attempt is abandoned.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_async::AsyncClient;
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-builder-connect-example").unwrap();
    /// let connecting = AsyncClient::builder().capacity(1024).connect(&listener.url());
    /// let client = futures::executor::block_on(connecting).unwrap();
    /// assert_eq!(client.stats().capacity, 1024);
    /// ```
    fn connect(url: &str, config: Config) -> Connecting {
        Connecting { state: Some(Connection::open(url, config)) }
    }
}

/// A connection being established, returned by [`AsyncClient::connect`] and
/// [`AsyncClientBuilder::connect`]. Resolves to the [`AsyncClient`] once the link is up.
///
/// # Cancel safety
///
/// Dropping it drops the connection: the attempt is abandoned.
///
/// # Panics
///
/// Polling after it returned `Ready` panics.
///
/// # Examples
///
/// ```
/// use tidegate_async::{AsyncClient, Connecting};
/// use tidegate_core::transport::mem::MemListener;
///
/// let listener = MemListener::bind("async-connecting-example").unwrap();
/// let connecting: Connecting = AsyncClient::connect(&listener.url());
/// let client = futures::executor::block_on(connecting).unwrap();
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Connecting {
    /// The connection being established, or why it could not start; `None` once resolved.
    state: Option<Result<Connection, ConnectError>>,
}

impl Future for Connecting {
    type Output = Result<AsyncClient, ConnectError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let conn = match this.state.take().expect("Connecting polled after completion") {
            Ok(conn) => conn,
            Err(err) => return Poll::Ready(Err(err)),
        };
        // `Connected` keeps no state between polls, so a fresh one each time is equivalent.
        match conn.connected().poll_with(cx.waker()) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(AsyncClient { conn })),
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => {
                this.state = Some(Ok(conn));
                Poll::Pending
            }
        }
    }
}

impl FusedFuture for Connecting {
    fn is_terminated(&self) -> bool {
        self.state.is_none()
    }
}

/// A [`Stream`](futures_core::Stream) of a connection's watermark crossings, returned by
/// [`AsyncClient::watermarks`].
///
/// Yields `High` and `Low` alternately, once per crossing, in order, and ends once the
/// connection has ended and every crossing was read. Dropping it unsubscribes.
///
/// # Examples
///
/// See [`AsyncClient::watermarks`].
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct WatermarkStream {
    events: WatermarkEvents,
}

impl futures_core::Stream for WatermarkStream {
    type Item = Watermark;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Watermark>> {
        self.get_mut().events.poll_next_with(cx.waker())
    }
}
