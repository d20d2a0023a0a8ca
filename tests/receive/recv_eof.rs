//! The receive side's waiting and ending rules, over `mem://` (deterministic) in both facades:
//! data that arrived before a clean close is delivered, then a clean end; a reset after data
//! gives the data, then the typed error; receive timeouts; `try_recv` on an empty buffer;
//! receiving after the application's own close; a waiting receiver is woken by data, by the
//! end of the stream, by a reset and by its deadline, and not at all while nothing arrives;
//! receivers are served in arrival order and one that leaves loses no data.

use std::task::Poll;
use std::time::{Duration, Instant};

use tidegate::transport::mem::{MemListener, MemPeer};
use tidegate::{AsyncClient, Client, Config, Connection, DisconnectKind, RecvError, TryRecvError};

use crate::support::{WakeCounter, unique_name, wait_until};

const WAIT: Duration = Duration::from_secs(10);

fn connect(prefix: &str) -> (MemListener, Client, MemPeer) {
    let listener = MemListener::bind(&unique_name(prefix)).unwrap();
    let client = Client::connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(WAIT).unwrap();
    (listener, client, peer)
}

/// Receives until the end, concatenating the chunks; returns them and how it ended.
fn drain(client: &Client) -> (Vec<u8>, Result<(), RecvError>) {
    let mut all = Vec::new();
    for _ in 0..10_000 {
        match client.recv_timeout(WAIT) {
            Ok(Some(chunk)) => all.extend_from_slice(&chunk),
            Ok(None) => return (all, Ok(())),
            Err(err) => return (all, Err(err)),
        }
    }
    panic!("the stream never ended");
}

#[test]
fn data_before_a_clean_close_is_delivered_then_a_clean_end() {
    let (_listener, client, peer) = connect("recv-eof-clean");
    peer.write(b"first ");
    peer.write(b"second");
    peer.close();
    let (data, end) = drain(&client);
    assert_eq!(data, b"first second");
    end.unwrap();
    assert_eq!(client.recv().unwrap(), None, "the end is sticky");
    assert_eq!(client.try_recv().unwrap(), None);
    let stats = client.stats();
    assert_eq!((stats.bytes_received, stats.bytes_delivered, stats.inbound_held), (12, 12, 0));
}

#[test]
fn a_reset_after_data_gives_the_data_then_the_typed_error() {
    let (_listener, client, peer) = connect("recv-eof-reset");
    peer.write(b"before the reset");
    peer.reset();
    let (data, end) = drain(&client);
    assert_eq!(data, b"before the reset");
    match end {
        Err(RecvError::Disconnected(cause)) => assert_eq!(cause.kind(), DisconnectKind::Reset),
        other => panic!("expected the reset: {other:?}"),
    }
    assert!(client.recv().unwrap_err().is_disconnected(), "the error is sticky");
    assert!(matches!(client.try_recv(), Err(TryRecvError::Disconnected(_))));
}

#[test]
fn recv_timeout_returns_timeout_no_earlier_than_asked() {
    let (_listener, client, _peer) = connect("recv-eof-timeout");
    let started = Instant::now();
    let err = client.recv_timeout(Duration::from_millis(50)).unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(client.stats().receivers, 0, "a timed-out receiver leaves the line");
}

#[test]
fn try_recv_on_an_empty_buffer_is_empty_then_returns_what_arrives() {
    let (_listener, client, peer) = connect("recv-eof-try");
    assert!(client.try_recv().unwrap_err().is_empty());
    peer.write(b"now");
    assert!(wait_until(WAIT, || client.stats().inbound_held == 3));
    assert_eq!(client.try_recv().unwrap().unwrap(), "now");
    assert!(client.try_recv().unwrap_err().is_empty());
}

#[test]
fn after_its_own_close_the_client_receives_what_was_buffered_then_the_end() {
    let (_listener, client, peer) = connect("recv-eof-own-close");
    peer.write(b"late ack");
    assert!(wait_until(WAIT, || client.stats().inbound_held == 8));
    let report = client.close().expect("close");
    assert!(report.is_clean(), "{report:?}");
    let (data, end) = drain(&client);
    assert_eq!(data, b"late ack");
    end.unwrap();
}

#[test]
fn a_blocking_recv_on_a_driver_thread_refuses_to_park() {
    let (_listener, client, _peer) = connect("recv-eof-driver");
    let inner = client.clone();
    let result = client.call_link(move |_| inner.recv()).unwrap();
    assert!(matches!(result, Err(RecvError::WouldDeadlock)), "{result:?}");
    assert_eq!(client.stats().receivers, 0);
}

