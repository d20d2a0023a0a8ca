//! The futures returned by [`AsyncClient`](crate::AsyncClient)'s operations.
//!
//! Each wraps one of the core's operations and polls it with the task's waker. The core
//! registers that waker (replacing the one of an earlier poll) and its I/O driver wakes it when
//! the operation can complete or its deadline passes. None of them ever wakes itself: a
//! pending future costs no CPU until the driver has news for it.

use bytes::Bytes;
use tidegate_core::{
    CloseError, CloseOp, CloseReport, Connection, FlushError, FlushOp, FrameBatch, SendBatchOp,
    SendError, SendOp, ShutdownWriteOp,
};

/// Implements `Future` and `FusedFuture` for a future that wraps a core operation in its
/// `op` field and remembers in `done` that it completed, so a poll after completion panics
/// instead of asking the core again. `$map` turns the operation's output into the future's.
macro_rules! op_future {
    ($name:ident $(<$lt:lifetime>)?, $output:ty $(, $map:expr)?) => {
        impl ::std::future::Future for $name$(<$lt>)? {
            type Output = $output;

            fn poll(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<Self::Output> {
                let this = self.get_mut();
                assert!(!this.done, concat!(stringify!($name), " polled after completion"));
                let result = this.op.poll_with(cx.waker());
                this.done = result.is_ready();
                $(let result = result.map($map);)?
                result
            }
        }

        impl ::futures_core::FusedFuture for $name$(<$lt>)? {
            fn is_terminated(&self) -> bool {
                self.done
            }
        }
    };
}
pub(crate) use op_future;

/// A send in progress, returned by [`AsyncClient::send`](crate::AsyncClient::send), its
/// `_timeout` and `_deadline` forms, and [`AsyncClient::send_urgent`](crate::AsyncClient::send_urgent).
///
/// Resolves to `Ok(())` once the frame is in the outgoing buffer, or to an error carrying the
/// frame. It is pending while the buffer is full or other senders wait ahead of it, and is
/// woken by the I/O driver only when its frame has been accepted or its wait ended.
///
/// The frame takes its place in the FIFO line at the first poll.
///
/// # Cancel safety
///
/// Dropping the future before it completes is safe and leaks no capacity. What happens to the
/// frame depends on where it is at that instant:
///
/// - never polled, or still **waiting in line**: the future leaves the line and the frame is
///   dropped — it is **not sent**;
/// - already **moved into the buffer** by the driver (this can happen just before the drop,
///   even without another poll): the frame **is sent**, in order.
///
/// [`SendFuture::cancel`] gives up the same way but tells which case it was, and hands the
/// frame back in the first one. With `select!`, poll `&mut fut` and cancel the loser.
///
/// # Panics
///
/// Polling after it returned `Ready` panics.
///
/// # Examples
///
/// ```
/// use std::future::{Future, poll_fn};
/// use std::pin::Pin;
/// use std::task::Poll;
/// use std::time::Duration;
/// use tidegate::AsyncClient;
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("async-send-future-example").unwrap();
/// tidegate::block_on(async {
///     let client = AsyncClient::builder().capacity(4).connect(&listener.url()).await.unwrap();
///     let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
///     peer.pause();
///     client.send("full").await.unwrap();
///
///     // Poll the next send once, as a `select!` whose other branch wins would.
///     let mut send = client.send("next");
///     let first = poll_fn(|cx| Poll::Ready(Pin::new(&mut send).poll(cx))).await;
///     assert!(first.is_pending(), "the peer reads nothing");
///     // Give up on it: take the frame back.
///     assert_eq!(send.cancel().unwrap(), "next");
///     assert_eq!(client.stats().waiters, 0);
/// });
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct SendFuture<'a> {
    op: SendOp<&'a Connection>,
    done: bool,
}

impl<'a> SendFuture<'a> {
    pub(crate) fn new(op: SendOp<&'a Connection>) -> Self {
        Self { op, done: false }
    }

    /// Gives up the send, and returns the frame if it was not accepted.
    ///
    /// - `Some(frame)`: the frame was not put into the buffer and never will be; it is the
    ///   caller's again. The future's place in line (if it had one) is released and the next
    ///   waiter reconsidered at once.
    /// - `None`: the driver had already moved the frame into the buffer, so it will be sent;
    ///   or the future had already completed (a failed send returned the frame in its error).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-send-cancel-example").unwrap();
    /// let client = tidegate::block_on(AsyncClient::connect(&listener.url())).unwrap();
    /// let send = client.send("never polled");
    /// assert_eq!(send.cancel().unwrap(), "never polled");
    /// assert_eq!(client.stats().frames_accepted, 0);
    /// ```
    pub fn cancel(self) -> Option<Bytes> {
        self.op.cancel()
    }

