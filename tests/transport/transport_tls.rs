//! TLS over loopback, with certificates made at test time (a CA, servers it signs, a client
//! certificate) and OpenSSL test servers: a trusted chain delivers several megabytes byte for
//! byte; a self-signed server, an unknown CA, a name mismatch and an expired certificate are
//! refused; mutual TLS works with the client certificate (PEM and PKCS#12) and fails without
//! it; backpressure holds over TLS; the handshake timeout fires on a silent server; ALPN is
//! offered; turning verification off works only by name and warns at every connection.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use openssl::pkey::PKey;
use openssl::ssl::{AlpnError, HandshakeError, SslAcceptor, SslMethod, SslVerifyMode};
use openssl::x509::X509;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, date_time_ymd,
};
use tidegate::transport::SocketOption;
use tidegate::transport::tls::Tls;
use tidegate::{Client, Config, ConnectError, DisconnectKind, LinkError, TlsErrorKind};

use crate::support::{self, Lcg, Verifier, Watchdog, frame, join_within, wait_until};

const LONG: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Certificates

/// A certificate and its PKCS#8 PEM key.
#[derive(Debug, Clone)]
struct Leaf {
    cert_pem: String,
    key_pem: String,
}

/// A test CA.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Self { pem, issuer: Issuer::new(params, key) }
    }

    /// A server certificate for `names`, valid now unless `expired`.
    fn server(&self, names: &[&str], expired: bool) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, "tidegate test server");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if expired {
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }

    /// A client certificate.
    fn client(&self, name: &str) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
    }
}

/// A self-signed server certificate for 127.0.0.1 and localhost.
fn self_signed() -> Leaf {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    Leaf { cert_pem: certified.cert.pem(), key_pem: certified.signing_key.serialize_pem() }
}

