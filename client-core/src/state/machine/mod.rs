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
mod life;
mod line;
#[cfg(test)]
use life::Lost;
use line::Line;

pub(crate) use crate::state::effects::Effects;
use crate::state::error::{Disconnect, FlushError, FrameLimit, SendError};
use crate::state::events::Events;
use crate::state::latency::Histogram;
use crate::state::report::{Ending, Stats};
use crate::state::stage::Stage;
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
    /// What else its frame needs to enter: one field, so a waiting sender stays small.
    shape: Shape,
    waker: Waker,
    deadline: Option<Instant>,
    since: Instant,
}

/// What a waiting frame is, beyond its bytes.
#[derive(Debug)]
enum Shape {
    /// A single frame, without framing.
    Plain,
    /// A single frame with its header, encoded already.
    Framed(Header),
    /// A batch: the length of each of its frames on the wire (headers included, which are
    /// then in the frame's bytes).
    Batch(Box<[usize]>),
}

impl Shape {
    /// The bytes of header the frame gets on entering (a batch's are in its bytes already).
    fn header_len(&self) -> usize {
        match self {
            Self::Framed(header) => header.len(),
            Self::Plain | Self::Batch(_) => 0,
        }
    }
}

impl Waiter {
    /// The bytes it takes in the buffer.
    fn wire_len(&self) -> usize {
        self.frame.len() + self.shape.header_len()
    }
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
    waiters: Line<Waiter>,
    /// Waiting urgent senders, served before every data sender.
    urgent_waiters: Line<Waiter>,
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
    /// The subscribers to the connection's events.
    events: Events,
    /// The shared budget data frames must also fit, if any.
    budget: Option<BudgetSlot>,
    stats: Stats,
    /// The write-latency probe out now: the count of bytes written that ends it, and when the
    /// frame it samples was accepted (see `state::latency`).
    probe: Option<(u64, Instant)>,
    latency: Histogram,
    /// Bytes accepted whose fate is settled: a link accepted them, or they belong to a frame
    /// of a lost link reported possibly delivered. Flushes and the latency probe count these,
    /// so a frame sent again after a reconnection is flushed only once it is written again.
    ///
    /// Invariant: `settled + buf.held() == stats.bytes_accepted`.
    settled: u64,
    /// With reconnection and atomic frames, all ones, else 0: the written part of the frame
    /// being written keeps its room (`head_written & hold_mask`) until the frame is whole on
    /// the wire, so it can be sent again whole. A mask, so the fast path does not branch on it.
    hold_mask: usize,
    /// With reconnection: whether sends fail at once while the link is down.
    fail_fast: bool,
    /// With reconnection: whether the frames a lost link wrote and its peer did not
    /// acknowledge are sent again (at-least-once) rather than reported possibly delivered.
    at_least_once: bool,
    /// `fail_fast` and the link is down after a loss: sends are refused. Kept apart from
    /// `outage` so the fast path tests one flag.
    refusing: bool,
    /// While a lost link is being replaced: why it was lost, and when.
    outage: Option<(Disconnect, Instant)>,
    /// `frames_written` when the current link came up: the frames written since are the ones
    /// a loss of that link leaves possibly delivered.
    link_frames: u64,
    /// `bytes_written` when the current link came up.
    link_bytes: u64,
    /// With reconnection, after each write on the current link, newest last and at most
    /// [`WRITE_MARKS`]: the end of the last frame written whole (in bytes written) and the
    /// number of frames written by then. They map the link's count of acknowledged bytes to
    /// the frames the peer had whole, rounding down to a write.
    write_marks: Option<VecDeque<(u64, u64)>>,
}

/// The writes whose frame ends a connection keeps, to map a count of acknowledged bytes to
/// frames: the count at a loss is within what the kernel holds unacknowledged, a few hundred
/// writes at most, and a count older than every mark only makes fewer frames acknowledged.
const WRITE_MARKS: usize = 256;

