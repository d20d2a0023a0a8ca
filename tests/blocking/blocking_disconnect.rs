//! Unexpected disconnection under load, through the blocking facade (invariants 4 and 8): when
//! the peer resets or closes the connection mid-stream, parked senders wake with
//! `SendError::Disconnected` carrying their own frames and the cause, later sends fail the same
//! way, and `close()` reports every accepted frame that was not written — so the frames the
//! peer got plus the unsent ones account for everything accepted. Nothing hangs.
//!
//! Variants: a loopback TCP peer that resets (RST) after reading a little and stalling, a TCP
//! sink that resets while reading at full speed, and an in-process `mem://` peer that resets or
//! closes while stalled.

use std::collections::HashMap;
use std::error::Error;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::thread;
use std::time::Duration;

use tidegate::transport::SocketOption;
use tidegate::transport::mem::MemListener;
use tidegate::{
    Bytes, Client, CloseReport, Config, Disconnect, DisconnectKind, FlushError, SendError,
    TrySendError,
};

use crate::support::{
    self, Lcg, MemSink, TcpSink, Verifier, Watchdog, frame, ident, join_within, wait_until,
};

const LONG: Duration = Duration::from_secs(20);
/// More frames than any test lets through before the connection breaks.
const MAX_FRAMES: u64 = 1_000_000;

/// What a producer did: the lengths of the frames it had accepted, and how its last send ended.
struct Produced {
    id: u32,
    lens: Vec<usize>,
    cause: Disconnect,
}

/// Sends frames of 200..=1000 bytes until a send fails, and checks that the failure is a
/// disconnect that hands back the very frame it was given.
fn produce(client: Client, id: u32) -> thread::JoinHandle<Produced> {
    thread::spawn(move || {
        let mut rng = Lcg::new(u64::from(id) * 7 + 3);
        let mut lens = Vec::new();
        for seq in 0..MAX_FRAMES {
            let len = rng.range(200, 1000);
            let sent = frame(id, seq, len);
            match client.send(sent.clone()) {
                Ok(()) => lens.push(len),
                Err(SendError::Disconnected { frame, cause }) => {
                    assert_eq!(frame, sent, "producer {id}: the failed frame comes back whole");
                    return Produced { id, lens, cause };
                }
                Err(other) => panic!("producer {id}: expected a disconnect, got {other:?}"),
            }
        }
        panic!("producer {id}: the connection never broke");
    })
}

/// Checks that the frames the peer got and the report's unsent frames account for every
/// frame the producers had accepted, each whole, in each producer's order.
fn check_accounting(produced: &[Produced], report: &CloseReport, peer: &Verifier) {
    let accepted: u64 = produced.iter().map(|p| p.lens.len() as u64).sum();
    let unsent = report.unsent();
    assert_eq!(
        report.frames_written() + unsent.len() as u64,
        accepted,
        "written + unsent must be every accepted frame"
    );
    let mut tails: HashMap<u32, Vec<u64>> = HashMap::new();
    for (i, u) in unsent.iter().enumerate() {
        let (id, seq) = ident(u.frame());
        let p = produced.iter().find(|p| p.id == id).expect("an unsent frame of a known producer");
        let len = *p.lens.get(seq as usize).expect("an unsent frame that was accepted");
        assert_eq!(u.frame(), &frame(id, seq, len), "unsent frame {id}/{seq} is whole");
        assert!(u.written() < len);
        if i > 0 {
            assert_eq!(u.written(), 0, "only the first unsent frame can be partly written");
        }
        tails.entry(id).or_default().push(seq);
    }
    let mut written = 0;
    for p in produced {
        // Each producer's unsent frames are the tail of what it had accepted, in order.
        let sent = p.lens.len() as u64;
        let tail = tails.remove(&p.id).unwrap_or_default();
        let cut = sent - tail.len() as u64;
        assert_eq!(tail, (cut..sent).collect::<Vec<_>>(), "producer {}: unsent tail", p.id);
        let got = peer.next_seq().get(&p.id).copied().unwrap_or(0);
        assert!(
            got <= cut,
            "producer {}: the peer got {got} frames, only {cut} were written",
            p.id
        );
        written += cut;
    }
    assert_eq!(written, report.frames_written());
}

/// The kind of disconnect every producer saw: one connection ends once, for one reason.
fn common_kind(produced: &[Produced]) -> DisconnectKind {
    let kind = produced[0].cause.kind();
    for p in produced {
        assert_eq!(p.cause.kind(), kind, "producer {}: {:?}", p.id, p.cause);
    }
    assert_eq!(kind, DisconnectKind::Reset, "a reset must be reported as one");
    kind
}

