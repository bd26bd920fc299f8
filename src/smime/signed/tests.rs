//! SignedData against real peers: OpenSSL 3 `cms`, GnuPG `gpgsm` and NSS `cmsutil` verify what we
//! sign, we verify what they sign, and our verdicts agree with OpenSSL's on bad signatures. A
//! missing peer fails the test with the package to install: a skipped interoperability test
//! proves nothing.

use crate::test_peers::{require, run_in as output};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::*;
use crate::pki::ca::{Ca, RevokedSerial};
use crate::pki::keys::{KeyAlgorithm, key_identifier};
use crate::pki::path::{AnchorKind, ChainCache, TrustAnchor, TrustContext};
use crate::pki::profile::{
    self, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, simple_name,
};
use crate::pki::testpki::{KeyKind, Pki};
use crate::pki::{Crl, HashAlgorithm, PrivateKey, SignatureAlgorithm};
use der::Encode;

/// A MIME entity with 8-bit text and CRLF line ends, as a detached signature covers it.
const DATA: &[u8] = b"Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe aus Z\xc3\xbcrich\r\n";
const ALICE: &str = "alice@example.com";

// ---- Peers ------------------------------------------------------------------------------------

/// Runs a command: (success, stdout as bytes, stdout+stderr as text).
fn try_run(cmd: &mut Command) -> (bool, Vec<u8>, String) {
    let out = output(cmd, None);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), out.stdout, text)
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let (ok, stdout, text) = try_run(cmd);
    assert!(ok, "{cmd:?} failed:\n{text}");
    stdout
}

fn openssl(dir: &Path) -> Command {
    require("openssl", "openssl");
    let mut c = Command::new("openssl");
    c.current_dir(dir);
    c
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn sha1_colons(cert: &Cert) -> String {
    HashAlgorithm::Sha1
        .digest(cert.der())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A throw-away GNUPGHOME trusting one root, without CRL checks; its agent is killed when the
/// test ends, pass or fail.
struct Gpgsm(tempfile::TempDir);

impl Gpgsm {
    fn new(root: &Cert) -> Self {
        require("gpgsm", "gpgsm");
        let home = tempfile::tempdir().unwrap();
        write(home.path(), "gpgsm.conf", b"disable-crl-checks\n");
        write(home.path(), "gpg-agent.conf", b"allow-loopback-pinentry\n");
        write(
            home.path(),
            "trustlist.txt",
            format!("{} S\n", sha1_colons(root)).as_bytes(),
        );
        let g = Self(home);
        let ca = write(g.0.path(), "root.pem", root.to_pem().as_bytes());
        run(g.cmd().arg("--import").arg(ca));
        g
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("gpgsm");
        c.env("GNUPGHOME", self.0.path())
            .args(["--batch", "--pinentry-mode", "loopback"]);
        c
    }

    /// `gpgsm --verify`: whether every one of `signers` signatures is good and fully trusted,
    /// the content (opaque) and the log.
    fn verify(&self, sig: &Path, data: Option<&Path>, signers: usize) -> (bool, Vec<u8>, String) {
        let out_file = sig.with_extension("gpgsm-out");
        let mut c = self.cmd();
        c.args(["--status-fd", "1"]);
        if data.is_none() {
            c.arg("-o").arg(&out_file);
        }
        c.arg("--verify").arg(sig);
        if let Some(d) = data {
            c.arg(d);
        }
        let (ok, stdout, text) = try_run(&mut c);
        let status = String::from_utf8_lossy(&stdout);
        let count = |k: &str| {
            status
                .lines()
                .filter(|l| l.starts_with(&format!("[GNUPG:] {k} ")))
                .count()
        };
        let good = ok
            && count("GOODSIG") == signers
            && count("TRUST_FULLY") == signers
            && count("BADSIG") == 0
            && count("ERRSIG") == 0;
        let content = std::fs::read(&out_file).unwrap_or_default();
        (good, content, text)
    }
}

impl Drop for Gpgsm {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.0.path())
            .args(["--kill", "all"])
            .status();
    }
}

/// An NSS certificate database trusting one root for e-mail.
struct Nss {
    dir: tempfile::TempDir,
}

impl Nss {
    fn new(root: &Cert) -> Self {
        require("certutil", "libnss3-tools");
        require("cmsutil", "libnss3-tools");
        let dir = tempfile::tempdir().unwrap();
        let nss = Self { dir };
        run(Command::new("certutil").args(["-N", "--empty-password", "-d", &nss.db()]));
        let ca = write(nss.dir.path(), "root.pem", root.to_pem().as_bytes());
        run(Command::new("certutil")
            .args([
                "-A",
                "-n",
                "root",
                "-t",
                "C,C,C",
                "-a",
                "-d",
                &nss.db(),
                "-i",
            ])
            .arg(ca));
        nss
    }

    fn db(&self) -> String {
        format!("sql:{}", self.dir.path().display())
    }

    /// `cmsutil -D`: whether all `signers` signatures are reported good, the content, the log.
    fn verify(&self, sig: &Path, data: Option<&Path>, signers: usize) -> (bool, Vec<u8>, String) {
        // With -h the status headers go where the content goes: ask for each separately.
        let mut status = Command::new("cmsutil");
        status
            .args(["-D", "-n", "-h", "2", "-d", &self.db(), "-i"])
            .arg(sig);
        if let Some(d) = data {
            status.arg("-c").arg(d);
        }
        let (ok, stdout, text) = try_run(&mut status);
        let headers = String::from_utf8_lossy(&stdout);
        let good = ok && headers.matches("status=GoodSignature").count() == signers;
        let mut content = Vec::new();
        if data.is_none() {
            let out_file = sig.with_extension("nss-out");
            let (_, _, _) = try_run(
                Command::new("cmsutil")
                    .args(["-D", "-d", &self.db(), "-i"])
                    .arg(sig)
                    .arg("-o")
                    .arg(&out_file),
            );
            content = std::fs::read(&out_file).unwrap_or_default();
        }
        (good, content, text)
    }
}

