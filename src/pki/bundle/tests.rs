//! The certdata.txt and PEM bundle readers on the real syntax: a checked-in fixture in NSS's
//! format, and certdata written from OpenSSL-made roots.

use super::*;
use crate::pki::testpki::{KeyKind, Pki};

const FIXTURE: &str = include_str!("../../../testdata/certdata/certdata-fixture.txt");

#[test]
fn fixture_takes_only_roots_trusted_for_email() {
    let b = parse(FIXTURE.as_bytes()).unwrap();
    assert_eq!(b.format, BundleFormat::Certdata);
    let labels: Vec<_> = b.roots.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["Fixture Email Root"]);
    assert_eq!(b.roots[0].line, 31);
    assert_eq!(
        b.roots[0].cert.subject_string(),
        "CN=Fixture email root,O=Fixture"
    );
    let not: Vec<_> = b
        .not_taken
        .iter()
        .map(|n| (n.label.as_str(), n.reason, n.line))
        .collect();
    assert_eq!(
        not,
        [
            ("Fixture Server Only Root", NotTakenReason::NotForEmail, 123),
            ("Fixture Distrusted Root", NotTakenReason::Distrusted, 215),
            (
                "Fixture Email Distrust After Root",
                NotTakenReason::EmailDistrustAfter,
                308
            ),
        ]
    );
}

#[test]
fn octal_escapes() {
    let mut out = Vec::new();
    octal_line("\\060\\202\\001\\377  ", 7, &mut out).unwrap();
    assert_eq!(out, [0x30, 0x82, 0x01, 0xff]);
    for bad in ["\\400", "\\08", "060", "\\06", "\\060x"] {
        let e = octal_line(bad, 7, &mut Vec::new()).unwrap_err();
        assert_eq!(e.line, 7, "{bad}: {e}");
    }
}

/// Three roots made by OpenSSL, written out as certdata.txt with the three trust states.
#[test]
fn written_certdata_matches_trust_by_issuer_and_serial() {
    let pki = Pki::new();
    let mk =
        |n: &str, cn: &str| pki.cert(&pki.root(n, &format!("/CN={cn}"), KeyKind::P256, None).cert);
    let (mail, web, bad) = (mk("mail", "Mail"), mk("web", "Web"), mk("bad", "Bad"));
    let entry = |label, cert, server_auth, email_protection| CertdataEntry {
        label,
        cert,
        server_auth,
        email_protection,
    };
    let text = write_certdata(&[
        entry(
            "Mail",
            &mail,
            "CKT_NSS_MUST_VERIFY_TRUST",
            "CKT_NSS_TRUSTED_DELEGATOR",
        ),
        entry(
            "Web",
            &web,
            "CKT_NSS_TRUSTED_DELEGATOR",
            "CKT_NSS_MUST_VERIFY_TRUST",
        ),
        entry("Bad", &bad, "CKT_NSS_NOT_TRUSTED", "CKT_NSS_NOT_TRUSTED"),
    ]);
    let b = parse(text.as_bytes()).unwrap();
    assert_eq!(b.roots.len(), 1);
    assert_eq!(b.roots[0].cert, mail);
    let reasons: Vec<_> = b.not_taken.iter().map(|n| n.reason).collect();
    assert_eq!(
        reasons,
        [NotTakenReason::NotForEmail, NotTakenReason::Distrusted]
    );

    // A trust object for another certificate of the same issuer name (another serial number)
    // does not apply to "Mail".
    let twin = mk("twin", "Mail");
    assert_eq!(twin.issuer(), mail.issuer());
    let only = |c| write_certdata(&[entry("Mail", c, "x", "CKT_NSS_TRUSTED_DELEGATOR")]);
    let (m, t) = (only(&mail), only(&twin));
    let split = |s: &str| s.find("\n# Trust for").unwrap();
    let changed = format!("{}{}", &m[..split(&m)], &t[split(&t)..]);
    let b = parse(changed.as_bytes()).unwrap();
    assert!(b.roots.is_empty(), "{:?}", b.roots);
    assert_eq!(b.not_taken[0].reason, NotTakenReason::NoTrustObject);
}

#[test]
fn older_netscape_names_read_as_nss() {
    let old = FIXTURE
        .replace("CKO_NSS_TRUST", "CKO_NETSCAPE_TRUST")
        .replace("CKT_NSS_", "CKT_NETSCAPE_");
    let b = parse(old.as_bytes()).unwrap();
    assert_eq!(b.roots.len(), 1);
    assert_eq!(b.not_taken.len(), 3);
}

#[test]
fn certdata_errors_name_the_line() {
    let base = "BEGINDATA\nCKA_CLASS CK_OBJECT_CLASS CKO_CERTIFICATE\nCKA_LABEL UTF8 \"X\"\n";
    let e =
        parse(format!("{base}CKA_VALUE MULTILINE_OCTAL\n\\060\\zz\nEND\n").as_bytes()).unwrap_err();
    assert_eq!(e.line, 5, "{e}");
    let e = parse(format!("{base}CKA_VALUE MULTILINE_OCTAL\n\\060\n").as_bytes()).unwrap_err();
    assert!(e.to_string().contains("no END"), "{e}");
    let e = parse(format!("{base}CKA_VALUE MULTILINE_OCTAL\n\\060\\003\nEND\n").as_bytes())
        .unwrap_err();
    assert_eq!(e.line, 2, "{e}");
    assert!(
        e.reason.contains("'X'") && e.reason.contains("not a valid certificate"),
        "{e}"
    );
    let e = parse(format!("{base}CKA_LABEL UTF8 \"Y\"\n").as_bytes()).unwrap_err();
    assert!(e.line == 4 && e.reason.contains("twice"), "{e}");
    let e = parse(b"BEGINDATA\nCKA_CLASS CK_OBJECT_CLASS CKO_NSS_TRUST\nCKA_LABEL UTF8 \"T\"\n")
        .unwrap_err();
    assert!(e.line == 2 && e.reason.contains("'T'"), "{e}");
}

#[test]
fn pem_bundle_lines_and_refusals() {
    let pki = Pki::new();
    let a = pki.cert(&pki.root("a", "/CN=A", KeyKind::P256, None).cert);
    let b = pki.cert(&pki.root("b", "/CN=B", KeyKind::P256, None).cert);
    let text = format!("# Mozilla roots\n{}\n# next\n{}", a.to_pem(), b.to_pem());
    let bundle = parse(text.as_bytes()).unwrap();
    assert_eq!(bundle.format, BundleFormat::Pem);
    let lines: Vec<_> = bundle.roots.iter().map(|r| r.line).collect();
    let second = 2 + a.to_pem().lines().count() + 2;
    assert_eq!(lines, [2, second]);
    assert_eq!(bundle.roots[1].cert, b);

    let broken = text.replacen("MII", "M!I", 2);
    let e = parse(broken.as_bytes()).unwrap_err();
    assert_eq!(e.line, 2, "{e}");
    let key = format!("{text}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    let e = parse(key.as_bytes()).unwrap_err();
    assert!(e.reason.contains("PRIVATE KEY"), "{e}");
    let e = parse(b"hello").unwrap_err();
    assert!(e.reason.contains("neither"), "{e}");
    let e = parse(&text.as_bytes()[..text.len() - 30]).unwrap_err();
    assert!(e.reason.contains("no END"), "{e}");
}
