//! Write biasing: under a full-duplex flood over loopback TCP (the peer sends without pause
//! while the client sends), the client's outgoing data still completes. The check counts
//! bytes, not time: the peer floods until the client's data has all arrived, with a cap of
//! 256 MiB; if reading starved writing, the flood would reach its cap first. The ratio of
//! inbound bytes pushed to outbound bytes delivered is printed (run with `--nocapture`).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tidegate::Client;

use crate::support::{self, join_within};

const WAIT: Duration = Duration::from_secs(30);
const FLOOD_LIMIT: u64 = 256 << 20;
const OUTBOUND: usize = 4 << 20;

#[test]
fn outgoing_data_completes_while_the_peer_floods() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("tcp://{}", listener.local_addr().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let pushed = Arc::new(AtomicU64::new(0));
    let peer = {
        let (stop, pushed) = (stop.clone(), pushed.clone());
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut writer = stream.try_clone().unwrap();
            writer.set_write_timeout(Some(Duration::from_millis(50))).unwrap();
            let flooder = std::thread::spawn(move || {
                let chunk = vec![0xA5u8; 64 * 1024];
                while !stop.load(Ordering::SeqCst) && pushed.load(Ordering::SeqCst) < FLOOD_LIMIT {
                    match writer.write(&chunk) {
                        Ok(n) => {
                            pushed.fetch_add(n as u64, Ordering::SeqCst);
                        }
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                        Err(_) => return,
                    }
                }
            });
            let mut reader = stream;
            reader.set_read_timeout(Some(WAIT)).unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = 0usize;
            while got < OUTBOUND {
                let n = reader.read(&mut buf).expect("peer read");
                assert!(n > 0, "the client closed early");
                assert!(buf[..n].iter().all(|&b| b == 0x5A), "outbound bytes are intact");
                got += n;
            }
            (got, flooder)
        })
    };
    let client = Client::connect(&url).unwrap();
    let consumer = {
        let client = client.clone();
        std::thread::spawn(move || {
            let mut received = 0u64;
            while let Ok(Some(chunk)) = client.recv_timeout(WAIT) {
                received += chunk.len() as u64;
            }
            received
        })
    };
    // Let the flood start before sending.
    assert!(support::wait_until(WAIT, || client.stats().bytes_received > 1 << 20));
    let before = pushed.load(Ordering::SeqCst);
    for _ in 0..OUTBOUND / (64 * 1024) {
        client.send(vec![0x5Au8; 64 * 1024]).unwrap();
    }
    client.flush_timeout(WAIT).unwrap();
    let (got, flooder) = join_within(peer, WAIT, "the peer's reader");
    let during = pushed.load(Ordering::SeqCst) - before;
    stop.store(true, Ordering::SeqCst);
    assert_eq!(got, OUTBOUND);
    assert!(
        during < FLOOD_LIMIT - before,
        "the flood reached its cap before the outgoing data completed: writing was starved"
    );
    eprintln!(
        "{OUTBOUND} outbound bytes completed while the peer pushed {during} inbound bytes \
         ({:.1} inbound bytes per outbound byte)",
        during as f64 / OUTBOUND as f64
    );
    join_within(flooder, WAIT, "the flooder");
    client.close().expect("close");
    let received = join_within(consumer, WAIT, "the consumer");
    assert!(received > 1 << 20);
}
