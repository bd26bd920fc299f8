//! Judging SignedData: one typed verdict per SignerInfo (RFC 5652 section 5.6, RFC 8550,
//! RFC 8551 section 2.5), and the harvest of what a valid signature tells about its sender.

use der::asn1::{ObjectIdentifier, OctetString};
use der::{Any, Encode, Tagged};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::Attribute;
use x509_cert::time::Time;

use super::attributes::{self, Capability, decode_capabilities};
use super::{SignedAttributes, SignedMessage, SignerId, SignerInfo};
use crate::oid;
use crate::pki::cert::format_time;
use crate::pki::keys::{SignatureError, verify_with};
use crate::pki::path::{ChainCache, PathError, Query, TrustContext, Usage, ValidatedPath};
use crate::pki::{Cert, HashAlgorithm, SignatureAlgorithm};

/// The judgement on one signature. Never a bare bool: each way of failing is named, because the
/// Authentication-Results header and an administrator need to know which one it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The signature verifies, the path to a trust anchor is valid now, and (when asked) the
    /// From address is one of the certificate's.
    Valid,
    /// The signature or the messageDigest does not match: the content or the signed attributes
    /// were changed, or the signature was made with another key.
    BadSignature,
    /// The signature is intact but the certificate is not trusted: no path to an anchor,
    /// expired, revoked, wrong key usage... (RFC 5280 section 6, RFC 8550 section 4).
    Untrusted(PathError),
    /// The certificate is trusted but not for the From address (RFC 8550 section 3).
    AddressMismatch {
        /// The From address asked about (lowercased).
        from: String,
        /// The addresses the certificate is for.
        cert_addresses: Vec<String>,
    },
    /// No certificate in the message matches the SignerInfo's signer identifier.
    SignerCertificateMissing,
    /// A digest or signature algorithm (or parameters) we do not verify.
    UnsupportedAlgorithm(String),
    /// The SignerInfo breaks a rule of RFC 5652 (a missing messageDigest, say).
    Malformed(String),
    /// The signature is valid and trusted, but the message has no single From mailbox for it
    /// to vouch for: no From field, several, or one that is not exactly one mailbox (RFC 5322
    /// section 3.6.2). Set by `smime::message::verify`, which reads the From field.
    FromNotOneMailbox(crate::address::FromField),
}

impl SignerReport {
    /// A report saying [`Verdict::Valid`] and nothing else yet, for the checks to fill in.
    pub fn valid() -> Self {
        Self {
            verdict: Verdict::Valid,
            signer: None,
            signing_time: None,
            digest_algorithm: None,
            signature_algorithm: None,
            harvest: None,
            path: None,
            revocation: None,
            warnings: Vec::new(),
        }
    }

    /// SHA-1 where the SignerInfo used it: as its digestAlgorithm (the content's hash) or as the
    /// hash of its signature algorithm (over the signed attributes). A collision in either
    /// lets one signature stand for other content (RFC 8551 section 2.1 deprecates SHA-1).
    pub fn sha1_used(&self) -> Option<&'static str> {
        if self.digest_algorithm == Some(HashAlgorithm::Sha1) {
            Some("digestAlgorithm sha-1")
        } else if self
            .signature_algorithm
            .is_some_and(|a| a.hash() == HashAlgorithm::Sha1)
        {
            Some("signatureAlgorithm over sha-1")
        } else {
            None
        }
    }
}

impl Verdict {
    /// Whether the signature is valid and trusted.
    pub fn is_valid(&self) -> bool {
        matches!(self, Self::Valid)
    }

