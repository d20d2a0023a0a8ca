//! The state of one connection behind its lock: the outgoing buffer, the FIFO queue of waiting
//! senders, and the life cycle. Pure bookkeeping, no I/O and no waiting.
//!
//! # The waiter queue
//!
//! A sender whose frame does not fit parks the frame in its slot in `waiters` and leaves a
//! [`Waker`]. Slots are keyed by a ticket taken from a counter, so the map's order is arrival
//! order. Admission follows two rules, which together give strict FIFO without barging:
//!
//! 1. A new frame enters the buffer directly only if **no one is waiting** and it fits.
//! 2. Whenever space is freed or a waiter leaves, [`State::grant`] moves frames from the head of
//!    the queue into the buffer for as long as the head fits.
//!
//! The hand-off in rule 2 is atomic: the frame moves from the slot into the buffer under the
//! lock, and the slot's outcome is recorded in the same step, so no space is ever granted to a
//! waiter that is gone. A waiter that gives up (timeout, cancel, close) removes its slot under
//! the same lock and takes its frame back; if it was the head, [`State::grant`] runs again so the
//! next one is reconsidered at once. Wakers are collected while the lock is held and woken by
//! the caller after it is released.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::task::Waker;
use std::time::Instant;

use bytes::Bytes;

use crate::buffer::{OutBuffer, UnsentFrame};
use crate::error::{Disconnect, FlushError, SendError};
use crate::report::{CloseReport, Stats};

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The link is being established. Frames are accepted and wait in the buffer.
    Connecting,
    /// The link is up.
    Open,
    /// `close` was called: no new frames; the driver drains the buffer until the deadline.
    Closing,
    /// The link is gone. `cause` says why, if the application did not close it.
    Closed,
}

/// How a queued send ended.
pub(crate) type Outcome = Result<(), SendError<Bytes>>;

/// A sender waiting for room, with its frame parked here.
#[derive(Debug)]
struct Waiter {
    frame: Bytes,
    waker: Waker,
    deadline: Option<Instant>,
    since: Instant,
}

/// A `flush` waiting for the written byte count to reach its target.
#[derive(Debug)]
struct Flusher {
    waker: Waker,
    deadline: Option<Instant>,
}

/// What a send attempt led to.
#[derive(Debug)]
pub(crate) enum Admit {
    /// The frame is in the buffer.
    Accepted,
    /// The frame waits in the queue under this ticket.
    Queued(u64),
}

/// Things the caller must do once the lock is released.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// Wakers of waiters whose wait ended.
    pub(crate) wake: Vec<Waker>,
    /// The driver must look at this connection (new data in an idle buffer, a closing, …).
    pub(crate) notify_driver: bool,
    /// The driver must wake up at this instant to fire a deadline.
    pub(crate) timer: Option<Instant>,
}

impl Effects {
    /// Wakes everyone collected. Call without holding the lock.
    pub(crate) fn wake_all(&mut self) {
        for waker in self.wake.drain(..) {
            waker.wake();
        }
    }
}

/// The state of one connection.
#[derive(Debug)]
pub(crate) struct State {
    buf: OutBuffer,
    /// Invariant: `buf.held() <= capacity`, always.
    capacity: usize,
    phase: Phase,
    /// Why the link ended, when it was not the application's close.
    cause: Option<Disconnect>,
    /// Waiting senders by ticket: the map's order is arrival order.
    ///
    /// Invariant: when not empty, the head does not fit (`held + head.len > capacity`), except
    /// transiently inside a call that ends with [`State::grant`].
    waiters: BTreeMap<u64, Waiter>,
    /// Deadlines of waiting senders, to expire them in order.
    deadlines: BTreeSet<(Instant, u64)>,
    /// Outcomes of queued sends that ended but were not yet collected by their sender.
    outcomes: HashMap<u64, Outcome>,
    /// Flushes waiting until `bytes_written` reaches the first element of the key.
    flushers: BTreeMap<(u64, u64), Flusher>,
    /// Wakers of those waiting for the phase to change (connect, close).
    watchers: Vec<Waker>,
    next_ticket: u64,
    /// Deadline of the drain while closing.
    close_deadline: Option<Instant>,
    /// Frames not written when the connection ended, for the first `close` to take.
    unsent: Option<Vec<UnsentFrame>>,
    close_timed_out: bool,
    /// Whether the link was ever up.
    opened: bool,
    /// Whether every handle was dropped without a close.
    abandoned: bool,
    stats: Stats,
}

