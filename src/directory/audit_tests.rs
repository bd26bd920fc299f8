//! The audit log's chain, attacked the way someone who can write the database file (but has no
//! key-encryption key) would: change an entry, remove one from the middle, remove the newest,
//! insert one.

use redb::ReadableDatabase;

use crate::store::AuditEntry;
use crate::store::redb::{AUDIT, RedbStore};

use super::Directory;

/// A directory with a few audited actions; returns its data dir and config.
fn audited() -> (tempfile::TempDir, crate::config::Config) {
    let (tmp, config, dir) = crate::gateway::tests::scratch("");
    for who in ["a@acme.test", "b@acme.test", "c@acme.test"] {
        let opts = crate::directory::EnrollOptions {
            display_name: who.into(),
            single: false,
            key: crate::pki::KeyAlgorithm::P256,
            days: 30,
        };
        dir.enroll(who, &opts).unwrap();
    }
    drop(dir);
    (tmp, config)
}

/// Runs `f` on the audit table of the closed directory, as a raw database write.
fn tamper(config: &crate::config::Config, f: impl FnOnce(&mut redb::Table<u64, &[u8]>)) {
    let db = crate::store::redb::builder()
        .open(RedbStore::path_in(config.data_dir()))
        .unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut t = tx.open_table(AUDIT).unwrap();
        f(&mut t);
    }
    tx.commit().unwrap();
}

fn entry(config: &crate::config::Config, seq: u64) -> AuditEntry {
    let db = crate::store::redb::builder()
        .open(RedbStore::path_in(config.data_dir()))
        .unwrap();
    let tx = db.begin_read().unwrap();
    let t = tx.open_table(AUDIT).unwrap();
    serde_json::from_slice(t.get(seq).unwrap().unwrap().value()).unwrap()
}

fn problems(config: &crate::config::Config) -> Vec<String> {
    Directory::open(config)
        .unwrap()
        .verify_audit()
        .unwrap()
        .problems
}

#[test]
fn an_intact_chain_verifies() {
    let (_tmp, config) = audited();
    let v = Directory::open(&config).unwrap().verify_audit().unwrap();
    assert!(v.problems.is_empty(), "{v:?}");
    assert!(v.chained >= 4, "ca init and three enrolments: {v:?}");
    assert_eq!(v.before_chaining, 0);
}

#[test]
fn a_changed_entry_is_found() {
    let (_tmp, config) = audited();
    let mut e = entry(&config, 2);
    e.detail = "nothing happened here".into();
    let bytes = serde_json::to_vec(&e).unwrap();
    tamper(&config, |t| {
        t.insert(2, bytes.as_slice()).unwrap();
    });
    let p = problems(&config);
    assert!(
        p.iter().any(|p| p.contains("entry 2 does not match")),
        "{p:?}"
    );
}

#[test]
fn a_removed_entry_in_the_middle_is_found() {
    let (_tmp, config) = audited();
    tamper(&config, |t| {
        t.remove(2).unwrap();
    });
    let p = problems(&config);
    assert!(
        p.iter().any(|p| p.contains("entries 2 to 2 are missing")),
        "{p:?}"
    );
    assert!(
        p.iter().any(|p| p.contains("entry 3 does not match")),
        "{p:?}"
    );
}

#[test]
fn removed_newest_entries_are_found() {
    let (_tmp, config) = audited();
    let last = {
        let dir = Directory::open(&config).unwrap();
        dir.audit_log().unwrap().last().unwrap().seq
    };
    tamper(&config, |t| {
        t.remove(last).unwrap();
    });
    let p = problems(&config);
    assert!(
        p.iter().any(|p| p.contains("were removed or replaced")),
        "{p:?}"
    );
}

#[test]
fn an_inserted_unchained_entry_is_found() {
    let (_tmp, config) = audited();
    let mut e = entry(&config, 2);
    e.chain.clear();
    e.action = "user.export.signing-key".into();
    let bytes = serde_json::to_vec(&e).unwrap();
    tamper(&config, |t| {
        t.insert(2, bytes.as_slice()).unwrap();
    });
    let p = problems(&config);
    assert!(
        p.iter().any(|p| p.contains("entry 2 has no chain link")),
        "{p:?}"
    );
}
