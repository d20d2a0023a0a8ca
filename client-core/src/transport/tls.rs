//! `tls://host:port?options`: TLS through `native-tls` (OpenSSL on Linux, Secure Transport on
//! Apple systems, SChannel on Windows) over the [TCP link](super::tcp::TcpLink).
//!
//! # Secure by default
//!
//! The server's certificate chain is verified against the system's root certificates and its
//! name against the host of the URL (or the [domain](TlsBuilder::domain) set instead), with
//! TLS 1.2 as the oldest protocol accepted. The registered `tls` scheme uses exactly that. A
//! connection that needs more — its own roots, no system roots, a client certificate for
//! mutual TLS, a handshake timeout, ALPN — builds a [`Tls`] with [`Tls::builder`] and sets it
//! with [`Config::transport`](crate::Config::transport). Verification can only be turned off
//! with [`TlsBuilder::danger_accept_invalid_certs_and_hostnames`], and a link built that way
//! logs a warning at every connection.
//!
//! # How a link works
//!
//! Opening resolves the host and starts the TCP connection, exactly like `tcp://` (the same
//! query options apply, plus `domain=name` to verify and send as SNI another name than the
//! URL's host). On the driver thread, [`Link::poll_connect`] first completes the TCP
//! connection, then drives the TLS handshake on the non-blocking socket: each step that would
//! block keeps the half-done handshake and returns, and the next readiness event of the socket
//! resumes it. No thread is started per connection.
//!
//! Writes go through the TLS session one record at a time: small slices of a vectored write
//! are gathered into one record of at most 16 KiB; a slice of a record or more is handed over
//! without a copy. A record that would block is offered again whole at the next write, which
//! the driver makes with the same bytes first, as TLS requires (see [`Link::write_vectored`]).
//!
//! # Handshake timeout
//!
//! [`TlsBuilder::handshake_timeout`] bounds the handshake from the moment TCP is connected:
//! the link asks the driver to look at it again at the deadline ([`LinkWaker::wake_at`]) and
//! fails the attempt with [`io::ErrorKind::TimedOut`] if the handshake is not done by then:
//! the connect returns [`ConnectError::Tls`](crate::ConnectError::Tls) of kind
//! [`TlsErrorKind::HandshakeTimeout`](crate::TlsErrorKind::HandshakeTimeout), whose
//! `is_timeout()` is true, as for the connect timeout.
//!
//! # Errors
//!
//! A failed handshake puts a [`TlsError`] in the I/O error of the attempt:
//! the connect returns [`ConnectError::Tls`](crate::ConnectError::Tls) with its
//! [kind](crate::TlsErrorKind) (an expired certificate, a name mismatch, an unknown issuer, a
//! client certificate missing, a peer that does not speak TLS, …), read from OpenSSL's report,
//! which is the error's source. An alert the server sends after the handshake (a TLS 1.3
//! server refusing a client certificate) ends the connection with a
//! [`Disconnect`](crate::Disconnect) whose [`tls_error`](crate::Disconnect::tls_error) says
//! the same.
//! The connection's [connect timeout](crate::Config::connect_timeout) bounds the whole attempt,
//! TCP and TLS together, as well.
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use tidegate::transport::tls::Tls;
//! use tidegate::{Bytes, Config, Connection};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Trusts the system roots only.
//! let conn = Connection::open("tls://broker.example:5671", Config::new())?;
//!
//! // Trusts a private CA, and shows a client certificate.
//! let tls = Tls::builder()
//!     .add_root_certificate_pem(&std::fs::read("ca.pem")?)
//!     .disable_system_roots()
//!     .identity_pem(&std::fs::read("client.pem")?, &std::fs::read("client.key")?)
//!     .handshake_timeout(Duration::from_secs(5))
//!     .build()?;
//! let url = "tls://10.0.0.7:5671?domain=broker.internal";
//! let conn = Connection::open(url, Config::new().transport(tls))?;
//! conn.try_send(Bytes::from_static(b"hello"))?;
//! # Ok(())
//! # }
//! ```

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use native_tls::{
    Certificate, HandshakeError, Identity, MidHandshakeTlsStream, Protocol, TlsConnector, TlsStream,
};

use super::tcp::{self, TcpLink};
use super::{Endpoint, Link, LinkWaker, Registration, SocketOption, SocketOptionKind, Transport};
use crate::state::error::TlsError;
use crate::transport::endpoint::bad_query_value;

