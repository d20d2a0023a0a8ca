//! A fuzzing harness for the outgoing buffer and the waiter queue, compiled only with
//! `--cfg fuzzing` (which `cargo fuzz` sets). The fuzz target in `fuzz/fuzz_targets/buffer.rs`
//! calls [`run`].
//!
//! [`run`] reads its input as a connection setup followed by a sequence of operations on a real
//! `State`: sends of data and urgent frames (waiting or not, with or without a deadline, data
//! frames through the stage in front of the state first, as a connection sends them) from a
//! few producers, spurious polls of waiting sends with a new waker, cancels, deadlines firing at
//! a virtual time, partial writes by a driver that handles urgent frames exactly as the I/O
//! driver does, `close`, and the end of the link. It is single-threaded and deterministic.
//!
//! Every frame starts with a [`HEADER`]-byte header naming its lane, producer and sequence
//! number, followed by a pattern derived from them; frames are never shorter than the header.
//! After every operation [`run`] checks, and panics on a violation:
//!
//! - the bound: the buffer never holds more than the capacity, nor more data-lane bytes than
//!   the capacity minus the urgent reserve; `bytes_accepted − bytes_written == buffered`;
//! - no barging: a frame accepted at once passes no waiting sender of its lane (and a data
//!   frame none of either lane);
//! - the wake-ups: a waiter is woken at most once, only through its latest waker, and exactly
//!   when its outcome is ready; a deadline that passed has fired; a waiting head does not fit;
//! - the wire: the written bytes parse back into whole frames, and each lane's frames appear
//!   in the order they were accepted, which is the order they were sent in;
//! - the accounting: every frame ends in exactly one place (written, returned in an error or by
//!   a cancel, or in the close report's unsent frames, in the order of each lane), and no
//!   waiter is left once the link has ended.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Wake, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::state::buffer::COPY_MAX;
use crate::state::effects::Effects;
use crate::state::error::{Disconnect, DisconnectKind, SendError};
use crate::state::machine::{Admit, State};
use crate::state::stage::{STAGE_FRAMES, Stage};

/// The length of the header every frame starts with: lane tag, producer, sequence number
/// (4 bytes, little-endian), frame length (2 bytes, little-endian).
pub const HEADER: usize = 8;

/// How many producers send.
const PRODUCERS: u8 = 4;

const DATA_TAG: u8 = b'D';
const URGENT_TAG: u8 = b'U';

/// Counts its wake-ups.
#[derive(Debug, Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Count {
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn counter() -> (Arc<Count>, Waker) {
    let count = Arc::new(Count::default());
    (count.clone(), Waker::from(count))
}

/// Where a frame ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Wire,
    Returned,
    Unsent,
}

#[derive(Debug)]
struct Frame {
    bytes: Bytes,
    urgent: bool,
    accepted: bool,
    place: Option<Place>,
}

/// A send waiting in the queue.
#[derive(Debug)]
struct Pending {
    frame: usize,
    /// Every waker it was polled with; the last one is current.
    counts: Vec<Arc<Count>>,
    waker: Waker,
    deadline: Option<Instant>,
    /// Whether its sender collects the outcome by cancelling instead of polling.
    by_cancel: bool,
}

/// The fuzz input, read a byte at a time; zeros once it is used up.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn u8(&mut self) -> u8 {
        let byte = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        byte
    }

    fn u16(&mut self) -> usize {
        usize::from(self.u8()) | usize::from(self.u8()) << 8
    }
}

fn make_frame(urgent: bool, producer: u8, seq: u32, len: usize) -> Bytes {
    let mut bytes = Vec::with_capacity(len);
    bytes.push(if urgent { URGENT_TAG } else { DATA_TAG });
    bytes.push(producer);
    bytes.extend_from_slice(&seq.to_le_bytes());
    bytes.extend_from_slice(&u16::try_from(len).expect("frames are short").to_le_bytes());
    bytes.extend((HEADER..len).map(|i| (seq as u8).wrapping_add(producer).wrapping_add(i as u8)));
    Bytes::from(bytes)
}

