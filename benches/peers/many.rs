//! The many-connections rows: 1,000 loopback connections side by side, in a child process.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::thread;
use std::time::Instant;

use tidegate::Client;

use crate::extras::{child, proc_status_kib, value};
use crate::implementations::connect;
use crate::report::{fmt_count, fmt_ratio, fmt_size, median, rate};
use crate::throughput::Sample;
use crate::{Opts, PATIENCE, SINK_BUF, frame_of, other};

/// Connections of the many-connections rows.
pub(crate) const MANY_CONNS: usize = 1000;
/// Connections of the many-connections rows with `--quick`.
pub(crate) const MANY_CONNS_QUICK: usize = 100;
/// Driver threads of the shared I/O group.
pub(crate) const MANY_IO_THREADS: usize = 2;
/// Producer threads of the tidegate rows; producer `p` serves connections `p`, `p + 4`, ...
pub(crate) const MANY_PRODUCERS: usize = 4;
/// Frames a producer sends to one connection before it moves on to the next.
pub(crate) const MANY_BURST: u64 = 16;
/// The bound per connection: tidegate's capacity and the baseline's `BufWriter` size.
pub(crate) const MANY_BOUND: usize = 64 * 1024;
/// The stack of each thread of the thread-per-connection baseline.
pub(crate) const MANY_STACK: usize = 64 * 1024;
/// The listen backlog of the many-connections sink, so that a burst of connects is not
/// dropped (the kernel caps it at `net.core.somaxconn`).
pub(crate) const MANY_BACKLOG: u32 = 4096;

/// The peers of the many-connections rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ManyImp {
    /// tidegate, every connection on one `IoGroup` of `MANY_IO_THREADS` driver threads, fed by
    /// `MANY_PRODUCERS` producer threads.
    Group,
    /// tidegate, a driver thread per connection (the default), fed by `MANY_PRODUCERS`
    /// producer threads.
    Driver,
    /// tidegate on an `IoGroup` as in `Group`, fed by a producer thread per connection: the
    /// baseline's producers, so that only the way to the socket differs.
    GroupPerConn,
    /// A thread per connection writing its own frames through a `BufWriter<TcpStream>`.
    Threads,
}

impl ManyImp {
    pub(crate) const ALL: [Self; 4] =
        [Self::Group, Self::Driver, Self::GroupPerConn, Self::Threads];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Group => "tidegate Client, IoGroup of 2 driver threads, 4 producers",
            Self::Driver => "tidegate Client, a driver thread per connection, 4 producers",
            Self::GroupPerConn => {
                "tidegate Client, IoGroup of 2 driver threads, a producer per connection"
            }
            Self::Threads => "a thread per connection writing through a 64 KiB BufWriter",
        }
    }

    /// The child's name for it.
    pub(crate) fn arg(self) -> &'static str {
        match self {
            Self::Group => "group",
            Self::Driver => "driver",
            Self::GroupPerConn => "group-per-conn",
            Self::Threads => "threads",
        }
    }
}

/// One run of a many-connections row, as the child measured it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ManySample {
    pub(crate) sample: Sample,
    /// From the first connect to every connection being ready to send.
    pub(crate) connect_secs: f64,
    /// Threads the peer added to the process (producers included).
    pub(crate) threads: f64,
    /// Growth of `VmHWM` over the whole run.
    pub(crate) growth_kib: f64,
    /// The share of the time from its first byte to its last that the sink thread ran.
    pub(crate) sink_busy: f64,
    /// Sends that had to wait for room.
    pub(crate) waited: f64,
}

/// One many-connections row.
#[derive(Debug, Clone)]
pub(crate) struct ManyCase {
    pub(crate) imp: ManyImp,
    pub(crate) frame: usize,
    pub(crate) samples: Vec<ManySample>,
}

impl ManyCase {
    pub(crate) fn name(&self) -> String {
        format!("many connections / {} / {} B", self.imp.name(), self.frame)
    }

    pub(crate) fn conns(opts: &Opts) -> usize {
        if opts.quick { MANY_CONNS_QUICK } else { MANY_CONNS }
    }

