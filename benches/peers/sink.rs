//! The sinks: threads that read a loopback socket as fast as they can and count the bytes.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::{PATIENCE, SINK_BUF};

/// Accepts one connection, giving up after `PATIENCE`.
pub(crate) fn accept(listener: &TcpListener) -> io::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + PATIENCE;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
}

/// What a sink saw.
#[derive(Debug)]
pub(crate) struct SinkReport {
    pub(crate) bytes: u64,
    /// When the expected byte count was reached.
    pub(crate) done_at: Instant,
}

/// A sink thread reading one connection as fast as it can, until the peer closes.
pub(crate) fn spawn_sink(
    expected: u64,
    rate: Option<u64>,
) -> io::Result<(SocketAddr, thread::JoinHandle<io::Result<SinkReport>>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let handle = thread::Builder::new().name("sink".into()).spawn(move || {
        let mut stream = accept(&listener)?;
        stream.set_read_timeout(Some(PATIENCE))?;
        let mut buf = vec![0u8; SINK_BUF];
        let mut bytes = 0u64;
        let mut done_at = None;
        let start = Instant::now();
        loop {
            let n = match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            bytes += n as u64;
            if done_at.is_none() && bytes >= expected {
                done_at = Some(Instant::now());
            }
            if let Some(rate) = rate {
                // A slow reader: no faster than `rate` bytes per second on average.
                let due = Duration::from_secs_f64(bytes as f64 / rate as f64);
                if let Some(ahead) = due.checked_sub(start.elapsed()) {
                    thread::sleep(ahead);
                }
            }
        }
        Ok(SinkReport { bytes, done_at: done_at.unwrap_or_else(Instant::now) })
    })?;
    Ok((addr, handle))
}
