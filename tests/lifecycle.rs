//! Certificate lifecycle through the CLI, judged by OpenSSL: what we issue must verify with
//! `openssl verify -purpose smimesign|smimeencrypt`, carry exactly the intended key usages, and
//! disappear from trust once revoked (`-crl_check`).

mod common;

use common::{Gw, openssl, openssl_ok, sh_ok};

fn ext_text(gw: &Gw, cert: &std::path::Path) -> String {
    openssl_ok(
        gw.dir.path(),
        &[
            "x509",
            "-in",
            cert.to_str().unwrap(),
            "-noout",
            "-ext",
            "keyUsage,extendedKeyUsage,subjectAltName,basicConstraints",
        ],
    )
}

fn verify(gw: &Gw, ca: &std::path::Path, cert: &std::path::Path, purpose: &str) -> (bool, String) {
    openssl(
        gw.dir.path(),
        &[
            "verify",
            "-CAfile",
            ca.to_str().unwrap(),
            "-purpose",
            purpose,
            cert.to_str().unwrap(),
        ],
    )
}

#[test]
fn dual_rsa_certificates_pass_openssl_with_exact_usages() {
    let gw = Gw::new();
    let ca = gw.init_ca();
    let out = gw.enroll("alice@acme.test", "Alice Example", "rsa2048");
    assert!(out.contains("alice@acme.test"), "{out}");

    let sign = gw.cert_file("alice@acme.test", "signing");
    let enc = gw.cert_file("alice@acme.test", "encryption");

    let (ok, msg) = verify(&gw, &ca, &sign, "smimesign");
    assert!(ok, "signing certificate must pass smimesign: {msg}");
    let (ok, msg) = verify(&gw, &ca, &enc, "smimeencrypt");
    assert!(ok, "encryption certificate must pass smimeencrypt: {msg}");
    // Dual certificates are not interchangeable.
    let (ok, _) = verify(&gw, &ca, &sign, "smimeencrypt");
    assert!(
        !ok,
        "a signing certificate must not be usable for encryption"
    );
    let (ok, _) = verify(&gw, &ca, &enc, "smimesign");
    assert!(
        !ok,
        "an encryption certificate must not be usable for signing"
    );

    let s = ext_text(&gw, &sign);
    assert!(
        s.contains("critical") && s.contains("Digital Signature, Non Repudiation\n"),
        "{s}"
    );
    assert!(
        s.contains("E-mail Protection") && s.contains("email:alice@acme.test"),
        "{s}"
    );
    assert!(s.contains("CA:FALSE"), "{s}");
    let e = ext_text(&gw, &enc);
    assert!(
        e.contains("Key Encipherment\n") && !e.contains("Digital Signature"),
        "{e}"
    );
    assert!(
        e.contains("E-mail Protection") && e.contains("email:alice@acme.test"),
        "{e}"
    );

    // Serial: 16 random bytes, positive.
    let serial = openssl_ok(
        gw.dir.path(),
        &["x509", "-in", sign.to_str().unwrap(), "-noout", "-serial"],
    );
    let hex = serial.trim().trim_start_matches("serial=");
    assert!(hex.len() >= 30 && hex.len() <= 32, "serial {hex}");

    // --chain adds the CA.
    let chain = gw.ok(&[
        "user",
        "cert",
        "alice@acme.test",
        "--role",
        "signing",
        "--chain",
    ]);
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
}

#[test]
fn ec_encryption_certificate_uses_key_agreement_and_single_has_both() {
    let gw = Gw::new();
    let ca = gw.init_ca();
    gw.enroll("bea@acme.test", "Bea", "p256");
    let enc = gw.cert_file("bea@acme.test", "encryption");
    let e = ext_text(&gw, &enc);
    assert!(
        e.contains("Key Agreement") && !e.contains("Key Encipherment"),
        "{e}"
    );
    let (ok, msg) = verify(
        &gw,
        &ca,
        &gw.cert_file("bea@acme.test", "signing"),
        "smimesign",
    );
    assert!(ok, "{msg}");

    gw.ok(&[
        "user",
        "enroll",
        "sam@acme.test",
        "--name",
        "Sam",
        "--single",
    ]);
    let both = gw.cert_file("sam@acme.test", "signing");
    let s = ext_text(&gw, &both);
    assert!(
        s.contains("Digital Signature, Non Repudiation, Key Encipherment"),
        "{s}"
    );
    assert!(verify(&gw, &ca, &both, "smimesign").0 && verify(&gw, &ca, &both, "smimeencrypt").0);
    // The single certificate is the encryption certificate too.
    assert_eq!(
        std::fs::read(&both).unwrap(),
        std::fs::read(gw.cert_file("sam@acme.test", "encryption")).unwrap()
    );
}

