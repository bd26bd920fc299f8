//! The directory's side of notices by mail ([`crate::notify`]): one record per notice, so that
//! none goes out twice, across restarts and nodes; the lease that lets one node run the periodic
//! pass; and the gateway's own signing identity for the sender address.
//!
//! A notice is *claimed* before it is sent (`insert_new`, the way `record_issued` keeps serials
//! unique), then marked *sent* once the next hop accepted it. A next hop that says "later"
//! (4xx, unreachable) releases the claim, so the next pass tries again; one that refuses for
//! good (5xx) marks it *refused*, which is not retried. A claim left behind by a gateway that
//! died mid-send expires after [`STALE_CLAIM_SECS`] and is taken again: the notice may then go
//! twice (if the next hop had accepted it just before the crash), but it is never lost; this is
//! the window every MTA has between "250" and its own bookkeeping (DESIGN.md: a duplicate is
//! acceptable, a loss never is).

use serde::{Deserialize, Serialize};

use super::{Directory, DirectoryError, EnrollOptions, SigningIdentity};
use crate::pki::keys::KeyAlgorithm;
use crate::pki::profile;
use crate::store::{ReadTxExt, Table, WriteTxExt};

/// Where notice records live in the meta table: `notice/<kind>/<subject>/...`.
const NOTICE_PREFIX: &str = "notice/";
/// The notice lease's key in the meta table.
const NOTICE_LEASE: &str = "lease.notify";
/// How long a notice pass may hold the lease before another node may take it.
const NOTICE_LEASE_SECS: i64 = 15 * 60;
/// A claim older than this is taken to be left by a gateway that died while sending (far
/// longer than `relay.timeout_secs` allows one send to take).
pub(super) const STALE_CLAIM_SECS: i64 = 3600;

/// Where a notice stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum NoticeState {
    /// Claimed by `holder`, being sent.
    Sending {
        /// The gateway sending it.
        holder: String,
        /// When it was claimed (unix seconds).
        at: i64,
    },
    /// The next hop accepted it.
    Sent {
        /// When (unix seconds).
        at: i64,
    },
    /// The next hop refused it for good; not retried.
    Refused {
        /// When (unix seconds).
        at: i64,
        /// The next hop's words.
        reason: String,
    },
}

/// How a send ended, for [`Directory::finish_notice`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoticeOutcome {
    /// Accepted: never again.
    Sent,
    /// Try again at the next pass (the claim is released).
    Retry,
    /// Refused for good, with the reason.
    Refused(String),
}

impl Directory {
    /// Claims the notice `key` for `holder`: `true` when it is ours to send now, `false` when it
    /// was sent, refused, or is being sent by a live claim. One transaction, so of two gateways
    /// racing for the same notice one wins.
    pub fn claim_notice(&self, key: &str, holder: &str) -> Result<bool, DirectoryError> {
        let key = format!("{NOTICE_PREFIX}{key}");
        let now = profile::now();
        let mut tx = self.store.write()?;
        let claim = NoticeState::Sending {
            holder: holder.to_string(),
            at: now,
        };
        match tx.get_json::<NoticeState>(Table::Meta, &key)? {
            None => {
                if !tx.insert_new_json(Table::Meta, &key, &claim)? {
                    return Ok(false);
                }
            }
            Some(NoticeState::Sending { at, .. }) if at + STALE_CLAIM_SECS < now => {
                tx.put_json(Table::Meta, &key, &claim)?;
            }
            Some(_) => return Ok(false),
        }
        tx.commit()?;
        Ok(true)
    }

