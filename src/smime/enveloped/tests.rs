//! EnvelopedData and AuthEnvelopedData against real peers: OpenSSL 3 (reads and writes every
//! kind), GnuPG 2.2 `gpgsm` and NSS `cmsutil` (each as far as it goes; the matrix of what they
//! read is asserted, not assumed). A missing peer fails the test with the Debian package to
//! install: a skipped interoperability test proves nothing.

use crate::test_peers::{require, run_in};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use super::*;
use crate::pki::ca::Ca;
use crate::pki::cert::pem_encode;
use crate::pki::keys::{HashAlgorithm, KeyAlgorithm};
use crate::pki::pkcs12::{ExportProfile, build_with_profile};
use crate::pki::profile::{CertificateParams, simple_name};
use cms::content_info::ContentInfo;
use cms::enveloped_data::{EncryptedContentInfo, EnvelopedData, RecipientInfos};

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
    // DER as X.690 orders a SET OF (by encoding), so readers need not copy it to normalise it.
    assert!(matches!(
        crate::ber::to_der_view(&der).unwrap(),
        crate::ber::Der::Borrowed(_)
    ));
    for id in &ten {
        let got = openssl_decrypt(tmp.path(), &der, id)
            .unwrap_or_else(|e| panic!("OpenSSL cannot decrypt for {}:\n{e}", id.name));
        assert!(got == msg, "{}", id.name);
        assert_eq!(*decrypt(&der, &[id.pair()]).unwrap().content, msg);
    }
}

// ---- 3. We read what OpenSSL writes ---------------------------------------------------------

/// `openssl cms -encrypt` of `content` to `to`, with extra options; DER (BER with `-stream`).
fn openssl_encrypt(dir: &Path, content: &[u8], to: &[&Identity], opts: &[&str]) -> Vec<u8> {
    let input = write(dir, "plain.bin", content);
    let mut cmd = openssl();
    cmd.args(["cms", "-encrypt", "-binary", "-outform", "DER", "-in"])
        .arg(&input);
    for id in to {
        cmd.arg("-recip").arg(id.files(dir).0);
    }
    // After the recipients: `-keyopt` applies to the last `-recip`.
    run(cmd.args(opts))
}

#[test]
fn we_decrypt_what_openssl_writes() {
    let f = fx();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let msg = content();
    use ContentCipher::*;
    let oaep256 = [
        "-keyopt",
        "rsa_padding_mode:oaep",
        "-keyopt",
        "rsa_oaep_md:sha256",
    ];
    let cases: Vec<(&Identity, Vec<&str>, ContentCipher)> = vec![
        (&f.rsa, vec!["-aes256"], Aes256Cbc),
        (&f.rsa, vec!["-aes128"], Aes128Cbc),
        (&f.rsa, vec!["-aes192"], Aes192Cbc),
        (&f.rsa, vec!["-aes-256-gcm"], Aes256Gcm),
        (&f.rsa, vec!["-aes-128-gcm"], Aes128Gcm),
        (&f.rsa, vec!["-aes-192-gcm"], Aes192Gcm),
        (&f.rsa, vec!["-aes256", "-stream"], Aes256Cbc),
        (&f.rsa, vec!["-aes-128-gcm", "-stream"], Aes128Gcm),
        (&f.rsa, vec!["-aes256", "-keyid"], Aes256Cbc),
        (&f.rsa, [&["-aes256"][..], &oaep256].concat(), Aes256Cbc),
        (
            &f.rsa,
            [&["-aes-256-gcm"][..], &oaep256].concat(),
            Aes256Gcm,
        ),
        // OAEP with OpenSSL's default hash, SHA-1.
        (
            &f.rsa,
            vec!["-aes128", "-keyopt", "rsa_padding_mode:oaep"],
            Aes128Cbc,
        ),
        // ECDH: OpenSSL's default KDF is the SHA-1 one; the wrap follows the content key size.
        (&f.p256, vec!["-aes256"], Aes256Cbc),
        (&f.p256, vec!["-aes128", "-stream"], Aes128Cbc),
        (&f.p256, vec!["-aes192"], Aes192Cbc),
        (&f.p256, vec!["-aes-128-gcm", "-keyid"], Aes128Gcm),
        (&f.p384, vec!["-aes-256-gcm"], Aes256Gcm),
        (
            &f.p384,
            vec!["-aes256", "-keyopt", "ecdh_kdf_md:sha384"],
            Aes256Cbc,
        ),
        (
            &f.p256,
            vec!["-aes128", "-keyopt", "ecdh_kdf_md:sha256"],
            Aes128Cbc,
        ),
    ];
    for (id, opts, cipher) in cases {
        let der = openssl_encrypt(dir, &msg, &[id], &opts);
        if opts.contains(&"-stream") {
            // Indefinite lengths: this must exercise the BER path.
            assert_eq!(der[1], 0x80, "OpenSSL -stream wrote definite lengths");
        }
        let got = decrypt(&der, &[id.pair()])
            .unwrap_or_else(|e| panic!("cannot decrypt OpenSSL's {} {opts:?}: {e}", id.name));
        assert!(*got.content == msg, "{} {opts:?}: different bytes", id.name);
        assert_eq!(got.cipher, cipher, "{opts:?}");
        assert_eq!(got.key_index, 0);
    }

    // Several recipients in one message, each of them reads it.
    let all = [&f.rsa, &f.p256, &f.p384, &f.rsa_old];
    let der = openssl_encrypt(dir, &msg, &all, &["-aes-256-gcm", "-stream"]);
    for id in all {
        assert_eq!(*decrypt(&der, &[id.pair()]).unwrap().content, msg);
    }
}

