//! Layer 4: [`Connection`], the public handle both facades wrap, and how it opens.
//!
//! The handle holds the shared connection (layer 2), its [`Config`] and its [`Endpoint`], and
//! a way to reach its driver (layer 3) for link calls. Every operation it starts is one of
//! layer 2's; this module only wires the settings into the layers below. Its methods are
//! split by meaning: [`sending`], [`receiving`], [`ending`], and the rest here.

mod ending;
mod events;
mod receiving;
mod sending;

pub use ending::LastClose;
pub use events::{ConnectionEvent, ConnectionEvents};

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Instant;

use crate::config::Config;
use crate::config::EndpointOrder;
use crate::conn::close::ClosedOp;
use crate::conn::connect::Connected;
use crate::conn::link_call::LinkCall;
use crate::conn::sealed::Sealed;
use crate::conn::watermarks::WatermarkEvents;
use crate::conn::{ConnShared, ConnectionRef, Settings};
use crate::driver::{Dial, Driver, DriverShared, LinkTask, Opener};
use crate::state::backoff::Backoff;
use crate::state::effects::{Effects, Notify};
use crate::state::error::{ConnectError, LinkError, mask_credentials};
use crate::state::inbound::Inbound;
use crate::state::machine::State;
use crate::state::report::Stats;
use crate::transport::{self, Endpoint, Link, SocketOption};

/// Begins closing when the last [`Connection`] handle is dropped.
#[derive(Debug)]
struct Handle {
    shared: Arc<ConnShared>,
    config: Config,
    /// The URL the connection was opened with, then the fallbacks.
    endpoints: Arc<[Endpoint]>,
    /// The driver hosting the connection, for link calls; not kept alive by the handle.
    driver: Weak<DriverShared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut fx = Effects::new(Instant::now);
        self.shared.abandon(&mut fx);
        self.shared.apply(fx);
    }
}

/// The state machine a connection with `config` starts in.
fn state_for(config: &Config) -> State {
    let mut state = State::new(config.capacity_bytes());
    state.set_max_waiters(config.max_waiters_count());
    state.set_watermarks(config.watermark_levels());
    state.set_reserve(config.urgent_reserve_bytes());
    if let Some(encoder) = config.framing_ref().encoder() {
        state.set_header_len(encoder.header_len());
    }
    if let Some(policy) = config.reconnect_policy() {
        // A length-delimited peer cannot act on part of a frame, so a cut frame goes again.
        let atomic = policy.has_atomic_frames() || config.framing_ref().encoder().is_some();
        state.set_reconnect(atomic, policy.fails_fast(), policy.is_at_least_once());
    }
    state
}

/// Opens a link to `url` with `config`'s transport and socket options: at open, and again at
/// each reconnect attempt.
fn open_link(url: &str, config: &Config) -> Result<(Endpoint, Box<dyn Link>), ConnectError> {
    let (endpoint, mut link) = transport::open(url, config.transport_override())?;
    for option in config.socket_options() {
        match link.set_option(option) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
                log::debug!("{url}: {option:?} does not apply to this link");
            }
            Err(error) => return Err(ConnectError::Io { url: mask_credentials(url), error }),
        }
    }
    Ok((endpoint, link))
}

