//! Trust in the Domino model, judged by `openssl verify`: a foreign CA cross-certified by our
//! root (optionally only for some domains), a foreign root added as an anchor, removal, and a
//! foreign CRL imported into the directory.

mod common;

use std::path::Path;

use common::smtp::{Sink, send};
use common::{Gw, openssl, openssl_ok, sh_ok};

/// A foreign CA made with openssl, and leaves it issues.
fn foreign_ca(d: &Path) {
    openssl_ok(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "f.key",
            "-out",
            "f.pem",
            "-days",
            "365",
            "-subj",
            "/O=Partner/CN=Partner Root",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    std::fs::write(
        d.join("ca.cnf"),
        "[ca]\ndefault_ca = f\n[f]\ndatabase = index.txt\nnew_certs_dir = .\ncertificate = f.pem\nprivate_key = f.key\n\
         serial = serial.txt\ndefault_md = sha256\ndefault_days = 30\ndefault_crl_days = 7\npolicy = any\n\
         [any]\ncommonName = supplied\n",
    )
    .unwrap();
    std::fs::write(d.join("index.txt"), "").unwrap();
    std::fs::write(d.join("serial.txt"), "1000\n").unwrap();
}

fn foreign_leaf(d: &Path, name: &str, email: &str) -> String {
    issue(
        d,
        "ca.cnf",
        name,
        &format!("/CN={name}"),
        &format!(
            "keyUsage=critical,digitalSignature,nonRepudiation\nextendedKeyUsage=emailProtection\nsubjectAltName=email:{email}\nbasicConstraints=CA:FALSE\n"
        ),
    )
}

fn check(gw: &Gw, cert: &str, email: &str) -> (i32, String) {
    let o = gw.run(&[
        "trust", "check", cert, "--usage", "signing", "--email", email, "--json",
    ]);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

fn openssl_verdict(d: &Path, ca: &Path, untrusted: Option<&str>, cert: &str) -> bool {
    let mut args = vec![
        "verify",
        "-CAfile",
        ca.to_str().unwrap(),
        "-purpose",
        "smimesign",
    ];
    if let Some(u) = untrusted {
        args.extend(["-untrusted", u]);
    }
    args.push(cert);
    openssl(d, &args).0
}

#[test]
fn cross_certificate_with_domain_constraint_agrees_with_openssl() {
    let gw = Gw::new();
    let ca = gw.init_ca();
    let d = gw.dir.path();
    foreign_ca(d);
    let bob = foreign_leaf(d, "bob", "bob@partner.test");
    let eve = foreign_leaf(d, "eve", "eve@evil.test");

    // Before: nobody trusts the partner.
    let (code, out) = check(&gw, &bob, "bob@partner.test");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("\"code\""), "{out}");
    assert!(!openssl_verdict(d, &ca, None, &bob));

    let out = gw.ok(&[
        "trust",
        "cross-certify",
        d.join("f.pem").to_str().unwrap(),
        "--permit-domain",
        "partner.test",
        "--out",
        d.join("cross.pem").to_str().unwrap(),
    ]);
    assert!(out.contains("partner.test"), "{out}");
    let cross = d.join("cross.pem");
    let text = openssl_ok(d, &["x509", "-in", "cross.pem", "-noout", "-text"]);
    assert!(
        text.contains("Name Constraints") && text.contains("email:partner.test"),
        "{text}"
    );

    // bob@partner.test: trusted through our root, by us and by openssl.
    let (code, out) = check(&gw, &bob, "bob@partner.test");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("own CA"), "{out}");
    assert!(openssl_verdict(d, &ca, Some(cross.to_str().unwrap()), &bob));
    // eve@evil.test, same issuer, outside the permitted domain: both refuse.
    let (code, out) = check(&gw, &eve, "eve@evil.test");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("name-constraints"), "{out}");
    assert!(!openssl_verdict(
        d,
        &ca,
        Some(cross.to_str().unwrap()),
        &eve
    ));
    // Address mismatch is its own verdict.
    let (code, out) = check(&gw, &bob, "alice@partner.test");
    assert_eq!(code, 1);
    assert!(out.contains("address-mismatch"), "{out}");

    // Listing and removal.
    let list: serde_json::Value =
        serde_json::from_str(&gw.ok(&["trust", "list", "--json"])).unwrap();
    let id = list[0]["id"].as_str().unwrap().to_string();
    assert_eq!(list[0]["kind"], "cross-certified");
    assert_eq!(list[0]["permitted_domains"][0], "partner.test");
    let err = gw.fails(
        &["trust", "cross-certify", d.join("f.pem").to_str().unwrap()],
        2,
    );
    assert!(err.contains("already trusted"), "{err}");
    gw.ok(&["trust", "remove", &id]);
    assert_eq!(check(&gw, &bob, "bob@partner.test").0, 1);
    // The removed cross-certificate is on our CRL now.
    gw.ok(&["ca", "crl", "--out", d.join("own.crl").to_str().unwrap()]);
    let serial = openssl_ok(d, &["x509", "-in", "cross.pem", "-noout", "-serial"]);
    let serial = serial.trim().trim_start_matches("serial=").to_string();
    let crl = openssl_ok(d, &["crl", "-in", "own.crl", "-noout", "-text"]);
    assert!(
        crl.to_uppercase().contains(&serial.to_uppercase()),
        "{serial} in {crl}"
    );
}

