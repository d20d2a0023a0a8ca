//! Layer 1: the pure state of a connection. No I/O, no threads, no waiting, no clock read.
//!
//! Everything a connection decides is decided here, under its lock, by plain data structures
//! that unit tests and the loom model drive directly:
//!
//! - [`machine`]: the connection's state machine — the outgoing buffer's bound, the FIFO lines
//!   of waiting senders and flushes, admission, the life cycle from connecting to closed, and
//!   the report;
//! - [`buffer`]: the outgoing buffer, its chunks and their byte accounting;
//! - [`inbound`]: the bounded inbound buffer and its waiting receivers;
//! - [`budget`]: a memory budget shared by many connections, with its own FIFO line;
//! - [`stage`]: where small data frames enter while the lock is free, drained into the
//!   buffer by the lock's next holder;
//! - [`watermark`]: the high/low marks, published to their subscribers;
//! - [`events`]: the connection events (links up and lost, the fates of a lost link's
//!   frames, reconnect attempts), lossless and bounded;
//! - [`feed`]: the subscriber queues both of those publish to;
//! - [`backoff`]: the reconnect policy and the delays it draws;
//! - [`effects`]: what a change asks for once the lock is released (wakers, budget grants, a
//!   word to the driver), and the time as the caller tells it: deadlines and wait times are
//!   judged by the clock the layer above hands in, so tests and models can bring their own;
//! - [`codec`], [`handshake`], [`batch`], [`error`], [`report`]: the public value types and
//!   hooks.
//!
//! A module here never names a module of a layer above. Where it must reach up — a budget
//! handing room to a connection, a change that needs the driver — it does so through a trait
//! it defines itself ([`budget::Member`], [`effects::Notify`]).

pub(crate) mod backoff;
pub(crate) mod batch;
pub(crate) mod budget;
pub(crate) mod buffer;
pub mod codec;
pub(crate) mod effects;
pub(crate) mod error;
pub(crate) mod events;
pub(crate) mod feed;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod handshake;
pub(crate) mod inbound;
pub(crate) mod latency;
#[cfg(all(test, tidegate_loom))]
mod loom;
pub(crate) mod machine;
pub(crate) mod report;
// Senders copy into the buffer's spare capacity without its lock: see the module's docs.
#[allow(unsafe_code)]
pub(crate) mod stage;
pub(crate) mod watermark;
