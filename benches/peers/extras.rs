//! The measurements beside throughput: peak RSS, CPU while blocked, wake latency, parked async
//! senders, each in a child process where it needs one.

use std::fmt::Write as _;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tidegate::AsyncClient;

use crate::duplex::{DuplexMode, child_duplex};
use crate::implementations::{
    Chan, ChannelPeer, Crossbeam, Flume, MutexQueue, Observed, Peer, Probe, SyncChannel, Tidegate,
    Unbounded,
};
use crate::kills::{KILL_FRAME, KILL_PEERS, KILLS, KillSample, kills_row, kills_throughput};
use crate::many::child_many;
use crate::relink::{RELINK_PEERS, relink_latency};
use crate::report::{fmt_size, median};
use crate::sink::{accept, spawn_sink};
use crate::throughput::tokio_runtime;
use crate::{CAPACITY, Opts, PATIENCE, SINK_BUF, frame_of, now_ns, other};

/// The first three fields of `/proc/loadavg`: other work on the machine skews every number.
pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|_| "unknown".into())
}

pub(crate) fn proc_status_kib(field: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| other(format!("no {field} in /proc/self/status")))
}

/// CPU time of every thread of this process but the calling one, from
/// `/proc/self/task/*/schedstat` (nanoseconds).
pub(crate) fn process_cpu_ns() -> io::Result<u64> {
    let me = std::fs::read_link("/proc/thread-self")?;
    let me = me.file_name().map(ToOwned::to_owned);
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task")? {
        let task = task?;
        if Some(task.file_name()) == me {
            continue;
        }
        // A thread may end between the listing and the read.
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else { continue };
        total += stat.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    }
    Ok(total)
}

