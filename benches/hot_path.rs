//! The S/MIME hot path against OpenSSL in the same run, over the grid of issue 5: sign, verify,
//! encrypt, decrypt, sign+encrypt and decrypt+verify; messages of 1 KiB to 10 MiB; RSA-2048,
//! RSA-3072 and P-256 keys (ECDSA signatures and ECDH key agreement for P-256); 1 and 10
//! recipients; AES-256-CBC (EnvelopedData) and AES-256-GCM (AuthEnvelopedData). Plus path
//! validation of the signer's certificate with a cold and a warm chain cache, and the aws-lc-rs
//! ceilings. Single thread, the same messages and the same keys (exported to OpenSSL as PEM) on
//! both sides; every figure comes with the ratio smimegw/OpenSSL, which holds better than
//! absolute numbers on a noisy machine because the two sides are measured alternately.
//!
//! Both sides do the same MIME work: OpenSSL's CMS (`CMS_sign` detached, `CMS_encrypt`,
//! `CMS_decrypt`, `CMS_verify` against a store holding the CA) with the same multipart/signed and
//! application/pkcs7-mime framing and the same base64 code around it. smimegw verifies with a
//! warm chain cache, as the gateway does; OpenSSL validates the chain every time (its figure in
//! the path rows is `X509_verify_cert`, which has no cache).
//!
//! Sign and verify do not depend on recipients or cipher: their rows carry recipients 0 and an
//! empty cipher, as do the path rows (size 0).
//!
//! `cargo bench --bench hot_path [-- FILTERS]` measures. Filters (each also as an environment
//! variable, arguments win; lists are comma-separated or repeated):
//!
//! - `--size 10KiB,1MiB` (`SMIMEGW_BENCH_SIZE`), `--key rsa2048` (`SMIMEGW_BENCH_KEY`),
//!   `--recipients 1` (`SMIMEGW_BENCH_RECIPIENTS`), `--cipher cbc` (`SMIMEGW_BENCH_CIPHER`),
//!   `--op sign+encrypt` (`SMIMEGW_BENCH_OP`; also `path` for both path rows, and `ceilings`:
//!   with an op filter the aws-lc-rs ceilings run only when it names them),
//! - `--seconds 0.6` (`SMIMEGW_BENCH_SECONDS`): time per side per row, in ten alternating
//!   rounds (each runs at least one operation; the default keeps the whole grid at about a
//!   quarter of an hour on 2 cores),
//! - `--out FILE` (`SMIMEGW_BENCH_OUT`): the JSON-lines file, by default
//!   `<target>/bench/hot_path.jsonl` (one object per row: op, size, key, recipients, cipher,
//!   msgs_per_s, mb_per_s, openssl_msgs_per_s, ratio, iterations; then the ceilings and one object
//!   per target with `target` and `met`). `scripts/plot-bench` draws it.
//!
//! Without `--bench` (as under `cargo test --benches`) or with `SMIMEGW_BENCH_QUICK=1` it runs
//! each configuration once (1 KiB for every key, recipient count and cipher, plus 1 MiB for
//! RSA-2048, 1 recipient, AES-256-CBC), checks both sides open each other's output, and writes
//! `hot_path-quick.jsonl`: a smoke run, not a measurement.

use std::io::Write as _;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::{X509, X509StoreContext};

use smimegw::bench::{Fixture, ceilings, count_cell, parse_size, size_cell, synthetic_message};
use smimegw::mime::{decode_base64, encode_base64_lines};
use smimegw::pki::KeyAlgorithm;
use smimegw::pki::cert::pem_encode;
use smimegw::smime::enveloped::ContentCipher;

/// The first target: at 10 KiB, RSA-2048, 1 recipient, smimegw >= 1.2x OpenSSL.
const TARGET_RATIO: f64 = 1.2;
const TARGET_SIZE: usize = 10 * 1024;
/// The second target: at 10 MiB, >= 0.9x the aws-lc-rs AES ceiling of the cipher.
const TARGET_CEILING: f64 = 0.9;
const CEILING_SIZE: usize = 10 * 1024 * 1024;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
const SIZES: [usize; 5] = [KIB, 10 * KIB, 100 * KIB, MIB, 10 * MIB];
const KEYS: [KeyAlgorithm; 3] = [
    KeyAlgorithm::Rsa2048,
    KeyAlgorithm::Rsa3072,
    KeyAlgorithm::P256,
];
const RECIPIENTS: [usize; 2] = [1, 10];
const CIPHERS: [ContentCipher; 2] = [ContentCipher::Aes256Cbc, ContentCipher::Aes256Gcm];
const OPS: [&str; 9] = [
    "sign",
    "verify",
    "verify+revocation",
    "encrypt",
    "decrypt",
    "sign+encrypt",
    "decrypt+verify",
    "path-cold",
    "path-warm",
];
const DEFAULT_SECONDS: f64 = 0.6;
/// Rounds per row: short alternating slices, so that load from other processes on a shared
/// machine falls on both sides alike (each slice runs at least one operation).
const ROUNDS: u32 = 10;