// ---- 2. GnuPG and NSS read what we write, as far as they go ---------------------------------

const PW: &str = "peer-password";

/// A throw-away GNUPGHOME whose agent is killed when the test ends, pass or fail.
struct GnupgHome(tempfile::TempDir);

impl GnupgHome {
    fn new() -> Self {
        require("gpgsm", "gpgsm");
        require("gpgconf", "gpgconf");
        let home = tempfile::tempdir().unwrap();
        std::fs::write(
            home.path().join("gpg-agent.conf"),
            "allow-loopback-pinentry\n",
        )
        .unwrap();
        Self(home)
    }

    fn gpgsm(&self) -> Command {
        let mut c = Command::new("gpgsm");
        c.env("GNUPGHOME", self.0.path())
            .args(["--batch", "--pinentry-mode", "loopback"]);
        c
    }

    /// Imports `id` with its key as PKCS #12 in the form GnuPG 2.2 reads; the log on failure.
    fn import(&self, dir: &Path, id: &Identity) -> Result<(), String> {
        let p12 = build_with_profile(
            &id.key,
            &id.cert,
            std::slice::from_ref(fx().ca.cert()),
            PW,
            &id.name,
            ExportProfile::LegacyGnupg22,
        )
        .unwrap();
        let file = write(dir, &format!("{}-gnupg.p12", id.name), &p12);
        let out = run_in(
            self.gpgsm()
                .args(["--passphrase-fd", "0", "--import"])
                .arg(&file),
            Some(format!("{PW}\n").as_bytes()),
        );
        let secret = run_in(
            self.gpgsm().args(["--with-colons", "--list-secret-keys"]),
            None,
        );
        let fpr = hex::encode_upper(HashAlgorithm::Sha1.digest(id.cert.der()));
        if String::from_utf8_lossy(&secret.stdout).contains(&fpr) {
            Ok(())
        } else {
            Err(format!("{}\n{}", text(&out), text(&secret)))
        }
    }

    fn decrypt(&self, dir: &Path, msg: &[u8]) -> Result<Vec<u8>, String> {
        let f = write(dir, "gpgsm-in.der", msg);
        let out = run_in(
            self.gpgsm()
                .args(["--passphrase-fd", "0", "--decrypt"])
                .arg(&f),
            Some(format!("{PW}\n").as_bytes()),
        );
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(text(&out))
        }
    }
}

impl Drop for GnupgHome {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.0.path())
            .args(["--kill", "all"])
            .status();
    }
}

/// An NSS database (no password) holding identities imported with `pk12util`.
struct NssDb {
    arg: String,
    empty: PathBuf,
}

impl NssDb {
    fn new(dir: &Path) -> Self {
        require("certutil", "libnss3-tools");
        require("pk12util", "libnss3-tools");
        require("cmsutil", "libnss3-tools");
        let db = dir.join("nssdb");
        std::fs::create_dir_all(&db).unwrap();
        let arg = format!("sql:{}", db.display());
        let empty = write(dir, "empty-password", b"");
        run(Command::new("certutil").args(["-N", "--empty-password", "-d", &arg]));
        Self { arg, empty }
    }

    fn import(&self, dir: &Path, id: &Identity) {
        let p12 = crate::pki::pkcs12::build(
            &id.key,
            &id.cert,
            std::slice::from_ref(fx().ca.cert()),
            PW,
            &id.name,
        )
        .unwrap();
        let file = write(dir, &format!("{}-nss.p12", id.name), &p12);
        run(Command::new("pk12util")
            .args(["-d", &self.arg, "-W", PW, "-k"])
            .arg(&self.empty)
            .arg("-i")
            .arg(&file));
    }

    fn decrypt(&self, dir: &Path, msg: &[u8]) -> Result<Vec<u8>, String> {
        let f = write(dir, "cmsutil-in.der", msg);
        let out = run_in(
            Command::new("cmsutil")
                .args(["-D", "-d", &self.arg, "-f"])
                .arg(&self.empty)
                .arg("-i")
                .arg(&f),
            None,
        );
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(text(&out))
        }
    }
}

/// One kind of message for the peer matrix: ours, and OpenSSL's rendering of the same kind, so
/// that a peer refusing ours can be shown to refuse OpenSSL's too (its limit, not our bug).
struct Kind {
    label: &'static str,
    ours: Vec<u8>,
    openssl: Vec<u8>,
}

