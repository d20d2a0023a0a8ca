//! How long a producer that keeps sending takes to come back after its link is reset: from the
//! sink's reset to the first byte on the next link the sink accepts. tidegate with reconnection
//! on (no backoff delay, so what is measured is the machinery) against the reconnect loop an
//! application writes by hand over a blocking `std::net::TcpStream`.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tidegate::{Client, Reconnect};

use crate::{PATIENCE, other};

/// The implementations measured, by name.
pub(crate) const RELINK_PEERS: [&str; 2] = ["tidegate Client", "reconnect loop over TcpStream"];

/// A producer sending 64-byte frames to `addr` until `stop`, and getting a new link after
/// each loss.
type Producer = fn(SocketAddr, Arc<AtomicBool>) -> io::Result<()>;

fn tidegate_producer(addr: SocketAddr, stop: Arc<AtomicBool>) -> io::Result<()> {
    let policy = Reconnect::new().initial_delay(Duration::ZERO).jitter(0.0);
    let client =
        Client::builder().reconnect(policy).connect(&format!("tcp://{addr}")).map_err(other)?;
    let frame = Bytes::from(vec![7u8; 64]);
    while !stop.load(Ordering::Relaxed) {
        // A send that waits out a slow relink is simply tried again.
        let _ = client.send_timeout(frame.clone(), Duration::from_millis(100));
    }
    let _ = client.close_timeout(Duration::from_millis(100));
    Ok(())
}

fn plain_producer(addr: SocketAddr, stop: Arc<AtomicBool>) -> io::Result<()> {
    let frame = [7u8; 64];
    let deadline = Instant::now() + PATIENCE;
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    while !stop.load(Ordering::Relaxed) {
        if stream.write_all(&frame).is_err() {
            // What a hand-written client does: connect again at once, until it works.
            stream = loop {
                if Instant::now() > deadline || stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                match TcpStream::connect(addr) {
                    Ok(stream) => break stream,
                    Err(_) => thread::yield_now(),
                }
            };
            stream.set_nodelay(true)?;
        }
    }
    Ok(())
}

/// Accepts the next link, waiting at most `PATIENCE`.
fn accept(listener: &TcpListener) -> io::Result<TcpStream> {
    let (stream, _) = listener.accept()?;
    stream.set_read_timeout(Some(PATIENCE))?;
    Ok(stream)
}

/// Resets `samples` links of `peer`'s producer, and returns the nanoseconds from each reset to
/// the first byte of the next link.
pub(crate) fn relink_latency(peer: &str, samples: usize) -> io::Result<Vec<u64>> {
    let producer: Producer = match peer {
        "tidegate Client" => tidegate_producer,
        _ => plain_producer,
    };
    let listener = TcpListener::bind("127.0.0.1:0")?;
    // A blocking accept that gives up: Linux applies the receive timeout to accept.
    socket2::SockRef::from(&listener).set_read_timeout(Some(PATIENCE))?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let running: JoinHandle<io::Result<()>> = {
        let stop = stop.clone();
        thread::spawn(move || producer(addr, stop))
    };
    let measured = (|| {
        let mut link = accept(&listener)?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut took = Vec::with_capacity(samples);
        for _ in 0..samples {
            // Bytes flow on this link, then it is reset.
            if link.read(&mut buf)? == 0 {
                return Err(other("the producer closed"));
            }
            socket2::SockRef::from(&link).set_linger(Some(Duration::ZERO))?;
            drop(link);
            let reset_at = Instant::now();
            link = accept(&listener)?;
            let mut first = [0u8; 1];
            link.read_exact(&mut first)?;
            took.push(reset_at.elapsed().as_nanos() as u64);
        }
        Ok(took)
    })();
    stop.store(true, Ordering::Relaxed);
    // Unblocks a producer waiting to connect or write.
    drop(listener);
    match running.join() {
        Ok(result) => result?,
        Err(_) => return Err(other(format!("the {peer} producer panicked"))),
    }
    measured
}