// ---- OpenSSL's side -------------------------------------------------------------------------

/// The same keys and certificates as the fixture, loaded into OpenSSL from PEM.
struct Ossl {
    signer_cert: X509,
    signer_key: PKey<Private>,
    rcpt_cert: X509,
    rcpt_key: PKey<Private>,
    rcpts: Vec<X509>,
    store: X509Store,
}

fn ossl_cipher(c: ContentCipher) -> Cipher {
    match c {
        ContentCipher::Aes256Gcm => Cipher::aes_256_gcm(),
        _ => Cipher::aes_256_cbc(),
    }
}

impl Ossl {
    fn from_fixture(fx: &Fixture) -> Self {
        let cert = |c: &smimegw::pki::Cert| X509::from_pem(c.to_pem().as_bytes()).unwrap();
        let key = |k: &smimegw::pki::PrivateKey| {
            PKey::private_key_from_pem(pem_encode("PRIVATE KEY", k.pkcs8_der()).as_bytes()).unwrap()
        };
        let mut store = X509StoreBuilder::new().unwrap();
        store.add_cert(cert(fx.ca.cert())).unwrap();
        Self {
            signer_cert: cert(&fx.sender.0),
            signer_key: key(&fx.sender.1),
            rcpt_cert: cert(&fx.recipients[0].0),
            rcpt_key: key(&fx.recipients[0].1),
            rcpts: fx.recipients.iter().map(|(c, _)| cert(c)).collect(),
            store: store.build(),
        }
    }

