//! Backpressure through the blocking facade (invariant 1, the bound): while the peer does not
//! read, `send` parks and the outgoing buffer never holds more than its capacity; once the peer
//! reads again, every parked send completes and the peer gets every frame, in order.
//!
//! One variant stalls an in-process `mem://` peer (deterministic), the other a loopback TCP
//! sink with small kernel buffers on both sides.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use tidegate::transport::SocketOption;
use tidegate::transport::mem::MemListener;
use tidegate::{Client, Config};

use crate::support::{self, MemSink, TcpSink, Verifier, Watchdog, frame, join_within, wait_until};

const LONG: Duration = Duration::from_secs(20);

/// Samples `stats()` on a thread of its own until stopped, and returns the largest `buffered`
/// and `high_water` it saw.
fn monitor(client: &Client) -> (Arc<AtomicBool>, thread::JoinHandle<(usize, usize)>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (client, halt) = (client.clone(), stop.clone());
    let handle = thread::spawn(move || {
        let (mut buffered, mut high_water) = (0, 0);
        for _ in 0..200_000 {
            let stats = client.stats();
            buffered = buffered.max(stats.buffered);
            high_water = high_water.max(stats.high_water);
            if halt.load(Ordering::SeqCst) {
                break;
            }
            thread::sleep(Duration::from_micros(200));
        }
        (buffered, high_water)
    });
    (stop, handle)
}

#[test]
fn send_blocks_at_capacity_and_resumes_when_the_mem_peer_reads() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "mem backpressure");
    const CAPACITY: usize = 4096;
    const PRODUCERS: u32 = 4;
    const FRAMES: u64 = 40;
    const LEN: usize = 500;

    let listener = MemListener::bind(&support::unique_name("bp-mem")).unwrap();
    let client = Client::builder().capacity(CAPACITY).connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    peer.pause();
    let (stop, sampler) = monitor(&client);

    let done = Arc::new(AtomicU64::new(0));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (client, done) = (client.clone(), done.clone());
            thread::spawn(move || {
                for seq in 0..FRAMES {
                    client.send(frame(p, seq, LEN)).expect("send");
                    done.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();

    // Every producer ends up parked: the buffer is full and nothing leaves it.
    assert!(
        wait_until(LONG, || client.stats().waiters == PRODUCERS as usize),
        "all producers should park; stats: {:?}",
        client.stats()
    );
    let stats = client.stats();
    let fit = (CAPACITY / LEN) as u64;
    assert_eq!(stats.frames_accepted, fit, "exactly as many frames as fit were accepted");
    assert_eq!(stats.buffered, fit as usize * LEN);
    assert!(stats.high_water <= CAPACITY);
    assert_eq!(stats.bytes_written, 0, "the paused peer took nothing");
    assert_eq!(done.load(Ordering::SeqCst), fit, "only the accepted sends returned");
    assert!(producers.iter().all(|p| !p.is_finished()));
    // Parked senders stay parked while the peer stays paused.
    thread::sleep(Duration::from_millis(50));
    assert_eq!(done.load(Ordering::SeqCst), fit);
    assert_eq!(client.stats().frames_accepted, fit);

    let sink = MemSink::start(peer, Verifier::new());
    sink.peer().resume();
    for producer in producers {
        join_within(producer, LONG, "a producer");
    }
    let report = client.close_timeout(LONG).expect("close");
    assert!(report.is_clean(), "{report:?}");
    let total = u64::from(PRODUCERS) * FRAMES;
    assert_eq!(report.frames_written(), total);
    assert_eq!(report.bytes_written(), total * LEN as u64);

    stop.store(true, Ordering::SeqCst);
    let (max_buffered, max_high_water) = join_within(sampler, LONG, "the stats sampler");
    assert!(max_buffered <= CAPACITY, "buffered reached {max_buffered}");
    assert!(max_high_water <= CAPACITY, "high_water reached {max_high_water}");
    let stats = client.stats();
    assert!(stats.high_water <= CAPACITY && stats.high_water > CAPACITY - LEN, "{stats:?}");
    assert_eq!(stats.waiters, 0);
    assert!(stats.sends_waited > 0);

    let seen = sink.finish(LONG);
    assert_eq!(seen.error, None);
    assert_eq!(seen.verifier.frames, total);
    assert!(seen.verifier.at_boundary());
    for p in 0..PRODUCERS {
        assert_eq!(seen.verifier.next_seq()[&p], FRAMES, "producer {p} lost frames");
    }
}

#[test]
fn send_blocks_at_capacity_against_a_stalled_tcp_peer() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "tcp backpressure");
    const CAPACITY: usize = 16 * 1024;
    const PRODUCERS: u32 = 3;
    const FRAMES: u64 = 400;
    const LEN: usize = 1000;

    let sink = TcpSink::start_with(Verifier::new(), Some(4096));
    sink.stall();
    let config = Config::new().capacity(CAPACITY).socket_option(SocketOption::SendBufferSize(4096));
    let client = Client::builder().config(config).connect(&sink.url()).unwrap();
    let (stop, sampler) = monitor(&client);

    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let client = client.clone();
            thread::spawn(move || {
                for seq in 0..FRAMES {
                    client.send(frame(p, seq, LEN)).expect("send");
                }
            })
        })
        .collect();

    // The kernel buffers fill, then the outgoing buffer, then the producers park.
    assert!(
        wait_until(LONG, || client.stats().waiters == PRODUCERS as usize),
        "all producers should park; stats: {:?}",
        client.stats()
    );
    let stats = client.stats();
    assert!(stats.buffered <= CAPACITY && stats.buffered > CAPACITY - LEN, "{stats:?}");
    let total = u64::from(PRODUCERS) * FRAMES;
    assert!(stats.frames_accepted < total / 2, "the stall pushed back early: {stats:?}");
    assert!(producers.iter().all(|p| !p.is_finished()));

    sink.resume();
    for producer in producers {
        join_within(producer, LONG, "a producer");
    }
    let report = client.close_timeout(LONG).expect("close");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.bytes_written(), total * LEN as u64);

    stop.store(true, Ordering::SeqCst);
    let (max_buffered, max_high_water) = join_within(sampler, LONG, "the stats sampler");
    assert!(max_buffered <= CAPACITY, "buffered reached {max_buffered}");
    assert!(max_high_water <= CAPACITY, "high_water reached {max_high_water}");
    assert!(client.stats().high_water <= CAPACITY);

    let seen = sink.finish(LONG);
    assert_eq!(seen.error, None);
    assert_eq!(seen.verifier.frames, total);
    assert_eq!(seen.verifier.bytes, total * LEN as u64);
    assert!(seen.verifier.at_boundary());
}
