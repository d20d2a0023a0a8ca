//! Framed receiving: with `Config::framing`, receives return whole decoded frames. Frames go
//! through a real loopback TCP echo peer (which echoes in odd-sized pieces) in both facades,
//! while the application keeps every frame it received (so the buffer cannot reuse its
//! memory in place and must move to fresh allocations); a frame announcing more than the
//! maximum is a typed error, after the frames before it; a stream that ends inside a frame is
//! a typed "truncated" error; and a configuration whose largest frame could never fit in the
//! inbound buffer is refused.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;
use std::time::Duration;

use futures::StreamExt;
use tidegate::transport::mem::MemListener;
use tidegate::{AsyncClient, Bytes, Client, Config, ConnectError, Connection, RecvError};
use tidegate_core::codec::{DecodeError, LengthDelimited};

use crate::support::{self, join_within, unique_name};

const WAIT: Duration = Duration::from_secs(20);

/// Starts a TCP peer that echoes everything back, in pieces of 7 bytes, until the client
/// closes.
fn echo_peer() -> (String, JoinHandle<u64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("tcp://{}", listener.local_addr().unwrap());
    let peer = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = vec![0u8; 16 * 1024];
        let mut echoed = 0u64;
        loop {
            let n = stream.read(&mut buf).expect("echo read");
            if n == 0 {
                return echoed;
            }
            for piece in buf[..n].chunks(7) {
                stream.write_all(piece).expect("echo write");
            }
            echoed += n as u64;
        }
    });
    (url, peer)
}

fn frames() -> Vec<Bytes> {
    let mut rng = support::Lcg::new(7);
    (0..300u32)
        .map(|i| {
            let len = rng.range(1, 3000);
            Bytes::from((0..len).map(|j| (i as usize * 31 + j) as u8).collect::<Vec<u8>>())
        })
        .collect()
}

fn framed_config() -> Config {
    // The largest frame (3000 bytes and a 4-byte header) takes most of the buffer.
    Config::new().framing(LengthDelimited::new().max_frame_len(3000)).inbound_capacity(4096)
}

#[test]
fn frames_go_through_a_real_connection_in_the_blocking_facade() {
    let (url, peer) = echo_peer();
    let client = Client::builder().config(framed_config()).connect(&url).unwrap();
    let sent = frames();
    let sender = {
        let client = client.clone();
        let sent = sent.clone();
        std::thread::spawn(move || {
            for frame in sent {
                client.send(frame).unwrap();
            }
        })
    };
    let mut received = Vec::new();
    while received.len() < sent.len() {
        received.push(client.recv_timeout(WAIT).unwrap().expect("a frame, not the end"));
    }
    join_within(sender, WAIT, "the sender");
    assert_eq!(received, sent);
    assert!(client.close().expect("close").is_clean());
    assert_eq!(client.recv().unwrap(), None);
    join_within(peer, WAIT, "the echo peer");
    assert!(client.stats().inbound_high_water <= 4096);
}

#[test]
fn frames_go_through_a_real_connection_in_the_async_facade() {
    let (url, peer) = echo_peer();
    let sent = frames();
    // The stream has no deadline of its own: fail instead of hanging.
    let watchdog = support::Watchdog::new(Duration::from_secs(60), "the async framing test");
    let received = futures::executor::block_on(async {
        let client = AsyncClient::builder().config(framed_config()).connect(&url).await.unwrap();
        let mut incoming = client.incoming();
        let mut received = Vec::new();
        for frame in &sent {
            client.send(frame.clone()).await.unwrap();
            // Take whatever is already back, without waiting for it.
            while let Ok(Some(frame)) = client.try_recv() {
                received.push(frame);
            }
        }
        while received.len() < sent.len() {
            received.push(incoming.next().await.expect("not the end").unwrap());
        }
        assert!(client.close().await.unwrap().is_clean());
        assert!(incoming.next().await.is_none(), "the stream ends after the close");
        received
    });
    drop(watchdog);
    assert_eq!(received, sent);
    join_within(peer, WAIT, "the echo peer");
}

fn mem_client(
    prefix: &str,
    config: Config,
) -> (MemListener, Client, tidegate::transport::mem::MemPeer) {
    let listener = MemListener::bind(&unique_name(prefix)).unwrap();
    let client = Client::builder().config(config).connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(WAIT).unwrap();
    (listener, client, peer)
}

#[test]
fn a_frame_larger_than_the_maximum_is_a_typed_error_after_the_frames_before_it() {
    let config = Config::new().framing(LengthDelimited::new().width(2).max_frame_len(100));
    let (_listener, client, peer) = mem_client("recv-framing-oversize", config);
    peer.write(b"\x00\x02ok");
    peer.write(b"\x13\x88"); // 5000 bytes announced; the body never needs to arrive
    assert_eq!(client.recv_timeout(WAIT).unwrap().unwrap(), "ok");
    for _ in 0..2 {
        match client.recv_timeout(WAIT) {
            Err(RecvError::Decode(err)) => {
                assert!(matches!(*err, DecodeError::TooLarge { len: 5000, max: 100 }), "{err}")
            }
            other => panic!("expected the typed error, every time: {other:?}"),
        }
    }
    assert!(matches!(client.try_recv(), Err(tidegate::TryRecvError::Decode(_))));
}

#[test]
fn a_stream_that_ends_inside_a_frame_is_a_typed_truncated_error() {
    let config = Config::new().framing(LengthDelimited::new().width(1));
    let (_listener, client, peer) = mem_client("recv-framing-truncated", config);
    peer.write(b"\x03abc\x05de");
    peer.close();
    assert_eq!(client.recv_timeout(WAIT).unwrap().unwrap(), "abc");
    match client.recv_timeout(WAIT) {
        Err(RecvError::Decode(err)) => assert!(
            matches!(*err, DecodeError::Truncated { missing: Some(3), buffered: 3 }),
            "{err}"
        ),
        other => panic!("expected a truncated frame: {other:?}"),
    }
}

#[test]
fn frames_before_a_reset_are_delivered_then_the_reset() {
    let config = Config::new().framing(LengthDelimited::new().width(1));
    let (_listener, client, peer) = mem_client("recv-framing-reset", config);
    peer.write(b"\x01a\x01b\x04cu");
    peer.reset();
    assert_eq!(client.recv_timeout(WAIT).unwrap().unwrap(), "a");
    assert_eq!(client.recv_timeout(WAIT).unwrap().unwrap(), "b");
    assert!(client.recv_timeout(WAIT).unwrap_err().is_disconnected());
}

#[test]
fn a_maximum_frame_that_could_never_fit_the_inbound_buffer_is_refused() {
    let config =
        Config::new().framing(LengthDelimited::new().max_frame_len(1000)).inbound_capacity(1003);
    let err = Connection::open("mem://never-bound", config).unwrap_err();
    assert!(matches!(err, ConnectError::InvalidConfig { .. }), "{err:?}");
    // With a 4-byte header, 1000 bytes need 1004.
    let listener = MemListener::bind(&unique_name("recv-framing-fits")).unwrap();
    let config =
        Config::new().framing(LengthDelimited::new().max_frame_len(1000)).inbound_capacity(1004);
    Connection::open(&listener.url(), config).unwrap();
}
