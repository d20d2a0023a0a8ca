//! [`Connection`], the handle both facades wrap, and the operations it starts.
//!
//! Each operation that may have to wait ([`SendOp`], [`FlushOp`], [`CloseOp`], [`Connected`])
//! is a [`Future`] that never blocks: it registers the [`Waker`] it is polled with, and the
//! driver wakes it when the operation can complete or its deadline passes. The async facade
//! awaits them; the blocking facade polls them with a waker that unparks its thread.

use std::borrow::Borrow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::batch::FrameBatch;
use crate::buffer::Header;
use crate::codec::EncodeError;
use crate::config::Config;
use crate::driver::{Driver, DriverShared};
use crate::error::{
    ConnectError, DisconnectKind, FlushError, LinkError, RecvError, SendError, TryRecvError,
    TrySendError,
};
use crate::inbound::Inbound;
use crate::report::{CloseReport, Stats};
use crate::state::{Admit, Effects, Phase, State};
use crate::transport::{self, Endpoint, Link, SocketOption};
use crate::watermark::WatermarkEvents;

/// The part of a connection shared by its handles, its operations and its driver.
#[derive(Debug)]
pub(crate) struct ConnShared {
    state: Mutex<State>,
    /// The receive side, behind a lock of its own so receiving never contends with sending.
    /// Lock order, if both are ever needed: `state`, then `inbound`.
    inbound: Mutex<Inbound>,
    driver: Weak<DriverShared>,
    id: usize,
    config: Config,
    endpoint: Endpoint,
}

impl ConnShared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn id(&self) -> usize {
        self.id
    }

    pub(crate) fn inbound(&self) -> MutexGuard<'_, Inbound> {
        self.inbound.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Offers a frame to the state: with framing, its header is encoded first, outside the
    /// lock; a payload the encoder refuses is `TooLarge`, reporting the encoder's maximum.
    #[inline]
    fn admit(
        &self,
        frame: Bytes,
        urgent: bool,
        deadline: Option<Instant>,
        waker: Option<&Waker>,
        fx: &mut Effects,
    ) -> Result<Admit, SendError<Bytes>> {
        let Some(encoder) = self.config.framing_ref().encoder() else {
            return self.lock().admit(frame, urgent, deadline, waker, Instant::now, fx);
        };
        let header = match Header::encode(&**encoder, frame.len()) {
            Ok(header) => header,
            Err(EncodeError::TooLarge { max, .. }) => {
                return Err(SendError::TooLarge { frame, capacity: max });
            }
        };
        self.lock().admit_framed(frame, header, urgent, deadline, waker, Instant::now, fx)
    }

    /// Offers a batch (its frozen bytes and frame lengths) to the state as one unit. With
    /// framing, the wire image (each frame's header, then its payload) is built first, outside
    /// the lock: one copy. Errors leave the batch with the caller.
    fn admit_batch(
        &self,
        bytes: &Bytes,
        lens: &[usize],
        deadline: Option<Instant>,
        waker: Option<&Waker>,
        fx: &mut Effects,
    ) -> Result<Admit, SendError<()>> {
        let Some(encoder) = self.config.framing_ref().encoder() else {
            if lens.is_empty() || lens.contains(&0) {
                return Err(SendError::Empty(()));
            }
            let admitted =
                self.lock().admit_batch(bytes.clone(), lens, 0, deadline, waker, Instant::now, fx);
            return admitted.map_err(|err| err.map(drop));
        };
        if lens.is_empty() {
            return Err(SendError::Empty(()));
        }
        let header_len = encoder.header_len();
        let headers = header_len * lens.len();
        let mut wire = BytesMut::with_capacity(bytes.len() + headers);
        let mut wire_lens = Vec::with_capacity(lens.len());
        let mut at = 0;
        for &len in lens {
            match Header::encode(&**encoder, len) {
                Ok(header) => wire.extend_from_slice(header.as_slice()),
                Err(EncodeError::TooLarge { max, .. }) => {
                    return Err(SendError::TooLarge { frame: (), capacity: max });
                }
            }
            wire.extend_from_slice(&bytes[at..at + len]);
            at += len;
            wire_lens.push(header_len + len);
        }
        let wire = wire.freeze();
        let admitted =
            self.lock().admit_batch(wire, &wire_lens, headers, deadline, waker, Instant::now, fx);
        admitted.map_err(|err| err.map(drop))
    }

    /// Carries out what a state change asked for. Call without holding the lock.
    #[inline]
    pub(crate) fn apply(&self, mut fx: Effects) {
        fx.wake_all();
        if !fx.notify_driver && fx.timer.is_none() {
            return;
        }
        let Some(driver) = self.driver.upgrade() else {
            return;
        };
        if fx.notify_driver {
            driver.notify(self.id);
        }
        if let Some(at) = fx.timer {
            driver.add_timer(at, self.id);
        }
    }
}

/// Begins closing when the last [`Connection`] handle is dropped.
#[derive(Debug)]
struct Handle {
    shared: Arc<ConnShared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut fx = Effects::default();
        let deadline = Instant::now() + self.shared.config.close_timeout_duration();
        let mut state = self.shared.lock();
        state.abandon();
        if state.begin_close(deadline, &mut fx) {
            log::debug!("last handle to {} dropped; draining", self.shared.endpoint.url());
        }
        drop(state);
        self.shared.apply(fx);
    }
}

/// One connection: a bounded outgoing buffer, a link, and the driver thread that moves bytes
/// from one to the other. Cloning gives another handle to the same connection.
///
/// This is the shared core the facades wrap; applications use `tidegate::Client` or
/// `tidegate::AsyncClient`.
///
/// When the last handle is dropped without [`Connection::close`], the driver keeps draining
/// the buffer for the configured [close timeout](Config::close_timeout), then discards what is
/// left with a warning in the log.
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use tidegate_core::{Config, Connection};
/// use tidegate_core::transport::mem::MemListener;
///
/// let listener = MemListener::bind("connection-example").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new().capacity(1024)).unwrap();
/// conn.try_send(Bytes::from_static(b"hello")).unwrap();
/// assert_eq!(conn.stats().frames_accepted, 1);
/// ```
#[derive(Clone)]
pub struct Connection {
    handle: Arc<Handle>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection").field("url", &self.shared().endpoint.url()).finish()
    }
}

