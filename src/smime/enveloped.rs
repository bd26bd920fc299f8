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
use cms::content_info::CmsVersion;
use cms::enveloped_data::RecipientInfo;
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Any, Decode, Encode, Sequence, Tagged};
use spki::AlgorithmIdentifierOwned;
use zeroize::{Zeroize, Zeroizing};

use super::asn1::{self, Tlv};
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

    /// The ciphers we write, for help texts and error messages (AES-192 is read, never
    /// written).
    pub const WRITTEN_NAMES: &'static str = "aes128-cbc, aes256-cbc, aes128-gcm, aes256-gcm";

    /// Parses the name of a cipher we write: the one parser for the configuration
    /// (`policy.cipher`) and the command line (`--cipher`).
    pub fn parse_written(s: &str) -> Result<Self, String> {
        match s.parse::<Self>() {
            Ok(c) if c.key_len() != 24 => Ok(c),
            _ => Err(format!(
                "'{s}' is not a content cipher smimegw writes (expected one of {})",
                Self::WRITTEN_NAMES
            )),
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
///
/// The DER is written front to back into one buffer of the final size: every length is known
/// before the content is encrypted (CBC pads to the next block, GCM keeps the length), so the
/// content is copied once, into place, and encrypted there; the GCM tag, the last field, is
/// appended afterwards.
pub fn encrypt(
    content: &[u8],
    recipients: &[Recipient<'_>],
    cipher: ContentCipher,
) -> Result<Vec<u8>, EnvelopedError> {
    encrypt_parts(&[content], recipients, cipher)
}

/// [`encrypt`] of the concatenation of `parts` (an entity's headers and its body, say), without
/// joining them first.
pub fn encrypt_parts(
    parts: &[&[u8]],
    recipients: &[Recipient<'_>],
    cipher: ContentCipher,
) -> Result<Vec<u8>, EnvelopedError> {
    let content_len: usize = parts.iter().map(|p| p.len()).sum();
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
    // RFC 5083 section 2.1: AuthEnvelopedData is always version 0.
    let all_v0 = infos
        .iter()
        .all(|ri| matches!(ri, RecipientInfo::Ktri(k) if k.version == CmsVersion::V0));
    let aead = cipher.is_aead();
    let version: u8 = if aead || all_v0 { 0 } else { 2 };
    // X.690 section 11.6: a DER SET OF is ordered by the elements' encodings compared as
    // octet strings. der's SetOfVec orders RecipientInfos field by field instead, which differs
    // when their lengths differ (serial numbers of different lengths, say): the message was
    // then not DER, and every reader that normalises it (ours included, ber::to_der_view)
    // had to copy the whole ciphertext.
    let recip_infos = asn1::set_of(
        0x31,
        infos
            .iter()
            .map(|ri| ri.to_der())
            .collect::<Result<Vec<_>, _>>()
            .map_err(encoding)?,
    );

    let iv = random(if aead { aead::NONCE_LEN } else { 16 })?;
    let params = if aead {
        encode_any(&GcmParameters {
            nonce: octets(iv.as_slice())?,
            icv_len: 16,
        })?
    } else {
        encode_any(&octets(iv.as_slice())?)?
    };
    let alg = alg_id(cipher.oid(), Some(params))
        .to_der()
        .map_err(encoding)?;
    let data_oid = oid::CMS_DATA.to_der().map_err(encoding)?;
    let type_oid = if aead {
        oid::CMS_AUTH_ENVELOPED_DATA
    } else {
        oid::CMS_ENVELOPED_DATA
    }
    .to_der()
    .map_err(encoding)?;

    // RFC 5652 sections 3 and 6.1, RFC 5083 section 2.1:
    // ContentInfo SEQ { contentType, [0] EXPLICIT (Auth)EnvelopedData SEQ { version,
    //   recipientInfos, EncryptedContentInfo SEQ { contentType, algorithm,
    //   [0] IMPLICIT ciphertext }, [mac OCTET STRING] } }
    let ct_len = if aead {
        content_len
    } else {
        (content_len / 16 + 1) * 16
    };
    let eci_len = data_oid.len() + alg.len() + asn1::encoded_len(ct_len);
    let mac_len = if aead { asn1::encoded_len(16) } else { 0 };
    let body_len = 3 + recip_infos.len() + asn1::encoded_len(eci_len) + mac_len;
    let explicit_len = asn1::encoded_len(body_len);
    let ci_len = type_oid.len() + asn1::encoded_len(explicit_len);
    let total = asn1::encoded_len(ci_len);

    let mut out = Vec::with_capacity(total);
    asn1::push_header(&mut out, 0x30, ci_len);
    out.extend_from_slice(&type_oid);
    asn1::push_header(&mut out, 0xa0, explicit_len);
    asn1::push_header(&mut out, 0x30, body_len);
    out.extend_from_slice(&[0x02, 0x01, version]);
    out.extend_from_slice(&recip_infos);
    asn1::push_header(&mut out, 0x30, eci_len);
    out.extend_from_slice(&data_oid);
    out.extend_from_slice(&alg);
    asn1::push_header(&mut out, 0x80, ct_len);
    let start = out.len();
    for p in parts {
        out.extend_from_slice(p);
    }
    let sealed = if aead {
        seal_gcm(cipher, &cek, &iv, &[], &mut out[start..]).map(Some)
    } else {
        // PKCS #7 padding (RFC 5652 section 6.3): 1 to 16 octets, each holding the count.
        let pad = ct_len - content_len;
        out.resize(start + ct_len, pad as u8);
        encrypt_cbc(cipher, &cek, &iv, &mut out[start..]).map(|()| None)
    };
    let tag = match sealed {
        Ok(tag) => tag,
        Err(e) => {
            // The buffer holds plaintext until the cipher has run.
            out.zeroize();
            return Err(e);
        }
    };
    if let Some(tag) = tag {
        asn1::push_header(&mut out, 0x04, 16);
        out.extend_from_slice(tag.as_ref());
    }
    if out.len() != total {
        return Err(EnvelopedError::Encoding(format!(
            "wrote {} bytes, computed {total}",
            out.len()
        )));
    }
    Ok(out)
}

/// AES-CBC without padding over a whole number of blocks, in place.
fn encrypt_cbc(
    c: ContentCipher,
    cek: &[u8],
    iv: &[u8],
    body: &mut [u8],
) -> Result<(), EnvelopedError> {
    let err = |_| EnvelopedError::Crypto("AES-CBC encryption");
    let key = cipher::UnboundCipherKey::new(cbc_algorithm(c), cek).map_err(err)?;
    let iv: [u8; 16] = iv
        .try_into()
        .map_err(|_| EnvelopedError::Crypto("IV length"))?;
    cipher::EncryptingKey::cbc(key)
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

/// A constructed value's elements in order, for positional reading with optional tagged fields.
/// Borrowed from the input: a 10 MiB ciphertext is sliced, not copied.
struct Fields<'a> {
    items: Vec<Tlv<'a>>,
    pos: usize,
}

impl<'a> Fields<'a> {
    fn of_sequence(t: &Tlv<'a>, what: &str) -> Result<Self, EnvelopedError> {
        if t.tag != 0x30 {
            return Err(malformed(format!("{what} is not a SEQUENCE")));
        }
        Ok(Self {
            items: asn1::children(t.content).map_err(|e| malformed(format!("{what}: {e}")))?,
            pos: 0,
        })
    }

    fn optional(&mut self, tag: u8) -> Option<Tlv<'a>> {
        let hit = self.items.get(self.pos).filter(|t| t.tag == tag).copied();
        if hit.is_some() {
            self.pos += 1;
        }
        hit
    }

    fn required(&mut self, tag: u8, what: &str) -> Result<Tlv<'a>, EnvelopedError> {
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

fn decode_as<'a, T: Decode<'a, Error = der::Error>>(
    bytes: &'a [u8],
    what: &str,
) -> Result<T, EnvelopedError> {
    T::from_der(bytes).map_err(|e| malformed(format!("{what}: {e}")))
}

/// Where the ciphertext is: a slice of the (normalised) input, or the joined segments of an
/// implicitly tagged constructed string.
enum Ciphertext {
    Range(std::ops::Range<usize>),
    Joined(Vec<u8>),
}

/// An EnvelopedData or AuthEnvelopedData, read as far as decryption needs.
struct Envelope<'a> {
    /// The input as DER (borrowed when it already was).
    der: ber::Der<'a>,
    /// Each RecipientInfo as its DER, decoded lazily (one odd entry must not hide ours).
    recipient_infos: Vec<Any>,
    cipher: ContentCipher,
    /// The IV (CBC) or nonce (GCM).
    iv: Vec<u8>,
    ciphertext: Ciphertext,
    /// The GCM tag (AuthEnvelopedData only).
    mac: Option<Vec<u8>>,
    /// Additional authenticated data: the DER of authAttrs with a SET OF tag (RFC 5083 2.2).
    aad: Vec<u8>,
}

impl Envelope<'_> {
    fn ciphertext(&self) -> &[u8] {
        match &self.ciphertext {
            Ciphertext::Range(r) => &self.der[r.clone()],
            Ciphertext::Joined(v) => v,
        }
    }
}

/// The offset of `part` inside `whole` (`part` is a subslice of it).
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
}

fn parse(input: &[u8]) -> Result<Envelope<'_>, EnvelopedError> {
    let der = ber::to_der_view(input).map_err(|e| malformed(e.to_string()))?;
    let (ci, rest) = asn1::read(&der).map_err(|e| malformed(format!("ContentInfo: {e}")))?;
    if !rest.is_empty() {
        return Err(malformed("ContentInfo: trailing data"));
    }
    let mut c = Fields::of_sequence(&ci, "ContentInfo")?;
    let content_type: ObjectIdentifier = decode_as(
        c.required(0x06, "ContentInfo contentType")?.raw,
        "contentType",
    )?;
    let wrapper = c.required(0xa0, "ContentInfo content")?;
    c.finish("ContentInfo")?;
    let auth = if content_type == oid::CMS_ENVELOPED_DATA {
        false
    } else if content_type == oid::CMS_AUTH_ENVELOPED_DATA {
        true
    } else {
        return Err(EnvelopedError::NotEnveloped(content_type));
    };
    let what = if auth {
        "AuthEnvelopedData"
    } else {
        "EnvelopedData"
    };
    let (body, rest) =
        asn1::read(wrapper.content).map_err(|e| malformed(format!("{what}: {e}")))?;
    if !rest.is_empty() {
        return Err(malformed(format!("{what}: trailing data in the content")));
    }
    let mut f = Fields::of_sequence(&body, what)?;
    let version: u8 = decode_as(f.required(0x02, "version")?.raw, &format!("{what} version"))?;
    // RFC 5652 section 6.1 allows 0, 2, 3, 4; RFC 5083 section 2.1 only 0.
    if (auth && version != 0) || (!auth && ![0, 2, 3, 4].contains(&version)) {
        return Err(malformed(format!("{what} version {version}")));
    }
    // originatorInfo carries certificates we do not need to decrypt.
    f.optional(0xa0);
    let set = f.required(0x31, "recipientInfos")?;
    let recipient_infos = asn1::children(set.content)
        .map_err(|e| malformed(format!("recipientInfos: {e}")))?
        .iter()
        .map(|t| decode_as::<Any>(t.raw, "recipientInfos"))
        .collect::<Result<Vec<_>, _>>()?;
    if recipient_infos.is_empty() {
        return Err(malformed("no recipientInfos"));
    }
    let eci = f.required(0x30, "encryptedContentInfo")?;
    let mut aad = Vec::new();
    let mut mac = None;
    if auth {
        if let Some(attrs) = f.optional(0xa1) {
            aad = asn1::retag(attrs.raw, 0x31);
        }
        let m: OctetString = decode_as(f.required(0x04, "mac")?.raw, "mac")?;
        mac = Some(m.into_bytes().into_vec());
        f.optional(0xa2);
    } else {
        f.optional(0xa1);
    }
    f.finish(what)?;

    let mut e = Fields::of_sequence(&eci, "encryptedContentInfo")?;
    e.required(0x06, "contentType")?;
    let alg_tlv = e.required(0x30, "contentEncryptionAlgorithm")?;
    let alg: AlgorithmIdentifierOwned = decode_as(alg_tlv.raw, "contentEncryptionAlgorithm")?;
    let ciphertext = if let Some(p) = e.optional(0x80) {
        let at = offset_in(&der, p.content);
        Ciphertext::Range(at..at + p.content.len())
    } else if let Some(c) = e.optional(0xa0) {
        // OpenSSL's -stream writes the implicitly tagged string segmented; ber::to_der leaves
        // it constructed because it cannot see the schema.
        Ciphertext::Joined(
            ber::join_segments(c.content)
                .map_err(|e| malformed(e.to_string()))?
                .to_vec(),
        )
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
        der,
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
pub fn decrypt<K: std::borrow::Borrow<PrivateKey>>(
    ber: &[u8],
    keys: &[(Cert, K)],
) -> Result<Decrypted, EnvelopedError> {
    let env = parse(ber)?;
    let (slots, others) = slots(&env.recipient_infos);
    let mut unsupported = None;
    let mut tried = vec![false; keys.len()];
    for slot in &slots {
        for (key_index, (cert, key)) in keys.iter().enumerate() {
            if tried[key_index] || !slot.matches(cert) {
                continue;
            }
            let cek = match recover_cek(slot, key.borrow(), env.cipher.key_len()) {
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
fn decrypt_content(env: &Envelope<'_>, cek: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(env.ciphertext().to_vec());
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
