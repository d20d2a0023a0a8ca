//! Framing: how frames are cut out of the byte stream a connection receives, and how each frame
//! sent gets its header.
//!
//! A connection carries bytes. A protocol that has frames needs to tell the reader where each
//! one ends. This module splits that job in two object-safe traits:
//!
//! - a [`Decoder`] takes bytes from the inbound buffer and hands out whole frames;
//! - an [`Encoder`] writes the fixed-width header of a frame, knowing only its payload length.
//!
//! [`Framing`] bundles the two and goes into [`Config::framing`](crate::Config::framing). With
//! framing configured, every send writes `header + payload` into the outgoing buffer as one unit:
//! the size check and the capacity accounting count the header, the header and its payload are
//! never separated by another frame (not even an urgent one), and every frame the connection
//! gives back (in an error or in the [`CloseReport`](crate::CloseReport)) is the caller's payload,
//! without the header. Without framing, nothing of this runs.
//!
//! # Wire format of [`LengthDelimited`]
//!
//! ```text
//! +------------------------+---------------------------+
//! | length: W bytes        | payload: `length` bytes   |
//! | big or little endian   | (or `length - W` bytes    |
//! | W in {1, 2, 3, 4, 8}   |  if the length counts the |
//! |                        |  header)                  |
//! +------------------------+---------------------------+
//! ```
//!
//! # Guarantees
//!
//! - **Bounded.** [`LengthDelimited`] decides that a frame is too large from its header alone,
//!   before the body arrives, and never reserves memory: it only cuts frames out of what the
//!   inbound buffer already holds. A header announcing more than the maximum is
//!   [`DecodeError::TooLarge`], whatever the peer sends next.
//! - **Exact.** Decoding any concatenation of encoded frames, split into chunks anywhere, gives
//!   back exactly those frames, in order.
//! - **Nothing lost at the end.** At end of stream, bytes that do not form a whole frame are
//!   [`DecodeError::Truncated`], never silently dropped.
//!
//! # Examples
//!
//! ```
//! use tidegate::bytes::{BufMut, BytesMut};
//! use tidegate::codec::{Decoder, Encoder, LengthDelimited};
//!
//! let codec = LengthDelimited::new().width(2).max_frame_len(1024);
//!
//! // Encode a frame: the header, then the payload.
//! let mut wire = BytesMut::new();
//! let mut header = [0u8; 2];
//! codec.encode_header(5, &mut header).unwrap();
//! wire.put_slice(&header);
//! wire.put_slice(b"hello");
//! assert_eq!(&wire[..], b"\x00\x05hello");
//!
//! // Decode it, one byte at a time.
//! let mut decoder = codec;
//! let mut inbound = BytesMut::new();
//! let mut frames = Vec::new();
//! for byte in wire.iter() {
//!     inbound.put_u8(*byte);
//!     while let Some(frame) = decoder.decode(&mut inbound).unwrap() {
//!         frames.push(frame);
//!     }
//! }
//! assert_eq!(frames, [&b"hello"[..]]);
//! ```

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};

/// The longest header an [`Encoder`] may write, in bytes.
///
/// The connection keeps each frame's header next to the frame while it waits for space, so the
/// header must be small and of a fixed width.
///
/// # Examples
///
/// ```
/// use tidegate::codec::MAX_HEADER_LEN;
///
/// assert!(MAX_HEADER_LEN >= 8);
/// ```
pub const MAX_HEADER_LEN: usize = 16;

