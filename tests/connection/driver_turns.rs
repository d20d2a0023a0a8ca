//! The order of the I/O driver's work in one turn of its loop, seen from inside a link: a
//! scripted transport (a user plugin, set on the connection's `Config`) records every read and
//! write the driver makes, so the tests check the driver's schedule exactly, without timing.
//!
//! - **Write biasing**: while outgoing data is pending, the driver reads at most
//!   `Config::write_bias` bytes between two writes, however much the peer has sent: an inbound
//!   flood cannot delay outgoing data by more than one read budget per turn.
//! - **Short writes**: a link may take fewer bytes than it was offered without being full (a
//!   TLS link takes one record, or one slice, per call). That is not `WouldBlock`, so the link
//!   owes the driver no readiness event: the driver must write again by itself, or the rest
//!   waits for an unrelated wake-up (a flush never completes).

use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tidegate::transport::{Endpoint, Link, LinkWaker, Registration, Transport, mio};
use tidegate::{Client, Config};

use crate::support::{self, Watchdog, frame, unique_name, wait_until};

const WAIT: Duration = Duration::from_secs(5);
const WATCHDOG: Duration = Duration::from_secs(60);

/// One call the driver made on the link, with the bytes it moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Write(usize),
    Read(usize),
}

/// What the scripted link does, and what the driver did with it.
#[derive(Debug, Default)]
struct Script {
    /// Whether writes are let through; until then they return `WouldBlock`, so a test can
    /// queue all its data before the driver writes any.
    open: bool,
    /// The driver's waker, to retry the writes that returned `WouldBlock` once open.
    waker: Option<LinkWaker>,
    /// The most bytes one write takes; once open, writes never block.
    write_chunk: usize,
    /// Inbound bytes the peer has "sent", handed out by reads from the first write on.
    flood: usize,
    /// Whether the first write happened (the flood starts then).
    flowing: bool,
    /// Whether the client ended its write side; the peer then ends its own once its flood
    /// has been read.
    ended: bool,
    /// Every byte written, in order.
    wire: Vec<u8>,
    calls: Vec<Call>,
}

#[derive(Debug, Clone, Default)]
struct Scripted(Arc<Mutex<Script>>);

impl Scripted {
    fn new(write_chunk: usize, flood: usize) -> Self {
        Self(Arc::new(Mutex::new(Script { write_chunk, flood, ..Script::default() })))
    }

    fn script(&self) -> MutexGuard<'_, Script> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Lets writes through, and tells the driver, whose writes returned `WouldBlock`.
    fn open(&self) {
        let waker = {
            let mut script = self.script();
            script.open = true;
            script.waker.clone()
        };
        waker.expect("the link was registered").wake();
    }
}

impl Transport for Scripted {
    fn open(&self, _endpoint: &Endpoint) -> io::Result<Box<dyn Link>> {
        Ok(Box::new(ScriptedLink(self.clone())))
    }
}

#[derive(Debug)]
struct ScriptedLink(Scripted);

impl Link for ScriptedLink {
    fn register(&mut self, registration: &Registration<'_>) -> io::Result<()> {
        // Apart from the opening of the gate, nothing ever becomes ready later: reads are
        // possible now or never, and open writes never return `WouldBlock`. So the link wakes
        // the driver only once.
        self.0.script().waker = Some(registration.waker());
        Ok(())
    }

