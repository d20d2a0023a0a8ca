//! What the I/O driver tells the `tracing` and `metrics` crates about each connection, each
//! behind its feature of the same name (both off by default). The library never installs a
//! subscriber, a recorder or an exporter: the application does.
//!
//! - **`tracing`**: a span per connection, `tidegate.connection`, with the `endpoint` (the
//!   URL, credentials masked) and the connection's `id`; under it, events at `DEBUG` for its
//!   life: `connected`, `backpressure began` (with `waiters`) and `backpressure ended`, then
//!   `disconnected` (with the `cause`) or `closed`. Backpressure is seen at the driver's turns:
//!   it begins at the first turn that finds senders waiting and ends at the first that finds
//!   none.
//! - **`metrics`**: per connection, labelled `endpoint` and `connection` (its id), published
//!   by the driver at most every [`PUBLISH_EVERY`] while it works on the connection, and once
//!   more when the connection ends. Gauges: `tidegate_buffered_bytes`, `tidegate_waiters`,
//!   `tidegate_inbound_held_bytes`, `tidegate_write_latency_p99_seconds`,
//!   `tidegate_awaiting_ack_bytes`, `tidegate_time_disconnected_seconds`. Counters (totals
//!   since the connection opened): `tidegate_bytes_written_total`,
//!   `tidegate_frames_written_total`, `tidegate_write_calls_total`,
//!   `tidegate_bytes_received_total`, `tidegate_sends_waited_total`,
//!   `tidegate_send_timeouts_total`, `tidegate_try_send_refused_total`, and for reconnection
//!   `tidegate_connects_total`, `tidegate_disconnects_total`,
//!   `tidegate_reconnect_attempts_total`, `tidegate_frames_replayed_total`,
//!   `tidegate_frames_acknowledged_total`, `tidegate_frames_possibly_delivered_total`. The
//!   handles are made when the connection opens, so install the recorder before opening
//!   connections.
//!
//! Without either feature the observer is empty and its calls compile to nothing.

#[cfg(feature = "metrics")]
use std::time::{Duration, Instant};

use crate::conn::ConnShared;
use crate::state::error::Disconnect;

/// The most often the driver publishes a connection's metrics.
#[cfg(feature = "metrics")]
pub(crate) const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// One connection's observer, kept by the driver with the connection.
#[derive(Debug)]
pub(crate) struct Observer {
    #[cfg(feature = "tracing")]
    span: tracing::Span,
    /// Whether senders waited at the last turn.
    #[cfg(feature = "tracing")]
    pressed: bool,
    #[cfg(feature = "metrics")]
    metrics: Metrics,
}

impl Observer {
    /// The observer of `conn`, which has just been handed to the driver.
    pub(crate) fn new(conn: &ConnShared) -> Self {
        let _ = conn; // not read without the features
        #[cfg(any(feature = "tracing", feature = "metrics"))]
        let endpoint = crate::state::error::mask_credentials(conn.url());
        Self {
            #[cfg(feature = "tracing")]
            span: tracing::debug_span!("tidegate.connection", endpoint = %endpoint, id = conn.id()),
            #[cfg(feature = "tracing")]
            pressed: false,
            #[cfg(feature = "metrics")]
            metrics: Metrics::new(&endpoint, conn.id()),
        }
    }

    /// The link is up.
    pub(crate) fn connected(&self) {
        #[cfg(feature = "tracing")]
        tracing::debug!(parent: &self.span, "connected");
    }

    /// The driver has serviced the connection.
    pub(crate) fn serviced(&mut self, conn: &ConnShared) {
        let _ = conn; // not read without the features
        // Without a subscriber that wants the span, no lock is taken for it.
        #[cfg(feature = "tracing")]
        if !self.span.is_disabled() {
            let waiters = conn.lock().waiters();
            match (self.pressed, waiters > 0) {
                (false, true) => tracing::debug!(parent: &self.span, waiters, "backpressure began"),
                (true, false) => tracing::debug!(parent: &self.span, "backpressure ended"),
                _ => {}
            }
            self.pressed = waiters > 0;
        }
        #[cfg(feature = "metrics")]
        self.metrics.publish(conn, false);
    }

    /// The connection is over: `cause` says why, if it was not an orderly close.
    pub(crate) fn ended(&mut self, conn: &ConnShared, cause: Option<&Disconnect>) {
        let _ = (conn, cause); // not read without the features
        #[cfg(feature = "tracing")]
        match cause {
            Some(cause) => tracing::debug!(parent: &self.span, cause = %cause, "disconnected"),
            None => tracing::debug!(parent: &self.span, "closed"),
        }
        #[cfg(feature = "metrics")]
        self.metrics.publish(conn, true);
    }
}