fn kinds(dir: &Path) -> Vec<Kind> {
    let f = fx();
    let msg = content();
    use ContentCipher::*;
    use RecipientIdKind::*;
    let oaep = &[
        "-keyopt",
        "rsa_padding_mode:oaep",
        "-keyopt",
        "rsa_oaep_md:sha256",
    ][..];
    let kdf256 = &["-keyopt", "ecdh_kdf_md:sha256"][..];
    let kdf384 = &["-keyopt", "ecdh_kdf_md:sha384"][..];
    #[allow(clippy::type_complexity)] // a table reads better than a struct here
    let table: Vec<(
        &str,
        Vec<&Identity>,
        bool,
        RecipientIdKind,
        ContentCipher,
        Vec<&str>,
    )> = vec![
        (
            "rsa-pkcs1 aes128-cbc",
            vec![&f.rsa],
            false,
            IssuerAndSerial,
            Aes128Cbc,
            vec!["-aes128"],
        ),
        (
            "rsa-pkcs1 aes256-cbc",
            vec![&f.rsa],
            false,
            IssuerAndSerial,
            Aes256Cbc,
            vec!["-aes256"],
        ),
        (
            "rsa-pkcs1 aes256-cbc ski",
            vec![&f.rsa],
            false,
            SubjectKeyId,
            Aes256Cbc,
            vec!["-aes256", "-keyid"],
        ),
        (
            "rsa-oaep aes256-cbc",
            vec![&f.rsa],
            true,
            IssuerAndSerial,
            Aes256Cbc,
            [&["-aes256"][..], oaep].concat(),
        ),
        (
            "rsa-pkcs1 aes128-gcm",
            vec![&f.rsa],
            false,
            IssuerAndSerial,
            Aes128Gcm,
            vec!["-aes-128-gcm"],
        ),
        (
            "rsa-pkcs1 aes256-gcm",
            vec![&f.rsa],
            false,
            IssuerAndSerial,
            Aes256Gcm,
            vec!["-aes-256-gcm"],
        ),
        (
            "ecdh-p256 aes128-cbc",
            vec![&f.p256],
            false,
            IssuerAndSerial,
            Aes128Cbc,
            [&["-aes128"][..], kdf256].concat(),
        ),
        (
            "ecdh-p256 aes256-cbc",
            vec![&f.p256],
            false,
            IssuerAndSerial,
            Aes256Cbc,
            [&["-aes256"][..], kdf256].concat(),
        ),
        (
            "ecdh-p384 aes256-cbc",
            vec![&f.p384],
            false,
            IssuerAndSerial,
            Aes256Cbc,
            [&["-aes256"][..], kdf384].concat(),
        ),
        (
            "ecdh-p256 aes256-gcm",
            vec![&f.p256],
            false,
            IssuerAndSerial,
            Aes256Gcm,
            [&["-aes-256-gcm"][..], kdf256].concat(),
        ),
        (
            "rsa+ecdh-p256 aes256-cbc",
            vec![&f.rsa, &f.p256],
            false,
            IssuerAndSerial,
            Aes256Cbc,
            [&["-aes256"][..], kdf256].concat(),
        ),
    ];
    table
        .into_iter()
        .map(|(label, ids, oaep, id, cipher, opts)| {
            let recipients: Vec<Recipient<'_>> = ids
                .iter()
                .map(|i| Recipient {
                    cert: &i.cert,
                    oaep,
                    id,
                })
                .collect();
            Kind {
                label,
                ours: encrypt(&msg, &recipients, cipher).unwrap(),
                openssl: openssl_encrypt(dir, &msg, &ids, &opts),
            }
        })
        .collect()
}

/// Runs `read` on ours and OpenSSL's message of every kind, prints the matrix, checks that the
/// peer treats both alike and returns the labels it decrypts byte-exact.
fn matrix(
    peer: &str,
    kinds: &[Kind],
    mut read: impl FnMut(&[u8]) -> Result<Vec<u8>, String>,
) -> Vec<&'static str> {
    let msg = content();
    let mut readable = Vec::new();
    for k in kinds {
        let ours = read(&k.ours);
        let theirs = read(&k.openssl);
        let verdict = match &ours {
            Ok(got) => {
                assert!(
                    *got == msg,
                    "{peer} decrypted our {} to other bytes",
                    k.label
                );
                readable.push(k.label);
                "yes".to_string()
            }
            Err(e) => format!(
                "no: {}",
                e.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("")
            ),
        };
        println!("{peer:8} {:26} {verdict}", k.label);
        assert_eq!(
            ours.is_ok(),
            theirs.is_ok(),
            "{peer} treats our {} differently from OpenSSL's:\nours: {ours:?}\nOpenSSL's: {theirs:?}",
            k.label
        );
    }
    readable
}

#[test]
fn gpgsm_and_nss_decrypt_what_they_support() {
    let f = fx();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let kinds = kinds(dir);

    // GnuPG 2.2.40: PKCS #1 v1.5 key transport named by issuer and serial, AES-CBC. It cannot
    // name a recipient by subjectKeyIdentifier, knows neither OAEP nor AuthEnvelopedData, and
    // cannot even import an EC private key from PKCS #12 (gpgsm segfaults; it did the same on
    // `openssl pkcs12 -export -legacy` output when this was written), so ECDH is out of reach
    // and a mixed message opens with the RSA key. Every "no" is shown to hold for OpenSSL's
    // rendering of the same kind too.
    let gnupg = GnupgHome::new();
    gnupg.import(dir, &f.rsa).unwrap();
    for id in [&f.p256, &f.p384] {
        assert!(
            gnupg.import(dir, id).is_err(),
            "gpgsm now imports EC keys: extend the matrix with ECDH"
        );
    }
    let gpgsm_reads = matrix("gpgsm", &kinds, |der| gnupg.decrypt(dir, der));
    assert_eq!(
        gpgsm_reads,
        [
            "rsa-pkcs1 aes128-cbc",
            "rsa-pkcs1 aes256-cbc",
            "rsa+ecdh-p256 aes256-cbc"
        ]
    );

    // NSS 3.87: PKCS #1 v1.5 key transport (either recipient id), AES-CBC. No OAEP, no
    // AuthEnvelopedData, and any KeyAgreeRecipientInfo makes it reject the whole message, even
    // one that also holds a recipient info for its RSA key.
    let nss = NssDb::new(dir);
    for id in [&f.rsa, &f.p256, &f.p384] {
        nss.import(dir, id);
    }
    let nss_reads = matrix("cmsutil", &kinds, |der| nss.decrypt(dir, der));
    assert_eq!(
        nss_reads,
        [
            "rsa-pkcs1 aes128-cbc",
            "rsa-pkcs1 aes256-cbc",
            "rsa-pkcs1 aes256-cbc ski"
        ]
    );
}