    /// Detached signature in multipart/signed (outer headers kept outside).
    fn sign(&self, raw: &[u8]) -> Vec<u8> {
        let (outer, inner) = split_message(raw);
        let sig = CmsContentInfo::sign(
            Some(&self.signer_cert),
            Some(&self.signer_key),
            None,
            Some(&inner),
            CMSOptions::DETACHED | CMSOptions::BINARY,
        )
        .unwrap()
        .to_der()
        .unwrap();
        let b = "ossl_bench_boundary";
        let mut out = outer;
        out.reserve(inner.len() + sig.len() * 2 + 512);
        out.extend_from_slice(
            format!(
                "MIME-Version: 1.0\r\n\
                 Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";\r\n \
                 micalg=sha-256; boundary=\"{b}\"\r\n\r\n\
                 This is an S/MIME signed message\r\n\r\n--{b}\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(&inner);
        out.extend_from_slice(
            format!(
                "\r\n--{b}\r\nContent-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\
                 Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(&encode_base64_lines(&sig));
        out.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
        out
    }

    /// EnvelopedData (CBC) or AuthEnvelopedData (GCM) to the first `n` recipients.
    fn encrypt(&self, raw: &[u8], n: usize, cipher: ContentCipher) -> Vec<u8> {
        let (outer, inner) = split_message(raw);
        let mut rcpts = Stack::new().unwrap();
        for c in self.rcpts.iter().take(n) {
            rcpts.push(c.clone()).unwrap();
        }
        let env = CmsContentInfo::encrypt(&rcpts, &inner, ossl_cipher(cipher), CMSOptions::BINARY)
            .unwrap()
            .to_der()
            .unwrap();
        let smime_type = if cipher.is_aead() {
            "authEnveloped-data"
        } else {
            "enveloped-data"
        };
        let mut out = outer;
        out.extend_from_slice(
            format!(
                "MIME-Version: 1.0\r\n\
                 Content-Type: application/pkcs7-mime; smime-type={smime_type};\r\n name=\"smime.p7m\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\
                 Content-Disposition: attachment; filename=\"smime.p7m\"\r\n\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(&encode_base64_lines(&env));
        out
    }

    /// Decrypts with the first recipient's key; returns the message with the inner entity in
    /// place of the encrypted one.
    fn decrypt(&self, raw: &[u8]) -> Vec<u8> {
        let (outer, enc) = split_message(raw);
        let der = decode_base64(body(&enc)).unwrap();
        let cms = CmsContentInfo::from_der(&der).unwrap();
        let inner = cms
            .decrypt(&self.rcpt_key, &self.rcpt_cert)
            .expect("OpenSSL decrypts");
        let mut out = outer;
        out.extend_from_slice(b"MIME-Version: 1.0\r\n");
        out.extend_from_slice(&inner);
        out
    }

    /// Verifies the multipart/signed against the CA; returns the message with the signed entity
    /// in place of the multipart/signed.
    fn verify(&self, raw: &[u8]) -> Vec<u8> {
        let (outer, signed) = split_message(raw);
        let (content, sig_b64) = split_signed(&signed);
        let mut sig = CmsContentInfo::from_der(&decode_base64(sig_b64).unwrap()).unwrap();
        sig.verify(
            None,
            Some(&self.store),
            Some(content),
            None,
            CMSOptions::BINARY,
        )
        .expect("OpenSSL verifies");
        let mut out = outer;
        out.extend_from_slice(b"MIME-Version: 1.0\r\n");
        out.extend_from_slice(content);
        out
    }

    fn sign_encrypt(&self, raw: &[u8], n: usize, cipher: ContentCipher) -> Vec<u8> {
        self.encrypt(&self.sign(raw), n, cipher)
    }

    fn decrypt_verify(&self, raw: &[u8]) -> Vec<u8> {
        self.verify(&self.decrypt(raw))
    }

    /// `X509_verify_cert` of the signer's certificate against the CA, for S/MIME signing
    /// (OpenSSL keeps no cache: every call builds and checks the path).
    fn validate_path(&self) {
        let mut chain = Stack::new().unwrap();
        chain.push(self.signer_cert.clone()).unwrap();
        let mut ctx = X509StoreContext::new().unwrap();
        let ok = ctx
            .init(&self.store, &self.signer_cert, &chain, |c| c.verify_cert())
            .unwrap();
        assert!(ok, "OpenSSL validates the signer's path");
    }
}

/// Outer headers (everything but Content-* and MIME-Version) and the inner entity.
fn split_message(raw: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let end = find(raw, b"\r\n\r\n").expect("header end") + 2;
    let mut outer = Vec::with_capacity(raw.len() / 8 + end);
    let mut inner = Vec::with_capacity(raw.len());
    let mut rest = &raw[..end];
    while !rest.is_empty() {
        // A header field runs to the CRLF not followed by folding whitespace.
        let mut n = find(rest, b"\r\n").expect("CRLF") + 2;
        while n < rest.len() && (rest[n] == b' ' || rest[n] == b'\t') {
            n += find(&rest[n..], b"\r\n").expect("CRLF") + 2;
        }
        let field = &rest[..n];
        let lower = field[..field.len().min(13)].to_ascii_lowercase();
        if lower.starts_with(b"content-") {
            inner.extend_from_slice(field);
        } else if !lower.starts_with(b"mime-version:") {
            outer.extend_from_slice(field);
        }
        rest = &rest[n..];
    }
    inner.extend_from_slice(&raw[end..]);
    (outer, inner)
}

fn body(entity: &[u8]) -> &[u8] {
    &entity[find(entity, b"\r\n\r\n").expect("header end") + 4..]
}

/// The signed content and the base64 signature of a multipart/signed entity.
fn split_signed(entity: &[u8]) -> (&[u8], &[u8]) {
    let head_end = find(entity, b"\r\n\r\n").expect("header end");
    let head = &entity[..head_end];
    let at = find(head, b"boundary=\"").expect("boundary") + 10;
    let len = find(&head[at..], b"\"").expect("boundary end");
    let delim = [b"\r\n--", &head[at..at + len]].concat();
    let first = find(entity, &delim[2..]).expect("first part") + delim.len() - 2 + 2;
    let content_len = find(&entity[first..], &delim).expect("second part");
    let content = &entity[first..first + content_len];
    let sig_part = &entity[first + content_len + delim.len() + 2..];
    let sig_end = find(sig_part, &delim).expect("closing delimiter");
    (content, body(&sig_part[..sig_end]))
}

/// A SIMD substring search: a naive `windows().position()` here cost OpenSSL's side a memcmp
/// per byte of a 10 MiB message, which is not OpenSSL's cost.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

// ---- Measuring ------------------------------------------------------------------------------

/// Operations per second and how many ran, for one side.
#[derive(Clone, Copy)]
struct Rate {
    per_s: f64,
    n: u64,
}

/// Alternates the two sides in `rounds` rounds of `budget` each (at least one operation per
/// round), so drift on a noisy machine hits both.
fn race(rounds: u32, budget: Duration, ours: impl FnMut(), theirs: impl FnMut()) -> (Rate, Rate) {
    let (o, t, _) = race3(rounds, budget, ours, theirs, None::<fn()>);
    (o, t)
}

/// [`race`] with an optional third contestant in the same rounds: the aws-lc-rs AES ceiling of
/// the cipher, for the 10 MiB target, which then compares figures taken under the same load.
fn race3(
    rounds: u32,
    budget: Duration,
    mut ours: impl FnMut(),
    mut theirs: impl FnMut(),
    mut third: Option<impl FnMut()>,
) -> (Rate, Rate, Option<Rate>) {
    let run = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        let mut n = 0u64;
        loop {
            f();
            n += 1;
            if start.elapsed() >= budget {
                return (n, start.elapsed());
            }
        }
    };
    let mut acc = [(0u64, Duration::ZERO); 3];
    for _ in 0..rounds {
        for (i, (n, t)) in [
            Some(run(&mut ours)),
            Some(run(&mut theirs)),
            third.as_mut().map(|f| run(f)),
        ]
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| r.map(|r| (i, r)))
        {
            acc[i].0 += n;
            acc[i].1 += t;
        }
    }
    let rate = |(n, t): (u64, Duration)| Rate {
        per_s: n as f64 / t.as_secs_f64(),
        n,
    };
    (
        rate(acc[0]),
        rate(acc[1]),
        third.is_some().then(|| rate(acc[2])),
    )
}

/// The AES work alone on a `size`-byte buffer with aws-lc-rs: what the content cipher of
/// `op` costs at best (CBC decryption, which runs blocks in parallel, for the decrypting ops).
fn aes_ceiling_name(op: &str, cipher: ContentCipher) -> &'static str {
    match (cipher.is_aead(), op.starts_with("decrypt")) {
        (true, _) => "ceiling-aes256-gcm",
        (false, false) => "ceiling-aes256-cbc",
        (false, true) => "ceiling-aes256-cbc-decrypt",
    }
}

fn aes_ceiling(op: &str, cipher: ContentCipher, size: usize) -> impl FnMut() + use<> {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    use aws_lc_rs::cipher::{
        AES_256, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext,
        UnboundCipherKey,
    };
    let key = [7u8; 32];
    let mut buf = vec![0x5au8; size / 16 * 16];
    let decrypting = op.starts_with("decrypt");
    let gcm = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
    let cbc_enc = EncryptingKey::cbc(UnboundCipherKey::new(&AES_256, &key).unwrap()).unwrap();
    let cbc_dec = DecryptingKey::cbc(UnboundCipherKey::new(&AES_256, &key).unwrap()).unwrap();
    let mut ctr = 0u64;
    move || {
        ctr += 1;
        let mut iv = [0u8; 16];
        iv[8..].copy_from_slice(&ctr.to_be_bytes());
        if cipher.is_aead() {
            let nonce = Nonce::try_assume_unique_for_key(&iv[4..]).unwrap();
            // Opening costs what sealing does (the same CTR and GHASH work).
            drop(
                gcm.seal_in_place_separate_tag(nonce, Aad::empty(), &mut buf)
                    .unwrap(),
            );
        } else if decrypting {
            cbc_dec
                .decrypt(&mut buf, DecryptionContext::Iv128(iv.into()))
                .unwrap();
        } else {
            cbc_enc
                .less_safe_encrypt(&mut buf, EncryptionContext::Iv128(iv.into()))
                .unwrap();
        }
    }
}

/// One row of the grid.
struct Row {
    op: &'static str,
    size: usize,
    key: KeyAlgorithm,
    recipients: usize,
    cipher: Option<ContentCipher>,
    ours: Rate,
    theirs: Rate,
    /// For the 10 MiB target rows: the AES ceiling (name, rate) raced in the same rounds.
    ceiling: Option<(&'static str, Rate)>,
}

impl Row {
    fn mb_per_s(&self, r: Rate) -> Option<f64> {
        (self.size > 0).then(|| r.per_s * self.size as f64 / 1e6)
    }

    fn ratio(&self) -> f64 {
        self.ours.per_s / self.theirs.per_s
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "op": self.op,
            "size": self.size,
            "key": self.key.to_string(),
            "recipients": self.recipients,
            "cipher": self.cipher.map(|c| c.to_string()).unwrap_or_default(),
            "msgs_per_s": self.ours.per_s,
            "mb_per_s": self.mb_per_s(self.ours),
            "openssl_msgs_per_s": self.theirs.per_s,
            "openssl_mb_per_s": self.mb_per_s(self.theirs),
            "ratio": self.ratio(),
            "iterations": self.ours.n,
            "openssl_iterations": self.theirs.n,
            "ceiling": self.ceiling.map(|c| c.0),
            "ceiling_mb_per_s": self.ceiling.and_then(|c| self.mb_per_s(c.1)),
        })
    }

    fn print(&self) {
        let size = size_cell(self.size);
        let rcpt = count_cell(self.recipients);
        let cipher = self.cipher.map_or("-".into(), |c| c.to_string());
        let mb = self
            .mb_per_s(self.ours)
            .map_or("-".into(), |v| format!("{v:.1}"));
        println!(
            "{size:>6}  {:<15} {:<8} {rcpt:>3} {cipher:<10} {:>12.1} {mb:>8} {:>12.1} {:>7.2}x",
            self.op,
            self.key.to_string(),
            self.ours.per_s,
            self.theirs.per_s,
            self.ratio()
        );
        std::io::stdout().flush().ok();
    }
}

// ---- Filters --------------------------------------------------------------------------------

struct Filters {
    sizes: Option<Vec<usize>>,
    keys: Option<Vec<KeyAlgorithm>>,
    recipients: Option<Vec<usize>>,
    ciphers: Option<Vec<ContentCipher>>,
    ops: Option<Vec<String>>,
    seconds: f64,
    out: Option<PathBuf>,
    measuring: bool,
}

fn parse_cipher(s: &str) -> ContentCipher {
    match s.to_ascii_lowercase().as_str() {
        "cbc" => ContentCipher::Aes256Cbc,
        "gcm" => ContentCipher::Aes256Gcm,
        other => ContentCipher::from_str(other).unwrap_or_else(|e| panic!("--cipher: {e}")),
    }
}

fn parse_op(s: &str) -> Vec<String> {
    let s = s.to_ascii_lowercase();
    if s == "path" {
        return vec!["path-cold".into(), "path-warm".into()];
    }
    assert!(
        OPS.contains(&s.as_str()) || s == "ceilings",
        "--op {s}: expected one of {}, path or ceilings",
        OPS.join(", ")
    );
    vec![s]
}

impl Filters {
    fn from_env_and_args() -> Self {
        let quick_env =
            std::env::var("SMIMEGW_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let mut f = Self {
            sizes: None,
            keys: None,
            recipients: None,
            ciphers: None,
            ops: None,
            seconds: DEFAULT_SECONDS,
            out: None,
            measuring: false,
        };
        let mut bench_flag = false;
        let mut pairs: Vec<(String, String)> = [
            ("size", "SMIMEGW_BENCH_SIZE"),
            ("key", "SMIMEGW_BENCH_KEY"),
            ("recipients", "SMIMEGW_BENCH_RECIPIENTS"),
            ("cipher", "SMIMEGW_BENCH_CIPHER"),
            ("op", "SMIMEGW_BENCH_OP"),
            ("seconds", "SMIMEGW_BENCH_SECONDS"),
            ("out", "SMIMEGW_BENCH_OUT"),
        ]
        .iter()
        .filter_map(|(name, var)| {
            std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .map(|v| ((*name).to_string(), v))
        })
        .collect();
        let mut from_args: Vec<(String, String)> = Vec::new();
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            if a == "--bench" {
                bench_flag = true;
                continue;
            }
            let Some(name) = a.strip_prefix("--") else {
                // A libtest-style name filter from `cargo bench NAME`: not ours, ignored.
                eprintln!("hot_path: ignoring argument '{a}' (filters are --size, --key, ...)");
                continue;
            };
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => {
                    if ![
                        "size",
                        "key",
                        "recipients",
                        "cipher",
                        "op",
                        "seconds",
                        "out",
                    ]
                    .contains(&name)
                    {
                        eprintln!("hot_path: ignoring unknown flag '{a}'");
                        continue;
                    }
                    let v = args.next().unwrap_or_else(|| panic!("{a} needs a value"));
                    (name.to_string(), v)
                }
            };
            from_args.push((name, value));
        }
        // Arguments replace the environment's value of the same filter.
        pairs.retain(|(n, _)| !from_args.iter().any(|(m, _)| m == n));
        pairs.extend(from_args);
        for (name, value) in pairs {
            let items = || value.split(',').map(str::trim).filter(|s| !s.is_empty());
            match name.as_str() {
                "size" => f.sizes.get_or_insert_with(Vec::new).extend(
                    items().map(|s| parse_size(s).unwrap_or_else(|e| panic!("--size: {e}"))),
                ),
                "key" => {
                    f.keys.get_or_insert_with(Vec::new).extend(items().map(|s| {
                        KeyAlgorithm::from_str(s).unwrap_or_else(|e| panic!("--key: {e}"))
                    }))
                }
                "recipients" => f
                    .recipients
                    .get_or_insert_with(Vec::new)
                    .extend(items().map(|s| {
                        let n: usize = s.parse().unwrap_or_else(|e| panic!("--recipients: {e}"));
                        assert!(RECIPIENTS.contains(&n), "--recipients: 1 or 10");
                        n
                    })),
                "cipher" => f
                    .ciphers
                    .get_or_insert_with(Vec::new)
                    .extend(items().map(parse_cipher)),
                "op" => f
                    .ops
                    .get_or_insert_with(Vec::new)
                    .extend(items().flat_map(parse_op)),
                "seconds" => {
                    f.seconds = value.parse().unwrap_or_else(|e| panic!("--seconds: {e}"));
                    assert!(f.seconds > 0.0, "--seconds must be positive");
                }
                "out" => f.out = Some(PathBuf::from(value)),
                _ => unreachable!(),
            }
        }
        f.measuring = bench_flag && !quick_env;
        f
    }

