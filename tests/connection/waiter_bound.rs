//! The optional bound on waiting senders: past it, a sender gets its frame back in a typed
//! error at once instead of parking. "At once" is checked with a deadline far below the
//! watchdog's, so a sender that parks instead fails the test with a message.

use std::time::{Duration, Instant};

use tidegate::transport::mem::MemListener;
use tidegate::{Client, SendError};

use crate::support::{self, join_within, wait_until};

/// Every wait for a condition.
const WAIT: Duration = Duration::from_secs(5);
/// The last line of defence, well past every wait above.
const WATCHDOG: Duration = Duration::from_secs(30);

#[test]
fn a_sender_past_the_bound_gets_its_frame_back_at_once() {
    let _watchdog = support::Watchdog::new(WATCHDOG, "waiter bound");
    let listener = MemListener::bind(&support::unique_name("waiter-bound")).unwrap();
    let client = Client::builder().capacity(16).max_waiters(2).connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(WAIT).unwrap();
    peer.pause();
    client.send(vec![0u8; 16]).unwrap();
    let waiting: Vec<_> = (1..=2u8)
        .map(|i| {
            let sender = client.clone();
            let handle = std::thread::spawn(move || sender.send(vec![i; 8]));
            let n = usize::from(i);
            assert!(wait_until(WAIT, || client.stats().waiters == n), "sender {i} never waited");
            handle
        })
        .collect();

    // The third sender may wait far longer than the test does: only the bound can make it
    // return within `WAIT`.
    let third = {
        let sender = client.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            (sender.send_timeout(vec![9u8; 8], 10 * WATCHDOG), start.elapsed())
        })
    };
    let (result, elapsed) = join_within(third, WAIT, "the sender past the bound");
    match result {
        Err(SendError::TooManyWaiters(frame)) => assert_eq!(&frame[..], &[9u8; 8]),
        other => panic!("expected TooManyWaiters, got {other:?}"),
    }
    assert!(elapsed < WAIT, "it returned after {elapsed:?}");
    assert_eq!(client.stats().waiters, 2, "it never joined the line");
    // `try_send` is unaffected: it never waits, and reports a full buffer.
    assert!(client.try_send(vec![9u8; 1]).unwrap_err().is_full());
    peer.resume();
    for handle in waiting {
        join_within(handle, WAIT, "a waiting sender").unwrap();
    }
    client.flush_timeout(WAIT).unwrap();
    assert_eq!(client.stats().bytes_written, 32);
}