/// The harness: the state under test, the driver's chunks in flight, and the model.
struct Harness {
    state: State,
    /// The stage in front of `state`, drained and reopened around every operation on it as
    /// the connection's lock does.
    stage: Stage,
    capacity: usize,
    reserve: usize,
    /// The virtual clock, far ahead of the real one so only it decides deadlines.
    clock: Instant,
    in_flight: VecDeque<Bytes>,
    offset: usize,
    wire: Vec<u8>,
    /// Where the first frame not yet fully on the wire starts.
    parsed: usize,
    frames: Vec<Frame>,
    by_id: HashMap<(u8, u32), usize>,
    next_seq: [u32; PRODUCERS as usize],
    pending: BTreeMap<u64, Pending>,
    /// Accepted frames not fully written, per lane (data, urgent), in acceptance order.
    lanes: [VecDeque<usize>; 2],
    /// Bytes accepted and bytes written, per lane (data, urgent).
    accepted_bytes: [u64; 2],
    written_bytes: [u64; 2],
    frames_written: u64,
    /// The lane of the frame partly on the wire, and its bytes there.
    partial: (usize, u64),
    /// Whether the report had a frame partly written.
    partial_unsent: bool,
    closing: bool,
    /// Whether the link has ended, and if so whether with a cause.
    finished: Option<bool>,
}

/// Runs one fuzz input. Panics if an invariant of the buffer or the waiter queue is violated.
///
/// # Panics
///
/// On any violation of the invariants listed in the module documentation.
///
/// # Examples
///
/// ```ignore
/// tidegate::fuzzing::run(&[40, 3, 0, 9, 9, 9, 7, 255, 255]);
/// ```
pub fn run(data: &[u8]) {
    drive(data);
}

/// What one run did, for the tests to see that the mix of operations is not thin.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Summary {
    waited: u64,
    wire: usize,
    urgent_on_wire: usize,
    returned: usize,
    unsent: usize,
    partial_unsent: bool,
}

fn drive(data: &[u8]) -> Summary {
    let mut input = Input { data, pos: 0 };
    // A small capacity most of the time, so senders wait; sometimes one past `COPY_MAX`.
    let pick = input.u8();
    let capacity =
        if pick < 200 { HEADER + usize::from(pick) } else { 2048 + usize::from(pick - 200) * 64 };
    // Data frames may always be at least a header long.
    let reserve = usize::from(input.u8()) % (capacity - HEADER + 1);
    let mut h = Harness::new(capacity, reserve);
    if input.u8() & 1 == 1 {
        let mut fx = Effects::at(h.clock);
        h.state.opened(0, 0, &mut fx);
        h.end_op(fx);
    }
    while !input.done() {
        let mut fx = Effects::at(h.clock);
        // Closing and ending are rare, so random inputs reach deep queues first.
        let op = input.u8() % 32;
        if op > 13 {
            // Every operation but a send starts under the lock, which drains the stage.
            h.state.unstage(&h.stage, Instant::now);
        }
        match op {
            0..=8 => h.send(&mut input, false, true, &mut fx),
            9..=11 => h.send(&mut input, true, true, &mut fx),
            12 | 13 => {
                // A burst of sends that do not wait, so one opening of the stage can take
                // several frames.
                for _ in 0..=input.u8() % 4 {
                    let urgent = input.u8() & 1 == 1;
                    h.send(&mut input, urgent, false, &mut fx);
                }
            }
            14 | 15 => h.poll(&mut input, &mut fx),
            16 | 17 => h.cancel(&mut input, &mut fx),
            18..=20 => {
                h.clock += Duration::from_millis(u64::from(input.u8()));
                let next = h.state.expire(h.clock, &mut fx);
                if !h.closing && h.finished.is_none() {
                    assert!(next.is_none_or(|next| next > h.clock), "a due deadline is left");
                }
            }
            21..=29 => h.write(&mut input, &mut fx),
            30 => {
                let deadline = h.clock + Duration::from_millis(u64::from(input.u8()));
                let began = h.state.begin_close(deadline, &mut fx);
                assert_eq!(began, !h.closing && h.finished.is_none(), "begin_close");
                h.closing = true;
            }
            _ => {
                let cause = input.u8() & 1 == 1 || !h.closing;
                h.finish(cause, &mut fx);
            }
        }
        h.end_op(fx);
    }
    // The end: close, and the link ends with whatever is left.
    h.state.unstage(&h.stage, Instant::now);
    let mut fx = Effects::at(h.clock);
    let deadline = h.clock;
    h.state.begin_close(deadline, &mut fx);
    h.closing = true;
    h.finish(false, &mut fx);
    h.end_op(fx);
    for (i, frame) in h.frames.iter().enumerate() {
        assert!(frame.place.is_some(), "frame {i} ended nowhere: {frame:?}");
        assert_eq!(
            frame.accepted,
            matches!(frame.place, Some(Place::Wire | Place::Unsent)),
            "frame {i}"
        );
    }
    let count = |place| h.frames.iter().filter(|f| f.place == Some(place)).count();
    Summary {
        waited: h.state.stats().sends_waited,
        wire: count(Place::Wire),
        urgent_on_wire: h
            .frames
            .iter()
            .filter(|f| f.urgent && f.place == Some(Place::Wire))
            .count(),
        returned: count(Place::Returned),
        unsent: count(Place::Unsent),
        partial_unsent: h.partial_unsent,
    }
}

