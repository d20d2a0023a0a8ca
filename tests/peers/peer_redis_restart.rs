//! Reconnection against a real `redis-server` that is killed (SIGKILL) and started again on
//! the same port, durable (`appendonly yes`, `appendfsync always`), while four threads
//! pipeline `RPUSH` commands with sequence numbers through one client. Afterwards the test
//! asks Redis itself what each list holds: every element at most once, in each thread's
//! order, and every command the client did not report (acknowledged or possibly delivered,
//! in its `Disconnected` events) exactly once. The threads record the order the client
//! accepted their commands in, which is the order of the numbers the events give.
//!
//! A restarted Redis listens before it has loaded its file and answers `-LOADING` until
//! then, so the client's handshake hook sends `PING` on every link and counts the link up
//! only at `+PONG`: a command sent to a loading server would be refused.
//!
//! Skipped without `redis-server` (Debian package `redis-server`), except under `CI=true`.

use std::collections::HashSet;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use tidegate::{Bytes, Client, Config, ConnectionEvent, Handshake, Reconnect};

use crate::support::peers::{Redis, require_binary, resp_command};
use crate::support::{Watchdog, join_within, unique_name, wait_until};

const THREADS: usize = 4;
const PER_THREAD: u64 = 20_000;
const KILLS: usize = 3;
const LONG: Duration = Duration::from_secs(30);

/// `PING` on every link; the link is up at `+PONG`. `-LOADING` and other errors fail this
/// attempt only.
struct Ping;

impl Handshake for Ping {
    fn hello(&self) -> Vec<Bytes> {
        vec![Bytes::from(resp_command(&[b"PING"]))]
    }

    fn answer(&self, received: &[u8]) -> io::Result<Option<usize>> {
        let Some(end) = received.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        match &received[..end] {
            b"+PONG" => Ok(Some(end + 2)),
            other => Err(io::Error::other(String::from_utf8_lossy(other).into_owned())),
        }
    }
}

fn key(thread: usize) -> String {
    format!("seq-{thread}")
}

#[test]
fn a_killed_and_restarted_redis_gets_every_command_once_and_in_order() {
    if !require_binary("redis-server", "redis-server") {
        return;
    }
    let _watchdog = Watchdog::new(Duration::from_secs(170), "redis_restart");
    let dir = std::env::temp_dir().join(unique_name("tidegate-redis"));
    std::fs::create_dir_all(&dir).expect("a directory for the append-only file");
    let mut redis = Redis::start_durable(&dir);
    let policy = Reconnect::new()
        .initial_delay(Duration::from_millis(20))
        .max_delay(Duration::from_millis(200))
        .atomic_frames(true);
    let config = Config::new()
        .capacity(64 * 1024)
        .send_timeout(LONG)
        .close_timeout(LONG)
        .discard_inbound(true)
        .handshake(Ping)
        .reconnect(policy);
    let client = Client::builder().config(config).connect(&redis.url()).expect("connect");
    let events = client.events();
    // Which thread's which command each accepted frame was, in the order accepted: one send
    // at a time, so the order is known.
    let accepted: Arc<Mutex<Vec<(usize, u64)>>> = Arc::default();
    let producers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (client, accepted) = (client.clone(), accepted.clone());
            thread::spawn(move || {
                let key = key(t);
                for seq in 0..PER_THREAD {
                    let value = seq.to_string();
                    let command = resp_command(&[b"RPUSH", key.as_bytes(), value.as_bytes()]);
                    let mut accepted = accepted.lock().unwrap_or_else(PoisonError::into_inner);
                    client.send(command).expect("every send succeeds");
                    accepted.push((t, seq));
                }
            })
        })
        .collect();
    for kill in 0..KILLS {
        let before = client.stats().frames_written;
        assert!(
            wait_until(LONG, || client.stats().frames_written > before + 5_000),
            "commands flow before kill {kill}"
        );
        redis.kill();
        assert!(
            wait_until(LONG, || client.stats().disconnects > kill as u64),
            "the client saw kill {kill}"
        );
        redis.restart();
    }
    for producer in producers {
        join_within(producer, LONG * 2, "a producer");
    }
    client.flush_timeout(LONG).expect("flushed to the last server");
    let stats = client.stats();
    let report = client.close_timeout(LONG).expect("close");
    assert!(report.unsent().is_empty(), "{report:?}");

    let mut lost = 0;
    let mut held = 0;
    // The numbers of the frames written whole on a lost link; nothing is cut (atomic frames).
    let mut reported = HashSet::new();
    while let Ok(Some(event)) = events.recv_timeout(LONG) {
        if let ConnectionEvent::Disconnected { acknowledged, possibly_delivered, .. } = event {
            lost += 1;
            assert!(possibly_delivered.cut_frames().is_empty(), "atomic frames are replayed");
            reported.extend(acknowledged.chain(possibly_delivered.written()));
        }
    }
    let accepted = accepted.lock().unwrap_or_else(PoisonError::into_inner).clone();
    assert_eq!(accepted.len() as u64, THREADS as u64 * PER_THREAD);
    let unreported: HashSet<(usize, u64)> = (0u64..)
        .zip(&accepted)
        .filter(|(n, _)| !reported.contains(n))
        .map(|(_, frame)| *frame)
        .collect();
    assert_eq!(lost, KILLS, "one lost link per kill");
    assert_eq!(stats.disconnects, KILLS as u64, "{stats:?}");
    let mut conn = redis.conn();
    for t in 0..THREADS {
        let items = conn.lrange(&key(t), 0, -1);
        let seqs: Vec<u64> = items
            .iter()
            .map(|item| std::str::from_utf8(item).unwrap().parse().expect("a number"))
            .collect();
        for pair in seqs.windows(2) {
            assert!(
                pair[0] < pair[1],
                "thread {t}: {} then {}: once and in order",
                pair[0],
                pair[1]
            );
        }
        assert_eq!(seqs.last(), Some(&(PER_THREAD - 1)), "thread {t}'s last command is there");
        let there: HashSet<u64> = seqs.iter().copied().collect();
        let absent: Vec<u64> = (0..PER_THREAD)
            .filter(|seq| unreported.contains(&(t, *seq)) && !there.contains(seq))
            .collect();
        assert!(
            absent.is_empty(),
            "thread {t}: {} unreported commands missing, the first: {:?}",
            absent.len(),
            &absent[..absent.len().min(10)]
        );
        held += seqs.len() as u64;
    }
    let missing = THREADS as u64 * PER_THREAD - held;
    // A frame redis's TCP acknowledged may still have died unread with the process.
    assert!(
        missing <= stats.frames_possibly_delivered + stats.frames_acknowledged,
        "{missing} commands missing, {} reported possibly delivered, {} acknowledged",
        stats.frames_possibly_delivered,
        stats.frames_acknowledged
    );
    let _ = std::fs::remove_dir_all(&dir);
}