// ---- Our PKI ----------------------------------------------------------------------------------

struct Id {
    cert: Cert,
    key: PrivateKey,
}

/// Root -> intermediate -> Alice (RSA and P-256 signing, P-256 encryption) and Carol (P-384).
struct Fixture {
    root: Ca,
    inter: Ca,
    alice_rsa: Id,
    alice_p256: Id,
    alice_enc: Id,
    carol_p384: Id,
}

fn issue(ca: &Ca, params: CertificateParams, alg: KeyAlgorithm) -> Id {
    let key = PrivateKey::generate(alg).unwrap();
    let cert = ca.issue(&params, &key.spki()).unwrap();
    Id { cert, key }
}

fn signing(email: &str, cn: &str) -> CertificateParams {
    CertificateParams::smime_signing(email, simple_name(cn, Some("Example")).unwrap(), 365)
}

fn fixture() -> &'static Fixture {
    static FX: OnceLock<Fixture> = OnceLock::new();
    FX.get_or_init(|| {
        let root = Ca::new_root("Example Root", KeyAlgorithm::P256, 3650).unwrap();
        let inter_key = PrivateKey::generate(KeyAlgorithm::P256).unwrap();
        let inter_params = CertificateParams {
            is_ca: IsCa::Ca { path_len: Some(0) },
            ..CertificateParams::root_ca(
                simple_name("Example Mail CA", Some("Example")).unwrap(),
                1825,
            )
        };
        let inter_cert = root.issue(&inter_params, &inter_key.spki()).unwrap();
        let inter = Ca::from_parts(inter_cert, inter_key, vec![root.cert().clone()]).unwrap();
        let alice_rsa = issue(&inter, signing(ALICE, "Alice"), KeyAlgorithm::Rsa2048);
        let alice_p256 = issue(&inter, signing(ALICE, "Alice"), KeyAlgorithm::P256);
        let alice_enc = issue(
            &inter,
            CertificateParams::smime_encryption(
                ALICE,
                simple_name("Alice", Some("Example")).unwrap(),
                365,
                KeyAlgorithm::P256,
            ),
            KeyAlgorithm::P256,
        );
        let carol_p384 = issue(
            &inter,
            signing("carol@example.com", "Carol"),
            KeyAlgorithm::P384,
        );
        Fixture {
            root,
            inter,
            alice_rsa,
            alice_p256,
            alice_enc,
            carol_p384,
        }
    })
}

impl Fixture {
    fn chain(&self) -> &[Cert] {
        std::slice::from_ref(self.inter.cert())
    }

    fn signer<'a>(&'a self, id: &'a Id) -> Signer<'a> {
        Signer {
            cert: &id.cert,
            key: &id.key,
            chain: self.chain(),
            encryption_cert: None,
        }
    }

    fn ctx(&self) -> TrustContext {
        TrustContext {
            anchors: vec![TrustAnchor {
                cert: self.root.cert().clone(),
                kind: AnchorKind::OwnRoot,
                label: "example".into(),
            }],
            ..TrustContext::default()
        }
    }
}

fn now() -> i64 {
    profile::now()
}

/// Parses and verifies with `ctx`, returning the reports.
fn check(
    sig: &[u8],
    detached: Option<&[u8]>,
    ctx: &TrustContext,
    from: Option<&str>,
    at: i64,
) -> Vec<SignerReport> {
    let msg = parse(sig).unwrap_or_else(|e| panic!("parse failed: {e}"));
    verify(&msg, detached, ctx, None, 0, from, at)
}

fn codes(reports: &[SignerReport]) -> Vec<&'static str> {
    reports.iter().map(|r| r.verdict.code()).collect()
}

// ---- Round trips ------------------------------------------------------------------------------

