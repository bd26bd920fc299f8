//! The treatment of one mail transaction: group recipients by treatment, then sign and encrypt
//! (outbound), or decrypt, verify, annotate and harvest (inbound). Pure with respect to the
//! network: `serve` relays the copies this returns, and `smimegw process` prints them.
//!
//! Bad input never loses mail: an inbound message that cannot be parsed, decrypted or verified is
//! delivered unchanged with a result header saying why. Outbound mail that policy requires to be
//! protected and cannot be is refused with a clear 5xx, never sent in clear.

use std::collections::BTreeMap;

use std::time::Instant;

use crate::address::{self, FromField};
use crate::config::{
    CipherChoice, Config, FromMismatch, PolicyConfig, RefuseAt, SignatureForm, UnauthenticatedCbc,
    UnknownSender,
};
use crate::directory::{Directory, DirectoryError};
use crate::limits::{LimitError, Limits};
use crate::mime::{self, MimeError, parse_entity};
use crate::pki::online::{Checker, PathRevocation, RevocationNote};
use crate::pki::path::{ChainCache, Query, TrustContext, Usage};
use crate::pki::profile;
use crate::pki::{Cert, PrivateKey};
use crate::policy::{self, Direction, EncryptModeKey, Listener, Treatment};
use crate::results;
use crate::smime::enveloped::{ContentCipher, Recipient, RecipientIdKind};
use crate::smime::message::{self, SmimeError, SmimeKind, TrustInput};
use crate::smime::signed::{
    Capability, SignOptions, Signer, SignerReport, Verdict as SignerVerdict,
};
use crate::smtp::session::Transaction;

mod verdict;

use verdict::{Above, Base, Outer, Signed};

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
    /// What was done, as one of a few values (the metrics label; `action` has the detail).
    pub kind: ActionKind,
}

/// What the gateway did to a copy, in a fixed vocabulary (for metrics and dashboards).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActionKind {
    /// Relayed as received (transit, or policy neither signs nor encrypts).
    Unchanged,
    /// Signed only.
    Signed,
    /// Encrypted only (the sender is not enrolled, or policy does not sign).
    Encrypted,
    /// Signed, then encrypted.
    SignedEncrypted,
    /// Inbound, neither signed nor encrypted: result header added.
    Annotated,
    /// Inbound, decrypted; not signed inside.
    Decrypted,
    /// Inbound, signature verified (pass or fail).
    Verified,
    /// Inbound, decrypted and its signature verified.
    DecryptedVerified,
    /// Inbound, signature could not be read or checked: delivered as received, with the reason.
    Unverified,
    /// Inbound, delivered still encrypted, with the reason: no key opened it, or its content
    /// came out of AES-CBC without a passing signature inside and `unauthenticated_cbc =
    /// "keep_encrypted"`.
    Undecrypted,
}

impl ActionKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Unchanged => "unchanged",
            ActionKind::Signed => "signed",
            ActionKind::Encrypted => "encrypted",
            ActionKind::SignedEncrypted => "signed_encrypted",
            ActionKind::Annotated => "annotated",
            ActionKind::Decrypted => "decrypted",
            ActionKind::Verified => "verified",
            ActionKind::DecryptedVerified => "decrypted_verified",
            ActionKind::Unverified => "delivered_unverified",
            ActionKind::Undecrypted => "delivered_encrypted",
        }
    }
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
        /// The direction of the recipients that caused the refusal.
        direction: Direction,
    },
}

impl Decision {
    /// The direction a refusal or the first copy is counted under in `/metrics`.
    fn direction(&self) -> Direction {
        match self {
            Decision::Relay(copies) => copies.first().map_or(Direction::Transit, |c| c.direction),
            Decision::Refuse { direction, .. } => *direction,
        }
    }
}

