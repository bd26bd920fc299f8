//! Property tests: no corruption of a valid S/MIME message makes the engine panic, and bad MIME
//! (deep nesting, missing boundaries, bad base64) gives a typed error or a non-pass verdict.

use proptest::prelude::*;
use smimegw::pki::ca::Ca;
use smimegw::pki::path::{AnchorKind, TrustAnchor, TrustContext};
use smimegw::pki::profile::{CertificateParams, simple_name};
use smimegw::pki::{Cert, KeyAlgorithm, PrivateKey};
use smimegw::smime::enveloped::{ContentCipher, Recipient, RecipientIdKind};
use smimegw::smime::message::{self, TrustInput};
use smimegw::smime::signed::{SignOptions, Signer};

struct Fixture {
    ca: Cert,
    signed: Vec<u8>,
    opaque: Vec<u8>,
    encrypted: Vec<u8>,
    gcm: Vec<u8>,
    keys: Vec<(Cert, PrivateKey)>,
}

const MSG: &[u8] = b"From: alice@acme.test\r\nTo: bob@acme.test\r\nSubject: s\r\nContent-Type: text/plain\r\n\r\nbody line\r\n";

fn fixture() -> &'static Fixture {
    static F: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let ca = Ca::new_root("Prop Root", KeyAlgorithm::P256, 30).unwrap();
        let skey = PrivateKey::generate(KeyAlgorithm::P256).unwrap();
        let scert = ca
            .issue(
                &CertificateParams::smime_signing(
                    "alice@acme.test",
                    simple_name("Alice", None).unwrap(),
                    10,
                ),
                &skey.spki(),
            )
            .unwrap();
        let ekey = PrivateKey::generate(KeyAlgorithm::Rsa2048).unwrap();
        let ecert = ca
            .issue(
                &CertificateParams::smime_encryption(
                    "bob@acme.test",
                    simple_name("Bob", None).unwrap(),
                    10,
                    KeyAlgorithm::Rsa2048,
                ),
                &ekey.spki(),
            )
            .unwrap();
        let signer = [Signer {
            cert: &scert,
            key: &skey,
            chain: &[],
            encryption_cert: None,
        }];
        let signed = message::sign(MSG, &signer, false, &SignOptions::default()).unwrap();
        let opaque = message::sign(MSG, &signer, true, &SignOptions::default()).unwrap();
        let rcpt = [Recipient {
            cert: &ecert,
            oaep: false,
            id: RecipientIdKind::IssuerAndSerial,
        }];
        let encrypted = message::encrypt(&signed, &rcpt, ContentCipher::Aes256Cbc).unwrap();
        let gcm = message::encrypt(MSG, &rcpt, ContentCipher::Aes128Gcm).unwrap();
        Fixture {
            ca: ca.cert().clone(),
            signed,
            opaque,
            encrypted,
            gcm,
            keys: vec![(ecert, ekey)],
        }
    })
}

fn ctx(f: &Fixture) -> TrustContext {
    TrustContext {
        anchors: vec![TrustAnchor {
            cert: f.ca.clone(),
            kind: AnchorKind::OwnRoot,
            label: "prop".into(),
        }],
        intermediates: vec![],
        crls: vec![],
        internal_domains: Vec::new(),
        verified_crls: Default::default(),
    }
}

fn verify_full(raw: &[u8]) -> Option<(String, Vec<u8>)> {
    let f = fixture();
    let c = ctx(f);
    let t = TrustInput {
        ctx: &c,
        cache: None,
        generation: 0,
        now: smimegw::pki::profile::now(),
    };
    message::verify(raw, &t, None).ok().map(|v| {
        let code = v
            .reports
            .iter()
            .map(|r| r.verdict.code())
            .collect::<Vec<_>>()
            .join(",");
        (code, v.message)
    })
}

fn verify_code(raw: &[u8]) -> Option<String> {
    verify_full(raw).map(|(c, _)| c)
}

#[test]
fn the_fixtures_are_valid() {
    let f = fixture();
    assert_eq!(verify_code(&f.signed).as_deref(), Some("pass"));
    assert_eq!(verify_code(&f.opaque).as_deref(), Some("pass"));
    let d = message::decrypt(&f.encrypted, &f.keys).unwrap();
    assert_eq!(verify_code(&d.message).as_deref(), Some("pass"));
    assert!(message::decrypt(&f.gcm, &f.keys).is_ok());
}

/// A mutation: flip, overwrite, delete or insert bytes at a position.
#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
}

fn apply(data: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut d = data.to_vec();
    for m in muts {
        let n = d.len().max(1);
        match m {
            Mutation::Flip(i, x) => {
                let i = i % n;
                if let Some(b) = d.get_mut(i) {
                    *b ^= x | 1;
                }
            }
            Mutation::Truncate(i) => d.truncate(i % n),
            Mutation::Delete(i, len) => {
                let i = i % n;
                let end = (i + len % 64).min(d.len());
                d.drain(i..end);
            }
            Mutation::Insert(i, bytes) => {
                let i = i % n;
                let i = i.min(d.len());
                d.splice(i..i, bytes.iter().copied());
            }
        }
    }
    d
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<usize>()).prop_map(|(i, l)| Mutation::Delete(i, l)),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn corrupted_signed_messages_never_panic(muts in proptest::collection::vec(mutation(), 1..4), which in 0usize..2) {
        let f = fixture();
        let base = if which == 0 { &f.signed } else { &f.opaque };
        let bad = apply(base, &muts);
        // Any outcome is fine except a panic, and a pass must hand out the body that was
        // signed: only bytes outside the signature (headers, preamble, base64 line breaks) may
        // change and still pass.
        if let Some((code, content)) = verify_full(&bad) && code == "pass" {
            prop_assert!(content.ends_with(b"\r\n\r\nbody line\r\n"), "{}", String::from_utf8_lossy(&content));
        }
    }

    #[test]
    fn corrupted_encrypted_messages_never_panic(muts in proptest::collection::vec(mutation(), 1..4), which in 0usize..2) {
        let f = fixture();
        let base = if which == 0 { &f.encrypted } else { &f.gcm };
        let bad = apply(base, &muts);
        if let Ok(d) = message::decrypt(&bad, &f.keys) {
            let _ = verify_code(&d.message);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let f = fixture();
        let _ = verify_code(&data);
        let _ = message::decrypt(&data, &f.keys);
        let mut framed = b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\r\n".to_vec();
        framed.extend_from_slice(&data);
        let _ = message::decrypt(&framed, &f.keys);
    }
}

#[test]
fn bad_mime_gives_typed_errors() {
    let f = fixture();
    // Missing boundary parameter and missing delimiters.
    let no_param =
        b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"\r\n\r\nx\r\n";
    assert!(verify_code(no_param).is_none());
    let no_delims = b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=b\r\n\r\nno parts here\r\n";
    assert!(verify_code(no_delims).is_none());
    // Bad base64 in an encrypted body.
    let bad64 = b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64***\r\n";
    assert!(message::decrypt(bad64, &f.keys).is_err());
    // 1,000-deep multipart nesting when making content transport-safe: refused, not a stack overflow.
    let mut deep = Vec::new();
    for i in 0..1000 {
        deep.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n")
                .as_bytes(),
        );
    }
    deep.extend_from_slice("Content-Type: text/plain\r\n\r\nGrüße\r\n".as_bytes());
    for i in (0..1000).rev() {
        deep.extend_from_slice(format!("\r\n--b{i}--\r\n").as_bytes());
    }
    assert!(message::make_transport_safe(&deep).is_err());
}
