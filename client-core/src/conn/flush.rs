//! Waiting until what was sent before has been written: [`FlushOp`]. A flush notes the count
//! of bytes accepted so far when it is created and resolves once the driver has written that
//! many; it holds no frame, so giving up changes nothing but its own wait.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::conn::ConnShared;
use crate::state::effects::Effects;
use crate::state::error::FlushError;

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

/// A flush in progress, returned by [`Connection::flush`](crate::Connection::flush).
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
/// use tidegate::Bytes;
/// use tidegate::{Config, Connection, FlushError, FlushOp};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-flushop").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
/// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
/// peer.pause();
/// conn.try_send(Bytes::from_static(b"data")).unwrap();
/// let op: FlushOp<'_> = conn.flush(Some(Instant::now() + Duration::from_millis(20)));
/// let result = tidegate::block_on(op);
/// assert!(matches!(result, Err(FlushError::Timeout)));
/// ```
#[must_use = "a flush does nothing unless polled"]
#[derive(Debug)]
pub struct FlushOp<'a> {
    conn: &'a ConnShared,
    wait: FlushWait,
}

/// The state of a flush, apart from its connection: what [`FlushOp`] and the byte stream's
/// flush have in common. Whoever holds one must [`cancel`](FlushWait::cancel) it when giving
/// up while it waits.
#[derive(Debug)]
pub(crate) struct FlushWait {
    deadline: Option<Instant>,
    id: u64,
    /// The count of bytes written that completes the flush: all bytes accepted before it.
    target: u64,
    stage: FlushStage,
}

impl FlushWait {
    /// A flush of every byte `conn` has accepted so far.
    pub(crate) fn new(conn: &ConnShared, deadline: Option<Instant>) -> Self {
        let mut state = conn.lock();
        let (id, target) = (state.next_id(), state.flush_target());
        drop(state);
        Self { deadline, id, target, stage: FlushStage::Idle }
    }

    /// Polls the flush on `conn`, the connection it was made for.
    ///
    /// # Panics
    ///
    /// After it returned `Ready`.
    pub(crate) fn poll(
        &mut self,
        conn: &ConnShared,
        waker: &Waker,
    ) -> Poll<Result<(), FlushError>> {
        assert!(self.stage != FlushStage::Done, "a flush polled after completion");
        let mut fx = Effects::new(Instant::now);
        let result = conn.lock().poll_flush(self.id, self.target, self.deadline, waker, &mut fx);
        conn.apply(fx);
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

    /// Stops waiting, if it waits: the connection forgets the flush.
    pub(crate) fn cancel(&mut self, conn: &ConnShared) {
        if self.stage == FlushStage::Waiting {
            conn.lock().cancel_flush(self.id, self.target);
            self.stage = FlushStage::Done;
        }
    }
}

impl<'a> FlushOp<'a> {
    /// A flush of every byte `conn` has accepted so far.
    pub(crate) fn new(conn: &'a ConnShared, deadline: Option<Instant>) -> Self {
        Self { conn, wait: FlushWait::new(conn, deadline) }
    }
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
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-flushop-poll-with").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// conn.try_send(Bytes::from_static(b"data")).unwrap();
    /// let mut op = conn.flush(None);
    /// assert!(op.poll_with(Waker::noop()).is_pending());
    /// peer.resume();
    /// tidegate::block_on(op).unwrap();
    /// ```
    pub fn poll_with(&mut self, waker: &Waker) -> Poll<Result<(), FlushError>> {
        self.wait.poll(self.conn, waker)
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
        self.wait.cancel(self.conn);
    }
}
