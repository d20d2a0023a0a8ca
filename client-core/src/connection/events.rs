//! The events in the life of a connection's links, and a subscriber's handle on them. The state
//! records them ([`state::events`](crate::state::events)); this handle adds the endpoint and,
//! when a read makes room for a reconnect attempt held back for it, tells the driver.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crate::conn::ConnShared;
use crate::state::effects::Effects;
use crate::state::error::Disconnect;
use crate::state::events::{Event, PossiblyDelivered};
use crate::state::feed::Subscription;
use crate::transport::Endpoint;

// Named in the docs only.
#[cfg(doc)]
use crate::{Config, Connection, Reconnect};

/// An event in the life of a connection's links, from [`ConnectionEvents`].
///
/// Without [reconnection](Config::reconnect) a connection has one link, and its events are at
/// most a `Connected`: the connection ends with its link, and
/// [`Connection::closed`] tells how. With reconnection, each lost link is a `Disconnected`,
/// followed by a `Reconnecting` for each attempt to replace it, then a `Connected` for the
/// link that came up, or a `GaveUp`.
///
/// With [fallback endpoints](Config::fallback), a first link that fails to come up is
/// followed by a `Reconnecting` for the next endpoint in the list, reconnection on or not.
///
/// # Examples
///
/// ```
/// use tidegate::ConnectionEvent;
///
/// fn describe(event: &ConnectionEvent) -> String {
///     match event {
///         ConnectionEvent::Connected { endpoint, attempt } => {
///             format!("up on {} (attempt {attempt})", endpoint.address())
///         }
///         ConnectionEvent::Disconnected { cause, replayed, acknowledged, possibly_delivered } => {
///             format!(
///                 "lost ({cause}): {replayed} frames to send again, {} acknowledged, {} possibly \
///                  delivered",
///                 acknowledged.end - acknowledged.start,
///                 possibly_delivered.count()
///             )
///         }
///         ConnectionEvent::Reconnecting { attempt, delay, endpoint } => {
///             format!("attempt {attempt} to {} in {delay:?}", endpoint.address())
///         }
///         ConnectionEvent::GaveUp { cause } => format!("gave up: {cause}"),
///         _ => "something new".to_owned(),
///     }
/// }
/// # let _ = describe;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// A link came up.
    Connected {
        /// Where it connected: one of [`Connection::endpoints`].
        endpoint: Endpoint,
        /// 0 if the first try at open connected; else the number of the attempt that brought
        /// the link, as the policy counts them (from 1 in an outage, or further on if the
        /// previous link was up for less than [`Reconnect::stable_after`]).
        attempt: u32,
    },
    /// The link that was up was lost, and reconnection will try to replace it.
    Disconnected {
        /// Why it was lost.
        cause: Disconnect,
        /// Frames put back into the buffer, to be sent first on the next link: those never
        /// written, and a frame cut by the loss when the peer cannot have acted on its part.
        replayed: u64,
        /// The frames the lost link wrote whole and whose every byte its peer acknowledged, by
        /// their numbers in wire order (from 0, as in [`PossiblyDelivered::written`]): for TCP
        /// on Linux, the frames the peer's host received. They are not sent again. Whether the
        /// application there read them before the link was lost, no transport can tell; a
        /// proxy between acknowledges for itself. Empty where the link cannot tell (TLS, other
        /// systems): its written frames are all possibly delivered.
        acknowledged: Range<u64>,
        /// The frames the peer may have received, which are not sent again: written and not
        /// known to be acknowledged, or cut.
        possibly_delivered: PossiblyDelivered,
    },
    /// An attempt to connect is due: to replace a lost link, or after an attempt that
    /// failed (the first try at open included).
    Reconnecting {
        /// Its number in the outage, from 1.
        attempt: u32,
        /// How long it waits before it starts, jitter included: the backoff's delay for the
        /// first attempt of a pass over the endpoints, none for the next endpoint in a pass.
        delay: Duration,
        /// Where it goes: one of [`Connection::endpoints`].
        endpoint: Endpoint,
    },
    /// Reconnection stopped: the policy's limit was reached, or the failure is one that
    /// trying again cannot mend (a certificate refused, for one). The connection ends; the
    /// frames still buffered come back in its close report.
    GaveUp {
        /// The last attempt's failure, or the lost link's.
        cause: Disconnect,
    },
}

