//! A producer sending over TLS to a server whose certificate it verifies.
//!
//! The example makes its own small PKI at start-up (a CA and a certificate it signs for
//! `localhost` and `127.0.0.1`), starts a loopback TLS server with it, and connects with a
//! [`Tls`] transport that trusts that CA and nothing else. It sends a few thousand frames,
//! closes, and prints what both sides counted. The same server is then refused by the default
//! `tls://` transport, which trusts only the system's roots.
//!
//! ```text
//! RUST_LOG=debug cargo run --example tls_producer
//! ```

use std::io::Read;
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use openssl::pkey::PKey;
use openssl::ssl::{SslAcceptor, SslMethod};
use openssl::x509::X509;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tidegate::transport::tls::Tls;
use tidegate::{Client, Config};

const FRAMES: usize = 5_000;
const FRAME_LEN: usize = 1_000;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Makes a CA and a server certificate it signs; returns the CA's certificate and the
/// server's certificate and key, in PEM.
fn make_certificates() -> Result<(String, String, String), Error> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "tidegate example CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca_key = KeyPair::generate()?;
    let ca_pem = ca.self_signed(&ca_key)?.pem();
    let issuer = Issuer::new(ca, ca_key);

    let server = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    let server_key = KeyPair::generate()?;
    let server_pem = server.signed_by(&server_key, &issuer)?.pem();
    Ok((ca_pem, server_pem, server_key.serialize_pem()))
}

/// Accepts `connections` TLS connections one after the other, reads each to its end, and
/// returns the bytes read from each (`None` for a failed handshake).
fn serve(
    listener: TcpListener,
    acceptor: SslAcceptor,
    connections: usize,
) -> Result<Vec<Option<u64>>, Error> {
    let mut counts = Vec::new();
    for _ in 0..connections {
        let (stream, peer) = listener.accept()?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut tls = match acceptor.accept(stream) {
            Ok(tls) => tls,
            Err(e) => {
                log::info!("server: handshake with {peer} failed: {e}");
                counts.push(None);
                continue;
            }
        };
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            match tls.read(&mut buf)? {
                0 => break,
                n => total += n as u64,
            }
        }
        let _ = tls.shutdown();
        counts.push(Some(total));
    }
    Ok(counts)
}

fn main() -> Result<(), Error> {
    env_logger::init();

    let (ca_pem, server_cert, server_key) = make_certificates()?;
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())?;
    let key = PKey::private_key_from_pem(server_key.as_bytes())?;
    let cert = X509::from_pem(server_cert.as_bytes())?;
    acceptor.set_private_key(&key)?;
    acceptor.set_certificate(&cert)?;
    let acceptor = acceptor.build();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("tls://{}", listener.local_addr()?);
    let server = thread::spawn(move || serve(listener, acceptor, 2));

    // Trust the example's CA, and only it. The server is verified as 127.0.0.1, the URL's
    // host; `?domain=localhost` would verify the other name in its certificate.
    let tls = Tls::builder()
        .add_root_certificate_pem(ca_pem.as_bytes())
        .disable_system_roots()
        .handshake_timeout(Duration::from_secs(5))
        .build()?;
    let config = Config::new().capacity(256 * 1024).transport(tls);
    let started = Instant::now();
    let client = Client::builder().config(config).connect(&url)?;
    println!("connected to {url} in {:?}", started.elapsed());

    let frame = vec![b'x'; FRAME_LEN];
    for _ in 0..FRAMES {
        client.send(frame.clone())?;
    }
    let report = client.close()?;
    let elapsed = started.elapsed();
    let stats = client.stats();
    println!(
        "sent {} frames, {} bytes in {elapsed:?}; buffer high water {} of {} bytes; clean: {}",
        report.frames_written(),
        report.bytes_written(),
        stats.high_water,
        stats.capacity,
        report.is_clean()
    );

    // The default transport trusts the system's roots only, so it refuses this server.
    match Client::connect(&url) {
        Ok(_) => println!("unexpected: the default transport trusted the example's CA"),
        Err(err) => {
            // Each cause once: the error, the disconnect, the handshake's own error.
            let mut text = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                text = format!("{text}: {cause}");
                source = cause.source();
            }
            println!("the default tls:// transport refused the server: {text}");
        }
    }

    let counts = server.join().expect("the server panicked")?;
    println!("the server read {:?} bytes on its connections", counts);
    assert_eq!(counts[0], Some((FRAMES * FRAME_LEN) as u64));
    assert_eq!(counts[1], None);
    Ok(())
}
