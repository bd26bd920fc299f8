//! Backup, restore and moving between backends: `smimegw directory export FILE` and
//! `smimegw directory import FILE`.
//!
//! An export is one read transaction of the store (a consistent snapshot, taken while `serve`
//! runs): every record of every table, byte for byte, and the audit log with its chain. Sealed
//! keys stay sealed under the key-encryption key, so the file is as sensitive as the store and
//! no more: without the KEK it gives no private key. An import writes all of it, in one write
//! transaction, into an empty store of either backend, then adds one audit line of its own, so
//! the imported chain continues unbroken and `audit --verify` checks it end to end.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{Directory, DirectoryError, META_KEK_CHECK};
use crate::config::Config;
use crate::pki::profile;
use crate::store::postgres::{Migrate, PgStore};
use crate::store::redb::{RedbStore, SCHEMA_KEY};
use crate::store::{AuditEntry, Kek, SealedKey, Store, StoreError, Table};

/// What an export file says it is.
const FORMAT: &str = "smimegw-directory-export";
/// The version of the export format this build writes and reads.
const FORMAT_VERSION: u32 = 1;

/// The file `directory export` writes.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Always "smimegw-directory-export".
    pub format: String,
    /// The format version (1).
    pub version: u32,
    /// When the snapshot was taken (unix seconds).
    pub exported_at: i64,
    /// The store it was taken from (a file path or a database URL).
    pub source: String,
    /// Every record, by table name, in key order; values base64 of the stored bytes.
    pub tables: std::collections::BTreeMap<String, Vec<Record>>,
    /// The audit log, oldest first, with sequence numbers and chain links.
    pub audit: Vec<AuditEntry>,
}

/// One stored record.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The record's key.
    pub key: String,
    /// The stored bytes, base64.
    pub value: String,
}

/// What an export or import did, for the CLI.
#[derive(Debug, Serialize)]
pub struct BackupSummary {
    /// The file written or read.
    pub file: PathBuf,
    /// The store read or written.
    pub store: String,
    /// Records, over all tables.
    pub records: usize,
    /// Audit entries copied (an import adds one more of its own).
    pub audit_entries: usize,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn io_error(path: &Path, source: std::io::Error) -> DirectoryError {
    DirectoryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn bad_file(path: &Path, why: impl std::fmt::Display) -> DirectoryError {
    DirectoryError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not a usable smimegw directory export: {why}"),
        ),
    }
}

impl Directory {
    /// Takes a consistent snapshot of the whole directory into `file` (created new, mode 0600;
    /// an existing file is never overwritten).
    pub fn export(&self, file: &Path) -> Result<BackupSummary, DirectoryError> {
        let snapshot = {
            let read = self.store.read()?;
            let mut tables = std::collections::BTreeMap::new();
            for table in Table::ALL {
                let rows = read
                    .scan(table)?
                    .into_iter()
                    .map(|(key, value)| Record {
                        key,
                        value: b64().encode(value),
                    })
                    .collect();
                tables.insert(table.name().to_string(), rows);
            }
            Snapshot {
                format: FORMAT.into(),
                version: FORMAT_VERSION,
                exported_at: profile::now(),
                source: self.describe(),
                tables,
                audit: read.audit_log()?,
            }
        };
        let records = snapshot.tables.values().map(Vec::len).sum();
        let bytes = serde_json::to_vec_pretty(&snapshot)
            .map_err(|e| io_error(file, std::io::Error::other(e)))?;
        write_new_private(file, &bytes)?;
        Ok(BackupSummary {
            file: file.to_path_buf(),
            store: self.describe(),
            records,
            audit_entries: snapshot.audit.len(),
        })
    }

