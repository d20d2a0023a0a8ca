//! Endpoint lists and racing addresses, on loopback sockets. Every test checks what the
//! listening peers received, not only what the client reports:
//!
//! - a first endpoint that refuses is passed over for the second, which gets every frame;
//!   when the second dies, the third takes over and gets the rest; the events name each
//!   attempt's endpoint, in order;
//! - attempts of a first link that fail to come up (a handshake refused, here) move on to the
//!   next endpoint at once, announced in order; when every endpoint fails, the connect error
//!   is the last one's; a reconnect limit counts every endpoint tried;
//! - `Spread` starts connections at different endpoints of the same list;
//! - `localhost` connects when only the family it resolves to listens;
//! - an address that never answers is raced by the next one after the attempt delay
//!   (RFC 8305), which wins and gets the frames; a URL in the list that cannot be used fails
//!   the open.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::thread;
use std::time::{Duration, Instant};

use tidegate::transport::tcp::{CONNECTION_ATTEMPT_DELAY, TcpLink};
use tidegate::transport::{Endpoint, Link, Transport};
use tidegate::{
    Bytes, Client, Config, ConnectError, Connection, ConnectionEvent, EndpointOrder, Handshake,
    Reconnect,
};

use crate::reconnect::{LONG, quick};
use crate::support::{Watchdog, frame, join_within, reset, wait_until, whole_frames};

/// A URL nobody listens on: the port was just released, so it refuses.
fn refusing_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    format!("tcp://{}", listener.local_addr().unwrap())
}

fn url_of(listener: &TcpListener) -> String {
    format!("tcp://{}", listener.local_addr().unwrap())
}

/// The next link `listener` accepts, within `timeout`.
fn accept_within(listener: &TcpListener, timeout: Duration) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let mut accepted = None;
    assert!(
        wait_until(timeout, || {
            accepted = listener.accept().ok().map(|(stream, _)| stream);
            accepted.is_some()
        }),
        "no link reached {:?}",
        listener.local_addr()
    );
    let stream = accepted.unwrap();
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(LONG)).unwrap();
    stream
}

/// Reads from `peer` until it holds `count` whole test frames, and returns them.
fn read_frames(peer: &mut TcpStream, count: usize) -> Vec<(u32, u64)> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + LONG;
    while whole_frames(&bytes).0.len() < count && Instant::now() < deadline {
        match peer.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
        }
    }
    whole_frames(&bytes).0
}

fn address(event: &ConnectionEvent) -> String {
    match event {
        ConnectionEvent::Connected { endpoint, attempt } => {
            format!("connected {} #{attempt}", endpoint.address())
        }
        ConnectionEvent::Reconnecting { endpoint, attempt, .. } => {
            format!("attempt {attempt} to {}", endpoint.address())
        }
        ConnectionEvent::Disconnected { .. } => "disconnected".to_string(),
        ConnectionEvent::GaveUp { .. } => "gave up".to_string(),
        other => format!("{other:?}"),
    }
}

