//! How a [`Connection`] ends: close, half-close, and the close of the last handle.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::conn::close::{CloseOp, ShutdownWriteOp};
use crate::conn::sealed::Sealed;
use crate::connection::{Connection, Handle};
use crate::state::report::CloseReport;

impl Connection {
    /// Starts closing: no new frames are taken, waiting senders get their frames back in a
    /// [`SendError::Closed`](crate::SendError::Closed), and the driver drains the buffer for at most `timeout`. The
    /// returned operation resolves with the report once the link is gone.
    ///
    /// Only the first close receives the unsent frames in its report.
    ///
    /// # Cancel safety
    ///
    /// See [`CloseOp`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("close-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let report = tidegate::block_on(conn.close(Duration::from_secs(5)));
    /// assert!(report.is_clean());
    /// ```
    pub fn close(&self, timeout: Duration) -> CloseOp<'_> {
        CloseOp::new(self.shared(), timeout)
    }

    /// Finishes sending and keeps receiving: no new frames are taken (waiting senders get
    /// theirs back in a [`SendError::Closed`](crate::SendError::Closed)), the driver drains the buffer, then ends the
    /// link's write side (for TCP, `shutdown(Write)`: a FIN after the last byte). The returned
    /// operation resolves once the write side has ended.
    ///
    /// This is the half-close idiom: the peer reads to the end of stream, sends its last
    /// answers and ends its own side; receive until `Ok(None)`. The connection ends once the
    /// peer has ended its side; what arrived stays readable, and [`Connection::close`] then
    /// returns the report at once.
    ///
    /// # Errors
    ///
    /// [`FlushError::Timeout`](crate::FlushError::Timeout) at `deadline` (the drain goes on), [`FlushError::Closed`](crate::FlushError::Closed) or
    /// [`FlushError::Disconnected`](crate::FlushError::Disconnected) if the connection ended before its write side could.
    ///
    /// # Cancel safety
    ///
    /// The half-close starts at the first poll and goes on if the operation is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-shutdown-write").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.hold_open();
    /// conn.try_send(Bytes::from_static(b"question")).unwrap();
    /// tidegate::block_on(conn.shutdown_write(None)).unwrap();
    /// // The peer reads everything, then the end of stream, and answers.
    /// let mut buf = [0u8; 16];
    /// assert_eq!(peer.read_timeout(&mut buf, Duration::from_secs(5)).unwrap(), 8);
    /// assert_eq!(peer.read_timeout(&mut buf, Duration::from_secs(5)).unwrap(), 0);
    /// peer.write(b"answer");
    /// peer.close();
    /// let answer = tidegate::block_on(conn.recv(None)).unwrap();
    /// assert_eq!(answer.as_deref(), Some(&b"answer"[..]));
    /// assert_eq!(tidegate::block_on(conn.recv(None)).unwrap(), None);
    /// assert!(tidegate::block_on(conn.close(Duration::from_secs(5))).is_clean());
    /// ```
    pub fn shutdown_write(&self, deadline: Option<Instant>) -> ShutdownWriteOp<'_> {
        ShutdownWriteOp::new(self.shared(), deadline)
    }

    /// Takes this handle if it is the last one to the connection, and returns the close that
    /// dropping it would start, to be waited for; `None` (and the handle is dropped) if other
    /// handles remain.
    ///
    /// This is how a facade drains on drop, as std's `BufWriter` does: the close drains for
    /// the configured close timeout, like [`Connection::close`]; since no handle is left to
    /// receive them, frames that could not be written are logged with a warning and dropped.
    /// The decision is race-free: of handles dropped at the same time on several threads,
    /// exactly one gets the close.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-close-if-last").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let other = conn.clone();
    /// assert!(other.close_if_last().is_none(), "`conn` is still there");
    /// conn.try_send(Bytes::from_static(b"kept")).unwrap();
    /// let report = tidegate::block_on(conn.close_if_last().unwrap());
    /// assert!(report.is_clean());
    /// assert_eq!(report.bytes_written(), 4);
    /// ```
    pub fn close_if_last(self) -> Option<LastClose> {
        let handle = Arc::into_inner(self.handle)?;
        Some(LastClose { handle, started: false })
    }
}

/// The close of a connection whose last handle is going away, returned by
/// [`Connection::close_if_last`]. It resolves with the report once the link is gone.
///
/// # Cancel safety
///
/// The close starts at the first poll, or when the operation is dropped, and goes on either
/// way; dropping it stops only the waiting.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tidegate::{Config, Connection, LastClose};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-last-close").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
/// let close: LastClose = conn.close_if_last().unwrap();
/// assert!(tidegate::block_on(close).is_clean());
/// ```
#[must_use = "a close of the last handle is only waited for if polled"]
#[derive(Debug)]
pub struct LastClose {
    handle: Handle,
    started: bool,
}

impl LastClose {
    /// Polls with a bare waker. The first poll starts the close; on `Pending`, `waker` is
    /// woken once the link is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::Waker;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-last-close-poll").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let mut close = conn.close_if_last().unwrap();
    /// while close.poll_with(Waker::noop()).is_pending() {
    ///     std::thread::yield_now();
    /// }
    /// ```
    pub fn poll_with(&mut self, waker: &Waker) -> Poll<CloseReport> {
        self.handle.shared.poll_last_close(&mut self.started, waker)
    }
}

impl Future for LastClose {
    type Output = CloseReport;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_with(cx.waker())
    }
}
