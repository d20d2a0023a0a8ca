//! Model-checked tests of the waiter queue under every interleaving of its threads.
//!
//! Built only with `RUSTFLAGS="--cfg tidegate_loom"`; run with
//! `cargo test -p tidegate-core --lib --release --target-dir target/loom loom`.
//!
//! # What is modelled
//!
//! A connection's [`State`] is pure bookkeeping behind one mutex. The concurrency around it is
//! what these models reproduce, with [`loom`](::loom)'s mutex, threads and atomics:
//!
//! - **senders** admit a frame (the short path first, then the full one, as a connection
//!   does), poll their queued send, cancel it, each in one critical section, and wake the
//!   wakers they collected after releasing the lock (as `SendOp` does);
//! - the **driver** takes chunks under the lock, "writes" them outside it, then reports the
//!   bytes with [`State::written`] under the lock and wakes after releasing it; it fires
//!   deadlines with [`State::expire`] when a timer it was asked for comes due, and ends the
//!   connection with [`State::finish`];
//! - a **closer** calls [`State::begin_close`];
//! - a `try_send` admits without a waker (it is accepted or refused, never queued), and a
//!   timer thread fires a deadline with [`State::expire`] while its sender cancels.
//!
//! Every model ends the connection through one helper, `end`, the only caller of
//! [`State::finish`].
//!
//! The last model is of the [stage](crate::state::stage) on its own: two senders stage small
//! frames, or take the lock when it declines them, while a third thread takes the lock as the
//! driver does; every holder of the lock drains the stage first and reopens it last, as
//! `ConnShared::lock` does. It checks the bound at every drain, that every frame taken comes
//! out once, whole and in its sender's order, and that exactly one sender is told to notify the
//! driver for each opening on an empty buffer that took a frame.
//!
//! Blocking senders wait with [`loom::future::block_on`](::loom::future::block_on), whose waker
//! is loom-aware: a sender that is never woken leaves loom with a thread that cannot run, and
//! loom reports the deadlock. That is how a lost wake-up (invariant 5) would show. Each
//! sender's waker also counts its wake-ups, so a wake-up without a reason shows too.
//!
//! # What is checked
//!
//! After every critical section: the bound (invariant 1); the byte accounting
//! (`bytes_accepted - bytes_written == buffered`); and that the head of the queue does not fit,
//! i.e. no space sits unclaimed while someone waits for it (invariants 2 and 3). At the end of
//! each execution: every sender has exactly one outcome, with its own frame when it is an
//! error (invariant 4); the stream (written bytes, then the frames the close reports unsent)
//! is exactly the accepted frames in arrival order (invariants 2 and 3); the free space can be
//! filled to the byte (no capacity leaked, invariant 4); and timeouts fired where no space was
//! freed (invariant 6).

use std::collections::{BTreeMap, VecDeque};
use std::future::poll_fn;
use std::sync::Arc as StdArc;
use std::task::{Poll, Wake, Waker};
use std::time::{Duration, Instant};

use ::loom::model::Builder;
use ::loom::sync::atomic::{AtomicUsize, Ordering};
use ::loom::sync::{Arc, Mutex};
use ::loom::thread;
use bytes::Bytes;

use crate::state::effects::Effects;
use crate::state::error::SendError;
use crate::state::machine::{Admit, State};
use crate::state::stage::Stage;

/// The capacity of every modelled connection.
const CAPACITY: usize = 10;

/// The preemption bound: every interleaving with at most this many forced switches between
/// threads is explored. 3 covers each race below with room to spare and keeps the whole run
/// to seconds.
const PREEMPTIONS: usize = 3;

/// Runs `f` under every interleaving loom explores, and says how many there were (visible
/// with `--nocapture`).
fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    // Counted outside loom's model, which resets its own objects on every run.
    let runs = StdArc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = runs.clone();
    let mut builder = Builder::new();
    builder.preemption_bound = Some(PREEMPTIONS);
    builder.check(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        f();
    });
    eprintln!("{name}: {} interleavings", runs.load(Ordering::Relaxed));
}

/// A frame of `len` bytes, each `byte`, so that frames can be told apart on the wire.
fn marked(byte: u8, len: usize) -> Bytes {
    Bytes::from(vec![byte; len])
}

