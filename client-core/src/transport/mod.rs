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
///
/// # Examples
///
/// A link not backed by an OS source: its writes wait until the far side opens a gate, the
/// way a user-space pipe waits for room, and the far side wakes the driver when it does.
///
/// ```
/// use std::io::{self, IoSlice};
/// use std::sync::{Arc, Mutex};
/// use bytes::Bytes;
/// use tidegate_core::transport::{self, Endpoint, Link, LinkWaker, Registration, Transport};
/// use tidegate_core::{Config, Connection};
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
/// futures::executor::block_on(conn.flush(None)).unwrap();
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

/// What a link needs to register with the driver, handed to [`Link::register`].
///
/// # Examples
///
/// A link over an OS socket registers the socket, and the driver polls it from then on:
///
/// ```
/// use std::io::{self, IoSlice, Read, Write};
/// use tidegate_core::transport::{Link, Registration, mio};
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
/// # use tidegate_core::transport::{self, Endpoint, Transport};
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
/// # let conn = tidegate_core::Connection::open(&url, tidegate_core::Config::new()).unwrap();
/// # conn.try_send(bytes::Bytes::from_static(b"hi")).unwrap();
/// # futures::executor::block_on(conn.flush(None)).unwrap();
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
    /// use tidegate_core::transport::Registration;
    /// use tidegate_core::transport::mio::net::TcpStream;
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
    /// use tidegate_core::transport::Registration;
    /// use tidegate_core::transport::mio::{Interest, Registry, Token, net::TcpStream};
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
    /// use tidegate_core::transport::Registration;
    /// use tidegate_core::transport::mio::{Interest, Registry, Token, net::TcpStream};
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
    /// use tidegate_core::transport::{LinkWaker, Registration};
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
/// use tidegate_core::transport::LinkWaker;
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
    driver: std::sync::Weak<crate::driver::DriverShared>,
    id: usize,
}

impl LinkWaker {
    pub(crate) fn new(driver: std::sync::Weak<crate::driver::DriverShared>, id: usize) -> Self {
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
    /// use tidegate_core::transport::LinkWaker;
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
    /// [`ConnectError::InvalidUrl`] when there is no `scheme://`, the scheme does not start
    /// with an ASCII letter or has characters other than ASCII letters, digits, `+`, `-` and
    /// `.`, or the address is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_core::ConnectError;
    /// use tidegate_core::transport::Endpoint;
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
    /// use tidegate_core::transport::Endpoint;
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
    /// use tidegate_core::transport::Endpoint;
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
    /// use tidegate_core::transport::Endpoint;
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
    /// use tidegate_core::transport::Endpoint;
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
    /// use tidegate_core::transport::Endpoint;
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
