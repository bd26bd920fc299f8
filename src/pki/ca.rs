//! The certificate authority: a certificate, its key, and the chain above it when subordinate.
//!
//! Issuance itself is [`CertificateParams::sign`]; this module checks that the CA is fit to issue
//! (it is a CA, its key matches, it has not expired) and builds CRLs (RFC 5280 section 5).

use der::asn1::{BitString, OctetString, Uint};
use der::{Encode, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::certificate::Version;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;

use crate::oid;
use crate::pki::cert::Cert;
use crate::pki::keys::{KeyAlgorithm, PrivateKey, key_identifier};
use crate::pki::profile::{self, CertificateParams, Issuer, ProfileError, unix_to_time};

/// Why the CA cannot act.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// The certificate offered as CA is not one.
    #[error(
        "certificate {0} is not a CA certificate (basicConstraints cA is not TRUE); use the issuing CA's certificate"
    )]
    NotACa(String),
    /// The key does not belong to the certificate.
    #[error("the private key does not match CA certificate {0}")]
    KeyMismatch(String),
    /// The CA certificate is outside its validity period.
    #[error(
        "CA certificate {subject} is not valid now (valid until {not_after}); renew or re-import the CA"
    )]
    Expired {
        /// Subject.
        subject: String,
        /// End of validity (RFC 3339).
        not_after: String,
    },
    /// Encoding or signing failed.
    #[error(transparent)]
    Profile(#[from] ProfileError),
}

/// A revoked serial, as listed on a CRL.
#[derive(Clone, Debug)]
pub struct RevokedSerial {
    /// Serial number bytes.
    pub serial: Vec<u8>,
    /// When (unix seconds).
    pub at: i64,
    /// RFC 5280 section 5.3.1 reason code (`None` = unspecified, omitted from the entry).
    pub reason_code: Option<u8>,
}

/// An operational CA.
pub struct Ca {
    cert: Cert,
    key: PrivateKey,
    chain: Vec<Cert>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ca({})", self.cert.subject_string())
    }
}

/// Formats unix seconds as RFC 3339 (UTC), for messages and listings.
pub fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

impl Ca {
    /// Creates a self-signed root.
    pub fn new_root(name: &str, alg: KeyAlgorithm, days: u32) -> Result<Self, CaError> {
        let key = PrivateKey::generate(alg).map_err(ProfileError::from)?;
        let subject = profile::simple_name(name, None)?;
        let issuer = Issuer {
            name: &subject,
            key: &key,
            key_id: key_identifier(&key.spki()),
        };
        let cert = CertificateParams::root_ca(subject.clone(), days).sign(&key.spki(), &issuer)?;
        Ok(Self {
            cert,
            key,
            chain: Vec::new(),
        })
    }

    /// Assembles a CA from stored or imported parts, checking they belong together.
    pub fn from_parts(cert: Cert, key: PrivateKey, chain: Vec<Cert>) -> Result<Self, CaError> {
        if !cert.is_ca() {
            return Err(CaError::NotACa(cert.subject_string()));
        }
        if key.public_key_der() != crate::pki::keys::spki_der(cert.spki()) {
            return Err(CaError::KeyMismatch(cert.subject_string()));
        }
        Ok(Self { cert, key, chain })
    }

    /// The CA certificate.
    pub fn cert(&self) -> &Cert {
        &self.cert
    }

    /// The CA key (for sealing into the store).
    pub fn key(&self) -> &PrivateKey {
        &self.key
    }

    /// Certificates above ours (subordinate CAs), nearest first.
    pub fn chain(&self) -> &[Cert] {
        &self.chain
    }

