//! Password-based key derivation, encryption and MACs for PKCS #12.
//!
//! Two families meet in one file format:
//! - the PKCS #12 KDF (RFC 7292 appendix B.2), used for the MAC (ID 3) and, with SHA-1, for the
//!   legacy PBEs of appendix C (ID 1 for the key, ID 2 for the IV). Its password is a BMPString
//!   with two trailing zero bytes (appendix B.1);
//! - PBES2 with PBKDF2 (RFC 8018 sections 6.2 and 5.2), which modern exporters use for the
//!   encrypted parts. Its password is the UTF-8 bytes as typed, which is what OpenSSL does.
//!
//! Every derived key and every decrypted buffer lives in a [`Zeroizing`] buffer. Work is bounded
//! by [`Budget`]: a hostile file cannot ask for more than [`MAX_ITERATIONS`] per derivation nor
//! more than [`MAX_TOTAL_WORK`] for the whole file.

use std::num::NonZeroU32;

use aws_lc_rs::cipher::{
    AES_128, AES_192, AES_256, DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey,
    PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::{digest, hmac, pbkdf2};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, InnerIvInit, KeyIvInit};
use der::Any;
use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef};
use spki::{AlgorithmIdentifierOwned, AlgorithmIdentifierRef};
use zeroize::Zeroizing;

use super::Pkcs12Error;
use super::asn1::{Pbes2Params, Pbkdf2Params, Pkcs12PbeParams};
use crate::oid;
use crate::pki::keys::HashAlgorithm;

/// The most iterations one key derivation may ask for. OpenSSL and Windows use about 2,000,
/// Java 10,000, the most cautious exporters a few hundred thousand; ten million already costs
/// seconds, and a file asking for more is refused rather than allowed to stall the gateway.
pub const MAX_ITERATIONS: u64 = 10_000_000;

/// The most hash-iterations (iterations times output blocks) one file may cost in total, so that
/// a file with many encrypted parts cannot multiply [`MAX_ITERATIONS`].
pub const MAX_TOTAL_WORK: u64 = 4 * MAX_ITERATIONS;

/// Counts the key-derivation work spent on one file.
#[derive(Default)]
pub(super) struct Budget {
    spent: u64,
}

impl Budget {
    /// Records a derivation of `iterations` rounds producing `blocks` hash outputs, refusing it
    /// before any work is done if it is over a limit.
    fn charge(&mut self, iterations: u64, blocks: usize) -> Result<NonZeroU32, Pkcs12Error> {
        if iterations > MAX_ITERATIONS {
            return Err(Pkcs12Error::IterationCountTooHigh {
                iterations,
                limit: MAX_ITERATIONS,
            });
        }
        let n = u32::try_from(iterations)
            .ok()
            .and_then(NonZeroU32::new)
            .ok_or_else(|| Pkcs12Error::Malformed("an iteration count of zero".into()))?;
        let cost = iterations.saturating_mul(blocks.max(1) as u64);
        self.spent = self.spent.saturating_add(cost);
        if self.spent > MAX_TOTAL_WORK {
            return Err(Pkcs12Error::TooMuchWork {
                limit: MAX_TOTAL_WORK,
            });
        }
        Ok(n)
    }
}

/// The password in both encodings PKCS #12 uses.
pub(super) struct Password<'p> {
    /// As typed: the PBES2 / PBKDF2 password.
    pub(super) utf8: &'p str,
    /// BMPString with two trailing zero bytes (RFC 7292 appendix B.1): the PKCS #12 KDF password.
    pub(super) bmp: Zeroizing<Vec<u8>>,
}

impl<'p> Password<'p> {
    pub(super) fn new(password: &'p str) -> Self {
        Self {
            utf8: password,
            bmp: bmp_password(password),
        }
    }

    /// The PKCS #12 KDF encodings worth trying for this password. An empty password is also
    /// tried as zero bytes, without the terminator: OpenSSL writes files that way when given no
    /// password at all, and tries both forms itself when reading.
    pub(super) fn bmp_candidates(&self) -> Vec<Zeroizing<Vec<u8>>> {
        let mut v = vec![self.bmp.clone()];
        if self.utf8.is_empty() {
            v.push(Zeroizing::new(Vec::new()));
        }
        v
    }
}