#[test]
fn we_decrypt_what_gpgsm_and_nss_write() {
    let f = fx();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let msg = content();
    let input = write(dir, "plain.bin", &msg);

    // gpgsm encrypts only to certificates that chain to a root in trustlist.txt ("S" for
    // S/MIME, "relax" for a root without the usual extensions checks); it cannot encrypt to EC
    // keys at all ("Invalid S-expression"), so RSA is all it writes.
    let gnupg = GnupgHome::new();
    gnupg.import(dir, &f.rsa).unwrap();
    let ca_fpr = hex::encode_upper(HashAlgorithm::Sha1.digest(f.ca.cert().der()));
    std::fs::write(
        gnupg.0.path().join("trustlist.txt"),
        format!("{ca_fpr} S relax\n"),
    )
    .unwrap();
    let fpr = hex::encode_upper(HashAlgorithm::Sha1.digest(f.rsa.cert.der()));
    for (algo, cipher) in [
        (None, ContentCipher::Aes128Cbc),
        (Some("AES256"), ContentCipher::Aes256Cbc),
    ] {
        let mut cmd = gnupg.gpgsm();
        cmd.args(["--disable-crl-checks", "--recipient", &fpr]);
        if let Some(a) = algo {
            cmd.args(["--cipher-algo", a]);
        }
        let der = run(cmd.arg("--encrypt").arg(&input));
        assert_eq!(der[1], 0x80, "gpgsm no longer writes BER: this tests less");
        let got = decrypt(&der, &[f.p256.pair(), f.rsa.pair()])
            .unwrap_or_else(|e| panic!("cannot decrypt gpgsm's {cipher}: {e}"));
        assert!(*got.content == msg, "gpgsm {cipher}: different bytes");
        assert_eq!((got.cipher, got.key_index), (cipher, 1));
    }

    // cmsutil writes PKCS #1 v1.5 with AES-CBC, and refuses EC recipients.
    let nss = NssDb::new(dir);
    nss.import(dir, &f.rsa);
    let out = dir.join("nss.der");
    run(Command::new("cmsutil")
        .args(["-E", "-r", &f.rsa.name, "-d", &nss.arg, "-f"])
        .arg(&nss.empty)
        .arg("-i")
        .arg(&input)
        .arg("-o")
        .arg(&out));
    let der = std::fs::read(&out).unwrap();
    let got = decrypt(&der, &[f.rsa.pair()]).unwrap();
    assert!(*got.content == msg, "cmsutil: different bytes");
    assert_eq!(
        got.cipher,
        ContentCipher::Aes128Cbc,
        "NSS changed its default"
    );
    nss.import(dir, &f.p256);
    let refused = run_in(
        Command::new("cmsutil")
            .args(["-E", "-r", &f.p256.name, "-d", &nss.arg, "-f"])
            .arg(&nss.empty)
            .arg("-i")
            .arg(&input)
            .arg("-o")
            .arg(dir.join("nss-ec.der")),
        None,
    );
    assert!(
        !refused.status.success(),
        "cmsutil now encrypts to EC keys: read its output here"
    );
}

// ---- 4. Old keys and strangers --------------------------------------------------------------

#[test]
fn old_keys_open_old_mail_and_strangers_are_named() {
    let f = fx();
    let msg = b"renewed".to_vec();
    let held = [f.rsa.pair(), f.rsa_old.pair(), f.p256.pair()];

    // Mail encrypted to the certificate the user had before renewal.
    let old = encrypt(&msg, &[f.rsa_old.to()], ContentCipher::Aes256Gcm).unwrap();
    let got = decrypt(&old, &held).unwrap();
    assert_eq!((got.content.as_slice(), got.key_index), (&msg[..], 1));
    // Only the current key: the old mail names a key we do not hold.
    assert!(matches!(
        decrypt(&old, &[f.rsa.pair()]),
        Err(EnvelopedError::NoMatchingKey { .. })
    ));

    // A message for others, named both ways: the error lists them.
    let ski = Recipient {
        id: RecipientIdKind::SubjectKeyId,
        ..f.p384.to()
    };
    let foreign = encrypt(&msg, &[f.extra[0].to(), ski], ContentCipher::Aes128Cbc).unwrap();
    let Err(EnvelopedError::NoMatchingKey { recipients }) = decrypt(&foreign, &held) else {
        panic!("a message for others must be NoMatchingKey");
    };
    assert_eq!(recipients, recipient_ids(&foreign).unwrap());
    assert_eq!(recipients.len(), 2);
    let by_serial = format!(
        "issuer \"CN=Enveloped Test CA\" serial {}",
        f.extra[0].cert.serial_hex()
    );
    let by_ski = format!(
        "subjectKeyIdentifier {}",
        hex::encode(f.p384.cert.subject_key_id().unwrap().unwrap())
    );
    assert!(recipients.contains(&by_serial), "{recipients:?}");
    assert!(recipients.contains(&by_ski), "{recipients:?}");
    let text = EnvelopedError::NoMatchingKey { recipients }.to_string();
    assert!(text.contains(&by_serial), "{text}");
    assert!(matches!(
        decrypt::<PrivateKey>(&foreign, &[]),
        Err(EnvelopedError::NoMatchingKey { .. })
    ));
}

