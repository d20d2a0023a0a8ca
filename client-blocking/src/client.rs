//! [`Client`], the blocking handle: how it is made (connected, or wrapped around a core
//! [`Connection`]), its builder (the core's, named by [`Blocking`]), its counters and its reach
//! into the live link.

use std::io;
use std::sync::Arc;

use tidegate_core::transport::{Endpoint, Link, SocketOption};
use tidegate_core::{
    Builder, Config, ConnectError, Connection, Facade, LinkError, Stats, is_driver_thread,
};

use crate::ending::DrainOnDrop;
use crate::wait::{wait, wait_guarded};

// Named in the docs only.
#[cfg(doc)]
use tidegate_core::transport;

/// A blocking handle to one connection. Clone it to share the connection between threads.
///
/// # Dropping
///
/// Dropping the last handle to the connection (the last `Client`, once no core [`Connection`]
/// or async handle shares it either) does what std's `BufWriter` does: it closes the
/// connection and **waits** for the close, for at most the configured close timeout, so that a
/// program ending at the end of `main` loses nothing it sent. The close drains the buffer,
/// ends the write side, and reads until the peer ends its side, as [`Client::close`] does;
/// frames it could not write are dropped with a warning in the log naming how many frames and
/// bytes. Call [`Client::close`] instead to get them back in the report.
///
/// On an I/O driver thread (inside a transport plugin or a [`Client::call_link`] closure),
/// the drop never parks: it starts the close and returns at once. Dropping any other handle
/// does not wait. `std::process::exit` runs no destructors: close first.
///
/// # Blocking
///
/// Dropping the last handle parks the thread until the close has finished, for at most the
/// close timeout (10 s by default).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tidegate::Client;
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("blocking-client-example").unwrap();
/// let client = Client::connect(&listener.url()).unwrap();
/// client.send("hello").unwrap();
/// client.flush().unwrap();
/// assert_eq!(client.stats().bytes_written, 5);
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) conn: Connection,
    /// Waits for the close when the last `Client` of this family goes (see
    /// [Dropping](Client#dropping)). It holds a handle of its own, so it runs once the
    /// others are gone, and only waits if its handle is then the connection's last.
    _drain: Arc<DrainOnDrop>,
}

impl Client {
    /// Connects to `url` with the default settings, waiting until the link is up.
    ///
    /// Built-in schemes: `tcp://host:port` and `mem://name`; more can be registered with
    /// `tidegate::transport::register`.
    ///
    /// # Errors
    ///
    /// A malformed URL, an unregistered scheme, or a connection that failed or timed out.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until the connection is established or fails: at most the
    /// connect timeout (10 s by default) for each endpoint tried.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Client, ConnectError};
    ///
    /// assert!(matches!(Client::connect("no-scheme"), Err(ConnectError::InvalidUrl { .. })));
    /// ```
    pub fn connect(url: &str) -> Result<Self, ConnectError> {
        Self::builder().connect(url)
    }

    /// A builder for a connection with other settings: every setting of [`Config`], then
    /// [`connect`](Builder::connect), which waits until the link is up like
    /// [`Client::connect`].
    ///
    /// # Errors
    ///
    /// Its `connect` fails as [`Client::connect`] does, and also with
    /// [`ConnectError::InvalidConfig`] for unusable settings (see [`Blocking`]'s
    /// [`Facade::connect`]).
    ///
    /// # Blocking
    ///
    /// Its `connect` parks the calling thread until the connection is established or fails (at
    /// most the connect timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-builder-accessor-example").unwrap();
    /// let client = Client::builder().capacity(64 * 1024).connect(&listener.url()).unwrap();
    /// assert_eq!(client.stats().capacity, 64 * 1024);
    /// ```
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// Wraps a connection opened with the core; it may be shared with the async facade.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Client, Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("from-connection-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let client = Client::from_connection(conn);
    /// ```
    pub fn from_connection(conn: Connection) -> Self {
        let drain = Arc::new(DrainOnDrop(Some(conn.clone())));
        Self { conn, _drain: drain }
    }

    /// The core connection, to share it with the async facade.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("connection-accessor-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// assert_eq!(client.connection().endpoint().scheme(), "mem");
    /// ```
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Applies a socket option to the live link, for example to toggle `TCP_NODELAY`.
    ///
    /// # Errors
    ///
    /// The link's error (`Unsupported` for an option it does not have), or `NotConnected` if
    /// the connection has ended or the call was made on an I/O driver thread.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until the I/O driver has applied the option (its next turn).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Client, SocketOption};
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let client = Client::connect(&format!("tcp://{}", listener.local_addr().unwrap())).unwrap();
    /// # let (peer, _) = listener.accept().unwrap();
    /// client.set_option(SocketOption::NoDelay(false)).unwrap();
    /// # drop(peer); // ends its side, so the client's close on drop finds the end at once
    /// ```
    pub fn set_option(&self, option: SocketOption) -> io::Result<()> {
        self.call_link(move |link| link.set_option(&option))?
    }

