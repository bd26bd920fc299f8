//! CMS EnvelopedData (RFC 5652 section 6) and AuthEnvelopedData (RFC 5083): the encryption half
//! of S/MIME at the CMS level. MIME wrapping (RFC 8551 section 3.3) happens a layer above.
//!
//! What we write, and why:
//! - AES-CBC content (RFC 3565) in EnvelopedData, AES-GCM (RFC 5084) in AuthEnvelopedData with a
//!   12-byte nonce, a 16-byte tag and no authenticated attributes. RFC 8551 section 2.7 makes
//!   AES-128-GCM and AES-256-GCM the MUSTs, but Outlook and older Thunderbirds read only
//!   AES-CBC, so the caller chooses per message from what the recipients advertised.
//! - RSA recipients get a KeyTransRecipientInfo (RFC 5652 section 6.2.1): PKCS #1 v1.5
//!   (RFC 3370 section 4.2.1; every client reads it) or RSAES-OAEP with SHA-256 and
//!   MGF1-SHA-256 (RFC 3560, parameters spelt out as RFC 4055 section 4.1 asks).
//! - EC recipients (P-256, P-384) get a KeyAgreeRecipientInfo (RFC 5652 section 6.2.2) with an
//!   ephemeral-static ECDH per recipient, the X9.63 KDF with SHA-256 (P-256) or SHA-384 (P-384)
//!   and AES key wrap (RFC 5753 sections 3.1 and 8): aes128-wrap for a 128-bit content key,
//!   aes256-wrap otherwise. No ukm.
//!
//! What we read is wider: also the SHA-1/224/512 KDFs (OpenSSL's default is the SHA-1 one),
//! cofactor ECDH (identical to standard ECDH on P-256/P-384, whose cofactor is 1), aes192-wrap,
//! OAEP with SHA-1/384/512, AES-192 and authenticated attributes in AuthEnvelopedData.
//!
//! Every input passes [`crate::ber::to_der`] first, so indefinite lengths and OpenSSL's
//! `-stream` segmentation are handled in one place.
//!
//! Decryption follows RFC 3218 section 2.3 against Bleichenbacher-style oracles: whatever goes
//! wrong while recovering a content-encryption key (bad padding, a key of the wrong length, a
//! failed unwrap, an invalid point), decryption carries on with a random key of the right length,
//! so the only failure anyone observes is the content decryption failing: one error,
//! [`EnvelopedError::DecryptionFailed`], after the same steps. With AES-CBC, which has no
//! integrity, a random key yields valid padding about once in 256 tries and then garbage comes
//! out instead of an error: that is the price RFC 3218 accepts, and a reason to prefer GCM.

use aws_lc_rs::{aead, cipher, key_wrap};
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::{
    EncryptedContentInfo, EnvelopedData, KeyAgreeRecipientIdentifier, KeyAgreeRecipientInfo,
    KeyTransRecipientInfo, OriginatorIdentifierOrKey, OriginatorPublicKey, RecipientEncryptedKey,
    RecipientIdentifier, RecipientInfo, RecipientInfos, RecipientKeyIdentifier,
};
use der::asn1::{BitString, ObjectIdentifier, OctetString};
use der::{Any, Decode, Encode, Reader, Sequence, SliceReader, Tag, TagNumber, Tagged};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use zeroize::{Zeroize, Zeroizing};

use crate::ber;
use crate::oid;
use crate::pki::cert::{Cert, same_name};
use crate::pki::keys::{self, HashAlgorithm, KeyAlgorithm, PrivateKey};

/// Most key slots (KeyTransRecipientInfos plus the RecipientEncryptedKeys inside
/// KeyAgreeRecipientInfos) examined in one message. RFC 5652 sets no limit; this bounds the
/// private-key work a hostile message can ask of us, and real mail lists a handful.
pub const MAX_RECIPIENT_INFOS: usize = 64;

/// The content-encryption algorithm. CBC modes travel in EnvelopedData (RFC 5652 section 6,
/// RFC 3565), GCM modes in AuthEnvelopedData (RFC 5083, RFC 5084).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentCipher {
    /// AES-128 in CBC mode with PKCS #7 padding (RFC 3565 section 2.3.1).
    Aes128Cbc,
    /// AES-192 in CBC mode (read for completeness; nobody needs to write it).
    Aes192Cbc,
    /// AES-256 in CBC mode: the most widely readable choice, and the fallback when a
    /// recipient's capabilities are unknown.
    Aes256Cbc,
    /// AES-128 in GCM mode (RFC 5084 section 3.2), a MUST in RFC 8551 section 2.7.
    Aes128Gcm,
    /// AES-192 in GCM mode (read for completeness).
    Aes192Gcm,
    /// AES-256 in GCM mode.
    Aes256Gcm,
}

impl ContentCipher {
    /// Every accepted name, for help texts and error messages.
    pub const NAMES: &'static str =
        "aes128-cbc, aes192-cbc, aes256-cbc, aes128-gcm, aes192-gcm, aes256-gcm";

    const ALL: [Self; 6] = [
        Self::Aes128Cbc,
        Self::Aes192Cbc,
        Self::Aes256Cbc,
        Self::Aes128Gcm,
        Self::Aes192Gcm,
        Self::Aes256Gcm,
    ];

    /// Content-encryption key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::Aes128Cbc | Self::Aes128Gcm => 16,
            Self::Aes192Cbc | Self::Aes192Gcm => 24,
            Self::Aes256Cbc | Self::Aes256Gcm => 32,
        }
    }

    /// Whether this is an authenticated mode, carried in AuthEnvelopedData.
    pub fn is_aead(self) -> bool {
        matches!(self, Self::Aes128Gcm | Self::Aes192Gcm | Self::Aes256Gcm)
    }

    /// The algorithm's object identifier.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Aes128Cbc => oid::AES128_CBC,
            Self::Aes192Cbc => oid::AES192_CBC,
            Self::Aes256Cbc => oid::AES256_CBC,
            Self::Aes128Gcm => oid::AES128_GCM,
            Self::Aes192Gcm => oid::AES192_GCM,
            Self::Aes256Gcm => oid::AES256_GCM,
        }
    }

    /// Looks a cipher up by its object identifier.
    pub fn from_oid(o: &ObjectIdentifier) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.oid() == *o)
    }

    fn name(self) -> &'static str {
        match self {
            Self::Aes128Cbc => "aes128-cbc",
            Self::Aes192Cbc => "aes192-cbc",
            Self::Aes256Cbc => "aes256-cbc",
            Self::Aes128Gcm => "aes128-gcm",
            Self::Aes192Gcm => "aes192-gcm",
            Self::Aes256Gcm => "aes256-gcm",
        }
    }
}

