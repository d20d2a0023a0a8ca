//! End to end against a real `redis-server`: a producer pipelines 100,000 `RPUSH` commands
//! through a client with a small buffer, closes, and the test asks Redis itself what it holds.
//!
//! Redis answers every command, so the client's socket has bytes to read while it closes: a
//! close that drops the socket with unread data makes the kernel send a reset, and Redis
//! loses the commands it had not read yet although the close report says everything was
//! written (invariant 10). So each test checks what Redis holds — the list's length, and that
//! element `i` is value `i`, in chunks — and, where the client reads, that every reply came
//! back: the `i`-th is `:i+1`, the list's length after that push.
//!
//! The same runs through the blocking client, the async client (on tokio), with Redis frozen
//! by SIGSTOP for two seconds in the middle (the senders wait, the buffer stays bounded, and
//! everything arrives once it runs again), and with the client discarding what Redis sends.
//!
//! Skipped without `redis-server` (Debian package `redis-server`), except under `CI=true`.

use std::thread;
use std::time::Duration;

use tidegate::transport::SocketOption;
use tidegate::{AsyncClient, Bytes, Client, CloseReport, Config, Stats};

use crate::support::peers::{IntegerReplies, Redis, require_binary, resp_command};
use crate::support::{Watchdog, join_within, wait_until};

/// Commands per test.
const COMMANDS: usize = 100_000;
/// The client's outgoing buffer: small, so that Redis paces the producer.
const CAPACITY: usize = 64 * 1024;
/// The longest any step may take.
const LONG: Duration = Duration::from_secs(30);
const WATCHDOG: Duration = Duration::from_secs(120);
/// How long Redis stays frozen in the SIGSTOP test.
const FROZEN: Duration = Duration::from_secs(2);
/// `LRANGE` reads the list back in chunks of this many elements.
const CHUNK: usize = 10_000;

fn value(i: usize) -> String {
    format!("value-{i}")
}

fn rpush(key: &str, i: usize) -> Bytes {
    Bytes::from(resp_command(&[b"RPUSH", key.as_bytes(), value(i).as_bytes()]))
}

fn config() -> Config {
    Config::new().capacity(CAPACITY).send_timeout(LONG).close_timeout(LONG)
}

fn connect(redis: &Redis, config: Config) -> Client {
    Client::builder().config(config).connect(&redis.url()).expect("connect to redis-server")
}

/// Reads Redis's replies until the stream ends; an error ends it too, and is returned with
/// what came before it.
fn read_replies(client: Client) -> thread::JoinHandle<(IntegerReplies, Result<(), String>)> {
    thread::spawn(move || {
        let mut replies = IntegerReplies::default();
        loop {
            match client.recv_timeout(LONG) {
                Ok(Some(chunk)) => {
                    if let Err(e) = replies.feed(&chunk) {
                        return (replies, Err(e));
                    }
                }
                Ok(None) => return (replies, Ok(())),
                Err(e) => return (replies, Err(format!("recv: {e:?}"))),
            }
        }
    })
}

/// Redis holds exactly `value(0)..value(n)` under `key`, in order.
fn assert_redis_holds_every_value_in_order(redis: &Redis, key: &str, n: usize) {
    let mut conn = redis.conn();
    let len = conn.llen(key);
    assert_eq!(len, n as i64, "redis holds {len} of {n} values");
    for start in (0..n).step_by(CHUNK) {
        let stop = (start + CHUNK).min(n) - 1;
        let got = conn.lrange(key, start as i64, stop as i64);
        assert_eq!(got.len(), stop - start + 1, "LRANGE {start} {stop}");
        for (offset, element) in got.iter().enumerate() {
            let i = start + offset;
            assert_eq!(element, value(i).as_bytes(), "element {i} of the list");
        }
    }
}

/// The replies were one per command, in order: `:1`, `:2`, … `:n`.
fn assert_every_reply_came_back(replies: &(IntegerReplies, Result<(), String>), n: usize) {
    let (replies, end) = replies;
    let count = replies.values.len();
    assert_eq!(count, n, "{count} replies of {n} came back; the stream ended with {end:?}");
    assert!(end.is_ok(), "the replies ended with {end:?}");
    assert!(replies.at_boundary(), "the replies ended inside a reply");
    for (i, &v) in replies.values.iter().enumerate() {
        assert_eq!(v, i as i64 + 1, "reply {i}");
    }
}

fn assert_clean(report: &CloseReport, n: usize) {
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.frames_written(), n as u64, "{report:?}");
}

#[test]
fn every_rpush_sent_before_close_is_in_redis_in_order_and_answered() {
    if !require_binary("redis-server", "redis-server") {
        return;
    }
    let _watchdog = Watchdog::new(WATCHDOG, "the blocking redis test");
    let redis = Redis::start();
    let key = "tidegate:blocking";
    let client = connect(&redis, config());
    let replies = read_replies(client.clone());
    for i in 0..COMMANDS {
        client.send(rpush(key, i)).expect("send");
    }
    let report = client.close().expect("close");
    let replies = join_within(replies, LONG, "the reply reader");

    assert_redis_holds_every_value_in_order(&redis, key, COMMANDS);
    assert_clean(&report, COMMANDS);
    assert_every_reply_came_back(&replies, COMMANDS);
    assert!(client.stats().high_water <= CAPACITY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpush_sent_through_the_async_client_is_in_redis_in_order_and_answered() {
    if !require_binary("redis-server", "redis-server") {
        return;
    }
    let _watchdog = Watchdog::new(WATCHDOG, "the async redis test");
    let redis = Redis::start();
    let key = "tidegate:async";
    let client = AsyncClient::builder()
        .config(config())
        .connect(&redis.url())
        .await
        .expect("connect to redis-server");
    let reader = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut replies = IntegerReplies::default();
            loop {
                match client.recv_timeout(LONG).await {
                    Ok(Some(chunk)) => {
                        if let Err(e) = replies.feed(&chunk) {
                            return (replies, Err(e));
                        }
                    }
                    Ok(None) => return (replies, Ok(())),
                    Err(e) => return (replies, Err(format!("recv: {e:?}"))),
                }
            }
        })
    };
    for i in 0..COMMANDS {
        client.send(rpush(key, i)).await.expect("send");
    }
    let report = client.close().await.unwrap();
    let replies = tokio::time::timeout(LONG, reader)
        .await
        .expect("the reply reader finished")
        .expect("the reply reader did not panic");

    assert_redis_holds_every_value_in_order(&redis, key, COMMANDS);
    assert_clean(&report, COMMANDS);
    assert_every_reply_came_back(&replies, COMMANDS);
    assert!(client.stats().high_water <= CAPACITY);
}

