//! The I/O driver: a thread running a `mio::Poll` loop over one or more connections.
//!
//! For each connection it hosts, the driver
//!
//! - completes the connection attempt ([`Link::poll_connect`]);
//! - drains the outgoing buffer: it takes the queued chunks under the connection's lock, writes
//!   them with one vectored write *outside* the lock, then, under the lock again, returns the
//!   space, moves the frames of waiting senders that now fit into the buffer and collects their
//!   wakers, which it wakes after releasing the lock;
//! - reads into the connection's bounded inbound buffer (at most its free space), stops reading
//!   while it is full and resumes when a receiver makes room, and notices the peer closing or
//!   resetting the connection;
//! - fires the deadlines of waiting senders, receivers, flushes, connects and closes, so that
//!   timeouts need no timer from the caller's runtime;
//! - finishes the connection on close or disconnect, handing the unwritten frames to the state.
//!
//! Producers wake the driver only when they put bytes into an *empty* buffer (the driver has
//! nothing in flight and will not look again by itself); while bytes are in flight the driver
//! comes back for more on its own. A wake-up is a `mio::Waker` call, and only when the driver
//! is asleep: requests that arrive while it runs are picked up before it sleeps again.
//!
//! # Write biasing
//!
//! Each turn of the loop serves a connection in a fixed order: write first (until the link
//! would block, or for at most 32 vectored writes), then read, at most
//! [`Config::write_bias`](crate::Config::write_bias) bytes (64 KiB by default), then fire
//! deadlines. A connection with more to read than its budget is served again at the next turn,
//! after the other connections of the thread and after writing again. So however fast the peer
//! sends, outgoing data gets a write attempt at least once per budget's worth of reading: an
//! inbound flood slows outgoing data by the time it takes to read one budget per turn (tens of
//! microseconds for 64 KiB on loopback), and cannot starve it. A smaller budget favours
//! outgoing data; a larger one saves turns when reading is what matters.
//!
//! A receiver that takes the inbound buffer from full to not full asks the driver to look at
//! the connection again (mio's readiness is edge-triggered, so the socket will not tell it),
//! and the driver then reads until the link would block or the buffer is full.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use mio::{Events, Poll, Token};

use crate::conn::ConnShared;
use crate::observe::Observer;
use crate::state::backoff::{Backoff, Reconnect};
use crate::state::buffer::Header;
use crate::state::codec::Encoder;
use crate::state::effects::{Effects, Notify};
use crate::state::error::LinkError;
use crate::state::error::TlsErrorKind;
use crate::state::error::{Disconnect, DisconnectKind};
use crate::state::handshake::Handshake;
use crate::state::inbound::Read;
use crate::state::machine::{Phase, State};
use crate::transport::{Link, LinkWaker, Registration};

/// The token of the driver's own waker.
const WAKER: Token = Token(usize::MAX);
/// Most slices handed to one vectored write.
const MAX_IOV: usize = 64;
/// Writes per connection per turn of the loop, so one busy connection cannot starve others.
const WRITE_ROUNDS: usize = 32;

/// Reads of a handshake's answer per service, before other connections get a turn.
const MAX_GREETING_READS: usize = 16;
/// How soon the driver first asks a link that keeps written frames what its peer has
/// acknowledged, after a write or a look that released some: an acknowledgement comes after
/// about a round trip, and no readiness event says it has.
const ACK_POLL_MIN: Duration = Duration::from_millis(1);
/// The longest wait between two such looks: each look that releases nothing doubles the wait,
/// up to this, so a peer that acknowledges nothing for long costs a look every so often.
const ACK_POLL_MAX: Duration = Duration::from_millis(100);

thread_local! {
    /// Whether this thread is an I/O driver thread.
    static ON_DRIVER: Cell<bool> = const { Cell::new(false) };
}

/// Returns whether the calling thread is an I/O driver thread (for example inside a transport
/// plugin, or a closure passed to [`Connection::call_link`](crate::Connection::call_link)).
///
/// Waiting there for the driver would wait forever, or stall every connection the driver
/// hosts: the blocking facade checks this and returns an error instead of parking.
///
/// # Examples
///
/// ```
/// assert!(!tidegate::is_driver_thread());
/// ```
pub fn is_driver_thread() -> bool {
    ON_DRIVER.with(Cell::get)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether the driver thread is asleep in `poll`, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sleep {
    Awake,
    Until(Instant),
    Forever,
}

/// A closure to run on the driver thread with a connection's link, or with the reason there is
/// none ([`Connection::call_link`](crate::Connection::call_link)).
pub(crate) type LinkTask = Box<dyn FnOnce(Result<&mut dyn Link, LinkError>) + Send>;

/// Opens a new link to one of a connection's endpoints, given by its index in the list. It
/// runs on a thread of its own, since opening may resolve a host name.
pub(crate) type Opener = Arc<dyn Fn(usize) -> io::Result<Box<dyn Link>> + Send + Sync>;

/// How a connection gets a link after its first: its endpoints, how to open a link to one,
/// and its reconnect policy if it has one.
///
/// A first link that fails to come up is followed by one to the next endpoint, at once, until
/// every endpoint has been tried. Once a link was up, only a policy replaces a lost one:
/// attempts go round the list, from the endpoint after the lost link's, and the policy's
/// delay comes before each pass over the list.
pub(crate) struct Dial {
    pub(crate) open: Opener,
    /// The endpoints' URLs, with credentials masked, for the log.
    pub(crate) urls: Vec<String>,
    pub(crate) policy: Option<Reconnect>,
    /// The endpoint of the first link.
    pub(crate) current: usize,
    /// Endpoints the first link may still try after `current`.
    pub(crate) untried: usize,
}

impl fmt::Debug for Dial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dial")
            .field("urls", &self.urls)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A new link opened for a connection, or why it could not be: `(connection, attempt, link)`.
type Opened = (Arc<ConnShared>, u64, io::Result<Box<dyn Link>>);

/// A connection to start hosting: its first link, and how to get the next.
type Attach = (Arc<ConnShared>, Box<dyn Link>, Dial);

/// Requests for the driver thread, handed over under one short lock.
#[derive(Debug)]
struct Inbox {
    /// Connections that want attention.
    notified: Vec<usize>,
    /// When to look at which connection, earliest first. Stale entries are harmless.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Connections to start hosting.
    attach: Vec<Attach>,
    /// Links opened to replace lost ones.
    opened: Vec<Opened>,
    /// Link calls, with the connection they are for.
    calls: Vec<(Arc<ConnShared>, Tasks)>,
    /// Ids of connections that ended, free for reuse.
    free_ids: Vec<usize>,
    next_id: usize,
    sleep: Sleep,
}

/// The part of a driver that producers and links reach.
#[derive(Debug)]
pub(crate) struct DriverShared {
    inbox: Mutex<Inbox>,
    waker: mio::Waker,
    /// Connections hosted or about to be, for an [`IoGroup`] to balance on.
    hosted: AtomicUsize,
}

impl DriverShared {
    /// Asks the driver to look at connection `id`.
    pub(crate) fn notify(&self, id: usize) {
        let mut inbox = lock(&self.inbox);
        inbox.notified.push(id);
        self.wake_if_asleep(&mut inbox);
    }

    /// Asks the driver to look at connection `id` at `at`.
    pub(crate) fn add_timer(&self, at: Instant, id: usize) {
        let mut inbox = lock(&self.inbox);
        inbox.timers.push(Reverse((at, id)));
        if matches!(inbox.sleep, Sleep::Until(until) if at < until) || inbox.sleep == Sleep::Forever
        {
            self.wake_if_asleep(&mut inbox);
        }
    }

    fn wake_if_asleep(&self, inbox: &mut Inbox) {
        if inbox.sleep != Sleep::Awake {
            inbox.sleep = Sleep::Awake;
            if let Err(e) = self.waker.wake() {
                log::error!("could not wake the I/O driver: {e}");
            }
        }
    }

    /// Takes an id for a new connection.
    pub(crate) fn reserve_id(&self) -> usize {
        self.hosted.fetch_add(1, Ordering::Relaxed);
        let mut inbox = lock(&self.inbox);
        inbox.free_ids.pop().unwrap_or_else(|| {
            inbox.next_id += 1;
            inbox.next_id - 1
        })
    }

    /// Queues `task` to run with `conn`'s link on the driver thread. If the connection ends
    /// first, the task runs with the reason.
    pub(crate) fn call(&self, conn: Arc<ConnShared>, task: LinkTask) {
        let mut inbox = lock(&self.inbox);
        inbox.calls.push((conn, Tasks(vec![task])));
        self.wake_if_asleep(&mut inbox);
    }

    /// Hands a connection and its first link to the driver thread, with how to get the next.
    pub(crate) fn attach(&self, conn: Arc<ConnShared>, link: Box<dyn Link>, dial: Dial) {
        let mut inbox = lock(&self.inbox);
        inbox.attach.push((conn, link, dial));
        self.wake_if_asleep(&mut inbox);
    }

    /// Hands the outcome of a reconnect attempt to the driver thread.
    fn reopened(&self, opened: Opened) {
        let mut inbox = lock(&self.inbox);
        inbox.opened.push(opened);
        self.wake_if_asleep(&mut inbox);
    }
}

impl Notify for DriverShared {
    fn notify(&self, id: usize) {
        Self::notify(self, id);
    }

    fn add_timer(&self, at: Instant, id: usize) {
        Self::add_timer(self, at, id);
    }
}

/// Queued link calls; closures have no `Debug`, so this shows their number.
#[derive(Default)]
pub(crate) struct Tasks(Vec<LinkTask>);

impl fmt::Debug for Tasks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} link calls", self.0.len())
    }
}

