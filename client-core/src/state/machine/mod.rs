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
//!
//! A batch of frames ([`State::admit_batch`]) is one sender under the same rules: it enters
//! whole or waits whole, as one frame of its total length would, and its frames are counted
//! one by one once it is in.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Weak};
use std::task::Waker;
use std::time::Instant;

use bytes::Bytes;

use crate::state::budget::{BudgetShared, Member};
use crate::state::buffer::{Header, MaybeHeader, OutBuffer, UnsentFrame};
pub(crate) use crate::state::effects::Effects;
use crate::state::error::{Disconnect, FlushError, LinkError, SendError};
use crate::state::report::{CloseReport, Ending, Stats};
use crate::state::watermark::Marks;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The link is being established. Frames are accepted and wait in the buffer.
    Connecting,
    /// The link is up.
    Open,
    /// `shutdown_write` was called: no new frames; the driver drains the buffer, ends the
    /// write side, and goes on reading until the peer ends its side too.
    Finishing,
    /// `close` was called: no new frames; the driver drains the buffer, ends the write side
    /// and reads until the peer's end of stream, all before the deadline.
    Closing,
    /// The link is gone. `cause` says why, if the application did not close it.
    Closed,
}

/// How a queued send ended.
pub(crate) type Outcome = Result<(), SendError<Bytes>>;