impl std::fmt::Display for ContentCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ContentCipher {
    type Err = EnvelopedError;
    fn from_str(s: &str) -> Result<Self, EnvelopedError> {
        let s = s.to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                EnvelopedError::UnsupportedAlgorithm(format!(
                    "content cipher '{s}' (expected one of {})",
                    Self::NAMES
                ))
            })
    }
}

/// How a recipient is named in its RecipientInfo (RFC 5652 section 6.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RecipientIdKind {
    /// issuerAndSerialNumber: read by every client; the default.
    #[default]
    IssuerAndSerial,
    /// subjectKeyIdentifier: survives re-issuance of the same key under another CA.
    SubjectKeyId,
}

/// One recipient of an encrypted message.
#[derive(Clone, Copy, Debug)]
pub struct Recipient<'a> {
    /// The recipient's encryption certificate (RSA, or EC on P-256/P-384).
    pub cert: &'a Cert,
    /// For RSA: RSAES-OAEP with SHA-256 instead of PKCS #1 v1.5. Ignored for EC keys.
    pub oaep: bool,
    /// How the RecipientInfo names the certificate.
    pub id: RecipientIdKind,
}

/// A decrypted message.
pub struct Decrypted {
    /// The encapsulated content (a MIME entity, for S/MIME).
    pub content: Zeroizing<Vec<u8>>,
    /// The content cipher the sender chose.
    pub cipher: ContentCipher,
    /// Which of the keys passed to [`decrypt`] opened the message.
    pub key_index: usize,
}

impl std::fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Decrypted({} bytes, {}, key {})",
            self.content.len(),
            self.cipher,
            self.key_index
        )
    }
}

/// Why a message could not be encrypted or decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopedError {
    /// None of the message's recipients is a key we hold.
    #[error("no key we hold matches a recipient: {}", recipients.join("; "))]
    NoMatchingKey {
        /// The recipients the message names, human-readable (see [`recipient_ids`]).
        recipients: Vec<String>,
    },
    /// A recipient matched a key we hold but the content did not decrypt: a wrong or damaged
    /// key, damaged content or a failed GCM tag. Deliberately one variant (RFC 3218 section 2.3).
    #[error("decryption failed")]
    DecryptionFailed,
    /// An algorithm or parameter we do not implement.
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// The bytes are not a well-formed EnvelopedData or AuthEnvelopedData.
    #[error("malformed CMS enveloped data: {0}")]
    Malformed(String),
    /// The ContentInfo holds some other content type (SignedData, say).
    #[error("not an encrypted CMS message: content type {0}")]
    NotEnveloped(ObjectIdentifier),
    /// `encrypt` was called without recipients.
    #[error("an encrypted message needs at least one recipient")]
    NoRecipients,
    /// A recipient certificate cannot receive encrypted mail.
    #[error("cannot encrypt to certificate {subject}: {reason}")]
    UnsuitableRecipient {
        /// Subject of the certificate.
        subject: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Encoding the message failed (a value too large for DER, say).
    #[error("cannot encode the encrypted message: {0}")]
    Encoding(String),
    /// The cryptographic library failed while encrypting (random numbers, say).
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
}

fn malformed(what: impl std::fmt::Display) -> EnvelopedError {
    EnvelopedError::Malformed(what.to_string())
}

// ---- ASN.1 shapes the cms crate does not provide -------------------------------------------

/// GCMParameters, RFC 5084 section 3.2.
#[derive(Sequence)]
struct GcmParameters {
    nonce: OctetString,
    #[asn1(default = "default_icv_len")]
    icv_len: u8,
}

fn default_icv_len() -> u8 {
    12
}

/// RSAES-OAEP-params, RFC 8017 appendix A.2.1 / RFC 4055 section 4.1. Absent fields mean SHA-1,
/// MGF1-SHA-1 and the empty label.
#[derive(Sequence)]
struct RsaesOaepParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    p_source: Option<AlgorithmIdentifierOwned>,
}

/// ECC-CMS-SharedInfo, RFC 5753 section 7.2: the KDF's shared info.
#[derive(Sequence)]
struct EccCmsSharedInfo {
    key_info: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    entity_u_info: Option<OctetString>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT")]
    supp_pub_info: OctetString,
}

fn alg_id(oid: ObjectIdentifier, parameters: Option<Any>) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid, parameters }
}

fn encoding(e: der::Error) -> EnvelopedError {
    EnvelopedError::Encoding(e.to_string())
}

fn encode_any<T: der::EncodeValue + Tagged>(v: &T) -> Result<Any, EnvelopedError> {
    Any::encode_from(v).map_err(encoding)
}

fn octets(bytes: impl Into<Vec<u8>>) -> Result<OctetString, EnvelopedError> {
    OctetString::new(bytes.into()).map_err(encoding)
}

fn random(len: usize) -> Result<Zeroizing<Vec<u8>>, EnvelopedError> {
    let mut v = Zeroizing::new(vec![0u8; len]);
    aws_lc_rs::rand::fill(&mut v).map_err(|_| EnvelopedError::Crypto("random number generator"))?;
    Ok(v)
}

// ---- Encryption ---------------------------------------------------------------------------

