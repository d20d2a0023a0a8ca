//! [`Builder`], the settings of a new connection, written once for every facade.
//!
//! A builder holds a [`Config`] and nothing else. Each setting forwards to the [`Config`]
//! setter of the same name, so every facade has every setting, with the same defaults and the
//! same checks (done when connecting, by [`Connection::open`]). What differs between facades is
//! only what [`Builder::connect`] returns, and that is named by the builder's type parameter, a
//! marker type implementing [`Facade`]:
//!
//! | `F` | crate | alias | [`Builder::connect`] returns |
//! |-----|-------|-------|------------------------------|
//! | `Blocking` | `tidegate-blocking` | `ClientBuilder` | `Result<Client, ConnectError>`, once the link is up |
//! | `Async` | `tidegate-async` | `AsyncClientBuilder` | `Connecting`, a future of `Result<AsyncClient, ConnectError>` |
//! | [`Connection`] | `tidegate-core` | — | `Result<Connection, ConnectError>`, without waiting |
//!
//! # Ready-made settings
//!
//! [`Builder::config`] (or [`Builder::from_config`]) starts from a ready [`Config`]: it
//! replaces every setting made before it, and the settings made after it apply on top of it.
//! Call it first.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use crate::config::Config;
use crate::connection::Connection;
use crate::io_group::IoGroup;
use crate::state::backoff::Reconnect;
use crate::state::budget::Budget;
use crate::state::codec::Framing;
use crate::state::error::ConnectError;
use crate::transport::{SocketOption, Transport};

/// How a [`Builder`] connects: implemented by the marker type a facade names its builder with.
///
/// The facades implement it for their markers (`tidegate::Blocking`, whose `connect`
/// waits for the link and returns a `Client`, and `tidegate::Async`, whose `connect`
/// returns a `Connecting` future); the core implements it for [`Connection`], whose `connect`
/// is [`Connection::open`].
///
/// # Implementing
///
/// [`Facade::connect`] receives the settings the builder collected. Open the connection with
/// [`Connection::open`], then wait for [`Connection::connected`] in the facade's own way of
/// waiting, or return something that does. The settings are checked by
/// [`Connection::open`]: a facade has nothing to check.
///
/// # Examples
///
/// A facade of one's own, here one that hands out connections together with their URL:
///
/// ```
/// use tidegate::transport::mem::MemListener;
/// use tidegate::{Builder, Config, ConnectError, Connection, Facade};
///
/// /// Connections that remember where they lead.
/// struct Named;
///
/// impl Facade for Named {
///     type Output = Result<(String, Connection), ConnectError>;
///
///     fn connect(url: &str, config: Config) -> Self::Output {
///         Ok((url.to_owned(), Connection::open(url, config)?))
///     }
/// }
///
/// let listener = MemListener::bind("doc-facade").unwrap();
/// let (url, conn) = Builder::<Named>::new().capacity(4096).connect(&listener.url()).unwrap();
/// assert_eq!(url, "mem://doc-facade");
/// assert_eq!(conn.stats().capacity, 4096);
/// ```
pub trait Facade {
    /// What [`Builder::connect`] returns: the connected handle, or a future of it, or a
    /// `Result` with a [`ConnectError`].
    type Output;

    /// Opens a connection to `url` with `config`, the settings the builder collected.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, Connection, Facade};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-facade-connect").unwrap();
    /// let conn = <Connection as Facade>::connect(&listener.url(), Config::new()).unwrap();
    /// assert_eq!(conn.endpoint().scheme(), "mem");
    /// ```
    fn connect(url: &str, config: Config) -> Self::Output;
}

/// The core's own handle: `Builder<Connection>` opens a [`Connection`] with
/// [`Connection::open`], which returns at once; [`Connection::connected`] resolves once the
/// link is up.
///
/// # Examples
///
/// ```
/// use tidegate::{Builder, Connection};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-facade-connection").unwrap();
/// let conn = Builder::<Connection>::new().capacity(1024).connect(&listener.url()).unwrap();
/// tidegate::block_on(conn.connected()).unwrap();
/// ```
impl Facade for Connection {
    type Output = Result<Self, ConnectError>;

