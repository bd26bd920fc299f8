//! Revocation on the path (RFC 5280 section 6.3): the newest usable CRL of each issuer, CRLs
//! signed by another key of the same CA (6.3.3 (f)), and the memo of verified CRL signatures.

use super::*;

/// The fingerprints of a CRL and of the certificate whose key verified it.
pub(super) type CrlAndSigner = ([u8; 32], [u8; 32]);

/// The memo of [`TrustContext::verified_crls`]: shared by the clones of one context.
#[derive(Debug, Clone, Default)]
pub struct CrlVerifications(
    std::sync::Arc<std::sync::Mutex<std::collections::HashSet<CrlAndSigner>>>,
);

impl CrlVerifications {
    fn contains(&self, key: &CrlAndSigner) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key)
    }

    fn insert(&self, key: CrlAndSigner) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(key);
    }
}

/// Whether `crl`, which does not verify with the key of `issuer`, was signed by another key of
/// the same CA, as RFC 5280 section 6.3.3 (f) allows (a CA that rolled its key over, or a
/// separate CRL-signing certificate): a known or presented certificate with the CRL's issuer
/// name, whose keyUsage (when present) has cRLSign, whose key verifies the CRL, and which itself
/// validates at `at` to the same trust anchor, `anchor`, as the path being checked. Path
/// validation asks it of imported CRLs, and revocation checking (`pki::online`) of fetched ones.
pub fn crl_signed_by_another_key(
    ctx: &TrustContext,
    crl: &Crl,
    issuer: &Cert,
    anchor: &Cert,
    untrusted: &[Cert],
    at: i64,
) -> bool {
    ctx.anchors
        .iter()
        .find(|a| a.cert == *anchor)
        .is_some_and(|a| other_key_signed(ctx, crl, issuer, a, untrusted, at))
}

pub(super) fn other_key_signed(
    ctx: &TrustContext,
    crl: &Crl,
    issuer: &Cert,
    anchor: &TrustAnchor,
    untrusted: &[Cert],
    at: i64,
) -> bool {
    let candidates = untrusted
        .iter()
        .chain(&ctx.intermediates)
        .chain(std::iter::once(&anchor.cert));
    for signer in candidates {
        if signer == issuer || crl.verify_signature(signer).is_err() {
            continue;
        }
        let q = Query {
            leaf: signer,
            untrusted,
            at,
            email: None,
            usage: None,
        };
        if validate_to(ctx, &q, Some(anchor)).is_ok() {
            return true;
        }
    }
    false
}

impl Builder<'_> {
    /// Consults the newest usable CRL of `issuer` (RFC 5280 6.3): one that verifies with the
    /// issuer's key, or with another key of the same CA (see [`Self::other_crl_signer`]);
    /// returns whether one was found.
    pub(super) fn crl_status(
        &self,
        c: &Cert,
        issuer: &Cert,
        anchor: &TrustAnchor,
        warnings: &mut Vec<String>,
    ) -> Result<bool, PathError> {
        let mut newest: Option<&Crl> = None;
        let mut rejected = Vec::new();
        for (index, crl) in self.ctx.crls.iter().enumerate() {
            if !same_name(crl.issuer(), c.issuer()) {
                continue;
            }
            if let Some(why) = crl.unusable_reason() {
                rejected.push(format!("a CRL of {} is not used: {why}", crl.issuer()));
                continue;
            }
            // Backtracking checks the same issuer's CRLs again: the verdict is remembered.
            let memo_key = (index, issuer.fingerprint(), anchor.cert.fingerprint());
            let memo = self.crl_memo.borrow().get(&memo_key).cloned();
            let verified = match memo {
                Some(r) => r,
                None => {
                    let direct = (crl.fingerprint(), issuer.fingerprint());
                    let r = if self.ctx.verified_crls.contains(&direct) {
                        Ok(())
                    } else {
                        match crl.verify_signature(issuer) {
                            Ok(()) => {
                                self.ctx.verified_crls.insert(direct);
                                Ok(())
                            }
                            Err(_) if self.other_crl_signer(crl, issuer, anchor) => Ok(()),
                            Err(e) => Err(e.to_string()),
                        }
                    };
                    self.crl_memo.borrow_mut().insert(memo_key, r.clone());
                    r
                }
            };
            match verified {
                Ok(()) => {
                    if newest.is_none_or(|n| crl.is_newer_than(n)) {
                        newest = Some(crl);
                    }
                }
                Err(e) => rejected.push(format!("a CRL is not used: {e}")),
            }
        }
        let Some(crl) = newest else {
            warnings.extend(rejected);
            return Ok(false);
        };
        if let Some(entry) = crl.revoked(c.serial()) {
            return Err(PathError::Revoked {
                subject: who(c),
                serial: c.serial_hex(),
                reason: entry.reason,
                revoked_at: entry.revoked_at,
            });
        }
        if let Some(next) = crl.next_update()
            && next < self.q.at
        {
            warnings.push(format!(
                "the newest CRL of {} is out of date (nextUpdate {})",
                crl.issuer(),
                format_time(next)
            ));
        }
        Ok(true)
    }
}

impl Builder<'_> {
    /// Whether `crl`, which does not verify with the key of `issuer`, was signed by another key
    /// of the same CA (a CA that rolled its key over, or a separate CRL-signing certificate),
    /// as RFC 5280 section 6.3.3 (f) allows: a known or presented certificate with the CRL's
    /// issuer name, whose keyUsage (when present) has cRLSign, whose key verifies the CRL, and
    /// which itself validates, at the same time, to the same trust anchor as the path.
    pub(super) fn other_crl_signer(&self, crl: &Crl, issuer: &Cert, anchor: &TrustAnchor) -> bool {
        if self.only_anchor.is_some() {
            return false; // already validating a CRL signer: one level only
        }
        other_key_signed(self.ctx, crl, issuer, anchor, self.q.untrusted, self.q.at)
    }
}