impl Connection {
    /// Starts opening a connection to `url` on a driver thread of its own, and returns at once;
    /// [`Connection::connected`] resolves when the link is up. Frames sent meanwhile wait in
    /// the buffer.
    ///
    /// Name resolution for `tcp://` happens here, on the calling thread.
    ///
    /// # Errors
    ///
    /// A malformed URL, an unregistered scheme, an unusable configuration (a capacity of zero),
    /// or a transport that could not start opening the link.
    ///
    /// # Blocking
    ///
    /// Only as long as the transport takes to start opening the link: for `tcp://`, while a
    /// host name is resolved (numeric addresses do not wait); `mem://` never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_core::{Config, ConnectError, Connection};
    ///
    /// let err = Connection::open("gopher://x", Config::new()).unwrap_err();
    /// assert!(matches!(err, ConnectError::UnknownScheme { .. }));
    /// ```
    pub fn open(url: &str, config: Config) -> Result<Self, ConnectError> {
        config.validate()?;
        let (endpoint, mut link) = transport::open(url, &config)?;
        for option in config.socket_options() {
            match link.set_option(option) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
                    log::debug!("{url}: {option:?} does not apply to this link");
                }
                Err(e) => return Err(ConnectError::Io(e)),
            }
        }
        let driver = match config.io_group_ref() {
            Some(group) => group.pick().clone(),
            None => Driver::spawn().map_err(ConnectError::Io)?,
        };
        let shared = Arc::new_cyclic(|me| ConnShared {
            state: Mutex::new({
                let mut state = State::new(config.capacity_bytes());
                state.set_max_waiters(config.max_waiters_count());
                state.set_watermarks(config.watermark_levels());
                state.set_reserve(config.urgent_reserve_bytes());
                if let Some(budget) = config.budget_ref() {
                    state.set_budget(budget.shared().clone(), me.clone());
                }
                if let Some(encoder) = config.framing_ref().encoder() {
                    state.set_header_len(encoder.header_len());
                }
                state
            }),
            inbound: Mutex::new({
                let mut inbound = Inbound::new(
                    config.inbound_capacity_bytes(),
                    config.framing_ref().new_decoder(),
                );
                inbound.set_discard(config.discards_inbound());
                inbound
            }),
            driver: Arc::downgrade(driver.shared()),
            id: driver.shared().reserve_id(),
            config,
            endpoint,
        });
        driver.shared().attach(shared.clone(), link);
        log::debug!("opening {url}");
        Ok(Self { handle: Arc::new(Handle { shared }) })
    }

    fn shared(&self) -> &ConnShared {
        &self.handle.shared
    }

    /// Returns a future that resolves once the link is up, or with the reason it never will be.
    ///
    /// # Errors
    ///
    /// [`ConnectError::Failed`] if the attempt failed, [`ConnectError::TimedOut`] after the
    /// connect timeout, [`ConnectError::Closed`] if the connection was closed first.
    ///
    /// # Cancel safety
    ///
    /// See [`Connected`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("connected-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// futures::executor::block_on(conn.connected()).unwrap();
    /// ```
    pub fn connected(&self) -> Connected<'_> {
        Connected { conn: self }
    }

    /// Puts `frame` into the buffer if it fits now and no sender is waiting.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if the frame does not fit now or others wait ahead of it, and the
    /// other variants as described there. The error contains the frame.
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection, TrySendError};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("try-send-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new().capacity(4)).unwrap();
    /// let err = conn.try_send(Bytes::from_static(b"too long")).unwrap_err();
    /// assert!(matches!(err, TrySendError::TooLarge { capacity: 4, .. }));
    /// ```
    pub fn try_send(&self, frame: Bytes) -> Result<(), TrySendError<Bytes>> {
        self.try_send_lane(frame, false)
    }

    /// Like [`Connection::try_send`], for an urgent (control) frame: it may use the reserve
    /// kept for urgent frames ([`Config::urgent_reserve`]), passes data senders that wait,
    /// and goes on the wire at the next frame boundary, ahead of data frames not yet started.
    ///
    /// # Errors
    ///
    /// As [`Connection::try_send`]: [`TrySendError::Full`] if it does not fit now or urgent
    /// frames wait ahead of it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-try-send-urgent").unwrap();
    /// let config = Config::new().capacity(100).urgent_reserve(10);
    /// let conn = Connection::open(&listener.url(), config).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// conn.try_send(Bytes::from(vec![0; 90])).unwrap();
    /// assert!(conn.try_send(Bytes::from_static(b"data")).unwrap_err().is_full());
    /// conn.try_send_urgent(Bytes::from_static(b"ping")).unwrap();
    /// ```
    pub fn try_send_urgent(&self, frame: Bytes) -> Result<(), TrySendError<Bytes>> {
        self.try_send_lane(frame, true)
    }

    fn try_send_lane(&self, frame: Bytes, urgent: bool) -> Result<(), TrySendError<Bytes>> {
        let shared = self.shared();
        let mut fx = Effects::default();
        let admitted = shared.admit(frame, urgent, None, None, &mut fx);
        shared.apply(fx);
        match admitted {
            Ok(_) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// Starts sending `frame`: the returned operation resolves once the frame is in the buffer,
    /// or with an error carrying the frame. `deadline` bounds the wait for room; `None` waits
    /// as long as it takes (the configured send timeout is applied by the facades, not here).
    ///
    /// # Errors
    ///
    /// The operation resolves to a [`SendError`] that carries the frame:
    /// [`SendError::Timeout`] once `deadline` passes, [`SendError::TooLarge`] and
    /// [`SendError::Empty`] at once, [`SendError::Closed`] or [`SendError::Disconnected`] when
    /// the connection no longer takes frames.
    ///
    /// # Cancel safety
    ///
    /// See [`SendOp`].
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("send-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// futures::executor::block_on(conn.send(Bytes::from_static(b"hi"), None)).unwrap();
    /// ```
    pub fn send(&self, frame: Bytes, deadline: Option<Instant>) -> SendOp<&Self> {
        SendOp::new(self, frame, false, deadline)
    }

    /// Like [`Connection::send`], for an urgent (control) frame: it may use the reserve kept
    /// for urgent frames ([`Config::urgent_reserve`]), waits (if it must) in a line of its
    /// own that is served before every data sender, and goes on the wire at the next frame
    /// boundary, ahead of data frames not yet started.
    ///
    /// # Errors
    ///
    /// As [`Connection::send`].
    ///
    /// # Cancel safety
    ///
    /// See [`SendOp`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-send-urgent").unwrap();
    /// let config = Config::new().capacity(100).urgent_reserve(10);
    /// let conn = Connection::open(&listener.url(), config).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// conn.try_send(Bytes::from(vec![0; 90])).unwrap();
    /// futures::executor::block_on(conn.send_urgent(Bytes::from_static(b"ping"), None)).unwrap();
    /// ```
    pub fn send_urgent(&self, frame: Bytes, deadline: Option<Instant>) -> SendOp<&Self> {
        SendOp::new(self, frame, true, deadline)
    }

    /// Like [`Connection::send`], but the operation owns a handle to the connection, so it can
    /// be stored (for example inside a `Sink`).
    ///
    /// # Errors
    ///
    /// As [`Connection::send`].
    ///
    /// # Cancel safety
    ///
    /// See [`SendOp`].
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("send-owned-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let op = conn.clone().send_owned(Bytes::from_static(b"hi"), None);
    /// futures::executor::block_on(op).unwrap();
    /// ```
    pub fn send_owned(self, frame: Bytes, deadline: Option<Instant>) -> SendOp<Self> {
        SendOp::new(self, frame, false, deadline)
    }

    /// Puts every frame of `batch` into the buffer, as one unit, only if all of them fit now
    /// and no one is waiting; never waits.
    ///
    /// The frames go in together, back to back and in order, under one lock, or none does.
    /// A batch counts as one sender: it passes no one waiting, and it fits the capacity (less
    /// the urgent reserve) and any shared [`Budget`](crate::Budget) as a single frame of its
    /// total length (headers included, with framing) would. Its frames are counted one by one
    /// in [`Stats`] and in a close report.
    ///
    /// # Errors
    ///
    /// The error contains the whole batch: [`TrySendError::Full`] if it does not fit now or
    /// others wait ahead of it, [`TrySendError::TooLarge`] if it could never fit,
    /// [`TrySendError::Empty`] for a batch without frames or, without framing, with an empty
    /// frame, and the other variants as for [`Connection::try_send`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_core::{Config, Connection, FrameBatch};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-try-send-batch").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new().capacity(1024)).unwrap();
    /// let mut batch = FrameBatch::new();
    /// batch.push("one");
    /// batch.push("two");
    /// conn.try_send_batch(batch).unwrap();
    /// assert_eq!(conn.stats().frames_accepted, 2);
    /// ```
    pub fn try_send_batch(&self, batch: FrameBatch) -> Result<(), TrySendError<FrameBatch>> {
        let shared = self.shared();
        let (bytes, lens) = batch.into_parts();
        let mut fx = Effects::default();
        let admitted = shared.admit_batch(&bytes, &lens, None, None, &mut fx);
        shared.apply(fx);
        match admitted {
            Ok(_) => Ok(()),
            Err(err) => Err(err.map(|()| FrameBatch::from_parts(bytes, lens)).into()),
        }
    }

    /// Starts sending every frame of `batch` as one unit: the returned operation resolves once
    /// all of them are in the buffer, or with an error carrying the whole batch. `deadline`
    /// bounds the wait for room, as for [`Connection::send`].
    ///
    /// The batch takes one place in the same FIFO line as single frames: it passes no one and
    /// no one passes it. When there is room for all of it, the driver moves it into the buffer
    /// in one step; its frames then go on the wire back to back and in order, never
    /// interleaved with other frames.
    ///
    /// # Errors
    ///
    /// The operation resolves to a [`SendError`] that carries the batch:
    /// [`SendError::TooLarge`] at once if its total length (headers included, with framing)
    /// exceeds the capacity less the urgent reserve, or a shared budget's limit;
    /// [`SendError::Empty`] at once for a batch without frames or, without framing, with an
    /// empty frame; otherwise as [`Connection::send`].
    ///
    /// # Cancel safety
    ///
    /// See [`SendBatchOp`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_core::{Config, Connection, FrameBatch};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-send-batch").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let mut batch = FrameBatch::new();
    /// for i in 0..10u8 {
    ///     batch.push([i; 64]);
    /// }
    /// futures::executor::block_on(conn.send_batch(batch, None)).unwrap();
    /// assert_eq!(conn.stats().frames_accepted, 10);
    /// ```
    pub fn send_batch(&self, batch: FrameBatch, deadline: Option<Instant>) -> SendBatchOp<&Self> {
        SendBatchOp::new(self, batch, deadline)
    }

    /// Like [`Connection::send_batch`], but the operation owns a handle to the connection, so
    /// it can be stored.
    ///
    /// # Errors
    ///
    /// As [`Connection::send_batch`].
    ///
    /// # Cancel safety
    ///
    /// See [`SendBatchOp`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_core::{Config, Connection, FrameBatch};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-send-batch-owned").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let mut batch = FrameBatch::new();
    /// batch.push("hi");
    /// futures::executor::block_on(conn.clone().send_batch_owned(batch, None)).unwrap();
    /// ```
    pub fn send_batch_owned(
        self,
        batch: FrameBatch,
        deadline: Option<Instant>,
    ) -> SendBatchOp<Self> {
        SendBatchOp::new(self, batch, deadline)
    }

    /// Starts a flush: the returned operation resolves once every byte accepted before this
    /// call has been written to the link. Frames still waiting for room are not included.
    ///
    /// # Errors
    ///
    /// The operation resolves to [`FlushError::Timeout`] once `deadline` passes, and to
    /// [`FlushError::Closed`] or [`FlushError::Disconnected`] if the connection ends first or
    /// had already ended when the flush was first polled.
    ///
    /// # Cancel safety
    ///
    /// See [`FlushOp`].
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("flush-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// conn.try_send(Bytes::from_static(b"hi")).unwrap();
    /// futures::executor::block_on(conn.flush(None)).unwrap();
    /// assert_eq!(conn.stats().bytes_written, 2);
    /// ```
    pub fn flush(&self, deadline: Option<Instant>) -> FlushOp<'_> {
        let mut state = self.shared().lock();
        let (id, target) = (state.next_id(), state.flush_target());
        drop(state);
        FlushOp { conn: self, deadline, id, target, stage: FlushStage::Idle }
    }

    /// Starts closing: no new frames are taken, waiting senders get their frames back in a
    /// [`SendError::Closed`], and the driver drains the buffer for at most `timeout`. The
    /// returned operation resolves with the report once the link is gone.
    ///
    /// Only the first close receives the unsent frames in its report.
    ///
    /// # Cancel safety
    ///
    /// See [`CloseOp`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("close-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let report = futures::executor::block_on(conn.close(Duration::from_secs(5)));
    /// assert!(report.is_clean());
    /// ```
    pub fn close(&self, timeout: Duration) -> CloseOp<'_> {
        CloseOp { conn: self, timeout, started: false }
    }

    /// Finishes sending and keeps receiving: no new frames are taken (waiting senders get
    /// theirs back in a [`SendError::Closed`]), the driver drains the buffer, then ends the
    /// link's write side (for TCP, `shutdown(Write)`: a FIN after the last byte). The returned
    /// operation resolves once the write side has ended.
    ///
    /// This is the half-close idiom: the peer reads to the end of stream, sends its last
    /// answers and ends its own side; receive until `Ok(None)`. The connection ends once the
    /// peer has ended its side; what arrived stays readable, and [`Connection::close`] then
    /// returns the report at once.
    ///
    /// # Errors
    ///
    /// [`FlushError::Timeout`] at `deadline` (the drain goes on), [`FlushError::Closed`] or
    /// [`FlushError::Disconnected`] if the connection ended before its write side could.
    ///
    /// # Cancel safety
    ///
    /// The half-close starts at the first poll and goes on if the operation is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-shutdown-write").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.hold_open();
    /// conn.try_send(Bytes::from_static(b"question")).unwrap();
    /// futures::executor::block_on(conn.shutdown_write(None)).unwrap();
    /// // The peer reads everything, then the end of stream, and answers.
    /// let mut buf = [0u8; 16];
    /// assert_eq!(peer.read_timeout(&mut buf, Duration::from_secs(5)).unwrap(), 8);
    /// assert_eq!(peer.read_timeout(&mut buf, Duration::from_secs(5)).unwrap(), 0);
    /// peer.write(b"answer");
    /// peer.close();
    /// let answer = futures::executor::block_on(conn.recv(None)).unwrap();
    /// assert_eq!(answer.as_deref(), Some(&b"answer"[..]));
    /// assert_eq!(futures::executor::block_on(conn.recv(None)).unwrap(), None);
    /// assert!(futures::executor::block_on(conn.close(Duration::from_secs(5))).is_clean());
    /// ```
    pub fn shutdown_write(&self, deadline: Option<Instant>) -> ShutdownWriteOp<'_> {
        ShutdownWriteOp { conn: self, deadline, started: false }
    }

    /// Takes this handle if it is the last one to the connection, and returns the close that
    /// dropping it would start, to be waited for; `None` (and the handle is dropped) if other
    /// handles remain.
    ///
    /// This is how a facade drains on drop, as std's `BufWriter` does: the close drains for
    /// the configured close timeout, like [`Connection::close`]; since no handle is left to
    /// receive them, frames that could not be written are logged with a warning and dropped.
    /// The decision is race-free: of handles dropped at the same time on several threads,
    /// exactly one gets the close.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-close-if-last").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let other = conn.clone();
    /// assert!(other.close_if_last().is_none(), "`conn` is still there");
    /// conn.try_send(Bytes::from_static(b"kept")).unwrap();
    /// let report = futures::executor::block_on(conn.close_if_last().unwrap());
    /// assert!(report.is_clean());
    /// assert_eq!(report.bytes_written(), 4);
    /// ```
    pub fn close_if_last(self) -> Option<LastClose> {
        let handle = Arc::into_inner(self.handle)?;
        Some(LastClose { handle, started: false })
    }

    /// Runs `f` with the connection's link on the driver thread, between two rounds of I/O,
    /// and resolves to what it returns. This is how options are changed on a live link.
    ///
    /// `f` must not block: the driver serves every connection it hosts from that thread.
    ///
    /// # Errors
    ///
    /// Resolves to [`LinkError`] if the connection has ended, or ends before `f` runs.
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned operation does not stop `f`: it runs anyway, and its result is
    /// dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-call-link").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let debug = futures::executor::block_on(conn.call_link(|link| format!("{link:?}"))).unwrap();
    /// assert!(debug.contains("MemLink"));
    /// ```
    pub fn call_link<R, F>(&self, f: F) -> LinkCall<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut dyn Link) -> R + Send + 'static,
    {
        let slot = Arc::new(Mutex::new(CallSlot { result: None, waker: None }));
        let filler = slot.clone();
        let task: crate::state::LinkTask = Box::new(move |link| {
            let result = link.map(f);
            let mut slot = filler.lock().unwrap_or_else(PoisonError::into_inner);
            slot.result = Some(result);
            let waker = slot.waker.take();
            drop(slot);
            if let Some(waker) = waker {
                waker.wake();
            }
        });
        let shared = self.shared();
        let mut fx = Effects::default();
        let mut state = shared.lock();
        let gone = state.link_error();
        if gone.is_none() {
            state.push_link_call(task, &mut fx);
            drop(state);
            shared.apply(fx);
        } else {
            drop(state);
            if let Some(gone) = gone {
                task(Err(gone));
            }
        }
        LinkCall { slot, done: false }
    }

    /// Applies a socket option to the live link.
    ///
    /// # Errors
    ///
    /// Resolves to the link's error (`Unsupported` for options it does not have), or to
    /// `NotConnected` if the connection has ended.
    ///
    /// # Cancel safety
    ///
    /// As for [`Connection::call_link`]: the option is applied even if the operation is
    /// dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::SocketOption;
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let url = format!("tcp://{}", listener.local_addr().unwrap());
    /// let conn = Connection::open(&url, Config::new()).unwrap();
    /// let applied = futures::executor::block_on(async {
    ///     conn.connected().await.unwrap();
    ///     conn.set_option(SocketOption::NoDelay(false)).await
    /// });
    /// applied.unwrap();
    /// ```
    pub fn set_option(&self, option: SocketOption) -> impl Future<Output = std::io::Result<()>> {
        let call = self.call_link(move |link| link.set_option(&option));
        async move { call.await? }
    }

    /// Subscribes to the crossings of the buffer's watermarks (set with
    /// [`Config::watermarks`]). Without watermarks, the subscription only ends with the
    /// connection.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection, Watermark};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-connection-watermarks").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new().capacity(100).watermarks(80, 20))
    ///     .unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// let mut events = conn.watermarks();
    /// conn.try_send(Bytes::from(vec![0; 80])).unwrap();
    /// assert_eq!(events.try_next(), Some(Watermark::High));
    /// ```
    pub fn watermarks(&self) -> WatermarkEvents {
        WatermarkEvents::new(self.handle.shared.clone())
    }

    /// Returns a snapshot of the connection's counters.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("stats-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new().capacity(4096)).unwrap();
    /// assert_eq!(conn.stats().capacity, 4096);
    /// ```
    pub fn stats(&self) -> Stats {
        let stats = self.shared().lock().stats();
        let inbound = self.shared().inbound().stats();
        Stats {
            inbound_capacity: inbound.capacity,
            inbound_held: inbound.held,
            inbound_high_water: inbound.high_water,
            bytes_received: inbound.bytes_received,
            bytes_delivered: inbound.bytes_delivered,
            inbound_discarded: inbound.discarded,
            receivers: inbound.receivers,
            ..stats
        }
    }

    /// Starts a receive: the returned operation resolves to the next chunk of bytes the peer
    /// sent (or, with [framing](Config::framing), the next whole frame), to `None` once the
    /// stream ended in order and everything before the end was received, or to an error.
    /// `deadline` bounds the wait; `None` waits as long as it takes.
    ///
    /// Unframed, a chunk is whatever the buffer holds, up to 64 KiB, copied out of it.
    /// Receivers are served in the order they started waiting.
    ///
    /// # Errors
    ///
    /// [`RecvError::Timeout`] once `deadline` passes with nothing received,
    /// [`RecvError::Disconnected`] after everything that arrived before the connection
    /// failed, [`RecvError::Decode`] for frames that cannot be decoded.
    ///
    /// # Cancel safety
    ///
    /// See [`RecvOp`]: dropping it loses no data.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-connection-recv").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.write(b"ack");
    /// peer.close();
    /// futures::executor::block_on(async {
    ///     assert_eq!(conn.recv(None).await.unwrap().unwrap(), "ack");
    ///     assert_eq!(conn.recv(None).await.unwrap(), None, "then the end of the stream");
    /// });
    /// ```
    pub fn recv(&self, deadline: Option<Instant>) -> RecvOp<&Self> {
        RecvOp { conn: self, deadline, ticket: None, done: false }
    }

    /// Like [`Connection::recv`], owning a handle to the connection, so the operation can be
    /// stored (in a stream, for example).
    ///
    /// # Errors
    ///
    /// As [`Connection::recv`].
    ///
    /// # Cancel safety
    ///
    /// See [`RecvOp`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-connection-recv-owned").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// let op = conn.clone().recv_owned(None);
    /// peer.write(b"hi");
    /// assert_eq!(futures::executor::block_on(op).unwrap().unwrap(), "hi");
    /// ```
    pub fn recv_owned(self, deadline: Option<Instant>) -> RecvOp<Self> {
        RecvOp { conn: self, deadline, ticket: None, done: false }
    }

    /// Receives without waiting: the next chunk (or frame) if one is there and no receiver
    /// waits ahead, `Ok(None)` once the stream ended in order.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if there is nothing now, and as [`Connection::recv`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-connection-try-recv").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// assert!(conn.try_recv().unwrap_err().is_empty());
    /// ```
    pub fn try_recv(&self) -> Result<Option<Bytes>, TryRecvError> {
        let shared = self.shared();
        let mut fx = Effects::default();
        let polled = shared.inbound().poll_recv(&mut None, None, None, &mut fx);
        shared.apply(fx);
        match polled {
            Poll::Ready(Ok(item)) => Ok(item),
            Poll::Ready(Err(RecvError::Disconnected(cause))) => {
                Err(TryRecvError::Disconnected(cause))
            }
            Poll::Ready(Err(RecvError::Decode(err))) => Err(TryRecvError::Decode(err)),
            Poll::Ready(Err(_)) | Poll::Pending => Err(TryRecvError::Empty),
        }
    }

    /// Returns the largest frame a data send can ever accept: the capacity less the urgent
    /// reserve and, with [framing](Config::framing), less the header and at most the
    /// encoder's [maximum](crate::codec::Encoder::max_payload_len). Larger frames are
    /// [`SendError::TooLarge`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_core::codec::LengthDelimited;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-max-frame-len").unwrap();
    /// let config = Config::new().capacity(1000).urgent_reserve(100).framing(LengthDelimited::new());
    /// let conn = Connection::open(&listener.url(), config).unwrap();
    /// assert_eq!(conn.max_frame_len(), 1000 - 100 - 4);
    /// ```
    pub fn max_frame_len(&self) -> usize {
        let config = &self.shared().config;
        let max = config.capacity_bytes() - config.urgent_reserve_bytes();
        match config.framing_ref().encoder() {
            None => max,
            Some(encoder) => max
                .saturating_sub(encoder.header_len())
                .min(encoder.max_payload_len().unwrap_or(usize::MAX)),
        }
    }

    /// Returns whether the connection no longer takes frames (closing, closed or
    /// disconnected).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("is-closed-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// assert!(!conn.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self.shared().lock().phase(), Phase::Closing | Phase::Closed)
    }

    /// Returns the settings the connection was opened with.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("config-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new().capacity(10)).unwrap();
    /// assert_eq!(conn.config().capacity_bytes(), 10);
    /// ```
    pub fn config(&self) -> &Config {
        &self.shared().config
    }

    /// Returns the endpoint the connection was opened to.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("endpoint-example").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// assert_eq!(conn.endpoint().scheme(), "mem");
    /// ```
    pub fn endpoint(&self) -> &Endpoint {
        &self.shared().endpoint
    }
}