/// Cuts frames out of the bytes a connection received.
///
/// Each connection gets a decoder of its own (from [`Framing::new_decoder`]), shared in turn by
/// its receivers (a decoder may keep state between calls), and calls
/// [`decode`](Decoder::decode) whenever bytes arrive, then [`decode_eof`](Decoder::decode_eof)
/// once the peer ended the stream.
///
/// # Implementing
///
/// `decode` looks at the start of `src`. If a whole frame is there, it removes the frame's bytes
/// (header included) from `src` and returns the payload; otherwise it returns `Ok(None)` and
/// leaves `src` as it is, to be called again when more bytes arrived. It must not reserve space
/// in `src`: the inbound buffer is bounded, and the connection grows it, not the decoder. A frame
/// that can never be accepted must be an error as soon as the decoder knows it (typically from
/// the header), so a peer cannot make the connection wait for a body that will be refused.
///
/// # Examples
///
/// A decoder for lines ending in `\n`:
///
/// ```
/// use tidegate::bytes::{Buf, Bytes, BytesMut};
/// use tidegate::codec::{DecodeError, Decoder};
///
/// struct Lines;
///
/// impl Decoder for Lines {
///     fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, DecodeError> {
///         match src.iter().position(|&b| b == b'\n') {
///             Some(end) => {
///                 let line = src.split_to(end).freeze();
///                 src.advance(1);
///                 Ok(Some(line))
///             }
///             None => Ok(None),
///         }
///     }
/// }
///
/// let mut src = BytesMut::from(&b"one\ntw"[..]);
/// assert_eq!(Lines.decode(&mut src).unwrap().unwrap(), "one");
/// assert_eq!(Lines.decode(&mut src).unwrap(), None);
/// assert!(matches!(Lines.decode_eof(&mut src), Err(DecodeError::Truncated { buffered: 2, .. })));
/// ```
pub trait Decoder: Send + 'static {
    /// Removes the first whole frame from `src` and returns its payload, or returns `Ok(None)`
    /// without touching `src` if no whole frame is there yet.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] if the bytes can never form an acceptable frame. The connection treats
    /// it as fatal for the receive side.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::bytes::BytesMut;
    /// use tidegate::codec::{Decoder, LengthDelimited};
    ///
    /// let mut decoder = LengthDelimited::new().width(1);
    /// let mut src = BytesMut::from(&b"\x02hi\x03ab"[..]);
    /// assert_eq!(decoder.decode(&mut src).unwrap().unwrap(), "hi");
    /// assert_eq!(decoder.decode(&mut src).unwrap(), None);
    /// assert_eq!(&src[..], b"\x03ab");
    /// ```
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, DecodeError>;

    /// Like [`decode`](Decoder::decode), called once the stream ended: no more bytes will come.
    ///
    /// The default calls `decode`; if that finds no frame but bytes remain, they are a frame cut
    /// short, [`DecodeError::Truncated`] with `missing: None`.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Truncated`] if bytes remain that do not form a whole frame, or any error
    /// of `decode`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::bytes::BytesMut;
    /// use tidegate::codec::{DecodeError, Decoder, LengthDelimited};
    ///
    /// let mut decoder = LengthDelimited::new().width(1);
    /// let mut src = BytesMut::from(&b"\x04ab"[..]);
    /// let err = decoder.decode_eof(&mut src).unwrap_err();
    /// assert!(matches!(err, DecodeError::Truncated { missing: Some(2), buffered: 3, .. }));
    /// ```
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, DecodeError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(DecodeError::Truncated { missing: None, buffered: src.len() }),
        }
    }

    /// The largest encoded frame this decoder accepts, header included, if it has a limit.
    ///
    /// The connection refuses an inbound capacity smaller than this, since such a frame could
    /// never be decoded.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::codec::{Decoder, LengthDelimited};
    ///
    /// let decoder = LengthDelimited::new().width(2).max_frame_len(100);
    /// assert_eq!(decoder.max_encoded_len(), Some(102));
    /// ```
    fn max_encoded_len(&self) -> Option<usize> {
        None
    }
}

