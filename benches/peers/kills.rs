//! What resets cost a transfer: the throughput of 1 GiB (1/16 with `--quick`) of 1 KiB frames
//! from one producer thread to a sink that resets the link 50 times along the way, beside the
//! same transfer with no reset, in the same run.
//!
//! The sink is a thread reading a loopback listener into a 256 KiB buffer as fast as it can and
//! counting the bytes. In the kill rows it resets the link (`SO_LINGER` 0, then drop: the
//! kernel answers with a reset and throws away what the sink had not read) each time the
//! producer's progress (the bytes it has handed over, which it publishes in an atomic after
//! each send) passes the next of 50 points, then accepts the next link. The points are in the
//! producer's bytes, not the sink's, because each reset throws bytes away: a sink counting its
//! own would fall behind its points, by as much as a mebibyte a reset, and make fewer resets
//! the more each one cost. They are spread over the first 15/16 of the transfer: one in each
//! of 50 equal slices, at a place in its slice drawn from a xorshift with a fixed seed, so
//! every run kills at the same points, and the kills are neither clustered nor in step with
//! the frames. The sink looks at the progress after each read, so it resets within a read of
//! the point (or after the next link's first read, when two points fall within one outage).
//!
//! The clock starts at the producer's first send (after connecting) and stops at the last byte
//! the sink reads before the producer's end of stream. Throughput is the bytes the sink
//! *received* over that time: with resets, what was lost at a kill was not delivered, and is
//! not counted. Each row also shows what went missing (bytes sent − bytes received), the time
//! from each reset to the next link's first byte at the sink, summed over the resets, and, for
//! tidegate, the fates its [`tidegate::Stats`] gave the frames of the lost links and its own
//! `time_disconnected`.
//!
//! 1 KiB frames, because the throughput table's 1 KiB rows send the same 1 GiB, so the
//! `0 kills` row can be read against them, and because the cost of a kill that grows with the
//! frames held (the replay of the buffer, frame by frame) is then neither hidden, as with 64 KiB
//! frames (16 of them fill the 1 MiB buffer), nor the whole story, as with 64 B ones.
//!
//! - `tidegate Client`: [`tidegate::Client::send_timeout`] per frame, default 1 MiB buffer,
//!   reconnection on with no backoff delay (`Reconnect::new().initial_delay(Duration::ZERO)
//!   .jitter(0.0)`), so what is measured is the machinery; then `close`. A send waits through
//!   an outage, so none fails; one that did would fail the sample.
//! - `reconnect loop over TcpStream`: the loop an application writes by hand, as in the relink
//!   rows: `write_all` of each frame on a blocking `std::net::TcpStream`, and on a failed write
//!   a new connection at once, moving on to the next frame. It keeps no frame, so whatever was
//!   in the kernel's buffers at a reset, and the frame its failed write carried, are gone
//!   without a word.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tidegate::{Client, Ending, Reconnect};

use crate::{PATIENCE, SINK_BUF, frame_of, other};

/// The implementations measured, by name.
pub(crate) const KILL_PEERS: [&str; 2] = ["tidegate Client", "reconnect loop over TcpStream"];
/// The resets of the kill rows; each peer also runs with none.
pub(crate) const KILLS: usize = 50;
/// The frame every producer sends.
pub(crate) const KILL_FRAME: usize = 1024;
/// How long the sink's accept waits before it looks whether the producer is done.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// The name of a row: every row matches `--filter kills`.
pub(crate) fn kills_row(peer: &str, kills: usize) -> String {
    format!("kills {peer} / {kills} kills")
}

