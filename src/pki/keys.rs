//! Private keys and signatures.
//!
//! Every private-key operation goes through aws-lc-rs: it is constant-time (the pure-Rust `rsa`
//! crate is not, RUSTSEC-2023-0071) and several times faster on this hardware. Keys travel between
//! layers only as PKCS #8 DER in a [`Zeroizing`] buffer; the store encrypts that buffer before it
//! touches the disk.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, KeyPair as _};
use der::asn1::{AnyRef, ObjectIdentifier};
use der::{Decode, Encode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use zeroize::Zeroizing;

use crate::oid;

/// The key types an administrator can ask for (`--key`).
///
/// RSA-1024 and curves other than P-256/P-384 are deliberately absent: the CA/Browser Forum S/MIME
/// baseline (section 6.1.5) forbids them for new certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyAlgorithm {
    /// RSA with a 2048-bit modulus.
    Rsa2048,
    /// RSA with a 3072-bit modulus.
    Rsa3072,
    /// RSA with a 4096-bit modulus.
    Rsa4096,
    /// ECDSA / ECDH on NIST P-256.
    P256,
    /// ECDSA / ECDH on NIST P-384.
    P384,
}

impl KeyAlgorithm {
    /// Every accepted value, for help texts and error messages.
    pub const NAMES: &'static str = "rsa2048, rsa3072, rsa4096, p256, p384";

    /// Whether this is an RSA key (key transport) rather than an EC key (key agreement).
    pub fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096)
    }

    /// The signature algorithm we use with this key unless told otherwise.
    pub fn default_signature(self) -> SignatureAlgorithm {
        match self {
            Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096 => {
                SignatureAlgorithm::RsaPkcs1(HashAlgorithm::Sha256)
            }
            Self::P256 => SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha256),
            Self::P384 => SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha384),
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rsa2048 => "rsa2048",
            Self::Rsa3072 => "rsa3072",
            Self::Rsa4096 => "rsa4096",
            Self::P256 => "p256",
            Self::P384 => "p384",
        })
    }
}

impl FromStr for KeyAlgorithm {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "rsa2048" => Self::Rsa2048,
            "rsa3072" => Self::Rsa3072,
            "rsa4096" => Self::Rsa4096,
            "p256" | "ecdsa-p256" => Self::P256,
            "p384" | "ecdsa-p384" => Self::P384,
            other => return Err(KeyError::UnknownKeyName(other.to_string())),
        })
    }
}

/// Digest algorithms accepted for signatures. SHA-1 is only ever verified, never produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-1: verification of legacy data only (RFC 8551 section 2.1 says SHOULD NOT sign with it).
    Sha1,
    /// SHA-256 (the default).
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    /// The digest's object identifier (RFC 5754).
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha1 => oid::SHA1,
            Self::Sha256 => oid::SHA256,
            Self::Sha384 => oid::SHA384,
            Self::Sha512 => oid::SHA512,
        }
    }

    /// Looks a digest up by its object identifier.
    pub fn from_oid(o: &ObjectIdentifier) -> Option<Self> {
        [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512]
            .into_iter()
            .find(|h| h.oid() == *o)
    }

    /// The aws-lc-rs digest algorithm.
    pub fn aws(self) -> &'static aws_lc_rs::digest::Algorithm {
        match self {
            Self::Sha1 => &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &aws_lc_rs::digest::SHA256,
            Self::Sha384 => &aws_lc_rs::digest::SHA384,
            Self::Sha512 => &aws_lc_rs::digest::SHA512,
        }
    }

    /// Hashes `data` in one go.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        aws_lc_rs::digest::digest(self.aws(), data)
            .as_ref()
            .to_vec()
    }

    /// Output length in bytes.
    #[allow(clippy::len_without_is_empty)] // a digest length, never zero: is_empty would mean nothing
    pub fn len(self) -> usize {
        self.aws().output_len()
    }
}

