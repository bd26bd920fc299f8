use super::*;
use der::asn1::{Ia5String, OctetString};
use std::str::FromStr;

fn email(s: &str) -> GeneralName {
    GeneralName::Rfc822Name(Ia5String::new(s).unwrap())
}
fn dns(s: &str) -> GeneralName {
    GeneralName::DnsName(Ia5String::new(s).unwrap())
}
fn subtree(base: GeneralName) -> GeneralSubtree {
    GeneralSubtree {
        base,
        minimum: 0,
        maximum: None,
    }
}
fn nc(permitted: Vec<GeneralName>, excluded: Vec<GeneralName>) -> NameConstraints {
    let wrap = |v: Vec<GeneralName>| {
        (!v.is_empty()).then(|| v.into_iter().map(subtree).collect::<Vec<_>>())
    };
    NameConstraints {
        permitted_subtrees: wrap(permitted),
        excluded_subtrees: wrap(excluded),
    }
}
fn mail(s: &str) -> CertName {
    CertName::Email(s.into())
}

#[test]
fn rfc822_mailbox_constraint_is_exact() {
    assert!(email_matches("alice@acme.test", "alice@acme.test"));
    assert!(email_matches("alice@acme.test", "ALICE@Acme.Test"));
    assert!(!email_matches("alice@acme.test", "bob@acme.test"));
    assert!(!email_matches("alice@acme.test", "alice@sub.acme.test"));
}

#[test]
fn rfc822_host_constraint_is_that_host_only() {
    assert!(email_matches("acme.test", "bob@acme.test"));
    assert!(email_matches("acme.test", "bob@ACME.TEST"));
    assert!(!email_matches("acme.test", "bob@mail.acme.test"));
    assert!(!email_matches("acme.test", "bob@notacme.test"));
    // The last @ separates the host, even with a quoted local part.
    assert!(email_matches("acme.test", "\"x@evil.test\"@acme.test"));
    assert!(!email_matches("evil.test", "\"x@evil.test\"@acme.test"));
}

#[test]
fn rfc822_domain_constraint_is_subdomains_only() {
    assert!(email_matches(".acme.test", "bob@mail.acme.test"));
    assert!(email_matches(".acme.test", "bob@a.b.ACME.test"));
    assert!(!email_matches(".acme.test", "bob@acme.test"));
    assert!(!email_matches(".acme.test", "bob@evilacme.test"));
}

#[test]
fn not_an_address_matches_nothing() {
    assert!(!email_matches("acme.test", "acme.test"));
    assert!(!email_matches(".acme.test", "x"));
}

#[test]
fn permitted_rfc822_rejects_other_addresses() {
    let c = nc(vec![email("partner.test"), email(".partner.test")], vec![]);
    check_names(&c, &[mail("bob@partner.test")]).unwrap();
    check_names(&c, &[mail("bob@eu.partner.test")]).unwrap();
    let err = check_names(&c, &[mail("bob@partner.test"), mail("eve@evil.test")]).unwrap_err();
    assert!(
        matches!(&err, Violation::NotPermitted { name, form: "rfc822Name", .. }
        if name == "email:eve@evil.test"),
        "{err}"
    );
    assert!(err.to_string().contains("email:partner.test"));
}

#[test]
fn permitted_rfc822_ignores_other_forms_of_name() {
    // A DNS name is not governed by rfc822Name subtrees (RFC 5280 section 4.2.1.10).
    let c = nc(vec![email("partner.test")], vec![]);
    check_names(&c, &[CertName::Dns("www.evil.test".into())]).unwrap();
    check_names(&c, &[]).unwrap();
}

#[test]
fn excluded_rfc822_wins_over_permitted() {
    let c = nc(vec![email("partner.test")], vec![email("ceo@partner.test")]);
    check_names(&c, &[mail("bob@partner.test")]).unwrap();
    let err = check_names(&c, &[mail("CEO@partner.test")]).unwrap_err();
    assert!(matches!(err, Violation::Excluded { .. }));
    let only_excluded = nc(vec![], vec![email(".evil.test")]);
    check_names(&only_excluded, &[mail("x@evil.test")]).unwrap();
    assert!(check_names(&only_excluded, &[mail("x@mx.evil.test")]).is_err());
}

