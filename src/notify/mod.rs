//! Notices by mail (`[notify]`): what `serve` tells people, through the next hop like any mail.
//!
//! - Users, before a certificate the gateway cannot renew expires (CSR users, imports; and the
//!   gateway's own when automatic renewal is off), once for each of `notify.days` they reach,
//!   with what to do; and after the gateway renewed theirs, with the new certificate attached
//!   (`application/pkix-cert`, RFC 2585) for their own client.
//! - Requesters, when their request was approved (certificate attached) or denied (with the
//!   reason). The pass finds decisions in the directory, whichever node or CLI made them.
//! - Administrators (`notify.admins`), once a day: pending requests, certificates expiring within
//!   the largest of `notify.days`, CRLs whose nextUpdate is less than two days away, the
//!   gateway's harvest failures, and the CA's own expiry.
//!
//! Every notice is signed (RFC 8551 multipart/signed) with the gateway's own certificate for
//! `notify.from` ([`Directory::service_identity`]), and marked `Auto-Submitted: auto-generated`
//! (RFC 3834) so that vacation responders stay quiet. None goes twice, also across restarts and
//! nodes: each is claimed in the directory before it is sent and marked sent after the next hop
//! accepted it ([`crate::directory::NoticeOutcome`] says how a refusal is handled). A pass runs
//! under the directory's notice lease, one node at a time.

pub mod templates;

use std::path::PathBuf;

use crate::config::Config;
use crate::directory::{Directory, DirectoryError, NoticeOutcome};
use crate::pki::ca::rfc3339;
use crate::pki::cert::Cert;
use crate::pki::profile;
use crate::pki::revocation::Crl;
use crate::smime::message::{self, SmimeError};
use crate::smime::signed::{SignOptions, Signer};
use crate::smtp::relay::RelayOutcome;
use crate::store::{
    CertSource, CertState, CrlRecord, ReadTxExt, RequestRecord, RequestState, Table, UserRecord,
    UserStatus,
};
pub use templates::{Kind, Template, TemplateError};

/// How far back a decision or a renewal is still announced: a notice the next hop kept refusing
/// with 4xx is retried at every pass for this long. (Older events, from before notices were
/// turned on, are not announced.)
pub const ANNOUNCE_WINDOW_SECS: i64 = 7 * 86_400;
/// CRLs whose nextUpdate is this close are named in the digest.
pub const CRL_STALE_SECS: i64 = 2 * 86_400;

/// Why a notice pass could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// The directory could not be read or written.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// The notice could not be signed.
    #[error("cannot sign the notice as {from}: {source}")]
    Sign {
        /// The sender.
        from: String,
        /// Why.
        source: SmimeError,
    },
}

