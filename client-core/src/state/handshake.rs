//! The handshake hook: what a connection says first on every new link, and how it knows the
//! peer agreed, before the link counts as up.

use std::io;
use std::time::Duration;

use bytes::Bytes;

/// What a connection sends first on every link, the first one included, and the answer it
/// waits for before the link counts as up: a Redis `AUTH` and `SELECT`, a NATS `CONNECT` and
/// `PING`, an MQTT `CONNECT`.
///
/// Set with [`Config::handshake`](crate::Config::handshake). On each new link the I/O driver
/// writes the [`hello`](Handshake::hello) frames, then hands the bytes the peer has sent on
/// that link so far to [`answer`](Handshake::answer) each time more arrive, until it accepts
/// them or fails. Only then is the link up: the connection's first `connected` resolves, and
/// after a reconnection the frames put back and the new ones follow. The answer's bytes are
/// not delivered to receivers; what the peer sent after them is.
///
/// The hook runs on the driver thread and must not block: `answer` looks at the bytes it is
/// given and returns at once.
///
/// An error fails the attempt, with [`DisconnectKind::HandshakeFailed`](crate::DisconnectKind)
/// and the error as its source. With reconnection on, the next attempt follows, unless the
/// error's kind is `PermissionDenied` or `InvalidInput` (a password refused, say): that ends
/// the connection at once. On the first connection, it is the connect error.
///
/// A closure that returns the hello frames is a handshake that waits for no answer.
///
/// # Examples
///
/// A Redis login: `AUTH`, then the `+OK` it answers.
///
/// ```
/// use std::io;
/// use tidegate::{Bytes, Config, Handshake};
///
/// struct Login;
///
/// impl Handshake for Login {
///     fn hello(&self) -> Vec<Bytes> {
///         vec![Bytes::from_static(b"AUTH secret\r\n")]
///     }
///
///     fn answer(&self, received: &[u8]) -> io::Result<Option<usize>> {
///         let Some(end) = received.windows(2).position(|w| w == b"\r\n") else {
///             return Ok(None); // Not the whole line yet.
///         };
///         match &received[..end] {
///             b"+OK" => Ok(Some(end + 2)),
///             other => Err(io::Error::new(
///                 io::ErrorKind::PermissionDenied,
///                 String::from_utf8_lossy(other).into_owned(),
///             )),
///         }
///     }
/// }
///
/// assert_eq!(Login.answer(b"+O").unwrap(), None);
/// assert_eq!(Login.answer(b"+OK\r\n:1\r\n").unwrap(), Some(5));
/// assert!(Login.answer(b"-WRONGPASS\r\n").is_err());
/// let config = Config::new().handshake(Login);
/// // A closure is a handshake that waits for no answer:
/// let config = Config::new().handshake(|| vec![Bytes::from_static(b"SELECT 2\r\n")]);
/// ```
pub trait Handshake: Send + Sync + 'static {
    /// The frames to send first on a new link, in order, ahead of every frame in the buffer.
    /// With [framing](crate::Config::framing), each gets its header, like any frame.
    fn hello(&self) -> Vec<Bytes>;

    /// Looks at every byte the peer has sent on this link so far (raw, before any framing
    /// is decoded). `Ok(Some(n))`: the handshake is done and its answer was the first `n`
    /// bytes; `Ok(None)`: wait for more; an error fails the attempt.
    ///
    /// It is called once when the hello frames are written, with nothing received yet, then
    /// each time more bytes arrive. The default accepts at once, waiting for nothing.
    ///
    /// # Errors
    ///
    /// The peer refused, or its answer makes no sense: the attempt fails (see [`Handshake`]).
    fn answer(&self, received: &[u8]) -> io::Result<Option<usize>> {
        let _ = received;
        Ok(Some(0))
    }

    /// How long the hello may take to be written and answered before the attempt fails:
    /// 10 seconds unless overridden. The [connect timeout](crate::Config::connect_timeout),
    /// if set, covers the handshake as well: the link must be up within it.
    fn timeout(&self) -> Duration {
        Duration::from_secs(10)
    }
}

impl<F> Handshake for F
where
    F: Fn() -> Vec<Bytes> + Send + Sync + 'static,
{
    fn hello(&self) -> Vec<Bytes> {
        self()
    }
}