/// One transfer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KillSample {
    /// From the first send to the sink's last byte.
    pub(crate) secs: f64,
    /// Bytes the producer handed over, every frame once.
    pub(crate) sent: u64,
    /// Bytes the sink read, over every link.
    pub(crate) received: u64,
    /// Resets the sink made.
    pub(crate) kills: usize,
    /// From each reset to the next link's first byte, summed: the time the sink went without.
    pub(crate) gaps: Duration,
    /// Links the producer saw fail: tidegate's `disconnects`, the loop's failed writes.
    pub(crate) losses: u64,
    /// tidegate's fates of the lost links' frames: replayed, possibly delivered, acknowledged.
    pub(crate) fates: Option<[u64; 3]>,
    /// tidegate's `time_disconnected`: from each loss it saw to the next link.
    pub(crate) disconnected: Option<Duration>,
    /// How tidegate's close went.
    pub(crate) ending: Option<Ending>,
}

impl KillSample {
    /// Bytes the sink received per second, in MB (10^6 bytes).
    pub(crate) fn mbps(&self) -> f64 {
        self.received as f64 / self.secs / 1e6
    }
}

/// What the producer reports: when it started, and what it saw.
struct Produced {
    started: Instant,
    sent: u64,
    losses: u64,
    fates: Option<[u64; 3]>,
    disconnected: Option<Duration>,
    ending: Option<Ending>,
}

/// A producer sending `frames` frames to `addr`, storing in `progress` the bytes it has handed
/// over.
type Producer = fn(SocketAddr, u64, &AtomicU64) -> io::Result<Produced>;

fn tidegate_producer(addr: SocketAddr, frames: u64, progress: &AtomicU64) -> io::Result<Produced> {
    let policy = Reconnect::new().initial_delay(Duration::ZERO).jitter(0.0);
    let client =
        Client::builder().reconnect(policy).connect(&format!("tcp://{addr}")).map_err(other)?;
    let frame = frame_of(KILL_FRAME);
    let started = Instant::now();
    for i in 1..=frames {
        // Sends wait through an outage; one that waited this long means the sink is gone.
        client.send_timeout(frame.clone(), PATIENCE).map_err(other)?;
        progress.store(i * KILL_FRAME as u64, Ordering::Relaxed);
    }
    let report = client.close_timeout(PATIENCE).map_err(other)?;
    let stats = client.stats();
    Ok(Produced {
        started,
        sent: frames * KILL_FRAME as u64,
        losses: stats.disconnects,
        fates: Some([
            stats.frames_replayed,
            stats.frames_possibly_delivered,
            stats.frames_acknowledged,
        ]),
        disconnected: Some(stats.time_disconnected),
        ending: Some(report.ending()),
    })
}

fn plain_producer(addr: SocketAddr, frames: u64, progress: &AtomicU64) -> io::Result<Produced> {
    let frame = frame_of(KILL_FRAME);
    let deadline = Instant::now() + PATIENCE;
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut losses = 0;
    let started = Instant::now();
    for i in 1..=frames {
        if stream.write_all(&frame).is_err() {
            losses += 1;
            // What a hand-written client does: connect again at once, until it works, and go
            // on with the next frame.
            stream = loop {
                if Instant::now() > deadline {
                    return Err(other("the reconnect loop ran out of time"));
                }
                match TcpStream::connect(addr) {
                    Ok(stream) => break stream,
                    Err(_) => thread::yield_now(),
                }
            };
            stream.set_nodelay(true)?;
        }
        progress.store(i * KILL_FRAME as u64, Ordering::Relaxed);
    }
    // The end of stream, after the last byte (the sink never writes, so no reset).
    stream.shutdown(std::net::Shutdown::Write)?;
    Ok(Produced {
        started,
        sent: frames * KILL_FRAME as u64,
        losses,
        fates: None,
        disconnected: None,
        ending: None,
    })
}

/// The producer's progress at which the sink resets the link: one in each of `kills` equal slices of the
/// first 15/16 of `total`, at a place drawn from a xorshift with a fixed seed.
fn kill_points(total: u64, kills: usize) -> Vec<u64> {
    let span = total - total / 16;
    let slice = span / kills.max(1) as u64;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..kills as u64)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            i * slice + state % slice.max(1)
        })
        .collect()
}

