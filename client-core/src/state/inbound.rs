//! The receive side of a connection: the bounded inbound buffer, the FIFO queue of waiting
//! receivers, and how the stream ended. It lives behind a lock of its own, apart from the send
//! side's [`State`](crate::state::machine::State), so receiving never contends with sending.
//!
//! # The buffer
//!
//! The driver reads from the link straight into `data`, at most its free space per read, and
//! never anywhere else: no byte read from the link is held outside this buffer, and the buffer
//! never holds more than its capacity. When it is full the driver stops reading; the kernel's
//! receive window then closes and the peer's writes stall (TCP flow control does the rest).
//! Because readiness is edge-triggered, no new event comes for a link the driver stopped
//! reading: the receiver whose `recv` takes the buffer from full to not full (and only that
//! one) asks the driver to look at the connection again, and the driver then reads until the
//! link would block or the buffer is full.
//!
//! Memory: `data` is one allocation of the capacity, made at the first read. Unframed receives
//! copy each chunk out (at most [`RECV_CHUNK`] bytes), so the allocation is never shared and is
//! reused in place: when its tail is used up, the unread bytes are moved to its front once at
//! least as many bytes were consumed as are left (so each byte is moved at most once, amortized),
//! and until then the buffer counts as full. Framed receives hand out each frame without a copy,
//! as a slice of the allocation; when a frame still held by the application pins the
//! allocation, the next read starts a fresh one and the unread bytes (less than one frame) move
//! there.
//!
//! One exception bends "nothing outside the buffer": a TLS link (native-tls) decrypts whole
//! records, so up to one record (16 KiB) may wait inside the TLS session while the buffer is
//! full.
//!
//! The driver reads under this buffer's lock (one non-blocking read of at most [`READ_CHUNK`]
//! bytes at a time), which keeps the rule above trivially true; a receiver waits for the lock
//! at most that long.
//!
//! # Receivers
//!
//! Receivers are served in arrival order. A receiver takes data only when no other receiver
//! waits ahead of it; otherwise it waits in `waiters`, keyed by a ticket from a counter, with a
//! [`Waker`]. When bytes arrive, or the stream ends, only the head is woken (and only if it was
//! not already woken); when it has taken its item, it wakes the next one if there may be more.
//! Bytes leave the buffer only when a receive returns them, so a receiver that times out or is
//! dropped takes nothing with it: it leaves the queue and wakes the next one. Wakers are
//! collected under the lock into [`Effects`] and woken after it is released.
//!
//! # End of stream
//!
//! What arrived before the end is always delivered first. Then every receive returns the end:
//! `Ok(None)` after the peer closed in order or the application closed the connection, or the
//! [`Disconnect`] after a reset or another failure. A frame the peer cut short, or one that can
//! never be decoded, is a [`DecodeError`], after which the receive side is over.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};

use crate::state::codec::{DecodeError, Decoder};
use crate::state::effects::Effects;
use crate::state::error::{Disconnect, DisconnectKind, RecvError};

/// The most bytes one read asks the link for.
pub(crate) const READ_CHUNK: usize = 64 * 1024;
/// The most bytes the first read of a turn asks for. Most turns of a busy writer find nothing
/// to read, so the first read goes into a small space of its own, zeroed once (see
/// `Inbound::first`), and its bytes are copied into the buffer only if any came; the reads
/// after it, once bytes are flowing, zero-fill the buffer's room and ask for [`READ_CHUNK`].
const FIRST_READ: usize = 4 * 1024;
/// The most bytes one unframed receive returns.
pub(crate) const RECV_CHUNK: usize = 64 * 1024;
/// The most reads in one call of [`Inbound::read_from`], so `Interrupted` cannot loop forever.
const MAX_READS: usize = 64;
/// The size of the scratch space a close reads into, and drops, once the buffer is full.
const DISCARD_CHUNK: usize = 16 * 1024;

/// How the inbound stream ended.
#[derive(Debug, Clone)]
enum End {
    /// The peer closed its side in order.
    Eof,
    /// The application closed the connection.
    Closed,
    /// The connection failed: a reset, or another error.
    Failed(Disconnect),
}

