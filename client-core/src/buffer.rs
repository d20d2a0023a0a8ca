//! The bounded outgoing buffer.
//!
//! Bytes enter as whole frames and leave as whatever the link accepts. The buffer keeps:
//!
//! - a queue of *chunks*, each holding one or more whole frames. Small frames (up to
//!   [`COPY_MAX`] bytes) are copied into the growing tail segment, so a burst of tiny frames
//!   becomes one large write; larger frames are queued as they are, without a copy.
//! - the length of every frame not yet fully written, so frame boundaries survive the
//!   coalescing: the driver counts frames as they complete, and a close or disconnect can hand
//!   every unwritten frame back to the application.
//!
//! The I/O driver [takes](OutBuffer::take_chunks) the queued chunks, writes them outside the
//! connection's lock, and reports how many bytes the link accepted with
//! [`OutBuffer::consume`]. Space is returned only then, so the bytes in flight still count
//! against the capacity.
//!
//! Urgent frames wait in a lane of their own. At the next frame boundary on the wire the
//! driver [splices](OutBuffer::splice_urgent) them into its chunks in flight, ahead of every
//! data frame not yet started (and behind urgent frames spliced before them), and their
//! lengths into the frame list at the same place, so the list keeps the order of the wire.
//!
//! This module knows nothing about waiting: deciding *who* may push is the job of
//! [`crate::state`].

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

/// Frames up to this many bytes are copied into the tail segment; larger ones are queued
/// without a copy.
pub(crate) const COPY_MAX: usize = 2048;

/// The preferred allocation size of a tail segment.
const SEGMENT: usize = 64 * 1024;

/// A frame that was not fully written when its connection ended.
///
/// Returned in a [`CloseReport`](crate::CloseReport).
///
/// # Examples
///
/// ```
/// # fn show(report: tidegate_core::CloseReport) {
/// for unsent in report.unsent() {
///     println!("{} of {} bytes were written", unsent.written(), unsent.frame().len());
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsentFrame {
    frame: Bytes,
    written: usize,
}

impl UnsentFrame {
    /// Returns the whole frame, as it was sent, including any prefix that reached the link.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-unsentframe-frame").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// conn.try_send(Bytes::from_static(b"stuck")).unwrap();
    /// let report = futures::executor::block_on(conn.close(Duration::ZERO));
    /// assert_eq!(report.unsent()[0].frame(), &Bytes::from_static(b"stuck"));
    /// ```
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// Returns how many bytes at the start of the frame the link accepted before it ended.
    ///
    /// Zero for every frame but, at most, the first one of a report.
    ///
    /// # Examples
    ///
    /// A peer that takes 3 bytes of a 5-byte frame, then stalls:
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-unsentframe-written").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.set_write_capacity(3);
    /// conn.try_send(Bytes::from_static(b"hello")).unwrap();
    /// assert!(peer.wait_unread(3, Duration::from_secs(5)));
    /// let report = futures::executor::block_on(conn.close(Duration::ZERO));
    /// assert_eq!(report.unsent()[0].written(), 3);
    /// ```
    pub fn written(&self) -> usize {
        self.written
    }

    /// Takes the frame out.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-unsentframe-into-frame").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// conn.try_send(Bytes::from_static(b"retry me")).unwrap();
    /// let report = futures::executor::block_on(conn.close(Duration::ZERO));
    /// let frames: Vec<Bytes> = report.into_unsent().into_iter().map(|u| u.into_frame()).collect();
    /// assert_eq!(frames, [Bytes::from_static(b"retry me")]);
    /// ```
    pub fn into_frame(self) -> Bytes {
        self.frame
    }
}