/// A subscription to a connection's events, returned by
/// [`Connection::events`]: every event after the subscription, in order, then the end
/// (`None`) once the connection has ended. Dropping it unsubscribes.
///
/// It loses no event. A subscriber keeps up to 64 unread; when fewer than three places are
/// left (what one reconnect attempt can add), the connection holds its next attempt back until
/// the subscriber reads, rather than drop an event. So read the events you subscribe to, or
/// drop the subscription.
///
/// # Examples
///
/// ```
/// use std::task::{Poll, Waker};
/// use std::time::Duration;
/// use tidegate::{Config, Connection};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-connection-events").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
/// tidegate::block_on(conn.connected()).unwrap();
/// let mut events = conn.events();
/// assert!(events.poll_next_with(Waker::noop()).is_pending(), "nothing happened since");
/// tidegate::block_on(conn.close(Duration::from_secs(5)));
/// assert!(matches!(events.poll_next_with(Waker::noop()), Poll::Ready(None)), "it ended");
/// ```
pub struct ConnectionEvents {
    conn: Arc<ConnShared>,
    /// The connection's endpoints, which the events name by index.
    endpoints: Arc<[Endpoint]>,
    subscription: Subscription<Event>,
}

impl fmt::Debug for ConnectionEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionEvents")
            .field("endpoints", &self.endpoints)
            .field("subscription", &self.subscription)
            .finish_non_exhaustive()
    }
}

impl ConnectionEvents {
    pub(crate) fn new(conn: Arc<ConnShared>, endpoints: Arc<[Endpoint]>) -> Self {
        let mut state = conn.lock();
        let subscription = state.events().subscribe();
        if state.has_ended() {
            subscription.end();
        }
        drop(state);
        Self { conn, endpoints, subscription }
    }

    /// The next event: `Ready(Some(..))` if one happened, `Ready(None)` once the connection
    /// has ended and every event was read, else `Pending` (and `waker` is woken at the next
    /// event or at the end).
    ///
    /// # Examples
    ///
    /// See [`ConnectionEvents`].
    pub fn poll_next_with(&mut self, waker: &Waker) -> Poll<Option<ConnectionEvent>> {
        let polled = self.subscription.poll_next(waker);
        polled.map(|event| event.map(|event| self.read(event)))
    }

    /// The next event if one is waiting, without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-connection-events-try-next").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let mut events = conn.events();
    /// while let Some(event) = events.try_next() {
    ///     println!("{event:?}");
    /// }
    /// ```
    pub fn try_next(&mut self) -> Option<ConnectionEvent> {
        let event = self.subscription.try_next()?;
        Some(self.read(event))
    }

    /// Turns a queued event into the public one, and tells the driver if this read made the
    /// room a held-back attempt waited for.
    fn read(&self, event: Event) -> ConnectionEvent {
        if self.subscription.take_resumed() {
            self.wake_driver();
        }
        match event {
            Event::Connected { attempt, endpoint } => {
                ConnectionEvent::Connected { endpoint: self.endpoint(endpoint), attempt }
            }
            Event::Disconnected { cause, replayed, acknowledged, possibly_delivered } => {
                ConnectionEvent::Disconnected { cause, replayed, acknowledged, possibly_delivered }
            }
            Event::Reconnecting { attempt, delay, endpoint } => {
                ConnectionEvent::Reconnecting { attempt, delay, endpoint: self.endpoint(endpoint) }
            }
            Event::GaveUp { cause } => ConnectionEvent::GaveUp { cause },
        }
    }

    /// The endpoint at `index` in the connection's list.
    fn endpoint(&self, index: usize) -> Endpoint {
        self.endpoints[index].clone()
    }

    fn wake_driver(&self) {
        let mut fx = Effects::new(Instant::now);
        fx.notify_driver = true;
        self.conn.apply(fx);
    }
}

impl Drop for ConnectionEvents {
    fn drop(&mut self) {
        self.conn.lock().events().unsubscribe(&self.subscription);
        // An attempt may have been held back for this subscriber.
        self.wake_driver();
    }
}
