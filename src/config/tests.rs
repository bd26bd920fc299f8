use super::*;

fn parse(t: &str) -> Result<Config, ConfigError> {
    Config::parse(t, Path::new("test.toml"), None)
}

#[test]
fn minimal_config_gets_defaults() {
    let c = parse("data_dir = \"/tmp/x\"\ninternal_domains = [\"Acme.Test\"]\n").unwrap();
    assert_eq!(c.listen.address.to_string(), "127.0.0.1:10025");
    assert_eq!(c.relay.next_hop, "127.0.0.1:10026");
    assert_eq!(c.relay.timeout_secs, 60);
    assert!(c.metrics.enabled);
    assert_eq!(c.metrics.listen.to_string(), "127.0.0.1:9925");
    assert_eq!(
        c.kek_path(),
        PathBuf::from("test.kek"),
        "beside test.toml, not in data_dir"
    );
    assert!(c.is_internal("alice@acme.TEST"));
    assert!(!c.is_internal("bob@partner.test"));
}

#[test]
fn unknown_key_is_an_error_naming_it() {
    let e =
        parse("data_dir = \"/x\"\ninternal_domains = [\"a.test\"]\n[relay]\nnext_hopp = \"x:1\"\n")
            .unwrap_err()
            .to_string();
    assert!(e.contains("next_hopp"), "{e}");
    assert!(e.contains("test.toml"), "{e}");
}