    /// A short stable code for logs, headers and the CLI: `pass`, `bad-signature`, `untrusted`,
    /// `expired`, `not-yet-valid`, `revoked`, `wrong-usage`, `address-mismatch`,
    /// `signer-certificate-missing`, `unsupported-algorithm`, `malformed`, or one of
    /// [`crate::address::FromField::code`] (`from-missing`, `from-several`...). Path failures that
    /// an administrator can act on get their own code; the others (no issuer, untrusted root,
    /// name constraints, a bad signature on a certificate...) are `untrusted`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Valid => "pass",
            Self::BadSignature => "bad-signature",
            Self::Untrusted(e) => match e.code() {
                c @ ("expired" | "not-yet-valid" | "revoked" | "wrong-usage"
                | "address-mismatch") => c,
                _ => "untrusted",
            },
            Self::AddressMismatch { .. } => "address-mismatch",
            Self::SignerCertificateMissing => "signer-certificate-missing",
            Self::UnsupportedAlgorithm(_) => "unsupported-algorithm",
            Self::Malformed(_) => "malformed",
            Self::FromNotOneMailbox(f) => f.code(),
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Valid => f.write_str("valid signature"),
            Self::BadSignature => f.write_str("the signature does not match the content"),
            Self::Untrusted(e) => write!(f, "{e}"),
            Self::AddressMismatch {
                from,
                cert_addresses,
            } => write!(
                f,
                "the signer's certificate is for {}, not the From address {from}",
                if cert_addresses.is_empty() {
                    "no e-mail address".to_string()
                } else {
                    cert_addresses.join(", ")
                }
            ),
            Self::SignerCertificateMissing => {
                f.write_str("the signer's certificate is not in the message")
            }
            Self::UnsupportedAlgorithm(a) => write!(f, "unsupported algorithm: {a}"),
            Self::Malformed(m) => write!(f, "malformed signer information: {m}"),
            Self::FromNotOneMailbox(from) => write!(
                f,
                "{from}; a signature vouches for one From mailbox only, so it is not valid for this message"
            ),
        }
    }
}

/// What a valid signature teaches us about its sender (RFC 8551 section 2.5.2 and 2.5.3), ready
/// to be stored as a known external correspondent.
#[derive(Debug, Clone)]
pub struct Harvest {
    /// The signing certificate.
    pub signer: Cert,
    /// The validated path above it, anchor last.
    pub chain: Vec<Cert>,
    /// The certificate to encrypt to: the one SMIMEEncryptionKeyPreference names, when it is in
    /// the message, validates for encryption and shares an address with the signing
    /// certificate; else (no preference) the signing certificate when it validates for
    /// encryption (keyEncipherment or keyAgreement); else `None`, with a warning when a
    /// preference could not be followed.
    pub encryption_cert: Option<Cert>,
    /// SMIMECapabilities, in the sender's order of preference (empty when absent).
    pub capabilities: Vec<Capability>,
}

/// The outcome for one SignerInfo. Unless the verdict is [`Verdict::Valid`], `signer`,
/// `signing_time`, `digest_algorithm` and `signature_algorithm` are only what the message
/// claims. A valid signature over SHA-1 stays [`Verdict::Valid`] here, with a warning:
/// whether it is acceptable is the caller's policy (the gateway's `insecure_sha1_signatures`).
#[derive(Debug, Clone)]
pub struct SignerReport {
    /// The judgement.
    pub verdict: Verdict,
    /// The signer's certificate, when found in the message.
    pub signer: Option<Cert>,
    /// signingTime, when present and readable (Unix seconds; the signer's claim, not a proof).
    pub signing_time: Option<i64>,
    /// The SignerInfo's digestAlgorithm (what the content was hashed with), when recognised.
    pub digest_algorithm: Option<HashAlgorithm>,
    /// The signature algorithm, when recognised. Its hash is what the signed attributes were
    /// hashed with, which may differ from `digest_algorithm`.
    pub signature_algorithm: Option<SignatureAlgorithm>,
    /// Only for [`Verdict::Valid`].
    pub harvest: Option<Harvest>,
    /// The validated path of the signer's certificate (only for [`Verdict::Valid`]): what the
    /// caller's revocation check ([`crate::pki::online`]) looks at.
    pub path: Option<ValidatedPath>,
    /// The revocation status of `path`, when the caller checked it (the gateway does, with
    /// fetching; [`verify`] leaves it `None`).
    pub revocation: Option<crate::pki::online::RevocationNote>,
    /// Noteworthy but not fatal: SHA-1, a signing time outside the certificate's validity, an
    /// encryption preference that could not be followed, path warnings...
    pub warnings: Vec<String>,
}

/// Whether a list of reports means "signed, and every signature valid": an empty list (no
/// signature at all) is not.
pub fn all_valid(reports: &[SignerReport]) -> bool {
    !reports.is_empty() && reports.iter().all(|r| r.verdict.is_valid())
}