impl Tasks {
    /// Runs every task with the reason there is no link.
    fn fail(self, gone: &LinkError) {
        for task in self.0 {
            task(Err(gone.clone()));
        }
    }
}

/// A handle to a driver thread. The thread ends once no handle is left and every connection it
/// hosts has ended.
#[derive(Debug, Clone)]
pub(crate) struct Driver {
    shared: Arc<DriverShared>,
}

impl Driver {
    /// Starts a driver thread.
    pub(crate) fn spawn() -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        let shared = Arc::new(DriverShared {
            inbox: Mutex::new(Inbox {
                notified: Vec::new(),
                timers: BinaryHeap::new(),
                attach: Vec::new(),
                opened: Vec::new(),
                calls: Vec::new(),
                free_ids: Vec::new(),
                next_id: 0,
                sleep: Sleep::Awake,
            }),
            waker,
            hosted: AtomicUsize::new(0),
        });
        let thread_shared = shared.clone();
        thread::Builder::new()
            .name("tidegate-io".into())
            .spawn(move || Loop::new(thread_shared, poll).run())?;
        Ok(Self { shared })
    }

    pub(crate) fn shared(&self) -> &Arc<DriverShared> {
        &self.shared
    }

    /// Connections the thread hosts or is about to.
    pub(crate) fn hosted(&self) -> usize {
        self.shared.hosted.load(Ordering::Relaxed)
    }
}

/// A connection as the driver thread holds it.
#[derive(Debug)]
struct Entry {
    conn: Arc<ConnShared>,
    /// `None` while a lost or failed link is being replaced.
    link: Option<Box<dyn Link>>,
    /// How the next link is got, and where the connection is in getting it.
    dial: Dialing,
    /// Chunks taken from the buffer and not yet fully written, oldest first.
    in_flight: VecDeque<Bytes>,
    /// Bytes of `in_flight[0]` already written.
    offset: usize,
    /// Bytes offered by the last write, if it returned `WouldBlock`: the next write must offer
    /// the same bytes again, and no fewer (the link's retry contract, see [`Link`]).
    retry: Option<usize>,
    /// The phase of the connection, as of the last write turn.
    phase: Phase,
    /// Whether the write side was ended (after the last byte).
    write_ended: bool,
    /// Whether the peer's end of stream was read.
    read_ended: bool,
    /// Whether the link is up: connected, and its handshake done.
    connected: bool,
    connect_deadline: Option<Instant>,
    /// The handshake under way on a link that connected, with a handshake hook.
    greeting: Option<Greeting>,
    /// Bytes the peer sent after the handshake's answer, for the inbound buffer before any
    /// read from the link.
    early: Option<Bytes>,
    /// Since when bytes wait that the link takes none of (its last write would block).
    stalled_since: Option<Instant>,
    /// When the link last brought bytes from the peer (or came up).
    heard_at: Instant,
    /// When the link last took bytes (or came up).
    sent_at: Instant,
    /// The earliest timer pushed for this connection and not yet fired.
    armed: Option<Instant>,
    /// The earliest deadline of the connection's state, as of the last service.
    next_timer: Option<Instant>,
    /// Link calls to run at the next service.
    calls: Tasks,
    /// Set once the connection is over, with the cause if it was not an orderly close. The
    /// loop then drops the link and records the end in the state, in that order.
    ending: Option<Option<Disconnect>>,
    /// What `tracing` and `metrics` are told, with those features.
    observer: Observer,
    /// Acknowledgements on the link that is up, if its frames are kept until acknowledged.
    acks: Option<Acks>,
    /// Bytes the handshake hook's hello took on the link: the peer's count of acknowledged
    /// bytes includes them, the connection's count of written bytes does not.
    hello_bytes: u64,
}

/// How the driver follows what the peer of a link that keeps written frames acknowledges.
#[derive(Debug)]
struct Acks {
    /// Chunks the link took whole since the state last got them.
    done: Vec<Bytes>,
    /// Bytes kept, as of the last look.
    awaiting: usize,
    /// When to look next, while bytes are kept.
    due: Option<Instant>,
    /// The wait before the next look that finds nothing new.
    interval: Duration,
}

