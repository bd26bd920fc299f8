//! Producing SignedData (RFC 5652 section 5.4, RFC 8551 section 2.5).

use der::asn1::{ObjectIdentifier, OctetString, SetOfVec};
use der::{Any, Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;

use super::attributes::{self, Capability, encode_capabilities};
use super::{MAX_SIGNERS, SignedError, asn1};
use crate::oid;
use crate::pki::keys::spki_der;
use crate::pki::{Cert, HashAlgorithm, PrivateKey, SignatureAlgorithm};

fn encoding(what: &'static str) -> impl Fn(der::Error) -> SignedError {
    move |e| SignedError::Encoding {
        what,
        reason: e.to_string(),
    }
}

/// One signer: the signing certificate and its key, the chain to include, and optionally the
/// encryption certificate to advertise (RFC 8551 section 2.5.3).
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    /// The signing certificate (named by issuerAndSerialNumber in the SignerInfo).
    pub cert: &'a Cert,
    /// Its private key.
    pub key: &'a PrivateKey,
    /// Intermediate CA certificates (and optionally the root) to include, so a recipient can
    /// build the path (RFC 8551 section 2.4.3 asks senders to include them).
    pub chain: &'a [Cert],
    /// The certificate correspondents should encrypt to, when it is not the signing one: named in
    /// SMIMEEncryptionKeyPreference and included among the certificates.
    pub encryption_cert: Option<&'a Cert>,
}

/// How to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOptions {
    /// Detached (`multipart/signed`, no eContent) or encapsulated (opaque
    /// `application/pkcs7-mime; smime-type=signed-data`).
    pub detached: bool,
    /// The digest every signer uses; `None` takes each key's own: SHA-256 for RSA, the curve's
    /// hash for ECDSA (SHA-256 for P-256, SHA-384 for P-384, the pairing RFC 5753 section 2.1.1
    /// describes and every peer expects). An ECDSA key asked for another digest is refused
    /// ([`SignedError::DigestUnavailable`]): aws-lc-rs, which holds every private key, signs
    /// P-256 only with SHA-256 and P-384 only with SHA-384, and a signature must never name a
    /// digest other than the one it used (RFC 8551 section 3.5.3.2: micalg names it too).
    /// SHA-1 is refused.
    pub digest: Option<HashAlgorithm>,
    /// RSASSA-PSS (RFC 4056) instead of PKCS #1 v1.5 for RSA signers; ignored for ECDSA.
    pub pss: bool,
    /// signingTime in Unix seconds; `None` takes the time of the call.
    pub signing_time: Option<i64>,
    /// SMIMECapabilities to advertise, most preferred first; empty leaves the attribute out.
    pub capabilities: Vec<Capability>,
}

impl Default for SignOptions {
    /// Detached, each key's own digest (SHA-256 for RSA), PKCS #1 v1.5, signed now, advertising
    /// AES-GCM before AES-CBC and RSA-OAEP (RFC 8551 section 2.7 lists AES-GCM as the preferred
    /// content encryption).
    fn default() -> Self {
        Self {
            detached: true,
            digest: None,
            pss: false,
            signing_time: None,
            capabilities: vec![
                Capability::Aes256Gcm,
                Capability::Aes128Gcm,
                Capability::Aes256Cbc,
                Capability::Aes128Cbc,
                Capability::RsaOaep,
            ],
        }
    }
}

/// The signature algorithm `s` signs with under `opts`, or why the digest asked for cannot be
/// used with its key.
fn signature_algorithm_for(
    s: &Signer<'_>,
    opts: &SignOptions,
) -> Result<SignatureAlgorithm, SignedError> {
    match s.key.default_signature() {
        SignatureAlgorithm::Ecdsa(curve_hash) => match opts.digest {
            Some(asked) if asked != curve_hash => Err(SignedError::DigestUnavailable {
                subject: s.cert.subject_string(),
                key: s.key.algorithm(),
                asked,
                supported: curve_hash,
            }),
            _ => Ok(SignatureAlgorithm::Ecdsa(curve_hash)),
        },
        own => {
            let h = opts.digest.unwrap_or(own.hash());
            Ok(if opts.pss {
                SignatureAlgorithm::RsaPss(h)
            } else {
                SignatureAlgorithm::RsaPkcs1(h)
            })
        }
    }
}

/// A digest AlgorithmIdentifier with absent parameters, as RFC 5754 section 2 says to generate.
fn digest_alg_id(h: HashAlgorithm) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: h.oid(),
        parameters: None,
    }
}

fn attribute(oid: ObjectIdentifier, value_der: &[u8]) -> Result<Attribute, SignedError> {
    let value = Any::from_der(value_der).map_err(encoding("attribute value"))?;
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value]).map_err(encoding("attribute value"))?,
    })
}

/// The signed attributes of RFC 5652 section 11 and RFC 8551 section 2.5, as a DER SET (sorted
/// by the SetOfVec, so the encoding is the one that is signed and sent).
fn signed_attributes(
    digest: &[u8],
    time: i64,
    caps: &[Capability],
    encryption_cert: Option<&Cert>,
) -> Result<SetOfVec<Attribute>, SignedError> {
    let mut attrs = vec![
        attribute(
            oid::AA_CONTENT_TYPE,
            &oid::CMS_DATA.to_der().map_err(encoding("contentType"))?,
        )?,
        attribute(
            oid::AA_MESSAGE_DIGEST,
            &OctetString::new(digest)
                .and_then(|o| o.to_der())
                .map_err(encoding("messageDigest"))?,
        )?,
    ];
    // RFC 5652 section 11.3: UTCTime through 2049, GeneralizedTime after; unix_to_time does that.
    let t = crate::pki::profile::unix_to_time(time).map_err(|e| SignedError::Encoding {
        what: "signingTime",
        reason: e.to_string(),
    })?;
    attrs.push(attribute(
        oid::AA_SIGNING_TIME,
        &t.to_der().map_err(encoding("signingTime"))?,
    )?);
    if !caps.is_empty() {
        attrs.push(attribute(
            oid::AA_SMIME_CAPABILITIES,
            &encode_capabilities(caps),
        )?);
    }
    if let Some(enc) = encryption_cert {
        let pref = attributes::encode_key_preference(enc)
            .map_err(encoding("SMIMEEncryptionKeyPreference"))?;
        attrs.push(attribute(oid::AA_ENCRYPT_KEY_PREF, &pref)?);
    }
    SetOfVec::try_from(attrs).map_err(encoding("signed attributes"))
}

