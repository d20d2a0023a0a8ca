//! The life cycle of a connection's state: opened, half-closed, closing, finished, and the
//! report. Every step is recorded under the connection's lock; what it wakes goes into the
//! caller's [`Effects`].

use std::collections::VecDeque;
use std::ops::Range;
use std::task::Waker;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::state::buffer::{Header, Rewound};
use crate::state::codec::Encoder;
use crate::state::effects::Effects;
use crate::state::error::{Disconnect, FlushError, LinkError, SendError};
use crate::state::events::{Event, PossiblyDelivered};
use crate::state::machine::{Phase, State};
use crate::state::report::{CloseReport, Ending};

impl State {
    /// The link is up: the first one (`attempt` 0), or one that reconnect attempt `attempt`
    /// brought to replace a lost link.
    pub(crate) fn opened(&mut self, attempt: u32, endpoint: usize, fx: &mut Effects) {
        self.events.publish(Event::Connected { attempt, endpoint }, fx);
        self.opened = true;
        self.stats.connects += 1;
        self.link_frames = self.stats.frames_written;
        self.link_bytes = self.stats.bytes_written;
        if let Some(marks) = &mut self.write_marks {
            marks.clear();
        }
        self.end_outage(fx);
        if self.phase == Phase::Connecting {
            self.phase = Phase::Open;
            fx.wake.append(&mut self.watchers);
        }
    }

    /// A reconnect attempt starts.
    pub(crate) fn reconnect_attempt(&mut self) {
        self.stats.reconnect_attempts += 1;
    }

    /// Attempt `attempt`, to endpoint `endpoint`, is due after `delay`.
    pub(crate) fn reconnecting(
        &mut self,
        attempt: u32,
        delay: Duration,
        endpoint: usize,
        fx: &mut Effects,
    ) {
        self.events.publish(Event::Reconnecting { attempt, delay, endpoint }, fx);
    }

    /// Reconnection stopped for `cause`; the connection ends next.
    pub(crate) fn gave_up(&mut self, cause: Disconnect, fx: &mut Effects) {
        self.events.publish(Event::GaveUp { cause }, fx);
    }

    /// The number (in wire order) after the last frame the current link wrote whole within its
    /// first `acked` bytes, as far as the write marks tell: rounded down to the end of a write.
    fn frames_within(&mut self, acked: u64) -> u64 {
        let acked = self.link_bytes + acked.min(self.stats.bytes_written - self.link_bytes);
        let marks = self.write_marks.as_ref().into_iter().flatten();
        let within = marks.rev().find(|(boundary, _)| *boundary <= acked);
        within.map_or(self.link_frames, |(_, frames)| *frames).max(self.link_frames)
    }

    /// Counts the time of the outage under way, if any, and ends it.
    fn end_outage(&mut self, fx: &mut Effects) {
        self.refusing = false;
        if let Some((_, since)) = self.outage.take() {
            self.stats.time_disconnected += fx.now().saturating_duration_since(since);
        }
    }

