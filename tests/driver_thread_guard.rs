//! Blocking calls made on an I/O driver thread (inside a transport plugin or a link call)
//! return a typed error at once instead of parking the thread the driver needs.

mod support;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tidegate::transport::mem::{MemListener, MemPeer};
use tidegate::transport::{self, Endpoint, Link, Transport};
use tidegate::{Client, FlushError, LinkError, SendError};

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