/// Opens the first link: to the endpoint at `start`, or, if opening it fails at once (a
/// `mem://` name nobody listens on, a host name that does not resolve), to the next ones in
/// turn. Returns the endpoint's index, the link, and how many endpoints are left to try after
/// it if the link fails to come up.
fn open_first(
    urls: &[String],
    start: usize,
    config: &Config,
) -> Result<(usize, Box<dyn Link>, usize), ConnectError> {
    let n = urls.len();
    let mut tried = 0;
    loop {
        let index = (start + tried) % n;
        match open_link(&urls[index], config) {
            Ok((_, link)) => return Ok((index, link, n - 1 - tried)),
            Err(error) if tried + 1 < n => {
                log::debug!("{error}; trying the next endpoint");
                tried += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// The inbound buffer of a connection with `config`.
fn inbound_for(config: &Config) -> Inbound {
    let mut inbound =
        Inbound::new(config.inbound_capacity_bytes(), config.framing_ref().new_decoder());
    inbound.set_discard(config.discards_inbound());
    inbound
}

/// What the layers below need of `config`.
fn settings_for(url: &str, config: &Config) -> Settings {
    Settings {
        url: url.to_string(),
        encoder: config.framing_ref().encoder().cloned(),
        close_timeout: config.close_timeout_duration(),
        connect_timeout: config.connect_timeout_duration(),
        write_bias: config.write_bias_bytes(),
        inbound_capacity: config.inbound_capacity_bytes(),
        handshake: config.handshake_hook().cloned(),
        write_stall_timeout: config.write_stall_timeout_duration(),
        inbound_silence_timeout: config.inbound_silence_timeout_duration(),
        heartbeat: config.heartbeat_settings().map(|(interval, frame)| (interval, frame.clone())),
    }
}

/// One connection: a bounded outgoing buffer, a link, and the driver thread that moves bytes
/// from one to the other. Cloning gives another handle to the same connection.
///
/// This is the shared core the facades wrap; applications use `tidegate::Client` or
/// `tidegate::AsyncClient`.
///
/// When the last handle is dropped without [`Connection::close`], the driver keeps draining
/// the buffer for the configured [close timeout](Config::close_timeout), then discards what is
/// left with a warning in the log.
///
/// # Examples
///
/// ```
/// use tidegate::Bytes;
/// use tidegate::{Config, Connection};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("connection-example").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new().capacity(1024)).unwrap();
/// conn.try_send(Bytes::from_static(b"hello")).unwrap();
/// assert_eq!(conn.stats().frames_accepted, 1);
/// ```
#[derive(Clone)]
pub struct Connection {
    handle: Arc<Handle>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection").field("url", &self.handle.endpoints[0].url()).finish()
    }
}

impl Connection {
    /// Starts opening a connection to `url` on a driver thread of its own, and returns at once;
    /// [`Connection::connected`] resolves when the link is up. Frames sent meanwhile wait in
    /// the buffer.
    ///
    /// Name resolution for `tcp://` happens here, on the calling thread. With
    /// [fallback endpoints](Config::fallback), the first link is opened to the first endpoint
    /// (or a random one, with [`EndpointOrder::Spread`]), and to the next ones in turn if
    /// opening it fails at once; an attempt that fails later moves on in the same way, on the
    /// driver's side, and a subscription to [`Connection::events`] taken now sees each one.
    ///
    /// # Errors
    ///
    /// A malformed URL, an unregistered scheme (of any endpoint), an unusable configuration
    /// (a capacity of zero), or a transport that could not start opening a link to any
    /// endpoint (the last one's error).
    ///
    /// # Blocking
    ///
    /// Only as long as the transport takes to start opening the link: for `tcp://`, while a
    /// host name is resolved (numeric addresses do not wait); `mem://` never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, ConnectError, Connection};
    ///
    /// let err = Connection::open("gopher://x", Config::new()).unwrap_err();
    /// assert!(matches!(err, ConnectError::UnknownScheme { .. }));
    /// ```
    pub fn open(url: &str, config: Config) -> Result<Self, ConnectError> {
        let io = |error| ConnectError::Io { url: mask_credentials(url), error };
        config
            .validate()
            .map_err(|reason| ConnectError::InvalidConfig { url: mask_credentials(url), reason })?;
        let urls: Vec<String> = std::iter::once(url)
            .chain(config.fallback_urls().iter().map(String::as_str))
            .map(str::to_string)
            .collect();
        let endpoints = urls
            .iter()
            .map(|url| transport::check(url, config.transport_override()).map(|(e, _)| e))
            .collect::<Result<Arc<[Endpoint]>, _>>()?;
        let start = match config.endpoint_order_value() {
            EndpointOrder::Spread => Backoff::new().pick(urls.len()),
            EndpointOrder::Failover => 0,
        };
        let (current, link, untried) = open_first(&urls, start, &config)?;
        let driver = match config.io_group_ref() {
            Some(group) => group.pick().clone(),
            None => Driver::spawn().map_err(io)?,
        };
        let shared = Arc::new(ConnShared::new(
            state_for(&config),
            inbound_for(&config),
            Arc::downgrade(driver.shared()) as Weak<dyn Notify>,
            driver.shared().reserve_id(),
            settings_for(url, &config),
        ));
        if let Some(budget) = config.budget_ref() {
            shared.join_budget(budget.shared().clone());
        }
        let masked = urls.iter().map(|url| mask_credentials(url)).collect();
        let open: Opener = {
            let config = config.clone();
            Arc::new(move |index| match open_link(&urls[index], &config) {
                Ok((_, link)) => Ok(link),
                Err(ConnectError::Io { error, .. }) => Err(error),
                Err(other) => Err(std::io::Error::other(other)),
            })
        };
        let policy = config.reconnect_policy().cloned();
        let dial = Dial { open, urls: masked, policy, current, untried };
        driver.shared().attach(shared.clone(), link, dial);
        log::debug!("opening {url}");
        let driver = Arc::downgrade(driver.shared());
        Ok(Self { handle: Arc::new(Handle { shared, config, endpoints, driver }) })
    }

    /// Returns a future that resolves once the link is up, or with the reason it never will be.
    ///
    /// # Errors
    ///
    /// [`ConnectError::Failed`] if the attempt failed ([`ConnectError::Tls`] if its TLS
    /// handshake did), [`ConnectError::TimedOut`] after the connect timeout,
    /// [`ConnectError::Closed`] if the connection was closed first.
    ///
    /// # Cancel safety
    ///
    /// See [`Connected`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("connected-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// tidegate::block_on(conn.connected()).unwrap();
    /// ```
    pub fn connected(&self) -> Connected<'_> {
        Connected::new(self.shared())
    }

    /// Runs `f` with the connection's link on the driver thread, between two rounds of I/O,
    /// and resolves to what it returns. This is how options are changed on a live link.
    ///
    /// `f` must not block: the driver serves every connection it hosts from that thread.
    ///
    /// # Errors
    ///
    /// Resolves to [`LinkError`] if the connection has ended, or ends before `f` runs.
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned operation does not stop `f`: it runs anyway, and its result is
    /// dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-call-link").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let debug = tidegate::block_on(conn.call_link(|link| format!("{link:?}"))).unwrap();
    /// assert!(debug.contains("MemLink"));
    /// ```
    pub fn call_link<R, F>(&self, f: F) -> LinkCall<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut dyn Link) -> R + Send + 'static,
    {
        let (call, result) = LinkCall::new();
        let task: LinkTask = Box::new(move |link| result.deliver(link.map(f)));
        let shared = &self.handle.shared;
        let gone = shared.lock().link_error();
        match (gone, self.handle.driver.upgrade()) {
            (None, Some(driver)) => driver.call(shared.clone(), task),
            (Some(gone), _) => task(Err(gone)),
            (None, None) => task(Err(LinkError::Closed)),
        }
        call
    }

    /// Applies a socket option to the live link.
    ///
    /// # Errors
    ///
    /// Resolves to the link's error (`Unsupported` for options it does not have), or to
    /// `NotConnected` if the connection has ended.
    ///
    /// # Cancel safety
    ///
    /// As for [`Connection::call_link`]: the option is applied even if the operation is
    /// dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::SocketOption;
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let url = format!("tcp://{}", listener.local_addr().unwrap());
    /// let conn = Connection::open(&url, Config::new()).unwrap();
    /// let applied = tidegate::block_on(async {
    ///     conn.connected().await.unwrap();
    ///     conn.set_option(SocketOption::NoDelay(false)).await
    /// });
    /// applied.unwrap();
    /// ```
    pub fn set_option(&self, option: SocketOption) -> impl Future<Output = std::io::Result<()>> {
        let call = self.call_link(move |link| link.set_option(&option));
        async move { call.await? }
    }

    /// Subscribes to the crossings of the buffer's watermarks (set with
    /// [`Config::watermarks`]). Without watermarks, the subscription only ends with the
    /// connection.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection, Watermark};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-connection-watermarks").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new().capacity(100).watermarks(80, 20))
    ///     .unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// let mut events = conn.watermarks();
    /// conn.try_send(Bytes::from(vec![0; 80])).unwrap();
    /// assert_eq!(events.try_next(), Some(Watermark::High));
    /// ```
    pub fn watermarks(&self) -> WatermarkEvents {
        WatermarkEvents::new(self.handle.shared.clone())
    }

    /// Subscribes to the events in the life of the connection's links: each link that comes
    /// up, each one lost and the fate of its frames, each reconnect attempt, and giving up.
    /// The subscription gets the events from now on, and ends after the connection ends.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-connection-events-method").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// tidegate::block_on(conn.connected()).unwrap();
    /// let mut events = conn.events();
    /// assert!(events.try_next().is_none(), "the link has stayed up since");
    /// tidegate::block_on(conn.close(Duration::from_secs(5)));
    /// assert!(tidegate::block_on(conn.closed()).is_none(), "closed in order");
    /// ```
    pub fn events(&self) -> ConnectionEvents {
        ConnectionEvents::new(self.handle.shared.clone(), self.handle.endpoints.clone())
    }

    /// Waits for the connection to end for good: after a close, after its link failed with
    /// reconnection off, or after reconnection gave up. Resolves to `None` for an orderly
    /// close, else to the cause.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-connection-closed").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// tidegate::block_on(async {
    ///     conn.connected().await.unwrap();
    ///     conn.close(Duration::from_secs(5)).await;
    ///     assert!(conn.closed().await.is_none());
    /// });
    /// ```
    pub fn closed(&self) -> ClosedOp<'_> {
        ClosedOp::new(self.shared())
    }

    /// Returns a snapshot of the connection's counters.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("stats-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new().capacity(4096)).unwrap();
    /// assert_eq!(conn.stats().capacity, 4096);
    /// ```
    pub fn stats(&self) -> Stats {
        self.shared().stats()
    }

    /// Returns the largest frame a data send can ever accept: the capacity less the urgent
    /// reserve and, with [framing](Config::framing), less the header and at most the
    /// encoder's [maximum](crate::state::codec::Encoder::max_payload_len). Larger frames are
    /// [`SendError::TooLarge`](crate::SendError::TooLarge).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::codec::LengthDelimited;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-max-frame-len").unwrap();
    /// let config = Config::new().capacity(1000).urgent_reserve(100).framing(LengthDelimited::new());
    /// let conn = Connection::open(&listener.url(), config).unwrap();
    /// assert_eq!(conn.max_frame_len(), 1000 - 100 - 4);
    /// ```
    pub fn max_frame_len(&self) -> usize {
        let config = &self.handle.config;
        let max = config.capacity_bytes() - config.urgent_reserve_bytes();
        match config.framing_ref().encoder() {
            None => max,
            Some(encoder) => max
                .saturating_sub(encoder.header_len())
                .min(encoder.max_payload_len().unwrap_or(usize::MAX)),
        }
    }

    /// Returns whether the connection no longer takes frames: half-closed
    /// ([`shutdown_write`](Connection::shutdown_write)), closing, closed or disconnected.
    /// Receiving may still go on after a half-close.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("is-closed-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// assert!(!conn.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared().is_closed()
    }

    /// Returns the settings the connection was opened with.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("config-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new().capacity(10)).unwrap();
    /// assert_eq!(conn.config().capacity_bytes(), 10);
    /// ```
    #[inline]
    pub fn config(&self) -> &Config {
        &self.handle.config
    }

    /// Returns the endpoint the connection was opened to: the first of
    /// [`endpoints`](Connection::endpoints).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("endpoint-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// assert_eq!(conn.endpoint().scheme(), "mem");
    /// ```
    pub fn endpoint(&self) -> &Endpoint {
        &self.handle.endpoints[0]
    }

    /// Returns the connection's endpoints: the one it was opened to, then its
    /// [fallbacks](Config::fallback) in order. [`ConnectionEvent`]s name one of these.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("endpoints-example").unwrap();
    /// let config = Config::new().fallback("mem://endpoints-example-standby");
    /// let conn = Connection::open(&listener.url(), config).unwrap();
    /// let names: Vec<&str> = conn.endpoints().iter().map(|e| e.address()).collect();
    /// assert_eq!(names, ["endpoints-example", "endpoints-example-standby"]);
    /// ```
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.handle.endpoints
    }
}

impl Sealed for Connection {
    #[inline]
    fn shared(&self) -> &ConnShared {
        &self.handle.shared
    }
}

impl ConnectionRef for Connection {}