/// Encrypts `content` for every recipient and returns a DER `ContentInfo`: EnvelopedData for
/// the CBC ciphers, AuthEnvelopedData for GCM.
///
/// A fresh content-encryption key and IV (or nonce) come from aws-lc-rs's generator for every
/// message; each EC recipient gets its own ephemeral key. The RecipientInfos appear in DER
/// SET order, not in the order given.
pub fn encrypt(
    content: &[u8],
    recipients: &[Recipient<'_>],
    cipher: ContentCipher,
) -> Result<Vec<u8>, EnvelopedError> {
    if recipients.is_empty() {
        return Err(EnvelopedError::NoRecipients);
    }
    let cek = random(cipher.key_len())?;
    let mut infos = Vec::with_capacity(recipients.len());
    for r in recipients {
        infos.push(recipient_info(r, &cek)?);
    }
    // RFC 5652 section 6.1: version 0 only when every RecipientInfo is version 0 (a ktri named
    // by issuerAndSerialNumber); a SKI-named ktri (version 2) or any kari (version 3) makes it 2.
    let all_v0 = infos
        .iter()
        .all(|ri| matches!(ri, RecipientInfo::Ktri(k) if k.version == CmsVersion::V0));
    let recip_infos = RecipientInfos::try_from(infos).map_err(encoding)?;

    let mut body = content.to_vec();
    let (content_type, inner) = if cipher.is_aead() {
        let nonce = random(aead::NONCE_LEN)?;
        let tag = seal_gcm(cipher, &cek, &nonce, &mut body)?;
        let params = GcmParameters {
            nonce: octets(nonce.as_slice())?,
            icv_len: 16,
        };
        let aed = cms::authenveloped_data::AuthEnvelopedData {
            // RFC 5083 section 2.1: always 0.
            version: CmsVersion::V0,
            originator_info: None,
            recip_infos,
            auth_encrypted_content_info: EncryptedContentInfo {
                content_type: oid::CMS_DATA,
                content_enc_alg: alg_id(cipher.oid(), Some(encode_any(&params)?)),
                encrypted_content: Some(octets(body)?),
            },
            auth_attrs: None,
            mac: octets(tag.as_ref())?,
            unauth_attrs: None,
        };
        (oid::CMS_AUTH_ENVELOPED_DATA, encode_any(&aed)?)
    } else {
        let iv = random(16)?;
        encrypt_cbc(cipher, &cek, &iv, &mut body)?;
        let ed = EnvelopedData {
            version: if all_v0 {
                CmsVersion::V0
            } else {
                CmsVersion::V2
            },
            originator_info: None,
            recip_infos,
            encrypted_content: EncryptedContentInfo {
                content_type: oid::CMS_DATA,
                content_enc_alg: alg_id(cipher.oid(), Some(encode_any(&octets(iv.as_slice())?)?)),
                encrypted_content: Some(octets(body)?),
            },
            unprotected_attrs: None,
        };
        (oid::CMS_ENVELOPED_DATA, encode_any(&ed)?)
    };
    ContentInfo {
        content_type,
        content: inner,
    }
    .to_der()
    .map_err(encoding)
}

fn unsuitable(cert: &Cert, reason: impl Into<String>) -> EnvelopedError {
    EnvelopedError::UnsuitableRecipient {
        subject: cert.subject_string(),
        reason: reason.into(),
    }
}

fn issuer_and_serial(cert: &Cert) -> IssuerAndSerialNumber {
    IssuerAndSerialNumber {
        issuer: cert.issuer().clone(),
        serial_number: cert.x509().tbs_certificate().serial_number().clone(),
    }
}

fn subject_key_id(cert: &Cert) -> Result<SubjectKeyIdentifier, EnvelopedError> {
    let ski = cert
        .subject_key_id()
        .map_err(|e| unsuitable(cert, e.to_string()))?
        .ok_or_else(|| unsuitable(cert, "no subjectKeyIdentifier to name it by"))?;
    Ok(SubjectKeyIdentifier(octets(ski)?))
}

fn recipient_info(r: &Recipient<'_>, cek: &[u8]) -> Result<RecipientInfo, EnvelopedError> {
    let cert = r.cert;
    let spki = cert.spki();
    let usage = cert
        .key_usage()
        .map_err(|e| unsuitable(cert, e.to_string()))?;
    if spki.algorithm.oid == oid::RSA_ENCRYPTION {
        // RFC 5280 section 4.2.1.3: key transport needs keyEncipherment when keyUsage is present.
        if usage.is_some_and(|u| !u.key_encipherment()) {
            return Err(unsuitable(
                cert,
                "its keyUsage does not allow keyEncipherment",
            ));
        }
        let (key_enc_alg, enc_key) = if r.oaep {
            (
                oaep_alg_id(HashAlgorithm::Sha256)?,
                keys::rsa_encrypt_oaep(spki, HashAlgorithm::Sha256, cek),
            )
        } else {
            // RFC 3370 section 4.2.1: rsaEncryption with NULL parameters.
            (
                alg_id(oid::RSA_ENCRYPTION, Some(Any::null())),
                keys::rsa_encrypt_pkcs1(spki, cek),
            )
        };
        let enc_key = enc_key.map_err(|e| unsuitable(cert, e.to_string()))?;
        let (version, rid) = match r.id {
            RecipientIdKind::IssuerAndSerial => (
                CmsVersion::V0,
                RecipientIdentifier::IssuerAndSerialNumber(issuer_and_serial(cert)),
            ),
            RecipientIdKind::SubjectKeyId => (
                CmsVersion::V2,
                RecipientIdentifier::SubjectKeyIdentifier(subject_key_id(cert)?),
            ),
        };
        Ok(RecipientInfo::Ktri(KeyTransRecipientInfo {
            version,
            rid,
            key_enc_alg,
            enc_key: octets(enc_key)?,
        }))
    } else if spki.algorithm.oid == oid::EC_PUBLIC_KEY {
        if usage.is_some_and(|u| !u.key_agreement()) {
            return Err(unsuitable(cert, "its keyUsage does not allow keyAgreement"));
        }
        let agreement = keys::ecdh_ephemeral(spki).map_err(|e| unsuitable(cert, e.to_string()))?;
        // RFC 5753 section 8: SHA-256 KDF for P-256, SHA-384 for P-384.
        let (scheme, kdf_hash) = match agreement.curve {
            KeyAlgorithm::P384 => (oid::ECDH_STD_SHA384KDF, &aws_lc_rs::digest::SHA384),
            _ => (oid::ECDH_STD_SHA256KDF, &aws_lc_rs::digest::SHA256),
        };
        let wrap = if cek.len() == 16 {
            Wrap::Aes128
        } else {
            Wrap::Aes256
        };
        let wrap_id = alg_id(wrap.oid(), None);
        let kek = x963_kdf(
            kdf_hash,
            &agreement.shared_secret,
            &shared_info(&wrap_id, None, wrap.kek_len())?,
            wrap.kek_len(),
        );
        let wrapped = wrap.wrap(&kek, cek)?;
        let rid = match r.id {
            RecipientIdKind::IssuerAndSerial => {
                KeyAgreeRecipientIdentifier::IssuerAndSerialNumber(issuer_and_serial(cert))
            }
            RecipientIdKind::SubjectKeyId => {
                KeyAgreeRecipientIdentifier::RKeyId(RecipientKeyIdentifier {
                    subject_key_identifier: subject_key_id(cert)?,
                    date: None,
                    other: None,
                })
            }
        };
        Ok(RecipientInfo::Kari(KeyAgreeRecipientInfo {
            // RFC 5652 section 6.2.2: always 3.
            version: CmsVersion::V3,
            // RFC 5753 section 3.1.1: the ephemeral key, id-ecPublicKey with parameters absent
            // (the curve is the recipient's), as OpenSSL writes it.
            originator: OriginatorIdentifierOrKey::OriginatorKey(OriginatorPublicKey {
                algorithm: alg_id(oid::EC_PUBLIC_KEY, None),
                public_key: BitString::from_bytes(&agreement.public_point).map_err(encoding)?,
            }),
            ukm: None,
            key_enc_alg: alg_id(scheme, Some(encode_any(&wrap_id)?)),
            recipient_enc_keys: vec![RecipientEncryptedKey {
                rid,
                enc_key: octets(wrapped)?,
            }],
        }))
    } else {
        Err(unsuitable(
            cert,
            format!(
                "public key algorithm {} cannot receive mail",
                spki.algorithm.oid
            ),
        ))
    }
}

fn oaep_alg_id(hash: HashAlgorithm) -> Result<AlgorithmIdentifierOwned, EnvelopedError> {
    // RFC 4055 section 2.1: hash AlgorithmIdentifiers with absent parameters.
    let h = alg_id(hash.oid(), None);
    let params = RsaesOaepParams {
        hash: Some(h.clone()),
        mask_gen: Some(alg_id(oid::MGF1, Some(encode_any(&h)?))),
        p_source: None,
    };
    Ok(alg_id(oid::RSAES_OAEP, Some(encode_any(&params)?)))
}

fn encrypt_cbc(
    c: ContentCipher,
    cek: &[u8],
    iv: &[u8],
    body: &mut Vec<u8>,
) -> Result<(), EnvelopedError> {
    let err = |_| EnvelopedError::Crypto("AES-CBC encryption");
    let key = cipher::UnboundCipherKey::new(cbc_algorithm(c), cek).map_err(err)?;
    let iv: [u8; 16] = iv
        .try_into()
        .map_err(|_| EnvelopedError::Crypto("IV length"))?;
    cipher::PaddedBlockEncryptingKey::cbc_pkcs7(key)
        .map_err(err)?
        .less_safe_encrypt(body, cipher::EncryptionContext::Iv128(iv.into()))
        .map_err(err)?;
    Ok(())
}

fn seal_gcm(
    c: ContentCipher,
    cek: &[u8],
    nonce: &[u8],
    body: &mut [u8],
) -> Result<aead::Tag, EnvelopedError> {
    let err = |_| EnvelopedError::Crypto("AES-GCM encryption");
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(gcm_algorithm(c), cek).map_err(err)?);
    let nonce = aead::Nonce::try_assume_unique_for_key(nonce).map_err(err)?;
    key.seal_in_place_separate_tag(nonce, aead::Aad::empty(), body)
        .map_err(err)
}

