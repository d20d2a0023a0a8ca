//! A soak run: gigabytes through one connection shared by blocking threads and a thousand
//! async tasks, against a sink that keeps changing pace, with every byte verified.
//!
//! Four threads send through a blocking [`Client`]; a thousand tokio tasks send through
//! [`AsyncClient`]s made from the same connection, so all of them share one 1 MiB outgoing
//! buffer and wait in the same line. Frames have random sizes (16 B to 256 KiB). The loopback
//! sink started here cycles through three phases — reading at full speed, reading at
//! 16 MiB/s, not reading at all — so the buffer keeps filling and draining and senders keep
//! parking and waking.
//!
//! Every frame carries its producer id, a sequence number, its length and a payload derived
//! from them. The sink checks every byte and keeps, per producer, which sequence numbers it
//! saw, so at the end the run prints how many frames were lost, duplicated, reordered or
//! corrupted (all must be 0), the close report (which must be clean), and the peak resident
//! memory of the process (`VmHWM`). It exits with a failure code if anything is off.
//!
//! ```text
//! cargo run --release --example soak -- --gib 10
//! ```
//!
//! `--gib` sets how much to send (10 GiB by default; fractions are fine).

use std::error::Error;
use std::io::Read;
use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tidegate::{AsyncClient, Bytes, Client, CloseReport, Config, Stats};

/// Blocking producer threads.
const THREADS: u32 = 4;
/// Async producer tasks.
const TASKS: u32 = 1_000;
/// The outgoing buffer of the shared connection.
const CAPACITY: usize = 1 << 20;
/// Bytes in a frame header: producer (u32), sequence number (u64), length (u32), big-endian.
const HEADER: usize = 16;
/// The largest frame.
const MAX_FRAME: usize = 256 * 1024;
/// The sink's phases, in order, and how long each lasts.
const PHASES: [(Phase, Duration); 3] = [
    (Phase::Fast, Duration::from_millis(1500)),
    (Phase::Slow, Duration::from_millis(700)),
    (Phase::Stalled, Duration::from_millis(300)),
];
/// The byte rate of the slow phase.
const SLOW_RATE: usize = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Fast,
    Slow,
    Stalled,
}

/// The first payload byte of a frame; each next byte adds one.
fn seed(producer: u32, seq: u64) -> u8 {
    (producer.wrapping_mul(131) as u8).wrapping_add((seq as u8).wrapping_mul(7))
}

fn make_frame(producer: u32, seq: u64, len: usize) -> Bytes {
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&producer.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&(len as u32).to_be_bytes());
    let mut byte = seed(producer, seq);
    out.extend((HEADER..len).map(|_| {
        let b = byte;
        byte = byte.wrapping_add(1);
        b
    }));
    Bytes::from(out)
}

/// A small deterministic generator, one per producer.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 11
    }

    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }

    /// Mostly small frames, some medium, a few large.
    fn frame_len(&mut self) -> usize {
        match self.next() % 100 {
            0..60 => self.range(HEADER, 1024),
            60..95 => self.range(1024, 32 * 1024),
            _ => self.range(32 * 1024, MAX_FRAME),
        }
    }
}

/// The bytes every producer may still claim, shared.
struct Budget {
    claimed: AtomicU64,
    target: u64,
}

impl Budget {
    /// Claims `len` bytes; false once the target is reached.
    fn claim(&self, len: usize) -> bool {
        self.claimed.fetch_add(len as u64, Ordering::Relaxed) < self.target
    }
}

/// What the sink found about one producer.
#[derive(Default, Clone)]
struct Track {
    /// Which sequence numbers arrived, as a bit set.
    seen: Vec<u64>,
    unique: u64,
    highest: Option<u64>,
    duplicated: u64,
    reordered: u64,
}

impl Track {
    fn arrive(&mut self, seq: u64) {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if self.seen.len() <= word {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicated += 1;
            return;
        }
        self.seen[word] |= 1 << bit;
        self.unique += 1;
        if self.highest.is_some_and(|h| seq < h) {
            self.reordered += 1;
        }
        self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
    }
}

/// What the sink saw.
struct SinkReport {
    tracks: Vec<Track>,
    frames: u64,
    bytes: u64,
    corrupt: u64,
    /// Set when the stream could not be parsed any further (a bad header).
    broken: Option<String>,
    phases: [u64; 3],
}

/// Parses and verifies the byte stream as it arrives, without keeping frames whole.
struct Verifier {
    report: SinkReport,
    header: Vec<u8>,
    /// The frame being read: producer, seq, bytes left, the next expected byte, and whether
    /// a byte was wrong.
    current: Option<(u32, u64, usize, u8, bool)>,
}

impl Verifier {
    fn new(producers: usize) -> Self {
        Self {
            report: SinkReport {
                tracks: vec![Track::default(); producers],
                frames: 0,
                bytes: 0,
                corrupt: 0,
                broken: None,
                phases: [0; 3],
            },
            header: Vec::with_capacity(HEADER),
            current: None,
        }
    }

