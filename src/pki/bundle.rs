//! Root program bundles: a PEM file of many certificates, or Mozilla's `certdata.txt` (the
//! source NSS builds its builtin roots module from), read into the roots they trust for S/MIME.
//!
//! `certdata.txt` holds PKCS #11 objects written as attribute lines, binary values in
//! `MULTILINE_OCTAL` blocks (`\060\202...` up to `END`). A certificate object (`CKO_CERTIFICATE`)
//! carries the DER in `CKA_VALUE`; a trust object (`CKO_NSS_TRUST`) says, per purpose, how far
//! the certificate with its `CKA_ISSUER` and `CKA_SERIAL_NUMBER` is trusted. As NSS does, trust
//! objects are matched to certificates by issuer and serial number (both DER), and a root is
//! taken only when `CKA_TRUST_EMAIL_PROTECTION` is `CKT_NSS_TRUSTED_DELEGATOR`: server-only
//! roots (`CKT_NSS_MUST_VERIFY_TRUST`), distrusted ones (`CKT_NSS_NOT_TRUSTED`) and those whose
//! e-mail trust ends at a date (`CKA_NSS_EMAIL_DISTRUST_AFTER`, which would have to be applied
//! per issued certificate) are reported and left out.
//!
//! Everything is parsed before anything is returned, and every error names the line.

use std::collections::HashMap;

use der::Encode;

use crate::pki::cert::Cert;

/// The two formats a bundle comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleFormat {
    /// Concatenated PEM certificates (`/etc/ssl/certs/ca-certificates.crt`, a CA's download).
    Pem,
    /// Mozilla's `certdata.txt`.
    Certdata,
}

impl std::fmt::Display for BundleFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Pem => "PEM bundle",
            Self::Certdata => "certdata.txt",
        })
    }
}

/// One certificate a bundle offers as a root.
#[derive(Debug, Clone)]
pub struct BundleRoot {
    /// The certificate.
    pub cert: Cert,
    /// Line of the file it starts on (1-based).
    pub line: usize,
    /// Its name: `CKA_LABEL` in certdata.txt, the subject otherwise.
    pub label: String,
}

/// A certificate of a certdata.txt that is not taken as an e-mail root, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotTaken {
    /// Line of its certificate object.
    pub line: usize,
    /// `CKA_LABEL`.
    pub label: String,
    /// Why, in words.
    pub reason: NotTakenReason,
}

/// Why a certdata.txt certificate is not an e-mail root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotTakenReason {
    /// Its e-mail trust is `CKT_NSS_NOT_TRUSTED`.
    Distrusted,
    /// Trusted for other purposes only (e-mail trust `CKT_NSS_MUST_VERIFY_TRUST` or unknown).
    NotForEmail,
    /// `CKA_NSS_EMAIL_DISTRUST_AFTER` is set: certificates it issued after a date are not
    /// trusted, which an anchor here cannot express.
    EmailDistrustAfter,
    /// No trust object has its issuer and serial number.
    NoTrustObject,
}

impl std::fmt::Display for NotTakenReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Distrusted => "distrusted (CKT_NSS_NOT_TRUSTED)",
            Self::NotForEmail => "not trusted for e-mail protection",
            Self::EmailDistrustAfter => {
                "e-mail trust ends at a date (CKA_NSS_EMAIL_DISTRUST_AFTER)"
            }
            Self::NoTrustObject => "no trust object matches its issuer and serial number",
        })
    }
}

/// A parsed bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Which format it was.
    pub format: BundleFormat,
    /// The roots it offers, in file order.
    pub roots: Vec<BundleRoot>,
    /// certdata.txt certificates left out (always empty for PEM).
    pub not_taken: Vec<NotTaken>,
}

/// Why a bundle cannot be read: the line and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct BundleError {
    /// 1-based line (0 when the problem is the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

fn err(line: usize, reason: impl Into<String>) -> BundleError {
    BundleError {
        line,
        reason: reason.into(),
    }
}

/// Reads a PEM bundle or a certdata.txt, told apart by content.
pub fn parse(bytes: &[u8]) -> Result<Bundle, BundleError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        err(
            0,
            format!("not text ({e}): a bundle is PEM or certdata.txt"),
        )
    })?;
    if text
        .lines()
        .any(|l| l.trim() == "BEGINDATA" || l.starts_with("CKA_CLASS "))
    {
        parse_certdata(text)
    } else if text.contains("-----BEGIN ") {
        parse_pem(text)
    } else {
        Err(err(
            0,
            "neither PEM certificates nor Mozilla's certdata.txt (a single DER certificate is \
             added with `trust add-root`)",
        ))
    }
}

