//! In-process throughput of the S/MIME hot path (`smimegw bench`, and `benches/hot_path.rs`).
//!
//! Everything is throwaway and in memory: a root CA, a sender with a signing certificate and
//! `recipients` recipients with encryption certificates, all issued by that CA. Each operation
//! runs single-threaded, back to back, for a time budget, on a synthetic message of the requested
//! size; verification uses a warm [`ChainCache`], as the gateway does. MB/s are 10^6 bytes of
//! input message per second.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::pki::Cert;
use crate::pki::ca::{Ca, CaError};
use crate::pki::keys::{KeyAlgorithm, KeyError, PrivateKey};
use crate::pki::online::{Checker, PathRevocation};
use crate::pki::path::{AnchorKind, ChainCache, Query, TrustAnchor, TrustContext, Usage};
use crate::pki::profile::{self, CertificateParams, ProfileError};
use crate::pki::revocation::Crl;
use crate::smime::enveloped::{ContentCipher, Recipient, RecipientIdKind};
use crate::smime::message::{self, SmimeError, TrustInput};
use crate::smime::signed::{self, SignOptions, Signer};

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A size argument could not be read.
    #[error("bad size '{0}' (expected e.g. 1KiB, 10KiB, 1MiB, 10MiB or a number of bytes)")]
    Size(String),
    /// Setting up the throwaway PKI failed.
    #[error("setting up the throwaway PKI: {0}")]
    Pki(String),
    /// An S/MIME operation failed.
    #[error("{op}: {source}")]
    Smime {
        /// The operation.
        op: &'static str,
        /// What went wrong.
        source: SmimeError,
    },
    /// A verification did not come out valid.
    #[error("{0}: the signature did not verify as valid")]
    NotValid(&'static str),
    /// A ceiling measurement failed.
    #[error("ceiling: {0}")]
    Ceiling(&'static str),
}

impl From<CaError> for BenchError {
    fn from(e: CaError) -> Self {
        Self::Pki(e.to_string())
    }
}
impl From<ProfileError> for BenchError {
    fn from(e: ProfileError) -> Self {
        Self::Pki(e.to_string())
    }
}
impl From<KeyError> for BenchError {
    fn from(e: KeyError) -> Self {
        Self::Pki(e.to_string())
    }
}

/// Parses sizes such as `1KiB`, `10KiB`, `1MiB`, `10MiB`, `100KB`, `512` (bytes). KiB/MiB (and
/// the K/M/KB/MB shorthands) are powers of 1024.
pub fn parse_size(s: &str) -> Result<usize, BenchError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().map_err(|_| BenchError::Size(s.to_string()))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        _ => return Err(BenchError::Size(s.to_string())),
    };
    match n.checked_mul(mult) {
        Some(v) if v > 0 => Ok(v),
        _ => Err(BenchError::Size(s.to_string())),
    }
}

/// Formats a byte count the way [`parse_size`] reads it (`10KiB`, `1MiB`, or bytes).
pub fn format_size(n: usize) -> String {
    if n >= 1024 * 1024 && n.is_multiple_of(1024 * 1024) {
        format!("{}MiB", n / (1024 * 1024))
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{}KiB", n / 1024)
    } else {
        format!("{n}B")
    }
}

/// A table cell for a size that not every row has (path validation has none): `-` for 0.
pub fn size_cell(n: usize) -> String {
    if n == 0 { "-".into() } else { format_size(n) }
}

/// A table cell for a recipient count that not every row has: `-` for 0.
pub fn count_cell(n: usize) -> String {
    if n == 0 { "-".into() } else { n.to_string() }
}

/// The sender's address in the synthetic messages.
pub const SENDER: &str = "sender@bench.test";

/// A plain-text RFC 5322 message of exactly `size` bytes (headers included; CRLF line ends,
/// 7-bit, lines of at most 78 characters), from [`SENDER`] to the first recipient. Messages too
/// small for the headers come out as the headers alone.
pub fn synthetic_message(size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Bench Sender <{SENDER}>\r\nTo: rcpt0@bench.test\r\nSubject: smimegw bench\r\n\
         Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <bench@bench.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    )
    .into_bytes();
    const LINE: &[u8] =
        b"The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs.";
    let mut i = 0usize;
    while m.len() + 2 < size {
        let room = size - m.len() - 2;
        let start = i % 7;
        let take = room.min(LINE.len() - start);
        m.extend_from_slice(&LINE[start..start + take]);
        m.extend_from_slice(b"\r\n");
        i += 1;
    }
    // One or two bytes short: lengthen the last line rather than end without CRLF.
    if m.len() < size {
        let at = m.len() - 2;
        let pad = size - m.len();
        m.splice(at..at, std::iter::repeat_n(b'.', pad));
    }
    m
}