/// `leaf` as a PKCS#12 archive protected by `password`.
fn pkcs12(leaf: &Leaf, password: &str) -> Vec<u8> {
    let key = PKey::private_key_from_pem(leaf.key_pem.as_bytes()).unwrap();
    let cert = X509::from_pem(leaf.cert_pem.as_bytes()).unwrap();
    openssl::pkcs12::Pkcs12::builder()
        .name("tidegate test client")
        .pkey(&key)
        .cert(&cert)
        .build2(password)
        .unwrap()
        .to_der()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// The test server

/// How a [`TlsServer`] behaves.
struct ServerSetup {
    leaf: Leaf,
    /// Require a client certificate signed by this CA.
    client_ca: Option<String>,
    /// Select this ALPN protocol if the client offers it.
    alpn: Option<&'static [u8]>,
    /// Accept the TCP connection but never answer the handshake.
    silent: bool,
    /// `SO_RCVBUF` of the accepted socket.
    recv_buffer: Option<usize>,
    /// Start without reading application data.
    stalled: bool,
}

impl ServerSetup {
    fn new(leaf: Leaf) -> Self {
        Self { leaf, client_ca: None, alpn: None, silent: false, recv_buffer: None, stalled: false }
    }
}

/// What a [`TlsServer`] saw.
#[derive(Debug)]
struct ServerReport {
    /// The handshake's outcome.
    handshake: Result<(), String>,
    verifier: Verifier,
    /// The first verification or I/O error after the handshake.
    error: Option<String>,
    alpn: Option<Vec<u8>>,
    /// The subject of the client's certificate, if it showed one.
    client_subject: Option<String>,
}

#[derive(Debug, Default)]
struct Control {
    stalled: AtomicBool,
    stop: AtomicBool,
    received: AtomicU64,
}

/// A loopback OpenSSL server that accepts one connection, completes the handshake, and
/// verifies every byte of application data it reads.
struct TlsServer {
    addr: SocketAddr,
    control: Arc<Control>,
    thread: Option<JoinHandle<ServerReport>>,
}

impl TlsServer {
    fn start(setup: ServerSetup) -> Self {
        let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
        builder
            .set_private_key(&PKey::private_key_from_pem(setup.leaf.key_pem.as_bytes()).unwrap())
            .unwrap();
        builder.set_certificate(&X509::from_pem(setup.leaf.cert_pem.as_bytes()).unwrap()).unwrap();
        builder.check_private_key().unwrap();
        if let Some(ca) = &setup.client_ca {
            builder.cert_store_mut().add_cert(X509::from_pem(ca.as_bytes()).unwrap()).unwrap();
            builder.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
        }
        if let Some(protocol) = setup.alpn {
            // Pick `protocol` out of the client's list (length-prefixed names).
            builder.set_alpn_select_callback(move |_, mut offered| {
                while let Some((&len, rest)) = offered.split_first() {
                    let (name, tail) = rest.split_at(usize::from(len).min(rest.len()));
                    if name == protocol {
                        return Ok(name);
                    }
                    offered = tail;
                }
                Err(AlpnError::NOACK)
            });
        }
        let acceptor = builder.build();

        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        if let Some(size) = setup.recv_buffer {
            socket.set_recv_buffer_size(size).unwrap();
        }
        socket.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
        socket.listen(1).unwrap();
        let listener: TcpListener = socket.into();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let control =
            Arc::new(Control { stalled: AtomicBool::new(setup.stalled), ..Control::default() });
        let ctl = control.clone();
        let silent = setup.silent;
        let thread = thread::spawn(move || serve(listener, acceptor, silent, &ctl));
        Self { addr, control, thread: Some(thread) }
    }

    fn url(&self) -> String {
        format!("tls://{}", self.addr)
    }

    fn stall(&self) {
        self.control.stalled.store(true, Ordering::SeqCst);
    }

    fn resume(&self) {
        self.control.stalled.store(false, Ordering::SeqCst);
    }

    fn received(&self) -> u64 {
        self.control.received.load(Ordering::SeqCst)
    }

    /// Waits up to `timeout` for the connection to end, then returns what the server saw.
    fn finish(mut self, timeout: Duration) -> ServerReport {
        let thread = self.thread.take().expect("finished once");
        support::finish_thread(thread, timeout, &self.control.stop)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.control.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(
    listener: TcpListener,
    acceptor: SslAcceptor,
    silent: bool,
    ctl: &Control,
) -> ServerReport {
    let mut report = ServerReport {
        handshake: Err("no connection".into()),
        verifier: Verifier::new(),
        error: None,
        alpn: None,
        client_subject: None,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let running = || Instant::now() < deadline && !ctl.stop.load(Ordering::SeqCst);
    let stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && running() => {
                thread::sleep(Duration::from_millis(2));
            }
            Err(e) => {
                report.handshake = Err(format!("accept: {e}"));
                return report;
            }
        }
    };
    if silent {
        // Hold the connection open and say nothing.
        while running() {
            thread::sleep(Duration::from_millis(5));
        }
        return report;
    }
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut handshake = acceptor.accept(stream);
    let mut tls = loop {
        match handshake {
            Ok(tls) => break tls,
            Err(HandshakeError::WouldBlock(mid)) if running() => handshake = mid.handshake(),
            Err(e) => {
                report.handshake = Err(e.to_string());
                return report;
            }
        }
    };
    report.handshake = Ok(());
    report.alpn = tls.ssl().selected_alpn_protocol().map(<[u8]>::to_vec);
    report.client_subject = tls.ssl().peer_certificate().map(|cert| {
        cert.subject_name()
            .entries()
            .filter_map(|e| e.data().to_string().ok())
            .collect::<Vec<_>>()
            .join(",")
    });
    let mut buf = vec![0u8; 64 * 1024];
    while running() {
        if ctl.stalled.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(5));
            continue;
        }
        match tls.read(&mut buf) {
            Ok(0) => {
                let _ = tls.shutdown();
                break;
            }
            Ok(n) => {
                ctl.received.fetch_add(n as u64, Ordering::SeqCst);
                if report.error.is_none()
                    && let Err(e) = report.verifier.feed(&buf[..n])
                {
                    report.error = Some(e);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                report.error.get_or_insert_with(|| format!("read: {e}"));
                break;
            }
        }
    }
    report
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// A transport that trusts `ca` only.
fn trusting(ca: &Ca) -> Tls {
    Tls::builder()
        .add_root_certificate_pem(ca.pem.as_bytes())
        .disable_system_roots()
        .build()
        .unwrap()
}

/// The text of an error and all its causes, in lower case.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    support::chain(err).to_lowercase()
}

/// Connecting with `config` to `url` must fail in the handshake with `kind`; returns the
/// text of the error's chain. Its first line names the URL and the kind; the TLS library's own
/// report follows it, once.
fn refused(url: &str, config: Config, kind: TlsErrorKind) -> String {
    let err = Client::builder().config(config).connect(url).unwrap_err();
    let ConnectError::Tls { kind: seen, cause, url: shown } = &err else {
        panic!("expected a TLS failure, got {err:?}");
    };
    assert_eq!(*seen, kind, "{err}");
    assert_eq!(cause.kind(), DisconnectKind::ConnectFailed, "{err:?}");
    assert_eq!(shown, url);
    assert_eq!(err.to_string(), format!("the TLS handshake with {url} failed: {kind}"));
    let text = chain(&err);
    support::assert_said_once(&text);
    text
}

/// Sends `total` bytes of test frames of mixed sizes; returns how many frames.
fn send_frames(client: &Client, producer: u32, total: usize, seed: u64) -> u64 {
    let mut rng = Lcg::new(seed);
    let (mut sent, mut seq) = (0, 0);
    while sent < total {
        let len = rng.range(16, 40_000).min(total - sent).max(16);
        client.send(frame(producer, seq, len)).unwrap();
        sent += len;
        seq += 1;
    }
    seq
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn a_trusted_chain_delivers_megabytes_byte_for_byte() {
    let _watchdog = Watchdog::new(Duration::from_secs(90), "trusted chain");
    let ca = Ca::new("tidegate test CA");
    let server = TlsServer::start(ServerSetup::new(ca.server(&["localhost", "127.0.0.1"], false)));
    let config = Config::new().capacity(256 * 1024).transport(trusting(&ca));
    let client = Client::builder().config(config).connect(&server.url()).unwrap();

    const TOTAL: usize = 4 << 20;
    let frames = send_frames(&client, 1, TOTAL, 7);
    let report = client.close().expect("close");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.bytes_written(), TOTAL as u64);

    let seen = server.finish(LONG);
    assert_eq!(seen.handshake, Ok(()));
    assert_eq!(seen.error, None);
    assert_eq!(seen.verifier.bytes, TOTAL as u64);
    assert_eq!(seen.verifier.frames, frames);
    assert!(seen.verifier.at_boundary());
}

#[test]
fn the_domain_can_be_given_in_the_url_or_on_the_transport() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "domain override");
    let ca = Ca::new("tidegate test CA");
    for on_transport in [false, true] {
        let server = TlsServer::start(ServerSetup::new(ca.server(&["broker.test"], false)));
        let (url, tls) = if on_transport {
            (server.url(), trusting(&ca).domain("broker.test"))
        } else {
            (format!("{}?domain=broker.test", server.url()), trusting(&ca))
        };
        let client = Client::builder().config(Config::new().transport(tls)).connect(&url).unwrap();
        client.send(frame(1, 0, 100)).unwrap();
        assert!(client.close().expect("close").is_clean());
        let seen = server.finish(LONG);
        assert_eq!(seen.verifier.frames, 1, "{seen:?}");
    }
}

