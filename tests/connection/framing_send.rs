//! The send side of framing: with `Config::framing`, every frame goes on the wire as the
//! encoder's header then the payload, whole and in order, over `mem://` and TCP, for small
//! (copied) and large (zero-copy) payloads mixed with urgent frames spliced in at frame
//! boundaries. Headers count in the capacity and the size check; every frame handed back (a
//! `TooLarge`, a timeout, a cancel, the close report of a stalled peer) is the caller's
//! payload without its header. Every test runs under a watchdog, since `block_on` cannot be
//! given a deadline.

use std::io::Read;
use std::net::TcpListener;
use std::task::Waker;
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tidegate::transport::mem::{MemListener, MemPeer};
use tidegate::{AsyncClient, Bytes, Client, Config, Connection, SendError, TrySendError};
use tidegate_core::codec::{Decoder, Encoder, LengthDelimited};

use crate::support::{Watchdog, join_within, unique_name};

const LONG: Duration = Duration::from_secs(10);
/// The most any test of this file may take before the watchdog aborts the process.
const WATCHDOG: Duration = Duration::from_secs(60);
const DATA: u8 = 0xD0;
const URGENT: u8 = 0x0E;

/// A payload naming its lane and sequence number, then a pattern: a misplaced or missing byte
/// changes it.
fn payload(lane: u8, seq: u32, len: usize) -> Bytes {
    assert!(len >= 5);
    let mut bytes = Vec::with_capacity(len);
    bytes.push(lane);
    bytes.extend_from_slice(&seq.to_be_bytes());
    bytes.extend((5..len).map(|i| (seq as usize * 13 + i) as u8));
    bytes.into()
}

/// The sizes of the mixed workload: mostly small payloads, every seventh one larger than the
/// copy threshold, so it is queued without a copy behind a header of its own.
fn size(seq: u32) -> usize {
    if seq.is_multiple_of(7) {
        2049 + (seq as usize * 997) % 9000
    } else {
        5 + (seq as usize * 31) % 300
    }
}

/// Sends `count` data frames with an urgent frame after every tenth, through `send`,
/// `try_send` (falling back to `send` when full) and `send_urgent`. Returns the payloads of
/// each lane in the order they were sent.
fn send_mixed(client: &Client, count: u32) -> (Vec<Bytes>, Vec<Bytes>) {
    let (mut data, mut urgent) = (Vec::new(), Vec::new());
    for seq in 0..count {
        let frame = payload(DATA, seq, size(seq));
        data.push(frame.clone());
        if seq.is_multiple_of(3) {
            match client.try_send(frame) {
                Ok(()) => {}
                Err(TrySendError::Full(frame)) => client.send(frame).unwrap(),
                Err(other) => panic!("try_send: {other}"),
            }
        } else {
            client.send(frame).unwrap();
        }
        if seq % 10 == 9 {
            let frame = payload(URGENT, seq, 5 + seq as usize % 40);
            urgent.push(frame.clone());
            client.send_urgent(frame).unwrap();
        }
    }
    (data, urgent)
}

/// Decodes a whole stream: every byte must belong to a whole frame.
fn decode_stream(codec: LengthDelimited, wire: &[u8]) -> Vec<Bytes> {
    let mut decoder = codec;
    let mut src = BytesMut::from(wire);
    let mut frames = Vec::new();
    while let Some(frame) = decoder.decode_eof(&mut src).expect("the stream holds whole frames") {
        frames.push(frame);
    }
    frames
}

/// Splits decoded frames by lane, keeping their order.
fn lanes(frames: Vec<Bytes>) -> (Vec<Bytes>, Vec<Bytes>) {
    let (data, urgent): (Vec<Bytes>, Vec<Bytes>) =
        frames.into_iter().partition(|f| f.first() == Some(&DATA));
    assert!(urgent.iter().all(|f| f.first() == Some(&URGENT)), "a frame of no lane");
    (data, urgent)
}

