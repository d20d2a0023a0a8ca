//! `tcp://host:port?options`: a non-blocking `mio` TCP stream, with socket options through
//! `socket2`.
//!
//! The host is resolved when the link is opened; the addresses are tried in order until one
//! connects. A new link has `TCP_NODELAY` on: the outgoing buffer already gathers frames into
//! large writes, so the kernel need not wait to coalesce them.
//!
//! # Query options
//!
//! | key | value | option |
//! |---|---|---|
//! | `nodelay` | `1`/`0`, `true`/`false`, `on`/`off`, `yes`/`no` | [`SocketOption::NoDelay`] |
//! | `sndbuf` | bytes | [`SocketOption::SendBufferSize`] |
//! | `rcvbuf` | bytes | [`SocketOption::RecvBufferSize`] |
//! | `keepalive` | idle time, or `off` | [`SocketOption::Keepalive`] |
//! | `keepalive_interval` | time between probes | [`SocketOption::Keepalive`] |
//! | `keepalive_retries` | number of probes | [`SocketOption::Keepalive`] |
//! | `user_timeout` | time (`0` for the system default) | [`SocketOption::UserTimeout`] |
//! | `linger` | time, or `off` | [`SocketOption::Linger`] |
//!
//! A time is a whole number with a unit, `ms`, `s`, `m` or `h`; a bare number is seconds. A key
//! that is not in the table, or a value that does not parse, makes opening fail with an
//! [`io::ErrorKind::InvalidInput`] error that names the key and the value. Options set on the
//! [`Config`](crate::Config) are applied afterwards and win.
//!
//! # Examples
//!
//! ```
//! use tidegate::transport::{Endpoint, SocketOption, SocketOptionKind, Transport, tcp::Tcp};
//!
//! let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
//! let url = format!("tcp://{}?nodelay=0&linger=0", listener.local_addr().unwrap());
//! let link = Tcp.open(&Endpoint::parse(&url).unwrap()).unwrap();
//! let nodelay = link.socket_option(SocketOptionKind::NoDelay).unwrap();
//! assert_eq!(nodelay, SocketOption::NoDelay(false));
//!
//! let bad = format!("tcp://{}?sndbuf=lots", listener.local_addr().unwrap());
//! let err = Tcp.open(&Endpoint::parse(&bad).unwrap()).unwrap_err();
//! assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
//! assert!(err.to_string().contains("\"sndbuf\""));
//! ```

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};

use std::time::Duration;

use mio::net::TcpStream;
use socket2::SockRef;

use super::{Endpoint, Keepalive, Link, Registration, SocketOption, SocketOptionKind, Transport};
use crate::transport::endpoint::{bad_query_value, parse_duration};

/// The query keys the TCP transport reads, in the order the module documentation lists them.
///
/// # Examples
///
/// ```
/// assert!(tidegate::transport::tcp::QUERY_KEYS.contains(&"sndbuf"));
/// ```
pub const QUERY_KEYS: &[&str] = &[
    "nodelay",
    "sndbuf",
    "rcvbuf",
    "keepalive",
    "keepalive_interval",
    "keepalive_retries",
    "user_timeout",
    "linger",
];

