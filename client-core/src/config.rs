//! Connection settings, fixed when the connection opens.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::io_group::IoGroup;
use crate::state::backoff::Reconnect;
use crate::state::budget::Budget;
use crate::state::codec::Framing;
use crate::state::handshake::Handshake;
use crate::transport::{SocketOption, Transport};

/// The default capacity of the outgoing buffer: 1 MiB.
///
/// # Examples
///
/// ```
/// use tidegate::{Config, DEFAULT_CAPACITY};
///
/// assert_eq!(DEFAULT_CAPACITY, 1024 * 1024);
/// assert_eq!(Config::new().capacity_bytes(), DEFAULT_CAPACITY);
/// ```
pub const DEFAULT_CAPACITY: usize = 1 << 20;

/// The default capacity of the inbound buffer: 256 KiB.
///
/// # Examples
///
/// ```
/// use tidegate::{Config, DEFAULT_INBOUND_CAPACITY};
///
/// assert_eq!(DEFAULT_INBOUND_CAPACITY, 256 * 1024);
/// assert_eq!(Config::new().inbound_capacity_bytes(), DEFAULT_INBOUND_CAPACITY);
/// ```
pub const DEFAULT_INBOUND_CAPACITY: usize = 256 << 10;

/// The default [write bias](Config::write_bias): at most 64 KiB read per connection per turn
/// of the driver's loop.
///
/// # Examples
///
/// ```
/// use tidegate::{Config, DEFAULT_WRITE_BIAS};
///
/// assert_eq!(Config::new().write_bias_bytes(), DEFAULT_WRITE_BIAS);
/// ```
pub const DEFAULT_WRITE_BIAS: usize = 64 << 10;

/// Settings of one connection, fixed when it opens: [`Connection::open`](crate::Connection::open)
/// takes one, and the facades' builders ([`Builder`](crate::Builder)) fill one in, with a
/// method for each setter here. A ready `Config` can start a builder:
/// [`Builder::from_config`](crate::Builder::from_config).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tidegate::Config;
///
/// let config = Config::new()
///     .capacity(256 * 1024)
///     .send_timeout(Duration::from_secs(5))
///     .nodelay(true);
/// assert_eq!(config.capacity_bytes(), 256 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    capacity: usize,
    connect_timeout: Option<Duration>,
    send_timeout: Option<Duration>,
    close_timeout: Duration,
    /// Applied after the URL's own options, so these win.
    options: Vec<SocketOption>,
    /// Used instead of the transport registered for the URL's scheme.
    transport: Option<Arc<dyn Transport>>,
    max_waiters: Option<usize>,
    io_group: Option<IoGroup>,
    /// Capacity of the inbound buffer, in bytes.
    inbound_capacity: usize,
    discard_inbound: bool,
    /// The most bytes read per connection per turn of the driver's loop.
    write_bias: usize,
    watermarks: Option<(usize, usize)>,
    urgent_reserve: usize,
    budget: Option<Budget>,
    /// Headers of frames sent, decoders of frames received; [`Framing::none`] by default.
    framing: Framing,
    /// How a lost link is replaced; `None`: a lost link ends the connection.
    reconnect: Option<Reconnect>,
    /// What every new link says first.
    handshake: Option<Hook>,
    write_stall_timeout: Option<Duration>,
    inbound_silence_timeout: Option<Duration>,
    /// The interval and the frame of the idle heartbeat.
    heartbeat: Option<(Duration, Bytes)>,
    /// URLs to try after the one the connection is opened with, in order.
    fallbacks: Vec<String>,
    endpoint_order: EndpointOrder,
}

/// Where a connection with [fallback endpoints](Config::fallback) starts in its list.
///
/// Either way, a failed attempt moves on to the next endpoint at once, a lost link is replaced
/// from the endpoint after it, and the backoff delay comes between passes over the whole list.
///
/// # Examples
///
/// ```
/// use tidegate::{Config, EndpointOrder};
///
/// let config = Config::new().fallback("tcp://10.0.0.2:6379").endpoint_order(EndpointOrder::Spread);
/// assert_eq!(config.endpoint_order_value(), EndpointOrder::Spread);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndpointOrder {
    /// The URL the connection is opened with first, then the fallbacks in the order given:
    /// a primary and its standbys. The default.
    #[default]
    Failover,
    /// A random place in the list for each connection, then on in order: many clients with
    /// the same list spread over the servers instead of all crowding the first.
    Spread,
}

