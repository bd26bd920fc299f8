//! The certificate directory: person records, the CA, requests and trust, with every lifecycle
//! action audited. This is what the admin CLI drives and what the gateway reads on each message.
//!
//! Each operation runs in one store transaction: it either happens completely (records, keys,
//! issued serial, audit line) or not at all, so a failed command leaves the directory unchanged.

mod audit;
#[cfg(test)]
mod audit_tests;
mod backup;
mod bundle;
mod ca;
mod harvest;
mod health;
mod notices;
mod requests;
mod server;
mod trust;
mod users;

pub use audit::{AuditVerification, current_actor};
pub use backup::{BackupSummary, Snapshot};
pub use bundle::{BundleImport, BundleSkip};
pub use harvest::Correspondent;
pub use health::CertExpiry;
pub use notices::{NoticeOutcome, NoticeState};
pub use requests::RequestSummary;
pub use server::{ServerCertificate, TlsRole, check_hostname};
pub use trust::{TrustCheck, TrustSummary};
pub use users::{Due, EnrollOptions, RenewalReport, SigningIdentity, UserSummary};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use crate::pki::ca::{Ca, CaError};
use crate::pki::cert::{Cert, CertError};
use crate::pki::csr::CsrError;
use crate::pki::keys::{KeyAlgorithm, KeyError, PrivateKey};
use crate::pki::profile::{self, ProfileError};
use crate::store::kek::KekError;
use crate::store::postgres::{Migrate, PgStore};
use crate::store::redb::RedbStore;
use crate::store::{
    AuditEntry, AuditHead, CaRecord, ChainCert, IssuedRecord, Kek, ReadTxExt, SealedKey, Store,
    StoreError, Table, WriteTx, WriteTxExt,
};

const META_CA: &str = "ca";
const META_KEK_CHECK: &str = "kek_check";
/// Counter bumped by every change that can alter a trust decision (anchors, cross-certificates,
/// CRLs, the CA): caches of validated chains and of the trust context key on it.
const META_TRUST_GENERATION: &str = "trust_generation";
/// The audit log's newest chained entry ([`AuditHead`]).
const META_AUDIT_HEAD: &str = "audit_head";

