//! Path building and checking rules that `openssl verify` cannot judge for us (backtracking,
//! loops, the choice of the reported failure, warnings, the cache).

use super::*;
use crate::pki::testpki::{Ca, DAY, KeyKind, Pki, now};

/// Our root, an intermediate and Alice's signing certificate.
struct Acme {
    pki: Pki,
    root: Ca,
    inter: Ca,
    alice: Cert,
}

fn acme() -> Acme {
    let pki = Pki::new();
    let root = pki.root("root", "/O=Acme/CN=Acme Root", KeyKind::P256, None);
    let inter = pki.issue_ca(
        &root,
        "inter",
        "/O=Acme/CN=Acme Intermediate",
        &pki.ca_ext(None, ""),
        KeyKind::P256,
    );
    let alice = pki.issue(
        &inter,
        "alice",
        "/O=Acme/CN=Alice",
        &pki.leaf_ext("alice@acme.test"),
        KeyKind::P256,
        None,
    );
    let alice = pki.cert(&alice);
    Acme {
        pki,
        root,
        inter,
        alice,
    }
}

impl Acme {
    fn anchor(&self, ca: &Ca, label: &str) -> TrustAnchor {
        TrustAnchor {
            cert: self.pki.cert(&ca.cert),
            kind: AnchorKind::OwnRoot,
            label: label.into(),
        }
    }
    fn ctx(&self) -> TrustContext {
        TrustContext {
            anchors: vec![self.anchor(&self.root, "acme")],
            intermediates: vec![self.pki.cert(&self.inter.cert)],
            crls: vec![],
            internal_domains: Vec::new(),
            verified_crls: Default::default(),
        }
    }
}

fn query<'a>(leaf: &'a Cert, untrusted: &'a [Cert]) -> Query<'a> {
    Query {
        leaf,
        untrusted,
        at: now(),
        email: None,
        usage: None,
    }
}

#[test]
fn valid_path_reports_anchor_and_order() {
    let a = acme();
    let p = validate(&a.ctx(), &query(&a.alice, &[])).unwrap();
    assert_eq!(p.anchor_label, "acme");
    assert_eq!(p.anchor_kind, AnchorKind::OwnRoot);
    assert_eq!(p.path.len(), 3);
    assert_eq!(p.leaf(), Some(&a.alice));
    assert_eq!(p.path[2], a.pki.cert(&a.root.cert));
    assert_eq!(p.revocation_checked, vec![false, false, false]);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert!(p.valid_from() <= now() && now() <= p.valid_until());
}

#[test]
fn anchor_presented_as_leaf_is_a_path_of_one() {
    let a = acme();
    let root = a.pki.cert(&a.root.cert);
    let p = validate(&a.ctx(), &query(&root, &[])).unwrap();
    assert_eq!(p.path, vec![root]);
}

/// A CA with the intermediate's name but another key, issued by another trusted root: the
/// leaf (without authorityKeyIdentifier) names both as possible issuers, and the first one
/// tried fails on the signature.
#[test]
fn backtracks_past_a_same_name_issuer() {
    let a = acme();
    let other = a.pki.root("other", "/CN=Other Root", KeyKind::P256, None);
    let decoy = a.pki.issue_ca(
        &other,
        "decoy",
        "/O=Acme/CN=Acme Intermediate",
        &a.pki.ca_ext(None, ""),
        KeyKind::P256,
    );
    let no_aki = "basicConstraints = CA:FALSE\nkeyUsage = critical, digitalSignature\n\
                  subjectAltName = email:nokid@acme.test\n\
                  subjectKeyIdentifier = none\nauthorityKeyIdentifier = none\n";
    let leaf = a.pki.issue(
        &a.inter,
        "nokid",
        "/CN=No Key Id",
        no_aki,
        KeyKind::P256,
        None,
    );
    let leaf = a.pki.cert(&leaf);
    let mut ctx = a.ctx();
    ctx.anchors.push(a.anchor(&other, "other"));
    ctx.intermediates = vec![];
    let decoy = a.pki.cert(&decoy.cert);
    let inter = a.pki.cert(&a.inter.cert);

    let p = validate(&ctx, &query(&leaf, &[decoy.clone(), inter])).unwrap();
    assert_eq!(p.anchor_label, "acme");

    // With only the decoy, the failure is the signature, not a missing issuer.
    let e = validate(&ctx, &query(&leaf, std::slice::from_ref(&decoy))).unwrap_err();
    assert_eq!(e.code(), "bad-signature", "{e}");
    assert!(e.to_string().contains("CN=No Key Id"), "{e}");

    // Alice has an authorityKeyIdentifier, so the decoy is not even a candidate.
    let e = validate(&ctx, &query(&a.alice, &[decoy])).unwrap_err();
    assert!(matches!(e, PathError::NoIssuer { .. }), "{e}");
}