    /// Opens the connection without waiting for the link.
    ///
    /// # Errors
    ///
    /// As [`Connection::open`]: a malformed URL, an unregistered scheme, an unusable
    /// configuration, or a transport that could not start opening the link.
    ///
    /// # Blocking
    ///
    /// As [`Connection::open`]: only while a `tcp://` host name is resolved.
    fn connect(url: &str, config: Config) -> Self::Output {
        Self::open(url, config)
    }
}

/// Settings for a new connection of facade `F`; [`Builder::connect`] opens it.
///
/// Every setting of [`Config`] has a method here, with the same default. A setting made twice
/// keeps the last value. The settings are checked when connecting: an unusable combination
/// (a capacity of zero, watermarks above the capacity, …) makes connecting fail with
/// [`ConnectError::InvalidConfig`].
///
/// The facades name it: `tidegate::ClientBuilder` is `Builder<Blocking>` and
/// `tidegate::AsyncClientBuilder` is `Builder<Async>`, made by `Client::builder()` and
/// `AsyncClient::builder()`. The examples here use `Builder<Connection>`, the core's own
/// handle, and read the settings back with [`Connection::config`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tidegate::{Builder, Connection};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-builder").unwrap();
/// let conn = Builder::<Connection>::new()
///     .capacity(256 * 1024)
///     .connect_timeout(Duration::from_secs(2))
///     .send_timeout(Duration::from_secs(1))
///     .close_timeout(Duration::from_secs(5))
///     .nodelay(true)
///     .connect(&listener.url())
///     .unwrap();
/// assert_eq!(conn.config().send_timeout_duration(), Some(Duration::from_secs(1)));
/// ```
#[must_use = "a builder does nothing until `connect`"]
pub struct Builder<F> {
    config: Config,
    /// `fn() -> F`: the builder owns no `F`, so it is `Send`, `Sync` and `Clone` whatever the
    /// marker is.
    facade: PhantomData<fn() -> F>,
}

impl<F> fmt::Debug for Builder<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("facade", &std::any::type_name::<F>())
            .field("config", &self.config)
            .finish()
    }
}

impl<F> Clone for Builder<F> {
    fn clone(&self) -> Self {
        Self { config: self.config.clone(), facade: PhantomData }
    }
}

/// The default settings, as [`Builder::new`].
///
/// # Examples
///
/// ```
/// use tidegate::{Builder, Connection, DEFAULT_CAPACITY};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-builder-default").unwrap();
/// let conn = Builder::<Connection>::default().connect(&listener.url()).unwrap();
/// assert_eq!(conn.stats().capacity, DEFAULT_CAPACITY);
/// ```
impl<F> Default for Builder<F> {
    fn default() -> Self {
        Self::new()
    }
}

/// A builder that starts from `config`, as [`Builder::from_config`].
///
/// # Examples
///
/// ```
/// use tidegate::{Builder, Config, Connection};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-builder-from").unwrap();
/// let builder: Builder<Connection> = Config::new().capacity(2048).into();
/// let conn = builder.connect(&listener.url()).unwrap();
/// assert_eq!(conn.stats().capacity, 2048);
/// ```
impl<F> From<Config> for Builder<F> {
    fn from(config: Config) -> Self {
        Self::from_config(config)
    }
}

impl<F> Builder<F> {
    /// Returns a builder with the default settings ([`Config::new`]): a 1 MiB buffer, a 10 s
    /// connect timeout, sends that wait as long as it takes, 10 s to close, no socket options
    /// beyond the URL's, and the transport registered for the URL's scheme.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Builder, Connection, DEFAULT_CAPACITY};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-builder-new").unwrap();
    /// let conn = Builder::<Connection>::new().connect(&listener.url()).unwrap();
    /// let config = conn.config();
    /// assert_eq!(config.capacity_bytes(), DEFAULT_CAPACITY);
    /// assert_eq!(config.connect_timeout_duration(), Some(Duration::from_secs(10)));
    /// assert_eq!(config.send_timeout_duration(), None);
    /// ```
    pub fn new() -> Self {
        Self::from_config(Config::new())
    }

