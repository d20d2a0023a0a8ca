//! End to end over TLS against a foreign server, `openssl s_server`, which writes what it
//! decrypts to its stdout; the test captures that and parses it.
//!
//! One thread sends data frames of mixed sizes while another sends a 12-byte urgent heartbeat
//! every millisecond, and the server process is frozen (SIGSTOP) for 50 to 200 ms a few times,
//! so the client's writes stall half way through TLS records while urgent frames keep coming.
//! An urgent frame may go on the wire only at a frame boundary, and nothing may be spliced in
//! front of a write the TLS link must retry (invariants 7, 9 and 11): what the server received
//! must parse into exactly the frames sent, every data frame whole and in order, every
//! heartbeat present and whole between data frames, and as many bytes as the close report
//! counts as written. A corrupted record instead ends the server's connection with a MAC or
//! record error.
//!
//! Skipped without `openssl` (Debian package `openssl`), except under `CI=true`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tidegate::transport::tls::Tls;
use tidegate::{Bytes, Client, Config};

use crate::support::peers::{CertFiles, TlsServer, require_binary};
use crate::support::{HEADER, Lcg, Watchdog, frame, ident, join_within, wait_until};

const LONG: Duration = Duration::from_secs(30);
const WATCHDOG: Duration = Duration::from_secs(120);
const CAPACITY: usize = 64 * 1024;
const URGENT_RESERVE: usize = 8 * 1024;
/// Data frames sent; 16 bytes to 8 KiB each.
const DATA_FRAMES: u64 = 6_000;
/// How many times the server is frozen.
const STALLS: u64 = 5;
/// The first four bytes of a heartbeat; a data frame starts with its producer id, 0.
const HEARTBEAT_MAGIC: [u8; 4] = [0xff; 4];
const HEARTBEAT_LEN: usize = 12;

/// A CA and a server certificate it signed for 127.0.0.1 and localhost, as PEM.
pub(crate) fn certificates() -> (String, String, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "tidegate peer test CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca_key = KeyPair::generate().unwrap();
    let ca_pem = params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(params, ca_key);

    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "tidegate peer test server");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_pem, cert.pem(), key.serialize_pem())
}

/// A TLS transport that trusts `ca_pem` alone.
pub(crate) fn trusting(ca_pem: &str) -> Tls {
    Tls::builder()
        .add_root_certificate_pem(ca_pem.as_bytes())
        .disable_system_roots()
        .build()
        .expect("a TLS transport")
}

/// Heartbeat number `seq`: the magic, then `seq` as a big-endian u64.
fn heartbeat(seq: u64) -> Bytes {
    let mut out = HEARTBEAT_MAGIC.to_vec();
    out.extend_from_slice(&seq.to_be_bytes());
    Bytes::from(out)
}

/// What the server's stdout parsed into.
#[derive(Debug, Default)]
struct Received {
    data_frames: u64,
    heartbeats: u64,
    bytes: u64,
}

/// Parses the server's output into data frames (producer 0, in order, each byte checked) and
/// heartbeats (in order, whole, only between data frames).
fn parse(out: &[u8]) -> Result<Received, String> {
    let mut seen = Received { bytes: out.len() as u64, ..Received::default() };
    let mut at = 0;
    while at < out.len() {
        let rest = &out[at..];
        if rest.starts_with(&HEARTBEAT_MAGIC) {
            if rest.len() < HEARTBEAT_LEN {
                return Err(format!("the stream ends inside heartbeat {}", seen.heartbeats));
            }
            let seq = u64::from_be_bytes(rest[4..HEARTBEAT_LEN].try_into().unwrap());
            if seq != seen.heartbeats {
                return Err(format!("heartbeat {seq} at byte {at}, {} expected", seen.heartbeats));
            }
            seen.heartbeats += 1;
            at += HEARTBEAT_LEN;
            continue;
        }
        if rest.len() < HEADER {
            return Err(format!("the stream ends inside a frame header at byte {at}"));
        }
        let (producer, seq) = ident(rest);
        let len = u32::from_be_bytes(rest[12..16].try_into().unwrap()) as usize;
        if producer != 0 || seq != seen.data_frames || len < HEADER || rest.len() < len {
            return Err(format!(
                "byte {at}: data frame {}/{seq} of {len} bytes (producer {producer}), \
                 frame {} expected, {} bytes left",
                producer,
                seen.data_frames,
                rest.len()
            ));
        }
        if rest[..len] != frame(0, seq, len)[..] {
            return Err(format!("byte {at}: data frame {seq} is not whole (interleaved?)"));
        }
        seen.data_frames += 1;
        at += len;
    }
    Ok(seen)
}