/// Where a [`SendOp`] is.
#[derive(Debug)]
enum Stage {
    /// Not polled yet: the frame is still here.
    Start { frame: Bytes, urgent: bool, deadline: Option<Instant> },
    /// The frame waits in the connection's queue under this ticket.
    Queued { ticket: u64 },
    /// Completed, or cancelled.
    Done,
}

/// A send in progress, returned by [`Connection::send`] and [`Connection::send_owned`].
///
/// Resolves to `Ok(())` once the frame is in the buffer, or to an error carrying the frame.
///
/// # Cancel safety
///
/// Dropping a pending `SendOp` removes its frame from the queue, unless the driver already
/// moved it into the buffer, in which case it will be sent. To find out which, and to get the
/// frame back, call [`SendOp::cancel`] instead of dropping it.
///
/// # Panics
///
/// Polling after it returned `Ready` panics.
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use tidegate_core::{Config, Connection};
/// use tidegate_core::transport::mem::MemListener;
///
/// let listener = MemListener::bind("send-op-example").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
/// let op = conn.send(Bytes::from_static(b"x"), None);
/// assert_eq!(op.cancel(), Some(Bytes::from_static(b"x")), "never polled: never sent");
/// ```
#[must_use = "a send does nothing unless polled"]
pub struct SendOp<C: Borrow<Connection>> {
    conn: C,
    stage: Stage,
}

