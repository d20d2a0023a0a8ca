//! Sending one frame: [`SendOp`].
//!
//! A send first tries the fast path (no one waits and the frame fits: it enters the buffer at
//! once). Otherwise its frame parks in the connection's FIFO line under a ticket, and the
//! driver moves it into the buffer when room is freed, in the same step as it records the
//! outcome, so room is never granted to a sender that has gone. Giving up — a timeout, a drop,
//! [`SendOp::cancel`] — takes the frame back out of the line under the same lock.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;

use crate::conn::ConnectionRef;
use crate::state::effects::Effects;
use crate::state::error::SendError;
use crate::state::machine::Admit;

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

/// A send in progress, returned by [`Connection::send`](crate::Connection::send) and [`Connection::send_owned`](crate::Connection::send_owned).
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
/// use tidegate::Bytes;
/// use tidegate::{Config, Connection};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("send-op-example").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
/// let op = conn.send(Bytes::from_static(b"x"), None);
/// assert_eq!(op.cancel(), Some(Bytes::from_static(b"x")), "never polled: never sent");
/// ```
#[must_use = "a send does nothing unless polled"]
pub struct SendOp<C: ConnectionRef> {
    conn: C,
    stage: Stage,
}

impl<C: ConnectionRef> fmt::Debug for SendOp<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendOp").field("stage", &self.stage).finish_non_exhaustive()
    }
}

impl<C: ConnectionRef> SendOp<C> {
    pub(crate) fn new(conn: C, frame: Bytes, urgent: bool, deadline: Option<Instant>) -> Self {
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
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-sendop-poll-with").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let mut op = conn.send(Bytes::from_static(b"room to spare"), None);
    /// assert!(matches!(op.poll_with(Waker::noop()), Poll::Ready(Ok(()))));
    /// ```
    #[inline]
    pub fn poll_with(&mut self, waker: &Waker) -> Poll<Result<(), SendError<Bytes>>> {
        if let Stage::Start { frame, urgent: false, deadline } = &mut self.stage {
            // The common case, one critical section and no `Effects` when the frame fits.
            let admitted =
                self.conn.shared().admit_data(std::mem::take(frame), *deadline, Some(waker));
            return self.started(admitted);
        }
        self.poll_rest(waker)
    }

    /// What the first poll's admission led to.
    #[inline]
    fn started(
        &mut self,
        admitted: Result<Admit, SendError<Bytes>>,
    ) -> Poll<Result<(), SendError<Bytes>>> {
        match admitted {
            Ok(Admit::Accepted) => {
                self.stage = Stage::Done;
                Poll::Ready(Ok(()))
            }
            Ok(Admit::Queued(ticket)) => {
                self.stage = Stage::Queued { ticket };
                Poll::Pending
            }
            Err(err) => {
                self.stage = Stage::Done;
                Poll::Ready(Err(err))
            }
        }
    }

    /// [`SendOp::poll_with`] for an urgent frame or a queued send: out of line, so that the
    /// common case compiles small.
    #[cold]
    #[inline(never)]
    fn poll_rest(&mut self, waker: &Waker) -> Poll<Result<(), SendError<Bytes>>> {
        let shared = self.conn.shared();
        let mut fx = Effects::new(Instant::now);
        let result = match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Start { frame, urgent, deadline } => {
                debug_assert!(urgent, "data frames start in `poll_with`");
                let admitted = shared.admit_urgent(frame, deadline, Some(waker), &mut fx);
                shared.apply(fx);
                return self.started(admitted);
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
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
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
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
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

    #[inline(never)]
    fn take_back(&mut self) -> Option<Bytes> {
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Start { frame, .. } => Some(frame),
            Stage::Queued { ticket } => {
                let shared = self.conn.shared();
                let mut fx = Effects::new(Instant::now);
                let frame = shared.lock().cancel(ticket, &mut fx);
                shared.apply(fx);
                frame
            }
            Stage::Done => None,
        }
    }
}

impl<C: ConnectionRef + Unpin> Future for SendOp<C> {
    type Output = Result<(), SendError<Bytes>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_with(cx.waker())
    }
}

impl<C: ConnectionRef> Drop for SendOp<C> {
    #[inline]
    fn drop(&mut self) {
        // Leave the queue, so the next waiter is reconsidered and no capacity is held for a
        // sender that is gone.
        if matches!(self.stage, Stage::Queued { .. }) && self.take_back().is_some() {
            log::trace!("a pending send was dropped; its frame was not sent");
        }
    }
}
