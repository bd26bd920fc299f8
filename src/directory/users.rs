//! Person records: enrolment, import and export, renewal, revocation, listings.

use std::sync::Arc;

/// What signing needs: the signing certificate, its key (shared: parsed once per process), the
/// chain above it, and the encryption certificate to name in SMIMEEncryptionKeyPreference.
pub type SigningIdentity = (Cert, Arc<PrivateKey>, Vec<Cert>, Option<Cert>);

use serde::Serialize;

use super::{Directory, DirectoryError};
use crate::pki::ca::rfc3339;
use crate::pki::cert::Cert;
use crate::pki::keys::{KeyAlgorithm, PrivateKey};
use crate::pki::profile::{self, CertificateParams};
use crate::pki::revocation::RevocationReason;
use crate::store::{
    CertRole, CertSource, CertState, ChainCert, IssuedRecord, ReadTxExt, Table, UserCert,
    UserRecord, UserStatus, WriteTxExt,
};

/// How to enrol a user.
#[derive(Clone, Debug)]
pub struct EnrollOptions {
    /// Display name (the certificates' common name).
    pub display_name: String,
    /// One certificate for both purposes instead of the dual pair.
    pub single: bool,
    /// Key type.
    pub key: KeyAlgorithm,
    /// Lifetime in days.
    pub days: u32,
}

/// A person record as shown by `user show` / `user list --json` (no key material, no DER).
#[derive(Clone, Debug, Serialize)]
pub struct UserSummary {
    /// Address.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// active / revoked.
    pub status: UserStatus,
    /// Every certificate, oldest first.
    pub certificates: Vec<CertSummary>,
}

/// One certificate of a person record, for display.
#[derive(Clone, Debug, Serialize)]
pub struct CertSummary {
    /// Role.
    pub role: CertRole,
    /// Serial (hex).
    pub serial: String,
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Validity start (RFC 3339).
    pub not_before: String,
    /// Validity end (RFC 3339).
    pub not_after: String,
    /// current / superseded / revoked.
    pub state: String,
    /// enrolled / request / imported.
    pub source: String,
    /// Whether the gateway holds the private key.
    pub key_held: bool,
    /// SHA-256 fingerprint (hex).
    pub fingerprint: String,
}

fn summarise(rec: &UserRecord) -> UserSummary {
    UserSummary {
        email: rec.email.clone(),
        display_name: rec.display_name.clone(),
        status: rec.status,
        certificates: rec
            .certs
            .iter()
            .map(|c| {
                let parsed = Cert::from_der(&c.cert_der).ok();
                CertSummary {
                    role: c.role,
                    serial: c.serial.clone(),
                    subject: parsed
                        .as_ref()
                        .map(|p| p.subject_string())
                        .unwrap_or_default(),
                    issuer: parsed
                        .as_ref()
                        .map(|p| p.issuer_string())
                        .unwrap_or_default(),
                    not_before: parsed
                        .as_ref()
                        .map(|p| rfc3339(p.not_before()))
                        .unwrap_or_default(),
                    not_after: rfc3339(c.not_after),
                    state: match &c.state {
                        CertState::Current => "current".into(),
                        CertState::Superseded { .. } => "superseded".into(),
                        CertState::Revoked { reason, .. } => format!("revoked ({reason})"),
                    },
                    source: match &c.source {
                        CertSource::Enrolled => "enrolled".into(),
                        CertSource::Request { request_id } => format!("request {request_id}"),
                        CertSource::Imported => "imported".into(),
                    },
                    key_held: c.key_id.is_some(),
                    fingerprint: parsed.map(|p| p.fingerprint_hex()).unwrap_or_default(),
                }
            })
            .collect(),
    }
}

