//! Blocking calls made on an I/O driver thread (inside a transport plugin or a link call)
//! return a typed error at once instead of parking the thread the driver needs.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use tidegate::transport::mem::{MemListener, MemPeer};
use tidegate::transport::{self, Endpoint, Link, Transport};
use tidegate::{Client, CloseError, CloseReport, FlushError, LinkError, SendError};

use crate::support;

/// Longer than any test runs: a close that waited for it would trip the watchdog.
const FOREVER: Duration = Duration::from_secs(3600);
/// How long a refusal may take at most, for "at once" on a loaded machine.
const AT_ONCE: Duration = Duration::from_secs(5);

/// A full client: its peer is paused and its buffer holds `capacity` bytes.
fn full_client(name: &str, capacity: usize) -> (Client, MemListener, MemPeer) {
    let listener = MemListener::bind(&support::unique_name(name)).unwrap();
    let client = Client::builder().capacity(capacity).connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    peer.pause();
    peer.set_write_capacity(0);
    client.send(vec![1u8; capacity]).unwrap();
    (client, listener, peer)
}

#[test]
fn a_send_that_would_wait_on_the_driver_thread_returns_its_frame() {
    let _watchdog = support::Watchdog::new(Duration::from_secs(30), "driver guard: send");
    let (client, _listener, peer) = full_client("guard-send", 64);
    let inner = client.clone();
    let outcome = client
        .call_link(move |_| {
            let refused = inner.send(vec![2u8; 8]);
            let flushed = inner.flush();
            let nested = inner.call_link(|_| ());
            (refused, flushed, nested)
        })
        .unwrap();
    match outcome.0 {
        Err(SendError::WouldDeadlock(frame)) => assert_eq!(&frame[..], &[2u8; 8]),
        other => panic!("expected WouldDeadlock, got {other:?}"),
    }
    assert!(matches!(outcome.1, Err(FlushError::WouldDeadlock)), "{:?}", outcome.1);
    assert!(matches!(outcome.2, Err(LinkError::WouldDeadlock)), "{:?}", outcome.2);
    // Nothing was left behind in the line, and the connection still works.
    assert_eq!(client.stats().waiters, 0);
    peer.set_write_capacity(1 << 20);
    peer.resume();
    client.flush_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(client.stats().bytes_written, 64);
}

#[test]
fn a_send_that_fits_at_once_works_on_the_driver_thread() {
    let listener = MemListener::bind(&support::unique_name("guard-fits")).unwrap();
    let client = Client::connect(&listener.url()).unwrap();
    let inner = client.clone();
    client.call_link(move |_| inner.send("fits").unwrap()).unwrap();
    client.flush_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(client.stats().frames_written, 1);
}

/// `guarded-mem://name`: the mem transport, whose link tries a blocking send on another,
/// full client when it connects, from the driver thread.
#[derive(Debug)]
struct Meddling {
    victim: Client,
    refused: Arc<AtomicBool>,
}

#[derive(Debug)]
struct MeddlingLink {
    inner: Box<dyn Link>,
    victim: Option<Client>,
    refused: Arc<AtomicBool>,
}

impl Transport for Meddling {
    fn open(&self, endpoint: &Endpoint) -> io::Result<Box<dyn Link>> {
        let url = format!("mem://{}", endpoint.address());
        let inner = transport::lookup("mem").unwrap().open(&Endpoint::parse(&url).unwrap())?;
        Ok(Box::new(MeddlingLink {
            inner,
            victim: Some(self.victim.clone()),
            refused: self.refused.clone(),
        }))
    }
}

impl Link for MeddlingLink {
    fn register(&mut self, registration: &transport::Registration<'_>) -> io::Result<()> {
        self.inner.register(registration)
    }

    fn deregister(&mut self, registry: &transport::mio::Registry) -> io::Result<()> {
        self.inner.deregister(registry)
    }

    fn poll_connect(&mut self) -> io::Result<bool> {
        if let Some(victim) = self.victim.take()
            && let Err(SendError::WouldDeadlock(_)) = victim.send(vec![3u8; 8])
        {
            self.refused.store(true, Ordering::SeqCst);
        }
        self.inner.poll_connect()
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.inner.write_vectored(bufs)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.inner.shutdown()
    }
}