#[test]
fn the_second_endpoint_takes_the_first_link_and_the_third_takes_over() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "endpoint_takeover");
    let refusing = refusing_url();
    let second = TcpListener::bind("127.0.0.1:0").unwrap();
    let third = TcpListener::bind("127.0.0.1:0").unwrap();
    let config =
        Config::new().fallback(url_of(&second)).fallback(url_of(&third)).reconnect(quick());
    let client = Client::builder().config(config).connect(&refusing).expect("the second answers");
    assert_eq!(client.stats().connects, 1);
    assert_eq!(client.stats().reconnect_attempts, 1, "one attempt past the refusing endpoint");
    let mut peer = accept_within(&second, LONG);
    let events = client.events();
    for seq in 0..10 {
        client.send(frame(0, seq, 100)).unwrap();
    }
    let got = read_frames(&mut peer, 10);
    assert_eq!(got, (0..10).map(|seq| (0, seq)).collect::<Vec<_>>(), "the second got them all");

    // The second endpoint dies: its link is reset and it stops listening.
    drop(second);
    reset(peer);
    let mut peer = accept_within(&third, LONG);
    for seq in 10..20 {
        client.send(frame(0, seq, 100)).unwrap();
    }
    let got = read_frames(&mut peer, 10);
    assert_eq!(got, (10..20).map(|seq| (0, seq)).collect::<Vec<_>>(), "the third got the rest");

    let third_address = third.local_addr().unwrap().to_string();
    let mut seen = Vec::new();
    while !seen.iter().any(|e: &String| e.starts_with("connected")) {
        let event = events.recv_timeout(LONG).expect("an event").expect("not ended");
        seen.push(address(&event));
    }
    assert_eq!(
        seen,
        [
            "disconnected".to_string(),
            format!("attempt 1 to {third_address}"),
            format!("connected {third_address} #1")
        ],
        "the attempt after the second's loss went to the third"
    );
    // With reconnection on, a peer ending its side would end the link: the client ends first.
    let drain = thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = peer.read_to_end(&mut rest);
        rest.len()
    });
    let report = client.close().expect("closed");
    assert_eq!(join_within(drain, LONG, "the peer"), 0, "nothing came after the frames");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.frames_written(), 20);
}

/// Says hello and waits for `OK`; any other line refuses this attempt.
struct Greeted;

impl Handshake for Greeted {
    fn hello(&self) -> Vec<Bytes> {
        vec![Bytes::from_static(b"HELLO\n")]
    }

    fn answer(&self, received: &[u8]) -> std::io::Result<Option<usize>> {
        match received.iter().position(|&b| b == b'\n') {
            None => Ok(None),
            Some(end) if &received[..=end] == b"OK\n" => Ok(Some(end + 1)),
            Some(end) => {
                Err(std::io::Error::other(String::from_utf8_lossy(&received[..end]).into_owned()))
            }
        }
    }
}

/// Accepts the next link on `listener`, checks that it began with the hello, and answers.
fn answer(listener: &TcpListener, reply: &[u8]) -> TcpStream {
    let mut peer = accept_within(listener, LONG);
    let mut hello = [0u8; 6];
    peer.read_exact(&mut hello).expect("the hello");
    assert_eq!(&hello, b"HELLO\n", "the link began with the hello");
    peer.write_all(reply).unwrap();
    peer
}

#[test]
fn a_first_link_refused_moves_on_to_the_next_endpoint_at_once_and_in_order() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "first_link_failover");
    let listeners: Vec<TcpListener> =
        (0..3).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let config = Config::new()
        .handshake(Greeted)
        .fallback(url_of(&listeners[1]))
        .fallback(url_of(&listeners[2]));
    let conn = Connection::open(&url_of(&listeners[0]), config).unwrap();
    // Subscribed before the first link can fail: its handshake waits for the answer below.
    let mut events = conn.events();
    let _first = answer(&listeners[0], b"BUSY\n");
    let _second = answer(&listeners[1], b"BUSY\n");
    let mut third = answer(&listeners[2], b"OK\n");
    tidegate::block_on(conn.connected()).expect("the third endpoint let it in");
    let addresses: Vec<String> =
        listeners.iter().map(|l| l.local_addr().unwrap().to_string()).collect();
    let mut seen = Vec::new();
    while let Some(event) = events.try_next() {
        if let ConnectionEvent::Reconnecting { delay, .. } = &event {
            assert_eq!(*delay, Duration::ZERO, "the next endpoint is tried at once");
        }
        seen.push(address(&event));
    }
    assert_eq!(
        seen,
        [
            format!("attempt 1 to {}", addresses[1]),
            format!("attempt 2 to {}", addresses[2]),
            format!("connected {} #2", addresses[2]),
        ]
    );
    assert_eq!(conn.stats().reconnect_attempts, 2);
    conn.try_send(frame(3, 0, 50)).unwrap();
    assert_eq!(read_frames(&mut third, 1), [(3, 0)], "the frame went to the endpoint that is up");
    third.shutdown(Shutdown::Write).unwrap();
    assert!(tidegate::block_on(conn.close(LONG)).is_clean());
}

