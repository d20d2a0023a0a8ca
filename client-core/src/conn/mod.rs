//! Layer 2: the shared connection object and the operations on it.
//!
//! [`ConnShared`] is what a connection's handles, its operations and its driver share: the lock
//! around its [state](crate::state::machine), the [stage](crate::state::stage) in front of it
//! where small data frames enter while the lock is free, the inbound buffer behind a lock of its
//! own, the settings the layers below the public handle need, and a way to tell the driver
//! ([`Notify`]). It does no I/O and knows no transport: the driver, one layer up, moves the
//! bytes. Every holder of the lock ([`ConnShared::lock`]) first takes in what was staged and
//! reopens the stage as it lets go, so that under the lock the state is exact.
//!
//! Each operation that may have to wait is a [`Future`](std::future::Future) in a module of
//! its own, with its `poll_with` and its cancel-safety argument next to it:
//! [`send`] ([`SendOp`]), [`send_batch`] ([`SendBatchOp`]), [`flush`] ([`FlushOp`]), [`close`]
//! ([`CloseOp`], [`ShutdownWriteOp`]), [`connect`] ([`Connected`]), [`recv`] ([`RecvOp`]) and
//! [`link_call`] ([`LinkCall`]). None of them blocks: each registers the waker it is polled
//! with, and the driver wakes it when the operation can complete or its deadline passes. The
//! async facade awaits them; the blocking facade polls them with a waker that unparks its
//! thread.

pub(crate) mod byte_stream;
pub(crate) mod close;
pub(crate) mod connect;
pub(crate) mod flush;
pub(crate) mod link_call;
pub(crate) mod recv;
pub(crate) mod send;
pub(crate) mod send_batch;
pub(crate) mod watermarks;

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::state::budget::{BudgetShared, Grant, Member};
use crate::state::buffer::{COPY_MAX, Header};
use crate::state::codec::{EncodeError, Encoder};
use crate::state::effects::{Effects, Notify};
use crate::state::error::{FrameLimit, RecvError, SendError, TryRecvError, TrySendError};
use crate::state::handshake::Handshake;
use crate::state::inbound::Inbound;
use crate::state::machine::{Admit, Phase, State};
use crate::state::report::Stats;
use crate::state::stage::{STAGE_FRAMES, Stage};

/// A handle an operation can hold on to: a `Connection`, owned or borrowed.
///
/// The operations that can outlive a borrow ([`SendOp`](send::SendOp),
/// [`SendBatchOp`](send_batch::SendBatchOp), [`RecvOp`](recv::RecvOp)) are generic over it.
/// It is sealed: the core implements it for its own handle only.
pub trait ConnectionRef: sealed::Sealed {}

pub(crate) mod sealed {
    /// The hidden half of [`ConnectionRef`](super::ConnectionRef): how an operation reaches the
    /// shared connection.
    pub trait Sealed {
        /// The shared connection this handle stands for.
        fn shared(&self) -> &super::ConnShared;
    }

    impl<T: Sealed + ?Sized> Sealed for &T {
        fn shared(&self) -> &super::ConnShared {
            (**self).shared()
        }
    }
}

impl<T: ConnectionRef + ?Sized> ConnectionRef for &T {}

/// What the layers below the public handle need of a connection's configuration, taken from it
/// when the connection opens.
#[derive(Clone)]
pub(crate) struct Settings {
    /// The URL the connection was opened with, for the log.
    pub(crate) url: String,
    /// The framing's encoder, if frames get a header.
    pub(crate) encoder: Option<Arc<dyn Encoder>>,
    /// How long a close started by dropping the last handle may drain.
    pub(crate) close_timeout: Duration,
    /// How long connecting may take, if limited.
    pub(crate) connect_timeout: Option<Duration>,
    /// Bytes the driver reads per turn before it writes again.
    pub(crate) write_bias: usize,
    /// The capacity of the inbound buffer.
    pub(crate) inbound_capacity: usize,
    /// What every new link says first, if anything.
    pub(crate) handshake: Option<Arc<dyn Handshake>>,
    pub(crate) write_stall_timeout: Option<Duration>,
    pub(crate) inbound_silence_timeout: Option<Duration>,
    /// The idle heartbeat's interval and frame.
    pub(crate) heartbeat: Option<(Duration, Bytes)>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("url", &self.url)
            .field("header_len", &self.encoder.as_ref().map(|e| e.header_len()))
            .field("close_timeout", &self.close_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("write_bias", &self.write_bias)
            .field("inbound_capacity", &self.inbound_capacity)
            .field("handshake", &self.handshake.is_some())
            .field("write_stall_timeout", &self.write_stall_timeout)
            .field("inbound_silence_timeout", &self.inbound_silence_timeout)
            .field("heartbeat", &self.heartbeat)
            .finish()
    }
}

