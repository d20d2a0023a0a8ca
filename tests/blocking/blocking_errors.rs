//! Misuse and failure to connect give clear, typed errors through the blocking facade, at once
//! and never as a hang (invariant 1's "a frame larger than the capacity gets a clear error"):
//! frames too large or empty, sends after close, refused connections, bad URLs, unknown
//! schemes, unusable settings and connect timeouts. Every send error hands the frame back.

use std::error::Error;
use std::io;
use std::time::{Duration, Instant};

use tidegate::codec::LengthDelimited;
use tidegate::transport::mem::MemListener;
use tidegate::transport::{self, Endpoint, Link, Registration, Transport};
use tidegate::{
    Bytes, Client, Config, ConnectError, DisconnectKind, FrameLimit, SendError, TrySendError,
};

use crate::support::{self, Watchdog, frame};

const LONG: Duration = Duration::from_secs(20);

fn client(prefix: &str, capacity: usize) -> (MemListener, Client) {
    let listener = MemListener::bind(&support::unique_name(prefix)).unwrap();
    let client = Client::builder().capacity(capacity).connect(&listener.url()).unwrap();
    (listener, client)
}

#[test]
fn a_frame_larger_than_the_capacity_is_refused_at_once() {
    let _watchdog = Watchdog::new(LONG, "too large");
    let (_listener, client) = client("err-large", 64);
    let big = frame(1, 0, 65);
    let start = Instant::now();
    for err in [
        client.send(big.clone()).unwrap_err(),
        client.send_timeout(big.clone(), Duration::from_secs(3600)).unwrap_err(),
    ] {
        let SendError::TooLarge { frame, max_len: capacity, .. } = &err else {
            panic!("expected TooLarge, got {err:?}");
        };
        assert_eq!((frame, *capacity), (&big, 64));
        assert!(!err.is_closed() && !err.is_timeout());
        assert!(err.to_string().contains("64"), "{err}");
        assert!(err.to_string().contains("larger than"), "{err}");
        assert!(err.source().is_none());
        assert_eq!(err.into_inner(), big);
    }
    let err = client.try_send(big.clone()).unwrap_err();
    assert!(matches!(&err, TrySendError::TooLarge { max_len: 64, .. }), "{err:?}");
    assert!(!err.is_full());
    assert!(err.to_string().contains("64"), "{err}");
    assert_eq!(err.into_inner(), big);
    assert!(start.elapsed() < Duration::from_secs(5), "refusing must not wait");
    // A frame of exactly the capacity is fine.
    client.send(frame(1, 1, 64)).unwrap();
    let stats = client.stats();
    assert_eq!((stats.frames_accepted, stats.bytes_accepted), (1, 64));
    assert!(client.close_timeout(LONG).expect("close").is_clean());
}

#[test]
fn a_frame_too_large_names_the_limit_it_ran_into() {
    let listener = MemListener::bind(&support::unique_name("err-limits")).unwrap();
    // The codec's maximum, far below the capacity of 1 MiB.
    let codec = LengthDelimited::new().max_frame_len(1000);
    let client = Client::builder().framing(codec).connect(&listener.url()).unwrap();
    let err = client.send(vec![1u8; 1001]).unwrap_err();
    assert!(matches!(err, SendError::TooLarge { max_len: 1000, limit: FrameLimit::Codec, .. }));
    assert_eq!(
        err.to_string(),
        "frame is larger than the codec's max_frame_len, which allows 1000 bytes at most"
    );
    // The capacity, less the urgent reserve for a data frame.
    let client =
        Client::builder().capacity(100).urgent_reserve(10).connect(&listener.url()).unwrap();
    let err = client.try_send(vec![1u8; 91]).unwrap_err();
    assert!(matches!(err, TrySendError::TooLarge { max_len: 90, limit: FrameLimit::Capacity, .. }));
    assert!(err.to_string().contains("capacity (less the urgent reserve"), "{err}");
    client.send_urgent(vec![1u8; 91]).unwrap();
}