#[test]
fn round_trip_reports_and_harvest() {
    let fx = fixture();
    let mut alice = fx.signer(&fx.alice_rsa);
    alice.encryption_cert = Some(&fx.alice_enc.cert);
    let t = now() - 120;
    let opts = SignOptions {
        detached: false,
        signing_time: Some(t),
        ..SignOptions::default()
    };
    let sig = sign(DATA, &[alice], &opts).unwrap();
    let msg = parse(&sig).unwrap();
    assert_eq!(msg.content.as_deref(), Some(DATA));
    assert_eq!(msg.content_type, oid::CMS_DATA);
    assert_eq!(msg.version, 1);
    // Signer, chain and encryption certificate, once each.
    assert_eq!(msg.certificates.len(), 3);

    let cache = ChainCache::default();
    let ctx = fx.ctx();
    for _ in 0..2 {
        let reports = verify(
            &msg,
            None,
            &ctx,
            Some(&cache),
            7,
            Some("Alice@Example.COM"),
            now(),
        );
        assert_eq!(codes(&reports), ["pass"], "{:?}", reports[0].verdict);
        let r = &reports[0];
        assert_eq!(r.signing_time, Some(t));
        assert_eq!(
            r.signature_algorithm,
            Some(SignatureAlgorithm::RsaPkcs1(HashAlgorithm::Sha256))
        );
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        let h = r.harvest.as_ref().unwrap();
        assert_eq!(h.signer, fx.alice_rsa.cert);
        assert_eq!(h.chain, [fx.inter.cert().clone(), fx.root.cert().clone()]);
        assert_eq!(h.encryption_cert.as_ref(), Some(&fx.alice_enc.cert));
        assert_eq!(h.capabilities, SignOptions::default().capabilities);
    }
    // Signing path and encryption path validated once each; the second round came from cache.
    assert_eq!(cache.validations(), 2);
    assert!(all_valid(&verify(&msg, None, &ctx, None, 0, None, now())));
    assert!(!all_valid(&[]));
    // Opaque content and a detached part: only the same bytes are acceptable.
    let same = verify(&msg, Some(DATA), &ctx, None, 0, None, now());
    assert_eq!(codes(&same), ["pass"]);
    let other = verify(&msg, Some(b"other"), &ctx, None, 0, None, now());
    assert_eq!(codes(&other), ["bad-signature"]);

    // A preference naming a certificate of someone else is not followed.
    let mut mallory = fx.signer(&fx.alice_rsa);
    mallory.encryption_cert = Some(&fx.carol_p384.cert);
    let sig = sign(DATA, &[mallory], &SignOptions::default()).unwrap();
    let reports = check(&sig, Some(DATA), &ctx, None, now());
    assert_eq!(codes(&reports), ["pass"]);
    assert_eq!(reports[0].harvest.as_ref().unwrap().encryption_cert, None);
    assert!(
        reports[0]
            .warnings
            .iter()
            .any(|w| w.contains("not usable") || w.contains("not for the signer's address")),
        "{:?}",
        reports[0].warnings
    );

    // A signing-only certificate without a preference: nothing to encrypt to.
    let sig = sign(DATA, &[fx.signer(&fx.alice_p256)], &SignOptions::default()).unwrap();
    let reports = check(&sig, Some(DATA), &ctx, None, now());
    let h = reports[0].harvest.as_ref().unwrap();
    assert_eq!(h.encryption_cert, None);
    // A multipurpose certificate: the signing certificate is the encryption certificate.
    let single = issue(
        &fx.inter,
        CertificateParams::smime_single(
            "dave@example.com",
            simple_name("Dave", None).unwrap(),
            30,
            KeyAlgorithm::P256,
        ),
        KeyAlgorithm::P256,
    );
    let sig = sign(DATA, &[fx.signer(&single)], &SignOptions::default()).unwrap();
    let reports = check(&sig, Some(DATA), &ctx, Some("dave@example.com"), now());
    let h = reports[0].harvest.as_ref().unwrap();
    assert_eq!(h.encryption_cert.as_ref(), Some(&single.cert));
}

#[test]
fn sign_refuses_what_it_should() {
    let fx = fixture();
    let opts = SignOptions::default();
    assert!(matches!(
        sign(DATA, &[], &opts),
        Err(SignedError::NoSigners)
    ));
    let sha1 = SignOptions {
        digest: Some(HashAlgorithm::Sha1),
        ..SignOptions::default()
    };
    assert!(matches!(
        sign(DATA, &[fx.signer(&fx.alice_rsa)], &sha1),
        Err(SignedError::Sha1Signing)
    ));
    let wrong_key = Signer {
        key: &fx.alice_p256.key,
        ..fx.signer(&fx.alice_rsa)
    };
    assert!(matches!(
        sign(DATA, &[wrong_key], &opts),
        Err(SignedError::KeyMismatch { .. })
    ));
    let many = vec![fx.signer(&fx.alice_p256); MAX_SIGNERS + 1];
    assert!(matches!(
        sign(DATA, &many, &opts),
        Err(SignedError::TooManySigners { found: 17 })
    ));
}

#[test]
fn ecdsa_signs_with_the_curve_hash_only() {
    let fx = fixture();
    for (id, own, others) in [
        (
            &fx.alice_p256,
            HashAlgorithm::Sha256,
            [HashAlgorithm::Sha384, HashAlgorithm::Sha512],
        ),
        (
            &fx.carol_p384,
            HashAlgorithm::Sha384,
            [HashAlgorithm::Sha256, HashAlgorithm::Sha512],
        ),
    ] {
        for digest in [None, Some(own)] {
            let opts = SignOptions {
                digest,
                ..SignOptions::default()
            };
            let signed = sign_reporting(DATA, &[fx.signer(id)], &opts).unwrap();
            assert_eq!(signed.digests, [own]);
            let reports = check(&signed.der, Some(DATA), &fx.ctx(), None, now());
            assert_eq!(
                reports[0].signature_algorithm,
                Some(SignatureAlgorithm::Ecdsa(own))
            );
        }
        for asked in others {
            let opts = SignOptions {
                digest: Some(asked),
                ..SignOptions::default()
            };
            let e = sign(DATA, &[fx.signer(id)], &opts).unwrap_err();
            assert!(
                matches!(e, SignedError::DigestUnavailable { asked: a, supported: s, .. }
                    if a == asked && s == own),
                "{e:?}"
            );
            assert!(e.to_string().contains(" only, not SHA-"), "{e}");
        }
    }
}

/// Two signers with different digests: micalg lists both, comma-separated and quoted (RFC 8551
/// section 3.5.3.2, RFC 1847 section 2.1), in the order of the SignerInfos, and OpenSSL's MIME
/// reader verifies the message.
#[test]
fn micalg_lists_every_signers_digest() {
    let fx = fixture();
    let msg = b"Subject: two\r\nContent-Type: text/plain\r\n\r\nsigned twice\r\n";
    let signers = [fx.signer(&fx.alice_rsa), fx.signer(&fx.carol_p384)];
    let signed =
        crate::smime::message::sign(msg, &signers, false, &SignOptions::default()).unwrap();
    let text = String::from_utf8_lossy(&signed);
    assert!(
        text.contains("micalg=\"sha-256,sha-384\";"),
        "micalg names both digests:\n{text}"
    );
    let same = [fx.signer(&fx.alice_rsa), fx.signer(&fx.alice_p256)];
    let signed_same =
        crate::smime::message::sign(msg, &same, false, &SignOptions::default()).unwrap();
    assert!(
        String::from_utf8_lossy(&signed_same).contains("micalg=sha-256;"),
        "one digest, once, unquoted"
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "root.pem", fx.root.cert().to_pem().as_bytes());
    for (name, m) in [("two.eml", &signed), ("same.eml", &signed_same)] {
        let f = write(dir, name, m);
        run(openssl(dir).args(["cms", "-verify", "-in"]).arg(&f).args([
            "-CAfile",
            "root.pem",
            "-purpose",
            "smimesign",
            "-out",
            "/dev/null",
        ]));
    }
}