impl Acks {
    /// Releases the kept frames `acked` covers (`offset`: how much of the chunk in flight is
    /// written), and sets the wait before the next look.
    fn release(&mut self, acked: u64, offset: usize, state: &mut State, fx: &mut Effects) {
        let released = state.acked(acked, offset, fx);
        self.awaiting = state.buffer().kept();
        self.interval =
            if released > 0 { ACK_POLL_MIN } else { (self.interval * 2).min(ACK_POLL_MAX) };
    }
}

/// A handshake under way on a link that has just connected (see [`Handshake`]).
#[derive(Debug)]
struct Greeting {
    /// Hello frames not yet written, with their headers; the first has `offset` bytes written.
    hello: VecDeque<Bytes>,
    offset: usize,
    /// What the peer has sent on the link so far.
    heard: Vec<u8>,
    deadline: Instant,
}

impl Greeting {
    fn new(hook: &dyn Handshake, encoder: Option<&dyn Encoder>, now: Instant) -> Self {
        let mut hello = VecDeque::new();
        for frame in hook.hello() {
            match encoder.map(|e| Header::encode(e, frame.len())) {
                Some(Ok(header)) => {
                    let mut framed = Vec::with_capacity(header.as_slice().len() + frame.len());
                    framed.extend_from_slice(header.as_slice());
                    framed.extend_from_slice(&frame);
                    hello.push_back(Bytes::from(framed));
                }
                // A frame the framing refuses goes as it is; the peer's answer will tell.
                Some(Err(_)) | None => hello.push_back(frame),
            }
        }
        hello.retain(|frame| !frame.is_empty());
        Self { hello, offset: 0, heard: Vec::new(), deadline: now + hook.timeout() }
    }
}

/// Where a connection is in getting its links (see [`Dial`]).
#[derive(Debug)]
struct Dialing {
    dial: Dial,
    backoff: Backoff,
    /// When the current link came up, while it is up.
    up_since: Option<Instant>,
    /// When the next attempt starts, while one waits.
    next_attempt: Option<Instant>,
    /// The number of the attempt under way (its link opening on a thread, or connecting);
    /// links opened for another number are stale.
    attempt: u64,
    /// The endpoint of the link under way or up, or of the attempt due.
    current: usize,
    /// Endpoints left in the pass under way, after `current`: the next attempt goes to the
    /// next one at once. At zero, the next attempt starts a pass, after the backoff delay.
    untried: usize,
    /// Whether an attempt's link is being opened on a thread now.
    opening: bool,
    /// Why the link was lost, then why the last attempt failed.
    cause: Option<Disconnect>,
    /// The next attempt waits for an event subscriber to read (see `state::events`).
    held: bool,
}

/// Whether a failure will not go away by trying again: a certificate refused, or a transport
/// saying so.
fn permanent(cause: &Disconnect) -> bool {
    if let Some(tls) = cause.tls_error() {
        return !matches!(tls.kind(), TlsErrorKind::HandshakeTimeout | TlsErrorKind::Other);
    }
    cause.io_error().is_some_and(|e| {
        matches!(e.kind(), io::ErrorKind::PermissionDenied | io::ErrorKind::InvalidInput)
    })
}

/// What a connection needs after being serviced.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Nothing until an event, a notification or a timer.
    Wait,
    /// More work is ready now (it yielded to other connections).
    Again,
    /// The connection ended; remove it.
    Done,
    /// The link was lost, or the attempt to replace it failed: reconnect (the cause is in
    /// the entry).
    Lost,
}

struct Loop {
    shared: Arc<DriverShared>,
    poll: Poll,
    entries: Vec<Option<Entry>>,
}

impl Loop {
    fn new(shared: Arc<DriverShared>, poll: Poll) -> Self {
        Self { shared, poll, entries: Vec::new() }
    }

    fn run(mut self) {
        ON_DRIVER.with(|on| on.set(true));
        log::debug!("I/O driver started");
        let mut events = Events::with_capacity(256);
        let mut ready: Vec<usize> = Vec::new();
        let mut again: Vec<usize> = Vec::new();
        loop {
            let now = Instant::now();
            let attach = {
                let mut inbox = lock(&self.shared.inbox);
                ready.append(&mut inbox.notified);
                while let Some(Reverse((at, id))) = inbox.timers.peek().copied() {
                    if at > now {
                        break;
                    }
                    inbox.timers.pop();
                    ready.push(id);
                }
                (
                    std::mem::take(&mut inbox.attach),
                    std::mem::take(&mut inbox.calls),
                    std::mem::take(&mut inbox.opened),
                )
            };
            let (attach, calls, opened) = attach;
            for (conn, link, dial) in attach {
                let id = conn.id();
                self.attach(conn, link, dial);
                ready.push(id);
            }
            for (conn, attempt, link) in opened {
                let id = conn.id();
                self.reattach(&conn, attempt, link);
                ready.push(id);
            }
            for (conn, tasks) in calls {
                let id = conn.id();
                self.route(&conn, tasks);
                ready.push(id);
            }
            ready.append(&mut again);
            ready.sort_unstable();
            ready.dedup();
            for id in ready.drain(..) {
                match self.service(id) {
                    // A lost link was dealt with inside `service`.
                    Next::Wait | Next::Lost => {}
                    Next::Again => again.push(id),
                    Next::Done => self.detach(id),
                }
            }

            // Decide how long to sleep, under the inbox lock so no request is missed.
            let timeout = {
                let mut inbox = lock(&self.shared.inbox);
                if !inbox.notified.is_empty()
                    || !inbox.attach.is_empty()
                    || !inbox.opened.is_empty()
                    || !inbox.calls.is_empty()
                    || !again.is_empty()
                {
                    Some(Duration::ZERO)
                } else if self.entries.iter().all(Option::is_none)
                    && Arc::strong_count(&self.shared) == 1
                {
                    break;
                } else {
                    let next = inbox.timers.peek().map(|Reverse((at, _))| *at);
                    inbox.sleep = next.map_or(Sleep::Forever, Sleep::Until);
                    next.map(|at| at.saturating_duration_since(Instant::now()))
                }
            };
            if let Err(e) = self.poll.poll(&mut events, timeout)
                && e.kind() != io::ErrorKind::Interrupted
            {
                log::error!("the I/O driver's poll failed: {e}");
            }
            lock(&self.shared.inbox).sleep = Sleep::Awake;
            for event in &events {
                if event.token() != WAKER {
                    ready.push(event.token().0);
                }
            }
        }
        log::debug!("I/O driver stopped");
    }

    fn register(&self, id: usize, link: &mut Box<dyn Link>) -> io::Result<()> {
        let waker = LinkWaker::new(Arc::downgrade(&self.shared) as Weak<dyn Notify>, id);
        link.register(&Registration::new(self.poll.registry(), Token(id), waker))
    }

