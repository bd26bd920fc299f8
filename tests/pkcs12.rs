//! PKCS #12 in and out through the CLI, judged by OpenSSL, NSS (`pk12util`) and GnuPG (`gpgsm`).

mod common;

use std::path::Path;
use std::process::Command;

use common::{Gw, openssl_ok, require, sh_ok};

fn write_pw(gw: &Gw, pw: &str) -> String {
    let p = gw.path("pw.txt");
    std::fs::write(&p, format!("{pw}\n")).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn exported_p12_opens_in_openssl_nss_and_gpgsm() {
    require("pk12util", "libnss3-tools");
    require("certutil", "libnss3-tools");
    require("gpgsm", "gpgsm");
    let gw = Gw::new();
    gw.init_ca();
    let d = gw.dir.path();
    gw.enroll("alice@acme.test", "Alice", "rsa2048");
    let pw = write_pw(&gw, "s3cret pass");
    let p12 = d.join("alice.p12");
    gw.ok(&[
        "user",
        "export",
        "alice@acme.test",
        "--p12",
        p12.to_str().unwrap(),
        "--password-file",
        &pw,
    ]);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&p12).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // OpenSSL: the key inside is the encryption certificate's key; the chain is included.
    let info = openssl_ok(
        d,
        &[
            "pkcs12",
            "-in",
            "alice.p12",
            "-passin",
            "pass:s3cret pass",
            "-info",
            "-nodes",
            "-out",
            "alice-all.pem",
        ],
    );
    assert!(
        info.contains("PBES2") && info.contains("AES-256-CBC"),
        "{info}"
    );
    let all = std::fs::read_to_string(d.join("alice-all.pem")).unwrap();
    assert_eq!(all.matches("BEGIN CERTIFICATE").count(), 2, "leaf and CA");
    let enc = gw.cert_file("alice@acme.test", "encryption");
    assert_eq!(
        sh_ok(d, "openssl pkey -in alice-all.pem -pubout"),
        openssl_ok(
            d,
            &["x509", "-in", enc.to_str().unwrap(), "-noout", "-pubkey"]
        ),
        "the exported key belongs to the encryption certificate"
    );

    // NSS.
    sh_ok(d, "mkdir nss && certutil -N -d sql:nss --empty-password");
    sh_ok(d, "pk12util -i alice.p12 -d sql:nss -W 's3cret pass'");
    let keys = sh_ok(d, "certutil -K -d sql:nss");
    assert!(keys.contains("rsa"), "{keys}");

    // gpgsm (GnuPG 2.2 reads only its own PBES2 form: the gnupg22 profile).
    let gp12 = d.join("alice-gnupg.p12");
    gw.ok(&[
        "user",
        "export",
        "alice@acme.test",
        "--p12",
        gp12.to_str().unwrap(),
        "--profile",
        "gnupg22",
        "--password-file",
        &pw,
    ]);
    let home = d.join("gnupg");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(home.join("gpg-agent.conf"), "allow-loopback-pinentry\n").unwrap();
    let mut child = Command::new("gpgsm")
        .args([
            "--homedir",
            home.to_str().unwrap(),
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase-fd",
            "0",
            "--import",
            gp12.to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"s3cret pass\n")
            .unwrap();
    }
    let o = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&o.stderr).into_owned();
    let listed = Command::new("gpgsm")
        .args([
            "--homedir",
            home.to_str().unwrap(),
            "--batch",
            "--list-secret-keys",
        ])
        .output()
        .unwrap();
    let _ = Command::new("gpgconf")
        .args(["--homedir", home.to_str().unwrap(), "--kill", "all"])
        .status();
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listing.contains("alice@acme.test"),
        "gpgsm import: {log}\nlisting: {listing}"
    );

    // The signing key stays unless asked for explicitly, and that is audited.
    let err = gw.fails(
        &[
            "user",
            "export",
            "alice@acme.test",
            "--p12",
            p12.to_str().unwrap(),
            "--password-file",
            &pw,
        ],
        2,
    );
    assert!(err.contains("must not exist"), "never overwrite: {err}");
    gw.ok(&[
        "user",
        "export",
        "alice@acme.test",
        "--include-signing-key",
        "--p12",
        d.join("sig.p12").to_str().unwrap(),
        "--password-file",
        &pw,
    ]);
    let audit = gw.ok(&["audit"]);
    assert!(audit.contains("user.export.signing-key"), "{audit}");
}

fn openssl_p12(d: &Path, name: &str, curve: Option<&str>, legacy: bool, with_ca: bool) -> String {
    let keyargs: Vec<String> = match curve {
        Some(c) => vec![
            "-newkey".into(),
            "ec".into(),
            "-pkeyopt".into(),
            format!("ec_paramgen_curve:{c}"),
        ],
        None => vec!["-newkey".into(), "rsa:2048".into()],
    };
    let mut args: Vec<String> = vec!["req".into(), "-x509".into()];
    args.extend(keyargs);
    args.extend(
        [
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "30",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            &format!("subjectAltName=email:{name}@acme.test"),
            "-addext",
            "keyUsage=critical,digitalSignature,keyEncipherment,keyAgreement",
            "-addext",
            "extendedKeyUsage=emailProtection",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    openssl_ok(d, &refs);
    let mut exp = vec![
        "pkcs12".to_string(),
        "-export".into(),
        "-in".into(),
        format!("{name}.pem"),
        "-inkey".into(),
        format!("{name}.key"),
        "-passout".into(),
        "pass:pw".into(),
        "-out".into(),
        format!("{name}.p12"),
    ];
    if legacy {
        exp.push("-legacy".into());
    }
    if with_ca {
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
                "extra.key",
                "-out",
                "extra-ca.pem",
                "-days",
                "30",
                "-subj",
                "/CN=Extra CA",
            ],
        );
        exp.push("-certfile".into());
        exp.push("extra-ca.pem".into());
    }
    let refs: Vec<&str> = exp.iter().map(String::as_str).collect();
    openssl_ok(d, &refs);
    d.join(format!("{name}.p12")).to_str().unwrap().to_string()
}