#[test]
fn ecdsa_uses_the_curve_hash_and_signing_time_is_checked() {
    let fx = fixture();
    let opts = SignOptions {
        signing_time: Some(fx.carol_p384.cert.not_before() - 86_400 * 30),
        ..SignOptions::default()
    };
    let sig = sign(DATA, &[fx.signer(&fx.carol_p384)], &opts).unwrap();
    let reports = check(&sig, Some(DATA), &fx.ctx(), None, now());
    assert_eq!(codes(&reports), ["pass"]);
    assert_eq!(
        reports[0].signature_algorithm,
        Some(SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha384))
    );
    assert!(
        reports[0].warnings.iter().any(|w| w.contains("outside")),
        "{:?}",
        reports[0].warnings
    );
    // Detached signature checked without its content.
    let reports = check(&sig, None, &fx.ctx(), None, now());
    assert_eq!(codes(&reports), ["malformed"]);
}

// ---- 1. Peers verify what we sign -------------------------------------------------------------

struct Kind<'a> {
    name: &'static str,
    signers: Vec<Signer<'a>>,
    opts: SignOptions,
}

fn kinds(fx: &Fixture) -> Vec<Kind<'_>> {
    let with_enc = Signer {
        encryption_cert: Some(&fx.alice_enc.cert),
        ..fx.signer(&fx.alice_rsa)
    };
    let opaque = |o: SignOptions| SignOptions {
        detached: false,
        ..o
    };
    let d = SignOptions::default;
    let digest = |h| SignOptions {
        digest: Some(h),
        ..SignOptions::default()
    };
    let pss = |h| SignOptions {
        digest: Some(h),
        pss: true,
        ..SignOptions::default()
    };
    vec![
        Kind {
            name: "RSA PKCS#1 SHA-256 detached",
            signers: vec![with_enc],
            opts: d(),
        },
        Kind {
            name: "RSA PKCS#1 SHA-256 opaque",
            signers: vec![with_enc],
            opts: opaque(d()),
        },
        Kind {
            name: "RSA PKCS#1 SHA-384 detached",
            signers: vec![fx.signer(&fx.alice_rsa)],
            opts: digest(HashAlgorithm::Sha384),
        },
        Kind {
            name: "RSA PKCS#1 SHA-512 opaque",
            signers: vec![fx.signer(&fx.alice_rsa)],
            opts: opaque(digest(HashAlgorithm::Sha512)),
        },
        Kind {
            name: "RSA-PSS SHA-256 detached",
            signers: vec![with_enc],
            opts: pss(HashAlgorithm::Sha256),
        },
        Kind {
            name: "RSA-PSS SHA-512 opaque",
            signers: vec![fx.signer(&fx.alice_rsa)],
            opts: opaque(pss(HashAlgorithm::Sha512)),
        },
        Kind {
            name: "ECDSA P-256 detached",
            signers: vec![fx.signer(&fx.alice_p256)],
            opts: d(),
        },
        Kind {
            name: "ECDSA P-384 opaque",
            signers: vec![fx.signer(&fx.carol_p384)],
            opts: opaque(d()),
        },
        Kind {
            name: "two signers (RSA + P-256) detached",
            signers: vec![with_enc, fx.signer(&fx.alice_p256)],
            opts: d(),
        },
        Kind {
            name: "two signers (P-256 + P-384) opaque",
            signers: vec![fx.signer(&fx.alice_p256), fx.signer(&fx.carol_p384)],
            opts: opaque(d()),
        },
    ]
}

fn openssl_verify(
    dir: &Path,
    sig: &Path,
    data: Option<&Path>,
    extra: &[&str],
) -> (bool, Vec<u8>, String) {
    let mut c = openssl(dir);
    c.args(["cms", "-verify", "-binary", "-inform", "DER", "-in"])
        .arg(sig)
        .args(["-CAfile", "root.pem", "-purpose", "smimesign"])
        .args(extra);
    if let Some(d) = data {
        c.arg("-content").arg(d);
    }
    try_run(&mut c)
}