impl Directory {
    /// Generates keys and issues the dual certificates (or one with `single`) for an internal
    /// user (`user enroll`).
    pub fn enroll(&self, email: &str, opts: &EnrollOptions) -> Result<UserSummary, DirectoryError> {
        let email = self.internal_address(email)?;
        if self.store.read()?.get(Table::Users, &email)?.is_some() {
            return Err(DirectoryError::UserExists(email));
        }
        let ca = self.ca()?;
        let subject = profile::simple_name(&opts.display_name, None)?;
        let mut issued: Vec<(CertRole, Cert, PrivateKey)> = Vec::new();
        if opts.single {
            let key = PrivateKey::generate(opts.key)?;
            let params = CertificateParams::smime_single(&email, subject, opts.days, opts.key);
            issued.push((CertRole::Both, ca.issue(&params, &key.spki())?, key));
        } else {
            let skey = PrivateKey::generate(opts.key)?;
            let sp = CertificateParams::smime_signing(&email, subject.clone(), opts.days);
            issued.push((CertRole::Signing, ca.issue(&sp, &skey.spki())?, skey));
            let ekey = PrivateKey::generate(opts.key)?;
            let ep = CertificateParams::smime_encryption(&email, subject, opts.days, opts.key);
            issued.push((CertRole::Encryption, ca.issue(&ep, &ekey.spki())?, ekey));
        }

        let mut tx = self.store.write()?;
        let mut certs = Vec::new();
        for (role, cert, key) in &issued {
            // Signing keys never leave the gateway; encryption keys may (the user's own client
            // must be able to read mail encrypted to them). A key that does both signs.
            let key_id = self.seal_key(&mut tx, key, role.exportable())?;
            self.record_issued(&mut tx, cert, &email, &role.to_string())?;
            certs.push(UserCert {
                role: *role,
                cert_der: cert.der().to_vec(),
                key_id: Some(key_id),
                source: CertSource::Enrolled,
                state: CertState::Current,
                serial: cert.serial_hex(),
                not_after: cert.not_after(),
                chain: Vec::new(),
            });
        }
        let rec = UserRecord {
            email: email.clone(),
            display_name: opts.display_name.clone(),
            status: UserStatus::Active,
            created: profile::now(),
            certs,
        };
        if !tx.insert_new_json(Table::Users, &email, &rec)? {
            return Err(DirectoryError::UserExists(email));
        }
        let serials: Vec<String> = issued
            .iter()
            .map(|(r, c, _)| format!("{r} {}", c.serial_hex()))
            .collect();
        self.audit(
            &mut tx,
            "user.enroll",
            &email,
            format!("{}, {}: {}", opts.key, opts.days, serials.join(", ")),
        )?;
        tx.commit()?;
        Ok(summarise(&rec))
    }

    /// A person record.
    pub fn user(&self, email: &str) -> Result<UserRecord, DirectoryError> {
        let email = super::normalise_address(email)?;
        self.store
            .read()?
            .get_json(Table::Users, &email)?
            .ok_or(DirectoryError::NoSuchUser(email))
    }

    /// A person record for display.
    pub fn user_summary(&self, email: &str) -> Result<UserSummary, DirectoryError> {
        Ok(summarise(&self.user(email)?))
    }

    /// Every person record, optionally only those with a current certificate expiring within
    /// `expiring_days`.
    pub fn list_users(
        &self,
        expiring_days: Option<u32>,
    ) -> Result<Vec<UserSummary>, DirectoryError> {
        let now = profile::now();
        let users: Vec<(String, UserRecord)> = self.store.read()?.scan_json(Table::Users)?;
        Ok(users
            .into_iter()
            .map(|(_, u)| u)
            .filter(|u| match expiring_days {
                None => true,
                Some(d) => u.certs.iter().any(|c| {
                    c.state == CertState::Current && c.not_after <= now + i64::from(d) * 86_400
                }),
            })
            .map(|u| summarise(&u))
            .collect())
    }

    /// The user's current certificate for a role, with its chain when asked (`user cert`).
    pub fn user_cert(
        &self,
        email: &str,
        role: CertRole,
        with_chain: bool,
    ) -> Result<Vec<Cert>, DirectoryError> {
        let rec = self.user(email)?;
        let current = if role == CertRole::Encryption {
            rec.current_encryption()
        } else {
            rec.current_signing()
        };
        let uc = current
            .filter(|c| role == CertRole::Both || c.role == role || c.role == CertRole::Both)
            .ok_or_else(|| DirectoryError::NoCertificate {
                email: rec.email.clone(),
                role: role.to_string(),
            })?;
        let mut out = vec![Cert::from_der_named(&uc.cert_der, &rec.email)?];
        if with_chain {
            out.extend(self.chain_for(uc)?);
        }
        Ok(out)
    }

