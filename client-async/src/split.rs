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

/// Methods of a half that do what the [`AsyncClient`] method of the same name does.
macro_rules! delegate {
    ($( $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty; )*) => {
        $(
            #[doc = concat!("As [`AsyncClient::", stringify!($name), "`], which see for its errors, its cancel safety, and an example.")]
            pub fn $name(&self, $($arg: $ty),*) -> $ret {
                self.client.$name($($arg),*)
            }
        )*
    };
}

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
    /// ```
    /// use std::time::Duration;
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-split-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    ///     peer.hold_open();
    ///     let (tx, rx) = client.into_split();
    ///     tx.send("question").await.unwrap();
    ///     tx.close().await.unwrap(); // the half-close: the peer sees our end
    ///     peer.write(b"answer");
    ///     peer.close();
    ///     assert_eq!(rx.recv().await.unwrap().unwrap(), "answer");
    ///     assert_eq!(rx.recv().await.unwrap(), None);
    ///     assert!(rx.close().await.unwrap().is_clean());
    /// });
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
    delegate! {
        send(frame: impl Into<Bytes>) -> SendFuture<'_>;
        send_timeout(frame: impl Into<Bytes>, timeout: Duration) -> SendFuture<'_>;
        send_deadline(frame: impl Into<Bytes>, deadline: Instant) -> SendFuture<'_>;
        send_owned(frame: impl Into<Bytes>) -> OwnedSendFuture;
        try_send(frame: impl Into<Bytes>) -> Result<(), TrySendError<Bytes>>;
        send_batch(batch: FrameBatch) -> SendBatchFuture<'_>;
        send_batch_timeout(batch: FrameBatch, timeout: Duration) -> SendBatchFuture<'_>;
        send_batch_deadline(batch: FrameBatch, deadline: Instant) -> SendBatchFuture<'_>;
        try_send_batch(batch: FrameBatch) -> Result<(), TrySendError<FrameBatch>>;
        send_urgent(frame: impl Into<Bytes>) -> SendFuture<'_>;
        try_send_urgent(frame: impl Into<Bytes>) -> Result<(), TrySendError<Bytes>>;
        flush() -> FlushFuture<'_>;
        flush_timeout(timeout: Duration) -> FlushFuture<'_>;
        flush_deadline(deadline: Instant) -> FlushFuture<'_>;
        sink() -> FrameSink;
        stats() -> Stats;
        is_closed() -> bool;
        connection() -> &Connection;
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
    delegate! {
        recv() -> RecvFuture<'_>;
        recv_timeout(timeout: Duration) -> RecvFuture<'_>;
        recv_deadline(deadline: Instant) -> RecvFuture<'_>;
        try_recv() -> Result<Option<Bytes>, TryRecvError>;
        incoming() -> Incoming;
        close() -> CloseFuture<'_>;
        close_timeout(timeout: Duration) -> CloseFuture<'_>;
        close_deadline(deadline: Instant) -> CloseFuture<'_>;
        stats() -> Stats;
        connection() -> &Connection;
    }
}
