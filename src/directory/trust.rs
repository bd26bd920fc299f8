//! Trust, as in the Domino model: our own root, foreign roots an administrator added, and
//! foreign CAs our CA cross-certified (optionally only for some mail domains); CRLs; and the
//! path validation query the CLI and the gateway ask.

use serde::Serialize;

use super::{Directory, DirectoryError};
use crate::pki::ca::{RevokedSerial, rfc3339};
use crate::pki::cert::{Cert, same_name};
use crate::pki::path::{
    AnchorKind, PathError, Query, TrustAnchor, TrustContext, Usage, ValidatedPath,
};
use crate::pki::profile::{self, CertificateParams};
use crate::pki::revocation::{Crl, RevocationReason};
use crate::store::{
    CaRecord, CrlRecord, IssuedRecord, KnownCaRecord, ReadTxExt, Table, TrustKind, TrustRecord,
    WriteTxExt,
};

/// Key of our own CRL in the CRL table.
const OWN_CRL: &str = "own";

/// Most CA certificates kept in the `ca_certs` table (learned from signer chains or given with
/// `import-crl --issuer`): enough for every CA a site corresponds with, small enough that path
/// building over them stays cheap.
const MAX_KNOWN_CAS: usize = 500;

/// A trust entry as listed.
#[derive(Clone, Debug, Serialize)]
pub struct TrustSummary {
    /// Id.
    pub id: String,
    /// "root", "cross-certified" or "bundled".
    pub kind: String,
    /// Subject of the foreign CA.
    pub subject: String,
    /// Domains a cross-certificate is limited to (empty = all).
    pub permitted_domains: Vec<String>,
    /// For a root taken from a bundle: the source it was imported under.
    pub source: Option<String>,
    /// For a root taken from a bundle: whether it vouches for internal addresses too.
    pub internal_too: bool,
    /// End of the foreign certificate's validity (RFC 3339).
    pub not_after: String,
    /// SHA-256 fingerprint of the foreign certificate.
    pub fingerprint: String,
    /// Added (RFC 3339).
    pub added: String,
}

/// The outcome of `trust check`.
pub type TrustCheck = Result<ValidatedPath, PathError>;

impl Directory {
    pub(super) fn trust_id(cert: &Cert) -> String {
        cert.fingerprint_hex()[..16].to_string()
    }

    fn ensure_new_trust(&self, cert: &Cert) -> Result<String, DirectoryError> {
        if !cert.is_ca() {
            return Err(DirectoryError::NotACaCertificate(cert.subject_string()));
        }
        cert.check_extensions()?;
        let id = Self::trust_id(cert);
        if self.store.read()?.get(Table::Trust, &id)?.is_some() {
            return Err(DirectoryError::TrustExists {
                subject: cert.subject_string(),
                id,
            });
        }
        Ok(id)
    }

    /// Adds a foreign root as a trust anchor (`trust add-root`).
    pub fn add_root(&self, cert: &Cert) -> Result<TrustSummary, DirectoryError> {
        let id = self.ensure_new_trust(cert)?;
        let rec = TrustRecord {
            id: id.clone(),
            kind: TrustKind::Root,
            cert_der: cert.der().to_vec(),
            subject: cert.subject_string(),
            added: profile::now(),
        };
        let mut tx = self.store.write()?;
        tx.put_json(Table::Trust, &id, &rec)?;
        self.audit(
            &mut tx,
            "trust.add-root",
            &id,
            format!(
                "{} (sha256 {})",
                cert.subject_string(),
                cert.fingerprint_hex()
            ),
        )?;
        self.bump_trust_generation(&mut tx)?;
        tx.commit()?;
        Ok(summarise(&rec))
    }

