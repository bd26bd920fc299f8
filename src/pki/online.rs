//! The revocation status of a validated path, in words a reader of the result header can use:
//! checked (how, and how old the answer), revoked, or unknown (and why).
//!
//! Path validation ([`crate::pki::path`]) consults the CRLs an administrator imported and fails a
//! path one of them revokes. What it could not cover is completed here, after it, from CRLs
//! fetched from the certificates' cRLDistributionPoints ([`crate::pki::fetch`]), so the
//! validated-chain cache stays as it was and a warm cache costs one hash lookup per certificate.
//! RFC 5280 section 6.3 leaves "no answer" to local policy; the caller applies
//! `[revocation] when_unknown` to [`PathRevocation::Unknown`].
//!
//! Certificates our own CA issued are never fetched for: our CA's CRL is in the directory, and
//! the CA revokes through it.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use x509_cert::ext::pkix::CrlDistributionPoints;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};

use crate::pki::cert::{Cert, format_time, same_name};
use crate::pki::fetch::{CachedCrl, CrlFetcher, FetchError};
use crate::pki::ocsp::{self, OcspAnswer, OcspError, OcspStatus};
use crate::pki::path::{AnchorKind, PathError, TrustContext, ValidatedPath};
use crate::pki::revocation::Crl;

/// Where a "not revoked" answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// The CRL our own CA publishes, or our CA's authority over what it issued.
    OwnCa,
    /// A CRL an administrator imported.
    ImportedCrl,
    /// A CRL fetched from the certificate's cRLDistributionPoints.
    FetchedCrl,
    /// An OCSP response (RFC 6960).
    Ocsp,
}

impl Source {
    /// Words for the result header.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OwnCa => "own CA",
            Self::ImportedCrl => "imported CRL",
            Self::FetchedCrl => "fetched CRL",
            Self::Ocsp => "OCSP",
        }
    }
}

/// What a signature's verdict says when the revocation status of a certificate on its path
/// could not be learned (no CRL or OCSP answer, a responder down, an out-of-date CRL).
#[derive(Clone, Copy, Debug, serde::Deserialize, serde::Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum WhenUnknown {
    /// The signature passes; the result header still says revocation was not checked and why.
    #[default]
    Pass,
    /// The result is `neutral` (RFC 7281): intact, but not vouched for.
    Neutral,
    /// The result is `fail (revocation-unknown)`.
    Fail,
}

impl WhenUnknown {
    /// The configuration word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Neutral => "neutral",
            Self::Fail => "fail",
        }
    }
}

/// A signer's revocation status with the policy that judges it, as the gateway attaches it to
/// a [`crate::smime::signed::SignerReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationNote {
    /// The status of the signer's path.
    pub status: PathRevocation,
    /// `[revocation] when_unknown`.
    pub when_unknown: WhenUnknown,
    /// When it was found, Unix seconds (for the age of the answer).
    pub at: i64,
}

impl RevocationNote {
    /// Whether the status is unknown and the policy does not let that pass.
    pub fn withholds_pass(&self) -> bool {
        matches!(
            self.status,
            PathRevocation::Unknown { .. } | PathRevocation::Disabled
        ) && self.when_unknown != WhenUnknown::Pass
    }

    /// The line for the result header.
    pub fn describe(&self) -> String {
        self.status.describe(self.at)
    }
}

/// The revocation status of a whole path (every certificate below the anchor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathRevocation {
    /// Every certificate was found not revoked.
    Checked {
        /// The sources consulted, each once, in [`Source`] order.
        sources: Vec<Source>,
        /// thisUpdate of the oldest answer used, Unix seconds (`None` when only our own CA
        /// vouched).
        oldest: Option<i64>,
    },
    /// A certificate is revoked.
    Revoked(PathError),
    /// At least one certificate's status is not known.
    Unknown {
        /// Why, naming the certificate and what was tried.
        why: String,
    },
    /// Not checked, by configuration.
    Disabled,
}

