//! Errors. Every error of a send carries the frame, so nothing the application handed over is
//! lost: [`SendError::into_inner`] and [`TrySendError::into_inner`] give it back.
//!
//! `Display` describes an error itself; what caused it (the [`Disconnect`], then the I/O error)
//! comes from [`Error::source`], so printing the chain shows each cause once.

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// Why a connection ended without being closed by the application.
///
/// Cheap to clone: every sender that was waiting on the connection gets a copy.
///
/// # Examples
///
/// ```
/// use tidegate::{Disconnect, DisconnectKind};
///
/// let cause = Disconnect::from_io(std::io::ErrorKind::ConnectionReset.into());
/// assert_eq!(cause.kind(), DisconnectKind::Reset);
/// ```
#[derive(Clone)]
pub struct Disconnect {
    kind: DisconnectKind,
    error: Option<Arc<io::Error>>,
}

/// The broad class of a [`Disconnect`].
///
/// # Examples
///
/// ```
/// use tidegate::{Disconnect, DisconnectKind};
///
/// assert_eq!(Disconnect::new(DisconnectKind::PeerClosed).kind(), DisconnectKind::PeerClosed);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectKind {
    /// The peer closed its side of the connection (end of stream).
    PeerClosed,
    /// The peer reset the connection, or the link broke while writing.
    Reset,
    /// The connection could not be established.
    ConnectFailed,
    /// The connection was not established within the connect timeout.
    ConnectTimedOut,
    /// Another I/O error ended the connection.
    Io,
}

impl Disconnect {
    /// Returns a cause with no underlying I/O error.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Disconnect, DisconnectKind};
    ///
    /// let cause = Disconnect::new(DisconnectKind::PeerClosed);
    /// assert!(cause.io_error().is_none());
    /// assert_eq!(cause.to_string(), "the peer closed the connection");
    /// ```
    pub fn new(kind: DisconnectKind) -> Self {
        Self { kind, error: None }
    }

    /// Classifies an I/O error that ended an established connection.
    ///
    /// A reset, an aborted connection or a broken pipe is [`DisconnectKind::Reset`], an
    /// unexpected end of stream is [`DisconnectKind::PeerClosed`], anything else is
    /// [`DisconnectKind::Io`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use tidegate::{Disconnect, DisconnectKind};
    ///
    /// let cause = Disconnect::from_io(io::ErrorKind::BrokenPipe.into());
    /// assert_eq!(cause.kind(), DisconnectKind::Reset);
    /// let cause = Disconnect::from_io(io::ErrorKind::PermissionDenied.into());
    /// assert_eq!(cause.kind(), DisconnectKind::Io);
    /// ```
    pub fn from_io(error: io::Error) -> Self {
        let kind = match error.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => DisconnectKind::Reset,
            io::ErrorKind::UnexpectedEof => DisconnectKind::PeerClosed,
            _ => DisconnectKind::Io,
        };
        Self { kind, error: Some(Arc::new(error)) }
    }

    /// Returns a cause of the given kind wrapping an I/O error.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use tidegate::{Disconnect, DisconnectKind};
    ///
    /// let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
    /// let cause = Disconnect::with_io(DisconnectKind::ConnectFailed, refused);
    /// assert_eq!(cause.kind(), DisconnectKind::ConnectFailed);
    /// assert_eq!(cause.io_error().unwrap().kind(), io::ErrorKind::ConnectionRefused);
    /// ```
    pub fn with_io(kind: DisconnectKind, error: io::Error) -> Self {
        Self { kind, error: Some(Arc::new(error)) }
    }

    /// Returns the class of the cause.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Disconnect, DisconnectKind};
    ///
    /// let cause = Disconnect::from_io(std::io::ErrorKind::UnexpectedEof.into());
    /// assert_eq!(cause.kind(), DisconnectKind::PeerClosed);
    /// ```
    pub fn kind(&self) -> DisconnectKind {
        self.kind
    }

    /// Returns the I/O error behind the cause, if there was one.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use tidegate::Disconnect;
    ///
    /// let cause = Disconnect::from_io(io::ErrorKind::ConnectionReset.into());
    /// assert_eq!(cause.io_error().map(io::Error::kind), Some(io::ErrorKind::ConnectionReset));
    /// ```
    pub fn io_error(&self) -> Option<&io::Error> {
        self.error.as_deref()
    }
}