impl<C: Borrow<Connection>> fmt::Debug for SendOp<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendOp").field("stage", &self.stage).finish_non_exhaustive()
    }
}

impl<C: Borrow<Connection>> SendOp<C> {
    fn new(conn: C, frame: Bytes, urgent: bool, deadline: Option<Instant>) -> Self {
        Self { conn, stage: Stage::Start { frame, urgent, deadline } }
    }

    /// Polls with a bare waker: the blocking facade's way in.
    ///
    /// On `Pending`, `waker` is woken once the frame was accepted or the wait ended; polling
    /// again then returns `Ready`.
    ///
    /// # Panics
    ///
    /// After it returned `Ready`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::{Poll, Waker};
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-sendop-poll-with").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let mut op = conn.send(Bytes::from_static(b"room to spare"), None);
    /// assert!(matches!(op.poll_with(Waker::noop()), Poll::Ready(Ok(()))));
    /// ```
    pub fn poll_with(&mut self, waker: &Waker) -> Poll<Result<(), SendError<Bytes>>> {
        let shared = self.conn.borrow().shared();
        let mut fx = Effects::default();
        let result = match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Start { frame, urgent, deadline } => {
                let admitted = shared.admit(frame, urgent, deadline, Some(waker), &mut fx);
                match admitted {
                    Ok(Admit::Accepted) => Poll::Ready(Ok(())),
                    Ok(Admit::Queued(ticket)) => {
                        self.stage = Stage::Queued { ticket };
                        Poll::Pending
                    }
                    Err(err) => Poll::Ready(Err(err)),
                }
            }
            Stage::Queued { ticket } => match shared.lock().poll_queued(ticket, waker, &mut fx) {
                Some(outcome) => Poll::Ready(outcome),
                None => {
                    self.stage = Stage::Queued { ticket };
                    Poll::Pending
                }
            },
            Stage::Done => panic!("SendOp polled after completion"),
        };
        shared.apply(fx);
        result
    }

    /// Returns whether the frame is waiting in the queue.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::Waker;
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-sendop-is-queued").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new().capacity(4)).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// conn.try_send(Bytes::from_static(b"full")).unwrap();
    /// let mut op = conn.send(Bytes::from_static(b"next"), None);
    /// assert!(!op.is_queued(), "not polled yet");
    /// assert!(op.poll_with(Waker::noop()).is_pending());
    /// assert!(op.is_queued());
    /// ```
    pub fn is_queued(&self) -> bool {
        matches!(self.stage, Stage::Queued { .. })
    }

    /// Gives up: returns the frame if it was not accepted, or `None` if it was (it will be
    /// sent) or the operation already completed.
    ///
    /// A queued frame leaves the queue at once, and the sender behind it is reconsidered.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::Waker;
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-sendop-cancel").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new().capacity(4)).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// conn.try_send(Bytes::from_static(b"full")).unwrap();
    /// let mut op = conn.send(Bytes::from_static(b"next"), None);
    /// assert!(op.poll_with(Waker::noop()).is_pending());
    /// assert_eq!(op.cancel(), Some(Bytes::from_static(b"next")));
    /// assert_eq!(conn.stats().waiters, 0);
    /// ```
    pub fn cancel(mut self) -> Option<Bytes> {
        self.take_back()
    }

    fn take_back(&mut self) -> Option<Bytes> {
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Start { frame, .. } => Some(frame),
            Stage::Queued { ticket } => {
                let shared = self.conn.borrow().shared();
                let mut fx = Effects::default();
                let frame = shared.lock().cancel(ticket, &mut fx);
                shared.apply(fx);
                frame
            }
            Stage::Done => None,
        }
    }
}