fn cbc_algorithm(c: ContentCipher) -> &'static cipher::Algorithm {
    match c.key_len() {
        16 => &cipher::AES_128,
        24 => &cipher::AES_192,
        _ => &cipher::AES_256,
    }
}

fn gcm_algorithm(c: ContentCipher) -> &'static aead::Algorithm {
    match c.key_len() {
        16 => &aead::AES_128_GCM,
        24 => &aead::AES_192_GCM,
        _ => &aead::AES_256_GCM,
    }
}

// ---- Key agreement pieces (RFC 5753) --------------------------------------------------------

/// The AES key wrap algorithms of RFC 3565 section 2.3.2 (RFC 3394).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wrap {
    Aes128,
    Aes192,
    Aes256,
}

impl Wrap {
    fn from_oid(o: &ObjectIdentifier) -> Option<Self> {
        [Self::Aes128, Self::Aes192, Self::Aes256]
            .into_iter()
            .find(|w| w.oid() == *o)
    }

    fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Aes128 => oid::AES128_WRAP,
            Self::Aes192 => oid::AES192_WRAP,
            Self::Aes256 => oid::AES256_WRAP,
        }
    }

    fn kek_len(self) -> usize {
        match self {
            Self::Aes128 => 16,
            Self::Aes192 => 24,
            Self::Aes256 => 32,
        }
    }

    fn wrap(self, kek: &[u8], cek: &[u8]) -> Result<Vec<u8>, EnvelopedError> {
        use key_wrap::KeyWrap as _;
        let err = |_| EnvelopedError::Crypto("AES key wrap");
        let mut out = vec![0u8; cek.len() + 8];
        let len = match self {
            Self::Aes128 => key_wrap::KeyEncryptionKey::new(&key_wrap::AES_128, kek)
                .map_err(err)?
                .wrap(cek, &mut out)
                .map_err(err)?
                .len(),
            Self::Aes256 => key_wrap::KeyEncryptionKey::new(&key_wrap::AES_256, kek)
                .map_err(err)?
                .wrap(cek, &mut out)
                .map_err(err)?
                .len(),
            // Never written: aws-lc-rs has no AES-192 key wrap and we do not need one.
            Self::Aes192 => return Err(EnvelopedError::Crypto("AES-192 key wrap")),
        };
        out.truncate(len);
        Ok(out)
    }

    /// RFC 3394 unwrap; `None` when the integrity check fails.
    fn unwrap(self, kek: &[u8], wrapped: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        use key_wrap::KeyWrap as _;
        let mut out = Zeroizing::new(vec![0u8; wrapped.len().checked_sub(8)?]);
        let len = match self {
            Self::Aes128 => key_wrap::KeyEncryptionKey::new(&key_wrap::AES_128, kek)
                .ok()?
                .unwrap(wrapped, &mut out)
                .ok()?
                .len(),
            Self::Aes256 => key_wrap::KeyEncryptionKey::new(&key_wrap::AES_256, kek)
                .ok()?
                .unwrap(wrapped, &mut out)
                .ok()?
                .len(),
            Self::Aes192 => {
                // aws-lc-rs offers AES-128 and AES-256 wrap only; aes-kw is RustCrypto's
                // RFC 3394 over the constant-time `aes` crate.
                use aes_kw::KeyInit as _;
                aes_kw::KwAes192::new_from_slice(kek)
                    .ok()?
                    .unwrap_key(wrapped, &mut out)
                    .ok()?
                    .len()
            }
        };
        out.truncate(len);
        Some(out)
    }
}

