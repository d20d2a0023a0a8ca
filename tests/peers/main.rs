//! End-to-end tests against real foreign peers, started by the tests on free loopback ports:
//! `redis-server`, `openssl s_server` and `socat`, and plain sockets that reset or half-close;
//! and the connection as a byte stream into and out of socat.
//! Each test is skipped when its program is missing, except under `CI=true`. One test crate
//! for the area, so the library is linked once for all of them; each module was a test crate of
//! its own before.
//!
//! Run them alone with `cargo test --test peers`; `cargo test --test peers peer_redis` runs one
//! module.

#[path = "../support/mod.rs"]
mod support;

mod peer_byte_stream;
mod peer_endings;
mod peer_halfclose;
mod peer_redis;
mod peer_redis_restart;
mod peer_tls;
mod peer_tls_acked;
mod peer_tls_handshake;