#[test]
fn servers_the_default_transport_cannot_verify_are_refused() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "untrusted servers");
    // The registered `tls` scheme trusts the system roots only.
    let server = TlsServer::start(ServerSetup::new(self_signed()));
    let text = refused(&server.url(), Config::new(), TlsErrorKind::UnknownIssuer);
    assert!(text.contains("certificate verify failed"), "{text}");
    let seen = server.finish(LONG);
    assert!(seen.handshake.is_err(), "the server must not see a handshake complete");
    assert_eq!(seen.verifier.bytes, 0);

    // A CA the client does not trust, even though it trusts another one.
    let (trusted, unknown) = (Ca::new("trusted CA"), Ca::new("unknown CA"));
    let server = TlsServer::start(ServerSetup::new(unknown.server(&["127.0.0.1"], false)));
    let config = Config::new().transport(trusting(&trusted));
    let text = refused(&server.url(), config, TlsErrorKind::UnknownIssuer);
    assert!(text.contains("certificate verify failed"), "{text}");
    assert!(server.finish(LONG).handshake.is_err());
}

#[test]
fn a_name_mismatch_is_refused() {
    const NAME: TlsErrorKind = TlsErrorKind::NameMismatch;
    let _watchdog = Watchdog::new(Duration::from_secs(60), "name mismatch");
    let ca = Ca::new("tidegate test CA");
    // Reached by address: the certificate does not name 127.0.0.1.
    let server = TlsServer::start(ServerSetup::new(ca.server(&["other.test"], false)));
    let text = refused(&server.url(), Config::new().transport(trusting(&ca)), NAME);
    assert!(text.contains("ip address mismatch"), "{text}");
    assert!(server.finish(LONG).handshake.is_err());
    // Reached by name: the certificate names another host.
    let server = TlsServer::start(ServerSetup::new(ca.server(&["other.test"], false)));
    let url = format!("{}?domain=localhost", server.url());
    let text = refused(&url, Config::new().transport(trusting(&ca)), NAME);
    assert!(text.contains("hostname mismatch"), "{text}");
    assert!(server.finish(LONG).handshake.is_err());
}

