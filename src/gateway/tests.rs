use super::*;
use crate::directory::EnrollOptions;
use crate::pki::KeyAlgorithm;
use crate::store::{ReadTx, Store, StoreError, WriteTx};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A fresh directory with a P-256 CA for `acme.test`, `extra` appended to the configuration.
pub(crate) fn scratch(extra: &str) -> (tempfile::TempDir, Config, Directory) {
    let tmp = tempfile::tempdir().unwrap();
    let config = Config::parse(
        &format!(
            "data_dir = \"{}\"\nkey_encryption_key_file = \"{}\"\ninternal_domains = [\"acme.test\"]\nauthserv_id = \"gw.test\"\n{extra}",
            tmp.path().join("data").display(),
            tmp.path().join("kek").display()
        ),
        std::path::Path::new("t.toml"),
        None,
    )
    .unwrap();
    let dir = Directory::open_or_create(&config).unwrap();
    dir.init_ca("Test Root", KeyAlgorithm::P256, 30).unwrap();
    (tmp, config, dir)
}

fn gateway(extra: &str) -> (tempfile::TempDir, Gateway) {
    let (tmp, _, dir) = scratch(extra);
    (tmp, Gateway::new(dir))
}

fn inbound(message: &[u8]) -> Transaction {
    Transaction {
        mail_from: "bob@partner.test".into(),
        rcpt_to: vec!["alice@acme.test".into()],
        message: message.to_vec(),
        helo: "mta.test".into(),
    }
}

/// A message whose time budget is already spent gets 451 4.3.0, never a half-done result.
#[test]
fn a_spent_time_budget_is_a_temporary_failure() {
    let (_tmp, gw) = gateway("[limits]\nmax_processing_secs = 5\n");
    let tx = inbound(b"From: bob@partner.test\r\nSubject: x\r\n\r\nbody\r\n");
    let long_ago = Instant::now()
        .checked_sub(std::time::Duration::from_secs(60))
        .unwrap();
    match gw.process_at(&tx, Listener::Inbound, long_ago) {
        Decision::Refuse { refusal, .. } => {
            let r = crate::smtp::reply::Reply::refusal(&refusal);
            assert_eq!((r.code, r.enhanced), (451, "4.3.0"));
            assert!(r.text.contains("limits.max_processing_secs"), "{}", r.text);
        }
        d => panic!("expected a refusal, got {d:?}"),
    }
    assert!(matches!(gw.process(&tx, Listener::Inbound), Decision::Relay(c) if c.len() == 1));
}

/// The configured limits, not the defaults, decide: with max_mime_depth = 4 a leaf at depth 4
/// is read, one at depth 5 is delivered unopened.
#[test]
fn configured_limits_reach_the_inbound_path() {
    let (_tmp, gw) = gateway("[limits]\nmax_mime_depth = 4\n");
    let mut verdicts = Vec::new();
    for depth in 1..=6 {
        let body = crate::limits::tests::nested(depth);
        let Decision::Relay(c) = gw.process(&inbound(&body), Listener::Inbound) else {
            panic!("refused");
        };
        verdicts.push(c[0].verdict.clone());
    }
    assert_eq!(
        verdicts,
        ["none", "none", "none", "none", "permerror", "permerror"]
    );
}

/// A store that fails every transaction while `broken` is set, as a lost disk or database
/// connection does.
struct Flaky {
    inner: Box<dyn Store>,
    broken: Arc<AtomicBool>,
}

impl Flaky {
    fn check(&self) -> Result<(), StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Backend {
                path: "/test/smimegw.redb".into(),
                message: "I/O error: Input/output error (os error 5)".into(),
            });
        }
        Ok(())
    }
}

impl Store for Flaky {
    fn read(&self) -> Result<Box<dyn ReadTx + '_>, StoreError> {
        self.check()?;
        self.inner.read()
    }
    fn write(&self) -> Result<Box<dyn WriteTx + '_>, StoreError> {
        self.check()?;
        self.inner.write()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// Enrolls alice and carol (P-256, ten days).
pub(crate) fn enroll_alice_and_carol(dir: &Directory) {
    for who in ["alice@acme.test", "carol@acme.test"] {
        dir.enroll(
            who,
            &EnrollOptions {
                display_name: "T".into(),
                single: false,
                key: KeyAlgorithm::P256,
                days: 10,
            },
        )
        .unwrap();
    }
}

