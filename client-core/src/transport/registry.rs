//! The run-time registry of transports by URL scheme, with the built-in ones registered.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use crate::state::error::{ConnectError, mask_credentials};
use crate::transport::endpoint::Endpoint;
use crate::transport::link::{Link, Transport};
#[cfg(unix)]
use crate::transport::unix;
use crate::transport::{mem, tcp, tls};

type Registry = HashMap<String, Arc<dyn Transport>>;

static REGISTRY: LazyLock<RwLock<Registry>> = LazyLock::new(|| {
    let mut builtins: Registry = HashMap::new();
    builtins.insert("tcp".into(), Arc::new(tcp::Tcp));
    builtins.insert("mem".into(), Arc::new(mem::Mem));
    builtins.insert("tls".into(), Arc::new(tls::Tls::default()));
    #[cfg(unix)]
    builtins.insert("unix".into(), Arc::new(unix::Unix));
    RwLock::new(builtins)
});

/// Registers `transport` under `scheme`, replacing and returning the one registered before.
///
/// # Errors
///
/// [`ConnectError::InvalidUrl`] if `scheme` is not a valid URL scheme.
///
/// # Examples
///
/// ```
/// use tidegate::transport::{self, tcp::Tcp};
///
/// let before = transport::register("tcp-again", Tcp).unwrap();
/// assert!(before.is_none());
/// ```
pub fn register(
    scheme: &str,
    transport: impl Transport,
) -> Result<Option<Arc<dyn Transport>>, ConnectError> {
    let endpoint = Endpoint::parse(&format!("{scheme}://x"))?;
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    Ok(registry.insert(endpoint.scheme().to_owned(), Arc::new(transport)))
}

/// The transport registered for `scheme`.
///
/// # Examples
///
/// ```
/// assert!(tidegate::transport::lookup("tcp").is_some());
/// assert!(tidegate::transport::lookup("gopher").is_none());
/// ```
pub fn lookup(scheme: &str) -> Option<Arc<dyn Transport>> {
    let registry = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
    registry.get(&scheme.to_ascii_lowercase()).cloned()
}

/// The registered schemes, sorted.
///
/// # Examples
///
/// ```
/// assert!(tidegate::transport::schemes().iter().any(|s| s == "mem"));
/// ```
pub fn schemes() -> Vec<String> {
    let registry = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
    let mut schemes: Vec<String> = registry.keys().cloned().collect();
    schemes.sort();
    schemes
}

/// Parses `url` and finds its transport: `chosen` if there is one, or else the one registered
/// for the URL's scheme.
pub(crate) fn check(
    url: &str,
    chosen: Option<&Arc<dyn Transport>>,
) -> Result<(Endpoint, Arc<dyn Transport>), ConnectError> {
    let endpoint = Endpoint::parse(url)?;
    let transport = match chosen {
        Some(transport) => transport.clone(),
        None => lookup(endpoint.scheme()).ok_or_else(|| ConnectError::UnknownScheme {
            url: mask_credentials(url),
            scheme: endpoint.scheme().to_string(),
            registered: schemes(),
        })?,
    };
    Ok((endpoint, transport))
}

/// Parses `url`, finds its transport — `chosen` if there is one (a connection's configured
/// transport), or else the one registered for the URL's scheme — and opens a link.
pub(crate) fn open(
    url: &str,
    chosen: Option<&Arc<dyn Transport>>,
) -> Result<(Endpoint, Box<dyn Link>), ConnectError> {
    let (endpoint, transport) = check(url, chosen)?;
    let link = transport
        .open(&endpoint)
        .map_err(|error| ConnectError::Io { url: mask_credentials(url), error })?;
    Ok((endpoint, link))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_scheme_lists_the_registered_ones() {
        let Err(ConnectError::UnknownScheme { scheme, registered, .. }) = open("nope://x", None)
        else {
            panic!("expected an unknown scheme");
        };
        assert_eq!(scheme, "nope");
        assert!(registered.contains(&"tcp".to_string()));
    }

    #[test]
    fn an_override_replaces_the_scheme_but_the_url_is_still_checked() {
        let mem: Arc<dyn Transport> = Arc::new(mem::Mem);
        let chosen = Some(&mem);
        assert!(
            matches!(open("nope://x", chosen), Err(ConnectError::Io { .. })),
            "mem: no listener"
        );
        assert!(matches!(open("no-scheme", chosen), Err(ConnectError::InvalidUrl { .. })));
    }
}