/// Why the short path did not take a data frame.
enum Declined<'a> {
    /// It does not fit now, or others wait, or the connection refuses it: the full admission
    /// decides, under this lock, which is still held.
    Locked(LockedState<'a>, Bytes, Option<Header>),
    /// The framing's encoder refused it.
    Refused(SendError<Bytes>),
}

/// A connection's state under its lock, with what senders staged while the lock was free
/// already moved into it (see [`State::unstage`]). When it is dropped the stage reopens, if the
/// state allows (see [`State::open_stage`]), and then the lock is released.
pub(crate) struct LockedState<'a> {
    state: MutexGuard<'a, State>,
    stage: &'a Stage,
}

impl Deref for LockedState<'_> {
    type Target = State;

    #[inline]
    fn deref(&self) -> &State {
        &self.state
    }
}

impl DerefMut for LockedState<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

impl Drop for LockedState<'_> {
    #[inline]
    fn drop(&mut self) {
        self.state.open_stage(self.stage);
    }
}

/// The part of a connection shared by its handles, its operations and its driver.
#[derive(Debug)]
pub struct ConnShared {
    state: Mutex<State>,
    /// Where small data frames enter while `state`'s lock is free; closed and drained by
    /// every holder of that lock first thing ([`ConnShared::lock`]), so that under the lock
    /// the state is exact. Empty (never open) with framing.
    stage: Stage,
    /// The receive side, behind a lock of its own so receiving never contends with sending.
    /// Lock order, if both are ever needed: `state`, then `inbound`.
    inbound: Mutex<Inbound>,
    driver: Weak<dyn Notify>,
    id: usize,
    settings: Settings,
}

impl ConnShared {
    /// A connection in `state` and `inbound`, known to `driver` as `id`.
    pub(crate) fn new(
        state: State,
        inbound: Inbound,
        driver: Weak<dyn Notify>,
        id: usize,
        settings: Settings,
    ) -> Self {
        let stage = Stage::new(if settings.encoder.is_some() { 0 } else { STAGE_FRAMES });
        let state = Mutex::new(state);
        Self { state, stage, inbound: Mutex::new(inbound), driver, id, settings }
    }

    /// A connection that waits on `budget` as well as on its own capacity.
    pub(crate) fn join_budget(self: &Arc<Self>, budget: Arc<BudgetShared>) {
        let me: Weak<dyn Member> = Arc::downgrade(self) as Weak<dyn Member>;
        self.lock().set_budget(budget, me);
    }

