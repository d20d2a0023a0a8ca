//! The tidegate demo: back-pressure you can watch.
//!
//! Four producer threads share one [`Client`] with a 1 MiB outgoing buffer. They send frames of
//! varied sizes as fast as they can to a loopback TCP sink that this program starts itself. The
//! sink alternates between reading at full speed and stalling, so the buffer fills up, the
//! producers wait in line for room, and they resume when the sink reads again. Memory stays
//! bounded the whole time.
//!
//! Every frame carries its producer id, a sequence number and a payload derived from both, so
//! the sink checks every byte, that frames arrive whole, and that each producer's frames arrive
//! in the order they were sent. At the end the demo compares what the producers sent with what
//! the sink verified and exits with a failure code if anything differs.
//!
//! ```text
//! cargo run --release --example demo
//! ```
//!
//! On a terminal it shows live progress; when its output is redirected it prints only the
//! summary.

use std::collections::VecDeque;
use std::error::Error;
use std::io::{self, BufRead, BufReader, IsTerminal, Read};
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use socket2::{Domain, Socket, Type};
use tidegate::transport::SocketOption;
use tidegate::{Bytes, Client, Config, SendError};

/// Producer threads sharing the one client.
const PRODUCERS: u32 = 4;
/// The capacity of the client's outgoing buffer.
const CAPACITY: usize = 1 << 20;
/// How long the producers send: ten cycles of the sink reading, then stalling.
const RUN_FOR: Duration = Duration::from_secs(6);
/// How long the sink reads, then how long it stalls, in turn.
const PHASE: Duration = Duration::from_millis(300);
/// Kernel socket buffers on both sides, kept small so that a stall reaches the client quickly.
const SOCKET_BUFFER: usize = 64 * 1024;
/// Frame sizes range from `HEADER` bytes to this.
const MAX_FRAME: usize = 64 * 1024;
/// A sender that waits longer than this gives up: only a sink that died could cause it.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("demo FAILED: {problem}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let (listener, addr) = sink_listener()?;
    let sink_stalled = Arc::new(AtomicBool::new(false));
    let sink = {
        let stalled = Arc::clone(&sink_stalled);
        thread::spawn(move || run_sink(&listener, &stalled))
    };

    // One client, one bounded buffer, shared by every producer.
    let config = Config::new()
        .capacity(CAPACITY)
        .send_timeout(SEND_TIMEOUT)
        .socket_option(SocketOption::SendBufferSize(SOCKET_BUFFER));
    let client = Client::builder().config(config).connect(&format!("tcp://{addr}"))?;

    println!(
        "tidegate demo: {PRODUCERS} producers -> one client with a {} KiB buffer -> tcp://{addr}",
        CAPACITY >> 10
    );
    println!(
        "the sink reads for {} ms, then stalls for {} ms, in turn; sending for {} s",
        PHASE.as_millis(),
        PHASE.as_millis(),
        RUN_FOR.as_secs()
    );

    let started = Instant::now();
    let stop_at = started + RUN_FOR;
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|id| {
            let client = client.clone();
            thread::spawn(move || produce(&client, id, stop_at))
        })
        .collect();

    show_progress(&client, &sink_stalled, started, || producers.iter().all(|p| p.is_finished()));

    let mut sent = Tally::default();
    let mut frames_per_producer = Vec::new();
    let mut problems = Vec::new();
    for (id, producer) in producers.into_iter().enumerate() {
        let (tally, outcome) = producer.join().expect("a producer panicked");
        sent.add(&tally);
        frames_per_producer.push(tally.frames);
        if let Err(err) = outcome {
            problems.push(format!("producer {id} stopped: {}", chain(&err)));
        }
    }

    // Drain what is buffered, then end the connection: the sink sees the end of the stream.
    let report = client.close()?;
    let stats = client.stats();
    let verified = sink.join().expect("the sink panicked");
    let elapsed = started.elapsed();

    println!();
    println!("sent by producers:  {:>12} bytes in {:>8} frames", sent.bytes, sent.frames);
    match &verified {
        Ok(v) => println!(
            "verified by sink:   {:>12} bytes in {:>8} frames (every byte, each producer's order)",
            v.total.bytes, v.total.frames
        ),
        Err(err) => println!("verified by sink:   failed: {err}"),
    }
    println!(
        "written by client:  {:>12} bytes in {:>8} frames",
        report.bytes_written(),
        report.frames_written()
    );
    println!("buffer high-water:  {:>12} bytes of {} capacity", stats.high_water, stats.capacity);
    println!(
        "sends that waited:  {:>12} of {} ({:.2} s waited in total, across all producers)",
        stats.sends_waited,
        sent.frames,
        stats.wait_time.as_secs_f64()
    );
    println!("elapsed:            {:>12.2} s", elapsed.as_secs_f64());

    // The checks: everything sent arrived intact, and the buffer never went past its bound.
    if !report.is_clean() {
        problems.push(format!(
            "the close was not clean: {} frames unsent, cause {:?}, timed out: {}",
            report.unsent().len(),
            report.cause(),
            report.timed_out()
        ));
    }
    if report.bytes_written() != sent.bytes || report.frames_written() != sent.frames {
        problems.push("the client wrote a different amount than the producers sent".into());
    }
    match &verified {
        Ok(v) if v.total != sent || v.frames_per_producer != frames_per_producer => {
            problems.push(format!(
                "the sink verified {:?} (per producer {:?}), the producers sent {sent:?} (per \
                 producer {frames_per_producer:?})",
                v.total, v.frames_per_producer
            ));
        }
        Ok(_) => {}
        Err(err) => problems.push(format!("the sink found a problem: {err}")),
    }
    if stats.high_water > stats.capacity {
        problems.push(format!(
            "the buffer held {} bytes, more than its capacity of {}",
            stats.high_water, stats.capacity
        ));
    }
    if problems.is_empty() {
        println!("OK: every frame arrived whole and in order, and the buffer stayed bounded");
        Ok(())
    } else {
        Err(problems.iter().map(|p| format!("\n  - {p}")).collect::<String>().into())
    }
}

