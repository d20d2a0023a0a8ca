//! The send side of [`AsyncClient`]: frames, batches and urgent frames, flushing, and the
//! [`FrameSink`].

use std::time::{Duration, Instant};

use bytes::Bytes;
use tidegate_core::{FrameBatch, TrySendError};

use crate::AsyncClient;
use crate::ops::{FlushFuture, OwnedSendFuture, SendBatchFuture, SendFuture};
use crate::sink::FrameSink;

// Named in the docs only.
#[cfg(doc)]
use crate::AsyncClientBuilder;

impl AsyncClient {
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
    /// use tidegate::{AsyncClient, SendError};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-send-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::builder().capacity(8).connect(&listener.url()).await.unwrap();
    ///     client.send(&b"12345678"[..]).await.unwrap();
    ///     let err = client.send(&b"123456789"[..]).await.unwrap_err();
    ///     assert!(matches!(err, SendError::TooLarge { max_len: 8, .. }));
    ///     assert_eq!(err.into_inner().len(), 9);
    /// });
    /// ```
    pub fn send(&self, frame: impl Into<Bytes>) -> SendFuture<'_> {
        SendFuture::new(self.conn.send(frame.into(), self.default_deadline()))
    }

    /// The deadline of the configured send timeout, counted from now.
    fn default_deadline(&self) -> Option<Instant> {
        self.conn.config().send_timeout_duration().map(|t| Instant::now() + t)
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
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-send-timeout-example").unwrap();
    /// tidegate::block_on(async {
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

    /// Sends `frame`, waiting for room until `deadline` at most: the form of
    /// [`AsyncClient::send_timeout`] for a caller that has one deadline for several steps.
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::send_timeout`]; a deadline already past times out at once unless the
    /// frame goes in at the first poll.
    ///
    /// # Cancel safety
    ///
    /// As [`AsyncClient::send`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-send-deadline-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     let deadline = Instant::now() + Duration::from_secs(1);
    ///     client.send_deadline("request", deadline).await.unwrap();
    ///     client.flush_deadline(deadline).await.unwrap();
    /// });
    /// ```
    pub fn send_deadline(&self, frame: impl Into<Bytes>, deadline: Instant) -> SendFuture<'_> {
        SendFuture::new(self.conn.send(frame.into(), Some(deadline)))
    }

    /// Sends `frame` as [`AsyncClient::send`] does, with a future that owns a handle to the
    /// connection: it is `'static`, so it can be spawned (`tokio::spawn(client.send_owned(frame))`)
    /// or kept in a struct without a borrow of the client.
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::send`].
    ///
    /// # Cancel safety
    ///
    /// As [`AsyncClient::send`]; see [`OwnedSendFuture`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-send-owned-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     let sends: Vec<_> = (0..3).map(|i| client.send_owned(format!("{i}"))).collect();
    ///     for send in sends {
    ///         send.await.unwrap();
    ///     }
    ///     assert_eq!(client.stats().frames_accepted, 3);
    /// });
    /// ```
    pub fn send_owned(&self, frame: impl Into<Bytes>) -> OwnedSendFuture {
        OwnedSendFuture::new(self.conn.clone().send_owned(frame.into(), self.default_deadline()))
    }

    /// Like [`AsyncClient::send_owned`], waiting at most `timeout` (counted from this call).
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::send_timeout`].
    ///
    /// # Cancel safety
    ///
    /// As [`AsyncClient::send`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-send-owned-timeout-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     client.send_owned_timeout("frame", Duration::from_secs(1)).await.unwrap();
    /// });
    /// ```
    pub fn send_owned_timeout(
        &self,
        frame: impl Into<Bytes>,
        timeout: Duration,
    ) -> OwnedSendFuture {
        self.send_owned_deadline(frame, Instant::now() + timeout)
    }

    /// Like [`AsyncClient::send_owned`], waiting until `deadline` at most.
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::send_deadline`].
    ///
    /// # Cancel safety
    ///
    /// As [`AsyncClient::send`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-send-owned-deadline-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     let deadline = Instant::now() + Duration::from_secs(1);
    ///     client.send_owned_deadline("frame", deadline).await.unwrap();
    /// });
    /// ```
    pub fn send_owned_deadline(
        &self,
        frame: impl Into<Bytes>,
        deadline: Instant,
    ) -> OwnedSendFuture {
        OwnedSendFuture::new(self.conn.clone().send_owned(frame.into(), Some(deadline)))
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
    /// use tidegate::{AsyncClient, TrySendError};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-try-send-example").unwrap();
    /// let client = tidegate::block_on(AsyncClient::connect(&listener.url())).unwrap();
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
    /// **is sent**, all of it. [`SendBatchFuture::cancel`] tells which, and hands the batch
    /// back in the first case. A batch is never sent in part.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{AsyncClient, FrameBatch};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-send-batch-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     let mut batch = FrameBatch::with_capacity(64 * 64);
    ///     for i in 0..64u8 {
    ///         batch.push([i; 64]);
    ///     }
    ///     client.send_batch(batch).await.unwrap();
    ///     assert_eq!(client.stats().frames_accepted, 64);
    /// });
    /// ```
    pub fn send_batch(&self, batch: FrameBatch) -> SendBatchFuture<'_> {
        SendBatchFuture::new(self.conn.send_batch(batch, self.default_deadline()))
    }

    /// Sends every frame of `batch` as one unit, waiting at most `timeout` (counted from this
    /// call) for room.
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::send_batch`];
    /// [`SendError::Timeout`](crate::SendError::Timeout) carries the whole batch back when
    /// `timeout` passes.
    ///
    /// # Cancel safety
    ///
    /// As [`AsyncClient::send_batch`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{AsyncClient, FrameBatch};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-send-batch-timeout-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::builder().capacity(8).connect(&listener.url()).await.unwrap();
    ///     let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    ///     peer.pause(); // the peer stops reading
    ///     client.send("12345678").await.unwrap();
    ///     let batch: FrameBatch = ["ping", "pong"].into_iter().collect();
    ///     let err = client.send_batch_timeout(batch, Duration::from_millis(50)).await.unwrap_err();
    ///     assert!(err.is_timeout());
    ///     assert_eq!(err.into_inner().len(), 2);
    /// });
    /// ```
    pub fn send_batch_timeout(&self, batch: FrameBatch, timeout: Duration) -> SendBatchFuture<'_> {
        self.send_batch_deadline(batch, Instant::now() + timeout)
    }

    /// Sends every frame of `batch` as one unit, waiting for room until `deadline` at most.
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::send_batch_timeout`].
    ///
    /// # Cancel safety
    ///
    /// As [`AsyncClient::send_batch`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tidegate::{AsyncClient, FrameBatch};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-send-batch-deadline-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     let batch: FrameBatch = ["ping", "pong"].into_iter().collect();
    ///     let deadline = Instant::now() + Duration::from_secs(1);
    ///     client.send_batch_deadline(batch, deadline).await.unwrap();
    /// });
    /// ```
    pub fn send_batch_deadline(&self, batch: FrameBatch, deadline: Instant) -> SendBatchFuture<'_> {
        SendBatchFuture::new(self.conn.send_batch(batch, Some(deadline)))
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
    /// use tidegate::{AsyncClient, FrameBatch, TrySendError};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-try-send-batch-example").unwrap();
    /// let client = tidegate::block_on(AsyncClient::connect(&listener.url())).unwrap();
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
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-send-urgent-example").unwrap();
    /// tidegate::block_on(async {
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
        SendFuture::new(self.conn.send_urgent(frame.into(), self.default_deadline()))
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
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-try-send-urgent-example").unwrap();
    /// let client = tidegate::block_on(AsyncClient::connect(&listener.url())).unwrap();
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
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-flush-example").unwrap();
    /// tidegate::block_on(async {
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
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-flush-timeout-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     client.flush_timeout(Duration::from_secs(5)).await.unwrap();
    /// });
    /// ```
    pub fn flush_timeout(&self, timeout: Duration) -> FlushFuture<'_> {
        self.flush_deadline(Instant::now() + timeout)
    }

    /// Like [`AsyncClient::flush`], giving up at `deadline`.
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::flush_timeout`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future only stops waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-flush-deadline-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     client.send("data").await.unwrap();
    ///     client.flush_deadline(Instant::now() + Duration::from_secs(5)).await.unwrap();
    /// });
    /// ```
    pub fn flush_deadline(&self, deadline: Instant) -> FlushFuture<'_> {
        FlushFuture::new(self.conn.flush(Some(deadline)))
    }

    /// Returns a [`Sink`](futures_sink::Sink) of frames on this connection, for `stream.forward(sink)`
    /// and `SinkExt`. It owns a handle to the connection.
    ///
    /// Closing the sink flushes it and leaves the connection open: other clones go on
    /// sending, and the connection is closed by one explicit [`AsyncClient::close`].
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::{SinkExt, StreamExt, stream};
    /// use tidegate::{AsyncClient, Bytes};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-sink-method-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     let frames = stream::iter(["a", "b", "c"]).map(|s| Ok(Bytes::from(s)));
    ///     frames.forward(client.sink()).await.unwrap();
    ///     assert_eq!(client.stats().bytes_written, 3, "forward flushes the sink when it ends");
    ///     client.send("d").await.unwrap(); // the connection stays open
    ///     assert!(client.close().await.unwrap().is_clean());
    /// });
    /// ```
    pub fn sink(&self) -> FrameSink {
        FrameSink::new(self.conn.clone())
    }
}
