//! Inbound opening: decrypt and verify layer by layer, write the result header fields
//! (RFC 8601, RFC 7281), and deliver what cannot be opened unchanged with the reason.

use super::*;

impl Gateway {
    /// Our two result fields (`props` built by [`results::property`]), escaped and folded.
    pub(super) fn result_header(&self, result: &str, props: &str, summary: &str) -> Vec<u8> {
        results::fields(&self.authserv_id, result, props, summary)
    }

    /// The message as received (forged results removed), annotated with why it was not opened.
    pub(super) fn unopened(&self, raw: &[u8], rcpts: &[String], why: &str) -> RelayCopy {
        let mut m = self.result_header("permerror", "", &format!("{why}; delivered as received"));
        m.extend_from_slice(raw);
        RelayCopy {
            recipients: rcpts.to_vec(),
            message: m,
            direction: Direction::Inbound,
            action: format!("delivered unopened ({why})"),
            verdict: "permerror".into(),
            kind: ActionKind::Unverified,
        }
    }

    /// Opens an inbound message for its recipients under the transaction's `policy`. `Err`
    /// only when the directory itself is unavailable: delivering the message still encrypted
    /// or unverified would hand the user something worse than the copy the MTA delivers once
    /// the directory is back. `clean` has had our forged fields removed
    /// ([`results::strip_forged`]).
    pub(super) fn open(
        &self,
        clean: &[u8],
        rcpts: &[String],
        limits: &Limits,
        policy: &PolicyConfig,
    ) -> Result<Vec<RelayCopy>, DirectoryError> {
        if let Err(e) = mime::check_limits(clean, limits) {
            return Ok(vec![self.unopened(
                clean,
                rcpts,
                &format!("message exceeds a parsing limit: {e}"),
            )]);
        }
        let entity = parse_entity(clean);
        let inbound = Inbound {
            received: clean,
            limits,
            policy,
        };
        let above = Above::default();
        match message::kind(&entity) {
            SmimeKind::Enveloped => self.open_encrypted(&inbound, clean, rcpts, 0, &above),
            SmimeKind::DetachedSigned | SmimeKind::OpaqueSigned => {
                self.open_signed(&inbound, clean, rcpts, 0, &above)
            }
            SmimeKind::Plain => {
                let mut m = self.result_header("none", "", "not signed, not encrypted");
                m.extend_from_slice(clean);
                Ok(vec![RelayCopy {
                    recipients: rcpts.to_vec(),
                    message: m,
                    direction: Direction::Inbound,
                    action: "annotated".into(),
                    verdict: "none".into(),
                    kind: ActionKind::Annotated,
                }])
            }
        }
    }

    /// One copy for `rcpts`: the innermost layer's result `base` combined with the layers
    /// `above` it ([`verdict::decide`]), and `content` delivered as `[policy]
    /// unauthenticated_cbc` says when it came out of CBC without a passing signature inside.
    pub(super) fn finish(
        &self,
        inbound: &Inbound<'_>,
        rcpts: &[String],
        above: &Above,
        base: Base,
        content: Vec<u8>,
        note: &str,
    ) -> RelayCopy {
        let decrypted = above.cipher.is_some();
        let verified = base.signed.is_some() || above.outer.is_some();
        let mut actions = above.actions.clone();
        if base.signed.is_some() {
            actions.push("verified".into());
        }
        if !note.is_empty() {
            actions.push(note.into());
        }
        let mut f = verdict::decide(above, base);
        let mut kind = match (decrypted, verified) {
            (true, true) => ActionKind::DecryptedVerified,
            (true, false) => ActionKind::Decrypted,
            (false, true) => ActionKind::Verified,
            (false, false) => ActionKind::Annotated,
        };
        let message = match (f.unprotected, inbound.policy.unauthenticated_cbc()) {
            (None, _) | (Some(_), UnauthenticatedCbc::Deliver) => content,
            (Some(_), UnauthenticatedCbc::Annotate) => {
                actions.push("subject tagged".into());
                verdict::tag_subject(&content)
            }
            (Some(c), UnauthenticatedCbc::KeepEncrypted) => {
                drop(content);
                f.summary
                    .push_str("; kept encrypted (unauthenticated_cbc = keep_encrypted): delivered as received");
                actions = vec![format!(
                    "delivered encrypted (content from {c} not integrity-protected)"
                )];
                kind = ActionKind::Undecrypted;
                inbound.received.to_vec()
            }
        };
        let header = self.result_header(&f.result, &f.props, &f.summary);
        let mut m = message;
        m.reserve_exact(header.len());
        m.splice(0..0, header);
        RelayCopy {
            recipients: rcpts.to_vec(),
            message: m,
            direction: Direction::Inbound,
            action: actions.join(", "),
            verdict: f.result,
            kind,
        }
    }

