//! The shared core of tidegate: the bounded outgoing buffer, the FIFO queue of waiting senders,
//! the transports and the I/O driver.
//!
//! The core never parks a caller. Every operation that may have to wait is a [`Future`] that
//! registers the waker it is polled with; the driver thread wakes it when the operation can
//! complete or its deadline passes. The async facade (`tidegate-async`) awaits those futures on
//! any executor; the blocking facade (`tidegate-blocking`) polls them with a waker that unparks
//! its thread. The send path — fast path, waiting in line, timing out, giving up, closing — is
//! written once, here.
//!
//! # Guarantees
//!
//! 1. **Bound.** The bytes in a connection's outgoing buffer never exceed its capacity, fixed at
//!    open. A frame larger than the capacity is refused at once.
//! 2. **Strict FIFO.** Waiting senders are served in arrival order; a newcomer, even a
//!    `try_send`, never overtakes a waiting sender.
//! 3. **Atomic hand-off.** Freed space is granted and the waiting frame moved into the buffer
//!    in one step under the connection's lock.
//! 4. **Clean give-up.** A sender that times out, is cancelled or is closed leaves the queue
//!    with its frame, and the next one is reconsidered at once. No capacity leaks.
//! 5. **No lost wake-up, no spinning.** A waiting sender uses no CPU and is woken when its frame
//!    was accepted or its wait ended.
//! 6. **Timeouts always fire,** whether or not space is ever freed: the driver fires them.
//! 7. **No interleaving.** Frames go out whole and in the order they were accepted.
//! 8. **Nothing is lost silently.** On close or disconnect every frame not fully written is
//!    returned: to its sender in the error, or in the [`CloseReport`].
//!
//! With a shared [`Budget`], a data frame must also fit the budget; senders waiting on it are
//! served in order across the connections that share it, under the same give-up rules.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use tidegate_core::{Config, Connection};
//! use tidegate_core::transport::mem::MemListener;
//!
//! let listener = MemListener::bind("core-example").unwrap();
//! let conn = Connection::open(&listener.url(), Config::new().capacity(64 * 1024)).unwrap();
//! let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
//! futures::executor::block_on(async {
//!     conn.connected().await.unwrap();
//!     conn.send(Bytes::from_static(b"hello"), None).await.unwrap();
//!     conn.flush(None).await.unwrap();
//! });
//! let mut buf = [0u8; 16];
//! let n = peer.read_timeout(&mut buf, Duration::from_secs(5)).unwrap();
//! assert_eq!(&buf[..n], b"hello");
//! ```

#![forbid(unsafe_code)]

mod batch;
mod budget;
mod buffer;
mod builder;
pub mod codec;
mod config;
mod conn;
mod driver;
mod error;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
mod inbound;
#[cfg(all(test, tidegate_loom))]
mod loom;
mod report;
mod state;
pub mod transport;
mod watermark;

pub use batch::FrameBatch;
pub use budget::Budget;
pub use buffer::UnsentFrame;
pub use builder::{Builder, Facade};
pub use bytes::Bytes;
pub use config::{Config, DEFAULT_CAPACITY, DEFAULT_INBOUND_CAPACITY, DEFAULT_WRITE_BIAS};
pub use conn::{
    CloseOp, Connected, Connection, FlushOp, LastClose, LinkCall, RecvOp, SendBatchOp, SendOp,
    ShutdownWriteOp,
};
pub use driver::{IoGroup, is_driver_thread};
pub use error::{
    CloseError, ConnectError, Disconnect, DisconnectKind, FlushError, LinkError, RecvError,
    SendError, TryRecvError, TrySendError,
};
pub use report::{CloseReport, Ending, Stats};
pub use watermark::{Watermark, WatermarkEvents};