    fn op(&self, op: &str) -> bool {
        self.ops.as_ref().is_none_or(|o| o.iter().any(|x| x == op))
    }

    fn keys(&self) -> Vec<KeyAlgorithm> {
        self.keys.clone().unwrap_or_else(|| KEYS.to_vec())
    }

    fn sizes(&self) -> Vec<usize> {
        match &self.sizes {
            Some(s) => s.clone(),
            None if self.measuring => SIZES.to_vec(),
            None => vec![KIB, MIB],
        }
    }

    fn configs(&self) -> Vec<(usize, ContentCipher)> {
        let rs = self
            .recipients
            .clone()
            .unwrap_or_else(|| RECIPIENTS.to_vec());
        let cs = self.ciphers.clone().unwrap_or_else(|| CIPHERS.to_vec());
        rs.iter()
            .flat_map(|&r| cs.iter().map(move |&c| (r, c)))
            .collect()
    }

    /// Quick mode without a size filter: the large size only for one configuration.
    fn skip_large(
        &self,
        size: usize,
        key: KeyAlgorithm,
        cfg: Option<(usize, ContentCipher)>,
    ) -> bool {
        !self.measuring
            && self.sizes.is_none()
            && size > KIB
            && !(key == KeyAlgorithm::Rsa2048
                && cfg.is_none_or(|c| c == (1, ContentCipher::Aes256Cbc)))
    }