#[test]
fn an_expired_certificate_is_refused() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "expired");
    let ca = Ca::new("tidegate test CA");
    let server = TlsServer::start(ServerSetup::new(ca.server(&["127.0.0.1"], true)));
    let config = Config::new().transport(trusting(&ca));
    let text = refused(&server.url(), config, TlsErrorKind::CertificateExpired);
    assert!(text.contains("certificate has expired"), "{text}");
    assert!(server.finish(LONG).handshake.is_err());
}

#[test]
fn mutual_tls_works_with_the_client_certificate_in_pem_or_pkcs12() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "mutual TLS");
    let ca = Ca::new("tidegate test CA");
    let client_leaf = ca.client("tidegate test client");
    let with_pem = Tls::builder()
        .add_root_certificate_pem(ca.pem.as_bytes())
        .disable_system_roots()
        .identity_pem(client_leaf.cert_pem.as_bytes(), client_leaf.key_pem.as_bytes());
    let with_pkcs12 = Tls::builder()
        .add_root_certificate_pem(ca.pem.as_bytes())
        .disable_system_roots()
        .identity_pkcs12(&pkcs12(&client_leaf, "s3cret"), "s3cret");
    for builder in [with_pem, with_pkcs12] {
        let mut setup = ServerSetup::new(ca.server(&["127.0.0.1"], false));
        setup.client_ca = Some(ca.pem.clone());
        let server = TlsServer::start(setup);
        let config = Config::new().transport(builder.build().unwrap());
        let client = Client::builder().config(config).connect(&server.url()).unwrap();
        client.send(frame(1, 0, 1000)).unwrap();
        client.send(frame(1, 1, 50_000)).unwrap();
        assert!(client.close().expect("close").is_clean());
        let seen = server.finish(LONG);
        assert_eq!(seen.handshake, Ok(()));
        assert_eq!(seen.error, None);
        assert_eq!(seen.verifier.frames, 2);
        assert!(
            seen.client_subject.as_deref().is_some_and(|s| s.contains("tidegate test client")),
            "{seen:?}"
        );
    }
}

