//! Notices by mail, end to end: `smimegw serve` with `[notify]` sends each notice once, signed
//! with its own certificate, through the next hop (a capturing sink), across a restart.

mod common;

use common::smtp::{Received, Sink};
use common::{Gw, openssl};

/// The message's header, unfolded lines.
fn header(m: &Received) -> String {
    let text = String::from_utf8_lossy(&m.data).into_owned();
    text.split("\r\n\r\n").next().unwrap().to_string()
}

fn subject(m: &Received) -> String {
    header(m)
        .lines()
        .find(|l| l.starts_with("Subject:"))
        .unwrap_or_default()
        .to_string()
}

/// Verifies the notice's signature with OpenSSL against our CA; returns the signed content.
fn verified(gw: &Gw, m: &Received, n: usize) -> String {
    let (file, out) = (format!("notice{n}.eml"), format!("notice{n}.txt"));
    std::fs::write(gw.path(&file), &m.data).unwrap();
    let ca = gw.path("ca.pem");
    let (ok, why) = openssl(
        gw.dir.path(),
        &[
            "cms",
            "-verify",
            "-in",
            &file,
            "-CAfile",
            ca.to_str().unwrap(),
            "-out",
            &out,
        ],
    );
    assert!(ok, "notice {n} ({}) does not verify: {why}", subject(m));
    std::fs::read_to_string(gw.path(&out)).unwrap()
}

fn wait_exactly(sink: &Sink, n: usize) -> Vec<Received> {
    let got = sink.wait_for(n);
    // Give a second pass (the one after renewal) time to send anything it should not.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let got2 = sink.messages();
    assert_eq!(
        got2.len(),
        n,
        "expected {n} notices, got {}: {:#?}",
        got2.len(),
        got2.iter()
            .map(|m| (m.rcpts.clone(), subject(m)))
            .collect::<Vec<_>>()
    );
    assert!(got.len() <= n);
    got2
}

fn to(msgs: &[Received], rcpt: &str) -> Vec<Received> {
    msgs.iter()
        .filter(|m| m.rcpts == [rcpt.to_string()])
        .cloned()
        .collect()
}

