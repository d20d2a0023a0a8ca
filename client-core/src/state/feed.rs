//! A feed of events to subscribers: one bounded queue per subscriber, filled under the
//! connection's lock and read from the subscriber's handle under the queue's own short lock.
//!
//! What a full queue does is the publisher's choice, made at each publish: the watermarks drop
//! their oldest pair ([`Feed::publish`] with a `make_room`), the connection events never drop
//! and instead hold back what would produce more ([`Feed::has_room`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

use crate::state::effects::Effects;

/// One subscriber's queue.
#[derive(Debug)]
struct Queue<T> {
    events: VecDeque<T>,
    waker: Option<Waker>,
    /// The connection has ended: no more events will come.
    ended: bool,
    /// The publisher waits until at most this many events are left unread.
    holding: Option<usize>,
    /// A read brought the queue down to what the publisher waited for.
    resumed: bool,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Self { events: VecDeque::new(), waker: None, ended: false, holding: None, resumed: false }
    }
}

fn lock<T>(queue: &Mutex<Queue<T>>) -> MutexGuard<'_, Queue<T>> {
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The publishing side: every subscriber's queue.
#[derive(Debug)]
pub(crate) struct Feed<T> {
    subscribers: Vec<Arc<Mutex<Queue<T>>>>,
}

impl<T> Default for Feed<T> {
    fn default() -> Self {
        Self { subscribers: Vec::new() }
    }
}

impl<T: Clone> Feed<T> {
    /// Queues `event` for every subscriber and wakes those waiting. `make_room` runs first on
    /// each queue, to drop what the publisher allows to be dropped.
    pub(crate) fn publish(
        &mut self,
        event: T,
        fx: &mut Effects,
        make_room: impl Fn(&mut VecDeque<T>),
    ) {
        for subscriber in &self.subscribers {
            let mut queue = lock(subscriber);
            make_room(&mut queue.events);
            queue.events.push_back(event.clone());
            fx.wake.extend(queue.waker.take());
        }
    }
}

impl<T> Feed<T> {
    /// Whether every subscriber has fewer than `limit - room` events unread, so `room` more
    /// fit under `limit`. Those that do not are marked: their next read that brings them
    /// there says so ([`Subscription::take_resumed`]).
    pub(crate) fn has_room(&self, limit: usize, room: usize) -> bool {
        let mut all = true;
        for subscriber in &self.subscribers {
            let mut queue = lock(subscriber);
            if queue.events.len() + room > limit {
                queue.holding = Some(limit - room);
                all = false;
            }
        }
        all
    }

    /// A new subscriber, whose queue starts with `first`.
    pub(crate) fn subscribe(&mut self, first: impl IntoIterator<Item = T>) -> Subscription<T> {
        let mut queue = Queue::default();
        queue.events.extend(first);
        let queue = Arc::new(Mutex::new(queue));
        self.subscribers.push(queue.clone());
        Subscription(queue)
    }

    pub(crate) fn unsubscribe(&mut self, subscription: &Subscription<T>) {
        self.subscribers.retain(|q| !Arc::ptr_eq(q, &subscription.0));
    }

    /// The connection ended: every subscriber's stream ends once its events are read.
    pub(crate) fn end(&mut self, fx: &mut Effects) {
        for subscriber in self.subscribers.drain(..) {
            let mut queue = lock(&subscriber);
            queue.ended = true;
            fx.wake.extend(queue.waker.take());
        }
    }
}

/// One subscriber's end of its queue.
#[derive(Debug)]
pub(crate) struct Subscription<T>(Arc<Mutex<Queue<T>>>);

impl<T> Subscription<T> {
    /// The next event: `Ready(Some(..))` if one is queued, `Ready(None)` once the connection
    /// has ended and every event was read, else `Pending`, with `waker` kept for the next
    /// event or the end.
    pub(crate) fn poll_next(&self, waker: &Waker) -> Poll<Option<T>> {
        let mut queue = lock(&self.0);
        if let Some(event) = pop(&mut queue) {
            return Poll::Ready(Some(event));
        }
        if queue.ended {
            return Poll::Ready(None);
        }
        if queue.waker.as_ref().is_none_or(|w| !w.will_wake(waker)) {
            queue.waker = Some(waker.clone());
        }
        Poll::Pending
    }

    /// The next event if one is queued.
    pub(crate) fn try_next(&self) -> Option<T> {
        pop(&mut lock(&self.0))
    }

    /// Whether a read since the last call brought the queue down to what a holding publisher
    /// waited for: it should be told.
    pub(crate) fn take_resumed(&self) -> bool {
        std::mem::take(&mut lock(&self.0).resumed)
    }

    /// Ends the stream at once: the connection ended before the subscription was taken.
    pub(crate) fn end(&self) {
        lock(&self.0).ended = true;
    }

    /// The events queued now, oldest first, taken out (for tests).
    #[cfg(test)]
    pub(crate) fn drain(&self) -> Vec<T> {
        lock(&self.0).events.drain(..).collect()
    }

    /// Sets the waker to be woken at the next event (for tests).
    #[cfg(test)]
    pub(crate) fn set_waker(&self, waker: Waker) {
        lock(&self.0).waker = Some(waker);
    }
}

fn pop<T>(queue: &mut Queue<T>) -> Option<T> {
    let event = queue.events.pop_front()?;
    if queue.holding.is_some_and(|at| queue.events.len() <= at) {
        queue.holding = None;
        queue.resumed = true;
    }
    Some(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_holding_publisher_is_told_once_the_reader_made_room() {
        let mut feed = Feed::default();
        let queue = feed.subscribe([]);
        let mut fx = Effects::new(Instant::now);
        for n in 0..6 {
            feed.publish(n, &mut fx, |_| {});
        }
        assert!(feed.has_room(8, 2), "6 + 2 fit under 8");
        assert!(!feed.has_room(6, 2), "6 + 2 do not fit under 6");
        assert_eq!(queue.try_next(), Some(0));
        assert!(!queue.take_resumed(), "5 + 2 still do not fit");
        let waker = Waker::noop();
        assert_eq!(queue.poll_next(waker), Poll::Ready(Some(1)));
        assert!(queue.take_resumed(), "4 + 2 fit: the publisher is told");
        assert!(!queue.take_resumed(), "and told once");
        assert_eq!(queue.try_next(), Some(2));
        assert!(!queue.take_resumed(), "nobody waits any more");
    }

    #[test]
    fn make_room_runs_before_each_publish_and_end_ends_after_the_queue() {
        let mut feed = Feed::default();
        let queue = feed.subscribe([7]);
        let mut fx = Effects::new(Instant::now);
        for n in 0..4 {
            feed.publish(n, &mut fx, |q| {
                if q.len() >= 3 {
                    q.drain(..2);
                }
            });
        }
        assert_eq!(queue.drain(), [1, 2, 3], "7 and 0 made room for 2");
        queue.set_waker(Waker::noop().clone());
        feed.publish(9, &mut fx, |_| {});
        assert_eq!(fx.wake.len(), 1, "the waiting reader is woken");
        feed.end(&mut fx);
        assert_eq!(queue.poll_next(Waker::noop()), Poll::Ready(Some(9)));
        assert_eq!(queue.poll_next(Waker::noop()), Poll::Ready(None));
    }
}
