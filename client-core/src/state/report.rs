//! What a connection tells about itself: live [`Stats`] and the final [`CloseReport`].

use std::time::Duration;

use crate::state::buffer::UnsentFrame;
use crate::state::error::Disconnect;
use crate::state::latency::WriteLatency;

/// A snapshot of a connection's counters.
///
/// # Examples
///
/// ```
/// # fn show(stats: tidegate::Stats) {
/// println!(
///     "{} of {} bytes buffered, {} senders waiting",
///     stats.buffered, stats.capacity, stats.waiters
/// );
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// The capacity of the outgoing buffer, in bytes, fixed at connect.
    pub capacity: usize,
    /// Bytes in the outgoing buffer now: accepted from senders, not yet accepted by the link.
    pub buffered: usize,
    /// Bytes of frames the link accepted whole that are kept until the peer acknowledges them
    /// (with reconnection, on a link that counts what its peer acknowledged: see
    /// [`Reconnect`](crate::Reconnect)). They count against the capacity too, so a sender
    /// may wait while `buffered` is below it.
    pub awaiting_ack: usize,
    /// The most bytes the outgoing buffer has ever held. Never more than `capacity`.
    pub high_water: usize,
    /// Frames accepted into the buffer.
    pub frames_accepted: u64,
    /// Bytes accepted into the buffer.
    pub bytes_accepted: u64,
    /// Frames whose last byte the link has accepted.
    pub frames_written: u64,
    /// Bytes the link has accepted. After a reconnection, the bytes of a frame sent again
    /// count again.
    pub bytes_written: u64,
    /// Sends that found the buffer full (or others waiting) and had to wait.
    pub sends_waited: u64,
    /// Total time senders spent waiting, counted when each wait ends.
    pub wait_time: Duration,
    /// Senders waiting now.
    pub waiters: usize,
    /// The capacity of the inbound buffer, in bytes, fixed at connect.
    pub inbound_capacity: usize,
    /// Bytes in the inbound buffer now: read from the link, not yet returned by a receive.
    pub inbound_held: usize,
    /// The most bytes the inbound buffer has ever held. Never more than `inbound_capacity`.
    pub inbound_high_water: usize,
    /// Bytes read from the link.
    pub bytes_received: u64,
    /// Bytes returned by receives (with framing: the frames and their headers).
    pub bytes_delivered: u64,
    /// Receivers waiting now.
    pub receivers: usize,
    /// Bytes read from the link while closing that found the inbound buffer full, and were
    /// counted and dropped so that the close could go on reading to the peer's end of stream.
    pub inbound_discarded: u64,
    /// Writes the link accepted bytes from; `frames_written / write_calls` is the frames per
    /// write.
    pub write_calls: u64,
    /// `try_send` and `try_send_batch` calls refused because the frame would have had to
    /// wait (`TrySendError::Full`).
    pub try_send_refused: u64,
    /// Sends whose wait ended with their deadline (`SendError::Timeout`).
    pub send_timeouts: u64,
    /// Sends that left the line before their frame was accepted: a dropped or cancelled
    /// future, a blocking send refused on a driver thread. Their frames were not sent.
    pub sends_cancelled: u64,
    /// How long accepted bytes waited before the link took them, sampled.
    pub write_latency: WriteLatency,
    /// Links that came up: 1 once connected, plus one per reconnection.
    pub connects: u64,
    /// Links lost after they were up (with [`Reconnect`](crate::Reconnect) on, each one
    /// starts an outage).
    pub disconnects: u64,
    /// Attempts to connect after the first try at open, failed ones included: reconnect
    /// attempts, and a first link's attempts on its [fallback
    /// endpoints](crate::Config::fallback).
    pub reconnect_attempts: u64,
    /// Frames of lost links sent again on a new link: never written, or partly written and
    /// atomic.
    pub frames_replayed: u64,
    /// Frames of lost links that were written (or partly written and not atomic) and are not
    /// sent again: the peer may or may not have received them.
    pub frames_possibly_delivered: u64,
    /// Frames of lost links that were written whole and whose every byte the peer
    /// acknowledged (where the link can tell, see
    /// [`Link::bytes_acked`](crate::transport::Link::bytes_acked)): they reached the peer's
    /// side, and are not sent again.
    pub frames_acknowledged: u64,
    /// Time spent with the link down between a loss and the next link, the current outage
    /// included.
    pub time_disconnected: Duration,
}

/// How a connection's ending went, as far as this side can tell: [`CloseReport::ending`].
///
/// A close drains the buffer, ends the write side (for TCP, a FIN after the last byte), then
/// keeps reading until the peer ends its side too, or the close timeout passes. Only then is the
/// link dropped: dropping a socket with unread bytes in it makes the kernel answer with a reset,
/// and a reset discards what the peer's kernel had received but the peer had not read yet.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tidegate::{Config, Connection, Ending};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("doc-ending").unwrap();
/// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
/// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
/// peer.hold_open();
/// let report = tidegate::block_on(conn.close(Duration::from_millis(50)));
/// assert_eq!(report.ending(), Ending::PeerKeptOpen);
/// assert!(!report.is_clean());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Ending {
    /// Every accepted frame was written, the write side was ended after the last byte, and the
    /// peer ended its side in order (this side read its end of stream) without resetting.
    ///
    /// What this promises: every byte reached the peer's transport, and the peer did not throw
    /// any of it away with a reset while this side was listening. A peer that reads to the end
    /// of stream before it closes (most brokers do) has read all of it. Whether the peer's
    /// application *acted* on the data is for the application's protocol to say
    /// (acknowledgements).
    #[default]
    Clean,
    /// Everything was written and the write side was ended, but the peer did not end its side
    /// within the close timeout. The data is in the peer's transport, most likely delivered;
    /// nothing more can be known.
    PeerKeptOpen,
    /// Everything was written and the write side was ended, then the peer reset the
    /// connection: bytes the peer had not read yet may have been discarded (possibly lost).
    ResetAfterEnd,
    /// The close timeout passed before the buffer drained: the frames not written are in
    /// [`CloseReport::unsent`].
    NotDrained,
    /// The connection failed before it could be ended in order: [`CloseReport::cause`] says
    /// why, and the frames not written are in [`CloseReport::unsent`].
    Disconnected,
}

