//! Hot path against OpenSSL in the same run: sign+encrypt and decrypt+verify of 10 KiB and 1 MiB
//! messages, RSA-2048, one recipient, AES-256-CBC, single thread, on the same messages and the
//! same keys (exported to OpenSSL as PEM). Every figure comes with the ratio smimegw/OpenSSL,
//! which holds better than absolute numbers on a noisy machine.
//!
//! Both sides do the same MIME work: OpenSSL's CMS (`CMS_sign` detached, `CMS_encrypt`,
//! `CMS_decrypt`, `CMS_verify` against a store holding the CA) with the same multipart/signed and
//! application/pkcs7-mime framing and the same base64 code around it. smimegw verifies with a
//! warm chain cache, as the gateway does; OpenSSL validates the chain every time.
//!
//! `cargo bench --bench hot_path` measures. Without `--bench` (as under `cargo test --benches`)
//! or with `SMIMEGW_BENCH_QUICK=1` it runs every operation once, checks both sides open each
//! other's output, and prints the figures as a smoke run only.

use std::time::{Duration, Instant};

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::X509;
use openssl::x509::store::{X509Store, X509StoreBuilder};

use smimegw::bench::{Fixture, format_size, synthetic_message};
use smimegw::mime::{decode_base64, encode_base64_lines};
use smimegw::pki::KeyAlgorithm;
use smimegw::pki::cert::pem_encode;
use smimegw::smime::enveloped::ContentCipher;

/// The target: at 10 KiB, RSA-2048, 1 recipient, smimegw >= 1.2x OpenSSL.
const TARGET_RATIO: f64 = 1.2;
const TARGET_SIZE: usize = 10 * 1024;

/// The same keys and certificates as the fixture, loaded into OpenSSL from PEM.
struct Ossl {
    signer_cert: X509,
    signer_key: PKey<Private>,
    rcpt_cert: X509,
    rcpt_key: PKey<Private>,
    rcpts: Stack<X509>,
    store: X509Store,
}

impl Ossl {
    fn from_fixture(fx: &Fixture) -> Self {
        let cert = |c: &smimegw::pki::Cert| X509::from_pem(c.to_pem().as_bytes()).unwrap();
        let key = |k: &smimegw::pki::PrivateKey| {
            PKey::private_key_from_pem(pem_encode("PRIVATE KEY", k.pkcs8_der()).as_bytes()).unwrap()
        };
        let mut rcpts = Stack::new().unwrap();
        for (c, _) in &fx.recipients {
            rcpts.push(cert(c)).unwrap();
        }
        let mut store = X509StoreBuilder::new().unwrap();
        store.add_cert(cert(fx.ca.cert())).unwrap();
        Self {
            signer_cert: cert(&fx.sender.0),
            signer_key: key(&fx.sender.1),
            rcpt_cert: cert(&fx.recipients[0].0),
            rcpt_key: key(&fx.recipients[0].1),
            rcpts,
            store: store.build(),
        }
    }

    /// Detached signature in multipart/signed, then EnvelopedData (AES-256-CBC) around it.
    fn sign_encrypt(&self, raw: &[u8]) -> Vec<u8> {
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
        let mut signed = Vec::with_capacity(inner.len() + sig.len() * 2 + 512);
        signed.extend_from_slice(
            format!(
                "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";\r\n \
                 micalg=sha-256; boundary=\"{b}\"\r\n\r\n\
                 This is an S/MIME signed message\r\n\r\n--{b}\r\n"
            )
            .as_bytes(),
        );
        signed.extend_from_slice(&inner);
        signed.extend_from_slice(
            format!(
                "\r\n--{b}\r\nContent-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\
                 Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n"
            )
            .as_bytes(),
        );
        signed.extend_from_slice(&encode_base64_lines(&sig));
        signed.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
        let env = CmsContentInfo::encrypt(
            &self.rcpts,
            &signed,
            Cipher::aes_256_cbc(),
            CMSOptions::BINARY,
        )
        .unwrap()
        .to_der()
        .unwrap();
        let mut out = outer;
        out.extend_from_slice(
            b"MIME-Version: 1.0\r\n\
              Content-Type: application/pkcs7-mime; smime-type=enveloped-data;\r\n name=\"smime.p7m\"\r\n\
              Content-Transfer-Encoding: base64\r\n\
              Content-Disposition: attachment; filename=\"smime.p7m\"\r\n\r\n",
        );
        out.extend_from_slice(&encode_base64_lines(&env));
        out
    }

