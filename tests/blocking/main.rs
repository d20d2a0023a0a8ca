//! Integration tests of the blocking facade, `Client`: backpressure, FIFO order, timeouts,
//! flush, close and drop, disconnection, errors, byte-exact delivery, and blocking calls made
//! on an I/O driver thread. One test crate for the area, so the library is linked once for all
//! of them; each module was a test crate of its own before.
//!
//! The CPU-time tests (`tests/blocking_cpu.rs`) stay a crate of their own: they measure the
//! whole process, which the tests here would share.

#[path = "../support/mod.rs"]
mod support;

mod blocking_backpressure;
mod blocking_close;
mod blocking_delivery;
mod blocking_disconnect;
mod blocking_errors;
mod blocking_fifo;
mod blocking_flush;
mod blocking_timeout;
mod driver_thread_guard;