/// Parses the socket options in `endpoint`'s query (see the [module documentation](self) for
/// the keys), in the order they appear. Keys in `other_keys` belong to the caller and are
/// skipped; any other unknown key is an error.
///
/// This is the parser the `tcp` and `tls` transports use, for transports that wrap TCP.
///
/// # Errors
///
/// [`io::ErrorKind::InvalidInput`], naming the key and the URL, for an unknown key or a value
/// that does not parse.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tidegate::transport::{Endpoint, SocketOption, tcp};
///
/// let endpoint = Endpoint::parse("tcp://h:1?sndbuf=65536&user_timeout=5s&mine=x").unwrap();
/// let options = tcp::query_options(&endpoint, &["mine"]).unwrap();
/// assert_eq!(
///     options,
///     [SocketOption::SendBufferSize(65536), SocketOption::UserTimeout(Duration::from_secs(5))]
/// );
/// assert!(tcp::query_options(&endpoint, &[]).is_err(), "`mine` is unknown to TCP");
/// ```
pub fn query_options(endpoint: &Endpoint, other_keys: &[&str]) -> io::Result<Vec<SocketOption>> {
    let mut options = Vec::new();
    let mut keepalive: Option<Option<Keepalive>> = None;
    for (key, value) in endpoint.query_pairs() {
        let bad = |expected: &str| bad_query_value(endpoint, key, value, expected);
        let bytes = || value.parse::<usize>().map_err(|_| bad("a number of bytes"));
        let time = || parse_duration(value).ok_or_else(|| bad("a time such as 500ms or 30s"));
        let off = matches!(value, "off" | "none");
        match key {
            "nodelay" => {
                let on = match value {
                    "1" | "true" | "on" | "yes" => true,
                    "0" | "false" | "off" | "no" => false,
                    _ => return Err(bad("1 or 0")),
                };
                options.push(SocketOption::NoDelay(on));
            }
            "sndbuf" => options.push(SocketOption::SendBufferSize(bytes()?)),
            "rcvbuf" => options.push(SocketOption::RecvBufferSize(bytes()?)),
            "keepalive" if off => keepalive = Some(None),
            "keepalive" => {
                let idle = time()?;
                keepalive = Some(Some(keepalive.flatten().unwrap_or_default().idle(idle)));
            }
            "keepalive_interval" => {
                let interval = time()?;
                keepalive = Some(Some(keepalive.flatten().unwrap_or_default().interval(interval)));
            }
            "keepalive_retries" => {
                let retries = value.parse::<u32>().map_err(|_| bad("a number of probes"))?;
                keepalive = Some(Some(keepalive.flatten().unwrap_or_default().retries(retries)));
            }
            "user_timeout" => options.push(SocketOption::UserTimeout(time()?)),
            "linger" if off => options.push(SocketOption::Linger(None)),
            "linger" => options.push(SocketOption::Linger(Some(time()?))),
            other if other_keys.contains(&other) => {}
            other => {
                let mut known: Vec<&str> = QUERY_KEYS.to_vec();
                known.extend_from_slice(other_keys);
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "unknown query parameter {other:?} in {}; known: {}",
                        endpoint.url(),
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    if let Some(keepalive) = keepalive {
        options.push(SocketOption::Keepalive(keepalive));
    }
    Ok(options)
}

/// The TCP transport, registered as `tcp`.
///
/// # Examples
///
/// ```
/// assert!(tidegate::transport::lookup("tcp").is_some());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Tcp;

impl Transport for Tcp {
    fn open(&self, endpoint: &Endpoint) -> io::Result<Box<dyn Link>> {
        let options = query_options(endpoint, &[])?;
        let mut link = TcpLink::connect(endpoint.address())?;
        for option in &options {
            link.set_option(option)?;
        }
        Ok(Box::new(link))
    }
}

/// A TCP link: connecting, then connected.
///
/// # Examples
///
/// ```
/// use tidegate::transport::tcp::TcpLink;
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let link = TcpLink::connect(&listener.local_addr().unwrap().to_string()).unwrap();
/// # drop(link);
/// ```
#[derive(Debug)]
pub struct TcpLink {
    stream: TcpStream,
    /// Addresses still to try if the current attempt fails, in order.
    fallback: Vec<SocketAddr>,
    /// The last option applied of each kind, re-applied to a fallback socket.
    options: Vec<SocketOption>,
    /// Set while registered, to move the registration to a fallback socket.
    registration: Option<(mio::Registry, mio::Token)>,
    connected: bool,
}

impl TcpLink {
    /// Resolves `address` (`host:port`) and starts connecting to the first address; the
    /// others are tried in order if it fails. The socket has `TCP_NODELAY` on.
    ///
    /// # Errors
    ///
    /// The address has no port, the name does not resolve, resolves to nothing, or the socket
    /// cannot be created.
    ///
    /// # Blocking
    ///
    /// Resolving a host name may block the calling thread; a numeric address does not. The
    /// connection itself completes later, on the driver thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::tcp::TcpLink;
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let link = TcpLink::connect(&listener.local_addr().unwrap().to_string()).unwrap();
    /// assert!(TcpLink::connect("127.0.0.1").is_err(), "no port");
    /// # drop(link);
    /// ```
    pub fn connect(address: &str) -> io::Result<Self> {
        if !has_port(address) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("missing port in {address:?} (expected host:port, or [v6 address]:port)"),
            ));
        }
        let mut addrs: Vec<SocketAddr> = address.to_socket_addrs()?.collect();
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{address:?} resolves to no address"),
            ));
        }
        addrs.reverse();
        let first = addrs.pop().expect("checked not empty above");
        let mut link = Self {
            stream: TcpStream::connect(first)?,
            fallback: addrs,
            options: Vec::new(),
            registration: None,
            connected: false,
        };
        link.set_option(&SocketOption::NoDelay(true))?;
        Ok(link)
    }

    /// Returns the address of the peer, once connected.
    ///
    /// # Errors
    ///
    /// `NotConnected` while connecting.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::tcp::TcpLink;
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = listener.local_addr().unwrap();
    /// let link = TcpLink::connect(&addr.to_string()).unwrap();
    /// let _server_side = listener.accept().unwrap(); // the handshake is complete
    /// assert_eq!(link.peer_addr().unwrap(), addr);
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.peer_addr()
    }

    /// Moves on to the next address after a failed attempt, or returns the failure.
    fn next_address(&mut self, failure: io::Error) -> io::Result<bool> {
        let Some(addr) = self.fallback.pop() else {
            return Err(failure);
        };
        log::debug!("connect failed ({failure}), trying {addr}");
        let mut stream = TcpStream::connect(addr)?;
        if let Some((registry, token)) = &self.registration {
            // The old socket may already be gone from the poll set; that is fine.
            let _ = registry.deregister(&mut self.stream);
            registry.register(
                &mut stream,
                *token,
                mio::Interest::READABLE | mio::Interest::WRITABLE,
            )?;
        }
        self.stream = stream;
        for option in std::mem::take(&mut self.options) {
            self.set_option(&option)?;
        }
        Ok(false)
    }
}