#[test]
fn bad_enum_value_names_the_key() {
    let e = parse(
        "data_dir = \"/x\"\ninternal_domains = [\"a.test\"]\n[policy]\nencrypt = \"always\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("encrypt") && e.contains("always"), "{e}");
}

#[test]
fn inbound_verdict_keys_have_defaults_and_a_bad_value_names_file_and_key() {
    let base = "data_dir = \"/x\"\ninternal_domains = [\"a.test\"]\n";
    let c = parse(base).unwrap();
    assert_eq!(
        c.policy.unauthenticated_cbc(),
        UnauthenticatedCbc::KeepEncrypted
    );
    assert!(!c.policy.insecure_sha1_signatures());
    for (v, want) in [
        ("deliver", UnauthenticatedCbc::Deliver),
        ("annotate", UnauthenticatedCbc::Annotate),
        ("keep_encrypted", UnauthenticatedCbc::KeepEncrypted),
    ] {
        let c = parse(&format!("{base}[policy]\nunauthenticated_cbc = \"{v}\"\n")).unwrap();
        assert_eq!(c.policy.unauthenticated_cbc(), want);
    }
    let e = parse(&format!(
        "{base}[policy]\nunauthenticated_cbc = \"decrypt\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("test.toml") && e.contains("unauthenticated_cbc") && e.contains("decrypt"),
        "{e}"
    );
    let e = parse(&format!(
        "{base}[policy]\ninsecure_sha1_signatures = \"yes\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("test.toml") && e.contains("insecure_sha1_signatures"),
        "{e}"
    );
    let c = parse(&format!(
        "{base}[policy]\ninsecure_sha1_signatures = true\n"
    ))
    .unwrap();
    assert!(c.policy.insecure_sha1_signatures());
}

#[test]
fn relay_timeout_is_checked() {
    let base = "data_dir = \"/x\"\ninternal_domains = [\"a.test\"]\n[relay]\n";
    let c = parse(&format!("{base}timeout_secs = 2\n")).unwrap();
    assert_eq!(c.relay.timeout(), std::time::Duration::from_secs(2));
    let e = parse(&format!("{base}timeout_secs = 0\n"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("relay.timeout_secs") && e.contains("1 to 3600"),
        "{e}"
    );
}

#[test]
fn limits_have_defaults_and_bounds() {
    let base = "data_dir = \"/x\"\ninternal_domains = [\"a.test\"]\n";
    let c = parse(base).unwrap();
    assert_eq!(c.limits.limits(), crate::limits::Limits::default());
    assert_eq!(c.listen.max_command_line, 2048);
    let c = parse(&format!(
        "{base}[limits]\nmax_mime_depth = 10\nmax_processing_secs = 5\n"
    ))
    .unwrap();
    assert_eq!(c.limits.limits().mime_depth, 10);
    assert_eq!(c.limits.limits().processing_secs, 5);
    for bad in [
        "[limits]\nmax_mime_depth = 0",
        "[limits]\nmax_header_size = 10",
        "[limits]\nmax_processing_secs = 0",
        "[listen]\nmax_command_line = 100",
    ] {
        let e = parse(&format!("{base}{bad}\n")).unwrap_err().to_string();
        let key = bad.split('=').next().unwrap().trim().replace("]\n", ".");
        let key = key.trim_start_matches('[');
        assert!(e.contains(key) && e.contains("default"), "{bad}: {e}");
    }
    let e = parse(&format!("{base}[limits]\nmax_depth = 3\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_depth"), "{e}");
}

#[test]
fn notify_has_defaults_and_checks_its_keys() {
    let base = "data_dir = \"/x\"\ninternal_domains = [\"Acme.test\", \"b.test\"]\n";
    let c = parse(base).unwrap();
    assert!(!c.notify.enabled);
    assert_eq!(c.notify.sender(), "postmaster@acme.test");
    assert_eq!(c.notify.days, vec![30, 7, 1]);
    let c = parse(&format!(
        "{base}[notify]\nenabled = true\nfrom = \"PKI@b.test\"\nadmins = [\"Root@x.test\"]\ndays = [1, 14, 14]\n"
    ))
    .unwrap();
    assert_eq!(c.notify.sender(), "pki@b.test");
    assert_eq!(c.notify.admins, vec!["root@x.test"]);
    assert_eq!(
        (c.notify.days.clone(), c.notify.horizon_days()),
        (vec![14, 1], 14)
    );
    for (bad, key) in [
        ("from = \"pki@partner.test\"", "notify.from"),
        ("from = \"a@b.test\\r\\nBcc: x@y.test\"", "notify.from"),
        ("admins = [\"root\"]", "notify.admins"),
        ("admins = [\"a@x.test\\nBcc: v@y.test\"]", "notify.admins"),
        ("days = []", "notify.days"),
        ("days = [0]", "notify.days"),
        ("dayz = [1]", "dayz"),
    ] {
        let e = parse(&format!("{base}[notify]\n{bad}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("test.toml") && e.contains(key), "{bad}: {e}");
    }
}

#[test]
fn missing_data_dir_says_how_to_fix() {
    let e = parse("internal_domains = [\"a.test\"]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("data_dir") && e.contains("--data-dir"), "{e}");
    let c = Config::parse(
        "internal_domains = [\"a.test\"]\n",
        Path::new("t"),
        Some(Path::new("/d")),
    )
    .unwrap();
    assert_eq!(c.data_dir(), Path::new("/d"));
}

#[test]
fn a_cipher_is_auto_or_one_we_write_and_the_error_names_them() {
    let base = "data_dir = \"/d\"\ninternal_domains = [\"acme.test\"]\n[policy]\n";
    let c = parse(&format!("{base}cipher = \"aes128-gcm\"\n")).unwrap();
    assert_eq!(
        c.policy.cipher,
        Some(CipherChoice::Fixed(ContentCipher::Aes128Gcm))
    );
    let c = parse(&format!("{base}cipher = \"auto\"\n")).unwrap();
    assert_eq!(c.policy.cipher, Some(CipherChoice::Auto));
    // AES-192 is read, never written; anything else is refused with the choices.
    for bad in ["aes192-cbc", "des3"] {
        let e = parse(&format!("{base}cipher = \"{bad}\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(bad)
                && e.contains("aes128-cbc, aes256-cbc, aes128-gcm, aes256-gcm")
                && e.contains("auto"),
            "{e}"
        );
    }
}