    fn feed(&mut self, mut data: &[u8]) {
        self.report.bytes += data.len() as u64;
        while !data.is_empty() && self.report.broken.is_none() {
            let Some((producer, seq, left, expected, bad)) = self.current.as_mut() else {
                let take = (HEADER - self.header.len()).min(data.len());
                self.header.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.header.len() == HEADER {
                    self.start_frame();
                }
                continue;
            };
            let take = (*left).min(data.len());
            for &b in &data[..take] {
                *bad |= b != *expected;
                *expected = expected.wrapping_add(1);
            }
            *left -= take;
            data = &data[take..];
            if *left == 0 {
                let (producer, seq, bad) = (*producer, *seq, *bad);
                self.end_frame(producer, seq, bad);
            }
        }
    }

    fn start_frame(&mut self) {
        let producer = u32::from_be_bytes(self.header[0..4].try_into().unwrap());
        let seq = u64::from_be_bytes(self.header[4..12].try_into().unwrap());
        let len = u32::from_be_bytes(self.header[12..16].try_into().unwrap()) as usize;
        self.header.clear();
        if producer as usize >= self.report.tracks.len() || !(HEADER..=MAX_FRAME).contains(&len) {
            self.report.broken = Some(format!("a bad header: producer {producer}, length {len}"));
            return;
        }
        if len == HEADER {
            self.end_frame(producer, seq, false);
        } else {
            self.current = Some((producer, seq, len - HEADER, seed(producer, seq), false));
        }
    }

    fn end_frame(&mut self, producer: u32, seq: u64, bad: bool) {
        self.current = None;
        self.report.frames += 1;
        if bad {
            self.report.corrupt += 1;
        }
        self.report.tracks[producer as usize].arrive(seq);
    }
}

/// Accepts one connection and verifies it, cycling through the phases, until end of stream.
fn run_sink(listener: TcpListener, producers: usize, received: Arc<AtomicU64>) -> SinkReport {
    let (mut stream, _) = listener.accept().expect("the sink accepts the client");
    stream.set_read_timeout(Some(Duration::from_millis(10))).expect("read timeout");
    let mut verifier = Verifier::new(producers);
    let mut buf = vec![0u8; 256 * 1024];
    let mut phase = 0;
    let mut phase_end = Instant::now() + PHASES[0].1;
    loop {
        let now = Instant::now();
        if now >= phase_end {
            phase = (phase + 1) % PHASES.len();
            phase_end = now + PHASES[phase].1;
            verifier.report.phases[phase] += 1;
        }
        let limit = match PHASES[phase].0 {
            Phase::Stalled => {
                thread::sleep(Duration::from_millis(10).min(phase_end - now));
                continue;
            }
            // A tenth of the rate per 10 ms tick, with a pause after each read.
            Phase::Slow => SLOW_RATE / 100,
            Phase::Fast => buf.len(),
        };
        let started = Instant::now();
        match stream.read(&mut buf[..limit]) {
            Ok(0) => break,
            Ok(n) => {
                verifier.feed(&buf[..n]);
                received.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                verifier.report.broken.get_or_insert_with(|| format!("read: {e}"));
                break;
            }
        }
        if PHASES[phase].0 == Phase::Slow {
            thread::sleep(Duration::from_millis(10).saturating_sub(started.elapsed()));
        }
    }
    if verifier.current.is_some() || !verifier.header.is_empty() {
        verifier.report.broken.get_or_insert_with(|| "the stream ended inside a frame".into());
    }
    verifier.report
}

/// Sends frames until the budget is spent; returns how many were accepted.
fn blocking_producer(client: Client, id: u32, budget: Arc<Budget>) -> u64 {
    let mut rng = Rng(u64::from(id) + 1);
    let mut seq = 0;
    loop {
        let len = rng.frame_len();
        if !budget.claim(len) {
            return seq;
        }
        if let Err(e) = client.send(make_frame(id, seq, len)) {
            eprintln!("producer {id}: {e}");
            return seq;
        }
        seq += 1;
    }
}

async fn async_producer(client: AsyncClient, id: u32, budget: Arc<Budget>) -> u64 {
    let mut rng = Rng(u64::from(id) + 1);
    let mut seq = 0;
    loop {
        let len = rng.frame_len();
        if !budget.claim(len) {
            return seq;
        }
        if let Err(e) = client.send(make_frame(id, seq, len)).await {
            eprintln!("task {id}: {e}");
            return seq;
        }
        seq += 1;
    }
}

/// The peak resident set size of this process, from `/proc/self/status`.
fn peak_rss() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.trim_start_matches("VmHWM:").trim().to_string())
}

fn parse_gib() -> Result<f64, Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let mut gib: f64 = 10.0;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--gib" => {
                let value = args.next().ok_or("--gib needs a value")?;
                gib = value.parse().map_err(|e| format!("--gib {value}: {e}"))?;
                if gib.is_nan() || gib <= 0.0 {
                    return Err("--gib must be positive".into());
                }
            }
            "-h" | "--help" => {
                println!("usage: soak [--gib N]   (default 10)");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(gib)
}

