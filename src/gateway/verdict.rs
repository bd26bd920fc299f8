//! What an inbound verdict covers: the layers around the content, the cipher it came out of,
//! and the digest its signature used. Pure: the gateway opens the layers and hands each
//! innermost result here, with what the layers above it said, to get the one result it writes.
//!
//! - Encrypt-then-sign: a signature over ciphertext says nothing about who wrote the plaintext
//!   (anyone can sign a ciphertext they received), so it reads `neutral`, "the signature covers
//!   the ciphertext only", unless the same key also signed the plaintext inside and that
//!   signature passes; then the inner verdict stands.
//! - AES-CBC has no integrity (RFC 5652 section 6.3): content decrypted from it can have been
//!   changed by anyone holding the ciphertext (EFAIL, CVE-2017-17689) unless a signature inside
//!   it passes. AES-GCM (AuthEnvelopedData, RFC 5083) is integrity-protected.
//! - SHA-1 signatures are not `pass` (RFC 8551 section 2.1) unless `insecure_sha1_signatures`.

use crate::config::PolicyConfig;
use crate::smime::enveloped::ContentCipher;
use crate::smime::signed::SignerReport;

/// The reason given when a signature covers only ciphertext.
pub(super) const CIPHERTEXT_ONLY: &str = "the signature covers the ciphertext only";

/// What the reader sees at the start of the Subject with `unauthenticated_cbc = "annotate"`.
pub(super) const SUBJECT_TAG: &str = "[not integrity-protected]";

/// One signature layer, judged under the policy in force.
#[derive(Clone, Debug)]
pub(super) struct Signed {
    /// Every signer passes (an empty SignedData does not).
    pub all_pass: bool,
    /// The signers' public keys (SubjectPublicKeyInfo DER), for "the same signer".
    pub keys: Vec<Vec<u8>>,
}

impl Signed {
    /// The layer as `reports` and the policy make it.
    pub(super) fn of(reports: &[SignerReport], policy: &PolicyConfig) -> Self {
        Self {
            all_pass: !reports.is_empty() && reports.iter().all(|r| code(r, policy) == "pass"),
            keys: reports
                .iter()
                .filter_map(|r| r.signer.as_ref())
                .map(spki_der)
                .collect(),
        }
    }
}

fn spki_der(c: &crate::pki::Cert) -> Vec<u8> {
    use der::Encode;
    c.spki().to_der().unwrap_or_default()
}

/// The result of the innermost layer opened, before the layers above it are considered.
#[derive(Clone, Debug, Default)]
pub(super) struct Base {
    /// The RFC 7281 result, possibly with a comment: `pass`, `fail (bad-signature)`, `none`...
    pub result: String,
    /// Its properties (`body.smime-identifier=...`), or empty.
    pub props: String,
    /// The human summary for `X-Smimegw-Result`.
    pub summary: String,
    /// Reasons for `reason=` (fixed phrases; see [`reason_spec`]).
    pub reasons: Vec<String>,
    /// When this layer is a signature (verified), how it was judged.
    pub signed: Option<Signed>,
}

/// A signature over ciphertext, waiting for what the ciphertext holds.
#[derive(Clone, Debug)]
pub(super) struct Outer {
    /// Its own result, props and summary.
    pub base: Base,
    /// How it was judged.
    pub signed: Signed,
}

/// What the layers above the current one said.
#[derive(Clone, Debug, Default)]
pub(super) struct Above {
    /// Actions so far ("verified", "decrypted"), for the log.
    pub actions: Vec<String>,
    /// Summaries of the layers above, for `X-Smimegw-Result`.
    pub summaries: Vec<String>,
    /// The cipher of the innermost encryption opened so far.
    pub cipher: Option<ContentCipher>,
    /// The nearest signature over ciphertext above, if any.
    pub outer: Option<Outer>,
}

impl Above {
    /// Below a decryption with `cipher`.
    pub(super) fn decrypted(&self, cipher: ContentCipher) -> Self {
        let mut a = self.clone();
        a.actions.push("decrypted".into());
        a.summaries.push("decrypted".into());
        a.cipher = Some(cipher);
        a
    }

    /// Below a signature whose content is ciphertext.
    pub(super) fn signed_ciphertext(&self, outer: Outer) -> Self {
        let mut a = self.clone();
        a.actions.push("verified".into());
        a.summaries.push(outer.base.summary.clone());
        a.outer = Some(outer);
        a
    }
}

