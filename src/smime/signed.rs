//! CMS SignedData (RFC 5652 section 5) as S/MIME uses it (RFC 8551): signing outgoing content
//! and verifying incoming signatures, at the CMS level (the MIME framing lives elsewhere).
//!
//! Signing always uses signed attributes (RFC 8551 section 2.5 requires them): contentType,
//! messageDigest, signingTime, SMIMECapabilities and, for the dual-certificate model,
//! SMIMEEncryptionKeyPreference naming the signer's encryption certificate.
//!
//! Verification first parses the whole message into typed values ([`parse`]), after normalising
//! BER to DER, and only then decides ([`verify`]): one [`SignerReport`] per SignerInfo, each with
//! a typed [`Verdict`]. Signatures are checked over the bytes as received: the signed attributes
//! are sliced from the input and only their tag is changed, never re-encoded or re-sorted.

use der::Decode;
use der::asn1::ObjectIdentifier;
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;
use x509_cert::name::Name;

use crate::ber::{self, BerError};
use crate::oid;
use crate::pki::Cert;
use crate::pki::cert::same_name;
use crate::pki::keys::{HashAlgorithm, KeyAlgorithm, KeyError};

use super::asn1;
mod attributes;
mod signing;
mod verification;

pub use attributes::{Capability, decode_capabilities, encode_capabilities};
pub use signing::{SignOptions, Signed, Signer, sign, sign_reporting};
pub use verification::{Harvest, SignerReport, Verdict, all_valid, verify};

/// Most SignerInfos accepted in one message (and produced by [`sign`]): real mail has one or
/// two; a bound keeps a hostile message from making us verify thousands of signatures.
pub const MAX_SIGNERS: usize = 16;
/// Most certificates accepted in one message: a signer, its chain and an encryption
/// certificate per signer fit easily; path building over many look-alikes would not be cheap.
pub const MAX_CERTIFICATES: usize = 64;

/// Why a SignedData could not be produced or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignedError {
    /// The input is not usable BER.
    #[error("not a BER-encoded CMS message: {0}")]
    Ber(#[from] BerError),
    /// The structure is not a SignedData as RFC 5652 section 5 defines it.
    #[error("malformed SignedData ({what}): {reason}")]
    Malformed {
        /// Which part of the structure.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The ContentInfo holds some other content type (EnvelopedData, say).
    #[error("the CMS content type is {0}, not id-signedData")]
    NotSignedData(ObjectIdentifier),
    /// More SignerInfos than [`MAX_SIGNERS`].
    #[error("{found} signers: at most {MAX_SIGNERS} are accepted")]
    TooManySigners {
        /// How many there were.
        found: usize,
    },
    /// More certificates than [`MAX_CERTIFICATES`].
    #[error("{found} certificates: at most {MAX_CERTIFICATES} are accepted")]
    TooManyCertificates {
        /// How many there were.
        found: usize,
    },
    /// [`sign`] was given no signer.
    #[error("no signer given")]
    NoSigners,
    /// A signer's private key does not belong to its certificate.
    #[error("the private key does not belong to certificate {subject} (serial {serial})")]
    KeyMismatch {
        /// Subject of the certificate.
        subject: String,
        /// Its serial, hex.
        serial: String,
    },
    /// The signer's key cannot sign with the digest asked for: aws-lc-rs pairs ECDSA P-256 with
    /// SHA-256 and P-384 with SHA-384 only, and signing with the curve's hash instead would make
    /// the signature disagree with what was asked for (and with micalg, RFC 8551 section 3.5.3.2).
    #[error(
        "the ECDSA {key} key of {subject} signs with {} only, not {}",
        hash_name(*supported),
        hash_name(*asked)
    )]
    DigestUnavailable {
        /// Subject of the signer certificate.
        subject: String,
        /// The signer's key type.
        key: KeyAlgorithm,
        /// The digest asked for.
        asked: HashAlgorithm,
        /// The one digest this key signs with.
        supported: HashAlgorithm,
    },
    /// SHA-1 was asked for; RFC 8551 section 2.1 says not to sign with it.
    #[error("SHA-1 is not used for new signatures (RFC 8551 section 2.1); use SHA-256 or better")]
    Sha1Signing,
    /// The key refused to sign.
    #[error("signing with the key of {subject} failed: {source}")]
    Key {
        /// Subject of the signer certificate.
        subject: String,
        /// What the key said.
        #[source]
        source: KeyError,
    },
    /// A value could not be encoded (a time outside what X.509 can express, say).
    #[error("cannot encode {what}: {reason}")]
    Encoding {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's complaint.
        reason: String,
    },
}