impl State {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            buf: OutBuffer::new(capacity),
            capacity,
            phase: Phase::Connecting,
            cause: None,
            waiters: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            outcomes: HashMap::new(),
            flushers: BTreeMap::new(),
            watchers: Vec::new(),
            next_ticket: 0,
            close_deadline: None,
            unsent: None,
            close_timed_out: false,
            opened: false,
            abandoned: false,
            stats: Stats { capacity, ..Stats::default() },
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    pub(crate) fn cause(&self) -> Option<&Disconnect> {
        self.cause.as_ref()
    }

    pub(crate) fn buffer(&mut self) -> &mut OutBuffer {
        &mut self.buf
    }

    pub(crate) fn close_deadline(&self) -> Option<Instant> {
        self.close_deadline
    }

    /// The error a frame gets when the connection no longer takes frames, if it does not.
    fn refuse(&self, frame: Bytes) -> Result<Bytes, SendError<Bytes>> {
        match (self.phase, &self.cause) {
            (Phase::Connecting | Phase::Open, _) => Ok(frame),
            (_, Some(cause)) => Err(SendError::Disconnected { frame, cause: cause.clone() }),
            (_, None) => Err(SendError::Closed(frame)),
        }
    }

    fn fits(&self, len: usize) -> bool {
        self.buf.held() + len <= self.capacity
    }

    fn push(&mut self, frame: Bytes, fx: &mut Effects) {
        let len = frame.len();
        debug_assert!(self.fits(len));
        if self.buf.held() == 0 {
            // The driver has nothing in flight and will not look again until told.
            fx.notify_driver = true;
        }
        self.buf.push(frame);
        self.stats.frames_accepted += 1;
        self.stats.bytes_accepted += len as u64;
        self.stats.high_water = self.stats.high_water.max(self.buf.held());
        debug_assert!(self.buf.held() <= self.capacity, "invariant 1: the bound holds");
    }

