//! Errors. Every error of a send carries the frame, so nothing the application handed over is
//! lost: [`SendError::into_inner`] and [`TrySendError::into_inner`] give it back.
//!
//! `Display` describes an error itself; what caused it (the [`Disconnect`], then the I/O error)
//! comes from [`Error::source`], so printing the chain shows each cause once. A
//! [`ConnectError`] says its cause's words in its own line, with the URL, and its source starts
//! below them (see the `connect` module).
//!
//! The errors of a send, which carry the frame, are in the `send` module; those of a connect
//! in `connect`; the cause of a disconnect and the errors of the other operations here.

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::Arc;

mod connect;
mod send;

pub(crate) use connect::mask_credentials;
pub use connect::{ConnectError, TlsError, TlsErrorKind};
pub use send::{FrameLimit, SendError, TrySendError};

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
    /// The [handshake hook](crate::Handshake) refused the link, or its answer did not come
    /// in time.
    HandshakeFailed,
    /// Bytes were waiting to be written and the link took none of them for the
    /// [write-stall timeout](crate::Config::write_stall_timeout): the peer stopped reading.
    WriteStalled,
    /// Nothing arrived from the peer for the
    /// [inbound-silence timeout](crate::Config::inbound_silence_timeout).
    PeerSilent,
    /// The operating system gave up on the link: the peer's TCP stopped acknowledging what
    /// was sent (`TCP_USER_TIMEOUT`, see
    /// [`SocketOption::UserTimeout`](crate::transport::SocketOption::UserTimeout)), or
    /// stopped answering keepalive probes.
    TimedOut,
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
    /// unexpected end of stream is [`DisconnectKind::PeerClosed`], the system's timeout
    /// (`ETIMEDOUT`: `TCP_USER_TIMEOUT`, or keepalive probes unanswered) is
    /// [`DisconnectKind::TimedOut`], anything else is [`DisconnectKind::Io`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use tidegate::{Disconnect, DisconnectKind};
    ///
    /// let cause = Disconnect::from_io(io::ErrorKind::BrokenPipe.into());
    /// assert_eq!(cause.kind(), DisconnectKind::Reset);
    /// let cause = Disconnect::from_io(io::ErrorKind::TimedOut.into());
    /// assert_eq!(cause.kind(), DisconnectKind::TimedOut);
    /// let cause = Disconnect::from_io(io::ErrorKind::PermissionDenied.into());
    /// assert_eq!(cause.kind(), DisconnectKind::Io);
    /// ```
    pub fn from_io(error: io::Error) -> Self {
        let kind = match error.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => DisconnectKind::Reset,
            io::ErrorKind::UnexpectedEof => DisconnectKind::PeerClosed,
            io::ErrorKind::TimedOut => DisconnectKind::TimedOut,
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

    /// Returns the typed TLS failure behind the cause, if a TLS link reported one (a refused
    /// certificate, or an alert from the server).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use tidegate::{Disconnect, DisconnectKind, TlsError, TlsErrorKind};
    ///
    /// let alert = io::Error::other(TlsError::from_report("tlsv13 alert certificate required"));
    /// let cause = Disconnect::with_io(DisconnectKind::Io, alert);
    /// assert_eq!(cause.tls_error().map(TlsError::kind), Some(TlsErrorKind::ClientCertificateRequired));
    /// assert!(Disconnect::new(DisconnectKind::Reset).tls_error().is_none());
    /// ```
    pub fn tls_error(&self) -> Option<&TlsError> {
        self.error.as_deref()?.get_ref()?.downcast_ref::<TlsError>()
    }

    /// Returns whether time ran out: the connect timeout, or an I/O error of kind
    /// [`TimedOut`](io::ErrorKind::TimedOut) (a TLS handshake timeout, a transport's own).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use tidegate::{Disconnect, DisconnectKind};
    ///
    /// assert!(Disconnect::new(DisconnectKind::ConnectTimedOut).is_timeout());
    /// let slow = io::Error::from(io::ErrorKind::TimedOut);
    /// assert!(Disconnect::with_io(DisconnectKind::ConnectFailed, slow).is_timeout());
    /// assert!(!Disconnect::new(DisconnectKind::Reset).is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        self.kind == DisconnectKind::ConnectTimedOut
            || self.error.as_ref().is_some_and(|e| e.kind() == io::ErrorKind::TimedOut)
    }
}

