//! What an inbound verdict covers, end to end through `smimegw serve` over loopback SMTP, with
//! the attacker's messages made by OpenSSL: a signature around someone else's ciphertext
//! (encrypt-then-sign), AES-CBC content without a signature inside (EFAIL, CVE-2017-17689),
//! and signatures over SHA-1 (RFC 8551 section 2.1).

mod common;

use std::process::Command;
use std::time::Duration;

use common::smtp::{Sink, free_port, send};
use common::{Gw, Serve, openssl_ok, partner};

const AUTHSERV: &str = "gw.acme.test";

struct Setup {
    sink: Sink,
    gw: Gw,
    serve: Serve,
    partner: partner::Partner,
    alice_enc: String,
}

/// A gateway serving acme.test with alice enrolled and bob@partner.test's root cross-certified;
/// `extra` is added to the configuration (top level, before any table).
fn setup(extra: &str) -> Setup {
    let sink = Sink::start();
    let port = free_port();
    let gw = Gw::with_config(&format!(
        "authserv_id = \"{AUTHSERV}\"\n{extra}\n[listen]\naddress = \"127.0.0.1:{port}\"\n\
         [relay]\nnext_hop = \"{}\"\n",
        sink.addr
    ));
    gw.init_ca();
    gw.enroll("alice@acme.test", "Alice", "p256");
    let partner = partner::setup(&gw);
    let alice_enc = gw
        .cert_file("alice@acme.test", "encryption")
        .to_str()
        .unwrap()
        .to_string();
    let serve = gw.serve_on(port);
    Setup {
        sink,
        gw,
        serve,
        partner,
        alice_enc,
    }
}

impl Setup {
    fn dir(&self) -> &std::path::Path {
        self.gw.dir.path()
    }

