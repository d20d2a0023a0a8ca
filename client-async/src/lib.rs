//! The async facade of tidegate: [`AsyncClient::send`] returns a future that stays pending while
//! the connection's outgoing buffer is full, and resolves once the frame is in the buffer.
//!
//! An [`AsyncClient`] is a cheap, cloneable, `Send + Sync` handle. Every clone, every
//! [`FrameSink`] made from it, and every blocking `tidegate::Client` built on the same
//! [`Connection`] share one bounded buffer and queue in **one FIFO line** when it is full. A
//! waiting task uses no CPU: its future registers the task's [`Waker`](std::task::Waker) with
//! the core, and the I/O driver wakes it once — when its frame has been moved into the buffer,
//! or when its wait ended (timeout, close, disconnect). Every error carries the frame back.
//!
//! This crate is a thin layer over `tidegate-core`. The futures here wrap the core's
//! operations ([`SendOp`], [`FlushOp`], [`CloseOp`]); the waiting rules, the buffer, the
//! driver and the [`Builder`] live in the core, and the blocking facade uses the very same ones.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use tidegate::AsyncClient;
//! use tidegate::transport::mem::MemListener;
//!
//! let listener = MemListener::bind("async-crate-example").unwrap();
//! tidegate::block_on(async {
//!     let client = AsyncClient::builder()
//!         .capacity(64 * 1024)
//!         .send_timeout(Duration::from_secs(5))
//!         .connect(&listener.url())
//!         .await?;
//!     for i in 0..10 {
//!         client.send(format!("frame {i}\n")).await?;
//!     }
//!     let report = client.close().await?;
//!     assert!(report.is_clean());
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })
//! .unwrap();
//! ```
//!
//! # Why no runtime dependency?
//!
//! The facade needs nothing from a runtime: no timer, no reactor, no spawner. Readiness comes
//! from the core's I/O driver thread, which calls [`Waker::wake`](std::task::Waker::wake) on
//! the waker the future was last polled with — and every executor (tokio, async-std, smol,
//! `futures::executor`, a hand-written one) hands its futures a waker. Depending on one runtime
//! would force it on every user and would not make the facade any faster: the I/O happens on
//! the driver thread in any case. Besides the core, `bytes` and `log`, the only dependencies are
//! `futures-core` and `futures-sink`, for the [`FusedFuture`](futures_core::FusedFuture) and
//! [`Sink`](futures_sink::Sink) traits.
//!
//! # How do timeouts fire?
//!
//! A send with a timeout ([`AsyncClient::send_timeout`], or the default of
//! [`AsyncClientBuilder::send_timeout`]) hands its deadline to the core when it starts
//! waiting. The core's I/O driver keeps the deadlines of all waiting senders and flushes; when
//! one passes, the driver takes the frame out of the line under the connection's lock and wakes
//! the task, whose next poll returns [`SendError::Timeout`] with the frame. So timeouts fire
//! under any executor, even one without timers (`futures::executor::block_on`), and they fire
//! whether or not space is ever freed. Wrapping a send in a runtime's own timeout (such as
//! `tokio::time::timeout`) also works: that is a cancellation, see below.
//!
//! # Cancel safety
//!
//! Dropping a pending [`SendFuture`] is safe and leaks nothing: the sender leaves the line
//! under the connection's lock, the next waiter is reconsidered at once, and no capacity stays
//! reserved. What happens to the frame depends on where it is at that instant, and there are
//! only two places it can be:
//!
//! - **still waiting in line** (or the future was never polled): the frame is dropped with the
//!   future and is **never sent**;
//! - **already moved into the buffer** by the driver (this hand-off can happen on the driver
//!   thread just before the drop, even if the future was not polled again): the frame **will be
//!   sent**, in its place in the FIFO order.
//!
//! To find out which, and to get the frame back, call [`SendFuture::cancel`] instead of
//! dropping the future: `Some(frame)` means it was not sent and never will be, `None` means it
//! is in the buffer (or the future had already completed). With `select!`, race `&mut fut`
//! and call `cancel` on the loser. Dropping a [`FlushFuture`] only stops waiting. Dropping a
//! [`CloseFuture`] after its first poll does not stop the close.
//!
//! # Why does the sink not reserve space in `poll_ready`?
//!
//! A [`FrameSink`] puts each frame into the connection's FIFO line in
//! [`start_send`](futures_sink::Sink::start_send), and `poll_ready` only waits until the
//! previous frame of the same sink has been accepted. So `poll_ready` never promises space
//! that another producer could take between `poll_ready` and `start_send`: no space is
//! promised early at all, and the order of frames is the order in which they joined the line,
//! across sinks, clients and threads.

#![forbid(unsafe_code)]

mod byte_stream;
mod client;
mod ending;
mod events;
mod ops;
mod receiving;
mod recv;
mod sending;
mod sink;
mod split;
mod watermarks;

pub use byte_stream::AsyncByteStream;
pub use client::{Async, AsyncClient, AsyncClientBuilder, Connecting};
pub use events::{ClosedFuture, EventStream};
pub use ops::{
    CloseFuture, FlushFuture, OwnedSendFuture, SendBatchFuture, SendFuture, ShutdownWriteFuture,
};
pub use recv::{Incoming, RecvFuture};
pub use sink::{FrameSink, SinkError};
pub use split::{AsyncRecvHalf, AsyncSendHalf};
pub use watermarks::WatermarkStream;
// Everything a user of this crate names, so that it is the only dependency they need: the
// settings, the errors and reports, the core's connection and its operations (reached through
// `AsyncClient::connection`), framing and transports.
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
