//! A memory budget shared by many connections (Qpid's "total job heap").
//!
//! # The algorithm
//!
//! Each connection keeps its own bound and its own FIFO line of waiting senders. A budget adds
//! a second bound over the data bytes of every connection that uses it, and a second FIFO line,
//! across connections, for the heads of those lines:
//!
//! 1. A data frame enters a connection's buffer only if it fits the connection **and** the
//!    budget, and, on the fast path, only if no connection waits on the budget (no barging
//!    across connections either).
//! 2. The head of a connection's line that fits its connection but not the budget joins the
//!    budget's line, recording its connection and ticket. Only heads join, and only once they
//!    fit their own connection, so a stalled connection never holds more of the budget than its
//!    own capacity: the rest keeps serving the others.
//! 3. When bytes leave any buffer (written, or handed back when a connection ends), the budget
//!    reserves room for the heads of its line, in order, for as long as they fit, and returns
//!    the reservations as [`Grant`]s. The bytes are counted as used from that moment, so no one
//!    can take them in between.
//! 4. A grant is delivered once every lock is released: the target connection is locked, and if
//!    its waiter is still the head of its line and still fits, the frame moves into the buffer
//!    with the reserved bytes, in one step (the hand-off is atomic as on a single connection).
//!    If the waiter left meanwhile (timeout, cancel, close), the reservation is handed back to
//!    the budget, which passes it to the next head (HAProxy's rule: a waiter that does not want
//!    the space any more passes it on).
//!
//! Lock order: a connection's lock, then the budget's. Grants are never delivered under a lock,
//! so two connections' locks are never held at once.
//!
//! Urgent frames are counted in the budget's use but never wait on it, so a heartbeat or a
//! close frame still goes out when data has exhausted the budget; the use can exceed the limit
//! by the urgent bytes held at that moment (each bounded by its connection's capacity).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

/// A memory budget shared by many connections: the data bytes buffered by all of them together
/// never exceed its limit, on top of each connection's own capacity. Cloning gives another
/// handle to the same budget.
///
/// Give it to each connection with [`Config::budget`](crate::Config::budget) (or the facades'
/// builders). A data frame then waits until it fits both its connection and the budget; senders
/// waiting on the budget are served in the order they started waiting on it, across
/// connections, and may still time out, be cancelled or be closed, exactly as when they wait on
/// their connection. A connection whose peer stalls holds at most its own capacity of the
/// budget, so the rest keeps serving the other connections.
///
/// Urgent frames count in the budget's use but never wait on it (see
/// [`Config::urgent_reserve`](crate::Config::urgent_reserve)).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tidegate::Bytes;
/// use tidegate::{Budget, Config, Connection};
/// use tidegate::transport::mem::MemListener;
///
/// let budget = Budget::new(64 * 1024);
/// let listener = MemListener::bind("budget-example").unwrap();
/// let config = Config::new().capacity(48 * 1024).budget(&budget);
/// let a = Connection::open(&listener.url(), config.clone()).unwrap();
/// let b = Connection::open(&listener.url(), config).unwrap();
/// // The peer of `a` reads nothing, so what `a` buffers stays counted.
/// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
/// peer.pause();
///
/// a.try_send(Bytes::from(vec![0u8; 40 * 1024])).unwrap();
/// // `b` has room of its own, but the two together would exceed the budget.
/// assert!(b.try_send(Bytes::from(vec![0u8; 40 * 1024])).is_err());
/// assert_eq!(budget.used(), 40 * 1024);
/// ```
#[derive(Clone)]
pub struct Budget {
    shared: Arc<BudgetShared>,
}

impl Budget {
    /// Creates a budget of `limit` bytes.
    ///
    /// # Panics
    ///
    /// Panics if `limit` is zero: no data frame could ever be sent.
    ///
    /// # Examples
    ///
    /// ```
    /// let budget = tidegate::Budget::new(32 << 20);
    /// assert_eq!(budget.limit(), 32 << 20);
    /// ```
    pub fn new(limit: usize) -> Self {
        assert!(limit > 0, "a budget needs a limit of at least 1 byte");
        let state = BudgetState { limit, used: 0, line: BTreeMap::new(), next_seq: 0 };
        Self { shared: Arc::new(BudgetShared { state: Mutex::new(state) }) }
    }

    /// The limit, in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(tidegate::Budget::new(1000).limit(), 1000);
    /// ```
    pub fn limit(&self) -> usize {
        self.shared.lock().limit
    }

    /// The bytes counted now: held in the buffers of the connections that use the budget, plus
    /// room reserved for senders being handed their turn.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(tidegate::Budget::new(1000).used(), 0);
    /// ```
    pub fn used(&self) -> usize {
        self.shared.lock().used
    }

    /// The number of senders waiting on the budget (at most one per connection: the head of
    /// its line).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(tidegate::Budget::new(1000).waiting(), 0);
    /// ```
    pub fn waiting(&self) -> usize {
        self.shared.lock().line.len()
    }

    pub(crate) fn shared(&self) -> &Arc<BudgetShared> {
        &self.shared
    }
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Budget")
            .field("limit", &state.limit)
            .field("used", &state.used)
            .field("waiting", &state.line.len())
            .finish()
    }
}

/// The budget behind its lock.
#[derive(Debug)]
pub(crate) struct BudgetShared {
    state: Mutex<BudgetState>,
}

