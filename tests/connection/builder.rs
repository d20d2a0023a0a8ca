//! The one builder, seen through both facades: the same settings reach the connection whether
//! it is a blocking `Client` or an `AsyncClient`; `.config(..)` is a starting point (settings
//! after it are kept, settings before it are replaced); the settings only `Config` used to have
//! (`transport`, `socket_option`, `no_connect_timeout`) work through the facades; and each
//! facade crate re-exports what its users name.

use std::time::Duration;

use crate::support::{self, Watchdog};
use tidegate::transport::SocketOption;
use tidegate::transport::mem::{Mem, MemListener};
use tidegate::{AsyncClient, Builder, Client, Config, Connection, Facade};

const LONG: Duration = Duration::from_secs(20);

/// Settings written once, for any facade.
fn tuned<F: Facade>(builder: Builder<F>) -> Builder<F> {
    builder
        .send_timeout(Duration::from_secs(3))
        .socket_option(SocketOption::SendBufferSize(128 * 1024))
        .no_connect_timeout()
}

fn assert_tuned(config: &Config) {
    assert_eq!(config.send_timeout_duration(), Some(Duration::from_secs(3)));
    assert_eq!(config.socket_options(), [SocketOption::SendBufferSize(128 * 1024)]);
    assert_eq!(config.connect_timeout_duration(), None);
}

#[test]
fn the_same_settings_reach_both_facades() {
    let _watchdog = Watchdog::new(LONG, "same settings");
    let listener = MemListener::bind(&support::unique_name("builder-both")).unwrap();
    let base = Config::new().capacity(4096);

    let client = tuned(Client::builder().config(base.clone())).connect(&listener.url()).unwrap();
    assert_eq!(client.stats().capacity, 4096, "kept from the config");
    assert_tuned(client.connection().config());

    let connecting = tuned(AsyncClient::builder().config(base.clone())).connect(&listener.url());
    let client = futures::executor::block_on(connecting).unwrap();
    assert_eq!(client.stats().capacity, 4096, "kept from the config");
    assert_tuned(client.connection().config());

    let conn = tuned(Builder::<Connection>::from_config(base)).connect(&listener.url()).unwrap();
    assert_eq!(conn.stats().capacity, 4096);
    assert_tuned(conn.config());
}

#[test]
fn config_replaces_the_settings_made_before_it() {
    let _watchdog = Watchdog::new(LONG, "config replaces");
    let listener = MemListener::bind(&support::unique_name("builder-before")).unwrap();
    let client = tuned(Client::builder())
        .config(Config::new().capacity(2048))
        .connect(&listener.url())
        .unwrap();
    let config = client.connection().config();
    assert_eq!(config.capacity_bytes(), 2048);
    assert_eq!(config.send_timeout_duration(), None, "set before `config`: replaced");
    assert_eq!(config.socket_options(), []);
    assert_eq!(config.connect_timeout_duration(), Some(Duration::from_secs(10)));
}

#[test]
fn a_transport_set_on_the_builder_is_used_by_both_facades() {
    let _watchdog = Watchdog::new(LONG, "transport");
    let name = support::unique_name("builder-transport");
    let listener = MemListener::bind(&name).unwrap();
    // No transport is registered for this scheme: only the builder's can open it.
    let url = format!("builder-test://{name}");

    let client = Client::builder().transport(Mem).connect(&url).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    client.send("blocking").unwrap();
    client.flush().unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(peer.read_timeout(&mut buf, LONG).unwrap(), 8);
    assert_eq!(&buf, b"blocking");

    let client =
        futures::executor::block_on(AsyncClient::builder().transport(Mem).connect(&url)).unwrap();
    let peer = listener.accept_timeout(LONG).unwrap();
    futures::executor::block_on(async {
        client.send("async").await.unwrap();
        client.flush().await.unwrap();
    });
    let mut buf = [0u8; 5];
    assert_eq!(peer.read_timeout(&mut buf, LONG).unwrap(), 5);
    assert_eq!(&buf, b"async");
}

/// Compiles only if each facade crate alone names what its users need.
#[test]
fn each_facade_reexports_what_its_users_name() {
    #[allow(unused_imports)]
    use tidegate_async::{
        Async, AsyncClientBuilder, Budget, Builder, Bytes, CloseError, CloseReport, Config,
        ConnectError, Connection, DEFAULT_CAPACITY, Disconnect, DisconnectKind, Ending, Facade,
        FlushError, FrameBatch, IoGroup, LinkError, RecvError, SendError, Stats, TryRecvError,
        TrySendError, UnsentFrame, Watermark, WatermarkEvents, codec::LengthDelimited,
        transport::mem::MemListener,
    };
    #[allow(unused_imports)]
    use tidegate_blocking::{
        Blocking, Budget as _, Builder as _, Bytes as _, ClientBuilder, CloseError as _,
        CloseReport as _, Config as _, ConnectError as _, Connection as _, DEFAULT_CAPACITY as _,
        Disconnect as _, DisconnectKind as _, Ending as _, Facade as _, FlushError as _,
        FrameBatch as _, IoGroup as _, LinkError as _, RecvError as _, SendError as _, Stats as _,
        TryRecvError as _, TrySendError as _, UnsentFrame as _, Watermark as _,
        WatermarkEvents as _, codec::LengthDelimited as _, transport::mem::MemListener as _,
    };

    let _: ClientBuilder = Builder::<Blocking>::new().capacity(DEFAULT_CAPACITY);
    let _: AsyncClientBuilder = Builder::<Async>::from_config(Config::new());
}
