//! Connection events on real loopback sockets, each checked against what the peer received:
//!
//! - through resets, ends of stream and cuts by the fault proxy, each lost link is one
//!   `Disconnected` whose fates match, frame by frame, what the sink got on that link: the
//!   frames it received whole are the first of those the link wrote, a frame cut and handed
//!   back never arrives, and the next link starts right after;
//! - a subscriber that stops reading holds the reconnect attempts back, loses no event, and
//!   lets them go on once it reads or goes away;
//! - when reconnection gives up, the stream says so and ends, and `closed` tells the cause,
//!   in both facades;
//! - without reconnection, a lost link ends the stream, and `closed` tells the cause.

use std::net::TcpListener;
use std::ops::Range;
use std::thread;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tidegate::transport::SocketOption;
use tidegate::{AsyncClient, Bytes, Client, Config, ConnectionEvent, DisconnectKind, Reconnect};

use crate::proxy::{Fault, Proxy};
use crate::reconnect::{Collector, LONG, connected_then_refusing, lose_after, quick};
use crate::support::{Lcg, Watchdog, frame, ident, join_within, wait_until};

/// What a `Disconnected` event said of the lost link's frames.
#[derive(Debug)]
struct Loss {
    kind: DisconnectKind,
    replayed: u64,
    /// The numbers of the frames written whole: acknowledged, then possibly delivered.
    acknowledged: Range<u64>,
    written: Range<u64>,
    cut: Vec<Bytes>,
}