/// What every signer's verification shares.
struct Env<'a> {
    msg: &'a SignedMessage,
    detached: Option<&'a [u8]>,
    ctx: &'a TrustContext,
    cache: Option<&'a ChainCache>,
    generation: u64,
    from: Option<&'a str>,
    now: i64,
}

impl Env<'_> {
    fn validate(&self, leaf: &Cert, usage: Usage) -> Result<ValidatedPath, PathError> {
        let q = Query {
            leaf,
            untrusted: &self.msg.certificates,
            at: self.now,
            email: None,
            usage: Some(usage),
        };
        match self.cache {
            Some(c) => c.validate(self.ctx, self.generation, &q),
            None => crate::pki::path::validate(self.ctx, &q),
        }
    }
}

/// Verifies every SignerInfo of `msg` and returns one report each, in order.
///
/// `detached` is the content of a detached signature (the canonical MIME part of a
/// multipart/signed); given together with encapsulated content, the two must be identical, or
/// the verdict is [`Verdict::BadSignature`] (what the caller shows must be what was signed). For each signer, in this order: find its certificate among the message's
/// certificates; digest the content; with signed attributes, check contentType and
/// messageDigest (RFC 5652 section 11) and verify the signature over the attributes as received
/// (section 5.4), without them over the content; validate the path for signing at `now` with
/// `ctx` (through `cache` when given; `generation` is the context's version for the cache); then
/// compare `from`, a bare address, with the certificate's addresses (RFC 8550 section 3).
/// A signature over SHA-1 is still verified, with a warning.
///
/// An empty result means the message has no signer; use [`all_valid`] to summarise.
pub fn verify(
    msg: &SignedMessage,
    detached: Option<&[u8]>,
    ctx: &TrustContext,
    cache: Option<&ChainCache>,
    generation: u64,
    from: Option<&str>,
    now: i64,
) -> Vec<SignerReport> {
    let env = Env {
        msg,
        detached,
        ctx,
        cache,
        generation,
        from,
        now,
    };
    msg.signer_infos
        .iter()
        .map(|si| {
            let mut report = SignerReport::valid();
            if let Err(v) = check_signer(&env, si, &mut report) {
                report.verdict = v;
                report.harvest = None;
                report.path = None;
            }
            report
        })
        .collect()
}

/// The single value of an attribute that RFC 5652 section 11 allows only once, with one value.
fn single_value<'a>(
    attrs: &'a [Attribute],
    id: ObjectIdentifier,
    name: &str,
) -> Result<Option<&'a Any>, Verdict> {
    let mut found = attrs.iter().filter(|a| a.oid == id);
    let Some(first) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err(Verdict::Malformed(format!(
            "the {name} attribute appears more than once"
        )));
    }
    match first.values.as_slice() {
        [v] => Ok(Some(v)),
        _ => Err(Verdict::Malformed(format!(
            "the {name} attribute must have exactly one value"
        ))),
    }
}

