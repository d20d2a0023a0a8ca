//! `tcp://host:port?options`: a non-blocking `mio` TCP stream, with socket options through
//! `socket2`.
//!
//! The host is resolved when the link is opened, and every address it resolves to is tried,
//! racing as RFC 8305 ("Happy Eyeballs") describes: the addresses are put in turn of family
//! (the resolver's first choice, usually IPv6, then the other family, and so on), the first
//! is tried, and each next one starts when the one before it fails or after
//! [`CONNECTION_ATTEMPT_DELAY`], whichever comes first, while the earlier ones go on. The first
//! to connect wins, and the others are dropped. So a dual-stack name whose IPv6 path is
//! broken connects over IPv4 a quarter of a second later, not after a connect timeout.
//!
//! A new link has `TCP_NODELAY` on: the outgoing buffer already gathers frames into large
//! writes, so the kernel need not wait to coalesce them.
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

use std::time::{Duration, Instant};

use mio::net::TcpStream;
use socket2::SockRef;

use super::{
    Endpoint, Keepalive, Link, LinkWaker, Registration, SocketOption, SocketOptionKind, Transport,
};
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

/// How long an attempt to connect to one address goes on alone before the next address is
/// tried alongside it: 250 ms, the value RFC 8305 recommends.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// assert_eq!(tidegate::transport::tcp::CONNECTION_ATTEMPT_DELAY, Duration::from_millis(250));
/// ```
pub const CONNECTION_ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// A TCP link: connecting (to one address or several at once, see the
/// [module documentation](self)), then connected.
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
    /// The earliest attempt still under way; once connected, the link's socket.
    stream: TcpStream,
    /// Attempts started after `stream`'s and still under way, oldest first. Empty once
    /// connected.
    racing: Vec<TcpStream>,
    /// Addresses not tried yet, the next one last.
    fallback: Vec<SocketAddr>,
    /// When the next address starts even if no attempt under way has failed.
    next_start: Option<Instant>,
    /// The last option applied of each kind, applied to every new socket too.
    options: Vec<SocketOption>,
    /// Set while registered, to register new sockets and take lost ones out.
    registration: Option<(mio::Registry, mio::Token)>,
    /// Set while registered, to be looked at again when the next address is due.
    waker: Option<LinkWaker>,
    connected: bool,
    /// The kernel's count of acknowledged bytes when the link connected, before any write.
    acked_base: Option<u64>,
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
        let addrs: Vec<SocketAddr> = address.to_socket_addrs()?.collect();
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{address:?} resolves to no address"),
            ));
        }
        Self::connect_racing(&interleave_families(addrs))
    }

    /// Starts connecting to `addrs` in the order given, racing them as the
    /// [module documentation](self) describes: each next address starts when the attempts
    /// under way have all failed, or [`CONNECTION_ATTEMPT_DELAY`] after the last one started.
    /// The socket has `TCP_NODELAY` on.
    ///
    /// [`TcpLink::connect`] resolves a name and puts its addresses in turn of family before
    /// calling this; call it directly to choose the order.
    ///
    /// # Errors
    ///
    /// `addrs` is empty, or no socket could be created for any address.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::tcp::TcpLink;
    ///
    /// let v4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let link = TcpLink::connect_racing(&["[::1]:9".parse().unwrap(), v4.local_addr().unwrap()])
    ///     .unwrap();
    /// assert!(TcpLink::connect_racing(&[]).is_err());
    /// # drop(link);
    /// ```
    pub fn connect_racing(addrs: &[SocketAddr]) -> io::Result<Self> {
        let mut fallback: Vec<SocketAddr> = addrs.iter().rev().copied().collect();
        let mut failure =
            io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to".to_string());
        while let Some(addr) = fallback.pop() {
            match TcpStream::connect(addr) {
                Ok(stream) => {
                    let next_start =
                        (!fallback.is_empty()).then(|| Instant::now() + CONNECTION_ATTEMPT_DELAY);
                    let mut link = Self {
                        stream,
                        racing: Vec::new(),
                        fallback,
                        next_start,
                        options: Vec::new(),
                        registration: None,
                        waker: None,
                        connected: false,
                        acked_base: None,
                    };
                    link.set_option(&SocketOption::NoDelay(true))?;
                    return Ok(link);
                }
                Err(e) => {
                    log::debug!("cannot connect to {addr}: {e}");
                    failure = e;
                }
            }
        }
        Err(failure)
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

    /// Starts an attempt on the next address that takes one, alongside those under way.
    /// `Ok(false)` if no address is left.
    fn start_next(&mut self, now: Instant) -> io::Result<bool> {
        while let Some(addr) = self.fallback.pop() {
            let mut stream = match TcpStream::connect(addr) {
                Ok(stream) => stream,
                Err(e) => {
                    log::debug!("cannot connect to {addr}: {e}");
                    continue;
                }
            };
            log::debug!("also trying {addr}");
            if let Some((registry, token)) = &self.registration {
                registry.register(
                    &mut stream,
                    *token,
                    mio::Interest::READABLE | mio::Interest::WRITABLE,
                )?;
            }
            for option in &self.options {
                set_socket_option(SockRef::from(&stream), option)?;
            }
            self.racing.push(stream);
            self.schedule_next(now);
            return Ok(true);
        }
        self.next_start = None;
        Ok(false)
    }

    /// Sets when the next address starts, and asks to be looked at then.
    fn schedule_next(&mut self, now: Instant) {
        self.next_start = (!self.fallback.is_empty()).then(|| now + CONNECTION_ATTEMPT_DELAY);
        if let (Some(at), Some(waker)) = (self.next_start, &self.waker) {
            waker.wake_at(at);
        }
    }

    /// Takes a socket that lost the race, or failed, out of the poll set.
    fn drop_attempt(&self, mut stream: TcpStream) {
        if let Some((registry, _)) = &self.registration {
            // A failed socket may already be gone from the poll set; that is fine.
            let _ = registry.deregister(&mut stream);
        }
    }

    /// The attempt on `stream` won: it becomes the link's socket, and the others are dropped.
    fn won(&mut self, stream: Option<TcpStream>) {
        if let Some(stream) = stream {
            let first = std::mem::replace(&mut self.stream, stream);
            self.drop_attempt(first);
        }
        for other in std::mem::take(&mut self.racing) {
            self.drop_attempt(other);
        }
        self.fallback.clear();
        self.next_start = None;
        self.connected = true;
        self.acked_base = kernel_bytes_acked(&self.stream);
    }
}

