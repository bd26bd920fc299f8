//! The treatment of one mail transaction: group recipients by treatment, then sign and encrypt
//! (outbound), or decrypt, verify, annotate and harvest (inbound). Pure with respect to the
//! network: `serve` relays the copies this returns, and `smimegw process` prints them.
//!
//! Bad input never loses mail: an inbound message that cannot be parsed, decrypted or verified is
//! delivered unchanged with a result header saying why. Outbound mail that policy requires to be
//! protected and cannot be is refused with a clear 5xx, never sent in clear.

use std::collections::BTreeMap;

use crate::config::{CipherChoice, Config, RefuseAt, SignatureForm, UnknownSender};
use crate::directory::Directory;
use crate::mime::{self, parse_entity};
use crate::pki::path::{ChainCache, Query, TrustContext, Usage};
use crate::pki::profile;
use crate::pki::{Cert, PrivateKey};
use crate::policy::{self, Direction, EncryptModeKey, Treatment};
use crate::smime::enveloped::{ContentCipher, Recipient, RecipientIdKind};
use crate::smime::message::{self, SmimeKind, TrustInput};
use crate::smime::signed::{Capability, SignOptions, Signer, SignerReport};
use crate::smtp::session::Transaction;

/// One processed copy to relay.
#[derive(Clone, Debug)]
pub struct Copy {
    /// Envelope recipients of this copy.
    pub recipients: Vec<String>,
    /// The bytes to relay.
    pub message: Vec<u8>,
    /// Direction of the group.
    pub direction: Direction,
    /// What was done, for the log and for `smimegw process`.
    pub action: String,
    /// The verdict (inbound) or "-".
    pub verdict: String,
}

/// The decision for a transaction.
#[derive(Clone, Debug)]
pub enum Decision {
    /// Relay every copy; answer 250 only when all were accepted.
    Relay(Vec<Copy>),
    /// Refuse the whole message.
    Refuse {
        /// SMTP code.
        code: u16,
        /// Enhanced status code.
        enhanced: &'static str,
        /// Why, for the sender.
        text: String,
    },
}

/// The gateway's processing state (directory, configuration, chain cache).
pub struct Gateway {
    dir: Directory,
    /// Validated chains, keyed (among others) by the directory's trust generation.
    cache: ChainCache,
    /// The trust context of the last trust generation seen: re-read only when an administrator
    /// changed anchors, cross-certificates or CRLs.
    trust: std::sync::Mutex<Option<(u64, std::sync::Arc<TrustContext>)>>,
    authserv_id: String,
    /// The `[policy]` in force: the start configuration's, until a reload replaces it
    /// ([`Gateway::reload_policy`]). Each transaction takes one snapshot.
    policy: std::sync::RwLock<std::sync::Arc<Config>>,
}

/// What a policy reload did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyReload {
    /// Whether `[policy]` differs from what was in force.
    pub policy_changed: bool,
    /// Top-level keys outside `[policy]` that differ from the running configuration: they are
    /// not applied (they take effect at the next start).
    pub needs_restart: Vec<String>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gateway({})", self.authserv_id)
    }
}

/// The authserv-id: configured, else the host name.
pub fn authserv_id(config: &Config) -> String {
    config.authserv_id.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "smimegw".into())
    })
}

impl Gateway {
    /// A gateway over an opened directory.
    pub fn new(dir: Directory) -> Self {
        let authserv_id = authserv_id(dir.config());
        let policy = std::sync::RwLock::new(std::sync::Arc::new(dir.config().clone()));
        Self {
            dir,
            cache: ChainCache::default(),
            trust: std::sync::Mutex::new(None),
            authserv_id,
            policy,
        }
    }

    /// Puts `new.policy` in force for the transactions that start from now on (SIGHUP). Every
    /// other setting stays as it was at start: the listener, relay, directory and domains are
    /// bound to running state; those that differ are named in the result.
    pub fn reload_policy(&self, new: &Config) -> PolicyReload {
        let mut slot = self.policy.write().unwrap_or_else(|e| e.into_inner());
        let old = slot.clone();
        let table = |c: &Config| {
            toml::Value::try_from(c)
                .ok()
                .and_then(|v| v.as_table().cloned())
                .unwrap_or_default()
        };
        let (before, after) = (table(&old), table(new));
        let mut needs_restart: Vec<String> = before
            .keys()
            .chain(after.keys())
            .filter(|k| k.as_str() != "policy" && before.get(*k) != after.get(*k))
            .cloned()
            .collect();
        needs_restart.sort();
        needs_restart.dedup();
        let policy_changed = before.get("policy") != after.get("policy");
        *slot = std::sync::Arc::new(Config {
            policy: new.policy.clone(),
            ..(*old).clone()
        });
        PolicyReload {
            policy_changed,
            needs_restart,
        }
    }

