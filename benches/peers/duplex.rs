//! The full-duplex rows: outgoing throughput kept while the peer floods the client.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use tidegate::Client;

use crate::extras::{child, value};
use crate::report::{fmt_size, median, rate};
use crate::sink::accept;
use crate::throughput::Sample;
use crate::{CEILING_CHUNK, Opts, PATIENCE, SINK_BUF, frame_of, other};

/// Bytes each full-duplex sample sends (1/16 with `--quick`).
pub(crate) const DUPLEX_BYTES: u64 = 512 << 20;
/// Frame sizes of the full-duplex rows.
pub(crate) const DUPLEX_FRAMES: [usize; 2] = [1024, 64 * 1024];
/// Inbound bytes the client must have received before the clock starts, so that the flood is
/// under way.
pub(crate) const DUPLEX_WARMUP: u64 = 1 << 20;
/// The inbound buffer of the unbiased row.
pub(crate) const DUPLEX_BIG_INBOUND: usize = 16 << 20;
/// The write bias of the small-bias row.
pub(crate) const DUPLEX_SMALL_BIAS: usize = 16 * 1024;

/// How the client and its peer are set up in a full-duplex row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DuplexMode {
    /// The peer never writes: the reference.
    OutboundOnly,
    /// The peer floods; default write bias and inbound buffer.
    DefaultBias,
    /// The peer floods; `write_bias(16 KiB)`.
    SmallBias,
    /// The peer floods; `write_bias(usize::MAX)`, default inbound buffer: the buffer alone
    /// bounds what one turn reads.
    BufferOnly,
    /// The peer floods; default write bias and a 16 MiB inbound buffer: the bias alone bounds
    /// what one turn reads.
    BiasOnly,
    /// The peer floods; `write_bias(usize::MAX)` and a 16 MiB inbound buffer.
    NoBias,
}

impl DuplexMode {
    pub(crate) const ALL: [Self; 6] = [
        Self::OutboundOnly,
        Self::DefaultBias,
        Self::SmallBias,
        Self::BufferOnly,
        Self::BiasOnly,
        Self::NoBias,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::OutboundOnly => "outbound only (the peer never writes)",
            Self::DefaultBias => "inbound flood, default write bias (64 KiB), 256 KiB inbound",
            Self::SmallBias => "inbound flood, write_bias(16 KiB), 256 KiB inbound",
            Self::BufferOnly => "inbound flood, write_bias(usize::MAX), 256 KiB inbound",
            Self::BiasOnly => "inbound flood, default write bias (64 KiB), 16 MiB inbound",
            Self::NoBias => "inbound flood, write_bias(usize::MAX), 16 MiB inbound",
        }
    }

    /// The child's name for it.
    pub(crate) fn arg(self) -> &'static str {
        match self {
            Self::OutboundOnly => "alone",
            Self::DefaultBias => "default",
            Self::SmallBias => "small",
            Self::BufferOnly => "buffer",
            Self::BiasOnly => "bias",
            Self::NoBias => "none",
        }
    }

    pub(crate) fn from_arg(arg: &str) -> io::Result<Self> {
        Self::ALL.into_iter().find(|m| m.arg() == arg).ok_or_else(|| other("child: unknown mode"))
    }

    pub(crate) fn flood(self) -> bool {
        self != Self::OutboundOnly
    }

    pub(crate) fn builder(self) -> tidegate::ClientBuilder {
        let builder = Client::builder();
        match self {
            Self::OutboundOnly | Self::DefaultBias => builder,
            Self::SmallBias => builder.write_bias(DUPLEX_SMALL_BIAS),
            Self::BufferOnly => builder.write_bias(usize::MAX),
            Self::BiasOnly => builder.inbound_capacity(DUPLEX_BIG_INBOUND),
            Self::NoBias => builder.write_bias(usize::MAX).inbound_capacity(DUPLEX_BIG_INBOUND),
        }
    }
}

/// One run of a full-duplex row, as the child measured it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DuplexSample {
    /// The run it belongs to (from 1), to compare it with the same run's reference.
    pub(crate) run: usize,
    /// The outgoing data: frames, bytes, and the time from the first send to the peer having
    /// the last byte.
    pub(crate) out: Sample,
    /// Bytes the client's consumer received over the same time.
    pub(crate) inbound: u64,
    /// The most bytes the inbound buffer held.
    pub(crate) inbound_high_water: u64,
}

impl DuplexSample {
    pub(crate) fn out_mbps(&self) -> f64 {
        rate(self.out).1
    }

