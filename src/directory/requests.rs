//! The request / approve flow for users who keep their own private key (the Domino model:
//! a user submits a request, an administrator approves or denies it, the user picks up the
//! certificate).

use serde::Serialize;

use super::{Directory, DirectoryError, random_id};
use crate::pki::ca::rfc3339;
use crate::pki::cert::Cert;
use crate::pki::csr::Csr;
use crate::pki::keys::KeyAlgorithm;
use crate::pki::profile::{self, CertificateParams};
use crate::store::{
    CertRole, CertSource, CertState, ReadTxExt, RequestRecord, RequestState, Table, UserCert,
    UserRecord, UserStatus, WriteTxExt,
};

/// A request as listed.
#[derive(Clone, Debug, Serialize)]
pub struct RequestSummary {
    /// Id.
    pub id: String,
    /// Address.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Requested role.
    pub role: CertRole,
    /// pending / approved / denied.
    pub state: String,
    /// Submitted (RFC 3339).
    pub submitted: String,
    /// Who submitted it.
    pub submitted_by: String,
    /// Serial of the issued certificate, once approved.
    pub serial: Option<String>,
    /// Reason given on denial.
    pub reason: Option<String>,
}

fn summarise(r: &RequestRecord) -> RequestSummary {
    let (state, serial, reason) = match &r.state {
        RequestState::Pending => ("pending", None, None),
        RequestState::Approved { serial, .. } => ("approved", Some(serial.clone()), None),
        RequestState::Denied { reason, .. } => ("denied", None, Some(reason.clone())),
    };
    RequestSummary {
        id: r.id.clone(),
        email: r.email.clone(),
        display_name: r.display_name.clone(),
        role: r.role,
        state: state.into(),
        submitted: rfc3339(r.submitted),
        submitted_by: r.submitted_by.clone(),
        serial,
        reason,
    }
}

/// The key type of a public key, to pick keyEncipherment or keyAgreement.
fn key_kind(spki: &spki::SubjectPublicKeyInfoOwned) -> KeyAlgorithm {
    if spki.algorithm.oid == crate::oid::EC_PUBLIC_KEY {
        KeyAlgorithm::P256
    } else {
        KeyAlgorithm::Rsa2048
    }
}

impl Directory {
    /// Records a request after checking its proof of possession and that its address is
    /// internal (`request submit`); returns the new request's id.
    pub fn submit_request(
        &self,
        csr_bytes: &[u8],
        source_name: &str,
        role: CertRole,
    ) -> Result<RequestSummary, DirectoryError> {
        let csr = Csr::parse(csr_bytes, source_name)?;
        let email = self.internal_address(&csr.email)?;
        let rec = RequestRecord {
            id: random_id(8)?,
            email: email.clone(),
            display_name: csr.common_name.clone().unwrap_or_else(|| email.clone()),
            role,
            csr_der: csr.der.clone(),
            submitted: profile::now(),
            submitted_by: self.actor.clone(),
            state: RequestState::Pending,
            cert_der: None,
        };
        let mut tx = self.store.write()?;
        if !tx.insert_new_json(Table::Requests, &rec.id, &rec)? {
            return Err(DirectoryError::RequestDecided {
                id: rec.id,
                state: "already present".into(),
            });
        }
        self.audit(
            &mut tx,
            "request.submit",
            &rec.id,
            format!("{email}, {role}"),
        )?;
        tx.commit()?;
        Ok(summarise(&rec))
    }