/// UTF-16 big-endian with a two-byte terminator. Characters outside the BMP become surrogate
/// pairs, as OpenSSL encodes them.
fn bmp_password(password: &str) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(password.len() * 2 + 2));
    for unit in password.encode_utf16() {
        out.extend_from_slice(&unit.to_be_bytes());
    }
    out.extend_from_slice(&[0, 0]);
    out
}

/// The hash function's input block size `v` (RFC 7292 appendix B.2).
fn block_len(h: HashAlgorithm) -> usize {
    match h {
        HashAlgorithm::Sha1 | HashAlgorithm::Sha256 => 64,
        HashAlgorithm::Sha384 | HashAlgorithm::Sha512 => 128,
    }
}

/// Number of hash outputs the PKCS #12 KDF computes for `out_len` bytes.
fn kdf_blocks(h: HashAlgorithm, out_len: usize) -> usize {
    out_len.div_ceil(h.len())
}

/// The PKCS #12 key derivation function, RFC 7292 appendix B.2.
fn pkcs12_kdf(
    hash: HashAlgorithm,
    password: &[u8],
    salt: &[u8],
    id: u8,
    iterations: NonZeroU32,
    out_len: usize,
) -> Zeroizing<Vec<u8>> {
    let u = hash.len();
    let v = block_len(hash);
    // Steps 1-4: D = ID repeated, I = S || P with S and P stretched to multiples of v.
    let diversifier = vec![id; v];
    let stretch = |src: &[u8]| -> Zeroizing<Vec<u8>> {
        if src.is_empty() {
            return Zeroizing::new(Vec::new());
        }
        let n = v * src.len().div_ceil(v);
        Zeroizing::new(src.iter().copied().cycle().take(n).collect())
    };
    let mut i_buf = stretch(salt);
    i_buf.extend_from_slice(&stretch(password));

    let mut out = Zeroizing::new(Vec::with_capacity(out_len));
    let mut a = Zeroizing::new(vec![0u8; u]);
    loop {
        // Step 6a: A = H^r(D || I).
        let mut ctx = digest::Context::new(hash.aws());
        ctx.update(&diversifier);
        ctx.update(&i_buf);
        a.copy_from_slice(ctx.finish().as_ref());
        for _ in 1..iterations.get() {
            let next = digest::digest(hash.aws(), &a);
            a.copy_from_slice(next.as_ref());
        }
        let take = u.min(out_len - out.len());
        out.extend_from_slice(&a[..take]);
        if out.len() == out_len {
            return out;
        }
        // Steps 6b-6c: B = A stretched to v bytes; every v-byte block of I becomes I_j + B + 1.
        let b: Zeroizing<Vec<u8>> = Zeroizing::new(a.iter().copied().cycle().take(v).collect());
        for block in i_buf.chunks_mut(v) {
            let mut carry = 1u16;
            for (x, y) in block.iter_mut().zip(b.iter()).rev() {
                let sum = u16::from(*x) + u16::from(*y) + carry;
                *x = sum as u8;
                carry = sum >> 8;
            }
        }
    }
}

fn hmac_algorithm(h: HashAlgorithm) -> hmac::Algorithm {
    match h {
        HashAlgorithm::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        HashAlgorithm::Sha256 => hmac::HMAC_SHA256,
        HashAlgorithm::Sha384 => hmac::HMAC_SHA384,
        HashAlgorithm::Sha512 => hmac::HMAC_SHA512,
    }
}

/// The MAC over the authenticated safe (RFC 7292 section 5.1 and appendix B.3 / B.4): HMAC keyed
/// with the PKCS #12 KDF, ID 3, key length = the hash's output length.
fn mac_key(
    hash: HashAlgorithm,
    bmp_password: &[u8],
    salt: &[u8],
    iterations: NonZeroU32,
) -> hmac::Key {
    let key = pkcs12_kdf(hash, bmp_password, salt, 3, iterations, hash.len());
    hmac::Key::new(hmac_algorithm(hash), &key)
}