/// A signature algorithm, as named in an `AlgorithmIdentifier`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// RSASSA-PKCS1-v1_5 (RFC 8017 section 8.2).
    RsaPkcs1(HashAlgorithm),
    /// RSASSA-PSS with MGF1 over the same hash and a salt as long as the hash (RFC 4055 section 3.1).
    RsaPss(HashAlgorithm),
    /// ECDSA with a DER-encoded (r, s) signature (RFC 5758 section 3.2).
    Ecdsa(HashAlgorithm),
}

impl SignatureAlgorithm {
    /// The hash this algorithm signs.
    pub fn hash(self) -> HashAlgorithm {
        match self {
            Self::RsaPkcs1(h) | Self::RsaPss(h) | Self::Ecdsa(h) => h,
        }
    }

    /// Encodes the algorithm the way RFC 4055 and RFC 5758 prescribe: NULL parameters for
    /// PKCS #1 v1.5, absent parameters for ECDSA, explicit RSASSA-PSS-params for PSS.
    pub fn to_algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        match self {
            Self::RsaPkcs1(h) => AlgorithmIdentifierOwned {
                oid: match h {
                    HashAlgorithm::Sha1 => oid::SHA1_WITH_RSA,
                    HashAlgorithm::Sha256 => oid::SHA256_WITH_RSA,
                    HashAlgorithm::Sha384 => oid::SHA384_WITH_RSA,
                    HashAlgorithm::Sha512 => oid::SHA512_WITH_RSA,
                },
                parameters: Some(der::Any::null()),
            },
            Self::Ecdsa(h) => AlgorithmIdentifierOwned {
                oid: match h {
                    // There is no ecdsa-with-SHA1 we would ever produce; map to SHA-256's id
                    // would be wrong, so SHA-1 gets its own legacy identifier.
                    HashAlgorithm::Sha1 => oid::ECDSA_WITH_SHA1,
                    HashAlgorithm::Sha256 => oid::ECDSA_WITH_SHA256,
                    HashAlgorithm::Sha384 => oid::ECDSA_WITH_SHA384,
                    HashAlgorithm::Sha512 => oid::ECDSA_WITH_SHA512,
                },
                parameters: None,
            },
            Self::RsaPss(h) => AlgorithmIdentifierOwned {
                oid: oid::RSASSA_PSS,
                parameters: Some(pss::encode(h)),
            },
        }
    }

    /// Recognises an `AlgorithmIdentifier`; anything we cannot verify safely is an error that
    /// names the OID.
    pub fn from_algorithm_identifier(alg: &AlgorithmIdentifierOwned) -> Result<Self, KeyError> {
        use HashAlgorithm::*;
        let o = alg.oid;
        Ok(if o == oid::SHA256_WITH_RSA {
            Self::RsaPkcs1(Sha256)
        } else if o == oid::SHA384_WITH_RSA {
            Self::RsaPkcs1(Sha384)
        } else if o == oid::SHA512_WITH_RSA {
            Self::RsaPkcs1(Sha512)
        } else if o == oid::SHA1_WITH_RSA {
            Self::RsaPkcs1(Sha1)
        } else if o == oid::ECDSA_WITH_SHA1 {
            Self::Ecdsa(Sha1)
        } else if o == oid::ECDSA_WITH_SHA256 {
            Self::Ecdsa(Sha256)
        } else if o == oid::ECDSA_WITH_SHA384 {
            Self::Ecdsa(Sha384)
        } else if o == oid::ECDSA_WITH_SHA512 {
            Self::Ecdsa(Sha512)
        } else if o == oid::RSASSA_PSS {
            let params = alg
                .parameters
                .as_ref()
                .ok_or(KeyError::UnsupportedAlgorithm(o))?;
            Self::RsaPss(
                pss::parse(params)
                    .ok()
                    .filter(|p| p.salt_len == p.hash.len())
                    .map(|p| p.hash)
                    .ok_or(KeyError::UnsupportedPssParameters)?,
            )
        } else {
            return Err(KeyError::UnsupportedAlgorithm(o));
        })
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, h) = match self {
            Self::RsaPkcs1(h) => ("RSA PKCS#1 v1.5", h),
            Self::RsaPss(h) => ("RSA-PSS", h),
            Self::Ecdsa(h) => ("ECDSA", h),
        };
        write!(f, "{name} with {h:?}")
    }
}

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// `--key` named something we do not generate.
    #[error("unknown key type '{0}': expected one of {names}", names = KeyAlgorithm::NAMES)]
    UnknownKeyName(String),
    /// The bytes are not a PKCS #8 private key we can use.
    #[error("not a usable PKCS #8 private key: {0}")]
    BadPrivateKey(String),
    /// An RSA modulus size or EC curve we do not support.
    #[error("unsupported key: {0} (supported: {names})", names = KeyAlgorithm::NAMES)]
    UnsupportedKey(String),
    /// An algorithm identifier we refuse to use.
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(ObjectIdentifier),
    /// RSASSA-PSS parameters other than MGF1 with the same hash and salt = hash length.
    #[error(
        "unsupported RSASSA-PSS parameters (only MGF1 with the message hash and salt length = hash length)"
    )]
    UnsupportedPssParameters,
    /// The signature algorithm does not fit the key (ECDSA with an RSA key, say).
    #[error("signature algorithm {alg} does not fit a {key} key")]
    AlgorithmMismatch {
        /// What was asked for.
        alg: SignatureAlgorithm,
        /// The key we have.
        key: KeyAlgorithm,
    },
    /// The cryptographic library refused (key generation or signing failed).
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
}