/// Runs this program again with `args`, and returns the `key=value` pairs it printed.
pub(crate) fn child(args: &[String]) -> io::Result<Vec<(String, String)>> {
    let out = Command::new(std::env::current_exe()?).arg("--child").args(args).output()?;
    if !out.status.success() {
        return Err(other(format!(
            "child {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())))
        .collect())
}

pub(crate) fn value(pairs: &[(String, String)], key: &str) -> io::Result<f64> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| other(format!("the child printed no {key}")))
}

/// The child's side of the peak RSS measurement: sends `total` bytes of freshly allocated
/// frames and prints the growth of `VmHWM`.
pub(crate) fn child_rss<P: Peer>(addr: SocketAddr, frame: usize, total: u64) -> io::Result<()> {
    let (tx, finish) = P::open(addr, frame, CAPACITY, None)?;
    let mut pattern = 0u8;
    // Warm up the allocator with a few frames so its first arenas are in the baseline.
    drop((0..16).map(|_| vec![0u8; frame]).collect::<Vec<_>>());
    let baseline = proc_status_kib("VmHWM")?;
    for _ in 0..total / frame as u64 {
        pattern = pattern.wrapping_add(1);
        P::send(&tx, Bytes::from(vec![pattern; frame]))?;
    }
    let peak = proc_status_kib("VmHWM")?;
    drop(tx);
    finish()?;
    println!("growth_kib={}", peak.saturating_sub(baseline));
    Ok(())
}

/// The child's side of the CPU measurement: blocks a sender on a stalled sink and prints the
/// CPU the whole process used over `secs` seconds.
pub(crate) fn child_cpu<P: Peer>(addr: SocketAddr, secs: f64) -> io::Result<()> {
    let (tx, finish) = P::open(addr, 64 * 1024, CAPACITY, None)?;
    let in_send = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (tx, in_send, sent, stop) = (tx.clone(), in_send.clone(), sent.clone(), stop.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                in_send.store(now_ns(), Ordering::SeqCst);
                if P::send(&tx, frame_of(64 * 1024)).is_err() {
                    break;
                }
                in_send.store(0, Ordering::SeqCst);
                sent.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    drop(tx);
    // Blocked: inside one send for 200 ms.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let since = in_send.load(Ordering::SeqCst);
        if since != 0 && now_ns().saturating_sub(since) > 200_000_000 {
            break;
        }
        if Instant::now() > deadline {
            return Err(other("the sender never blocked"));
        }
        thread::sleep(Duration::from_millis(10));
    }
    let sent_before = sent.load(Ordering::SeqCst);
    let cpu_before = process_cpu_ns()?;
    let wall = Instant::now();
    thread::sleep(Duration::from_secs_f64(secs));
    let cpu = process_cpu_ns()? - cpu_before;
    let wall = wall.elapsed().as_secs_f64();
    let progressed = sent.load(Ordering::SeqCst) - sent_before;
    println!("cpu_ns_per_s={}", cpu as f64 / wall);
    println!("cpu_total_ns={cpu_before}");
    println!("sends_during={progressed}");
    // Unblock: the parent's sink starts reading once we exit; we do not wait for it.
    stop.store(true, Ordering::SeqCst);
    drop(finish);
    drop(sender);
    std::process::exit(0);
}

pub(crate) fn run_child(args: &[String]) -> io::Result<()> {
    let arg = |i: usize| args.get(i).cloned().ok_or_else(|| other("child: missing argument"));
    let num = |i: usize| -> io::Result<u64> { arg(i)?.parse().map_err(other) };
    let kind = arg(0)?;
    let peer = arg(1)?;
    match kind.as_str() {
        "rss" => {
            let addr: SocketAddr = arg(2)?.parse().map_err(other)?;
            let (frame, total) = (usize::try_from(num(3)?).map_err(other)?, num(4)?);
            match peer.as_str() {
                "tidegate" => child_rss::<Tidegate>(addr, frame, total),
                "mutex" => child_rss::<MutexQueue>(addr, frame, total),
                "unbounded" => child_rss::<ChannelPeer<Unbounded>>(addr, frame, total),
                _ => Err(other("child: unknown peer")),
            }
        }
        "cpu" => {
            let addr: SocketAddr = arg(2)?.parse().map_err(other)?;
            let secs: f64 = arg(3)?.parse().map_err(other)?;
            match peer.as_str() {
                "tidegate" => child_cpu::<Tidegate>(addr, secs),
                "mutex" => child_cpu::<MutexQueue>(addr, secs),
                _ => Err(other("child: unknown peer")),
            }
        }
        "many" => {
            let frame = usize::try_from(num(2)?).map_err(other)?;
            let conns = usize::try_from(num(3)?).map_err(other)?;
            child_many(&peer, frame, conns, num(4)?)
        }
        "duplex" => {
            let frame = usize::try_from(num(2)?).map_err(other)?;
            child_duplex(DuplexMode::from_arg(&peer)?, frame, num(3)?)
        }
        "parked" => {
            let tasks = usize::try_from(num(2)?).map_err(other)?;
            let frame = usize::try_from(num(3)?).map_err(other)?;
            child_parked(&peer, tasks, frame)
        }
        _ => Err(other("child: unknown kind")),
    }
}

/// Peak RSS growth of a child sending `total` bytes of `frame`-byte frames through `peer` to a
/// sink that reads `rate` bytes per second.
pub(crate) fn rss_growth(
    peer: &str,
    frame: usize,
    total: u64,
    rate: u64,
) -> io::Result<(f64, f64)> {
    let (addr, sink) = spawn_sink(total, Some(rate))?;
    let started = Instant::now();
    let pairs = child(&[
        "rss".into(),
        peer.into(),
        addr.to_string(),
        frame.to_string(),
        total.to_string(),
    ])?;
    let report = sink.join().map_err(|_| other("the sink panicked"))??;
    if report.bytes != total {
        return Err(other(format!("rss sink got {} of {total} bytes", report.bytes)));
    }
    Ok((value(&pairs, "growth_kib")? * 1024.0, started.elapsed().as_secs_f64()))
}

/// CPU used per second by a child whose sender is blocked on a stalled sink.
/// Also returns the CPU the child's other threads had used before the wait, which shows that
/// the reading works.
pub(crate) fn blocked_cpu(peer: &str, secs: f64) -> io::Result<(f64, f64, f64)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let release = Arc::new(AtomicBool::new(false));
    let sink = {
        let release = release.clone();
        thread::spawn(move || -> io::Result<()> {
            let mut stream = accept(&listener)?;
            let deadline = Instant::now() + PATIENCE;
            while !release.load(Ordering::SeqCst) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut buf = vec![0u8; SINK_BUF];
            // Drain what the child left, until it is gone.
            while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
            Ok(())
        })
    };
    let pairs = child(&["cpu".into(), peer.into(), addr.to_string(), secs.to_string()]);
    release.store(true, Ordering::SeqCst);
    sink.join().map_err(|_| other("the sink panicked"))??;
    let pairs = pairs?;
    Ok((
        value(&pairs, "cpu_ns_per_s")?,
        value(&pairs, "sends_during")?,
        value(&pairs, "cpu_total_ns")?,
    ))
}