/// Verifies a PFX MAC in constant time, returning the password encoding that matched.
pub(super) fn verify_mac(
    hash: HashAlgorithm,
    password: &Password<'_>,
    salt: &[u8],
    iterations: u64,
    data: &[u8],
    expected: &[u8],
    budget: &mut Budget,
) -> Result<Zeroizing<Vec<u8>>, Pkcs12Error> {
    if expected.len() != hash.len() {
        return Err(Pkcs12Error::Malformed(format!(
            "a {}-byte MAC where {:?} gives {} bytes",
            expected.len(),
            hash,
            hash.len()
        )));
    }
    for candidate in password.bmp_candidates() {
        let n = budget.charge(iterations, kdf_blocks(hash, hash.len()))?;
        let key = mac_key(hash, &candidate, salt, n);
        if hmac::verify(&key, data, expected).is_ok() {
            return Ok(candidate);
        }
    }
    Err(Pkcs12Error::WrongPassword)
}

/// Computes a PFX MAC (for building).
pub(super) fn compute_mac(
    hash: HashAlgorithm,
    password: &Password<'_>,
    salt: &[u8],
    iterations: NonZeroU32,
    data: &[u8],
) -> Vec<u8> {
    let key = mac_key(hash, &password.bmp, salt, iterations);
    hmac::sign(&key, data).as_ref().to_vec()
}

/// The block ciphers (all in CBC mode with PKCS #7 padding) that PKCS #12 files use.
#[derive(Clone, Copy)]
enum Cipher {
    Aes128,
    Aes192,
    Aes256,
    TripleDes,
    /// RC2 with the given effective key length in bits (RFC 2268 section 2).
    Rc2(usize),
}

impl Cipher {
    fn block_len(self) -> usize {
        match self {
            Self::Aes128 | Self::Aes192 | Self::Aes256 => 16,
            Self::TripleDes | Self::Rc2(_) => 8,
        }
    }
}

/// Decrypts CBC with PKCS #7 padding into a zeroizing buffer. A padding failure is
/// [`Pkcs12Error::DecryptionFailed`]: the MAC has already vouched for the password, so it means
/// the part was encrypted under some other password or damaged before the MAC was computed.
fn cbc_decrypt(
    cipher: Cipher,
    key: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Pkcs12Error> {
    let bl = cipher.block_len();
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(bl) {
        return Err(Pkcs12Error::Malformed(format!(
            "encrypted content of {} bytes, not a whole number of {bl}-byte blocks",
            ciphertext.len()
        )));
    }
    if iv.len() != bl {
        return Err(Pkcs12Error::Malformed(format!(
            "a {}-byte IV for a cipher with {bl}-byte blocks",
            iv.len()
        )));
    }
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let bad_key = || Pkcs12Error::Malformed("a key of the wrong length for its cipher".into());
    let len = match cipher {
        Cipher::Aes128 | Cipher::Aes192 | Cipher::Aes256 => {
            let alg = match cipher {
                Cipher::Aes128 => &AES_128,
                Cipher::Aes192 => &AES_192,
                _ => &AES_256,
            };
            let iv: [u8; 16] = iv.try_into().map_err(|_| bad_key())?;
            let k = UnboundCipherKey::new(alg, key).map_err(|_| bad_key())?;
            let dk = PaddedBlockDecryptingKey::cbc_pkcs7(k).map_err(|_| bad_key())?;
            dk.decrypt(&mut buf, DecryptionContext::Iv128(FixedLength::from(iv)))
                .map_err(|_| Pkcs12Error::DecryptionFailed)?
                .len()
        }
        Cipher::TripleDes => cbc::Decryptor::<des::TdesEde3>::new_from_slices(key, iv)
            .map_err(|_| bad_key())?
            .decrypt_padded::<Pkcs7>(&mut buf)
            .map_err(|_| Pkcs12Error::DecryptionFailed)?
            .len(),
        Cipher::Rc2(bits) => {
            let rc2 = rc2::Rc2::new_with_eff_key_len(key, bits);
            cbc::Decryptor::<rc2::Rc2>::inner_iv_slice_init(rc2, iv)
                .map_err(|_| bad_key())?
                .decrypt_padded::<Pkcs7>(&mut buf)
                .map_err(|_| Pkcs12Error::DecryptionFailed)?
                .len()
        }
    };
    buf.truncate(len);
    Ok(buf)
}

/// Whether `alg` is one of the RFC 7292 appendix C PBEs (SHA-1 KDF with 3DES or RC2).
pub(super) fn is_legacy(alg: &ObjectIdentifier) -> bool {
    [
        oid::PBE_SHA1_3DES,
        oid::PBE_SHA1_RC2_128,
        oid::PBE_SHA1_RC2_40,
    ]
    .contains(alg)
}

fn params<'a, T: der::DecodeValue<'a, Error = der::Error> + der::FixedTag + 'a>(
    alg: &AlgorithmIdentifierRef<'a>,
    what: &str,
) -> Result<T, Pkcs12Error> {
    alg.parameters
        .ok_or_else(|| Pkcs12Error::Malformed(format!("{what} without parameters")))?
        .decode_as::<T>()
        .map_err(|e| Pkcs12Error::Malformed(format!("{what} parameters: {e}")))
}

