//! The handshake hook over TLS against a foreign server, `openssl s_server`: the hello is the
//! first thing the server decrypts, nothing follows it until the server answers, the connect
//! waits for that answer, and what the server says after it reaches the application.
//!
//! Skipped without `openssl` (Debian package `openssl`), except under `CI=true`.

use std::io;
use std::thread;
use std::time::Duration;

use tidegate::{Bytes, Client, Config, Handshake};

use crate::peer_tls::{certificates, trusting};
use crate::support::peers::{CertFiles, TlsServer, require_binary};
use crate::support::{Watchdog, frame, join_within, wait_until};

const LONG: Duration = Duration::from_secs(30);
const HELLO: &[u8] = b"HELLO\n";

/// Says hello; the link is up at `WELCOME`.
struct Hello;

impl Handshake for Hello {
    fn hello(&self) -> Vec<Bytes> {
        vec![Bytes::from_static(HELLO)]
    }

    fn answer(&self, received: &[u8]) -> io::Result<Option<usize>> {
        match received.iter().position(|&b| b == b'\n') {
            None => Ok(None),
            Some(end) if &received[..=end] == b"WELCOME\n" => Ok(Some(end + 1)),
            Some(_) => Err(io::Error::other("not welcome")),
        }
    }
}

#[test]
fn the_hello_goes_first_over_tls_and_the_link_waits_for_the_servers_answer() {
    if !require_binary("openssl", "openssl") {
        return;
    }
    let _watchdog = Watchdog::new(Duration::from_secs(90), "tls_handshake_hook");
    let (ca_pem, cert_pem, key_pem) = certificates();
    let certs = CertFiles::write(&cert_pem, &key_pem);
    let mut server = TlsServer::start(&certs);
    let tls = trusting(&ca_pem);
    let config = Config::new().transport(tls).handshake(Hello).close_timeout(LONG);
    let url = server.url();
    let connecting = thread::spawn(move || Client::builder().config(config).connect(&url));
    assert!(
        wait_until(LONG, || server.received() == HELLO),
        "the server decrypted the hello first: {:?}",
        String::from_utf8_lossy(&server.received())
    );
    assert!(!connecting.is_finished(), "the connect waits for the answer");
    server.say(b"WELCOME\nFIRST\n");
    let client = join_within(connecting, LONG, "the connect").expect("connected once answered");
    let mut heard = Vec::new();
    while heard.len() < b"FIRST\n".len() {
        let chunk = client.recv_timeout(LONG).expect("what the server said").expect("open");
        heard.extend_from_slice(&chunk);
    }
    assert_eq!(heard, b"FIRST\n", "the answer was the hook's, the rest the application's");
    let frames = [frame(0, 0, 100), frame(0, 1, 2000)];
    for f in &frames {
        client.send(f.clone()).unwrap();
    }
    let report = client.close().expect("close");
    assert!(report.unsent().is_empty(), "{report:?}");
    let (out, stderr) = server.finish(LONG);
    let expected = [HELLO, &frames[0], &frames[1]].concat();
    assert!(out == expected, "s_server decrypted {} bytes; stderr: {stderr}", out.len());
}