#[test]
fn when_every_endpoint_fails_the_connect_error_is_the_last_ones() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "every_endpoint_fails");
    let (first, second) = (refusing_url(), refusing_url());
    let config = Config::new().fallback(second.clone());
    let err = Client::builder().config(config).connect(&first).unwrap_err();
    let ConnectError::Failed { url, .. } = &err else { panic!("not a failed connect: {err:?}") };
    // The error names the connection's URL; the cause is the last endpoint's refusal.
    assert_eq!(url, &first);
    assert!(format!("{err:?}").contains("ConnectionRefused"), "{err:?}");

    // A reconnect limit counts every endpoint tried, and the passes back off.
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    let policy =
        Reconnect::new().initial_delay(Duration::from_millis(40)).jitter(0.0).max_attempts(5);
    let config = Config::new().fallback(refusing_url()).reconnect(policy);
    let client = Client::builder().config(config).connect(&url_of(&up)).unwrap();
    let peer = accept_within(&up, LONG);
    let events = client.events();
    drop(up);
    reset(peer);
    let mut delays = Vec::new();
    let mut gave_up = false;
    while !gave_up {
        match events.recv_timeout(LONG).expect("an event").expect("not ended") {
            ConnectionEvent::Reconnecting { delay, .. } => delays.push(delay.as_millis()),
            ConnectionEvent::GaveUp { .. } => gave_up = true,
            _ => {}
        }
    }
    assert_eq!(delays, [40, 0, 80, 0, 160], "passes of two endpoints, the delay doubling per pass");
    assert_eq!(client.stats().reconnect_attempts, 5);
}

#[test]
fn spread_connections_start_at_different_endpoints() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "spread");
    let listeners: Vec<TcpListener> =
        (0..3).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    for listener in &listeners {
        listener.set_nonblocking(true).unwrap();
    }
    let urls: Vec<String> = listeners.iter().map(url_of).collect();
    let mut accepted = [0usize; 3];
    let mut clients = Vec::new();
    // Thirty connections miss a given endpoint with odds of (2/3)^30, about 1 in 190,000.
    for n in 0..30 {
        let config = Config::new()
            .fallback(urls[1].clone())
            .fallback(urls[2].clone())
            .endpoint_order(EndpointOrder::Spread);
        let client = Client::builder().config(config).connect(&urls[0]).unwrap();
        client.send(frame(n, 0, 40)).unwrap();
        clients.push(client);
    }
    let mut peers = Vec::new();
    assert!(
        wait_until(LONG, || {
            for (i, listener) in listeners.iter().enumerate() {
                while let Ok((stream, _)) = listener.accept() {
                    accepted[i] += 1;
                    peers.push(stream);
                }
            }
            accepted.iter().sum::<usize>() == 30
        }),
        "every connection reached an endpoint: {accepted:?}"
    );
    assert!(accepted.iter().all(|&n| n > 0), "every endpoint got connections: {accepted:?}");
    let mut producers = Vec::new();
    for mut peer in peers {
        peer.set_nonblocking(false).unwrap();
        peer.set_read_timeout(Some(LONG)).unwrap();
        producers.extend(read_frames(&mut peer, 1).into_iter().map(|(producer, _)| producer));
    }
    producers.sort_unstable();
    assert_eq!(producers, (0..30).collect::<Vec<u32>>(), "each frame reached a peer once");
}

#[test]
fn localhost_connects_with_only_its_resolved_family_listening() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "localhost");
    let resolved: Vec<SocketAddr> = ("localhost", 0).to_socket_addrs().unwrap().collect();
    let mut families: Vec<bool> = resolved.iter().map(SocketAddr::is_ipv6).collect();
    families.dedup();
    assert!(!families.is_empty(), "localhost resolves");
    for v6 in families {
        let listener = TcpListener::bind(if v6 { "[::1]:0" } else { "127.0.0.1:0" }).unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = Client::connect(&format!("tcp://localhost:{port}")).expect("connects");
        let mut peer = accept_within(&listener, LONG);
        client.send(frame(u32::from(v6), 0, 64)).unwrap();
        assert_eq!(read_frames(&mut peer, 1), [(u32::from(v6), 0)], "ipv6: {v6}");
        peer.shutdown(Shutdown::Write).unwrap();
        assert!(client.close().unwrap().is_clean());
    }
}

