//! Sending many frames as one unit: [`SendBatchOp`]. A batch enters the buffer whole or waits
//! whole, as one frame of its total length would, under the same FIFO and give-up rules as a
//! single send.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;

use crate::conn::{ConnShared, ConnectionRef};
use crate::state::batch::FrameBatch;
use crate::state::effects::Effects;
use crate::state::error::{SendError, TrySendError};
use crate::state::machine::Admit;

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

/// A batch send in progress, returned by [`Connection::send_batch`](crate::Connection::send_batch) and
/// [`Connection::send_batch_owned`](crate::Connection::send_batch_owned).
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
/// use tidegate::{Config, Connection, FrameBatch};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-send-batch-op").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
/// let mut batch = FrameBatch::new();
/// batch.push("x");
/// let op = conn.send_batch(batch.clone(), None);
/// assert_eq!(op.cancel(), Some(batch), "never polled: never sent");
/// ```
#[must_use = "a send does nothing unless polled"]
pub struct SendBatchOp<C: ConnectionRef> {
    conn: C,
    /// The caller's batch, frozen, until the operation completes: what goes back on an error
    /// or a cancel.
    batch: Option<(Bytes, Vec<usize>)>,
    stage: BatchStage,
}

impl<C: ConnectionRef> fmt::Debug for SendBatchOp<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendBatchOp").field("stage", &self.stage).finish_non_exhaustive()
    }
}

impl<C: ConnectionRef> SendBatchOp<C> {
    pub(crate) fn new(conn: C, batch: FrameBatch, deadline: Option<Instant>) -> Self {
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
    /// use tidegate::{Config, Connection, FrameBatch};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-send-batch-op-poll-with").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let mut batch = FrameBatch::new();
    /// batch.push("room to spare");
    /// let mut op = conn.send_batch(batch, None);
    /// assert!(matches!(op.poll_with(Waker::noop()), Poll::Ready(Ok(()))));
    /// ```
    pub fn poll_with(&mut self, waker: &Waker) -> Poll<Result<(), SendError<FrameBatch>>> {
        let shared = self.conn.shared();
        let mut fx = Effects::new(Instant::now);
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
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection, FrameBatch};
    /// use tidegate::transport::mem::MemListener;
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
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection, FrameBatch};
    /// use tidegate::transport::mem::MemListener;
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
                let shared = self.conn.shared();
                let mut fx = Effects::new(Instant::now);
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

impl<C: ConnectionRef + Unpin> Future for SendBatchOp<C> {
    type Output = Result<(), SendError<FrameBatch>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_with(cx.waker())
    }
}

impl<C: ConnectionRef> Drop for SendBatchOp<C> {
    fn drop(&mut self) {
        // Leave the queue, so the next waiter is reconsidered and no capacity is held for a
        // sender that is gone.
        if matches!(self.stage, BatchStage::Queued { .. }) && self.take_back().is_some() {
            log::trace!("a pending batch send was dropped; its frames were not sent");
        }
    }
}

impl ConnShared {
    /// Offers a batch without waiting: it enters whole now or comes back in the error.
    pub(crate) fn try_send_batch(&self, batch: FrameBatch) -> Result<(), TrySendError<FrameBatch>> {
        let (bytes, lens) = batch.into_parts();
        let mut fx = Effects::new(Instant::now);
        let admitted = self.admit_batch(&bytes, &lens, None, None, &mut fx);
        self.apply(fx);
        match admitted {
            Ok(_) => Ok(()),
            Err(err) => Err(err.map(|()| FrameBatch::from_parts(bytes, lens)).into()),
        }
    }
}