/// Writes the header of each frame sent.
///
/// Headers have a fixed width, [`header_len`](Encoder::header_len), at most
/// [`MAX_HEADER_LEN`], and depend only on the payload's length. That is what lets the connection
/// check a frame's size and reserve its space before writing it, and give the caller's payload
/// back without its header when the frame could not be sent.
///
/// # Implementing
///
/// `header_len` must return the same value every time. `encode_header` fills exactly
/// `dst.len() == header_len()` bytes; it is called once per frame, under no lock, before the frame
/// enters the outgoing buffer.
///
/// # Examples
///
/// A 2-byte tag followed by a 1-byte length:
///
/// ```
/// use tidegate::codec::{EncodeError, Encoder};
///
/// struct Tagged;
///
/// impl Encoder for Tagged {
///     fn header_len(&self) -> usize {
///         3
///     }
///
///     fn encode_header(&self, payload_len: usize, dst: &mut [u8]) -> Result<(), EncodeError> {
///         let len = u8::try_from(payload_len)
///             .map_err(|_| EncodeError::TooLarge { len: payload_len, max: 255 })?;
///         dst.copy_from_slice(&[0xCA, 0xFE, len]);
///         Ok(())
///     }
/// }
///
/// let mut header = [0u8; 3];
/// Tagged.encode_header(7, &mut header).unwrap();
/// assert_eq!(header, [0xCA, 0xFE, 7]);
/// assert!(Tagged.encode_header(300, &mut header).is_err());
/// ```
pub trait Encoder: Send + Sync + 'static {
    /// The width of every header this encoder writes, in bytes, at most [`MAX_HEADER_LEN`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::codec::{Encoder, LengthDelimited};
    ///
    /// assert_eq!(LengthDelimited::new().width(3).header_len(), 3);
    /// ```
    fn header_len(&self) -> usize;

    /// Writes the header of a frame whose payload is `payload_len` bytes into `dst`, which is
    /// exactly [`header_len`](Encoder::header_len) bytes long.
    ///
    /// # Errors
    ///
    /// [`EncodeError::TooLarge`] if the payload is longer than the encoder accepts. The send that
    /// asked for it fails with [`SendError::TooLarge`](crate::SendError::TooLarge), giving the
    /// payload back.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::codec::{EncodeError, Encoder, LengthDelimited};
    ///
    /// let codec = LengthDelimited::new().width(2).little_endian();
    /// let mut header = [0u8; 2];
    /// codec.encode_header(0x0102, &mut header).unwrap();
    /// assert_eq!(header, [0x02, 0x01]);
    /// let err = codec.encode_header(70_000, &mut header).unwrap_err();
    /// assert_eq!(err, EncodeError::TooLarge { len: 70_000, max: 65_535 });
    /// ```
    fn encode_header(&self, payload_len: usize, dst: &mut [u8]) -> Result<(), EncodeError>;

    /// The largest payload this encoder accepts, if it has a limit (`None` by default).
    /// [`Connection::max_frame_len`](crate::Connection::max_frame_len) takes it into account.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::codec::{Encoder, LengthDelimited};
    ///
    /// assert_eq!(LengthDelimited::new().width(1).max_payload_len(), Some(255));
    /// ```
    fn max_payload_len(&self) -> Option<usize> {
        None
    }
}

/// Why bytes received could not be decoded into a frame.
///
/// # Examples
///
/// ```
/// use tidegate::bytes::BytesMut;
/// use tidegate::codec::{DecodeError, Decoder, LengthDelimited};
///
/// let mut decoder = LengthDelimited::new().width(1).max_frame_len(4);
/// let mut src = BytesMut::from(&b"\x09"[..]);
/// let err = decoder.decode(&mut src).unwrap_err();
/// assert_eq!(err.to_string(), "a frame of 9 bytes is larger than the maximum of 4 bytes");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum DecodeError {
    /// A header announced a payload longer than the decoder's maximum.
    TooLarge {
        /// The payload length the header announced.
        len: u64,
        /// The largest payload the decoder accepts.
        max: usize,
    },
    /// The stream ended in the middle of a frame.
    Truncated {
        /// How many more bytes the frame needed, if the decoder knows: for a frame cut in its
        /// header, the bytes missing to complete the header.
        missing: Option<usize>,
        /// How many bytes of the unfinished frame were received.
        buffered: usize,
    },
    /// A length field holds a value no frame can have (for a length that counts the header:
    /// less than the header).
    InvalidLength {
        /// The value of the length field.
        value: u64,
    },
    /// A decoder found the bytes malformed; the cause is the [`source`](Error::source).
    Malformed(Box<dyn Error + Send + Sync + 'static>),
}

impl DecodeError {
    /// Wraps a decoder's own error as [`DecodeError::Malformed`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::error::Error;
    /// use tidegate::codec::DecodeError;
    ///
    /// let err = DecodeError::malformed("bad magic number");
    /// assert_eq!(err.to_string(), "malformed frame");
    /// assert_eq!(err.source().unwrap().to_string(), "bad magic number");
    /// ```
    pub fn malformed(cause: impl Into<Box<dyn Error + Send + Sync + 'static>>) -> Self {
        Self::Malformed(cause.into())
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => {
                write!(f, "a frame of {len} bytes is larger than the maximum of {max} bytes")
            }
            Self::Truncated { missing: Some(missing), buffered } => write!(
                f,
                "the stream ended inside a frame: {buffered} bytes received, {missing} more needed"
            ),
            Self::Truncated { missing: None, buffered } => {
                write!(f, "the stream ended inside a frame: {buffered} bytes received")
            }
            Self::InvalidLength { value } => write!(f, "invalid frame length {value}"),
            Self::Malformed(_) => f.write_str("malformed frame"),
        }
    }
}