pub use native_tls;

/// The most plaintext one TLS record carries.
const RECORD: usize = 16 * 1024;
/// The writes a TLS link remembers to map TCP's count of acknowledged bytes (records) back to
/// the bytes written (see [`TlsLink::bytes_acked`]). Past it the oldest are dropped, which
/// only makes the count lower than it could be.
const ACK_MARKS: usize = 1024;

/// The query keys of `tls://` beyond the TCP ones.
const TLS_QUERY_KEYS: &[&str] = &["domain"];

/// The TLS transport: how to verify servers and what to show them.
///
/// [`Tls::default`] (registered as `tls`) verifies servers against the system's roots. Build
/// another with [`Tls::builder`], or wrap a ready [`native_tls::TlsConnector`] with
/// [`Tls::from_connector`], and hand it to [`Config::transport`](crate::Config::transport).
/// Cloning is cheap: clones share the connector.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tidegate::Config;
/// use tidegate::transport::tls::Tls;
///
/// let tls = Tls::builder().handshake_timeout(Duration::from_secs(3)).build().unwrap();
/// let config = Config::new().transport(tls);
/// # drop(config);
/// ```
#[derive(Clone, Default)]
pub struct Tls {
    /// `None`: the system's defaults, built on first use.
    connector: Option<TlsConnector>,
    domain: Option<String>,
    handshake_timeout: Option<Duration>,
    /// Set only by [`TlsBuilder::danger_accept_invalid_certs_and_hostnames`].
    insecure: bool,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("system_defaults", &self.connector.is_none())
            .field("domain", &self.domain)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl Tls {
    /// Returns the default transport: the system's roots, no client certificate, TLS 1.2 or
    /// newer, no handshake timeout beyond the connect timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// let tls = tidegate::transport::tls::Tls::new();
    /// # drop(tls);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns a builder for a transport with settings of its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::tls::{Tls, native_tls::Protocol};
    ///
    /// let tls = Tls::builder().min_protocol_version(Protocol::Tlsv13).build().unwrap();
    /// # drop(tls);
    /// ```
    pub fn builder() -> TlsBuilder {
        TlsBuilder::default()
    }

    /// Uses a ready connector: every setting of the builder is the connector's business then,
    /// except the [domain](Tls::domain) and the [handshake timeout](Tls::handshake_timeout).
    ///
    /// A connector built with verification turned off does not make the link warn: prefer
    /// [`TlsBuilder::danger_accept_invalid_certs_and_hostnames`], which does.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::tls::{Tls, native_tls::TlsConnector};
    ///
    /// let connector = TlsConnector::builder().use_sni(false).build().unwrap();
    /// let tls = Tls::from_connector(connector);
    /// # drop(tls);
    /// ```
    pub fn from_connector(connector: TlsConnector) -> Self {
        Self { connector: Some(connector), ..Self::default() }
    }

    /// Verifies the server's certificate against `domain`, and sends it as SNI, instead of the
    /// URL's host (or its `domain=` query parameter). For a server reached by an address its
    /// certificate does not name.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::tls::Tls;
    ///
    /// let tls = Tls::new().domain("broker.internal");
    /// # drop(tls);
    /// ```
    pub fn domain(mut self, domain: &str) -> Self {
        self.domain = Some(domain.to_string());
        self
    }

    /// Fails a handshake not complete `timeout` after the TCP connection was established.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::transport::tls::Tls;
    ///
    /// let tls = Tls::new().handshake_timeout(Duration::from_secs(5));
    /// # drop(tls);
    /// ```
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = Some(timeout);
        self
    }

    fn connector(&self) -> io::Result<TlsConnector> {
        static SYSTEM: OnceLock<TlsConnector> = OnceLock::new();
        if let Some(connector) = &self.connector {
            return Ok(connector.clone());
        }
        if let Some(connector) = SYSTEM.get() {
            return Ok(connector.clone());
        }
        let connector = TlsConnector::new().map_err(|e| {
            io::Error::other(format!("could not set up TLS with the system roots: {e}"))
        })?;
        Ok(SYSTEM.get_or_init(|| connector).clone())
    }
}