/// Users whose certificates expire (one the gateway renews, one from a CSR), requesters whose
/// requests were decided, and the administrators' digest each get one signed notice; a restart
/// sends nothing twice, and decisions made meanwhile are announced at the next pass. A display
/// name carrying CR LF, put into the Subject by a template, adds no header field.
#[test]
fn serve_sends_each_notice_once_signed_through_the_next_hop() {
    let sink = Sink::start();
    let port = common::smtp::free_port();
    let gw = Gw::with_config(&format!(
        "[listen]\naddress = \"127.0.0.1:{port}\"\n[relay]\nnext_hop = \"{}\"\n[notify]\nenabled = true\nadmins = [\"admin@acme.test\"]\ndays = [30, 7, 1]\n",
        sink.addr
    ));
    gw.init_ca();
    std::fs::create_dir(gw.path("notices")).unwrap();
    std::fs::write(
        gw.path("notices/renewed.txt"),
        "Subject: Renewed for {user} <{email}>\n\nHello {user}, serial {serial} until {not_after}.\n{what_to_do}\n",
    )
    .unwrap();
    for (email, name) in [
        ("soon@acme.test", "Soon"),
        ("mallory@acme.test", "Mallory\r\nBcc: victim@evil.test"),
    ] {
        gw.enroll_for_days(email, name, 10);
    }
    let id = gw.submit_csr("csr@acme.test", "CSR User");
    gw.ok(&["request", "approve", &id, "--days", "5"]);

    let mut serve = gw.serve_on(port);
    let msgs = wait_exactly(&sink, 5);
    for (n, m) in msgs.iter().enumerate() {
        assert_eq!(m.from, "postmaster@acme.test", "envelope sender");
        let h = header(m);
        assert!(h.contains("From: smimegw <postmaster@acme.test>"), "{h}");
        assert!(
            !h.lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
            "an injected header field: {h}"
        );
        verified(&gw, m, n);
    }
    // The gateway-held certificate was renewed and announced with the new certificates.
    let soon = to(&msgs, "soon@acme.test");
    assert_eq!(soon.len(), 1);
    assert!(
        subject(&soon[0]).contains("Renewed for Soon"),
        "{}",
        subject(&soon[0])
    );
    let text = verified(&gw, &soon[0], 10);
    assert_eq!(text.matches("application/pkix-cert").count(), 2, "{text}");
    let serials = gw.ok(&["user", "show", "soon@acme.test", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&serials).unwrap();
    let current = v["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["state"] == "current")
        .map(|c| c["serial"].as_str().unwrap().to_string())
        .collect::<Vec<_>>();
    assert!(
        current.iter().all(|s| text.contains(s)),
        "{current:?} in {text}"
    );
    // The display name with CR LF was left out of the Subject, and kept on one line in the body.
    let mallory = to(&msgs, "mallory@acme.test");
    assert_eq!(mallory.len(), 1);
    assert_eq!(
        subject(&mallory[0]),
        "Subject: Renewed for <mallory@acme.test>"
    );
    let text = verified(&gw, &mallory[0], 11);
    assert!(
        text.contains("Hello Mallory Bcc: victim@evil.test, serial"),
        "{text}"
    );
    // The CSR user: the approval (certificate attached) and the 7-day warning, saying what to do.
    let csr = to(&msgs, "csr@acme.test");
    assert_eq!(csr.len(), 2);
    let approved = csr
        .iter()
        .find(|m| subject(m).contains("approved"))
        .expect("approval notice");
    let text = verified(&gw, approved, 12);
    assert!(
        text.contains(&id) && text.contains("application/pkix-cert"),
        "{text}"
    );
    let warning = csr
        .iter()
        .find(|m| subject(m).contains("expires in 7 days"))
        .expect("expiry notice");
    let text = verified(&gw, warning, 13);
    assert!(
        text.contains("send the request to your mail administrator (admin@acme.test)"),
        "{text}"
    );
    // The digest names what is due.
    let digest = to(&msgs, "admin@acme.test");
    assert_eq!(digest.len(), 1);
    let text = verified(&gw, &digest[0], 14);
    assert!(
        text.contains("csr@acme.test") && text.contains("harvest failures"),
        "{text}"
    );

    // Decisions while serve runs; the next pass (here: the restart's) announces them, and
    // nothing already sent goes again.
    let yes = gw.submit_csr("yes@acme.test", "Yes");
    let no = gw.submit_csr("no@acme.test", "No");
    gw.ok(&["request", "approve", &yes]);
    gw.ok(&["request", "deny", &no, "--reason", "not an employee"]);
    serve.kill9();
    drop(serve);
    let serve = gw.serve_on(port);
    let msgs = wait_exactly(&sink, 7);
    drop(serve);
    let yes_msgs = to(&msgs, "yes@acme.test");
    assert_eq!(yes_msgs.len(), 1);
    let text = verified(&gw, &yes_msgs[0], 20);
    assert!(
        text.contains(&yes) && text.contains("application/pkix-cert"),
        "{text}"
    );
    let no_msgs = to(&msgs, "no@acme.test");
    assert_eq!(no_msgs.len(), 1);
    assert!(subject(&no_msgs[0]).contains("denied"));
    let text = verified(&gw, &no_msgs[0], 21);
    assert!(text.contains("not an employee"), "{text}");
    assert_eq!(to(&msgs, "admin@acme.test").len(), 1, "one digest a day");
    let audit = gw.ok(&["audit"]);
    assert_eq!(audit.matches("notice.sent").count(), 7, "{audit}");
}

/// A next hop that answers 4xx loses nothing: the notices are sent at a later pass (here after a
/// restart), once each.
#[test]
fn notices_refused_with_4xx_are_sent_at_a_later_pass() {
    let sink = Sink::start();
    sink.data_code
        .store(451, std::sync::atomic::Ordering::SeqCst);
    let port = common::smtp::free_port();
    let gw = Gw::with_config(&format!(
        "[listen]\naddress = \"127.0.0.1:{port}\"\n[relay]\nnext_hop = \"{}\"\n[notify]\nenabled = true\nadmins = [\"admin@acme.test\"]\n",
        sink.addr
    ));
    gw.init_ca();
    gw.enroll_for_days("soon@acme.test", "Soon", 10);
    let serve = gw.serve_on(port);
    // Both passes (at start, after the renewal) meet the 451.
    let audit = gw.wait_for_audit("user.renew.auto");
    assert!(audit.contains("user.renew.auto"), "{audit}");
    std::thread::sleep(std::time::Duration::from_secs(2));
    drop(serve);
    assert!(sink.messages().is_empty());
    assert!(!gw.ok(&["audit"]).contains("notice.sent"));
    sink.data_code
        .store(250, std::sync::atomic::Ordering::SeqCst);
    let _serve = gw.serve_on(port);
    let msgs = wait_exactly(&sink, 2);
    assert_eq!(to(&msgs, "soon@acme.test").len(), 1);
    assert_eq!(to(&msgs, "admin@acme.test").len(), 1);
}