impl<C: Borrow<Connection> + Unpin> Future for SendOp<C> {
    type Output = Result<(), SendError<Bytes>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_with(cx.waker())
    }
}

impl<C: Borrow<Connection>> Drop for SendOp<C> {
    fn drop(&mut self) {
        // Leave the queue, so the next waiter is reconsidered and no capacity is held for a
        // sender that is gone.
        if matches!(self.stage, Stage::Queued { .. }) && self.take_back().is_some() {
            log::trace!("a pending send was dropped; its frame was not sent");
        }
    }
}

/// Where a [`SendBatchOp`] is.
#[derive(Debug)]
enum BatchStage {
    /// Not polled yet.
    Start { deadline: Option<Instant> },
    /// The batch waits in the connection's queue under this ticket.
    Queued { ticket: u64 },
    /// Completed, or cancelled.
    Done,
}

/// A batch send in progress, returned by [`Connection::send_batch`] and
/// [`Connection::send_batch_owned`].
///
/// Resolves to `Ok(())` once every frame of the batch is in the buffer, or to an error
/// carrying the whole batch. The batch is one unit: all of its frames are accepted together,
/// or none.
///
/// # Cancel safety
///
/// Dropping a pending `SendBatchOp` removes the batch from the queue, unless the driver
/// already moved it into the buffer, in which case all of its frames will be sent. To find out
/// which, and to get the batch back, call [`SendBatchOp::cancel`] instead of dropping it.
///
/// # Panics
///
/// Polling after it returned `Ready` panics.
///
/// # Examples
///
/// ```
/// use tidegate_core::{Config, Connection, FrameBatch};
/// use tidegate_core::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-send-batch-op").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
/// let mut batch = FrameBatch::new();
/// batch.push("x");
/// let op = conn.send_batch(batch.clone(), None);
/// assert_eq!(op.cancel(), Some(batch), "never polled: never sent");
/// ```
#[must_use = "a send does nothing unless polled"]
pub struct SendBatchOp<C: Borrow<Connection>> {
    conn: C,
    /// The caller's batch, frozen, until the operation completes: what goes back on an error
    /// or a cancel.
    batch: Option<(Bytes, Vec<usize>)>,
    stage: BatchStage,
}

