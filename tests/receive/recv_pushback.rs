//! Inbound pushback over real loopback TCP: a peer floods a client that receives nothing. The
//! client's inbound buffer fills to its capacity and no further (`Stats::inbound_held` and
//! `inbound_high_water`), the driver stops reading, and the peer's non-blocking writes hit
//! `WouldBlock`. Then the client receives, and every byte of the pseudo-random stream arrives
//! intact and in order, then the clean end. In the blocking facade and in the async facade on
//! two executors (`futures::executor`, tokio).
//!
//! Memory: a child process (this test binary, re-run to run only the ignored `rss_child`, and
//! killed if it takes more than a minute) floods 16 MiB through a client with a 4 MiB inbound
//! buffer and reads its own peak RSS (`VmHWM` in `/proc/self/status`) once connected, before
//! the flood starts, and after the last byte; it reports the bytes it received too, so the parent knows the
//! measurement ran. The peak may grow by at most the inbound capacity
//! plus [`RSS_SLACK`]: the receive chunk the application holds (64 KiB), allocator and stack
//! growth.

use std::future::Future;
use std::io::{ErrorKind, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tidegate::transport::SocketOption;
use tidegate::{AsyncClient, Client, Config, Connection};

use crate::support::{join_within, wait_until};

const WAIT: Duration = Duration::from_secs(20);
/// The most the peer writes while it checks that its writes stall (the brief bound).
const FLOOD_LIMIT: u64 = 256 << 20;
/// Growth of the peak RSS allowed beyond the inbound capacity.
const RSS_SLACK: u64 = 1 << 20;
/// What the child's peer floods.
const RSS_TOTAL: u64 = 16 << 20;
/// The most the child may take, flood and all.
const CHILD_WAIT: Duration = Duration::from_secs(60);

/// The pseudo-random byte stream: word `i` (8 bytes, little-endian) is `splitmix64(i)`.
fn fill(pos: u64, out: &mut [u8]) {
    for (i, byte) in out.iter_mut().enumerate() {
        let at = pos + i as u64;
        *byte = splitmix64(at / 8).to_le_bytes()[(at % 8) as usize];
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Checks received chunks against the stream.
struct Checker {
    pos: u64,
    expected: Vec<u8>,
}

impl Checker {
    fn new() -> Self {
        Self { pos: 0, expected: vec![0; 64 * 1024] }
    }

    fn feed(&mut self, chunk: &[u8]) {
        for piece in chunk.chunks(self.expected.len()) {
            let expected = &mut self.expected[..piece.len()];
            fill(self.pos, expected);
            assert!(piece == expected, "the stream differs within bytes {}..", self.pos);
            self.pos += piece.len() as u64;
        }
    }
}

/// The client's side of a flood scenario.
struct Scenario {
    conn: Connection,
    capacity: usize,
    total: u64,
    to_peer: mpsc::Sender<()>,
    from_peer: mpsc::Receiver<(bool, u64)>,
    peer: JoinHandle<()>,
}

fn config(capacity: usize) -> Config {
    Config::new().inbound_capacity(capacity).socket_option(SocketOption::RecvBufferSize(32 * 1024))
}

/// Starts a listener and the peer thread, which floods at once; `connect` connects the client
/// to the URL.
fn start(capacity: usize, total: u64, connect: impl FnOnce(&str) -> Connection) -> Scenario {
    let scenario = start_gated(capacity, total, connect);
    scenario.to_peer.send(()).unwrap();
    scenario
}

/// As [`start`], but the peer writes nothing until the first go-ahead on `to_peer`.
fn start_gated(capacity: usize, total: u64, connect: impl FnOnce(&str) -> Connection) -> Scenario {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("tcp://{}", listener.local_addr().unwrap());
    let (to_peer, peer_rx) = mpsc::channel();
    let (peer_tx, from_peer) = mpsc::channel();
    let peer = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        flood(stream, capacity as u64, total, &peer_rx, &peer_tx);
    });
    let conn = connect(&url);
    Scenario { conn, capacity, total, to_peer, from_peer, peer }
}

/// The peer: waits for a first go-ahead, writes exactly `capacity` bytes (the client's buffer
/// takes them all), waits for a second go-ahead, writes until its non-blocking writes stall (reporting whether they did and
/// how far it got), then writes the rest with blocking writes and closes.
fn flood(
    mut stream: TcpStream,
    capacity: u64,
    total: u64,
    go: &mpsc::Receiver<()>,
    report: &mpsc::Sender<(bool, u64)>,
) {
    socket2::SockRef::from(&stream).set_send_buffer_size(32 * 1024).unwrap();
    stream.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut pos = 0u64;
    let deadline = Instant::now() + WAIT;
    go.recv_timeout(WAIT).expect("the client never connected");
    let mut write = |stream: &mut TcpStream, pos: &mut u64, until: u64| -> std::io::Result<()> {
        let n = (until - *pos).min(buf.len() as u64) as usize;
        fill(*pos, &mut buf[..n]);
        let written = stream.write(&buf[..n])?;
        *pos += written as u64;
        Ok(())
    };
    while pos < capacity {
        match write(&mut stream, &mut pos, capacity) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "the client never read the first bytes");
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("peer write: {e}"),
        }
    }
    go.recv_timeout(WAIT).expect("the client's buffer never filled");
    let stalled = loop {
        if pos >= FLOOD_LIMIT.min(total) {
            break false;
        }
        match write(&mut stream, &mut pos, total) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break true,
            Err(e) => panic!("peer write: {e}"),
        }
    };
    report.send((stalled, pos)).unwrap();
    stream.set_nonblocking(false).unwrap();
    stream.set_write_timeout(Some(WAIT)).unwrap();
    while pos < total {
        write(&mut stream, &mut pos, total).expect("peer write");
    }
    stream.shutdown(std::net::Shutdown::Write).unwrap();
}

