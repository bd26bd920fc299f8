//! Human-readable output: summaries and tables.

use smimegw::directory::{BundleImport, RequestSummary, TrustCheck, TrustSummary, UserSummary};
use smimegw::pki::Cert;
use smimegw::pki::ca::rfc3339;
use smimegw::store::AuditEntry;

pub(super) fn cert_summary(c: &Cert) {
    println!("  subject:     {}", c.subject_string());
    println!("  issuer:      {}", c.issuer_string());
    println!("  serial:      {}", c.serial_hex());
    println!(
        "  valid:       {} .. {}",
        rfc3339(c.not_before()),
        rfc3339(c.not_after())
    );
    println!("  sha256:      {}", c.fingerprint_hex());
}

pub(super) fn user(u: &UserSummary) {
    println!("{} <{}>  [{:?}]", u.display_name, u.email, u.status);
    for c in &u.certificates {
        println!(
            "  {:<10} {:<11} serial {}  until {}  {}{}",
            c.role.to_string(),
            c.state,
            c.serial,
            c.not_after,
            c.source,
            if c.key_held {
                ", key held"
            } else {
                ", key not held"
            }
        );
    }
}

pub(super) fn user_table(users: &[UserSummary]) {
    if users.is_empty() {
        println!("(no users)");
        return;
    }
    println!(
        "{:<32} {:<24} {:<8} {:<22} certificates",
        "EMAIL", "NAME", "STATUS", "FIRST EXPIRY"
    );
    for u in users {
        let current: Vec<_> = u
            .certificates
            .iter()
            .filter(|c| c.state == "current")
            .collect();
        let first = current
            .iter()
            .map(|c| c.not_after.clone())
            .min()
            .unwrap_or_default();
        let roles: Vec<String> = current.iter().map(|c| c.role.to_string()).collect();
        println!(
            "{:<32} {:<24} {:<8} {:<22} {}",
            u.email,
            u.display_name,
            format!("{:?}", u.status).to_lowercase(),
            first,
            roles.join("+")
        );
    }
}

pub(super) fn request_table(list: &[RequestSummary]) {
    if list.is_empty() {
        println!("(no requests)");
        return;
    }
    println!(
        "{:<18} {:<32} {:<11} {:<9} {:<22} SUBMITTED BY",
        "ID", "EMAIL", "ROLE", "STATE", "SUBMITTED"
    );
    for r in list {
        println!(
            "{:<18} {:<32} {:<11} {:<9} {:<22} {}",
            r.id,
            r.email,
            r.role.to_string(),
            r.state,
            r.submitted,
            r.submitted_by
        );
    }
}

pub(super) fn trust_table(list: &[TrustSummary]) {
    if list.is_empty() {
        println!("(no trusted roots or cross-certificates; only our own CA is trusted)");
        return;
    }
    println!(
        "{:<18} {:<16} {:<22} {:<40} {:<24} SOURCE",
        "ID", "KIND", "UNTIL", "SUBJECT", "DOMAINS"
    );
    for t in list {
        let domains = if !t.permitted_domains.is_empty() {
            t.permitted_domains.join(",")
        } else if t.source.is_some() && !t.internal_too {
            "(all but internal)".to_string()
        } else {
            "(all)".to_string()
        };
        println!(
            "{:<18} {:<16} {:<22} {:<40} {:<24} {}",
            t.id,
            t.kind,
            t.not_after,
            t.subject,
            domains,
            t.source.as_deref().unwrap_or("-")
        );
    }
}

pub(super) fn bundle_import(r: &BundleImport) {
    println!(
        "Imported {} as source {}: {} added, {} removed, {} kept{}",
        r.format,
        r.source,
        r.added.len(),
        r.removed.len(),
        r.kept,
        if r.internal_too {
            " (they vouch for internal addresses too)"
        } else {
            " (never for internal addresses)"
        }
    );
    for t in &r.added {
        println!("  added    {} {}", t.id, t.subject);
    }
    for t in &r.removed {
        println!("  removed  {} {}", t.id, t.subject);
    }
    for s in &r.skipped {
        println!("  skipped  line {}: {}: {}", s.line, s.name, s.reason);
    }
}

pub(super) fn issued_table(list: &[smimegw::store::IssuedRecord]) {
    println!(
        "{:<40} {:<17} {:<20} {:<20} {:<30} SUBJECT",
        "SERIAL", "PURPOSE", "ISSUED", "NOT AFTER", "STATE"
    );
    for r in list {
        let state = match &r.revoked {
            Some((at, reason)) => format!("revoked {} ({reason})", rfc3339(*at)),
            None => "valid".to_string(),
        };
        println!(
            "{:<40} {:<17} {:<20} {:<20} {:<30} {}",
            r.serial,
            r.purpose,
            rfc3339(r.issued),
            rfc3339(r.not_after),
            state,
            r.subject
        );
    }
}

pub(super) fn renewal(r: &smimegw::directory::RenewalReport, dry_run: bool) {
    let verb = if dry_run { "would renew" } else { "renewed" };
    for d in &r.renewed {
        println!(
            "{verb:<14} {:<32} {:<10} serial {} (expires {})",
            d.email,
            d.role,
            d.serial,
            rfc3339(d.not_after)
        );
    }
    for d in &r.not_held {
        println!(
            "{:<14} {:<32} {:<10} serial {} (expires {}): the gateway does not hold the key; the user must send a new request or certificate",
            "cannot renew",
            d.email,
            d.role,
            d.serial,
            rfc3339(d.not_after)
        );
    }
    for (email, why) in &r.failed {
        println!("{:<14} {email:<32} {why}", "FAILED");
    }
    println!(
        "{} certificate(s) {verb}, {} due but not held, {} failed",
        r.renewed.len(),
        r.not_held.len(),
        r.failed.len()
    );
}

pub(super) fn audit_table(log: &[AuditEntry]) {
    for e in log {
        println!(
            "{:>5} {} {:<10} {:<22} {:<32} {}",
            e.seq,
            rfc3339(e.at),
            e.actor,
            e.action,
            e.subject,
            e.detail
        );
    }
}

pub(super) fn trust_check(
    leaf: &Cert,
    verdict: &TrustCheck,
    revocation: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    match verdict {
        Ok(p) => {
            if json {
                let v = serde_json::json!({
                    "trusted": true,
                    "anchor": p.anchor_label,
                    "path": p.path.iter().map(|c| serde_json::json!({
                        "subject": c.subject_string(),
                        "serial": c.serial_hex(),
                        "sha256": c.fingerprint_hex(),
                    })).collect::<Vec<_>>(),
                    "warnings": p.warnings,
                    "revocation": revocation,
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("trusted: {}", leaf.subject_string());
                println!("anchor:  {}", p.anchor_label);
                println!("path:");
                for (i, c) in p.path.iter().enumerate() {
                    println!("  {i}: {} (serial {})", c.subject_string(), c.serial_hex());
                }
                if let Some(r) = revocation {
                    println!("revocation: {r}");
                }
                for w in &p.warnings {
                    println!("warning: {w}");
                }
            }
        }
        Err(e) => {
            if json {
                let v = serde_json::json!({
                    "trusted": false,
                    "code": e.code(),
                    "reason": e.to_string(),
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("NOT trusted: {}", leaf.subject_string());
                println!("reason:  {} ({})", e, e.code());
            }
        }
    }
    Ok(())
}
