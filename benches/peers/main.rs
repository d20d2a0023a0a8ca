//! The peer benchmark: tidegate against the queues a user would otherwise write, side by side in
//! one run, over loopback TCP.
//!
//! Run it with `cargo bench --bench peers`. Options go after `--`:
//!
//! - `--quick`: a short smoke run (1/16 of the bytes, one run);
//! - `--runs N`: the number of runs whose medians are printed (5 by default);
//! - `--filter TEXT` (repeatable): run only what contains `TEXT`;
//! - `--throughput-only`: skip the measurements beside throughput;
//! - `--instructions`: also count the instructions per frame of the selected 64 B rows under
//!   callgrind (below);
//! - `--chart PATH`: also write an SVG chart of the throughput targets, measured against
//!   required (below);
//! - `--scale N`: the throughput rows send 1/N of their normal bytes (instead of 1/16 with
//!   `--quick`); `--instructions` runs its child processes with it, and it has little use by
//!   hand.
//!
//! BENCHMARKS.md records a run.
//!
//! **`--instructions`**: after the runs, each selected throughput row with 64 B frames and one
//! producer (and the 4-producer rows of `tidegate Client` and `Mutex+Condvar`) is run again,
//! alone, in a child process (this program, with `--runs 1 --throughput-only --scale N
//! --filter <row name>`) under `valgrind --tool=callgrind`, once with 1/64 and once with 1/16
//! of the bytes (4 and 16 MiB of 64 B frames), and the total `Ir` of each is read from the
//! `summary:` line of callgrind's output file. The table reports the marginal instructions per
//! frame, (Ir at 1/16 − Ir at 1/64) / (frames at 1/16 − frames at 1/64), which cancels what
//! does not grow with the frames (process start, dynamic loading, connection set-up). The count
//! covers every thread of the process: the producers, the writer thread or I/O driver, and the
//! sink. callgrind runs one thread at a time, so it is a count of work, not of speed: waiting,
//! cache misses and contention do not show. Without `valgrind` on the `PATH` the table is
//! replaced by a line saying so, and the run does not fail.
//!
//! **`--chart PATH`**: once the tables are printed, writes to `PATH` an SVG bar chart (drawn
//! with `plotters`) with a bar per throughput target of the targets table whose two rows were
//! measured: the ratio of the tidegate row's median MB/s to its reference's, grouped by frame
//! size (the many-connections targets apart), each bar labelled with its row, its reference, its value and the verdict, with a line
//! at 1.0× and a red mark at the ratio the target requires. The table and the chart take their
//! targets from the same list (`targets::TARGETS`). Works with `--quick` and `--filter` like
//! the tables.
//!
//! This file holds the options and the run; each group of rows is a module: `implementations`
//! (tidegate and the peers), `sink`, `throughput`, `many` (many connections), `duplex` (full
//! duplex), `extras` (the measurements beside throughput, and the child processes they run),
//! `instructions` (`--instructions`), `chart` (`--chart`), `targets` (the targets, their
//! table and what the chart draws of them) and `report` (medians, ratios and the throughput
//! table).
//!
//! # What is measured
//!
//! Every throughput case sends a fixed number of equal frames to a *sink*: a thread of this
//! process that reads the loopback socket into a 256 KiB buffer as fast as it can and counts the
//! bytes. The clock starts once every connection, thread and runtime is set up, and stops when
//! the sink has received the last byte; the case fails unless the sink counted exactly the bytes
//! sent. Frames are `Bytes` views of one static buffer, so making a frame costs nothing and
//! every implementation moves the same bytes. Cases run one after the other, and the runs are
//! interleaved, so slow drifts of the machine hit every case alike.
//!
//! - `loopback ceiling`: one thread writing 256 KiB chunks straight to the socket.
//! - `BufWriter`: one thread writing each frame into a 64 KiB `std::io::BufWriter` over the
//!   socket, with no bound and no other thread: the single-thread ceiling.
//! - `tidegate Client`: [`tidegate::Client::send`] per frame, default 1 MiB buffer; producers
//!   are threads sharing one client.
//! - `tidegate Client behind a 64 KiB BufWriter`: each producer thread wraps its clone of the
//!   client (`impl io::Write`) in a `BufWriter`, so small frames reach the core 64 KiB at a time.
//! - `tidegate Client, send_batch of 64 frames` (64 B frames only): each producer thread
//!   copies 64 frames into a `FrameBatch` and sends it with [`tidegate::Client::send_batch`],
//!   so frame boundaries are kept and the core's lock is taken once per 64 frames.
//! - `tidegate AsyncClient`: `AsyncClient::send(frame).await`, 1,000 tasks on tokio (multi-thread
//!   runtime) and on async-std.
//! - `Mutex+Condvar`: a `Mutex<VecDeque<Bytes>>` bounded to 1 MiB of frames, drained by a writer
//!   thread with `write_vectored`; space is returned once written, as tidegate does.
//! - `flume`, `crossbeam-channel`, `std sync_channel`: a bounded channel of `Bytes` (1 MiB worth
//!   of frames) feeding a writer thread with a 64 KiB `BufWriter`.
//! - `tokio mpsc`: a bounded `tokio::sync::mpsc` channel (1 MiB worth of frames) feeding a
//!   writer task with a 64 KiB `tokio::io::BufWriter`; producers are tasks.
//!
//! The *many connections* rows put 1,000 loopback connections (100 with `--quick`) side by side,
//! each sending the same frames (64 B: about 128 MiB in all; 1 KiB: about 512 MiB; 1/16 with
//! `--quick`). Every sample runs in a child process (this program, run again), which holds a
//! sink for all of them: one thread running a current-thread tokio runtime (epoll) with a task
//! per connection, every task reading into one shared 256 KiB buffer; it counts each
//! connection's bytes, and the sample fails unless every connection delivered exactly its share.
//! The clock starts when the first producer begins and stops when the sink has the last byte.
//! The bound per connection is 64 KiB for everyone (tidegate's capacity, the `BufWriter`'s size).
//!
//! - `tidegate Client, IoGroup of 2 driver threads, 4 producers`: every connection opened with
//!   `Config::io_group` on one `IoGroup::new(2)`; 4 producer threads, producer `p` serving
//!   connections `p`, `p + 4`, ... in turn, 16 frames to each per visit, with
//!   [`tidegate::Client::send`].
//! - `tidegate Client, a driver thread per connection, 4 producers`: the same without a group
//!   (the default: a driver thread per connection).
//! - `tidegate Client, IoGroup of 2 driver threads, a producer per connection`: the group, fed
//!   by a producer thread per connection, as the baseline's.
//! - `a thread per connection writing through a 64 KiB BufWriter`: the baseline without
//!   tidegate; each thread connects, writes its own frames through a `BufWriter<TcpStream>`
//!   (std, blocking) and keeps the connection open until every thread is done.
//!
//! Producer and baseline threads have a 64 KiB stack (`thread::Builder::stack_size`); tidegate's
//! driver threads have the default. Besides throughput, each row reports the threads the peer
//! added to the process (producers included), the time from the first connect to every
//! connection ready to send (for the baseline, connected with its thread running), the growth
//! of the child's `VmHWM` over the sample, and how busy the sink thread was between its first
//! and last byte (to show it is not the bottleneck).
//!
//! The *full duplex* rows measure write biasing: how much of its outgoing throughput a client
//! keeps while the peer floods it. One producer thread sends 512 MiB (32 MiB with `--quick`) of
//! 1 KiB or 64 KiB frames through a [`tidegate::Client`] to a peer in the same child process
//! (this program, run again, once per sample) that reads into a 256 KiB buffer and counts. The
//! clock starts at the first send and stops when the peer has the last byte.
//!
//! - `outbound only`: the peer never writes; the reference.
//! - `inbound flood, default write bias`: a second thread of the peer writes 256 KiB chunks to
//!   the socket as fast as it can, and a consumer thread of the client drains
//!   [`tidegate::Client::recv`] as fast as it can; the clock starts once 1 MiB has come in.
//!   Default settings: the driver reads at most 64 KiB per turn, into a 256 KiB inbound buffer.
//! - `inbound flood, write_bias(16 KiB)`: the same, reading at most 16 KiB per turn.
//! - `inbound flood, write_bias(usize::MAX), 256 KiB inbound`: no bias, but the default inbound
//!   buffer, whose free space alone bounds what one turn reads.
//! - `inbound flood, default write bias (64 KiB), 16 MiB inbound`: the bias alone bounds it.
//! - `inbound flood, write_bias(usize::MAX), 16 MiB inbound`: without biasing: the driver
//!   reads until the socket is empty or the large buffer is full (at most 64 reads of 64 KiB
//!   per turn).
//!
//! Each row reports the outgoing throughput; its fraction of the `outbound only` row (the
//! fraction the write-biasing requirement states), as the median over the runs of its ratio to
//! the same run's reference, so that a slow spell of the machine, which hits both, cancels out;
//! the bytes per second the consumer received over the same time; and the most the inbound
//! buffer held.
//!
//! Besides throughput it measures:
//!
//! - peak RSS growth: a child process (this program, run again) sends 1 GiB of freshly
//!   allocated frames through a 1 MiB bound to a sink reading 512 MiB/s, and reports its
//!   `VmHWM` at the end minus its `VmHWM` before sending;
//! - CPU while blocked: a child process blocks a sender on a stalled sink, then reports the CPU
//!   its other threads used over 2 s (the sum of `/proc/self/task/*/schedstat` run times, in
//!   nanoseconds);
//! - wake latency of a blocked sender, two ways: from the moment room was freed for it to the
//!   return of its send, and from a stalled sink resuming its reads to that return (which adds
//!   the kernel's TCP buffers); p50 and p99 over 300 stalls, beside a bare `thread::park` /
//!   `unpark` pair, the floor this machine sets;
//! - what resets cost a transfer (`kills`): 1 GiB of 1 KiB frames from one producer to a sink
//!   that resets the link 50 times along the way, against none, as bytes the sink received per
//!   second, for tidegate with reconnection on and for a hand-written reconnect loop;
//! - memory per parked async sender: a child process parks 100,000 tokio tasks in
//!   `AsyncClient::send` on a full buffer and reports the RSS growth per task; another parks
//!   as many bare tasks holding the same frame; the difference, the sender's cost beyond a bare
//!   parked task, is what its target bounds.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tidegate::DEFAULT_CAPACITY;

