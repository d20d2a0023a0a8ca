//! Compile-time checks that the handles, futures and sinks of both facades are `Send` (and
//! `Sync` where sharing them by reference makes sense), so they can move into spawned tasks and
//! threads on any executor; and that the send future is `Unpin`, so `select!` can race
//! `&mut fut` and call `cancel` on it afterwards. A regression here is a compile error.

use tidegate_async::{
    AsyncClient, AsyncClientBuilder, Bytes, CloseFuture, Connecting, FlushFuture, FrameSink,
    SendFuture, SinkError,
};
use tidegate_blocking::{Client, ClientBuilder};
use tidegate_core::{CloseReport, ConnectError, Connection, FlushError, SendError, TrySendError};

fn send<T: Send>() {}
fn sync<T: Sync>() {}
fn unpin<T: Unpin>() {}
fn send_value<T: Send>(_: &T) {}

/// Never run: only its compiling matters.
#[allow(dead_code, clippy::let_underscore_future)]
fn futures_of_async_code_are_send(client: AsyncClient, sink: FrameSink) {
    // What a user writes inside `tokio::spawn(async move { … })` must be `Send`.
    let task = async move {
        client.send("x").await.unwrap();
        client.send_timeout("y", std::time::Duration::from_secs(1)).await.unwrap();
        client.flush().await.unwrap();
        let _ = client.close().await.unwrap();
    };
    send_value(&task);
    let forward = futures::StreamExt::forward(
        futures::stream::iter([Ok::<Bytes, SinkError>(Bytes::new())]),
        sink,
    );
    send_value(&forward);
    let connect = async { AsyncClient::connect("mem://nowhere").await };
    send_value(&connect);
}

#[test]
fn handles_futures_and_sinks_are_send_and_sync() {
    // Handles: shared between tasks and threads.
    send::<AsyncClient>();
    sync::<AsyncClient>();
    send::<AsyncClientBuilder>();
    sync::<AsyncClientBuilder>();
    send::<Client>();
    sync::<Client>();
    send::<ClientBuilder>();
    sync::<ClientBuilder>();
    send::<Connection>();
    sync::<Connection>();

    // Futures: moved into tasks; `Sync` too, so a task holding one across an await is `Sync`.
    send::<Connecting>();
    sync::<Connecting>();
    send::<SendFuture<'static>>();
    sync::<SendFuture<'static>>();
    send::<FlushFuture<'static>>();
    sync::<FlushFuture<'static>>();
    send::<CloseFuture<'static>>();
    sync::<CloseFuture<'static>>();

    // The sink: moved into a task with `forward`.
    send::<FrameSink>();
    sync::<FrameSink>();

    // `select!` on `&mut fut` needs `Unpin`.
    unpin::<SendFuture<'static>>();
    unpin::<FlushFuture<'static>>();
    unpin::<CloseFuture<'static>>();
    unpin::<Connecting>();
    unpin::<FrameSink>();

    // Errors and reports cross threads and go into `Box<dyn Error + Send + Sync>`.
    fn error<E: std::error::Error + Send + Sync + 'static>() {}
    error::<SendError<Bytes>>();
    error::<TrySendError<Bytes>>();
    error::<FlushError>();
    error::<ConnectError>();
    error::<SinkError>();
    send::<CloseReport>();
    sync::<CloseReport>();
}