/// Bytes and frames, counted on one side.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    bytes: u64,
    frames: u64,
}

impl Tally {
    fn add(&mut self, other: &Self) {
        self.bytes += other.bytes;
        self.frames += other.frames;
    }
}

// ---------------------------------------------------------------------------------------------
// Frames: a 16-byte header (total length u32, producer id u32, sequence number u64, all
// little-endian), then a payload whose every byte is a function of the producer, the sequence
// number and its position.

const HEADER: usize = 16;

fn payload_byte(producer: u32, seq: u64, i: usize) -> u8 {
    (seq.wrapping_mul(131) ^ u64::from(producer).wrapping_mul(29)).wrapping_add(i as u64) as u8
}

fn make_frame(producer: u32, seq: u64, len: usize) -> Bytes {
    let mut frame = Vec::with_capacity(len);
    frame.extend_from_slice(&(len as u32).to_le_bytes());
    frame.extend_from_slice(&producer.to_le_bytes());
    frame.extend_from_slice(&seq.to_le_bytes());
    frame.extend((HEADER..len).map(|i| payload_byte(producer, seq, i)));
    Bytes::from(frame)
}

/// Frame lengths: many small frames, some medium, a few large (up to [`MAX_FRAME`]).
fn next_frame_len(rng: &mut u64) -> usize {
    // xorshift64: cheap, deterministic, good enough to vary sizes.
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let r = *rng as usize;
    let upper = match r % 8 {
        0..=3 => 256,
        4..=6 => 8 * 1024,
        _ => MAX_FRAME,
    };
    HEADER + (r >> 8) % (upper - HEADER + 1)
}

// ---------------------------------------------------------------------------------------------
// Producers

/// Sends frames until `stop_at` passes. Returns what was sent, and the error that stopped it
/// early, if any.
fn produce(client: &Client, id: u32, stop_at: Instant) -> (Tally, Result<(), SendError<Bytes>>) {
    let mut rng = 0x9E37_79B9_7F4A_7C15 ^ u64::from(id + 1);
    let mut sent = Tally::default();
    while Instant::now() < stop_at {
        let len = next_frame_len(&mut rng);
        // `send` parks this thread while the buffer is full, and returns once the frame is in.
        if let Err(err) = client.send(make_frame(id, sent.frames, len)) {
            return (sent, Err(err));
        }
        sent.frames += 1;
        sent.bytes += len as u64;
    }
    (sent, Ok(()))
}

// ---------------------------------------------------------------------------------------------
// Progress

