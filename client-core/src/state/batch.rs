//! [`FrameBatch`]: many frames sent as one unit.
//!
//! A producer copies its frames into one local buffer, outside any lock, and records each
//! frame's length. The connection then takes the whole batch under one lock: its frames enter
//! the outgoing buffer together, contiguous and in order, or the batch waits in the same FIFO
//! line as single frames and is moved in whole when there is room for all of it. Frame
//! boundaries survive: the lengths travel with the bytes, so the wire, the statistics and a
//! close report see every frame of the batch as a frame of its own.

use bytes::{Bytes, BytesMut};

/// Frames gathered by a producer to be sent as one unit, with
/// [`Connection::send_batch`](crate::Connection::send_batch) or
/// [`Connection::try_send_batch`](crate::Connection::try_send_batch).
///
/// [`push`](FrameBatch::push) copies a frame into the batch's own buffer and records its
/// length. Sending a batch takes the connection's lock once for all its frames: they enter the
/// outgoing buffer together, back to back and in order, never interleaved with frames of other
/// senders, or not at all. Errors hand the whole batch back.
///
/// # Examples
///
/// ```
/// use tidegate::FrameBatch;
///
/// let mut batch = FrameBatch::new();
/// batch.push(b"first");
/// batch.push("second");
/// assert_eq!((batch.len(), batch.bytes()), (2, 11));
/// let frames: Vec<&[u8]> = batch.frames().collect();
/// assert_eq!(frames, [&b"first"[..], &b"second"[..]]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameBatch {
    /// The frames' bytes, back to back.
    ///
    /// Invariant: `buf.len()` is the sum of `lens`.
    buf: BytesMut,
    /// The length of every frame, in order.
    lens: Vec<usize>,
}

impl FrameBatch {
    /// Returns an empty batch.
    ///
    /// # Examples
    ///
    /// ```
    /// let batch = tidegate::FrameBatch::new();
    /// assert!(batch.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns an empty batch with room for `bytes` bytes of frames before it reallocates.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut batch = tidegate::FrameBatch::with_capacity(64 * 64);
    /// for _ in 0..64 {
    ///     batch.push([7u8; 64]);
    /// }
    /// assert_eq!(batch.bytes(), 4096);
    /// ```
    pub fn with_capacity(bytes: usize) -> Self {
        Self { buf: BytesMut::with_capacity(bytes), lens: Vec::new() }
    }

    /// Copies `frame` to the end of the batch as a frame of its own.
    ///
    /// An empty frame is kept as such; on a connection without framing the batch is then
    /// refused with [`SendError::Empty`](crate::SendError::Empty).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut batch = tidegate::FrameBatch::new();
    /// batch.push(vec![1u8, 2, 3]);
    /// assert_eq!(batch.len(), 1);
    /// ```
    pub fn push(&mut self, frame: impl AsRef<[u8]>) {
        let frame = frame.as_ref();
        self.buf.extend_from_slice(frame);
        self.lens.push(frame.len());
    }

    /// Returns the number of frames in the batch.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut batch = tidegate::FrameBatch::new();
    /// batch.push("a");
    /// batch.push("b");
    /// assert_eq!(batch.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// Returns the total length of the frames, in bytes (without any framing headers).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut batch = tidegate::FrameBatch::new();
    /// batch.push("abc");
    /// batch.push("de");
    /// assert_eq!(batch.bytes(), 5);
    /// ```
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Returns whether the batch holds no frame.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut batch = tidegate::FrameBatch::new();
    /// assert!(batch.is_empty());
    /// batch.push("x");
    /// assert!(!batch.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// Removes every frame, keeping the allocation when it can.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut batch = tidegate::FrameBatch::new();
    /// batch.push("x");
    /// batch.clear();
    /// assert!(batch.is_empty() && batch.bytes() == 0);
    /// ```
    pub fn clear(&mut self) {
        self.buf.clear();
        self.lens.clear();
    }

    /// Returns the frames, in order.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut batch = tidegate::FrameBatch::new();
    /// batch.push("ab");
    /// batch.push("");
    /// batch.push("c");
    /// let frames: Vec<&[u8]> = batch.frames().collect();
    /// assert_eq!(frames, [&b"ab"[..], &b""[..], &b"c"[..]]);
    /// ```
    pub fn frames(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        let mut at = 0;
        self.lens.iter().map(move |&len| {
            let frame = &self.buf[at..at + len];
            at += len;
            frame
        })
    }

    /// Splits the batch into its frames, without copying them.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut batch = tidegate::FrameBatch::new();
    /// batch.push("one");
    /// batch.push("two");
    /// assert_eq!(batch.into_frames(), ["one", "two"]);
    /// ```
    pub fn into_frames(self) -> Vec<Bytes> {
        let mut bytes = self.buf.freeze();
        self.lens.iter().map(|&len| bytes.split_to(len)).collect()
    }

    /// The frames' bytes, frozen, and their lengths: what the connection takes.
    pub(crate) fn into_parts(self) -> (Bytes, Vec<usize>) {
        (self.buf.freeze(), self.lens)
    }

    /// The batch [`into_parts`](Self::into_parts) took apart. Copies the bytes only if another
    /// handle to them is still alive.
    pub(crate) fn from_parts(bytes: Bytes, lens: Vec<usize>) -> Self {
        debug_assert_eq!(bytes.len(), lens.iter().sum::<usize>());
        Self { buf: BytesMut::from(bytes), lens }
    }
}

/// Collects frames into a batch, each one a frame of its own, as [`FrameBatch::push`] does.
///
/// # Examples
///
/// ```
/// use tidegate::FrameBatch;
///
/// let batch: FrameBatch = ["one", "two", "three"].into_iter().collect();
/// assert_eq!((batch.len(), batch.bytes()), (3, 11));
/// ```
impl<B: AsRef<[u8]>> FromIterator<B> for FrameBatch {
    fn from_iter<I: IntoIterator<Item = B>>(frames: I) -> Self {
        let mut batch = Self::new();
        batch.extend(frames);
        batch
    }
}

/// Appends frames to a batch, each one a frame of its own, as [`FrameBatch::push`] does.
///
/// # Examples
///
/// ```
/// use tidegate::FrameBatch;
///
/// let mut batch = FrameBatch::new();
/// batch.extend((0..4u8).map(|i| [i; 8]));
/// assert_eq!((batch.len(), batch.bytes()), (4, 32));
/// ```
impl<B: AsRef<[u8]>> Extend<B> for FrameBatch {
    fn extend<I: IntoIterator<Item = B>>(&mut self, frames: I) {
        for frame in frames {
            self.push(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_without_losing_boundaries() {
        let mut batch = FrameBatch::with_capacity(16);
        batch.push("ab");
        batch.push("");
        batch.push("cde");
        let copy = batch.clone();
        let (bytes, lens) = batch.into_parts();
        assert_eq!((&bytes[..], &lens[..]), (&b"abcde"[..], &[2, 0, 3][..]));
        let back = FrameBatch::from_parts(bytes, lens);
        assert_eq!(back, copy);
        assert_eq!(back.into_frames(), ["ab", "", "cde"]);
    }
}