    fn out_path(&self) -> PathBuf {
        if let Some(p) = &self.out {
            return p.clone();
        }
        // The bench binary is <target>/<profile>/deps/hot_path-<hash>.
        let target = std::env::current_exe()
            .ok()
            .and_then(|e| e.ancestors().nth(3).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("target"));
        let name = if self.measuring {
            "hot_path.jsonl"
        } else {
            "hot_path-quick.jsonl"
        };
        target.join("bench").join(name)
    }
}

// ---- The grid -------------------------------------------------------------------------------

fn main() {
    let f = Filters::from_env_and_args();
    let (rounds, budget) = if f.measuring {
        (
            ROUNDS,
            Duration::from_secs_f64(f.seconds / f64::from(ROUNDS)),
        )
    } else {
        (1, Duration::ZERO)
    };
    let out_path = f.out_path();
    if let Some(dir) = out_path.parent() {
        std::fs::create_dir_all(dir).expect("create the output directory");
    }
    let mut jsonl =
        std::fs::File::create(&out_path).unwrap_or_else(|e| panic!("{}: {e}", out_path.display()));
    let mut emit = |v: serde_json::Value| writeln!(jsonl, "{v}").expect("write JSON line");

    println!(
        "hot_path: single thread, {} ({}), {} cores",
        if f.measuring {
            format!(
                "{ROUNDS} alternating rounds of {:.3} s per side per row",
                f.seconds / f64::from(ROUNDS)
            )
        } else {
            "QUICK MODE: each operation once, figures are not measurements".into()
        },
        openssl::version::version(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!("hot_path: JSON lines to {}", out_path.display());
    println!(
        "{:>6}  {:<15} {:<8} {:>3} {:<10} {:>12} {:>8} {:>12} {:>8}",
        "size", "op", "key", "rcp", "cipher", "smimegw/s", "MB/s", "OpenSSL/s", "ratio"
    );
    let mut rows: Vec<Row> = Vec::new();
    let max_rcpt = f.configs().iter().map(|c| c.0).max().unwrap_or(1);
    for key in f.keys() {
        let t = Instant::now();
        let fx = Fixture::new(key, max_rcpt, ContentCipher::Aes256Cbc).expect("fixture");
        let ossl = Ossl::from_fixture(&fx);
        eprintln!(
            "hot_path: {key} fixture with {max_rcpt} recipient(s) in {:.1?}",
            t.elapsed()
        );

        for (op, warm) in [("path-cold", false), ("path-warm", true)] {
            if !f.op(op) {
                continue;
            }
            fx.validate_path(warm).expect("smimegw validates the path");
            ossl.validate_path();
            let (ours, theirs) = race(
                rounds,
                budget,
                || fx.validate_path(warm).unwrap(),
                || ossl.validate_path(),
            );
            let row = Row {
                op,
                size: 0,
                key,
                recipients: 0,
                cipher: None,
                ours,
                theirs,
                ceiling: None,
            };
            row.print();
            emit(row.json());
            rows.push(row);
        }

        for size in f.sizes() {
            let msg = synthetic_message(size);
            if !f.skip_large(size, key, None)
                && (f.op("sign") || f.op("verify") || f.op("verify+revocation"))
            {
                // Each side opens what the other wrote, byte-exact.
                let ours = fx.sign(&msg).expect("smimegw signs");
                let theirs = ossl.sign(&msg);
                assert_eq!(
                    ossl.verify(&ours),
                    msg,
                    "OpenSSL verifies smimegw's ({key})"
                );
                assert_eq!(fx.verify(&theirs).expect("smimegw verifies OpenSSL's"), msg);
                let mut measured = Vec::new();
                if f.op("sign") {
                    measured.push((
                        "sign",
                        race(
                            rounds,
                            budget,
                            || drop(fx.sign(&msg).unwrap()),
                            || drop(ossl.sign(&msg)),
                        ),
                    ));
                }
                if f.op("verify") {
                    measured.push((
                        "verify",
                        race(
                            rounds,
                            budget,
                            || drop(fx.verify(&ours).unwrap()),
                            || drop(ossl.verify(&theirs)),
                        ),
                    ));
                }
                if f.op("verify+revocation") {
                    // Ours with the revocation step from a warm cache; OpenSSL's as in "verify"
                    // (no CRL check), so the ratio shows what the step costs.
                    measured.push((
                        "verify+revocation",
                        race(
                            rounds,
                            budget,
                            || drop(fx.verify_revocation(&ours).unwrap()),
                            || drop(ossl.verify(&theirs)),
                        ),
                    ));
                }
                for (op, (o, t)) in measured {
                    let row = Row {
                        op,
                        size,
                        key,
                        recipients: 0,
                        cipher: None,
                        ours: o,
                        theirs: t,
                        ceiling: None,
                    };
                    row.print();
                    emit(row.json());
                    rows.push(row);
                }
            }
            for (n, cipher) in f.configs() {
                if f.skip_large(size, key, Some((n, cipher))) {
                    continue;
                }
                let mut measured = Vec::new();
                // The 10 MiB target rows race the AES ceiling of their cipher too.
                let target = size == CEILING_SIZE && key == KeyAlgorithm::Rsa2048 && n == 1;
                let ceiling = |op: &str| target.then(|| aes_ceiling(op, cipher, size));
                let ceiling_name = |op: &str| target.then(|| aes_ceiling_name(op, cipher));
                if f.op("encrypt") || f.op("decrypt") {
                    let ours = fx.encrypt_to(&msg, n, cipher).expect("smimegw encrypts");
                    let theirs = ossl.encrypt(&msg, n, cipher);
                    assert_eq!(ossl.decrypt(&ours), msg, "OpenSSL decrypts smimegw's");
                    assert_eq!(
                        fx.decrypt(&theirs).expect("smimegw decrypts OpenSSL's"),
                        msg
                    );
                    if f.op("encrypt") {
                        measured.push((
                            "encrypt",
                            race3(
                                rounds,
                                budget,
                                || drop(fx.encrypt_to(&msg, n, cipher).unwrap()),
                                || drop(ossl.encrypt(&msg, n, cipher)),
                                ceiling("encrypt"),
                            ),
                        ));
                    }
                    if f.op("decrypt") {
                        measured.push((
                            "decrypt",
                            race3(
                                rounds,
                                budget,
                                || drop(fx.decrypt(&ours).unwrap()),
                                || drop(ossl.decrypt(&theirs)),
                                ceiling("decrypt"),
                            ),
                        ));
                    }
                }
                if f.op("sign+encrypt") || f.op("decrypt+verify") {
                    let ours = fx
                        .sign_encrypt_to(&msg, n, cipher)
                        .expect("smimegw sign+encrypt");
                    let theirs = ossl.sign_encrypt(&msg, n, cipher);
                    assert_eq!(ossl.decrypt_verify(&ours), msg, "OpenSSL opens smimegw's");
                    assert_eq!(
                        fx.decrypt_verify(&theirs).expect("smimegw opens OpenSSL's"),
                        msg
                    );
                    if f.op("sign+encrypt") {
                        measured.push((
                            "sign+encrypt",
                            race3(
                                rounds,
                                budget,
                                || drop(fx.sign_encrypt_to(&msg, n, cipher).unwrap()),
                                || drop(ossl.sign_encrypt(&msg, n, cipher)),
                                ceiling("sign+encrypt"),
                            ),
                        ));
                    }
                    if f.op("decrypt+verify") {
                        measured.push((
                            "decrypt+verify",
                            race3(
                                rounds,
                                budget,
                                || drop(fx.decrypt_verify(&ours).unwrap()),
                                || drop(ossl.decrypt_verify(&theirs)),
                                ceiling("decrypt+verify"),
                            ),
                        ));
                    }
                }
                for (op, (o, t, c)) in measured {
                    let row = Row {
                        op,
                        size,
                        key,
                        recipients: n,
                        cipher: Some(cipher),
                        ours: o,
                        theirs: t,
                        ceiling: ceiling_name(op).zip(c),
                    };
                    row.print();
                    emit(row.json());
                    rows.push(row);
                }
            }
        }
    }

    // Ceilings: the asymmetric one per key, the AES ones once.
    let ceiling_budget = if f.measuring {
        Duration::from_secs_f64(f.seconds.max(0.3))
    } else {
        Duration::ZERO
    };
    let mut ceiling_rows = Vec::new();
    let keys = if f.op("ceilings") {
        f.keys()
    } else {
        Vec::new()
    };
    for (i, key) in keys.into_iter().enumerate() {
        let mut quiet = |_: &str| {};
        for c in ceilings(key, ceiling_budget, &mut quiet).expect("ceilings") {
            if i == 0 || !c.op.contains("aes") {
                ceiling_rows.push(c);
            }
        }
    }
    println!("\nceilings (aws-lc-rs alone):");
    for c in &ceiling_rows {
        let mb = c
            .mb_per_s
            .map_or(String::new(), |v| format!(" {v:>9.1} MB/s"));
        println!("  {:<28} {:<10} {:>10.1} /s{mb}", c.op, c.key, c.msgs_per_s);
        emit(serde_json::to_value(c).expect("ceiling as JSON"));
    }

    // Targets of issue 5.
    println!("\ntargets:");
    let mut missed = 0;
    let mut report = |target: String, value: f64, required: f64, detail: String| {
        let met = value >= required;
        if !met {
            missed += 1;
        }
        let verdict = if !f.measuring {
            "(quick mode)"
        } else if met {
            "met"
        } else {
            "NOT MET"
        };
        println!("  {target:<62} {value:>6.2}x (>= {required}x) {verdict}  {detail}");
        emit(serde_json::json!({
            "target": target, "value": value, "required": required,
            "met": met, "measured": f.measuring,
        }));
    };
    for r in rows.iter().filter(|r| {
        r.size == TARGET_SIZE
            && r.key == KeyAlgorithm::Rsa2048
            && r.recipients == 1
            && (r.op == "sign+encrypt" || r.op == "decrypt+verify")
    }) {
        let cipher = r.cipher.map_or(String::new(), |c| c.to_string());
        report(
            format!("10KiB rsa2048 1 rcpt {cipher} {} vs OpenSSL", r.op),
            r.ratio(),
            TARGET_RATIO,
            String::new(),
        );
    }
    for r in rows.iter().filter(|r| {
        r.size == CEILING_SIZE
            && r.key == KeyAlgorithm::Rsa2048
            && r.recipients == 1
            && ["encrypt", "decrypt", "sign+encrypt", "decrypt+verify"].contains(&r.op)
    }) {
        let (Some(cipher), Some((ceiling_op, ceiling))) = (r.cipher, r.ceiling) else {
            continue;
        };
        let ceiling = r.mb_per_s(ceiling).unwrap_or(f64::INFINITY);
        let ours = r.mb_per_s(r.ours).unwrap_or(0.0);
        let theirs = r.mb_per_s(r.theirs).unwrap_or(0.0);
        report(
            format!("10MiB rsa2048 1 rcpt {cipher} {} vs {ceiling_op}", r.op),
            ours / ceiling,
            TARGET_CEILING,
            format!(
                "({ours:.0} of {ceiling:.0} MB/s, same rounds; OpenSSL {:.2}x)",
                theirs / ceiling
            ),
        );
    }
    if f.measuring {
        println!(
            "hot_path: {}",
            if missed == 0 {
                "every target met".to_string()
            } else {
                format!("{missed} target(s) not met")
            }
        );
    }
    println!(
        "hot_path: {} rows written to {}",
        rows.len(),
        out_path.display()
    );
}