/// How a connection ended, returned by `close` in both facades.
///
/// Every frame that was accepted is accounted for: either it was written
/// ([`frames_written`](Self::frames_written)), or it is in [`unsent`](Self::unsent).
/// [`ending`](Self::ending) tells what is known of the written bytes' arrival.
///
/// # Examples
///
/// ```
/// # fn show(report: tidegate::CloseReport) {
/// if !report.is_clean() {
///     eprintln!("{} frames were not sent: {:?}", report.unsent().len(), report.cause());
/// }
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct CloseReport {
    pub(crate) bytes_written: u64,
    pub(crate) frames_written: u64,
    pub(crate) unsent: Vec<UnsentFrame>,
    pub(crate) cause: Option<Disconnect>,
    pub(crate) timed_out: bool,
    pub(crate) ending: Ending,
    pub(crate) inbound_discarded: u64,
}

impl CloseReport {
    /// Returns the bytes the link accepted over the life of the connection.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-closereport-bytes-written").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// conn.try_send(Bytes::from_static(b"hello")).unwrap();
    /// let report = tidegate::block_on(conn.close(Duration::from_secs(5)));
    /// assert_eq!(report.bytes_written(), 5);
    /// ```
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Returns the frames the link accepted in full over the life of the connection.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-closereport-frames-written").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// conn.try_send(Bytes::from_static(b"one")).unwrap();
    /// conn.try_send(Bytes::from_static(b"two")).unwrap();
    /// let report = tidegate::block_on(conn.close(Duration::from_secs(5)));
    /// assert_eq!(report.frames_written(), 2);
    /// ```
    pub fn frames_written(&self) -> u64 {
        self.frames_written
    }

    /// Returns the frames that were accepted into the buffer but not fully written, oldest
    /// first.
    ///
    /// Only the first `close` call on a connection receives them; later calls see an empty list.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-closereport-unsent").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// conn.try_send(Bytes::from_static(b"first")).unwrap();
    /// conn.try_send(Bytes::from_static(b"second")).unwrap();
    /// let report = tidegate::block_on(conn.close(Duration::ZERO));
    /// assert_eq!(report.unsent().len(), 2);
    /// assert_eq!(report.unsent()[1].frame(), &Bytes::from_static(b"second"));
    /// let again = tidegate::block_on(conn.close(Duration::ZERO));
    /// assert!(again.unsent().is_empty(), "only the first close gets them");
    /// ```
    pub fn unsent(&self) -> &[UnsentFrame] {
        &self.unsent
    }

    /// Takes the unsent frames out of the report.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-closereport-into-unsent").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// conn.try_send(Bytes::from_static(b"keep")).unwrap();
    /// let report = tidegate::block_on(conn.close(Duration::ZERO));
    /// let unsent = report.into_unsent();
    /// assert_eq!(unsent[0].frame(), &Bytes::from_static(b"keep"));
    /// ```
    pub fn into_unsent(self) -> Vec<UnsentFrame> {
        self.unsent
    }

    /// Returns why the connection ended, if it was not closed by the application.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Config, Connection, DisconnectKind};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-closereport-cause").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.reset();
    /// let report = tidegate::block_on(conn.close(Duration::from_secs(5)));
    /// assert_eq!(report.cause().map(|c| c.kind()), Some(DisconnectKind::Reset));
    /// ```
    pub fn cause(&self) -> Option<&Disconnect> {
        self.cause.as_ref()
    }

    /// Returns whether the close timeout passed before the buffer drained.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-closereport-timed-out").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// conn.try_send(Bytes::from_static(b"stalled")).unwrap();
    /// let report = tidegate::block_on(conn.close(Duration::from_millis(20)));
    /// assert!(report.timed_out());
    /// ```
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// Returns how the ending went: see [`Ending`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection, Ending};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-closereport-ending").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// conn.try_send(Bytes::from_static(b"all of it")).unwrap();
    /// let report = tidegate::block_on(conn.close(Duration::from_secs(5)));
    /// assert_eq!(report.ending(), Ending::Clean);
    /// ```
    pub fn ending(&self) -> Ending {
        self.ending
    }

    /// Returns how many bytes arrived while closing that found the inbound buffer full and
    /// were dropped (the close reads to the peer's end of stream whatever arrives).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-closereport-discarded").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new().inbound_capacity(4)).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.write(b"0123456789");
    /// let report = tidegate::block_on(conn.close(Duration::from_secs(5)));
    /// assert!(report.is_clean());
    /// assert_eq!(report.inbound_discarded(), 6, "four bytes stay readable");
    /// ```
    pub fn inbound_discarded(&self) -> u64 {
        self.inbound_discarded
    }

    /// Returns whether the ending was [`Ending::Clean`]: every frame written, the write side
    /// ended after it, and the peer then ended its side in order.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Bytes;
    /// use tidegate::{Config, Connection};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-closereport-is-clean").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// conn.try_send(Bytes::from_static(b"all of it")).unwrap();
    /// let report = tidegate::block_on(conn.close(Duration::from_secs(5)));
    /// assert!(report.is_clean());
    /// ```
    pub fn is_clean(&self) -> bool {
        self.ending == Ending::Clean
    }
}
