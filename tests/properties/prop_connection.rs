//! Property tests of a connection against a reference model: random sequences of sends (of
//! random sizes, from several producers, with no deadline, a deadline already past, or a short
//! one), `try_send`s, cancels, partial reads by the peer, changes of the peer's write capacity,
//! stalls and resumes, closes, and peer resets or closes, run on a `mem://` connection.
//!
//! The model is exact: when the peer takes at most a known number of bytes, the state the
//! driver settles in does not depend on how it chunks its writes, since space is granted in
//! FIFO order as a function of the bytes written alone. After every step the test waits
//! (bounded) for the connection to reach the state the model predicts, then checks it:
//! buffered bytes, waiters, bytes written and frames accepted (so the bound, invariant 1);
//! `try_send` is `Full` while anyone waits (no barging, invariant 2); waiting senders are
//! woken exactly when their frame is accepted or their wait ends, never otherwise (invariants
//! 3 and 5); cancels and timeouts hand back their own frame (invariant 4); short deadlines
//! fire (invariant 6); the peer reads exactly the accepted frames, whole, in acceptance order
//! (invariant 7); and at the end every frame is accounted for exactly once — read by the peer,
//! returned in an error, returned by a cancel, or in the close report (invariant 8).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use tidegate_core::transport::mem::{MemListener, MemPeer};
use tidegate_core::{
    Bytes, CloseReport, Config, Connection, DisconnectKind, SendError, SendOp, TrySendError,
};

use crate::support::{HEADER, frame, ident, unique_name};

/// How long any one condition may take to hold before the test fails instead of hanging.
const LONG: Duration = Duration::from_secs(10);

/// Counts its wake-ups.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Count {
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A deadline for a send.
#[derive(Debug, Clone, Copy)]
enum Deadline {
    None,
    /// Already passed when the send starts: it may only succeed at once.
    Past,
    /// A few milliseconds ahead: it fires while the sender waits.
    Short,
}

/// One step of a run.
#[derive(Debug, Clone)]
enum Op {
    Send {
        producer: u32,
        len: usize,
        deadline: Deadline,
    },
    TrySend {
        producer: u32,
        len: usize,
    },
    /// Cancels one of the pending sends (chosen by index, modulo their number).
    Cancel {
        pick: usize,
    },
    /// The peer reads up to this many bytes.
    Read {
        n: usize,
    },
    /// The pipe to the peer holds this many unread bytes before the client's writes block.
    SetRoom {
        n: usize,
    },
    Pause,
    Resume,
    Close,
    PeerReset,
    PeerClose,
}

fn op() -> impl Strategy<Value = Op> {
    let deadline = prop_oneof![
        4 => Just(Deadline::None),
        1 => Just(Deadline::Past),
        1 => Just(Deadline::Short),
    ];
    prop_oneof![
        20 => (0..3u32, HEADER..=72usize, deadline)
            .prop_map(|(producer, len, deadline)| Op::Send { producer, len, deadline }),
        6 => (0..3u32, HEADER..=72usize).prop_map(|(producer, len)| Op::TrySend { producer, len }),
        5 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        10 => (1..=150usize).prop_map(|n| Op::Read { n }),
        2 => (1..=150usize).prop_map(|n| Op::SetRoom { n }),
        3 => Just(Op::Pause),
        4 => Just(Op::Resume),
        // Rare in the middle, so that most runs have a long life before their end.
        1 => end_op(),
    ]
}

/// The ways a connection ends: closed by the application, reset or closed by the peer.
fn end_op() -> impl Strategy<Value = Op> {
    prop_oneof![Just(Op::Close), Just(Op::PeerReset), Just(Op::PeerClose)]
}

/// How the connection ended, in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Closed,
    Disconnected(DisconnectKind),
}

/// What the connection must look like once the driver has done all it can.
#[derive(Debug)]
struct Model {
    capacity: usize,
    room: usize,
    paused: bool,
    ended: Option<End>,
    /// Accepted frames not fully written, oldest first, with the bytes of the first one that
    /// are in the pipe.
    buffer: VecDeque<Bytes>,
    head_written: usize,
    /// Queued sends by id, in arrival order.
    waiting: VecDeque<(u64, Bytes)>,
    /// Sends that were granted since they were last polled.
    granted: BTreeSet<u64>,
    /// Bytes in the pipe the peer has not read.
    unread: usize,
    /// Every byte ever accepted, in acceptance order: what the peer must read, as a prefix.
    stream: Vec<u8>,
    frames_accepted: u64,
    bytes_written: u64,
}