/// Why a directory operation failed. Every variant names the thing involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// Storage failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Key-encryption key problem.
    #[error(transparent)]
    Kek(#[from] KekError),
    /// A certificate could not be read.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// A request could not be accepted.
    #[error(transparent)]
    Csr(#[from] CsrError),
    /// Key problem.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Encoding or signing problem.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The CA cannot act.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// PKCS #12 problem.
    #[error("{file}: {source}")]
    Pkcs12 {
        /// The file.
        file: String,
        /// What went wrong.
        source: crate::pki::pkcs12::Pkcs12Error,
    },
    /// No CA yet.
    #[error(
        "the directory {0} has no CA yet: run `smimegw ca init --name \"...\"` or `smimegw ca import`"
    )]
    NoCa(String),
    /// A CA exists already.
    #[error(
        "the directory {0} already has a CA ({1}); a second `ca init` would orphan every issued certificate"
    )]
    CaExists(String, String),
    /// The address is not in an internal domain.
    #[error(
        "{email} is not in an internal domain ({domains}): only internal users get certificates from this gateway; add the domain to internal_domains in {config} if it is yours"
    )]
    ExternalAddress {
        /// The address.
        email: String,
        /// The configured domains.
        domains: String,
        /// The configuration file.
        config: String,
    },
    /// Not an e-mail address.
    #[error("'{0}' is not an e-mail address (expected local@domain)")]
    BadAddress(String),
    /// Not a DNS host name.
    #[error(
        "'{0}' is not a host name (expected letters, digits and hyphens in dot-separated labels, e.g. smimegw.acme.test)"
    )]
    BadHostname(String),
    /// The user exists already.
    #[error(
        "user {0} already exists: use `smimegw user renew {0}` for new certificates, or `smimegw user show {0}`"
    )]
    UserExists(String),
    /// No such user.
    #[error("no user {0} in the directory (see `smimegw user list`)")]
    NoSuchUser(String),
    /// No certificate with this serial was issued by our CA.
    #[error("our CA issued no certificate with serial {0} (see `smimegw ca issued`)")]
    NoSuchSerial(String),
    /// `ca revoke` on a certificate with a lifecycle of its own.
    #[error(
        "serial {serial} is {purpose} certificate of {subject}: revoke it with `{command}`, which keeps that record consistent"
    )]
    RevokeElsewhere {
        /// The serial.
        serial: String,
        /// What it is.
        purpose: String,
        /// Whose it is.
        subject: String,
        /// The command to use.
        command: String,
    },
    /// `ca revoke` on a certificate already revoked.
    #[error("serial {serial} was already revoked ({reason}); nothing was changed")]
    AlreadyRevoked {
        /// The serial.
        serial: String,
        /// The recorded reason.
        reason: String,
    },
    /// The user has no current certificate of that role.
    #[error("user {email} has no current {role} certificate")]
    NoCertificate {
        /// The address.
        email: String,
        /// The role asked for.
        role: String,
    },
    /// The key is not held (CSR users keep their own keys).
    #[error(
        "the gateway does not hold the private key of {email}'s {role} certificate (it was issued from the user's own request)"
    )]
    KeyNotHeld {
        /// The address.
        email: String,
        /// The role.
        role: String,
    },
    /// Export of a signing key without the explicit flag.
    #[error(
        "{0}'s signing key is not exportable: signing keys stay in the gateway (pass --include-signing-key to override; the export is audited)"
    )]
    SigningKeyNotExportable(String),
    /// No such request.
    #[error("no certificate request '{0}' (see `smimegw request list --all`)")]
    NoSuchRequest(String),
    /// The request was already decided.
    #[error("request {id} is already {state}; nothing was changed")]
    RequestDecided {
        /// The id.
        id: String,
        /// Its state.
        state: String,
    },
    /// Pickup before approval.
    #[error("request {0} has not been approved (yet): nothing to pick up")]
    RequestNotApproved(String),
    /// No such trust entry.
    #[error("no trust entry '{0}' (see `smimegw trust list`)")]
    NoSuchTrust(String),
    /// A trust entry for that certificate exists.
    #[error(
        "{subject} is already trusted (entry {id}); remove it first to change how it is trusted"
    )]
    TrustExists {
        /// Subject.
        subject: String,
        /// Existing id.
        id: String,
    },
    /// The certificate offered as a root or for cross-certification is not a CA.
    #[error(
        "{0}: not a CA certificate (basicConstraints cA is not TRUE): only CA certificates can be trusted as roots or cross-certified"
    )]
    NotACaCertificate(String),
    /// A CRL could not be used.
    #[error("{file}: {reason}")]
    BadCrl {
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
    /// A root program's bundle could not be imported (nothing was changed).
    #[error("{file}{}: {reason}", if *line > 0 { format!(" line {line}") } else { String::new() })]
    BadBundle {
        /// The file.
        file: String,
        /// 1-based line the problem is at (0: the file as a whole).
        line: usize,
        /// Why.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl DirectoryError {
    /// Whether the directory itself could not be read or written (I/O, a lost or locked
    /// database): a temporary condition, unlike a missing user, certificate or a bad record.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, DirectoryError::Store(StoreError::Backend { .. }))
    }
}

/// The directory: store, key-encryption key and configuration together.
pub struct Directory {
    store: Box<dyn Store>,
    kek: Kek,
    config: Config,
    actor: String,
    /// Unsealed keys of the message path, by key id. Unsealing is cheap, but parsing an RSA key
    /// makes aws-lc check it, which costs about as much as a signature: done per message it
    /// halved the gateway's throughput. A key id names one sealed key forever (a new key gets a
    /// new id), so an entry never goes stale; which key a user signs or decrypts with is still
    /// read from the user's record every time. Keys zeroize their encoding when dropped.
    key_cache: std::sync::Mutex<HashMap<String, Arc<PrivateKey>>>,
}

/// More keys than this and the cache starts over (a bound on memory, not a working set).
const KEY_CACHE_MAX: usize = 4096;

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Directory({})", self.store.describe())
    }
}

fn random_id(bytes: usize) -> Result<String, DirectoryError> {
    use aws_lc_rs::rand::SecureRandom;
    let mut b = vec![0u8; bytes];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| KeyError::Crypto("the system random number generator failed"))?;
    Ok(hex::encode(b))
}

impl Directory {
    /// Opens an existing directory; a missing store, a missing or wrong KEK, or an incompatible
    /// version is an error that names the path and the fix, and nothing is created. A
    /// PostgreSQL directory whose schema is older than this build is refused with the command
    /// that upgrades it (see [`Directory::open_migrating`]).
    pub fn open(config: &Config) -> Result<Self, DirectoryError> {
        Self::open_with(config, Migrate::Refuse)
    }