/// A throwaway PKI and the keys the hot path needs, all in memory.
pub struct Fixture {
    /// Key type of every key (CA, sender, recipients).
    pub key: KeyAlgorithm,
    /// The root CA.
    pub ca: Ca,
    /// Sender signing certificate and key.
    pub sender: (Cert, PrivateKey),
    /// Recipients' encryption certificates and keys.
    pub recipients: Vec<(Cert, PrivateKey)>,
    /// Trust context with the CA as the only anchor.
    pub trust: TrustContext,
    /// Validated-chain cache (warm after the first verification).
    pub cache: ChainCache,
    /// The content cipher used for encryption.
    pub cipher: ContentCipher,
    /// The same CA as a trusted (not own) root with its CRL, so that every verification asks
    /// the revocation checker, as for a correspondent's certificate.
    pub trust_rev: TrustContext,
    /// Validated-chain cache for `trust_rev`.
    pub cache_rev: ChainCache,
    /// The revocation checker (no fetching: the CRL is in `trust_rev`).
    pub revocation: Checker,
}

impl Fixture {
    /// Generates the CA, the sender and `recipients` recipients (at least one).
    pub fn new(
        key: KeyAlgorithm,
        recipients: usize,
        cipher: ContentCipher,
    ) -> Result<Self, BenchError> {
        let ca = Ca::new_root("smimegw bench CA", key, 30)?;
        let sender_key = PrivateKey::generate(key)?;
        let sender_cert = ca.issue(
            &CertificateParams::smime_signing(
                SENDER,
                profile::simple_name("Bench Sender", None)?,
                30,
            ),
            &sender_key.spki(),
        )?;
        let mut rcpts = Vec::new();
        for i in 0..recipients.max(1) {
            let k = PrivateKey::generate(key)?;
            let email = format!("rcpt{i}@bench.test");
            let c = ca.issue(
                &CertificateParams::smime_encryption(
                    &email,
                    profile::simple_name(&format!("Recipient {i}"), None)?,
                    30,
                    key,
                ),
                &k.spki(),
            )?;
            rcpts.push((c, k));
        }
        let trust = TrustContext {
            anchors: vec![TrustAnchor {
                cert: ca.cert().clone(),
                kind: AnchorKind::OwnRoot,
                label: "bench".into(),
            }],
            ..TrustContext::default()
        };
        let crl = Crl::from_der(&ca.build_crl(&[], 1, 7)?)
            .map_err(|e| BenchError::Pki(format!("bench CRL: {e}")))?;
        let trust_rev = TrustContext {
            anchors: vec![TrustAnchor {
                cert: ca.cert().clone(),
                kind: AnchorKind::TrustedRoot,
                label: "bench (trusted root)".into(),
            }],
            crls: vec![crl],
            ..TrustContext::default()
        };
        Ok(Self {
            key,
            ca,
            sender: (sender_cert, sender_key),
            recipients: rcpts,
            trust,
            cache: ChainCache::default(),
            cipher,
            trust_rev,
            cache_rev: ChainCache::default(),
            revocation: Checker::new(false, false, Duration::from_secs(1)),
        })
    }

    /// Detached signature (multipart/signed), as the gateway signs.
    pub fn sign(&self, raw: &[u8]) -> Result<Vec<u8>, BenchError> {
        let signers = [Signer {
            cert: &self.sender.0,
            key: &self.sender.1,
            chain: &[],
            encryption_cert: None,
        }];
        message::sign(raw, &signers, false, &SignOptions::default())
            .map_err(|source| BenchError::Smime { op: "sign", source })
    }

