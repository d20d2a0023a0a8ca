//! The receive side of [`AsyncClient`]: what the peer sent, one receive at a time or as a
//! stream.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tidegate_core::TryRecvError;

use crate::AsyncClient;
use crate::byte_stream::AsyncByteStream;
use crate::recv::{Incoming, RecvFuture};

impl AsyncClient {
    /// Receives: the future resolves to the next chunk of bytes the peer sent (with
    /// [framing](crate::Config::framing), the next whole frame), to `None` once the
    /// stream ended in order and everything before the end was received, or to an error.
    ///
    /// A receiver that waits uses no CPU: the I/O driver wakes it when data arrives for it.
    /// Receivers are served in the order they started waiting. Bytes the application does not
    /// receive wait in the inbound buffer; once it is full the driver stops reading and the
    /// peer's writes stall.
    ///
    /// # Errors
    ///
    /// [`RecvError::Disconnected`](crate::RecvError::Disconnected) after everything that
    /// arrived before the connection failed, [`RecvError::Decode`](crate::RecvError::Decode)
    /// for frames that cannot be decoded.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: see [`RecvFuture`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-recv-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    ///     peer.write(b"ack");
    ///     peer.close();
    ///     assert_eq!(client.recv().await.unwrap().unwrap(), "ack");
    ///     assert_eq!(client.recv().await.unwrap(), None);
    /// });
    /// ```
    pub fn recv(&self) -> RecvFuture<'_> {
        RecvFuture::new(self.conn.recv(None))
    }

    /// Like [`AsyncClient::recv`], giving up after `timeout` (counted from this call) with
    /// [`RecvError::Timeout`](crate::RecvError::Timeout). The deadline is fired by the core's
    /// I/O driver, so it works under any executor.
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::recv`], and the timeout.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: see [`RecvFuture`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-recv-timeout-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     let err = client.recv_timeout(Duration::from_millis(10)).await.unwrap_err();
    ///     assert!(err.is_timeout());
    /// });
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> RecvFuture<'_> {
        self.recv_deadline(Instant::now() + timeout)
    }

    /// Like [`AsyncClient::recv`], giving up at `deadline` with
    /// [`RecvError::Timeout`](crate::RecvError::Timeout).
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::recv_timeout`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: see [`RecvFuture`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-recv-deadline-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     let deadline = Instant::now() + Duration::from_millis(10);
    ///     let err = client.recv_deadline(deadline).await.unwrap_err();
    ///     assert!(err.is_timeout());
    /// });
    /// ```
    pub fn recv_deadline(&self, deadline: Instant) -> RecvFuture<'_> {
        RecvFuture::new(self.conn.recv(Some(deadline)))
    }

    /// Receives without waiting: the next chunk (or frame) if one is there and no receiver
    /// waits ahead, `Ok(None)` once the stream ended in order.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`](crate::TryRecvError::Empty) if there is nothing now, and as
    /// [`AsyncClient::recv`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-try-recv-example").unwrap();
    /// let client = tidegate::block_on(AsyncClient::connect(&listener.url())).unwrap();
    /// assert!(client.try_recv().unwrap_err().is_empty());
    /// ```
    pub fn try_recv(&self) -> Result<Option<Bytes>, TryRecvError> {
        self.conn.try_recv()
    }

    /// Returns the connection as a byte stream, [`AsyncByteStream`]: `futures::io`'s
    /// `AsyncRead` and `AsyncWrite`, and tokio's with the `tokio` feature, so that
    /// `tokio::io::copy(&mut file, &mut client.byte_stream())` pours a file into the
    /// connection. Each write is a frame; see [`AsyncByteStream`] for what that means.
    ///
    /// # Examples
    ///
    /// See [`AsyncByteStream`].
    pub fn byte_stream(&self) -> AsyncByteStream {
        AsyncByteStream::new(self.conn.byte_stream())
    }

    /// Returns everything this connection receives as a [`Stream`](futures_core::Stream) of
    /// `Result<Bytes, RecvError>`; see [`Incoming`]. It holds a handle to the connection.
    ///
    /// # Examples
    ///
    /// See [`Incoming`].
    pub fn incoming(&self) -> Incoming {
        Incoming::new(self.conn.clone())
    }
}