    /// Frames each connection sends: 128 MiB of 64 B frames or 512 MiB of 1 KiB frames in
    /// all (1/16 with `--quick`).
    pub(crate) fn per_conn(&self, opts: &Opts) -> u64 {
        let total: u64 = if self.frame <= 64 { 128 << 20 } else { 512 << 20 };
        let total = if opts.quick { total / 16 } else { total };
        (total / self.frame as u64 / Self::conns(opts) as u64).max(1)
    }

    /// Runs one sample in a child process, so that its threads, sockets and memory do not
    /// outlive it and its peak RSS is its own.
    pub(crate) fn run(&self, opts: &Opts) -> io::Result<ManySample> {
        let conns = Self::conns(opts);
        let per = self.per_conn(opts);
        let pairs = child(&[
            "many".into(),
            self.imp.arg().into(),
            self.frame.to_string(),
            conns.to_string(),
            per.to_string(),
        ])?;
        let msgs = per * conns as u64;
        Ok(ManySample {
            sample: Sample { msgs, bytes: msgs * self.frame as u64, secs: value(&pairs, "secs")? },
            connect_secs: value(&pairs, "connect_secs")?,
            threads: value(&pairs, "threads")?,
            growth_kib: value(&pairs, "growth_kib")?,
            sink_busy: value(&pairs, "sink_busy")?,
            waited: value(&pairs, "waited")?,
        })
    }

    pub(crate) fn median_sample(&self) -> Option<Sample> {
        let mut samples: Vec<Sample> = self.samples.iter().map(|s| s.sample).collect();
        samples.sort_by(|a, b| a.secs.total_cmp(&b.secs));
        samples.get(samples.len() / 2).copied()
    }

    pub(crate) fn median_of(&self, field: impl Fn(&ManySample) -> f64) -> f64 {
        median(&mut self.samples.iter().map(field).collect::<Vec<_>>())
    }

    pub(crate) fn spread(&self) -> f64 {
        let rates: Vec<f64> =
            self.samples.iter().map(|s| s.sample.bytes as f64 / s.sample.secs).collect();
        let max = rates.iter().copied().fold(f64::MIN, f64::max);
        let min = rates.iter().copied().fold(f64::MAX, f64::min);
        self.median_sample().map_or(0.0, |m| (max - min) / (m.bytes as f64 / m.secs))
    }
}

pub(crate) fn many_cases() -> Vec<ManyCase> {
    [64, 1024]
        .into_iter()
        .flat_map(|frame| ManyImp::ALL.map(|imp| ManyCase { imp, frame, samples: vec![] }))
        .collect()
}

/// The soft limit on open files, from `/proc/self/limits`.
pub(crate) fn open_files_limit() -> io::Result<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|soft| if soft == "unlimited" { Some(u64::MAX) } else { soft.parse().ok() })
        .ok_or_else(|| other("no open-files limit in /proc/self/limits"))
}

/// Fails unless the process may open the descriptors of `conns` connections: both ends of
/// each socket, and, with a driver thread per connection, that driver's epoll and waker.
pub(crate) fn check_open_files(conns: usize) -> io::Result<()> {
    let needed = conns as u64 * 4 + 256;
    let limit = open_files_limit()?;
    if limit < needed {
        return Err(other(format!(
            "{conns} connections need about {needed} open files, the limit is {limit}: \
             raise it with `ulimit -n {needed}`"
        )));
    }
    Ok(())
}

/// Threads of this process now.
pub(crate) fn thread_count() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

/// The CPU time the calling thread has run, in nanoseconds.
pub(crate) fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// What the many-connections sink saw.
#[derive(Debug)]
pub(crate) struct ManySinkReport {
    /// Bytes of each connection, in the order they were accepted.
    pub(crate) counts: Vec<u64>,
    /// When the expected total was reached.
    pub(crate) done_at: Option<Instant>,
    pub(crate) sink_busy: f64,
}

/// The state the sink's tasks share on its one thread.
#[derive(Debug)]
pub(crate) struct ManySinkShared {
    pub(crate) buf: std::cell::RefCell<Vec<u8>>,
    pub(crate) expected: u64,
    pub(crate) total: std::cell::Cell<u64>,
    /// When, and at which CPU time of the sink thread, the first byte and the expected total
    /// arrived.
    pub(crate) first: std::cell::Cell<Option<(Instant, u64)>>,
    pub(crate) done: std::cell::Cell<Option<(Instant, u64)>>,
}