    /// Returns whether the frame is waiting in line for room (the future was polled, is
    /// pending, and the driver has not yet told it the outcome).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-send-is-queued-example").unwrap();
    /// let client = tidegate::block_on(AsyncClient::connect(&listener.url())).unwrap();
    /// let mut send = client.send("fits");
    /// assert!(!send.is_queued(), "not polled yet");
    /// tidegate::block_on(&mut send).unwrap();
    /// assert!(!send.is_queued(), "accepted at once");
    /// ```
    pub fn is_queued(&self) -> bool {
        self.op.is_queued()
    }
}

op_future!(SendFuture<'_>, Result<(), SendError<Bytes>>);

/// A send that owns its handle to the connection, returned by
/// [`AsyncClient::send_owned`](crate::AsyncClient::send_owned) and its `_timeout` and
/// `_deadline` forms. It is `'static`, so it can be spawned as a task of its own.
///
/// It behaves exactly as a [`SendFuture`]: the frame takes its place in the FIFO line at the
/// first poll, and the future resolves once the frame is in the buffer, or to an error
/// carrying the frame.
///
/// # Cancel safety
///
/// As [`SendFuture`]: dropping it while the frame waits in line drops the frame, unsent; a
/// frame the driver already moved into the buffer is sent. [`OwnedSendFuture::cancel`] tells
/// which, and hands the frame back in the first case.
///
/// # Panics
///
/// Polling after it returned `Ready` panics.
///
/// # Examples
///
/// ```
/// use tidegate::{AsyncClient, OwnedSendFuture};
/// use tidegate::transport::mem::MemListener;
///
/// fn spawnable<F: std::future::Future + Send + 'static>(future: F) -> F {
///     future
/// }
///
/// let listener = MemListener::bind("async-owned-send-future-example").unwrap();
/// tidegate::block_on(async {
///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
///     let send: OwnedSendFuture = spawnable(client.send_owned("on its own"));
///     drop(client); // the future holds a handle of its own
///     send.await.unwrap();
/// });
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct OwnedSendFuture {
    op: SendOp<Connection>,
    done: bool,
}

impl OwnedSendFuture {
    pub(crate) fn new(op: SendOp<Connection>) -> Self {
        Self { op, done: false }
    }

    /// Gives up the send, and returns the frame if it was not accepted; as
    /// [`SendFuture::cancel`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-owned-send-cancel-example").unwrap();
    /// let client = tidegate::block_on(AsyncClient::connect(&listener.url())).unwrap();
    /// let send = client.send_owned("never polled");
    /// assert_eq!(send.cancel().unwrap(), "never polled");
    /// ```
    pub fn cancel(self) -> Option<Bytes> {
        self.op.cancel()
    }

    /// Returns whether the frame is waiting in line for room; as [`SendFuture::is_queued`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-owned-send-is-queued-example").unwrap();
    /// let client = tidegate::block_on(AsyncClient::connect(&listener.url())).unwrap();
    /// let mut send = client.send_owned("fits");
    /// tidegate::block_on(&mut send).unwrap();
    /// assert!(!send.is_queued());
    /// ```
    pub fn is_queued(&self) -> bool {
        self.op.is_queued()
    }
}

op_future!(OwnedSendFuture, Result<(), SendError<Bytes>>);

/// A batch send in progress, returned by
/// [`AsyncClient::send_batch`](crate::AsyncClient::send_batch) and its `_timeout` and
/// `_deadline` forms.
///
/// Resolves to `Ok(())` once every frame of the batch is in the outgoing buffer, or to an
/// error carrying the whole batch. The batch takes one place in the FIFO line at the first
/// poll and is moved in whole when there is room for all of it.
///
/// # Cancel safety
///
/// Dropping it leaks no capacity: a batch still waiting in line is **not sent**; a batch the
/// driver already moved into the buffer **is sent**, all of it. [`SendBatchFuture::cancel`]
/// tells which, and hands the batch back in the first case. A batch is never sent in part.
///
/// # Panics
///
/// Polling after it returned `Ready` panics.
///
/// # Examples
///
/// ```
/// use tidegate::{AsyncClient, FrameBatch, SendBatchFuture};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("async-send-batch-future-example").unwrap();
/// tidegate::block_on(async {
///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
///     let batch: FrameBatch = ["one", "two"].into_iter().collect();
///     let send: SendBatchFuture<'_> = client.send_batch(batch);
///     send.await.unwrap();
///     assert_eq!(client.stats().frames_accepted, 2);
/// });
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct SendBatchFuture<'a> {
    op: SendBatchOp<&'a Connection>,
    done: bool,
}

impl<'a> SendBatchFuture<'a> {
    pub(crate) fn new(op: SendBatchOp<&'a Connection>) -> Self {
        Self { op, done: false }
    }

