//! Certificates harvested from valid, trusted signatures: the way the gateway learns how to
//! encrypt to external correspondents (RFC 8550 section 4.4 style: a signed message carries the
//! sender's encryption certificate).

use super::{Directory, DirectoryError};
use crate::pki::Cert;
use crate::pki::profile;
use crate::smime::signed::{self, Capability, Harvest};
use crate::store::{ChainCert, HarvestedCert, ReadTxExt, Table, WriteTxExt};

/// What we know about an external correspondent from their signed mail.
#[derive(Clone, Debug)]
pub struct Correspondent {
    /// The certificate to encrypt to.
    pub cert: Cert,
    /// The chain that came with it.
    pub chain: Vec<Cert>,
    /// What they said they can decrypt, most preferred first.
    pub capabilities: Vec<Capability>,
}

impl Directory {
    /// Stores what a valid signature taught us, keyed by the encryption certificate's address.
    /// Internal users are never overwritten by harvesting: their certificates come from us.
    pub fn store_harvest(&self, h: &Harvest) -> Result<(), DirectoryError> {
        let Some(enc) = &h.encryption_cert else {
            return Ok(());
        };
        let mut tx = self.store.write()?;
        for email in enc.email_addresses() {
            if self.config.is_internal(&email) {
                continue;
            }
            let rec = HarvestedCert {
                email: email.clone(),
                cert_der: enc.der().to_vec(),
                chain: h
                    .chain
                    .iter()
                    .map(|c| ChainCert(c.der().to_vec()))
                    .collect(),
                capabilities: Some(signed::encode_capabilities(&h.capabilities)),
                seen: profile::now(),
            };
            let changed = match tx.get_json::<HarvestedCert>(Table::Harvested, &email)? {
                Some(old) => old.cert_der != rec.cert_der,
                None => true,
            };
            tx.put_json(Table::Harvested, &email, &rec)?;
            if changed {
                self.audit(
                    &mut tx,
                    "harvest",
                    &email,
                    format!(
                        "certificate {} issued by {}",
                        enc.serial_hex(),
                        enc.issuer_string()
                    ),
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// A harvested encryption certificate for an external address, with the chain that came with
    /// it and the capabilities the sender advertised.
    pub fn harvested(&self, email: &str) -> Result<Option<Correspondent>, DirectoryError> {
        let email = super::normalise_address(email)?;
        let Some(rec) = self
            .store
            .read()?
            .get_json::<HarvestedCert>(Table::Harvested, &email)?
        else {
            return Ok(None);
        };
        let cert =
            Cert::from_der_named(&rec.cert_der, &format!("harvested certificate of {email}"))?;
        let chain = rec
            .chain
            .iter()
            .map(|c| Cert::from_der_named(&c.0, "harvested chain"))
            .collect::<Result<Vec<_>, _>>()?;
        let caps = rec
            .capabilities
            .as_deref()
            .map(signed::decode_capabilities)
            .unwrap_or_default();
        Ok(Some(Correspondent {
            cert,
            chain,
            capabilities: caps,
        }))
    }
}
