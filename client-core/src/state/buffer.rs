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
//! With framing ([`Config::framing`](crate::Config::framing)), every frame is a fixed-width
//! header, encoded before the frame enters, then the caller's payload, and the pair is one frame
//! here: one length in the list, written contiguously. A small payload is copied into the tail
//! segment right behind its header (one copy); a large one is queued without a copy, its header
//! copied to the end of the tail segment just before it. Frames handed back lose their header.
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
//! [`crate::state::machine`].

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::state::codec::{EncodeError, Encoder, MAX_HEADER_LEN};

/// Frames up to this many bytes are copied into the tail segment; larger ones are queued
/// without a copy.
pub(crate) const COPY_MAX: usize = 2048;

/// The preferred allocation size of a tail segment.
const SEGMENT: usize = 64 * 1024;

/// The encoded header of one frame, kept inline next to the frame while it waits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    bytes: [u8; MAX_HEADER_LEN],
    /// Invariant: `len <= MAX_HEADER_LEN`.
    len: u8,
}

impl Header {
    /// Encodes the header of a payload of `payload_len` bytes.
    pub(crate) fn encode(encoder: &dyn Encoder, payload_len: usize) -> Result<Self, EncodeError> {
        let len = encoder.header_len();
        // Checked when the encoder was configured.
        debug_assert!(len <= MAX_HEADER_LEN);
        let mut header = Self { bytes: [0; MAX_HEADER_LEN], len: len as u8 };
        encoder.encode_header(payload_len, &mut header.bytes[..len])?;
        Ok(header)
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// A frame's header as the admission path sees it, so that the unframed path (`()`) is
/// compiled without any header handling, and a waiting frame keeps an `Option<Header>`.
pub(crate) trait MaybeHeader: Copy {
    /// Its length in bytes.
    fn len(&self) -> usize;
    /// The header, if there is one.
    fn get(&self) -> Option<&Header>;
}

impl MaybeHeader for () {
    #[inline(always)]
    fn len(&self) -> usize {
        0
    }

    #[inline(always)]
    fn get(&self) -> Option<&Header> {
        None
    }
}

impl MaybeHeader for Header {
    #[inline]
    fn len(&self) -> usize {
        usize::from(self.len)
    }

    #[inline]
    fn get(&self) -> Option<&Header> {
        Some(self)
    }
}

impl MaybeHeader for Option<Header> {
    #[inline]
    fn len(&self) -> usize {
        self.as_ref().map_or(0, MaybeHeader::len)
    }

    #[inline]
    fn get(&self) -> Option<&Header> {
        self.as_ref()
    }
}

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
    /// With framing, this is the payload as the caller gave it, without the header.
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
    /// This counts bytes on the wire: with framing, the header's bytes come first, so the
    /// payload bytes that reached the link are `written` minus the header's width (when
    /// positive), and `written` may be nonzero while none of the payload went out.
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
/// admission rules live in [`crate::state::machine`]) but it does the exact byte accounting they rely on.
#[derive(Debug)]
pub(crate) struct OutBuffer {
    /// Frozen chunks, oldest first. Each holds whole frames, except that a chunk may end with
    /// the header of a frame whose payload is the next chunk. A payload never spans chunks.
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
    /// Chunks of urgent frames not yet spliced, oldest first: one chunk per frame, or, for a
    /// framed large payload, its header's chunk then the payload.
    urgent: VecDeque<Bytes>,
    /// The length of every urgent frame not yet spliced. Not in `frames` yet.
    ///
    /// Invariant: they sum to `urgent_queued`.
    urgent_lens: VecDeque<usize>,
    /// Bytes in `urgent`. Counted in `held`, not in `queued`.
    urgent_queued: usize,
    /// How many frames at the front of `frames` are spliced urgent frames.
    ///
    /// Invariant: `urgent_in_frames <= frames.len()`.
    urgent_in_frames: usize,
    /// Bytes of header at the start of every frame (0 without framing), stripped from the
    /// frames handed back.
    header_len: usize,
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
            urgent_lens: VecDeque::new(),
            urgent_queued: 0,
            urgent_in_frames: 0,
            header_len: 0,
        }
    }

    /// Every frame will start with a header of `len` bytes. Set before the first frame.
    pub(crate) fn set_header_len(&mut self, len: usize) {
        debug_assert!(self.frames.is_empty() && self.urgent_lens.is_empty());
        self.header_len = len;
    }