/// Every `CERTIFICATE` block of a PEM text, with the line it begins on.
pub fn parse_pem(text: &str) -> Result<Bundle, BundleError> {
    let mut roots = Vec::new();
    let mut open: Option<(usize, String, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let l = line.trim();
        match &mut open {
            None => {
                if let Some(rest) = l.strip_prefix("-----BEGIN ") {
                    let label = rest.trim_end_matches('-').to_string();
                    open = Some((n, label, format!("{l}\n")));
                }
            }
            Some((start, label, block)) => {
                block.push_str(l);
                block.push('\n');
                if l.starts_with("-----END ") {
                    let (start, label) = (*start, label.clone());
                    if !matches!(
                        label.as_str(),
                        "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE"
                    ) {
                        return Err(err(
                            start,
                            format!("a '{label}' block; a bundle holds certificates only"),
                        ));
                    }
                    let (_, der) = der::pem::decode_vec(block.as_bytes()).map_err(|e| {
                        err(
                            start,
                            format!("certificate #{}: bad PEM ({e})", roots.len() + 1),
                        )
                    })?;
                    let cert = Cert::from_der_named(&der, "bundle").map_err(|e| {
                        err(
                            start,
                            format!("certificate #{}: {}", roots.len() + 1, cert_reason(&e)),
                        )
                    })?;
                    roots.push(BundleRoot {
                        label: cert.subject_string(),
                        cert,
                        line: start,
                    });
                    open = None;
                }
            }
        }
    }
    if let Some((start, label, _)) = open {
        return Err(err(start, format!("'{label}' block has no END line")));
    }
    if roots.is_empty() {
        return Err(err(0, "no certificate in the file"));
    }
    Ok(Bundle {
        format: BundleFormat::Pem,
        roots,
        not_taken: Vec::new(),
    })
}

fn cert_reason(e: &crate::pki::cert::CertError) -> String {
    match e {
        crate::pki::cert::CertError::Malformed { reason, .. } => {
            format!("not a valid certificate ({reason})")
        }
        other => other.to_string(),
    }
}

/// A value of a certdata.txt attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    /// `CKA_X TYPE WORD` or `CKA_X UTF8 "text"`: the rest of the line after the type.
    Text(String),
    /// `CKA_X MULTILINE_OCTAL` ... `END`.
    Bytes(Vec<u8>),
}

/// One PKCS #11 object: the line of its `CKA_CLASS` and its attributes.
#[derive(Debug, Default)]
struct Object {
    line: usize,
    attrs: HashMap<String, Value>,
}

impl Object {
    fn text(&self, name: &str) -> Option<&str> {
        match self.attrs.get(name)? {
            Value::Text(value) => Some(value),
            Value::Bytes(_) => None,
        }
    }

    fn bytes(&self, name: &str) -> Option<&[u8]> {
        match self.attrs.get(name)? {
            Value::Bytes(b) => Some(b),
            Value::Text(_) => None,
        }
    }

    fn label(&self) -> String {
        self.text("CKA_LABEL")
            .map(|l| l.trim_matches('"').to_string())
            .unwrap_or_else(|| format!("(object at line {})", self.line))
    }
}

/// Decodes one line of `\ooo` escapes.
fn octal_line(line: &str, n: usize, out: &mut Vec<u8>) -> Result<(), BundleError> {
    let mut rest = line.trim();
    while !rest.is_empty() {
        let digits = rest
            .strip_prefix('\\')
            .and_then(|r| r.get(..3))
            .filter(|d| d.bytes().all(|b| (b'0'..=b'7').contains(&b)))
            .ok_or_else(|| {
                err(
                    n,
                    format!(
                        "expected octal escapes such as \\060 in a MULTILINE_OCTAL value, found '{}'",
                        rest.chars().take(12).collect::<String>()
                    ),
                )
            })?;
        let v = u16::from_str_radix(digits, 8).unwrap_or(u16::MAX);
        out.push(u8::try_from(v).map_err(|_| err(n, format!("\\{digits} is not a byte")))?);
        rest = &rest[4..];
    }
    Ok(())
}

