//! Receiving: [`RecvOp`]. Receivers wait in a FIFO line of their own on the inbound buffer;
//! bytes leave the buffer only when a receiver's poll returns them, so dropping a receive
//! loses nothing.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;

use crate::conn::ConnectionRef;
use crate::state::effects::Effects;
use crate::state::error::RecvError;

/// A receive in progress, returned by [`Connection::recv`](crate::Connection::recv) and [`Connection::recv_owned`](crate::Connection::recv_owned).
///
/// Resolves to the next chunk (or frame), to `None` at the end of the stream, or to a
/// [`RecvError`]. While nothing is there it waits in the connection's line of receivers, and
/// the driver wakes it when data arrives for it, the stream ends, or its deadline passes.
///
/// # Cancel safety
///
/// Dropping a pending `RecvOp` loses no data: bytes leave the inbound buffer only when a
/// receive returns them. The receiver leaves the line, and the next one is woken if something
/// is there for it.
///
/// # Panics
///
/// Polling after it returned `Ready` panics.
///
/// # Examples
///
/// ```
/// use std::task::Waker;
/// use std::time::Duration;
/// use tidegate::{Config, Connection, RecvOp};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-recvop").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
/// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
/// let mut op: RecvOp<&Connection> = conn.recv(None);
/// assert!(op.poll_with(Waker::noop()).is_pending());
/// assert!(op.is_queued());
/// drop(op); // leaves the line
/// assert_eq!(conn.stats().receivers, 0);
/// peer.write(b"kept");
/// let chunk = tidegate::block_on(conn.recv(None)).unwrap();
/// assert_eq!(chunk.unwrap(), "kept");
/// ```
#[must_use = "a receive does nothing unless polled"]
pub struct RecvOp<C: ConnectionRef> {
    conn: C,
    deadline: Option<Instant>,
    /// The most bytes it returns: a byte-stream read's buffer length, else `usize::MAX`.
    max: usize,
    /// The receiver's place in line, once it waits.
    ticket: Option<u64>,
    done: bool,
}

impl<C: ConnectionRef> fmt::Debug for RecvOp<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvOp")
            .field("deadline", &self.deadline)
            .field("max", &self.max)
            .field("ticket", &self.ticket)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<C: ConnectionRef> RecvOp<C> {
    /// A receive on `conn` whose wait ends at `deadline`.
    pub(crate) fn new(conn: C, deadline: Option<Instant>) -> Self {
        Self { conn, deadline, max: usize::MAX, ticket: None, done: false }
    }

    /// Makes the receive return at most `max` bytes (at least 1), as a byte-stream read into a
    /// buffer of that size wants: the rest of a chunk stays in the inbound buffer, and the
    /// rest of a decoded frame goes out first, to the next receive, as a frame of its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-recvop-at-most").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.write(b"abcdef");
    /// tidegate::block_on(async {
    ///     assert_eq!(conn.recv(None).at_most(4).await.unwrap().unwrap(), "abcd");
    ///     assert_eq!(conn.recv(None).await.unwrap().unwrap(), "ef");
    /// });
    /// ```
    pub fn at_most(mut self, max: usize) -> Self {
        self.max = max.max(1);
        self
    }

    /// Changes the most bytes the next poll returns (at least 1).
    pub(crate) fn set_max(&mut self, max: usize) {
        self.max = max.max(1);
    }

    /// Polls with a bare waker: the blocking facade's way in. On `Pending`, `waker` is woken
    /// when something may be there for this receiver, or its deadline passed.
    ///
    /// # Panics
    ///
    /// After it returned `Ready`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::{Poll, Waker};
    /// use std::time::Instant;
    /// use tidegate::{Config, Connection, RecvError};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-recvop-poll-with").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let mut op = conn.recv(Some(Instant::now()));
    /// assert!(matches!(op.poll_with(Waker::noop()), Poll::Ready(Err(RecvError::Timeout))));
    /// ```
    pub fn poll_with(&mut self, waker: &Waker) -> Poll<Result<Option<Bytes>, RecvError>> {
        assert!(!self.done, "RecvOp polled after completion");
        let shared = self.conn.shared();
        let mut fx = Effects::new(Instant::now);
        let polled = shared.inbound().poll_recv(
            &mut self.ticket,
            self.deadline,
            Some(waker),
            self.max,
            &mut fx,
        );
        shared.apply(fx);
        self.done = polled.is_ready();
        polled
    }

    /// Returns whether the receiver waits in line.
    ///
    /// # Examples
    ///
    /// See [`RecvOp`].
    pub fn is_queued(&self) -> bool {
        self.ticket.is_some()
    }
}

impl<C: ConnectionRef + Unpin> Future for RecvOp<C> {
    type Output = Result<Option<Bytes>, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_with(cx.waker())
    }
}

impl<C: ConnectionRef> Drop for RecvOp<C> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            let shared = self.conn.shared();
            let mut fx = Effects::new(Instant::now);
            shared.inbound().leave(ticket, &mut fx);
            shared.apply(fx);
        }
    }
}