/// Decrypts one encrypted part (a shrouded key or an `EncryptedContentInfo`) with whichever
/// supported scheme `alg` names.
pub(super) fn decrypt(
    alg: &AlgorithmIdentifierRef<'_>,
    ciphertext: &[u8],
    password: &Password<'_>,
    kdf_password: &[u8],
    budget: &mut Budget,
) -> Result<Zeroizing<Vec<u8>>, Pkcs12Error> {
    if alg.oid == oid::PBES2 {
        return pbes2_decrypt(alg, ciphertext, password.utf8.as_bytes(), budget);
    }
    let (cipher, key_len) = match alg.oid {
        o if o == oid::PBE_SHA1_3DES => (Cipher::TripleDes, 24),
        o if o == oid::PBE_SHA1_RC2_128 => (Cipher::Rc2(128), 16),
        o if o == oid::PBE_SHA1_RC2_40 => (Cipher::Rc2(40), 5),
        other => return Err(Pkcs12Error::UnsupportedAlgorithm(other)),
    };
    let p: Pkcs12PbeParams<'_> = params(alg, "PKCS #12 PBE")?;
    let salt = p.salt.as_bytes();
    let h = HashAlgorithm::Sha1;
    let n = budget.charge(p.iterations, kdf_blocks(h, key_len) + kdf_blocks(h, 8))?;
    let key = pkcs12_kdf(h, kdf_password, salt, 1, n, key_len);
    let iv = pkcs12_kdf(h, kdf_password, salt, 2, n, cipher.block_len());
    cbc_decrypt(cipher, &key, &iv, ciphertext)
}

fn prf_from(alg: Option<&AlgorithmIdentifierRef<'_>>) -> Result<HashAlgorithm, Pkcs12Error> {
    let Some(alg) = alg else {
        return Ok(HashAlgorithm::Sha1);
    };
    Ok(match alg.oid {
        o if o == oid::HMAC_WITH_SHA1 => HashAlgorithm::Sha1,
        o if o == oid::HMAC_WITH_SHA256 => HashAlgorithm::Sha256,
        o if o == oid::HMAC_WITH_SHA384 => HashAlgorithm::Sha384,
        o if o == oid::HMAC_WITH_SHA512 => HashAlgorithm::Sha512,
        other => return Err(Pkcs12Error::UnsupportedAlgorithm(other)),
    })
}

fn pbkdf2_algorithm(h: HashAlgorithm) -> pbkdf2::Algorithm {
    match h {
        HashAlgorithm::Sha1 => pbkdf2::PBKDF2_HMAC_SHA1,
        HashAlgorithm::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
        HashAlgorithm::Sha384 => pbkdf2::PBKDF2_HMAC_SHA384,
        HashAlgorithm::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
    }
}

/// PBES2 decryption, RFC 8018 section 6.2.2, with PBKDF2 (section 5.2) as the only KDF.
fn pbes2_decrypt(
    alg: &AlgorithmIdentifierRef<'_>,
    ciphertext: &[u8],
    password: &[u8],
    budget: &mut Budget,
) -> Result<Zeroizing<Vec<u8>>, Pkcs12Error> {
    let p: Pbes2Params<'_> = params(alg, "PBES2")?;
    let kdf = &p.key_derivation_func;
    if kdf.oid != oid::PBKDF2 {
        return Err(Pkcs12Error::UnsupportedAlgorithm(kdf.oid));
    }
    let kp: Pbkdf2Params<'_> = params(kdf, "PBKDF2")?;
    let prf = prf_from(kp.prf.as_ref())?;
    let enc = &p.encryption_scheme;
    let (cipher, key_len) = match enc.oid {
        o if o == oid::AES128_CBC => (Cipher::Aes128, 16),
        o if o == oid::AES192_CBC => (Cipher::Aes192, 24),
        o if o == oid::AES256_CBC => (Cipher::Aes256, 32),
        o if o == oid::DES_EDE3_CBC => (Cipher::TripleDes, 24),
        other => return Err(Pkcs12Error::UnsupportedAlgorithm(other)),
    };
    if let Some(kl) = kp.key_length
        && usize::from(kl) != key_len
    {
        return Err(Pkcs12Error::Malformed(format!(
            "PBKDF2 key length {kl} for a cipher with {key_len}-byte keys"
        )));
    }
    let iv: &OctetStringRef = params(enc, "PBES2 cipher")?;
    let n = budget.charge(kp.iteration_count, key_len.div_ceil(prf.len()))?;
    let mut key = Zeroizing::new(vec![0u8; key_len]);
    pbkdf2::derive(
        pbkdf2_algorithm(prf),
        n,
        kp.salt.as_bytes(),
        password,
        &mut key,
    );
    cbc_decrypt(cipher, &key, iv.as_bytes(), ciphertext)
}