impl ManySinkShared {
    pub(crate) fn add(&self, n: usize) {
        if self.first.get().is_none() {
            self.first.set(Some((Instant::now(), thread_cpu_ns())));
        }
        self.total.set(self.total.get() + n as u64);
        if self.done.get().is_none() && self.total.get() >= self.expected {
            self.done.set(Some((Instant::now(), thread_cpu_ns())));
        }
    }
}

/// Reads one connection to its end into the shared buffer; returns its byte count.
async fn many_drain(stream: tokio::net::TcpStream, shared: std::rc::Rc<ManySinkShared>) -> u64 {
    let mut count = 0;
    loop {
        if stream.readable().await.is_err() {
            return count;
        }
        let read = stream.try_read(&mut shared.buf.borrow_mut());
        match read {
            Ok(0) => return count,
            Ok(n) => {
                count += n as u64;
                shared.add(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Counted short, which fails the run.
            Err(_) => return count,
        }
    }
}

/// A sink for `conns` connections on one thread: a current-thread tokio runtime (epoll) with a
/// task per connection, every task reading into one shared 256 KiB buffer. It counts the bytes
/// of each connection until its peer closes.
pub(crate) fn spawn_many_sink(
    conns: usize,
    expected: u64,
) -> io::Result<(SocketAddr, thread::JoinHandle<io::Result<ManySinkReport>>)> {
    let (addr_tx, addr_rx) = mpsc::channel();
    let handle = thread::Builder::new().name("sink".into()).spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async move {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
            let listener = socket.listen(MANY_BACKLOG)?;
            let shared = std::rc::Rc::new(ManySinkShared {
                // Written once, so that its pages are resident before the child's baseline.
                buf: std::cell::RefCell::new(vec![1u8; SINK_BUF]),
                expected,
                total: std::cell::Cell::new(0),
                first: std::cell::Cell::new(None),
                done: std::cell::Cell::new(None),
            });
            let _ = addr_tx.send(listener.local_addr()?);
            let mut tasks = Vec::with_capacity(conns);
            for _ in 0..conns {
                let (stream, _) = tokio::time::timeout(PATIENCE, listener.accept())
                    .await
                    .map_err(|_| other("many sink: a connection never came"))??;
                let shared = shared.clone();
                tasks.push(tokio::task::spawn_local(tokio::time::timeout(
                    PATIENCE,
                    many_drain(stream, shared),
                )));
            }
            let mut counts = Vec::with_capacity(conns);
            for task in tasks {
                let count = task.await.map_err(other)?;
                counts.push(count.map_err(|_| other("many sink: a connection never ended"))?);
            }
            let sink_busy = match (shared.first.get(), shared.done.get()) {
                (Some((t0, c0)), Some((t1, c1))) => {
                    (c1 - c0) as f64 / 1e9 / t1.duration_since(t0).as_secs_f64().max(1e-9)
                }
                _ => f64::NAN,
            };
            Ok(ManySinkReport { counts, done_at: shared.done.get().map(|(at, _)| at), sink_busy })
        })
    })?;
    match addr_rx.recv() {
        Ok(addr) => Ok((addr, handle)),
        Err(_) => Err(match handle.join() {
            Ok(Err(e)) => e,
            _ => other("the many sink did not start"),
        }),
    }
}

/// How a peer of the many-connections rows ran.
#[derive(Debug)]
pub(crate) struct ManyRun {
    pub(crate) connect_secs: f64,
    pub(crate) threads: usize,
    /// When the first producer began sending.
    pub(crate) started: Instant,
    /// Sends that had to wait for room (tidegate only).
    pub(crate) waited: u64,
}

/// The moment the first of many threads began its work: the clock of the many-connections rows
/// starts there. (Read by the main thread after a barrier, it could be late: with a thousand
/// threads on two CPUs, the main thread may run again only after the work is done.)
#[derive(Debug, Default)]
pub(crate) struct FirstStart(Mutex<Option<Instant>>);

impl FirstStart {
    pub(crate) fn mark(&self) {
        let now = Instant::now();
        let mut first = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if first.is_none_or(|at| now < at) {
            *first = Some(now);
        }
    }

    pub(crate) fn get(&self) -> io::Result<Instant> {
        let first = *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        first.ok_or_else(|| other("no thread started"))
    }
}

