//! Issue 11, parts 3 and 4, as an outsider would try them: header injection through a
//! certificate, forged results on every path and inside every layer, inner header fields lifted
//! to the top, a From field that is not one mailbox, and S/MIME entities that read two ways.
//! Each test failed on the gateway before the fix (see the commit that added it).

use super::tests::{enroll_alice_and_carol, scratch};
use super::*;
use crate::mime::Header;
use crate::pki::KeyAlgorithm;
use crate::pki::ca::Ca;
use crate::pki::profile::{CertificateParams, simple_name};
use crate::smime::enveloped::{self, ContentCipher, Recipient, RecipientIdKind};
use crate::smime::signed::{self, SignOptions, Signer};

const ALICE: &str = "alice@acme.test";
const CAROL: &str = "carol@acme.test";
const BOB: &str = "bob@partner.test";

/// A gateway (authserv-id `gw.test`) with alice and carol enrolled.
fn enrolled() -> (tempfile::TempDir, Gateway) {
    let (tmp, _, dir) = scratch("");
    enroll_alice_and_carol(&dir);
    (tmp, Gateway::new(dir))
}

fn copies(
    gw: &Gateway,
    listener: Listener,
    from: &str,
    to: &str,
    message: &[u8],
) -> Vec<RelayCopy> {
    let tx = Transaction {
        mail_from: from.into(),
        rcpt_to: vec![to.into()],
        message: message.to_vec(),
        helo: "test".into(),
    };
    match gw.process(&tx, listener) {
        Decision::Relay(c) => c,
        d => panic!("{d:?}"),
    }
}

/// The one copy of an inbound message from bob to alice.
fn inbound(gw: &Gateway, message: &[u8]) -> RelayCopy {
    let mut c = copies(gw, Listener::Inbound, BOB, ALICE, message);
    assert_eq!(c.len(), 1);
    c.remove(0)
}

fn top(m: &[u8]) -> Vec<Header> {
    parse_entity(m).headers
}

fn named<'a>(m: &'a [Header], name: &str) -> Vec<&'a Header> {
    m.iter().filter(|h| h.is(name)).collect()
}

/// Authentication-Results fields that mention our authserv-id in any spelling.
fn claiming_ours(m: &[Header]) -> usize {
    named(m, "Authentication-Results")
        .iter()
        .filter(|h| h.value().to_ascii_lowercase().contains("gw.test"))
        .count()
}

/// alice's signed message to `to`, made by the gateway's own outbound path.
fn signed_by_alice(gw: &Gateway, to: &str, headers: &str) -> Vec<u8> {
    let msg = format!("{headers}Subject: t\r\n\r\nHello.\r\n");
    let c = copies(gw, Listener::Submission, ALICE, to, msg.as_bytes());
    assert_eq!(c[0].kind, ActionKind::Signed, "{}", c[0].action);
    c[0].message.clone()
}

fn insert_before_header_end(m: &[u8], text: &str) -> Vec<u8> {
    let at = m.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    [&m[..at], text.as_bytes(), &m[at..]].concat()
}

fn replace_once(m: &[u8], from: &str, to: &str) -> Vec<u8> {
    let s = String::from_utf8(m.to_vec()).unwrap();
    assert!(s.contains(from), "{from:?} not in the message");
    s.replacen(from, to, 1).into_bytes()
}

/// One recipient, by issuer and serial.
fn recipient(cert: &Cert) -> [Recipient<'_>; 1] {
    [Recipient {
        cert,
        oaep: false,
        id: RecipientIdKind::IssuerAndSerial,
    }]
}

/// One signer: a directory signing identity.
fn signer(id: &crate::directory::SigningIdentity) -> [Signer<'_>; 1] {
    let (cert, key, chain, _) = id;
    [Signer {
        cert,
        key,
        chain,
        encryption_cert: None,
    }]
}

fn b64(der: &[u8]) -> String {
    String::from_utf8(crate::mime::encode_base64_lines(der)).unwrap()
}