#[test]
fn revocation_reaches_the_crl_and_openssl_rejects_the_certificate() {
    let gw = Gw::new();
    let ca = gw.init_ca();
    gw.enroll("carol@acme.test", "Carol", "p256");
    gw.enroll("dave@acme.test", "Dave", "p256");
    let carol = gw.cert_file("carol@acme.test", "signing");
    let dave = gw.cert_file("dave@acme.test", "signing");
    gw.ok(&[
        "user",
        "revoke",
        "carol@acme.test",
        "--reason",
        "keyCompromise",
    ]);
    let crl = gw.path("ca.crl");
    gw.ok(&["ca", "crl", "--out", crl.to_str().unwrap()]);

    let text = openssl_ok(
        gw.dir.path(),
        &["crl", "-in", crl.to_str().unwrap(), "-noout", "-text"],
    );
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(text.contains("Next Update"), "{text}");
    openssl_ok(
        gw.dir.path(),
        &[
            "crl",
            "-in",
            crl.to_str().unwrap(),
            "-noout",
            "-CAfile",
            ca.to_str().unwrap(),
        ],
    );

    let check = |cert: &std::path::Path| {
        openssl(
            gw.dir.path(),
            &[
                "verify",
                "-crl_check",
                "-CAfile",
                ca.to_str().unwrap(),
                "-CRLfile",
                crl.to_str().unwrap(),
                "-purpose",
                "smimesign",
                cert.to_str().unwrap(),
            ],
        )
    };
    let (ok, msg) = check(&carol);
    assert!(
        !ok && msg.contains("revoked"),
        "revoked certificate must fail: {msg}"
    );
    let (ok, msg) = check(&dave);
    assert!(ok, "unrevoked certificate must pass: {msg}");

    // Our own path validation agrees.
    let o = gw.run(&[
        "trust",
        "check",
        carol.to_str().unwrap(),
        "--usage",
        "signing",
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("revoked"));
    gw.ok(&[
        "trust",
        "check",
        dave.to_str().unwrap(),
        "--usage",
        "signing",
        "--email",
        "dave@acme.test",
    ]);
}

#[test]
fn renewal_keeps_old_encryption_keys_and_rekey_changes_keys() {
    let gw = Gw::new();
    gw.init_ca();
    gw.enroll("erin@acme.test", "Erin", "p256");
    let d = gw.dir.path();
    let pubkey = |pem: &str| {
        std::fs::write(d.join("probe.pem"), pem).unwrap();
        openssl_ok(d, &["x509", "-in", "probe.pem", "-noout", "-pubkey"])
    };
    let before = gw.ok(&["user", "cert", "erin@acme.test", "--role", "encryption"]);
    let k0 = pubkey(&before);
    gw.ok(&["user", "renew", "erin@acme.test"]);
    let renewed = gw.ok(&["user", "cert", "erin@acme.test", "--role", "encryption"]);
    assert!(before != renewed, "renewal issues a new certificate");
    assert_eq!(k0, pubkey(&renewed), "plain renewal keeps the key");
    gw.ok(&["user", "renew", "erin@acme.test", "--rekey"]);
    let rekeyed = gw.ok(&["user", "cert", "erin@acme.test", "--role", "encryption"]);
    assert_ne!(k0, pubkey(&rekeyed), "--rekey makes a new key");

    let show = gw.ok(&["user", "show", "erin@acme.test", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&show).unwrap();
    let certs = v["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 6);
    assert_eq!(certs.iter().filter(|c| c["state"] == "current").count(), 2);
    // Superseded encryption certificates keep their keys (old mail stays readable).
    assert!(
        certs
            .iter()
            .filter(|c| c["role"] == "encryption")
            .all(|c| c["key_held"] == true)
    );
}

#[test]
fn request_flow_with_an_openssl_csr() {
    let gw = Gw::new();
    let ca = gw.init_ca();
    let d = gw.dir.path();
    let id = gw.submit_csr("frank@acme.test", "Frank User");
    assert_eq!(id.len(), 16, "the request id is alone on the last line");

    let list = gw.ok(&["request", "list", "--json"]);
    assert!(list.contains(&id) && list.contains("pending"), "{list}");

    let o = gw.run(&[
        "request",
        "pickup",
        &id,
        "--out",
        d.join("x.pem").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "pickup before approval must fail");

    gw.ok(&["request", "approve", &id]);
    let before = gw.snapshot();
    let err = gw.fails(&["request", "approve", &id], 2);
    assert!(err.contains("already approved"), "{err}");
    assert_eq!(before, gw.snapshot(), "a second approval changes nothing");

    gw.ok(&[
        "request",
        "pickup",
        &id,
        "--out",
        d.join("frank.pem").to_str().unwrap(),
    ]);
    let pem = std::fs::read_to_string(d.join("frank.pem")).unwrap();
    assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 2);
    openssl_ok(d, &["x509", "-in", "frank.pem", "-out", "frank-leaf.pem"]);
    let (ok, msg) = openssl(
        d,
        &[
            "verify",
            "-CAfile",
            ca.to_str().unwrap(),
            "-purpose",
            "smimesign",
            "frank-leaf.pem",
        ],
    );
    assert!(ok, "{msg}");
    // The certificate certifies the requester's key.
    assert_eq!(
        sh_ok(d, "openssl pkey -in frank@acme.test.key -pubout"),
        sh_ok(d, "openssl x509 -in frank-leaf.pem -noout -pubkey")
    );
    // The record says the gateway does not hold the key.
    let show = gw.ok(&["user", "show", "frank@acme.test", "--json"]);
    assert!(show.contains("\"key_held\": false"), "{show}");

    // Deny.
    openssl_ok(
        d,
        &[
            "req",
            "-new",
            "-key",
            "frank@acme.test.key",
            "-subj",
            "/CN=Frank",
            "-addext",
            "subjectAltName=email:frank@acme.test",
            "-out",
            "frank2.csr",
        ],
    );
    let out = gw.ok(&[
        "request",
        "submit",
        "--csr",
        d.join("frank2.csr").to_str().unwrap(),
    ]);
    let id2 = out.lines().last().unwrap().trim().to_string();
    gw.ok(&["request", "deny", &id2, "--reason", "duplicate"]);
    let err = gw.fails(&["request", "approve", &id2], 2);
    assert!(err.contains("denied") && err.contains("duplicate"), "{err}");
}

#[test]
fn bad_requests_are_refused_and_change_nothing() {
    let gw = Gw::new();
    gw.init_ca();
    let d = gw.dir.path();
    openssl_ok(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "k.key",
        ],
    );
    openssl_ok(
        d,
        &[
            "req",
            "-new",
            "-key",
            "k.key",
            "-subj",
            "/CN=Mallory",
            "-addext",
            "subjectAltName=email:mallory@evil.test",
            "-out",
            "ext.csr",
        ],
    );
    openssl_ok(
        d,
        &[
            "req",
            "-new",
            "-key",
            "k.key",
            "-subj",
            "/CN=Nobody",
            "-out",
            "noemail.csr",
        ],
    );
    openssl_ok(
        d,
        &[
            "req",
            "-new",
            "-key",
            "k.key",
            "-subj",
            "/CN=Ok",
            "-addext",
            "subjectAltName=email:ok@acme.test",
            "-outform",
            "DER",
            "-out",
            "ok.der",
        ],
    );
    // Flip a byte inside the signed part: the proof of possession no longer verifies.
    let mut der = std::fs::read(d.join("ok.der")).unwrap();
    let i = der.len() / 3;
    der[i] ^= 0x01;
    std::fs::write(d.join("tampered.der"), &der).unwrap();
    std::fs::write(
        d.join("garbage.csr"),
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    )
    .unwrap();
    let ok_der = std::fs::read(d.join("ok.der")).unwrap();
    std::fs::write(d.join("truncated.der"), &ok_der[..ok_der.len() / 2]).unwrap();

    let before = gw.snapshot();
    for (file, needle) in [
        ("ext.csr", "not in an internal domain"),
        ("noemail.csr", "names no e-mail address"),
        ("tampered.der", ""),
        ("garbage.csr", "not a valid PKCS #10"),
        ("truncated.der", "not a valid PKCS #10"),
        ("missing.csr", "missing.csr"),
    ] {
        let err = gw.fails(
            &["request", "submit", "--csr", d.join(file).to_str().unwrap()],
            2,
        );
        assert!(err.contains(needle), "{file}: {err}");
        assert!(err.contains(file), "the error names the file {file}: {err}");
    }
    assert_eq!(before, gw.snapshot());

    // Enrolment errors.
    let err = gw.fails(&["user", "enroll", "x@evil.test", "--name", "X"], 2);
    assert!(
        err.contains("not in an internal domain") && err.contains("internal_domains"),
        "{err}"
    );
    gw.enroll("g@acme.test", "G", "p256");
    let before = gw.snapshot();
    let err = gw.fails(&["user", "enroll", "g@acme.test", "--name", "G"], 2);
    assert!(err.contains("already exists"), "{err}");
    let err = gw.fails(&["user", "enroll", "not-an-address", "--name", "G"], 2);
    assert!(err.contains("not an e-mail address"), "{err}");
    assert_eq!(before, gw.snapshot());

    // Garbage certificates.
    std::fs::write(
        d.join("junk.pem"),
        b"-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(d.join("empty.pem"), b"").unwrap();
    let ca_der = openssl_ok(
        d,
        &["x509", "-in", "ca.pem", "-outform", "DER", "-out", "ca.der"],
    );
    let _ = ca_der;
    let full = std::fs::read(d.join("ca.der")).unwrap();
    std::fs::write(d.join("trunc.der"), &full[..full.len() - 10]).unwrap();
    for file in ["junk.pem", "empty.pem", "trunc.der"] {
        let err = gw.fails(&["trust", "add-root", d.join(file).to_str().unwrap()], 2);
        assert!(err.contains(file), "{err}");
    }
    assert_eq!(before, gw.snapshot());
}

/// Every command in the binary's command tree (walked through the "Commands:" sections of
/// `--help` itself, not listed by hand, so a new command is covered the day it is added)
/// answers `--help` with a usage line.
#[test]
fn every_command_has_help() {
    let gw = Gw::new();
    let mut todo: Vec<Vec<String>> = vec![Vec::new()];
    let mut checked = 0;
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = gw.ok(&args);
        assert!(out.contains("Usage:"), "{args:?}: {out}");
        checked += 1;
        let commands = out
            .split("\nCommands:\n")
            .nth(1)
            .map(|rest| rest.split("\n\n").next().unwrap_or(""))
            .unwrap_or("");
        for line in commands.lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            if !name.is_empty()
                && name != "help"
                && line.starts_with("  ")
                && !line.starts_with("   ")
            {
                let mut p = path.clone();
                p.push(name.to_string());
                todo.push(p);
            }
        }
    }
    assert!(checked > 40, "{checked} commands");
    // Misuse: non-zero with a message.
    let o = gw.run(&["user", "enroll"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("EMAIL"));
}

#[test]
fn subordinate_ca_imported_from_openssl_issues_verifiable_certificates() {
    let d0 = tempfile::tempdir().unwrap();
    let d = d0.path();
    // A third-party root and the intermediate it issues for us.
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
            "root.key",
            "-out",
            "root.pem",
            "-days",
            "30",
            "-subj",
            "/CN=Third Party Root",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl_ok(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "sub.key",
        ],
    );
    openssl_ok(
        d,
        &[
            "req",
            "-new",
            "-key",
            "sub.key",
            "-subj",
            "/CN=Acme Sub CA",
            "-out",
            "sub.csr",
        ],
    );
    std::fs::write(d.join("sub.ext"), "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n").unwrap();
    openssl_ok(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "sub.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "20",
            "-extfile",
            "sub.ext",
            "-out",
            "sub.pem",
        ],
    );
    sh_ok(d, "cat sub.pem root.pem > sub-chain.pem");
    openssl_ok(
        d,
        &[
            "pkcs12",
            "-export",
            "-in",
            "sub.pem",
            "-inkey",
            "sub.key",
            "-certfile",
            "root.pem",
            "-passout",
            "pass:pw",
            "-out",
            "sub.p12",
        ],
    );
    std::fs::write(d.join("pw.txt"), "pw\n").unwrap();

    for how in ["pem", "p12"] {
        let gw = Gw::new();
        let args: Vec<String> = if how == "pem" {
            vec![
                "ca".into(),
                "import".into(),
                "--cert".into(),
                d.join("sub-chain.pem").display().to_string(),
                "--key".into(),
                d.join("sub.key").display().to_string(),
            ]
        } else {
            vec![
                "ca".into(),
                "import".into(),
                "--p12".into(),
                d.join("sub.p12").display().to_string(),
                "--password-file".into(),
                d.join("pw.txt").display().to_string(),
            ]
        };
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = gw.ok(&refs);
        assert!(out.contains("Acme Sub CA"), "{out}");
        let pem = gw.ok(&["ca", "show", "--pem"]);
        assert_eq!(
            pem.matches("BEGIN CERTIFICATE").count(),
            2,
            "{how}: CA and its chain"
        );
        gw.enroll("ivy@acme.test", "Ivy", "p256");
        let leaf = gw.cert_file("ivy@acme.test", "signing");
        let (ok, msg) = openssl(
            gw.dir.path(),
            &[
                "verify",
                "-CAfile",
                d.join("root.pem").to_str().unwrap(),
                "-untrusted",
                d.join("sub.pem").to_str().unwrap(),
                "-purpose",
                "smimesign",
                leaf.to_str().unwrap(),
            ],
        );
        assert!(ok, "{how}: {msg}");
        // Our certificates never outlive the CA that issued them (20 days here, 730 asked).
        let (still_valid_in_25_days, _) = openssl(
            gw.dir.path(),
            &[
                "x509",
                "-in",
                leaf.to_str().unwrap(),
                "-noout",
                "-checkend",
                &(25 * 86400).to_string(),
            ],
        );
        assert!(!still_valid_in_25_days, "{how}: the leaf outlives its CA");
    }

    // A key that does not belong to the certificate, and a leaf offered as a CA.
    let gw = Gw::new();
    openssl_ok(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "other.key",
        ],
    );
    let err = gw.fails(
        &[
            "ca",
            "import",
            "--cert",
            d.join("sub.pem").to_str().unwrap(),
            "--key",
            d.join("other.key").to_str().unwrap(),
        ],
        2,
    );
    assert!(err.contains("does not match"), "{err}");
    let err = gw.fails(
        &[
            "ca",
            "import",
            "--cert",
            d.join("sub.csr").to_str().unwrap(),
            "--key",
            d.join("sub.key").to_str().unwrap(),
        ],
        2,
    );
    assert!(err.contains("sub.csr"), "{err}");
}