/// A waker that counts its wake-ups and passes them on to the waker it wraps.
struct Counting {
    inner: Waker,
    wakes: AtomicUsize,
}

impl Wake for Counting {
    fn wake(self: StdArc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &StdArc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.inner.wake_by_ref();
    }
}

/// The connection's lock and what the model keeps beside the state to check it.
struct Inner {
    state: State,
    /// Frames that entered the buffer or the queue, in the order they reached the lock: the
    /// order strict FIFO promises on the wire for those that are accepted.
    arrivals: Vec<Bytes>,
    /// The length of every queued frame, by ticket.
    queued: BTreeMap<u64, usize>,
    /// Deadlines the driver was asked to fire, not yet taken by it.
    timers: Vec<Instant>,
    /// Senders that have their outcome.
    done: usize,
    /// The driver's timer loop, waiting for a timer or for the senders to be done.
    driver: Option<Waker>,
}

impl Inner {
    /// The invariants that hold whenever the lock is free.
    fn check(&self) {
        let stats = self.state.stats();
        assert!(stats.buffered <= CAPACITY, "invariant 1: {stats:?}");
        assert!(stats.high_water <= CAPACITY, "invariant 1: {stats:?}");
        assert_eq!(
            stats.bytes_accepted - stats.bytes_written,
            stats.buffered as u64,
            "every buffered byte is an accepted byte not yet written"
        );
        if let Some(head) = self.state.waiting().first() {
            let len = self.queued[head];
            assert!(
                stats.buffered + len > CAPACITY,
                "invariant 3: the head waiter ({len} bytes) fits in {} free bytes but waits",
                CAPACITY - stats.buffered
            );
        }
    }
}

/// One modelled connection.
struct Conn {
    inner: Mutex<Inner>,
}

impl Conn {
    /// A connection whose buffer holds `prefill` (accepted before any thread starts).
    fn new(prefill: &[Bytes]) -> Arc<Self> {
        let mut state = State::new(CAPACITY);
        let mut fx = Effects::new(Instant::now);
        for frame in prefill {
            let admitted = state.admit(frame.clone(), false, None, None, &mut fx);
            assert!(matches!(admitted, Ok(Admit::Accepted)), "{admitted:?}");
        }
        let inner = Inner {
            state,
            arrivals: prefill.to_vec(),
            queued: BTreeMap::new(),
            timers: Vec::new(),
            done: 0,
            driver: None,
        };
        Arc::new(Self { inner: Mutex::new(inner) })
    }

    /// One critical section: runs `f` under the lock, checks the invariants, then — with the
    /// lock released — wakes what `f` collected, and the driver if it was asked for a timer.
    fn with<R>(&self, f: impl FnOnce(&mut Inner, &mut Effects) -> R) -> R {
        let mut fx = Effects::new(Instant::now);
        let mut inner = self.inner.lock().unwrap();
        let result = f(&mut inner, &mut fx);
        inner.check();
        let mut driver = None;
        if let Some(at) = fx.timer.take() {
            inner.timers.push(at);
            driver = inner.driver.take();
        }
        drop(inner);
        fx.wake_all();
        if let Some(driver) = driver {
            driver.wake();
        }
        result
    }

    /// Admits a frame, recording its arrival if it entered the buffer or the queue.
    fn admit(
        &self,
        frame: Bytes,
        deadline: Option<Instant>,
        waker: Option<&Waker>,
    ) -> Result<Admit, SendError<Bytes>> {
        self.with(|inner, fx| {
            // The short path first, as the connection takes a lone data frame.
            if let Some(notify) = inner.state.try_copy(&frame, Instant::now) {
                fx.notify_driver |= notify;
                inner.arrivals.push(frame);
                return Ok(Admit::Accepted);
            }
            let admitted = inner.state.admit(frame.clone(), false, deadline, waker, fx);
            match &admitted {
                Ok(Admit::Accepted) => inner.arrivals.push(frame),
                Ok(Admit::Queued(ticket)) => {
                    inner.arrivals.push(frame.clone());
                    inner.queued.insert(*ticket, frame.len());
                }
                Err(_) => {}
            }
            admitted
        })
    }

