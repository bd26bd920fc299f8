//! Fetching revocation data over HTTP: CRLs from cRLDistributionPoints (RFC 5280 section
//! 4.2.1.13) and, through [`http_post`], OCSP (RFC 6960 appendix A).
//!
//! The contract with the message path: a message never waits for a CA longer than the bound its
//! caller gives ([`CrlFetcher::get`]'s `wait`). A fetch runs on its own thread; when the bound
//! passes first, the message goes on with "not yet known" and the fetch, still running, fills
//! the cache for the next message. One fetch per URL at a time, whatever the number of messages
//! asking, so the first message of an unseen CA costs one request, not one per message.
//!
//! Bounds: only `http:` URLs (RFC 5280 4.2.1.13 and RFC 6960 name HTTP; the data is signed, so
//! TLS adds nothing but a way to fail), no redirects at all (a redirect could lead to another
//! scheme or host), no proxy from the environment, a body limit ([`MAX_CRL_BYTES`],
//! [`MAX_OCSP_BYTES`]), one timeout for the whole exchange, and a per-host backoff after a
//! failure (doubling from [`BACKOFF_MIN`] to [`BACKOFF_MAX`]) so a CA that is down is not asked
//! again by every message.
//!
//! A fetched CRL is cached until its nextUpdate and fetched again in the background shortly
//! before ([`refresh_margin`]). The cache only holds what the server said; whether a CRL is
//! authentic is decided by its user against the issuer on the path ([`CachedCrl::verified_by`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::pki::revocation::Crl;

/// Largest CRL body read (a big public CA's CRL is a few MiB).
pub const MAX_CRL_BYTES: u64 = 10 * 1024 * 1024;
/// Largest OCSP response body read (one response is a few KiB).
pub const MAX_OCSP_BYTES: u64 = 64 * 1024;
/// First wait before a host that failed is asked again.
pub const BACKOFF_MIN: Duration = Duration::from_secs(30);
/// Longest wait before a failed host is asked again.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30 * 60);
/// Distribution points whose CRL is kept in memory at most (each CRL up to [`MAX_CRL_BYTES`]).
pub const MAX_CACHED_CRLS: usize = 1000;
/// How long a CRL without nextUpdate is used before it is fetched again.
const NO_NEXT_UPDATE_TTL: i64 = 3600;

/// Why revocation data could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Not an `http:` URL.
    #[error("{url}: not an http URL, not fetched")]
    Scheme {
        /// The URL as the certificate gives it.
        url: String,
    },
    /// The host failed recently; it is not asked again yet.
    #[error("{host} failed {failures} time(s) in a row; not asked again for {wait_secs} s")]
    Backoff {
        /// Host (and port) of the URL.
        host: String,
        /// Consecutive failures.
        failures: u32,
        /// Seconds until the next attempt.
        wait_secs: u64,
    },
    /// The fetch did not finish within the message's bound; it goes on in the background.
    #[error("{url}: no answer within {waited_ms} ms (still being fetched)")]
    Pending {
        /// The URL.
        url: String,
        /// How long the message waited.
        waited_ms: u64,
    },
    /// The exchange failed (connection, HTTP status, body too large, timeout).
    #[error("{url}: {reason}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The body is not a CRL.
    #[error("{url}: {reason}")]
    Malformed {
        /// The URL.
        url: String,
        /// The parser's complaint.
        reason: String,
    },
}

/// The host (and port) part of an `http://` URL, or `None` for any other scheme.
pub fn http_host(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("http://").or_else(|| {
        url.get(..7)
            .filter(|p| p.eq_ignore_ascii_case("http://"))
            .map(|_| &url[7..])
    })?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    (!host.is_empty() && !host.contains('@')).then_some(host)
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .proxy(None)
        .http_status_as_error(false)
        .build()
        .into()
}

fn read_body(
    url: &str,
    resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    max: u64,
) -> Result<Vec<u8>, FetchError> {
    let http = |reason: String| FetchError::Http {
        url: url.to_string(),
        reason,
    };
    let mut resp = resp.map_err(|e| http(e.to_string()))?;
    let status = resp.status();
    if status != 200 {
        return Err(http(format!("HTTP status {}", status.as_u16())));
    }
    resp.body_mut()
        .with_config()
        .limit(max)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(n) => http(format!("body larger than {n} bytes")),
            e => http(e.to_string()),
        })
}