#[test]
fn each_lost_link_is_an_event_whose_fates_match_what_the_peer_received() {
    let _watchdog = Watchdog::new(Duration::from_secs(100), "event_fates");
    const FRAMES: u64 = 4000;
    const FAULTS: usize = 6;
    let collector = Collector::start(0);
    let proxy = Proxy::start(collector.addr);
    // Not atomic and not framed: a frame cut by a loss comes back in the event.
    let config = Config::new()
        .capacity(16 * 1024)
        .socket_option(SocketOption::SendBufferSize(8 * 1024))
        .close_timeout(LONG)
        .reconnect(quick());
    let client = Client::builder().config(config).connect(&proxy.url()).expect("connect");
    let events = client.events();
    let reader = thread::spawn(move || {
        let mut seen = Vec::new();
        loop {
            match events.recv_timeout(LONG) {
                Ok(Some(event)) => seen.push(event),
                Ok(None) => return seen,
                Err(e) => panic!("the events end with the connection: {e}"),
            }
        }
    });
    let producer = {
        let client = client.clone();
        thread::spawn(move || {
            let mut rng = Lcg::new(11);
            for seq in 0..FRAMES {
                client.send_timeout(frame(0, seq, rng.range(64, 700)), LONG).expect("sent");
            }
        })
    };
    for fault in 0..FAULTS {
        let accepted = proxy.accepted();
        let before = client.stats().bytes_written;
        assert!(
            wait_until(LONG, || client.stats().bytes_written > before + 20_000
                || producer.is_finished()),
            "traffic flows on link {fault}"
        );
        if producer.is_finished() {
            break;
        }
        proxy.inject([Fault::Reset, Fault::CutAndClose, Fault::ResetWithUnread][fault % 3]);
        assert!(wait_until(LONG, || proxy.accepted() > accepted), "link {fault} was replaced");
    }
    join_within(producer, LONG, "the producer");
    let stats = client.stats();
    let report = client.close_timeout(LONG).expect("close");
    assert!(report.unsent().is_empty() && report.cause().is_none(), "{report:?}");
    let links = collector.finish(LONG);
    let events = join_within(reader, LONG, "the event reader");

    // The events: each loss, then attempts numbered on from the last, then the new link.
    let url = proxy.url();
    let mut losses = Vec::new();
    let mut last_attempt = 0;
    let mut down = false;
    for event in &events {
        match event {
            ConnectionEvent::Disconnected { cause, replayed, acknowledged, possibly_delivered } => {
                assert!(!down, "one loss per link: {events:#?}");
                down = true;
                losses.push(Loss {
                    kind: cause.kind(),
                    replayed: *replayed,
                    acknowledged: acknowledged.clone(),
                    written: possibly_delivered.written(),
                    cut: possibly_delivered.cut_frames().to_vec(),
                });
            }
            ConnectionEvent::Reconnecting { attempt, .. } => {
                assert!(down, "attempts only in an outage: {events:#?}");
                assert_eq!(*attempt, last_attempt + 1, "attempts in order: {events:#?}");
                last_attempt = *attempt;
            }
            ConnectionEvent::Connected { endpoint, attempt } => {
                assert!(down, "a new link ends an outage: {events:#?}");
                assert_eq!(*attempt, last_attempt, "brought by the last attempt: {events:#?}");
                assert_eq!(endpoint.url(), url);
                down = false;
            }
            other => panic!("nothing gave up: {other:?}"),
        }
    }
    assert!(!down, "the last outage ended: {events:#?}");
    assert_eq!(losses.len() as u64, stats.disconnects, "one event per lost link: {stats:?}");
    assert_eq!(losses.len(), proxy.applied(), "one lost link per fault");
    let kinds: Vec<_> = losses.iter().map(|l| l.kind).collect();
    assert!(kinds.contains(&DisconnectKind::PeerClosed), "the cut ends in order: {kinds:?}");
    let replayed: u64 = losses.iter().map(|l| l.replayed).sum();
    assert_eq!(replayed, stats.frames_replayed, "{stats:?}");
    let possibly: u64 = losses.iter().map(|l| l.written.end - l.written.start).sum::<u64>()
        + losses.iter().map(|l| l.cut.len() as u64).sum::<u64>();
    assert_eq!(possibly, stats.frames_possibly_delivered, "{stats:?}");
    let acknowledged: u64 = losses.iter().map(|l| l.acknowledged.end - l.acknowledged.start).sum();
    assert_eq!(acknowledged, stats.frames_acknowledged, "{stats:?}");

    // The peer's side, link by link. One producer and no urgent frames: each link writes the
    // frames from where the last one stopped, in order. The sink got the first of the frames
    // the link wrote whole (not always all: a reset drops what the kernel still held); a cut
    // frame follows them and never arrives; the next link starts after it.
    assert_eq!(links.len(), losses.len() + 1, "one sink link per client link");
    let mut start = 0u64;
    // Frames are numbered as written whole: a cut frame has no number, so the numbers fall
    // behind the sequence numbers by one per cut.
    let mut wire = 0u64;
    for (k, link) in links.iter().enumerate() {
        assert!(link.corrupt.is_none(), "link {k}: {:?}", link.corrupt);
        for (i, &got) in link.frames.iter().enumerate() {
            assert_eq!(got, (0, start + i as u64), "link {k}'s frames continue the last link's");
        }
        let got = link.frames.len() as u64;
        let Some(loss) = losses.get(k) else {
            assert_eq!(start + got, FRAMES, "the last link carried every frame left");
            break;
        };
        // Numbered on from the last link: the acknowledged frames first, then the others.
        assert_eq!(loss.acknowledged.start, wire, "link {k}: {loss:?}");
        assert_eq!(loss.written.start, loss.acknowledged.end, "link {k}: {loss:?}");
        let whole = loss.written.end - wire;
        wire = loss.written.end;
        // The proxy's TCP acknowledged what it took, which a fault may drop before the sink.
        assert!(got <= whole, "link {k}: the sink got {got} of {whole} written");
        assert!(loss.cut.len() <= 1, "only the frame being written is cut: {loss:?}");
        let mut next = start + whole;
        for cut in &loss.cut {
            assert_eq!(ident(cut), (0, next), "the cut frame follows those written whole");
            next += 1;
        }
        start = next;
    }
}

/// A client connected to a port that then refuses, with reconnect attempts every millisecond
/// and no limit.
fn refusing_every_millisecond() -> (Client, std::net::TcpStream) {
    let policy = Reconnect::new()
        .initial_delay(Duration::from_millis(1))
        .max_delay(Duration::from_millis(1))
        .jitter(0.0);
    connected_then_refusing(Config::new().capacity(1024).reconnect(policy))
}