/// Polls `op` with a counting waker: pending, not woken while nothing arrives, woken once by
/// `event`, then ready with what `check` expects.
fn woken_by(
    prefix: &str,
    deadline: Option<Duration>,
    event: impl FnOnce(&MemPeer),
    check: impl FnOnce(Result<Option<tidegate::Bytes>, RecvError>),
) {
    let listener = MemListener::bind(&unique_name(prefix)).unwrap();
    let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    let peer = listener.accept_timeout(WAIT).unwrap();
    futures::executor::block_on(conn.connected()).unwrap();
    let (count, waker) = WakeCounter::new();
    let mut op = conn.recv(deadline.map(|d| Instant::now() + d));
    assert!(op.poll_with(&waker).is_pending());
    if deadline.is_none() {
        // Nothing arrives: the receiver is not woken (it does not spin or poll).
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(count.count(), 0, "woken while nothing arrived");
    }
    event(&peer);
    assert!(wait_until(WAIT, || count.count() > 0), "the receiver was never woken");
    match op.poll_with(&waker) {
        Poll::Ready(result) => check(result),
        Poll::Pending => panic!("woken but not ready"),
    }
    assert_eq!(count.count(), 1, "woken exactly once");
}

#[test]
fn a_waiting_receiver_is_woken_by_data() {
    woken_by(
        "recv-eof-wake-data",
        None,
        |peer| peer.write(b"x"),
        |r| {
            assert_eq!(r.unwrap().unwrap(), "x");
        },
    );
}

#[test]
fn a_waiting_receiver_is_woken_by_the_end_of_the_stream() {
    woken_by("recv-eof-wake-eof", None, MemPeer::close, |r| assert_eq!(r.unwrap(), None));
}

#[test]
fn a_waiting_receiver_is_woken_by_a_reset() {
    woken_by("recv-eof-wake-reset", None, MemPeer::reset, |r| {
        assert!(matches!(r, Err(RecvError::Disconnected(c)) if c.kind() == DisconnectKind::Reset));
    });
}

#[test]
fn a_waiting_receiver_is_woken_by_its_deadline() {
    woken_by(
        "recv-eof-wake-deadline",
        Some(Duration::from_millis(30)),
        |_| {},
        |r| {
            assert!(matches!(r, Err(RecvError::Timeout)), "{r:?}");
        },
    );
}

#[test]
fn receivers_are_served_in_arrival_order_and_one_that_leaves_loses_nothing() {
    let listener = MemListener::bind(&unique_name("recv-eof-fifo")).unwrap();
    let conn = Connection::open(&listener.url(), Config::new()).unwrap();
    let peer = listener.accept_timeout(WAIT).unwrap();
    let (first_count, first_waker) = WakeCounter::new();
    let (second_count, second_waker) = WakeCounter::new();
    let mut first = conn.recv(None);
    let mut second = conn.recv(None);
    assert!(first.poll_with(&first_waker).is_pending());
    assert!(second.poll_with(&second_waker).is_pending());
    // A newcomer may not pass them.
    peer.write(b"a");
    assert!(wait_until(WAIT, || first_count.count() == 1));
    assert!(conn.try_recv().unwrap_err().is_empty(), "no barging past waiting receivers");
    assert_eq!(second_count.count(), 0, "only the head is woken");
    // The head leaves without taking anything: the next one gets the data.
    drop(first);
    assert!(wait_until(WAIT, || second_count.count() == 1));
    match second.poll_with(&second_waker) {
        Poll::Ready(Ok(Some(chunk))) => assert_eq!(chunk, "a"),
        other => panic!("the second receiver should get the data: {other:?}"),
    }
    assert_eq!(conn.stats().receivers, 0);
}

#[test]
fn the_async_facade_receives_until_the_end_on_two_executors() {
    for executor in ["futures", "tokio"] {
        let listener = MemListener::bind(&unique_name("recv-eof-async")).unwrap();
        let url = listener.url();
        let peer_thread = std::thread::spawn(move || {
            let peer = listener.accept_timeout(WAIT).unwrap();
            for i in 0..100u8 {
                peer.write(&[i; 10]);
            }
            peer.reset();
        });
        let run = async move {
            let client = AsyncClient::connect(&url).await.unwrap();
            let mut all = Vec::new();
            let end = loop {
                match client.recv_timeout(WAIT).await {
                    Ok(Some(chunk)) => all.extend_from_slice(&chunk),
                    Ok(None) => break Ok(()),
                    Err(err) => break Err(err),
                }
            };
            (all, end)
        };
        let (all, end) = match executor {
            "futures" => futures::executor::block_on(run),
            _ => tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(run),
        };
        peer_thread.join().unwrap();
        let expected: Vec<u8> = (0..100u8).flat_map(|i| [i; 10]).collect();
        assert_eq!(all, expected, "{executor}");
        assert!(matches!(end, Err(RecvError::Disconnected(_))), "{executor}: {end:?}");
    }
}
