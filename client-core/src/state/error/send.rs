//! The errors of a send: [`SendError`] and [`TrySendError`], which carry the frame back, and
//! [`FrameLimit`], the limit a frame too large ran into.

use std::error::Error;
use std::fmt;
use std::io;

use super::Disconnect;

/// The limit a frame ran into when it was refused as [`SendError::TooLarge`] or
/// [`TrySendError::TooLarge`]; `Display` names the setting it comes from.
///
/// # Examples
///
/// ```
/// use tidegate::{Client, FrameLimit, SendError};
/// use tidegate::codec::LengthDelimited;
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("frame-limit-example").unwrap();
/// let codec = LengthDelimited::new().max_frame_len(8);
/// let client = Client::builder().framing(codec).connect(&listener.url()).unwrap();
/// let err = client.send("nine bytes").unwrap_err();
/// assert!(matches!(err, SendError::TooLarge { max_len: 8, limit: FrameLimit::Codec, .. }));
/// assert!(err.to_string().contains("max_frame_len"), "{err}");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameLimit {
    /// The outgoing buffer's capacity ([`Config::capacity`](crate::Config::capacity)); for a
    /// data frame, less the urgent reserve
    /// ([`Config::urgent_reserve`](crate::Config::urgent_reserve)).
    Capacity,
    /// The limit of the shared memory budget ([`Budget`](crate::Budget)) the connection draws
    /// on, when it is smaller than the connection's own capacity.
    Budget,
    /// The codec's largest frame: its `max_frame_len`, or what its length field can express.
    Codec,
}

impl fmt::Display for FrameLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Capacity => "the outgoing buffer's capacity (less the urgent reserve for data)",
            Self::Budget => "the shared memory budget's limit",
            Self::Codec => "the codec's max_frame_len",
        })
    }
}

/// A frame could not be sent. The error contains the frame so it can be recovered.
///
/// Returned by `send` and `send_timeout` in both facades.
///
/// # Examples
///
/// ```
/// use tidegate::Bytes;
/// use tidegate::SendError;
///
/// let err = SendError::Timeout(Bytes::from_static(b"frame"));
/// assert_eq!(err.into_inner(), Bytes::from_static(b"frame"));
/// ```
#[non_exhaustive]
pub enum SendError<F> {
    /// The deadline passed before the buffer had room for the frame.
    Timeout(F),
    /// The frame is larger than a limit of the connection, so it could never be accepted.
    TooLarge {
        /// The frame.
        frame: F,
        /// The largest frame the connection accepts under `limit`, in bytes (with framing,
        /// the largest payload, its header not counted).
        max_len: usize,
        /// Which limit the frame ran into.
        limit: FrameLimit,
    },
    /// The frame is empty. Empty frames put nothing on the wire and are refused.
    Empty(F),
    /// The connection was closed by the application.
    Closed(F),
    /// The connection ended; `cause` says why.
    Disconnected {
        /// The frame.
        frame: F,
        /// Why the connection ended.
        cause: Disconnect,
    },
    /// The send would have to wait, and it was called on an I/O driver thread, which would
    /// then wait for itself (see [`is_driver_thread`](crate::is_driver_thread)).
    WouldDeadlock(F),
    /// The send would have to wait, and the configured bound on waiting senders
    /// ([`Config::max_waiters`](crate::Config::max_waiters)) is reached.
    TooManyWaiters(F),
}

impl<F> SendError<F> {
    /// Returns the frame that could not be sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Bytes;
    /// use tidegate::SendError;
    ///
    /// let err = SendError::TooLarge {
    ///     frame: Bytes::from_static(b"big"),
    ///     max_len: 2,
    ///     limit: tidegate::FrameLimit::Capacity,
    /// };
    /// assert_eq!(err.into_inner(), Bytes::from_static(b"big"));
    /// ```
    pub fn into_inner(self) -> F {
        match self {
            Self::Timeout(frame)
            | Self::TooLarge { frame, .. }
            | Self::Empty(frame)
            | Self::Closed(frame)
            | Self::Disconnected { frame, .. }
            | Self::WouldDeadlock(frame)
            | Self::TooManyWaiters(frame) => frame,
        }
    }

    /// Borrows the frame that could not be sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Bytes;
    /// use tidegate::SendError;
    ///
    /// let err = SendError::Closed(Bytes::from_static(b"late"));
    /// assert_eq!(err.frame().len(), 4);
    /// ```
    pub fn frame(&self) -> &F {
        match self {
            Self::Timeout(frame)
            | Self::TooLarge { frame, .. }
            | Self::Empty(frame)
            | Self::Closed(frame)
            | Self::Disconnected { frame, .. }
            | Self::WouldDeadlock(frame)
            | Self::TooManyWaiters(frame) => frame,
        }
    }