impl Transport for Tls {
    fn open(&self, endpoint: &Endpoint) -> io::Result<Box<dyn Link>> {
        let options = tcp::query_options(endpoint, TLS_QUERY_KEYS)?;
        let domain = match (&self.domain, endpoint.query("domain")) {
            (Some(domain), _) => domain.clone(),
            (None, Some(domain)) if !domain.is_empty() => domain.to_string(),
            (None, Some(_)) => {
                return Err(bad_query_value(endpoint, "domain", "", "a host name"));
            }
            (None, None) => host(endpoint.address()).to_string(),
        };
        let connector = self.connector()?;
        let mut link = TcpLink::connect(endpoint.address())?;
        for option in &options {
            link.set_option(option)?;
        }
        Ok(Box::new(TlsLink {
            stage: Stage::Tcp(link),
            connector,
            domain,
            handshake_timeout: self.handshake_timeout,
            deadline: None,
            waker: None,
            insecure: self.insecure,
            retry: None,
            scratch: Vec::new(),
            notified: false,
            ack_marks: VecDeque::new(),
            plain: 0,
            acked: Cell::new(0),
        }))
    }
}

/// The host of a `host:port` address, without the brackets of an IPv6 literal.
fn host(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

/// A root certificate to trust, parsed when the transport is built.
#[derive(Clone)]
enum Root {
    Pem(Vec<u8>),
    Ready(Certificate),
}

/// A client identity, parsed when the transport is built.
#[derive(Clone)]
enum ClientIdentity {
    Pem { chain: Vec<u8>, key: Vec<u8> },
    Pkcs12 { der: Vec<u8>, password: String },
    Ready(Identity),
}

/// Builds a [`Tls`] transport. Nothing is parsed until [`TlsBuilder::build`], which reports
/// the first problem.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use tidegate::transport::tls::Tls;
///
/// # fn main() -> std::io::Result<()> {
/// let tls = Tls::builder()
///     .add_root_certificate_pem(&std::fs::read("ca.pem")?)
///     .identity_pkcs12(&std::fs::read("client.p12")?, "secret")
///     .alpn_protocols(&["amqp"])
///     .handshake_timeout(Duration::from_secs(5))
///     .build()?;
/// # drop(tls);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct TlsBuilder {
    roots: Vec<Root>,
    system_roots: bool,
    identity: Option<ClientIdentity>,
    min_protocol: Option<Protocol>,
    alpn: Vec<String>,
    use_sni: bool,
    domain: Option<String>,
    handshake_timeout: Option<Duration>,
    insecure: bool,
}

impl Default for TlsBuilder {
    fn default() -> Self {
        Self {
            roots: Vec::new(),
            system_roots: true,
            identity: None,
            min_protocol: Some(Protocol::Tlsv12),
            alpn: Vec::new(),
            use_sni: true,
            domain: None,
            handshake_timeout: None,
            insecure: false,
        }
    }
}