fn print_summary(
    sent: &[u64],
    seen: &SinkReport,
    report: &CloseReport,
    stats: &Stats,
    elapsed: Duration,
) -> bool {
    let mut lost = 0;
    let mut extra = 0;
    let (mut duplicated, mut reordered) = (0, 0);
    for (track, &sent) in seen.tracks.iter().zip(sent) {
        lost += sent.saturating_sub(track.unique);
        extra += track.highest.map_or(0, |h| (h + 1).saturating_sub(sent));
        duplicated += track.duplicated;
        reordered += track.reordered;
    }
    let frames: u64 = sent.iter().sum();
    let gib = seen.bytes as f64 / f64::from(1 << 30);
    println!("sent:        {frames} frames from {} producers", sent.len());
    println!(
        "received:    {} frames, {gib:.2} GiB in {:.1} s ({:.0} MiB/s)",
        seen.frames,
        elapsed.as_secs_f64(),
        seen.bytes as f64 / f64::from(1 << 20) / elapsed.as_secs_f64()
    );
    println!(
        "sink phases: {} fast, {} slow, {} stalled",
        seen.phases[0], seen.phases[1], seen.phases[2]
    );
    println!("lost:        {lost}");
    println!("duplicated:  {duplicated}");
    println!("reordered:   {reordered}");
    println!("corrupt:     {}", seen.corrupt);
    println!("unexpected:  {extra}");
    println!(
        "buffer:      high water {} of {} bytes; {} sends waited, {:.1} s waiting in total",
        stats.high_water,
        stats.capacity,
        stats.sends_waited,
        stats.wait_time.as_secs_f64()
    );
    println!(
        "close:       clean {}, {} frames written, {} unsent",
        report.is_clean(),
        report.frames_written(),
        report.unsent().len()
    );
    println!("peak RSS:    {}", peak_rss().unwrap_or_else(|| "unknown".into()));
    if let Some(broken) = &seen.broken {
        println!("stream:      {broken}");
    }
    lost == 0
        && duplicated == 0
        && reordered == 0
        && seen.corrupt == 0
        && extra == 0
        && seen.broken.is_none()
        && report.is_clean()
        && seen.frames == frames
        && stats.high_water <= stats.capacity
}

fn main() -> Result<ExitCode, Box<dyn Error>> {
    env_logger::init();
    let gib = parse_gib()?;
    let target = (gib * f64::from(1 << 30)) as u64;
    let producers = (THREADS + TASKS) as usize;
    println!("soak: {gib} GiB through one connection, {THREADS} threads and {TASKS} tasks");

    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("tcp://{}", listener.local_addr()?);
    let received = Arc::new(AtomicU64::new(0));
    let sink = {
        let received = received.clone();
        thread::spawn(move || run_sink(listener, producers, received))
    };

    let config = Config::new().capacity(CAPACITY).close_timeout(Duration::from_secs(120));
    let client = Client::builder().config(config).connect(&url)?;
    let budget = Arc::new(Budget { claimed: AtomicU64::new(0), target });
    let started = Instant::now();

    let threads: Vec<_> = (0..THREADS)
        .map(|id| {
            let (client, budget) = (client.clone(), budget.clone());
            thread::spawn(move || blocking_producer(client, id, budget))
        })
        .collect();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let tasks: Vec<_> = (0..TASKS)
        .map(|k| {
            let async_client = AsyncClient::from_connection(client.connection().clone());
            runtime.spawn(async_producer(async_client, THREADS + k, budget.clone()))
        })
        .collect();

    // Progress, until every producer is done.
    let done = Arc::new(AtomicBool::new(false));
    let progress = {
        let (done, received, client) = (done.clone(), received.clone(), client.clone());
        thread::spawn(move || {
            let mut next = Instant::now() + Duration::from_secs(5);
            while !done.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(50));
                if Instant::now() >= next {
                    next += Duration::from_secs(5);
                    let stats = client.stats();
                    println!(
                        "  {:6.1} s  {:6.2} GiB received, {:7} of {} bytes buffered, {:4} waiting",
                        started.elapsed().as_secs_f64(),
                        received.load(Ordering::Relaxed) as f64 / f64::from(1 << 30),
                        stats.buffered,
                        stats.capacity,
                        stats.waiters
                    );
                }
            }
        })
    };

    let mut sent = vec![0u64; producers];
    for (id, thread) in threads.into_iter().enumerate() {
        sent[id] = thread.join().expect("a producer thread panicked");
    }
    runtime.block_on(async {
        for (k, task) in tasks.into_iter().enumerate() {
            sent[THREADS as usize + k] = task.await.expect("a producer task panicked");
        }
    });
    let report = client.close()?;
    let stats = client.stats();
    let seen = sink.join().expect("the sink panicked");
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    progress.join().expect("the progress thread panicked");

    if print_summary(&sent, &seen, &report, &stats, elapsed) {
        println!("soak: OK");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("soak: FAILED");
        Ok(ExitCode::FAILURE)
    }
}