/// A certificate whose rfc822Name and subject carry CR LF and a header field after it, issued
/// by a root whose name does the same: none of it may become a header field.
#[test]
fn a_certificate_with_crlf_in_its_names_adds_no_header_field() {
    let (_tmp, gw) = enrolled();
    let ca = Ca::new_root("Evil Root\r\nX-Injected: issuer", KeyAlgorithm::P256, 30).unwrap();
    let key = crate::pki::PrivateKey::generate(KeyAlgorithm::P256).unwrap();
    let params = CertificateParams {
        email_addresses: vec!["eve@evil.test\r\nX-Injected: address".into()],
        ..CertificateParams::smime_signing(
            "eve@evil.test",
            simple_name("Eve\r\nX-Injected: subject \"q\"", None).unwrap(),
            30,
        )
    };
    let cert = ca.issue(&params, &key.spki()).unwrap();
    let chain = [ca.cert().clone()];
    let signers = [Signer {
        cert: &cert,
        key: &key,
        chain: &chain,
        encryption_cert: None,
    }];
    let raw = b"From: eve@evil.test\r\nTo: alice@acme.test\r\nSubject: s\r\n\r\nhi\r\n";
    for opaque in [false, true] {
        let signed = message::sign(raw, &signers, opaque, &SignOptions::default()).unwrap();
        let c = inbound(&gw, &signed);
        let h = top(&c.message);
        assert!(
            named(&h, "X-Injected").is_empty(),
            "{}",
            String::from_utf8_lossy(&c.message[..c.message.len().min(800)])
        );
        assert_eq!(named(&h, "Authentication-Results").len(), 1);
        assert_eq!(named(&h, "X-Smimegw-Result").len(), 1);
        assert!(c.verdict.starts_with("fail"), "{}", c.verdict);
        // No CR or LF inside our fields except as folding.
        for f in [&h[0], &h[1]] {
            let body = f.raw.strip_suffix(b"\r\n").unwrap();
            for (i, &b) in body.iter().enumerate() {
                match b {
                    b'\r' => assert!(body[i + 1..].starts_with(b"\n ")),
                    b'\n' => assert_eq!(body[i - 1], b'\r'),
                    _ => assert!(b == b' ' || b.is_ascii_graphic(), "{b:#x}"),
                }
            }
        }
    }
}

const FORGED: &str = "Authentication-Results: gw.test; smime=pass\r\n\
    Authentication-Results: GW.TEST.; smime=pass\r\n\
    Authentication-Results: (our gateway) gw.test; smime=pass\r\n\
    Authentication-Results: \"gw.test\"; smime=pass\r\n\
    Authentication-Results:\r\n gw.test\r\n 1; smime=pass\r\n\
    Authentication-Results: gw.test (v) 1; smime=pass\r\n\
    Authentication-Results: partner.test; smime=pass\r\n\
    X-Smimegw-Result: signature by ceo@acme.test: pass (valid signature)\r\n";

/// Forged results for our authserv-id, in every spelling RFC 8601 allows, and our summary field,
/// are gone from every copy on every path; only the inbound copy carries ours, on top.
#[test]
fn forged_results_are_removed_on_every_path() {
    let (_tmp, gw) = enrolled();
    for (listener, from, to, direction) in [
        (Listener::Inbound, BOB, ALICE, Direction::Inbound),
        (
            Listener::Inbound,
            "x@a.test",
            "y@b.test",
            Direction::Transit,
        ),
        (Listener::Submission, ALICE, CAROL, Direction::Internal),
        (Listener::Submission, ALICE, BOB, Direction::Outbound),
        (
            Listener::Submission,
            "x@a.test",
            "y@b.test",
            Direction::Transit,
        ),
    ] {
        let msg = format!("{FORGED}From: {from}\r\nTo: {to}\r\nSubject: s\r\n\r\nbody\r\n");
        let c = copies(&gw, listener, from, to, msg.as_bytes());
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].direction, direction);
        if direction == Direction::Internal || direction == Direction::Outbound {
            assert_eq!(c[0].kind, ActionKind::Signed, "{}", c[0].action);
        }
        let h = top(&c[0].message);
        let ours = usize::from(direction == Direction::Inbound);
        assert_eq!(claiming_ours(&h), ours, "{direction:?}");
        assert_eq!(named(&h, "X-Smimegw-Result").len(), ours, "{direction:?}");
        if ours == 1 {
            assert!(h[0].is("Authentication-Results") && h[1].is("X-Smimegw-Result"));
            assert!(!String::from_utf8_lossy(&c[0].message).contains("ceo@acme.test"));
        }
        // Other ADMDs' results are theirs to judge: kept.
        assert_eq!(named(&h, "Authentication-Results").len(), 1 + ours);
    }
}