enum Inner {
    Rsa(aws_lc_rs::rsa::KeyPair),
    Ec(EcdsaKeyPair),
}

/// A private key held in memory. The PKCS #8 encoding is kept in a zeroizing buffer and never
/// printed: `Debug` shows only the algorithm.
pub struct PrivateKey {
    algorithm: KeyAlgorithm,
    inner: Inner,
    pkcs8: Zeroizing<Vec<u8>>,
    /// The public half, parsed once when the key is loaded.
    spki: SubjectPublicKeyInfoOwned,
    /// The RSA decryption key, parsed (and checked by aws-lc) once on first use rather than
    /// per message: parsing costs about as much as the private-key operation itself.
    decrypting: std::sync::OnceLock<aws_lc_rs::rsa::PrivateDecryptingKey>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({}, <redacted>)", self.algorithm)
    }
}

fn public_der(inner: &Inner) -> Option<Vec<u8>> {
    match inner {
        Inner::Rsa(kp) => kp.public_key().as_der().ok().map(|d| d.as_ref().to_vec()),
        Inner::Ec(kp) => kp.public_key().as_der().ok().map(|d| d.as_ref().to_vec()),
    }
}

/// The public half of a key being loaded, so that a key whose public part cannot be encoded
/// is refused when it is loaded, not when it is first used.
fn parsed_spki(inner: &Inner) -> Result<SubjectPublicKeyInfoOwned, KeyError> {
    let der = public_der(inner).ok_or(KeyError::Crypto("public key encoding"))?;
    SubjectPublicKeyInfoOwned::from_der(&der)
        .map_err(|e| KeyError::BadPrivateKey(format!("its public key does not parse: {e}")))
}

fn ec_signing_alg(a: KeyAlgorithm) -> &'static sig::EcdsaSigningAlgorithm {
    match a {
        KeyAlgorithm::P384 => &sig::ECDSA_P384_SHA384_ASN1_SIGNING,
        _ => &sig::ECDSA_P256_SHA256_ASN1_SIGNING,
    }
}

