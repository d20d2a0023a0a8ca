//! [`FrameSink`], a [`Sink`] of frames on a connection.
//!
//! # Algorithm
//!
//! The sink holds at most one frame of its own that waits for room: a core send operation,
//! started in [`Sink::start_send`] and polled once there with a no-op waker so that the frame
//! joins the connection's FIFO line at once (or goes straight into the buffer). Every other
//! method first drives that operation to its end with the task's waker:
//!
//! - `poll_ready` is ready once the previous frame has been accepted. It reserves nothing, so
//!   no space it "promised" can be taken by another producer before `start_send`: the frame's
//!   place in line is decided in `start_send`, and newcomers queue behind it.
//! - `poll_flush` then waits, with the core's flush, until every byte accepted up to that
//!   moment (this sink's frames and others') has been written to the link.
//! - `poll_close` is `poll_flush`: it leaves the connection open, since the sink is one of
//!   perhaps many producers on it. Closing the connection is one explicit call.
//!
//! The no-op waker of `start_send` cannot lose a wake-up: the `Sink` contract makes the caller
//! call `poll_ready`, `poll_flush` or `poll_close` next, which polls the operation again with
//! the task's own waker before the task can sleep.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use futures_sink::Sink;
use tidegate_core::{Connection, FlushError, SendError, SendOp};

/// A boxed wait on the core that owns its handle to the connection.
type Wait<T> = Pin<Box<dyn Future<Output = T> + Send + Sync>>;

/// A [`Sink`] of frames on one connection, returned by
/// [`AsyncClient::sink`](crate::AsyncClient::sink). Use it with `stream.forward(sink)` or
/// `SinkExt::{send, feed, send_all}`.
///
/// - [`start_send`](Sink::start_send) puts the frame into the connection's FIFO line at once:
///   into the buffer if it fits and no one waits, else behind the senders already waiting
///   (with the configured send timeout, counted from `start_send`).
/// - [`poll_ready`](Sink::poll_ready) waits until the sink's previous frame has been accepted.
///   It reserves no space, so no other producer can take space it promised: the order is the
///   order in which frames joined the line.
/// - [`poll_flush`](Sink::poll_flush) also waits until everything accepted so far has been
///   written to the link.
/// - [`poll_close`](Sink::poll_close) flushes, as `poll_flush` does, and **leaves the
///   connection open**: when a `forward` ends, the other clients, sinks and tasks on the same
///   connection go on sending. Close the connection with
///   [`AsyncClient::close`](crate::AsyncClient::close) when every producer is done.
///
/// # Errors
///
/// [`SinkError::Send`] carries back a frame that could not be sent (timeout, closed,
/// disconnected, too large, empty); [`SinkError::Flush`] says why a flush (or a close of the
/// sink) failed.
///
/// # Cancel safety
///
/// Dropping the sink while one of its frames waits in line drops that frame, unsent (as
/// dropping a [`SendFuture`](crate::SendFuture) does); a frame already in the buffer is sent.
/// [`FrameSink::cancel_pending`] hands the waiting frame back instead. Dropping a
/// `forward`, `send` or `flush` future that uses the sink leaves the waiting frame in the sink.
///
/// # Examples
///
/// ```
/// use futures::SinkExt;
/// use tidegate::{AsyncClient, Bytes};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("async-frame-sink-example").unwrap();
/// tidegate::block_on(async {
///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
///     let mut sink = client.sink();
///     sink.feed(Bytes::from("one ")).await.unwrap();
///     sink.send(Bytes::from("two")).await.unwrap(); // feeds, then flushes
///     assert_eq!(client.stats().bytes_written, 7);
///     sink.close().await.unwrap(); // flushes; the connection stays open
///     assert!(!client.is_closed());
///     assert!(client.close().await.unwrap().is_clean());
/// });
/// ```
#[must_use = "sinks do nothing unless used"]
pub struct FrameSink {
    conn: Connection,
    /// The sink's frame waiting for room, if any.
    pending: Option<SendOp<Connection>>,
    /// Whether frames were accepted since the last completed flush.
    unflushed: bool,
    /// The flush in progress. Invariant: started after the last `start_send`, so it covers
    /// every frame of this sink.
    flush: Option<Wait<Result<(), FlushError>>>,
}

impl fmt::Debug for FrameSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameSink")
            .field("conn", &self.conn)
            .field("pending", &self.pending)
            .field("unflushed", &self.unflushed)
            .field("flushing", &self.flush.is_some())
            .finish()
    }
}

impl FrameSink {
    pub(crate) fn new(conn: Connection) -> Self {
        Self { conn, pending: None, unflushed: false, flush: None }
    }

    /// Returns the connection the sink sends on.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-sink-connection-example").unwrap();
    /// let client = tidegate::block_on(AsyncClient::connect(&listener.url())).unwrap();
    /// assert_eq!(client.sink().connection().endpoint().scheme(), "mem");
    /// ```
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Returns whether a frame of this sink is waiting in line for room.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-sink-has-pending-example").unwrap();
    /// let client = tidegate::block_on(AsyncClient::connect(&listener.url())).unwrap();
    /// assert!(!client.sink().has_pending());
    /// ```
    pub fn has_pending(&self) -> bool {
        self.pending.as_ref().is_some_and(SendOp::is_queued)
    }

