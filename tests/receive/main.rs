//! Integration tests of the receive side: waiting and ending rules, framed receiving, the
//! hand-off between waiting receivers, inbound pushback and its memory bound, discarding, and
//! write biasing under a full-duplex flood. One test crate for the area, so the library is
//! linked once for all of them; each module was a test crate of its own before.

#[path = "../support/mod.rs"]
mod support;

mod recv_discard;
mod recv_eof;
mod recv_framing;
mod recv_handoff;
mod recv_pushback;
mod recv_write_bias;