    /// A signed layer whose signature could not be checked (`result` says how), delivered as
    /// it is, unless the layers above say to keep the message encrypted.
    pub(super) fn unverified(
        &self,
        inbound: &Inbound<'_>,
        rcpts: &[String],
        above: &Above,
        result: &str,
        why: String,
        raw: &[u8],
    ) -> RelayCopy {
        let base = Base {
            result: result.into(),
            summary: why,
            ..Base::default()
        };
        let mut c = self.finish(inbound, rcpts, above, base, raw.to_vec(), "");
        if c.kind != ActionKind::Undecrypted {
            c.action = "delivered unverified".into();
            c.kind = ActionKind::Unverified;
        }
        c
    }

    pub(super) fn open_encrypted(
        &self,
        inbound: &Inbound<'_>,
        raw: &[u8],
        rcpts: &[String],
        depth: usize,
        above: &Above,
    ) -> Result<Vec<RelayCopy>, DirectoryError> {
        // Two Content-Type fields or two smime-type parameters: not ours to pick one.
        if let Some(why) = message::ambiguity(&parse_entity(raw)) {
            return Ok(vec![self.unopened(
                raw,
                rcpts,
                &format!("ambiguous S/MIME entity: {why}"),
            )]);
        }
        let limits = inbound.limits;
        // Each recipient gets the plaintext only if one of *their* keys opens it.
        let mut opened: Vec<(Vec<u8>, ContentCipher, Vec<String>)> = Vec::new();
        let mut closed: Vec<String> = Vec::new();
        let mut last_error = String::from("no key held for these recipients");
        for r in rcpts {
            if limits.expired() {
                // The caller answers 451 4.3.0; nothing more is worth computing.
                return Ok(Vec::new());
            }
            let keys: Vec<(Cert, std::sync::Arc<PrivateKey>)> = match self.dir.decryption_keys(r) {
                Ok(k) => k,
                Err(e) if e.is_unavailable() => return Err(e),
                // Not one of ours: nothing to open it with.
                Err(DirectoryError::NoSuchUser(_) | DirectoryError::BadAddress(_)) => Vec::new(),
                Err(e) => {
                    // A damaged record or key: this recipient gets the message as it came,
                    // and the administrator learns why.
                    tracing::error!(recipient = %r, error = %e, "decryption keys unreadable");
                    last_error = format!("the keys of {r} could not be read");
                    Vec::new()
                }
            };
            if keys.is_empty() {
                closed.push(r.clone());
                continue;
            }
            match message::decrypt(raw, &keys) {
                Ok(d) => {
                    // What was inside is the sender's too: no result of ours may come out of it.
                    let m = results::strip_forged_layer(d.message, &self.authserv_id);
                    match opened
                        .iter_mut()
                        .find(|(o, c, _)| *o == m && *c == d.cipher)
                    {
                        Some((_, _, who)) => who.push(r.clone()),
                        None => opened.push((m, d.cipher, vec![r.clone()])),
                    }
                }
                Err(e) => {
                    last_error = e.to_string();
                    closed.push(r.clone());
                }
            }
        }
        let mut copies = Vec::new();
        for (plain, cipher, who) in opened {
            // The plaintext is new input: it gets the same walk as the message did.
            if let Err(e) = mime::check_limits(&plain, limits) {
                copies.push(self.unopened(
                    inbound.received,
                    &who,
                    &format!("decrypted content exceeds a parsing limit: {e}"),
                ));
                continue;
            }
            let below = above.decrypted(cipher);
            let inner = parse_entity(&plain);
            let signed = matches!(
                message::kind(&inner),
                SmimeKind::DetachedSigned | SmimeKind::OpaqueSigned
            );
            if signed && depth + 1 >= limits.cms_layers {
                let why = LimitError::CmsLayers {
                    limit: limits.cms_layers,
                };
                let base = Base {
                    result: "permerror".into(),
                    summary: format!("signature not verified: {why}"),
                    ..Base::default()
                };
                let note = format!("not verified ({why})");
                copies.push(self.finish(inbound, &who, &below, base, plain, &note));
            } else if signed {
                copies.extend(self.open_signed(inbound, &plain, &who, depth + 1, &below)?);
            } else {
                let base = Base {
                    result: "none".into(),
                    summary: "not signed".into(),
                    ..Base::default()
                };
                copies.push(self.finish(inbound, &who, &below, base, plain, ""));
            }
        }
        if !closed.is_empty() {
            let base = Base {
                result: "neutral".into(),
                summary: format!("could not decrypt: {last_error}; delivered as received"),
                ..Base::default()
            };
            let mut c = self.finish(inbound, &closed, above, base, inbound.received.to_vec(), "");
            c.action = format!("delivered encrypted ({last_error})");
            c.kind = ActionKind::Undecrypted;
            copies.push(c);
        }
        Ok(copies)
    }