/// The one result for a copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Final {
    /// The RFC 7281 result, as written after `smime=`.
    pub result: String,
    /// `reason="..."` then the properties (either may be empty).
    pub props: String,
    /// `X-Smimegw-Result`.
    pub summary: String,
    /// Set when the content came out of a cipher without integrity and no signature inside it
    /// passed: what `unauthenticated_cbc` decides about.
    pub unprotected: Option<ContentCipher>,
}

/// Combines the innermost layer's result with the layers above it.
pub(super) fn decide(above: &Above, base: Base) -> Final {
    let Base {
        mut result,
        mut props,
        summary,
        mut reasons,
        signed,
    } = base;
    let mut summaries = above.summaries.clone();
    if let Some(outer) = &above.outer {
        let same_signer_passes = outer.signed.all_pass
            && !outer.signed.keys.is_empty()
            && signed.as_ref().is_some_and(|s| {
                s.all_pass && outer.signed.keys.iter().all(|k| s.keys.contains(k))
            });
        if same_signer_passes {
            summaries.push("the same key signed the content inside".into());
        } else {
            reasons.insert(0, CIPHERTEXT_ONLY.into());
            summaries.push(CIPHERTEXT_ONLY.into());
            if !outer.signed.all_pass {
                // A failing outer signature is reported as it is: nothing inside can mend it.
                result = outer.base.result.clone();
                props = outer.base.props.clone();
                reasons.extend(outer.base.reasons.iter().cloned());
            } else if result == "pass" || result == "none" {
                result = "neutral".into();
                if signed.is_none() {
                    props = outer.base.props.clone();
                }
            }
        }
    }
    let protected = signed.as_ref().is_some_and(|s| s.all_pass);
    let unprotected = above.cipher.filter(|c| !c.is_aead() && !protected);
    if let Some(c) = unprotected {
        reasons.push(format!(
            "content not integrity-protected ({c} without a valid signature inside)"
        ));
    }
    summaries.push(summary);
    // The reasons the result header gives are said in words in X-Smimegw-Result too.
    for r in &reasons {
        if !summaries.iter().any(|s| s.contains(r.as_str())) {
            summaries.push(r.clone());
        }
    }
    let spec = reason_spec(&reasons);
    let props = match (spec.is_empty(), props.is_empty()) {
        (true, _) => props,
        (false, true) => spec,
        (false, false) => format!("{spec} {props}"),
    };
    Final {
        result,
        props,
        summary: summaries.join("; "),
        unprotected,
    }
}

/// The per-signer code under the policy: the verification's own code, except that a valid
/// signature over SHA-1 is `sha1-not-accepted` unless `insecure_sha1_signatures`.
pub(super) fn code(r: &SignerReport, policy: &PolicyConfig) -> &'static str {
    if r.verdict.is_valid() && r.sha1_used().is_some() && !policy.insecure_sha1_signatures() {
        return "sha1-not-accepted";
    }
    if r.verdict.is_valid() && r.revocation.as_ref().is_some_and(|n| n.withholds_pass()) {
        return "revocation-unknown";
    }
    r.verdict.code()
}

/// How a per-signer code weighs in the message's result: `pass`, `neutral` (intact but not
/// accepted: SHA-1, or an unknown revocation status under `when_unknown = "neutral"`), or
/// `fail`.
pub(super) fn weight(r: &SignerReport, policy: &PolicyConfig) -> &'static str {
    match code(r, policy) {
        "pass" => "pass",
        "sha1-not-accepted" => "neutral",
        "revocation-unknown"
            if r.revocation
                .as_ref()
                .is_some_and(|n| n.when_unknown == crate::config::WhenUnknown::Neutral) =>
        {
            "neutral"
        }
        _ => "fail",
    }
}

/// The per-signer explanation, naming SHA-1 where the SignerInfo used it.
pub(super) fn explain(r: &SignerReport, policy: &PolicyConfig) -> String {
    let mut s = explain_signature(r, policy);
    if r.verdict.is_valid()
        && let Some(n) = &r.revocation
    {
        s.push_str("; ");
        s.push_str(&n.describe());
        if n.withholds_pass() {
            s.push_str(&format!(
                " ([revocation] when_unknown = \"{}\")",
                n.when_unknown.as_str()
            ));
        }
    }
    s
}

fn explain_signature(r: &SignerReport, policy: &PolicyConfig) -> String {
    match (r.sha1_used(), r.verdict.is_valid()) {
        (Some(how), true) if policy.insecure_sha1_signatures() => format!(
            "{}, made with SHA-1 ({how}), accepted by [policy] insecure_sha1_signatures",
            r.verdict
        ),
        (Some(how), true) => format!(
            "the signature is intact but made with SHA-1 ({how}), which RFC 8551 section 2.1 \
             deprecates; [policy] insecure_sha1_signatures = true would accept it"
        ),
        (Some(how), false) => format!("{} (made with SHA-1, {how})", r.verdict),
        (None, _) => r.verdict.to_string(),
    }
}

