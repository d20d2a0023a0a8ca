//! Integration tests of the async facade, `AsyncClient`: the backpressure scenarios on every
//! executor, wake-ups, fused futures, cancellation (one at a time and in a storm), the byte
//! stream (`AsyncRead`/`AsyncWrite`), and mixed
//! async and blocking load. One test crate for the area, so the library is linked once for all
//! of them; each module was a test crate of its own before.

#[path = "../support/mod.rs"]
mod support;

mod async_cancel_storm;
mod async_fused;
mod async_mixed_load;
mod async_scenarios;
mod async_wake;
mod byte_stream;
mod send_cancel;