/// The connection's metric handles, made once.
#[cfg(feature = "metrics")]
#[derive(Debug)]
struct Metrics {
    last: Option<Instant>,
    buffered: metrics::Gauge,
    waiters: metrics::Gauge,
    inbound_held: metrics::Gauge,
    latency_p99: metrics::Gauge,
    bytes_written: metrics::Counter,
    frames_written: metrics::Counter,
    write_calls: metrics::Counter,
    bytes_received: metrics::Counter,
    sends_waited: metrics::Counter,
    send_timeouts: metrics::Counter,
    try_send_refused: metrics::Counter,
    awaiting_ack: metrics::Gauge,
    time_disconnected: metrics::Gauge,
    connects: metrics::Counter,
    disconnects: metrics::Counter,
    reconnect_attempts: metrics::Counter,
    frames_replayed: metrics::Counter,
    frames_acknowledged: metrics::Counter,
    frames_possibly_delivered: metrics::Counter,
}

#[cfg(feature = "metrics")]
impl Metrics {
    fn new(endpoint: &str, id: usize) -> Self {
        let labels = [("endpoint", endpoint.to_string()), ("connection", id.to_string())];
        Self {
            last: None,
            buffered: metrics::gauge!("tidegate_buffered_bytes", &labels),
            waiters: metrics::gauge!("tidegate_waiters", &labels),
            inbound_held: metrics::gauge!("tidegate_inbound_held_bytes", &labels),
            latency_p99: metrics::gauge!("tidegate_write_latency_p99_seconds", &labels),
            bytes_written: metrics::counter!("tidegate_bytes_written_total", &labels),
            frames_written: metrics::counter!("tidegate_frames_written_total", &labels),
            write_calls: metrics::counter!("tidegate_write_calls_total", &labels),
            bytes_received: metrics::counter!("tidegate_bytes_received_total", &labels),
            sends_waited: metrics::counter!("tidegate_sends_waited_total", &labels),
            send_timeouts: metrics::counter!("tidegate_send_timeouts_total", &labels),
            try_send_refused: metrics::counter!("tidegate_try_send_refused_total", &labels),
            awaiting_ack: metrics::gauge!("tidegate_awaiting_ack_bytes", &labels),
            time_disconnected: metrics::gauge!("tidegate_time_disconnected_seconds", &labels),
            connects: metrics::counter!("tidegate_connects_total", &labels),
            disconnects: metrics::counter!("tidegate_disconnects_total", &labels),
            reconnect_attempts: metrics::counter!("tidegate_reconnect_attempts_total", &labels),
            frames_replayed: metrics::counter!("tidegate_frames_replayed_total", &labels),
            frames_acknowledged: metrics::counter!("tidegate_frames_acknowledged_total", &labels),
            frames_possibly_delivered: metrics::counter!(
                "tidegate_frames_possibly_delivered_total",
                &labels
            ),
        }
    }

    /// Publishes the connection's counters, if [`PUBLISH_EVERY`] has passed since the last
    /// time or `now` says so.
    fn publish(&mut self, conn: &ConnShared, now: bool) {
        let at = Instant::now();
        if !now && self.last.is_some_and(|last| at.duration_since(last) < PUBLISH_EVERY) {
            return;
        }
        self.last = Some(at);
        let stats = conn.stats();
        self.buffered.set(stats.buffered as f64);
        self.waiters.set(stats.waiters as f64);
        self.inbound_held.set(stats.inbound_held as f64);
        self.latency_p99.set(stats.write_latency.p99.as_secs_f64());
        self.bytes_written.absolute(stats.bytes_written);
        self.frames_written.absolute(stats.frames_written);
        self.write_calls.absolute(stats.write_calls);
        self.bytes_received.absolute(stats.bytes_received);
        self.sends_waited.absolute(stats.sends_waited);
        self.send_timeouts.absolute(stats.send_timeouts);
        self.try_send_refused.absolute(stats.try_send_refused);
        self.awaiting_ack.set(stats.awaiting_ack as f64);
        self.time_disconnected.set(stats.time_disconnected.as_secs_f64());
        self.connects.absolute(stats.connects);
        self.disconnects.absolute(stats.disconnects);
        self.reconnect_attempts.absolute(stats.reconnect_attempts);
        self.frames_replayed.absolute(stats.frames_replayed);
        self.frames_acknowledged.absolute(stats.frames_acknowledged);
        self.frames_possibly_delivered.absolute(stats.frames_possibly_delivered);
    }
}