    /// Restores `file` into the configured store, which must be empty (a new redb file is
    /// created; a PostgreSQL schema is created when there is none). The local key-encryption
    /// key must be the one the export's keys are sealed under: it is checked before anything
    /// is written.
    pub fn import(config: &Config, file: &Path) -> Result<(Self, BackupSummary), DirectoryError> {
        let bytes = std::fs::read(file).map_err(|e| io_error(file, e))?;
        let snapshot: Snapshot = serde_json::from_slice(&bytes).map_err(|e| bad_file(file, e))?;
        if snapshot.format != FORMAT || snapshot.version != FORMAT_VERSION {
            return Err(bad_file(
                file,
                format!(
                    "format {:?} version {}, this smimegw reads {FORMAT:?} version {FORMAT_VERSION}",
                    snapshot.format, snapshot.version
                ),
            ));
        }
        let mut records = Vec::new();
        for (name, rows) in &snapshot.tables {
            let table = Table::ALL
                .into_iter()
                .find(|t| t.name() == name)
                .ok_or_else(|| bad_file(file, format!("unknown table {name:?}")))?;
            for row in rows {
                let value = b64()
                    .decode(&row.value)
                    .map_err(|e| bad_file(file, format!("{name}/{}: {e}", row.key)))?;
                records.push((table, row.key.clone(), value));
            }
        }
        for (i, entry) in snapshot.audit.iter().enumerate() {
            if entry.seq != i as u64 + 1 {
                return Err(bad_file(
                    file,
                    format!(
                        "audit entry {} is numbered {} (the log must run 1, 2, 3 ... without gaps)",
                        i + 1,
                        entry.seq
                    ),
                ));
            }
        }

        let kek_path = config.kek_path();
        let kek = Kek::load(&kek_path)?;
        if let Some((_, _, check)) = records
            .iter()
            .find(|(t, k, _)| *t == Table::Meta && k == META_KEK_CHECK)
        {
            let check: SealedKey = serde_json::from_slice(check).map_err(|e| bad_file(file, e))?;
            kek.verify_check(&check, &file.display().to_string())?;
        }

        let store: Box<dyn Store> = match &config.directory {
            Some(db) => Box::new(PgStore::open(db, &config.source, Migrate::Apply)?),
            None => Box::new(RedbStore::create(config.data_dir())?),
        };
        ensure_empty(store.as_ref())?;
        let dir = Self::assemble(store, kek, config);
        {
            let mut tx = dir.store.write()?;
            for (table, key, value) in &records {
                tx.put(*table, key, value)?;
            }
            for entry in &snapshot.audit {
                let seq = tx.append_audit(entry)?;
                if seq != entry.seq {
                    return Err(DirectoryError::Store(StoreError::Corrupt {
                        table: "audit",
                        key: entry.seq.to_string(),
                        message: format!(
                            "the target store numbered it {seq}; nothing was imported"
                        ),
                    }));
                }
            }
            dir.audit(
                &mut tx,
                "directory.import",
                &file.display().to_string(),
                format!(
                    "{} records and {} audit entries from {}, exported at {}",
                    records.len(),
                    snapshot.audit.len(),
                    snapshot.source,
                    crate::pki::cert::format_time(snapshot.exported_at)
                ),
            )?;
            tx.commit()?;
        }
        let summary = BackupSummary {
            file: file.to_path_buf(),
            store: dir.describe(),
            records: records.len(),
            audit_entries: snapshot.audit.len(),
        };
        Ok((dir, summary))
    }
}

/// Refuses a store that holds anything but the schema marker a new redb file starts with.
fn ensure_empty(store: &dyn Store) -> Result<(), DirectoryError> {
    let read = store.read()?;
    let mut held = 0usize;
    for table in Table::ALL {
        held += read
            .scan(table)?
            .iter()
            .filter(|(k, _)| !(table == Table::Meta && k == SCHEMA_KEY))
            .count();
    }
    held += read.audit_log()?.len();
    if held > 0 {
        return Err(DirectoryError::Store(StoreError::Backend {
            path: PathBuf::from(store.describe()),
            message: format!(
                "an import needs an empty directory, and this one holds {held} records and audit entries: import into a new data_dir or an empty database"
            ),
        }));
    }
    Ok(())
}

/// Writes `bytes` to a new file with mode 0600, through a temporary file beside it, so a
/// crash leaves no half-written export under the final name.
fn write_new_private(file: &Path, bytes: &[u8]) -> Result<(), DirectoryError> {
    use std::os::unix::fs::OpenOptionsExt;
    if file.exists() {
        return Err(io_error(
            file,
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists; an export never overwrites a file: name a new one",
            ),
        ));
    }
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, file)?;
        std::fs::remove_file(&tmp)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| io_error(file, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The records a store holds, byte for byte.
    fn dump(store: &dyn Store) -> Vec<(Table, String, Vec<u8>)> {
        let read = store.read().unwrap();
        Table::ALL
            .into_iter()
            .flat_map(|t| {
                read.scan(t)
                    .unwrap()
                    .into_iter()
                    .map(move |(k, v)| (t, k, v))
            })
            .collect()
    }

    #[test]
    fn a_redb_export_restores_byte_for_byte_into_a_new_data_dir() {
        let (tmp, config, dir) = crate::gateway::tests::scratch("");
        let opts = crate::directory::EnrollOptions {
            display_name: "A".into(),
            single: false,
            key: crate::pki::KeyAlgorithm::P256,
            days: 30,
        };
        dir.enroll("a@acme.test", &opts).unwrap();
        let file = tmp.path().join("export.json");
        let summary = dir.export(&file).unwrap();
        assert!(summary.records > 5);
        assert!(dir.export(&file).is_err(), "never overwritten");

        // Same KEK, new data_dir.
        let mut restored_config = config.clone();
        restored_config.data_dir = Some(tmp.path().join("restored"));
        let (restored, summary2) = Directory::import(&restored_config, &file).unwrap();
        assert_eq!(summary2.records, summary.records);
        let mut before = dump(dir.store());
        let mut after = dump(restored.store());
        let head = |v: &mut Vec<(Table, String, Vec<u8>)>| {
            v.retain(|(t, k, _)| !(*t == Table::Meta && k == super::super::META_AUDIT_HEAD))
        };
        head(&mut before);
        head(&mut after);
        assert_eq!(before, after);
        let (log1, log2) = (dir.audit_log().unwrap(), restored.audit_log().unwrap());
        assert_eq!(log2.len(), log1.len() + 1);
        assert_eq!(&log2[..log1.len()], &log1[..]);
        assert_eq!(log2.last().unwrap().action, "directory.import");
        assert!(restored.verify_audit().unwrap().problems.is_empty());

        // Not into a directory that holds anything.
        let err = Directory::import(&config, &file).unwrap_err().to_string();
        assert!(err.contains("needs an empty directory"), "{err}");
    }
}