    /// Requests, pending only unless `all`.
    pub fn list_requests(&self, all: bool) -> Result<Vec<RequestSummary>, DirectoryError> {
        let mut v: Vec<RequestRecord> = self
            .store
            .read()?
            .scan_json::<RequestRecord>(Table::Requests)?
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| all || r.state == RequestState::Pending)
            .collect();
        v.sort_by_key(|r| r.submitted);
        Ok(v.iter().map(summarise).collect())
    }

    fn request(&self, id: &str) -> Result<RequestRecord, DirectoryError> {
        self.store
            .read()?
            .get_json(Table::Requests, id)?
            .ok_or_else(|| DirectoryError::NoSuchRequest(id.to_string()))
    }

    fn ensure_pending(r: &RequestRecord) -> Result<(), DirectoryError> {
        match &r.state {
            RequestState::Pending => Ok(()),
            RequestState::Approved { serial, at } => Err(DirectoryError::RequestDecided {
                id: r.id.clone(),
                state: format!("approved ({}; serial {serial})", rfc3339(*at)),
            }),
            RequestState::Denied { reason, at } => Err(DirectoryError::RequestDecided {
                id: r.id.clone(),
                state: format!("denied ({}: {reason})", rfc3339(*at)),
            }),
        }
    }

    /// Issues the certificate for a pending request into the user's record (`request approve`).
    pub fn approve_request(&self, id: &str, days: u32) -> Result<Cert, DirectoryError> {
        let mut req = self.request(id)?;
        Self::ensure_pending(&req)?;
        // Re-check everything at approval time: the configuration may have changed since.
        let csr = Csr::parse(&req.csr_der, &format!("request {id}"))?;
        let email = self.internal_address(&csr.email)?;
        let ca = self.ca()?;
        let subject = profile::simple_name(&req.display_name, None)?;
        let kind = key_kind(&csr.public_key);
        let params = match req.role {
            CertRole::Signing => CertificateParams::smime_signing(&email, subject, days),
            CertRole::Encryption => {
                CertificateParams::smime_encryption(&email, subject, days, kind)
            }
            CertRole::Both => CertificateParams::smime_single(&email, subject, days, kind),
        };
        let cert = ca.issue(&params, &csr.public_key)?;

        let mut tx = self.store.write()?;
        // Re-read inside the transaction: a concurrent approve must not issue twice.
        let current: RequestRecord = tx
            .get_json(Table::Requests, id)?
            .ok_or_else(|| DirectoryError::NoSuchRequest(id.to_string()))?;
        Self::ensure_pending(&current)?;
        let now = profile::now();
        let mut user: UserRecord = tx.get_json(Table::Users, &email)?.unwrap_or(UserRecord {
            email: email.clone(),
            display_name: req.display_name.clone(),
            status: UserStatus::Active,
            created: now,
            certs: Vec::new(),
        });
        for uc in user.certs.iter_mut() {
            let overlaps = (req.role.signs() && uc.role.signs())
                || (req.role.encrypts() && uc.role.encrypts());
            if uc.state == CertState::Current && overlaps {
                uc.state = CertState::Superseded { at: now };
            }
        }
        user.certs.push(UserCert {
            role: req.role,
            cert_der: cert.der().to_vec(),
            key_id: None,
            source: CertSource::Request {
                request_id: id.to_string(),
            },
            state: CertState::Current,
            serial: cert.serial_hex(),
            not_after: cert.not_after(),
            chain: Vec::new(),
        });
        user.status = UserStatus::Active;
        self.record_issued(&mut tx, &cert, &email, &req.role.to_string())?;
        req.state = RequestState::Approved {
            serial: cert.serial_hex(),
            at: now,
        };
        req.cert_der = Some(cert.der().to_vec());
        tx.put_json(Table::Requests, id, &req)?;
        tx.put_json(Table::Users, &email, &user)?;
        self.audit(
            &mut tx,
            "request.approve",
            id,
            format!("{email}, {} certificate {}", req.role, cert.serial_hex()),
        )?;
        tx.commit()?;
        Ok(cert)
    }

    /// Denies a pending request with a reason (`request deny`).
    pub fn deny_request(&self, id: &str, reason: &str) -> Result<(), DirectoryError> {
        let mut tx = self.store.write()?;
        let mut req: RequestRecord = tx
            .get_json(Table::Requests, id)?
            .ok_or_else(|| DirectoryError::NoSuchRequest(id.to_string()))?;
        Self::ensure_pending(&req)?;
        req.state = RequestState::Denied {
            reason: reason.to_string(),
            at: profile::now(),
        };
        tx.put_json(Table::Requests, id, &req)?;
        self.audit(
            &mut tx,
            "request.deny",
            id,
            format!("{}: {reason}", req.email),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The issued certificate and its chain for an approved request (`request pickup`).
    pub fn pickup_request(&self, id: &str) -> Result<Vec<Cert>, DirectoryError> {
        let req = self.request(id)?;
        let der = match (&req.state, &req.cert_der) {
            (RequestState::Approved { .. }, Some(der)) => der,
            (RequestState::Denied { reason, .. }, _) => {
                return Err(DirectoryError::RequestDecided {
                    id: id.to_string(),
                    state: format!("denied: {reason}"),
                });
            }
            _ => return Err(DirectoryError::RequestNotApproved(id.to_string())),
        };
        let mut out = vec![Cert::from_der(der)?];
        out.push(self.ca_cert()?);
        out.extend(self.ca_chain()?);
        Ok(out)
    }
}
