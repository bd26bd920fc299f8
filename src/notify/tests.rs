//! A notice pass against a scratch directory, with the next hop played by a closure.

use super::*;
use crate::directory::{EnrollOptions, NoticeState};
use crate::pki::keys::KeyAlgorithm;

fn enroll(dir: &Directory, email: &str, days: u32) {
    dir.enroll(
        email,
        &EnrollOptions {
            display_name: "Bob".into(),
            single: false,
            key: KeyAlgorithm::P256,
            days,
        },
    )
    .unwrap();
}

/// With automatic renewal off, a certificate the gateway holds gets the warning of the smallest
/// threshold it is within, signed by the service identity, once; the digest goes once a day.
/// A 4xx from the next hop leaves the notice for the next pass; a 5xx ends it.
#[test]
fn a_pass_sends_each_notice_once_and_retries_after_a_4xx() {
    let (_tmp, _config, dir) = crate::gateway::tests::scratch(
        "[ca]\nrenew_before_days = 0\n[notify]\nenabled = true\nadmins = [\"boss@acme.test\"]\ndays = [30, 7, 1]\n",
    );
    enroll(&dir, "bob@acme.test", 5);
    let mut got: Vec<(String, Vec<String>, Vec<u8>)> = Vec::new();
    let mut answer = RelayOutcome::Temporary("451 later".into());
    let pass = |answer: &RelayOutcome, got: &mut Vec<_>| {
        let mut send = |f: &str, t: &[String], m: &[u8]| {
            got.push((f.to_string(), t.to_vec(), m.to_vec()));
            answer.clone()
        };
        run(&dir, "node", 3, &mut send).unwrap().unwrap()
    };
    let r = pass(&answer, &mut got);
    assert_eq!(r.retry.len(), 2, "{r:?}");
    assert_eq!(got.len(), 2);
    answer = RelayOutcome::Accepted;
    got.clear();
    let r = pass(&answer, &mut got);
    assert_eq!(r.sent.len(), 2, "{r:?}");
    let warning = got
        .iter()
        .find(|(_, to, _)| to == &["bob@acme.test".to_string()])
        .expect("bob's warning");
    assert_eq!(warning.0, "postmaster@acme.test");
    let text = String::from_utf8_lossy(&warning.2);
    assert!(text.contains("multipart/signed"), "{text}");
    assert!(
        text.contains("Subject: Your S/MIME certificate expires in 7 days"),
        "{text}"
    );
    assert!(text.contains("Auto-Submitted: auto-generated"), "{text}");
    let digest = got
        .iter()
        .find(|(_, to, _)| to == &["boss@acme.test".to_string()])
        .expect("the digest");
    let text = String::from_utf8_lossy(&digest.2);
    assert!(
        text.contains("bob@acme.test") && text.contains("since it started: 3"),
        "{text}"
    );
    // The service identity was enrolled once, as a user of its own.
    assert!(dir.user("postmaster@acme.test").is_ok());
    got.clear();
    let r = pass(&answer, &mut got);
    assert!(r.sent.is_empty() && got.is_empty(), "never twice: {r:?}");

    // A 5xx is final.
    enroll(&dir, "carol@acme.test", 2);
    answer = RelayOutcome::Permanent("550 no such user".into());
    let r = pass(&answer, &mut got);
    assert_eq!(r.refused.len(), 1, "{r:?}");
    let key = &r.refused[0].0;
    assert!(matches!(
        dir.notice_state(key).unwrap(),
        Some(NoticeState::Refused { .. })
    ));
    got.clear();
    answer = RelayOutcome::Accepted;
    let r = pass(&answer, &mut got);
    assert!(got.is_empty(), "{r:?}");
}

/// A renewal is announced with the new certificates attached, and only once.
#[test]
fn a_renewal_is_announced_with_the_certificates() {
    let (_tmp, _config, dir) = crate::gateway::tests::scratch("[notify]\nenabled = true\n");
    enroll(&dir, "bob@acme.test", 5);
    dir.renew("bob@acme.test", false, 30).unwrap();
    let mut got = Vec::new();
    let mut send = |_: &str, t: &[String], m: &[u8]| {
        got.push((t.to_vec(), m.to_vec()));
        RelayOutcome::Accepted
    };
    let r = run(&dir, "node", 0, &mut send).unwrap().unwrap();
    let again = run(&dir, "node", 0, &mut send).unwrap().unwrap();
    assert!(again.sent.is_empty(), "{again:?}");
    assert_eq!(r.sent.len(), 1, "no digest without admins: {r:?}");
    assert!(r.sent[0].starts_with("renewed/bob@acme.test/"), "{r:?}");
    let text = String::from_utf8_lossy(&got[0].1);
    assert_eq!(
        text.matches("Content-Type: application/pkix-cert").count(),
        2,
        "{text}"
    );
    assert!(
        text.contains("Subject: Your S/MIME certificate was renewed"),
        "{text}"
    );
}

#[test]
fn subjects_are_folded_or_encoded() {
    assert_eq!(encode_subject("short one"), "short one");
    let long = "word ".repeat(30);
    let enc = encode_subject(long.trim());
    assert!(enc.split("\r\n").all(|l| l.len() <= 78), "{enc}");
    assert_eq!(encode_subject("Grüße"), "=?UTF-8?B?R3LDvMOfZQ==?=");
}
