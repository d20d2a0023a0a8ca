//! The send side of [`Client`]: frames, batches and urgent frames, flushing, and
//! [`io::Write`].

use std::io;
use std::time::{Duration, Instant};

use tidegate_core::{Bytes, Connection, FlushError, FrameBatch, SendError, SendOp, TrySendError};

use crate::Client;
use crate::wait::{OnDriverThread, wait_guarded};

// Named in the docs only.
#[cfg(doc)]
use crate::ClientBuilder;

impl Client {
    /// Sends `frame`, waiting for room for as long as the configured send timeout allows
    /// (by default, as long as it takes).
    ///
    /// Returns once the frame is in the outgoing buffer; [`Client::flush`] waits until it is
    /// written.
    ///
    /// # Errors
    ///
    /// The error contains the frame: [`SendError::Timeout`] if the send timeout passed,
    /// [`SendError::TooLarge`] for a frame larger than the capacity, [`SendError::Empty`],
    /// [`SendError::Closed`] after a close, [`SendError::Disconnected`] with the cause after
    /// the connection ended, and [`SendError::WouldDeadlock`] when it would have to wait on an
    /// I/O driver thread (inside a transport plugin or a [`Client::call_link`] closure), which
    /// would then wait for itself.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread while the buffer is full or others wait ahead. Do not call it
    /// from async code: use the async facade there.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Client, SendError};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-send-example").unwrap();
    /// let client = Client::builder().capacity(8).connect(&listener.url()).unwrap();
    /// client.send(&b"12345678"[..]).unwrap();
    /// let err = client.send(&b"123456789"[..]).unwrap_err();
    /// assert!(matches!(err, SendError::TooLarge { max_len: 8, .. }));
    /// assert_eq!(err.into_inner().len(), 9);
    /// ```
    pub fn send(&self, frame: impl Into<Bytes>) -> Result<(), SendError<Bytes>> {
        let deadline = self.conn.config().send_timeout_duration().map(|t| Instant::now() + t);
        self.send_until(frame.into(), deadline)
    }

