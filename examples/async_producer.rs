//! Async tasks producing through one [`AsyncClient`], on async-std.
//!
//! Eight tasks share one client with a small (64 KiB) buffer and send newline-terminated
//! messages to a loopback TCP sink started here, which reads slowly. When the buffer is full,
//! `send(..).await` stays pending — the task yields its thread to others and uses no CPU — until
//! the I/O driver has written enough and wakes it. Nothing else is needed to keep memory
//! bounded, and the client depends on no runtime: the same code runs on tokio or smol.
//!
//! ```text
//! RUST_LOG=debug cargo run --example async_producer
//! ```
//!
//! `RUST_LOG=debug` shows the connection's life; `RUST_LOG=trace` also shows every write to the
//! socket and every sender that has to wait for room.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use tidegate::transport::SocketOption;
use tidegate::{AsyncClient, Config};

const TASKS: usize = 8;
const MESSAGES_PER_TASK: usize = 1_500;

#[async_std::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let start = Instant::now();

    // A slow sink on a thread of its own: it counts lines and naps every 100 of them.
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

    // One client for every task: clones share the connection and its 64 KiB buffer. The small
    // socket send buffer keeps the kernel from absorbing the whole run, so the sink's naps
    // reach the producers. The send timeout is fired by the client's own I/O thread, so it
    // needs no timer from async-std.
    let config = Config::new()
        .capacity(64 * 1024)
        .send_timeout(Duration::from_secs(10))
        .socket_option(SocketOption::SendBufferSize(32 * 1024));
    let client = AsyncClient::builder().config(config).connect(&url).await?;

    let tasks: Vec<_> = (0..TASKS)
        .map(|id| {
            let client = client.clone();
            async_std::task::spawn(async move {
                for n in 0..MESSAGES_PER_TASK {
                    let message = format!("task {id} message {n:>5} {}\n", "x".repeat(200));
                    // Pending while the buffer is full. On error the frame comes back.
                    if let Err(err) = client.send(message).await {
                        log::error!("task {id}: {err}");
                        return Err(err);
                    }
                }
                Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await?;
    }

    // Close drains what is still buffered, then ends the connection. The report accounts for
    // every frame: written, or handed back in `unsent()`.
    let report = client.close().await?;
    let stats = client.stats();
    let lines = sink.join().expect("the sink panicked")?;

    println!("tasks:             {TASKS} on async-std");
    println!("frames written:    {}", report.frames_written());
    println!("bytes written:     {}", report.bytes_written());
    println!("lines received:    {lines}");
    println!("buffer high-water: {} of {} bytes", stats.high_water, stats.capacity);
    let waited = stats.wait_time.as_secs_f64();
    println!("sends that waited: {} ({waited:.3} s in total)", stats.sends_waited);
    println!("close was clean:   {}", report.is_clean());
    println!("took:              {:.3} s", start.elapsed().as_secs_f64());
    assert!(report.is_clean(), "frames were left unsent: {report:?}");
    assert_eq!(lines, TASKS * MESSAGES_PER_TASK);
    Ok(())
}
