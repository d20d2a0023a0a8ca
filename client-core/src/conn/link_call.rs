//! Running a closure on the driver thread with the link: [`LinkCall`], the caller's end. The
//! closure itself is queued with the driver (see `crate::driver`); its result lands in a slot
//! shared with this operation.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::state::error::LinkError;

/// Where the result of a [`LinkCall`] lands.
#[derive(Debug)]
struct CallSlot<R> {
    result: Option<Result<R, LinkError>>,
    waker: Option<Waker>,
}

/// A closure waiting to run on the driver thread, returned by [`Connection::call_link`](crate::Connection::call_link).
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
/// See [`Connection::call_link`](crate::Connection::call_link).
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

impl<R> LinkCall<R> {
    /// A call waiting for its result, and the end that delivers it.
    pub(crate) fn new() -> (Self, CallResult<R>) {
        let slot = Arc::new(Mutex::new(CallSlot { result: None, waker: None }));
        (Self { slot: slot.clone(), done: false }, CallResult { slot })
    }
}

/// The driver's end of a [`LinkCall`]: delivers the result and wakes the caller.
#[derive(Debug)]
pub(crate) struct CallResult<R> {
    slot: Arc<Mutex<CallSlot<R>>>,
}

impl<R> CallResult<R> {
    /// Delivers the result; a caller that gave up simply never reads it.
    pub(crate) fn deliver(self, result: Result<R, LinkError>) {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        slot.result = Some(result);
        let waker = slot.waker.take();
        drop(slot);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}