    /// A blocking send, as `SendOp` polled to completion: returns the outcome, whether it
    /// waited, and its waker's wake-up counter.
    fn send(&self, frame: Bytes, deadline: Option<Instant>) -> Sent {
        let mut counting: Option<StdArc<Counting>> = None;
        let mut ticket = None;
        let mut frame = Some(frame);
        let outcome = ::loom::future::block_on(poll_fn(|cx| {
            let counter = counting.get_or_insert_with(|| {
                StdArc::new(Counting { inner: cx.waker().clone(), wakes: AtomicUsize::new(0) })
            });
            let waker = Waker::from(counter.clone());
            match ticket {
                None => {
                    let frame = frame.take().expect("polled after completion");
                    match self.admit(frame, deadline, Some(&waker)) {
                        Ok(Admit::Accepted) => Poll::Ready(Ok(())),
                        Ok(Admit::Queued(queued)) => {
                            ticket = Some(queued);
                            Poll::Pending
                        }
                        Err(err) => Poll::Ready(Err(err)),
                    }
                }
                Some(queued) => {
                    match self.with(|inner, fx| inner.state.poll_queued(queued, &waker, fx)) {
                        Some(outcome) => Poll::Ready(outcome),
                        None => Poll::Pending,
                    }
                }
            }
        }));
        // The driver's timer loop may be waiting for the senders to be done.
        let driver = self.with(|inner, _| {
            inner.done += 1;
            inner.driver.take()
        });
        if let Some(driver) = driver {
            driver.wake();
        }
        Sent { outcome, queued: ticket.is_some(), counter: counting }
    }

    /// The driver's timer loop: waits for a timer to be asked for and fires it, until `senders`
    /// senders have their outcome.
    fn fire_timers(&self, senders: usize) {
        loop {
            let next = ::loom::future::block_on(poll_fn(|cx| {
                let mut inner = self.inner.lock().unwrap();
                if let Some(at) = inner.timers.pop() {
                    Poll::Ready(Some(at))
                } else if inner.done == senders {
                    Poll::Ready(None)
                } else {
                    inner.driver = Some(cx.waker().clone());
                    Poll::Pending
                }
            }));
            let Some(at) = next else { return };
            self.with(|inner, fx| {
                inner.state.expire(at, fx);
            });
        }
    }
}

/// How a blocking send ended.
struct Sent {
    outcome: Result<(), SendError<Bytes>>,
    /// Whether it waited in the queue.
    queued: bool,
    /// Its waker's wake-up count, once it was polled.
    counter: Option<StdArc<Counting>>,
}

impl std::fmt::Debug for Sent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sent")
            .field("outcome", &self.outcome)
            .field("queued", &self.queued)
            .field("wakes", &self.wakes())
            .finish()
    }
}

impl Sent {
    fn wakes(&self) -> usize {
        self.counter.as_ref().map_or(0, |c| c.wakes.load(Ordering::SeqCst))
    }

    /// Checks the wake-ups against the outcome, once every thread that could wake the sender
    /// has been joined: a sender that waited was woken exactly once, when its wait ended; one
    /// that never waited was never woken. (The sender itself may have returned before the
    /// wake-up arrived: it can be polled without one, as a parked thread can wake spuriously,
    /// and loom explores that.)
    fn check_wakes(&self) {
        let expected = usize::from(self.queued);
        assert_eq!(self.wakes(), expected, "invariant 5: {self:?}");
    }

    /// The frame is `frame` and it was accepted; or it came back in an error of the given
    /// kind, whole.
    fn accepted(&self, frame: &Bytes, error: fn(&SendError<Bytes>) -> bool) -> bool {
        match &self.outcome {
            Ok(()) => true,
            Err(err) => {
                assert!(error(err), "unexpected error {err:?}");
                assert_eq!(err.frame(), frame, "invariant 4: the error carries the frame");
                false
            }
        }
    }
}

/// The driver's write side: the chunks it took, how far into the first one it wrote, and
/// every byte it put on the wire.
#[derive(Debug, Default)]
struct Writer {
    in_flight: VecDeque<Bytes>,
    offset: usize,
    wire: Vec<u8>,
}