    pub(crate) fn in_mbps(&self) -> f64 {
        self.inbound as f64 / self.out.secs / 1e6
    }
}

/// One full-duplex row.
#[derive(Debug, Clone)]
pub(crate) struct DuplexCase {
    pub(crate) mode: DuplexMode,
    pub(crate) frame: usize,
    pub(crate) samples: Vec<DuplexSample>,
}

impl DuplexCase {
    pub(crate) fn name(&self) -> String {
        format!("full duplex / {} / {} B", self.mode.name(), self.frame)
    }

    /// Runs one sample in a child process, so that the flooding peer and its threads do not
    /// outlive it.
    pub(crate) fn run(&self, opts: &Opts, run: usize) -> io::Result<DuplexSample> {
        let total = if opts.quick { DUPLEX_BYTES / 16 } else { DUPLEX_BYTES };
        let msgs = total / self.frame as u64;
        let pairs = child(&[
            "duplex".into(),
            self.mode.arg().into(),
            self.frame.to_string(),
            msgs.to_string(),
        ])?;
        Ok(DuplexSample {
            run,
            out: Sample { msgs, bytes: msgs * self.frame as u64, secs: value(&pairs, "secs")? },
            inbound: value(&pairs, "inbound")? as u64,
            inbound_high_water: value(&pairs, "inbound_high_water")? as u64,
        })
    }

    pub(crate) fn median_of(&self, field: impl Fn(&DuplexSample) -> f64) -> f64 {
        median(&mut self.samples.iter().map(field).collect::<Vec<_>>())
    }

    /// Its outgoing throughput over that of `reference` in the same run, for every run both
    /// have: the runs are interleaved, so a slow spell of the machine hits both alike.
    pub(crate) fn ratios(&self, reference: &Self) -> Vec<f64> {
        self.samples
            .iter()
            .filter_map(|s| {
                let r = reference.samples.iter().find(|r| r.run == s.run)?;
                Some(s.out_mbps() / r.out_mbps())
            })
            .collect()
    }

    /// Half the range of `field` over the runs, relative to its median.
    pub(crate) fn spread_of(&self, field: impl Fn(&DuplexSample) -> f64) -> f64 {
        let values: Vec<f64> = self.samples.iter().map(&field).collect();
        let max = values.iter().copied().fold(f64::MIN, f64::max);
        let min = values.iter().copied().fold(f64::MAX, f64::min);
        (max - min) / 2.0 / self.median_of(field)
    }
}

pub(crate) fn duplex_cases() -> Vec<DuplexCase> {
    DUPLEX_FRAMES
        .into_iter()
        .flat_map(|frame| DuplexMode::ALL.map(|mode| DuplexCase { mode, frame, samples: vec![] }))
        .collect()
}