    /// The link was lost after it was up, and the driver will try another: each frame of the
    /// lost link gets its fate (see [`Reconnect`](crate::Reconnect)), and the connection is
    /// connecting again. Frames never written, and, with `hold_partial`, a partly written
    /// frame, go back into the buffer in their order, ahead of everything sent from now on;
    /// urgent frames not yet on the wire stay urgent. A partly written frame without
    /// `hold_partial` is handed back, as possibly delivered. Frames that stay in the buffer
    /// count as accepted once, as before.
    ///
    /// `in_flight` and `offset` are the driver's chunks not yet fully written; `encoder` is the
    /// connection's framing, whose headers go in front of the frames again. `acked` is how
    /// many of the bytes written on the link its peer acknowledged, if the link can tell: the
    /// frames written whole within them are acknowledged rather than possibly delivered.
    ///
    /// `None`, with nothing changed, if a close or a `shutdown_write` began since the driver
    /// saw the failure: then the connection ends instead.
    pub(crate) fn link_lost(
        &mut self,
        cause: Disconnect,
        in_flight: &mut VecDeque<Bytes>,
        offset: usize,
        encoder: Option<&dyn Encoder>,
        acked: Option<u64>,
        fx: &mut Effects,
    ) -> Option<Lost> {
        if !matches!(self.phase, Phase::Connecting | Phase::Open) {
            return None;
        }
        let now = fx.now();
        self.stats.disconnects += 1;
        // With keeping, the frames written whole and not acknowledged are at hand, whole;
        // without, the write marks tell which of them were acknowledged.
        let kept = if self.buf.keeping() {
            if let Some(acked) = acked {
                self.acked(acked, offset, fx);
            }
            Some(self.buf.take_kept(in_flight, offset))
        } else {
            None
        };
        let acked_frames = match (&kept, acked) {
            (Some(kept), _) => self.stats.frames_written - kept.len() as u64,
            (None, Some(acked)) => self.frames_within(acked),
            (None, None) => self.link_frames,
        };
        let acknowledged = self.link_frames..acked_frames;
        let mut written = acked_frames..self.stats.frames_written;
        let mut cut = Vec::new();
        let header_len = self.buf.header_len();
        let mut dropped = 0;
        // The frame the link was writing goes again whole if the peer cannot have acted on a
        // prefix (and its header can be encoded again); else it is handed back.
        let restart = match self.buf.head_len() {
            Some(len) if self.buf.head_written() > 0 && self.hold_partial() => match encoder {
                None => Some(None),
                Some(e) => Header::encode(e, len - header_len).ok().map(Some),
            },
            _ => None,
        };
        match self.buf.rewind(in_flight, offset, restart) {
            Rewound::Untouched => {}
            Rewound::Restarted(done) => {
                // Sent again whole: its written part is held again (its room was kept).
                self.settled -= done as u64;
                if let Some(slot) = &self.budget {
                    slot.shared.take_urgent(done);
                }
            }
            Rewound::Cut(unsent) => {
                let wire = unsent.frame().len() + header_len;
                dropped += wire - unsent.written();
                if let Some(slot) = &self.budget {
                    slot.shared.release(wire - unsent.written(), &mut fx.grants);
                }
                cut.push(unsent.into_frame());
            }
        }
        let mut replayed = self.buf.frame_count() as u64;
        let mut returned = Vec::new();
        if let Some(kept) = kept {
            if self.at_least_once {
                // Written whole and not acknowledged: sent again first, as they went.
                written = self.stats.frames_written..self.stats.frames_written;
                let mut again = Vec::with_capacity(kept.len());
                for frame in kept {
                    let header = match encoder.map(|e| Header::encode(e, frame.len())) {
                        None => Bytes::new(),
                        Some(Ok(header)) => Bytes::copy_from_slice(header.as_slice()),
                        // An encoder that refuses a length it took before cannot frame it
                        // again: handed back, as a partly written frame would be.
                        Some(Err(_)) => {
                            cut.push(frame);
                            continue;
                        }
                    };
                    let wire = header.len() + frame.len();
                    // Held again: their bytes were settled when they were written.
                    self.settled -= wire as u64;
                    if let Some(slot) = &self.budget {
                        slot.shared.take_urgent(wire);
                    }
                    again.push((header, frame));
                }
                replayed += again.len() as u64;
                self.buf.push_front(again);
            } else {
                returned = kept;
            }
        }
        let possibly = PossiblyDelivered::new(written, returned, cut);
        let lost = Lost { replayed, acknowledged, possibly };
        debug_assert!(self.buf.held() <= self.capacity, "invariant 1: the bound holds");
        self.stats.frames_replayed += lost.replayed;
        self.stats.frames_acknowledged += lost.acknowledged.end - lost.acknowledged.start;
        self.stats.frames_possibly_delivered += lost.possibly.count();
        self.phase = Phase::Connecting;
        self.write_ended = false;
        self.peer_ended = false;
        self.outage = Some((cause.clone(), now));
        self.refusing = self.fail_fast;
        self.settle(dropped as u64, fx);
        if self.fail_fast {
            self.fail_waiters(fx);
        } else {
            self.grant(fx);
        }
        self.marks.grew(self.buf.held(), fx);
        self.marks.shrank(self.buf.held(), fx);
        let event = Event::Disconnected {
            cause,
            replayed: lost.replayed,
            acknowledged: lost.acknowledged.clone(),
            possibly_delivered: lost.possibly.clone(),
        };
        self.events.publish(event, fx);
        Some(lost)
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
        if deadline.is_some_and(|d| d <= fx.now()) {
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
        let now = fx.now();
        if let Some(slot) = &mut self.budget
            && let Some((_, seq)) = slot.pending.take()
        {
            slot.shared.leave(seq, &mut fx.grants);
        }
        // Both lanes, in arrival order.
        let mut all: Vec<_> = self.waiters.drain().chain(self.urgent_waiters.drain()).collect();
        all.sort_unstable_by_key(|&(ticket, _)| ticket);
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
        let now = fx.now();
        self.close_timed_out = self.phase == Phase::Closing
            && self.buf.held() > 0
            && self.close_deadline.is_some_and(|d| d <= now);
        self.phase = Phase::Closed;
        if self.cause.is_none() {
            self.cause = cause;
        }
        self.end_outage(fx);
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
        self.events.end(fx);
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
}

/// What became of the frames of a lost link ([`State::link_lost`]).
#[derive(Debug)]
pub(crate) struct Lost {
    /// Frames back in the buffer, to be sent first on the next link.
    pub(crate) replayed: u64,
    /// The frames written whole whose bytes the peer acknowledged, by number.
    pub(crate) acknowledged: Range<u64>,
    /// The frames that may have reached the peer: written whole, or cut and not atomic.
    pub(crate) possibly: PossiblyDelivered,
}
