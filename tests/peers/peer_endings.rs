//! How connections end against peers that talk back (invariant 10: endings lose nothing; a
//! reset is reported as a reset).
//!
//! - A peer that keeps writing while the client closes (`socat` answering `ack` lines as fast
//!   as it can): the close must not drop the socket while bytes are arriving, since the
//!   kernel would answer them with a reset that throws away what the peer had not read yet.
//!   The peer must have received every byte the client sent, exactly.
//! - A peer that resets with data unread (a plain `std::net` peer that reads part, then
//!   closes with `SO_LINGER` 0): the receiver gets what the peer sent before, then a
//!   `Disconnected` error of kind `Reset` — never `Ok(None)`, which would mean an orderly end —
//!   and the senders fail with the same cause.
//!
//! The half-closing peer, which needs `Client::shutdown_write` and `CloseReport::ending`, is
//! in `peer_halfclose.rs`. The socat test is skipped without `socat` (Debian package
//! `socat`), except under `CI=true`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use tidegate::{Bytes, Client, Config, DisconnectKind, RecvError, SendError};

use crate::support::peers::{Socat, require_binary};
use crate::support::{Lcg, Verifier, Watchdog, frame, join_within};

const LONG: Duration = Duration::from_secs(20);
const WATCHDOG: Duration = Duration::from_secs(90);
const CAPACITY: usize = 64 * 1024;

fn config() -> Config {
    Config::new().capacity(CAPACITY).send_timeout(LONG).close_timeout(LONG)
}

/// Sends `count` test frames of 64 bytes to 16 KiB from producer 0; returns the bytes sent.
fn send_frames(client: &Client, count: u64) -> u64 {
    let mut rng = Lcg::new(3);
    let mut bytes = 0;
    for seq in 0..count {
        let len = rng.range(64, 16 * 1024);
        client.send(frame(0, seq, len)).expect("send");
        bytes += len as u64;
    }
    bytes
}

/// Receives until the stream ends, counting the bytes; returns them and how it ended.
fn receive_all(client: Client) -> thread::JoinHandle<(u64, Result<(), RecvError>)> {
    thread::spawn(move || {
        let mut bytes = 0;
        loop {
            match client.recv_timeout(LONG) {
                Ok(Some(chunk)) => bytes += chunk.len() as u64,
                Ok(None) => return (bytes, Ok(())),
                Err(e) => return (bytes, Err(e)),
            }
        }
    })
}

#[test]
fn a_peer_that_writes_while_we_close_receives_every_byte() {
    if !require_binary("socat", "socat") {
        return;
    }
    let _watchdog = Watchdog::new(WATCHDOG, "the talking-back peer test");
    close_while_the_peer_talks_back(false);
}

#[test]
fn a_peer_that_writes_while_a_discarding_client_closes_receives_every_byte() {
    if !require_binary("socat", "socat") {
        return;
    }
    let _watchdog = Watchdog::new(WATCHDOG, "the talking-back peer test, discarding");
    close_while_the_peer_talks_back(true);
}

/// Sends frames to a peer that answers all the time, closes, and checks that the peer got
/// every byte. The client reads the answers on a thread of its own, or has its driver
/// discard them.
fn close_while_the_peer_talks_back(discard: bool) {
    // socat writes 32 MiB back, more than the client's send takes, so it goes on writing
    // while the client closes; then it ends its side and waits for the client's end.
    let peer = Socat::talking_back(32 << 20, LONG);
    let client = Client::builder()
        .config(config().discard_inbound(discard))
        .connect(&peer.url())
        .expect("connect");
    let acks = (!discard).then(|| receive_all(client.clone()));
    const FRAMES: u64 = 1_000;
    let sent = send_frames(&client, FRAMES);
    let report = client.close().expect("close");
    let received = peer.finish(LONG);

    let mut verifier = Verifier::new();
    let verified = verifier.feed(&received);
    assert_eq!(
        received.len() as u64,
        sent,
        "the peer received {} of the {sent} bytes sent; the report says {report:?}",
        received.len()
    );
    assert_eq!(verified, Ok(()), "what the peer received is the frames sent, whole, in order");
    assert_eq!(verifier.frames, FRAMES);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.bytes_written(), sent);
    assert!(client.stats().bytes_received > 0, "the peer talked back");
    if let Some(acks) = acks {
        let (_, acks_ended) = join_within(acks, LONG, "the ack reader");
        assert!(acks_ended.is_ok(), "the peer's end is an orderly one: {acks_ended:?}");
    }
}

#[test]
fn a_peer_that_resets_with_unread_data_is_reported_as_a_reset_to_receivers_and_senders() {
    let _watchdog = Watchdog::new(WATCHDOG, "the resetting peer test");
    // Whether the driver first meets the reset in a write or in a read is a race; every
    // round must come out the same.
    for round in 0..ROUNDS {
        a_reset_with_unread_data_is_a_reset_everywhere(round);
    }
}

/// Rounds of the reset test.
const ROUNDS: usize = 10;