/// A gateway over [`Flaky`] with alice and carol enrolled, and the switch that breaks it.
fn flaky_gateway(extra: &str) -> (tempfile::TempDir, Gateway, Arc<AtomicBool>) {
    let (tmp, _, dir) = scratch(extra);
    enroll_alice_and_carol(&dir);
    let broken = Arc::new(AtomicBool::new(false));
    let b = broken.clone();
    let gw = Gateway::new(dir.map_store(move |inner| Box::new(Flaky { inner, broken: b })));
    (tmp, gw, broken)
}

fn tx(from: &str, to: &str) -> Transaction {
    Transaction {
        mail_from: from.into(),
        rcpt_to: vec![to.into()],
        message: format!("From: {from}\r\nTo: {to}\r\nSubject: t\r\n\r\nHello.\r\n").into_bytes(),
        helo: "test".into(),
    }
}

/// The message path parses a key once per process, and a rekey is seen at once (the user's
/// record, read every time, names the new key id).
#[test]
fn keys_are_parsed_once_and_a_rekey_is_seen_at_once() {
    let (_tmp, _, dir) = scratch("");
    let opts = EnrollOptions {
        display_name: "A".into(),
        single: false,
        key: KeyAlgorithm::P256,
        days: 30,
    };
    dir.enroll("alice@acme.test", &opts).unwrap();
    let (_, k1, _, _) = dir.signing_identity("alice@acme.test").unwrap();
    let (_, k2, _, _) = dir.signing_identity("alice@acme.test").unwrap();
    assert!(Arc::ptr_eq(&k1, &k2), "the same key was parsed twice");
    let d1 = dir.decryption_keys("alice@acme.test").unwrap();
    dir.renew("alice@acme.test", true, 30).unwrap();
    let (_, k3, _, _) = dir.signing_identity("alice@acme.test").unwrap();
    assert_ne!(
        k1.public_key_der(),
        k3.public_key_der(),
        "the rekeyed key must be used"
    );
    let d2 = dir.decryption_keys("alice@acme.test").unwrap();
    assert_eq!(
        d2.len(),
        d1.len() + 1,
        "old encryption keys keep decrypting"
    );
    assert!(Arc::ptr_eq(&d1[0].1, &d2[0].1));
}

#[test]
fn an_unavailable_directory_defers_outbound_mail_instead_of_sending_it_unprotected() {
    let (_tmp, gw, broken) = flaky_gateway("");
    let signed = |d: Decision| match d {
        Decision::Relay(c) => c.len() == 1 && c[0].kind != ActionKind::Unchanged,
        Decision::Refuse { .. } => false,
    };
    let deferred = |d: Decision| {
        matches!(
            d,
            Decision::Refuse {
                refusal: Refusal::DirectoryUnavailable,
                ..
            }
        )
    };
    assert!(signed(gw.process(
        &tx("alice@acme.test", "carol@acme.test"),
        Listener::Submission
    )));
    assert!(signed(gw.process(
        &tx("alice@acme.test", "bob@partner.test"),
        Listener::Submission
    )));

    broken.store(true, Ordering::SeqCst);
    // Before the fix these went out unsigned ("not enrolled") and unencrypted.
    assert!(deferred(gw.process(
        &tx("alice@acme.test", "carol@acme.test"),
        Listener::Submission
    )));
    assert!(deferred(gw.process(
        &tx("alice@acme.test", "bob@partner.test"),
        Listener::Submission
    )));
    // Mail the gateway does not touch needs no directory.
    assert!(matches!(
        gw.process(&tx("x@a.test", "y@b.test"), Listener::Submission),
        Decision::Relay(_)
    ));

    broken.store(false, Ordering::SeqCst);
    assert!(signed(gw.process(
        &tx("alice@acme.test", "carol@acme.test"),
        Listener::Submission
    )));
}