    /// The chain above a user certificate: what came with it (imports) or our CA chain.
    fn chain_for(&self, uc: &UserCert) -> Result<Vec<Cert>, DirectoryError> {
        if !uc.chain.is_empty() {
            return uc
                .chain
                .iter()
                .map(|c| Cert::from_der_named(&c.0, "stored chain").map_err(Into::into))
                .collect();
        }
        if matches!(uc.source, CertSource::Imported) {
            return Ok(Vec::new());
        }
        let mut chain = vec![self.ca_cert()?];
        chain.extend(self.ca_chain()?);
        Ok(chain)
    }

    /// What signing needs for a user: the current signing certificate, its key, the chain above
    /// it, and the current encryption certificate to name in SMIMEEncryptionKeyPreference.
    pub fn signing_identity(&self, email: &str) -> Result<SigningIdentity, DirectoryError> {
        let rec = self.user(email)?;
        let uc = rec
            .current_signing()
            .ok_or_else(|| DirectoryError::NoCertificate {
                email: rec.email.clone(),
                role: "signing".into(),
            })?;
        let key_id = uc
            .key_id
            .as_ref()
            .ok_or_else(|| DirectoryError::KeyNotHeld {
                email: rec.email.clone(),
                role: "signing".into(),
            })?;
        let key = self.load_key_shared(key_id)?;
        let cert = Cert::from_der(&uc.cert_der)?;
        let chain = self.chain_for(uc)?;
        let enc = rec
            .current_encryption()
            .filter(|e| e.serial != uc.serial)
            .map(|e| Cert::from_der(&e.cert_der))
            .transpose()?;
        Ok((cert, key, chain, enc))
    }

    /// The certificate to encrypt to for an address: an internal user's current encryption
    /// certificate.
    pub fn encryption_cert(&self, email: &str) -> Result<Cert, DirectoryError> {
        let rec = self.user(email)?;
        let uc = rec
            .current_encryption()
            .ok_or_else(|| DirectoryError::NoCertificate {
                email: rec.email.clone(),
                role: "encryption".into(),
            })?;
        Ok(Cert::from_der(&uc.cert_der)?)
    }

    /// Every encryption key the directory holds, for every user (offline decryption when the
    /// recipient is not named).
    pub fn all_decryption_keys(&self) -> Result<Vec<(Cert, Arc<PrivateKey>)>, DirectoryError> {
        let users: Vec<(String, UserRecord)> = self.store.read()?.scan_json(Table::Users)?;
        let mut out = Vec::new();
        for (email, _) in users {
            out.extend(self.decryption_keys(&email)?);
        }
        Ok(out)
    }

    /// Every encryption key the gateway holds for a user, current and superseded: renewed keys
    /// keep decrypting mail that was encrypted to them.
    pub fn decryption_keys(
        &self,
        email: &str,
    ) -> Result<Vec<(Cert, Arc<PrivateKey>)>, DirectoryError> {
        let rec = self.user(email)?;
        let mut out = Vec::new();
        for uc in rec.certs.iter().filter(|c| c.role.encrypts()) {
            if let Some(id) = &uc.key_id {
                let key = self.load_key_shared(id)?;
                out.push((Cert::from_der(&uc.cert_der)?, key));
            }
        }
        Ok(out)
    }

    /// Issues new certificates for every current certificate the gateway issued and holds the
    /// key of (`user renew`); with `rekey`, new keys too. Old certificates become superseded,
    /// and old encryption keys stay for decryption.
    pub fn renew(
        &self,
        email: &str,
        rekey: bool,
        days: u32,
    ) -> Result<UserSummary, DirectoryError> {
        self.renew_audited(email, rekey, days, "user.renew")
    }