/// The outgoing buffer of one connection. It does not enforce the capacity itself (the
/// admission rules live in [`crate::state`]) but it does the exact byte accounting they rely on.
#[derive(Debug)]
pub(crate) struct OutBuffer {
    /// Frozen chunks, oldest first. Each holds whole frames only (a frame never spans chunks).
    chunks: VecDeque<Bytes>,
    /// Frames copied in since the last [`take_chunks`](Self::take_chunks). Whole frames only.
    tail: BytesMut,
    /// The length of every frame not yet fully written, oldest first, including the frames whose
    /// chunks the driver holds.
    ///
    /// Invariant: the sum of these lengths minus `head_written` equals `held`.
    frames: VecDeque<usize>,
    /// Bytes of the oldest frame that the link has already accepted.
    ///
    /// Invariant: `head_written < frames[0]` when `frames` is not empty, else 0.
    head_written: usize,
    /// Bytes not yet accepted by the link: queued here or in flight in the driver.
    held: usize,
    /// Bytes queued here (in `chunks` and `tail`), not yet taken by the driver.
    ///
    /// Invariant: `queued <= held`.
    queued: usize,
    /// The segment size for the tail: a quarter of the capacity, at most [`SEGMENT`]. Small
    /// buffers get small segments, so the memory a connection allocates stays close to its
    /// capacity (segments still being written are kept until written) even with many
    /// connections.
    segment: usize,
    /// Urgent frames not yet spliced, oldest first, one chunk each. Not in `frames` yet.
    urgent: VecDeque<Bytes>,
    /// Bytes in `urgent`. Counted in `held`, not in `queued`.
    urgent_queued: usize,
    /// How many frames at the front of `frames` are spliced urgent frames.
    ///
    /// Invariant: `urgent_in_frames <= frames.len()`.
    urgent_in_frames: usize,
}