    /// A send: straight into the buffer if no one waits and it fits, else into the queue (or,
    /// with `waker` = `None`, refused as full).
    pub(crate) fn admit(
        &mut self,
        frame: Bytes,
        deadline: Option<Instant>,
        waker: Option<&Waker>,
        now: impl FnOnce() -> Instant,
        fx: &mut Effects,
    ) -> Result<Admit, SendError<Bytes>> {
        if frame.is_empty() {
            return Err(SendError::Empty(frame));
        }
        if frame.len() > self.capacity {
            return Err(SendError::TooLarge { frame, capacity: self.capacity });
        }
        let frame = self.refuse(frame)?;
        // No barging: a newcomer may not pass anyone already waiting.
        if self.waiters.is_empty() && self.fits(frame.len()) {
            self.push(frame, fx);
            return Ok(Admit::Accepted);
        }
        let Some(waker) = waker else {
            return Err(SendError::Timeout(frame));
        };
        let now = now();
        if deadline.is_some_and(|d| d <= now) {
            return Err(SendError::Timeout(frame));
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        if let Some(deadline) = deadline {
            self.deadlines.insert((deadline, ticket));
            fx.timer = Some(deadline);
        }
        self.waiters.insert(ticket, Waiter { frame, waker: waker.clone(), deadline, since: now });
        self.stats.sends_waited += 1;
        log::trace!("sender {ticket} waits; {} waiting", self.waiters.len());
        Ok(Admit::Queued(ticket))
    }

    /// Moves frames from the head of the queue into the buffer while they fit.
    pub(crate) fn grant(&mut self, fx: &mut Effects) {
        let now = if self.waiters.is_empty() { return } else { Instant::now() };
        while let Some((_, head)) = self.waiters.first_key_value() {
            if !self.fits(head.frame.len()) {
                break;
            }
            let (ticket, waiter) = self.waiters.pop_first().expect("the head was just seen");
            self.forget_deadline(ticket, waiter.deadline);
            self.stats.wait_time += now.saturating_duration_since(waiter.since);
            self.push(waiter.frame, fx);
            self.outcomes.insert(ticket, Ok(()));
            fx.wake.push(waiter.waker);
        }
    }

    fn forget_deadline(&mut self, ticket: u64, deadline: Option<Instant>) {
        if let Some(deadline) = deadline {
            self.deadlines.remove(&(deadline, ticket));
        }
    }

    /// Takes a waiter out of the queue, lets the next ones in if it was in their way, and
    /// returns its frame.
    fn remove_waiter(&mut self, ticket: u64, now: Instant, fx: &mut Effects) -> Option<Waiter> {
        let waiter = self.waiters.remove(&ticket)?;
        self.forget_deadline(ticket, waiter.deadline);
        self.stats.wait_time += now.saturating_duration_since(waiter.since);
        // If it was the head, the next waiter may fit now.
        self.grant(fx);
        Some(waiter)
    }

    /// Polls a queued send: its outcome if it ended, else refreshes its waker.
    pub(crate) fn poll_queued(
        &mut self,
        ticket: u64,
        waker: &Waker,
        fx: &mut Effects,
    ) -> Option<Outcome> {
        if let Some(outcome) = self.outcomes.remove(&ticket) {
            return Some(outcome);
        }
        let Some(waiter) = self.waiters.get_mut(&ticket) else {
            debug_assert!(false, "a ticket is either queued or has an outcome");
            return Some(Err(SendError::Closed(Bytes::new())));
        };
        if let Some(deadline) = waiter.deadline {
            let now = Instant::now();
            if deadline <= now {
                let frame = self.remove_waiter(ticket, now, fx).map(|w| w.frame);
                return Some(Err(SendError::Timeout(frame.unwrap_or_default())));
            }
        }
        if !waiter.waker.will_wake(waker) {
            waiter.waker = waker.clone();
        }
        None
    }

    /// A queued sender gives up. Returns its frame unless the frame was already accepted.
    pub(crate) fn cancel(&mut self, ticket: u64, fx: &mut Effects) -> Option<Bytes> {
        match self.outcomes.remove(&ticket) {
            Some(Ok(())) => None,
            Some(Err(err)) => Some(err.into_inner()),
            None => self.remove_waiter(ticket, Instant::now(), fx).map(|w| w.frame),
        }
    }

    /// Fires the deadlines that passed, and returns the next one still pending.
    pub(crate) fn expire(&mut self, now: Instant, fx: &mut Effects) -> Option<Instant> {
        while let Some(&(deadline, ticket)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            match self.remove_waiter(ticket, now, fx) {
                Some(waiter) => {
                    self.outcomes.insert(ticket, Err(SendError::Timeout(waiter.frame)));
                    fx.wake.push(waiter.waker);
                }
                // A stale entry: the waiter left without its deadline.
                None => {
                    self.deadlines.remove(&(deadline, ticket));
                }
            }
        }
        let expired: Vec<(u64, u64)> = self
            .flushers
            .iter()
            .filter(|(_, f)| f.deadline.is_some_and(|d| d <= now))
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            if let Some(flusher) = self.flushers.remove(&key) {
                fx.wake.push(flusher.waker);
            }
        }
        let next_flush = self.flushers.values().filter_map(|f| f.deadline).min();
        let next_send = self.deadlines.first().map(|(d, _)| *d);
        [next_flush, next_send, self.close_deadline].into_iter().flatten().min()
    }

    /// Records that the link accepted `n` bytes, then lets waiters in.
    pub(crate) fn written(&mut self, n: usize, fx: &mut Effects) {
        self.stats.frames_written += self.buf.consume(n);
        self.stats.bytes_written += n as u64;
        self.grant(fx);
        let written = self.stats.bytes_written;
        while let Some(entry) = self.flushers.first_entry() {
            if entry.key().0 > written {
                break;
            }
            fx.wake.push(entry.remove().waker);
        }
    }