impl PrivateKey {
    /// Generates a fresh key pair.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, KeyError> {
        let pkcs8: Zeroizing<Vec<u8>> = match algorithm {
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                let size = match algorithm {
                    KeyAlgorithm::Rsa2048 => aws_lc_rs::rsa::KeySize::Rsa2048,
                    KeyAlgorithm::Rsa3072 => aws_lc_rs::rsa::KeySize::Rsa3072,
                    _ => aws_lc_rs::rsa::KeySize::Rsa4096,
                };
                let kp = aws_lc_rs::rsa::KeyPair::generate(size)
                    .map_err(|_| KeyError::Crypto("RSA key generation"))?;
                let der = kp
                    .as_der()
                    .map_err(|_| KeyError::Crypto("RSA key encoding"))?;
                Zeroizing::new(der.as_ref().to_vec())
            }
            KeyAlgorithm::P256 | KeyAlgorithm::P384 => {
                let doc =
                    EcdsaKeyPair::generate_pkcs8(ec_signing_alg(algorithm), &SystemRandom::new())
                        .map_err(|_| KeyError::Crypto("EC key generation"))?;
                Zeroizing::new(doc.as_ref().to_vec())
            }
        };
        Self::from_pkcs8_der(&pkcs8)
    }

    /// Loads a PKCS #8 `PrivateKeyInfo` (RFC 5208), recognising RSA and EC P-256/P-384 keys.
    pub fn from_pkcs8_der(der_bytes: &[u8]) -> Result<Self, KeyError> {
        let info = pkcs8::PrivateKeyInfoRef::from_der(der_bytes)
            .map_err(|e| KeyError::BadPrivateKey(e.to_string()))?;
        let alg_oid = info.algorithm.oid;
        if alg_oid == oid::RSA_ENCRYPTION {
            let kp = aws_lc_rs::rsa::KeyPair::from_pkcs8(der_bytes)
                .map_err(|e| KeyError::BadPrivateKey(e.to_string()))?;
            let algorithm = match kp.public_modulus_len() * 8 {
                2048 => KeyAlgorithm::Rsa2048,
                3072 => KeyAlgorithm::Rsa3072,
                4096 => KeyAlgorithm::Rsa4096,
                bits => return Err(KeyError::UnsupportedKey(format!("RSA-{bits}"))),
            };
            let inner = Inner::Rsa(kp);
            Ok(Self {
                algorithm,
                spki: parsed_spki(&inner)?,
                inner,
                pkcs8: Zeroizing::new(der_bytes.to_vec()),
                decrypting: std::sync::OnceLock::new(),
            })
        } else if alg_oid == oid::EC_PUBLIC_KEY {
            let curve: ObjectIdentifier = info
                .algorithm
                .parameters
                .and_then(|p: AnyRef<'_>| p.decode_as().ok())
                .ok_or_else(|| KeyError::BadPrivateKey("EC key without a named curve".into()))?;
            let algorithm = if curve == oid::SECP256R1 {
                KeyAlgorithm::P256
            } else if curve == oid::SECP384R1 {
                KeyAlgorithm::P384
            } else {
                return Err(KeyError::UnsupportedKey(format!("EC curve {curve}")));
            };
            let kp = EcdsaKeyPair::from_pkcs8(ec_signing_alg(algorithm), der_bytes)
                .map_err(|e| KeyError::BadPrivateKey(e.to_string()))?;
            // Re-encode as PKCS #8 v1 so every stored key has one canonical form.
            let canon = kp
                .to_pkcs8v1()
                .map_err(|_| KeyError::Crypto("EC key encoding"))?;
            let inner = Inner::Ec(kp);
            Ok(Self {
                algorithm,
                spki: parsed_spki(&inner)?,
                inner,
                pkcs8: Zeroizing::new(canon.as_ref().to_vec()),
                decrypting: std::sync::OnceLock::new(),
            })
        } else {
            Err(KeyError::UnsupportedKey(format!("key algorithm {alg_oid}")))
        }
    }

    /// The key's algorithm and size.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The PKCS #8 encoding, for sealing into the store or exporting as PKCS #12.
    pub fn pkcs8_der(&self) -> &Zeroizing<Vec<u8>> {
        &self.pkcs8
    }

    /// The public half as a DER `SubjectPublicKeyInfo`.
    pub fn public_key_der(&self) -> Vec<u8> {
        public_der(&self.inner).unwrap_or_default()
    }

    /// The public half as a parsed `SubjectPublicKeyInfo`.
    pub fn spki(&self) -> SubjectPublicKeyInfoOwned {
        self.spki.clone()
    }

    /// The signature algorithm this key uses unless told otherwise.
    pub fn default_signature(&self) -> SignatureAlgorithm {
        self.algorithm.default_signature()
    }

    /// Signs `message` (hashing it with the algorithm's digest).
    pub fn sign(&self, alg: SignatureAlgorithm, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mismatch = || KeyError::AlgorithmMismatch {
            alg,
            key: self.algorithm,
        };
        let rng = SystemRandom::new();
        match (&self.inner, alg) {
            (Inner::Rsa(kp), SignatureAlgorithm::RsaPkcs1(h) | SignatureAlgorithm::RsaPss(h)) => {
                let pad: &'static dyn sig::RsaEncoding = match (alg, h) {
                    (SignatureAlgorithm::RsaPkcs1(_), HashAlgorithm::Sha256) => {
                        &sig::RSA_PKCS1_SHA256
                    }
                    (SignatureAlgorithm::RsaPkcs1(_), HashAlgorithm::Sha384) => {
                        &sig::RSA_PKCS1_SHA384
                    }
                    (SignatureAlgorithm::RsaPkcs1(_), HashAlgorithm::Sha512) => {
                        &sig::RSA_PKCS1_SHA512
                    }
                    (SignatureAlgorithm::RsaPss(_), HashAlgorithm::Sha256) => &sig::RSA_PSS_SHA256,
                    (SignatureAlgorithm::RsaPss(_), HashAlgorithm::Sha384) => &sig::RSA_PSS_SHA384,
                    (SignatureAlgorithm::RsaPss(_), HashAlgorithm::Sha512) => &sig::RSA_PSS_SHA512,
                    _ => return Err(mismatch()),
                };
                let mut out = vec![0u8; kp.public_modulus_len()];
                kp.sign(pad, &rng, message, &mut out)
                    .map_err(|_| KeyError::Crypto("RSA signing"))?;
                Ok(out)
            }
            (Inner::Ec(kp), SignatureAlgorithm::Ecdsa(h)) => {
                let native = match self.algorithm {
                    KeyAlgorithm::P384 => HashAlgorithm::Sha384,
                    _ => HashAlgorithm::Sha256,
                };
                if h != native {
                    return Err(mismatch());
                }
                let s = kp
                    .sign(&rng, message)
                    .map_err(|_| KeyError::Crypto("ECDSA signing"))?;
                Ok(s.as_ref().to_vec())
            }
            _ => Err(mismatch()),
        }
    }
}

