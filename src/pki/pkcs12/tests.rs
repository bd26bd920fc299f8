//! PKCS #12 against real peers: OpenSSL 3 (writes and reads), NSS `pk12util` and GnuPG `gpgsm`
//! (read what we write). A missing peer fails the test with the package to install: a skipped
//! interoperability test proves nothing.

use crate::test_peers::{require, run_in};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::asn1::{Pbes2Params, Pbkdf2Params};
use super::*;
use crate::pki::cert::pem_blocks;

/// Non-ASCII on purpose: PBES2 uses the UTF-8 bytes, the MAC the BMPString, and every peer must
/// agree with us on both.
const PW: &str = "s3cret pässwörd";
const NAME: &str = "Alice Exämple";

fn openssl() -> Command {
    require("openssl", "openssl");
    Command::new("openssl")
}

/// Runs a command that must succeed, returning stdout followed by stderr as text.
fn run(cmd: &mut Command) -> String {
    let out = run_in(cmd, None);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// A key and certificate made by OpenSSL, as files and as our types.
struct Identity {
    key_file: PathBuf,
    cert_file: PathBuf,
    key: PrivateKey,
    cert: Cert,
}

#[derive(Clone, Copy)]
enum Kind {
    Rsa,
    P256,
}

fn identity(dir: &Path, name: &str, kind: Kind, issuer: Option<&Identity>) -> Identity {
    let key_file = dir.join(format!("{name}.key"));
    let cert_file = dir.join(format!("{name}.pem"));
    let mut keygen = openssl();
    keygen.args(["genpkey", "-out"]).arg(&key_file);
    match kind {
        Kind::Rsa => keygen.args(["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
        Kind::P256 => keygen.args(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
    };
    run(&mut keygen);
    let subj = format!("/CN={name}/emailAddress={name}@example.org");
    match issuer {
        None => run(openssl()
            .args(["req", "-x509", "-new", "-days", "30", "-subj", &subj])
            .args(["-addext", "basicConstraints=critical,CA:TRUE", "-key"])
            .arg(&key_file)
            .arg("-out")
            .arg(&cert_file)),
        Some(ca) => {
            let csr = dir.join(format!("{name}.csr"));
            run(openssl()
                .args(["req", "-new", "-subj", &subj, "-key"])
                .arg(&key_file)
                .arg("-out")
                .arg(&csr));
            run(openssl()
                .args(["x509", "-req", "-days", "30", "-set_serial", "7", "-in"])
                .arg(&csr)
                .arg("-CA")
                .arg(&ca.cert_file)
                .arg("-CAkey")
                .arg(&ca.key_file)
                .arg("-out")
                .arg(&cert_file))
        }
    };
    let key_der = run_in(
        openssl()
            .args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in"])
            .arg(&key_file),
        None,
    )
    .stdout;
    let cert_der = run_in(
        openssl()
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert_file),
        None,
    )
    .stdout;
    Identity {
        key: PrivateKey::from_pkcs8_der(&key_der).expect("OpenSSL's key loads"),
        cert: Cert::from_der(&cert_der).expect("OpenSSL's certificate loads"),
        key_file,
        cert_file,
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn pass_arg(pw: &str) -> String {
    format!("pass:{pw}")
}

/// The SubjectPublicKeyInfo of a PEM private key, as OpenSSL computes it.
fn openssl_public_key(dir: &Path, key_pem: &[u8]) -> Vec<u8> {
    let f = write(dir, "recovered.key", key_pem);
    run_in(
        openssl()
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(&f),
        None,
    )
    .stdout
}

fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    crate::pki::cert::pem_encode(label, der).into_bytes()
}

// ---- 1. OpenSSL reads what we write -----------------------------------------------------------

#[test]
fn openssl_reads_what_we_build() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = identity(dir, "ca", Kind::Rsa, None);
    let alice = identity(dir, "alice", Kind::Rsa, Some(&ca));
    let bob = identity(dir, "bob", Kind::P256, None);

    for (who, chain) in [(&alice, vec![ca.cert.clone()]), (&bob, vec![])] {
        let p12 = build(&who.key, &who.cert, &chain, PW, NAME).unwrap();
        let f = write(dir, "ours.p12", &p12);

        // The structure is OpenSSL 3's default, algorithm for algorithm.
        let info = run(openssl()
            .args(["pkcs12", "-info", "-noout", "-passin", &pass_arg(PW), "-in"])
            .arg(&f));
        let n = super::EXPORT_ITERATIONS;
        for line in [
            format!("MAC: sha256, Iteration {n}"),
            format!(
                "PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration {n}, PRF hmacWithSHA256"
            ),
            format!(
                "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration {n}, PRF hmacWithSHA256"
            ),
        ] {
            assert!(info.contains(&line), "missing {line:?} in:\n{info}");
        }

        // The key and every certificate come back out.
        let raw = run_in(
            openssl()
                .args(["pkcs12", "-nodes", "-passin", &pass_arg(PW), "-in"])
                .arg(&f),
            None,
        );
        assert!(
            raw.status.success(),
            "{}",
            String::from_utf8_lossy(&raw.stderr)
        );
        let out = String::from_utf8_lossy(&raw.stdout).into_owned();
        let blocks = pem_blocks(out.as_bytes());
        let keys: Vec<&Vec<u8>> = blocks
            .iter()
            .filter(|(l, _)| l == "PRIVATE KEY")
            .map(|(_, d)| d)
            .collect();
        assert_eq!(keys.len(), 1, "{out}");
        assert_eq!(
            openssl_public_key(dir, &pem("PRIVATE KEY", keys[0])),
            who.key.public_key_der()
        );
        let certs: BTreeSet<Vec<u8>> = blocks
            .iter()
            .filter(|(l, _)| l == "CERTIFICATE")
            .map(|(_, d)| d.clone())
            .collect();
        let expected: BTreeSet<Vec<u8>> = std::iter::once(&who.cert)
            .chain(&chain)
            .map(|c| c.der().to_vec())
            .collect();
        assert_eq!(certs, expected);
        // friendlyName on key and leaf; the same localKeyID on both. OpenSSL 3.0 prints a
        // BMPString by dropping each character's high byte (so Latin-1 here); later versions
        // print UTF-8. Either proves the name was encoded as RFC 2985 says.
        let utf8 = format!("friendlyName: {NAME}").into_bytes();
        let latin1: Vec<u8> = format!("friendlyName: {NAME}")
            .chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap())
            .collect();
        let count = |needle: &[u8]| {
            raw.stdout
                .windows(needle.len())
                .filter(|w| *w == needle)
                .count()
        };
        assert_eq!(count(&utf8) + count(&latin1), 2, "{out}");
        let ids: Vec<&str> = out.lines().filter(|l| l.contains("localKeyID")).collect();
        assert_eq!(ids.len(), 2, "{out}");
        assert_eq!(ids[0], ids[1]);

        // And OpenSSL rejects a wrong password.
        let wrong = run_in(
            openssl()
                .args(["pkcs12", "-noout", "-passin", "pass:wrong", "-in"])
                .arg(&f),
            None,
        );
        assert!(!wrong.status.success());

        // We read our own output back.
        let back = parse(&p12, PW).unwrap();
        assert_eq!(back.key.public_key_der(), who.key.public_key_der());
        assert_eq!(back.cert, who.cert);
        assert_eq!(back.chain, chain);
        assert_eq!(back.friendly_name.as_deref(), Some(NAME));
        assert!(back.warnings.is_empty(), "{:?}", back.warnings);
    }

    // A certificate for another key is refused before anything is written.
    assert!(matches!(
        build(&alice.key, &bob.cert, &[], PW, NAME),
        Err(Pkcs12Error::KeyCertificateMismatch { .. })
    ));
}

// ---- 2. NSS reads what we write (and we read what it writes) ----------------------------------

#[test]
fn nss_round_trip() {
    require("certutil", "libnss3-tools");
    require("pk12util", "libnss3-tools");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = identity(dir, "ca", Kind::Rsa, None);
    let alice = identity(dir, "alice", Kind::Rsa, Some(&ca));
    let p12 = build(
        &alice.key,
        &alice.cert,
        std::slice::from_ref(&ca.cert),
        PW,
        NAME,
    )
    .unwrap();
    let f = write(dir, "ours.p12", &p12);

    let db = dir.join("nssdb");
    std::fs::create_dir(&db).unwrap();
    let db_arg = format!("sql:{}", db.display());
    let empty = write(dir, "empty-password", b"");
    run(Command::new("certutil").args(["-N", "--empty-password", "-d", &db_arg]));
    run(Command::new("pk12util")
        .args(["-d", &db_arg, "-W", PW, "-k"])
        .arg(&empty)
        .arg("-i")
        .arg(&f));

    // Nickname, then trust flags: "u,u,u" marks a certificate with its private key.
    let certs = run(Command::new("certutil").args(["-L", "-d", &db_arg]));
    let listed = |nick: &str, trust: &str| {
        certs.lines().any(|l| {
            l.strip_prefix(nick)
                .is_some_and(|rest| rest.starts_with("  ") && rest.trim() == trust)
        })
    };
    assert!(
        listed(NAME, "u,u,u"),
        "leaf with key not listed by its friendlyName:\n{certs}"
    );
    assert!(
        listed("ca", ",,"),
        "chain certificate not imported:\n{certs}"
    );
    let keys = run(Command::new("certutil")
        .args(["-K", "-d", &db_arg, "-f"])
        .arg(&empty));
    assert!(
        keys.lines()
            .any(|l| l.contains(" rsa ") && l.trim_end().ends_with(NAME)),
        "private key not imported:\n{keys}"
    );
    let detail = run(Command::new("certutil").args(["-L", "-d", &db_arg, "-n", NAME, "-a"]));
    let leaf = pem_blocks(detail.as_bytes());
    assert_eq!(
        leaf.first().map(|(_, d)| d.as_slice()),
        Some(alice.cert.der())
    );

    // And we read what NSS writes: BER with indefinite lengths and segmented strings, PBES2
    // with a high iteration count. This is what a Thunderbird user exports.
    let theirs = dir.join("nss.p12");
    run(Command::new("pk12util")
        .args(["-d", &db_arg, "-n", NAME, "-W", PW, "-k"])
        .arg(&empty)
        .arg("-o")
        .arg(&theirs));
    let theirs = std::fs::read(theirs).unwrap();
    assert_eq!(
        theirs[..2],
        [0x30, 0x80],
        "NSS wrote DER: this no longer tests BER"
    );
    let got = parse(&theirs, PW).unwrap();
    assert_eq!(got.key.public_key_der(), alice.key.public_key_der());
    assert_eq!(got.cert, alice.cert);
    assert_eq!(got.chain, vec![ca.cert.clone()]);
    assert_eq!(got.friendly_name.as_deref(), Some(NAME));
    assert!(matches!(
        parse(&theirs, "wrong"),
        Err(Pkcs12Error::WrongPassword)
    ));
}

// ---- 3. GnuPG reads what we write -------------------------------------------------------------

/// A throw-away GNUPGHOME whose agent is killed when the test ends, pass or fail.
struct GnupgHome(tempfile::TempDir);

impl GnupgHome {
    fn new() -> Self {
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

/// Imports `file` into a fresh GNUPGHOME with `password` on the passphrase fd. Returns gpgsm's
/// log and whether the secret key for the certificate with SHA-1 fingerprint `fpr` is present.
fn gpgsm_import(file: &Path, password: &str, fpr: &str) -> (String, bool) {
    let home = GnupgHome::new();
    let out = run_in(
        home.gpgsm()
            .args(["--passphrase-fd", "0", "--import"])
            .arg(file),
        Some(format!("{password}\n").as_bytes()),
    );
    let secret = run(home.gpgsm().args(["--with-colons", "--list-secret-keys"]));
    let log = format!(
        "{}{}\n{secret}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let present = secret
        .lines()
        .any(|l| l.starts_with("fpr:") && l.contains(fpr));
    (log, present)
}

#[test]
fn gpgsm_imports_what_we_build() {
    require("gpgsm", "gpgsm");
    require("gpgconf", "gpgconf");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let alice = identity(dir, "alice", Kind::Rsa, None);
    let fpr = hex::encode_upper(HashAlgorithm::Sha1.digest(alice.cert.der()));

    let modern = build(&alice.key, &alice.cert, &[], PW, NAME).unwrap();
    let (log, imported) = gpgsm_import(&write(dir, "modern.p12", &modern), PW, &fpr);
    if imported {
        return; // GnuPG 2.4 and later read OpenSSL 3's format.
    }
    // GnuPG 2.2 cannot read PBKDF2 with an explicit PRF, whoever wrote the file. Prove that it
    // is the peer's limit and not our encoding: OpenSSL's own default export fails the same way.
    let theirs = dir.join("openssl.p12");
    run(openssl()
        .args(["pkcs12", "-export", "-passout", &pass_arg(PW), "-inkey"])
        .arg(&alice.key_file)
        .arg("-in")
        .arg(&alice.cert_file)
        .arg("-out")
        .arg(&theirs));
    let (their_log, their_imported) = gpgsm_import(&theirs, PW, &fpr);
    assert!(
        !their_imported,
        "gpgsm imports OpenSSL's default file but not ours:\n{log}\nOpenSSL's:\n{their_log}"
    );
    // The profile made for it must import, with the secret key.
    let compat = build_with_profile(
        &alice.key,
        &alice.cert,
        &[],
        PW,
        NAME,
        ExportProfile::LegacyGnupg22,
    )
    .unwrap();
    let (log, imported) = gpgsm_import(&write(dir, "compat.p12", &compat), PW, &fpr);
    assert!(imported, "gpgsm did not import the secret key:\n{log}");
    let back = parse(&compat, PW).unwrap();
    assert_eq!(back.key.public_key_der(), alice.key.public_key_der());
}

// ---- 4. We read what OpenSSL writes -----------------------------------------------------------

#[test]
fn we_read_what_openssl_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = identity(dir, "ca", Kind::Rsa, None);
    let alice = identity(dir, "alice", Kind::Rsa, Some(&ca));
    let bob = identity(dir, "bob", Kind::P256, None);

    let export = |who: &Identity, pw: &str, extra: &[&str]| -> Vec<u8> {
        let out = dir.join("theirs.p12");
        run(openssl()
            .args([
                "pkcs12",
                "-export",
                "-name",
                NAME,
                "-passout",
                &pass_arg(pw),
            ])
            .args(extra)
            .arg("-inkey")
            .arg(&who.key_file)
            .arg("-in")
            .arg(&who.cert_file)
            .arg("-out")
            .arg(&out));
        std::fs::read(out).unwrap()
    };
    let ca_file = ca.cert_file.to_str().unwrap();
    let legacy = |o: &str| Pkcs12Warning::LegacyEncryption(ObjectIdentifier::new_unwrap(o));
    let rc2_40 = legacy("1.2.840.113549.1.12.1.6");
    let rc2_128 = legacy("1.2.840.113549.1.12.1.5");
    let tdes = legacy("1.2.840.113549.1.12.1.3");

    // (what, whose key, password, extra `openssl pkcs12 -export` options, expected warnings)
    type Case<'a> = (
        &'a str,
        &'a Identity,
        &'a str,
        Vec<&'a str>,
        Vec<Pkcs12Warning>,
    );
    let cases: Vec<Case<'_>> = vec![
        ("default RSA", &alice, PW, vec![], vec![]),
        ("default P-256", &bob, PW, vec![], vec![]),
        ("chain", &alice, PW, vec!["-certfile", ca_file], vec![]),
        (
            "legacy RC2-40/3DES, SHA-1 MAC",
            &alice,
            PW,
            vec!["-legacy", "-certfile", ca_file],
            vec![Pkcs12Warning::Sha1Mac, rc2_40, tdes.clone()],
        ),
        (
            "legacy P-256",
            &bob,
            PW,
            vec!["-legacy"],
            vec![
                Pkcs12Warning::Sha1Mac,
                legacy("1.2.840.113549.1.12.1.6"),
                tdes.clone(),
            ],
        ),
        (
            "legacy RC2-128",
            &alice,
            PW,
            vec!["-legacy", "-certpbe", "PBE-SHA1-RC2-128"],
            vec![Pkcs12Warning::Sha1Mac, rc2_128, tdes.clone()],
        ),
        (
            "PBES2 AES-128/192, SHA-512 MAC",
            &alice,
            PW,
            vec![
                "-keypbe",
                "AES-128-CBC",
                "-certpbe",
                "AES-192-CBC",
                "-macalg",
                "sha512",
            ],
            vec![],
        ),
        (
            "PBES2 3DES, plain certificates, SHA-384 MAC",
            &bob,
            PW,
            vec![
                "-keypbe",
                "DES-EDE3-CBC",
                "-certpbe",
                "NONE",
                "-macalg",
                "sha384",
            ],
            vec![],
        ),
        (
            "legacy 3DES both, one iteration",
            &alice,
            PW,
            vec![
                "-keypbe",
                "PBE-SHA1-3DES",
                "-certpbe",
                "PBE-SHA1-3DES",
                "-noiter",
                "-nomaciter",
            ],
            vec![tdes],
        ),
        ("empty password", &alice, "", vec![], vec![]),
    ];
    for (label, who, pw, extra, warnings) in cases {
        let p12 = export(who, pw, &extra);
        let got = parse(&p12, pw).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(
            got.key.public_key_der(),
            who.key.public_key_der(),
            "{label}"
        );
        assert_eq!(got.cert, who.cert, "{label}");
        let want_chain = if extra.contains(&"-certfile") {
            vec![ca.cert.clone()]
        } else {
            vec![]
        };
        assert_eq!(got.chain, want_chain, "{label}");
        assert_eq!(got.friendly_name.as_deref(), Some(NAME), "{label}");
        assert_eq!(got.warnings, warnings, "{label}");
        if !pw.is_empty() {
            assert!(
                matches!(parse(&p12, "wrong"), Err(Pkcs12Error::WrongPassword)),
                "{label}"
            );
        }
    }

    // What OpenSSL can write but we refuse, each with its own error.
    let no_mac = export(&alice, PW, &["-nomac"]);
    assert!(matches!(parse(&no_mac, PW), Err(Pkcs12Error::NoMac)));
    let no_key = export(&alice, PW, &["-nokeys"]);
    assert!(matches!(parse(&no_key, PW), Err(Pkcs12Error::NoKey)));
    let no_cert = dir.join("nocert.p12");
    run(openssl()
        .args([
            "pkcs12",
            "-export",
            "-nocerts",
            "-passout",
            &pass_arg(PW),
            "-inkey",
        ])
        .arg(&alice.key_file)
        .arg("-out")
        .arg(&no_cert));
    assert!(matches!(
        parse(&std::fs::read(no_cert).unwrap(), PW),
        Err(Pkcs12Error::NoMatchingCertificate)
    ));
}

// ---- 5. Damaged and hostile input -------------------------------------------------------------

/// A PFX around hand-made bags, with a valid MAC, so that parsing gets past the integrity check.
fn sealed(bags: &[SafeBag<'_>]) -> Vec<u8> {
    let safe = encode(&bags.to_vec()).unwrap();
    let auth_safe = encode(&vec![ContentInfo {
        content_type: oid::CMS_DATA,
        content: Some(AnyRef::from(octets(&safe).unwrap())),
    }])
    .unwrap();
    seal(&auth_safe, PW).unwrap()
}

fn shrouded_key_with(alg: &AlgorithmIdentifierOwned, ciphertext: &[u8]) -> Vec<u8> {
    encode(&EncryptedPrivateKeyInfo {
        encryption_algorithm: alg_ref(alg),
        encrypted_data: octets(ciphertext).unwrap(),
    })
    .unwrap()
}

fn bag(bag_id: ObjectIdentifier, value: &[u8]) -> SafeBag<'_> {
    SafeBag {
        bag_id,
        bag_value: AnyRef::from_der(value).unwrap(),
        bag_attributes: None,
    }
}

#[test]
fn damaged_and_hostile_files_give_typed_errors() {
    let key = PrivateKey::generate(crate::pki::keys::KeyAlgorithm::P256).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let bob = identity(tmp.path(), "bob", Kind::P256, None);
    let good = build(&bob.key, &bob.cert, &[], PW, NAME).unwrap();
    assert!(parse(&good, PW).is_ok());

    assert!(matches!(
        parse(&good, "not it"),
        Err(Pkcs12Error::WrongPassword)
    ));
    assert!(matches!(parse(&good, ""), Err(Pkcs12Error::WrongPassword)));

    // Every truncation, and trailing garbage.
    for len in 0..good.len() {
        assert!(
            parse(&good[..len], PW).is_err(),
            "truncated to {len} parsed"
        );
    }
    let mut longer = good.clone();
    longer.push(0);
    assert!(matches!(parse(&longer, PW), Err(Pkcs12Error::Malformed(_))));

    // Random bytes, with and without a plausible SEQUENCE header.
    let mut noise = vec![0u8; 4096];
    for round in 0..200 {
        pbe::random(&mut noise).unwrap();
        let n = 1 + round * 20;
        if round % 2 == 0 {
            noise[0] = 0x30;
            noise[1] = 0x82;
        }
        assert!(parse(&noise[..n], PW).is_err());
    }

    // Every single-bit flip in the protected part is caught by the MAC.
    let pfx = Pfx::from_der(&good).unwrap();
    let auth_safe: &OctetStringRef = pfx.auth_safe.content.unwrap().decode_as().unwrap();
    let auth_safe = auth_safe.as_bytes().to_vec();
    let start = good
        .windows(auth_safe.len())
        .position(|w| w == auth_safe)
        .unwrap();
    for i in (start..start + auth_safe.len()).step_by(37) {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        assert!(
            matches!(parse(&bad, PW), Err(Pkcs12Error::WrongPassword)),
            "flip at {i}"
        );
    }

    // The MAC stripped.
    let stripped = encode(&Pfx {
        version: 3,
        auth_safe: ContentInfo {
            content_type: oid::CMS_DATA,
            content: Some(AnyRef::from(octets(&auth_safe).unwrap())),
        },
        mac_data: None,
    })
    .unwrap();
    assert!(matches!(parse(&stripped, PW), Err(Pkcs12Error::NoMac)));

    // A MAC demanding absurd work is refused before any of it is done.
    let greedy = encode(&Pfx {
        version: 3,
        auth_safe: ContentInfo {
            content_type: oid::CMS_DATA,
            content: Some(AnyRef::from(octets(&auth_safe).unwrap())),
        },
        mac_data: Some(MacData {
            mac: DigestInfo {
                algorithm: AlgorithmIdentifierRef {
                    oid: oid::SHA256,
                    parameters: None,
                },
                digest: octets(&[0u8; 32]).unwrap(),
            },
            mac_salt: octets(&[1u8; 8]).unwrap(),
            iterations: 1 << 40,
        }),
    })
    .unwrap();
    let t = Instant::now();
    assert!(matches!(
        parse(&greedy, PW),
        Err(Pkcs12Error::IterationCountTooHigh { .. })
    ));
    assert!(t.elapsed() < Duration::from_secs(1));

    // Tampered bags behind a valid MAC.
    let garbage_cert = encode(&CertBag {
        cert_id: oid::X509_CERTIFICATE,
        cert_value: AnyRef::from(octets(b"\x30\x03\x02\x01\x01").unwrap()),
    })
    .unwrap();
    assert!(matches!(
        parse(&sealed(&[bag(oid::CERT_BAG, &garbage_cert)]), PW),
        Err(Pkcs12Error::Cert(_))
    ));

    let rsa1024_ish = b"\x30\x05\x02\x01\x00\x30\x00"; // a PrivateKeyInfo that is not one
    assert!(matches!(
        parse(&sealed(&[bag(oid::KEY_BAG, rsa1024_ish)]), PW),
        Err(Pkcs12Error::Key(_))
    ));

    // A key without its certificate, and a key bag in the clear that does match.
    let clear_key = bag(oid::KEY_BAG, key.pkcs8_der());
    assert!(matches!(
        parse(&sealed(std::slice::from_ref(&clear_key)), PW),
        Err(Pkcs12Error::NoMatchingCertificate)
    ));
    let bob_cert_bag = encode(&CertBag {
        cert_id: oid::X509_CERTIFICATE,
        cert_value: AnyRef::from(octets(bob.cert.der()).unwrap()),
    })
    .unwrap();
    let got = parse(
        &sealed(&[
            clear_key.clone(),
            bag(oid::CERT_BAG, &bob_cert_bag),
            bag(oid::KEY_BAG, bob.key.pkcs8_der()),
        ]),
        PW,
    )
    .unwrap();
    assert_eq!(got.key.public_key_der(), bob.key.public_key_der());
    assert_eq!(got.warnings, vec![Pkcs12Warning::ExtraKeysIgnored(1)]);

    // Nesting beyond the limit.
    let mut nested = encode(&vec![bag(oid::KEY_BAG, key.pkcs8_der())]).unwrap();
    for _ in 0..=MAX_NESTING {
        nested = encode(&vec![bag(oid::SAFE_CONTENTS_BAG, &nested)]).unwrap();
    }
    let deep = AnyRef::from_der(&nested).unwrap();
    let deep: Vec<SafeBag<'_>> = deep.decode_as().unwrap();
    assert!(matches!(
        parse(&sealed(&deep), PW),
        Err(Pkcs12Error::TooDeep { .. })
    ));

    // A shrouded key whose ciphertext was damaged before the MAC was computed.
    let scheme = Pbes2Scheme {
        iterations: NonZeroU32::new(1).unwrap(),
        ..ExportProfile::OpenSsl3.scheme()
    };
    let (alg, mut ct) = pbe::pbes2_encrypt(key.pkcs8_der(), PW, scheme).unwrap();
    let n = ct.len();
    ct[n - 17] ^= 0x80; // flips the last padding byte to an impossible value
    let damaged = shrouded_key_with(&alg, &ct);
    assert!(matches!(
        parse(&sealed(&[bag(oid::PKCS8_SHROUDED_KEY_BAG, &damaged)]), PW),
        Err(Pkcs12Error::DecryptionFailed)
    ));

    // Unknown encryption, and PBKDF2 asking for too many iterations.
    let rc4 = AlgorithmIdentifierOwned {
        oid: ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.1"),
        parameters: alg.parameters.clone(),
    };
    assert!(matches!(
        parse(&sealed(&[bag(oid::PKCS8_SHROUDED_KEY_BAG, &shrouded_key_with(&rc4, &ct))]), PW),
        Err(Pkcs12Error::UnsupportedAlgorithm(o)) if o == rc4.oid
    ));
    let kdf = encode(&Pbkdf2Params {
        salt: octets(&[0u8; 16]).unwrap(),
        iteration_count: 0x7fff_ffff,
        key_length: None,
        prf: None,
    })
    .unwrap();
    let iv = encode(&octets(&[0u8; 16]).unwrap()).unwrap();
    let greedy = encode(&Pbes2Params {
        key_derivation_func: AlgorithmIdentifierRef {
            oid: oid::PBKDF2,
            parameters: Some(AnyRef::from_der(&kdf).unwrap()),
        },
        encryption_scheme: AlgorithmIdentifierRef {
            oid: oid::AES256_CBC,
            parameters: Some(AnyRef::from_der(&iv).unwrap()),
        },
    })
    .unwrap();
    let greedy_alg = AlgorithmIdentifierOwned {
        oid: oid::PBES2,
        parameters: Some(der::Any::from_der(&greedy).unwrap()),
    };
    let t = Instant::now();
    assert!(matches!(
        parse(
            &sealed(&[bag(
                oid::PKCS8_SHROUDED_KEY_BAG,
                &shrouded_key_with(&greedy_alg, &ct)
            )]),
            PW
        ),
        Err(Pkcs12Error::IterationCountTooHigh {
            iterations: 0x7fff_ffff,
            ..
        })
    ));
    assert!(t.elapsed() < Duration::from_secs(1));

    // Public-key privacy mode and a wrong PFX version.
    let enveloped = encode(&vec![ContentInfo {
        content_type: ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.3"),
        content: Some(AnyRef::NULL),
    }])
    .unwrap();
    assert!(matches!(
        parse(&seal(&enveloped, PW).unwrap(), PW),
        Err(Pkcs12Error::UnsupportedContentType(_))
    ));
    let mut v2 = seal(&enveloped, PW).unwrap();
    let vpos = v2.windows(3).position(|w| w == [2, 1, 3]).unwrap();
    v2[vpos + 2] = 2;
    assert!(matches!(parse(&v2, PW), Err(Pkcs12Error::Malformed(_))));
}