/// Two foreign roots that cross-certify each other form a loop; neither is an anchor.
#[test]
fn cross_certification_loop_terminates() {
    let a = acme();
    let x = a.pki.root("x", "/CN=X Root", KeyKind::P256, None);
    let y = a.pki.root("y", "/CN=Y Root", KeyKind::P256, None);
    let x_by_y = a.pki.cross(&y, &x, "x-by-y", &a.pki.ca_ext(None, ""));
    let y_by_x = a.pki.cross(&x, &y, "y-by-x", &a.pki.ca_ext(None, ""));
    let leaf = a.pki.issue(
        &x,
        "xl",
        "/CN=X Leaf",
        &a.pki.leaf_ext("l@x.test"),
        KeyKind::P256,
        None,
    );
    let leaf = a.pki.cert(&leaf);
    let mut ctx = a.ctx();
    ctx.intermediates = vec![a.pki.cert(&x_by_y), a.pki.cert(&y_by_x)];
    let untrusted = [a.pki.cert(&x.cert), a.pki.cert(&y.cert)];
    let started = std::time::Instant::now();
    let e = validate(&ctx, &query(&leaf, &untrusted)).unwrap_err();
    assert!(matches!(e.code(), "untrusted" | "no-issuer"), "{e}");
    assert!(started.elapsed().as_secs() < 5);

    // Once our root cross-certifies X, the loop no longer matters.
    let x_by_us = a
        .pki
        .cross(&a.root, &x, "x-by-acme", &a.pki.ca_ext(None, ""));
    ctx.intermediates.push(a.pki.cert(&x_by_us));
    let p = validate(&ctx, &query(&leaf, &untrusted)).unwrap();
    assert_eq!(p.anchor_label, "acme");
}

/// One path is revoked, the other dead-ends at an unknown root: "revoked" is the useful answer.
#[test]
fn revoked_is_reported_rather_than_no_issuer() {
    let a = acme();
    // The intermediate's name and key, certified by a root nobody trusts.
    let old = a.pki.root("old", "/CN=Old Root", KeyKind::P256, None);
    let inter_by_old = a
        .pki
        .cross(&old, &a.inter, "inter-by-old", &a.pki.ca_ext(None, ""));
    a.pki.revoke(&a.root, "inter", Some("keyCompromise"));
    let crl = Crl::read_file(&a.pki.gencrl(&a.root, true)).unwrap();
    let mut ctx = a.ctx();
    ctx.crls = vec![crl];
    ctx.intermediates = vec![];
    let untrusted = [a.pki.cert(&inter_by_old), a.pki.cert(&a.inter.cert)];
    let e = validate(&ctx, &query(&a.alice, &untrusted)).unwrap_err();
    match &e {
        PathError::Revoked {
            subject, reason, ..
        } => {
            assert!(subject.contains("Acme Intermediate"), "{e}");
            assert_eq!(*reason, Some(RevocationReason::KeyCompromise));
        }
        other => panic!("expected Revoked, got {other}"),
    }
    assert!(e.to_string().contains("keyCompromise"), "{e}");
}

