//! The throughput cases: every implementation, frame size and producer count, one sample each.

use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

use bytes::Bytes;
use tidegate::{AsyncClient, Client, FrameBatch};

use crate::implementations::{
    Chan, ChannelPeer, Crossbeam, Flume, MutexQueue, Peer, SyncChannel, Tidegate, connect,
};
use crate::sink::spawn_sink;
use crate::{BUFWRITER, CAPACITY, CEILING_CHUNK, FRAME_SIZES, Opts, TASKS, frame_of, other};

/// One timed run of a case.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) msgs: u64,
    pub(crate) bytes: u64,
    pub(crate) secs: f64,
}

/// Runs `body` against a fresh sink expecting `bytes`; `body` returns when its clock started.
pub(crate) fn timed(
    msgs: u64,
    bytes: u64,
    body: impl FnOnce(SocketAddr) -> io::Result<Instant>,
) -> io::Result<Sample> {
    let (addr, sink) = spawn_sink(bytes, None)?;
    let started = body(addr)?;
    let report = sink.join().map_err(|_| other("the sink panicked"))??;
    if report.bytes != bytes {
        return Err(other(format!("the sink got {} bytes, expected {bytes}", report.bytes)));
    }
    let secs = report.done_at.saturating_duration_since(started).as_secs_f64();
    Ok(Sample { msgs, bytes, secs })
}

pub(crate) fn loopback_ceiling(total: u64) -> io::Result<Sample> {
    let chunks = total / CEILING_CHUNK as u64;
    timed(chunks, chunks * CEILING_CHUNK as u64, |addr| {
        let mut stream = connect(addr)?;
        let chunk = vec![0xA5u8; CEILING_CHUNK];
        let started = Instant::now();
        for _ in 0..chunks {
            stream.write_all(&chunk)?;
        }
        Ok(started)
    })
}

pub(crate) fn bufwriter(frame: usize, msgs: u64) -> io::Result<Sample> {
    timed(msgs, msgs * frame as u64, |addr| {
        let mut out = BufWriter::with_capacity(BUFWRITER, connect(addr)?);
        let frame = frame_of(frame);
        let started = Instant::now();
        for _ in 0..msgs {
            out.write_all(&frame)?;
        }
        out.flush()?;
        Ok(started)
    })
}

/// `producers` threads, each writing its frames into a 64 KiB `BufWriter` over its own clone of
/// one `Client` (`impl io::Write`): small frames reach the core in 64 KiB pieces.
pub(crate) fn tidegate_bufwriter(frame: usize, producers: usize, per: u64) -> io::Result<Sample> {
    let msgs = per * producers as u64;
    timed(msgs, msgs * frame as u64, |addr| {
        let client = Client::connect(&format!("tcp://{addr}")).map_err(other)?;
        let start = Arc::new(Barrier::new(producers + 1));
        let workers: Vec<_> = (0..producers)
            .map(|_| {
                let client = client.clone();
                let start = start.clone();
                thread::spawn(move || -> io::Result<()> {
                    let frame = frame_of(frame);
                    let mut out = BufWriter::with_capacity(BUFWRITER, client);
                    start.wait();
                    for _ in 0..per {
                        out.write_all(&frame)?;
                    }
                    out.flush()
                })
            })
            .collect();
        start.wait();
        let started = Instant::now();
        for worker in workers {
            worker.join().map_err(|_| other("a producer panicked"))??;
        }
        client.flush().map_err(other)?;
        let report = client.close().map_err(other)?;
        if !report.is_clean() {
            return Err(other(format!("unclean close: {report:?}")));
        }
        Ok(started)
    })
}

/// Frames per batch in the `send_batch` rows.
pub(crate) const BATCH: usize = 64;