    fn deregister(&mut self, _registry: &mio::Registry) -> io::Result<()> {
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut script = self.0.script();
        if script.ended && script.flood == 0 {
            return Ok(0);
        }
        if !script.flowing || script.flood == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(script.flood);
        buf[..n].fill(0xA5);
        script.flood -= n;
        script.calls.push(Call::Read(n));
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut script = self.0.script();
        if !script.open {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        script.flowing = true;
        let mut left = script.write_chunk;
        for buf in bufs {
            let n = buf.len().min(left);
            script.wire.extend_from_slice(&buf[..n]);
            left -= n;
            if left == 0 {
                break;
            }
        }
        let n = script.write_chunk - left;
        script.calls.push(Call::Write(n));
        Ok(n)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.0.script().ended = true;
        Ok(())
    }
}

/// A client over `scripted`, with the given configuration otherwise.
fn connect(scripted: &Scripted, config: Config) -> Client {
    let url = format!("scripted://{}", unique_name("driver-turns"));
    Client::builder().config(config.transport(scripted.clone())).connect(&url).unwrap()
}

/// Queues frames of 16..=700 bytes until `total` bytes (they must fit in the buffer), then
/// lets the link take them; returns the bytes sent, in order.
fn send_frames(client: &Client, scripted: &Scripted, total: usize) -> Vec<u8> {
    let mut rng = support::Lcg::new(3);
    let mut sent = Vec::new();
    let mut seq = 0;
    while sent.len() < total {
        let frame = frame(1, seq, rng.range(16, 700));
        sent.extend_from_slice(&frame);
        client.try_send(frame).unwrap();
        seq += 1;
    }
    assert_eq!(scripted.script().calls, [], "the driver wrote nothing yet");
    scripted.open();
    sent
}

#[test]
fn an_inbound_flood_is_read_at_most_one_write_bias_between_two_writes() {
    let _watchdog = Watchdog::new(WATCHDOG, "write bias per turn");
    const BIAS: usize = 4096;
    // The flood is far larger than the inbound buffer, which is far larger than the budget:
    // only the budget keeps a read between two writes small.
    const FLOOD: usize = 4 << 20;
    let scripted = Scripted::new(16, FLOOD);
    let config = Config::new()
        .capacity(64 * 1024)
        .inbound_capacity(1 << 20)
        .write_bias(BIAS)
        .discard_inbound(true);
    let client = connect(&scripted, config);
    let sent = send_frames(&client, &scripted, 8 * 1024);
    client.flush_timeout(WAIT).expect("the outgoing data completes");

    let script = scripted.script();
    assert!(script.wire == sent, "the link got every byte, in order");
    // Everything was queued before the first write: between the first and the last write,
    // outgoing data was pending all along.
    let first = script.calls.iter().position(|c| matches!(c, Call::Write(_))).unwrap();
    let last = script.calls.iter().rposition(|c| matches!(c, Call::Write(_))).unwrap();
    let mut gaps = Vec::new();
    let mut read = 0;
    for call in &script.calls[first..=last] {
        match call {
            Call::Write(_) => {
                if read > 0 {
                    gaps.push(read);
                }
                read = 0;
            }
            Call::Read(n) => read += n,
        }
    }
    let most = gaps.iter().copied().max().unwrap_or(0);
    assert!(
        most <= BIAS,
        "the driver read {most} bytes between two writes with outgoing data pending (write bias \
         {BIAS}); reads between writes: {gaps:?}"
    );
    // And the flood really was read in between, turn after turn.
    let writes = script.calls.iter().filter(|c| matches!(c, Call::Write(_))).count();
    let turns = writes / 32;
    assert!(gaps.len() >= turns.saturating_sub(1), "{} gaps over {writes} writes", gaps.len());
    drop(script);
    // Once nothing is left to write, the driver reads the rest of the flood.
    let all_read = wait_until(WAIT, || client.stats().bytes_received == FLOOD as u64);
    assert!(all_read, "{:?}", client.stats());
    assert!(client.close_timeout(WAIT).expect("close").is_clean());
}

#[test]
fn a_link_that_takes_a_few_bytes_per_write_still_gets_everything() {
    let _watchdog = Watchdog::new(WATCHDOG, "short writes");
    // 7 bytes per write, never full, never a readiness event.
    let scripted = Scripted::new(7, 0);
    let client = connect(&scripted, Config::new().capacity(64 * 1024));
    let sent = send_frames(&client, &scripted, 20_000);
    let flushed = client.flush_timeout(WAIT);
    let written = scripted.script().wire.len();
    assert!(
        flushed.is_ok(),
        "{flushed:?}: the link took {written} of {} bytes; the driver stopped writing after a \
         short write and waited for an event that never comes",
        sent.len()
    );
    assert!(scripted.script().wire == sent, "the link got every byte, in order");
    assert!(client.close_timeout(WAIT).expect("close").is_clean());
}
