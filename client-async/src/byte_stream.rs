//! [`AsyncByteStream`]: the connection as a byte stream, for `futures::io` and (with the
//! `tokio` feature) `tokio::io`. The state is the core's [`ByteStream`]; this wraps it and
//! polls it with the task's waker.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};
use tidegate_core::{ByteStream, Connection};

/// The connection as a byte stream, returned by
/// [`AsyncClient::byte_stream`](crate::AsyncClient::byte_stream): `futures::io::AsyncRead`
/// and `AsyncWrite` always, and tokio's `AsyncRead` and `AsyncWrite` with the crate's `tokio`
/// feature, so `tokio::io::copy` or `futures::io::copy` can pour a byte stream into the
/// connection, and read what the peer sends.
///
/// - **Writes are frames.** Each `poll_write` sends the first bytes of its buffer — at most
///   [`Connection::max_frame_len`] — as one frame, in the same FIFO line as every send; with
///   a codec, each gets its own header. So the frame boundaries follow the writes: wrap the
///   stream in a `BufWriter` for fewer, larger frames.
/// - **A write that returned `Pending` has its frame in line**, and the next write must offer
///   the same bytes again (`write_all` and `copy` do); any other bytes are refused with
///   `InvalidInput`. This keeps the bound and the order without a second buffer.
/// - **Flush** waits until every byte accepted so far is written to the link. **Close**
///   (`poll_close`, tokio's `poll_shutdown`) is a half-close for the whole connection: it
///   drains and ends the write side, and reading goes on until the peer ends its side.
/// - **Reads** yield the byte stream the peer sends (with a codec, the frames' payloads back
///   to back), at most the buffer's length at a time; `Ok(0)` is the end of the stream.
///
/// I/O errors have the kinds of the core's conversions (`From<SendError>`, `From<RecvError>`,
/// `From<FlushError>` for `io::Error`), with the tidegate error inside.
///
/// # Cancel safety
///
/// Dropping the stream while a write waits drops that frame unsent, unless the driver had
/// already moved it into the buffer (then it is sent, in order); a waiting read or flush loses
/// nothing.
///
/// # Examples
///
/// ```
/// use futures::io::{AsyncReadExt, AsyncWriteExt};
/// use std::time::Duration;
/// use tidegate::AsyncClient;
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("async-byte-stream-example").unwrap();
/// tidegate::block_on(async {
///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
///     let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
///     peer.hold_open(); // it answers our end in its own time
///     let mut stream = client.byte_stream();
///     stream.write_all(b"request").await.unwrap();
///     stream.close().await.unwrap(); // a half-close: the peer sees the end, and answers
///     peer.write(b"answer");
///     peer.close();
///     let mut answer = String::new();
///     stream.read_to_string(&mut answer).await.unwrap();
///     assert_eq!(answer, "answer");
/// });
/// ```
#[derive(Debug)]
pub struct AsyncByteStream {
    inner: ByteStream<Connection>,
}

impl AsyncByteStream {
    pub(crate) fn new(inner: ByteStream<Connection>) -> Self {
        Self { inner }
    }

    /// Returns the connection the stream reads and writes.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-byte-stream-connection-example").unwrap();
    /// let client = tidegate::block_on(AsyncClient::connect(&listener.url())).unwrap();
    /// assert_eq!(client.byte_stream().connection().endpoint().scheme(), "mem");
    /// ```
    pub fn connection(&self) -> &Connection {
        self.inner.get_ref()
    }
}

impl AsyncRead for AsyncByteStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().inner.poll_read_with(cx.waker(), buf)
    }
}

impl AsyncWrite for AsyncByteStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().inner.poll_write_with(cx.waker(), buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().inner.poll_flush_with(cx.waker())
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().inner.poll_shutdown_with(cx.waker())
    }
}

/// tokio's traits, with the `tokio` feature: the same reads and writes as futures-io's.
#[cfg(feature = "tokio")]
impl tokio::io::AsyncRead for AsyncByteStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = std::task::ready!(AsyncRead::poll_read(self, cx, buf.initialize_unfilled()))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// tokio's traits, with the `tokio` feature: the futures-io ones under tokio's names, and
/// `poll_shutdown` is `poll_close`, the half-close.
#[cfg(feature = "tokio")]
impl tokio::io::AsyncWrite for AsyncByteStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write(self, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_flush(self, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_close(self, cx)
    }
}
