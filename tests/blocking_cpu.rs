//! No spinning (invariant 5): a thread parked in `send_timeout`, `flush_timeout` or `close`
//! uses (almost) no CPU while it waits, and neither does the rest of the process — the I/O
//! driver sleeps until a deadline or an event.
//!
//! CPU time is read from `/proc/thread-self/stat` (the waiting thread's own) and
//! `/proc/self/stat` (the whole process), in clock ticks. Linux only; the tests in this file run
//! one at a time, since the process-wide figure would count the others.
//!
//! This file is a test crate of its own, not a module of `tests/blocking/`: the process-wide
//! figure would count every other test running in the same process, and serializing the whole
//! blocking crate behind these tests would slow it down for nothing.

#![cfg(target_os = "linux")]

mod support;

use std::sync::{Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use support::{Watchdog, current_tid, frame, is_asleep, join_within, wait_until};
use tidegate::transport::mem::{MemListener, MemPeer};
use tidegate::{Client, FlushError, SendError};

const LONG: Duration = Duration::from_secs(20);
/// How long each wait lasts.
const WAIT: Duration = Duration::from_secs(1);
/// The most CPU the waiting thread may use while it waits, in clock ticks (5 is 50 ms at the
/// usual 100 ticks per second; a spinning thread would use about 100).
const THREAD_TICKS: u64 = 5;
/// The most CPU the whole process may use over the wait.
const PROCESS_CPU: Duration = Duration::from_millis(200);

/// Serializes the tests of this file, so the process-wide figure is theirs alone.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// user + system time, in clock ticks, from a `/proc/.../stat` file.
fn ticks(path: &str) -> u64 {
    let stat = std::fs::read_to_string(path).unwrap();
    // The command name, in parentheses, may contain spaces: count fields after it.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..].split_whitespace().collect();
    // Fields 14 and 15 of stat(5), utime and stime; fields[0] is field 3.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

fn paused_client(prefix: &str) -> (MemListener, Client, MemPeer) {
    let listener = MemListener::bind(&support::unique_name(prefix)).unwrap();
    let client = Client::builder().capacity(1024).connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    peer.pause();
    client.send(frame(0, 0, 1024)).unwrap();
    (listener, client, peer)
}

/// Runs `wait` on a thread of its own, which measures its own CPU time around it, while the
/// test measures the process's once the thread is parked: `parked` holds (the connection shows
/// the wait) and the kernel reports the thread asleep. Checks both.
fn assert_idle_while<T: Send + 'static>(
    what: &str,
    parked: impl Fn() -> bool,
    wait: impl FnOnce() -> T + Send + 'static,
) -> T {
    let hz = clock_ticks_per_second();
    let (started, tid) = mpsc::channel();
    let waiter = thread::spawn(move || {
        started.send(current_tid()).unwrap();
        let before = ticks("/proc/thread-self/stat");
        let start = Instant::now();
        let value = wait();
        let elapsed = start.elapsed();
        (value, ticks("/proc/thread-self/stat") - before, elapsed)
    });
    let tid = tid.recv_timeout(LONG).unwrap_or_else(|_| panic!("{what}: the thread never started"));
    assert!(
        wait_until(LONG, || waiter.is_finished() || (parked() && is_asleep(tid))),
        "{what}: the thread never parked"
    );
    assert!(!waiter.is_finished(), "{what}: returned instead of waiting");
    let process_before = ticks("/proc/self/stat");
    let (value, thread_ticks, elapsed) = join_within(waiter, LONG, what);
    let process_ticks = ticks("/proc/self/stat") - process_before;
    let process_cpu = Duration::from_millis(process_ticks * 1000 / hz);
    eprintln!(
        "{what}: waited {elapsed:?}; the thread used {thread_ticks} ticks, the process \
         {process_cpu:?} (at {hz} ticks/s)"
    );
    assert!(elapsed >= WAIT, "{what}: returned after {elapsed:?}, before it waited {WAIT:?}");
    assert!(thread_ticks <= THREAD_TICKS, "{what}: the waiting thread used {thread_ticks} ticks");
    assert!(process_cpu < PROCESS_CPU, "{what}: the process used {process_cpu:?} while waiting");
    value
}

#[test]
fn a_parked_send_uses_no_cpu() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _watchdog = Watchdog::new(Duration::from_secs(60), "parked send");
    let (_listener, client, peer) = paused_client("cpu-send");
    let sender = client.clone();
    let result = assert_idle_while(
        "send_timeout",
        || client.stats().waiters == 1,
        move || sender.send_timeout(frame(0, 1, 100), WAIT),
    );
    assert!(matches!(result, Err(SendError::Timeout(_))), "{result:?}");
    peer.resume();
    client.flush_timeout(LONG).unwrap();
}

#[test]
fn a_parked_flush_uses_no_cpu() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _watchdog = Watchdog::new(Duration::from_secs(60), "parked flush");
    let (_listener, client, peer) = paused_client("cpu-flush");
    let flusher = client.clone();
    // The flush cannot complete (nothing was written of the 1,024 bytes it waits for), and
    // the kernel shows its thread asleep.
    let result = assert_idle_while(
        "flush_timeout",
        || {
            let stats = client.stats();
            stats.buffered == 1024 && stats.bytes_written == 0
        },
        move || flusher.flush_timeout(WAIT),
    );
    assert!(matches!(result, Err(FlushError::Timeout)), "{result:?}");
    peer.resume();
    client.flush_timeout(LONG).unwrap();
}

#[test]
fn a_close_waiting_for_a_stalled_peer_uses_no_cpu() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _watchdog = Watchdog::new(Duration::from_secs(60), "parked close");
    let (_listener, client, _peer) = paused_client("cpu-close");
    let closer = client.clone();
    let report = assert_idle_while(
        "close",
        || client.connection().is_closed(),
        move || closer.close_timeout(WAIT).expect("close"),
    );
    assert!(report.timed_out(), "{report:?}");
    assert_eq!(report.unsent().len(), 1);
}

/// A heartbeat is due on an idle link only: while bytes wait for a stalled peer, its deadline
/// must not keep the driver turning.
#[test]
fn a_parked_send_with_a_heartbeat_due_behind_a_stalled_peer_uses_no_cpu() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _watchdog = Watchdog::new(Duration::from_secs(60), "parked send, heartbeat due");
    let listener = MemListener::bind(&support::unique_name("cpu-heartbeat")).unwrap();
    let client = Client::builder()
        .capacity(1024)
        .heartbeat(Duration::from_millis(20), frame(9, 0, 16))
        .connect(&listener.url())
        .unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    peer.pause();
    client.send(frame(0, 0, 1024)).unwrap();
    let sender = client.clone();
    let result = assert_idle_while(
        "send with a heartbeat due",
        || client.stats().waiters == 1,
        move || sender.send_timeout(frame(0, 1, 1024), WAIT),
    );
    assert!(matches!(result, Err(SendError::Timeout(_))), "{result:?}");
    // The peer reads again: the frame that waited comes first and whole, then heartbeats only
    // (the link is idle now), each whole.
    peer.resume();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < 1024 + 16 {
        let n = peer.read_timeout(&mut buf, LONG).expect("the peer reads");
        assert!(n > 0, "the link ended after {} bytes", got.len());
        got.extend_from_slice(&buf[..n]);
    }
    let (frames, _) = support::whole_frames(&got);
    assert_eq!(frames.first(), Some(&(0, 0)), "the waiting frame first: {frames:?}");
    assert!(frames[1..].iter().all(|f| *f == (9, 0)), "then heartbeats: {frames:?}");
}