impl<C: Borrow<Connection>> fmt::Debug for SendBatchOp<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendBatchOp").field("stage", &self.stage).finish_non_exhaustive()
    }
}

impl<C: Borrow<Connection>> SendBatchOp<C> {
    fn new(conn: C, batch: FrameBatch, deadline: Option<Instant>) -> Self {
        Self { conn, batch: Some(batch.into_parts()), stage: BatchStage::Start { deadline } }
    }

    /// The batch back, out of `slot`.
    fn thaw(slot: &mut Option<(Bytes, Vec<usize>)>) -> FrameBatch {
        let (bytes, lens) = slot.take().unwrap_or_default();
        FrameBatch::from_parts(bytes, lens)
    }

    /// Polls with a bare waker: the blocking facade's way in.
    ///
    /// On `Pending`, `waker` is woken once the batch was accepted or the wait ended; polling
    /// again then returns `Ready`.
    ///
    /// # Panics
    ///
    /// After it returned `Ready`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::{Poll, Waker};
    /// use tidegate_core::{Config, Connection, FrameBatch};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-send-batch-op-poll-with").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let mut batch = FrameBatch::new();
    /// batch.push("room to spare");
    /// let mut op = conn.send_batch(batch, None);
    /// assert!(matches!(op.poll_with(Waker::noop()), Poll::Ready(Ok(()))));
    /// ```
    pub fn poll_with(&mut self, waker: &Waker) -> Poll<Result<(), SendError<FrameBatch>>> {
        let shared = self.conn.borrow().shared();
        let mut fx = Effects::default();
        let result = match std::mem::replace(&mut self.stage, BatchStage::Done) {
            BatchStage::Start { deadline } => {
                let (bytes, lens) = self.batch.as_ref().expect("kept until completion");
                match shared.admit_batch(bytes, lens, deadline, Some(waker), &mut fx) {
                    Ok(Admit::Accepted) => {
                        self.batch = None;
                        Poll::Ready(Ok(()))
                    }
                    Ok(Admit::Queued(ticket)) => {
                        self.stage = BatchStage::Queued { ticket };
                        Poll::Pending
                    }
                    Err(err) => Poll::Ready(Err(err.map(|()| Self::thaw(&mut self.batch)))),
                }
            }
            BatchStage::Queued { ticket } => {
                let outcome = shared.lock().poll_queued(ticket, waker, &mut fx);
                match outcome {
                    Some(Ok(())) => {
                        self.batch = None;
                        Poll::Ready(Ok(()))
                    }
                    // The state's copy is dropped first, so the batch's bytes are not copied.
                    Some(Err(err)) => Poll::Ready(Err(err.map(|wire| {
                        drop(wire);
                        Self::thaw(&mut self.batch)
                    }))),
                    None => {
                        self.stage = BatchStage::Queued { ticket };
                        Poll::Pending
                    }
                }
            }
            BatchStage::Done => panic!("SendBatchOp polled after completion"),
        };
        shared.apply(fx);
        result
    }

    /// Returns whether the batch is waiting in the queue.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::Waker;
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection, FrameBatch};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-send-batch-op-is-queued").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new().capacity(4)).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// conn.try_send(Bytes::from_static(b"full")).unwrap();
    /// let mut batch = FrameBatch::new();
    /// batch.push("ne");
    /// batch.push("xt");
    /// let mut op = conn.send_batch(batch, None);
    /// assert!(op.poll_with(Waker::noop()).is_pending());
    /// assert!(op.is_queued());
    /// ```
    pub fn is_queued(&self) -> bool {
        matches!(self.stage, BatchStage::Queued { .. })
    }

    /// Gives up: returns the batch if it was not accepted, or `None` if it was (all of its
    /// frames will be sent) or the operation already completed.
    ///
    /// A queued batch leaves the queue at once, and the sender behind it is reconsidered.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::Waker;
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection, FrameBatch};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-send-batch-op-cancel").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new().capacity(4)).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// conn.try_send(Bytes::from_static(b"full")).unwrap();
    /// let mut batch = FrameBatch::new();
    /// batch.push("ne");
    /// batch.push("xt");
    /// let mut op = conn.send_batch(batch.clone(), None);
    /// assert!(op.poll_with(Waker::noop()).is_pending());
    /// assert_eq!(op.cancel(), Some(batch));
    /// assert_eq!(conn.stats().waiters, 0);
    /// ```
    pub fn cancel(mut self) -> Option<FrameBatch> {
        self.take_back()
    }

    fn take_back(&mut self) -> Option<FrameBatch> {
        match std::mem::replace(&mut self.stage, BatchStage::Done) {
            BatchStage::Start { .. } => Some(Self::thaw(&mut self.batch)),
            BatchStage::Queued { ticket } => {
                let shared = self.conn.borrow().shared();
                let mut fx = Effects::default();
                let wire = shared.lock().cancel(ticket, &mut fx);
                shared.apply(fx);
                match wire {
                    Some(wire) => {
                        drop(wire);
                        Some(Self::thaw(&mut self.batch))
                    }
                    None => {
                        self.batch = None;
                        None
                    }
                }
            }
            BatchStage::Done => None,
        }
    }
}

impl<C: Borrow<Connection> + Unpin> Future for SendBatchOp<C> {
    type Output = Result<(), SendError<FrameBatch>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_with(cx.waker())
    }
}

impl<C: Borrow<Connection>> Drop for SendBatchOp<C> {
    fn drop(&mut self) {
        // Leave the queue, so the next waiter is reconsidered and no capacity is held for a
        // sender that is gone.
        if matches!(self.stage, BatchStage::Queued { .. }) && self.take_back().is_some() {
            log::trace!("a pending batch send was dropped; its frames were not sent");
        }
    }
}

/// Where a [`FlushOp`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlushStage {
    /// Not polled yet.
    Idle,
    /// Registered with the connection, to be woken when the bytes are written.
    Waiting,
    /// Resolved.
    Done,
}

/// A flush in progress, returned by [`Connection::flush`].
///
/// # Cancel safety
///
/// Dropping it stops waiting; it changes nothing else.
///
/// # Examples
///
/// A flush that gives up on a peer that stopped reading:
///
/// ```
/// use std::time::{Duration, Instant};
/// use bytes::Bytes;
/// use tidegate_core::{Config, Connection, FlushError, FlushOp};
/// use tidegate_core::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-flushop").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
/// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
/// peer.pause();
/// conn.try_send(Bytes::from_static(b"data")).unwrap();
/// let op: FlushOp<'_> = conn.flush(Some(Instant::now() + Duration::from_millis(20)));
/// let result = futures::executor::block_on(op);
/// assert!(matches!(result, Err(FlushError::Timeout)));
/// ```
#[must_use = "a flush does nothing unless polled"]
#[derive(Debug)]
pub struct FlushOp<'a> {
    conn: &'a Connection,
    deadline: Option<Instant>,
    id: u64,
    /// The count of bytes written that completes the flush: all bytes accepted before it.
    target: u64,
    stage: FlushStage,
}