    /// Appends an urgent frame to the urgent lane. The caller has checked that it fits.
    pub(crate) fn push_urgent(&mut self, frame: Bytes) {
        debug_assert!(!frame.is_empty(), "empty frames are refused before they reach the buffer");
        debug_assert_eq!(self.header_len, 0, "framed connections push with a header");
        let len = frame.len();
        self.held += len;
        self.urgent_queued += len;
        self.urgent.push_back(frame);
        self.urgent_lens.push_back(len);
    }

    /// Appends an urgent frame with its header to the urgent lane. The caller has checked that
    /// it fits.
    pub(crate) fn push_urgent_framed(&mut self, header: &Header, payload: Bytes) {
        debug_assert_eq!(header.len(), self.header_len, "every header has the same width");
        let len = header.len() + payload.len();
        debug_assert!(len > 0, "empty frames are refused before they reach the buffer");
        if payload.len() <= COPY_MAX {
            let mut chunk = BytesMut::with_capacity(len);
            chunk.extend_from_slice(header.as_slice());
            chunk.extend_from_slice(&payload);
            self.urgent.push_back(chunk.freeze());
        } else {
            self.urgent.push_back(Bytes::copy_from_slice(header.as_slice()));
            self.urgent.push_back(payload);
        }
        self.held += len;
        self.urgent_queued += len;
        self.urgent_lens.push_back(len);
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
        for (i, chunk) in self.urgent.drain(..).enumerate() {
            in_flight.insert(index + i, chunk);
        }
        let count = self.urgent_lens.len();
        for (i, len) in self.urgent_lens.drain(..).enumerate() {
            self.frames.insert(self.urgent_in_frames + i, len);
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
        debug_assert_eq!(self.header_len, 0, "framed connections push with a header");
        if len <= COPY_MAX {
            self.tail_room(len);
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

    /// Appends one frame: `header`, then `payload`, contiguous on the wire. The caller has
    /// checked that both fit.
    pub(crate) fn push_framed(&mut self, header: &Header, payload: Bytes) {
        debug_assert_eq!(header.len(), self.header_len, "every header has the same width");
        let len = header.len() + payload.len();
        debug_assert!(len > 0, "empty frames are refused before they reach the buffer");
        if payload.len() <= COPY_MAX {
            self.tail_room(len);
            self.tail.extend_from_slice(header.as_slice());
            self.tail.extend_from_slice(&payload);
        } else {
            // The header ends the tail's chunk, the payload follows without a copy. Nothing
            // can come between them: the chunk is sealed here, under the lock, and urgent
            // frames are spliced in at frame boundaries only.
            self.tail_room(header.len());
            self.tail.extend_from_slice(header.as_slice());
            self.seal_tail();
            self.chunks.push_back(payload);
        }
        self.frames.push_back(len);
        self.held += len;
        self.queued += len;
    }

    /// Appends the frames of a batch: `bytes` holds them back to back (each with its header,
    /// with framing), `lens` their lengths on the wire. The caller has checked that they fit.
    ///
    /// A small batch is copied into the tail like a small frame; a larger one is queued as
    /// one chunk, without a copy. Either way its frames are contiguous and whole, in order.
    pub(crate) fn push_batch(&mut self, bytes: Bytes, lens: &[usize]) {
        let len = bytes.len();
        debug_assert_eq!(len, lens.iter().sum::<usize>(), "the lengths cover the bytes");
        debug_assert!(
            lens.iter().all(|&l| l > 0),
            "empty frames are refused before they reach the buffer"
        );
        debug_assert!(lens.iter().all(|&l| l >= self.header_len), "every frame has its header");
        if len <= COPY_MAX {
            self.tail_room(len);
            self.tail.extend_from_slice(&bytes);
        } else {
            self.seal_tail();
            self.chunks.push_back(bytes);
        }
        self.frames.extend(lens.iter().copied());
        self.held += len;
        self.queued += len;
    }

    /// Makes room for `len` more bytes in the tail, sealing it first if it is full.
    #[inline]
    fn tail_room(&mut self, len: usize) {
        if self.tail.capacity() - self.tail.len() < len {
            self.seal_tail();
            // `reserve` reuses the old allocation when every chunk cut from it is gone.
            self.tail.reserve(self.segment.max(len));
        }
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

    /// Empties the buffer and returns every frame not fully written, oldest first, without
    /// its header.
    ///
    /// `in_flight` are the chunks the driver took and did not finish, the first of them with
    /// `offset` bytes already written.
    pub(crate) fn drain_unsent(
        &mut self,
        in_flight: &mut VecDeque<Bytes>,
        offset: usize,
    ) -> Vec<UnsentFrame> {
        self.take_chunks(in_flight);
        // Urgent frames not spliced yet never reached the wire: they come last.
        in_flight.extend(self.urgent.drain(..));
        let count = self.frames.len() + self.urgent_lens.len();
        let mut unsent = Vec::with_capacity(count);
        let header = self.header_len;
        let mut cursor = Cursor { chunks: in_flight.drain(..).collect(), index: 0, pos: offset };
        let lens = self.frames.drain(..).chain(self.urgent_lens.drain(..));
        for (i, len) in lens.enumerate() {
            let written = if i == 0 { self.head_written } else { 0 };
            if written > header {
                // The head's payload started going out: its first bytes are just before
                // `offset`, in the same chunk, since a payload never spans chunks.
                debug_assert!(offset >= written - header, "the written payload left the chunk");
                cursor.pos = offset.saturating_sub(written - header);
            } else {
                cursor.skip(header - written);
            }
            let frame = cursor.take(len - header);
            unsent.push(UnsentFrame { frame, written });
        }
        self.head_written = 0;
        self.held = 0;
        self.queued = 0;
        self.urgent_queued = 0;
        self.urgent_in_frames = 0;
        unsent
    }
}

/// A read position in a list of chunks, for taking frames back out.
struct Cursor {
    chunks: Vec<Bytes>,
    index: usize,
    /// Offset in `chunks[index]`.
    pos: usize,
}

impl Cursor {
    /// Moves past `n` bytes.
    #[inline]
    fn skip(&mut self, mut n: usize) {
        while n > 0 {
            let Some(chunk) = self.chunks.get(self.index) else {
                debug_assert!(false, "a frame length without its bytes");
                return;
            };
            let left = chunk.len() - self.pos;
            if n < left {
                self.pos += n;
                return;
            }
            n -= left;
            self.index += 1;
            self.pos = 0;
        }
    }

    /// Takes the next `n` bytes: a slice of one chunk when they lie in one, which they always
    /// do for a payload; a copy otherwise.
    #[inline]
    fn take(&mut self, n: usize) -> Bytes {
        if let Some(chunk) = self.chunks.get(self.index)
            && self.pos + n <= chunk.len()
        {
            let frame = chunk.slice(self.pos..self.pos + n);
            self.pos += n;
            return frame;
        }
        self.take_slow(n)
    }

    /// [`Cursor::take`] when the bytes start in a later chunk, or span chunks.
    #[cold]
    fn take_slow(&mut self, n: usize) -> Bytes {
        while self.chunks.get(self.index).is_some_and(|c| self.pos >= c.len()) {
            self.index += 1;
            self.pos = 0;
        }
        let Some(chunk) = self.chunks.get(self.index) else {
            debug_assert!(n == 0, "a frame length without its bytes");
            return Bytes::new();
        };
        if self.pos + n <= chunk.len() {
            let frame = chunk.slice(self.pos..self.pos + n);
            self.pos += n;
            return frame;
        }
        debug_assert!(false, "a payload spans chunks");
        let mut copy = BytesMut::with_capacity(n);
        let mut left = n;
        while let Some(chunk) = self.chunks.get(self.index)
            && left > 0
        {
            let end = chunk.len().min(self.pos + left);
            copy.extend_from_slice(&chunk[self.pos..end]);
            left -= end - self.pos;
            self.pos = end;
            if self.pos == chunk.len() {
                self.index += 1;
                self.pos = 0;
            }
        }
        copy.freeze()
    }
}

#[cfg(test)]
pub(crate) mod tests {
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

    #[test]
    fn a_batch_keeps_its_frames_whole_and_in_order_between_others() {
        let mut buf = OutBuffer::new(1 << 20);
        buf.push(frame(1, 3));
        // Small: copied into the tail behind the frame before it.
        buf.push_batch(Bytes::from_static(&[2, 2, 3, 3, 3]), &[2, 3]);
        // Large: one chunk of its own, not copied.
        let big: Vec<u8> = [vec![4; COPY_MAX], vec![5; 10]].concat();
        let big = Bytes::from(big);
        buf.push_batch(big.clone(), &[COPY_MAX, 10]);
        buf.push(frame(6, 1));
        assert_eq!(buf.held(), 3 + 5 + COPY_MAX + 10 + 1);
        let mut in_flight = VecDeque::new();
        buf.take_chunks(&mut in_flight);
        let lens: Vec<usize> = in_flight.iter().map(Bytes::len).collect();
        assert_eq!(lens, [8, COPY_MAX + 10, 1]);
        assert_eq!(in_flight[1].as_ptr(), big.as_ptr(), "a large batch is queued without a copy");
        // Every frame of the batch counts as one when it completes.
        assert_eq!(buf.consume(3 + 2 + 3), 3);
        assert_eq!(buf.consume(COPY_MAX + 10 + 1), 3);
        assert_eq!(buf.held(), 0);
    }

    #[test]
    fn unsent_batch_frames_come_back_one_by_one() {
        let mut buf = OutBuffer::new(1 << 20);
        let big: Vec<u8> = [vec![1; 4], vec![2; COPY_MAX], vec![3; 6]].concat();
        buf.push_batch(Bytes::from(big), &[4, COPY_MAX, 6]);
        let mut in_flight = VecDeque::new();
        buf.take_chunks(&mut in_flight);
        buf.push_batch(Bytes::from_static(&[7, 8, 8]), &[1, 2]);
        // The first frame and 5 bytes of the second are out.
        assert_eq!(buf.consume(9), 1);
        let unsent = buf.drain_unsent(&mut in_flight, 9);
        let got: Vec<(u8, usize, usize)> =
            unsent.iter().map(|u| (u.frame()[0], u.frame().len(), u.written())).collect();
        assert_eq!(got, [(2, COPY_MAX, 5), (3, 6, 0), (7, 1, 0), (8, 2, 0)]);
        assert!(unsent.iter().all(|u| u.frame().iter().all(|b| *b == u.frame()[0])));
    }

    #[test]
    fn a_framed_batch_comes_back_without_its_headers() {
        let mut buf = framed_buffer();
        let wire: Vec<u8> = [&[0u8, 2, 1, 1][..], &[0, 0], &[0, 1, 2]].concat();
        buf.push_batch(Bytes::from(wire.clone()), &[4, 2, 3]);
        let mut in_flight = VecDeque::new();
        buf.take_chunks(&mut in_flight);
        assert_eq!(wire_of(&in_flight), wire);
        let unsent = buf.drain_unsent(&mut in_flight, 0);
        let got: Vec<&[u8]> = unsent.iter().map(|u| &u.frame()[..]).collect();
        assert_eq!(got, [&[1u8, 1][..], &[], &[2]]);
    }

    /// A 2-byte big-endian length header, as `LengthDelimited::new().width(2)` writes it.
    fn header(payload_len: usize) -> Header {
        let codec = crate::state::codec::LengthDelimited::new().width(2);
        Header::encode(&codec, payload_len).expect("fits in 2 bytes")
    }

    fn framed_buffer() -> OutBuffer {
        let mut buf = OutBuffer::new(1 << 20);
        buf.set_header_len(2);
        buf
    }

    fn wire_of(chunks: &VecDeque<Bytes>) -> Vec<u8> {
        chunks.iter().flat_map(|c| c.iter().copied()).collect()
    }

    #[test]
    fn a_small_payload_is_copied_behind_its_header_in_the_tail() {
        let mut buf = framed_buffer();
        buf.push_framed(&header(3), frame(1, 3));
        buf.push_framed(&header(0), Bytes::new());
        buf.push_framed(&header(COPY_MAX), frame(2, COPY_MAX));
        assert_eq!(buf.held(), 3 + 2 + 2 + 2 + COPY_MAX);
        let mut out = VecDeque::new();
        buf.take_chunks(&mut out);
        assert_eq!(out.len(), 1, "header and payload share the tail: {out:?}");
        let wire = wire_of(&out);
        assert_eq!(&wire[..7], [0, 3, 1, 1, 1, 0, 0]);
        assert_eq!(&wire[7..9], (COPY_MAX as u16).to_be_bytes());
        assert!(wire[9..].iter().all(|b| *b == 2) && wire.len() == 9 + COPY_MAX);
        assert_eq!(buf.consume(wire.len()), 3, "three frames complete");
    }

    #[test]
    fn a_large_payload_is_queued_without_a_copy_behind_its_header() {
        let mut buf = framed_buffer();
        buf.push_framed(&header(1), frame(1, 1));
        let large = frame(2, COPY_MAX + 1);
        buf.push_framed(&header(large.len()), large.clone());
        buf.push_framed(&header(2), frame(3, 2));
        let mut out = VecDeque::new();
        buf.take_chunks(&mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], Bytes::from(vec![0, 1, 1, 0x08, 0x01]), "the header ends the chunk");
        assert_eq!(out[1].as_ptr(), large.as_ptr(), "the payload was not copied");
        assert_eq!(out[2], Bytes::from_static(&[0, 2, 3, 3]));
        assert_eq!(buf.consume(5 + COPY_MAX + 1 + 4), 3);
        assert_eq!(buf.held(), 0);
    }

    #[test]
    fn unsent_framed_frames_come_back_without_their_headers() {
        // The link took part of the second frame's header, or all of it, or some payload.
        for (taken, written) in [(3, 0), (4, 1), (5, 2), (7, 4)] {
            let mut buf = framed_buffer();
            buf.push_framed(&header(1), frame(1, 1));
            let large = frame(2, COPY_MAX + 5);
            buf.push_framed(&header(large.len()), large.clone());
            buf.push_framed(&header(3), frame(3, 3));
            buf.push_urgent_framed(&header(2), frame(9, 2));
            let mut in_flight = VecDeque::new();
            buf.take_chunks(&mut in_flight);
            assert_eq!(buf.consume(taken), 1);
            let mut offset = 0;
            advance(&mut in_flight, &mut offset, taken);
            let unsent = buf.drain_unsent(&mut in_flight, offset);
            let got: Vec<(&Bytes, usize)> =
                unsent.iter().map(|u| (u.frame(), u.written())).collect();
            assert_eq!(
                got,
                [(&large, written), (&frame(3, 3), 0), (&frame(9, 2), 0)],
                "after {taken} bytes"
            );
            assert_eq!(buf.held(), 0);
        }
    }

    #[test]
    fn a_framed_buffer_written_out_reports_nothing_unsent() {
        let mut buf = framed_buffer();
        buf.push_framed(&header(3), frame(1, 3));
        let mut in_flight = VecDeque::new();
        buf.take_chunks(&mut in_flight);
        assert_eq!(buf.consume(5), 1);
        in_flight.clear();
        assert!(buf.drain_unsent(&mut in_flight, 0).is_empty());
        assert!(framed_buffer().drain_unsent(&mut VecDeque::new(), 0).is_empty());
    }

    #[test]
    fn framed_urgent_frames_go_in_whole_at_a_frame_boundary() {
        let mut buf = framed_buffer();
        let large = frame(2, COPY_MAX + 3);
        buf.push_framed(&header(large.len()), large);
        buf.push_framed(&header(1), frame(3, 1));
        let mut in_flight = VecDeque::new();
        buf.take_chunks(&mut in_flight);
        // One byte of the large frame's header is out: splicing must wait for its end.
        assert_eq!(buf.consume(1), 0);
        let mut offset = 1;
        let urgent = frame(9, COPY_MAX + 1);
        buf.push_urgent_framed(&header(urgent.len()), urgent);
        buf.push_urgent_framed(&header(1), frame(8, 1));
        assert!(!buf.at_boundary());
        assert_eq!(buf.head_remaining(), 2 + COPY_MAX + 3 - 1);
        let rest = buf.head_remaining();
        let mut wire = vec![in_flight[0][0]];
        let mut taken = 0;
        while taken < rest {
            let chunk = &in_flight[0][offset..];
            let n = chunk.len().min(rest - taken);
            wire.extend_from_slice(&chunk[..n]);
            taken += n;
            advance(&mut in_flight, &mut offset, n);
        }
        assert_eq!(buf.consume(rest), 1);
        assert!(buf.at_boundary());
        buf.splice_urgent(&mut in_flight, offset);
        wire.extend(write_all(&mut buf, &mut in_flight, offset));
        let frames = decode_all(&wire);
        let got: Vec<(u8, usize)> = frames.iter().map(|f| (f[0], f.len())).collect();
        assert_eq!(got, [(2, COPY_MAX + 3), (9, COPY_MAX + 1), (8, 1), (3, 1)]);
        assert_eq!(buf.held(), 0);
    }

    /// Drops `n` bytes from the front of the chunks in flight, as the driver does.
    pub(crate) fn advance(in_flight: &mut VecDeque<Bytes>, offset: &mut usize, mut n: usize) {
        while n > 0 {
            let left = in_flight[0].len() - *offset;
            if n < left {
                *offset += n;
                return;
            }
            n -= left;
            in_flight.pop_front();
            *offset = 0;
        }
    }

    /// Decodes a wire of whole frames with 2-byte headers.
    fn decode_all(wire: &[u8]) -> Vec<Bytes> {
        use crate::state::codec::Decoder;
        let mut decoder = crate::state::codec::LengthDelimited::new().width(2);
        let mut src = BytesMut::from(wire);
        let mut frames = Vec::new();
        while let Some(frame) = decoder.decode(&mut src).expect("valid frames") {
            frames.push(frame);
        }
        assert!(src.is_empty(), "the wire ends in the middle of a frame");
        frames
    }

    /// Random pushes (small, large, empty, urgent), random partial writes as the driver does
    /// them, and a drain at a random point: the wire always holds whole frames with correct
    /// headers, never interleaved, and the unsent payloads are exactly the rest, in order.
    #[test]
    fn framed_frames_stay_whole_under_random_writes_and_splices() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut below = move |n: usize| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((seed >> 33) % n as u64) as usize
        };
        for round in 0..40 {
            let mut buf = framed_buffer();
            let mut in_flight = VecDeque::new();
            let mut offset = 0;
            let mut wire = Vec::new();
            let (mut data, mut urgent) = (Vec::new(), Vec::new());
            for next_id in 0..200usize {
                let len = match below(4) {
                    0 => below(4),
                    1 => 1 + below(40),
                    2 => COPY_MAX - 2 + below(5),
                    _ => COPY_MAX + below(3000),
                };
                match below(6) {
                    0..=2 => {
                        // Data payloads are bytes 0..=127, urgent ones 128..=255.
                        let payload = frame((next_id % 128) as u8, len);
                        buf.push_framed(&header(len), payload.clone());
                        data.push(payload);
                    }
                    3 => {
                        let payload = frame(128 + (next_id % 128) as u8, len.max(1));
                        buf.push_urgent_framed(&header(payload.len()), payload.clone());
                        urgent.push(payload);
                    }
                    _ => {
                        // One driver round: refill, then a partial write.
                        let mut limit = usize::MAX;
                        if buf.urgent_queued() > 0 {
                            if buf.at_boundary() {
                                buf.splice_urgent(&mut in_flight, offset);
                            } else {
                                limit = buf.head_remaining();
                            }
                        }
                        buf.take_chunks(&mut in_flight);
                        let ready = in_flight.iter().map(Bytes::len).sum::<usize>() - offset;
                        let n = ready.min(limit).min(1 + below(5000));
                        if n > 0 {
                            let mut left = n;
                            let (mut i, mut start) = (0, offset);
                            while left > 0 {
                                let c: &Bytes = &in_flight[i];
                                let m = (c.len() - start).min(left);
                                wire.extend_from_slice(&c[start..start + m]);
                                left -= m;
                                i += 1;
                                start = 0;
                            }
                            advance(&mut in_flight, &mut offset, n);
                            buf.consume(n);
                        }
                    }
                }
            }
            let unsent = buf.drain_unsent(&mut in_flight, offset);
            // The wire: whole frames, then maybe the written prefix of the first unsent one.
            let partial = unsent.first().map_or(0, UnsentFrame::written);
            let (whole, tail) = wire.split_at(wire.len() - partial);
            let mut frames = decode_all(whole);
            if let Some(first) = unsent.first() {
                let mut expected = header(first.frame().len()).as_slice().to_vec();
                expected.extend_from_slice(first.frame());
                assert_eq!(tail, &expected[..partial], "round {round}: the partial frame");
            }
            assert!(unsent.iter().skip(1).all(|u| u.written() == 0));
            frames.extend(unsent.iter().map(|u| u.frame().clone()));
            let (got_urgent, got_data): (Vec<Bytes>, Vec<Bytes>) =
                frames.into_iter().partition(|f| f.first().is_some_and(|b| *b >= 128));
            assert_eq!(got_data, data, "round {round}: data frames, in order, each once");
            assert_eq!(got_urgent, urgent, "round {round}: urgent frames, in order, each once");
            assert_eq!(buf.held(), 0);
        }
    }
}
