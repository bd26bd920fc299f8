//! Reading certificate revocation lists and asking them about one certificate (RFC 5280 section 5).
//!
//! Building CRLs is the CA's job; this module only parses, authenticates and queries them, and
//! path validation ([`crate::pki::path`]) decides what a listing means for a chain.
//!
//! The CRL is decoded with local ASN.1 definitions rather than `x509_cert::crl`, because that
//! one requires the `version` field, which RFC 5280 section 5.1.2.1 makes optional: version 1
//! CRLs (no extensions, e.g. `openssl ca -gencrl` without a `crlnumber` file) omit it.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use der::asn1::BitString;
use der::{Decode, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Version;
use x509_cert::crl::RevokedCert;
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::name::Name;
use x509_cert::time::Time;

use crate::oid;
use crate::pki::cert::{self, Cert};
use crate::pki::keys::{SignatureError, verify_signature};

/// `CertificateList`, RFC 5280 section 5.1.
#[derive(Clone, Debug, Sequence)]
struct CertificateList {
    tbs_cert_list: TbsCertList,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

/// `TBSCertList`, RFC 5280 section 5.1, with the optional version field really optional.
#[derive(Clone, Debug, Sequence)]
struct TbsCertList {
    version: Option<Version>,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    this_update: Time,
    next_update: Option<Time>,
    revoked_certificates: Option<Vec<RevokedCert>>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    crl_extensions: Option<Extensions>,
}

/// Why a CRL could not be read or authenticated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrlError {
    /// The bytes are not a CRL.
    #[error("{source_name}: not a valid X.509 CRL: {reason}")]
    Malformed {
        /// File name or other description of where the bytes came from.
        source_name: String,
        /// What is wrong.
        reason: String,
    },
    /// PEM input without an `X509 CRL` block.
    #[error("{0}: no CRL found (expected a PEM 'BEGIN X509 CRL' block or DER)")]
    Empty(String),
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The certificate offered as issuer is not the CRL's issuer.
    #[error("CRL issued by {crl_issuer} cannot be checked with the certificate of {cert_subject}")]
    IssuerMismatch {
        /// The CRL's issuer name.
        crl_issuer: String,
        /// The subject of the certificate offered.
        cert_subject: String,
    },
    /// The issuer's keyUsage does not allow CRL signing (RFC 5280 section 6.3.3 (f)).
    #[error("certificate of {issuer} may not sign CRLs (keyUsage lacks cRLSign)")]
    NotCrlSigner {
        /// The issuer's subject.
        issuer: String,
    },
    /// The signature does not verify with the issuer's key.
    #[error("CRL of {issuer}: signature does not verify: {reason}")]
    BadSignature {
        /// The CRL's issuer name.
        issuer: String,
        /// The verifier's complaint.
        reason: String,
    },
}

/// The revocation reasons of RFC 5280 section 5.3.1, named as RFC 5280 and `openssl ca
/// -crl_reason` name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RevocationReason {
    /// unspecified (0).
    Unspecified,
    /// keyCompromise (1).
    KeyCompromise,
    /// cACompromise (2).
    CaCompromise,
    /// affiliationChanged (3).
    AffiliationChanged,
    /// superseded (4).
    Superseded,
    /// cessationOfOperation (5).
    CessationOfOperation,
    /// certificateHold (6): a suspension; still a revocation while listed.
    CertificateHold,
    /// removeFromCRL (8): only meaningful in delta CRLs (RFC 5280 section 5.3.1).
    RemoveFromCrl,
    /// privilegeWithdrawn (9).
    PrivilegeWithdrawn,
    /// aACompromise (10).
    AaCompromise,
}