/// Wake latency of a blocked sender, in nanoseconds, two ways: from the moment room was freed
/// for it to the return of its send, and from the moment the stalled sink resumed reading to
/// the return of its send (which adds the kernel's TCP window and buffer dynamics).
///
/// A sink stalls until the sender has been inside one send for 3 ms, then reads until the
/// consumer side has freed room, then waits (sleeping, to leave the CPU to the woken sender)
/// for that send to return, and stalls again. The moment room was freed comes from tidegate's
/// own count of the time senders waited (taken when the driver grants the room, before it
/// wakes the sender), and, for the peers, from the writer side marking the first time it frees
/// room after the stall ended. A sample whose room was freed before the sink resumed (the
/// sender was not really stuck) is discarded.
pub(crate) fn wake_latency<P: Peer>(
    samples: usize,
    frame: usize,
) -> io::Result<(Vec<u64>, Vec<u64>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let probe: Probe = Arc::new(AtomicU64::new(0));
    // The connection completes in the listener's backlog; the sink accepts it below.
    let (tx, finish) = P::open(addr, frame, CAPACITY, Some(probe.clone()))?;
    let progress = P::progress(&tx, &probe);
    // When the current send began (0: not in a send).
    let in_send = Arc::new(AtomicU64::new(0));
    // When the sink last resumed reading, and how many times it has.
    let released = Arc::new(AtomicU64::new(0));
    let cycles = Arc::new(AtomicU64::new(0));
    // The last cycle the sender has seen end.
    let acked = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sink = {
        let (in_send, released, cycles, acked, done, probe) = (
            in_send.clone(),
            released.clone(),
            cycles.clone(),
            acked.clone(),
            done.clone(),
            probe.clone(),
        );
        thread::spawn(move || -> io::Result<()> {
            let mut stream = accept(&listener)?;
            stream.set_read_timeout(Some(PATIENCE))?;
            let mut buf = vec![0u8; SINK_BUF];
            let deadline = Instant::now() + PATIENCE;
            while !done.load(Ordering::SeqCst) {
                if Instant::now() > deadline {
                    return Err(other("wake latency: out of time"));
                }
                let since = in_send.load(Ordering::SeqCst);
                if since == 0 || now_ns().saturating_sub(since) < 3_000_000 {
                    thread::sleep(Duration::from_micros(200));
                    continue;
                }
                // The sender has been blocked for 3 ms and nothing moves: resume reading.
                let cycle = cycles.load(Ordering::SeqCst) + 1;
                probe.store(0, Ordering::SeqCst);
                let start = progress();
                released.store(now_ns(), Ordering::SeqCst);
                cycles.store(cycle, Ordering::SeqCst);
                // Read until room was freed, then leave the CPU to the woken sender; read again
                // if it is still stuck after 20 ms (it was not the send the sink saw).
                let mut freed_at = None;
                while acked.load(Ordering::SeqCst) < cycle && !done.load(Ordering::SeqCst) {
                    if Instant::now() > deadline {
                        return Err(other("wake latency: the sender never returned"));
                    }
                    if freed_at.is_none() && progress() != start {
                        freed_at = Some(Instant::now());
                    }
                    match freed_at {
                        Some(at) if at.elapsed() < Duration::from_millis(20) => {
                            thread::sleep(Duration::from_micros(50));
                        }
                        _ => {
                            if stream.read(&mut buf)? == 0 {
                                return Err(other("wake latency: the sender closed"));
                            }
                        }
                    }
                }
            }
            while stream.read(&mut buf)? > 0 {}
            Ok(())
        })
    };
    let frame = frame_of(frame);
    let mut from_free = Vec::with_capacity(samples);
    let mut from_sink = Vec::with_capacity(samples);
    let deadline = Instant::now() + PATIENCE;
    while from_free.len() < samples && Instant::now() < deadline {
        let Observed { start, end, granted } = P::send_observed(&tx, frame.clone(), &in_send)?;
        in_send.store(0, Ordering::SeqCst);
        let cycle = cycles.load(Ordering::SeqCst);
        let at = released.load(Ordering::SeqCst);
        if cycle > acked.load(Ordering::SeqCst) && at > start {
            let freed = granted.unwrap_or_else(|| probe.load(Ordering::SeqCst));
            if freed >= at {
                from_free.push(end.saturating_sub(freed));
                from_sink.push(end - at);
            }
        }
        // Whatever this send was, the sink may stall again.
        acked.store(cycle, Ordering::SeqCst);
    }
    done.store(true, Ordering::SeqCst);
    drop(tx);
    finish()?;
    sink.join().map_err(|_| other("the sink panicked"))??;
    if from_free.len() < samples {
        return Err(other("wake latency: out of time"));
    }
    Ok((from_free, from_sink))
}

