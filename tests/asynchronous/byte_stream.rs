//! `AsyncByteStream` on a `mem://` peer: a write that returned `Pending` keeps its frame in
//! line and must be offered again with the same bytes; flush includes it; reads take at most
//! the caller's buffer and, framed, hand out the frames' payloads back to back.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tidegate::AsyncClient;
use tidegate::codec::LengthDelimited;
use tidegate::transport::mem::MemListener;

use crate::support::{self, Watchdog};

const LONG: Duration = Duration::from_secs(20);

#[test]
fn a_pending_write_keeps_its_place_and_wants_the_same_bytes_again() {
    let _watchdog = Watchdog::new(LONG, "pending write");
    let listener = MemListener::bind(&support::unique_name("byte-stream-pending")).unwrap();
    futures::executor::block_on(async {
        let client = AsyncClient::builder().capacity(8).connect(&listener.url()).await.unwrap();
        let peer = listener.accept_timeout(LONG).unwrap();
        peer.pause();
        let mut stream = client.byte_stream();
        let mut cx = Context::from_waker(Waker::noop());
        let mut pin = Pin::new(&mut stream);
        assert!(matches!(pin.as_mut().poll_write(&mut cx, b"12345678"), Poll::Ready(Ok(8))));
        // Full: the next write's frame joins the line and the write is pending.
        assert!(pin.as_mut().poll_write(&mut cx, b"abcd").is_pending());
        assert_eq!(client.stats().waiters, 1);
        // Other bytes are refused: those of the pending write wait in line.
        let refused = pin.as_mut().poll_write(&mut cx, b"wxyz");
        let Poll::Ready(Err(err)) = refused else { panic!("expected a refusal, got {refused:?}") };
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        peer.resume();
        // The same bytes (and more after them): the pending frame's count, once it is in.
        let written = std::future::poll_fn(|cx| pin.as_mut().poll_write(cx, b"abcdEF")).await;
        assert_eq!(written.unwrap(), 4);
        stream.write_all(b"EF").await.unwrap();
        stream.flush().await.unwrap();
        assert_eq!(client.stats().bytes_written, 14);
        let mut got = vec![0u8; 14];
        let mut read = 0;
        while read < got.len() {
            read += peer.read_timeout(&mut got[read..], LONG).unwrap();
        }
        assert_eq!(got, b"12345678abcdEF");
        assert!(client.close().await.unwrap().is_clean());
    });
}

#[test]
fn a_flush_includes_a_pending_write() {
    let _watchdog = Watchdog::new(LONG, "flush after pending");
    let listener = MemListener::bind(&support::unique_name("byte-stream-flush")).unwrap();
    futures::executor::block_on(async {
        let client = AsyncClient::builder().capacity(4).connect(&listener.url()).await.unwrap();
        let peer = listener.accept_timeout(LONG).unwrap();
        peer.pause();
        let mut stream = client.byte_stream();
        stream.write_all(b"full").await.unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        assert!(Pin::new(&mut stream).poll_write(&mut cx, b"more").is_pending());
        peer.resume();
        stream.flush().await.unwrap();
        assert_eq!(client.stats().bytes_written, 8, "the flush waited for the pending frame");
        // The pending write then completes at once with its count.
        let again = Pin::new(&mut stream).poll_write(&mut cx, b"more");
        assert!(matches!(again, Poll::Ready(Ok(4))), "{again:?}");
        assert!(client.close().await.unwrap().is_clean());
        let mut got = [0u8; 8];
        let mut read = 0;
        while read < got.len() {
            read += peer.read_timeout(&mut got[read..], LONG).unwrap();
        }
        assert_eq!(&got, b"fullmore", "the pending write was sent once, in order");
    });
}

#[test]
fn framed_reads_hand_out_the_payloads_back_to_back_at_most_a_buffer_at_a_time() {
    let _watchdog = Watchdog::new(LONG, "framed reads");
    let listener = MemListener::bind(&support::unique_name("byte-stream-framed")).unwrap();
    futures::executor::block_on(async {
        let connecting =
            AsyncClient::builder().framing(LengthDelimited::new()).connect(&listener.url());
        let client = connecting.await.unwrap();
        let peer = listener.accept_timeout(LONG).unwrap();
        for payload in [&b"first frame"[..], b"2nd", b"the third one"] {
            peer.write(&(payload.len() as u32).to_be_bytes());
            peer.write(payload);
        }
        peer.close();
        let mut stream = client.byte_stream();
        let mut got = Vec::new();
        let mut buf = [0u8; 5];
        loop {
            let n = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_read(cx, &mut buf))
                .await
                .unwrap();
            if n == 0 {
                break;
            }
            assert!(n <= 5);
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"first frame2ndthe third one");
    });
}
