//! [`AsyncClient`], its builder (the core's, named by [`Async`]), and the future that connects
//! it; also the handle's counters and its reach into the live link.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::FusedFuture;
use tidegate_core::transport::{Link, SocketOption};
use tidegate_core::{Builder, Config, ConnectError, Connection, Facade, LinkCall, Stats};

// Named in the docs only.
#[cfg(doc)]
use crate::sink::FrameSink;

/// An async handle to one connection. Clone it to share the connection between tasks.
///
/// All clones share one bounded outgoing buffer and one FIFO line of waiting senders, with
/// each other, with the [`FrameSink`]s made from them, and with blocking clients built on the
/// same [`Connection`] (see [`AsyncClient::from_connection`]).
///
/// # Dropping
///
/// A `Drop` cannot wait in async code, so dropping the last handle to the connection without
/// a close only *starts* one: the driver drains the buffer for the configured close timeout
/// and ends the connection in order, then discards what is left with a warning in the log
/// naming the frames and bytes. Nothing waits for that: if the process exits first (the end of
/// `main`, the runtime shutting down), what was still buffered is lost. **Await
/// [`AsyncClient::close`] before the end** to drain, read the peer's end of stream, and receive
/// the unsent frames.
///
/// # Examples
///
/// ```
/// use tidegate::AsyncClient;
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("async-client-example").unwrap();
/// tidegate::block_on(async {
///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
///     let other = client.clone();
///     client.send("hello ").await.unwrap();
///     other.send("world").await.unwrap();
///     client.flush().await.unwrap();
///     assert_eq!(other.stats().bytes_written, 11);
/// });
/// ```
#[derive(Debug, Clone)]
pub struct AsyncClient {
    pub(crate) conn: Connection,
}

impl AsyncClient {
    /// Connects to `url` with the default settings; the future resolves once the link is up.
    ///
    /// Built-in schemes: `tcp://host:port` and `mem://name`; more can be registered with
    /// `tidegate::transport::register`.
    ///
    /// The connection attempt starts at this call, on the core's driver thread; the future
    /// only waits for its outcome. The host name of a `tcp://` URL is resolved on the calling
    /// thread during this call: in latency-sensitive async code, pass an IP address.
    ///
    /// # Errors
    ///
    /// The future resolves to an error for a malformed URL, an unregistered scheme, or a
    /// connection that failed or timed out (10 s by default).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the connection: the attempt is abandoned.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{AsyncClient, ConnectError};
    ///
    /// let result = tidegate::block_on(AsyncClient::connect("no-scheme"));
    /// assert!(matches!(result, Err(ConnectError::InvalidUrl { .. })));
    /// ```
    pub fn connect(url: &str) -> Connecting {
        Self::builder().connect(url)
    }

    /// Returns a builder for a connection with other settings: every setting of [`Config`],
    /// then [`connect`](Builder::connect), which returns a [`Connecting`] future like
    /// [`AsyncClient::connect`].
    ///
    /// # Errors
    ///
    /// Its future resolves to the errors of [`AsyncClient::connect`], and also to
    /// [`ConnectError::InvalidConfig`] for unusable settings (see [`Async`]'s
    /// [`Facade::connect`]).
    ///
    /// # Cancel safety
    ///
    /// As [`AsyncClient::connect`]: dropping the future abandons the attempt.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-builder-accessor-example").unwrap();
    /// let connecting = AsyncClient::builder().capacity(64 * 1024).connect(&listener.url());
    /// let client = tidegate::block_on(connecting).unwrap();
    /// assert_eq!(client.stats().capacity, 64 * 1024);
    /// ```
    pub fn builder() -> AsyncClientBuilder {
        AsyncClientBuilder::new()
    }

    /// Wraps a connection opened with the core. Build a `tidegate::Client` on a clone
    /// of the same connection to let threads and tasks share it: they all queue in one FIFO
    /// line.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{AsyncClient, Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-from-connection-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new().capacity(4096)).unwrap();
    /// let client = AsyncClient::from_connection(conn.clone());
    /// conn.try_send("from the core".into()).unwrap();
    /// tidegate::block_on(client.send("from a task")).unwrap();
    /// assert_eq!(client.stats().frames_accepted, 2);
    /// ```
    pub fn from_connection(conn: Connection) -> Self {
        Self { conn }
    }

    /// Returns the core connection, to share it with the blocking facade.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-connection-accessor-example").unwrap();
    /// let client = tidegate::block_on(AsyncClient::connect(&listener.url())).unwrap();
    /// assert_eq!(client.connection().endpoint().scheme(), "mem");
    /// ```
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Unwraps the core connection.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-into-connection-example").unwrap();
    /// let client = tidegate::block_on(AsyncClient::connect(&listener.url())).unwrap();
    /// let conn = client.into_connection();
    /// assert!(!conn.is_closed());
    /// ```
    pub fn into_connection(self) -> Connection {
        self.conn
    }

    /// Applies a socket option to the live link, for example to toggle `TCP_NODELAY`.
    ///
    /// # Errors
    ///
    /// Resolves to the link's error (`Unsupported` for an option it does not have), or to
    /// `NotConnected` if the connection has ended.
    ///
    /// # Cancel safety
    ///
    /// The option is applied even if the future is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{AsyncClient, SocketOption};
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let url = format!("tcp://{}", listener.local_addr().unwrap());
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::connect(&url).await.unwrap();
    ///     client.set_option(SocketOption::NoDelay(false)).await.unwrap();
    /// });
    /// ```
    pub fn set_option(&self, option: SocketOption) -> impl Future<Output = std::io::Result<()>> {
        self.conn.set_option(option)
    }

