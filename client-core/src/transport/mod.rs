//! The common transport interface, and the run-time registry of transports by URL scheme.
//!
//! A [`Transport`] opens an [`Endpoint`] (a parsed URL) and returns a [`Link`]: a non-blocking
//! byte pipe that the I/O driver reads, writes with vectored writes, flushes, shuts down and
//! configures with [`SocketOption`]s. The built-in transports — `tcp://host:port` and the
//! in-process `mem://name` — implement the same public traits a user plugin does, and are
//! registered the same way, with [`register`].
//!
//! # Examples
//!
//! ```
//! let schemes = tidegate_core::transport::schemes();
//! assert!(schemes.contains(&"tcp".to_string()));
//! assert!(schemes.contains(&"mem".to_string()));
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io::{self, IoSlice};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use crate::error::ConnectError;

pub mod mem;
pub mod tcp;

pub use mio;

/// A kind of link: it opens links to endpoints of one URL scheme.
///
/// # Implementing
///
/// `open` runs on the thread that connects, so it must not block for long: start the
/// connection and return; the driver then calls [`Link::poll_connect`] until the link is up.
/// Name resolution is the one blocking step the built-in TCP transport takes there.
///
/// A plugin that wraps TCP, registered under its own scheme:
///
/// ```
/// use std::io;
/// use tidegate_core::transport::{self, Endpoint, Link, Transport};
///
/// /// `traced://host:port`: TCP, with a log line per connection.
/// #[derive(Debug)]
/// struct Traced;
///
/// impl Transport for Traced {
///     fn open(&self, endpoint: &Endpoint) -> io::Result<Box<dyn Link>> {
///         log::info!("opening {}", endpoint.address());
///         transport::tcp::Tcp.open(endpoint)
///     }
/// }
///
/// transport::register("traced", Traced).unwrap();
/// assert!(transport::schemes().contains(&"traced".to_string()));
/// ```
///
/// # Dropping
///
/// A transport is shared by every connection of its scheme and lives in the registry until it
/// is replaced; links it opened keep working after it is replaced.
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
/// may now succeed. See [`tcp`] and [`mem`] for one of each.
///
/// # Dropping
///
/// The driver deregisters the link and drops it when the connection ends, after calling
/// [`Link::shutdown`] on an orderly close. Dropping must release the OS resources.
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

    /// Ends the link in an orderly way (for TCP, sends FIN).
    ///
    /// # Errors
    ///
    /// Errors are logged; the link is dropped afterwards either way.
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
}

/// A socket option a link may apply.
///
/// # Examples
///
/// ```
/// use tidegate_core::transport::SocketOption;
///
/// let options = [SocketOption::NoDelay(true), SocketOption::SendBufferSize(256 * 1024)];
/// assert_eq!(options.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SocketOption {
    /// `TCP_NODELAY`: send small segments at once instead of coalescing them.
    NoDelay(bool),
    /// `SO_SNDBUF`, in bytes.
    SendBufferSize(usize),
    /// `SO_RCVBUF`, in bytes.
    RecvBufferSize(usize),
}

/// What a link needs to register with the driver.
///
/// # Examples
///
/// See [`Link`] and the source of [`tcp`].
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
    pub fn register<S: mio::event::Source + ?Sized>(&self, source: &mut S) -> io::Result<()> {
        self.registry.register(
            source,
            self.token,
            mio::Interest::READABLE | mio::Interest::WRITABLE,
        )
    }

    /// The driver's registry, for links that manage their own registration.
    pub fn registry(&self) -> &'a mio::Registry {
        self.registry
    }

    /// The token the driver knows this link by.
    pub fn token(&self) -> mio::Token {
        self.token
    }

    /// A handle that makes the driver look at this link, for links not backed by an OS source.
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
/// # Examples
///
/// See the source of [`mem`].
#[derive(Clone)]
pub struct LinkWaker {
    driver: std::sync::Weak<crate::driver::DriverShared>,
    id: usize,
}

impl LinkWaker {
    pub(crate) fn new(driver: std::sync::Weak<crate::driver::DriverShared>, id: usize) -> Self {
        Self { driver, id }
    }

    /// Asks the driver to retry this link's reads and writes.
    pub fn wake(&self) {
        if let Some(driver) = self.driver.upgrade() {
            driver.notify(self.id);
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
/// use tidegate_core::transport::Endpoint;
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
    /// [`ConnectError::InvalidUrl`] when there is no `scheme://`, the scheme has characters
    /// other than ASCII letters, digits, `+`, `-` and `.`, or the address is empty.
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

    /// The URL as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The scheme, in lower case.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Everything between `://` and `?`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The value of the last query parameter named `key`.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// All query parameters, in order.
    pub fn query_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.query.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

type Registry = HashMap<String, Arc<dyn Transport>>;

static REGISTRY: LazyLock<RwLock<Registry>> = LazyLock::new(|| {
    let mut builtins: Registry = HashMap::new();
    builtins.insert("tcp".into(), Arc::new(tcp::Tcp));
    builtins.insert("mem".into(), Arc::new(mem::Mem));
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
/// use tidegate_core::transport::{self, tcp::Tcp};
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
/// assert!(tidegate_core::transport::lookup("tcp").is_some());
/// assert!(tidegate_core::transport::lookup("gopher").is_none());
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
/// assert!(tidegate_core::transport::schemes().iter().any(|s| s == "mem"));
/// ```
pub fn schemes() -> Vec<String> {
    let registry = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
    let mut schemes: Vec<String> = registry.keys().cloned().collect();
    schemes.sort();
    schemes
}

/// Parses `url`, finds its transport and opens a link.
pub(crate) fn open(url: &str) -> Result<(Endpoint, Box<dyn Link>), ConnectError> {
    let endpoint = Endpoint::parse(url)?;
    let transport = lookup(endpoint.scheme()).ok_or_else(|| ConnectError::UnknownScheme {
        scheme: endpoint.scheme().to_string(),
        registered: schemes(),
    })?;
    let link = transport.open(&endpoint).map_err(ConnectError::Io)?;
    Ok((endpoint, link))
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
        let Err(ConnectError::UnknownScheme { scheme, registered }) = open("nope://x") else {
            panic!("expected an unknown scheme");
        };
        assert_eq!(scheme, "nope");
        assert!(registered.contains(&"tcp".to_string()));
    }
}
