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
/// println!("{} of {} bytes buffered, {} senders waiting", stats.buffered, stats.capacity, stats.waiters);
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
    /// Bytes the link accepted over the life of the connection.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Frames the link accepted in full over the life of the connection.
    pub fn frames_written(&self) -> u64 {
        self.frames_written
    }

    /// The frames that were accepted into the buffer but not fully written, oldest first.
    ///
    /// Only the first `close` call on a connection receives them; later calls see an empty list.
    pub fn unsent(&self) -> &[UnsentFrame] {
        &self.unsent
    }

    /// Takes the unsent frames out of the report.
    pub fn into_unsent(self) -> Vec<UnsentFrame> {
        self.unsent
    }

    /// Why the connection ended, if it was not closed by the application.
    pub fn cause(&self) -> Option<&Disconnect> {
        self.cause.as_ref()
    }

    /// Whether the close timeout passed before the buffer drained.
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// Whether everything was written and the connection ended by the application's close.
    pub fn is_clean(&self) -> bool {
        self.unsent.is_empty() && self.cause.is_none() && !self.timed_out
    }
}