/// The child's side of a full-duplex row: a tidegate `Client` over loopback TCP to a peer in
/// this process that reads and counts; with a flood, the peer also writes 256 KiB chunks as
/// fast as it can from a second thread, while a consumer thread drains `Client::recv`. One
/// producer (this thread) sends `msgs` frames of `frame` bytes. Prints the time from the first
/// send to the peer having the last byte, and the bytes the consumer received meanwhile.
pub(crate) fn child_duplex(mode: DuplexMode, frame: usize, msgs: u64) -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let client = mode.builder().connect(&format!("tcp://{addr}")).map_err(other)?;
    let stream = accept(&listener)?;
    stream.set_nodelay(true)?;
    let expected = msgs * frame as u64;
    // Bytes the consumer has received.
    let drained = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = if mode.flood() {
        let mut writer = stream.try_clone()?;
        // So that it sees `stop` even if nobody reads.
        writer.set_write_timeout(Some(Duration::from_millis(50)))?;
        let stop = stop.clone();
        Some(thread::Builder::new().name("flooder".into()).spawn(move || {
            let chunk = vec![0x5Au8; CEILING_CHUNK];
            while !stop.load(Ordering::Relaxed) {
                match writer.write(&chunk) {
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock
                                | io::ErrorKind::TimedOut
                                | io::ErrorKind::Interrupted
                        ) => {}
                    Err(_) => return,
                }
            }
        })?)
    } else {
        None
    };
    // The peer's reader: reports when it has every outgoing byte, and how much the consumer
    // had received by then; then reads on until the client closes.
    let (done_tx, done_rx) = mpsc::channel();
    let reader = {
        let drained = drained.clone();
        let mut stream = stream;
        thread::Builder::new().name("sink".into()).spawn(move || -> io::Result<u64> {
            stream.set_read_timeout(Some(PATIENCE))?;
            let mut buf = vec![0u8; SINK_BUF];
            let mut bytes = 0u64;
            let mut reported = false;
            loop {
                let n = match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // A reset once everything arrived (the client closed with unread flood
                    // bytes) ends the stream as well.
                    Err(_) if reported => break,
                    Err(e) => return Err(e),
                };
                bytes += n as u64;
                if !reported && bytes >= expected {
                    reported = true;
                    let _ = done_tx.send((Instant::now(), drained.load(Ordering::SeqCst)));
                }
            }
            Ok(bytes)
        })?
    };
    let consumer = {
        let (client, drained) = (client.clone(), drained.clone());
        thread::Builder::new().name("consumer".into()).spawn(move || -> io::Result<()> {
            while let Some(chunk) = client.recv_timeout(PATIENCE).map_err(other)? {
                drained.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
            Ok(())
        })?
    };
    if mode.flood() {
        let deadline = Instant::now() + PATIENCE;
        while drained.load(Ordering::SeqCst) < DUPLEX_WARMUP {
            if Instant::now() > deadline {
                return Err(other("full duplex: the flood never arrived"));
            }
            thread::sleep(Duration::from_millis(1));
        }
    }
    let frame = frame_of(frame);
    let started = Instant::now();
    let inbound_before = drained.load(Ordering::SeqCst);
    for _ in 0..msgs {
        client.send(frame.clone()).map_err(other)?;
    }
    client.flush_timeout(PATIENCE).map_err(other)?;
    let (done_at, inbound_after) = done_rx
        .recv_timeout(PATIENCE)
        .map_err(|_| other("full duplex: the peer never got every byte"))?;
    let high_water = client.stats().inbound_high_water;
    stop.store(true, Ordering::SeqCst);
    if let Some(flooder) = flooder {
        flooder.join().map_err(|_| other("the flooder panicked"))?;
    }
    let report = client.close_timeout(PATIENCE).map_err(other)?;
    if !report.is_clean() || report.bytes_written() != expected {
        return Err(other(format!("unclean close ({expected} bytes sent): {report:?}")));
    }
    consumer.join().map_err(|_| other("the consumer panicked"))??;
    let got = reader.join().map_err(|_| other("the peer's reader panicked"))??;
    if got != expected {
        return Err(other(format!("the peer got {got} bytes, expected {expected}")));
    }
    println!("secs={}", done_at.saturating_duration_since(started).as_secs_f64());
    println!("inbound={}", inbound_after.saturating_sub(inbound_before));
    println!("inbound_high_water={high_water}");
    Ok(())
}

pub(crate) fn duplex_table(cases: &[DuplexCase]) -> String {
    let mut out = String::new();
    out.push_str(
        "\n| full duplex: frame | tidegate Client, 1 producer | outbound MB/s | spread \
         | × outbound only, same run (median ± half the range) | inbound MB/s meanwhile \
         | spread | inbound buffer high water |\n",
    );
    out.push_str("|---:|---|---:|---:|---:|---:|---:|---:|\n");
    for case in cases {
        if case.samples.is_empty() {
            continue;
        }
        let mb = case.median_of(DuplexSample::out_mbps);
        let reference =
            cases.iter().find(|c| c.mode == DuplexMode::OutboundOnly && c.frame == case.frame);
        let mut ratios = reference.map(|r| case.ratios(r)).unwrap_or_default();
        let fraction = if ratios.is_empty() {
            "–".to_string()
        } else {
            let (lo, hi) =
                ratios.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
            format!("{:.2}× ±{:.2}", median(&mut ratios), (hi - lo) / 2.0)
        };
        let (inbound, inbound_spread) = if case.mode.flood() {
            (
                format!("{:.0}", case.median_of(DuplexSample::in_mbps)),
                format!("±{:.0}%", case.spread_of(DuplexSample::in_mbps) * 100.0),
            )
        } else {
            ("–".into(), "–".into())
        };
        let _ = writeln!(
            out,
            "| {} | {} | {mb:.0} | ±{:.0}% | {fraction} | {inbound} | {inbound_spread} | {:.0} KiB |",
            fmt_size(case.frame),
            case.mode.name(),
            case.spread_of(DuplexSample::out_mbps) * 100.0,
            case.median_of(|s| s.inbound_high_water as f64) / 1024.0,
        );
    }
    out
}