    /// Returns whether the send gave up because its deadline passed.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::SendError;
    ///
    /// assert!(SendError::Timeout("frame").is_timeout());
    /// assert!(!SendError::Closed("frame").is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }

    /// Returns whether the connection is closed or disconnected, so no later send can succeed
    /// either.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Disconnect, DisconnectKind, SendError};
    ///
    /// let cause = Disconnect::new(DisconnectKind::PeerClosed);
    /// assert!(SendError::Disconnected { frame: "frame", cause }.is_closed());
    /// assert!(!SendError::Timeout("frame").is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed(_) | Self::Disconnected { .. })
    }

    /// Converts the frame, keeping the reason.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Bytes;
    /// use tidegate::SendError;
    ///
    /// let err = SendError::Timeout(Bytes::from_static(b"frame"));
    /// let err: SendError<Vec<u8>> = err.map(|frame| frame.to_vec());
    /// assert!(err.is_timeout());
    /// assert_eq!(err.into_inner(), b"frame");
    /// ```
    pub fn map<G>(self, f: impl FnOnce(F) -> G) -> SendError<G> {
        match self {
            Self::Timeout(frame) => SendError::Timeout(f(frame)),
            Self::TooLarge { frame, max_len, limit } => {
                SendError::TooLarge { frame: f(frame), max_len, limit }
            }
            Self::Empty(frame) => SendError::Empty(f(frame)),
            Self::Closed(frame) => SendError::Closed(f(frame)),
            Self::Disconnected { frame, cause } => {
                SendError::Disconnected { frame: f(frame), cause }
            }
            Self::WouldDeadlock(frame) => SendError::WouldDeadlock(f(frame)),
            Self::TooManyWaiters(frame) => SendError::TooManyWaiters(f(frame)),
        }
    }
}

impl<F> fmt::Debug for SendError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(_) => f.write_str("Timeout(..)"),
            Self::TooLarge { max_len, limit, .. } => f
                .debug_struct("TooLarge")
                .field("max_len", max_len)
                .field("limit", limit)
                .finish_non_exhaustive(),
            Self::Empty(_) => f.write_str("Empty(..)"),
            Self::Closed(_) => f.write_str("Closed(..)"),
            Self::Disconnected { cause, .. } => {
                f.debug_struct("Disconnected").field("cause", cause).finish_non_exhaustive()
            }
            Self::WouldDeadlock(_) => f.write_str("WouldDeadlock(..)"),
            Self::TooManyWaiters(_) => f.write_str("TooManyWaiters(..)"),
        }
    }
}

impl<F> fmt::Display for SendError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(_) => f.write_str("timed out waiting for room in the outgoing buffer"),
            Self::TooLarge { max_len, limit, .. } => {
                write!(f, "frame is larger than {limit}, which allows {max_len} bytes at most")
            }
            Self::Empty(_) => f.write_str("frame is empty"),
            Self::Closed(_) => f.write_str("sending on a closed connection"),
            Self::Disconnected { .. } => f.write_str("sending on a disconnected connection"),
            Self::WouldDeadlock(_) => {
                f.write_str("a send on an I/O driver thread would wait for that thread itself")
            }
            Self::TooManyWaiters(_) => f.write_str("too many senders are waiting already"),
        }
    }
}

/// For byte-stream callers (`std::io::Write`, `AsyncWrite::poll_write`): `TimedOut`,
/// `NotConnected` after a close, the cause's kind after a disconnect, `Deadlock` on a driver
/// thread, `InvalidInput` for a frame that can never be sent; the error, with the frame, is
/// inside.
///
/// # Examples
///
/// ```
/// use std::io;
/// use tidegate::{Bytes, SendError};
///
/// let err = io::Error::from(SendError::Closed(Bytes::from("late")));
/// assert_eq!(err.kind(), io::ErrorKind::NotConnected);
/// ```
impl<F: Send + Sync + 'static> From<SendError<F>> for io::Error {
    fn from(err: SendError<F>) -> Self {
        let kind = match &err {
            SendError::Timeout(_) => io::ErrorKind::TimedOut,
            SendError::Closed(_) => io::ErrorKind::NotConnected,
            SendError::Disconnected { cause, .. } => cause.io_kind(),
            SendError::WouldDeadlock(_) => io::ErrorKind::Deadlock,
            SendError::TooLarge { .. } | SendError::Empty(_) | SendError::TooManyWaiters(_) => {
                io::ErrorKind::InvalidInput
            }
        };
        Self::new(kind, err)
    }
}

