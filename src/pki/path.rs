//! Certificate path validation (RFC 5280 section 6) for S/MIME: may this certificate be trusted
//! for this address and this use, now?
//!
//! A path runs from the leaf through intermediates to a trust anchor: our own root or a root an
//! administrator trusts outright. A foreign root we *cross-certified* is not an anchor: the
//! cross-certificate (issued by our root for the foreign root's name and key, usually with name
//! constraints) is an intermediate, so the foreign CA's certificates chain to our root and the
//! constraints apply to them.
//!
//! Paths are built by depth-first search over every candidate issuer (same name, compatible key
//! identifiers), with backtracking, and each complete path is checked in full. When none is
//! valid, the failure of the path that got furthest is reported, so an administrator reads
//! "revoked" rather than "no issuer" when one path was merely revoked.
//!
//! [`ChainCache`] remembers successful validations, since the same chains arrive in mail all day.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::oid;
use crate::pki::cert::{Cert, format_time, same_name};
use crate::pki::keys::{HashAlgorithm, SignatureAlgorithm, SignatureError, verify_signature};
use crate::pki::name_constraints;
use crate::pki::revocation::{Crl, RevocationReason};

mod cache;
mod crl;
mod error;

pub use cache::ChainCache;
pub use crl::{CrlVerifications, crl_signed_by_another_key};
pub use error::PathError;
use error::{describe_ca, who};

/// Longest path searched, leaf and anchor included.
const MAX_DEPTH: usize = 8;
/// Bound on the search, so a message carrying many look-alike certificates cannot make path
/// building expensive.
const MAX_STEPS: usize = 2_000;

/// What the leaf certificate is going to be used for (RFC 8550 section 4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Usage {
    /// Verifying a signature: keyUsage digitalSignature or nonRepudiation.
    Signing,
    /// Encrypting to it: keyUsage keyEncipherment (RSA) or keyAgreement (EC).
    Encryption,
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Signing => "S/MIME signing",
            Self::Encryption => "S/MIME encryption",
        })
    }
}

/// Where an anchor's trust comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnchorKind {
    /// The gateway's own root CA.
    OwnRoot,
    /// A root an administrator added as trusted outright.
    TrustedRoot,
    /// A root taken from a root program's bundle (`trust import-bundle`); unless imported with
    /// `--internal-too` it never vouches for an address in [`TrustContext::internal_domains`].
    BundledRoot {
        /// Imported with `--internal-too`.
        internal_too: bool,
    },
}

/// A certificate trusted without further proof; its name constraints, if any, still apply.
#[derive(Debug, Clone)]
pub struct TrustAnchor {
    /// The root certificate.
    pub cert: Cert,
    /// Own or imported.
    pub kind: AnchorKind,
    /// A name for reports and logs.
    pub label: String,
}

/// Everything trust decisions depend on, as loaded from the directory.
#[derive(Debug, Clone, Default)]
pub struct TrustContext {
    /// Trust anchors.
    pub anchors: Vec<TrustAnchor>,
    /// Cross-certificates, our CA chain and other known intermediates (not trusted by
    /// themselves: they must chain to an anchor).
    pub intermediates: Vec<Cert>,
    /// CRLs; each is used for the certificates its issuer signed, once its signature verifies.
    pub crls: Vec<Crl>,
    /// The gateway's own mail domains (lowercase): a leaf with an address in one of them is
    /// trusted only through an anchor other than a [`AnchorKind::BundledRoot`] without
    /// `internal_too`, since our users' certificates come from our CA.
    pub internal_domains: Vec<String>,
    /// CRL signatures already verified with an issuer's key, as (CRL fingerprint, issuer
    /// fingerprint): each pair costs one signature check while this context lives (a new trust
    /// generation builds a new context), not one per message.
    pub verified_crls: CrlVerifications,
}