/// GET `url` (http only) within `timeout`, at most `max` bytes of body.
pub fn http_get(url: &str, timeout: Duration, max: u64) -> Result<Vec<u8>, FetchError> {
    if http_host(url).is_none() {
        return Err(FetchError::Scheme { url: url.into() });
    }
    read_body(url, agent(timeout).get(url).call(), max)
}

/// POST `body` to `url` (http only) with `content_type` within `timeout`, at most `max` bytes of
/// answer (RFC 6960 appendix A.1).
pub fn http_post(
    url: &str,
    content_type: &str,
    body: &[u8],
    timeout: Duration,
    max: u64,
) -> Result<Vec<u8>, FetchError> {
    if http_host(url).is_none() {
        return Err(FetchError::Scheme { url: url.into() });
    }
    let resp = agent(timeout)
        .post(url)
        .header("Content-Type", content_type)
        .send(body);
    read_body(url, resp, max)
}

/// How long before nextUpdate a CRL is fetched again in the background: a tenth of its
/// validity window, between one minute and one hour.
pub fn refresh_margin(this_update: i64, next_update: i64) -> i64 {
    ((next_update - this_update) / 10).clamp(60, 3600)
}

/// A CRL as fetched, with what its users learned about it.
#[derive(Debug)]
pub struct CachedCrl {
    /// The CRL.
    pub crl: Crl,
    /// The URL it came from.
    pub url: String,
    /// When it was fetched, Unix seconds.
    pub fetched_at: i64,
    /// Fingerprints of the issuer certificates its signature verified with, so the hot path
    /// checks a signature once per CRL, not once per message.
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl CachedCrl {
    /// Whether `issuer` may vouch for this CRL (checked once per issuer certificate).
    pub fn verified_by(&self, issuer: &crate::pki::Cert) -> Result<(), String> {
        let fp = issuer.fingerprint();
        if self
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&fp)
        {
            return Ok(());
        }
        self.crl
            .verify_signature(issuer)
            .map_err(|e| e.to_string())?;
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(fp);
        Ok(())
    }

    /// Records that `issuer`'s CRLs may be answered by this one although it does not verify
    /// with `issuer`'s key (another key of the same CA, RFC 5280 section 6.3.3 (f), checked by
    /// the caller), so the check is not repeated per message.
    pub fn vouched_for(&self, issuer: &crate::pki::Cert) {
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(issuer.fingerprint());
    }

    /// Whether it may still be relied on at `now` (before nextUpdate; an hour after fetching
    /// when it has none).
    pub fn fresh_at(&self, now: i64) -> bool {
        match self.crl.next_update() {
            Some(n) => now <= n,
            None => now <= self.fetched_at + NO_NEXT_UPDATE_TTL,
        }
    }

    fn wants_refresh(&self, now: i64) -> bool {
        match self.crl.next_update() {
            Some(n) => now + refresh_margin(self.crl.this_update(), n) >= n,
            None => now >= self.fetched_at + NO_NEXT_UPDATE_TTL,
        }
    }
}

/// What [`CrlFetcher::get`] found.
#[derive(Debug, Clone, Default)]
pub struct CrlAnswer {
    /// The newest CRL known for the URL, fresh or not.
    pub crl: Option<Arc<CachedCrl>>,
    /// Why no fresh CRL is known, when it is not.
    pub error: Option<FetchError>,
}

/// Counts of fetches, for `/metrics` (`smimegw_revocation_fetches_total{kind,outcome}`).
#[derive(Debug, Default)]
pub struct FetchCounts {
    /// CRL fetches that brought a CRL.
    pub crl_ok: AtomicU64,
    /// CRL fetches that failed.
    pub crl_failed: AtomicU64,
    /// OCSP requests that brought a usable response.
    pub ocsp_ok: AtomicU64,
    /// OCSP requests that failed.
    pub ocsp_failed: AtomicU64,
}