impl<F> Error for SendError<F> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Disconnected { cause, .. } => Some(cause),
            _ => None,
        }
    }
}

/// A frame could not be accepted at once. The error contains the frame so it can be recovered.
///
/// Returned by `try_send` in both facades.
///
/// # Examples
///
/// ```
/// use tidegate::Bytes;
/// use tidegate::TrySendError;
///
/// let err = TrySendError::Full(Bytes::from_static(b"frame"));
/// assert!(err.is_full());
/// assert_eq!(err.into_inner(), Bytes::from_static(b"frame"));
/// ```
#[non_exhaustive]
pub enum TrySendError<F> {
    /// The buffer has no room for the frame now, or other senders are waiting ahead of it.
    Full(F),
    /// The frame is larger than a limit of the connection, so it could never be accepted.
    TooLarge {
        /// The frame.
        frame: F,
        /// The largest frame the connection accepts under `limit`, in bytes (with framing,
        /// the largest payload, its header not counted).
        max_len: usize,
        /// Which limit the frame ran into.
        limit: FrameLimit,
    },
    /// The frame is empty.
    Empty(F),
    /// The connection was closed by the application.
    Closed(F),
    /// The connection ended; `cause` says why.
    Disconnected {
        /// The frame.
        frame: F,
        /// Why the connection ended.
        cause: Disconnect,
    },
}

impl<F> TrySendError<F> {
    /// Returns the frame that could not be sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Bytes;
    /// use tidegate::TrySendError;
    ///
    /// let err = TrySendError::Empty(Bytes::new());
    /// assert!(err.into_inner().is_empty());
    /// ```
    pub fn into_inner(self) -> F {
        match self {
            Self::Full(frame)
            | Self::TooLarge { frame, .. }
            | Self::Empty(frame)
            | Self::Closed(frame)
            | Self::Disconnected { frame, .. } => frame,
        }
    }

    /// Returns whether the frame was refused only because there is no room now, so a later
    /// attempt may succeed.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::TrySendError;
    ///
    /// assert!(TrySendError::Full("frame").is_full());
    /// let limit = tidegate::FrameLimit::Capacity;
    /// assert!(!TrySendError::TooLarge { frame: "frame", max_len: 4, limit }.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    /// Returns whether the connection is closed or disconnected.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::TrySendError;
    ///
    /// assert!(TrySendError::Closed("frame").is_closed());
    /// assert!(!TrySendError::Full("frame").is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed(_) | Self::Disconnected { .. })
    }
}

impl<F> From<SendError<F>> for TrySendError<F> {
    /// Every reason a send can fail is also a reason a `try_send` can, but for the timeout,
    /// which becomes [`TrySendError::Full`].
    fn from(err: SendError<F>) -> Self {
        match err {
            SendError::Timeout(frame) => Self::Full(frame),
            SendError::TooLarge { frame, max_len, limit } => {
                Self::TooLarge { frame, max_len, limit }
            }
            SendError::Empty(frame) => Self::Empty(frame),
            SendError::Closed(frame) => Self::Closed(frame),
            SendError::Disconnected { frame, cause } => Self::Disconnected { frame, cause },
            // A `try_send` never waits, so it cannot meet these; the closest reason is that
            // the frame does not fit now.
            SendError::WouldDeadlock(frame) | SendError::TooManyWaiters(frame) => Self::Full(frame),
        }
    }
}

impl<F> fmt::Debug for TrySendError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::TooLarge { max_len, limit, .. } => f
                .debug_struct("TooLarge")
                .field("max_len", max_len)
                .field("limit", limit)
                .finish_non_exhaustive(),
            Self::Empty(_) => f.write_str("Empty(..)"),
            Self::Closed(_) => f.write_str("Closed(..)"),
            Self::Disconnected { cause, .. } => {
                f.debug_struct("Disconnected").field("cause", cause).finish_non_exhaustive()
            }
        }
    }
}

impl<F> fmt::Display for TrySendError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("the outgoing buffer is full"),
            Self::TooLarge { max_len, limit, .. } => {
                write!(f, "frame is larger than {limit}, which allows {max_len} bytes at most")
            }
            Self::Empty(_) => f.write_str("frame is empty"),
            Self::Closed(_) => f.write_str("sending on a closed connection"),
            Self::Disconnected { .. } => f.write_str("sending on a disconnected connection"),
        }
    }
}

impl<F> Error for TrySendError<F> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Disconnected { cause, .. } => Some(cause),
            _ => None,
        }
    }
}
