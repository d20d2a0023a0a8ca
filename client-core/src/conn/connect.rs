//! Waiting for the link to come up: [`Connected`]. It reads the phase and the cause; the
//! connection attempt itself belongs to the driver and goes on whether or not anyone waits.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::conn::ConnShared;
use crate::state::error::{ConnectError, DisconnectKind, mask_credentials};
use crate::state::machine::Phase;

/// Waits for a connection to be established, returned by [`Connection::connected`](crate::Connection::connected).
///
/// # Cancel safety
///
/// Dropping it stops waiting; the connection attempt goes on.
///
/// # Examples
///
/// ```
/// use tidegate::{Config, Connected, Connection};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-connected").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
/// let connected: Connected<'_> = conn.connected();
/// tidegate::block_on(connected).unwrap();
/// assert!(!conn.is_closed());
/// ```
#[must_use = "does nothing unless polled"]
#[derive(Debug)]
pub struct Connected<'a> {
    conn: &'a ConnShared,
}

impl<'a> Connected<'a> {
    /// Waits for `conn` to connect.
    pub(crate) fn new(conn: &'a ConnShared) -> Self {
        Self { conn }
    }
}

impl Connected<'_> {
    /// Polls with a bare waker.
    ///
    /// On `Pending`, `waker` is woken when the connection attempt ends.
    ///
    /// # Examples
    ///
    /// Waiting the way a blocking caller does, parked between polls:
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::task::{Poll, Wake, Waker};
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// struct Unpark(std::thread::Thread);
    ///
    /// impl Wake for Unpark {
    ///     fn wake(self: Arc<Self>) {
    ///         self.0.unpark();
    ///     }
    /// }
    ///
    /// let listener = MemListener::bind("doc-connected-poll-with").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    /// let mut connected = conn.connected();
    /// let result = loop {
    ///     match connected.poll_with(&waker) {
    ///         Poll::Ready(result) => break result,
    ///         Poll::Pending => std::thread::park(),
    ///     }
    /// };
    /// assert!(result.is_ok());
    /// ```
    pub fn poll_with(&mut self, waker: &Waker) -> Poll<Result<(), ConnectError>> {
        let shared = self.conn;
        let mut state = shared.lock();
        match state.phase() {
            Phase::Connecting => {
                state.watch(waker);
                Poll::Pending
            }
            Phase::Open => Poll::Ready(Ok(())),
            Phase::Finishing if state.was_opened() => Poll::Ready(Ok(())),
            Phase::Finishing => {
                state.watch(waker);
                Poll::Pending
            }
            Phase::Closing | Phase::Closed => {
                let url = || mask_credentials(shared.url());
                Poll::Ready(Err(match state.cause() {
                    None if state.was_opened() => return Poll::Ready(Ok(())),
                    None => ConnectError::Closed { url: url() },
                    Some(cause) if cause.kind() == DisconnectKind::ConnectTimedOut => {
                        let after = shared.settings().connect_timeout.unwrap_or_default();
                        ConnectError::TimedOut { url: url(), after }
                    }
                    Some(cause) if !state.was_opened() => {
                        ConnectError::failed(url(), cause.clone())
                    }
                    Some(_) => return Poll::Ready(Ok(())),
                }))
            }
        }
    }
}

impl Future for Connected<'_> {
    type Output = Result<(), ConnectError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_with(cx.waker())
    }
}