#[test]
fn peers_verify_what_we_sign() {
    let fx = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "root.pem", fx.root.cert().to_pem().as_bytes());
    let data = write(dir, "data", DATA);
    let gpgsm = Gpgsm::new(fx.root.cert());
    let nss = Nss::new(fx.root.cert());

    let mut matrix = String::from("kind | openssl | gpgsm | nss\n");
    let mut failures = Vec::new();
    for (i, k) in kinds(fx).into_iter().enumerate() {
        let sig = sign(DATA, &k.signers, &k.opts).unwrap();
        let file = write(dir, &format!("sig{i}.der"), &sig);
        let n = k.signers.len();
        let detached = k.opts.detached.then_some(data.as_path());

        // Our own verdict first: the same bytes must verify here.
        let ours = check(&sig, detached.map(|_| DATA), &fx.ctx(), Some(ALICE), now());
        assert_eq!(ours.len(), n);
        for r in &ours {
            assert!(
                matches!(r.verdict, Verdict::Valid)
                    || matches!(r.verdict, Verdict::AddressMismatch { .. }),
                "{}: {}",
                k.name,
                r.verdict
            );
        }

        let (o_ok, o_content, o_log) = openssl_verify(dir, &file, detached, &[]);
        let o_ok = o_ok && (detached.is_some() || o_content == DATA);
        let (g_ok, g_content, g_log) = gpgsm.verify(&file, detached, n);
        let g_ok = g_ok && (detached.is_some() || g_content == DATA);
        let (n_ok, n_content, n_log) = nss.verify(&file, detached, n);
        let n_ok = n_ok && (detached.is_some() || n_content == DATA);
        let mark = |b: bool| if b { "ok" } else { "FAIL" };
        writeln!(
            matrix,
            "{} | {} | {} | {}",
            k.name,
            mark(o_ok),
            mark(g_ok),
            mark(n_ok)
        )
        .unwrap();
        for (peer, ok, log) in [
            ("openssl", o_ok, o_log),
            ("gpgsm", g_ok, g_log),
            ("nss", n_ok, n_log),
        ] {
            if !ok {
                failures.push(format!("{} / {peer}:\n{log}", k.name));
            }
        }
    }
    println!("{matrix}");
    assert!(failures.is_empty(), "{matrix}\n{}", failures.join("\n\n"));

    // The S/MIME attributes are there for OpenSSL to see.
    let printed = run(openssl(dir).args([
        "cms", "-cmsout", "-print", "-inform", "DER", "-in", "sig0.der",
    ]));
    let printed = String::from_utf8_lossy(&printed);
    for needle in [
        "S/MIME Capabilities",
        "id-smime-aa-encrypKeyPref",
        "aes-256-gcm",
        "rsaesOaep",
    ] {
        assert!(printed.contains(needle), "no {needle} in:\n{printed}");
    }
}

// ---- 2. We verify what peers sign -------------------------------------------------------------

/// OpenSSL-made root, Alice (RSA) and Bob (P-256), as files and as a trust context.
struct TheirPki {
    pki: Pki,
    root: Cert,
    alice: Cert,
    bob: Cert,
}

fn their_pki() -> TheirPki {
    let pki = Pki::new();
    let root = pki.root(
        "root",
        "/O=Elsewhere/CN=Elsewhere Root",
        KeyKind::P256,
        None,
    );
    let alice = pki.issue(
        &root,
        "alice",
        "/O=Elsewhere/CN=Alice",
        &pki.leaf_ext(ALICE),
        KeyKind::Rsa2048,
        None,
    );
    let bob = pki.issue(
        &root,
        "bob",
        "/O=Elsewhere/CN=Bob",
        &pki.leaf_ext("bob@example.com"),
        KeyKind::P256,
        None,
    );
    TheirPki {
        root: pki.cert(&root.cert),
        alice: pki.cert(&alice),
        bob: pki.cert(&bob),
        pki,
    }
}

impl TheirPki {
    fn ctx(&self) -> TrustContext {
        TrustContext {
            anchors: vec![TrustAnchor {
                cert: self.root.clone(),
                kind: AnchorKind::TrustedRoot,
                label: "elsewhere".into(),
            }],
            ..TrustContext::default()
        }
    }
    fn dir(&self) -> PathBuf {
        self.pki.path("")
    }
}

/// Checks that `sig` verifies here, with one Valid report per expected signer, harvesting that
/// signer's certificate; returns the reports.
fn assert_we_verify(
    name: &str,
    sig: &[u8],
    detached: bool,
    ctx: &TrustContext,
    signers: &[&Cert],
) -> Vec<SignerReport> {
    let msg = parse(sig).unwrap_or_else(|e| panic!("{name}: parse failed: {e}"));
    if !detached {
        assert_eq!(msg.content.as_deref(), Some(DATA), "{name}: content");
    }
    let reports = verify(&msg, detached.then_some(DATA), ctx, None, 0, None, now());
    assert_eq!(reports.len(), signers.len(), "{name}");
    for r in &reports {
        assert!(
            r.verdict.is_valid(),
            "{name}: {} ({:?})",
            r.verdict,
            r.warnings
        );
        let h = r.harvest.as_ref().unwrap();
        assert!(
            signers.contains(&&h.signer),
            "{name}: harvested {:?}",
            h.signer
        );
    }
    reports
}