    /// The configuration in force for one transaction (policy as last reloaded).
    fn policy_config(&self) -> std::sync::Arc<Config> {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The directory.
    pub fn directory(&self) -> &Directory {
        &self.dir
    }

    fn config(&self) -> &Config {
        self.dir.config()
    }

    /// The RCPT-time check (`policy.refuse_at = "rcpt"`): refuses a recipient whose required
    /// encryption certificate is unknown, with the reason, so the other recipients still get
    /// the message.
    pub fn check_recipient(
        &self,
        sender: &str,
        rcpt: &str,
    ) -> Result<(), (u16, &'static str, String)> {
        if self.config().policy.refuse_at != Some(RefuseAt::Rcpt) {
            return Ok(());
        }
        let t = policy::treatment(self.config(), sender, rcpt);
        if t.encrypt == EncryptModeKey::Required && self.recipient_cert(rcpt).is_none() {
            return Err((
                550,
                "5.7.1",
                format!("encryption is required for {rcpt} but no valid certificate is known"),
            ));
        }
        Ok(())
    }

    /// Decides what to do with a transaction.
    pub fn process(&self, tx: &Transaction) -> Decision {
        let mut groups: BTreeMap<Treatment, Vec<String>> = BTreeMap::new();
        let config = self.policy_config();
        for r in &tx.rcpt_to {
            groups
                .entry(policy::treatment(&config, &tx.mail_from, r))
                .or_default()
                .push(r.clone());
        }
        let mut copies = Vec::new();
        for (t, rcpts) in groups {
            match t.direction {
                Direction::Transit => copies.push(Copy {
                    recipients: rcpts,
                    message: tx.message.clone(),
                    direction: t.direction,
                    action: "relayed unchanged (neither sender nor recipient is internal)".into(),
                    verdict: "-".into(),
                }),
                Direction::Outbound | Direction::Internal => {
                    match self.protect(&tx.message, &tx.mail_from, &rcpts, &t) {
                        Ok(c) => copies.push(c),
                        Err(refusal) => return refusal,
                    }
                }
                Direction::Inbound => copies.extend(self.open(&tx.message, &rcpts)),
            }
        }
        Decision::Relay(copies)
    }

    /// The certificate to encrypt to for a recipient: an internal user's, or one harvested from
    /// a valid signature — either must validate now for encryption.
    /// The trust context and its generation, from the cache unless the directory changed.
    fn trust(
        &self,
    ) -> Result<(u64, std::sync::Arc<TrustContext>), crate::directory::DirectoryError> {
        let generation = self.dir.trust_generation()?;
        let mut slot = self.trust.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((g, ctx)) = slot.as_ref()
            && *g == generation
        {
            return Ok((generation, ctx.clone()));
        }
        let ctx = std::sync::Arc::new(self.dir.trust_context()?);
        *slot = Some((generation, ctx.clone()));
        Ok((generation, ctx))
    }

    fn recipient_cert(&self, addr: &str) -> Option<(Cert, Vec<Capability>)> {
        let (cert, chain, caps) = if self.config().is_internal(addr) {
            (self.dir.encryption_cert(addr).ok()?, Vec::new(), Vec::new())
        } else {
            let c = self.dir.harvested(addr).ok().flatten()?;
            (c.cert, c.chain, c.capabilities)
        };
        let (generation, ctx) = self.trust().ok()?;
        let q = Query {
            leaf: &cert,
            untrusted: &chain,
            at: profile::now(),
            email: Some(addr),
            usage: Some(Usage::Encryption),
        };
        let ok = self.cache.validate(&ctx, generation, &q).is_ok();
        ok.then_some((cert, caps))
    }

    fn protect(
        &self,
        raw: &[u8],
        sender: &str,
        rcpts: &[String],
        t: &Treatment,
    ) -> Result<Copy, Decision> {
        let mut notes = Vec::new();
        // Borrowed until a step produces new bytes: a large message is not copied for nothing.
        let mut message = std::borrow::Cow::Borrowed(raw);

        // Encryption certificates first: a refusal must happen before any work is wasted.
        let mut certs: Vec<(String, Cert, Vec<Capability>)> = Vec::new();
        let mut missing = Vec::new();
        if t.encrypt != EncryptModeKey::Never {
            for r in rcpts {
                match self.recipient_cert(r) {
                    Some((c, caps)) => certs.push((r.clone(), c, caps)),
                    None => missing.push(r.clone()),
                }
            }
        }
        if !missing.is_empty() && t.encrypt == EncryptModeKey::Required {
            return Err(Decision::Refuse {
                code: 550,
                enhanced: "5.7.1",
                text: format!(
                    "encryption is required for {} but no valid certificate is known; ask them to send you a signed message first, or import their certificate",
                    missing.join(", ")
                ),
            });
        }
        let encrypt = t.encrypt != EncryptModeKey::Never && missing.is_empty();
        if !missing.is_empty() {
            notes.push(format!(
                "not encrypted: no certificate for {}",
                missing.join(", ")
            ));
        }

        let identity = self.dir.signing_identity(sender).ok();
        if t.sign
            && identity.is_none()
            && self.config().policy.unknown_sender == Some(UnknownSender::Reject)
        {
            return Err(Decision::Refuse {
                code: 550,
                enhanced: "5.7.1",
                text: format!(
                    "{sender} is not enrolled for S/MIME here and policy requires signed mail; ask the administrator to run `smimegw user enroll {sender}`"
                ),
            });
        }
        if t.sign {
            match &identity {
                Some((cert, key, chain, enc)) => {
                    let signers = [Signer {
                        cert,
                        key,
                        chain,
                        encryption_cert: enc.as_ref(),
                    }];
                    let opaque = t.signature == SignatureForm::Opaque;
                    match message::sign(&message, &signers, opaque, &SignOptions::default()) {
                        Ok(m) => {
                            message = std::borrow::Cow::Owned(m);
                            notes.push(format!("signed as {sender}"));
                        }
                        Err(e) => {
                            return Err(Decision::Refuse {
                                code: 451,
                                enhanced: "4.7.0",
                                text: format!("cannot sign as {sender}: {e}"),
                            });
                        }
                    }
                }
                None => notes.push(format!("not signed: {sender} is not enrolled")),
            }
        }

        if encrypt {
            let own = self.dir.encryption_cert(sender).ok();
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
                CipherChoice::Aes128Cbc => ContentCipher::Aes128Cbc,
                CipherChoice::Aes256Cbc => ContentCipher::Aes256Cbc,
                CipherChoice::Aes128Gcm => ContentCipher::Aes128Gcm,
                CipherChoice::Aes256Gcm => ContentCipher::Aes256Gcm,
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
            match message::encrypt(&message, &recipients, cipher) {
                Ok(m) => {
                    message = std::borrow::Cow::Owned(m);
                    notes.push(format!(
                        "encrypted ({cipher:?}) to {} recipient(s)",
                        recipients.len()
                    ));
                }
                Err(e) => {
                    return Err(Decision::Refuse {
                        code: 451,
                        enhanced: "4.7.0",
                        text: format!("cannot encrypt: {e}"),
                    });
                }
            }
        }
        Ok(Copy {
            recipients: rcpts.to_vec(),
            message: message.into_owned(),
            direction: t.direction,
            action: if notes.is_empty() {
                "relayed unchanged (policy: neither sign nor encrypt)".into()
            } else {
                notes.join("; ")
            },
            verdict: "-".into(),
        })
    }

    /// Removes Authentication-Results fields that claim our authserv-id (RFC 8601 section 5: a
    /// forged result for our id must not survive).
    /// The message is borrowed as it is when there is nothing to remove (the usual case: no
    /// copy of a large message for nothing).
    fn strip_forged_results<'a>(&self, raw: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        let e = parse_entity(raw);
        let forged = |h: &crate::mime::Header| {
            h.is("Authentication-Results") && {
                let v = h.value();
                let id = v.split(';').next().unwrap_or("").trim();
                let id = id.split_whitespace().next().unwrap_or("");
                id.eq_ignore_ascii_case(&self.authserv_id)
            }
        };
        if !e.headers.iter().any(forged) {
            return std::borrow::Cow::Borrowed(raw);
        }
        let mut out = Vec::with_capacity(raw.len());
        for h in e.headers.iter().filter(|h| !forged(h)) {
            out.extend_from_slice(&h.raw);
        }
        out.extend_from_slice(e.separator);
        out.extend_from_slice(e.body);
        std::borrow::Cow::Owned(out)
    }

