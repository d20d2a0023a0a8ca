//! Ending a connection: [`CloseOp`] (drain, end the write side, read to the peer's end, then
//! drop the link) and [`ShutdownWriteOp`] (the half-close: drain and end the write side, and go
//! on receiving). Both start at their first poll and go on without them: dropping the
//! operation only stops the waiting.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::conn::ConnShared;
use crate::state::effects::Effects;
use crate::state::error::{Disconnect, FlushError};
use crate::state::report::CloseReport;

/// A close in progress, returned by [`Connection::close`](crate::Connection::close).
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
/// use tidegate::Bytes;
/// use tidegate::{CloseOp, Config, Connection};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-closeop").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
/// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
/// peer.pause();
/// conn.try_send(Bytes::from_static(b"stuck")).unwrap();
/// let op: CloseOp<'_> = conn.close(Duration::from_millis(20));
/// let report = tidegate::block_on(op);
/// assert!(report.timed_out());
/// assert_eq!(report.unsent().len(), 1);
/// ```
#[must_use = "a close does nothing unless polled"]
#[derive(Debug)]
pub struct CloseOp<'a> {
    conn: &'a ConnShared,
    timeout: Duration,
    started: bool,
}

impl<'a> CloseOp<'a> {
    /// A close of `conn` that may drain for `timeout`.
    pub(crate) fn new(conn: &'a ConnShared, timeout: Duration) -> Self {
        Self { conn, timeout, started: false }
    }
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
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-closeop-poll-with").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let mut op = conn.close(Duration::from_secs(5));
    /// let _ = op.poll_with(Waker::noop());
    /// drop(op);
    /// assert!(conn.is_closed(), "the close goes on without the operation");
    /// let report = tidegate::block_on(conn.close(Duration::from_secs(5)));
    /// assert!(report.is_clean());
    /// ```
    pub fn poll_with(&mut self, waker: &Waker) -> Poll<CloseReport> {
        let shared = self.conn;
        let mut fx = Effects::new(Instant::now);
        let mut state = shared.lock();
        if !self.started {
            self.started = true;
            if state.begin_close(Instant::now() + self.timeout, &mut fx) {
                log::debug!("closing {}", shared.url());
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

/// A half-close in progress, returned by [`Connection::shutdown_write`](crate::Connection::shutdown_write).
///
/// # Cancel safety
///
/// The half-close starts at the first poll and goes on if the operation is dropped.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use tidegate::Bytes;
/// use tidegate::{Config, Connection, FlushError, ShutdownWriteOp};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-shutdown-write-op").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
/// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
/// peer.pause();
/// conn.try_send(Bytes::from_static(b"stuck")).unwrap();
/// let op: ShutdownWriteOp<'_> = conn.shutdown_write(Some(Instant::now() + Duration::from_millis(20)));
/// assert!(matches!(tidegate::block_on(op), Err(FlushError::Timeout)));
/// ```
#[must_use = "a half-close does nothing unless polled"]
#[derive(Debug)]
pub struct ShutdownWriteOp<'a> {
    conn: &'a ConnShared,
    deadline: Option<Instant>,
    started: bool,
}

impl<'a> ShutdownWriteOp<'a> {
    /// A half-close of `conn` whose wait ends at `deadline`.
    pub(crate) fn new(conn: &'a ConnShared, deadline: Option<Instant>) -> Self {
        Self { conn, deadline, started: false }
    }
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
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection, SendError};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-shutdown-write-poll").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let _ = conn.shutdown_write(None).poll_with(Waker::noop());
    /// let refused = conn.try_send(Bytes::from_static(b"late"));
    /// assert!(refused.is_err(), "sending has finished");
    /// ```
    pub fn poll_with(&mut self, waker: &Waker) -> Poll<Result<(), FlushError>> {
        self.conn.poll_shutdown_write(&mut self.started, self.deadline, waker)
    }
}

impl Future for ShutdownWriteOp<'_> {
    type Output = Result<(), FlushError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_with(cx.waker())
    }
}

impl ConnShared {
    /// Polls a half-close: begins it at the first poll (`started` false), then waits until
    /// the write side has ended or `deadline` passed.
    pub(crate) fn poll_shutdown_write(
        &self,
        started: &mut bool,
        deadline: Option<Instant>,
        waker: &Waker,
    ) -> Poll<Result<(), FlushError>> {
        let mut fx = Effects::new(Instant::now);
        let mut state = self.lock();
        if !*started {
            *started = true;
            if state.begin_shutdown_write(&mut fx) {
                log::debug!("ending the write side of {}", self.url());
            }
        }
        let result = state.poll_write_ended(deadline, waker, &mut fx);
        drop(state);
        self.apply(fx);
        result.map_or(Poll::Pending, Poll::Ready)
    }

    /// Polls the close of a connection whose last handle has gone: it begins (as when the
    /// last handle is dropped) on the first call, and resolves with the report once the link
    /// is gone.
    pub(crate) fn poll_last_close(&self, started: &mut bool, waker: &Waker) -> Poll<CloseReport> {
        let mut fx = Effects::new(Instant::now);
        if !*started {
            *started = true;
            self.abandon(&mut fx);
        }
        let mut state = self.lock();
        let report = state.report();
        if report.is_none() {
            state.watch(waker);
        }
        drop(state);
        self.apply(fx);
        report.map_or(Poll::Pending, Poll::Ready)
    }
}

/// Waits for a connection to end for good, returned by
/// [`Connection::closed`](crate::Connection::closed). It resolves to `None` after an orderly
/// close, and to the cause otherwise: the link failed with reconnection off, or reconnection
/// gave up. It starts nothing: a connection that is never closed keeps it pending.
///
/// # Cancel safety
///
/// Dropping it only stops the waiting.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tidegate::{ClosedOp, Config, Connection};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-closed-op").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
/// let closed: ClosedOp<'_> = conn.closed();
/// tidegate::block_on(conn.close(Duration::from_secs(5)));
/// assert!(tidegate::block_on(closed).is_none(), "an orderly close has no cause");
/// ```
#[must_use = "does nothing unless polled"]
#[derive(Debug)]
pub struct ClosedOp<'a> {
    conn: &'a ConnShared,
}

impl<'a> ClosedOp<'a> {
    pub(crate) fn new(conn: &'a ConnShared) -> Self {
        Self { conn }
    }
}

impl ClosedOp<'_> {
    /// Polls with a bare waker: `Ready` once the connection has ended, with its cause if the
    /// end was not an orderly close; on `Pending`, `waker` is woken when it ends.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::task::{Poll, Waker};
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-closed-op-poll-with").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// assert!(conn.closed().poll_with(Waker::noop()).is_pending());
    /// ```
    pub fn poll_with(&mut self, waker: &Waker) -> Poll<Option<Disconnect>> {
        let mut state = self.conn.lock();
        if state.has_ended() {
            return Poll::Ready(state.cause().cloned());
        }
        state.watch(waker);
        Poll::Pending
    }
}

impl Future for ClosedOp<'_> {
    type Output = Option<Disconnect>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_with(cx.waker())
    }
}