#[test]
fn an_empty_frame_is_refused() {
    let (_listener, client) = client("err-empty", 64);
    let err = client.send(Bytes::new()).unwrap_err();
    assert!(matches!(err, SendError::Empty(_)), "{err:?}");
    assert_eq!(err.to_string(), "frame is empty");
    let err = client.send_timeout(Bytes::new(), Duration::from_secs(1)).unwrap_err();
    assert!(matches!(err, SendError::Empty(_)), "{err:?}");
    let err = client.try_send(Bytes::new()).unwrap_err();
    assert!(matches!(err, TrySendError::Empty(_)), "{err:?}");
    assert_eq!(client.stats().frames_accepted, 0);
    assert!(client.close_timeout(LONG).expect("close").is_clean());
}

#[test]
fn sends_after_close_return_the_frame() {
    let _watchdog = Watchdog::new(LONG, "closed");
    let (_listener, client) = client("err-closed", 1024);
    let other = client.clone();
    client.send(frame(1, 0, 100)).unwrap();
    let report = client.close_timeout(LONG).expect("close");
    assert!(report.is_clean(), "{report:?}");
    assert!(client.connection().is_closed());

    let f = frame(1, 1, 100);
    for err in [
        client.send(f.clone()).unwrap_err(),
        other.send(f.clone()).unwrap_err(),
        other.send_timeout(f.clone(), Duration::from_secs(3600)).unwrap_err(),
    ] {
        assert!(matches!(&err, SendError::Closed(back) if *back == f), "{err:?}");
        assert!(err.is_closed());
        assert_eq!(err.to_string(), "sending on a closed connection");
    }
    let err = other.try_send(f.clone()).unwrap_err();
    assert!(matches!(&err, TrySendError::Closed(_)), "{err:?}");
    assert!(err.is_closed() && !err.is_full());
    assert_eq!(err.into_inner(), f);
    // A frame that could never fit still says so after close; an empty one likewise.
    assert!(matches!(client.send(frame(1, 2, 2000)), Err(SendError::TooLarge { .. })));
    assert_eq!(client.stats().frames_accepted, 1);
    // Closing again is harmless.
    assert!(other.close_timeout(LONG).expect("close").unsent().is_empty());
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    let _watchdog = Watchdog::new(LONG, "refused");
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let start = Instant::now();
    let err = Client::connect(&format!("tcp://127.0.0.1:{port}")).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5), "a refusal is immediate");
    let ConnectError::Failed { cause, .. } = &err else {
        panic!("expected ConnectError::Failed, got {err:?}");
    };
    assert_eq!(cause.kind(), DisconnectKind::ConnectFailed);
    assert_eq!(cause.io_error().map(io::Error::kind), Some(io::ErrorKind::ConnectionRefused));
    // One line names the URL and says what the operating system said; nothing repeats it.
    let os = cause.io_error().unwrap().to_string();
    assert!(os.contains("refused"), "{os}");
    assert_eq!(err.to_string(), format!("could not connect to tcp://127.0.0.1:{port}: {os}"));
    assert!(err.source().is_none(), "the OS error's words are in the line already");
    assert!(!err.is_timeout());
}

#[test]
fn every_connect_error_names_its_url_and_its_cause_in_one_line() {
    let _watchdog = Watchdog::new(LONG, "error texts");
    let said = |url: &str| {
        let err = Client::connect(url).unwrap_err();
        let text = support::chain(&err);
        support::assert_said_once(&text);
        (err, text)
    };
    let (err, text) = said("tcp://127.0.0.1");
    assert!(matches!(err, ConnectError::Io { .. }), "{err:?}");
    assert_eq!(
        text,
        "could not open a link to tcp://127.0.0.1: missing port in \"127.0.0.1\" \
         (expected host:port, or [v6 address]:port)"
    );
    let (_, text) = said("tcp://[::1]");
    assert!(text.contains("missing port"), "{text}");
    let (_, text) = said("localhost:6379");
    assert_eq!(text, "invalid URL \"localhost:6379\": expected scheme://address");
    let (err, text) = said("gopher://user:secret@example:70");
    assert_eq!(err.url(), "gopher://***@example:70");
    assert!(text.starts_with(
        "no transport is registered for the scheme \"gopher\" of gopher://***@example:70"
    ));
    assert!(!text.contains("secret"), "{text}");
    let name = support::unique_name("nobody");
    let (_, text) = said(&format!("mem://{name}"));
    assert!(text.starts_with(&format!("could not open a link to mem://{name}: ")), "{text}");
}

