//! Connection events: a link came up, a link was lost (with the fate of its frames), an attempt
//! to replace it is due, reconnection gave up. They are queued for each subscriber under the
//! connection's lock, where the link's life is recorded.
//!
//! The feed is lossless and bounded. No event is ever dropped; instead, while a subscriber
//! has fewer than [`PER_ATTEMPT`] free places of its [`QUEUE`], the driver holds the next
//! reconnect attempt back until the subscriber reads ([`Events::has_room`]). Only an attempt
//! adds events past a lost link, so a queue never holds more than [`QUEUE`].

use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;

use crate::state::effects::Effects;
use crate::state::error::Disconnect;
use crate::state::feed::{Feed, Subscription};

/// Events a subscriber's queue holds at most.
pub(crate) const QUEUE: usize = 64;

/// Events one attempt can bring before the next is held back: its `Reconnecting`, then the
/// link's `Connected`, then its `Disconnected` (or a `GaveUp` in place of either of the last).
const PER_ATTEMPT: usize = 3;

/// An event in the life of a connection's links, as the state records it; the public handle
/// adds the endpoint.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    /// A link came up to endpoint `endpoint` (an index into the connection's list): the
    /// first, or one brought by attempt `attempt`.
    Connected { attempt: u32, endpoint: usize },
    /// The link that was up is lost; reconnection follows.
    Disconnected {
        cause: Disconnect,
        replayed: u64,
        acknowledged: Range<u64>,
        possibly_delivered: PossiblyDelivered,
    },
    /// Attempt `attempt`, to endpoint `endpoint`, starts after `delay`.
    Reconnecting { attempt: u32, delay: Duration, endpoint: usize },
    /// Reconnection stopped: the policy's limit, or a failure that trying again cannot mend.
    GaveUp { cause: Disconnect },
}

/// The frames of a lost link that may have reached the peer, which reconnection does not send
/// again: carried by a `Disconnected` connection event.
///
/// Two kinds of frames are possibly delivered:
///
/// - frames the lost link **wrote whole**, and that the peer is not known to have acknowledged
///   (those it did are the event's `acknowledged` frames). The transport took them, and the
///   peer may or may not have read them before the link broke. They are told by their
///   numbers ([`written`](Self::written)), and handed back too
///   ([`written_frames`](Self::written_frames)) when the link counts what its peer
///   acknowledged (TCP and TLS on Linux, `mem`): the connection then keeps each written frame until
///   it is acknowledged. With [`Reconnect::at_least_once`](crate::Reconnect::at_least_once)
///   they are sent again instead, and are not here;
/// - a frame **cut** by the loss, partly written, when the peer could have acted on the part
///   it received (no framing, and frames not declared atomic with
///   [`Reconnect::atomic_frames`](crate::Reconnect::atomic_frames)). It is handed back whole
///   ([`cut_frames`](Self::cut_frames)): resending it is the application's decision.
///
/// # Examples
///
/// ```
/// use tidegate::PossiblyDelivered;
///
/// let none = PossiblyDelivered::default();
/// assert_eq!(none.count(), 0);
/// assert!(none.is_empty());
/// assert!(none.cut_frames().is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PossiblyDelivered {
    written: Range<u64>,
    /// The frames of `written`, when they were kept; else empty.
    frames: Vec<Bytes>,
    cut: Vec<Bytes>,
}

impl PossiblyDelivered {
    /// The frames written whole, by number, and themselves if they were kept (else empty),
    /// and the frames cut and handed back.
    pub(crate) fn new(written: Range<u64>, frames: Vec<Bytes>, cut: Vec<Bytes>) -> Self {
        debug_assert!(
            frames.is_empty() || frames.len() as u64 == written.end - written.start,
            "kept frames are every frame written"
        );
        Self { written, frames, cut }
    }

    /// How many frames may have reached the peer: those written whole, and those cut.
    ///
    /// # Examples
    ///
    /// See [`PossiblyDelivered`].
    pub fn count(&self) -> u64 {
        self.written.end - self.written.start + self.cut.len() as u64
    }