/// Redraws the progress bars every 50 ms until `done` is true. Draws nothing unless standard
/// output is a terminal.
fn show_progress(
    client: &Client,
    sink_stalled: &AtomicBool,
    started: Instant,
    done: impl Fn() -> bool,
) {
    let target = if io::stdout().is_terminal() {
        ProgressDrawTarget::stdout()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bars = MultiProgress::with_draw_target(target);
    let style = |template: &str| {
        ProgressStyle::with_template(template).expect("a valid template").progress_chars("=> ")
    };
    // The first bar counts the run time in milliseconds; the second shows the buffer's fill.
    let run_for = RUN_FOR.as_secs();
    let time = bars.add(
        ProgressBar::new(RUN_FOR.as_millis() as u64)
            .with_style(style(&format!(
                "{{prefix:>7}} [{{bar:40}}] {{elapsed:>3}} of {run_for}s  {{msg}}"
            )))
            .with_prefix("sending"),
    );
    let buffer = bars.add(
        ProgressBar::new(CAPACITY as u64)
            .with_style(style("{prefix:>7} [{bar:40}] {bytes:>10} of {total_bytes}  {msg}"))
            .with_prefix("buffer"),
    );

    // Throughput over the last second, from samples of the bytes written so far.
    let mut samples = VecDeque::from([(Instant::now(), 0u64)]);
    let mut update = || {
        let stats = client.stats();
        let now = Instant::now();
        samples.push_back((now, stats.bytes_written));
        while samples.len() > 2 && now - samples[1].0 >= Duration::from_secs(1) {
            samples.pop_front();
        }
        let (then, bytes_then) = samples[0];
        let seconds = (now - then).as_secs_f64().max(1e-3);
        let rate = (stats.bytes_written - bytes_then) as f64 / seconds / 1e6;
        let sink = if sink_stalled.load(Ordering::Relaxed) { "stalled" } else { "reading" };

        time.set_position(started.elapsed().as_millis() as u64);
        time.set_message(format!(
            "{:>8.1} MB sent, {rate:>6.1} MB/s, sink {sink}",
            stats.bytes_written as f64 / 1e6
        ));
        buffer.set_position(stats.buffered as u64);
        buffer.set_message(format!("{} senders waiting", stats.waiters));
    };
    while !done() {
        update();
        thread::sleep(Duration::from_millis(50));
    }
    update();
    time.finish();
    buffer.finish();
}

// ---------------------------------------------------------------------------------------------
// The sink

/// A loopback listener with a small receive buffer, so the sink's stalls push back at once.
fn sink_listener() -> io::Result<(TcpListener, SocketAddr)> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    // Set before `listen`, so accepted connections inherit it.
    socket.set_recv_buffer_size(SOCKET_BUFFER)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    socket.listen(1)?;
    let listener: TcpListener = socket.into();
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// What the sink verified, in total and per producer.
#[derive(Debug)]
struct Verified {
    total: Tally,
    frames_per_producer: Vec<u64>,
}

/// Accepts one connection and reads it to the end, checking every frame, stalling every
/// other [`PHASE`].
fn run_sink(listener: &TcpListener, stalled: &AtomicBool) -> Result<Verified, String> {
    let (stream, _) = listener.accept().map_err(|e| format!("accept failed: {e}"))?;
    let mut reader = BufReader::with_capacity(256 * 1024, stream);
    let started = Instant::now();
    let mut next_seq = vec![0u64; PRODUCERS as usize];
    let mut total = Tally::default();
    let mut frame = Vec::with_capacity(MAX_FRAME);
    let io_err = |e: io::Error| format!("read failed: {e}");

    loop {
        // Odd phases are stalls: stop reading until the phase ends.
        let phase = started.elapsed().as_millis() / PHASE.as_millis();
        if phase % 2 == 1 {
            stalled.store(true, Ordering::Relaxed);
            let phase_end = PHASE * (phase as u32 + 1);
            thread::sleep(phase_end.saturating_sub(started.elapsed()));
            stalled.store(false, Ordering::Relaxed);
        }

        // The end of the stream is only fine between frames.
        if reader.fill_buf().map_err(io_err)?.is_empty() {
            break;
        }
        let mut header = [0u8; HEADER];
        reader.read_exact(&mut header).map_err(io_err)?;
        let len = u32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
        let producer = u32::from_le_bytes(header[4..8].try_into().unwrap());
        let seq = u64::from_le_bytes(header[8..16].try_into().unwrap());
        let at = total.bytes;
        if !(HEADER..=MAX_FRAME).contains(&len) || producer >= PRODUCERS {
            return Err(format!("bad header at byte {at}: length {len}, producer {producer}"));
        }
        let expected = &mut next_seq[producer as usize];
        if seq != *expected {
            return Err(format!(
                "producer {producer}: frame {seq} arrived where frame {expected} was due (byte {at})"
            ));
        }
        *expected += 1;

        frame.resize(len - HEADER, 0);
        reader.read_exact(&mut frame).map_err(io_err)?;
        if let Some((_, i)) =
            frame.iter().zip(HEADER..).find(|&(&b, i)| b != payload_byte(producer, seq, i))
        {
            return Err(format!("producer {producer} frame {seq}: wrong byte at offset {i}"));
        }
        total.bytes += len as u64;
        total.frames += 1;
    }
    // Each producer's next expected sequence number is the count of its frames.
    Ok(Verified { total, frames_per_producer: next_seq })
}

/// An error and its causes, one after the other.
fn chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
