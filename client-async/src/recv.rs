//! The receive side of [`AsyncClient`](crate::AsyncClient): a future per receive, and a
//! [`Stream`](futures_core::Stream) of everything received.
//!
//! Both wrap the core's [`RecvOp`], polled with the task's waker. The core's I/O driver wakes
//! that waker when data arrives for this receiver, when the stream ends, or when a deadline
//! passes; a pending receive costs no CPU until then. Receivers are served in the order they
//! started waiting, and dropping one loses no data: bytes leave the inbound buffer only when a
//! receive returns them.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::{FusedStream, Stream};
use tidegate_core::{Connection, RecvError, RecvOp};

use crate::ops::op_future;

/// A receive in progress, returned by [`AsyncClient::recv`](crate::AsyncClient::recv) and
/// [`AsyncClient::recv_timeout`](crate::AsyncClient::recv_timeout).
///
/// Resolves to `Ok(Some(bytes))` (a chunk, or a whole frame with framing), to `Ok(None)` once
/// the stream ended in order after everything before the end was received, or to a
/// [`RecvError`].
///
/// # Cancel safety
///
/// Cancel safe: dropping it before it completes loses no data; the next receive gets what this
/// one would have. With `select!`, racing a receive against a timer or a shutdown signal is
/// fine.
///
/// # Panics
///
/// Polling after it returned `Ready` panics.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tidegate::{AsyncClient, RecvFuture};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("async-recv-future-example").unwrap();
/// tidegate::block_on(async {
///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
///     let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
///     peer.write(b"ack 1");
///     let recv: RecvFuture<'_> = client.recv();
///     assert_eq!(recv.await.unwrap().unwrap(), "ack 1");
/// });
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct RecvFuture<'a> {
    op: RecvOp<&'a Connection>,
    done: bool,
}

impl<'a> RecvFuture<'a> {
    pub(crate) fn new(op: RecvOp<&'a Connection>) -> Self {
        Self { op, done: false }
    }
}

op_future!(RecvFuture<'_>, Result<Option<Bytes>, RecvError>);

/// Everything the connection receives, as a [`Stream`], returned by
/// [`AsyncClient::incoming`](crate::AsyncClient::incoming).
///
/// Yields `Ok(bytes)` for each chunk (or whole frame, with framing) in order. It ends (`None`)
/// after the stream ended in order; after a failure it yields the error once, then ends. It
/// holds a handle to the connection, so the connection stays open while it lives.
///
/// # Cancel safety
///
/// Dropping it, or a `next()` future on it, loses no data: what it had not yielded stays for
/// the next receive.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use futures::StreamExt;
/// use tidegate::AsyncClient;
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("async-incoming-example").unwrap();
/// tidegate::block_on(async {
///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
///     let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
///     peer.write(b"one two");
///     peer.close();
///     let mut received = Vec::new();
///     let mut incoming = client.incoming();
///     while let Some(chunk) = incoming.next().await {
///         received.extend_from_slice(&chunk.unwrap());
///     }
///     assert_eq!(received, b"one two");
/// });
/// ```
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct Incoming {
    conn: Connection,
    /// The receive under way, if any; `None` also once the stream is over.
    op: Option<RecvOp<Connection>>,
    over: bool,
}

impl Incoming {
    pub(crate) fn new(conn: Connection) -> Self {
        Self { conn, op: None, over: false }
    }
}

impl Stream for Incoming {
    type Item = Result<Bytes, RecvError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.over {
            return Poll::Ready(None);
        }
        let op = this.op.get_or_insert_with(|| this.conn.clone().recv_owned(None));
        let result = match op.poll_with(cx.waker()) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(result) => result,
        };
        this.op = None;
        Poll::Ready(match result {
            Ok(Some(bytes)) => Some(Ok(bytes)),
            Ok(None) => {
                this.over = true;
                None
            }
            Err(err) => {
                this.over = true;
                Some(Err(err))
            }
        })
    }
}

impl FusedStream for Incoming {
    fn is_terminated(&self) -> bool {
        self.over
    }
}
