//! EnvelopedData and AuthEnvelopedData against real peers: OpenSSL 3 (reads and writes every
//! kind), GnuPG 2.2 `gpgsm` and NSS `cmsutil` (each as far as it goes; the matrix of what they
//! read is asserted, not assumed). A missing peer fails the test with the Debian package to
//! install: a skipped interoperability test proves nothing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use super::*;
use crate::pki::ca::Ca;
use crate::pki::cert::pem_encode;
use crate::pki::pkcs12::{ExportProfile, build_with_profile};
use crate::pki::profile::{CertificateParams, simple_name};

// ---- Fixtures -------------------------------------------------------------------------------

/// A recipient: an encryption certificate from our CA and its key.
struct Identity {
    name: String,
    cert: Cert,
    key: PrivateKey,
}

impl Identity {
    fn pair(&self) -> (Cert, PrivateKey) {
        (
            self.cert.clone(),
            PrivateKey::from_pkcs8_der(self.key.pkcs8_der()).unwrap(),
        )
    }

    fn to(&self) -> Recipient<'_> {
        Recipient {
            cert: &self.cert,
            oaep: false,
            id: RecipientIdKind::IssuerAndSerial,
        }
    }

    /// Writes `<name>.pem` and `<name>.key` (PKCS #8 PEM) for the command-line peers.
    fn files(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{}.pem", self.name));
        let key = dir.join(format!("{}.key", self.name));
        if !cert.exists() {
            std::fs::write(&cert, self.cert.to_pem()).unwrap();
            std::fs::write(&key, pem_encode("PRIVATE KEY", self.key.pkcs8_der())).unwrap();
        }
        (cert, key)
    }
}

struct Fixtures {
    ca: Ca,
    rsa: Identity,
    /// The same user's previous RSA encryption certificate (renewed with a new key).
    rsa_old: Identity,
    p256: Identity,
    p384: Identity,
    /// More recipients, for the ten-recipient message.
    extra: Vec<Identity>,
}

fn identity(ca: &Ca, name: &str, alg: KeyAlgorithm) -> Identity {
    let key = PrivateKey::generate(alg).unwrap();
    let params = CertificateParams::smime_encryption(
        &format!("{name}@example.org"),
        simple_name(name, None).unwrap(),
        30,
        alg,
    );
    let cert = ca.issue(&params, &key.spki()).unwrap();
    Identity {
        name: name.to_string(),
        cert,
        key,
    }
}

/// Keys are generated once for all tests: RSA key generation dominates otherwise.
fn fx() -> &'static Fixtures {
    static FX: OnceLock<Fixtures> = OnceLock::new();
    FX.get_or_init(|| {
        let ca = Ca::new_root("Enveloped Test CA", KeyAlgorithm::P256, 30).unwrap();
        let rsa = identity(&ca, "rsa", KeyAlgorithm::Rsa2048);
        let rsa_old = identity(&ca, "rsa-old", KeyAlgorithm::Rsa2048);
        let p256 = identity(&ca, "p256", KeyAlgorithm::P256);
        let p384 = identity(&ca, "p384", KeyAlgorithm::P384);
        let extra = (0..6)
            .map(|i| {
                let alg = match i % 3 {
                    0 => KeyAlgorithm::Rsa2048,
                    1 => KeyAlgorithm::P256,
                    _ => KeyAlgorithm::P384,
                };
                identity(&ca, &format!("extra{i}"), alg)
            })
            .collect();
        Fixtures {
            ca,
            rsa,
            rsa_old,
            p256,
            p384,
            extra,
        }
    })
}

/// A MIME entity with what breaks careless code: CRLF and lone LF, 8-bit bytes, NUL, and more
/// than one block of every size.
fn content() -> Vec<u8> {
    let mut c =
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            .to_vec();
    c.extend_from_slice("Grüße aus Köln\r\nlone LF\nNUL \0 end\r\n".as_bytes());
    for i in 0..300u32 {
        c.extend_from_slice(format!("line {i} {}\r\n", "x".repeat((i % 70) as usize)).as_bytes());
    }
    c
}

// ---- Running peers --------------------------------------------------------------------------

fn require(bin: &str, package: &str) {
    if let Err(e) = Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        panic!(
            "cannot run `{bin}` ({e}): these tests use it as an independent peer; \
             install the Debian package `{package}` (apt-get install {package})"
        );
    }
}