    /// Takes the sink's waiting frame out of the line and returns it, if there is one that
    /// was not accepted yet. `None` if there is none, or if the driver already moved it into
    /// the buffer (then it will be sent).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use futures::SinkExt;
    /// use tidegate::{AsyncClient, Bytes};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-sink-cancel-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::builder().capacity(4).connect(&listener.url()).await.unwrap();
    ///     let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    ///     peer.pause();
    ///     let mut sink = client.sink();
    ///     sink.feed(Bytes::from("full")).await.unwrap();
    ///     sink.feed(Bytes::from("wait")).await.unwrap(); // joins the line
    ///     assert!(sink.has_pending());
    ///     assert_eq!(sink.cancel_pending().unwrap(), "wait");
    ///     assert_eq!(client.stats().waiters, 0);
    /// });
    /// ```
    pub fn cancel_pending(&mut self) -> Option<Bytes> {
        self.pending.take().and_then(SendOp::cancel)
    }

    /// Drives the waiting frame, if any, until it is accepted or fails.
    fn poll_pending(&mut self, waker: &Waker) -> Poll<Result<(), SinkError>> {
        let Some(op) = self.pending.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let result = match op.poll_with(waker) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(result) => result,
        };
        self.pending = None;
        Poll::Ready(result.map_err(SinkError::Send))
    }
}

impl Sink<Bytes> for FrameSink {
    type Error = SinkError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SinkError>> {
        self.get_mut().poll_pending(cx.waker())
    }

    /// # Panics
    ///
    /// If called while the previous frame still waits, that is, without a `poll_ready` that
    /// returned `Ready(Ok(()))` since the last `start_send`.
    fn start_send(self: Pin<&mut Self>, frame: Bytes) -> Result<(), SinkError> {
        let this = self.get_mut();
        assert!(
            this.pending.is_none(),
            "FrameSink::start_send called without poll_ready returning Ready(Ok(()))"
        );
        let deadline = this.conn.config().send_timeout_duration().map(|t| Instant::now() + t);
        let mut op = this.conn.clone().send_owned(frame, deadline);
        // Any flush in progress was fixed before this frame: the next one must cover it.
        this.flush = None;
        this.unflushed = true;
        // Join the line now. The next `poll_*` call polls again with the task's waker.
        match op.poll_with(Waker::noop()) {
            Poll::Ready(result) => result.map_err(SinkError::Send),
            Poll::Pending => {
                this.pending = Some(op);
                Ok(())
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SinkError>> {
        let this = self.get_mut();
        if let Err(err) = std::task::ready!(this.poll_pending(cx.waker())) {
            return Poll::Ready(Err(err));
        }
        if !this.unflushed {
            return Poll::Ready(Ok(()));
        }
        let flush = this.flush.get_or_insert_with(|| {
            // The core's flush borrows its connection; the boxed future owns a handle.
            let conn = this.conn.clone();
            Box::pin(async move { conn.flush(None).await })
        });
        let result = std::task::ready!(flush.as_mut().poll(cx));
        this.flush = None;
        this.unflushed = result.is_err();
        Poll::Ready(result.map_err(SinkError::Flush))
    }

    /// Flushes, as [`poll_flush`](Sink::poll_flush) does; the connection stays open.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SinkError>> {
        self.poll_flush(cx)
    }
}

impl Drop for FrameSink {
    fn drop(&mut self) {
        if self.cancel_pending().is_some() {
            log::debug!("a FrameSink was dropped with a frame waiting for room; it was not sent");
        }
    }
}

/// Why a [`FrameSink`] operation failed.
///
/// # Examples
///
/// ```
/// use tidegate::{Bytes, SendError, SinkError};
///
/// let err = SinkError::Send(SendError::Closed(Bytes::from("frame")));
/// assert_eq!(err.into_frame().unwrap(), "frame");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum SinkError {
    /// A frame could not be sent; the error carries it.
    Send(SendError<Bytes>),
    /// A flush (or a close of the sink, which flushes) did not complete.
    Flush(FlushError),
}

impl SinkError {
    /// Returns the frame that could not be sent, for [`SinkError::Send`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{FlushError, SinkError};
    ///
    /// assert!(SinkError::Flush(FlushError::Timeout).into_frame().is_none());
    /// ```
    pub fn into_frame(self) -> Option<Bytes> {
        match self {
            Self::Send(err) => Some(err.into_inner()),
            Self::Flush(_) => None,
        }
    }

    /// Returns whether the frame's send or the flush gave up because its deadline passed.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Bytes, FlushError, SendError, SinkError};
    ///
    /// assert!(SinkError::Flush(FlushError::Timeout).is_timeout());
    /// assert!(SinkError::Send(SendError::Timeout(Bytes::new())).is_timeout());
    /// assert!(!SinkError::Send(SendError::Closed(Bytes::new())).is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Send(err) => err.is_timeout(),
            Self::Flush(err) => err.is_timeout(),
        }
    }

    /// Returns whether the connection is closed or disconnected, so the sink cannot send
    /// any more.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Bytes, SendError, SinkError};
    ///
    /// assert!(SinkError::Send(SendError::Closed(Bytes::new())).is_closed());
    /// assert!(!SinkError::Send(SendError::Timeout(Bytes::new())).is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        match self {
            Self::Send(err) => err.is_closed(),
            Self::Flush(err) => !matches!(err, FlushError::Timeout),
        }
    }
}

impl From<SendError<Bytes>> for SinkError {
    fn from(err: SendError<Bytes>) -> Self {
        Self::Send(err)
    }
}

impl From<FlushError> for SinkError {
    fn from(err: FlushError) -> Self {
        Self::Flush(err)
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Send(err) => fmt::Display::fmt(err, f),
            Self::Flush(err) => fmt::Display::fmt(err, f),
        }
    }
}

/// `Send` and `Flush` are transparent: they display the inner error and pass on its source.
impl Error for SinkError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Send(err) => err.source(),
            Self::Flush(err) => err.source(),
        }
    }
}