fn shared_info(
    wrap_id: &AlgorithmIdentifierOwned,
    ukm: Option<&OctetString>,
    kek_len: usize,
) -> Result<Vec<u8>, EnvelopedError> {
    let bits = u32::try_from(kek_len * 8).map_err(|_| malformed("KEK length"))?;
    EccCmsSharedInfo {
        key_info: wrap_id.clone(),
        entity_u_info: ukm.cloned(),
        supp_pub_info: octets(bits.to_be_bytes().to_vec())?,
    }
    .to_der()
    .map_err(encoding)
}

/// The ANSI X9.63 KDF (SEC 1 section 3.6.1), as RFC 5753 section 7.2 uses it:
/// Hash(Z || counter || SharedInfo) for counter = 1, 2, ... until `len` bytes.
fn x963_kdf(
    hash: &'static aws_lc_rs::digest::Algorithm,
    z: &[u8],
    shared_info: &[u8],
    len: usize,
) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(len + hash.output_len()));
    let mut counter: u32 = 1;
    while out.len() < len {
        let mut ctx = aws_lc_rs::digest::Context::new(hash);
        ctx.update(z);
        ctx.update(&counter.to_be_bytes());
        ctx.update(shared_info);
        out.extend_from_slice(ctx.finish().as_ref());
        counter += 1;
    }
    out.truncate(len);
    out
}

/// The KDF hash named by a dhSinglePass scheme of RFC 5753 section 7.1.4. Cofactor ECDH is the
/// same computation as standard ECDH on the curves we accept (cofactor 1).
fn kdf_hash(scheme: &ObjectIdentifier) -> Option<&'static aws_lc_rs::digest::Algorithm> {
    use aws_lc_rs::digest;
    let s = *scheme;
    Some(
        if s == oid::ECDH_STD_SHA1KDF || s == oid::ECDH_COFACTOR_SHA1KDF {
            &digest::SHA1_FOR_LEGACY_USE_ONLY
        } else if s == oid::ECDH_STD_SHA224KDF || s == oid::ECDH_COFACTOR_SHA224KDF {
            &digest::SHA224
        } else if s == oid::ECDH_STD_SHA256KDF || s == oid::ECDH_COFACTOR_SHA256KDF {
            &digest::SHA256
        } else if s == oid::ECDH_STD_SHA384KDF || s == oid::ECDH_COFACTOR_SHA384KDF {
            &digest::SHA384
        } else if s == oid::ECDH_STD_SHA512KDF || s == oid::ECDH_COFACTOR_SHA512KDF {
            &digest::SHA512
        } else {
            return None;
        },
    )
}

// ---- Parsing --------------------------------------------------------------------------------

/// The ContentInfo's elements in order, for positional reading with optional tagged fields.
struct Fields {
    items: Vec<Any>,
    pos: usize,
}

impl Fields {
    fn of_sequence(any: &Any, what: &str) -> Result<Self, EnvelopedError> {
        if any.tag() != Tag::Sequence {
            return Err(malformed(format!("{what} is not a SEQUENCE")));
        }
        Ok(Self {
            items: elements(any, what)?,
            pos: 0,
        })
    }

    fn optional(&mut self, tag: Tag) -> Option<Any> {
        let hit = self.items.get(self.pos).is_some_and(|a| a.tag() == tag);
        if hit {
            self.pos += 1;
            self.items.get(self.pos - 1).cloned()
        } else {
            None
        }
    }

    fn required(&mut self, tag: Tag, what: &str) -> Result<Any, EnvelopedError> {
        self.optional(tag)
            .ok_or_else(|| malformed(format!("{what} missing or misplaced")))
    }

    fn finish(&self, what: &str) -> Result<(), EnvelopedError> {
        if self.pos == self.items.len() {
            Ok(())
        } else {
            Err(malformed(format!("unexpected fields at the end of {what}")))
        }
    }
}

/// The elements inside a constructed value, each kept as encoded.
fn elements(any: &Any, what: &str) -> Result<Vec<Any>, EnvelopedError> {
    let mut r = SliceReader::new(any.value()).map_err(malformed)?;
    let mut items = Vec::new();
    while !r.is_finished() {
        items.push(Any::decode(&mut r).map_err(|e| malformed(format!("{what}: {e}")))?);
    }
    Ok(items)
}

fn context(number: u32, constructed: bool) -> Tag {
    Tag::ContextSpecific {
        constructed,
        number: TagNumber(number),
    }
}

fn decode_as<'a, T: Decode<'a, Error = der::Error>>(
    bytes: &'a [u8],
    what: &str,
) -> Result<T, EnvelopedError> {
    T::from_der(bytes).map_err(|e| malformed(format!("{what}: {e}")))
}

/// An EnvelopedData or AuthEnvelopedData, read as far as decryption needs.
struct Envelope {
    /// Each RecipientInfo as its DER, decoded lazily (one odd entry must not hide ours).
    recipient_infos: Vec<Any>,
    cipher: ContentCipher,
    /// The IV (CBC) or nonce (GCM).
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    /// The GCM tag (AuthEnvelopedData only).
    mac: Option<Vec<u8>>,
    /// Additional authenticated data: the DER of authAttrs with a SET OF tag (RFC 5083 2.2).
    aad: Vec<u8>,
}