/// Checks the error of a send on a connection that is gone.
fn assert_disconnected(client: &Client, kind: DisconnectKind) {
    let late = frame(99, 0, 100);
    let err = client.send(late.clone()).unwrap_err();
    assert!(err.is_closed(), "{err:?}");
    assert_eq!(err.to_string(), "sending on a disconnected connection");
    let cause = err.source().and_then(|s| s.downcast_ref::<Disconnect>()).expect("the cause");
    assert_eq!(cause.kind(), kind);
    assert!(matches!(&err, SendError::Disconnected { frame, .. } if *frame == late));
    let err = client.send_timeout(late.clone(), Duration::from_secs(3600)).unwrap_err();
    assert!(matches!(&err, SendError::Disconnected { cause, .. } if cause.kind() == kind));
    let err = client.try_send(late.clone()).unwrap_err();
    assert!(matches!(&err, TrySendError::Disconnected { cause, .. } if cause.kind() == kind));
    assert_eq!(err.into_inner(), late);
    // A flush fails if bytes were lost; with everything written before the end, it may
    // succeed (see `blocking_flush.rs` for the idle case).
    let stats = client.stats();
    match client.flush_timeout(LONG) {
        Err(FlushError::Disconnected(cause)) => assert_eq!(cause.kind(), kind),
        Ok(()) => assert_eq!(stats.bytes_written, stats.bytes_accepted, "flush hid lost bytes"),
        Err(other) => panic!("expected a disconnect, got {other:?}"),
    }
}

/// A loopback listener whose accepted sockets have a small receive buffer.
fn small_listener() -> (TcpListener, SocketAddr) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&any.into()).unwrap();
    socket.listen(1).unwrap();
    let listener: TcpListener = socket.into();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

#[test]
fn tcp_reset_wakes_parked_senders_with_their_frames() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "tcp reset while parked");
    const PRODUCERS: u32 = 3;
    let (listener, addr) = small_listener();
    let config = Config::new().capacity(8 * 1024).socket_option(SocketOption::SendBufferSize(4096));
    let client = Client::builder().config(config).connect(&format!("tcp://{addr}")).unwrap();
    let (mut stream, _) = listener.accept().unwrap();
    let producers: Vec<_> = (0..PRODUCERS).map(|id| produce(client.clone(), id)).collect();

    // Read a little, then stop reading until every producer is parked.
    let mut peer = Verifier::new();
    let mut buf = [0u8; 4096];
    stream.set_read_timeout(Some(LONG)).unwrap();
    while peer.bytes < 20_000 {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the client closed early");
        peer.feed(&buf[..n]).unwrap();
    }
    assert!(
        wait_until(LONG, || client.stats().waiters == PRODUCERS as usize),
        "every producer should park; stats: {:?}",
        client.stats()
    );
    support::reset(stream);

    let produced: Vec<Produced> =
        producers.into_iter().map(|p| join_within(p, LONG, "a producer")).collect();
    // The kind is checked by `tcp_reset_while_writing_is_reported_as_a_reset`.
    let kind = common_kind(&produced);
    assert_disconnected(&client, kind);
    let report = client.close_timeout(LONG).expect("close");
    assert_eq!(report.cause().map(Disconnect::kind), Some(kind));
    assert!(!report.is_clean());
    assert!(!report.unsent().is_empty(), "the full buffer was not written");
    check_accounting(&produced, &report, &peer);
    assert!(
        client.close_timeout(LONG).expect("close").unsent().is_empty(),
        "only the first close gets them"
    );
}

#[test]
fn tcp_reset_mid_stream_accounts_for_every_frame() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "tcp reset mid-stream");
    const PRODUCERS: u32 = 4;
    let sink = TcpSink::start();
    let client = Client::builder().capacity(64 * 1024).connect(&sink.url()).unwrap();
    let producers: Vec<_> = (0..PRODUCERS).map(|id| produce(client.clone(), id)).collect();
    assert!(wait_until(LONG, || sink.received() >= 2_000_000), "the sink got too little");
    sink.reset();

    let produced: Vec<Produced> =
        producers.into_iter().map(|p| join_within(p, LONG, "a producer")).collect();
    let kind = common_kind(&produced);
    assert_disconnected(&client, kind);
    let report = client.close_timeout(LONG).expect("close");
    assert_eq!(report.cause().map(Disconnect::kind), Some(kind));
    let seen = sink.finish(LONG);
    assert_eq!(seen.error, None, "what the peer got before the reset is intact");
    check_accounting(&produced, &report, &seen.verifier);
}