impl fmt::Debug for TlsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let identity = self.identity.as_ref().map(|identity| match identity {
            ClientIdentity::Pem { .. } => "PKCS#8 PEM",
            ClientIdentity::Pkcs12 { .. } => "PKCS#12",
            ClientIdentity::Ready(_) => "native_tls::Identity",
        });
        f.debug_struct("TlsBuilder")
            .field("roots", &self.roots.len())
            .field("system_roots", &self.system_roots)
            .field("identity", &identity)
            .field("min_protocol", &self.min_protocol)
            .field("alpn", &self.alpn)
            .field("use_sni", &self.use_sni)
            .field("domain", &self.domain)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl TlsBuilder {
    /// Trusts the certificates in `pem` (one or more PEM `CERTIFICATE` blocks) as roots, in
    /// addition to the system's unless [`TlsBuilder::disable_system_roots`] is called.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::tls::Tls;
    ///
    /// let builder = Tls::builder().add_root_certificate_pem(b"not a certificate");
    /// let err = builder.build().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn add_root_certificate_pem(mut self, pem: &[u8]) -> Self {
        self.roots.push(Root::Pem(pem.to_vec()));
        self
    }

    /// Trusts a parsed certificate as a root.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use tidegate::transport::tls::{Tls, native_tls::Certificate};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let ca = Certificate::from_der(&std::fs::read("ca.der")?)?;
    /// let tls = Tls::builder().add_root_certificate(ca).build()?;
    /// # drop(tls);
    /// # Ok(())
    /// # }
    /// ```
    pub fn add_root_certificate(mut self, certificate: Certificate) -> Self {
        self.roots.push(Root::Ready(certificate));
        self
    }

    /// Trusts only the roots added to this builder, not the system's.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::tls::Tls;
    ///
    /// let tls = Tls::builder().disable_system_roots().build().unwrap();
    /// # drop(tls);
    /// ```
    pub fn disable_system_roots(mut self) -> Self {
        self.system_roots = false;
        self
    }

    /// Shows a client certificate, for mutual TLS: `chain` holds the PEM certificates, the
    /// client's own first, then any intermediates; `key` its PKCS#8 PEM private key
    /// (`BEGIN PRIVATE KEY`).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::tls::Tls;
    ///
    /// let err = Tls::builder().identity_pem(b"no cert", b"no key").build().unwrap_err();
    /// assert!(err.to_string().contains("client certificate"), "{err}");
    /// ```
    pub fn identity_pem(mut self, chain: &[u8], key: &[u8]) -> Self {
        self.identity = Some(ClientIdentity::Pem { chain: chain.to_vec(), key: key.to_vec() });
        self
    }

    /// Shows a client certificate from a PKCS#12 archive (`.p12`, `.pfx`) and its password.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::tls::Tls;
    ///
    /// let err = Tls::builder().identity_pkcs12(b"not an archive", "pw").build().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn identity_pkcs12(mut self, der: &[u8], password: &str) -> Self {
        self.identity =
            Some(ClientIdentity::Pkcs12 { der: der.to_vec(), password: password.to_string() });
        self
    }

    /// Shows a parsed client identity.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use tidegate::transport::tls::{Tls, native_tls::Identity};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let identity = Identity::from_pkcs12(&std::fs::read("client.p12")?, "secret")?;
    /// let tls = Tls::builder().identity(identity).build()?;
    /// # drop(tls);
    /// # Ok(())
    /// # }
    /// ```
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = Some(ClientIdentity::Ready(identity));
        self
    }

    /// Sets the oldest protocol version accepted (TLS 1.2 by default).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::tls::{Tls, native_tls::Protocol};
    ///
    /// let tls = Tls::builder().min_protocol_version(Protocol::Tlsv13).build().unwrap();
    /// # drop(tls);
    /// ```
    pub fn min_protocol_version(mut self, version: Protocol) -> Self {
        self.min_protocol = Some(version);
        self
    }

    /// Offers these application protocols (ALPN), most preferred first.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::tls::Tls;
    ///
    /// let tls = Tls::builder().alpn_protocols(&["mqtt", "x-custom"]).build().unwrap();
    /// # drop(tls);
    /// ```
    pub fn alpn_protocols(mut self, protocols: &[&str]) -> Self {
        self.alpn = protocols.iter().map(|p| (*p).to_string()).collect();
        self
    }

    /// Whether to send the server name (SNI) in the handshake; on by default. The name is
    /// verified either way.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::tls::Tls;
    ///
    /// let tls = Tls::builder().use_sni(false).build().unwrap();
    /// # drop(tls);
    /// ```
    pub fn use_sni(mut self, on: bool) -> Self {
        self.use_sni = on;
        self
    }

    /// As [`Tls::domain`]: the name to verify and send as SNI instead of the URL's host.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::tls::Tls;
    ///
    /// let tls = Tls::builder().domain("localhost").build().unwrap();
    /// # drop(tls);
    /// ```
    pub fn domain(mut self, domain: &str) -> Self {
        self.domain = Some(domain.to_string());
        self
    }

    /// As [`Tls::handshake_timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::transport::tls::Tls;
    ///
    /// let tls = Tls::builder().handshake_timeout(Duration::from_millis(500)).build().unwrap();
    /// # drop(tls);
    /// ```
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = Some(timeout);
        self
    }

    /// Accepts any certificate for any name: the connection is encrypted, but to whoever
    /// answers. Anyone on the path can read and change it. For tests against throw-away
    /// servers only; every connection made this way logs a warning.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::tls::Tls;
    ///
    /// let tls = Tls::builder().danger_accept_invalid_certs_and_hostnames().build().unwrap();
    /// # drop(tls);
    /// ```
    pub fn danger_accept_invalid_certs_and_hostnames(mut self) -> Self {
        self.insecure = true;
        self
    }

    /// Parses the certificates and keys and builds the transport.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for a root certificate or client identity that does
    /// not parse, saying which; [`io::ErrorKind::Other`] if the TLS library refuses the
    /// settings.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::tls::Tls;
    ///
    /// let tls = Tls::builder().build().unwrap();
    /// # drop(tls);
    /// ```
    pub fn build(self) -> io::Result<Tls> {
        let invalid = |what: String, e: native_tls::Error| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {e}"))
        };
        let mut builder = TlsConnector::builder();
        for (i, root) in self.roots.into_iter().enumerate() {
            let certificates = match root {
                Root::Ready(certificate) => vec![certificate],
                Root::Pem(pem) => {
                    let what = || format!("root certificate PEM #{}", i + 1);
                    let certificates =
                        Certificate::stack_from_pem(&pem).map_err(|e| invalid(what(), e))?;
                    if certificates.is_empty() {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("{}: no CERTIFICATE block found", what()),
                        ));
                    }
                    certificates
                }
            };
            for certificate in certificates {
                builder.add_root_certificate(certificate);
            }
        }
        if let Some(identity) = self.identity {
            let identity = match identity {
                ClientIdentity::Ready(identity) => identity,
                ClientIdentity::Pem { chain, key } => Identity::from_pkcs8(&chain, &key)
                    .map_err(|e| invalid("client certificate (PKCS#8 PEM)".into(), e))?,
                ClientIdentity::Pkcs12 { der, password } => Identity::from_pkcs12(&der, &password)
                    .map_err(|e| invalid("client certificate (PKCS#12)".into(), e))?,
            };
            builder.identity(identity);
        }
        let alpn: Vec<&str> = self.alpn.iter().map(String::as_str).collect();
        builder
            .disable_built_in_roots(!self.system_roots)
            .min_protocol_version(self.min_protocol)
            .request_alpns(&alpn)
            .use_sni(self.use_sni)
            .danger_accept_invalid_certs(self.insecure)
            .danger_accept_invalid_hostnames(self.insecure);
        let connector = builder
            .build()
            .map_err(|e| io::Error::other(format!("the TLS library refused the settings: {e}")))?;
        Ok(Tls {
            connector: Some(connector),
            domain: self.domain,
            handshake_timeout: self.handshake_timeout,
            insecure: self.insecure,
        })
    }
}