impl Harness {
    fn new(capacity: usize, reserve: usize) -> Self {
        let mut state = State::new(capacity);
        state.set_reserve(reserve);
        Self {
            state,
            stage: Stage::new(STAGE_FRAMES),
            capacity,
            reserve,
            clock: Instant::now() + Duration::from_secs(3600),
            in_flight: VecDeque::new(),
            offset: 0,
            wire: Vec::new(),
            parsed: 0,
            frames: Vec::new(),
            by_id: HashMap::new(),
            next_seq: [0; PRODUCERS as usize],
            pending: BTreeMap::new(),
            lanes: [VecDeque::new(), VecDeque::new()],
            accepted_bytes: [0; 2],
            written_bytes: [0; 2],
            frames_written: 0,
            partial: (0, 0),
            partial_unsent: false,
            closing: false,
            finished: None,
        }
    }

    fn limit(&self, urgent: bool) -> usize {
        if urgent { self.capacity } else { self.capacity - self.reserve }
    }

    fn place(&mut self, frame: usize, place: Place) {
        let old = self.frames[frame].place.replace(place);
        assert!(old.is_none(), "frame {frame} ended in two places: {old:?} and {place:?}");
    }

    fn accept(&mut self, frame: usize) {
        let rec = &mut self.frames[frame];
        assert!(!rec.accepted, "frame {frame} accepted twice");
        rec.accepted = true;
        let lane = usize::from(rec.urgent);
        self.accepted_bytes[lane] += rec.bytes.len() as u64;
        self.lanes[lane].push_back(frame);
    }

    /// A frame came back in an error: checks that it is the frame and that the error is due.
    fn returned(&mut self, frame: usize, err: SendError<Bytes>, deadline: Option<Instant>) {
        let ok = match &err {
            SendError::Timeout(_) => deadline.is_some_and(|d| d <= self.clock),
            SendError::Closed(_) => self.closing || self.finished == Some(false),
            SendError::Disconnected { .. } => self.finished == Some(true),
            _ => false,
        };
        assert!(ok, "frame {frame}: unexpected {err:?}");
        assert_eq!(err.into_inner(), self.frames[frame].bytes, "an error returns its own frame");
        self.place(frame, Place::Returned);
    }