/// One notice to send.
#[derive(Clone, Debug)]
pub struct Notice {
    /// The record key: kind, subject and event, e.g. `expiring/bob@acme.test/0a1b/7`.
    pub key: String,
    /// Its kind.
    pub kind: Kind,
    /// Recipients (envelope and `To:`).
    pub to: Vec<String>,
    /// Placeholder values.
    pub values: Vec<(&'static str, String)>,
    /// Certificates to attach (DER), with a file name each.
    pub attachments: Vec<(String, Vec<u8>)>,
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotifyReport {
    /// Sent: the record keys.
    pub sent: Vec<String>,
    /// The next hop said "later": tried again at the next pass.
    pub retry: Vec<(String, String)>,
    /// The next hop refused for good: not tried again.
    pub refused: Vec<(String, String)>,
    /// Template files that could not be used (the built-in text was).
    pub template_errors: Vec<String>,
}

/// What sends one notice: envelope sender, recipients, message; the next hop's answer.
pub type Sender<'a> = dyn FnMut(&str, &[String], &[u8]) -> RelayOutcome + 'a;

/// Where the template files are: `notices/` beside the configuration file.
pub fn template_dir(config: &Config) -> PathBuf {
    config
        .source
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join("notices")
}

/// One notice pass: takes the lease (`Ok(None)` when another gateway holds it), finds what is
/// due, and sends each notice not sent before through `send` (envelope sender, recipients,
/// message). `harvest_failures` is the gateway's count, for the digest.
pub fn run(
    dir: &Directory,
    holder: &str,
    harvest_failures: u64,
    send: &mut Sender<'_>,
) -> Result<Option<NotifyReport>, NotifyError> {
    if !dir.take_notice_lease(holder)? {
        return Ok(None);
    }
    let result = pass(dir, holder, harvest_failures, send);
    let released = dir.release_notice_lease(holder);
    let report = result?;
    released?;
    Ok(Some(report))
}

fn pass(
    dir: &Directory,
    holder: &str,
    harvest_failures: u64,
    send: &mut Sender<'_>,
) -> Result<NotifyReport, NotifyError> {
    let config = dir.config();
    let now = profile::now();
    let mut notices = due(dir, now)?;
    notices.extend(digest(dir, now, harvest_failures)?);
    let mut report = NotifyReport::default();
    let tdir = template_dir(config);
    let from = config.notify.sender().to_string();
    let mut identity = None;
    for n in notices {
        if !dir.claim_notice(&n.key, holder)? {
            continue;
        }
        let template = Template::load(&tdir, n.kind).unwrap_or_else(|e| {
            report.template_errors.push(e.to_string());
            Template::builtin(n.kind)
        });
        let built = (|| {
            let (cert, key, chain, enc) = match identity {
                Some(ref i) => i,
                None => identity.insert(dir.service_identity(
                    &from,
                    config.ca.key,
                    config.ca.user_days,
                )?),
            };
            let mut values = n.values.clone();
            values.push(("from", from.clone()));
            let (subject, body) = template.render(&values);
            let raw = compose(&from, &n.to, &subject, &body, &n.attachments, now)?;
            let signers = [Signer {
                cert,
                key,
                chain,
                encryption_cert: enc.as_ref(),
            }];
            message::sign(&raw, &signers, false, &SignOptions::default()).map_err(|source| {
                NotifyError::Sign {
                    from: from.clone(),
                    source,
                }
            })
        })();
        let signed = match built {
            Ok(s) => s,
            Err(e) => {
                // Nothing went out: the claim is released for the next pass.
                let _ = dir.finish_notice(&n.key, holder, &NoticeOutcome::Retry, "");
                return Err(e);
            }
        };
        let detail = format!("{} to {}", n.kind.name(), n.to.join(", "));
        match send(&from, &n.to, &signed) {
            RelayOutcome::Accepted => {
                dir.finish_notice(&n.key, holder, &NoticeOutcome::Sent, &detail)?;
                report.sent.push(n.key);
            }
            RelayOutcome::Temporary(why) => {
                dir.finish_notice(&n.key, holder, &NoticeOutcome::Retry, &detail)?;
                report.retry.push((n.key, why));
            }
            RelayOutcome::Permanent(why) => {
                dir.finish_notice(
                    &n.key,
                    holder,
                    &NoticeOutcome::Refused(why.clone()),
                    &detail,
                )?;
                report.refused.push((n.key, why));
            }
        }
    }
    Ok(report)
}

/// The notice message before signing: RFC 5322 header (every value checked to hold no control
/// character) and a text/plain body, or multipart/mixed with the certificates attached.
fn compose(
    from: &str,
    to: &[String],
    subject: &str,
    body: &str,
    attachments: &[(String, Vec<u8>)],
    now: i64,
) -> Result<Vec<u8>, NotifyError> {
    let domain = from.rsplit_once('@').map_or("localhost", |(_, d)| d);
    let id = crate::mime::new_boundary("n").map_err(|e| NotifyError::Sign {
        from: from.to_string(),
        source: e.into(),
    })?;
    let date = time::OffsetDateTime::from_unix_timestamp(now)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc2822)
                .ok()
        })
        .unwrap_or_default();
    let mut h = String::new();
    // Addresses were checked when they were read (configuration, directory): no white space,
    // no control character. Checked again, as this is a header.
    let clean = |s: &str| !s.chars().any(|c| c.is_control() || c.is_whitespace());
    let to: Vec<&String> = to.iter().filter(|a| clean(a)).collect();
    h.push_str(&format!("From: smimegw <{from}>\r\n"));
    let to_list: Vec<String> = to.iter().map(|a| format!("<{a}>")).collect();
    h.push_str(&format!("To: {}\r\n", to_list.join(",\r\n ")));
    h.push_str(&format!("Subject: {}\r\n", encode_subject(subject)));
    h.push_str(&format!("Date: {date}\r\n"));
    h.push_str(&format!("Message-ID: <{id}@{domain}>\r\n"));
    h.push_str("Auto-Submitted: auto-generated\r\n");
    let text = crate::mime::to_crlf(body.as_bytes());
    let mut out = h.into_bytes();
    let text_type =
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n";
    if attachments.is_empty() {
        out.extend_from_slice(text_type.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&text);
        return Ok(out);
    }
    let boundary = format!("smimegw_notice_{id}");
    out.extend_from_slice(
        format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n").as_bytes(),
    );
    out.extend_from_slice(format!("--{boundary}\r\n{text_type}\r\n").as_bytes());
    out.extend_from_slice(&text);
    if !text.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    for (name, der) in attachments {
        let name: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
            .collect();
        out.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: application/pkix-cert; name=\"{name}\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\
                 Content-Disposition: attachment; filename=\"{name}\"\r\n\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(&crate::mime::encode_base64_lines(der));
        if !out.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok(out)
}