    /// Cross-certifies a foreign CA (`trust cross-certify`): our CA issues a CA certificate for
    /// the foreign CA's subject and key, limited by rfc822Name name constraints to
    /// `permitted_domains` when any are given, so mail signed under it is trusted through our
    /// own root, and only for those domains.
    pub fn cross_certify(
        &self,
        cert: &Cert,
        permitted_domains: &[String],
        days: u32,
    ) -> Result<(TrustSummary, Cert), DirectoryError> {
        let id = self.ensure_new_trust(cert)?;
        for d in permitted_domains {
            // A constraint that is not a hostname (or `.` and one) would match no address.
            if !crate::pki::name_constraints::is_hostname(d.strip_prefix('.').unwrap_or(d), false) {
                return Err(DirectoryError::BadAddress(format!(
                    "{d} (--permit-domain takes a domain such as partner.test)"
                )));
            }
        }
        let ca = self.ca()?;
        let params = CertificateParams::cross_certificate(cert, days, permitted_domains);
        let cross = ca.issue(&params, cert.spki())?;
        let rec = TrustRecord {
            id: id.clone(),
            kind: TrustKind::CrossCertified {
                cross_cert_der: cross.der().to_vec(),
                permitted_domains: permitted_domains.to_vec(),
            },
            cert_der: cert.der().to_vec(),
            subject: cert.subject_string(),
            added: profile::now(),
        };
        let mut tx = self.store.write()?;
        self.record_issued(&mut tx, &cross, &cert.subject_string(), "cross-certificate")?;
        tx.put_json(Table::Trust, &id, &rec)?;
        self.audit(
            &mut tx,
            "trust.cross-certify",
            &id,
            format!(
                "{} -> cross-certificate {}{}",
                cert.subject_string(),
                cross.serial_hex(),
                if permitted_domains.is_empty() {
                    String::new()
                } else {
                    format!(", permitted: {}", permitted_domains.join(", "))
                }
            ),
        )?;
        self.bump_trust_generation(&mut tx)?;
        tx.commit()?;
        Ok((summarise(&rec), cross))
    }

    /// Every trust entry.
    pub fn list_trust(&self) -> Result<Vec<TrustSummary>, DirectoryError> {
        Ok(self
            .store
            .read()?
            .scan_json::<TrustRecord>(Table::Trust)?
            .iter()
            .map(|(_, r)| summarise(r))
            .collect())
    }

    /// Removes a trust entry (`trust remove`); a cross-certificate we issued is also revoked so
    /// that copies of it elsewhere stop working.
    pub fn remove_trust(&self, id: &str) -> Result<(), DirectoryError> {
        let mut tx = self.store.write()?;
        let rec: TrustRecord = tx
            .get_json(Table::Trust, id)?
            .ok_or_else(|| DirectoryError::NoSuchTrust(id.to_string()))?;
        let mut revoked_cross = false;
        if let TrustKind::CrossCertified { cross_cert_der, .. } = &rec.kind {
            let cross = Cert::from_der(cross_cert_der)?;
            if let Some(mut issued) =
                tx.get_json::<IssuedRecord>(Table::Issued, &cross.serial_hex())?
            {
                issued.revoked = Some((profile::now(), "cessationOfOperation".into()));
                tx.put_json(Table::Issued, &issued.serial.clone(), &issued)?;
                revoked_cross = true;
            }
        }
        tx.delete(Table::Trust, id)?;
        self.audit(&mut tx, "trust.remove", id, rec.subject.clone())?;
        self.bump_trust_generation(&mut tx)?;
        tx.commit()?;
        if revoked_cross {
            self.issue_crl()?;
        }
        Ok(())
    }

