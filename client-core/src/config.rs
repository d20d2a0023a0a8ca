//! Connection settings, fixed when the connection opens.

use std::time::Duration;

use crate::error::ConnectError;
use crate::transport::SocketOption;

/// The default capacity of the outgoing buffer: 1 MiB.
pub const DEFAULT_CAPACITY: usize = 1 << 20;

/// Settings of one connection. The facades' builders fill one in.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tidegate_core::Config;
///
/// let config = Config::new()
///     .capacity(256 * 1024)
///     .send_timeout(Duration::from_secs(5))
///     .nodelay(true);
/// assert_eq!(config.capacity_bytes(), 256 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    capacity: usize,
    connect_timeout: Option<Duration>,
    send_timeout: Option<Duration>,
    close_timeout: Duration,
    options: Vec<SocketOption>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            connect_timeout: Some(Duration::from_secs(10)),
            send_timeout: None,
            close_timeout: Duration::from_secs(10),
            options: vec![SocketOption::NoDelay(true)],
        }
    }
}

impl Config {
    /// The defaults: a 1 MiB buffer, a 10 s connect timeout, sends that wait as long as it
    /// takes, a 10 s drain when the last handle is dropped, and `TCP_NODELAY` on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the capacity of the outgoing buffer, in bytes. A frame larger than this is refused.
    pub fn capacity(mut self, bytes: usize) -> Self {
        self.capacity = bytes;
        self
    }

    /// Sets how long a connection may take to be established.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Lets a connection attempt take as long as the transport does.
    pub fn no_connect_timeout(mut self) -> Self {
        self.connect_timeout = None;
        self
    }

    /// Sets how long `send` waits for room before it returns the frame in a timeout error.
    /// By default it waits as long as it takes.
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = Some(timeout);
        self
    }

    /// Sets how long the buffer may take to drain when the last handle is dropped without
    /// `close`. Frames still buffered after that are discarded with a warning in the log.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Turns `TCP_NODELAY` on or off (on by default).
    pub fn nodelay(self, on: bool) -> Self {
        self.socket_option(SocketOption::NoDelay(on))
    }

    /// Adds a socket option, replacing an earlier one of the same kind. Links that do not have
    /// the option ignore it.
    pub fn socket_option(mut self, option: SocketOption) -> Self {
        let kind = std::mem::discriminant(&option);
        self.options.retain(|o| std::mem::discriminant(o) != kind);
        self.options.push(option);
        self
    }

    /// The capacity of the outgoing buffer, in bytes.
    pub fn capacity_bytes(&self) -> usize {
        self.capacity
    }

    /// The connect timeout, if any.
    pub fn connect_timeout_duration(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// The default send timeout, if any.
    pub fn send_timeout_duration(&self) -> Option<Duration> {
        self.send_timeout
    }

    /// The drain time allowed when the last handle is dropped.
    pub fn close_timeout_duration(&self) -> Duration {
        self.close_timeout
    }

    /// The socket options to apply.
    pub fn socket_options(&self) -> &[SocketOption] {
        &self.options
    }

    pub(crate) fn validate(&self) -> Result<(), ConnectError> {
        if self.capacity == 0 {
            return Err(ConnectError::InvalidConfig("the capacity must be at least 1 byte".into()));
        }
        Ok(())
    }
}
