//! Socket options on real loopback sockets: options set on the `Config` and in the URL's query
//! are what `getsockopt` reads back after connecting, the `Config`'s win over the URL's, a bad
//! query value or an unknown key fails the open with an error naming it, `TCP_NODELAY` toggled
//! on a live connection reads back, and `TCP_USER_TIMEOUT` ends a connection whose peer
//! stopped reading for good, with the error and the unsent frames in the close report.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use tidegate::transport::{Keepalive, SocketOption, SocketOptionKind as Kind};
use tidegate::{Client, Config, ConnectError, DisconnectKind, LinkError, TrySendError};

use crate::support::{Watchdog, frame, join_within, wait_until};

const LONG: Duration = Duration::from_secs(20);

/// A loopback listener whose accepted sockets have `recv_buffer` bytes of `SO_RCVBUF`.
fn listener(recv_buffer: Option<usize>) -> TcpListener {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    socket.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    socket.listen(4).unwrap();
    socket.into()
}

fn url(listener: &TcpListener, query: &str) -> String {
    format!("tcp://{}{query}", listener.local_addr().unwrap())
}

/// Reads an option back from the live link, on the driver thread.
fn read(client: &Client, kind: Kind) -> SocketOption {
    client.call_link(move |link| link.socket_option(kind)).unwrap().unwrap()
}

fn accept(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(false).unwrap();
    listener.accept().unwrap().0
}

/// Reads what the client sends until its end of stream, then ends this side too, as a server
/// does; returns the bytes read.
fn answer_the_end(mut peer: TcpStream) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        peer.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        peer.read_to_end(&mut got).expect("the client's end of stream");
        got.len()
    })
}

fn buffer_size(option: SocketOption) -> usize {
    match option {
        SocketOption::SendBufferSize(n) | SocketOption::RecvBufferSize(n) => n,
        other => panic!("not a buffer size: {other:?}"),
    }
}

#[test]
fn options_set_on_the_config_read_back_after_connecting() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "config options");
    let server = listener(None);
    let keepalive =
        Keepalive::new().idle(Duration::from_secs(45)).interval(Duration::from_secs(7)).retries(4);
    let config = Config::new()
        .nodelay(false)
        .socket_option(SocketOption::SendBufferSize(48 * 1024))
        .socket_option(SocketOption::RecvBufferSize(40 * 1024))
        .socket_option(SocketOption::Keepalive(Some(keepalive)))
        .socket_option(SocketOption::UserTimeout(Duration::from_millis(2500)))
        .socket_option(SocketOption::Linger(Some(Duration::from_secs(3))));
    let client = Client::builder().config(config).connect(&url(&server, "")).unwrap();
    let _peer = accept(&server);

    assert_eq!(read(&client, Kind::NoDelay), SocketOption::NoDelay(false));
    // The kernel may round buffer sizes up (Linux doubles them), never down.
    assert!(buffer_size(read(&client, Kind::SendBufferSize)) >= 48 * 1024);
    assert!(buffer_size(read(&client, Kind::RecvBufferSize)) >= 40 * 1024);
    assert_eq!(read(&client, Kind::Keepalive), SocketOption::Keepalive(Some(keepalive)));
    assert_eq!(
        read(&client, Kind::UserTimeout),
        SocketOption::UserTimeout(Duration::from_millis(2500))
    );
    assert_eq!(read(&client, Kind::Linger), SocketOption::Linger(Some(Duration::from_secs(3))));
    let peer = answer_the_end(_peer);
    assert!(client.close().expect("close").is_clean());
    assert_eq!(join_within(peer, Duration::from_secs(10), "the peer"), 0);
}

#[test]
fn options_in_the_url_read_back_and_the_config_wins_over_them() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "URL options");
    let server = listener(None);
    let query = "?nodelay=0&sndbuf=36864&rcvbuf=20480&keepalive=30s&keepalive_interval=3s\
                 &keepalive_retries=2&user_timeout=1500ms&linger=0";
    let client = Client::connect(&url(&server, query)).unwrap();
    let _peer = answer_the_end(accept(&server));
    assert_eq!(read(&client, Kind::NoDelay), SocketOption::NoDelay(false));
    assert!(buffer_size(read(&client, Kind::SendBufferSize)) >= 36864);
    assert!(buffer_size(read(&client, Kind::RecvBufferSize)) >= 20480);
    let keepalive =
        Keepalive::new().idle(Duration::from_secs(30)).interval(Duration::from_secs(3)).retries(2);
    assert_eq!(read(&client, Kind::Keepalive), SocketOption::Keepalive(Some(keepalive)));
    assert_eq!(
        read(&client, Kind::UserTimeout),
        SocketOption::UserTimeout(Duration::from_millis(1500))
    );
    assert_eq!(read(&client, Kind::Linger), SocketOption::Linger(Some(Duration::ZERO)));
    client.close().expect("close");

    // Without options a TCP link has TCP_NODELAY on and keep-alive off.
    let client = Client::connect(&url(&server, "")).unwrap();
    let _peer = answer_the_end(accept(&server));
    assert_eq!(read(&client, Kind::NoDelay), SocketOption::NoDelay(true));
    assert_eq!(read(&client, Kind::Keepalive), SocketOption::Keepalive(None));
    client.close().expect("close");

    // The Config's options are applied after the URL's.
    let config = Config::new().nodelay(true).socket_option(SocketOption::Keepalive(None));
    let client = Client::builder()
        .config(config)
        .connect(&url(&server, "?nodelay=0&keepalive=10s"))
        .unwrap();
    let _peer = answer_the_end(accept(&server));
    assert_eq!(read(&client, Kind::NoDelay), SocketOption::NoDelay(true));
    assert_eq!(read(&client, Kind::Keepalive), SocketOption::Keepalive(None));
    client.close().expect("close");
}

