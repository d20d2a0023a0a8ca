//! tidegate puts a producer's frames on the network through a **bounded outgoing buffer**.
//!
//! When the peer reads slower than the application writes, memory stays bounded and producers
//! pause: a blocking [`Client`] parks the sending thread, an [`AsyncClient`] returns a future
//! that stays pending, and both wake when the I/O driver has made room. Timeouts still fire,
//! waiting senders are served in arrival order, and nothing is lost silently: a frame that
//! cannot be sent comes back inside the error, and [`Client::close`] hands back every frame that
//! was not written.
//!
//! This package gathers the others:
//!
//! - `tidegate-core` — the buffer, the waiter queue, the [`transport`]s and the I/O driver;
//! - `tidegate-blocking` — [`Client`], for threads;
//! - `tidegate-async` — [`AsyncClient`], for async tasks on any executor.
//!
//! Both facades are configured with the core's one [`Builder`]: [`ClientBuilder`] is
//! `Builder<`[`Blocking`]`>` and [`AsyncClientBuilder`] is `Builder<`[`Async`]`>`, so they have
//! the same settings, every one of [`Config`]'s.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use tidegate::Client;
//! use tidegate::transport::mem::MemListener;
//!
//! let listener = MemListener::bind("tidegate-example").unwrap();
//! let client = Client::builder().capacity(64 * 1024).connect(&listener.url()).unwrap();
//! let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
//! client.send("hello").unwrap();
//! client.flush().unwrap();
//! let mut buf = [0u8; 5];
//! assert_eq!(peer.read_timeout(&mut buf, Duration::from_secs(5)).unwrap(), 5);
//! assert_eq!(&buf, b"hello");
//! ```

#![forbid(unsafe_code)]

pub use tidegate_async::{
    Async, AsyncClient, AsyncClientBuilder, CloseFuture, Connecting, FlushFuture, FrameSink,
    Incoming, RecvFuture, SendFuture, ShutdownWriteFuture, SinkError, WatermarkStream,
};
pub use tidegate_blocking::{Blocking, Client, ClientBuilder, Watermarks, block_on};
pub use tidegate_core::transport::{Link, SocketOption};
pub use tidegate_core::{
    Budget, Builder, Bytes, CloseError, CloseOp, CloseReport, Config, ConnectError, Connected,
    Connection, ConnectionRef, DEFAULT_CAPACITY, DEFAULT_INBOUND_CAPACITY, DEFAULT_WRITE_BIAS,
    Disconnect, DisconnectKind, Ending, Facade, FlushError, FlushOp, FrameBatch, IoGroup,
    LastClose, LinkCall, LinkError, RecvError, RecvOp, SendBatchOp, SendError, SendOp,
    ShutdownWriteOp, Stats, TryRecvError, TrySendError, UnsentFrame, Watermark, WatermarkEvents,
    bytes, codec, is_driver_thread, transport,
};

/// The README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