fn parse(input: &[u8]) -> Result<Envelope, EnvelopedError> {
    let der = ber::to_der(input).map_err(|e| malformed(e.to_string()))?;
    let ci: ContentInfo = decode_as(&der, "ContentInfo")?;
    let auth = if ci.content_type == oid::CMS_ENVELOPED_DATA {
        false
    } else if ci.content_type == oid::CMS_AUTH_ENVELOPED_DATA {
        true
    } else {
        return Err(EnvelopedError::NotEnveloped(ci.content_type));
    };
    let what = if auth {
        "AuthEnvelopedData"
    } else {
        "EnvelopedData"
    };
    let mut f = Fields::of_sequence(&ci.content, what)?;
    let version: u8 = f
        .required(Tag::Integer, "version")?
        .decode_as()
        .map_err(|e| malformed(format!("{what} version: {e}")))?;
    // RFC 5652 section 6.1 allows 0, 2, 3, 4; RFC 5083 section 2.1 only 0.
    if (auth && version != 0) || (!auth && ![0, 2, 3, 4].contains(&version)) {
        return Err(malformed(format!("{what} version {version}")));
    }
    // originatorInfo carries certificates we do not need to decrypt.
    f.optional(context(0, true));
    let set = f.required(Tag::Set, "recipientInfos")?;
    let recipient_infos = elements(&set, "recipientInfos")?;
    if recipient_infos.is_empty() {
        return Err(malformed("no recipientInfos"));
    }
    let eci = f.required(Tag::Sequence, "encryptedContentInfo")?;
    let mut aad = Vec::new();
    let mut mac = None;
    if auth {
        if let Some(attrs) = f.optional(context(1, true)) {
            aad = Any::new(Tag::Set, attrs.value())
                .and_then(|a| a.to_der())
                .map_err(malformed)?;
        }
        let m: OctetString = f
            .required(Tag::OctetString, "mac")?
            .decode_as()
            .map_err(malformed)?;
        mac = Some(m.into_bytes().into_vec());
        f.optional(context(2, true));
    } else {
        f.optional(context(1, true));
    }
    f.finish(what)?;

    let mut e = Fields::of_sequence(&eci, "encryptedContentInfo")?;
    e.required(Tag::ObjectIdentifier, "contentType")?;
    let alg_any = e.required(Tag::Sequence, "contentEncryptionAlgorithm")?;
    let alg: AlgorithmIdentifierOwned = decode_as(
        &alg_any.to_der().map_err(malformed)?,
        "contentEncryptionAlgorithm",
    )?;
    let ciphertext = if let Some(p) = e.optional(context(0, false)) {
        p.value().to_vec()
    } else if let Some(c) = e.optional(context(0, true)) {
        // OpenSSL's -stream writes the implicitly tagged string segmented; ber::to_der leaves
        // it constructed because it cannot see the schema.
        ber::join_segments(c.value())
            .map_err(|e| malformed(e.to_string()))?
            .to_vec()
    } else {
        return Err(malformed(
            "encryptedContent absent (detached content is not supported)",
        ));
    };
    e.finish("encryptedContentInfo")?;

    let cipher = ContentCipher::from_oid(&alg.oid).ok_or_else(|| {
        EnvelopedError::UnsupportedAlgorithm(format!("content encryption {}", alg.oid))
    })?;
    if cipher.is_aead() != auth {
        return Err(EnvelopedError::UnsupportedAlgorithm(format!(
            "{cipher} in {what} (RFC 5084: GCM belongs in AuthEnvelopedData, CBC in EnvelopedData)"
        )));
    }
    let params = alg
        .parameters
        .as_ref()
        .ok_or_else(|| malformed(format!("{cipher} without parameters")))?;
    let iv = if auth {
        let p: GcmParameters = params
            .decode_as()
            .map_err(|e| malformed(format!("GCMParameters: {e}")))?;
        let nonce = p.nonce.into_bytes().into_vec();
        let tag_len = mac.as_ref().map_or(0, Vec::len);
        // RFC 5084 allows nonces of 7-13 bytes and tags of 12-16; everyone writes 12 and 16,
        // and aws-lc-rs implements only those.
        if nonce.len() != aead::NONCE_LEN || tag_len != 16 || ![12, 16].contains(&p.icv_len) {
            return Err(EnvelopedError::UnsupportedAlgorithm(format!(
                "{cipher} with a {}-byte nonce and a {tag_len}-byte tag (ICVlen {})",
                nonce.len(),
                p.icv_len
            )));
        }
        nonce
    } else {
        let iv: OctetString = params
            .decode_as()
            .map_err(|e| malformed(format!("{cipher} IV: {e}")))?;
        let iv = iv.into_bytes().into_vec();
        if iv.len() != 16 {
            return Err(malformed(format!("{cipher} IV of {} bytes", iv.len())));
        }
        iv
    };
    Ok(Envelope {
        recipient_infos,
        cipher,
        iv,
        ciphertext,
        mac,
        aad,
    })
}

/// One place a content-encryption key may be recovered from.
enum Slot {
    Ktri(KeyTransRecipientInfo),
    Kari {
        info: std::rc::Rc<KeyAgreeRecipientInfo>,
        index: usize,
    },
}

impl Slot {
    fn describe(&self) -> String {
        match self {
            Self::Ktri(k) => describe_rid(&k.rid),
            Self::Kari { info, index } => info
                .recipient_enc_keys
                .get(*index)
                .map(|rek| match &rek.rid {
                    KeyAgreeRecipientIdentifier::IssuerAndSerialNumber(ias) => describe_ias(ias),
                    KeyAgreeRecipientIdentifier::RKeyId(k) => {
                        describe_ski(k.subject_key_identifier.0.as_bytes())
                    }
                })
                .unwrap_or_default(),
        }
    }

    fn matches(&self, cert: &Cert) -> bool {
        match self {
            Self::Ktri(k) => match &k.rid {
                RecipientIdentifier::IssuerAndSerialNumber(ias) => ias_matches(ias, cert),
                RecipientIdentifier::SubjectKeyIdentifier(ski) => {
                    ski_matches(ski.0.as_bytes(), cert)
                }
            },
            Self::Kari { info, index } => match info.recipient_enc_keys.get(*index).map(|r| &r.rid)
            {
                Some(KeyAgreeRecipientIdentifier::IssuerAndSerialNumber(ias)) => {
                    ias_matches(ias, cert)
                }
                Some(KeyAgreeRecipientIdentifier::RKeyId(k)) => {
                    ski_matches(k.subject_key_identifier.0.as_bytes(), cert)
                }
                None => false,
            },
        }
    }
}

