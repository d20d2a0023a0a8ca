//! The link interface: a [`Transport`] opens a [`Link`], which the driver registers with a
//! [`Registration`] and wakes with a [`LinkWaker`].

use std::fmt;
use std::io::{self, IoSlice};
use std::time::Instant;

use crate::state::effects::Notify;
use crate::transport::endpoint::Endpoint;
use crate::transport::options::{SocketOption, SocketOptionKind};

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
/// [`tcp::query_options`]: crate::transport::tcp::query_options
/// [`tcp::TcpLink::connect`]: crate::transport::tcp::TcpLink::connect
/// [`ConnectError::Io`]: crate::ConnectError::Io
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
/// [`tcp`]: crate::transport::tcp
/// [`tls`]: crate::transport::tls
/// [`mem`]: crate::transport::mem
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

    /// How many of the bytes written to this link the peer has acknowledged, if the transport
    /// can tell: for TCP on Linux, what the peer's TCP acknowledged (the kernel's count); for
    /// TLS on Linux, the bytes whose records it acknowledged whole; for `mem://`, what the
    /// peer read. `None` (the default) where it cannot.
    ///
    /// With [reconnection](crate::Reconnect), a link that answers `Some` once it is up has
    /// each frame it writes kept until the count covers it: the driver asks after its writes
    /// while frames are kept, and again a little later when no readiness brings it back (1 ms,
    /// doubling to 100 ms while nothing new is acknowledged). It asks once more when the link
    /// is lost, before dropping it, to tell the frames the peer's side had whole from those it
    /// may not have ([`ConnectionEvent::Disconnected`](crate::ConnectionEvent::Disconnected)).
    /// Counting from the bytes passed to [`write_vectored`](Link::write_vectored) (and taken),
    /// it must not exceed them, nor count a byte the peer did not get, and must never go
    /// down: a count too low only keeps frames longer and makes more of them possibly
    /// delivered, one too high would call a frame received that was not. It should be cheap:
    /// a system call at most.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::tcp::TcpLink;
    /// use tidegate::transport::Link;
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let link = TcpLink::connect(&listener.local_addr().unwrap().to_string()).unwrap();
    /// assert_eq!(link.bytes_acked(), None, "not connected yet");
    /// ```
    fn bytes_acked(&self) -> Option<u64> {
        None
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
/// [`mem`]: crate::transport::mem
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
