//! Certificate profiles: what goes into a certificate, described as plain parameters.
//!
//! Read a profile aloud and it says what RFC 8550 and the CA/Browser Forum S/MIME baseline ask
//! for: a signing certificate has digitalSignature + nonRepudiation and emailProtection, an
//! encryption certificate has keyEncipherment (RSA) or keyAgreement (EC). [`CertificateParams::sign`]
//! encodes every field explicitly, so a new field cannot be silently dropped.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use der::asn1::{BitString, Ia5String, OctetString};
use der::{Encode, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::certificate::Version;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::constraints::name::GeneralSubtree;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    NameConstraints, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::oid;
use crate::pki::cert::Cert;
use crate::pki::keys::{KeyAlgorithm, PrivateKey, key_identifier};

/// Why a certificate could not be produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// A name or address cannot be encoded (non-ASCII e-mail, bad DN syntax...).
    #[error("cannot encode {what} '{value}': {reason}")]
    Encoding {
        /// Which field.
        what: &'static str,
        /// The value given.
        value: String,
        /// Why.
        reason: String,
    },
    /// Signing failed.
    #[error(transparent)]
    Key(#[from] crate::pki::keys::KeyError),
}

/// Whether the certificate may issue others (RFC 5280 section 4.2.1.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsCa {
    /// An end-entity certificate.
    No,
    /// A CA, with an optional limit on the number of CAs below it.
    Ca {
        /// pathLenConstraint.
        path_len: Option<u8>,
    },
}

/// keyUsage bits (RFC 5280 section 4.2.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyUsagePurpose {
    /// Signatures other than on certificates and CRLs.
    DigitalSignature,
    /// Content commitment: the signer cannot later deny the signature.
    NonRepudiation,
    /// RSA key transport (encryption certificates with RSA keys).
    KeyEncipherment,
    /// ECDH key agreement (encryption certificates with EC keys).
    KeyAgreement,
    /// Signing certificates.
    KeyCertSign,
    /// Signing CRLs.
    CrlSign,
}

/// extKeyUsage purposes (RFC 5280 section 4.2.1.12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtendedKeyUsagePurpose {
    /// S/MIME.
    EmailProtection,
    /// TLS server (STARTTLS on our listener).
    ServerAuth,
    /// TLS client (an MTA authenticating to us).
    ClientAuth,
}

/// Everything that goes into a certificate except the keys.
#[derive(Clone, Debug)]
pub struct CertificateParams {
    /// Subject distinguished name.
    pub subject: Name,
    /// Serial number; `None` draws 16 random bytes (positive, as RFC 5280 section 4.1.2.2 and the
    /// CA/B Forum baseline's 64 bits of entropy require).
    pub serial: Option<Vec<u8>>,
    /// Start of validity (unix seconds).
    pub not_before: i64,
    /// End of validity (unix seconds).
    pub not_after: i64,
    /// CA or end entity.
    pub is_ca: IsCa,
    /// keyUsage (critical).
    pub key_usages: Vec<KeyUsagePurpose>,
    /// extKeyUsage (non-critical); empty = extension absent.
    pub extended_key_usages: Vec<ExtendedKeyUsagePurpose>,
    /// subjectAltName rfc822Name entries.
    pub email_addresses: Vec<String>,
    /// subjectAltName dNSName entries (server certificates).
    pub dns_names: Vec<String>,
    /// nameConstraints permitted rfc822Name subtrees (critical); empty = no constraint.
    pub permitted_email_domains: Vec<String>,
    /// subjectKeyIdentifier to use instead of our own (RFC 7093) derivation. A cross-certificate
    /// must carry the foreign CA's own identifier, or the authorityKeyIdentifier in the foreign
    /// CA's certificates would not lead to it (RFC 5280 section 4.2.1.2).
    pub subject_key_id: Option<Vec<u8>>,
}

/// The key and name that sign a certificate.
pub struct Issuer<'a> {
    /// The issuer's subject name (becomes the certificate's issuer).
    pub name: &'a Name,
    /// The issuer's private key.
    pub key: &'a PrivateKey,
    /// The issuer's subject key identifier (becomes the authority key identifier).
    pub key_id: Vec<u8>,
}

impl<'a> Issuer<'a> {
    /// An issuer backed by a CA certificate and its key.
    pub fn from_cert(cert: &'a Cert, key: &'a PrivateKey) -> Self {
        let key_id = cert
            .subject_key_id()
            .ok()
            .flatten()
            .unwrap_or_else(|| key_identifier(cert.spki()));
        Self {
            name: cert.subject(),
            key,
            key_id,
        }
    }
}

