//! Legacy threads and async tasks sharing one connection.
//!
//! A service being moved to async often keeps some old producer threads for a while. Both can
//! use the same connection: open it once with the core, wrap one handle in a blocking
//! [`Client`] for the threads and another in an [`AsyncClient`] for the tasks. They share one
//! bounded buffer and wait in one FIFO line, so neither side can starve the other, and each
//! producer's messages reach the peer in the order it sent them. This example checks that at a
//! loopback TCP sink it starts itself, then prints a summary.
//!
//! ```text
//! RUST_LOG=debug cargo run --example mixed
//! ```

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use tidegate::transport::SocketOption;
use tidegate::{AsyncClient, Client, Config, Connection};

const THREADS: usize = 3;
const TASKS: usize = 50;
const MESSAGES_PER_THREAD: usize = 3_000;
const MESSAGES_PER_TASK: usize = 200;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let start = Instant::now();

    // The sink checks that each producer's messages arrive in order, and naps now and then so
    // that the buffer fills and producers of both kinds wait in line.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("tcp://{}", listener.local_addr()?);
    let sink = thread::spawn(move || -> std::io::Result<HashMap<String, usize>> {
        let (stream, _) = listener.accept()?;
        let mut next: HashMap<String, usize> = HashMap::new();
        for (i, line) in BufReader::new(stream).lines().enumerate() {
            let line = line?;
            let mut words = line.split(' ');
            let producer = format!("{} {}", words.next().unwrap_or(""), words.next().unwrap_or(""));
            let seq: usize = words.next().and_then(|w| w.parse().ok()).unwrap_or(usize::MAX);
            let expected = next.entry(producer.clone()).or_insert(0);
            assert_eq!(seq, *expected, "{producer}: a message out of order");
            *expected += 1;
            if i % 200 == 0 {
                thread::sleep(Duration::from_millis(2));
            }
        }
        Ok(next)
    });

    // One connection, two kinds of handle.
    let config = Config::new()
        .capacity(32 * 1024)
        .send_timeout(Duration::from_secs(10))
        .socket_option(SocketOption::SendBufferSize(16 * 1024));
    let conn = Connection::open(&url, config)?;
    let blocking = Client::from_connection(conn.clone());
    let client = AsyncClient::from_connection(conn);

    // The legacy threads: `send` parks the thread while the buffer is full.
    let threads: Vec<_> = (0..THREADS)
        .map(|id| {
            let blocking = blocking.clone();
            thread::spawn(move || {
                for n in 0..MESSAGES_PER_THREAD {
                    blocking.send(format!("thread {id} {n} {}\n", "t".repeat(100)))?;
                }
                Ok::<_, tidegate::SendError<tidegate::Bytes>>(())
            })
        })
        .collect();

    // The async tasks, on a tokio runtime: `send(..).await` is pending while the buffer is full.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build()?;
    runtime.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|id| {
                let client = client.clone();
                tokio::spawn(async move {
                    for n in 0..MESSAGES_PER_TASK {
                        client.send(format!("task {id} {n} {}\n", "a".repeat(100))).await?;
                    }
                    Ok::<_, tidegate::SendError<tidegate::Bytes>>(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    for thread in threads {
        thread.join().expect("a producer thread panicked")?;
    }

    // Either handle can close the connection; the report covers every producer's frames.
    let report = runtime.block_on(client.close())?;
    let stats = client.stats();
    let seen = sink.join().expect("the sink found a message out of order")?;

    let counts = |kind: &str| -> Vec<usize> {
        seen.iter().filter(|(producer, _)| producer.starts_with(kind)).map(|(_, &n)| n).collect()
    };
    let (threads, tasks) = (counts("thread "), counts("task "));
    println!("thread messages:   {} from {} threads", threads.iter().sum::<usize>(), threads.len());
    println!("task messages:     {} from {} tasks", tasks.iter().sum::<usize>(), tasks.len());
    println!("in order:          every producer's messages arrived in the order sent");
    println!("bytes written:     {}", report.bytes_written());
    println!("buffer high-water: {} of {} bytes", stats.high_water, stats.capacity);
    let waited = stats.wait_time.as_secs_f64();
    println!("sends that waited: {} ({waited:.3} s in total)", stats.sends_waited);
    println!("close was clean:   {}", report.is_clean());
    println!("took:              {:.3} s", start.elapsed().as_secs_f64());
    assert!(report.is_clean(), "frames were left unsent: {report:?}");
    assert_eq!((threads.len(), tasks.len()), (THREADS, TASKS));
    assert!(threads.iter().all(|&n| n == MESSAGES_PER_THREAD));
    assert!(tasks.iter().all(|&n| n == MESSAGES_PER_TASK));
    Ok(())
}
