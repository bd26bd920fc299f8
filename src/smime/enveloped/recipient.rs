//! RecipientInfos: how the content-encryption key reaches each recipient, and how we get it
//! back. Key transport with RSA (RFC 5652 section 6.2.1; PKCS #1 v1.5 per RFC 3370 section 4.2,
//! RSAES-OAEP per RFC 3560 and RFC 4055) and ephemeral-static ECDH key agreement
//! (RFC 5652 section 6.2.2, RFC 5753) with the X9.63 KDF and AES key wrap (RFC 3565, RFC 3394).

use aws_lc_rs::key_wrap;
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::CmsVersion;
use cms::enveloped_data::{
    KeyAgreeRecipientIdentifier, KeyAgreeRecipientInfo, KeyTransRecipientInfo,
    OriginatorIdentifierOrKey, OriginatorPublicKey, RecipientEncryptedKey, RecipientIdentifier,
    RecipientInfo, RecipientKeyIdentifier,
};
use der::asn1::{BitString, ObjectIdentifier, OctetString};
use der::{Any, Decode, Encode, Sequence, Tag, Tagged};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use zeroize::{Zeroize, Zeroizing};

use super::{
    EnvelopedError, MAX_RECIPIENT_INFOS, Recipient, RecipientIdKind, alg_id, encode_any, encoding,
    malformed, octets, random,
};
use crate::oid;
use crate::pki::cert::{Cert, same_name};
use crate::pki::keys::{self, HashAlgorithm, KeyAlgorithm, PrivateKey};

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

/// The RecipientInfo that carries `cek` to `r`: a KeyTransRecipientInfo for an RSA key, a
/// KeyAgreeRecipientInfo with a fresh ephemeral key for an EC key. Refuses certificates whose
/// keyUsage forbids the operation (RFC 8550 section 4.4.2, RFC 5280 section 4.2.1.3).
pub(super) fn recipient_info(
    r: &Recipient<'_>,
    cek: &[u8],
) -> Result<RecipientInfo, EnvelopedError> {
    let cert = r.cert;
    let spki = cert.spki();
    let usage = cert
        .key_usage()
        .map_err(|e| unsuitable(cert, e.to_string()))?;
    if spki.algorithm.oid == oid::RSA_ENCRYPTION {
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

/// One place a content-encryption key may be recovered from.
pub(super) enum Slot {
    Ktri(KeyTransRecipientInfo),
    Kari {
        info: std::rc::Rc<KeyAgreeRecipientInfo>,
        index: usize,
    },
}

impl Slot {
    pub(super) fn describe(&self) -> String {
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

    pub(super) fn matches(&self, cert: &Cert) -> bool {
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
pub(super) fn slots(infos: &[Any]) -> (Vec<Slot>, Vec<String>) {
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

/// Recovers the content-encryption key from one slot with one key. Returns a key of exactly
/// `cek_len` bytes: the real one, or random bytes when anything failed (RFC 3218 section 2.3).
/// Errors only for algorithms we do not implement, which the message states publicly.
pub(super) fn recover_cek(
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
            // RFC 5753 section 3.1.1; X25519/X448 originators (RFC 8418) would name their own.
            if orig.algorithm.oid != oid::EC_PUBLIC_KEY {
                return Err(EnvelopedError::UnsupportedAlgorithm(format!(
                    "originator key {}",
                    orig.algorithm.oid
                )));
            }
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