    fn result_header(&self, result: &str, props: &str, summary: &str) -> Vec<u8> {
        let props = if props.is_empty() {
            String::new()
        } else {
            format!("\r\n\t{props}")
        };
        format!(
            "Authentication-Results: {}; smime={result}{props}\r\nX-Smimegw-Result: {}\r\n",
            self.authserv_id,
            summary.replace(['\r', '\n'], " ")
        )
        .into_bytes()
    }

    fn open(&self, raw: &[u8], rcpts: &[String]) -> Vec<Copy> {
        let clean = self.strip_forged_results(raw);
        let entity = parse_entity(&clean);
        match message::kind(&entity) {
            SmimeKind::Enveloped => self.open_encrypted(&clean, rcpts, 0),
            SmimeKind::DetachedSigned | SmimeKind::OpaqueSigned => {
                self.open_signed(&clean, rcpts, &[], 0)
            }
            SmimeKind::Plain => {
                let mut m = self.result_header("none", "", "not signed, not encrypted");
                m.extend_from_slice(&clean);
                vec![Copy {
                    recipients: rcpts.to_vec(),
                    message: m,
                    direction: Direction::Inbound,
                    action: "annotated".into(),
                    verdict: "none".into(),
                }]
            }
        }
    }

    fn open_encrypted(&self, raw: &[u8], rcpts: &[String], depth: usize) -> Vec<Copy> {
        // Each recipient gets the plaintext only if one of *their* keys opens it.
        let mut opened: Vec<(Vec<u8>, Vec<String>)> = Vec::new();
        let mut closed: Vec<String> = Vec::new();
        let mut last_error = String::from("no key held for these recipients");
        for r in rcpts {
            let keys: Vec<(Cert, PrivateKey)> = self.dir.decryption_keys(r).unwrap_or_default();
            if keys.is_empty() {
                closed.push(r.clone());
                continue;
            }
            match message::decrypt(raw, &keys) {
                Ok(d) => match opened.iter_mut().find(|(m, _)| *m == d.message) {
                    Some((_, who)) => who.push(r.clone()),
                    None => opened.push((d.message, vec![r.clone()])),
                },
                Err(e) => {
                    last_error = e.to_string();
                    closed.push(r.clone());
                }
            }
        }
        let mut copies = Vec::new();
        for (plain, who) in opened {
            let inner = parse_entity(&plain);
            let note = "decrypted";
            if matches!(
                message::kind(&inner),
                SmimeKind::DetachedSigned | SmimeKind::OpaqueSigned
            ) {
                copies.extend(self.open_signed(&plain, &who, &[note], depth + 1));
            } else {
                let mut m = self.result_header("none", "", "decrypted; not signed");
                m.extend_from_slice(&plain);
                copies.push(Copy {
                    recipients: who,
                    message: m,
                    direction: Direction::Inbound,
                    action: "decrypted".into(),
                    verdict: "none".into(),
                });
            }
        }
        if !closed.is_empty() {
            let mut m = self.result_header(
                "neutral",
                "",
                &format!("could not decrypt: {last_error}; delivered as received"),
            );
            m.extend_from_slice(raw);
            copies.push(Copy {
                recipients: closed,
                message: m,
                direction: Direction::Inbound,
                action: format!("delivered encrypted ({last_error})"),
                verdict: "neutral".into(),
            });
        }
        copies
    }