impl Scenario {
    /// Checks that the buffer fills to its capacity, the driver stops reading, and the peer's
    /// writes stall. Returns how many bytes the peer wrote before they stalled.
    fn check_pushback(&self) -> u64 {
        let capacity = self.capacity;
        assert!(
            wait_until(WAIT, || self.conn.stats().inbound_held == capacity),
            "the inbound buffer never filled: {:?}",
            self.conn.stats()
        );
        self.to_peer.send(()).unwrap();
        let (stalled, pushed) = self.from_peer.recv_timeout(WAIT).expect("the peer reports");
        assert!(stalled, "the peer's writes never stalled ({pushed} bytes pushed)");
        let stats = self.conn.stats();
        assert_eq!(stats.inbound_held, capacity, "the buffer stays full, and no fuller");
        assert_eq!(stats.inbound_high_water, capacity, "{stats:?}");
        assert_eq!(stats.bytes_delivered, 0);
        pushed
    }

    fn finish(self, checker: &Checker) {
        join_within(self.peer, WAIT, "the peer");
        assert_eq!(checker.pos, self.total, "every byte arrived");
        let stats = self.conn.stats();
        assert!(stats.inbound_high_water <= self.capacity, "{stats:?}");
        assert_eq!(stats.bytes_received, self.total);
    }
}

#[test]
fn blocking_client_pushes_back_then_receives_everything_in_order() {
    let capacity = 64 * 1024;
    let scenario = start(capacity, 8 << 20, |url| {
        Client::builder().config(config(capacity)).connect(url).unwrap().connection().clone()
    });
    scenario.check_pushback();
    let client = Client::from_connection(scenario.conn.clone());
    let mut checker = Checker::new();
    while let Some(chunk) = client.recv_timeout(WAIT).unwrap() {
        assert!(chunk.len() <= capacity);
        checker.feed(&chunk);
    }
    scenario.finish(&checker);
}

fn block_on<F: Future>(executor: &str, future: F) -> F::Output {
    match executor {
        "futures" => futures::executor::block_on(future),
        "tokio" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap()
            .block_on(future),
        other => unreachable!("{other}"),
    }
}

