//! The receive side of [`Client`]: what the peer sent, chunk by chunk or frame by frame.

use std::io;
use std::time::{Duration, Instant};

use tidegate_core::{Bytes, RecvError, TryRecvError};

use crate::Client;
use crate::wait::wait_guarded;

// Named in the docs only.
#[cfg(doc)]
use tidegate_core::Config;

impl Client {
    /// Receives the next chunk of bytes the peer sent (with
    /// [framing](Config::framing), the next whole frame), waiting as long as it takes.
    /// Returns `Ok(None)` once the stream ended in order (the peer closed, or the application
    /// closed the connection) and everything before the end was received.
    ///
    /// Bytes the application does not receive wait in the inbound buffer; once it is full the
    /// driver stops reading and the peer's writes stall. Receivers are served in the order they
    /// started waiting.
    ///
    /// # Errors
    ///
    /// [`RecvError::Disconnected`] after everything that arrived before the connection
    /// failed (a reset, for example), [`RecvError::Decode`] for frames that cannot be decoded,
    /// [`RecvError::WouldDeadlock`] when it would have to wait on an I/O driver thread.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until data arrives or the stream ends. It uses no CPU while it
    /// waits: the I/O driver unparks it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-recv-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.write(b"ack");
    /// peer.close();
    /// assert_eq!(client.recv().unwrap().unwrap(), "ack");
    /// assert_eq!(client.recv().unwrap(), None, "the end of the stream");
    /// ```
    pub fn recv(&self) -> Result<Option<Bytes>, RecvError> {
        self.recv_until(None)
    }

    /// Like [`Client::recv`], giving up after `timeout` with [`RecvError::Timeout`].
    ///
    /// # Errors
    ///
    /// As [`Client::recv`], and the timeout.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread for at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-recv-timeout-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let err = client.recv_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert!(err.is_timeout());
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Bytes>, RecvError> {
        self.recv_until(Some(Instant::now() + timeout))
    }

    /// Like [`Client::recv`], giving up at `deadline` with [`RecvError::Timeout`].
    ///
    /// # Errors
    ///
    /// As [`Client::recv_timeout`].
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until `deadline` at most.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-recv-deadline-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let err = client.recv_deadline(Instant::now() + Duration::from_millis(10)).unwrap_err();
    /// assert!(err.is_timeout());
    /// ```
    pub fn recv_deadline(&self, deadline: Instant) -> Result<Option<Bytes>, RecvError> {
        self.recv_until(Some(deadline))
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<Option<Bytes>, RecvError> {
        let mut op = self.conn.recv(deadline);
        // On a driver thread the operation is dropped, leaving the line; no data is lost.
        wait_guarded(deadline, |waker| op.poll_with(waker)).unwrap_or(Err(RecvError::WouldDeadlock))
    }

    /// Receives without waiting: the next chunk (or frame) if one is there and no receiver
    /// waits ahead, `Ok(None)` once the stream ended in order.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if there is nothing now, and as [`Client::recv`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-try-recv-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// assert!(client.try_recv().unwrap_err().is_empty());
    /// ```
    pub fn try_recv(&self) -> Result<Option<Bytes>, TryRecvError> {
        self.conn.try_recv()
    }
}

/// Reads the byte stream the peer sends: each `read` waits like [`Client::recv`] for at least
/// one byte, fills as much of `buf` as is there, and leaves the rest in the inbound buffer for
/// the next read (or receive). It returns `Ok(0)` at the end of the stream.
///
/// With [framing](Config::framing) it reads the decoded frames' payloads back to back: frame
/// boundaries are not marked, and the rest of a frame that did not fit in `buf` comes first
/// in the next read. Errors have the kinds of `From<RecvError> for io::Error`: a reset is
/// `ConnectionReset`, a wait on an I/O driver thread is `Deadlock`.
///
/// # Examples
///
/// ```
/// use std::io::Read;
/// use std::time::Duration;
/// use tidegate::Client;
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("blocking-read-example").unwrap();
/// let mut client = Client::connect(&listener.url()).unwrap();
/// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
/// peer.write(b"hello, reader");
/// peer.close();
/// let mut text = String::new();
/// client.read_to_string(&mut text).unwrap();
/// assert_eq!(text, "hello, reader");
/// ```
impl io::Read for Client {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut op = self.conn.recv(None).at_most(buf.len());
        let polled = wait_guarded(None, |waker| op.poll_with(waker));
        match polled.unwrap_or(Err(RecvError::WouldDeadlock))? {
            Some(bytes) => {
                buf[..bytes.len()].copy_from_slice(&bytes);
                Ok(bytes.len())
            }
            None => Ok(0),
        }
    }
}