fn check_signer(env: &Env<'_>, si: &SignerInfo, r: &mut SignerReport) -> Result<(), Verdict> {
    let msg = env.msg;
    let cert = msg
        .certificates
        .iter()
        .find(|c| si.sid.matches(c))
        .ok_or(Verdict::SignerCertificateMissing)?;
    r.signer = Some(cert.clone());
    let expected_version = match si.sid {
        SignerId::IssuerAndSerial { .. } => 1,
        SignerId::SubjectKeyId(_) => 3,
    };
    if si.version != expected_version {
        r.warnings.push(format!(
            "SignerInfo version {} does not match its signer identifier (RFC 5652 section 5.3 \
             says {expected_version})",
            si.version
        ));
    }

    let digest_alg = HashAlgorithm::from_oid(&si.digest_algorithm.oid).ok_or_else(|| {
        Verdict::UnsupportedAlgorithm(format!("digest algorithm {}", si.digest_algorithm.oid))
    })?;
    r.digest_algorithm = Some(digest_alg);
    if si
        .digest_algorithm
        .parameters
        .as_ref()
        .is_some_and(|p| p.tag() != der::Tag::Null)
    {
        return Err(Verdict::Malformed(
            "digest algorithm with parameters other than NULL".into(),
        ));
    }

    let content: &[u8] = match (&msg.content, env.detached) {
        (Some(c), None) => c,
        (None, Some(d)) => d,
        // The caller shows `d` as the signed content: it must be what was signed.
        (Some(c), Some(d)) if c.as_slice() == d => c,
        (Some(_), Some(_)) => return Err(Verdict::BadSignature),
        (None, None) => {
            return Err(Verdict::Malformed(
                "detached signature verified without its content".into(),
            ));
        }
    };
    let digest = digest_alg.digest(content);

    let signed_over: &[u8] = match &si.signed_attributes {
        Some(sa) => {
            check_signed_attributes(msg, sa, &digest, r)?;
            &sa.der
        }
        None => {
            // RFC 5652 section 5.3: without signed attributes the content must be id-data.
            if msg.content_type != oid::CMS_DATA {
                return Err(Verdict::Malformed(
                    "no signed attributes, yet the content type is not id-data".into(),
                ));
            }
            content
        }
    };

    let alg = resolve_signature_algorithm(&si.signature_algorithm, digest_alg, cert.spki())?;
    r.signature_algorithm = Some(alg.algorithm);
    if alg.algorithm.hash() != digest_alg {
        if si.signed_attributes.is_none() {
            return Err(Verdict::Malformed(format!(
                "signature algorithm hash {:?} differs from the digest algorithm {:?}",
                alg.algorithm.hash(),
                digest_alg
            )));
        }
        r.warnings.push(format!(
            "the signature algorithm's hash ({:?}) differs from the digest algorithm ({:?})",
            alg.algorithm.hash(),
            digest_alg
        ));
    }
    if digest_alg == HashAlgorithm::Sha1 || alg.algorithm.hash() == HashAlgorithm::Sha1 {
        r.warnings.push(
            "signed with SHA-1, which RFC 8551 section 2.1 deprecates: accepted for old mail only"
                .into(),
        );
    }
    alg.verify(cert.spki(), signed_over, &si.signature)
        .map_err(|e| match e {
            SignatureError::Invalid => Verdict::BadSignature,
            SignatureError::Unsupported(s) => Verdict::UnsupportedAlgorithm(s),
        })?;

    let path = env
        .validate(cert, Usage::Signing)
        .map_err(Verdict::Untrusted)?;
    r.warnings.extend(path.warnings.iter().cloned());

    if let Some(from) = env.from {
        let from = from.trim().to_ascii_lowercase();
        let cert_addresses = cert.email_addresses();
        if !cert_addresses.contains(&from) {
            return Err(Verdict::AddressMismatch {
                from,
                cert_addresses,
            });
        }
    }

    if let Some(t) = r.signing_time {
        if t < cert.not_before() || t > cert.not_after() {
            r.warnings.push(format!(
                "signing time {} is outside the signer certificate's validity ({} to {})",
                format_time(t),
                format_time(cert.not_before()),
                format_time(cert.not_after())
            ));
        } else if t > env.now + 86_400 {
            r.warnings
                .push(format!("signing time {} is in the future", format_time(t)));
        }
    }

    r.harvest = Some(harvest(env, si, cert, &path, &mut r.warnings));
    r.path = Some(path);
    Ok(())
}