impl PrivateKey {
    /// RSAES-PKCS1-v1_5 decryption (RFC 8017 section 7.2.2) of a key-transport ciphertext.
    ///
    /// aws-lc-rs does the private-key operation in constant time; the caller must still hide
    /// *whether* the padding was valid: RFC 3218 section 2.3 (see `smime::enveloped`).
    pub fn rsa_decrypt_pkcs1(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        use aws_lc_rs::rsa::Pkcs1PrivateDecryptingKey;
        let key = self.decrypting_key().and_then(|k| {
            Pkcs1PrivateDecryptingKey::new(k).map_err(|_| KeyError::Crypto("RSA decryption key"))
        })?;
        let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
        let len = key
            .decrypt(ciphertext, &mut out)
            .map_err(|_| KeyError::Crypto("RSA decryption"))?
            .len();
        out.truncate(len);
        Ok(out)
    }

    /// The RSA decryption key, parsed once per `PrivateKey` (a cheap reference-counted clone
    /// afterwards).
    fn decrypting_key(&self) -> Result<aws_lc_rs::rsa::PrivateDecryptingKey, KeyError> {
        self.require_rsa()?;
        if let Some(k) = self.decrypting.get() {
            return Ok(k.clone());
        }
        let k = aws_lc_rs::rsa::PrivateDecryptingKey::from_pkcs8(&self.pkcs8)
            .map_err(|_| KeyError::Crypto("RSA decryption key"))?;
        Ok(self.decrypting.get_or_init(|| k).clone())
    }