fn run_in(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a command that must succeed and returns its stdout.
fn run(cmd: &mut Command) -> Vec<u8> {
    let out = run_in(cmd, None);
    assert!(out.status.success(), "{cmd:?} failed:\n{}", text(&out));
    out.stdout
}

fn openssl() -> Command {
    require("openssl", "openssl");
    Command::new("openssl")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// `openssl cms -decrypt` of a DER message with `id`'s certificate and key.
fn openssl_decrypt(dir: &Path, msg: &[u8], id: &Identity) -> Result<Vec<u8>, String> {
    let (cert, key) = id.files(dir);
    let f = write(dir, "msg.der", msg);
    let out = run_in(
        openssl()
            .args(["cms", "-decrypt", "-binary", "-inform", "DER", "-in"])
            .arg(&f)
            .arg("-recip")
            .arg(&cert)
            .arg("-inkey")
            .arg(&key),
        None,
    );
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(text(&out))
    }
}

// ---- 1. OpenSSL reads what we write ---------------------------------------------------------

#[test]
fn openssl_decrypts_every_kind_we_write() {
    let f = fx();
    let tmp = tempfile::tempdir().unwrap();
    let msg = content();
    use ContentCipher::*;
    use RecipientIdKind::*;
    let cases: &[(&Identity, bool, RecipientIdKind, ContentCipher)] = &[
        (&f.rsa, false, IssuerAndSerial, Aes128Cbc),
        (&f.rsa, false, IssuerAndSerial, Aes192Cbc),
        (&f.rsa, false, IssuerAndSerial, Aes256Cbc),
        (&f.rsa, false, IssuerAndSerial, Aes128Gcm),
        (&f.rsa, false, IssuerAndSerial, Aes256Gcm),
        (&f.rsa, true, IssuerAndSerial, Aes256Cbc),
        (&f.rsa, true, IssuerAndSerial, Aes128Gcm),
        (&f.rsa, false, SubjectKeyId, Aes256Cbc),
        (&f.rsa, true, SubjectKeyId, Aes256Gcm),
        (&f.p256, false, IssuerAndSerial, Aes128Cbc),
        (&f.p256, false, IssuerAndSerial, Aes192Cbc),
        (&f.p256, false, IssuerAndSerial, Aes256Gcm),
        (&f.p256, false, SubjectKeyId, Aes128Gcm),
        (&f.p384, false, IssuerAndSerial, Aes256Cbc),
        (&f.p384, false, SubjectKeyId, Aes128Cbc),
    ];
    for &(id, oaep, kind, cipher) in cases {
        let r = Recipient {
            cert: &id.cert,
            oaep,
            id: kind,
        };
        let der = encrypt(&msg, &[r], cipher).unwrap();
        let label = format!("{} oaep={oaep} {kind:?} {cipher}", id.name);
        let got = openssl_decrypt(tmp.path(), &der, id)
            .unwrap_or_else(|e| panic!("OpenSSL cannot decrypt {label}:\n{e}"));
        assert!(got == msg, "OpenSSL decrypted {label} to different bytes");
        // And we read our own.
        let back = decrypt(&der, &[id.pair()]).unwrap();
        assert_eq!(*back.content, msg, "{label}");
        assert_eq!(back.cipher, cipher);
    }
}

#[test]
fn openssl_decrypts_for_each_of_many_recipients() {
    let f = fx();
    let tmp = tempfile::tempdir().unwrap();
    let msg = content();
    // Two recipients, one of each kind.
    let two = [f.rsa.to(), f.p256.to()];
    let der = encrypt(&msg, &two, ContentCipher::Aes256Gcm).unwrap();
    for id in [&f.rsa, &f.p256] {
        assert_eq!(openssl_decrypt(tmp.path(), &der, id).unwrap(), msg);
        assert_eq!(*decrypt(&der, &[id.pair()]).unwrap().content, msg);
    }
    // Ten: RSA (PKCS #1 v1.5 and OAEP), P-256 and P-384, named both ways.
    let mut ten: Vec<&Identity> = vec![&f.rsa, &f.rsa_old, &f.p256, &f.p384];
    ten.extend(f.extra.iter());
    assert_eq!(ten.len(), 10);
    let recipients: Vec<Recipient<'_>> = ten
        .iter()
        .enumerate()
        .map(|(i, id)| Recipient {
            cert: &id.cert,
            oaep: i % 2 == 1,
            id: if i % 3 == 0 {
                RecipientIdKind::SubjectKeyId
            } else {
                RecipientIdKind::IssuerAndSerial
            },
        })
        .collect();
    let der = encrypt(&msg, &recipients, ContentCipher::Aes256Cbc).unwrap();
    assert_eq!(recipient_ids(&der).unwrap().len(), 10);
    for id in &ten {
        let got = openssl_decrypt(tmp.path(), &der, id)
            .unwrap_or_else(|e| panic!("OpenSSL cannot decrypt for {}:\n{e}", id.name));
        assert!(got == msg, "{}", id.name);
        assert_eq!(*decrypt(&der, &[id.pair()]).unwrap().content, msg);
    }
}