impl fmt::Debug for Disconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Disconnect").field("kind", &self.kind).field("error", &self.error).finish()
    }
}

impl fmt::Display for Disconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            DisconnectKind::PeerClosed => "the peer closed the connection",
            DisconnectKind::Reset => "the connection was reset",
            DisconnectKind::ConnectFailed => "the connection could not be established",
            DisconnectKind::ConnectTimedOut => "the connection timed out while connecting",
            DisconnectKind::Io => "the connection failed",
        };
        f.write_str(what)
    }
}

impl Error for Disconnect {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.error.as_deref().map(|e| e as &(dyn Error + 'static))
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
    /// The frame is larger than the buffer's capacity, so it could never be accepted.
    TooLarge {
        /// The frame.
        frame: F,
        /// The largest frame the connection accepts, in bytes (with framing, the largest
        /// payload, its header not counted).
        capacity: usize,
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
    /// let err = SendError::TooLarge { frame: Bytes::from_static(b"big"), capacity: 2 };
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
            Self::TooLarge { frame, capacity } => SendError::TooLarge { frame: f(frame), capacity },
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
            Self::TooLarge { capacity, .. } => {
                f.debug_struct("TooLarge").field("capacity", capacity).finish_non_exhaustive()
            }
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
            Self::TooLarge { capacity, .. } => {
                write!(f, "frame is larger than the outgoing buffer's capacity of {capacity} bytes")
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
    /// The frame is larger than the buffer's capacity, so it could never be accepted.
    TooLarge {
        /// The frame.
        frame: F,
        /// The largest frame the connection accepts, in bytes (with framing, the largest
        /// payload, its header not counted).
        capacity: usize,
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
    /// assert!(!TrySendError::TooLarge { frame: "frame", capacity: 4 }.is_full());
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
            SendError::TooLarge { frame, capacity } => Self::TooLarge { frame, capacity },
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
            Self::TooLarge { capacity, .. } => {
                f.debug_struct("TooLarge").field("capacity", capacity).finish_non_exhaustive()
            }
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
            Self::TooLarge { capacity, .. } => {
                write!(f, "frame is larger than the outgoing buffer's capacity of {capacity} bytes")
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

/// A connection could not be opened.
///
/// # Examples
///
/// ```
/// use tidegate::ConnectError;
///
/// let err = ConnectError::UnknownScheme { scheme: "nope".into(), registered: vec!["tcp".into()] };
/// assert!(err.to_string().contains("tcp"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not of the form `scheme://address`.
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No transport is registered for the URL's scheme.
    UnknownScheme {
        /// The scheme of the URL.
        scheme: String,
        /// The schemes that are registered, sorted.
        registered: Vec<String>,
    },
    /// The configuration is not usable, for example a capacity of zero.
    InvalidConfig(String),
    /// The transport could not start opening the link (for example, the host name does not
    /// resolve).
    Io(io::Error),
    /// The connection attempt failed (for example, it was refused).
    Failed(Disconnect),
    /// The connection was not established within the connect timeout.
    TimedOut(Duration),
    /// The connection was closed by the application before it was established.
    Closed,
    /// A blocking connect was called on an I/O driver thread (inside a transport plugin or a
    /// link call), which would then wait for a driver, perhaps itself, to establish the link
    /// (see [`is_driver_thread`](crate::is_driver_thread)). Nothing was opened; connect with
    /// the async facade there, or from another thread.
    WouldDeadlock,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl { url, reason } => write!(f, "invalid URL {url:?}: {reason}"),
            Self::UnknownScheme { scheme, registered } => write!(
                f,
                "no transport is registered for scheme {scheme:?} (registered: {})",
                registered.join(", ")
            ),
            Self::InvalidConfig(what) => write!(f, "invalid configuration: {what}"),
            Self::Io(_) => f.write_str("could not open the link"),
            Self::Failed(_) => f.write_str("could not connect"),
            Self::TimedOut(after) => write!(f, "connect timed out after {after:?}"),
            Self::Closed => f.write_str("the connection was closed before it was established"),
            Self::WouldDeadlock => f.write_str(
                "a blocking connect on an I/O driver thread would wait for the driver itself",
            ),
        }
    }
}

impl Error for ConnectError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Failed(cause) => Some(cause),
            _ => None,
        }
    }
}

/// `flush` did not complete.
///
/// # Examples
///
/// ```
/// use tidegate::FlushError;
///
/// assert!(FlushError::Timeout.to_string().contains("timed out"));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum FlushError {
    /// The deadline passed before everything was written.
    Timeout,
    /// The connection was closed by the application before everything was written; the close
    /// report accounts for the frames.
    Closed,
    /// The connection ended before everything was written; the close report accounts for the
    /// frames.
    Disconnected(Disconnect),
    /// The flush would have to wait, and it was called on an I/O driver thread, which would
    /// then wait for itself (see [`is_driver_thread`](crate::is_driver_thread)).
    WouldDeadlock,
}

