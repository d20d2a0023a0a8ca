//! How a [`Client`]'s connection ends: the half-close, the close, and the close that the last
//! handle waits for when it is dropped.

use std::time::{Duration, Instant};

use tidegate_core::{CloseError, CloseReport, Connection, FlushError, is_driver_thread};

use crate::Client;
use crate::wait::{wait, wait_guarded};

// Named in the docs only.
#[cfg(doc)]
use tidegate_core::SendError;

/// Closes the connection and waits for it, when dropped holding its last handle.
#[derive(Debug)]
pub(crate) struct DrainOnDrop(pub(crate) Option<Connection>);

impl Drop for DrainOnDrop {
    fn drop(&mut self) {
        let Some(conn) = self.0.take() else {
            return;
        };
        // On a driver thread the drop of the handle starts the close without waiting.
        if is_driver_thread() {
            return;
        }
        if let Some(mut close) = conn.close_if_last() {
            wait(None, |waker| close.poll_with(waker));
        }
    }
}

impl Client {
    /// Finishes sending and keeps receiving (a half-close): new sends are refused, waiting
    /// senders get their frames back in [`SendError::Closed`], what is buffered is drained,
    /// then the link's write side is ended (for TCP, `shutdown(Write)`: a FIN after the last
    /// byte). Returns once it has; then [`Client::recv`] until `Ok(None)`, when the peer has
    /// ended its side too.
    ///
    /// # Errors
    ///
    /// [`FlushError::Closed`] or [`FlushError::Disconnected`] if the connection ended before
    /// its write side could; [`FlushError::WouldDeadlock`] at once on an I/O driver thread
    /// (the half-close has started then, and goes on).
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until the buffer has drained and the write side has ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-shutdown-write-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.hold_open();
    /// client.send("question").unwrap();
    /// client.shutdown_write().unwrap();
    /// assert!(client.send("more").is_err(), "sending has finished");
    /// peer.write(b"answer");
    /// peer.close();
    /// assert_eq!(client.recv().unwrap().unwrap(), "answer");
    /// assert_eq!(client.recv().unwrap(), None);
    /// assert!(client.close().unwrap().is_clean());
    /// ```
    pub fn shutdown_write(&self) -> Result<(), FlushError> {
        self.shutdown_write_until(None)
    }

    /// Like [`Client::shutdown_write`], giving up the wait after `timeout` (the drain and
    /// the half-close go on).
    ///
    /// # Errors
    ///
    /// As [`Client::shutdown_write`], and [`FlushError::Timeout`].
    ///
    /// # Blocking
    ///
    /// Parks the calling thread for at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Client, FlushError};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-shutdown-write-timeout-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// client.send("stuck").unwrap();
    /// let waited = client.shutdown_write_timeout(Duration::from_millis(20));
    /// assert!(matches!(waited, Err(FlushError::Timeout)));
    /// ```
    pub fn shutdown_write_timeout(&self, timeout: Duration) -> Result<(), FlushError> {
        self.shutdown_write_until(Some(Instant::now() + timeout))
    }

    /// Like [`Client::shutdown_write_timeout`], giving up at `deadline`.
    ///
    /// # Errors
    ///
    /// As [`Client::shutdown_write_timeout`].
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
    /// let listener = MemListener::bind("blocking-shutdown-write-deadline-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// client.send("request").unwrap();
    /// client.shutdown_write_deadline(Instant::now() + Duration::from_secs(5)).unwrap();
    /// ```
    pub fn shutdown_write_deadline(&self, deadline: Instant) -> Result<(), FlushError> {
        self.shutdown_write_until(Some(deadline))
    }

    fn shutdown_write_until(&self, deadline: Option<Instant>) -> Result<(), FlushError> {
        let mut op = self.conn.shutdown_write(deadline);
        wait_guarded(deadline, |waker| op.poll_with(waker))
            .unwrap_or(Err(FlushError::WouldDeadlock))
    }

    /// Closes the connection for every handle: new sends are refused, waiting senders get
    /// their frames back in [`SendError::Closed`], and what is buffered is drained for at most
    /// the configured close timeout (10 s by default).
    ///
    /// The report counts what was written and hands back every frame that was not fully
    /// written. Only the first close receives those frames.
    ///
    /// # Errors
    ///
    /// [`CloseError::WouldDeadlock`] at once when called on an I/O driver thread (inside a
    /// transport plugin or a [`Client::call_link`] closure): the driver would have to shut
    /// the link down while its thread waits for itself. Nothing is done then, and the
    /// connection stays open; close it from another thread, or drop the handle, which starts
    /// the close without waiting (see [Dropping](Client#dropping)).
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until the buffer drained or the close timeout passed.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-close-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// client.send("last words").unwrap();
    /// let report = client.close().unwrap();
    /// assert!(report.is_clean());
    /// assert_eq!(report.bytes_written(), 10);
    /// ```
    ///
    /// On an I/O driver thread it refuses, and the connection goes on:
    ///
    /// ```
    /// use tidegate::{Client, CloseError};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-close-driver-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let inner = client.clone();
    /// let refused = client.call_link(move |_| inner.close()).unwrap();
    /// assert!(matches!(refused, Err(CloseError::WouldDeadlock)));
    /// client.send("still open").unwrap();
    /// assert!(client.close().unwrap().is_clean());
    /// ```
    pub fn close(&self) -> Result<CloseReport, CloseError> {
        self.close_timeout(self.conn.config().close_timeout_duration())
    }

    /// Like [`Client::close`], draining for at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`Client::close`]: [`CloseError::WouldDeadlock`] on an I/O driver thread, where it
    /// does nothing.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread for at most `timeout` (plus the time to shut the link down).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("close-timeout-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let report = client.close_timeout(Duration::from_secs(1)).unwrap();
    /// assert!(report.unsent().is_empty());
    /// ```
    pub fn close_timeout(&self, timeout: Duration) -> Result<CloseReport, CloseError> {
        // Refuse before the first poll, which is what starts the close: a close begun here
        // could not be waited for, and the caller is told nothing was done.
        if is_driver_thread() {
            return Err(CloseError::WouldDeadlock);
        }
        let mut op = self.conn.close(timeout);
        Ok(wait(None, |waker| op.poll_with(waker)))
    }

    /// Like [`Client::close`], draining until `deadline` at most (a deadline already past
    /// drains nothing more: the link is shut down at once).
    ///
    /// # Errors
    ///
    /// As [`Client::close`]: [`CloseError::WouldDeadlock`] on an I/O driver thread, where it
    /// does nothing.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until `deadline` at most (plus the time to shut the link
    /// down).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-close-deadline-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let report = client.close_deadline(Instant::now() + Duration::from_secs(1)).unwrap();
    /// assert!(report.is_clean());
    /// ```
    pub fn close_deadline(&self, deadline: Instant) -> Result<CloseReport, CloseError> {
        self.close_timeout(deadline.saturating_duration_since(Instant::now()))
    }
}