    /// [`Self::renew`], audited under `action` (`user.renew`, or `user.renew.auto` for the
    /// gateway's own renewals; `.rekey` is added for new keys).
    fn renew_audited(
        &self,
        email: &str,
        rekey: bool,
        days: u32,
        action: &str,
    ) -> Result<UserSummary, DirectoryError> {
        let mut rec = self.user(email)?;
        if rec.status == UserStatus::Revoked {
            return Err(DirectoryError::NoCertificate {
                email: rec.email.clone(),
                role: "current (the user is revoked; enrol again under a new record)".into(),
            });
        }
        let ca = self.ca()?;
        let subject = profile::simple_name(&rec.display_name, None)?;
        let mut new_certs: Vec<(usize, UserCert, Cert, Option<PrivateKey>)> = Vec::new();
        for (i, uc) in rec.certs.iter().enumerate() {
            if uc.state != CertState::Current || !matches!(uc.source, CertSource::Enrolled) {
                continue;
            }
            let Some(old_key_id) = &uc.key_id else {
                continue;
            };
            let (old_key, _) = self.load_key(old_key_id)?;
            let key = if rekey {
                PrivateKey::generate(old_key.algorithm())?
            } else {
                old_key
            };
            let params = match uc.role {
                CertRole::Signing => {
                    CertificateParams::smime_signing(&rec.email, subject.clone(), days)
                }
                CertRole::Encryption => CertificateParams::smime_encryption(
                    &rec.email,
                    subject.clone(),
                    days,
                    key.algorithm(),
                ),
                CertRole::Both => CertificateParams::smime_single(
                    &rec.email,
                    subject.clone(),
                    days,
                    key.algorithm(),
                ),
            };
            let cert = ca.issue(&params, &key.spki())?;
            let new = UserCert {
                role: uc.role,
                cert_der: cert.der().to_vec(),
                key_id: if rekey { None } else { uc.key_id.clone() },
                source: CertSource::Enrolled,
                state: CertState::Current,
                serial: cert.serial_hex(),
                not_after: cert.not_after(),
                chain: Vec::new(),
            };
            new_certs.push((i, new, cert, rekey.then_some(key)));
        }
        if new_certs.is_empty() {
            return Err(DirectoryError::NoCertificate {
                email: rec.email.clone(),
                role: "renewable (only certificates the gateway issued and holds keys for renew; request or import new ones for the others)".into(),
            });
        }
        let mut tx = self.store.write()?;
        let now = profile::now();
        let mut detail = Vec::new();
        for (i, mut new, cert, key) in new_certs {
            if let Some(k) = key {
                new.key_id = Some(self.seal_key(&mut tx, &k, new.role.exportable())?);
            }
            rec.certs[i].state = CertState::Superseded { at: now };
            self.record_issued(&mut tx, &cert, &rec.email, &new.role.to_string())?;
            detail.push(format!(
                "{} {} -> {}",
                new.role, rec.certs[i].serial, new.serial
            ));
            rec.certs.push(new);
        }
        tx.put_json(Table::Users, &rec.email, &rec)?;
        let action = if rekey {
            format!("{action}.rekey")
        } else {
            action.to_string()
        };
        self.audit(&mut tx, &action, &rec.email, detail.join(", "))?;
        tx.commit()?;
        Ok(summarise(&rec))
    }

    /// Renews every active user's certificates that expire within `within_days` and whose keys
    /// the gateway holds (`user renew --all-expiring`, and `serve` on its own). The others
    /// (CSR users, imports) cannot be renewed here and are listed for the administrator to
    /// announce. Each user is its own transaction: one failure does not stop the rest.
    ///
    /// `by_gateway` audits the renewals as the gateway's own (`user.renew.auto`) and takes the
    /// renewal lease first, so that of several gateways on one directory only one renews at a
    /// time; `Ok(None)` when another holds it.
    pub fn renew_expiring(
        &self,
        within_days: u32,
        rekey: bool,
        days: u32,
        dry_run: bool,
        by_gateway: Option<&str>,
    ) -> Result<Option<RenewalReport>, DirectoryError> {
        if let Some(holder) = by_gateway
            && !dry_run
            && !self.take_lease(RENEWAL_LEASE, holder, RENEWAL_LEASE_SECS)?
        {
            return Ok(None);
        }
        let now = profile::now();
        let horizon = now + i64::from(within_days) * 86_400;
        let users: Vec<(String, UserRecord)> = self.store.read()?.scan_json(Table::Users)?;
        let mut report = RenewalReport::default();
        for (_, u) in users {
            if u.status != UserStatus::Active {
                continue;
            }
            let due: Vec<&UserCert> = u
                .certs
                .iter()
                .filter(|c| c.state == CertState::Current && c.not_after <= horizon)
                .collect();
            if due.is_empty() {
                continue;
            }
            let (held, others): (Vec<&UserCert>, Vec<&UserCert>) = due
                .into_iter()
                .partition(|c| matches!(c.source, CertSource::Enrolled) && c.key_id.is_some());
            for c in others {
                report.not_held.push(Due {
                    email: u.email.clone(),
                    role: c.role.to_string(),
                    serial: c.serial.clone(),
                    not_after: c.not_after,
                });
            }
            if held.is_empty() {
                continue;
            }
            if dry_run {
                for c in held {
                    report.renewed.push(Due {
                        email: u.email.clone(),
                        role: c.role.to_string(),
                        serial: c.serial.clone(),
                        not_after: c.not_after,
                    });
                }
                continue;
            }
            let action = if by_gateway.is_some() {
                "user.renew.auto"
            } else {
                "user.renew"
            };
            match self.renew_audited(&u.email, rekey, days, action) {
                Ok(_) => report.renewed.extend(held.into_iter().map(|c| Due {
                    email: u.email.clone(),
                    role: c.role.to_string(),
                    serial: c.serial.clone(),
                    not_after: c.not_after,
                })),
                Err(e) if e.is_unavailable() => return Err(e),
                Err(e) => report.failed.push((u.email.clone(), e.to_string())),
            }
        }
        Ok(Some(report))
    }