impl FlushOp<'_> {
    /// Polls with a bare waker. On `Pending`, `waker` is woken once the bytes are written or
    /// the flush ends otherwise.
    ///
    /// # Panics
    ///
    /// After it returned `Ready`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::Waker;
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-flushop-poll-with").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// conn.try_send(Bytes::from_static(b"data")).unwrap();
    /// let mut op = conn.flush(None);
    /// assert!(op.poll_with(Waker::noop()).is_pending());
    /// peer.resume();
    /// futures::executor::block_on(op).unwrap();
    /// ```
    pub fn poll_with(&mut self, waker: &Waker) -> Poll<Result<(), FlushError>> {
        assert!(self.stage != FlushStage::Done, "FlushOp polled after completion");
        let shared = self.conn.shared();
        let mut fx = Effects::default();
        let result = shared.lock().poll_flush(self.id, self.target, self.deadline, waker, &mut fx);
        shared.apply(fx);
        match result {
            Some(result) => {
                self.stage = FlushStage::Done;
                Poll::Ready(result)
            }
            None => {
                self.stage = FlushStage::Waiting;
                Poll::Pending
            }
        }
    }
}

impl Future for FlushOp<'_> {
    type Output = Result<(), FlushError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_with(cx.waker())
    }
}

impl Drop for FlushOp<'_> {
    fn drop(&mut self) {
        if self.stage == FlushStage::Waiting {
            self.conn.shared().lock().cancel_flush(self.id, self.target);
        }
    }
}

/// A close in progress, returned by [`Connection::close`].
///
/// # Cancel safety
///
/// The close starts at the first poll and goes on if the operation is dropped; a later close
/// returns the report (without the unsent frames, if an earlier close received them).
///
/// # Examples
///
/// A close that runs out of time against a peer that stopped reading:
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use tidegate_core::{CloseOp, Config, Connection};
/// use tidegate_core::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-closeop").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
/// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
/// peer.pause();
/// conn.try_send(Bytes::from_static(b"stuck")).unwrap();
/// let op: CloseOp<'_> = conn.close(Duration::from_millis(20));
/// let report = futures::executor::block_on(op);
/// assert!(report.timed_out());
/// assert_eq!(report.unsent().len(), 1);
/// ```
#[must_use = "a close does nothing unless polled"]
#[derive(Debug)]
pub struct CloseOp<'a> {
    conn: &'a Connection,
    timeout: Duration,
    started: bool,
}

impl CloseOp<'_> {
    /// Polls with a bare waker.
    ///
    /// The first poll starts the close. On `Pending`, `waker` is woken once the link is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::Waker;
    /// use std::time::Duration;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-closeop-poll-with").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let mut op = conn.close(Duration::from_secs(5));
    /// let _ = op.poll_with(Waker::noop());
    /// drop(op);
    /// assert!(conn.is_closed(), "the close goes on without the operation");
    /// let report = futures::executor::block_on(conn.close(Duration::from_secs(5)));
    /// assert!(report.is_clean());
    /// ```
    pub fn poll_with(&mut self, waker: &Waker) -> Poll<CloseReport> {
        let shared = self.conn.shared();
        let mut fx = Effects::default();
        let mut state = shared.lock();
        if !self.started {
            self.started = true;
            if state.begin_close(Instant::now() + self.timeout, &mut fx) {
                log::debug!("closing {}", shared.endpoint.url());
            }
        }
        let report = state.report();
        if report.is_none() {
            state.watch(waker);
        }
        drop(state);
        shared.apply(fx);
        report.map_or(Poll::Pending, Poll::Ready)
    }
}

impl Future for CloseOp<'_> {
    type Output = CloseReport;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_with(cx.waker())
    }
}

/// A half-close in progress, returned by [`Connection::shutdown_write`].
///
/// # Cancel safety
///
/// The half-close starts at the first poll and goes on if the operation is dropped.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use bytes::Bytes;
/// use tidegate_core::{Config, Connection, FlushError, ShutdownWriteOp};
/// use tidegate_core::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-shutdown-write-op").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
/// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
/// peer.pause();
/// conn.try_send(Bytes::from_static(b"stuck")).unwrap();
/// let op: ShutdownWriteOp<'_> = conn.shutdown_write(Some(Instant::now() + Duration::from_millis(20)));
/// assert!(matches!(futures::executor::block_on(op), Err(FlushError::Timeout)));
/// ```
#[must_use = "a half-close does nothing unless polled"]
#[derive(Debug)]
pub struct ShutdownWriteOp<'a> {
    conn: &'a Connection,
    deadline: Option<Instant>,
    started: bool,
}

impl ShutdownWriteOp<'_> {
    /// Polls with a bare waker.
    ///
    /// The first poll starts the half-close. On `Pending`, `waker` is woken once the write side
    /// has ended, the connection has ended, or the deadline has passed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::Waker;
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection, SendError};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-shutdown-write-poll").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let _ = conn.shutdown_write(None).poll_with(Waker::noop());
    /// let refused = conn.try_send(Bytes::from_static(b"late"));
    /// assert!(refused.is_err(), "sending has finished");
    /// ```
    pub fn poll_with(&mut self, waker: &Waker) -> Poll<Result<(), FlushError>> {
        let shared = self.conn.shared();
        let mut fx = Effects::default();
        let mut state = shared.lock();
        if !self.started {
            self.started = true;
            if state.begin_shutdown_write(&mut fx) {
                log::debug!("ending the write side of {}", shared.endpoint.url());
            }
        }
        let result = state.poll_write_ended(self.deadline, waker, &mut fx);
        drop(state);
        shared.apply(fx);
        result.map_or(Poll::Pending, Poll::Ready)
    }
}

impl Future for ShutdownWriteOp<'_> {
    type Output = Result<(), FlushError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_with(cx.waker())
    }
}

/// The close of a connection whose last handle is going away, returned by
/// [`Connection::close_if_last`]. It resolves with the report once the link is gone.
///
/// # Cancel safety
///
/// The close starts at the first poll, or when the operation is dropped, and goes on either
/// way; dropping it stops only the waiting.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tidegate_core::{Config, Connection, LastClose};
/// use tidegate_core::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-last-close").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
/// let close: LastClose = conn.close_if_last().unwrap();
/// assert!(futures::executor::block_on(close).is_clean());
/// ```
#[must_use = "a close of the last handle is only waited for if polled"]
#[derive(Debug)]
pub struct LastClose {
    handle: Handle,
    started: bool,
}

impl LastClose {
    /// Polls with a bare waker. The first poll starts the close; on `Pending`, `waker` is
    /// woken once the link is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::Waker;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-last-close-poll").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let mut close = conn.close_if_last().unwrap();
    /// while close.poll_with(Waker::noop()).is_pending() {
    ///     std::thread::yield_now();
    /// }
    /// ```
    pub fn poll_with(&mut self, waker: &Waker) -> Poll<CloseReport> {
        let shared = &self.handle.shared;
        let mut fx = Effects::default();
        let mut state = shared.lock();
        if !self.started {
            self.started = true;
            // No handle is left to take the unsent frames: they are logged when dropped.
            state.abandon();
            let deadline = Instant::now() + shared.config.close_timeout_duration();
            if state.begin_close(deadline, &mut fx) {
                log::debug!("last handle to {} dropped; draining", shared.endpoint.url());
            }
        }
        let report = state.report();
        if report.is_none() {
            state.watch(waker);
        }
        drop(state);
        shared.apply(fx);
        report.map_or(Poll::Pending, Poll::Ready)
    }
}

impl Future for LastClose {
    type Output = CloseReport;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_with(cx.waker())
    }
}