/// RFC 5652 section 11: contentType must equal eContentType and messageDigest the digest of
/// the content; each at most once. Also reads signingTime into the report.
fn check_signed_attributes(
    msg: &SignedMessage,
    sa: &SignedAttributes,
    digest: &[u8],
    r: &mut SignerReport,
) -> Result<(), Verdict> {
    let attrs = &sa.attributes;
    if attrs.iter().any(|a| a.oid == oid::AA_COUNTERSIGNATURE) {
        return Err(Verdict::Malformed(
            "a countersignature is among the signed attributes (RFC 5652 section 11.4)".into(),
        ));
    }
    let ct = single_value(attrs, oid::AA_CONTENT_TYPE, "contentType")?
        .ok_or_else(|| Verdict::Malformed("the contentType attribute is missing".into()))?;
    let ct: ObjectIdentifier = ct
        .decode_as()
        .map_err(|_| Verdict::Malformed("the contentType attribute is not an OID".into()))?;
    if ct != msg.content_type {
        return Err(Verdict::Malformed(format!(
            "the contentType attribute ({ct}) differs from the eContentType ({})",
            msg.content_type
        )));
    }
    let md = single_value(attrs, oid::AA_MESSAGE_DIGEST, "messageDigest")?
        .ok_or_else(|| Verdict::Malformed("the messageDigest attribute is missing".into()))?;
    let md: OctetString = md.decode_as().map_err(|_| {
        Verdict::Malformed("the messageDigest attribute is not an OCTET STRING".into())
    })?;
    if md.as_bytes() != digest {
        return Err(Verdict::BadSignature);
    }
    if let Some(t) = single_value(attrs, oid::AA_SIGNING_TIME, "signingTime")? {
        match t.decode_as::<Time>() {
            Ok(t) => r.signing_time = Some(t.to_unix_duration().as_secs() as i64),
            Err(_) => r
                .warnings
                .push("the signingTime attribute is unreadable".into()),
        }
    }
    Ok(())
}

fn harvest(
    env: &Env<'_>,
    si: &SignerInfo,
    cert: &Cert,
    path: &ValidatedPath,
    warnings: &mut Vec<String>,
) -> Harvest {
    let attrs: &[Attribute] = si
        .signed_attributes
        .as_ref()
        .map(|s| s.attributes.as_slice())
        .unwrap_or_default();
    let value = |id| {
        single_value(attrs, id, "")
            .ok()
            .flatten()
            .and_then(|v| v.to_der().ok())
    };
    let capabilities = value(oid::AA_SMIME_CAPABILITIES)
        .map(|d| decode_capabilities(&d))
        .unwrap_or_default();

    let preferred = match value(oid::AA_ENCRYPT_KEY_PREF) {
        None => None,
        Some(v) => match attributes::decode_key_preference(&v) {
            None => {
                warnings.push("the SMIMEEncryptionKeyPreference attribute is unreadable".into());
                None
            }
            Some(id) => {
                let found = env.msg.certificates.iter().find(|c| id.matches(c));
                if found.is_none() {
                    warnings.push(
                        "SMIMEEncryptionKeyPreference names a certificate that is not in the \
                         message"
                            .into(),
                    );
                }
                found
            }
        },
    };
    let encryption_cert = match preferred {
        Some(enc) => match env.validate(enc, Usage::Encryption) {
            Ok(_) if shares_address(enc, cert) => Some(enc.clone()),
            Ok(_) => {
                warnings.push(format!(
                    "the preferred encryption certificate {} (serial {}) is not for the signer's \
                     address; not harvested",
                    enc.subject_string(),
                    enc.serial_hex()
                ));
                None
            }
            Err(e) => {
                warnings.push(format!(
                    "the preferred encryption certificate is not usable: {e}"
                ));
                None
            }
        },
        // A signing-only certificate is the normal dual-certificate case: no warning, and no
        // path validation either (it would fail at the usage check after verifying the whole
        // chain, on every message, since failures are not cached).
        None if !crate::pki::path::leaf_allows(cert, Usage::Encryption) => None,
        None => env
            .validate(cert, Usage::Encryption)
            .ok()
            .map(|_| cert.clone()),
    };
    Harvest {
        signer: cert.clone(),
        chain: path.path.iter().skip(1).cloned().collect(),
        encryption_cert,
        capabilities,
    }
}

fn shares_address(a: &Cert, b: &Cert) -> bool {
    let theirs = b.email_addresses();
    a.email_addresses().iter().any(|x| theirs.contains(x))
}

/// RSASSA-PSS salt lengths we verify: the hash length (RFC 4055's recommendation, what we and
/// most clients write) and the maximum for the key (OpenSSL's default when it signs CMS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PssSalt {
    Digest,
    Max,
}

struct ResolvedAlgorithm {
    algorithm: SignatureAlgorithm,
    pss_salt: PssSalt,
}

fn rsa_modulus_bits(spki: &SubjectPublicKeyInfoOwned) -> Option<u32> {
    aws_lc_rs::signature::RsaParameters::public_modulus_len(spki.subject_public_key.raw_bytes())
        .ok()
}