fn ias_matches(ias: &IssuerAndSerialNumber, cert: &Cert) -> bool {
    ias.serial_number.as_bytes() == cert.serial() && same_name(&ias.issuer, cert.issuer())
}

fn ski_matches(ski: &[u8], cert: &Cert) -> bool {
    cert.subject_key_id()
        .ok()
        .flatten()
        .is_some_and(|k| k == ski)
}

fn describe_ias(ias: &IssuerAndSerialNumber) -> String {
    format!(
        "issuer \"{}\" serial {}",
        ias.issuer,
        hex::encode(ias.serial_number.as_bytes())
    )
}

fn describe_ski(ski: &[u8]) -> String {
    format!("subjectKeyIdentifier {}", hex::encode(ski))
}

fn describe_rid(rid: &RecipientIdentifier) -> String {
    match rid {
        RecipientIdentifier::IssuerAndSerialNumber(ias) => describe_ias(ias),
        RecipientIdentifier::SubjectKeyIdentifier(ski) => describe_ski(ski.0.as_bytes()),
    }
}

/// Splits the RecipientInfos into key slots and describes the ones we cannot use (password, KEK
/// and other recipients, or undecodable entries). At most [`MAX_RECIPIENT_INFOS`] entries are
/// looked at; a last description says how many were left out.
fn slots(infos: &[Any]) -> (Vec<Slot>, Vec<String>) {
    let mut slots = Vec::new();
    let mut others = Vec::new();
    let mut skipped = 0;
    for any in infos {
        let room = MAX_RECIPIENT_INFOS.saturating_sub(slots.len() + others.len());
        if room == 0 {
            skipped += 1;
            continue;
        }
        let decoded = any
            .to_der()
            .ok()
            .and_then(|d| RecipientInfo::from_der(&d).ok());
        match decoded {
            Some(RecipientInfo::Ktri(k)) => slots.push(Slot::Ktri(k)),
            Some(RecipientInfo::Kari(k)) => {
                let info = std::rc::Rc::new(k);
                let n = info.recipient_enc_keys.len();
                skipped += n.saturating_sub(room);
                for index in 0..n.min(room) {
                    slots.push(Slot::Kari {
                        info: info.clone(),
                        index,
                    });
                }
            }
            Some(RecipientInfo::Kekri(k)) => others.push(format!(
                "KEK recipient {}",
                hex::encode(k.kek_id.kek_identifier.as_bytes())
            )),
            Some(RecipientInfo::Pwri(_)) => others.push("password recipient".into()),
            Some(RecipientInfo::Ori(o)) => others.push(format!("other recipient {}", o.ori_type)),
            None => others.push(format!("undecodable recipient info (tag {})", any.tag())),
        }
    }
    if skipped > 0 {
        others.push(format!(
            "{skipped} more recipients not examined (limit {MAX_RECIPIENT_INFOS})"
        ));
    }
    (slots, others)
}

/// Names every recipient of an encrypted message, for "no key we hold matches" messages and
/// for administrators: `issuer "CN=..." serial 0a1b...` or `subjectKeyIdentifier ab12...`.
pub fn recipient_ids(ber: &[u8]) -> Result<Vec<String>, EnvelopedError> {
    let env = parse(ber)?;
    let (slots, others) = slots(&env.recipient_infos);
    Ok(slots.iter().map(Slot::describe).chain(others).collect())
}

// ---- Decryption -----------------------------------------------------------------------------

/// Decrypts an EnvelopedData or AuthEnvelopedData `ContentInfo` (BER or DER) with whichever of
/// `keys` it was encrypted to. `keys` holds every encryption key we have for the recipient,
/// current and old (renewed) ones alike; each is paired with its certificate, by which
/// RecipientInfos name it (issuerAndSerialNumber or subjectKeyIdentifier).
///
/// Every RecipientInfo naming a held key is tried, in message order, until the content
/// decrypts; an unwrap failure is never reported as such (RFC 3218 section 2.3, see the module
/// documentation).
pub fn decrypt(ber: &[u8], keys: &[(Cert, PrivateKey)]) -> Result<Decrypted, EnvelopedError> {
    let env = parse(ber)?;
    let (slots, others) = slots(&env.recipient_infos);
    let mut unsupported = None;
    let mut tried = false;
    for slot in &slots {
        for (key_index, (cert, key)) in keys.iter().enumerate() {
            if !slot.matches(cert) {
                continue;
            }
            let cek = match recover_cek(slot, key, env.cipher.key_len()) {
                Ok(cek) => cek,
                Err(e) => {
                    unsupported.get_or_insert(e);
                    continue;
                }
            };
            tried = true;
            if let Some(content) = decrypt_content(&env, &cek) {
                return Ok(Decrypted {
                    content,
                    cipher: env.cipher,
                    key_index,
                });
            }
        }
    }
    if tried {
        return Err(EnvelopedError::DecryptionFailed);
    }
    if let Some(e) = unsupported {
        return Err(e);
    }
    Err(EnvelopedError::NoMatchingKey {
        recipients: slots.iter().map(Slot::describe).chain(others).collect(),
    })
}

/// Recovers the content-encryption key from one slot with one key. Returns a key of exactly
/// `cek_len` bytes: the real one, or random bytes when anything failed (RFC 3218 section 2.3).
/// Errors only for algorithms we do not implement, which the message states publicly.
fn recover_cek(
    slot: &Slot,
    key: &PrivateKey,
    cek_len: usize,
) -> Result<Zeroizing<Vec<u8>>, EnvelopedError> {
    // Drawn before the private-key operation so both outcomes do the same work.
    let fallback = random(cek_len)?;
    let recovered: Option<Zeroizing<Vec<u8>>> = match slot {
        Slot::Ktri(k) => {
            let ct = k.enc_key.as_bytes();
            let alg = &k.key_enc_alg;
            if alg.oid == oid::RSA_ENCRYPTION {
                key.rsa_decrypt_pkcs1(ct).ok()
            } else if alg.oid == oid::RSAES_OAEP {
                let hash = oaep_hash(alg)?;
                key.rsa_decrypt_oaep(hash, ct).ok()
            } else {
                return Err(EnvelopedError::UnsupportedAlgorithm(format!(
                    "key transport {}",
                    alg.oid
                )));
            }
        }
        Slot::Kari { info, index } => {
            let (hash, wrap, wrap_id) = kari_algorithms(info)?;
            let OriginatorIdentifierOrKey::OriginatorKey(orig) = &info.originator else {
                return Err(EnvelopedError::UnsupportedAlgorithm(
                    "static-static ECDH (originator named by certificate)".into(),
                ));
            };
            let wrapped = info
                .recipient_enc_keys
                .get(*index)
                .map(|r| r.enc_key.as_bytes())
                .unwrap_or_default();
            key.ecdh(orig.public_key.raw_bytes()).ok().and_then(|z| {
                let kek = shared_info(&wrap_id, info.ukm.as_ref(), wrap.kek_len())
                    .ok()
                    .map(|si| x963_kdf(hash, &z, &si, wrap.kek_len()))?;
                wrap.unwrap(&kek, wrapped)
            })
        }
    };
    Ok(select_cek(recovered, fallback, cek_len))
}