mod chart;
mod duplex;
mod extras;
mod implementations;
mod instructions;
mod kills;
mod many;
mod relink;
mod report;
mod sink;
mod targets;
mod throughput;

use crate::chart::write_chart;
use crate::duplex::{DuplexCase, duplex_cases, duplex_table};
use crate::extras::{Extras, extras_tables, loadavg, run_child, run_extras};
use crate::instructions::instructions_section;
use crate::many::{ManyCase, check_open_files, many_cases, many_table};
use crate::report::{fmt_count, rate, throughput_table};
use crate::targets::{Rows, targets_table};
use crate::throughput::{Case, cases};

/// Frame sizes of the throughput cases.
const FRAME_SIZES: [usize; 3] = [64, 1024, 64 * 1024];
/// The sink's read buffer.
const SINK_BUF: usize = 256 * 1024;
/// The chunk the loopback ceiling writes.
const CEILING_CHUNK: usize = 256 * 1024;
/// The bound of every bounded queue, in bytes (tidegate's default capacity).
const CAPACITY: usize = DEFAULT_CAPACITY;
/// The `BufWriter` size of the peers that use one.
const BUFWRITER: usize = 64 * 1024;
/// Async tasks in the async rows.
const TASKS: usize = 1000;
/// Most slices the `Mutex+Condvar` writer hands to one `write_vectored` (Linux's `IOV_MAX`).
const IOV_MAX: usize = 1024;
/// How long any single wait of the benchmark may take before it gives up.
const PATIENCE: Duration = Duration::from_secs(60);