/// Current unix time in seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Builds a subject name `CN=<common name>[,O=<organisation>]` with proper escaping.
pub fn simple_name(common_name: &str, organisation: Option<&str>) -> Result<Name, ProfileError> {
    let esc = |s: &str| {
        let mut o = String::new();
        for (i, c) in s.chars().enumerate() {
            if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
                || (i == 0 && (c == '#' || c == ' '))
            {
                o.push('\\');
            }
            o.push(c);
        }
        if o.ends_with(' ') {
            o.insert(o.len() - 1, '\\');
        }
        o
    };
    let mut dn = format!("CN={}", esc(common_name));
    if let Some(org) = organisation {
        dn = format!("{dn},O={}", esc(org));
    }
    dn.parse::<Name>().map_err(|e| ProfileError::Encoding {
        what: "subject name",
        value: common_name.to_string(),
        reason: e.to_string(),
    })
}

/// The keyUsage an encryption certificate needs for this key type.
pub fn encryption_usage(alg: KeyAlgorithm) -> KeyUsagePurpose {
    if alg.is_rsa() {
        KeyUsagePurpose::KeyEncipherment
    } else {
        KeyUsagePurpose::KeyAgreement
    }
}

impl CertificateParams {
    fn base(subject: Name, days: u32) -> Self {
        // Backdate by an hour so a peer with a slightly slow clock accepts a fresh certificate.
        let start = now() - 3600;
        Self {
            subject,
            serial: None,
            not_before: start,
            not_after: start + 3600 + i64::from(days) * 86_400,
            is_ca: IsCa::No,
            key_usages: Vec::new(),
            extended_key_usages: Vec::new(),
            email_addresses: Vec::new(),
            dns_names: Vec::new(),
            permitted_email_domains: Vec::new(),
            subject_key_id: None,
        }
    }