#[test]
fn malformed_urls_and_unknown_schemes_are_refused() {
    for bad in ["no-scheme", "tcp:/127.0.0.1:1", "tcp://", "://x", "1x://y"] {
        let err = Client::connect(bad).unwrap_err();
        let ConnectError::InvalidUrl { url, reason } = &err else {
            panic!("{bad:?}: expected InvalidUrl, got {err:?}");
        };
        assert_eq!(url, bad);
        assert!(!reason.is_empty());
        assert_eq!(err.url(), bad);
        assert!(err.to_string().contains(bad), "{err}");
    }
    let err = Client::connect("gopher://example:70").unwrap_err();
    let ConnectError::UnknownScheme { scheme, registered, .. } = &err else {
        panic!("expected UnknownScheme, got {err:?}");
    };
    assert_eq!(scheme, "gopher");
    assert!(registered.iter().any(|s| s == "tcp") && registered.iter().any(|s| s == "mem"));
    let text = err.to_string();
    assert!(text.contains("gopher") && text.contains("tcp") && text.contains("mem"), "{text}");
    // No listener is bound to this name.
    let err = Client::connect(&format!("mem://{}", support::unique_name("nobody"))).unwrap_err();
    assert!(
        matches!(&err, ConnectError::Io { error: e, .. } if e.kind() == io::ErrorKind::ConnectionRefused)
    );
}

#[test]
fn a_zero_capacity_is_an_invalid_configuration() {
    let listener = MemListener::bind(&support::unique_name("err-zero")).unwrap();
    let err = Client::builder().capacity(0).connect(&listener.url()).unwrap_err();
    assert!(matches!(err, ConnectError::InvalidConfig { .. }), "{err:?}");
    assert!(err.to_string().contains("capacity"), "{err}");
    let err =
        Client::builder().config(Config::new().capacity(0)).connect(&listener.url()).unwrap_err();
    assert!(matches!(err, ConnectError::InvalidConfig { .. }), "{err:?}");
    assert!(listener.accept_timeout(Duration::from_millis(50)).is_err(), "nothing was opened");
}

/// A link that never completes its connection attempt.
#[derive(Debug)]
struct Pending;

impl Link for Pending {
    fn register(&mut self, _registration: &Registration<'_>) -> io::Result<()> {
        Ok(())
    }
    fn deregister(&mut self, _registry: &transport::mio::Registry) -> io::Result<()> {
        Ok(())
    }
    fn poll_connect(&mut self) -> io::Result<bool> {
        Ok(false)
    }
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
    fn write_vectored(&mut self, _bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
    fn shutdown(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `blackhole://anything`: connections that never come up.
#[derive(Debug)]
struct Blackhole;

impl Transport for Blackhole {
    fn open(&self, _endpoint: &Endpoint) -> io::Result<Box<dyn Link>> {
        Ok(Box::new(Pending))
    }
}

#[test]
fn a_connection_that_never_comes_up_times_out() {
    let _watchdog = Watchdog::new(LONG, "connect timeout");
    transport::register("blackhole", Blackhole).unwrap();
    let timeout = Duration::from_millis(200);
    let start = Instant::now();
    let err = Client::builder().connect_timeout(timeout).connect("blackhole://x").unwrap_err();
    let elapsed = start.elapsed();
    assert!(matches!(err, ConnectError::TimedOut { after: t, .. } if t == timeout), "{err:?}");
    assert!(elapsed >= timeout, "gave up early, after {elapsed:?}");
    assert!(elapsed < timeout + Duration::from_millis(500), "gave up late, after {elapsed:?}");
    assert_eq!(err.to_string(), format!("connecting to blackhole://x timed out after {timeout:?}"));
    assert!(err.is_timeout());
}
