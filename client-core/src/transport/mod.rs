//! The common transport interface, and the run-time registry of transports by URL scheme.
//!
//! A [`Transport`] opens an [`Endpoint`] (a parsed URL) and returns a [`Link`]: a non-blocking
//! byte pipe that the I/O driver reads, writes with vectored writes, flushes, shuts down and
//! configures with [`SocketOption`]s. The built-in transports implement the same public traits
//! a user plugin does, and are registered the same way, with [`register`]:
//!
//! | scheme | transport | link |
//! |---|---|---|
//! | `tcp://host:port?options` | [`tcp::Tcp`] | a non-blocking `mio` TCP stream |
//! | `tls://host:port?options` | [`tls::Tls`] | TLS (`native-tls`) over the TCP link |
//! | `unix:///path` | [`unix::Unix`] | a Unix domain stream socket (Unix only) |
//! | `mem://name` | [`mem::Mem`] | an in-process pipe for tests |
//!
//! # Choosing a transport
//!
//! [`Connection::open`](crate::Connection::open) parses the URL, then takes the transport set
//! with [`Config::transport`](crate::Config::transport) if there is one, or else the one
//! registered for the URL's scheme. The registered `tls` transport trusts the system roots
//! only; a connection that needs its own roots, a client certificate or a handshake timeout
//! sets a [`tls::Tls`] built for it on its `Config`.
//!
//! # Socket options
//!
//! Options come from two places, applied in this order, so that the second wins: the URL's
//! query (`tcp://h:1?nodelay=0&sndbuf=65536`, see [`tcp`] for the keys), then the
//! [`Config`](crate::Config)'s [`socket_option`](crate::Config::socket_option)s. A live link's
//! options can be changed and read back on the driver thread with
//! [`Connection::call_link`](crate::Connection::call_link), [`Link::set_option`] and
//! [`Link::socket_option`].
//!
//! # Examples
//!
//! ```
//! let schemes = tidegate::transport::schemes();
//! for builtin in ["mem", "tcp", "tls"] {
//!     assert!(schemes.contains(&builtin.to_string()));
//! }
//! # #[cfg(unix)]
//! assert!(schemes.contains(&"unix".to_string()));
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io::{self, IoSlice};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::state::effects::Notify;
use crate::state::error::ConnectError;

pub mod mem;
pub mod tcp;
pub mod tls;
#[cfg(unix)]
pub mod unix;

pub use mio;