/// `producers` threads sharing one `Client`, each copying its frames into a [`FrameBatch`] and
/// sending it with `send_batch` every [`BATCH`] frames.
pub(crate) fn tidegate_batch(frame: usize, producers: usize, per: u64) -> io::Result<Sample> {
    let msgs = per * producers as u64;
    timed(msgs, msgs * frame as u64, |addr| {
        let client = Client::builder().capacity(CAPACITY).connect(&format!("tcp://{addr}"));
        let client = client.map_err(other)?;
        let start = Arc::new(Barrier::new(producers + 1));
        let workers: Vec<_> = (0..producers)
            .map(|_| {
                let client = client.clone();
                let start = start.clone();
                thread::spawn(move || -> io::Result<()> {
                    let frame = frame_of(frame);
                    start.wait();
                    let mut batch = FrameBatch::with_capacity(BATCH * frame.len());
                    for _ in 0..per {
                        batch.push(&frame);
                        if batch.len() == BATCH {
                            let full = std::mem::replace(
                                &mut batch,
                                FrameBatch::with_capacity(BATCH * frame.len()),
                            );
                            client.send_batch(full).map_err(other)?;
                        }
                    }
                    if !batch.is_empty() {
                        client.send_batch(batch).map_err(other)?;
                    }
                    Ok(())
                })
            })
            .collect();
        start.wait();
        let started = Instant::now();
        for worker in workers {
            worker.join().map_err(|_| other("a producer panicked"))??;
        }
        client.flush().map_err(other)?;
        let report = client.close().map_err(other)?;
        if !report.is_clean() {
            return Err(other(format!("unclean close: {report:?}")));
        }
        Ok(started)
    })
}

/// `producers` threads each sending `per` frames through `P`.
pub(crate) fn threads<P: Peer>(frame: usize, producers: usize, per: u64) -> io::Result<Sample> {
    let msgs = per * producers as u64;
    timed(msgs, msgs * frame as u64, |addr| {
        let (tx, finish) = P::open(addr, frame, CAPACITY, None)?;
        let start = Arc::new(Barrier::new(producers + 1));
        let workers: Vec<_> = (0..producers)
            .map(|_| {
                let tx = tx.clone();
                let start = start.clone();
                thread::spawn(move || -> io::Result<()> {
                    let frame = frame_of(frame);
                    start.wait();
                    for _ in 0..per {
                        P::send(&tx, frame.clone())?;
                    }
                    Ok(())
                })
            })
            .collect();
        drop(tx);
        start.wait();
        let started = Instant::now();
        for worker in workers {
            worker.join().map_err(|_| other("a producer panicked"))??;
        }
        finish()?;
        Ok(started)
    })
}

pub(crate) fn tokio_runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()
}

/// `producers` tokio tasks feeding a bounded `tokio::sync::mpsc` and a writer task.
pub(crate) fn tokio_mpsc(frame: usize, producers: usize, per: u64) -> io::Result<Sample> {
    use tokio::io::AsyncWriteExt;
    let msgs = per * producers as u64;
    let rt = tokio_runtime()?;
    timed(msgs, msgs * frame as u64, |addr| {
        rt.block_on(async {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>((CAPACITY / frame).max(1));
            let writer = tokio::spawn(async move {
                let mut out = tokio::io::BufWriter::with_capacity(BUFWRITER, stream);
                while let Some(frame) = rx.recv().await {
                    out.write_all(&frame).await?;
                }
                out.flush().await?;
                out.into_inner().shutdown().await
            });
            let started = Instant::now();
            let tasks: Vec<_> = (0..producers)
                .map(|_| {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let frame = frame_of(frame);
                        for _ in 0..per {
                            tx.send(frame.clone()).await.map_err(other)?;
                        }
                        Ok::<_, io::Error>(())
                    })
                })
                .collect();
            drop(tx);
            for task in tasks {
                task.await.map_err(other)??;
            }
            writer.await.map_err(other)??;
            Ok(started)
        })
    })
}

