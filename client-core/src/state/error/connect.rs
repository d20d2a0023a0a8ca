//! Why a connection could not be opened: [`ConnectError`], and the typed TLS failure
//! ([`TlsError`], [`TlsErrorKind`]) that a TLS link reports inside it.
//!
//! Every `ConnectError` names the URL it was for (with any credentials in it masked) and says
//! in its own `Display` what its cause said, so the first line is enough to act on. So that
//! printing the whole chain (each `source()` in turn, as `anyhow`'s `{:#}` does) repeats
//! nothing, `source()` starts *below* the cause whose words are already in that line: for a
//! TLS refusal, it is the TLS library's own error, with the OpenSSL text.

use std::error::Error;
use std::fmt;
use std::io;
use std::time::Duration;

use super::Disconnect;

/// A connection could not be opened.
///
/// Every variant carries the `url` it was for, with the password or user of a
/// `scheme://user:password@host` URL replaced by `***`.
///
/// # Examples
///
/// ```
/// use tidegate::{Client, ConnectError};
///
/// let err = Client::connect("tcp://127.0.0.1").unwrap_err();
/// assert!(matches!(err, ConnectError::Io { .. }));
/// assert_eq!(err.url(), "tcp://127.0.0.1");
/// assert!(err.to_string().contains("missing port"), "{err}");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not of the form `scheme://address`.
    InvalidUrl {
        /// The URL, credentials masked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No transport is registered for the URL's scheme.
    UnknownScheme {
        /// The URL, credentials masked.
        url: String,
        /// The scheme of the URL.
        scheme: String,
        /// The schemes that are registered, sorted.
        registered: Vec<String>,
    },
    /// The configuration is not usable, for example a capacity of zero.
    InvalidConfig {
        /// The URL, credentials masked.
        url: String,
        /// What is wrong with the configuration.
        reason: String,
    },
    /// The transport could not start opening the link: for example, the host name does not
    /// resolve, the address has no port, or no `mem://` listener has that name.
    Io {
        /// The URL, credentials masked.
        url: String,
        /// What the transport said.
        error: io::Error,
    },
    /// The connection attempt failed, for example because it was refused.
    Failed {
        /// The URL, credentials masked.
        url: String,
        /// Why it failed: [`DisconnectKind::ConnectFailed`](crate::DisconnectKind) with the
        /// I/O error, or `HandshakeFailed` with the [handshake hook](crate::Handshake)'s.
        cause: Disconnect,
    },
    /// The TLS handshake failed: the server's certificate was refused, the server refused
    /// ours, the peer does not speak TLS, or the handshake timed out. `kind` says which.
    Tls {
        /// The URL, credentials masked.
        url: String,
        /// What went wrong, as far as the TLS library's report tells.
        kind: TlsErrorKind,
        /// The cause, whose I/O error holds the [`TlsError`].
        cause: Disconnect,
    },
    /// The connection was not established within the connect timeout.
    TimedOut {
        /// The URL, credentials masked.
        url: String,
        /// The connect timeout.
        after: Duration,
    },
    /// The connection was closed by the application before it was established.
    Closed {
        /// The URL, credentials masked.
        url: String,
    },
    /// A blocking connect was called on an I/O driver thread (inside a transport plugin or a
    /// link call), which would then wait for a driver, perhaps itself, to establish the link
    /// (see [`is_driver_thread`](crate::is_driver_thread)). Nothing was opened; connect with
    /// the async facade there, or from another thread.
    WouldDeadlock {
        /// The URL, credentials masked.
        url: String,
    },
}

impl ConnectError {
    /// Returns the URL the connection was for, with credentials masked.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::Client;
    ///
    /// let err = Client::connect("gopher://user:secret@host:70").unwrap_err();
    /// assert_eq!(err.url(), "gopher://***@host:70");
    /// assert!(!err.to_string().contains("secret"));
    /// ```
    pub fn url(&self) -> &str {
        match self {
            Self::InvalidUrl { url, .. }
            | Self::UnknownScheme { url, .. }
            | Self::InvalidConfig { url, .. }
            | Self::Io { url, .. }
            | Self::Failed { url, .. }
            | Self::Tls { url, .. }
            | Self::TimedOut { url, .. }
            | Self::Closed { url }
            | Self::WouldDeadlock { url } => url,
        }
    }