    fn send(&mut self, input: &mut Input<'_>, urgent: bool, wait: bool, fx: &mut Effects) {
        let producer = input.u8() % PRODUCERS;
        let len = HEADER + input.u16() % (2 * self.capacity - HEADER + 1);
        let flags = input.u8();
        let deadline = (flags & 1 == 1).then(|| {
            // Zero means the deadline is already due.
            self.clock + Duration::from_millis(u64::from(flags >> 2))
        });
        let by_cancel = flags & 2 == 2;
        let seq = self.next_seq[usize::from(producer)];
        self.next_seq[usize::from(producer)] += 1;
        let bytes = make_frame(urgent, producer, seq, len);
        let index = self.frames.len();
        self.frames.push(Frame { bytes: bytes.clone(), urgent, accepted: false, place: None });
        self.by_id.insert((producer, seq), index);
        let (count, waker) = counter();
        // A data frame takes the stage first, then, under the lock (which drains the stage),
        // the short path and the full one, as a connection's sends do.
        let result = if !urgent && self.stage.try_put(&bytes).is_some() {
            Ok(Admit::Accepted)
        } else {
            self.state.unstage(&self.stage, Instant::now);
            let short = if urgent {
                Err(bytes)
            } else if bytes.len() <= COPY_MAX {
                self.state.try_copy(&bytes, Instant::now).map(drop).ok_or(bytes)
            } else {
                self.state.try_push(bytes, (), Instant::now).map(drop)
            };
            let result = match short {
                Ok(()) => Ok(Admit::Accepted),
                Err(bytes) => self.state.admit(bytes, urgent, deadline, wait.then_some(&waker), fx),
            };
            self.state.open_stage(&self.stage);
            result
        };
        match result {
            Ok(Admit::Accepted) => {
                assert!(!self.closing && self.finished.is_none(), "accepted while closed");
                // No barging: a data frame waits behind every waiting sender, an urgent one
                // behind the waiting urgent ones.
                let passed = self.pending.values().find(|p| !urgent || self.frames[p.frame].urgent);
                assert!(passed.is_none(), "frame {index} passed a waiting sender: {passed:?}");
                self.accept(index);
            }
            Ok(Admit::Queued(ticket)) => {
                assert!(wait, "a try_send never waits");
                let pending =
                    Pending { frame: index, counts: vec![count], waker, deadline, by_cancel };
                assert!(self.pending.insert(ticket, pending).is_none(), "a ticket is reused");
            }
            Err(SendError::TooLarge { frame, max_len: capacity, .. }) => {
                assert_eq!(capacity, self.limit(urgent));
                assert!(len > capacity, "a frame of {len} bytes fits in {capacity}");
                assert_eq!(frame, self.frames[index].bytes);
                self.place(index, Place::Returned);
            }
            // A `try_send` that does not fit, or would pass a waiting sender.
            Err(SendError::Timeout(frame)) if !wait => {
                assert_eq!(frame, self.frames[index].bytes);
                self.place(index, Place::Returned);
            }
            Err(err) => self.returned(index, err, deadline),
        }
    }

    /// Picks a waiting send.
    fn pick(&self, input: &mut Input<'_>) -> Option<u64> {
        let n = self.pending.len();
        (n > 0).then(|| *self.pending.keys().nth(input.u16() % n).expect("in range"))
    }

    /// A spurious poll of a waiting send with a new waker: nothing is ready, the new waker
    /// replaces the old one.
    fn poll(&mut self, input: &mut Input<'_>, fx: &mut Effects) {
        let Some(ticket) = self.pick(input) else { return };
        let (count, waker) = counter();
        let outcome = self.state.poll_queued(ticket, &waker, fx);
        assert!(outcome.is_none(), "ticket {ticket}: an outcome without a wake-up: {outcome:?}");
        let pending = self.pending.get_mut(&ticket).expect("picked");
        pending.counts.push(count);
        pending.waker = waker;
    }

    /// A waiting send gives up: it gets its frame back.
    fn cancel(&mut self, input: &mut Input<'_>, fx: &mut Effects) {
        let Some(ticket) = self.pick(input) else { return };
        let pending = self.pending.remove(&ticket).expect("picked");
        let back = self.state.cancel(ticket, fx);
        assert_eq!(back.as_ref(), Some(&self.frames[pending.frame].bytes), "ticket {ticket}");
        self.place(pending.frame, Place::Returned);
    }

    /// The driver: takes chunks and splices urgent frames as `driver::refill` does, then the
    /// link accepts some of the bytes.
    fn write(&mut self, input: &mut Input<'_>, fx: &mut Effects) {
        let take = input.u8() & 1 == 1 || self.in_flight.is_empty();
        let pick = input.u16();
        let buffer = self.state.buffer();
        let mut limit = usize::MAX;
        if buffer.urgent_queued() > 0 {
            if buffer.at_boundary() {
                buffer.splice_urgent(&mut self.in_flight, self.offset);
            } else {
                limit = buffer.head_remaining();
            }
        }
        if take && buffer.queued() > 0 {
            buffer.take_chunks(&mut self.in_flight);
        }
        let ready = self.in_flight.iter().map(Bytes::len).sum::<usize>() - self.offset;
        let ready = ready.min(limit);
        if ready == 0 {
            return;
        }
        let n = 1 + pick % ready;
        let mut left = n;
        while left > 0 {
            let chunk = &self.in_flight[0][self.offset..];
            let step = left.min(chunk.len());
            self.wire.extend_from_slice(&chunk[..step]);
            left -= step;
            if step == chunk.len() {
                self.in_flight.pop_front();
                self.offset = 0;
            } else {
                self.offset += step;
            }
        }
        self.state.written(n, fx);
        self.parse();
    }