    /// Decrypts, then verifies the multipart/signed inside against the CA; returns the message
    /// with the signed entity in place of the encrypted one.
    fn decrypt_verify(&self, raw: &[u8]) -> Vec<u8> {
        let (outer, enc) = split_message(raw);
        let der = decode_base64(body(&enc)).unwrap();
        let cms = CmsContentInfo::from_der(&der).unwrap();
        let signed = cms.decrypt(&self.rcpt_key, &self.rcpt_cert).unwrap();
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
}

/// Outer headers (everything but Content-* and MIME-Version) and the inner entity.
fn split_message(raw: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let end = find(raw, b"\r\n\r\n").expect("header end") + 2;
    let mut outer = Vec::with_capacity(end);
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

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Alternates the two sides in rounds so that drift on a noisy machine hits both; returns
/// operations per second for each.
fn race(
    rounds: u32,
    budget: Duration,
    mut ours: impl FnMut(),
    mut theirs: impl FnMut(),
) -> (f64, f64) {
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
    let (mut on, mut ot, mut tn, mut tt) = (0u64, Duration::ZERO, 0u64, Duration::ZERO);
    for _ in 0..rounds {
        let (n, t) = run(&mut ours);
        on += n;
        ot += t;
        let (n, t) = run(&mut theirs);
        tn += n;
        tt += t;
    }
    (on as f64 / ot.as_secs_f64(), tn as f64 / tt.as_secs_f64())
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench")
        && std::env::var_os("SMIMEGW_BENCH_QUICK").is_none_or(|v| v.is_empty() || v == "0");
    let (rounds, budget) = if measuring {
        (3, Duration::from_millis(1000))
    } else {
        (1, Duration::ZERO)
    };
    let fx = Fixture::new(KeyAlgorithm::Rsa2048, 1, ContentCipher::Aes256Cbc).expect("fixture");
    let ossl = Ossl::from_fixture(&fx);
    println!(
        "hot_path: single thread, RSA-2048, 1 recipient, AES-256-CBC, {} ({})",
        if measuring {
            "3 alternating rounds of 1 s per side"
        } else {
            "QUICK MODE: each operation once, figures are not measurements"
        },
        openssl::version::version()
    );
    println!(
        "{:>6}  {:<15} {:>14} {:>14} {:>9}  target",
        "size", "op", "smimegw msg/s", "OpenSSL msg/s", "ratio"
    );
    let mut missed = 0;
    for size in [10 * 1024, 1024 * 1024] {
        let msg = synthetic_message(size);
        // Same work on both sides: each opens what the other wrote, byte-exact.
        let ours = fx.sign_encrypt(&msg).expect("smimegw sign+encrypt");
        let theirs = ossl.sign_encrypt(&msg);
        assert_eq!(ossl.decrypt_verify(&ours), msg, "OpenSSL opens smimegw's");
        assert_eq!(
            fx.decrypt_verify(&theirs).expect("smimegw opens OpenSSL's"),
            msg
        );
        let results = [
            (
                "sign+encrypt",
                race(
                    rounds,
                    budget,
                    || drop(fx.sign_encrypt(&msg).unwrap()),
                    || drop(ossl.sign_encrypt(&msg)),
                ),
            ),
            (
                "decrypt+verify",
                race(
                    rounds,
                    budget,
                    || drop(fx.decrypt_verify(&ours).unwrap()),
                    || drop(ossl.decrypt_verify(&theirs)),
                ),
            ),
        ];
        for (op, (us, them)) in results {
            let ratio = us / them;
            let target = if !measuring {
                "(quick mode)".into()
            } else if size == TARGET_SIZE {
                let met = ratio >= TARGET_RATIO;
                if !met {
                    missed += 1;
                }
                format!(">= {TARGET_RATIO}x: {}", if met { "met" } else { "MISSED" })
            } else {
                "-".into()
            };
            println!(
                "{:>6}  {op:<15} {us:>14.1} {them:>14.1} {ratio:>8.2}x  {target}",
                format_size(size)
            );
        }
    }
    if measuring {
        println!(
            "hot_path: {}",
            if missed == 0 {
                "every target met".to_string()
            } else {
                format!("{missed} target(s) missed")
            }
        );
    }
}
