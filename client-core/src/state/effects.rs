//! What a change of state asks the world to do once the lock is released, and the small trait
//! through which the I/O layer above hears about it.
//!
//! State changes happen under a connection's lock and must not wake anyone there: a woken
//! sender would only block on the same lock, and a budget grant locks another connection.
//! So every change records its consequences in an [`Effects`], and the caller carries them
//! out after the lock is dropped ([`Effects::wake_all`], then telling the driver through
//! [`Notify`]).

use std::fmt;
use std::task::Waker;
use std::time::Instant;

use crate::state::budget::{self, Grant};

/// Things the caller must do once the lock is released, and the time it tells the state.
#[derive(Debug)]
pub(crate) struct Effects {
    /// Wakers of waiters whose wait ended.
    pub(crate) wake: Vec<Waker>,
    /// The driver must look at this connection (new data in an idle buffer, a closing, …).
    pub(crate) notify_driver: bool,
    /// The driver must wake up at this instant to fire a deadline.
    pub(crate) timer: Option<Instant>,
    /// Room a shared budget reserved for senders of (possibly other) connections.
    pub(crate) grants: Vec<Grant>,
    /// The caller's clock, or the instant it gave once read.
    clock: Clock,
}

/// Where an [`Effects`] gets the time from.
#[derive(Debug, Clone, Copy)]
enum Clock {
    /// Not read yet: this reads it.
    Source(fn() -> Instant),
    /// Read, or given: every later question gets this answer.
    At(Instant),
}

impl Effects {
    /// Effects whose time comes from `clock`, read the first time a change needs it.
    ///
    /// The layers with I/O pass `Instant::now`; tests and models pass their own clock.
    #[inline]
    pub(crate) fn new(clock: fn() -> Instant) -> Self {
        Self::with_clock(Clock::Source(clock))
    }

    /// Effects whose time is `now`, for a caller that has already read its clock.
    #[inline]
    pub(crate) fn at(now: Instant) -> Self {
        Self::with_clock(Clock::At(now))
    }

    fn with_clock(clock: Clock) -> Self {
        Self { wake: Vec::new(), notify_driver: false, timer: None, grants: Vec::new(), clock }
    }

    /// The current time as the caller tells it; the same answer for the rest of this section.
    #[inline]
    pub(crate) fn now(&mut self) -> Instant {
        match self.clock {
            Clock::At(now) => now,
            Clock::Source(read) => {
                let now = read();
                self.clock = Clock::At(now);
                now
            }
        }
    }

    /// Delivers the budget grants and wakes everyone collected. Call without holding a lock.
    #[inline]
    pub(crate) fn wake_all(&mut self) {
        if !self.grants.is_empty() {
            budget::deliver(std::mem::take(&mut self.grants));
        }
        if self.wake.is_empty() {
            return;
        }
        for waker in self.wake.drain(..) {
            waker.wake();
        }
    }
}

/// How the layers below the driver ask it to look at a connection: the driver implements it,
/// and connections and links hold it as a `Weak<dyn Notify>`, so that a driver that has gone
/// is simply not told.
///
/// Both calls must be cheap and must not block: they are made by producers on their send path.
pub(crate) trait Notify: Send + Sync + fmt::Debug {
    /// Asks the driver to look at connection `id` soon.
    fn notify(&self, id: usize);

    /// Asks the driver to look at connection `id` at `at`.
    fn add_timer(&self, at: Instant, id: usize);
}