    fn attach(&mut self, conn: Arc<ConnShared>, mut link: Box<dyn Link>, dial: Dial) {
        let id = conn.id();
        let connect_deadline = conn.settings().connect_timeout.map(|t| Instant::now() + t);
        if self.entries.len() <= id {
            self.entries.resize_with(id + 1, || None);
        }
        let registered = self.register(id, &mut link);
        let observer = Observer::new(&conn);
        let dial = Dialing {
            current: dial.current,
            untried: dial.untried,
            dial,
            backoff: Backoff::new(),
            up_since: None,
            next_attempt: None,
            attempt: 0,
            opening: false,
            cause: None,
            held: false,
        };
        let mut entry = Entry {
            conn,
            link: Some(link),
            dial,
            in_flight: VecDeque::new(),
            offset: 0,
            retry: None,
            phase: Phase::Connecting,
            write_ended: false,
            read_ended: false,
            connected: false,
            connect_deadline,
            greeting: None,
            early: None,
            stalled_since: None,
            heard_at: Instant::now(),
            sent_at: Instant::now(),
            armed: None,
            next_timer: None,
            calls: Tasks::default(),
            ending: None,
            observer,
            acks: None,
            hello_bytes: 0,
        };
        if let Err(e) = registered {
            log::debug!("could not register a link: {e}");
            entry.finish(Some(Disconnect::with_io(DisconnectKind::ConnectFailed, e)));
        }
        if let Some(at) = connect_deadline {
            self.arm(&mut entry, at);
        }
        self.entries[id] = Some(entry);
    }

    /// Takes the link a reconnect attempt opened, if the connection still waits for it.
    fn reattach(
        &mut self,
        conn: &Arc<ConnShared>,
        attempt: u64,
        opened: io::Result<Box<dyn Link>>,
    ) {
        let id = conn.id();
        let Some(mut entry) = self.entries.get_mut(id).and_then(Option::take) else {
            return;
        };
        let current = Arc::ptr_eq(&entry.conn, conn)
            && entry.ending.is_none()
            && entry.link.is_none()
            && entry.dial.opening
            && entry.dial.attempt == attempt;
        if current {
            let opened = opened.and_then(|mut link| self.register(id, &mut link).map(|()| link));
            entry.dial.opening = false;
            let url = &entry.dial.dial.urls[entry.dial.current];
            match opened {
                Ok(link) => {
                    log::debug!("attempt {attempt} to {url}: connecting");
                    entry.link = Some(link);
                    entry.connect_deadline =
                        conn.settings().connect_timeout.map(|t| Instant::now() + t);
                    if let Some(at) = entry.connect_deadline {
                        self.arm(&mut entry, at);
                    }
                }
                Err(e) => {
                    log::debug!("attempt {attempt} to {url} failed: {e}");
                    let cause = Disconnect::with_io(DisconnectKind::ConnectFailed, e);
                    entry.attempt_failed(cause);
                }
            }
        }
        if let Some(at) = entry.next_deadline() {
            self.arm(&mut entry, at);
        }
        self.entries[id] = Some(entry);
    }

    /// The entry's link was lost, or the attempt to replace it failed: drops the link, gives
    /// the lost link's frames their fates, and schedules the next attempt (or gives up).
    fn relink(&mut self, entry: &mut Entry) {
        // Asked before the link goes: what its peer acknowledged tells the frames' fates.
        let acked = entry.link.as_ref().filter(|_| entry.connected).and_then(|l| l.bytes_acked());
        let acked = acked.map(|acked| acked.saturating_sub(entry.hello_bytes));
        if let Some(mut link) = entry.link.take()
            && let Err(e) = link.deregister(self.poll.registry())
        {
            log::debug!("could not deregister a link: {e}");
        }
        let now = Instant::now();
        if entry.connected {
            entry.link_lost(now, acked);
        }
        entry.connected = false;
        entry.acks = None;
        entry.hello_bytes = 0;
        entry.connect_deadline = None;
        entry.greeting = None;
        entry.early = None;
        entry.stalled_since = None;
        if entry.ending.is_none() {
            entry.schedule_attempt(now);
        }
    }

    /// Starts the attempt whose time has come, on a thread of its own. The clock is read only
    /// while an attempt waits.
    fn start_attempt(&self, entry: &mut Entry) {
        let dial = &mut entry.dial;
        if entry.ending.is_some()
            || entry.link.is_some()
            || dial.opening
            || dial.next_attempt.is_none_or(|at| at > Instant::now())
        {
            return;
        }
        dial.next_attempt = None;
        dial.opening = true;
        dial.attempt += 1;
        let (attempt, endpoint) = (dial.attempt, dial.current);
        entry.conn.lock().reconnect_attempt();
        log::debug!("connecting to {} (attempt {attempt})", dial.dial.urls[endpoint]);
        let open = dial.dial.open.clone();
        let conn = entry.conn.clone();
        let shared = self.shared.clone();
        let spawned = thread::Builder::new().name("tidegate-connect".into()).spawn(move || {
            let link = open(endpoint);
            shared.reopened((conn, attempt, link));
        });
        if let Err(e) = spawned {
            log::debug!("could not start a connect attempt: {e}");
            entry.dial.opening = false;
            entry.attempt_failed(Disconnect::with_io(DisconnectKind::ConnectFailed, e));
        }
    }

    /// Hands link calls to the connection they are for, or fails them if it has left.
    fn route(&mut self, conn: &Arc<ConnShared>, mut tasks: Tasks) {
        let hosted = self.entries.get_mut(conn.id()).and_then(Option::as_mut);
        match hosted {
            Some(entry) if Arc::ptr_eq(&entry.conn, conn) => entry.calls.0.append(&mut tasks.0),
            _ => tasks.fail(&conn.lock().link_error().unwrap_or(LinkError::Closed)),
        }
    }

    /// Drops a connection's link, then records the end in its state and wakes everyone, so
    /// that a close resolves only once the link is gone.
    fn detach(&mut self, id: usize) {
        let Some(mut entry) = self.entries[id].take() else {
            return;
        };
        if let Some(link) = &mut entry.link
            && let Err(e) = link.deregister(self.poll.registry())
        {
            log::debug!("could not deregister a link: {e}");
        }
        let Entry { conn, link, mut in_flight, offset, ending, calls, mut observer, .. } = entry;
        drop(link);
        lock(&self.shared.inbox).free_ids.push(id);
        self.shared.hosted.fetch_sub(1, Ordering::Relaxed);
        let mut fx = Effects::new(Instant::now);
        let cause = ending.flatten();
        // Told before the end is recorded, which is what lets a close return: once it has
        // returned, the end has been reported. The link is gone, so the counters are final.
        observer.ended(&conn, cause.as_ref());
        let discarded = conn.inbound().stats().discarded;
        let mut state = conn.lock();
        state.set_inbound_discarded(discarded);
        state.finish(cause.clone(), &mut in_flight, offset, &mut fx);
        let gone = state.link_error();
        drop(state);
        // What was read stays readable; receivers get the end after it.
        conn.inbound().finish(cause, &mut fx);
        fx.wake_all();
        calls.fail(&gone.unwrap_or(LinkError::Closed));
        log::debug!("connection {id} left the driver");
    }