    /// Whether no frame of the lost link may have reached the peer.
    ///
    /// # Examples
    ///
    /// See [`PossiblyDelivered`].
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// The frames the lost link wrote whole, by their number in the order the connection
    /// wrote frames: the connection's first written frame is 0, and a frame written again
    /// after a reconnection gets a new number. `written().end` is the connection's
    /// `frames_written` count when the link was lost.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::PossiblyDelivered;
    ///
    /// assert!(PossiblyDelivered::default().written().is_empty());
    /// ```
    pub fn written(&self) -> Range<u64> {
        self.written.clone()
    }

    /// The frames the lost link wrote whole, themselves, in the order of
    /// [`written`](Self::written), when the link counted what its peer acknowledged; empty on
    /// a link that cannot tell (Unix sockets, other systems, a plugin without
    /// [`Link::bytes_acked`](crate::transport::Link::bytes_acked)), where only their numbers
    /// are known. With framing, each is the payload as the caller gave it.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{ConnectionEvent, PossiblyDelivered};
    ///
    /// fn resend_later(event: ConnectionEvent, outbox: &mut Vec<tidegate::Bytes>) {
    ///     if let ConnectionEvent::Disconnected { possibly_delivered, .. } = event {
    ///         outbox.extend(possibly_delivered.written_frames().iter().cloned());
    ///     }
    /// }
    /// assert!(PossiblyDelivered::default().written_frames().is_empty());
    /// ```
    pub fn written_frames(&self) -> &[Bytes] {
        &self.frames
    }

    /// Takes every possibly delivered frame at hand, in the order they were sent: the
    /// [written ones](Self::written_frames), then the [cut one](Self::cut_frames).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::PossiblyDelivered;
    ///
    /// assert!(PossiblyDelivered::default().into_frames().is_empty());
    /// ```
    pub fn into_frames(self) -> Vec<Bytes> {
        let mut frames = self.frames;
        frames.extend(self.cut);
        frames
    }

    /// The frames cut by the loss, each whole, in the order they were sent.
    ///
    /// # Examples
    ///
    /// See [`PossiblyDelivered`].
    pub fn cut_frames(&self) -> &[Bytes] {
        &self.cut
    }

    /// Takes the frames cut by the loss, each whole, in the order they were sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::PossiblyDelivered;
    ///
    /// let frames: Vec<tidegate::Bytes> = PossiblyDelivered::default().into_cut_frames();
    /// assert!(frames.is_empty());
    /// ```
    pub fn into_cut_frames(self) -> Vec<Bytes> {
        self.cut
    }
}

/// A connection's event subscribers, kept in its state behind its lock.
#[derive(Debug, Default)]
pub(crate) struct Events {
    feed: Feed<Event>,
}

impl Events {
    /// Queues `event` for every subscriber.
    pub(crate) fn publish(&mut self, event: Event, fx: &mut Effects) {
        log::debug!("connection event: {event:?}");
        self.feed.publish(event, fx, |events| {
            debug_assert!(events.len() < QUEUE, "held back before the queue could fill");
        });
    }

    /// Whether every subscriber has room for the events of one more reconnect attempt. If
    /// not, the attempt waits: the subscriber's next read that makes room tells the driver.
    pub(crate) fn has_room(&self) -> bool {
        self.feed.has_room(QUEUE, PER_ATTEMPT)
    }

    /// A new subscriber: it gets the events from now on.
    pub(crate) fn subscribe(&mut self) -> Subscription<Event> {
        self.feed.subscribe(None)
    }

    pub(crate) fn unsubscribe(&mut self, subscription: &Subscription<Event>) {
        self.feed.unsubscribe(subscription);
    }

    /// The connection ended: every subscriber's stream ends once its events are read.
    pub(crate) fn end(&mut self, fx: &mut Effects) {
        self.feed.end(fx);
    }
}
