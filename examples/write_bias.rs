//! Measures write biasing: how fast a client's outgoing data goes out over loopback TCP alone,
//! and while the peer floods it, for a few values of `Config::write_bias` (the most bytes the
//! driver reads per turn of its loop).
//!
//! ```text
//! cargo run --release --example write_bias
//! ```

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tidegate::{Client, Config};

const OUTBOUND: usize = 256 << 20;
const FRAME: usize = 64 * 1024;

/// Sends `OUTBOUND` bytes and returns the outgoing throughput in MB/s and the inbound bytes
/// received meanwhile.
fn run(flood: bool, bias: usize) -> (f64, u64) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("tcp://{}", listener.local_addr().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let peer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut reader, _) = listener.accept().unwrap();
            let mut writer = reader.try_clone().unwrap();
            writer.set_write_timeout(Some(Duration::from_millis(50))).unwrap();
            let flooder = std::thread::spawn(move || {
                let chunk = vec![1u8; FRAME];
                while flood && !stop.load(Ordering::Relaxed) {
                    let _ = writer.write(&chunk);
                }
            });
            let mut buf = vec![0u8; FRAME];
            let mut got = 0;
            while got < OUTBOUND {
                got += reader.read(&mut buf).unwrap();
            }
            flooder
        })
    };
    let client = Client::builder().config(Config::new().write_bias(bias)).connect(&url).unwrap();
    let consumer = {
        let client = client.clone();
        std::thread::spawn(move || while let Ok(Some(_)) = client.recv() {})
    };
    let frame = tidegate::Bytes::from(vec![2u8; FRAME]);
    let start = Instant::now();
    let received_before = client.stats().bytes_received;
    for _ in 0..OUTBOUND / FRAME {
        client.send(frame.clone()).unwrap();
    }
    client.flush().unwrap();
    let secs = start.elapsed().as_secs_f64();
    let received = client.stats().bytes_received - received_before;
    stop.store(true, Ordering::Relaxed);
    peer.join().unwrap().join().unwrap();
    client.close().expect("close");
    consumer.join().unwrap();
    (OUTBOUND as f64 / secs / 1e6, received)
}

fn main() {
    let (alone, _) = run(false, tidegate::DEFAULT_WRITE_BIAS);
    println!("outbound alone: {alone:.0} MB/s");
    for bias in [4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20] {
        let (rate, inbound) = run(true, bias);
        println!(
            "write_bias {:>5} KiB: outbound {rate:>5.0} MB/s ({:>3.0}% of alone) while {:>5.0} MB \
             came in",
            bias >> 10,
            100.0 * rate / alone,
            inbound as f64 / 1e6
        );
    }
}