    /// Returns a builder that starts from `config`: the same as
    /// `Builder::new().config(config)`. Settings made on it apply on top of `config`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Builder, Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let base = Config::new().capacity(4096).send_timeout(Duration::from_secs(1));
    /// let listener = MemListener::bind("doc-builder-from-config").unwrap();
    /// let conn = Builder::<Connection>::from_config(base)
    ///     .send_timeout(Duration::from_secs(3))
    ///     .connect(&listener.url())
    ///     .unwrap();
    /// assert_eq!(conn.config().capacity_bytes(), 4096);
    /// assert_eq!(conn.config().send_timeout_duration(), Some(Duration::from_secs(3)));
    /// ```
    pub fn from_config(config: Config) -> Self {
        Self { config, facade: PhantomData }
    }

    /// Changes the settings in place, through [`Config`]'s setter of the same name.
    fn map(self, set: impl FnOnce(Config) -> Config) -> Self {
        Self { config: set(self.config), facade: PhantomData }
    }

    /// Starts over from `config`: **every setting made on this builder before this call is
    /// dropped** and replaced by `config`'s, including those `config` leaves at their
    /// defaults. Settings made after this call apply on top of `config`.
    ///
    /// So call it first: `.config(base).send_timeout(t)` keeps `base` and `t`, while
    /// `.send_timeout(t).config(base)` keeps only `base`, whose send timeout may be none.
    /// [`Builder::from_config`] says the same in one call.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Builder, Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-builder-config").unwrap();
    /// let base = Config::new().capacity(1024);
    ///
    /// // After `config`: applied on top of it.
    /// let conn = Builder::<Connection>::new()
    ///     .config(base.clone())
    ///     .send_timeout(Duration::from_secs(1))
    ///     .connect(&listener.url())
    ///     .unwrap();
    /// assert_eq!(conn.config().capacity_bytes(), 1024);
    /// assert_eq!(conn.config().send_timeout_duration(), Some(Duration::from_secs(1)));
    ///
    /// // Before `config`: dropped.
    /// let conn = Builder::<Connection>::new()
    ///     .send_timeout(Duration::from_secs(1))
    ///     .config(base)
    ///     .connect(&listener.url())
    ///     .unwrap();
    /// assert_eq!(conn.config().send_timeout_duration(), None);
    /// ```
    pub fn config(self, config: Config) -> Self {
        self.map(|_| config)
    }

    /// Sets the capacity of the outgoing buffer, in bytes (1 MiB,
    /// [`DEFAULT_CAPACITY`](crate::DEFAULT_CAPACITY), by default).
    ///
    /// A frame larger than this (with its framing header, less the
    /// [urgent reserve](Builder::urgent_reserve)) is refused at once with
    /// [`SendError::TooLarge`](crate::SendError::TooLarge): it could never fit. Connecting
    /// refuses a capacity of zero with [`ConnectError::InvalidConfig`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Builder, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-builder-capacity").unwrap();
    /// let conn = Builder::<Connection>::new().capacity(4096).connect(&listener.url()).unwrap();
    /// assert_eq!(conn.stats().capacity, 4096);
    /// ```
    pub fn capacity(self, bytes: usize) -> Self {
        self.map(|c| c.capacity(bytes))
    }

    /// Sets how long connecting may take (10 s by default). Past it, connecting fails with
    /// [`ConnectError::TimedOut`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Builder, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-builder-connect-timeout").unwrap();
    /// let conn = Builder::<Connection>::new()
    ///     .connect_timeout(Duration::from_secs(2))
    ///     .connect(&listener.url())
    ///     .unwrap();
    /// assert_eq!(conn.config().connect_timeout_duration(), Some(Duration::from_secs(2)));
    /// ```
    pub fn connect_timeout(self, timeout: Duration) -> Self {
        self.map(|c| c.connect_timeout(timeout))
    }

    /// Lets connecting take as long as the transport does: no connect timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Builder, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-builder-no-connect-timeout").unwrap();
    /// let conn = Builder::<Connection>::new().no_connect_timeout().connect(&listener.url()).unwrap();
    /// assert_eq!(conn.config().connect_timeout_duration(), None);
    /// ```
    pub fn no_connect_timeout(self) -> Self {
        self.map(Config::no_connect_timeout)
    }

