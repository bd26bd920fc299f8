//! The directory's guard rails: key-encryption key permissions, a missing or wrong KEK, an
//! incompatible data directory, first start of `serve`, the example configuration and the
//! systemd unit.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::Gw;

#[test]
fn first_ca_init_creates_private_data_dir_and_kek() {
    let gw = Gw::new();
    gw.init_ca();
    let kek = gw.path("smimegw.kek");
    assert_eq!(
        std::fs::metadata(&kek).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(gw.data_dir())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    // No private key is stored in clear: the PKCS #8 header of an EC key never appears.
    let db = std::fs::read(gw.data_dir().join("smimegw.redb")).unwrap();
    assert!(
        !db.windows(7).any(|w| w == b"PRIVATE"),
        "no PEM key in the store"
    );
    let err = gw.fails(&["ca", "init", "--name", "Second"], 2);
    assert!(err.contains("already has a CA"), "{err}");
}

#[test]
fn kek_problems_name_the_path_and_change_nothing() {
    let gw = Gw::new();
    gw.init_ca();
    gw.enroll("a@acme.test", "A", "p256");
    let kek = gw.path("smimegw.kek");
    let before = gw.snapshot();

    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = gw.fails(&["user", "list"], 2);
    assert!(
        err.contains(kek.to_str().unwrap()) && err.contains("chmod 600"),
        "{err}"
    );
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();

    let saved = std::fs::read(&kek).unwrap();
    std::fs::remove_file(&kek).unwrap();
    let err = gw.fails(&["user", "list"], 2);
    assert!(
        err.contains(kek.to_str().unwrap()) && err.contains("restore"),
        "{err}"
    );
    // `ca init` must not mint a fresh KEK for a directory that has sealed keys.
    let err = gw.fails(&["ca", "init"], 2);
    assert!(err.contains("missing"), "{err}");
    assert!(!kek.exists());

    // A different KEK is detected before any key is touched.
    std::fs::write(&kek, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = gw.fails(&["user", "list"], 2);
    assert!(err.contains("does not match"), "{err}");

    std::fs::write(&kek, &saved).unwrap();
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(before, gw.snapshot());
}

#[test]
fn incompatible_data_directory_is_refused() {
    let gw = Gw::new();
    gw.init_ca();
    let db = gw.data_dir().join("smimegw.redb");
    // Not a redb file at all.
    std::fs::write(&db, b"this is not a database").unwrap();
    let err = gw.fails(&["user", "list"], 2);
    assert!(err.contains(db.to_str().unwrap()), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), b"this is not a database");
    // No directory at all.
    let empty = Gw::new();
    let err = empty.fails(&["user", "list"], 2);
    assert!(err.contains("smimegw ca init"), "{err}");
}

#[test]
fn serve_first_start_creates_directory_kek_and_ca() {
    let gw = Gw::with_config("[ca]\nauto_init = true\nname = \"Auto Root\"\nkey = \"p256\"\n");
    let cfg = smimegw::config::Config::load(&gw.config, None).unwrap();
    let dir = smimegw::serve::prepare(&cfg).unwrap();
    assert!(dir.has_ca().unwrap());
    assert!(gw.path("smimegw.kek").exists(), "beside the configuration");
    assert!(
        !gw.data_dir().join("kek").exists(),
        "not in the data directory"
    );
    assert!(
        dir.ca_cert()
            .unwrap()
            .subject_string()
            .contains("Auto Root")
    );
    drop(dir);
    // Second start: same CA, nothing recreated.
    let again = smimegw::serve::prepare(&cfg).unwrap();
    assert!(
        again
            .ca_cert()
            .unwrap()
            .subject_string()
            .contains("Auto Root")
    );
    assert_eq!(
        again
            .audit_log()
            .unwrap()
            .iter()
            .filter(|e| e.action == "ca.init")
            .count(),
        1
    );

    // Without auto_init, serve refuses to start half-configured.
    let plain = Gw::new();
    let cfg = smimegw::config::Config::load(&plain.config, None).unwrap();
    let err = smimegw::serve::prepare(&cfg).unwrap_err().to_string();
    assert!(err.contains("smimegw ca init"), "{err}");
}

#[test]
fn example_config_is_valid_and_documents_every_key() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/smimegw.toml");
    let cfg = smimegw::config::Config::load(&path, None).expect("config/smimegw.toml must load");
    assert!(cfg.ca.auto_init);
    let text = std::fs::read_to_string(&path).unwrap();
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    for key in [
        "data_dir",
        "key_encryption_key_file",
        "internal_domains",
        "authserv_id",
        "address",
        "allowed_clients",
        "max_message_size",
        "tls_cert",
        "tls_key",
        "next_hop",
        "starttls",
        "auto_init",
        "name",
        "key",
        "days",
        "user_days",
        "crl_days",
        "sign",
        "encrypt",
        "enabled",
        "listen",
        "max_command_line",
        "idle_connections",
        "idle_secs",
        "max_mime_depth",
        "max_headers",
        "max_parts",
        "max_header_size",
        "max_cms_layers",
        "max_processing_secs",
        "[submission]",
        "from_mismatch",
        "allowed_hosts",
        "bearer_token_file",
        "renew_before_days",
        "renew_rekey",
        "unauthenticated_cbc",
        "insecure_sha1_signatures",
        "[notify]",
        "from",
        "admins",
    ] {
        assert!(
            text.contains(key),
            "config/smimegw.toml does not mention {key}"
        );
        assert!(
            readme.contains(&format!("`{key}`")),
            "README does not document `{key}`"
        );
    }
    // An unknown key is an error that names it.
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), format!("{text}\n[relay]\nnexthop = \"x:1\"\n")).unwrap();
    assert!(smimegw::config::Config::load(bad.path(), None).is_err());
}

#[test]
fn systemd_unit_passes_systemd_analyze_where_available() {
    let unit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/smimegw.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    for needle in [
        "Type=notify",
        "StateDirectory=smimegw",
        "LoadCredential=kek:",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=",
        "SystemCallFilter=@system-service",
    ] {
        assert!(text.contains(needle), "unit lacks {needle}");
    }
    let have = Command::new("sh")
        .arg("-c")
        .arg("command -v systemd-analyze")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if have {
        let o = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&unit)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        // The binary path does not exist on a build machine; everything else must be clean.
        let problems: Vec<&str> = err
            .lines()
            .filter(|l| !l.contains("/usr/local/bin/smimegw") && !l.trim().is_empty())
            .collect();
        assert!(problems.is_empty(), "systemd-analyze verify: {err}");
    }
}

/// The audit log names the real uid that acted, not what `$USER` or `$LOGNAME` claim.
#[test]
fn the_audit_actor_is_the_real_uid_not_the_environment() {
    let gw = Gw::new();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smimegw"))
        .arg("--config")
        .arg(&gw.config)
        .args(["ca", "init", "--name", "Audit Root", "--key", "p256"])
        .env("USER", "mallory")
        .env("LOGNAME", "mallory")
        .env_remove("SUDO_USER")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let uid = std::process::Command::new("id").arg("-u").output().unwrap();
    let uid = String::from_utf8_lossy(&uid.stdout).trim().to_string();
    let audit = gw.ok(&["audit", "--json"]);
    assert!(audit.contains(&format!("(uid {uid})")), "{audit}");
    assert!(!audit.contains("mallory"), "{audit}");
    // Its chain holds (tampering is tried in `directory::audit_tests`).
    let verified = gw.ok(&["audit", "--verify"]);
    assert!(verified.contains("the chain holds"), "{verified}");
}