impl fmt::Display for FlushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("flush timed out"),
            Self::Closed => f.write_str("connection closed before the flush completed"),
            Self::Disconnected(_) => f.write_str("connection ended before the flush completed"),
            Self::WouldDeadlock => {
                f.write_str("a flush on an I/O driver thread would wait for that thread itself")
            }
        }
    }
}

impl Error for FlushError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Disconnected(cause) => Some(cause),
            _ => None,
        }
    }
}

/// The link of a connection is gone, so a call on it could not run.
///
/// Returned by [`Connection::call_link`](crate::Connection::call_link).
///
/// # Examples
///
/// ```
/// use tidegate::LinkError;
///
/// assert_eq!(LinkError::Closed.to_string(), "the connection is closed");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LinkError {
    /// The connection was closed by the application.
    Closed,
    /// The connection ended; the cause says why.
    Disconnected(Disconnect),
    /// The call was made from an I/O driver thread and would wait for that thread itself (see
    /// [`is_driver_thread`](crate::is_driver_thread)).
    WouldDeadlock,
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("the connection is closed"),
            Self::Disconnected(_) => f.write_str("the connection has ended"),
            Self::WouldDeadlock => {
                f.write_str("a link call on an I/O driver thread would wait for that thread itself")
            }
        }
    }
}

impl Error for LinkError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Disconnected(cause) => Some(cause),
            Self::Closed | Self::WouldDeadlock => None,
        }
    }
}

/// A `close` could not run.
///
/// Returned by `close`, `close_timeout` and `close_deadline` in both facades, so that the same
/// code compiles against either. Only the blocking facade ever returns it: the async facade's
/// close waits by returning `Pending`, not by parking a thread, so it has nothing to refuse.
///
/// # Examples
///
/// ```
/// use tidegate::CloseError;
///
/// assert!(CloseError::WouldDeadlock.to_string().contains("driver thread"));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CloseError {
    /// The close was called on an I/O driver thread, which would then wait for itself to shut
    /// the link down (see [`is_driver_thread`](crate::is_driver_thread)). Nothing was done:
    /// the connection is still open; close it from another thread.
    WouldDeadlock,
}

impl fmt::Display for CloseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WouldDeadlock => {
                f.write_str("a close on an I/O driver thread would wait for that thread itself")
            }
        }
    }
}

impl Error for CloseError {}

impl From<LinkError> for io::Error {
    /// A `NotConnected` error wrapping the link error.
    fn from(err: LinkError) -> Self {
        Self::new(io::ErrorKind::NotConnected, err)
    }
}

