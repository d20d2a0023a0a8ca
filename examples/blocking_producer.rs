//! Plain threads producing through one blocking [`Client`].
//!
//! Three producer threads share one client with a small (64 KiB) buffer and send
//! newline-terminated messages to a loopback TCP sink started here, which reads slowly. When the
//! buffer is full, `send` parks the producer until the sink has read enough; nothing else is
//! needed to keep memory bounded.
//!
//! ```text
//! RUST_LOG=debug cargo run --example blocking_producer
//! ```
//!
//! `RUST_LOG=debug` shows the connection's life; `RUST_LOG=trace` also shows every write to the
//! socket and every sender that has to wait for room.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use tidegate::transport::SocketOption;
use tidegate::{Client, Config};

const PRODUCERS: usize = 3;
const MESSAGES_PER_PRODUCER: usize = 2_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();

    // A slow sink: it counts lines and naps every 100 of them.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("tcp://{}", listener.local_addr()?);
    let sink = thread::spawn(move || -> std::io::Result<usize> {
        let (stream, peer) = listener.accept()?;
        log::info!("sink: accepted {peer}");
        let mut lines = 0;
        for line in BufReader::new(stream).lines() {
            line?;
            lines += 1;
            if lines % 100 == 0 {
                thread::sleep(Duration::from_millis(5));
            }
        }
        log::info!("sink: end of stream after {lines} lines");
        Ok(lines)
    });

    // One client for every thread: clones share the connection and its 64 KiB buffer. The small
    // socket send buffer keeps the kernel from absorbing the whole run, so the sink's naps
    // reach the producers.
    let config = Config::new()
        .capacity(64 * 1024)
        .send_timeout(Duration::from_secs(10))
        .socket_option(SocketOption::SendBufferSize(32 * 1024));
    let client = Client::builder().config(config).connect(&url)?;

    let producers: Vec<_> = (0..PRODUCERS)
        .map(|id| {
            let client = client.clone();
            thread::spawn(move || {
                for n in 0..MESSAGES_PER_PRODUCER {
                    // A long line, so the buffer fills after a few hundred of them.
                    let message = format!("producer {id} message {n:>5} {}\n", "x".repeat(200));
                    // Parks this thread while the buffer is full. On error the frame comes back.
                    if let Err(err) = client.send(message) {
                        log::error!("producer {id}: {err}");
                        return Err(err);
                    }
                }
                Ok(())
            })
        })
        .collect();
    for producer in producers {
        producer.join().expect("a producer panicked")?;
    }

    // Close drains what is still buffered, then ends the connection. The report accounts for
    // every frame: written, or handed back in `unsent()`.
    let report = client.close()?;
    let stats = client.stats();
    let lines = sink.join().expect("the sink panicked")?;

    println!("frames written:    {}", report.frames_written());
    println!("bytes written:     {}", report.bytes_written());
    println!("lines received:    {lines}");
    println!("buffer high-water: {} of {} bytes", stats.high_water, stats.capacity);
    let waited = stats.wait_time.as_secs_f64();
    println!("sends that waited: {} ({waited:.3} s in total)", stats.sends_waited);
    println!("close was clean:   {}", report.is_clean());
    assert!(report.is_clean(), "frames were left unsent: {report:?}");
    assert_eq!(lines, PRODUCERS * MESSAGES_PER_PRODUCER);
    Ok(())
}