    /// Returns whether the attempt gave up because time ran out: the connect timeout, the TLS
    /// handshake timeout, or a transport's own timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::ConnectError;
    ///
    /// let err = ConnectError::TimedOut { url: "tcp://10.0.0.1:1".into(), after: Duration::ZERO };
    /// assert!(err.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::TimedOut { .. } => true,
            Self::Tls { kind, .. } => *kind == TlsErrorKind::HandshakeTimeout,
            Self::Failed { cause, .. } => cause.is_timeout(),
            Self::Io { error, .. } => error.kind() == io::ErrorKind::TimedOut,
            _ => false,
        }
    }

    /// Returns what went wrong in the TLS handshake, for [`ConnectError::Tls`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{Client, ConnectError};
    ///
    /// let err = Client::connect("gopher://host:70").unwrap_err();
    /// assert_eq!(err.tls_kind(), None);
    /// ```
    pub fn tls_kind(&self) -> Option<TlsErrorKind> {
        match self {
            Self::Tls { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Marks a failed attempt as a TLS failure when its I/O error holds a [`TlsError`].
    pub(crate) fn failed(url: String, cause: Disconnect) -> Self {
        match cause.tls_error().map(TlsError::kind) {
            Some(kind) => Self::Tls { url, kind, cause },
            None => Self::Failed { url, cause },
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl { url, reason } => write!(f, "invalid URL {url:?}: {reason}"),
            Self::UnknownScheme { url, scheme, registered } => write!(
                f,
                "no transport is registered for the scheme {scheme:?} of {url} (registered: {})",
                registered.join(", ")
            ),
            Self::InvalidConfig { url, reason } => {
                write!(f, "cannot connect to {url} with this configuration: {reason}")
            }
            Self::Io { url, error } => write!(f, "could not open a link to {url}: {error}"),
            Self::Failed { url, cause } => {
                write!(f, "could not connect to {url}: {}", words(cause))
            }
            Self::Tls { url, cause, .. } => {
                write!(f, "the TLS handshake with {url} failed: {}", words(cause))
            }
            Self::TimedOut { url, after } => {
                write!(f, "connecting to {url} timed out after {after:?}")
            }
            Self::Closed { url } => {
                write!(f, "the connection to {url} was closed before it was established")
            }
            Self::WouldDeadlock { url } => write!(
                f,
                "a blocking connect to {url} on an I/O driver thread would wait for the driver itself"
            ),
        }
    }
}

/// What a cause says: its I/O error's words if it has one (they are the more precise), its
/// own otherwise.
fn words(cause: &Disconnect) -> String {
    match cause.io_error() {
        Some(error) => error.to_string(),
        None => cause.to_string(),
    }
}

impl Error for ConnectError {
    /// The cause below the one whose words `Display` already shows.
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Io { error, .. } => error.source(),
            Self::Failed { cause, .. } | Self::Tls { cause, .. } => match cause.io_error() {
                Some(error) => error.source(),
                None => None,
            },
            _ => None,
        }
    }
}

/// Returns `url` with the user and password of its authority replaced by `***`, so that an
/// error can show it.
pub(crate) fn mask_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rfind('@') {
        Some(at) => format!("{scheme}://***@{}{tail}", &authority[at + 1..]),
        None => url.to_string(),
    }
}

/// What went wrong in a TLS handshake, as far as the TLS library's report tells.
///
/// The kind is read from the library's report (OpenSSL's verify result and alert names, on
/// Linux); [`TlsErrorKind::Other`] stands for a report it does not recognise, and the
/// report itself is always the [`TlsError`]'s source.
///
/// # Examples
///
/// ```
/// use tidegate::TlsErrorKind;
///
/// assert_eq!(TlsErrorKind::CertificateExpired.to_string(), "the certificate has expired");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsErrorKind {
    /// The server's certificate (or one in its chain) has expired.
    CertificateExpired,
    /// The server's certificate (or one in its chain) is not valid yet.
    CertificateNotYetValid,
    /// The server's certificate does not name the host (or IP address) connected to; set the
    /// name to check with `?domain=` or [`Tls::domain`](crate::transport::tls::Tls::domain).
    NameMismatch,
    /// The server's certificate was not issued by a trusted root: self-signed, or signed by a
    /// CA the client does not trust (add it with `add_root_certificate_pem`).
    UnknownIssuer,
    /// The server's certificate was revoked.
    CertificateRevoked,
    /// The server asked for a client certificate and none was given (set one with
    /// `identity_pem` or `identity_pkcs12`).
    ClientCertificateRequired,
    /// The server refused the client's certificate.
    ClientCertificateRejected,
    /// The peer does not speak TLS (its first bytes are not a TLS record): a plain-text
    /// server on that port.
    NotTls,
    /// The handshake did not complete within the handshake timeout.
    HandshakeTimeout,
    /// Any other failure; the [`TlsError`]'s source says what.
    Other,
}