impl PathRevocation {
    /// A short stable word for logs and metrics: `checked`, `revoked`, `unknown`, `disabled`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Checked { .. } => "checked",
            Self::Revoked(_) => "revoked",
            Self::Unknown { .. } => "unknown",
            Self::Disabled => "disabled",
        }
    }

    /// The one line the result header, the log and `trust check` print, at `now`.
    pub fn describe(&self, now: i64) -> String {
        match self {
            Self::Checked { sources, oldest } => {
                let how = sources
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" and ");
                match oldest {
                    Some(t) => format!("revocation checked ({how}, {} old)", age(now - t)),
                    None => format!("revocation checked ({how})"),
                }
            }
            Self::Revoked(e) => format!("revoked: {e}"),
            Self::Unknown { why } => format!("revocation not checked: {why}"),
            Self::Disabled => {
                "revocation not checked: fetching is off ([revocation] fetch = false) and no \
                 imported CRL covers the path"
                    .into()
            }
        }
    }
}

impl fmt::Display for PathRevocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(crate::pki::profile::now()))
    }
}

/// An age in the largest whole unit: `42 s`, `5 min`, `3 h`, `2 d`.
pub fn age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..172_800 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86400),
    }
}

/// The http URLs of a certificate's cRLDistributionPoints (RFC 5280 section 4.2.1.13): full
/// names only, for distribution points that cover every reason (a partitioned point by reason
/// or with a separate cRLIssuer does not give a complete CRL for this issuer).
pub fn crl_urls(c: &Cert) -> Vec<String> {
    let Ok(Some((_, points))) = c
        .x509()
        .tbs_certificate()
        .get_extension::<CrlDistributionPoints>()
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in points.0 {
        if p.reasons.is_some() || p.crl_issuer.is_some() {
            continue;
        }
        if let Some(DistributionPointName::FullName(names)) = p.distribution_point {
            for n in names {
                if let GeneralName::UniformResourceIdentifier(u) = n {
                    let u = u.to_string();
                    if crate::pki::fetch::http_host(&u).is_some() && !out.contains(&u) {
                        out.push(u);
                    }
                }
            }
        }
    }
    out
}

/// (certificate, issuer) fingerprints.
type FingerprintPair = ([u8; 32], [u8; 32]);

/// Counts for `/metrics` (`smimegw_revocation_status_total{status}`).
#[derive(Debug, Default)]
pub struct StatusCounts {
    /// Paths found not revoked.
    pub checked: AtomicU64,
    /// Paths with a revoked certificate.
    pub revoked: AtomicU64,
    /// Paths whose status is unknown.
    pub unknown: AtomicU64,
    /// Paths not checked because fetching is off.
    pub disabled: AtomicU64,
}

/// What settles the revocation status of paths: the fetcher and the switches of
/// `[revocation]`.
#[derive(Debug, Clone)]
pub struct Checker {
    fetcher: CrlFetcher,
    fetch: bool,
    ocsp: bool,
    counts: Arc<StatusCounts>,
    /// OCSP answers by (certificate, issuer) fingerprints, until they expire.
    answers: Arc<Mutex<HashMap<FingerprintPair, OcspAnswer>>>,
}

/// The status of one certificate.
enum One {
    Good(Source, Option<i64>),
    Unknown(String),
    /// Not covered, and fetching is off.
    Off,
}

/// The newest usable imported CRL of `c`'s issuer (path validation has verified its signature
/// when it marked `c` checked).
fn newest_imported<'a>(ctx: &'a TrustContext, c: &Cert) -> Option<&'a Crl> {
    ctx.crls
        .iter()
        .filter(|crl| same_name(crl.issuer(), c.issuer()) && crl.unusable_reason().is_none())
        .reduce(|a, b| if b.is_newer_than(a) { b } else { a })
}

fn who(c: &Cert) -> String {
    format!("{} (serial {})", c.subject_string(), c.serial_hex())
}