/// The bytes every frame is cut from.
static PAYLOAD: [u8; 64 * 1024] = [0xA5; 64 * 1024];

/// A frame of `len` bytes: a view of [`PAYLOAD`], so that making it costs nothing.
fn frame_of(len: usize) -> Bytes {
    Bytes::from_static(&PAYLOAD[..len])
}

/// An `io::Error` carrying the text of `err`.
fn other(err: impl std::fmt::Display) -> io::Error {
    io::Error::other(err.to_string())
}

/// Nanoseconds since the first call, for timestamps shared through atomics.
fn now_ns() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------------------------------
// Options

/// The options of a run.
#[derive(Debug, Clone)]
struct Opts {
    quick: bool,
    runs: usize,
    /// Run only what matches one of these (all when empty).
    filters: Vec<String>,
    /// Skip the RSS, CPU, wake-latency and parked-sender measurements.
    throughput_only: bool,
    /// Count the instructions per frame of the selected 64 B rows under callgrind.
    instructions: bool,
    /// Where to write the SVG chart of the ratios, if anywhere.
    chart: Option<PathBuf>,
    /// The throughput rows send 1/`scale` of their normal bytes (overrides `--quick`'s 1/16).
    scale: Option<u64>,
}

/// The usage line printed with a bad argument.
const USAGE: &str = "usage: peers [--quick] [--runs N] [--filter TEXT]... [--throughput-only] \
                     [--instructions] [--chart PATH] [--scale N]";