/// Reads from the peer until the client closes.
fn read_to_close(peer: MemPeer) -> Vec<u8> {
    let mut wire = Vec::new();
    let mut buf = vec![0u8; 8192];
    let deadline = Instant::now() + LONG;
    loop {
        assert!(Instant::now() < deadline, "the client did not close in time");
        match peer.read_timeout(&mut buf, LONG) {
            Ok(0) => return wire,
            Ok(n) => wire.extend_from_slice(&buf[..n]),
            Err(e) => panic!("reading the peer: {e}"),
        }
    }
}

fn assert_delivered(codec: LengthDelimited, wire: &[u8], sent: (Vec<Bytes>, Vec<Bytes>)) {
    let (data, urgent) = lanes(decode_stream(codec, wire));
    assert_eq!(data.len(), sent.0.len(), "data frames");
    assert!(data == sent.0, "data frames arrived whole and in order");
    assert_eq!(urgent.len(), sent.1.len(), "urgent frames");
    assert!(urgent == sent.1, "urgent frames arrived whole and in order");
    let payload_bytes: usize = sent.0.iter().chain(&sent.1).map(Bytes::len).sum();
    let frames = sent.0.len() + sent.1.len();
    assert_eq!(wire.len(), payload_bytes + frames * codec.header_len(), "no stray bytes");
}

#[test]
fn mixed_framed_frames_arrive_whole_and_in_order_over_mem() {
    let _watchdog = Watchdog::new(WATCHDOG, "framed sends over mem");
    let codec = LengthDelimited::new();
    let listener = MemListener::bind(&unique_name("framing-mem")).unwrap();
    let client = Client::builder()
        .capacity(32 * 1024)
        .urgent_reserve(1024)
        .framing(codec)
        .connect(&listener.url())
        .unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    // Odd, small pipe: writes stop mid-frame all the time, so urgent frames wait for the end
    // of the frame in progress.
    peer.set_write_capacity(997);
    let reader = thread::spawn(move || read_to_close(peer));
    let sent = send_mixed(&client, 600);
    let report = client.close_timeout(LONG).expect("close");
    assert!(report.unsent().is_empty() && report.is_clean(), "{report:?}");
    let wire = join_within(reader, LONG, "the reader");
    let stats = client.stats();
    assert_eq!(stats.bytes_written, wire.len() as u64, "stats count the headers");
    assert_eq!(stats.frames_written, (sent.0.len() + sent.1.len()) as u64);
    assert_delivered(codec, &wire, sent);
}

#[test]
fn mixed_framed_frames_arrive_whole_and_in_order_over_tcp() {
    let _watchdog = Watchdog::new(WATCHDOG, "framed sends over tcp");
    // Another header: two bytes, little-endian, counting itself.
    let codec = LengthDelimited::new().width(2).little_endian().length_includes_header(true);
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("tcp://{}", server.local_addr().unwrap());
    let reader = thread::spawn(move || {
        let (mut stream, _) = server.accept().unwrap();
        stream.set_read_timeout(Some(LONG)).unwrap();
        let mut wire = Vec::new();
        stream.read_to_end(&mut wire).unwrap();
        wire
    });
    let client = Client::builder()
        .capacity(16 * 1024)
        .urgent_reserve(512)
        .framing(codec)
        .connect(&url)
        .unwrap();
    let sent = send_mixed(&client, 600);
    let report = client.close_timeout(LONG).expect("close");
    assert!(report.unsent().is_empty() && report.is_clean(), "{report:?}");
    let wire = join_within(reader, LONG, "the TCP reader");
    assert_delivered(codec, &wire, sent);
}

fn open_framed(name: &str, config: Config) -> (Connection, MemListener, MemPeer) {
    let listener = MemListener::bind(&unique_name(name)).unwrap();
    let conn = Connection::open(&listener.url(), config).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    futures::executor::block_on(conn.connected()).unwrap();
    (conn, listener, peer)
}