impl Error for DecodeError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Malformed(cause) => Some(&**cause),
            _ => None,
        }
    }
}

/// Why a frame's header could not be written.
///
/// # Examples
///
/// ```
/// use tidegate::codec::EncodeError;
///
/// let err = EncodeError::TooLarge { len: 300, max: 255 };
/// assert_eq!(err.to_string(), "a frame of 300 bytes is larger than the maximum of 255 bytes");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The payload is longer than the encoder accepts.
    TooLarge {
        /// The payload's length.
        len: usize,
        /// The largest payload the encoder accepts.
        max: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => {
                write!(f, "a frame of {len} bytes is larger than the maximum of {max} bytes")
            }
        }
    }
}

impl Error for EncodeError {}

/// The default [`LengthDelimited::max_frame_len`]: 64 KiB.
///
/// A received frame must fit whole in the inbound buffer, so a connection refuses a decoder
/// whose largest frame exceeds its inbound capacity; this default fits the default inbound
/// capacity with room to spare. Raise both together for larger frames.
///
/// # Examples
///
/// ```
/// use tidegate::Config;
/// use tidegate::codec::{DEFAULT_MAX_FRAME_LEN, LengthDelimited};
///
/// assert_eq!(LengthDelimited::new().max_frame_len_bytes(), DEFAULT_MAX_FRAME_LEN);
/// assert!(DEFAULT_MAX_FRAME_LEN + 8 <= Config::new().inbound_capacity_bytes());
/// ```
pub const DEFAULT_MAX_FRAME_LEN: usize = 64 * 1024;

/// Frames preceded by their length, as an unsigned integer of 1, 2, 3, 4 or 8 bytes.
///
/// Implements both [`Encoder`] and [`Decoder`]. The default is a 4-byte big-endian length that
/// counts the payload only, and frames of at most [`DEFAULT_MAX_FRAME_LEN`] bytes. An empty
/// payload is a valid frame.
///
/// The maximum payload is the smaller of [`max_frame_len`](LengthDelimited::max_frame_len) and
/// what the length field can express.
///
/// # Compared with tokio-util's `LengthDelimitedCodec`
///
/// The wire format is the same for the header shapes both support; the builder names map so:
///
/// | tokio-util `length_delimited::Builder` | here |
/// |---|---|
/// | `length_field_length(n)`, `length_field_type::<T>()` | [`width(n)`](LengthDelimited::width) (1, 2, 3, 4 or 8) |
/// | `big_endian()`, `little_endian()` | [`big_endian()`](LengthDelimited::big_endian), [`little_endian()`](LengthDelimited::little_endian) |
/// | `length_adjustment(-(n as isize))` for a length that counts its own `n`-byte field | [`length_includes_header(true)`](LengthDelimited::length_includes_header) |
/// | `max_frame_length(n)` (default 8 MiB) | [`max_frame_len(n)`](LengthDelimited::max_frame_len) (default 64 KiB, payload bytes only) |
/// | `length_field_offset`, `num_skip`, other adjustments | none: the header is the length field alone, and the decoder yields the payload without it |
///
/// The default maximum is smaller than tokio-util's because a received frame must fit whole
/// in the connection's bounded inbound buffer ([`DEFAULT_MAX_FRAME_LEN`] says how they
/// relate); raise both together for larger frames.
///
/// # Examples
///
/// ```
/// use tidegate::codec::{Decoder, Encoder, LengthDelimited};
///
/// let codec = LengthDelimited::new()
///     .width(2)
///     .little_endian()
///     .length_includes_header(true)
///     .max_frame_len(1000);
/// let mut header = [0u8; 2];
/// codec.encode_header(10, &mut header).unwrap();
/// assert_eq!(header, [12, 0]);
/// assert_eq!(codec.max_encoded_len(), Some(1002));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthDelimited {
    /// 1, 2, 3, 4 or 8: checked by [`LengthDelimited::width`].
    width: u8,
    big_endian: bool,
    includes_header: bool,
    /// As set; [`LengthDelimited::max_payload`] clamps it to what `width` can express.
    max_frame_len: usize,
}