#[test]
fn bad_query_values_and_unknown_keys_fail_with_an_error_naming_them() {
    let server = listener(None);
    for (query, key, value) in [
        ("?nodelay=maybe", "nodelay", "maybe"),
        ("?sndbuf=big", "sndbuf", "big"),
        ("?rcvbuf=-5", "rcvbuf", "-5"),
        ("?keepalive=soon", "keepalive", "soon"),
        ("?keepalive_interval=1.5s", "keepalive_interval", "1.5s"),
        ("?keepalive_retries=x", "keepalive_retries", "x"),
        ("?user_timeout=5d", "user_timeout", "5d"),
        ("?linger=forever", "linger", "forever"),
    ] {
        for scheme in ["tcp", "tls"] {
            let url = url(&server, query).replacen("tcp", scheme, 1);
            let err = Client::connect(&url).unwrap_err();
            let ConnectError::Io { error: io, .. } = &err else {
                panic!("{url}: expected an I/O error, got {err:?}");
            };
            assert_eq!(io.kind(), io::ErrorKind::InvalidInput, "{url}");
            let text = io.to_string();
            assert!(text.contains(&format!("{key:?}")), "{url}: {text}");
            assert!(text.contains(&format!("{value:?}")), "{url}: {text}");
        }
    }
    let err = Client::connect(&url(&server, "?no_delay=1")).unwrap_err();
    let ConnectError::Io { error: io, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(io.kind(), io::ErrorKind::InvalidInput);
    assert!(io.to_string().contains("\"no_delay\""), "{io}");
    assert!(io.to_string().contains("nodelay"), "the known keys are listed: {io}");
}

#[test]
fn nodelay_toggled_on_a_live_connection_reads_back() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "nodelay at run time");
    let server = listener(None);
    let client = Client::connect(&url(&server, "")).unwrap();
    let _peer = accept(&server);
    for on in [false, true, false] {
        client.set_option(SocketOption::NoDelay(on)).unwrap();
        assert_eq!(read(&client, Kind::NoDelay), SocketOption::NoDelay(on));
    }
    client.set_option(SocketOption::SendBufferSize(64 * 1024)).unwrap();
    assert!(buffer_size(read(&client, Kind::SendBufferSize)) >= 64 * 1024);
    let peer = answer_the_end(_peer);
    assert!(client.close().expect("close").is_clean());
    assert_eq!(join_within(peer, Duration::from_secs(10), "the peer"), 0);
    // Once the connection is gone, the link is too.
    let gone = client.set_option(SocketOption::NoDelay(true)).unwrap_err();
    assert_eq!(gone.kind(), io::ErrorKind::NotConnected);
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn the_user_timeout_ends_a_connection_whose_peer_stopped_reading_and_returns_unsent_frames() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "user timeout");
    const CAPACITY: usize = 32 * 1024;
    const LEN: usize = 1000;
    let server = listener(Some(4096));
    let client = Client::builder()
        .capacity(CAPACITY)
        .connect(&url(&server, "?user_timeout=1s&sndbuf=4096"))
        .unwrap();
    // The peer accepts and never reads.
    let peer = accept(&server);

    // Fill the kernel buffers and then the outgoing buffer.
    let mut sent = Vec::new();
    let full = wait_until(LONG, || match client.try_send(frame(1, sent.len() as u64, LEN)) {
        Ok(()) => {
            sent.push(frame(1, sent.len() as u64, LEN));
            false
        }
        Err(TrySendError::Full(_)) => client.stats().buffered + LEN > CAPACITY,
        Err(other) => panic!("{other:?}"),
    });
    assert!(full, "the buffer never filled");

    // The kernel gives up on the unacknowledged data after about a second.
    let mut cause = None;
    let ended = wait_until(LONG, || match client.call_link(|_| ()) {
        Err(LinkError::Disconnected(c)) => {
            cause = Some(c);
            true
        }
        Err(other) => panic!("{other:?}"),
        Ok(()) => false,
    });
    assert!(ended, "the stalled connection never ended");
    let cause = cause.unwrap();
    assert_eq!(cause.kind(), DisconnectKind::TimedOut, "{cause:?}");
    assert_eq!(cause.io_error().map(io::Error::kind), Some(io::ErrorKind::TimedOut), "{cause:?}");

    let report = client.close().expect("close");
    assert_eq!(report.cause().map(|c| c.kind()), Some(DisconnectKind::TimedOut));
    let unsent = report.unsent();
    assert!(!unsent.is_empty(), "{report:?}");
    // Most of what was buffered when the peer stopped is still there (the kernel may have
    // taken a little more meanwhile).
    assert!(unsent.len() * LEN >= CAPACITY / 2, "{} unsent frames", unsent.len());
    // The unsent frames are the tail of what was sent, whole and in order, and the bytes
    // written are exactly the frames before them plus the start of the first unsent one.
    let first = sent.len() - unsent.len();
    for (i, frame) in unsent.iter().enumerate() {
        assert_eq!(frame.frame(), &sent[first + i], "unsent frame {i}");
    }
    let partial: usize = unsent.iter().map(|f| f.written()).sum();
    assert_eq!(report.bytes_written(), (first * LEN + partial) as u64);
    drop(peer);
}