/// What a read by the driver found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// The link has nothing more now; its next readiness event brings the driver back.
    Drained,
    /// The buffer is full; the receiver that makes room brings the driver back.
    Full,
    /// The read budget of this turn is spent and more may be waiting.
    Budget,
    /// The peer ended its side in order. Not recorded here: the caller decides what the end
    /// means (after a write found a reset, a read sees an end of stream that is not one).
    Eof,
}

/// A receiver waiting for data.
#[derive(Debug)]
struct Waiter {
    waker: Waker,
    deadline: Option<Instant>,
    /// Woken and not yet polled again: waking it again would change nothing.
    woken: bool,
}

/// The receive side of one connection.
pub(crate) struct Inbound {
    /// Bytes read from the link and not yet returned by a receive, oldest first.
    ///
    /// Invariant: `data.len() <= capacity`.
    data: BytesMut,
    /// Fixed at open.
    capacity: usize,
    /// Whether `data` has its allocation yet (made at the first read).
    allocated: bool,
    /// Unframed only: bytes consumed since the start of `data`'s allocation, that is, how far
    /// `data` starts into it. Invariant (unframed): `front + data.capacity()` is the
    /// allocation's size.
    front: usize,
    /// Whether the driver stopped reading because there was no room.
    stalled: bool,
    /// Whether what is read is dropped at once (`Config::discard_inbound`). Then `data` is
    /// empty between reads.
    discard: bool,
    /// Cuts frames out of `data`, if the connection is framed.
    decoder: Option<Box<dyn Decoder>>,
    /// Set once the stream ended; sticky.
    end: Option<End>,
    /// Framed only: `decode_eof` returned its last frame or `None`, so only the end is left.
    eof_decoded: bool,
    /// Set once frames could not be decoded; sticky, and it wins over the data left.
    failed: Option<Arc<DecodeError>>,
    /// Framed only: the rest of a decoded frame that a receive of at most so many bytes (a
    /// byte-stream read) could not take whole. It goes out first, ahead of everything else.
    /// Invariant: never empty.
    rest: Option<Bytes>,
    /// Framed only: whole frames a lost link left undelivered, cut out of `data` when the
    /// link was replaced, with the bytes each took there. They go out after `rest`, ahead of
    /// the new link's bytes.
    ready: VecDeque<(Bytes, usize)>,
    /// The bytes the frames in `ready` took in `data`: they still count against the capacity.
    /// Invariant: `data.len() + ready_bytes <= capacity`.
    ready_bytes: usize,
    /// Waiting receivers by ticket: the map's order is arrival order.
    waiters: BTreeMap<u64, Waiter>,
    /// Deadlines of waiting receivers. Invariant: one entry per waiter with a deadline.
    deadlines: BTreeSet<(Instant, u64)>,
    next_ticket: u64,
    /// The most bytes `data` ever held. Invariant: `high_water <= capacity`.
    high_water: usize,
    bytes_received: u64,
    bytes_delivered: u64,
    /// Bytes read while closing that found the buffer full, and were dropped.
    discarded: u64,
    /// Where those bytes are read to; allocated by the first close that needs it.
    scratch: Vec<u8>,
    /// Where the first read of each turn goes ([`FIRST_READ`] bytes, allocated by the first
    /// read): reading into the buffer would zero-fill its room first, every turn, and most
    /// turns of a busy writer find nothing.
    first: Vec<u8>,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound")
            .field("held", &self.held())
            .field("capacity", &self.capacity)
            .field("stalled", &self.stalled)
            .field("framed", &self.decoder.is_some())
            .field("end", &self.end)
            .field("waiters", &self.waiters.len())
            .finish_non_exhaustive()
    }
}

/// The receive-side counters, for [`Stats`](crate::Stats).
#[derive(Debug, Clone, Copy)]
pub(crate) struct InboundStats {
    pub(crate) capacity: usize,
    pub(crate) held: usize,
    pub(crate) high_water: usize,
    pub(crate) bytes_received: u64,
    pub(crate) bytes_delivered: u64,
    pub(crate) receivers: usize,
    pub(crate) discarded: u64,
}