    /// Sets how long the facades' `send` waits for room before it returns the frame in a
    /// timeout error (no limit by default). It is the default of `Client::send`,
    /// `AsyncClient::send` and the async `FrameSink`; their `send_timeout` takes a timeout of
    /// its own.
    ///
    /// [`Connection::send`] does not read it: it takes its deadline as an argument.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Builder, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-builder-send-timeout").unwrap();
    /// let conn = Builder::<Connection>::new()
    ///     .send_timeout(Duration::from_millis(500))
    ///     .connect(&listener.url())
    ///     .unwrap();
    /// assert_eq!(conn.config().send_timeout_duration(), Some(Duration::from_millis(500)));
    /// ```
    pub fn send_timeout(self, timeout: Duration) -> Self {
        self.map(|c| c.send_timeout(timeout))
    }

    /// Sets how long a close may take to drain the buffer and end the connection in order
    /// (10 s by default): the facades' `close`, closing an async `FrameSink`, and dropping the
    /// last handle without a close. Frames still buffered after that come back in the
    /// [`CloseReport`](crate::CloseReport), or, after a drop, are discarded with a warning in
    /// the log.
    ///
    /// [`Connection::close`] takes its timeout as an argument.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Builder, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-builder-close-timeout").unwrap();
    /// let conn = Builder::<Connection>::new()
    ///     .close_timeout(Duration::from_secs(1))
    ///     .connect(&listener.url())
    ///     .unwrap();
    /// assert_eq!(conn.config().close_timeout_duration(), Duration::from_secs(1));
    /// ```
    pub fn close_timeout(self, timeout: Duration) -> Self {
        self.map(|c| c.close_timeout(timeout))
    }

    /// Turns `TCP_NODELAY` on or off (TCP links turn it on unless told otherwise). Links
    /// without the option, like `mem://`, ignore it.
    ///
    /// Shorthand for [`Builder::socket_option`] with [`SocketOption::NoDelay`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Builder, Connection};
    /// use tidegate::transport::SocketOption;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-builder-nodelay").unwrap();
    /// let conn = Builder::<Connection>::new().nodelay(false).connect(&listener.url()).unwrap();
    /// assert_eq!(conn.config().socket_options(), [SocketOption::NoDelay(false)]);
    /// ```
    pub fn nodelay(self, on: bool) -> Self {
        self.map(|c| c.nodelay(on))
    }

    /// Adds a socket option, replacing an earlier one of the same kind. Links that do not
    /// have the option ignore it.
    ///
    /// The options are applied when the link is created, after those in the URL's query, so
    /// an option set here wins over the URL's. An option the link refuses for another reason
    /// than not having it makes connecting fail.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Builder, Connection};
    /// use tidegate::transport::SocketOption;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-builder-socket-option").unwrap();
    /// let conn = Builder::<Connection>::new()
    ///     .socket_option(SocketOption::SendBufferSize(64 * 1024))
    ///     .socket_option(SocketOption::SendBufferSize(256 * 1024))
    ///     .connect(&listener.url())
    ///     .unwrap();
    /// assert_eq!(conn.config().socket_options(), [SocketOption::SendBufferSize(256 * 1024)]);
    /// ```
    pub fn socket_option(self, option: SocketOption) -> Self {
        self.map(|c| c.socket_option(option))
    }

    /// Opens the connection with `transport` instead of the one registered for the URL's
    /// scheme. The URL is still parsed and handed to it; its scheme is not looked up.
    ///
    /// This is how one connection gets settings of its own, such as a TLS transport with its
    /// own root certificates, a client certificate or a handshake timeout
    /// ([`Tls::builder`](crate::transport::tls::Tls::builder)), without changing what the
    /// scheme means for every other connection.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Builder, Connection};
    /// use tidegate::transport::mem::{Mem, MemListener};
    ///
    /// let listener = MemListener::bind("doc-builder-transport").unwrap();
    /// // No transport is registered as `test`: the one given here is used instead.
    /// let conn = Builder::<Connection>::new()
    ///     .transport(Mem)
    ///     .connect("test://doc-builder-transport")
    ///     .unwrap();
    /// assert!(conn.config().transport_override().is_some());
    /// tidegate::block_on(conn.connected()).unwrap();
    /// ```
    pub fn transport(self, transport: impl Transport) -> Self {
        self.map(|c| c.transport(transport))
    }