/// The TCP link seen as a byte stream by the TLS session, counting what the session wrote to
/// it: records and handshake alike, in the bytes TCP's acknowledged count is in.
#[derive(Debug)]
struct Plain {
    tcp: TcpLink,
    written: u64,
}

impl Read for Plain {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.read(buf)
    }
}

impl Write for Plain {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n = self.tcp.write_vectored(bufs)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Link::flush(&mut self.tcp)
    }
}

/// Where a TLS link is in its life.
#[derive(Debug)]
enum Stage {
    /// The TCP connection is being established.
    Tcp(TcpLink),
    /// TCP is up; the handshake waits for the socket.
    Handshake(MidHandshakeTlsStream<Plain>),
    /// The handshake is done.
    Ready(TlsStream<Plain>),
    /// Only while moving from one stage to the next, or after a failed handshake.
    Failed,
}

/// A TLS link, opened by [`Tls`]. The driver holds it as a `Box<dyn Link>`.
///
/// # Examples
///
/// ```
/// use tidegate::transport::{Endpoint, Transport, tls::Tls};
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let url = format!("tls://{}?domain=localhost", listener.local_addr().unwrap());
/// let link = Tls::new().open(&Endpoint::parse(&url).unwrap()).unwrap();
/// assert!(format!("{link:?}").contains("TlsLink"));
/// ```
#[derive(Debug)]
pub struct TlsLink {
    stage: Stage,
    connector: TlsConnector,
    /// The name verified and sent as SNI.
    domain: String,
    handshake_timeout: Option<Duration>,
    /// Set when TCP is up and a handshake timeout applies.
    deadline: Option<Instant>,
    waker: Option<LinkWaker>,
    insecure: bool,
    /// Length of the record the last write left half-sent (`WouldBlock`): TLS must be given
    /// the same bytes again.
    retry: Option<usize>,
    /// Where small slices are gathered into one record.
    scratch: Vec<u8>,
    /// Whether the close_notify alert was sent.
    notified: bool,
    /// After each write the session took, oldest first and at most [`ACK_MARKS`]: the bytes
    /// written to TCP by then (handshake included) and the bytes written to the link by then.
    /// The session takes bytes only once their records are all written to TCP, so TCP's
    /// acknowledged count past a mark's first number means the peer has every record of the
    /// mark's bytes.
    ack_marks: VecDeque<(u64, u64)>,
    /// Bytes written to the link (what `write_vectored` returned, summed).
    plain: u64,
    /// The highest count [`bytes_acked`](Link::bytes_acked) has answered: never less later.
    acked: Cell<u64>,
}

