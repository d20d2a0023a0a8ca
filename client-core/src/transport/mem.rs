//! `mem://name`: an in-process transport for tests, with a settable write capacity and a pause
//! switch, so a test can stall the peer deterministically instead of hoping a socket fills up.
//!
//! A [`MemListener`] bound to `name` accepts connections to `mem://name`; each one hands the
//! test a [`MemPeer`], the far end of the pipe. The client's writes land in a pipe of
//! [`MemPeer::set_write_capacity`] bytes (64 KiB by default); while it is full, or while the
//! peer is [paused](MemPeer::pause), the client's writes return `WouldBlock` and the outgoing
//! buffer fills up exactly as it would against a broker that stopped reading.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use tidegate::transport::mem::MemListener;
//!
//! let listener = MemListener::bind("docs-example").unwrap();
//! let link = tidegate::transport::lookup("mem").unwrap()
//!     .open(&tidegate::transport::Endpoint::parse("mem://docs-example").unwrap())
//!     .unwrap();
//! let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
//! peer.pause();
//! # drop(link);
//! ```

use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSlice, Read as _};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use super::{Endpoint, Link, LinkWaker, Registration, Transport};

/// The default number of bytes a pipe holds before the client's writes block.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tidegate::Bytes;
/// use tidegate::{Config, Connection};
/// use tidegate::transport::mem::{DEFAULT_WRITE_CAPACITY, MemListener};
///
/// let listener = MemListener::bind("doc-default-write-capacity").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
/// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
/// conn.try_send(Bytes::from(vec![7u8; DEFAULT_WRITE_CAPACITY + 10])).unwrap();
/// assert!(peer.wait_unread(DEFAULT_WRITE_CAPACITY, Duration::from_secs(5)));
/// assert_eq!(peer.unread(), DEFAULT_WRITE_CAPACITY, "the last 10 bytes wait in the buffer");
/// ```
pub const DEFAULT_WRITE_CAPACITY: usize = 64 * 1024;

/// The in-process transport, registered as `mem`.
///
/// # Examples
///
/// ```
/// assert!(tidegate::transport::lookup("mem").is_some());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Mem;

impl Transport for Mem {
    fn open(&self, endpoint: &Endpoint) -> io::Result<Box<dyn Link>> {
        let listeners = lock(&LISTENERS);
        let listener =
            listeners.get(endpoint.address()).and_then(Weak::upgrade).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("no mem listener is bound to {:?}", endpoint.address()),
                )
            })?;
        drop(listeners);
        let pipe = Arc::new(Pipe::default());
        lock(&listener.pending).push_back(MemPeer { pipe: pipe.clone() });
        listener.ready.notify_all();
        Ok(Box::new(MemLink { pipe }))
    }
}

static LISTENERS: LazyLock<Mutex<HashMap<String, Weak<ListenerShared>>>> =
    LazyLock::new(Mutex::default);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Default)]
struct ListenerShared {
    pending: Mutex<VecDeque<MemPeer>>,
    ready: Condvar,
}

/// Accepts connections to `mem://name`. Unbinds the name when dropped.
///
/// # Examples
///
/// ```
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("listener-example").unwrap();
/// assert!(MemListener::bind("listener-example").is_err(), "the name is taken");
/// drop(listener);
/// assert!(MemListener::bind("listener-example").is_ok());
/// ```
#[derive(Debug)]
pub struct MemListener {
    name: String,
    shared: Arc<ListenerShared>,
}