/// The kernel's count of the bytes the peer acknowledged on `stream`, where it keeps one.
fn kernel_bytes_acked(stream: &TcpStream) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        super::acked::bytes_acked(stream.as_fd()).ok()
    }
    #[cfg(not(unix))]
    {
        let _ = stream;
        None
    }
}

/// Where an attempt to connect is: `Ok(true)` connected, `Ok(false)` under way.
fn attempt_state(stream: &TcpStream) -> io::Result<bool> {
    if let Some(error) = stream.take_error()? {
        return Err(error);
    }
    match stream.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

/// Puts `addrs` in turn of family, as RFC 8305 § 4 asks: the first address's family (the
/// resolver's preference) first, then one of the other family, and so on, each family in the
/// order resolved.
fn interleave_families(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else { return addrs };
    let preferred_v6 = first.is_ipv6();
    let (mut preferred, mut other): (Vec<_>, Vec<_>) =
        addrs.into_iter().partition(|a| a.is_ipv6() == preferred_v6);
    let mut sorted = Vec::with_capacity(preferred.len() + other.len());
    preferred.reverse();
    other.reverse();
    loop {
        match (preferred.pop(), other.pop()) {
            (None, None) => return sorted,
            (a, b) => sorted.extend(a.into_iter().chain(b)),
        }
    }
}

impl Link for TcpLink {
    fn register(&mut self, registration: &Registration<'_>) -> io::Result<()> {
        registration.register(&mut self.stream)?;
        for other in &mut self.racing {
            registration.register(other)?;
        }
        self.registration = Some((registration.registry().try_clone()?, registration.token()));
        let waker = registration.waker();
        if let Some(at) = self.next_start {
            waker.wake_at(at);
        }
        self.waker = Some(waker);
        Ok(())
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        self.registration = None;
        self.waker = None;
        for other in &mut self.racing {
            let _ = registry.deregister(other);
        }
        registry.deregister(&mut self.stream)
    }

    fn poll_connect(&mut self) -> io::Result<bool> {
        if self.connected {
            return Ok(true);
        }
        let now = Instant::now();
        // A failure starts the next address at once, without waiting for the delay.
        let mut failed_any = false;
        // Each turn either returns or takes a failed attempt out, so the loop ends.
        loop {
            match attempt_state(&self.stream) {
                Ok(true) => {
                    self.won(None);
                    return Ok(true);
                }
                Ok(false) => {}
                Err(failure) => {
                    log::debug!("connect failed: {failure}");
                    let next = if self.racing.is_empty() {
                        // The failure starts the next address here, and only that one.
                        self.start_next(now)?.then(|| self.racing.remove(0))
                    } else {
                        failed_any = true;
                        Some(self.racing.remove(0))
                    };
                    let Some(next) = next else { return Err(failure) };
                    let failed = std::mem::replace(&mut self.stream, next);
                    self.drop_attempt(failed);
                    continue;
                }
            }
            let mut k = 0;
            while k < self.racing.len() {
                match attempt_state(&self.racing[k]) {
                    Ok(true) => {
                        let winner = self.racing.remove(k);
                        self.won(Some(winner));
                        return Ok(true);
                    }
                    Ok(false) => k += 1,
                    Err(failure) => {
                        log::debug!("connect failed: {failure}");
                        failed_any = true;
                        let failed = self.racing.remove(k);
                        self.drop_attempt(failed);
                    }
                }
            }
            if failed_any || self.next_start.is_some_and(|at| at <= now) {
                self.start_next(now)?;
            }
            return Ok(false);
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
        for other in &self.racing {
            set_socket_option(SockRef::from(other), option)?;
        }
        let kind = option.kind();
        self.options.retain(|o| o.kind() != kind);
        self.options.push(option.clone());
        Ok(())
    }

    fn socket_option(&self, kind: SocketOptionKind) -> io::Result<SocketOption> {
        socket_option(SockRef::from(&self.stream), kind)
    }

    fn bytes_acked(&self) -> Option<u64> {
        let base = self.acked_base?;
        Some(kernel_bytes_acked(&self.stream)?.saturating_sub(base))
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

    #[test]
    fn families_take_turns_from_the_resolvers_first_choice() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        let resolved = ["[::1]:1", "[::2]:1", "10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"].map(addr);
        let expect = ["[::1]:1", "10.0.0.1:1", "[::2]:1", "10.0.0.2:1", "10.0.0.3:1"].map(addr);
        assert_eq!(interleave_families(resolved.to_vec()), expect);
        let resolved = ["10.0.0.1:1", "10.0.0.2:1", "[::1]:1"].map(addr);
        let expect = ["10.0.0.1:1", "[::1]:1", "10.0.0.2:1"].map(addr);
        assert_eq!(interleave_families(resolved.to_vec()), expect);
        assert!(interleave_families(Vec::new()).is_empty());
    }

    /// A listener whose queue of links to accept is full, so that a new link's handshake
    /// gets no answer; with the links that fill it.
    fn unanswering() -> (socket2::Socket, Vec<socket2::Socket>, SocketAddr) {
        use socket2::{Domain, Socket, Type};
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        listener.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        let mut queued = Vec::new();
        for _ in 0..8 {
            let probe = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
            probe.set_nonblocking(true).unwrap();
            let _ = probe.connect(&addr.into());
            let until = Instant::now() + Duration::from_millis(200);
            while probe.peer_addr().is_err() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(1));
            }
            if probe.peer_addr().is_err() {
                return (listener, queued, addr);
            }
            queued.push(probe);
        }
        panic!("the listen queue on {addr} never filled up");
    }

    #[test]
    fn a_failed_address_starts_the_next_one_and_no_more() {
        let refusing = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let (_first, _queued, silent) = unanswering();
        let (_second, _queued2, silent2) = unanswering();
        let started = Instant::now();
        let mut link = TcpLink::connect_racing(&[refusing, silent, silent2]).unwrap();
        let deadline = started + Duration::from_secs(5);
        // The refusal comes at once, and starts the first silent address only.
        while link.fallback.len() == 2 {
            assert!(!link.poll_connect().unwrap(), "nothing answers");
            assert!(Instant::now() < deadline, "the refusal never came");
            std::thread::sleep(Duration::from_millis(1));
        }
        if started.elapsed() < CONNECTION_ATTEMPT_DELAY {
            assert!(link.racing.is_empty(), "{} attempts alongside", link.racing.len());
            assert_eq!(link.fallback, [silent2]);
        }
        // After the delay, the second silent address races the first.
        while link.racing.is_empty() {
            assert!(!link.poll_connect().unwrap(), "nothing answers");
            assert!(Instant::now() < deadline, "the next address never started");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(started.elapsed() >= CONNECTION_ATTEMPT_DELAY);
        assert!(link.fallback.is_empty());
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
