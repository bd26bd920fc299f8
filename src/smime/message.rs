//! S/MIME on whole RFC 5322 messages: what the offline commands and the gateway call.
//!
//! Signing and encrypting move the entity (its Content-* headers and body) inside CMS and leave
//! the message headers (From, To, Subject, Date...) outside (RFC 8551 section 3.1). Opening does
//! the reverse and puts the inner entity back exactly as it was signed or encrypted.
//!
//! Only the inner entity's `Content-*` fields ever replace the outer ones. An inner entity that
//! carries other fields as well (Thunderbird's protected headers, or a sender's second `From:`,
//! `Subject:` or `Authentication-Results`) is delivered as the outer header plus
//! `Content-Type: message/rfc822`, whose body is the inner entity as it was: the wrapping RFC 8551
//! section 3.1 describes for protecting header fields. Nothing is lost and nothing inside is
//! lifted to the top, where a reader would take it for the message's own header. When the inner
//! entity is itself S/MIME (a signature inside the encryption), its `Content-*` fields alone come
//! up so that the next layer can be opened; its other fields are covered by no signature and are
//! dropped, and the innermost entity is wrapped as above.
//!
//! An S/MIME entity with two `Content-Type` or `Content-Transfer-Encoding` fields, or a parameter
//! given twice (`boundary`, `protocol`, `smime-type`, RFC 2231 forms included), is refused with
//! [`SmimeError::Ambiguous`]: mail clients disagree on which one counts, so what we verify could
//! differ from what the reader is shown.

use std::borrow::Cow;

use crate::address::{self, FromField};
use crate::limits::{LimitError, Limits};
use crate::mime::{
    self, ContentType, Entity, MimeError, encode_base64_lines, encode_base64_lines_into, encode_qp,
    is_7bit_safe, new_boundary, parse_entity, split_multipart, to_crlf,
};
use crate::pki::Cert;
use crate::pki::keys::{HashAlgorithm, PrivateKey};
use crate::pki::path::{ChainCache, TrustContext};
use crate::smime::enveloped::{self, ContentCipher, Decrypted, EnvelopedError, Recipient};
use crate::smime::signed::{
    self, SignOptions, SignedError, Signer, SignerReport, Verdict as SignerVerdict,
};