/// Inbound mail that needs the directory (keys to decrypt, trust to verify) waits for it:
/// before, a lost directory read as "no key held" and the user got the message still
/// encrypted, or unverified.
#[test]
fn an_unavailable_directory_defers_inbound_mail_that_needs_it() {
    // Internal mail is only signed unless a rule says otherwise: carol's says encrypt.
    let (_tmp, gw, broken) =
        flaky_gateway("[policy.users.\"carol@acme.test\"]\nencrypt = \"required\"\n");
    // Signed and encrypted to carol, as a partner's gateway would send it.
    let protected = match gw.process(
        &tx("alice@acme.test", "carol@acme.test"),
        Listener::Submission,
    ) {
        Decision::Relay(c) => c[0].message.clone(),
        d => panic!("{d:?}"),
    };
    let from_partner = |message: &[u8]| Transaction {
        mail_from: "bob@partner.test".into(),
        rcpt_to: vec!["carol@acme.test".into()],
        message: message.to_vec(),
        helo: "partner".into(),
    };
    let kinds = |d: Decision| match d {
        Decision::Relay(c) => c.iter().map(|c| c.kind).collect::<Vec<_>>(),
        d => panic!("{d:?}"),
    };
    assert_eq!(
        kinds(gw.process(&from_partner(&protected), Listener::Inbound)),
        [ActionKind::DecryptedVerified]
    );

    // Signed only (no certificate for the partner): verifying needs the trust store.
    let signed = match gw.process(
        &tx("alice@acme.test", "bob@partner.test"),
        Listener::Submission,
    ) {
        Decision::Relay(c) => c[0].message.clone(),
        d => panic!("{d:?}"),
    };
    assert_eq!(
        kinds(gw.process(&from_partner(&signed), Listener::Inbound)),
        [ActionKind::Verified]
    );

    broken.store(true, Ordering::SeqCst);
    let deferred = |d: Decision| {
        matches!(
            d,
            Decision::Refuse {
                refusal: Refusal::DirectoryUnavailable,
                direction: Direction::Inbound,
            }
        )
    };
    assert!(deferred(
        gw.process(&from_partner(&protected), Listener::Inbound)
    ));
    assert!(deferred(
        gw.process(&from_partner(&signed), Listener::Inbound)
    ));
    // Plain mail needs nothing from the directory and is still annotated and delivered.
    assert_eq!(
        kinds(gw.process(
            &tx("bob@partner.test", "carol@acme.test"),
            Listener::Inbound
        )),
        [ActionKind::Annotated]
    );

    broken.store(false, Ordering::SeqCst);
    assert_eq!(
        kinds(gw.process(&from_partner(&protected), Listener::Inbound)),
        [ActionKind::DecryptedVerified]
    );
}

// ---- What a verdict covers (issue 11, part 5) ----

const PLAIN: &[u8] =
    b"From: carol@acme.test\r\nTo: alice@acme.test\r\nSubject: plans\r\n\r\nThe plaintext.\r\n";

fn sign_as(gw: &Gateway, who: &str, msg: &[u8], opaque: bool) -> Vec<u8> {
    let (cert, key, chain, _) = gw.dir.signing_identity(who).unwrap();
    let signer = [Signer {
        cert: &cert,
        key: &key,
        chain: &chain,
        encryption_cert: None,
    }];
    message::sign(msg, &signer, opaque, &SignOptions::default()).unwrap()
}

fn encrypt_to_alice(gw: &Gateway, msg: &[u8], cipher: ContentCipher) -> Vec<u8> {
    let cert = gw.dir.encryption_cert("alice@acme.test").unwrap();
    let r = [Recipient {
        cert: &cert,
        oaep: false,
        id: RecipientIdKind::IssuerAndSerial,
    }];
    message::encrypt(msg, &r, cipher).unwrap()
}

/// The one copy an inbound message from bob@partner.test to alice becomes.
fn open_one(gw: &Gateway, msg: &[u8]) -> RelayCopy {
    match gw.process(&inbound(msg), Listener::Inbound) {
        Decision::Relay(mut c) if c.len() == 1 => c.remove(0),
        d => panic!("{d:?}"),
    }
}

fn text(c: &RelayCopy) -> String {
    String::from_utf8_lossy(&c.message).into_owned()
}

/// The Authentication-Results field we wrote, unfolded.
fn ar(c: &RelayCopy) -> String {
    let e = parse_entity(&c.message);
    e.header("Authentication-Results").unwrap().value()
}

/// The X-Smimegw-Result field we wrote, unfolded.
fn summary_of(c: &RelayCopy) -> String {
    let e = parse_entity(&c.message);
    e.header("X-Smimegw-Result").unwrap().value()
}