impl Checker {
    /// A checker; `fetch`, `ocsp` and `timeout` are `[revocation]`'s `fetch`, `ocsp` and
    /// `timeout_secs`. OCSP is asked only when fetching is on.
    pub fn new(fetch: bool, ocsp: bool, timeout: Duration) -> Self {
        Self {
            fetcher: CrlFetcher::new(timeout),
            fetch,
            ocsp: fetch && ocsp,
            counts: Arc::new(StatusCounts::default()),
            answers: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The fetcher (for its counters).
    pub fn fetcher(&self) -> &CrlFetcher {
        &self.fetcher
    }

    /// Status counters.
    pub fn counts(&self) -> &StatusCounts {
        &self.counts
    }

    /// The revocation status of `path` at `now`, waiting for fetches until `deadline` at most.
    pub fn check(
        &self,
        ctx: &TrustContext,
        path: &ValidatedPath,
        now: i64,
        deadline: Instant,
    ) -> PathRevocation {
        let n = path.path.len();
        let mut sources = Vec::new();
        let mut oldest: Option<i64> = None;
        let mut unknown = Vec::new();
        let mut off = false;
        let mut revoked = None;
        // From the top, so a revoked CA is named rather than its leaf (as path validation does).
        for i in (0..n.saturating_sub(1)).rev() {
            let own = i + 2 == n && path.anchor_kind == AnchorKind::OwnRoot;
            let imported = path.revocation_checked.get(i).copied().unwrap_or(false);
            let one = self.one(
                ctx,
                path,
                &path.path[i],
                &path.path[i + 1],
                own,
                imported,
                now,
                deadline,
            );
            match one {
                Err(e) => {
                    revoked = Some(e);
                    break;
                }
                Ok(One::Good(s, t)) => {
                    if !sources.contains(&s) {
                        sources.push(s);
                    }
                    if let Some(t) = t {
                        oldest = Some(oldest.map_or(t, |o| o.min(t)));
                    }
                }
                Ok(One::Unknown(w)) => unknown.push(w),
                Ok(One::Off) => off = true,
            }
        }
        let (r, counter) = if let Some(e) = revoked {
            (PathRevocation::Revoked(e), &self.counts.revoked)
        } else if !unknown.is_empty() {
            let why = unknown.join("; ");
            (PathRevocation::Unknown { why }, &self.counts.unknown)
        } else if off {
            (PathRevocation::Disabled, &self.counts.disabled)
        } else {
            sources.sort();
            let r = PathRevocation::Checked { sources, oldest };
            (r, &self.counts.checked)
        };
        counter.fetch_add(1, Ordering::Relaxed);
        r
    }

    /// The status of `c`, issued by `issuer`; `own` when our CA issued it, `imported` when path
    /// validation found an imported CRL of its issuer.
    #[allow(clippy::too_many_arguments)] // one certificate's whole situation, named
    fn one(
        &self,
        ctx: &TrustContext,
        path: &ValidatedPath,
        c: &Cert,
        issuer: &Cert,
        own: bool,
        imported: bool,
        now: i64,
        deadline: Instant,
    ) -> Result<One, PathError> {
        let imp = if imported {
            newest_imported(ctx, c)
        } else {
            None
        };
        if own {
            return Ok(One::Good(Source::OwnCa, imp.map(Crl::this_update)));
        }
        let stale_import = match imp {
            Some(crl) if crl.next_update().is_none_or(|t| now <= t) => {
                return Ok(One::Good(Source::ImportedCrl, Some(crl.this_update())));
            }
            Some(crl) => Some(format!(
                "the imported CRL of {} is out of date (nextUpdate {})",
                c.issuer_string(),
                format_time(crl.next_update().unwrap_or_default())
            )),
            None if imported => return Ok(One::Good(Source::ImportedCrl, None)),
            None => None,
        };
        if !self.fetch {
            return Ok(stale_import.map_or(One::Off, One::Unknown));
        }
        let urls = crl_urls(c);
        let mut why: Vec<String> = stale_import.into_iter().collect();
        if urls.is_empty() {
            why.push("no http CRL distribution point".into());
        }
        for url in urls {
            let wait = deadline.saturating_duration_since(Instant::now());
            let answer = self.fetcher.get(&url, now, wait);
            let Some(cached) = answer.crl else {
                why.extend(answer.error.map(|e| e.to_string()));
                continue;
            };
            if let Err(w) = usable(&cached, issuer, ctx, path, now) {
                why.push(format!("the CRL at {url} is not used: {w}"));
                continue;
            }
            if let Some(entry) = cached.crl.revoked(c.serial()) {
                return Err(PathError::Revoked {
                    subject: c.subject_string(),
                    serial: c.serial_hex(),
                    reason: entry.reason,
                    revoked_at: entry.revoked_at,
                });
            }
            if cached.fresh_at(now) {
                return Ok(One::Good(
                    Source::FetchedCrl,
                    Some(cached.crl.this_update()),
                ));
            }
            why.push(format!(
                "the CRL at {url} is out of date (nextUpdate {}){}",
                format_time(cached.crl.next_update().unwrap_or_default()),
                answer
                    .error
                    .as_ref()
                    .map(|e| format!(", and {e}"))
                    .unwrap_or_default()
            ));
        }
        if self.ocsp {
            let urls = ocsp::responder_urls(c);
            if urls.is_empty() {
                why.push("no http OCSP responder".into());
            }
            for url in urls {
                match self.ask(&url, c, issuer, now, deadline) {
                    Ok(a) => match a.status {
                        OcspStatus::Good => {
                            return Ok(One::Good(Source::Ocsp, Some(a.this_update)));
                        }
                        OcspStatus::Revoked { revoked_at, reason } => {
                            return Err(PathError::Revoked {
                                subject: c.subject_string(),
                                serial: c.serial_hex(),
                                reason,
                                revoked_at,
                            });
                        }
                        OcspStatus::Unknown => {
                            why.push(format!("the OCSP responder {url} does not know it"));
                        }
                    },
                    Err(e) => why.push(e.to_string()),
                }
            }
        }
        Ok(One::Unknown(format!("{}: {}", who(c), why.join("; "))))
    }

    /// The OCSP answer for `c` from `url`: cached until it expires, else asked within the
    /// time left before `deadline` (and the host's backoff).
    fn ask(
        &self,
        url: &str,
        c: &Cert,
        issuer: &Cert,
        now: i64,
        deadline: Instant,
    ) -> Result<OcspAnswer, OcspError> {
        let key = (c.fingerprint(), issuer.fingerprint());
        if let Some(a) = self
            .answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .filter(|a| now <= a.valid_until)
        {
            return Ok(a.clone());
        }
        if let Some(e) = self.fetcher.backoff(url) {
            return Err(e.into());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(OcspError::Fetch(FetchError::Pending {
                url: url.into(),
                waited_ms: 0,
            }));
        }
        let counts = self.fetcher.counts();
        let r = ocsp::query(url, c, issuer, now, left.min(self.fetcher.timeout()));
        self.fetcher.record_host(url, r.is_ok());
        match &r {
            Ok(a) => {
                counts.ocsp_ok.fetch_add(1, Ordering::Relaxed);
                let mut m = self.answers.lock().unwrap_or_else(|e| e.into_inner());
                if m.len() >= MAX_OCSP_ANSWERS {
                    m.retain(|_, a| now <= a.valid_until);
                    if m.len() >= MAX_OCSP_ANSWERS {
                        m.clear();
                    }
                }
                m.insert(key, a.clone());
            }
            Err(e) => {
                counts.ocsp_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "OCSP request failed");
            }
        }
        r
    }
}

/// OCSP answers kept at most (one per certificate asked about).
const MAX_OCSP_ANSWERS: usize = 100_000;

/// Whether a fetched CRL may be used for certificates of `issuer`.
/// Whether a fetched CRL may answer for certificates `issuer` signed: usable, and signed by
/// the issuer's key or, as RFC 5280 section 6.3.3 (f) allows, by another key of the same CA
/// that validates to the same anchor as `path` (with the path's certificates as intermediates).
fn usable(
    cached: &CachedCrl,
    issuer: &Cert,
    ctx: &TrustContext,
    path: &ValidatedPath,
    now: i64,
) -> Result<(), String> {
    if let Some(u) = cached.crl.unusable_reason() {
        return Err(u.to_string());
    }
    match cached.verified_by(issuer) {
        Ok(()) => Ok(()),
        Err(e) => match path.path.last() {
            Some(anchor)
                if crate::pki::path::crl_signed_by_another_key(
                    ctx,
                    &cached.crl,
                    issuer,
                    anchor,
                    &path.path,
                    now,
                ) =>
            {
                cached.vouched_for(issuer);
                Ok(())
            }
            _ => Err(e),
        },
    }
}