#[test]
fn a_subscriber_that_stops_reading_holds_the_attempts_and_loses_no_event() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "events_hold_attempts");
    let (client, peer) = refusing_every_millisecond();
    let events = client.events();
    lose_after(&client, peer, frame(0, 0, 100));
    // 64 places: the loss, then an attempt while 3 places are left for its events.
    const HELD_AT: u64 = 61;
    assert!(
        wait_until(LONG, || client.stats().reconnect_attempts >= HELD_AT),
        "attempts run until the queue is nearly full: {:?}",
        client.stats()
    );
    // Attempts come every millisecond while they may: none comes for 200 of them.
    let until = Instant::now() + Duration::from_millis(200);
    while Instant::now() < until {
        assert_eq!(client.stats().reconnect_attempts, HELD_AT, "held for the subscriber");
        thread::sleep(Duration::from_millis(5));
    }
    let mut attempts = Vec::new();
    match events.try_recv() {
        Some(ConnectionEvent::Disconnected {
            cause,
            replayed,
            acknowledged,
            possibly_delivered,
        }) => {
            assert_eq!(cause.kind(), DisconnectKind::Reset, "{cause}");
            // Acknowledged if the peer's acknowledgement came before its reset.
            let written = acknowledged.end - acknowledged.start + possibly_delivered.count();
            assert_eq!((replayed, written), (0, 1), "the frame was written");
        }
        other => panic!("the loss comes first: {other:?}"),
    }
    // Reading made room: the attempts go on. Every one of them is told, in order.
    while attempts.len() < 150 {
        match events.recv_timeout(LONG) {
            Ok(Some(ConnectionEvent::Reconnecting { attempt, delay, .. })) => {
                assert_eq!(delay, Duration::from_millis(1));
                attempts.push(attempt);
            }
            other => panic!("only attempts while the port refuses: {other:?}"),
        }
    }
    let expected: Vec<u32> = (1..=150).collect();
    assert_eq!(attempts, expected, "no attempt's event was lost");
    // A subscription dropped unread holds nothing back.
    let held = client.events();
    let before = client.stats().reconnect_attempts;
    assert!(
        wait_until(LONG, || client.stats().reconnect_attempts >= before + 5),
        "attempts go on while the new subscriber has room"
    );
    drop(held);
    drop(events);
    let before = client.stats().reconnect_attempts;
    assert!(
        wait_until(LONG, || client.stats().reconnect_attempts >= before + 100),
        "with the subscriptions gone, nothing holds the attempts: {:?}",
        client.stats()
    );
    let report = client.close_timeout(LONG).expect("close");
    assert_eq!(report.cause().map(|c| c.kind()), Some(DisconnectKind::ConnectFailed));
}

#[test]
fn giving_up_ends_the_events_and_closed_tells_the_cause_in_both_facades() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "events_gave_up");
    let policy = Reconnect::new().initial_delay(Duration::from_millis(20)).max_attempts(2);
    let (client, peer) = connected_then_refusing(Config::new().reconnect(policy));
    let asynchronous = AsyncClient::from_connection(client.connection().clone());
    let mut stream = asynchronous.events();
    let watcher = client.clone();
    let closed_blocking = thread::spawn(move || watcher.closed());
    lose_after(&client, peer, frame(0, 0, 100));
    let events: Vec<ConnectionEvent> = futures::executor::block_on(async {
        let mut all = Vec::new();
        while let Some(event) = stream.next().await {
            all.push(event);
        }
        all
    });
    let summary: Vec<String> = events
        .iter()
        .map(|e| match e {
            ConnectionEvent::Disconnected { cause, .. } => format!("lost {:?}", cause.kind()),
            ConnectionEvent::Reconnecting { attempt, .. } => format!("attempt {attempt}"),
            ConnectionEvent::GaveUp { cause } => format!("gave up {:?}", cause.kind()),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        summary,
        ["lost Reset", "attempt 1", "attempt 2", "gave up ConnectFailed"],
        "{events:#?}"
    );
    let cause = futures::executor::block_on(asynchronous.closed()).expect("not an orderly end");
    assert_eq!(cause.kind(), DisconnectKind::ConnectFailed, "{cause}");
    let cause = join_within(closed_blocking, LONG, "the blocking wait").unwrap();
    assert_eq!(cause.map(|c| c.kind()), Some(DisconnectKind::ConnectFailed));
    assert!(client.events().recv_timeout(LONG).unwrap().is_none(), "a late subscriber ends");
}

#[test]
fn without_reconnection_a_lost_link_ends_the_events_and_closed_tells_why() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "events_no_reconnect");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("tcp://{}", listener.local_addr().unwrap());
    let client = Client::connect(&url).expect("connect");
    let events = client.events();
    let (peer, _) = listener.accept().expect("accept");
    lose_after(&client, peer, frame(0, 0, 100));
    let cause = client.closed_timeout(LONG).expect("ended").expect("not an orderly end");
    assert_eq!(cause.kind(), DisconnectKind::Reset, "{cause}");
    assert!(events.recv_timeout(LONG).unwrap().is_none(), "no event, and the end");
    assert_eq!(client.stats().disconnects, 0, "a loss without reconnection is the end");
}