#[test]
fn added_root_and_imported_crl() {
    let gw = Gw::new();
    gw.init_ca();
    let d = gw.dir.path();
    foreign_ca(d);
    let bob = foreign_leaf(d, "bob", "bob@partner.test");
    let eve = foreign_leaf(d, "eve", "eve@evil.test");
    gw.ok(&["trust", "add-root", d.join("f.pem").to_str().unwrap()]);
    let (code, out) = check(&gw, &bob, "bob@partner.test");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("trusted root"), "{out}");
    assert_eq!(
        check(&gw, &eve, "eve@evil.test").0,
        0,
        "a plain root has no domain limit"
    );

    // The partner revokes bob and publishes a CRL; we import it.
    openssl_ok(
        d,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-revoke",
            "bob.pem",
            "-crl_reason",
            "keyCompromise",
        ],
    );
    openssl_ok(
        d,
        &[
            "ca", "-batch", "-config", "ca.cnf", "-gencrl", "-out", "f.crl",
        ],
    );
    gw.ok(&["trust", "import-crl", d.join("f.crl").to_str().unwrap()]);
    let (code, out) = check(&gw, &bob, "bob@partner.test");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("revoked"), "{out}");
    assert_eq!(check(&gw, &eve, "eve@evil.test").0, 0);
    let (ok, msg) = openssl(
        d,
        &[
            "verify",
            "-crl_check",
            "-CAfile",
            "f.pem",
            "-CRLfile",
            "f.crl",
            "-purpose",
            "smimesign",
            &bob,
        ],
    );
    assert!(!ok && msg.contains("revoked"), "{msg}");

    // A CRL from an unknown CA is refused.
    sh_ok(
        d,
        "mkdir other && cd other && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout o.key -out o.pem -days 5 -subj /CN=Other -addext basicConstraints=critical,CA:TRUE",
    );
    std::fs::write(
        d.join("other/ca.cnf"),
        "[ca]\ndefault_ca = f\n[f]\ndatabase = index.txt\nnew_certs_dir = .\ncertificate = o.pem\nprivate_key = o.key\nserial = s.txt\ndefault_md = sha256\ndefault_crl_days = 7\n",
    )
    .unwrap();
    std::fs::write(d.join("other/index.txt"), "").unwrap();
    openssl_ok(
        &d.join("other"),
        &[
            "ca", "-batch", "-config", "ca.cnf", "-gencrl", "-out", "o.crl",
        ],
    );
    let err = gw.fails(
        &[
            "trust",
            "import-crl",
            d.join("other/o.crl").to_str().unwrap(),
        ],
        2,
    );
    assert!(
        err.contains("o.crl") && err.contains("CN=Other") && err.contains("--issuer"),
        "{err}"
    );

    // A leaf is not a root.
    let err = gw.fails(&["trust", "add-root", &bob], 2);
    assert!(err.contains("not a CA certificate"), "{err}");
}

