//! How an [`AsyncClient`]'s connection ends: the close, and the half-close.

use std::time::{Duration, Instant};

use crate::AsyncClient;
use crate::ops::{CloseFuture, ShutdownWriteFuture};

impl AsyncClient {
    /// Closes the connection for every handle: new sends are refused, waiting senders get
    /// their frames back in [`SendError::Closed`](crate::SendError::Closed), and what is
    /// buffered is drained for at most the configured close timeout (10 s by default). The
    /// future resolves with the report once the link is gone.
    ///
    /// The report counts what was written and hands back every frame that was not fully
    /// written. Only the first close receives those frames.
    ///
    /// # Errors
    ///
    /// None: the output is a `Result` so that it has the shape of the blocking facade's
    /// `close`, whose one error (a wait that would park an I/O driver thread) cannot happen to
    /// a future.
    ///
    /// # Cancel safety
    ///
    /// The close starts at the first poll and goes on if the future is dropped; a later close
    /// returns the report (without the unsent frames, if an earlier close received them).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-close-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     client.send("last words").await.unwrap();
    ///     let report = client.close().await?;
    ///     assert!(report.is_clean());
    ///     assert_eq!(report.bytes_written(), 10);
    ///     Ok::<(), tidegate::CloseError>(())
    /// });
    /// ```
    pub fn close(&self) -> CloseFuture<'_> {
        self.close_timeout(self.conn.config().close_timeout_duration())
    }

    /// Like [`AsyncClient::close`], draining for at most `timeout` from the first poll.
    ///
    /// # Cancel safety
    ///
    /// As [`AsyncClient::close`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-close-timeout-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     let report = client.close_timeout(Duration::from_secs(1)).await.unwrap();
    ///     assert!(report.unsent().is_empty());
    /// });
    /// ```
    pub fn close_timeout(&self, timeout: Duration) -> CloseFuture<'_> {
        CloseFuture::new(self.conn.close(timeout))
    }

    /// Like [`AsyncClient::close`], draining until `deadline` at most (a deadline already
    /// past drains nothing more: the link is shut down at once).
    ///
    /// # Cancel safety
    ///
    /// As [`AsyncClient::close`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-close-deadline-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     let deadline = Instant::now() + Duration::from_secs(1);
    ///     let report = client.close_deadline(deadline).await.unwrap();
    ///     assert!(report.is_clean());
    /// });
    /// ```
    pub fn close_deadline(&self, deadline: Instant) -> CloseFuture<'_> {
        self.close_timeout(deadline.saturating_duration_since(Instant::now()))
    }

    /// Finishes sending and keeps receiving (a half-close): new sends are refused, waiting
    /// senders get their frames back in [`SendError::Closed`](crate::SendError::Closed), what
    /// is buffered is drained, then the link's write side is ended (for TCP, a FIN after the
    /// last byte). The future resolves once it has; receive until `Ok(None)`, when the peer
    /// has ended its side too.
    ///
    /// # Errors
    ///
    /// [`FlushError::Closed`](crate::FlushError::Closed) or
    /// [`FlushError::Disconnected`](crate::FlushError::Disconnected) if the connection ended
    /// before its write side could.
    ///
    /// # Cancel safety
    ///
    /// The half-close starts at the first poll and goes on if the future is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-shutdown-write-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    ///     peer.hold_open();
    ///     client.send("question").await.unwrap();
    ///     client.shutdown_write().await.unwrap();
    ///     peer.write(b"answer");
    ///     peer.close();
    ///     assert_eq!(client.recv().await.unwrap().unwrap(), "answer");
    ///     assert_eq!(client.recv().await.unwrap(), None);
    ///     assert!(client.close().await.unwrap().is_clean());
    /// });
    /// ```
    pub fn shutdown_write(&self) -> ShutdownWriteFuture<'_> {
        ShutdownWriteFuture::new(self.conn.shutdown_write(None))
    }

    /// Like [`AsyncClient::shutdown_write`], giving up `timeout` after this call with
    /// [`FlushError::Timeout`](crate::FlushError::Timeout) if the buffer has not drained by
    /// then. The half-close goes on: later sends are refused all the same.
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::shutdown_write`], and the timeout.
    ///
    /// # Cancel safety
    ///
    /// As [`AsyncClient::shutdown_write`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-shutdown-write-timeout-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     client.send("request").await.unwrap();
    ///     client.shutdown_write_timeout(Duration::from_secs(5)).await.unwrap();
    /// });
    /// ```
    pub fn shutdown_write_timeout(&self, timeout: Duration) -> ShutdownWriteFuture<'_> {
        self.shutdown_write_deadline(Instant::now() + timeout)
    }

    /// Like [`AsyncClient::shutdown_write_timeout`], giving up at `deadline`.
    ///
    /// # Errors
    ///
    /// As [`AsyncClient::shutdown_write_timeout`].
    ///
    /// # Cancel safety
    ///
    /// As [`AsyncClient::shutdown_write`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-shutdown-write-deadline-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     let deadline = Instant::now() + Duration::from_secs(5);
    ///     client.shutdown_write_deadline(deadline).await.unwrap();
    /// });
    /// ```
    pub fn shutdown_write_deadline(&self, deadline: Instant) -> ShutdownWriteFuture<'_> {
        ShutdownWriteFuture::new(self.conn.shutdown_write(Some(deadline)))
    }
}
