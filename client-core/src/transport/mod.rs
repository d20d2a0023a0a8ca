//! The common transport interface, and the run-time registry of transports by URL scheme.
//!
//! A [`Transport`] opens an [`Endpoint`] (a parsed URL) and returns a [`Link`]: a non-blocking
//! byte pipe that the I/O driver reads, writes with vectored writes, flushes, shuts down and
//! configures with [`SocketOption`]s. The built-in transports implement the same public traits
//! a user plugin does, and are registered the same way, with [`register`]:
//!
//! | scheme | transport | link |
//! |---|---|---|
//! | `tcp://host:port?options` | [`tcp::Tcp`] | a non-blocking `mio` TCP stream |
//! | `tls://host:port?options` | [`tls::Tls`] | TLS (`native-tls`) over the TCP link |
//! | `unix:///path` | [`unix::Unix`] | a Unix domain stream socket (Unix only) |
//! | `mem://name` | [`mem::Mem`] | an in-process pipe for tests |
//!
//! # Choosing a transport
//!
//! [`Connection::open`](crate::Connection::open) parses the URL, then takes the transport set
//! with [`Config::transport`](crate::Config::transport) if there is one, or else the one
//! registered for the URL's scheme. The registered `tls` transport trusts the system roots
//! only; a connection that needs its own roots, a client certificate or a handshake timeout
//! sets a [`tls::Tls`] built for it on its `Config`.
//!
//! # Socket options
//!
//! Options come from two places, applied in this order, so that the second wins: the URL's
//! query (`tcp://h:1?nodelay=0&sndbuf=65536`, see [`tcp`] for the keys), then the
//! [`Config`](crate::Config)'s [`socket_option`](crate::Config::socket_option)s. A live link's
//! options can be changed and read back on the driver thread with
//! [`Connection::call_link`](crate::Connection::call_link), [`Link::set_option`] and
//! [`Link::socket_option`].
//!
//! # Examples
//!
//! ```
//! let schemes = tidegate::transport::schemes();
//! for builtin in ["mem", "tcp", "tls"] {
//!     assert!(schemes.contains(&builtin.to_string()));
//! }
//! # #[cfg(unix)]
//! assert!(schemes.contains(&"unix".to_string()));
//! ```

#[cfg(unix)]
mod acked;
mod endpoint;
mod link;
mod options;
mod registry;

pub mod mem;
pub mod tcp;
pub mod tls;
#[cfg(unix)]
pub mod unix;

pub use mio;

pub use endpoint::Endpoint;
pub use link::{Link, LinkWaker, Registration, Transport};
pub use options::{Keepalive, SocketOption, SocketOptionKind};
pub(crate) use registry::{check, open};
pub use registry::{lookup, register, schemes};
