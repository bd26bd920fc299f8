//! Entry points shared by the cargo-fuzz targets (`fuzz/fuzz_targets/`) and by the regression
//! replay test (`tests/fuzz_regressions.rs`).
//!
//! Each function takes arbitrary bytes, drives one untrusted-input surface of the gateway the way
//! production code does, and must never panic: a panic here is a bug in the library (or a broken
//! invariant asserted below), which is exactly what the fuzzer looks for. Keeping the harness
//! logic in the library means a crash found by libFuzzer replays under plain `cargo test`
//! without nightly or sanitizers.
//!
//! The keys and certificates are fixed (`fuzz/fixture/`, made with OpenSSL, valid for a century)
//! so that seed messages encrypted and signed to them reach the content decryption and
//! signature checks, and so that a finding replays identically in every process.

use std::path::Path;
use std::sync::OnceLock;

use crate::ber;
use crate::config::Config;
use crate::limits::Limits;
use crate::mime;
use crate::pki::Cert;
use crate::pki::cert::pem_blocks;
use crate::pki::csr::Csr;
use crate::pki::keys::PrivateKey;
use crate::pki::path::{self, AnchorKind, Query, TrustAnchor, TrustContext, Usage};
use crate::pki::pkcs12;
use crate::pki::revocation::Crl;
use crate::smime::enveloped;
use crate::smime::message::{self, TrustInput};
use crate::smime::signed;
use crate::smtp::session::{Action, MAX_COMMAND_LINE, Session, SessionConfig};

/// The password of the PKCS #12 seeds (`fuzz/seed` exports them with it).
pub const PKCS12_PASSWORD: &str = "fuzz";

/// Validation time: a fixed instant inside the fixture's validity, so results never depend on
/// the clock.
const NOW: i64 = 1_800_000_000;

/// Addresses the fixture certificates carry.
const SENDER: &str = "sender@fuzz.test";

/// The fixed PKI of the fuzz targets.
struct Fixture {
    ca: Cert,
    /// Encryption keys: RSA (key transport) and P-256 (key agreement).
    keys: Vec<(Cert, PrivateKey)>,
    trust: TrustContext,
}

fn cert(pem: &str) -> Cert {
    let Some((_, der)) = pem_blocks(pem.as_bytes()).into_iter().next() else {
        panic!("fuzz fixture: no PEM block in a built-in certificate");
    };
    match Cert::from_der(&der) {
        Ok(c) => c,
        Err(e) => panic!("fuzz fixture: {e}"),
    }
}

fn key(pem: &str) -> PrivateKey {
    let Some((_, der)) = pem_blocks(pem.as_bytes()).into_iter().next() else {
        panic!("fuzz fixture: no PEM block in a built-in key");
    };
    match PrivateKey::from_pkcs8_der(&der) {
        Ok(k) => k,
        Err(e) => panic!("fuzz fixture: {e}"),
    }
}

/// Built once per process: parsing the keys each run would dominate the fuzzer's time.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let ca = cert(include_str!("../fuzz/fixture/ca.pem"));
        let keys = vec![
            (
                cert(include_str!("../fuzz/fixture/rcpt.pem")),
                key(include_str!("../fuzz/fixture/rcpt.key")),
            ),
            (
                cert(include_str!("../fuzz/fixture/ecrcpt.pem")),
                key(include_str!("../fuzz/fixture/ecrcpt.key")),
            ),
        ];
        let trust = TrustContext {
            anchors: vec![TrustAnchor {
                cert: ca.clone(),
                kind: AnchorKind::OwnRoot,
                label: "fuzz".into(),
            }],
            ..TrustContext::default()
        };
        Fixture { ca, keys, trust }
    })
}

/// The MIME + CMS inbound path: the bytes as a whole message (decrypt, then verify what came
/// out, as the gateway does for inbound mail; and verify directly), then as CMS DER/BER
/// (SignedData and EnvelopedData readers) and through the BER-to-DER normaliser.
pub fn inbound(data: &[u8]) {
    let f = fixture();
    // No chain cache: a cached result would make a finding depend on earlier inputs.
    let trust = TrustInput {
        ctx: &f.trust,
        cache: None,
        generation: 1,
        now: NOW,
    };
    // The limit walk the gateway runs first on every inbound message and decrypted plaintext,
    // also with small limits so that each of them is reached; looser limits never refuse what
    // tighter ones let through.
    let tight = Limits {
        mime_depth: 8,
        headers: 50,
        parts: 64,
        header_size: 1000,
        ..Limits::default()
    };
    if mime::check_limits(data, &tight).is_ok() {
        assert!(
            mime::check_limits(data, &Limits::default()).is_ok(),
            "the default limits refuse what tighter ones accept"
        );
    }
    if let Ok(d) = message::decrypt(data, &f.keys) {
        let _ = mime::check_limits(&d.message, &tight);
        let _ = message::verify(&d.message, &trust, None);
    }
    let _ = message::verify(data, &trust, None);

    if let Ok(der) = ber::to_der(data) {
        // Normalising DER again must be the identity.
        match ber::to_der(&der) {
            Ok(again) => assert_eq!(*again, *der, "BER-to-DER is not idempotent"),
            Err(e) => panic!("BER-to-DER output does not parse again: {e}"),
        }
    }
    let _ = ber::join_segments(data);
    if let Ok(msg) = signed::parse(data) {
        let content = msg.content.clone();
        let detached = if content.is_none() {
            Some(&data[..data.len().min(64)])
        } else {
            None
        };
        let _ = signed::verify(&msg, detached, &f.trust, None, 1, Some(SENDER), NOW);
    }
    let _ = enveloped::recipient_ids(data);
    let _ = enveloped::decrypt(data, &f.keys);
}