    /// Verifies a signed message. A signature whose content is encrypted (encrypt-then-sign,
    /// opaque or detached) is verified, then the layer inside is opened too, up to
    /// `limits.cms_layers` layers in all; what the signature then vouches for is
    /// [`verdict::decide`]'s to say.
    pub(super) fn open_signed(
        &self,
        inbound: &Inbound<'_>,
        raw: &[u8],
        rcpts: &[String],
        depth: usize,
        above: &Above,
    ) -> Result<Vec<RelayCopy>, DirectoryError> {
        let limits = inbound.limits;
        if limits.expired() {
            // The caller answers 451 4.3.0.
            return Ok(Vec::new());
        }
        let (generation, ctx) = match self.trust() {
            Ok(c) => c,
            Err(e) if e.is_unavailable() => return Err(e),
            Err(e) => {
                // A damaged trust record: retrying will not mend it, so the message goes on
                // unverified, marked as such, and the log names the record.
                tracing::error!(error = %e, "trust store unreadable; signature not verified");
                let why = format!("trust store unreadable: {e}");
                return Ok(vec![self.unverified(
                    inbound,
                    rcpts,
                    above,
                    "temperror",
                    why,
                    raw,
                )]);
            }
        };
        let trust = TrustInput {
            ctx: &ctx,
            cache: Some(&self.cache),
            generation,
            now: profile::now(),
        };
        match message::verify(raw, &trust, None) {
            Ok(mut v) => {
                let deadline = self.revocation_deadline(Some(limits));
                self.check_revocation(&mut v.reports, &ctx, trust.now, deadline);
                let policy = inbound.policy;
                let (result, props, summary) = summarise_reports(&v.reports, policy);
                for r in &v.reports {
                    if let Some(h) = &r.harvest
                        && verdict::code(r, policy) == "pass"
                    {
                        self.harvest(h, r.signing_time);
                    }
                }
                let signed = Signed::of(&v.reports, policy);
                let mut base = Base {
                    result,
                    props,
                    summary,
                    reasons: verdict::sha1_reason(&v.reports, policy)
                        .into_iter()
                        .collect(),
                    signed: Some(signed.clone()),
                };
                let inner_encrypted =
                    message::kind(&parse_entity(&v.message)) == SmimeKind::Enveloped;
                if inner_encrypted && depth + 1 < limits.cms_layers {
                    // Encrypted inside the signature: open that layer too; the signature
                    // covers the ciphertext only.
                    let below = above.signed_ciphertext(Outer { base, signed });
                    return self.open_encrypted(inbound, &v.message, rcpts, depth + 1, &below);
                }
                if inner_encrypted {
                    let why = LimitError::CmsLayers {
                        limit: limits.cms_layers,
                    };
                    base.summary
                        .push_str(&format!("; encrypted content inside not opened: {why}"));
                    base.reasons.insert(0, verdict::CIPHERTEXT_ONLY.into());
                    if base.result == "pass" {
                        base.result = "neutral".into();
                    }
                }
                // Keep the signed message as it arrived (detached signatures stay verifiable
                // by the recipient's client); opaque ones are unwrapped so any client reads them.
                let content = if v.detached {
                    drop(v.message);
                    raw.to_vec()
                } else {
                    // What was inside is the sender's too: no result of ours may come out of it.
                    results::strip_forged_layer(v.message, &self.authserv_id)
                };
                Ok(vec![self.finish(inbound, rcpts, above, base, content, "")])
            }
            Err(e) => {
                let why = format!("signature could not be read: {e}; delivered as received");
                Ok(vec![self.unverified(
                    inbound,
                    rcpts,
                    above,
                    "permerror",
                    why,
                    raw,
                )])
            }
        }
    }
}