/// Returns `recovered` when it has the expected length, else `fallback`, selecting byte by byte
/// under a mask so the choice does not branch on the secret outcome.
fn select_cek(
    recovered: Option<Zeroizing<Vec<u8>>>,
    mut fallback: Zeroizing<Vec<u8>>,
    cek_len: usize,
) -> Zeroizing<Vec<u8>> {
    let ok = recovered
        .as_ref()
        .map_or(0u8, |r| u8::from(r.len() == cek_len));
    let mask = 0u8.wrapping_sub(ok); // 0xff when ok, 0x00 otherwise
    let mut real = Zeroizing::new(vec![0u8; cek_len]);
    if let Some(r) = &recovered {
        for (d, s) in real.iter_mut().zip(r.iter()) {
            *d = *s;
        }
    }
    for (f, r) in fallback.iter_mut().zip(real.iter()) {
        *f ^= mask & (*f ^ *r);
    }
    real.zeroize();
    fallback
}

fn oaep_hash(alg: &AlgorithmIdentifierOwned) -> Result<HashAlgorithm, EnvelopedError> {
    let unsupported = |why: &str| EnvelopedError::UnsupportedAlgorithm(format!("RSAES-OAEP {why}"));
    // RFC 3560 section 2.2: parameters absent or an empty SEQUENCE both mean the SHA-1 defaults.
    let params = match &alg.parameters {
        None => RsaesOaepParams {
            hash: None,
            mask_gen: None,
            p_source: None,
        },
        Some(p) if p.tag() == Tag::Null => RsaesOaepParams {
            hash: None,
            mask_gen: None,
            p_source: None,
        },
        Some(p) => p
            .decode_as()
            .map_err(|e| malformed(format!("RSAES-OAEP parameters: {e}")))?,
    };
    let hash_oid = params.hash.map_or(oid::SHA1, |h| h.oid);
    let hash = HashAlgorithm::from_oid(&hash_oid)
        .ok_or_else(|| unsupported(&format!("with hash {hash_oid}")))?;
    let mgf_hash = match params.mask_gen {
        None => oid::SHA1,
        Some(m) if m.oid == oid::MGF1 => {
            let h: AlgorithmIdentifierOwned = m
                .parameters
                .ok_or_else(|| malformed("MGF1 without a hash"))?
                .decode_as()
                .map_err(|e| malformed(format!("MGF1 parameters: {e}")))?;
            h.oid
        }
        Some(m) => return Err(unsupported(&format!("with mask generation {}", m.oid))),
    };
    if mgf_hash != hash_oid {
        return Err(unsupported(&format!(
            "with hash {hash_oid} and MGF1 hash {mgf_hash}"
        )));
    }
    if let Some(p) = params.p_source {
        let empty = p.oid == oid::P_SPECIFIED
            && p.parameters
                .as_ref()
                .and_then(|a| a.decode_as::<OctetString>().ok())
                .is_some_and(|l| l.as_bytes().is_empty());
        if !empty {
            return Err(unsupported("with a label"));
        }
    }
    Ok(hash)
}

type KariAlgorithms = (
    &'static aws_lc_rs::digest::Algorithm,
    Wrap,
    AlgorithmIdentifierOwned,
);

fn kari_algorithms(info: &KeyAgreeRecipientInfo) -> Result<KariAlgorithms, EnvelopedError> {
    let scheme = &info.key_enc_alg;
    let hash = kdf_hash(&scheme.oid).ok_or_else(|| {
        EnvelopedError::UnsupportedAlgorithm(format!("key agreement {}", scheme.oid))
    })?;
    let wrap_id: AlgorithmIdentifierOwned = scheme
        .parameters
        .as_ref()
        .ok_or_else(|| malformed("key agreement without a key wrap algorithm"))?
        .decode_as()
        .map_err(|e| malformed(format!("key wrap algorithm: {e}")))?;
    let wrap = Wrap::from_oid(&wrap_id.oid)
        .ok_or_else(|| EnvelopedError::UnsupportedAlgorithm(format!("key wrap {}", wrap_id.oid)))?;
    Ok((hash, wrap, wrap_id))
}

/// Decrypts the content; `None` for any failure (bad padding, tag mismatch).
fn decrypt_content(env: &Envelope, cek: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(env.ciphertext.clone());
    let len = if env.cipher.is_aead() {
        let key =
            aead::LessSafeKey::new(aead::UnboundKey::new(gcm_algorithm(env.cipher), cek).ok()?);
        let nonce = aead::Nonce::try_assume_unique_for_key(&env.iv).ok()?;
        key.open_in_place_separate_tag(
            nonce,
            aead::Aad::from(env.aad.as_slice()),
            env.mac.as_deref()?,
            &mut buf,
        )
        .ok()?
        .len()
    } else {
        let key = cipher::UnboundCipherKey::new(cbc_algorithm(env.cipher), cek).ok()?;
        let iv: [u8; 16] = env.iv.as_slice().try_into().ok()?;
        cipher::PaddedBlockDecryptingKey::cbc_pkcs7(key)
            .ok()?
            .decrypt(&mut buf, cipher::DecryptionContext::Iv128(iv.into()))
            .ok()?
            .len()
    };
    buf.truncate(len);
    Some(buf)
}

#[cfg(test)]
mod tests;
