//! The connection as a byte stream, against `socat`: `tokio::io::copy` pours 64 MiB into an
//! `AsyncByteStream` and socat's output holds exactly those bytes, in order; the answer socat
//! sends comes back through the stream's `AsyncRead`; and `std::io::copy` reads a blocking
//! client's whole inbound stream. Skipped without `socat`, except under `CI=true`.

use std::time::Duration;

use tidegate::{AsyncClient, Client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::peers::{Socat, require_binary};
use crate::support::{Lcg, Watchdog};

const LONG: Duration = Duration::from_secs(30);
const WATCHDOG: Duration = Duration::from_secs(120);

/// `len` bytes that no simple pattern repeats, so a reordered or dropped piece shows.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut lcg = Lcg::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&lcg.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn tokio_copy_pours_64_mib_into_the_connection_byte_for_byte() {
    if !require_binary("socat", "socat") {
        return;
    }
    let _watchdog = Watchdog::new(WATCHDOG, "tokio::io::copy into the byte stream");
    let data = noise(64 << 20, 16);
    // socat answers, ends its side, and writes everything it receives to its stdout.
    let peer = Socat::start("printf 'received'", LONG);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let answer = runtime.block_on(async {
        // A small buffer, so that the copy waits for room again and again.
        let connecting = AsyncClient::builder().capacity(256 * 1024).connect(&peer.url());
        let client = connecting.await.unwrap();
        let mut stream = client.byte_stream();
        let copied = tokio::io::copy(&mut &data[..], &mut stream).await.unwrap();
        assert_eq!(copied, data.len() as u64);
        stream.shutdown().await.unwrap(); // the half-close: socat sees the end
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let report = client.close().await.unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.bytes_written(), data.len() as u64);
        answer
    });
    assert_eq!(answer, b"received");
    let received = peer.finish(LONG);
    assert_eq!(received.len(), data.len(), "the peer received {} bytes", received.len());
    assert!(received == data, "the peer received other bytes than those copied");
}

#[test]
fn std_copy_reads_a_blocking_clients_whole_inbound_stream() {
    if !require_binary("socat", "socat") {
        return;
    }
    let _watchdog = Watchdog::new(WATCHDOG, "std::io::copy out of the client");
    const BYTES: u64 = 8 << 20;
    let peer = Socat::talking_back(BYTES, LONG);
    let mut client = Client::builder().inbound_capacity(64 * 1024).connect(&peer.url()).unwrap();
    let mut got = Vec::new();
    let copied = std::io::copy(&mut client, &mut got).unwrap();
    assert_eq!(copied, BYTES);
    assert!(got.chunks(4).all(|line| line == b"ack\n"), "the stream is not socat's lines");
    client.send("bye\n").unwrap();
    assert!(client.close().unwrap().is_clean());
    assert_eq!(peer.finish(LONG), b"bye\n");
}
