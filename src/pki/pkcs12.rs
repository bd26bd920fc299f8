//! PKCS #12 (RFC 7292): reading the files users bring (`user import`) and writing the ones they
//! take away (an exported encryption key for their own mail client).
//!
//! Only password privacy and password integrity mode (RFC 7292 section 3.1) are supported: that
//! is what every mail client, OpenSSL, NSS, GnuPG and Windows write. Public-key modes (CMS
//! `signedData` / `envelopedData` content) are refused with a message saying so.
//!
//! Reading verifies the MAC before decrypting or even parsing anything inside it, so a wrong
//! password is reported as such instead of as garbage. Key derivation work is bounded (see
//! [`MAX_ITERATIONS`]) and nesting is bounded ([`MAX_NESTING`]) so that a hostile file cannot
//! hang the gateway. Writing produces what OpenSSL 3's `openssl pkcs12 -export` produces by
//! default, so that anything that reads OpenSSL's files reads ours.

mod asn1;
use crate::ber;
mod pbe;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;
use std::num::NonZeroU32;

use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef, SetOfVec};
use der::{Decode, Encode, Tag, TagNumber, Tagged};
use spki::{AlgorithmIdentifierOwned, AlgorithmIdentifierRef};
use zeroize::Zeroizing;

use self::asn1::{
    Attribute, CertBag, ContentInfo, DigestInfo, EncryptedContentInfo, EncryptedData,
    EncryptedPrivateKeyInfo, MacData, Pfx, SafeBag,
};
use self::pbe::{Budget, Password, Pbes2Scheme, Prf};
use crate::oid;
use crate::pki::cert::{Cert, CertError};
use crate::pki::keys::{HashAlgorithm, KeyError, PrivateKey, spki_der};

pub use self::pbe::{MAX_ITERATIONS, MAX_TOTAL_WORK};

/// How deep `safeContentsBag`s (RFC 7292 section 4.2.6) may nest. Real files never nest at all;
/// the bound exists so that a crafted file cannot recurse without end.
pub const MAX_NESTING: usize = 4;

/// Iterations for every derivation [`build`] performs. The file leaves the gateway and can be
/// attacked offline, so each password guess should cost: 100,000 is fifty times OpenSSL 3's
/// `PKCS12_DEFAULT_ITER` (2,048) and ten times the floor of 10,000, and an import still takes
/// about 0.2 s in OpenSSL 3.0 and NSS 3.87 on a busy 2-core machine, where 600,000 took 1.0 to
/// 1.1 s (README: "The directory and its keys").
pub const EXPORT_ITERATIONS: NonZeroU32 = NonZeroU32::new(100_000).unwrap();

/// The shortest password an export accepts, in characters: the key inside is only as safe as
/// the password that guards it once the file is out of the gateway's hands.
pub const MIN_EXPORT_PASSWORD_CHARS: usize = 10;

/// What a PKCS #12 file held, reduced to what the gateway uses.
#[derive(Debug)]
#[non_exhaustive]
pub struct Pkcs12Contents {
    /// The private key (the first one in the file that has a certificate).
    pub key: PrivateKey,
    /// The certificate whose public key is the key's public key.
    pub cert: Cert,
    /// Every other certificate in the file, in file order, without duplicates. Files usually
    /// carry the issuing CA chain here; nothing about it has been validated.
    pub chain: Vec<Cert>,
    /// The friendlyName of the key (or else of its certificate), RFC 2985 section 5.5.1.
    pub friendly_name: Option<String>,
    /// Things worth telling the administrator that did not stop the import.
    pub warnings: Vec<Pkcs12Warning>,
}

/// Something in a PKCS #12 file that was accepted but deserves a mention.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pkcs12Warning {
    /// A part was encrypted with one of the RFC 7292 appendix C PBEs (RC2 or 3DES keyed through
    /// the SHA-1 PKCS #12 KDF): weak, but still what `openssl pkcs12 -legacy` and older Windows
    /// write.
    LegacyEncryption(ObjectIdentifier),
    /// The MAC uses SHA-1 (RFC 7292 appendix B.4 permits it; it is no longer a good choice).
    Sha1Mac,
    /// The file held more private keys than the one returned; the others were ignored.
    ExtraKeysIgnored(usize),
    /// A bag of a type the gateway has no use for (CRL, secret, or a non-X.509 certificate).
    IgnoredBag(ObjectIdentifier),
}