impl State {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            buf: OutBuffer::new(capacity),
            capacity,
            phase: Phase::Connecting,
            cause: None,
            waiters: Line::default(),
            urgent_waiters: Line::default(),
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
            events: Events::default(),
            budget: None,
            stats: Stats { capacity, ..Stats::default() },
            probe: None,
            latency: Histogram::default(),
            settled: 0,
            hold_mask: 0,
            fail_fast: false,
            at_least_once: false,
            refusing: false,
            outage: None,
            link_frames: 0,
            link_bytes: 0,
            write_marks: None,
        }
    }

    /// Sets the watermarks, `(high, low)`.
    pub(crate) fn set_watermarks(&mut self, levels: Option<(usize, usize)>) {
        self.marks = Marks::new(levels);
    }

    pub(crate) fn marks(&mut self) -> &mut Marks {
        &mut self.marks
    }

    pub(crate) fn events(&mut self) -> &mut Events {
        &mut self.events
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

    /// Reconnection is on: `hold_partial` keeps the room of a frame's written part until it
    /// is whole on the wire (it will be sent again whole if the link is lost), `fail_fast`
    /// refuses sends while the link is down, `at_least_once` sends the written frames a lost
    /// link's peer did not acknowledge again (and implies `hold_partial`).
    pub(crate) fn set_reconnect(
        &mut self,
        hold_partial: bool,
        fail_fast: bool,
        at_least_once: bool,
    ) {
        self.hold_mask = if hold_partial || at_least_once { usize::MAX } else { 0 };
        self.fail_fast = fail_fast;
        self.at_least_once = at_least_once;
        self.write_marks = Some(VecDeque::new());
    }

    /// Whether the frames a link writes are kept until its peer acknowledges them, given that
    /// the link can count what was acknowledged: with reconnection, yes.
    pub(crate) fn wants_keeping(&self) -> bool {
        self.write_marks.is_some()
    }

    /// The peer acknowledged the first `acked` bytes the current link wrote (the handshake's
    /// excepted): releases the kept frames within them and lets waiters in. `offset` is how
    /// much of the driver's chunk in flight is written. Returns how many bytes it released.
    pub(crate) fn acked(&mut self, acked: u64, offset: usize, fx: &mut Effects) -> usize {
        let on_link = self.stats.bytes_written - self.link_bytes;
        let kept = (self.buf.kept() + self.buf.head_written()) as u64;
        let before_kept = on_link - kept.min(on_link);
        let within = acked.min(on_link).saturating_sub(before_kept);
        let (bytes, _) = self.buf.release_kept(within as usize, offset);
        if bytes > 0 {
            self.grant(fx);
        }
        bytes
    }

    /// Since when the link has been down after a loss, if it is.
    pub(crate) fn outage_since(&self) -> Option<Instant> {
        self.outage.as_ref().map(|(_, since)| *since)
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
        if self.refusing
            && self.phase == Phase::Connecting
            && let Some((cause, _)) = &self.outage
        {
            return Err(SendError::Disconnected { frame, cause: cause.clone() });
        }
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
        self.occupied() + len <= self.limit(urgent)
    }

    /// The bytes that count against the capacity: those held, the frames written whole and
    /// kept until acknowledged, and, with `hold_mask`, the written part of the frame being
    /// written.
    #[inline]
    fn occupied(&self) -> usize {
        self.buf.held() + self.buf.kept() + (self.buf.head_written() & self.hold_mask)
    }

    /// Whether a frame of a lost link that was written in part is sent again whole.
    fn hold_partial(&self) -> bool {
        self.hold_mask != 0
    }

    fn lane(&mut self, urgent: bool) -> &mut Line<Waiter> {
        if urgent { &mut self.urgent_waiters } else { &mut self.waiters }
    }

    fn waiting_count(&self) -> usize {
        self.waiters.len() + self.urgent_waiters.len()
    }

    /// Counts a `try_send` (or `try_send_batch`) the application made that was refused as
    /// full.
    pub(crate) fn try_refused(&mut self) {
        self.stats.try_send_refused += 1;
    }

    /// How many senders wait now.
    #[cfg(feature = "tracing")]
    pub(crate) fn waiters(&self) -> usize {
        self.waiting_count()
    }

    /// Every frame will carry a header of `len` bytes (framing); set before any frame.
    pub(crate) fn set_header_len(&mut self, len: usize) {
        self.buf.set_header_len(len);
    }

    #[inline]
    fn push(&mut self, frame: Bytes, header: impl MaybeHeader, urgent: bool, fx: &mut Effects) {
        let len = frame.len() + header.len();
        debug_assert!(self.fits(len, urgent));
        let held = self.buf.held();
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
        let notify = self.took(1, len, held, || fx.now());
        fx.notify_driver |= notify;
        self.marks.grew(self.buf.held(), fx);
    }

    /// Moves a batch into the buffer: its frames count one by one, and it wakes the driver as
    /// a single frame would. The caller has checked that it fits.
    fn push_batch(&mut self, bytes: Bytes, lens: &[usize], fx: &mut Effects) {
        let len = bytes.len();
        debug_assert!(self.fits(len, false));
        let held = self.buf.held();
        self.buf.push_batch(bytes, lens);
        let notify = self.took(lens.len() as u64, len, held, || fx.now());
        fx.notify_driver |= notify;
        self.marks.grew(self.buf.held(), fx);
    }

    /// Moves a waiter's frame or batch into the buffer.
    fn push_waiter(&mut self, frame: Bytes, shape: Shape, urgent: bool, fx: &mut Effects) {
        match shape {
            Shape::Plain => self.push(frame, (), urgent, fx),
            Shape::Framed(header) => self.push(frame, header, urgent, fx),
            Shape::Batch(lens) => self.push_batch(frame, &lens, fx),
        }
    }

    /// The common case of a data frame on its own, kept apart so it compiles small: an open
    /// connection with nobody waiting, no shared budget, room for the frame, and no watermark
    /// to cross. The frame enters the buffer and the answer is whether the driver must be told
    /// (the buffer was empty). Otherwise the frame comes back untouched, for the full path
    /// ([`State::admit`]) to decide under the same rules: this one only declines, so it can
    /// neither barge nor exceed the bound where that one would not.
    ///
    /// `clock` is read only to start a write-latency probe.
    #[inline]
    pub(crate) fn try_push(
        &mut self,
        frame: Bytes,
        header: impl MaybeHeader,
        clock: fn() -> Instant,
    ) -> Result<bool, Bytes> {
        let len = frame.len() + header.len();
        if !self.short_path_takes(len) {
            return Err(frame);
        }
        let held = self.buf.held();
        match header.get() {
            None => self.buf.push(frame),
            Some(header) => self.buf.push_framed(header, frame),
        }
        Ok(self.took(1, len, held, clock))
    }

    /// [`State::try_push`] for a small unframed frame (at most
    /// [`COPY_MAX`](crate::state::buffer::COPY_MAX) bytes), copied from `frame`: the caller
    /// keeps its frame, to let go of it once the lock is released. `None` if declined.
    #[inline(always)]
    pub(crate) fn try_copy(&mut self, frame: &[u8], clock: fn() -> Instant) -> Option<bool> {
        let len = frame.len();
        if !self.short_path_takes(len) {
            return None;
        }
        let held = self.buf.held();
        self.buf.push_copy(frame);
        Some(self.took(1, len, held, clock))
    }

    /// Whether the short path may take a data frame of `len` bytes on the wire: see
    /// [`State::try_push`].
    #[inline(always)]
    fn short_path_takes(&self, len: usize) -> bool {
        self.short_path_open()
            && len != 0
            && self.fits(len, false)
            && !self.marks.would_rise(self.buf.held() + len)
    }

    /// Whether a lone data frame may skip the full admission at all, whatever its size: the
    /// connection takes frames, nobody waits in either lane, and there is no shared budget. The
    /// short path and the stage both start from it.
    #[inline(always)]
    fn short_path_open(&self) -> bool {
        let open = matches!(self.phase, Phase::Connecting | Phase::Open) && !self.refusing;
        let clear = self.waiters.is_empty() && self.urgent_waiters.is_empty();
        open && clear && self.budget.is_none()
    }

    /// Opens the [stage](crate::state::stage) as the lock is released, if the short path's
    /// rules allow (see [`State::try_push`]): an open connection, nobody waiting, no shared
    /// budget. Its allowance is what the buffer has free below the reserve and below the high
    /// watermark, so nothing it takes could have been declined by the short path; its first
    /// sender tells the driver if the buffer is empty (the driver will not look again on its
    /// own). Nothing may change the state after this until [`State::unstage`].
    #[inline]
    pub(crate) fn open_stage(&mut self, stage: &Stage) {
        if !self.short_path_open() {
            return;
        }
        let held = self.buf.held();
        let free = self.limit(false).saturating_sub(self.occupied());
        let room = self.marks.headroom(held).map_or(free, |headroom| free.min(headroom));
        if room > 0 {
            self.buf.open_stage(stage, room, held == 0);
        }
    }

    /// Takes in what senders staged while the lock was free, oldest first, as if each had
    /// taken the short path in turn: the first thing the lock's holder does. The driver needs
    /// no word from here: the stage opened on this very state (nothing changes it while the
    /// lock is free), and if that state's buffer was empty its first sender told the driver.
    ///
    /// A write-latency probe, if none is out, starts on the first staged frame, as it would
    /// have had that frame come through the lock; its clock starts now, when the frame reaches
    /// the buffer's accounting.
    #[inline]
    pub(crate) fn unstage(&mut self, stage: &Stage, clock: fn() -> Instant) {
        let held = self.buf.held();
        let (frames, len, first) = self.buf.unstage(stage);
        if frames != 0 {
            if self.probe.is_none() {
                self.probe = Some((self.stats.bytes_accepted + first as u64, clock()));
            }
            self.took(frames, len, held, clock);
        }
    }

    /// Counts `frames` frames of `len` bytes in all that entered the buffer, which held
    /// `held` bytes before, starts a write-latency probe on them unless one is out (reading
    /// the time from `now`), and returns whether the driver must be told: it had nothing in
    /// flight and will not look again until it is.
    #[inline(always)]
    fn took(
        &mut self,
        frames: u64,
        len: usize,
        held: usize,
        now: impl FnOnce() -> Instant,
    ) -> bool {
        self.stats.frames_accepted += frames;
        self.stats.bytes_accepted += len as u64;
        if self.probe.is_none() {
            self.probe = Some((self.stats.bytes_accepted, now()));
        }
        self.stats.high_water = self.stats.high_water.max(self.occupied());
        debug_assert!(self.occupied() <= self.capacity, "invariant 1: the bound holds");
        held == 0
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
        fx: &mut Effects,
    ) -> Result<Admit, SendError<Bytes>> {
        // `()`: no header, so the unframed path is compiled without any header handling.
        self.admit_framed(frame, (), urgent, deadline, waker, fx)
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
        fx: &mut Effects,
    ) -> Result<Admit, SendError<Bytes>> {
        // The common case first: an open connection, nobody waiting, room for the frame.
        let len = frame.len() + header.len();
        let clear = self.urgent_waiters.is_empty() && (urgent || self.waiters.is_empty());
        let open = matches!(self.phase, Phase::Connecting | Phase::Open) && !self.refusing;
        if len != 0 && open && clear && self.fits(len, urgent) && self.budget_allows(len, urgent) {
            self.push(frame, header, urgent, fx);
            return Ok(Admit::Accepted);
        }
        if len == 0 {
            return Err(SendError::Empty(frame));
        }
        let headers = header.len();
        let shape = header.get().map_or(Shape::Plain, |header| Shape::Framed(*header));
        self.queue(frame, shape, headers, urgent, deadline, waker, fx)
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
        fx: &mut Effects,
    ) -> Result<Admit, SendError<Bytes>> {
        let len = bytes.len();
        debug_assert!(!lens.is_empty() && lens.iter().all(|&l| l > 0), "refused by the caller");
        let clear = self.urgent_waiters.is_empty() && self.waiters.is_empty();
        let open = matches!(self.phase, Phase::Connecting | Phase::Open) && !self.refusing;
        if open && clear && self.fits(len, false) && self.budget_allows(len, false) {
            self.push_batch(bytes, lens, fx);
            return Ok(Admit::Accepted);
        }
        // Off the fast path: the waiter keeps its own copy of the lengths.
        self.queue(bytes, Shape::Batch(lens.into()), headers, false, deadline, waker, fx)
    }

    /// The way in when the fast path refused a frame or batch of `frame.len()` plus the
    /// header's bytes: refuses it if it can never fit (`headers` bytes of it being headers) or
    /// the connection no longer takes frames, else it waits in line (or, without a `waker`, is
    /// refused as full).
    #[allow(clippy::too_many_arguments)]
    fn queue(
        &mut self,
        frame: Bytes,
        shape: Shape,
        headers: usize,
        urgent: bool,
        deadline: Option<Instant>,
        waker: Option<&Waker>,
        fx: &mut Effects,
    ) -> Result<Admit, SendError<Bytes>> {
        let len = frame.len() + shape.header_len();
        let (max, limit) = match &self.budget {
            Some(slot) if !urgent && slot.shared.limit() < self.limit(urgent) => {
                (slot.shared.limit(), FrameLimit::Budget)
            }
            _ => (self.limit(urgent), FrameLimit::Capacity),
        };
        if len > max {
            let max_len = max.saturating_sub(headers);
            return Err(SendError::TooLarge { frame, max_len, limit });
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
        let now = fx.now();
        if deadline.is_some_and(|d| d <= now) {
            self.stats.send_timeouts += 1;
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
        let waiter = Waiter { frame, shape, waker: waker.clone(), deadline, since: now };
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
        let now = if self.waiting_count() == 0 { return } else { fx.now() };
        for urgent in [true, false] {
            while let Some((&head, len)) =
                self.lane(urgent).first_key_value().map(|(t, w)| (t, w.wire_len()))
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
                self.push_waiter(waiter.frame, waiter.shape, urgent, fx);
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
        let head = self.waiters.first_key_value().map(|(t, w)| (*t, w.wire_len()));
        let takes = head == Some((ticket, len))
            && self.urgent_waiters.is_empty()
            && matches!(self.phase, Phase::Connecting | Phase::Open)
            && self.fits(len, false);
        if takes {
            let (ticket, waiter) = self.waiters.pop_first().expect("the head was seen");
            self.forget_deadline(ticket, waiter.deadline);
            self.stats.wait_time += fx.now().saturating_duration_since(waiter.since);
            self.push_waiter(waiter.frame, waiter.shape, false, fx);
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
            let now = fx.now();
            if deadline <= now {
                let frame = self.remove_waiter(ticket, now, fx).map(|w| w.frame);
                self.stats.send_timeouts += 1;
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
            None => {
                let now = fx.now();
                let frame = self.remove_waiter(ticket, now, fx).map(|w| w.frame);
                self.stats.sends_cancelled += u64::from(frame.is_some());
                frame
            }
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
                    self.stats.send_timeouts += 1;
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
        if let Some(marks) = &mut self.write_marks {
            if marks.len() == WRITE_MARKS {
                marks.pop_front();
            }
            let boundary = self.stats.bytes_written - self.buf.head_written() as u64;
            marks.push_back((boundary, self.stats.frames_written));
        }
        self.stats.write_calls += 1;
        self.settle(n as u64, fx);
        if let Some(slot) = &self.budget {
            slot.shared.release(n, &mut fx.grants);
        }
        self.marks.shrank(self.buf.held(), fx);
        self.grant(fx);
    }

    /// `n` more accepted bytes are settled: ends the latency probe and the flushes they
    /// complete.
    fn settle(&mut self, n: u64, fx: &mut Effects) {
        self.settled += n;
        debug_assert_eq!(
            self.settled + self.buf.held() as u64,
            self.stats.bytes_accepted,
            "settled and held bytes make up what was accepted"
        );
        if let Some((end, since)) = self.probe
            && self.settled >= end
        {
            self.latency.record(fx.now().saturating_duration_since(since));
            self.probe = None;
        }
        let written = self.settled;
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
        if self.settled >= target {
            self.flushers.remove(&(target, id));
            return Some(Ok(()));
        }
        if deadline.is_some_and(|d| d <= fx.now()) {
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
        Stats {
            buffered: self.buf.held(),
            awaiting_ack: self.buf.kept(),
            waiters: self.waiting_count(),
            write_latency: self.latency.summary(),
            ..self.stats.clone()
        }
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
mod tests;