#[test]
fn async_client_pushes_back_then_receives_everything_in_order_on_two_executors() {
    for executor in ["futures", "tokio"] {
        let capacity = 48 * 1024;
        let scenario = start(capacity, 8 << 20, |url| {
            let connecting = AsyncClient::builder().config(config(capacity)).connect(url);
            block_on(executor, connecting).unwrap().into_connection()
        });
        scenario.check_pushback();
        let client = AsyncClient::from_connection(scenario.conn.clone());
        let checker = block_on(executor, async move {
            let mut checker = Checker::new();
            let mut incoming = client.incoming();
            while let Some(chunk) = incoming.next().await {
                checker.feed(&chunk.unwrap());
            }
            checker
        });
        scenario.finish(&checker);
    }
}

/// `VmHWM` (peak resident set) of this process, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[test]
fn peak_rss_grows_by_at_most_the_inbound_capacity_plus_a_constant() {
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("no /proc: skipped");
        return;
    }
    // `rss_child` is ignored in a normal run (it would measure a process shared with the
    // other tests): run it, and only it, in a child process of its own. The harness names it
    // by its module path without the crate's name (`recv_pushback::rss_child`).
    let (_crate, module) = module_path!().split_once("::").expect("a module of the test crate");
    let name = format!("{module}::rss_child");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &name, "--ignored", "--nocapture", "--test-threads=1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (mut stdout, mut stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || std::io::read_to_string(&mut stdout).unwrap());
    let err = std::thread::spawn(move || std::io::read_to_string(&mut stderr).unwrap());
    let ended = wait_until(CHILD_WAIT, || child.try_wait().unwrap().is_some());
    if !ended {
        child.kill().unwrap();
    }
    let status = child.wait().unwrap();
    let (stdout, stderr) =
        (join_within(out, WAIT, "the child's stdout"), join_within(err, WAIT, "its stderr"));
    assert!(ended, "the child ran for more than {CHILD_WAIT:?}:\n{stdout}\n{stderr}");
    assert!(status.success(), "the child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the child did not run the measurement:\n{stdout}");
    // (The harness may print the test's name on the same line.)
    let at = stdout.find("rss: ").expect("the child reports");
    let line = stdout[at..].lines().next().unwrap();
    let numbers: Vec<u64> =
        line.split_whitespace().skip(1).take(3).map(|n| n.parse().unwrap()).collect();
    let [capacity, growth, received] = numbers[..] else { panic!("{line}") };
    eprintln!("peak RSS grew by {growth} bytes with an inbound capacity of {capacity} bytes");
    assert_eq!(received, RSS_TOTAL, "the child received the whole flood: {line}");
    assert!(growth <= capacity + RSS_SLACK, "{line}");
}

/// The measurement of the test above, run only in its child process (ignored in a normal run;
/// run alone, with `--ignored`, it passes too, but its figure then means little).
#[test]
#[ignore = "run by peak_rss_grows_by_at_most_the_inbound_capacity_plus_a_constant in a process of its own"]
fn rss_child() {
    let capacity = 4 << 20;
    let scenario = start_gated(capacity, RSS_TOTAL, |url| {
        Client::builder().config(config(capacity)).connect(url).unwrap().connection().clone()
    });
    let client = Client::from_connection(scenario.conn.clone());
    let mut checker = Checker::new();
    // Connected, and nothing received yet: the peer floods only after this.
    let before = peak_rss();
    assert_eq!(client.stats().bytes_received, 0);
    scenario.to_peer.send(()).unwrap();
    scenario.check_pushback();
    while let Some(chunk) = client.recv_timeout(WAIT).unwrap() {
        checker.feed(&chunk);
    }
    let after = peak_rss();
    let received = client.stats().bytes_received;
    scenario.finish(&checker);
    println!("rss: {capacity} {} {received}", after.saturating_sub(before));
}