    fn openssl(&self, args: &[&str]) {
        openssl_ok(self.dir(), args);
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir().join(name), text).unwrap();
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir().join(name)).unwrap()
    }

    /// `openssl cms -encrypt` of the file `input` to alice with `cipher` (`-aes-256-gcm`...),
    /// into `out`.
    fn encrypt(&self, cipher: &str, input: &str, out: &str) {
        self.openssl(&[
            "cms",
            "-encrypt",
            cipher,
            "-in",
            input,
            "-out",
            out,
            &self.alice_enc,
        ]);
    }

    /// Bob's opaque signature (`-nodetach`) around the file `input`, as a message to alice.
    #[rustfmt::skip]
    fn bob_wraps(&self, input: &str, subject: &str) -> Vec<u8> {
        let out = format!("{input}.signed.eml");
        self.openssl(&[
            "cms", "-sign", "-nodetach", "-in", input, "-signer",
            self.partner.cert.to_str().unwrap(), "-inkey", self.partner.key.to_str().unwrap(),
            "-from", "bob@partner.test", "-to", "alice@acme.test", "-subject", subject, "-out",
            &out,
        ]);
        self.read(&out)
    }

    /// Sends `msg` from bob to alice and returns what reached the next hop.
    fn deliver(&self, msg: &[u8]) -> String {
        let before = self.sink.messages().len();
        let (code, text) = send(
            self.serve.addr,
            "bob@partner.test",
            &["alice@acme.test"],
            msg,
        );
        assert_eq!(code, 250, "{text}");
        let got = self.sink.wait_for(before + 1);
        String::from_utf8_lossy(&got[before].data).into_owned()
    }

    /// Rewrites the configuration with `line` added to `[policy]`, sends SIGHUP and waits until
    /// `msg` is treated as `applied` says (bounded).
    fn reload(&self, line: &str, msg: &[u8], applied: impl Fn(&str) -> bool) -> String {
        let path = &self.gw.config;
        let text = std::fs::read_to_string(path).unwrap();
        std::fs::write(path, format!("{text}\n[policy]\n{line}\n")).unwrap();
        let st = Command::new("kill")
            .args(["-HUP", &self.serve.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let mut last = String::new();
        for _ in 0..100 {
            last = self.deliver(msg);
            if applied(&last) {
                return last;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the reload of `{line}` never applied:\n{last}");
    }
}

/// Our Authentication-Results field, unfolded.
fn results(delivered: &str) -> String {
    let start = delivered
        .find(&format!("Authentication-Results: {AUTHSERV};"))
        .expect("our Authentication-Results");
    let end = delivered[start..].find("\r\nX-Smimegw-Result:").unwrap() + start;
    // RFC 5322 unfolding: a line end before white space goes (the gateway folds at spaces).
    delivered[start..end]
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ")
}

/// Before, bob's valid signature around a ciphertext he did not make read `smime=pass
/// body.smime-identifier=bob@partner.test` on top of the decrypted text.
#[test]
fn encrypt_then_sign_reads_neutral_unless_the_same_signer_signed_inside() {
    let s = setup("");
    s.write(
        "inner.txt",
        "Content-Type: text/plain\r\n\r\nWritten by someone else.\r\n",
    );
    // Someone's message to alice (GCM, so only the layering is at issue here), which bob wraps
    // in his own signature.
    let opened = |msg: &[u8]| {
        let out = s.deliver(msg);
        assert!(out.contains("Written by someone else."), "opened: {out}");
        results(&out)
    };
    s.encrypt("-aes-256-gcm", "inner.txt", "enc.p7m");
    let ar = opened(&s.bob_wraps("enc.p7m", "mine now"));
    assert!(
        ar.contains("smime=neutral reason=\"the signature covers the ciphertext only\""),
        "{ar}"
    );
    assert!(!ar.contains("smime=pass"), "{ar}");

    // Bob signed the plaintext too, then encrypted and signed again: his inner verdict stands.
    let (bob, key) = (
        s.partner.cert.to_str().unwrap(),
        s.partner.key.to_str().unwrap(),
    );
    s.openssl(&[
        "cms",
        "-sign",
        "-in",
        "inner.txt",
        "-signer",
        bob,
        "-inkey",
        key,
        "-out",
        "inner.p7s",
    ]);
    s.encrypt("-aes-256-gcm", "inner.p7s", "enc2.p7m");
    let ar = opened(&s.bob_wraps("enc2.p7m", "triple"));
    assert!(ar.contains("smime=pass"), "{ar}");
    assert!(!ar.contains("reason="), "{ar}");
}

/// Before, AES-CBC content without a signature inside was delivered decrypted as `smime=none`:
/// an attacker's CBC gadgets would reach the reader unremarked.
#[test]
fn unsigned_aes_cbc_is_kept_encrypted_by_default_and_annotated_on_request() {
    let s = setup("");
    s.write(
        "inner.txt",
        "Content-Type: text/html\r\n\r\n<p>Malleable.</p>\r\n",
    );
    s.openssl(&[
        "cms",
        "-encrypt",
        "-aes-256-cbc",
        "-in",
        "inner.txt",
        "-from",
        "bob@partner.test",
        "-to",
        "alice@acme.test",
        "-subject",
        "efail",
        "-out",
        "cbc.eml",
        &s.alice_enc,
    ]);
    let msg = s.read("cbc.eml");
    let unprotected =
        "content not integrity-protected (aes256-cbc without a valid signature inside)";
    let out = s.deliver(&msg);
    assert!(!out.contains("Malleable."), "kept encrypted: {out}");
    assert!(out.contains("application/pkcs7-mime"), "{out}");
    assert!(results(&out).contains(unprotected), "{out}");
    assert!(out.contains("X-Smimegw-Result: ") && out.contains("keep_encrypted"));

    // annotate, by SIGHUP: decrypted, and the Subject tells the reader.
    let out = s.reload("unauthenticated_cbc = \"annotate\"", &msg, |o| {
        o.contains("Malleable.")
    });
    assert!(
        out.contains("\nSubject: [not integrity-protected] efail"),
        "{out}"
    );
    assert!(results(&out).contains(unprotected), "{out}");
}

/// Before, an RSA signature over SHA-1 read `smime=pass` (and an ECDSA one `fail
/// (unsupported-algorithm)`).
#[test]
fn sha1_signatures_are_neutral_unless_insecure_sha1_signatures() {
    let s = setup("");
    // Bob with an RSA key beside his ECDSA one, from the same root.
    let rsa = s.partner.rsa(&s.gw);
    let old = |p: &partner::Partner, md: &str| {
        p.signed_with(
            &s.gw,
            "alice@acme.test",
            &format!("old {md}"),
            "From an old client.",
            &["-md", md],
        )
    };
    let rsa_sha1 = old(&rsa, "sha1");
    for msg in [&rsa_sha1, &old(&s.partner, "sha1")] {
        let out = s.deliver(msg);
        let ar = results(&out);
        assert!(
            ar.contains(
                "smime=neutral reason=\"signed with SHA-1 (digestAlgorithm sha-1), not accepted"
            ),
            "{ar}"
        );
        assert!(out.contains("sha1-not-accepted"), "{out}");
    }
    let out = s.deliver(&old(&rsa, "sha256"));
    assert!(results(&out).contains("smime=pass"), "{out}");
    assert!(!results(&out).contains("reason="), "{out}");

    let out = s.reload("insecure_sha1_signatures = true", &rsa_sha1, |o| {
        results(o).contains("smime=pass")
    });
    assert!(
        results(&out).contains("reason=\"signed with SHA-1 (digestAlgorithm sha-1), accepted"),
        "{out}"
    );
}