#[test]
fn crl_flags_and_warnings() {
    let a = acme();
    let crl = Crl::read_file(&a.pki.gencrl(&a.inter, true)).unwrap();
    let mut ctx = a.ctx();
    ctx.crls = vec![crl];
    let p = validate(&ctx, &query(&a.alice, &[])).unwrap();
    assert_eq!(p.revocation_checked, vec![true, false, false]);
    assert!(p.warnings.is_empty());

    // 40 days on, the 30-day CRL is out of date: still checked, with a warning.
    let mut q = query(&a.alice, &[]);
    q.at = now() + 40 * DAY;
    let p = validate(&ctx, &q).unwrap();
    assert!(p.revocation_checked[0]);
    assert!(
        p.warnings.iter().any(|w| w.contains("out of date")),
        "{:?}",
        p.warnings
    );

    // A CRL under the intermediate's name but signed by another key is not used.
    let impostor = a.pki.root(
        "impostor",
        "/O=Acme/CN=Acme Intermediate",
        KeyKind::P256,
        None,
    );
    ctx.crls = vec![Crl::read_file(&a.pki.gencrl(&impostor, true)).unwrap()];
    let p = validate(&ctx, &query(&a.alice, &[])).unwrap();
    assert!(!p.revocation_checked[0]);
    assert!(
        p.warnings.iter().any(|w| w.contains("signature")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn newest_crl_wins() {
    let a = acme();
    let hold = a.pki.issue(
        &a.inter,
        "held",
        "/CN=Held",
        &a.pki.leaf_ext("held@acme.test"),
        KeyKind::P256,
        None,
    );
    let hold = a.pki.cert(&hold);
    let before = Crl::read_file(&a.pki.gencrl(&a.inter, true)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    a.pki.revoke(&a.inter, "held", Some("certificateHold"));
    let after = Crl::read_file(&a.pki.gencrl(&a.inter, true)).unwrap();
    let mut ctx = a.ctx();
    ctx.crls = vec![after, before];
    let e = validate(&ctx, &query(&hold, &[])).unwrap_err();
    assert_eq!(e.code(), "revoked");
    ctx.crls.reverse();
    assert_eq!(
        validate(&ctx, &query(&hold, &[])).unwrap_err().code(),
        "revoked"
    );
}

/// A CA that rolled its key over signs its CRL with the new key: RFC 5280 section 6.3.3 (f)
/// lets that CRL cover certificates issued under the old key, once the new certificate
/// validates to the same anchor. Before, such a CRL was dropped and the revoked leaf passed.
#[test]
fn crl_signed_by_a_rolled_over_key_of_the_same_ca_revokes() {
    let a = acme();
    let rolled = a.pki.issue_ca(
        &a.root,
        "inter-rolled",
        "/O=Acme/CN=Acme Intermediate",
        &a.pki.ca_ext(None, ""),
        KeyKind::P256,
    );
    a.pki.revoke(&rolled, "alice", Some("keyCompromise"));
    let crl = Crl::read_file(&a.pki.gencrl(&rolled, true)).unwrap();
    let mut ctx = a.ctx();
    ctx.crls = vec![crl];

    // The new key's certificate unknown: the CRL cannot be authenticated, and says so.
    let p = validate(&ctx, &query(&a.alice, &[])).unwrap();
    assert!(!p.revocation_checked[0]);
    assert!(p.warnings.iter().any(|w| w.contains("signature")), "{p:?}");

    // Presented with the message, or known to the directory: the leaf is revoked.
    let rolled = a.pki.cert(&rolled.cert);
    let e = validate(&ctx, &query(&a.alice, std::slice::from_ref(&rolled))).unwrap_err();
    assert_eq!(e.code(), "revoked", "{e}");
    ctx.intermediates.push(rolled);
    let e = validate(&ctx, &query(&a.alice, &[])).unwrap_err();
    assert!(
        matches!(&e, PathError::Revoked { subject, reason: Some(RevocationReason::KeyCompromise), .. }
            if subject.contains("Alice")),
        "{e}"
    );
}

/// A separate CRL-signing certificate of the CA (same name, its own key, cRLSign only).
#[test]
fn crl_signed_by_a_separate_crl_signing_certificate_revokes() {
    let a = acme();
    let crl_signer_ext = |ku: &str| {
        format!(
            "basicConstraints = critical, CA:FALSE
keyUsage = critical, {ku}
             subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"
        )
    };
    // A same-name certificate from the intermediate, whose own CRL revokes Alice.
    let ctx_with_crl_of = |name: &str, ku: &str| {
        let signer = a.pki.issue(
            &a.inter,
            name,
            "/O=Acme/CN=Acme Intermediate",
            &crl_signer_ext(ku),
            KeyKind::P256,
            None,
        );
        let signer_ca = a.pki.ca_for(name);
        a.pki.revoke(&signer_ca, "alice", None);
        let mut ctx = a.ctx();
        ctx.crls = vec![Crl::read_file(&a.pki.gencrl(&signer_ca, true)).unwrap()];
        ctx.intermediates.push(a.pki.cert(&signer));
        ctx
    };
    let ctx = ctx_with_crl_of("crlsigner", "cRLSign");
    let e = validate(&ctx, &query(&a.alice, &[])).unwrap_err();
    assert_eq!(e.code(), "revoked", "{e}");

    // Without cRLSign the same certificate may not sign CRLs.
    let ctx = ctx_with_crl_of("nosign", "digitalSignature");
    let p = validate(&ctx, &query(&a.alice, &[])).unwrap();
    assert!(!p.revocation_checked[0], "{p:?}");
}

/// A same-name CRL signer that validates only to another trusted anchor does not vouch for a
/// CRL of a path ending at ours (RFC 5280 section 6.3.3 (f): the same trust anchor).
#[test]
fn crl_signer_must_chain_to_the_same_anchor() {
    let a = acme();
    let other = a.pki.root("other", "/CN=Other Root", KeyKind::P256, None);
    let twin = a.pki.issue_ca(
        &other,
        "twin",
        "/O=Acme/CN=Acme Intermediate",
        &a.pki.ca_ext(None, ""),
        KeyKind::P256,
    );
    a.pki.revoke(&twin, "alice", None);
    let mut ctx = a.ctx();
    ctx.anchors.push(a.anchor(&other, "other"));
    ctx.crls = vec![Crl::read_file(&a.pki.gencrl(&twin, true)).unwrap()];
    ctx.intermediates.push(a.pki.cert(&twin.cert));
    let p = validate(&ctx, &query(&a.alice, &[])).unwrap();
    assert_eq!(p.anchor_label, "acme");
    assert!(!p.revocation_checked[0], "{p:?}");
}

/// The CRL of an intermediate under a cross-certified partner root is used for the leaves it
/// issued, and the CRL of the partner root for that intermediate: every CA on the path.
#[test]
fn crls_of_every_ca_on_a_cross_certified_path_are_used() {
    let a = acme();
    let partner = a
        .pki
        .root("partner", "/O=Partner/CN=Partner Root", KeyKind::P256, None);
    let cross = a
        .pki
        .cross(&a.root, &partner, "partner-cross", &a.pki.ca_ext(None, ""));
    let issuing = a.pki.issue_ca(
        &partner,
        "partner-issuing",
        "/O=Partner/CN=Partner Issuing CA",
        &a.pki.ca_ext(None, ""),
        KeyKind::P256,
    );
    let bob = a.pki.issue(
        &issuing,
        "bob",
        "/CN=Bob",
        &a.pki.leaf_ext("bob@partner.test"),
        KeyKind::P256,
        None,
    );
    let bob = a.pki.cert(&bob);
    let mut ctx = a.ctx();
    ctx.intermediates = vec![a.pki.cert(&cross), a.pki.cert(&issuing.cert)];
    let clean = Crl::read_file(&a.pki.gencrl(&issuing, true)).unwrap();
    ctx.crls = vec![clean];
    let p = validate(&ctx, &query(&bob, &[])).unwrap();
    assert_eq!(p.revocation_checked, vec![true, false, false, false]);

    a.pki.revoke(&issuing, "bob", Some("superseded"));
    ctx.crls = vec![Crl::read_file(&a.pki.gencrl(&issuing, true)).unwrap()];
    let e = validate(&ctx, &query(&bob, &[])).unwrap_err();
    assert!(e.to_string().contains("CN=Bob"), "{e}");
    assert_eq!(e.code(), "revoked");

    // The partner root revokes its issuing CA: the CRL signed by the partner's key is checked
    // with the cross-certificate (same name, same key).
    let mut ctx2 = a.ctx();
    ctx2.intermediates = vec![a.pki.cert(&cross), a.pki.cert(&issuing.cert)];
    a.pki
        .revoke(&partner, "partner-issuing", Some("cACompromise"));
    ctx2.crls = vec![Crl::read_file(&a.pki.gencrl(&partner, true)).unwrap()];
    let e = validate(&ctx2, &query(&bob, &[])).unwrap_err();
    assert!(e.to_string().contains("Partner Issuing CA"), "{e}");
}

#[test]
fn anchor_name_constraints_apply() {
    let a = acme();
    let nc_root = a.pki.root(
        "ncroot",
        "/CN=Constrained Root",
        KeyKind::P256,
        Some(
            "basicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\n\
             subjectKeyIdentifier = hash\n\
             nameConstraints = critical, permitted;email:.acme.test, excluded;email:ceo@eu.acme.test\n",
        ),
    );
    let ok = a.pki.issue(
        &nc_root,
        "ok",
        "/CN=Ok",
        &a.pki.leaf_ext("ok@eu.acme.test"),
        KeyKind::P256,
        None,
    );
    let out = a.pki.issue(
        &nc_root,
        "out",
        "/CN=Out",
        &a.pki.leaf_ext("x@acme.test"),
        KeyKind::P256,
        None,
    );
    let ceo = a.pki.issue(
        &nc_root,
        "ceo",
        "/CN=Ceo",
        &a.pki.leaf_ext("CEO@eu.acme.test"),
        KeyKind::P256,
        None,
    );
    let ctx = TrustContext {
        anchors: vec![TrustAnchor {
            cert: a.pki.cert(&nc_root.cert),
            kind: AnchorKind::TrustedRoot,
            label: "constrained".into(),
        }],
        ..Default::default()
    };
    let ok = a.pki.cert(&ok);
    assert_eq!(
        validate(&ctx, &query(&ok, &[])).unwrap().anchor_kind,
        AnchorKind::TrustedRoot
    );
    let out = a.pki.cert(&out);
    let e = validate(&ctx, &query(&out, &[])).unwrap_err();
    assert!(
        matches!(&e, PathError::NameConstraintViolated { email, .. } if email == "email:x@acme.test"),
        "{e}"
    );
    let ceo = a.pki.cert(&ceo);
    let e = validate(&ctx, &query(&ceo, &[])).unwrap_err();
    assert!(e.to_string().contains("excluded"), "{e}");
}

#[test]
fn wrong_usage_and_address_have_their_own_errors() {
    let a = acme();
    let ctx = a.ctx();
    let mut q = query(&a.alice, &[]);
    q.usage = Some(Usage::Encryption);
    let e = validate(&ctx, &q).unwrap_err();
    assert!(
        matches!(&e, PathError::WrongUsage { usage: Usage::Encryption, needed, .. } if needed.contains("keyAgreement")),
        "{e}"
    );
    let mut q = query(&a.alice, &[]);
    q.email = Some("mallory@acme.test");
    let e = validate(&ctx, &q).unwrap_err();
    assert!(
        matches!(&e, PathError::AddressMismatch { cert_addresses, .. } if cert_addresses == &["alice@acme.test"]),
        "{e}"
    );
    q.email = Some(" ALICE@acme.test ");
    q.usage = Some(Usage::Signing);
    validate(&ctx, &q).unwrap();
}

#[test]
fn error_codes_are_stable() {
    let e = PathError::Revoked {
        subject: "CN=Alice".into(),
        serial: "0a".into(),
        reason: Some(RevocationReason::Superseded),
        revoked_at: 0,
    };
    assert_eq!(e.code(), "revoked");
    assert_eq!(
        e.to_string(),
        "certificate CN=Alice (serial 0a) was revoked on 1970-01-01 00:00:00 UTC (reason: superseded)"
    );
    let e = PathError::UntrustedRoot {
        subject: "CN=X".into(),
        serial: "01".into(),
    };
    assert_eq!(e.code(), "untrusted");
}

#[test]
fn cache_serves_repeats_and_honours_generation() {
    let a = acme();
    let ctx = a.ctx();
    let cache = ChainCache::new(100);
    let q = query(&a.alice, &[]);
    cache.validate(&ctx, 1, &q).unwrap();
    cache.validate(&ctx, 1, &q).unwrap();
    assert_eq!(cache.validations(), 1);
    assert_eq!(cache.len(), 1);

    // Same hour, other address or usage: separate questions.
    let mut q2 = q;
    q2.usage = Some(Usage::Signing);
    cache.validate(&ctx, 1, &q2).unwrap();
    assert_eq!(cache.validations(), 2);

    // A new trust context generation is validated afresh...
    cache.validate(&ctx, 2, &q).unwrap();
    assert_eq!(cache.validations(), 3);
    // ...and so is the next hour.
    let mut later = q;
    later.at += 3600;
    cache.validate(&ctx, 2, &later).unwrap();
    assert_eq!(cache.validations(), 4);

    // Failures are not cached: a new generation with a revoking CRL is seen at once.
    a.pki.revoke(&a.inter, "alice", Some("superseded"));
    let mut revoked_ctx = ctx.clone();
    revoked_ctx.crls = vec![Crl::read_file(&a.pki.gencrl(&a.inter, true)).unwrap()];
    assert_eq!(
        cache.validate(&revoked_ctx, 3, &q).unwrap_err().code(),
        "revoked"
    );
    assert_eq!(
        cache.validate(&revoked_ctx, 3, &q).unwrap_err().code(),
        "revoked"
    );
    assert_eq!(cache.validations(), 6);
}

#[test]
fn cache_does_not_serve_a_path_past_its_expiry() {
    let a = acme();
    // Expires at half past an hour, so one hour bucket holds both queries below.
    let end = (now().div_euclid(3600) + 2) * 3600 + 1800;
    let short = a.pki.issue(
        &a.inter,
        "short",
        "/CN=Short",
        &a.pki.leaf_ext("short@acme.test"),
        KeyKind::P256,
        Some((now() - DAY, end)),
    );
    let short = a.pki.cert(&short);
    let ctx = a.ctx();
    let cache = ChainCache::new(100);
    let mut q = query(&short, &[]);
    q.at = end - 60;
    cache.validate(&ctx, 1, &q).unwrap();
    let mut after = q;
    after.at = end + 60;
    assert_eq!(q.at.div_euclid(3600), after.at.div_euclid(3600));
    assert_eq!(
        cache.validate(&ctx, 1, &after).unwrap_err().code(),
        "expired"
    );
    assert_eq!(cache.validations(), 2);
}

#[test]
fn cache_is_bounded() {
    let a = acme();
    let ctx = a.ctx();
    let cache = ChainCache::new(3);
    let mut q = query(&a.alice, &[]);
    for h in 0..10 {
        q.at = now() + h * 3600;
        cache.validate(&ctx, 1, &q).unwrap();
        assert!(cache.len() <= 3);
    }
    assert_eq!(cache.validations(), 10);
}

#[test]
fn cache_is_shared_between_threads() {
    let a = acme();
    let ctx = a.ctx();
    let cache = ChainCache::default();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                cache.validate(&ctx, 7, &query(&a.alice, &[])).unwrap();
            });
        }
    });
    assert!(cache.validations() >= 1 && cache.validations() <= 4);
    assert_eq!(cache.len(), 1);
}