#[test]
fn trust_check_time_and_input_errors() {
    let gw = Gw::new();
    gw.init_ca();
    gw.ok(&[
        "user",
        "enroll",
        "al@acme.test",
        "--name",
        "Al",
        "--key",
        "p256",
        "--days",
        "10",
    ]);
    let cert = gw.cert_file("al@acme.test", "signing");
    let c = cert.to_str().unwrap();
    gw.ok(&["trust", "check", c, "--usage", "signing"]);
    let o = gw.run(&["trust", "check", c, "--at", "2000-01-01T00:00:00Z"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("not yet valid")
            || String::from_utf8_lossy(&o.stdout).contains("not-yet-valid")
    );
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(40);
    let later = later
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let o = gw.run(&["trust", "check", c, "--at", &later]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("expired"));
    let o = gw.run(&["trust", "check", c, "--usage", "encryption"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a signing certificate is not for encryption"
    );
    let err = gw.fails(&["trust", "check", c, "--at", "yesterday"], 2);
    assert!(err.contains("RFC 3339"), "{err}");
    let err = gw.fails(&["trust", "check", "/nonexistent.pem"], 2);
    assert!(err.contains("/nonexistent.pem"), "{err}");
}

/// A self-signed root `<name>.pem`/`<name>.key` made by OpenSSL in `d`.
fn openssl_root(d: &Path, name: &str) -> std::path::PathBuf {
    let subj = format!("/O=Bundle Test/CN={name}");
    #[rustfmt::skip]
    openssl_ok(d, &[
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", &format!("{name}.key"), "-out", &format!("{name}.pem"), "-days", "30",
        "-subj", &subj, "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    d.join(format!("{name}.pem"))
}

/// A signing certificate `<name>.pem` for `email`, issued by the root `<root>.pem`.
fn leaf_under(d: &Path, root: &str, name: &str, email: &str) -> String {
    std::fs::write(
        d.join(format!("{name}.ext")),
        format!(
            "keyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\nsubjectAltName=email:{email}\n"
        ),
    )
    .unwrap();
    #[rustfmt::skip]
    let steps: [&[&str]; 2] = [
        &["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
          "-keyout", &format!("{name}.key"), "-out", &format!("{name}.csr"), "-subj", &format!("/CN={name}")],
        &["x509", "-req", "-in", &format!("{name}.csr"), "-CA", &format!("{root}.pem"),
          "-CAkey", &format!("{root}.key"), "-CAcreateserial", "-days", "20",
          "-extfile", &format!("{name}.ext"), "-out", &format!("{name}.pem")],
    ];
    for args in steps {
        openssl_ok(d, args);
    }
    d.join(format!("{name}.pem")).to_str().unwrap().to_string()
}

/// The Mozilla roots Debian's ca-certificates ships (real input), when installed.
fn mozilla_pems() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir("/usr/share/ca-certificates/mozilla")
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "crt"));
    v.sort();
    v
}

fn concat(out: &Path, files: &[std::path::PathBuf]) {
    let text: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap() + "\n")
        .collect();
    std::fs::write(out, text).unwrap();
}

fn json(gw: &Gw, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&gw.ok(args)).unwrap()
}

fn reason(out: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(out).unwrap();
    format!("{} {}", v["code"], v["reason"])
}

