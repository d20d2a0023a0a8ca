//! Many connections on a few shared I/O threads: 1,000 loopback TCP connections on an
//! `IoGroup` of 2 threads, each with its own small capacity, some with a peer that stalls until
//! the others are done. Every connection's bytes arrive exactly, and every bound holds.

use std::io::{ErrorKind, Read};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tidegate::transport::SocketOption;
use tidegate::{AsyncClient, Config, IoGroup};

use crate::support::{self, Lcg, Verifier, Watchdog};

const CONNECTIONS: usize = 1000;
/// Bytes each connection sends, at least.
const PER_CONNECTION: usize = 16 * 1024;
/// Bytes a connection with a stalled peer sends, at least: far more than the kernel's small
/// socket buffers (set below) and the connection's capacity hold, so its sender must wait.
const PER_STALLED_CONNECTION: usize = 128 * 1024;
/// The socket buffer sizes on both ends.
const SOCKET_BUFFER: usize = 8 * 1024;

fn stalled(id: usize) -> bool {
    id % 10 == 3
}

fn capacity(id: usize) -> usize {
    1024 + (id % 4) * 1024
}

/// The frames connection `id` sends: sizes 16..=1024 from a seeded generator.
fn frames(id: usize) -> Vec<tidegate::Bytes> {
    let target = if stalled(id) { PER_STALLED_CONNECTION } else { PER_CONNECTION };
    let mut rng = Lcg::new(id as u64);
    let mut out = Vec::new();
    let mut total = 0;
    let mut seq = 0;
    while total < target {
        let len = rng.range(16, 1024);
        out.push(support::frame(id as u32, seq, len));
        total += len;
        seq += 1;
    }
    out
}

/// The bytes connection `id` sends.
fn total(id: usize) -> u64 {
    frames(id).iter().map(|f| f.len() as u64).sum()
}

/// Reads all connections round-robin on one thread, leaving the stalled ones alone until
/// `release` is set. Returns each connection's verifier, in accept order.
fn sink(
    listener: TcpListener,
    release: Arc<AtomicBool>,
    complete: Arc<AtomicUsize>,
) -> thread::JoinHandle<Vec<Verifier>> {
    thread::spawn(move || {
        let expected: Vec<u64> = (0..CONNECTIONS).map(total).collect();
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut streams: Vec<TcpStream> = Vec::with_capacity(CONNECTIONS);
        while streams.len() < CONNECTIONS && Instant::now() < deadline {
            let (stream, _) = listener.accept().expect("accept");
            stream.set_nonblocking(true).unwrap();
            streams.push(stream);
        }
        let mut verifiers: Vec<Verifier> = (0..CONNECTIONS).map(|_| Verifier::new()).collect();
        let mut ended = vec![false; CONNECTIONS];
        let mut buf = vec![0u8; 64 * 1024];
        while ended.iter().any(|e| !e) && Instant::now() < deadline {
            let released = release.load(Ordering::SeqCst);
            let mut progress = false;
            for (id, stream) in streams.iter_mut().enumerate() {
                if ended[id] || (stalled(id) && !released) {
                    continue;
                }
                match stream.read(&mut buf) {
                    Ok(0) => {
                        // Answer the client's end of stream with ours, as a server does.
                        let _ = stream.shutdown(std::net::Shutdown::Write);
                        ended[id] = true;
                    }
                    Ok(n) => {
                        progress = true;
                        verifiers[id].feed(&buf[..n]).unwrap_or_else(|e| panic!("conn {id}: {e}"));
                        if verifiers[id].bytes == expected[id] {
                            complete.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => panic!("conn {id}: read failed: {e}"),
                }
            }
            if !progress {
                thread::sleep(Duration::from_millis(1));
            }
        }
        assert!(ended.iter().all(|e| *e), "some connections never ended");
        verifiers
    })
}

#[test]
fn a_thousand_connections_share_two_io_threads() {
    let _watchdog = Watchdog::new(Duration::from_secs(120), "1,000 connections on 2 threads");
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    // Accepted sockets inherit the small receive buffer.
    socket.set_recv_buffer_size(SOCKET_BUFFER).unwrap();
    socket.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    socket.listen(1024).unwrap();
    let listener: TcpListener = socket.into();
    let url = format!("tcp://{}", listener.local_addr().unwrap());
    let release = Arc::new(AtomicBool::new(false));
    let complete = Arc::new(AtomicUsize::new(0));
    let sink = sink(listener, release.clone(), complete.clone());
    let group = IoGroup::new(2).unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let clients = runtime.block_on(async {
        // One at a time, so the sink accepts them in the order of their ids.
        let mut clients = Vec::with_capacity(CONNECTIONS);
        for id in 0..CONNECTIONS {
            let config = Config::new()
                .capacity(capacity(id))
                .io_group(&group)
                .socket_option(SocketOption::SendBufferSize(SOCKET_BUFFER));
            let client = AsyncClient::builder().config(config).connect(&url).await.unwrap();
            clients.push(client);
        }
        clients
    });
    assert_eq!(group.connections(), CONNECTIONS);

    let producers: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(id, client)| {
            let client = client.clone();
            runtime.spawn(async move {
                for frame in frames(id) {
                    client.send(frame).await.unwrap();
                }
            })
        })
        .collect();

    // Everyone but the stalled connections gets through while those stay stuck.
    let others = (0..CONNECTIONS).filter(|id| !stalled(*id)).count();
    assert!(
        support::wait_until(Duration::from_secs(60), || complete.load(Ordering::SeqCst) == others),
        "only {} of {others} connections completed while some peers stalled",
        complete.load(Ordering::SeqCst)
    );
    for (id, client) in clients.iter().enumerate() {
        let stats = client.stats();
        assert!(stats.high_water <= capacity(id), "conn {id}: {stats:?}");
        if stalled(id) {
            assert!(!producers[id].is_finished(), "conn {id} sent everything to a stalled peer");
            // Its producer task may not have run again since the driver last drained its
            // buffer into the socket; once it does, the socket is full and the bytes stay.
            assert!(
                support::wait_until(Duration::from_secs(30), || client.stats().buffered > 0),
                "conn {id} should be stuck behind its stalled peer: {:?}",
                client.stats()
            );
        }
    }
    release.store(true, Ordering::SeqCst);

    runtime.block_on(async {
        for producer in producers {
            producer.await.unwrap();
        }
        for client in &clients {
            let report = client.close().await.unwrap();
            assert!(report.is_clean(), "{report:?}");
        }
    });
    let verifiers = support::join_within(sink, Duration::from_secs(60), "the sink");
    for (id, verifier) in verifiers.iter().enumerate() {
        assert_eq!(verifier.bytes, total(id), "conn {id}");
        assert!(verifier.at_boundary(), "conn {id}");
        assert_eq!(verifier.next_seq().get(&(id as u32)), Some(&(frames(id).len() as u64)));
    }
    for (id, client) in clients.iter().enumerate() {
        assert!(client.stats().high_water <= capacity(id), "conn {id}");
    }
}