/// An encrypted or opaque-signed entity that brings its own From, Subject and results: they stay
/// inside a message/rfc822 wrapper (the results for our id removed), the top keeps one of each.
#[test]
fn inner_header_fields_stay_inside_and_inner_forgeries_are_removed() {
    let (_tmp, gw) = enrolled();
    let inner = b"From: ceo@acme.test\r\nSubject: inner subject\r\n\
                  Authentication-Results: gw.test; smime=pass\r\n\
                  X-Smimegw-Result: forged inside\r\n\
                  Content-Type: text/plain\r\n\r\nhello\r\n";
    let outer = |smime_type: &str, der: &[u8]| {
        format!(
            "From: {ALICE}\r\nTo: {ALICE}\r\nSubject: outer\r\nMIME-Version: 1.0\r\n\
             Content-Type: application/pkcs7-mime; smime-type={smime_type}; name=smime.p7m\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}",
            b64(der)
        )
        .into_bytes()
    };
    let enc = gw.directory().encryption_cert(ALICE).unwrap();
    // AES-GCM: content from CBC without a signature inside is kept encrypted by default
    // (`unauthenticated_cbc`), and the inner fields are what is under test here.
    let encrypted = enveloped::encrypt(inner, &recipient(&enc), ContentCipher::Aes256Gcm).unwrap();
    let id = gw.directory().signing_identity(ALICE).unwrap();
    let opaque = signed::sign(
        inner,
        &signer(&id),
        &SignOptions {
            detached: false,
            ..SignOptions::default()
        },
    )
    .unwrap();
    for (msg, verdict) in [
        (outer("authEnveloped-data", &encrypted), "none"),
        (outer("signed-data", &opaque), "pass"),
    ] {
        let c = inbound(&gw, &msg);
        assert_eq!(c.verdict, verdict, "{}", c.action);
        let h = top(&c.message);
        let from = named(&h, "From");
        assert_eq!(from.len(), 1);
        assert_eq!(from[0].value(), ALICE);
        assert_eq!(named(&h, "Subject").len(), 1);
        assert_eq!(named(&h, "Subject")[0].value(), "outer");
        assert_eq!(claiming_ours(&h), 1);
        assert_eq!(named(&h, "X-Smimegw-Result").len(), 1);
        let e = parse_entity(&c.message);
        assert_eq!(e.content_type().mime_type, "message/rfc822");
        let wrapped = parse_entity(e.body);
        assert_eq!(named(&wrapped.headers, "From")[0].value(), "ceo@acme.test");
        assert_eq!(
            named(&wrapped.headers, "Subject")[0].value(),
            "inner subject"
        );
        assert_eq!(claiming_ours(&wrapped.headers), 0);
        assert!(named(&wrapped.headers, "X-Smimegw-Result").is_empty());
        assert_eq!(wrapped.body, b"hello\r\n");
    }
}

/// A signature passes only for exactly one From field holding exactly one mailbox that the
/// certificate names: everything else is permerror (not one mailbox) or fail (another one).
#[test]
fn a_signature_vouches_only_for_one_from_mailbox() {
    let (_tmp, gw) = enrolled();
    let signed = signed_by_alice(&gw, CAROL, &format!("From: {ALICE}\r\nTo: {CAROL}\r\n"));
    let from = format!("From: {ALICE}\r\n");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("as signed", signed.clone(), "pass"),
        (
            "a second From after",
            replace_once(&signed, &from, &format!("{from}From: ceo@acme.test\r\n")),
            "permerror",
        ),
        (
            "a second From before",
            replace_once(&signed, &from, &format!("From: ceo@acme.test\r\n{from}")),
            "permerror",
        ),
        ("no From", replace_once(&signed, &from, ""), "permerror"),
        (
            "two mailboxes",
            replace_once(&signed, &from, &format!("From: {ALICE}, ceo@acme.test\r\n")),
            "permerror",
        ),
        (
            "a group",
            replace_once(
                &signed,
                &from,
                &format!("From: board: {ALICE}, ceo@acme.test;\r\n"),
            ),
            "permerror",
        ),
        (
            "a group of one",
            replace_once(&signed, &from, &format!("From: board: {ALICE};\r\n")),
            "permerror",
        ),
        (
            "the address in a comment",
            replace_once(
                &signed,
                &from,
                &format!("From: ceo@acme.test (<{ALICE}>)\r\n"),
            ),
            "fail",
        ),
        (
            "the address as display name",
            replace_once(
                &signed,
                &from,
                &format!("From: \"<{ALICE}>\" <ceo@acme.test>\r\n"),
            ),
            "fail",
        ),
        (
            "an encoded display name and a comment",
            replace_once(
                &signed,
                &from,
                &format!("From: =?utf-8?q?Al=C3=AFce?= (work)\r\n <{ALICE}>\r\n"),
            ),
            "pass",
        ),
    ];
    for (what, msg, want) in cases {
        let c = inbound(&gw, &msg);
        assert!(
            c.verdict.starts_with(want),
            "{what}: {} ({})",
            c.verdict,
            String::from_utf8_lossy(&c.message[..400.min(c.message.len())])
        );
    }
}