    /// Verifies against the throwaway CA (warm chain cache); fails unless every signature is valid.
    pub fn verify(&self, raw: &[u8]) -> Result<Vec<u8>, BenchError> {
        let trust = TrustInput {
            ctx: &self.trust,
            cache: Some(&self.cache),
            generation: 1,
            now: profile::now(),
        };
        let v = message::verify(raw, &trust, None).map_err(|source| BenchError::Smime {
            op: "verify",
            source,
        })?;
        if !signed::all_valid(&v.reports) {
            return Err(BenchError::NotValid("verify"));
        }
        Ok(v.message)
    }

    /// [`Fixture::verify`] followed by the gateway's revocation step on the signer's path
    /// (warm chain cache, the CRL already at hand); fails unless the path is found not revoked.
    pub fn verify_revocation(&self, raw: &[u8]) -> Result<Vec<u8>, BenchError> {
        let now = profile::now();
        let trust = TrustInput {
            ctx: &self.trust_rev,
            cache: Some(&self.cache_rev),
            generation: 1,
            now,
        };
        let v = message::verify(raw, &trust, None).map_err(|source| BenchError::Smime {
            op: "verify+revocation",
            source,
        })?;
        if !signed::all_valid(&v.reports) {
            return Err(BenchError::NotValid("verify+revocation"));
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        for r in &v.reports {
            let path = r
                .path
                .as_ref()
                .ok_or(BenchError::NotValid("verify+revocation"))?;
            let status = self.revocation.check(&self.trust_rev, path, now, deadline);
            if !matches!(status, PathRevocation::Checked { .. }) {
                return Err(BenchError::Pki(format!(
                    "revocation: {}",
                    status.describe(now)
                )));
            }
        }
        Ok(v.message)
    }

    /// Encrypts to every recipient with the fixture's cipher.
    pub fn encrypt(&self, raw: &[u8]) -> Result<Vec<u8>, BenchError> {
        self.encrypt_to(raw, self.recipients.len(), self.cipher)
    }

    /// Encrypts to the first `n` recipients (at least one) with `cipher`, so that one fixture
    /// (whose keys are slow to generate) serves every recipient count and cipher of a grid.
    pub fn encrypt_to(
        &self,
        raw: &[u8],
        n: usize,
        cipher: ContentCipher,
    ) -> Result<Vec<u8>, BenchError> {
        let recipients: Vec<Recipient<'_>> = self
            .recipients
            .iter()
            .take(n.max(1))
            .map(|(c, _)| Recipient {
                cert: c,
                oaep: false,
                id: RecipientIdKind::IssuerAndSerial,
            })
            .collect();
        message::encrypt(raw, &recipients, cipher).map_err(|source| BenchError::Smime {
            op: "encrypt",
            source,
        })
    }

    /// [`Self::sign`], then [`Self::encrypt_to`].
    pub fn sign_encrypt_to(
        &self,
        raw: &[u8],
        n: usize,
        cipher: ContentCipher,
    ) -> Result<Vec<u8>, BenchError> {
        self.encrypt_to(&self.sign(raw)?, n, cipher)
    }

    /// Validates the sender's signing certificate (a two-certificate path: leaf and root), as
    /// verification does. `warm` asks the fixture's cache, which answers from memory after the
    /// first call; cold asks a fresh cache every time, as for the first message of a sender (or
    /// of the hour).
    pub fn validate_path(&self, warm: bool) -> Result<(), BenchError> {
        let untrusted = std::slice::from_ref(&self.sender.0);
        let q = Query {
            leaf: &self.sender.0,
            untrusted,
            at: profile::now(),
            email: None,
            usage: Some(Usage::Signing),
        };
        let fresh;
        let cache = if warm {
            &self.cache
        } else {
            fresh = ChainCache::new(16);
            &fresh
        };
        cache
            .validate(&self.trust, 1, &q)
            .map(drop)
            .map_err(|e| BenchError::Pki(format!("path validation: {e}")))
    }

    /// Decrypts with the first recipient's key.
    pub fn decrypt(&self, raw: &[u8]) -> Result<Vec<u8>, BenchError> {
        message::decrypt(raw, &self.recipients[..1])
            .map(|d| d.message)
            .map_err(|source| BenchError::Smime {
                op: "decrypt",
                source,
            })
    }

    /// Sign, then encrypt the signed message (what the gateway does outbound).
    pub fn sign_encrypt(&self, raw: &[u8]) -> Result<Vec<u8>, BenchError> {
        self.encrypt(&self.sign(raw)?)
    }

    /// Decrypt, then verify the inner signed message (what the gateway does inbound).
    pub fn decrypt_verify(&self, raw: &[u8]) -> Result<Vec<u8>, BenchError> {
        self.verify(&self.decrypt(raw)?)
    }
}

/// One measured figure: an S/MIME operation, or an aws-lc-rs ceiling (`op` starts `ceiling-`).
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// `sign`, `verify`, `encrypt`, `decrypt`, `sign+encrypt`, `decrypt+verify`, `path-cold`,
    /// `path-warm`, or `ceiling-rsa-private`, `ceiling-ecdsa-sign`, `ceiling-aes256-gcm`,
    /// `ceiling-aes256-cbc`, `ceiling-aes256-cbc-decrypt`.
    pub op: String,
    /// Input size in bytes (0 for path validation and the asymmetric ceilings).
    pub size: usize,
    /// Key type (`rsa2048`...), or the cipher for the AES ceilings.
    pub key: String,
    /// Number of recipients (0 for path validation and the ceilings).
    pub recipients: usize,
    /// Content cipher of the S/MIME operations (empty for path validation and the asymmetric
    /// ceilings).
    pub cipher: String,
    /// Operations per second (messages, private-key operations, or buffers).
    pub msgs_per_s: f64,
    /// Input megabytes (10^6 bytes) per second; `None` for path validation and the asymmetric
    /// ceilings.
    pub mb_per_s: Option<f64>,
    /// How many times the operation ran.
    pub iterations: u64,
}