/// Certificate, CSR, PKCS #12 (fixed password; the legacy RC2/3DES PBEs are read by the same
/// parser), root bundle (PEM or certdata.txt) and CRL parsing, each tried on the whole input; a parsed certificate is also
/// validated against the fixture CA, and a parsed CRL's signature checked with it.
pub fn pki(data: &[u8]) {
    let f = fixture();
    if let Ok(certs) = crate::pki::cert::parse_certs(data, "fuzz") {
        for c in &certs {
            inspect_cert(c);
        }
        // As `trust check` and signature verification do: the first certificate is the leaf,
        // the others came with it.
        if let Some((leaf, rest)) = certs.split_first() {
            validate_cert(f, leaf, rest);
        }
    }
    if let Ok(c) = Cert::from_der(data) {
        inspect_cert(&c);
        validate_cert(f, &c, &[]);
    }
    if let Ok(csr) = Csr::parse(data, "fuzz") {
        let _ = (csr.email.len(), csr.common_name);
    }
    if let Ok(p12) = pkcs12::parse(data, PKCS12_PASSWORD) {
        inspect_cert(&p12.cert);
        validate_cert(f, &p12.cert, &p12.chain);
        for w in &p12.warnings {
            let _ = w.to_string();
        }
    }
    // A root program's bundle (PEM or certdata.txt), as `trust import-bundle` reads it.
    if let Ok(b) = crate::pki::bundle::parse(data) {
        for r in &b.roots {
            inspect_cert(&r.cert);
        }
        for n in &b.not_taken {
            let _ = n.reason.to_string();
        }
    }
    if let Ok(crl) = Crl::parse(data, "fuzz") {
        let _ = crl.verify_signature(&f.ca);
        let _ = (crl.this_update(), crl.next_update(), crl.crl_number());
        let _ = crl.unusable_reason();
        for e in crl.entries() {
            if let Ok(serial) = hex::decode(&e.serial_hex) {
                let _ = crl.revoked(&serial);
            }
        }
        let _ = crl.is_newer_than(&crl);
        let _ = crl.to_pem();
    }
}

fn inspect_cert(c: &Cert) {
    let _ = (c.subject_string(), c.issuer_string(), c.serial_hex());
    let _ = (c.not_before(), c.not_after(), c.is_self_issued(), c.is_ca());
    let _ = c.check_extensions();
    let _ = (c.key_usage(), c.extended_key_usage(), c.basic_constraints());
    let _ = (c.name_constraints(), c.subject_alt_name());
    let _ = (c.subject_key_id(), c.authority_key_id());
    let _ = (c.email_addresses(), c.common_name(), c.to_pem());
}

fn validate_cert(f: &Fixture, c: &Cert, untrusted: &[Cert]) {
    let email = c.email_addresses().into_iter().next();
    for usage in [Some(Usage::Signing), Some(Usage::Encryption)] {
        let _ = path::validate(
            &f.trust,
            &Query {
                leaf: c,
                untrusted,
                at: NOW,
                email: email.as_deref(),
                usage,
            },
        );
    }
}

/// Limits of the fuzzed SMTP session: small, so the fuzzer reaches them.
const SMTP_MAX_MESSAGE: usize = 16 * 1024;
const SMTP_MAX_RECIPIENTS: usize = 4;

/// Chunk sizes the client's bytes arrive in (TCP segments of every shape).
const CHUNKS: [usize; 8] = [1, 2, 3, 7, 64, 512, 4096, usize::MAX];

