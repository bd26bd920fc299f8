//! Who may read the metrics listener.
//!
//! The listener answers on loopback by default, but a browser on the same machine can be made
//! to send it requests from any web page, and DNS rebinding makes such a page's own host name
//! resolve to 127.0.0.1. The `Host` field tells those requests apart: only the names in
//! `metrics.allowed_hosts` (loopback names by default) are served. Where the listener is
//! exposed further, `metrics.bearer_token_file` adds a shared secret (RFC 6750), compared in
//! constant time. The gauges name users and certificate expiries, so both checks come before
//! any answer but a refusal.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::http::Request;
use crate::config::MetricsConfig;

/// The host names the listener answers to when `metrics.allowed_hosts` is not set.
pub const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// Why the access rules could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// The token file could not be read.
    #[error("cannot read metrics.bearer_token_file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The token file holds no token.
    #[error(
        "metrics.bearer_token_file {0} is empty: write a random token into it (e.g. `openssl rand -hex 32`)"
    )]
    Empty(PathBuf),
}

/// Why a request is refused; each maps to one status.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    /// No `Host` field (HTTP/1.0 without one).
    #[error("a Host header field is required")]
    NoHost,
    /// A `Host` the listener does not answer to.
    #[error("host {0:?} is not served here (metrics.allowed_hosts)")]
    Host(String),
    /// A token is configured and the request did not carry it.
    #[error("a valid bearer token is required (metrics.bearer_token_file)")]
    Token,
}

impl Denied {
    /// The status line's code and reason.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            Denied::NoHost => (400, "Bad Request"),
            Denied::Host(_) => (403, "Forbidden"),
            Denied::Token => (401, "Unauthorized"),
        }
    }
}

/// The rules in force for one listener.
pub struct Access {
    /// Lower-cased host names, without port.
    hosts: Vec<String>,
    token: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("hosts", &self.hosts)
            .field("token", &self.token.as_ref().map(|_| "(set)"))
            .finish()
    }
}

impl Access {
    /// The rules of `[metrics]`, reading the token file when one is named.
    pub fn from_config(config: &MetricsConfig) -> Result<Self, AccessError> {
        let hosts = if config.allowed_hosts.is_empty() {
            LOOPBACK_HOSTS.iter().map(|h| h.to_string()).collect()
        } else {
            config
                .allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect()
        };
        let token = match &config.bearer_token_file {
            Some(path) => Some(read_token(path)?),
            None => None,
        };
        Ok(Self { hosts, token })
    }

    /// Whether `req` may be answered.
    pub fn check(&self, req: &Request) -> Result<(), Denied> {
        let host = req.host.as_deref().ok_or(Denied::NoHost)?;
        let name = host_name(host).to_ascii_lowercase();
        if !self.hosts.contains(&name) {
            return Err(Denied::Host(host.to_string()));
        }
        if let Some(token) = &self.token {
            let given = req
                .authorization
                .as_deref()
                .and_then(|a| {
                    let (scheme, value) = a.split_once(' ')?;
                    scheme.eq_ignore_ascii_case("bearer").then(|| value.trim())
                })
                .ok_or(Denied::Token)?;
            aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), token)
                .map_err(|_| Denied::Token)?;
        }
        Ok(())
    }
}

fn read_token(path: &Path) -> Result<Zeroizing<Vec<u8>>, AccessError> {
    let text = Zeroizing::new(std::fs::read(path).map_err(|source| AccessError::Read {
        path: path.to_path_buf(),
        source,
    })?);
    let token = Zeroizing::new(text.trim_ascii().to_vec());
    if token.is_empty() {
        return Err(AccessError::Empty(path.to_path_buf()));
    }
    Ok(token)
}

/// The host part of a `Host` value (RFC 9110 section 7.2: uri-host [ ":" port ]), an IPv6
/// literal keeping its brackets.
fn host_name(host: &str) -> &str {
    if let Some(end) = host.strip_prefix('[').and_then(|h| h.find(']')) {
        return &host[..end + 2];
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(host: Option<&str>, authorization: Option<&str>) -> Request {
        Request {
            head: false,
            path: "/metrics".into(),
            host: host.map(str::to_string),
            authorization: authorization.map(str::to_string),
        }
    }

    fn access(extra: &str) -> Access {
        let config: MetricsConfig = toml::from_str(extra).unwrap();
        Access::from_config(&config).unwrap()
    }

    #[test]
    fn loopback_names_are_served_by_default_and_nothing_else() {
        let a = access("");
        for ok in [
            "localhost",
            "LOCALHOST:9925",
            "127.0.0.1:9925",
            "[::1]:9925",
            "[::1]",
        ] {
            assert_eq!(a.check(&req(Some(ok), None)), Ok(()), "{ok}");
        }
        for bad in [
            "evil.test",
            "evil.test:9925",
            "127.0.0.1.evil.test",
            "localhost.evil.test:80",
            "[::2]:9925",
            "",
        ] {
            assert_eq!(
                a.check(&req(Some(bad), None)),
                Err(Denied::Host(bad.into())),
                "{bad}"
            );
        }
        assert_eq!(a.check(&req(None, None)), Err(Denied::NoHost));
        assert_eq!(Denied::Host("x".into()).status().0, 403);
    }

    #[test]
    fn configured_hosts_replace_the_loopback_names() {
        let a = access("allowed_hosts = [\"Metrics.Acme.Test\"]\n");
        assert_eq!(a.check(&req(Some("metrics.acme.test:9925"), None)), Ok(()));
        assert!(a.check(&req(Some("localhost"), None)).is_err());
    }

    #[test]
    fn a_configured_token_is_required_in_constant_time() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cret-token\n").unwrap();
        let a = access(&format!("bearer_token_file = \"{}\"\n", file.display()));
        let host = Some("localhost");
        assert_eq!(a.check(&req(host, Some("Bearer s3cret-token"))), Ok(()));
        assert_eq!(a.check(&req(host, Some("bearer  s3cret-token "))), Ok(()));
        for bad in [
            None,
            Some("Bearer s3cret"),
            Some("Basic s3cret-token"),
            Some("s3cret-token"),
        ] {
            assert_eq!(a.check(&req(host, bad)), Err(Denied::Token), "{bad:?}");
        }
        // The host is checked first: a foreign page learns nothing about the token.
        assert!(matches!(
            a.check(&req(Some("evil.test"), Some("Bearer s3cret-token"))),
            Err(Denied::Host(_))
        ));
        std::fs::write(&file, "\n").unwrap();
        let config: MetricsConfig =
            toml::from_str(&format!("bearer_token_file = \"{}\"\n", file.display())).unwrap();
        let e = Access::from_config(&config).unwrap_err().to_string();
        assert!(e.contains("is empty") && e.contains("token"), "{e}");
    }
}