    /// Issues a certificate for `subject_key` with the given profile, refusing when the CA
    /// itself is expired, and never letting a certificate outlive its CA.
    pub fn issue(
        &self,
        params: &CertificateParams,
        subject_key: &SubjectPublicKeyInfoOwned,
    ) -> Result<Cert, CaError> {
        let now = profile::now();
        if now > self.cert.not_after() {
            return Err(CaError::Expired {
                subject: self.cert.subject_string(),
                not_after: rfc3339(self.cert.not_after()),
            });
        }
        let mut p = params.clone();
        p.not_after = p.not_after.min(self.cert.not_after());
        Ok(p.sign(subject_key, &Issuer::from_cert(&self.cert, &self.key))?)
    }

    /// Builds a signed CRL (v2, with authorityKeyIdentifier and cRLNumber, RFC 5280 section 5)
    /// listing `revoked`, valid until `next_update_days` from now.
    pub fn build_crl(
        &self,
        revoked: &[RevokedSerial],
        number: u64,
        next_update_days: u32,
    ) -> Result<Vec<u8>, CaError> {
        let enc = |e: der::Error| {
            CaError::Profile(ProfileError::Encoding {
                what: "CRL",
                value: String::new(),
                reason: e.to_string(),
            })
        };
        let now = profile::now();
        let this_update = unix_to_time(now)?;
        let next_update = unix_to_time(now + i64::from(next_update_days) * 86_400)?;
        let mut entries = Vec::new();
        for r in revoked {
            let mut exts = Vec::new();
            if let Some(code) = r.reason_code {
                exts.push(Extension {
                    extn_id: oid::CRL_REASON,
                    critical: false,
                    // ENUMERATED { code }
                    extn_value: OctetString::new(vec![0x0a, 0x01, code]).map_err(enc)?,
                });
            }
            entries.push(RevokedOut {
                serial: SerialNumber::new(&r.serial).map_err(enc)?,
                date: unix_to_time(r.at)?,
                extensions: (!exts.is_empty()).then_some(exts),
            });
        }
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(
                OctetString::new(
                    self.cert
                        .subject_key_id()
                        .ok()
                        .flatten()
                        .unwrap_or_else(|| key_identifier(self.cert.spki())),
                )
                .map_err(enc)?,
            ),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        let number_bytes = number.to_be_bytes();
        let crl_exts = vec![
            Extension {
                extn_id: oid::AUTHORITY_KEY_IDENTIFIER,
                critical: false,
                extn_value: OctetString::new(aki.to_der().map_err(enc)?).map_err(enc)?,
            },
            Extension {
                extn_id: oid::CRL_NUMBER,
                critical: false,
                extn_value: OctetString::new(
                    Uint::new(&number_bytes)
                        .map_err(enc)?
                        .to_der()
                        .map_err(enc)?,
                )
                .map_err(enc)?,
            },
        ];
        let sig_alg = self.key.default_signature();
        let tbs = TbsCrlOut {
            version: Version::V2,
            signature: sig_alg.to_algorithm_identifier(),
            issuer: self.cert.subject().clone(),
            this_update,
            next_update,
            revoked: (!entries.is_empty()).then_some(entries),
            extensions: crl_exts,
        };
        let tbs_der = tbs.to_der().map_err(enc)?;
        let sig = self
            .key
            .sign(sig_alg, &tbs_der)
            .map_err(ProfileError::from)?;
        CrlOut {
            tbs,
            signature_algorithm: sig_alg.to_algorithm_identifier(),
            signature: BitString::from_bytes(&sig).map_err(enc)?,
        }
        .to_der()
        .map_err(enc)
    }
}

/// `TBSCertList` (RFC 5280 section 5.1), encoded by us field by field.
#[derive(Sequence)]
struct TbsCrlOut {
    version: Version,
    signature: AlgorithmIdentifierOwned,
    issuer: x509_cert::name::Name,
    this_update: Time,
    next_update: Time,
    revoked: Option<Vec<RevokedOut>>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    extensions: Vec<Extension>,
}

#[derive(Sequence)]
struct RevokedOut {
    serial: SerialNumber,
    date: Time,
    extensions: Option<Vec<Extension>>,
}

#[derive(Sequence)]
struct CrlOut {
    tbs: TbsCrlOut,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}