impl Writer {
    /// One round of the driver: takes chunks under the lock, writes up to `n` bytes with the
    /// lock released, reports them under the lock, then wakes.
    fn write(&mut self, conn: &Conn, n: usize) {
        conn.with(|inner, _| inner.state.buffer().take_chunks(&mut self.in_flight));
        let mut left = n;
        while left > 0 && !self.in_flight.is_empty() {
            let chunk = &self.in_flight[0][self.offset..];
            let take = chunk.len().min(left);
            self.wire.extend_from_slice(&chunk[..take]);
            left -= take;
            if take == chunk.len() {
                self.in_flight.pop_front();
                self.offset = 0;
            } else {
                self.offset += take;
            }
        }
        let written = n - left;
        if written > 0 {
            conn.with(|inner, fx| inner.state.written(written, fx));
        }
    }
}

/// The link is gone after an orderly close: the one place the models end a connection, with
/// the driver's chunks not yet fully written.
fn end(state: &mut State, writer: &mut Writer, fx: &mut Effects) {
    state.finish(None, &mut writer.in_flight, writer.offset, fx);
}

/// The end of every execution, once all threads are joined: fills the free space to the byte,
/// closes, and checks that the wire plus the unsent frames are exactly the accepted frames in
/// arrival order. `accepted` says which arrivals were accepted.
fn finish(conn: &Conn, mut writer: Writer, accepted: impl Fn(&Bytes) -> bool) {
    let mut inner = conn.inner.lock().unwrap();
    let mut fx = Effects::new(Instant::now);
    let stats = inner.state.stats();
    assert_eq!(stats.waiters, 0, "every sender has its outcome");
    let open = !inner.state.has_ended() && inner.state.close_deadline().is_none();
    let free = CAPACITY - stats.buffered;
    let filler = marked(0xff, free);
    if open && free > 0 {
        // No capacity leaked: the free space takes a frame of exactly its size.
        let admitted = inner.state.admit(filler.clone(), false, None, None, &mut fx);
        assert!(matches!(admitted, Ok(Admit::Accepted)), "invariant 4: {admitted:?}");
        inner.arrivals.push(filler.clone());
        assert_eq!(inner.state.stats().buffered, CAPACITY);
    }
    let at = Instant::now();
    inner.state.begin_close(at, &mut fx);
    end(&mut inner.state, &mut writer, &mut fx);
    let report = inner.state.report().expect("closed");
    let stats = inner.state.stats();
    assert_eq!(
        report.frames_written() + report.unsent().len() as u64,
        stats.frames_accepted,
        "invariant 8: every accepted frame was written or is reported"
    );
    assert_eq!(report.bytes_written(), writer.wire.len() as u64);
    let mut stream = writer.wire;
    for unsent in report.unsent() {
        stream.extend_from_slice(&unsent.frame()[unsent.written()..]);
    }
    let expected: Vec<u8> = inner
        .arrivals
        .iter()
        .filter(|f| **f == filler || accepted(f))
        .flat_map(|f| f.iter().copied())
        .collect();
    assert_eq!(stream, expected, "invariants 2 and 3: accepted frames, whole, in arrival order");
    drop(inner);
    fx.wake_all();
}

/// (a) Two blocking senders on a nearly full buffer while the driver writes in two rounds:
/// both are accepted, in the order they arrived, the bound holds throughout, and each is
/// woken exactly once if it had to wait.
#[test]
fn loom_two_waiters_are_served_in_order_and_woken() {
    model("two_waiters_are_served_in_order_and_woken", || {
        let conn = Conn::new(&[marked(0, 8)]);
        let senders: Vec<_> = [marked(1, 3), marked(2, 4)]
            .into_iter()
            .map(|frame| {
                let conn = conn.clone();
                thread::spawn(move || conn.send(frame, None))
            })
            .collect();
        let mut writer = Writer::default();
        writer.write(&conn, 4);
        writer.write(&conn, 4);
        for sender in senders {
            let sent = sender.join().unwrap();
            assert!(sent.outcome.is_ok(), "{sent:?}");
            sent.check_wakes();
        }
        finish(&conn, writer, |_| true);
    });
}