    /// A self-signed root CA (keyCertSign + cRLSign, no path length limit).
    pub fn root_ca(subject: Name, days: u32) -> Self {
        Self {
            is_ca: IsCa::Ca { path_len: None },
            key_usages: vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign],
            ..Self::base(subject, days)
        }
    }

    /// An S/MIME signing certificate (RFC 8550 section 4.4.2; CA/B Forum S/MIME baseline 7.1.2.3).
    pub fn smime_signing(email: &str, subject: Name, days: u32) -> Self {
        Self {
            key_usages: vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::NonRepudiation,
            ],
            extended_key_usages: vec![ExtendedKeyUsagePurpose::EmailProtection],
            email_addresses: vec![email.to_ascii_lowercase()],
            ..Self::base(subject, days)
        }
    }

    /// An S/MIME encryption certificate: key transport for RSA, key agreement for EC.
    pub fn smime_encryption(email: &str, subject: Name, days: u32, key: KeyAlgorithm) -> Self {
        Self {
            key_usages: vec![encryption_usage(key)],
            extended_key_usages: vec![ExtendedKeyUsagePurpose::EmailProtection],
            email_addresses: vec![email.to_ascii_lowercase()],
            ..Self::base(subject, days)
        }
    }

    /// One certificate for both signing and encryption (the "multipurpose" profile).
    pub fn smime_single(email: &str, subject: Name, days: u32, key: KeyAlgorithm) -> Self {
        Self {
            key_usages: vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::NonRepudiation,
                encryption_usage(key),
            ],
            extended_key_usages: vec![ExtendedKeyUsagePurpose::EmailProtection],
            email_addresses: vec![email.to_ascii_lowercase()],
            ..Self::base(subject, days)
        }
    }

    /// A cross-certificate for a foreign CA's subject and key (the Domino cross-certificate):
    /// a CA certificate, optionally limited to some mail domains by name constraints.
    pub fn cross_certificate(foreign: &Cert, days: u32, permitted_domains: &[String]) -> Self {
        let subject = foreign.subject().clone();
        Self {
            subject_key_id: foreign.subject_key_id().ok().flatten(),
            is_ca: IsCa::Ca { path_len: None },
            key_usages: vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign],
            permitted_email_domains: permitted_domains
                .iter()
                .map(|d| d.to_ascii_lowercase())
                .collect(),
            ..Self::base(subject, days)
        }
    }

    /// A TLS server certificate for the STARTTLS listener.
    pub fn tls_server(hostname: &str, subject: Name, days: u32, key: KeyAlgorithm) -> Self {
        let mut usages = vec![KeyUsagePurpose::DigitalSignature];
        if key.is_rsa() {
            usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        Self {
            key_usages: usages,
            extended_key_usages: vec![ExtendedKeyUsagePurpose::ServerAuth],
            dns_names: vec![hostname.to_ascii_lowercase()],
            ..Self::base(subject, days)
        }
    }

    /// A TLS client certificate, for an MTA that authenticates to our listener with it
    /// (`[listen] require_client_certificate`).
    pub fn tls_client(name: &str, subject: Name, days: u32) -> Self {
        Self {
            key_usages: vec![KeyUsagePurpose::DigitalSignature],
            extended_key_usages: vec![ExtendedKeyUsagePurpose::ClientAuth],
            dns_names: vec![name.to_ascii_lowercase()],
            ..Self::base(subject, days)
        }
    }

    /// Encodes and signs the certificate for `subject_key`.
    pub fn sign(
        &self,
        subject_key: &SubjectPublicKeyInfoOwned,
        issuer: &Issuer<'_>,
    ) -> Result<Cert, ProfileError> {
        let Self {
            subject,
            serial,
            not_before,
            not_after,
            is_ca,
            key_usages,
            extended_key_usages,
            email_addresses,
            dns_names,
            permitted_email_domains,
            subject_key_id,
        } = self;

        let serial = match serial {
            Some(s) => s.clone(),
            None => random_serial()?,
        };
        let serial = SerialNumber::new(&serial).map_err(|e| enc("serial number", "", e))?;
        let validity = Validity::new(unix_to_time(*not_before)?, unix_to_time(*not_after)?);
        let sig_alg = issuer.key.default_signature();
        let ski = subject_key_id
            .clone()
            .unwrap_or_else(|| key_identifier(subject_key));

        let mut exts: Vec<Extension> = Vec::new();
        fn der_of<T: Encode>(v: &T) -> Result<Vec<u8>, ProfileError> {
            v.to_der().map_err(|e| enc("extension", "", e))
        }
        let mut push = |oid, critical, der: Vec<u8>| -> Result<(), ProfileError> {
            exts.push(Extension {
                extn_id: oid,
                critical,
                extn_value: OctetString::new(der).map_err(|e| enc("extension", "", e))?,
            });
            Ok(())
        };

        let bc = match is_ca {
            IsCa::No => BasicConstraints {
                ca: false,
                path_len_constraint: None,
            },
            IsCa::Ca { path_len } => BasicConstraints {
                ca: true,
                path_len_constraint: *path_len,
            },
        };
        // basicConstraints: critical for CAs (RFC 5280 4.2.1.9); present but non-critical for
        // end entities, as the S/MIME baseline permits, so no client mistakes a leaf for a CA.
        push(oid::BASIC_CONSTRAINTS, bc.ca, der_of(&bc)?)?;

        if !key_usages.is_empty() {
            let mut flags = flagset::FlagSet::<KeyUsages>::default();
            for u in key_usages {
                flags |= match u {
                    KeyUsagePurpose::DigitalSignature => KeyUsages::DigitalSignature,
                    KeyUsagePurpose::NonRepudiation => KeyUsages::NonRepudiation,
                    KeyUsagePurpose::KeyEncipherment => KeyUsages::KeyEncipherment,
                    KeyUsagePurpose::KeyAgreement => KeyUsages::KeyAgreement,
                    KeyUsagePurpose::KeyCertSign => KeyUsages::KeyCertSign,
                    KeyUsagePurpose::CrlSign => KeyUsages::CRLSign,
                };
            }
            push(oid::KEY_USAGE, true, der_of(&KeyUsage(flags))?)?;
        }

        if !extended_key_usages.is_empty() {
            let eku = ExtendedKeyUsage(
                extended_key_usages
                    .iter()
                    .map(|p| match p {
                        ExtendedKeyUsagePurpose::EmailProtection => oid::KP_EMAIL_PROTECTION,
                        ExtendedKeyUsagePurpose::ServerAuth => oid::KP_SERVER_AUTH,
                        ExtendedKeyUsagePurpose::ClientAuth => oid::KP_CLIENT_AUTH,
                    })
                    .collect(),
            );
            push(oid::EXT_KEY_USAGE, false, der_of(&eku)?)?;
        }

        let mut san = Vec::new();
        for e in email_addresses {
            san.push(GeneralName::Rfc822Name(
                Ia5String::new(e).map_err(|err| enc("e-mail address", e, err))?,
            ));
        }
        for d in dns_names {
            san.push(GeneralName::DnsName(
                Ia5String::new(d).map_err(|err| enc("host name", d, err))?,
            ));
        }
        if !san.is_empty() {
            push(oid::SUBJECT_ALT_NAME, false, der_of(&SubjectAltName(san))?)?;
        }

        if !permitted_email_domains.is_empty() {
            let mut subtrees = Vec::new();
            for d in permitted_email_domains {
                subtrees.push(GeneralSubtree {
                    base: GeneralName::Rfc822Name(
                        Ia5String::new(d).map_err(|err| enc("domain", d, err))?,
                    ),
                    minimum: 0,
                    maximum: None,
                });
            }
            let nc = NameConstraints {
                permitted_subtrees: Some(subtrees),
                excluded_subtrees: None,
            };
            push(oid::NAME_CONSTRAINTS, true, der_of(&nc)?)?;
        }

        push(
            oid::SUBJECT_KEY_IDENTIFIER,
            false,
            der_of(&SubjectKeyIdentifier(
                OctetString::new(ski).map_err(|e| enc("key id", "", e))?,
            ))?,
        )?;
        push(
            oid::AUTHORITY_KEY_IDENTIFIER,
            false,
            der_of(&AuthorityKeyIdentifier {
                key_identifier: Some(
                    OctetString::new(issuer.key_id.clone()).map_err(|e| enc("key id", "", e))?,
                ),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            })?,
        )?;

        let tbs = TbsOut {
            version: Version::V3,
            serial_number: serial,
            signature: sig_alg.to_algorithm_identifier(),
            issuer: issuer.name.clone(),
            validity,
            subject: subject.clone(),
            spki: subject_key.clone(),
            extensions: Some(exts),
        };
        let tbs_der = tbs.to_der().map_err(|e| enc("certificate", "", e))?;
        let signature = issuer.key.sign(sig_alg, &tbs_der)?;
        let cert = CertOut {
            tbs,
            signature_algorithm: sig_alg.to_algorithm_identifier(),
            signature: BitString::from_bytes(&signature).map_err(|e| enc("signature", "", e))?,
        };
        let der = cert.to_der().map_err(|e| enc("certificate", "", e))?;
        Cert::from_der(&der).map_err(|e| ProfileError::Encoding {
            what: "certificate",
            value: String::new(),
            reason: e.to_string(),
        })
    }
}