/// A listener on `[::1]` whose queue of links waiting to be accepted is full: a new link's
/// handshake gets no answer, as from a path that drops packets.
struct Unanswering {
    _listener: socket2::Socket,
    _queued: Vec<TcpStream>,
    addr: SocketAddr,
}

impl Unanswering {
    fn start() -> Self {
        use socket2::{Domain, Socket, Type};
        let listener = Socket::new(Domain::IPV6, Type::STREAM, None).unwrap();
        listener.bind(&"[::1]:0".parse::<SocketAddr>().unwrap().into()).unwrap();
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        // A backlog of 0 still queues a link or so; fill it until a link stays unanswered.
        let mut queued = Vec::new();
        for _ in 0..8 {
            let probe = Socket::new(Domain::IPV6, Type::STREAM, None).unwrap();
            probe.set_nonblocking(true).unwrap();
            let _ = probe.connect(&addr.into());
            let answered = wait_until(Duration::from_millis(200), || probe.peer_addr().is_ok());
            let stream: TcpStream = probe.into();
            if !answered {
                return Self { _listener: listener, _queued: queued, addr };
            }
            queued.push(stream);
        }
        panic!("the listen queue on {addr} never filled up");
    }
}

/// Opens links to fixed addresses, racing them, whatever the URL says.
#[derive(Debug)]
struct Racing(Vec<SocketAddr>);

impl Transport for Racing {
    fn open(&self, _: &Endpoint) -> std::io::Result<Box<dyn Link>> {
        Ok(Box::new(TcpLink::connect_racing(&self.0)?))
    }
}

#[test]
fn an_unanswering_address_is_raced_by_the_next_after_the_attempt_delay() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "happy_eyeballs");
    let unanswering = Unanswering::start();
    let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let racing = Racing(vec![unanswering.addr, v4.local_addr().unwrap()]);
    let started = Instant::now();
    let config = Config::new().transport(racing);
    let client = Client::builder().config(config).connect("race://either").expect("connects");
    let took = started.elapsed();
    assert!(took >= CONNECTION_ATTEMPT_DELAY, "the second address waited its turn: {took:?}");
    let mut peer = accept_within(&v4, LONG);
    for seq in 0..5 {
        client.send(frame(9, seq, 256)).unwrap();
    }
    assert_eq!(read_frames(&mut peer, 5), (0..5).map(|seq| (9, seq)).collect::<Vec<_>>());
    peer.shutdown(Shutdown::Write).unwrap();
    assert!(client.close().unwrap().is_clean());

    // An address that answers at once wins alone.
    let v6 = TcpListener::bind("[::1]:0").unwrap();
    let racing = Racing(vec![v6.local_addr().unwrap(), unanswering.addr]);
    let config = Config::new().transport(racing);
    let client = Client::builder().config(config).connect("race://either").expect("connects");
    let mut peer = accept_within(&v6, LONG);
    client.send(frame(6, 0, 64)).unwrap();
    assert_eq!(read_frames(&mut peer, 1), [(6, 0)]);
    peer.shutdown(Shutdown::Write).unwrap();
    assert!(client.close().unwrap().is_clean());
}

#[test]
fn a_fallback_that_cannot_be_used_fails_the_open() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = Config::new().fallback("gopher://elsewhere:70");
    let err = Client::builder().config(config).connect(&url_of(&listener)).unwrap_err();
    assert!(matches!(err, ConnectError::UnknownScheme { ref scheme, .. } if scheme == "gopher"));
    let config = Config::new().fallback("no scheme here");
    let err = Client::builder().config(config).connect(&url_of(&listener)).unwrap_err();
    assert!(matches!(err, ConnectError::InvalidUrl { .. }), "{err:?}");
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "nothing was opened");
}