    fn arm(&self, entry: &mut Entry, at: Instant) {
        if entry.armed.is_none_or(|armed| at < armed || armed <= Instant::now()) {
            entry.armed = Some(at);
            lock(&self.shared.inbox).timers.push(Reverse((at, entry.conn.id())));
        }
    }

    fn service(&mut self, id: usize) -> Next {
        let Some(mut entry) = self.entries.get_mut(id).and_then(Option::take) else {
            return Next::Wait;
        };
        // Seen before and after: a turn that lets every waiter in shows both edges.
        entry.observer.serviced(&entry.conn);
        let mut next = entry.service();
        if next == Next::Lost {
            self.relink(&mut entry);
            next = if entry.ending.is_some() { Next::Done } else { Next::Wait };
        }
        entry.resume_held();
        self.start_attempt(&mut entry);
        if entry.ending.is_some() {
            next = Next::Done;
        }
        if next != Next::Done {
            entry.observer.serviced(&entry.conn);
        }
        if let Some(at) = entry.next_deadline() {
            self.arm(&mut entry, at);
        }
        self.entries[id] = Some(entry);
        next
    }
}

impl Entry {
    fn service(&mut self) -> Next {
        if self.ending.is_some() {
            return Next::Done;
        }
        let now = Instant::now();
        let Some(link) = &mut self.link else {
            // Between a lost link and the next: deadlines still fire, and an ending ends.
            return self.expire_and_close(now);
        };
        if !self.connected {
            // Once connected, a link with a handshake hook is not asked again.
            let connected = if self.greeting.is_some() { Ok(true) } else { link.poll_connect() };
            match connected {
                Ok(true) => match self.greet(now) {
                    Ok(true) => self.up(now),
                    // The connect timeout covers the handshake too.
                    Ok(false) if self.connect_deadline.is_some_and(|d| d <= now) => {
                        return self.fail(Disconnect::new(DisconnectKind::ConnectTimedOut));
                    }
                    Ok(false) => return self.expire_and_close(now),
                    Err(cause) => {
                        log::debug!("handshake with {} failed: {cause}", self.conn.url());
                        return self.fail(cause);
                    }
                },
                Ok(false) => {
                    if self.connect_deadline.is_some_and(|d| d <= now) {
                        return self.fail(Disconnect::new(DisconnectKind::ConnectTimedOut));
                    }
                    return self.expire_and_close(now);
                }
                Err(e) => {
                    log::debug!("could not connect to {}: {e}", self.conn.url());
                    return self.fail(Disconnect::with_io(DisconnectKind::ConnectFailed, e));
                }
            }
        }
        // Outgoing data first: the driver drains before it reads.
        let mut next = match self.write(now) {
            Ok(next) => next,
            Err(cause) => return self.write_failed(cause),
        };
        if self.heartbeat(now) {
            next = match self.write(now) {
                Ok(next) => next,
                Err(cause) => return self.write_failed(cause),
            };
        }
        let next = match self.read(self.conn.settings().write_bias, now) {
            Ok(Read::Budget) => Next::Again,
            // With reconnection, the peer ending its side ends the link: it is replaced.
            Ok(Read::Eof) if self.may_relink() => {
                return self.fail(Disconnect::new(DisconnectKind::PeerClosed));
            }
            Ok(Read::Eof) => {
                self.peer_ended(None);
                next
            }
            Ok(Read::Drained | Read::Full) => next,
            Err(cause) => return self.fail(cause),
        };
        if let Some(cause) = self.unresponsive(now) {
            log::debug!("{}: {cause}", self.conn.url());
            return self.fail(cause);
        }
        match self.expire_and_close(now) {
            Next::Wait => next,
            other => other,
        }
    }

    /// Queues the heartbeat frame, urgent, if the link is idle and took nothing for the
    /// heartbeat's interval. Returns whether it did.
    fn heartbeat(&mut self, now: Instant) -> bool {
        let Some((interval, frame)) = &self.conn.settings().heartbeat else { return false };
        if !self.in_flight.is_empty() || now < self.sent_at + *interval {
            return false;
        }
        // Once per interval, whether or not it fits now.
        self.sent_at = now;
        match self.conn.try_send(frame.clone(), true) {
            Ok(()) => true,
            Err(err) => {
                log::debug!("{}: no heartbeat this time: {err}", self.conn.url());
                false
            }
        }
    }

    /// The liveness timeout the link has run past, if any: bytes waited and the link took
    /// none for the write-stall timeout, or nothing arrived for the inbound-silence timeout.
    fn unresponsive(&self, now: Instant) -> Option<Disconnect> {
        let settings = self.conn.settings();
        if let (Some(timeout), Some(since)) = (settings.write_stall_timeout, self.stalled_since)
            && now >= since + timeout
        {
            return Some(Disconnect::new(DisconnectKind::WriteStalled));
        }
        if let Some(timeout) = settings.inbound_silence_timeout
            && now >= self.heard_at + timeout
        {
            return Some(Disconnect::new(DisconnectKind::PeerSilent));
        }
        None
    }

    /// When a liveness setting next needs a look, while the link is up.
    fn liveness_deadline(&self) -> Option<Instant> {
        if !self.connected {
            return None;
        }
        let settings = self.conn.settings();
        let stall = settings.write_stall_timeout.zip(self.stalled_since).map(|(t, s)| s + t);
        let silence = settings.inbound_silence_timeout.map(|t| self.heard_at + t);
        // A heartbeat is due on an idle link only: while bytes wait, the link's readiness
        // brings the next turn, and a deadline already passed would keep the loop turning.
        let idle = self.in_flight.is_empty();
        let heartbeat =
            settings.heartbeat.as_ref().filter(|_| idle).map(|(i, _)| self.sent_at + *i);
        [stall, silence, heartbeat].into_iter().flatten().min()
    }

    /// The link is up: connected, and its handshake done.
    fn up(&mut self, now: Instant) {
        self.heard_at = now;
        self.sent_at = now;
        self.stalled_since = None;
        self.connected = true;
        let dial = &mut self.dial;
        log::debug!("connected to {}", dial.dial.urls[dial.current]);
        self.observer.connected();
        dial.up_since = Some(now);
        dial.cause = None;
        dial.untried = 0;
        let attempt = dial.backoff.attempts();
        let mut fx = Effects::new(Instant::now);
        // Written frames are kept until acknowledged only where the link can tell.
        let counts = self.link.as_ref().is_some_and(|link| link.bytes_acked().is_some());
        let mut state = self.conn.lock();
        if !state.was_opened() {
            dial.backoff.restart();
        }
        let keeping = counts && state.wants_keeping();
        state.buffer().set_keeping(keeping);
        self.acks = keeping.then(|| Acks {
            done: Vec::new(),
            awaiting: 0,
            due: None,
            interval: ACK_POLL_MIN,
        });
        state.opened(attempt, dial.current, &mut fx);
        drop(state);
        fx.wake_all();
    }