/// Recognises the SignerInfo's signatureAlgorithm. Besides the combined identifiers, CMS
/// allows the bare key algorithm, with the hash taken from digestAlgorithm: rsaEncryption (RFC
/// 3370 section 3.2, what OpenSSL writes) and, from some writers, id-ecPublicKey.
fn resolve_signature_algorithm(
    alg: &AlgorithmIdentifierOwned,
    digest: HashAlgorithm,
    spki: &SubjectPublicKeyInfoOwned,
) -> Result<ResolvedAlgorithm, Verdict> {
    let plain = |algorithm| {
        Ok(ResolvedAlgorithm {
            algorithm,
            pss_salt: PssSalt::Digest,
        })
    };
    if alg.oid == oid::RSA_ENCRYPTION {
        return plain(SignatureAlgorithm::RsaPkcs1(digest));
    }
    if alg.oid == oid::EC_PUBLIC_KEY {
        return plain(SignatureAlgorithm::Ecdsa(digest));
    }
    if alg.oid != oid::RSASSA_PSS {
        return SignatureAlgorithm::from_algorithm_identifier(alg)
            .map_err(|e| Verdict::UnsupportedAlgorithm(e.to_string()))
            .and_then(plain);
    }
    let unsupported = |why: String| Verdict::UnsupportedAlgorithm(format!("RSASSA-PSS {why}"));
    let params = alg
        .parameters
        .as_ref()
        .ok_or_else(|| unsupported("without parameters (SHA-1)".into()))?;
    let crate::pki::keys::pss::Pss {
        hash,
        salt_len: salt,
    } = crate::pki::keys::pss::parse(params).map_err(unsupported)?;
    let max = rsa_modulus_bits(spki)
        .map(|bits| (bits as usize + 6) / 8)
        .and_then(|em| em.checked_sub(hash.len() + 2));
    let pss_salt = if salt == hash.len() {
        PssSalt::Digest
    } else if Some(salt) == max {
        PssSalt::Max
    } else {
        return Err(unsupported(format!(
            "with salt length {salt} (only the hash length or the key's maximum)"
        )));
    };
    Ok(ResolvedAlgorithm {
        algorithm: SignatureAlgorithm::RsaPss(hash),
        pss_salt,
    })
}

impl ResolvedAlgorithm {
    fn verify(
        &self,
        spki: &SubjectPublicKeyInfoOwned,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        use aws_lc_rs::signature::{self as sig, RsaParameters, RsaPssSaltLength};
        static PSS_MAX_SHA256: RsaParameters =
            sig::RSA_PSS_2048_8192_SHA256.with_pss_salt_length(RsaPssSaltLength::Max);
        static PSS_MAX_SHA384: RsaParameters =
            sig::RSA_PSS_2048_8192_SHA384.with_pss_salt_length(RsaPssSaltLength::Max);
        static PSS_MAX_SHA512: RsaParameters =
            sig::RSA_PSS_2048_8192_SHA512.with_pss_salt_length(RsaPssSaltLength::Max);
        match (self.pss_salt, self.algorithm) {
            (PssSalt::Max, SignatureAlgorithm::RsaPss(h)) => {
                let params: &'static RsaParameters = match h {
                    HashAlgorithm::Sha256 => &PSS_MAX_SHA256,
                    HashAlgorithm::Sha384 => &PSS_MAX_SHA384,
                    HashAlgorithm::Sha512 => &PSS_MAX_SHA512,
                    HashAlgorithm::Sha1 => {
                        return Err(SignatureError::Unsupported("RSASSA-PSS with SHA-1".into()));
                    }
                };
                let key_oid = spki.algorithm.oid;
                if key_oid != oid::RSA_ENCRYPTION && key_oid != oid::RSASSA_PSS {
                    return Err(SignatureError::Unsupported(format!(
                        "RSASSA-PSS with a {key_oid} key"
                    )));
                }
                sig::UnparsedPublicKey::new(params, spki.subject_public_key.raw_bytes())
                    .verify(message, signature)
                    .map_err(|_| SignatureError::Invalid)
            }
            (_, alg) => verify_with(spki, alg, message, signature),
        }
    }
}