/// What the MTA hears when the directory cannot be read (RFC 3463 4.3.0: a temporary system
/// problem).
const UNAVAILABLE: &str = "the certificate directory is unavailable; try again later";

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
    /// Harvested certificates that could not be stored (metrics).
    harvest_failures: std::sync::atomic::AtomicU64,
    /// Revocation status beyond the imported CRLs: fetched CRLs, their cache and counters.
    revocation: Checker,
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
        let rc = &dir.config().revocation;
        let revocation = Checker::new(
            rc.fetch,
            rc.ocsp,
            std::time::Duration::from_secs(rc.timeout_secs),
        );
        Self {
            dir,
            cache: ChainCache::default(),
            trust: std::sync::Mutex::new(None),
            authserv_id,
            policy,
            harvest_failures: std::sync::atomic::AtomicU64::new(0),
            revocation,
        }
    }

    /// The revocation checker (for `/metrics`).
    pub fn revocation(&self) -> &Checker {
        &self.revocation
    }

    /// How long a message may wait for revocation data: `[revocation] timeout_secs`, and never
    /// past the message's own deadline (`[limits] max_processing_secs`).
    fn revocation_deadline(&self, limits: Option<&Limits>) -> Instant {
        let own = Instant::now() + self.revocation.fetcher().timeout();
        match limits.and_then(|l| l.deadline) {
            Some(d) => own.min(d),
            None => own,
        }
    }

    /// Settles the revocation status of every valid signer's path: a revoked certificate makes
    /// the signature untrusted (and nothing is harvested from it); any other status is attached
    /// for the verdict to weigh under `[revocation] when_unknown`.
    fn check_revocation(
        &self,
        reports: &mut [SignerReport],
        ctx: &TrustContext,
        now: i64,
        deadline: Instant,
    ) {
        let when_unknown = self.config().revocation.when_unknown;
        for r in reports.iter_mut().filter(|r| r.verdict.is_valid()) {
            let Some(path) = &r.path else { continue };
            match self.revocation.check(ctx, path, now, deadline) {
                PathRevocation::Revoked(e) => {
                    r.verdict = SignerVerdict::Untrusted(e);
                    r.harvest = None;
                }
                status => {
                    r.revocation = Some(RevocationNote {
                        status,
                        when_unknown,
                        at: now,
                    });
                }
            }
        }
    }

    /// Stores what a valid signature taught us. A directory that cannot take the write (disk
    /// full, read-only) must not cost the message: it is delivered with its verdict all the
    /// same, and the failure is logged and counted (`smimegw_harvest_failures_total`); the
    /// certificate is harvested again from the correspondent's next signed message.
    fn harvest(&self, h: &crate::smime::signed::Harvest, signing_time: Option<i64>) {
        if let Err(e) = self.dir.store_harvest(h, signing_time) {
            self.harvest_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let who = h
                .encryption_cert
                .as_ref()
                .map(|c| c.email_addresses().join(","))
                .unwrap_or_default();
            tracing::error!(correspondent = %who, error = %e, "could not store the harvested certificate; the message is delivered without it");
        }
    }

    /// How many harvested certificates could not be stored since start.
    pub fn harvest_failures(&self) -> u64 {
        self.harvest_failures
            .load(std::sync::atomic::Ordering::Relaxed)
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
    /// the message. It reads the policy in force (as last reloaded), like the rest of the
    /// transaction; the inbound listener encrypts nothing, so it refuses nothing here.
    pub fn check_recipient(
        &self,
        listener: Listener,
        sender: &str,
        rcpt: &str,
    ) -> Result<(), (u16, &'static str, String)> {
        let config = self.policy_config();
        if config.policy.refuse_at != Some(RefuseAt::Rcpt) {
            return Ok(());
        }
        let t = policy::treatment(&config, listener, sender, rcpt);
        if t.encrypt == EncryptModeKey::Required {
            match self.recipient_cert(rcpt, None) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err((
                        550,
                        "5.7.1",
                        format!(
                            "encryption is required for {rcpt} but no valid certificate is known"
                        ),
                    ));
                }
                Err(e) => {
                    tracing::error!(error = %e, "directory unavailable; recipient deferred");
                    return Err((451, "4.3.0", UNAVAILABLE.into()));
                }
            }
        }
        Ok(())
    }

    /// A directory that cannot be read must not turn into "no certificate" or "not enrolled":
    /// that would send mail unsigned or in clear. The MTA gets 4xx and retries; the details
    /// (paths, OS errors) go to the log, not to the SMTP peer.
    fn unavailable(&self, t: &Treatment, e: &DirectoryError) -> Decision {
        tracing::error!(error = %e, "directory unavailable; message deferred");
        Decision::Refuse {
            code: 451,
            enhanced: "4.3.0",
            direction: t.direction,
            text: UNAVAILABLE.into(),
        }
    }

    /// Decides what to do with a transaction that arrived on `listener`, with its time budget
    /// starting now.
    pub fn process(&self, tx: &Transaction, listener: Listener) -> Decision {
        self.process_at(tx, listener, Instant::now())
    }

    /// Decides what to do with a transaction whose processing began at `started` (when the
    /// message was complete): `[limits]` bound its parsing, and once its time budget is spent
    /// the answer is 451 4.3.0 whatever was done so far (the MTA retries later).
    pub fn process_at(&self, tx: &Transaction, listener: Listener, started: Instant) -> Decision {
        let limits = self.config().limits.limits().starting(started);
        let decision = self.decide(tx, listener, &limits);
        match limits.check_time() {
            Ok(()) => decision,
            Err(e) => time_refusal(&e, decision.direction()),
        }
    }

    fn decide(&self, tx: &Transaction, listener: Listener, limits: &Limits) -> Decision {
        // Results for our authserv-id and X-Smimegw-Result are ours alone, whatever the
        // direction: removed before anything else looks at the message (see `results`).
        let message = results::strip_forged(&tx.message, &self.authserv_id);
        let mut groups: BTreeMap<Treatment, Vec<String>> = BTreeMap::new();
        let config = self.policy_config();
        for r in &tx.rcpt_to {
            groups
                .entry(policy::treatment(&config, listener, &tx.mail_from, r))
                .or_default()
                .push(r.clone());
        }
        let mut copies = Vec::new();
        for (t, rcpts) in groups {
            if let Err(e) = limits.check_time() {
                return time_refusal(&e, t.direction);
            }
            match t.direction {
                Direction::Transit => copies.push(Copy {
                    recipients: rcpts,
                    message: message.to_vec(),
                    direction: t.direction,
                    action: "relayed unchanged (neither sender nor recipient is internal)".into(),
                    verdict: "-".into(),
                    kind: ActionKind::Unchanged,
                }),
                Direction::Outbound | Direction::Internal => {
                    match self.protect(&message, &tx.mail_from, &rcpts, &t, &config, limits) {
                        Ok(c) => copies.push(c),
                        Err(refusal) => return refusal,
                    }
                }
                Direction::Inbound => match self.open(&message, &rcpts, limits, &config.policy) {
                    Ok(c) => copies.extend(c),
                    Err(e) => return self.unavailable(&t, &e),
                },
            }
        }
        Decision::Relay(copies)
    }

    /// The certificate to encrypt to for a recipient: an internal user's, or one harvested from
    /// a valid signature — either must validate now for encryption.
    /// The trust context and its generation, from the cache unless the directory changed.
    fn trust(&self) -> Result<(u64, std::sync::Arc<TrustContext>), DirectoryError> {
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

    /// `Ok(None)` when no valid certificate is known; `Err` only when the directory itself is
    /// unavailable (a temporary condition the caller turns into 4xx).
    fn recipient_cert(
        &self,
        addr: &str,
        limits: Option<&Limits>,
    ) -> Result<Option<(Cert, Vec<Capability>)>, DirectoryError> {
        let looked_up = if self.config().is_internal(addr) {
            self.dir
                .encryption_cert(addr)
                .map(|c| Some((c, Vec::new(), Vec::new())))
        } else {
            self.dir
                .harvested(addr)
                .map(|o| o.map(|c| (c.cert, c.chain, c.capabilities)))
        };
        let (cert, chain, caps) = match looked_up {
            Ok(Some(x)) => x,
            Err(e) if e.is_unavailable() => return Err(e),
            Ok(None) | Err(_) => return Ok(None),
        };
        let (generation, ctx) = match self.trust() {
            Ok(x) => x,
            Err(e) if e.is_unavailable() => return Err(e),
            Err(_) => return Ok(None),
        };
        let q = Query {
            leaf: &cert,
            untrusted: &chain,
            at: profile::now(),
            email: Some(addr),
            usage: Some(Usage::Encryption),
        };
        let Ok(path) = self.cache.validate(&ctx, generation, &q) else {
            return Ok(None);
        };
        // A revoked recipient certificate is no certificate; one whose status is unknown is
        // still used (encrypting to it discloses nothing its holder could not already read).
        let deadline = self.revocation_deadline(limits);
        let revoked = matches!(
            self.revocation.check(&ctx, &path, q.at, deadline),
            PathRevocation::Revoked(_)
        );
        Ok((!revoked).then_some((cert, caps)))
    }

    fn protect(
        &self,
        raw: &[u8],
        sender: &str,
        rcpts: &[String],
        t: &Treatment,
        config: &Config,
        limits: &Limits,
    ) -> Result<Copy, Decision> {
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
                code: 550,
                enhanced: "5.7.1",
                direction: t.direction,
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

        // The signing identity is the author the reader sees, and only when the submitting MTA
        // vouched for the same address as the envelope sender: never sign with a key of anyone
        // but the From address.
        let author = if t.sign {
            match signing_author(raw, sender) {
                Ok(()) => true,
                Err(why) => match config.policy.from_mismatch.unwrap_or(FromMismatch::Refuse) {
                    FromMismatch::Refuse => {
                        return Err(Decision::Refuse {
                            code: 550,
                            enhanced: "5.7.1",
                            direction: t.direction,
                            text: format!(
                                "{why}; the gateway signs only when From: is the envelope sender <{sender}> (policy.from_mismatch = \"refuse\")"
                            ),
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
                code: 550,
                enhanced: "5.7.1",
                direction: t.direction,
                text: format!(
                    "{sender} is not enrolled for S/MIME here and policy requires signed mail; ask the administrator to run `smimegw user enroll {sender}`"
                ),
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
                                code: 451,
                                enhanced: "4.7.0",
                                direction: t.direction,
                                text: format!("cannot sign as {sender}: {e}"),
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
                        code: 451,
                        enhanced: "4.7.0",
                        direction: t.direction,
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
            kind: match (signed, encrypted) {
                (true, true) => ActionKind::SignedEncrypted,
                (true, false) => ActionKind::Signed,
                (false, true) => ActionKind::Encrypted,
                (false, false) => ActionKind::Unchanged,
            },
        })
    }

    /// Our two result fields (`props` built by [`results::property`]), escaped and folded.
    fn result_header(&self, result: &str, props: &str, summary: &str) -> Vec<u8> {
        results::fields(&self.authserv_id, result, props, summary)
    }

    /// The message as received (forged results removed), annotated with why it was not opened.
    fn unopened(&self, raw: &[u8], rcpts: &[String], why: &str) -> Copy {
        let mut m = self.result_header("permerror", "", &format!("{why}; delivered as received"));
        m.extend_from_slice(raw);
        Copy {
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
    fn open(
        &self,
        clean: &[u8],
        rcpts: &[String],
        limits: &Limits,
        policy: &PolicyConfig,
    ) -> Result<Vec<Copy>, DirectoryError> {
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
                Ok(vec![Copy {
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
    fn finish(
        &self,
        inbound: &Inbound<'_>,
        rcpts: &[String],
        above: &Above,
        base: Base,
        content: Vec<u8>,
        note: &str,
    ) -> Copy {
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
        Copy {
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
    fn unverified(
        &self,
        inbound: &Inbound<'_>,
        rcpts: &[String],
        above: &Above,
        result: &str,
        why: String,
        raw: &[u8],
    ) -> Copy {
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

    fn open_encrypted(
        &self,
        inbound: &Inbound<'_>,
        raw: &[u8],
        rcpts: &[String],
        depth: usize,
        above: &Above,
    ) -> Result<Vec<Copy>, DirectoryError> {
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
    fn open_signed(
        &self,
        inbound: &Inbound<'_>,
        raw: &[u8],
        rcpts: &[String],
        depth: usize,
        above: &Above,
    ) -> Result<Vec<Copy>, DirectoryError> {
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
struct Inbound<'a> {
    /// The message as received, forged results removed: what is delivered when no layer is
    /// opened, or when `unauthenticated_cbc = "keep_encrypted"` keeps it closed.
    received: &'a [u8],
    limits: &'a Limits,
    /// The transaction's `[policy]` snapshot (reloadable by SIGHUP).
    policy: &'a PolicyConfig,
}

/// The answer when a message's time budget is spent: temporary, because a busy machine is the
/// usual cause and the MTA will retry (RFC 3463 X.3.0, "other or undefined mail system status").
fn time_refusal(e: &LimitError, direction: Direction) -> Decision {
    Decision::Refuse {
        code: 451,
        enhanced: "4.3.0",
        direction,
        text: format!("{e}; try again later"),
    }
}

/// The answer for outbound mail that policy says to sign or encrypt but whose MIME structure
/// cannot be taken apart (or exceeds `[limits]`): permanent (RFC 3463 X.6.0, media error),
/// since the same bytes will fail the same way; a spent time budget stays temporary.
fn unprotectable(e: &SmimeError, direction: Direction) -> Decision {
    match e {
        SmimeError::Mime(MimeError::Limit(t @ LimitError::Time { .. })) => {
            return time_refusal(t, direction);
        }
        SmimeError::Mime(MimeError::Randomness) => {
            return Decision::Refuse {
                code: 451,
                enhanced: "4.3.0",
                direction,
                text: format!("{e}; try again later"),
            };
        }
        _ => {}
    }
    Decision::Refuse {
        code: 554,
        enhanced: "5.6.0",
        direction,
        text: format!(
            "this message must be signed or encrypted but its MIME structure cannot be processed: {e}"
        ),
    }
}

/// Turns signer reports into an RFC 7281 result, its properties, and a human summary, judged
/// under `policy`: a valid signature over SHA-1 makes the result `neutral` (the signature is
/// intact, but not acceptable here) unless `insecure_sha1_signatures`; any other failure
/// makes it `fail`, with every signer's code in a comment.
fn summarise_reports(reports: &[SignerReport], policy: &PolicyConfig) -> (String, String, String) {
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

/// The Message-ID of a message, for logs.
pub fn message_id(raw: &[u8]) -> String {
    parse_entity(raw)
        .header("Message-ID")
        .map(|h| h.value())
        .unwrap_or_else(|| "-".into())
}

/// Whether `raw` may be signed as `sender`: its header has exactly one `From:` field holding
/// exactly one mailbox ([`address::from_field`]), and that mailbox is the envelope sender
/// (compared without case, as directory addresses are). `Err` says why not, naming both addresses.
fn signing_author(raw: &[u8], sender: &str) -> Result<(), String> {
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

/// The From address of a message: its single From mailbox (lower-cased), or `None` when it has
/// not exactly one ([`address::from_field`] says which way it failed).
pub fn from_address(raw: &[u8]) -> Option<String> {
    address::from_field(raw).address().map(str::to_string)
}

#[cfg(test)]
mod security_tests;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::directory::EnrollOptions;
    use crate::pki::KeyAlgorithm;
    use crate::store::{ReadTx, Store, StoreError, WriteTx};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A fresh directory with a P-256 CA for `acme.test`, `extra` appended to the configuration.
    pub(crate) fn scratch(extra: &str) -> (tempfile::TempDir, Config, Directory) {
        let tmp = tempfile::tempdir().unwrap();
        let config = Config::parse(
            &format!(
                "data_dir = \"{}\"\nkey_encryption_key_file = \"{}\"\ninternal_domains = [\"acme.test\"]\nauthserv_id = \"gw.test\"\n{extra}",
                tmp.path().join("data").display(),
                tmp.path().join("kek").display()
            ),
            std::path::Path::new("t.toml"),
            None,
        )
        .unwrap();
        let dir = Directory::open_or_create(&config).unwrap();
        dir.init_ca("Test Root", KeyAlgorithm::P256, 30).unwrap();
        (tmp, config, dir)
    }

    fn gateway(extra: &str) -> (tempfile::TempDir, Gateway) {
        let (tmp, _, dir) = scratch(extra);
        (tmp, Gateway::new(dir))
    }

    fn inbound(message: &[u8]) -> Transaction {
        Transaction {
            mail_from: "bob@partner.test".into(),
            rcpt_to: vec!["alice@acme.test".into()],
            message: message.to_vec(),
            helo: "mta.test".into(),
        }
    }

    /// A message whose time budget is already spent gets 451 4.3.0, never a half-done result.
    #[test]
    fn a_spent_time_budget_is_a_temporary_failure() {
        let (_tmp, gw) = gateway("[limits]\nmax_processing_secs = 5\n");
        let tx = inbound(b"From: bob@partner.test\r\nSubject: x\r\n\r\nbody\r\n");
        let long_ago = Instant::now()
            .checked_sub(std::time::Duration::from_secs(60))
            .unwrap();
        match gw.process_at(&tx, Listener::Inbound, long_ago) {
            Decision::Refuse {
                code,
                enhanced,
                text,
                ..
            } => {
                assert_eq!((code, enhanced), (451, "4.3.0"));
                assert!(text.contains("limits.max_processing_secs"), "{text}");
            }
            d => panic!("expected a refusal, got {d:?}"),
        }
        assert!(matches!(gw.process(&tx, Listener::Inbound), Decision::Relay(c) if c.len() == 1));
    }

    /// The configured limits, not the defaults, decide: with max_mime_depth = 4 a leaf at depth 4
    /// is read, one at depth 5 is delivered unopened.
    #[test]
    fn configured_limits_reach_the_inbound_path() {
        let (_tmp, gw) = gateway("[limits]\nmax_mime_depth = 4\n");
        let mut verdicts = Vec::new();
        for depth in 1..=6 {
            let body = crate::limits::tests::nested(depth);
            let Decision::Relay(c) = gw.process(&inbound(&body), Listener::Inbound) else {
                panic!("refused");
            };
            verdicts.push(c[0].verdict.clone());
        }
        assert_eq!(
            verdicts,
            ["none", "none", "none", "none", "permerror", "permerror"]
        );
    }

    /// A store that fails every transaction while `broken` is set, as a lost disk or database
    /// connection does.
    struct Flaky {
        inner: Box<dyn Store>,
        broken: Arc<AtomicBool>,
    }

    impl Flaky {
        fn check(&self) -> Result<(), StoreError> {
            if self.broken.load(Ordering::SeqCst) {
                return Err(StoreError::Backend {
                    path: "/test/smimegw.redb".into(),
                    message: "I/O error: Input/output error (os error 5)".into(),
                });
            }
            Ok(())
        }
    }

    impl Store for Flaky {
        fn read(&self) -> Result<Box<dyn ReadTx + '_>, StoreError> {
            self.check()?;
            self.inner.read()
        }
        fn write(&self) -> Result<Box<dyn WriteTx + '_>, StoreError> {
            self.check()?;
            self.inner.write()
        }
        fn describe(&self) -> String {
            self.inner.describe()
        }
    }

    /// Enrolls alice and carol (P-256, ten days).
    pub(crate) fn enroll_alice_and_carol(dir: &Directory) {
        for who in ["alice@acme.test", "carol@acme.test"] {
            dir.enroll(
                who,
                &EnrollOptions {
                    display_name: "T".into(),
                    single: false,
                    key: KeyAlgorithm::P256,
                    days: 10,
                },
            )
            .unwrap();
        }
    }

    /// A gateway over [`Flaky`] with alice and carol enrolled, and the switch that breaks it.
    fn flaky_gateway(extra: &str) -> (tempfile::TempDir, Gateway, Arc<AtomicBool>) {
        let (tmp, _, dir) = scratch(extra);
        enroll_alice_and_carol(&dir);
        let broken = Arc::new(AtomicBool::new(false));
        let b = broken.clone();
        let gw = Gateway::new(dir.map_store(move |inner| Box::new(Flaky { inner, broken: b })));
        (tmp, gw, broken)
    }

    fn tx(from: &str, to: &str) -> Transaction {
        Transaction {
            mail_from: from.into(),
            rcpt_to: vec![to.into()],
            message: format!("From: {from}\r\nTo: {to}\r\nSubject: t\r\n\r\nHello.\r\n")
                .into_bytes(),
            helo: "test".into(),
        }
    }

    /// The message path parses a key once per process, and a rekey is seen at once (the user's
    /// record, read every time, names the new key id).
    #[test]
    fn keys_are_parsed_once_and_a_rekey_is_seen_at_once() {
        let (_tmp, _, dir) = scratch("");
        let opts = EnrollOptions {
            display_name: "A".into(),
            single: false,
            key: KeyAlgorithm::P256,
            days: 30,
        };
        dir.enroll("alice@acme.test", &opts).unwrap();
        let (_, k1, _, _) = dir.signing_identity("alice@acme.test").unwrap();
        let (_, k2, _, _) = dir.signing_identity("alice@acme.test").unwrap();
        assert!(Arc::ptr_eq(&k1, &k2), "the same key was parsed twice");
        let d1 = dir.decryption_keys("alice@acme.test").unwrap();
        dir.renew("alice@acme.test", true, 30).unwrap();
        let (_, k3, _, _) = dir.signing_identity("alice@acme.test").unwrap();
        assert_ne!(
            k1.public_key_der(),
            k3.public_key_der(),
            "the rekeyed key must be used"
        );
        let d2 = dir.decryption_keys("alice@acme.test").unwrap();
        assert_eq!(
            d2.len(),
            d1.len() + 1,
            "old encryption keys keep decrypting"
        );
        assert!(Arc::ptr_eq(&d1[0].1, &d2[0].1));
    }

    #[test]
    fn an_unavailable_directory_defers_outbound_mail_instead_of_sending_it_unprotected() {
        let (_tmp, gw, broken) = flaky_gateway("");
        let signed = |d: Decision| match d {
            Decision::Relay(c) => c.len() == 1 && c[0].kind != ActionKind::Unchanged,
            Decision::Refuse { .. } => false,
        };
        let deferred = |d: Decision| matches!(d, Decision::Refuse { code: 451, enhanced: "4.3.0", ref text, .. } if text == UNAVAILABLE);
        assert!(signed(gw.process(
            &tx("alice@acme.test", "carol@acme.test"),
            Listener::Submission
        )));
        assert!(signed(gw.process(
            &tx("alice@acme.test", "bob@partner.test"),
            Listener::Submission
        )));

        broken.store(true, Ordering::SeqCst);
        // Before the fix these went out unsigned ("not enrolled") and unencrypted.
        assert!(deferred(gw.process(
            &tx("alice@acme.test", "carol@acme.test"),
            Listener::Submission
        )));
        assert!(deferred(gw.process(
            &tx("alice@acme.test", "bob@partner.test"),
            Listener::Submission
        )));
        // Mail the gateway does not touch needs no directory.
        assert!(matches!(
            gw.process(&tx("x@a.test", "y@b.test"), Listener::Submission),
            Decision::Relay(_)
        ));

        broken.store(false, Ordering::SeqCst);
        assert!(signed(gw.process(
            &tx("alice@acme.test", "carol@acme.test"),
            Listener::Submission
        )));
    }

    /// Inbound mail that needs the directory (keys to decrypt, trust to verify) waits for it:
    /// before, a lost directory read as "no key held" and the user got the message still
    /// encrypted, or unverified.
    #[test]
    fn an_unavailable_directory_defers_inbound_mail_that_needs_it() {
        // Internal mail is only signed unless a rule says otherwise: carol's says encrypt.
        let (_tmp, gw, broken) =
            flaky_gateway("[policy.users.\"carol@acme.test\"]\nencrypt = \"required\"\n");
        // Signed and encrypted to carol, as a partner's gateway would send it.
        let protected = match gw.process(
            &tx("alice@acme.test", "carol@acme.test"),
            Listener::Submission,
        ) {
            Decision::Relay(c) => c[0].message.clone(),
            d => panic!("{d:?}"),
        };
        let from_partner = |message: &[u8]| Transaction {
            mail_from: "bob@partner.test".into(),
            rcpt_to: vec!["carol@acme.test".into()],
            message: message.to_vec(),
            helo: "partner".into(),
        };
        let kinds = |d: Decision| match d {
            Decision::Relay(c) => c.iter().map(|c| c.kind).collect::<Vec<_>>(),
            d => panic!("{d:?}"),
        };
        assert_eq!(
            kinds(gw.process(&from_partner(&protected), Listener::Inbound)),
            [ActionKind::DecryptedVerified]
        );

        // Signed only (no certificate for the partner): verifying needs the trust store.
        let signed = match gw.process(
            &tx("alice@acme.test", "bob@partner.test"),
            Listener::Submission,
        ) {
            Decision::Relay(c) => c[0].message.clone(),
            d => panic!("{d:?}"),
        };
        assert_eq!(
            kinds(gw.process(&from_partner(&signed), Listener::Inbound)),
            [ActionKind::Verified]
        );

        broken.store(true, Ordering::SeqCst);
        let deferred = |d: Decision| matches!(d, Decision::Refuse { code: 451, enhanced: "4.3.0", direction: Direction::Inbound, ref text } if text == UNAVAILABLE);
        assert!(deferred(
            gw.process(&from_partner(&protected), Listener::Inbound)
        ));
        assert!(deferred(
            gw.process(&from_partner(&signed), Listener::Inbound)
        ));
        // Plain mail needs nothing from the directory and is still annotated and delivered.
        assert_eq!(
            kinds(gw.process(
                &tx("bob@partner.test", "carol@acme.test"),
                Listener::Inbound
            )),
            [ActionKind::Annotated]
        );

        broken.store(false, Ordering::SeqCst);
        assert_eq!(
            kinds(gw.process(&from_partner(&protected), Listener::Inbound)),
            [ActionKind::DecryptedVerified]
        );
    }

    // ---- What a verdict covers (issue 11, part 5) ----

    const PLAIN: &[u8] =
        b"From: carol@acme.test\r\nTo: alice@acme.test\r\nSubject: plans\r\n\r\nThe plaintext.\r\n";

    fn sign_as(gw: &Gateway, who: &str, msg: &[u8], opaque: bool) -> Vec<u8> {
        let (cert, key, chain, _) = gw.dir.signing_identity(who).unwrap();
        let signer = [Signer {
            cert: &cert,
            key: &key,
            chain: &chain,
            encryption_cert: None,
        }];
        message::sign(msg, &signer, opaque, &SignOptions::default()).unwrap()
    }

    fn encrypt_to_alice(gw: &Gateway, msg: &[u8], cipher: ContentCipher) -> Vec<u8> {
        let cert = gw.dir.encryption_cert("alice@acme.test").unwrap();
        let r = [Recipient {
            cert: &cert,
            oaep: false,
            id: RecipientIdKind::IssuerAndSerial,
        }];
        message::encrypt(msg, &r, cipher).unwrap()
    }

    /// The one copy an inbound message from bob@partner.test to alice becomes.
    fn open_one(gw: &Gateway, msg: &[u8]) -> Copy {
        match gw.process(&inbound(msg), Listener::Inbound) {
            Decision::Relay(mut c) if c.len() == 1 => c.remove(0),
            d => panic!("{d:?}"),
        }
    }

    fn text(c: &Copy) -> String {
        String::from_utf8_lossy(&c.message).into_owned()
    }

    /// The Authentication-Results field we wrote, unfolded.
    fn ar(c: &Copy) -> String {
        let e = parse_entity(&c.message);
        e.header("Authentication-Results").unwrap().value()
    }

    /// The X-Smimegw-Result field we wrote, unfolded.
    fn summary_of(c: &Copy) -> String {
        let e = parse_entity(&c.message);
        e.header("X-Smimegw-Result").unwrap().value()
    }

    fn set_policy(gw: &Gateway, f: impl FnOnce(&mut PolicyConfig)) {
        let mut c = (*gw.policy_config()).clone();
        f(&mut c.policy);
        gw.reload_policy(&c);
    }

    /// Before, carol's signature around a ciphertext she did not make read `smime=pass` on top
    /// of the decrypted text: she could pass off anyone's message to alice as her own.
    #[test]
    fn encrypt_then_sign_covers_the_ciphertext_only_unless_the_same_signer_signed_inside() {
        let (_tmp, gw, _) = flaky_gateway("");
        let gcm = ContentCipher::Aes256Gcm;
        let ciphertext = encrypt_to_alice(&gw, PLAIN, gcm);
        for opaque in [true, false] {
            let c = open_one(&gw, &sign_as(&gw, "carol@acme.test", &ciphertext, opaque));
            assert_eq!(c.verdict, "neutral", "opaque {opaque}: {}", text(&c));
            assert!(
                ar(&c)
                    .contains("smime=neutral reason=\"the signature covers the ciphertext only\""),
                "{}",
                ar(&c)
            );
            assert!(text(&c).contains("The plaintext."), "opened: {}", text(&c));
            assert_eq!(c.kind, ActionKind::DecryptedVerified);
        }
        // Carol signed the plaintext inside too, with the same key: her inner verdict stands.
        let inner = encrypt_to_alice(&gw, &sign_as(&gw, "carol@acme.test", PLAIN, false), gcm);
        let c = open_one(&gw, &sign_as(&gw, "carol@acme.test", &inner, true));
        assert_eq!(c.verdict, "pass", "{}", text(&c));
        assert!(!ar(&c).contains("reason="), "{}", ar(&c));
        // Signed by alice inside but wrapped by carol: not the same signer.
        let alices = b"From: carol@acme.test\r\nSubject: x\r\n\r\nhi\r\n";
        let inner = encrypt_to_alice(&gw, &sign_as(&gw, "alice@acme.test", alices, false), gcm);
        let c = open_one(&gw, &sign_as(&gw, "carol@acme.test", &inner, true));
        assert!(
            ar(&c).contains("the signature covers the ciphertext only"),
            "{}",
            ar(&c)
        );
        assert_ne!(c.verdict, "pass");
        // Sign-then-encrypt, the normal nesting, keeps its verdict (CBC too: signed inside).
        let normal = sign_as(&gw, "carol@acme.test", PLAIN, false);
        for cipher in [gcm, ContentCipher::Aes256Cbc] {
            let c = open_one(&gw, &encrypt_to_alice(&gw, &normal, cipher));
            assert_eq!(c.verdict, "pass", "{cipher}: {}", text(&c));
            assert!(!ar(&c).contains("reason="), "{}", ar(&c));
            assert_eq!(c.kind, ActionKind::DecryptedVerified);
        }
    }

    /// Before, content decrypted from AES-CBC without a signature inside was delivered
    /// decrypted as `smime=none`, saying nothing of EFAIL-style tampering (CVE-2017-17689).
    #[test]
    fn content_from_cbc_without_a_passing_signature_inside_follows_unauthenticated_cbc() {
        let (_tmp, gw, _) = flaky_gateway("");
        let cbc = encrypt_to_alice(&gw, PLAIN, ContentCipher::Aes256Cbc);
        let unprotected =
            "content not integrity-protected (aes256-cbc without a valid signature inside)";
        // The default: kept encrypted, delivered as received.
        let c = open_one(&gw, &cbc);
        assert_eq!(c.kind, ActionKind::Undecrypted, "{}", text(&c));
        assert!(c.message.ends_with(&cbc));
        assert!(!text(&c).contains("The plaintext."));
        assert!(ar(&c).contains(unprotected), "{}", ar(&c));
        let summary = summary_of(&c);
        assert!(
            summary.contains(unprotected) && summary.contains("keep_encrypted"),
            "{summary}"
        );

        // deliver (a reload: the snapshot of the next transaction applies).
        set_policy(&gw, |p| {
            p.unauthenticated_cbc = Some(UnauthenticatedCbc::Deliver)
        });
        let c = open_one(&gw, &cbc);
        assert_eq!(
            (c.kind, c.verdict.as_str()),
            (ActionKind::Decrypted, "none")
        );
        assert!(text(&c).contains("The plaintext.\r\n"));
        assert!(text(&c).contains("\r\nSubject: plans\r\n"));
        assert!(ar(&c).contains(unprotected), "{}", ar(&c));
        // A signature inside that does not pass is no protection either.
        let forged = b"From: alice@acme.test\r\nSubject: from alice?\r\n\r\nx\r\n";
        let c = open_one(
            &gw,
            &encrypt_to_alice(
                &gw,
                &sign_as(&gw, "carol@acme.test", forged, false),
                ContentCipher::Aes256Cbc,
            ),
        );
        assert!(c.verdict.starts_with("fail"), "{}", c.verdict);
        assert!(ar(&c).contains(unprotected), "{}", ar(&c));

        // annotate: the reader sees it in the Subject.
        set_policy(&gw, |p| {
            p.unauthenticated_cbc = Some(UnauthenticatedCbc::Annotate)
        });
        let c = open_one(&gw, &cbc);
        assert!(
            text(&c).contains("\r\nSubject: [not integrity-protected] plans\r\n"),
            "{}",
            text(&c)
        );
        assert!(ar(&c).contains(unprotected));

        // GCM is integrity-protected: decrypted, nothing to say.
        set_policy(&gw, |p| p.unauthenticated_cbc = None);
        let c = open_one(&gw, &encrypt_to_alice(&gw, PLAIN, ContentCipher::Aes128Gcm));
        assert_eq!(
            (c.kind, c.verdict.as_str()),
            (ActionKind::Decrypted, "none")
        );
        assert!(!ar(&c).contains("reason="), "{}", ar(&c));
    }

    /// Before, a signature over SHA-1 read `smime=pass`.
    #[test]
    fn a_sha1_signature_is_not_pass_unless_insecure_sha1_signatures() {
        crate::test_peers::require("openssl", "openssl");
        let (tmp, gw, _) = flaky_gateway("");
        // carol signs with P-256 (ECDSA), dave with RSA.
        gw.dir
            .enroll(
                "dave@acme.test",
                &EnrollOptions {
                    display_name: "D".into(),
                    single: true,
                    key: KeyAlgorithm::Rsa2048,
                    days: 10,
                },
            )
            .unwrap();
        let d = tmp.path();
        std::fs::write(
            d.join("in.txt"),
            "Content-Type: text/plain\r\n\r\nold tools\r\n",
        )
        .unwrap();
        let sign = |who: &str, md: &str| {
            let (cert, key, _, _) = gw.dir.signing_identity(who).unwrap();
            std::fs::write(d.join("s.pem"), cert.to_pem()).unwrap();
            let pem = crate::pki::cert::pem_encode("PRIVATE KEY", key.pkcs8_der());
            std::fs::write(d.join("s.key"), pem).unwrap();
            let out = std::process::Command::new("openssl")
                .current_dir(d)
                .args([
                    "cms", "-sign", "-md", md, "-in", "in.txt", "-signer", "s.pem",
                ])
                .args(["-inkey", "s.key", "-from", who, "-subject", "legacy"])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{err}");
            out.stdout
        };
        let not_accepted = "reason=\"signed with SHA-1 (digestAlgorithm sha-1), not accepted";
        for who in ["dave@acme.test", "carol@acme.test"] {
            let c = open_one(&gw, &sign(who, "sha1"));
            assert_eq!(c.verdict, "neutral", "{who}: {}", text(&c));
            assert!(ar(&c).contains(not_accepted), "{}", ar(&c));
            let summary = summary_of(&c);
            assert!(
                summary.contains("sha1-not-accepted") && summary.contains("SHA-1"),
                "{summary}"
            );
        }

        let sha1 = sign("dave@acme.test", "sha1");
        set_policy(&gw, |p| p.insecure_sha1_signatures = Some(true));
        let c = open_one(&gw, &sha1);
        assert_eq!(c.verdict, "pass", "{}", text(&c));
        let accepted = "reason=\"signed with SHA-1 (digestAlgorithm sha-1), accepted by \
                        insecure_sha1_signatures\"";
        assert!(ar(&c).contains(accepted), "{}", ar(&c));

        set_policy(&gw, |p| p.insecure_sha1_signatures = None);
        let c = open_one(&gw, &sign("dave@acme.test", "sha256"));
        assert_eq!(c.verdict, "pass", "{}", text(&c));
        assert!(!ar(&c).contains("reason="), "{}", ar(&c));
    }
}