/// Runs `op` back to back until `budget` has passed (at least once); returns iterations and the
/// time they took.
pub fn time_loop<E>(
    budget: Duration,
    mut op: impl FnMut() -> Result<(), E>,
) -> Result<(u64, Duration), E> {
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        op()?;
        n += 1;
        let el = start.elapsed();
        if el >= budget {
            return Ok((n, el));
        }
    }
}

/// What `smimegw bench` measures.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Message size in bytes.
    pub size: usize,
    /// Number of recipients.
    pub recipients: usize,
    /// Total time for the six S/MIME operations, verification with revocation and the two path
    /// validations (each gets a ninth); the ceilings take a quarter of it on top.
    pub seconds: f64,
    /// Key type.
    pub key: KeyAlgorithm,
    /// Content cipher.
    pub cipher: ContentCipher,
}

/// The six hot-path operations, in the order they are measured.
pub const OPS: [&str; 6] = [
    "sign",
    "verify",
    "encrypt",
    "decrypt",
    "sign+encrypt",
    "decrypt+verify",
];

/// Verification followed by the revocation step, from a warm cache (see
/// [`Fixture::verify_revocation`]), measured after [`OPS`].
pub const REVOCATION_OPS: [&str; 1] = ["verify+revocation"];

/// Path validation of the signer's certificate with a cold and a warm [`ChainCache`] (see
/// [`Fixture::validate_path`]), measured after [`OPS`]; their rows have size 0.
pub const PATH_OPS: [&str; 2] = ["path-cold", "path-warm"];