/// A kind of link: it opens links to endpoints of one URL scheme.
///
/// # Implementing
///
/// `open` runs on the thread that calls [`Connection::open`](crate::Connection::open), so it
/// must not block for long: start the connection and return the link; the driver then calls
/// [`Link::poll_connect`] on its own thread until the link is up, and bounds the whole attempt
/// with the connect timeout. Name resolution is the one blocking step the built-in TCP
/// transport takes there.
///
/// Read the endpoint's query for per-URL settings, and refuse keys you do not know with an
/// [`io::ErrorKind::InvalidInput`] error naming them: a misspelt option should fail loudly.
/// A transport that wraps TCP gets the TCP keys parsed and applied by
/// [`tcp::query_options`] and [`tcp::TcpLink::connect`], and reads its own.
///
/// An error from `open` ends [`Connection::open`](crate::Connection::open) with
/// [`ConnectError::Io`]; an error from [`Link::poll_connect`] ends the attempt later with a
/// [`DisconnectKind::ConnectFailed`](crate::DisconnectKind::ConnectFailed) cause.
///
/// # Dropping
///
/// A registered transport is shared by every connection of its scheme and stays in the
/// registry until another one is registered under the same scheme; one set with
/// [`Config::transport`](crate::Config::transport) lives as long as a `Config` holding it.
/// Links it opened keep working after it is replaced or dropped: a link must own what it needs.
///
/// # Examples
///
/// A plugin that wraps TCP, registered under its own scheme, with a query key of its own; it
/// carries frames like `tcp://` does.
///
/// ```
/// use std::io::{self, Read};
/// use std::time::Duration;
/// use tidegate::transport::{self, Endpoint, Link, Transport, tcp};
/// use tidegate::{Bytes, Config, Connection};
///
/// /// `traced://host:port?tag=name`: TCP, with a log line per connection.
/// #[derive(Debug)]
/// struct Traced;
///
/// impl Transport for Traced {
///     fn open(&self, endpoint: &Endpoint) -> io::Result<Box<dyn Link>> {
///         let tag = endpoint.query("tag").unwrap_or("untagged");
///         log::info!("{tag}: opening {}", endpoint.address());
///         // The TCP keys (nodelay, sndbuf, ...) are parsed and checked; `tag` is ours.
///         let options = tcp::query_options(endpoint, &["tag"])?;
///         let mut link = tcp::TcpLink::connect(endpoint.address())?;
///         for option in &options {
///             link.set_option(option)?;
///         }
///         Ok(Box::new(link))
///     }
/// }
///
/// transport::register("traced", Traced).unwrap();
/// assert!(transport::schemes().contains(&"traced".to_string()));
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let url = format!("traced://{}?tag=doc&sndbuf=65536", listener.local_addr().unwrap());
/// let conn = Connection::open(&url, Config::new()).unwrap();
/// conn.try_send(Bytes::from_static(b"through the plugin")).unwrap();
/// tidegate::block_on(conn.flush(None)).unwrap();
/// let (mut peer, _) = listener.accept().unwrap();
/// peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
/// let mut got = [0u8; 18];
/// peer.read_exact(&mut got).unwrap();
/// assert_eq!(&got, b"through the plugin");
///
/// let typo = format!("traced://{}?sndbuff=1", listener.local_addr().unwrap());
/// assert!(Connection::open(&typo, Config::new()).is_err(), "unknown keys are refused");
/// ```
pub trait Transport: Send + Sync + fmt::Debug + 'static {
    /// Starts opening a link to `endpoint`.
    ///
    /// # Errors
    ///
    /// Any error that makes the endpoint unreachable at once: a malformed address, a name that
    /// does not resolve, a refused socket call.
    fn open(&self, endpoint: &Endpoint) -> io::Result<Box<dyn Link>>;
}