#[derive(Debug, Default)]
struct HostState {
    failures: u32,
    until: Option<Instant>,
}

#[derive(Debug, Default)]
struct State {
    crls: HashMap<String, Arc<CachedCrl>>,
    /// Last failure per URL, reported while the host backs off.
    errors: HashMap<String, FetchError>,
    inflight: HashSet<String>,
    hosts: HashMap<String, HostState>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    done: Condvar,
    timeout: Duration,
    counts: FetchCounts,
}

/// The in-memory cache of fetched CRLs, with one fetch per URL at a time and a per-host
/// backoff. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct CrlFetcher {
    inner: Arc<Inner>,
}

impl CrlFetcher {
    /// A fetcher whose HTTP exchanges take at most `timeout` each.
    pub fn new(timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                done: Condvar::new(),
                timeout,
                counts: FetchCounts::default(),
            }),
        }
    }

    /// Fetch counters.
    pub fn counts(&self) -> &FetchCounts {
        &self.inner.counts
    }

    /// The per-host backoff rule and the shared state, for OCSP too.
    pub(crate) fn backoff(&self, url: &str) -> Option<FetchError> {
        let host = http_host(url)?;
        let st = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        backoff_of(&st, host)
    }

    /// Records the outcome of an exchange with `url`'s host.
    pub(crate) fn record_host(&self, url: &str, ok: bool) {
        if let Some(host) = http_host(url) {
            let mut st = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
            record(&mut st, host, ok);
        }
    }

    /// The HTTP timeout of one exchange.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The CRL published at `url`: from the cache while fresh at `now` (a background refresh
    /// starts shortly before nextUpdate); else fetched, waiting at most `wait` for it. When
    /// no fresh CRL can be had, the answer carries the last one known (if any) and why.
    pub fn get(&self, url: &str, now: i64, wait: Duration) -> CrlAnswer {
        let Some(host) = http_host(url).map(str::to_string) else {
            return CrlAnswer {
                crl: None,
                error: Some(FetchError::Scheme { url: url.into() }),
            };
        };
        let started = Instant::now();
        let mut st = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        let cached = st.crls.get(url).cloned();
        if let Some(c) = &cached
            && c.fresh_at(now)
        {
            if c.wants_refresh(now) && backoff_of(&st, &host).is_none() {
                self.start(&mut st, url);
            }
            return CrlAnswer {
                crl: cached,
                error: None,
            };
        }
        if !st.inflight.contains(url) {
            if let Some(e) = backoff_of(&st, &host) {
                let error = st.errors.get(url).cloned().unwrap_or(e);
                return CrlAnswer {
                    crl: cached,
                    error: Some(error),
                };
            }
            self.start(&mut st, url);
        }
        // Wait for the fetch (ours or another message's) until the bound.
        loop {
            if !st.inflight.contains(url) {
                let crl = st.crls.get(url).cloned();
                let error = match &crl {
                    Some(c) if c.fresh_at(now) => None,
                    _ => st.errors.get(url).cloned(),
                };
                return CrlAnswer { crl, error };
            }
            let left = wait.saturating_sub(started.elapsed());
            if left.is_zero() {
                return CrlAnswer {
                    crl: st.crls.get(url).cloned(),
                    error: Some(FetchError::Pending {
                        url: url.into(),
                        waited_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    }),
                };
            }
            st = self
                .inner
                .done
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Starts a background fetch of `url` (the caller checked that none runs).
    fn start(&self, st: &mut State, url: &str) {
        if !st.inflight.insert(url.to_string()) {
            return;
        }
        let inner = self.inner.clone();
        let url = url.to_string();
        let spawned = std::thread::Builder::new().name("crl-fetch".into()).spawn({
            let url = url.clone();
            move || fetch_crl(&inner, &url)
        });
        if spawned.is_err() {
            st.inflight.remove(&url);
        }
    }
}

fn backoff_of(st: &State, host: &str) -> Option<FetchError> {
    let h = st.hosts.get(host)?;
    let until = h.until?;
    let now = Instant::now();
    (until > now).then(|| FetchError::Backoff {
        host: host.to_string(),
        failures: h.failures,
        wait_secs: (until - now).as_secs().max(1),
    })
}

fn record(st: &mut State, host: &str, ok: bool) {
    if ok {
        st.hosts.remove(host);
        return;
    }
    let h = st.hosts.entry(host.to_string()).or_default();
    h.failures = h.failures.saturating_add(1);
    let wait = BACKOFF_MIN
        .saturating_mul(1u32 << h.failures.saturating_sub(1).min(10))
        .min(BACKOFF_MAX);
    h.until = Some(Instant::now() + wait);
}

fn fetch_crl(inner: &Inner, url: &str) {
    let result = http_get(url, inner.timeout, MAX_CRL_BYTES).and_then(|body| {
        Crl::parse(&body, url).map_err(|e| FetchError::Malformed {
            url: url.into(),
            reason: e.to_string(),
        })
    });
    let now = crate::pki::profile::now();
    let mut st = inner.state.lock().unwrap_or_else(|e| e.into_inner());
    st.inflight.remove(url);
    let host = http_host(url).unwrap_or_default().to_string();
    match result {
        Ok(crl) => {
            inner.counts.crl_ok.fetch_add(1, Ordering::Relaxed);
            let stale = crl.next_update().is_some_and(|n| n < now);
            // An out-of-date CRL is kept (it still proves revocations) but the host is not
            // asked again at once: the CA has nothing newer to give yet.
            record(&mut st, &host, !stale);
            let keep_old = st
                .crls
                .get(url)
                .is_some_and(|old| old.crl.is_newer_than(&crl));
            if !keep_old {
                if st.crls.len() >= MAX_CACHED_CRLS && !st.crls.contains_key(url) {
                    // Out-of-date CRLs go first, then the one fetched longest ago.
                    st.crls.retain(|_, c| c.fresh_at(now));
                    if st.crls.len() >= MAX_CACHED_CRLS
                        && let Some(oldest) = st
                            .crls
                            .iter()
                            .min_by_key(|(_, c)| c.fetched_at)
                            .map(|(k, _)| k.clone())
                    {
                        st.crls.remove(&oldest);
                    }
                }
                st.crls.insert(
                    url.to_string(),
                    Arc::new(CachedCrl {
                        crl,
                        url: url.to_string(),
                        fetched_at: now,
                        verified: Mutex::new(HashSet::new()),
                    }),
                );
            }
            st.errors.remove(url);
        }
        Err(e) => {
            inner.counts.crl_failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "CRL fetch failed");
            record(&mut st, &host, false);
            if st.errors.len() >= MAX_CACHED_CRLS {
                st.errors.clear();
            }
            st.errors.insert(url.to_string(), e);
        }
    }
    drop(st);
    inner.done.notify_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_have_a_host() {
        assert_eq!(
            http_host("http://127.0.0.1:8080/a.crl"),
            Some("127.0.0.1:8080")
        );
        assert_eq!(http_host("HTTP://ca.test"), Some("ca.test"));
        assert_eq!(http_host("https://ca.test/a.crl"), None);
        assert_eq!(http_host("ldap://ca.test/cn=x"), None);
        assert_eq!(http_host("http://user@ca.test/"), None);
        assert_eq!(http_host("http:///x"), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let mut st = State::default();
        record(&mut st, "h", false);
        let Some(FetchError::Backoff { wait_secs, .. }) = backoff_of(&st, "h") else {
            panic!("no backoff");
        };
        assert!((29..=30).contains(&wait_secs));
        for _ in 0..20 {
            record(&mut st, "h", false);
        }
        let Some(FetchError::Backoff { wait_secs, .. }) = backoff_of(&st, "h") else {
            panic!("no backoff");
        };
        assert!(wait_secs <= BACKOFF_MAX.as_secs());
        record(&mut st, "h", true);
        assert!(backoff_of(&st, "h").is_none());
    }

    #[test]
    fn refresh_starts_a_tenth_before_next_update() {
        assert_eq!(refresh_margin(0, 7 * 86400), 3600);
        assert_eq!(refresh_margin(0, 100), 60);
        assert_eq!(refresh_margin(0, 6000), 600);
    }
}