/// A handshake hook, shared by the connections opened with the config.
#[derive(Clone)]
struct Hook(Arc<dyn Handshake>);

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handshake")
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            connect_timeout: Some(Duration::from_secs(10)),
            send_timeout: None,
            close_timeout: Duration::from_secs(10),
            options: Vec::new(),
            transport: None,
            max_waiters: None,
            io_group: None,
            inbound_capacity: DEFAULT_INBOUND_CAPACITY,
            discard_inbound: false,
            write_bias: DEFAULT_WRITE_BIAS,
            watermarks: None,
            urgent_reserve: 0,
            budget: None,
            framing: Framing::none(),
            reconnect: None,
            handshake: None,
            write_stall_timeout: None,
            inbound_silence_timeout: None,
            heartbeat: None,
            fallbacks: Vec::new(),
            endpoint_order: EndpointOrder::Failover,
        }
    }
}

impl Config {
    /// Returns the defaults: a 1 MiB buffer, a 10 s connect timeout, sends that wait as long as
    /// it takes, 10 s to drain the buffer when closing, no socket options beyond the URL's (TCP
    /// links turn `TCP_NODELAY` on by themselves), and the transport registered for the URL's
    /// scheme.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Config;
    /// use tidegate::transport::SocketOption;
    ///
    /// let config = Config::new();
    /// assert_eq!(config.capacity_bytes(), 1 << 20);
    /// assert_eq!(config.connect_timeout_duration(), Some(Duration::from_secs(10)));
    /// assert_eq!(config.send_timeout_duration(), None);
    /// assert_eq!(config.close_timeout_duration(), Duration::from_secs(10));
    /// assert_eq!(config.socket_options(), []);
    /// assert!(config.transport_override().is_none());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the capacity of the outgoing buffer, in bytes. A frame larger than this is refused.
    ///
    /// [`Connection::open`](crate::Connection::open) refuses a capacity of zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Config;
    ///
    /// let config = Config::new().capacity(64 * 1024);
    /// assert_eq!(config.capacity_bytes(), 64 * 1024);
    /// ```
    pub fn capacity(mut self, bytes: usize) -> Self {
        self.capacity = bytes;
        self
    }

    /// Sets how long a connection may take to be established: each attempt, to each
    /// endpoint, its handshake included.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Config;
    ///
    /// let config = Config::new().connect_timeout(Duration::from_secs(2));
    /// assert_eq!(config.connect_timeout_duration(), Some(Duration::from_secs(2)));
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Lets a connection attempt take as long as the transport does.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Config;
    ///
    /// let config = Config::new().no_connect_timeout();
    /// assert_eq!(config.connect_timeout_duration(), None);
    /// ```
    pub fn no_connect_timeout(mut self) -> Self {
        self.connect_timeout = None;
        self
    }