/// A digest's name in messages (RFC 5754 spelling).
fn hash_name(h: HashAlgorithm) -> &'static str {
    match h {
        HashAlgorithm::Sha1 => "SHA-1",
        HashAlgorithm::Sha256 => "SHA-256",
        HashAlgorithm::Sha384 => "SHA-384",
        HashAlgorithm::Sha512 => "SHA-512",
    }
}

fn malformed(what: &'static str, reason: impl ToString) -> SignedError {
    SignedError::Malformed {
        what,
        reason: reason.to_string(),
    }
}

/// How a SignerInfo names its certificate (RFC 5652 section 5.3), or how
/// SMIMEEncryptionKeyPreference names one (RFC 8551 section 2.5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerId {
    /// issuerAndSerialNumber.
    IssuerAndSerial {
        /// The issuer's name.
        issuer: Name,
        /// The serial number's content octets.
        serial: Vec<u8>,
    },
    /// subjectKeyIdentifier.
    SubjectKeyId(Vec<u8>),
}

impl SignerId {
    /// Whether `cert` is the certificate named.
    pub fn matches(&self, cert: &Cert) -> bool {
        match self {
            Self::IssuerAndSerial { issuer, serial } => {
                cert.serial() == serial.as_slice() && same_name(cert.issuer(), issuer)
            }
            Self::SubjectKeyId(ski) => {
                matches!(cert.subject_key_id(), Ok(Some(k)) if k == *ski)
            }
        }
    }
}

/// The signed attributes of one SignerInfo.
#[derive(Debug, Clone)]
pub struct SignedAttributes {
    /// Exactly what the signature covers: the received `[0] IMPLICIT` encoding with the SET tag.
    pub der: Vec<u8>,
    /// The attributes, decoded.
    pub attributes: Vec<Attribute>,
}

/// One SignerInfo (RFC 5652 section 5.3), decoded but not yet judged.
#[derive(Debug, Clone)]
pub struct SignerInfo {
    /// 1 with issuerAndSerialNumber, 3 with subjectKeyIdentifier.
    pub version: u8,
    /// Which certificate signed.
    pub sid: SignerId,
    /// The digest algorithm over the content.
    pub digest_algorithm: AlgorithmIdentifierOwned,
    /// Signed attributes, when present.
    pub signed_attributes: Option<SignedAttributes>,
    /// The signature algorithm.
    pub signature_algorithm: AlgorithmIdentifierOwned,
    /// The signature value.
    pub signature: Vec<u8>,
    /// Unsigned attributes (countersignatures, timestamps), not interpreted.
    pub unsigned_attributes: Vec<Attribute>,
}

/// A SignedData, fully parsed before any decision is made on it.
#[derive(Debug, Clone)]
pub struct SignedMessage {
    /// The SignedData version.
    pub version: u8,
    /// eContentType (id-data for S/MIME content).
    pub content_type: ObjectIdentifier,
    /// The encapsulated content; `None` for a detached signature (or a certs-only message).
    pub content: Option<Vec<u8>>,
    /// digestAlgorithms, as announced (each SignerInfo names its own).
    pub digest_algorithms: Vec<AlgorithmIdentifierOwned>,
    /// One entry per SignerInfo, in the (DER) order received.
    pub signer_infos: Vec<SignerInfo>,
    /// The X.509 certificates carried in the message (other certificate formats are skipped).
    pub certificates: Vec<Cert>,
    /// How many revocation entries (CRLs) the message carried; they are not used.
    pub crl_count: usize,
    /// Things noticed while parsing that did not prevent it.
    pub warnings: Vec<String>,
}

