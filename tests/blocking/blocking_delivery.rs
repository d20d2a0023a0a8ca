//! Byte-exact delivery through the blocking facade (invariants 1, 2 and 7): four producer threads
//! push over 100 MB of frames of varied sizes through a 64 KiB buffer to a loopback TCP sink
//! that checks every byte, that no frame is torn or interleaved, and that each producer's frames
//! arrive in order — while the sink stalls now and then.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tidegate::Client;

use crate::support::{Lcg, TcpSink, Watchdog, frame, join_within};

const LONG: Duration = Duration::from_secs(60);
const CAPACITY: usize = 64 * 1024;
const PRODUCERS: u32 = 4;
/// Bytes each producer sends, at least.
const PER_PRODUCER: u64 = 25 * 1024 * 1024;
/// Stall/resume cycles of the sink, at most.
const STALLS: usize = 20;

#[test]
fn every_byte_arrives_whole_and_in_order_through_stalls() {
    let _watchdog = Watchdog::new(Duration::from_secs(120), "delivery");
    let started = Instant::now();
    let sink = TcpSink::start();
    let client = Client::builder().capacity(CAPACITY).connect(&sink.url()).unwrap();

    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let client = client.clone();
            thread::spawn(move || {
                let mut rng = Lcg::new(u64::from(p) + 1);
                let (mut bytes, mut seq) = (0u64, 0u64);
                while bytes < PER_PRODUCER {
                    let len = rng.range(16, 8192);
                    client.send(frame(p, seq, len)).expect("send");
                    bytes += len as u64;
                    seq += 1;
                }
                (seq, bytes)
            })
        })
        .collect();

    // Stall the sink a bounded number of times while the producers run.
    let done = AtomicBool::new(false);
    let (stalls, results) = thread::scope(|scope| {
        let controller = scope.spawn(|| {
            let mut stalls = 0;
            while stalls < STALLS && !done.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(15));
                sink.stall();
                stalls += 1;
                thread::sleep(Duration::from_millis(10));
                sink.resume();
            }
            stalls
        });
        let results: Vec<(u64, u64)> =
            producers.into_iter().map(|p| join_within(p, LONG, "a producer")).collect();
        done.store(true, Ordering::SeqCst);
        (controller.join().unwrap(), results)
    });
    assert!(stalls > 0, "the sink never stalled");

    let frames: u64 = results.iter().map(|r| r.0).sum();
    let bytes: u64 = results.iter().map(|r| r.1).sum();
    let report = client.close_timeout(LONG).expect("close");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.bytes_written(), bytes);
    assert_eq!(report.frames_written(), frames);
    let stats = client.stats();
    assert!(stats.high_water <= CAPACITY, "{stats:?}");
    assert!(stats.sends_waited > 0, "the buffer never filled: {stats:?}");

    let seen = sink.finish(LONG);
    assert_eq!(seen.error, None);
    assert_eq!(seen.verifier.bytes, bytes);
    assert_eq!(seen.verifier.frames, frames);
    assert!(seen.verifier.at_boundary());
    for (p, (count, _)) in results.iter().enumerate() {
        assert_eq!(seen.verifier.next_seq()[&(p as u32)], *count, "producer {p}");
    }
    eprintln!(
        "{frames} frames, {bytes} bytes, {stalls} stalls, {} sends waited, in {:?}",
        stats.sends_waited,
        started.elapsed()
    );
}