    /// Verifies a signed message; an opaque signature around an encrypted message
    /// (encrypt-then-sign) is unwrapped and the inner layer opened too, up to
    /// [`message::MAX_LAYERS`].
    fn open_signed(&self, raw: &[u8], rcpts: &[String], notes: &[&str], depth: usize) -> Vec<Copy> {
        let (generation, ctx) = match self.trust() {
            Ok(c) => c,
            Err(e) => {
                let mut m =
                    self.result_header("temperror", "", &format!("directory unavailable: {e}"));
                m.extend_from_slice(raw);
                return vec![Copy {
                    recipients: rcpts.to_vec(),
                    message: m,
                    direction: Direction::Inbound,
                    action: "delivered unverified".into(),
                    verdict: "temperror".into(),
                }];
            }
        };
        let trust = TrustInput {
            ctx: &ctx,
            cache: Some(&self.cache),
            generation,
            now: profile::now(),
        };
        match message::verify(raw, &trust, None) {
            Ok(v) => {
                let (result, props, summary) = summarise_reports(&v.reports);
                for r in &v.reports {
                    if let Some(h) = &r.harvest {
                        let _ = self.dir.store_harvest(h);
                    }
                }
                // Keep the signed message as it arrived (detached signatures stay verifiable
                // by the recipient's client); opaque ones are unwrapped so any client reads them.
                let header = self.result_header(&result, &props, &{
                    let mut s: Vec<String> = notes.iter().map(|n| n.to_string()).collect();
                    s.push(summary.clone());
                    s.join("; ")
                });
                if !v.detached
                    && depth + 1 < message::MAX_LAYERS
                    && message::kind(&parse_entity(&v.message)) == SmimeKind::Enveloped
                {
                    // Encrypted inside the signature: open that layer too, and keep the
                    // signature's result on top of whatever the inner layer reports.
                    let mut inner = self.open_encrypted(&v.message, rcpts, depth + 1);
                    for c in &mut inner {
                        let mut m = header.clone();
                        m.extend_from_slice(&c.message);
                        c.message = m;
                        c.action = format!("verified, {}", c.action);
                        c.verdict = format!("{result}; inner {}", c.verdict);
                    }
                    return inner;
                }
                let body = if v.detached { raw.to_vec() } else { v.message };
                let mut m = header;
                m.extend_from_slice(&body);
                vec![Copy {
                    recipients: rcpts.to_vec(),
                    message: m,
                    direction: Direction::Inbound,
                    action: {
                        let mut s: Vec<String> = notes.iter().map(|n| n.to_string()).collect();
                        s.push("verified".into());
                        s.join(", ")
                    },
                    verdict: result,
                }]
            }
            Err(e) => {
                let mut m = self.result_header(
                    "permerror",
                    "",
                    &format!("signature could not be read: {e}; delivered as received"),
                );
                m.extend_from_slice(raw);
                vec![Copy {
                    recipients: rcpts.to_vec(),
                    message: m,
                    direction: Direction::Inbound,
                    action: "delivered unverified".into(),
                    verdict: "permerror".into(),
                }]
            }
        }
    }
}