fn set_policy(gw: &Gateway, f: impl FnOnce(&mut PolicyConfig)) {
    let mut c = (*gw.policy_config()).clone();
    f(&mut c.policy);
    gw.reload_policy(&c);
}

/// Before, carol's signature around a ciphertext she did not make read `smime=pass` on top
/// of the decrypted text: she could pass off anyone's message to alice as her own.
#[test]
fn encrypt_then_sign_covers_the_ciphertext_only_unless_the_same_signer_signed_inside() {
    let (_tmp, gw, _) = flaky_gateway("");
    let gcm = ContentCipher::Aes256Gcm;
    let ciphertext = encrypt_to_alice(&gw, PLAIN, gcm);
    for opaque in [true, false] {
        let c = open_one(&gw, &sign_as(&gw, "carol@acme.test", &ciphertext, opaque));
        assert_eq!(c.verdict, "neutral", "opaque {opaque}: {}", text(&c));
        assert!(
            ar(&c).contains("smime=neutral reason=\"the signature covers the ciphertext only\""),
            "{}",
            ar(&c)
        );
        assert!(text(&c).contains("The plaintext."), "opened: {}", text(&c));
        assert_eq!(c.kind, ActionKind::DecryptedVerified);
    }
    // Carol signed the plaintext inside too, with the same key: her inner verdict stands.
    let inner = encrypt_to_alice(&gw, &sign_as(&gw, "carol@acme.test", PLAIN, false), gcm);
    let c = open_one(&gw, &sign_as(&gw, "carol@acme.test", &inner, true));
    assert_eq!(c.verdict, "pass", "{}", text(&c));
    assert!(!ar(&c).contains("reason="), "{}", ar(&c));
    // Signed by alice inside but wrapped by carol: not the same signer.
    let alices = b"From: carol@acme.test\r\nSubject: x\r\n\r\nhi\r\n";
    let inner = encrypt_to_alice(&gw, &sign_as(&gw, "alice@acme.test", alices, false), gcm);
    let c = open_one(&gw, &sign_as(&gw, "carol@acme.test", &inner, true));
    assert!(
        ar(&c).contains("the signature covers the ciphertext only"),
        "{}",
        ar(&c)
    );
    assert_ne!(c.verdict, "pass");
    // Sign-then-encrypt, the normal nesting, keeps its verdict (CBC too: signed inside).
    let normal = sign_as(&gw, "carol@acme.test", PLAIN, false);
    for cipher in [gcm, ContentCipher::Aes256Cbc] {
        let c = open_one(&gw, &encrypt_to_alice(&gw, &normal, cipher));
        assert_eq!(c.verdict, "pass", "{cipher}: {}", text(&c));
        assert!(!ar(&c).contains("reason="), "{}", ar(&c));
        assert_eq!(c.kind, ActionKind::DecryptedVerified);
    }
}