#[test]
fn we_verify_what_openssl_signs() {
    let p = their_pki();
    let ctx = p.ctx();
    let dir = p.dir();
    write(&dir, "data", DATA);
    let alice = ["-signer", "alice.pem", "-inkey", "alice.key"];
    let bob = ["-signer", "bob.pem", "-inkey", "bob.key"];
    // Detached unless the arguments say -nodetach.
    let cases: Vec<(&str, Vec<&str>, Vec<&Cert>)> = vec![
        ("detached", alice.to_vec(), vec![&p.alice]),
        (
            "opaque (-nodetach)",
            [&alice[..], &["-nodetach"]].concat(),
            vec![&p.alice],
        ),
        (
            "-stream detached",
            [&alice[..], &["-stream"]].concat(),
            vec![&p.alice],
        ),
        (
            "-stream opaque",
            [&alice[..], &["-stream", "-nodetach"]].concat(),
            vec![&p.alice],
        ),
        (
            "-md sha384",
            [&alice[..], &["-md", "sha384"]].concat(),
            vec![&p.alice],
        ),
        (
            "-md sha512 ECDSA",
            [&bob[..], &["-md", "sha512", "-nodetach"]].concat(),
            vec![&p.bob],
        ),
        (
            "two -signer",
            [&alice[..], &bob[..]].concat(),
            vec![&p.alice, &p.bob],
        ),
        (
            "RSA-PSS (default salt)",
            [&alice[..], &["-keyopt", "rsa_padding_mode:pss"]].concat(),
            vec![&p.alice],
        ),
        (
            "RSA-PSS (digest salt) SHA-384",
            [
                &alice[..],
                &["-md", "sha384", "-keyopt", "rsa_padding_mode:pss"],
                &["-keyopt", "rsa_pss_saltlen:digest", "-nodetach"],
            ]
            .concat(),
            vec![&p.alice],
        ),
        (
            "-keyid (subjectKeyIdentifier)",
            [&alice[..], &["-keyid"]].concat(),
            vec![&p.alice],
        ),
        (
            "-noattr",
            [&alice[..], &["-noattr", "-nodetach"]].concat(),
            vec![&p.alice],
        ),
        (
            "-md sha1",
            [&alice[..], &["-md", "sha1"]].concat(),
            vec![&p.alice],
        ),
    ];
    for (i, (name, args, signers)) in cases.into_iter().enumerate() {
        let detached = !args.contains(&"-nodetach");
        let out = format!("s{i}.der");
        run(openssl(&dir)
            .args([
                "cms", "-sign", "-binary", "-in", "data", "-outform", "DER", "-out", &out,
            ])
            .args(&args));
        let sig = std::fs::read(dir.join(&out)).unwrap();
        if name.starts_with("-stream") {
            assert_eq!(sig[1], 0x80, "{name}: expected an indefinite length");
        }
        let reports = assert_we_verify(name, &sig, detached, &ctx, &signers);
        if name == "-md sha1" {
            assert!(reports[0].warnings.iter().any(|w| w.contains("SHA-1")));
        }
        if name.starts_with("RSA-PSS") {
            assert!(matches!(
                reports[0].signature_algorithm,
                Some(SignatureAlgorithm::RsaPss(_))
            ));
        }
        if name == "detached" {
            // OpenSSL's own SMIMECapabilities list comes through.
            let caps = &reports[0].harvest.as_ref().unwrap().capabilities;
            assert_eq!(caps.first(), Some(&Capability::Aes256Cbc), "{caps:?}");
        }
    }

    // Large content streamed: the eContent arrives as many 4 KiB OCTET STRING segments inside
    // indefinite lengths, and must come out byte-exact.
    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    write(&dir, "big", &big);
    run(openssl(&dir)
        .args([
            "cms",
            "-sign",
            "-binary",
            "-in",
            "big",
            "-outform",
            "DER",
            "-out",
            "big.der",
            "-stream",
            "-nodetach",
        ])
        .args(alice));
    let sig = std::fs::read(dir.join("big.der")).unwrap();
    let segment = [0x04, 0x82, 0x10, 0x00];
    assert!(
        sig.windows(4).filter(|w| *w == segment).count() > 20,
        "not segmented"
    );
    let msg = parse(&sig).unwrap();
    assert_eq!(msg.content.as_deref(), Some(&big[..]));
    assert!(all_valid(&verify(
        &msg,
        None,
        &ctx,
        None,
        0,
        Some(ALICE),
        now()
    )));
}

#[test]
fn we_verify_what_gpgsm_and_nss_sign() {
    let p = their_pki();
    let ctx = p.ctx();
    let dir = p.dir();
    let data = write(&dir, "data", DATA);
    // gpgsm 2.2 reads only the legacy PKCS #12 encryption; NSS reads both.
    run(openssl(&dir).args([
        "pkcs12",
        "-export",
        "-legacy",
        "-in",
        "alice.pem",
        "-inkey",
        "alice.key",
        "-name",
        "alice",
        "-passout",
        "pass:pw",
        "-out",
        "alice.p12",
    ]));

    // gpgsm: import the key, sign detached and opaque.
    let g = Gpgsm::new(&p.root);
    let log = output(
        g.cmd()
            .args(["--passphrase-fd", "0", "--import"])
            .arg(dir.join("alice.p12")),
        Some(b"pw\n"),
    );
    assert!(
        log.status.success(),
        "{}",
        String::from_utf8_lossy(&log.stderr)
    );
    let fpr = sha1_colons(&p.alice).replace(':', "");
    for (detached, name) in [(true, "gpgsm.der"), (false, "gpgsm-opaque.der")] {
        let out = dir.join(name);
        let mut c = g.cmd();
        c.args(["--passphrase-fd", "0", "-u", &fpr, "-o"]).arg(&out);
        c.arg(if detached { "--detach-sign" } else { "--sign" })
            .arg(&data);
        let res = output(&mut c, Some(b"pw\n"));
        assert!(
            res.status.success(),
            "gpgsm sign: {}",
            String::from_utf8_lossy(&res.stderr)
        );
        let sig = std::fs::read(&out).unwrap();
        assert_eq!(sig[1], 0x80, "gpgsm writes BER with indefinite lengths");
        assert_we_verify(name, &sig, detached, &ctx, &[&p.alice]);
    }

    // NSS: import the key, sign detached and opaque with signingTime and SMIMECapabilities.
    let nss = Nss::new(&p.root);
    run(Command::new("pk12util")
        .args(["-d", &nss.db(), "-W", "pw", "-i"])
        .arg(dir.join("alice.p12")));
    for (detached, name) in [(true, "nss.der"), (false, "nss-opaque.der")] {
        let out = dir.join(name);
        let mut c = Command::new("cmsutil");
        c.args([
            "-S",
            "-N",
            "alice",
            "-G",
            "-P",
            "-Y",
            "NONE",
            "-d",
            &nss.db(),
            "-i",
        ])
        .arg(&data)
        .arg("-o")
        .arg(&out);
        if detached {
            c.arg("-T");
        }
        run(&mut c);
        let sig = std::fs::read(&out).unwrap();
        let reports = assert_we_verify(name, &sig, detached, &ctx, &[&p.alice]);
        assert!(reports[0].signing_time.is_some(), "{name}: signingTime");
        assert!(
            !reports[0].harvest.as_ref().unwrap().capabilities.is_empty(),
            "{name}: SMIMECapabilities"
        );
    }
}

