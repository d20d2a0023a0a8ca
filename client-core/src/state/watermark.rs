//! Watermarks: events when the outgoing buffer fills past a high mark and when it drains back
//! to a low mark, so an application can pause its own upstream before senders block.
//!
//! The crossings are detected under the connection's lock, where the buffered byte count
//! changes, so each subscriber sees them once each and in order, alternating `High` and `Low`.
//! A subscriber that does not keep up keeps at most [`QUEUE`] events: past that the oldest
//! `High`/`Low` pair is dropped, which keeps the alternation and the latest state right.

use crate::state::effects::Effects;
use crate::state::feed::{Feed, Subscription};

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

/// The watermark state of a connection, kept in its state behind its lock.
#[derive(Debug, Default)]
pub(crate) struct Marks {
    /// `(high, low)`, with `low < high`, if configured.
    levels: Option<(usize, usize)>,
    /// Whether the buffer is above the high mark (crossed it and not yet drained to low).
    above: bool,
    feed: Feed<Watermark>,
}

impl Marks {
    pub(crate) fn new(levels: Option<(usize, usize)>) -> Self {
        Self { levels, ..Self::default() }
    }

    /// Whether growing to `held` buffered bytes would cross the high mark (and so publish).
    #[inline]
    pub(crate) fn would_rise(&self, held: usize) -> bool {
        matches!(self.levels, Some((high, _)) if !self.above && held >= high)
    }

    /// How many more bytes the buffer, holding `held`, may take without crossing the high mark,
    /// if a crossing is possible now; `None` if none is.
    #[inline]
    pub(crate) fn headroom(&self, held: usize) -> Option<usize> {
        match self.levels {
            Some((high, _)) if !self.above => Some((high - 1).saturating_sub(held)),
            _ => None,
        }
    }

    /// Notes the buffered byte count after it grew.
    pub(crate) fn grew(&mut self, held: usize, fx: &mut Effects) {
        if self.would_rise(held) {
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
        self.feed.publish(event, fx, |events| {
            if events.len() >= QUEUE {
                events.drain(..2);
            }
        });
    }

    /// A new subscriber; it starts with a `High` event if the buffer is above the mark now.
    pub(crate) fn subscribe(&mut self) -> Subscription<Watermark> {
        self.feed.subscribe(self.above.then_some(Watermark::High))
    }

    pub(crate) fn unsubscribe(&mut self, subscription: &Subscription<Watermark>) {
        self.feed.unsubscribe(subscription);
    }

    /// The connection ended: every subscriber's stream ends once its events are read.
    pub(crate) fn end(&mut self, fx: &mut Effects) {
        self.feed.end(fx);
    }
}

#[cfg(test)]
mod tests {
    //! The boundaries of the marks: reaching a mark exactly is a crossing ("up to the high mark
    //! or past it", "down to the low mark or below it"), one byte short of it is not.

    use super::*;
    use std::task::Waker;
    use std::time::Instant;

    /// Levels with room on both sides of each mark.
    const HIGH: usize = 80;
    const LOW: usize = 20;

    fn taken(queue: &Subscription<Watermark>) -> Vec<Watermark> {
        queue.drain()
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
        queue.set_waker(Waker::noop().clone());
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