impl Default for LengthDelimited {
    fn default() -> Self {
        Self::new()
    }
}

impl LengthDelimited {
    /// Returns the default codec: a 4-byte big-endian length of the payload, at most
    /// [`DEFAULT_MAX_FRAME_LEN`] bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::codec::{Encoder, LengthDelimited};
    ///
    /// let mut header = [0u8; 4];
    /// LengthDelimited::new().encode_header(258, &mut header).unwrap();
    /// assert_eq!(header, [0, 0, 1, 2]);
    /// ```
    pub const fn new() -> Self {
        Self {
            width: 4,
            big_endian: true,
            includes_header: false,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        }
    }

    /// Sets the width of the length field: 1, 2, 3, 4 or 8 bytes.
    ///
    /// # Panics
    ///
    /// If `bytes` is not one of those.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::codec::{Encoder, LengthDelimited};
    ///
    /// assert_eq!(LengthDelimited::new().width(8).header_len(), 8);
    /// ```
    pub const fn width(mut self, bytes: usize) -> Self {
        assert!(
            matches!(bytes, 1 | 2 | 3 | 4 | 8),
            "the length field of LengthDelimited is 1, 2, 3, 4 or 8 bytes wide"
        );
        self.width = bytes as u8;
        self
    }

    /// Writes the length with its most significant byte first (the default).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::codec::{Encoder, LengthDelimited};
    ///
    /// let mut header = [0u8; 3];
    /// LengthDelimited::new().width(3).big_endian().encode_header(1, &mut header).unwrap();
    /// assert_eq!(header, [0, 0, 1]);
    /// ```
    pub const fn big_endian(mut self) -> Self {
        self.big_endian = true;
        self
    }

    /// Writes the length with its least significant byte first.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::codec::{Encoder, LengthDelimited};
    ///
    /// let mut header = [0u8; 3];
    /// LengthDelimited::new().width(3).little_endian().encode_header(1, &mut header).unwrap();
    /// assert_eq!(header, [1, 0, 0]);
    /// ```
    pub const fn little_endian(mut self) -> Self {
        self.big_endian = false;
        self
    }

    /// Sets whether the length counts the header too (`false` by default: it counts the payload
    /// only).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::codec::{Encoder, LengthDelimited};
    ///
    /// let mut header = [0u8; 1];
    /// LengthDelimited::new().width(1).length_includes_header(true).encode_header(4, &mut header).unwrap();
    /// assert_eq!(header, [5]);
    /// ```
    pub const fn length_includes_header(mut self, yes: bool) -> Self {
        self.includes_header = yes;
        self
    }

    /// Sets the largest payload accepted, in bytes, header not counted. Larger frames are
    /// refused on both sides: a send fails with
    /// [`SendError::TooLarge`](crate::SendError::TooLarge), a received header announcing one is
    /// [`DecodeError::TooLarge`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::codec::LengthDelimited;
    ///
    /// assert_eq!(LengthDelimited::new().max_frame_len(64).max_frame_len_bytes(), 64);
    /// // Clamped to what a 1-byte length can express.
    /// assert_eq!(LengthDelimited::new().width(1).max_frame_len_bytes(), 255);
    /// ```
    pub const fn max_frame_len(mut self, bytes: usize) -> Self {
        self.max_frame_len = bytes;
        self
    }

    /// Returns the largest payload accepted: the smaller of the configured maximum and what the
    /// length field can express.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::codec::LengthDelimited;
    ///
    /// let codec = LengthDelimited::new().width(1).length_includes_header(true);
    /// assert_eq!(codec.max_frame_len_bytes(), 254);
    /// ```
    pub const fn max_frame_len_bytes(&self) -> usize {
        self.max_payload()
    }

    const fn max_payload(&self) -> usize {
        let field_max: u64 =
            if self.width == 8 { u64::MAX } else { (1u64 << (8 * self.width as u32)) - 1 };
        let field_max =
            if self.includes_header { field_max - self.width as u64 } else { field_max };
        // Leave room for the header, so `payload + header` never overflows a usize.
        let max =
            if self.max_frame_len > usize::MAX - 8 { usize::MAX - 8 } else { self.max_frame_len };
        if field_max < max as u64 { field_max as usize } else { max }
    }

