//! The `tracing` and `metrics` features, read back the way an application would: a
//! subscriber and a recorder installed by the test see a span per connection with its
//! endpoint and the events of its life, and per-connection gauges and counters.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tidegate::transport::mem::MemListener;
use tidegate::{Client, Reconnect};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use crate::support::{self, Watchdog};

const LONG: Duration = Duration::from_secs(20);

/// Spans as `(id, name, fields)`, events as `(parent span, fields)`.
static SPANS: Mutex<Vec<(u64, String, String)>> = Mutex::new(Vec::new());
static EVENTS: Mutex<Vec<(Option<u64>, String)>> = Mutex::new(Vec::new());

/// A subscriber that writes down every span and event, with their fields.
struct Collector;

#[derive(Default)]
struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl Subscriber for Collector {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields::default();
        span.record(&mut fields);
        let mut spans = SPANS.lock().unwrap();
        let id = spans.len() as u64 + 1;
        spans.push((id, span.metadata().name().to_string(), fields.0));
        Id::from_u64(id)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        EVENTS.lock().unwrap().push((event.parent().map(Id::into_u64), fields.0));
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Held by each test here for its whole run: a snapshot of the recorder resets every
/// connection's values, another test's too.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Installs the subscriber and the recorder, once for the whole test process.
fn observed() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        tracing::subscriber::set_global_default(Collector).expect("the only subscriber");
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install().expect("the only recorder");
        snapshotter
    })
}

/// The connection to `endpoint`'s metrics, by name. A snapshot of the debugging recorder
/// takes the values (it resets them), so take one for all the questions.
fn metrics_of(snapshotter: &Snapshotter, endpoint: &str) -> HashMap<String, f64> {
    let mut found = HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        if key.labels().any(|l| l.key() == "endpoint" && l.value() == endpoint) {
            let value = match value {
                DebugValue::Counter(n) => n as f64,
                DebugValue::Gauge(g) => g.0,
                DebugValue::Histogram(_) => f64::NAN,
            };
            found.insert(key.name().to_string(), value);
        }
    }
    found
}