/// What the sink saw.
struct Sunk {
    received: u64,
    kills: usize,
    last_byte: Instant,
    /// From each reset to the next link's first byte, summed.
    gaps: Duration,
}

/// Accepts the next link; `None` once the producer is done and no link came.
fn next_link(
    listener: &TcpListener,
    done: &AtomicBool,
    deadline: Instant,
) -> io::Result<Option<TcpStream>> {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_read_timeout(Some(PATIENCE))?;
                return Ok(Some(stream));
            }
            // Linux applies the receive timeout to accept, and answers EAGAIN when it passes.
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                if done.load(Ordering::SeqCst) {
                    return Ok(None);
                }
                if Instant::now() > deadline {
                    return Err(other("the sink waited too long for a link"));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads every link until the producer's end of stream, resetting the link once `progress`
/// passes each of `points`.
fn sink(
    listener: TcpListener,
    points: Vec<u64>,
    progress: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
) -> io::Result<Sunk> {
    // A blocking accept that comes back now and then to look at `done`: a connection that is
    // waiting is taken at once, with no polling delay.
    socket2::SockRef::from(&listener).set_read_timeout(Some(ACCEPT_POLL))?;
    let deadline = Instant::now() + PATIENCE;
    let mut buf = vec![0u8; SINK_BUF];
    let mut points = points.into_iter().peekable();
    let mut received = 0u64;
    let mut kills = 0;
    let mut last_byte = Instant::now();
    let mut gaps = Duration::ZERO;
    let mut reset_at = None;
    let Some(mut link) = next_link(&listener, &done, deadline)? else {
        return Err(other("the producer never connected"));
    };
    loop {
        let n = match link.read(&mut buf) {
            // The producer's end of stream: everything it will send has come.
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        received += n as u64;
        last_byte = Instant::now();
        if let Some(at) = reset_at.take() {
            gaps += last_byte.saturating_duration_since(at);
        }
        let sent = progress.load(Ordering::Relaxed);
        if points.next_if(|&at| sent >= at).is_some() {
            socket2::SockRef::from(&link).set_linger(Some(Duration::ZERO))?;
            drop(link);
            kills += 1;
            reset_at = Some(Instant::now());
            match next_link(&listener, &done, deadline)? {
                Some(next) => link = next,
                // The producer finished before it saw the reset: there is no more to read.
                None => break,
            }
        }
    }
    Ok(Sunk { received, kills, last_byte, gaps })
}

/// Sends `total` bytes of 1 KiB frames from `peer`'s producer to a sink that resets the link
/// `kills` times.
pub(crate) fn kills_throughput(peer: &str, kills: usize, total: u64) -> io::Result<KillSample> {
    let producer: Producer = match peer {
        "tidegate Client" => tidegate_producer,
        _ => plain_producer,
    };
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let done = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let sinking = {
        let (points, progress, done) = (kill_points(total, kills), progress.clone(), done.clone());
        thread::Builder::new()
            .name("sink".into())
            .spawn(move || sink(listener, points, progress, done))?
    };
    let produced = producer(addr, total / KILL_FRAME as u64, &progress);
    // Whatever happened, the sink stops waiting for links.
    done.store(true, Ordering::SeqCst);
    let sunk = sinking.join().map_err(|_| other("the sink panicked"))?;
    let (produced, sunk) = (produced?, sunk?);
    if kills == 0 && sunk.received != produced.sent {
        return Err(other(format!(
            "the sink received {} of {} bytes with no reset",
            sunk.received, produced.sent
        )));
    }
    Ok(KillSample {
        secs: sunk.last_byte.saturating_duration_since(produced.started).as_secs_f64(),
        sent: produced.sent,
        received: sunk.received,
        kills: sunk.kills,
        gaps: sunk.gaps,
        losses: produced.losses,
        fates: produced.fates,
        disconnected: produced.disconnected,
        ending: produced.ending,
    })
}