/// How [`pbes2_encrypt`] names its PRF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Prf {
    /// hmacWithSHA256, written out (OpenSSL 3's default).
    HmacSha256,
    /// The field left out, which RFC 8018 appendix A.2 defines as hmacWithSHA1 (OpenSSL 1.1's
    /// default, and the only form GnuPG 2.2's gpgsm reads).
    DefaultSha1,
}

/// The PBES2 parameters [`pbes2_encrypt`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Pbes2Scheme {
    pub(super) prf: Prf,
    /// AES key length in bytes: 16 or 32.
    pub(super) aes_key_len: usize,
    pub(super) salt_len: usize,
    pub(super) iterations: NonZeroU32,
}

/// Fills `buf` from the system's secure random generator.
pub(super) fn random(buf: &mut [u8]) -> Result<(), Pkcs12Error> {
    aws_lc_rs::rand::fill(buf).map_err(|_| Pkcs12Error::Crypto("random number generation"))
}

fn encoding_failed(_: der::Error) -> Pkcs12Error {
    Pkcs12Error::Crypto("DER encoding")
}

/// PBES2 encryption with PBKDF2 and AES-CBC, a fresh salt and a fresh IV (RFC 8018 section 6.2.1). Returns the algorithm identifier to store next to the ciphertext.
pub(super) fn pbes2_encrypt(
    plaintext: &[u8],
    password: &str,
    scheme: Pbes2Scheme,
) -> Result<(AlgorithmIdentifierOwned, Vec<u8>), Pkcs12Error> {
    let Pbes2Scheme {
        prf,
        aes_key_len,
        salt_len,
        iterations,
    } = scheme;
    let (aes, aes_oid) = match aes_key_len {
        16 => (&AES_128, oid::AES128_CBC),
        32 => (&AES_256, oid::AES256_CBC),
        _ => return Err(Pkcs12Error::Crypto("unsupported AES key length")),
    };
    let mut salt = vec![0u8; salt_len];
    random(&mut salt)?;
    let mut iv = [0u8; 16];
    random(&mut iv)?;

    let (hash, prf_id) = match prf {
        Prf::HmacSha256 => (
            HashAlgorithm::Sha256,
            Some(AlgorithmIdentifierRef {
                oid: oid::HMAC_WITH_SHA256,
                parameters: Some(AnyRef::NULL),
            }),
        ),
        Prf::DefaultSha1 => (HashAlgorithm::Sha1, None),
    };
    let mut key = Zeroizing::new([0u8; 32]);
    pbkdf2::derive(
        pbkdf2_algorithm(hash),
        iterations,
        &salt,
        password.as_bytes(),
        &mut key[..aes_key_len],
    );

    // Pad and encrypt in place; the capacity leaves room for the padding so the plaintext is
    // never left behind in a freed allocation.
    let mut buf = Zeroizing::new(Vec::with_capacity(plaintext.len() + 16));
    buf.extend_from_slice(plaintext);
    let cipher_failed = |_| Pkcs12Error::Crypto("AES-CBC encryption");
    let k = UnboundCipherKey::new(aes, &key[..aes_key_len]).map_err(cipher_failed)?;
    PaddedBlockEncryptingKey::cbc_pkcs7(k)
        .map_err(cipher_failed)?
        .less_safe_encrypt(&mut *buf, EncryptionContext::Iv128(FixedLength::from(iv)))
        .map_err(cipher_failed)?;
    let ciphertext = std::mem::take(&mut *buf);

    let kdf_params = Pbkdf2Params {
        salt: OctetStringRef::new(&salt).map_err(encoding_failed)?,
        iteration_count: u64::from(iterations.get()),
        key_length: None,
        prf: prf_id,
    };
    let kdf_params = Any::encode_from(&kdf_params).map_err(encoding_failed)?;
    let iv_param = Any::encode_from(&OctetStringRef::new(&iv).map_err(encoding_failed)?)
        .map_err(encoding_failed)?;
    let pbes2 = Pbes2Params {
        key_derivation_func: AlgorithmIdentifierRef {
            oid: oid::PBKDF2,
            parameters: Some(kdf_params.to_ref()),
        },
        encryption_scheme: AlgorithmIdentifierRef {
            oid: aes_oid,
            parameters: Some(iv_param.to_ref()),
        },
    };
    let alg = AlgorithmIdentifierOwned {
        oid: oid::PBES2,
        parameters: Some(Any::encode_from(&pbes2).map_err(encoding_failed)?),
    };
    Ok((alg, ciphertext))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7292 gives no test vectors. This one (password "smeg", salt 0A58CF64530D823F, SHA-1)
    /// circulates in several implementations' test suites; OpenSSL 3.0's PKCS12KDF agrees.
    #[test]
    fn pkcs12_kdf_known_answers() {
        let pw = bmp_password("smeg");
        let salt = hex::decode("0A58CF64530D823F").unwrap();
        let one = NonZeroU32::new(1).unwrap();
        let key = pkcs12_kdf(HashAlgorithm::Sha1, &pw, &salt, 1, one, 24);
        assert_eq!(
            hex::encode_upper(&*key),
            "8AAAE6297B6CB04642AB5B077851284EB7128F1A2A7FBCA3"
        );
        let iv = pkcs12_kdf(HashAlgorithm::Sha1, &pw, &salt, 2, one, 8);
        assert_eq!(hex::encode_upper(&*iv), "79993DFE048D3B76");
    }

    /// Several output blocks, the 128-byte block of SHA-512, an empty password (no P at all).
    /// Expected values from OpenSSL 3.0's PKCS12KDF (`openssl kdf ... PKCS12KDF`).
    #[test]
    fn pkcs12_kdf_matches_openssl_for_sha2() {
        let k = pkcs12_kdf(
            HashAlgorithm::Sha512,
            &bmp_password("queeg"),
            &hex::decode("05DEC959ACFF72F7").unwrap(),
            3,
            NonZeroU32::new(1000).unwrap(),
            100,
        );
        assert_eq!(
            hex::encode_upper(&*k),
            "B2587204C6CBDA975C143740C4D3309850AC282BF83FB0E44F0FB90F2F76AE37ED6F81CFE5B0709A\
             7920BC5DEE028715C7E18DD0DA540D7BAF112A4A7F08878B3147A66D211A2DA922123F1D4BA1DF0A\
             7FEAD9C9B1F18CFCA8BDA6E10604A9D78D1A1B95"
        );
        let k = pkcs12_kdf(
            HashAlgorithm::Sha256,
            &[],
            &hex::decode("05DEC959ACFF72F70001").unwrap(),
            1,
            NonZeroU32::new(3).unwrap(),
            100,
        );
        assert_eq!(
            hex::encode_upper(&*k),
            "B94B60FE169AF817FA666A4CD0980E7A2DFDFF9C56610A264EADA666971E8251EB7B0C0A3146AD61\
             3DED7E247AFF571E823221F84989774059BFE59987A094F1BDCB8E045E93F1B9C70B7AE51AEB5065\
             D0AA8F3C50ADC7D0E1A8193CD4B69192A8ED781A"
        );
    }

    #[test]
    fn budget_refuses_before_working() {
        let mut b = Budget::default();
        assert!(matches!(
            b.charge(MAX_ITERATIONS + 1, 1),
            Err(Pkcs12Error::IterationCountTooHigh { .. })
        ));
        assert!(matches!(b.charge(0, 1), Err(Pkcs12Error::Malformed(_))));
        for _ in 0..4 {
            b.charge(MAX_ITERATIONS, 1).unwrap();
        }
        assert!(matches!(
            b.charge(1, 1),
            Err(Pkcs12Error::TooMuchWork { .. })
        ));
    }
}