fn a_reset_with_unread_data_is_a_reset_everywhere(round: usize) {
    const GREETING: &[u8] = b"hello from a peer that will not read everything\n";
    /// The peer reads this much, then resets.
    const READS: usize = 256 * 1024;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("tcp://{}", listener.local_addr().unwrap());
    let peer = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream.set_read_timeout(Some(LONG)).unwrap();
        stream.write_all(GREETING).expect("greet");
        let mut buf = vec![0u8; READS];
        stream.read_exact(&mut buf).expect("read part of what the client sends");
        // The rest stays unread: SO_LINGER 0 makes the close a reset.
        socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO)).expect("SO_LINGER");
        drop(stream);
    });
    let client = Client::builder().config(config()).connect(&url).expect("connect");
    let sender = {
        let client = client.clone();
        thread::spawn(move || {
            for seq in 0.. {
                if let Err(err) = client.send(frame(0, seq, 1024)) {
                    return err;
                }
            }
            unreachable!()
        })
    };

    let mut greeting = Vec::new();
    let ended = loop {
        match client.recv_timeout(LONG) {
            Ok(Some(chunk)) => greeting.extend_from_slice(&chunk),
            other => break other,
        }
    };
    join_within(peer, LONG, "the peer");
    let send_error = join_within(sender, LONG, "the sender");

    assert_eq!(
        greeting, GREETING,
        "round {round}: what the peer sent before its reset comes first"
    );
    match ended {
        Err(RecvError::Disconnected(cause)) => {
            assert_eq!(cause.kind(), DisconnectKind::Reset, "round {round}: {cause:?}")
        }
        other => {
            panic!("round {round}: after the peer's reset, recv returned {other:?}, not a reset")
        }
    }
    match &send_error {
        SendError::Disconnected { cause, .. } => {
            assert_eq!(cause.kind(), DisconnectKind::Reset, "round {round}: {cause:?}")
        }
        other => panic!("round {round}: the sender ended with {other:?}, not a reset"),
    }
    let late = Bytes::from_static(b"after the reset");
    match client.send(late.clone()) {
        Err(SendError::Disconnected { frame, cause }) => {
            assert_eq!(frame, late, "the error carries the frame");
            assert_eq!(cause.kind(), DisconnectKind::Reset, "round {round}: {cause:?}");
        }
        other => panic!("round {round}: a send after the reset returned {other:?}"),
    }
    let report = client.close().expect("close");
    assert_eq!(report.cause().map(|c| c.kind()), Some(DisconnectKind::Reset), "{report:?}");
}

#[test]
fn a_reset_while_the_inbound_buffer_is_full_still_ends_the_receive_side_with_the_reset() {
    let _watchdog = Watchdog::new(WATCHDOG, "the reset-with-full-inbound test");
    /// More than the client's inbound buffer holds, so its driver stops reading.
    const GREETING: usize = 256 * 1024;
    const INBOUND: usize = 16 * 1024;
    const READS: usize = 64 * 1024;
    let greeting: Vec<u8> = (0..GREETING).map(|i| (i % 251) as u8).collect();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("tcp://{}", listener.local_addr().unwrap());
    let peer = {
        let greeting = greeting.clone();
        thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            stream.set_read_timeout(Some(LONG)).unwrap();
            stream.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
            // As much of the greeting as the client's buffers take.
            let mut at = 0;
            while at < greeting.len() {
                match stream.write(&greeting[at..]) {
                    Ok(n) => at += n,
                    Err(_) => break,
                }
            }
            let mut buf = vec![0u8; READS];
            stream.read_exact(&mut buf).expect("read part of what the client sends");
            socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO)).expect("SO_LINGER");
            drop(stream);
            at
        })
    };
    let client = Client::builder()
        .config(config().inbound_capacity(INBOUND))
        .connect(&url)
        .expect("connect");
    // The client sends until the reset stops it, and only then receives.
    let send_error = loop {
        if let Err(err) = client.send(frame(0, 0, 1024)) {
            break err;
        }
    };
    let written = join_within(peer, LONG, "the peer");
    match &send_error {
        SendError::Disconnected { cause, .. } => {
            assert_eq!(cause.kind(), DisconnectKind::Reset, "{cause:?}")
        }
        other => panic!("the sender ended with {other:?}, not a reset"),
    }
    let mut received = Vec::new();
    let ended = loop {
        match client.recv_timeout(LONG) {
            Ok(Some(chunk)) => received.extend_from_slice(&chunk),
            other => break other,
        }
    };
    assert!(received.len() >= INBOUND.min(written), "{} bytes received", received.len());
    assert_eq!(received[..], greeting[..received.len()], "a prefix of what the peer sent");
    match ended {
        Err(RecvError::Disconnected(cause)) => {
            assert_eq!(cause.kind(), DisconnectKind::Reset, "{cause:?}")
        }
        other => panic!(
            "after the peer's reset and {} bytes, recv returned {other:?}, not a reset error",
            received.len()
        ),
    }
}