#[test]
fn bundle_import_update_and_internal_addresses() {
    let gw = Gw::new();
    gw.init_ca();
    let d = gw.dir.path();
    let (one, two, three) = (
        openssl_root(d, "Root One"),
        openssl_root(d, "Root Two"),
        openssl_root(d, "Root Three"),
    );
    let bob = leaf_under(d, "Root One", "bob", "bob@partner.test");
    let mallory = leaf_under(d, "Root One", "mallory", "mallory@acme.test");
    let carol = leaf_under(d, "Root Three", "carol", "carol@elsewhere.test");

    // Real roots (when ca-certificates is installed) plus ours; some real ones have expired.
    let real = mozilla_pems();
    let expired = real
        .iter()
        .filter(|p| {
            !openssl(
                d,
                &[
                    "x509",
                    "-in",
                    p.to_str().unwrap(),
                    "-noout",
                    "-checkend",
                    "0",
                ],
            )
            .0
        })
        .count();
    let mut files = real.clone();
    files.extend([one.clone(), two.clone()]);
    let bundle = d.join("roots.pem");
    concat(&bundle, &files);
    let b = bundle.to_str().unwrap();

    // A leaf in a bundle refuses the whole file, naming file, line and certificate.
    let before = gw.snapshot();
    let mut with_leaf = files.clone();
    with_leaf.push(d.join("bob.pem"));
    concat(&d.join("with-leaf.pem"), &with_leaf);
    let err = gw.fails(
        &[
            "trust",
            "import-bundle",
            d.join("with-leaf.pem").to_str().unwrap(),
        ],
        2,
    );
    assert!(
        err.contains("with-leaf.pem line ") && err.contains("CN=bob") && err.contains("not a CA"),
        "{err}"
    );
    assert_eq!(gw.snapshot(), before, "a refused bundle changes nothing");

    let r = json(
        &gw,
        &["trust", "import-bundle", b, "--source", "mozilla", "--json"],
    );
    let n = real.len() - expired + 2;
    assert_eq!(r["added"].as_array().unwrap().len(), n, "{r}");
    assert_eq!(r["removed"].as_array().unwrap().len(), 0);
    let skipped = r["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), expired, "{r}");
    assert!(skipped.iter().all(|s| s["kind"] == "expired"), "{r}");

    let list = json(&gw, &["trust", "list", "--json"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), n);
    assert!(
        list.iter()
            .all(|t| t["source"] == "mozilla" && t["kind"] == "bundled")
    );
    let table = gw.ok(&["trust", "list"]);
    assert!(
        table.contains("SOURCE") && table.contains("CN=Root One"),
        "{table}"
    );
    let row = table.lines().find(|l| l.contains("CN=Root Two")).unwrap();
    assert!(row.contains("bundled") && row.ends_with("mozilla"), "{row}");

    // A partner under a bundled root validates for its external address...
    let (code, out) = check(&gw, &bob, "bob@partner.test");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("from bundle mozilla"), "{out}");
    // ...an internal address under it does not, asked about or not.
    let (code, out) = check(&gw, &mallory, "mallory@acme.test");
    assert_eq!(code, 1, "{out}");
    let why = reason(&out);
    assert!(
        why.contains("internal-address")
            && why.contains("mallory@acme.test, an internal address")
            && why.contains("--internal-too"),
        "{why}"
    );
    let o = gw.run(&["trust", "check", &mallory, "--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("internal-address"));
    assert_eq!(check(&gw, &carol, "carol@elsewhere.test").0, 1);

    // The next release drops Root Two and adds Root Three: exactly those change.
    let mut files = real.clone();
    files.extend([one.clone(), three.clone()]);
    concat(&bundle, &files);
    let r = json(
        &gw,
        &["trust", "import-bundle", b, "--source", "mozilla", "--json"],
    );
    let subjects = |k: &str| -> Vec<String> {
        r[k].as_array()
            .unwrap()
            .iter()
            .map(|t| t["subject"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(subjects("added"), ["CN=Root Three,O=Bundle Test"]);
    assert_eq!(subjects("removed"), ["CN=Root Two,O=Bundle Test"]);
    assert_eq!(r["kept"], n - 1);
    let audit = gw.ok(&["audit"]);
    let last = audit.lines().last().unwrap();
    assert!(
        last.contains("trust.import-bundle")
            && last.contains(&format!("1 added, 1 removed, {} kept", n - 1)),
        "{last}"
    );
    assert_eq!(audit.matches("trust.import-bundle").count(), 2, "{audit}");
    assert_eq!(check(&gw, &carol, "carol@elsewhere.test").0, 0);
    assert_eq!(
        json(&gw, &["trust", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        n
    );

    // With --internal-too the same roots vouch for internal addresses.
    gw.ok(&[
        "trust",
        "import-bundle",
        b,
        "--source",
        "mozilla",
        "--internal-too",
    ]);
    let (code, out) = check(&gw, &mallory, "mallory@acme.test");
    assert_eq!(code, 0, "{out}");
}

#[test]
fn certdata_import_takes_email_roots_only() {
    use smimegw::pki::bundle::{CertdataEntry, write_certdata};
    use smimegw::pki::cert::read_certs_file;

    let gw = Gw::new();
    gw.init_ca();
    let d = gw.dir.path();
    let names = ["Mail Root", "Web Root", "Gone Root"];
    let certs: Vec<_> = names
        .iter()
        .map(|n| read_certs_file(&openssl_root(d, n)).unwrap().remove(0))
        .collect();
    let trust = [
        ("CKT_NSS_MUST_VERIFY_TRUST", "CKT_NSS_TRUSTED_DELEGATOR"),
        ("CKT_NSS_TRUSTED_DELEGATOR", "CKT_NSS_MUST_VERIFY_TRUST"),
        ("CKT_NSS_NOT_TRUSTED", "CKT_NSS_NOT_TRUSTED"),
    ];
    let entries: Vec<_> = (0..3)
        .map(|i| CertdataEntry {
            label: names[i],
            cert: &certs[i],
            server_auth: trust[i].0,
            email_protection: trust[i].1,
        })
        .collect();
    let text = write_certdata(&entries);
    std::fs::write(d.join("certdata.txt"), &text).unwrap();
    let alice = leaf_under(d, "Mail Root", "alice", "alice@partner.test");
    let walt = leaf_under(d, "Web Root", "walt", "walt@partner.test");
    let gina = leaf_under(d, "Gone Root", "gina", "gina@partner.test");

    let out = gw.ok(&[
        "trust",
        "import-bundle",
        d.join("certdata.txt").to_str().unwrap(),
    ]);
    assert!(
        out.contains("certdata.txt as source certdata.txt: 1 added"),
        "{out}"
    );
    assert!(out.contains("Web Root: not trusted for e-mail"), "{out}");
    assert!(out.contains("Gone Root: distrusted"), "{out}");
    let list = json(&gw, &["trust", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["source"], "certdata.txt");
    assert_eq!(check(&gw, &alice, "alice@partner.test").0, 0);
    assert_eq!(check(&gw, &walt, "walt@partner.test").0, 1);
    assert_eq!(check(&gw, &gina, "gina@partner.test").0, 1);

    // A PEM bundle under another source: a second copy, a root already trusted from
    // certdata.txt, and an expired root (made with `openssl ca -selfsign`) are skipped, counted.
    std::fs::write(
        d.join("old.cnf"),
        "[ca]\ndefault_ca = f\n[f]\ndatabase = old-index.txt\nnew_certs_dir = .\nserial = old-serial.txt\n\
         default_md = sha256\npolicy = any\n[any]\ncommonName = supplied\n",
    )
    .unwrap();
    std::fs::write(d.join("old-index.txt"), "").unwrap();
    std::fs::write(d.join("old-serial.txt"), "1000\n").unwrap();
    std::fs::write(
        d.join("old.ext"),
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n",
    )
    .unwrap();
    #[rustfmt::skip]
    let steps: [&[&str]; 2] = [
        &["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
          "-keyout", "old.key", "-out", "old.csr", "-subj", "/CN=Old Root"],
        &["ca", "-batch", "-config", "old.cnf", "-selfsign", "-keyfile", "old.key", "-in",
          "old.csr", "-startdate", "20200101000000Z", "-enddate", "20210101000000Z",
          "-extfile", "old.ext", "-notext", "-out", "old.pem"],
    ];
    for args in steps {
        openssl_ok(d, args);
    }
    let web = d.join("Web Root.pem");
    let mail = d.join("Mail Root.pem");
    concat(
        &d.join("mixed.pem"),
        &[web.clone(), web, mail, d.join("old.pem")],
    );
    let r = json(
        &gw,
        &[
            "trust",
            "import-bundle",
            d.join("mixed.pem").to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(r["source"], "mixed.pem");
    assert_eq!(r["added"].as_array().unwrap().len(), 1, "{r}");
    let kinds: Vec<_> = r["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["duplicate", "already-trusted", "expired"], "{r}");
    assert!(r.to_string().contains("from bundle certdata.txt"), "{r}");
    assert_eq!(check(&gw, &walt, "walt@partner.test").0, 0);

    // A broken octal escape: the error names the file and the line.
    let at = text.find("CKA_VALUE MULTILINE_OCTAL").unwrap();
    let line = text[..at].lines().count() + 2;
    let broken = format!("{}{}", &text[..at], text[at..].replacen("\\0", "\\9", 1));
    std::fs::write(d.join("broken.txt"), broken).unwrap();
    let err = gw.fails(
        &[
            "trust",
            "import-bundle",
            d.join("broken.txt").to_str().unwrap(),
        ],
        2,
    );
    assert!(err.contains(&format!("broken.txt line {line}:")), "{err}");
}

/// Inbound through `serve`: a message from an internal address signed under a bundled root is
/// not `pass` (anyone a public CA certified could otherwise speak as our users), while a partner
/// under the same root is.
#[test]
fn gateway_does_not_pass_an_internal_sender_under_a_bundled_root() {
    let sink = Sink::start();
    let (gw, port) = Gw::inbound(sink.addr, "");
    let d = gw.dir.path();
    openssl_root(d, "Public Root");
    leaf_under(d, "Public Root", "bob", "bob@partner.test");
    leaf_under(d, "Public Root", "mallory", "mallory@acme.test");
    gw.ok(&[
        "trust",
        "import-bundle",
        d.join("Public Root.pem").to_str().unwrap(),
        "--source",
        "public",
    ]);
    let serve = gw.serve_on(port);
    std::fs::write(
        d.join("body.txt"),
        "Content-Type: text/plain\r\n\r\nHello.\r\n",
    )
    .unwrap();
    let mut delivered = Vec::new();
    for (name, from) in [
        ("bob", "bob@partner.test"),
        ("mallory", "mallory@acme.test"),
    ] {
        let out = format!("{name}.eml");
        #[rustfmt::skip]
        openssl_ok(d, &[
            "cms", "-sign", "-in", "body.txt", "-signer", &format!("{name}.pem"), "-inkey",
            &format!("{name}.key"), "-from", from, "-to", "alice@acme.test", "-subject", name,
            "-out", &out,
        ]);
        let msg = std::fs::read(d.join(&out)).unwrap();
        let (code, text) = send(serve.addr, from, &["alice@acme.test"], &msg);
        assert_eq!(code, 250, "{text}");
        let got = sink.wait_for(delivered.len() + 1);
        let text = String::from_utf8_lossy(&got[delivered.len()].data).into_owned();
        delivered.push(text.replace("\r\n ", " ").replace("\r\n\t", " "));
    }
    assert!(delivered[0].contains("smime=pass"), "{}", delivered[0]);
    assert!(
        delivered[1].contains("smime=fail (untrusted)"),
        "{}",
        delivered[1]
    );
    assert!(
        delivered[1].contains("mallory@acme.test, an internal address"),
        "{}",
        delivered[1]
    );
    drop(serve);
}

/// A certificate signed with the openssl `ca` configuration `cnf` (in `d`), with extensions
/// `ext`; returns the path of `<name>.pem`.
fn issue(d: &Path, cnf: &str, name: &str, subj: &str, ext: &str) -> String {
    openssl_ok(
        d,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            subj,
        ],
    );
    std::fs::write(d.join(format!("{name}.ext")), ext).unwrap();
    openssl_ok(
        d,
        &[
            "ca",
            "-batch",
            "-config",
            cnf,
            "-in",
            &format!("{name}.csr"),
            "-out",
            &format!("{name}.pem"),
            "-extfile",
            &format!("{name}.ext"),
            "-notext",
        ],
    );
    d.join(format!("{name}.pem")).to_str().unwrap().to_string()
}

const CA_EXT: &str = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n\
                      subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n";

fn leaf_ext(email: &str, eku: &str) -> String {
    format!(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n\
         extendedKeyUsage={eku}\nsubjectAltName=email:{email}\n\
         subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
}

/// The partner's root (cross-certified by ours), an issuing CA below it run from `i.cnf` with
/// numbered CRLs, and the gateway that cross-certified the root.
fn partner_with_intermediate() -> (Gw, String) {
    let gw = Gw::new();
    gw.init_ca();
    let d = gw.dir.path();
    foreign_ca(d);
    let inter = issue(d, "ca.cnf", "i", "/O=Partner/CN=Partner Issuing CA", CA_EXT);
    std::fs::create_dir_all(d.join("i.db")).unwrap();
    std::fs::write(d.join("i.db/index.txt"), "").unwrap();
    std::fs::write(d.join("i.db/serial"), "2000\n").unwrap();
    std::fs::write(d.join("i.db/crlnumber"), "01\n").unwrap();
    std::fs::write(
        d.join("i.cnf"),
        "[ca]\ndefault_ca = i\n[i]\ndatabase = i.db/index.txt\nnew_certs_dir = i.db\n\
         certificate = i.pem\nprivate_key = i.key\nserial = i.db/serial\n\
         crlnumber = i.db/crlnumber\ndefault_md = sha256\ndefault_days = 30\n\
         default_crl_days = 7\npolicy = any\n[any]\ncommonName = supplied\n",
    )
    .unwrap();
    gw.ok(&[
        "trust",
        "cross-certify",
        d.join("f.pem").to_str().unwrap(),
        "--out",
        d.join("cross.pem").to_str().unwrap(),
    ]);
    (gw, inter)
}

/// `<name>@partner.test`, issued by the partner's issuing CA (`i.cnf`) with extended key usage
/// `eku`.
fn partner_leaf(d: &Path, name: &str, eku: &str) -> String {
    let email = format!("{name}@partner.test");
    issue(
        d,
        "i.cnf",
        name,
        &format!("/CN={name}"),
        &leaf_ext(&email, eku),
    )
}

/// `openssl ca -revoke` with the configuration `cnf`.
fn revoke(d: &Path, cnf: &str, cert: &str, reason: Option<&str>) {
    let mut args = vec!["ca", "-batch", "-config", cnf, "-revoke", cert];
    if let Some(r) = reason {
        args.extend(["-crl_reason", r]);
    }
    openssl_ok(d, &args);
}

fn gencrl(d: &Path, cnf: &str, out: &str) -> String {
    openssl_ok(d, &["ca", "-batch", "-config", cnf, "-gencrl", "-out", out]);
    d.join(out).to_str().unwrap().to_string()
}

/// Issue 12, part 1: the CRL of an intermediate under a cross-certified root is imported with
/// `--issuer`, refreshed only by a higher cRLNumber, and then refuses the leaf it revokes.
#[test]
fn intermediate_crl_is_imported_with_its_issuer_and_refreshed_by_number() {
    let (gw, inter) = partner_with_intermediate();
    let d = gw.dir.path();
    let carol = partner_leaf(d, "carol", "emailProtection");
    let check_carol = || {
        let o = gw.run(&[
            "trust",
            "check",
            &carol,
            "--untrusted",
            &inter,
            "--email",
            "carol@partner.test",
        ]);
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    assert_eq!(check_carol().0, 0, "{}", check_carol().1);
    revoke(d, "i.cnf", &carol, Some("keyCompromise"));
    let first = gencrl(d, "i.cnf", "i1.crl");

    // Today's refusal named no way out; now it says what to give.
    let err = gw.fails(&["trust", "import-crl", &first], 2);
    assert!(
        err.contains("i1.crl") && err.contains("Partner Issuing CA") && err.contains("--issuer"),
        "{err}"
    );
    let out = gw.ok(&["trust", "import-crl", &first, "--issuer", &inter]);
    assert!(out.contains("Partner Issuing CA"), "{out}");
    let (code, out) = check_carol();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("revoked") && out.contains("keyCompromise"),
        "{out}"
    );
    // openssl, given the same certificates and CRL, agrees.
    let (ok, msg) = openssl(
        d,
        &[
            "verify",
            "-crl_check",
            "-CAfile",
            gw.path("ca.pem").to_str().unwrap(),
            "-untrusted",
            &common_bundle(d, &["cross.pem", "i.pem"]),
            "-CRLfile",
            &first,
            &carol,
        ],
    );
    assert!(!ok && msg.contains("revoked"), "{msg}");

    // The same CRL again: refused, saying why.
    let err = gw.fails(&["trust", "import-crl", &first, "--issuer", &inter], 2);
    assert!(
        err.contains("i1.crl") && err.contains("cRLNumber 01") && err.contains("already held"),
        "{err}"
    );
    // A newer one (number 02), now without --issuer: the directory kept the issuing CA.
    let second = gencrl(d, "i.cnf", "i2.crl");
    gw.ok(&["trust", "import-crl", &second]);
    // The older one never comes back.
    let err = gw.fails(&["trust", "import-crl", &first], 2);
    assert!(err.contains("lower") && err.contains("older"), "{err}");
    assert_eq!(check_carol().0, 1);
}

fn common_bundle(d: &Path, parts: &[&str]) -> String {
    let mut text = String::new();
    for p in parts {
        text.push_str(&std::fs::read_to_string(d.join(p)).unwrap());
    }
    let out = d.join(format!("bundle-{}.pem", parts.join("-")));
    std::fs::write(&out, text).unwrap();
    out.to_str().unwrap().to_string()
}

/// A CRL signed by a separate CRL-signing certificate of the issuing CA (same name, its own
/// key, cRLSign): accepted when that certificate validates to an anchor (RFC 5280 6.3.3 (f)),
/// and the leaf it revokes is refused; signed by a same-name key nobody certified, refused.
#[test]
fn crl_from_another_key_of_the_same_ca_is_accepted_and_used() {
    let (gw, inter) = partner_with_intermediate();
    let d = gw.dir.path();
    let dave = partner_leaf(d, "dave", "emailProtection");
    // The CRL signer: issued by the issuing CA under its own name.
    issue(
        d,
        "i.cnf",
        "crlsigner",
        "/O=Partner/CN=Partner Issuing CA",
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,cRLSign\n\
         subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    );
    std::fs::create_dir_all(d.join("s.db")).unwrap();
    std::fs::write(d.join("s.db/index.txt"), "").unwrap();
    std::fs::write(d.join("s.db/crlnumber"), "10\n").unwrap();
    std::fs::write(
        d.join("s.cnf"),
        "[ca]\ndefault_ca = s\n[s]\ndatabase = s.db/index.txt\ncertificate = crlsigner.pem\n\
         private_key = crlsigner.key\ncrlnumber = s.db/crlnumber\ndefault_md = sha256\n\
         default_crl_days = 7\n",
    )
    .unwrap();
    revoke(d, "s.cnf", &dave, None);
    let crl = gencrl(d, "s.cnf", "s.crl");
    let chain = common_bundle(d, &["crlsigner.pem", "i.pem"]);
    let check_dave = || {
        gw.run(&["trust", "check", &dave, "--untrusted", &inter])
            .status
            .code()
    };
    assert_eq!(check_dave(), Some(0));
    gw.ok(&["trust", "import-crl", &crl, "--issuer", &chain]);
    assert_eq!(check_dave(), Some(1), "the CRL signer's CRL revokes dave");

    // A self-made key under the same name: the signature check finds no certified key.
    sh_ok(
        d,
        "mkdir fake && cd fake && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout k.pem -out c.pem -days 5 -subj '/O=Partner/CN=Partner Issuing CA' -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,cRLSign,keyCertSign",
    );
    std::fs::write(
        d.join("fake/ca.cnf"),
        "[ca]\ndefault_ca = f\n[f]\ndatabase = index.txt\ncertificate = c.pem\nprivate_key = k.pem\ncrlnumber = n\ndefault_md = sha256\ndefault_crl_days = 7\n",
    )
    .unwrap();
    std::fs::write(d.join("fake/index.txt"), "").unwrap();
    std::fs::write(d.join("fake/n"), "99\n").unwrap();
    openssl_ok(
        &d.join("fake"),
        &[
            "ca", "-batch", "-config", "ca.cnf", "-gencrl", "-out", "f.crl",
        ],
    );
    let fake = d.join("fake/f.crl");
    let fake_ca = d.join("fake/c.pem");
    let err = gw.fails(
        &[
            "trust",
            "import-crl",
            fake.to_str().unwrap(),
            "--issuer",
            fake_ca.to_str().unwrap(),
        ],
        2,
    );
    assert!(
        err.contains("f.crl") && err.contains("does not validate to a trust anchor"),
        "{err}"
    );
    assert_eq!(check_dave(), Some(1), "the refused CRL changed nothing");
}

/// Signs a short message as `name` (`<name>.pem`/`<name>.key` in `d`), with `chain` attached.
fn signed_by(d: &Path, name: &str, email: &str, chain: &str) -> Vec<u8> {
    std::fs::write(d.join("body.txt"), "Hello from a partner.\r\n").unwrap();
    openssl_ok(
        d,
        &[
            "cms",
            "-sign",
            "-in",
            "body.txt",
            "-signer",
            &format!("{name}.pem"),
            "-inkey",
            &format!("{name}.key"),
            "-certfile",
            chain,
            "-from",
            email,
            "-to",
            "alice@acme.test",
            "-subject",
            "hello",
            "-out",
            &format!("{name}.eml"),
        ],
    );
    std::fs::read(d.join(format!("{name}.eml"))).unwrap()
}

/// The gateway's verdict (`smimegw process`, inbound) on a message signed by `name`: whether
/// the result is `smime=pass`, and the delivered message.
fn gateway_passes(gw: &Gw, name: &str, email: &str, inter: &str) -> (bool, String) {
    let msg = signed_by(gw.dir.path(), name, email, inter);
    let o = gw.run_stdin(
        &["process", "--from", email, "--to", "alice@acme.test"],
        Some(&msg),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    (out.contains("smime=pass"), out)
}

/// Issue 12, part 5: `trust check` (with its defaults) and the gateway give the same verdict
/// on the same certificates; and the gateway keeps the issuing CA of a validated signer chain,
/// so its CRL imports without `--issuer`. Before, `trust check` without `--usage` checked no
/// usage and passed a certificate the gateway refuses for signing.
#[test]
fn trust_check_and_the_gateway_agree_and_signer_chains_are_learned() {
    let (gw, inter) = partner_with_intermediate();
    let d = gw.dir.path();
    let people = [
        ("erin", "erin@partner.test", "emailProtection"),
        ("frank", "frank@partner.test", "emailProtection"),
        ("gina", "gina@partner.test", "serverAuth"),
    ];
    for (name, _, eku) in people {
        partner_leaf(d, name, eku);
    }
    // Like the gateway with a message's certificates, trust check takes the chain that comes
    // in the same file as the leaf (before, it read the first certificate only).
    let bundle = common_bundle(d, &["erin.pem", "i.pem"]);
    gw.ok(&["trust", "check", &bundle, "--email", "erin@partner.test"]);
    // A valid signature teaches the gateway the issuing CA.
    let (pass, out) = gateway_passes(&gw, "erin", "erin@partner.test", &inter);
    assert!(pass, "{out}");
    revoke(d, "i.cnf", &format!("{}/frank.pem", d.display()), None);
    let crl = gencrl(d, "i.cnf", "learned.crl");
    gw.ok(&["trust", "import-crl", &crl]);

    for (name, email, _) in people {
        let (gateway, out) = gateway_passes(&gw, name, email, &inter);
        let cert = d.join(format!("{name}.pem"));
        let o = gw.run(&[
            "trust",
            "check",
            cert.to_str().unwrap(),
            "--untrusted",
            &inter,
            "--email",
            email,
        ]);
        let check = o.status.code() == Some(0);
        assert_eq!(
            gateway,
            check,
            "{name}: the gateway says {}, trust check {}\n{out}\n{}",
            if gateway { "pass" } else { "not pass" },
            if check { "trusted" } else { "not trusted" },
            String::from_utf8_lossy(&o.stdout)
        );
        assert_eq!(check, name == "erin", "{name}");
    }
}