#[test]
fn a_connection_reports_its_span_events_and_metrics() {
    let _watchdog = Watchdog::new(LONG, "tracing and metrics");
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let snapshotter = observed();
    let listener = MemListener::bind(&support::unique_name("observed")).unwrap();
    let url = listener.url();
    let client = Client::builder().capacity(8).connect(&url).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    peer.pause();
    client.send("12345678").unwrap();
    let waiting = {
        let client = client.clone();
        std::thread::spawn(move || client.send("more").unwrap())
    };
    assert!(support::wait_until(LONG, || client.stats().waiters == 1));
    // The driver sees backpressure at its turns. Nothing brings one while the pipe stays
    // paused, and a turn that began before the sender waited may let it in once the pipe is
    // resumed without ever seeing it wait: so poke the pipe (the same pause again) for a turn
    // now, and wait until it has told of the wait before resuming.
    peer.pause();
    let began = || {
        let spans = SPANS.lock().unwrap().clone();
        let span = spans.iter().find(|(_, name, fields)| {
            name == "tidegate.connection" && fields.contains(&format!("endpoint={url}"))
        });
        span.is_some_and(|(span, _, _)| {
            EVENTS.lock().unwrap().iter().any(|(parent, fields)| {
                *parent == Some(*span) && fields.contains("message=backpressure began")
            })
        })
    };
    assert!(support::wait_until(LONG, began), "the driver saw the sender wait");
    peer.resume();
    support::join_within(waiting, LONG, "the waiting sender");
    client.flush_timeout(LONG).unwrap();
    let report = client.close().unwrap();
    assert!(report.is_clean(), "{report:?}");
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        match peer.read_timeout(&mut buf, LONG).unwrap() {
            0 => break,
            n => got.extend_from_slice(&buf[..n]),
        }
    }
    assert_eq!(got, b"12345678more", "what the peer received");

    // The span, with the endpoint, and the events of its life under it, in order.
    let spans = SPANS.lock().unwrap().clone();
    let (span, _, fields) = spans
        .iter()
        .find(|(_, name, fields)| name == "tidegate.connection" && fields.contains(&url))
        .unwrap_or_else(|| panic!("no span for {url} in {spans:?}"));
    assert!(fields.contains(&format!("endpoint={url}")), "{fields}");
    let events: Vec<String> = EVENTS
        .lock()
        .unwrap()
        .iter()
        .filter(|(parent, _)| *parent == Some(*span))
        .map(|(_, fields)| fields.clone())
        .collect();
    let position = |what: &str| {
        events
            .iter()
            .position(|e| e.contains(&format!("message={what}")))
            .unwrap_or_else(|| panic!("no {what:?} event in {events:?}"))
    };
    let order = [
        position("connected"),
        position("backpressure began"),
        position("backpressure ended"),
        position("closed"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{events:?}");
    assert!(events[order[1]].contains("waiters=1"), "{events:?}");

    // The metrics, published once more as the connection ended.
    let metrics = metrics_of(snapshotter, &url);
    let value = |name: &str| metrics.get(name).copied();
    assert_eq!(value("tidegate_bytes_written_total"), Some(12.0));
    assert_eq!(value("tidegate_frames_written_total"), Some(2.0));
    assert_eq!(value("tidegate_sends_waited_total"), Some(1.0));
    assert_eq!(value("tidegate_buffered_bytes"), Some(0.0));
    assert_eq!(value("tidegate_waiters"), Some(0.0));
    assert!(value("tidegate_write_calls_total").is_some_and(|n| (1.0..=2.0).contains(&n)));
}

#[test]
fn reconnection_is_counted_in_the_metrics() {
    let _watchdog = Watchdog::new(LONG, "reconnection metrics");
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let snapshotter = observed();
    let listener = MemListener::bind(&support::unique_name("observed-relink")).unwrap();
    let url = listener.url();
    let policy = Reconnect::new().initial_delay(Duration::from_millis(10)).jitter(0.0);
    let client = Client::builder().reconnect(policy).connect(&url).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    // The pipe holds one frame: the peer reads the first, leaves the second unread.
    peer.set_write_capacity(4);
    client.send("aaaa").unwrap();
    client.send("bbbb").unwrap();
    let mut first = [0u8; 4];
    assert_eq!(peer.read_timeout(&mut first, LONG).unwrap(), 4);
    assert_eq!(&first, b"aaaa");
    assert!(peer.wait_unread(4, LONG), "the second frame waits unread");
    assert!(support::wait_until(LONG, || client.stats().awaiting_ack == 4), "only it is kept");
    peer.reset();
    let next = listener.accept_timeout(LONG).unwrap();
    client.send("cccc").unwrap();
    let mut got = [0u8; 4];
    assert_eq!(next.read_timeout(&mut got, LONG).unwrap(), 4);
    assert_eq!(&got, b"cccc", "the next link carries on after the unread frame");
    let report = client.close().unwrap();
    assert!(report.is_clean(), "{report:?}");

    let metrics = metrics_of(snapshotter, &url);
    let value = |name: &str| metrics.get(name).copied();
    assert_eq!(value("tidegate_connects_total"), Some(2.0));
    assert_eq!(value("tidegate_disconnects_total"), Some(1.0));
    assert_eq!(value("tidegate_frames_acknowledged_total"), Some(1.0));
    assert_eq!(value("tidegate_frames_possibly_delivered_total"), Some(1.0));
    assert_eq!(value("tidegate_frames_replayed_total"), Some(0.0));
    assert!(value("tidegate_reconnect_attempts_total").is_some_and(|n| n >= 1.0), "{metrics:?}");
    assert!(value("tidegate_time_disconnected_seconds").is_some_and(|s| s > 0.0), "{metrics:?}");
    assert_eq!(value("tidegate_awaiting_ack_bytes"), Some(0.0));
}