    /// [`Directory::open`] for `serve`: a PostgreSQL schema older than this build is upgraded
    /// first (a newer one is still refused).
    pub fn open_migrating(config: &Config) -> Result<Self, DirectoryError> {
        Self::open_with(config, Migrate::Apply)
    }

    fn open_with(config: &Config, migrate: Migrate) -> Result<Self, DirectoryError> {
        Self::with_existing_kek(Self::open_store(config, migrate)?, config)
    }

    /// An opened store with the KEK that must already exist for it, checked against the store.
    fn with_existing_kek(store: Box<dyn Store>, config: &Config) -> Result<Self, DirectoryError> {
        let kek = Kek::load(&config.kek_path())?;
        let dir = Self::assemble(store, kek, config);
        dir.verify_kek()?;
        Ok(dir)
    }

    /// The backend the configuration names: `[directory]` PostgreSQL, or the redb file.
    fn open_store(config: &Config, migrate: Migrate) -> Result<Box<dyn Store>, DirectoryError> {
        Ok(match &config.directory {
            Some(db) => Box::new(PgStore::open(db, &config.source, migrate)?),
            None => Box::new(RedbStore::open(config.data_dir())?),
        })
    }

    fn assemble(store: Box<dyn Store>, kek: Kek, config: &Config) -> Self {
        Self {
            store,
            kek,
            config: config.clone(),
            actor: current_actor(),
            key_cache: Default::default(),
        }
    }

    /// Opens the directory, creating the store and the KEK when they do not exist yet (used by
    /// `ca init` and by `serve` with `ca.auto_init`). An existing store whose KEK is missing is
    /// never given a new KEK: that would strand every sealed key. On PostgreSQL the schema is
    /// created or upgraded, and a database that already holds sealed keys (another node's)
    /// needs that node's KEK, never a new one.
    pub fn open_or_create(config: &Config) -> Result<Self, DirectoryError> {
        let kek_path = config.kek_path();
        let store: Box<dyn Store> = match &config.directory {
            Some(db) => {
                let store = PgStore::open(db, &config.source, Migrate::Apply)?;
                let in_use = store.read()?.get(Table::Meta, META_KEK_CHECK)?.is_some();
                if in_use {
                    return Self::with_existing_kek(Box::new(store), config);
                }
                Box::new(store)
            }
            None => {
                let data_dir = config.data_dir();
                if RedbStore::path_in(data_dir).exists() {
                    return Self::open(config);
                }
                Box::new(RedbStore::create(data_dir)?)
            }
        };
        // A KEK from an earlier, removed directory is reused (it will seal the new keys).
        let kek = if kek_path.exists() {
            Kek::load(&kek_path)?
        } else {
            Kek::create(&kek_path)?
        };
        Self::finish_create(store, kek, config)
    }

    fn finish_create(
        store: Box<dyn Store>,
        kek: Kek,
        config: &Config,
    ) -> Result<Self, DirectoryError> {
        let dir = Self::assemble(store, kek, config);
        let mut tx = dir.store.write()?;
        if tx.get(Table::Meta, META_KEK_CHECK)?.is_none() {
            tx.put_json(Table::Meta, META_KEK_CHECK, &dir.kek.check_value()?)?;
        }
        tx.commit()?;
        dir.verify_kek()?;
        Ok(dir)
    }

    fn verify_kek(&self) -> Result<(), DirectoryError> {
        let tx = self.store.read()?;
        match tx.get_json::<SealedKey>(Table::Meta, META_KEK_CHECK)? {
            Some(check) => Ok(self.kek.verify_check(&check, &self.store.describe())?),
            None => Ok(()),
        }
    }

    /// The same directory over another store (tests put a failing store in front).
    #[cfg(test)]
    pub(crate) fn map_store(self, f: impl FnOnce(Box<dyn Store>) -> Box<dyn Store>) -> Self {
        Self {
            store: f(self.store),
            ..self
        }
    }