impl TlsLink {
    fn tcp(&self) -> io::Result<&TcpLink> {
        match &self.stage {
            Stage::Tcp(tcp) => Ok(tcp),
            Stage::Handshake(mid) => Ok(&mid.get_ref().tcp),
            Stage::Ready(tls) => Ok(&tls.get_ref().tcp),
            Stage::Failed => {
                Err(io::Error::new(io::ErrorKind::NotConnected, "the TLS link failed"))
            }
        }
    }

    fn tcp_mut(&mut self) -> io::Result<&mut TcpLink> {
        match &mut self.stage {
            Stage::Tcp(tcp) => Ok(tcp),
            Stage::Handshake(mid) => Ok(&mut mid.get_mut().tcp),
            Stage::Ready(tls) => Ok(&mut tls.get_mut().tcp),
            Stage::Failed => {
                Err(io::Error::new(io::ErrorKind::NotConnected, "the TLS link failed"))
            }
        }
    }

    fn ready(&mut self) -> io::Result<&mut TlsStream<Plain>> {
        match &mut self.stage {
            Stage::Ready(tls) => Ok(tls),
            _ => Err(io::Error::new(io::ErrorKind::NotConnected, "the TLS handshake is not done")),
        }
    }

    /// Records how a handshake step went.
    fn handshake_step(
        &mut self,
        step: Result<TlsStream<Plain>, HandshakeError<Plain>>,
    ) -> io::Result<bool> {
        match step {
            Ok(tls) => {
                log::debug!("TLS handshake with {:?} done", self.domain);
                self.stage = Stage::Ready(tls);
                Ok(true)
            }
            Err(HandshakeError::WouldBlock(mid)) => {
                self.stage = Stage::Handshake(mid);
                Ok(false)
            }
            Err(HandshakeError::Failure(e)) => {
                let error = TlsError::from_report(e);
                log::debug!("TLS handshake with {:?} failed: {error}", self.domain);
                Err(io::Error::other(error))
            }
        }
    }
}

impl Link for TlsLink {
    fn register(&mut self, registration: &Registration<'_>) -> io::Result<()> {
        self.waker = Some(registration.waker());
        self.tcp_mut()?.register(registration)
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        self.waker = None;
        match self.tcp_mut() {
            Ok(tcp) => tcp.deregister(registry),
            // A failed handshake dropped the socket, which left the poll set with it.
            Err(_) => Ok(()),
        }
    }