#[test]
fn urgent_heartbeats_over_tls_to_a_stalling_server_arrive_between_whole_data_frames() {
    if !require_binary("openssl", "openssl") {
        return;
    }
    let _watchdog = Watchdog::new(WATCHDOG, "the s_server test");
    let (ca_pem, cert_pem, key_pem) = certificates();
    let certs = CertFiles::write(&cert_pem, &key_pem);
    let server = TlsServer::start(&certs);
    let tls = trusting(&ca_pem);
    let config = Config::new()
        .capacity(CAPACITY)
        .urgent_reserve(URGENT_RESERVE)
        .send_timeout(LONG)
        .close_timeout(LONG)
        .transport(tls);
    let client = Client::builder().config(config).connect(&server.url()).expect("connect");

    let data = {
        let client = client.clone();
        thread::spawn(move || {
            let mut rng = Lcg::new(41);
            for seq in 0..DATA_FRAMES {
                client.send(frame(0, seq, rng.range(HEADER, 8 * 1024)))?;
            }
            Ok::<(), tidegate::SendError<Bytes>>(())
        })
    };
    let stop_beating = Arc::new(AtomicBool::new(false));
    let beats = Arc::new(AtomicU64::new(0));
    let heart = {
        let (client, stop, beats) = (client.clone(), stop_beating.clone(), beats.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let seq = beats.load(Ordering::SeqCst);
                client.send_urgent(heartbeat(seq))?;
                beats.store(seq + 1, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(1));
            }
            Ok::<(), tidegate::SendError<Bytes>>(())
        })
    };

    // The injected fault: the server freezes a few times, for 50 to 200 ms, spread over the
    // data. (A sender that failed ends the stalls early; the checks below say why.)
    let mut rng = Lcg::new(7);
    for stall in 1..=STALLS {
        let due = stall * DATA_FRAMES / (STALLS + 1);
        let reached =
            wait_until(LONG, || client.stats().frames_accepted >= due || data.is_finished());
        assert!(reached, "the data stopped moving: {:?}", client.stats());
        if data.is_finished() {
            break;
        }
        server.peer().stop();
        thread::sleep(Duration::from_millis(rng.range(50, 200) as u64));
        server.peer().resume();
    }
    let sent_data = join_within(data, LONG, "the data sender");
    stop_beating.store(true, Ordering::SeqCst);
    let sent_heartbeats = join_within(heart, LONG, "the heartbeat sender");
    let report = client.close().expect("close");
    let (out, stderr) = server.finish(LONG);

    let stats = client.stats();
    assert!(
        sent_data.is_ok() && sent_heartbeats.is_ok(),
        "the connection failed after {} of {DATA_FRAMES} data frames: data {:?}, heartbeats \
         {:?}; s_server's stderr: {stderr:?}",
        stats.frames_accepted,
        sent_data.err().map(|e| e.to_string() + &format!(" ({e:?})")),
        sent_heartbeats.err().map(|e| e.to_string()),
    );
    let received = parse(&out).unwrap_or_else(|e| {
        panic!("s_server received a corrupted stream: {e}; its stderr: {stderr:?}; {report:?}")
    });
    let heartbeats = beats.load(Ordering::SeqCst);
    assert_eq!(received.data_frames, DATA_FRAMES, "every data frame arrived; stderr: {stderr:?}");
    assert_eq!(received.heartbeats, heartbeats, "every heartbeat arrived; stderr: {stderr:?}");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(received.bytes, report.bytes_written(), "what s_server got is what was written");
    assert_eq!(report.frames_written(), DATA_FRAMES + heartbeats);
    assert!(heartbeats > 100, "the heartbeats ran the whole time: {heartbeats}");
    assert!(stats.high_water <= CAPACITY, "{stats:?}");
}