/// Before, content decrypted from AES-CBC without a signature inside was delivered
/// decrypted as `smime=none`, saying nothing of EFAIL-style tampering (CVE-2017-17689).
#[test]
fn content_from_cbc_without_a_passing_signature_inside_follows_unauthenticated_cbc() {
    let (_tmp, gw, _) = flaky_gateway("");
    let cbc = encrypt_to_alice(&gw, PLAIN, ContentCipher::Aes256Cbc);
    let unprotected =
        "content not integrity-protected (aes256-cbc without a valid signature inside)";
    // The default: kept encrypted, delivered as received.
    let c = open_one(&gw, &cbc);
    assert_eq!(c.kind, ActionKind::Undecrypted, "{}", text(&c));
    assert!(c.message.ends_with(&cbc));
    assert!(!text(&c).contains("The plaintext."));
    assert!(ar(&c).contains(unprotected), "{}", ar(&c));
    let summary = summary_of(&c);
    assert!(
        summary.contains(unprotected) && summary.contains("keep_encrypted"),
        "{summary}"
    );

    // deliver (a reload: the snapshot of the next transaction applies).
    set_policy(&gw, |p| {
        p.unauthenticated_cbc = Some(UnauthenticatedCbc::Deliver)
    });
    let c = open_one(&gw, &cbc);
    assert_eq!(
        (c.kind, c.verdict.as_str()),
        (ActionKind::Decrypted, "none")
    );
    assert!(text(&c).contains("The plaintext.\r\n"));
    assert!(text(&c).contains("\r\nSubject: plans\r\n"));
    assert!(ar(&c).contains(unprotected), "{}", ar(&c));
    // A signature inside that does not pass is no protection either.
    let forged = b"From: alice@acme.test\r\nSubject: from alice?\r\n\r\nx\r\n";
    let c = open_one(
        &gw,
        &encrypt_to_alice(
            &gw,
            &sign_as(&gw, "carol@acme.test", forged, false),
            ContentCipher::Aes256Cbc,
        ),
    );
    assert!(c.verdict.starts_with("fail"), "{}", c.verdict);
    assert!(ar(&c).contains(unprotected), "{}", ar(&c));

    // annotate: the reader sees it in the Subject.
    set_policy(&gw, |p| {
        p.unauthenticated_cbc = Some(UnauthenticatedCbc::Annotate)
    });
    let c = open_one(&gw, &cbc);
    assert!(
        text(&c).contains("\r\nSubject: [not integrity-protected] plans\r\n"),
        "{}",
        text(&c)
    );
    assert!(ar(&c).contains(unprotected));

    // GCM is integrity-protected: decrypted, nothing to say.
    set_policy(&gw, |p| p.unauthenticated_cbc = None);
    let c = open_one(&gw, &encrypt_to_alice(&gw, PLAIN, ContentCipher::Aes128Gcm));
    assert_eq!(
        (c.kind, c.verdict.as_str()),
        (ActionKind::Decrypted, "none")
    );
    assert!(!ar(&c).contains("reason="), "{}", ar(&c));
}

/// Before, a signature over SHA-1 read `smime=pass`.
#[test]
fn a_sha1_signature_is_not_pass_unless_insecure_sha1_signatures() {
    crate::test_peers::require("openssl", "openssl");
    let (tmp, gw, _) = flaky_gateway("");
    // carol signs with P-256 (ECDSA), dave with RSA.
    gw.dir
        .enroll(
            "dave@acme.test",
            &EnrollOptions {
                display_name: "D".into(),
                single: true,
                key: KeyAlgorithm::Rsa2048,
                days: 10,
            },
        )
        .unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("in.txt"),
        "Content-Type: text/plain\r\n\r\nold tools\r\n",
    )
    .unwrap();
    let sign = |who: &str, md: &str| {
        let (cert, key, _, _) = gw.dir.signing_identity(who).unwrap();
        std::fs::write(d.join("s.pem"), cert.to_pem()).unwrap();
        let pem = crate::pki::cert::pem_encode("PRIVATE KEY", key.pkcs8_der());
        std::fs::write(d.join("s.key"), pem).unwrap();
        let out = std::process::Command::new("openssl")
            .current_dir(d)
            .args([
                "cms", "-sign", "-md", md, "-in", "in.txt", "-signer", "s.pem",
            ])
            .args(["-inkey", "s.key", "-from", who, "-subject", "legacy"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        out.stdout
    };
    let not_accepted = "reason=\"signed with SHA-1 (digestAlgorithm sha-1), not accepted";
    for who in ["dave@acme.test", "carol@acme.test"] {
        let c = open_one(&gw, &sign(who, "sha1"));
        assert_eq!(c.verdict, "neutral", "{who}: {}", text(&c));
        assert!(ar(&c).contains(not_accepted), "{}", ar(&c));
        let summary = summary_of(&c);
        assert!(
            summary.contains("sha1-not-accepted") && summary.contains("SHA-1"),
            "{summary}"
        );
    }

    let sha1 = sign("dave@acme.test", "sha1");
    set_policy(&gw, |p| p.insecure_sha1_signatures = Some(true));
    let c = open_one(&gw, &sha1);
    assert_eq!(c.verdict, "pass", "{}", text(&c));
    let accepted = "reason=\"signed with SHA-1 (digestAlgorithm sha-1), accepted by \
                    insecure_sha1_signatures\"";
    assert!(ar(&c).contains(accepted), "{}", ar(&c));

    set_policy(&gw, |p| p.insecure_sha1_signatures = None);
    let c = open_one(&gw, &sign("dave@acme.test", "sha256"));
    assert_eq!(c.verdict, "pass", "{}", text(&c));
    assert!(!ar(&c).contains("reason="), "{}", ar(&c));
}
