//! Watermarks fire once per crossing, in order, in both facades, and end with the connection.

use std::time::Duration;

use futures::StreamExt;
use tidegate::transport::mem::MemListener;
use tidegate::{AsyncClient, Client, ConnectError, Watermark};

use crate::support;

const CAPACITY: usize = 1000;
const HIGH: usize = 800;
const LOW: usize = 200;

#[test]
fn each_crossing_fires_once_in_order() {
    let _watchdog = support::Watchdog::new(Duration::from_secs(60), "watermarks");
    let listener = MemListener::bind(&support::unique_name("watermarks")).unwrap();
    let client = Client::builder()
        .capacity(CAPACITY)
        .watermarks(HIGH, LOW)
        .connect(&listener.url())
        .unwrap();
    let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    let events = client.watermarks();
    let second = client.watermarks();
    for round in 0..3 {
        peer.pause();
        // Fill in small steps: only the step that reaches the high mark fires.
        for _ in 0..10 {
            client.send(vec![round as u8; 100]).unwrap();
        }
        assert_eq!(events.recv_timeout(Duration::from_secs(5)).unwrap(), Some(Watermark::High));
        assert_eq!(events.try_recv(), None, "one event per crossing");
        peer.resume();
        assert_eq!(events.recv_timeout(Duration::from_secs(5)).unwrap(), Some(Watermark::Low));
        client.flush_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(events.try_recv(), None, "draining further does not fire again");
    }
    // A second subscriber saw the same crossings, in the same order.
    let seen: Vec<_> = std::iter::from_fn(|| second.try_recv()).collect();
    assert_eq!(seen, [Watermark::High, Watermark::Low].repeat(3));
    assert!(client.close().expect("close").is_clean());
    assert_eq!(
        events.recv_timeout(Duration::from_secs(5)).unwrap(),
        None,
        "ends with the connection"
    );
}

#[test]
fn a_late_subscriber_learns_the_buffer_is_above_the_mark() {
    let listener = MemListener::bind(&support::unique_name("watermarks-late")).unwrap();
    let client = Client::builder()
        .capacity(CAPACITY)
        .watermarks(HIGH, LOW)
        .connect(&listener.url())
        .unwrap();
    let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    peer.pause();
    client.send(vec![1u8; HIGH]).unwrap();
    assert_eq!(client.watermarks().try_recv(), Some(Watermark::High));
}

#[test]
fn the_async_stream_yields_the_same_crossings() {
    let listener = MemListener::bind(&support::unique_name("watermarks-async")).unwrap();
    futures::executor::block_on(async {
        let client = AsyncClient::builder()
            .capacity(CAPACITY)
            .watermarks(HIGH, LOW)
            .connect(&listener.url())
            .await
            .unwrap();
        let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
        let mut events = client.watermarks();
        peer.pause();
        client.send(vec![0u8; 900]).await.unwrap();
        assert_eq!(events.next().await, Some(Watermark::High));
        peer.resume();
        assert_eq!(events.next().await, Some(Watermark::Low));
        assert!(client.close().await.unwrap().is_clean());
        assert_eq!(events.next().await, None);
    });
}

#[test]
fn watermarks_must_fit_the_capacity() {
    let listener = MemListener::bind(&support::unique_name("watermarks-bad")).unwrap();
    for (high, low) in [(CAPACITY + 1, LOW), (LOW, HIGH), (HIGH, HIGH)] {
        let err = Client::builder()
            .capacity(CAPACITY)
            .watermarks(high, low)
            .connect(&listener.url())
            .unwrap_err();
        assert!(matches!(err, ConnectError::InvalidConfig { .. }), "{high}/{low}: {err:?}");
    }
}