// ---- 3. Verdicts agree with OpenSSL -----------------------------------------------------------

#[test]
fn verdicts_agree_with_openssl() {
    let fx = fixture();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "root.pem", fx.root.cert().to_pem().as_bytes());
    let ctx = fx.ctx();
    let good = sign(DATA, &[fx.signer(&fx.alice_p256)], &SignOptions::default()).unwrap();

    // Self-signed S/MIME certificate: trusted by nobody.
    let self_key = PrivateKey::generate(KeyAlgorithm::P256).unwrap();
    let self_name = simple_name("Mallory", None).unwrap();
    let self_cert = signing(ALICE, "Mallory")
        .sign(
            &self_key.spki(),
            &Issuer {
                name: &self_name,
                key: &self_key,
                key_id: key_identifier(&self_key.spki()),
            },
        )
        .unwrap();
    let self_signed = Id {
        cert: self_cert,
        key: self_key,
    };
    // A TLS server certificate: right CA, wrong extended key usage.
    let server = issue(
        &fx.inter,
        CertificateParams {
            extended_key_usages: vec![ExtendedKeyUsagePurpose::ServerAuth],
            ..signing(ALICE, "Alice's web server")
        },
        KeyAlgorithm::P256,
    );
    // Revoked by the intermediate, with a CRL both sides read.
    let revoked = issue(
        &fx.inter,
        signing(ALICE, "Alice (lost laptop)"),
        KeyAlgorithm::P256,
    );
    let crl_der = fx
        .inter
        .build_crl(
            &[RevokedSerial {
                serial: revoked.cert.serial().to_vec(),
                at: now() - 60,
                reason_code: Some(1),
            }],
            1,
            30,
        )
        .unwrap();
    write(
        dir,
        "crl.pem",
        crate::pki::cert::pem_encode("X509 CRL", &crl_der).as_bytes(),
    );
    let crl_ctx = TrustContext {
        crls: vec![Crl::from_der(&crl_der).unwrap()],
        ..fx.ctx()
    };

    let mut tampered_opaque = sign(
        DATA,
        &[fx.signer(&fx.alice_p256)],
        &SignOptions {
            detached: false,
            ..SignOptions::default()
        },
    )
    .unwrap();
    let at = tampered_opaque
        .windows(DATA.len())
        .position(|w| w == DATA)
        .unwrap();
    tampered_opaque[at + DATA.len() - 3] ^= 0x20;

    let three_years = (now() + 3 * 365 * 86_400).to_string();
    let sign_with = |id: &Id| sign(DATA, &[fx.signer(id)], &SignOptions::default()).unwrap();
    struct Case<'a> {
        name: &'static str,
        sig: Vec<u8>,
        content: &'a [u8],
        ctx: &'a TrustContext,
        from: Option<&'static str>,
        at: i64,
        openssl_extra: Vec<String>,
        code: &'static str,
    }
    let case = |name, sig, code| Case {
        name,
        sig,
        content: DATA,
        ctx: &ctx,
        from: None,
        at: now(),
        openssl_extra: vec![],
        code,
    };
    let cases = vec![
        case("valid", good.clone(), "pass"),
        Case {
            content: b"Content-Type: text/plain\r\n\r\nGr\xc3\xbc\xc3\x9fe aus Bern\r\n",
            ..case("tampered body (detached)", good.clone(), "bad-signature")
        },
        case("tampered body (opaque)", tampered_opaque, "bad-signature"),
        case(
            "untrusted self-signed signer",
            sign_with(&self_signed),
            "untrusted",
        ),
        Case {
            at: now() + 3 * 365 * 86_400,
            openssl_extra: vec!["-attime".into(), three_years],
            ..case("expired signer", good.clone(), "expired")
        },
        case(
            "wrong EKU (serverAuth only)",
            sign_with(&server),
            "wrong-usage",
        ),
        Case {
            ctx: &crl_ctx,
            openssl_extra: vec!["-crl_check".into(), "-CRLfile".into(), "crl.pem".into()],
            ..case("revoked signer", sign_with(&revoked), "revoked")
        },
        Case {
            from: Some("mallory@example.com"),
            openssl_extra: vec!["-verify_email".into(), "mallory@example.com".into()],
            ..case(
                "From not in the certificate",
                good.clone(),
                "address-mismatch",
            )
        },
        Case {
            from: Some(ALICE),
            openssl_extra: vec!["-verify_email".into(), ALICE.into()],
            ..case("From in the certificate", good.clone(), "pass")
        },
    ];
    let mut table = String::new();
    for (i, c) in cases.into_iter().enumerate() {
        let sig_file = write(dir, &format!("v{i}.der"), &c.sig);
        let content_file = write(dir, &format!("v{i}.txt"), c.content);
        let msg = parse(&c.sig).unwrap();
        let detached = msg.content.is_none();
        let reports = verify(
            &msg,
            detached.then_some(c.content),
            c.ctx,
            None,
            0,
            c.from,
            c.at,
        );
        let extra: Vec<&str> = c.openssl_extra.iter().map(String::as_str).collect();
        let (o_ok, _, o_log) = openssl_verify(
            dir,
            &sig_file,
            detached.then_some(content_file.as_path()),
            &extra,
        );
        let ours = reports[0].verdict.code();
        writeln!(
            table,
            "{}: ours {ours}, openssl {}",
            c.name,
            if o_ok { "ok" } else { "fails" }
        )
        .unwrap();
        assert_eq!(ours, c.code, "{}: {}", c.name, reports[0].verdict);
        assert_eq!(
            o_ok,
            c.code == "pass",
            "{}: OpenSSL disagrees with our {ours}:\n{o_log}",
            c.name
        );
    }
    println!("{table}");
}

// ---- 4. Hostile input -------------------------------------------------------------------------

