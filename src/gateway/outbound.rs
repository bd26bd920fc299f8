//! Outbound protection: sign as the From address and encrypt to the recipients' certificates,
//! as the treatment of the group says; what cannot be protected is refused, never sent in clear.

use super::*;

impl Gateway {
    pub(super) fn protect(
        &self,
        raw: &[u8],
        sender: &str,
        rcpts: &[String],
        t: &Treatment,
        config: &Config,
        limits: &Limits,
    ) -> Result<RelayCopy, Decision> {
        let mut notes = Vec::new();
        // Borrowed until a step produces new bytes: a large message is not copied for nothing.
        let mut message = std::borrow::Cow::Borrowed(raw);
        let (mut signed, mut encrypted) = (false, false);

        // Encryption certificates first: a refusal must happen before any work is wasted.
        let mut certs: Vec<(String, Cert, Vec<Capability>)> = Vec::new();
        let mut missing = Vec::new();
        if t.encrypt != EncryptModeKey::Never {
            for r in rcpts {
                match self.recipient_cert(r, Some(limits)) {
                    Ok(Some((c, caps))) => certs.push((r.clone(), c, caps)),
                    Ok(None) => missing.push(r.clone()),
                    Err(e) => return Err(self.unavailable(t, &e)),
                }
            }
        }
        if !missing.is_empty() && t.encrypt == EncryptModeKey::Required {
            return Err(Decision::Refuse {
                refusal: Refusal::NoCertificate {
                    recipients: missing,
                },
                direction: t.direction,
            });
        }
        let encrypt = t.encrypt != EncryptModeKey::Never && missing.is_empty();
        if !missing.is_empty() {
            notes.push(format!(
                "not encrypted: no certificate for {}",
                missing.join(", ")
            ));
        }

        // The signing identity is the author the reader sees, and only when the submitting MTA
        // vouched for the same address as the envelope sender: never sign with a key of anyone
        // but the From address.
        let author = if t.sign {
            match signing_author(raw, sender) {
                Ok(()) => true,
                Err(why) => match config.policy.from_mismatch.unwrap_or(FromMismatch::Refuse) {
                    FromMismatch::Refuse => {
                        return Err(Decision::Refuse {
                            refusal: Refusal::FromMismatch {
                                why,
                                sender: sender.to_string(),
                            },
                            direction: t.direction,
                        });
                    }
                    FromMismatch::Relay => {
                        tracing::warn!(sender = %sender, reason = %why, "not signed: From is not the envelope sender (policy.from_mismatch = \"relay\")");
                        notes.push(format!("not signed: {why}"));
                        false
                    }
                },
            }
        } else {
            false
        };
        let identity = if author {
            match self.dir.signing_identity(sender) {
                Ok(i) => Some(i),
                Err(e) if e.is_unavailable() => return Err(self.unavailable(t, &e)),
                Err(_) => None,
            }
        } else {
            None
        };
        if author
            && identity.is_none()
            && config.policy.unknown_sender == Some(UnknownSender::Reject)
        {
            return Err(Decision::Refuse {
                refusal: Refusal::NotEnrolled {
                    sender: sender.to_string(),
                },
                direction: t.direction,
            });
        }
        // Whatever will be signed or encrypted is walked once against the limits first: mail
        // that must be protected and cannot be parsed is refused, never sent in clear.
        if identity.is_some() || encrypt {
            mime::check_limits(&message, limits)
                .map_err(|e| unprotectable(&e.into(), t.direction))?;
        }
        if author {
            match &identity {
                Some((cert, key, chain, enc)) => {
                    let signers = [Signer {
                        cert,
                        key,
                        chain,
                        encryption_cert: enc.as_ref(),
                    }];
                    let opaque = t.signature == SignatureForm::Opaque;
                    match message::sign_within(
                        &message,
                        &signers,
                        opaque,
                        &SignOptions::default(),
                        limits,
                    ) {
                        Ok(m) => {
                            message = std::borrow::Cow::Owned(m);
                            signed = true;
                            notes.push(format!("signed as {sender}"));
                        }
                        Err(e @ SmimeError::Mime(_)) => return Err(unprotectable(&e, t.direction)),
                        Err(e) => {
                            return Err(Decision::Refuse {
                                refusal: Refusal::CannotSign {
                                    sender: sender.to_string(),
                                    why: e.to_string(),
                                },
                                direction: t.direction,
                            });
                        }
                    }
                }
                None => notes.push(format!("not signed: {sender} is not enrolled")),
            }
        }

        if encrypt {
            let own = match self.dir.encryption_cert(sender) {
                Ok(c) => Some(c),
                Err(e) if e.is_unavailable() => return Err(self.unavailable(t, &e)),
                Err(_) => None,
            };
            let cipher = match t.cipher {
                CipherChoice::Auto => {
                    // Internal users' capabilities are not recorded; they read what we write,
                    // but their own clients may not read GCM, so they count as "not advertised".
                    let all_gcm = !certs.is_empty()
                        && certs
                            .iter()
                            .all(|(_, _, caps)| caps.contains(&Capability::Aes256Gcm));
                    if all_gcm {
                        ContentCipher::Aes256Gcm
                    } else {
                        ContentCipher::Aes256Cbc
                    }
                }
                CipherChoice::Fixed(c) => c,
            };
            let mut recipients: Vec<Recipient<'_>> = certs
                .iter()
                .map(|(_, c, caps)| Recipient {
                    cert: c,
                    oaep: caps.contains(&Capability::RsaOaep),
                    id: RecipientIdKind::IssuerAndSerial,
                })
                .collect();
            if let Some(o) = &own {
                recipients.push(Recipient {
                    cert: o,
                    oaep: false,
                    id: RecipientIdKind::IssuerAndSerial,
                });
            }
            // The signed message is handed over: freed once encrypted, before the base64 text.
            match message::encrypt_consuming(std::mem::take(&mut message), &recipients, cipher) {
                Ok(m) => {
                    message = std::borrow::Cow::Owned(m);
                    encrypted = true;
                    notes.push(format!(
                        "encrypted ({cipher:?}) to {} recipient(s)",
                        recipients.len()
                    ));
                }
                Err(e) => {
                    return Err(Decision::Refuse {
                        refusal: Refusal::CannotEncrypt { why: e.to_string() },
                        direction: t.direction,
                    });
                }
            }
        }
        Ok(RelayCopy {
            recipients: rcpts.to_vec(),
            message: message.into_owned(),
            direction: t.direction,
            action: if notes.is_empty() {
                "relayed unchanged (policy: neither sign nor encrypt)".into()
            } else {
                notes.join("; ")
            },
            verdict: "-".into(),
            kind: match (signed, encrypted) {
                (true, true) => ActionKind::SignedEncrypted,
                (true, false) => ActionKind::Signed,
                (false, true) => ActionKind::Encrypted,
                (false, false) => ActionKind::Unchanged,
            },
        })
    }
}