/// One validation request.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// The certificate to validate.
    pub leaf: &'a Cert,
    /// Certificates that came with it (e.g. from the CMS message), unauthenticated.
    pub untrusted: &'a [Cert],
    /// The time of validation, Unix seconds.
    pub at: i64,
    /// When set, the leaf must carry this address (compared case-insensitively).
    pub email: Option<&'a str>,
    /// When set, the leaf's keyUsage and extendedKeyUsage must allow this use.
    pub usage: Option<Usage>,
}

/// A path that passed every check.
#[derive(Debug, Clone)]
pub struct ValidatedPath {
    /// Label of the anchor the path ends at.
    pub anchor_label: String,
    /// Kind of that anchor.
    pub anchor_kind: AnchorKind,
    /// Leaf first, anchor last.
    pub path: Vec<Cert>,
    /// For each certificate of `path`: whether a usable CRL of its issuer was consulted
    /// (always `false` for the anchor, which nobody above it can revoke).
    pub revocation_checked: Vec<bool>,
    /// Things an administrator may want to know that did not make the path invalid
    /// (an out-of-date CRL, a CRL that could not be used, a version 1 root...).
    pub warnings: Vec<String>,
}

impl ValidatedPath {
    /// The validated leaf.
    pub fn leaf(&self) -> Option<&Cert> {
        self.path.first()
    }

    /// The earliest notAfter of the path: the path stays valid (time-wise) until then.
    pub fn valid_until(&self) -> i64 {
        self.path
            .iter()
            .map(Cert::not_after)
            .min()
            .unwrap_or(i64::MIN)
    }

    /// The latest notBefore of the path.
    pub fn valid_from(&self) -> i64 {
        self.path
            .iter()
            .map(Cert::not_before)
            .max()
            .unwrap_or(i64::MAX)
    }
}

/// Extensions whose criticality we can honour (RFC 5280 section 4.2: any other critical
/// extension makes the certificate unusable). certificatePolicies is accepted because we run
/// with initial-policy-set anyPolicy and no explicit-policy requirement, where its content
/// cannot invalidate a path; policyConstraints and policyMappings, which can, are not.
const UNDERSTOOD_EXTENSIONS: [der::asn1::ObjectIdentifier; 9] = [
    oid::KEY_USAGE,
    oid::EXT_KEY_USAGE,
    oid::BASIC_CONSTRAINTS,
    oid::NAME_CONSTRAINTS,
    oid::SUBJECT_ALT_NAME,
    oid::SUBJECT_KEY_IDENTIFIER,
    oid::AUTHORITY_KEY_IDENTIFIER,
    oid::CERTIFICATE_POLICIES,
    oid::ISSUER_ALT_NAME,
];

fn malformed(c: &Cert, reason: impl Into<String>) -> PathError {
    PathError::Malformed {
        subject: who(c),
        serial: c.serial_hex(),
        reason: reason.into(),
    }
}

/// Structural checks on one certificate: decodable extensions we use, no duplicate and no
/// unknown critical extension, matching signature algorithm fields (RFC 5280 4.1.1.2).
fn check_structure(c: &Cert) -> Result<(), PathError> {
    c.check_extensions()
        .map_err(|e| malformed(c, e.to_string()))?;
    let tbs = c.x509().tbs_certificate();
    if tbs.signature() != c.x509().signature_algorithm() {
        return Err(malformed(
            c,
            "the signature algorithm inside the certificate differs from the outer one",
        ));
    }
    let exts = tbs.extensions().map(Vec::as_slice).unwrap_or_default();
    for (i, e) in exts.iter().enumerate() {
        if exts[..i].iter().any(|p| p.extn_id == e.extn_id) {
            return Err(malformed(
                c,
                format!("extension {} appears twice", e.extn_id),
            ));
        }
        if e.critical && !UNDERSTOOD_EXTENSIONS.contains(&e.extn_id) {
            return Err(malformed(
                c,
                format!("unsupported critical extension {}", e.extn_id),
            ));
        }
    }
    Ok(())
}

/// The first of the leaf's addresses (and the address asked about) in an internal domain.
fn internal_address(domains: &[String], leaf: &Cert, asked: Option<&str>) -> Option<String> {
    let internal = |a: &str| {
        a.rsplit_once('@').is_some_and(|(_, d)| {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            domains.contains(&d)
        })
    };
    leaf.email_addresses()
        .into_iter()
        .chain(asked.map(|a| a.trim().to_ascii_lowercase()))
        .find(|a| internal(a))
}

