//! Calls on a live link through the I/O driver: they run on the driver thread while the
//! connection is up, and fail with the reason once it has ended.

use std::time::Duration;

use tidegate::transport::SocketOption;
use tidegate::transport::mem::MemListener;
use tidegate::{Client, DisconnectKind, LinkError};

use crate::support;

#[test]
fn a_call_runs_on_the_driver_thread() {
    let listener = MemListener::bind(&support::unique_name("link-call")).unwrap();
    let client = Client::connect(&listener.url()).unwrap();
    let here = std::thread::current().id();
    let (name, id) = client
        .call_link(|_| {
            let me = std::thread::current();
            (me.name().map(str::to_owned), me.id())
        })
        .unwrap();
    assert_ne!(id, here);
    assert_eq!(name.as_deref(), Some("tidegate-io"));
}

#[test]
fn a_call_after_close_fails_as_closed() {
    let listener = MemListener::bind(&support::unique_name("link-call-closed")).unwrap();
    let client = Client::connect(&listener.url()).unwrap();
    assert!(client.close().expect("close").is_clean());
    assert!(matches!(client.call_link(|_| ()), Err(LinkError::Closed)));
    let err = client.set_option(SocketOption::NoDelay(true)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotConnected);
}

#[test]
fn a_call_after_a_reset_names_the_cause() {
    let listener = MemListener::bind(&support::unique_name("link-call-reset")).unwrap();
    let client = Client::connect(&listener.url()).unwrap();
    let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    peer.reset();
    // The driver notices the reset when it next reads or writes: a send makes it look.
    let ended = support::wait_until(Duration::from_secs(10), || {
        let _ = client.try_send("probe");
        client.connection().is_closed()
    });
    assert!(ended, "the reset was not noticed");
    match client.call_link(|_| ()) {
        Err(LinkError::Disconnected(cause)) => assert_eq!(cause.kind(), DisconnectKind::Reset),
        other => panic!("expected a disconnect, got {other:?}"),
    }
}

#[test]
fn an_option_the_link_lacks_is_unsupported() {
    let listener = MemListener::bind(&support::unique_name("link-call-unsupported")).unwrap();
    let client = Client::connect(&listener.url()).unwrap();
    let err = client.set_option(SocketOption::NoDelay(true)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
}