/// Why a message could not be signed, encrypted, decrypted or verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmimeError {
    /// The MIME structure is broken.
    #[error("MIME: {0}")]
    Mime(#[from] MimeError),
    /// SignedData could not be built or read.
    #[error("signed data: {0}")]
    Signed(#[from] SignedError),
    /// EnvelopedData could not be built or read.
    #[error(transparent)]
    Enveloped(#[from] EnvelopedError),
    /// The message is not what the operation expects.
    #[error("{0}")]
    NotSmime(String),
    /// An S/MIME entity whose fields or parameters can be read two ways (see [`ambiguity`]).
    #[error("ambiguous S/MIME entity: {0}")]
    Ambiguous(String),
}

/// What kind of S/MIME entity a message is, from its Content-Type (RFC 8551 section 3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmimeKind {
    /// multipart/signed with application/pkcs7-signature.
    DetachedSigned,
    /// application/pkcs7-mime; smime-type=signed-data.
    OpaqueSigned,
    /// application/pkcs7-mime; smime-type=enveloped-data or authEnveloped-data.
    Enveloped,
    /// Not S/MIME.
    Plain,
}

/// Classifies an entity. Legacy `x-pkcs7-*` types and a missing smime-type with a `.p7m` name are
/// recognised too, as mail clients still send them.
///
/// An entity with several Content-Type fields is S/MIME when any of them says so: some reader
/// may take that one, so the entity must reach the checks that refuse it ([`ambiguity`]).
pub fn kind(entity: &Entity<'_>) -> SmimeKind {
    entity
        .headers
        .iter()
        .filter(|h| h.is("Content-Type"))
        .map(|h| kind_of(&ContentType::parse(&h.value())))
        .find(|k| *k != SmimeKind::Plain)
        .unwrap_or(SmimeKind::Plain)
}

fn kind_of(ct: &ContentType) -> SmimeKind {
    let t = ct.mime_type.as_str();
    if t == "multipart/signed" {
        let proto = ct.param("protocol").unwrap_or("").to_ascii_lowercase();
        if proto.ends_with("pkcs7-signature") {
            return SmimeKind::DetachedSigned;
        }
        return SmimeKind::Plain;
    }
    if t == "application/pkcs7-mime" || t == "application/x-pkcs7-mime" {
        let st = ct.param("smime-type").unwrap_or("").to_ascii_lowercase();
        return match st.as_str() {
            "signed-data" => SmimeKind::OpaqueSigned,
            "enveloped-data" | "authenveloped-data" => SmimeKind::Enveloped,
            // No smime-type: RFC 8551 says look at the content; most such messages are
            // encrypted, and the CMS content type decides below.
            _ => SmimeKind::Enveloped,
        };
    }
    SmimeKind::Plain
}

/// Why an S/MIME entity can be read two ways, if it can: a field that must appear at most once
/// (RFC 2045 sections 5 and 6) appears twice, or a Content-Type parameter is given twice (RFC 2045
/// section 5.1; `name`, `name*` and `name*0` of RFC 2231 are one parameter).
pub fn ambiguity(entity: &Entity<'_>) -> Option<String> {
    for name in ["Content-Type", "Content-Transfer-Encoding"] {
        let n = entity.headers.iter().filter(|h| h.is(name)).count();
        if n > 1 {
            return Some(format!("{n} {name} fields"));
        }
    }
    let ct = entity.header("Content-Type")?;
    let mut seen: Vec<String> = Vec::new();
    for (k, _) in ContentType::parse(&ct.value()).params {
        let (base, rest) = k.split_once('*').unwrap_or((&k, ""));
        // RFC 2231 continuations (`name*1`, `name*2`...) are later pieces of one parameter.
        let continuation = rest
            .trim_end_matches('*')
            .parse::<u32>()
            .is_ok_and(|i| i > 0);
        if seen.iter().any(|s| s == base) && !continuation {
            return Some(format!("the {base} parameter is given twice"));
        }
        seen.push(base.to_string());
    }
    None
}

fn unambiguous(entity: &Entity<'_>) -> Result<(), SmimeError> {
    match ambiguity(entity) {
        Some(why) => Err(SmimeError::Ambiguous(why)),
        None => Ok(()),
    }
}

/// The message split into the headers that stay outside and the entity that goes inside: its
/// Content-* headers and blank line (`head`), and its body, borrowed (a large body is copied
/// only where it has to go).
struct Split<'a> {
    outer: Vec<u8>,
    head: Vec<u8>,
    body: &'a [u8],
}

impl Split<'_> {
    /// The inner entity in one piece.
    fn inner(&self) -> Vec<u8> {
        [&self.head[..], self.body].concat()
    }

    /// Whether the inner entity is already in canonical form (CRLF line ends only), so that
    /// [`to_crlf`] would not change it.
    fn is_crlf(&self) -> bool {
        mime::is_crlf(&self.head) && mime::is_crlf(self.body)
    }

    /// Whether the inner entity is 7-bit safe, so that [`make_transport_safe`] would not
    /// change it (the head ends with a line end: no line spans the two pieces).
    fn is_7bit_safe(&self) -> bool {
        is_7bit_safe(&self.head) && is_7bit_safe(self.body)
    }
}

fn split_message(raw: &[u8]) -> Split<'_> {
    let e = parse_entity(raw);
    let mut outer = Vec::new();
    let mut head = Vec::new();
    for h in &e.headers {
        if h.is_content_header() {
            head.extend_from_slice(&h.raw);
        } else if !h.is("MIME-Version") {
            outer.extend_from_slice(&h.raw);
        }
    }
    if e.header("Content-Type").is_none() {
        // RFC 2045 section 5.2 default, made explicit so it survives inside the envelope.
        head.extend_from_slice(b"Content-Type: text/plain; charset=us-ascii\r\n");
    }
    head.extend_from_slice(b"\r\n");
    Split {
        outer: to_crlf(&outer),
        head,
        body: e.body,
    }
}