    /// Runs the handshake hook on a link that has connected: writes its hello frames, then
    /// reads until the hook accepts the answer. `Ok(true)` once done (at once without a hook),
    /// `Ok(false)` while the link would block.
    ///
    /// # Errors
    ///
    /// The hook refused the answer, it did not come in time, or the link failed.
    fn greet(&mut self, now: Instant) -> Result<bool, Disconnect> {
        let Some(hook) = self.conn.settings().handshake.clone() else { return Ok(true) };
        let Some(link) = self.link.as_mut() else { return Ok(false) };
        let encoder = self.conn.settings().encoder.clone();
        let greeting =
            self.greeting.get_or_insert_with(|| Greeting::new(&*hook, encoder.as_deref(), now));
        let failed = |error: io::Error| Disconnect::with_io(DisconnectKind::HandshakeFailed, error);
        if greeting.deadline <= now {
            return Err(failed(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {:?}", hook.timeout()),
            )));
        }
        while let Some(frame) = greeting.hello.front() {
            match link.write_vectored(&[IoSlice::new(&frame[greeting.offset..])]) {
                Ok(0) => return Err(Disconnect::from_io(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.hello_bytes += n as u64;
                    greeting.offset += n;
                    if greeting.offset == frame.len() {
                        greeting.hello.pop_front();
                        greeting.offset = 0;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Disconnect::from_io(e)),
            }
        }
        let limit = self.conn.settings().inbound_capacity;
        let mut buf = [0u8; 4096];
        for _ in 0..MAX_GREETING_READS {
            match hook.answer(&greeting.heard) {
                Ok(Some(n)) => {
                    let rest = greeting.heard.split_off(n.min(greeting.heard.len()));
                    self.early = (!rest.is_empty()).then(|| Bytes::from(rest));
                    self.greeting = None;
                    return Ok(true);
                }
                Ok(None) => {}
                Err(e) => return Err(failed(e)),
            }
            if greeting.heard.len() >= limit {
                let long = format!("no answer in the first {limit} bytes (the inbound capacity)");
                return Err(failed(io::Error::new(io::ErrorKind::InvalidData, long)));
            }
            let want = buf.len().min(limit - greeting.heard.len());
            match link.read(&mut buf[..want]) {
                Ok(0) => return Err(Disconnect::new(DisconnectKind::PeerClosed)),
                Ok(n) => greeting.heard.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Disconnect::from_io(e)),
            }
        }
        // Read enough for one turn; the rest at the next.
        Ok(false)
    }

