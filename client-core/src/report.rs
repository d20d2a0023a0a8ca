//! What a connection tells about itself: live [`Stats`] and the final [`CloseReport`].

use std::time::Duration;

use crate::buffer::UnsentFrame;
use crate::error::Disconnect;

/// A snapshot of a connection's counters.
///
/// # Examples
///
/// ```
/// # fn show(stats: tidegate_core::Stats) {
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
    /// The most bytes the outgoing buffer has ever held. Never more than `capacity`.
    pub high_water: usize,
    /// Frames accepted into the buffer.
    pub frames_accepted: u64,
    /// Bytes accepted into the buffer.
    pub bytes_accepted: u64,
    /// Frames whose last byte the link has accepted.
    pub frames_written: u64,
    /// Bytes the link has accepted.
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
}

/// How a connection ended, returned by `close` in both facades.
///
/// Every frame that was accepted is accounted for: either it was written
/// ([`frames_written`](Self::frames_written)), or it is in [`unsent`](Self::unsent).
///
/// # Examples
///
/// ```
/// # fn show(report: tidegate_core::CloseReport) {
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
}

impl CloseReport {
    /// Returns the bytes the link accepted over the life of the connection.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-closereport-bytes-written").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// conn.try_send(Bytes::from_static(b"hello")).unwrap();
    /// let report = futures::executor::block_on(conn.close(Duration::from_secs(5)));
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
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-closereport-frames-written").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// conn.try_send(Bytes::from_static(b"one")).unwrap();
    /// conn.try_send(Bytes::from_static(b"two")).unwrap();
    /// let report = futures::executor::block_on(conn.close(Duration::from_secs(5)));
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
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-closereport-unsent").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// conn.try_send(Bytes::from_static(b"first")).unwrap();
    /// conn.try_send(Bytes::from_static(b"second")).unwrap();
    /// let report = futures::executor::block_on(conn.close(Duration::ZERO));
    /// assert_eq!(report.unsent().len(), 2);
    /// assert_eq!(report.unsent()[1].frame(), &Bytes::from_static(b"second"));
    /// let again = futures::executor::block_on(conn.close(Duration::ZERO));
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
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-closereport-into-unsent").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// conn.try_send(Bytes::from_static(b"keep")).unwrap();
    /// let report = futures::executor::block_on(conn.close(Duration::ZERO));
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
    /// use tidegate_core::{Config, Connection, DisconnectKind};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-closereport-cause").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.reset();
    /// let report = futures::executor::block_on(conn.close(Duration::from_secs(5)));
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
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-closereport-timed-out").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// conn.try_send(Bytes::from_static(b"stalled")).unwrap();
    /// let report = futures::executor::block_on(conn.close(Duration::from_millis(20)));
    /// assert!(report.timed_out());
    /// ```
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// Returns whether everything was written and the connection ended by the application's
    /// close.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use tidegate_core::{Config, Connection};
    /// use tidegate_core::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("doc-closereport-is-clean").unwrap();
    /// let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    /// conn.try_send(Bytes::from_static(b"all of it")).unwrap();
    /// let report = futures::executor::block_on(conn.close(Duration::from_secs(5)));
    /// assert!(report.is_clean());
    /// ```
    pub fn is_clean(&self) -> bool {
        self.unsent.is_empty() && self.cause.is_none() && !self.timed_out
    }
}