    /// Reads the length field at the start of `src`, which holds at least `width` bytes.
    fn read_field(&self, src: &[u8]) -> u64 {
        let width = self.width as usize;
        let mut value = 0u64;
        for i in 0..width {
            let byte = if self.big_endian { src[i] } else { src[width - 1 - i] };
            value = (value << 8) | u64::from(byte);
        }
        value
    }
}

impl Encoder for LengthDelimited {
    fn header_len(&self) -> usize {
        self.width as usize
    }

    fn max_payload_len(&self) -> Option<usize> {
        Some(self.max_payload())
    }

    fn encode_header(&self, payload_len: usize, dst: &mut [u8]) -> Result<(), EncodeError> {
        let max = self.max_payload();
        if payload_len > max {
            return Err(EncodeError::TooLarge { len: payload_len, max });
        }
        let width = self.width as usize;
        debug_assert_eq!(dst.len(), width, "encode_header gets exactly header_len bytes");
        // Cannot overflow: payload_len <= max, which leaves room for the header.
        let value = payload_len as u64 + if self.includes_header { width as u64 } else { 0 };
        let bytes = value.to_be_bytes();
        let field = &bytes[8 - width..];
        if self.big_endian {
            dst.copy_from_slice(field);
        } else {
            for (d, s) in dst.iter_mut().zip(field.iter().rev()) {
                *d = *s;
            }
        }
        Ok(())
    }
}

impl Decoder for LengthDelimited {
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, DecodeError> {
        let width = self.width as usize;
        if src.len() < width {
            return Ok(None);
        }
        let value = self.read_field(src);
        let len = if self.includes_header {
            value.checked_sub(width as u64).ok_or(DecodeError::InvalidLength { value })?
        } else {
            value
        };
        let max = self.max_payload();
        if len > max as u64 {
            // Decided from the header alone: nothing is reserved, nothing waited for.
            return Err(DecodeError::TooLarge { len, max });
        }
        // Cannot overflow: max_payload leaves room for the header.
        if src.len() < len as usize + width {
            return Ok(None);
        }
        src.advance(width);
        Ok(Some(src.split_to(len as usize).freeze()))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, DecodeError> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        if src.is_empty() {
            return Ok(None);
        }
        let width = self.width as usize;
        let missing = if src.len() < width {
            width - src.len()
        } else {
            // decode returned None with a whole header: the body is short. The length was
            // checked against the maximum, so it fits in usize.
            let value = self.read_field(src);
            let len = if self.includes_header { value - width as u64 } else { value };
            len as usize + width - src.len()
        };
        Err(DecodeError::Truncated { missing: Some(missing), buffered: src.len() })
    }

    fn max_encoded_len(&self) -> Option<usize> {
        Some(self.max_payload() + self.width as usize)
    }
}

type MakeDecoder = dyn Fn() -> Box<dyn Decoder> + Send + Sync;

/// How a connection frames what it sends and receives: an optional [`Encoder`] for the send
/// side and an optional [`Decoder`] for the receive side.
///
/// Cheap to clone; set it with [`Config::framing`](crate::Config::framing). Each connection gets
/// a fresh decoder from [`new_decoder`](Framing::new_decoder), since decoders may keep state.
///
/// # Examples
///
/// ```
/// use tidegate::codec::{Framing, LengthDelimited};
///
/// let framing = Framing::new(LengthDelimited::new().width(2));
/// assert_eq!(framing.encoder().unwrap().header_len(), 2);
/// assert!(framing.new_decoder().is_some());
///
/// let send_only = Framing::none().with_encoder(LengthDelimited::new());
/// assert!(send_only.new_decoder().is_none());
/// ```
#[derive(Clone, Default)]
pub struct Framing {
    encoder: Option<Arc<dyn Encoder>>,
    decoder: Option<Arc<MakeDecoder>>,
}

impl fmt::Debug for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Framing")
            .field("header_len", &self.encoder.as_ref().map(|e| e.header_len()))
            .field("decoder", &self.decoder.is_some())
            .finish()
    }
}