/// (b) A sender cancels while the driver writes: either its frame was accepted (cancel gives
/// nothing back) and it goes on the wire once, or cancel returns it and it never does.
#[test]
fn loom_cancel_racing_a_grant_has_exactly_one_outcome() {
    model("cancel_racing_a_grant_has_exactly_one_outcome", || {
        let conn = Conn::new(&[marked(0, 8)]);
        let driver = {
            let conn = conn.clone();
            thread::spawn(move || {
                let mut writer = Writer::default();
                writer.write(&conn, 8);
                writer
            })
        };
        let frame = marked(1, 5);
        let counter =
            StdArc::new(Counting { inner: Waker::noop().clone(), wakes: AtomicUsize::new(0) });
        let waker = Waker::from(counter.clone());
        let (back, queued) = match conn.admit(frame.clone(), None, Some(&waker)) {
            // Accepted at once: a cancel of a completed send gives nothing back.
            Ok(Admit::Accepted) => (None, false),
            Ok(Admit::Queued(ticket)) => {
                (conn.with(|inner, fx| inner.state.cancel(ticket, fx)), true)
            }
            Err(err) => panic!("unexpected {err:?}"),
        };
        let writer = driver.join().unwrap();
        if let Some(back) = &back {
            assert_eq!(back, &frame, "cancel returns its own frame");
        }
        // Woken once if the grant came while it waited, never if it left first.
        let granted_while_queued = queued && back.is_none();
        assert_eq!(counter.wakes.load(Ordering::SeqCst), usize::from(granted_while_queued));
        finish(&conn, writer, |f| *f != frame || back.is_none());
    });
}

/// (b) The head waiter gives up while nothing is written: the waiter behind it, which fits
/// once the head is gone, is let in at once and woken (it would wait forever otherwise).
#[test]
fn loom_a_cancelled_head_lets_the_next_waiter_in() {
    model("a_cancelled_head_lets_the_next_waiter_in", || {
        let conn = Conn::new(&[marked(0, 6)]);
        let next = {
            let conn = conn.clone();
            thread::spawn(move || conn.send(marked(2, 4), None))
        };
        let head = marked(1, 5);
        let back = match conn.admit(head.clone(), None, Some(Waker::noop())) {
            Ok(Admit::Queued(ticket)) => conn.with(|inner, fx| inner.state.cancel(ticket, fx)),
            other => panic!("the head cannot fit: {other:?}"),
        };
        assert_eq!(back.as_ref(), Some(&head), "a frame that never fitted comes back");
        let sent = next.join().unwrap();
        assert!(sent.outcome.is_ok(), "{sent:?}");
        sent.check_wakes();
        finish(&conn, Writer::default(), |f| *f != head);
    });
}

/// (c) A deadline fires while the driver frees space: the sender ends exactly once, accepted
/// or timed out with its frame, and is woken exactly once if it waited.
#[test]
fn loom_a_timeout_racing_a_grant_has_exactly_one_outcome() {
    model("a_timeout_racing_a_grant_has_exactly_one_outcome", || {
        let conn = Conn::new(&[marked(0, 8)]);
        let deadline = Instant::now() + Duration::from_secs(3600);
        let frame = marked(1, 5);
        let sender = {
            let (conn, frame) = (conn.clone(), frame.clone());
            thread::spawn(move || conn.send(frame, Some(deadline)))
        };
        let driver = {
            let conn = conn.clone();
            thread::spawn(move || {
                let mut writer = Writer::default();
                writer.write(&conn, 8);
                writer
            })
        };
        conn.fire_timers(1);
        let sent = sender.join().unwrap();
        let writer = driver.join().unwrap();
        sent.check_wakes();
        let accepted = sent.accepted(&frame, SendError::is_timeout);
        finish(&conn, writer, |f| *f != frame || accepted);
    });
}

/// (c) A deadline fires though no space is ever freed (invariant 6): the sender times out
/// with its frame, woken once.
#[test]
fn loom_a_timeout_fires_without_any_space_freed() {
    model("a_timeout_fires_without_any_space_freed", || {
        let conn = Conn::new(&[marked(0, 8)]);
        let deadline = Instant::now() + Duration::from_secs(3600);
        let frame = marked(1, 5);
        let sender = {
            let (conn, frame) = (conn.clone(), frame.clone());
            thread::spawn(move || conn.send(frame, Some(deadline)))
        };
        conn.fire_timers(1);
        let sent = sender.join().unwrap();
        assert!(matches!(&sent.outcome, Err(SendError::Timeout(f)) if *f == frame), "{sent:?}");
        assert!(sent.queued, "{sent:?}");
        sent.check_wakes();
        finish(&conn, Writer::default(), |f| *f != frame);
    });
}

