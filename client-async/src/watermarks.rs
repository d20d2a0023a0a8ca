//! The crossings of an [`AsyncClient`]'s buffer watermarks: the subscription, and
//! [`WatermarkStream`], what it returns.

use std::pin::Pin;
use std::task::{Context, Poll};

use tidegate_core::{Watermark, WatermarkEvents};

use crate::AsyncClient;

// Named in the docs only.
#[cfg(doc)]
use crate::AsyncClientBuilder;

impl AsyncClient {
    /// Subscribes to the crossings of the buffer's watermarks (set with
    /// [`AsyncClientBuilder::watermarks`]), as a [`Stream`](futures_core::Stream).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use futures::StreamExt;
    /// use tidegate::{AsyncClient, Watermark};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("async-watermarks-example").unwrap();
    /// tidegate::block_on(async {
    ///     let client = AsyncClient::builder()
    ///         .capacity(100)
    ///         .watermarks(80, 20)
    ///         .connect(&listener.url())
    ///         .await
    ///         .unwrap();
    ///     let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    ///     peer.pause();
    ///     let mut events = client.watermarks();
    ///     client.send(vec![0u8; 90]).await.unwrap();
    ///     assert_eq!(events.next().await, Some(Watermark::High));
    ///     peer.resume();
    ///     assert_eq!(events.next().await, Some(Watermark::Low));
    /// });
    /// ```
    pub fn watermarks(&self) -> WatermarkStream {
        WatermarkStream { events: self.conn.watermarks() }
    }
}

/// A [`Stream`](futures_core::Stream) of a connection's watermark crossings, returned by
/// [`AsyncClient::watermarks`].
///
/// Yields `High` and `Low` alternately, once per crossing, in order, and ends once the
/// connection has ended and every crossing was read. Dropping it unsubscribes.
///
/// # Examples
///
/// See [`AsyncClient::watermarks`].
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct WatermarkStream {
    events: WatermarkEvents,
}

impl futures_core::Stream for WatermarkStream {
    type Item = Watermark;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Watermark>> {
        self.get_mut().events.poll_next_with(cx.waker())
    }
}