#[test]
fn openssl_made_p12_imports_in_default_and_legacy_form() {
    let gw = Gw::new();
    gw.init_ca();
    let d = gw.dir.path();
    let pw = write_pw(&gw, "pw");
    for (name, curve, legacy, with_ca) in [
        ("modern", None, false, false),
        ("legacy", None, true, false),
        ("ecmodern", Some("P-256"), false, true),
    ] {
        let p12 = openssl_p12(d, name, curve, legacy, with_ca);
        let email = format!("{name}@acme.test");
        gw.ok(&[
            "user",
            "import",
            &email,
            "--p12",
            &p12,
            "--role",
            "both",
            "--password-file",
            &pw,
        ]);
        // The stored certificate is the one openssl made.
        let stored = gw.ok(&["user", "cert", &email, "--role", "encryption"]);
        let original = std::fs::read_to_string(d.join(format!("{name}.pem"))).unwrap();
        assert_eq!(stored.trim(), original.trim(), "{name}");
        let show = gw.ok(&["user", "show", &email, "--json"]);
        assert!(
            show.contains("imported") && show.contains("\"key_held\": true"),
            "{show}"
        );
    }
    let audit = gw.ok(&["audit"]);
    assert_eq!(audit.matches("user.import").count(), 3, "{audit}");
}

#[test]
fn wrong_password_and_broken_files_are_clear_errors() {
    let gw = Gw::new();
    gw.init_ca();
    let d = gw.dir.path();
    let p12 = openssl_p12(d, "zed", None, false, false);
    let before = gw.snapshot();
    let bad = write_pw(&gw, "not the password");
    let err = gw.fails(
        &[
            "user",
            "import",
            "zed@acme.test",
            "--p12",
            &p12,
            "--password-file",
            &bad,
        ],
        2,
    );
    assert!(
        err.contains("zed.p12") && err.to_lowercase().contains("password"),
        "{err}"
    );
    let good = write_pw(&gw, "pw");
    let bytes = std::fs::read(&p12).unwrap();
    std::fs::write(d.join("trunc.p12"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(d.join("junk.p12"), b"definitely not pkcs12").unwrap();
    for f in ["trunc.p12", "junk.p12"] {
        let err = gw.fails(
            &[
                "user",
                "import",
                "zed@acme.test",
                "--p12",
                d.join(f).to_str().unwrap(),
                "--password-file",
                &good,
            ],
            2,
        );
        assert!(err.contains(f), "{err}");
    }
    // A certificate for another address is refused.
    let err = gw.fails(
        &[
            "user",
            "import",
            "other@acme.test",
            "--p12",
            &p12,
            "--password-file",
            &good,
        ],
        2,
    );
    assert!(err.contains("zed@acme.test"), "{err}");
    // No terminal and no password file: a clear error, not a hang.
    let err = gw.fails(&["user", "import", "zed@acme.test", "--p12", &p12], 2);
    assert!(err.contains("--password-file"), "{err}");
    assert_eq!(before, gw.snapshot());
}

/// Issue 15's export rules: a key that also signs (a single-certificate user) leaves only with
/// `--include-signing-key`, audited as a signing-key export; a short or empty password is
/// refused, naming the minimum; the file uses 100,000 PBKDF2 iterations (read back by OpenSSL).
#[test]
fn exports_guard_signing_keys_and_weak_passwords() {
    let gw = Gw::new();
    gw.init_ca();
    let d = gw.dir.path();
    gw.ok(&[
        "user",
        "enroll",
        "sam@acme.test",
        "--name",
        "Sam",
        "--key",
        "p256",
        "--single",
    ]);
    let pw = write_pw(&gw, "long enough pass");
    let out = d.join("sam.p12");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "user",
            "export",
            "sam@acme.test",
            "--p12",
            out.to_str().unwrap(),
            "--password-file",
            &pw,
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let run = |a: &[String]| gw.run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(&args(&[]));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("signing key is not exportable") && err.contains("--include-signing-key"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written");
    let o = run(&args(&["--include-signing-key"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let audit = gw.ok(&["audit"]);
    assert!(audit.contains("user.export.signing-key"), "{audit}");
    // What OpenSSL reads back: PBKDF2 with 100,000 iterations for the key and the MAC.
    let info = openssl_ok(
        d,
        &[
            "pkcs12",
            "-info",
            "-noout",
            "-in",
            out.to_str().unwrap(),
            "-passin",
            "pass:long enough pass",
        ],
    );
    assert!(info.contains("Iteration 100000"), "{info}");
    assert!(info.contains("PBKDF2") && info.contains("100000"), "{info}");

    // Short and empty passwords are refused, whatever the key.
    gw.enroll("alice@acme.test", "Alice", "p256");
    for weak in ["", "short pw"] {
        let pw = write_pw(&gw, weak);
        let dest = d.join("weak.p12");
        let err = gw.fails(
            &[
                "user",
                "export",
                "alice@acme.test",
                "--p12",
                dest.to_str().unwrap(),
                "--password-file",
                &pw,
            ],
            2,
        );
        assert!(err.contains("at least 10"), "{weak:?}: {err}");
        assert!(!dest.exists(), "{weak:?}: nothing written");
    }
}
