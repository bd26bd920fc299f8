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

/// How stale (in seconds) a harvested record's `seen` time may get before an unchanged
/// certificate is written again: a day.
const HARVEST_SEEN_REFRESH: i64 = 24 * 60 * 60;

impl Directory {
    /// Stores what a valid signature taught us, keyed by the encryption certificate's address.
    /// Internal users are never overwritten by harvesting: their certificates come from us.
    ///
    /// Called for every valid inbound signature, so it writes only when something changed (or
    /// `seen` is over a day old): a correspondent who writes often costs a
    /// read, not a durable write transaction (an fsync, and the store's single writer) per
    /// message. Signers with internal addresses cost nothing.
    pub fn store_harvest(&self, h: &Harvest) -> Result<(), DirectoryError> {
        let Some(enc) = &h.encryption_cert else {
            return Ok(());
        };
        let external: Vec<String> = enc
            .email_addresses()
            .into_iter()
            .filter(|e| !self.config.is_internal(e))
            .collect();
        if external.is_empty() {
            return Ok(());
        }
        let chain: Vec<ChainCert> = h
            .chain
            .iter()
            .map(|c| ChainCert(c.der().to_vec()))
            .collect();
        let capabilities = signed::encode_capabilities(&h.capabilities);
        let now = profile::now();
        {
            let read = self.store.read()?;
            let mut current = true;
            for email in &external {
                current &= match read.get_json::<HarvestedCert>(Table::Harvested, email)? {
                    Some(old) => {
                        old.cert_der == enc.der()
                            && old.chain.len() == chain.len()
                            && old.chain.iter().zip(&chain).all(|(a, b)| a.0 == b.0)
                            && old.capabilities.as_deref() == Some(&capabilities[..])
                            && now.saturating_sub(old.seen) < HARVEST_SEEN_REFRESH
                    }
                    None => false,
                };
            }
            if current {
                return Ok(());
            }
        }
        let mut tx = self.store.write()?;
        for email in external {
            let rec = HarvestedCert {
                email: email.clone(),
                cert_der: enc.der().to_vec(),
                chain: chain.clone(),
                capabilities: Some(capabilities.clone()),
                seen: now,
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