    /// Bounds the number of senders that may wait for room at once (no bound by default).
    /// Past it, a send that would have to wait fails at once with
    /// [`SendError::TooManyWaiters`](crate::SendError::TooManyWaiters), carrying its frame.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Builder, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-builder-max-waiters").unwrap();
    /// let conn = Builder::<Connection>::new().max_waiters(100).connect(&listener.url()).unwrap();
    /// assert_eq!(conn.config().max_waiters_count(), Some(100));
    /// ```
    pub fn max_waiters(self, waiters: usize) -> Self {
        self.map(|c| c.max_waiters(waiters))
    }

    /// Hosts the connection on a thread of `group` instead of a driver thread of its own (the
    /// default). Use a group to serve many connections with a few threads; see [`IoGroup`]
    /// for the assignment policy and why a thread per connection is the default.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Builder, Connection, IoGroup};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let group = IoGroup::new(1).unwrap();
    /// let listener = MemListener::bind("doc-builder-io-group").unwrap();
    /// let builder = Builder::<Connection>::new().io_group(&group);
    /// let a = builder.clone().connect(&listener.url()).unwrap();
    /// let b = builder.connect(&listener.url()).unwrap();
    /// assert_eq!(group.connections(), 2);
    /// ```
    pub fn io_group(self, group: &IoGroup) -> Self {
        self.map(|c| c.io_group(group))
    }

    /// Sets the buffer's watermarks (none by default): subscribers to the facades'
    /// `watermarks` (or [`Connection::watermarks`]) learn when the buffered bytes reach `high`
    /// and when they drain back to `low`, to pause and resume the application's own upstream.
    /// Needs `low < high <= capacity`, else connecting fails with
    /// [`ConnectError::InvalidConfig`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Builder, ConnectError, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-builder-watermarks").unwrap();
    /// let builder = Builder::<Connection>::new().capacity(1 << 20);
    /// let conn = builder.clone().watermarks(800_000, 200_000).connect(&listener.url()).unwrap();
    /// assert_eq!(conn.config().watermark_levels(), Some((800_000, 200_000)));
    ///
    /// let err = builder.watermarks(200_000, 800_000).connect(&listener.url()).unwrap_err();
    /// assert!(matches!(err, ConnectError::InvalidConfig { .. }));
    /// ```
    pub fn watermarks(self, high: usize, low: usize) -> Self {
        self.map(|c| c.watermarks(high, low))
    }

    /// Keeps `bytes` of the capacity for urgent (control) frames, sent with the facades'
    /// `send_urgent` (or [`Connection::send_urgent`]): data frames may fill the buffer only up
    /// to `capacity - bytes`, so a heartbeat or a close frame still fits when data has filled
    /// it. None by default; needs `bytes < capacity`, else connecting fails with
    /// [`ConnectError::InvalidConfig`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Builder, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-builder-urgent-reserve").unwrap();
    /// let conn = Builder::<Connection>::new()
    ///     .capacity(1 << 20)
    ///     .urgent_reserve(4096)
    ///     .connect(&listener.url())
    ///     .unwrap();
    /// assert_eq!(conn.max_frame_len(), (1 << 20) - 4096);
    /// ```
    pub fn urgent_reserve(self, bytes: usize) -> Self {
        self.map(|c| c.urgent_reserve(bytes))
    }

    /// Sets how frames are delimited on the wire (see [`codec`](crate::codec)); none by
    /// default.
    ///
    /// With an encoder, every send writes the encoder's header then the payload, as one frame:
    /// the header counts in the size check and in the capacity, and errors and the close report
    /// give back the payload without it. With a decoder, the receive side hands out decoded
    /// frames. A [`LengthDelimited`](crate::codec::LengthDelimited) converts into a framing of
    /// both sides. See [`Config::framing`] for the details.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Builder, Connection};
    /// use tidegate::codec::LengthDelimited;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-builder-framing").unwrap();
    /// let conn = Builder::<Connection>::new()
    ///     .capacity(1024)
    ///     .framing(LengthDelimited::new().width(2))
    ///     .connect(&listener.url())
    ///     .unwrap();
    /// assert_eq!(conn.max_frame_len(), 1024 - 2, "the header counts in the capacity");
    /// ```
    pub fn framing(self, framing: impl Into<Framing>) -> Self {
        self.map(|c| c.framing(framing))
    }