impl Inbound {
    pub(crate) fn new(capacity: usize, decoder: Option<Box<dyn Decoder>>) -> Self {
        debug_assert!(capacity > 0, "the configuration was validated");
        Self {
            data: BytesMut::new(),
            capacity,
            allocated: false,
            front: 0,
            stalled: false,
            discard: false,
            decoder,
            end: None,
            eof_decoded: false,
            failed: None,
            rest: None,
            waiters: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            next_ticket: 0,
            high_water: 0,
            bytes_received: 0,
            bytes_delivered: 0,
            discarded: 0,
            scratch: Vec::new(),
            first: Vec::new(),
            ready: VecDeque::new(),
            ready_bytes: 0,
        }
    }

    pub(crate) fn stats(&self) -> InboundStats {
        InboundStats {
            capacity: self.capacity,
            held: self.held(),
            high_water: self.high_water,
            bytes_received: self.bytes_received,
            bytes_delivered: self.bytes_delivered,
            receivers: self.waiters.len(),
            discarded: self.discarded,
        }
    }

    /// Drops what is read from now on, instead of keeping it for receives.
    pub(crate) fn set_discard(&mut self, discard: bool) {
        debug_assert!(!(discard && self.framed()), "the configuration was validated");
        self.discard = discard;
    }

    fn framed(&self) -> bool {
        self.decoder.is_some()
    }

    /// The bytes held against the capacity.
    fn held(&self) -> usize {
        self.data.len() + self.ready_bytes
    }

    /// Makes room at the tail of `data` if it can, and returns how many bytes may be read now.
    fn room(&mut self) -> usize {
        let free = self.capacity - self.held();
        if free == 0 {
            return 0;
        }
        if !self.allocated {
            self.data = BytesMut::with_capacity(self.capacity);
            self.allocated = true;
            self.front = 0;
        }
        let tail = self.data.capacity() - self.data.len();
        if tail < free.min(READ_CHUNK) {
            // Move the unread bytes to the front, if that is cheap (see the module docs).
            if self.data.try_reclaim(free) {
                self.front = 0;
            } else if tail == 0 && self.framed() {
                // A frame the application holds pins the allocation (or the unread part of a
                // frame is larger than what was consumed): continue in a fresh allocation.
                let mut fresh = BytesMut::with_capacity(self.capacity);
                fresh.extend_from_slice(&self.data);
                self.data = fresh;
                log::trace!("inbound buffer moved {} bytes to a fresh allocation", self.data.len());
            }
        }
        (self.data.capacity() - self.data.len()).min(free)
    }

    /// Whether the driver could read now, were it asked to.
    fn could_read(&self) -> bool {
        let free = self.held() < self.capacity;
        // Unframed, with no tail left: room comes back once the move to the front is cheap.
        let tail = self.data.capacity() > self.data.len();
        free && (self.framed() || !self.allocated || tail || self.front >= self.data.len())
    }