    /// Parses the new bytes on the wire into frames: each must be whole, and the next of its
    /// lane.
    fn parse(&mut self) {
        let mut last_lane = None;
        while self.wire.len() - self.parsed >= HEADER {
            let at = self.parsed;
            let urgent = match self.wire[at] {
                DATA_TAG => false,
                URGENT_TAG => true,
                tag => panic!("byte {at} of the wire is not the start of a frame: {tag}"),
            };
            let lane = usize::from(urgent);
            let seq = u32::from_le_bytes(self.wire[at + 2..at + 6].try_into().expect("4 bytes"));
            let id = (self.wire[at + 1], seq);
            let frame = *self.by_id.get(&id).expect("the wire names a frame that was sent");
            assert_eq!(self.lanes[lane].front(), Some(&frame), "frame {id:?} is out of order");
            let len = self.frames[frame].bytes.len();
            let end = (at + len).min(self.wire.len());
            let bytes = &self.frames[frame].bytes[..end - at];
            assert_eq!(&self.wire[at..end], bytes, "frame {id:?} is corrupt");
            last_lane = Some(lane);
            if end - at < len {
                break;
            }
            self.parsed = end;
            self.lanes[lane].pop_front();
            self.written_bytes[lane] += len as u64;
            self.frames_written += 1;
            last_lane = None;
            self.place(frame, Place::Wire);
        }
        // Bytes of a frame that is not fully written yet count against its lane.
        let partial = (self.wire.len() - self.parsed) as u64;
        let lane = match last_lane {
            Some(lane) => lane,
            // Too short to name its frame yet: it is the head of one of the lanes.
            None if partial > 0 => {
                let urgent = self.wire[self.parsed] == URGENT_TAG;
                usize::from(urgent)
            }
            None => 0,
        };
        self.partial = (lane, partial);
    }

    fn finish(&mut self, cause: bool, fx: &mut Effects) {
        let first = self.finished.is_none();
        let cause = cause.then(|| Disconnect::new(DisconnectKind::Reset));
        let with_cause = cause.is_some();
        self.state.finish(cause, &mut self.in_flight, self.offset, fx);
        assert!(self.in_flight.is_empty(), "finish takes the chunks in flight");
        self.offset = 0;
        if !first {
            return;
        }
        self.finished = Some(with_cause);
        let report = self.state.report().expect("the link has ended");
        assert_eq!(report.bytes_written(), self.wire.len() as u64);
        assert_eq!(report.frames_written(), self.frames_written);
        let partial = self.wire.len() - self.parsed;
        let expected = self.lanes[0].len() + self.lanes[1].len();
        assert_eq!(report.unsent().len(), expected, "the unsent frames are all there");
        for (i, unsent) in report.unsent().iter().enumerate() {
            let bytes = unsent.frame();
            assert!(bytes.len() >= HEADER, "an unsent frame is cut: {bytes:?}");
            let seq = u32::from_le_bytes(bytes[2..6].try_into().expect("4 bytes"));
            let frame = *self.by_id.get(&(bytes[1], seq)).expect("an unsent frame was sent");
            let lane = usize::from(self.frames[frame].urgent);
            assert_eq!(self.lanes[lane].pop_front(), Some(frame), "unsent frames keep lane order");
            assert_eq!(bytes, &self.frames[frame].bytes, "an unsent frame is intact");
            let written = if i == 0 { partial } else { 0 };
            assert_eq!(unsent.written(), written, "unsent frame {i}");
            if i == 0 {
                assert_eq!(&self.wire[self.parsed..], &bytes[..partial]);
                self.partial_unsent = partial > 0;
            }
            self.place(frame, Place::Unsent);
        }
        if expected == 0 {
            assert_eq!(partial, 0, "bytes of a frame on the wire that is not reported");
        }
        self.parsed = self.wire.len();
        self.partial = (0, 0);
        assert!(self.state.report().expect("closed").unsent().is_empty(), "one report only");
    }

