//! `unix:///path`: a non-blocking `mio` Unix domain stream socket.
//!
//! The address is the socket's path (`unix:///run/broker.sock` connects to
//! `/run/broker.sock`). The link has the buffer size options ([`SocketOption::SendBufferSize`],
//! [`SocketOption::RecvBufferSize`]); the TCP ones do not apply and are refused with
//! [`io::ErrorKind::Unsupported`], which [`Connection::open`](crate::Connection::open) logs and
//! skips. The URL takes no query parameters.
//!
//! # Examples
//!
//! ```
//! use std::io::Read;
//! use tidegate::{Bytes, Config, Connection};
//!
//! let dir = std::env::temp_dir().join(format!("tidegate-unix-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("sock");
//! let _ = std::fs::remove_file(&path);
//! let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
//!
//! let conn = Connection::open(&format!("unix://{}", path.display()), Config::new()).unwrap();
//! conn.try_send(Bytes::from_static(b"over a unix socket")).unwrap();
//! tidegate::block_on(conn.flush(None)).unwrap();
//! let (mut peer, _) = listener.accept().unwrap();
//! let mut got = [0u8; 18];
//! peer.read_exact(&mut got).unwrap();
//! assert_eq!(&got, b"over a unix socket");
//! # drop(conn);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;

use mio::net::UnixStream;
use socket2::SockRef;

use super::{Endpoint, Link, Registration, SocketOption, SocketOptionKind, Transport};

/// The Unix domain socket transport, registered as `unix`.
///
/// # Examples
///
/// ```
/// assert!(tidegate::transport::lookup("unix").is_some());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Unix;

impl Transport for Unix {
    fn open(&self, endpoint: &Endpoint) -> io::Result<Box<dyn Link>> {
        if let Some((key, _)) = endpoint.query_pairs().next() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown query parameter {key:?} in {}: unix takes none", endpoint.url()),
            ));
        }
        Ok(Box::new(UnixLink::connect(endpoint.address())?))
    }
}

/// A Unix domain stream socket link.
///
/// # Examples
///
/// ```
/// use tidegate::transport::unix::UnixLink;
///
/// let err = UnixLink::connect("/nonexistent/tidegate.sock").unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
/// ```
#[derive(Debug)]
pub struct UnixLink {
    stream: UnixStream,
    connected: bool,
}

impl UnixLink {
    /// Starts connecting to the socket at `path`.
    ///
    /// # Errors
    ///
    /// The path does not exist, nobody listens on it (`ConnectionRefused`), the listener's
    /// backlog is full, or the socket cannot be created.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::unix::UnixLink;
    ///
    /// let path = std::env::temp_dir().join(format!("tidegate-unixlink-{}", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    /// let link = UnixLink::connect(path.to_str().unwrap()).unwrap();
    /// # drop((link, listener));
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn connect(path: &str) -> io::Result<Self> {
        Ok(Self { stream: UnixStream::connect(path)?, connected: false })
    }
}

impl Link for UnixLink {
    fn register(&mut self, registration: &Registration<'_>) -> io::Result<()> {
        registration.register(&mut self.stream)
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        registry.deregister(&mut self.stream)
    }

    fn poll_connect(&mut self) -> io::Result<bool> {
        if self.connected {
            return Ok(true);
        }
        if let Some(error) = self.stream.take_error()? {
            return Err(error);
        }
        match self.stream.peer_addr() {
            Ok(_) => {
                self.connected = true;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
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
        match option {
            SocketOption::SendBufferSize(_) | SocketOption::RecvBufferSize(_) => {
                super::tcp::set_socket_option(SockRef::from(&self.stream), option)
            }
            other => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{other:?} does not apply to a unix socket"),
            )),
        }
    }

    fn socket_option(&self, kind: SocketOptionKind) -> io::Result<SocketOption> {
        match kind {
            SocketOptionKind::SendBufferSize | SocketOptionKind::RecvBufferSize => {
                super::tcp::socket_option(SockRef::from(&self.stream), kind)
            }
            other => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{other:?} does not apply to a unix socket"),
            )),
        }
    }
}