#[test]
fn versions_and_parameters_follow_the_rfcs() {
    let f = fx();
    let version = |der: &[u8]| {
        let ci = ContentInfo::from_der(der).unwrap();
        ci.content.decode_as::<EnvelopedData>().unwrap().version
    };
    let ias = encrypt(b"x", &[f.rsa.to()], ContentCipher::Aes256Cbc).unwrap();
    assert_eq!(version(&ias), CmsVersion::V0);
    let ski = Recipient {
        id: RecipientIdKind::SubjectKeyId,
        ..f.rsa.to()
    };
    let ski = encrypt(b"x", &[ski], ContentCipher::Aes256Cbc).unwrap();
    assert_eq!(version(&ski), CmsVersion::V2);
    let kari = encrypt(b"x", &[f.p256.to()], ContentCipher::Aes256Cbc).unwrap();
    assert_eq!(version(&kari), CmsVersion::V2);

    // RFC 5084: 12-byte nonce, ICVlen 16 spelt out (not the DEFAULT 12), 16-byte mac.
    let gcm = encrypt(b"x", &[f.p256.to()], ContentCipher::Aes128Gcm).unwrap();
    let ci = ContentInfo::from_der(&gcm).unwrap();
    assert_eq!(ci.content_type, oid::CMS_AUTH_ENVELOPED_DATA);
    let aed: cms::authenveloped_data::AuthEnvelopedData = ci.content.decode_as().unwrap();
    assert_eq!(aed.version, CmsVersion::V0);
    assert_eq!(aed.mac.as_bytes().len(), 16);
    let params: GcmParameters = aed
        .auth_encrypted_content_info
        .content_enc_alg
        .parameters
        .unwrap()
        .decode_as()
        .unwrap();
    assert_eq!((params.nonce.as_bytes().len(), params.icv_len), (12, 16));
    // Two messages never share a key and nonce.
    let again = encrypt(b"x", &[f.p256.to()], ContentCipher::Aes128Gcm).unwrap();
    assert_ne!(gcm, again);

    assert!(matches!(
        encrypt(b"x", &[], ContentCipher::Aes256Cbc),
        Err(EnvelopedError::NoRecipients)
    ));
    // The CA certificate has no key-transport or key-agreement usage.
    assert!(matches!(
        encrypt(
            b"x",
            &[Recipient {
                cert: f.ca.cert(),
                oaep: false,
                id: RecipientIdKind::IssuerAndSerial
            }],
            ContentCipher::Aes256Cbc
        ),
        Err(EnvelopedError::UnsuitableRecipient { .. })
    ));
    assert_eq!(
        "AES256-GCM".parse::<ContentCipher>().unwrap(),
        ContentCipher::Aes256Gcm
    );
}

// ---- 5. Hostile input -----------------------------------------------------------------------

/// Position of `needle` in `hay` (exactly once).
fn find(hay: &[u8], needle: &[u8]) -> usize {
    let hits: Vec<usize> = hay
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(hits.len(), 1, "pattern {} not unique", hex::encode(needle));
    hits[0]
}

fn replaced(der: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = find(der, from);
    let mut out = der.to_vec();
    out[at..at + to.len()].copy_from_slice(to);
    out
}

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn truncations_and_bit_flips_never_panic() {
    let f = fx();
    let msg = b"Subject: short\r\n\r\nbody\r\n".to_vec();
    let keys = [f.rsa.pair(), f.p256.pair()];
    let samples = [
        (
            encrypt(&msg, &[f.p256.to()], ContentCipher::Aes128Gcm).unwrap(),
            true,
        ),
        (
            encrypt(&msg, &[f.rsa.to()], ContentCipher::Aes256Cbc).unwrap(),
            false,
        ),
        (
            encrypt(
                &msg,
                &[Recipient {
                    oaep: true,
                    ..f.rsa.to()
                }],
                ContentCipher::Aes256Gcm,
            )
            .unwrap(),
            true,
        ),
    ];
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    for (der, authenticated) in &samples {
        assert_eq!(*decrypt(der, &keys).unwrap().content, msg);
        for len in 0..der.len() {
            assert!(
                matches!(
                    decrypt(&der[..len], &keys),
                    Err(EnvelopedError::Malformed(_))
                ),
                "truncation to {len} bytes"
            );
            let _ = recipient_ids(&der[..len]);
        }
        for _ in 0..150 {
            let mut bad = der.clone();
            let at = rng.below(bad.len());
            bad[at] ^= 1 << rng.below(8);
            let _ = recipient_ids(&bad);
            if let Ok(d) = decrypt(&bad, &keys) {
                // Outside the ciphertext and tag a flip can be harmless (a content type, a
                // name we do not compare byte-wise); with GCM it can never change the content.
                if *authenticated {
                    assert_eq!(*d.content, msg, "flip at {at} changed GCM content");
                }
            }
        }
    }
}