impl Opts {
    /// Parses the command line (without the program's name).
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut opts = Self {
            quick: false,
            runs: 0,
            filters: Vec::new(),
            throughput_only: false,
            instructions: false,
            chart: None,
            scale: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => opts.quick = true,
                "--runs" => {
                    let n = args.next().ok_or("--runs needs a number")?;
                    opts.runs = n.parse().map_err(|_| format!("bad --runs {n:?}"))?;
                }
                "--filter" => opts.filters.push(args.next().ok_or("--filter needs text")?.clone()),
                "--throughput-only" => opts.throughput_only = true,
                "--instructions" => opts.instructions = true,
                "--chart" => {
                    opts.chart = Some(PathBuf::from(args.next().ok_or("--chart needs a path")?));
                }
                "--scale" => {
                    let n = args.next().ok_or("--scale needs a number")?;
                    let scale: u64 = n.parse().map_err(|_| format!("bad --scale {n:?}"))?;
                    if scale == 0 {
                        return Err("--scale must be at least 1".into());
                    }
                    opts.scale = Some(scale);
                }
                // Cargo passes `--bench` to bench targets.
                "--bench" => {}
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if opts.runs == 0 {
            opts.runs = if opts.quick { 1 } else { 5 };
        }
        Ok(opts)
    }

    /// Bytes each throughput case sends.
    fn total_bytes(&self, frame: usize) -> u64 {
        let mib: u64 = match frame {
            64 => 256,
            1024 => 1024,
            _ => 2048,
        };
        let divisor = self.scale.unwrap_or(if self.quick { 16 } else { 1 });
        (mib << 20) / divisor
    }

    /// Whether the row or measurement `name` is selected by the filters.
    fn wanted(&self, name: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| name.contains(f.as_str()))
    }
}

