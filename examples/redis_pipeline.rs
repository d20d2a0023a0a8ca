//! A RESP producer against a real Redis: pipelines `RPUSH` commands through one [`Client`]
//! with a 64 KiB buffer, while a second handle on the same connection counts Redis's replies.
//! At the end it closes, asks Redis for the list's length over a connection of its own, and
//! prints a summary; it exits with a failure code if Redis does not hold every value or a
//! reply is missing.
//!
//! ```text
//! redis-server --port 6379 --save ''
//! cargo run --release --example redis_pipeline -- tcp://127.0.0.1:6379 200000
//! ```
//!
//! The first argument is the server's URL (`tcp://127.0.0.1:6379` by default), the second the
//! number of commands (100,000 by default). On a terminal it shows live progress.

use std::error::Error;
use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tidegate::{Bytes, Client};

/// The client's outgoing buffer: small, so that Redis paces the producer.
const CAPACITY: usize = 64 * 1024;
/// The list the commands push to; emptied first.
const KEY: &str = "tidegate:redis_pipeline";

fn main() -> ExitCode {
    env_logger::init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("redis_pipeline FAILED: {problem}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "tcp://127.0.0.1:6379".into());
    let count: u64 = args.next().map(|n| n.parse()).transpose()?.unwrap_or(100_000);
    let addr = url.strip_prefix("tcp://").ok_or("the URL must be tcp://host:port")?.to_owned();

    // Start from an empty list, over a connection of our own.
    command(&addr, &["DEL", KEY])?;

    let client = Client::builder()
        .capacity(CAPACITY)
        .send_timeout(Duration::from_secs(30))
        .close_timeout(Duration::from_secs(30))
        .connect(&url)?;
    println!("redis_pipeline: {count} RPUSH commands -> {url} (a {} KiB buffer)", CAPACITY >> 10);

    let replies = Arc::new(AtomicU64::new(0));
    let reader = {
        let (client, replies) = (client.clone(), replies.clone());
        thread::spawn(move || count_replies(&client, &replies))
    };

    let progress = progress_bar(count);
    let started = Instant::now();
    for i in 0..count {
        client.send(rpush(KEY, i))?;
        if i % 1024 == 0 {
            progress.set_position(i);
            progress.set_message(format!(
                "{} replies, {} senders waiting",
                replies.load(Ordering::Relaxed),
                client.stats().waiters
            ));
        }
    }
    progress.finish_and_clear();
    let report = client.close()?;
    let elapsed = started.elapsed();
    let ended = reader.join().expect("the reply reader panicked");
    let answered = replies.load(Ordering::SeqCst);
    let held: u64 = command(&addr, &["LLEN", KEY])?
        .strip_prefix(':')
        .and_then(|n| n.parse().ok())
        .ok_or("LLEN did not answer with an integer")?;
    let stats = client.stats();

    println!("frames sent:      {:>12}", report.frames_written());
    println!("bytes sent:       {:>12}", report.bytes_written());
    println!("replies:          {answered:>12}  (the stream ended with {ended})");
    println!("LLEN {KEY}: {held}");
    println!(
        "throughput:       {:>12.0} commands/s, {:.1} MB/s in {:.2?}",
        count as f64 / elapsed.as_secs_f64(),
        report.bytes_written() as f64 / 1e6 / elapsed.as_secs_f64(),
        elapsed
    );
    println!(
        "buffer:           {:>12} bytes at most of {CAPACITY}; {} sends waited for room",
        stats.high_water, stats.sends_waited
    );
    if !report.is_clean() {
        return Err(format!("the close was not clean: {report:?}").into());
    }
    if held != count {
        return Err(format!("redis holds {held} values, {count} were sent").into());
    }
    if answered != count {
        return Err(format!("{answered} replies of {count}").into());
    }
    Ok(())
}

/// `RPUSH key value-<i>`, as RESP.
fn rpush(key: &str, i: u64) -> Bytes {
    let value = format!("value-{i}");
    Bytes::from(format!(
        "*3\r\n$5\r\nRPUSH\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
        key.len(),
        value.len()
    ))
}

/// Counts the replies (each a line ending in CRLF) until the stream ends; returns how it
/// ended.
fn count_replies(client: &Client, replies: &AtomicU64) -> String {
    let mut last = 0u8;
    loop {
        match client.recv() {
            Ok(Some(chunk)) => {
                let mut lines = 0;
                for &b in chunk.iter() {
                    if last == b'\r' && b == b'\n' {
                        lines += 1;
                    }
                    last = b;
                }
                replies.fetch_add(lines, Ordering::Relaxed);
            }
            Ok(None) => return "an orderly end".into(),
            Err(e) => return format!("an error: {e}"),
        }
    }
}

/// Runs one command on a plain connection and returns its reply's first line.
fn command(addr: &str, args: &[&str]) -> Result<String, Box<dyn Error>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut out = format!("*{}\r\n", args.len());
    for arg in args {
        out.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(out.as_bytes())?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    Ok(line.trim_end().to_owned())
}

fn progress_bar(count: u64) -> ProgressBar {
    let target = if io::stdout().is_terminal() {
        ProgressDrawTarget::stdout()
    } else {
        ProgressDrawTarget::hidden()
    };
    ProgressBar::with_draw_target(Some(count), target).with_style(
        ProgressStyle::with_template("   sent [{bar:40}] {pos:>9} of {len}  {per_sec:>12}  {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    )
}
