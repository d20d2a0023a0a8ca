//! The life of an [`AsyncClient`]'s links: the event subscription, [`EventStream`], what it
//! returns, and [`ClosedFuture`], the wait for the connection's end.

use std::pin::Pin;
use std::task::{Context, Poll};

use tidegate_core::{ClosedOp, ConnectionEvent, ConnectionEvents, Disconnect};

use crate::AsyncClient;
use crate::ops::op_future;

// Named in the docs only.
#[cfg(doc)]
use crate::AsyncClientBuilder;

impl AsyncClient {
    /// Subscribes to the events in the life of the connection's links (see
    /// [`ConnectionEvent`]), as a [`Stream`](futures_core::Stream): each link lost, with the
    /// fate of its frames, each reconnect attempt (with [`AsyncClientBuilder::reconnect`]),
    /// each link that comes up, and giving up. The stream gets the events from now on and
    /// ends after the connection ends.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::StreamExt;
    /// use tidegate::{AsyncClient, ConnectionEvent, Reconnect};
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let url = format!("tcp://{}", listener.local_addr().unwrap());
    /// tidegate::block_on(async {
    ///     let client =
    ///         AsyncClient::builder().reconnect(Reconnect::new()).connect(&url).await.unwrap();
    ///     let mut events = client.events();
    ///     // The server goes away: the link is lost, and reconnection begins.
    ///     drop(listener.accept().unwrap());
    ///     let event = events.next().await;
    ///     assert!(matches!(event, Some(ConnectionEvent::Disconnected { .. })), "{event:?}");
    ///     let event = events.next().await;
    ///     assert!(matches!(event, Some(ConnectionEvent::Reconnecting { attempt: 1, .. })));
    /// });
    /// ```
    pub fn events(&self) -> EventStream {
        EventStream { events: self.conn.events() }
    }

    /// Waits until the connection has ended for good: after a close, after its link failed
    /// with reconnection off, or after reconnection gave up. Resolves to `None` for an
    /// orderly close, else to the cause.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::AsyncClient;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-closed-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
    ///     client.close().await.unwrap();
    ///     assert!(client.closed().await.is_none(), "an orderly close has no cause");
    /// });
    /// ```
    pub fn closed(&self) -> ClosedFuture<'_> {
        ClosedFuture { op: self.conn.closed(), done: false }
    }
}

/// A [`Stream`](futures_core::Stream) of a connection's events, returned by
/// [`AsyncClient::events`].
///
/// Yields every event after the subscription, in order, and ends once the connection has
/// ended and every event was read. It loses none: when a subscriber lets its queue fill, the
/// connection holds its next reconnect attempt back until the subscriber reads (see
/// [`ConnectionEvents`]). Dropping it unsubscribes.
///
/// # Examples
///
/// See [`AsyncClient::events`].
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct EventStream {
    events: ConnectionEvents,
}

impl futures_core::Stream for EventStream {
    type Item = ConnectionEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ConnectionEvent>> {
        self.get_mut().events.poll_next_with(cx.waker())
    }
}

/// Waits for a connection to end for good, returned by [`AsyncClient::closed`]. Resolves to
/// `None` after an orderly close, else to the cause.
///
/// # Cancel safety
///
/// Dropping it only stops the waiting.
///
/// # Panics
///
/// Polling after it returned `Ready` panics.
///
/// # Examples
///
/// ```
/// use std::future::Future;
/// use std::task::{Context, Waker};
/// use tidegate::{AsyncClient, ClosedFuture};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("async-closed-future-example").unwrap();
/// tidegate::block_on(async {
///     let client = AsyncClient::connect(&listener.url()).await.unwrap();
///     let mut closed: ClosedFuture<'_> = client.closed();
///     let mut cx = Context::from_waker(Waker::noop());
///     assert!(std::pin::Pin::new(&mut closed).poll(&mut cx).is_pending(), "still open");
/// });
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct ClosedFuture<'a> {
    op: ClosedOp<'a>,
    done: bool,
}

op_future!(ClosedFuture<'_>, Option<Disconnect>);