/// (d) Close races a waiting sender and a driver write: the sender's frame was accepted (and
/// is then written or in the report) or it comes back in `Closed`; the close report accounts
/// for every accepted frame.
#[test]
fn loom_close_racing_a_waiter_and_a_write_accounts_for_every_frame() {
    model("close_racing_a_waiter_and_a_write_accounts_for_every_frame", || {
        let conn = Conn::new(&[marked(0, 8)]);
        let frame = marked(1, 5);
        let sender = {
            let (conn, frame) = (conn.clone(), frame.clone());
            thread::spawn(move || conn.send(frame, None))
        };
        let driver = {
            let conn = conn.clone();
            thread::spawn(move || {
                let mut writer = Writer::default();
                writer.write(&conn, 8);
                writer
            })
        };
        let far = Instant::now() + Duration::from_secs(3600);
        conn.with(|inner, fx| assert!(inner.state.begin_close(far, fx)));
        let writer = driver.join().unwrap();
        let sent = sender.join().unwrap();
        sent.check_wakes();
        let accepted = sent.accepted(&frame, SendError::is_closed);
        finish(&conn, writer, |f| *f != frame || accepted);
    });
}

/// (e) `try_send` with a frame that fits the free space races a waiting sender and a driver
/// write: it gets in only if no one waits at that moment (no barging, invariant 2), and is
/// refused as full otherwise; the wire keeps arrival order either way.
#[test]
fn loom_a_fitting_try_send_never_passes_a_waiter() {
    model("a_fitting_try_send_never_passes_a_waiter", || {
        let conn = Conn::new(&[marked(0, 8)]);
        let sender = {
            let conn = conn.clone();
            thread::spawn(move || conn.send(marked(1, 5), None))
        };
        let driver = {
            let conn = conn.clone();
            thread::spawn(move || {
                let mut writer = Writer::default();
                writer.write(&conn, 8);
                writer
            })
        };
        let frame = marked(2, 2);
        let (accepted, waiting, fits) = conn.with(|inner, fx| {
            let stats = inner.state.stats();
            let fits = stats.buffered + frame.len() <= CAPACITY;
            // As the connection's `try_send`: the short path, then the full one.
            let admitted = match inner.state.try_copy(&frame, Instant::now) {
                Some(_) => Ok(Admit::Accepted),
                None => inner.state.admit(frame.clone(), false, None, None, fx),
            };
            let accepted = match admitted {
                Ok(Admit::Accepted) => true,
                Err(SendError::Timeout(back)) => {
                    assert_eq!(back, frame, "a refused try_send gets its frame back");
                    false
                }
                other => panic!("try_send never queues: {other:?}"),
            };
            if accepted {
                inner.arrivals.push(frame.clone());
            }
            (accepted, stats.waiters > 0, fits)
        });
        assert_eq!(accepted, fits && !waiting, "accepted {accepted}, waiting {waiting}");
        let sent = sender.join().unwrap();
        let writer = driver.join().unwrap();
        assert!(sent.outcome.is_ok(), "{sent:?}");
        sent.check_wakes();
        finish(&conn, writer, |f| *f != frame || accepted);
    });
}

/// (a') One write frees room for two waiters at once: both are let in by the same grant, in
/// arrival order, and each is woken exactly once.
#[test]
fn loom_one_write_grants_two_waiters_at_once() {
    model("one_write_grants_two_waiters_at_once", || {
        let conn = Conn::new(&[marked(0, 8)]);
        let senders: Vec<_> = [marked(1, 3), marked(2, 4)]
            .into_iter()
            .map(|frame| {
                let conn = conn.clone();
                thread::spawn(move || conn.send(frame, None))
            })
            .collect();
        let mut writer = Writer::default();
        writer.write(&conn, 8);
        for sender in senders {
            let sent = sender.join().unwrap();
            assert!(sent.outcome.is_ok(), "{sent:?}");
            sent.check_wakes();
        }
        finish(&conn, writer, |_| true);
    });
}