    /// Imports a CRL (`trust import-crl`) from any CA that chains to a trust anchor: the CRL's
    /// signer is looked for among `issuer_certs` (given with `--issuer`), the anchors, the
    /// cross-certificates and the CA certificates the directory learned from validated signer
    /// chains. The signer must carry the CRL's issuer name, may sign CRLs (keyUsage cRLSign when
    /// present), must verify the CRL's signature and must itself validate now to an anchor: the
    /// issuing CA's own certificate, or another key of the same CA (a separate CRL-signing
    /// certificate, or a CA that rolled its key over: RFC 5280 section 6.3.3 (f)). The signer
    /// and the chain it validated through are kept, so path validation finds them.
    ///
    /// One CRL is held per issuer name. A CRL replaces the one held only when it is newer: a
    /// higher cRLNumber (RFC 5280 section 5.2.3: numbers increase monotonically per issuer),
    /// or, when either lacks a number, a later thisUpdate. Returns the issuer's name.
    pub fn import_crl(
        &self,
        bytes: &[u8],
        source_name: &str,
        issuer_certs: &[Cert],
    ) -> Result<String, DirectoryError> {
        let crl = Crl::parse(bytes, source_name).map_err(|e| DirectoryError::BadCrl {
            file: source_name.to_string(),
            reason: e.to_string(),
        })?;
        let refuse = |reason: String| DirectoryError::BadCrl {
            file: source_name.to_string(),
            reason: format!("CRL of {}: {reason}", crl.issuer()),
        };
        if let Some(why) = crl.unusable_reason() {
            return Err(refuse(format!(
                "cannot be used for path validation: {why}; nothing changed"
            )));
        }
        let ctx = self.trust_context()?;
        let (signer, path) =
            crl_signer(&ctx, &crl, issuer_certs, &self.known_foreign_cas()?).map_err(refuse)?;

        let key = crl_key(&crl);
        let mut tx = self.store.write()?;
        let mut replaced = Vec::new();
        for (k, old) in tx.scan_json::<CrlRecord>(Table::Crls)? {
            let Ok(old_crl) = Crl::from_der(&old.der) else {
                continue;
            };
            if !old.imported || !same_name(old_crl.issuer(), crl.issuer()) {
                continue;
            }
            if let Some(why) = not_newer(&crl, &old_crl) {
                return Err(refuse(format!("{why}; nothing changed")));
            }
            replaced.push(k);
        }
        for k in replaced {
            tx.delete(Table::Crls, &k)?;
        }
        tx.put_json(
            Table::Crls,
            &key,
            &CrlRecord {
                issuer: crl.issuer().to_string(),
                der: crl.der().to_vec(),
                imported: true,
            },
        )?;
        // The signer and its chain below the anchor, so path validation can authenticate the
        // CRL with the same certificates.
        let source = format!("import-crl {source_name}");
        let anchors: Vec<&Cert> = ctx.anchors.iter().map(|a| &a.cert).collect();
        let keep: Vec<&Cert> = path.iter().filter(|c| !anchors.contains(c)).collect();
        let learned = Self::remember_cas(&mut tx, &keep, &source)?;
        self.audit(
            &mut tx,
            "trust.import-crl",
            &key,
            format!(
                "{}, {} revoked{}, signed by {} (serial {}){}",
                crl.issuer(),
                crl.len(),
                crl.crl_number()
                    .map(|n| format!(", cRLNumber {}", hex::encode(n)))
                    .unwrap_or_default(),
                signer.subject_string(),
                signer.serial_hex(),
                if learned == 0 {
                    String::new()
                } else {
                    format!(", {learned} CA certificate(s) kept")
                }
            ),
        )?;
        self.bump_trust_generation(&mut tx)?;
        tx.commit()?;
        Ok(crl.issuer().to_string())
    }