    /// Runs `f` with the connection's link on the I/O driver's thread and resolves to its
    /// result: the way to reach the link of a live connection. `f` must not block.
    ///
    /// # Errors
    ///
    /// Resolves to a [`LinkError`](crate::LinkError) if the connection has ended.
    ///
    /// # Cancel safety
    ///
    /// `f` runs even if the future is dropped; its result is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-call-link-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     let text = client.call_link(|link| format!("{link:?}")).await.unwrap();
    ///     assert!(text.contains("MemLink"));
    /// });
    /// ```
    pub fn call_link<R, F>(&self, f: F) -> LinkCall<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut dyn Link) -> R + Send + 'static,
    {
        self.conn.call_link(f)
    }

    /// Returns a snapshot of the connection's counters.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-stats-example").unwrap();
    /// let connecting = AsyncClient::builder().capacity(4096).connect(&listener.url());
    /// let client = tidegate::block_on(connecting).unwrap();
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
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-is-closed-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     assert!(!client.is_closed());
    ///     client.close().await.unwrap();
    ///     assert!(client.is_closed());
    /// });
    /// ```
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }
}

/// Settings for a new [`AsyncClient`]: the core's [`Builder`], made by
/// [`AsyncClient::builder`], whose `connect` returns a [`Connecting`] future that resolves to
/// the [`AsyncClient`] once the link is up (see [`Async`]).
///
/// Every setting of [`Config`] has a method here, documented on [`Builder`]. To start from a
/// ready [`Config`], use [`Builder::from_config`], or call [`Builder::config`] first: it
/// replaces every setting made before it, and the settings made after it apply on top.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tidegate::{AsyncClient, Config};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("async-builder-example").unwrap();
/// let client = tidegate::block_on(
///     AsyncClient::builder()
///         .config(Config::new().capacity(256 * 1024))
///         .connect_timeout(Duration::from_secs(2))
///         .send_timeout(Duration::from_secs(1))
///         .close_timeout(Duration::from_secs(5))
///         .nodelay(true)
///         .connect(&listener.url()),
/// )
/// .unwrap();
/// // From the config, then set on top of it.
/// assert_eq!(client.stats().capacity, 256 * 1024);
/// let timeout = client.connection().config().send_timeout_duration();
/// assert_eq!(timeout, Some(Duration::from_secs(1)));
/// ```
pub type AsyncClientBuilder = Builder<Async>;

/// The async facade, as the type parameter of [`Builder`]: [`AsyncClientBuilder`] is
/// `Builder<Async>`, and its `connect` returns a [`Connecting`] future that resolves to an
/// [`AsyncClient`].
///
/// No value of it exists: it only names the facade.
///
/// # Examples
///
/// ```
/// use tidegate::{Async, AsyncClient, AsyncClientBuilder, Builder, Connecting};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("async-marker-example").unwrap();
/// let builder: Builder<Async> = AsyncClient::builder().capacity(4096);
/// let connecting: Connecting = builder.connect(&listener.url());
/// let client = tidegate::block_on(connecting).unwrap();
/// let same: AsyncClientBuilder = Builder::new();
/// ```
#[derive(Debug)]
pub enum Async {}

/// Connects for [`AsyncClientBuilder::connect`]: starts the connection and returns the
/// [`Connecting`] future that waits for the link.
impl Facade for Async {
    type Output = Connecting;

    /// Starts connecting to `url` with `config`; the future resolves once the link is up.
    ///
    /// Built-in schemes: `tcp://host:port`, `tls://host:port`, `unix:///path` (Unix only) and
    /// `mem://name`; more can be registered with
    /// [`transport::register`](crate::transport::register).
    ///
    /// The connection attempt starts at this call, on the core's driver thread; the future
    /// only waits for its outcome. The host name of a `tcp://` URL is resolved on the calling
    /// thread during this call: in latency-sensitive async code, pass an IP address.
    ///
    /// # Errors
    ///
    /// The future resolves to an error for a malformed URL, an unregistered scheme, unusable
    /// settings ([`ConnectError::InvalidConfig`]), or a connection that failed or timed out.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the connection: the attempt is abandoned.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-builder-connect-example").unwrap();
    /// let connecting = AsyncClient::builder().capacity(1024).connect(&listener.url());
    /// let client = tidegate::block_on(connecting).unwrap();
    /// assert_eq!(client.stats().capacity, 1024);
    /// ```
    fn connect(url: &str, config: Config) -> Connecting {
        Connecting { state: Some(Connection::open(url, config)) }
    }
}

/// A connection being established, returned by [`AsyncClient::connect`] and
/// [`AsyncClientBuilder::connect`]. Resolves to the [`AsyncClient`] once the link is up.
///
/// # Cancel safety
///
/// Dropping it drops the connection: the attempt is abandoned.
///
/// # Panics
///
/// Polling after it returned `Ready` panics.
///
/// # Examples
///
/// ```
/// use tidegate::{AsyncClient, Connecting};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("async-connecting-example").unwrap();
/// let connecting: Connecting = AsyncClient::connect(&listener.url());
/// let client = tidegate::block_on(connecting).unwrap();
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Connecting {
    /// The connection being established, or why it could not start; `None` once resolved.
    state: Option<Result<Connection, ConnectError>>,
}

impl Future for Connecting {
    type Output = Result<AsyncClient, ConnectError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let conn = match this.state.take().expect("Connecting polled after completion") {
            Ok(conn) => conn,
            Err(err) => return Poll::Ready(Err(err)),
        };
        // `Connected` keeps no state between polls, so a fresh one each time is equivalent.
        match conn.connected().poll_with(cx.waker()) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(AsyncClient { conn })),
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => {
                this.state = Some(Ok(conn));
                Poll::Pending
            }
        }
    }
}

impl FusedFuture for Connecting {
    fn is_terminated(&self) -> bool {
        self.state.is_none()
    }
}