    /// Sets the capacity of the inbound buffer, in bytes (256 KiB,
    /// [`DEFAULT_INBOUND_CAPACITY`](crate::DEFAULT_INBOUND_CAPACITY), by default).
    ///
    /// The I/O driver reads what the peer sends into this buffer, and nowhere else; when it is
    /// full, the driver stops reading the link until a receive makes room, so the peer's writes
    /// stall. See [`Config::inbound_capacity`] for framing and TLS.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Builder, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-builder-inbound-capacity").unwrap();
    /// let conn = Builder::<Connection>::new().inbound_capacity(8192).connect(&listener.url()).unwrap();
    /// assert_eq!(conn.stats().inbound_capacity, 8192);
    /// ```
    pub fn inbound_capacity(self, bytes: usize) -> Self {
        self.map(|c| c.inbound_capacity(bytes))
    }

    /// Makes the driver read what the peer sends and drop it, instead of keeping it for
    /// receives (off by default), so a producer that never receives never pushes back on its
    /// peer. It cannot be combined with a decoder. See [`Config::discard_inbound`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Builder, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-builder-discard-inbound").unwrap();
    /// let conn = Builder::<Connection>::new().discard_inbound(true).connect(&listener.url()).unwrap();
    /// assert!(conn.config().discards_inbound());
    /// ```
    pub fn discard_inbound(self, yes: bool) -> Self {
        self.map(|c| c.discard_inbound(yes))
    }

    /// Sets the balance between writing and reading (Qpid's "write biasing"): the most bytes
    /// the I/O driver reads from this connection per turn of its loop, after writing what the
    /// link takes (64 KiB, [`DEFAULT_WRITE_BIAS`](crate::DEFAULT_WRITE_BIAS), by default).
    /// Lower values favour outgoing data under an inbound flood; see [`Config::write_bias`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Builder, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-builder-write-bias").unwrap();
    /// let conn = Builder::<Connection>::new().write_bias(16 * 1024).connect(&listener.url()).unwrap();
    /// assert_eq!(conn.config().write_bias_bytes(), 16 * 1024);
    /// ```
    pub fn write_bias(self, read_bytes_per_turn: usize) -> Self {
        self.map(|c| c.write_bias(read_bytes_per_turn))
    }

    /// Makes the connection share `budget` with the other connections that use it: a data
    /// frame then waits until it fits both the connection's capacity and the budget, and
    /// senders waiting on the budget are served in order across connections. See [`Budget`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Budget, Builder, Bytes, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let budget = Budget::new(64 * 1024);
    /// let listener = MemListener::bind("doc-builder-budget").unwrap();
    /// let builder = Builder::<Connection>::new().capacity(48 * 1024).budget(&budget);
    /// let a = builder.clone().connect(&listener.url()).unwrap();
    /// let b = builder.connect(&listener.url()).unwrap();
    /// // The peer of `a` reads nothing, so what `a` buffers stays counted.
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// a.try_send(Bytes::from(vec![0u8; 40 * 1024])).unwrap();
    /// // `b` has room of its own, but the budget does not.
    /// assert!(b.try_send(Bytes::from(vec![0u8; 40 * 1024])).unwrap_err().is_full());
    /// ```
    pub fn budget(self, budget: &Budget) -> Self {
        self.map(|c| c.budget(budget))
    }

    /// Reconnects with `policy` when the link is lost after it was up: every handle keeps
    /// working, frames that never reached the lost link are sent first on the new one, and
    /// what may have been delivered is counted. Off by default; see [`Reconnect`] for why, and
    /// for each frame's fate.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Builder, Connection, Reconnect};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-builder-reconnect").unwrap();
    /// let conn = Builder::<Connection>::new()
    ///     .reconnect(Reconnect::new().initial_delay(Duration::from_millis(20)))
    ///     .connect(&listener.url())
    ///     .unwrap();
    /// assert_eq!(conn.stats().reconnect_attempts, 0);
    /// ```
    pub fn reconnect(self, policy: Reconnect) -> Self {
        self.map(|c| c.reconnect(policy))
    }