impl RevocationReason {
    /// Every reason, in code order.
    pub const ALL: [RevocationReason; 10] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::CaCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
        Self::CertificateHold,
        Self::RemoveFromCrl,
        Self::PrivilegeWithdrawn,
        Self::AaCompromise,
    ];

    /// The CRLReason code (RFC 5280 section 5.3.1; 7 is unused).
    pub fn code(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::KeyCompromise => 1,
            Self::CaCompromise => 2,
            Self::AffiliationChanged => 3,
            Self::Superseded => 4,
            Self::CessationOfOperation => 5,
            Self::CertificateHold => 6,
            Self::RemoveFromCrl => 8,
            Self::PrivilegeWithdrawn => 9,
            Self::AaCompromise => 10,
        }
    }

    /// The reason for a code, if it is one RFC 5280 defines.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The RFC 5280 name (`keyCompromise`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::CaCompromise => "cACompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::CertificateHold => "certificateHold",
            Self::RemoveFromCrl => "removeFromCRL",
            Self::PrivilegeWithdrawn => "privilegeWithdrawn",
            Self::AaCompromise => "aACompromise",
        }
    }

    fn from_x509(r: CrlReason) -> Self {
        match r {
            CrlReason::Unspecified => Self::Unspecified,
            CrlReason::KeyCompromise => Self::KeyCompromise,
            CrlReason::CaCompromise => Self::CaCompromise,
            CrlReason::AffiliationChanged => Self::AffiliationChanged,
            CrlReason::Superseded => Self::Superseded,
            CrlReason::CessationOfOperation => Self::CessationOfOperation,
            CrlReason::CertificateHold => Self::CertificateHold,
            CrlReason::RemoveFromCRL => Self::RemoveFromCrl,
            CrlReason::PrivilegeWithdrawn => Self::PrivilegeWithdrawn,
            CrlReason::AaCompromise => Self::AaCompromise,
        }
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of the RFC 5280 revocation reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown revocation reason '{0}' (expected one of: unspecified, keyCompromise, cACompromise, \
     affiliationChanged, superseded, cessationOfOperation, certificateHold, removeFromCRL, \
     privilegeWithdrawn, aACompromise)"
)]
pub struct UnknownReason(pub String);

impl FromStr for RevocationReason {
    type Err = UnknownReason;

    /// Accepts the RFC 5280 names case-insensitively (administrators type them).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownReason(s.to_string()))
    }
}

/// One entry of a CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// The revoked certificate's serial number, lowercase hex (as [`Cert::serial_hex`]).
    pub serial_hex: String,
    /// revocationDate, Unix seconds.
    pub revoked_at: i64,
    /// The reasonCode entry extension, when present and readable.
    pub reason: Option<RevocationReason>,
}

/// A parsed CRL, keeping the DER it was read from (its signature is over those bytes).
#[derive(Clone)]
pub struct Crl {
    der: Vec<u8>,
    /// SHA-256 of `der`: what a verified signature is remembered under (the whole signed
    /// structure, so a CRL with another content never matches).
    fingerprint: [u8; 32],
    list: CertificateList,
    /// Serial content bytes -> index into `revoked_certificates`.
    index: HashMap<Vec<u8>, usize>,
    /// Why this CRL cannot be relied on to say "not revoked", if it cannot.
    unusable: Option<String>,
}

impl fmt::Debug for Crl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Crl({}, thisUpdate {}, {} entries)",
            self.issuer(),
            cert::format_time(self.this_update()),
            self.index.len()
        )
    }
}