/// The reason naming SHA-1, when a signer used it (for `reason=`).
pub(super) fn sha1_reason(reports: &[SignerReport], policy: &PolicyConfig) -> Option<String> {
    let how = reports.iter().find_map(|r| r.sha1_used())?;
    Some(if policy.insecure_sha1_signatures() {
        format!("signed with SHA-1 ({how}), accepted by insecure_sha1_signatures")
    } else {
        format!("signed with SHA-1 ({how}), not accepted (RFC 8551 section 2.1)")
    })
}

/// `reason="a; b"` (RFC 8601 section 2.2 reasonspec, a quoted-string), or empty. The phrases
/// are ours, but the quoting does not rely on it: `"` and `\` are escaped, control characters
/// (CR and LF among them) dropped, so the value stays one field.
pub(super) fn reason_spec(reasons: &[String]) -> String {
    if reasons.is_empty() {
        return String::new();
    }
    let mut v = String::from("reason=\"");
    for c in reasons.join("; ").chars() {
        match c {
            '"' | '\\' => {
                v.push('\\');
                v.push(c);
            }
            c if c.is_control() => {}
            c => v.push(c),
        }
    }
    v.push('"');
    v
}

/// Puts [`SUBJECT_TAG`] at the start of every Subject field (or adds one), leaving the rest of
/// each field byte for byte as it came: only our constant is written, so no value from the
/// message is re-encoded and nothing can split the field.
pub(super) fn tag_subject(message: &[u8]) -> Vec<u8> {
    let e = crate::mime::parse_entity(message);
    let mut out = Vec::with_capacity(message.len() + SUBJECT_TAG.len() + 12);
    let mut tagged = false;
    for h in &e.headers {
        if h.is("Subject") {
            let colon = h.raw.iter().position(|b| *b == b':').unwrap_or(h.raw.len());
            let rest = &h.raw[(colon + 1).min(h.raw.len())..];
            let rest = &rest[rest
                .iter()
                .position(|b| *b != b' ' && *b != b'\t')
                .unwrap_or(rest.len())..];
            out.extend_from_slice(format!("Subject: {SUBJECT_TAG} ").as_bytes());
            out.extend_from_slice(rest);
            if rest.is_empty() {
                out.extend_from_slice(b"\r\n");
            }
            tagged = true;
        } else {
            out.extend_from_slice(&h.raw);
        }
    }
    if !tagged {
        out.extend_from_slice(format!("Subject: {SUBJECT_TAG}\r\n").as_bytes());
    }
    out.extend_from_slice(e.separator);
    out.extend_from_slice(e.body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(result: &str, signed: Option<Signed>) -> Base {
        Base {
            result: result.into(),
            summary: "inner".into(),
            signed,
            ..Base::default()
        }
    }

    fn sig(pass: bool, key: &[u8]) -> Signed {
        Signed {
            all_pass: pass,
            keys: vec![key.to_vec()],
        }
    }

    fn outer(pass: bool, key: &[u8]) -> Above {
        Above::default().signed_ciphertext(Outer {
            base: Base {
                result: if pass { "pass" } else { "fail (bad-signature)" }.into(),
                props: "body.smime-identifier=m@x.test".into(),
                summary: "signature by m@x.test".into(),
                reasons: vec![],
                signed: None,
            },
            signed: sig(pass, key),
        })
    }

    #[test]
    fn a_signature_over_ciphertext_is_neutral_unless_the_same_key_signed_inside() {
        let gcm = |a: Above| a.decrypted(ContentCipher::Aes256Gcm);
        let f = decide(&gcm(outer(true, b"m")), base("none", None));
        assert_eq!(f.result, "neutral");
        assert!(
            f.props
                .starts_with(&format!("reason=\"{CIPHERTEXT_ONLY}\"")),
            "{f:?}"
        );
        assert!(f.props.contains("m@x.test"), "{f:?}");
        // Another signer inside: still neutral (the outer signer vouches for nothing inside).
        let f = decide(&gcm(outer(true, b"m")), base("pass", Some(sig(true, b"a"))));
        assert_eq!(f.result, "neutral");
        // The same key inside, passing: the inner verdict stands.
        let f = decide(&gcm(outer(true, b"a")), base("pass", Some(sig(true, b"a"))));
        assert_eq!((f.result.as_str(), f.props.as_str()), ("pass", ""));
        // An inner failure is not softened; an outer failure is reported.
        let f = decide(
            &gcm(outer(true, b"a")),
            base("fail (bad-signature)", Some(sig(false, b"a"))),
        );
        assert_eq!(f.result, "fail (bad-signature)");
        let f = decide(
            &gcm(outer(false, b"a")),
            base("pass", Some(sig(true, b"a"))),
        );
        assert_eq!(f.result, "fail (bad-signature)");
        assert!(f.summary.contains(CIPHERTEXT_ONLY));
    }

    #[test]
    fn cbc_without_a_passing_signature_inside_is_unprotected() {
        let cbc = Above::default().decrypted(ContentCipher::Aes256Cbc);
        let f = decide(&cbc, base("none", None));
        assert_eq!(f.unprotected, Some(ContentCipher::Aes256Cbc));
        assert!(f.props.contains("not integrity-protected"), "{f:?}");
        assert!(f.summary.contains("not integrity-protected"), "{f:?}");
        let f = decide(&cbc, base("fail (bad-signature)", Some(sig(false, b"a"))));
        assert!(f.unprotected.is_some());
        let f = decide(&cbc, base("pass", Some(sig(true, b"a"))));
        assert_eq!((f.unprotected, f.props.as_str()), (None, ""));
        let gcm = Above::default().decrypted(ContentCipher::Aes128Gcm);
        assert_eq!(decide(&gcm, base("none", None)).unprotected, None);
        // The outer signature of encrypt-then-sign is not a signature inside.
        let f = decide(
            &outer(true, b"m").decrypted(ContentCipher::Aes128Cbc),
            base("none", None),
        );
        assert!(f.unprotected.is_some());
        assert!(f.props.contains(CIPHERTEXT_ONLY) && f.props.contains("aes128-cbc"));
    }

    #[test]
    fn an_unknown_revocation_status_weighs_as_when_unknown_says() {
        use crate::config::WhenUnknown;
        use crate::pki::online::{PathRevocation, RevocationNote};
        use crate::smime::signed::SignerReport;
        let report = |status: PathRevocation, when_unknown| SignerReport {
            revocation: Some(RevocationNote {
                status,
                when_unknown,
                at: 0,
            }),
            ..SignerReport::valid()
        };
        let policy = PolicyConfig::default();
        let unknown = || PathRevocation::Unknown {
            why: "CN=x: http://127.0.0.1:1/x.crl: connection refused".into(),
        };
        let r = report(unknown(), WhenUnknown::Pass);
        assert_eq!((code(&r, &policy), weight(&r, &policy)), ("pass", "pass"));
        assert!(explain(&r, &policy).contains("revocation not checked: CN=x"));
        let r = report(unknown(), WhenUnknown::Neutral);
        assert_eq!(
            (code(&r, &policy), weight(&r, &policy)),
            ("revocation-unknown", "neutral")
        );
        let r = report(PathRevocation::Disabled, WhenUnknown::Fail);
        assert_eq!(
            (code(&r, &policy), weight(&r, &policy)),
            ("revocation-unknown", "fail")
        );
        assert!(explain(&r, &policy).contains("when_unknown = \"fail\""));
        let checked = PathRevocation::Checked {
            sources: vec![crate::pki::online::Source::FetchedCrl],
            oldest: Some(-300),
        };
        let r = report(checked, WhenUnknown::Fail);
        assert_eq!(code(&r, &policy), "pass");
        assert!(
            explain(&r, &policy).ends_with("revocation checked (fetched CRL, 5 min old)"),
            "{}",
            explain(&r, &policy)
        );
    }

    #[test]
    fn reasons_are_one_quoted_string_and_the_subject_tag_keeps_the_field_whole() {
        let r = reason_spec(&["a \"b\" \\ c\r\nX-Evil: 1".into()]);
        assert_eq!(r, "reason=\"a \\\"b\\\" \\\\ cX-Evil: 1\"");
        let m = tag_subject(
            b"From: a@b.test\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n more\r\n\r\nbody\r\n",
        );
        assert_eq!(
            m,
            b"From: a@b.test\r\nSubject: [not integrity-protected] =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n more\r\n\r\nbody\r\n"
        );
        let m = tag_subject(b"From: a@b.test\r\n\r\nbody\r\n");
        assert_eq!(
            m,
            b"From: a@b.test\r\nSubject: [not integrity-protected]\r\n\r\nbody\r\n"
        );
    }
}