/// One open connection of a transport, driven by the I/O driver.
///
/// All operations are non-blocking: when one cannot make progress it returns
/// [`io::ErrorKind::WouldBlock`], and the link must later make the driver look at it again,
/// either through the `mio` source it registered or through the [`LinkWaker`] of its
/// [`Registration`]. Readiness may be spurious: the driver retries until `WouldBlock`.
///
/// # Implementing
///
/// A link over an OS socket registers that socket in [`Link::register`] with
/// [`Registration::register`]; a link over something else (a channel, a user-space pipe) keeps
/// [`Registration::waker`] and calls it whenever a read or write that returned `WouldBlock`
/// may now succeed. See [`tcp`] and [`mem`] for one of each. A link with a deadline of its
/// own (a handshake timeout) asks to be looked at then with [`LinkWaker::wake_at`].
///
/// A link that wraps another (as [`tls`] wraps [`tcp`]) delegates `register`, `deregister`,
/// [`Link::set_option`] and [`Link::socket_option`] to it. Options a link does not have are
/// refused with [`io::ErrorKind::Unsupported`], the default of both option methods.
///
/// # Dropping
///
/// The driver deregisters the link and drops it when the connection ends: on an orderly
/// close, after [`Link::shutdown`] and after reading the peer's end of stream (or at the close
/// timeout). Dropping must release the OS resources.
///
/// # Examples
///
/// A link not backed by an OS source: its writes wait until the far side opens a gate, the
/// way a user-space pipe waits for room, and the far side wakes the driver when it does.
///
/// ```
/// use std::io::{self, IoSlice};
/// use std::sync::{Arc, Mutex};
/// use tidegate::Bytes;
/// use tidegate::transport::{self, Endpoint, Link, LinkWaker, Registration, Transport};
/// use tidegate::{Config, Connection};
///
/// #[derive(Debug, Default)]
/// struct Gate {
///     open: bool,
///     waker: Option<LinkWaker>,
/// }
///
/// #[derive(Debug)]
/// struct GatedLink(Arc<Mutex<Gate>>);
///
/// impl Link for GatedLink {
///     fn register(&mut self, registration: &Registration<'_>) -> io::Result<()> {
///         self.0.lock().unwrap().waker = Some(registration.waker());
///         Ok(())
///     }
///
///     fn deregister(&mut self, _: &transport::mio::Registry) -> io::Result<()> {
///         self.0.lock().unwrap().waker = None;
///         Ok(())
///     }
///
///     fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
///         Err(io::ErrorKind::WouldBlock.into()) // nothing ever arrives
///     }
///
///     fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
///         if !self.0.lock().unwrap().open {
///             return Err(io::ErrorKind::WouldBlock.into());
///         }
///         Ok(bufs.iter().map(|b| b.len()).sum()) // taken, and dropped
///     }
///
///     fn shutdown(&mut self) -> io::Result<()> {
///         Ok(())
///     }
/// }
///
/// #[derive(Debug)]
/// struct Gated(Arc<Mutex<Gate>>);
///
/// impl Transport for Gated {
///     fn open(&self, _: &Endpoint) -> io::Result<Box<dyn Link>> {
///         Ok(Box::new(GatedLink(self.0.clone())))
///     }
/// }
///
/// let gate = Arc::new(Mutex::new(Gate::default()));
/// transport::register("doc-link-gated", Gated(gate.clone())).unwrap();
/// let conn = Connection::open("doc-link-gated://x", Config::new()).unwrap();
/// conn.try_send(Bytes::from_static(b"waits")).unwrap();
/// // Open the gate, then make the driver retry the write that returned `WouldBlock`.
/// let waker = {
///     let mut gate = gate.lock().unwrap();
///     gate.open = true;
///     gate.waker.clone()
/// };
/// if let Some(waker) = waker {
///     waker.wake();
/// }
/// tidegate::block_on(conn.flush(None)).unwrap();
/// assert_eq!(conn.stats().bytes_written, 5);
/// ```
pub trait Link: Send + fmt::Debug + 'static {
    /// Registers the link with the driver. Called once, on the driver thread, before any other
    /// call but `set_option`.
    ///
    /// # Errors
    ///
    /// The registration failed; the connection ends with this error.
    fn register(&mut self, registration: &Registration<'_>) -> io::Result<()>;

    /// Removes the link from the driver's poll set. Called once, before the link is dropped.
    ///
    /// # Errors
    ///
    /// Errors are logged and otherwise ignored.
    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()>;

    /// Drives the connection attempt. `Ok(true)` once the link is up, `Ok(false)` while it is
    /// still in progress (the link will become ready again).
    ///
    /// # Errors
    ///
    /// The connection attempt failed.
    fn poll_connect(&mut self) -> io::Result<bool> {
        Ok(true)
    }

    /// Reads into `buf`. `Ok(0)` means the peer closed its side.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when nothing is available; any other error ends the connection.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;

    /// Writes from `bufs`, in order, and returns how many bytes the link accepted.
    ///
    /// # The retry contract
    ///
    /// After a write returned `WouldBlock`, the driver's next write starts with the same bytes
    /// and offers at least as many (it may offer more after them): nothing is spliced in
    /// front of them (an urgent frame waits for the next frame boundary after them) and the
    /// offer is never cut shorter. A link that must retry a half-done operation with the same
    /// data can count on it. TLS must: OpenSSL has already framed and encrypted those bytes as
    /// a record, part of which may be in the socket, and it writes that record again on the
    /// retry, whatever it is given; a different or shorter buffer would duplicate or drop
    /// bytes on the wire, or fail with "bad length".
    ///
    /// # Errors
    ///
    /// `WouldBlock` when the link has no room; any other error ends the connection.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;

    /// Pushes out anything the link itself buffers.
    ///
    /// # Errors
    ///
    /// As for [`Link::write_vectored`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Ends the link's write side in an orderly way, after the last byte written (for TCP,
    /// `shutdown(Write)`: a FIN; for TLS, the close_notify alert, then that). Reading goes on:
    /// a close keeps reading until the peer's end of stream, so that no unread byte makes the
    /// link's drop a reset.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when the link cannot finish now: the driver calls it again once the link
    /// is writable, so it must be safe to call again. Any other error ends the connection.
    fn shutdown(&mut self) -> io::Result<()>;

    /// Applies a socket option.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::Unsupported`] for options the link does not have; the error of the
    /// underlying call otherwise.
    fn set_option(&mut self, option: &SocketOption) -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::Unsupported, format!("{option:?} is not supported")))
    }

    /// Reads a socket option back from the link (for TCP, with `getsockopt`), so tests and
    /// applications can check what the operating system actually applied.
    ///
    /// The value is the system's, which may differ from what was set: Linux, for one, doubles
    /// the buffer sizes it is given.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::Unsupported`] for options the link does not have (the default); the
    /// error of the underlying call otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::tcp::TcpLink;
    /// use tidegate::transport::{Link, SocketOption, SocketOptionKind};
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut link = TcpLink::connect(&listener.local_addr().unwrap().to_string()).unwrap();
    /// link.set_option(&SocketOption::NoDelay(false)).unwrap();
    /// assert_eq!(
    ///     link.socket_option(SocketOptionKind::NoDelay).unwrap(),
    ///     SocketOption::NoDelay(false)
    /// );
    /// ```
    fn socket_option(&self, kind: SocketOptionKind) -> io::Result<SocketOption> {
        Err(io::Error::new(io::ErrorKind::Unsupported, format!("{kind:?} is not supported")))
    }
}