impl Model {
    fn held(&self) -> usize {
        self.buffer.iter().map(Bytes::len).sum::<usize>() - self.head_written
    }

    fn fits(&self, len: usize) -> bool {
        self.held() + len <= self.capacity
    }

    fn accept(&mut self, frame: Bytes) {
        self.stream.extend_from_slice(&frame);
        self.frames_accepted += 1;
        self.buffer.push_back(frame);
    }

    /// Moves bytes into the pipe and grants waiters until nothing more can happen.
    fn settle(&mut self) {
        if self.ended.is_some() {
            return;
        }
        loop {
            let mut progress = false;
            if !self.paused {
                let mut room = self.room.saturating_sub(self.unread);
                while room > 0 && !self.buffer.is_empty() {
                    let left = self.buffer[0].len() - self.head_written;
                    let n = left.min(room);
                    room -= n;
                    self.unread += n;
                    self.bytes_written += n as u64;
                    progress = true;
                    if n == left {
                        self.buffer.pop_front();
                        self.head_written = 0;
                    } else {
                        self.head_written += n;
                    }
                }
            }
            while let Some((_, head)) = self.waiting.front() {
                if !self.fits(head.len()) {
                    break;
                }
                let (id, frame) = self.waiting.pop_front().expect("seen");
                self.accept(frame);
                self.granted.insert(id);
                progress = true;
            }
            if !progress {
                return;
            }
        }
    }

    /// A waiter leaves (timeout or cancel).
    fn leave(&mut self, id: u64) -> Bytes {
        let at = self.waiting.iter().position(|(w, _)| *w == id).expect("a waiting send");
        self.waiting.remove(at).expect("present").1
    }
}

/// A send that is waiting in the queue.
struct Pending {
    id: u64,
    frame: Bytes,
    op: SendOp<Connection>,
    wakes: Arc<Count>,
    waker: Waker,
}

/// Where every frame ended up, for the final accounting.
#[derive(Debug, Default)]
struct Ledger {
    created: Vec<Bytes>,
    /// Returned in an error of a send or `try_send`.
    refused: Vec<Bytes>,
    /// Returned by a cancel.
    cancelled: Vec<Bytes>,
    /// In a close report.
    unsent: Vec<Bytes>,
    /// Everything the peer read.
    read: Vec<u8>,
}

/// One run: the connection, its peer, the model, and the bookkeeping.
struct Run {
    _listener: MemListener,
    conn: Connection,
    peer: MemPeer,
    model: Model,
    pending: Vec<Pending>,
    next_id: u64,
    seq: HashMap<u32, u64>,
    ledger: Ledger,
    report: Option<CloseReport>,
}

impl Run {
    fn new(capacity: usize, room: usize) -> Self {
        let listener = MemListener::bind(&unique_name("prop")).unwrap();
        let conn = Connection::open(&listener.url(), Config::new().capacity(capacity)).unwrap();
        let peer = listener.accept_timeout(LONG).unwrap();
        peer.set_write_capacity(room);
        let model = Model {
            capacity,
            room,
            paused: false,
            ended: None,
            buffer: VecDeque::new(),
            head_written: 0,
            waiting: VecDeque::new(),
            granted: BTreeSet::new(),
            unread: 0,
            stream: Vec::new(),
            frames_accepted: 0,
            bytes_written: 0,
        };
        Self {
            _listener: listener,
            conn,
            peer,
            model,
            pending: Vec::new(),
            next_id: 0,
            seq: HashMap::new(),
            ledger: Ledger::default(),
            report: None,
        }
    }