    /// Adds an endpoint to try when the one before it cannot be reached (see
    /// [`Config::fallback`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Builder, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-builder-fallback").unwrap();
    /// let conn = Builder::<Connection>::new()
    ///     .fallback(listener.url())
    ///     .connect("mem://doc-builder-fallback-nobody-listens")
    ///     .unwrap();
    /// tidegate::block_on(conn.connected()).unwrap();
    /// assert_eq!(conn.endpoints().len(), 2);
    /// ```
    pub fn fallback(self, url: impl Into<String>) -> Self {
        self.map(|c| c.fallback(url))
    }

    /// Where the connection starts in its list of endpoints (see [`Config::endpoint_order`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Builder, Connection, EndpointOrder};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-builder-endpoint-order").unwrap();
    /// let conn = Builder::<Connection>::new()
    ///     .endpoint_order(EndpointOrder::Spread)
    ///     .connect(&listener.url())
    ///     .unwrap();
    /// assert_eq!(conn.endpoints().len(), 1);
    /// ```
    pub fn endpoint_order(self, order: crate::EndpointOrder) -> Self {
        self.map(|c| c.endpoint_order(order))
    }

    /// Runs `hook` on every new link, the first included, before any other frame: the
    /// protocol's opening frames, and the answer to wait for before the link counts as up.
    /// See [`Handshake`](crate::Handshake).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Builder, Bytes, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-builder-handshake").unwrap();
    /// let conn = Builder::<Connection>::new()
    ///     .handshake(|| vec![Bytes::from_static(b"HELLO\n")])
    ///     .connect(&listener.url())
    ///     .unwrap();
    /// assert!(!conn.is_closed());
    /// ```
    pub fn handshake(self, hook: impl crate::Handshake) -> Self {
        self.map(|c| c.handshake(hook))
    }

    /// Ends the link when bytes wait and it takes none of them for `timeout` (see
    /// [`Config::write_stall_timeout`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Builder, Connection};
    ///
    /// let builder = Builder::<Connection>::new().write_stall_timeout(Duration::from_secs(30));
    /// # let _ = builder;
    /// ```
    pub fn write_stall_timeout(self, timeout: Duration) -> Self {
        self.map(|c| c.write_stall_timeout(timeout))
    }

    /// Ends the link when nothing arrives from the peer for `timeout` (see
    /// [`Config::inbound_silence_timeout`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Builder, Connection};
    ///
    /// let builder = Builder::<Connection>::new().inbound_silence_timeout(Duration::from_secs(60));
    /// # let _ = builder;
    /// ```
    pub fn inbound_silence_timeout(self, timeout: Duration) -> Self {
        self.map(|c| c.inbound_silence_timeout(timeout))
    }

    /// Sends `frame`, urgent, whenever nothing was sent for `interval` (see
    /// [`Config::heartbeat`]).
    ///
    /// # Panics
    ///
    /// If `interval` is zero or `frame` is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Builder, Connection};
    ///
    /// let builder = Builder::<Connection>::new().heartbeat(Duration::from_secs(15), "PING\r\n");
    /// # let _ = builder;
    /// ```
    pub fn heartbeat(self, interval: Duration, frame: impl Into<bytes::Bytes>) -> Self {
        self.map(|c| c.heartbeat(interval, frame))
    }