/// What every layer of one inbound message shares.
pub(super) struct Inbound<'a> {
    /// The message as received, forged results removed: what is delivered when no layer is
    /// opened, or when `unauthenticated_cbc = "keep_encrypted"` keeps it closed.
    received: &'a [u8],
    limits: &'a Limits,
    /// The transaction's `[policy]` snapshot (reloadable by SIGHUP).
    policy: &'a PolicyConfig,
}

/// Turns signer reports into an RFC 7281 result, its properties, and a human summary, judged
/// under `policy`: a valid signature over SHA-1 makes the result `neutral` (the signature is
/// intact, but not acceptable here) unless `insecure_sha1_signatures`; any other failure
/// makes it `fail`, with every signer's code in a comment.
pub(super) fn summarise_reports(
    reports: &[SignerReport],
    policy: &PolicyConfig,
) -> (String, String, String) {
    if reports.is_empty() {
        return (
            "none".into(),
            String::new(),
            "signed message without signers".into(),
        );
    }
    let codes: Vec<&str> = reports.iter().map(|r| verdict::code(r, policy)).collect();
    // Not one From mailbox (and nothing worse): permerror, see `message::verify`'s `judge_from`.
    let from_unusable = |r: &SignerReport| matches!(r.verdict, SignerVerdict::FromNotOneMailbox(_));
    let weights: Vec<&str> = reports.iter().map(|r| verdict::weight(r, policy)).collect();
    let result = if codes.iter().all(|c| *c == "pass") {
        "pass".to_string()
    } else if weights.iter().all(|w| *w == "pass" || *w == "neutral") {
        "neutral".to_string()
    } else if reports.iter().all(from_unusable) {
        format!("permerror ({})", codes.join(","))
    } else {
        format!("fail ({})", codes.join(","))
    };
    let first = &reports[0];
    let mut props = Vec::new();
    if let Some(c) = &first.signer {
        // Written only when they can be written faithfully (see `results::property`).
        props.extend(
            c.email_addresses()
                .first()
                .and_then(|e| results::property("body.smime-identifier", e)),
        );
        props.extend(results::property("body.smime-serial", &c.serial_hex()));
        props.extend(results::property("body.smime-issuer", &c.issuer_string()));
    }
    let summary = reports
        .iter()
        .zip(&codes)
        .map(|(r, code)| {
            let who = r
                .signer
                .as_ref()
                .and_then(|c| c.email_addresses().first().cloned())
                .unwrap_or_else(|| "unknown signer".into());
            format!(
                "signature by {who}: {code} ({})",
                verdict::explain(r, policy)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    (result, props.join(" "), summary)
}
