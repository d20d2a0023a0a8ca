//! The receiving side of [`Connection`].

use std::time::Instant;

use bytes::Bytes;

use crate::conn::byte_stream::ByteStream;
use crate::conn::recv::RecvOp;
use crate::conn::sealed::Sealed;
use crate::connection::Connection;
use crate::state::error::TryRecvError;

impl Connection {
    /// Starts a receive: the returned operation resolves to the next chunk of bytes the peer
    /// sent (or, with [framing](crate::Config::framing), the next whole frame), to `None` once the
    /// stream ended in order and everything before the end was received, or to an error.
    /// `deadline` bounds the wait; `None` waits as long as it takes.
    ///
    /// Unframed, a chunk is whatever the buffer holds, up to 64 KiB, copied out of it.
    /// Receivers are served in the order they started waiting.
    ///
    /// # Errors
    ///
    /// [`RecvError::Timeout`](crate::RecvError::Timeout) once `deadline` passes with nothing received,
    /// [`RecvError::Disconnected`](crate::RecvError::Disconnected) after everything that arrived before the connection
    /// failed, [`RecvError::Decode`](crate::RecvError::Decode) for frames that cannot be decoded.
    ///
    /// # Cancel safety
    ///
    /// See [`RecvOp`]: dropping it loses no data.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-connection-recv").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.write(b"ack");
    /// peer.close();
    /// tidegate::block_on(async {
    ///     assert_eq!(conn.recv(None).await.unwrap().unwrap(), "ack");
    ///     assert_eq!(conn.recv(None).await.unwrap(), None, "then the end of the stream");
    /// });
    /// ```
    pub fn recv(&self, deadline: Option<Instant>) -> RecvOp<&Self> {
        RecvOp::new(self, deadline)
    }

    /// Like [`Connection::recv`], owning a handle to the connection, so the operation can be
    /// stored (in a stream, for example).
    ///
    /// # Errors
    ///
    /// As [`Connection::recv`].
    ///
    /// # Cancel safety
    ///
    /// See [`RecvOp`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-connection-recv-owned").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// let op = conn.clone().recv_owned(None);
    /// peer.write(b"hi");
    /// assert_eq!(tidegate::block_on(op).unwrap().unwrap(), "hi");
    /// ```
    pub fn recv_owned(self, deadline: Option<Instant>) -> RecvOp<Self> {
        RecvOp::new(self, deadline)
    }

    /// Returns the connection as a byte stream, for `AsyncRead`/`AsyncWrite`-style callers:
    /// writes become frames of at most [`Connection::max_frame_len`] bytes, sent with the
    /// configured send timeout; reads take at most the caller's buffer. See [`ByteStream`].
    ///
    /// # Examples
    ///
    /// See [`ByteStream`].
    pub fn byte_stream(&self) -> ByteStream<Self> {
        let timeout = self.config().send_timeout_duration();
        ByteStream::new(self.clone(), self.max_frame_len(), timeout)
    }

    /// Receives without waiting: the next chunk (or frame) if one is there and no receiver
    /// waits ahead, `Ok(None)` once the stream ended in order.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if there is nothing now, and as [`Connection::recv`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-connection-try-recv").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// assert!(conn.try_recv().unwrap_err().is_empty());
    /// ```
    pub fn try_recv(&self) -> Result<Option<Bytes>, TryRecvError> {
        self.shared().try_recv()
    }
}
