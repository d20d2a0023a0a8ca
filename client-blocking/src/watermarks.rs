//! The crossings of a [`Client`]'s buffer watermarks: the subscription, and [`Watermarks`],
//! what it returns.

use std::time::{Duration, Instant};

use tidegate_core::{RecvError, Watermark, WatermarkEvents};

use crate::Client;
use crate::wait::wait_until;

// Named in the docs only.
#[cfg(doc)]
use crate::ClientBuilder;

impl Client {
    /// Subscribes to the crossings of the buffer's watermarks (set with
    /// [`ClientBuilder::watermarks`]), to pause and resume the application's own upstream.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Client, Watermark};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-watermarks-example").unwrap();
    /// let client =
    ///     Client::builder().capacity(100).watermarks(80, 20).connect(&listener.url()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// let events = client.watermarks();
    /// client.send(vec![0u8; 90]).unwrap();
    /// assert_eq!(events.recv_timeout(Duration::from_secs(5)).unwrap(), Some(Watermark::High));
    /// peer.resume();
    /// assert_eq!(events.recv_timeout(Duration::from_secs(5)).unwrap(), Some(Watermark::Low));
    /// ```
    pub fn watermarks(&self) -> Watermarks {
        Watermarks { events: std::sync::Mutex::new(self.conn.watermarks()) }
    }
}

/// A subscription to a connection's watermark crossings, returned by [`Client::watermarks`].
///
/// Yields `High` and `Low` alternately, once per crossing, in order; `None` once the
/// connection has ended and every crossing was read. Dropping it unsubscribes.
///
/// # Examples
///
/// See [`Client::watermarks`].
#[derive(Debug)]
pub struct Watermarks {
    events: std::sync::Mutex<WatermarkEvents>,
}

impl Watermarks {
    /// Waits for the next crossing; `Ok(None)` once the connection has ended and every
    /// crossing was read.
    ///
    /// # Errors
    ///
    /// [`RecvError::WouldDeadlock`] at once when it would have to wait on an I/O driver thread
    /// (inside a transport plugin or a [`Client::call_link`] closure), which would then wait
    /// for itself.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until a crossing happens or the connection ends.
    ///
    /// # Examples
    ///
    /// See [`Client::watermarks`].
    pub fn recv(&self) -> Result<Option<Watermark>, RecvError> {
        self.recv_until(None)
    }

    /// Waits at most `timeout` for the next crossing.
    ///
    /// # Errors
    ///
    /// [`RecvError::Timeout`] if none came in time, and as [`Watermarks::recv`].
    ///
    /// # Blocking
    ///
    /// Parks the calling thread for at most `timeout`.
    ///
    /// # Examples
    ///
    /// See [`Client::watermarks`].
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Watermark>, RecvError> {
        self.recv_until(Some(Instant::now() + timeout))
    }

    /// Waits until `deadline` at most for the next crossing.
    ///
    /// # Errors
    ///
    /// As [`Watermarks::recv_timeout`].
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
    /// let listener = MemListener::bind("blocking-watermarks-deadline-example").unwrap();
    /// let client = Client::builder().watermarks(10, 5).connect(&listener.url()).unwrap();
    /// let deadline = Instant::now() + Duration::from_millis(10);
    /// assert!(client.watermarks().recv_deadline(deadline).unwrap_err().is_timeout());
    /// ```
    pub fn recv_deadline(&self, deadline: Instant) -> Result<Option<Watermark>, RecvError> {
        self.recv_until(Some(deadline))
    }

    /// The next crossing if one is waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-watermarks-try-recv-example").unwrap();
    /// let client = Client::builder().watermarks(10, 5).connect(&listener.url()).unwrap();
    /// assert_eq!(client.watermarks().try_recv(), None);
    /// ```
    pub fn try_recv(&self) -> Option<Watermark> {
        self.lock().try_next()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WatermarkEvents> {
        self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<Option<Watermark>, RecvError> {
        let mut events = self.lock();
        wait_until(deadline, |waker| events.poll_next_with(waker))
    }
}