#[test]
fn expiring_listing() {
    let gw = Gw::new();
    gw.init_ca();
    gw.ok(&[
        "user",
        "enroll",
        "soon@acme.test",
        "--name",
        "Soon",
        "--key",
        "p256",
        "--days",
        "10",
    ]);
    gw.ok(&[
        "user",
        "enroll",
        "late@acme.test",
        "--name",
        "Late",
        "--key",
        "p256",
        "--days",
        "400",
    ]);
    let list: serde_json::Value =
        serde_json::from_str(&gw.ok(&["user", "list", "--expiring", "30d", "--json"])).unwrap();
    let emails: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["soon@acme.test"]);
    let all = gw.ok(&["user", "list"]);
    assert!(
        all.contains("soon@acme.test") && all.contains("late@acme.test"),
        "{all}"
    );
}

/// A CSR user whose certificate expires in `days`: the gateway does not hold the key.
fn csr_user(gw: &Gw, email: &str, days: &str) {
    let id = gw.submit_csr(email, "CSR User");
    gw.ok(&["request", "approve", &id, "--days", days]);
}

fn serials(gw: &Gw, email: &str) -> Vec<String> {
    let show: serde_json::Value =
        serde_json::from_str(&gw.ok(&["user", "show", email, "--json"])).unwrap();
    show["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["state"] == "current")
        .map(|c| c["serial"].as_str().unwrap().to_string())
        .collect()
}

/// `user renew --all-expiring`: what the gateway holds keys for and expires within the window
/// is renewed (a dry run only says so); what it cannot renew is named; the rest is untouched.
#[test]
fn renew_all_expiring_renews_held_keys_and_names_the_others() {
    let gw = Gw::new();
    gw.init_ca();
    gw.ok(&[
        "user",
        "enroll",
        "soon@acme.test",
        "--name",
        "Soon",
        "--key",
        "p256",
        "--days",
        "10",
    ]);
    gw.ok(&[
        "user",
        "enroll",
        "later@acme.test",
        "--name",
        "Later",
        "--key",
        "p256",
        "--days",
        "400",
    ]);
    csr_user(&gw, "csr@acme.test", "5");
    let (soon, later, csr) = (
        serials(&gw, "soon@acme.test"),
        serials(&gw, "later@acme.test"),
        serials(&gw, "csr@acme.test"),
    );
    let dry = gw.ok(&["user", "renew", "--all-expiring", "30d", "--dry-run"]);
    assert!(
        dry.contains("would renew") && dry.contains("soon@acme.test"),
        "{dry}"
    );
    assert!(
        dry.contains("cannot renew") && dry.contains("csr@acme.test"),
        "{dry}"
    );
    assert!(!dry.contains("later@acme.test"), "{dry}");
    assert_eq!(
        serials(&gw, "soon@acme.test"),
        soon,
        "a dry run changes nothing"
    );

    let out = gw.ok(&["user", "renew", "--all-expiring", "30d"]);
    assert!(
        out.contains("2 certificate(s) renewed, 1 due but not held, 0 failed"),
        "{out}"
    );
    let renewed = serials(&gw, "soon@acme.test");
    assert_eq!(renewed.len(), 2);
    assert!(
        renewed.iter().all(|s| !soon.contains(s)),
        "new serials: {renewed:?}"
    );
    assert_eq!(serials(&gw, "later@acme.test"), later);
    assert_eq!(serials(&gw, "csr@acme.test"), csr);
    let audit = gw.ok(&["audit"]);
    assert!(
        audit.contains("user.renew") && audit.contains("soon@acme.test"),
        "{audit}"
    );
    // Nothing is due any more.
    let again = gw.ok(&["user", "renew", "--all-expiring", "30d"]);
    assert!(
        again.contains("0 certificate(s) renewed, 1 due but not held"),
        "{again}"
    );
}

/// `serve` renews by itself, at start, what expires within `ca.renew_before_days`, audited as
/// the gateway's own action (`user.renew.auto`), and logs what it cannot renew.
#[test]
fn serve_renews_expiring_certificates_by_itself() {
    let port = common::smtp::free_port();
    let gw = Gw::with_config(&format!(
        "[listen]\naddress = \"127.0.0.1:{port}\"\n[ca]\nrenew_before_days = 20\n"
    ));
    gw.init_ca();
    gw.ok(&[
        "user",
        "enroll",
        "soon@acme.test",
        "--name",
        "Soon",
        "--key",
        "p256",
        "--days",
        "10",
    ]);
    csr_user(&gw, "csr@acme.test", "5");
    let before = serials(&gw, "soon@acme.test");
    let log = gw.path("serve.log");
    let mut child = gw
        .serve_command()
        .env("SMIMEGW_LOG", "info")
        .spawn()
        .unwrap();
    let audit = gw.wait_for_audit("user.renew.auto");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        audit.contains("user.renew.auto") && audit.contains("soon@acme.test"),
        "{audit}"
    );
    assert_ne!(serials(&gw, "soon@acme.test"), before);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("csr@acme.test") && text.contains("cannot renew it"),
        "the log names what the gateway cannot renew:\n{text}"
    );
}