/// Runs the benchmark and prints its report, or, with `--child`, one child process's part.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        if let Err(e) = run_child(&args[1..]) {
            eprintln!("child failed: {e}");
            std::process::exit(1);
        }
        return;
    }
    let opts = match Opts::parse(&args) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let load_before = loadavg();
    let mut log = |line: String| eprintln!("[{:6.1}s] {line}", started.elapsed().as_secs_f64());
    let mut cases: Vec<Case> = cases().into_iter().filter(|c| opts.wanted(&c.name())).collect();
    let mut many: Vec<ManyCase> =
        many_cases().into_iter().filter(|c| opts.wanted(&c.name())).collect();
    let mut duplex: Vec<DuplexCase> =
        duplex_cases().into_iter().filter(|c| opts.wanted(&c.name())).collect();
    let mut extras = Extras::default();
    let mut failures = Vec::new();
    if !many.is_empty()
        && let Err(e) = check_open_files(ManyCase::conns(&opts))
    {
        log(format!("many connections: FAILED: {e}"));
        failures.push(format!("many connections: {e}"));
        many.clear();
    }
    for run in 1..=opts.runs {
        log(format!("run {run} of {}", opts.runs));
        for case in &mut cases {
            match case.run(&opts) {
                Ok(sample) => {
                    let (msgs, mb) = rate(sample);
                    log(format!("{}: {} msgs/s, {mb:.0} MB/s", case.name(), fmt_count(msgs)));
                    case.samples.push(sample);
                }
                Err(e) => {
                    log(format!("{}: FAILED: {e}", case.name()));
                    failures.push(format!("{}: {e}", case.name()));
                }
            }
        }
        for case in &mut many {
            match case.run(&opts) {
                Ok(sample) => {
                    let (msgs, mb) = rate(sample.sample);
                    log(format!(
                        "{}: {} msgs/s, {mb:.0} MB/s; {} threads, connected in {:.0} ms, \
                         peak RSS +{:.1} MiB, sink busy {:.0}%, {} sends waited",
                        case.name(),
                        fmt_count(msgs),
                        sample.threads,
                        sample.connect_secs * 1e3,
                        sample.growth_kib / 1024.0,
                        sample.sink_busy * 100.0,
                        sample.waited
                    ));
                    case.samples.push(sample);
                }
                Err(e) => {
                    log(format!("{}: FAILED: {e}", case.name()));
                    failures.push(format!("{}: {e}", case.name()));
                }
            }
        }
        for case in &mut duplex {
            match case.run(&opts, run) {
                Ok(sample) => {
                    log(format!(
                        "{}: outbound {:.0} MB/s, inbound {:.0} MB/s meanwhile, \
                         inbound buffer high water {:.0} KiB",
                        case.name(),
                        sample.out_mbps(),
                        sample.in_mbps(),
                        sample.inbound_high_water as f64 / 1024.0
                    ));
                    case.samples.push(sample);
                }
                Err(e) => {
                    log(format!("{}: FAILED: {e}", case.name()));
                    failures.push(format!("{}: {e}", case.name()));
                }
            }
        }
        if !opts.throughput_only {
            run_extras(&opts, &mut extras, &mut failures, &mut log);
        }
    }
    let instructions = if opts.instructions {
        instructions_section(&opts, &cases, &mut failures, &mut log)
    } else {
        String::new()
    };
    let mut report = String::new();
    let _ = writeln!(
        report,
        "\nMedians of {} run(s){}; MB = 10^6 bytes; spread = half the range of the runs around the median.\n",
        opts.runs,
        match (opts.scale, opts.quick) {
            (Some(n), _) => format!(" (--scale {n}: 1/{n} of the throughput rows' bytes)"),
            (None, true) => " (--quick: 1/16 of the bytes)".to_string(),
            (None, false) => String::new(),
        }
    );
    let _ = writeln!(
        report,
        "Load average (1, 5, 15 min) before: {load_before}; after: {}.\n",
        loadavg()
    );
    report.push_str(&throughput_table(&cases));
    report.push_str(&instructions);
    if !many.is_empty() {
        report.push_str(&many_table(&many, ManyCase::conns(&opts)));
    }
    if !duplex.is_empty() {
        report.push_str(&duplex_table(&duplex));
    }
    if !opts.throughput_only {
        report.push_str(&extras_tables(&mut extras));
    }
    let rows = Rows { cases: &cases, many: &many };
    report.push_str(&targets_table(rows, ManyCase::conns(&opts), &extras));
    println!("{report}");
    if let Some(path) = &opts.chart {
        let caption = format!(
            "tidegate's throughput targets, measured ratio and required: medians of {} run(s){}",
            opts.runs,
            if opts.quick { ", --quick" } else { "" }
        );
        match write_chart(path, rows, &caption) {
            Ok(0) => log(format!(
                "chart: no throughput target had both its rows measured; {} not written",
                path.display()
            )),
            Ok(bars) => log(format!("chart: {bars} bars written to {}", path.display())),
            Err(e) => {
                log(format!("chart: FAILED: {e}"));
                failures.push(format!("chart {}: {e}", path.display()));
            }
        }
    }
    log(format!("done in {:.0} s", started.elapsed().as_secs_f64()));
    if !failures.is_empty() {
        eprintln!("failures:\n  {}", failures.join("\n  "));
        std::process::exit(1);
    }
}
