//! The embedded default backend: one redb file, ACID transactions, zero set-up.
//!
//! Opened in redb's multi-writer mode so the admin CLI can change the directory while
//! `smimegw serve` runs (each write transaction is still exclusive).

use std::path::{Path, PathBuf};

use redb::{
    Builder, ConcurrencyMode, Database, ReadableDatabase, ReadableTable, TableDefinition,
    TableError,
};

use super::{AuditEntry, ReadTx, SCHEMA_VERSION, Store, StoreError, Table, WriteTx};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "smimegw.redb";

pub(crate) const AUDIT: TableDefinition<'static, u64, &'static [u8]> =
    TableDefinition::new("audit");
pub(crate) const SCHEMA_KEY: &str = "schema_version";

fn def(t: Table) -> TableDefinition<'static, &'static str, &'static [u8]> {
    TableDefinition::new(t.name())
}

/// The redb-backed directory.
pub struct RedbStore {
    /// The open database; replaced by a fresh handle after an I/O error (see
    /// [`RedbStore::begin`]).
    db: std::sync::RwLock<std::sync::Arc<Database>>,
    path: PathBuf,
    /// Device and inode of the file opened, to notice it being moved, removed or replaced.
    identity: Option<(u64, u64)>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedbStore({})", self.path.display())
    }
}

pub(crate) fn builder() -> Builder {
    let mut b = Builder::new();
    b.set_concurrency_mode(ConcurrencyMode::MultiWriter);
    b
}

impl RedbStore {
    /// The database path for a data directory.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join(DB_FILE)
    }

    /// Opens an existing directory, checking its schema version before anything is written.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let path = Self::path_in(data_dir);
        if !path.exists() {
            return Err(StoreError::NotInitialised(data_dir.to_path_buf()));
        }
        let db = builder().open(&path).map_err(|e| match e {
            redb::DatabaseError::UpgradeRequired(v) => StoreError::IncompatibleVersion {
                path: path.clone(),
                found: format!("redb file format {v}"),
                expected: SCHEMA_VERSION,
            },
            other => backend(&path, other),
        })?;
        let identity = file_identity(&path);
        let store = Self {
            db: std::sync::RwLock::new(std::sync::Arc::new(db)),
            path,
            identity,
        };
        store.check_schema()?;
        Ok(store)
    }

    /// Creates a new, empty directory (the data directory is created with mode 0700).
    pub fn create(data_dir: &Path) -> Result<Self, StoreError> {
        use std::os::unix::fs::DirBuilderExt;
        let path = Self::path_in(data_dir);
        if path.exists() {
            return Self::open(data_dir);
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(|e| backend(&path, e))?;
        let db = builder().create(&path).map_err(|e| backend(&path, e))?;
        let identity = file_identity(&path);
        let tx = db.begin_write().map_err(|e| backend(&path, e))?;
        let store = Self {
            db: std::sync::RwLock::new(std::sync::Arc::new(db)),
            path,
            identity,
        };
        {
            for t in Table::ALL {
                tx.open_table(def(t)).map_err(|e| backend(&store.path, e))?;
            }
            tx.open_table(AUDIT).map_err(|e| backend(&store.path, e))?;
            let mut meta = tx
                .open_table(def(Table::Meta))
                .map_err(|e| backend(&store.path, e))?;
            meta.insert(SCHEMA_KEY, SCHEMA_VERSION.to_string().as_bytes())
                .map_err(|e| backend(&store.path, e))?;
        }
        tx.commit().map_err(|e| backend(&store.path, e))?;
        Ok(store)
    }

    /// Begins a transaction. After an I/O error (a full or read-only disk during a commit)
    /// redb refuses every later transaction on that handle with `PreviousIo` until the database
    /// is re-opened; a long-running `serve` must not stay broken after the disk is fixed, so
    /// the handle is replaced (once, whoever sees the error first) and the transaction retried.
    /// Re-opening runs redb's recovery; if that fails too (the disk is still full), the error
    /// is returned and the next transaction tries again.
    fn begin<T>(
        &self,
        op: impl Fn(&Database) -> Result<T, redb::TransactionError>,
    ) -> Result<T, StoreError> {
        let db = self.db.read().unwrap_or_else(|e| e.into_inner()).clone();
        match op(&db) {
            Ok(t) => Ok(t),
            Err(redb::TransactionError::Storage(redb::StorageError::PreviousIo)) => {
                {
                    let mut slot = self.db.write().unwrap_or_else(|e| e.into_inner());
                    if std::sync::Arc::ptr_eq(&slot, &db) {
                        let fresh = builder().open(&self.path).map_err(|e| {
                            backend(
                                &self.path,
                                format!("re-opening after an earlier I/O error: {e}"),
                            )
                        })?;
                        *slot = std::sync::Arc::new(fresh);
                        tracing::warn!(store = %self.path.display(), "re-opened the directory store after an I/O error");
                    }
                }
                let db = self.db.read().unwrap_or_else(|e| e.into_inner()).clone();
                op(&db).map_err(|e| backend(&self.path, e))
            }
            Err(e) => Err(backend(&self.path, e)),
        }
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        let found = self.read()?.get(Table::Meta, SCHEMA_KEY)?;
        match found {
            Some(v) if v == SCHEMA_VERSION.to_string().as_bytes() => Ok(()),
            Some(v) => Err(StoreError::IncompatibleVersion {
                path: self.path.clone(),
                found: String::from_utf8_lossy(&v).into_owned(),
                expected: SCHEMA_VERSION,
            }),
            None => Err(StoreError::IncompatibleVersion {
                path: self.path.clone(),
                found: "none (not an smimegw directory)".into(),
                expected: SCHEMA_VERSION,
            }),
        }
    }
}

fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn backend(path: &Path, e: impl std::fmt::Display) -> StoreError {
    let mut message = e.to_string();
    message.push_str(os_hint(&message));
    StoreError::Backend {
        path: path.to_path_buf(),
        message,
    }
}

/// What to do about the operating-system errors a full or read-only disk gives. redb wraps the
/// `io::Error` in several error types, all of which print it the way std does ("(os error N)").
/// A transaction that failed this way was not committed: redb's commit is atomic, so the
/// directory stays as it was before the command.
fn os_hint(message: &str) -> &'static str {
    if message.contains("(os error 28)") || message.contains("(os error 122)") {
        "; the file system holding the data directory is full (or over quota): free space there and retry; nothing was changed"
    } else if message.contains("(os error 30)") {
        "; the file system holding the data directory is mounted read-only: remount it read-write (the kernel also does this after disk errors: check its log) and retry; nothing was changed"
    } else if message.contains("(os error 13)") || message.contains("(os error 1)") {
        "; permission denied: run smimegw as the user that owns the data directory; nothing was changed"
    } else if message.contains("(os error 5)") {
        "; input/output error from the disk: check the kernel log and the disk before retrying"
    } else {
        ""
    }
}

struct RedbRead<'a> {
    tx: redb::ReadTransaction,
    path: &'a Path,
}

struct RedbWrite<'a> {
    tx: redb::WriteTransaction,
    path: &'a Path,
}

fn read_get(
    tx: &redb::ReadTransaction,
    path: &Path,
    t: Table,
    key: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    let table = match tx.open_table(def(t)) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(backend(path, e)),
    };
    Ok(table
        .get(key)
        .map_err(|e| backend(path, e))?
        .map(|v| v.value().to_vec()))
}

fn scan_table(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    path: &Path,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let mut out = Vec::new();
    for item in table.iter().map_err(|e| backend(path, e))? {
        let (k, v) = item.map_err(|e| backend(path, e))?;
        out.push((k.value().to_string(), v.value().to_vec()));
    }
    Ok(out)
}

fn audit_of(
    table: &impl ReadableTable<u64, &'static [u8]>,
    path: &Path,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut out = Vec::new();
    for item in table.iter().map_err(|e| backend(path, e))? {
        let (k, v) = item.map_err(|e| backend(path, e))?;
        let mut e: AuditEntry =
            serde_json::from_slice(v.value()).map_err(|e| StoreError::Corrupt {
                table: "audit",
                key: k.value().to_string(),
                message: e.to_string(),
            })?;
        e.seq = k.value();
        out.push(e);
    }
    Ok(out)
}

impl ReadTx for RedbRead<'_> {
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        read_get(&self.tx, self.path, table, key)
    }

    fn scan(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        match self.tx.open_table(def(table)) {
            Ok(t) => scan_table(&t, self.path),
            Err(TableError::TableDoesNotExist(_)) => Ok(Vec::new()),
            Err(e) => Err(backend(self.path, e)),
        }
    }

    fn audit_log(&self) -> Result<Vec<AuditEntry>, StoreError> {
        match self.tx.open_table(AUDIT) {
            Ok(t) => audit_of(&t, self.path),
            Err(TableError::TableDoesNotExist(_)) => Ok(Vec::new()),
            Err(e) => Err(backend(self.path, e)),
        }
    }
}

impl ReadTx for RedbWrite<'_> {
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self
            .tx
            .open_table(def(table))
            .map_err(|e| backend(self.path, e))?;
        Ok(t.get(key)
            .map_err(|e| backend(self.path, e))?
            .map(|v| v.value().to_vec()))
    }

    fn scan(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let t = self
            .tx
            .open_table(def(table))
            .map_err(|e| backend(self.path, e))?;
        scan_table(&t, self.path)
    }

    fn audit_log(&self) -> Result<Vec<AuditEntry>, StoreError> {
        let t = self
            .tx
            .open_table(AUDIT)
            .map_err(|e| backend(self.path, e))?;
        audit_of(&t, self.path)
    }
}