/// `tasks` tokio tasks sending through one `AsyncClient`.
pub(crate) fn tidegate_tokio(frame: usize, tasks: usize, per: u64) -> io::Result<Sample> {
    let msgs = per * tasks as u64;
    let rt = tokio_runtime()?;
    timed(msgs, msgs * frame as u64, |addr| {
        rt.block_on(async {
            let client = AsyncClient::connect(&format!("tcp://{addr}")).await.map_err(other)?;
            let started = Instant::now();
            let handles: Vec<_> = (0..tasks)
                .map(|_| {
                    let client = client.clone();
                    tokio::spawn(async move {
                        let frame = frame_of(frame);
                        for _ in 0..per {
                            client.send(frame.clone()).await.map_err(other)?;
                        }
                        Ok::<_, io::Error>(())
                    })
                })
                .collect();
            for handle in handles {
                handle.await.map_err(other)??;
            }
            client.flush().await.map_err(other)?;
            let report = client.close().await.map_err(other)?;
            if !report.is_clean() {
                return Err(other(format!("unclean close: {report:?}")));
            }
            Ok(started)
        })
    })
}

/// `tasks` async-std tasks sending through one `AsyncClient`.
pub(crate) fn tidegate_async_std(frame: usize, tasks: usize, per: u64) -> io::Result<Sample> {
    let msgs = per * tasks as u64;
    timed(msgs, msgs * frame as u64, |addr| {
        async_std::task::block_on(async {
            let client = AsyncClient::connect(&format!("tcp://{addr}")).await.map_err(other)?;
            let started = Instant::now();
            let handles: Vec<_> = (0..tasks)
                .map(|_| {
                    let client = client.clone();
                    async_std::task::spawn(async move {
                        let frame = frame_of(frame);
                        for _ in 0..per {
                            client.send(frame.clone()).await.map_err(other)?;
                        }
                        Ok::<_, io::Error>(())
                    })
                })
                .collect();
            for handle in handles {
                handle.await?;
            }
            client.flush().await.map_err(other)?;
            let report = client.close().await.map_err(other)?;
            if !report.is_clean() {
                return Err(other(format!("unclean close: {report:?}")));
            }
            Ok(started)
        })
    })
}

/// The implementations of the throughput table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Imp {
    Ceiling,
    BufWriter,
    Tidegate,
    TidegateBatch,
    TidegateBufWriter,
    TidegateTokio,
    TidegateAsyncStd,
    MutexQueue,
    Flume,
    Crossbeam,
    SyncChannel,
    TokioMpsc,
}

impl Imp {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Ceiling => "loopback ceiling (256 KiB writes)",
            Self::BufWriter => "BufWriter, 1 thread, unbounded",
            Self::Tidegate => "tidegate Client",
            Self::TidegateBatch => "tidegate Client, send_batch of 64 frames",
            Self::TidegateBufWriter => "tidegate Client behind a 64 KiB BufWriter",
            Self::TidegateTokio => "tidegate AsyncClient on tokio",
            Self::TidegateAsyncStd => "tidegate AsyncClient on async-std",
            Self::MutexQueue => MutexQueue::NAME,
            Self::Flume => Flume::NAME,
            Self::Crossbeam => Crossbeam::NAME,
            Self::SyncChannel => SyncChannel::NAME,
            Self::TokioMpsc => "tokio mpsc + writer task",
        }
    }

    /// A short name, for the labels of the chart.
    pub(crate) fn short_name(self) -> &'static str {
        match self {
            Self::Ceiling => "loopback ceiling",
            Self::BufWriter => "BufWriter",
            Self::Tidegate => "Client",
            Self::TidegateBatch => "Client, send_batch of 64",
            Self::TidegateBufWriter => "Client behind a BufWriter",
            Self::TidegateTokio => "AsyncClient on tokio",
            Self::TidegateAsyncStd => "AsyncClient on async-std",
            Self::MutexQueue => MutexQueue::NAME,
            Self::Flume => Flume::NAME,
            Self::Crossbeam => Crossbeam::NAME,
            Self::SyncChannel => SyncChannel::NAME,
            Self::TokioMpsc => "tokio mpsc",
        }
    }

    pub(crate) fn is_tidegate(self) -> bool {
        matches!(
            self,
            Self::Tidegate
                | Self::TidegateBatch
                | Self::TidegateBufWriter
                | Self::TidegateTokio
                | Self::TidegateAsyncStd
        )
    }

    pub(crate) fn is_channel(self) -> bool {
        matches!(self, Self::Flume | Self::Crossbeam | Self::SyncChannel | Self::TokioMpsc)
    }

    pub(crate) fn is_peer(self) -> bool {
        !self.is_tidegate() && self != Self::Ceiling
    }
}