    /// Keeps the CA certificates of a validated signer chain (`chain`: the validated path above
    /// the leaf, anchor last, as [`crate::smime::signed::Harvest`] has it), so that an
    /// administrator can import their CRLs without `--issuer` and paths can be built when a
    /// later message omits them. Costs one read per certificate when nothing is new.
    pub fn learn_chain(&self, chain: &[Cert]) -> Result<(), DirectoryError> {
        let below_anchor = &chain[..chain.len().saturating_sub(1)];
        let new: Vec<&Cert> = {
            let read = self.store.read()?;
            let mut new = Vec::new();
            for c in below_anchor.iter().filter(|c| c.is_ca()) {
                if read.get(Table::CaCerts, &c.fingerprint_hex())?.is_none() {
                    new.push(c);
                }
            }
            new
        };
        if new.is_empty() {
            return Ok(());
        }
        let mut tx = self.store.write()?;
        if Self::remember_cas(&mut tx, &new, "signer chain")? > 0 {
            self.bump_trust_generation(&mut tx)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Records CA certificates in the `ca_certs` table, keeping it within
    /// [`MAX_KNOWN_CAS`]: expired ones go first, then the longest known. Returns how many were
    /// new.
    fn remember_cas(
        tx: &mut Box<dyn crate::store::WriteTx + '_>,
        certs: &[&Cert],
        source: &str,
    ) -> Result<usize, DirectoryError> {
        Self::remember_cas_within(tx, certs, source, MAX_KNOWN_CAS)
    }

    fn remember_cas_within(
        tx: &mut Box<dyn crate::store::WriteTx + '_>,
        certs: &[&Cert],
        source: &str,
        max: usize,
    ) -> Result<usize, DirectoryError> {
        let now = profile::now();
        let mut added = 0;
        for c in certs {
            let rec = KnownCaRecord {
                der: c.der().to_vec(),
                learned: now,
                source: source.to_string(),
            };
            if tx.insert_new_json(Table::CaCerts, &c.fingerprint_hex(), &rec)? {
                added += 1;
            }
        }
        let mut all: Vec<(String, KnownCaRecord)> = tx.scan_json(Table::CaCerts)?;
        if all.len() > max {
            let expired =
                |r: &KnownCaRecord| Cert::from_der(&r.der).map_or(true, |c| c.not_after() < now);
            all.sort_by_key(|(_, r)| (!expired(r), r.learned));
            for (k, _) in &all[..all.len() - max] {
                tx.delete(Table::CaCerts, k)?;
            }
        }
        Ok(added)
    }

    fn known_foreign_cas(&self) -> Result<Vec<Cert>, DirectoryError> {
        let recs: Vec<(String, TrustRecord)> = self.store.read()?.scan_json(Table::Trust)?;
        recs.iter()
            .map(|(_, r)| Cert::from_der(&r.cert_der).map_err(Into::into))
            .collect()
    }

    /// Issues a fresh CRL from our CA's revocation records, stores it for path validation and
    /// returns it (DER). CRL numbers increase monotonically (RFC 5280 section 5.2.3).
    pub fn issue_crl(&self) -> Result<Vec<u8>, DirectoryError> {
        let ca = self.ca()?;
        let mut tx = self.store.write()?;
        let mut rec: CaRecord = tx
            .get_json(Table::Meta, super::META_CA)?
            .ok_or_else(|| DirectoryError::NoCa(self.describe()))?;
        let issued: Vec<(String, IssuedRecord)> = tx.scan_json(Table::Issued)?;
        let mut revoked = Vec::new();
        for (_, i) in issued {
            if let Some((at, reason)) = i.revoked {
                // RFC 5280 section 5.3.1: omit the extension rather than say "unspecified".
                let code = reason
                    .parse::<RevocationReason>()
                    .ok()
                    .map(RevocationReason::code)
                    .filter(|c| *c != 0);
                revoked.push(RevokedSerial {
                    serial: hex::decode(&i.serial).unwrap_or_default(),
                    at,
                    reason_code: code,
                });
            }
        }
        let number = rec.next_crl_number;
        let der = ca.build_crl(&revoked, number, self.config.ca.crl_days)?;
        rec.next_crl_number += 1;
        tx.put_json(Table::Meta, super::META_CA, &rec)?;
        tx.put_json(
            Table::Crls,
            OWN_CRL,
            &CrlRecord {
                issuer: ca.cert().subject_string(),
                der: der.clone(),
                imported: false,
            },
        )?;
        self.audit(
            &mut tx,
            "ca.crl",
            &number.to_string(),
            format!("{} revoked serial(s)", revoked.len()),
        )?;
        self.bump_trust_generation(&mut tx)?;
        tx.commit()?;
        Ok(der)
    }

    /// What path validation trusts: our CA (an anchor even when it is a subordinate), the roots
    /// an administrator added, the cross-certificates, CA chain and known CA certificates
    /// (`ca_certs`) as intermediates, and every CRL held.
    pub fn trust_context(&self) -> Result<TrustContext, DirectoryError> {
        let tx = self.store.read()?;
        let mut anchors = Vec::new();
        let mut intermediates = Vec::new();
        if let Some(ca) = tx.get_json::<CaRecord>(Table::Meta, super::META_CA)? {
            let cert = Cert::from_der_named(&ca.cert_der, "stored CA certificate")?;
            anchors.push(TrustAnchor {
                label: format!("own CA {}", cert.subject_string()),
                cert,
                kind: AnchorKind::OwnRoot,
            });
            for c in &ca.chain {
                intermediates.push(Cert::from_der_named(&c.0, "stored CA chain")?);
            }
        }
        for (_, r) in tx.scan_json::<TrustRecord>(Table::Trust)? {
            let cert = Cert::from_der_named(&r.cert_der, &format!("trust entry {}", r.id))?;
            match r.kind {
                TrustKind::Root => anchors.push(TrustAnchor {
                    label: format!("trusted root {} ({})", r.subject, r.id),
                    cert,
                    kind: AnchorKind::TrustedRoot,
                }),
                TrustKind::CrossCertified { cross_cert_der, .. } => {
                    intermediates.push(Cert::from_der_named(
                        &cross_cert_der,
                        &format!("cross-certificate {}", r.id),
                    )?);
                }
                TrustKind::Bundle {
                    source,
                    internal_too,
                } => anchors.push(TrustAnchor {
                    label: format!("root {} ({}) from bundle {source}", r.subject, r.id),
                    cert,
                    kind: AnchorKind::BundledRoot { internal_too },
                }),
            }
        }
        for (k, r) in tx.scan_json::<KnownCaRecord>(Table::CaCerts)? {
            let cert = Cert::from_der_named(&r.der, &format!("stored CA certificate {k}"))?;
            if !intermediates.contains(&cert) && !anchors.iter().any(|a| a.cert == cert) {
                intermediates.push(cert);
            }
        }
        let mut crls = Vec::new();
        for (k, r) in tx.scan_json::<CrlRecord>(Table::Crls)? {
            match Crl::from_der(&r.der) {
                Ok(c) => crls.push(c),
                Err(e) => {
                    return Err(DirectoryError::BadCrl {
                        file: format!("stored CRL {k}"),
                        reason: e.to_string(),
                    });
                }
            }
        }
        Ok(TrustContext {
            anchors,
            intermediates,
            crls,
            internal_domains: self.config.internal_domains.clone(),
            verified_crls: Default::default(),
        })
    }

    /// Validates a certificate against the directory (`trust check`, and every message).
    pub fn check_trust(
        &self,
        leaf: &Cert,
        untrusted: &[Cert],
        email: Option<&str>,
        at: Option<i64>,
        usage: Option<Usage>,
    ) -> Result<TrustCheck, DirectoryError> {
        let ctx = self.trust_context()?;
        let q = Query {
            leaf,
            untrusted,
            at: at.unwrap_or_else(profile::now),
            email,
            usage,
        };
        Ok(crate::pki::path::validate(&ctx, &q))
    }
}

/// The CRL table key of an imported CRL: one per issuer name.
fn crl_key(crl: &Crl) -> String {
    use der::Encode;
    let name = crl.issuer().to_der().unwrap_or_default();
    let digest = crate::pki::keys::HashAlgorithm::Sha256.digest(&name);
    format!("issuer-name-{}", &hex::encode(digest)[..32])
}

/// Why `new` does not replace `held` (both of the same issuer), or `None` when it is newer.
fn not_newer(new: &Crl, held: &Crl) -> Option<String> {
    use std::cmp::Ordering;
    match (new.crl_number(), held.crl_number()) {
        (Some(n), Some(h)) => match crate::pki::revocation::crl_number_cmp(Some(&n), Some(&h)) {
            Ordering::Greater => None,
            Ordering::Equal => Some(format!(
                "cRLNumber {} is the number of the CRL already held (a CRL is replaced only by \
                 one with a higher number)",
                hex::encode(&n)
            )),
            Ordering::Less => Some(format!(
                "cRLNumber {} is lower than {} of the CRL already held: it is older",
                hex::encode(&n),
                hex::encode(&h)
            )),
        },
        _ if new.this_update() > held.this_update() => None,
        _ => Some(format!(
            "thisUpdate {} is not later than {} of the CRL already held (and one of them has no \
             cRLNumber)",
            rfc3339(new.this_update()),
            rfc3339(held.this_update())
        )),
    }
}

/// The certificate that signed `crl` and the validated path from it to an anchor (signer
/// first), or why there is none. Candidates: `given` (from `--issuer`), the context's anchors
/// and intermediates, and `foreign` (roots added or cross-certified).
fn crl_signer(
    ctx: &TrustContext,
    crl: &Crl,
    given: &[Cert],
    foreign: &[Cert],
) -> Result<(Cert, Vec<Cert>), String> {
    let now = profile::now();
    let mut named = 0;
    let mut failures = Vec::new();
    let candidates = given
        .iter()
        .chain(ctx.anchors.iter().map(|a| &a.cert))
        .chain(&ctx.intermediates)
        .chain(foreign);
    let mut seen: Vec<&Cert> = Vec::new();
    for c in candidates {
        if seen.contains(&c) || !same_name(c.subject(), crl.issuer()) {
            continue;
        }
        seen.push(c);
        named += 1;
        if let Err(e) = crl.verify_signature(c) {
            failures.push(e.to_string());
            continue;
        }
        if let Some(a) = ctx.anchors.iter().find(|a| a.cert == *c) {
            return Ok((c.clone(), vec![a.cert.clone()]));
        }
        let q = Query {
            leaf: c,
            untrusted: given,
            at: now,
            email: None,
            usage: None,
        };
        match crate::pki::path::validate(ctx, &q) {
            Ok(p) => return Ok((c.clone(), p.path)),
            Err(e) => failures.push(format!(
                "its signer {} (serial {}) does not validate to a trust anchor: {e}",
                c.subject_string(),
                c.serial_hex()
            )),
        }
    }
    Err(if named == 0 {
        "no certificate of that CA is known: give the CA certificate (and the chain to a \
         trusted root or cross-certified CA) with --issuer FILE; nothing changed"
            .to_string()
    } else {
        format!("{}; nothing changed", failures.join("; "))
    })
}

pub(super) fn summarise(r: &TrustRecord) -> TrustSummary {
    let cert = Cert::from_der(&r.cert_der).ok();
    TrustSummary {
        id: r.id.clone(),
        kind: match r.kind {
            TrustKind::Root => "root".into(),
            TrustKind::CrossCertified { .. } => "cross-certified".into(),
            TrustKind::Bundle { .. } => "bundled".into(),
        },
        subject: r.subject.clone(),
        permitted_domains: match &r.kind {
            TrustKind::CrossCertified {
                permitted_domains, ..
            } => permitted_domains.clone(),
            TrustKind::Root | TrustKind::Bundle { .. } => Vec::new(),
        },
        source: match &r.kind {
            TrustKind::Bundle { source, .. } => Some(source.clone()),
            _ => None,
        },
        internal_too: matches!(
            r.kind,
            TrustKind::Bundle {
                internal_too: true,
                ..
            }
        ),
        not_after: cert
            .as_ref()
            .map(|c| rfc3339(c.not_after()))
            .unwrap_or_default(),
        fingerprint: cert.map(|c| c.fingerprint_hex()).unwrap_or_default(),
        added: rfc3339(r.added),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testpki::{DAY, KeyKind, Pki, now};

    fn known(dir: &Directory) -> Vec<Cert> {
        dir.store
            .read()
            .unwrap()
            .scan_json::<KnownCaRecord>(Table::CaCerts)
            .unwrap()
            .into_iter()
            .map(|(_, r)| Cert::from_der(&r.der).unwrap())
            .collect()
    }

    /// The CAs of a validated chain are kept (not the anchor), once, and reach path
    /// validation; the table stays bounded, expired certificates leaving first.
    #[test]
    fn signer_chains_are_learned_once_and_kept_bounded() {
        let (_tmp, _config, dir) = crate::gateway::tests::scratch("");
        let pki = Pki::new();
        let root = pki.root("root", "/CN=Partner Root", KeyKind::P256, None);
        let inter = pki.issue_ca(
            &root,
            "inter",
            "/CN=Partner Issuing CA",
            &pki.ca_ext(None, ""),
            KeyKind::P256,
        );
        let (root, inter) = (pki.cert(&root.cert), pki.cert(&inter.cert));
        let g = dir.trust_generation().unwrap();
        dir.learn_chain(&[inter.clone(), root.clone()]).unwrap();
        assert_eq!(known(&dir), vec![inter.clone()]);
        assert_eq!(dir.trust_generation().unwrap(), g + 1);
        dir.learn_chain(&[inter.clone(), root]).unwrap();
        assert_eq!(
            dir.trust_generation().unwrap(),
            g + 1,
            "nothing new: no write"
        );
        assert!(dir.trust_context().unwrap().intermediates.contains(&inter));

        let ca = pki.root("many", "/CN=Many", KeyKind::P256, None);
        let expired = pki.issue(
            &ca,
            "expired",
            "/CN=Expired CA",
            &pki.ca_ext(None, ""),
            KeyKind::P256,
            Some((now() - 400 * DAY, now() - DAY)),
        );
        let expired = pki.cert(&expired);
        let others: Vec<Cert> = (0..3)
            .map(|i| {
                let c = pki.issue_ca(
                    &ca,
                    &format!("c{i}"),
                    &format!("/CN=CA {i}"),
                    &pki.ca_ext(None, ""),
                    KeyKind::P256,
                );
                pki.cert(&c.cert)
            })
            .collect();
        let mut tx = dir.store.write().unwrap();
        let mut all: Vec<&Cert> = vec![&expired];
        all.extend(&others);
        assert_eq!(
            Directory::remember_cas_within(&mut tx, &all, "test", 3).unwrap(),
            4
        );
        tx.commit().unwrap();
        let kept = known(&dir);
        assert_eq!(kept.len(), 3);
        assert!(!kept.contains(&expired), "the expired CA goes first");
    }
}
