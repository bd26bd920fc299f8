//! `smimegw doctor` against a healthy installation and broken ones: each problem is named with
//! its fix, and the exit status says whether there were problems (1) or not (0).

mod common;

use std::process::{Command, Output, Stdio};

use common::Gw;
use common::smtp::{Sink, free_port};

fn doctor(gw: &Gw, env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smimegw"));
    cmd.arg("--config")
        .arg(&gw.config)
        .arg("doctor")
        .env_remove("SMIMEGW_DATA_DIR")
        .env_remove("SMIMEGW_CONFIG")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .stdin(Stdio::null());
    // The local Postfix doctor asks about is a private configuration of the test's (an empty
    // main.cf unless the test wrote one), never the machine's.
    let postfix = gw.path("postfix");
    if !postfix.join("main.cf").exists() {
        std::fs::create_dir_all(&postfix).unwrap();
        std::fs::write(postfix.join("main.cf"), "").unwrap();
        std::fs::write(postfix.join("master.cf"), "").unwrap();
    }
    cmd.env("MAIL_CONFIG", &postfix);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o: Output = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap_or(-1), text)
}

/// A gateway with a CA and alice, both listeners, relaying to `next_hop`.
fn installed(next_hop: &str, extra_relay: &str) -> Gw {
    let gw = Gw::with_config(&format!(
        "[submission]\naddress = \"127.0.0.1:10027\"\n[relay]\nnext_hop = \"{next_hop}\"\ntimeout_secs = 5\n{extra_relay}"
    ));
    gw.init_ca();
    gw.enroll("alice@acme.test", "Alice", "p256");
    gw
}

fn line<'a>(out: &'a str, status: &str, check: &str) -> Vec<&'a str> {
    out.lines()
        .filter(|l| {
            l.starts_with(status) && l.get(7..).unwrap_or("").trim_start().starts_with(check)
        })
        .collect()
}

#[test]
fn a_healthy_installation_passes_every_check() {
    let sink = Sink::start();
    let gw = installed(&sink.addr.to_string(), "");
    let (code, out) = doctor(&gw, &[]);
    assert_eq!(code, 0, "{out}");
    for check in [
        "configuration",
        "key-encryption key",
        "directory",
        "CA",
        "certificates",
        "listeners",
        "postfix wiring",
        "next hop",
    ] {
        assert_eq!(line(&out, "ok", check).len(), 1, "{check}: {out}");
    }
    assert!(out.contains("mode 0600"), "{out}");
    assert!(
        out.contains("1 active user(s); no current certificate expires within 30 days"),
        "{out}"
    );
    assert!(
        out.contains("answers SMTP; STARTTLS not offered (relay.starttls = \"off\")"),
        "{out}"
    );
    assert!(out.contains("All checks passed."), "{out}");
}