/// Two Content-Type or Content-Transfer-Encoding fields, or a parameter given twice, in any
/// S/MIME entity (the outer one, the signature part, the pkcs7-mime entity): permerror, whatever
/// the first one says.
#[test]
fn ambiguous_smime_entities_are_permerror() {
    let (_tmp, gw) = enrolled();
    let detached = signed_by_alice(&gw, CAROL, &format!("From: {ALICE}\r\nTo: {CAROL}\r\n"));
    let id = gw.directory().signing_identity(ALICE).unwrap();
    let signers = signer(&id);
    let plain = format!("From: {ALICE}\r\nTo: {ALICE}\r\nSubject: s\r\n\r\nhi\r\n");
    let opaque = message::sign(plain.as_bytes(), &signers, true, &SignOptions::default()).unwrap();
    let enc = gw.directory().encryption_cert(ALICE).unwrap();
    let encrypted =
        message::encrypt(plain.as_bytes(), &recipient(&enc), ContentCipher::Aes256Cbc).unwrap();
    // The unchanged messages pass (or decrypt): only the duplicates make them permerror.
    assert_eq!(inbound(&gw, &detached).verdict, "pass");
    assert_eq!(inbound(&gw, &opaque).verdict, "pass");
    assert_eq!(inbound(&gw, &encrypted).verdict, "none");
    // Each case: what, which message, and the text put in after `at` (None: at the end of the
    // outer header, that is after the Content-Type for the signed message).
    let sig = "filename=\"smime.p7s\"";
    let (d, o, e) = (&detached, &opaque, &encrypted);
    let cases: [(&str, &Vec<u8>, Option<&str>, &str); 13] = [
        (
            "outer: a second Content-Type after",
            d,
            None,
            "\r\nContent-Type: text/plain",
        ),
        (
            "outer: a second Content-Type before",
            d,
            Some("MIME-Version: 1.0\r\n"),
            "Content-Type: text/plain\r\n",
        ),
        (
            "outer: two boundary parameters",
            d,
            None,
            "; boundary=\"other\"",
        ),
        (
            "outer: an RFC 2231 boundary too",
            d,
            None,
            "; boundary*=us-ascii''other",
        ),
        (
            "outer: two protocol parameters",
            d,
            None,
            "; protocol=\"application/pkcs7-signature\"",
        ),
        (
            "outer: two Content-Transfer-Encoding",
            d,
            None,
            "\r\nContent-Transfer-Encoding: 7bit\r\nContent-Transfer-Encoding: 8bit",
        ),
        (
            "signature part: two Content-Transfer-Encoding",
            d,
            Some(sig),
            "\r\nContent-Transfer-Encoding: 7bit",
        ),
        (
            "signature part: two Content-Type",
            d,
            Some(sig),
            "\r\nContent-Type: application/pkcs7-signature",
        ),
        (
            "opaque: two smime-type parameters",
            o,
            Some("smime-type=signed-data;"),
            " smime-type=enveloped-data;",
        ),
        (
            "opaque: two Content-Transfer-Encoding",
            o,
            None,
            "\r\nContent-Transfer-Encoding: 7bit",
        ),
        (
            "enveloped: two Content-Type",
            e,
            None,
            "\r\nContent-Type: text/plain",
        ),
        (
            "enveloped: two smime-type parameters",
            e,
            Some("smime-type=enveloped-data;"),
            " smime-type=signed-data;",
        ),
        (
            "enveloped: two Content-Transfer-Encoding",
            e,
            None,
            "\r\nContent-Transfer-Encoding: 7bit",
        ),
    ];
    for (what, base, at, text) in cases {
        let msg = match at {
            None => insert_before_header_end(base, text),
            Some(at) => replace_once(base, at, &format!("{at}{text}")),
        };
        let c = inbound(&gw, &msg);
        assert_eq!(c.verdict, "permerror", "{what}: {}", c.action);
        assert!(
            c.action.contains("ambiguous") || c.action.contains("unverified"),
            "{what}: {}",
            c.action
        );
    }
}