/// The objects of a certdata.txt, in file order.
fn objects(text: &str) -> Result<Vec<Object>, BundleError> {
    let mut out: Vec<Object> = Vec::new();
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let mut began = !text.lines().any(|l| l.trim() == "BEGINDATA");
    while let Some((n, line)) = lines.next() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if !began {
            began = l == "BEGINDATA";
            continue;
        }
        let mut words = l.splitn(3, char::is_whitespace);
        let (Some(name), Some(ty)) = (words.next(), words.next()) else {
            return Err(err(
                n,
                format!("expected 'ATTRIBUTE TYPE VALUE', found '{l}'"),
            ));
        };
        if !name.starts_with("CKA_") {
            return Err(err(
                n,
                format!("expected an attribute (CKA_...), found '{name}'"),
            ));
        }
        let value = if ty == "MULTILINE_OCTAL" {
            let mut bytes = Vec::new();
            loop {
                let Some((m, line)) = lines.next() else {
                    return Err(err(
                        n,
                        format!("{name}: MULTILINE_OCTAL value has no END line"),
                    ));
                };
                if line.trim() == "END" {
                    break;
                }
                octal_line(line, m, &mut bytes)?;
            }
            Value::Bytes(bytes)
        } else {
            // Files before NSS 3.14 say NETSCAPE where later ones say NSS.
            Value::Text(
                words
                    .next()
                    .unwrap_or("")
                    .trim()
                    .replace("CKO_NETSCAPE_", "CKO_NSS_")
                    .replace("CKT_NETSCAPE_", "CKT_NSS_"),
            )
        };
        if name == "CKA_CLASS" {
            out.push(Object {
                line: n,
                ..Object::default()
            });
        }
        let Some(obj) = out.last_mut() else {
            return Err(err(n, format!("{name} before the first CKA_CLASS")));
        };
        if obj.attrs.insert(name.to_string(), value).is_some() {
            return Err(err(
                n,
                format!("{name} appears twice in the object of line {}", obj.line),
            ));
        }
    }
    Ok(out)
}

/// (issuer Name DER, serialNumber INTEGER DER): how NSS finds a certificate's trust object.
type IssuerSerial = (Vec<u8>, Vec<u8>);

fn issuer_serial(c: &Cert) -> Option<IssuerSerial> {
    let tbs = c.x509().tbs_certificate();
    Some((
        tbs.issuer().to_der().ok()?,
        tbs.serial_number().to_der().ok()?,
    ))
}

/// Reads a certdata.txt: the certificates whose e-mail trust is `CKT_NSS_TRUSTED_DELEGATOR`.
pub fn parse_certdata(text: &str) -> Result<Bundle, BundleError> {
    let objs = objects(text)?;
    let mut trust: HashMap<IssuerSerial, (usize, String)> = HashMap::new();
    for o in &objs {
        if o.text("CKA_CLASS") != Some("CKO_NSS_TRUST") {
            continue;
        }
        let (Some(issuer), Some(serial)) = (o.bytes("CKA_ISSUER"), o.bytes("CKA_SERIAL_NUMBER"))
        else {
            return Err(err(
                o.line,
                format!(
                    "trust object '{}' lacks a MULTILINE_OCTAL CKA_ISSUER or CKA_SERIAL_NUMBER",
                    o.label()
                ),
            ));
        };
        let email = o
            .text("CKA_TRUST_EMAIL_PROTECTION")
            .unwrap_or("CKT_NSS_TRUST_UNKNOWN")
            .to_string();
        // Two trust objects for one certificate: the distrust wins.
        let key = (issuer.to_vec(), serial.to_vec());
        match trust.get(&key) {
            Some((_, prev)) if prev == "CKT_NSS_NOT_TRUSTED" => {}
            _ => {
                trust.insert(key, (o.line, email));
            }
        }
    }
    let mut roots = Vec::new();
    let mut not_taken = Vec::new();
    for o in &objs {
        if o.text("CKA_CLASS") != Some("CKO_CERTIFICATE") {
            continue;
        }
        let label = o.label();
        let der = o.bytes("CKA_VALUE").ok_or_else(|| {
            err(
                o.line,
                format!("certificate '{label}' has no MULTILINE_OCTAL CKA_VALUE"),
            )
        })?;
        let cert = Cert::from_der_named(der, &label).map_err(|e| {
            err(
                o.line,
                format!("certificate '{label}': {}", cert_reason(&e)),
            )
        })?;
        let reason = match issuer_serial(&cert).and_then(|k| trust.get(&k)) {
            None => Some(NotTakenReason::NoTrustObject),
            Some((_, t)) if t == "CKT_NSS_TRUSTED_DELEGATOR" => {
                // CK_BBOOL CK_FALSE means "no date"; a MULTILINE_OCTAL value is a date.
                o.bytes("CKA_NSS_EMAIL_DISTRUST_AFTER")
                    .map(|_| NotTakenReason::EmailDistrustAfter)
            }
            Some((_, t)) if t == "CKT_NSS_NOT_TRUSTED" => Some(NotTakenReason::Distrusted),
            Some(_) => Some(NotTakenReason::NotForEmail),
        };
        match reason {
            None => roots.push(BundleRoot {
                cert,
                line: o.line,
                label,
            }),
            Some(reason) => not_taken.push(NotTaken {
                line: o.line,
                label,
                reason,
            }),
        }
    }
    if roots.is_empty() && not_taken.is_empty() {
        return Err(err(
            0,
            "no certificate object (CKO_CERTIFICATE) in the file",
        ));
    }
    Ok(Bundle {
        format: BundleFormat::Certdata,
        roots,
        not_taken,
    })
}