fn small_int(t: &asn1::Tlv<'_>, what: &'static str) -> Result<u8, SignedError> {
    if t.tag != 0x02 {
        return Err(malformed(what, "not an INTEGER"));
    }
    u8::from_der(t.raw).map_err(|e| malformed(what, e))
}

fn expect<'a>(
    t: Option<&asn1::Tlv<'a>>,
    tag: u8,
    what: &'static str,
) -> Result<asn1::Tlv<'a>, SignedError> {
    match t {
        Some(t) if t.tag == tag => Ok(*t),
        Some(t) => Err(malformed(
            what,
            format!("expected tag {tag:#04x}, found {:#04x}", t.tag),
        )),
        None => Err(malformed(what, "missing")),
    }
}

/// Parses a ContentInfo holding a SignedData, BER or DER (OpenSSL `-stream`, gpgsm and most mail
/// clients write indefinite lengths and segmented content), into typed values.
///
/// A degenerate SignedData with no SignerInfo (certs-only, RFC 8551 section 3.8) parses; it
/// simply yields no reports from [`verify`].
pub fn parse(ber_bytes: &[u8]) -> Result<SignedMessage, SignedError> {
    let der = ber::to_der_view(ber_bytes)?;
    let (ci, _) = asn1::read(&der).map_err(|e| malformed("ContentInfo", e))?;
    if ci.tag != 0x30 {
        return Err(malformed("ContentInfo", "not a SEQUENCE"));
    }
    let ci_parts = asn1::children(ci.content).map_err(|e| malformed("ContentInfo", e))?;
    let ct = expect(ci_parts.first(), 0x06, "contentType")?;
    let ct = ObjectIdentifier::from_der(ct.raw).map_err(|e| malformed("contentType", e))?;
    if ct != oid::CMS_SIGNED_DATA {
        return Err(SignedError::NotSignedData(ct));
    }
    let wrapper = expect(ci_parts.get(1), 0xa0, "content")?;
    if ci_parts.len() > 2 {
        return Err(malformed("ContentInfo", "unexpected fields"));
    }
    let inner = asn1::children(wrapper.content).map_err(|e| malformed("content", e))?;
    if inner.len() != 1 {
        return Err(malformed("content", "expected exactly one SignedData"));
    }
    let sd = expect(inner.first(), 0x30, "SignedData")?;
    let fields = asn1::children(sd.content).map_err(|e| malformed("SignedData", e))?;
    let mut it = fields.iter().peekable();
    let mut warnings = Vec::new();

    let version = small_int(&expect(it.next(), 0x02, "version")?, "version")?;

    let algs = expect(it.next(), 0x31, "digestAlgorithms")?;
    let digest_algorithms = asn1::children(algs.content)
        .map_err(|e| malformed("digestAlgorithms", e))?
        .iter()
        .map(|a| AlgorithmIdentifierOwned::from_der(a.raw))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| malformed("digestAlgorithms", e))?;

    let encap = expect(it.next(), 0x30, "encapContentInfo")?;
    let encap_parts =
        asn1::children(encap.content).map_err(|e| malformed("encapContentInfo", e))?;
    let ect = expect(encap_parts.first(), 0x06, "eContentType")?;
    let content_type =
        ObjectIdentifier::from_der(ect.raw).map_err(|e| malformed("eContentType", e))?;
    let content = match encap_parts.get(1) {
        None => None,
        Some(t) if t.tag == 0xa0 => {
            let octets = asn1::children(t.content).map_err(|e| malformed("eContent", e))?;
            if octets.len() != 1 {
                return Err(malformed("eContent", "expected one OCTET STRING"));
            }
            Some(expect(octets.first(), 0x04, "eContent")?.content.to_vec())
        }
        Some(_) => return Err(malformed("encapContentInfo", "unexpected field")),
    };
    if encap_parts.len() > 2 {
        return Err(malformed("encapContentInfo", "unexpected fields"));
    }

    let mut certificates = Vec::new();
    if let Some(t) = it.next_if(|t| t.tag == 0xa0) {
        let choices = asn1::children(t.content).map_err(|e| malformed("certificates", e))?;
        if choices.len() > MAX_CERTIFICATES {
            return Err(SignedError::TooManyCertificates {
                found: choices.len(),
            });
        }
        for c in choices {
            if c.tag == 0x30 {
                certificates.push(
                    Cert::from_der_named(c.raw, "certificate in the message")
                        .map_err(|e| malformed("certificates", e))?,
                );
            } else {
                warnings.push(format!(
                    "skipped a non-X.509 certificate choice (tag {:#04x})",
                    c.tag
                ));
            }
        }
    }
    let mut crl_count = 0;
    if let Some(t) = it.next_if(|t| t.tag == 0xa1) {
        crl_count = asn1::children(t.content)
            .map_err(|e| malformed("crls", e))?
            .len();
        if crl_count > 0 {
            warnings.push(format!(
                "the message carries {crl_count} CRL(s); they are not used (the directory's CRLs are)"
            ));
        }
    }
    let sis = expect(it.next(), 0x31, "signerInfos")?;
    if it.next().is_some() {
        return Err(malformed(
            "SignedData",
            "unexpected fields after signerInfos",
        ));
    }
    let raw_infos = asn1::children(sis.content).map_err(|e| malformed("signerInfos", e))?;
    if raw_infos.len() > MAX_SIGNERS {
        return Err(SignedError::TooManySigners {
            found: raw_infos.len(),
        });
    }
    let signer_infos = raw_infos
        .iter()
        .map(parse_signer_info)
        .collect::<Result<Vec<_>, _>>()?;

    Ok(SignedMessage {
        version,
        content_type,
        content,
        digest_algorithms,
        signer_infos,
        certificates,
        crl_count,
        warnings,
    })
}

