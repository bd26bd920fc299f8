//! Root programs (`trust import-bundle`): the e-mail roots of a PEM bundle or of Mozilla's
//! certdata.txt, recorded with the source they came from, so that importing the next release of
//! the same source adds the new roots and removes the dropped ones in one transaction.
//!
//! What is refused: a certificate that is not a CA (the whole file, since a root program ships
//! none and such a file is the wrong one); what is skipped and counted: expired roots,
//! duplicates within the file, and roots already trusted by another entry (added by hand,
//! cross-certified, or from another source), which keep the trust they have.
//!
//! Roots taken this way vouch for the world, not for our own users: unless imported with
//! `--internal-too`, path validation refuses them for internal-domain addresses
//! ([`crate::pki::path::PathError::InternalAddress`]).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::trust::{TrustSummary, summarise};
use super::{Directory, DirectoryError};
use crate::pki::bundle::{self, BundleRoot};
use crate::pki::ca::rfc3339;
use crate::pki::cert::Cert;
use crate::pki::profile;
use crate::store::{ReadTxExt, Table, TrustKind, TrustRecord, WriteTxExt};

/// A certificate of the bundle that was not imported, and why.
#[derive(Clone, Debug, Serialize)]
pub struct BundleSkip {
    /// Line of the file it starts on.
    pub line: usize,
    /// Its label (certdata.txt) or subject.
    pub name: String,
    /// Why: `expired`, `duplicate`, `already-trusted` or `not-for-email`.
    pub kind: &'static str,
    /// Why, in words.
    pub reason: String,
}

/// What `trust import-bundle` did.
#[derive(Clone, Debug, Serialize)]
pub struct BundleImport {
    /// The source name the roots are recorded under.
    pub source: String,
    /// "PEM bundle" or "certdata.txt".
    pub format: String,
    /// Roots new to this source.
    pub added: Vec<TrustSummary>,
    /// Roots of this source that the bundle no longer has (or no longer may give).
    pub removed: Vec<TrustSummary>,
    /// Roots of this source the bundle still has.
    pub kept: usize,
    /// Certificates not imported.
    pub skipped: Vec<BundleSkip>,
    /// Whether the source's roots vouch for internal addresses too.
    pub internal_too: bool,
}

impl BundleImport {
    /// How many certificates were skipped for `kind`.
    pub fn skipped_count(&self, kind: &str) -> usize {
        self.skipped.iter().filter(|s| s.kind == kind).count()
    }
}

/// Whether `c` may be a trust anchor: a CA, or a version 1 self-signed root without extensions
/// (path validation trusts those as CAs, with a warning).
fn may_anchor(c: &Cert) -> Result<(), String> {
    if c.is_ca() {
        return Ok(());
    }
    if c.x509().tbs_certificate().extensions().is_none() && c.is_self_issued() {
        return Ok(());
    }
    Err(match c.basic_constraints() {
        Ok(Some(_)) => "basicConstraints cA is FALSE".into(),
        Ok(None) => "it has no basicConstraints extension".into(),
        Err(e) => e.to_string(),
    })
}