/// One certificate for [`write_certdata`]: its label and the `CKT_NSS_...` trust values of its
/// trust object.
#[derive(Debug, Clone, Copy)]
pub struct CertdataEntry<'a> {
    /// `CKA_LABEL`.
    pub label: &'a str,
    /// The certificate.
    pub cert: &'a Cert,
    /// `CKA_TRUST_SERVER_AUTH`, e.g. `CKT_NSS_TRUSTED_DELEGATOR`.
    pub server_auth: &'a str,
    /// `CKA_TRUST_EMAIL_PROTECTION`.
    pub email_protection: &'a str,
}

/// Writes certificates in certdata.txt syntax, each with its trust object, as NSS's
/// `lib/ckfw/builtins/certdata.txt` does: test fixtures in the real format.
pub fn write_certdata(entries: &[CertdataEntry<'_>]) -> String {
    fn octal(out: &mut String, name: &str, bytes: &[u8]) {
        out.push_str(&format!("{name} MULTILINE_OCTAL\n"));
        for chunk in bytes.chunks(16) {
            for b in chunk {
                out.push_str(&format!("\\{b:03o}"));
            }
            out.push('\n');
        }
        out.push_str("END\n");
    }
    let mut s = String::from(
        "# Test fixture in the format of NSS's lib/ckfw/builtins/certdata.txt\n#\nBEGINDATA\n\
         CKA_CLASS CK_OBJECT_CLASS CKO_NSS_BUILTIN_ROOT_LIST\nCKA_TOKEN CK_BBOOL CK_TRUE\n\
         CKA_PRIVATE CK_BBOOL CK_FALSE\nCKA_MODIFIABLE CK_BBOOL CK_FALSE\n\
         CKA_LABEL UTF8 \"Mozilla Builtin Roots\"\n",
    );
    for e in entries {
        let (label, server, email) = (e.label, e.server_auth, e.email_protection);
        let tbs = e.cert.x509().tbs_certificate();
        // A certificate that was parsed re-encodes; an empty value would only fail the match.
        let (issuer, serial) = (
            tbs.issuer().to_der().unwrap_or_default(),
            tbs.serial_number().to_der().unwrap_or_default(),
        );
        s.push_str(&format!(
            "\n#\n# Certificate \"{label}\"\n#\nCKA_CLASS CK_OBJECT_CLASS CKO_CERTIFICATE\n\
             CKA_TOKEN CK_BBOOL CK_TRUE\nCKA_PRIVATE CK_BBOOL CK_FALSE\nCKA_MODIFIABLE CK_BBOOL CK_FALSE\n\
             CKA_LABEL UTF8 \"{label}\"\nCKA_CERTIFICATE_TYPE CK_CERTIFICATE_TYPE CKC_X_509\n"
        ));
        octal(
            &mut s,
            "CKA_SUBJECT",
            &tbs.subject().to_der().unwrap_or_default(),
        );
        s.push_str("CKA_ID UTF8 \"0\"\n");
        octal(&mut s, "CKA_ISSUER", &issuer);
        octal(&mut s, "CKA_SERIAL_NUMBER", &serial);
        octal(&mut s, "CKA_VALUE", e.cert.der());
        s.push_str(
            "CKA_NSS_MOZILLA_CA_POLICY CK_BBOOL CK_TRUE\nCKA_NSS_SERVER_DISTRUST_AFTER CK_BBOOL CK_FALSE\n\
             CKA_NSS_EMAIL_DISTRUST_AFTER CK_BBOOL CK_FALSE\n",
        );
        s.push_str(&format!(
            "\n# Trust for \"{label}\"\nCKA_CLASS CK_OBJECT_CLASS CKO_NSS_TRUST\nCKA_TOKEN CK_BBOOL CK_TRUE\n\
             CKA_PRIVATE CK_BBOOL CK_FALSE\nCKA_MODIFIABLE CK_BBOOL CK_FALSE\nCKA_LABEL UTF8 \"{label}\"\n"
        ));
        octal(&mut s, "CKA_ISSUER", &issuer);
        octal(&mut s, "CKA_SERIAL_NUMBER", &serial);
        s.push_str(&format!(
            "CKA_TRUST_SERVER_AUTH CK_TRUST {server}\nCKA_TRUST_EMAIL_PROTECTION CK_TRUST {email}\n\
             CKA_TRUST_CODE_SIGNING CK_TRUST CKT_NSS_MUST_VERIFY_TRUST\nCKA_TRUST_STEP_UP_APPROVED CK_BBOOL CK_FALSE\n"
        ));
    }
    s
}

#[cfg(test)]
mod tests;
