//! Property tests of a connection against an exact reference model (random sequences of
//! sends, cancels, stalls, closes and peer endings, with `proptest`). One test crate for the
//! area; the module was a test crate of its own before.

#[path = "../support/mod.rs"]
mod support;

mod prop_connection;
