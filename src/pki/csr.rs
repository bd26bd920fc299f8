//! Certificate requests (PKCS #10, RFC 2986) that users bring when they keep their own key.
//!
//! A request is accepted only when its self-signature verifies (proof of possession of the
//! private key, RFC 4211 section 4 in spirit) and it names exactly the address it is for.

use der::{Decode, Encode};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::request::CertReq;

use crate::oid;
use crate::pki::cert::{looks_like_pem, pem_blocks, raw_first_element};
use crate::pki::keys::verify_signature;

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CsrError {
    /// Not a PKCS #10 request.
    #[error("{source_name}: not a valid PKCS #10 certificate request: {reason}")]
    Malformed {
        /// Where it came from.
        source_name: String,
        /// Why.
        reason: String,
    },
    /// The signature does not verify with the enclosed key.
    #[error(
        "{0}: the request's signature does not verify with its own public key (no proof of possession); ask the user to create the request again"
    )]
    BadSignature(String),
    /// No e-mail address in the request.
    #[error(
        "{0}: the request names no e-mail address (put it in subjectAltName email: or the subject's emailAddress)"
    )]
    NoEmail(String),
    /// More than one distinct address.
    #[error(
        "{source_name}: the request names several addresses ({addresses}); one request per address"
    )]
    SeveralEmails {
        /// Where it came from.
        source_name: String,
        /// The addresses found.
        addresses: String,
    },
}

/// A verified certificate request.
#[derive(Clone, Debug)]
pub struct Csr {
    /// The request (DER).
    pub der: Vec<u8>,
    /// The address it is for (lowercase).
    pub email: String,
    /// The subject's common name, if any.
    pub common_name: Option<String>,
    /// The key to certify.
    pub public_key: SubjectPublicKeyInfoOwned,
}

impl Csr {
    /// Parses a PEM (`CERTIFICATE REQUEST` / `NEW CERTIFICATE REQUEST`) or DER request and
    /// verifies its signature.
    pub fn parse(bytes: &[u8], source_name: &str) -> Result<Self, CsrError> {
        let der = if looks_like_pem(bytes) {
            pem_blocks(bytes)
                .into_iter()
                .find(|(l, _)| l == "CERTIFICATE REQUEST" || l == "NEW CERTIFICATE REQUEST")
                .map(|(_, d)| d)
                .ok_or_else(|| CsrError::Malformed {
                    source_name: source_name.to_string(),
                    reason: "no 'BEGIN CERTIFICATE REQUEST' block".into(),
                })?
        } else {
            bytes.to_vec()
        };
        let req = CertReq::from_der(&der).map_err(|e| CsrError::Malformed {
            source_name: source_name.to_string(),
            reason: e.to_string(),
        })?;
        let signed = raw_first_element(&der).ok_or_else(|| CsrError::Malformed {
            source_name: source_name.to_string(),
            reason: "cannot locate the signed part".into(),
        })?;
        verify_signature(
            &req.info.public_key,
            &req.algorithm,
            signed,
            req.signature.raw_bytes(),
        )
        .map_err(|_| CsrError::BadSignature(source_name.to_string()))?;

        let mut emails: Vec<String> = Vec::new();
        for attr in req.info.attributes.iter() {
            if attr.oid != oid::EXTENSION_REQUEST {
                continue;
            }
            for v in attr.values.iter() {
                let Ok(bytes) = v.to_der() else { continue };
                let Ok(ext_req) = x509_cert::request::ExtensionReq::from_der(&bytes) else {
                    continue;
                };
                for ext in ext_req.0 {
                    if ext.extn_id == oid::SUBJECT_ALT_NAME
                        && let Ok(san) = SubjectAltName::from_der(ext.extn_value.as_bytes())
                    {
                        for g in san.0 {
                            if let GeneralName::Rfc822Name(s) = g {
                                emails.push(s.as_str().to_ascii_lowercase());
                            }
                        }
                    }
                }
            }
        }
        for atv in req.info.subject.iter() {
            if atv.oid == oid::AT_EMAIL_ADDRESS
                && let Ok(s) = atv.value.decode_as::<der::asn1::Ia5String>()
            {
                emails.push(s.as_str().to_ascii_lowercase());
            }
        }
        emails.sort();
        emails.dedup();
        let email = match emails.len() {
            0 => return Err(CsrError::NoEmail(source_name.to_string())),
            1 => emails.remove(0),
            _ => {
                return Err(CsrError::SeveralEmails {
                    source_name: source_name.to_string(),
                    addresses: emails.join(", "),
                });
            }
        };
        let common_name = req
            .info
            .subject
            .common_name()
            .ok()
            .flatten()
            .map(String::from);
        Ok(Self {
            der,
            email,
            common_name,
            public_key: req.info.public_key,
        })
    }
}
