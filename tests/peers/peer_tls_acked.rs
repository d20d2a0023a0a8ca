//! What the peer's TCP acknowledged, over TLS, against a foreign server, `openssl s_server`,
//! which writes what it decrypts to its stdout: the server reads for a while, is frozen
//! (SIGSTOP) while the client keeps sending, so that its socket fills and then the client's,
//! and is killed (SIGKILL), which resets the link with bytes unread. TCP counts records, and
//! the TLS link maps the count back to the bytes written, so:
//!
//! - once the server has read everything, the link counts exactly the bytes written;
//! - every frame the server decrypted is among those the `Disconnected` event reports
//!   acknowledged;
//! - the frames written and not acknowledged come back whole in the event, each the frame that
//!   was sent under its number, and so does the frame the reset cut, if one was;
//! - with the frames never written, which the close report holds, every frame sent is
//!   accounted for exactly once.
//!
//! Skipped without `openssl` (Debian package `openssl`), except under `CI=true`.

use std::time::Duration;

use tidegate::transport::SocketOption;
use tidegate::{Client, Config, ConnectionEvent, Reconnect};

use crate::peer_tls::{certificates, trusting};
use crate::support::peers::{CertFiles, TlsServer, require_binary};
use crate::support::{Watchdog, frame, wait_until, whole_frames};

const LONG: Duration = Duration::from_secs(30);
const FRAME: usize = 1000;
/// The most frames the test sends: far more than the buffers between it and a frozen server
/// hold.
const MOST: u64 = 20_000;

#[test]
fn over_tls_the_frames_a_killed_server_decrypted_are_acknowledged_and_the_rest_come_back() {
    if !require_binary("openssl", "openssl") {
        return;
    }
    let _watchdog = Watchdog::new(Duration::from_secs(90), "tls_acknowledged");
    let (ca_pem, cert_pem, key_pem) = certificates();
    let certs = CertFiles::write(&cert_pem, &key_pem);
    let server = TlsServer::start(&certs);
    let tls = trusting(&ca_pem);
    // One attempt after the loss, to a port nobody listens on any more: then the end.
    let policy = Reconnect::new().initial_delay(Duration::from_millis(10)).max_attempts(1);
    let config = Config::new()
        .transport(tls)
        .capacity(256 * 1024)
        .socket_option(SocketOption::SendBufferSize(64 * 1024))
        .reconnect(policy)
        .close_timeout(Duration::from_millis(100));
    let client = Client::builder().config(config).connect(&server.url()).expect("connect");
    let events = client.events();
    // The server reads the first frames.
    for seq in 0..20 {
        client.send(frame(0, seq, FRAME)).unwrap();
    }
    let read = 20 * FRAME;
    assert!(wait_until(LONG, || server.received().len() >= read), "the server decrypts");
    // Once TCP has the server's acknowledgement of every record, the link counts exactly the
    // bytes written: not the records' headers and tags, nor the handshake.
    let acked = || client.call_link(|link| link.bytes_acked()).unwrap();
    assert!(wait_until(LONG, || acked() == Some(read as u64)), "acknowledged: {:?}", acked());
    server.peer().stop();
    // Then the buffers fill: the server's socket, the client's, the client's own buffer.
    let mut sent = 20;
    while sent < MOST {
        match client.send_timeout(frame(0, sent, FRAME), Duration::from_millis(200)) {
            Ok(()) => sent += 1,
            Err(err) => {
                assert!(err.is_timeout(), "{err:?}");
                break;
            }
        }
    }
    assert!(sent < MOST, "the frozen server pushed back");
    assert!(
        wait_until(LONG, || client.stats().awaiting_ack > 0),
        "written frames wait for their acknowledgement: {:?}",
        client.stats()
    );
    let decrypted = whole_frames(&server.received()).0;
    server.peer().kill();

    let (acknowledged, possibly) = loop {
        match events.recv_timeout(LONG).expect("an event").expect("not ended") {
            ConnectionEvent::Disconnected { acknowledged, possibly_delivered, .. } => {
                break (acknowledged, possibly_delivered);
            }
            ConnectionEvent::GaveUp { cause } => panic!("gave up first: {cause}"),
            _ => {}
        }
    };
    // One producer, one link: frame number n is frame n sent.
    assert!(decrypted.len() >= 20, "{} frames decrypted", decrypted.len());
    for (n, &(producer, seq)) in decrypted.iter().enumerate() {
        assert_eq!((producer, seq), (0, n as u64), "the server decrypted the frames in order");
    }
    assert_eq!(acknowledged.start, 0);
    assert!(
        decrypted.len() as u64 <= acknowledged.end,
        "{} frames decrypted, {acknowledged:?} acknowledged",
        decrypted.len()
    );
    let written = possibly.written();
    assert_eq!(written.start, acknowledged.end);
    assert!(!written.is_empty(), "the frozen server left written frames unacknowledged");
    let back: Vec<_> = written.clone().map(|seq| frame(0, seq, FRAME)).collect();
    assert!(possibly.written_frames() == back, "each written frame comes back whole");
    // The frame the reset cut in the middle, if any, comes back whole too (frames are not
    // declared atomic here): the one after them.
    let cut = possibly.cut_frames();
    assert!(cut.len() <= 1, "{} frames cut", cut.len());
    assert!(cut.iter().all(|f| *f == frame(0, written.end, FRAME)), "the next frame was cut");

    // The attempt fails, the connection ends, and the report holds the frames never written.
    let report = client.close_timeout(LONG).expect("close");
    let unsent: Vec<u64> = report
        .unsent()
        .iter()
        .map(|u| u64::from_be_bytes(u.frame()[4..12].try_into().unwrap()))
        .collect();
    let expected: Vec<u64> = (written.end + cut.len() as u64..sent).collect();
    assert_eq!(unsent, expected, "every frame not written is in the report, in order");
}