#[test]
fn the_close_report_of_a_stalled_peer_returns_payloads_without_headers() {
    let _watchdog = Watchdog::new(WATCHDOG, "close report of a stalled framed peer");
    // The peer takes `taken` bytes, then stops reading: inside the first header, right after
    // it, and inside the first payload.
    for taken in [2, 4, 7] {
        let config = Config::new().capacity(64 * 1024).framing(LengthDelimited::new());
        let (conn, _listener, peer) = open_framed("framing-close", config);
        peer.set_write_capacity(taken);
        let first = payload(DATA, 1, 10);
        let large = payload(DATA, 2, 5000);
        let small = payload(DATA, 3, 6);
        let urgent = payload(URGENT, 4, 5);
        conn.try_send(first.clone()).unwrap();
        assert!(peer.wait_unread(taken, LONG), "the peer got {} bytes", peer.unread());
        conn.try_send(large.clone()).unwrap();
        conn.try_send_urgent(urgent.clone()).unwrap();
        conn.try_send(small.clone()).unwrap();
        let report = futures::executor::block_on(conn.close(Duration::ZERO));
        let unsent: Vec<(&Bytes, usize)> =
            report.unsent().iter().map(|u| (u.frame(), u.written())).collect();
        // The urgent frame waited for the end of the first frame, which never came: it was
        // never spliced in and is reported last.
        assert_eq!(
            unsent,
            [(&first, taken), (&large, 0), (&small, 0), (&urgent, 0)],
            "after {taken} bytes"
        );
        assert_eq!(report.bytes_written(), taken as u64, "wire bytes, header included");
        assert_eq!(report.frames_written(), 0);
    }
}

#[test]
fn frames_handed_back_while_waiting_have_no_header() {
    let _watchdog = Watchdog::new(WATCHDOG, "framed frames handed back");
    let config = Config::new().capacity(64).framing(LengthDelimited::new());
    let (conn, _listener, peer) = open_framed("framing-wait", config);
    peer.pause();
    // 4 + 50 bytes held: a 10-byte payload needs 14 and does not fit.
    conn.try_send(Bytes::from(vec![1; 50])).unwrap();
    assert_eq!(conn.stats().buffered, 54, "the header counts in the capacity");
    let ten = Bytes::from(vec![2; 10]);
    match conn.try_send(ten.clone()) {
        Err(TrySendError::Full(back)) => assert_eq!(back, ten),
        other => panic!("expected Full: {other:?}"),
    }
    let deadline = Instant::now() + Duration::from_millis(30);
    match futures::executor::block_on(conn.send(ten.clone(), Some(deadline))) {
        Err(SendError::Timeout(back)) => assert_eq!(back, ten),
        other => panic!("expected Timeout: {other:?}"),
    }
    let mut op = conn.send(ten.clone(), None);
    assert!(op.poll_with(Waker::noop()).is_pending());
    assert!(op.is_queued());
    assert_eq!(op.cancel(), Some(ten.clone()));
    // A 6-byte payload fits exactly (4 + 6 = 10 left); closing hands both back bare.
    let six = Bytes::from(vec![3; 6]);
    conn.try_send(six.clone()).unwrap();
    assert_eq!(conn.stats().buffered, 64);
    let report = futures::executor::block_on(conn.close(Duration::ZERO));
    let unsent: Vec<&Bytes> = report.unsent().iter().map(|u| u.frame()).collect();
    assert_eq!(unsent, [&Bytes::from(vec![1; 50]), &six]);
}