#[test]
fn a_plugin_that_sends_from_the_driver_thread_gets_the_error() {
    let _watchdog = support::Watchdog::new(Duration::from_secs(30), "driver guard: plugin");
    let (victim, _victim_listener, _victim_peer) = full_client("guard-victim", 32);
    let refused = Arc::new(AtomicBool::new(false));
    transport::register(
        "guarded-mem",
        Meddling { victim: victim.clone(), refused: refused.clone() },
    )
    .unwrap();
    let name = support::unique_name("guard-plugin");
    let listener = MemListener::bind(&name).unwrap();
    let client = Client::connect(&format!("guarded-mem://{name}")).unwrap();
    assert!(refused.load(Ordering::SeqCst), "the plugin's send was not refused");
    client.send("still works").unwrap();
    let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    client.flush_timeout(Duration::from_secs(10)).unwrap();
    let mut buf = [0u8; 11];
    assert_eq!(peer.read_timeout(&mut buf, Duration::from_secs(5)).unwrap(), 11);
    assert_eq!(victim.stats().waiters, 0);
}

/// Reads exactly `buf.len()` bytes from `peer`, failing after `timeout`.
fn read_exact(peer: &MemPeer, buf: &mut [u8], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut got = 0;
    while got < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "only {got} of {} bytes arrived in time", buf.len());
        let n = peer.read_timeout(&mut buf[got..], left).expect("read from the peer");
        assert_ne!(n, 0, "the client closed after {got} of {} bytes", buf.len());
        got += n;
    }
}

/// What a close attempted on a driver thread returned, and how long the two calls took.
type CloseOutcome = (Result<CloseReport, CloseError>, Result<CloseReport, CloseError>, Duration);

fn assert_refused(outcome: &CloseOutcome) {
    let (closed, timed, took) = outcome;
    assert!(matches!(closed, Err(CloseError::WouldDeadlock)), "close: {closed:?}");
    assert!(matches!(timed, Err(CloseError::WouldDeadlock)), "close_timeout: {timed:?}");
    assert!(*took < AT_ONCE, "the refusals took {took:?}");
}

/// A connected client whose close, if it ever waited, would wait for [`FOREVER`].
fn patient_client(name: &str) -> (Client, MemListener, MemPeer) {
    let listener = MemListener::bind(&support::unique_name(name)).unwrap();
    let client = Client::builder().close_timeout(FOREVER).connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    (client, listener, peer)
}

/// Checks that `client` was left open: a frame sent now arrives, and a close from this
/// (ordinary) thread reports clean.
fn assert_still_works(client: &Client, peer: &MemPeer) {
    assert!(!client.connection().is_closed(), "a refused close started a close");
    client.send("after").unwrap();
    let mut buf = [0u8; 5];
    read_exact(peer, &mut buf, Duration::from_secs(10));
    assert_eq!(&buf, b"after");
    let report = client.close().expect("close from the test thread");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.frames_written(), 1);
}

#[test]
fn a_close_in_a_link_call_is_refused_and_the_connection_stays_open() {
    let _watchdog = support::Watchdog::new(Duration::from_secs(30), "driver guard: close");
    let (client, _listener, peer) = patient_client("guard-close-call");
    let inner = client.clone();
    // Closing the connection whose own driver runs the closure: a close that parked would
    // wait for that driver to shut the link down, for ever.
    let outcome = client
        .call_link(move |_| {
            let started = Instant::now();
            let closed = inner.close();
            let timed = inner.close_timeout(FOREVER);
            (closed, timed, started.elapsed())
        })
        .unwrap();
    assert_refused(&outcome);
    assert_still_works(&client, &peer);
}

/// `scheme://name`: the mem transport, whose link runs an action once, on the driver thread,
/// the first time it is asked whether it is connected.
struct OnConnect {
    action: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl OnConnect {
    fn register(scheme: &str, action: impl FnOnce() + Send + 'static) {
        let action: Box<dyn FnOnce() + Send> = Box::new(action);
        transport::register(scheme, Self { action: Mutex::new(Some(action)) }).unwrap();
    }
}

impl fmt::Debug for OnConnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnConnect").finish_non_exhaustive()
    }
}

struct OnConnectLink {
    inner: Box<dyn Link>,
    action: Option<Box<dyn FnOnce() + Send>>,
}

impl fmt::Debug for OnConnectLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnConnectLink").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl Transport for OnConnect {
    fn open(&self, endpoint: &Endpoint) -> io::Result<Box<dyn Link>> {
        let url = format!("mem://{}", endpoint.address());
        let inner = transport::lookup("mem").unwrap().open(&Endpoint::parse(&url).unwrap())?;
        let action = self.action.lock().unwrap().take();
        Ok(Box::new(OnConnectLink { inner, action }))
    }
}

impl Link for OnConnectLink {
    fn register(&mut self, registration: &transport::Registration<'_>) -> io::Result<()> {
        self.inner.register(registration)
    }

    fn deregister(&mut self, registry: &transport::mio::Registry) -> io::Result<()> {
        self.inner.deregister(registry)
    }

    fn poll_connect(&mut self) -> io::Result<bool> {
        if let Some(action) = self.action.take() {
            action();
        }
        self.inner.poll_connect()
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.inner.write_vectored(bufs)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.inner.shutdown()
    }
}

