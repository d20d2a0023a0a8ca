//! `discard_inbound`: a producer that never receives can tell the driver to drop what the peer
//! sends, so the peer is never pushed back; what was dropped is counted, receives see only the
//! end of the stream, and a decoder cannot be combined with it.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use tidegate::codec::LengthDelimited;
use tidegate::{Client, Config, ConnectError, Connection};

use crate::support::{join_within, wait_until};

const WAIT: Duration = Duration::from_secs(30);
/// Far more than the inbound buffer and the kernel's socket buffers together.
const FLOOD: usize = 64 << 20;

#[test]
fn a_discarding_client_never_pushes_back_and_still_sends() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("tcp://{}", listener.local_addr().unwrap());
    let peer = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut writer = stream.try_clone().unwrap();
        // Blocking writes: with push-back they would stall and time out.
        writer.set_write_timeout(Some(WAIT)).unwrap();
        let flood = std::thread::spawn(move || {
            let chunk = vec![0x42u8; 64 * 1024];
            for _ in 0..FLOOD / chunk.len() {
                writer.write_all(&chunk).expect("the client kept reading");
            }
            writer.shutdown(std::net::Shutdown::Write).unwrap();
        });
        let mut reader = stream;
        reader.set_read_timeout(Some(WAIT)).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while got.len() < 5 {
            let n = reader.read(&mut buf).expect("peer read");
            assert!(n > 0, "the client closed early");
            got.extend_from_slice(&buf[..n]);
        }
        join_within(flood, WAIT, "the flood");
        got
    });
    let client =
        Client::builder().inbound_capacity(16 * 1024).discard_inbound(true).connect(&url).unwrap();
    client.send("hello").unwrap();
    let got = join_within(peer, WAIT, "the peer");
    assert_eq!(got, b"hello");
    assert!(
        wait_until(WAIT, || client.stats().bytes_received == FLOOD as u64),
        "received {} of {FLOOD} bytes",
        client.stats().bytes_received
    );
    let stats = client.stats();
    assert_eq!(stats.inbound_held, 0, "nothing is kept");
    assert_eq!(stats.bytes_delivered, 0);
    assert!(stats.inbound_high_water <= 16 * 1024);
    // The peer closed its side after the flood: a receive sees only that end.
    assert_eq!(client.recv_timeout(WAIT).unwrap(), None);
    client.close().expect("close");
}

#[test]
fn discarding_and_decoding_exclude_each_other() {
    let config = Config::new().discard_inbound(true).framing(LengthDelimited::new());
    match Connection::open("mem://discard-and-decode", config) {
        Err(ConnectError::InvalidConfig { reason: why, .. }) => {
            assert!(why.contains("decode"), "{why}")
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}
