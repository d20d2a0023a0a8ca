//! `tcp://host:port`: a non-blocking `mio` TCP stream, with socket options through `socket2`.
//!
//! The host is resolved when the link is opened; the addresses are tried in order until one
//! connects.
//!
//! # Examples
//!
//! ```
//! use tidegate_core::transport::{Endpoint, Transport, tcp::Tcp};
//!
//! let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
//! let url = format!("tcp://{}", listener.local_addr().unwrap());
//! let link = Tcp.open(&Endpoint::parse(&url).unwrap()).unwrap();
//! # drop(link);
//! ```

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};

use mio::net::TcpStream;
use socket2::SockRef;

use super::{Endpoint, Link, Registration, SocketOption, Transport};

/// The TCP transport, registered as `tcp`.
///
/// # Examples
///
/// ```
/// assert!(tidegate_core::transport::lookup("tcp").is_some());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Tcp;

impl Transport for Tcp {
    fn open(&self, endpoint: &Endpoint) -> io::Result<Box<dyn Link>> {
        Ok(Box::new(TcpLink::connect(endpoint.address())?))
    }
}

/// A TCP link: connecting, then connected.
///
/// # Examples
///
/// ```
/// use tidegate_core::transport::tcp::TcpLink;
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
    /// Options applied so far, re-applied to a fallback socket.
    options: Vec<SocketOption>,
    /// Set while registered, to move the registration to a fallback socket.
    registration: Option<(mio::Registry, mio::Token)>,
    connected: bool,
}

impl TcpLink {
    /// Resolves `address` (`host:port`) and starts connecting to the first address; the
    /// others are tried in order if it fails.
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
    /// use tidegate_core::transport::tcp::TcpLink;
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let link = TcpLink::connect(&listener.local_addr().unwrap().to_string()).unwrap();
    /// assert!(TcpLink::connect("127.0.0.1").is_err(), "no port");
    /// # drop(link);
    /// ```
    pub fn connect(address: &str) -> io::Result<Self> {
        let mut addrs: Vec<SocketAddr> = address.to_socket_addrs()?.collect();
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{address:?} resolves to no address"),
            ));
        }
        addrs.reverse();
        let first = addrs.pop().expect("checked not empty above");
        Ok(Self {
            stream: TcpStream::connect(first)?,
            fallback: addrs,
            options: Vec::new(),
            registration: None,
            connected: false,
        })
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
    /// use tidegate_core::transport::tcp::TcpLink;
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
        let socket = SockRef::from(&self.stream);
        match option {
            SocketOption::NoDelay(on) => socket.set_tcp_nodelay(*on)?,
            SocketOption::SendBufferSize(size) => socket.set_send_buffer_size(*size)?,
            SocketOption::RecvBufferSize(size) => socket.set_recv_buffer_size(*size)?,
        }
        if !self.options.contains(option) {
            self.options.push(option.clone());
        }
        Ok(())
    }
}