    /// A write failed: tells an orderly end from a reset, and ends the connection.
    fn write_failed(&mut self, cause: Disconnect) -> Next {
        // A write fails with a broken pipe after the peer closed its side in order; a read
        // tells that from a reset. After a reset the write took the socket's error, so a read
        // then sees what looks like an end of stream and is not one: the receive side must end
        // with the reset, so the probe's end of stream is recorded only if it is the cause.
        let broken_pipe = cause.io_error().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe);
        let eof = self.read_ended
            || matches!(
                self.read(self.conn.settings().inbound_capacity, Instant::now()),
                Ok(Read::Eof)
            );
        if broken_pipe && eof {
            let closed = Disconnect::new(DisconnectKind::PeerClosed);
            if self.may_relink() {
                return self.fail(closed);
            }
            if !self.read_ended {
                self.peer_ended(Some(closed.clone()));
            }
            return self.finish(Some(closed));
        }
        self.fail(cause)
    }

    /// Whether a failure now would be met with a new link: the connection is not ending, and
    /// either a link was up and reconnection is on, or the first link has endpoints left to
    /// try.
    fn may_relink(&self) -> bool {
        // The phase as of now: a close may have begun since the last write turn.
        let state = self.conn.lock();
        matches!(state.phase(), Phase::Open | Phase::Connecting)
            && if state.was_opened() {
                self.dial.dial.policy.is_some()
            } else {
                self.dial.untried > 0
            }
    }

    /// The link failed, or the attempt to open it did: the connection gets a new link if it
    /// may and the failure is not permanent, and ends otherwise.
    fn fail(&mut self, cause: Disconnect) -> Next {
        if !self.may_relink() {
            return self.finish(Some(cause));
        }
        if permanent(&cause) {
            return self.stop(cause);
        }
        log::debug!("{}: link lost: {cause}", self.dial.dial.urls[self.dial.current]);
        self.dial.cause = Some(cause);
        Next::Lost
    }

    /// Ends the connection on a failure that trying again cannot mend: with a `GaveUp` once a
    /// link was up, as the end of the first link's attempts otherwise.
    fn stop(&mut self, cause: Disconnect) -> Next {
        log::warn!("{}: not trying again: {cause}", self.dial.dial.urls[self.dial.current]);
        if self.conn.lock().was_opened() {
            self.give_up(cause);
            return Next::Done;
        }
        self.finish(Some(cause))
    }

    /// Records the loss of the link that was up: the frames' fates, and a fresh start for the
    /// receive side and the write bookkeeping.
    fn link_lost(&mut self, now: Instant, acked: Option<u64>) {
        let dial = &mut self.dial;
        let Some(policy) = &dial.dial.policy else { return };
        let cause = dial.cause.clone().unwrap_or_else(|| Disconnect::new(DisconnectKind::Io));
        if let Some(since) = dial.up_since.take() {
            dial.backoff.link_was_up(policy, now.saturating_duration_since(since));
        }
        let mut fx = Effects::at(now);
        let encoder = self.conn.settings().encoder.clone();
        let lost = self.conn.lock().link_lost(
            cause.clone(),
            &mut self.in_flight,
            self.offset,
            encoder.as_deref(),
            acked,
            &mut fx,
        );
        let Some(lost) = lost else {
            // A close began meanwhile: it ends with the link.
            self.finish(Some(cause));
            return;
        };
        self.conn.inbound().relink();
        fx.wake_all();
        let possibly = lost.possibly.count();
        if possibly > 0 {
            log::warn!(
                "{}: link lost ({cause}); {possibly} frames possibly delivered, {} sent again",
                self.conn.url(),
                lost.replayed
            );
        } else {
            log::info!(
                "{}: link lost ({cause}); {} frames sent again",
                self.conn.url(),
                lost.replayed
            );
        }
        self.in_flight.clear();
        self.offset = 0;
        self.retry = None;
        self.write_ended = false;
        self.read_ended = false;
        self.phase = Phase::Connecting;
    }

    /// The attempt under way failed with `cause`: tries again after the next delay, or gives
    /// up.
    fn attempt_failed(&mut self, cause: Disconnect) {
        if permanent(&cause) {
            self.stop(cause);
            return;
        }
        self.dial.cause = Some(cause);
        self.schedule_attempt(Instant::now());
    }

    /// Sets the time and the endpoint of the next attempt: the next endpoint at once within a
    /// pass, else the next pass after the policy's delay. Gives up if the policy says so, and
    /// ends the connection if a first link has no endpoint left. While an event subscriber
    /// lacks room for what the attempt would bring, the attempt is held back; the subscriber's
    /// read that makes room asks for a service, which comes back here.
    fn schedule_attempt(&mut self, now: Instant) {
        let dial = &mut self.dial;
        let cause = || dial.cause.clone().unwrap_or_else(|| Disconnect::new(DisconnectKind::Io));
        let mut state = self.conn.lock();
        let policy = dial.dial.policy.as_ref().filter(|_| state.was_opened());
        if policy.is_none() && dial.untried == 0 {
            // The first link tried every endpoint.
            drop(state);
            let cause = cause();
            self.finish(Some(cause));
            return;
        }
        dial.held = !state.events().has_room();
        if dial.held {
            log::debug!("{}: next connect attempt waits for an event reader", self.conn.url());
            return;
        }
        let outage = state.outage_since().map_or(Duration::ZERO, |since| now - since);
        if let Some(policy) = policy
            && policy.gives_up(dial.backoff.attempts(), outage)
        {
            drop(state);
            let cause = cause();
            log::warn!(
                "{}: gave up reconnecting after {} attempts: {cause}",
                self.conn.url(),
                dial.backoff.attempts()
            );
            self.give_up(cause);
            return;
        }
        let (attempt, delay) = match policy {
            Some(policy) if dial.untried == 0 => {
                dial.untried = dial.dial.urls.len();
                dial.backoff.next(policy)
            }
            _ => (dial.backoff.next_endpoint(), Duration::ZERO),
        };
        dial.untried -= 1;
        dial.current = (dial.current + 1) % dial.dial.urls.len();
        log::debug!("attempt {attempt} to {} in {delay:?}", dial.dial.urls[dial.current]);
        dial.next_attempt = Some(now + delay);
        let mut fx = Effects::at(now);
        state.reconnecting(attempt, delay, dial.current, &mut fx);
        drop(state);
        fx.wake_all();
    }

    /// An attempt held back for an event reader is scheduled, once there is room.
    fn resume_held(&mut self) {
        if self.dial.held && self.ending.is_none() {
            self.schedule_attempt(Instant::now());
        }
    }

    /// Reconnection stops for `cause`: subscribers are told, and the connection ends.
    fn give_up(&mut self, cause: Disconnect) {
        let mut fx = Effects::new(Instant::now);
        self.conn.lock().gave_up(cause.clone(), &mut fx);
        fx.wake_all();
        self.finish(Some(cause));
    }

    /// The peer ended its side in order: the receive side ends (receivers get what arrived,
    /// then the end), and sending goes on until a write fails (a half-close).
    fn peer_ended(&mut self, cause: Option<Disconnect>) {
        self.read_ended = true;
        log::debug!("{} ended its side of the connection", self.conn.url());
        let mut fx = Effects::new(Instant::now);
        let eof = cause.unwrap_or_else(|| Disconnect::new(DisconnectKind::PeerClosed));
        self.conn.inbound().finish(Some(eof), &mut fx);
        self.conn.lock().peer_ended();
        fx.wake_all();
    }

    /// Fires passed deadlines, runs queued link calls, and carries an ending connection
    /// through its close: drained, then the write side ended, then the peer's end of stream
    /// (or the close deadline), and only then the link dropped.
    fn expire_and_close(&mut self, now: Instant) -> Next {
        let mut fx = Effects::at(now);
        let mut state = self.conn.lock();
        let next_send = state.expire(now, &mut fx);
        let phase = state.phase();
        let drained = state.drained();
        let overdue = state.close_deadline().is_some_and(|d| d <= now);
        drop(state);
        self.phase = phase;
        let next_recv = self.conn.inbound().expire(now, &mut fx);
        self.next_timer = [next_send, next_recv].into_iter().flatten().min();
        fx.wake_all();
        if let Some(link) = &mut self.link {
            for call in std::mem::take(&mut self.calls).0 {
                call(Ok(&mut **link));
            }
        }
        let closing = phase == Phase::Closing;
        if !closing && phase != Phase::Finishing {
            return Next::Wait;
        }
        if self.link.is_none() {
            // Ending while the link is down: what is left is unsent, for the outage's cause.
            let cause = self.dial.cause.clone();
            return self.finish(cause);
        }
        if !self.connected {
            // A link still connecting is simply dropped once a close has nothing left to
            // write, or runs out of time; a `shutdown_write` waits for it to connect.
            return if closing && (drained || overdue) { self.finish(None) } else { Next::Wait };
        }
        if drained && !self.write_ended {
            match self.end_write() {
                Ok(true) => {}
                // Retried when the link is writable again.
                Ok(false) if !(closing && overdue) => return Next::Wait,
                Ok(false) => return self.finish(None),
                Err(cause) => return self.finish(Some(cause)),
            }
        }
        if self.write_ended && self.read_ended {
            return self.finish(None);
        }
        if closing && overdue {
            return self.finish(None);
        }
        Next::Wait
    }

    /// Flushes the link and ends its write side. `Ok(false)` if the link would block.
    fn end_write(&mut self) -> Result<bool, Disconnect> {
        let Some(link) = &mut self.link else { return Ok(false) };
        match link.flush().and_then(|()| link.shutdown()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => {
                log::debug!("ending the write side of {}: {e}", self.conn.url());
                return Err(Disconnect::from_io(e));
            }
        }
        log::debug!("ended the write side of {}", self.conn.url());
        self.write_ended = true;
        let mut fx = Effects::new(Instant::now);
        self.conn.lock().ended_write(&mut fx);
        fx.wake_all();
        Ok(true)
    }

    /// The earliest deadline the connection still waits for.
    fn next_deadline(&self) -> Option<Instant> {
        let connect = if self.connected { None } else { self.connect_deadline };
        let attempt = self.dial.next_attempt;
        let greeting = self.greeting.as_ref().map(|g| g.deadline);
        let liveness = self.liveness_deadline();
        let acks = self.acks.as_ref().and_then(|acks| acks.due);
        [self.next_timer, connect, attempt, greeting, liveness, acks].into_iter().flatten().min()
    }

    /// Reads into the inbound buffer, at most `budget` bytes, until the link has nothing more
    /// or the buffer is full (while closing, past a full buffer: see [`Inbound::read_from`]).
    /// Nothing is read once the peer's end of stream was.
    ///
    /// # Errors
    ///
    /// The link's error, not recorded: the connection ends or relinks next, which records it.
    fn read(&mut self, budget: usize, now: Instant) -> Result<Read, Disconnect> {
        if self.read_ended {
            return Ok(Read::Drained);
        }
        // While closing, nothing stops the reading: what does not fit the inbound buffer is
        // counted and dropped, so no unread byte turns the link's drop into a reset.
        let overflow = self.phase == Phase::Closing;
        let mut fx = Effects::new(Instant::now);
        if let Some(mut early) = self.early.take() {
            // What came after the handshake's answer goes first.
            let mut from_early = |buf: &mut [u8]| {
                if early.is_empty() {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                let n = buf.len().min(early.len());
                buf[..n].copy_from_slice(&early[..n]);
                early.advance(n);
                Ok(n)
            };
            let read = self.conn.inbound().read_from(&mut from_early, budget, overflow, &mut fx);
            if !early.is_empty() {
                self.early = Some(early);
                fx.wake_all();
                return read;
            }
        }
        let Some(link) = &mut self.link else { return Ok(Read::Drained) };
        let mut heard = false;
        let mut from_link = |buf: &mut [u8]| {
            let read = link.read(buf);
            heard |= matches!(read, Ok(n) if n > 0);
            read
        };
        let read = self.conn.inbound().read_from(&mut from_link, budget, overflow, &mut fx);
        // A full inbound buffer is not silence: the peer may be talking, unread.
        if heard || matches!(read, Ok(Read::Full)) {
            self.heard_at = now;
        }
        fx.wake_all();
        read
    }

    /// Drains the buffer into the link until it would block or the round budget is spent.
    fn write(&mut self, now: Instant) -> Result<Next, Disconnect> {
        if self.link.is_none() {
            return Ok(Next::Wait);
        }
        let mut fx = Effects::new(Instant::now);
        let acked = self.acked_now();
        let mut state = self.conn.lock();
        self.phase = state.phase();
        if let (Some(acks), Some(acked)) = (&mut self.acks, acked) {
            acks.release(acked, self.offset, &mut state, &mut fx);
        }
        let mut limit = refill(&mut self.in_flight, self.offset, self.retry, &mut state);
        drop(state);
        let mut next = self.write_rounds(now, &mut fx, &mut limit);
        // Asked again after the writes: on a fast path most of what they put out is
        // acknowledged by now, and its room is better given back at once than at the timer
        // (no readiness tells the driver of an acknowledgement). The senders it lets in are
        // written at the next turn, which comes at once: nothing else would bring it.
        if let (Some(acked), Some(acks)) = (self.acked_now(), &mut self.acks) {
            let mut state = self.conn.lock();
            acks.release(acked, self.offset, &mut state, &mut fx);
            let buffer = state.buffer();
            if matches!(next, Ok(Next::Wait)) && buffer.queued() + buffer.urgent_queued() > 0 {
                next = Ok(Next::Again);
            }
        }
        if let Some(acks) = &mut self.acks {
            acks.due = (acks.awaiting > 0).then(|| now + acks.interval);
        }
        fx.wake_all();
        next
    }

    /// What the link's peer has acknowledged of the bytes written on it (the hello's
    /// excepted), if bytes are kept for it. Asked outside the lock: it is a system call.
    fn acked_now(&self) -> Option<u64> {
        self.acks.as_ref().filter(|acks| acks.awaiting > 0)?;
        let acked = self.link.as_ref()?.bytes_acked()?;
        Some(acked.saturating_sub(self.hello_bytes))
    }

    /// The rounds of [`Entry::write`]: writes, and takes more from the buffer after each.
    fn write_rounds(
        &mut self,
        now: Instant,
        fx: &mut Effects,
        limit: &mut Option<usize>,
    ) -> Result<Next, Disconnect> {
        for _ in 0..WRITE_ROUNDS {
            if self.in_flight.is_empty() {
                self.stalled_since = None;
                return Ok(Next::Wait);
            }
            let Some(link) = self.link.as_mut() else { return Ok(Next::Wait) };
            let (result, offered) = {
                let mut slices = [IoSlice::new(&[]); MAX_IOV];
                let mut count = 0;
                let mut left = limit.unwrap_or(usize::MAX);
                for (i, chunk) in self.in_flight.iter().take(MAX_IOV).enumerate() {
                    let start = if i == 0 { self.offset } else { 0 };
                    let end = chunk.len().min(start.saturating_add(left));
                    slices[i] = IoSlice::new(&chunk[start..end]);
                    count += 1;
                    left -= end - start;
                    if left == 0 {
                        break;
                    }
                }
                let offered = limit.unwrap_or(usize::MAX) - left;
                (link.write_vectored(&slices[..count]), offered)
            };
            match result {
                Ok(0) => return Err(Disconnect::from_io(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.retry = None;
                    self.stalled_since = None;
                    self.sent_at = now;
                    self.advance(n);
                    let mut state = self.conn.lock();
                    state.written(n, fx);
                    if let Some(acks) = &mut self.acks {
                        state.buffer().keep_chunks(acks.done.drain(..), self.offset);
                        acks.awaiting = state.buffer().kept();
                        acks.interval = ACK_POLL_MIN;
                    }
                    *limit = refill(&mut self.in_flight, self.offset, None, &mut state);
                    drop(state);
                    log::trace!("wrote {n} bytes");
                    fx.wake_all();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.retry = Some(offered);
                    self.stalled_since.get_or_insert(now);
                    return Ok(Next::Wait);
                }
                // Nothing was taken; the next round offers the same slices.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Disconnect::from_io(e)),
            }
        }
        Ok(if self.in_flight.is_empty() { Next::Wait } else { Next::Again })
    }

    /// Drops the first `n` bytes of the chunks in flight.
    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let left = self.in_flight[0].len() - self.offset;
            if n < left {
                self.offset += n;
                return;
            }
            n -= left;
            let done = self.in_flight.pop_front();
            if let (Some(acks), Some(done)) = (&mut self.acks, done) {
                acks.done.push(done);
            }
            self.offset = 0;
        }
    }

    /// Ends the connection; the loop then detaches it.
    fn finish(&mut self, cause: Option<Disconnect>) -> Next {
        match &cause {
            Some(cause) => log::debug!("{} ended: {cause}", self.conn.url()),
            None => log::debug!("{} closed", self.conn.url()),
        }
        self.ending.get_or_insert(cause);
        Next::Done
    }
}

