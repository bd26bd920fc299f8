//! The certificate directory: person records, the CA, requests and trust, with every lifecycle
//! action audited. This is what the admin CLI drives and what the gateway reads on each message.
//!
//! Each operation runs in one store transaction: it either happens completely (records, keys,
//! issued serial, audit line) or not at all, so a failed command leaves the directory unchanged.

#[cfg(test)]
mod audit_tests;
mod backup;
mod bundle;
mod harvest;
mod health;
mod notices;
mod requests;
mod server;
mod trust;
mod users;

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
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_string())
    })
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
        let store = Self::open_store(config, migrate)?;
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
                    return Self::open_migrating(config);
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

    fn audit(
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

    /// The audit log, oldest first.
    pub fn audit_log(&self) -> Result<Vec<AuditEntry>, DirectoryError> {
        Ok(self.store.read()?.audit_log()?)
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

    /// The CA record, if a CA exists.
    fn ca_record(&self) -> Result<Option<CaRecord>, DirectoryError> {
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
    fn ca(&self) -> Result<Ca, DirectoryError> {
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

    fn install_ca(&self, ca: &Ca, action: &str, detail: String) -> Result<(), DirectoryError> {
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
    fn record_issued(
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