/// Measures the six operations, then path validation with a cold and a warm chain cache.
/// `progress` gets a line before and after each.
pub fn run(
    opts: &BenchOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Measurement>, BenchError> {
    progress(&format!(
        "generating throwaway {} CA, sender and {} recipient(s)...",
        opts.key,
        opts.recipients.max(1)
    ));
    let fx = Fixture::new(opts.key, opts.recipients, opts.cipher)?;
    let msg = synthetic_message(opts.size);
    // Inputs for the opening operations, and a check that each round trip gives the message back.
    let signed = fx.sign(&msg)?;
    let encrypted = fx.encrypt(&msg)?;
    let both = fx.sign_encrypt(&msg)?;
    for back in [
        fx.verify(&signed)?,
        fx.decrypt(&encrypted)?,
        fx.decrypt_verify(&both)?,
    ] {
        if back != msg {
            return Err(BenchError::Pki("round trip changed the message".into()));
        }
    }
    let total = OPS.len() + REVOCATION_OPS.len() + PATH_OPS.len();
    let budget = Duration::from_secs_f64((opts.seconds / total as f64).max(0.001));
    let mut out = Vec::new();
    if fx.verify_revocation(&signed)? != msg {
        return Err(BenchError::Pki("round trip changed the message".into()));
    }
    let all = OPS.iter().chain(&REVOCATION_OPS).chain(&PATH_OPS);
    for (i, op) in all.enumerate() {
        let path = PATH_OPS.contains(op);
        progress(&format!(
            "[{}/{total}] {op} {} ...",
            i + 1,
            if path {
                "(sender certificate)".to_string()
            } else {
                format_size(opts.size)
            }
        ));
        let (n, el) = match *op {
            "sign" => time_loop(budget, || fx.sign(&msg).map(drop))?,
            "verify" => time_loop(budget, || fx.verify(&signed).map(drop))?,
            "verify+revocation" => time_loop(budget, || fx.verify_revocation(&signed).map(drop))?,
            "encrypt" => time_loop(budget, || fx.encrypt(&msg).map(drop))?,
            "decrypt" => time_loop(budget, || fx.decrypt(&encrypted).map(drop))?,
            "sign+encrypt" => time_loop(budget, || fx.sign_encrypt(&msg).map(drop))?,
            "decrypt+verify" => time_loop(budget, || fx.decrypt_verify(&both).map(drop))?,
            "path-cold" => time_loop(budget, || fx.validate_path(false))?,
            _ => time_loop(budget, || fx.validate_path(true))?,
        };
        let per_s = n as f64 / el.as_secs_f64();
        out.push(Measurement {
            op: (*op).to_string(),
            size: if path { 0 } else { opts.size },
            key: opts.key.to_string(),
            recipients: if path { 0 } else { fx.recipients.len() },
            cipher: if path {
                String::new()
            } else {
                opts.cipher.to_string()
            },
            msgs_per_s: per_s,
            mb_per_s: (!path).then_some(per_s * opts.size as f64 / 1e6),
            iterations: n,
        });
        progress(&format!("      {per_s:.1} msgs/s ({n} in {el:.2?})"));
    }
    Ok(out)
}

/// Size of the buffer the AES ceilings encrypt.
pub const CEILING_BUFFER: usize = 10 * 1024 * 1024;

/// The aws-lc-rs ceilings on this CPU: private-key operations per second for `key` (RSA
/// signatures, or ECDSA signatures for EC keys), AES-256-GCM and AES-256-CBC encryption and
/// AES-256-CBC decryption throughput on a 10 MiB buffer, each for `budget`. (The decryption
/// copy of the ciphertext into the work buffer is included: a memcpy, small beside AES.)
pub fn ceilings(
    key: KeyAlgorithm,
    budget: Duration,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Measurement>, BenchError> {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    use aws_lc_rs::cipher::{
        AES_256, DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey,
        PaddedBlockEncryptingKey, UnboundCipherKey,
    };

    let mut out = Vec::new();
    let asym_op = if key.is_rsa() {
        "ceiling-rsa-private"
    } else {
        "ceiling-ecdsa-sign"
    };
    progress(&format!("{asym_op} ({key}) ..."));
    let pk = PrivateKey::generate(key)?;
    let alg = pk.default_signature();
    let (n, el) = time_loop(budget, || pk.sign(alg, b"smimegw bench").map(drop))?;
    out.push(Measurement {
        op: asym_op.into(),
        size: 0,
        key: key.to_string(),
        recipients: 0,
        cipher: String::new(),
        msgs_per_s: n as f64 / el.as_secs_f64(),
        mb_per_s: None,
        iterations: n,
    });

    let mut buf = vec![0x5au8; CEILING_BUFFER];
    let key_bytes = [7u8; 32];
    progress("ceiling-aes256-gcm (10MiB buffer) ...");
    let gcm = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &key_bytes).map_err(|_| BenchError::Ceiling("GCM key"))?,
    );
    let mut ctr = 0u64;
    let (n, el) = time_loop(budget, || {
        ctr += 1;
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&ctr.to_be_bytes());
        gcm.seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
            .map(drop)
            .map_err(|_| BenchError::Ceiling("GCM seal"))
    })?;
    out.push(aes_measurement("ceiling-aes256-gcm", "aes256-gcm", n, el));

    progress("ceiling-aes256-cbc (10MiB buffer) ...");
    let cbc = PaddedBlockEncryptingKey::cbc_pkcs7(
        UnboundCipherKey::new(&AES_256, &key_bytes).map_err(|_| BenchError::Ceiling("CBC key"))?,
    )
    .map_err(|_| BenchError::Ceiling("CBC key"))?;
    let (n, el) = time_loop(budget, || {
        buf.truncate(CEILING_BUFFER);
        cbc.encrypt(&mut buf)
            .map(drop)
            .map_err(|_| BenchError::Ceiling("CBC encrypt"))
    })?;
    out.push(aes_measurement("ceiling-aes256-cbc", "aes256-cbc", n, el));

    // CBC decryption runs blocks in parallel and is several times faster than encryption, so
    // the receiving side has its own ceiling.
    progress("ceiling-aes256-cbc-decrypt (10MiB buffer) ...");
    buf.truncate(CEILING_BUFFER);
    let iv = [9u8; 16];
    let enc = PaddedBlockEncryptingKey::cbc_pkcs7(
        UnboundCipherKey::new(&AES_256, &key_bytes).map_err(|_| BenchError::Ceiling("CBC key"))?,
    )
    .map_err(|_| BenchError::Ceiling("CBC key"))?;
    enc.less_safe_encrypt(&mut buf, EncryptionContext::Iv128(iv.into()))
        .map_err(|_| BenchError::Ceiling("CBC encrypt"))?;
    let dec = PaddedBlockDecryptingKey::cbc_pkcs7(
        UnboundCipherKey::new(&AES_256, &key_bytes).map_err(|_| BenchError::Ceiling("CBC key"))?,
    )
    .map_err(|_| BenchError::Ceiling("CBC key"))?;
    let mut work = buf.clone();
    let (n, el) = time_loop(budget, || {
        work.clear();
        work.extend_from_slice(&buf);
        dec.decrypt(&mut work, DecryptionContext::Iv128(iv.into()))
            .map(drop)
            .map_err(|_| BenchError::Ceiling("CBC decrypt"))
    })?;
    out.push(aes_measurement(
        "ceiling-aes256-cbc-decrypt",
        "aes256-cbc",
        n,
        el,
    ));
    Ok(out)
}