#[test]
fn mutual_tls_fails_without_the_client_certificate() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "mutual TLS refused");
    let ca = Ca::new("tidegate test CA");
    let mut setup = ServerSetup::new(ca.server(&["127.0.0.1"], false));
    setup.client_ca = Some(ca.pem.clone());
    let server = TlsServer::start(setup);
    let config = Config::new().transport(trusting(&ca));
    // With TLS 1.3 the client finishes its side of the handshake before the server checks the
    // client's certificate, so the refusal may arrive as the connection failing, or as the
    // connection ending right after it was established. Either way nothing gets through.
    match Client::builder().config(config).connect(&server.url()) {
        Err(err) => {
            assert_eq!(err.tls_kind(), Some(TlsErrorKind::ClientCertificateRequired), "{err:?}");
        }
        Ok(client) => {
            let _ = client.try_send(frame(1, 0, 100));
            let mut ended = None;
            let gone = wait_until(LONG, || match client.call_link(|_| ()) {
                Err(LinkError::Disconnected(cause)) => {
                    ended = Some(cause);
                    true
                }
                Err(other) => panic!("unexpected {other:?}"),
                Ok(()) => false,
            });
            assert!(gone, "the server's refusal must end the connection");
            let cause = ended.unwrap();
            assert_ne!(cause.kind(), DisconnectKind::PeerClosed, "an error, not an orderly end");
            // The server's alert says why, unless the kernel's reset (the server closed with
            // our bytes unread) reaches the client before the alert is read.
            match cause.tls_error() {
                Some(tls) => assert_eq!(tls.kind(), TlsErrorKind::ClientCertificateRequired),
                None => assert_eq!(cause.kind(), DisconnectKind::Reset, "{cause:?}"),
            }
        }
    }
    let seen = server.finish(LONG);
    let refusal = seen.handshake.expect_err("the server must refuse the handshake");
    assert!(refusal.to_lowercase().contains("certificate"), "{refusal}");
    assert_eq!(seen.verifier.bytes, 0);
}