/// A socket option a link may apply.
///
/// Set them for a connection with [`Config::socket_option`](crate::Config::socket_option) or
/// in the URL's query (see [`tcp`]), change them on a live link with
/// [`Link::set_option`] through [`Connection::call_link`](crate::Connection::call_link), and
/// read them back with [`Link::socket_option`]. Links that do not have an option refuse it
/// with [`io::ErrorKind::Unsupported`], which [`Connection::open`](crate::Connection::open)
/// logs and skips.
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

/// What a link needs to register with the driver, handed to [`Link::register`].
///
/// # Examples
///
/// A link over an OS socket registers the socket, and the driver polls it from then on:
///
/// ```
/// use std::io::{self, IoSlice, Read, Write};
/// use tidegate::transport::{Link, Registration, mio};
///
/// #[derive(Debug)]
/// struct Plain(mio::net::TcpStream);
///
/// impl Link for Plain {
///     fn register(&mut self, registration: &Registration<'_>) -> io::Result<()> {
///         registration.register(&mut self.0)
///     }
///
///     fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
///         registry.deregister(&mut self.0)
///     }
///
///     fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
///         self.0.read(buf)
///     }
///
///     fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
///         self.0.write_vectored(bufs)
///     }
///
///     fn shutdown(&mut self) -> io::Result<()> {
///         self.0.shutdown(std::net::Shutdown::Write)
///     }
/// }
/// # use tidegate::transport::{self, Endpoint, Transport};
/// # #[derive(Debug)]
/// # struct PlainTransport;
/// # impl Transport for PlainTransport {
/// #     fn open(&self, endpoint: &Endpoint) -> io::Result<Box<dyn Link>> {
/// #         let stream = std::net::TcpStream::connect(endpoint.address())?;
/// #         stream.set_nonblocking(true)?;
/// #         Ok(Box::new(Plain(mio::net::TcpStream::from_std(stream))))
/// #     }
/// # }
/// # transport::register("doc-registration-plain", PlainTransport).unwrap();
/// # let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// # let url = format!("doc-registration-plain://{}", listener.local_addr().unwrap());
/// # let conn = tidegate::Connection::open(&url, tidegate::Config::new()).unwrap();
/// # conn.try_send(tidegate::Bytes::from_static(b"hi")).unwrap();
/// # tidegate::block_on(conn.flush(None)).unwrap();
/// # let mut got = [0u8; 2];
/// # listener.accept().unwrap().0.read_exact(&mut got).unwrap();
/// # assert_eq!(&got, b"hi");
/// ```
pub struct Registration<'a> {
    registry: &'a mio::Registry,
    token: mio::Token,
    waker: LinkWaker,
}

