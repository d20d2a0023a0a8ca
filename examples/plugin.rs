//! A transport of your own, registered under its own URL scheme.
//!
//! `metered://host:port?every=N` is TCP with a meter: its link counts the bytes it writes and
//! logs a line every `N` writes. It reuses the built-in TCP link for connecting and socket
//! options (`metered://…?nodelay=0` works), and is registered at run time with
//! [`transport::register`], exactly like the built-in `tcp`, `tls`, `unix` and `mem`.
//!
//! ```text
//! RUST_LOG=info cargo run --example plugin
//! ```

use std::io::{self, IoSlice, Read};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use tidegate::Client;
use tidegate::transport::{
    self, Endpoint, Link, Registration, SocketOption, SocketOptionKind, Transport, mio, tcp,
};

/// The transport: what every link it opens shares.
#[derive(Debug, Default)]
struct Metered {
    /// Bytes written by every link of this transport.
    total: Arc<AtomicU64>,
}

impl Transport for Metered {
    fn open(&self, endpoint: &Endpoint) -> io::Result<Box<dyn Link>> {
        // Our own key, checked; the TCP ones are parsed and applied by the TCP helpers.
        let every = match endpoint.query("every") {
            None => 100,
            Some(n) => n.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("invalid value {n:?} for \"every\" in {}", endpoint.url()),
                )
            })?,
        };
        let options = tcp::query_options(endpoint, &["every"])?;
        let mut inner = tcp::TcpLink::connect(endpoint.address())?;
        for option in &options {
            inner.set_option(option)?;
        }
        Ok(Box::new(MeteredLink { inner, every, writes: 0, total: self.total.clone() }))
    }
}

/// The link: the TCP link, with a meter on its writes. Everything else is delegated.
#[derive(Debug)]
struct MeteredLink {
    inner: tcp::TcpLink,
    every: u64,
    writes: u64,
    total: Arc<AtomicU64>,
}

impl Link for MeteredLink {
    fn register(&mut self, registration: &Registration<'_>) -> io::Result<()> {
        self.inner.register(registration)
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        self.inner.deregister(registry)
    }

    fn poll_connect(&mut self) -> io::Result<bool> {
        self.inner.poll_connect()
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n = self.inner.write_vectored(bufs)?;
        self.writes += 1;
        let total = self.total.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if self.writes.is_multiple_of(self.every) {
            log::info!("metered: {} writes, {total} bytes so far", self.writes);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.inner.shutdown()
    }

    fn set_option(&mut self, option: &SocketOption) -> io::Result<()> {
        self.inner.set_option(option)
    }

    fn socket_option(&self, kind: SocketOptionKind) -> io::Result<SocketOption> {
        self.inner.socket_option(kind)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();

    let total = Arc::new(AtomicU64::new(0));
    transport::register("metered", Metered { total: total.clone() })?;
    println!("registered schemes: {}", transport::schemes().join(", "));

    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("metered://{}?every=50&sndbuf=65536", listener.local_addr()?);
    let sink = thread::spawn(move || -> io::Result<u64> {
        let (mut stream, _) = listener.accept()?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut read = 0;
        loop {
            match stream.read(&mut buf)? {
                0 => return Ok(read),
                n => read += n as u64,
            }
        }
    });

    let client = Client::connect(&url)?;
    let nodelay = client.call_link(|link| link.socket_option(SocketOptionKind::NoDelay))??;
    println!("connected through the plugin; {nodelay:?}");
    for n in 0..10_000u32 {
        client.send(format!("frame {n:>6}\n"))?;
    }
    let report = client.close()?;
    let read = sink.join().expect("the sink panicked")?;
    println!(
        "wrote {} bytes (the plugin metered {}), the sink read {read}; clean close: {}",
        report.bytes_written(),
        total.load(Ordering::Relaxed),
        report.is_clean()
    );
    assert_eq!(report.bytes_written(), read);
    Ok(())
}