    /// RSAES-OAEP decryption (RFC 8017 section 7.1.2) with `hash` for both the label hash and
    /// MGF1 and an empty label: the shapes RFC 3560 and RFC 4055 section 4 describe and mail
    /// clients write (SHA-1 is OpenSSL's default when only `rsa_padding_mode:oaep` is given).
    pub fn rsa_decrypt_oaep(
        &self,
        hash: HashAlgorithm,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        use aws_lc_rs::rsa::OaepPrivateDecryptingKey;
        let key = self.decrypting_key().and_then(|k| {
            OaepPrivateDecryptingKey::new(k).map_err(|_| KeyError::Crypto("RSA decryption key"))
        })?;
        let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
        let len = key
            .decrypt(oaep_algorithm(hash), ciphertext, &mut out, None)
            .map_err(|_| KeyError::Crypto("RSA decryption"))?
            .len();
        out.truncate(len);
        Ok(out)
    }

    /// Elliptic-curve Diffie-Hellman (SEC 1 section 3.3.1) with the peer's public point in
    /// uncompressed or compressed form; returns the shared secret Z (the x coordinate), which
    /// the caller feeds to a KDF. The point is validated by aws-lc-rs.
    pub fn ecdh(&self, peer_public_point: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        use aws_lc_rs::agreement;
        let alg = match self.algorithm {
            KeyAlgorithm::P256 => &agreement::ECDH_P256,
            KeyAlgorithm::P384 => &agreement::ECDH_P384,
            other => {
                return Err(KeyError::UnsupportedKey(format!("ECDH with a {other} key")));
            }
        };
        let key = agreement::PrivateKey::from_private_key_der(alg, &self.pkcs8)
            .map_err(|_| KeyError::Crypto("ECDH private key"))?;
        agreement::agree(
            &key,
            agreement::UnparsedPublicKey::new(alg, peer_public_point),
            KeyError::Crypto("ECDH (bad peer point?)"),
            |z| Ok(Zeroizing::new(z.to_vec())),
        )
    }

    fn require_rsa(&self) -> Result<(), KeyError> {
        if self.algorithm.is_rsa() {
            Ok(())
        } else {
            Err(KeyError::UnsupportedKey(format!(
                "RSA decryption with a {} key",
                self.algorithm
            )))
        }
    }
}

fn oaep_algorithm(hash: HashAlgorithm) -> &'static aws_lc_rs::rsa::OaepAlgorithm {
    use aws_lc_rs::rsa;
    match hash {
        HashAlgorithm::Sha1 => &rsa::OAEP_SHA1_MGF1SHA1,
        HashAlgorithm::Sha256 => &rsa::OAEP_SHA256_MGF1SHA256,
        HashAlgorithm::Sha384 => &rsa::OAEP_SHA384_MGF1SHA384,
        HashAlgorithm::Sha512 => &rsa::OAEP_SHA512_MGF1SHA512,
    }
}

fn rsa_public_key(
    spki: &SubjectPublicKeyInfoOwned,
) -> Result<aws_lc_rs::rsa::PublicEncryptingKey, KeyError> {
    if spki.algorithm.oid != oid::RSA_ENCRYPTION {
        return Err(KeyError::UnsupportedKey(format!(
            "RSA encryption to a {} key",
            spki.algorithm.oid
        )));
    }
    let der = spki
        .to_der()
        .map_err(|e| KeyError::UnsupportedKey(e.to_string()))?;
    aws_lc_rs::rsa::PublicEncryptingKey::from_der(&der)
        .map_err(|e| KeyError::UnsupportedKey(format!("RSA public key: {e}")))
}

/// RSAES-PKCS1-v1_5 encryption (RFC 8017 section 7.2.1) to the RSA key in `spki`.
pub fn rsa_encrypt_pkcs1(
    spki: &SubjectPublicKeyInfoOwned,
    plaintext: &[u8],
) -> Result<Vec<u8>, KeyError> {
    let key = aws_lc_rs::rsa::Pkcs1PublicEncryptingKey::new(rsa_public_key(spki)?)
        .map_err(|_| KeyError::Crypto("RSA public key"))?;
    let mut out = vec![0u8; key.ciphertext_size()];
    let len = key
        .encrypt(plaintext, &mut out)
        .map_err(|_| KeyError::Crypto("RSA encryption"))?
        .len();
    out.truncate(len);
    Ok(out)
}