    /// The link is up.
    pub(crate) fn opened(&mut self, fx: &mut Effects) {
        self.opened = true;
        if self.phase == Phase::Connecting {
            self.phase = Phase::Open;
            fx.wake.append(&mut self.watchers);
        }
    }

    /// Starts closing: refuses new frames, fails waiting senders with their frames, and gives
    /// the driver until `deadline` to drain. Returns false if already closing or closed.
    pub(crate) fn begin_close(&mut self, deadline: Instant, fx: &mut Effects) -> bool {
        if matches!(self.phase, Phase::Closing | Phase::Closed) {
            return false;
        }
        self.phase = Phase::Closing;
        self.close_deadline = Some(deadline);
        self.fail_waiters(fx);
        fx.notify_driver = true;
        fx.timer = Some(deadline);
        true
    }

    /// Every waiting sender leaves with its frame and the reason the connection refuses it.
    fn fail_waiters(&mut self, fx: &mut Effects) {
        let now = Instant::now();
        for (ticket, waiter) in std::mem::take(&mut self.waiters) {
            self.stats.wait_time += now.saturating_duration_since(waiter.since);
            let err = match self.refuse(waiter.frame) {
                Err(err) => err,
                Ok(frame) => SendError::Closed(frame),
            };
            self.outcomes.insert(ticket, Err(err));
            fx.wake.push(waiter.waker);
        }
        self.deadlines.clear();
    }

    /// The link is gone: records the unsent frames and the cause, and wakes everyone.
    ///
    /// `in_flight` and `offset` are the driver's chunks not yet fully written.
    pub(crate) fn finish(
        &mut self,
        cause: Option<Disconnect>,
        in_flight: &mut VecDeque<Bytes>,
        offset: usize,
        fx: &mut Effects,
    ) {
        if self.phase == Phase::Closed {
            return;
        }
        let now = Instant::now();
        self.close_timed_out = self.phase == Phase::Closing
            && self.buf.held() > 0
            && self.close_deadline.is_some_and(|d| d <= now);
        self.phase = Phase::Closed;
        if self.cause.is_none() {
            self.cause = cause;
        }
        self.fail_waiters(fx);
        let unsent = self.buf.drain_unsent(in_flight, offset);
        if !unsent.is_empty() && self.abandoned {
            log::warn!(
                "every handle was dropped without close; {} frames ({} bytes) were not sent",
                unsent.len(),
                unsent.iter().map(|u| u.frame().len()).sum::<usize>()
            );
        } else if !unsent.is_empty() {
            log::debug!(
                "connection ended with {} frames ({} bytes) unsent",
                unsent.len(),
                unsent.iter().map(|u| u.frame().len()).sum::<usize>()
            );
        }
        self.unsent = Some(unsent);
        fx.wake.extend(std::mem::take(&mut self.flushers).into_values().map(|f| f.waker));
        fx.wake.append(&mut self.watchers);
    }

    /// The report for a `close` call, once closed. The first call gets the unsent frames.
    pub(crate) fn report(&mut self) -> Option<CloseReport> {
        if self.phase != Phase::Closed {
            return None;
        }
        Some(CloseReport {
            bytes_written: self.stats.bytes_written,
            frames_written: self.stats.frames_written,
            unsent: self.unsent.take().unwrap_or_default(),
            cause: self.cause.clone(),
            timed_out: self.close_timed_out,
        })
    }

    /// Whether the link was ever up.
    pub(crate) fn was_opened(&self) -> bool {
        self.opened
    }

    /// Every handle is gone: nobody can call `close` to receive the unsent frames.
    pub(crate) fn abandon(&mut self) {
        self.abandoned = true;
    }

    /// Registers `waker` to be woken when the phase changes.
    pub(crate) fn watch(&mut self, waker: &Waker) {
        if !self.watchers.iter().any(|w| w.will_wake(waker)) {
            self.watchers.push(waker.clone());
        }
    }