/// A sender waiting for room, with its frame parked here.
#[derive(Debug)]
struct Waiter {
    /// The caller's frame (the payload, with framing): what goes back if it never enters.
    frame: Bytes,
    /// Its header, encoded already; `None` without framing, and for a batch.
    header: Option<Header>,
    /// For a batch, the length of each of its frames on the wire (headers included, which
    /// are then in `frame`); `None` for a single frame.
    lens: Option<Box<[usize]>>,
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

/// A connection's link to a shared budget.
#[derive(Debug)]
struct BudgetSlot {
    shared: Arc<BudgetShared>,
    /// The connection itself, for the budget's line to name it.
    me: Weak<dyn Member>,
    /// The head of the data line while it waits on the budget: `(ticket, place in the
    /// budget's line)`. Cleared when the head leaves or the grant arrives.
    pending: Option<(u64, u64)>,
}

/// The state of one connection.
#[derive(Debug)]
pub(crate) struct State {
    buf: OutBuffer,
    /// Invariant: `buf.held() <= capacity`, always. Headers count.
    capacity: usize,
    phase: Phase,
    /// Why the link ended, when it was not the application's close.
    cause: Option<Disconnect>,
    /// Waiting senders by ticket: the map's order is arrival order.
    ///
    /// Invariant: when not empty, the head does not fit (`held + head.len > capacity`), except
    /// transiently inside a call that ends with [`State::grant`].
    waiters: BTreeMap<u64, Waiter>,
    /// Waiting urgent senders, served before every data sender.
    urgent_waiters: BTreeMap<u64, Waiter>,
    /// Bytes of the capacity only urgent frames may use.
    ///
    /// Invariant: `reserve < capacity`.
    reserve: usize,
    /// Deadlines of waiting senders, to expire them in order.
    deadlines: BTreeSet<(Instant, u64)>,
    /// Outcomes of queued sends that ended but were not yet collected by their sender.
    outcomes: HashMap<u64, Outcome>,
    /// Flushes waiting until `bytes_written` reaches the first element of the key.
    flushers: BTreeMap<(u64, u64), Flusher>,
    /// Ids of flushes whose bytes were all written while they waited, not yet collected.
    flushed: HashSet<u64>,
    /// Wakers of those waiting for the phase to change (connect, close).
    watchers: Vec<Waker>,
    /// Closures to run on the link, for the driver to take.
    next_ticket: u64,
    /// Deadline of the drain while closing.
    close_deadline: Option<Instant>,
    /// Frames not written when the connection ended, for the first `close` to take.
    unsent: Option<Vec<UnsentFrame>>,
    close_timed_out: bool,
    /// Whether the driver ended the link's write side (after the last byte).
    write_ended: bool,
    /// The earliest deadline of a waiting `shutdown_write`, for the driver to fire.
    write_end_deadline: Option<Instant>,
    /// Whether the peer ended its side in order (the driver read its end of stream).
    peer_ended: bool,
    /// How the connection ended, once it has.
    ending: Ending,
    /// Inbound bytes a close dropped because the inbound buffer was full, for the report.
    inbound_discarded: u64,
    /// Whether the link was ever up.
    opened: bool,
    /// Whether every handle was dropped without a close.
    abandoned: bool,
    /// The most senders that may wait at once, if bounded.
    max_waiters: Option<usize>,
    marks: Marks,
    /// The shared budget data frames must also fit, if any.
    budget: Option<BudgetSlot>,
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
            urgent_waiters: BTreeMap::new(),
            reserve: 0,
            deadlines: BTreeSet::new(),
            outcomes: HashMap::new(),
            flushers: BTreeMap::new(),
            flushed: HashSet::new(),
            watchers: Vec::new(),
            next_ticket: 0,
            close_deadline: None,
            unsent: None,
            close_timed_out: false,
            write_ended: false,
            write_end_deadline: None,
            peer_ended: false,
            ending: Ending::Clean,
            inbound_discarded: 0,
            opened: false,
            abandoned: false,
            max_waiters: None,
            marks: Marks::default(),
            budget: None,
            stats: Stats { capacity, ..Stats::default() },
        }
    }

    /// Sets the watermarks, `(high, low)`.
    pub(crate) fn set_watermarks(&mut self, levels: Option<(usize, usize)>) {
        self.marks = Marks::new(levels);
    }

    pub(crate) fn marks(&mut self) -> &mut Marks {
        &mut self.marks
    }

    /// Whether the connection has ended.
    pub(crate) fn has_ended(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Keeps `reserve` bytes of the capacity for urgent frames.
    pub(crate) fn set_reserve(&mut self, reserve: usize) {
        debug_assert!(reserve < self.capacity);
        self.reserve = reserve;
    }

    /// Makes data frames fit `budget` too; `me` is the connection this state belongs to.
    pub(crate) fn set_budget(&mut self, budget: Arc<BudgetShared>, me: Weak<dyn Member>) {
        self.budget = Some(BudgetSlot { shared: budget, me, pending: None });
    }

    /// Takes room in the budget for a data frame on the fast path, if no one waits on the
    /// budget and it fits. Urgent frames never wait on it ([`State::push`] counts them).
    fn budget_allows(&self, len: usize, urgent: bool) -> bool {
        match &self.budget {
            Some(slot) if !urgent => slot.shared.try_take(len),
            _ => true,
        }
    }

    /// Bounds the number of waiting senders.
    pub(crate) fn set_max_waiters(&mut self, max: Option<usize>) {
        self.max_waiters = max;
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

    /// The most bytes the buffer may hold after taking a frame of this lane.
    fn limit(&self, urgent: bool) -> usize {
        if urgent { self.capacity } else { self.capacity - self.reserve }
    }

    fn fits(&self, len: usize, urgent: bool) -> bool {
        self.buf.held() + len <= self.limit(urgent)
    }

    fn lane(&mut self, urgent: bool) -> &mut BTreeMap<u64, Waiter> {
        if urgent { &mut self.urgent_waiters } else { &mut self.waiters }
    }

    fn waiting_count(&self) -> usize {
        self.waiters.len() + self.urgent_waiters.len()
    }

    /// Every frame will carry a header of `len` bytes (framing); set before any frame.
    pub(crate) fn set_header_len(&mut self, len: usize) {
        self.buf.set_header_len(len);
    }

    #[inline]
    fn push(&mut self, frame: Bytes, header: impl MaybeHeader, urgent: bool, fx: &mut Effects) {
        let len = frame.len() + header.len();
        debug_assert!(self.fits(len, urgent));
        if self.buf.held() == 0 {
            // The driver has nothing in flight and will not look again until told.
            fx.notify_driver = true;
        }
        match (urgent, header.get()) {
            (false, None) => self.buf.push(frame),
            (false, Some(header)) => self.buf.push_framed(header, frame),
            (true, header) => {
                if let Some(slot) = &self.budget {
                    // Counted, but never made to wait on the budget.
                    slot.shared.take_urgent(len);
                }
                // The driver splices urgent frames in at its next frame boundary; it may be in
                // the middle of a batch and not come back to the queue on its own soon.
                fx.notify_driver = true;
                match header {
                    None => self.buf.push_urgent(frame),
                    Some(header) => self.buf.push_urgent_framed(header, frame),
                }
            }
        }
        self.stats.frames_accepted += 1;
        self.stats.bytes_accepted += len as u64;
        self.stats.high_water = self.stats.high_water.max(self.buf.held());
        debug_assert!(self.buf.held() <= self.capacity, "invariant 1: the bound holds");
        self.marks.grew(self.buf.held(), fx);
    }

    /// Moves a batch into the buffer: its frames count one by one, and it wakes the driver as
    /// a single frame would. The caller has checked that it fits.
    fn push_batch(&mut self, bytes: Bytes, lens: &[usize], fx: &mut Effects) {
        let len = bytes.len();
        debug_assert!(self.fits(len, false));
        if self.buf.held() == 0 {
            fx.notify_driver = true;
        }
        self.buf.push_batch(bytes, lens);
        self.stats.frames_accepted += lens.len() as u64;
        self.stats.bytes_accepted += len as u64;
        self.stats.high_water = self.stats.high_water.max(self.buf.held());
        debug_assert!(self.buf.held() <= self.capacity, "invariant 1: the bound holds");
        self.marks.grew(self.buf.held(), fx);
    }

    /// Moves a waiter's frame or batch into the buffer.
    fn push_waiter(
        &mut self,
        frame: Bytes,
        header: Option<Header>,
        lens: Option<Box<[usize]>>,
        urgent: bool,
        fx: &mut Effects,
    ) {
        match lens {
            None => self.push(frame, header, urgent, fx),
            Some(lens) => self.push_batch(frame, &lens, fx),
        }
    }

    /// A send: straight into the buffer if no one waits and it fits, else into the queue (or,
    /// with `waker` = `None`, refused as full).
    ///
    /// Urgent frames may use the whole capacity and wait in a lane of their own, served first;
    /// data frames may not use the reserve, and also wait behind waiting urgent frames.
    #[inline]
    pub(crate) fn admit(
        &mut self,
        frame: Bytes,
        urgent: bool,
        deadline: Option<Instant>,
        waker: Option<&Waker>,
        now: impl FnOnce() -> Instant,
        fx: &mut Effects,
    ) -> Result<Admit, SendError<Bytes>> {
        // `()`: no header, so the unframed path is compiled without any header handling.
        self.admit_framed(frame, (), urgent, deadline, waker, now, fx)
    }

    /// [`State::admit`] for a frame with its header, which counts in the size check and the
    /// capacity. Errors carry the frame without the header; with a header, `TooLarge` reports
    /// the largest frame that fits next to one.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn admit_framed(
        &mut self,
        frame: Bytes,
        header: impl MaybeHeader,
        urgent: bool,
        deadline: Option<Instant>,
        waker: Option<&Waker>,
        now: impl FnOnce() -> Instant,
        fx: &mut Effects,
    ) -> Result<Admit, SendError<Bytes>> {
        // The common case first: an open connection, nobody waiting, room for the frame.
        let len = frame.len() + header.len();
        let clear = self.urgent_waiters.is_empty() && (urgent || self.waiters.is_empty());
        let open = matches!(self.phase, Phase::Connecting | Phase::Open);
        if len != 0 && open && clear && self.fits(len, urgent) && self.budget_allows(len, urgent) {
            self.push(frame, header, urgent, fx);
            return Ok(Admit::Accepted);
        }
        if len == 0 {
            return Err(SendError::Empty(frame));
        }
        let headers = header.len();
        self.queue(frame, header.get().copied(), None, headers, urgent, deadline, waker, now, fx)
    }

    /// A batch of data frames: `bytes` holds them back to back, each with its header if the
    /// connection frames them, `lens` their lengths on the wire, and `headers` the bytes of
    /// header among them. The batch is one unit: it enters the buffer whole under this lock,
    /// or waits whole in the data line, exactly as a single frame of its total length would.
    /// Errors carry `bytes`. The caller has refused an empty batch and, without framing, a
    /// batch with an empty frame.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn admit_batch(
        &mut self,
        bytes: Bytes,
        lens: &[usize],
        headers: usize,
        deadline: Option<Instant>,
        waker: Option<&Waker>,
        now: impl FnOnce() -> Instant,
        fx: &mut Effects,
    ) -> Result<Admit, SendError<Bytes>> {
        let len = bytes.len();
        debug_assert!(!lens.is_empty() && lens.iter().all(|&l| l > 0), "refused by the caller");
        let clear = self.urgent_waiters.is_empty() && self.waiters.is_empty();
        let open = matches!(self.phase, Phase::Connecting | Phase::Open);
        if open && clear && self.fits(len, false) && self.budget_allows(len, false) {
            self.push_batch(bytes, lens, fx);
            return Ok(Admit::Accepted);
        }
        // Off the fast path: the waiter keeps its own copy of the lengths.
        self.queue(bytes, None, Some(lens.into()), headers, false, deadline, waker, now, fx)
    }

    /// The way in when the fast path refused a frame or batch of `frame.len()` plus the
    /// header's bytes: refuses it if it can never fit (`headers` bytes of it being headers) or
    /// the connection no longer takes frames, else it waits in line (or, without a `waker`, is
    /// refused as full).
    #[allow(clippy::too_many_arguments)]
    fn queue(
        &mut self,
        frame: Bytes,
        header: Option<Header>,
        lens: Option<Box<[usize]>>,
        headers: usize,
        urgent: bool,
        deadline: Option<Instant>,
        waker: Option<&Waker>,
        now: impl FnOnce() -> Instant,
        fx: &mut Effects,
    ) -> Result<Admit, SendError<Bytes>> {
        let len = frame.len() + header.len();
        let limit = match &self.budget {
            Some(slot) if !urgent => self.limit(urgent).min(slot.shared.limit()),
            _ => self.limit(urgent),
        };
        if len > limit {
            return Err(SendError::TooLarge { frame, capacity: limit.saturating_sub(headers) });
        }
        let frame = self.refuse(frame)?;
        // No barging: a newcomer may not pass anyone already waiting in its lane, and data
        // may not pass waiting urgent frames either. (Had it been clear and the frame fitted,
        // the frame would have gone in above.)
        let Some(waker) = waker else {
            return Err(SendError::Timeout(frame));
        };
        if self.max_waiters.is_some_and(|max| self.waiting_count() >= max) {
            return Err(SendError::TooManyWaiters(frame));
        }
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
        if self.waiting_count() == 0 {
            log::debug!(
                "outgoing buffer full ({} of {} bytes): senders wait",
                self.buf.held(),
                self.capacity
            );
        }
        let waiter = Waiter { frame, header, lens, waker: waker.clone(), deadline, since: now };
        self.lane(urgent).insert(ticket, waiter);
        self.stats.sends_waited += 1;
        log::trace!("sender {ticket} waits; {} waiting", self.waiting_count());
        if self.budget.is_some() && !urgent {
            // It may fit the connection and wait only on the budget: then it joins the
            // budget's line now (the budget's wake-ups go only to those in its line).
            self.grant(fx);
        }
        Ok(Admit::Queued(ticket))
    }

    /// Moves frames from the head of the queues into the buffer while they fit: urgent frames
    /// first; data frames only once no urgent frame waits.
    pub(crate) fn grant(&mut self, fx: &mut Effects) {
        let now = if self.waiting_count() == 0 { return } else { Instant::now() };
        for urgent in [true, false] {
            while let Some((&head, len)) = self
                .lane(urgent)
                .first_key_value()
                .map(|(t, w)| (t, w.frame.len() + w.header.len()))
            {
                if !self.fits(len, urgent) {
                    break;
                }
                if !urgent && !self.budget_grants(head, len) {
                    break;
                }
                let (ticket, waiter) = self.lane(urgent).pop_first().expect("the head was seen");
                self.forget_deadline(ticket, waiter.deadline);
                self.stats.wait_time += now.saturating_duration_since(waiter.since);
                self.push_waiter(waiter.frame, waiter.header, waiter.lens, urgent, fx);
                self.outcomes.insert(ticket, Ok(()));
                fx.wake.push(waiter.waker);
            }
            if !self.urgent_waiters.is_empty() {
                // Data waits behind urgent frames.
                return;
            }
        }
        if self.waiting_count() == 0 {
            log::debug!("outgoing buffer has room again: no sender waits");
        }
    }

    /// Whether the budget, if any, lets the data head `ticket` in now. If not, the head waits
    /// in the budget's line (it joins it once).
    fn budget_grants(&mut self, ticket: u64, len: usize) -> bool {
        let Some(slot) = &mut self.budget else {
            return true;
        };
        if slot.pending.is_some() {
            debug_assert_eq!(slot.pending.map(|(t, _)| t), Some(ticket), "only the head waits");
            return false;
        }
        match slot.shared.take_or_wait(len, &slot.me, ticket) {
            None => true,
            Some(seq) => {
                slot.pending = Some((ticket, seq));
                false
            }
        }
    }

    /// The budget reserved `len` bytes for the waiter `ticket`. Moves its frame into the
    /// buffer if it is still the head of the data line and fits; returns false if the
    /// reservation must go back to the budget.
    pub(crate) fn budget_granted(&mut self, ticket: u64, len: usize, fx: &mut Effects) -> bool {
        let Some(slot) = &mut self.budget else {
            return false;
        };
        if slot.pending.is_none_or(|(t, _)| t != ticket) {
            // The waiter left before the grant arrived.
            return false;
        }
        slot.pending = None;
        let head =
            self.waiters.first_key_value().map(|(t, w)| (*t, w.frame.len() + w.header.len()));
        let takes = head == Some((ticket, len))
            && self.urgent_waiters.is_empty()
            && matches!(self.phase, Phase::Connecting | Phase::Open)
            && self.fits(len, false);
        if takes {
            let (ticket, waiter) = self.waiters.pop_first().expect("the head was seen");
            self.forget_deadline(ticket, waiter.deadline);
            self.stats.wait_time += Instant::now().saturating_duration_since(waiter.since);
            self.push_waiter(waiter.frame, waiter.header, waiter.lens, false, fx);
            self.outcomes.insert(ticket, Ok(()));
            fx.wake.push(waiter.waker);
        }
        // The next head (or this one, if urgent frames took the room meanwhile) is
        // reconsidered; it joins the budget's line again if it must.
        self.grant(fx);
        takes
    }

    /// The waiter `ticket` leaves: if it waited on the budget, it leaves the budget's line.
    fn leave_budget(&mut self, ticket: u64, fx: &mut Effects) {
        if let Some(slot) = &mut self.budget
            && let Some((t, seq)) = slot.pending
            && t == ticket
        {
            slot.pending = None;
            slot.shared.leave(seq, &mut fx.grants);
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
        let waiter = match self.waiters.remove(&ticket) {
            Some(waiter) => waiter,
            None => self.urgent_waiters.remove(&ticket)?,
        };
        self.forget_deadline(ticket, waiter.deadline);
        self.leave_budget(ticket, fx);
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
        let queued = match self.waiters.get_mut(&ticket) {
            Some(waiter) => Some(waiter),
            None => self.urgent_waiters.get_mut(&ticket),
        };
        let Some(waiter) = queued else {
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
        // A `shutdown_write` waits among the watchers: wake them at its deadline, so it can
        // time out (it checks the deadline itself when polled).
        if self.write_end_deadline.is_some_and(|d| d <= now) {
            self.write_end_deadline = None;
            fx.wake.append(&mut self.watchers);
        }
        let next_flush = self.flushers.values().filter_map(|f| f.deadline).min();
        let next_send = self.deadlines.first().map(|(d, _)| *d);
        [next_flush, next_send, self.close_deadline, self.write_end_deadline]
            .into_iter()
            .flatten()
            .min()
    }

    /// Records that the link accepted `n` bytes, then lets waiters in.
    pub(crate) fn written(&mut self, n: usize, fx: &mut Effects) {
        self.stats.frames_written += self.buf.consume(n);
        self.stats.bytes_written += n as u64;
        if let Some(slot) = &self.budget {
            slot.shared.release(n, &mut fx.grants);
        }
        self.marks.shrank(self.buf.held(), fx);
        self.grant(fx);
        let written = self.stats.bytes_written;
        while let Some(entry) = self.flushers.first_entry() {
            if entry.key().0 > written {
                break;
            }
            let ((_, id), flusher) = entry.remove_entry();
            // Remembered, so the flush succeeds even if the link ends before it is polled.
            self.flushed.insert(id);
            fx.wake.push(flusher.waker);
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

    /// Starts ending the write side: refuses new frames, fails waiting senders with their
    /// frames, and asks the driver to drain, then end the link's write side. Reading goes on.
    /// Returns false if the connection is already ending.
    pub(crate) fn begin_shutdown_write(&mut self, fx: &mut Effects) -> bool {
        if !matches!(self.phase, Phase::Connecting | Phase::Open) {
            return false;
        }
        self.phase = Phase::Finishing;
        self.fail_waiters(fx);
        fx.notify_driver = true;
        true
    }

    /// The driver ended the link's write side, after the last byte.
    pub(crate) fn ended_write(&mut self, fx: &mut Effects) {
        self.write_ended = true;
        fx.wake.append(&mut self.watchers);
    }

    /// The driver read the peer's end of stream.
    pub(crate) fn peer_ended(&mut self) {
        self.peer_ended = true;
    }

    /// Records the inbound bytes a close dropped, for the report.
    pub(crate) fn set_inbound_discarded(&mut self, bytes: u64) {
        self.inbound_discarded = bytes;
    }

    /// Polls a `shutdown_write`: done once the write side has ended; an error if the
    /// connection ended first (with its cause), or at the deadline.
    pub(crate) fn poll_write_ended(
        &mut self,
        deadline: Option<Instant>,
        waker: &Waker,
        fx: &mut Effects,
    ) -> Option<Result<(), FlushError>> {
        if self.write_ended {
            return Some(Ok(()));
        }
        if self.phase == Phase::Closed {
            return Some(Err(match &self.cause {
                Some(cause) => FlushError::Disconnected(cause.clone()),
                None => FlushError::Closed,
            }));
        }
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Some(Err(FlushError::Timeout));
        }
        self.watch(waker);
        if let Some(d) = deadline {
            self.write_end_deadline = Some(self.write_end_deadline.map_or(d, |e| e.min(d)));
            fx.timer = Some(d);
        }
        None
    }

    /// Starts closing: refuses new frames, fails waiting senders with their frames, and gives
    /// the driver until `deadline` to drain, end the write side and read to the peer's end of
    /// stream. Returns false if already closing or closed.
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
        if let Some(slot) = &mut self.budget
            && let Some((_, seq)) = slot.pending.take()
        {
            slot.shared.leave(seq, &mut fx.grants);
        }
        let mut all = std::mem::take(&mut self.waiters);
        all.append(&mut self.urgent_waiters);
        for (ticket, waiter) in all {
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
    ///
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
        if let Some(slot) = &self.budget {
            slot.shared.release(self.buf.held(), &mut fx.grants);
        }
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
        self.ending = match (&self.cause, unsent.is_empty()) {
            (Some(_), true) if self.write_ended => Ending::ResetAfterEnd,
            (Some(_), _) => Ending::Disconnected,
            (None, false) => Ending::NotDrained,
            (None, true) if self.write_ended && !self.peer_ended => Ending::PeerKeptOpen,
            (None, true) => Ending::Clean,
        };
        self.unsent = Some(unsent);
        fx.wake.extend(std::mem::take(&mut self.flushers).into_values().map(|f| f.waker));
        fx.wake.append(&mut self.watchers);
        self.marks.end(fx);
    }

    /// Why the link is not available, once the connection has ended.
    pub(crate) fn link_error(&self) -> Option<LinkError> {
        (self.phase == Phase::Closed).then(|| match &self.cause {
            Some(cause) => LinkError::Disconnected(cause.clone()),
            None => LinkError::Closed,
        })
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
            ending: self.ending,
            inbound_discarded: self.inbound_discarded,
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
        if self.flushed.remove(&id) {
            return Some(Ok(()));
        }
        // A flush of a connection that has ended fails, even if nothing was left to write:
        // the application learns that the link is gone.
        if self.phase == Phase::Closed {
            self.flushers.remove(&(target, id));
            return Some(Err(match &self.cause {
                Some(cause) => FlushError::Disconnected(cause.clone()),
                None => FlushError::Closed,
            }));
        }
        if self.stats.bytes_written >= target {
            self.flushers.remove(&(target, id));
            return Some(Ok(()));
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
        self.flushed.remove(&id);
    }

    /// A fresh id for a flush.
    pub(crate) fn next_id(&mut self) -> u64 {
        self.next_ticket += 1;
        self.next_ticket
    }

    pub(crate) fn stats(&self) -> Stats {
        Stats { buffered: self.buf.held(), waiters: self.waiting_count(), ..self.stats.clone() }
    }

    /// Whether nothing is left to write.
    pub(crate) fn drained(&self) -> bool {
        self.buf.held() == 0
    }

    #[cfg(test)]
    pub(crate) fn waiting(&self) -> Vec<u64> {
        self.urgent_waiters.keys().chain(self.waiters.keys()).copied().collect()
    }
}

impl Drop for State {
    fn drop(&mut self) {
        // Every waiter holds a reference to the connection, so none can be left when it goes.
        debug_assert!(
            self.waiting_count() == 0 || std::thread::panicking(),
            "a waiter outlived its connection"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::task::Wake;
    use std::time::Duration;

    use super::*;
    use crate::state::buffer::tests::advance;

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
            state.admit(frame(8), false, None, Some(&waker), Instant::now, &mut fx),
            Ok(Admit::Accepted)
        ));
        let Ok(Admit::Queued(first)) =
            state.admit(frame(5), false, None, Some(&waker), Instant::now, &mut fx)
        else {
            panic!("the second frame must wait");
        };
        let Ok(Admit::Queued(second)) =
            state.admit(frame(1), false, None, Some(&waker), Instant::now, &mut fx)
        else {
            panic!("a small frame may not pass a waiting one");
        };
        // `try_send` may not pass them either, though its frame would fit.
        assert!(matches!(
            state.admit(frame(1), false, None, None, Instant::now, &mut fx),
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

    /// A waker and the counter of its wake-ups.
    fn counter() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count::default());
        (count.clone(), Waker::from(count))
    }

    fn wakes(count: &Count) -> usize {
        count.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A frame of `len` bytes, each `byte`, so frames can be told apart.
    fn marked(byte: u8, len: usize) -> Bytes {
        Bytes::from(vec![byte; len])
    }

    fn accept(state: &mut State, frame: Bytes) {
        let (_, waker) = counter();
        let admitted =
            state.admit(frame, false, None, Some(&waker), Instant::now, &mut Effects::default());
        assert!(matches!(admitted, Ok(Admit::Accepted)), "{admitted:?}");
    }

    fn enqueue(state: &mut State, frame: Bytes, deadline: Option<Instant>, waker: &Waker) -> u64 {
        let mut fx = Effects::default();
        match state.admit(frame, false, deadline, Some(waker), Instant::now, &mut fx) {
            Ok(Admit::Queued(ticket)) => {
                assert_eq!(fx.timer, deadline, "a deadline asks the driver for a timer");
                ticket
            }
            other => panic!("the frame should wait: {other:?}"),
        }
    }

    fn admit_batch(state: &mut State, lens: &[usize], waker: Option<&Waker>) -> Admit {
        let bytes: Vec<u8> =
            lens.iter().enumerate().flat_map(|(i, &len)| vec![i as u8; len]).collect();
        let mut fx = Effects::default();
        let admitted = state.admit_batch(bytes.into(), lens, 0, None, waker, Instant::now, &mut fx);
        admitted.expect("admitted")
    }

    #[test]
    fn a_batch_enters_whole_or_waits_whole_in_the_data_line() {
        let mut state = State::new(10);
        assert!(matches!(admit_batch(&mut state, &[2, 3], None), Admit::Accepted));
        assert_eq!((state.stats().frames_accepted, state.stats().buffered), (2, 5));
        // 7 bytes do not fit beside 5: the batch waits whole, and a frame that fits waits
        // behind it.
        let (batch_wakes, waker) = counter();
        let Admit::Queued(batch) = admit_batch(&mut state, &[3, 4], Some(&waker)) else {
            panic!("the batch should wait");
        };
        let (_, frame_waker) = counter();
        let frame = enqueue(&mut state, marked(9, 1), None, &frame_waker);
        assert_eq!(state.stats().buffered, 5, "no part of the batch went in");
        // One byte written: 6 free, not enough for 7, so neither moves (no barging).
        let mut in_flight = VecDeque::new();
        state.buffer().take_chunks(&mut in_flight);
        let mut fx = Effects::default();
        state.written(1, &mut fx);
        assert_eq!(state.waiting(), [batch, frame]);
        // The rest: the batch moves in whole, then the frame behind it.
        state.written(4, &mut fx);
        fx.wake_all();
        assert_eq!(wakes(&batch_wakes), 1);
        assert!(matches!(state.poll_queued(batch, &waker, &mut fx), Some(Ok(()))));
        assert!(matches!(state.poll_queued(frame, &frame_waker, &mut fx), Some(Ok(()))));
        let stats = state.stats();
        assert_eq!((stats.frames_accepted, stats.buffered, stats.frames_written), (5, 8, 2));
        // A batch waiting at the close comes back whole.
        let Admit::Queued(last) = admit_batch(&mut state, &[2, 2], Some(&waker)) else {
            panic!("the batch should wait");
        };
        assert!(state.begin_close(Instant::now(), &mut fx));
        match state.poll_queued(last, &waker, &mut fx) {
            Some(Err(SendError::Closed(back))) => assert_eq!(&back[..], [0, 0, 1, 1]),
            other => panic!("expected Closed: {other:?}"),
        }
    }

    #[test]
    fn cancelling_the_head_waiter_lets_the_next_one_in_at_once() {
        let mut state = State::new(10);
        accept(&mut state, marked(0, 8));
        let (head_wakes, head_waker) = counter();
        let head = enqueue(&mut state, marked(1, 5), None, &head_waker);
        let (next_wakes, next_waker) = counter();
        let next = enqueue(&mut state, marked(2, 2), None, &next_waker);

        let mut fx = Effects::default();
        assert_eq!(state.cancel(head, &mut fx), Some(marked(1, 5)), "the frame comes back");
        // Nothing was written: only the head leaving let the next one in.
        assert!(state.waiting().is_empty());
        assert_eq!(fx.wake.len(), 1);
        fx.wake_all();
        assert_eq!((wakes(&head_wakes), wakes(&next_wakes)), (0, 1));
        assert!(matches!(state.poll_queued(next, &next_waker, &mut fx), Some(Ok(()))));
        let stats = state.stats();
        assert_eq!((stats.buffered, stats.waiters, stats.frames_accepted), (10, 0, 2));
        // Cancelling a send that completed gives nothing back.
        assert_eq!(state.cancel(next, &mut fx), None);
    }

    #[test]
    fn cancelling_a_waiter_behind_the_head_grants_nothing() {
        let mut state = State::new(10);
        accept(&mut state, marked(0, 8));
        let (_, waker) = counter();
        let head = enqueue(&mut state, marked(1, 5), None, &waker);
        let middle = enqueue(&mut state, marked(2, 1), None, &waker);
        let last = enqueue(&mut state, marked(3, 1), None, &waker);
        let mut fx = Effects::default();
        assert_eq!(state.cancel(middle, &mut fx), Some(marked(2, 1)));
        assert!(fx.wake.is_empty());
        assert_eq!(state.waiting(), [head, last]);
        assert_eq!(state.stats().buffered, 8);
        assert!(state.begin_close(Instant::now(), &mut fx));
    }

    #[test]
    fn expire_fires_deadlines_in_order_and_returns_the_next_one() {
        let mut state = State::new(10);
        accept(&mut state, marked(0, 10));
        // Far in the future, so only the `now` given to `expire` decides.
        let base = Instant::now() + Duration::from_secs(3600);
        let at = |secs| base + Duration::from_secs(secs);
        let counters: Vec<(Arc<Count>, Waker)> = (0..4).map(|_| counter()).collect();
        let a = enqueue(&mut state, marked(1, 1), Some(at(30)), &counters[0].1);
        let b = enqueue(&mut state, marked(2, 2), Some(at(10)), &counters[1].1);
        let c = enqueue(&mut state, marked(3, 3), Some(at(20)), &counters[2].1);
        let d = enqueue(&mut state, marked(4, 4), None, &counters[3].1);

        let mut fx = Effects::default();
        assert_eq!(state.expire(base, &mut fx), Some(at(10)));
        assert!(fx.wake.is_empty(), "nothing is due yet");
        let fired =
            [(at(10), b, 1, Some(at(20))), (at(25), c, 2, Some(at(30))), (at(99), a, 0, None)];
        for (now, ticket, index, next) in fired {
            let mut fx = Effects::default();
            assert_eq!(state.expire(now, &mut fx), next);
            assert_eq!(fx.wake.len(), 1, "exactly one deadline is due at {now:?}");
            fx.wake_all();
            assert_eq!(wakes(&counters[index].0), 1);
            let byte = [1, 2, 3][index];
            match state.poll_queued(ticket, &counters[index].1, &mut fx) {
                Some(Err(SendError::Timeout(frame))) => {
                    assert_eq!(frame, marked(byte, byte.into()))
                }
                other => panic!("expected a timeout: {other:?}"),
            }
        }
        assert_eq!(state.waiting(), [d], "the sender without a deadline still waits");
        assert_eq!(wakes(&counters[3].0), 0);
        assert_eq!(state.stats().waiters, 1);
        assert!(state.begin_close(at(100), &mut fx));
    }

    #[test]
    fn an_expired_head_lets_the_next_one_in() {
        let mut state = State::new(10);
        accept(&mut state, marked(0, 6));
        let deadline = Instant::now() + Duration::from_secs(3600);
        let (head_wakes, head_waker) = counter();
        let head = enqueue(&mut state, marked(1, 5), Some(deadline), &head_waker);
        let (next_wakes, next_waker) = counter();
        let next = enqueue(&mut state, marked(2, 4), None, &next_waker);
        let mut fx = Effects::default();
        assert_eq!(state.expire(deadline, &mut fx), None);
        fx.wake_all();
        assert_eq!((wakes(&head_wakes), wakes(&next_wakes)), (1, 1));
        assert!(matches!(
            state.poll_queued(head, &head_waker, &mut fx),
            Some(Err(SendError::Timeout(_)))
        ));
        assert!(matches!(state.poll_queued(next, &next_waker, &mut fx), Some(Ok(()))));
        assert_eq!(state.stats().buffered, 10);
    }

    #[test]
    fn begin_close_fails_every_waiter_with_closed_carrying_its_frame() {
        let mut state = State::new(10);
        accept(&mut state, marked(0, 10));
        let deadline = Instant::now() + Duration::from_secs(3600);
        let waiters: Vec<(u64, Bytes, Arc<Count>, Waker)> = (1..=3u8)
            .map(|byte| {
                let (count, waker) = counter();
                let frame = marked(byte, byte.into());
                let until = (byte == 2).then_some(deadline);
                let ticket = enqueue(&mut state, frame.clone(), until, &waker);
                (ticket, frame, count, waker)
            })
            .collect();

        let close_by = Instant::now() + Duration::from_secs(60);
        let mut fx = Effects::default();
        assert!(state.begin_close(close_by, &mut fx));
        assert!(fx.notify_driver, "the driver must start draining");
        assert_eq!(fx.timer, Some(close_by));
        assert_eq!(fx.wake.len(), 3);
        fx.wake_all();
        for (ticket, frame, count, waker) in &waiters {
            assert_eq!(wakes(count), 1);
            match state.poll_queued(*ticket, waker, &mut fx) {
                Some(Err(SendError::Closed(back))) => assert_eq!(&back, frame),
                other => panic!("expected Closed: {other:?}"),
            }
        }
        assert!(!state.begin_close(close_by, &mut fx), "a second close changes nothing");
        let stats = state.stats();
        assert_eq!((stats.waiters, stats.buffered), (0, 10), "buffered frames stay to drain");
        // The waiter's deadline is gone; only the drain deadline is left.
        assert_eq!(state.expire(deadline, &mut fx), Some(close_by));
        let refused =
            state.admit(marked(9, 1), false, None, Some(&waiters[0].3), Instant::now, &mut fx);
        assert!(matches!(refused, Err(SendError::Closed(f)) if f == marked(9, 1)));
    }

    #[test]
    fn finish_with_a_cause_disconnects_waiters_and_reports_the_buffered_frames() {
        let mut state = State::new(20);
        let mut fx = Effects::default();
        state.opened(&mut fx);
        for (byte, len) in [(1, 3), (2, 4), (3, 5)] {
            accept(&mut state, marked(byte, len));
        }
        // The driver takes the 12 bytes and the link accepts the first frame and 2 bytes more.
        let mut in_flight = VecDeque::new();
        state.buffer().take_chunks(&mut in_flight);
        state.written(5, &mut fx);
        accept(&mut state, marked(4, 6));
        let (count, waker) = counter();
        let waiting = enqueue(&mut state, marked(5, 10), None, &waker);

        let cause = Disconnect::from_io(std::io::ErrorKind::ConnectionReset.into());
        let mut fx = Effects::default();
        state.finish(Some(cause), &mut in_flight, 5, &mut fx);
        fx.wake_all();
        assert_eq!(wakes(&count), 1);
        match state.poll_queued(waiting, &waker, &mut fx) {
            Some(Err(SendError::Disconnected { frame, cause })) => {
                assert_eq!(frame, marked(5, 10));
                assert_eq!(cause.kind(), crate::DisconnectKind::Reset);
            }
            other => panic!("expected Disconnected: {other:?}"),
        }
        let report = state.report().expect("closed");
        let unsent: Vec<(Bytes, usize)> =
            report.unsent().iter().map(|u| (u.frame().clone(), u.written())).collect();
        assert_eq!(unsent, [(marked(2, 4), 2), (marked(3, 5), 0), (marked(4, 6), 0)]);
        assert_eq!((report.bytes_written(), report.frames_written()), (5, 1));
        assert_eq!(report.cause().map(Disconnect::kind), Some(crate::DisconnectKind::Reset));
        assert!(!report.timed_out() && !report.is_clean());
        // Only the first report has the frames; the cause stays.
        let again = state.report().expect("closed");
        assert!(again.unsent().is_empty() && again.cause().is_some());
        let refused = state.admit(marked(6, 1), false, None, Some(&waker), Instant::now, &mut fx);
        assert!(matches!(refused, Err(SendError::Disconnected { .. })));
        let target = state.flush_target();
        let id = state.next_id();
        let flushed = state.poll_flush(id, target, None, &waker, &mut fx);
        assert!(matches!(flushed, Some(Err(FlushError::Disconnected(_)))), "{flushed:?}");
        assert_eq!(state.stats().buffered, 0);
    }

    /// A small deterministic generator for the randomized test.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) % n as u64) as usize
        }
    }

    #[test]
    fn the_bound_and_fifo_hold_under_random_operations() {
        for seed in 0..8u64 {
            let mut rng = Lcg(seed);
            let capacity = 1 + rng.below(300);
            let mut state = State::new(capacity);
            let (_, waker) = counter();
            // A clock of our own, far ahead of the real one, drives `admit` and `expire`.
            let mut clock = Instant::now() + Duration::from_secs(3600);
            let mut in_flight = VecDeque::new();
            let mut offset = 0;
            // Every frame that entered the buffer, in order; frames queued by ticket.
            let mut accepted: Vec<Bytes> = Vec::new();
            let mut queued: BTreeMap<u64, Bytes> = BTreeMap::new();
            let mut returned = 0u64;
            for step in 0..3000u32 {
                let mut fx = Effects::default();
                let frame = marked((step % 251) as u8, 1 + rng.below(capacity + capacity / 10));
                match rng.below(7) {
                    0 | 1 => {
                        let deadline = (rng.below(3) == 0)
                            .then(|| clock + Duration::from_millis(rng.below(50) as u64));
                        match state.admit(
                            frame.clone(),
                            false,
                            deadline,
                            Some(&waker),
                            || clock,
                            &mut fx,
                        ) {
                            Ok(Admit::Accepted) => accepted.push(frame),
                            Ok(Admit::Queued(ticket)) => {
                                queued.insert(ticket, frame);
                            }
                            Err(SendError::TooLarge { .. }) => assert!(frame.len() > capacity),
                            Err(SendError::Timeout(_)) => returned += 1,
                            Err(other) => panic!("unexpected {other:?}"),
                        }
                    }
                    2 => match state.admit(frame.clone(), false, None, None, || clock, &mut fx) {
                        Ok(Admit::Accepted) => accepted.push(frame),
                        Ok(Admit::Queued(_)) => panic!("try_send never queues"),
                        Err(SendError::Timeout(_) | SendError::TooLarge { .. }) => {}
                        Err(other) => panic!("unexpected {other:?}"),
                    },
                    3 | 4 => {
                        state.buffer().take_chunks(&mut in_flight);
                        let ready = in_flight.iter().map(Bytes::len).sum::<usize>() - offset;
                        if ready > 0 {
                            let n = 1 + rng.below(ready);
                            advance(&mut in_flight, &mut offset, n);
                            state.written(n, &mut fx);
                        }
                    }
                    5 => {
                        if let Some(&ticket) = queued.keys().nth(rng.below(queued.len().max(1))) {
                            if let Some(back) = state.cancel(ticket, &mut fx) {
                                assert_eq!(back, queued[&ticket], "cancel returns its own frame");
                                returned += 1;
                            }
                            queued.remove(&ticket);
                        }
                    }
                    _ => {
                        clock += Duration::from_millis(rng.below(20) as u64);
                        state.expire(clock, &mut fx);
                    }
                }
                // Sends that ended: granted ones entered the buffer in ticket order.
                let ended: Vec<u64> =
                    queued.keys().copied().filter(|t| !state.waiters.contains_key(t)).collect();
                for ticket in ended {
                    let frame = queued.remove(&ticket).expect("listed above");
                    match state.poll_queued(ticket, &waker, &mut fx) {
                        Some(Ok(())) => accepted.push(frame),
                        Some(Err(SendError::Timeout(back))) => {
                            assert_eq!(back, frame);
                            returned += 1;
                        }
                        other => panic!("ticket {ticket}: unexpected {other:?}"),
                    }
                }

                let stats = state.stats();
                assert!(stats.buffered <= capacity, "seed {seed} step {step}: {stats:?}");
                assert!(stats.high_water <= capacity, "seed {seed} step {step}: {stats:?}");
                assert_eq!(stats.bytes_accepted - stats.bytes_written, stats.buffered as u64);
                assert_eq!(stats.frames_accepted, accepted.len() as u64);
                assert_eq!(stats.waiters, queued.len());
                if let Some((_, head)) = state.waiters.first_key_value() {
                    assert!(
                        stats.buffered + head.frame.len() > capacity,
                        "seed {seed} step {step}: the head fits but waits"
                    );
                }
            }
            // Close: the waiters get their frames back, the report the unwritten ones.
            let mut fx = Effects::default();
            state.begin_close(clock, &mut fx);
            for (ticket, frame) in std::mem::take(&mut queued) {
                match state.poll_queued(ticket, &waker, &mut fx) {
                    Some(Err(SendError::Closed(back))) => assert_eq!(back, frame),
                    other => panic!("unexpected {other:?}"),
                }
            }
            state.finish(None, &mut in_flight, offset, &mut fx);
            let report = state.report().expect("closed");
            let written = report.frames_written() as usize;
            let unsent: Vec<&Bytes> = report.unsent().iter().map(UnsentFrame::frame).collect();
            assert_eq!(unsent, accepted[written..].iter().collect::<Vec<_>>(), "seed {seed}");
            let waited = state.stats().sends_waited;
            assert!(
                returned > 0 && written > 0 && waited > 0,
                "seed {seed}: the mix of operations is too thin"
            );
        }
    }
}
