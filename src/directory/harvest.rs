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
    /// Stores what a valid signature taught us, keyed by the encryption certificate's address,
    /// and keeps the CA certificates of the signer's chain ([`Directory::learn_chain`]).
    /// Internal users are never overwritten by harvesting: their certificates come from us.
    ///
    /// Called for every valid inbound signature, so it writes only when something changed (or
    /// `seen` is over a day old): a correspondent who writes often costs a
    /// read, not a durable write transaction (an fsync, and the store's single writer) per
    /// message. Signers with internal addresses cost nothing.
    ///
    /// Never backwards (issue 15): a certificate that started its validity before the one on
    /// record does not replace it (a replayed or long-delayed message would otherwise undo a
    /// correspondent's renewal), and capabilities from a message signed before the one they
    /// came from stay as they are. A capability the correspondent stops advertising (AES-GCM,
    /// RSA-OAEP) is logged: it lowers what we encrypt to them with.
    pub fn store_harvest(
        &self,
        h: &Harvest,
        signing_time: Option<i64>,
    ) -> Result<(), DirectoryError> {
        // The CAs of every validated chain, so their CRLs can be imported without --issuer.
        self.learn_chain(&h.chain)?;
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
            let mut rec = HarvestedCert {
                email: email.clone(),
                cert_der: enc.der().to_vec(),
                chain: chain.clone(),
                capabilities: Some(capabilities.clone()),
                seen: now,
                signed_at: signing_time,
            };
            let old = tx.get_json::<HarvestedCert>(Table::Harvested, &email)?;
            if let Some(old) = &old {
                match ordering(old, &rec, enc)? {
                    Order::OlderCertificate => {
                        tracing::info!(correspondent = %email, serial = %enc.serial_hex(), "harvest: kept the newer certificate on record (this one started its validity earlier)");
                        continue;
                    }
                    Order::OlderMessage => {
                        rec.capabilities = old.capabilities.clone();
                        rec.signed_at = old.signed_at;
                    }
                    Order::Newer => log_downgrade(&email, old, &rec),
                }
            }
            let changed = old.as_ref().is_none_or(|o| o.cert_der != rec.cert_der);
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

/// How a newly harvested record compares with the one on record for the same address.
#[derive(Debug, PartialEq, Eq)]
enum Order {
    /// Its certificate started its validity before the recorded one: keep the record.
    OlderCertificate,
    /// Same or newer certificate, but from a message signed before the one the recorded
    /// capabilities came from: take the certificate, keep the capabilities.
    OlderMessage,
    /// Newer in every respect we can tell.
    Newer,
}

fn ordering(
    old: &HarvestedCert,
    new: &HarvestedCert,
    cert: &Cert,
) -> Result<Order, DirectoryError> {
    if old.cert_der != new.cert_der {
        let recorded = Cert::from_der_named(
            &old.cert_der,
            &format!("harvested certificate of {}", old.email),
        )?;
        if cert.not_before() < recorded.not_before() {
            return Ok(Order::OlderCertificate);
        }
    }
    match (old.signed_at, new.signed_at) {
        (Some(before), Some(now)) if now < before => Ok(Order::OlderMessage),
        _ => Ok(Order::Newer),
    }
}

/// Logs the capabilities a correspondent no longer advertises (what we choose the content
/// cipher and key transport from).
fn log_downgrade(email: &str, old: &HarvestedCert, new: &HarvestedCert) {
    let caps = |r: &HarvestedCert| {
        r.capabilities
            .as_deref()
            .map(signed::decode_capabilities)
            .unwrap_or_default()
    };
    let (before, after) = (caps(old), caps(new));
    let dropped: Vec<String> = before
        .iter()
        .filter(|c| !after.contains(c))
        .map(|c| format!("{c:?}"))
        .collect();
    if !dropped.is_empty() && old.capabilities.is_some() {
        tracing::warn!(correspondent = %email, dropped = %dropped.join(","), "harvest: the correspondent no longer advertises these capabilities; later mail to them uses what they still advertise");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testpki::{DAY, KeyKind, Pki, now};

    /// A correspondent's certificate issued by a partner CA, valid from `from`.
    fn partner_cert(pki: &Pki, ca: &crate::pki::testpki::Ca, name: &str, from: i64) -> Cert {
        let path = pki.issue(
            ca,
            name,
            "/CN=bob",
            &pki.leaf_ext("bob@partner.test"),
            KeyKind::P256,
            Some((from, now() + 365 * DAY)),
        );
        pki.cert(&path)
    }

    fn harvest(cert: &Cert, capabilities: Vec<Capability>) -> Harvest {
        Harvest {
            signer: cert.clone(),
            chain: Vec::new(),
            encryption_cert: Some(cert.clone()),
            capabilities,
        }
    }

    /// A replayed or delayed message never undoes what a newer one taught: an older certificate
    /// does not replace a newer one, and capabilities from an earlier signingTime stay out.
    #[test]
    fn harvest_never_goes_backwards() {
        let (_tmp, _config, dir) = crate::gateway::tests::scratch("");
        let pki = Pki::new();
        let ca = pki.root("partner", "/CN=Partner Root", KeyKind::P256, None);
        let old = partner_cert(&pki, &ca, "bob-old", now() - 30 * DAY);
        let new = partner_cert(&pki, &ca, "bob-new", now() - DAY);
        let t = now();
        let recorded = |dir: &Directory| dir.harvested("bob@partner.test").unwrap().unwrap();

        dir.store_harvest(&harvest(&new, vec![Capability::Aes256Gcm]), Some(t))
            .unwrap();
        // The renewal is on record; the earlier certificate, arriving late, does not replace it.
        dir.store_harvest(&harvest(&old, vec![Capability::Aes256Cbc]), Some(t + 60))
            .unwrap();
        assert_eq!(recorded(&dir).cert.der(), new.der());
        assert_eq!(recorded(&dir).capabilities, [Capability::Aes256Gcm]);
        // The same certificate from a message signed earlier: capabilities stay.
        dir.store_harvest(&harvest(&new, vec![Capability::Aes256Cbc]), Some(t - 3600))
            .unwrap();
        assert_eq!(recorded(&dir).capabilities, [Capability::Aes256Gcm]);
        // A later message may lower them (logged as a downgrade) and a newer certificate wins.
        dir.store_harvest(&harvest(&new, vec![Capability::Aes256Cbc]), Some(t + 3600))
            .unwrap();
        assert_eq!(recorded(&dir).capabilities, [Capability::Aes256Cbc]);
        let newest = partner_cert(&pki, &ca, "bob-newest", now());
        dir.store_harvest(&harvest(&newest, vec![Capability::Aes256Gcm]), None)
            .unwrap();
        assert_eq!(recorded(&dir).cert.der(), newest.der());
    }
}