fn enc(what: &'static str, value: &str, e: impl std::fmt::Display) -> ProfileError {
    ProfileError::Encoding {
        what,
        value: value.to_string(),
        reason: e.to_string(),
    }
}

/// 16 random bytes with the top bit cleared (a positive INTEGER) and never zero.
pub fn random_serial() -> Result<Vec<u8>, crate::pki::keys::KeyError> {
    let mut s = [0u8; 16];
    SystemRandom::new().fill(&mut s).map_err(|_| {
        crate::pki::keys::KeyError::Crypto("the system random number generator failed")
    })?;
    s[0] &= 0x7f;
    if s[0] == 0 {
        s[0] = 0x01;
    }
    Ok(s.to_vec())
}

/// Converts unix seconds to an X.509 `Time` (UTCTime through 2049, GeneralizedTime after, as
/// RFC 5280 section 4.1.2.5 requires).
pub fn unix_to_time(secs: i64) -> Result<Time, ProfileError> {
    let st = UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
    Time::try_from(st).map_err(|e| enc("time", &secs.to_string(), e))
}

/// Our own encoding of `TBSCertificate` (RFC 5280 section 4.1): x509-cert keeps its fields
/// private, and a struct we own means every field is chosen here, explicitly.
#[derive(Sequence)]
struct TbsOut {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: Version,
    serial_number: SerialNumber,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    validity: Validity,
    subject: Name,
    spki: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    extensions: Option<Vec<Extension>>,
}

#[derive(Sequence)]
struct CertOut {
    tbs: TbsOut,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::keys::verify_signature;

    #[test]
    fn self_signed_root_verifies_and_has_ca_bits() {
        let key = PrivateKey::generate(KeyAlgorithm::P256).unwrap();
        let name = simple_name("Test Root, Inc", Some("Acme")).unwrap();
        let issuer = Issuer {
            name: &name,
            key: &key,
            key_id: key_identifier(&key.spki()),
        };
        let cert = CertificateParams::root_ca(name.clone(), 10)
            .sign(&key.spki(), &issuer)
            .unwrap();
        assert!(cert.is_ca());
        assert!(cert.is_self_issued());
        assert_eq!(cert.serial().len(), 16);
        assert!(cert.serial()[0] < 0x80);
        verify_signature(
            cert.spki(),
            cert.x509().signature_algorithm(),
            cert.tbs_der(),
            cert.signature_bytes(),
        )
        .unwrap();
        assert_eq!(
            cert.subject_key_id().unwrap(),
            cert.authority_key_id().unwrap()
        );
    }
}