#[test]
fn dns_constraints() {
    assert!(dns_matches("acme.test", "acme.test"));
    assert!(dns_matches("acme.test", "mx.ACME.test"));
    assert!(!dns_matches("acme.test", "evilacme.test"));
    assert!(dns_matches(".acme.test", "mx.acme.test"));
    assert!(!dns_matches(".acme.test", "acme.test"));
    let c = nc(vec![dns("acme.test")], vec![]);
    check_names(
        &c,
        &[CertName::Dns("mx.acme.test".into()), mail("x@evil.test")],
    )
    .unwrap();
    assert!(check_names(&c, &[CertName::Dns("evil.test".into())]).is_err());
}

/// Issue 12: an address that is not one mailbox (two `@`, an empty local part or domain,
/// an empty label) was matched by its last `@`; it now never satisfies a constraint, and
/// under an excluded subtree it fails instead of passing as "outside".
#[test]
fn malformed_addresses_satisfy_no_rfc822_constraint() {
    for bad in [
        "a@b@acme.test",
        "@acme.test",
        "bob@",
        "bob@acme..test",
        "bob@.acme.test",
        "bob@acme.test.",
        ".bob@acme.test",
        "bo..b@acme.test",
        "bob@[192.0.2.1]",
        "bob@acme_x.test",
        "\"unterminated@acme.test",
    ] {
        for c in ["acme.test", ".acme.test", "bob@acme.test", "b@acme.test"] {
            assert!(!email_matches(c, bad), "{c} matched {bad}");
        }
        let permitted = nc(vec![email("acme.test"), email(".acme.test")], vec![]);
        assert!(
            matches!(
                check_names(&permitted, &[mail(bad)]),
                Err(Violation::MalformedName {
                    form: "rfc822Name",
                    ..
                })
            ),
            "{bad} under permitted"
        );
        let excluded = nc(vec![], vec![email("evil.test")]);
        let err = check_names(&excluded, &[mail(bad)]).unwrap_err();
        assert!(
            matches!(err, Violation::MalformedName { .. }),
            "{bad} under excluded: {err}"
        );
    }
    // A quoted local part may hold an @: still one mailbox, at the host after the quote.
    assert!(email_matches("acme.test", "\"x@y\"@acme.test"));
    assert!(parse_mailbox("\"a b\"@acme.test").is_some());
    assert_eq!(
        parse_mailbox("a.b+c@mx.acme.test"),
        Some(("a.b+c", "mx.acme.test"))
    );
}

#[test]
fn rfc822_constraint_forms_mean_what_rfc_5280_says() {
    let mailbox = nc(vec![email("alice@x.test")], vec![]);
    check_names(&mailbox, &[mail("alice@x.test")]).unwrap();
    for other in ["bob@x.test", "alice@sub.x.test", "alice@y.test"] {
        assert!(check_names(&mailbox, &[mail(other)]).is_err(), "{other}");
    }
    let host = nc(vec![email("x.test")], vec![]);
    check_names(&host, &[mail("anyone@x.test")]).unwrap();
    assert!(check_names(&host, &[mail("anyone@sub.x.test")]).is_err());
    let domain = nc(vec![email(".x.test")], vec![]);
    check_names(&domain, &[mail("anyone@sub.x.test")]).unwrap();
    check_names(&domain, &[mail("anyone@a.b.x.test")]).unwrap();
    assert!(check_names(&domain, &[mail("anyone@x.test")]).is_err());
    assert!(check_names(&domain, &[mail("anyone@notx.test")]).is_err());
    // A malformed constraint is refused rather than guessed at, whichever list holds it.
    for bad in ["a@b@x.test", "x..test", ".", "", "@x.test"] {
        let c = nc(vec![email(bad)], vec![]);
        assert!(
            matches!(
                check_names(&c, &[mail("alice@x.test")]),
                Err(Violation::BadSubtree { .. })
            ),
            "permitted {bad:?}"
        );
        let c = nc(vec![], vec![email(bad)]);
        assert!(
            check_names(&c, &[mail("alice@x.test")]).is_err(),
            "excluded {bad:?}"
        );
    }
}

