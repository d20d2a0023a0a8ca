//! [`Endpoint`], a parsed URL, and the helpers transports use to read its query.

use std::io;
use std::time::Duration;

use crate::state::error::{ConnectError, mask_credentials};

/// A parsed URL: `scheme://address?key=value&…`.
///
/// The address is everything between `://` and `?`; each transport interprets it
/// (`host:port` for TCP, a name for `mem`).
///
/// # Examples
///
/// ```
/// use tidegate::transport::Endpoint;
///
/// let e = Endpoint::parse("tcp://127.0.0.1:5672?nodelay=1").unwrap();
/// assert_eq!(e.scheme(), "tcp");
/// assert_eq!(e.address(), "127.0.0.1:5672");
/// assert_eq!(e.query("nodelay"), Some("1"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: String,
    scheme: String,
    address: String,
    query: Vec<(String, String)>,
}

impl Endpoint {
    /// Parses a URL.
    ///
    /// # Errors
    ///
    /// [`ConnectError::InvalidUrl`] when there is no `scheme://`, the scheme does not start
    /// with an ASCII letter or has characters other than ASCII letters, digits, `+`, `-` and
    /// `.`, or the address is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::ConnectError;
    /// use tidegate::transport::Endpoint;
    ///
    /// let endpoint = Endpoint::parse("mem://queue?capacity=10").unwrap();
    /// assert_eq!(endpoint.address(), "queue");
    /// let err = Endpoint::parse("localhost:5672").unwrap_err();
    /// assert!(matches!(err, ConnectError::InvalidUrl { .. }));
    /// ```
    pub fn parse(url: &str) -> Result<Self, ConnectError> {
        let invalid = |reason: &str| ConnectError::InvalidUrl {
            url: mask_credentials(url),
            reason: reason.to_string(),
        };
        let (scheme, rest) =
            url.split_once("://").ok_or_else(|| invalid("expected scheme://address"))?;
        let valid_scheme = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !valid_scheme {
            return Err(invalid("the scheme must be ASCII letters, digits, '+', '-' or '.'"));
        }
        let (address, query) = rest.split_once('?').unwrap_or((rest, ""));
        if address.is_empty() {
            return Err(invalid("the address is empty"));
        }
        let query = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        Ok(Self {
            url: url.to_string(),
            scheme: scheme.to_ascii_lowercase(),
            address: address.to_string(),
            query,
        })
    }

    /// Returns `url` with the user and password of a `scheme://user:password@host` URL
    /// replaced by `***`, the way every [`ConnectError`] shows it; other URLs unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::Endpoint;
    ///
    /// assert_eq!(Endpoint::mask_credentials("redis://:pw@host:6379"), "redis://***@host:6379");
    /// assert_eq!(Endpoint::mask_credentials("tcp://host:1"), "tcp://host:1");
    /// ```
    pub fn mask_credentials(url: &str) -> String {
        mask_credentials(url)
    }

    /// Returns the URL as given.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::Endpoint;
    ///
    /// let endpoint = Endpoint::parse("TCP://Example.com:5672?a=1").unwrap();
    /// assert_eq!(endpoint.url(), "TCP://Example.com:5672?a=1");
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Returns the scheme, in lower case.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::Endpoint;
    ///
    /// assert_eq!(Endpoint::parse("TCP://127.0.0.1:5672").unwrap().scheme(), "tcp");
    /// ```
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Returns everything between `://` and `?`, as given.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::Endpoint;
    ///
    /// let endpoint = Endpoint::parse("tcp://[::1]:5672?nodelay=1").unwrap();
    /// assert_eq!(endpoint.address(), "[::1]:5672");
    /// ```
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Returns the value of the last query parameter named `key`. A parameter without `=` has
    /// the empty value.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::Endpoint;
    ///
    /// let endpoint = Endpoint::parse("tcp://host:1?retry=1&retry=2&verbose").unwrap();
    /// assert_eq!(endpoint.query("retry"), Some("2"));
    /// assert_eq!(endpoint.query("verbose"), Some(""));
    /// assert_eq!(endpoint.query("missing"), None);
    /// ```
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Returns all query parameters, in order, repeated keys included.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::transport::Endpoint;
    ///
    /// let endpoint = Endpoint::parse("tcp://host:1?a=1&b=2&a=3").unwrap();
    /// let pairs: Vec<(&str, &str)> = endpoint.query_pairs().collect();
    /// assert_eq!(pairs, [("a", "1"), ("b", "2"), ("a", "3")]);
    /// ```
    pub fn query_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.query.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Parses a duration from a URL query: a whole number followed by `ms`, `s`, `m` or `h`, or
/// a bare number of seconds.
pub(crate) fn parse_duration(value: &str) -> Option<Duration> {
    let (digits, unit) =
        value.find(|c: char| !c.is_ascii_digit()).map_or((value, ""), |at| value.split_at(at));
    let n: u64 = digits.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "" | "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

/// The error for a query parameter whose value does not parse.
pub(crate) fn bad_query_value(
    endpoint: &Endpoint,
    key: &str,
    value: &str,
    expected: &str,
) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("invalid value {value:?} for {key:?} in {}: expected {expected}", endpoint.url()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_malformed_urls() {
        for bad in ["", "tcp:/x", "://x", "1tcp://x", "tc p://x", "tcp://", "tcp://?a=1"] {
            assert!(
                matches!(Endpoint::parse(bad), Err(ConnectError::InvalidUrl { .. })),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        for bad in ["", "s", "1.5s", "-1", "10 s", "5d", "ms"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }
}