/// The answer for outbound mail that policy says to sign or encrypt but whose MIME structure
/// cannot be taken apart (or exceeds `[limits]`): permanent (RFC 3463 X.6.0, media error),
/// since the same bytes will fail the same way; a spent time budget stays temporary.
pub(super) fn unprotectable(e: &SmimeError, direction: Direction) -> Decision {
    match e {
        SmimeError::Mime(MimeError::Limit(t @ LimitError::Time { .. })) => {
            return time_refusal(t, direction);
        }
        SmimeError::Mime(MimeError::Randomness) => {
            return Decision::Refuse {
                refusal: Refusal::Busy { why: e.to_string() },
                direction,
            };
        }
        _ => {}
    }
    Decision::Refuse {
        refusal: Refusal::Unprocessable { why: e.to_string() },
        direction,
    }
}

/// Whether `raw` may be signed as `sender`: its header has exactly one `From:` field holding
/// exactly one mailbox ([`address::from_field`]), and that mailbox is the envelope sender
/// (compared without case, as directory addresses are). `Err` says why not, naming both addresses.
pub(super) fn signing_author(raw: &[u8], sender: &str) -> Result<(), String> {
    match address::from_field(raw) {
        FromField::One(a) if a.eq_ignore_ascii_case(sender) => Ok(()),
        FromField::One(a) => Err(format!(
            "the From address <{a}> is not the envelope sender <{sender}>"
        )),
        FromField::Missing => Err("the message has 0 From: fields, not one".into()),
        FromField::Several(n) => Err(format!("the message has {n} From: fields, not one")),
        FromField::NotOneMailbox(_) | FromField::Unparsable => Err(format!(
            "the From: field is not exactly one mailbox (envelope sender <{sender}>)"
        )),
    }
}