    /// Revokes every current certificate of a user (`user revoke`) and reissues the CRL.
    pub fn revoke_user(
        &self,
        email: &str,
        reason: RevocationReason,
    ) -> Result<UserSummary, DirectoryError> {
        let reason_name = reason.name().to_string();
        let mut rec = self.user(email)?;
        let now = profile::now();
        let mut tx = self.store.write()?;
        let mut serials = Vec::new();
        for uc in rec.certs.iter_mut() {
            if matches!(uc.state, CertState::Revoked { .. }) {
                continue;
            }
            // Superseded certificates are revoked too: a compromised key must not verify old
            // signatures as trusted.
            uc.state = CertState::Revoked {
                at: now,
                reason: reason_name.clone(),
            };
            if let Some(mut issued) = tx.get_json::<IssuedRecord>(Table::Issued, &uc.serial)? {
                issued.revoked = Some((now, reason_name.clone()));
                tx.put_json(Table::Issued, &uc.serial, &issued)?;
            }
            serials.push(uc.serial.clone());
        }
        if serials.is_empty() {
            return Err(DirectoryError::NoCertificate {
                email: rec.email.clone(),
                role: "unrevoked".into(),
            });
        }
        rec.status = UserStatus::Revoked;
        tx.put_json(Table::Users, &rec.email, &rec)?;
        self.audit(
            &mut tx,
            "user.revoke",
            &rec.email,
            format!("{reason_name}: {}", serials.join(", ")),
        )?;
        tx.commit()?;
        self.issue_crl()?;
        Ok(summarise(&rec))
    }

    /// Stores an imported certificate and key (`user import`), from PKCS #12.
    pub fn import_user(
        &self,
        email: &str,
        display_name: Option<&str>,
        role: CertRole,
        cert: Cert,
        key: PrivateKey,
        chain: Vec<Cert>,
    ) -> Result<UserSummary, DirectoryError> {
        let email = self.internal_address(email)?;
        if !cert.email_addresses().contains(&email) {
            return Err(DirectoryError::Cert(
                crate::pki::cert::CertError::Malformed {
                    source_name: format!("certificate {}", cert.subject_string()),
                    reason: format!(
                        "it is for {} , not {email}",
                        if cert.email_addresses().is_empty() {
                            "no e-mail address".to_string()
                        } else {
                            cert.email_addresses().join(", ")
                        }
                    ),
                },
            ));
        }
        let mut tx = self.store.write()?;
        let mut rec: UserRecord = tx.get_json(Table::Users, &email)?.unwrap_or(UserRecord {
            email: email.clone(),
            display_name: display_name
                .map(str::to_string)
                .or_else(|| cert.common_name())
                .unwrap_or_else(|| email.clone()),
            status: UserStatus::Active,
            created: profile::now(),
            certs: Vec::new(),
        });
        let now = profile::now();
        for uc in rec.certs.iter_mut() {
            let overlaps =
                (role.signs() && uc.role.signs()) || (role.encrypts() && uc.role.encrypts());
            if uc.state == CertState::Current && overlaps {
                uc.state = CertState::Superseded { at: now };
            }
        }
        let key_id = self.seal_key(&mut tx, &key, role.exportable())?;
        rec.certs.push(UserCert {
            role,
            cert_der: cert.der().to_vec(),
            key_id: Some(key_id),
            source: CertSource::Imported,
            state: CertState::Current,
            serial: cert.serial_hex(),
            not_after: cert.not_after(),
            chain: chain.iter().map(|c| ChainCert(c.der().to_vec())).collect(),
        });
        rec.status = UserStatus::Active;
        tx.put_json(Table::Users, &email, &rec)?;
        self.audit(
            &mut tx,
            "user.import",
            &email,
            format!(
                "{role} certificate {} issued by {}",
                cert.serial_hex(),
                cert.issuer_string()
            ),
        )?;
        tx.commit()?;
        Ok(summarise(&rec))
    }

