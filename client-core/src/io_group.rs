//! Layer 4: [`IoGroup`], a fixed set of driver threads shared by many connections.

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::driver::Driver;

/// A fixed set of I/O driver threads that host any number of connections (Qpid's
/// "multi-io").
///
/// A connection opened with [`Config::io_group`](crate::Config::io_group) is assigned, for its
/// whole life, to the thread of the group that hosts the fewest connections at that moment
/// (the first such thread on a tie). Each thread serves its connections in turn, with a bounded
/// amount of work per connection per turn, so a busy connection cannot starve the others.
///
/// Without a group, every connection gets a driver thread of its own. That is the default
/// because it isolates connections completely — a slow transport plugin or TLS handshake on
/// one never delays another — and costs one sleeping thread per connection, which is cheap
/// for the few connections most producers open. Use a group when there are many.
///
/// The threads live as long as the group or a connection on it.
///
/// # Examples
///
/// ```
/// use tidegate::{Config, Connection, IoGroup};
/// use tidegate::transport::mem::MemListener;
///
/// let group = IoGroup::new(2).unwrap();
/// let listener = MemListener::bind("doc-io-group").unwrap();
/// let conns: Vec<Connection> = (0..10)
///     .map(|_| Connection::open(&listener.url(), Config::new().io_group(&group)).unwrap())
///     .collect();
/// assert_eq!(group.threads(), 2);
/// assert_eq!(group.connections(), 10);
/// # drop(conns);
/// ```
#[derive(Clone)]
pub struct IoGroup {
    drivers: Arc<[Driver]>,
}

impl IoGroup {
    /// Starts `threads` driver threads.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for zero threads; the error of the OS if a thread or a poll instance
    /// cannot be created.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(tidegate::IoGroup::new(0).is_err());
    /// ```
    pub fn new(threads: usize) -> io::Result<Self> {
        if threads == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an I/O group needs at least one thread",
            ));
        }
        let drivers = (0..threads).map(|_| Driver::spawn()).collect::<io::Result<Vec<_>>>()?;
        Ok(Self { drivers: drivers.into() })
    }

    /// The number of driver threads.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(tidegate::IoGroup::new(3).unwrap().threads(), 3);
    /// ```
    pub fn threads(&self) -> usize {
        self.drivers.len()
    }

    /// The number of connections the group hosts now.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(tidegate::IoGroup::new(1).unwrap().connections(), 0);
    /// ```
    pub fn connections(&self) -> usize {
        self.drivers.iter().map(|d| d.hosted()).sum()
    }

    /// The driver that hosts the fewest connections.
    pub(crate) fn pick(&self) -> &Driver {
        self.drivers.iter().min_by_key(|d| d.hosted()).expect("a group has at least one driver")
    }
}

impl fmt::Debug for IoGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoGroup")
            .field("threads", &self.threads())
            .field("connections", &self.connections())
            .finish()
    }
}
