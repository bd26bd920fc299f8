//! TLS server certificates from our CA, for the STARTTLS listener (`ca issue-server`).
//!
//! The key is generated here and handed back to be written to a file the listener reads; it is
//! not kept in the directory (it is not a user's key, and the listener does not read the
//! directory's sealed keys). Like every issuance, the serial goes into the issued table and the
//! action into the audit log, in one transaction.

use crate::pki::cert::Cert;
use crate::pki::keys::{KeyAlgorithm, PrivateKey};
use crate::pki::profile::{self, CertificateParams};

use super::{Directory, DirectoryError};
use crate::pki::revocation::RevocationReason;
use crate::store::{IssuedRecord, ReadTxExt, Table, WriteTxExt};

/// A freshly issued server certificate: the certificate, its key, and the CA certificates a
/// client needs between it and the root (our CA unless it is a root itself, and our CA's
/// chain).
pub struct ServerCertificate {
    /// The server certificate.
    pub cert: Cert,
    /// Its private key (PKCS #8 inside, zeroised on drop).
    pub key: PrivateKey,
    /// Intermediates to serve after it, nearest first (no self-signed root).
    pub chain: Vec<Cert>,
}

/// Checks a DNS host name (RFC 1123 labels; a leading `*.` wildcard is refused: the listener
/// has one name).
pub fn check_hostname(name: &str) -> Result<String, DirectoryError> {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    let bad = || DirectoryError::BadHostname(name.to_string());
    if n.is_empty() || n.len() > 253 {
        return Err(bad());
    }
    for label in n.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(bad());
        }
    }
    Ok(n)
}

/// Which side of TLS a certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsRole {
    /// serverAuth: the STARTTLS listener.
    Server,
    /// clientAuth: an MTA authenticating to the listener.
    Client,
}

impl Directory {
    /// Issues a TLS server certificate (serverAuth) for `hostname` with a new key.
    pub fn issue_tls_server(
        &self,
        hostname: &str,
        alg: KeyAlgorithm,
        days: u32,
    ) -> Result<ServerCertificate, DirectoryError> {
        self.issue_tls(hostname, alg, days, TlsRole::Server)
    }

    /// Issues a TLS certificate for either side with a new key.
    pub fn issue_tls(
        &self,
        hostname: &str,
        alg: KeyAlgorithm,
        days: u32,
        role: TlsRole,
    ) -> Result<ServerCertificate, DirectoryError> {
        let host = check_hostname(hostname)?;
        let ca = self.ca()?;
        let key = PrivateKey::generate(alg)?;
        let subject = profile::simple_name(&host, None)?;
        let (params, purpose, action) = match role {
            TlsRole::Server => (
                CertificateParams::tls_server(&host, subject, days, alg),
                "tls-server",
                "ca.issue-server",
            ),
            TlsRole::Client => (
                CertificateParams::tls_client(&host, subject, days),
                "tls-client",
                "ca.issue-client",
            ),
        };
        let cert = ca.issue(&params, &key.spki())?;
        let mut tx = self.store.write()?;
        self.record_issued(&mut tx, &cert, &host, purpose)?;
        self.audit(
            &mut tx,
            action,
            &host,
            format!("{alg}, {days} days: {purpose} {}", cert.serial_hex()),
        )?;
        tx.commit()?;
        let mut chain = Vec::new();
        if !ca.cert().is_self_issued() {
            chain.push(ca.cert().clone());
        }
        chain.extend(ca.chain().iter().filter(|c| !c.is_self_issued()).cloned());
        Ok(ServerCertificate { cert, key, chain })
    }
}

impl Directory {
    /// Every certificate our CA issued (users', servers', MTA clients', cross-certificates),
    /// oldest serial first as the table keeps them, for `ca issued`.
    pub fn issued(&self) -> Result<Vec<IssuedRecord>, DirectoryError> {
        let recs: Vec<(String, IssuedRecord)> = self.store.read()?.scan_json(Table::Issued)?;
        let mut recs: Vec<IssuedRecord> = recs.into_iter().map(|(_, r)| r).collect();
        recs.sort_by_key(|r| r.issued);
        Ok(recs)
    }