/// RSAES-OAEP encryption (RFC 8017 section 7.1.1) with `hash` for the label hash and MGF1 and
/// an empty label, to the RSA key in `spki`.
pub fn rsa_encrypt_oaep(
    spki: &SubjectPublicKeyInfoOwned,
    hash: HashAlgorithm,
    plaintext: &[u8],
) -> Result<Vec<u8>, KeyError> {
    let key = aws_lc_rs::rsa::OaepPublicEncryptingKey::new(rsa_public_key(spki)?)
        .map_err(|_| KeyError::Crypto("RSA public key"))?;
    let mut out = vec![0u8; key.ciphertext_size()];
    let len = key
        .encrypt(oaep_algorithm(hash), plaintext, &mut out, None)
        .map_err(|_| KeyError::Crypto("RSA encryption"))?
        .len();
    out.truncate(len);
    Ok(out)
}

/// The result of an ephemeral-static ECDH with a recipient's public key.
pub struct EphemeralAgreement {
    /// The curve (P-256 or P-384).
    pub curve: KeyAlgorithm,
    /// The ephemeral public key as an uncompressed point (SEC 1 section 2.3.3), for the
    /// originatorKey of a KeyAgreeRecipientInfo.
    pub public_point: Vec<u8>,
    /// The shared secret Z.
    pub shared_secret: Zeroizing<Vec<u8>>,
}

/// Generates an ephemeral key on the curve of the EC key in `spki` and agrees a secret with it
/// (the "ephemeral-static" mode of RFC 5753 section 3.1). The ephemeral private key never
/// leaves aws-lc-rs and is gone when this returns.
pub fn ecdh_ephemeral(spki: &SubjectPublicKeyInfoOwned) -> Result<EphemeralAgreement, KeyError> {
    use aws_lc_rs::agreement;
    let curve = ec_curve(spki)?;
    let alg = match curve {
        KeyAlgorithm::P384 => &agreement::ECDH_P384,
        _ => &agreement::ECDH_P256,
    };
    let eph = agreement::EphemeralPrivateKey::generate(alg, &SystemRandom::new())
        .map_err(|_| KeyError::Crypto("ephemeral EC key generation"))?;
    let public_point = eph
        .compute_public_key()
        .map_err(|_| KeyError::Crypto("ephemeral EC public key"))?
        .as_ref()
        .to_vec();
    let shared_secret = agreement::agree_ephemeral(
        eph,
        agreement::UnparsedPublicKey::new(alg, spki.subject_public_key.raw_bytes()),
        KeyError::UnsupportedKey("recipient EC public key is not a valid point".into()),
        |z| Ok(Zeroizing::new(z.to_vec())),
    )?;
    Ok(EphemeralAgreement {
        curve,
        public_point,
        shared_secret,
    })
}

/// The curve of an EC `SubjectPublicKeyInfo`, when it is one we support.
pub fn ec_curve(spki: &SubjectPublicKeyInfoOwned) -> Result<KeyAlgorithm, KeyError> {
    if spki.algorithm.oid != oid::EC_PUBLIC_KEY {
        return Err(KeyError::UnsupportedKey(format!(
            "key algorithm {} is not EC",
            spki.algorithm.oid
        )));
    }
    let curve: Option<ObjectIdentifier> = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as().ok());
    match curve {
        Some(c) if c == oid::SECP256R1 => Ok(KeyAlgorithm::P256),
        Some(c) if c == oid::SECP384R1 => Ok(KeyAlgorithm::P384),
        Some(c) => Err(KeyError::UnsupportedKey(format!("EC curve {c}"))),
        None => Err(KeyError::UnsupportedKey(
            "EC key without a named curve".into(),
        )),
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature does not match the data and key.
    #[error("bad signature")]
    Invalid,
    /// The algorithm or key type is one we do not verify.
    #[error("unsupported signature algorithm or key: {0}")]
    Unsupported(String),
}