    /// The key, certificate and chain to export for a user (`user export`): the current
    /// encryption certificate, or with `include_signing` the signing one (audited).
    pub fn export_material(
        &self,
        email: &str,
        include_signing: bool,
    ) -> Result<(PrivateKey, Cert, Vec<Cert>), DirectoryError> {
        let rec = self.user(email)?;
        let uc = if include_signing {
            rec.current_signing()
        } else {
            rec.current_encryption()
        }
        .ok_or_else(|| DirectoryError::NoCertificate {
            email: rec.email.clone(),
            role: if include_signing {
                "signing"
            } else {
                "encryption"
            }
            .into(),
        })?;
        let key_id = uc
            .key_id
            .as_ref()
            .ok_or_else(|| DirectoryError::KeyNotHeld {
                email: rec.email.clone(),
                role: uc.role.to_string(),
            })?;
        let (key, exportable) = self.load_key(key_id)?;
        // A key that also signs (a single certificate, or an import for both roles) is a
        // signing key, whatever an older record says about it.
        if (!exportable || uc.role.signs()) && !include_signing {
            return Err(DirectoryError::SigningKeyNotExportable(rec.email.clone()));
        }
        let cert = Cert::from_der(&uc.cert_der)?;
        let chain = self.chain_for(uc)?;
        let mut tx = self.store.write()?;
        self.audit(
            &mut tx,
            if include_signing || uc.role.signs() {
                "user.export.signing-key"
            } else {
                "user.export"
            },
            &rec.email,
            format!("{} certificate {} exported as PKCS #12", uc.role, uc.serial),
        )?;
        tx.commit()?;
        Ok((key, cert, chain))
    }
}

/// The renewal lease's key in the meta table.
const RENEWAL_LEASE: &str = "lease.renewal";
/// How long a renewal run may hold the lease before another node may take it.
const RENEWAL_LEASE_SECS: i64 = 15 * 60;

/// A certificate a renewal run found due.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Due {
    /// Whose.
    pub email: String,
    /// Its role.
    pub role: String,
    /// Its serial (hex).
    pub serial: String,
    /// When it expires (unix seconds).
    pub not_after: i64,
}

/// What a renewal run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RenewalReport {
    /// Renewed (or, in a dry run, would be).
    pub renewed: Vec<Due>,
    /// Due but not renewable here: the gateway does not hold the key (CSR users, imports).
    pub not_held: Vec<Due>,
    /// Renewable but failed, with the reason.
    pub failed: Vec<(String, String)>,
}

#[cfg(test)]
mod renewal_tests {
    /// Of several gateways on one directory, one renews at a time: a lease held by another
    /// holder and not yet expired is refused; an expired one, or one's own, is taken.
    #[test]
    fn the_renewal_lease_admits_one_holder_at_a_time() {
        let (_tmp, _config, dir) = crate::gateway::tests::scratch("");
        let lease = super::RENEWAL_LEASE;
        assert!(dir.take_lease(lease, "node-a", 60).unwrap());
        assert!(!dir.take_lease(lease, "node-b", 60).unwrap());
        assert!(dir.take_lease(lease, "node-a", -1).unwrap(), "its own");
        assert!(dir.take_lease(lease, "node-b", 60).unwrap(), "expired");
        assert!(!dir.take_lease(lease, "node-a", 60).unwrap());
        // A node that lost the lease renews nothing and says so.
        assert_eq!(
            dir.renew_expiring(30, false, 365, false, Some("node-a"))
                .unwrap(),
            None
        );
        assert_eq!(
            dir.renew_expiring(30, false, 365, false, Some("node-b"))
                .unwrap(),
            Some(super::RenewalReport::default())
        );
    }
}