/// Turns signer reports into an RFC 7281 result, its properties, and a human summary.
fn summarise_reports(reports: &[SignerReport]) -> (String, String, String) {
    if reports.is_empty() {
        return (
            "none".into(),
            String::new(),
            "signed message without signers".into(),
        );
    }
    let all_pass = reports.iter().all(|r| r.verdict.code() == "pass");
    let result = if all_pass { "pass" } else { "fail" };
    let first = &reports[0];
    let mut props = Vec::new();
    if let Some(c) = &first.signer {
        if let Some(e) = c.email_addresses().first() {
            props.push(format!("body.smime-identifier={e}"));
        }
        props.push(format!("body.smime-serial={}", c.serial_hex()));
        props.push(format!(
            "body.smime-issuer=\"{}\"",
            c.issuer_string().replace('"', "'")
        ));
    }
    let summary = reports
        .iter()
        .map(|r| {
            let who = r
                .signer
                .as_ref()
                .and_then(|c| c.email_addresses().first().cloned())
                .unwrap_or_else(|| "unknown signer".into());
            format!("signature by {who}: {} ({})", r.verdict.code(), r.verdict)
        })
        .collect::<Vec<_>>()
        .join("; ");
    let result = if result == "fail" && !all_pass {
        format!(
            "fail ({})",
            reports
                .iter()
                .map(|r| r.verdict.code())
                .collect::<Vec<_>>()
                .join(",")
        )
    } else {
        result.to_string()
    };
    (result, props.join(" "), summary)
}

/// The Message-ID of a message, for logs.
pub fn message_id(raw: &[u8]) -> String {
    parse_entity(raw)
        .header("Message-ID")
        .map(|h| h.value())
        .unwrap_or_else(|| "-".into())
}

/// The From address of a message.
pub fn from_address(raw: &[u8]) -> Option<String> {
    parse_entity(raw)
        .header("From")
        .and_then(|h| mime::address_of(&h.value()))
}