/// Whether `issuer` may be the issuer of `child` by name and key identifier (RFC 5280
/// section 4.2.1.1: when both identifiers are present they must agree).
fn could_issue(child: &Cert, issuer: &Cert) -> bool {
    if !same_name(child.issuer(), issuer.subject()) {
        return false;
    }
    match (
        child.authority_key_id().ok().flatten(),
        issuer.subject_key_id().ok().flatten(),
    ) {
        (Some(aki), Some(ski)) => aki == ski,
        _ => true,
    }
}

/// Whether a certificate's own extensions allow `usage` (keyUsage, extendedKeyUsage), before
/// any path is built: the cheap question to ask first, since a signing-only certificate
/// (the normal dual-certificate case) can never validate for encryption.
pub fn leaf_allows(leaf: &Cert, usage: Usage) -> bool {
    usage_of_leaf(leaf, usage).is_ok()
}

fn usage_of_leaf(leaf: &Cert, usage: Usage) -> Result<(), String> {
    let ku = leaf.key_usage().map_err(|e| e.to_string())?;
    if let Some(ku) = ku {
        match usage {
            Usage::Signing => {
                if !(ku.digital_signature() || ku.non_repudiation()) {
                    return Err("keyUsage digitalSignature or nonRepudiation".into());
                }
            }
            Usage::Encryption => {
                let alg = leaf.spki().algorithm.oid;
                let ok = if alg == oid::RSA_ENCRYPTION {
                    ku.key_encipherment()
                } else if alg == oid::EC_PUBLIC_KEY {
                    ku.key_agreement()
                } else {
                    ku.key_encipherment() || ku.key_agreement()
                };
                if !ok {
                    return Err(if alg == oid::EC_PUBLIC_KEY {
                        "keyUsage keyAgreement".into()
                    } else {
                        "keyUsage keyEncipherment".into()
                    });
                }
            }
        }
    }
    eku_allows_email(leaf)
}

/// RFC 5280 section 4.2.1.12: when extendedKeyUsage is present it must list
/// emailProtection or anyExtendedKeyUsage.
fn eku_allows_email(c: &Cert) -> Result<(), String> {
    match c.extended_key_usage().map_err(|e| e.to_string())? {
        Some(ekus)
            if !ekus
                .iter()
                .any(|o| *o == oid::KP_EMAIL_PROTECTION || *o == oid::ANY_EXTENDED_KEY_USAGE) =>
        {
            Err("extendedKeyUsage emailProtection".into())
        }
        _ => Ok(()),
    }
}

/// Validates `q` against `ctx`: the first path found that passes every check, or the most
/// specific failure among the candidate paths.
pub fn validate(ctx: &TrustContext, q: &Query<'_>) -> Result<ValidatedPath, PathError> {
    validate_to(ctx, q, None)
}

/// [`validate`], accepting only paths that end at `only_anchor` when it is given: how the
/// issuer of a CRL signed with another key of a CA is validated (RFC 5280 section 6.3.3 (f):
/// "the trust anchor for the certification path MUST be the same as the trust anchor used to
/// validate the target certificate"). Such a nested validation does not look for CRL signers
/// with other keys in turn, so a CRL signer cannot vouch for itself in a loop.
fn validate_to(
    ctx: &TrustContext,
    q: &Query<'_>,
    only_anchor: Option<&TrustAnchor>,
) -> Result<ValidatedPath, PathError> {
    let mut pool: Vec<&Cert> = Vec::new();
    for c in q.untrusted.iter().chain(&ctx.intermediates) {
        let is_anchor = ctx.anchors.iter().any(|a| a.cert == *c);
        if !is_anchor && *c != *q.leaf && !pool.contains(&c) {
            pool.push(c);
        }
    }
    let mut b = Builder {
        ctx,
        q,
        pool,
        sig_memo: RefCell::new(HashMap::new()),
        crl_memo: RefCell::new(HashMap::new()),
        best: None,
        dead_end: None,
        steps: 0,
        only_anchor: only_anchor.map(|a| a.cert.fingerprint()),
    };
    // The leaf may itself be an anchor (someone checks our root, or a trusted self-signed
    // certificate): the path is that certificate alone.
    if let Some(a) = b.anchors().find(|a| a.cert == *q.leaf) {
        match b.check(&[], a) {
            Ok(p) => return Ok(p),
            Err(e) => b.record(e),
        }
    }
    let mut chain = vec![q.leaf];
    if let Some(p) = b.extend(&mut chain) {
        return Ok(p);
    }
    Err(b
        .best
        .or(b.dead_end.map(|(_, e)| e))
        .unwrap_or_else(|| PathError::NoIssuer {
            subject: who(q.leaf),
            serial: q.leaf.serial_hex(),
            issuer: q.leaf.issuer_string(),
        }))
}

