//! Integration tests of the connection itself, through either facade: the one builder, the
//! parity of the facades, batches, the shared budget, the codec, framing on the send side,
//! the urgent lane, the bound on waiters, watermarks, link calls, the driver's turns, I/O
//! groups, the counters of `Stats`, the auto traits of the handles, and a check of the test
//! support. One test crate for the area, so the library is linked once for all of them; each
//! module was a test crate of its own before.

#[path = "../support/mod.rs"]
mod support;

mod auto_traits;
mod batch;
mod budget;
mod builder;
mod codec;
mod driver_turns;
mod framing_send;
mod io_group;
mod link_calls;
mod observe;
mod parity;
mod stats;
mod support_check;
mod urgent;
mod waiter_bound;
mod watermarks;