    /// Connects to `url` with these settings, the way the facade `F` connects (see
    /// [`Facade`]):
    ///
    /// - `ClientBuilder` (`tidegate_blocking`) parks the calling thread until the link is up
    ///   and returns `Result<Client, ConnectError>`;
    /// - `AsyncClientBuilder` (`tidegate_async`) returns a `Connecting` future, which resolves
    ///   to `Result<AsyncClient, ConnectError>` once the link is up;
    /// - `Builder<Connection>` returns the [`Connection`] at once, as [`Connection::open`].
    ///
    /// Built-in schemes: `tcp://host:port`, `tls://host:port`, `unix:///path` (Unix only) and
    /// `mem://name`; more can be registered with [`transport::register`](crate::transport::register).
    ///
    /// # Errors
    ///
    /// Every facade reports a [`ConnectError`]: a malformed URL, an unregistered scheme,
    /// unusable settings ([`ConnectError::InvalidConfig`]), and, for the facades that wait
    /// for the link, a connection that failed or timed out.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Builder, ConnectError, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-builder-connect").unwrap();
    /// let conn = Builder::<Connection>::new().capacity(1024).connect(&listener.url()).unwrap();
    /// tidegate::block_on(conn.connected()).unwrap();
    ///
    /// let err = Builder::<Connection>::new().capacity(0).connect(&listener.url()).unwrap_err();
    /// assert!(matches!(err, ConnectError::InvalidConfig { .. }));
    /// ```
    pub fn connect(self, url: &str) -> F::Output
    where
        F: Facade,
    {
        F::connect(url, self.config)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::state::codec::LengthDelimited;
    use crate::transport::mem::Mem;

    /// A facade that hands back the settings it would connect with.
    struct Settings;

    impl Facade for Settings {
        type Output = Config;

        fn connect(_url: &str, config: Config) -> Config {
            config
        }
    }

    fn settings(builder: Builder<Settings>) -> Config {
        builder.connect("mem://unused")
    }

    #[test]
    fn a_setting_after_config_is_kept() {
        let base = Config::new().capacity(1024).send_timeout(Duration::from_secs(1));
        let config = settings(Builder::new().config(base).send_timeout(Duration::from_secs(3)));
        assert_eq!(config.capacity_bytes(), 1024, "kept from the config");
        assert_eq!(config.send_timeout_duration(), Some(Duration::from_secs(3)), "set on top");
    }

    #[test]
    fn a_setting_before_config_is_replaced() {
        let config = settings(Builder::new().capacity(8).config(Config::new().max_waiters(3)));
        assert_eq!(config.capacity_bytes(), crate::DEFAULT_CAPACITY);
        assert_eq!(config.max_waiters_count(), Some(3));
    }

    #[test]
    fn from_config_and_from_start_from_the_config() {
        let base = || Config::new().capacity(2048);
        let built = settings(Builder::from_config(base()).urgent_reserve(16));
        assert_eq!((built.capacity_bytes(), built.urgent_reserve_bytes()), (2048, 16));
        let converted = settings(Builder::from(base()));
        assert_eq!(converted.capacity_bytes(), 2048);
    }

    #[test]
    fn every_setting_reaches_the_config() {
        let group = IoGroup::new(1).unwrap();
        let budget = Budget::new(1 << 20);
        let config = settings(
            Builder::default()
                .capacity(4096)
                .connect_timeout(Duration::from_secs(2))
                .send_timeout(Duration::from_secs(3))
                .close_timeout(Duration::from_secs(4))
                .nodelay(false)
                .socket_option(SocketOption::RecvBufferSize(8192))
                .transport(Mem)
                .max_waiters(5)
                .io_group(&group)
                .watermarks(3000, 1000)
                .urgent_reserve(64)
                .framing(LengthDelimited::new().width(2))
                .inbound_capacity(2048)
                .discard_inbound(true)
                .write_bias(512)
                .budget(&budget),
        );
        assert_eq!(config.capacity_bytes(), 4096);
        assert_eq!(config.connect_timeout_duration(), Some(Duration::from_secs(2)));
        assert_eq!(config.send_timeout_duration(), Some(Duration::from_secs(3)));
        assert_eq!(config.close_timeout_duration(), Duration::from_secs(4));
        assert_eq!(
            config.socket_options(),
            [SocketOption::NoDelay(false), SocketOption::RecvBufferSize(8192)]
        );
        assert!(config.transport_override().is_some());
        assert_eq!(config.max_waiters_count(), Some(5));
        assert!(config.io_group_ref().is_some());
        assert_eq!(config.watermark_levels(), Some((3000, 1000)));
        assert_eq!(config.urgent_reserve_bytes(), 64);
        assert_eq!(config.framing_ref().encoder().map(|e| e.header_len()), Some(2));
        assert_eq!(config.inbound_capacity_bytes(), 2048);
        assert!(config.discards_inbound());
        assert_eq!(config.write_bias_bytes(), 512);
        assert_eq!(config.budget_ref().map(Budget::limit), Some(1 << 20));

        let config =
            settings(Builder::new().connect_timeout(Duration::from_secs(1)).no_connect_timeout());
        assert_eq!(config.connect_timeout_duration(), None);
    }

    #[test]
    fn debug_names_the_facade() {
        let debug = format!("{:?}", Builder::<Settings>::new());
        assert!(debug.contains("Settings"), "{debug}");
    }
}