    /// Sets who is recorded as acting in the audit log (default: the OS user).
    pub fn set_actor(&mut self, actor: &str) {
        self.actor = actor.to_string();
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store (for the gateway's harvesting and for tests).
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Where the store lives, for messages.
    pub fn describe(&self) -> String {
        self.store.describe()
    }

    /// Takes (or renews) the lease `name` for `holder` until `secs` from now, in one
    /// transaction: `false` when another holder's lease has not expired. Several gateways on one
    /// directory use it so that a periodic job runs on one node at a time.
    pub(crate) fn take_lease(
        &self,
        name: &str,
        holder: &str,
        secs: i64,
    ) -> Result<bool, DirectoryError> {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Lease {
            holder: String,
            until: i64,
        }
        let now = profile::now();
        let mut tx = self.store.write()?;
        if let Some(l) = tx.get_json::<Lease>(Table::Meta, name)?
            && l.holder != holder
            && l.until > now
        {
            return Ok(false);
        }
        tx.put_json(
            Table::Meta,
            name,
            &Lease {
                holder: holder.to_string(),
                until: now + secs,
            },
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Marks, inside `tx`, that trust decisions may have changed.
    fn bump_trust_generation(&self, tx: &mut Box<dyn WriteTx + '_>) -> Result<(), DirectoryError> {
        let g: u64 = tx
            .get_json(Table::Meta, META_TRUST_GENERATION)?
            .unwrap_or(0);
        tx.put_json(Table::Meta, META_TRUST_GENERATION, &(g + 1))?;
        Ok(())
    }

    /// The current trust generation: equal values mean the same anchors, cross-certificates and
    /// CRLs, so a cached trust context or validated chain is still right.
    pub fn trust_generation(&self) -> Result<u64, DirectoryError> {
        Ok(self
            .store
            .read()?
            .get_json(Table::Meta, META_TRUST_GENERATION)?
            .unwrap_or(0))
    }

    fn seal_key(
        &self,
        tx: &mut Box<dyn WriteTx + '_>,
        key: &PrivateKey,
        exportable: bool,
    ) -> Result<String, DirectoryError> {
        let id = format!("k-{}", random_id(12)?);
        let sealed = self.kek.seal(&id, key.pkcs8_der(), exportable)?;
        tx.put_json(Table::Keys, &id, &sealed)?;
        Ok(id)
    }

    fn load_key(&self, key_id: &str) -> Result<(PrivateKey, bool), DirectoryError> {
        let sealed: SealedKey = self
            .store
            .read()?
            .get_json(Table::Keys, key_id)?
            .ok_or_else(|| {
                DirectoryError::Store(StoreError::Corrupt {
                    table: "keys",
                    key: key_id.to_string(),
                    message: "referenced key is missing".into(),
                })
            })?;
        let pkcs8 = self.kek.open(key_id, &sealed)?;
        Ok((PrivateKey::from_pkcs8_der(&pkcs8)?, sealed.exportable))
    }

    /// [`Self::load_key`] for the message path: each key is unsealed and parsed once per process.
    fn load_key_shared(&self, key_id: &str) -> Result<Arc<PrivateKey>, DirectoryError> {
        let cached = self
            .key_cache
            .lock()
            .ok()
            .and_then(|c| c.get(key_id).cloned());
        if let Some(key) = cached {
            return Ok(key);
        }
        let key = Arc::new(self.load_key(key_id)?.0);
        // A poisoned lock only means another thread panicked mid-insert: skip caching.
        if let Ok(mut c) = self.key_cache.lock() {
            if c.len() >= KEY_CACHE_MAX {
                c.clear();
            }
            c.insert(key_id.to_string(), key.clone());
        }
        Ok(key)
    }

    /// Checks that `email` is an address in an internal domain, and normalises it.
    pub fn internal_address(&self, email: &str) -> Result<String, DirectoryError> {
        let e = normalise_address(email)?;
        if !self.config.is_internal(&e) {
            return Err(DirectoryError::ExternalAddress {
                email: e,
                domains: self.config.internal_domains.join(", "),
                config: self.config.source.display().to_string(),
            });
        }
        Ok(e)
    }
}

/// Lowercases and checks the shape of an address.
pub fn normalise_address(email: &str) -> Result<String, DirectoryError> {
    let e = email.trim().to_ascii_lowercase();
    match e.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !e.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Ok(e)
        }
        _ => Err(DirectoryError::BadAddress(email.to_string())),
    }
}

/// Reads a file, naming it on failure.
pub fn read_file(path: &Path) -> Result<Vec<u8>, DirectoryError> {
    std::fs::read(path).map_err(|source| DirectoryError::Io {
        path: path.to_path_buf(),
        source,
    })
}