/// The SMTP session as the server drives it, with an accept-everything transaction handler and
/// STARTTLS offered (the handshake always succeeds). The first input byte chooses the options
/// (bit 0: require TLS; bit 1: the shortest allowed command line) and the second the chunking; the rest is the client's byte stream.
///
/// Asserted invariants: every reply is well-formed RFC 5321 section 4.2 reply lines; nothing is
/// acted on after a STARTTLS is accepted until the handshake (RFC 3207 section 4.2, the
/// CVE-2011-0411 class); nothing follows a close; transactions respect the size and recipient
/// limits; and the session's buffers stay bounded.
pub fn smtp_session(data: &[u8]) {
    let (opts, rest) = data.split_first().unwrap_or((&0, &[][..]));
    let (chunking, stream) = rest.split_first().unwrap_or((&0, &[][..]));
    // RFC 5321's minimum line length or the default (`listen.max_command_line`).
    let max_line = if opts & 2 == 2 { 512 } else { MAX_COMMAND_LINE };
    let mut s = Session::new(SessionConfig {
        hostname: "fuzz.test".into(),
        max_message_size: SMTP_MAX_MESSAGE,
        max_recipients: SMTP_MAX_RECIPIENTS,
        starttls: true,
        max_errors: 20,
        // Half the runs check recipients: the session then waits for each answer.
        check_recipients: opts & 4 == 4,
        require_tls: opts & 1 == 1,
        max_command_line: max_line,
    });
    check_reply(&s.greeting());
    let mut pos = 0;
    let mut i = 0u32;
    while pos < stream.len() && !s.is_closed() {
        let pick = (u32::from(*chunking)).rotate_right(i.wrapping_mul(3) % 8) as usize & 7;
        let n = CHUNKS[pick].min(stream.len() - pos);
        i += 1;
        let mut queue: std::collections::VecDeque<Action> = s.feed(&stream[pos..pos + n]).into();
        pos += n;
        check_batch(&queue.iter().cloned().collect::<Vec<_>>());
        while let Some(a) = queue.pop_front() {
            match a {
                Action::Send(r) => check_reply(&r),
                Action::Close => {
                    assert!(queue.is_empty(), "actions after Close");
                    assert!(s.is_closed(), "Close without the session closed");
                }
                Action::StartTls => {
                    assert!(
                        queue.is_empty(),
                        "acted on commands pipelined after STARTTLS"
                    );
                    assert!(!s.is_tls(), "STARTTLS accepted twice");
                    s.tls_established();
                    assert!(s.is_tls());
                }
                Action::CheckRecipient { recipient, .. } => {
                    assert!(
                        queue.is_empty(),
                        "actions queued while a recipient is checked"
                    );
                    // Refuse every other recipient, by the length of its address.
                    let refused = (recipient.len() % 2 == 1).then(|| {
                        crate::smtp::reply::Reply::recipient_refusal(
                            &crate::gateway::Refusal::NoCertificate {
                                recipients: vec![recipient.clone()],
                            },
                        )
                    });
                    let more = s.recipient_checked(refused);
                    check_batch(&more);
                    queue.extend(more);
                }
                Action::Process(tx) => {
                    assert!(
                        queue.is_empty(),
                        "actions queued while a transaction is processed"
                    );
                    assert!(
                        tx.message.len() <= SMTP_MAX_MESSAGE,
                        "message over the size limit"
                    );
                    assert!(!tx.rcpt_to.is_empty(), "transaction without recipients");
                    assert!(
                        tx.rcpt_to.len() <= SMTP_MAX_RECIPIENTS,
                        "more recipients than the limit"
                    );
                    let more = s.transaction_done(250, "2.0.0", "queued");
                    check_batch(&more);
                    queue.extend(more);
                }
            }
        }
        assert!(
            s.buffered() <= max_line + SMTP_MAX_MESSAGE,
            "session buffers {} bytes",
            s.buffered()
        );
    }
}

/// Within one batch of actions, StartTls, Close and Process end it.
fn check_batch(actions: &[Action]) {
    for (i, a) in actions.iter().enumerate() {
        if matches!(
            a,
            Action::StartTls | Action::Close | Action::Process(_) | Action::CheckRecipient { .. }
        ) {
            assert_eq!(i + 1, actions.len(), "actions after {a:?}: {actions:?}");
        }
    }
}

/// RFC 5321 section 4.2: `code SP text CRLF`, or `code - text CRLF` for all but the last line,
/// with the same code on every line and no bare CR or LF.
fn check_reply(r: &[u8]) {
    assert!(r.ends_with(b"\r\n"), "reply does not end with CRLF: {r:?}");
    let lines: Vec<&[u8]> = r[..r.len() - 2].split(|&b| b == b'\n').collect();
    let code = &r[..3.min(r.len())];
    assert!(
        code.len() == 3 && code.iter().all(u8::is_ascii_digit) && (b'2'..=b'5').contains(&code[0]),
        "bad reply code: {r:?}"
    );
    for (i, l) in lines.iter().enumerate() {
        let l = if i + 1 < lines.len() {
            l.strip_suffix(b"\r")
                .unwrap_or_else(|| panic!("bare LF in reply: {r:?}"))
        } else {
            l
        };
        assert!(!l.contains(&b'\r'), "bare CR in reply: {r:?}");
        assert!(
            l.len() >= 4 && &l[..3] == code,
            "reply line without the code: {r:?}"
        );
        let sep = if i + 1 == lines.len() { b' ' } else { b'-' };
        assert_eq!(l[3], sep, "bad continuation marker: {r:?}");
    }
}

/// The TOML configuration, with validation, as `smimegw` reads it.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = Config::parse(text, Path::new("fuzz.toml"), None) {
        let _ = (cfg.data_dir(), cfg.kek_path());
        let _ = cfg.is_internal("user@example.com");
    }
}
