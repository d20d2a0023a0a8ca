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
//! With keeping on (reconnection, on a link that counts the bytes its peer acknowledged), the
//! frames the link accepted stay after they are written: their lengths in a list of their own
//! and their bytes in the chunks the driver hands back, until the peer's TCP acknowledges them.
//! They still count against the capacity, so a lost link's unacknowledged frames can be handed
//! back or sent again whole while the bound holds.
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
use crate::state::stage::{STAGE_FRAME_MAX, Stage};

mod lens;

use lens::FrameLens;

/// Frames up to this many bytes are copied into the tail segment; larger ones are queued
/// without a copy.
pub(crate) const COPY_MAX: usize = 2048;

// A staged frame is one the buffer would have copied in.
const _: () = assert!(STAGE_FRAME_MAX == COPY_MAX);

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
/// # fn show(report: tidegate::CloseReport) {
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
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-unsentframe-frame").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// conn.try_send(Bytes::from_static(b"stuck")).unwrap();
    /// let report = tidegate::block_on(conn.close(Duration::ZERO));
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
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-unsentframe-written").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.set_write_capacity(3);
    /// conn.try_send(Bytes::from_static(b"hello")).unwrap();
    /// assert!(peer.wait_unread(3, Duration::from_secs(5)));
    /// let report = tidegate::block_on(conn.close(Duration::ZERO));
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
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-unsentframe-into-frame").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// conn.try_send(Bytes::from_static(b"retry me")).unwrap();
    /// let report = tidegate::block_on(conn.close(Duration::ZERO));
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
    frames: FrameLens,
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
    /// Whether frames the link accepted whole are kept until acknowledged.
    keeping: bool,
    /// The wire length of every frame written whole and not yet acknowledged, oldest first.
    ///
    /// Invariant: they sum to `kept`; empty unless `keeping`.
    kept_lens: FrameLens,
    /// Bytes of the frames in `kept_lens`. They count against the capacity, not in `held`.
    kept: usize,
    /// Chunks the link accepted whole, oldest first. With the written part of the chunk in
    /// flight after them, their last `kept + head_written` bytes are the kept frames and the
    /// written part of the frame being written; what comes before is trimmed as it is
    /// released.
    kept_chunks: VecDeque<Bytes>,
    /// Bytes in `kept_chunks`.
    kept_chunks_len: usize,
}