fn parse_signer_info(t: &asn1::Tlv<'_>) -> Result<SignerInfo, SignedError> {
    let si =
        cms::signed_data::SignerInfo::from_der(t.raw).map_err(|e| malformed("SignerInfo", e))?;
    // The typed decoder re-sorts the SET; the signature is over the bytes as sent.
    let raw_attrs = asn1::children(t.content)
        .map_err(|e| malformed("SignerInfo", e))?
        .into_iter()
        .find(|f| f.tag == 0xa0)
        .map(|f| asn1::retag(f.raw, 0x31));
    let signed_attributes = match (si.signed_attrs, raw_attrs) {
        (Some(a), Some(der)) => Some(SignedAttributes {
            der,
            attributes: a.into_vec(),
        }),
        (None, None) => None,
        _ => return Err(malformed("signedAttrs", "cannot be located")),
    };
    let sid = match si.sid {
        cms::signed_data::SignerIdentifier::IssuerAndSerialNumber(isn) => {
            SignerId::IssuerAndSerial {
                issuer: isn.issuer,
                serial: isn.serial_number.as_bytes().to_vec(),
            }
        }
        cms::signed_data::SignerIdentifier::SubjectKeyIdentifier(ski) => {
            SignerId::SubjectKeyId(ski.0.as_bytes().to_vec())
        }
    };
    Ok(SignerInfo {
        version: si.version as u8,
        sid,
        digest_algorithm: si.digest_alg,
        signed_attributes,
        signature_algorithm: si.signature_algorithm,
        signature: si.signature.as_bytes().to_vec(),
        unsigned_attributes: si.unsigned_attrs.map(|a| a.into_vec()).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests;
