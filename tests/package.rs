//! The Debian package (`scripts/package`), judged by the distribution's own tools: its contents
//! (`dpkg-deb -c`), `lintian` (no errors), and the unpacked binary answering `--version`,
//! `--help` and `doctor` on the packaged configuration. The package is built from the binary
//! this test run built (the release build is `scripts/package` without `--binary`).
//!
//! Needs dpkg-dev, binutils and lintian; scripts/test installs them. A missing tool fails the
//! test, it is never skipped.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn run(program: &str, args: &[&str], dir: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_debian_package_has_its_files_passes_lintian_and_runs_unpacked() {
    common::require("dpkg-deb", "dpkg");
    common::require("dpkg-shlibdeps", "dpkg-dev");
    common::require("strip", "binutils");
    common::require("lintian", "lintian");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let built = run(
        "scripts/package",
        &[
            "--binary",
            env!("CARGO_BIN_EXE_smimegw"),
            "--out",
            out.to_str().unwrap(),
        ],
        root,
    );
    assert!(built.status.success(), "scripts/package: {}", text(&built));
    let deb = String::from_utf8_lossy(&built.stdout).trim().to_string();
    assert!(deb.ends_with(".deb") && Path::new(&deb).exists(), "{deb}");

    // Contents: the binary, the unit, the conffile, a page per command, three completions, the
    // policy documents; nothing under /var (the unit's StateDirectory makes /var/lib/smimegw).
    let listing = text(&run("dpkg-deb", &["-c", &deb], tmp.path()));
    for path in [
        "./usr/bin/smimegw",
        "./lib/systemd/system/smimegw.service",
        "./etc/smimegw/smimegw.toml",
        "./usr/share/man/man1/smimegw.1.gz",
        "./usr/share/man/man1/smimegw-serve.1.gz",
        "./usr/share/man/man1/smimegw-ca-init.1.gz",
        "./usr/share/man/man1/smimegw-ca-revoke.1.gz",
        "./usr/share/man/man1/smimegw-user-enroll.1.gz",
        "./usr/share/man/man1/smimegw-trust-check.1.gz",
        "./usr/share/bash-completion/completions/smimegw",
        "./usr/share/zsh/vendor-completions/_smimegw",
        "./usr/share/fish/vendor_completions.d/smimegw.fish",
        "./usr/share/doc/smimegw/copyright",
        "./usr/share/doc/smimegw/changelog.Debian.gz",
    ] {
        assert!(
            listing.lines().any(|l| l.ends_with(path)),
            "{path} missing:\n{listing}"
        );
    }
    assert!(!listing.contains("./var/"), "{listing}");
    let conffiles = text(&run("dpkg-deb", &["-I", &deb, "conffiles"], tmp.path()));
    assert_eq!(conffiles.trim(), "/etc/smimegw/smimegw.toml");
    let control = text(&run("dpkg-deb", &["-f", &deb, "Depends"], tmp.path()));
    assert!(control.contains("libc6"), "{control}");

    // lintian: no errors (warnings are reported, not fatal).
    let lint = run("lintian", &["--fail-on", "error", &deb], tmp.path());
    assert!(lint.status.success(), "lintian: {}", text(&lint));
    assert!(!text(&lint).contains("\nE: "), "{}", text(&lint));

    // Unpacked: the binary runs, and doctor reads the packaged configuration.
    let unpacked = tmp.path().join("root");
    let x = run(
        "dpkg-deb",
        &["-x", &deb, unpacked.to_str().unwrap()],
        tmp.path(),
    );
    assert!(x.status.success(), "{}", text(&x));
    let bin = unpacked.join("usr/bin/smimegw");
    let bin = bin.to_str().unwrap();
    let version = run(bin, &["--version"], tmp.path());
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("smimegw {}", env!("CARGO_PKG_VERSION"))
    );
    let help = text(&run(bin, &["--help"], tmp.path()));
    for cmd in ["serve", "doctor", "completions", "man"] {
        assert!(help.contains(cmd), "{help}");
    }
    let unit =
        std::fs::read_to_string(unpacked.join("lib/systemd/system/smimegw.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/smimegw "), "{unit}");
    let config = unpacked.join("etc/smimegw/smimegw.toml");
    let config_text = std::fs::read_to_string(&config).unwrap();
    assert!(
        config_text.contains("\ndata_dir = \"/var/lib/smimegw\"\n"),
        "{config_text}"
    );
    // A fresh installation: doctor loads the configuration and names what is missing (no KEK
    // yet) with its fix, exiting 1; nothing crashes. Its data directory is a scratch one.
    let doctor = Command::new(bin)
        .args(["--config", config.to_str().unwrap(), "doctor"])
        .env("SMIMEGW_DATA_DIR", tmp.path().join("data"))
        .env("MAIL_CONFIG", tmp.path())
        .env_remove("SMIMEGW_CONFIG")
        .output()
        .unwrap();
    let report = text(&doctor);
    assert_eq!(doctor.status.code(), Some(1), "{report}");
    assert!(
        report.contains("loads and validates") && report.contains("key-encryption key"),
        "{report}"
    );
    assert!(
        report.contains("smimegw ca init"),
        "the fix is named: {report}"
    );
}

/// `smimegw completions SHELL` and `smimegw man` need no configuration and print what the
/// package installs.
#[test]
fn completions_and_man_pages_come_from_the_command_definitions() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_smimegw");
    let nowhere = tmp.path().join("no-such.toml");
    for (shell, marker) in [
        ("bash", "_smimegw()"),
        ("zsh", "#compdef smimegw"),
        ("fish", "complete -c smimegw"),
    ] {
        let o = Command::new(bin)
            .args(["--config", nowhere.to_str().unwrap(), "completions", shell])
            .output()
            .unwrap();
        assert!(o.status.success(), "{shell}: {}", text(&o));
        let script = String::from_utf8_lossy(&o.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(
            script.contains("issue-server"),
            "{shell}: every command is in it"
        );
    }
    let page = Command::new(bin)
        .args(["--config", nowhere.to_str().unwrap(), "man"])
        .output()
        .unwrap();
    assert!(page.status.success(), "{}", text(&page));
    let roff = String::from_utf8_lossy(&page.stdout);
    assert!(
        roff.starts_with(".ie") || roff.contains(".TH smimegw"),
        "{roff}"
    );
    let dir = tmp.path().join("man");
    let o = Command::new(bin)
        .args(["man", "--out", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let pages = std::fs::read_dir(&dir).unwrap().count();
    assert!(pages > 40, "one page per command: {pages}");
    let user_export = std::fs::read_to_string(dir.join("smimegw-user-export.1")).unwrap();
    assert!(
        user_export.contains("include\\-signing\\-key"),
        "{user_export}"
    );
}