#[derive(Debug)]
struct BudgetState {
    limit: usize,
    /// Bytes held by data and urgent frames in the buffers, plus grants not yet delivered.
    ///
    /// Invariant: data frames are admitted only while `used + len <= limit`.
    used: usize,
    /// Heads of connections' lines waiting on the budget, by the order they joined.
    ///
    /// Invariant: when not empty, the first one does not fit (`used + len > limit`), except
    /// inside a call that ends with [`BudgetState::serve`].
    line: BTreeMap<u64, Entry>,
    next_seq: u64,
}

/// A head of a connection's line waiting on the budget.
#[derive(Debug)]
struct Entry {
    conn: Weak<dyn Member>,
    ticket: u64,
    len: usize,
}

/// Room reserved in the budget for a waiting sender, to deliver once no lock is held.
#[derive(Debug)]
pub(crate) struct Grant {
    budget: Arc<BudgetShared>,
    conn: Weak<dyn Member>,
    ticket: u64,
    len: usize,
}

impl BudgetShared {
    fn lock(&self) -> MutexGuard<'_, BudgetState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The limit, for the size check of a frame.
    pub(crate) fn limit(&self) -> usize {
        self.lock().limit
    }

    /// Takes `len` bytes for a data frame if no one waits and they fit.
    pub(crate) fn try_take(&self, len: usize) -> bool {
        let mut state = self.lock();
        let fits = state.line.is_empty() && state.used + len <= state.limit;
        if fits {
            state.used += len;
        }
        fits
    }

    /// Takes `len` bytes for an urgent frame, which never waits on the budget.
    pub(crate) fn take_urgent(&self, len: usize) {
        self.lock().used += len;
    }

    /// Takes `len` bytes for the head `ticket` of a connection's line, or puts it in the
    /// budget's line and returns its place there.
    pub(crate) fn take_or_wait(
        &self,
        len: usize,
        conn: &Weak<dyn Member>,
        ticket: u64,
    ) -> Option<u64> {
        let mut state = self.lock();
        if state.line.is_empty() && state.used + len <= state.limit {
            state.used += len;
            return None;
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.line.insert(seq, Entry { conn: conn.clone(), ticket, len });
        if state.line.len() == 1 {
            log::debug!(
                "memory budget exhausted ({} of {} bytes): senders wait",
                state.used,
                state.limit
            );
        }
        Some(seq)
    }

    /// Gives back `len` bytes and reserves room for the heads of the line that now fit.
    pub(crate) fn release(self: &Arc<Self>, len: usize, grants: &mut Vec<Grant>) {
        if len == 0 {
            return;
        }
        let mut state = self.lock();
        debug_assert!(state.used >= len, "the budget gives back only what it counted");
        state.used -= len;
        state.serve(self, grants);
    }

    /// A head waiting on the budget leaves it (it timed out, was cancelled or closed). If it
    /// was in the way, the next ones are served.
    pub(crate) fn leave(self: &Arc<Self>, seq: u64, grants: &mut Vec<Grant>) {
        let mut state = self.lock();
        if state.line.remove(&seq).is_some() {
            state.serve(self, grants);
        }
    }
}

impl BudgetState {
    /// Reserves room for the heads of the line, in order, while they fit.
    fn serve(&mut self, budget: &Arc<BudgetShared>, grants: &mut Vec<Grant>) {
        while let Some(entry) = self.line.first_entry() {
            let len = entry.get().len;
            if self.used + len > self.limit {
                break;
            }
            let Entry { conn, ticket, len } = entry.remove();
            self.used += len;
            grants.push(Grant { budget: budget.clone(), conn, ticket, len });
        }
        debug_assert!(
            self.line.first_key_value().is_none_or(|(_, e)| self.used + e.len > self.limit),
            "the head of the budget's line does not fit"
        );
    }
}

/// A connection as the budget's line knows it: what a grant is delivered to.
///
/// The budget sits below connections and cannot name them; a connection implements this and
/// joins the line as a `Weak<dyn Member>`, so a connection that has gone simply gets nothing
/// and its reservation is handed on.
pub(crate) trait Member: Send + Sync + fmt::Debug {
    /// Offers `len` reserved bytes to the waiter `ticket`, the head of the member's line when
    /// it joined the budget's. Returns whether it took them; if not (it left meanwhile), the
    /// caller hands them back. Grants the delivery causes in turn go into `grants`.
    ///
    /// Called with no lock held; it takes the member's own lock and wakes what it must after
    /// releasing it.
    fn granted(&self, ticket: u64, len: usize, grants: &mut Vec<Grant>) -> bool;
}

/// Delivers grants to their connections. Call without holding any lock.
///
/// Each delivery may hand room back (the waiter left) or let the connection's next head wait
/// on the budget, which may produce further grants; they are delivered here too, in a loop, so
/// no call nests inside another.
pub(crate) fn deliver(mut grants: Vec<Grant>) {
    // Bounded: each turn either moves a frame into a buffer or shrinks the budget's line.
    while let Some(grant) = grants.pop() {
        let taken = match grant.conn.upgrade() {
            Some(member) => member.granted(grant.ticket, grant.len, &mut grants),
            None => false,
        };
        if !taken {
            grant.budget.release(grant.len, &mut grants);
        }
    }
}