impl Framing {
    /// Frames both directions with one codec: it encodes what is sent, and a clone of it decodes
    /// what is received.
    ///
    /// # Panics
    ///
    /// If the codec's [`header_len`](Encoder::header_len) exceeds [`MAX_HEADER_LEN`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Config;
    /// use tidegate::codec::{Framing, LengthDelimited};
    ///
    /// let config = Config::new().framing(Framing::new(LengthDelimited::new()));
    /// assert!(config.framing_ref().encoder().is_some());
    /// ```
    pub fn new<C: Encoder + Decoder + Clone>(codec: C) -> Self {
        Self::none().with_encoder(codec.clone()).with_decoder(codec)
    }

    /// No framing: bytes are sent as given and received as they come.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::codec::Framing;
    ///
    /// assert!(Framing::none().encoder().is_none());
    /// assert!(Framing::none().new_decoder().is_none());
    /// ```
    pub fn none() -> Self {
        Self::default()
    }

    /// Sets the encoder of the send side.
    ///
    /// # Panics
    ///
    /// If the encoder's [`header_len`](Encoder::header_len) exceeds [`MAX_HEADER_LEN`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::codec::{Framing, LengthDelimited};
    ///
    /// let framing = Framing::none().with_encoder(LengthDelimited::new().width(8));
    /// assert_eq!(framing.encoder().unwrap().header_len(), 8);
    /// ```
    pub fn with_encoder(mut self, encoder: impl Encoder) -> Self {
        assert!(
            encoder.header_len() <= MAX_HEADER_LEN,
            "a frame header is at most MAX_HEADER_LEN ({MAX_HEADER_LEN}) bytes"
        );
        self.encoder = Some(Arc::new(encoder));
        self
    }

    /// Sets the decoder of the receive side; each connection gets a clone of `decoder`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::codec::{Decoder, Framing, LengthDelimited};
    ///
    /// let framing = Framing::none().with_decoder(LengthDelimited::new().max_frame_len(10));
    /// assert_eq!(framing.new_decoder().unwrap().max_encoded_len(), Some(14));
    /// ```
    pub fn with_decoder<D: Decoder + Clone + Sync>(mut self, decoder: D) -> Self {
        self.decoder = Some(Arc::new(move || Box::new(decoder.clone()) as Box<dyn Decoder>));
        self
    }

    /// Sets the receive side to decoders made by `make`, called once per connection.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::codec::{Decoder, Framing, LengthDelimited};
    ///
    /// let framing = Framing::none().with_decoder_fn(|| LengthDelimited::new().width(1));
    /// assert_eq!(framing.new_decoder().unwrap().max_encoded_len(), Some(256));
    /// ```
    pub fn with_decoder_fn<D: Decoder>(
        mut self,
        make: impl Fn() -> D + Send + Sync + 'static,
    ) -> Self {
        self.decoder = Some(Arc::new(move || Box::new(make()) as Box<dyn Decoder>));
        self
    }

    /// Returns the encoder of the send side, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::codec::{Framing, LengthDelimited};
    ///
    /// assert!(Framing::new(LengthDelimited::new()).encoder().is_some());
    /// ```
    pub fn encoder(&self) -> Option<&Arc<dyn Encoder>> {
        self.encoder.as_ref()
    }

    /// Returns a fresh decoder for the receive side, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::bytes::BytesMut;
    /// use tidegate::codec::{Framing, LengthDelimited};
    ///
    /// let framing = Framing::new(LengthDelimited::new().width(1));
    /// let mut decoder = framing.new_decoder().unwrap();
    /// let mut src = BytesMut::from(&b"\x01x"[..]);
    /// assert_eq!(decoder.decode(&mut src).unwrap().unwrap(), "x");
    /// ```
    pub fn new_decoder(&self) -> Option<Box<dyn Decoder>> {
        self.decoder.as_ref().map(|make| make())
    }

    /// Returns whether neither side is framed.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::codec::{Framing, LengthDelimited};
    ///
    /// assert!(Framing::none().is_none());
    /// assert!(!Framing::new(LengthDelimited::new()).is_none());
    /// ```
    pub fn is_none(&self) -> bool {
        self.encoder.is_none() && self.decoder.is_none()
    }
}

impl From<LengthDelimited> for Framing {
    fn from(codec: LengthDelimited) -> Self {
        Self::new(codec)
    }
}