#[test]
fn backpressure_holds_over_tls_and_everything_arrives_after_a_stall() {
    let _watchdog = Watchdog::new(Duration::from_secs(90), "TLS backpressure");
    const CAPACITY: usize = 64 * 1024;
    const FRAMES: u64 = 300;
    const LEN: usize = 3000;
    let ca = Ca::new("tidegate test CA");
    let mut setup = ServerSetup::new(ca.server(&["127.0.0.1"], false));
    setup.recv_buffer = Some(4096);
    setup.stalled = true;
    let server = TlsServer::start(setup);
    let config = Config::new()
        .capacity(CAPACITY)
        .socket_option(SocketOption::SendBufferSize(4096))
        .transport(trusting(&ca));
    let client = Client::builder().config(config).connect(&server.url()).unwrap();

    let producer = {
        let client = client.clone();
        thread::spawn(move || {
            for seq in 0..FRAMES {
                client.send(frame(1, seq, LEN)).unwrap();
            }
        })
    };
    // The peer reads nothing: the kernel buffers fill, then the outgoing buffer, then the
    // producer waits.
    assert!(wait_until(LONG, || client.stats().waiters > 0), "the producer never had to wait");
    let stats = client.stats();
    assert!(stats.buffered <= CAPACITY, "{stats:?}");
    assert!(stats.high_water <= CAPACITY, "{stats:?}");
    assert!(stats.buffered > CAPACITY - LEN, "the buffer fills before senders wait: {stats:?}");
    assert_eq!(server.received(), 0);
    assert!(!producer.is_finished());

    server.resume();
    join_within(producer, LONG, "the producer");
    let report = client.close().expect("close");
    assert!(report.is_clean(), "{report:?}");
    assert!(client.stats().high_water <= CAPACITY);
    let seen = server.finish(LONG);
    assert_eq!(seen.error, None);
    assert_eq!(seen.verifier.frames, FRAMES);
    assert_eq!(seen.verifier.bytes, FRAMES * LEN as u64);

    // A second stall in the middle of a connection, to cover a record left half-sent.
    let mut setup = ServerSetup::new(ca.server(&["127.0.0.1"], false));
    setup.recv_buffer = Some(4096);
    let server = TlsServer::start(setup);
    let config = Config::new()
        .capacity(CAPACITY)
        .socket_option(SocketOption::SendBufferSize(4096))
        .transport(trusting(&ca));
    let client = Client::builder().config(config).connect(&server.url()).unwrap();
    let mut seq = 0;
    for round in 0..3 {
        server.stall();
        // Send until a send times out: the kernel buffers and the outgoing buffer are full.
        // The frame that timed out is sent again in the next round.
        let before = seq;
        while seq < before + 1000 {
            match client.send_timeout(frame(1, seq, LEN), Duration::from_millis(50)) {
                Ok(()) => seq += 1,
                Err(tidegate::SendError::Timeout(_)) => break,
                Err(other) => panic!("round {round}: {other:?}"),
            }
        }
        assert!(seq < before + 1000, "round {round}: the stall never filled the buffer");
        assert!(client.stats().high_water <= CAPACITY);
        server.resume();
        client.flush_timeout(LONG).unwrap();
    }
    assert!(client.close().expect("close").is_clean());
    let seen = server.finish(LONG);
    assert_eq!(seen.error, None);
    assert_eq!(seen.verifier.frames, seq);
}

#[test]
fn the_handshake_timeout_fires_on_a_silent_server() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "handshake timeout");
    let ca = Ca::new("tidegate test CA");
    let mut setup = ServerSetup::new(ca.server(&["127.0.0.1"], false));
    setup.silent = true;
    let server = TlsServer::start(setup);
    let tls = Tls::builder()
        .add_root_certificate_pem(ca.pem.as_bytes())
        .handshake_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = Instant::now();
    let config = Config::new().connect_timeout(Duration::from_secs(30)).transport(tls);
    let err = Client::builder().config(config).connect(&server.url()).unwrap_err();
    let elapsed = started.elapsed();
    let ConnectError::Tls { kind: TlsErrorKind::HandshakeTimeout, cause, .. } = &err else {
        panic!("expected the handshake to time out, got {err:?}");
    };
    assert!(err.is_timeout());
    assert_eq!(cause.io_error().map(std::io::Error::kind), Some(std::io::ErrorKind::TimedOut));
    assert!(err.to_string().ends_with("failed: the handshake timed out after 300ms"), "{err}");
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "bounded by the handshake timeout: {elapsed:?}");
    drop(server);
}

#[test]
fn alpn_protocols_are_offered() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "ALPN");
    let ca = Ca::new("tidegate test CA");
    let mut setup = ServerSetup::new(ca.server(&["127.0.0.1"], false));
    setup.alpn = Some(b"tidegate-test");
    let server = TlsServer::start(setup);
    let tls = Tls::builder()
        .add_root_certificate_pem(ca.pem.as_bytes())
        .alpn_protocols(&["other", "tidegate-test"])
        .build()
        .unwrap();
    let client =
        Client::builder().config(Config::new().transport(tls)).connect(&server.url()).unwrap();
    assert!(client.close().expect("close").is_clean());
    let seen = server.finish(LONG);
    assert_eq!(seen.alpn.as_deref(), Some(&b"tidegate-test"[..]));
}