#[test]
fn an_open_key_file_a_dead_next_hop_and_expiring_users_are_problems_with_fixes() {
    let dead = format!("127.0.0.1:{}", free_port());
    let gw = installed(&dead, "");
    gw.ok(&[
        "user",
        "enroll",
        "bob@acme.test",
        "--name",
        "Bob",
        "--key",
        "p256",
        "--days",
        "10",
    ]);
    let (code, out) = doctor(&gw, &[]);
    assert_eq!(code, 1, "{out}");
    let next_hop = line(&out, "PROBLEM", "next hop");
    assert_eq!(next_hop.len(), 1, "{out}");
    assert!(
        next_hop[0].contains(&dead) && next_hop[0].contains("Connection refused"),
        "{out}"
    );
    assert!(out.contains("or correct relay.next_hop in"), "{out}");
    let expiring = line(&out, "PROBLEM", "certificates");
    assert_eq!(expiring.len(), 2, "bob's two certificates: {out}");
    for role in ["signing", "encryption"] {
        assert!(
            expiring
                .iter()
                .any(|l| l.contains(&format!("bob@acme.test {role} certificate"))
                    && (l.contains("expires in 9 days") || l.contains("expires in 10 days"))),
            "{role}: {out}"
        );
    }
    assert!(
        out.contains("fix: smimegw user renew bob@acme.test"),
        "{out}"
    );
    assert!(!out.contains("alice@acme.test"), "alice is fine: {out}");
    assert!(out.contains("3 problem(s)"), "{out}");

    // The key file readable by others.
    let kek = gw.path("smimegw.kek");
    sh_chmod(&kek, 0o644);
    let (code, out) = doctor(&gw, &[]);
    assert_eq!(code, 1, "{out}");
    let k = line(&out, "PROBLEM", "key-encryption key");
    assert_eq!(k.len(), 1, "{out}");
    assert!(k[0].contains("has mode 0644"), "{out}");
    assert!(
        out.contains(&format!("fix: chmod 600 {}", kek.display())),
        "{out}"
    );
    assert_eq!(
        line(&out, "WARNING", "directory").len(),
        1,
        "not checked without a usable key: {out}"
    );
    sh_chmod(&kek, 0o600);
    let (_, out) = doctor(&gw, &[]);
    assert_eq!(line(&out, "ok", "key-encryption key").len(), 1, "{out}");

    // A configuration that does not load stops there.
    std::fs::write(
        &gw.config,
        "data_dir = \"/x\"\ninternal_domains = [\"acme.test\"]\n[relay]\nnexthop = \"x:1\"\n",
    )
    .unwrap();
    let (code, out) = doctor(&gw, &[]);
    assert_eq!(code, 1, "{out}");
    let c = line(&out, "PROBLEM", "configuration");
    assert!(c.len() == 1 && c[0].contains("nexthop"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok")).count(),
        0,
        "{out}"
    );

    // Usage error.
    let o = gw.run(&["doctor", "--expiring-days", "zero"]);
    assert_eq!(o.status.code(), Some(2));
}

fn sh_chmod(p: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The next hop is another smimegw offering STARTTLS with a certificate for `localhost` from its
/// own CA: doctor reports the certificate problem until that CA is trusted (SSL_CERT_FILE, which
/// the relay's TLS honours too), then STARTTLS works.
#[test]
fn starttls_at_the_next_hop_is_checked_with_the_relays_trust() {
    let sink = Sink::start();
    let (_hop, hop_serve, hop_ca) = common::tls_next_hop(sink.addr);
    let hop_port = hop_serve.addr.port();

    let gw = installed(
        &format!("localhost:{hop_port}"),
        "starttls = \"required\"\n",
    );
    // An empty trust store: nothing vouches for the next hop's CA.
    let empty = gw.path("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let (code, out) = doctor(&gw, &[("SSL_CERT_FILE", empty.to_str().unwrap())]);
    assert_eq!(code, 1, "{out}");
    let n = line(&out, "PROBLEM", "next hop");
    assert_eq!(n.len(), 1, "{out}");
    assert!(
        n[0].contains("offers STARTTLS but the TLS handshake failed")
            && n[0].contains("UnknownIssuer"),
        "names the certificate problem: {out}"
    );
    assert!(
        out.contains("fix: give the next hop a certificate for localhost"),
        "{out}"
    );

    let (code, out) = doctor(&gw, &[("SSL_CERT_FILE", hop_ca.to_str().unwrap())]);
    assert_eq!(code, 0, "{out}");
    let n = line(&out, "ok", "next hop");
    assert!(
        n.len() == 1 && n[0].contains("STARTTLS works and its certificate verifies for localhost"),
        "{out}"
    );
}

/// A global `content_filter` in the local Postfix's main.cf sends port-25 mail and submitted
/// mail through the same filter: a problem, with the per-service fix. No `[submission]` table
/// is a warning: the gateway then signs nothing.
#[test]
fn a_global_content_filter_is_a_problem_and_no_submission_listener_a_warning() {
    common::require("postconf", "postfix");
    let sink = Sink::start();
    let gw = Gw::with_config(&format!(
        "[relay]\nnext_hop = \"{}\"\ntimeout_secs = 5\n",
        sink.addr
    ));
    gw.init_ca();
    let postfix = gw.path("postfix");
    std::fs::create_dir_all(&postfix).unwrap();
    std::fs::write(
        postfix.join("main.cf"),
        "content_filter = smimegw:[127.0.0.1]:10025\n",
    )
    .unwrap();
    std::fs::write(postfix.join("master.cf"), "").unwrap();
    let (code, out) = doctor(&gw, &[]);
    assert_eq!(code, 1, "{out}");
    let problem = line(&out, "PROBLEM", "postfix wiring");
    assert_eq!(problem.len(), 1, "{out}");
    assert!(
        problem[0].contains("global content_filter (smimegw:[127.0.0.1]:10025)"),
        "{out}"
    );
    assert!(out.contains("postconf -X content_filter"), "the fix: {out}");
    let warning = line(&out, "WARNING", "listeners");
    assert_eq!(warning.len(), 1, "{out}");
    assert!(warning[0].contains("signs and encrypts nothing"), "{out}");
}

/// A KEK inside the data directory (where installations before the new default kept it) is
/// still found and used, and doctor warns that a backup of that directory would hold both.
#[test]
fn a_kek_inside_the_data_directory_still_works_and_is_a_warning() {
    let sink = Sink::start();
    let gw = installed(&sink.addr.to_string(), "");
    let (code, out) = doctor(&gw, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        line(&out, "WARNING", "key-encryption key").is_empty(),
        "{out}"
    );
    std::fs::rename(gw.path("smimegw.kek"), gw.data_dir().join("kek")).unwrap();
    let listed = gw.ok(&["user", "list"]);
    assert!(listed.contains("alice@acme.test"), "{listed}");
    let (code, out) = doctor(&gw, &[]);
    assert_eq!(code, 0, "a warning, not a problem: {out}");
    let w = line(&out, "WARNING", "key-encryption key");
    assert_eq!(w.len(), 1, "{out}");
    assert!(w[0].contains("inside the data directory"), "{out}");
    assert!(
        out.contains("smimegw.kek"),
        "the fix names where to move it: {out}"
    );
}
