//! `smimegw bench` smoke test: runs without any configuration file or data directory and prints
//! one well-formed JSON object per operation (path validation included) and ceiling. A smoke test, not a timing assertion.

use std::process::Command;

#[test]
fn bench_json_runs_without_config_and_reports_every_op() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-config.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_smimegw"))
        .args(["bench", "--seconds", "1", "--size", "1KiB", "--json"])
        .current_dir(dir.path())
        .env("SMIMEGW_CONFIG", &missing)
        .env_remove("SMIMEGW_DATA_DIR")
        .output()
        .expect("run smimegw");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    assert!(
        stderr.contains("[6/9] decrypt+verify")
            && stderr.contains("[7/9] verify+revocation")
            && stderr.contains("[9/9] path-warm"),
        "progress on stderr: {stderr}"
    );
    assert!(!missing.exists(), "bench must not create a config");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "bench must not create files (data directory)"
    );

    let stdout = String::from_utf8(out.stdout).expect("UTF-8");
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let ops: Vec<&str> = rows.iter().map(|r| r["op"].as_str().unwrap()).collect();
    assert_eq!(
        ops,
        [
            "sign",
            "verify",
            "encrypt",
            "decrypt",
            "sign+encrypt",
            "decrypt+verify",
            "verify+revocation",
            "path-cold",
            "path-warm",
            "ceiling-rsa-private",
            "ceiling-aes256-gcm",
            "ceiling-aes256-cbc",
            "ceiling-aes256-cbc-decrypt",
        ]
    );
    for r in &rows {
        let op = r["op"].as_str().unwrap();
        let msgs = r["msgs_per_s"].as_f64().unwrap();
        assert!(msgs > 0.0, "{r}");
        if op.starts_with("path-") {
            assert_eq!(r["size"].as_u64(), Some(0), "{r}");
            assert_eq!(r["key"].as_str(), Some("rsa2048"), "{r}");
            assert!(r["mb_per_s"].is_null(), "{r}");
            continue;
        }
        if op.starts_with("ceiling-") {
            if op.contains("aes") {
                assert!(r["mb_per_s"].as_f64().unwrap() > 0.0, "{r}");
            }
            continue;
        }
        assert_eq!(r["size"].as_u64(), Some(1024), "{r}");
        assert_eq!(r["key"].as_str(), Some("rsa2048"), "{r}");
        assert_eq!(r["recipients"].as_u64(), Some(1), "{r}");
        assert!(r["mb_per_s"].as_f64().unwrap() > 0.0, "{r}");
    }
}