/// The work of one many-connections run: `conns` connections, each sending `per` frames of
/// `frame` bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ManyWork {
    pub(crate) addr: SocketAddr,
    pub(crate) frame: usize,
    pub(crate) conns: usize,
    pub(crate) per: u64,
    /// Threads of the process before the run.
    pub(crate) threads_before: usize,
}

/// tidegate: `conns` connections (on an `IoGroup` of `io_threads`, or a driver thread each),
/// fed by `producers` threads (with a `MANY_STACK` stack); producer `p` serves connections
/// `p`, `p + producers`, ... in turn, `MANY_BURST` frames to each. The connections are closed
/// with the core's close, all at once.
pub(crate) fn many_tidegate(
    work: ManyWork,
    io_threads: Option<usize>,
    producers: usize,
) -> io::Result<ManyRun> {
    let ManyWork { addr, frame, conns, per, threads_before } = work;
    let url = format!("tcp://{addr}");
    let t0 = Instant::now();
    let group = io_threads.map(tidegate::IoGroup::new).transpose()?;
    let mut config = tidegate::Config::new().capacity(MANY_BOUND);
    if let Some(group) = &group {
        config = config.io_group(group);
    }
    let clients = (0..conns)
        .map(|_| tidegate::Connection::open(&url, config.clone()).map(Client::from_connection))
        .collect::<Result<Vec<_>, _>>()
        .map_err(other)?;
    for client in &clients {
        futures::executor::block_on(client.connection().connected()).map_err(other)?;
    }
    let connect_secs = t0.elapsed().as_secs_f64();
    let clients = Arc::new(clients);
    let start = Arc::new(Barrier::new(producers + 1));
    let first = Arc::new(FirstStart::default());
    let mut threads = Vec::with_capacity(producers);
    for p in 0..producers {
        let (clients, start, first) = (clients.clone(), start.clone(), first.clone());
        let spawned = thread::Builder::new().name("producer".into()).stack_size(MANY_STACK).spawn(
            move || -> io::Result<()> {
                let mine: Vec<&Client> = clients.iter().skip(p).step_by(producers).collect();
                let frame = frame_of(frame);
                start.wait();
                first.mark();
                let mut sent = 0;
                while sent < per {
                    let burst = MANY_BURST.min(per - sent);
                    for client in &mine {
                        for _ in 0..burst {
                            client.send(frame.clone()).map_err(other)?;
                        }
                    }
                    sent += burst;
                }
                Ok(())
            },
        );
        threads.push(spawned.unwrap_or_else(|e| no_thread(threads.len(), producers, &e)));
    }
    let added = thread_count()?.saturating_sub(threads_before);
    start.wait();
    for producer in threads {
        producer.join().map_err(|_| other("a producer panicked"))??;
    }
    let started = first.get()?;
    let waited = clients.iter().map(|c| c.stats().sends_waited).sum();
    let closes = clients.iter().map(|c| c.connection().close(PATIENCE));
    let reports = futures::executor::block_on(futures::future::join_all(closes));
    let want = per * frame as u64;
    for report in reports {
        if !report.is_clean() || report.bytes_written() != want {
            return Err(other(format!("unclean close ({want} bytes sent): {report:?}")));
        }
    }
    Ok(ManyRun { connect_secs, threads: added, started, waited })
}

/// Ends the process when thread `index` of `count` could not be started: the threads started
/// before it wait at a barrier it would have passed.
pub(crate) fn no_thread(index: usize, count: usize, e: &io::Error) -> ! {
    eprintln!("could not start thread {} of {count}: {e}", index + 1);
    std::process::exit(1);
}