impl<'a> Registration<'a> {
    pub(crate) fn new(registry: &'a mio::Registry, token: mio::Token, waker: LinkWaker) -> Self {
        Self { registry, token, waker }
    }

    /// Registers an OS source for both readable and writable readiness, edge-triggered.
    ///
    /// # Errors
    ///
    /// The error of [`mio::Registry::register`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use tidegate::transport::Registration;
    /// use tidegate::transport::mio::net::TcpStream;
    ///
    /// /// The `register` step of a link over a TCP socket.
    /// fn register(socket: &mut TcpStream, registration: &Registration<'_>) -> io::Result<()> {
    ///     registration.register(socket)
    /// }
    /// ```
    pub fn register<S: mio::event::Source + ?Sized>(&self, source: &mut S) -> io::Result<()> {
        self.registry.register(
            source,
            self.token,
            mio::Interest::READABLE | mio::Interest::WRITABLE,
        )
    }

    /// Returns the driver's registry, for links that manage their own registration.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use tidegate::transport::Registration;
    /// use tidegate::transport::mio::{Interest, Registry, Token, net::TcpStream};
    ///
    /// /// What a link keeps to move its registration to a replacement socket later.
    /// struct Kept {
    ///     registry: Registry,
    ///     token: Token,
    /// }
    ///
    /// fn keep(registration: &Registration<'_>) -> io::Result<Kept> {
    ///     Ok(Kept { registry: registration.registry().try_clone()?, token: registration.token() })
    /// }
    ///
    /// fn replace(kept: &Kept, old: &mut TcpStream, new: &mut TcpStream) -> io::Result<()> {
    ///     kept.registry.deregister(old)?;
    ///     kept.registry.register(new, kept.token, Interest::READABLE | Interest::WRITABLE)
    /// }
    /// ```
    pub fn registry(&self) -> &'a mio::Registry {
        self.registry
    }

    /// Returns the token the driver knows this link by. Events of a source registered under
    /// another token do not reach this link.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use tidegate::transport::Registration;
    /// use tidegate::transport::mio::{Interest, Registry, Token, net::TcpStream};
    ///
    /// /// What a link keeps to move its registration to a replacement socket later.
    /// struct Kept {
    ///     registry: Registry,
    ///     token: Token,
    /// }
    ///
    /// fn keep(registration: &Registration<'_>) -> io::Result<Kept> {
    ///     Ok(Kept { registry: registration.registry().try_clone()?, token: registration.token() })
    /// }
    ///
    /// fn replace(kept: &Kept, old: &mut TcpStream, new: &mut TcpStream) -> io::Result<()> {
    ///     kept.registry.deregister(old)?;
    ///     kept.registry.register(new, kept.token, Interest::READABLE | Interest::WRITABLE)
    /// }
    /// ```
    pub fn token(&self) -> mio::Token {
        self.token
    }

    /// Returns a handle that makes the driver look at this link, for links not backed by an
    /// OS source.
    ///
    /// # Examples
    ///
    /// The `register` step of a link over a user-space pipe; see [`Link`] for the whole link.
    ///
    /// ```
    /// use std::sync::Mutex;
    /// use tidegate::transport::{LinkWaker, Registration};
    ///
    /// /// What the link and the far side of its pipe share.
    /// struct Pipe {
    ///     waker: Option<LinkWaker>,
    /// }
    ///
    /// fn register(pipe: &Mutex<Pipe>, registration: &Registration<'_>) {
    ///     pipe.lock().unwrap().waker = Some(registration.waker());
    /// }
    /// ```
    pub fn waker(&self) -> LinkWaker {
        self.waker.clone()
    }
}