/// A bundled root never vouches for an internal address unless imported with --internal-too;
/// our own root does. An internal address asked about is named before the mismatch.
#[test]
fn bundled_root_does_not_vouch_for_internal_addresses() {
    let a = acme();
    let bob = a.pki.issue(
        &a.inter,
        "bob",
        "/CN=Bob",
        &a.pki.leaf_ext("bob@partner.test"),
        KeyKind::P256,
        None,
    );
    let bob = a.pki.cert(&bob);
    let mut ctx = TrustContext {
        internal_domains: vec!["acme.test".into()],
        ..a.ctx()
    };
    assert!(validate(&ctx, &query(&a.alice, &[])).is_ok(), "own root");
    for internal_too in [false, true] {
        ctx.anchors[0].kind = AnchorKind::BundledRoot { internal_too };
        let r = validate(&ctx, &query(&a.alice, &[]));
        assert_eq!(r.is_ok(), internal_too, "{r:?}");
        if let Err(e) = r {
            assert_eq!(e.code(), "internal-address");
            assert!(
                e.to_string()
                    .contains("alice@acme.test, an internal address"),
                "{e}"
            );
        }
        assert!(validate(&ctx, &query(&bob, &[])).is_ok());
        let asked = Query {
            email: Some("Someone@ACME.test"),
            ..query(&bob, &[])
        };
        let want = if internal_too {
            "address-mismatch"
        } else {
            "internal-address"
        };
        assert_eq!(validate(&ctx, &asked).unwrap_err().code(), want);
    }
}
