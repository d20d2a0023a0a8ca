//! The socket options a link may apply: [`SocketOption`], [`SocketOptionKind`] and the
//! [`Keepalive`] timings.

use std::time::Duration;

/// A socket option a link may apply.
///
/// Set them for a connection with [`Config::socket_option`](crate::Config::socket_option) or
/// in the URL's query (see [`tcp`]), change them on a live link with
/// [`Link::set_option`] through [`Connection::call_link`](crate::Connection::call_link), and
/// read them back with [`Link::socket_option`]. Links that do not have an option refuse it
/// with [`io::ErrorKind::Unsupported`], which [`Connection::open`](crate::Connection::open)
/// logs and skips.
///
/// [`tcp`]: crate::transport::tcp
/// [`Link::set_option`]: crate::transport::Link::set_option
/// [`Link::socket_option`]: crate::transport::Link::socket_option
/// [`io::ErrorKind::Unsupported`]: std::io::ErrorKind::Unsupported
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tidegate::transport::{Keepalive, SocketOption, SocketOptionKind};
///
/// let options = [
///     SocketOption::NoDelay(true),
///     SocketOption::SendBufferSize(256 * 1024),
///     SocketOption::Keepalive(Some(Keepalive::new().idle(Duration::from_secs(30)))),
///     SocketOption::UserTimeout(Duration::from_secs(5)),
///     SocketOption::Linger(None),
/// ];
/// assert_eq!(options[2].kind(), SocketOptionKind::Keepalive);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SocketOption {
    /// `TCP_NODELAY`: send small segments at once instead of coalescing them. TCP links turn
    /// it on when they are created: the outgoing buffer already batches frames.
    NoDelay(bool),
    /// `SO_SNDBUF`, in bytes.
    SendBufferSize(usize),
    /// `SO_RCVBUF`, in bytes.
    RecvBufferSize(usize),
    /// `SO_KEEPALIVE` with its timings, or `None` to turn keep-alive probes off. Timings left
    /// unset keep the system's defaults; read back, all three are filled in where the system
    /// reports them.
    Keepalive(Option<Keepalive>),
    /// `TCP_USER_TIMEOUT` (Linux and Android): how long written data may stay unacknowledged
    /// before the kernel ends the connection with `ETIMEDOUT`. This is what notices a peer
    /// that stopped reading for good: it also covers the probes sent into a full receive
    /// window. Zero restores the system's default.
    UserTimeout(Duration),
    /// `SO_LINGER`: `None` lets close return at once and the kernel finish sending in the
    /// background (the default); `Some(Duration::ZERO)` makes close reset the connection.
    Linger(Option<Duration>),
}

impl SocketOption {
    /// Returns which option this is, without its value.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::{SocketOption, SocketOptionKind};
    ///
    /// assert_eq!(SocketOption::NoDelay(false).kind(), SocketOptionKind::NoDelay);
    /// ```
    pub fn kind(&self) -> SocketOptionKind {
        match self {
            Self::NoDelay(_) => SocketOptionKind::NoDelay,
            Self::SendBufferSize(_) => SocketOptionKind::SendBufferSize,
            Self::RecvBufferSize(_) => SocketOptionKind::RecvBufferSize,
            Self::Keepalive(_) => SocketOptionKind::Keepalive,
            Self::UserTimeout(_) => SocketOptionKind::UserTimeout,
            Self::Linger(_) => SocketOptionKind::Linger,
        }
    }
}

/// Which [`SocketOption`] to read back with [`Link::socket_option`].
///
/// [`Link::socket_option`]: crate::transport::Link::socket_option
///
/// # Examples
///
/// ```
/// use tidegate::transport::{SocketOption, SocketOptionKind};
///
/// assert_eq!(SocketOption::Linger(None).kind(), SocketOptionKind::Linger);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SocketOptionKind {
    /// [`SocketOption::NoDelay`].
    NoDelay,
    /// [`SocketOption::SendBufferSize`].
    SendBufferSize,
    /// [`SocketOption::RecvBufferSize`].
    RecvBufferSize,
    /// [`SocketOption::Keepalive`].
    Keepalive,
    /// [`SocketOption::UserTimeout`].
    UserTimeout,
    /// [`SocketOption::Linger`].
    Linger,
}

/// The timings of TCP keep-alive probes, for [`SocketOption::Keepalive`]. A timing left unset
/// keeps the system's default.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tidegate::transport::Keepalive;
///
/// let keepalive = Keepalive::new()
///     .idle(Duration::from_secs(30))
///     .interval(Duration::from_secs(5))
///     .retries(3);
/// assert_eq!(keepalive.idle_time(), Some(Duration::from_secs(30)));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Keepalive {
    idle: Option<Duration>,
    interval: Option<Duration>,
    retries: Option<u32>,
}

impl Keepalive {
    /// Keep-alive with the system's timings.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::Keepalive;
    ///
    /// assert_eq!(Keepalive::new().idle_time(), None);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets how long the connection stays idle before the first probe (`TCP_KEEPIDLE`).
    /// Rounded down to whole seconds by the system.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::transport::Keepalive;
    ///
    /// let keepalive = Keepalive::new().idle(Duration::from_secs(60));
    /// assert_eq!(keepalive.idle_time(), Some(Duration::from_secs(60)));
    /// ```
    pub fn idle(mut self, idle: Duration) -> Self {
        self.idle = Some(idle);
        self
    }

    /// Sets the time between probes (`TCP_KEEPINTVL`; not on every system).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::transport::Keepalive;
    ///
    /// let keepalive = Keepalive::new().interval(Duration::from_secs(10));
    /// assert_eq!(keepalive.interval_time(), Some(Duration::from_secs(10)));
    /// ```
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// Sets how many unanswered probes end the connection (`TCP_KEEPCNT`; not on every
    /// system).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::Keepalive;
    ///
    /// assert_eq!(Keepalive::new().retries(4).retry_count(), Some(4));
    /// ```
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }

    /// Returns the idle time before the first probe, if set.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::transport::Keepalive;
    ///
    /// let keepalive = Keepalive::new().idle(Duration::from_secs(9));
    /// assert_eq!(keepalive.idle_time(), Some(Duration::from_secs(9)));
    /// ```
    pub fn idle_time(&self) -> Option<Duration> {
        self.idle
    }

    /// Returns the time between probes, if set.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::Keepalive;
    ///
    /// assert_eq!(Keepalive::new().interval_time(), None);
    /// ```
    pub fn interval_time(&self) -> Option<Duration> {
        self.interval
    }

    /// Returns the number of probes, if set.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::Keepalive;
    ///
    /// assert_eq!(Keepalive::new().retry_count(), None);
    /// ```
    pub fn retry_count(&self) -> Option<u32> {
        self.retries
    }
}
