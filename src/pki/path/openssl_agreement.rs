//! Our verdict against `openssl verify`'s on the same certificates, made by `openssl ca`.
//!
//! Each case states the PathError code we must give; the test fails if openssl and we disagree
//! on trusted/untrusted, except for the cases marked as deliberate deviations (with the reason).

use std::path::PathBuf;

use super::*;
use crate::pki::testpki::{DAY, KeyKind, Pki, now};

struct Case {
    name: &'static str,
    leaf: PathBuf,
    untrusted: Vec<PathBuf>,
    /// CRL files given to both (openssl: with `-crl_check`, or `-crl_check_all` when
    /// `check_all`).
    crls: Vec<PathBuf>,
    check_all: bool,
    usage: Option<Usage>,
    email: Option<&'static str>,
    /// `None`: must validate; `Some(code)`: must fail with this [`PathError::code`].
    expect: Option<&'static str>,
    /// `Some(reason)` when openssl's verdict is deliberately different from ours.
    deviation: Option<&'static str>,
    /// More `openssl verify` options.
    openssl_args: &'static [&'static str],
}

impl Case {
    fn new(name: &'static str, leaf: PathBuf, untrusted: &[&PathBuf]) -> Self {
        Self {
            name,
            leaf,
            untrusted: untrusted.iter().map(|p| p.to_path_buf()).collect(),
            crls: vec![],
            check_all: false,
            usage: None,
            email: None,
            expect: None,
            deviation: None,
            openssl_args: &[],
        }
    }
    fn openssl_args(mut self, args: &'static [&'static str]) -> Self {
        self.openssl_args = args;
        self
    }
    fn fails(mut self, code: &'static str) -> Self {
        self.expect = Some(code);
        self
    }
    fn usage(mut self, u: Usage) -> Self {
        self.usage = Some(u);
        self
    }
    fn email(mut self, e: &'static str) -> Self {
        self.email = Some(e);
        self
    }
    fn crls(mut self, crls: &[&PathBuf], check_all: bool) -> Self {
        self.crls = crls.iter().map(|p| p.to_path_buf()).collect();
        self.check_all = check_all;
        self
    }
    fn deviation(mut self, why: &'static str) -> Self {
        self.deviation = Some(why);
        self
    }
}

fn leaf_ext_with(email: &str, ku: &str, eku: &str) -> String {
    format!(
        "basicConstraints = CA:FALSE\nkeyUsage = critical, {ku}\nextendedKeyUsage = {eku}\n\
         subjectAltName = email:{email}\nsubjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid\n"
    )
}