/// One row of the throughput table.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) imp: Imp,
    pub(crate) frame: usize,
    pub(crate) producers: usize,
    pub(crate) samples: Vec<Sample>,
}

impl Case {
    pub(crate) fn name(&self) -> String {
        let tasks = self.imp.is_tidegate() && self.producers == TASKS || self.imp == Imp::TokioMpsc;
        let unit = match (tasks, self.producers) {
            (true, 1) => "task",
            (true, _) => "tasks",
            (false, 1) => "thread",
            (false, _) => "threads",
        };
        format!("{} / {} B / {} {unit}", self.imp.name(), self.frame, self.producers)
    }

    /// Frames each producer sends in one sample with `opts`.
    pub(crate) fn per_producer(&self, opts: &Opts) -> u64 {
        (opts.total_bytes(self.frame) / self.frame as u64 / self.producers as u64).max(1)
    }

    pub(crate) fn run(&self, opts: &Opts) -> io::Result<Sample> {
        let total = opts.total_bytes(self.frame);
        let per = self.per_producer(opts);
        let (frame, producers) = (self.frame, self.producers);
        match self.imp {
            Imp::Ceiling => loopback_ceiling(total),
            Imp::BufWriter => bufwriter(frame, per),
            Imp::Tidegate => threads::<Tidegate>(frame, producers, per),
            Imp::TidegateBatch => tidegate_batch(frame, producers, per),
            Imp::TidegateBufWriter => tidegate_bufwriter(frame, producers, per),
            Imp::TidegateTokio => tidegate_tokio(frame, producers, per),
            Imp::TidegateAsyncStd => tidegate_async_std(frame, producers, per),
            Imp::MutexQueue => threads::<MutexQueue>(frame, producers, per),
            Imp::Flume => threads::<ChannelPeer<Flume>>(frame, producers, per),
            Imp::Crossbeam => threads::<ChannelPeer<Crossbeam>>(frame, producers, per),
            Imp::SyncChannel => threads::<ChannelPeer<SyncChannel>>(frame, producers, per),
            Imp::TokioMpsc => tokio_mpsc(frame, producers, per),
        }
    }

    /// The median by throughput.
    pub(crate) fn median(&self) -> Option<Sample> {
        let mut rates: Vec<Sample> = self.samples.clone();
        rates.sort_by(|a, b| a.secs.total_cmp(&b.secs));
        rates.get(rates.len() / 2).copied()
    }

    pub(crate) fn spread(&self) -> f64 {
        let rates: Vec<f64> = self.samples.iter().map(|s| s.bytes as f64 / s.secs).collect();
        let max = rates.iter().copied().fold(f64::MIN, f64::max);
        let min = rates.iter().copied().fold(f64::MAX, f64::min);
        self.median().map_or(0.0, |m| (max - min) / (m.bytes as f64 / m.secs))
    }
}

pub(crate) fn cases() -> Vec<Case> {
    let mut cases =
        vec![Case { imp: Imp::Ceiling, frame: CEILING_CHUNK, producers: 1, samples: vec![] }];
    for frame in FRAME_SIZES {
        let mut add = |imp, producers| cases.push(Case { imp, frame, producers, samples: vec![] });
        add(Imp::BufWriter, 1);
        for producers in [1, 4] {
            add(Imp::Tidegate, producers);
            if frame == 64 {
                add(Imp::TidegateBatch, producers);
            }
            if frame < BUFWRITER {
                add(Imp::TidegateBufWriter, producers);
            }
            add(Imp::MutexQueue, producers);
            add(Imp::Flume, producers);
            add(Imp::Crossbeam, producers);
            add(Imp::SyncChannel, producers);
            add(Imp::TokioMpsc, producers);
        }
        add(Imp::TidegateTokio, TASKS);
        add(Imp::TidegateAsyncStd, TASKS);
        add(Imp::TokioMpsc, TASKS);
    }
    cases
}