/// (d') Close while the driver drains in partial writes that cross frame boundaries, with a
/// sender waiting: the sender is accepted or gets `Closed(frame)`; the driver goes on
/// draining after the close began; what it wrote plus the rest of each unsent frame (the cut
/// one from its offset) is every accepted frame, whole, in order.
#[test]
fn loom_a_close_while_draining_accounts_for_every_byte() {
    model("a_close_while_draining_accounts_for_every_byte", || {
        let conn = Conn::new(&[marked(0, 4), marked(1, 4)]);
        let frame = marked(2, 5);
        let sender = {
            let (conn, frame) = (conn.clone(), frame.clone());
            thread::spawn(move || conn.send(frame, None))
        };
        let driver = {
            let conn = conn.clone();
            thread::spawn(move || {
                let mut writer = Writer::default();
                writer.write(&conn, 3);
                writer.write(&conn, 3);
                writer
            })
        };
        let far = Instant::now() + Duration::from_secs(3600);
        conn.with(|inner, fx| assert!(inner.state.begin_close(far, fx)));
        let writer = driver.join().unwrap();
        let sent = sender.join().unwrap();
        sent.check_wakes();
        let accepted = sent.accepted(&frame, SendError::is_closed);
        finish(&conn, writer, |f| *f != frame || accepted);
    });
}

/// (f) A queued sender cancels while its deadline fires and a close begins: whichever comes
/// first, the cancel returns its frame (from the queue, or from the timeout or `Closed` it
/// had not collected yet, invariant 4), and it was woken once exactly when an outcome came
/// before the cancel.
#[test]
fn loom_a_cancel_after_a_timeout_or_a_close_returns_the_frame() {
    model("a_cancel_after_a_timeout_or_a_close_returns_the_frame", || {
        let conn = Conn::new(&[marked(0, 8)]);
        let deadline = Instant::now() + Duration::from_secs(3600);
        let frame = marked(1, 5);
        let counter =
            StdArc::new(Counting { inner: Waker::noop().clone(), wakes: AtomicUsize::new(0) });
        let waker = Waker::from(counter.clone());
        let ticket = match conn.admit(frame.clone(), Some(deadline), Some(&waker)) {
            Ok(Admit::Queued(ticket)) => ticket,
            other => panic!("the frame cannot fit: {other:?}"),
        };
        let timer = {
            let conn = conn.clone();
            thread::spawn(move || {
                conn.with(|inner, fx| {
                    inner.state.expire(deadline, fx);
                })
            })
        };
        let closer = {
            let conn = conn.clone();
            thread::spawn(move || {
                let far = deadline + Duration::from_secs(3600);
                conn.with(|inner, fx| assert!(inner.state.begin_close(far, fx)));
            })
        };
        let (back, ended_first) = conn.with(|inner, fx| {
            let ended_first = inner.state.stats().waiters == 0;
            (inner.state.cancel(ticket, fx), ended_first)
        });
        timer.join().unwrap();
        closer.join().unwrap();
        assert_eq!(back.as_ref(), Some(&frame), "the cancel returns the frame");
        let wakes = counter.wakes.load(Ordering::SeqCst);
        assert_eq!(wakes, usize::from(ended_first), "woken once if its wait ended first");
        finish(&conn, Writer::default(), |f| *f != frame);
    });
}

/// The capacity of the modelled buffer behind the stage.
const STAGE_CAPACITY: usize = 8;

/// A buffer behind a lock, with a stage in front of it: the connection's arrangement, without
/// the rest of its state.
struct Staged {
    stage: Stage,
    inner: Mutex<StagedInner>,
}

/// What the lock guards: the tail the stage opens on, and what the model keeps to check it.
struct StagedInner {
    tail: bytes::BytesMut,
    /// Bytes held: in the tail, not yet written.
    held: usize,
    /// The length of every frame that entered the buffer, in order.
    lens: Vec<usize>,
    /// What the driver wrote.
    wire: Vec<u8>,
    /// Whether the stage is open with `NOTIFY`, on an empty buffer.
    opened_empty: bool,
    /// Openings on an empty buffer that took a frame: one notice each is owed.
    notices_owed: usize,
}