/// A deterministic generator, so a failure can be replayed.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Parses and verifies anything; a Valid verdict is only allowed for the original content and
/// signer (a change in an unsigned, unused field such as digestAlgorithms may leave it valid).
fn survive(bytes: &[u8], ctx: &TrustContext, original: &Id) -> bool {
    let Ok(msg) = parse(bytes) else {
        return false;
    };
    let reports = verify(&msg, None, ctx, None, 0, Some(ALICE), now());
    for r in &reports {
        if r.verdict.is_valid() {
            assert_eq!(
                msg.content.as_deref(),
                Some(DATA),
                "valid with other content"
            );
            assert_eq!(
                r.signer.as_ref(),
                Some(&original.cert),
                "valid with another signer"
            );
        }
    }
    all_valid(&reports)
}

#[test]
fn hostile_input_never_panics() {
    let fx = fixture();
    let ctx = fx.ctx();
    let opaque = SignOptions {
        detached: false,
        ..SignOptions::default()
    };
    let sig = sign(DATA, &[fx.signer(&fx.alice_p256)], &opaque).unwrap();
    assert!(survive(&sig, &ctx, &fx.alice_p256));

    for len in 0..sig.len() {
        assert!(
            !survive(&sig[..len], &ctx, &fx.alice_p256),
            "prefix {len} accepted"
        );
    }
    let mut rng = XorShift(0x5eed_cafe_f00d_d00d);
    let mut still_valid = 0;
    for _ in 0..400 {
        let mut bad = sig.clone();
        let bit = (rng.next() % (bad.len() as u64 * 8)) as usize;
        bad[bit / 8] ^= 1 << (bit % 8);
        if survive(&bad, &ctx, &fx.alice_p256) {
            still_valid += 1;
        }
    }
    // Only flips in the unsigned digestAlgorithms SET or the version can leave it valid.
    assert!(
        still_valid < 40,
        "{still_valid} corrupted messages still valid"
    );

    // Absurd lengths at every position of the outer headers.
    for pos in 0..64 {
        let mut bad = sig.clone();
        bad.splice(pos..pos + 1, [0x84, 0xff, 0xff, 0xff, 0xf0]);
        assert!(!survive(&bad, &ctx, &fx.alice_p256));
    }

    // Wrong OIDs: each replaced in place by another of the same length.
    let replace = |from: ObjectIdentifier, to: ObjectIdentifier| -> Vec<u8> {
        let (f, t) = (from.as_bytes(), to.as_bytes());
        assert_eq!(f.len(), t.len());
        let mut out = sig.clone();
        // The last occurrence: the SignerInfo's, after the certificates.
        let at = out.windows(f.len()).rposition(|w| w == f).unwrap();
        out[at..at + f.len()].copy_from_slice(t);
        out
    };
    let enveloped = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.3");
    assert!(matches!(
        parse(&replace(oid::CMS_SIGNED_DATA, enveloped)),
        Err(SignedError::NotSignedData(_))
    ));
    let check_code = |bytes: Vec<u8>, code: &str| {
        let reports = verify(&parse(&bytes).unwrap(), None, &ctx, None, 0, None, now());
        assert_eq!(codes(&reports), [code], "{}", reports[0].verdict);
    };
    // eContentType no longer id-data: the contentType attribute disagrees.
    check_code(replace(oid::CMS_DATA, enveloped), "malformed");
    // A digest algorithm we do not know (SHA-256 -> SHA3-256, same length).
    let sha3 = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.8");
    let mut unknown_digest = sig.clone();
    let sha256 = oid::SHA256.as_bytes();
    for at in (0..unknown_digest.len() - sha256.len()).rev() {
        if &unknown_digest[at..at + sha256.len()] == sha256 {
            unknown_digest[at..at + sha256.len()].copy_from_slice(sha3.as_bytes());
        }
    }
    check_code(unknown_digest, "unsupported-algorithm");
    // A signature algorithm we do not know (ecdsa-with-SHA256 -> ecdsa-with-SHA3-256, length 8
    // vs 9: use ecdsa-with-SHA224 instead, same length, not supported).
    check_code(
        replace(
            oid::ECDSA_WITH_SHA256,
            ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.1"),
        ),
        "unsupported-algorithm",
    );

    // Limits: 17 SignerInfos, 65 certificates.
    let (ci, _) = asn1::read(&sig).unwrap();
    let sd = asn1::children(asn1::children(ci.content).unwrap()[1].content).unwrap()[0];
    let fields = asn1::children(sd.content).unwrap();
    let rebuild = |certs: Vec<u8>, infos: Vec<u8>| {
        let body = [
            fields[0].raw,
            fields[1].raw,
            fields[2].raw,
            &asn1::tlv(0xa0, &certs),
            &asn1::tlv(0x31, &infos),
        ]
        .concat();
        let ci_body = [
            oid::CMS_SIGNED_DATA.to_der().unwrap(),
            asn1::tlv(0xa0, &asn1::tlv(0x30, &body)),
        ]
        .concat();
        asn1::tlv(0x30, &ci_body)
    };
    let certs = fields[3].content.to_vec();
    let info = asn1::children(fields[4].content).unwrap()[0].raw.to_vec();
    assert!(survive(
        &rebuild(certs.clone(), info.clone()),
        &ctx,
        &fx.alice_p256
    ));
    assert!(matches!(
        parse(&rebuild(certs.clone(), info.repeat(MAX_SIGNERS + 1))),
        Err(SignedError::TooManySigners { found: 17 })
    ));
    let one_cert = asn1::children(&certs).unwrap()[0].raw.to_vec();
    assert!(matches!(
        parse(&rebuild(one_cert.repeat(MAX_CERTIFICATES + 1), info)),
        Err(SignedError::TooManyCertificates { found: 65 })
    ));
}