impl OutBuffer {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            chunks: VecDeque::new(),
            tail: BytesMut::new(),
            frames: FrameLens::new(),
            head_written: 0,
            held: 0,
            queued: 0,
            segment: (capacity / 4).clamp(1, SEGMENT),
            urgent: VecDeque::new(),
            urgent_lens: VecDeque::new(),
            urgent_queued: 0,
            urgent_in_frames: 0,
            header_len: 0,
            keeping: false,
            kept_lens: FrameLens::new(),
            kept: 0,
            kept_chunks: VecDeque::new(),
            kept_chunks_len: 0,
        }
    }

    /// Keeps the frames the link accepts whole until they are acknowledged, or stops. Set when
    /// a link comes up, with nothing kept.
    pub(crate) fn set_keeping(&mut self, on: bool) {
        debug_assert!(self.kept_lens.is_empty(), "a new link starts with nothing kept");
        self.keeping = on;
    }

    /// Whether written frames are kept until acknowledged.
    pub(crate) fn keeping(&self) -> bool {
        self.keeping
    }

    /// Bytes of the frames written whole and kept until acknowledged.
    pub(crate) fn kept(&self) -> usize {
        self.kept
    }

    /// Takes the chunks the link accepted whole since the last call, while keeping; `offset`
    /// is how much of the chunk in flight is written.
    pub(crate) fn keep_chunks(&mut self, done: impl Iterator<Item = Bytes>, offset: usize) {
        for chunk in done {
            self.kept_chunks_len += chunk.len();
            self.kept_chunks.push_back(chunk);
        }
        self.trim_kept(offset);
    }

    /// Releases the kept frames that lie whole within the first `acked` kept bytes, oldest
    /// first, and returns how many bytes and frames that released. `offset` is how much of
    /// the chunk in flight is written.
    pub(crate) fn release_kept(&mut self, acked: usize, offset: usize) -> (usize, usize) {
        let (frames, bytes) = self.kept_lens.covered(0, acked);
        self.kept_lens.move_front(frames, None);
        self.kept -= bytes;
        self.trim_kept(offset);
        (bytes, frames)
    }

    /// Drops the kept chunks' bytes that come before the first kept frame.
    fn trim_kept(&mut self, offset: usize) {
        let needed = self.kept + self.head_written;
        let mut extra = (self.kept_chunks_len + offset).saturating_sub(needed);
        while let Some(front) = self.kept_chunks.front_mut()
            && extra > 0
        {
            let cut = extra.min(front.len());
            if cut == front.len() {
                self.kept_chunks.pop_front();
            } else {
                *front = front.slice(cut..);
            }
            self.kept_chunks_len -= cut;
            extra -= cut;
        }
        debug_assert!(
            self.kept_chunks_len + offset >= needed || !self.keeping,
            "the kept frames' bytes are at hand"
        );
    }

    /// Takes the kept frames out, oldest first, without their headers, and forgets them: a
    /// lost link's frames written whole and not acknowledged. `in_flight` are the chunks the
    /// driver took and did not finish, the first of them with `offset` bytes written.
    pub(crate) fn take_kept(&mut self, in_flight: &VecDeque<Bytes>, offset: usize) -> Vec<Bytes> {
        let mut chunks: Vec<Bytes> = self.kept_chunks.drain(..).collect();
        if let Some(first) = in_flight.front() {
            chunks.push(first.slice(..offset));
        }
        let present = self.kept_chunks_len + in_flight.front().map_or(0, |_| offset);
        let mut cursor = Cursor { chunks, index: 0, pos: 0 };
        cursor.skip(present - (self.kept + self.head_written));
        let header = self.header_len;
        let frames = self
            .kept_lens
            .drain()
            .map(|len| {
                cursor.skip(header);
                cursor.take(len - header)
            })
            .collect();
        self.kept = 0;
        self.kept_chunks_len = 0;
        frames
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
        let spliced = self.frames.sum_first(self.urgent_in_frames);
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

    /// Bytes of the oldest frame the link has already accepted.
    pub(crate) fn head_written(&self) -> usize {
        self.head_written
    }

    /// The width of every frame's header (0 without framing).
    pub(crate) fn header_len(&self) -> usize {
        self.header_len
    }

    /// Bytes waiting here for the driver to take them.
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    /// Appends one whole frame. The caller has checked that it fits.
    #[inline]
    pub(crate) fn push(&mut self, frame: Bytes) {
        let len = frame.len();
        debug_assert!(len > 0, "empty frames are refused before they reach the buffer");
        debug_assert_eq!(self.header_len, 0, "framed connections push with a header");
        if len <= COPY_MAX {
            self.push_copy(&frame);
            return;
        }
        // Keep the order: frames copied before this one go out before it.
        self.seal_tail();
        self.chunks.push_back(frame);
        self.frames.push_back(len);
        self.held += len;
        self.queued += len;
    }

    /// Copies one whole small frame (at most [`COPY_MAX`] bytes) into the tail. The caller has
    /// checked that it fits.
    #[inline(always)]
    pub(crate) fn push_copy(&mut self, frame: &[u8]) {
        let len = frame.len();
        debug_assert!(len > 0, "empty frames are refused before they reach the buffer");
        debug_assert!(len <= COPY_MAX, "large frames are queued without a copy");
        debug_assert_eq!(self.header_len, 0, "framed connections push with a header");
        self.tail_room(len);
        self.tail.extend_from_slice(frame);
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

    /// Opens `stage` on the tail's spare capacity for up to `room` bytes (see
    /// [`Stage::open`]): the last thing under the lock. A tail with little spare capacity is
    /// left as it is (a sender that does not fit takes the lock, and its push starts the next
    /// segment), so an idle connection allocates nothing here. With framing it stays closed:
    /// a staged frame has no header.
    #[inline]
    pub(crate) fn open_stage(&mut self, stage: &Stage, room: usize, notify: bool) {
        if self.header_len == 0 {
            stage.open(&mut self.tail, room, notify);
        }
    }

    /// Takes in the frames senders staged since [`OutBuffer::open_stage`], as if each had been
    /// pushed with [`OutBuffer::push_copy`]: the first thing under the lock. Returns how many
    /// frames and bytes, and the first frame's length.
    #[inline]
    pub(crate) fn unstage(&mut self, stage: &Stage) -> (u64, usize, usize) {
        let frames = &mut self.frames;
        let mut first = 0;
        let (count, len) = stage.drain(&mut self.tail, |len, n| {
            if first == 0 {
                first = len;
            }
            frames.push_run_back(len, n);
        });
        self.held += len;
        self.queued += len;
        (count, len, first)
    }

    /// Makes room for `len` more bytes in the tail, sealing it first if it is full.
    #[inline(always)]
    fn tail_room(&mut self, len: usize) {
        if self.tail.capacity() - self.tail.len() < len {
            self.next_segment(len);
        }
    }

    /// Seals the tail and gives it room for `len` more bytes: a new segment, or the old one's
    /// allocation again.
    #[cold]
    fn next_segment(&mut self, len: usize) {
        self.seal_tail();
        // `reserve` reuses the old allocation when every chunk cut from it is gone.
        self.tail.reserve(self.segment.max(len));
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
    pub(crate) fn consume(&mut self, n: usize) -> u64 {
        debug_assert!(
            n <= self.held - self.queued - self.urgent_queued,
            "only bytes in flight can be written"
        );
        self.held -= n;
        let completed =
            if self.keeping { self.complete::<true>(n) } else { self.complete::<false>(n) };
        debug_assert_eq!(
            self.frames.sum() - self.head_written + self.urgent_queued,
            self.held,
            "frame lengths and held bytes disagree"
        );
        completed
    }

    /// Moves the head of the frame list past `n` more bytes written, and returns how many
    /// frames that completed; with `KEEP`, keeps their lengths. Two instances, so that a
    /// buffer that does not keep pays nothing for it per frame.
    ///
    /// The frames a write completed are counted with one comparison each over the list's
    /// slices, then leave it in one step: the driver holds the connection's lock here, and a
    /// write of coalesced small frames completes thousands of them.
    #[inline]
    fn complete<const KEEP: bool>(&mut self, n: usize) -> u64 {
        let Some(first) = self.frames.front() else {
            debug_assert_eq!(n, 0, "bytes written with no frame to account them to");
            return 0;
        };
        let head = first - self.head_written;
        if n < head {
            self.head_written += n;
            return 0;
        }
        // The head completes; then every whole frame the rest still covers.
        let (whole, bytes) = self.frames.covered(1, n - head);
        let count = whole + 1;
        let left = n - head - bytes;
        if KEEP {
            self.frames.move_front(count, Some(&mut self.kept_lens));
            // The completed frames' whole lengths: the head's written part counts too.
            self.kept += n + self.head_written - left;
        } else {
            self.frames.move_front(count, None);
        }
        // What is left lies within the next frame, which it leaves unfinished.
        debug_assert!(self.frames.front().map_or(left == 0, |len| left < len));
        self.head_written = left;
        self.urgent_in_frames = self.urgent_in_frames.saturating_sub(count);
        count as u64
    }

    /// The wire length of the frame being written (or next to be), if any.
    pub(crate) fn head_len(&self) -> Option<usize> {
        self.frames.front()
    }

    /// Frames in the buffer: not fully written, urgent ones waiting included.
    pub(crate) fn frame_count(&self) -> usize {
        self.frames.len() + self.urgent_lens.len()
    }

    /// After a lost link: puts the chunks the driver took and did not finish (`in_flight`, the
    /// first with `offset` bytes written) back at the front of the queue, as they are, so the
    /// next link writes them first and in order without a pass over their frames. Urgent
    /// frames spliced among them go as data now; those not spliced stay in their lane.
    ///
    /// The frame the lost link was writing, if it wrote part of it, is sent again whole when
    /// `restart` is `Some` (holding its header, encoded again, with framing), and taken out
    /// and returned otherwise.
    pub(crate) fn rewind(
        &mut self,
        in_flight: &mut VecDeque<Bytes>,
        offset: usize,
        restart: Option<Option<Header>>,
    ) -> Rewound {
        self.urgent_in_frames = 0;
        let written = std::mem::take(&mut self.head_written);
        let mut cursor = Cursor { chunks: in_flight.drain(..).collect(), index: 0, pos: offset };
        let mut front = Vec::new();
        let head = match self.frames.front() {
            Some(len) if written > 0 => {
                let header = self.header_len;
                cursor.seek_head_payload(written, header, offset);
                let payload = cursor.take(len - header);
                match restart {
                    Some(header) => {
                        if let Some(header) = header {
                            front.push(Bytes::copy_from_slice(header.as_slice()));
                        }
                        front.push(payload);
                        self.held += written;
                        Rewound::Restarted(written)
                    }
                    None => {
                        self.frames.pop_front();
                        self.held -= len - written;
                        Rewound::Cut(UnsentFrame { frame: payload, written })
                    }
                }
            }
            _ => Rewound::Untouched,
        };
        front.extend(cursor.rest());
        let bytes: usize = front.iter().map(Bytes::len).sum();
        self.queued += bytes;
        for chunk in front.into_iter().rev() {
            self.chunks.push_front(chunk);
        }
        debug_assert_eq!(
            self.frames.sum() + self.urgent_queued,
            self.held,
            "frame lengths and held bytes agree after a rewind"
        );
        debug_assert_eq!(self.queued + self.urgent_queued, self.held, "nothing is in flight");
        head
    }

    /// Puts whole frames at the very front of the queue, ahead of everything: each a header
    /// (empty without framing) and a payload, oldest first. The caller has counted them in.
    pub(crate) fn push_front(&mut self, frames: Vec<(Bytes, Bytes)>) {
        debug_assert_eq!(self.head_written, 0, "nothing is half written at the front");
        for (header, payload) in frames.into_iter().rev() {
            let len = header.len() + payload.len();
            self.chunks.push_front(payload);
            if !header.is_empty() {
                self.chunks.push_front(header);
            }
            self.frames.push_front(len);
            self.held += len;
            self.queued += len;
        }
    }

    /// Empties the buffer and returns every frame not fully written, oldest first, without
    /// its header. Kept frames are dropped: [`take_kept`](Self::take_kept) them first to have
    /// them.
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
        let lens = self.frames.drain().chain(self.urgent_lens.drain(..));
        for (i, len) in lens.enumerate() {
            let written = if i == 0 { self.head_written } else { 0 };
            cursor.seek_head_payload(written, header, offset);
            let frame = cursor.take(len - header);
            unsent.push(UnsentFrame { frame, written });
        }
        self.head_written = 0;
        self.held = 0;
        self.queued = 0;
        self.urgent_queued = 0;
        self.urgent_in_frames = 0;
        // Frames written whole are not unsent: what is still kept of them is let go.
        self.kept_lens.clear();
        self.kept = 0;
        self.kept_chunks.clear();
        self.kept_chunks_len = 0;
        unsent
    }
}

/// What [`OutBuffer::rewind`] did with the frame the lost link was writing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Rewound {
    /// None was written in part.
    Untouched,
    /// It goes again whole; this many of its bytes had been written.
    Restarted(usize),
    /// It was taken out, and is handed back.
    Cut(UnsentFrame),
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

    /// From the first unwritten byte (`offset` in the first chunk) of a frame of which
    /// `written` bytes went out, with a header of `header` bytes, moves to its payload: back
    /// to where it began, in the same chunk (a payload never spans chunks), or past what is
    /// left of its header.
    fn seek_head_payload(&mut self, written: usize, header: usize, offset: usize) {
        if written > header {
            debug_assert!(offset >= written - header, "the written payload left the chunk");
            self.pos = offset.saturating_sub(written - header);
        } else {
            self.skip(header - written);
        }
    }

    /// The chunks' bytes from the position on: what is left of the current chunk, then the
    /// chunks after it.
    fn rest(self) -> impl Iterator<Item = Bytes> {
        let (index, pos) = (self.index, self.pos);
        self.chunks.into_iter().skip(index).enumerate().filter_map(move |(i, chunk)| {
            let chunk = if i == 0 { chunk.slice(pos.min(chunk.len())..) } else { chunk };
            (!chunk.is_empty()).then_some(chunk)
        })
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
pub(crate) mod tests;