impl fmt::Debug for Registration<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration").field("token", &self.token).finish_non_exhaustive()
    }
}

/// Makes the driver look at one link again. Cheap to clone; does nothing once the driver is
/// gone.
///
/// A link gets one from [`Registration::waker`]. See [`Link`] for a whole link that uses it,
/// and the source of [`mem`].
///
/// # Examples
///
/// ```
/// use std::sync::Mutex;
/// use tidegate::transport::LinkWaker;
///
/// /// What a user-space link and the far side of its pipe share.
/// struct Pipe {
///     room: usize,
///     waker: Option<LinkWaker>,
/// }
///
/// /// The far side read `n` bytes: the link's writes may succeed again.
/// fn consumed(pipe: &Mutex<Pipe>, n: usize) {
///     let mut pipe = pipe.lock().unwrap();
///     pipe.room += n;
///     let waker = pipe.waker.clone();
///     drop(pipe);
///     if let Some(waker) = waker {
///         waker.wake();
///     }
/// }
/// ```
#[derive(Clone)]
pub struct LinkWaker {
    driver: std::sync::Weak<dyn Notify>,
    id: usize,
}

impl LinkWaker {
    pub(crate) fn new(driver: std::sync::Weak<dyn Notify>, id: usize) -> Self {
        Self { driver, id }
    }

    /// Asks the driver to retry this link's reads and writes.
    ///
    /// Call it after anything that may let a read or write that returned `WouldBlock`
    /// succeed. Extra calls are harmless: the driver retries and gets `WouldBlock` again.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::LinkWaker;
    ///
    /// /// Called by the far side of a user-space pipe after it made room.
    /// fn room_made(waker: &LinkWaker) {
    ///     waker.wake();
    /// }
    /// ```
    pub fn wake(&self) {
        if let Some(driver) = self.driver.upgrade() {
            driver.notify(self.id);
        }
    }

    /// Asks the driver to look at this link again at `at`: it then calls
    /// [`Link::poll_connect`] while the link is connecting, and retries reads and writes once
    /// it is up. A link uses it for a deadline of its own, such as a handshake timeout, that
    /// no socket event would otherwise make the driver check.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tidegate::transport::LinkWaker;
    ///
    /// /// Called when a link starts a handshake that must end within `limit`.
    /// fn handshake_started(waker: &LinkWaker, limit: Duration) -> Instant {
    ///     let deadline = Instant::now() + limit;
    ///     waker.wake_at(deadline);
    ///     deadline
    /// }
    /// ```
    pub fn wake_at(&self, at: Instant) {
        if let Some(driver) = self.driver.upgrade() {
            driver.add_timer(at, self.id);
        }
    }
}

impl fmt::Debug for LinkWaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkWaker").field("id", &self.id).finish()
    }
}

/// A parsed URL: `scheme://address?key=value&…`.
///
/// The address is everything between `://` and `?`; each transport interprets it
/// (`host:port` for TCP, a name for `mem`).
///
/// # Examples
///
/// ```
/// use tidegate::transport::Endpoint;
///
/// let e = Endpoint::parse("tcp://127.0.0.1:5672?nodelay=1").unwrap();
/// assert_eq!(e.scheme(), "tcp");
/// assert_eq!(e.address(), "127.0.0.1:5672");
/// assert_eq!(e.query("nodelay"), Some("1"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: String,
    scheme: String,
    address: String,
    query: Vec<(String, String)>,
}