impl Link for TcpLink {
    fn register(&mut self, registration: &Registration<'_>) -> io::Result<()> {
        registration.register(&mut self.stream)?;
        self.registration = Some((registration.registry().try_clone()?, registration.token()));
        Ok(())
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        self.registration = None;
        registry.deregister(&mut self.stream)
    }

    fn poll_connect(&mut self) -> io::Result<bool> {
        if self.connected {
            return Ok(true);
        }
        if let Some(error) = self.stream.take_error()? {
            return self.next_address(error);
        }
        match self.stream.peer_addr() {
            Ok(_) => {
                self.connected = true;
                self.fallback.clear();
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => self.next_address(e),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.stream.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }

    fn set_option(&mut self, option: &SocketOption) -> io::Result<()> {
        set_socket_option(SockRef::from(&self.stream), option)?;
        let kind = option.kind();
        self.options.retain(|o| o.kind() != kind);
        self.options.push(option.clone());
        Ok(())
    }

    fn socket_option(&self, kind: SocketOptionKind) -> io::Result<SocketOption> {
        socket_option(SockRef::from(&self.stream), kind)
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn unsupported(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, format!("{what} is not supported on this system"))
}

/// Applies `option` to a socket. Shared by the TCP and Unix links (the Unix one has only the
/// buffer sizes).
pub(crate) fn set_socket_option(socket: SockRef<'_>, option: &SocketOption) -> io::Result<()> {
    match option {
        SocketOption::NoDelay(on) => socket.set_tcp_nodelay(*on),
        SocketOption::SendBufferSize(size) => socket.set_send_buffer_size(*size),
        SocketOption::RecvBufferSize(size) => socket.set_recv_buffer_size(*size),
        SocketOption::Keepalive(None) => socket.set_keepalive(false),
        SocketOption::Keepalive(Some(keepalive)) => set_keepalive(socket, keepalive),
        SocketOption::UserTimeout(timeout) => set_user_timeout(socket, *timeout),
        SocketOption::Linger(linger) => socket.set_linger(*linger),
    }
}

/// Reads an option back from a socket.
pub(crate) fn socket_option(
    socket: SockRef<'_>,
    kind: SocketOptionKind,
) -> io::Result<SocketOption> {
    Ok(match kind {
        SocketOptionKind::NoDelay => SocketOption::NoDelay(socket.tcp_nodelay()?),
        SocketOptionKind::SendBufferSize => {
            SocketOption::SendBufferSize(socket.send_buffer_size()?)
        }
        SocketOptionKind::RecvBufferSize => {
            SocketOption::RecvBufferSize(socket.recv_buffer_size()?)
        }
        SocketOptionKind::Keepalive => SocketOption::Keepalive(keepalive(socket)?),
        SocketOptionKind::UserTimeout => SocketOption::UserTimeout(user_timeout(socket)?),
        SocketOptionKind::Linger => SocketOption::Linger(socket.linger()?),
    })
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_keepalive(socket: SockRef<'_>, keepalive: &Keepalive) -> io::Result<()> {
    socket.set_keepalive(true)?;
    let mut params = socket2::TcpKeepalive::new();
    if let Some(idle) = keepalive.idle_time() {
        params = params.with_time(idle);
    }
    if let Some(interval) = keepalive.interval_time() {
        params = params.with_interval(interval);
    }
    if let Some(retries) = keepalive.retry_count() {
        params = params.with_retries(retries);
    }
    socket.set_tcp_keepalive(&params)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_keepalive(socket: SockRef<'_>, keepalive: &Keepalive) -> io::Result<()> {
    if keepalive.interval_time().is_some() || keepalive.retry_count().is_some() {
        return Err(unsupported("setting the keep-alive interval or probe count"));
    }
    socket.set_keepalive(true)?;
    match keepalive.idle_time() {
        Some(idle) => socket.set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(idle)),
        None => Ok(()),
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn keepalive(socket: SockRef<'_>) -> io::Result<Option<Keepalive>> {
    if !socket.keepalive()? {
        return Ok(None);
    }
    Ok(Some(
        Keepalive::new()
            .idle(socket.tcp_keepalive_time()?)
            .interval(socket.tcp_keepalive_interval()?)
            .retries(socket.tcp_keepalive_retries()?),
    ))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn keepalive(socket: SockRef<'_>) -> io::Result<Option<Keepalive>> {
    Ok(socket.keepalive()?.then(Keepalive::new))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_user_timeout(socket: SockRef<'_>, timeout: Duration) -> io::Result<()> {
    socket.set_tcp_user_timeout((!timeout.is_zero()).then_some(timeout))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_user_timeout(_: SockRef<'_>, _: Duration) -> io::Result<()> {
    Err(unsupported("TCP_USER_TIMEOUT"))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn user_timeout(socket: SockRef<'_>) -> io::Result<Duration> {
    Ok(socket.tcp_user_timeout()?.unwrap_or_default())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn user_timeout(_: SockRef<'_>) -> io::Result<Duration> {
    Err(unsupported("TCP_USER_TIMEOUT"))
}

/// Whether `address` ends with a port: `host:port` or `[v6]:port`, not a bare host or a bare
/// IPv6 address (whose colons are not a port).
fn has_port(address: &str) -> bool {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.contains("]:");
    }
    address.contains(':') && address.parse::<std::net::Ipv6Addr>().is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_port_is_told_apart_from_a_bad_address() {
        for with in ["127.0.0.1:1", "localhost:6379", "[::1]:80", "h:0"] {
            assert!(has_port(with), "{with}");
        }
        for without in ["127.0.0.1", "localhost", "::1", "[::1]", "fe80::1"] {
            assert!(!has_port(without), "{without}");
            let err = TcpLink::connect(without).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(err.to_string().starts_with("missing port"), "{err}");
        }
    }

    fn parse(query: &str) -> io::Result<Vec<SocketOption>> {
        query_options(&Endpoint::parse(&format!("tcp://h:1?{query}")).unwrap(), &[])
    }

    #[test]
    fn every_key_parses() {
        let options = parse(
            "nodelay=off&sndbuf=1024&rcvbuf=2048&keepalive=30s&keepalive_interval=5s\
             &keepalive_retries=3&user_timeout=1500ms&linger=0",
        )
        .unwrap();
        assert_eq!(
            options,
            [
                SocketOption::NoDelay(false),
                SocketOption::SendBufferSize(1024),
                SocketOption::RecvBufferSize(2048),
                SocketOption::UserTimeout(Duration::from_millis(1500)),
                SocketOption::Linger(Some(Duration::ZERO)),
                SocketOption::Keepalive(Some(
                    Keepalive::new()
                        .idle(Duration::from_secs(30))
                        .interval(Duration::from_secs(5))
                        .retries(3)
                )),
            ]
        );
        assert_eq!(parse("keepalive=off").unwrap(), [SocketOption::Keepalive(None)]);
        assert_eq!(parse("linger=off").unwrap(), [SocketOption::Linger(None)]);
    }

    #[test]
    fn bad_values_name_the_key_and_the_value() {
        for (query, key, value) in [
            ("nodelay=maybe", "nodelay", "maybe"),
            ("sndbuf=-1", "sndbuf", "-1"),
            ("rcvbuf=1k", "rcvbuf", "1k"),
            ("keepalive=soon", "keepalive", "soon"),
            ("keepalive_retries=many", "keepalive_retries", "many"),
            ("user_timeout=5d", "user_timeout", "5d"),
            ("linger=", "linger", ""),
        ] {
            let err = parse(query).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{query}");
            let text = err.to_string();
            assert!(text.contains(&format!("{key:?}")), "{text}");
            assert!(text.contains(&format!("{value:?}")), "{text}");
        }
        let err = parse("nodely=1").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("\"nodely\""), "{err}");
    }
}