impl TlsErrorKind {
    /// Reads the kind from the words of a TLS library's report. The OpenSSL phrases are its
    /// X.509 verify results and its alert names.
    fn from_report(report: &str) -> Self {
        let report = report.to_ascii_lowercase();
        let has = |phrases: &[&str]| phrases.iter().any(|p| report.contains(p));
        if has(&["certificate has expired"]) {
            Self::CertificateExpired
        } else if has(&["certificate is not yet valid"]) {
            Self::CertificateNotYetValid
        } else if has(&["hostname mismatch", "ip address mismatch", "email address mismatch"]) {
            Self::NameMismatch
        } else if has(&["certificate revoked"]) {
            Self::CertificateRevoked
        } else if has(&[
            "unable to get local issuer certificate",
            "unable to get issuer certificate",
            "self-signed certificate",
            "self signed certificate",
            "unable to verify the first certificate",
        ]) {
            Self::UnknownIssuer
        } else if has(&["alert certificate required", "peer did not return a certificate"]) {
            Self::ClientCertificateRequired
        } else if has(&["alert bad certificate", "alert unknown ca", "alert certificate unknown"]) {
            Self::ClientCertificateRejected
        } else if has(&["wrong version number", "packet length too long", "http request"]) {
            Self::NotTls
        } else {
            Self::Other
        }
    }
}

impl fmt::Display for TlsErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CertificateExpired => "the certificate has expired",
            Self::CertificateNotYetValid => "the certificate is not valid yet",
            Self::NameMismatch => "the certificate does not name the host connected to",
            Self::UnknownIssuer => "the certificate was not issued by a trusted root",
            Self::CertificateRevoked => "the certificate was revoked",
            Self::ClientCertificateRequired => {
                "the server requires a client certificate and none was given"
            }
            Self::ClientCertificateRejected => "the server refused the client certificate",
            Self::NotTls => "the peer does not speak TLS",
            Self::HandshakeTimeout => "the handshake timed out",
            Self::Other => "the TLS library refused the connection",
        })
    }
}

/// A TLS failure, typed: what a TLS link puts inside the [`io::Error`] of a failed handshake
/// (and of a link the server ends with an alert), so that [`ConnectError::Tls`] and
/// [`Disconnect::tls_error`] can say what went wrong.
///
/// `Display` is the kind's description, with the detail of a timeout; `source()` is the TLS
/// library's own report (OpenSSL's text, on Linux).
///
/// # Examples
///
/// ```
/// use std::error::Error;
/// use tidegate::{TlsError, TlsErrorKind};
///
/// let report = std::io::Error::other("certificate verify failed (certificate has expired)");
/// let err = TlsError::from_report(report);
/// assert_eq!(err.kind(), TlsErrorKind::CertificateExpired);
/// assert!(err.source().unwrap().to_string().contains("verify failed"));
/// ```
#[derive(Debug)]
pub struct TlsError {
    kind: TlsErrorKind,
    /// Said after the kind's description, if any.
    detail: Option<String>,
    report: Option<Report>,
}

/// A TLS library's report, as the source of a [`TlsError`]: its words are those of the
/// report's whole chain, each said once (a library's error often repeats the error it wraps),
/// so it has no source of its own.
#[derive(Debug)]
struct Report {
    words: String,
    error: Box<dyn Error + Send + Sync>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.words)
    }
}

impl Error for Report {}

impl TlsError {
    /// Classifies a TLS library's report of a failure, and keeps it as the source.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{TlsError, TlsErrorKind};
    ///
    /// let err = TlsError::from_report("ssl3_get_record:wrong version number");
    /// assert_eq!(err.kind(), TlsErrorKind::NotTls);
    /// ```
    pub fn from_report(report: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        let error = report.into();
        let mut words = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            let said = cause.to_string();
            if !words.contains(said.trim()) {
                words.push_str(": ");
                words.push_str(&said);
            }
            source = cause.source();
        }
        let kind = TlsErrorKind::from_report(&words);
        Self { kind, detail: None, report: Some(Report { words, error }) }
    }

    /// A handshake that did not complete within `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tidegate::{TlsError, TlsErrorKind};
    ///
    /// let err = TlsError::handshake_timeout(Duration::from_millis(300));
    /// assert_eq!(err.kind(), TlsErrorKind::HandshakeTimeout);
    /// assert_eq!(err.to_string(), "the handshake timed out after 300ms");
    /// ```
    pub fn handshake_timeout(timeout: Duration) -> Self {
        Self {
            kind: TlsErrorKind::HandshakeTimeout,
            detail: Some(format!("after {timeout:?}")),
            report: None,
        }
    }

    /// Returns what went wrong.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::{TlsError, TlsErrorKind};
    ///
    /// let err = TlsError::from_report("tlsv13 alert certificate required");
    /// assert_eq!(err.kind(), TlsErrorKind::ClientCertificateRequired);
    /// ```
    pub fn kind(&self) -> TlsErrorKind {
        self.kind
    }

    /// Returns the TLS library's own error, as it reported it (a `native_tls::Error`, for the
    /// built-in transport), for a caller that wants to look inside it.
    ///
    /// # Examples
    ///
    /// ```
    /// use tidegate::TlsError;
    ///
    /// let err = TlsError::from_report(std::io::Error::other("bad record mac"));
    /// let report = err.report().unwrap();
    /// assert!(report.downcast_ref::<std::io::Error>().is_some());
    /// ```
    pub fn report(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        self.report.as_ref().map(|r| &*r.error)
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(detail) => write!(f, "{} {detail}", self.kind),
            None => fmt::Display::fmt(&self.kind, f),
        }
    }
}

