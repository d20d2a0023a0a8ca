//! Integration tests of the transports: socket options, user transports chosen by scheme or
//! per connection, `unix://`, TLS, and fault injection on a real TCP path through a proxy.
//! One test crate for the area, so the library is linked once for all of them; each module was
//! a test crate of its own before.

#[path = "../support/proxy.rs"]
mod proxy;
#[path = "../support/mod.rs"]
mod support;

mod acknowledged;
mod endpoints;
mod events;
mod fault_injection;
mod handshake;
mod liveness;
mod reconnect;
mod transport_options;
mod transport_plugins;
mod transport_tls;
