//! The sending side of [`Connection`]: single frames, urgent frames, batches, and flush.

use std::time::Instant;

use bytes::Bytes;

use crate::conn::flush::FlushOp;
use crate::conn::sealed::Sealed;
use crate::conn::send::SendOp;
use crate::conn::send_batch::SendBatchOp;
use crate::connection::Connection;
use crate::state::batch::FrameBatch;
use crate::state::error::TrySendError;

impl Connection {
    /// Puts `frame` into the buffer if it fits now and no sender is waiting.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if the frame does not fit now or others wait ahead of it, and the
    /// other variants as described there. The error contains the frame.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection, TrySendError};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("try-send-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new().capacity(4)).unwrap();
    /// let err = conn.try_send(Bytes::from_static(b"too long")).unwrap_err();
    /// assert!(matches!(err, TrySendError::TooLarge { max_len: 4, .. }));
    /// ```
    pub fn try_send(&self, frame: Bytes) -> Result<(), TrySendError<Bytes>> {
        self.counted(self.shared().try_send(frame, false))
    }

    /// Offers `frame` as [`Connection::try_send`] does, without counting a refusal in
    /// [`Stats::try_send_refused`](crate::Stats::try_send_refused): the first step of a send
    /// that goes on to wait in line with [`Connection::send`] when the frame does not fit now
    /// (the blocking facade's `send` is one: it costs no operation and no waker when there is
    /// room).
    ///
    /// # Errors
    ///
    /// As [`Connection::try_send`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("offer-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let frame = Bytes::from_static(b"hi");
    /// if let Err(full) = conn.offer(frame) {
    ///     tidegate::block_on(conn.send(full.into_inner(), None)).unwrap();
    /// }
    /// assert_eq!(conn.stats().try_send_refused, 0);
    /// ```
    #[inline]
    pub fn offer(&self, frame: Bytes) -> Result<(), TrySendError<Bytes>> {
        self.shared().try_send(frame, false)
    }

    /// Offers `batch` as [`Connection::try_send_batch`] does, without counting a refusal; see
    /// [`Connection::offer`].
    ///
    /// # Errors
    ///
    /// As [`Connection::try_send_batch`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, Connection, FrameBatch};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("offer-batch-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// conn.offer_batch(["a", "b"].into_iter().collect()).unwrap();
    /// assert_eq!(conn.stats().frames_accepted, 2);
    /// ```
    pub fn offer_batch(&self, batch: FrameBatch) -> Result<(), TrySendError<FrameBatch>> {
        self.shared().try_send_batch(batch)
    }

    /// Counts a refusal as full of the application's own `try_send`.
    fn counted<F>(&self, result: Result<(), TrySendError<F>>) -> Result<(), TrySendError<F>> {
        if matches!(result, Err(TrySendError::Full(_))) {
            self.shared().lock().try_refused();
        }
        result
    }

    /// Like [`Connection::try_send`], for an urgent (control) frame: it may use the reserve
    /// kept for urgent frames ([`Config::urgent_reserve`](crate::Config::urgent_reserve)), passes data senders that wait,
    /// and goes on the wire at the next frame boundary, ahead of data frames not yet started.
    ///
    /// # Errors
    ///
    /// As [`Connection::try_send`]: [`TrySendError::Full`] if it does not fit now or urgent
    /// frames wait ahead of it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-try-send-urgent").unwrap();
    /// let config = Config::new().capacity(100).urgent_reserve(10);
    /// let conn = Connection::open(&listener.url(), config).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// conn.try_send(Bytes::from(vec![0; 90])).unwrap();
    /// assert!(conn.try_send(Bytes::from_static(b"data")).unwrap_err().is_full());
    /// conn.try_send_urgent(Bytes::from_static(b"ping")).unwrap();
    /// ```
    pub fn try_send_urgent(&self, frame: Bytes) -> Result<(), TrySendError<Bytes>> {
        self.counted(self.shared().try_send(frame, true))
    }

    /// Starts sending `frame`: the returned operation resolves once the frame is in the buffer,
    /// or with an error carrying the frame. `deadline` bounds the wait for room; `None` waits
    /// as long as it takes (the configured send timeout is applied by the facades, not here).
    ///
    /// # Errors
    ///
    /// The operation resolves to a [`SendError`](crate::SendError) that carries the frame:
    /// [`SendError::Timeout`](crate::SendError::Timeout) once `deadline` passes, [`SendError::TooLarge`](crate::SendError::TooLarge) and
    /// [`SendError::Empty`](crate::SendError::Empty) at once, [`SendError::Closed`](crate::SendError::Closed) or [`SendError::Disconnected`](crate::SendError::Disconnected) when
    /// the connection no longer takes frames.
    ///
    /// # Cancel safety
    ///
    /// See [`SendOp`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("send-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// tidegate::block_on(conn.send(Bytes::from_static(b"hi"), None)).unwrap();
    /// ```
    pub fn send(&self, frame: Bytes, deadline: Option<Instant>) -> SendOp<&Self> {
        SendOp::new(self, frame, false, deadline)
    }

    /// Like [`Connection::send`], for an urgent (control) frame: it may use the reserve kept
    /// for urgent frames ([`Config::urgent_reserve`](crate::Config::urgent_reserve)), waits (if it must) in a line of its
    /// own that is served before every data sender, and goes on the wire at the next frame
    /// boundary, ahead of data frames not yet started.
    ///
    /// # Errors
    ///
    /// As [`Connection::send`].
    ///
    /// # Cancel safety
    ///
    /// See [`SendOp`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-send-urgent").unwrap();
    /// let config = Config::new().capacity(100).urgent_reserve(10);
    /// let conn = Connection::open(&listener.url(), config).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// conn.try_send(Bytes::from(vec![0; 90])).unwrap();
    /// tidegate::block_on(conn.send_urgent(Bytes::from_static(b"ping"), None)).unwrap();
    /// ```
    pub fn send_urgent(&self, frame: Bytes, deadline: Option<Instant>) -> SendOp<&Self> {
        SendOp::new(self, frame, true, deadline)
    }

