//! Watermarks: events when the outgoing buffer fills past a high mark and when it drains back
//! to a low mark, so an application can pause its own upstream before senders block.
//!
//! The crossings are detected under the connection's lock, where the buffered byte count
//! changes, so each subscriber sees them once each and in order, alternating `High` and `Low`.
//! A subscriber that does not keep up keeps at most [`QUEUE`] events: past that the oldest
//! `High`/`Low` pair is dropped, which keeps the alternation and the latest state right.

use std::collections::VecDeque;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

use crate::state::effects::Effects;

/// Events a subscriber keeps before it drops the oldest pair.
const QUEUE: usize = 64;

/// A crossing of one of the buffer's watermarks.
///
/// # Examples
///
/// ```
/// use tidegate::Watermark;
///
/// assert_ne!(Watermark::High, Watermark::Low);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Watermark {
    /// The buffer filled up to the high mark or past it: pause upstream.
    High,
    /// The buffer drained down to the low mark or below it: resume upstream.
    Low,
}

/// One subscriber's queue.
#[derive(Debug, Default)]
struct Queue {
    events: VecDeque<Watermark>,
    waker: Option<Waker>,
    /// The connection has ended: no more events will come.
    ended: bool,
}

fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The watermark state of a connection, kept in its state behind its lock.
#[derive(Debug, Default)]
pub(crate) struct Marks {
    /// `(high, low)`, with `low < high`, if configured.
    levels: Option<(usize, usize)>,
    /// Whether the buffer is above the high mark (crossed it and not yet drained to low).
    above: bool,
    subscribers: Vec<Arc<Mutex<Queue>>>,
}

impl Marks {
    pub(crate) fn new(levels: Option<(usize, usize)>) -> Self {
        Self { levels, ..Self::default() }
    }

    /// Notes the buffered byte count after it grew.
    pub(crate) fn grew(&mut self, held: usize, fx: &mut Effects) {
        if let Some((high, _)) = self.levels
            && !self.above
            && held >= high
        {
            self.above = true;
            self.publish(Watermark::High, fx);
        }
    }

    /// Notes the buffered byte count after it shrank.
    pub(crate) fn shrank(&mut self, held: usize, fx: &mut Effects) {
        if let Some((_, low)) = self.levels
            && self.above
            && held <= low
        {
            self.above = false;
            self.publish(Watermark::Low, fx);
        }
    }

    fn publish(&mut self, event: Watermark, fx: &mut Effects) {
        log::debug!("outgoing buffer crossed its {event:?} watermark");
        for subscriber in &self.subscribers {
            let mut queue = lock(subscriber);
            if queue.events.len() >= QUEUE {
                queue.events.drain(..2);
            }
            queue.events.push_back(event);
            fx.wake.extend(queue.waker.take());
        }
    }

    /// A new subscriber; it starts with a `High` event if the buffer is above the mark now.
    pub(crate) fn subscribe(&mut self) -> Subscription {
        let mut queue = Queue::default();
        if self.above {
            queue.events.push_back(Watermark::High);
        }
        let queue = Arc::new(Mutex::new(queue));
        self.subscribers.push(queue.clone());
        Subscription(queue)
    }

    pub(crate) fn unsubscribe(&mut self, subscription: &Subscription) {
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

/// One subscriber's end of its queue: what a `WatermarkEvents` handle reads from.
#[derive(Debug)]
pub(crate) struct Subscription(Arc<Mutex<Queue>>);

impl Subscription {
    /// The next crossing: `Ready(Some(..))` if one happened, `Ready(None)` once the
    /// connection has ended and every crossing was read, else `Pending`, with `waker` kept
    /// for the next crossing or the end.
    pub(crate) fn poll_next(&self, waker: &Waker) -> Poll<Option<Watermark>> {
        let mut queue = lock(&self.0);
        if let Some(event) = queue.events.pop_front() {
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

    /// The next crossing if one is waiting.
    pub(crate) fn try_next(&self) -> Option<Watermark> {
        lock(&self.0).events.pop_front()
    }

    /// Ends the stream at once: the connection ended before the subscription was taken.
    pub(crate) fn end(&self) {
        lock(&self.0).ended = true;
    }
}

#[cfg(test)]
mod tests {
    //! The boundaries of the marks: reaching a mark exactly is a crossing ("up to the high mark
    //! or past it", "down to the low mark or below it"), one byte short of it is not.

    use super::*;
    use std::time::Instant;

    /// Levels with room on both sides of each mark.
    const HIGH: usize = 80;
    const LOW: usize = 20;

    fn taken(queue: &Subscription) -> Vec<Watermark> {
        lock(&queue.0).events.drain(..).collect()
    }

    #[test]
    fn filling_to_exactly_the_high_mark_fires_high() {
        let mut marks = Marks::new(Some((HIGH, LOW)));
        let queue = marks.subscribe();
        let mut fx = Effects::new(Instant::now);
        marks.grew(HIGH - 1, &mut fx);
        assert_eq!(taken(&queue), [], "one byte below the high mark");
        marks.grew(HIGH, &mut fx);
        assert_eq!(taken(&queue), [Watermark::High], "at the high mark");
        marks.grew(HIGH + 1, &mut fx);
        assert_eq!(taken(&queue), [], "once per crossing");
    }

    #[test]
    fn draining_to_exactly_the_low_mark_fires_low() {
        let mut marks = Marks::new(Some((HIGH, LOW)));
        let queue = marks.subscribe();
        let mut fx = Effects::new(Instant::now);
        marks.grew(HIGH, &mut fx);
        assert_eq!(taken(&queue), [Watermark::High]);
        lock(&queue.0).waker = Some(Waker::noop().clone());
        fx.wake.clear();
        marks.shrank(LOW + 1, &mut fx);
        assert_eq!(taken(&queue), [], "one byte above the low mark");
        assert!(fx.wake.is_empty(), "nobody is woken for nothing");
        marks.shrank(LOW, &mut fx);
        assert_eq!(taken(&queue), [Watermark::Low], "at the low mark");
        assert_eq!(fx.wake.len(), 1, "the waiting subscriber is woken");
        marks.shrank(LOW - 1, &mut fx);
        marks.shrank(0, &mut fx);
        assert_eq!(taken(&queue), [], "once per crossing");
        // And the next fill to the high mark is a new crossing.
        marks.grew(HIGH, &mut fx);
        assert_eq!(taken(&queue), [Watermark::High]);
    }
}
