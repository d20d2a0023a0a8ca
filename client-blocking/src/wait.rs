//! How the blocking facade waits: it polls a core operation with a waker that unparks the
//! calling thread, and parks the thread in between.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Instant;

use tidegate_core::{RecvError, is_driver_thread};

/// Unparks the thread it was made on.
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    static WAKER: Waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
}

/// The calling thread is an I/O driver thread: parking it could wait for itself.
pub(crate) struct OnDriverThread;

/// Polls until ready, parking the thread in between.
///
/// The core wakes the waker when the operation may complete, and fires deadlines itself; the
/// timed park is only a second line of defence, so no wake-up can be lost for good. Unparks
/// may be spurious: polling again is always correct.
pub(crate) fn wait<T>(deadline: Option<Instant>, poll: impl FnMut(&Waker) -> Poll<T>) -> T {
    match wait_inner(deadline, false, poll) {
        Ok(value) => value,
        Err(OnDriverThread) => unreachable!("only a guarded wait refuses to park"),
    }
}

/// Like [`wait`], but refuses to park an I/O driver thread: the driver may be the one that
/// would have to wake it.
pub(crate) fn wait_guarded<T>(
    deadline: Option<Instant>,
    poll: impl FnMut(&Waker) -> Poll<T>,
) -> Result<T, OnDriverThread> {
    wait_inner(deadline, true, poll)
}

/// Waits until `deadline` at most for `poll` to be ready, for the facade's own waits on
/// events: [`RecvError::Timeout`] once the deadline has passed, and
/// [`RecvError::WouldDeadlock`] at once if it would park an I/O driver thread.
pub(crate) fn wait_until<T>(
    deadline: Option<Instant>,
    mut poll: impl FnMut(&Waker) -> Poll<T>,
) -> Result<T, RecvError> {
    let polled = wait_guarded(deadline, |waker| match poll(waker) {
        Poll::Pending if deadline.is_some_and(|d| d <= Instant::now()) => {
            Poll::Ready(Err(RecvError::Timeout))
        }
        Poll::Pending => Poll::Pending,
        Poll::Ready(value) => Poll::Ready(Ok(value)),
    });
    polled.unwrap_or(Err(RecvError::WouldDeadlock))
}

fn wait_inner<T>(
    deadline: Option<Instant>,
    guarded: bool,
    mut poll: impl FnMut(&Waker) -> Poll<T>,
) -> Result<T, OnDriverThread> {
    WAKER.with(|waker| {
        loop {
            if let Poll::Ready(value) = poll(waker) {
                return Ok(value);
            }
            if guarded && is_driver_thread() {
                return Err(OnDriverThread);
            }
            match deadline.map(|d| d.saturating_duration_since(Instant::now())) {
                Some(left) if !left.is_zero() => thread::park_timeout(left),
                // Past the deadline the core answers the next poll; until then, wait for it.
                _ => thread::park(),
            }
        }
    })
}

/// Runs `future` to completion on the calling thread, parking the thread while it is pending.
///
/// This is the blocking facade's way of waiting, offered for the futures it has no method of
/// its own for: the operations of a core [`Connection`](crate::Connection) (a
/// [`LinkCall`](crate::LinkCall), [`Connection::close`](crate::Connection::close)),
/// or an async client's futures in a program that has no executor. It works for any future:
/// the thread is unparked by the future's waker, and the core's own operations need nothing
/// else, since their deadlines are fired by the I/O driver.
///
/// # Blocking
///
/// Until `future` is ready.
///
/// # Panics
///
/// If the future is pending and the calling thread is an I/O driver thread (inside a transport
/// plugin or a link call): parking it could wait for itself.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tidegate::{Config, Connection};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-block-on").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
/// tidegate::block_on(conn.connected()).unwrap();
/// let report = tidegate::block_on(conn.close(Duration::from_secs(5)));
/// assert_eq!(report.unsent().len(), 0);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let polled = wait_guarded(None, |waker| future.as_mut().poll(&mut Context::from_waker(waker)));
    match polled {
        Ok(output) => output,
        Err(OnDriverThread) => {
            panic!("tidegate::block_on on an I/O driver thread would wait for the driver itself")
        }
    }
}
