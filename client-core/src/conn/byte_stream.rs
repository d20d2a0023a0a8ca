//! The connection as a byte stream: [`ByteStream`], the state behind the async facade's
//! `AsyncRead` and `AsyncWrite`, written once here with `poll_*_with` methods.
//!
//! # Algorithm
//!
//! - **Write**: each write becomes one frame of at most the connection's largest frame,
//!   copied from the caller's buffer. The frame joins the FIFO line as a send does. If it
//!   must wait, the write returns `Pending` *with the frame in line*: the stream keeps the
//!   send and a handle to the frame's bytes, and the next write must offer the same bytes
//!   again (as every caller that retries after `Pending` does: `write_all`, `copy`); it then
//!   returns their count once the frame is accepted. A write that offers other bytes instead
//!   is refused with `InvalidInput`, so a caller that changed its mind learns it. This is what
//!   keeps the order of bytes and the buffer's bound without a second buffer.
//! - **Flush** and **shutdown** first drive a waiting write until its frame is accepted (it is
//!   in line, so it is part of what was written), keep its outcome for the write that offers
//!   the same bytes again, then flush (every byte accepted so far written to the link) or
//!   half-close (drain, then end the write side).
//! - **Read** receives at most the caller's buffer length, waiting in the receivers' line; what
//!   does not fit stays in the inbound buffer (or, framed, goes first to the next read).
//!
//! # Cancel safety
//!
//! Dropping the stream while a write waits drops that frame unsent, unless the driver had
//! already moved it into the buffer (then it is sent, in order), as dropping a send does. A
//! waiting read or flush leaves its line and loses nothing.

use std::fmt;
use std::io;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::conn::ConnectionRef;
use crate::conn::flush::FlushWait;
use crate::conn::recv::RecvOp;
use crate::conn::send::SendOp;
use crate::state::error::SendError;

/// Where the stream's write is.
enum Write<C: ConnectionRef> {
    Idle,
    /// The frame waits in line; `frame` is a handle to its bytes, to check the next write.
    Waiting {
        op: SendOp<C>,
        frame: Bytes,
    },
    /// A flush or a shutdown drove the waiting frame to its end; the next write with the same
    /// bytes returns this.
    Done {
        frame: Bytes,
        result: Result<(), SendError<Bytes>>,
    },
}

/// A connection seen as a byte stream, returned by
/// [`Connection::byte_stream`](crate::Connection::byte_stream): the state behind the async
/// facade's `AsyncRead`/`AsyncWrite` (`tidegate::ByteStream`), polled with a bare waker.
///
/// See the module documentation for how writes become frames and what a write that returned
/// `Pending` promises.
///
/// # Examples
///
/// ```
/// use std::task::{Poll, Waker};
/// use std::time::Duration;
/// use tidegate::{Config, Connection};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-core-byte-stream").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
/// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
/// let mut stream = conn.byte_stream();
/// let written = stream.poll_write_with(Waker::noop(), b"hello");
/// assert!(matches!(written, Poll::Ready(Ok(5))));
/// peer.write(b"world");
/// let mut buf = [0u8; 16];
/// let n = tidegate::block_on(std::future::poll_fn(|cx| stream.poll_read_with(cx.waker(), &mut buf)));
/// assert_eq!(&buf[..n.unwrap()], b"world");
/// ```
pub struct ByteStream<C: ConnectionRef + Clone> {
    conn: C,
    /// The largest frame a write makes.
    max_frame_len: usize,
    /// The configured send timeout, counted from the write that queues a frame.
    send_timeout: Option<Duration>,
    write: Write<C>,
    read: Option<RecvOp<C>>,
    flush: Option<FlushWait>,
    /// Whether the half-close has begun.
    shutdown: bool,
}

impl<C: ConnectionRef + Clone> fmt::Debug for ByteStream<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let write = match &self.write {
            Write::Idle => "idle",
            Write::Waiting { .. } => "waiting",
            Write::Done { .. } => "done",
        };
        f.debug_struct("ByteStream")
            .field("max_frame_len", &self.max_frame_len)
            .field("write", &write)
            .field("reading", &self.read.is_some())
            .field("flushing", &self.flush.is_some())
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
}

impl<C: ConnectionRef + Clone> ByteStream<C> {
    pub(crate) fn new(conn: C, max_frame_len: usize, send_timeout: Option<Duration>) -> Self {
        Self {
            conn,
            max_frame_len: max_frame_len.max(1),
            send_timeout,
            write: Write::Idle,
            read: None,
            flush: None,
            shutdown: false,
        }
    }

    /// Returns the handle the stream holds.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-core-byte-stream-get-ref").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// assert_eq!(conn.byte_stream().get_ref().endpoint().scheme(), "mem");
    /// ```
    pub fn get_ref(&self) -> &C {
        &self.conn
    }