impl Endpoint {
    /// Parses a URL.
    ///
    /// # Errors
    ///
    /// [`ConnectError::InvalidUrl`] when there is no `scheme://`, the scheme does not start
    /// with an ASCII letter or has characters other than ASCII letters, digits, `+`, `-` and
    /// `.`, or the address is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::ConnectError;
    /// use tidegate::transport::Endpoint;
    ///
    /// let endpoint = Endpoint::parse("mem://queue?capacity=10").unwrap();
    /// assert_eq!(endpoint.address(), "queue");
    /// let err = Endpoint::parse("localhost:5672").unwrap_err();
    /// assert!(matches!(err, ConnectError::InvalidUrl { .. }));
    /// ```
    pub fn parse(url: &str) -> Result<Self, ConnectError> {
        let invalid = |reason: &str| ConnectError::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) =
            url.split_once("://").ok_or_else(|| invalid("expected scheme://address"))?;
        let valid_scheme = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !valid_scheme {
            return Err(invalid("the scheme must be ASCII letters, digits, '+', '-' or '.'"));
        }
        let (address, query) = rest.split_once('?').unwrap_or((rest, ""));
        if address.is_empty() {
            return Err(invalid("the address is empty"));
        }
        let query = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        Ok(Self {
            url: url.to_string(),
            scheme: scheme.to_ascii_lowercase(),
            address: address.to_string(),
            query,
        })
    }

    /// Returns the URL as given.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::Endpoint;
    ///
    /// let endpoint = Endpoint::parse("TCP://Example.com:5672?a=1").unwrap();
    /// assert_eq!(endpoint.url(), "TCP://Example.com:5672?a=1");
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Returns the scheme, in lower case.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::Endpoint;
    ///
    /// assert_eq!(Endpoint::parse("TCP://127.0.0.1:5672").unwrap().scheme(), "tcp");
    /// ```
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Returns everything between `://` and `?`, as given.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::Endpoint;
    ///
    /// let endpoint = Endpoint::parse("tcp://[::1]:5672?nodelay=1").unwrap();
    /// assert_eq!(endpoint.address(), "[::1]:5672");
    /// ```
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Returns the value of the last query parameter named `key`. A parameter without `=` has
    /// the empty value.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::Endpoint;
    ///
    /// let endpoint = Endpoint::parse("tcp://host:1?retry=1&retry=2&verbose").unwrap();
    /// assert_eq!(endpoint.query("retry"), Some("2"));
    /// assert_eq!(endpoint.query("verbose"), Some(""));
    /// assert_eq!(endpoint.query("missing"), None);
    /// ```
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Returns all query parameters, in order, repeated keys included.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::Endpoint;
    ///
    /// let endpoint = Endpoint::parse("tcp://host:1?a=1&b=2&a=3").unwrap();
    /// let pairs: Vec<(&str, &str)> = endpoint.query_pairs().collect();
    /// assert_eq!(pairs, [("a", "1"), ("b", "2"), ("a", "3")]);
    /// ```
    pub fn query_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.query.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

type Registry = HashMap<String, Arc<dyn Transport>>;

static REGISTRY: LazyLock<RwLock<Registry>> = LazyLock::new(|| {
    let mut builtins: Registry = HashMap::new();
    builtins.insert("tcp".into(), Arc::new(tcp::Tcp));
    builtins.insert("mem".into(), Arc::new(mem::Mem));
    builtins.insert("tls".into(), Arc::new(tls::Tls::default()));
    #[cfg(unix)]
    builtins.insert("unix".into(), Arc::new(unix::Unix));
    RwLock::new(builtins)
});