/// (child, issuer) certificate fingerprints.
type FingerprintPair = ([u8; 32], [u8; 32]);

/// (index into [`TrustContext::crls`], issuer fingerprint, anchor fingerprint).
type CrlMemoKey = (usize, [u8; 32], [u8; 32]);

struct Builder<'a> {
    ctx: &'a TrustContext,
    q: &'a Query<'a>,
    pool: Vec<&'a Cert>,
    /// (child, issuer) fingerprints -> signature verdict, so backtracking does not repeat work.
    sig_memo: RefCell<HashMap<FingerprintPair, Result<(), SignatureError>>>,
    /// (CRL index, issuer fingerprint, anchor fingerprint) -> whether the CRL is authenticated
    /// for that issuer on a path to that anchor (or why not).
    crl_memo: RefCell<HashMap<CrlMemoKey, Result<(), String>>>,
    /// Most specific failure of a complete path.
    best: Option<PathError>,
    /// Failure of the longest incomplete path: (chain length, error).
    dead_end: Option<(usize, PathError)>,
    steps: usize,
    /// Fingerprint of the only anchor paths may end at, when validating a CRL issuer
    /// ([`validate_to`]); `None` for an ordinary validation.
    only_anchor: Option<[u8; 32]>,
}

impl<'a> Builder<'a> {
    /// The anchors paths may end at.
    fn anchors(&self) -> impl Iterator<Item = &'a TrustAnchor> + use<'a> {
        let only = self.only_anchor;
        self.ctx
            .anchors
            .iter()
            .filter(move |a| only.is_none_or(|f| a.cert.fingerprint() == f))
    }

    fn record(&mut self, e: PathError) {
        if self.best.as_ref().is_none_or(|b| e.rank() > b.rank()) {
            self.best = Some(e);
        }
    }

    fn record_dead_end(&mut self, len: usize, e: PathError) {
        if self.dead_end.as_ref().is_none_or(|(l, _)| len > *l) {
            self.dead_end = Some((len, e));
        }
    }