impl OutBuffer {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            chunks: VecDeque::new(),
            tail: BytesMut::new(),
            frames: VecDeque::new(),
            head_written: 0,
            held: 0,
            queued: 0,
            segment: (capacity / 4).clamp(1, SEGMENT),
            urgent: VecDeque::new(),
            urgent_queued: 0,
            urgent_in_frames: 0,
        }
    }

    /// Appends an urgent frame to the urgent lane. The caller has checked that it fits.
    pub(crate) fn push_urgent(&mut self, frame: Bytes) {
        debug_assert!(!frame.is_empty(), "empty frames are refused before they reach the buffer");
        self.held += frame.len();
        self.urgent_queued += frame.len();
        self.urgent.push_back(frame);
    }

    /// Bytes of urgent frames waiting to be spliced.
    pub(crate) fn urgent_queued(&self) -> usize {
        self.urgent_queued
    }

    /// Whether the next byte on the wire starts a frame, or belongs to a spliced urgent frame
    /// (behind which more urgent frames may go).
    pub(crate) fn at_boundary(&self) -> bool {
        self.head_written == 0 || self.urgent_in_frames > 0
    }

    /// Bytes left of the frame being written.
    pub(crate) fn head_remaining(&self) -> usize {
        self.frames.front().map_or(0, |len| len - self.head_written)
    }

    /// Moves the urgent frames into `in_flight` (whose first chunk has `offset` bytes written)
    /// at the next frame boundary: behind the urgent frames already spliced, ahead of every data
    /// frame. The caller has checked [`at_boundary`](Self::at_boundary).
    pub(crate) fn splice_urgent(&mut self, in_flight: &mut VecDeque<Bytes>, offset: usize) {
        debug_assert!(self.at_boundary(), "urgent frames go in at a frame boundary only");
        let spliced: usize = self.frames.iter().take(self.urgent_in_frames).sum();
        // Where the data starts in `in_flight`: past the written bytes and the spliced urgent
        // frames. That is a frame boundary, so it may fall inside a coalesced chunk only
        // between two frames.
        let mut at =
            offset + spliced - if self.urgent_in_frames > 0 { self.head_written } else { 0 };
        let mut index = 0;
        while index < in_flight.len() && at >= in_flight[index].len() {
            at -= in_flight[index].len();
            index += 1;
        }
        if at > 0 {
            debug_assert!(index < in_flight.len(), "the boundary lies past the chunks in flight");
            let chunk = in_flight[index].clone();
            in_flight[index] = chunk.slice(..at);
            in_flight.insert(index + 1, chunk.slice(at..));
            index += 1;
        }
        let count = self.urgent.len();
        for (i, frame) in self.urgent.drain(..).enumerate() {
            self.frames.insert(self.urgent_in_frames + i, frame.len());
            in_flight.insert(index + i, frame);
        }
        self.urgent_in_frames += count;
        self.urgent_queued = 0;
    }

    /// Bytes not yet accepted by the link.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Bytes waiting here for the driver to take them.
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    /// Appends one whole frame. The caller has checked that it fits.
    pub(crate) fn push(&mut self, frame: Bytes) {
        let len = frame.len();
        debug_assert!(len > 0, "empty frames are refused before they reach the buffer");
        if len <= COPY_MAX {
            if self.tail.capacity() - self.tail.len() < len {
                self.seal_tail();
                // `reserve` reuses the old allocation when every chunk cut from it is gone.
                self.tail.reserve(self.segment.max(len));
            }
            self.tail.extend_from_slice(&frame);
        } else {
            // Keep the order: frames copied before this one go out before it.
            self.seal_tail();
            self.chunks.push_back(frame);
        }
        self.frames.push_back(len);
        self.held += len;
        self.queued += len;
    }

    /// Moves the copied frames of the tail into a chunk of their own.
    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            self.chunks.push_back(self.tail.split().freeze());
        }
    }

    /// Moves every queued chunk to the back of `out`, for the driver to write outside the lock.
    pub(crate) fn take_chunks(&mut self, out: &mut VecDeque<Bytes>) {
        self.seal_tail();
        out.extend(self.chunks.drain(..));
        self.queued = 0;
    }

    /// Records that the link accepted `n` more bytes, and returns how many frames that completed.
    pub(crate) fn consume(&mut self, mut n: usize) -> u64 {
        debug_assert!(
            n <= self.held - self.queued - self.urgent_queued,
            "only bytes in flight can be written"
        );
        self.held -= n;
        let mut completed = 0;
        while n > 0 {
            let head = self.frames[0] - self.head_written;
            if n >= head {
                n -= head;
                self.frames.pop_front();
                self.head_written = 0;
                self.urgent_in_frames = self.urgent_in_frames.saturating_sub(1);
                completed += 1;
            } else {
                self.head_written += n;
                n = 0;
            }
        }
        debug_assert_eq!(
            self.frames.iter().sum::<usize>() - self.head_written + self.urgent_queued,
            self.held,
            "frame lengths and held bytes disagree"
        );
        completed
    }

    /// Empties the buffer and returns every frame not fully written, oldest first.
    ///
    /// `in_flight` are the chunks the driver took and did not finish, the first of them with
    /// `offset` bytes already written.
    pub(crate) fn drain_unsent(
        &mut self,
        in_flight: &mut VecDeque<Bytes>,
        offset: usize,
    ) -> Vec<UnsentFrame> {
        self.take_chunks(in_flight);
        let mut unsent = Vec::with_capacity(self.frames.len());
        // The first frame still held starts `head_written` bytes before the write offset.
        let mut pos = offset - self.head_written;
        let mut head_written = self.head_written;
        let mut chunks = in_flight.drain(..);
        let mut chunk = chunks.next();
        for len in self.frames.drain(..) {
            // Skip chunks that are used up: frames never span two chunks.
            while chunk.as_ref().is_some_and(|c| pos >= c.len()) {
                chunk = chunks.next();
                pos = 0;
            }
            let Some(current) = chunk.as_ref() else {
                debug_assert!(false, "a frame length without its bytes");
                break;
            };
            unsent
                .push(UnsentFrame { frame: current.slice(pos..pos + len), written: head_written });
            head_written = 0;
            pos += len;
        }
        drop(chunks);
        // Urgent frames not spliced yet never reached the wire.
        unsent.extend(self.urgent.drain(..).map(|frame| UnsentFrame { frame, written: 0 }));
        self.head_written = 0;
        self.held = 0;
        self.queued = 0;
        self.urgent_queued = 0;
        self.urgent_in_frames = 0;
        unsent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(byte: u8, len: usize) -> Bytes {
        Bytes::from(vec![byte; len])
    }

    #[test]
    fn small_frames_coalesce_and_large_ones_keep_order() {
        let mut buf = OutBuffer::new(1 << 20);
        buf.push(frame(1, 10));
        buf.push(frame(2, 20));
        buf.push(frame(3, COPY_MAX + 1));
        buf.push(frame(4, 5));
        assert_eq!(buf.held(), 35 + COPY_MAX + 1);
        let mut out = VecDeque::new();
        buf.take_chunks(&mut out);
        let lens: Vec<usize> = out.iter().map(Bytes::len).collect();
        assert_eq!(lens, [30, COPY_MAX + 1, 5]);
        assert_eq!(buf.queued(), 0);
        assert_eq!(buf.held(), 35 + COPY_MAX + 1);
    }

    #[test]
    fn consume_counts_completed_frames_across_partial_writes() {
        let mut buf = OutBuffer::new(1024);
        for len in [3, 4, 5] {
            buf.push(frame(len as u8, len));
        }
        let mut out = VecDeque::new();
        buf.take_chunks(&mut out);
        assert_eq!(buf.consume(2), 0);
        assert_eq!(buf.consume(2), 1);
        assert_eq!(buf.consume(7), 1);
        assert_eq!(buf.held(), 1);
        assert_eq!(buf.consume(1), 1);
        assert_eq!(buf.held(), 0);
    }

    #[test]
    fn drain_unsent_returns_whole_frames_with_written_prefix() {
        let mut buf = OutBuffer::new(1 << 20);
        buf.push(frame(1, 4));
        buf.push(frame(2, 6));
        buf.push(frame(3, COPY_MAX + 10));
        let mut in_flight = VecDeque::new();
        buf.take_chunks(&mut in_flight);
        buf.push(frame(4, 3));
        // The link accepted the first frame and two bytes of the second.
        assert_eq!(buf.consume(6), 1);
        let unsent = buf.drain_unsent(&mut in_flight, 6);
        let got: Vec<(u8, usize, usize)> =
            unsent.iter().map(|u| (u.frame()[0], u.frame().len(), u.written())).collect();
        assert_eq!(got, [(2, 6, 2), (3, COPY_MAX + 10, 0), (4, 3, 0)]);
        assert!(unsent.iter().all(|u| u.frame().iter().all(|b| *b == u.frame()[0])));
        assert_eq!(buf.held(), 0);
    }

    /// Writes everything in flight to a vector, as a link that takes it all would.
    fn write_all(buf: &mut OutBuffer, in_flight: &mut VecDeque<Bytes>, offset: usize) -> Vec<u8> {
        let mut wire = Vec::new();
        for (i, chunk) in in_flight.drain(..).enumerate() {
            wire.extend_from_slice(&chunk[if i == 0 { offset } else { 0 }..]);
        }
        buf.consume(wire.len());
        wire
    }

    #[test]
    fn urgent_frames_go_in_at_the_next_frame_boundary() {
        let mut buf = OutBuffer::new(1 << 20);
        for byte in 1..=3 {
            buf.push(frame(byte, 4));
        }
        let mut in_flight = VecDeque::new();
        buf.take_chunks(&mut in_flight);
        // Five bytes are out: frame 1 and one byte of frame 2.
        assert_eq!(buf.consume(5), 1);
        buf.push_urgent(frame(9, 2));
        assert!(!buf.at_boundary(), "frame 2 has started");
        assert_eq!(buf.head_remaining(), 3);
        // The driver writes the rest of frame 2, then splices.
        let mut offset = 5;
        assert_eq!(buf.consume(3), 1);
        offset += 3;
        assert!(buf.at_boundary());
        buf.splice_urgent(&mut in_flight, offset);
        buf.push_urgent(frame(8, 1));
        assert!(buf.at_boundary(), "behind a spliced urgent frame, more may follow");
        buf.splice_urgent(&mut in_flight, offset);
        assert_eq!(write_all(&mut buf, &mut in_flight, offset), [9, 9, 8, 3, 3, 3, 3]);
        assert_eq!(buf.held(), 0);
    }

    #[test]
    fn unsent_frames_keep_the_order_of_the_wire() {
        let mut buf = OutBuffer::new(1 << 20);
        buf.push(frame(1, 3));
        buf.push(frame(2, 3));
        let mut in_flight = VecDeque::new();
        buf.take_chunks(&mut in_flight);
        buf.push_urgent(frame(9, 2));
        buf.splice_urgent(&mut in_flight, 0);
        buf.push_urgent(frame(8, 2));
        // One byte of the urgent frame went out.
        assert_eq!(buf.consume(1), 0);
        let unsent = buf.drain_unsent(&mut in_flight, 1);
        let got: Vec<(u8, usize)> = unsent.iter().map(|u| (u.frame()[0], u.written())).collect();
        assert_eq!(got, [(9, 1), (1, 0), (2, 0), (8, 0)]);
    }

    #[test]
    fn tail_segments_never_split_a_frame() {
        let mut buf = OutBuffer::new(100);
        for i in 0..50u8 {
            buf.push(frame(i, 7));
        }
        let mut out = VecDeque::new();
        buf.take_chunks(&mut out);
        assert!(out.iter().all(|c| c.len() % 7 == 0));
        assert_eq!(out.iter().map(Bytes::len).sum::<usize>(), 350);
    }
}
