//! The async facade of tidegate. Being built: see `tidegate-core` for the operations it wraps.

#![forbid(unsafe_code)]

use tidegate_core::Connection;

/// An async handle to one connection.
///
/// # Examples
///
/// ```
/// use tidegate_async::AsyncClient;
/// use tidegate_core::{Config, Connection};
/// use tidegate_core::transport::mem::MemListener;
///
/// let listener = MemListener::bind("async-example").unwrap();
/// let client = AsyncClient::from_connection(Connection::open(&listener.url(), Config::new()).unwrap());
/// ```
#[derive(Debug, Clone)]
pub struct AsyncClient {
    conn: Connection,
}

impl AsyncClient {
    /// Wraps a core connection.
    pub fn from_connection(conn: Connection) -> Self {
        Self { conn }
    }

    /// The core connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}