impl Directory {
    /// Imports the e-mail roots of a PEM bundle or certdata.txt (`bytes`, read from `file`)
    /// under `source`, replacing what an earlier import under that source gave: one
    /// transaction and one audit line. Refuses the whole file when it holds a certificate that
    /// cannot be a root; nothing changes then.
    pub fn import_bundle(
        &self,
        bytes: &[u8],
        file: &str,
        source: &str,
        internal_too: bool,
    ) -> Result<BundleImport, DirectoryError> {
        let bad = |line: usize, reason: String| DirectoryError::BadBundle {
            file: file.to_string(),
            line,
            reason,
        };
        let source = source.trim();
        if source.is_empty() || source.chars().any(char::is_control) {
            return Err(bad(
                0,
                format!(
                    "--source '{}' must be a non-empty name",
                    source.escape_debug()
                ),
            ));
        }
        let parsed = bundle::parse(bytes).map_err(|e| bad(e.line, e.reason))?;
        let now = profile::now();
        let mut skipped: Vec<BundleSkip> = parsed
            .not_taken
            .iter()
            .map(|n| BundleSkip {
                line: n.line,
                name: n.label.clone(),
                kind: "not-for-email",
                reason: n.reason.to_string(),
            })
            .collect();
        // id -> the bundle's root, in file order; the first of duplicates wins.
        let mut wanted: BTreeMap<String, &BundleRoot> = BTreeMap::new();
        for (i, r) in parsed.roots.iter().enumerate() {
            let c = &r.cert;
            let named = || {
                format!(
                    "certificate #{} '{}' ({})",
                    i + 1,
                    r.label,
                    c.subject_string()
                )
            };
            may_anchor(c).map_err(|why| {
                bad(
                    r.line,
                    format!(
                        "{} is not a CA certificate ({why}); a root program's bundle holds CA \
                         certificates only, so nothing was imported",
                        named()
                    ),
                )
            })?;
            c.check_extensions()
                .map_err(|e| bad(r.line, format!("{}: {e}; nothing was imported", named())))?;
            let skip = |kind, reason| BundleSkip {
                line: r.line,
                name: r.label.clone(),
                kind,
                reason,
            };
            if c.not_after() < now {
                skipped.push(skip(
                    "expired",
                    format!("expired on {}", rfc3339(c.not_after())),
                ));
                continue;
            }
            let id = Self::trust_id(c);
            if let Some(first) = wanted.get(&id) {
                skipped.push(skip(
                    "duplicate",
                    format!("the same certificate as line {}", first.line),
                ));
                continue;
            }
            wanted.insert(id, r);
        }

        let mut tx = self.store.write()?;
        let existing: HashMap<String, TrustRecord> = tx
            .scan_json::<TrustRecord>(Table::Trust)?
            .into_iter()
            .collect();
        let mut report = BundleImport {
            source: source.to_string(),
            format: parsed.format.to_string(),
            added: Vec::new(),
            removed: Vec::new(),
            kept: 0,
            skipped,
            internal_too,
        };
        let ours =
            |r: &TrustRecord| matches!(&r.kind, TrustKind::Bundle { source: s, .. } if s == source);
        for (id, root) in &wanted {
            let kind = TrustKind::Bundle {
                source: source.to_string(),
                internal_too,
            };
            match existing.get(id) {
                Some(old) if ours(old) => {
                    report.kept += 1;
                    if old.kind != kind {
                        let rec = TrustRecord {
                            kind,
                            ..old.clone()
                        };
                        tx.put_json(Table::Trust, id, &rec)?;
                    }
                }
                Some(old) => report.skipped.push(BundleSkip {
                    line: root.line,
                    name: root.label.clone(),
                    kind: "already-trusted",
                    reason: format!(
                        "already trusted as entry {id} ({}); that entry is left as it is",
                        match &old.kind {
                            TrustKind::Root => "added with trust add-root".to_string(),
                            TrustKind::CrossCertified { .. } => "cross-certified".to_string(),
                            TrustKind::Bundle { source, .. } => format!("from bundle {source}"),
                        }
                    ),
                }),
                None => {
                    let rec = TrustRecord {
                        id: id.clone(),
                        kind,
                        cert_der: root.cert.der().to_vec(),
                        subject: root.cert.subject_string(),
                        added: now,
                    };
                    tx.put_json(Table::Trust, id, &rec)?;
                    report.added.push(summarise(&rec));
                }
            }
        }
        for (id, old) in &existing {
            if ours(old) && !wanted.contains_key(id) {
                tx.delete(Table::Trust, id)?;
                report.removed.push(summarise(old));
            }
        }
        report.removed.sort_by(|a, b| a.subject.cmp(&b.subject));
        report.skipped.sort_by_key(|s| s.line);
        self.audit(
            &mut tx,
            "trust.import-bundle",
            source,
            format!(
                "{file} ({}): {} added, {} removed, {} kept; skipped {} expired, {} duplicate, {} \
                 already trusted otherwise, {} not trusted for e-mail; internal addresses {}",
                report.format,
                report.added.len(),
                report.removed.len(),
                report.kept,
                report.skipped_count("expired"),
                report.skipped_count("duplicate"),
                report.skipped_count("already-trusted"),
                report.skipped_count("not-for-email"),
                if internal_too {
                    "included (--internal-too)"
                } else {
                    "excluded"
                }
            ),
        )?;
        self.bump_trust_generation(&mut tx)?;
        tx.commit()?;
        Ok(report)
    }
}
