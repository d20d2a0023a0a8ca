//! The owned split of an [`AsyncClient`]: [`AsyncSendHalf`] sends, [`AsyncRecvHalf`]
//! receives, each with its own close, for a program that gives the two directions to two
//! tasks (as `Framed::split` does with tokio-util).

use std::time::{Duration, Instant};

use tidegate_core::{Bytes, Connection, FrameBatch, Stats, TryRecvError, TrySendError};

use crate::AsyncClient;
use crate::ops::{
    CloseFuture, FlushFuture, OwnedSendFuture, SendBatchFuture, SendFuture, ShutdownWriteFuture,
};
use crate::recv::{Incoming, RecvFuture};
use crate::sink::FrameSink;

impl AsyncClient {
    /// Splits the client into a sending half and a receiving half that own their handles,
    /// for two tasks: one sends, one receives. Each has its own close:
    /// [`AsyncSendHalf::close`] is a half-close (the peer sees the end of what was sent, and
    /// receiving goes on), [`AsyncRecvHalf::close`] closes the connection.
    ///
    /// Other clones of the client, if any, keep working: the halves are handles of the same
    /// connection, in the same FIFO line.
    ///
    /// # Examples
    ///
    /// A task that asks and half-closes, and one that reads the answers, on the same
    /// connection:
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-split-example").unwrap();
    /// let client = tidegate::block_on(AsyncClient::connect(&listener.url())).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.hold_open();
    /// peer.write(b"answer");
    /// let (tx, rx) = client.into_split();
    /// let asking = async move {
    ///     tx.send("question").await?;
    ///     tx.close().await?; // the half-close: the peer sees our end
    ///     Ok::<(), Box<dyn std::error::Error>>(())
    /// };
    /// tidegate::block_on(asking).unwrap();
    /// peer.close();
    /// let reading = async move {
    ///     let mut got = Vec::new();
    ///     while let Some(chunk) = rx.recv().await? {
    ///         got.extend_from_slice(&chunk);
    ///     }
    ///     Ok::<_, tidegate::RecvError>((got, rx.close().await.unwrap()))
    /// };
    /// let (answer, report) = tidegate::block_on(reading).unwrap();
    /// assert_eq!(answer, b"answer");
    /// assert!(report.is_clean());
    /// ```
    pub fn into_split(self) -> (AsyncSendHalf, AsyncRecvHalf) {
        (AsyncSendHalf { client: self.clone() }, AsyncRecvHalf { client: self })
    }
}

/// The sending half of an [`AsyncClient`], from [`AsyncClient::into_split`]: every way to
/// send and flush, the sink, and a close that is a half-close.
///
/// # Examples
///
/// See [`AsyncClient::into_split`].
#[derive(Debug)]
pub struct AsyncSendHalf {
    client: AsyncClient,
}