    /// After every operation: wakes, collects the sends whose wait ended, and checks.
    fn end_op(&mut self, mut fx: Effects) {
        // Looked at under the lock: what the operation staged is in the state.
        self.state.unstage(&self.stage, Instant::now);
        fx.wake_all();
        let mut fx = Effects::at(self.clock);
        let tickets: Vec<u64> = self.pending.keys().copied().collect();
        for ticket in tickets {
            let pending = &self.pending[&ticket];
            let (current, old) = pending.counts.split_last().expect("one waker at least");
            assert!(old.iter().all(|c| c.get() == 0), "ticket {ticket}: a replaced waker woken");
            match current.get() {
                0 => {
                    let outcome = self.state.poll_queued(ticket, &pending.waker, &mut fx);
                    assert!(outcome.is_none(), "ticket {ticket}: ready but not woken: {outcome:?}");
                    assert!(
                        pending.deadline.is_none_or(|d| d > self.clock),
                        "ticket {ticket}: its deadline passed and it still waits"
                    );
                    assert!(self.finished.is_none() && !self.closing, "a waiter after close");
                }
                1 => {
                    let pending = self.pending.remove(&ticket).expect("listed");
                    let frame = pending.frame;
                    if pending.by_cancel {
                        match self.state.cancel(ticket, &mut fx) {
                            None => self.accept(frame),
                            Some(back) => {
                                assert_eq!(back, self.frames[frame].bytes, "ticket {ticket}");
                                self.place(frame, Place::Returned);
                            }
                        }
                    } else {
                        match self.state.poll_queued(ticket, &pending.waker, &mut fx) {
                            Some(Ok(())) => self.accept(frame),
                            Some(Err(err)) => self.returned(frame, err, pending.deadline),
                            None => panic!("ticket {ticket}: woken but not ready"),
                        }
                    }
                }
                n => panic!("ticket {ticket}: woken {n} times"),
            }
        }
        assert!(fx.wake.is_empty(), "collecting outcomes woke someone");
        self.check();
        self.state.open_stage(&self.stage);
    }

