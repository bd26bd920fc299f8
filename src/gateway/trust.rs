//! Trust and certificates for one message: the trust context of the directory's generation,
//! recipients' encryption certificates, revocation of signer paths, and harvesting.

use super::*;

impl Gateway {
    /// How long a message may wait for revocation data: `[revocation] timeout_secs`, and never
    /// past the message's own deadline (`[limits] max_processing_secs`).
    pub(super) fn revocation_deadline(&self, limits: Option<&Limits>) -> Instant {
        let own = Instant::now() + self.revocation.fetcher().timeout();
        match limits.and_then(|l| l.deadline) {
            Some(d) => own.min(d),
            None => own,
        }
    }

    /// Settles the revocation status of every valid signer's path: a revoked certificate makes
    /// the signature untrusted (and nothing is harvested from it); any other status is attached
    /// for the verdict to weigh under `[revocation] when_unknown`.
    pub(super) fn check_revocation(
        &self,
        reports: &mut [SignerReport],
        ctx: &TrustContext,
        now: i64,
        deadline: Instant,
    ) {
        let when_unknown = self.config().revocation.when_unknown;
        for r in reports.iter_mut().filter(|r| r.verdict.is_valid()) {
            let Some(path) = &r.path else { continue };
            match self.revocation.check(ctx, path, now, deadline) {
                PathRevocation::Revoked(e) => {
                    r.verdict = SignerVerdict::Untrusted(e);
                    r.harvest = None;
                }
                status => {
                    r.revocation = Some(RevocationNote {
                        status,
                        when_unknown,
                        at: now,
                    });
                }
            }
        }
    }

    /// Stores what a valid signature taught us. A directory that cannot take the write (disk
    /// full, read-only) must not cost the message: it is delivered with its verdict all the
    /// same, and the failure is logged and counted (`smimegw_harvest_failures_total`); the
    /// certificate is harvested again from the correspondent's next signed message.
    pub(super) fn harvest(&self, h: &crate::smime::signed::Harvest, signing_time: Option<i64>) {
        if let Err(e) = self.dir.store_harvest(h, signing_time) {
            self.harvest_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let who = h
                .encryption_cert
                .as_ref()
                .map(|c| c.email_addresses().join(","))
                .unwrap_or_default();
            tracing::error!(correspondent = %who, error = %e, "could not store the harvested certificate; the message is delivered without it");
        }
    }

    /// The certificate to encrypt to for a recipient: an internal user's, or one harvested from
    /// a valid signature — either must validate now for encryption.
    /// The trust context and its generation, from the cache unless the directory changed.
    pub(super) fn trust(&self) -> Result<(u64, std::sync::Arc<TrustContext>), DirectoryError> {
        let generation = self.dir.trust_generation()?;
        let mut slot = self.trust.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((g, ctx)) = slot.as_ref()
            && *g == generation
        {
            return Ok((generation, ctx.clone()));
        }
        let ctx = std::sync::Arc::new(self.dir.trust_context()?);
        *slot = Some((generation, ctx.clone()));
        Ok((generation, ctx))
    }

    /// `Ok(None)` when no valid certificate is known; `Err` only when the directory itself is
    /// unavailable (a temporary condition the caller turns into 4xx).
    pub(super) fn recipient_cert(
        &self,
        addr: &str,
        limits: Option<&Limits>,
    ) -> Result<Option<(Cert, Vec<Capability>)>, DirectoryError> {
        let looked_up = if self.config().is_internal(addr) {
            self.dir
                .encryption_cert(addr)
                .map(|c| Some((c, Vec::new(), Vec::new())))
        } else {
            self.dir
                .harvested(addr)
                .map(|o| o.map(|c| (c.cert, c.chain, c.capabilities)))
        };
        let (cert, chain, caps) = match looked_up {
            Ok(Some(x)) => x,
            Err(e) if e.is_unavailable() => return Err(e),
            Ok(None) | Err(_) => return Ok(None),
        };
        let (generation, ctx) = match self.trust() {
            Ok(x) => x,
            Err(e) if e.is_unavailable() => return Err(e),
            Err(_) => return Ok(None),
        };
        let q = Query {
            leaf: &cert,
            untrusted: &chain,
            at: profile::now(),
            email: Some(addr),
            usage: Some(Usage::Encryption),
        };
        let Ok(path) = self.cache.validate(&ctx, generation, &q) else {
            return Ok(None);
        };
        // A revoked recipient certificate is no certificate; one whose status is unknown is
        // still used (encrypting to it discloses nothing its holder could not already read).
        let deadline = self.revocation_deadline(limits);
        let revoked = matches!(
            self.revocation.check(&ctx, &path, q.at, deadline),
            PathRevocation::Revoked(_)
        );
        Ok((!revoked).then_some((cert, caps)))
    }
}