#[test]
fn wrong_oids_and_absurd_lengths_are_typed_errors() {
    let f = fx();
    let keys = [f.rsa.pair(), f.p256.pair()];
    let cbc = encrypt(b"x", &[f.rsa.to()], ContentCipher::Aes256Cbc).unwrap();
    let kari = encrypt(b"x", &[f.p256.to()], ContentCipher::Aes128Cbc).unwrap();
    let oid_der = |o: ObjectIdentifier| o.to_der().unwrap();
    let signed_data = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
    let aes256_ecb = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.41");
    let sha256_rsa = oid::SHA256_WITH_RSA;

    let not_enveloped = replaced(
        &cbc,
        &oid_der(oid::CMS_ENVELOPED_DATA),
        &oid_der(signed_data),
    );
    assert_eq!(
        decrypt(&not_enveloped, &keys).unwrap_err(),
        EnvelopedError::NotEnveloped(signed_data)
    );
    let ecb = replaced(&cbc, &oid_der(oid::AES256_CBC), &oid_der(aes256_ecb));
    assert!(matches!(
        decrypt(&ecb, &keys),
        Err(EnvelopedError::UnsupportedAlgorithm(_))
    ));
    let ktri = replaced(&cbc, &oid_der(oid::RSA_ENCRYPTION), &oid_der(sha256_rsa));
    assert!(matches!(
        decrypt(&ktri, &keys),
        Err(EnvelopedError::UnsupportedAlgorithm(_))
    ));
    // An unknown KDF scheme and an unknown wrap algorithm (last arc changed).
    let mut scheme = oid_der(oid::ECDH_STD_SHA256KDF);
    let bad_scheme = {
        let mut s = scheme.clone();
        *s.last_mut().unwrap() = 0x7f;
        s
    };
    let kari_bad = replaced(&kari, &scheme, &bad_scheme);
    assert!(matches!(
        decrypt(&kari_bad, &keys),
        Err(EnvelopedError::UnsupportedAlgorithm(_))
    ));
    scheme = oid_der(oid::AES128_WRAP);
    let mut bad_wrap = scheme.clone();
    *bad_wrap.last_mut().unwrap() = 0x7f;
    assert!(matches!(
        decrypt(&replaced(&kari, &scheme, &bad_wrap), &keys),
        Err(EnvelopedError::UnsupportedAlgorithm(_))
    ));
    // GCM in EnvelopedData is not RFC 5084.
    let gcm_in_ed = replaced(&cbc, &oid_der(oid::AES256_CBC), &oid_der(oid::AES256_GCM));
    assert!(matches!(
        decrypt(&gcm_in_ed, &keys),
        Err(EnvelopedError::UnsupportedAlgorithm(_))
    ));

    // Absurd lengths: the outer one claims 2 GiB, an inner one more than is there.
    let mut huge = cbc.clone();
    huge.splice(1..4, [0x84, 0x7f, 0xff, 0xff, 0xff]);
    assert!(matches!(
        decrypt(&huge, &keys),
        Err(EnvelopedError::Malformed(_))
    ));
    let mut inner = cbc.clone();
    let ec = find(&cbc, &oid_der(oid::CMS_DATA));
    inner[ec - 1] = 0x7f; // the encryptedContentInfo SEQUENCE's length byte
    assert!(matches!(
        decrypt(&inner, &keys),
        Err(EnvelopedError::Malformed(_))
    ));
    for junk in [&[][..], &[0x30, 0x80], &[0x00], b"-----BEGIN CMS-----"] {
        assert!(matches!(
            decrypt(junk, &keys),
            Err(EnvelopedError::Malformed(_))
        ));
    }
}

/// The first RecipientInfo, decoded.
fn first_recipient_info(der: &[u8]) -> RecipientInfo {
    let env = parse(der).unwrap();
    RecipientInfo::from_der(&env.recipient_infos[0].to_der().unwrap()).unwrap()
}

/// The encrypted (or wrapped) content-encryption key of the first recipient.
fn first_encrypted_key(der: &[u8]) -> Vec<u8> {
    match first_recipient_info(der) {
        RecipientInfo::Ktri(k) => k.enc_key.as_bytes().to_vec(),
        RecipientInfo::Kari(k) => k.recipient_enc_keys[0].enc_key.as_bytes().to_vec(),
        other => panic!("unexpected {other:?}"),
    }
}

