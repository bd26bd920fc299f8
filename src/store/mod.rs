//! The directory's storage: a small transactional key-value interface with named tables.
//!
//! The interface is deliberately narrow (get, scan, put, insert-if-absent, delete, append to the
//! audit log, commit), so that the PostgreSQL backend for a fleet of gateways ([`postgres`]) is
//! a table `(tbl, key, value)` and an audit table: `insert_new` maps to `INSERT .. ON CONFLICT
//! DO NOTHING`, which is what keeps certificate serial numbers unique across nodes. Typed
//! records live in [`records`]; the embedded default backend is [`self::redb`]; private keys are
//! sealed by [`kek`] before they reach any backend.

pub mod kek;
pub mod postgres;
pub mod records;
pub mod redb;

use std::path::PathBuf;

pub use kek::Kek;
pub use records::*;

/// The tables of the directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Table {
    /// Schema version, the CA record, the key-encryption-key check value.
    Meta,
    /// Person records, by lowercase e-mail address.
    Users,
    /// Sealed private keys, by key id.
    Keys,
    /// Certificate requests, by request id.
    Requests,
    /// Trusted roots and cross-certificates, by id.
    Trust,
    /// Certificates harvested from signed mail, by e-mail address.
    Harvested,
    /// CRLs imported or issued, by id (hex SHA-256 of the issuer name).
    Crls,
    /// Every certificate our CA issued, by serial (hex): keeps serials unique, feeds the CRL.
    Issued,
    /// CA certificates learned from validated signer chains or given with `trust import-crl
    /// --issuer`, by SHA-256 fingerprint (hex): intermediates for path building and the
    /// issuers of imported CRLs. Bounded; never trusted by themselves.
    CaCerts,
}

impl Table {
    /// Every table, for backends that create them up front.
    pub const ALL: [Table; 9] = [
        Table::Meta,
        Table::Users,
        Table::Keys,
        Table::Requests,
        Table::Trust,
        Table::Harvested,
        Table::Crls,
        Table::Issued,
        Table::CaCerts,
    ];

    /// The table's name in the backend.
    pub fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Users => "users",
            Table::Keys => "keys",
            Table::Requests => "requests",
            Table::Trust => "trust",
            Table::Harvested => "harvested",
            Table::Crls => "crls",
            Table::Issued => "issued",
            Table::CaCerts => "ca_certs",
        }
    }
}

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No directory has been created at this path yet.
    #[error(
        "no smimegw directory at {0}: run `smimegw ca init` (or start `smimegw serve` with ca.auto_init = true) to create it"
    )]
    NotInitialised(PathBuf),
    /// The data directory was written by another, incompatible version.
    #[error(
        "the directory at {path} has schema version {found}, but this smimegw reads version {expected}: run the smimegw version that wrote it, or restore a backup made for this version; nothing was changed"
    )]
    IncompatibleVersion {
        /// The database file.
        path: PathBuf,
        /// Version found on disk.
        found: String,
        /// Version we understand.
        expected: u32,
    },
    /// The backend failed (I/O, corruption, lock).
    #[error("directory store {path}: {message}")]
    Backend {
        /// The database file.
        path: PathBuf,
        /// What the backend said.
        message: String,
    },
    /// A stored record does not decode.
    #[error("directory store: record {table}/{key} is unreadable: {message}")]
    Corrupt {
        /// Table name.
        table: &'static str,
        /// Record key.
        key: String,
        /// Decoder message.
        message: String,
    },
    /// Problems with the key-encryption key.
    #[error(transparent)]
    Kek(#[from] kek::KekError),
}

/// Reading inside a transaction (a consistent snapshot).
pub trait ReadTx {
    /// One value.
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every entry of a table, in key order.
    fn scan(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// The audit log, oldest first.
    fn audit_log(&self) -> Result<Vec<AuditEntry>, StoreError>;
}

/// Writing inside a transaction: nothing is visible to others until [`WriteTx::commit`], and a
/// transaction dropped without commit changes nothing.
pub trait WriteTx: ReadTx {
    /// Inserts or replaces a value.
    fn put(&mut self, table: Table, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Inserts only if the key is absent; returns false (and writes nothing) if it exists.
    fn insert_new(&mut self, table: Table, key: &str, value: &[u8]) -> Result<bool, StoreError>;
    /// Removes a value; returns whether it existed.
    fn delete(&mut self, table: Table, key: &str) -> Result<bool, StoreError>;
    /// Appends to the audit log (append-only: there is no way to change or remove an entry).
    fn append_audit(&mut self, entry: &AuditEntry) -> Result<u64, StoreError>;
    /// Makes every change durable and visible, atomically.
    fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// A directory backend.
pub trait Store: Send + Sync {
    /// A read snapshot.
    fn read(&self) -> Result<Box<dyn ReadTx + '_>, StoreError>;
    /// A write transaction (one at a time; others wait).
    fn write(&self) -> Result<Box<dyn WriteTx + '_>, StoreError>;
    /// A description for messages (the file path, the database URL without password).
    fn describe(&self) -> String;
    /// Whether the backend is still reachable where it was opened (readiness); the default
    /// asks for a read snapshot.
    fn health(&self) -> Result<(), StoreError> {
        self.read().map(|_| ())
    }
    /// Round trips to a database server since the store was opened (`None` for an embedded
    /// store, which makes none): what a message costs in network waits.
    fn round_trips(&self) -> Option<u64> {
        None
    }
}

/// Typed helpers over the byte interface, so callers never hand-encode a record.
pub trait ReadTxExt: ReadTx {
    /// Decodes one JSON record.
    fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        table: Table,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        match self.get(table, key)? {
            None => Ok(None),
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StoreError::Corrupt {
                        table: table.name(),
                        key: key.to_string(),
                        message: e.to_string(),
                    })
            }
        }
    }

    /// Decodes every record of a table.
    fn scan_json<T: serde::de::DeserializeOwned>(
        &self,
        table: Table,
    ) -> Result<Vec<(String, T)>, StoreError> {
        self.scan(table)?
            .into_iter()
            .map(|(k, v)| {
                serde_json::from_slice(&v)
                    .map(|t| (k.clone(), t))
                    .map_err(|e| StoreError::Corrupt {
                        table: table.name(),
                        key: k,
                        message: e.to_string(),
                    })
            })
            .collect()
    }
}
impl<T: ReadTx + ?Sized> ReadTxExt for T {}

/// Typed writes.
pub trait WriteTxExt: WriteTx {
    /// Encodes and stores one record.
    fn put_json<T: serde::Serialize>(
        &mut self,
        table: Table,
        key: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt {
            table: table.name(),
            key: key.to_string(),
            message: e.to_string(),
        })?;
        self.put(table, key, &bytes)
    }

    /// Encodes and inserts one record if the key is absent.
    fn insert_new_json<T: serde::Serialize>(
        &mut self,
        table: Table,
        key: &str,
        value: &T,
    ) -> Result<bool, StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt {
            table: table.name(),
            key: key.to_string(),
            message: e.to_string(),
        })?;
        self.insert_new(table, key, &bytes)
    }
}
impl<T: WriteTx + ?Sized> WriteTxExt for T {}