impl MemListener {
    /// Binds `name`.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::AddrInUse`] if a live listener has the name.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-memlistener-bind").unwrap();
    /// let err = MemListener::bind("doc-memlistener-bind").unwrap_err();
    /// assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    /// # drop(listener);
    /// ```
    pub fn bind(name: &str) -> io::Result<Self> {
        let mut listeners = lock(&LISTENERS);
        if listeners.get(name).is_some_and(|l| l.strong_count() > 0) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("mem name {name:?} is bound"),
            ));
        }
        let shared = Arc::new(ListenerShared::default());
        listeners.insert(name.to_string(), Arc::downgrade(&shared));
        Ok(Self { name: name.to_string(), shared })
    }

    /// Returns the URL that connects to this listener.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-memlistener-url").unwrap();
    /// assert_eq!(listener.url(), "mem://doc-memlistener-url");
    /// ```
    pub fn url(&self) -> String {
        format!("mem://{}", self.name)
    }

    /// Waits up to `timeout` for the next connection.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::TimedOut`] if none arrived.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until a connection arrives or the timeout passes.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use std::time::Duration;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-memlistener-accept-timeout").unwrap();
    /// let err = listener.accept_timeout(Duration::from_millis(10)).unwrap_err();
    /// assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// assert!(listener.accept_timeout(Duration::from_secs(5)).is_ok());
    /// # drop(conn);
    /// ```
    pub fn accept_timeout(&self, timeout: Duration) -> io::Result<MemPeer> {
        let deadline = Instant::now() + timeout;
        let mut pending = lock(&self.shared.pending);
        loop {
            if let Some(peer) = pending.pop_front() {
                return Ok(peer);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no connection arrived"));
            }
            pending = self
                .shared
                .ready
                .wait_timeout(pending, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Drop for MemListener {
    fn drop(&mut self) {
        let mut listeners = lock(&LISTENERS);
        if listeners.get(&self.name).is_some_and(|l| l.ptr_eq(&Arc::downgrade(&self.shared))) {
            listeners.remove(&self.name);
        }
    }
}

/// How one end of a pipe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Closed,
    Reset,
}

#[derive(Debug, Default)]
struct Pipe {
    inner: Mutex<PipeInner>,
    /// Signalled whenever anything in `inner` changes, for the blocking peer side.
    changed: Condvar,
}

#[derive(Debug)]
struct PipeInner {
    /// Bytes the client wrote that the peer has not read. Invariant: `len <= write_capacity`.
    outbound: VecDeque<u8>,
    /// Bytes the client wrote in all.
    written: u64,
    write_capacity: usize,
    paused: bool,
    /// Bytes the peer wrote that the client has not read.
    inbound: VecDeque<u8>,
    peer_end: Option<End>,
    client_end: Option<End>,
    /// Whether the peer keeps its side open after the client's end of stream; by default it
    /// answers with its own, as a server that closes when its client does.
    hold_open: bool,
    client_waker: Option<LinkWaker>,
}

impl Default for PipeInner {
    fn default() -> Self {
        Self {
            outbound: VecDeque::new(),
            written: 0,
            write_capacity: DEFAULT_WRITE_CAPACITY,
            paused: false,
            inbound: VecDeque::new(),
            peer_end: None,
            client_end: None,
            hold_open: false,
            client_waker: None,
        }
    }
}

impl Pipe {
    /// Changes the pipe, then tells both sides.
    fn update<T>(&self, f: impl FnOnce(&mut PipeInner) -> T) -> T {
        let mut inner = lock(&self.inner);
        let result = f(&mut inner);
        let waker = inner.client_waker.clone();
        drop(inner);
        self.changed.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
        result
    }
}

/// The client's end of a `mem` pipe.
#[derive(Debug)]
struct MemLink {
    pipe: Arc<Pipe>,
}

impl Link for MemLink {
    fn register(&mut self, registration: &Registration<'_>) -> io::Result<()> {
        lock(&self.pipe.inner).client_waker = Some(registration.waker());
        Ok(())
    }

    fn deregister(&mut self, _registry: &mio::Registry) -> io::Result<()> {
        lock(&self.pipe.inner).client_waker = None;
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut inner = lock(&self.pipe.inner);
        if inner.inbound.is_empty() {
            return match inner.peer_end {
                Some(End::Closed) => Ok(0),
                Some(End::Reset) => Err(io::ErrorKind::ConnectionReset.into()),
                // The peer answers the client's end of stream with its own once it has read
                // everything, unless it holds its side open.
                None if inner.client_end.is_some() && !inner.hold_open => Ok(0),
                None => Err(io::ErrorKind::WouldBlock.into()),
            };
        }
        let n = inner.inbound.read(buf)?;
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut inner = lock(&self.pipe.inner);
        match inner.peer_end {
            Some(End::Reset) => return Err(io::ErrorKind::ConnectionReset.into()),
            Some(End::Closed) => return Err(io::ErrorKind::BrokenPipe.into()),
            None => {}
        }
        let room = inner.write_capacity.saturating_sub(inner.outbound.len());
        if inner.paused || room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut written = 0;
        for buf in bufs {
            let n = buf.len().min(room - written);
            inner.outbound.extend(&buf[..n]);
            written += n;
            if written == room {
                break;
            }
        }
        inner.written += written as u64;
        drop(inner);
        self.pipe.changed.notify_all();
        Ok(written)
    }

    /// What the peer has read.
    fn bytes_acked(&self) -> Option<u64> {
        let inner = lock(&self.pipe.inner);
        Some(inner.written - inner.outbound.len() as u64)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.pipe.update(|inner| {
            inner.client_end.get_or_insert(End::Closed);
        });
        Ok(())
    }
}

impl Drop for MemLink {
    fn drop(&mut self) {
        let mut inner = lock(&self.pipe.inner);
        inner.client_end.get_or_insert(End::Closed);
        inner.client_waker = None;
        drop(inner);
        self.pipe.changed.notify_all();
    }
}

/// The far end of a `mem` connection, held by the test: it reads what the client wrote, can
/// stall, and can close or reset the connection.
///
/// Dropping it closes the connection (as [`MemPeer::close`]).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tidegate::Bytes;
/// use tidegate::{Config, Connection};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-mempeer").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
/// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
/// peer.pause();
/// conn.try_send(Bytes::from_static(b"held back")).unwrap();
/// peer.resume();
/// let mut buf = [0u8; 64];
/// let n = peer.read_timeout(&mut buf, Duration::from_secs(5)).unwrap();
/// assert_eq!(&buf[..n], b"held back");
/// ```
#[derive(Debug)]
pub struct MemPeer {
    pipe: Arc<Pipe>,
}

impl MemPeer {
    /// Stops taking bytes: the client's writes return `WouldBlock` until [`MemPeer::resume`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-mempeer-pause").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// conn.try_send(Bytes::from_static(b"held")).unwrap();
    /// assert!(!peer.wait_unread(1, Duration::from_millis(20)), "nothing gets through");
    /// assert_eq!(conn.stats().buffered, 4);
    /// ```
    pub fn pause(&self) {
        self.pipe.update(|inner| inner.paused = true);
    }

    /// Takes bytes again, and lets the client retry its writes.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-mempeer-resume").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// conn.try_send(Bytes::from_static(b"held")).unwrap();
    /// peer.resume();
    /// tidegate::block_on(conn.flush(None)).unwrap();
    /// assert_eq!(peer.unread(), 4);
    /// ```
    pub fn resume(&self) {
        self.pipe.update(|inner| inner.paused = false);
    }

    /// Sets how many unread bytes the pipe holds before the client's writes block.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-mempeer-set-write-capacity").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.set_write_capacity(3);
    /// conn.try_send(Bytes::from_static(b"hello")).unwrap();
    /// let mut buf = [0u8; 8];
    /// assert_eq!(peer.read_timeout(&mut buf, Duration::from_secs(5)).unwrap(), 3);
    /// assert_eq!(peer.read_timeout(&mut buf, Duration::from_secs(5)).unwrap(), 2);
    /// ```
    pub fn set_write_capacity(&self, bytes: usize) {
        self.pipe.update(|inner| inner.write_capacity = bytes);
    }

    /// Returns the number of bytes the client wrote that have not been read yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-mempeer-unread").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// conn.try_send(Bytes::from_static(b"abc")).unwrap();
    /// assert!(peer.wait_unread(3, Duration::from_secs(5)));
    /// let mut buf = [0u8; 2];
    /// peer.read_timeout(&mut buf, Duration::from_secs(5)).unwrap();
    /// assert_eq!(peer.unread(), 1);
    /// ```
    pub fn unread(&self) -> usize {
        lock(&self.pipe.inner).outbound.len()
    }

    /// Returns whether the client shut its side down or dropped the link.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-mempeer-client-closed").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// assert!(!peer.client_closed());
    /// tidegate::block_on(conn.close(Duration::from_secs(5)));
    /// assert!(peer.client_closed());
    /// ```
    pub fn client_closed(&self) -> bool {
        lock(&self.pipe.inner).client_end.is_some()
    }

    /// Reads what the client wrote, waiting up to `timeout` for at least one byte.
    ///
    /// Returns `Ok(0)` once the client has closed and everything was read.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::TimedOut`] if nothing arrived in time.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until bytes arrive, the client closes, or the timeout passes.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-mempeer-read-timeout").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// conn.try_send(Bytes::from_static(b"ping")).unwrap();
    /// let mut buf = [0u8; 16];
    /// let n = peer.read_timeout(&mut buf, Duration::from_secs(5)).unwrap();
    /// assert_eq!(&buf[..n], b"ping");
    /// tidegate::block_on(conn.close(Duration::from_secs(5)));
    /// assert_eq!(peer.read_timeout(&mut buf, Duration::from_secs(5)).unwrap(), 0);
    /// ```
    pub fn read_timeout(&self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        let deadline = Instant::now() + timeout;
        let mut inner = lock(&self.pipe.inner);
        loop {
            if !inner.outbound.is_empty() {
                let n = inner.outbound.read(buf)?;
                let waker = inner.client_waker.clone();
                drop(inner);
                // Room was made: the client may write again.
                if let Some(waker) = waker {
                    waker.wake();
                }
                return Ok(n);
            }
            if inner.client_end.is_some() {
                return Ok(0);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "nothing to read"));
            }
            inner = self
                .pipe
                .changed
                .wait_timeout(inner, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits up to `timeout` until the pipe holds at least `bytes` unread bytes.
    ///
    /// Returns whether it does.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until the condition holds or the timeout passes.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-mempeer-wait-unread").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// conn.try_send(Bytes::from_static(b"one")).unwrap();
    /// conn.try_send(Bytes::from_static(b"two")).unwrap();
    /// assert!(peer.wait_unread(6, Duration::from_secs(5)));
    /// assert!(!peer.wait_unread(7, Duration::from_millis(10)), "nothing more was sent");
    /// ```
    pub fn wait_unread(&self, bytes: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut inner = lock(&self.pipe.inner);
        loop {
            if inner.outbound.len() >= bytes {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            inner = self
                .pipe
                .changed
                .wait_timeout(inner, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Sends bytes to the client.
    ///
    /// A [`Connection`](crate::Connection) reads and discards them, as the core has no receive
    /// side; the example reads them from a link opened directly.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::transport::{self, Endpoint};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-mempeer-write").unwrap();
    /// let endpoint = Endpoint::parse(&listener.url()).unwrap();
    /// let mut link = transport::lookup("mem").unwrap().open(&endpoint).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.write(b"hello");
    /// let mut buf = [0u8; 16];
    /// assert_eq!(link.read(&mut buf).unwrap(), 5);
    /// assert_eq!(&buf[..5], b"hello");
    /// ```
    pub fn write(&self, bytes: &[u8]) {
        self.pipe.update(|inner| inner.inbound.extend(bytes));
    }

    /// Closes the connection in an orderly way: the client reads end of stream (which ends
    /// its receive side only), and its next write fails with `BrokenPipe`, which ends the
    /// connection with [`DisconnectKind::PeerClosed`](crate::DisconnectKind::PeerClosed).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection, DisconnectKind};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-mempeer-close").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.close();
    /// assert_eq!(tidegate::block_on(conn.recv(None)).unwrap(), None);
    /// conn.try_send(Bytes::from_static(b"too late")).unwrap();
    /// let report = tidegate::block_on(conn.close(Duration::from_secs(5)));
    /// assert_eq!(report.cause().map(|c| c.kind()), Some(DisconnectKind::PeerClosed));
    /// assert_eq!(report.unsent().len(), 1);
    /// ```
    pub fn close(&self) {
        self.pipe.update(|inner| {
            inner.peer_end.get_or_insert(End::Closed);
        });
    }

    /// Keeps this side open after the client ends its own, until [`MemPeer::close`] or
    /// [`MemPeer::reset`]: a peer that does not answer a half-close. By default a peer answers
    /// the client's end of stream with its own, as most servers do when their client closes,
    /// so a close finds the peer's end at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Config, Connection, Ending};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-mempeer-hold-open").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.hold_open();
    /// let report = tidegate::block_on(conn.close(Duration::from_millis(20)));
    /// assert_eq!(report.ending(), Ending::PeerKeptOpen);
    /// ```
    pub fn hold_open(&self) {
        self.pipe.update(|inner| inner.hold_open = true);
    }

    /// Resets the connection: the client's next read or write fails with `ConnectionReset`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{self, IoSlice};
    /// use std::time::Duration;
    /// use tidegate::transport::{self, Endpoint};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-mempeer-reset").unwrap();
    /// let endpoint = Endpoint::parse(&listener.url()).unwrap();
    /// let mut link = transport::lookup("mem").unwrap().open(&endpoint).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.reset();
    /// let err = link.write_vectored(&[IoSlice::new(b"late")]).unwrap_err();
    /// assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    /// ```
    pub fn reset(&self) {
        self.pipe.update(|inner| {
            inner.peer_end.get_or_insert(End::Reset);
        });
    }
}

impl Drop for MemPeer {
    fn drop(&mut self) {
        self.close();
    }
}