#[test]
fn socket_options_reach_the_tcp_socket_under_tls() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "TLS socket options");
    let ca = Ca::new("tidegate test CA");
    let server = TlsServer::start(ServerSetup::new(ca.server(&["127.0.0.1"], false)));
    let url = format!("{}?nodelay=0&linger=0", server.url());
    let client =
        Client::builder().config(Config::new().transport(trusting(&ca))).connect(&url).unwrap();
    let read = |kind| client.call_link(move |link| link.socket_option(kind)).unwrap().unwrap();
    use tidegate::transport::SocketOptionKind as Kind;
    assert_eq!(read(Kind::NoDelay), SocketOption::NoDelay(false));
    assert_eq!(read(Kind::Linger), SocketOption::Linger(Some(Duration::ZERO)));
    client.set_option(SocketOption::NoDelay(true)).unwrap();
    assert_eq!(read(Kind::NoDelay), SocketOption::NoDelay(true));
    client.set_option(SocketOption::Linger(None)).unwrap();
    assert!(client.close().expect("close").is_clean());
    assert_eq!(server.finish(LONG).handshake, Ok(()));
}

/// Collects the warnings logged in this test binary.
struct Warnings {
    seen: Mutex<Vec<String>>,
}

impl log::Log for Warnings {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            self.seen.lock().unwrap().push(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

static WARNINGS: Warnings = Warnings { seen: Mutex::new(Vec::new()) };

#[test]
fn turning_verification_off_takes_a_named_call_and_warns_at_every_connection() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "insecure");
    if log::set_logger(&WARNINGS).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
    let warnings = || {
        let seen = WARNINGS.seen.lock().unwrap();
        seen.iter().filter(|w| w.contains("without certificate or name verification")).count()
    };
    let tls = Tls::builder().danger_accept_invalid_certs_and_hostnames().build().unwrap();
    for connection in 1..=2 {
        let server = TlsServer::start(ServerSetup::new(self_signed()));
        let config = Config::new().transport(tls.clone());
        let client = Client::builder().config(config).connect(&server.url()).unwrap();
        client.send(frame(1, 0, 64)).unwrap();
        assert!(client.close().expect("close").is_clean());
        assert_eq!(server.finish(LONG).verifier.frames, 1);
        assert_eq!(warnings(), connection, "one warning per connection");
    }
    // The same server is refused as soon as verification is on.
    let server = TlsServer::start(ServerSetup::new(self_signed()));
    refused(&server.url(), Config::new(), TlsErrorKind::UnknownIssuer);
}

#[test]
fn a_peer_that_does_not_speak_tls_is_named_so() {
    let _watchdog = Watchdog::new(Duration::from_secs(60), "not TLS");
    // A plain-text server: it greets in clear, as a Redis or an SMTP server would.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        std::io::Write::write_all(&mut stream, b"-ERR unknown command\r\n+OK ready\r\n").unwrap();
        stream.set_read_timeout(Some(LONG)).unwrap();
        // Until the client gives up and closes; what it sent is kept.
        let (mut seen, mut buf) = (Vec::new(), [0u8; 1024]);
        while let Ok(n @ 1..) = stream.read(&mut buf) {
            seen.extend_from_slice(&buf[..n]);
        }
        seen
    });
    let url = format!("tls://{addr}");
    let text = refused(&url, Config::new().transport(Tls::new()), TlsErrorKind::NotTls);
    assert!(text.contains("wrong version number"), "{text}");
    let seen = join_within(server, LONG, "the plain-text server");
    // The server received a whole TLS handshake record (the ClientHello) first, and no
    // application data: at most an alert record can follow it.
    assert_eq!(seen.first(), Some(&0x16), "{seen:?}");
    let hello = usize::from(u16::from_be_bytes([seen[3], seen[4]])) + 5;
    assert!(seen.len() >= hello, "{} of {hello} bytes", seen.len());
    assert!(seen[hello..].first().is_none_or(|&kind| kind == 0x15), "{seen:?}");
}