#[test]
fn agrees_with_openssl_verify() {
    let started = std::time::Instant::now();
    let pki = Pki::new();
    let root = pki.root("root", "/O=Acme/CN=Acme Root", KeyKind::P256, None);
    // RSA in the middle so both signature families are exercised.
    let inter = pki.issue_ca(
        &root,
        "inter",
        "/O=Acme/CN=Acme Intermediate",
        &pki.ca_ext(None, ""),
        KeyKind::Rsa2048,
    );
    let alice_ext = pki.leaf_ext("alice@acme.test");
    let alice = pki.issue(
        &inter,
        "alice",
        "/O=Acme/CN=Alice",
        &alice_ext,
        KeyKind::P256,
        None,
    );
    let expired = pki.issue(
        &inter,
        "old",
        "/O=Acme/CN=Old Alice",
        &alice_ext,
        KeyKind::P256,
        Some((now() - 400 * DAY, now() - 35 * DAY)),
    );
    let future = pki.issue(
        &inter,
        "future",
        "/O=Acme/CN=Future Alice",
        &alice_ext,
        KeyKind::P256,
        Some((now() + 30 * DAY, now() + 400 * DAY)),
    );
    let revoked = pki.issue(
        &inter,
        "rev",
        "/O=Acme/CN=Revoked Alice",
        &alice_ext,
        KeyKind::P256,
        None,
    );
    pki.revoke(&inter, "rev", Some("keyCompromise"));
    let inter_crl = pki.gencrl(&inter, true);
    let server = pki.issue(
        &inter,
        "server",
        "/O=Acme/CN=Not For Mail",
        &leaf_ext_with("alice@acme.test", "digitalSignature", "serverAuth"),
        KeyKind::P256,
        None,
    );
    let rsa_enc = pki.issue(
        &inter,
        "rsaenc",
        "/O=Acme/CN=Alice Encryption",
        &leaf_ext_with("alice@acme.test", "keyEncipherment", "emailProtection"),
        KeyKind::Rsa2048,
        None,
    );
    let ec_enc = pki.issue(
        &inter,
        "ecenc",
        "/O=Acme/CN=Alice EC Encryption",
        &leaf_ext_with("alice@acme.test", "keyAgreement", "emailProtection"),
        KeyKind::P256,
        None,
    );
    let mallory = pki.root(
        "mallory",
        "/CN=Mallory",
        KeyKind::P256,
        Some(
            "basicConstraints = CA:FALSE\nkeyUsage = critical, digitalSignature\n\
             extendedKeyUsage = emailProtection\nsubjectAltName = email:alice@acme.test\n",
        ),
    );

    // A partner's own root, cross-certified by ours: with and without name constraints.
    let partner = pki.root("partner", "/O=Partner/CN=Partner Root", KeyKind::P256, None);
    let bob = pki.issue(
        &partner,
        "bob",
        "/O=Partner/CN=Bob",
        &pki.leaf_ext("bob@partner.test"),
        KeyKind::P256,
        None,
    );
    let eve = pki.issue(
        &partner,
        "eve",
        "/O=Partner/CN=Eve",
        &pki.leaf_ext("eve@evil.test"),
        KeyKind::P256,
        None,
    );
    // SAN inside the partner's domain, but a legacy emailAddress in the DN outside it.
    let sneaky = pki.issue(
        &partner,
        "sneaky",
        "/O=Partner/CN=Sneaky/emailAddress=eve@evil.test",
        &pki.leaf_ext("bob@partner.test"),
        KeyKind::P256,
        None,
    );
    let cross = pki.cross(&root, &partner, "cross", &pki.ca_ext(None, ""));
    let cross_nc = pki.cross(
        &root,
        &partner,
        "cross-nc",
        &pki.ca_ext(
            None,
            "nameConstraints = critical, permitted;email:partner.test",
        ),
    );

    // The intermediate rolled its key over and signs its CRL with the new one (RFC 5280
    // section 6.3.3 (f); openssl's -extended_crl, which finds the signer by the CRL's
    // authorityKeyIdentifier among the untrusted certificates).
    let rolled = pki.issue_ca(
        &root,
        "inter-rolled",
        "/O=Acme/CN=Acme Intermediate",
        &pki.ca_ext(None, ""),
        KeyKind::P256,
    );
    let before_roll = pki.issue(
        &inter,
        "before-roll",
        "/O=Acme/CN=Issued Before The Rollover",
        &alice_ext,
        KeyKind::P256,
        None,
    );
    pki.revoke(&rolled, "before-roll", Some("superseded"));
    let rolled_crl = pki.gencrl_akid(&rolled);

    // rfc822Name constraints of each form (RFC 5280 section 4.2.1.10), and addresses that are
    // not one mailbox (issue 12).
    let partner_leaf = |name: &str, email: &str| {
        pki.issue(
            &partner,
            name,
            &format!("/O=Partner/CN={name}"),
            &pki.leaf_ext(email),
            KeyKind::P256,
            None,
        )
    };
    let bob2 = partner_leaf("bob2", "bob2@partner.test");
    let bob_eu = partner_leaf("bob-eu", "bob@eu.partner.test");
    let two_at = partner_leaf("two-at", "bob@evil.test@partner.test");
    let no_local = partner_leaf("no-local", "@partner.test");
    let dns_dot = partner_leaf("dns-dot", "bob@partner.test, DNS:mx.partner.test.");
    let nc_cross = |name: &str, nc: &str| {
        pki.cross(
            &root,
            &partner,
            name,
            &pki.ca_ext(None, &format!("nameConstraints = critical, {nc}")),
        )
    };
    let cross_mailbox = nc_cross("cross-mailbox", "permitted;email:bob@partner.test");
    let cross_sub = nc_cross("cross-sub", "permitted;email:.partner.test");
    let cross_excl = nc_cross("cross-excl", "excluded;email:evil.test");
    let cross_dns = nc_cross("cross-dns", "permitted;DNS:partner.test");

    // notBefore in 1965: UTCTime "65..." is 1965 (RFC 5280 section 4.1.2.5.1).
    let old_dates = pki.issue(
        &inter,
        "from1965",
        "/O=Acme/CN=Valid Since 1965",
        &alice_ext,
        KeyKind::P256,
        Some((-157_766_400, now() + 30 * DAY)),
    );

    // pathlen:0 followed by another CA.
    let zero = pki.issue_ca(
        &root,
        "zero",
        "/O=Acme/CN=Pathlen Zero CA",
        &pki.ca_ext(Some(0), ""),
        KeyKind::P256,
    );
    let sub = pki.issue_ca(
        &zero,
        "sub",
        "/O=Acme/CN=Sub CA",
        &pki.ca_ext(None, ""),
        KeyKind::P256,
    );
    let carol = pki.issue(
        &sub,
        "carol",
        "/O=Acme/CN=Carol",
        &pki.leaf_ext("carol@acme.test"),
        KeyKind::P256,
        None,
    );
    let direct = pki.issue(
        &zero,
        "dan",
        "/O=Acme/CN=Dan",
        &pki.leaf_ext("dan@acme.test"),
        KeyKind::P256,
        None,
    );

    // An intermediate revoked by the root's CRL.
    let inter2 = pki.issue_ca(
        &root,
        "inter2",
        "/O=Acme/CN=Acme Intermediate 2",
        &pki.ca_ext(None, ""),
        KeyKind::P256,
    );
    let frank = pki.issue(
        &inter2,
        "frank",
        "/O=Acme/CN=Frank",
        &pki.leaf_ext("frank@acme.test"),
        KeyKind::P256,
        None,
    );
    pki.revoke(&root, "inter2", Some("cACompromise"));
    let root_crl = pki.gencrl(&root, true);
    let inter2_crl = pki.gencrl(&inter2, true);

    // An intermediate nobody presents.
    let hidden = pki.issue_ca(
        &root,
        "hidden",
        "/O=Acme/CN=Hidden CA",
        &pki.ca_ext(None, ""),
        KeyKind::P256,
    );
    let grace = pki.issue(
        &hidden,
        "grace",
        "/O=Acme/CN=Grace",
        &pki.leaf_ext("grace@acme.test"),
        KeyKind::P256,
        None,
    );

    // Structural failures.
    let odd = pki.issue(
        &inter,
        "odd",
        "/O=Acme/CN=Odd Extension",
        &format!("{alice_ext}1.3.6.1.4.1.99999.1 = critical, ASN1:NULL\n"),
        KeyKind::P256,
        None,
    );
    let alice_as_ca = pki.ca_for("alice");
    let child = pki.issue(
        &alice_as_ca,
        "child",
        "/O=Acme/CN=Child Of Alice",
        &pki.leaf_ext("child@acme.test"),
        KeyKind::P256,
        None,
    );
    let nosign = pki.issue_ca(
        &root,
        "nosign",
        "/O=Acme/CN=No CertSign CA",
        "basicConstraints = critical, CA:TRUE\nkeyUsage = critical, cRLSign\n\
         subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
        KeyKind::P256,
    );
    let henry = pki.issue(
        &nosign,
        "henry",
        "/O=Acme/CN=Henry",
        &pki.leaf_ext("henry@acme.test"),
        KeyKind::P256,
        None,
    );
    let tls_ca = pki.issue_ca(
        &root,
        "tlsca",
        "/O=Acme/CN=TLS Only CA",
        &pki.ca_ext(None, "extendedKeyUsage = serverAuth"),
        KeyKind::P256,
    );
    let ivan = pki.issue(
        &tls_ca,
        "ivan",
        "/O=Acme/CN=Ivan",
        &pki.leaf_ext("ivan@acme.test"),
        KeyKind::P256,
        None,
    );
    let sha1 = pki.issue_with(
        &inter,
        "sha1",
        "/O=Acme/CN=Old Hash",
        &alice_ext,
        KeyKind::P256,
        None,
        &["-md", "sha1"],
    );

    // A leaf whose signature was tampered with (last byte of the signature value).
    let tampered = {
        let mut der = pki.cert(&alice).der().to_vec();
        let last = der.len() - 1;
        der[last] ^= 0x01;
        let p = pki.path("tampered.pem");
        std::fs::write(&p, crate::pki::cert::pem_encode("CERTIFICATE", &der)).unwrap();
        p
    };

    let cases = vec![
        Case::new("valid", alice.clone(), &[&inter.cert]).usage(Usage::Signing).email("alice@ACME.test"),
        Case::new("address differs in local-part case", alice.clone(), &[&inter.cert])
            .email("Alice@acme.test")
            .deviation(
                "OpenSSL -verify_email compares local parts case-sensitively (RFC 5280 7.5); \
                 the gateway treats addresses case-insensitively everywhere",
            ),
        Case::new("valid, root also presented", alice.clone(), &[&inter.cert, &root.cert]),
        Case::new("valid, CRL does not list it", alice.clone(), &[&inter.cert])
            .crls(&[&inter_crl], false),
        Case::new("expired", expired, &[&inter.cert]).fails("expired"),
        Case::new("not yet valid", future, &[&inter.cert]).fails("not-yet-valid"),
        Case::new("revoked", revoked, &[&inter.cert])
            .crls(&[&inter_crl], false)
            .fails("revoked"),
        Case::new("revoked intermediate", frank, &[&inter2.cert])
            .crls(&[&root_crl, &inter2_crl], true)
            .fails("revoked"),
        Case::new("revoked by a CRL signed with the CA's next key", before_roll, &[&inter.cert, &rolled.cert])
            .crls(&[&rolled_crl], false)
            .openssl_args(&["-extended_crl"])
            .fails("revoked"),
        Case::new("CRL signed with the CA's next key, leaf not listed", alice.clone(), &[&inter.cert, &rolled.cert])
            .crls(&[&rolled_crl], false)
            .openssl_args(&["-extended_crl"]),
        Case::new("serverAuth only, for signing", server, &[&inter.cert])
            .usage(Usage::Signing)
            .fails("wrong-usage"),
        Case::new("signing certificate, for encryption", alice.clone(), &[&inter.cert])
            .usage(Usage::Encryption)
            .fails("wrong-usage"),
        Case::new("RSA keyEncipherment, for encryption", rsa_enc.clone(), &[&inter.cert])
            .usage(Usage::Encryption),
        Case::new("RSA keyEncipherment, for signing", rsa_enc, &[&inter.cert])
            .usage(Usage::Signing)
            .fails("wrong-usage"),
        Case::new("EC keyAgreement, for encryption", ec_enc, &[&inter.cert])
            .usage(Usage::Encryption)
            .deviation(
                "OpenSSL's smimeencrypt purpose demands keyEncipherment even for EC keys; \
                 RFC 8550 section 4.4.2 / RFC 5753 use keyAgreement for ECDH",
            ),
        Case::new("wrong address", alice.clone(), &[&inter.cert])
            .email("bob@acme.test")
            .fails("address-mismatch"),
        Case::new("untrusted self-signed", mallory.cert.clone(), &[]).fails("untrusted"),
        Case::new("missing intermediate", grace, &[]).fails("no-issuer"),
        Case::new("tampered signature", tampered, &[&inter.cert]).fails("bad-signature"),
        Case::new("via cross-certificate", bob.clone(), &[&cross]).usage(Usage::Signing),
        Case::new("via cross-certificate, partner root presented first", bob.clone(), &[&partner.cert, &cross])
            .deviation(
                "OpenSSL takes the self-signed partner root from -untrusted as the issuer and \
                 does not backtrack to the cross-certificate; we try every candidate",
            ),
        Case::new("via cross-certificate, partner root presented last", bob.clone(), &[&cross, &partner.cert]),
        Case::new("foreign root alone is not trusted", bob.clone(), &[&partner.cert]).fails("untrusted"),
        Case::new("constrained cross-certificate, permitted", bob.clone(), &[&cross_nc]),
        Case::new("constrained cross-certificate, other domain", eve.clone(), &[&cross_nc])
            .fails("name-constraints"),
        Case::new("constrained cross-certificate, emailAddress in DN", sneaky, &[&cross_nc])
            .fails("name-constraints"),
        Case::new("unconstrained cross-certificate, other domain", eve.clone(), &[&cross]),
        Case::new("mailbox constraint, that mailbox", bob.clone(), &[&cross_mailbox]),
        Case::new("mailbox constraint, another mailbox at its host", bob2, &[&cross_mailbox])
            .fails("name-constraints"),
        Case::new("domain constraint, a host below it", bob_eu.clone(), &[&cross_sub]),
        Case::new("domain constraint, the domain itself", bob.clone(), &[&cross_sub])
            .fails("name-constraints"),
        Case::new("host constraint, a host below it", bob_eu, &[&cross_nc]).fails("name-constraints"),
        Case::new("excluded host, another host", bob.clone(), &[&cross_excl]),
        Case::new("excluded host, inside", eve, &[&cross_excl]).fails("name-constraints"),
        Case::new("two @, permitted host after the last", two_at.clone(), &[&cross_nc])
            .fails("name-constraints")
            .deviation(
                "OpenSSL takes the host after the last @; an rfc822Name with two @ is not a \
                 mailbox (RFC 5280 4.2.1.6) and satisfies no constraint",
            ),
        Case::new("two @, excluded host before the last", two_at, &[&cross_excl])
            .fails("name-constraints")
            .deviation(
                "OpenSSL finds the name outside the excluded subtree; a name that is not a \
                 mailbox cannot be shown to be outside one, so it fails",
            ),
        Case::new("empty local part, permitted host", no_local, &[&cross_nc])
            .fails("name-constraints")
            .deviation("OpenSSL compares the host only; an empty local part is not a mailbox"),
        Case::new("dNSName with a trailing dot, DNS constraint", dns_dot, &[&cross_dns])
            .fails("name-constraints"),
        Case::new("notBefore in 1965", old_dates, &[&inter.cert]).usage(Usage::Signing),
        Case::new("pathlen:0 then another CA", carol, &[&zero.cert, &sub.cert]).fails("pathlen"),
        Case::new("pathlen:0 issuing a leaf", direct, &[&zero.cert]),
        Case::new("unknown critical extension", odd, &[&inter.cert]).fails("malformed"),
        Case::new("issued by an end-entity certificate", child, &[&alice, &inter.cert]).fails("not-ca"),
        Case::new("CA without keyCertSign", henry, &[&nosign.cert]).fails("not-ca"),
        Case::new("CA restricted to serverAuth, for signing", ivan.clone(), &[&tls_ca.cert])
            .usage(Usage::Signing)
            .fails("wrong-usage"),
        Case::new("CA restricted to serverAuth, no purpose asked", ivan, &[&tls_ca.cert]),
        Case::new("SHA-1 signed certificate", sha1, &[&inter.cert])
            .fails("unsupported-algorithm")
            .deviation("OpenSSL 3.0 at its default security level still accepts SHA-1 certificate signatures"),
    ];

    let ctx_for = |case: &Case| TrustContext {
        anchors: vec![TrustAnchor {
            cert: pki.cert(&root.cert),
            kind: AnchorKind::OwnRoot,
            label: "acme-root".into(),
        }],
        intermediates: vec![],
        crls: case
            .crls
            .iter()
            .map(|p| Crl::read_file(p).unwrap())
            .collect(),
        internal_domains: Vec::new(),
        verified_crls: Default::default(),
    };

    let mut problems = Vec::new();
    for case in &cases {
        let mut args: Vec<String> = Vec::new();
        if !case.crls.is_empty() {
            let refs: Vec<&std::path::Path> = case.crls.iter().map(PathBuf::as_path).collect();
            let bundle = pki.bundle(&format!("crls-{}.pem", problems.len() + args.len()), &refs);
            args.push(
                if case.check_all {
                    "-crl_check_all"
                } else {
                    "-crl_check"
                }
                .into(),
            );
            args.push("-CRLfile".into());
            args.push(bundle.display().to_string());
        }
        match case.usage {
            Some(Usage::Signing) => args.extend(["-purpose".into(), "smimesign".into()]),
            Some(Usage::Encryption) => args.extend(["-purpose".into(), "smimeencrypt".into()]),
            None => {}
        }
        if let Some(e) = case.email {
            args.extend(["-verify_email".into(), e.to_string()]);
        }
        args.extend(case.openssl_args.iter().map(|a| a.to_string()));
        let untrusted: Vec<&std::path::Path> =
            case.untrusted.iter().map(PathBuf::as_path).collect();
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (openssl_ok, openssl_out) = pki.verify(&root.cert, &untrusted, &case.leaf, &arg_refs);

        let leaf = pki.cert(&case.leaf);
        let presented: Vec<Cert> = case.untrusted.iter().map(|p| pki.cert(p)).collect();
        let ctx = ctx_for(case);
        let ours = validate(
            &ctx,
            &Query {
                leaf: &leaf,
                untrusted: &presented,
                at: now(),
                email: case.email,
                usage: case.usage,
            },
        );
        let ours_code = ours.as_ref().err().map(PathError::code);
        let detail = match &ours {
            Ok(p) => format!("valid via {}", p.anchor_label),
            Err(e) => format!("{} ({e})", e.code()),
        };
        eprintln!(
            "{:55} openssl: {:6} ours: {detail}",
            case.name,
            if openssl_ok { "OK" } else { "NOT OK" }
        );
        if ours_code != case.expect {
            problems.push(format!(
                "{}: expected {:?}, we said {detail}",
                case.name,
                case.expect.unwrap_or("valid")
            ));
        }
        let agree = openssl_ok == ours.is_ok();
        match (agree, case.deviation) {
            (true, None) | (false, Some(_)) => {}
            (false, None) => problems.push(format!(
                "{}: openssl says {}, we say {detail}\nopenssl: {}",
                case.name,
                if openssl_ok { "OK" } else { "NOT OK" },
                openssl_out.trim()
            )),
            (true, Some(why)) => problems.push(format!(
                "{}: expected a known deviation from openssl ({why}) but both agree",
                case.name
            )),
        }
        // The messages must name the certificate for an administrator.
        if let Err(e) = &ours {
            let text = e.to_string();
            assert!(!text.contains('\n'), "{text}");
        }
    }
    assert!(
        problems.is_empty(),
        "disagreements with openssl verify:\n{}",
        problems.join("\n")
    );
    assert!(
        started.elapsed().as_secs() < 60,
        "took {:?}",
        started.elapsed()
    );
}