    /// Sends `frame`, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// As [`Client::send`]; [`SendError::Timeout`] carries the frame back when `timeout`
    /// passes.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread for at most `timeout` (plus scheduling delay).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("send-timeout-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// client.send_timeout("ping", Duration::from_millis(100)).unwrap();
    /// ```
    pub fn send_timeout(
        &self,
        frame: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<(), SendError<Bytes>> {
        self.send_until(frame.into(), Some(Instant::now() + timeout))
    }

    /// Sends `frame`, waiting for room until `deadline` at most: the form of
    /// [`Client::send_timeout`] for a caller that has one deadline for several steps.
    ///
    /// # Errors
    ///
    /// As [`Client::send`]; [`SendError::Timeout`] carries the frame back when `deadline`
    /// passes (at once if it has passed already and the frame cannot go in now).
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until `deadline` at most (plus scheduling delay).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("send-deadline-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let deadline = Instant::now() + Duration::from_millis(100);
    /// client.send_deadline("request", deadline).unwrap();
    /// client.flush_deadline(deadline).unwrap();
    /// ```
    pub fn send_deadline(
        &self,
        frame: impl Into<Bytes>,
        deadline: Instant,
    ) -> Result<(), SendError<Bytes>> {
        self.send_until(frame.into(), Some(deadline))
    }

    #[inline]
    fn send_until(&self, frame: Bytes, deadline: Option<Instant>) -> Result<(), SendError<Bytes>> {
        // The common case without a send operation or a waker: room now, nobody waiting.
        // Otherwise the full path decides again, under the lock, so nothing changes in order
        // or errors.
        match self.conn.offer(frame) {
            Ok(()) => Ok(()),
            Err(err) => self.send_waiting(err.into_inner(), deadline),
        }
    }

    /// `send_until` when the frame could not go in at once: out of line, so that
    /// the common case compiles small.
    #[cold]
    #[inline(never)]
    fn send_waiting(
        &self,
        frame: Bytes,
        deadline: Option<Instant>,
    ) -> Result<(), SendError<Bytes>> {
        self.finish_send(self.conn.send(frame, deadline), deadline)
    }

    /// Waits for a send to complete, unless that would park an I/O driver thread.
    fn finish_send(
        &self,
        mut op: SendOp<&Connection>,
        deadline: Option<Instant>,
    ) -> Result<(), SendError<Bytes>> {
        match wait_guarded(deadline, |waker| op.poll_with(waker)) {
            Ok(result) => result,
            // Leave the line; if the frame was let in meanwhile, it is sent after all.
            Err(OnDriverThread) => op.cancel().map_or(Ok(()), |f| Err(SendError::WouldDeadlock(f))),
        }
    }

    /// Puts `frame` into the buffer only if it fits now and no one is waiting.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] when the frame would have to wait; otherwise as
    /// [`Client::send`]. The error contains the frame.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-try-send-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// client.try_send("fits").unwrap();
    /// ```
    pub fn try_send(&self, frame: impl Into<Bytes>) -> Result<(), TrySendError<Bytes>> {
        self.conn.try_send(frame.into())
    }

    /// Sends every frame of `batch` as one unit, waiting for room for as long as the
    /// configured send timeout allows (by default, as long as it takes).
    ///
    /// The frames enter the buffer together, back to back and in order, under one lock: a
    /// producer of many small frames pays for the lock once per batch, not once per frame, and
    /// keeps its frame boundaries (unlike a `BufWriter` over [`Client`]'s `io::Write`). The
    /// batch takes one place in the same FIFO line as single frames, passes no one and is
    /// passed by no one, and is moved in whole when there is room for all of it.
    ///
    /// # Errors
    ///
    /// The error contains the whole batch: [`SendError::TooLarge`] if its total length
    /// (headers included, with framing) exceeds the capacity less the urgent reserve,
    /// [`SendError::Empty`] for a batch without frames or, without framing, with an empty
    /// frame, and otherwise as [`Client::send`], [`SendError::WouldDeadlock`] included.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread while the batch does not fit or others wait ahead.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Client, FrameBatch};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-send-batch-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let mut batch = FrameBatch::with_capacity(64 * 64);
    /// for i in 0..64u8 {
    ///     batch.push([i; 64]);
    /// }
    /// client.send_batch(batch).unwrap();
    /// assert_eq!(client.stats().frames_accepted, 64);
    /// ```
    pub fn send_batch(&self, batch: FrameBatch) -> Result<(), SendError<FrameBatch>> {
        let deadline = self.conn.config().send_timeout_duration().map(|t| Instant::now() + t);
        self.send_batch_until(batch, deadline)
    }

    /// Sends every frame of `batch` as one unit, waiting at most `timeout` for room.
    ///
    /// # Errors
    ///
    /// As [`Client::send_batch`]; [`SendError::Timeout`] carries the whole batch back when
    /// `timeout` passes.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread for at most `timeout` (plus scheduling delay).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{Client, FrameBatch};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-send-batch-timeout-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let mut batch = FrameBatch::new();
    /// batch.push("ping");
    /// batch.push("pong");
    /// client.send_batch_timeout(batch, Duration::from_millis(100)).unwrap();
    /// ```
    pub fn send_batch_timeout(
        &self,
        batch: FrameBatch,
        timeout: Duration,
    ) -> Result<(), SendError<FrameBatch>> {
        self.send_batch_until(batch, Some(Instant::now() + timeout))
    }

    /// Sends every frame of `batch` as one unit, waiting for room until `deadline` at most.
    ///
    /// # Errors
    ///
    /// As [`Client::send_batch_timeout`].
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until `deadline` at most (plus scheduling delay).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tidegate::{Client, FrameBatch};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-send-batch-deadline-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let batch: FrameBatch = ["ping", "pong"].into_iter().collect();
    /// client.send_batch_deadline(batch, Instant::now() + Duration::from_millis(100)).unwrap();
    /// ```
    pub fn send_batch_deadline(
        &self,
        batch: FrameBatch,
        deadline: Instant,
    ) -> Result<(), SendError<FrameBatch>> {
        self.send_batch_until(batch, Some(deadline))
    }

    fn send_batch_until(
        &self,
        batch: FrameBatch,
        deadline: Option<Instant>,
    ) -> Result<(), SendError<FrameBatch>> {
        // As for a frame: the fast path first, and the full path decides again under the lock.
        let batch = match self.conn.offer_batch(batch) {
            Ok(()) => return Ok(()),
            Err(err) => err.into_inner(),
        };
        let mut op = self.conn.send_batch(batch, deadline);
        match wait_guarded(deadline, |waker| op.poll_with(waker)) {
            Ok(result) => result,
            // Leave the line; if the batch was let in meanwhile, it is sent after all.
            Err(OnDriverThread) => op.cancel().map_or(Ok(()), |b| Err(SendError::WouldDeadlock(b))),
        }
    }

    /// Puts every frame of `batch` into the buffer, as one unit, only if all of them fit now
    /// and no one is waiting.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] when the batch would have to wait; otherwise as
    /// [`Client::send_batch`]. The error contains the whole batch.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Client, FrameBatch};
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-try-send-batch-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// let mut batch = FrameBatch::new();
    /// batch.push("fits");
    /// client.try_send_batch(batch).unwrap();
    /// ```
    pub fn try_send_batch(&self, batch: FrameBatch) -> Result<(), TrySendError<FrameBatch>> {
        self.conn.try_send_batch(batch)
    }

    /// Sends an urgent (control) frame, such as a heartbeat or a close frame: it may use the
    /// reserve kept for urgent frames ([`ClientBuilder::urgent_reserve`]), waits only behind
    /// other urgent frames, and goes on the wire at the next frame boundary, ahead of data
    /// frames not yet started. Uses the configured send timeout.
    ///
    /// # Errors
    ///
    /// As [`Client::send`].
    ///
    /// # Blocking
    ///
    /// Parks the calling thread while the urgent frames ahead of it and the whole capacity
    /// leave no room.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-send-urgent-example").unwrap();
    /// let client =
    ///     Client::builder().capacity(100).urgent_reserve(10).connect(&listener.url()).unwrap();
    /// let peer = listener.accept_timeout(Duration::from_secs(5)).unwrap();
    /// peer.pause();
    /// client.send(vec![0u8; 90]).unwrap(); // data fills what it may
    /// assert!(client.try_send("more").unwrap_err().is_full());
    /// client.send_urgent("ping").unwrap(); // the reserve still has room
    /// ```
    pub fn send_urgent(&self, frame: impl Into<Bytes>) -> Result<(), SendError<Bytes>> {
        let deadline = self.conn.config().send_timeout_duration().map(|t| Instant::now() + t);
        let op = self.conn.send_urgent(frame.into(), deadline);
        self.finish_send(op, deadline)
    }

    /// Like [`Client::try_send`], for an urgent frame (see [`Client::send_urgent`]).
    ///
    /// # Errors
    ///
    /// As [`Client::try_send`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-try-send-urgent-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// client.try_send_urgent("ping").unwrap();
    /// ```
    pub fn try_send_urgent(&self, frame: impl Into<Bytes>) -> Result<(), TrySendError<Bytes>> {
        self.conn.try_send_urgent(frame.into())
    }

    /// Waits until every frame accepted before this call has been written to the link.
    ///
    /// # Errors
    ///
    /// [`FlushError::Closed`] or [`FlushError::Disconnected`] if the connection ended first;
    /// the close report accounts for the frames. [`FlushError::WouldDeadlock`] when it would
    /// have to wait on an I/O driver thread.
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until the bytes are written or the connection ends.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("blocking-flush-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// client.send("data").unwrap();
    /// client.flush().unwrap();
    /// assert_eq!(client.stats().buffered, 0);
    /// ```
    pub fn flush(&self) -> Result<(), FlushError> {
        self.flush_until(None)
    }

    /// Like [`Client::flush`], giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// As [`Client::flush`], and [`FlushError::Timeout`].
    ///
    /// # Blocking
    ///
    /// Parks the calling thread for at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("flush-timeout-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// client.flush_timeout(Duration::from_secs(5)).unwrap();
    /// ```
    pub fn flush_timeout(&self, timeout: Duration) -> Result<(), FlushError> {
        self.flush_until(Some(Instant::now() + timeout))
    }

    /// Like [`Client::flush`], giving up at `deadline`.
    ///
    /// # Errors
    ///
    /// As [`Client::flush_timeout`].
    ///
    /// # Blocking
    ///
    /// Parks the calling thread until `deadline` at most.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use tidegate::Client;
    /// use tidegate::transport::mem::MemListener;
    ///
    /// let listener = MemListener::bind("flush-deadline-example").unwrap();
    /// let client = Client::connect(&listener.url()).unwrap();
    /// client.send("data").unwrap();
    /// client.flush_deadline(Instant::now() + Duration::from_secs(5)).unwrap();
    /// ```
    pub fn flush_deadline(&self, deadline: Instant) -> Result<(), FlushError> {
        self.flush_until(Some(deadline))
    }

    fn flush_until(&self, deadline: Option<Instant>) -> Result<(), FlushError> {
        let mut op = self.conn.flush(deadline);
        wait_guarded(deadline, |waker| op.poll_with(waker))
            .unwrap_or(Err(FlushError::WouldDeadlock))
    }
}

/// Each `write` sends one frame of at most [`Connection::max_frame_len`] bytes (the capacity,
/// less the urgent reserve and any framing header), blocking like [`Client::send`]; `flush`
/// waits like [`Client::flush`].
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use tidegate::Client;
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("write-example").unwrap();
/// let mut client = Client::connect(&listener.url()).unwrap();
/// writeln!(client, "hello {}", 42).unwrap();
/// client.flush().unwrap();
/// ```
impl io::Write for Client {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // At least one byte: a connection that can take no frame at all reports `TooLarge`.
        let n = buf.len().min(self.conn.max_frame_len().max(1));
        self.send(Bytes::copy_from_slice(&buf[..n]))?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(Self::flush(self)?)
    }
}