impl Disconnect {
    /// The [`io::ErrorKind`] a byte-stream caller (`std::io::Write`, `AsyncRead`, …) is told
    /// for this cause: a broken pipe once the peer closed, a reset as such, else the I/O
    /// error's own kind.
    pub(crate) fn io_kind(&self) -> io::ErrorKind {
        match self.kind {
            DisconnectKind::PeerClosed => io::ErrorKind::BrokenPipe,
            DisconnectKind::Reset => io::ErrorKind::ConnectionReset,
            _ => self.error.as_ref().map_or(io::ErrorKind::Other, |e| e.kind()),
        }
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
            DisconnectKind::Io => "an I/O error ended the connection",
            DisconnectKind::HandshakeFailed => "the handshake failed",
            DisconnectKind::WriteStalled => "the peer took no bytes for the write-stall timeout",
            DisconnectKind::PeerSilent => "the peer sent nothing for the inbound-silence timeout",
            DisconnectKind::TimedOut => "the system timed the connection out",
        };
        f.write_str(what)
    }
}

impl Error for Disconnect {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.error.as_deref().map(|e| e as &(dyn Error + 'static))
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

/// For byte-stream callers (`std::io::Write::flush`, `AsyncWrite::poll_flush`): the kind says
/// what happened (`TimedOut`, `NotConnected` after a close, the cause's kind after a
/// disconnect, `Deadlock` on a driver thread), and the error is inside.
///
/// # Examples
///
/// ```
/// use std::io;
/// use tidegate::FlushError;
///
/// assert_eq!(io::Error::from(FlushError::Timeout).kind(), io::ErrorKind::TimedOut);
/// ```
impl From<FlushError> for io::Error {
    fn from(err: FlushError) -> Self {
        let kind = match &err {
            FlushError::Timeout => io::ErrorKind::TimedOut,
            FlushError::Closed => io::ErrorKind::NotConnected,
            FlushError::Disconnected(cause) => cause.io_kind(),
            FlushError::WouldDeadlock => io::ErrorKind::Deadlock,
        };
        Self::new(kind, err)
    }
}

impl FlushError {
    /// Returns whether the flush gave up because its deadline passed.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::FlushError;
    ///
    /// assert!(FlushError::Timeout.is_timeout());
    /// assert!(!FlushError::Closed.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout)
    }
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

/// For byte-stream callers (`std::io::Read`, `AsyncRead::poll_read`): `TimedOut`,
/// `InvalidData` for frames that cannot be decoded, `Deadlock` on a driver thread, the cause's
/// kind after a disconnect; the error is inside.
///
/// # Examples
///
/// ```
/// use std::io;
/// use tidegate::{Disconnect, DisconnectKind, RecvError};
///
/// let reset = RecvError::Disconnected(Disconnect::new(DisconnectKind::Reset));
/// assert_eq!(io::Error::from(reset).kind(), io::ErrorKind::ConnectionReset);
/// ```
impl From<RecvError> for io::Error {
    fn from(err: RecvError) -> Self {
        let kind = match &err {
            RecvError::Timeout => io::ErrorKind::TimedOut,
            RecvError::Disconnected(cause) => cause.io_kind(),
            RecvError::Decode(_) => io::ErrorKind::InvalidData,
            RecvError::WouldDeadlock => io::ErrorKind::Deadlock,
        };
        Self::new(kind, err)
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("timed out waiting for inbound data"),
            Self::Disconnected(_) => f.write_str("receiving on a disconnected connection"),
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
            Self::Disconnected(_) => f.write_str("receiving on a disconnected connection"),
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