    /// Locks the state, with the stage drained into it.
    #[inline]
    pub(crate) fn lock(&self) -> LockedState<'_> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.unstage(&self.stage, Instant::now);
        LockedState { state, stage: &self.stage }
    }

    pub(crate) fn id(&self) -> usize {
        self.id
    }

    pub(crate) fn inbound(&self) -> MutexGuard<'_, Inbound> {
        self.inbound.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The URL the connection was opened with.
    pub(crate) fn url(&self) -> &str {
        &self.settings.url
    }

    /// The header of a frame of `len` bytes, with framing, encoded outside the lock; a
    /// payload the encoder refuses comes back as `TooLarge`, reporting the encoder's maximum.
    #[inline]
    fn header(&self, frame: Bytes) -> Result<(Bytes, Option<Header>), SendError<Bytes>> {
        let Some(encoder) = self.settings.encoder.as_ref() else {
            return Ok((frame, None));
        };
        match Header::encode(&**encoder, frame.len()) {
            Ok(header) => Ok((frame, Some(header))),
            Err(EncodeError::TooLarge { max, .. }) => {
                Err(SendError::TooLarge { frame, max_len: max, limit: FrameLimit::Codec })
            }
        }
    }

    /// Offers an urgent frame to the state.
    fn admit_urgent(
        &self,
        frame: Bytes,
        deadline: Option<Instant>,
        waker: Option<&Waker>,
        fx: &mut Effects,
    ) -> Result<Admit, SendError<Bytes>> {
        match self.header(frame)? {
            (frame, None) => self.lock().admit(frame, true, deadline, waker, fx),
            (frame, Some(header)) => {
                self.lock().admit_framed(frame, header, true, deadline, waker, fx)
            }
        }
    }

    /// Offers a data frame to the state, in one critical section: the short path first (see
    /// [`State::try_push`]), which needs no [`Effects`]; if it declines, the full admission.
    #[inline]
    pub(crate) fn admit_data(
        &self,
        frame: Bytes,
        deadline: Option<Instant>,
        waker: Option<&Waker>,
    ) -> Result<Admit, SendError<Bytes>> {
        match self.push_now(frame) {
            Ok(()) => Ok(Admit::Accepted),
            Err(Declined::Locked(state, frame, header)) => {
                self.admit_locked(state, frame, header, deadline, waker)
            }
            Err(Declined::Refused(err)) => Err(err),
        }
    }

    /// The short path for a data frame: it enters the buffer now, or the lock comes back
    /// still held, with the frame, for the full admission to decide in the same critical
    /// section. A small unframed frame is first offered to the [stage](crate::state::stage),
    /// which needs no lock; the rest of the path is out of line.
    #[inline]
    fn push_now(&self, frame: Bytes) -> Result<(), Declined<'_>> {
        if self.settings.encoder.is_none()
            && let Some(notify) = self.stage.try_put(&frame)
        {
            drop(frame);
            self.accepted(notify);
            return Ok(());
        }
        self.push_locked(frame)
    }

    /// [`ConnShared::push_now`] under the lock.
    #[inline(never)]
    fn push_locked(&self, frame: Bytes) -> Result<(), Declined<'_>> {
        if self.settings.encoder.is_some() || frame.len() > COPY_MAX {
            return self.push_now_whole(frame);
        }
        let mut state = self.lock();
        match state.try_copy(&frame, Instant::now) {
            Some(notify) => {
                // Copied in; the frame itself is let go of once the lock is released.
                drop(state);
                drop(frame);
                self.accepted(notify);
                Ok(())
            }
            None => Err(Declined::Locked(state, frame, None)),
        }
    }

    /// [`ConnShared::push_now`] for a frame that is not copied in: a large one, which goes in
    /// as it is, or any frame with framing, behind its header.
    #[inline(never)]
    fn push_now_whole(&self, frame: Bytes) -> Result<(), Declined<'_>> {
        let (frame, header) = self.header(frame).map_err(Declined::Refused)?;
        let mut state = self.lock();
        let taken = match header {
            None => state.try_push(frame, (), Instant::now),
            Some(header) => state.try_push(frame, header, Instant::now),
        };
        match taken {
            Ok(notify) => {
                drop(state);
                self.accepted(notify);
                Ok(())
            }
            Err(frame) => Err(Declined::Locked(state, frame, header)),
        }
    }

    /// A data frame the short path took: tells the driver if the buffer was empty.
    #[inline]
    fn accepted(&self, notify: bool) {
        if notify {
            self.notify_driver();
        }
    }

    /// A data frame the short path declined: the full admission, under the same lock, out of
    /// line so that the common case compiles small.
    #[cold]
    #[inline(never)]
    fn admit_locked(
        &self,
        mut state: LockedState<'_>,
        frame: Bytes,
        header: Option<Header>,
        deadline: Option<Instant>,
        waker: Option<&Waker>,
    ) -> Result<Admit, SendError<Bytes>> {
        let mut fx = Effects::new(Instant::now);
        let admitted = match header {
            None => state.admit(frame, false, deadline, waker, &mut fx),
            Some(header) => state.admit_framed(frame, header, false, deadline, waker, &mut fx),
        };
        drop(state);
        self.apply(fx);
        admitted
    }

    /// Tells the driver to look at this connection.
    #[cold]
    fn notify_driver(&self) {
        if let Some(driver) = self.driver.upgrade() {
            driver.notify(self.id);
        }
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
        let Some(encoder) = self.settings.encoder.as_ref() else {
            if lens.is_empty() || lens.contains(&0) {
                return Err(SendError::Empty(()));
            }
            let admitted = self.lock().admit_batch(bytes.clone(), lens, 0, deadline, waker, fx);
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
                    return Err(SendError::TooLarge {
                        frame: (),
                        max_len: max,
                        limit: FrameLimit::Codec,
                    });
                }
            }
            wire.extend_from_slice(&bytes[at..at + len]);
            at += len;
            wire_lens.push(header_len + len);
        }
        let wire = wire.freeze();
        let admitted = self.lock().admit_batch(wire, &wire_lens, headers, deadline, waker, fx);
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

    /// Offers a frame without waiting: it enters the buffer now or comes back in the error.
    #[inline]
    pub(crate) fn try_send(&self, frame: Bytes, urgent: bool) -> Result<(), TrySendError<Bytes>> {
        let admitted = if urgent {
            let mut fx = Effects::new(Instant::now);
            let admitted = self.admit_urgent(frame, None, None, &mut fx);
            self.apply(fx);
            admitted
        } else {
            match self.push_now(frame) {
                Ok(()) => return Ok(()),
                Err(Declined::Locked(state, frame, header)) => {
                    self.admit_locked(state, frame, header, None, None)
                }
                Err(Declined::Refused(err)) => Err(err),
            }
        };
        match admitted {
            Ok(_) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// Takes what the inbound buffer holds, without waiting.
    pub(crate) fn try_recv(&self) -> Result<Option<Bytes>, TryRecvError> {
        let mut fx = Effects::new(Instant::now);
        let polled = self.inbound().poll_recv(&mut None, None, None, usize::MAX, &mut fx);
        self.apply(fx);
        match polled {
            Poll::Ready(Ok(item)) => Ok(item),
            Poll::Ready(Err(RecvError::Disconnected(cause))) => {
                Err(TryRecvError::Disconnected(cause))
            }
            Poll::Ready(Err(RecvError::Decode(err))) => Err(TryRecvError::Decode(err)),
            Poll::Ready(Err(_)) | Poll::Pending => Err(TryRecvError::Empty),
        }
    }

    /// The counters of both sides.
    pub(crate) fn stats(&self) -> Stats {
        let (stats, outage) = {
            let state = self.lock();
            (state.stats(), state.outage_since())
        };
        let inbound = self.inbound().stats();
        // The outage under way counts up to now.
        let down = outage.map_or(Duration::ZERO, |since| since.elapsed());
        Stats {
            time_disconnected: stats.time_disconnected + down,
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

    /// Whether the connection refuses new frames: a half-close or a close has begun, or the
    /// connection has ended.
    pub(crate) fn is_closed(&self) -> bool {
        matches!(self.lock().phase(), Phase::Finishing | Phase::Closing | Phase::Closed)
    }

    /// Begins closing because no handle is left: the frames still unsent will have no one to
    /// go back to, so they are logged when the link is gone.
    pub(crate) fn abandon(&self, fx: &mut Effects) -> bool {
        let deadline = Instant::now() + self.settings.close_timeout;
        let mut state = self.lock();
        state.abandon();
        let began = state.begin_close(deadline, fx);
        drop(state);
        if began {
            log::debug!("last handle to {} dropped; draining", self.url());
        }
        began
    }
}

impl Member for ConnShared {
    fn granted(&self, ticket: u64, len: usize, grants: &mut Vec<Grant>) -> bool {
        let mut fx = Effects::new(Instant::now);
        let taken = self.lock().budget_granted(ticket, len, &mut fx);
        grants.append(&mut fx.grants);
        self.apply(fx);
        taken
    }
}