fn unix(t: &Time) -> i64 {
    i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

impl Crl {
    /// Parses one DER CRL.
    pub fn from_der(der: &[u8]) -> Result<Self, CrlError> {
        Self::from_der_named(der, "CRL")
    }

    /// Parses one DER CRL; `source_name` is used in error messages.
    pub fn from_der_named(der: &[u8], source_name: &str) -> Result<Self, CrlError> {
        let malformed = |reason: String| CrlError::Malformed {
            source_name: source_name.to_string(),
            reason,
        };
        let list = CertificateList::from_der(der).map_err(|e| malformed(e.to_string()))?;
        let tbs = &list.tbs_cert_list;
        // RFC 5280 section 5.1.1.2: the outer and inner algorithm identifiers MUST be equal.
        if tbs.signature != list.signature_algorithm {
            return Err(malformed(
                "signature algorithm in tbsCertList differs from the outer one".into(),
            ));
        }
        if cert::raw_first_element(der).is_none() {
            return Err(malformed("cannot locate tbsCertList".into()));
        }
        let mut index = HashMap::new();
        let mut unusable = None;
        for (i, entry) in tbs.revoked_certificates.iter().flatten().enumerate() {
            index.insert(entry.serial_number.as_bytes().to_vec(), i);
            for ext in entry.crl_entry_extensions.iter().flatten() {
                let known = ext.extn_id == oid::CRL_REASON || ext.extn_id == oid::INVALIDITY_DATE;
                if ext.critical && !known && unusable.is_none() {
                    // RFC 5280 section 5.3: an unrecognised critical entry extension (such as
                    // certificateIssuer of an indirect CRL) means the CRL must not be used.
                    unusable = Some(format!(
                        "entry {} has critical extension {} that we do not process",
                        hex::encode(entry.serial_number.as_bytes()),
                        ext.extn_id
                    ));
                }
            }
        }
        for ext in tbs.crl_extensions.iter().flatten() {
            let id = ext.extn_id;
            if id == oid::ISSUING_DISTRIBUTION_POINT || id == oid::DELTA_CRL_INDICATOR {
                // Partitioned and delta CRLs do not cover every certificate of the issuer
                // (RFC 5280 sections 5.2.4, 5.2.5); we only use complete CRLs.
                unusable.get_or_insert_with(|| {
                    format!("it is a delta or partitioned CRL (extension {id})")
                });
            } else if ext.critical {
                // RFC 5280 section 5.2: unrecognised critical CRL extension.
                unusable.get_or_insert_with(|| {
                    format!("critical extension {id} that we do not process")
                });
            }
        }
        Ok(Self {
            der: der.to_vec(),
            fingerprint: crate::pki::keys::HashAlgorithm::Sha256
                .digest(der)
                .try_into()
                .unwrap_or([0; 32]),
            list,
            index,
            unusable,
        })
    }

    /// Parses a CRL from PEM (`X509 CRL` block) or DER.
    pub fn parse(bytes: &[u8], source_name: &str) -> Result<Self, CrlError> {
        if cert::looks_like_pem(bytes) {
            let der = cert::pem_blocks(bytes)
                .into_iter()
                .find(|(label, _)| label == "X509 CRL")
                .map(|(_, der)| der)
                .ok_or_else(|| CrlError::Empty(source_name.to_string()))?;
            Self::from_der_named(&der, source_name)
        } else if bytes.is_empty() {
            Err(CrlError::Empty(source_name.to_string()))
        } else {
            Self::from_der_named(bytes, source_name)
        }
    }

    /// Reads a CRL file (PEM or DER); errors name the file.
    pub fn read_file(path: &Path) -> Result<Self, CrlError> {
        let bytes = std::fs::read(path).map_err(|source| CrlError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&bytes, &path.display().to_string())
    }

    /// The CRL exactly as received.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// SHA-256 of the DER encoding.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// PEM encoding.
    pub fn to_pem(&self) -> String {
        cert::pem_encode("X509 CRL", &self.der)
    }

    /// The raw `tbsCertList`, exactly as signed.
    pub fn tbs_der(&self) -> &[u8] {
        cert::raw_first_element(&self.der).unwrap_or(&[])
    }

    /// The issuer's name.
    pub fn issuer(&self) -> &Name {
        &self.list.tbs_cert_list.issuer
    }

    /// thisUpdate, Unix seconds.
    pub fn this_update(&self) -> i64 {
        unix(&self.list.tbs_cert_list.this_update)
    }

    /// nextUpdate, Unix seconds, when present.
    pub fn next_update(&self) -> Option<i64> {
        self.list.tbs_cert_list.next_update.as_ref().map(unix)
    }

    /// The cRLNumber extension (RFC 5280 section 5.2.3) as big-endian bytes without leading
    /// zeros, when present and readable. Compare with [`crl_number_cmp`].
    pub fn crl_number(&self) -> Option<Vec<u8>> {
        let ext = self
            .list
            .tbs_cert_list
            .crl_extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == oid::CRL_NUMBER)?;
        let n = der::asn1::Uint::from_der(ext.extn_value.as_bytes()).ok()?;
        Some(n.as_bytes().to_vec())
    }

    /// Why this CRL must not be relied on as complete (delta or partitioned CRL, or a critical
    /// extension we do not process, RFC 5280 sections 5.2 and 5.3), or `None` if it can be.
    pub fn unusable_reason(&self) -> Option<&str> {
        self.unusable.as_deref()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the CRL lists no certificate.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn entry_at(&self, i: usize) -> Option<RevokedEntry> {
        let e = self
            .list
            .tbs_cert_list
            .revoked_certificates
            .as_ref()?
            .get(i)?;
        let reason = e
            .crl_entry_extensions
            .iter()
            .flatten()
            .find(|x| x.extn_id == oid::CRL_REASON)
            .and_then(|x| CrlReason::from_der(x.extn_value.as_bytes()).ok())
            .map(RevocationReason::from_x509);
        Some(RevokedEntry {
            serial_hex: hex::encode(e.serial_number.as_bytes()),
            revoked_at: unix(&e.revocation_date),
            reason,
        })
    }

    /// Every entry, in CRL order.
    pub fn entries(&self) -> Vec<RevokedEntry> {
        let n = self
            .list
            .tbs_cert_list
            .revoked_certificates
            .as_ref()
            .map_or(0, Vec::len);
        (0..n).filter_map(|i| self.entry_at(i)).collect()
    }

    /// The entry for a serial number (content bytes, as [`Cert::serial`] gives them), if the
    /// certificate is revoked by this CRL.
    ///
    /// An entry with reason removeFromCRL is not a revocation: that reason only appears in delta
    /// CRLs, to lift a certificateHold (RFC 5280 section 5.3.1); OpenSSL reads it the same way.
    /// The revocation date is not compared with any time: a revoked key is not trusted for
    /// earlier signatures either, since their signing time is the signer's own claim.
    pub fn revoked(&self, serial: &[u8]) -> Option<RevokedEntry> {
        let i = *self.index.get(serial)?;
        self.entry_at(i)
            .filter(|e| e.reason != Some(RevocationReason::RemoveFromCrl))
    }

    /// Checks the CRL's signature over its raw `tbsCertList` with `issuer`'s key, after checking
    /// that `issuer` is named as the CRL's issuer and may sign CRLs (RFC 5280 section 6.3.3
    /// (f) and (g)).
    pub fn verify_signature(&self, issuer: &Cert) -> Result<(), CrlError> {
        if !cert::same_name(self.issuer(), issuer.subject()) {
            return Err(CrlError::IssuerMismatch {
                crl_issuer: self.issuer().to_string(),
                cert_subject: issuer.subject_string(),
            });
        }
        if let Ok(Some(ku)) = issuer.key_usage()
            && !ku.crl_sign()
        {
            return Err(CrlError::NotCrlSigner {
                issuer: issuer.subject_string(),
            });
        }
        verify_signature(
            issuer.spki(),
            &self.list.signature_algorithm,
            self.tbs_der(),
            self.list.signature.raw_bytes(),
        )
        .map_err(|e| CrlError::BadSignature {
            issuer: self.issuer().to_string(),
            reason: match e {
                SignatureError::Invalid => "bad signature".into(),
                other => other.to_string(),
            },
        })
    }

    /// Whether this CRL is newer than `other` (later thisUpdate, then higher cRLNumber).
    pub fn is_newer_than(&self, other: &Crl) -> bool {
        match self.this_update().cmp(&other.this_update()) {
            std::cmp::Ordering::Equal => {
                crl_number_cmp(self.crl_number().as_deref(), other.crl_number().as_deref())
                    == std::cmp::Ordering::Greater
            }
            o => o == std::cmp::Ordering::Greater,
        }
    }
}

/// Orders two cRLNumbers as [`Crl::crl_number`] returns them; an absent number is lowest.
pub fn crl_number_cmp(a: Option<&[u8]>, b: Option<&[u8]>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
        (a, b) => a.is_some().cmp(&b.is_some()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testpki::{KeyKind, Pki};

    #[test]
    fn reason_names_round_trip() {
        for r in RevocationReason::ALL {
            assert_eq!(r.to_string().parse::<RevocationReason>().unwrap(), r);
            assert_eq!(RevocationReason::from_code(r.code()), Some(r));
        }
        assert_eq!(
            "KEYCOMPROMISE".parse::<RevocationReason>().unwrap(),
            RevocationReason::KeyCompromise
        );
        assert!("stolen".parse::<RevocationReason>().is_err());
        assert_eq!(RevocationReason::from_code(7), None);
    }

    #[test]
    fn crl_numbers_compare_as_integers() {
        use std::cmp::Ordering::*;
        assert_eq!(crl_number_cmp(Some(&[1, 0]), Some(&[0xff])), Greater);
        assert_eq!(crl_number_cmp(Some(&[2]), Some(&[2])), Equal);
        assert_eq!(crl_number_cmp(None, Some(&[0])), Less);
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(matches!(
            Crl::parse(b"\x30\x03\x02\x01\x01", "x.crl"),
            Err(CrlError::Malformed { .. })
        ));
        assert!(matches!(Crl::parse(b"", "x.crl"), Err(CrlError::Empty(_))));
        assert!(matches!(
            Crl::parse(
                b"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
                "x"
            ),
            Err(CrlError::Empty(_))
        ));
    }

    /// A CRL made by `openssl ca`: v1 when empty and numberless, v2 with reasons and a number.
    #[test]
    fn reads_openssl_crls() {
        let pki = Pki::new();
        let ca = pki.root("ca", "/CN=CRL Test CA", KeyKind::P256, None);
        let other = pki.root("other", "/CN=Other CA", KeyKind::P256, None);
        let a = pki.issue(
            &ca,
            "a",
            "/CN=a",
            &pki.leaf_ext("a@acme.test"),
            KeyKind::P256,
            None,
        );
        let b = pki.issue(
            &ca,
            "b",
            "/CN=b",
            &pki.leaf_ext("b@acme.test"),
            KeyKind::P256,
            None,
        );
        let ca_cert = pki.cert(&ca.cert);
        let a = pki.cert(&a);
        let b = pki.cert(&b);

        // Version 1: no crlnumber, nothing revoked.
        let v1 = Crl::read_file(&pki.gencrl(&ca, false)).unwrap();
        assert!(v1.list.tbs_cert_list.version.is_none());
        assert!(v1.is_empty());
        assert_eq!(v1.crl_number(), None);
        assert!(v1.next_update().is_some_and(|n| n > v1.this_update()));
        v1.verify_signature(&ca_cert).unwrap();

        pki.revoke(&ca, "a", Some("keyCompromise"));
        let v2 = Crl::read_file(&pki.gencrl(&ca, true)).unwrap();
        assert!(v2.unusable_reason().is_none());
        assert_eq!(v2.len(), 1);
        assert!(v2.crl_number().is_some());
        v2.verify_signature(&ca_cert).unwrap();
        let e = v2.revoked(a.serial()).unwrap();
        assert_eq!(e.serial_hex, a.serial_hex());
        assert_eq!(e.reason, Some(RevocationReason::KeyCompromise));
        assert!((e.revoked_at - v2.this_update()).abs() < 120);
        assert!(v2.revoked(b.serial()).is_none());
        assert!(v2.is_newer_than(&v1) || v2.this_update() == v1.this_update());

        // DER form parses too, and the issuer is compared.
        let der = Crl::parse(v2.der(), "der").unwrap();
        assert_eq!(der.entries(), v2.entries());
        assert!(matches!(
            v2.verify_signature(&pki.cert(&other.cert)),
            Err(CrlError::IssuerMismatch { .. })
        ));
        // Same name, other key: the signature check is what catches it.
        let impostor = pki.root("impostor", "/CN=CRL Test CA", KeyKind::P256, None);
        assert!(matches!(
            v2.verify_signature(&pki.cert(&impostor.cert)),
            Err(CrlError::BadSignature { .. })
        ));
        // One flipped bit in the signed part.
        let mut bad = v2.der().to_vec();
        let pos = bad.len() / 3;
        bad[pos] ^= 1;
        if let Ok(c) = Crl::from_der(&bad) {
            assert!(c.verify_signature(&ca_cert).is_err());
        }
    }

    #[test]
    fn hold_and_reasonless_entries() {
        let pki = Pki::new();
        let ca = pki.root("ca", "/CN=Hold CA", KeyKind::P256, None);
        let h = pki.issue(
            &ca,
            "h",
            "/CN=h",
            &pki.leaf_ext("h@acme.test"),
            KeyKind::P256,
            None,
        );
        let n = pki.issue(
            &ca,
            "n",
            "/CN=n",
            &pki.leaf_ext("n@acme.test"),
            KeyKind::P256,
            None,
        );
        pki.revoke(&ca, "h", Some("certificateHold"));
        pki.revoke(&ca, "n", None);
        let crl = Crl::read_file(&pki.gencrl(&ca, true)).unwrap();
        let h = crl.revoked(pki.cert(&h).serial()).unwrap();
        assert_eq!(h.reason, Some(RevocationReason::CertificateHold));
        let n = crl.revoked(pki.cert(&n).serial()).unwrap();
        assert_eq!(n.reason, None);
    }
}