    /// Reads at most `buf.len()` bytes: `Ready(Ok(n))` with `n > 0` bytes, `Ready(Ok(0))` at
    /// the end of the stream (or for an empty `buf`), or an error of the kinds of
    /// `From<RecvError> for io::Error`. On `Pending`, `waker` is woken when data may be there.
    ///
    /// # Examples
    ///
    /// See [`ByteStream`].
    pub fn poll_read_with(&mut self, waker: &Waker, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let conn = &self.conn;
        let op = self.read.get_or_insert_with(|| RecvOp::new(conn.clone(), None));
        op.set_max(buf.len());
        let Poll::Ready(result) = op.poll_with(waker) else {
            return Poll::Pending;
        };
        self.read = None;
        Poll::Ready(match result {
            Ok(Some(bytes)) => {
                buf[..bytes.len()].copy_from_slice(&bytes);
                Ok(bytes.len())
            }
            Ok(None) => Ok(0),
            Err(err) => Err(io::Error::from(err)),
        })
    }

    /// Writes the first bytes of `buf` (at most one frame's worth) as one frame:
    /// `Ready(Ok(n))` once the frame is in the buffer, or an error of the kinds of
    /// `From<SendError> for io::Error`. On `Pending` the frame waits in line, and the next
    /// call must offer the same bytes again (see the module documentation); `waker` is woken
    /// when the frame is accepted or its wait ended.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if a write follows a `Pending` one with other bytes.
    ///
    /// # Examples
    ///
    /// See [`ByteStream`].
    pub fn poll_write_with(&mut self, waker: &Waker, buf: &[u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match &self.write {
            Write::Idle => {}
            Write::Waiting { frame, .. } | Write::Done { frame, .. } => {
                if !buf.starts_with(frame) {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "a write after a pending one must offer the same bytes again: those \
                         bytes wait in line to be sent",
                    )));
                }
            }
        }
        if matches!(self.write, Write::Idle) {
            let n = buf.len().min(self.max_frame_len);
            let frame = Bytes::copy_from_slice(&buf[..n]);
            let deadline = self.send_timeout.map(|t| Instant::now() + t);
            let op = SendOp::new(self.conn.clone(), frame.clone(), false, deadline);
            self.write = Write::Waiting { op, frame };
        }
        if let Write::Waiting { op, frame } = &mut self.write {
            let Poll::Ready(result) = op.poll_with(waker) else {
                return Poll::Pending;
            };
            self.write = Write::Done { frame: frame.clone(), result };
        }
        let Write::Done { frame, result } = std::mem::replace(&mut self.write, Write::Idle) else {
            unreachable!("a write that was not pending is done")
        };
        Poll::Ready(result.map(|()| frame.len()).map_err(io::Error::from))
    }

    /// Drives a waiting write until its frame is accepted or fails, keeping the outcome.
    fn poll_queued_write(&mut self, waker: &Waker) -> Poll<()> {
        if let Write::Waiting { op, frame } = &mut self.write {
            let Poll::Ready(result) = op.poll_with(waker) else {
                return Poll::Pending;
            };
            self.write = Write::Done { frame: frame.clone(), result };
        }
        Poll::Ready(())
    }

    /// Waits until every byte accepted so far, a waiting write's included, has been written
    /// to the link; errors have the kinds of `From<FlushError> for io::Error`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use std::task::Waker;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-core-byte-stream-flush").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let mut stream = conn.byte_stream();
    /// assert!(stream.poll_write_with(Waker::noop(), b"data").is_ready());
    /// tidegate::block_on(poll_fn(|cx| stream.poll_flush_with(cx.waker()))).unwrap();
    /// assert_eq!(conn.stats().buffered, 0);
    /// ```
    pub fn poll_flush_with(&mut self, waker: &Waker) -> Poll<io::Result<()>> {
        if self.poll_queued_write(waker).is_pending() {
            return Poll::Pending;
        }
        let conn = self.conn.shared();
        let wait = self.flush.get_or_insert_with(|| FlushWait::new(conn, None));
        let Poll::Ready(result) = wait.poll(conn, waker) else {
            return Poll::Pending;
        };
        self.flush = None;
        Poll::Ready(result.map_err(io::Error::from))
    }

    /// Ends the write side (a half-close, for every handle of the connection): drives a
    /// waiting write until its frame is accepted, drains, then ends the link's write side;
    /// receiving goes on. Errors have the kinds of `From<FlushError> for io::Error`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-core-byte-stream-shutdown").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let mut stream = conn.byte_stream();
    /// tidegate::block_on(poll_fn(|cx| stream.poll_shutdown_with(cx.waker()))).unwrap();
    /// assert!(conn.is_closed(), "no more frames after the half-close");
    /// ```
    pub fn poll_shutdown_with(&mut self, waker: &Waker) -> Poll<io::Result<()>> {
        if self.poll_queued_write(waker).is_pending() {
            return Poll::Pending;
        }
        let conn = self.conn.shared();
        conn.poll_shutdown_write(&mut self.shutdown, None, waker).map_err(io::Error::from)
    }
}

impl<C: ConnectionRef + Clone> Drop for ByteStream<C> {
    fn drop(&mut self) {
        if let Some(wait) = self.flush.as_mut() {
            wait.cancel(self.conn.shared());
        }
        // A waiting write's and read's operations leave their lines when they drop.
    }
}