    /// Runs `f` with the connection's link on the I/O driver's thread and returns its result:
    /// the way to reach the link of a live connection (for example to read a socket option
    /// back). `f` must not block.
    ///
    /// # Errors
    ///
    /// [`LinkError`] if the connection has ended, and [`LinkError::WouldDeadlock`] when called
    /// on an I/O driver thread (`f` still runs later, and its result is dropped).
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until `f` has run.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-call-link-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let text = client.call_link(|link| format!("{link:?}")).unwrap();
    /// assert!(text.contains("MemLink"));
    /// ```
    pub fn call_link<R, F>(&self, f: F) -> Result<R, LinkError>
    where
        R: Send + 'static,
        F: FnOnce(&mut dyn Link) -> R + Send + 'static,
    {
        let mut call = self.conn.call_link(f);
        wait_guarded(None, |waker| call.poll_with(waker)).unwrap_or(Err(LinkError::WouldDeadlock))
    }

    /// A snapshot of the connection's counters.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-stats-example").unwrap();
    /// let client = Client::builder().capacity(4096).connect(&listener.url()).unwrap();
    /// assert_eq!(client.stats().capacity, 4096);
    /// ```
    pub fn stats(&self) -> Stats {
        self.conn.stats()
    }

    /// Returns whether the connection no longer takes frames: half-closed, closing, closed or
    /// disconnected.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-is-closed-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// assert!(!client.is_closed());
    /// client.close().unwrap();
    /// assert!(client.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }
}

/// Settings for a new [`Client`]: the core's [`Builder`], made by [`Client::builder`], whose
/// `connect` parks the calling thread until the link is up and returns a [`Client`] (see
/// [`Blocking`]).
///
/// Every setting of [`Config`] has a method here, documented on [`Builder`]. To start from a
/// ready [`Config`], use [`Builder::from_config`], or call [`Builder::config`] first: it
/// replaces every setting made before it, and the settings made after it apply on top.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tidegate::{Client, Config};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("builder-example").unwrap();
/// let client = Client::builder()
///     .config(Config::new().capacity(256 * 1024))
///     .connect_timeout(Duration::from_secs(2))
///     .send_timeout(Duration::from_secs(1))
///     .close_timeout(Duration::from_secs(5))
///     .nodelay(true)
///     .connect(&listener.url())
///     .unwrap();
/// // From the config, then set on top of it.
/// assert_eq!(client.stats().capacity, 256 * 1024);
/// let timeout = client.connection().config().send_timeout_duration();
/// assert_eq!(timeout, Some(Duration::from_secs(1)));
/// ```
pub type ClientBuilder = Builder<Blocking>;

/// The blocking facade, as the type parameter of [`Builder`]: [`ClientBuilder`] is
/// `Builder<Blocking>`, and its `connect` parks the calling thread until the link is up, then
/// returns a [`Client`].
///
/// No value of it exists: it only names the facade.
///
/// # Examples
///
/// ```
/// use tidegate::{Blocking, Builder, Client, ClientBuilder};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("blocking-marker-example").unwrap();
/// let builder: Builder<Blocking> = Client::builder().capacity(4096);
/// let client: Client = builder.connect(&listener.url()).unwrap();
/// let same: ClientBuilder = Builder::new();
/// ```
#[derive(Debug)]
pub enum Blocking {}

/// Connects for [`ClientBuilder::connect`]: opens the connection, then parks the calling
/// thread until the link is up.
impl Facade for Blocking {
    type Output = Result<Client, ConnectError>;

    /// Connects to `url` with `config`, waiting until the link is up.
    ///
    /// Built-in schemes: `tcp://host:port`, `tls://host:port`, `unix:///path` (Unix only) and
    /// `mem://name`; more can be registered with [`transport::register`].
    ///
    /// # Errors
    ///
    /// A malformed URL, an unregistered scheme, unusable settings
    /// ([`ConnectError::InvalidConfig`]), or a connection that failed or timed out;
    /// [`ConnectError::WouldDeadlock`] at once on an I/O driver thread, where nothing is
    /// opened.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until the connection is established or fails: at most the
    /// connect timeout (10 s by default) for each endpoint tried.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Client, ConnectError};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-clientbuilder-connect").unwrap();
    /// let client = Client::builder().capacity(1024).connect(&listener.url()).unwrap();
    /// client.send("hello").unwrap();
    /// drop(listener);
    /// let err = Client::builder().connect("mem://doc-clientbuilder-connect").unwrap_err();
    /// assert!(matches!(err, ConnectError::Io { .. }), "nobody listens any more");
    /// ```
    fn connect(url: &str, config: Config) -> Self::Output {
        // Refuse before opening anything: the wait below could be for this very thread.
        if is_driver_thread() {
            return Err(ConnectError::WouldDeadlock { url: Endpoint::mask_credentials(url) });
        }
        let conn = Connection::open(url, config)?;
        let mut connected = conn.connected();
        wait(None, |waker| connected.poll_with(waker))?;
        Ok(Client::from_connection(conn))
    }
}