    /// Revokes a TLS server or MTA client certificate by serial (`ca revoke`) and reissues the
    /// CRL, which the STARTTLS listener reads without a restart. Users' certificates and
    /// cross-certificates have their own commands, which keep those records consistent.
    pub fn revoke_serial(
        &self,
        serial: &str,
        reason: RevocationReason,
    ) -> Result<IssuedRecord, DirectoryError> {
        let serial = serial.trim().trim_start_matches("0x").to_ascii_lowercase();
        let mut tx = self.store.write()?;
        let mut rec: IssuedRecord = tx
            .get_json(Table::Issued, &serial)?
            .ok_or_else(|| DirectoryError::NoSuchSerial(serial.clone()))?;
        let command = match rec.purpose.as_str() {
            "tls-server" | "tls-client" => None,
            "cross-certificate" => Some("smimegw trust remove ID".to_string()),
            _ => Some(format!("smimegw user revoke {}", rec.subject)),
        };
        if let Some(command) = command {
            return Err(DirectoryError::RevokeElsewhere {
                serial,
                purpose: format!("the {}", rec.purpose),
                subject: rec.subject,
                command,
            });
        }
        if let Some((_, reason)) = &rec.revoked {
            return Err(DirectoryError::AlreadyRevoked {
                serial,
                reason: reason.clone(),
            });
        }
        rec.revoked = Some((profile::now(), reason.name().to_string()));
        tx.put_json(Table::Issued, &serial, &rec)?;
        self.audit(
            &mut tx,
            "ca.revoke",
            &serial,
            format!(
                "{} certificate of {}: {}",
                rec.purpose,
                rec.subject,
                reason.name()
            ),
        )?;
        tx.commit()?;
        self.issue_crl()?;
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{IssuedRecord, ReadTxExt, Table};

    #[test]
    fn issuance_is_recorded_and_audited() {
        let (_tmp, _, dir) = crate::gateway::tests::scratch("");
        let s = dir
            .issue_tls_server("GW.acme.test", KeyAlgorithm::P256, 10)
            .unwrap();
        assert!(
            s.chain.is_empty(),
            "a root CA is not served as an intermediate"
        );
        assert_eq!(s.cert.common_name().as_deref(), Some("gw.acme.test"));
        let rec: IssuedRecord = dir
            .store()
            .read()
            .unwrap()
            .get_json(Table::Issued, &s.cert.serial_hex())
            .unwrap()
            .expect("serial recorded");
        assert_eq!(
            (rec.subject.as_str(), rec.purpose.as_str()),
            ("gw.acme.test", "tls-server")
        );
        let last = dir.audit_log().unwrap().pop().unwrap();
        assert_eq!(last.action, "ca.issue-server");
        assert!(
            last.detail.contains(&s.cert.serial_hex()),
            "{}",
            last.detail
        );
        assert!(matches!(
            dir.issue_tls_server("a_b", KeyAlgorithm::P256, 10),
            Err(DirectoryError::BadHostname(_))
        ));
    }

    #[test]
    fn host_names() {
        assert_eq!(check_hostname("GW.Acme.test.").unwrap(), "gw.acme.test");
        assert_eq!(check_hostname("localhost").unwrap(), "localhost");
        assert_eq!(check_hostname("mx-1.a9.test").unwrap(), "mx-1.a9.test");
        for bad in [
            "",
            "*.acme.test",
            "a..b",
            "-a.test",
            "a_b.test",
            "a b",
            "ü.test",
        ] {
            assert!(check_hostname(bad).is_err(), "{bad}");
        }
        assert!(check_hostname(&format!("{}.test", "a".repeat(64))).is_err());
    }
}
