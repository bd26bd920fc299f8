//! Our CA in the directory: create or import it, read its certificate and chain, open its key
//! to issue, and record every serial it issues.

use super::*;

impl Directory {
    /// The CA record, if a CA exists.
    pub(super) fn ca_record(&self) -> Result<Option<CaRecord>, DirectoryError> {
        Ok(self.store.read()?.get_json(Table::Meta, META_CA)?)
    }

    /// The CA certificate (no key is opened).
    pub fn ca_cert(&self) -> Result<Cert, DirectoryError> {
        let rec = self
            .ca_record()?
            .ok_or_else(|| DirectoryError::NoCa(self.describe()))?;
        Ok(Cert::from_der_named(
            &rec.cert_der,
            "stored CA certificate",
        )?)
    }

    /// The CA chain above our CA certificate (empty for a root).
    pub fn ca_chain(&self) -> Result<Vec<Cert>, DirectoryError> {
        let rec = self
            .ca_record()?
            .ok_or_else(|| DirectoryError::NoCa(self.describe()))?;
        rec.chain
            .iter()
            .map(|c| Cert::from_der_named(&c.0, "stored CA chain").map_err(Into::into))
            .collect()
    }

    /// Whether a CA exists.
    pub fn has_ca(&self) -> Result<bool, DirectoryError> {
        Ok(self.ca_record()?.is_some())
    }

    /// The CA with its key opened, for issuing.
    pub(super) fn ca(&self) -> Result<Ca, DirectoryError> {
        let rec = self
            .ca_record()?
            .ok_or_else(|| DirectoryError::NoCa(self.describe()))?;
        let cert = Cert::from_der_named(&rec.cert_der, "stored CA certificate")?;
        let (key, _) = self.load_key(&rec.key_id)?;
        let chain = rec
            .chain
            .iter()
            .map(|c| Cert::from_der_named(&c.0, "stored CA chain"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Ca::from_parts(cert, key, chain)?)
    }

    /// Creates a self-signed root CA (`ca init`).
    pub fn init_ca(
        &self,
        name: &str,
        alg: KeyAlgorithm,
        days: u32,
    ) -> Result<Cert, DirectoryError> {
        if let Some(existing) = self.ca_record()? {
            let c = Cert::from_der(&existing.cert_der)?;
            return Err(DirectoryError::CaExists(
                self.describe(),
                c.subject_string(),
            ));
        }
        let ca = Ca::new_root(name, alg, days)?;
        self.install_ca(
            &ca,
            "ca.init",
            format!("self-signed root, {alg}, {days} days"),
        )?;
        Ok(ca.cert().clone())
    }

    /// Installs a CA certificate and key from a third party (`ca import`): we run as its
    /// subordinate. `chain` is the certificates above it.
    pub fn import_ca(
        &self,
        cert: Cert,
        key: PrivateKey,
        chain: Vec<Cert>,
    ) -> Result<Cert, DirectoryError> {
        if let Some(existing) = self.ca_record()? {
            let c = Cert::from_der(&existing.cert_der)?;
            return Err(DirectoryError::CaExists(
                self.describe(),
                c.subject_string(),
            ));
        }
        let ca = Ca::from_parts(cert, key, chain)?;
        let detail = format!(
            "imported CA issued by {}, {} chain certificate(s)",
            ca.cert().issuer_string(),
            ca.chain().len()
        );
        self.install_ca(&ca, "ca.import", detail)?;
        Ok(ca.cert().clone())
    }

    pub(super) fn install_ca(
        &self,
        ca: &Ca,
        action: &str,
        detail: String,
    ) -> Result<(), DirectoryError> {
        let mut tx = self.store.write()?;
        let key_id = self.seal_key(&mut tx, ca.key(), false)?;
        let rec = CaRecord {
            cert_der: ca.cert().der().to_vec(),
            key_id,
            chain: ca
                .chain()
                .iter()
                .map(|c| ChainCert(c.der().to_vec()))
                .collect(),
            next_crl_number: 1,
        };
        // insert_new: two concurrent `ca init`s cannot both win.
        if !tx.insert_new_json(Table::Meta, META_CA, &rec)? {
            return Err(DirectoryError::CaExists(
                self.describe(),
                "another CA".into(),
            ));
        }
        self.audit(&mut tx, action, &ca.cert().subject_string(), detail)?;
        self.bump_trust_generation(&mut tx)?;
        tx.commit()?;
        Ok(())
    }

    /// Records a newly issued certificate's serial; a duplicate serial (astronomically unlikely
    /// with 16 random bytes, but possible across a misconfigured fleet) aborts the operation.
    pub(super) fn record_issued(
        &self,
        tx: &mut Box<dyn WriteTx + '_>,
        cert: &Cert,
        subject: &str,
        purpose: &str,
    ) -> Result<(), DirectoryError> {
        let rec = IssuedRecord {
            serial: cert.serial_hex(),
            subject: subject.to_string(),
            purpose: purpose.to_string(),
            issued: profile::now(),
            not_after: cert.not_after(),
            revoked: None,
        };
        if !tx.insert_new_json(Table::Issued, &rec.serial, &rec)? {
            return Err(DirectoryError::Store(StoreError::Corrupt {
                table: "issued",
                key: rec.serial,
                message: "serial number already issued; retry the command".into(),
            }));
        }
        Ok(())
    }
}