/// Takes more chunks from the buffer into `in_flight` (whose first chunk has `offset` bytes
/// written), and splices urgent frames in if the wire is at a frame boundary. Returns how many
/// bytes may be written before the next boundary, when urgent frames wait for it.
///
/// `retry` is the length of the last write if it returned `WouldBlock`. The link's retry
/// contract then holds: nothing is spliced in front of the bytes it was offered, and the next
/// write is not shorter (a TLS session has already framed those bytes as a record and must be
/// given them again). Urgent frames go in at the first boundary after that write completes.
/// Nor is anything taken from the buffer until that write has gone through: the retried write
/// offers only what was refused, so the frames queued meanwhile stay where urgent frames can
/// still pass them.
fn refill(
    in_flight: &mut VecDeque<Bytes>,
    offset: usize,
    retry: Option<usize>,
    state: &mut State,
) -> Option<usize> {
    let buffer = state.buffer();
    let mut limit = None;
    if buffer.urgent_queued() > 0 {
        if retry.is_none() && buffer.at_boundary() {
            buffer.splice_urgent(in_flight, offset);
        } else {
            limit = Some(buffer.head_remaining());
        }
    }
    if retry.is_none() && in_flight.len() < MAX_IOV && buffer.queued() > 0 {
        buffer.take_chunks(in_flight);
    }
    match (limit, retry) {
        (Some(limit), Some(retry)) => Some(limit.max(retry)),
        (limit, _) => limit,
    }
}
