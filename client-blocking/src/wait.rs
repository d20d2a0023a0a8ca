//! How the blocking facade waits: it polls a core operation with a waker that unparks the
//! calling thread, and parks the thread in between.

use std::sync::Arc;
use std::task::{Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Instant;

use tidegate_core::is_driver_thread;

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
