//! The blocking facade of tidegate: [`Client::send`] parks the calling thread while the
//! connection's outgoing buffer is full, and returns once the frame is in the buffer.
//!
//! A [`Client`] is a cheap, cloneable, `Send + Sync` handle: give a clone to every producer
//! thread. All of them share one bounded buffer and queue in one FIFO line when it is full; a
//! waiting thread uses no CPU and is unparked by the I/O driver when its frame has been taken
//! in, or when its wait ends (timeout, close, disconnect). Every error carries the frame back.
//!
//! This crate is a thin layer over `tidegate-core`: the waiting rules, the buffer and the
//! driver live there, and the async facade uses the very same ones.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use tidegate::Client;
//!
//! # let broker = std::net::TcpListener::bind("127.0.0.1:0")?;
//! # let url = format!("tcp://{}", broker.local_addr()?);
//! # let reader = std::thread::spawn(move || {
//! #     let (mut peer, _) = broker.accept().unwrap();
//! #     std::io::copy(&mut peer, &mut std::io::sink()).unwrap()
//! # });
//! let client = Client::builder()
//!     .capacity(1 << 20)
//!     .send_timeout(Duration::from_secs(30))
//!     .connect(&url)?; // for example "tcp://127.0.0.1:5672"
//! let producers: Vec<_> = (0..4)
//!     .map(|i| {
//!         let client = client.clone();
//!         std::thread::spawn(move || client.send(format!("hello from {i}\n")))
//!     })
//!     .collect();
//! for producer in producers {
//!     producer.join().unwrap()?;
//! }
//! let report = client.close()?;
//! assert!(report.is_clean());
//! # assert_eq!(reader.join().unwrap(), report.bytes_written());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod client;
mod ending;
mod events;
mod receiving;
mod sending;
mod split;
mod wait;
mod watermarks;

pub use client::{Blocking, Client, ClientBuilder};
pub use events::Events;
pub use split::{RecvHalf, SendHalf};
pub use wait::block_on;
pub use watermarks::Watermarks;
// Everything a user of this crate names, so that it is the only dependency they need: the
// settings, the errors and reports, the core's connection and its operations (reached through
// `Client::connection`), framing and transports.
pub use tidegate_core::transport::{Link, SocketOption};
pub use tidegate_core::{
    Budget, Builder, ByteStream, Bytes, CloseError, CloseOp, CloseReport, ClosedOp, Config,
    ConnectError, Connected, Connection, ConnectionEvent, ConnectionEvents, ConnectionRef,
    DEFAULT_CAPACITY, DEFAULT_INBOUND_CAPACITY, DEFAULT_WRITE_BIAS, Disconnect, DisconnectKind,
    Ending, Facade, FlushError, FlushOp, FrameBatch, FrameLimit, Handshake, IoGroup, LastClose,
    LinkCall, LinkError, PossiblyDelivered, Reconnect, RecvError, RecvOp, SendBatchOp, SendError,
    SendOp, ShutdownWriteOp, Stats, TlsError, TlsErrorKind, TryRecvError, TrySendError,
    UnsentFrame, Watermark, WatermarkEvents, WriteLatency, bytes, codec, is_driver_thread,
    transport,
};