    /// Sets how long the facades' `send` waits for room before it returns the frame in a
    /// timeout error. By default it waits as long as it takes.
    ///
    /// [`Connection::send`](crate::Connection::send) does not read it: it takes its deadline
    /// as an argument.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Config;
    ///
    /// let config = Config::new().send_timeout(Duration::from_millis(500));
    /// assert_eq!(config.send_timeout_duration(), Some(Duration::from_millis(500)));
    /// ```
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = Some(timeout);
        self
    }

    /// Sets how long the buffer may take to drain when the last handle is dropped without
    /// `close`. Frames still buffered after that are discarded with a warning in the log.
    ///
    /// The facades' `close` also drains for this long;
    /// [`Connection::close`](crate::Connection::close) takes its timeout as an argument.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Config;
    ///
    /// let config = Config::new().close_timeout(Duration::from_secs(1));
    /// assert_eq!(config.close_timeout_duration(), Duration::from_secs(1));
    /// ```
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Turns `TCP_NODELAY` on or off (TCP links have it on unless told otherwise).
    ///
    /// Shorthand for [`Config::socket_option`] with [`SocketOption::NoDelay`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Config;
    /// use tidegate::transport::SocketOption;
    ///
    /// let config = Config::new().nodelay(false);
    /// assert_eq!(config.socket_options(), [SocketOption::NoDelay(false)]);
    /// ```
    pub fn nodelay(self, on: bool) -> Self {
        self.socket_option(SocketOption::NoDelay(on))
    }

    /// Adds a socket option, replacing an earlier one of the same kind. Links that do not have
    /// the option ignore it.
    ///
    /// The options are applied when the link is created, after those in the URL's query, so
    /// an option set here wins over the URL's. An option the link refuses for another reason
    /// than not having it makes [`Connection::open`](crate::Connection::open) fail.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Config;
    /// use tidegate::transport::SocketOption;
    ///
    /// let config = Config::new()
    ///     .socket_option(SocketOption::SendBufferSize(64 * 1024))
    ///     .socket_option(SocketOption::SendBufferSize(256 * 1024));
    /// assert_eq!(config.socket_options(), [SocketOption::SendBufferSize(256 * 1024)]);
    /// ```
    pub fn socket_option(mut self, option: SocketOption) -> Self {
        let kind = option.kind();
        self.options.retain(|o| o.kind() != kind);
        self.options.push(option);
        self
    }

    /// Opens the connection with `transport` instead of the one registered for the URL's
    /// scheme. The URL is still parsed and handed to it; its scheme is not looked up.
    ///
    /// This is how one connection gets settings of its own, such as a TLS transport with its
    /// own root certificates, a client certificate or a handshake timeout, without changing
    /// what the scheme means for every other connection.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Config;
    /// use tidegate::transport::tls::Tls;
    ///
    /// let tls = Tls::builder()
    ///     .disable_system_roots()
    ///     .handshake_timeout(Duration::from_secs(5))
    ///     .build()
    ///     .unwrap();
    /// let config = Config::new().transport(tls);
    /// assert!(config.transport_override().is_some());
    /// ```
    pub fn transport(mut self, transport: impl Transport) -> Self {
        self.transport = Some(Arc::new(transport));
        self
    }

    /// Returns the transport set with [`Config::transport`], if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Config;
    /// use tidegate::transport::tcp::Tcp;
    ///
    /// assert!(Config::new().transport_override().is_none());
    /// assert!(Config::new().transport(Tcp).transport_override().is_some());
    /// ```
    pub fn transport_override(&self) -> Option<&Arc<dyn Transport>> {
        self.transport.as_ref()
    }

    /// Returns the capacity of the outgoing buffer, in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, DEFAULT_CAPACITY};
    ///
    /// assert_eq!(Config::new().capacity_bytes(), DEFAULT_CAPACITY);
    /// assert_eq!(Config::new().capacity(100).capacity_bytes(), 100);
    /// ```
    pub fn capacity_bytes(&self) -> usize {
        self.capacity
    }

    /// Returns the connect timeout, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Config;
    ///
    /// assert_eq!(Config::new().connect_timeout_duration(), Some(Duration::from_secs(10)));
    /// assert_eq!(Config::new().no_connect_timeout().connect_timeout_duration(), None);
    /// ```
    pub fn connect_timeout_duration(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// Returns the default send timeout, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Config;
    ///
    /// assert_eq!(Config::new().send_timeout_duration(), None);
    /// let config = Config::new().send_timeout(Duration::from_secs(3));
    /// assert_eq!(config.send_timeout_duration(), Some(Duration::from_secs(3)));
    /// ```
    #[inline]
    pub fn send_timeout_duration(&self) -> Option<Duration> {
        self.send_timeout
    }

    /// Returns the drain time allowed on close and when the last handle is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Config;
    ///
    /// assert_eq!(Config::new().close_timeout_duration(), Duration::from_secs(10));
    /// ```
    pub fn close_timeout_duration(&self) -> Duration {
        self.close_timeout
    }

    /// Returns the socket options to apply, in the order they were last set.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Config;
    /// use tidegate::transport::SocketOption;
    ///
    /// let config = Config::new().socket_option(SocketOption::RecvBufferSize(8192));
    /// assert!(config.socket_options().contains(&SocketOption::RecvBufferSize(8192)));
    /// ```
    pub fn socket_options(&self) -> &[SocketOption] {
        &self.options
    }

    /// Bounds the number of senders that may wait for room at once. Past it, a send that
    /// would have to wait fails at once with
    /// [`SendError::TooManyWaiters`](crate::SendError::TooManyWaiters), carrying its frame.
    /// No bound by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Config;
    ///
    /// let config = Config::new().max_waiters(1000);
    /// assert_eq!(config.max_waiters_count(), Some(1000));
    /// ```
    pub fn max_waiters(mut self, waiters: usize) -> Self {
        self.max_waiters = Some(waiters);
        self
    }

    /// The bound on waiting senders, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(tidegate::Config::new().max_waiters_count(), None);
    /// ```
    pub fn max_waiters_count(&self) -> Option<usize> {
        self.max_waiters
    }

    /// Hosts the connection on a thread of `group` instead of a driver thread of its own.
    /// See [`IoGroup`] for the assignment policy and why a thread per connection is the
    /// default.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, IoGroup};
    ///
    /// let group = IoGroup::new(2).unwrap();
    /// let config = Config::new().io_group(&group);
    /// assert!(config.io_group_ref().is_some());
    /// ```
    pub fn io_group(mut self, group: &IoGroup) -> Self {
        self.io_group = Some(group.clone());
        self
    }

    /// The I/O group the connection is hosted on, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(tidegate::Config::new().io_group_ref().is_none());
    /// ```
    pub fn io_group_ref(&self) -> Option<&IoGroup> {
        self.io_group.as_ref()
    }

    /// Sets the buffer's watermarks: subscribers to
    /// [`Connection::watermarks`](crate::Connection::watermarks) learn when the buffered bytes
    /// reach `high` and when they drain back to `low`. Needs `low < high <= capacity`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Config;
    ///
    /// let config = Config::new().capacity(1 << 20).watermarks(768 * 1024, 256 * 1024);
    /// assert_eq!(config.watermark_levels(), Some((768 * 1024, 256 * 1024)));
    /// ```
    pub fn watermarks(mut self, high: usize, low: usize) -> Self {
        self.watermarks = Some((high, low));
        self
    }

    /// The watermarks, `(high, low)`, if set.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(tidegate::Config::new().watermark_levels(), None);
    /// ```
    pub fn watermark_levels(&self) -> Option<(usize, usize)> {
        self.watermarks
    }

    /// Keeps `bytes` of the capacity for urgent (control) frames, sent with `send_urgent`:
    /// data frames may fill the buffer only up to `capacity - bytes`, so a heartbeat or a close
    /// frame still fits when data has filled it. None by default. Needs `bytes < capacity`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Config;
    ///
    /// let config = Config::new().capacity(1 << 20).urgent_reserve(4096);
    /// assert_eq!(config.urgent_reserve_bytes(), 4096);
    /// ```
    pub fn urgent_reserve(mut self, bytes: usize) -> Self {
        self.urgent_reserve = bytes;
        self
    }

    /// The bytes kept for urgent frames.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(tidegate::Config::new().urgent_reserve_bytes(), 0);
    /// ```
    pub fn urgent_reserve_bytes(&self) -> usize {
        self.urgent_reserve
    }

    /// Sets how frames are delimited on the wire (see [`codec`](crate::state::codec)).
    ///
    /// With an encoder, every send writes the encoder's header then the payload, as one frame:
    /// the header counts in the size check and in the capacity, and errors and the close report
    /// give back the payload without it. A payload the encoder refuses, or too large for the
    /// buffer with its header, is [`SendError::TooLarge`](crate::SendError::TooLarge) with
    /// `capacity` the largest payload accepted; an empty payload is a valid frame. Byte counts
    /// ([`Stats`](crate::Stats), [`CloseReport`](crate::CloseReport),
    /// [`UnsentFrame::written`](crate::UnsentFrame::written)) are wire bytes, headers included.
    /// With a decoder, the receive side hands out decoded frames. A
    /// [`LengthDelimited`](crate::state::codec::LengthDelimited) converts into a framing of both sides.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Config;
    /// use tidegate::codec::LengthDelimited;
    ///
    /// let config = Config::new().framing(LengthDelimited::new().width(2));
    /// assert_eq!(config.framing_ref().encoder().unwrap().header_len(), 2);
    /// ```
    pub fn framing(mut self, framing: impl Into<Framing>) -> Self {
        self.framing = framing.into();
        self
    }

    /// The framing set with [`Config::framing`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(tidegate::Config::new().framing_ref().is_none());
    /// ```
    pub fn framing_ref(&self) -> &Framing {
        &self.framing
    }

    /// Sets the capacity of the inbound buffer, in bytes (256 KiB by default).
    ///
    /// The I/O driver reads what the peer sends into this buffer, and nowhere else; when it is
    /// full, the driver stops reading the link until a receive makes room, so the peer's writes
    /// stall (on TCP, its kernel's window closes). An application that never receives should
    /// expect the peer to stall once it has sent this much. With framing, the encoded size of
    /// the largest frame must fit: [`Connection::open`](crate::Connection::open) refuses a
    /// decoder whose maximum does not. Over TLS, up to one decrypted record (16 KiB) may also
    /// wait inside the TLS session while the buffer is full.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Config;
    ///
    /// let config = Config::new().inbound_capacity(64 * 1024);
    /// assert_eq!(config.inbound_capacity_bytes(), 64 * 1024);
    /// ```
    pub fn inbound_capacity(mut self, bytes: usize) -> Self {
        self.inbound_capacity = bytes;
        self
    }

    /// Returns the capacity of the inbound buffer, in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, DEFAULT_INBOUND_CAPACITY};
    ///
    /// assert_eq!(Config::new().inbound_capacity_bytes(), DEFAULT_INBOUND_CAPACITY);
    /// ```
    pub fn inbound_capacity_bytes(&self) -> usize {
        self.inbound_capacity
    }

    /// Makes the driver read what the peer sends and drop it, instead of keeping it for
    /// receives (off by default).
    ///
    /// For a producer that never receives: with the default, once the inbound buffer is full
    /// the driver stops reading, and a peer that keeps writing (acknowledgements, heartbeats)
    /// stalls, which may in turn stop it reading what the producer sends. With this on, the
    /// peer is never pushed back and nothing is kept: `Stats::bytes_received` counts what was
    /// dropped, and a receive returns only the end of the stream (`Ok(None)` or the error).
    /// It cannot be combined with a decoder ([`Config::framing`] with a receive side).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Config;
    ///
    /// let config = Config::new().discard_inbound(true);
    /// assert!(config.discards_inbound());
    /// ```
    pub fn discard_inbound(mut self, yes: bool) -> Self {
        self.discard_inbound = yes;
        self
    }

    /// Returns whether the driver drops what the peer sends.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!tidegate::Config::new().discards_inbound());
    /// ```
    pub fn discards_inbound(&self) -> bool {
        self.discard_inbound
    }

    /// Sets the balance between writing and reading (Qpid's "write biasing"): the most bytes
    /// the I/O driver reads from this connection per turn of its loop (64 KiB by default).
    ///
    /// Each turn the driver first writes all the outgoing data the link takes, then reads at
    /// most this many bytes, then goes on to the next turn (and to the other connections of
    /// its thread). So an inbound flood delays the next write by at most one budget's worth of
    /// reading: lower values favour outgoing data, higher values favour incoming throughput
    /// (fewer turns per byte read). Values below a few KiB cost throughput for nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Config;
    ///
    /// let config = Config::new().write_bias(16 * 1024);
    /// assert_eq!(config.write_bias_bytes(), 16 * 1024);
    /// ```
    pub fn write_bias(mut self, read_bytes_per_turn: usize) -> Self {
        self.write_bias = read_bytes_per_turn;
        self
    }

    /// Returns the most bytes read per connection per turn of the driver's loop.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(tidegate::Config::new().write_bias_bytes(), 64 * 1024);
    /// ```
    pub fn write_bias_bytes(&self) -> usize {
        self.write_bias
    }

    /// Makes the connection share `budget` with the other connections that use it: a data
    /// frame must fit both the connection's capacity and the budget, and senders waiting on
    /// the budget are served in order across connections. See [`Budget`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Budget, Config};
    ///
    /// let budget = Budget::new(64 << 20);
    /// let config = Config::new().capacity(4 << 20).budget(&budget);
    /// assert_eq!(config.budget_ref().map(Budget::limit), Some(64 << 20));
    /// ```
    pub fn budget(mut self, budget: &Budget) -> Self {
        self.budget = Some(budget.clone());
        self
    }

    /// The shared budget, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(tidegate::Config::new().budget_ref().is_none());
    /// ```
    pub fn budget_ref(&self) -> Option<&Budget> {
        self.budget.as_ref()
    }

    /// Reconnects with `policy` when the link is lost after it was up, instead of ending the
    /// connection; see [`Reconnect`] for what that promises, and why it is off by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, Reconnect};
    ///
    /// let config = Config::new().reconnect(Reconnect::new().max_attempts(10));
    /// assert_eq!(config.reconnect_policy().and_then(Reconnect::max_attempts_count), Some(10));
    /// ```
    pub fn reconnect(mut self, policy: Reconnect) -> Self {
        self.reconnect = Some(policy);
        self
    }

    /// The reconnect policy, if reconnection is on.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(tidegate::Config::new().reconnect_policy().is_none());
    /// ```
    pub fn reconnect_policy(&self) -> Option<&Reconnect> {
        self.reconnect.as_ref()
    }

    /// Adds an endpoint to try when the one before it in the list cannot be reached: the
    /// connection's list is the URL it is opened with, then each fallback in the order added.
    ///
    /// Each attempt to connect goes to one endpoint, and every address its host name resolves
    /// to (again at each attempt) is tried in it. An attempt that fails moves on to the next
    /// endpoint at once, so the first link comes up on the first endpoint that answers, with
    /// or without [reconnection](Config::reconnect). With reconnection, a lost link is
    /// replaced from the endpoint after it, and the policy's backoff delay comes between
    /// passes over the whole list; its attempt limit counts every endpoint tried.
    ///
    /// Every URL is checked when the connection opens: a malformed one, or one whose scheme
    /// is not registered, fails the open. The same settings, transport and handshake apply to
    /// every endpoint. [`ConnectionEvent`](crate::ConnectionEvent)s name the endpoint each
    /// attempt and each link went to.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Config;
    ///
    /// let config = Config::new().fallback("tcp://standby-1:6379").fallback("tcp://standby-2:6379");
    /// assert_eq!(config.fallback_urls(), ["tcp://standby-1:6379", "tcp://standby-2:6379"]);
    /// ```
    pub fn fallback(mut self, url: impl Into<String>) -> Self {
        self.fallbacks.push(url.into());
        self
    }

    /// The fallback endpoints' URLs, in order.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(tidegate::Config::new().fallback_urls().is_empty());
    /// ```
    pub fn fallback_urls(&self) -> &[String] {
        &self.fallbacks
    }

    /// Where the connection starts in its list of endpoints: [`EndpointOrder::Failover`] (the
    /// default) or [`EndpointOrder::Spread`]. Without fallbacks it changes nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, EndpointOrder};
    ///
    /// let config = Config::new().endpoint_order(EndpointOrder::Spread);
    /// assert_eq!(config.endpoint_order_value(), EndpointOrder::Spread);
    /// ```
    pub fn endpoint_order(mut self, order: EndpointOrder) -> Self {
        self.endpoint_order = order;
        self
    }

    /// Where the connection starts in its list of endpoints.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, EndpointOrder};
    ///
    /// assert_eq!(Config::new().endpoint_order_value(), EndpointOrder::Failover);
    /// ```
    pub fn endpoint_order_value(&self) -> EndpointOrder {
        self.endpoint_order
    }

    /// Runs `hook` on every new link, the first included, before any other frame: it sends
    /// the protocol's opening frames and may wait for the peer's answer before the link counts
    /// as up. See [`Handshake`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Bytes, Config};
    ///
    /// let config = Config::new().handshake(|| vec![Bytes::from_static(b"SELECT 2\r\n")]);
    /// assert!(config.handshake_hook().is_some());
    /// ```
    pub fn handshake(mut self, hook: impl Handshake) -> Self {
        self.handshake = Some(Hook(Arc::new(hook)));
        self
    }

    /// The handshake hook, if one is set.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(tidegate::Config::new().handshake_hook().is_none());
    /// ```
    pub fn handshake_hook(&self) -> Option<&Arc<dyn Handshake>> {
        self.handshake.as_ref().map(|hook| &hook.0)
    }

    /// Ends the link when bytes are waiting to be written and it has taken none of them for
    /// `timeout`: the peer stopped reading without closing. The cause is
    /// [`DisconnectKind::WriteStalled`](crate::DisconnectKind::WriteStalled); with
    /// [reconnection](Config::reconnect), a new link replaces it. Off by default: a slow
    /// reader is otherwise waited for as long as it takes, which the bounded buffer makes
    /// safe, and only the application knows when slow means dead.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Config;
    ///
    /// let config = Config::new().write_stall_timeout(Duration::from_secs(30));
    /// assert_eq!(config.write_stall_timeout_duration(), Some(Duration::from_secs(30)));
    /// ```
    pub fn write_stall_timeout(mut self, timeout: Duration) -> Self {
        self.write_stall_timeout = Some(timeout);
        self
    }

    /// The write-stall timeout, if set.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(tidegate::Config::new().write_stall_timeout_duration().is_none());
    /// ```
    pub fn write_stall_timeout_duration(&self) -> Option<Duration> {
        self.write_stall_timeout
    }

    /// Ends the link when nothing has arrived from the peer for `timeout`, for a protocol
    /// whose peer always talks back (answers a [heartbeat](Config::heartbeat), say). The
    /// cause is [`DisconnectKind::PeerSilent`](crate::DisconnectKind::PeerSilent); with
    /// [reconnection](Config::reconnect), a new link replaces it. Off by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Config;
    ///
    /// let config = Config::new().inbound_silence_timeout(Duration::from_secs(60));
    /// assert_eq!(config.inbound_silence_timeout_duration(), Some(Duration::from_secs(60)));
    /// ```
    pub fn inbound_silence_timeout(mut self, timeout: Duration) -> Self {
        self.inbound_silence_timeout = Some(timeout);
        self
    }

    /// The inbound-silence timeout, if set.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(tidegate::Config::new().inbound_silence_timeout_duration().is_none());
    /// ```
    pub fn inbound_silence_timeout_duration(&self) -> Option<Duration> {
        self.inbound_silence_timeout
    }

    /// Sends `frame` as an urgent frame whenever the link is up and nothing was sent for
    /// `interval`: a protocol's `PING`, to keep an idle link alive and let the peer (and an
    /// [inbound-silence timeout](Config::inbound_silence_timeout)) see that both ends live.
    /// A busy link sends none. It takes the urgent path (see
    /// [`urgent_reserve`](Config::urgent_reserve)), gets its header with framing, and
    /// counts among the frames written; when there is no room for it, it waits for the next
    /// interval.
    ///
    /// # Panics
    ///
    /// If `interval` is zero or `frame` is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Config;
    ///
    /// let config = Config::new().heartbeat(Duration::from_secs(15), "PING\r\n");
    /// assert_eq!(config.heartbeat_settings().unwrap().0, Duration::from_secs(15));
    /// ```
    pub fn heartbeat(mut self, interval: Duration, frame: impl Into<Bytes>) -> Self {
        let frame = frame.into();
        assert!(!interval.is_zero(), "a heartbeat needs an interval above zero");
        assert!(!frame.is_empty(), "a heartbeat needs a frame of at least one byte");
        self.heartbeat = Some((interval, frame));
        self
    }

    /// The heartbeat's interval and frame, if set.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(tidegate::Config::new().heartbeat_settings().is_none());
    /// ```
    pub fn heartbeat_settings(&self) -> Option<(Duration, &Bytes)> {
        self.heartbeat.as_ref().map(|(interval, frame)| (*interval, frame))
    }

    /// Checks that the settings can work together; the error says what is wrong.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.inbound_capacity == 0 {
            return Err("the inbound capacity must be at least 1 byte".into());
        }
        if self.write_bias == 0 {
            return Err("the write bias must let the driver read at least 1 byte per turn".into());
        }
        let decoder = self.framing.new_decoder();
        if self.discard_inbound && decoder.is_some() {
            return Err("a connection that discards what it receives cannot decode it".into());
        }
        if let Some(max) = decoder.and_then(|d| d.max_encoded_len())
            && max > self.inbound_capacity
        {
            return Err(format!(
                "the largest inbound frame ({max} bytes with its header) does not fit in the \
                 inbound capacity ({} bytes)",
                self.inbound_capacity
            ));
        }
        if self.capacity == 0 {
            return Err("the capacity must be at least 1 byte".into());
        }
        if self.urgent_reserve >= self.capacity {
            return Err(format!(
                "the urgent reserve ({} bytes) must be smaller than the capacity ({} bytes)",
                self.urgent_reserve, self.capacity
            ));
        }
        if let Some((high, low)) = self.watermarks
            && !(low < high && high <= self.capacity)
        {
            return Err(format!(
                "watermarks need low < high <= capacity; got low {low}, high {high}, capacity {}",
                self.capacity
            ));
        }
        Ok(())
    }
}