/// Connects through a loopback listener, optionally parks a sender on a full buffer, resets
/// the connection, and returns the cause every party sees.
fn tcp_reset_cause(parked: bool) -> Disconnect {
    let (listener, addr) = small_listener();
    let config = Config::new().capacity(8 * 1024).socket_option(SocketOption::SendBufferSize(4096));
    let client = Client::builder().config(config).connect(&format!("tcp://{addr}")).unwrap();
    let (stream, _) = listener.accept().unwrap();
    let producer = parked.then(|| {
        let producer = produce(client.clone(), 0);
        assert!(wait_until(LONG, || client.stats().waiters == 1), "{:?}", client.stats());
        producer
    });
    support::reset(stream);
    assert!(wait_until(LONG, || client.connection().is_closed()), "the reset went unnoticed");
    let report = client.close_timeout(LONG).expect("close");
    let cause = report.cause().expect("a reset is a disconnect").clone();
    if let Some(producer) = producer {
        let produced = join_within(producer, LONG, "the producer");
        assert_eq!(produced.cause.kind(), cause.kind());
    }
    cause
}

fn assert_reset(cause: &Disconnect) {
    assert_eq!(cause.kind(), DisconnectKind::Reset, "{cause:?}");
    let io = cause.io_error().expect("a reset carries the OS error");
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(cause.to_string().contains("reset"), "{cause}");
}

#[test]
fn tcp_reset_of_an_idle_connection_is_reported_as_a_reset() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "idle reset kind");
    assert_reset(&tcp_reset_cause(false));
}

#[test]
fn tcp_reset_while_writing_is_reported_as_a_reset() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "busy reset kind");
    assert_reset(&tcp_reset_cause(true));
}

/// Parks `PRODUCERS` senders on a stalled `mem` peer, then ends the connection with `end`.
fn mem_disconnect(end: impl FnOnce(&tidegate::transport::mem::MemPeer), kind: DisconnectKind) {
    const PRODUCERS: u32 = 3;
    let listener = MemListener::bind(&support::unique_name("disc-mem")).unwrap();
    let client = Client::builder().capacity(4096).connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    peer.pause();
    let producers: Vec<_> = (0..PRODUCERS).map(|id| produce(client.clone(), id)).collect();
    assert!(
        wait_until(LONG, || client.stats().waiters == PRODUCERS as usize),
        "every producer should park; stats: {:?}",
        client.stats()
    );
    let sink = MemSink::start(peer, Verifier::new());
    end(sink.peer());

    let produced: Vec<Produced> =
        producers.into_iter().map(|p| join_within(p, LONG, "a producer")).collect();
    for p in &produced {
        assert_eq!(p.cause.kind(), kind, "{:?}", p.cause);
    }
    assert_disconnected(&client, kind);
    let report = client.close_timeout(LONG).expect("close");
    assert_eq!(report.cause().map(Disconnect::kind), Some(kind));
    assert!(!report.timed_out());
    // Nothing was written, so the report holds every accepted frame, in acceptance order.
    assert_eq!(report.frames_written(), 0);
    let accepted: usize = produced.iter().map(|p| p.lens.len()).sum();
    assert_eq!(report.unsent().len(), accepted);
    assert_eq!(
        report.unsent().iter().map(|u| u.frame().len()).sum::<usize>(),
        client.stats().bytes_accepted as usize
    );
    let seen = sink.finish(LONG);
    assert_eq!(seen.verifier.bytes, 0);
    check_accounting(&produced, &report, &seen.verifier);
}

#[test]
fn mem_reset_wakes_parked_senders_with_cause_reset() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "mem reset");
    mem_disconnect(|peer| peer.reset(), DisconnectKind::Reset);
}

#[test]
fn mem_close_wakes_parked_senders_with_cause_peer_closed() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "mem close");
    mem_disconnect(|peer| peer.close(), DisconnectKind::PeerClosed);
}

#[test]
fn a_disconnect_error_chains_down_to_the_io_error() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "error chain");
    let listener = MemListener::bind(&support::unique_name("disc-chain")).unwrap();
    let client = Client::builder().capacity(100).connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    peer.reset();
    assert!(wait_until(LONG, || client.connection().is_closed()));
    let err = client.send(Bytes::from_static(b"late")).unwrap_err();
    let cause = err.source().expect("a disconnect has a cause");
    assert!(cause.to_string().contains("reset"), "{cause}");
    let io = cause.source().expect("the cause has the io error");
    let io = io.downcast_ref::<std::io::Error>().expect("an io::Error");
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionReset);
    // io::Write maps it to the matching io error kind, with the send error inside.
    let mut writer = client.clone();
    let err = std::io::Write::write(&mut writer, b"late").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(err.get_ref().is_some_and(|inner| inner.to_string().contains("disconnected")));
}