/// The name of the wake-latency reference row.
pub(crate) const FLOOR: &str = "floor: a bare thread::park / unpark";

/// The machine's own wake latency: a thread parks, another unparks it 3 ms later. Reported as
/// (latencies, nothing).
pub(crate) fn unpark_floor(samples: usize, _frame: usize) -> io::Result<(Vec<u64>, Vec<u64>)> {
    let mut latencies = Vec::with_capacity(samples);
    let woken = Arc::new(AtomicU64::new(0));
    for _ in 0..samples {
        let waker = {
            let (woken, me) = (woken.clone(), thread::current());
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(3));
                woken.store(now_ns(), Ordering::SeqCst);
                me.unpark();
            })
        };
        let deadline = Instant::now() + PATIENCE;
        while woken.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
            thread::park_timeout(PATIENCE);
        }
        let end = now_ns();
        latencies.push(end.saturating_sub(woken.swap(0, Ordering::SeqCst)));
        waker.join().map_err(|_| other("the waker panicked"))?;
    }
    Ok((latencies, Vec::new()))
}

pub(crate) fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return u64::MAX;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The child's side of the parked-sender measurement: the RSS growth, per task, of `tasks`
/// tokio tasks each holding a `frame`-byte frame and parked either in `AsyncClient::send` on a
/// full buffer (`senders`) or on a future that never completes (`bare`).
pub(crate) fn child_parked(mode: &str, tasks: usize, frame: usize) -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let rt = tokio_runtime()?;
    rt.block_on(async {
        let client = AsyncClient::connect(&format!("tcp://{addr}")).await.map_err(other)?;
        let stream = accept(&listener)?;
        // Fill the socket and then the buffer to the last byte: the sink never reads, so once
        // the kernel's buffers are full nothing moves and every later send must wait.
        let fill_deadline = Instant::now() + PATIENCE;
        loop {
            if Instant::now() > fill_deadline {
                return Err(other("parked senders: could not fill the buffer"));
            }
            let mut len = 64 * 1024;
            while len > 0 {
                if client.try_send(frame_of(len)).is_err() {
                    len /= 2;
                }
            }
            let before = client.stats().bytes_written;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let stats = client.stats();
            if stats.buffered == stats.capacity && stats.bytes_written == before {
                break;
            }
        }
        let mut handles = Vec::with_capacity(tasks);
        let parked = Arc::new(AtomicU64::new(0));
        let before = proc_status_kib("VmRSS")?;
        for i in 0..tasks {
            let frame = Bytes::from(vec![(i % 251) as u8; frame]);
            let client = client.clone();
            let parked = parked.clone();
            handles.push(if mode == "senders" {
                tokio::spawn(async move {
                    drop(parked);
                    client.send(frame).await.map_err(|e| e.into_inner())
                })
            } else {
                tokio::spawn(async move {
                    drop(client);
                    parked.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                    Err(frame)
                })
            });
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            let waiting = if mode == "senders" {
                client.stats().waiters
            } else {
                usize::try_from(parked.load(Ordering::SeqCst)).unwrap_or(usize::MAX)
            };
            if waiting >= tasks {
                break;
            }
            if Instant::now() > deadline {
                return Err(other(format!("parked senders: {waiting} of {tasks} parked")));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let after = proc_status_kib("VmRSS")?;
        println!("per_task={}", (after.saturating_sub(before) * 1024) as f64 / tasks as f64);
        let report = client.close_timeout(Duration::from_millis(100)).await;
        drop(report);
        for handle in handles {
            handle.abort();
        }
        drop(stream);
        Ok(())
    })
}

/// RSS per parked async sender beside its frame, and the same for a bare parked task, in bytes.
pub(crate) fn parked_async_senders(tasks: usize, frame: usize) -> io::Result<(f64, f64)> {
    let per_task = |mode: &str| -> io::Result<f64> {
        let pairs = child(&["parked".into(), mode.into(), tasks.to_string(), frame.to_string()])?;
        Ok(value(&pairs, "per_task")? - frame as f64)
    };
    Ok((per_task("senders")?, per_task("bare")?))
}

#[derive(Debug, Default)]
pub(crate) struct Extras {
    /// (implementation, frame, growth bytes per run)
    pub(crate) rss: Vec<(String, usize, Vec<f64>)>,
    /// (implementation, ns per second per run, sends during the wait)
    pub(crate) cpu: Vec<(String, Vec<f64>, f64)>,
    /// (implementation, per run: [p50, p99] from the freeing of room, [p50, p99] from the
    /// sink resuming), in ns
    pub(crate) wake: Vec<(String, Vec<[f64; 4]>)>,
    /// (per sender, per bare task) per run
    pub(crate) parked: Vec<(f64, f64)>,
    /// (implementation, every sample of every run) from a reset to the next link's first
    /// byte, in ns
    pub(crate) relink: Vec<(String, Vec<u64>)>,
    /// (implementation, resets, a sample per run, per run the ratio of its throughput to the
    /// same run's transfer with no reset)
    pub(crate) kills: Vec<(String, usize, Vec<KillSample>, Vec<f64>)>,
    pub(crate) parked_error: Option<String>,
}

/// Runs the measurements beside throughput; a failed one is logged and recorded in `failures`,
/// and the others still run.
pub(crate) fn run_extras(
    opts: &Opts,
    extras: &mut Extras,
    failures: &mut Vec<String>,
    log: &mut impl FnMut(String),
) {
    let mut failed = |what: String, e: io::Error, log: &mut dyn FnMut(String)| {
        log(format!("{what}: FAILED: {e}"));
        failures.push(format!("{what}: {e}"));
    };
    // Peak RSS: 1 GiB through a 1 MiB buffer to a sink reading 512 MiB/s.
    let total: u64 = if opts.quick { 128 << 20 } else { 1 << 30 };
    let rate = 512u64 << 20;
    let mut rss_cases = vec![("tidegate", 1024), ("tidegate", 64 * 1024), ("mutex", 1024)];
    if !opts.quick {
        rss_cases.push(("unbounded", 1024));
    }
    for (peer, frame) in rss_cases {
        let name = match peer {
            "tidegate" => "tidegate Client",
            "mutex" => MutexQueue::NAME,
            _ => Unbounded::NAME,
        };
        if !opts.wanted(&format!("rss {name}")) {
            continue;
        }
        let (growth, secs) = match rss_growth(peer, frame, total, rate) {
            Ok(r) => r,
            Err(e) => {
                failed(format!("rss {name} {frame} B"), e, log);
                continue;
            }
        };
        log(format!("rss {name} {frame} B: {:.2} MiB in {secs:.1} s", growth / 1048576.0));
        match extras.rss.iter_mut().find(|(n, f, _)| n == name && *f == frame) {
            Some((_, _, v)) => v.push(growth),
            None => extras.rss.push((name.into(), frame, vec![growth])),
        }
    }
    // CPU while blocked.
    let secs = if opts.quick { 0.5 } else { 2.0 };
    for (peer, name) in [("tidegate", "tidegate Client"), ("mutex", MutexQueue::NAME)] {
        if !opts.wanted(&format!("cpu {name}")) {
            continue;
        }
        let (cpu, sends, before) = match blocked_cpu(peer, secs) {
            Ok(r) => r,
            Err(e) => {
                failed(format!("cpu {name}"), e, log);
                continue;
            }
        };
        log(format!(
            "cpu {name}: {:.1} µs/s, {sends} sends while blocked ({:.1} ms used before)",
            cpu / 1e3,
            before / 1e6
        ));
        match extras.cpu.iter_mut().find(|(n, _, _)| n == name) {
            Some((_, v, s)) => {
                v.push(cpu);
                *s += sends;
            }
            None => extras.cpu.push((name.into(), vec![cpu], sends)),
        }
    }
    // Wake latency, 1 KiB frames.
    let samples = if opts.quick { 40 } else { 300 };
    type Measure = fn(usize, usize) -> io::Result<(Vec<u64>, Vec<u64>)>;
    let runs: [(&str, Measure); 6] = [
        (FLOOR, unpark_floor),
        ("tidegate Client", wake_latency::<Tidegate>),
        (MutexQueue::NAME, wake_latency::<MutexQueue>),
        (Flume::NAME, wake_latency::<ChannelPeer<Flume>>),
        (Crossbeam::NAME, wake_latency::<ChannelPeer<Crossbeam>>),
        (SyncChannel::NAME, wake_latency::<ChannelPeer<SyncChannel>>),
    ];
    for (name, run) in runs {
        if !opts.wanted(&format!("wake {name}")) {
            continue;
        }
        let (mut free, mut sink) = match run(samples, 1024) {
            Ok(r) => r,
            Err(e) => {
                failed(format!("wake {name}"), e, log);
                continue;
            }
        };
        free.sort_unstable();
        sink.sort_unstable();
        let p = |v: &[u64], q| percentile(v, q) as f64;
        let row = [p(&free, 50.0), p(&free, 99.0), p(&sink, 50.0), p(&sink, 99.0)];
        log(format!(
            "wake {name}: freed→return p50 {:.1} µs p99 {:.1} µs; sink→return p50 {:.1} µs p99 {:.1} µs",
            row[0] / 1e3,
            row[1] / 1e3,
            if sink.is_empty() { f64::NAN } else { row[2] / 1e3 },
            if sink.is_empty() { f64::NAN } else { row[3] / 1e3 },
        ));
        match extras.wake.iter_mut().find(|(n, _)| n == name) {
            Some((_, runs)) => runs.push(row),
            None => extras.wake.push((name.into(), vec![row])),
        }
    }
    // From a reset to the next link's first byte.
    let samples = if opts.quick { 10 } else { 50 };
    for name in RELINK_PEERS {
        if !opts.wanted(&format!("relink {name}")) {
            continue;
        }
        let mut took = match relink_latency(name, samples) {
            Ok(took) => took,
            Err(e) => {
                failed(format!("relink {name}"), e, log);
                continue;
            }
        };
        took.sort_unstable();
        log(format!(
            "relink {name}: reset → next link's first byte p50 {:.0} µs, p99 {:.0} µs",
            percentile(&took, 50.0) as f64 / 1e3,
            percentile(&took, 99.0) as f64 / 1e3
        ));
        match extras.relink.iter_mut().find(|(n, _)| n == name) {
            Some((_, all)) => all.extend(took),
            None => extras.relink.push((name.into(), took)),
        }
    }
    // A gibibyte through resets, against none.
    let total = opts.total_bytes(KILL_FRAME);
    for name in KILL_PEERS {
        // This run's throughput with no reset, which the kill row is divided by: the ratio of
        // two samples taken one after the other cancels a slow spell of the machine.
        let mut calm = None;
        for kills in [0, KILLS] {
            let row = kills_row(name, kills);
            if !opts.wanted(&row) {
                continue;
            }
            let sample = match kills_throughput(name, kills, total) {
                Ok(sample) => sample,
                Err(e) => {
                    failed(row, e, log);
                    continue;
                }
            };
            let ratio = calm.map(|calm| sample.mbps() / calm);
            if kills == 0 {
                calm = Some(sample.mbps());
            }
            let fates = sample.fates.map_or_else(String::new, |[replayed, possibly, acked]| {
                format!(
                    "; frames replayed {replayed}, possibly delivered {possibly}, \
                     acknowledged {acked}; close {:?}",
                    sample.ending.unwrap_or_default()
                )
            });
            let disconnected = sample.disconnected.map_or_else(String::new, |d| {
                format!("; disconnected {:.1} ms", d.as_secs_f64() * 1e3)
            });
            log(format!(
                "{row}: {:.0} MB/s received in {:.0} ms; {} resets, {:.1} ms from them to the \
                 next links' first bytes{disconnected}, {} losses seen, {} of {} bytes \
                 missing{fates}{}",
                sample.mbps(),
                sample.secs * 1e3,
                sample.kills,
                sample.gaps.as_secs_f64() * 1e3,
                sample.losses,
                sample.sent.saturating_sub(sample.received),
                sample.sent,
                ratio.map_or_else(String::new, |r| format!("; {r:.2}× this run's 0 kills")),
            ));
            match extras.kills.iter_mut().find(|(n, k, _, _)| n == name && *k == kills) {
                Some((_, _, samples, ratios)) => {
                    samples.push(sample);
                    ratios.extend(ratio);
                }
                None => {
                    extras.kills.push((name.into(), kills, vec![sample], Vec::from_iter(ratio)))
                }
            }
        }
    }
    // Parked async senders.
    if opts.wanted("parked") {
        let tasks = if opts.quick { 10_000 } else { 100_000 };
        match parked_async_senders(tasks, 64) {
            Ok((sender, bare)) => {
                log(format!("parked: {sender:.0} B per sender, {bare:.0} B per bare task"));
                extras.parked.push((sender, bare));
            }
            Err(e) => {
                extras.parked_error = Some(e.to_string());
                failed("parked".into(), e, log);
            }
        }
    }
}

pub(crate) fn extras_tables(extras: &mut Extras) -> String {
    let mut out = String::new();
    if !extras.rss.is_empty() {
        out.push_str("\n| peak RSS growth, 1 GiB through a 1 MiB bound to a slow sink | frame | growth (median) |\n|---|---:|---:|\n");
        for (name, frame, v) in &mut extras.rss {
            let _ = writeln!(
                out,
                "| {name} | {} | {:.2} MiB |",
                fmt_size(*frame),
                median(v) / 1048576.0
            );
        }
    }
    if !extras.cpu.is_empty() {
        out.push_str("\n| CPU while a sender is blocked (stalled sink) | CPU per second (median) | sends that completed meanwhile |\n|---|---:|---:|\n");
        for (name, v, sends) in &mut extras.cpu {
            let _ = writeln!(out, "| {name} | {:.1} µs/s | {sends} |", median(v) / 1e3);
        }
    }
    if !extras.wake.is_empty() {
        out.push_str(
            "\n| wake latency of a blocked sender, 1 KiB frames | room freed → send returns, \
             p50 | p99 | sink resumes → send returns, p50 | p99 |\n|---|---:|---:|---:|---:|\n",
        );
        for (name, runs) in &extras.wake {
            let _ = write!(out, "| {name} |");
            for i in 0..4 {
                let mut v: Vec<f64> = runs.iter().map(|r| r[i]).collect();
                match median(&mut v) {
                    m if m >= u64::MAX as f64 => out.push_str(" – |"),
                    m => {
                        let _ = write!(out, " {:.1} µs |", m / 1e3);
                    }
                }
            }
            out.push('\n');
        }
    }
    if !extras.relink.is_empty() {
        out.push_str(
            "\n| a producer's link is reset while it sends 64 B frames | reset → next link's \
             first byte, p50 | p99 | samples |\n|---|---:|---:|---:|\n",
        );
        for (name, all) in &mut extras.relink {
            all.sort_unstable();
            let _ = writeln!(
                out,
                "| {name} | {:.0} µs | {:.0} µs | {} |",
                percentile(all, 50.0) as f64 / 1e3,
                percentile(all, 99.0) as f64 / 1e3,
                all.len()
            );
        }
    }
    if !extras.kills.is_empty() {
        out.push_str(
            "\n| 1 GiB of 1 KiB frames, the sink resets the link | resets | MB/s the sink \
             received (median) | spread | × 0 kills (median of the runs' ratios) | resets → \
             next link's first byte, summed | bytes missing | frames replayed | possibly \
             delivered | acknowledged (medians) |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for (name, kills, samples, ratios) in &mut extras.kills {
            let mut rates: Vec<f64> = samples.iter().map(KillSample::mbps).collect();
            let mb = median(&mut rates);
            let spread = (rates.last().copied().unwrap_or(mb) - rates[0]) / mb * 50.0;
            let mut missing: Vec<f64> =
                samples.iter().map(|s| s.sent.saturating_sub(s.received) as f64).collect();
            let mut resets: Vec<f64> = samples.iter().map(|s| s.kills as f64).collect();
            let mut gaps: Vec<f64> = samples.iter().map(|s| s.gaps.as_secs_f64()).collect();
            let fate = |i: usize| -> String {
                let mut v: Vec<f64> =
                    samples.iter().filter_map(|s| s.fates.map(|f| f[i] as f64)).collect();
                if v.is_empty() { "–".into() } else { format!("{:.0}", median(&mut v)) }
            };
            let ratio =
                if ratios.is_empty() { "–".into() } else { format!("{:.2}×", median(ratios)) };
            let _ = writeln!(
                out,
                "| {name} | {:.0} (of {kills}) | {mb:.0} | ±{spread:.0}% | {ratio} | {:.1} ms | {:.0} KiB | {} | {} | {} |",
                median(&mut resets),
                median(&mut gaps) * 1e3,
                median(&mut missing) / 1024.0,
                fate(0),
                fate(1),
                fate(2),
            );
        }
    }
    out
}
