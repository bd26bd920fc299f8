//! What operations asks of the directory: is it there, and what expires when. Read by the
//! metrics listener (`/healthz`, expiry gauges) and by `smimegw doctor`.

use super::{Directory, DirectoryError};
use crate::store::{CertRole, CertSource, CertState, ReadTxExt, Table, UserRecord, UserStatus};

/// One current certificate of an active user and when it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertExpiry {
    /// The user's address.
    pub email: String,
    /// What the certificate is for.
    pub role: CertRole,
    /// Serial (hex).
    pub serial: String,
    /// notAfter, seconds since the epoch.
    pub not_after: i64,
    /// Whether `user renew` can renew it (we issued it and hold its key); otherwise the user
    /// must bring a new request or PKCS #12.
    pub renewable: bool,
}

impl Directory {
    /// Whether the directory is usable now: the store file is still the one opened at start
    /// and a read transaction answers. The error says what is wrong with which file.
    pub fn health(&self) -> Result<(), DirectoryError> {
        self.store.health()?;
        let _ = self.store.read()?.get(Table::Meta, super::META_CA)?;
        Ok(())
    }

    /// Every current certificate of every active user with its expiry, soonest first.
    pub fn expiry_report(&self) -> Result<Vec<CertExpiry>, DirectoryError> {
        let users: Vec<(String, UserRecord)> = self.store.read()?.scan_json(Table::Users)?;
        let mut out: Vec<CertExpiry> = users
            .into_iter()
            .filter(|(_, u)| u.status == UserStatus::Active)
            .flat_map(|(_, u)| {
                u.certs
                    .iter()
                    .filter(|c| c.state == CertState::Current)
                    .map(|c| CertExpiry {
                        email: u.email.clone(),
                        role: c.role,
                        serial: c.serial.clone(),
                        not_after: c.not_after,
                        renewable: c.key_id.is_some() && matches!(c.source, CertSource::Enrolled),
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort_by(|a, b| (a.not_after, &a.email).cmp(&(b.not_after, &b.email)));
        Ok(out)
    }

    /// How many external certificates were harvested from signed mail.
    pub fn harvested_count(&self) -> Result<usize, DirectoryError> {
        Ok(self.store.read()?.scan(Table::Harvested)?.len())
    }
}