    /// Extends `chain` (leaf first) towards an anchor; returns the first valid path.
    fn extend(&mut self, chain: &mut Vec<&'a Cert>) -> Option<ValidatedPath> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return None;
        }
        let cur = *chain.last()?;
        let mut found_issuer = false;
        for a in self.anchors() {
            if could_issue(cur, &a.cert) {
                found_issuer = true;
                match self.check(chain, a) {
                    Ok(p) => return Some(p),
                    Err(e) => self.record(e),
                }
            }
        }
        if chain.len() + 1 < MAX_DEPTH {
            let at = self.q.at;
            let mut candidates: Vec<&'a Cert> = self
                .pool
                .iter()
                .copied()
                .filter(|c| could_issue(cur, c) && !chain.contains(c))
                .collect();
            // Try the likeliest issuers first: matching key identifier, currently valid, not a
            // self-issued certificate (a root presented alongside its cross-certificate).
            candidates.sort_by_key(|c| {
                let ski_match = matches!(
                    (cur.authority_key_id(), c.subject_key_id()),
                    (Ok(Some(a)), Ok(Some(s))) if a == s
                );
                let valid = c.not_before() <= at && at <= c.not_after();
                (!ski_match, !valid, c.is_self_issued())
            });
            for c in candidates {
                found_issuer = true;
                chain.push(c);
                if let Some(p) = self.extend(chain) {
                    return Some(p);
                }
                chain.pop();
            }
        } else {
            found_issuer = true; // too long: not a missing issuer
        }
        if !found_issuer {
            let e = if cur.is_self_issued() {
                PathError::UntrustedRoot {
                    subject: who(cur),
                    serial: cur.serial_hex(),
                }
            } else {
                PathError::NoIssuer {
                    subject: who(cur),
                    serial: cur.serial_hex(),
                    issuer: cur.issuer_string(),
                }
            };
            self.record_dead_end(chain.len(), e);
        }
        None
    }

    fn verify_sig(&self, child: &Cert, issuer: &Cert) -> Result<(), SignatureError> {
        let key = (child.fingerprint(), issuer.fingerprint());
        if let Some(r) = self.sig_memo.borrow().get(&key) {
            return r.clone();
        }
        let r = verify_signature(
            issuer.spki(),
            child.x509().signature_algorithm(),
            child.tbs_der(),
            child.signature_bytes(),
        );
        self.sig_memo.borrow_mut().insert(key, r.clone());
        r
    }

    /// Every check of RFC 5280 section 6.1 we implement, on the path `certs` + `anchor`, in the
    /// order of [`PathError::rank`].
    fn check(&self, certs: &[&'a Cert], anchor: &TrustAnchor) -> Result<ValidatedPath, PathError> {
        let mut full: Vec<&Cert> = certs.to_vec();
        full.push(&anchor.cert);
        let n = full.len();
        let q = self.q;
        let mut warnings = Vec::new();

        for c in &full {
            check_structure(c)?;
        }

        // Signatures, each with the next certificate's key (the anchor's for the last one).
        for i in 0..n - 1 {
            let (c, issuer) = (full[i], full[i + 1]);
            let alg = SignatureAlgorithm::from_algorithm_identifier(c.x509().signature_algorithm());
            if let Ok(a) = alg
                && a.hash() == HashAlgorithm::Sha1
            {
                // SHA-1 certificate signatures can be forged by chosen-prefix collision.
                return Err(PathError::UnsupportedAlgorithm {
                    subject: who(c),
                    serial: c.serial_hex(),
                    reason: "signed with SHA-1, which is no longer accepted for certificates"
                        .into(),
                });
            }
            match self.verify_sig(c, issuer) {
                Ok(()) => {}
                Err(SignatureError::Invalid) => {
                    return Err(PathError::BadSignature {
                        subject: who(c),
                        serial: c.serial_hex(),
                        issuer: who(issuer),
                    });
                }
                Err(e) => {
                    return Err(PathError::UnsupportedAlgorithm {
                        subject: who(c),
                        serial: c.serial_hex(),
                        reason: e.to_string(),
                    });
                }
            }
        }

        // Issuers must be CAs allowed to sign certificates (RFC 5280 6.1.4 (k), (n)), within
        // their pathLenConstraint (6.1.4 (l), (m)); self-issued intermediates do not count.
        for i in 1..n {
            let c = full[i];
            let not_ca = |reason: &str| PathError::NotACa {
                subject: who(c),
                serial: c.serial_hex(),
                reason: reason.into(),
            };
            let bc = c
                .basic_constraints()
                .map_err(|e| malformed(c, e.to_string()))?;
            let is_v1_anchor = i == n - 1 && c.x509().tbs_certificate().extensions().is_none();
            match &bc {
                Some(bc) if bc.ca => {}
                None if is_v1_anchor => warnings.push(format!(
                    "trust anchor {} has no extensions (version 1 certificate); it is trusted as a CA",
                    who(c)
                )),
                Some(_) => return Err(not_ca("basicConstraints cA is FALSE")),
                None => return Err(not_ca("no basicConstraints extension")),
            }
            if let Some(ku) = c.key_usage().map_err(|e| malformed(c, e.to_string()))?
                && !ku.key_cert_sign()
            {
                return Err(not_ca("keyUsage lacks keyCertSign"));
            }
            if let Some(max) = bc.as_ref().and_then(|b| b.path_len_constraint) {
                let found = (1..i).filter(|&j| !full[j].is_self_issued()).count();
                if found > usize::from(max) {
                    return Err(PathError::PathLenExceeded {
                        ca_subject: who(c),
                        ca_serial: c.serial_hex(),
                        max,
                        found,
                    });
                }
            }
        }

        // Name constraints of every CA (the anchor's too) on every certificate below it, except
        // self-issued intermediates (RFC 5280 6.1.3 (b), 6.1.4 (g)).
        for i in 1..n {
            let ca = full[i];
            let Some(nc) = ca
                .name_constraints()
                .map_err(|e| malformed(ca, e.to_string()))?
            else {
                continue;
            };
            for (j, c) in full.iter().enumerate().take(i) {
                if j > 0 && c.is_self_issued() {
                    continue;
                }
                if let Err(v) = name_constraints::check(&nc, c) {
                    return Err(PathError::NameConstraintViolated {
                        subject: who(c),
                        serial: c.serial_hex(),
                        email: v.name().to_string(),
                        constraint_from: describe_ca(ca),
                        detail: v.rule(),
                    });
                }
            }
        }

        // A bundled root vouches for the world, not for our own users (issue 12): like a name
        // constraint on the anchor, it excludes the internal domains unless --internal-too.
        let excludes_internal =
            matches!(anchor.kind, AnchorKind::BundledRoot { internal_too } if !internal_too);
        if excludes_internal
            && let Some(email) = internal_address(&self.ctx.internal_domains, full[0], q.email)
        {
            return Err(PathError::InternalAddress {
                subject: who(full[0]),
                serial: full[0].serial_hex(),
                email,
                anchor: anchor.label.clone(),
            });
        }

        // Revocation, from the top so a revoked CA is named rather than its leaf.
        let mut revocation_checked = vec![false; n];
        for i in (0..n - 1).rev() {
            revocation_checked[i] = self.crl_status(full[i], full[i + 1], anchor, &mut warnings)?;
        }

        // Validity of every certificate, the anchor's included (as OpenSSL does).
        for c in &full {
            if q.at < c.not_before() {
                return Err(PathError::NotYetValid {
                    subject: who(c),
                    serial: c.serial_hex(),
                    not_before: c.not_before(),
                });
            }
            if q.at > c.not_after() {
                return Err(PathError::Expired {
                    subject: who(c),
                    serial: c.serial_hex(),
                    not_after: c.not_after(),
                });
            }
        }

        // Usage: the leaf's keyUsage/EKU, and (as OpenSSL and Windows do) an EKU on a CA
        // certificate restricts what it may certify.
        let leaf = full[0];
        if let Some(usage) = q.usage {
            let wrong = |c: &Cert, needed: String| PathError::WrongUsage {
                subject: who(c),
                serial: c.serial_hex(),
                usage,
                needed,
            };
            usage_of_leaf(leaf, usage).map_err(|needed| wrong(leaf, needed))?;
            for c in full.iter().skip(1) {
                eku_allows_email(c).map_err(|needed| wrong(c, needed))?;
            }
        }

        if let Some(email) = q.email {
            let addrs = leaf.email_addresses();
            let want = email.trim().to_ascii_lowercase();
            if !addrs.contains(&want) {
                return Err(PathError::AddressMismatch {
                    email: email.to_string(),
                    cert_addresses: addrs,
                    subject: who(leaf),
                    serial: leaf.serial_hex(),
                });
            }
        }

        Ok(ValidatedPath {
            anchor_label: anchor.label.clone(),
            anchor_kind: anchor.kind,
            path: full.into_iter().cloned().collect(),
            revocation_checked,
            warnings,
        })
    }
}

#[cfg(test)]
mod openssl_agreement;
#[cfg(test)]
mod tests;
