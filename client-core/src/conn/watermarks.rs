//! A subscriber's handle on a connection's watermark crossings. The crossings themselves are
//! found in the state ([`Marks`](crate::state::watermark)); this handle holds the connection so
//! that dropping it unsubscribes.

use std::fmt;
use std::sync::Arc;
use std::task::{Poll, Waker};

use crate::conn::ConnShared;
use crate::state::feed::Subscription;
use crate::state::watermark::Watermark;

/// A subscription to a connection's watermark crossings, returned by
/// [`Connection::watermarks`](crate::Connection::watermarks).
///
/// Yields `High` and `Low` alternately, once per crossing, in order, and ends (`None`) after
/// the connection ends. Dropping it unsubscribes.
///
/// # Examples
///
/// ```
/// use std::task::{Poll, Waker};
/// use tidegate::{Config, Connection};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-watermark-events").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new().watermarks(64, 16)).unwrap();
/// let mut events = conn.watermarks();
/// assert_eq!(events.poll_next_with(Waker::noop()), Poll::Pending);
/// ```
pub struct WatermarkEvents {
    conn: Arc<ConnShared>,
    subscription: Subscription<Watermark>,
}

impl fmt::Debug for WatermarkEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatermarkEvents")
            .field("subscription", &self.subscription)
            .finish_non_exhaustive()
    }
}

impl WatermarkEvents {
    pub(crate) fn new(conn: Arc<ConnShared>) -> Self {
        let mut state = conn.lock();
        let subscription = state.marks().subscribe();
        if state.has_ended() {
            subscription.end();
        }
        drop(state);
        Self { conn, subscription }
    }

    /// The next crossing: `Ready(Some(..))` if one happened, `Ready(None)` once the
    /// connection has ended and every crossing was read, else `Pending` (and `waker` is woken
    /// at the next crossing or at the end).
    ///
    /// # Examples
    ///
    /// See [`WatermarkEvents`].
    pub fn poll_next_with(&mut self, waker: &Waker) -> Poll<Option<Watermark>> {
        self.subscription.poll_next(waker)
    }

    /// The next crossing if one is waiting, without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-watermark-try-next").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new().watermarks(64, 16)).unwrap();
    /// assert_eq!(conn.watermarks().try_next(), None);
    /// ```
    pub fn try_next(&mut self) -> Option<Watermark> {
        self.subscription.try_next()
    }
}

impl Drop for WatermarkEvents {
    fn drop(&mut self) {
        self.conn.lock().marks().unsubscribe(&self.subscription);
    }
}
