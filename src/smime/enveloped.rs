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

use aws_lc_rs::{aead, cipher};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::{EncryptedContentInfo, EnvelopedData, RecipientInfo, RecipientInfos};
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Any, Decode, Encode, Reader, Sequence, SliceReader, Tag, TagNumber, Tagged};
use spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

use crate::ber;
use crate::oid;
use crate::pki::cert::Cert;
use crate::pki::keys::PrivateKey;

use recipient::{Slot, recipient_info, recover_cek, slots};

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

    // Plaintext until the cipher runs; zeroized if anything fails before then.
    let mut body = Zeroizing::new(content.to_vec());
    let (content_type, inner) = if cipher.is_aead() {
        let nonce = random(aead::NONCE_LEN)?;
        let tag = seal_gcm(cipher, &cek, &nonce, &[], &mut body)?;
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
                encrypted_content: Some(octets(std::mem::take(&mut *body))?),
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
                encrypted_content: Some(octets(std::mem::take(&mut *body))?),
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
    aad: &[u8],
    body: &mut [u8],
) -> Result<aead::Tag, EnvelopedError> {
    let err = |_| EnvelopedError::Crypto("AES-GCM encryption");
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(gcm_algorithm(c), cek).map_err(err)?);
    let nonce = aead::Nonce::try_assume_unique_for_key(nonce).map_err(err)?;
    key.seal_in_place_separate_tag(nonce, aead::Aad::from(aad), body)
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
/// RecipientInfos naming a held key are tried in message order until the content decrypts,
/// each held key once (a message cannot make us decrypt its content 64 times with one key);
/// an unwrap failure is never reported as such (RFC 3218 section 2.3, see the module
/// documentation).
pub fn decrypt(ber: &[u8], keys: &[(Cert, PrivateKey)]) -> Result<Decrypted, EnvelopedError> {
    let env = parse(ber)?;
    let (slots, others) = slots(&env.recipient_infos);
    let mut unsupported = None;
    let mut tried = vec![false; keys.len()];
    for slot in &slots {
        for (key_index, (cert, key)) in keys.iter().enumerate() {
            if tried[key_index] || !slot.matches(cert) {
                continue;
            }
            let cek = match recover_cek(slot, key, env.cipher.key_len()) {
                Ok(cek) => cek,
                Err(e) => {
                    unsupported.get_or_insert(e);
                    continue;
                }
            };
            tried[key_index] = true;
            if let Some(content) = decrypt_content(&env, &cek) {
                return Ok(Decrypted {
                    content,
                    cipher: env.cipher,
                    key_index,
                });
            }
        }
    }
    if tried.contains(&true) {
        return Err(EnvelopedError::DecryptionFailed);
    }
    if let Some(e) = unsupported {
        return Err(e);
    }
    Err(EnvelopedError::NoMatchingKey {
        recipients: slots.iter().map(Slot::describe).chain(others).collect(),
    })
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

mod recipient;
#[cfg(test)]
mod tests;
