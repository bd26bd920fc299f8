//! An external correspondent for inbound tests: a foreign root made with OpenSSL that the
//! gateway cross-certifies for `partner.test`, and bob@partner.test signing with a certificate
//! it issued (ECDSA P-256, usable for ECDH too, so a valid signature makes it harvestable).
#![allow(dead_code)]

use std::path::PathBuf;

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
    openssl_ok(
        d,
        &[
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "bob.key", "-out", "bob.csr", "-subj", "/CN=Bob",
        ],
    );
    std::fs::write(
        d.join("bob.ext"),
        "keyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=emailProtection\nsubjectAltName=email:bob@partner.test\n",
    )
    .unwrap();
    openssl_ok(
        d,
        &[
            "x509", "-req", "-in", "bob.csr", "-CA", "partner-root.pem", "-CAkey",
            "partner-root.key", "-CAcreateserial", "-days", "20", "-extfile", "bob.ext", "-out",
            "bob.pem",
        ],
    );
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

impl Partner {
    /// A detached-signed message from bob@partner.test to `to`, made by `openssl cms -sign`.
    #[rustfmt::skip]
    pub fn signed(&self, gw: &Gw, to: &str, subject: &str, body: &str) -> Vec<u8> {
        let d = gw.dir.path();
        let name = format!("in-{}.txt", subject.replace(' ', "_"));
        let out = format!("signed-{}.eml", subject.replace(' ', "_"));
        std::fs::write(
            d.join(&name),
            format!("Content-Type: text/plain\r\n\r\n{body}\r\n"),
        )
        .unwrap();
        openssl_ok(
            d,
            &[
                "cms", "-sign", "-in", &name, "-signer", self.cert.to_str().unwrap(), "-inkey",
                self.key.to_str().unwrap(), "-from", "bob@partner.test", "-to", to, "-subject",
                subject, "-out", &out,
            ],
        );
        std::fs::read(d.join(out)).unwrap()
    }
}
