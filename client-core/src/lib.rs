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
//! # Layers
//!
//! The core is built in four layers. Each uses only the ones below it; where a lower layer must
//! reach up, it does so through a small trait it defines itself.
//!
//! ```text
//!  4  connection/  config  io_group  builder     the public handle and its settings
//!       │
//!  3  driver   transport/{tcp,tls,unix,mem}     I/O: the driver loop, the Link trait, links
//!       │
//!  2  conn/{send,send_batch,flush,close,         the shared connection object (its locks,
//!           connect,recv,link_call,watermarks}   its settings) and one module per operation
//!       │
//!  1  state/{machine,buffer,inbound,budget,      pure state: no I/O, no threads, no clocks;
//!            watermark,events,feed,backoff,      the waiter lines, admission, the bounds,
//!            effects,codec,batch,error,report}   the codec, errors and reports
//! ```
//!
//! 1. **`state`** decides. The connection's state machine keeps the outgoing buffer within its
//!    capacity, the FIFO lines of senders, flushes and receivers, and the life cycle from
//!    connecting to closed. Unit tests and the loom model drive it directly. A shared budget
//!    hands room to a connection through `budget::Member`; a change that needs the driver says
//!    so in its `Effects`, carried out through `effects::Notify`. It reads no clock: the time
//!    it judges deadlines by comes in the same `Effects`, from the layer above.
//! 2. **`conn`** shares. `ConnShared` holds the state behind its lock and the inbound buffer
//!    behind another; each operation ([`SendOp`], [`SendBatchOp`], [`FlushOp`], [`CloseOp`],
//!    [`ShutdownWriteOp`], [`Connected`], [`RecvOp`], [`LinkCall`]) lives in a module of its
//!    own with its `poll_with` and its cancel-safety argument.
//! 3. **`driver`** and **[`transport`]** move bytes: the [`transport::Link`] trait and the
//!    built-in links, and the `mio` loop that writes, reads, fires deadlines and runs link
//!    calls.
//! 4. **[`Connection`]**, [`Config`] and [`IoGroup`] are what applications and the facades
//!    hold: opening a connection wires the settings into the layers below.
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
//! use tidegate::Bytes;
//! use tidegate::{Config, Connection};
//! use tidegate::transport::mem::MemListener;
//!
//! let listener = MemListener::bind("core-example").unwrap();
//! let conn = Connection::open(&listener.url(), Config::new().capacity(64 * 1024)).unwrap();
//! let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
//! tidegate::block_on(async {
//!     conn.connected().await.unwrap();
//!     conn.send(Bytes::from_static(b"hello"), None).await.unwrap();
//!     conn.flush(None).await.unwrap();
//! });
//! let mut buf = [0u8; 16];
//! let n = peer.read_timeout(&mut buf, Duration::from_secs(5)).unwrap();
//! assert_eq!(&buf[..n], b"hello");
//! ```

// Two modules need `unsafe`, each with its arguments: `transport::acked`, whose one function
// reads the kernel's TCP counters through `getsockopt`, and `state::stage`, where senders copy
// small frames into the buffer's spare capacity without its lock. Everything else is free of
// it.
#![deny(unsafe_code)]

mod builder;
mod config;
mod conn;
mod connection;
mod driver;
mod io_group;
mod observe;
mod state;
pub mod transport;

pub use builder::{Builder, Facade};
pub use bytes::{self, Bytes};
pub use config::{
    Config, DEFAULT_CAPACITY, DEFAULT_INBOUND_CAPACITY, DEFAULT_WRITE_BIAS, EndpointOrder,
};
pub use conn::ConnectionRef;
pub use conn::byte_stream::ByteStream;
pub use conn::close::{CloseOp, ClosedOp, ShutdownWriteOp};
pub use conn::connect::Connected;
pub use conn::flush::FlushOp;
pub use conn::link_call::LinkCall;
pub use conn::recv::RecvOp;
pub use conn::send::SendOp;
pub use conn::send_batch::SendBatchOp;
pub use conn::watermarks::WatermarkEvents;
pub use connection::{Connection, ConnectionEvent, ConnectionEvents, LastClose};
pub use driver::is_driver_thread;
pub use io_group::IoGroup;
pub use state::backoff::Reconnect;
pub use state::batch::FrameBatch;
pub use state::budget::Budget;
pub use state::buffer::UnsentFrame;
pub use state::codec;
pub use state::error::{
    CloseError, ConnectError, Disconnect, DisconnectKind, FlushError, FrameLimit, LinkError,
    RecvError, SendError, TlsError, TlsErrorKind, TryRecvError, TrySendError,
};
pub use state::events::PossiblyDelivered;
#[cfg(fuzzing)]
#[doc(hidden)]
pub use state::fuzzing;
pub use state::handshake::Handshake;
pub use state::latency::WriteLatency;
pub use state::report::{CloseReport, Ending, Stats};
pub use state::watermark::Watermark;
