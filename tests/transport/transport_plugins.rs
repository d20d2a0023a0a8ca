//! Transports chosen by URL scheme and per connection: a user transport registered under its
//! own scheme carries frames end to end over loopback TCP, with its own query key and the TCP
//! ones; a transport set on the `Config` replaces the registered one for that connection only;
//! `unix:///path` carries frames end to end; an unknown scheme's error lists the registered
//! ones.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tidegate::transport::{self, Endpoint, Link, SocketOption, SocketOptionKind, Transport, tcp};
use tidegate::{Client, Config, ConnectError};

use crate::support::{TcpSink, Verifier, Watchdog, frame, unique_name, wait_until};

const LONG: Duration = Duration::from_secs(20);

/// `counted://host:port?label=…`: TCP, counting the links it opens.
#[derive(Debug, Default)]
struct Counted {
    opened: Arc<AtomicUsize>,
}

impl Transport for Counted {
    fn open(&self, endpoint: &Endpoint) -> io::Result<Box<dyn Link>> {
        let options = tcp::query_options(endpoint, &["label"])?;
        let mut link = tcp::TcpLink::connect(endpoint.address())?;
        for option in &options {
            link.set_option(option)?;
        }
        self.opened.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(link))
    }
}

#[test]
fn a_registered_plugin_carries_frames_end_to_end() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "plugin");
    let opened = Arc::new(AtomicUsize::new(0));
    let scheme = unique_name("counted").replace('-', "");
    transport::register(&scheme, Counted { opened: opened.clone() }).unwrap();
    assert!(transport::schemes().contains(&scheme));

    let sink = TcpSink::start();
    let url = sink.url().replacen("tcp", &scheme, 1) + "?label=test&nodelay=0";
    let client = Client::connect(&url).unwrap();
    assert_eq!(opened.load(Ordering::SeqCst), 1);
    let nodelay = client.call_link(|link| link.socket_option(SocketOptionKind::NoDelay));
    assert_eq!(nodelay.unwrap().unwrap(), SocketOption::NoDelay(false), "TCP keys still apply");
    for seq in 0..200 {
        client.send(frame(3, seq, 16 + seq as usize * 37)).unwrap();
    }
    assert!(client.close().expect("close").is_clean());
    let seen = sink.finish(LONG);
    assert_eq!(seen.error, None);
    assert_eq!(seen.verifier.frames, 200);

    // The plugin refuses keys that are neither its own nor TCP's.
    let err = Client::connect(&format!("{scheme}://127.0.0.1:1?lable=x")).unwrap_err();
    assert!(
        matches!(&err, ConnectError::Io { error: e, .. } if e.kind() == io::ErrorKind::InvalidInput)
    );
}

#[test]
fn a_transport_on_the_config_replaces_the_registered_one_for_that_connection_only() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "override");
    let opened = Arc::new(AtomicUsize::new(0));
    let sink = TcpSink::start();
    let config = Config::new().transport(Counted { opened: opened.clone() });
    let client = Client::builder().config(config).connect(&sink.url()).unwrap();
    assert_eq!(opened.load(Ordering::SeqCst), 1, "tcp:// went through the override");
    client.send(frame(1, 0, 500)).unwrap();
    assert!(client.close().expect("close").is_clean());
    assert_eq!(sink.finish(LONG).verifier.frames, 1);

    let sink = TcpSink::start();
    let client = Client::connect(&sink.url()).unwrap();
    client.send(frame(1, 0, 500)).unwrap();
    assert!(client.close().expect("close").is_clean());
    assert_eq!(sink.finish(LONG).verifier.frames, 1);
    assert_eq!(opened.load(Ordering::SeqCst), 1, "other connections keep the registered one");

    // The URL is still checked.
    let config = Config::new().transport(Counted::default());
    let err = Client::builder().config(config).connect("no-scheme-here").unwrap_err();
    assert!(matches!(err, ConnectError::InvalidUrl { .. }), "{err:?}");
}

#[test]
fn an_unknown_scheme_lists_the_registered_ones() {
    let err = Client::connect("carrier-pigeon://loft").unwrap_err();
    let ConnectError::UnknownScheme { scheme, registered, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(scheme, "carrier-pigeon");
    for builtin in ["mem", "tcp", "tls"] {
        assert!(registered.iter().any(|s| s == builtin), "{registered:?}");
    }
    assert!(err.to_string().contains("tls"), "{err}");
}

#[cfg(unix)]
#[test]
fn unix_sockets_carry_frames_end_to_end() {
    use std::io::Read;
    use std::os::unix::net::UnixListener;

    let _watchdog = Watchdog::new(Duration::from_secs(60), "unix");
    let dir = std::env::temp_dir().join(unique_name("tidegate-unix"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broker.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let reader = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut verifier = Verifier::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => verifier.feed(&buf[..n]).unwrap(),
                Err(e) => panic!("read: {e}"),
            }
        }
        verifier
    });

    let url = format!("unix://{}", path.display());
    let config = Config::new()
        .capacity(16 * 1024)
        .nodelay(true) // not a unix socket option: skipped
        .socket_option(SocketOption::SendBufferSize(32 * 1024));
    let client = Client::builder().config(config).connect(&url).unwrap();
    let sndbuf = client.call_link(|link| link.socket_option(SocketOptionKind::SendBufferSize));
    assert!(matches!(sndbuf.unwrap().unwrap(), SocketOption::SendBufferSize(n) if n >= 32 * 1024));
    let nodelay = client.call_link(|link| link.socket_option(SocketOptionKind::NoDelay));
    assert_eq!(nodelay.unwrap().unwrap_err().kind(), io::ErrorKind::Unsupported);

    const FRAMES: u64 = 500;
    let mut bytes = 0;
    for seq in 0..FRAMES {
        let len = 16 + (seq as usize * 131) % 9000;
        client.send(frame(5, seq, len)).unwrap();
        bytes += len as u64;
    }
    let report = client.close().expect("close");
    assert!(report.is_clean(), "{report:?}");
    assert!(wait_until(LONG, || reader.is_finished()));
    let verifier = reader.join().unwrap();
    assert_eq!(verifier.frames, FRAMES);
    assert_eq!(verifier.bytes, bytes);
    assert!(verifier.at_boundary());

    let missing = format!("unix://{}", dir.join("nobody.sock").display());
    assert!(matches!(Client::connect(&missing), Err(ConnectError::Io { .. })));
    std::fs::remove_dir_all(&dir).unwrap();
}