    /// The byte count a flush started now must see written.
    pub(crate) fn flush_target(&self) -> u64 {
        self.stats.bytes_accepted
    }

    /// Polls a flush for everything accepted up to `target`.
    pub(crate) fn poll_flush(
        &mut self,
        id: u64,
        target: u64,
        deadline: Option<Instant>,
        waker: &Waker,
        fx: &mut Effects,
    ) -> Option<Result<(), FlushError>> {
        if self.stats.bytes_written >= target {
            self.flushers.remove(&(target, id));
            return Some(Ok(()));
        }
        if self.phase == Phase::Closed {
            self.flushers.remove(&(target, id));
            return Some(Err(match &self.cause {
                Some(cause) => FlushError::Disconnected(cause.clone()),
                None => FlushError::Closed,
            }));
        }
        if deadline.is_some_and(|d| d <= Instant::now()) {
            self.flushers.remove(&(target, id));
            return Some(Err(FlushError::Timeout));
        }
        let entry = self.flushers.entry((target, id));
        match entry {
            std::collections::btree_map::Entry::Occupied(mut e) => {
                if !e.get().waker.will_wake(waker) {
                    e.get_mut().waker = waker.clone();
                }
            }
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(Flusher { waker: waker.clone(), deadline });
                fx.timer = deadline;
            }
        }
        None
    }

    /// A flush gives up.
    pub(crate) fn cancel_flush(&mut self, id: u64, target: u64) {
        self.flushers.remove(&(target, id));
    }

    /// A fresh id for a flush.
    pub(crate) fn next_id(&mut self) -> u64 {
        self.next_ticket += 1;
        self.next_ticket
    }

    pub(crate) fn stats(&self) -> Stats {
        Stats { buffered: self.buf.held(), waiters: self.waiters.len(), ..self.stats.clone() }
    }

    /// Whether nothing is left to write.
    pub(crate) fn drained(&self) -> bool {
        self.buf.held() == 0
    }

    #[cfg(test)]
    pub(crate) fn waiting(&self) -> Vec<u64> {
        self.waiters.keys().copied().collect()
    }
}

impl Drop for State {
    fn drop(&mut self) {
        // Every waiter holds a reference to the connection, so none can be left when it goes.
        debug_assert!(
            self.waiters.is_empty() || std::thread::panicking(),
            "a waiter outlived its connection"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::task::Wake;

    use super::*;

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Count(std::sync::atomic::AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn frame(len: usize) -> Bytes {
        Bytes::from(vec![7; len])
    }

    #[test]
    fn waiters_are_granted_in_arrival_order_without_barging() {
        let mut state = State::new(10);
        let mut fx = Effects::default();
        let waker = Waker::from(Arc::new(Count::default()));
        assert!(matches!(
            state.admit(frame(8), None, Some(&waker), Instant::now, &mut fx),
            Ok(Admit::Accepted)
        ));
        let Ok(Admit::Queued(first)) =
            state.admit(frame(5), None, Some(&waker), Instant::now, &mut fx)
        else {
            panic!("the second frame must wait");
        };
        let Ok(Admit::Queued(second)) =
            state.admit(frame(1), None, Some(&waker), Instant::now, &mut fx)
        else {
            panic!("a small frame may not pass a waiting one");
        };
        // `try_send` may not pass them either, though its frame would fit.
        assert!(matches!(
            state.admit(frame(1), None, None, Instant::now, &mut fx),
            Err(SendError::Timeout(_))
        ));
        assert_eq!(state.waiting(), [first, second]);
        let mut in_flight = VecDeque::new();
        state.buffer().take_chunks(&mut in_flight);
        state.written(8, &mut fx);
        assert!(state.waiting().is_empty());
        assert!(matches!(state.poll_queued(first, &waker, &mut fx), Some(Ok(()))));
        assert!(matches!(state.poll_queued(second, &waker, &mut fx), Some(Ok(()))));
    }
}