impl Staged {
    fn new() -> Arc<Self> {
        let inner = StagedInner {
            tail: bytes::BytesMut::with_capacity(64),
            held: 0,
            lens: Vec::new(),
            wire: Vec::new(),
            opened_empty: false,
            notices_owed: 0,
        };
        let staged = Arc::new(Self { stage: Stage::new(4), inner: Mutex::new(inner) });
        staged.with(|_| ());
        staged
    }

    /// One critical section: drains the stage, runs `f`, reopens the stage with the room left.
    fn with<R>(&self, f: impl FnOnce(&mut StagedInner) -> R) -> R {
        let mut guard = self.inner.lock().unwrap();
        let inner = &mut *guard;
        let lens = &mut inner.lens;
        let (frames, bytes) =
            self.stage.drain(&mut inner.tail, |len, n| lens.extend(std::iter::repeat_n(len, n)));
        if frames > 0 && inner.opened_empty {
            inner.notices_owed += 1;
        }
        inner.held += bytes;
        assert!(inner.held <= STAGE_CAPACITY, "invariant 1: {} held", inner.held);
        let result = f(inner);
        assert!(inner.held <= STAGE_CAPACITY, "invariant 1: {} held", inner.held);
        let room = STAGE_CAPACITY - inner.held;
        inner.opened_empty = room > 0 && inner.held == 0;
        if room > 0 {
            self.stage.open(&mut inner.tail, room, inner.held == 0);
        }
        result
    }

    /// A `try_send`: the stage first, then the lock. Returns whether the frame was taken and
    /// whether its sender was told to notify the driver.
    fn try_send(&self, frame: &[u8]) -> (bool, bool) {
        if let Some(notify) = self.stage.try_put(frame) {
            return (true, notify);
        }
        let taken = self.with(|inner| {
            if inner.held + frame.len() > STAGE_CAPACITY {
                return false;
            }
            inner.tail.extend_from_slice(frame);
            inner.held += frame.len();
            inner.lens.push(frame.len());
            true
        });
        (taken, false)
    }

    /// The driver: writes everything held.
    fn write(&self) {
        self.with(|inner| {
            let chunk = inner.tail.split();
            inner.wire.extend_from_slice(&chunk);
            inner.held = 0;
        });
    }
}

/// (k) The stage under every interleaving of two senders and the driver.
#[test]
fn loom_staged_frames_keep_the_bound_their_order_and_one_notice() {
    model("staged_frames_keep_the_bound_their_order_and_one_notice", || {
        let staged = Staged::new();
        let a = {
            let staged = staged.clone();
            thread::spawn(move || [staged.try_send(&[1; 2]), staged.try_send(&[2; 3])])
        };
        let b = {
            let staged = staged.clone();
            thread::spawn(move || [staged.try_send(&[3; 4])])
        };
        staged.write();
        let a = a.join().unwrap();
        let b = b.join().unwrap();
        staged.write();
        let inner = staged.inner.lock().unwrap();
        // The frames on the wire, cut by their lengths.
        let mut at = 0;
        let frames: Vec<&[u8]> = inner
            .lens
            .iter()
            .map(|&len| {
                at += len;
                &inner.wire[at - len..at]
            })
            .collect();
        assert_eq!(at, inner.wire.len(), "the lengths tile the wire");
        let sent: Vec<(u8, usize, bool)> = [(1, 2, a[0].0), (2, 3, a[1].0), (3, 4, b[0].0)].into();
        for (byte, len, taken) in &sent {
            let found: Vec<_> = frames.iter().filter(|f| f[0] == *byte).collect();
            assert_eq!(found.len(), usize::from(*taken), "frame {byte} once if taken: {frames:?}");
            if let Some(frame) = found.first() {
                assert_eq!(**frame, &vec![*byte; *len][..], "frame {byte} whole");
            }
        }
        let position = |byte: u8| frames.iter().position(|f| f[0] == byte);
        if let (Some(first), Some(second)) = (position(1), position(2)) {
            assert!(first < second, "a sender's frames in its order: {frames:?}");
        }
        let told = a.iter().chain(&b).filter(|(_, notify)| *notify).count();
        assert_eq!(told, inner.notices_owed, "one notice per opening on an empty buffer");
    });
}