/// A Subject value: ASCII as it is (folded at 78 where words allow), anything else as RFC 2047
/// encoded-words (UTF-8, base64), each within RFC 2047's 75 characters. The text holds no
/// control character ([`Template::render`]).
fn encode_subject(subject: &str) -> String {
    use base64::Engine as _;
    let subject: String = subject.chars().filter(|c| !c.is_control()).collect();
    if subject.is_ascii() && !subject.contains("=?") {
        let mut out = String::new();
        let mut line = "Subject: ".len();
        for (i, w) in subject.split(' ').enumerate() {
            if i > 0 {
                if line + 1 + w.len() > 78 {
                    out.push_str("\r\n ");
                    line = 1;
                } else {
                    out.push(' ');
                    line += 1;
                }
            }
            out.push_str(w);
            line += w.len();
        }
        return out;
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in subject.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| {
            format!(
                "=?UTF-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w)
            )
        })
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// What to tell a user whose certificate the gateway cannot renew.
fn what_to_do(source: &CertSource, admins: &[String]) -> String {
    let admin = if admins.is_empty() {
        "your mail administrator".to_string()
    } else {
        format!("your mail administrator ({})", admins.join(", "))
    };
    match source {
        CertSource::Request { .. } => format!(
            "The gateway does not hold this certificate's private key (you made it), so it\n\
             cannot renew it. Make a new certificate request (CSR) for this address in your\n\
             mail client or with your usual tool, and send the request to {admin}.\n\
             Once it is approved, you receive the new certificate by mail."
        ),
        CertSource::Imported => format!(
            "This certificate was imported from another authority, so the gateway cannot\n\
             renew it. Get a new one (as a PKCS #12 file) from that authority and give it to\n\
             {admin}, or send them a new certificate request (CSR)."
        ),
        CertSource::Enrolled => format!(
            "The gateway holds this certificate's key but renews nothing by itself here\n\
             (automatic renewal is off). Ask {admin} to run `smimegw user renew`."
        ),
    }
}

/// The user notices due now: expiry warnings, renewals, request decisions.
fn due(dir: &Directory, now: i64) -> Result<Vec<Notice>, DirectoryError> {
    let config = dir.config();
    let from = config.notify.sender();
    let read = dir.store().read()?;
    let users: Vec<(String, UserRecord)> = read.scan_json(Table::Users)?;
    let requests: Vec<(String, RequestRecord)> = read.scan_json(Table::Requests)?;
    drop(read);
    let mut out = Vec::new();
    let auto_renewal = config.ca.renew_before_days > 0;
    for (_, u) in &users {
        if u.status != UserStatus::Active || u.email == from {
            continue;
        }
        // Expiry warnings, for what the gateway will not renew by itself: one per user and
        // threshold, naming every certificate that reached it (a dual pair goes together).
        let mut warnings: Vec<(u32, Vec<&crate::store::UserCert>)> = Vec::new();
        for c in u.certs.iter().filter(|c| c.state == CertState::Current) {
            let held = c.key_id.is_some() && matches!(c.source, CertSource::Enrolled);
            let left = c.not_after - now;
            if (held && auto_renewal) || left <= 0 {
                continue;
            }
            // The smallest of `days` still ahead: one notice per threshold reached, and a
            // certificate first seen at 5 days gets the 7-day notice only.
            let Some(n) = config
                .notify
                .days
                .iter()
                .copied()
                .filter(|d| left <= i64::from(*d) * 86_400)
                .min()
            else {
                continue;
            };
            match warnings.iter_mut().find(|(d, _)| *d == n) {
                Some((_, v)) => v.push(c),
                None => warnings.push((n, vec![c])),
            }
        }
        for (n, certs) in warnings {
            let mut serials: Vec<&str> = certs.iter().map(|c| c.serial.as_str()).collect();
            serials.sort_unstable();
            let roles: Vec<String> = certs.iter().map(|c| c.role.to_string()).collect();
            let Some(first) = certs.iter().min_by_key(|c| c.not_after) else {
                continue;
            };
            out.push(Notice {
                key: format!("expiring/{}/{}/{n}", u.email, serials.join("+")),
                kind: Kind::Expiring,
                to: vec![u.email.clone()],
                values: vec![
                    ("user", u.display_name.clone()),
                    ("email", u.email.clone()),
                    ("role", roles.join(" and ")),
                    ("days", n.to_string()),
                    ("serial", serials.join(", ")),
                    ("not_after", rfc3339(first.not_after)),
                    (
                        "what_to_do",
                        what_to_do(&first.source, &config.notify.admins),
                    ),
                ],
                attachments: Vec::new(),
            });
        }
        // Renewals: a current certificate the gateway issued and holds the key of, whose
        // predecessor in the same role was superseded lately.
        let renewed: Vec<_> = u
            .certs
            .iter()
            .filter(|c| {
                c.state == CertState::Current
                    && c.key_id.is_some()
                    && matches!(c.source, CertSource::Enrolled)
                    && u.certs.iter().any(|p| {
                        p.role == c.role
                            && matches!(p.source, CertSource::Enrolled)
                            && matches!(p.state, CertState::Superseded { at } if at >= now - ANNOUNCE_WINDOW_SECS)
                    })
            })
            .collect();
        if !renewed.is_empty() {
            let mut serials: Vec<&str> = renewed.iter().map(|c| c.serial.as_str()).collect();
            serials.sort_unstable();
            let until = renewed.iter().map(|c| c.not_after).min().unwrap_or(0);
            let encryption = renewed.iter().any(|c| c.role.encrypts());
            out.push(Notice {
                key: format!("renewed/{}/{}", u.email, serials.join("+")),
                kind: Kind::Renewed,
                to: vec![u.email.clone()],
                values: vec![
                    ("user", u.display_name.clone()),
                    ("email", u.email.clone()),
                    ("serial", serials.join(", ")),
                    ("not_after", rfc3339(until)),
                    (
                        "what_to_do",
                        if encryption {
                            "Import the attached certificate into your mail client so that it shows\n\
                             the new expiry date. If your administrator renewed with new keys, ask\n\
                             them for a PKCS #12 export of the new encryption key as well."
                                .into()
                        } else {
                            "Nothing to do: the gateway signs with it for you. Keep the attached\n\
                             certificate if your mail client wants to know it."
                                .into()
                        },
                    ),
                ],
                attachments: renewed
                    .iter()
                    .map(|c| (format!("{}-{}.cer", c.role, c.serial), c.cert_der.clone()))
                    .collect(),
            });
        }
    }
    // Request decisions, to the address the request was for.
    for (_, r) in &requests {
        let (kind, at) = match &r.state {
            RequestState::Pending => continue,
            RequestState::Approved { at, .. } => (Kind::Approved, *at),
            RequestState::Denied { at, .. } => (Kind::Denied, *at),
        };
        if at < now - ANNOUNCE_WINDOW_SECS || r.email == from {
            continue;
        }
        let mut values = vec![
            ("user", r.display_name.clone()),
            ("email", r.email.clone()),
            ("request_id", r.id.clone()),
            ("role", r.role.to_string()),
        ];
        let mut attachments = Vec::new();
        match &r.state {
            RequestState::Approved { serial, .. } => {
                values.push(("serial", serial.clone()));
                let not_after = r
                    .cert_der
                    .as_deref()
                    .and_then(|d| Cert::from_der(d).ok())
                    .map(|c| rfc3339(c.not_after()))
                    .unwrap_or_default();
                values.push(("not_after", not_after));
                if let Some(der) = &r.cert_der {
                    attachments.push((format!("{}-{serial}.cer", r.role), der.clone()));
                }
            }
            RequestState::Denied { reason, .. } => values.push(("reason", reason.clone())),
            RequestState::Pending => {}
        }
        out.push(Notice {
            key: format!("{}/{}", kind.name(), r.id),
            kind,
            to: vec![r.email.clone()],
            values,
            attachments,
        });
    }
    Ok(out)
}

/// Today's digest for the administrators (none without `notify.admins`).
fn digest(
    dir: &Directory,
    now: i64,
    harvest_failures: u64,
) -> Result<Option<Notice>, DirectoryError> {
    let config = dir.config();
    if config.notify.admins.is_empty() {
        return Ok(None);
    }
    let date = rfc3339(now).chars().take(10).collect::<String>();
    let horizon = config.notify.horizon_days();
    let pending = dir.list_requests(false)?;
    let pending_lines: Vec<String> = pending
        .iter()
        .map(|r| {
            format!(
                "  {}  {}  {}  submitted {} by {}",
                r.id, r.email, r.role, r.submitted, r.submitted_by
            )
        })
        .collect();
    let expiring: Vec<String> = dir
        .expiry_report()?
        .into_iter()
        .filter(|e| e.not_after <= now + i64::from(horizon) * 86_400)
        .map(|e| {
            format!(
                "  {}  {} {}  expires {}{}",
                e.email,
                e.role,
                e.serial,
                rfc3339(e.not_after),
                if e.renewable {
                    "  (the gateway renews it)"
                } else {
                    "  (the user must send a new request or certificate)"
                }
            )
        })
        .collect();
    let crls: Vec<(String, CrlRecord)> = dir.store().read()?.scan_json(Table::Crls)?;
    let crl_lines: Vec<String> = crls
        .iter()
        .filter_map(|(_, r)| {
            let crl = Crl::from_der(&r.der).ok()?;
            let next = crl.next_update()?;
            (next <= now + CRL_STALE_SECS).then(|| {
                format!(
                    "  {}  next update {}{}",
                    r.issuer,
                    rfc3339(next),
                    if r.imported {
                        "  (imported: smimegw trust import-crl)"
                    } else {
                        "  (ours: smimegw ca crl)"
                    }
                )
            })
        })
        .collect();
    let ca = match dir.ca_cert() {
        Ok(c) => {
            let left = (c.not_after() - now) / 86_400;
            format!(
                "The CA certificate ({}) expires on {} ({left} days from now){}.",
                c.subject_string(),
                rfc3339(c.not_after()),
                if left <= i64::from(horizon) {
                    ": plan its replacement now"
                } else {
                    ""
                }
            )
        }
        Err(e) => format!("The CA certificate could not be read: {e}"),
    };
    let list = |v: &[String]| {
        if v.is_empty() {
            "  (none)".to_string()
        } else {
            v.join("\n")
        }
    };
    Ok(Some(Notice {
        key: format!("digest/{date}"),
        kind: Kind::Digest,
        to: config.notify.admins.clone(),
        values: vec![
            ("date", date),
            ("days", horizon.to_string()),
            ("pending_count", pending.len().to_string()),
            ("pending", list(&pending_lines)),
            ("expiring_count", expiring.len().to_string()),
            ("expiring", list(&expiring)),
            ("crls", list(&crl_lines)),
            ("harvest_failures", harvest_failures.to_string()),
            ("ca", ca),
        ],
        attachments: Vec::new(),
    }))
}

/// How often `serve` runs a notice pass (besides at start and after each renewal pass): request
/// decisions reach the requester within this time.
pub const NOTIFY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// `serve`'s notice task: a pass at start, every [`NOTIFY_INTERVAL`], and whenever `poke` is
/// notified (the renewal task does after each of its passes); each notice goes through `relay`.
/// `holder` names this gateway in the directory's lease and claims.
pub async fn task(
    gateway: std::sync::Arc<crate::gateway::Gateway>,
    relay: crate::smtp::relay::Relay,
    holder: String,
    poke: std::sync::Arc<tokio::sync::Notify>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let (gw, relay2, holder2) = (gateway.clone(), relay.clone(), holder.clone());
        let handle = tokio::runtime::Handle::current();
        let outcome = tokio::task::spawn_blocking(move || {
            let failures = gw.harvest_failures();
            let mut send =
                |from: &str, to: &[String], msg: &[u8]| handle.block_on(relay2.send(from, to, msg));
            run(gw.directory(), &holder2, failures, &mut send)
        })
        .await;
        match outcome {
            Ok(Ok(Some(r))) => {
                for k in &r.sent {
                    tracing::info!(notice = %k, "notice sent");
                }
                for (k, why) in &r.retry {
                    tracing::warn!(notice = %k, reason = %why, "notice not sent; tried again at the next pass");
                }
                for (k, why) in &r.refused {
                    tracing::error!(notice = %k, reason = %why, "notice refused by the next hop; not tried again");
                }
                for e in &r.template_errors {
                    tracing::error!(error = %e, "notice template not used; the built-in text was");
                }
            }
            Ok(Ok(None)) => tracing::debug!("notices: another gateway holds the notice lease"),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "notice pass failed; tried again at the next pass")
            }
            Err(e) => tracing::error!(error = %e, "notice task failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(NOTIFY_INTERVAL) => {}
            _ = poke.notified() => {}
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