    /// Reads with `link` (the I/O layer's read call on its link) into the buffer, at most `budget` bytes, until the link would block
    /// or the buffer is full. Wakes the first waiting receiver if anything arrived.
    ///
    /// With `overflow` (a close is reading to the peer's end of stream), a full buffer does not
    /// stop the reading: what does not fit is read into scratch space, counted and dropped, so
    /// the link never holds unread bytes that would turn its drop into a reset.
    ///
    /// The peer's end of stream is returned as [`Read::Eof`], and the link's error as the
    /// error, and neither is recorded: the caller records the end with [`Inbound::finish`], or
    /// nothing when another link replaces this one, so receivers never see a lost link that
    /// reconnection replaces.
    ///
    /// # Errors
    ///
    /// The link's error.
    pub(crate) fn read_from(
        &mut self,
        link: &mut dyn FnMut(&mut [u8]) -> io::Result<usize>,
        budget: usize,
        overflow: bool,
        fx: &mut Effects,
    ) -> Result<Read, Disconnect> {
        let before = self.bytes_received;
        let mut left = budget;
        let mut outcome = Ok(Read::Budget);
        let mut chunk = FIRST_READ;
        for _ in 0..MAX_READS {
            if left == 0 {
                break;
            }
            let room = self.room();
            if room == 0 && overflow {
                match self.read_to_scratch(link, left) {
                    Ok(None) => {
                        outcome = Ok(Read::Eof);
                        break;
                    }
                    Ok(Some(n)) => left = left.saturating_sub(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        outcome = Ok(Read::Drained);
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        outcome = Err(Disconnect::from_io(e));
                        break;
                    }
                }
                continue;
            }
            if room == 0 {
                self.stalled = true;
                log::debug!("inbound buffer full ({} bytes): stopped reading", self.data.len());
                outcome = Ok(Read::Full);
                break;
            }
            let want = room.min(left).min(chunk);
            let len = self.data.len();
            debug_assert!(len + want <= self.data.capacity(), "a read never reallocates");
            let read = if chunk == FIRST_READ {
                if self.first.is_empty() {
                    self.first = vec![0; FIRST_READ];
                }
                let read = link(&mut self.first[..want]);
                if let Ok(got) = read {
                    self.data.extend_from_slice(&self.first[..got.min(want)]);
                }
                read
            } else {
                self.data.resize(len + want, 0);
                let read = link(&mut self.data[len..]);
                let got = *read.as_ref().unwrap_or(&0);
                self.data.truncate(len + got.min(want));
                read
            };
            chunk = READ_CHUNK;
            match read {
                Ok(0) => {
                    outcome = Ok(Read::Eof);
                    break;
                }
                Ok(n) => {
                    left = left.saturating_sub(n);
                    self.bytes_received += n as u64;
                    self.high_water = self.high_water.max(self.held());
                    debug_assert!(self.held() <= self.capacity, "the inbound bound holds");
                    if self.discard {
                        log::trace!("dropped {n} inbound bytes");
                        self.data.clear();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    outcome = Ok(Read::Drained);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    outcome = Err(Disconnect::from_io(e));
                    break;
                }
            }
        }
        let got = self.bytes_received - before;
        if got > 0 {
            log::trace!("read {got} inbound bytes; {} buffered", self.data.len());
        }
        if (got > 0 && !self.discard) || outcome.is_err() {
            self.wake_head(fx);
        }
        outcome
    }

    /// One read into the scratch space, for a close that found the buffer full: `Ok(None)` at
    /// the end of stream, else the bytes read and dropped.
    fn read_to_scratch(
        &mut self,
        link: &mut dyn FnMut(&mut [u8]) -> io::Result<usize>,
        left: usize,
    ) -> io::Result<Option<usize>> {
        if self.scratch.is_empty() {
            self.scratch = vec![0; DISCARD_CHUNK];
        }
        let want = left.min(DISCARD_CHUNK);
        match link(&mut self.scratch[..want])? {
            0 => Ok(None),
            n => {
                self.bytes_received += n as u64;
                self.discarded += n as u64;
                log::trace!("closing with a full inbound buffer: dropped {n} bytes");
                Ok(Some(n))
            }
        }
    }

    /// The link was lost and another will replace it: the stream goes on. What was read stays
    /// readable. With framing, the whole frames it holds are cut out now, to be received
    /// first; the start of a frame the loss cut off cannot be completed by the next link, so
    /// those bytes are counted as discarded.
    pub(crate) fn relink(&mut self) {
        if matches!(self.end, Some(End::Eof | End::Failed(_))) {
            self.end = None;
        }
        self.eof_decoded = false;
        self.stalled = false;
        let Some(decoder) = self.decoder.as_mut() else { return };
        while self.failed.is_none() && !self.data.is_empty() {
            let before = self.data.len();
            match decoder.decode(&mut self.data) {
                Ok(Some(frame)) => {
                    let wire = before - self.data.len();
                    self.ready_bytes += wire;
                    self.ready.push_back((frame, wire));
                }
                Ok(None) => break,
                Err(err) => {
                    // The frames before it are received first, then the error.
                    self.fail(err);
                    break;
                }
            }
        }
        if !self.data.is_empty() {
            log::debug!("a lost link cut {} inbound bytes short of a frame", self.data.len());
            self.discarded += self.data.len() as u64;
            self.data.clear();
        }
    }

    /// Records the end of the connection, unless the stream already ended: `None` for the
    /// application's own close, else the cause. Wakes the first waiting receiver.
    pub(crate) fn finish(&mut self, cause: Option<Disconnect>, fx: &mut Effects) {
        if self.end.is_none() {
            self.end_with(match cause {
                None => End::Closed,
                Some(cause) if cause.kind() == DisconnectKind::PeerClosed => End::Eof,
                Some(cause) => End::Failed(cause),
            });
            self.wake_head(fx);
        }
    }

    fn end_with(&mut self, end: End) {
        if self.end.is_none() {
            log::debug!("inbound stream ended ({end:?}) with {} bytes buffered", self.data.len());
            self.end = Some(end);
        }
    }

    /// Wakes the first waiting receiver, unless it was woken already.
    fn wake_head(&mut self, fx: &mut Effects) {
        if let Some(mut head) = self.waiters.first_entry() {
            let head = head.get_mut();
            if !head.woken {
                head.woken = true;
                fx.wake.push(head.waker.clone());
            }
        }
    }

    /// After an item was taken: the next receiver may have something too.
    fn pass_on(&mut self, fx: &mut Effects) {
        if !self.data.is_empty()
            || self.rest.is_some()
            || !self.ready.is_empty()
            || self.end.is_some()
            || self.failed.is_some()
        {
            self.wake_head(fx);
        }
    }

    /// The next item, of at most `max` bytes, for a receiver at the head of the line, if there
    /// is one now.
    fn next_item(
        &mut self,
        max: usize,
        fx: &mut Effects,
    ) -> Option<Result<Option<Bytes>, RecvError>> {
        let max = max.max(1);
        if let Some(rest) = self.rest.take() {
            return Some(Ok(Some(self.at_most(rest, max))));
        }
        if let Some((frame, wire)) = self.ready.pop_front() {
            self.ready_bytes -= wire;
            self.delivered(wire, fx);
            return Some(Ok(Some(self.at_most(frame, max))));
        }
        if let Some(err) = &self.failed {
            return Some(Err(RecvError::Decode(err.clone())));
        }
        let before = self.data.len();
        let item = if self.decoder.is_some() {
            self.next_frame().map(|item| item.map(|f| f.map(|f| self.at_most(f, max))))
        } else {
            self.next_chunk(max)
        };
        self.delivered(before - self.data.len(), fx);
        item
    }

    /// Counts `taken` bytes delivered, and tells the driver if that gave it room to read again.
    fn delivered(&mut self, taken: usize, fx: &mut Effects) {
        if taken > 0 {
            self.bytes_delivered += taken as u64;
            if self.stalled && self.could_read() {
                // Full to not full: the driver stopped reading and no event will come.
                self.stalled = false;
                fx.notify_driver = true;
            }
        }
    }

    /// The first `max` bytes of a frame; the rest waits in `rest` for the next receive.
    fn at_most(&mut self, mut frame: Bytes, max: usize) -> Bytes {
        if frame.len() > max {
            self.rest = Some(frame.split_off(max));
        }
        frame
    }

    fn next_chunk(&mut self, max: usize) -> Option<Result<Option<Bytes>, RecvError>> {
        if self.data.is_empty() {
            return self.end.as_ref().map(end_result);
        }
        let n = self.data.len().min(RECV_CHUNK).min(max);
        let chunk = Bytes::copy_from_slice(&self.data[..n]);
        self.data.advance(n);
        self.front += n;
        Some(Ok(Some(chunk)))
    }

    fn next_frame(&mut self) -> Option<Result<Option<Bytes>, RecvError>> {
        let decoder = self.decoder.as_mut().expect("framed");
        let decoded = match &self.end {
            None => decoder.decode(&mut self.data),
            // The link is gone: a partial frame is what the failure cut short.
            Some(End::Failed(_)) => decoder.decode(&mut self.data),
            Some(End::Eof | End::Closed) if self.eof_decoded => Ok(None),
            Some(End::Eof | End::Closed) => {
                let last = decoder.decode_eof(&mut self.data);
                if matches!(last, Ok(None)) {
                    self.eof_decoded = true;
                }
                last
            }
        };
        match decoded {
            Ok(Some(frame)) => Some(Ok(Some(frame))),
            Ok(None) if self.end.is_some() => self.end.as_ref().map(end_result),
            Ok(None) if self.data.len() >= self.capacity => {
                // Full, and still no whole frame: it could never be received.
                let err = DecodeError::malformed(format!(
                    "a frame does not fit in the inbound buffer of {} bytes",
                    self.capacity
                ));
                Some(Err(self.fail(err)))
            }
            Ok(None) => None,
            Err(err) => Some(Err(self.fail(err))),
        }
    }

    fn fail(&mut self, err: DecodeError) -> RecvError {
        log::debug!("inbound frames could not be decoded: {err}");
        let err = Arc::new(err);
        self.failed = Some(err.clone());
        RecvError::Decode(err)
    }

    /// Polls a receive of at most `max` bytes (at least 1). `ticket` is the receiver's place
    /// in line, if it has one; `waker` is `None` for a receive that must not wait (then
    /// `Pending` means nothing now).
    pub(crate) fn poll_recv(
        &mut self,
        ticket: &mut Option<u64>,
        deadline: Option<Instant>,
        waker: Option<&Waker>,
        max: usize,
        fx: &mut Effects,
    ) -> Poll<Result<Option<Bytes>, RecvError>> {
        let first = self.waiters.first_key_value().map(|(t, _)| *t);
        let at_head = match *ticket {
            None => first.is_none(),
            Some(t) => first == Some(t),
        };
        if at_head && let Some(item) = self.next_item(max, fx) {
            if let Some(t) = ticket.take() {
                self.remove(t);
            }
            self.pass_on(fx);
            return Poll::Ready(item);
        }
        if deadline.is_some_and(|d| d <= fx.now()) {
            if let Some(t) = ticket.take() {
                self.remove(t);
                self.pass_on(fx);
            }
            return Poll::Ready(Err(RecvError::Timeout));
        }
        let Some(waker) = waker else {
            return Poll::Pending;
        };
        match *ticket {
            Some(t) => {
                let waiter = self.waiters.get_mut(&t).expect("a ticket is in line until it leaves");
                if !waiter.waker.will_wake(waker) {
                    waiter.waker = waker.clone();
                }
                waiter.woken = false;
            }
            None => {
                let t = self.next_ticket;
                self.next_ticket += 1;
                self.waiters.insert(t, Waiter { waker: waker.clone(), deadline, woken: false });
                if let Some(d) = deadline {
                    self.deadlines.insert((d, t));
                    fx.timer = Some(d);
                }
                *ticket = Some(t);
            }
        }
        Poll::Pending
    }

    /// A receiver gives up (dropped, or cancelled): it leaves the line, and the next one is
    /// woken if there is something for it.
    pub(crate) fn leave(&mut self, ticket: u64, fx: &mut Effects) {
        let was_head = self.waiters.first_key_value().is_some_and(|(t, _)| *t == ticket);
        self.remove(ticket);
        if was_head {
            self.pass_on(fx);
        }
    }

    fn remove(&mut self, ticket: u64) {
        if let Some(waiter) = self.waiters.remove(&ticket)
            && let Some(d) = waiter.deadline
        {
            self.deadlines.remove(&(d, ticket));
        }
    }

    /// Wakes the receivers whose deadline passed (their next poll returns the timeout), and
    /// returns the next deadline still pending.
    pub(crate) fn expire(&mut self, now: Instant, fx: &mut Effects) -> Option<Instant> {
        while let Some(&(deadline, ticket)) = self.deadlines.first() {
            if deadline > now {
                return Some(deadline);
            }
            self.deadlines.pop_first();
            if let Some(waiter) = self.waiters.get_mut(&ticket)
                && !waiter.woken
            {
                waiter.woken = true;
                fx.wake.push(waiter.waker.clone());
            }
        }
        None
    }
}

impl Drop for Inbound {
    fn drop(&mut self) {
        // Every waiting receiver holds a reference to the connection.
        debug_assert!(
            self.waiters.is_empty() || std::thread::panicking(),
            "a receiver outlived its connection"
        );
    }
}

fn end_result(end: &End) -> Result<Option<Bytes>, RecvError> {
    match end {
        End::Eof | End::Closed => Ok(None),
        End::Failed(cause) => Err(RecvError::Disconnected(cause.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::codec::LengthDelimited;

    /// What `link` hands over, read in one go.
    fn feed(inbound: &mut Inbound, bytes: &[u8], fx: &mut Effects) {
        let mut left = bytes;
        let mut link = |buf: &mut [u8]| {
            if left.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(left.len());
            buf[..n].copy_from_slice(&left[..n]);
            left = &left[n..];
            Ok(n)
        };
        inbound.read_from(&mut link, usize::MAX, false, fx).expect("read");
    }

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    fn received(inbound: &mut Inbound, fx: &mut Effects) -> Vec<Bytes> {
        let mut got = Vec::new();
        while let Poll::Ready(Ok(Some(frame))) = inbound.poll_recv(&mut None, None, None, 64, fx) {
            got.push(frame);
        }
        got
    }

    #[test]
    fn reads_across_the_first_reads_space_lose_and_repeat_nothing() {
        // Turns that find nothing, then turns of every size around the first read's space
        // (which is read into apart from the buffer and copied in), then a read of the rest.
        let mut inbound = Inbound::new(1 << 20, None);
        let mut fx = Effects::new(Instant::now);
        for _ in 0..3 {
            feed(&mut inbound, &[], &mut fx);
        }
        assert_eq!(inbound.stats().bytes_received, 0);
        let mut sent = Vec::new();
        for (turn, len) in
            [1, FIRST_READ - 1, FIRST_READ, FIRST_READ + 1, 3 * READ_CHUNK].iter().enumerate()
        {
            let bytes: Vec<u8> = (0..*len).map(|i| (i * 31 + turn) as u8).collect();
            feed(&mut inbound, &bytes, &mut fx);
            sent.extend_from_slice(&bytes);
        }
        let mut got = Vec::new();
        while let Poll::Ready(Ok(Some(chunk))) =
            inbound.poll_recv(&mut None, None, None, RECV_CHUNK, &mut fx)
        {
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got, sent);
    }

    #[test]
    fn a_relink_keeps_the_whole_frames_read_and_drops_only_the_cut_one() {
        let mut inbound = Inbound::new(64, Some(Box::new(LengthDelimited::new())));
        let mut fx = Effects::new(Instant::now);
        let cut = framed(b"three");
        let old = [framed(b"one"), framed(b"two"), cut[..3].to_vec()].concat();
        feed(&mut inbound, &old, &mut fx);
        inbound.relink();
        let stats = inbound.stats();
        assert_eq!(stats.held, 14, "the two whole frames still count against the capacity");
        assert_eq!(stats.discarded, 3, "the cut frame's start is dropped");
        feed(&mut inbound, &framed(b"four"), &mut fx);
        let got = received(&mut inbound, &mut fx);
        assert_eq!(got, ["one", "two", "four"], "the old link's frames first, then the new");
        let stats = inbound.stats();
        assert_eq!((stats.held, stats.bytes_delivered), (0, 22), "{stats:?}");
    }

    #[test]
    fn frames_kept_by_a_relink_leave_room_for_no_more_than_the_capacity() {
        let mut inbound = Inbound::new(16, Some(Box::new(LengthDelimited::new())));
        let mut fx = Effects::new(Instant::now);
        feed(&mut inbound, &[framed(b"aaaa"), framed(b"bbbb")].concat(), &mut fx);
        inbound.relink();
        assert_eq!(inbound.room(), 0, "16 bytes kept of 16");
        assert_eq!(received(&mut inbound, &mut fx).len(), 2);
        assert_eq!(inbound.room(), 16, "all of it back once received");
    }
}