impl WriteTx for RedbWrite<'_> {
    fn put(&mut self, table: Table, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let mut t = self
            .tx
            .open_table(def(table))
            .map_err(|e| backend(self.path, e))?;
        t.insert(key, value).map_err(|e| backend(self.path, e))?;
        Ok(())
    }

    fn insert_new(&mut self, table: Table, key: &str, value: &[u8]) -> Result<bool, StoreError> {
        let mut t = self
            .tx
            .open_table(def(table))
            .map_err(|e| backend(self.path, e))?;
        if t.get(key).map_err(|e| backend(self.path, e))?.is_some() {
            return Ok(false);
        }
        t.insert(key, value).map_err(|e| backend(self.path, e))?;
        Ok(true)
    }

    fn delete(&mut self, table: Table, key: &str) -> Result<bool, StoreError> {
        let mut t = self
            .tx
            .open_table(def(table))
            .map_err(|e| backend(self.path, e))?;
        Ok(t.remove(key).map_err(|e| backend(self.path, e))?.is_some())
    }

    fn append_audit(&mut self, entry: &AuditEntry) -> Result<u64, StoreError> {
        let mut t = self
            .tx
            .open_table(AUDIT)
            .map_err(|e| backend(self.path, e))?;
        let next = t
            .last()
            .map_err(|e| backend(self.path, e))?
            .map(|(k, _)| k.value() + 1)
            .unwrap_or(1);
        let bytes = serde_json::to_vec(entry).map_err(|e| backend(self.path, e))?;
        t.insert(next, bytes.as_slice())
            .map_err(|e| backend(self.path, e))?;
        Ok(next)
    }

    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let path = self.path;
        self.tx.commit().map_err(|e| backend(path, e))
    }
}

impl Store for RedbStore {
    fn read(&self) -> Result<Box<dyn ReadTx + '_>, StoreError> {
        let tx = self.begin(|db| db.begin_read())?;
        Ok(Box::new(RedbRead {
            tx,
            path: &self.path,
        }))
    }

    fn write(&self) -> Result<Box<dyn WriteTx + '_>, StoreError> {
        let tx = self.begin(|db| db.begin_write())?;
        Ok(Box::new(RedbWrite {
            tx,
            path: &self.path,
        }))
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    /// The open database keeps working on its file descriptor even after the file was moved or
    /// deleted, but then the administrators' commands and the next start see another directory
    /// (or none): that is "unavailable" too, and is caught by comparing the file's identity.
    fn health(&self) -> Result<(), StoreError> {
        let now = match std::fs::metadata(&self.path) {
            Ok(_) => file_identity(&self.path),
            Err(e) => {
                return Err(backend(
                    &self.path,
                    format!(
                        "the database file is no longer there ({e}): it was moved or deleted while the gateway runs; restore it (or the data directory) at this path and check the data directory's mount"
                    ),
                ));
            }
        };
        if self.identity.is_some() && now != self.identity {
            return Err(backend(
                &self.path,
                "the database file was replaced by another file since the gateway opened it; restart `smimegw serve` to use the new one, or put the old one back",
            ));
        }
        let tx = self.begin(|db| db.begin_read())?;
        read_get(&tx, &self.path, Table::Meta, SCHEMA_KEY)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ReadTxExt, WriteTxExt};

    #[test]
    fn transactions_commit_or_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::create(dir.path()).unwrap();
        {
            let mut w = s.write().unwrap();
            w.put_json(Table::Users, "a@x.test", &1u32).unwrap();
            // dropped without commit
        }
        assert!(
            s.read()
                .unwrap()
                .get(Table::Users, "a@x.test")
                .unwrap()
                .is_none()
        );
        let mut w = s.write().unwrap();
        assert!(w.insert_new_json(Table::Issued, "01", &1u32).unwrap());
        assert!(!w.insert_new_json(Table::Issued, "01", &2u32).unwrap());
        let e = AuditEntry {
            seq: 0,
            at: 1,
            actor: "t".into(),
            action: "x".into(),
            subject: "s".into(),
            detail: "d".into(),
            chain: String::new(),
        };
        assert_eq!(w.append_audit(&e).unwrap(), 1);
        assert_eq!(w.append_audit(&e).unwrap(), 2);
        w.commit().unwrap();
        let r = s.read().unwrap();
        assert_eq!(r.get_json::<u32>(Table::Issued, "01").unwrap(), Some(1));
        assert_eq!(r.audit_log().unwrap().len(), 2);
    }

    #[test]
    fn missing_and_incompatible_directories_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = RedbStore::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("smimegw ca init"), "{e}");
        let s = RedbStore::create(dir.path()).unwrap();
        let mut w = s.write().unwrap();
        w.put(Table::Meta, SCHEMA_KEY, b"99").unwrap();
        w.commit().unwrap();
        drop(s);
        let e = RedbStore::open(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("schema version 99") && e.contains(DB_FILE),
            "{e}"
        );
        // Nothing was rewritten: the foreign schema marker is still there.
        let db = builder().open(RedbStore::path_in(dir.path())).unwrap();
        let tx = db.begin_read().unwrap();
        let t = tx.open_table(def(Table::Meta)).unwrap();
        assert!(t.get(SCHEMA_KEY).unwrap().unwrap().value() == b"99");
    }
}
