//! The life of a [`Client`]'s links: the event subscription, [`Events`], what it returns, and
//! the wait for the connection's end.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tidegate_core::{ConnectionEvent, ConnectionEvents, Disconnect, RecvError};

use crate::Client;
use crate::wait::wait_until;

// Named in the docs only.
#[cfg(doc)]
use crate::ClientBuilder;

impl Client {
    /// Subscribes to the events in the life of the connection's links (see
    /// [`ConnectionEvent`]): each link lost, with the fate of its frames, each reconnect
    /// attempt (with [`ClientBuilder::reconnect`]), each link that comes up, and giving up.
    /// The subscription gets the events from now on and ends after the connection ends.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Client, ConnectionEvent, Reconnect};
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let url = format!("tcp://{}", listener.local_addr().unwrap());
    /// let client = Client::builder().reconnect(Reconnect::new()).connect(&url).unwrap();
    /// let events = client.events();
    /// // The server goes away: the link is lost, and reconnection begins.
    /// drop(listener.accept().unwrap());
    /// let event = events.recv_timeout(Duration::from_secs(5)).unwrap();
    /// assert!(matches!(event, Some(ConnectionEvent::Disconnected { .. })), "{event:?}");
    /// let event = events.recv_timeout(Duration::from_secs(5)).unwrap();
    /// assert!(matches!(event, Some(ConnectionEvent::Reconnecting { attempt: 1, .. })));
    /// ```
    pub fn events(&self) -> Events {
        Events { events: Mutex::new(self.conn.events()) }
    }

    /// Waits until the connection has ended for good: after a close, after its link failed
    /// with reconnection off, or after reconnection gave up. `Ok(None)` for an orderly close,
    /// else the cause.
    ///
    /// # Errors
    ///
    /// [`RecvError::WouldDeadlock`] at once when it would have to wait on an I/O driver thread
    /// (inside a transport plugin or a [`Client::call_link`] closure).
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until the connection ends.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-closed-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let watcher = client.clone();
    /// let waiting = std::thread::spawn(move || watcher.closed());
    /// client.close_timeout(Duration::from_secs(5)).unwrap();
    /// assert!(waiting.join().unwrap().unwrap().is_none(), "an orderly close has no cause");
    /// ```
    pub fn closed(&self) -> Result<Option<Disconnect>, RecvError> {
        self.closed_until(None)
    }

    /// Waits at most `timeout` for the connection to end for good.
    ///
    /// # Errors
    ///
    /// [`RecvError::Timeout`] if it has not ended in time, and as [`Client::closed`].
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
    /// let listener = MemListener::bind("blocking-closed-timeout-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let waited = client.closed_timeout(Duration::from_millis(10));
    /// assert!(waited.unwrap_err().is_timeout(), "nobody closed it");
    /// ```
    pub fn closed_timeout(&self, timeout: Duration) -> Result<Option<Disconnect>, RecvError> {
        self.closed_until(Some(Instant::now() + timeout))
    }

    fn closed_until(&self, deadline: Option<Instant>) -> Result<Option<Disconnect>, RecvError> {
        let mut closed = self.conn.closed();
        wait_until(deadline, |waker| closed.poll_with(waker))
    }
}

/// A subscription to a connection's events, returned by [`Client::events`].
///
/// Yields every event after the subscription, in order; `None` once the connection has ended
/// and every event was read. It loses none: when a subscriber lets its queue fill, the
/// connection holds its next reconnect attempt back until the subscriber reads (see
/// [`ConnectionEvents`]). Dropping it unsubscribes.
///
/// # Examples
///
/// See [`Client::events`].
#[derive(Debug)]
pub struct Events {
    events: Mutex<ConnectionEvents>,
}

impl Events {
    /// Waits for the next event; `Ok(None)` once the connection has ended and every event was
    /// read.
    ///
    /// # Errors
    ///
    /// [`RecvError::WouldDeadlock`] at once when it would have to wait on an I/O driver thread
    /// (inside a transport plugin or a [`Client::call_link`] closure).
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until an event happens or the connection ends.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-events-recv-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let events = client.events();
    /// client.close().unwrap();
    /// assert!(events.recv().unwrap().is_none(), "closed: the events end");
    /// ```
    pub fn recv(&self) -> Result<Option<ConnectionEvent>, RecvError> {
        self.recv_until(None)
    }

    /// Waits at most `timeout` for the next event.
    ///
    /// # Errors
    ///
    /// [`RecvError::Timeout`] if none came in time, and as [`Events::recv`].
    ///
    /// # Blocking
    ///
    /// Parks the calling thread for at most `timeout`.
    ///
    /// # Examples
    ///
    /// See [`Client::events`].
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<ConnectionEvent>, RecvError> {
        self.recv_until(Some(Instant::now() + timeout))
    }

    /// Waits until `deadline` at most for the next event.
    ///
    /// # Errors
    ///
    /// As [`Events::recv_timeout`].
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
    /// let listener = MemListener::bind("blocking-events-deadline-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let deadline = Instant::now() + Duration::from_millis(10);
    /// assert!(client.events().recv_deadline(deadline).unwrap_err().is_timeout());
    /// ```
    pub fn recv_deadline(&self, deadline: Instant) -> Result<Option<ConnectionEvent>, RecvError> {
        self.recv_until(Some(deadline))
    }

    /// The next event if one is waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-events-try-recv-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// assert!(client.events().try_recv().is_none(), "nothing happened since");
    /// ```
    pub fn try_recv(&self) -> Option<ConnectionEvent> {
        self.lock().try_next()
    }

    fn lock(&self) -> MutexGuard<'_, ConnectionEvents> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<Option<ConnectionEvent>, RecvError> {
        let mut events = self.lock();
        wait_until(deadline, |waker| events.poll_next_with(waker))
    }
}