/// A receive did not return data or the end of the stream.
///
/// Returned by `recv` and `recv_timeout` in both facades. Bytes that arrived before the
/// connection failed are always delivered first; the error comes after them.
///
/// # Examples
///
/// ```
/// use tidegate::{Disconnect, DisconnectKind, RecvError};
///
/// let err = RecvError::Disconnected(Disconnect::new(DisconnectKind::Reset));
/// assert!(err.is_disconnected());
/// assert!(!RecvError::Timeout.is_disconnected());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RecvError {
    /// The deadline passed with nothing to receive.
    Timeout,
    /// The connection failed (reset, or another error); everything that arrived before was
    /// delivered. `Disconnect` says why.
    Disconnected(Disconnect),
    /// The connection is framed and the bytes received cannot form an acceptable frame: a
    /// frame larger than the maximum, or a stream that ended inside a frame. The receive side
    /// is over: every later receive returns the same error.
    Decode(Arc<crate::state::codec::DecodeError>),
    /// The receive would have to wait, and it was called on an I/O driver thread, which would
    /// then wait for itself (see [`is_driver_thread`](crate::is_driver_thread)).
    WouldDeadlock,
}

impl RecvError {
    /// Returns whether the receive gave up because its deadline passed.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(tidegate::RecvError::Timeout.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout)
    }

    /// Returns whether the connection failed, so no later receive returns data.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Disconnect, DisconnectKind, RecvError};
    ///
    /// let err = RecvError::Disconnected(Disconnect::new(DisconnectKind::Io));
    /// assert!(err.is_disconnected());
    /// ```
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Self::Disconnected(_))
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("timed out waiting for inbound data"),
            Self::Disconnected(_) => f.write_str("the connection failed"),
            Self::Decode(_) => f.write_str("inbound frames could not be decoded"),
            Self::WouldDeadlock => {
                f.write_str("a receive on an I/O driver thread would wait for that thread itself")
            }
        }
    }
}

impl Error for RecvError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Disconnected(cause) => Some(cause),
            Self::Decode(err) => Some(&**err),
            Self::Timeout | Self::WouldDeadlock => None,
        }
    }
}

/// A receive that does not wait found nothing, or the receive side failed.
///
/// Returned by `try_recv` in both facades.
///
/// # Examples
///
/// ```
/// use tidegate::TryRecvError;
///
/// assert!(TryRecvError::Empty.is_empty());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TryRecvError {
    /// Nothing to receive now (or other receivers wait ahead), and the stream has not ended.
    Empty,
    /// The connection failed; everything that arrived before was delivered.
    Disconnected(Disconnect),
    /// The inbound frames could not be decoded; see [`RecvError::Decode`].
    Decode(Arc<crate::state::codec::DecodeError>),
}

impl TryRecvError {
    /// Returns whether there was just nothing to receive now.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Disconnect, DisconnectKind, TryRecvError};
    ///
    /// let err = TryRecvError::Disconnected(Disconnect::new(DisconnectKind::Reset));
    /// assert!(!err.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        matches!(self, Self::Empty)
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("no inbound data now"),
            Self::Disconnected(_) => f.write_str("the connection failed"),
            Self::Decode(_) => f.write_str("inbound frames could not be decoded"),
        }
    }
}

impl Error for TryRecvError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Disconnected(cause) => Some(cause),
            Self::Decode(err) => Some(&**err),
            Self::Empty => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_error<E: Error + Send + Sync + 'static>() {}

    #[test]
    fn errors_are_send_sync_static() {
        assert_error::<SendError<bytes::Bytes>>();
        assert_error::<TrySendError<bytes::Bytes>>();
        assert_error::<ConnectError>();
        assert_error::<FlushError>();
        assert_error::<LinkError>();
        assert_error::<CloseError>();
        assert_error::<Disconnect>();
        assert_error::<RecvError>();
        assert_error::<TryRecvError>();
    }

    #[test]
    fn disconnected_chains_its_cause() {
        let cause = Disconnect::from_io(io::ErrorKind::BrokenPipe.into());
        let err = SendError::Disconnected { frame: 7, cause };
        let source = err.source().expect("has a source");
        assert!(source.source().is_some(), "the io error is chained too");
        assert_eq!(err.into_inner(), 7);
    }
}