/// Verifies `signature` over `message` with the public key in `spki`, using the algorithm named
/// by `alg` (as found in a certificate, CRL, CSR or CMS SignerInfo).
pub fn verify_signature(
    spki: &SubjectPublicKeyInfoOwned,
    alg: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    let sa = SignatureAlgorithm::from_algorithm_identifier(alg)
        .map_err(|e| SignatureError::Unsupported(e.to_string()))?;
    verify_with(spki, sa, message, signature)
}

/// Like [`verify_signature`] with the algorithm already recognised.
pub fn verify_with(
    spki: &SubjectPublicKeyInfoOwned,
    sa: SignatureAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    use HashAlgorithm::*;
    let key_bytes = spki.subject_public_key.raw_bytes();
    let key_oid = spki.algorithm.oid;
    let algo: &'static dyn sig::VerificationAlgorithm = if key_oid == oid::RSA_ENCRYPTION
        || key_oid == oid::RSASSA_PSS
    {
        match sa {
            SignatureAlgorithm::RsaPkcs1(Sha1) => {
                &sig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
            }
            SignatureAlgorithm::RsaPkcs1(Sha256) => &sig::RSA_PKCS1_2048_8192_SHA256,
            SignatureAlgorithm::RsaPkcs1(Sha384) => &sig::RSA_PKCS1_2048_8192_SHA384,
            SignatureAlgorithm::RsaPkcs1(Sha512) => &sig::RSA_PKCS1_2048_8192_SHA512,
            SignatureAlgorithm::RsaPss(Sha256) => &sig::RSA_PSS_2048_8192_SHA256,
            SignatureAlgorithm::RsaPss(Sha384) => &sig::RSA_PSS_2048_8192_SHA384,
            SignatureAlgorithm::RsaPss(Sha512) => &sig::RSA_PSS_2048_8192_SHA512,
            other => {
                return Err(SignatureError::Unsupported(format!(
                    "{other} with an RSA key"
                )));
            }
        }
    } else if key_oid == oid::EC_PUBLIC_KEY {
        let curve: Option<ObjectIdentifier> = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as().ok());
        match (curve, sa) {
            (Some(c), SignatureAlgorithm::Ecdsa(h)) if c == oid::SECP256R1 => match h {
                Sha1 => &sig::ECDSA_P256_SHA1_ASN1,
                Sha256 => &sig::ECDSA_P256_SHA256_ASN1,
                Sha384 => &sig::ECDSA_P256_SHA384_ASN1,
                Sha512 => &sig::ECDSA_P256_SHA512_ASN1,
            },
            (Some(c), SignatureAlgorithm::Ecdsa(h)) if c == oid::SECP384R1 => match h {
                Sha256 => &sig::ECDSA_P384_SHA256_ASN1,
                Sha384 => &sig::ECDSA_P384_SHA384_ASN1,
                Sha512 => &sig::ECDSA_P384_SHA512_ASN1,
                Sha1 => return Err(SignatureError::Unsupported("ECDSA P-384 with SHA-1".into())),
            },
            (c, sa) => {
                return Err(SignatureError::Unsupported(format!(
                    "{sa} with EC key on curve {}",
                    c.map(|c| c.to_string()).unwrap_or_else(|| "?".into())
                )));
            }
        }
    } else {
        return Err(SignatureError::Unsupported(format!(
            "public key algorithm {key_oid}"
        )));
    };
    sig::UnparsedPublicKey::new(algo, key_bytes)
        .verify(message, signature)
        .map_err(|_| SignatureError::Invalid)
}

/// SHA-256 over the DER of a `SubjectPublicKeyInfo`'s key bits, truncated to 20 bytes: the subject
/// key identifier we put in certificates (RFC 7093 section 2, method 1).
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    let d = HashAlgorithm::Sha256.digest(spki.subject_public_key.raw_bytes());
    d[..20].to_vec()
}

/// DER of a public key info, for comparisons and fingerprints.
pub fn spki_der(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    spki.to_der().unwrap_or_default()
}

pub(crate) mod pss;

#[cfg(test)]
mod tests;