#[test]
fn a_redis_frozen_by_sigstop_pauses_the_senders_within_the_bound_and_loses_nothing() {
    if !require_binary("redis-server", "redis-server") {
        return;
    }
    let _watchdog = Watchdog::new(WATCHDOG, "the SIGSTOP redis test");
    let redis = Redis::start();
    let key = "tidegate:frozen";
    // A small kernel send buffer, so that the frozen Redis backs up into the client quickly.
    let client = connect(&redis, config().socket_option(SocketOption::SendBufferSize(64 * 1024)));
    let replies = read_replies(client.clone());
    let sender = {
        let client = client.clone();
        thread::spawn(move || {
            for i in 0..COMMANDS {
                client.send(rpush(key, i)).expect("send");
            }
        })
    };

    // Freeze Redis a tenth of the way in; the producer then runs into the full buffer.
    let started = wait_until(LONG, || client.stats().frames_accepted >= COMMANDS as u64 / 10);
    assert!(started, "the producer did not get going: {:?}", client.stats());
    redis.stop();
    let backed_up = wait_until(LONG, || client.stats().waiters > 0);
    let before: Stats = client.stats();
    assert!(backed_up, "the sender never waited on the frozen redis: {before:?}");
    // The fault lasts two seconds; nothing is written meanwhile beyond what the kernel takes.
    let frozen_for = std::time::Instant::now() + FROZEN;
    while std::time::Instant::now() < frozen_for {
        let stats = client.stats();
        assert!(stats.buffered <= CAPACITY && stats.high_water <= CAPACITY, "{stats:?}");
        thread::sleep(Duration::from_millis(50));
    }
    let during: Stats = client.stats();
    assert!(during.waiters > 0, "the sender still waits: {during:?}");
    assert!(during.frames_accepted < COMMANDS as u64, "{during:?}");
    redis.resume();

    join_within(sender, LONG, "the sender");
    let report = client.close().expect("close");
    let replies = join_within(replies, LONG, "the reply reader");

    assert_redis_holds_every_value_in_order(&redis, key, COMMANDS);
    assert_clean(&report, COMMANDS);
    assert_every_reply_came_back(&replies, COMMANDS);
    let stats = client.stats();
    assert!(stats.sends_waited > 0, "the sender waited for room: {stats:?}");
    assert!(stats.high_water <= CAPACITY, "invariant 1: {stats:?}");
}

#[test]
fn a_producer_that_discards_the_replies_still_gets_every_rpush_into_redis() {
    if !require_binary("redis-server", "redis-server") {
        return;
    }
    let _watchdog = Watchdog::new(WATCHDOG, "the discarding redis test");
    let redis = Redis::start();
    let key = "tidegate:discarding";
    let client = connect(&redis, config().discard_inbound(true));
    for i in 0..COMMANDS {
        client.send(rpush(key, i)).expect("send");
    }
    let report = client.close().expect("close");

    assert_redis_holds_every_value_in_order(&redis, key, COMMANDS);
    assert_clean(&report, COMMANDS);
    let stats = client.stats();
    assert!(stats.bytes_received > 0, "redis answered: {stats:?}");
    assert!(stats.high_water <= CAPACITY);
}

#[test]
fn a_close_while_redis_is_briefly_frozen_loses_nothing_once_it_runs_again() {
    if !require_binary("redis-server", "redis-server") {
        return;
    }
    let _watchdog = Watchdog::new(WATCHDOG, "the close-while-frozen redis test");
    let redis = Redis::start();
    let key = "tidegate:closing-frozen";
    let client = connect(&redis, config());
    let replies = read_replies(client.clone());
    // The last commands go out while Redis is frozen, so they are still in the kernel buffers
    // when the close begins; Redis runs again 300 ms later (the fault), and answers them
    // while the client closes.
    const TAIL: usize = 2_000;
    for i in 0..COMMANDS - TAIL {
        client.send(rpush(key, i)).expect("send");
    }
    client.flush_timeout(LONG).expect("flush");
    redis.stop();
    for i in COMMANDS - TAIL..COMMANDS {
        client.send(rpush(key, i)).expect("send");
    }
    let thaw = thread::spawn({
        let resume = redis.resumer();
        move || {
            thread::sleep(Duration::from_millis(300));
            resume();
        }
    });
    let report = client.close().expect("close");
    join_within(thaw, LONG, "the thaw");
    let replies = join_within(replies, LONG, "the reply reader");

    assert_redis_holds_every_value_in_order(&redis, key, COMMANDS);
    assert_clean(&report, COMMANDS);
    assert_every_reply_came_back(&replies, COMMANDS);
}