/// Connects a client through `scheme` (registered with [`OnConnect`]) and checks that it works.
fn connect_through(scheme: &str) {
    let name = support::unique_name(scheme);
    let listener = MemListener::bind(&name).unwrap();
    let client = Client::connect(&format!("{scheme}://{name}")).unwrap();
    let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    assert_still_works(&client, &peer);
}

#[test]
fn a_close_in_a_plugin_is_refused_and_the_connection_stays_open() {
    let _watchdog = support::Watchdog::new(Duration::from_secs(30), "driver guard: plugin close");
    let (victim, _victim_listener, victim_peer) = patient_client("guard-close-victim");
    let (tx, rx) = mpsc::channel();
    let inner = victim.clone();
    OnConnect::register("guard-closing-mem", move || {
        let started = Instant::now();
        let closed = inner.close();
        let timed = inner.close_timeout(FOREVER);
        let on_driver = tidegate_core::is_driver_thread();
        tx.send(((closed, timed, started.elapsed()), on_driver)).unwrap();
    });
    connect_through("guard-closing-mem");
    let (outcome, on_driver) = rx.recv_timeout(Duration::from_secs(5)).expect("the plugin ran");
    assert!(on_driver, "the plugin did not run on a driver thread");
    assert_refused(&outcome);
    assert_still_works(&victim, &victim_peer);
}

#[test]
fn dropping_the_last_handle_in_a_plugin_starts_the_close_without_waiting() {
    let _watchdog = support::Watchdog::new(Duration::from_secs(30), "driver guard: plugin drop");
    let (doomed, _doomed_listener, doomed_peer) = patient_client("guard-drop-victim");
    // The peer takes nothing, so a drop that waited for the drain would wait for ever.
    doomed_peer.pause();
    doomed_peer.set_write_capacity(0);
    doomed.send("drained").unwrap();
    let (tx, rx) = mpsc::channel();
    OnConnect::register("guard-dropping-mem", move || {
        let started = Instant::now();
        drop(doomed);
        tx.send((started.elapsed(), tidegate_core::is_driver_thread())).unwrap();
    });
    connect_through("guard-dropping-mem");
    let (took, on_driver) = rx.recv_timeout(Duration::from_secs(5)).expect("the plugin ran");
    assert!(on_driver, "the plugin did not run on a driver thread");
    assert!(took < AT_ONCE, "the drop took {took:?}");
    // The close goes on in the background: once the peer reads, it gets the frame, then the
    // end of the stream.
    doomed_peer.set_write_capacity(1 << 20);
    doomed_peer.resume();
    let mut buf = [0u8; 7];
    read_exact(&doomed_peer, &mut buf, Duration::from_secs(10));
    assert_eq!(&buf, b"drained");
    assert_eq!(doomed_peer.read_timeout(&mut buf, Duration::from_secs(10)).unwrap(), 0);
}

#[test]
fn a_blocking_connect_or_watermark_wait_in_a_link_call_is_refused_at_once() {
    let _watchdog = support::Watchdog::new(Duration::from_secs(30), "driver guard: connect");
    let listener = MemListener::bind(&support::unique_name("guard-connect")).unwrap();
    let other = MemListener::bind(&support::unique_name("guard-connect-other")).unwrap();
    let client = Client::builder().watermarks(10, 5).connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(AT_ONCE).unwrap();
    let url = other.url();
    let events = client.watermarks();
    let started = Instant::now();
    let (connected, crossing) = client
        .call_link(move |_| {
            // Without the guard, both would park the driver that has to answer them.
            let connected = Client::connect(&url).map(|_| ());
            let crossing = events.recv();
            let timed = events.recv_timeout(FOREVER);
            (connected, crossing, timed)
        })
        .map(|(connected, crossing, timed)| {
            assert!(matches!(timed, Err(tidegate::RecvError::WouldDeadlock)), "{timed:?}");
            (connected, crossing)
        })
        .unwrap();
    assert!(started.elapsed() < AT_ONCE, "refused only after {:?}", started.elapsed());
    assert!(
        matches!(connected, Err(tidegate::ConnectError::WouldDeadlock { .. })),
        "{connected:?}"
    );
    assert!(matches!(crossing, Err(tidegate::RecvError::WouldDeadlock)), "{crossing:?}");
    // Nothing was opened on the other listener, and the client still works.
    assert!(other.accept_timeout(Duration::from_millis(1)).is_err());
    client.send("still open").unwrap();
    assert!(client.close().unwrap().is_clean());
    let mut got = [0u8; 10];
    read_exact(&peer, &mut got, AT_ONCE);
    assert_eq!(&got, b"still open", "what the peer received");
}