    /// Records how sending a claimed notice ended; a sent or refused notice is audited.
    pub fn finish_notice(
        &self,
        key: &str,
        holder: &str,
        outcome: &NoticeOutcome,
        detail: &str,
    ) -> Result<(), DirectoryError> {
        let full = format!("{NOTICE_PREFIX}{key}");
        let now = profile::now();
        let mut tx = self.store.write()?;
        // Only our own claim is finished: one that went stale and was taken over is the other
        // gateway's now.
        match tx.get_json::<NoticeState>(Table::Meta, &full)? {
            Some(NoticeState::Sending { holder: h, .. }) if h == holder => {}
            _ => return Ok(()),
        }
        match outcome {
            NoticeOutcome::Sent => {
                tx.put_json(Table::Meta, &full, &NoticeState::Sent { at: now })?;
                self.audit(&mut tx, "notice.sent", key, detail)?;
            }
            NoticeOutcome::Retry => {
                tx.delete(Table::Meta, &full)?;
            }
            NoticeOutcome::Refused(reason) => {
                tx.put_json(
                    Table::Meta,
                    &full,
                    &NoticeState::Refused {
                        at: now,
                        reason: reason.clone(),
                    },
                )?;
                self.audit(
                    &mut tx,
                    "notice.refused",
                    key,
                    format!("{detail}: {reason}"),
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Where the notice `key` stands, if it was ever claimed.
    pub fn notice_state(&self, key: &str) -> Result<Option<NoticeState>, DirectoryError> {
        Ok(self
            .store
            .read()?
            .get_json(Table::Meta, &format!("{NOTICE_PREFIX}{key}"))?)
    }

    /// Takes the notice lease for one pass (`false`: another gateway is running one).
    pub fn take_notice_lease(&self, holder: &str) -> Result<bool, DirectoryError> {
        self.take_lease(NOTICE_LEASE, holder, NOTICE_LEASE_SECS)
    }

    /// Gives the notice lease back at the end of a pass, so that any node (a restarted one
    /// too) may run the next; the claims, not the lease, keep a notice from going twice.
    pub fn release_notice_lease(&self, holder: &str) -> Result<(), DirectoryError> {
        self.take_lease(NOTICE_LEASE, holder, -1).map(|_| ())
    }

    /// The gateway's own signing identity for the notices' sender: a single-certificate user
    /// for `email`, enrolled by the gateway on first need (audited as `user.enroll`, its key
    /// held like any enrolled user's and renewed by `serve` like theirs). An existing record for
    /// the address (an administrator enrolled it) is used as it is.
    pub fn service_identity(
        &self,
        email: &str,
        key: KeyAlgorithm,
        days: u32,
    ) -> Result<SigningIdentity, DirectoryError> {
        match self.signing_identity(email) {
            Err(DirectoryError::NoSuchUser(_)) => {}
            other => return other,
        }
        let opts = EnrollOptions {
            display_name: "smimegw notices".into(),
            single: true,
            key,
            days,
        };
        match self.enroll(email, &opts) {
            // Another node enrolled it first: use theirs.
            Ok(_) | Err(DirectoryError::UserExists(_)) => self.signing_identity(email),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A notice is claimed once; a retry releases it; sent and refused notices stay done; a
    /// stale claim is taken over, and the old holder can no longer finish it.
    #[test]
    fn a_notice_is_claimed_once_and_a_retry_releases_it() {
        let (_tmp, _config, dir) = crate::gateway::tests::scratch("");
        assert!(dir.claim_notice("k/1", "a").unwrap());
        assert!(!dir.claim_notice("k/1", "b").unwrap(), "a live claim");
        dir.finish_notice("k/1", "a", &NoticeOutcome::Retry, "")
            .unwrap();
        assert_eq!(dir.notice_state("k/1").unwrap(), None);
        assert!(dir.claim_notice("k/1", "b").unwrap(), "released");
        dir.finish_notice("k/1", "b", &NoticeOutcome::Sent, "to x")
            .unwrap();
        assert!(matches!(
            dir.notice_state("k/1").unwrap(),
            Some(NoticeState::Sent { .. })
        ));
        assert!(!dir.claim_notice("k/1", "a").unwrap(), "sent once");
        assert_eq!(
            dir.audit_log().unwrap().pop().unwrap().action,
            "notice.sent"
        );

        assert!(dir.claim_notice("k/2", "a").unwrap());
        dir.finish_notice("k/2", "a", &NoticeOutcome::Refused("550 no".into()), "")
            .unwrap();
        assert!(!dir.claim_notice("k/2", "a").unwrap(), "refused stays");

        // A claim left by a dead gateway.
        let stale = NoticeState::Sending {
            holder: "dead".into(),
            at: profile::now() - STALE_CLAIM_SECS - 1,
        };
        let mut tx = dir.store.write().unwrap();
        tx.put_json(Table::Meta, "notice/k/3", &stale).unwrap();
        tx.commit().unwrap();
        assert!(dir.claim_notice("k/3", "b").unwrap());
        dir.finish_notice("k/3", "dead", &NoticeOutcome::Retry, "")
            .unwrap();
        assert!(
            matches!(dir.notice_state("k/3").unwrap(), Some(NoticeState::Sending { holder, .. }) if holder == "b")
        );
    }

    #[test]
    fn the_notice_lease_is_given_back_after_a_pass() {
        let (_tmp, _config, dir) = crate::gateway::tests::scratch("");
        assert!(dir.take_notice_lease("a").unwrap());
        assert!(!dir.take_notice_lease("b").unwrap());
        dir.release_notice_lease("a").unwrap();
        assert!(dir.take_notice_lease("b").unwrap());
        dir.release_notice_lease("a").unwrap();
        assert!(!dir.take_notice_lease("a").unwrap(), "b's lease stands");
    }
}