impl fmt::Display for Pkcs12Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LegacyEncryption(o) => write!(
                f,
                "part of the file is encrypted with a legacy algorithm ({o}, RC2 or 3DES with SHA-1); \
                 prefer exporting with AES"
            ),
            Self::Sha1Mac => f.write_str("the file's integrity check uses SHA-1"),
            Self::ExtraKeysIgnored(n) => {
                write!(f, "{n} further private key(s) in the file were ignored")
            }
            Self::IgnoredBag(o) => write!(f, "a bag of type {o} was ignored"),
        }
    }
}

/// Why a PKCS #12 file could not be read or written. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs12Error {
    /// An export password shorter than [`MIN_EXPORT_PASSWORD_CHARS`] (or empty).
    #[error(
        "the PKCS #12 password has {chars} characters; an export needs at least {MIN_EXPORT_PASSWORD_CHARS} (the file can be attacked offline once it leaves the gateway)"
    )]
    PasswordTooShort {
        /// How many characters it had.
        chars: usize,
    },
    /// The MAC did not verify (RFC 7292 section 5.1): almost always a mistyped password.
    #[error("wrong password, or the PKCS #12 file is damaged (its integrity check failed)")]
    WrongPassword,
    /// The file carries no MAC, so neither the password nor the contents can be checked.
    #[error(
        "the PKCS #12 file has no integrity check (MAC), so tampering could not be detected; \
         export it again with a password MAC (OpenSSL: without -nomac)"
    )]
    NoMac,
    /// The DER structure is broken or not what RFC 7292 describes.
    #[error(
        "the PKCS #12 file is malformed ({0}); it may be truncated or damaged: export it again"
    )]
    Malformed(String),
    /// An encryption, KDF or MAC algorithm we do not implement.
    #[error(
        "the PKCS #12 file uses algorithm {0}, which smimegw does not support; export it again \
         with PBES2/AES (the OpenSSL 3 default) or the legacy 3DES/RC2 schemes"
    )]
    UnsupportedAlgorithm(ObjectIdentifier),
    /// Public-key privacy or integrity mode (RFC 7292 section 3.1), or another content type.
    #[error(
        "the PKCS #12 file uses content type {0} (public-key privacy or integrity mode), which \
         smimegw does not support; export it again protected by a password only"
    )]
    UnsupportedContentType(ObjectIdentifier),
    /// One key derivation asks for more work than [`MAX_ITERATIONS`].
    #[error(
        "the PKCS #12 file asks for {iterations} key-derivation iterations, more than the limit \
         of {limit}; refused to keep the gateway responsive: export it again with fewer iterations"
    )]
    IterationCountTooHigh {
        /// What the file asked for.
        iterations: u64,
        /// [`MAX_ITERATIONS`].
        limit: u64,
    },
    /// All derivations together ask for more work than [`MAX_TOTAL_WORK`].
    #[error(
        "the PKCS #12 file needs more than {limit} key-derivation iterations in total; refused \
         to keep the gateway responsive: export it again with fewer iterations or fewer parts"
    )]
    TooMuchWork {
        /// [`MAX_TOTAL_WORK`].
        limit: u64,
    },
    /// `safeContentsBag`s nested deeper than [`MAX_NESTING`].
    #[error(
        "the PKCS #12 file nests its contents more than {limit} levels deep; refused as malformed"
    )]
    TooDeep {
        /// [`MAX_NESTING`].
        limit: usize,
    },
    /// An encrypted part did not decrypt although the MAC verified.
    #[error(
        "part of the PKCS #12 file does not decrypt with the password that verified its integrity \
         check; the file is damaged or was assembled with different passwords: export it again"
    )]
    DecryptionFailed,
    /// No key bag at all.
    #[error("the PKCS #12 file contains no private key; export it again including the private key")]
    NoKey,
    /// Keys, but no certificate for any of them.
    #[error(
        "the PKCS #12 file contains a private key but not its certificate; export it again \
         including the certificate"
    )]
    NoMatchingCertificate,
    /// The key decrypted but is not one the gateway can use.
    #[error("the private key in the PKCS #12 file cannot be used: {0}")]
    Key(#[source] KeyError),
    /// A certificate bag does not hold a readable certificate.
    #[error("a certificate in the PKCS #12 file cannot be read: {0}")]
    Cert(#[source] CertError),
    /// [`build`] was given a certificate for some other key.
    #[error(
        "the certificate ({subject}) does not belong to the private key: their public keys differ"
    )]
    KeyCertificateMismatch {
        /// The certificate's subject.
        subject: String,
    },
    /// Random generation or encryption failed while building.
    #[error("cryptographic operation failed while writing PKCS #12: {0}")]
    Crypto(&'static str),
    /// DER encoding failed while building (a length beyond what DER can express).
    #[error("cannot encode the PKCS #12 file: {0}")]
    Encoding(#[source] der::Error),
}

fn malformed(what: &'static str) -> impl Fn(der::Error) -> Pkcs12Error {
    move |e| Pkcs12Error::Malformed(format!("{what}: {e}"))
}

/// The friendlyName and localKeyID bag attributes (RFC 2985 sections 5.5.1 and 5.5.2). Anything
/// odd in them is ignored: they are labels, not security decisions.
#[derive(Default)]
struct BagAttributes {
    friendly_name: Option<String>,
    local_key_id: Option<Vec<u8>>,
}

impl BagAttributes {
    fn read(attrs: Option<&SetOfVec<Attribute<'_>>>) -> Self {
        let mut out = Self::default();
        for a in attrs.into_iter().flat_map(|s| s.iter()) {
            let Some(v) = a.attr_values.iter().next() else {
                continue;
            };
            if a.attr_id == oid::FRIENDLY_NAME {
                out.friendly_name = text_value(v);
            } else if a.attr_id == oid::LOCAL_KEY_ID && v.tag() == Tag::OctetString {
                out.local_key_id = Some(v.value().to_vec());
            }
        }
        out
    }
}

/// friendlyName is a BMPString; a few writers use UTF8String, which we accept too.
fn text_value(v: &AnyRef<'_>) -> Option<String> {
    match v.tag() {
        Tag::BmpString => {
            let b = v.value();
            if !b.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = b
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        Tag::Utf8String => std::str::from_utf8(v.value()).ok().map(str::to_owned),
        _ => None,
    }
}

struct FoundKey {
    pkcs8: Zeroizing<Vec<u8>>,
    attrs: BagAttributes,
}

struct FoundCert {
    cert: Cert,
    attrs: BagAttributes,
}

/// Walks the authenticated safe, collecting keys and certificates.
struct Reader<'p> {
    password: Password<'p>,
    /// The PKCS #12 KDF password form that verified the MAC (see [`Password::bmp_candidates`]).
    kdf_password: Zeroizing<Vec<u8>>,
    budget: Budget,
    keys: Vec<FoundKey>,
    certs: Vec<FoundCert>,
    warnings: Vec<Pkcs12Warning>,
}

impl Reader<'_> {
    fn warn(&mut self, w: Pkcs12Warning) {
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    fn decrypt(
        &mut self,
        alg: &AlgorithmIdentifierRef<'_>,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Pkcs12Error> {
        if pbe::is_legacy(&alg.oid) {
            self.warn(Pkcs12Warning::LegacyEncryption(alg.oid));
        }
        pbe::decrypt(
            alg,
            ciphertext,
            &self.password,
            &self.kdf_password,
            &mut self.budget,
        )
    }

    /// One `ContentInfo` of the `AuthenticatedSafe` (RFC 7292 section 4.1).
    fn content_info(&mut self, ci: &ContentInfo<'_>) -> Result<(), Pkcs12Error> {
        let content = ci.content.ok_or_else(|| {
            Pkcs12Error::Malformed("a part of the authenticated safe has no content".into())
        })?;
        if ci.content_type == oid::CMS_DATA {
            let os: &OctetStringRef = content.decode_as().map_err(malformed("data content"))?;
            let safe = ber::to_der(os.as_bytes())?;
            let bags: Vec<SafeBag<'_>> = Vec::from_der(&safe).map_err(malformed("SafeContents"))?;
            self.bags(&bags, 0)
        } else if ci.content_type == oid::CMS_ENCRYPTED_DATA {
            let ed: EncryptedData<'_> = content.decode_as().map_err(malformed("encryptedData"))?;
            let eci = ed.encrypted_content_info;
            if eci.content_type != oid::CMS_DATA {
                return Err(Pkcs12Error::UnsupportedContentType(eci.content_type));
            }
            let ct = eci.encrypted_content.ok_or_else(|| {
                Pkcs12Error::Malformed("encryptedData without encrypted content".into())
            })?;
            let ct = match ct.tag() {
                Tag::ContextSpecific {
                    constructed: false,
                    number: TagNumber(0),
                } => Cow::Borrowed(ct.value()),
                Tag::ContextSpecific {
                    constructed: true,
                    number: TagNumber(0),
                } => Cow::Owned(ber::join_segments(ct.value())?.to_vec()),
                other => {
                    return Err(Pkcs12Error::Malformed(format!(
                        "encryptedContent tagged {other} instead of [0]"
                    )));
                }
            };
            let plain = self.decrypt(&eci.content_encryption_algorithm, &ct)?;
            let plain = ber::to_der(&plain)?;
            let bags: Vec<SafeBag<'_>> =
                Vec::from_der(&plain).map_err(malformed("decrypted SafeContents"))?;
            self.bags(&bags, 0)
        } else {
            Err(Pkcs12Error::UnsupportedContentType(ci.content_type))
        }
    }

    /// A `SafeContents` (RFC 7292 section 4.2).
    fn bags(&mut self, bags: &[SafeBag<'_>], depth: usize) -> Result<(), Pkcs12Error> {
        if depth > MAX_NESTING {
            return Err(Pkcs12Error::TooDeep { limit: MAX_NESTING });
        }
        for bag in bags {
            self.bag(bag, depth)?;
        }
        Ok(())
    }

    fn bag(&mut self, bag: &SafeBag<'_>, depth: usize) -> Result<(), Pkcs12Error> {
        let attrs = BagAttributes::read(bag.bag_attributes.as_ref());
        let id = bag.bag_id;
        if id == oid::KEY_BAG {
            // A PrivateKeyInfo in the clear (section 4.2.1).
            let pkcs8 = Zeroizing::new(bag.bag_value.to_der().map_err(malformed("keyBag"))?);
            self.keys.push(FoundKey { pkcs8, attrs });
        } else if id == oid::PKCS8_SHROUDED_KEY_BAG {
            // An EncryptedPrivateKeyInfo (section 4.2.2).
            let epki: EncryptedPrivateKeyInfo<'_> = bag
                .bag_value
                .decode_as()
                .map_err(malformed("pkcs8ShroudedKeyBag"))?;
            let plain = self.decrypt(&epki.encryption_algorithm, epki.encrypted_data.as_bytes())?;
            // Left as it is if it is not BER either: the key loader then says what is wrong.
            let pkcs8 = ber::to_der(&plain).unwrap_or(plain);
            self.keys.push(FoundKey { pkcs8, attrs });
        } else if id == oid::CERT_BAG {
            let cb: CertBag<'_> = bag.bag_value.decode_as().map_err(malformed("certBag"))?;
            if cb.cert_id != oid::X509_CERTIFICATE {
                self.warn(Pkcs12Warning::IgnoredBag(cb.cert_id));
                return Ok(());
            }
            let os: &OctetStringRef = cb
                .cert_value
                .decode_as()
                .map_err(malformed("x509Certificate value"))?;
            let cert = Cert::from_der_named(os.as_bytes(), "PKCS #12 certificate bag")
                .map_err(Pkcs12Error::Cert)?;
            self.certs.push(FoundCert { cert, attrs });
        } else if id == oid::SAFE_CONTENTS_BAG {
            let inner: Vec<SafeBag<'_>> = bag
                .bag_value
                .decode_as()
                .map_err(malformed("safeContentsBag"))?;
            self.bags(&inner, depth + 1)?;
        } else {
            self.warn(Pkcs12Warning::IgnoredBag(id));
        }
        Ok(())
    }

    /// Pairs a key with its certificate by public key: localKeyID is only a hint (some writers
    /// omit it, some reuse it), the SPKI comparison is what proves the pair.
    fn finish(mut self) -> Result<Pkcs12Contents, Pkcs12Error> {
        if self.keys.is_empty() {
            return Err(Pkcs12Error::NoKey);
        }
        let key_count = self.keys.len();
        let mut first_key_error = None;
        let mut chosen = None;
        for found in std::mem::take(&mut self.keys) {
            let key = match PrivateKey::from_pkcs8_der(&found.pkcs8) {
                Ok(k) => k,
                Err(e) => {
                    first_key_error.get_or_insert(e);
                    continue;
                }
            };
            let spki = key.public_key_der();
            let matching: Vec<usize> = (0..self.certs.len())
                .filter(|&i| spki_der(self.certs[i].cert.spki()) == spki)
                .collect();
            let by_id = matching.iter().copied().find(|&i| {
                found.attrs.local_key_id.is_some()
                    && self.certs[i].attrs.local_key_id == found.attrs.local_key_id
            });
            if let Some(leaf) = by_id.or(matching.first().copied()) {
                chosen = Some((key, leaf, found.attrs.friendly_name));
                break;
            }
        }
        let Some((key, leaf, key_name)) = chosen else {
            return Err(match (key_count, first_key_error) {
                (1, Some(e)) => Pkcs12Error::Key(e),
                _ => Pkcs12Error::NoMatchingCertificate,
            });
        };
        if key_count > 1 {
            self.warn(Pkcs12Warning::ExtraKeysIgnored(key_count - 1));
        }
        let mut certs = self.certs;
        let leaf = certs.remove(leaf);
        let mut chain: Vec<Cert> = Vec::new();
        for c in certs {
            if c.cert != leaf.cert && !chain.contains(&c.cert) {
                chain.push(c.cert);
            }
        }
        Ok(Pkcs12Contents {
            key,
            friendly_name: key_name.or(leaf.attrs.friendly_name),
            cert: leaf.cert,
            chain,
            warnings: self.warnings,
        })
    }
}

/// Reads a PKCS #12 file (DER, or the BER that NSS writes) protected by `password`.
///
/// The MAC is checked first (RFC 7292 section 5.1: HMAC with SHA-1 or SHA-2, keyed by the
/// appendix B.2 KDF); a mismatch is [`Pkcs12Error::WrongPassword`]. A file without a MAC is
/// refused ([`Pkcs12Error::NoMac`]). Encrypted parts may use PBES2 (PBKDF2 with HMAC-SHA-1/256/
/// 384/512, AES-CBC or 3DES) or the appendix C PBEs (3DES, 128-bit and 40-bit RC2); the latter
/// are reported in [`Pkcs12Contents::warnings`]. PEM is not accepted: PKCS #12 has no PEM form.
pub fn parse(der: &[u8], password: &str) -> Result<Pkcs12Contents, Pkcs12Error> {
    let der = ber::to_der(der)?;
    let pfx = Pfx::from_der(&der).map_err(malformed("PFX"))?;
    if pfx.version != 3 {
        return Err(Pkcs12Error::Malformed(format!(
            "PFX version {}, expected 3",
            pfx.version
        )));
    }
    if pfx.auth_safe.content_type != oid::CMS_DATA {
        return Err(Pkcs12Error::UnsupportedContentType(
            pfx.auth_safe.content_type,
        ));
    }
    let auth_safe: &OctetStringRef = pfx
        .auth_safe
        .content
        .ok_or_else(|| Pkcs12Error::Malformed("the authenticated safe is empty".into()))?
        .decode_as()
        .map_err(malformed("authenticated safe"))?;
    let auth_safe = auth_safe.as_bytes();
    let mac = pfx.mac_data.ok_or(Pkcs12Error::NoMac)?;
    let mac_hash = HashAlgorithm::from_oid(&mac.mac.algorithm.oid)
        .ok_or(Pkcs12Error::UnsupportedAlgorithm(mac.mac.algorithm.oid))?;

    let password = Password::new(password);
    let mut budget = Budget::default();
    let kdf_password = pbe::verify_mac(
        mac_hash,
        &password,
        mac.mac_salt.as_bytes(),
        mac.iterations,
        auth_safe,
        mac.mac.digest.as_bytes(),
        &mut budget,
    )?;

    let mut reader = Reader {
        password,
        kdf_password,
        budget,
        keys: Vec::new(),
        certs: Vec::new(),
        warnings: Vec::new(),
    };
    if mac_hash == HashAlgorithm::Sha1 {
        reader.warn(Pkcs12Warning::Sha1Mac);
    }
    let auth_safe = ber::to_der(auth_safe)?;
    let parts: Vec<ContentInfo<'_>> =
        Vec::from_der(&auth_safe).map_err(malformed("AuthenticatedSafe"))?;
    for part in &parts {
        reader.content_info(part)?;
    }
    reader.finish()
}

/// The encryption choices [`build_with_profile`] offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ExportProfile {
    /// OpenSSL 3's `pkcs12 -export` default: PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC for
    /// the key and the certificates, HMAC-SHA256 MAC. Read by OpenSSL 3, NSS, Windows 10+,
    /// macOS, Java 12+ and GnuPG 2.4.
    #[default]
    OpenSsl3,
    /// For GnuPG 2.2's gpgsm (Debian 12 ships 2.2.40), whose importer knows exactly one PBES2
    /// form: PBKDF2 with the PRF field left out, meaning HMAC-SHA1 (RFC 8018 appendix A.2), and
    /// AES-128-CBC. It cannot read the OpenSSL 3 default, from OpenSSL or from us. The MAC stays
    /// HMAC-SHA256. Weaker than the default only in the margins (HMAC-SHA1 as a PRF is not
    /// broken, AES-128 is sound): use it when the recipient runs GnuPG 2.2, not otherwise.
    LegacyGnupg22,
}

impl ExportProfile {
    fn scheme(self) -> Pbes2Scheme {
        match self {
            Self::OpenSsl3 => Pbes2Scheme {
                prf: Prf::HmacSha256,
                aes_key_len: 32,
                salt_len: 16,
                iterations: EXPORT_ITERATIONS,
            },
            Self::LegacyGnupg22 => Pbes2Scheme {
                prf: Prf::DefaultSha1,
                aes_key_len: 16,
                salt_len: 16,
                iterations: EXPORT_ITERATIONS,
            },
        }
    }
}

fn encode<T: Encode>(v: &T) -> Result<Vec<u8>, Pkcs12Error> {
    v.to_der().map_err(Pkcs12Error::Encoding)
}

fn octets(bytes: &[u8]) -> Result<&OctetStringRef, Pkcs12Error> {
    OctetStringRef::new(bytes).map_err(Pkcs12Error::Encoding)
}

fn any_ref(der: &[u8]) -> Result<AnyRef<'_>, Pkcs12Error> {
    AnyRef::from_der(der).map_err(Pkcs12Error::Encoding)
}