#[test]
fn too_large_counts_the_header_and_returns_the_payload() {
    let _watchdog = Watchdog::new(WATCHDOG, "framed too large");
    let config = Config::new()
        .capacity(64)
        .urgent_reserve(8)
        .framing(LengthDelimited::new().max_frame_len(40));
    let (conn, _listener, peer) = open_framed("framing-too-large", config);
    peer.pause();
    // Over the encoder's maximum: refused whatever the room, `capacity` is that maximum.
    let over = Bytes::from(vec![7; 41]);
    match futures::executor::block_on(conn.send(over.clone(), None)) {
        Err(SendError::TooLarge { frame, max_len: capacity, .. }) => {
            assert_eq!((frame, capacity), (over, 40))
        }
        other => panic!("expected TooLarge: {other:?}"),
    }

    // Over the buffer with its header: `capacity` is the largest payload that fits.
    let config = Config::new().capacity(64).urgent_reserve(8).framing(LengthDelimited::new());
    let (conn, _listener, peer) = open_framed("framing-too-large-2", config);
    peer.pause();
    let data_over = Bytes::from(vec![8; 53]);
    match conn.try_send(data_over.clone()) {
        Err(TrySendError::TooLarge { frame, max_len: capacity, .. }) => {
            assert_eq!((frame, capacity), (data_over, 52));
        }
        other => panic!("expected TooLarge: {other:?}"),
    }
    let urgent_over = Bytes::from(vec![9; 61]);
    match futures::executor::block_on(conn.send_urgent(urgent_over.clone(), None)) {
        Err(SendError::TooLarge { frame, max_len: capacity, .. }) => {
            assert_eq!((frame, capacity), (urgent_over, 60));
        }
        other => panic!("expected TooLarge: {other:?}"),
    }
    conn.try_send(Bytes::from(vec![8; 52])).unwrap();
    assert_eq!(conn.stats().buffered, 56);
    conn.try_send_urgent(Bytes::from(vec![9; 4])).unwrap();
    assert_eq!(conn.stats().buffered, 64);
}

#[test]
fn an_empty_payload_is_a_header_only_frame() {
    let _watchdog = Watchdog::new(WATCHDOG, "framed empty payload");
    let config = Config::new().framing(LengthDelimited::new().width(2));
    let (conn, _listener, peer) = open_framed("framing-empty", config);
    conn.try_send(Bytes::new()).unwrap();
    conn.try_send(Bytes::from_static(b"x")).unwrap();
    futures::executor::block_on(conn.flush(Some(Instant::now() + LONG))).unwrap();
    let mut wire = Vec::new();
    let mut buf = [0u8; 16];
    while wire.len() < 5 {
        let n = peer.read_timeout(&mut buf, LONG).unwrap();
        assert!(n > 0, "the client closed early");
        wire.extend_from_slice(&buf[..n]);
    }
    assert_eq!(wire, [0, 0, 0, 1, b'x']);
    assert_eq!(conn.stats().frames_written, 2);
}

#[test]
fn the_async_builder_frames_what_it_sends() {
    let _watchdog = Watchdog::new(WATCHDOG, "framed async builder");
    let listener = MemListener::bind(&unique_name("framing-async")).unwrap();
    let url = listener.url();
    let accept = thread::spawn(move || listener.accept_timeout(LONG).unwrap());
    futures::executor::block_on(async {
        let client = AsyncClient::builder()
            .framing(LengthDelimited::new().width(1))
            .connect(&url)
            .await
            .unwrap();
        let peer = join_within(accept, LONG, "accept");
        client.send(Bytes::from_static(b"abc")).await.unwrap();
        client.send(Bytes::from_static(b"de")).await.unwrap();
        let report = client.close().await.unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(read_to_close(peer), b"\x03abc\x02de");
    });
}

#[test]
fn io_write_cuts_frames_that_fit_with_their_headers() {
    let _watchdog = Watchdog::new(WATCHDOG, "framed io::Write");
    use std::io::Write;
    let codec = LengthDelimited::new().width(2);
    let listener = MemListener::bind(&unique_name("framing-io-write")).unwrap();
    let mut client = Client::builder()
        .capacity(100)
        .urgent_reserve(10)
        .framing(codec)
        .connect(&listener.url())
        .unwrap();
    assert_eq!(client.connection().max_frame_len(), 100 - 10 - 2);
    let peer = listener.accept_timeout(LONG).unwrap();
    let reader = thread::spawn(move || read_to_close(peer));
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    client.write_all(&data).unwrap();
    assert!(client.close_timeout(LONG).expect("close").is_clean());
    let frames = decode_stream(codec, &join_within(reader, LONG, "the reader"));
    assert!(frames.iter().all(|f| !f.is_empty() && f.len() <= 88), "{frames:?}");
    assert_eq!(frames.concat(), data);
}