impl AsyncSendHalf {
    /// As [`AsyncClient::send`], which see for its errors, its cancel safety and an
    /// example.
    pub fn send(&self, frame: impl Into<Bytes>) -> SendFuture<'_> {
        self.client.send(frame)
    }

    /// As [`AsyncClient::send_timeout`], which see for its errors, its cancel safety and an
    /// example.
    pub fn send_timeout(&self, frame: impl Into<Bytes>, timeout: Duration) -> SendFuture<'_> {
        self.client.send_timeout(frame, timeout)
    }

    /// As [`AsyncClient::send_deadline`], which see for its errors, its cancel safety and an
    /// example.
    pub fn send_deadline(&self, frame: impl Into<Bytes>, deadline: Instant) -> SendFuture<'_> {
        self.client.send_deadline(frame, deadline)
    }

    /// As [`AsyncClient::send_owned`], which see for its errors, its cancel safety and an
    /// example.
    pub fn send_owned(&self, frame: impl Into<Bytes>) -> OwnedSendFuture {
        self.client.send_owned(frame)
    }

    /// As [`AsyncClient::try_send`], which see for its errors, its cancel safety and an
    /// example.
    pub fn try_send(&self, frame: impl Into<Bytes>) -> Result<(), TrySendError<Bytes>> {
        self.client.try_send(frame)
    }

    /// As [`AsyncClient::send_batch`], which see for its errors, its cancel safety and an
    /// example.
    pub fn send_batch(&self, batch: FrameBatch) -> SendBatchFuture<'_> {
        self.client.send_batch(batch)
    }

    /// As [`AsyncClient::send_batch_timeout`], which see for its errors, its cancel safety and an
    /// example.
    pub fn send_batch_timeout(&self, batch: FrameBatch, timeout: Duration) -> SendBatchFuture<'_> {
        self.client.send_batch_timeout(batch, timeout)
    }

    /// As [`AsyncClient::send_batch_deadline`], which see for its errors, its cancel safety and an
    /// example.
    pub fn send_batch_deadline(&self, batch: FrameBatch, deadline: Instant) -> SendBatchFuture<'_> {
        self.client.send_batch_deadline(batch, deadline)
    }

    /// As [`AsyncClient::try_send_batch`], which see for its errors, its cancel safety and an
    /// example.
    pub fn try_send_batch(&self, batch: FrameBatch) -> Result<(), TrySendError<FrameBatch>> {
        self.client.try_send_batch(batch)
    }

    /// As [`AsyncClient::send_urgent`], which see for its errors, its cancel safety and an
    /// example.
    pub fn send_urgent(&self, frame: impl Into<Bytes>) -> SendFuture<'_> {
        self.client.send_urgent(frame)
    }

    /// As [`AsyncClient::try_send_urgent`], which see for its errors, its cancel safety and an
    /// example.
    pub fn try_send_urgent(&self, frame: impl Into<Bytes>) -> Result<(), TrySendError<Bytes>> {
        self.client.try_send_urgent(frame)
    }

    /// As [`AsyncClient::flush`], which see for its errors, its cancel safety and an
    /// example.
    pub fn flush(&self) -> FlushFuture<'_> {
        self.client.flush()
    }

    /// As [`AsyncClient::flush_timeout`], which see for its errors, its cancel safety and an
    /// example.
    pub fn flush_timeout(&self, timeout: Duration) -> FlushFuture<'_> {
        self.client.flush_timeout(timeout)
    }

    /// As [`AsyncClient::flush_deadline`], which see for its errors, its cancel safety and an
    /// example.
    pub fn flush_deadline(&self, deadline: Instant) -> FlushFuture<'_> {
        self.client.flush_deadline(deadline)
    }

    /// As [`AsyncClient::sink`], which see for its errors, its cancel safety and an
    /// example.
    pub fn sink(&self) -> FrameSink {
        self.client.sink()
    }

    /// As [`AsyncClient::stats`], which see for its errors, its cancel safety and an
    /// example.
    pub fn stats(&self) -> Stats {
        self.client.stats()
    }

    /// As [`AsyncClient::is_closed`], which see for its errors, its cancel safety and an
    /// example.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// As [`AsyncClient::connection`], which see for its errors, its cancel safety and an
    /// example.
    pub fn connection(&self) -> &Connection {
        self.client.connection()
    }

    /// Ends the sending: a half-close, as [`AsyncClient::shutdown_write`] — new sends are
    /// refused, what is buffered is drained, then the write side ends (for TCP, a FIN after
    /// the last byte). The [`AsyncRecvHalf`] goes on receiving until the peer ends its side.
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::shutdown_write`].
    ///
    /// # Cancel safety
    ///
    /// The half-close starts at the first poll and goes on if the future is dropped.
    ///
    /// # Examples
    ///
    /// See [`AsyncClient::into_split`].
    pub fn close(&self) -> ShutdownWriteFuture<'_> {
        self.client.shutdown_write()
    }

    /// Like [`AsyncSendHalf::close`], giving up `timeout` after this call (the half-close
    /// goes on).
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::shutdown_write_timeout`].
    ///
    /// # Cancel safety
    ///
    /// As [`AsyncSendHalf::close`].
    ///
    /// # Examples
    ///
    /// See [`AsyncClient::into_split`].
    pub fn close_timeout(&self, timeout: Duration) -> ShutdownWriteFuture<'_> {
        self.client.shutdown_write_timeout(timeout)
    }
}

/// The receiving half of an [`AsyncClient`], from [`AsyncClient::into_split`]: every way to
/// receive, the stream of what arrives, and the close of the connection.
///
/// # Examples
///
/// See [`AsyncClient::into_split`].
#[derive(Debug)]
pub struct AsyncRecvHalf {
    client: AsyncClient,
}

impl AsyncRecvHalf {
    /// As [`AsyncClient::recv`], which see for its errors, its cancel safety and an
    /// example.
    pub fn recv(&self) -> RecvFuture<'_> {
        self.client.recv()
    }

    /// As [`AsyncClient::recv_timeout`], which see for its errors, its cancel safety and an
    /// example.
    pub fn recv_timeout(&self, timeout: Duration) -> RecvFuture<'_> {
        self.client.recv_timeout(timeout)
    }

    /// As [`AsyncClient::recv_deadline`], which see for its errors, its cancel safety and an
    /// example.
    pub fn recv_deadline(&self, deadline: Instant) -> RecvFuture<'_> {
        self.client.recv_deadline(deadline)
    }

    /// As [`AsyncClient::try_recv`], which see for its errors, its cancel safety and an
    /// example.
    pub fn try_recv(&self) -> Result<Option<Bytes>, TryRecvError> {
        self.client.try_recv()
    }

    /// As [`AsyncClient::incoming`], which see for its errors, its cancel safety and an
    /// example.
    pub fn incoming(&self) -> Incoming {
        self.client.incoming()
    }

    /// As [`AsyncClient::close`], which see for its errors, its cancel safety and an
    /// example.
    pub fn close(&self) -> CloseFuture<'_> {
        self.client.close()
    }

    /// As [`AsyncClient::close_timeout`], which see for its errors, its cancel safety and an
    /// example.
    pub fn close_timeout(&self, timeout: Duration) -> CloseFuture<'_> {
        self.client.close_timeout(timeout)
    }

    /// As [`AsyncClient::close_deadline`], which see for its errors, its cancel safety and an
    /// example.
    pub fn close_deadline(&self, deadline: Instant) -> CloseFuture<'_> {
        self.client.close_deadline(deadline)
    }

    /// As [`AsyncClient::stats`], which see for its errors, its cancel safety and an
    /// example.
    pub fn stats(&self) -> Stats {
        self.client.stats()
    }

    /// As [`AsyncClient::connection`], which see for its errors, its cancel safety and an
    /// example.
    pub fn connection(&self) -> &Connection {
        self.client.connection()
    }
}
