//! Content wrapped by OpenSSL, bytes exactly as given (`-binary`: no CRLF conversion), in the
//! S/MIME layers the gateway takes off on the way in: a sender's bare LF or CR survives to the
//! gateway's output, as it would from any client.
#![allow(dead_code)]

use std::path::Path;

use super::{Gw, openssl_ok};

/// `inner` (a MIME entity) encrypted to the certificate `recip` with AES-256-GCM
/// (AuthEnvelopedData, decrypted whatever the policy on unauthenticated CBC), as a message
/// `from` -> `to`.
#[rustfmt::skip]
pub fn encrypted(gw: &Gw, recip: &Path, inner: &[u8], from: &str, to: &str) -> Vec<u8> {
    let d = gw.dir.path();
    std::fs::write(d.join("wrap-in.txt"), inner).unwrap();
    openssl_ok(d, &[
        "cms", "-encrypt", "-binary", "-aes-256-gcm", "-in", "wrap-in.txt", "-recip",
        recip.to_str().unwrap(), "-outform", "SMIME", "-out", "wrap-out.eml", "-from", from,
        "-to", to, "-subject", "sealed",
    ]);
    std::fs::read(d.join("wrap-out.eml")).unwrap()
}

/// `inner` (a MIME entity) in opaque signed-data (application/pkcs7-mime) from
/// mallory@evil.test, whose self-signed certificate nobody trusts: the gateway unwraps it all
/// the same, which makes this path open to anyone on the Internet.
#[rustfmt::skip]
pub fn opaque_signed_untrusted(gw: &Gw, inner: &[u8], to: &str) -> Vec<u8> {
    let d = gw.dir.path();
    if !d.join("mallory.pem").exists() {
        openssl_ok(d, &[
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "mallory.key", "-out", "mallory.pem", "-days", "2", "-subj",
            "/CN=Mallory", "-addext", "subjectAltName=email:mallory@evil.test",
        ]);
    }
    std::fs::write(d.join("wrap-in.txt"), inner).unwrap();
    openssl_ok(d, &[
        "cms", "-sign", "-nodetach", "-binary", "-in", "wrap-in.txt", "-signer", "mallory.pem",
        "-inkey", "mallory.key", "-outform", "SMIME", "-out", "wrap-out.eml", "-from",
        "mallory@evil.test", "-to", to, "-subject", "opaque",
    ]);
    std::fs::read(d.join("wrap-out.eml")).unwrap()
}