/// The baseline: a thread per connection (with a `MANY_STACK` stack), which connects, then
/// writes its own `per` frames through a 64 KiB `BufWriter<TcpStream>`, and closes once every
/// thread is done.
pub(crate) fn many_threads(work: ManyWork) -> io::Result<ManyRun> {
    let ManyWork { addr, frame, conns, per, threads_before } = work;
    let t0 = Instant::now();
    let ready = Arc::new(Barrier::new(conns + 1));
    let finished = Arc::new(Barrier::new(conns));
    let first = Arc::new(FirstStart::default());
    let mut writers = Vec::with_capacity(conns);
    for _ in 0..conns {
        let (ready, finished, first) = (ready.clone(), finished.clone(), first.clone());
        let spawned = thread::Builder::new().name("conn".into()).stack_size(MANY_STACK).spawn(
            move || -> io::Result<()> {
                let stream = connect(addr);
                // Past the barrier even on failure, so that nobody waits for this thread.
                ready.wait();
                first.mark();
                let sent = stream.and_then(|stream| {
                    let mut out = BufWriter::with_capacity(MANY_BOUND, stream);
                    let frame = frame_of(frame);
                    for _ in 0..per {
                        out.write_all(&frame)?;
                    }
                    out.flush()?;
                    Ok(out)
                });
                // Every connection stays open, with its buffer, until all are done, as in the
                // tidegate rows (which close them all at the end).
                finished.wait();
                sent.map(drop)
            },
        );
        writers.push(spawned.unwrap_or_else(|e| no_thread(writers.len(), conns, &e)));
    }
    let threads = thread_count()?.saturating_sub(threads_before);
    ready.wait();
    let connect_secs = t0.elapsed().as_secs_f64();
    for writer in writers {
        writer.join().map_err(|_| other("a writer panicked"))??;
    }
    Ok(ManyRun { connect_secs, threads, started: first.get()?, waited: 0 })
}

/// The child's side of a many-connections row: runs the sink and the peer in this process and
/// prints the throughput time, the connect time, the threads the peer added and the growth of
/// `VmHWM`.
pub(crate) fn child_many(peer: &str, frame: usize, conns: usize, per: u64) -> io::Result<()> {
    let want = per * frame as u64;
    let (addr, sink) = spawn_many_sink(conns, want * conns as u64)?;
    let work = ManyWork { addr, frame, conns, per, threads_before: thread_count()? };
    let rss_before = proc_status_kib("VmHWM")?;
    let run = match peer {
        "group" => many_tidegate(work, Some(MANY_IO_THREADS), MANY_PRODUCERS),
        "driver" => many_tidegate(work, None, MANY_PRODUCERS),
        "group-per-conn" => many_tidegate(work, Some(MANY_IO_THREADS), conns),
        "threads" => many_threads(work),
        _ => Err(other("child: unknown peer")),
    }?;
    let report = sink.join().map_err(|_| other("the sink panicked"))??;
    let growth = proc_status_kib("VmHWM")?.saturating_sub(rss_before);
    if report.counts.len() != conns || report.counts.iter().any(|&n| n != want) {
        let wrong = report.counts.iter().filter(|&&n| n != want).count();
        return Err(other(format!(
            "the sink counted {} connections, {wrong} of them not {want} bytes",
            report.counts.len()
        )));
    }
    let done = report.done_at.ok_or_else(|| other("the sink never got every byte"))?;
    println!("secs={}", done.saturating_duration_since(run.started).as_secs_f64());
    println!("connect_secs={}", run.connect_secs);
    println!("threads={}", run.threads);
    println!("growth_kib={growth}");
    println!("sink_busy={}", report.sink_busy);
    println!("waited={}", run.waited);
    Ok(())
}

pub(crate) fn many_table(cases: &[ManyCase], conns: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n| many connections: frame | implementation | threads | connect all {conns} | msgs/s \
         | MB/s | spread | × thread per connection | peak RSS growth | sink busy |"
    );
    out.push_str("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for case in cases {
        let Some(m) = case.median_sample() else { continue };
        let (msgs, mb) = rate(m);
        let baseline = cases
            .iter()
            .find(|c| c.imp == ManyImp::Threads && c.frame == case.frame)
            .and_then(ManyCase::median_sample)
            .map(|b| mb / rate(b).1);
        let name = if case.imp == ManyImp::Threads {
            case.imp.name().to_string()
        } else {
            format!("**{}**", case.imp.name())
        };
        let _ = writeln!(
            out,
            "| {} | {name} | {:.0} | {:.0} ms | {} | {mb:.0} | ±{:.0}% | {} | {:.1} MiB | {:.0}% |",
            fmt_size(case.frame),
            case.median_of(|s| s.threads),
            case.median_of(|s| s.connect_secs) * 1e3,
            fmt_count(msgs),
            case.spread() * 50.0,
            fmt_ratio(baseline),
            case.median_of(|s| s.growth_kib) / 1024.0,
            case.median_of(|s| s.sink_busy) * 100.0,
        );
    }
    out
}