#[test]
fn malformed_dns_names_satisfy_no_constraint() {
    for bad in [
        "",
        "mx..acme.test",
        "mx.acme.test.",
        ".acme.test",
        "-mx.acme.test",
        "mx-.acme.test",
        "mx_1.acme.test",
        "mx acme.test",
        "a.*.acme.test",
    ] {
        assert!(!dns_matches("acme.test", bad), "{bad}");
        let permitted = nc(vec![dns("acme.test")], vec![]);
        assert!(
            matches!(
                check_names(&permitted, &[CertName::Dns(bad.into())]),
                Err(Violation::MalformedName {
                    form: "dNSName",
                    ..
                })
            ),
            "{bad:?} under permitted"
        );
        let excluded = nc(vec![], vec![dns("evil.test")]);
        assert!(
            check_names(&excluded, &[CertName::Dns(bad.into())]).is_err(),
            "{bad:?} under excluded"
        );
    }
    assert!(dns_matches("acme.test", "*.acme.test"));
    assert!(dns_matches("", "anything.test"));
    let long_label = format!("{}.acme.test", "a".repeat(64));
    assert!(!dns_matches("acme.test", &long_label));
}

#[test]
fn ip_constraints() {
    assert!(ip_matches(&[10, 0, 0, 0, 255, 0, 0, 0], &[10, 1, 2, 3]));
    assert!(!ip_matches(&[10, 0, 0, 0, 255, 0, 0, 0], &[11, 1, 2, 3]));
    assert!(!ip_matches(&[10, 0, 0, 0, 255, 0, 0, 0], &[0; 16]));
    let c = NameConstraints {
        permitted_subtrees: None,
        excluded_subtrees: Some(vec![subtree(GeneralName::IpAddress(
            OctetString::new(vec![192, 168, 0, 0, 255, 255, 0, 0]).unwrap(),
        ))]),
    };
    let err = check_names(&c, &[CertName::Ip(vec![192, 168, 4, 4])]).unwrap_err();
    assert!(err.to_string().contains("192.168.0.0/255.255.0.0"), "{err}");
}

#[test]
fn directory_name_is_a_prefix_match() {
    let base = Name::from_str("O=Partner,C=DE").unwrap();
    let inside = Name::from_str("CN=Bob,OU=Sales,O=Partner,C=DE").unwrap();
    let outside = Name::from_str("CN=Eve,O=Evil,C=DE").unwrap();
    let case = Name::from_str("CN=Bob,O=PARTNER,C=de").unwrap();
    assert!(dn_matches(&base, &inside));
    assert!(dn_matches(&base, &case));
    assert!(!dn_matches(&base, &outside));
    assert!(!dn_matches(&inside, &base));
    let c = nc(vec![GeneralName::DirectoryName(base)], vec![]);
    check_names(&c, &[CertName::Directory(inside), mail("x@anything.test")]).unwrap();
    assert!(matches!(
        check_names(&c, &[CertName::Directory(outside)]),
        Err(Violation::NotPermitted {
            form: "directoryName",
            ..
        })
    ));
}

#[test]
fn unsupported_forms_fail_closed_only_when_present() {
    let uri = GeneralName::UniformResourceIdentifier(Ia5String::new(".acme.test").unwrap());
    let c = nc(vec![uri.clone()], vec![]);
    // The certificate has no URI: nothing to judge.
    check_names(&c, &[mail("bob@acme.test")]).unwrap();
    let with_uri = [CertName::Other(
        "uniformResourceIdentifier",
        "https://acme.test".into(),
    )];
    assert!(matches!(
        check_names(&c, &with_uri),
        Err(Violation::Unsupported {
            form: "uniformResourceIdentifier",
            ..
        })
    ));
    assert!(check_names(&nc(vec![], vec![uri]), &with_uri).is_err());
    // An internationalised address under rfc822Name constraints cannot be vouched for.
    let c = nc(vec![email("partner.test")], vec![]);
    assert!(check_names(&c, &[CertName::Other("SmtpUTF8Mailbox", "00".into())]).is_err());
}

#[test]
fn minimum_and_maximum_are_refused() {
    let mut c = nc(vec![email("acme.test")], vec![]);
    if let Some(p) = c.permitted_subtrees.as_mut() {
        p[0].maximum = Some(1);
    }
    assert!(matches!(
        check_names(&c, &[mail("a@acme.test")]),
        Err(Violation::BadSubtree { .. })
    ));
}