impl Error for TlsError {
    /// The library's report, each part of its chain said once.
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.report.as_ref().map(|r| r as &(dyn Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::error::DisconnectKind;

    #[test]
    fn credentials_are_masked_and_nothing_else_changes() {
        assert_eq!(mask_credentials("redis://:pw@host:6379/0"), "redis://***@host:6379/0");
        assert_eq!(mask_credentials("tcp://u:p@h:1?x=a@b"), "tcp://***@h:1?x=a@b");
        assert_eq!(mask_credentials("tcp://host:1?x=a@b"), "tcp://host:1?x=a@b");
        assert_eq!(mask_credentials("unix:///run/a@b.sock"), "unix:///run/a@b.sock");
        assert_eq!(mask_credentials("no-scheme@x"), "no-scheme@x");
    }

    #[test]
    fn the_chain_says_each_thing_once() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let words = refused.to_string();
        let cause = Disconnect::with_io(DisconnectKind::ConnectFailed, refused);
        let err = ConnectError::failed("tcp://127.0.0.1:9".into(), cause);
        assert_eq!(err.to_string(), format!("could not connect to tcp://127.0.0.1:9: {words}"));
        assert!(err.source().is_none(), "the refusal's words are in the line already");

        let report = io::Error::other("verify failed (certificate has expired)");
        let tls = io::Error::other(TlsError::from_report(report));
        let cause = Disconnect::with_io(DisconnectKind::ConnectFailed, tls);
        let err = ConnectError::failed("tls://h:1".into(), cause);
        assert_eq!(err.tls_kind(), Some(TlsErrorKind::CertificateExpired));
        assert_eq!(
            err.to_string(),
            "the TLS handshake with tls://h:1 failed: the certificate has expired"
        );
        let source = err.source().expect("the library's report");
        assert_eq!(source.to_string(), "verify failed (certificate has expired)");
        assert!(source.source().is_none());
    }

    #[test]
    fn a_report_that_repeats_what_it_wraps_is_said_once() {
        #[derive(Debug)]
        struct Wrapper(io::Error);
        impl fmt::Display for Wrapper {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} (certificate has expired)", self.0)
            }
        }
        impl Error for Wrapper {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let err = TlsError::from_report(Wrapper(io::Error::other("verify failed")));
        let report = err.source().unwrap();
        assert_eq!(report.to_string(), "verify failed (certificate has expired)");
        assert!(report.source().is_none());
        assert!(err.report().unwrap().is::<Wrapper>());
    }

    #[test]
    fn reports_are_read_into_kinds() {
        let cases = [
            (
                "certificate verify failed (certificate has expired)",
                TlsErrorKind::CertificateExpired,
            ),
            ("(certificate is not yet valid)", TlsErrorKind::CertificateNotYetValid),
            ("certificate verify failed (hostname mismatch)", TlsErrorKind::NameMismatch),
            ("certificate verify failed (IP address mismatch)", TlsErrorKind::NameMismatch),
            ("(self-signed certificate)", TlsErrorKind::UnknownIssuer),
            ("(unable to get local issuer certificate)", TlsErrorKind::UnknownIssuer),
            ("ssl/tls alert certificate required", TlsErrorKind::ClientCertificateRequired),
            ("tlsv13 alert certificate required", TlsErrorKind::ClientCertificateRequired),
            ("sslv3 alert bad certificate", TlsErrorKind::ClientCertificateRejected),
            ("ssl3_get_record:wrong version number", TlsErrorKind::NotTls),
            ("packet length too long", TlsErrorKind::NotTls),
            ("something new", TlsErrorKind::Other),
        ];
        for (report, kind) in cases {
            assert_eq!(TlsError::from_report(report).kind(), kind, "{report}");
        }
    }
}
