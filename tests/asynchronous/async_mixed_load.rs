//! 10,000 async tasks and 4 blocking threads share one connection to a real loopback TCP peer.
//!
//! Proves that both facades queue in one line on one core under load: every byte arrives
//! exactly once, frames are whole and never interleaved (invariant 7), and each producer's
//! frames arrive in the order it sent them, whether the producer is a task or a thread. The
//! peer starts reading only once at least [`QUEUED`] senders wait, so the run goes through the
//! waiting path, not only the fast path; if they never do within [`GATE`], the test fails
//! (after the peer has read everything, so it fails fast instead of timing out). Every wait is
//! bounded, and a watchdog aborts a run that hangs in a wait it cannot bound (a task's
//! `await`, the executor's `block_on`).

use std::io::{ErrorKind, Read};
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use tidegate_async::{AsyncClient, Bytes, Config, Connection};
use tidegate_blocking::Client;
use tidegate_core::transport::SocketOption;

use crate::support::{Watchdog, join_within};

const LONG: Duration = Duration::from_secs(20);
/// The whole run, past which the watchdog aborts the test process.
const WATCHDOG: Duration = Duration::from_secs(120);
/// How many senders must wait in line before the peer starts reading.
const QUEUED: usize = 100;
/// How long the peer waits for them.
const GATE: Duration = Duration::from_secs(10);
const TASKS: u32 = 10_000;
const TASK_FRAMES: u32 = 3;
const THREADS: u32 = 4;
const THREAD_FRAMES: u32 = 2_000;
const HEADER: usize = 12;

/// `[len: u32][producer: u32][seq: u32][payload]`; length and payload follow from the ids.
fn encode(producer: u32, seq: u32) -> Bytes {
    let len = HEADER + (producer.wrapping_mul(7919) ^ seq.wrapping_mul(104_729)) as usize % 129;
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&(len as u32).to_be_bytes());
    f.extend_from_slice(&producer.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend((HEADER..len).map(|i| payload(producer, seq, i)));
    Bytes::from(f)
}

fn payload(producer: u32, seq: u32, i: usize) -> u8 {
    (producer.wrapping_mul(31).wrapping_add(seq.wrapping_mul(7)).wrapping_add(i as u32)) as u8
}

/// What the peer saw.
struct Seen {
    /// The most senders seen waiting before the peer started reading.
    waiting_before_reading: usize,
    bytes: u64,
    /// For each producer, how many frames arrived (each one checked to be the next in order).
    frames: Vec<u32>,
}

/// Accepts one connection and checks every frame until the client closes.
fn peer(listener: TcpListener, client: AsyncClient) -> thread::JoinHandle<Seen> {
    listener.set_nonblocking(true).unwrap();
    thread::spawn(move || {
        let end = Instant::now() + LONG;
        let mut stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < end => {
                    thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("no connection: {e}"),
            }
        };
        stream.set_nonblocking(false).unwrap();
        stream.set_read_timeout(Some(LONG)).unwrap();
        // Let the buffer fill and senders queue before reading. If they never do, read anyway,
        // so the run ends quickly, and let the caller fail on `waiting_before_reading`.
        let gate = Instant::now() + GATE;
        let mut waiting_before_reading = 0;
        while waiting_before_reading < QUEUED && Instant::now() < gate {
            waiting_before_reading = waiting_before_reading.max(client.stats().waiters);
            thread::sleep(Duration::from_millis(1));
        }
        drop(client);

        let mut seen =
            Seen { waiting_before_reading, bytes: 0, frames: vec![0; (TASKS + THREADS) as usize] };
        let mut pending = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = stream.read(&mut buf).expect("the peer's read failed or timed out");
            if n == 0 {
                assert!(pending.is_empty(), "the stream ended inside a frame");
                return seen;
            }
            seen.bytes += n as u64;
            pending.extend_from_slice(&buf[..n]);
            let mut at = 0;
            while pending.len() - at >= HEADER {
                let head = &pending[at..];
                let len = u32::from_be_bytes(head[0..4].try_into().unwrap()) as usize;
                if head.len() < len {
                    break;
                }
                let producer = u32::from_be_bytes(head[4..8].try_into().unwrap());
                let seq = u32::from_be_bytes(head[8..12].try_into().unwrap());
                let next = &mut seen.frames[producer as usize];
                assert_eq!(seq, *next, "producer {producer}: frame out of order");
                assert_eq!(&head[..len], &encode(producer, seq)[..], "frame {producer}/{seq}");
                *next += 1;
                at += len;
            }
            pending.drain(..at);
        }
    })
}