    fn frame(&mut self, producer: u32, len: usize) -> Bytes {
        let seq = self.seq.entry(producer).or_default();
        let made = frame(producer, *seq, len);
        *seq += 1;
        self.ledger.created.push(made.clone());
        made
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Send { producer, len, deadline } => self.send(producer, len, deadline)?,
            Op::TrySend { producer, len } => self.try_send(producer, len)?,
            Op::Cancel { pick } => self.cancel(pick)?,
            Op::Read { n } => self.read(n)?,
            Op::SetRoom { n } => {
                self.peer.set_write_capacity(n);
                self.model.room = n;
            }
            Op::Pause => {
                self.peer.pause();
                self.model.paused = true;
            }
            Op::Resume => {
                self.peer.resume();
                self.model.paused = false;
            }
            Op::Close => self.close()?,
            Op::PeerReset => self.peer_end(DisconnectKind::Reset)?,
            Op::PeerClose => self.peer_end(DisconnectKind::PeerClosed)?,
        }
        self.model.settle();
        self.settle()
    }

    fn send(&mut self, producer: u32, len: usize, deadline: Deadline) -> Result<(), TestCaseError> {
        let frame = self.frame(producer, len);
        let at = match deadline {
            Deadline::None => None,
            Deadline::Past => Some(Instant::now()),
            Deadline::Short => Some(Instant::now() + Duration::from_millis(3)),
        };
        let mut op = self.conn.clone().send_owned(frame.clone(), at);
        let wakes = Arc::new(Count::default());
        let waker = Waker::from(wakes.clone());
        let polled = op.poll_with(&waker);
        let ended = self.model.ended;
        let m = &mut self.model;
        let fits_now = m.waiting.is_empty() && m.fits(len);
        match (polled, ended) {
            (Poll::Ready(Err(SendError::TooLarge { frame: back, max_len: capacity, .. })), _) => {
                prop_assert!(len > m.capacity, "{len} bytes refused as too large");
                prop_assert_eq!(capacity, m.capacity);
                prop_assert_eq!(&back, &frame);
                self.ledger.refused.push(back);
            }
            (Poll::Ready(Err(err)), Some(end)) => {
                prop_assert!(len <= m.capacity);
                match (&err, end) {
                    (SendError::Closed(_), End::Closed) => {}
                    (SendError::Disconnected { cause, .. }, End::Disconnected(kind)) => {
                        prop_assert_eq!(cause.kind(), kind);
                    }
                    _ => prop_assert!(false, "after {end:?}: {err:?}"),
                }
                let back = err.into_inner();
                prop_assert_eq!(&back, &frame);
                self.ledger.refused.push(back);
            }
            (Poll::Ready(Ok(())), None) => {
                prop_assert!(len <= m.capacity && fits_now, "accepted though it did not fit");
                m.accept(frame);
            }
            (Poll::Ready(Err(SendError::Timeout(back))), None) => {
                // A short deadline may pass before the first poll on a loaded machine.
                prop_assert!(!matches!(deadline, Deadline::None), "timed out without a deadline");
                prop_assert!(len <= m.capacity && !fits_now, "timed out though it fitted");
                prop_assert_eq!(&back, &frame);
                self.ledger.refused.push(back);
            }
            (Poll::Pending, None) => {
                prop_assert!(len <= m.capacity && !fits_now, "waits though it fitted");
                prop_assert!(!matches!(deadline, Deadline::Past), "waits with a past deadline");
                let id = self.next_id;
                self.next_id += 1;
                m.waiting.push_back((id, frame.clone()));
                self.pending.push(Pending { id, frame, op, wakes, waker });
                if matches!(deadline, Deadline::Short) {
                    self.time_out(id)?;
                }
            }
            (polled, end) => prop_assert!(false, "unexpected {polled:?} (ended: {end:?})"),
        }
        Ok(())
    }

    /// Waits for a waiting send's short deadline to fire: nothing else can end its wait, since
    /// the model was settled before it was queued.
    fn time_out(&mut self, id: u64) -> Result<(), TestCaseError> {
        let at = self.pending.iter().position(|p| p.id == id).expect("pending");
        let woken = wait_until(|| self.pending[at].wakes.get() > 0);
        prop_assert!(woken, "invariant 6: a short deadline did not fire within {LONG:?}");
        let mut pending = self.pending.remove(at);
        prop_assert_eq!(pending.wakes.get(), 1, "woken once");
        match pending.op.poll_with(&pending.waker) {
            Poll::Ready(Err(SendError::Timeout(back))) => {
                prop_assert_eq!(&back, &pending.frame);
                self.ledger.refused.push(back);
            }
            other => prop_assert!(false, "expected a timeout: {other:?}"),
        }
        let left = self.model.leave(id);
        prop_assert_eq!(left, pending.frame);
        Ok(())
    }

    fn try_send(&mut self, producer: u32, len: usize) -> Result<(), TestCaseError> {
        let frame = self.frame(producer, len);
        let result = self.conn.try_send(frame.clone());
        let ended = self.model.ended;
        let m = &mut self.model;
        match (result, ended) {
            (Err(TrySendError::TooLarge { frame: back, .. }), _) => {
                prop_assert!(len > m.capacity);
                self.ledger.refused.push(back);
            }
            (Err(err @ (TrySendError::Closed(_) | TrySendError::Disconnected { .. })), Some(_)) => {
                prop_assert!(len <= m.capacity);
                let back = err.into_inner();
                prop_assert_eq!(&back, &frame);
                self.ledger.refused.push(back);
            }
            (Ok(()), None) => {
                prop_assert!(m.waiting.is_empty(), "invariant 2: try_send passed a waiter");
                prop_assert!(m.fits(len), "accepted though it did not fit");
                m.accept(frame);
            }
            (Err(TrySendError::Full(back)), None) => {
                prop_assert!(len <= m.capacity && (!m.waiting.is_empty() || !m.fits(len)));
                prop_assert_eq!(&back, &frame);
                self.ledger.refused.push(back);
            }
            (result, end) => prop_assert!(false, "unexpected {result:?} (ended: {end:?})"),
        }
        Ok(())
    }

    fn cancel(&mut self, pick: usize) -> Result<(), TestCaseError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = self.pending.remove(pick % self.pending.len());
        prop_assert_eq!(pending.wakes.get(), 0, "invariant 5: a waiting sender was woken");
        let back = pending.op.cancel();
        prop_assert_eq!(back.as_ref(), Some(&pending.frame), "cancel returns the waiting frame");
        let left = self.model.leave(pending.id);
        prop_assert_eq!(&left, &pending.frame);
        self.ledger.cancelled.push(left);
        Ok(())
    }

    /// The peer reads up to `n` bytes of what is in the pipe.
    fn read(&mut self, n: usize) -> Result<(), TestCaseError> {
        let want = n.min(self.model.unread);
        let mut got = 0;
        let mut buf = vec![0u8; want];
        while got < want {
            let k = self.peer.read_timeout(&mut buf[got..], LONG);
            prop_assert!(k.is_ok(), "reading {want} bytes: {k:?}");
            let k = k.unwrap();
            prop_assert!(k > 0, "end of stream with {} bytes unread", want - got);
            got += k;
        }
        self.model.unread -= want;
        let at = self.ledger.read.len();
        self.ledger.read.extend_from_slice(&buf);
        prop_assert!(
            self.ledger.read[..] == self.model.stream[..self.ledger.read.len()],
            "invariant 7: the peer read bytes {at}.. that differ from the accepted frames"
        );
        Ok(())
    }

    /// The application closes with no time to drain: waiting senders get `Closed`, the
    /// report lists the frames still in the buffer.
    fn close(&mut self) -> Result<(), TestCaseError> {
        let first = self.model.ended.is_none();
        let report = resolve(self.conn.close(Duration::ZERO));
        if first {
            self.model.ended = Some(End::Closed);
            self.end(report, None)?;
        } else {
            prop_assert!(report.unsent().is_empty(), "only the first close gets the frames");
        }
        Ok(())
    }

    /// The peer ends the connection; the driver notices on its own.
    fn peer_end(&mut self, kind: DisconnectKind) -> Result<(), TestCaseError> {
        if self.model.ended.is_some() {
            return Ok(());
        }
        match kind {
            DisconnectKind::Reset => self.peer.reset(),
            _ => self.peer.close(),
        }
        if kind == DisconnectKind::PeerClosed && self.model.buffer.is_empty() {
            // The peer's end of stream ends the receive side only (it may be a half-close):
            // with nothing to write, no write finds the peer gone, so the connection stays up
            // until the application closes it, in order.
            let eof = wait_until(|| matches!(self.conn.try_recv(), Ok(None)));
            prop_assert!(eof, "the receive side did not end with the peer's end of stream");
            prop_assert!(!self.conn.is_closed(), "a half-close ended the whole connection");
            self.model.ended = Some(End::Closed);
            let report = resolve(self.conn.close(Duration::ZERO));
            prop_assert!(report.is_clean(), "{report:?}");
            return self.end(report, None);
        }
        self.model.ended = Some(End::Disconnected(kind));
        let ended =
            wait_until(|| self.conn.is_closed() && self.pending.iter().all(|p| p.wakes.get() > 0));
        prop_assert!(ended, "the connection did not notice the peer's {kind:?}");
        let report = resolve(self.conn.close(Duration::ZERO));
        self.end(report, Some(kind))
    }

    /// Checks how the waiting senders and the report came out of the end of the connection.
    fn end(
        &mut self,
        report: CloseReport,
        kind: Option<DisconnectKind>,
    ) -> Result<(), TestCaseError> {
        for mut pending in std::mem::take(&mut self.pending) {
            let woken = wait_until(|| pending.wakes.get() > 0);
            prop_assert!(woken, "invariant 5: a waiting sender was not woken by the end");
            prop_assert_eq!(pending.wakes.get(), 1);
            let err = match pending.op.poll_with(&pending.waker) {
                Poll::Ready(Err(err)) => err,
                other => return Err(TestCaseError::fail(format!("expected an error: {other:?}"))),
            };
            match (&err, kind) {
                (SendError::Closed(_), None) => {}
                (SendError::Disconnected { cause, .. }, Some(kind)) => {
                    prop_assert_eq!(cause.kind(), kind);
                }
                _ => prop_assert!(false, "a waiter ended with {err:?}, expected {kind:?}"),
            }
            let back = err.into_inner();
            prop_assert_eq!(&back, &pending.frame);
            self.model.leave(pending.id);
            self.ledger.refused.push(back);
        }
        prop_assert_eq!(report.cause().map(|c| c.kind()), kind);
        prop_assert_eq!(report.bytes_written(), self.model.bytes_written);
        let unsent: Vec<(Bytes, usize)> =
            report.unsent().iter().map(|u| (u.frame().clone(), u.written())).collect();
        let expected: Vec<(Bytes, usize)> = self
            .model
            .buffer
            .iter()
            .enumerate()
            .map(|(i, f)| (f.clone(), if i == 0 { self.model.head_written } else { 0 }))
            .collect();
        prop_assert_eq!(unsent, expected, "invariant 8: the report lists the unwritten frames");
        prop_assert_eq!(
            report.frames_written() + report.unsent().len() as u64,
            self.model.frames_accepted
        );
        if kind.is_none() {
            prop_assert_eq!(report.timed_out(), !self.model.buffer.is_empty());
        }
        self.ledger.unsent.extend(self.model.buffer.drain(..));
        self.model.head_written = 0;
        self.report = Some(report);
        Ok(())
    }

    /// Waits until the connection is in the state the model predicts, then checks the wake-ups.
    fn settle(&mut self) -> Result<(), TestCaseError> {
        let m = &self.model;
        let expect = |conn: &Connection, peer: &MemPeer| {
            let stats = conn.stats();
            (
                stats.buffered,
                stats.waiters,
                stats.bytes_written,
                stats.frames_accepted,
                peer.unread(),
            )
        };
        let target = (m.held(), m.waiting.len(), m.bytes_written, m.frames_accepted, m.unread);
        let granted: Vec<usize> =
            (0..self.pending.len()).filter(|&i| m.granted.contains(&self.pending[i].id)).collect();
        let reached = wait_until(|| {
            expect(&self.conn, &self.peer) == target
                && granted.iter().all(|&i| self.pending[i].wakes.get() > 0)
        });
        let stats = self.conn.stats();
        prop_assert!(
            reached,
            "the connection did not reach the model's state: (buffered, waiters, written, \
             accepted, unread) is {:?}, expected {target:?}; {stats:?}",
            expect(&self.conn, &self.peer)
        );
        prop_assert!(stats.buffered <= stats.capacity && stats.high_water <= stats.capacity);
        // Granted senders were woken once and complete; the others were not woken.
        let mut still = Vec::new();
        for mut pending in std::mem::take(&mut self.pending) {
            if self.model.granted.remove(&pending.id) {
                prop_assert_eq!(pending.wakes.get(), 1, "invariant 5: woken once when accepted");
                let polled = pending.op.poll_with(&pending.waker);
                prop_assert!(matches!(polled, Poll::Ready(Ok(()))), "{polled:?}");
            } else {
                prop_assert_eq!(pending.wakes.get(), 0, "invariant 5: woken while still waiting");
                still.push(pending);
            }
        }
        self.pending = still;
        Ok(())
    }

    /// Ends the connection with `last` if it is still open, reads what is left in the pipe,
    /// and accounts for every frame.
    fn finish(mut self, last: &Op) -> Result<(), TestCaseError> {
        if self.model.ended.is_none() {
            self.step(last)?;
        }
        let mut buf = vec![0u8; 4096];
        let mut rounds = 0;
        loop {
            rounds += 1;
            prop_assert!(rounds < 10_000, "the pipe never ended");
            let n = self.peer.read_timeout(&mut buf, LONG);
            prop_assert!(n.is_ok(), "reading the rest: {n:?}");
            let n = n.unwrap();
            if n == 0 {
                break;
            }
            self.ledger.read.extend_from_slice(&buf[..n]);
        }
        let report = self.report.take().expect("closed");
        let ledger = &self.ledger;
        prop_assert_eq!(ledger.read.len() as u64, report.bytes_written());
        prop_assert!(ledger.read[..] == self.model.stream[..ledger.read.len()], "invariant 7");
        // Whole frames the peer read, then the partial one, which must be the first unsent.
        let mut whole = Vec::new();
        let mut rest = &ledger.read[..];
        while rest.len() >= HEADER {
            let len = u32::from_be_bytes(rest[12..16].try_into().unwrap()) as usize;
            if rest.len() < len {
                break;
            }
            whole.push(ident(&rest[..len]));
            rest = &rest[len..];
        }
        if !rest.is_empty() {
            let first = ledger.unsent.first();
            prop_assert!(first.is_some_and(|f| f.starts_with(rest)), "a torn frame on the wire");
        }
        let mut seen = BTreeSet::new();
        let ids = whole.into_iter().chain(
            [&ledger.refused, &ledger.cancelled, &ledger.unsent]
                .into_iter()
                .flatten()
                .map(|f| ident(f)),
        );
        for id in ids {
            prop_assert!(seen.insert(id), "frame {id:?} is accounted for twice");
        }
        let created: BTreeSet<(u32, u64)> = ledger.created.iter().map(|f| ident(f)).collect();
        prop_assert_eq!(seen, created, "invariant 8: every frame is accounted for");
        Ok(())
    }
}