    /// Like [`Connection::send`], but the operation owns a handle to the connection, so it can
    /// be stored (for example inside a `Sink`).
    ///
    /// # Errors
    ///
    /// As [`Connection::send`].
    ///
    /// # Cancel safety
    ///
    /// See [`SendOp`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("send-owned-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let op = conn.clone().send_owned(Bytes::from_static(b"hi"), None);
    /// tidegate::block_on(op).unwrap();
    /// ```
    pub fn send_owned(self, frame: Bytes, deadline: Option<Instant>) -> SendOp<Self> {
        SendOp::new(self, frame, false, deadline)
    }

    /// Puts every frame of `batch` into the buffer, as one unit, only if all of them fit now
    /// and no one is waiting; never waits.
    ///
    /// The frames go in together, back to back and in order, under one lock, or none does.
    /// A batch counts as one sender: it passes no one waiting, and it fits the capacity (less
    /// the urgent reserve) and any shared [`Budget`](crate::Budget) as a single frame of its
    /// total length (headers included, with framing) would. Its frames are counted one by one
    /// in [`Stats`](crate::Stats) and in a close report.
    ///
    /// # Errors
    ///
    /// The error contains the whole batch: [`TrySendError::Full`] if it does not fit now or
    /// others wait ahead of it, [`TrySendError::TooLarge`] if it could never fit,
    /// [`TrySendError::Empty`] for a batch without frames or, without framing, with an empty
    /// frame, and the other variants as for [`Connection::try_send`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, Connection, FrameBatch};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-try-send-batch").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new().capacity(1024)).unwrap();
    /// let mut batch = FrameBatch::new();
    /// batch.push("one");
    /// batch.push("two");
    /// conn.try_send_batch(batch).unwrap();
    /// assert_eq!(conn.stats().frames_accepted, 2);
    /// ```
    pub fn try_send_batch(&self, batch: FrameBatch) -> Result<(), TrySendError<FrameBatch>> {
        self.counted(self.shared().try_send_batch(batch))
    }

    /// Starts sending every frame of `batch` as one unit: the returned operation resolves once
    /// all of them are in the buffer, or with an error carrying the whole batch. `deadline`
    /// bounds the wait for room, as for [`Connection::send`].
    ///
    /// The batch takes one place in the same FIFO line as single frames: it passes no one and
    /// no one passes it. When there is room for all of it, the driver moves it into the buffer
    /// in one step; its frames then go on the wire back to back and in order, never
    /// interleaved with other frames.
    ///
    /// # Errors
    ///
    /// The operation resolves to a [`SendError`](crate::SendError) that carries the batch:
    /// [`SendError::TooLarge`](crate::SendError::TooLarge) at once if its total length (headers included, with framing)
    /// exceeds the capacity less the urgent reserve, or a shared budget's limit;
    /// [`SendError::Empty`](crate::SendError::Empty) at once for a batch without frames or, without framing, with an
    /// empty frame; otherwise as [`Connection::send`].
    ///
    /// # Cancel safety
    ///
    /// See [`SendBatchOp`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, Connection, FrameBatch};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-send-batch").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let mut batch = FrameBatch::new();
    /// for i in 0..10u8 {
    ///     batch.push([i; 64]);
    /// }
    /// tidegate::block_on(conn.send_batch(batch, None)).unwrap();
    /// assert_eq!(conn.stats().frames_accepted, 10);
    /// ```
    pub fn send_batch(&self, batch: FrameBatch, deadline: Option<Instant>) -> SendBatchOp<&Self> {
        SendBatchOp::new(self, batch, deadline)
    }

    /// Like [`Connection::send_batch`], but the operation owns a handle to the connection, so
    /// it can be stored.
    ///
    /// # Errors
    ///
    /// As [`Connection::send_batch`].
    ///
    /// # Cancel safety
    ///
    /// See [`SendBatchOp`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, Connection, FrameBatch};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-send-batch-owned").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let mut batch = FrameBatch::new();
    /// batch.push("hi");
    /// tidegate::block_on(conn.clone().send_batch_owned(batch, None)).unwrap();
    /// ```
    pub fn send_batch_owned(
        self,
        batch: FrameBatch,
        deadline: Option<Instant>,
    ) -> SendBatchOp<Self> {
        SendBatchOp::new(self, batch, deadline)
    }

    /// Starts a flush: the returned operation resolves once every byte accepted before this
    /// call has been written to the link. Frames still waiting for room are not included.
    ///
    /// # Errors
    ///
    /// The operation resolves to [`FlushError::Timeout`](crate::FlushError::Timeout) once `deadline` passes, and to
    /// [`FlushError::Closed`](crate::FlushError::Closed) or [`FlushError::Disconnected`](crate::FlushError::Disconnected) if the connection ends first or
    /// had already ended when the flush was first polled.
    ///
    /// # Cancel safety
    ///
    /// See [`FlushOp`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("flush-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// conn.try_send(Bytes::from_static(b"hi")).unwrap();
    /// tidegate::block_on(conn.flush(None)).unwrap();
    /// assert_eq!(conn.stats().bytes_written, 2);
    /// ```
    pub fn flush(&self, deadline: Option<Instant>) -> FlushOp<'_> {
        FlushOp::new(self.shared(), deadline)
    }
}
