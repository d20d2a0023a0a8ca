//! The owned split of a [`Client`]: [`SendHalf`] sends, [`RecvHalf`] receives, each with its
//! own close, for a program that gives the two directions to two threads.

use std::io;
use std::time::{Duration, Instant};

use tidegate_core::{
    Bytes, CloseError, CloseReport, Connection, FlushError, FrameBatch, RecvError, SendError,
    Stats, TryRecvError, TrySendError,
};

use crate::Client;

/// Methods of a half that do what the [`Client`] method of the same name does.
macro_rules! delegate {
    ($( $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty; )*) => {
        $(
            #[doc = concat!("As [`Client::", stringify!($name), "`], which see for its errors, how it blocks, and an example.")]
            pub fn $name(&self, $($arg: $ty),*) -> $ret {
                self.client.$name($($arg),*)
            }
        )*
    };
}

impl Client {
    /// Splits the client into a sending half and a receiving half that own their handles,
    /// for two threads: one sends, one receives. Each has its own close:
    /// [`SendHalf::close`] is a half-close (the peer sees the end of what was sent, and
    /// receiving goes on), [`RecvHalf::close`] closes the connection.
    ///
    /// Other clones of the client, if any, keep working: the halves are handles of the same
    /// connection, in the same FIFO line.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-split-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.hold_open();
    /// let (tx, rx) = client.into_split();
    /// let sender = std::thread::spawn(move || {
    ///     tx.send("question").unwrap();
    ///     tx.close().unwrap(); // the half-close: the peer sees our end
    /// });
    /// sender.join().unwrap();
    /// peer.write(b"answer");
    /// peer.close();
    /// assert_eq!(rx.recv().unwrap().unwrap(), "answer");
    /// assert_eq!(rx.recv().unwrap(), None);
    /// assert!(rx.close().unwrap().is_clean());
    /// ```
    pub fn into_split(self) -> (SendHalf, RecvHalf) {
        (SendHalf { client: self.clone() }, RecvHalf { client: self })
    }
}

/// The sending half of a [`Client`], from [`Client::into_split`]: every way to send and
/// flush, and a close that is a half-close. `io::Write` as the client's.
///
/// # Examples
///
/// See [`Client::into_split`].
#[derive(Debug)]
pub struct SendHalf {
    client: Client,
}

impl SendHalf {
    delegate! {
        send(frame: impl Into<Bytes>) -> Result<(), SendError<Bytes>>;
        send_timeout(frame: impl Into<Bytes>, timeout: Duration) -> Result<(), SendError<Bytes>>;
        send_deadline(frame: impl Into<Bytes>, deadline: Instant) -> Result<(), SendError<Bytes>>;
        try_send(frame: impl Into<Bytes>) -> Result<(), TrySendError<Bytes>>;
        send_batch(batch: FrameBatch) -> Result<(), SendError<FrameBatch>>;
        send_batch_timeout(batch: FrameBatch, timeout: Duration) -> Result<(), SendError<FrameBatch>>;
        send_batch_deadline(batch: FrameBatch, deadline: Instant) -> Result<(), SendError<FrameBatch>>;
        try_send_batch(batch: FrameBatch) -> Result<(), TrySendError<FrameBatch>>;
        send_urgent(frame: impl Into<Bytes>) -> Result<(), SendError<Bytes>>;
        try_send_urgent(frame: impl Into<Bytes>) -> Result<(), TrySendError<Bytes>>;
        flush() -> Result<(), FlushError>;
        flush_timeout(timeout: Duration) -> Result<(), FlushError>;
        flush_deadline(deadline: Instant) -> Result<(), FlushError>;
        stats() -> Stats;
        is_closed() -> bool;
        connection() -> &Connection;
    }

    /// Ends the sending: a half-close, as [`Client::shutdown_write`] — new sends are refused,
    /// what is buffered is drained, then the write side ends (for TCP, a FIN after the last
    /// byte). The [`RecvHalf`] goes on receiving until the peer ends its side.
    ///
    /// # Errors
    ///
    /// As [`Client::shutdown_write`].
    ///
    /// # Blocking
    ///
    /// Until the buffer has drained and the write side has ended.
    ///
    /// # Examples
    ///
    /// See [`Client::into_split`].
    pub fn close(&self) -> Result<(), FlushError> {
        self.client.shutdown_write()
    }

    /// Like [`SendHalf::close`], giving up after `timeout` (the half-close goes on).
    ///
    /// # Errors
    ///
    /// As [`Client::shutdown_write_timeout`].
    ///
    /// # Blocking
    ///
    /// For at most `timeout`.
    ///
    /// # Examples
    ///
    /// See [`Client::into_split`].
    pub fn close_timeout(&self, timeout: Duration) -> Result<(), FlushError> {
        self.client.shutdown_write_timeout(timeout)
    }
}

/// Each `write` sends one frame, as the client's `io::Write` does.
impl io::Write for SendHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::Write::write(&mut self.client, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        io::Write::flush(&mut self.client)
    }
}

/// The receiving half of a [`Client`], from [`Client::into_split`]: every way to receive,
/// and the close of the connection. `io::Read` as the client's.
///
/// # Examples
///
/// See [`Client::into_split`].
#[derive(Debug)]
pub struct RecvHalf {
    client: Client,
}

impl RecvHalf {
    delegate! {
        recv() -> Result<Option<Bytes>, RecvError>;
        recv_timeout(timeout: Duration) -> Result<Option<Bytes>, RecvError>;
        recv_deadline(deadline: Instant) -> Result<Option<Bytes>, RecvError>;
        try_recv() -> Result<Option<Bytes>, TryRecvError>;
        close() -> Result<CloseReport, CloseError>;
        close_timeout(timeout: Duration) -> Result<CloseReport, CloseError>;
        close_deadline(deadline: Instant) -> Result<CloseReport, CloseError>;
        stats() -> Stats;
        connection() -> &Connection;
    }
}

/// Each `read` takes what is there, as the client's `io::Read` does.
impl io::Read for RecvHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        io::Read::read(&mut self.client, buf)
    }
}
