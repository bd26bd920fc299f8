//! Trust, as in the Domino model: our own root, foreign roots an administrator added, and
//! foreign CAs our CA cross-certified (optionally only for some mail domains); CRLs; and the
//! path validation query the CLI and the gateway ask.

use serde::Serialize;

use super::{Directory, DirectoryError};
use crate::pki::ca::{RevokedSerial, rfc3339};
use crate::pki::cert::Cert;
use crate::pki::path::{
    AnchorKind, PathError, Query, TrustAnchor, TrustContext, Usage, ValidatedPath,
};
use crate::pki::profile::{self, CertificateParams};
use crate::pki::revocation::{Crl, RevocationReason};
use crate::store::{
    CaRecord, CrlRecord, IssuedRecord, ReadTxExt, Table, TrustKind, TrustRecord, WriteTxExt,
};

/// Key of our own CRL in the CRL table.
const OWN_CRL: &str = "own";

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
            if d.contains('@') || d.trim().is_empty() || d.contains(' ') {
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

    /// Imports a CRL issued by a CA the directory knows (`trust import-crl`); its signature must
    /// verify with that CA's key, and a newer CRL replaces an older one of the same issuer.
    pub fn import_crl(&self, bytes: &[u8], source_name: &str) -> Result<String, DirectoryError> {
        let crl = Crl::parse(bytes, source_name).map_err(|e| DirectoryError::BadCrl {
            file: source_name.to_string(),
            reason: e.to_string(),
        })?;
        let ctx = self.trust_context()?;
        let issuer = ctx
            .anchors
            .iter()
            .map(|a| &a.cert)
            .chain(ctx.intermediates.iter())
            .chain(self.known_foreign_cas()?.iter())
            .find(|c| c.subject() == crl.issuer() && crl.verify_signature(c).is_ok())
            .cloned()
            .ok_or_else(|| DirectoryError::BadCrl {
                file: source_name.to_string(),
                reason: format!(
                    "issued by {}, which is not a CA this directory knows, or its signature does not verify; add or cross-certify that CA first",
                    crl.issuer()
                ),
            })?;
        let key = format!("issuer-{}", &issuer.fingerprint_hex()[..16]);
        let mut tx = self.store.write()?;
        if let Some(old) = tx.get_json::<CrlRecord>(Table::Crls, &key)?
            && let Ok(old) = Crl::from_der(&old.der)
            && old.is_newer_than(&crl)
        {
            return Err(DirectoryError::BadCrl {
                file: source_name.to_string(),
                reason: format!(
                    "older than the CRL already held for {} (thisUpdate {} < {}); nothing changed",
                    crl.issuer(),
                    rfc3339(crl.this_update()),
                    rfc3339(old.this_update())
                ),
            });
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
        self.audit(
            &mut tx,
            "trust.import-crl",
            &key,
            format!("{}, {} revoked", crl.issuer(), crl.len()),
        )?;
        self.bump_trust_generation(&mut tx)?;
        tx.commit()?;
        Ok(crl.issuer().to_string())
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
    /// an administrator added, the cross-certificates and CA chain as intermediates, and every
    /// CRL held.
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
