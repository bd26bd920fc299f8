//! An external correspondent for inbound tests: a foreign root made with OpenSSL that the
//! gateway cross-certifies for `partner.test`, and bob@partner.test signing with a certificate
//! it issued (ECDSA P-256, usable for ECDH too, so a valid signature makes it harvestable).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use super::{Gw, openssl_ok};

/// The partner's files, in the gateway's temp dir.
pub struct Partner {
    pub root: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Creates the partner CA and bob's certificate, and cross-certifies the partner root in `gw`'s
/// directory (the CA must exist).
#[rustfmt::skip]
pub fn setup(gw: &Gw) -> Partner {
    let d = gw.dir.path();
    openssl_ok(
        d,
        &[
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "partner-root.key", "-out", "partner-root.pem", "-days", "30", "-subj",
            "/O=Partner/CN=Partner Root", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    issue(d, "bob", &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    gw.ok(&[
        "trust",
        "cross-certify",
        d.join("partner-root.pem").to_str().unwrap(),
        "--permit-domain",
        "partner.test",
    ]);
    Partner {
        root: d.join("partner-root.pem"),
        cert: d.join("bob.pem"),
        key: d.join("bob.key"),
    }
}

/// `<stem>.pem` for bob@partner.test from the partner root, with a new key `<stem>.key` made by
/// the `openssl req` key arguments `newkey`.
#[rustfmt::skip]
fn issue(d: &Path, stem: &str, newkey: &[&str]) {
    let (key, csr, pem) = (format!("{stem}.key"), format!("{stem}.csr"), format!("{stem}.pem"));
    let mut req = vec!["req", "-new"];
    req.extend_from_slice(newkey);
    req.extend_from_slice(&["-nodes", "-keyout", &key, "-out", &csr, "-subj", "/CN=Bob"]);
    openssl_ok(d, &req);
    if !d.join("bob.ext").exists() {
        std::fs::write(
            d.join("bob.ext"),
            "keyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=emailProtection\nsubjectAltName=email:bob@partner.test\n",
        )
        .unwrap();
    }
    openssl_ok(
        d,
        &[
            "x509", "-req", "-in", &csr, "-CA", "partner-root.pem", "-CAkey", "partner-root.key",
            "-CAcreateserial", "-days", "20", "-extfile", "bob.ext", "-out", &pem,
        ],
    );
}

impl Partner {
    /// Bob again, with an RSA-2048 key and a certificate from the same root.
    pub fn rsa(&self, gw: &Gw) -> Partner {
        let d = gw.dir.path();
        issue(d, "bob-rsa", &["-newkey", "rsa:2048"]);
        Partner {
            root: self.root.clone(),
            cert: d.join("bob-rsa.pem"),
            key: d.join("bob-rsa.key"),
        }
    }

    /// A detached-signed message from bob@partner.test to `to`, made by `openssl cms -sign`.
    pub fn signed(&self, gw: &Gw, to: &str, subject: &str, body: &str) -> Vec<u8> {
        self.signed_with(gw, to, subject, body, &[])
    }

    /// [`Partner::signed`] with more `openssl cms -sign` options (`-md sha1`, say).
    #[rustfmt::skip]
    pub fn signed_with(&self, gw: &Gw, to: &str, subject: &str, body: &str, opts: &[&str]) -> Vec<u8> {
        let d = gw.dir.path();
        let name = format!("in-{}.txt", subject.replace(' ', "_"));
        let out = format!("signed-{}.eml", subject.replace(' ', "_"));
        std::fs::write(
            d.join(&name),
            format!("Content-Type: text/plain\r\n\r\n{body}\r\n"),
        )
        .unwrap();
        let mut args = vec!["cms", "-sign"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&[
            "-in", &name, "-signer", self.cert.to_str().unwrap(), "-inkey",
            self.key.to_str().unwrap(), "-from", "bob@partner.test", "-to", to, "-subject",
            subject, "-out", &out,
        ]);
        openssl_ok(d, &args);
        std::fs::read(d.join(out)).unwrap()
    }
}
