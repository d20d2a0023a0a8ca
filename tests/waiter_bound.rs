//! The optional bound on waiting senders: past it, a sender gets its frame back in a typed
//! error at once instead of parking.

mod support;

use std::thread;
use std::time::Duration;

use tidegate::transport::mem::MemListener;
use tidegate::{Client, SendError};

#[test]
fn a_sender_past_the_bound_gets_its_frame_back_at_once() {
    let _watchdog = support::Watchdog::new(Duration::from_secs(30), "waiter bound");
    let listener = MemListener::bind(&support::unique_name("waiter-bound")).unwrap();
    let client = Client::builder().capacity(16).max_waiters(2).connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    peer.pause();
    client.send(vec![0u8; 16]).unwrap();
    let waiting: Vec<_> = (1..=2u8)
        .map(|i| {
            let sender = client.clone();
            let handle = thread::spawn(move || sender.send(vec![i; 8]));
            let n = usize::from(i);
            assert!(support::wait_until(Duration::from_secs(10), || client.stats().waiters == n));
            handle
        })
        .collect();
    match client.send_timeout(vec![9u8; 8], Duration::from_secs(30)) {
        Err(SendError::TooManyWaiters(frame)) => assert_eq!(&frame[..], &[9u8; 8]),
        other => panic!("expected TooManyWaiters, got {other:?}"),
    }
    // `try_send` is unaffected: it never waits, and reports a full buffer.
    assert!(client.try_send(vec![9u8; 1]).unwrap_err().is_full());
    peer.resume();
    for handle in waiting {
        handle.join().unwrap().unwrap();
    }
    client.flush_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(client.stats().bytes_written, 32);
}