/// The ephemeral public point of the first (key agreement) recipient.
fn originator_point(der: &[u8]) -> Vec<u8> {
    match first_recipient_info(der) {
        RecipientInfo::Kari(k) => match k.originator {
            cms::enveloped_data::OriginatorIdentifierOrKey::OriginatorKey(o) => {
                o.public_key.raw_bytes().to_vec()
            }
            other => panic!("unexpected {other:?}"),
        },
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn every_key_failure_is_the_same_decryption_failure() {
    let f = fx();
    let msg = b"secret".to_vec();
    let keys = [f.rsa.pair(), f.p256.pair()];
    let failed = Err::<(), _>(EnvelopedError::DecryptionFailed);
    let outcome = |der: &[u8], keys: &[(Cert, PrivateKey)]| decrypt(der, keys).map(|_| ());

    // A flipped GCM tag (the mac is the last field of AuthEnvelopedData).
    let gcm = encrypt(&msg, &[f.rsa.to()], ContentCipher::Aes256Gcm).unwrap();
    let mut tag = gcm.clone();
    *tag.last_mut().unwrap() ^= 0x01;
    assert_eq!(outcome(&tag, &keys), failed);

    // A corrupted RSA-encrypted key (PKCS #1 v1.5 and OAEP), and the right name with the wrong
    // key: one error, after the same steps (RFC 3218 section 2.3).
    let enc_key_at = |der: &[u8]| find(der, &first_encrypted_key(der));
    for oaep in [false, true] {
        let r = Recipient { oaep, ..f.rsa.to() };
        let der = encrypt(&msg, &[r], ContentCipher::Aes128Gcm).unwrap();
        for (i, bit) in [(0, 0x80), (100, 0x01), (255, 0x10)] {
            let mut bad = der.clone();
            bad[enc_key_at(&der) + i] ^= bit;
            assert_eq!(outcome(&bad, &keys), failed, "oaep={oaep} byte {i}");
        }
        let impostor = [(f.rsa.cert.clone(), f.rsa_old.pair().1)];
        assert_eq!(outcome(&der, &impostor), failed, "oaep={oaep} wrong key");
        // An EC key under the RSA certificate's name: also the same.
        let wrong_type = [(f.rsa.cert.clone(), f.p256.pair().1)];
        assert_eq!(outcome(&der, &wrong_type), failed);
    }

    // ECDH: a damaged wrapped key, a point off the curve, the wrong key.
    let kari = encrypt(&msg, &[f.p256.to()], ContentCipher::Aes128Gcm).unwrap();
    let wrapped_at = find(&kari, &first_encrypted_key(&kari));
    let mut bad = kari.clone();
    bad[wrapped_at + 3] ^= 0x04;
    assert_eq!(outcome(&bad, &keys), failed);
    let point_at = find(&kari, &originator_point(&kari));
    let mut bad = kari.clone();
    bad[point_at + 10] ^= 0x01;
    assert_eq!(outcome(&bad, &keys), failed);
    let impostor = [(f.p256.cert.clone(), f.extra[1].pair().1)];
    assert_eq!(outcome(&kari, &impostor), failed);

    // AES-CBC has no integrity: with a random key the padding is valid about once in 256,
    // and then garbage comes out instead of an error. Never the plaintext, though.
    let cbc = encrypt(&msg, &[f.rsa.to()], ContentCipher::Aes256Cbc).unwrap();
    let mut bad = cbc.clone();
    bad[enc_key_at(&cbc) + 7] ^= 0x02;
    match decrypt(&bad, &keys) {
        Err(e) => assert_eq!(e, EnvelopedError::DecryptionFailed),
        Ok(d) => assert_ne!(*d.content, msg),
    }
}

#[test]
fn recipient_lists_are_bounded() {
    let f = fx();
    let many: Vec<Recipient<'_>> = (0..70).map(|_| f.rsa_old.to()).collect();
    let der = encrypt(b"x", &many, ContentCipher::Aes128Cbc).unwrap();
    let ids = recipient_ids(&der).unwrap();
    assert_eq!(ids.len(), MAX_RECIPIENT_INFOS + 1);
    assert_eq!(
        ids.last().unwrap(),
        "6 more recipients not examined (limit 64)"
    );
    assert_eq!(*decrypt(&der, &[f.rsa_old.pair()]).unwrap().content, b"x");
}

/// An AuthEnvelopedData with one authenticated attribute (`hello`) and AES-128-GCM to the P-256
/// identity, and the same message with the attribute changed to `jello`.
///
/// Nobody we know writes authAttrs, but RFC 5083 section 2.2 defines them: the AAD is their DER
/// with a SET OF tag. Build such a message by hand.
fn auth_attrs_message(f: &Fixtures) -> (Vec<u8>, Vec<u8>) {
    let cipher = ContentCipher::Aes128Gcm;
    let cek = random(cipher.key_len()).unwrap();
    let nonce = random(12).unwrap();
    let attr = x509_cert::attr::Attribute {
        oid: ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1"),
        values: der::asn1::SetOfVec::try_from(vec![
            Any::encode_from(&der::asn1::Utf8StringRef::new("hello").unwrap()).unwrap(),
        ])
        .unwrap(),
    };
    let attrs = der::asn1::SetOfVec::try_from(vec![attr]).unwrap();
    let mut body = b"authenticated".to_vec();
    let tag = seal_gcm(cipher, &cek, &nonce, &attrs.to_der().unwrap(), &mut body).unwrap();
    let aed = cms::authenveloped_data::AuthEnvelopedData {
        version: CmsVersion::V0,
        originator_info: None,
        recip_infos: RecipientInfos::try_from(vec![recipient_info(&f.p256.to(), &cek).unwrap()])
            .unwrap(),
        auth_encrypted_content_info: EncryptedContentInfo {
            content_type: oid::CMS_DATA,
            content_enc_alg: alg_id(
                cipher.oid(),
                Some(
                    Any::encode_from(&GcmParameters {
                        nonce: OctetString::new(nonce.to_vec()).unwrap(),
                        icv_len: 16,
                    })
                    .unwrap(),
                ),
            ),
            encrypted_content: Some(OctetString::new(body).unwrap()),
        },
        auth_attrs: Some(attrs),
        mac: OctetString::new(tag.as_ref()).unwrap(),
        unauth_attrs: None,
    };
    let der = ContentInfo {
        content_type: oid::CMS_AUTH_ENVELOPED_DATA,
        content: Any::encode_from(&aed).unwrap(),
    }
    .to_der()
    .unwrap();
    let tampered = replaced(&der, b"hello", b"jello");
    (der, tampered)
}

#[test]
fn authenticated_attributes_are_authenticated() {
    let f = fx();
    let (der, tampered) = auth_attrs_message(f);
    let keys = [f.p256.pair()];
    assert_eq!(*decrypt(&der, &keys).unwrap().content, b"authenticated");
    assert_eq!(
        decrypt(&tampered, &keys).unwrap_err(),
        EnvelopedError::DecryptionFailed
    );
}

/// The first release of each OpenSSL series that reads AuthEnvelopedData with authAttrs.
///
/// Until then OpenSSL's ASN.1 template for CMS_AuthEnvelopedData carried the implicit tags of
/// AuthenticatedData: authAttrs [2] and unauthAttrs [3] instead of RFC 5083's [1] and [2]
/// (openssl/openssl#26101, #31635). A message with authAttrs then fails to parse, the [1] met
/// where the `mac` OCTET STRING is expected ("asn1_check_tlen: wrong tag ... Field=mac,
/// Type=CMS_AuthEnvelopedData"). The fix, openssl/openssl#31695 (tags corrected and the
/// attributes fed to GCM as AAD), was merged to master and 4.0 on 2026-07-13 and backported
/// by #32076 (merged 2026-08-21); the releases of late August 2026 were the first of their
/// series after it. Series 3.1 to 3.4 ended unfixed; later series branched after the fix.
const OPENSSL_AUTH_ATTRS_FIXED_IN: [(u32, u32, u32); 4] =
    [(3, 0, 22), (3, 5, 8), (3, 6, 4), (4, 0, 2)];

/// Whether OpenSSL `v` is at or after [`OPENSSL_AUTH_ATTRS_FIXED_IN`] for its series.
fn openssl_reads_auth_attrs(v: (u32, u32, u32)) -> bool {
    match OPENSSL_AUTH_ATTRS_FIXED_IN
        .iter()
        .find(|fixed| (fixed.0, fixed.1) == (v.0, v.1))
    {
        Some(fixed) => v >= *fixed,
        None => (v.0, v.1) > (4, 0),
    }
}

/// The OpenSSL library version `openssl version` reports (`Library:` when it differs from the
/// tool's own), as (major, minor, patch).
fn openssl_library_version() -> (u32, u32, u32) {
    let out = text(&run_in(openssl().arg("version"), None));
    let line = out.rsplit("Library:").next().unwrap_or(&out);
    let number = line
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no version in `openssl version`: {out}"));
    let mut parts = number
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let mut next = || parts.next().unwrap_or(0);
    (next(), next(), next())
}

#[test]
fn openssl_reads_auth_attrs_from_3_0_22_and_3_5_8_pr_31695() {
    let f = fx();
    let (der, tampered) = auth_attrs_message(f);
    let tmp = tempfile::tempdir().unwrap();
    let v = openssl_library_version();
    let version = format!("{}.{}.{}", v.0, v.1, v.2);
    if openssl_reads_auth_attrs(v) {
        // OpenSSL computes the same AAD.
        assert_eq!(
            openssl_decrypt(tmp.path(), &der, &f.p256).unwrap_or_else(|e| panic!(
                "OpenSSL {version} should read authAttrs (openssl/openssl#31695): {e}"
            )),
            b"authenticated"
        );
        assert!(openssl_decrypt(tmp.path(), &tampered, &f.p256).is_err());
    } else {
        // Its known defect, asserted rather than skipped: it refuses to parse the message.
        eprintln!(
            "OpenSSL {version} predates the authAttrs fix (openssl/openssl#31695, first in \
             {OPENSSL_AUTH_ATTRS_FIXED_IN:?}): asserting its known refusal"
        );
        for msg in [&der, &tampered] {
            let e = openssl_decrypt(tmp.path(), msg, &f.p256).expect_err(&format!(
                "OpenSSL {version} decrypted authAttrs although it predates \
                 openssl/openssl#31695: correct OPENSSL_AUTH_ATTRS_FIXED_IN"
            ));
            assert!(
                e.contains("wrong tag") && e.contains("Field=mac, Type=CMS_AuthEnvelopedData"),
                "OpenSSL {version} refused authAttrs, but not with its known defect \
                 (wrong tag at Field=mac): {e}"
            );
        }
    }
}

#[test]
fn openssl_auth_attrs_fix_versions() {
    for (v, fixed) in [
        ((3, 0, 19), false),
        ((3, 0, 21), false),
        ((3, 0, 22), true),
        ((3, 0, 23), true),
        ((3, 2, 9), false),
        ((3, 4, 5), false),
        ((3, 5, 7), false),
        ((3, 5, 8), true),
        ((3, 6, 3), false),
        ((3, 6, 4), true),
        ((4, 0, 1), false),
        ((4, 0, 2), true),
        ((4, 1, 0), true),
        ((1, 1, 1), false),
    ] {
        assert_eq!(openssl_reads_auth_attrs(v), fixed, "{v:?}");
    }
}