    fn poll_connect(&mut self) -> io::Result<bool> {
        match std::mem::replace(&mut self.stage, Stage::Failed) {
            Stage::Tcp(mut tcp) => {
                let up = tcp.poll_connect();
                if !matches!(up, Ok(true)) {
                    self.stage = Stage::Tcp(tcp);
                    return up;
                }
                if self.insecure {
                    log::warn!(
                        "TLS to {:?} without certificate or name verification: anyone on the \
                         path can read and change this connection",
                        self.domain
                    );
                }
                if let Some(timeout) = self.handshake_timeout {
                    let deadline = Instant::now() + timeout;
                    self.deadline = Some(deadline);
                    if let Some(waker) = &self.waker {
                        waker.wake_at(deadline);
                    }
                }
                log::debug!("TCP up, starting the TLS handshake with {:?}", self.domain);
                let step = self.connector.connect(&self.domain, Plain { tcp, written: 0 });
                self.handshake_step(step)
            }
            Stage::Handshake(mid) => {
                if let (Some(deadline), Some(timeout)) = (self.deadline, self.handshake_timeout)
                    && Instant::now() >= deadline
                {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        TlsError::handshake_timeout(timeout),
                    ));
                }
                self.handshake_step(mid.handshake())
            }
            Stage::Ready(tls) => {
                self.stage = Stage::Ready(tls);
                Ok(true)
            }
            Stage::Failed => {
                Err(io::Error::new(io::ErrorKind::NotConnected, "the TLS handshake failed"))
            }
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // An alert from the server after the handshake (TLS 1.3 servers refuse a missing
        // client certificate this way) is an `Other` error: type it. Resets and the rest keep
        // their kinds, by which the driver tells how the connection ended.
        self.ready()?.read(buf).map_err(|e| match e.kind() {
            io::ErrorKind::Other if e.get_ref().is_some_and(|inner| !inner.is::<TlsError>()) => {
                io::Error::other(TlsError::from_report(e))
            }
            _ => e,
        })
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let Some(first) = bufs.iter().find(|b| !b.is_empty()) else {
            return Ok(0);
        };
        let Stage::Ready(tls) = &mut self.stage else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the TLS handshake is not done",
            ));
        };
        // One record at a time. A record left half-sent by `WouldBlock` must be offered again
        // with the same bytes: the driver retries with the same slices, and gathering them up
        // to the same length gives the same record.
        let limit = self.retry.take().unwrap_or(RECORD);
        let (result, offered) = if first.len() >= limit {
            (tls.write(&first[..limit]), limit)
        } else {
            self.scratch.clear();
            for buf in bufs {
                let take = buf.len().min(limit - self.scratch.len());
                self.scratch.extend_from_slice(&buf[..take]);
                if self.scratch.len() == limit {
                    break;
                }
            }
            (tls.write(&self.scratch), self.scratch.len())
        };
        match &result {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.retry = Some(offered),
            Ok(n) => {
                self.plain += *n as u64;
                let cipher = tls.get_ref().written;
                // Marks already acknowledged are answered by `acked`; past the limit, the
                // oldest go.
                while self.ack_marks.front().is_some_and(|&(_, plain)| plain <= self.acked.get())
                    || self.ack_marks.len() >= ACK_MARKS
                {
                    self.ack_marks.pop_front();
                }
                self.ack_marks.push_back((cipher, self.plain));
            }
            Err(_) => {}
        }
        result
    }

    /// The bytes written to this link whose records TCP's peer acknowledged whole, counted
    /// at the end of a write: the records carry the bytes with a header and a tag each, and
    /// the handshake came before them, so TCP's own count (`TCP_INFO` on Linux) is mapped back
    /// through what each write put on the socket. `None` until the handshake is done, and
    /// where TCP cannot tell.
    fn bytes_acked(&self) -> Option<u64> {
        let Stage::Ready(tls) = &self.stage else { return None };
        let records = tls.get_ref().tcp.bytes_acked()?;
        let within = self.ack_marks.partition_point(|&(cipher, _)| cipher <= records);
        let acked = match within {
            0 => self.acked.get(),
            n => self.acked.get().max(self.ack_marks[n - 1].1),
        };
        self.acked.set(acked);
        Some(acked)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.ready()?.flush()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        // The close_notify alert first, whole; a `WouldBlock` here is retried by the driver,
        // and ending TCP's write side before the alert is out would cut it short.
        if let Stage::Ready(tls) = &mut self.stage
            && !self.notified
        {
            tls.shutdown()?;
            self.notified = true;
        }
        self.tcp_mut()?.shutdown()
    }

    fn set_option(&mut self, option: &SocketOption) -> io::Result<()> {
        self.tcp_mut()?.set_option(option)
    }

    fn socket_option(&self, kind: SocketOptionKind) -> io::Result<SocketOption> {
        self.tcp()?.socket_option(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_taken_from_the_address() {
        assert_eq!(host("example.com:443"), "example.com");
        assert_eq!(host("127.0.0.1:443"), "127.0.0.1");
        assert_eq!(host("[::1]:443"), "::1");
        assert_eq!(host("nohost"), "nohost");
    }

    #[test]
    fn unknown_query_keys_are_refused() {
        let endpoint = Endpoint::parse("tls://127.0.0.1:1?domian=x").unwrap();
        let err = Tls::new().open(&endpoint).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("\"domian\""), "{err}");
        assert!(err.to_string().contains("domain"), "{err}");
    }
}
