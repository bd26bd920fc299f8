//! The audit log: who did what, append-only, each entry chained to the one before it under a
//! key derived from the key-encryption key.

use super::*;

/// What `smimegw audit --verify` found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AuditVerification {
    /// Entries in the log.
    pub entries: usize,
    /// Entries written before the log was chained (not judged).
    pub before_chaining: usize,
    /// Chained entries checked.
    pub chained: usize,
    /// What is wrong, naming sequence numbers; empty when the chain holds.
    pub problems: Vec<String>,
}

/// Who is acting, for the audit log: the process's real user id, with its name from the
/// password database. Environment variables such as `$USER` are the caller's to set and name
/// nobody; only `SUDO_USER` is added, marked as what sudo claims, since under sudo the real
/// uid is root's.
pub fn current_actor() -> String {
    let uid = rustix::process::getuid().as_raw();
    let name = user_name(uid).unwrap_or_else(|| "?".into());
    let mut actor = format!("{name} (uid {uid})");
    if let Ok(by) = std::env::var("SUDO_USER")
        && uid == 0
        && !by.is_empty()
    {
        actor.push_str(&format!(" via sudo, SUDO_USER={}", by.escape_debug()));
    }
    actor
}

/// The login name of `uid` from /etc/passwd (`name:x:uid:...`).
pub(super) fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_string())
    })
}

impl Directory {
    pub(super) fn audit(
        &self,
        tx: &mut Box<dyn WriteTx + '_>,
        action: &str,
        subject: &str,
        detail: impl Into<String>,
    ) -> Result<(), DirectoryError> {
        let previous = tx
            .get_json::<AuditHead>(Table::Meta, META_AUDIT_HEAD)?
            .map(|h| h.chain)
            .unwrap_or_default();
        let mut entry = AuditEntry {
            seq: 0,
            at: profile::now(),
            actor: self.actor.clone(),
            action: action.to_string(),
            subject: subject.to_string(),
            detail: detail.into(),
            chain: String::new(),
        };
        entry.chain = self.kek.audit_link(&previous, &entry.chained_bytes());
        let seq = tx.append_audit(&entry)?;
        tx.put_json(
            Table::Meta,
            META_AUDIT_HEAD,
            &AuditHead {
                seq,
                chain: entry.chain,
            },
        )?;
        Ok(())
    }

    /// Checks the audit log's chain (`smimegw audit --verify`): every entry since chaining
    /// began must carry the link computed from the one before it, under a key only the KEK
    /// gives, and the newest must be the head recorded with it. A changed entry, a removed or
    /// inserted one, or removed newest entries show as problems naming the sequence numbers.
    /// Entries written before the log was chained are counted, not judged.
    pub fn verify_audit(&self) -> Result<AuditVerification, DirectoryError> {
        let read = self.store.read()?;
        let log = read.audit_log()?;
        let head: Option<AuditHead> = read.get_json(Table::Meta, META_AUDIT_HEAD)?;
        let mut v = AuditVerification {
            entries: log.len(),
            ..AuditVerification::default()
        };
        let mut previous = String::new();
        let mut last_seq = None;
        for e in &log {
            if let Some(prev_seq) = last_seq
                && e.seq != prev_seq + 1
            {
                v.problems.push(format!(
                    "entries {} to {} are missing",
                    prev_seq + 1,
                    e.seq - 1
                ));
            }
            last_seq = Some(e.seq);
            if e.chain.is_empty() {
                if v.chained == 0 {
                    v.before_chaining += 1;
                } else {
                    v.problems.push(format!(
                        "entry {} has no chain link: inserted or altered",
                        e.seq
                    ));
                }
                continue;
            }
            v.chained += 1;
            if e.chain != self.kek.audit_link(&previous, &e.chained_bytes()) {
                v.problems.push(format!(
                    "entry {} does not match its chain link: it was changed, or the entry before it removed",
                    e.seq
                ));
            }
            previous = e.chain.clone();
        }
        match (&head, log.iter().rev().find(|e| !e.chain.is_empty())) {
            (Some(h), Some(last)) if h.seq != last.seq || h.chain != last.chain => {
                v.problems.push(format!(
                    "the newest chained entry is {}, but entry {} was recorded as the newest: entries at the end were removed or replaced",
                    last.seq, h.seq
                ));
            }
            (Some(h), None) => v.problems.push(format!(
                "entry {} was recorded as the newest, but no chained entry is left",
                h.seq
            )),
            _ => {}
        }
        Ok(v)
    }

    /// The audit log, oldest first.
    pub fn audit_log(&self) -> Result<Vec<AuditEntry>, DirectoryError> {
        Ok(self.store.read()?.audit_log()?)
    }
}