/// Registers `transport` under `scheme`, replacing and returning the one registered before.
///
/// # Errors
///
/// [`ConnectError::InvalidUrl`] if `scheme` is not a valid URL scheme.
///
/// # Examples
///
/// ```
/// use tidegate::transport::{self, tcp::Tcp};
///
/// let before = transport::register("tcp-again", Tcp).unwrap();
/// assert!(before.is_none());
/// ```
pub fn register(
    scheme: &str,
    transport: impl Transport,
) -> Result<Option<Arc<dyn Transport>>, ConnectError> {
    let endpoint = Endpoint::parse(&format!("{scheme}://x"))?;
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    Ok(registry.insert(endpoint.scheme, Arc::new(transport)))
}

/// The transport registered for `scheme`.
///
/// # Examples
///
/// ```
/// assert!(tidegate::transport::lookup("tcp").is_some());
/// assert!(tidegate::transport::lookup("gopher").is_none());
/// ```
pub fn lookup(scheme: &str) -> Option<Arc<dyn Transport>> {
    let registry = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
    registry.get(&scheme.to_ascii_lowercase()).cloned()
}

/// The registered schemes, sorted.
///
/// # Examples
///
/// ```
/// assert!(tidegate::transport::schemes().iter().any(|s| s == "mem"));
/// ```
pub fn schemes() -> Vec<String> {
    let registry = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
    let mut schemes: Vec<String> = registry.keys().cloned().collect();
    schemes.sort();
    schemes
}

/// Parses `url`, finds its transport — `chosen` if there is one (a connection's configured
/// transport), or else the one registered for the URL's scheme — and opens a link.
pub(crate) fn open(
    url: &str,
    chosen: Option<&Arc<dyn Transport>>,
) -> Result<(Endpoint, Box<dyn Link>), ConnectError> {
    let endpoint = Endpoint::parse(url)?;
    let transport = match chosen {
        Some(transport) => transport.clone(),
        None => lookup(endpoint.scheme()).ok_or_else(|| ConnectError::UnknownScheme {
            scheme: endpoint.scheme().to_string(),
            registered: schemes(),
        })?,
    };
    let link = transport.open(&endpoint).map_err(ConnectError::Io)?;
    Ok((endpoint, link))
}

/// Parses a duration from a URL query: a whole number followed by `ms`, `s`, `m` or `h`, or
/// a bare number of seconds.
pub(crate) fn parse_duration(value: &str) -> Option<Duration> {
    let (digits, unit) =
        value.find(|c: char| !c.is_ascii_digit()).map_or((value, ""), |at| value.split_at(at));
    let n: u64 = digits.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "" | "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

/// The error for a query parameter whose value does not parse.
pub(crate) fn bad_query_value(
    endpoint: &Endpoint,
    key: &str,
    value: &str,
    expected: &str,
) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("invalid value {value:?} for {key:?} in {}: expected {expected}", endpoint.url()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_malformed_urls() {
        for bad in ["", "tcp:/x", "://x", "1tcp://x", "tc p://x", "tcp://", "tcp://?a=1"] {
            assert!(
                matches!(Endpoint::parse(bad), Err(ConnectError::InvalidUrl { .. })),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn unknown_scheme_lists_the_registered_ones() {
        let Err(ConnectError::UnknownScheme { scheme, registered }) = open("nope://x", None) else {
            panic!("expected an unknown scheme");
        };
        assert_eq!(scheme, "nope");
        assert!(registered.contains(&"tcp".to_string()));
    }

    #[test]
    fn an_override_replaces_the_scheme_but_the_url_is_still_checked() {
        let mem: Arc<dyn Transport> = Arc::new(mem::Mem);
        let chosen = Some(&mem);
        assert!(matches!(open("nope://x", chosen), Err(ConnectError::Io(_))), "mem: no listener");
        assert!(matches!(open("no-scheme", chosen), Err(ConnectError::InvalidUrl { .. })));
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        for bad in ["", "s", "1.5s", "-1", "10 s", "5d", "ms"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }
}