/// Signs `content` and returns a DER ContentInfo holding a SignedData (RFC 5652 sections 3
/// and 5) with eContentType id-data; `opts.detached` leaves the content out (RFC 8551
/// section 3.5.3, multipart/signed).
///
/// Every signer gets a version 1 SignerInfo naming its certificate by issuerAndSerialNumber
/// (readable by every peer, RFC 5652 section 5.3), and the signature covers the DER of the signed
/// attributes (section 5.4). The certificates field holds each signer's certificate, chain and
/// encryption certificate, once each.
pub fn sign(
    content: &[u8],
    signers: &[Signer<'_>],
    opts: &SignOptions,
) -> Result<Vec<u8>, SignedError> {
    sign_reporting(content, signers, opts).map(|s| s.der)
}

/// What [`sign_reporting`] made: the SignedData and the digest each signer actually used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The DER ContentInfo holding the SignedData.
    pub der: Vec<u8>,
    /// The digestAlgorithm of each SignerInfo, in the order of the signers: what the
    /// `multipart/signed` micalg parameter must name (RFC 8551 section 3.5.3.2).
    pub digests: Vec<HashAlgorithm>,
}

/// [`sign`], also returning the digest each signer used, so that what is written about the
/// signature (micalg) is taken from the signature rather than from what was asked for.
pub fn sign_reporting(
    content: &[u8],
    signers: &[Signer<'_>],
    opts: &SignOptions,
) -> Result<Signed, SignedError> {
    if signers.is_empty() {
        return Err(SignedError::NoSigners);
    }
    if signers.len() > MAX_SIGNERS {
        return Err(SignedError::TooManySigners {
            found: signers.len(),
        });
    }
    if opts.digest == Some(HashAlgorithm::Sha1) {
        return Err(SignedError::Sha1Signing);
    }
    let time = opts.signing_time.unwrap_or_else(crate::pki::profile::now);

    let mut digest_algs = Vec::new();
    let mut digests = Vec::new();
    let mut certs = Vec::new();
    let mut infos = Vec::new();
    for s in signers {
        if s.key.public_key_der() != spki_der(s.cert.spki()) {
            return Err(SignedError::KeyMismatch {
                subject: s.cert.subject_string(),
                serial: s.cert.serial_hex(),
            });
        }
        let alg = signature_algorithm_for(s, opts)?;
        let digest = alg.hash().digest(content);
        let attrs = signed_attributes(&digest, time, &opts.capabilities, s.encryption_cert)?;
        let attrs_der = attrs.to_der().map_err(encoding("signed attributes"))?;
        let signature = s
            .key
            .sign(alg, &attrs_der)
            .map_err(|source| SignedError::Key {
                subject: s.cert.subject_string(),
                source,
            })?;
        let info = cms::signed_data::SignerInfo {
            version: cms::content_info::CmsVersion::V1,
            sid: cms::signed_data::SignerIdentifier::IssuerAndSerialNumber(
                cms::cert::IssuerAndSerialNumber {
                    issuer: s.cert.issuer().clone(),
                    serial_number: s.cert.x509().tbs_certificate().serial_number().clone(),
                },
            ),
            digest_alg: digest_alg_id(alg.hash()),
            signed_attrs: Some(attrs),
            signature_algorithm: alg.to_algorithm_identifier(),
            signature: OctetString::new(signature).map_err(encoding("signature"))?,
            unsigned_attrs: None,
        };
        infos.push(info.to_der().map_err(encoding("SignerInfo"))?);
        digests.push(alg.hash());
        digest_algs.push(
            digest_alg_id(alg.hash())
                .to_der()
                .map_err(encoding("digestAlgorithms"))?,
        );
        certs.push(s.cert.der().to_vec());
        certs.extend(s.chain.iter().map(|c| c.der().to_vec()));
        if let Some(e) = s.encryption_cert {
            certs.push(e.der().to_vec());
        }
    }

    let mut encap = oid::CMS_DATA.to_der().map_err(encoding("eContentType"))?;
    if !opts.detached {
        encap.extend(asn1::tlv(0xa0, &asn1::tlv(0x04, content)));
    }
    // RFC 5652 section 5.1: version 1, since the eContentType is id-data, every SignerInfo is
    // version 1 and only X.509 certificates are included.
    let signed_data = [
        vec![0x02, 0x01, 0x01],
        asn1::set_of(0x31, digest_algs),
        asn1::tlv(0x30, &encap),
        asn1::set_of(0xa0, certs),
        asn1::set_of(0x31, infos),
    ]
    .concat();
    let content_info = [
        oid::CMS_SIGNED_DATA
            .to_der()
            .map_err(encoding("contentType"))?,
        asn1::tlv(0xa0, &asn1::tlv(0x30, &signed_data)),
    ]
    .concat();
    Ok(Signed {
        der: asn1::tlv(0x30, &content_info),
        digests,
    })
}