fn aes_measurement(op: &str, cipher: &str, n: u64, el: Duration) -> Measurement {
    let per_s = n as f64 / el.as_secs_f64();
    Measurement {
        op: op.into(),
        size: CEILING_BUFFER,
        key: cipher.into(),
        recipients: 0,
        cipher: cipher.into(),
        msgs_per_s: per_s,
        mb_per_s: Some(per_s * CEILING_BUFFER as f64 / 1e6),
        iterations: n,
    }
}

/// The results as a plain-text table.
pub fn table(rows: &[Measurement]) -> String {
    let mut s = format!(
        "{:<26} {:>8} {:>11} {:>10} {:>12} {:>10}\n",
        "op", "size", "key", "recipients", "msgs/s", "MB/s"
    );
    for r in rows {
        let size = size_cell(r.size);
        let rcpt = count_cell(r.recipients);
        let mb = r.mb_per_s.map_or("-".to_string(), |v| format!("{v:.1}"));
        s.push_str(&format!(
            "{:<26} {:>8} {:>11} {:>10} {:>12.1} {:>10}\n",
            r.op, size, r.key, rcpt, r.msgs_per_s, mb
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_format() {
        assert_eq!(parse_size("1KiB").unwrap(), 1024);
        assert_eq!(parse_size("10KiB").unwrap(), 10 * 1024);
        assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_size("10mib").unwrap(), 10 << 20);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert!(parse_size("0").is_err());
        assert!(parse_size("1GiB").is_err());
        assert!(parse_size("KiB").is_err());
        assert_eq!(format_size(10 * 1024), "10KiB");
        assert_eq!(format_size(1 << 20), "1MiB");
        assert_eq!(format_size(1000), "1000B");
    }

    #[test]
    fn synthetic_messages_have_the_exact_size() {
        for size in [1, 200, 300, 1024, 10 * 1024, 100_001] {
            let m = synthetic_message(size);
            assert!(m.len() == size || size < 250, "{size}: {}", m.len());
            assert!(m.is_ascii());
        }
    }
}