fn alg_ref(a: &AlgorithmIdentifierOwned) -> AlgorithmIdentifierRef<'_> {
    AlgorithmIdentifierRef {
        oid: a.oid,
        parameters: a.parameters.as_ref().map(der::Any::to_ref),
    }
}

/// Writes `key`, its certificate `cert` and `chain` as a PKCS #12 file the way OpenSSL 3's
/// `openssl pkcs12 -export -name friendly_name` does (see [`ExportProfile::OpenSsl3`]).
///
/// Layout, as OpenSSL's: an `encryptedData` `SafeContents` with the leaf and chain certificates,
/// then a plain `data` `SafeContents` with a `pkcs8ShroudedKeyBag`. The key and the leaf carry
/// the same localKeyID (SHA-1 of the leaf certificate) and, unless `friendly_name` is empty, the
/// friendlyName by which mail clients list the identity.
pub fn build(
    key: &PrivateKey,
    cert: &Cert,
    chain: &[Cert],
    password: &str,
    friendly_name: &str,
) -> Result<Vec<u8>, Pkcs12Error> {
    build_with_profile(
        key,
        cert,
        chain,
        password,
        friendly_name,
        ExportProfile::OpenSsl3,
    )
}

/// [`build`] with a choice of [`ExportProfile`], for recipients whose software cannot read the
/// default.
pub fn build_with_profile(
    key: &PrivateKey,
    cert: &Cert,
    chain: &[Cert],
    password: &str,
    friendly_name: &str,
    profile: ExportProfile,
) -> Result<Vec<u8>, Pkcs12Error> {
    let chars = password.chars().count();
    if chars < MIN_EXPORT_PASSWORD_CHARS {
        return Err(Pkcs12Error::PasswordTooShort { chars });
    }
    if key.public_key_der() != spki_der(cert.spki()) {
        return Err(Pkcs12Error::KeyCertificateMismatch {
            subject: cert.subject_string(),
        });
    }
    let scheme = profile.scheme();

    // Bag attributes shared by the key and the leaf certificate.
    let local_key_id = HashAlgorithm::Sha1.digest(cert.der());
    let name_bmp: Vec<u8> = friendly_name
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    let name_value = AnyRef::new(Tag::BmpString, &name_bmp).map_err(Pkcs12Error::Encoding)?;
    let id_value = AnyRef::new(Tag::OctetString, &local_key_id).map_err(Pkcs12Error::Encoding)?;
    let attributes = || -> Result<SetOfVec<Attribute<'_>>, Pkcs12Error> {
        let one = |attr_id, v| -> Result<Attribute<'_>, Pkcs12Error> {
            Ok(Attribute {
                attr_id,
                attr_values: SetOfVec::try_from(vec![v]).map_err(Pkcs12Error::Encoding)?,
            })
        };
        let mut set = SetOfVec::new();
        if !friendly_name.is_empty() {
            set.insert(one(oid::FRIENDLY_NAME, name_value)?)
                .map_err(Pkcs12Error::Encoding)?;
        }
        set.insert(one(oid::LOCAL_KEY_ID, id_value)?)
            .map_err(Pkcs12Error::Encoding)?;
        Ok(set)
    };

    // The certificates, encrypted (RFC 7292 section 4.2.3 bags in an encryptedData).
    let cert_bags = std::iter::once(cert)
        .chain(chain)
        .map(|c| {
            encode(&CertBag {
                cert_id: oid::X509_CERTIFICATE,
                cert_value: AnyRef::from(octets(c.der())?),
            })
        })
        .collect::<Result<Vec<Vec<u8>>, _>>()?;
    let mut cert_safe = Vec::with_capacity(cert_bags.len());
    for (i, der) in cert_bags.iter().enumerate() {
        cert_safe.push(SafeBag {
            bag_id: oid::CERT_BAG,
            bag_value: any_ref(der)?,
            bag_attributes: if i == 0 { Some(attributes()?) } else { None },
        });
    }
    let (cert_alg, cert_ct) = pbe::pbes2_encrypt(&encode(&cert_safe)?, password, scheme)?;
    let encrypted_certs = encode(&EncryptedData {
        version: 0,
        encrypted_content_info: EncryptedContentInfo {
            content_type: oid::CMS_DATA,
            content_encryption_algorithm: alg_ref(&cert_alg),
            encrypted_content: Some(
                AnyRef::new(
                    Tag::ContextSpecific {
                        constructed: false,
                        number: TagNumber(0),
                    },
                    &cert_ct,
                )
                .map_err(Pkcs12Error::Encoding)?,
            ),
        },
    })?;

    // The key, shrouded (section 4.2.2) in a plain data SafeContents.
    let (key_alg, key_ct) = pbe::pbes2_encrypt(key.pkcs8_der(), password, scheme)?;
    let shrouded = encode(&EncryptedPrivateKeyInfo {
        encryption_algorithm: alg_ref(&key_alg),
        encrypted_data: octets(&key_ct)?,
    })?;
    let key_safe = encode(&vec![SafeBag {
        bag_id: oid::PKCS8_SHROUDED_KEY_BAG,
        bag_value: any_ref(&shrouded)?,
        bag_attributes: Some(attributes()?),
    }])?;

    let auth_safe = encode(&vec![
        ContentInfo {
            content_type: oid::CMS_ENCRYPTED_DATA,
            content: Some(any_ref(&encrypted_certs)?),
        },
        ContentInfo {
            content_type: oid::CMS_DATA,
            content: Some(AnyRef::from(octets(&key_safe)?)),
        },
    ])?;
    seal(&auth_safe, password)
}

/// Wraps an encoded `AuthenticatedSafe` in a PFX with an HMAC-SHA256 MAC (RFC 7292 section 4).
fn seal(auth_safe: &[u8], password: &str) -> Result<Vec<u8>, Pkcs12Error> {
    let mut salt = [0u8; 16];
    pbe::random(&mut salt)?;
    let mac = pbe::compute_mac(
        HashAlgorithm::Sha256,
        &Password::new(password),
        &salt,
        EXPORT_ITERATIONS,
        auth_safe,
    );
    encode(&Pfx {
        version: 3,
        auth_safe: ContentInfo {
            content_type: oid::CMS_DATA,
            content: Some(AnyRef::from(octets(auth_safe)?)),
        },
        mac_data: Some(MacData {
            mac: DigestInfo {
                algorithm: AlgorithmIdentifierRef {
                    oid: oid::SHA256,
                    parameters: Some(AnyRef::NULL),
                },
                digest: octets(&mac)?,
            },
            mac_salt: octets(&salt)?,
            iterations: u64::from(EXPORT_ITERATIONS.get()),
        }),
    })
}

impl From<ber::BerError> for Pkcs12Error {
    fn from(e: ber::BerError) -> Self {
        Pkcs12Error::Malformed(e.to_string())
    }
}