    /// Gives up the batch, and returns it if it was not accepted: `Some(batch)` means none of
    /// it was put into the buffer and none of it ever will be; `None` means all of it is in
    /// the buffer (or the future had already completed).
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{AsyncClient, FrameBatch};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-send-batch-cancel-example").unwrap();
    /// let client = tidegate::block_on(AsyncClient::connect(&listener.url())).unwrap();
    /// let send = client.send_batch(["never polled"].into_iter().collect());
    /// assert_eq!(send.cancel().unwrap().len(), 1);
    /// ```
    pub fn cancel(self) -> Option<FrameBatch> {
        self.op.cancel()
    }

    /// Returns whether the batch is waiting in line for room.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{AsyncClient, FrameBatch};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-send-batch-is-queued-example").unwrap();
    /// let client = tidegate::block_on(AsyncClient::connect(&listener.url())).unwrap();
    /// let send = client.send_batch(["fits"].into_iter().collect());
    /// assert!(!send.is_queued(), "not polled yet");
    /// ```
    pub fn is_queued(&self) -> bool {
        self.op.is_queued()
    }
}

op_future!(SendBatchFuture<'_>, Result<(), SendError<FrameBatch>>);

/// A flush in progress, returned by [`AsyncClient::flush`](crate::AsyncClient::flush) and
/// its `_timeout` and `_deadline` forms.
///
/// At its first poll it notes how many bytes the connection has accepted so far, and resolves
/// once the link has taken that many. Frames accepted later do not hold it up.
///
/// # Cancel safety
///
/// Dropping it only stops waiting; the frames are written all the same.
///
/// # Panics
///
/// Polling after it returned `Ready` panics.
///
/// # Examples
///
/// ```
/// use tidegate::{AsyncClient, FlushFuture};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("async-flush-future-example").unwrap();
/// tidegate::block_on(async {
///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
///     client.send("data").await.unwrap();
///     let flush: FlushFuture<'_> = client.flush();
///     flush.await.unwrap();
/// });
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct FlushFuture<'a> {
    op: FlushOp<'a>,
    done: bool,
}

impl<'a> FlushFuture<'a> {
    pub(crate) fn new(op: FlushOp<'a>) -> Self {
        Self { op, done: false }
    }
}

op_future!(FlushFuture<'_>, Result<(), FlushError>);

/// A close in progress, returned by [`AsyncClient::close`](crate::AsyncClient::close) and
/// its `_timeout` and `_deadline` forms. Resolves to the [`CloseReport`] once the link is
/// gone.
///
/// Its output is a `Result` of the same shape as the blocking facade's `close`, so code moves
/// between the facades unchanged. It is never an error here: the one [`CloseError`], a wait
/// that would park an I/O driver thread, cannot happen to a future, which waits by returning
/// `Pending`.
///
/// # Cancel safety
///
/// The close starts at the first poll and goes on if the future is dropped; a later close
/// returns the report (without the unsent frames, if an earlier close received them).
///
/// # Panics
///
/// Polling after it returned `Ready` panics.
///
/// # Examples
///
/// ```
/// use tidegate::{AsyncClient, CloseFuture};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("async-close-future-example").unwrap();
/// tidegate::block_on(async {
///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
///     let close: CloseFuture<'_> = client.close();
///     assert!(close.await.unwrap().is_clean());
/// });
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct CloseFuture<'a> {
    op: CloseOp<'a>,
    done: bool,
}

impl<'a> CloseFuture<'a> {
    pub(crate) fn new(op: CloseOp<'a>) -> Self {
        Self { op, done: false }
    }
}

op_future!(CloseFuture<'_>, Result<CloseReport, CloseError>, Ok);

/// A half-close in progress, returned by
/// [`AsyncClient::shutdown_write`](crate::AsyncClient::shutdown_write) and its `_timeout`
/// and `_deadline` forms. Resolves once the buffer has drained and the write side has ended.
///
/// # Cancel safety
///
/// The half-close starts at the first poll and goes on if the future is dropped.
///
/// # Panics
///
/// Polling after it returned `Ready` panics.
///
/// # Examples
///
/// ```
/// use tidegate::{AsyncClient, ShutdownWriteFuture};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("async-shutdown-write-future-example").unwrap();
/// tidegate::block_on(async {
///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
///     client.send("request").await.unwrap();
///     let ended: ShutdownWriteFuture<'_> = client.shutdown_write();
///     ended.await.unwrap();
///     assert_eq!(client.recv().await.unwrap(), None, "the peer ended its side too");
/// });
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct ShutdownWriteFuture<'a> {
    op: ShutdownWriteOp<'a>,
    done: bool,
}

impl<'a> ShutdownWriteFuture<'a> {
    pub(crate) fn new(op: ShutdownWriteOp<'a>) -> Self {
        Self { op, done: false }
    }
}

op_future!(ShutdownWriteFuture<'_>, Result<(), FlushError>);