/// Polls `condition` with short sleeps until it holds or [`LONG`] passes.
fn wait_until(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + LONG;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Polls a future to completion, failing after [`LONG`] instead of hanging.
fn resolve<F: Future + Unpin>(mut fut: F) -> F::Output {
    let wakes = Arc::new(Count::default());
    let waker = Waker::from(wakes.clone());
    let deadline = Instant::now() + LONG;
    loop {
        let seen = wakes.get();
        if let Poll::Ready(out) = Pin::new(&mut fut).poll(&mut Context::from_waker(&waker)) {
            return out;
        }
        let woken = wait_until(|| wakes.get() > seen);
        assert!(woken && Instant::now() < deadline, "a close did not end within {LONG:?}");
    }
}

/// One run: `ops` on a connection of `capacity` whose peer's pipe holds `room` unread bytes,
/// then `last` ends it; the connection must follow the model throughout.
fn follow(capacity: usize, room: usize, ops: &[Op], last: &Op) -> Result<(), TestCaseError> {
    let mut run = Run::new(capacity, room);
    run.model.settle();
    run.settle()?;
    for op in ops {
        run.step(op)?;
    }
    run.finish(last)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        // A failing case can take [`LONG`] (a settle that never comes), so shrinking is
        // bounded in time as well as in steps: a real failure reports within about a minute.
        max_shrink_iters: 64,
        max_shrink_time: 30_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random operations keep the connection in the model's state, and every frame is
    /// accounted for at the end.
    #[test]
    fn a_connection_follows_the_model(
        capacity in 48..=200usize,
        room in 1..=150usize,
        ops in proptest::collection::vec(op(), 1..60),
        last in end_op(),
    ) {
        follow(capacity, room, &ops, &last)?;
    }

    /// The same with buffers of a few hundred bytes and more, whose tail segments (a quarter
    /// of the capacity) have room for several frames, so that most sends that fit go through
    /// the stage in front of the buffer rather than its lock.
    #[test]
    fn a_connection_with_room_for_staged_frames_follows_the_model(
        capacity in 400..=1600usize,
        room in 1..=600usize,
        ops in proptest::collection::vec(op(), 1..60),
        last in end_op(),
    ) {
        follow(capacity, room, &ops, &last)?;
    }
}