/// Waits for a connection to be established, returned by [`Connection::connected`].
///
/// # Cancel safety
///
/// Dropping it stops waiting; the connection attempt goes on.
///
/// # Examples
///
/// ```
/// use tidegate_core::{Config, Connected, Connection};
/// use tidegate_core::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-connected").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
/// let connected: Connected<'_> = conn.connected();
/// futures::executor::block_on(connected).unwrap();
/// assert!(!conn.is_closed());
/// ```
#[must_use = "does nothing unless polled"]
#[derive(Debug)]
pub struct Connected<'a> {
    conn: &'a Connection,
}

impl Connected<'_> {
    /// Polls with a bare waker.
    ///
    /// On `Pending`, `waker` is woken when the connection attempt ends.
    ///
    /// # Examples
    ///
    /// Waiting the way a blocking caller does, parked between polls:
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::task::{Poll, Wake, Waker};
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// struct Unpark(std::thread::Thread);
    ///
    /// impl Wake for Unpark {
    ///     fn wake(self: Arc<Self>) {
    ///         self.0.unpark();
    ///     }
    /// }
    ///
    /// let listener = MemListener::bind("doc-connected-poll-with").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    /// let mut connected = conn.connected();
    /// let result = loop {
    ///     match connected.poll_with(&waker) {
    ///         Poll::Ready(result) => break result,
    ///         Poll::Pending => std::thread::park(),
    ///     }
    /// };
    /// assert!(result.is_ok());
    /// ```
    pub fn poll_with(&mut self, waker: &Waker) -> Poll<Result<(), ConnectError>> {
        let shared = self.conn.shared();
        let mut state = shared.lock();
        match state.phase() {
            Phase::Connecting => {
                state.watch(waker);
                Poll::Pending
            }
            Phase::Open => Poll::Ready(Ok(())),
            Phase::Finishing if state.was_opened() => Poll::Ready(Ok(())),
            Phase::Finishing => {
                state.watch(waker);
                Poll::Pending
            }
            Phase::Closing | Phase::Closed => Poll::Ready(Err(match state.cause() {
                None if state.was_opened() => return Poll::Ready(Ok(())),
                None => ConnectError::Closed,
                Some(cause) if cause.kind() == DisconnectKind::ConnectTimedOut => {
                    ConnectError::TimedOut(
                        shared.config.connect_timeout_duration().unwrap_or_default(),
                    )
                }
                Some(cause) if !state.was_opened() => ConnectError::Failed(cause.clone()),
                Some(_) => return Poll::Ready(Ok(())),
            })),
        }
    }
}

impl Future for Connected<'_> {
    type Output = Result<(), ConnectError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_with(cx.waker())
    }
}

/// A receive in progress, returned by [`Connection::recv`] and [`Connection::recv_owned`].
///
/// Resolves to the next chunk (or frame), to `None` at the end of the stream, or to a
/// [`RecvError`]. While nothing is there it waits in the connection's line of receivers, and
/// the driver wakes it when data arrives for it, the stream ends, or its deadline passes.
///
/// # Cancel safety
///
/// Dropping a pending `RecvOp` loses no data: bytes leave the inbound buffer only when a
/// receive returns them. The receiver leaves the line, and the next one is woken if something
/// is there for it.
///
/// # Panics
///
/// Polling after it returned `Ready` panics.
///
/// # Examples
///
/// ```
/// use std::task::Waker;
/// use std::time::Duration;
/// use tidegate_core::{Config, Connection, RecvOp};
/// use tidegate_core::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-recvop").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
/// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
/// let mut op: RecvOp<&Connection> = conn.recv(None);
/// assert!(op.poll_with(Waker::noop()).is_pending());
/// assert!(op.is_queued());
/// drop(op); // leaves the line
/// assert_eq!(conn.stats().receivers, 0);
/// peer.write(b"kept");
/// let chunk = futures::executor::block_on(conn.recv(None)).unwrap();
/// assert_eq!(chunk.unwrap(), "kept");
/// ```
#[must_use = "a receive does nothing unless polled"]
pub struct RecvOp<C: Borrow<Connection>> {
    conn: C,
    deadline: Option<Instant>,
    /// The receiver's place in line, once it waits.
    ticket: Option<u64>,
    done: bool,
}

impl<C: Borrow<Connection>> fmt::Debug for RecvOp<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvOp")
            .field("deadline", &self.deadline)
            .field("ticket", &self.ticket)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<C: Borrow<Connection>> RecvOp<C> {
    /// Polls with a bare waker: the blocking facade's way in. On `Pending`, `waker` is woken
    /// when something may be there for this receiver, or its deadline passed.
    ///
    /// # Panics
    ///
    /// After it returned `Ready`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::{Poll, Waker};
    /// use std::time::Instant;
    /// use tidegate_core::{Config, Connection, RecvError};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-recvop-poll-with").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let mut op = conn.recv(Some(Instant::now()));
    /// assert!(matches!(op.poll_with(Waker::noop()), Poll::Ready(Err(RecvError::Timeout))));
    /// ```
    pub fn poll_with(&mut self, waker: &Waker) -> Poll<Result<Option<Bytes>, RecvError>> {
        assert!(!self.done, "RecvOp polled after completion");
        let shared = self.conn.borrow().shared();
        let mut fx = Effects::default();
        let polled =
            shared.inbound().poll_recv(&mut self.ticket, self.deadline, Some(waker), &mut fx);
        shared.apply(fx);
        self.done = polled.is_ready();
        polled
    }

    /// Returns whether the receiver waits in line.
    ///
    /// # Examples
    ///
    /// See [`RecvOp`].
    pub fn is_queued(&self) -> bool {
        self.ticket.is_some()
    }
}

impl<C: Borrow<Connection> + Unpin> Future for RecvOp<C> {
    type Output = Result<Option<Bytes>, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_with(cx.waker())
    }
}

impl<C: Borrow<Connection>> Drop for RecvOp<C> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            let shared = self.conn.borrow().shared();
            let mut fx = Effects::default();
            shared.inbound().leave(ticket, &mut fx);
            shared.apply(fx);
        }
    }
}

/// Where the result of a [`LinkCall`] lands.
#[derive(Debug)]
struct CallSlot<R> {
    result: Option<Result<R, LinkError>>,
    waker: Option<Waker>,
}

/// A closure waiting to run on the driver thread, returned by [`Connection::call_link`].
///
/// # Cancel safety
///
/// Dropping it does not stop the closure; its result is dropped.
///
/// # Panics
///
/// Polling after it returned `Ready` panics.
///
/// # Examples
///
/// See [`Connection::call_link`].
#[must_use = "the result of a link call arrives only when polled"]
#[derive(Debug)]
pub struct LinkCall<R> {
    slot: Arc<Mutex<CallSlot<R>>>,
    done: bool,
}

impl<R> LinkCall<R> {
    /// Polls with a bare waker.
    ///
    /// # Panics
    ///
    /// After it returned `Ready`.
    pub fn poll_with(&mut self, waker: &Waker) -> Poll<Result<R, LinkError>> {
        assert!(!self.done, "LinkCall polled after completion");
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.result.take() {
            Some(result) => {
                slot.waker = None;
                self.done = true;
                Poll::Ready(result)
            }
            None => {
                if slot.waker.as_ref().is_none_or(|w| !w.will_wake(waker)) {
                    slot.waker = Some(waker.clone());
                }
                Poll::Pending
            }
        }
    }
}

impl<R> Future for LinkCall<R> {
    type Output = Result<R, LinkError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_with(cx.waker())
    }
}
