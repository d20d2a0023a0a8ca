//! A request/acknowledge client: it sends framed requests to a tiny acknowledging server on
//! 127.0.0.1 (a thread started here) and reads each acknowledgement back as a whole frame.
//!
//! Both directions use the same framing, a 4-byte big-endian length before each frame
//! (`LengthDelimited`): sends get the header added, receives return whole frames.
//!
//! ```text
//! cargo run --example ack_client
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use tidegate::{Client, Config, RecvError};
use tidegate_core::codec::LengthDelimited;

/// The server: reads length-prefixed requests and answers each with `ack <n>: <len> bytes`.
fn serve(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut n = 0u64;
    loop {
        let mut header = [0u8; 4];
        match stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut request = vec![0u8; u32::from_be_bytes(header) as usize];
        stream.read_exact(&mut request)?;
        n += 1;
        let ack = format!("ack {n}: {} bytes", request.len());
        stream.write_all(&(ack.len() as u32).to_be_bytes())?;
        stream.write_all(ack.as_bytes())?;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("tcp://{}", listener.local_addr()?);
    let server = std::thread::spawn(move || serve(listener.accept()?.0));

    let codec = LengthDelimited::new().max_frame_len(64 * 1024);
    let config = Config::new().framing(codec).inbound_capacity(256 * 1024);
    let client = Client::builder().config(config).connect(&url)?;
    for i in 0..5 {
        client.send(format!("request {i}: {}", "x".repeat(i * 10)))?;
        match client.recv_timeout(Duration::from_secs(5)) {
            Ok(Some(ack)) => println!("{}", String::from_utf8_lossy(&ack)),
            Ok(None) => return Err("the server closed the connection".into()),
            Err(RecvError::Timeout) => return Err("no acknowledgement within 5 s".into()),
            Err(err) => return Err(err.into()),
        }
    }
    let report = client.close()?;
    println!("closed: {} bytes written, clean: {}", report.bytes_written(), report.is_clean());
    // The close ends the stream: nothing more to receive.
    assert_eq!(client.recv()?, None);
    server.join().expect("the server thread")?;
    Ok(())
}