/// Re-encodes an entity so that no transport can alter it (RFC 8551 section 3.1.2): 8-bit or
/// over-long text becomes quoted-printable, other 8-bit content base64; multiparts are rebuilt
/// only when a part needed it. An entity that is already 7-bit safe is returned as it was.
pub fn make_transport_safe(entity: &[u8]) -> Result<Vec<u8>, SmimeError> {
    transport_safe(entity, &Limits::default(), 0)
}

fn transport_safe(raw: &[u8], limits: &Limits, depth: usize) -> Result<Vec<u8>, SmimeError> {
    if depth > limits.mime_depth {
        return Err(MimeError::from(LimitError::MimeDepth {
            limit: limits.mime_depth,
        })
        .into());
    }
    limits.check_time().map_err(MimeError::from)?;
    if is_7bit_safe(raw) {
        return Ok(raw.to_vec());
    }
    let e = parse_entity(raw);
    let ct = e.content_type();
    let mut out = Vec::new();
    if ct.is_multipart() {
        let boundary = ct
            .param("boundary")
            .ok_or(MimeError::NoBoundary)?
            .to_string();
        let parts = split_multipart(e.body, &boundary)?;
        for h in &e.headers {
            out.extend_from_slice(&h.raw);
        }
        out.extend_from_slice(b"\r\n");
        for p in parts {
            out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            out.extend_from_slice(&transport_safe(p, limits, depth + 1)?);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        return Ok(out);
    }
    let decoded = e.decoded_body()?;
    let (cte, body) = if ct.mime_type.starts_with("text/") {
        ("quoted-printable", encode_qp(&decoded))
    } else {
        ("base64", encode_base64_lines(&decoded))
    };
    for h in e
        .headers
        .iter()
        .filter(|h| !h.is("Content-Transfer-Encoding"))
    {
        out.extend_from_slice(&h.raw);
    }
    out.extend_from_slice(format!("Content-Transfer-Encoding: {cte}\r\n\r\n").as_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// The micalg parameter of `multipart/signed` (RFC 8551 section 3.5.3.2): the digests the
/// signature used, as its SignerInfos name them, each once; several are comma-separated (RFC 1847
/// section 2.1), which makes the value a quoted-string.
fn micalg(digests: &[HashAlgorithm]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for h in digests {
        let name = match h {
            HashAlgorithm::Sha1 => "sha-1",
            HashAlgorithm::Sha256 => "sha-256",
            HashAlgorithm::Sha384 => "sha-384",
            HashAlgorithm::Sha512 => "sha-512",
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    match names.as_slice() {
        [one] => (*one).to_string(),
        many => format!("\"{}\"", many.join(",")),
    }
}

/// Signs a message: multipart/signed with a detached signature (RFC 8551 section 3.5.3), or
/// opaque application/pkcs7-mime signed-data when `opaque`.
///
/// An entity that is already canonical and 7-bit safe (most mail) is written straight into the
/// output and signed there; only one that needs re-encoding is rebuilt first.
pub fn sign(
    raw: &[u8],
    signers: &[Signer<'_>],
    opaque: bool,
    opts: &SignOptions,
) -> Result<Vec<u8>, SmimeError> {
    sign_within(raw, signers, opaque, opts, &Limits::default())
}

/// [`sign`] within `limits`: the MIME walk that makes the content transport-safe stops at
/// `limits.mime_depth` and at the deadline.
pub fn sign_within(
    raw: &[u8],
    signers: &[Signer<'_>],
    opaque: bool,
    opts: &SignOptions,
    limits: &Limits,
) -> Result<Vec<u8>, SmimeError> {
    let split = split_message(raw);
    let rebuilt = if split.is_7bit_safe() && split.is_crlf() {
        limits.check_time().map_err(MimeError::from)?;
        None
    } else {
        Some(to_crlf(&transport_safe(&split.inner(), limits, 0)?))
    };
    let parts: [&[u8]; 2] = match &rebuilt {
        Some(inner) => [inner, &[]],
        None => [&split.head, split.body],
    };
    let inner_len = parts[0].len() + parts[1].len();
    // Room for the signature part: the certificates dominate it; base64 adds a third.
    let certs: usize = signers
        .iter()
        .map(|s| {
            s.cert.der().len()
                + s.chain.iter().map(|c| c.der().len()).sum::<usize>()
                + s.encryption_cert.map_or(0, |c| c.der().len())
                + 1024
        })
        .sum();
    if opaque {
        let inner = parts.concat();
        drop(rebuilt);
        let cms = signed::sign(
            &inner,
            signers,
            &SignOptions {
                detached: false,
                ..opts.clone()
            },
        )?;
        drop(inner);
        let mut head = split.outer;
        head.extend_from_slice(b"MIME-Version: 1.0\r\n");
        head.extend_from_slice(
            b"Content-Type: application/pkcs7-mime; smime-type=signed-data;\r\n name=\"smime.p7m\"\r\n\
              Content-Transfer-Encoding: base64\r\n\
              Content-Disposition: attachment; filename=\"smime.p7m\"\r\n\r\n",
        );
        return Ok(mime::encode_base64_lines_in_place(&head, cms));
    }
    let mut out = Vec::with_capacity(split.outer.len() + inner_len + certs * 3 / 2 + 1024);
    out.extend_from_slice(&split.outer);
    out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    let boundary = new_boundary("smimegw_signed")?;
    // The signed entity goes in first and is signed in place; the header naming the digests
    // (micalg) is put in front of it afterwards, from what the signature actually used.
    let header_at = out.len();
    out.extend_from_slice(parts[0]);
    out.extend_from_slice(parts[1]);
    let signed = signed::sign_reporting(
        &out[header_at..],
        signers,
        &SignOptions {
            detached: true,
            ..opts.clone()
        },
    )?;
    let header = format!(
        "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";\r\n \
         micalg={}; boundary=\"{boundary}\"\r\n\r\n\
         This is an S/MIME signed message\r\n\r\n--{boundary}\r\n",
        micalg(&signed.digests)
    );
    out.splice(header_at..header_at, header.into_bytes());
    let cms = signed.der;
    out.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\n\
             Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n\
             Content-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n"
        )
        .as_bytes(),
    );
    encode_base64_lines_into(&cms, &mut out);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Ok(out)
}

/// Encrypts a message to every recipient (EnvelopedData for CBC, AuthEnvelopedData for GCM,
/// RFC 8551 section 3.3 and RFC 5083).
pub fn encrypt(
    raw: &[u8],
    recipients: &[Recipient<'_>],
    cipher: ContentCipher,
) -> Result<Vec<u8>, SmimeError> {
    encrypt_consuming(Cow::Borrowed(raw), recipients, cipher)
}

/// [`encrypt`] of a message the caller has no further use for (the gateway's freshly signed
/// message): an owned one is freed as soon as it is encrypted, and the base64 text is written
/// over the EnvelopedData's own buffer, so a large message is held at most twice at once
/// (plaintext and ciphertext), never alongside its base64 text as well.
pub fn encrypt_consuming(
    raw: Cow<'_, [u8]>,
    recipients: &[Recipient<'_>],
    cipher: ContentCipher,
) -> Result<Vec<u8>, SmimeError> {
    let (outer, cms) = {
        let split = split_message(&raw);
        let rebuilt = (!split.is_crlf()).then(|| to_crlf(&split.inner()));
        let parts: [&[u8]; 2] = match &rebuilt {
            Some(inner) => [inner, &[]],
            None => [&split.head, split.body],
        };
        let cms = enveloped::encrypt_parts(&parts, recipients, cipher)?;
        (split.outer, cms)
    };
    drop(raw);
    let smime_type = match cipher {
        ContentCipher::Aes128Gcm | ContentCipher::Aes192Gcm | ContentCipher::Aes256Gcm => {
            "authEnveloped-data"
        }
        _ => "enveloped-data",
    };
    let mut head = outer;
    head.extend_from_slice(b"MIME-Version: 1.0\r\n");
    head.extend_from_slice(
        format!(
            "Content-Type: application/pkcs7-mime; smime-type={smime_type};\r\n name=\"smime.p7m\"\r\n\
             Content-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"smime.p7m\"\r\n\r\n"
        )
        .as_bytes(),
    );
    Ok(mime::encode_base64_lines_in_place(&head, cms))
}

/// Rebuilds a message from its outer headers and an inner entity (exactly as it came out of the
/// envelope or signature): the inner `Content-*` fields replace the outer ones, and an inner
/// entity with fields of its own is wrapped as `message/rfc822` (see the module doc).
fn reassemble(raw: &[u8], inner: &[u8]) -> Vec<u8> {
    const WRAPPER: &[u8] = b"Content-Type: message/rfc822\r\n\r\n";
    let e = parse_entity(raw);
    let outer = || {
        e.headers
            .iter()
            .filter(|h| !h.is_content_header() && !h.is("MIME-Version"))
    };
    let ie = parse_entity(inner);
    let own_fields = ie
        .headers
        .iter()
        .any(|h| !h.is_content_header() && !h.is("MIME-Version"));
    let head_len: usize = outer().map(|h| h.raw.len()).sum();
    let mut out = Vec::with_capacity(head_len + 19 + WRAPPER.len() + inner.len());
    for h in outer() {
        out.extend_from_slice(&h.raw);
    }
    out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    if !own_fields {
        out.extend_from_slice(inner);
    } else if kind(&ie) == SmimeKind::Plain {
        out.extend_from_slice(WRAPPER);
        out.extend_from_slice(inner);
    } else {
        for h in ie.headers.iter().filter(|h| h.is_content_header()) {
            out.extend_from_slice(&h.raw);
        }
        out.extend_from_slice(ie.separator);
        out.extend_from_slice(ie.body);
    }
    out
}

/// A decrypted message and how it was decrypted.
#[derive(Debug)]
pub struct DecryptedMessage {
    /// Outer headers plus the decrypted entity.
    pub message: Vec<u8>,
    /// The content cipher used.
    pub cipher: ContentCipher,
    /// Which of the offered keys opened it.
    pub key_index: usize,
}

/// Decrypts an application/pkcs7-mime enveloped message with any of `keys` (current and
/// superseded encryption keys of the recipient).
pub fn decrypt<K: std::borrow::Borrow<PrivateKey>>(
    raw: &[u8],
    keys: &[(Cert, K)],
) -> Result<DecryptedMessage, SmimeError> {
    let e = parse_entity(raw);
    if kind(&e) != SmimeKind::Enveloped {
        return Err(SmimeError::NotSmime(format!(
            "not an encrypted S/MIME message (Content-Type: {})",
            e.content_type().mime_type
        )));
    }
    unambiguous(&e)?;
    let der = mime::decode_base64(e.body)?;
    let Decrypted {
        content,
        cipher,
        key_index,
    } = enveloped::decrypt(&der, keys)?;
    // The ciphertext is spent: not held while the message is rebuilt around the plaintext.
    drop(der);
    Ok(DecryptedMessage {
        message: reassemble(raw, &content),
        cipher,
        key_index,
    })
}

/// A verified message.
#[derive(Debug)]
pub struct VerifiedMessage {
    /// Outer headers plus the signed entity.
    pub message: Vec<u8>,
    /// One report per signer.
    pub reports: Vec<SignerReport>,
    /// Whether the signature was detached (multipart/signed) or opaque.
    pub detached: bool,
}

/// Where trust decisions come from.
pub struct TrustInput<'a> {
    /// Anchors, intermediates, CRLs.
    pub ctx: &'a TrustContext,
    /// Validated-chain cache, if the caller keeps one.
    pub cache: Option<&'a ChainCache>,
    /// Generation of `ctx` for the cache.
    pub generation: u64,
    /// Validation time (unix seconds).
    pub now: i64,
}

/// Verifies a signed message. The From address is matched against the signer certificate
/// (RFC 8550 section 3) unless `from` overrides it; without the override the message must have
/// exactly one From field with exactly one mailbox ([`address::from_field`]), or no signature
/// is valid (see `judge_from`).
pub fn verify(
    raw: &[u8],
    trust: &TrustInput<'_>,
    from: Option<&str>,
) -> Result<VerifiedMessage, SmimeError> {
    let e = parse_entity(raw);
    unambiguous(&e)?;
    let from_field = match from {
        Some(f) => FromField::One(f.trim().to_ascii_lowercase()),
        None => address::from_field(raw),
    };
    let from = from_field.address().map(str::to_string);
    let mut verified = verify_entity(raw, &e, trust, from.as_deref())?;
    judge_from(&mut verified.reports, &from_field);
    Ok(verified)
}

/// A signature vouches for its signer; it vouches for the message's author only when the author
/// is one mailbox the certificate names. With no From field, several, or a field that is not one
/// mailbox (a list, a group, no address), the reader's client shows an author the signature says
/// nothing about, so a signature that is otherwise valid becomes
/// [`SignerVerdict::FromNotOneMailbox`], which the gateway reports as `permerror` (RFC 7281
/// section 3: "could not be verified due to some error that is unrecoverable, such as a required
/// header field being absent"). Nothing is harvested from such a message.
fn judge_from(reports: &mut [SignerReport], from: &FromField) {
    if from.address().is_some() {
        return;
    }
    for r in reports.iter_mut().filter(|r| r.verdict.is_valid()) {
        r.verdict = SignerVerdict::FromNotOneMailbox(from.clone());
        r.harvest = None;
    }
}

fn verify_entity(
    raw: &[u8],
    e: &Entity<'_>,
    trust: &TrustInput<'_>,
    from: Option<&str>,
) -> Result<VerifiedMessage, SmimeError> {
    let from = from.map(str::to_string);
    match kind(e) {
        SmimeKind::DetachedSigned => {
            let ct: ContentType = e.content_type();
            let boundary = ct.param("boundary").ok_or(MimeError::NoBoundary)?;
            let parts = split_multipart(e.body, boundary)?;
            if parts.len() != 2 {
                return Err(MimeError::SignedParts(parts.len()).into());
            }
            let sig_entity = parse_entity(parts[1]);
            unambiguous(&sig_entity)?;
            let sig = sig_entity.decoded_body()?;
            let msg = signed::parse(&sig)?;
            let content = mime::to_crlf_cow(parts[0]);
            let reports = signed::verify(
                &msg,
                Some(&content),
                trust.ctx,
                trust.cache,
                trust.generation,
                from.as_deref(),
                trust.now,
            );
            Ok(VerifiedMessage {
                message: reassemble(raw, parts[0]),
                reports,
                detached: true,
            })
        }
        SmimeKind::OpaqueSigned => {
            let der = mime::decode_base64(e.body)?;
            let msg = signed::parse(&der)?;
            let reports = signed::verify(
                &msg,
                None,
                trust.ctx,
                trust.cache,
                trust.generation,
                from.as_deref(),
                trust.now,
            );
            let content = msg.content.clone().unwrap_or_default();
            Ok(VerifiedMessage {
                message: reassemble(raw, &content),
                reports,
                detached: false,
            })
        }
        _ => Err(SmimeError::NotSmime(format!(
            "not a signed S/MIME message (Content-Type: {})",
            e.content_type().mime_type
        ))),
    }
}