/// Opens one connection, shares it between the tasks `spawn_tasks` runs to completion and
/// [`THREADS`] blocking threads, closes it, and checks what the peer got.
fn run(what: &'static str, spawn_tasks: impl FnOnce(AsyncClient)) {
    let _watchdog = Watchdog::new(WATCHDOG, what);
    let start = Instant::now();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("tcp://{}", listener.local_addr().unwrap());
    // A small buffer and a small socket send buffer, so that many senders wait.
    let config = Config::new()
        .capacity(16 * 1024)
        .socket_option(SocketOption::SendBufferSize(8 * 1024))
        .close_timeout(LONG);
    let conn = Connection::open(&url, config).unwrap();
    let client = AsyncClient::from_connection(conn.clone());
    let blocking = Client::from_connection(conn);
    let peer = peer(listener, client.clone());

    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let blocking = blocking.clone();
            thread::spawn(move || {
                for seq in 0..THREAD_FRAMES {
                    blocking.send_timeout(encode(TASKS + t, seq), LONG).unwrap();
                }
            })
        })
        .collect();
    spawn_tasks(client.clone());
    for thread in threads {
        join_within(thread, LONG, "a blocking producer");
    }

    let report = futures::executor::block_on(client.close_timeout(LONG)).unwrap();
    assert!(report.is_clean(), "{report:?}");
    let stats = client.stats();
    let seen = join_within(peer, LONG, "the peer");
    assert!(
        seen.waiting_before_reading >= QUEUED,
        "only {} senders ever waited in line within {GATE:?} (wanted {QUEUED}): the run did not \
         go through the waiting path",
        seen.waiting_before_reading
    );
    assert!(stats.sends_waited >= QUEUED as u64, "{stats:?}");
    let frames = u64::from(TASKS * TASK_FRAMES + THREADS * THREAD_FRAMES);
    assert_eq!(stats.frames_accepted, frames);
    assert_eq!(report.frames_written(), frames);
    assert_eq!(seen.bytes, report.bytes_written());
    assert_eq!(seen.bytes, stats.bytes_accepted);
    for (producer, &count) in seen.frames.iter().enumerate() {
        let want = if producer < TASKS as usize { TASK_FRAMES } else { THREAD_FRAMES };
        assert_eq!(count, want, "producer {producer}");
    }
    assert!(stats.high_water <= stats.capacity);
    println!(
        "{frames} frames, {} bytes in {:?}; {} sends waited, {:?} waiting in total",
        seen.bytes,
        start.elapsed(),
        stats.sends_waited,
        stats.wait_time
    );
}

/// Sends this task's frames, in order.
async fn produce(client: AsyncClient, producer: u32) {
    for seq in 0..TASK_FRAMES {
        client.send_timeout(encode(producer, seq), LONG).await.unwrap();
    }
}

#[test]
fn ten_thousand_tokio_tasks_and_four_threads_share_one_connection() {
    run("tokio tasks and threads on one connection", |client| {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
        rt.block_on(async {
            let tasks: Vec<_> =
                (0..TASKS).map(|p| tokio::spawn(produce(client.clone(), p))).collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
    });
}

#[test]
fn ten_thousand_async_std_tasks_and_four_threads_share_one_connection() {
    run("async-std tasks and threads on one connection", |client| {
        async_std::task::block_on(async {
            let tasks: Vec<_> =
                (0..TASKS).map(|p| async_std::task::spawn(produce(client.clone(), p))).collect();
            for task in tasks {
                task.await;
            }
        });
    });
}