    fn check(&mut self) {
        let stats = self.state.stats();
        assert!(stats.buffered <= self.capacity, "the bound: {stats:?}");
        assert!(stats.high_water <= self.capacity, "the bound: {stats:?}");
        if self.finished.is_none() {
            // Once the link has ended, the bytes not written are in the report instead.
            assert_eq!(stats.bytes_accepted - stats.bytes_written, stats.buffered as u64);
        }
        assert_eq!(stats.bytes_written, self.wire.len() as u64);
        assert_eq!(stats.frames_written, self.frames_written);
        let accepted = self.frames.iter().filter(|f| f.accepted).count();
        assert_eq!(stats.frames_accepted, accepted as u64);
        assert_eq!(stats.bytes_accepted, self.accepted_bytes.iter().sum::<u64>());
        assert_eq!(stats.waiters, self.pending.len());
        // What each lane holds: accepted, less written, less the head's bytes on the wire.
        let (partial_lane, partial) = self.partial;
        let held = |lane: usize| {
            let extra = if lane == partial_lane { partial } else { 0 };
            self.accepted_bytes[lane] - self.written_bytes[lane] - extra
        };
        if self.finished.is_none() {
            assert_eq!(held(0) + held(1), stats.buffered as u64, "the lanes add up");
            assert!(held(0) <= self.limit(false) as u64, "data entered the reserve: {stats:?}");
        } else {
            assert_eq!(stats.buffered, 0, "the link ended with bytes held");
        }
        // A waiting head does not fit; otherwise it would have been let in.
        let head = |urgent: bool| {
            self.pending.values().find(|p| self.frames[p.frame].urgent == urgent).map(|p| p.frame)
        };
        if let Some(frame) = head(true) {
            let len = self.frames[frame].bytes.len();
            assert!(stats.buffered + len > self.capacity, "an urgent head fits but waits");
        } else if let Some(frame) = head(false) {
            let len = self.frames[frame].bytes.len();
            assert!(stats.buffered + len > self.limit(false), "a data head fits but waits");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u8 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) as u8
        }
    }

    #[test]
    fn fuzzing_handles_hand_made_inputs() {
        run(&[]);
        run(&[0]);
        run(&[255, 255, 255]);
        // Capacity 18, no reserve, open.
        let ops: &[u8] = &[
            10, 0, 1, //
            0, 1, 10, 0, 0, // send data, producer 1, 18 bytes
            0, 2, 0, 0, 0, // send data, 8 bytes: waits
            9, 3, 0, 0, 0, // send urgent, 8 bytes: waits
            21, 1, 5, 0, // write 6 bytes
            21, 1, 255, 0, // write the rest that may go
            21, 1, 255, 0, //
            30, 50, // close
            31, 0, // finish
        ];
        run(ops);
    }

    #[test]
    fn fuzzing_survives_random_inputs() {
        let mut rng = Lcg(7);
        let mut total = Summary::default();
        for round in 0..3000 {
            let len = usize::from(rng.next()) * (1 + round % 8);
            let mut data: Vec<u8> = (0..len).map(|_| rng.next()).collect();
            if round % 2 == 0 && data.len() > 2 {
                // Small capacities, where senders wait most.
                data[0] %= 40;
            } else if round % 4 == 1 && data.len() > 2 {
                // Capacities of 2 KiB and more, whose tail segments take staged frames.
                data[0] = 200 + data[0] % 56;
            }
            let one = drive(&data);
            total.waited += one.waited;
            total.wire += one.wire;
            total.urgent_on_wire += one.urgent_on_wire;
            total.returned += one.returned;
            total.unsent += one.unsent;
            total.partial_unsent |= one.partial_unsent;
        }
        assert!(
            total.waited > 1000 && total.wire > 1000 && total.urgent_on_wire > 100,
            "{total:?}"
        );
        assert!(total.returned > 1000 && total.unsent > 100 && total.partial_unsent, "{total:?}");
    }

    /// The harness sees a lost wake-up: a grant whose wakers are dropped unwoken.
    #[test]
    fn fuzzing_catches_a_lost_wake_up() {
        let result = std::panic::catch_unwind(|| {
            let mut h = Harness::new(16, 0);
            // Two frames of 16 bytes: the second waits, then the driver writes the first.
            let mut input = Input { data: &[0, 8, 0, 0, 1, 8, 0, 0, 1, 15, 0], pos: 0 };
            let mut fx = Effects::at(h.clock);
            h.send(&mut input, false, true, &mut fx);
            h.end_op(fx);
            let mut fx = Effects::at(h.clock);
            h.send(&mut input, false, true, &mut fx);
            h.end_op(fx);
            assert_eq!(h.pending.len(), 1, "the second send waits");
            let mut fx = Effects::at(h.clock);
            h.write(&mut input, &mut fx);
            assert_eq!(fx.wake.len(), 1, "the write let the waiter in");
            drop(fx);
            h.end_op(Effects::at(h.clock));
        });
        let message = result.expect_err("the harness must notice");
        let text = message.downcast_ref::<String>().map_or("", String::as_str);
        assert!(text.contains("ready but not woken"), "{text}");
    }

    /// The harness sees a corrupt wire.
    #[test]
    fn fuzzing_catches_a_frame_cut_into() {
        let result = std::panic::catch_unwind(|| {
            let mut h = Harness::new(64, 0);
            // Two frames of 16 bytes, then 20 bytes are written.
            let mut input = Input { data: &[0, 8, 0, 0, 1, 8, 0, 0, 1, 19, 0], pos: 0 };
            let mut fx = Effects::at(h.clock);
            h.send(&mut input, false, true, &mut fx);
            h.send(&mut input, false, true, &mut fx);
            h.end_op(fx);
            let mut fx = Effects::at(h.clock);
            h.write(&mut input, &mut fx);
            h.end_op(fx);
            assert_eq!((h.frames_written, h.wire.len()), (1, 20));
            // The rest of the second frame's header, then bytes of another frame.
            h.wire.extend_from_slice(&[0, 0, 16, 0, URGENT_TAG]);
            h.parse();
        });
        let message = result.expect_err("the harness must notice");
        let text = message.downcast_ref::<String>().map_or("", String::as_str);
        assert!(text.contains("corrupt"), "{text}");
    }
}
