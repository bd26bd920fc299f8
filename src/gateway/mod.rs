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

mod inbound;
mod outbound;
mod refusal;
mod trust;
mod verdict;

pub use refusal::Refusal;

use verdict::{Above, Base, Outer, Signed};

/// A complete mail transaction, as the SMTP session received it: what the gateway treats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// MAIL FROM address (empty for the null sender).
    pub mail_from: String,
    /// RCPT TO addresses, in order.
    pub rcpt_to: Vec<String>,
    /// The message, dot-unstuffed, with CRLF line ends as received.
    pub message: Vec<u8>,
    /// The EHLO/HELO name the client gave.
    pub helo: String,
}

/// One processed copy to relay.
#[derive(Clone, Debug)]
pub struct RelayCopy {
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
    Relay(Vec<RelayCopy>),
    /// Refuse the whole message.
    Refuse {
        /// Why (the SMTP layer chooses the reply).
        refusal: Refusal,
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

    /// Whether recipients are checked at RCPT time at all (`policy.refuse_at = "rcpt"`), so
    /// that the SMTP layer answers the others without a round trip through a worker thread.
    pub fn checks_recipients(&self) -> bool {
        self.policy_config().policy.refuse_at == Some(RefuseAt::Rcpt)
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
    ) -> Result<(), Refusal> {
        let config = self.policy_config();
        if config.policy.refuse_at != Some(RefuseAt::Rcpt) {
            return Ok(());
        }
        let t = policy::treatment(&config, listener, sender, rcpt);
        if t.encrypt == EncryptModeKey::Required {
            match self.recipient_cert(rcpt, None) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(Refusal::NoCertificate {
                        recipients: vec![rcpt.to_string()],
                    });
                }
                Err(e) => {
                    tracing::error!(error = %e, "directory unavailable; recipient deferred");
                    return Err(Refusal::DirectoryUnavailable);
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
            refusal: Refusal::DirectoryUnavailable,
            direction: t.direction,
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
                Direction::Transit => copies.push(RelayCopy {
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
}

/// The answer when a message's time budget is spent: temporary, because a busy machine is the
/// usual cause and the MTA will retry (RFC 3463 X.3.0, "other or undefined mail system status").
fn time_refusal(e: &LimitError, direction: Direction) -> Decision {
    Decision::Refuse {
        refusal: Refusal::Busy { why: e.to_string() },
        direction,
    }
}

/// The Message-ID of a message, for logs.
pub fn message_id(raw: &[u8]) -> String {
    parse_entity(raw)
        .header("Message-ID")
        .map(|h| h.value())
        .unwrap_or_else(|| "-".into())
}

/// The From address of a message: its single From mailbox (lower-cased), or `None` when it has
/// not exactly one ([`address::from_field`] says which way it failed).
pub fn from_address(raw: &[u8]) -> Option<String> {
    address::from_field(raw).address().map(str::to_string)
}

#[cfg(test)]
mod security_tests;

#[cfg(test)]
pub(crate) mod tests;
